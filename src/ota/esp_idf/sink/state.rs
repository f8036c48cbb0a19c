//! The state area: the newest caller state ([`OtaSink::save_state`]) in two sectors before
//! the journal, as plans and parsers over 64-byte chunks (no I/O). See the
//! [module docs](super#caller-state-two-sectors-before-the-journal).

use super::*;

/// Magic of a state record (`"OTAS"` in memory order).
pub(super) const STATE_MAGIC: u32 = 0x5341_544F;
/// Bytes of one record slot: the largest record (header, [`MAX_STATE_LEN`] bytes, CRC)
/// rounded up to [`STATE_CHUNK`].
pub(super) const STATE_SLOT_LEN: u32 = 576;
/// Record slots per sector (7 × 576 = 4032 of 4096 bytes; the rest stays erased).
pub(super) const STATE_SLOTS_PER_SECTOR: u8 = 7;
/// Record slots of the area (two sectors).
pub(super) const STATE_SLOTS: u8 = 2 * STATE_SLOTS_PER_SECTOR;
/// The header before the state bytes: magic, sequence, id, image size, `at`, length.
pub(super) const STATE_HEADER_LEN: usize = 50;
/// Bytes read or written at once: the slot length is a multiple of it and so is every
/// slot address (576 = 9 × 64), and the flash's `READ_SIZE` and `WRITE_SIZE` divide it.
pub(super) const STATE_CHUNK: usize = WRITE_BUF_LEN;
/// The area: two sectors.
pub(super) const STATE_AREA_LEN: u32 = 2 * SECTOR_SIZE;

/// The two sectors before a target slot's journal sector, when the image leaves them free.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct StateArea {
    /// Flash address of sector A (B follows it; the journal sector follows B).
    pub(super) start: u32,
}

impl StateArea {
    /// The area of `target` for an image of `size` bytes: `None` if the image's last
    /// sector reaches into it (or the slot is too small to have one), and always in a build
    /// without the `delta` feature, where nothing keeps state (the sink then neither scans
    /// nor tombstones the area: a resume point stays the journal's, which is always sound).
    pub(super) fn of(target: &UpdateTarget, size: u32) -> Option<Self> {
        if !cfg!(feature = "delta") {
            return None;
        }
        let start = target.journal.checked_sub(STATE_AREA_LEN)?;
        let image_end = u64::from(size).div_ceil(u64::from(SECTOR_SIZE)) * u64::from(SECTOR_SIZE);
        let fits = start >= target.offset && image_end <= u64::from(start - target.offset);
        fits.then_some(StateArea { start })
    }

    /// Flash address of record slot `slot` (0..14: A's seven, then B's).
    pub(super) fn slot_addr(&self, slot: u8) -> u32 {
        let sector = u32::from(slot / STATE_SLOTS_PER_SECTOR);
        let index = u32::from(slot % STATE_SLOTS_PER_SECTOR);
        self.start + sector * SECTOR_SIZE + index * STATE_SLOT_LEN
    }

    /// Flash address of the sector holding `slot`.
    pub(super) fn sector_addr(&self, slot: u8) -> u32 {
        self.start + u32::from(slot / STATE_SLOTS_PER_SECTOR) * SECTOR_SIZE
    }
}

/// A state record's fields (its state bytes stay on flash).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct StateHeader {
    /// Higher is newer.
    pub(super) seq: u32,
    /// The image id (all zero in a tombstone).
    pub(super) id: [u8; 32],
    /// The image size.
    pub(super) size: u32,
    /// The image bytes durable with this state.
    pub(super) at: u32,
    /// State bytes that follow the header (0 in a tombstone).
    pub(super) len: u16,
}

impl StateHeader {
    /// The record that kills every older one: id all zero, no state.
    pub(super) fn tombstone() -> Self {
        StateHeader {
            seq: 0,
            id: [0; 32],
            size: 0,
            at: 0,
            len: 0,
        }
    }

    /// A state, not a tombstone.
    pub(super) fn is_live(&self) -> bool {
        self.id != [0; 32] || self.len != 0
    }

    pub(super) fn encode(&self) -> [u8; STATE_HEADER_LEN] {
        let mut b = [0u8; STATE_HEADER_LEN];
        b[0..4].copy_from_slice(&STATE_MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&self.seq.to_le_bytes());
        b[8..40].copy_from_slice(&self.id);
        b[40..44].copy_from_slice(&self.size.to_le_bytes());
        b[44..48].copy_from_slice(&self.at.to_le_bytes());
        b[48..50].copy_from_slice(&self.len.to_le_bytes());
        b
    }

    /// The fields of a header with the right magic and a length of at most
    /// [`MAX_STATE_LEN`]; the CRC is checked by [`SlotParse`].
    pub(super) fn decode(b: &[u8; STATE_HEADER_LEN]) -> Option<Self> {
        let word = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let len = u16::from_le_bytes([b[48], b[49]]);
        if word(0) != STATE_MAGIC || usize::from(len) > MAX_STATE_LEN {
            return None;
        }
        let mut id = [0u8; 32];
        id.copy_from_slice(&b[8..40]);
        Some(StateHeader {
            seq: word(4),
            id,
            size: word(40),
            at: word(44),
            len,
        })
    }
}

/// What one record slot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum StateSlot {
    /// All 576 bytes read `0xFF`.
    Erased,
    /// A record whose magic and CRC match.
    Valid(StateHeader),
    /// Anything else: a torn record, image bytes, an old erase cut short.
    Garbage,
}

/// Parses one slot from [`STATE_CHUNK`]-byte chunks read in order, optionally copying the
/// state bytes out. Reads stop as soon as the slot is decided: after the CRC of a record,
/// after a header that is not one, after the first byte that is not `0xFF` of a slot
/// that cannot hold a record; an erased slot is read whole.
#[derive(Clone, Debug)]
pub(super) struct SlotParse {
    /// Bytes fed.
    read: usize,
    /// No byte other than `0xFF` seen.
    erased: bool,
    header: [u8; STATE_HEADER_LEN],
    decoded: Option<StateHeader>,
    /// The running CRC register over header and state (not inverted).
    crc: u32,
    stored: [u8; 4],
}

impl SlotParse {
    pub(super) fn new() -> Self {
        SlotParse {
            read: 0,
            erased: true,
            header: [0; STATE_HEADER_LEN],
            decoded: None,
            crc: 0xFFFF_FFFF,
            stored: [0; 4],
        }
    }

    /// Bytes of the slot this parse wants in all (a multiple of [`STATE_CHUNK`]).
    fn wanted(&self) -> usize {
        let header_read = self.read >= STATE_HEADER_LEN;
        let end = match self.decoded {
            Some(h) => STATE_HEADER_LEN + usize::from(h.len) + 4,
            None if self.erased || !header_read => STATE_SLOT_LEN as usize,
            None => 0,
        };
        end.div_ceil(STATE_CHUNK) * STATE_CHUNK
    }

    /// The next chunk to read: offset in the slot and length; `None` once decided.
    pub(super) fn next_read(&self) -> Option<(u32, usize)> {
        (self.read < self.wanted()).then_some((self.read as u32, STATE_CHUNK))
    }

    /// Feeds the chunk [`next_read`](Self::next_read) asked for; state bytes also go to
    /// `out` (those that fit).
    pub(super) fn feed(&mut self, chunk: &[u8], out: &mut [u8]) {
        for &b in chunk {
            let p = self.read;
            self.read += 1;
            self.erased &= b == 0xFF;
            if let Some(slot) = self.header.get_mut(p) {
                *slot = b;
                if p + 1 == STATE_HEADER_LEN {
                    self.decoded = StateHeader::decode(&self.header);
                    self.crc = !crate::ota::crc32::crc32_iso_hdlc(&self.header);
                }
                continue;
            }
            let Some(h) = self.decoded else { continue };
            let state_end = STATE_HEADER_LEN + usize::from(h.len);
            if p < state_end {
                self.crc = !crate::ota::crc32::crc32_reflected(self.crc, &[b]);
                if let Some(o) = out.get_mut(p - STATE_HEADER_LEN) {
                    *o = b;
                }
            } else if let Some(s) = self.stored.get_mut(p - state_end) {
                *s = b;
            }
        }
    }

    /// What the slot holds, once [`next_read`](Self::next_read) says it is decided.
    pub(super) fn finish(&self) -> StateSlot {
        if self.erased && self.read >= STATE_SLOT_LEN as usize {
            return StateSlot::Erased;
        }
        match self.decoded {
            Some(h)
                if self.read >= self.wanted() && !self.crc == u32::from_le_bytes(self.stored) =>
            {
                StateSlot::Valid(h)
            }
            _ => StateSlot::Garbage,
        }
    }
}

/// A valid record and where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct FoundState {
    /// Its slot (0..14).
    pub(super) slot: u8,
    pub(super) header: StateHeader,
}

/// What a scan of the area found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct StateScanResult {
    /// The valid record with the highest sequence number.
    pub(super) newest: Option<FoundState>,
    /// Bit `n`: slot `n` reads fully erased.
    pub(super) erased: u16,
}

impl StateScanResult {
    fn is_erased(&self, slot: u8) -> bool {
        self.erased & (1 << slot) != 0
    }

    /// The newest record if it is a state for `image` at a point at or below `durable`
    /// (a positive multiple of [`STATE_ALIGN`]): where `begin` then resumes.
    pub(super) fn resume_point(&self, image: &ImageDescriptor, durable: u32) -> Option<FoundState> {
        let f = self.newest?;
        let h = f.header;
        let usable = h.is_live()
            && h.id == image.id
            && h.size == image.size
            && h.at > 0
            && h.at <= durable
            && h.at.is_multiple_of(STATE_ALIGN);
        usable.then_some(f)
    }

    /// Whether the newest record is a live state (which a cleared download must kill).
    pub(super) fn newest_is_live(&self) -> bool {
        self.newest.is_some_and(|f| f.header.is_live())
    }
}

/// Scans the 14 slots of the area in order.
#[derive(Clone, Debug)]
pub(super) struct StateScan {
    area: StateArea,
    slot: u8,
    parse: SlotParse,
    result: StateScanResult,
}

impl StateScan {
    pub(super) fn new(area: StateArea) -> Self {
        StateScan {
            area,
            slot: 0,
            parse: SlotParse::new(),
            result: StateScanResult {
                newest: None,
                erased: 0,
            },
        }
    }

    /// The next chunk to read (flash address, length); `None` when the scan is over.
    pub(super) fn next_read(&self) -> Option<(u32, usize)> {
        if self.slot >= STATE_SLOTS {
            return None;
        }
        let (at, len) = self.parse.next_read()?;
        Some((self.area.slot_addr(self.slot) + at, len))
    }

    /// Feeds the chunk [`next_read`](Self::next_read) asked for.
    pub(super) fn feed(&mut self, chunk: &[u8]) {
        self.parse.feed(chunk, &mut []);
        if self.parse.next_read().is_some() {
            return;
        }
        match self.parse.finish() {
            StateSlot::Erased => self.result.erased |= 1 << self.slot,
            StateSlot::Valid(header) => {
                if self.result.newest.is_none_or(|n| header.seq > n.header.seq) {
                    self.result.newest = Some(FoundState {
                        slot: self.slot,
                        header,
                    });
                }
            }
            StateSlot::Garbage => {}
        }
        self.slot += 1;
        self.parse = SlotParse::new();
    }

    pub(super) fn result(&self) -> StateScanResult {
        self.result
    }
}

/// Where the next record goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct StateAppend {
    /// Erase this sector (flash address) first: the other sector than the newest record's,
    /// or A when there is no valid record and A's slot 0 is not erased.
    pub(super) erase: Option<u32>,
    /// The slot to write.
    pub(super) slot: u8,
    /// Its sequence number: one more than the newest.
    pub(super) seq: u32,
}

/// Plans an append after `scan`: the slot right after the newest record if it is in the
/// same sector and reads erased, else slot 0 of the other sector after erasing it. The
/// sector holding the newest valid record is never erased.
pub(super) fn plan_state_append(area: &StateArea, scan: &StateScanResult) -> StateAppend {
    let Some(newest) = scan.newest else {
        return StateAppend {
            erase: (!scan.is_erased(0)).then_some(area.start),
            slot: 0,
            seq: 1,
        };
    };
    let seq = newest.header.seq.wrapping_add(1);
    let next = newest.slot + 1;
    if !next.is_multiple_of(STATE_SLOTS_PER_SECTOR) && scan.is_erased(next) {
        return StateAppend {
            erase: None,
            slot: next,
            seq,
        };
    }
    let other = if newest.slot < STATE_SLOTS_PER_SECTOR {
        STATE_SLOTS_PER_SECTOR
    } else {
        0
    };
    StateAppend {
        erase: Some(area.sector_addr(other)),
        slot: other,
        seq,
    }
}

/// A record to write, chunk by chunk from a [`STATE_CHUNK`]-byte buffer.
pub(super) struct StateRecord<'a> {
    header: [u8; STATE_HEADER_LEN],
    state: &'a [u8],
    crc: [u8; 4],
}

impl<'a> StateRecord<'a> {
    /// `state` must be at most [`MAX_STATE_LEN`] bytes and `header.len` its length.
    pub(super) fn new(header: &StateHeader, state: &'a [u8]) -> Self {
        let header = header.encode();
        let reg = !crate::ota::crc32::crc32_iso_hdlc(&header);
        let crc = crate::ota::crc32::crc32_reflected(reg, state);
        StateRecord {
            header,
            state,
            crc: crc.to_le_bytes(),
        }
    }

    /// Bytes of the record before padding.
    fn len(&self) -> usize {
        STATE_HEADER_LEN + self.state.len() + 4
    }

    /// Fills `buf` with the record's `k`-th chunk and returns its length, rounded up to
    /// `unit` (padding `0xFF`); `None` past the record's end. Chunks are written in order,
    /// so the CRC lands last and a cut write leaves an invalid record.
    pub(super) fn chunk(
        &self,
        k: usize,
        unit: usize,
        buf: &mut [u8; STATE_CHUNK],
    ) -> Option<usize> {
        let from = k * STATE_CHUNK;
        if from >= self.len() {
            return None;
        }
        let state_end = STATE_HEADER_LEN + self.state.len();
        for (i, b) in buf.iter_mut().enumerate() {
            let p = from + i;
            *b = if p < STATE_HEADER_LEN {
                self.header[p]
            } else if p < state_end {
                self.state
                    .get(p - STATE_HEADER_LEN)
                    .copied()
                    .unwrap_or(0xFF)
            } else {
                self.crc.get(p - state_end).copied().unwrap_or(0xFF)
            };
        }
        let n = (self.len() - from).min(STATE_CHUNK);
        Some(
            n.div_ceil(unit.max(1))
                .saturating_mul(unit.max(1))
                .min(STATE_CHUNK),
        )
    }
}

/// The state a session resumed with (or last saved): where its record is, to read it back
/// for `load_state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct StateRef {
    pub(super) slot: u8,
    pub(super) seq: u32,
    pub(super) len: u16,
}

impl StateRef {
    /// The record `header` just written in `slot`.
    pub(super) fn at(slot: u8, header: &StateHeader) -> Self {
        StateRef {
            slot,
            seq: header.seq,
            len: header.len,
        }
    }

    /// The state's length if `slot` (read back) is still this record.
    pub(super) fn loaded(&self, slot: StateSlot) -> Option<usize> {
        match slot {
            StateSlot::Valid(h) if h.seq == self.seq && h.len == self.len => {
                Some(usize::from(h.len))
            }
            _ => None,
        }
    }
}

impl From<FoundState> for StateRef {
    fn from(f: FoundState) -> Self {
        StateRef {
            slot: f.slot,
            seq: f.header.seq,
            len: f.header.len,
        }
    }
}

/// Checks a `save_state(at, state)` against the session: the write position, alignment and
/// length. Returns the area, or `None` if the image leaves no room for one (then nothing
/// is kept).
pub(super) fn check_save<E>(
    w: &Writing,
    at: u32,
    state: &[u8],
) -> Result<Option<StateArea>, SinkError<E>> {
    if at != w.writer.pos {
        return Err(SinkError::OutOfOrder {
            expected: w.writer.pos,
            got: at,
        });
    }
    if at == 0 || !at.is_multiple_of(STATE_ALIGN) {
        return Err(SinkError::StatePoint { at });
    }
    if state.len() > MAX_STATE_LEN {
        return Err(SinkError::StateTooLong { len: state.len() });
    }
    Ok(StateArea::of(&w.target, w.image.size))
}

/// The record `save_state` appends for the session's image (its sequence number is
/// planned by the append).
pub(super) fn state_header(w: &Writing, at: u32, len: usize) -> StateHeader {
    StateHeader {
        seq: 0,
        id: w.image.id,
        size: w.image.size,
        at,
        // check_save: len <= MAX_STATE_LEN.
        len: len.min(MAX_STATE_LEN) as u16,
    }
}

/// The area whose live newest state `abort` kills: the session's image's, or, outside a
/// session, the one of the download the journal records (none for an empty journal or
/// idle-erase progress: the slot may then hold an activated image the area overlaps).
pub(super) fn abort_area(target: &UpdateTarget, rec: Option<&JournalRecord>) -> Option<StateArea> {
    let rec = rec.filter(|r| !r.is_erase_progress())?;
    StateArea::of(target, rec.size)
}

/// One flash operation of a [`StateJob`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum StateOp {
    /// Read `len` bytes at `addr` into the chunk buffer, then [`StateJob::feed`] them.
    Read { addr: u32, len: usize },
    /// Erase the sector at `from`.
    Erase { from: u32 },
    /// Write the first `len` bytes of the chunk buffer at `addr`.
    Write { addr: u32, len: usize },
}

/// What a [`StateJob`] is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum StateGoal {
    /// Scan the area ([`StateJob::scan`]).
    Scan,
    /// Scan, then append this record (its sequence number is planned) with the caller's
    /// state ([`StateJob::written`]).
    Save(StateHeader),
    /// Scan, then append a tombstone if the newest record is a live state.
    Kill,
    /// Read this record back, its state into the caller's buffer ([`StateJob::loaded`]).
    Load(StateRef),
}

#[derive(Clone, Debug)]
enum Phase {
    Scan(StateScan),
    Load(SlotParse),
    Erase(StateAppend),
    /// Writing chunk `k` of the record into the planned slot.
    Write(StateAppend, usize),
    Done,
}

/// Everything the sink does in the state area, as flash operations (no I/O): the shells
/// run one loop over [`next`](Self::next), [`feed`](Self::feed) and
/// [`commit`](Self::commit), differing only in `.await`.
#[derive(Clone, Debug)]
pub(super) struct StateJob {
    area: StateArea,
    goal: StateGoal,
    phase: Phase,
    scan: Option<StateScanResult>,
    /// The record being appended, with its planned sequence number.
    header: StateHeader,
    crc: [u8; 4],
    written: Option<StateRef>,
    loaded: Option<usize>,
}

impl StateJob {
    pub(super) fn new(area: StateArea, goal: StateGoal) -> Self {
        let phase = match goal {
            StateGoal::Load(_) => Phase::Load(SlotParse::new()),
            _ => Phase::Scan(StateScan::new(area)),
        };
        StateJob {
            area,
            goal,
            phase,
            scan: None,
            header: StateHeader::tombstone(),
            crc: [0; 4],
            written: None,
            loaded: None,
        }
    }

    /// The next operation; `None` when the job is done. `state` is the caller's state for
    /// [`StateGoal::Save`] (empty otherwise); a [`StateOp::Write`]'s bytes are put in `buf`,
    /// rounded up to `unit` (the flash's `WRITE_SIZE`, which divides 64). Calling again
    /// without [`commit`](Self::commit) returns the same operation.
    pub(super) fn next(
        &mut self,
        buf: &mut [u8; STATE_CHUNK],
        state: &[u8],
        unit: usize,
    ) -> Option<StateOp> {
        loop {
            match &self.phase {
                Phase::Scan(scan) => {
                    if let Some((addr, len)) = scan.next_read() {
                        return Some(StateOp::Read { addr, len });
                    }
                    let result = scan.result();
                    self.scan = Some(result);
                    self.phase = match self.goal {
                        StateGoal::Save(header) => self.start_append(&result, header, state),
                        StateGoal::Kill if result.newest_is_live() => {
                            self.start_append(&result, StateHeader::tombstone(), &[])
                        }
                        _ => Phase::Done,
                    };
                }
                Phase::Load(parse) => {
                    let StateGoal::Load(kept) = self.goal else {
                        self.phase = Phase::Done;
                        continue;
                    };
                    if let Some((at, len)) = parse.next_read() {
                        let addr = self.area.slot_addr(kept.slot) + at;
                        return Some(StateOp::Read { addr, len });
                    }
                    self.loaded = kept.loaded(parse.finish());
                    self.phase = Phase::Done;
                }
                Phase::Erase(plan) => return plan.erase.map(|from| StateOp::Erase { from }),
                &Phase::Write(plan, k) => {
                    let len = usize::from(self.header.len);
                    let record = StateRecord {
                        header: self.header.encode(),
                        state: state.get(..len).unwrap_or(&[]),
                        crc: self.crc,
                    };
                    let addr = self.area.slot_addr(plan.slot) + (k * STATE_CHUNK) as u32;
                    match record.chunk(k, unit, buf) {
                        Some(len) => return Some(StateOp::Write { addr, len }),
                        None => {
                            self.written = Some(StateRef::at(plan.slot, &self.header));
                            self.phase = Phase::Done;
                        }
                    }
                }
                Phase::Done => return None,
            }
        }
    }

    fn start_append(&mut self, scan: &StateScanResult, header: StateHeader, state: &[u8]) -> Phase {
        let plan = plan_state_append(&self.area, scan);
        self.header = StateHeader {
            seq: plan.seq,
            ..header
        };
        let len = usize::from(self.header.len);
        self.crc = StateRecord::new(&self.header, state.get(..len).unwrap_or(&[])).crc;
        match plan.erase {
            Some(_) => Phase::Erase(plan),
            None => Phase::Write(plan, 0),
        }
    }

    /// Feeds the bytes a [`StateOp::Read`] asked for; state bytes of a load go to `out`.
    pub(super) fn feed(&mut self, chunk: &[u8], out: &mut [u8]) {
        match &mut self.phase {
            Phase::Scan(scan) => scan.feed(chunk),
            Phase::Load(parse) => parse.feed(chunk, out),
            _ => {}
        }
    }

    /// Records that `op` was carried out (a read is done by [`feed`](Self::feed)).
    pub(super) fn commit(&mut self, op: StateOp) {
        match (op, &self.phase) {
            (StateOp::Erase { .. }, &Phase::Erase(plan)) => self.phase = Phase::Write(plan, 0),
            (StateOp::Write { .. }, &Phase::Write(plan, k)) => {
                self.phase = Phase::Write(plan, k + 1)
            }
            _ => {}
        }
    }

    /// What the scan found (every goal but [`StateGoal::Load`]).
    pub(super) fn scan(&self) -> Option<StateScanResult> {
        self.scan
    }

    /// Where [`StateGoal::Save`] put its record.
    pub(super) fn written(&self) -> Option<StateRef> {
        self.written
    }

    /// The state's length if [`StateGoal::Load`] found its record.
    pub(super) fn loaded(&self) -> Option<usize> {
        self.loaded
    }
}
