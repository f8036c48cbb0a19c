//! HTTP(S) commands of SIM7000 (firmware from 1351B03 A / 1529B01 G / 1351B05 E) and
//! SIM7070 / SIM7080 / SIM7090: `AT+SHCONF`, `AT+SHCONN`, `AT+SHREQ`, `AT+SHDISC` and
//! `AT+HTTPTOFS` (`simcom-at.md` §2.3).
//!
//! A request is [`ShConf`] (URL — scheme and host only —, body and header lengths), `AT+SHCONN`,
//! headers ([`ShClearHeaders`], [`ShAddHeader`]: a `Range` header asks for part of the body),
//! [`ShRequest`] (answered `OK`, then [`Urc::ShReq`](super::urc::Urc::ShReq)), the reads
//! ([`ShRead`]: bytes after `OK`, in pieces `+SHREAD: <n>`) and
//! `AT+SHDISC`. The whole body must fit the module (`AT+SHREAD=?`: about 300 KB), and bodies
//! above about 40 KB fail with status 602: request ranges.
//!
//! ```
//! use cellular_ota::at::{AtCommand, Encoder};
//! use cellular_ota::simcom::sh::{ShAddHeader, ShConf, ShMethod, ShRequest};
//!
//! let mut buf = [0u8; 128];
//! let mut enc = Encoder::new(&mut buf);
//! ShConf::Url("https://example.com").encode(&mut enc).unwrap();
//! assert_eq!(enc.as_bytes(), b"AT+SHCONF=\"URL\",\"https://example.com\"");
//! let mut enc = Encoder::new(&mut buf);
//! ShRequest { path: "/fw.bin", method: ShMethod::Get }.encode(&mut enc).unwrap();
//! assert_eq!(enc.as_bytes(), b"AT+SHREQ=\"/fw.bin\",1");
//! ```

use core::time::Duration;

use crate::at::command::check_text;
use crate::at::{
    AtCommand, DataLength, DataPhase, EncodeError, Encoder, Lines, ParseError, ResponseLines,
};
use crate::quectel::http::{check_header_name, parse_url};

/// Longest `"URL"` of `AT+SHCONF` (the manual's text says 64 bytes; `AT+SHCONF=?` on SIM7070
/// reports 512, LilyGo enforces 64: the smaller is enforced).
pub const SH_URL_MAX: usize = 64;

/// Longest header name plus value of `AT+SHAHEAD` (and most `"HEADERLEN"`).
pub const SH_HEADER_MAX: usize = 350;

/// Longest request path of `AT+SHREQ` this crate sends (the manuals give no limit; the
/// URL limit of `AT+HTTPTOFS` on SIM7070, 1023, bounds it).
pub const SH_PATH_MAX: usize = 1023;

/// `AT+SHCONF=<tag>,<value>`: one setting of the HTTP connection. URL, body length and
/// header length must be set before `AT+SHCONN`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ShConf<'a> {
    /// `"URL","<scheme>://<host>[:<port>]"`: no path (the path goes with [`ShRequest`]).
    Url(&'a str),
    /// `"BODYLEN",<n>`: room for a request body (SIM7070: 0–4096; SIM7000: at most 1024).
    BodyLen(u16),
    /// `"HEADERLEN",<0..=350>`: room for request headers.
    HeaderLen(u16),
    /// `"TIMEOUT",<30..=1800>`: seconds (default 60).
    Timeout(u16),
    /// `"POLLCNT",<1..=100>` (SIM7070).
    PollCount(u8),
    /// `"POLLINTMS",<500..=5000>` (SIM7070).
    PollIntervalMs(u16),
    /// `"IPVER",<0|1>` (SIM7070): 0 IPv4, 1 IPv6.
    IpVersion(u8),
}

impl AtCommand for ShConf<'_> {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+SHCONF=")?;
        match *self {
            ShConf::Url(url) => {
                parse_url(url)?;
                let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
                if after_scheme.contains(['/', '?', '#']) {
                    return Err(EncodeError::Invalid(
                        "AT+SHCONF takes scheme, host and port only: the path goes with AT+SHREQ",
                    ));
                }
                enc.raw(b"\"URL\",")?;
                enc.quoted(url, SH_URL_MAX)
            }
            ShConf::BodyLen(n) => num(enc, b"\"BODYLEN\",", n.into(), 0, 4096),
            ShConf::HeaderLen(n) => num(enc, b"\"HEADERLEN\",", n.into(), 0, 350),
            ShConf::Timeout(s) => num(enc, b"\"TIMEOUT\",", s.into(), 30, 1800),
            ShConf::PollCount(n) => num(enc, b"\"POLLCNT\",", n.into(), 1, 100),
            ShConf::PollIntervalMs(n) => num(enc, b"\"POLLINTMS\",", n.into(), 500, 5000),
            ShConf::IpVersion(v) => num(enc, b"\"IPVER\",", v.into(), 0, 1),
        }
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

fn num(enc: &mut Encoder<'_>, tag: &[u8], v: u32, min: u32, max: u32) -> Result<(), EncodeError> {
    enc.raw(tag)?;
    enc.ranged(v, min, max)
}

/// `AT+SHCONN`: connects to the configured server (TLS too, with [`ShSsl`]). The manuals give
/// no maximum time; this crate waits the default `"TIMEOUT"` (60 s) plus 10 s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ShConn;

impl AtCommand for ShConn {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+SHCONN")
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(70)
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// `AT+SHDISC`: closes the connection (`ERROR` if none is open).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ShDisc;

impl AtCommand for ShDisc {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+SHDISC")
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// `AT+SHSTATE?`: `+SHSTATE: <0|1>`; true when connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ShStateQuery;

impl AtCommand for ShStateQuery {
    type Response<'a> = bool;
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+SHSTATE?")
    }
    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+SHSTATE:")
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<bool, ParseError> {
        let state = lines.expect_prefixed(b"+SHSTATE:")?.u8()?;
        lines.end()?;
        match state {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(ParseError::UnexpectedValue),
        }
    }
}

/// `AT+SHCHEAD`: clears the request headers (they accumulate otherwise).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ShClearHeaders;

impl AtCommand for ShClearHeaders {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+SHCHEAD")
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// `AT+SHAHEAD="<name>","<value>"`: adds a request header (after `AT+SHCONN`), e.g.
/// `Range: bytes=0-65535`. Name and value together at most [`SH_HEADER_MAX`] bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ShAddHeader<'a> {
    /// Header name (token characters only).
    pub name: &'a str,
    /// Header value (printable ASCII, no `"`).
    pub value: &'a str,
}

impl AtCommand for ShAddHeader<'_> {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        check_header_name(self.name)?;
        check_text(self.value.as_bytes(), SH_HEADER_MAX)?;
        let len = self.name.len() + self.value.len();
        if len > SH_HEADER_MAX {
            return Err(EncodeError::TooLong {
                len,
                max: SH_HEADER_MAX,
            });
        }
        enc.raw(b"AT+SHAHEAD=")?;
        enc.quoted(self.name, SH_HEADER_MAX)?;
        enc.comma()?;
        enc.quoted(self.value, SH_HEADER_MAX)
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// The request type of [`ShRequest`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ShMethod {
    /// 1.
    Get = 1,
    /// 2.
    Put = 2,
    /// 3.
    Post = 3,
    /// 4.
    Patch = 4,
    /// 5: the answer's length is the header block's, and `AT+SHREAD` returns the headers.
    Head = 5,
}

/// `AT+SHREQ="<path>",<type>`: sends the request. `OK` comes at once; the result arrives as
/// `+SHREQ: "<method>",<status>,<datalen>` ([`Urc::ShReq`](super::urc::Urc::ShReq)) within
/// [`Self::result_deadline`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ShRequest<'a> {
    /// Path and query, starting with `/`.
    pub path: &'a str,
    /// The method.
    pub method: ShMethod,
}

impl ShRequest<'_> {
    /// How long to wait for the result URC after `OK`: the default `"TIMEOUT"` (60 s) plus
    /// 10 s. With [`ShConf::Timeout`] set, wait that long plus 10 s instead.
    pub const fn result_deadline(&self) -> Duration {
        Duration::from_secs(70)
    }
}

impl AtCommand for ShRequest<'_> {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        if !self.path.starts_with('/') {
            return Err(EncodeError::Invalid("the AT+SHREQ path starts with /"));
        }
        if let Some(p) = self.path.bytes().position(|c| c == b' ') {
            return Err(EncodeError::ForbiddenByte {
                byte: b' ',
                position: p,
            });
        }
        enc.raw(b"AT+SHREQ=")?;
        enc.quoted(self.path, SH_PATH_MAX)?;
        enc.comma()?;
        enc.u32(self.method as u32)
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// The most `AT+SHREAD` reads from one response (`AT+SHREAD=?` on SIM7070: 307200; SIM7000
/// says 306176).
pub const SH_READ_MAX: u32 = 307_200;

/// `AT+SHREAD=<start>,<len>`: reads `len` body bytes at `start`, with the client's payload
/// calls. `OK` comes first, then pieces `+SHREAD: <n>` of at most 2048 bytes, each followed
/// by exactly `n` bytes; there is no closing header, so the payload ends when `len` bytes
/// have come ([`DataLength::Chunked`] with a total). Asking for more than the module holds
/// is an error on these modules: ask for what `+SHREQ:` announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ShRead {
    /// First byte.
    pub start: u32,
    /// Bytes, 1..=[`SH_READ_MAX`].
    pub len: u32,
}

impl AtCommand for ShRead {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+SHREAD=")?;
        enc.ranged(self.start, 0, SH_READ_MAX)?;
        enc.comma()?;
        enc.ranged(self.len, 1, SH_READ_MAX)
    }
    fn timeout(&self) -> Duration {
        super::http::READ_TIMEOUT
    }
    fn data(&self) -> DataPhase<'_> {
        DataPhase::Receive(DataLength::Chunked {
            header: b"+SHREAD:",
            total: Some(self.len),
        })
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// Longest certificate file name of `AT+SHSSL` this crate sends.
pub const CERT_NAME_MAX: usize = 64;

/// `AT+SHSSL=<ctx>,"<ca>"[,"<cert>"]`: the certificates for `https://` (an empty CA name
/// skips the server's verification, which this crate never chooses for you).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ShSsl<'a> {
    /// The `AT+CSSLCFG` context (0–5).
    pub ctx: u8,
    /// The CA certificate's file name (converted with `AT+CSSLCFG="CONVERT"`).
    pub ca: &'a str,
    /// A client certificate's file name.
    pub cert: Option<&'a str>,
}

impl AtCommand for ShSsl<'_> {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+SHSSL=")?;
        enc.ranged(u32::from(self.ctx), 0, 5)?;
        enc.comma()?;
        enc.quoted(self.ca, CERT_NAME_MAX)?;
        if let Some(cert) = self.cert {
            enc.comma()?;
            enc.quoted(cert, CERT_NAME_MAX)?;
        }
        Ok(())
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// Longest file path of `AT+HTTPTOFS` (`AT+HTTPTOFS=?`: 1–127).
pub const TOFS_PATH_MAX: usize = 127;

/// Longest URL of `AT+HTTPTOFS` (SIM7070: 1023; SIM7000: 255; the SIM7000 limit is enforced
/// so one configuration serves both).
pub const TOFS_URL_MAX: usize = 255;

/// `AT+HTTPTOFS="<url>","<path>"[,<timeout>[,<retries>]]`: downloads straight into the
/// module's file system (`/fota/update.zip` for the module's own FOTA). `OK` comes at once;
/// `+HTTPTOFS: <status>,<len>` ([`Urc::HttpToFs`](super::urc::Urc::HttpToFs)) when done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HttpToFs<'a> {
    /// The URL.
    pub url: &'a str,
    /// The file, with its directory (`/customer/`, `/custapp/`, `/fota/`).
    pub path: &'a str,
    /// Seconds, 10–1000 (default 50).
    pub timeout: Option<u16>,
    /// Retries, 5–100 (default 5); needs `timeout`.
    pub retries: Option<u8>,
}

impl AtCommand for HttpToFs<'_> {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        parse_url(self.url)?;
        if !self.path.starts_with('/') {
            return Err(EncodeError::Invalid("the AT+HTTPTOFS path is absolute"));
        }
        if self.retries.is_some() && self.timeout.is_none() {
            return Err(EncodeError::Invalid(
                "AT+HTTPTOFS takes retries only after a timeout",
            ));
        }
        enc.raw(b"AT+HTTPTOFS=")?;
        enc.quoted(self.url, TOFS_URL_MAX)?;
        enc.comma()?;
        enc.quoted(self.path, TOFS_PATH_MAX)?;
        if let Some(t) = self.timeout {
            enc.comma()?;
            enc.ranged(u32::from(t), 10, 1000)?;
        }
        if let Some(r) = self.retries {
            enc.comma()?;
            enc.ranged(u32::from(r), 5, 100)?;
        }
        Ok(())
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quectel::test_support::{encodes, refuses};

    #[test]
    fn encodes_every_command() {
        encodes! {
            ShConf::Url("https://example.com:443") => b"AT+SHCONF=\"URL\",\"https://example.com:443\"";
            ShConf::BodyLen(1024) => b"AT+SHCONF=\"BODYLEN\",1024";
            ShConf::HeaderLen(350) => b"AT+SHCONF=\"HEADERLEN\",350";
            ShConf::Timeout(60) => b"AT+SHCONF=\"TIMEOUT\",60";
            ShConf::PollCount(3) => b"AT+SHCONF=\"POLLCNT\",3";
            ShConf::PollIntervalMs(500) => b"AT+SHCONF=\"POLLINTMS\",500";
            ShConf::IpVersion(0) => b"AT+SHCONF=\"IPVER\",0";
            ShConn => b"AT+SHCONN";
            ShRead { start: 0, len: 387 } => b"AT+SHREAD=0,387";
            ShDisc => b"AT+SHDISC";
            ShStateQuery => b"AT+SHSTATE?";
            ShClearHeaders => b"AT+SHCHEAD";
            ShAddHeader { name: "Range", value: "bytes=0-65535" } =>
                b"AT+SHAHEAD=\"Range\",\"bytes=0-65535\"";
            ShRequest { path: "/fw.bin?v=2", method: ShMethod::Get } => b"AT+SHREQ=\"/fw.bin?v=2\",1";
            ShRequest { path: "/", method: ShMethod::Head } => b"AT+SHREQ=\"/\",5";
            ShSsl { ctx: 1, ca: "ca.crt", cert: None } => b"AT+SHSSL=1,\"ca.crt\"";
            ShSsl { ctx: 1, ca: "ca.crt", cert: Some("c.crt") } => b"AT+SHSSL=1,\"ca.crt\",\"c.crt\"";
            HttpToFs { url: "http://h/update.zip", path: "/fota/update.zip", timeout: None, retries: None } =>
                b"AT+HTTPTOFS=\"http://h/update.zip\",\"/fota/update.zip\"";
            HttpToFs { url: "http://h/u", path: "/customer/u", timeout: Some(300), retries: Some(10) } =>
                b"AT+HTTPTOFS=\"http://h/u\",\"/customer/u\",300,10";
        }
    }

    #[test]
    fn refuses_what_would_break_the_line_or_the_module() {
        refuses! {
            ShConf::Url("https://example.com/fw.bin") => EncodeError::Invalid(
                "AT+SHCONF takes scheme, host and port only: the path goes with AT+SHREQ");
            ShConf::Url("https://a-very-long-host-name-that-the-module-cannot-take.example.com") =>
                EncodeError::TooLong { len: 69, max: SH_URL_MAX };
            ShConf::BodyLen(4097) => EncodeError::OutOfRange { value: 4097, min: 0, max: 4096 };
            ShConf::Timeout(29) => EncodeError::OutOfRange { value: 29, min: 30, max: 1800 };
            ShAddHeader { name: "Ra nge", value: "x" } =>
                EncodeError::ForbiddenByte { byte: b' ', position: 2 };
            ShAddHeader { name: "Range", value: "x\",\"y" } =>
                EncodeError::ForbiddenByte { byte: b'"', position: 1 };
            ShRequest { path: "fw.bin", method: ShMethod::Get } =>
                EncodeError::Invalid("the AT+SHREQ path starts with /");
            ShRequest { path: "/a\"\r\nAT", method: ShMethod::Get } =>
                EncodeError::ForbiddenByte { byte: b'"', position: 2 };
            ShRequest { path: "/a b", method: ShMethod::Get } =>
                EncodeError::ForbiddenByte { byte: b' ', position: 2 };
            ShRead { start: 0, len: 0 } => EncodeError::OutOfRange { value: 0, min: 1, max: 307_200 };
            ShSsl { ctx: 6, ca: "ca", cert: None } => EncodeError::OutOfRange { value: 6, min: 0, max: 5 };
            HttpToFs { url: "http://h/u", path: "u", timeout: None, retries: None } =>
                EncodeError::Invalid("the AT+HTTPTOFS path is absolute");
            HttpToFs { url: "http://h/u", path: "/u", timeout: None, retries: Some(5) } =>
                EncodeError::Invalid("AT+HTTPTOFS takes retries only after a timeout");
            HttpToFs { url: "http://h/u", path: "/u", timeout: Some(5), retries: None } =>
                EncodeError::OutOfRange { value: 5, min: 10, max: 1000 };
        }
    }

    #[test]
    fn parses_the_state() {
        assert_eq!(ShStateQuery.parse(Lines::new(b"+SHSTATE: 1")), Ok(true));
        assert_eq!(ShStateQuery.parse(Lines::new(b"+SHSTATE: 0")), Ok(false));
        assert_eq!(
            ShStateQuery.parse(Lines::new(b"+SHSTATE: 2")),
            Err(ParseError::UnexpectedValue)
        );
    }
}
