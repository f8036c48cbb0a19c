//! The write engine: buffering, erases, writes and journal records, as operations to run (no I/O).

use super::*;

/// Where the bytes of a write go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Src {
    /// The first `n` bytes of the internal buffer.
    Buffer(usize),
    /// `len` bytes of the caller's data from `start`.
    Input { start: usize, len: usize },
}

/// One flash operation the writer needs next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    /// Erase `from..to`: one sector of the slot while writing; up to [`PREPARE_ERASE_MAX`]
    /// bytes of whole sectors in `prepare`.
    Erase { from: u32, to: u32 },
    /// Write bytes at `addr`.
    Program { addr: u32, src: Src },
    /// Append a journal record: the image is durable up to `offset` (a sector boundary).
    /// Appends without an erase inside a region `prepare` planned (it made room).
    Record { offset: u32 },
}

/// The write engine: decides buffering, erases, writes and journal records; does no I/O.
///
/// Offsets are slot-relative. Invariants: `flushed <= pos`, except after the final padded
/// flush; `flushed` is a multiple of `unit`; `pos - flushed == buf_len` while buffering
/// (and the buffer never crosses a sector boundary, so `pos` is in the sector holding
/// `flushed`); `erased` is a sector boundary, the sector holding `flushed` is erased iff
/// `flushed < erased`, and every sector from it up to `erased` is erased and holds nothing
/// past `flushed` (`prepare` may move `erased` several sectors ahead, and so may `begin` on
/// a slot erased in idle time, [`assume_erased`](Self::assume_erased)); nothing is ever
/// erased at or past `round_up(size, sector)` nor written at or past `round_up(size, unit)`,
/// both `<= capacity`; `recorded` is a sector boundary `<= min(flushed, size)`.
///
/// Journal records: every sector boundary the image passes is recorded, except up to the
/// record plan's `stride_last` (set by `prepare`, see [`plan_records`](Self::plan_records)),
/// where only `stride_last` and every `stride`-th boundary before it are.
#[derive(Clone, Debug)]
pub(super) struct Writer {
    pub(super) base: u32,
    pub(super) sector: u32,
    pub(super) unit: u32,
    pub(super) size: u32,
    pub(super) pos: u32,
    pub(super) flushed: u32,
    pub(super) erased: u32,
    pub(super) recorded: u32,
    pub(super) stride_last: u32,
    pub(super) stride: u32,
    pub(super) buf: [u8; WRITE_BUF_LEN],
    pub(super) buf_len: usize,
}

impl Writer {
    pub(super) fn new(base: u32, sector: u32, unit: u32, size: u32, resume: u32) -> Self {
        Writer {
            base,
            sector,
            unit,
            size,
            pos: resume,
            flushed: resume,
            erased: resume,
            recorded: resume,
            stride_last: resume,
            stride: 1,
            buf: [0xFF; WRITE_BUF_LEN],
            buf_len: 0,
        }
    }

    /// Takes the slot from the write position up to `end` (a sector boundary; clamped to the
    /// end of the image's last sector) as erased already: `begin` found it recorded erased in
    /// idle time and read it back erased. `prepare` and the writes then erase nothing below
    /// it. Only at a sector-aligned write position with nothing buffered (as `begin` leaves
    /// it); otherwise, or for an `end` at or before what is erased, nothing changes.
    pub(super) fn assume_erased(&mut self, end: u32) {
        let image_end = self.size.div_ceil(self.sector).saturating_mul(self.sector);
        let end = end.min(image_end) / self.sector * self.sector;
        if self.buf_len == 0 && self.flushed == self.pos && self.flushed.is_multiple_of(self.sector)
        {
            self.erased = self.erased.max(end);
        }
    }

    /// The last sector boundary the journal may be asked to record for what is prepared
    /// once a `prepare` up to `end` (from [`prepare_end`](Self::prepare_end)) is done: the
    /// prepared region ends at `max(erased, end)`; records never pass the image size.
    pub(super) fn record_horizon(&self, end: u32) -> u32 {
        let top = self.erased.max(end).min(self.size);
        top / self.sector * self.sector
    }

    /// Journal records the writes up to `last` (a sector boundary) append at one per sector:
    /// the boundaries after the last recorded one.
    pub(super) fn records_to(&self, last: u32) -> u32 {
        last.saturating_sub(self.recorded) / self.sector
    }

    /// Plans the journal records up to `last` so that at most `room` are appended: every
    /// boundary if they fit, otherwise `last` and every `stride`-th boundary before it
    /// (`last - j * stride` sectors) after the last recorded one, with the smallest stride
    /// that fits ([`record_stride`]: `ceil(n / room)` for `n` boundaries, so
    /// `ceil(n / stride) <= room` records). Past `last`, every boundary again. A `room` of 0
    /// is taken as 1 (the sink's journal always has more).
    pub(super) fn plan_records(&mut self, last: u32, room: u32) {
        self.stride = record_stride(self.records_to(last), room.max(1));
        self.stride_last = last;
    }

    /// The sector boundary to record now, if any: the largest boundary up to
    /// `min(flushed, size)`, past `recorded`, that the record plan asks for.
    pub(super) fn due_record(&self) -> Option<u32> {
        let at = self.flushed.min(self.size) / self.sector * self.sector;
        if at <= self.recorded {
            return None;
        }
        if at >= self.stride_last {
            return Some(at);
        }
        // `recorded < at < stride_last`: the plan's points are `stride_last - j * step`;
        // the first one at or below `at` (none if the step does not fit below
        // `stride_last`).
        let step = u64::from(self.stride) * u64::from(self.sector);
        let behind = u64::from(self.stride_last - at).div_ceil(step.max(1)) * step;
        let due = u64::from(self.stride_last).checked_sub(behind)?;
        // `due < stride_last`: it fits a u32.
        (due > u64::from(self.recorded)).then_some(due as u32)
    }

    /// The journal record `save_state(at)` appends so that everything before `at` (the
    /// write position, a sector boundary) is durable: `Some(at)` if the journal does not
    /// record `at` yet (a region `prepare` planned sparsely) and the bytes below it are all
    /// written; `None` if it is recorded already.
    pub(super) fn state_record(&self, at: u32) -> Option<u32> {
        (self.recorded < at && self.flushed >= at).then_some(at)
    }

    /// After `save_state`'s extra record inside a region `prepare` planned sparsely: plans
    /// the rest of the region's records into the `room` the journal has left, so that its
    /// writes still append without a journal wrap.
    pub(super) fn replan_records(&mut self, room: Option<u32>) {
        if self.recorded < self.stride_last {
            self.plan_records(self.stride_last, room.unwrap_or(0));
        }
    }

    pub(super) fn check<E>(&self, offset: u32, len: usize) -> Result<(), SinkError<E>> {
        if offset != self.pos {
            return Err(SinkError::OutOfOrder {
                expected: self.pos,
                got: offset,
            });
        }
        let end = u64::from(offset) + len as u64;
        if end > u64::from(self.size) {
            return Err(SinkError::PastImageEnd {
                size: self.size,
                end,
            });
        }
        Ok(())
    }

    /// Checks a `prepare(offset, len)` and returns the slot-relative end of the sectors it
    /// gets ready: `[offset, offset + len)` clamped to the image size, rounded up to a
    /// sector. `None` for an empty range (nothing to do).
    pub(super) fn prepare_end<E>(
        &self,
        offset: u32,
        len: u32,
    ) -> Result<Option<u32>, SinkError<E>> {
        if offset != self.pos {
            return Err(SinkError::OutOfOrder {
                expected: self.pos,
                got: offset,
            });
        }
        let end = offset.saturating_add(len).min(self.size);
        if end <= offset {
            return Ok(None);
        }
        // `size <= capacity`, a sector multiple below the slot end: no overflow in practice;
        // saturate to a sector boundary anyway.
        let top = u32::MAX / self.sector * self.sector;
        Ok(Some(
            end.div_ceil(self.sector)
                .checked_mul(self.sector)
                .unwrap_or(top),
        ))
    }

    /// The next erase of a `prepare` up to `end` (from [`prepare_end`](Self::prepare_end)):
    /// the sectors from `erased` on, up to `end` or the next [`PREPARE_ERASE_MAX`]-aligned
    /// flash address, whichever comes first. `None` once everything up to `end` is erased.
    pub(super) fn next_prepare(&self, end: u32) -> Option<Op> {
        if self.erased >= end {
            return None;
        }
        let from = self.base + self.erased;
        let block_end = u64::from(from / PREPARE_ERASE_MAX + 1) * u64::from(PREPARE_ERASE_MAX);
        // `base + end` is a flash address (the end of the image's last sector): the cast
        // of the smaller of the two is lossless.
        let to = (u64::from(self.base) + u64::from(end)).min(block_end) as u32;
        Some(Op::Erase { from, to })
    }

    /// The next operation for `input`, of which `consumed` bytes are taken already (input
    /// may be moved into the buffer). `finalize` pads and flushes the buffered tail. `None`
    /// when everything given is written or buffered. Calling again without
    /// [`commit`](Self::commit) returns the same operation.
    pub(super) fn next(
        &mut self,
        input: &[u8],
        consumed: &mut usize,
        finalize: bool,
    ) -> Option<Op> {
        if let Some(offset) = self.due_record() {
            return Some(Op::Record { offset });
        }
        let src = self.next_program(input, consumed, finalize)?;
        if self.flushed >= self.erased {
            let from = self.base + self.erased;
            return Some(Op::Erase {
                from,
                to: from + self.sector,
            });
        }
        Some(Op::Program {
            addr: self.base + self.flushed,
            src,
        })
    }

    pub(super) fn next_program(
        &mut self,
        input: &[u8],
        consumed: &mut usize,
        finalize: bool,
    ) -> Option<Src> {
        let unit = self.unit as usize;
        // Bytes to the end of the sector holding `flushed`: a positive multiple of `unit`.
        let room = (self.sector - self.flushed % self.sector) as usize;
        let rest = input.get(*consumed..).unwrap_or(&[]);
        if self.buf_len == 0 && rest.len() >= WRITE_BUF_LEN {
            let len = rest.len().min(room);
            return Some(Src::Input {
                start: *consumed,
                len: len - len % unit,
            });
        }
        let cap = WRITE_BUF_LEN.min(room);
        let take = rest.len().min(cap.saturating_sub(self.buf_len));
        if let (Some(dst), Some(src)) = (
            self.buf.get_mut(self.buf_len..self.buf_len + take),
            rest.get(..take),
        ) {
            dst.copy_from_slice(src);
            self.buf_len += take;
            self.pos += take as u32;
            *consumed += take;
        }
        if self.buf_len == cap {
            return Some(Src::Buffer(cap));
        }
        if finalize && self.buf_len > 0 {
            let padded = self.buf_len.div_ceil(unit) * unit;
            if let Some(pad) = self.buf.get_mut(self.buf_len..padded) {
                pad.fill(0xFF);
            }
            return Some(Src::Buffer(padded));
        }
        None
    }

    /// The bytes of a [`Src`].
    pub(super) fn bytes<'a>(&'a self, src: Src, input: &'a [u8]) -> &'a [u8] {
        match src {
            Src::Buffer(n) => self.buf.get(..n).unwrap_or(&[]),
            Src::Input { start, len } => input.get(start..start + len).unwrap_or(&[]),
        }
    }

    /// Records that `op` was carried out.
    pub(super) fn commit(&mut self, op: Op, consumed: &mut usize) {
        match op {
            Op::Erase { to, .. } => self.erased = to - self.base,
            Op::Program {
                src: Src::Buffer(n),
                ..
            } => {
                self.flushed += n as u32;
                self.buf_len = 0;
            }
            Op::Program {
                src: Src::Input { len, .. },
                ..
            } => {
                self.flushed += len as u32;
                self.pos += len as u32;
                *consumed += len;
            }
            Op::Record { offset } => self.recorded = offset,
        }
    }
}
