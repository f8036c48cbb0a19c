//! A plain-text transcript format for modem traffic, used by the recorded fixtures, by the
//! `explain` example and by host tools that capture logs.
//!
//! Public, and not behind a feature, because it is the input format of the log decoder
//! ([`crate::quectel::log_decoder`]) that users run on their own captures; it is
//! allocation-free and costs nothing unless called.
//!
//! One chunk per line:
//!
//! ```text
//! # a comment; blank lines are ignored
//! -> AT+QHTTPGET=80\r
//! <- \r\nOK\r\n
//! <- \r\n+QHTTPGET: 0,200,1024\r\n
//! ```
//!
//! `->` is host to modem, `<-` is modem to host. After the two-character marker and one
//! space, the bytes are written literally except for the escapes `\r`, `\n`, `\t`, `\\`,
//! `\0` and `\xNN` (two hex digits); any byte outside printable ASCII must be escaped. A
//! line's chunk is fed as it stands: nothing is added between chunks.

/// Which way a chunk went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Direction {
    /// Host to modem (`->`).
    ToModem,
    /// Modem to host (`<-`).
    FromModem,
}

/// Why a transcript line could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TranscriptError {
    /// The line starts with neither `->`, `<-`, `#` nor is blank.
    #[error("line does not start with '->', '<-' or '#'")]
    NoDirection,
    /// A `\` escape is unknown or cut short.
    #[error("bad escape at byte {0}")]
    BadEscape(usize),
    /// The decoded bytes do not fit the output buffer.
    #[error("decoded chunk does not fit the buffer")]
    BufferTooSmall,
}

/// Decodes one transcript line into `out`. Returns `None` for comments and blank lines,
/// else the direction and the number of bytes written.
pub fn decode_line(
    line: &[u8],
    out: &mut [u8],
) -> Result<Option<(Direction, usize)>, TranscriptError> {
    let line = match line {
        [rest @ .., b'\r'] => rest,
        l => l,
    };
    if line.iter().all(|&b| b == b' ' || b == b'\t') || line.first() == Some(&b'#') {
        return Ok(None);
    }
    let (dir, body) = if let Some(b) = line.strip_prefix(b"->") {
        (Direction::ToModem, b)
    } else if let Some(b) = line.strip_prefix(b"<-") {
        (Direction::FromModem, b)
    } else {
        return Err(TranscriptError::NoDirection);
    };
    let body = body.strip_prefix(b" ").unwrap_or(body);
    let mut n = 0;
    let mut i = 0;
    while i < body.len() {
        let b = match body[i] {
            b'\\' => {
                let e = *body.get(i + 1).ok_or(TranscriptError::BadEscape(i))?;
                i += 2;
                match e {
                    b'r' => b'\r',
                    b'n' => b'\n',
                    b't' => b'\t',
                    b'0' => 0,
                    b'\\' => b'\\',
                    b'x' => {
                        let hex = body
                            .get(i..i + 2)
                            .ok_or(TranscriptError::BadEscape(i - 2))?;
                        i += 2;
                        let v = crate::at::params::parse_hex(hex)
                            .map_err(|_| TranscriptError::BadEscape(i - 4))?;
                        v as u8
                    }
                    _ => return Err(TranscriptError::BadEscape(i - 2)),
                }
            }
            b => {
                i += 1;
                b
            }
        };
        *out.get_mut(n).ok_or(TranscriptError::BufferTooSmall)? = b;
        n += 1;
    }
    Ok(Some((dir, n)))
}

/// Writes `bytes` as one transcript line (marker, escaped bytes, `\n`) into `out` and
/// returns its length. Needs at most `4 * bytes.len() + 4` bytes.
pub fn encode_line(dir: Direction, bytes: &[u8], out: &mut [u8]) -> Result<usize, TranscriptError> {
    let mut n = 0;
    let mut put = |s: &[u8]| -> Result<(), TranscriptError> {
        let dst = out
            .get_mut(n..n + s.len())
            .ok_or(TranscriptError::BufferTooSmall)?;
        dst.copy_from_slice(s);
        n += s.len();
        Ok(())
    };
    put(match dir {
        Direction::ToModem => b"-> ",
        Direction::FromModem => b"<- ",
    })?;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        match b {
            b'\r' => put(b"\\r")?,
            b'\n' => put(b"\\n")?,
            b'\\' => put(b"\\\\")?,
            0x20..=0x7e => put(&[b])?,
            _ => put(&[
                b'\\',
                b'x',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ])?,
        }
    }
    put(b"\n")?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_byte() {
        let all: [u8; 256] = core::array::from_fn(|i| i as u8);
        let mut text = [0u8; 1100];
        let n = encode_line(Direction::FromModem, &all, &mut text).unwrap();
        let mut back = [0u8; 256];
        let (dir, m) = decode_line(&text[..n - 1], &mut back).unwrap().unwrap();
        assert_eq!(dir, Direction::FromModem);
        assert_eq!(&back[..m], &all[..]);
    }

    #[test]
    fn comments_and_errors() {
        let mut out = [0u8; 8];
        assert_eq!(decode_line(b"# hi", &mut out), Ok(None));
        assert_eq!(decode_line(b"", &mut out), Ok(None));
        assert_eq!(
            decode_line(b"AT", &mut out),
            Err(TranscriptError::NoDirection)
        );
        assert_eq!(
            decode_line(b"<- \\q", &mut out),
            Err(TranscriptError::BadEscape(0))
        );
        assert_eq!(
            decode_line(b"<- \\x4", &mut out),
            Err(TranscriptError::BadEscape(0))
        );
        assert_eq!(
            decode_line(b"<- 123456789", &mut out),
            Err(TranscriptError::BufferTooSmall)
        );
        assert_eq!(
            decode_line(b"-> AT\\r", &mut out),
            Ok(Some((Direction::ToModem, 3)))
        );
    }
}
