//! Parameter lists of framed response lines: `+NAME: 0,"text",12`.
//!
//! Every function here works on one complete line (no CR/LF), uses nom's *complete*
//! combinators and returns a [`ParseError`] value on bad input; nothing panics.

use nom::{
    IResult, Parser,
    bytes::complete::{tag, take_till, take_while1},
    character::complete::digit1,
    sequence::delimited,
};

use super::ParseError;

/// The parameter text of `line` after `prefix` (such as `b"+QHTTPGET:"`), with spaces after
/// the prefix skipped. `None` if the line does not start with `prefix` (compared ASCII
/// case-insensitively, as modems accept either case).
pub fn after_prefix<'a>(line: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    if line.len() < prefix.len() || !line[..prefix.len()].eq_ignore_ascii_case(prefix) {
        return None;
    }
    let mut rest = &line[prefix.len()..];
    while let [b' ', tail @ ..] = rest {
        rest = tail;
    }
    Some(rest)
}

/// One comma-separated field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Field<'a> {
    /// A field that was written in double quotes (quotes removed).
    Quoted(&'a str),
    /// A field without quotes, surrounding spaces removed. May be empty (`1,,3`).
    Bare(&'a str),
}

impl<'a> Field<'a> {
    /// The field's text, quoted or not.
    pub fn text(self) -> &'a str {
        match self {
            Field::Quoted(s) | Field::Bare(s) => s,
        }
    }
}

fn quoted(i: &[u8]) -> IResult<&[u8], &[u8]> {
    delimited(tag(&b"\""[..]), take_till(|c| c == b'"'), tag(&b"\""[..])).parse(i)
}

fn bare(i: &[u8]) -> IResult<&[u8], &[u8]> {
    take_till(|c| c == b',').parse(i)
}

fn utf8(b: &[u8]) -> Result<&str, ParseError> {
    core::str::from_utf8(b).map_err(|_| ParseError::NotText)
}

/// Reads a comma-separated parameter list one field at a time.
///
/// ```
/// use cellular_ota::at::params::Params;
/// let mut p = Params::new(b"0,200,\"text/plain\"");
/// assert_eq!(p.u32().unwrap(), 0);
/// assert_eq!(p.u32().unwrap(), 200);
/// assert_eq!(p.str().unwrap(), "text/plain");
/// assert!(p.end().is_ok());
/// ```
#[derive(Clone, Debug)]
pub struct Params<'a> {
    rest: &'a [u8],
    done: bool,
}

impl<'a> Params<'a> {
    /// A reader over `text` (the part of a line after its `+NAME:` prefix).
    pub fn new(text: &'a [u8]) -> Self {
        Params {
            rest: text,
            done: text.iter().all(|&c| c == b' '),
        }
    }

    /// A reader over the parameters of `line` after `prefix`, or `None` if the prefix does not
    /// match.
    pub fn after(line: &'a [u8], prefix: &[u8]) -> Option<Self> {
        after_prefix(line, prefix).map(Params::new)
    }

    /// True when every field has been read.
    pub fn is_empty(&self) -> bool {
        self.done
    }

    /// The next field, or `None` at the end of the list.
    pub fn next_field(&mut self) -> Result<Option<Field<'a>>, ParseError> {
        if self.done {
            return Ok(None);
        }
        let input = trim_start(self.rest);
        let (rest, field) = if input.first() == Some(&b'"') {
            let (rest, body) = quoted(input).map_err(|_| ParseError::Unterminated)?;
            let rest = trim_start(rest);
            if !(rest.is_empty() || rest[0] == b',') {
                return Err(ParseError::Malformed);
            }
            (rest, Field::Quoted(utf8(body)?))
        } else {
            let (rest, body) = bare(input).map_err(|_| ParseError::Malformed)?;
            (rest, Field::Bare(utf8(trim_end(body))?))
        };
        match rest {
            [] => self.done = true,
            [_comma, tail @ ..] => self.rest = tail,
        }
        Ok(Some(field))
    }

    /// The next field, which must exist.
    pub fn field(&mut self) -> Result<Field<'a>, ParseError> {
        self.next_field()?.ok_or(ParseError::MissingField)
    }

    /// The next field as text (quoted or bare), which must exist.
    pub fn str(&mut self) -> Result<&'a str, ParseError> {
        Ok(self.field()?.text())
    }

    /// The next field as text, or `None` if the list has ended.
    pub fn opt_str(&mut self) -> Result<Option<&'a str>, ParseError> {
        Ok(self.next_field()?.map(Field::text))
    }

    /// The next field as a decimal `u32`, which must exist.
    pub fn u32(&mut self) -> Result<u32, ParseError> {
        self.opt_u32()?.ok_or(ParseError::MissingField)
    }

    /// The next field as a decimal `u32`, or `None` if the list has ended or the field is
    /// empty.
    pub fn opt_u32(&mut self) -> Result<Option<u32>, ParseError> {
        match self.next_field()? {
            None => Ok(None),
            Some(f) if f.text().is_empty() => Ok(None),
            Some(f) => parse_u32(f.text().as_bytes()).map(Some),
        }
    }

    /// The next field as a decimal `u16`.
    pub fn u16(&mut self) -> Result<u16, ParseError> {
        u16::try_from(self.u32()?).map_err(|_| ParseError::OutOfRange)
    }

    /// The next field as a decimal `u8`.
    pub fn u8(&mut self) -> Result<u8, ParseError> {
        u8::try_from(self.u32()?).map_err(|_| ParseError::OutOfRange)
    }

    /// The next field as a decimal `i32` (an optional leading `-`).
    pub fn i32(&mut self) -> Result<i32, ParseError> {
        let t = self.str()?.as_bytes();
        let (neg, digits) = match t {
            [b'-', d @ ..] => (true, d),
            d => (false, d),
        };
        let v = i64::from(parse_u32(digits)?);
        let v = if neg { -v } else { v };
        i32::try_from(v).map_err(|_| ParseError::OutOfRange)
    }

    /// The next field as hexadecimal (with or without a `0x` prefix), at most 32 bits.
    pub fn hex_u32(&mut self) -> Result<u32, ParseError> {
        let t = self.str()?.as_bytes();
        let t = match t {
            [b'0', b'x' | b'X', rest @ ..] => rest,
            t => t,
        };
        parse_hex(t)
    }

    /// Requires that no field is left.
    pub fn end(&mut self) -> Result<(), ParseError> {
        if self.done {
            Ok(())
        } else {
            Err(ParseError::TrailingData)
        }
    }
}

fn trim_start(mut s: &[u8]) -> &[u8] {
    while let [b' ', t @ ..] = s {
        s = t;
    }
    s
}

fn trim_end(mut s: &[u8]) -> &[u8] {
    while let [h @ .., b' '] = s {
        s = h;
    }
    s
}

/// Parses a whole byte string as a decimal `u32`.
pub fn parse_u32(s: &[u8]) -> Result<u32, ParseError> {
    let r: IResult<&[u8], &[u8]> = digit1(s);
    match r {
        Ok(([], digits)) => {
            let mut v: u32 = 0;
            for &d in digits {
                v = v
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(u32::from(d - b'0')))
                    .ok_or(ParseError::OutOfRange)?;
            }
            Ok(v)
        }
        _ => Err(ParseError::BadNumber),
    }
}

/// Parses a whole byte string as hexadecimal digits (no prefix) into a `u32`.
pub fn parse_hex(s: &[u8]) -> Result<u32, ParseError> {
    let r: IResult<&[u8], &[u8]> = take_while1(|c: u8| c.is_ascii_hexdigit()).parse(s);
    match r {
        Ok(([], digits)) => {
            let mut v: u32 = 0;
            for &d in digits {
                let n = match d {
                    b'0'..=b'9' => d - b'0',
                    b'a'..=b'f' => d - b'a' + 10,
                    _ => d - b'A' + 10,
                };
                v = v
                    .checked_mul(16)
                    .map(|v| v | u32::from(n))
                    .ok_or(ParseError::OutOfRange)?;
            }
            Ok(v)
        }
        _ => Err(ParseError::BadNumber),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields() {
        let mut p = Params::after(b"+QFLST: \"UFS:a,b.bin\",1234", b"+QFLST:").unwrap();
        assert_eq!(p.field().unwrap(), Field::Quoted("UFS:a,b.bin"));
        assert_eq!(p.u32().unwrap(), 1234);
        assert_eq!(p.next_field().unwrap(), None);
        p.end().unwrap();
    }

    #[test]
    fn empty_and_missing() {
        let mut p = Params::new(b"1,,3");
        assert_eq!(p.u32().unwrap(), 1);
        assert_eq!(p.opt_u32().unwrap(), None);
        assert_eq!(p.u32().unwrap(), 3);
        assert_eq!(p.u32(), Err(ParseError::MissingField));
        let mut p = Params::new(b"");
        assert_eq!(p.next_field().unwrap(), None);
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(Params::new(b"\"abc").str(), Err(ParseError::Unterminated));
        assert_eq!(Params::new(b"\"a\"b").str(), Err(ParseError::Malformed));
        assert_eq!(Params::new(b"12x").u32(), Err(ParseError::BadNumber));
        assert_eq!(
            Params::new(b"99999999999").u32(),
            Err(ParseError::OutOfRange)
        );
        assert_eq!(Params::new(b"\xff").str(), Err(ParseError::NotText));
        assert_eq!(Params::new(b"-5").i32(), Ok(-5));
        assert_eq!(Params::new(b"f6e").hex_u32(), Ok(0xf6e));
        assert_eq!(Params::new(b"0x4A2B").hex_u32(), Ok(0x4a2b));
        assert_eq!(
            Params::new(b"123456789").hex_u32(),
            Err(ParseError::OutOfRange)
        );
    }

    #[test]
    fn prefix_is_case_insensitive() {
        assert_eq!(
            after_prefix(b"+qhttpget: 0", b"+QHTTPGET:"),
            Some(&b"0"[..])
        );
        assert_eq!(after_prefix(b"+QHTTP", b"+QHTTPGET:"), None);
    }
}
