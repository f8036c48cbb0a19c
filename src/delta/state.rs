//! Saving and restoring a [`DeltaDecoder`]: a fixed-size, versioned, checksummed record.
//!
//! Layout (little-endian), [`STATE_LEN`] bytes:
//!
//! | offset | bytes | field |
//! |---:|---:|---|
//! | 0 | 1 | [`STATE_VERSION`] |
//! | 1 | 1 | the patch's header byte (type and compression; 0 before it was read) |
//! | 2 | 1 | parser phase |
//! | 3 | 10 | number being read: shift, sign, magnitude (u64) |
//! | 13 | 4 | target size |
//! | 17 | 4 | output position |
//! | 21 | 8 | base position (i64) |
//! | 29 | 4 | base length |
//! | 33 | 4 | bytes left in the current block |
//! | 37 | 8 | patch bytes consumed |
//! | 45 | 8 | blocks begun |
//! | 53 | 11 | heatshrink: window_sz2, lookahead_sz2, step, bits (u16), bit count, distance (u16), copy left (u16), head |
//! | 64 | 11 | crle: step, length (u32), shift, left (u32), repeated byte |
//! | 75 | 256 | heatshrink window |
//! | 331 | 4 | CRC-32 (ISO-HDLC) of bytes 0..331 |
//!
//! [`DeltaDecoder::restore`] checks the version, the checksum and that every field is one
//! the decoder could have reached, so a damaged or foreign record is refused instead of
//! decoding garbage.

use super::crle::{self, Crle};
use super::heatshrink::{self, Heatshrink, WINDOW_LEN};
use super::{
    COMPRESSION_CRLE, COMPRESSION_HEATSHRINK, DeltaDecoder, DeltaError, MAX_NUMBER_SHIFT, Number,
    OUTPUT_BUFFER_LEN, Phase, check_header,
};
use crate::ota::crc32::crc32_iso_hdlc;

/// The format of the saved state this build writes and reads (its first byte).
pub const STATE_VERSION: u8 = 1;

const WINDOW_AT: usize = 75;
const CRC_AT: usize = WINDOW_AT + WINDOW_LEN;

/// Bytes of a saved [`DeltaDecoder`] state ([`DeltaDecoder::save`]).
pub const STATE_LEN: usize = CRC_AT + 4;

struct Writer<'a> {
    out: &'a mut [u8; STATE_LEN],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        if let Some(dst) = self.out.get_mut(self.at..self.at + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        self.at += bytes.len();
    }
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut v = [0u8; N];
        if let Some(src) = self.data.get(self.at..self.at + N) {
            v.copy_from_slice(src);
        }
        self.at += N;
        v
    }
    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
}

impl DeltaDecoder {
    /// A decoder in the state [`save`](Self::save) wrote, with a [`OUTPUT_BUFFER_LEN`]-byte
    /// output buffer (any `OUT` restores with [`restore_into`](Self::restore_into)).
    ///
    /// # Errors
    ///
    /// [`DeltaError::StateVersion`] for a record of another state format,
    /// [`DeltaError::BadState`] for a record that is too short, fails its checksum or holds
    /// a state no decoder reaches.
    pub fn restore(state: &[u8]) -> Result<Self, DeltaError> {
        let mut d = DeltaDecoder::new(0);
        d.restore_into(state)?;
        Ok(d)
    }
}

impl<const OUT: usize> DeltaDecoder<OUT> {
    /// Writes the decoder's complete state into `out`.
    ///
    /// Valid between any two calls of [`decode`](Self::decode) (an event's bytes must be
    /// written before the state that follows them is made durable). To resume, restore it
    /// and feed the patch from [`patch_consumed`](Self::patch_consumed) on; the output
    /// continues at [`output_position`](Self::output_position).
    ///
    /// # Errors
    ///
    /// The decoder's error if it has failed (a failed decoder has nothing to resume).
    pub fn save(&self, out: &mut [u8; STATE_LEN]) -> Result<(), DeltaError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let mut w = Writer { out, at: 0 };
        w.put(&[STATE_VERSION, self.header, self.phase as u8]);
        w.put(&[self.number.shift, u8::from(self.number.negative)]);
        w.put(&self.number.magnitude.to_le_bytes());
        w.put(&self.to_size.to_le_bytes());
        w.put(&self.to_pos.to_le_bytes());
        w.put(&self.base_pos.to_le_bytes());
        w.put(&self.base_len.to_le_bytes());
        w.put(&self.remaining.to_le_bytes());
        w.put(&self.consumed.to_le_bytes());
        w.put(&self.blocks.to_le_bytes());
        let hs = &self.heatshrink;
        w.put(&[hs.window_sz2, hs.lookahead_sz2, hs.step as u8]);
        w.put(&hs.bits.to_le_bytes());
        w.put(&[hs.nbits]);
        w.put(&hs.distance.to_le_bytes());
        w.put(&hs.left.to_le_bytes());
        w.put(&[hs.head]);
        let c = &self.crle;
        w.put(&[c.step as u8]);
        w.put(&c.value.to_le_bytes());
        w.put(&[c.shift]);
        w.put(&c.left.to_le_bytes());
        w.put(&[c.byte]);
        debug_assert_eq!(w.at, WINDOW_AT);
        w.put(&hs.window);
        let crc = crc32_iso_hdlc(w.out.get(..CRC_AT).unwrap_or_default());
        w.put(&crc.to_le_bytes());
        Ok(())
    }

    /// [`restore`](Self::restore) into this decoder, in place (no second decoder on the
    /// stack: the update flow resumes its own). On error the decoder is a fresh one for a
    /// base of the length it had.
    ///
    /// # Errors
    ///
    /// As [`restore`](Self::restore).
    pub fn restore_into(&mut self, state: &[u8]) -> Result<(), DeltaError> {
        let base_len = self.base_len;
        let r = self.read_state(state);
        if r.is_err() || !self.is_consistent() {
            self.reset(base_len);
            return Err(r.err().unwrap_or(DeltaError::BadState));
        }
        Ok(())
    }

    /// Sets every field but the output buffer (empty between calls) to a fresh decoder's.
    fn reset(&mut self, base_len: u32) {
        self.phase = Phase::Header;
        self.header = 0;
        self.number = Number {
            magnitude: 0,
            shift: 0,
            negative: false,
        };
        self.to_size = 0;
        self.to_pos = 0;
        self.base_pos = 0;
        self.base_len = base_len;
        self.remaining = 0;
        self.blocks = 0;
        self.consumed = 0;
        self.heatshrink = Heatshrink::new();
        self.crle = Crle::new();
        self.failed = None;
    }

    /// Reads the fields from a record `save` wrote (checked: version, length, CRC, enums).
    fn read_state(&mut self, state: &[u8]) -> Result<(), DeltaError> {
        let version = *state.first().ok_or(DeltaError::BadState)?;
        if version != STATE_VERSION {
            return Err(DeltaError::StateVersion(version));
        }
        let (Some(body), Some(crc)) = (state.get(..CRC_AT), state.get(CRC_AT..STATE_LEN)) else {
            return Err(DeltaError::BadState);
        };
        if crc32_iso_hdlc(body).to_le_bytes() != crc {
            return Err(DeltaError::BadState);
        }
        let mut r = Reader { data: body, at: 1 };
        self.reset(0);
        let d = self;
        d.header = r.u8();
        d.phase = Phase::from_u8(r.u8()).ok_or(DeltaError::BadState)?;
        d.number = Number {
            shift: r.u8(),
            negative: match r.u8() {
                0 => false,
                1 => true,
                _ => return Err(DeltaError::BadState),
            },
            magnitude: r.u64(),
        };
        d.to_size = r.u32();
        d.to_pos = r.u32();
        d.base_pos = r.u64() as i64;
        d.base_len = r.u32();
        d.remaining = r.u32();
        d.consumed = r.u64();
        d.blocks = r.u64();
        let hs = &mut d.heatshrink;
        hs.window_sz2 = r.u8();
        hs.lookahead_sz2 = r.u8();
        hs.step = heatshrink::Step::from_u8(r.u8()).ok_or(DeltaError::BadState)?;
        hs.bits = r.u16();
        hs.nbits = r.u8();
        hs.distance = r.u16();
        hs.left = r.u16();
        hs.head = r.u8();
        let c = &mut d.crle;
        c.step = crle::Step::from_u8(r.u8()).ok_or(DeltaError::BadState)?;
        c.value = r.u32();
        c.shift = r.u8();
        c.left = r.u32();
        c.byte = r.u8();
        d.heatshrink.window = r.take();
        Ok(())
    }

    /// Whether the fields are ones [`decode`](Self::decode) can reach (restore's check).
    pub(super) fn is_consistent(&self) -> bool {
        let header_ok = if self.phase == Phase::Header {
            self.header == 0
        } else {
            check_header(self.header).is_ok()
        };
        let id = self.header & 0x0f;
        let in_number = matches!(
            self.phase,
            Phase::TargetSize
                | Phase::DataFormat
                | Phase::DiffSize
                | Phase::ExtraSize
                | Phase::Adjustment
        );
        let n = &self.number;
        let number_ok = if n.shift == 0 {
            n.magnitude == 0 && !n.negative
        } else {
            in_number
                && n.shift >= 6
                && (n.shift - 6).is_multiple_of(7)
                && n.shift <= MAX_NUMBER_SHIFT + 7
                && (n.shift >= 64 || n.magnitude >> n.shift == 0)
        };
        let sized = self.phase > Phase::TargetSize;
        let positions_ok = self.to_pos <= self.to_size
            && (sized || (self.to_size == 0 && self.to_pos == 0))
            && (self.phase != Phase::Done || self.to_pos == self.to_size)
            && (!sized || self.phase == Phase::Done || self.to_size > 0)
            && (sized || (self.base_pos == 0 && self.consumed <= 11))
            && self.blocks <= u64::from(self.to_size) + 1
            && (self.phase > Phase::DataFormat || self.blocks == 0);
        let in_data = matches!(self.phase, Phase::DiffData | Phase::ExtraData);
        let remaining_ok = if in_data {
            self.remaining > 0 && self.remaining <= self.to_size - self.to_pos.min(self.to_size)
        } else {
            self.remaining == 0
        };
        let base_ok = self.phase != Phase::DiffData
            || (self.base_pos >= 0
                && self
                    .base_pos
                    .checked_add(i64::from(self.remaining))
                    .is_some_and(|e| e <= i64::from(self.base_len)));
        let hs = &self.heatshrink;
        let hs_started = id == COMPRESSION_HEATSHRINK
            && self.phase > Phase::StreamHeader
            && !(self.phase == Phase::Done && hs.window_sz2 == 0);
        let hs_ok = if hs_started {
            let mask = (1u16 << hs.window_sz2) - 1;
            heatshrink::params_supported(hs.window_sz2, hs.lookahead_sz2)
                && hs.nbits <= 7
                && hs.bits >> hs.nbits == 0
                && u16::from(hs.head) <= mask
                && hs.distance <= mask + 1
                && hs.left <= 1 << hs.lookahead_sz2
                && (!matches!(hs.step, heatshrink::Step::Length | heatshrink::Step::Copy)
                    || hs.distance >= 1)
        } else {
            hs.window_sz2 == 0
                && hs.lookahead_sz2 == 0
                && hs.step == heatshrink::Step::Tag
                && hs.nbits == 0
                && hs.bits == 0
                && hs.distance == 0
                && hs.left == 0
                && hs.head == 0
                && hs.window.iter().all(|&b| b == 0)
        };
        let c = &self.crle;
        let crle_ok = if id == COMPRESSION_CRLE {
            c.shift.is_multiple_of(7)
                && c.shift <= crle::MAX_SHIFT + 7
                && (c.shift >= 32 || c.value >> c.shift == 0)
                && (!matches!(c.step, crle::Step::Scattered | crle::Step::Repeated) || c.left > 0)
                && (matches!(c.step, crle::Step::ScatteredLen | crle::Step::RepeatedLen)
                    || (c.shift == 0 && c.value == 0))
        } else {
            *c == Crle::new()
        };
        header_ok && number_ok && positions_ok && remaining_ok && base_ok && hs_ok && crle_ok
    }
}

// The RAM figures in the module documentation.
const _: () = assert!(STATE_LEN == 335);
const _: () = assert!(OUTPUT_BUFFER_LEN + WINDOW_LEN <= 256 + 2048);
