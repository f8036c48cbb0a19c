//! Delta updates: a resumable decoder for detools "sequential" patches, the format
//! Espressif's `esp_delta_ota` applies.
//!
//! [`DeltaDecoder`] takes the patch as it arrives, in slices of any size, and hands out what
//! to write, piece by piece; it never reads flash or writes output itself (sans-IO). Each
//! output piece is either
//! - [`Event::Diff`]: output byte `i` = `base[base_offset + i]` wrapping-add `add[i]`, where
//!   `base` is the image the patch was made against (the running slot); or
//! - [`Event::Extra`]: bytes to output as they are.
//!
//! The decoder keeps no allocation and no pointer: its state can be saved to a
//! [`STATE_LEN`]-byte record at any point between two calls and restored after a power cut,
//! and feeding the patch on from [`DeltaDecoder::patch_consumed`] then yields exactly the
//! output that was still missing.
//!
//! # The format, as decoded here
//!
//! A patch starts with an uncompressed header:
//! - one byte: bit 7 zero, bits 6..4 the patch type (0 sequential; 1 in-place and 2
//!   hdiffpatch are refused), bits 3..0 the compression (0 none, 2 crle, 4 heatshrink are
//!   decoded; 1 lzma, 3 bz2, 5 zstd, 6 lz4 are refused);
//! - the target (output) size as a number (below). A size of 0 ends the patch here.
//!
//! Everything after the header is one compressed stream. Heatshrink streams start with a
//! byte holding `window_sz2 - 4` (high nibble) and `lookahead_sz2 - 3` (low nibble);
//! `detools create_patch` defaults, and esp_delta_ota requires, 8 and 7 (byte `0x44`). This
//! decoder takes any `window_sz2` from 4 to 8 and `lookahead_sz2` from 3 to `window_sz2 - 1`.
//! The decompressed stream is:
//! - the size of a data-format pre-pass (`--data-format`); only 0, none, is decoded;
//! - then, until the target size is reached, blocks of: a diff size and that many diff bytes
//!   (each added to the next base byte), an extra size and that many literal bytes, and a
//!   signed adjustment moved over the base position. The base position starts at 0 and
//!   advances with every diff byte.
//!
//! Numbers are sign and magnitude, least significant group first: the first byte holds a
//! continuation bit (7), a sign bit (6) and six value bits; every following byte holds a
//! continuation bit and seven more value bits. The decoder takes up to ten bytes and
//! magnitudes up to `i64::MAX`.
//!
//! The patch ends with the adjustment after the block that reaches the target size.
//! [`Event::Done`] says so; bytes fed after it are not consumed (the heatshrink stream's
//! last byte may carry unused padding bits).
//!
//! # Contract
//!
//! - [`DeltaDecoder::decode`] consumes input until it has output to hand out, the input is
//!   exhausted, or the patch ends, and returns how many bytes it consumed with the event.
//!   [`Event::NeedInput`] always means the whole slice was consumed; an empty slice gives
//!   `NeedInput` (or the pending output of a back-reference, or `Done`).
//! - Events borrow the decoder (output of compressed patches sits in its 1 KiB buffer) or,
//!   for uncompressed patches, the input slice itself (no copy). Write an event's bytes
//!   before the next call; the next call reuses the buffer.
//! - Malformed input of any kind gives a typed [`DeltaError`], never a panic, and never an
//!   endless loop. The work is linear in the patch and the target size: heatshrink expands
//!   at most about 64-fold, and a patch may hold at most `target size + 1` blocks (detools
//!   never makes more), so a CRLE run of billions of zeros read as empty blocks is refused
//!   ([`Corrupt::TooManyBlocks`]). Check [`DeltaDecoder::target_size`] against the size
//!   you expect (the manifest's) as soon as it is known.
//! - A diff is checked against `base_len` before its first byte is handed out:
//!   [`DeltaError::BaseOutOfRange`].
//! - The patch's identity is not in the saved state: keep the state in a journal record bound
//!   to the patch (its digest or URL), as the crate's download journal does.
//!
//! # RAM
//!
//! `size_of::<DeltaDecoder>()` is 1392 bytes (x86_64, thumbv7em and riscv32imc alike; 624
//! with the 256-byte output buffer the update flow uses, `DeltaDecoder<256>`): the
//! 256-byte heatshrink window, the 1024-byte output buffer ([`OUTPUT_BUFFER_LEN`]) and about
//! 110 bytes of counters. The saved state is [`STATE_LEN`] = 335 bytes (the window and the
//! counters, without the output buffer, which is empty between calls). Unit tests check both
//! figures. The decoder needs no stack beyond its calls' small frames; the caller adds a
//! buffer for the base bytes of a diff (any size: a diff event can be applied in pieces).
//! For comparison, esp_delta_ota's decoder is 720 bytes (x86_64; it has a 256-byte input
//! buffer this decoder does without) plus a 1 KiB read buffer in its example.
//!
//! # Not supported
//!
//! In-place and hdiffpatch patch types; lzma, bz2, zstd and lz4 compression; heatshrink
//! windows above 2^8 bytes; `--data-format` patches; target images of 4 GiB or more. Each
//! is refused with its own [`DeltaError`] variant. esp_delta_ota's own 64-byte header
//! (magic `0xfccdde10`, base image digest) is not parsed here: strip it and check the digest
//! before feeding the detools patch that follows.
//!
//! # Example
//!
//! ```
//! use cellular_ota::delta::{DeltaDecoder, Event};
//!
//! // `detools create_patch -c none` from "hello world" to "hello there": header (sequential,
//! // none), target size 11, no data format, a diff of 6 (all zero: "hello " is unchanged), an
//! // extra of 5 ("there"), adjustment -5.
//! let base = b"hello world";
//! let patch = [0, 11, 0, 6, 0, 0, 0, 0, 0, 0, 5, b't', b'h', b'e', b'r', b'e', 0x45];
//! let mut out = Vec::new();
//! let mut dec = DeltaDecoder::new(base.len() as u32);
//! let mut input = &patch[..];
//! loop {
//!     let (used, event) = dec.decode(input).unwrap();
//!     input = &input[used..];
//!     match event {
//!         Event::Diff { base_offset, add, .. } => {
//!             let base = &base[base_offset as usize..][..add.len()];
//!             out.extend(base.iter().zip(add).map(|(b, a)| b.wrapping_add(*a)));
//!         }
//!         Event::Extra { data, .. } => out.extend_from_slice(data),
//!         Event::NeedInput => break, // read more from the network here
//!         Event::Stopped => {} // only from decode_until
//!         Event::Done => break,
//!     }
//! }
//! assert_eq!(dec.finish(), Ok(11));
//! assert_eq!(out, b"hello there");
//! ```

mod crle;
mod error;
mod heatshrink;
mod state;

pub use error::{Corrupt, DeltaError};
pub use state::{STATE_LEN, STATE_VERSION};

use crle::Crle;
use heatshrink::Heatshrink;

/// Bytes of output a compressed patch hands out per event at most.
pub const OUTPUT_BUFFER_LEN: usize = 1024;

/// The compressions this decoder takes (detools numbers 0, 4 and 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Compression {
    /// `-c none` (0).
    None,
    /// `-c heatshrink` (4); the settings come from the stream's first byte and are 0 until
    /// it was read.
    Heatshrink {
        /// log2 of the window size.
        window_sz2: u8,
        /// log2 of the longest back-reference.
        lookahead_sz2: u8,
    },
    /// `-c crle` (2).
    Crle,
}

/// What the caller does next, from [`DeltaDecoder::decode`].
#[derive(Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Event<'a> {
    /// The input slice is used up: call again with the patch's next bytes.
    NeedInput,
    /// Output bytes `to_offset .. to_offset + add.len()`: byte `i` is
    /// `base[base_offset + i].wrapping_add(add[i])` (see [`add_base`]).
    Diff {
        /// Where in the output these bytes go.
        to_offset: u32,
        /// Where in the base image the bytes to add to are; `base_offset + add.len()` is at
        /// most the `base_len` given to [`DeltaDecoder::new`].
        base_offset: u32,
        /// The differences, one per output byte.
        add: &'a [u8],
    },
    /// Output bytes `to_offset .. to_offset + data.len()`, as they are.
    Extra {
        /// Where in the output these bytes go.
        to_offset: u32,
        /// The bytes.
        data: &'a [u8],
    },
    /// The patch is complete: the whole target has been handed out. Further calls consume
    /// nothing and return `Done` again.
    Done,
    /// [`DeltaDecoder::decode_until`] only: the output position reached the given stop and
    /// more output follows. Every byte before the stop has been handed out; this is the
    /// point to [`save`](DeltaDecoder::save) a checkpoint. Call again with a later stop.
    Stopped,
}

/// Turns base bytes into output bytes in place: `buf[i] = buf[i].wrapping_add(add[i])`,
/// over the shorter of the two. Read the base bytes of an [`Event::Diff`] into `buf`, then
/// call this.
pub fn add_base(buf: &mut [u8], add: &[u8]) {
    for (b, a) in buf.iter_mut().zip(add) {
        *b = b.wrapping_add(*a);
    }
}

/// Where the parser is in the patch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Phase {
    /// The header byte (type and compression).
    Header = 0,
    /// The header's target size.
    TargetSize = 1,
    /// The heatshrink settings byte.
    StreamHeader = 2,
    /// The data-format pre-pass size.
    DataFormat = 3,
    DiffSize = 4,
    DiffData = 5,
    ExtraSize = 6,
    ExtraData = 7,
    Adjustment = 8,
    Done = 9,
}

impl Phase {
    pub(crate) fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Phase::Header,
            1 => Phase::TargetSize,
            2 => Phase::StreamHeader,
            3 => Phase::DataFormat,
            4 => Phase::DiffSize,
            5 => Phase::DiffData,
            6 => Phase::ExtraSize,
            7 => Phase::ExtraData,
            8 => Phase::Adjustment,
            9 => Phase::Done,
            _ => return None,
        })
    }
}

/// A detools number being read: sign and magnitude, six bits in the first byte, seven in
/// each following one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Number {
    pub(crate) magnitude: u64,
    /// Bit position of the next byte's value bits; 0 before the first byte.
    pub(crate) shift: u8,
    pub(crate) negative: bool,
}

/// Largest shift that still takes a byte: ten bytes in all (6 + 9 * 7 = 69 bits, of which
/// 63 may be set).
pub(crate) const MAX_NUMBER_SHIFT: u8 = 62;

impl Number {
    const fn new() -> Self {
        Number {
            magnitude: 0,
            shift: 0,
            negative: false,
        }
    }

    /// One byte; `Some(value)` when it was the last.
    fn push(&mut self, b: u8) -> Result<Option<i64>, Corrupt> {
        if self.shift == 0 {
            self.negative = b & 0x40 != 0;
            self.magnitude = u64::from(b & 0x3f);
            self.shift = 6;
        } else {
            let payload = u64::from(b & 0x7f);
            if self.shift > MAX_NUMBER_SHIFT || (payload << self.shift) >> self.shift != payload {
                return Err(Corrupt::Number);
            }
            self.magnitude |= payload << self.shift;
            self.shift += 7;
        }
        if b & 0x80 != 0 {
            return Ok(None);
        }
        let m = i64::try_from(self.magnitude).map_err(|_| Corrupt::Number)?;
        let v = if self.negative { -m } else { m };
        *self = Number::new();
        Ok(Some(v))
    }
}

/// Where an event's bytes are (resolved to a slice once the parser is done with `self`).
enum Piece {
    NeedInput,
    Stopped,
    Diff {
        to_offset: u32,
        base_offset: u32,
        from: Src,
    },
    Extra {
        to_offset: u32,
        from: Src,
    },
    Done,
}

/// The first `n` bytes of the output buffer, or a range of the input.
enum Src {
    Buffer(usize),
    Input(usize, usize),
}

/// A resumable decoder of detools sequential patches (compression none, heatshrink or
/// crle). See the [module documentation](self) for the format, the contract and the RAM.
///
/// `OUT` is the output buffer's length: the most bytes one event of a compressed patch hands
/// out (default [`OUTPUT_BUFFER_LEN`]; [`DeltaDecoder::new`] makes that one). A smaller
/// buffer ([`DeltaDecoder::with_buffer`]) costs RAM only in more, shorter events; the update
/// flow uses 256 bytes. Saved states do not depend on it.
#[derive(Clone)]
pub struct DeltaDecoder<const OUT: usize = OUTPUT_BUFFER_LEN> {
    pub(crate) phase: Phase,
    /// The patch's first byte, once read.
    pub(crate) header: u8,
    pub(crate) number: Number,
    pub(crate) to_size: u32,
    pub(crate) to_pos: u32,
    pub(crate) base_pos: i64,
    pub(crate) base_len: u32,
    /// Bytes left in the current diff or extra block.
    pub(crate) remaining: u32,
    /// Blocks begun (diff sizes read); at most `to_size + 1`.
    pub(crate) blocks: u64,
    pub(crate) consumed: u64,
    pub(crate) heatshrink: Heatshrink,
    pub(crate) crle: Crle,
    /// Set by the first error; every later call returns it.
    failed: Option<DeltaError>,
    buf: [u8; OUT],
}

impl<const OUT: usize> core::fmt::Debug for DeltaDecoder<OUT> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DeltaDecoder")
            .field("phase", &self.phase)
            .field("to_size", &self.to_size)
            .field("to_pos", &self.to_pos)
            .field("base_pos", &self.base_pos)
            .field("consumed", &self.consumed)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

const COMPRESSION_NONE: u8 = 0;
const COMPRESSION_CRLE: u8 = 2;
const COMPRESSION_HEATSHRINK: u8 = 4;

/// Checks a header byte: `Ok(())` for a sequential patch in a supported compression.
pub(crate) fn check_header(b: u8) -> Result<(), DeltaError> {
    if b & 0x80 != 0 {
        return Err(DeltaError::BadHeader);
    }
    let patch_type = (b >> 4) & 0x07;
    if patch_type != 0 {
        return Err(DeltaError::UnsupportedPatchType(patch_type));
    }
    match b & 0x0f {
        COMPRESSION_NONE | COMPRESSION_CRLE | COMPRESSION_HEATSHRINK => Ok(()),
        c => Err(DeltaError::UnsupportedCompression(c)),
    }
}

/// Decompresses `input` into `out` with the header's compression. Returns `(consumed,
/// produced)`; `produced == 0` means the whole input was consumed (or an error). A corrupt
/// byte after some output is left for the next call, so the output before an error does
/// not depend on how the patch was sliced.
fn inflate(
    header: u8,
    heatshrink: &mut Heatshrink,
    crle: &mut Crle,
    input: &[u8],
    out: &mut [u8],
) -> Result<(usize, usize), DeltaError> {
    match header & 0x0f {
        COMPRESSION_HEATSHRINK => Ok(heatshrink.decode(input, out)),
        COMPRESSION_CRLE => Ok(crle.decode(input, out)?),
        _ => {
            let n = input.len().min(out.len());
            if let (Some(dst), Some(src)) = (out.get_mut(..n), input.get(..n)) {
                dst.copy_from_slice(src);
            }
            Ok((n, n))
        }
    }
}

impl DeltaDecoder {
    /// A decoder for a patch against a base image of `base_len` bytes (diffs outside it are
    /// refused with [`DeltaError::BaseOutOfRange`]; pass the slot size, or `u32::MAX`, if
    /// the image's length is not known), with a [`OUTPUT_BUFFER_LEN`]-byte output buffer.
    pub const fn new(base_len: u32) -> Self {
        Self::with_buffer(base_len)
    }
}

impl<const OUT: usize> DeltaDecoder<OUT> {
    /// [`new`](DeltaDecoder::new) with an `OUT`-byte output buffer (at least 1).
    pub const fn with_buffer(base_len: u32) -> Self {
        DeltaDecoder {
            phase: Phase::Header,
            header: 0,
            number: Number::new(),
            to_size: 0,
            to_pos: 0,
            base_pos: 0,
            base_len,
            remaining: 0,
            blocks: 0,
            consumed: 0,
            heatshrink: Heatshrink::new(),
            crle: Crle::new(),
            failed: None,
            buf: [0; OUT],
        }
    }

    /// Consumes patch bytes from `input` and returns how many it took, with what to do next.
    ///
    /// It stops at the first output piece (an [`Event::Diff`] or [`Event::Extra`], at most
    /// `OUT` ([`OUTPUT_BUFFER_LEN`]) bytes, or the rest of `input` for an uncompressed patch), at
    /// the end of `input` ([`Event::NeedInput`], every byte consumed) or at the patch's end
    /// ([`Event::Done`]). Call it again with `&input[consumed..]` until `NeedInput`, then
    /// with the next bytes that arrive.
    ///
    /// # Errors
    ///
    /// A [`DeltaError`] for a patch this decoder refuses or that breaks the format. The
    /// decoder then stays failed.
    pub fn decode<'a>(&'a mut self, input: &'a [u8]) -> Result<(usize, Event<'a>), DeltaError> {
        self.decode_until(input, u32::MAX)
    }

    /// [`decode`](Self::decode), with output pieces that never cross output offset `stop`:
    /// when the output position is `stop` and the patch has more output, it returns
    /// [`Event::Stopped`] (having consumed only what precedes that output), so that a
    /// checkpoint can be taken exactly there. A `stop` at or before the output position
    /// stops at once, before any more output.
    ///
    /// # Errors
    ///
    /// As [`decode`](Self::decode).
    pub fn decode_until<'a>(
        &'a mut self,
        input: &'a [u8],
        stop: u32,
    ) -> Result<(usize, Event<'a>), DeltaError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let (used, piece) = match self.step(input, stop) {
            Ok(r) => r,
            Err(e) => {
                self.failed = Some(e);
                return Err(e);
            }
        };
        self.consumed = self.consumed.saturating_add(used as u64);
        let event = match piece {
            Piece::NeedInput => Event::NeedInput,
            Piece::Done => Event::Done,
            Piece::Stopped => Event::Stopped,
            Piece::Diff {
                to_offset,
                base_offset,
                from,
            } => Event::Diff {
                to_offset,
                base_offset,
                add: self.resolve(input, from),
            },
            Piece::Extra { to_offset, from } => Event::Extra {
                to_offset,
                data: self.resolve(input, from),
            },
        };
        Ok((used, event))
    }

    fn resolve<'a>(&'a self, input: &'a [u8], from: Src) -> &'a [u8] {
        match from {
            Src::Buffer(n) => self.buf.get(..n).unwrap_or_default(),
            Src::Input(a, b) => input.get(a..b).unwrap_or_default(),
        }
    }

    /// The header's compression number (0 before the header).
    fn compression_id(&self) -> u8 {
        self.header & 0x0f
    }

    fn step(&mut self, input: &[u8], stop: u32) -> Result<(usize, Piece), DeltaError> {
        let mut i = 0;
        loop {
            match self.phase {
                Phase::Header => {
                    let Some(&b) = input.get(i) else {
                        return Ok((i, Piece::NeedInput));
                    };
                    i += 1;
                    check_header(b)?;
                    self.header = b;
                    self.phase = Phase::TargetSize;
                }
                Phase::TargetSize => {
                    let Some(&b) = input.get(i) else {
                        return Ok((i, Piece::NeedInput));
                    };
                    i += 1;
                    let Some(v) = self.number.push(b).map_err(|_| DeltaError::BadHeader)? else {
                        continue;
                    };
                    let v = u64::try_from(v).map_err(|_| DeltaError::BadHeader)?;
                    self.to_size = u32::try_from(v).map_err(|_| DeltaError::TargetTooLarge(v))?;
                    self.phase = if self.to_size == 0 {
                        Phase::Done
                    } else if self.compression_id() == COMPRESSION_HEATSHRINK {
                        Phase::StreamHeader
                    } else {
                        Phase::DataFormat
                    };
                }
                Phase::StreamHeader => {
                    let Some(&b) = input.get(i) else {
                        return Ok((i, Piece::NeedInput));
                    };
                    i += 1;
                    self.heatshrink
                        .start(b)
                        .map_err(|(window_sz2, lookahead_sz2)| {
                            DeltaError::UnsupportedHeatshrink {
                                window_sz2,
                                lookahead_sz2,
                            }
                        })?;
                    self.phase = Phase::DataFormat;
                }
                Phase::DataFormat | Phase::DiffSize | Phase::ExtraSize | Phase::Adjustment => {
                    let mut one = [0u8; 1];
                    let (c, p) = inflate(
                        self.header,
                        &mut self.heatshrink,
                        &mut self.crle,
                        input.get(i..).unwrap_or_default(),
                        &mut one,
                    )?;
                    i += c;
                    if p == 0 {
                        return Ok((i, Piece::NeedInput));
                    }
                    if let Some(v) = self.number.push(one[0])? {
                        self.on_number(v)?;
                    }
                }
                Phase::DiffData | Phase::ExtraData => {
                    let rest = input.get(i..).unwrap_or_default();
                    let room = stop.saturating_sub(self.to_pos);
                    if room == 0 {
                        return Ok((i, Piece::Stopped));
                    }
                    let want = self.remaining.min(room) as usize;
                    let (n, from) = if self.compression_id() == COMPRESSION_NONE {
                        let n = want.min(rest.len());
                        (n, Src::Input(i, i + n))
                    } else {
                        let lim = want.min(OUT);
                        let out = self.buf.get_mut(..lim).unwrap_or_default();
                        let (c, p) =
                            inflate(self.header, &mut self.heatshrink, &mut self.crle, rest, out)?;
                        i += c;
                        (p, Src::Buffer(p))
                    };
                    if n == 0 {
                        return Ok((i, Piece::NeedInput));
                    }
                    if let Src::Input(..) = from {
                        i += n;
                    }
                    return Ok((i, self.advance(n as u32, from)));
                }
                Phase::Done => return Ok((i, Piece::Done)),
            }
        }
    }

    /// Books `n` output bytes of the current data block and describes them.
    fn advance(&mut self, n: u32, from: Src) -> Piece {
        let to_offset = self.to_pos;
        // n <= remaining <= to_size - to_pos, checked when the block's size was read.
        self.to_pos += n;
        self.remaining -= n;
        if self.phase == Phase::DiffData {
            // base_pos .. base_pos + remaining was checked to lie within 0..=base_len.
            let base_offset = self.base_pos as u32;
            self.base_pos += i64::from(n);
            if self.remaining == 0 {
                self.phase = Phase::ExtraSize;
            }
            Piece::Diff {
                to_offset,
                base_offset,
                from,
            }
        } else {
            if self.remaining == 0 {
                self.phase = Phase::Adjustment;
            }
            Piece::Extra { to_offset, from }
        }
    }

    /// A block size (or the data-format size, or an adjustment) was read.
    fn on_number(&mut self, v: i64) -> Result<(), DeltaError> {
        match self.phase {
            Phase::DataFormat => {
                if v > 0 {
                    return Err(DeltaError::UnsupportedDataFormat);
                }
                if v < 0 {
                    return Err(Corrupt::NegativeSize.into());
                }
                self.phase = Phase::DiffSize;
            }
            Phase::DiffSize | Phase::ExtraSize => {
                if self.phase == Phase::DiffSize {
                    // detools emits a block only after its scan position advanced, so a
                    // patch has at most `to_size + 1` of them; more are empty blocks that
                    // would let a few compressed bytes keep the decoder busy for billions
                    // of steps.
                    self.blocks += 1;
                    if self.blocks > u64::from(self.to_size) + 1 {
                        return Err(Corrupt::TooManyBlocks.into());
                    }
                }
                let size = u64::try_from(v).map_err(|_| Corrupt::NegativeSize)?;
                let room = self.to_size - self.to_pos;
                let len = match u32::try_from(size) {
                    Ok(len) if len <= room => len,
                    _ => {
                        return Err(DeltaError::TooLong {
                            to_offset: self.to_pos,
                            size,
                            to_size: self.to_size,
                        });
                    }
                };
                self.remaining = len;
                if self.phase == Phase::DiffSize {
                    let end = self.base_pos.checked_add(i64::from(len));
                    if len > 0
                        && (self.base_pos < 0 || end.is_none_or(|e| e > i64::from(self.base_len)))
                    {
                        return Err(DeltaError::BaseOutOfRange {
                            offset: self.base_pos,
                            len,
                            base_len: self.base_len,
                        });
                    }
                    self.phase = if len > 0 {
                        Phase::DiffData
                    } else {
                        Phase::ExtraSize
                    };
                } else {
                    self.phase = if len > 0 {
                        Phase::ExtraData
                    } else {
                        Phase::Adjustment
                    };
                }
            }
            Phase::Adjustment => {
                self.base_pos = self.base_pos.checked_add(v).ok_or(Corrupt::BasePosition)?;
                if self.to_pos == self.to_size {
                    if self.heatshrink.has_pending_output() || self.crle.has_pending_output() {
                        return Err(Corrupt::DataAfterEnd.into());
                    }
                    self.phase = Phase::Done;
                } else {
                    self.phase = Phase::DiffSize;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The target (output) size from the patch header; `None` until the header was read.
    pub fn target_size(&self) -> Option<u32> {
        (self.phase > Phase::TargetSize).then_some(self.to_size)
    }

    /// The patch's compression; `None` until the header was read. Heatshrink settings read
    /// 0 until the stream's first byte was read.
    pub fn compression(&self) -> Option<Compression> {
        if self.phase == Phase::Header {
            return None;
        }
        Some(match self.compression_id() {
            COMPRESSION_HEATSHRINK => Compression::Heatshrink {
                window_sz2: self.heatshrink.window_sz2,
                lookahead_sz2: self.heatshrink.lookahead_sz2,
            },
            COMPRESSION_CRLE => Compression::Crle,
            _ => Compression::None,
        })
    }

    /// Patch bytes consumed so far: after a restore, feed the patch from this offset on.
    pub fn patch_consumed(&self) -> u64 {
        self.consumed
    }

    /// Output bytes handed out so far (the offset of the next output byte).
    pub fn output_position(&self) -> u32 {
        self.to_pos
    }

    /// Whether the patch is complete ([`Event::Done`] was or would be returned).
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done && self.failed.is_none()
    }

    /// Checks, once the patch's bytes are all fed, that it ended: the target size, or
    /// [`DeltaError::Truncated`] if the patch stopped early (or the error it failed with).
    pub fn finish(&self) -> Result<u32, DeltaError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.phase == Phase::Done {
            Ok(self.to_size)
        } else {
            Err(DeltaError::Truncated {
                patch_consumed: self.consumed,
                output: self.to_pos,
            })
        }
    }
}

impl PartialOrd for Phase {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Phase {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        (*self as u8).cmp(&(*other as u8))
    }
}

#[cfg(test)]
mod tests;
