//! A heatshrink (LZSS) decoder whose whole state is plain fields, so it can be saved.
//!
//! The stream is a sequence of bits, most significant bit of each byte first. Each token
//! starts with a tag bit:
//! - `1`: a literal; the next 8 bits are the output byte.
//! - `0`: a back-reference; the next `window_sz2` bits hold `distance - 1`, the next
//!   `lookahead_sz2` bits hold `length - 1`. The output repeats `length` bytes starting
//!   `distance` bytes back (the copy may overlap what it writes).
//!
//! The window starts out as zeros, so a reference before the first output byte yields
//! zeros (the reference C decoder behaves the same). The encoder pads the last byte with
//! zero bits; padding never makes a whole token, and the decoder never asks for more bits
//! than the next output byte needs, so padding is simply left unread.
//!
//! Only windows up to 2^8 bytes are supported ([`MAX_WINDOW_SZ2`]), which keeps every
//! field of a token within one byte.

/// The largest supported `window_sz2` (a 256-byte window, as esp_delta_ota uses).
pub const MAX_WINDOW_SZ2: u8 = 8;
/// The smallest `window_sz2` heatshrink defines.
pub const MIN_WINDOW_SZ2: u8 = 4;
/// The smallest `lookahead_sz2` heatshrink defines; it must also be below `window_sz2`.
pub const MIN_LOOKAHEAD_SZ2: u8 = 3;
/// Bytes of window kept (and saved) whatever the stream's `window_sz2`.
pub(crate) const WINDOW_LEN: usize = 1 << MAX_WINDOW_SZ2;

/// Where the decoder is within a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Step {
    /// Next: the tag bit.
    Tag = 0,
    /// Next: the 8 bits of a literal.
    Literal = 1,
    /// Next: the back-reference's distance bits.
    Distance = 2,
    /// Next: the back-reference's length bits.
    Length = 3,
    /// Copying `left` bytes from `distance` back.
    Copy = 4,
}

impl Step {
    pub(crate) fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Step::Tag,
            1 => Step::Literal,
            2 => Step::Distance,
            3 => Step::Length,
            4 => Step::Copy,
            _ => return None,
        })
    }
}

/// The decoder. `window_sz2`/`lookahead_sz2` are set from the stream's header byte.
#[derive(Clone)]
pub(crate) struct Heatshrink {
    pub(crate) window: [u8; WINDOW_LEN],
    pub(crate) window_sz2: u8,
    pub(crate) lookahead_sz2: u8,
    pub(crate) step: Step,
    /// Bits read from the input and not yet used: the low `nbits` bits, oldest highest.
    pub(crate) bits: u16,
    pub(crate) nbits: u8,
    /// Back-reference distance (1 ..= 2^window_sz2).
    pub(crate) distance: u16,
    /// Bytes of the current back-reference still to copy.
    pub(crate) left: u16,
    /// Bytes output so far, modulo the window size (the next write position).
    pub(crate) head: u8,
}

/// Why a heatshrink header byte is refused: the `(window_sz2, lookahead_sz2)` it asks for.
pub(crate) type Refused = (u8, u8);

impl Heatshrink {
    pub(crate) const fn new() -> Self {
        Heatshrink {
            window: [0; WINDOW_LEN],
            window_sz2: 0,
            lookahead_sz2: 0,
            step: Step::Tag,
            bits: 0,
            nbits: 0,
            distance: 0,
            left: 0,
            head: 0,
        }
    }

    /// Takes the stream's header byte: `window_sz2 - 4` in the high nibble, `lookahead_sz2
    /// - 3` in the low one. Refuses what this decoder cannot hold or heatshrink forbids.
    pub(crate) fn start(&mut self, header: u8) -> Result<(), Refused> {
        let w = (header >> 4) + MIN_WINDOW_SZ2;
        let l = (header & 0x0f) + MIN_LOOKAHEAD_SZ2;
        if !params_supported(w, l) {
            return Err((w, l));
        }
        *self = Heatshrink::new();
        self.window_sz2 = w;
        self.lookahead_sz2 = l;
        Ok(())
    }

    /// Whether a back-reference is part-way copied (output the stream still owes).
    pub(crate) fn has_pending_output(&self) -> bool {
        self.step == Step::Copy && self.left > 0
    }

    /// `n` (1..=8) bits from the stream, pulling bytes from `input[*pos..]` as needed.
    /// `None` when the input runs out first; the bits gathered so far are kept.
    #[inline(always)]
    fn take(&mut self, n: u8, input: &[u8], pos: &mut usize) -> Option<u8> {
        while self.nbits < n {
            let &b = input.get(*pos)?;
            *pos += 1;
            // nbits < n <= 8 here, so `bits` < 2^7 and the shift keeps every bit.
            self.bits = (self.bits << 8) | u16::from(b);
            self.nbits += 8;
        }
        self.nbits -= n;
        let v = self.bits >> self.nbits;
        self.bits &= (1u16 << self.nbits) - 1;
        // n <= 8, so v < 256.
        Some(v as u8)
    }

    #[inline(always)]
    fn emit(&mut self, b: u8, out: &mut [u8], o: &mut usize) {
        if let Some(slot) = out.get_mut(*o) {
            *slot = b;
        }
        *o += 1;
        self.window[usize::from(self.head)] = b;
        self.head = self.head.wrapping_add(1) & self.mask();
    }

    fn mask(&self) -> u8 {
        // window_sz2 <= 8 once started; before, 0 gives mask 0 and nothing is decoded.
        ((1u16 << self.window_sz2) - 1) as u8
    }

    /// Decodes into `out` from `input`. Returns `(consumed, produced)`; it stops when `out`
    /// is full or `input` is exhausted, so `produced < out.len()` means all input is used.
    pub(crate) fn decode(&mut self, input: &[u8], out: &mut [u8]) -> (usize, usize) {
        let mut i = 0;
        let mut o = 0;
        if self.window_sz2 == 0 {
            return (0, 0);
        }
        while o < out.len() {
            match self.step {
                Step::Tag => match self.take(1, input, &mut i) {
                    None => break,
                    Some(1) => self.step = Step::Literal,
                    Some(_) => self.step = Step::Distance,
                },
                Step::Literal => {
                    let Some(b) = self.take(8, input, &mut i) else {
                        break;
                    };
                    self.emit(b, out, &mut o);
                    self.step = Step::Tag;
                }
                Step::Distance => {
                    let Some(v) = self.take(self.window_sz2, input, &mut i) else {
                        break;
                    };
                    self.distance = u16::from(v) + 1;
                    self.step = Step::Length;
                }
                Step::Length => {
                    let Some(v) = self.take(self.lookahead_sz2, input, &mut i) else {
                        break;
                    };
                    self.left = u16::from(v) + 1;
                    self.step = Step::Copy;
                }
                Step::Copy => {
                    let mask = self.mask();
                    // distance <= 2^window_sz2 <= 256: its low byte is the same modulo
                    // the window.
                    let back = self.distance as u8;
                    while self.left > 0 && o < out.len() {
                        let from = self.head.wrapping_sub(back) & mask;
                        let b = self.window[usize::from(from)];
                        self.emit(b, out, &mut o);
                        self.left -= 1;
                    }
                    if self.left == 0 {
                        self.step = Step::Tag;
                    }
                }
            }
        }
        (i, o)
    }
}

/// Whether this decoder takes a stream made with these settings.
pub(crate) fn params_supported(window_sz2: u8, lookahead_sz2: u8) -> bool {
    (MIN_WINDOW_SZ2..=MAX_WINDOW_SZ2).contains(&window_sz2)
        && lookahead_sz2 >= MIN_LOOKAHEAD_SZ2
        && lookahead_sz2 < window_sz2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(header: u8, stream: &[u8], out: &mut [u8]) -> usize {
        let mut d = Heatshrink::new();
        d.start(header).unwrap();
        let (c, p) = d.decode(stream, out);
        assert_eq!(c, stream.len());
        p
    }

    #[test]
    fn literals_and_an_overlapping_reference() {
        // w8 l7: literal 'a' (1 0110_0001), literal 'b' (1 0110_0010), then a reference
        // distance 2 (index 1), length 6 (count 5): "ab" + "ababab".
        let bits = ["101100001", "101100010", "0", "00000001", "0000101"];
        let mut bytes = [0u8; 8];
        let mut n = 0;
        for (k, c) in bits.iter().flat_map(|s| s.chars()).enumerate() {
            if c == '1' {
                bytes[k / 8] |= 0x80 >> (k % 8);
            }
            n = k / 8 + 1;
        }
        let mut out = [0u8; 8];
        let p = decode_all(0x44, &bytes[..n], &mut out);
        assert_eq!(&out[..p], b"abababab");
    }

    #[test]
    fn a_reference_before_any_output_reads_zeros() {
        // tag 0, index 0 (distance 1), count 2 (length 3): 0 00000000 0000010 -> 16 bits.
        let mut out = [0xFFu8; 3];
        let p = decode_all(0x44, &[0x00, 0x02], &mut out);
        assert_eq!(&out[..p], &[0, 0, 0]);
    }

    #[test]
    fn unsupported_settings_are_refused() {
        let mut d = Heatshrink::new();
        assert_eq!(d.start(0x54), Err((9, 7)));
        assert_eq!(d.start(0x45), Err((8, 8)));
        assert!(d.start(0x00).is_ok()); // w4 l3
        assert!(d.start(0x44).is_ok());
    }
}
