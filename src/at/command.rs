//! Typed AT commands: the [`AtCommand`] trait, the fallible [`Encoder`] and the
//! [`ResponseLines`] a command parses its answer from.

use core::time::Duration;

use super::ParseError;
use super::params::after_prefix;

/// Default deadline for a command that does not set its own: plain AT commands answer within
/// 300 ms by specification; 5 s leaves room for a busy module (quectel-at.md §9).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a command could not be encoded. Nothing has been written to the modem when this is
/// returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum EncodeError {
    /// The command line does not fit the transmit buffer.
    #[error("command does not fit the {capacity}-byte transmit buffer")]
    BufferTooSmall {
        /// Size of the buffer that was too small.
        capacity: usize,
    },
    /// A string parameter contains a byte that would end or extend the AT line (`"`, CR, LF,
    /// NUL or another control byte), or is not ASCII where the command requires it.
    #[error("byte 0x{byte:02x} at position {position} is not allowed in this parameter")]
    ForbiddenByte {
        /// The offending byte.
        byte: u8,
        /// Its position in the parameter.
        position: usize,
    },
    /// A string parameter is longer than the command allows.
    #[error("parameter is {len} bytes long, the command allows at most {max}")]
    TooLong {
        /// Length of the parameter.
        len: usize,
        /// The command's limit.
        max: usize,
    },
    /// A string parameter is empty where the command needs text.
    #[error("parameter must not be empty")]
    Empty,
    /// A numeric parameter is outside the range the command accepts.
    #[error("value {value} is outside {min}..={max}")]
    OutOfRange {
        /// The value given.
        value: i64,
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
    },
    /// A parameter is not of the form the command needs (for example a URL without
    /// `http://` or `https://`).
    #[error("parameter is not valid for this command: {0}")]
    Invalid(&'static str),
}

/// Writes one AT command line into a caller-owned buffer, refusing anything that could break
/// the line. Never panics on a short buffer: it returns [`EncodeError::BufferTooSmall`].
#[derive(Debug)]
pub struct Encoder<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> Encoder<'a> {
    /// An encoder writing into `buf` from its start.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Encoder { buf, len: 0 }
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Number of bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends literal bytes chosen by the command implementation (not user input).
    pub fn raw(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        let end = self.len + bytes.len();
        let capacity = self.buf.len();
        let dst = self
            .buf
            .get_mut(self.len..end)
            .ok_or(EncodeError::BufferTooSmall { capacity })?;
        dst.copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    /// Appends an unsigned decimal number.
    pub fn u32(&mut self, v: u32) -> Result<(), EncodeError> {
        let mut tmp = [0u8; 10];
        let mut i = tmp.len();
        let mut v = v;
        loop {
            i -= 1;
            tmp[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.raw(&tmp[i..])
    }

    /// Appends a signed decimal number.
    pub fn i32(&mut self, v: i32) -> Result<(), EncodeError> {
        if v < 0 {
            self.raw(b"-")?;
        }
        self.u32(v.unsigned_abs())
    }

    /// Appends a number after checking it lies in `min..=max`.
    pub fn ranged(&mut self, v: u32, min: u32, max: u32) -> Result<(), EncodeError> {
        check_range(i64::from(v), i64::from(min), i64::from(max))?;
        self.u32(v)
    }

    /// Appends `,`.
    pub fn comma(&mut self) -> Result<(), EncodeError> {
        self.raw(b",")
    }

    /// Appends `s` in double quotes after [`check_text`] with limit `max`.
    pub fn quoted(&mut self, s: &str, max: usize) -> Result<(), EncodeError> {
        check_text(s.as_bytes(), max)?;
        self.raw(b"\"")?;
        self.raw(s.as_bytes())?;
        self.raw(b"\"")
    }

    /// Appends `s` without quotes after [`check_text`] with limit `max`, and additionally
    /// refusing `,` `;` and spaces, which would change the parameter list.
    pub fn bare(&mut self, s: &str, max: usize) -> Result<(), EncodeError> {
        check_text(s.as_bytes(), max)?;
        if let Some(position) = s.bytes().position(|b| matches!(b, b',' | b';' | b' ')) {
            return Err(EncodeError::ForbiddenByte {
                byte: s.as_bytes()[position],
                position,
            });
        }
        self.raw(s.as_bytes())
    }
}

/// Checks that `v` lies in `min..=max`.
pub fn check_range(v: i64, min: i64, max: i64) -> Result<(), EncodeError> {
    if v < min || v > max {
        Err(EncodeError::OutOfRange { value: v, min, max })
    } else {
        Ok(())
    }
}

/// Checks a string that will be sent to the modem, in quotes or as raw data: at most `max`
/// bytes, printable ASCII only (0x20..=0x7E), and no `"`. This refuses CR, LF, NUL, every
/// other control byte, and non-ASCII bytes, so the value can neither end the AT line nor
/// smuggle in a second command.
pub fn check_text(s: &[u8], max: usize) -> Result<(), EncodeError> {
    if s.len() > max {
        return Err(EncodeError::TooLong { len: s.len(), max });
    }
    match s
        .iter()
        .position(|&b| !(0x20..=0x7e).contains(&b) || b == b'"')
    {
        Some(position) => Err(EncodeError::ForbiddenByte {
            byte: s[position],
            position,
        }),
        None => Ok(()),
    }
}

/// How long a payload after `CONNECT` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DataLength {
    /// Exactly this many bytes follow `CONNECT` (`CONNECT <n>` overrides it).
    Exact(u32),
    /// The length is announced by `CONNECT <n>`. A bare `CONNECT` then starts no payload:
    /// the engine reports it as [`Prompt::Connect`](super::Prompt::Connect), which the
    /// clients treat as a protocol error for a receiving command.
    Announced,
    /// Unknown: the payload ends where the modem's trailer begins (a framed `OK` plus a line
    /// starting with `end_prefix`, in either order), once the line has then been quiet for
    /// `quiet`. See [`Engine`](super::Engine) for the exact rule.
    UntilTrailer {
        /// Prefix of the result line that closes the payload, e.g. `b"+QHTTPREAD:"`.
        end_prefix: &'static [u8],
        /// How long the modem must stay silent after a candidate trailer.
        quiet: Duration,
    },
    /// In pieces, each announced by a header line `<header> <n>` or `<header> DATA,<n>`
    /// (SIMCom's `+HTTPREAD:` and `+SHREAD:`), before or after the final result: exactly `n`
    /// bytes follow each header's line end. The payload ends at a header announcing 0, when
    /// `total` bytes have come, or at a final result after at least one piece. See
    /// [`Engine`](super::Engine).
    Chunked {
        /// The header's prefix, e.g. `b"+HTTPREAD:"`.
        header: &'static [u8],
        /// The payload's length when the command fixes it (`AT+SHREAD=<start>,<len>`,
        /// which has no closing header).
        total: Option<u32>,
    },
}

/// What a command does after its line is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataPhase<'a> {
    /// No data phase: only response lines and a final result.
    None,
    /// The modem answers `CONNECT` or `> ` and then expects exactly these bytes (no
    /// terminator), after which it answers with lines and a final result.
    Send(&'a [u8]),
    /// The modem answers `CONNECT` followed by a payload of this length, then lines and a
    /// final result. Sent with the clients' data-reading calls, not with `send`.
    Receive(DataLength),
}

/// Which received lines belong to a command's response (all others are treated as URCs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ResponseLines {
    /// The command has no information lines; every line before its final result is a URC.
    None,
    /// Lines starting with this prefix (e.g. `b"+CSQ:"`), compared ASCII case-insensitively.
    Prefixed(&'static [u8]),
    /// Every line that the dialect does not recognise as a URC (`ATI`, `AT+GMR`).
    Unprefixed,
}

impl ResponseLines {
    /// True if `line` belongs to the response, given whether the dialect calls it a URC.
    pub fn claims(self, line: &[u8], is_urc: bool) -> bool {
        match self {
            ResponseLines::None => false,
            ResponseLines::Prefixed(p) => after_prefix(line, p).is_some(),
            ResponseLines::Unprefixed => !is_urc,
        }
    }
}

/// The information lines a command received, stored in the client's response buffer.
///
/// Iterating yields each line without its CR/LF, in arrival order.
#[derive(Clone, Copy, Debug)]
pub struct Lines<'a> {
    rest: &'a [u8],
}

impl<'a> Lines<'a> {
    /// Lines stored back to back, each followed by `\n`.
    pub fn new(stored: &'a [u8]) -> Self {
        Lines { rest: stored }
    }

    /// The next line, which must exist.
    pub fn expect(&mut self) -> Result<&'a [u8], ParseError> {
        self.next().ok_or(ParseError::MissingLine)
    }

    /// The next line's parameters after `prefix`; the line must exist and carry the prefix.
    pub fn expect_prefixed(
        &mut self,
        prefix: &[u8],
    ) -> Result<super::params::Params<'a>, ParseError> {
        let line = self.expect()?;
        super::params::Params::after(line, prefix).ok_or(ParseError::UnexpectedLine)
    }

    /// Requires that every line has been read.
    pub fn end(&mut self) -> Result<(), ParseError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(ParseError::TrailingData)
        }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let n = self
            .rest
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(self.rest.len());
        let line = &self.rest[..n];
        self.rest = self.rest.get(n + 1..).unwrap_or(&[]);
        Some(line)
    }
}

/// A typed AT command: how to encode it, how long to wait, and how to parse its answer.
///
/// Implementations must not panic; every failure is an [`EncodeError`] or [`ParseError`].
pub trait AtCommand {
    /// The parsed answer. It may borrow from the client's response buffer.
    type Response<'a>;

    /// Writes the command line, starting with `AT` and without the terminating CR.
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError>;

    /// How long to wait for the final result after the line is written.
    fn timeout(&self) -> Duration {
        DEFAULT_TIMEOUT
    }

    /// Which received lines are part of the response.
    fn response_lines(&self) -> ResponseLines {
        ResponseLines::None
    }

    /// What follows the command line.
    fn data(&self) -> DataPhase<'_> {
        DataPhase::None
    }

    /// Builds the response from the lines claimed by [`AtCommand::response_lines`], after
    /// the modem answered `OK`.
    fn parse<'a>(&self, lines: Lines<'a>) -> Result<Self::Response<'a>, ParseError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoder_never_overflows() {
        let mut buf = [0u8; 4];
        let mut e = Encoder::new(&mut buf);
        e.raw(b"AT").unwrap();
        assert_eq!(
            e.raw(b"+CSQ"),
            Err(EncodeError::BufferTooSmall { capacity: 4 })
        );
        assert_eq!(e.as_bytes(), b"AT");
        e.u32(42).unwrap();
        assert_eq!(e.as_bytes(), b"AT42");
    }

    #[test]
    fn numbers() {
        let mut buf = [0u8; 32];
        let mut e = Encoder::new(&mut buf);
        e.u32(0).unwrap();
        e.comma().unwrap();
        e.u32(u32::MAX).unwrap();
        e.comma().unwrap();
        e.i32(-17).unwrap();
        assert_eq!(e.as_bytes(), b"0,4294967295,-17");
    }

    #[test]
    fn text_checks() {
        assert!(check_text(b"internet", 10).is_ok());
        for bad in [
            &b"a\"b"[..],
            b"a\rb",
            b"a\nb",
            b"a\0b",
            b"a\x1bb",
            b"\xc3\xa9",
        ] {
            assert!(matches!(
                check_text(bad, 10),
                Err(EncodeError::ForbiddenByte { .. })
            ));
        }
        assert_eq!(
            check_text(b"abcdef", 5),
            Err(EncodeError::TooLong { len: 6, max: 5 })
        );
        let mut buf = [0u8; 16];
        let mut e = Encoder::new(&mut buf);
        assert!(e.bare("a,b", 8).is_err());
        assert!(e.quoted("a;b", 8).is_ok());
    }

    #[test]
    fn lines_iterate() {
        let mut l = Lines::new(b"Quectel\nEC200U\nRevision: X\n");
        assert_eq!(l.next(), Some(&b"Quectel"[..]));
        assert_eq!(l.next(), Some(&b"EC200U"[..]));
        assert_eq!(l.expect().unwrap(), b"Revision: X");
        assert!(l.end().is_ok());
        assert_eq!(l.expect(), Err(ParseError::MissingLine));
    }
}
