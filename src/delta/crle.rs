//! A decoder for detools' "conditional run-length encoding" (CRLE), resumable at any byte.
//!
//! The stream is a sequence of segments, each starting with a kind byte:
//! - `0` (scattered): a length, then that many bytes copied to the output as they are;
//! - `1` (repeated): a repeat count, then one byte, output that many times.
//!
//! Lengths and counts are unsigned little-endian base-128 numbers (7 bits per byte, high bit
//! set on every byte but the last). This decoder takes at most five bytes, up to `u32::MAX`.

use super::error::Corrupt;

/// Where the decoder is within a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Step {
    /// Next: a kind byte.
    Kind = 0,
    /// Reading a scattered segment's length.
    ScatteredLen = 1,
    /// Copying `left` bytes of a scattered segment.
    Scattered = 2,
    /// Reading a repeated segment's count.
    RepeatedLen = 3,
    /// Next: the repeated byte.
    RepeatedByte = 4,
    /// Writing `byte` `left` more times.
    Repeated = 5,
}

impl Step {
    pub(crate) fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Step::Kind,
            1 => Step::ScatteredLen,
            2 => Step::Scattered,
            3 => Step::RepeatedLen,
            4 => Step::RepeatedByte,
            5 => Step::Repeated,
            _ => return None,
        })
    }
}

/// Largest shift of a length byte: five bytes, 35 bits, of which 32 may be set.
pub(crate) const MAX_SHIFT: u8 = 28;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Crle {
    pub(crate) step: Step,
    /// The length being read, and the shift of its next byte.
    pub(crate) value: u32,
    pub(crate) shift: u8,
    /// Bytes of the segment still to output.
    pub(crate) left: u32,
    /// The repeated byte.
    pub(crate) byte: u8,
}

impl Crle {
    pub(crate) const fn new() -> Self {
        Crle {
            step: Step::Kind,
            value: 0,
            shift: 0,
            left: 0,
            byte: 0,
        }
    }

    /// Whether a segment is part-way output (output the stream still owes).
    pub(crate) fn has_pending_output(&self) -> bool {
        matches!(
            self.step,
            Step::Scattered | Step::Repeated | Step::RepeatedByte
        ) && self.left > 0
    }

    /// One byte of a length; `Some(length)` when it was the last. An error leaves the
    /// state as it was.
    fn length_byte(&mut self, b: u8) -> Result<Option<u32>, Corrupt> {
        let payload = u32::from(b & 0x7f);
        if self.shift > MAX_SHIFT || (payload << self.shift) >> self.shift != payload {
            return Err(Corrupt::CrleLength);
        }
        self.value |= payload << self.shift;
        self.shift += 7;
        if b & 0x80 != 0 {
            return Ok(None);
        }
        let v = self.value;
        self.value = 0;
        self.shift = 0;
        Ok(Some(v))
    }

    /// Decodes into `out` from `input`. Returns `(consumed, produced)`; it stops when `out`
    /// is full, `input` is exhausted, or at a corrupt byte after some output, so
    /// `produced < out.len()` with input left means the next call fails. An error comes
    /// only from a call that produced nothing.
    pub(crate) fn decode(
        &mut self,
        input: &[u8],
        out: &mut [u8],
    ) -> Result<(usize, usize), Corrupt> {
        let mut i = 0;
        let mut o = 0;
        while o < out.len() {
            if self.step == Step::Repeated {
                let n = out.len().saturating_sub(o).min(self.left as usize);
                if let Some(dst) = out.get_mut(o..o + n) {
                    dst.fill(self.byte);
                }
                o += n;
                self.left -= n as u32;
                if self.left == 0 {
                    self.step = Step::Kind;
                }
                continue;
            }
            let Some(&b) = input.get(i) else { break };
            // A corrupt byte is left unconsumed while this call has output to hand back:
            // the output before it goes out first, and the next call fails on it (so the
            // output before an error does not depend on how the input was sliced).
            let fail = |e: Corrupt| if o > 0 { Ok((i, o)) } else { Err(e) };
            match self.step {
                Step::Kind => {
                    self.step = match b {
                        0 => Step::ScatteredLen,
                        1 => Step::RepeatedLen,
                        k => return fail(Corrupt::CrleKind(k)),
                    };
                    i += 1;
                }
                Step::ScatteredLen => {
                    let n = match self.length_byte(b) {
                        Ok(n) => n,
                        Err(e) => return fail(e),
                    };
                    i += 1;
                    if let Some(n) = n {
                        self.left = n;
                        self.step = if n == 0 { Step::Kind } else { Step::Scattered };
                    }
                }
                Step::Scattered => {
                    let n = (self.left as usize).min(input.len() - i).min(out.len() - o);
                    if let (Some(dst), Some(src)) = (out.get_mut(o..o + n), input.get(i..i + n)) {
                        dst.copy_from_slice(src);
                    }
                    i += n;
                    o += n;
                    self.left -= n as u32;
                    if self.left == 0 {
                        self.step = Step::Kind;
                    }
                }
                Step::RepeatedLen => {
                    let n = match self.length_byte(b) {
                        Ok(n) => n,
                        Err(e) => return fail(e),
                    };
                    i += 1;
                    if let Some(n) = n {
                        self.left = n;
                        self.step = Step::RepeatedByte;
                    }
                }
                Step::RepeatedByte => {
                    i += 1;
                    self.byte = b;
                    self.step = if self.left == 0 {
                        Step::Kind
                    } else {
                        Step::Repeated
                    };
                }
                Step::Repeated => {}
            }
        }
        Ok((i, o))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scattered_and_repeated_segments() {
        // scattered "abc", repeated 'z' x 130 (length 0x82 0x01), empty scattered.
        let stream = [0, 3, b'a', b'b', b'c', 1, 0x82, 0x01, b'z', 0, 0];
        let mut out = [0u8; 200];
        let mut d = Crle::new();
        let (c, p) = d.decode(&stream, &mut out).unwrap();
        assert_eq!((c, p), (stream.len(), 133));
        assert_eq!(&out[..3], b"abc");
        assert!(out[3..133].iter().all(|&b| b == b'z'));
        assert!(!d.has_pending_output());
    }

    #[test]
    fn bad_kind_and_over_long_lengths_are_typed() {
        let mut out = [0u8; 4];
        assert_eq!(
            Crle::new().decode(&[7], &mut out),
            Err(Corrupt::CrleKind(7))
        );
        assert_eq!(
            Crle::new().decode(&[0, 0xff, 0xff, 0xff, 0xff, 0x10], &mut out),
            Err(Corrupt::CrleLength)
        );
        assert_eq!(
            Crle::new().decode(&[0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], &mut out),
            Err(Corrupt::CrleLength)
        );
        // Output before a corrupt byte comes first; the next call fails on the byte.
        let mut d = Crle::new();
        let stream = [0, 2, b'o', b'k', 7];
        assert_eq!(d.decode(&stream, &mut out), Ok((4, 2)));
        assert_eq!(d.decode(&stream[4..], &mut out), Err(Corrupt::CrleKind(7)));
        // u32::MAX is the largest length taken.
        let mut d = Crle::new();
        assert_eq!(
            d.decode(&[1, 0xff, 0xff, 0xff, 0xff, 0x0f, 9], &mut out),
            Ok((7, 4))
        );
        assert_eq!(d.left, u32::MAX - 4);
    }
}
