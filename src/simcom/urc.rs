//! Unsolicited result codes (URCs) of SIMCom modems, typed (`simcom-at.md` §5).
//!
//! [`Urc::parse`] turns one framed line (no CR/LF) into a [`Urc`]; it is total: no input
//! panics. As with Quectel, some prefixes are also query responses (`+CPIN:`, `+CFUN:`,
//! `+SHSTATE:`, `+HTTPTOFS:`), so a client offers a line to the command in flight first.
//!
//! Where the manuals and the field disagree, every form seen is accepted:
//! `+APP PDP: ACTIVE` (SIM7000) and `+APP PDP: 0,ACTIVE` (SIM7070); `+CFOTA:` progress in the
//! A76xx form (`FOTA,START`, `DOWNLOADING:17`, `100`, an error code) and the SIM7000/7070 form
//! (`"Updating",30`); fields after the documented ones are ignored.
//!
//! ```
//! use cellular_ota::simcom::urc::{HttpAction, Urc};
//! use cellular_ota::simcom::error::{HttpError, ModuleStatus};
//! use cellular_ota::update::HttpStatus;
//!
//! let Some(Ok(Urc::HttpAction(a))) = Urc::parse(b"+HTTPACTION: 0,206,1024") else { panic!() };
//! assert_eq!(a.result, Ok(HttpStatus { status: 206, content_length: Some(1024) }));
//! // A module status in the status field is an error, not a server's answer.
//! let Some(Ok(Urc::HttpAction(a))) = Urc::parse(b"+HTTPACTION: 0,601,0") else { panic!() };
//! assert_eq!(a.result, Err(HttpAction::status_error(601)));
//! assert_eq!(Urc::parse(b"+HTTPACTION: 0,713,0").unwrap().unwrap(),
//!            Urc::HttpAction(HttpAction { method: 0, result: Err(HttpError::DnsFailed.into()) }));
//! ```

use super::error::{HttpError, ModuleStatus, NetError, http_result};
use crate::at::ParseError;
use crate::at::params::{Params, after_prefix};
use crate::quectel::urc::{HttpStatus, SimState};

/// Why a request produced no server answer: a status the module generated, or an error
/// code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RequestError {
    /// 600–699 or 65535 in the status field ([`ModuleStatus`]).
    Module(ModuleStatus),
    /// 700–799 ([`HttpError`]).
    Http(HttpError),
}

impl From<HttpError> for RequestError {
    fn from(e: HttpError) -> Self {
        RequestError::Http(e)
    }
}

impl From<ModuleStatus> for RequestError {
    fn from(e: ModuleStatus) -> Self {
        RequestError::Module(e)
    }
}

impl RequestError {
    /// The numeric code.
    pub const fn code(self) -> u16 {
        match self {
            RequestError::Module(e) => e.code(),
            RequestError::Http(e) => e.code(),
        }
    }

    /// One line of plain English.
    pub const fn meaning(self) -> &'static str {
        match self {
            RequestError::Module(e) => e.meaning(),
            RequestError::Http(e) => e.meaning(),
        }
    }
    /// Whether the same request can succeed later. Permanent: a body the module cannot
    /// hold (602 no memory; request ranges instead), an answer that is not HTTP (600), a
    /// missing file or CA certificate (707, 719) and an invalid parameter (708). Everything
    /// else (network, DNS, busy, timeouts, socket and handshake failures) is transient.
    pub const fn retry(self) -> crate::retry::Retry {
        use crate::retry::Retry;
        match self {
            RequestError::Module(ModuleStatus::NoMemory | ModuleStatus::NotHttpPdu)
            | RequestError::Http(
                HttpError::FileOrMemory | HttpError::InvalidParameter | HttpError::CaMissing,
            ) => Retry::Permanent,
            _ => Retry::Transient,
        }
    }

    /// The update flow's vendor-neutral form of this error.
    pub const fn to_client_error(self) -> crate::update::HttpClientError {
        crate::update::HttpClientError {
            code: self.code(),
            meaning: self.meaning(),
            retry: self.retry(),
        }
    }
}

impl core::fmt::Display for RequestError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}: {}", self.code(), self.meaning())
    }
}

/// `+HTTPACTION: <method>,<status|errcode>,<datalen>` (SIM7600, A76xx, SIM767x, and the
/// SIM800-style set of SIM7000 and SIM800).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HttpAction {
    /// 0 GET, 1 POST, 2 HEAD, 3 DELETE, 4 PUT (A76xx).
    pub method: u8,
    /// The server's status and the body length the module holds, or why there is none.
    pub result: Result<HttpStatus, RequestError>,
}

impl HttpAction {
    /// The error a status-field code stands for: a [`ModuleStatus`] for 600–699 and 65535,
    /// an [`HttpError`] otherwise.
    pub const fn status_error(code: u16) -> RequestError {
        if ModuleStatus::is_module_status(code) {
            RequestError::Module(ModuleStatus::from_code(code))
        } else {
            RequestError::Http(HttpError::from_code(code))
        }
    }
}

/// A status field and a length: the server's answer for 100–599, else the error.
fn answer(status: u16, len: u32) -> Result<HttpStatus, RequestError> {
    match status {
        100..=599 => Ok(HttpStatus {
            status,
            content_length: Some(len),
        }),
        c => Err(HttpAction::status_error(c)),
    }
}

/// `+CGEV:` events that matter to a data connection (with `AT+CGEREP` on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CgevEvent<'a> {
    /// `EPS PDN ACT <cid>` or `ME PDN ACT <cid>[,<reason>]`: a PDN connection is up.
    PdnActivated {
        /// The context id.
        cid: u8,
    },
    /// `NW PDN DEACT <cid>`, `ME PDN DEACT <cid>`, `NW DEACT ...`: a context went down.
    PdnDeactivated {
        /// The context id, where the line names one.
        cid: Option<u8>,
    },
    /// `ME DETACH` or `NW DETACH`: detached from the packet domain.
    Detached,
    /// Any other event: the text after `+CGEV: `.
    Other(&'a [u8]),
}

/// Progress of the module's own firmware update (`+CFOTA:`), in either family's form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CfotaEvent<'a> {
    /// `FOTA,START` (A76xx) or `"Start to update"` (SIM7000/7070).
    Started,
    /// `DOWNLOADING:<n>` (A76xx): percent downloaded.
    Downloading(u8),
    /// `100` (A76xx): downloaded and checked; the module restarts in about 8 s.
    Complete,
    /// `"Updating",<n>` (SIM7000/7070): percent applied.
    Updating(u8),
    /// `"Update successfully, please wait for reset"` (SIM7000/7070).
    Succeeded,
    /// `"Update failed, please wait for reset"` (SIM7000/7070).
    Failed,
    /// `<err>` (A76xx, 1001–1012).
    Error(super::error::CfotaError),
    /// Any other text after `+CFOTA: `.
    Other(&'a [u8]),
}

/// One unsolicited result code. Borrowed fields point into the parsed line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Urc<'a> {
    /// `RDY`: booted (SIM7600, SIM7000, SIM7070; absent while auto-bauding).
    Ready,
    /// `*ATREADY: 1` (A76xx, SIM767x): booted and accepting AT commands.
    AtReady(u8),
    /// `+CFUN: <fun>` at boot.
    Cfun(u8),
    /// `+CPIN: <state>`: the SIM state.
    Cpin(SimState<'a>),
    /// `SMS DONE` (SIM7600, A76xx) or `SMS Ready` (SIM7000, SIM7070, SIM800).
    SmsReady,
    /// `PB DONE`: the last boot URC of SIM7600 and A76xx.
    PbDone,
    /// `NORMAL POWER DOWN`, `UNDER-VOLTAGE POWER DOWN`, `OVER-VOLTAGE POWER DOWN`.
    PowerDown(&'a [u8]),
    /// `UNDER-VOLTAGE WARNNING` (spelling as the module prints it).
    UnderVoltageWarning,
    /// `+HTTPACTION: ...`: a request finished.
    HttpAction(HttpAction),
    /// `+HTTP_PEER_CLOSED`: the server closed the connection (benign after a complete
    /// response).
    HttpPeerClosed,
    /// `+HTTP_NONET_EVENT`: the network is unavailable.
    HttpNoNetwork,
    /// `+HTTPREADFILE: <err>`: `AT+HTTPREADFILE` finished.
    HttpReadFile(Result<(), HttpError>),
    /// `+SHREQ: "<method>",<status>,<datalen>` (SIM7000, SIM7070/80/90): a request finished.
    ShReq {
        /// `GET`, `PUT`, `POST`, `PATCH` or `HEAD`.
        method: &'a str,
        /// The server's answer, or the module status in its place (602 for large bodies).
        result: Result<HttpStatus, RequestError>,
    },
    /// `+SHSTATE: <0|1>`: 0 = the HTTP connection dropped.
    ShState(u8),
    /// `+HTTPTOFS: <status>,<len>`: `AT+HTTPTOFS` finished.
    HttpToFs(Result<HttpStatus, RequestError>),
    /// `+APP PDP: [<index>,]ACTIVE|DEACTIVE` (SIM7070 names the index, SIM7000 does not).
    AppPdp {
        /// The PDP index (SIM7070), `None` on SIM7000.
        index: Option<u8>,
        /// True for `ACTIVE`.
        active: bool,
    },
    /// `+PDP: DEACT`: the network deactivated the context (SIM7000, SIM7070).
    PdpDeactivated,
    /// `+SAPBR <cid>: DEACT`: the SIM800-style bearer dropped.
    BearerDeactivated {
        /// The bearer's context id.
        cid: u8,
    },
    /// `+CGEV: ...`.
    Cgev(CgevEvent<'a>),
    /// `+CIPEVENT: NETWORK CLOSED UNEXPECTEDLY`: the data bearer was lost.
    NetworkClosed,
    /// `+NETOPEN: <err>` after `AT+NETOPEN` (SIM7600, A76xx). Also the answer to
    /// `AT+NETOPEN?`, which the command in flight claims first.
    NetOpen(Result<(), NetError>),
    /// `+NETCLOSE: <err>` after `AT+NETCLOSE`.
    NetClose(Result<(), NetError>),
    /// `+IPCLOSE: <link>,<reason>`: 0 closed locally, 1 by the remote, 2 send timeout.
    IpClose {
        /// Socket index.
        link: u8,
        /// Why.
        reason: u8,
    },
    /// `+CFOTA: ...`: the module's firmware update.
    Cfota(CfotaEvent<'a>),
}

/// Lines the module sends unsolicited that carry no parameters.
const WORDS: &[(&[u8], Urc<'static>)] = &[
    (b"RDY", Urc::Ready),
    (b"SMS DONE", Urc::SmsReady),
    (b"SMS Ready", Urc::SmsReady),
    (b"PB DONE", Urc::PbDone),
    (b"UNDER-VOLTAGE WARNNING", Urc::UnderVoltageWarning),
    (b"+HTTP_PEER_CLOSED", Urc::HttpPeerClosed),
    (b"+HTTP_NONET_EVENT", Urc::HttpNoNetwork),
    (b"+PDP: DEACT", Urc::PdpDeactivated),
    (
        b"+CIPEVENT: NETWORK CLOSED UNEXPECTEDLY",
        Urc::NetworkClosed,
    ),
];

/// Power-down lines (the module is about to switch off).
const POWER_DOWN: &[&[u8]] = &[
    b"NORMAL POWER DOWN",
    b"UNDER-VOLTAGE POWER DOWN",
    b"OVER-VOLTAGE POWER DOWN",
];

impl<'a> Urc<'a> {
    /// Parses one line (without CR/LF).
    ///
    /// * `None`: not a URC this crate knows; the caller treats it as an unknown line.
    /// * `Some(Err(_))`: a known URC prefix with a malformed body.
    /// * `Some(Ok(urc))`: the URC.
    ///
    /// Prefixes and keywords are compared ASCII case-insensitively; leading and trailing
    /// whitespace is ignored.
    pub fn parse(line: &'a [u8]) -> Option<Result<Urc<'a>, ParseError>> {
        let line = line.trim_ascii();
        if let Some((_, urc)) = WORDS.iter().find(|(w, _)| w.eq_ignore_ascii_case(line)) {
            return Some(Ok(*urc));
        }
        if POWER_DOWN.iter().any(|w| w.eq_ignore_ascii_case(line)) {
            return Some(Ok(Urc::PowerDown(line)));
        }
        if let Some(text) = after_prefix(line, b"*ATREADY:") {
            return Some(Params::new(text).u8().map(Urc::AtReady));
        }
        if let Some(text) = after_prefix(line, b"+CFUN:") {
            return Some(Params::new(text).u8().map(Urc::Cfun));
        }
        if let Some(text) = after_prefix(line, b"+CPIN:") {
            return Some(
                Params::new(text)
                    .str()
                    .map(|s| Urc::Cpin(SimState::from_text(s))),
            );
        }
        if let Some(text) = after_prefix(line, b"+HTTPACTION:") {
            return Some(http_action(text).map(Urc::HttpAction));
        }
        if let Some(text) = after_prefix(line, b"+HTTPREADFILE:") {
            return Some(
                Params::new(text)
                    .u16()
                    .map(|c| Urc::HttpReadFile(http_result(c))),
            );
        }
        if let Some(text) = after_prefix(line, b"+SHREQ:") {
            return Some(sh_req(text));
        }
        if let Some(text) = after_prefix(line, b"+SHSTATE:") {
            return Some(Params::new(text).u8().map(Urc::ShState));
        }
        if let Some(text) = after_prefix(line, b"+HTTPTOFS:") {
            return Some(status_len(&mut Params::new(text)).map(Urc::HttpToFs));
        }
        if let Some(text) = after_prefix(line, b"+APP PDP:") {
            return Some(app_pdp(text));
        }
        if let Some(rest) = after_prefix(line, b"+SAPBR") {
            return bearer(rest);
        }
        if let Some(text) = after_prefix(line, b"+CGEV:") {
            return Some(Ok(Urc::Cgev(cgev(text))));
        }
        if let Some(text) = after_prefix(line, b"+NETOPEN:") {
            return Some(Params::new(text).u16().map(|c| Urc::NetOpen(net_result(c))));
        }
        if let Some(text) = after_prefix(line, b"+NETCLOSE:") {
            return Some(
                Params::new(text)
                    .u16()
                    .map(|c| Urc::NetClose(net_result(c))),
            );
        }
        if let Some(text) = after_prefix(line, b"+IPCLOSE:") {
            let mut p = Params::new(text);
            return Some(p.u8().and_then(|link| {
                let reason = p.u8()?;
                Ok(Urc::IpClose { link, reason })
            }));
        }
        if let Some(text) = after_prefix(line, b"+CFOTA:") {
            return Some(Ok(Urc::Cfota(cfota(text))));
        }
        None
    }
}

/// `Ok(())` for `0`, else the [`NetError`].
fn net_result(code: u16) -> Result<(), NetError> {
    match code {
        0 => Ok(()),
        c => Err(NetError::from_code(c)),
    }
}

fn http_action(text: &[u8]) -> Result<HttpAction, ParseError> {
    let mut p = Params::new(text);
    let method = p.u8()?;
    let result = status_len(&mut p)?;
    Ok(HttpAction { method, result })
}

/// `<status>,<len>`.
fn status_len(p: &mut Params<'_>) -> Result<Result<HttpStatus, RequestError>, ParseError> {
    let status = p.u16()?;
    let len = p.u32()?;
    Ok(answer(status, len))
}

fn sh_req(text: &[u8]) -> Result<Urc<'_>, ParseError> {
    let mut p = Params::new(text);
    let method = p.str()?;
    let result = status_len(&mut p)?;
    Ok(Urc::ShReq { method, result })
}

fn app_pdp(text: &[u8]) -> Result<Urc<'_>, ParseError> {
    let mut p = Params::new(text);
    let first = p.str()?;
    let (index, state) = match first.parse::<u8>() {
        Ok(i) => (Some(i), p.str()?),
        Err(_) => (None, first),
    };
    let active = if state.eq_ignore_ascii_case("ACTIVE") {
        true
    } else if state.eq_ignore_ascii_case("DEACTIVE") {
        false
    } else {
        return Err(ParseError::UnexpectedValue);
    };
    Ok(Urc::AppPdp { index, active })
}

/// `+SAPBR <cid>: DEACT` (the prefix `+SAPBR` is already removed). `+SAPBR: ...` is the
/// answer to `AT+SAPBR=2,1`, not a URC.
fn bearer(rest: &[u8]) -> Option<Result<Urc<'_>, ParseError>> {
    let rest = rest.trim_ascii_start();
    let colon = rest.iter().position(|&b| b == b':')?;
    let (cid, state) = (rest[..colon].trim_ascii(), rest[colon + 1..].trim_ascii());
    if cid.is_empty() {
        return None;
    }
    if !state.eq_ignore_ascii_case(b"DEACT") {
        return Some(Err(ParseError::UnexpectedValue));
    }
    Some(
        crate::at::params::parse_u32(cid)
            .and_then(|c| u8::try_from(c).map_err(|_| ParseError::OutOfRange))
            .map(|cid| Urc::BearerDeactivated { cid }),
    )
}

fn cgev(text: &[u8]) -> CgevEvent<'_> {
    let text = text.trim_ascii();
    let after = |prefix: &[u8]| after_prefix(text, prefix).map(<[u8]>::trim_ascii);
    let first_number = |t: &[u8]| {
        let digits = t.iter().take_while(|b| b.is_ascii_digit()).count();
        crate::at::params::parse_u32(&t[..digits])
            .ok()
            .and_then(|n| u8::try_from(n).ok())
    };
    for prefix in [b"EPS PDN ACT".as_slice(), b"ME PDN ACT", b"NW PDN ACT"] {
        if let Some(cid) = after(prefix).and_then(first_number) {
            return CgevEvent::PdnActivated { cid };
        }
    }
    for prefix in [
        b"NW PDN DEACT".as_slice(),
        b"ME PDN DEACT",
        b"NW DEACT",
        b"ME DEACT",
    ] {
        if let Some(rest) = after(prefix) {
            return CgevEvent::PdnDeactivated {
                cid: first_number(rest),
            };
        }
    }
    if text.eq_ignore_ascii_case(b"ME DETACH") || text.eq_ignore_ascii_case(b"NW DETACH") {
        return CgevEvent::Detached;
    }
    CgevEvent::Other(text)
}

/// `text` without one pair of surrounding double quotes.
fn unquoted(text: &[u8]) -> &[u8] {
    text.strip_prefix(b"\"")
        .and_then(|t| t.strip_suffix(b"\""))
        .unwrap_or(text)
}

fn cfota(text: &[u8]) -> CfotaEvent<'_> {
    let text = text.trim_ascii();
    let percent = |t: &[u8]| {
        crate::at::params::parse_u32(t.trim_ascii())
            .ok()
            .filter(|&n| n <= 100)
            .map(|n| n as u8)
    };
    if text.eq_ignore_ascii_case(b"FOTA,START") {
        return CfotaEvent::Started;
    }
    if let Some(n) = after_prefix(text, b"DOWNLOADING:").and_then(percent) {
        return CfotaEvent::Downloading(n);
    }
    if text == b"100" {
        return CfotaEvent::Complete;
    }
    if let Ok(code) = crate::at::params::parse_u32(text) {
        if let Ok(code) = u16::try_from(code) {
            return CfotaEvent::Error(super::error::CfotaError::from_code(code));
        }
    }
    // SIM7000/7070: a quoted phrase, with a percentage after `"Updating",`.
    let mut p = Params::new(text);
    if let Ok(phrase) = p.str() {
        if phrase.eq_ignore_ascii_case("Updating") {
            if let Some(n) = p.u32().ok().filter(|&n| n <= 100) {
                return CfotaEvent::Updating(n as u8);
            }
        }
        let lower_starts = |w: &str| {
            phrase.len() >= w.len()
                && phrase.as_bytes()[..w.len()].eq_ignore_ascii_case(w.as_bytes())
        };
        if lower_starts("Start to update") {
            return CfotaEvent::Started;
        }
        if lower_starts("Update successfully") {
            return CfotaEvent::Succeeded;
        }
        if lower_starts("Update failed") {
            return CfotaEvent::Failed;
        }
    }
    CfotaEvent::Other(unquoted(text))
}

#[cfg(test)]
mod tests {
    use super::super::error::{CfotaError, ModuleStatus};
    use super::*;

    fn ok(status: u16, len: u32) -> Result<HttpStatus, RequestError> {
        Ok(HttpStatus {
            status,
            content_length: Some(len),
        })
    }

    /// One row per line form the reference documents or the field reported.
    #[test]
    fn every_documented_form() {
        let cases: &[(&[u8], Urc<'_>)] = &[
            (b"RDY", Urc::Ready),
            (b"*ATREADY: 1", Urc::AtReady(1)),
            (b"+CFUN: 1", Urc::Cfun(1)),
            (b"+CPIN: READY", Urc::Cpin(SimState::Ready)),
            (b"SMS DONE", Urc::SmsReady),
            (b"SMS Ready", Urc::SmsReady),
            (b"PB DONE", Urc::PbDone),
            (b"NORMAL POWER DOWN", Urc::PowerDown(b"NORMAL POWER DOWN")),
            (b"UNDER-VOLTAGE WARNNING", Urc::UnderVoltageWarning),
            (
                b"+HTTPACTION: 1,200,2800",
                Urc::HttpAction(HttpAction {
                    method: 1,
                    result: ok(200, 2800),
                }),
            ),
            (
                b"+HTTPACTION: 0,206,1024",
                Urc::HttpAction(HttpAction {
                    method: 0,
                    result: ok(206, 1024),
                }),
            ),
            (
                b"+HTTPACTION: 0,601,0",
                Urc::HttpAction(HttpAction {
                    method: 0,
                    result: Err(RequestError::Module(ModuleStatus::NetworkError)),
                }),
            ),
            (
                b"+HTTPACTION: 0,706,0",
                Urc::HttpAction(HttpAction {
                    method: 0,
                    result: Err(RequestError::Http(HttpError::SocketDataFailed)),
                }),
            ),
            // Spacing seen in the field (`simcom-at.md` §7.8).
            (
                b"+HTTPACTION:  0,204,0",
                Urc::HttpAction(HttpAction {
                    method: 0,
                    result: ok(204, 0),
                }),
            ),
            (
                b"+HTTPACTION: 0, 200,14384",
                Urc::HttpAction(HttpAction {
                    method: 0,
                    result: ok(200, 14_384),
                }),
            ),
            (b"+HTTP_PEER_CLOSED", Urc::HttpPeerClosed),
            (b"+HTTP_NONET_EVENT", Urc::HttpNoNetwork),
            (b"+HTTPREADFILE: 0", Urc::HttpReadFile(Ok(()))),
            (
                b"+HTTPREADFILE: 707",
                Urc::HttpReadFile(Err(HttpError::FileOrMemory)),
            ),
            (
                b"+SHREQ: \"GET\",200,3762",
                Urc::ShReq {
                    method: "GET",
                    result: ok(200, 3762),
                },
            ),
            (
                b"+SHREQ: \"GET\",602,0",
                Urc::ShReq {
                    method: "GET",
                    result: Err(RequestError::Module(ModuleStatus::NoMemory)),
                },
            ),
            (b"+SHSTATE: 0", Urc::ShState(0)),
            (b"+HTTPTOFS: 200,109285", Urc::HttpToFs(ok(200, 109_285))),
            (
                b"+HTTPTOFS: 601,0",
                Urc::HttpToFs(Err(RequestError::Module(ModuleStatus::NetworkError))),
            ),
            (
                b"+APP PDP: 0,ACTIVE",
                Urc::AppPdp {
                    index: Some(0),
                    active: true,
                },
            ),
            (
                b"+APP PDP: ACTIVE",
                Urc::AppPdp {
                    index: None,
                    active: true,
                },
            ),
            (
                b"+APP PDP: 1,DEACTIVE",
                Urc::AppPdp {
                    index: Some(1),
                    active: false,
                },
            ),
            (b"+PDP: DEACT", Urc::PdpDeactivated),
            (b"+SAPBR 1: DEACT", Urc::BearerDeactivated { cid: 1 }),
            (
                b"+CGEV: EPS PDN ACT 1",
                Urc::Cgev(CgevEvent::PdnActivated { cid: 1 }),
            ),
            (
                b"+CGEV: ME PDN ACT 8,1",
                Urc::Cgev(CgevEvent::PdnActivated { cid: 8 }),
            ),
            (
                b"+CGEV: NW PDN DEACT 1",
                Urc::Cgev(CgevEvent::PdnDeactivated { cid: Some(1) }),
            ),
            (b"+CGEV: ME DETACH", Urc::Cgev(CgevEvent::Detached)),
            (
                b"+CIPEVENT: NETWORK CLOSED UNEXPECTEDLY",
                Urc::NetworkClosed,
            ),
            (b"+IPCLOSE: 0,1", Urc::IpClose { link: 0, reason: 1 }),
            (b"+NETOPEN: 0", Urc::NetOpen(Ok(()))),
            (b"+NETOPEN: 1", Urc::NetOpen(Err(NetError::NetworkFailure))),
            (
                b"+NETCLOSE: 2",
                Urc::NetClose(Err(NetError::NetworkNotOpened)),
            ),
            (b"+CFOTA: FOTA,START", Urc::Cfota(CfotaEvent::Started)),
            (
                b"+CFOTA: DOWNLOADING:17",
                Urc::Cfota(CfotaEvent::Downloading(17)),
            ),
            (b"+CFOTA: 100", Urc::Cfota(CfotaEvent::Complete)),
            (
                b"+CFOTA: 1005",
                Urc::Cfota(CfotaEvent::Error(CfotaError::FileMissing)),
            ),
            (
                b"+CFOTA: \"Start to update\"",
                Urc::Cfota(CfotaEvent::Started),
            ),
            (
                b"+CFOTA: \"Updating\",30",
                Urc::Cfota(CfotaEvent::Updating(30)),
            ),
            (
                b"+CFOTA: \"Update successfully, please wait for reset\"",
                Urc::Cfota(CfotaEvent::Succeeded),
            ),
            (
                b"+CFOTA: \"Update failed, please wait for reset\"",
                Urc::Cfota(CfotaEvent::Failed),
            ),
        ];
        for (line, want) in cases {
            assert_eq!(
                Urc::parse(line),
                Some(Ok(*want)),
                "{}",
                core::str::from_utf8(line).unwrap()
            );
        }
    }

    #[test]
    fn other_lines_are_not_urcs_and_bad_bodies_are_errors() {
        for line in [
            &b"OK"[..],
            b"+SAPBR: 1,1,\"10.89.193.1\"",
            b"",
            b"+HTTPREAD: 0",
        ] {
            assert_eq!(Urc::parse(line), None, "{line:?}");
        }
        for line in [
            &b"+HTTPACTION: x"[..],
            b"+SHSTATE:",
            b"+APP PDP: MAYBE",
            b"+SAPBR 1: UP",
            b"+IPCLOSE: 1",
        ] {
            assert!(matches!(Urc::parse(line), Some(Err(_))), "{line:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn no_line_panics(line in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80)) {
            let _ = Urc::parse(&line);
        }

        #[test]
        fn no_line_after_a_known_prefix_panics(
            prefix in proptest::sample::select(&[
                "+HTTPACTION: ", "+SHREQ: ", "+APP PDP: ", "+SAPBR", "+CGEV: ", "+CFOTA: ",
                "+IPCLOSE: ", "+HTTPTOFS: ", "*ATREADY: ",
            ][..]),
            rest in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
        ) {
            let mut line = prefix.as_bytes().to_vec();
            line.extend_from_slice(&rest);
            let _ = Urc::parse(&line);
        }
    }
}
