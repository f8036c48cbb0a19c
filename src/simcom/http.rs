//! HTTP(S) client commands of SIM7600, A76xx / SIM767x and the SIM800-style set of SIM800 and
//! early SIM7000 firmware (`AT+HTTPINIT` … `AT+HTTPTERM`; `simcom-at.md` §2.1, §2.2).
//!
//! A request is `AT+HTTPINIT`, [`HttpPara`] settings, [`HttpAction`] (answered `OK`, then
//! the [`Urc::HttpAction`](super::urc::Urc::HttpAction) result within
//! [`HttpAction::result_deadline`]), the body's reads ([`HttpRead`], whose bytes come after
//! `OK`, in pieces `+HTTPREAD: DATA,<n>` or `+HTTPREAD: <n>`), and `AT+HTTPTERM`.
//!
//! Every string parameter is refused before a byte is written if it could end or extend the
//! AT line (quotes, CR, LF, NUL, control bytes) or is longer than the module takes.
//!
//! ```
//! use cellular_ota::at::{AtCommand, Encoder};
//! use cellular_ota::simcom::http::{HttpAction, HttpMethod, HttpPara};
//!
//! let mut buf = [0u8; 128];
//! let mut enc = Encoder::new(&mut buf);
//! HttpPara::Url("http://example.com/fw.bin").encode(&mut enc).unwrap();
//! assert_eq!(enc.as_bytes(), b"AT+HTTPPARA=\"URL\",\"http://example.com/fw.bin\"");
//! // A header that would smuggle a second command is refused.
//! let mut enc = Encoder::new(&mut buf);
//! assert!(HttpPara::UserData { name: "Range", value: "bytes=0-1\"\r\nAT+CFUN=0" }
//!     .encode(&mut enc)
//!     .is_err());
//! ```

use core::time::Duration;

use crate::at::command::check_text;
use crate::at::params::Params;
use crate::at::{
    AtCommand, DataLength, DataPhase, EncodeError, Encoder, Lines, ParseError, ResponseLines,
};
use crate::quectel::http::{check_header_name, parse_url};

/// `AT+HTTPINIT` and `AT+HTTPTERM` may take this long (manual: 120000 ms).
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(120);

/// Longest `"USERDATA"` text on A76xx and SIM767x (SIM7600 takes 512; the smaller limit is
/// enforced so one configuration serves both).
pub const USER_DATA_MAX: usize = 256;

/// Longest `"CONTENT"`, `"ACCEPT"` and `"UA"` text.
pub const TEXT_PARAM_MAX: usize = 256;

/// Longest URL this crate sends (the SIMCom manuals give no limit for `"URL"`; the
/// Quectel limit of the same crate applies).
pub const URL_MAX: usize = crate::quectel::http::MAX_URL_LEN;

/// `AT+HTTPINIT`: opens the HTTP service (and, on SIM7600 and A76xx, activates the PDP
/// context). Answers `ERROR` while a session is open: send [`HttpTerm`] first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HttpInit;

impl AtCommand for HttpInit {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+HTTPINIT")
    }
    fn timeout(&self) -> Duration {
        SESSION_TIMEOUT
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// `AT+HTTPTERM`: ends the HTTP service. Answers `ERROR` when no session is open, so drivers
/// send it before [`HttpInit`] and ignore the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HttpTerm;

impl AtCommand for HttpTerm {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+HTTPTERM")
    }
    fn timeout(&self) -> Duration {
        SESSION_TIMEOUT
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// `AT+HTTPPARA=<tag>,<value>`: one setting of the HTTP session (`simcom-at.md` §2.1 table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum HttpPara<'a> {
    /// `"URL","<url>"`: `http://` or `https://`, host, optional port and path.
    Url(&'a str),
    /// `"CONNECTTO",<20..=120>`: seconds to connect (default 120).
    ConnectTimeout(u8),
    /// `"RECVTO",<2..=120>`: seconds to wait for data (default 10 on SIM7600, 20 on A76xx).
    ReceiveTimeout(u8),
    /// `"RESPTO",<20..=120>` (SIM7600 only): seconds to wait for the response.
    ResponseTimeout(u8),
    /// `"CONTENT","<type>"`: the request's `Content-Type`.
    Content(&'a str),
    /// `"ACCEPT","<type>"`: the request's `Accept`.
    Accept(&'a str),
    /// `"UA","<agent>"` (SIM7600 only): the `User-Agent`.
    UserAgent(&'a str),
    /// `"SSLCFG",<0..=9>`: the `AT+CSSLCFG` context for `https://`.
    SslConfig(u8),
    /// `"USERDATA","<name>: <value>"`: one custom request header (each setting replaces the
    /// previous one), e.g. `Range: bytes=0-1023`, which works on every family (the server
    /// answers 206).
    UserData {
        /// Header name (token characters only).
        name: &'a str,
        /// Header value (printable ASCII, no `"`).
        value: &'a str,
    },
    /// `"BREAK",<start>` (SIM7600 and the SIM800-style set): resume a GET at this byte.
    Break(u32),
    /// `"BREAKEND",<end>` (SIM7600): last byte of the range (0 with `Break(0)` disables).
    BreakEnd(u32),
    /// `"READMODE",<0|1>` (A76xx): 1 lets `AT+HTTPREAD` read the same bytes again (only for
    /// responses under 1 MB).
    ReadMode(bool),
    /// `"CID",<cid>` (SIM800-style set): the `AT+SAPBR` bearer to use.
    Cid(u8),
}

impl AtCommand for HttpPara<'_> {
    type Response<'a> = ();

    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+HTTPPARA=")?;
        match *self {
            HttpPara::Url(url) => {
                parse_url(url)?;
                enc.raw(b"\"URL\",")?;
                enc.quoted(url, URL_MAX)
            }
            HttpPara::ConnectTimeout(s) => ranged(enc, b"\"CONNECTTO\",", s, 20, 120),
            HttpPara::ReceiveTimeout(s) => ranged(enc, b"\"RECVTO\",", s, 2, 120),
            HttpPara::ResponseTimeout(s) => ranged(enc, b"\"RESPTO\",", s, 20, 120),
            HttpPara::Content(t) => text(enc, b"\"CONTENT\",", t),
            HttpPara::Accept(t) => text(enc, b"\"ACCEPT\",", t),
            HttpPara::UserAgent(t) => text(enc, b"\"UA\",", t),
            HttpPara::SslConfig(c) => ranged(enc, b"\"SSLCFG\",", c, 0, 9),
            HttpPara::UserData { name, value } => {
                check_header_name(name)?;
                check_text(value.as_bytes(), USER_DATA_MAX)?;
                let len = name.len() + 2 + value.len();
                if len > USER_DATA_MAX {
                    return Err(EncodeError::TooLong {
                        len,
                        max: USER_DATA_MAX,
                    });
                }
                enc.raw(b"\"USERDATA\",\"")?;
                enc.raw(name.as_bytes())?;
                enc.raw(b": ")?;
                enc.raw(value.as_bytes())?;
                enc.raw(b"\"")
            }
            HttpPara::Break(n) => {
                enc.raw(b"\"BREAK\",")?;
                enc.u32(n)
            }
            HttpPara::BreakEnd(n) => {
                enc.raw(b"\"BREAKEND\",")?;
                enc.u32(n)
            }
            HttpPara::ReadMode(on) => {
                enc.raw(b"\"READMODE\",")?;
                enc.u32(u32::from(on))
            }
            HttpPara::Cid(c) => {
                enc.raw(b"\"CID\",")?;
                enc.u32(u32::from(c))
            }
        }
    }

    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

fn ranged(enc: &mut Encoder<'_>, tag: &[u8], v: u8, min: u32, max: u32) -> Result<(), EncodeError> {
    enc.raw(tag)?;
    enc.ranged(u32::from(v), min, max)
}

fn text(enc: &mut Encoder<'_>, tag: &[u8], t: &str) -> Result<(), EncodeError> {
    enc.raw(tag)?;
    enc.quoted(t, TEXT_PARAM_MAX)
}

/// The request method of [`HttpAction`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HttpMethod {
    /// 0.
    Get = 0,
    /// 1.
    Post = 1,
    /// 2.
    Head = 2,
    /// 3.
    Delete = 3,
    /// 4 (A76xx and SIM767x only; SIM7600 answers `ERROR`).
    Put = 4,
}

/// `AT+HTTPACTION=<method>`: sends the request. `OK` comes at once; the result arrives as
/// `+HTTPACTION: <method>,<status|errcode>,<datalen>`
/// ([`Urc::HttpAction`](super::urc::Urc::HttpAction)) within [`Self::result_deadline`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HttpAction {
    /// The method.
    pub method: HttpMethod,
}

impl HttpAction {
    /// A GET.
    pub const GET: HttpAction = HttpAction {
        method: HttpMethod::Get,
    };

    /// How long to wait for the result URC after `OK`: the manual's 120 s maximum response
    /// time plus 10 s for the line to arrive.
    pub const fn result_deadline(&self) -> Duration {
        Duration::from_secs(130)
    }
}

impl AtCommand for HttpAction {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+HTTPACTION=")?;
        enc.u32(self.method as u32)
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// `AT+HTTPREAD?`: how many body bytes the module holds, `+HTTPREAD: LEN,<len>`. SIM7600
/// answers what is readable now, A76xx and SIM767x what remains (LilyGo's notes); `ERROR`
/// when there is nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HttpReadLen;

impl AtCommand for HttpReadLen {
    type Response<'a> = u32;
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+HTTPREAD?")
    }
    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+HTTPREAD:")
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<u32, ParseError> {
        let mut p = lines.expect_prefixed(b"+HTTPREAD:")?;
        let tag = p.str()?;
        if !tag.eq_ignore_ascii_case("LEN") {
            return Err(ParseError::UnexpectedValue);
        }
        let n = p.u32()?;
        lines.end()?;
        Ok(n)
    }
}

/// `AT+HTTPREAD=<offset>,<len>` (or `AT+HTTPREAD` for the SIM800-style set): reads body
/// bytes the module holds, with the client's payload calls (`read_data`, `send_receive`).
///
/// The framing differs by family and the engine takes every form
/// ([`DataLength::Chunked`]): SIM7600 and A76xx answer `OK` first, then pieces
/// `+HTTPREAD: DATA,<n>` (SIM7600) or `+HTTPREAD: <n>` (A76xx) each followed by exactly `n`
/// bytes, and `+HTTPREAD: 0`; the SIM800-style set answers `+HTTPREAD: <n>`, the bytes, then
/// `OK`. The bytes are counted, never scanned: a body may contain `OK` or `+HTTPREAD:`. A
/// module returns fewer bytes than asked when it holds fewer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HttpRead {
    /// `(offset, len)`; `None` sends the bare `AT+HTTPREAD` (SIM800-style: all of it).
    pub range: Option<(u32, u32)>,
}

/// The longest silence while the body of [`HttpRead`] arrives.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

impl AtCommand for HttpRead {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+HTTPREAD")?;
        if let Some((offset, len)) = self.range {
            if len == 0 {
                return Err(EncodeError::OutOfRange {
                    value: 0,
                    min: 1,
                    max: i64::from(u32::MAX),
                });
            }
            enc.raw(b"=")?;
            enc.u32(offset)?;
            enc.comma()?;
            enc.u32(len)?;
        }
        Ok(())
    }
    fn timeout(&self) -> Duration {
        READ_TIMEOUT
    }
    fn data(&self) -> DataPhase<'_> {
        DataPhase::Receive(DataLength::Chunked {
            header: b"+HTTPREAD:",
            total: None,
        })
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// Longest file name `AT+HTTPREADFILE` takes (A76xx: 112 characters).
pub const FILE_NAME_MAX: usize = 112;

/// `AT+HTTPREADFILE="<name>"[,<path>]`: saves the response body to a file in the module.
/// `OK` comes at once; `+HTTPREADFILE: <err>`
/// ([`Urc::HttpReadFile`](super::urc::Urc::HttpReadFile)) says when it is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HttpReadFile<'a> {
    /// File name, without a directory.
    pub name: &'a str,
    /// Where: SIM7600 1 `F:/`, 2 `D:/` (SD), 3 `E:/`, 4 `/mssl_cert/`; A76xx 1 `C:/`, 2 `D:/`.
    /// `None`: the module's default.
    pub path: Option<u8>,
}

impl AtCommand for HttpReadFile<'_> {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+HTTPREADFILE=")?;
        super::quoted_file_name(enc, self.name, FILE_NAME_MAX)?;
        if let Some(path) = self.path {
            enc.comma()?;
            enc.ranged(u32::from(path), 1, 4)?;
        }
        Ok(())
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// `AT+HTTPSTATUS?` (SIM800-style set): `+HTTPSTATUS: <method>,<status>,<finished>,<remain>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HttpStatusQuery;

/// The answer of [`HttpStatusQuery`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HttpSessionStatus<'a> {
    /// `GET`, `POST` or `HEAD`.
    pub method: &'a str,
    /// 0 idle, 1 receiving, 2 sending.
    pub state: u8,
    /// Bytes transferred so far.
    pub finished: u32,
    /// Bytes still to transfer.
    pub remaining: u32,
}

impl AtCommand for HttpStatusQuery {
    type Response<'a> = HttpSessionStatus<'a>;
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+HTTPSTATUS?")
    }
    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+HTTPSTATUS:")
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<HttpSessionStatus<'a>, ParseError> {
        let mut p: Params<'a> = lines.expect_prefixed(b"+HTTPSTATUS:")?;
        let status = HttpSessionStatus {
            method: p.str()?,
            state: p.u8()?,
            finished: p.u32()?,
            remaining: p.u32()?,
        };
        lines.end()?;
        Ok(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quectel::test_support::{encodes, refuses};

    #[test]
    fn encodes_every_command() {
        encodes! {
            HttpInit => b"AT+HTTPINIT";
            HttpTerm => b"AT+HTTPTERM";
            HttpPara::Url("https://example.com:8443/fw.bin") =>
                b"AT+HTTPPARA=\"URL\",\"https://example.com:8443/fw.bin\"";
            HttpPara::ConnectTimeout(60) => b"AT+HTTPPARA=\"CONNECTTO\",60";
            HttpPara::ReceiveTimeout(2) => b"AT+HTTPPARA=\"RECVTO\",2";
            HttpPara::ResponseTimeout(120) => b"AT+HTTPPARA=\"RESPTO\",120";
            HttpPara::Content("application/octet-stream") =>
                b"AT+HTTPPARA=\"CONTENT\",\"application/octet-stream\"";
            HttpPara::Accept("*/*") => b"AT+HTTPPARA=\"ACCEPT\",\"*/*\"";
            HttpPara::UserAgent("cellular-ota") => b"AT+HTTPPARA=\"UA\",\"cellular-ota\"";
            HttpPara::SslConfig(9) => b"AT+HTTPPARA=\"SSLCFG\",9";
            HttpPara::UserData { name: "Range", value: "bytes=1024-2047" } =>
                b"AT+HTTPPARA=\"USERDATA\",\"Range: bytes=1024-2047\"";
            HttpPara::Break(2000) => b"AT+HTTPPARA=\"BREAK\",2000";
            HttpPara::BreakEnd(4095) => b"AT+HTTPPARA=\"BREAKEND\",4095";
            HttpPara::ReadMode(true) => b"AT+HTTPPARA=\"READMODE\",1";
            HttpPara::Cid(1) => b"AT+HTTPPARA=\"CID\",1";
            HttpAction::GET => b"AT+HTTPACTION=0";
            HttpAction { method: HttpMethod::Put } => b"AT+HTTPACTION=4";
            HttpReadLen => b"AT+HTTPREAD?";
            HttpRead { range: Some((0, 1024)) } => b"AT+HTTPREAD=0,1024";
            HttpRead { range: None } => b"AT+HTTPREAD";
            HttpReadFile { name: "fw.bin", path: None } => b"AT+HTTPREADFILE=\"fw.bin\"";
            HttpReadFile { name: "fw.bin", path: Some(1) } => b"AT+HTTPREADFILE=\"fw.bin\",1";
            HttpStatusQuery => b"AT+HTTPSTATUS?";
        }
    }

    #[test]
    fn refuses_what_would_break_the_line_or_the_range() {
        refuses! {
            HttpPara::Url("http://a/b\"\r\nAT+CFUN=0") =>
                EncodeError::ForbiddenByte { byte: b'"', position: 10 };
            HttpPara::Url("ftp://a/b") =>
                EncodeError::Invalid("URL must start with http:// or https://");
            HttpPara::ConnectTimeout(19) =>
                EncodeError::OutOfRange { value: 19, min: 20, max: 120 };
            HttpPara::SslConfig(10) => EncodeError::OutOfRange { value: 10, min: 0, max: 9 };
            HttpPara::UserData { name: "Range:", value: "x" } =>
                EncodeError::ForbiddenByte { byte: b':', position: 5 };
            HttpPara::UserData { name: "X", value: "a\"b" } =>
                EncodeError::ForbiddenByte { byte: b'"', position: 1 };
            HttpPara::Content("a\rb") => EncodeError::ForbiddenByte { byte: b'\r', position: 1 };
            HttpReadFile { name: "", path: None } => EncodeError::Empty;
            HttpReadFile { name: "../x", path: None } =>
                EncodeError::ForbiddenByte { byte: b'/', position: 2 };
            HttpReadFile { name: "x", path: Some(5) } =>
                EncodeError::OutOfRange { value: 5, min: 1, max: 4 };
        }
        let long = "v".repeat(USER_DATA_MAX);
        refuses! {
            HttpPara::UserData { name: "X", value: &long } =>
                EncodeError::TooLong { len: USER_DATA_MAX + 3, max: USER_DATA_MAX };
        }
    }

    #[test]
    fn parses_the_answers() {
        // No space after the colon, as a SIM7670G printed it (`simcom-at.md` §7.8).
        assert_eq!(
            HttpReadLen.parse(Lines::new(b"+HTTPREAD:LEN,1024")),
            Ok(1024)
        );
        assert_eq!(
            HttpReadLen.parse(Lines::new(b"+HTTPREAD: LEN,3762")),
            Ok(3762)
        );
        assert_eq!(
            HttpReadLen.parse(Lines::new(b"+HTTPREAD: 12")),
            Err(ParseError::UnexpectedValue)
        );
        assert_eq!(
            HttpStatusQuery.parse(Lines::new(b"+HTTPSTATUS: GET,1,1440,7915")),
            Ok(HttpSessionStatus {
                method: "GET",
                state: 1,
                finished: 1440,
                remaining: 7915
            })
        );
        assert_eq!(HttpInit.parse(Lines::new(b"")), Ok(()));
    }
}
