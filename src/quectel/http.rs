//! Quectel HTTP(S) client commands: `AT+QHTTPCFG`, `AT+QHTTPURL`, `AT+QHTTPGET` (both
//! forms), `AT+QHTTPGETEX`, `AT+QHTTPPOST`, `AT+QHTTPPOSTFILE`, `AT+QHTTPREAD`,
//! `AT+QHTTPREADFILE` and `AT+QHTTPSTOP` (quectel-at.md §4), plus the URL parser and the
//! request-header builder that the request-header GET and the update flow use.
//!
//! Most HTTP results are **URCs**: `AT+QHTTPGET`, `AT+QHTTPGETEX`, `AT+QHTTPPOST`,
//! `AT+QHTTPPOSTFILE` and `AT+QHTTPREADFILE` answer `OK` at once and report the outcome
//! later as `+QHTTPGET:` / `+QHTTPPOST:` / `+QHTTPPOSTFILE:` / `+QHTTPREADFILE:` lines
//! (§1.1, §10). Other URCs may arrive in between. The commands here therefore return `()` and
//! carry a [`result_deadline`](HttpGet::result_deadline) for the wait that follows. Some
//! modules report a failure as the final result instead (`+CME ERROR: 716` on a DNS failure,
//! `+CME ERROR: 711` on a relative redirect, §4.3): the client returns those as a rejection.
//!
//! Every user-supplied string is validated before a byte is sent: URLs, header names and
//! values, file names and request-header blocks can neither end the AT line nor smuggle a
//! second command or a second HTTP request.

use core::time::Duration;

use crate::at::ParseError;
use crate::at::command::{
    AtCommand, DEFAULT_TIMEOUT, DataLength, DataPhase, EncodeError, Encoder, Lines, ResponseLines,
    check_range, check_text,
};
use crate::at::params::{after_prefix, parse_u32};

/// Longest URL `AT+QHTTPURL` accepts: EC2x/BG96 test response `+QHTTPURL: (1-700),(1-65535)`
/// (§4.2). The BG95 family may accept up to 2048 bytes (unconfirmed); this crate keeps the
/// portable limit.
pub const MAX_URL_LEN: usize = 700;

/// Longest request-header block of the request-header `AT+QHTTPGET` (BG96 test output
/// `+QHTTPGET: (1-65535),(1-2048),(1-65535)`, §4.3).
pub const MAX_REQUEST_HEADER_LEN: usize = 2048;

/// Longest module file name (including an optional `UFS:` / `RAM:` prefix) accepted by the
/// file-based HTTP commands and by the SSL certificate settings. The reference gives no limit;
/// 80 bytes is this crate's conservative choice.
pub const MAX_FILE_NAME_LEN: usize = 80;

/// Longest header name, header value, `custom_header` string or `user:password` pair written
/// in quotes into `AT+QHTTPCFG`. The reference gives no limit; 256 bytes is this crate's
/// choice (it keeps the command line short enough for every module's input buffer).
pub const MAX_HEADER_TEXT_LEN: usize = 256;

/// Largest `AT+QHTTPPOST` body. The reference gives no limit (§4.5); 1 024 000 bytes is the
/// range usually printed in Quectel's HTTP manuals (unconfirmed), kept here so a length
/// that no module accepts is refused before anything is sent.
pub const MAX_POST_LEN: usize = 1_024_000;

/// Default of every `<rsptime>`, `<timeout>`, `<input_time>` and `<wait_time>` in seconds
/// (§4.2, §4.3, §4.6).
pub const DEFAULT_WAIT_SECS: u16 = 60;

/// How long the host waits for `CONNECT` after a command that sends data (§9: "~5 s").
pub const CONNECT_WAIT: Duration = Duration::from_secs(5);

/// Margin added to a modem-side time limit, as Quectel's own driver does (`t + 1` s, §4.3,
/// §9), so the modem's own timeout report arrives before the host gives up.
pub const RESULT_MARGIN: Duration = Duration::from_secs(1);

/// Quiet period used by [`HttpRead::until_trailer`]: once `\r\nOK\r\n` and
/// `+QHTTPREAD: <err>` have arrived, the line must stay silent this long before the payload
/// is declared complete. 200 ms is long compared with the gap between two bytes of one UART
/// burst (well under 1 ms at 115200 baud) and short enough not to slow a download; body
/// bytes arriving after the candidate trailer turn it back into payload (see
/// [`DataLength::UntilTrailer`]).
pub const READ_TRAILER_QUIET: Duration = Duration::from_millis(200);

const fn secs(s: u16) -> Duration {
    Duration::from_secs(s as u64)
}

fn write_flag(enc: &mut Encoder<'_>, on: bool) -> Result<(), EncodeError> {
    enc.raw(if on { b"1" } else { b"0" })
}

fn write_u64(enc: &mut Encoder<'_>, v: u64) -> Result<(), EncodeError> {
    let mut tmp = [0u8; 20];
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
    enc.raw(&tmp[i..])
}

fn forbidden(s: &[u8], position: usize) -> EncodeError {
    EncodeError::ForbiddenByte {
        byte: s.get(position).copied().unwrap_or(0),
        position,
    }
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Checks an HTTP header name: 1..=[`MAX_HEADER_TEXT_LEN`] token characters (RFC 9110:
/// letters, digits and ``!#$%&'*+-.^_`|~``), so no space, `:`, quote or control byte.
pub fn check_header_name(name: &str) -> Result<(), EncodeError> {
    let b = name.as_bytes();
    if b.is_empty() {
        return Err(EncodeError::Empty);
    }
    if b.len() > MAX_HEADER_TEXT_LEN {
        return Err(EncodeError::TooLong {
            len: b.len(),
            max: MAX_HEADER_TEXT_LEN,
        });
    }
    match b.iter().position(|&c| !is_token_byte(c)) {
        Some(p) => Err(forbidden(b, p)),
        None => Ok(()),
    }
}

/// Checks an HTTP header value for `AT+QHTTPCFG`: printable ASCII without `"` (see
/// [`check_text`]), at most [`MAX_HEADER_TEXT_LEN`] bytes. May be empty.
pub fn check_header_value(value: &str) -> Result<(), EncodeError> {
    check_text(value.as_bytes(), MAX_HEADER_TEXT_LEN)
}

/// Checks a header value that goes into a request-header block (sent after `CONNECT`, so a
/// `"` is harmless there, e.g. `If-Match: "etag"`): printable ASCII only.
fn check_block_value(value: &str) -> Result<(), EncodeError> {
    let b = value.as_bytes();
    if b.len() > MAX_HEADER_TEXT_LEN {
        return Err(EncodeError::TooLong {
            len: b.len(),
            max: MAX_HEADER_TEXT_LEN,
        });
    }
    match b.iter().position(|&c| !(0x20..=0x7e).contains(&c)) {
        Some(p) => Err(forbidden(b, p)),
        None => Ok(()),
    }
}

/// Checks a module file name such as `UFS:fw.bin`, `RAM:x` or `fw.bin`.
///
/// Rules chosen by this crate (the reference shows only such names, §4.7, §6, §7): an
/// optional `UFS:` or `RAM:` prefix, then 1 or more of `A-Z a-z 0-9 _ - .`, at most
/// [`MAX_FILE_NAME_LEN`] bytes in all. Wildcards (`*`), paths (`/`), quotes, spaces and
/// control bytes are refused.
pub fn check_file_name(name: &str) -> Result<(), EncodeError> {
    let b = name.as_bytes();
    if b.len() > MAX_FILE_NAME_LEN {
        return Err(EncodeError::TooLong {
            len: b.len(),
            max: MAX_FILE_NAME_LEN,
        });
    }
    let start = if b.starts_with(b"UFS:") || b.starts_with(b"RAM:") {
        4
    } else {
        0
    };
    let rest = b.get(start..).unwrap_or(&[]);
    if rest.is_empty() {
        return Err(EncodeError::Empty);
    }
    match rest
        .iter()
        .position(|&c| !(c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')))
    {
        Some(p) => Err(forbidden(b, start + p)),
        None => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------
// URL
// ---------------------------------------------------------------------------------------

/// The scheme of an HTTP URL; it selects plain HTTP or HTTPS on the module (§4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Scheme {
    /// `http://`
    Http,
    /// `https://` (configure the SSL context first, §4.10, §6).
    Https,
}

impl Scheme {
    /// The port used when the URL names none: 80 or 443.
    pub const fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// The parts of an HTTP(S) URL, borrowed from it. Built by [`parse_url`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Url<'a> {
    /// `http` or `https` (the URL's scheme is compared case-insensitively).
    pub scheme: Scheme,
    /// The host as written: a name, an IPv4 address, or an IPv6 address in brackets.
    pub host: &'a str,
    /// The port: the one written in the URL, else 80 / 443.
    pub port: u16,
    /// True if the URL names the port explicitly (`host:8080`); `Host:` then carries it.
    pub explicit_port: bool,
    /// The path, always starting with `/` (`/` when the URL has none). Percent-escapes are
    /// kept as written.
    pub path: &'a str,
    /// The query after `?` (without the `?`), if any. A `#fragment` is dropped: it is never
    /// sent to a server.
    pub query: Option<&'a str>,
}

/// Splits an `http://` or `https://` URL into scheme, host, port, path and query.
///
/// The URL must be 1..=[`MAX_URL_LEN`] bytes of printable ASCII without spaces or `"`
/// (what `AT+QHTTPURL` can carry, §4.2), start with `http://` or `https://` (scheme in any
/// case), and name a host made of letters, digits, `-`, `.` and `_` (or an IPv6 address in
/// brackets), optionally followed by `:port` with port 1..=65535. User info (`user@host`) is
/// refused: use [`HttpConfig::Auth`] instead.
///
/// ```
/// use cellular_ota::quectel::http::{parse_url, Scheme};
/// let u = parse_url("https://fw.example.com:8443/v2/app.bin?x=1").unwrap();
/// assert_eq!(u.scheme, Scheme::Https);
/// assert_eq!((u.host, u.port, u.path, u.query), ("fw.example.com", 8443, "/v2/app.bin", Some("x=1")));
/// ```
pub fn parse_url(url: &str) -> Result<Url<'_>, EncodeError> {
    let b = url.as_bytes();
    if b.is_empty() {
        return Err(EncodeError::Empty);
    }
    check_text(b, MAX_URL_LEN)?;
    if let Some(p) = b.iter().position(|&c| c == b' ') {
        return Err(forbidden(b, p));
    }
    let (scheme, start) = if b.len() >= 7 && b[..7].eq_ignore_ascii_case(b"http://") {
        (Scheme::Http, 7)
    } else if b.len() >= 8 && b[..8].eq_ignore_ascii_case(b"https://") {
        (Scheme::Https, 8)
    } else {
        return Err(EncodeError::Invalid(
            "URL must start with http:// or https://",
        ));
    };
    let rest = url.get(start..).unwrap_or("");
    let auth_len = rest
        .bytes()
        .position(|c| matches!(c, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let (authority, target) = rest.split_at(auth_len);
    if authority.is_empty() {
        return Err(EncodeError::Invalid("URL has no host"));
    }
    if authority.contains('@') {
        return Err(EncodeError::Invalid(
            "user info in the URL is not supported (use the auth setting)",
        ));
    }
    let ab = authority.as_bytes();
    // Split host and port; an IPv6 literal keeps its brackets in `host`.
    let (host, port_text) = if ab.first() == Some(&b'[') {
        let close = ab
            .iter()
            .position(|&c| c == b']')
            .ok_or(EncodeError::Invalid("IPv6 host has no closing bracket"))?;
        let inner = ab.get(1..close).unwrap_or(&[]);
        if inner.is_empty() {
            return Err(EncodeError::Invalid("URL has no host"));
        }
        if let Some(p) = inner
            .iter()
            .position(|&c| !(c.is_ascii_hexdigit() || c == b':' || c == b'.'))
        {
            return Err(forbidden(b, start + 1 + p));
        }
        let after = authority.get(close + 1..).unwrap_or("");
        let port = match after.as_bytes() {
            [] => None,
            [b':', ..] => Some(after.get(1..).unwrap_or("")),
            _ => {
                return Err(EncodeError::Invalid("unexpected text after an IPv6 host"));
            }
        };
        (authority.get(..=close).unwrap_or(""), port)
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(EncodeError::Invalid("URL has no host"));
    }
    if ab.first() != Some(&b'[') {
        if let Some(p) = host
            .bytes()
            .position(|c| !(c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_')))
        {
            return Err(forbidden(b, start + p));
        }
    }
    let port = match port_text {
        None => scheme.default_port(),
        Some(t) => {
            let v = parse_u32(t.as_bytes())
                .map_err(|_| EncodeError::Invalid("URL port is not a number"))?;
            check_range(i64::from(v), 1, 65535)?;
            v as u16
        }
    };
    let target = match target.split_once('#') {
        Some((t, _fragment)) => t,
        None => target,
    };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    Ok(Url {
        scheme,
        host,
        port,
        explicit_port: port_text.is_some(),
        path: if path.is_empty() { "/" } else { path },
        query,
    })
}

/// Checks a complete request-header block for the request-header `AT+QHTTPGET` (or a header
/// part of a POST in request-header mode):
///
/// * 1..=[`MAX_REQUEST_HEADER_LEN`] bytes;
/// * printable ASCII plus CR and LF only (no NUL, no other control byte, no non-ASCII);
/// * every line ends in CR LF (no bare CR, no bare LF);
/// * it ends with the empty line `\r\n\r\n`, and that is its only empty line, so the module
///   cannot be made to send a body or a second request after it;
/// * its first line (the request line) is not empty.
pub fn check_request_header(block: &[u8]) -> Result<(), EncodeError> {
    if block.is_empty() {
        return Err(EncodeError::Empty);
    }
    if block.len() > MAX_REQUEST_HEADER_LEN {
        return Err(EncodeError::TooLong {
            len: block.len(),
            max: MAX_REQUEST_HEADER_LEN,
        });
    }
    for (i, &c) in block.iter().enumerate() {
        let ok = match c {
            b'\r' => block.get(i + 1) == Some(&b'\n'),
            b'\n' => i > 0 && block.get(i - 1) == Some(&b'\r'),
            0x20..=0x7e => true,
            _ => false,
        };
        if !ok {
            return Err(forbidden(block, i));
        }
    }
    if !block.ends_with(b"\r\n\r\n") {
        return Err(EncodeError::Invalid(
            "request header block must end with an empty line (CR LF CR LF)",
        ));
    }
    if block.starts_with(b"\r\n") {
        return Err(EncodeError::Invalid(
            "request header block has no request line",
        ));
    }
    let first_blank = block.windows(4).position(|w| w == b"\r\n\r\n");
    if first_blank != Some(block.len() - 4) {
        return Err(EncodeError::Invalid(
            "request header block has an empty line before its end",
        ));
    }
    Ok(())
}

/// Writes a GET request-header block for the request-header `AT+QHTTPGET`
/// ([`HttpGetWithHeader`]) into `buf` and returns its length. Allocates nothing.
///
/// The block is
///
/// ```text
/// GET <path>[?<query>] HTTP/1.1\r\n
/// Host: <host>[:<port>]\r\n
/// [Range: bytes=<start>-[<end>]\r\n]
/// [<name>: <value>\r\n ...]
/// \r\n
/// ```
///
/// `url` is the URL set with [`SetHttpUrl`]: path and `Host` must match it (§4.3), so pass
/// the same string. The port appears in `Host` only when the URL names it. `range` is
/// `(first byte, last byte inclusive)`; `None` as the end asks for everything from `start`.
/// Every `extra_headers` name must be an HTTP token ([`check_header_name`]) and every value
/// printable ASCII; `Host` is refused (it is written from the URL), and so is `Range` when
/// `range` is given.
///
/// Errors: anything [`parse_url`] refuses; [`EncodeError::Invalid`] for an end before the
/// start or a duplicate header; [`EncodeError::TooLong`] when the block exceeds
/// [`MAX_REQUEST_HEADER_LEN`]; [`EncodeError::BufferTooSmall`] when it does not fit `buf`.
///
/// ```
/// use cellular_ota::quectel::http::write_get_request;
/// let mut buf = [0u8; 256];
/// let n = write_get_request(&mut buf, "http://example.com/fw.bin", Some((0, Some(1023))), &[]).unwrap();
/// assert_eq!(
///     &buf[..n],
///     b"GET /fw.bin HTTP/1.1\r\nHost: example.com\r\nRange: bytes=0-1023\r\n\r\n"
/// );
/// ```
pub fn write_get_request(
    buf: &mut [u8],
    url: &str,
    range: Option<(u64, Option<u64>)>,
    extra_headers: &[(&str, &str)],
) -> Result<usize, EncodeError> {
    let u = parse_url(url)?;
    if let Some((start, Some(end))) = range {
        if end < start {
            return Err(EncodeError::Invalid("range ends before it starts"));
        }
    }
    for &(name, value) in extra_headers {
        check_header_name(name)?;
        check_block_value(value)?;
        if name.eq_ignore_ascii_case("host") {
            return Err(EncodeError::Invalid(
                "Host is written from the URL; do not add it",
            ));
        }
        if range.is_some() && name.eq_ignore_ascii_case("range") {
            return Err(EncodeError::Invalid(
                "Range is written from the range argument; do not add it",
            ));
        }
    }
    let mut enc = Encoder::new(buf);
    enc.raw(b"GET ")?;
    enc.raw(u.path.as_bytes())?;
    if let Some(q) = u.query {
        enc.raw(b"?")?;
        enc.raw(q.as_bytes())?;
    }
    enc.raw(b" HTTP/1.1\r\nHost: ")?;
    enc.raw(u.host.as_bytes())?;
    if u.explicit_port {
        enc.raw(b":")?;
        enc.u32(u32::from(u.port))?;
    }
    enc.raw(b"\r\n")?;
    if let Some((start, end)) = range {
        enc.raw(b"Range: bytes=")?;
        write_u64(&mut enc, start)?;
        enc.raw(b"-")?;
        if let Some(end) = end {
            write_u64(&mut enc, end)?;
        }
        enc.raw(b"\r\n")?;
    }
    for &(name, value) in extra_headers {
        enc.raw(name.as_bytes())?;
        enc.raw(b": ")?;
        enc.raw(value.as_bytes())?;
        enc.raw(b"\r\n")?;
    }
    enc.raw(b"\r\n")?;
    let n = enc.len();
    check_request_header(enc.as_bytes())?;
    Ok(n)
}

// ---------------------------------------------------------------------------------------
// AT+QHTTPCFG
// ---------------------------------------------------------------------------------------

/// The `"contenttype"` of a POST body (§4.1). BG96 knows only 0–3.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ContentType {
    /// 0: `application/x-www-form-urlencoded` (module default).
    FormUrlEncoded = 0,
    /// 1: `text/plain`.
    TextPlain = 1,
    /// 2: `application/octet-stream`.
    OctetStream = 2,
    /// 3: `multipart/form-data`.
    MultipartFormData = 3,
    /// 4: `application/json` (not on BG96).
    Json = 4,
    /// 5: `image/jpeg` (not on BG96).
    Jpeg = 5,
}

/// The name of an `AT+QHTTPCFG` parameter (§4.1), for [`QueryHttpConfig`].
///
/// `"reqheader/add"` and `"reqheader/remove"` are actions, not settings, and cannot be
/// queried; they are only in [`HttpConfig`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HttpConfigName {
    /// `"contextid"`
    ContextId,
    /// `"requestheader"`
    RequestHeader,
    /// `"responseheader"`
    ResponseHeader,
    /// `"sslctxid"`
    SslContextId,
    /// `"contenttype"`
    ContentType,
    /// `"rspout/auto"`
    RspoutAuto,
    /// `"closed/ind"`
    ClosedInd,
    /// `"custom_header"`
    CustomHeader,
    /// `"auth"`
    Auth,
    /// `"closewaittime"`
    CloseWaitTime,
    /// `"windowsize"`
    WindowSize,
}

impl HttpConfigName {
    /// The name as written in the command, without quotes.
    pub const fn as_str(self) -> &'static str {
        match self {
            HttpConfigName::ContextId => "contextid",
            HttpConfigName::RequestHeader => "requestheader",
            HttpConfigName::ResponseHeader => "responseheader",
            HttpConfigName::SslContextId => "sslctxid",
            HttpConfigName::ContentType => "contenttype",
            HttpConfigName::RspoutAuto => "rspout/auto",
            HttpConfigName::ClosedInd => "closed/ind",
            HttpConfigName::CustomHeader => "custom_header",
            HttpConfigName::Auth => "auth",
            HttpConfigName::CloseWaitTime => "closewaittime",
            HttpConfigName::WindowSize => "windowsize",
        }
    }
}

/// `AT+QHTTPCFG="<name>",<value>`: sets one HTTP(S) parameter (§4.1). Answers `OK`; no
/// response lines. Settings are lost at reboot. Timeout: [`DEFAULT_TIMEOUT`] (§9: 300 ms by
/// specification, 1–5 s in practice).
///
/// Which names a module knows differs (§4.1 "Seen on" column, §11.1): `contextid`,
/// `requestheader`, `responseheader`, `sslctxid` and `contenttype` are universal; the rest
/// exist only on some families and are answered with `ERROR` elsewhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HttpConfig<'a> {
    /// `"contextid",<1..=16>`: the PDP context the HTTP stack uses (default 1).
    ContextId(u8),
    /// `"requestheader",<0|1>`: 1 = the host sends the whole request header
    /// ([`HttpGetWithHeader`]); 0 = the module builds it (default).
    RequestHeader(bool),
    /// `"responseheader",<0|1>`: 1 = the response header precedes the body in the
    /// `AT+QHTTPREAD` stream (the content length still counts the body only, §4.6).
    ResponseHeader(bool),
    /// `"sslctxid",<0..=5>`: the SSL context used for `https://` URLs (§4.10).
    SslContextId(u8),
    /// `"contenttype",<0..=5>`: the POST body's content type.
    ContentType(ContentType),
    /// `"rspout/auto",<0|1>`: 1 = the module pushes the response by itself; `AT+QHTTPREAD`
    /// and `AT+QHTTPREADFILE` then always fail. Keep it 0 for this crate's readers.
    RspoutAuto(bool),
    /// `"closed/ind",<0|1>`: 1 = a `+QHTTPURC: "closed"` URC reports the session's close.
    ClosedInd(bool),
    /// `"reqheader/add","<name>","<value>"`: adds one request header while the module still
    /// builds the request (ASR Cat.1 modules, EC800M, EG800K). The name must be an HTTP
    /// token ([`check_header_name`]), the value printable ASCII without `"`.
    ReqHeaderAdd {
        /// Header name, e.g. `User-Agent`.
        name: &'a str,
        /// Header value.
        value: &'a str,
    },
    /// `"reqheader/remove","<name>"`: removes a header added with `ReqHeaderAdd`.
    ReqHeaderRemove(&'a str),
    /// `"custom_header","<Name: value>"`: one user header line (EC25/EC800M). The text must
    /// be `Name:` (an HTTP token) followed by a printable value without `"`.
    CustomHeader(&'a str),
    /// `"auth","<user>:<password>"`: basic authentication (BG95/EG25 lists). `user` must not
    /// contain `:`; the password may. Neither may contain `"` or control bytes.
    Auth {
        /// User name.
        user: &'a str,
        /// Password.
        password: &'a str,
    },
    /// `"closewaittime",<n>` (EG25 list only; meaning and range undocumented).
    CloseWaitTime(u32),
    /// `"windowsize",<n>` (EG25 list only; meaning and range undocumented).
    WindowSize(u32),
}

impl HttpConfig<'_> {
    /// The parameter's name as written in the command, without quotes.
    pub const fn name(&self) -> &'static str {
        match self {
            HttpConfig::ContextId(_) => "contextid",
            HttpConfig::RequestHeader(_) => "requestheader",
            HttpConfig::ResponseHeader(_) => "responseheader",
            HttpConfig::SslContextId(_) => "sslctxid",
            HttpConfig::ContentType(_) => "contenttype",
            HttpConfig::RspoutAuto(_) => "rspout/auto",
            HttpConfig::ClosedInd(_) => "closed/ind",
            HttpConfig::ReqHeaderAdd { .. } => "reqheader/add",
            HttpConfig::ReqHeaderRemove(_) => "reqheader/remove",
            HttpConfig::CustomHeader(_) => "custom_header",
            HttpConfig::Auth { .. } => "auth",
            HttpConfig::CloseWaitTime(_) => "closewaittime",
            HttpConfig::WindowSize(_) => "windowsize",
        }
    }
}

fn check_custom_header(h: &str) -> Result<(), EncodeError> {
    let (name, value) = h.split_once(':').ok_or(EncodeError::Invalid(
        "custom header must have the form `Name: value`",
    ))?;
    check_header_name(name)?;
    check_text(h.as_bytes(), MAX_HEADER_TEXT_LEN)?;
    check_header_value(value)
}

impl AtCommand for HttpConfig<'_> {
    type Response<'a> = ();

    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+QHTTPCFG=\"")?;
        enc.raw(self.name().as_bytes())?;
        enc.raw(b"\",")?;
        match *self {
            HttpConfig::ContextId(c) => enc.ranged(u32::from(c), 1, 16),
            HttpConfig::SslContextId(c) => enc.ranged(u32::from(c), 0, 5),
            HttpConfig::RequestHeader(on)
            | HttpConfig::ResponseHeader(on)
            | HttpConfig::RspoutAuto(on)
            | HttpConfig::ClosedInd(on) => write_flag(enc, on),
            HttpConfig::ContentType(t) => enc.u32(t as u32),
            HttpConfig::ReqHeaderAdd { name, value } => {
                check_header_name(name)?;
                check_header_value(value)?;
                enc.quoted(name, MAX_HEADER_TEXT_LEN)?;
                enc.comma()?;
                enc.quoted(value, MAX_HEADER_TEXT_LEN)
            }
            HttpConfig::ReqHeaderRemove(name) => {
                check_header_name(name)?;
                enc.quoted(name, MAX_HEADER_TEXT_LEN)
            }
            HttpConfig::CustomHeader(h) => {
                check_custom_header(h)?;
                enc.quoted(h, MAX_HEADER_TEXT_LEN)
            }
            HttpConfig::Auth { user, password } => {
                if user.is_empty() {
                    return Err(EncodeError::Empty);
                }
                check_text(user.as_bytes(), MAX_HEADER_TEXT_LEN)?;
                if let Some(p) = user.bytes().position(|c| c == b':') {
                    return Err(forbidden(user.as_bytes(), p));
                }
                check_text(password.as_bytes(), MAX_HEADER_TEXT_LEN)?;
                // Join as `user:password` in a stack buffer, then write it quoted (checked
                // again as a whole, including the combined length).
                let mut joined = [0u8; MAX_HEADER_TEXT_LEN];
                let len = user.len() + 1 + password.len();
                if len > MAX_HEADER_TEXT_LEN {
                    return Err(EncodeError::TooLong {
                        len,
                        max: MAX_HEADER_TEXT_LEN,
                    });
                }
                let mut j = Encoder::new(&mut joined);
                j.raw(user.as_bytes())?;
                j.raw(b":")?;
                j.raw(password.as_bytes())?;
                let text = core::str::from_utf8(j.as_bytes())
                    .map_err(|_| EncodeError::Invalid("credentials are not text"))?;
                enc.quoted(text, MAX_HEADER_TEXT_LEN)
            }
            HttpConfig::CloseWaitTime(v) | HttpConfig::WindowSize(v) => enc.u32(v),
        }
    }

    fn timeout(&self) -> Duration {
        DEFAULT_TIMEOUT
    }

    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// `AT+QHTTPCFG="<name>"`: reads one HTTP parameter (§4.1). Response
/// `+QHTTPCFG: "<name>",<value>` → [`HttpConfigValue`]. Timeout: [`DEFAULT_TIMEOUT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QueryHttpConfig(pub HttpConfigName);

/// The answer to [`QueryHttpConfig`]: the value as the modem wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HttpConfigValue<'a> {
    /// The parameter name as echoed by the modem (quotes removed).
    pub name: &'a str,
    /// The first value field, quotes removed (`"1"` and `1` both give `1`); empty if the
    /// modem sent none.
    pub value: &'a str,
    /// A second value field, if the modem sent one. Further fields are ignored.
    pub extra: Option<&'a str>,
}

impl HttpConfigValue<'_> {
    /// The value as a decimal number, if it is one.
    pub fn number(&self) -> Option<u32> {
        parse_u32(self.value.as_bytes()).ok()
    }

    /// The value as a 0/1 flag, if it is one.
    pub fn flag(&self) -> Option<bool> {
        match self.number() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        }
    }
}

impl AtCommand for QueryHttpConfig {
    type Response<'a> = HttpConfigValue<'a>;

    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+QHTTPCFG=\"")?;
        enc.raw(self.0.as_str().as_bytes())?;
        enc.raw(b"\"")
    }

    fn timeout(&self) -> Duration {
        DEFAULT_TIMEOUT
    }

    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+QHTTPCFG:")
    }

    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<HttpConfigValue<'a>, ParseError> {
        let mut p = lines.expect_prefixed(b"+QHTTPCFG:")?;
        let name = p.str()?;
        if !name.eq_ignore_ascii_case(self.0.as_str()) {
            return Err(ParseError::UnexpectedLine);
        }
        let value = p.opt_str()?.unwrap_or("");
        let extra = p.opt_str()?;
        lines.end()?;
        Ok(HttpConfigValue { name, value, extra })
    }
}

// ---------------------------------------------------------------------------------------
// AT+QHTTPURL
// ---------------------------------------------------------------------------------------

/// `AT+QHTTPURL=<len>,<timeout>`: sets the URL of the next request (§4.2).
///
/// The modem answers `CONNECT`; the URL bytes then follow with **no** terminator
/// ([`DataPhase::Send`]); the modem answers `OK`. `<timeout>` (1..=65535 s, default 60) is how
/// long the modem waits for the URL bytes. The URL is checked with [`parse_url`] before
/// anything is sent: `http://` or `https://` (any case), 1..=[`MAX_URL_LEN`] bytes,
/// printable ASCII, no spaces, no `"`, a valid host and port.
///
/// Timeout: [`CONNECT_WAIT`] + `timeout` seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SetHttpUrl<'a> {
    /// The URL.
    pub url: &'a str,
    /// Seconds the modem waits for the URL bytes after `CONNECT` (1..=65535).
    pub timeout: u16,
}

impl<'a> SetHttpUrl<'a> {
    /// The URL with the default input timeout (60 s).
    pub const fn new(url: &'a str) -> Self {
        SetHttpUrl {
            url,
            timeout: DEFAULT_WAIT_SECS,
        }
    }
}

impl AtCommand for SetHttpUrl<'_> {
    type Response<'a> = ();

    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        parse_url(self.url)?;
        enc.raw(b"AT+QHTTPURL=")?;
        enc.u32(self.url.len() as u32)?;
        enc.comma()?;
        enc.ranged(u32::from(self.timeout), 1, 65535)
    }

    fn timeout(&self) -> Duration {
        CONNECT_WAIT + secs(self.timeout)
    }

    fn data(&self) -> DataPhase<'_> {
        DataPhase::Send(self.url.as_bytes())
    }

    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// `AT+QHTTPURL?`: reads back the URL set with [`SetHttpUrl`] (§4.2). Response
/// `+QHTTPURL: <url>` → `Some(url)` (the URL may contain commas, so the whole rest of the
/// line is taken; surrounding quotes are removed if a module adds them), or `None` if the
/// modem sends no such line or an empty one. Timeout: [`DEFAULT_TIMEOUT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QueryHttpUrl;

impl AtCommand for QueryHttpUrl {
    type Response<'a> = Option<&'a str>;

    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+QHTTPURL?")
    }

    fn timeout(&self) -> Duration {
        DEFAULT_TIMEOUT
    }

    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+QHTTPURL:")
    }

    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<Option<&'a str>, ParseError> {
        let Some(line) = lines.next() else {
            return Ok(None);
        };
        let text = after_prefix(line, b"+QHTTPURL:").ok_or(ParseError::UnexpectedLine)?;
        lines.end()?;
        let mut text = text;
        while let [head @ .., b' '] = text {
            text = head;
        }
        let text = match text {
            [b'"', inner @ .., b'"'] => inner,
            [b'"', ..] => return Err(ParseError::Unterminated),
            t => t,
        };
        let url = core::str::from_utf8(text).map_err(|_| ParseError::NotText)?;
        Ok(if url.is_empty() { None } else { Some(url) })
    }
}

// ---------------------------------------------------------------------------------------
// AT+QHTTPGET / AT+QHTTPGETEX
// ---------------------------------------------------------------------------------------

/// `AT+QHTTPGET=<rsptime>`: sends a GET for the URL set with [`SetHttpUrl`] (§4.3).
///
/// The command answers `OK` at once, so its own timeout is short ([`DEFAULT_TIMEOUT`]). The
/// result comes **later** as the URC `+QHTTPGET: <err>[,<httprspcode>[,<content_length>]]`
/// (`<httprspcode>` only when `<err>` is 0; `<content_length>` only when the server sent
/// one, e.g. `+QHTTPGET: 0,200` for a chunked answer). Wait for it for
/// [`result_deadline`](HttpGet::result_deadline) = `response_time` + 1 s, as Quectel's
/// driver does (§4.3, §9); other URCs may come first. A failure may instead be the final
/// result (`+CME ERROR: 716`) or an error-only URC (`+QHTTPGET: 702`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HttpGet {
    /// Seconds the modem waits for the server's response (1..=65535, default 60).
    pub response_time: u16,
}

impl Default for HttpGet {
    fn default() -> Self {
        HttpGet {
            response_time: DEFAULT_WAIT_SECS,
        }
    }
}

impl HttpGet {
    /// How long to wait for the `+QHTTPGET:` URC after `OK`: `response_time` + 1 s.
    pub const fn result_deadline(&self) -> Duration {
        secs(self.response_time).saturating_add(RESULT_MARGIN)
    }
}

impl AtCommand for HttpGet {
    type Response<'a> = ();

    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+QHTTPGET=")?;
        enc.ranged(u32::from(self.response_time), 1, 65535)
    }

    fn timeout(&self) -> Duration {
        DEFAULT_TIMEOUT
    }

    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// `AT+QHTTPGET=<rsptime>,<data_length>[,<input_time>]`: GET with a host-supplied request
/// header (§4.3). Needs `AT+QHTTPCFG="requestheader",1` ([`HttpConfig::RequestHeader`]).
///
/// The modem answers `CONNECT`; the complete header block follows ([`DataPhase::Send`],
/// exactly `<data_length>` bytes, no terminator); then `OK`, and later the URC
/// `+QHTTPGET: ...` as for [`HttpGet`]. This is the portable way to send
/// `Range: bytes=a-b` (build the block with [`write_get_request`]). The request line's path
/// and `Host:` must match the URL set with [`SetHttpUrl`].
///
/// The block is checked with [`check_request_header`] before anything is sent.
/// Timeout: [`CONNECT_WAIT`] + `input_time` (60 s when `None`, the default assumed for the
/// omitted parameter, unconfirmed). Wait for the URC for
/// [`result_deadline`](Self::result_deadline).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HttpGetWithHeader<'a> {
    /// Seconds the modem waits for the server's response (1..=65535).
    pub response_time: u16,
    /// The complete request header block, ending with `\r\n\r\n`.
    pub header: &'a [u8],
    /// Seconds the modem waits for the block after `CONNECT` (1..=65535); `None` omits it.
    pub input_time: Option<u16>,
}

impl<'a> HttpGetWithHeader<'a> {
    /// The block with the default response time (60 s) and no explicit input time.
    pub const fn new(header: &'a [u8]) -> Self {
        HttpGetWithHeader {
            response_time: DEFAULT_WAIT_SECS,
            header,
            input_time: None,
        }
    }

    /// How long to wait for the `+QHTTPGET:` URC after `OK`: `response_time` + 1 s.
    pub const fn result_deadline(&self) -> Duration {
        secs(self.response_time).saturating_add(RESULT_MARGIN)
    }
}

impl AtCommand for HttpGetWithHeader<'_> {
    type Response<'a> = ();

    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        check_request_header(self.header)?;
        enc.raw(b"AT+QHTTPGET=")?;
        enc.ranged(u32::from(self.response_time), 1, 65535)?;
        enc.comma()?;
        enc.u32(self.header.len() as u32)?;
        if let Some(t) = self.input_time {
            enc.comma()?;
            enc.ranged(u32::from(t), 1, 65535)?;
        }
        Ok(())
    }

    fn timeout(&self) -> Duration {
        CONNECT_WAIT + secs(self.input_time.unwrap_or(DEFAULT_WAIT_SECS))
    }

    fn data(&self) -> DataPhase<'_> {
        DataPhase::Send(self.header)
    }

    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// `AT+QHTTPGETEX=<rsptime>,<start_position>,<read_len>`: ranged GET, the module adds the
/// `Range` header itself (§4.4).
///
/// Answers `OK` at once (timeout [`DEFAULT_TIMEOUT`]); the result URC is reported as
/// **`+QHTTPGET:`** (not `+QHTTPGETEX:`), e.g. `+QHTTPGET: 0,206,8`; then read with
/// [`HttpRead`]. Wait for it for [`result_deadline`](Self::result_deadline).
///
/// * Only allowed with `requestheader` = 0 (otherwise `ERROR`).
/// * A server that ignores `Range` answers 200 with the whole body: check for **206** and the
///   expected length before trusting the data.
/// * Not available everywhere (EC200U and EG06 unconfirmed): probe with `AT+QHTTPGETEX=?`.
/// * The undocumented `start_position` = -1 ("continue") seen in one driver is not
///   supported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HttpGetRange {
    /// Seconds the modem waits for the server's response (1..=65535).
    pub response_time: u16,
    /// Offset of the first byte wanted.
    pub start: u32,
    /// Number of bytes wanted (at least 1).
    pub len: u32,
}

impl HttpGetRange {
    /// `len` bytes from `start`, with the default response time (60 s).
    pub const fn new(start: u32, len: u32) -> Self {
        HttpGetRange {
            response_time: DEFAULT_WAIT_SECS,
            start,
            len,
        }
    }

    /// How long to wait for the `+QHTTPGET:` URC after `OK`: `response_time` + 1 s.
    pub const fn result_deadline(&self) -> Duration {
        secs(self.response_time).saturating_add(RESULT_MARGIN)
    }
}

impl AtCommand for HttpGetRange {
    type Response<'a> = ();

    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+QHTTPGETEX=")?;
        enc.ranged(u32::from(self.response_time), 1, 65535)?;
        enc.comma()?;
        enc.u32(self.start)?;
        enc.comma()?;
        enc.ranged(self.len, 1, u32::MAX)
    }

    fn timeout(&self) -> Duration {
        DEFAULT_TIMEOUT
    }

    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

// ---------------------------------------------------------------------------------------
// AT+QHTTPPOST / AT+QHTTPPOSTFILE
// ---------------------------------------------------------------------------------------

/// `AT+QHTTPPOST=<data_length>,<input_time>,<rsptime>`: POSTs `body` to the URL set with
/// [`SetHttpUrl`] (§4.5).
///
/// The modem answers `CONNECT`; the body follows ([`DataPhase::Send`], exactly
/// `<data_length>` bytes); then `OK`, and later the URC `+QHTTPPOST: <err>[,<code>[,<len>]]`.
/// In request-header mode the body is the header block followed by the body.
///
/// The body is raw data sent in data mode, so **any byte is allowed** (CR, LF, NUL, `"`,
/// non-ASCII); it is only checked for length: 1..=[`MAX_POST_LEN`].
///
/// Timeout: [`CONNECT_WAIT`] + `input_time`. Wait for the URC for
/// [`result_deadline`](Self::result_deadline).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HttpPost<'a> {
    /// The body.
    pub body: &'a [u8],
    /// Seconds the modem waits for the body after `CONNECT` (1..=65535).
    pub input_time: u16,
    /// Seconds the modem waits for the server's response (1..=65535).
    pub response_time: u16,
}

impl<'a> HttpPost<'a> {
    /// `body` with default input and response times (60 s each).
    pub const fn new(body: &'a [u8]) -> Self {
        HttpPost {
            body,
            input_time: DEFAULT_WAIT_SECS,
            response_time: DEFAULT_WAIT_SECS,
        }
    }

    /// How long to wait for the `+QHTTPPOST:` URC after `OK`: `response_time` + 1 s.
    pub const fn result_deadline(&self) -> Duration {
        secs(self.response_time).saturating_add(RESULT_MARGIN)
    }
}

impl AtCommand for HttpPost<'_> {
    type Response<'a> = ();

    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        if self.body.is_empty() {
            return Err(EncodeError::Empty);
        }
        if self.body.len() > MAX_POST_LEN {
            return Err(EncodeError::TooLong {
                len: self.body.len(),
                max: MAX_POST_LEN,
            });
        }
        enc.raw(b"AT+QHTTPPOST=")?;
        enc.u32(self.body.len() as u32)?;
        enc.comma()?;
        enc.ranged(u32::from(self.input_time), 1, 65535)?;
        enc.comma()?;
        enc.ranged(u32::from(self.response_time), 1, 65535)
    }

    fn timeout(&self) -> Duration {
        CONNECT_WAIT + secs(self.input_time)
    }

    fn data(&self) -> DataPhase<'_> {
        DataPhase::Send(self.body)
    }

    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// `AT+QHTTPPOSTFILE="<file>"[,<rsptime>[,<post_mode>]]`: POSTs a module file (§4.5).
///
/// Answers `OK` (timeout [`DEFAULT_TIMEOUT`]); the result comes later as the URC
/// `+QHTTPPOSTFILE: <err>[,<code>[,<len>]]`. The file name is checked with
/// [`check_file_name`]. `<post_mode>`'s values are not in the reference; this crate
/// accepts 0 and 1. When `post_mode` is given without `response_time`, 60 s is written for
/// the latter (parameters are positional).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HttpPostFile<'a> {
    /// The module file, e.g. `UFS:report.json`.
    pub file: &'a str,
    /// Seconds the modem waits for the server's response (1..=65535); `None` omits it.
    pub response_time: Option<u16>,
    /// `<post_mode>` (0 or 1); `None` omits it.
    pub post_mode: Option<u8>,
}

impl<'a> HttpPostFile<'a> {
    /// Posts `file` with the module's defaults.
    pub const fn new(file: &'a str) -> Self {
        HttpPostFile {
            file,
            response_time: None,
            post_mode: None,
        }
    }

    /// How long to wait for the `+QHTTPPOSTFILE:` URC after `OK`: the response time (60 s
    /// when omitted) + 1 s.
    pub const fn result_deadline(&self) -> Duration {
        let t = match self.response_time {
            Some(t) => t,
            None => DEFAULT_WAIT_SECS,
        };
        secs(t).saturating_add(RESULT_MARGIN)
    }
}

impl AtCommand for HttpPostFile<'_> {
    type Response<'a> = ();

    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        check_file_name(self.file)?;
        enc.raw(b"AT+QHTTPPOSTFILE=")?;
        enc.quoted(self.file, MAX_FILE_NAME_LEN)?;
        if self.response_time.is_some() || self.post_mode.is_some() {
            enc.comma()?;
            let t = self.response_time.unwrap_or(DEFAULT_WAIT_SECS);
            enc.ranged(u32::from(t), 1, 65535)?;
        }
        if let Some(m) = self.post_mode {
            enc.comma()?;
            enc.ranged(u32::from(m), 0, 1)?;
        }
        Ok(())
    }

    fn timeout(&self) -> Duration {
        DEFAULT_TIMEOUT
    }

    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

// ---------------------------------------------------------------------------------------
// AT+QHTTPREAD / AT+QHTTPREADFILE / AT+QHTTPSTOP
// ---------------------------------------------------------------------------------------

/// `AT+QHTTPREAD=<wait_time>`: reads the stored response body (§4.6). Send it with the
/// client's payload-reading call; the body is handed out as it arrives.
///
/// Exact framing on success:
///
/// ```text
/// \r\nCONNECT\r\n <exactly N body bytes> \r\nOK\r\n \r\n+QHTTPREAD: <err>\r\n
/// ```
///
/// * Nothing but body bytes arrives between `CONNECT\r\n` and `\r\nOK\r\n`; no terminator is
///   added after the body (a body ending in LF is followed directly by `\r\nOK\r\n`).
/// * `N` is the `<content_length>` of the `+QHTTPGET:` / `+QHTTPPOST:` URC: use
///   [`HttpRead::exact`]. With `responseheader` = 1 the stream starts with the response
///   header, which `<content_length>` does not count: then, or for a response without
///   length (chunked), use [`HttpRead::until_trailer`], which ends the payload at the
///   `OK` + `+QHTTPREAD:` trailer after [`READ_TRAILER_QUIET`] of silence.
/// * `+QHTTPREAD: <err>`, not `OK`, is the real completion signal. It normally arrives as a
///   URC **after** `OK`; if a module sends it before `OK`, this command's response carries it
///   (`Some(err)`), else the response is `None` and the caller waits for the URC.
///   **A non-zero `<err>` is an error even if all bytes arrived** (mid-read failures are
///   reported that way, with a 7xx code).
/// * With nothing to read the modem answers `+CME ERROR: 705` instead of `CONNECT`.
///
/// `<wait_time>` (1..=65535 s, default 60) is the longest gap the modem allows between two
/// received packets, not a total. Timeout: `wait_time` + 1 s (so the modem's own error report
/// arrives first) for each 512 payload bytes
/// ([`PROGRESS_BYTES`](crate::client::asynch::PROGRESS_BYTES)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HttpRead {
    /// Longest gap in seconds between two packets from the server (1..=65535).
    pub wait_time: u16,
    /// How long the payload after `CONNECT` is: [`DataLength::Exact`] or
    /// [`DataLength::UntilTrailer`] (`Announced` is refused: this `CONNECT` carries no
    /// length).
    pub length: DataLength,
}

impl HttpRead {
    /// Reads exactly `content_length` body bytes (the length from the result URC), with the
    /// default wait time (60 s).
    pub const fn exact(content_length: u32) -> Self {
        HttpRead {
            wait_time: DEFAULT_WAIT_SECS,
            length: DataLength::Exact(content_length),
        }
    }

    /// Reads a payload of unknown length, ended by the `\r\nOK\r\n` + `+QHTTPREAD:` trailer
    /// and [`READ_TRAILER_QUIET`] (200 ms) of silence. Default wait time (60 s).
    pub const fn until_trailer() -> Self {
        HttpRead {
            wait_time: DEFAULT_WAIT_SECS,
            length: DataLength::UntilTrailer {
                end_prefix: b"+QHTTPREAD:",
                quiet: READ_TRAILER_QUIET,
            },
        }
    }

    /// The same read with another `<wait_time>` in seconds.
    pub const fn with_wait_time(mut self, wait_time: u16) -> Self {
        self.wait_time = wait_time;
        self
    }
}

impl AtCommand for HttpRead {
    /// `Some(err)` if `+QHTTPREAD: <err>` arrived before `OK`; `None` if it is still to come
    /// as a URC.
    type Response<'a> = Option<u16>;

    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        if matches!(self.length, DataLength::Announced) {
            return Err(EncodeError::Invalid(
                "AT+QHTTPREAD announces no length: use an exact length or the trailer",
            ));
        }
        enc.raw(b"AT+QHTTPREAD=")?;
        enc.ranged(u32::from(self.wait_time), 1, 65535)
    }

    fn timeout(&self) -> Duration {
        secs(self.wait_time) + RESULT_MARGIN
    }

    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+QHTTPREAD:")
    }

    fn data(&self) -> DataPhase<'_> {
        DataPhase::Receive(self.length)
    }

    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<Option<u16>, ParseError> {
        if lines.clone().next().is_none() {
            return Ok(None);
        }
        let mut p = lines.expect_prefixed(b"+QHTTPREAD:")?;
        let err = p.u16()?;
        p.end()?;
        lines.end()?;
        Ok(Some(err))
    }
}

/// `AT+QHTTPREADFILE="<file>",<wait_time>`: stores the response body in a module file
/// (§4.7).
///
/// Answers `OK` at once (timeout [`DEFAULT_TIMEOUT`]); the result comes later as the URC
/// `+QHTTPREADFILE: <err>` (about 0.5 s for 20 KB on a Cat.1 module). Then check the file
/// with `AT+QFLST` and read it with `AT+QFOPEN`/`AT+QFREAD`. Fails when `rspout/auto` = 1.
/// The file name is checked with [`check_file_name`]; `<wait_time>` is the longest gap
/// between packets (1..=65535 s, default 60), so the URC has no fixed deadline: allow at
/// least `wait_time` after the last progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HttpReadFile<'a> {
    /// The module file, e.g. `UFS:fw.bin` or `RAM:fw.bin`.
    pub file: &'a str,
    /// Longest gap in seconds between two packets from the server (1..=65535).
    pub wait_time: u16,
}

impl<'a> HttpReadFile<'a> {
    /// Stores the body in `file`, with the default wait time (60 s).
    pub const fn new(file: &'a str) -> Self {
        HttpReadFile {
            file,
            wait_time: DEFAULT_WAIT_SECS,
        }
    }
}

impl AtCommand for HttpReadFile<'_> {
    type Response<'a> = ();

    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        check_file_name(self.file)?;
        enc.raw(b"AT+QHTTPREADFILE=")?;
        enc.quoted(self.file, MAX_FILE_NAME_LEN)?;
        enc.comma()?;
        enc.ranged(u32::from(self.wait_time), 1, 65535)
    }

    fn timeout(&self) -> Duration {
        DEFAULT_TIMEOUT
    }

    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// `AT+QHTTPSTOP`: aborts and cleans up the current HTTP session (§4.8). Answers `OK`.
/// Timeout: 10 s (§9). Use it before a new session and after errors such as 704 (busy);
/// Quectel's own driver skips it on BG95/BG96.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HttpStop;

impl AtCommand for HttpStop {
    type Response<'a> = ();

    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+QHTTPSTOP")
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(10)
    }

    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use proptest::prelude::*;
    use std::string::String;
    use std::vec::Vec;

    fn enc<C: AtCommand>(c: &C) -> Result<Vec<u8>, EncodeError> {
        let mut buf = [0u8; 4096];
        let mut e = Encoder::new(&mut buf);
        c.encode(&mut e)?;
        Ok(e.as_bytes().to_vec())
    }

    /// Table of `command => exact bytes`.
    macro_rules! encodes {
        ($($cmd:expr => $bytes:expr;)*) => {$(
            assert_eq!(
                enc(&$cmd).map(|v| String::from_utf8(v).unwrap()),
                Ok(String::from($bytes)),
                "{:?}", $cmd
            );
        )*};
    }

    /// Table of `command => expected error`.
    macro_rules! refuses {
        ($($cmd:expr => $err:pat),* $(,)?) => {$(
            let r = enc(&$cmd);
            assert!(matches!(r, Err($err)), "{:?} gave {:?}", $cmd, r);
        )*};
    }

    /// The invariant every Ok output must hold: one line starting with `AT`, no CR/LF/NUL,
    /// balanced quotes, and no `;` (command chaining) outside quotes.
    fn one_at_line(out: &[u8]) {
        assert!(out.starts_with(b"AT"), "{out:?}");
        assert!(
            !out.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0)),
            "{out:?}"
        );
        assert_eq!(out.iter().filter(|&&b| b == b'"').count() % 2, 0, "{out:?}");
        let mut quoted = false;
        for &b in out {
            match b {
                b'"' => quoted = !quoted,
                b';' => assert!(quoted, "{out:?}"),
                _ => {}
            }
        }
    }

    #[test]
    fn config_encodings() {
        encodes! {
            HttpConfig::ContextId(1) => "AT+QHTTPCFG=\"contextid\",1";
            HttpConfig::ContextId(16) => "AT+QHTTPCFG=\"contextid\",16";
            HttpConfig::RequestHeader(true) => "AT+QHTTPCFG=\"requestheader\",1";
            HttpConfig::ResponseHeader(false) => "AT+QHTTPCFG=\"responseheader\",0";
            HttpConfig::SslContextId(0) => "AT+QHTTPCFG=\"sslctxid\",0";
            HttpConfig::SslContextId(5) => "AT+QHTTPCFG=\"sslctxid\",5";
            HttpConfig::ContentType(ContentType::FormUrlEncoded) => "AT+QHTTPCFG=\"contenttype\",0";
            HttpConfig::ContentType(ContentType::Jpeg) => "AT+QHTTPCFG=\"contenttype\",5";
            HttpConfig::ContentType(ContentType::Json) => "AT+QHTTPCFG=\"contenttype\",4";
            HttpConfig::RspoutAuto(false) => "AT+QHTTPCFG=\"rspout/auto\",0";
            HttpConfig::ClosedInd(true) => "AT+QHTTPCFG=\"closed/ind\",1";
            HttpConfig::ReqHeaderAdd { name: "User-Agent", value: "ota/1.0 (x; y)" }
                => "AT+QHTTPCFG=\"reqheader/add\",\"User-Agent\",\"ota/1.0 (x; y)\"";
            HttpConfig::ReqHeaderAdd { name: "X-Empty", value: "" }
                => "AT+QHTTPCFG=\"reqheader/add\",\"X-Empty\",\"\"";
            HttpConfig::ReqHeaderRemove("Accept") => "AT+QHTTPCFG=\"reqheader/remove\",\"Accept\"";
            HttpConfig::CustomHeader("X-Device: 1234")
                => "AT+QHTTPCFG=\"custom_header\",\"X-Device: 1234\"";
            HttpConfig::Auth { user: "bob", password: "p:w,d" }
                => "AT+QHTTPCFG=\"auth\",\"bob:p:w,d\"";
            HttpConfig::Auth { user: "bob", password: "" } => "AT+QHTTPCFG=\"auth\",\"bob:\"";
            HttpConfig::CloseWaitTime(0) => "AT+QHTTPCFG=\"closewaittime\",0";
            HttpConfig::WindowSize(65536) => "AT+QHTTPCFG=\"windowsize\",65536";
            QueryHttpConfig(HttpConfigName::ContextId) => "AT+QHTTPCFG=\"contextid\"";
            QueryHttpConfig(HttpConfigName::RspoutAuto) => "AT+QHTTPCFG=\"rspout/auto\"";
            QueryHttpConfig(HttpConfigName::CustomHeader) => "AT+QHTTPCFG=\"custom_header\"";
        }
    }

    #[test]
    fn config_refusals() {
        let long = "a".repeat(257);
        let long_pair = "b".repeat(200);
        refuses! {
            HttpConfig::ContextId(0) => EncodeError::OutOfRange { value: 0, min: 1, max: 16 },
            HttpConfig::ContextId(17) => EncodeError::OutOfRange { value: 17, .. },
            HttpConfig::SslContextId(6) => EncodeError::OutOfRange { value: 6, min: 0, max: 5 },
            HttpConfig::ReqHeaderAdd { name: "User Agent", value: "x" }
                => EncodeError::ForbiddenByte { byte: b' ', position: 4 },
            HttpConfig::ReqHeaderAdd { name: "X:Y", value: "x" } => EncodeError::ForbiddenByte { byte: b':', .. },
            HttpConfig::ReqHeaderAdd { name: "", value: "x" } => EncodeError::Empty,
            HttpConfig::ReqHeaderAdd { name: "X\"", value: "x" } => EncodeError::ForbiddenByte { byte: b'"', .. },
            HttpConfig::ReqHeaderAdd { name: "X", value: "a\"b" } => EncodeError::ForbiddenByte { byte: b'"', position: 1 },
            HttpConfig::ReqHeaderAdd { name: "X", value: "a\r\nAT+QPOWD" } => EncodeError::ForbiddenByte { byte: b'\r', position: 1 },
            HttpConfig::ReqHeaderAdd { name: "X", value: "a\nb" } => EncodeError::ForbiddenByte { byte: b'\n', .. },
            HttpConfig::ReqHeaderAdd { name: "X", value: "a\0b" } => EncodeError::ForbiddenByte { byte: 0, .. },
            HttpConfig::ReqHeaderAdd { name: "X", value: "caf\u{e9}" } => EncodeError::ForbiddenByte { byte: 0xc3, .. },
            HttpConfig::ReqHeaderAdd { name: "X", value: long.as_str() } => EncodeError::TooLong { len: 257, max: 256 },
            HttpConfig::ReqHeaderAdd { name: long.as_str(), value: "x" } => EncodeError::TooLong { len: 257, .. },
            HttpConfig::ReqHeaderRemove("A\r") => EncodeError::ForbiddenByte { byte: b'\r', .. },
            HttpConfig::ReqHeaderRemove("") => EncodeError::Empty,
            HttpConfig::CustomHeader("no colon") => EncodeError::Invalid(_),
            HttpConfig::CustomHeader(": value") => EncodeError::Empty,
            HttpConfig::CustomHeader("Bad Name: v") => EncodeError::ForbiddenByte { byte: b' ', position: 3 },
            HttpConfig::CustomHeader("X: \"q\"") => EncodeError::ForbiddenByte { byte: b'"', .. },
            HttpConfig::CustomHeader("X: a\r\nAT+QPOWD") => EncodeError::ForbiddenByte { byte: b'\r', .. },
            HttpConfig::Auth { user: "a:b", password: "x" } => EncodeError::ForbiddenByte { byte: b':', position: 1 },
            HttpConfig::Auth { user: "", password: "x" } => EncodeError::Empty,
            HttpConfig::Auth { user: "a", password: "x\"" } => EncodeError::ForbiddenByte { byte: b'"', position: 1 },
            HttpConfig::Auth { user: "a\n", password: "x" } => EncodeError::ForbiddenByte { byte: b'\n', .. },
            HttpConfig::Auth { user: long_pair.as_str(), password: long_pair.as_str() } => EncodeError::TooLong { len: 401, max: 256 },
        }
    }

    #[test]
    fn config_query_parse() {
        let q = QueryHttpConfig(HttpConfigName::ContextId);
        assert_eq!(q.response_lines(), ResponseLines::Prefixed(b"+QHTTPCFG:"));
        let v = q
            .parse(Lines::new(b"+QHTTPCFG: \"contextid\",1\n"))
            .unwrap();
        assert_eq!(v.name, "contextid");
        assert_eq!(v.value, "1");
        assert_eq!(v.number(), Some(1));
        assert_eq!(v.flag(), Some(true));
        assert_eq!(v.extra, None);
        // Unquoted name, quoted value.
        let q = QueryHttpConfig(HttpConfigName::CustomHeader);
        let v = q
            .parse(Lines::new(b"+QHTTPCFG: custom_header,\"X-A: 1\"\n"))
            .unwrap();
        assert_eq!((v.value, v.number()), ("X-A: 1", None));
        // Name mismatch, missing line.
        assert_eq!(
            QueryHttpConfig(HttpConfigName::Auth)
                .parse(Lines::new(b"+QHTTPCFG: \"contextid\",1\n")),
            Err(ParseError::UnexpectedLine)
        );
        assert_eq!(q.parse(Lines::new(b"")), Err(ParseError::MissingLine));
        // Empty value and an extra field.
        let v = QueryHttpConfig(HttpConfigName::Auth)
            .parse(Lines::new(b"+QHTTPCFG: \"auth\"\n"))
            .unwrap();
        assert_eq!((v.value, v.extra), ("", None));
        let v = QueryHttpConfig(HttpConfigName::WindowSize)
            .parse(Lines::new(b"+QHTTPCFG: \"windowsize\",8,9,10\n"))
            .unwrap();
        assert_eq!((v.value, v.extra), ("8", Some("9")));
        // Set form has no response lines.
        assert_eq!(
            HttpConfig::ContextId(1).response_lines(),
            ResponseLines::None
        );
        assert_eq!(HttpConfig::ContextId(1).parse(Lines::new(b"")), Ok(()));
        assert_eq!(HttpConfig::ContextId(1).timeout(), DEFAULT_TIMEOUT);
    }

    #[test]
    fn url_command() {
        // §4.2 / EG800K: a 23-byte URL, sent with no terminator.
        let url = "http://www.example.com/";
        assert_eq!(url.len(), 23);
        let c = SetHttpUrl::new(url);
        encodes! { c => "AT+QHTTPURL=23,60"; }
        assert_eq!(c.data(), DataPhase::Send(b"http://www.example.com/"));
        assert_eq!(c.timeout(), Duration::from_secs(65));
        encodes! {
            SetHttpUrl { url: "HTTPS://a.b/c?d=1,2", timeout: 80 } => "AT+QHTTPURL=19,80";
            SetHttpUrl { url: "http://a", timeout: 65535 } => "AT+QHTTPURL=8,65535";
        }
        let url700 = std::format!("http://a.io/{}", "x".repeat(700 - 12));
        assert_eq!(url700.len(), 700);
        encodes! { SetHttpUrl::new(&url700) => "AT+QHTTPURL=700,60"; }
    }

    #[test]
    fn url_injection_refused() {
        let url701 = std::format!("http://a.io/{}", "x".repeat(701 - 12));
        refuses! {
            SetHttpUrl::new("http://a\r\nAT+QPOWD") => EncodeError::ForbiddenByte { byte: b'\r', position: 8 },
            SetHttpUrl::new("http://a\nAT+QPOWD") => EncodeError::ForbiddenByte { byte: b'\n', .. },
            SetHttpUrl::new("http://a/\"x") => EncodeError::ForbiddenByte { byte: b'"', position: 9 },
            SetHttpUrl::new("http://a/\0") => EncodeError::ForbiddenByte { byte: 0, .. },
            SetHttpUrl::new("http://a/b c") => EncodeError::ForbiddenByte { byte: b' ', position: 10 },
            SetHttpUrl::new("http://a/\x1a") => EncodeError::ForbiddenByte { byte: 0x1a, .. },
            SetHttpUrl::new(url701.as_str()) => EncodeError::TooLong { len: 701, max: 700 },
            SetHttpUrl::new("") => EncodeError::Empty,
            SetHttpUrl::new("ftp://a/b") => EncodeError::Invalid(_),
            SetHttpUrl::new("www.example.com") => EncodeError::Invalid(_),
            SetHttpUrl::new("http://") => EncodeError::Invalid(_),
            SetHttpUrl::new("http:///path") => EncodeError::Invalid(_),
            SetHttpUrl::new("http://u:p@host/") => EncodeError::Invalid(_),
            SetHttpUrl::new("http://host:0/") => EncodeError::OutOfRange { value: 0, min: 1, max: 65535 },
            SetHttpUrl::new("http://host:65536/") => EncodeError::OutOfRange { value: 65536, .. },
            SetHttpUrl::new("http://host:/") => EncodeError::Invalid(_),
            SetHttpUrl::new("http://host:8x/") => EncodeError::Invalid(_),
            SetHttpUrl::new("http://ho;st/") => EncodeError::ForbiddenByte { byte: b';', position: 9 },
            SetHttpUrl::new("http://[::1/") => EncodeError::Invalid(_),
            SetHttpUrl::new("http://[]/") => EncodeError::Invalid(_),
            SetHttpUrl::new("http://[::g]/") => EncodeError::ForbiddenByte { byte: b'g', .. },
            SetHttpUrl::new("http://[::1]x/") => EncodeError::Invalid(_),
            SetHttpUrl { url: "http://a", timeout: 0 } => EncodeError::OutOfRange { value: 0, min: 1, max: 65535 },
        }
    }

    #[test]
    fn url_parts() {
        let u = parse_url("http://example.com").unwrap();
        assert_eq!(
            u,
            Url {
                scheme: Scheme::Http,
                host: "example.com",
                port: 80,
                explicit_port: false,
                path: "/",
                query: None
            }
        );
        let u = parse_url("HtTpS://h:8443?x=1#frag").unwrap();
        assert_eq!(
            (u.scheme, u.host, u.port, u.explicit_port, u.path, u.query),
            (Scheme::Https, "h", 8443, true, "/", Some("x=1"))
        );
        let u = parse_url("https://[2001:db8::1]:444/a/b%20c").unwrap();
        assert_eq!((u.host, u.port, u.path), ("[2001:db8::1]", 444, "/a/b%20c"));
        let u = parse_url("https://[::1]/").unwrap();
        assert_eq!((u.host, u.port, u.explicit_port), ("[::1]", 443, false));
        let u = parse_url("http://10.0.0.1:80/fw.bin").unwrap();
        assert_eq!((u.host, u.port, u.explicit_port), ("10.0.0.1", 80, true));
    }

    #[test]
    fn url_query_parse() {
        assert_eq!(
            QueryHttpUrl.parse(Lines::new(b"+QHTTPURL: http://www.example.com/\n")),
            Ok(Some("http://www.example.com/"))
        );
        assert_eq!(
            QueryHttpUrl.parse(Lines::new(b"+QHTTPURL: \"http://a/b?x=1,2\"\n")),
            Ok(Some("http://a/b?x=1,2"))
        );
        assert_eq!(
            QueryHttpUrl.parse(Lines::new(b"+QHTTPURL: http://a/b?x=1,2\n")),
            Ok(Some("http://a/b?x=1,2"))
        );
        assert_eq!(QueryHttpUrl.parse(Lines::new(b"")), Ok(None));
        assert_eq!(QueryHttpUrl.parse(Lines::new(b"+QHTTPURL: \n")), Ok(None));
        assert_eq!(
            QueryHttpUrl.parse(Lines::new(b"+QHTTPURL: \"http://a\n")),
            Err(ParseError::Unterminated)
        );
        assert_eq!(
            QueryHttpUrl.parse(Lines::new(b"+QHTTPURL: \xff\n")),
            Err(ParseError::NotText)
        );
        encodes! { QueryHttpUrl => "AT+QHTTPURL?"; }
    }

    #[test]
    fn get_forms() {
        encodes! {
            HttpGet::default() => "AT+QHTTPGET=60";
            HttpGet { response_time: 1 } => "AT+QHTTPGET=1";
            HttpGet { response_time: 65535 } => "AT+QHTTPGET=65535";
            HttpGetRange::new(0, 8) => "AT+QHTTPGETEX=60,0,8";
            HttpGetRange { response_time: 80, start: 4_000_000, len: 20480 } => "AT+QHTTPGETEX=80,4000000,20480";
        }
        refuses! {
            HttpGet { response_time: 0 } => EncodeError::OutOfRange { value: 0, min: 1, max: 65535 },
            HttpGetRange::new(0, 0) => EncodeError::OutOfRange { value: 0, .. },
            HttpGetRange { response_time: 0, start: 0, len: 1 } => EncodeError::OutOfRange { value: 0, .. },
        }
        let g = HttpGet::default();
        assert_eq!(g.timeout(), DEFAULT_TIMEOUT);
        assert_eq!(g.result_deadline(), Duration::from_secs(61));
        assert_eq!(g.response_lines(), ResponseLines::None);
        assert_eq!(g.data(), DataPhase::None);
        assert_eq!(
            HttpGetRange::new(0, 1).result_deadline(),
            Duration::from_secs(61)
        );
        assert_eq!(g.parse(Lines::new(b"")), Ok(()));
    }

    #[test]
    fn request_header_built_byte_for_byte() {
        let mut buf = [0u8; 512];
        let n = write_get_request(
            &mut buf,
            "https://fw.example.com:8443/dl/app.bin?v=2#x",
            Some((1024, Some(2047))),
            &[("User-Agent", "cellular-ota"), ("If-Match", "\"abc\"")],
        )
        .unwrap();
        let expected: &[u8] = b"GET /dl/app.bin?v=2 HTTP/1.1\r\n\
Host: fw.example.com:8443\r\n\
Range: bytes=1024-2047\r\n\
User-Agent: cellular-ota\r\n\
If-Match: \"abc\"\r\n\
\r\n";
        assert_eq!(&buf[..n], expected);
        let c = HttpGetWithHeader {
            response_time: 80,
            header: &buf[..n],
            input_time: Some(30),
        };
        encodes! { c => std::format!("AT+QHTTPGET=80,{},30", n); }
        assert_eq!(c.data(), DataPhase::Send(expected));
        assert_eq!(c.timeout(), Duration::from_secs(35));
        assert_eq!(c.result_deadline(), Duration::from_secs(81));

        // Open-ended range, default port, no path.
        let n = write_get_request(&mut buf, "http://h", Some((5_000_000_000, None)), &[]).unwrap();
        assert_eq!(
            &buf[..n],
            b"GET / HTTP/1.1\r\nHost: h\r\nRange: bytes=5000000000-\r\n\r\n"
        );
        let c = HttpGetWithHeader::new(&buf[..n]);
        encodes! { c => std::format!("AT+QHTTPGET=60,{}", n); }
        assert_eq!(c.timeout(), Duration::from_secs(65));
        // No range.
        let n = write_get_request(&mut buf, "http://h/a", None, &[("Range", "bytes=1-")]).unwrap();
        assert_eq!(
            &buf[..n],
            b"GET /a HTTP/1.1\r\nHost: h\r\nRange: bytes=1-\r\n\r\n"
        );
    }

    #[test]
    fn request_header_builder_refusals() {
        let mut buf = [0u8; 4096];
        type Case<'a> = (
            &'a str,
            Option<(u64, Option<u64>)>,
            &'a [(&'a str, &'a str)],
        );
        let cases: &[Case<'_>] = &[
            ("http://a\r\nAT+QPOWD", None, &[]),
            ("http://h/", Some((10, Some(9))), &[]),
            ("http://h/", None, &[("Host", "evil")]),
            ("http://h/", Some((0, None)), &[("range", "bytes=0-")]),
            ("http://h/", None, &[("X", "a\r\nGET /evil HTTP/1.1")]),
            ("http://h/", None, &[("X Y", "a")]),
            ("http://h/", None, &[("", "a")]),
            ("http://h/", None, &[("X", "\x7f")]),
        ];
        for (url, range, extra) in cases {
            assert!(
                write_get_request(&mut buf, url, *range, extra).is_err(),
                "{url:?} {range:?} {extra:?}"
            );
        }
        // Over 2048 bytes in all.
        let v = "v".repeat(250);
        let many: Vec<(&str, &str)> = (0..9).map(|_| ("X-Pad", v.as_str())).collect();
        assert!(matches!(
            write_get_request(&mut buf, "http://h/", None, &many),
            Err(EncodeError::TooLong { max: 2048, .. })
        ));
        // Too small a buffer.
        let mut small = [0u8; 16];
        assert_eq!(
            write_get_request(&mut small, "http://h/", None, &[]),
            Err(EncodeError::BufferTooSmall { capacity: 16 })
        );
    }

    #[test]
    fn request_header_block_checks() {
        assert_eq!(
            check_request_header(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"),
            Ok(())
        );
        refuses! {
            HttpGetWithHeader::new(b"") => EncodeError::Empty,
            HttpGetWithHeader::new(b"GET / HTTP/1.1\r\nHost: h\r\n") => EncodeError::Invalid(_),
            HttpGetWithHeader::new(b"GET / HTTP/1.1\nHost: h\r\n\r\n") => EncodeError::ForbiddenByte { byte: b'\n', position: 14 },
            HttpGetWithHeader::new(b"GET / HTTP/1.1\rHost: h\r\n\r\n") => EncodeError::ForbiddenByte { byte: b'\r', position: 14 },
            HttpGetWithHeader::new(b"GET /\0 HTTP/1.1\r\n\r\n") => EncodeError::ForbiddenByte { byte: 0, position: 5 },
            HttpGetWithHeader::new(b"GET /\xc3 HTTP/1.1\r\n\r\n") => EncodeError::ForbiddenByte { byte: 0xc3, .. },
            HttpGetWithHeader::new(b"GET / HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\n\r\n") => EncodeError::Invalid(_),
            HttpGetWithHeader::new(b"\r\n\r\n") => EncodeError::Invalid(_),
            HttpGetWithHeader::new(b"\n\r\n\r\n") => EncodeError::ForbiddenByte { byte: b'\n', position: 0 },
            HttpGetWithHeader { response_time: 0, header: b"GET / HTTP/1.1\r\n\r\n", input_time: None }
                => EncodeError::OutOfRange { value: 0, .. },
            HttpGetWithHeader { response_time: 1, header: b"GET / HTTP/1.1\r\n\r\n", input_time: Some(0) }
                => EncodeError::OutOfRange { value: 0, .. },
        }
        let mut big = std::vec![b'a'; 2049];
        big[2045..].copy_from_slice(b"\r\n\r\n");
        refuses! { HttpGetWithHeader::new(&big) => EncodeError::TooLong { len: 2049, max: 2048 }, }
    }

    #[test]
    fn post_forms() {
        // §4.5 EG800K example: AT+QHTTPPOST=20,80,80
        let body = [
            0u8, b'"', b'\r', b'\n', 0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
        ];
        let c = HttpPost {
            body: &body,
            input_time: 80,
            response_time: 80,
        };
        encodes! { c => "AT+QHTTPPOST=20,80,80"; }
        assert_eq!(c.data(), DataPhase::Send(&body));
        assert_eq!(c.timeout(), Duration::from_secs(85));
        assert_eq!(c.result_deadline(), Duration::from_secs(81));
        encodes! {
            HttpPost::new(b"x") => "AT+QHTTPPOST=1,60,60";
            HttpPostFile::new("UFS:r.json") => "AT+QHTTPPOSTFILE=\"UFS:r.json\"";
            HttpPostFile { file: "r.json", response_time: Some(90), post_mode: None } => "AT+QHTTPPOSTFILE=\"r.json\",90";
            HttpPostFile { file: "RAM:r", response_time: None, post_mode: Some(1) } => "AT+QHTTPPOSTFILE=\"RAM:r\",60,1";
            HttpPostFile { file: "r", response_time: Some(5), post_mode: Some(0) } => "AT+QHTTPPOSTFILE=\"r\",5,0";
        }
        let big = std::vec![0u8; MAX_POST_LEN + 1];
        refuses! {
            HttpPost::new(b"") => EncodeError::Empty,
            HttpPost::new(&big) => EncodeError::TooLong { max: MAX_POST_LEN, .. },
            HttpPost { body: b"x", input_time: 0, response_time: 1 } => EncodeError::OutOfRange { value: 0, .. },
            HttpPost { body: b"x", input_time: 1, response_time: 0 } => EncodeError::OutOfRange { value: 0, .. },
            HttpPostFile::new("UFS:a\"b") => EncodeError::ForbiddenByte { byte: b'"', position: 5 },
            HttpPostFile::new("UFS:") => EncodeError::Empty,
            HttpPostFile { file: "a", response_time: None, post_mode: Some(2) } => EncodeError::OutOfRange { value: 2, min: 0, max: 1 },
            HttpPostFile { file: "a", response_time: Some(0), post_mode: None } => EncodeError::OutOfRange { value: 0, .. },
        }
        assert_eq!(
            HttpPostFile::new("a").result_deadline(),
            Duration::from_secs(61)
        );
    }

    #[test]
    fn file_names() {
        for ok in ["UFS:fw.bin", "RAM:x", "fw_1-2.bin", "a"] {
            assert_eq!(check_file_name(ok), Ok(()), "{ok}");
        }
        let long = std::format!("UFS:{}", "a".repeat(77));
        assert_eq!(
            check_file_name(&long),
            Err(EncodeError::TooLong { len: 81, max: 80 })
        );
        assert_eq!(check_file_name(""), Err(EncodeError::Empty));
        assert_eq!(check_file_name("RAM:"), Err(EncodeError::Empty));
        for (bad, byte, position) in [
            ("*", b'*', 0),
            ("UFS:*", b'*', 4),
            ("SD:x", b':', 2),
            ("UFS:a/b", b'/', 5),
            ("a b", b' ', 1),
            ("a\r\nAT", b'\r', 1),
            ("a\0", 0, 1),
            ("ufs:a", b':', 3),
        ] {
            assert_eq!(
                check_file_name(bad),
                Err(EncodeError::ForbiddenByte { byte, position }),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn read_forms() {
        let r = HttpRead::exact(26);
        encodes! {
            r => "AT+QHTTPREAD=60";
            HttpRead::exact(1).with_wait_time(1) => "AT+QHTTPREAD=1";
            HttpRead::until_trailer().with_wait_time(65535) => "AT+QHTTPREAD=65535";
        }
        assert_eq!(r.data(), DataPhase::Receive(DataLength::Exact(26)));
        assert_eq!(r.timeout(), Duration::from_secs(61));
        assert_eq!(r.response_lines(), ResponseLines::Prefixed(b"+QHTTPREAD:"));
        assert_eq!(
            HttpRead::until_trailer().data(),
            DataPhase::Receive(DataLength::UntilTrailer {
                end_prefix: b"+QHTTPREAD:",
                quiet: Duration::from_millis(200)
            })
        );
        refuses! {
            HttpRead::exact(1).with_wait_time(0) => EncodeError::OutOfRange { value: 0, .. },
            HttpRead { wait_time: 60, length: DataLength::Announced } => EncodeError::Invalid(_),
        }
        // §4.6: `+QHTTPREAD: 0` normally arrives after OK as a URC: no response line.
        assert_eq!(r.parse(Lines::new(b"")), Ok(None));
        // If it came before OK it is the response.
        assert_eq!(r.parse(Lines::new(b"+QHTTPREAD: 0\n")), Ok(Some(0)));
        assert_eq!(r.parse(Lines::new(b"+QHTTPREAD: 717\n")), Ok(Some(717)));
        assert_eq!(
            r.parse(Lines::new(b"+QHTTPREAD: 70000\n")),
            Err(ParseError::OutOfRange)
        );
        assert_eq!(
            r.parse(Lines::new(b"+QHTTPREAD: 0,1\n")),
            Err(ParseError::TrailingData)
        );

        encodes! {
            HttpReadFile::new("UFS:fw.bin") => "AT+QHTTPREADFILE=\"UFS:fw.bin\",60";
            HttpReadFile { file: "RAM:fw.bin", wait_time: 80 } => "AT+QHTTPREADFILE=\"RAM:fw.bin\",80";
            HttpStop => "AT+QHTTPSTOP";
        }
        refuses! {
            HttpReadFile::new("UFS:fw.bin\"") => EncodeError::ForbiddenByte { byte: b'"', .. },
            HttpReadFile { file: "a", wait_time: 0 } => EncodeError::OutOfRange { value: 0, .. },
        }
        assert_eq!(HttpStop.timeout(), Duration::from_secs(10));
        assert_eq!(HttpReadFile::new("a").timeout(), DEFAULT_TIMEOUT);
    }

    /// The §4.6 BG96 stream (26-byte body ending in LF) framed by the engine with
    /// `HttpRead::exact(26)`: the body byte for byte, then `OK`, then `+QHTTPREAD: 0` as a
    /// separate line. `until_trailer` is checked with a body that does not end in a line
    /// break: the engine currently takes a body's trailing CR/LF bytes as part of the trailer.
    #[test]
    fn read_stream_through_engine() {
        use crate::at::engine::{Engine, Event, Final};
        use crate::at::time::Instant;
        let bg96: &[u8] = b"<html>Hello from BG96</ht\n";
        assert_eq!(bg96.len(), 26);
        let cases: [(HttpRead, &[u8]); 3] = [
            (HttpRead::exact(26), bg96),
            (HttpRead::exact(7), b"\r\nOK\r\n\x00"),
            (HttpRead::until_trailer(), b"<html>x</html>"),
        ];
        for (cmd, body) in cases {
            let mut stream = Vec::new();
            stream.extend_from_slice(b"\r\nCONNECT\r\n");
            stream.extend_from_slice(body);
            stream.extend_from_slice(b"\r\nOK\r\n\r\n+QHTTPREAD: 0\r\n");
            let DataPhase::Receive(len) = cmd.data() else {
                panic!("HttpRead receives a payload")
            };
            let mut buf = [0u8; 128];
            let mut e = Engine::new(&mut buf);
            e.expect_data(Some(len));
            e.consume(&stream);
            let mut got = Vec::new();
            let mut rest = Vec::new();
            let mut now = Instant::ZERO;
            for _ in 0..8 {
                while let Some(ev) = e.poll(now) {
                    match ev {
                        Event::Data(d) => got.extend_from_slice(d),
                        Event::Final(Final::Ok) => rest.push(String::from("OK")),
                        Event::Line(l) => rest.push(String::from_utf8(l.to_vec()).unwrap()),
                        _ => {}
                    }
                }
                now = now + Duration::from_millis(100);
            }
            assert_eq!(got, body, "{cmd:?}");
            assert_eq!(rest, ["OK", "+QHTTPREAD: 0"], "{cmd:?}");
            // The `+QHTTPREAD: 0` line came after OK: a URC, so the response is `None`.
            assert_eq!(cmd.parse(Lines::new(b"")), Ok(None));
        }
    }

    proptest! {
        #[test]
        fn prop_string_params_never_break_the_line(s in ".{0,80}", t in "[ -~\\r\\n\"]{0,40}", n in any::<u32>(), m in any::<u16>(), k in any::<u8>()) {
            let strs = [s.as_str(), t.as_str()];
            for a in strs {
                for b in strs {
                    let cmds: [&dyn Fn() -> Result<Vec<u8>, EncodeError>; 12] = [
                        &|| enc(&HttpConfig::ReqHeaderAdd { name: a, value: b }),
                        &|| enc(&HttpConfig::ReqHeaderRemove(a)),
                        &|| enc(&HttpConfig::CustomHeader(a)),
                        &|| enc(&HttpConfig::Auth { user: a, password: b }),
                        &|| enc(&HttpConfig::ContextId(k)),
                        &|| enc(&HttpConfig::SslContextId(k)),
                        &|| enc(&HttpConfig::WindowSize(n)),
                        &|| enc(&HttpPostFile { file: a, response_time: Some(m), post_mode: Some(k) }),
                        &|| enc(&HttpReadFile { file: a, wait_time: m }),
                        &|| enc(&HttpGetRange { response_time: m, start: n, len: n }),
                        &|| enc(&HttpRead::exact(n).with_wait_time(m)),
                        &|| enc(&HttpGet { response_time: m }),
                    ];
                    for c in cmds {
                        if let Ok(out) = c() {
                            one_at_line(&out);
                        }
                    }
                }
                let url = SetHttpUrl { url: a, timeout: m };
                if let Ok(out) = enc(&url) {
                    one_at_line(&out);
                    prop_assert!(!a.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0 | b'"' | b' ')));
                }
                let prefixed = std::format!("http://h/{a}");
                if let Ok(out) = enc(&SetHttpUrl::new(&prefixed)) {
                    one_at_line(&out);
                }
            }
        }

        #[test]
        fn prop_header_block(s in "[ -~\\r\\n\\x00]{0,64}", range in any::<Option<(u64, Option<u64>)>>(), name in "[ -~]{0,8}", value in "[ -~\\r\\n]{0,16}") {
            let url = std::format!("http://h/{s}");
            let mut buf = [0u8; 4096];
            if let Ok(n) = write_get_request(&mut buf, &url, range, &[(name.as_str(), value.as_str())]) {
                prop_assert_eq!(check_request_header(&buf[..n]), Ok(()));
                prop_assert!(buf[..n].starts_with(b"GET /"));
                let cmd = HttpGetWithHeader::new(&buf[..n]);
                let out = enc(&cmd).unwrap();
                one_at_line(&out);
            }
            let raw = std::format!("{s}\r\n\r\n");
            if check_request_header(raw.as_bytes()).is_ok() {
                prop_assert!(!s.contains("\r\n\r\n"));
            }
        }

        #[test]
        fn prop_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let l = || Lines::new(&bytes);
            let _ = QueryHttpConfig(HttpConfigName::ContextId).parse(l());
            let _ = QueryHttpUrl.parse(l());
            let _ = HttpRead::exact(1).parse(l());
            let _ = HttpConfig::ContextId(1).parse(l());
            let _ = HttpGet::default().parse(l());
            let _ = HttpStop.parse(l());
            if let Ok(s) = core::str::from_utf8(&bytes) {
                let _ = parse_url(s);
            }
        }
    }
}
