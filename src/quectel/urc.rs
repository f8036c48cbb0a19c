//! Unsolicited result codes (URCs) of Quectel modems, typed.
//!
//! [`Urc::parse`] turns one framed line (no CR/LF) into a [`Urc`]; [`is_urc`] only says
//! whether a line is one the modem sends unsolicited. Both are total: no input panics.
//!
//! Some URC prefixes are also the prefixes of query responses (`+CPIN:` for `AT+CPIN?`,
//! `+CFUN:` for `AT+CFUN?`, `+CREG:` for `AT+CREG?`, the `+QHTTPGET:` test response to
//! `AT+QHTTPGET=?`). A client should therefore offer a line to the command in flight first
//! and only then to [`Urc::parse`].
//!
//! Unless stated otherwise, fields after the documented ones are ignored, so firmware that
//! appends fields still parses.
//!
//! ```
//! use cellular_ota::quectel::urc::{FotaEvent, HttpStatus, Urc};
//! assert_eq!(
//!     Urc::parse(b"+QIND: \"FOTA\",\"DOWNLOADING\",45"),
//!     Some(Ok(Urc::Fota(FotaEvent::Downloading(45))))
//! );
//! let Some(Ok(Urc::HttpGet(get))) = Urc::parse(b"+QHTTPGET: 0,206,1024") else { panic!() };
//! assert_eq!(get.result, Ok(HttpStatus { status: 206, content_length: Some(1024) }));
//! assert_eq!(Urc::parse(b"Quectel"), None);
//! ```

use super::ChipFamily;
use super::error::{
    FileEndError, FotaEndCode, FtpError, HttpError, describe, ftp_result, http_result,
};
use crate::at::ParseError;
use crate::at::params::{Field, Params, after_prefix, parse_hex, parse_u32};

/// One unsolicited result code.
///
/// Borrowed fields point into the parsed line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Urc<'a> {
    /// `RDY`: the module finished booting and accepts AT commands.
    Ready,
    /// `APP RDY` (BG95 family).
    AppReady,
    /// `+CFUN: <fun>` at boot (1 = full functionality).
    Cfun(u8),
    /// `+CPIN: <state>`: the SIM state.
    Cpin(SimState<'a>),
    /// `+QUSIM: <n>`: 0 = SIM card, 1 = USIM card.
    Qusim(u8),
    /// `+QIND: SMS DONE`: SMS initialisation finished.
    SmsDone,
    /// `+QIND: PB DONE`: phonebook initialisation finished.
    PbDone,
    /// `+QIND: "csq",<rssi>,<ber>` (when enabled with `AT+QINDCFG="csq",1`).
    Csq {
        /// 0–31 (dBm = -113 + 2·rssi), 99 = unknown.
        rssi: u8,
        /// Bit error rate 0–7, 99 = unknown.
        ber: u8,
    },
    /// `+QIND: "smsfull",<storage>`: SMS storage is full.
    SmsFull(&'a str),
    /// `+QIND: "act","<rat>"`: the radio access technology changed (e.g. `"LTE"`).
    Act(&'a str),
    /// `+QIND: "FOTA",...`: progress of `AT+QFOTADL`.
    Fota(FotaEvent),
    /// Any other `+QIND:` (e.g. `"datastatus"`, or a FOTA stage this crate does not know):
    /// the text after `+QIND: `.
    OtherQind(&'a [u8]),
    /// `+QIURC: "pdpdeact",<cid>`: the network deactivated a PDP context.
    PdpDeactivated {
        /// The context id.
        cid: u8,
    },
    /// Any other `+QIURC:` (socket events): the text after `+QIURC: `.
    OtherQiurc(&'a [u8]),
    /// `+QHTTPURC: "closed"`: the HTTP session closed (with `AT+QHTTPCFG="closed/ind",1`).
    HttpClosed,
    /// `POWERED DOWN`: after `AT+QPOWD`; cut the power about a second later.
    PoweredDown,
    /// `+QHTTPGET: <err>[,<status>[,<content_length>]]`, also the result of
    /// `AT+QHTTPGETEX`.
    HttpGet(HttpResult),
    /// `+QHTTPPOST: <err>[,<status>[,<content_length>]]`.
    HttpPost(HttpResult),
    /// `+QHTTPPOSTFILE: <err>[,<status>[,<content_length>]]`.
    HttpPostFile(HttpResult),
    /// `+QHTTPREAD: <err>`: the end of an `AT+QHTTPREAD` body, the real completion signal.
    HttpRead(Result<(), HttpError>),
    /// `+QHTTPREADFILE: <err>`: `AT+QHTTPREADFILE` finished storing the body.
    HttpReadFile(Result<(), HttpError>),
    /// `+CREG: <stat>[,"<lac>","<ci>"[,<AcT>]]`, and the same for `+CGREG:` / `+CEREG:`
    /// (with `<tac>`).
    ///
    /// Only the URC form (without the leading `<n>`) is parsed. A line whose first two fields
    /// are bare numbers (`+CREG: 0,1`) is the `AT+CREG?` response `<n>,<stat>`: the URC's
    /// second field is a quoted hex string. [`Urc::parse`] returns `None` for such a line so
    /// the query command can claim it. Fields after `<AcT>` (`+CGREG` `<rac>`, `+CEREG`
    /// reject causes) are ignored.
    Registration {
        /// Which command's URC.
        kind: RegKind,
        /// Registration state.
        stat: RegStatus,
        /// Location area code (`+CREG`, `+CGREG`) or tracking area code (`+CEREG`), from
        /// hex; `None` if absent or empty.
        area: Option<u32>,
        /// Cell id, from hex; `None` if absent or empty.
        cell: Option<u32>,
        /// Access technology (7 = E-UTRAN); `None` if absent.
        act: Option<u8>,
    },
}

/// The state in `+CPIN: <state>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SimState<'a> {
    /// `READY`: no PIN needed.
    Ready,
    /// `SIM PIN`
    SimPin,
    /// `SIM PUK`
    SimPuk,
    /// `PH-SIM PIN`
    PhSimPin,
    /// `SIM PIN2`
    SimPin2,
    /// `SIM PUK2`
    SimPuk2,
    /// `NOT INSERTED`
    NotInserted,
    /// `NOT READY`
    NotReady,
    /// Any other state text (e.g. `PH-NET PIN`), as sent.
    Other(&'a str),
}

impl<'a> SimState<'a> {
    /// The state for a `+CPIN:` text (compared ASCII case-insensitively).
    pub fn from_text(text: &'a str) -> Self {
        const KNOWN: [(&str, SimState<'static>); 8] = [
            ("READY", SimState::Ready),
            ("SIM PIN", SimState::SimPin),
            ("SIM PUK", SimState::SimPuk),
            ("PH-SIM PIN", SimState::PhSimPin),
            ("SIM PIN2", SimState::SimPin2),
            ("SIM PUK2", SimState::SimPuk2),
            ("NOT INSERTED", SimState::NotInserted),
            ("NOT READY", SimState::NotReady),
        ];
        KNOWN
            .iter()
            .find(|(t, _)| t.eq_ignore_ascii_case(text))
            .map_or(SimState::Other(text), |&(_, s)| s)
    }

    /// True for [`SimState::Ready`].
    pub fn is_ready(self) -> bool {
        self == SimState::Ready
    }
}

/// Which registration URC: circuit-switched, GPRS or EPS (LTE).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RegKind {
    /// `+CREG:`
    Creg,
    /// `+CGREG:`
    Cgreg,
    /// `+CEREG:`
    Cereg,
}

impl RegKind {
    /// The line prefix, such as `b"+CEREG:"`.
    pub const fn prefix(self) -> &'static [u8] {
        match self {
            RegKind::Creg => b"+CREG:",
            RegKind::Cgreg => b"+CGREG:",
            RegKind::Cereg => b"+CEREG:",
        }
    }
}

/// The `<stat>` of `+CREG`/`+CGREG`/`+CEREG`; open, as 3GPP defines more values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum RegStatus {
    /// `0`: not registered, not searching.
    NotSearching,
    /// `1`: registered, home network.
    Home,
    /// `2`: not registered, searching.
    Searching,
    /// `3`: registration denied.
    Denied,
    /// `4`: unknown (e.g. out of coverage).
    Unknown,
    /// `5`: registered, roaming.
    Roaming,
    /// Any other value.
    Other(u8),
}

impl RegStatus {
    /// The status for a `<stat>` value.
    pub const fn from_code(code: u8) -> Self {
        match code {
            0 => RegStatus::NotSearching,
            1 => RegStatus::Home,
            2 => RegStatus::Searching,
            3 => RegStatus::Denied,
            4 => RegStatus::Unknown,
            5 => RegStatus::Roaming,
            other => RegStatus::Other(other),
        }
    }

    /// The `<stat>` value.
    pub const fn code(self) -> u8 {
        match self {
            RegStatus::NotSearching => 0,
            RegStatus::Home => 1,
            RegStatus::Searching => 2,
            RegStatus::Denied => 3,
            RegStatus::Unknown => 4,
            RegStatus::Roaming => 5,
            RegStatus::Other(code) => code,
        }
    }

    /// True when registered for data: home (1) or roaming (5).
    pub const fn is_registered(self) -> bool {
        matches!(self, RegStatus::Home | RegStatus::Roaming)
    }
}

/// A successful HTTP transaction: the server's status and the announced body length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HttpStatus {
    /// The HTTP status code (200, 206, 404 ...).
    pub status: u16,
    /// The body length from `Content-Length`; `None` when the server sent none (chunked).
    pub content_length: Option<u32>,
}

impl HttpStatus {
    /// True for a 2xx status.
    pub const fn is_success(self) -> bool {
        self.status >= 200 && self.status < 300
    }
}

/// The result of `+QHTTPGET:` / `+QHTTPPOST:` / `+QHTTPPOSTFILE:`:
/// `<err>[,<httprspcode>[,<content_length>]]`.
///
/// `<err>` 0 means the transaction worked, whatever the HTTP status: `+QHTTPGET: 0,404,0` is
/// `Ok(HttpStatus { status: 404, .. })`. A non-zero `<err>` is an [`HttpError`] and the status
/// is absent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HttpResult {
    /// The HTTP status on success, the module's error otherwise.
    pub result: Result<HttpStatus, HttpError>,
}

impl HttpResult {
    /// Parses the parameter text after the prefix (`0,200,1024`).
    ///
    /// `<err>` 0 requires the status (`0` alone is [`ParseError::MissingField`]); an empty
    /// length field counts as absent. After a non-zero `<err>`, further fields are ignored.
    pub fn parse(params: &[u8]) -> Result<Self, ParseError> {
        let mut p = Params::new(params);
        let err = p.u16()?;
        if err != 0 {
            return Ok(HttpResult {
                result: Err(HttpError::from_code(err)),
            });
        }
        let status = p.u16()?;
        let content_length = p.opt_u32()?;
        Ok(HttpResult {
            result: Ok(HttpStatus {
                status,
                content_length,
            }),
        })
    }

    /// The raw `<err>`: 0 on success, else the error code.
    pub const fn code(self) -> u16 {
        match self.result {
            Ok(_) => 0,
            Err(e) => e.code(),
        }
    }
}

/// One `+QIND: "FOTA",<stage>[,<value>]` URC (reference §8.2).
///
/// Download stage: `HTTPSTART` → `DOWNLOADING` … → `HTTPEND` (or `FTPSTART` → `FTPEND`, or
/// `FILESTART` → `FILEEND` for a host-streamed package). Upgrade stage: `START` →
/// `UPDATING` … → (`RESTORE` … on BG96) → `END`. Only `END` with code 0 means success.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum FotaEvent {
    /// `"HTTPSTART"` (or `"HTTPSSTART"`): the package download began.
    HttpStart {
        /// The modem spelled it `HTTPSSTART` (reported by one EG18 write-up for HTTPS).
        https_spelling: bool,
    },
    /// `"HTTPEND",<err>` (or `"HTTPSEND"`): the package download ended.
    ///
    /// `<err>` is an HTTP code (0 = ok, 7xx), but EC200U also reports 6xx codes here
    /// (`HTTPEND,608` for a misconfigured `fota/path`); see [`FotaEvent::http_result`] and
    /// [`FotaEvent::meaning`].
    HttpEnd {
        /// The modem spelled it `HTTPSEND`.
        https_spelling: bool,
        /// The raw `<err>`.
        code: u16,
    },
    /// `"FTPSTART"`: the FTP download began.
    FtpStart,
    /// `"FTPEND",<err>`: the FTP download ended (0 = ok, else an [`FtpError`]).
    FtpEnd {
        /// The raw `<err>`.
        code: u16,
    },
    /// `"FILESTART"`: the host-streamed package transfer began (ASR).
    FileStart,
    /// `"FILEEND",<err>`: the host-streamed transfer ended (0 = ok, else a
    /// [`FileEndError`]).
    FileEnd {
        /// The raw `<err>`.
        code: u16,
    },
    /// `"DOWNLOADING",<percent>` (ASR and EC200U).
    Downloading(u8),
    /// `"START"`: the upgrade began.
    Start,
    /// `"UPDATING",<percent>`: upgrade progress (may jump, and restart after a reboot).
    Updating(u8),
    /// `"RESTORE",<percent>` (BG96, between `UPDATING` and `END`).
    Restore(u8),
    /// `"END",<err>`: the upgrade finished; only code 0 means success.
    End(FotaEndCode),
}

impl FotaEvent {
    /// The raw code of an end event (`HTTPEND`, `FTPEND`, `FILEEND`, `END`); `None` for the
    /// others.
    pub const fn code(self) -> Option<u16> {
        match self {
            FotaEvent::HttpEnd { code, .. }
            | FotaEvent::FtpEnd { code }
            | FotaEvent::FileEnd { code }
            | FotaEvent::End(FotaEndCode(code)) => Some(code),
            _ => None,
        }
    }

    /// For an end event, whether its stage succeeded (code 0); `None` for the others.
    pub const fn succeeded(self) -> Option<bool> {
        match self.code() {
            Some(code) => Some(code == 0),
            None => None,
        }
    }

    /// For `HTTPEND`: its code as an HTTP result (a 6xx code becomes
    /// [`HttpError::Unknown`]; [`FotaEvent::meaning`] still explains it).
    pub const fn http_result(self) -> Option<Result<(), HttpError>> {
        match self {
            FotaEvent::HttpEnd { code, .. } => Some(http_result(code)),
            _ => None,
        }
    }

    /// For `FTPEND`: its code as an FTP result.
    pub const fn ftp_result(self) -> Option<Result<(), FtpError>> {
        match self {
            FotaEvent::FtpEnd { code } => Some(ftp_result(code)),
            _ => None,
        }
    }

    /// For `FILEEND`: its code as a file-transfer result.
    pub const fn file_result(self) -> Option<Result<(), FileEndError>> {
        match self {
            FotaEvent::FileEnd { code: 0 } => Some(Ok(())),
            FotaEvent::FileEnd { code } => Some(Err(FileEndError::from_code(code))),
            _ => None,
        }
    }

    /// The meaning of an end event's code (`None` for the other events). `family` selects
    /// the table for `END` codes (see [`FotaEndCode::meaning`]); download-stage codes are
    /// described with [`describe`], so EC200U's `HTTPEND,608` reads as the FTP error 608.
    pub fn meaning(self, family: Option<ChipFamily>) -> Option<&'static str> {
        match self {
            FotaEvent::End(code) => Some(code.meaning(family)),
            FotaEvent::HttpEnd { code: 0, .. }
            | FotaEvent::FtpEnd { code: 0 }
            | FotaEvent::FileEnd { code: 0 } => Some("download succeeded"),
            FotaEvent::FileEnd { code } => match FileEndError::from_code(code) {
                FileEndError::Unknown(_) => Some(describe(code)),
                e => Some(e.meaning()),
            },
            FotaEvent::HttpEnd { code, .. } | FotaEvent::FtpEnd { code } => Some(describe(code)),
            _ => None,
        }
    }
}

/// Prefixes whose lines [`Urc::parse`] decodes.
const KNOWN_PREFIXES: [&[u8]; 14] = [
    b"+CFUN:",
    b"+CPIN:",
    b"+QUSIM:",
    b"+QIND:",
    b"+QIURC:",
    b"+QHTTPURC:",
    b"+QHTTPGET:",
    b"+QHTTPPOST:",
    b"+QHTTPPOSTFILE:",
    b"+QHTTPREAD:",
    b"+QHTTPREADFILE:",
    b"+CREG:",
    b"+CGREG:",
    b"+CEREG:",
];

/// Whole lines [`Urc::parse`] decodes.
const KNOWN_WORDS: [&[u8]; 3] = [b"RDY", b"APP RDY", b"POWERED DOWN"];

/// Other lines that only ever arrive unsolicited.
const OTHER_UNSOLICITED_WORDS: [&[u8]; 1] = [b"RING"];

/// True when `line` is a URC: one whose prefix [`Urc::parse`] recognises (even if the body is
/// malformed, and including the `+CREG: <n>,<stat>` query form it leaves to the command), or
/// another line only ever sent unsolicited (`RING`).
///
/// Meant for telling URCs from the untagged lines of `ATI` / `AT+GMR` responses (`Quectel`,
/// `EG06`, `Revision: ...`). Whenever [`Urc::parse`] returns `Some`, this returns `true`.
pub fn is_urc(line: &[u8]) -> bool {
    let trimmed = line.trim_ascii();
    KNOWN_WORDS
        .iter()
        .chain(OTHER_UNSOLICITED_WORDS.iter())
        .any(|w| w.eq_ignore_ascii_case(trimmed))
        || KNOWN_PREFIXES
            .iter()
            .any(|p| after_prefix(trimmed, p).is_some())
}

impl<'a> Urc<'a> {
    /// Parses one line (without CR/LF).
    ///
    /// * `None`: not a URC this crate knows (including the `+CREG: <n>,<stat>` query form and
    ///   unknown `+QHTTPURC:` kinds); the caller treats it as an unknown line.
    /// * `Some(Err(_))`: a known URC prefix with a malformed body.
    /// * `Some(Ok(urc))`: the URC.
    ///
    /// Prefixes and keywords are compared ASCII case-insensitively; leading and trailing
    /// whitespace is ignored.
    pub fn parse(line: &'a [u8]) -> Option<Result<Urc<'a>, ParseError>> {
        let line = line.trim_ascii();
        if line.eq_ignore_ascii_case(b"RDY") {
            return Some(Ok(Urc::Ready));
        }
        if line.eq_ignore_ascii_case(b"APP RDY") {
            return Some(Ok(Urc::AppReady));
        }
        if line.eq_ignore_ascii_case(b"POWERED DOWN") {
            return Some(Ok(Urc::PoweredDown));
        }
        if let Some(text) = after_prefix(line, b"+CFUN:") {
            return Some(single_u8(text).map(Urc::Cfun));
        }
        if let Some(text) = after_prefix(line, b"+CPIN:") {
            return Some(
                Params::new(text)
                    .str()
                    .map(|s| Urc::Cpin(SimState::from_text(s))),
            );
        }
        if let Some(text) = after_prefix(line, b"+QUSIM:") {
            return Some(single_u8(text).map(Urc::Qusim));
        }
        if let Some(text) = after_prefix(line, b"+QIND:") {
            return Some(qind(text));
        }
        if let Some(text) = after_prefix(line, b"+QIURC:") {
            return Some(qiurc(text));
        }
        if let Some(text) = after_prefix(line, b"+QHTTPURC:") {
            return qhttpurc(text);
        }
        if let Some(text) = after_prefix(line, b"+QHTTPGET:") {
            return Some(HttpResult::parse(text).map(Urc::HttpGet));
        }
        if let Some(text) = after_prefix(line, b"+QHTTPPOST:") {
            return Some(HttpResult::parse(text).map(Urc::HttpPost));
        }
        if let Some(text) = after_prefix(line, b"+QHTTPPOSTFILE:") {
            return Some(HttpResult::parse(text).map(Urc::HttpPostFile));
        }
        if let Some(text) = after_prefix(line, b"+QHTTPREAD:") {
            return Some(
                Params::new(text)
                    .u16()
                    .map(|c| Urc::HttpRead(http_result(c))),
            );
        }
        if let Some(text) = after_prefix(line, b"+QHTTPREADFILE:") {
            return Some(
                Params::new(text)
                    .u16()
                    .map(|c| Urc::HttpReadFile(http_result(c))),
            );
        }
        for kind in [RegKind::Creg, RegKind::Cgreg, RegKind::Cereg] {
            if let Some(text) = after_prefix(line, kind.prefix()) {
                return registration(kind, text);
            }
        }
        None
    }
}

/// The URCs an HTTP download waits for, parsed by a matcher that knows only them (the full
/// [`Urc::parse`] links every URC table of the crate; the update flow needs five kinds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DownloadUrc {
    /// `+QHTTPGET: <err>[,<status>[,<len>]]`.
    HttpGet(HttpResult),
    /// `+QHTTPREAD: <err>`.
    HttpRead(Result<(), HttpError>),
    /// `+QHTTPREADFILE: <err>`.
    HttpReadFile(Result<(), HttpError>),
    /// `RDY`: the module restarted.
    Ready,
    /// `+QIURC: "pdpdeact",<cid>`: the network dropped the PDP context.
    PdpDeactivated,
}

impl DownloadUrc {
    /// Parses `line` as one of the download URCs, exactly as [`Urc::parse`] would (same
    /// trimming, same case-insensitive prefixes); `None` for anything else or a malformed
    /// body.
    pub(crate) fn parse(line: &[u8]) -> Option<Self> {
        let line = line.trim_ascii();
        if line.eq_ignore_ascii_case(b"RDY") {
            return Some(DownloadUrc::Ready);
        }
        if let Some(text) = after_prefix(line, b"+QHTTPGET:") {
            return HttpResult::parse(text).ok().map(DownloadUrc::HttpGet);
        }
        if let Some(text) = after_prefix(line, b"+QHTTPREAD:") {
            let code = Params::new(text).u16().ok()?;
            return Some(DownloadUrc::HttpRead(http_result(code)));
        }
        if let Some(text) = after_prefix(line, b"+QHTTPREADFILE:") {
            let code = Params::new(text).u16().ok()?;
            return Some(DownloadUrc::HttpReadFile(http_result(code)));
        }
        if let Some(text) = after_prefix(line, b"+QIURC:") {
            let mut p = Params::new(text);
            if p.str().ok()?.eq_ignore_ascii_case("pdpdeact") && p.u8().is_ok() {
                return Some(DownloadUrc::PdpDeactivated);
            }
        }
        None
    }
}

fn single_u8(text: &[u8]) -> Result<u8, ParseError> {
    Params::new(text).u8()
}

fn field_u8(field: Field<'_>) -> Result<u8, ParseError> {
    u8::try_from(parse_u32(field.text().as_bytes())?).map_err(|_| ParseError::OutOfRange)
}

/// A hex field (quoted or bare, optional `0x`); `None` if empty.
fn opt_hex(field: Option<Field<'_>>) -> Result<Option<u32>, ParseError> {
    let Some(field) = field else { return Ok(None) };
    let text = field.text().trim().as_bytes();
    let digits = match text {
        [] => return Ok(None),
        [b'0', b'x' | b'X', rest @ ..] => rest,
        t => t,
    };
    parse_hex(digits).map(Some)
}

fn qind(text: &[u8]) -> Result<Urc<'_>, ParseError> {
    let mut p = Params::new(text);
    let kind = p.str()?;
    let is = |name: &str| kind.eq_ignore_ascii_case(name);
    if is("SMS DONE") {
        Ok(Urc::SmsDone)
    } else if is("PB DONE") {
        Ok(Urc::PbDone)
    } else if is("csq") {
        let rssi = p.u8()?;
        let ber = p.u8()?;
        Ok(Urc::Csq { rssi, ber })
    } else if is("smsfull") {
        Ok(Urc::SmsFull(p.str()?))
    } else if is("act") {
        Ok(Urc::Act(p.str()?))
    } else if is("FOTA") {
        Ok(fota(&mut p)?.map_or(Urc::OtherQind(text), Urc::Fota))
    } else {
        Ok(Urc::OtherQind(text))
    }
}

/// The FOTA event after `"FOTA",`; `Ok(None)` for a stage this crate does not know.
fn fota(p: &mut Params<'_>) -> Result<Option<FotaEvent>, ParseError> {
    let stage = p.str()?;
    let is = |name: &str| stage.eq_ignore_ascii_case(name);
    let event = if is("HTTPSTART") || is("HTTPSSTART") {
        FotaEvent::HttpStart {
            https_spelling: is("HTTPSSTART"),
        }
    } else if is("HTTPEND") || is("HTTPSEND") {
        FotaEvent::HttpEnd {
            https_spelling: is("HTTPSEND"),
            code: p.u16()?,
        }
    } else if is("FTPSTART") {
        FotaEvent::FtpStart
    } else if is("FTPEND") {
        FotaEvent::FtpEnd { code: p.u16()? }
    } else if is("FILESTART") {
        FotaEvent::FileStart
    } else if is("FILEEND") {
        FotaEvent::FileEnd { code: p.u16()? }
    } else if is("DOWNLOADING") {
        FotaEvent::Downloading(p.u8()?)
    } else if is("START") {
        FotaEvent::Start
    } else if is("UPDATING") {
        FotaEvent::Updating(p.u8()?)
    } else if is("RESTORE") {
        FotaEvent::Restore(p.u8()?)
    } else if is("END") {
        FotaEvent::End(FotaEndCode(p.u16()?))
    } else {
        return Ok(None);
    };
    Ok(Some(event))
}

fn qiurc(text: &[u8]) -> Result<Urc<'_>, ParseError> {
    let mut p = Params::new(text);
    if p.str()?.eq_ignore_ascii_case("pdpdeact") {
        Ok(Urc::PdpDeactivated { cid: p.u8()? })
    } else {
        Ok(Urc::OtherQiurc(text))
    }
}

fn qhttpurc(text: &[u8]) -> Option<Result<Urc<'_>, ParseError>> {
    match Params::new(text).str() {
        Err(e) => Some(Err(e)),
        Ok(kind) if kind.eq_ignore_ascii_case("closed") => Some(Ok(Urc::HttpClosed)),
        Ok(_) => None,
    }
}

fn registration(kind: RegKind, text: &[u8]) -> Option<Result<Urc<'_>, ParseError>> {
    let mut p = Params::new(text);
    let first = match p.field() {
        Ok(f) => f,
        Err(e) => return Some(Err(e)),
    };
    let second = match p.next_field() {
        Ok(f) => f,
        Err(e) => return Some(Err(e)),
    };
    if matches!(second, Some(Field::Bare(s)) if !s.is_empty()) {
        // `<n>,<stat>[,...]`: the response to `AT+CREG?`, not a URC.
        return None;
    }
    Some(registration_fields(kind, first, second, &mut p))
}

/// The URC form `<stat>[,<area>,<cell>[,<AcT>]]`, given its first two fields.
fn registration_fields<'a>(
    kind: RegKind,
    first: Field<'a>,
    second: Option<Field<'a>>,
    p: &mut Params<'a>,
) -> Result<Urc<'a>, ParseError> {
    let stat = RegStatus::from_code(field_u8(first)?);
    let area = opt_hex(second)?;
    let cell = opt_hex(p.next_field()?)?;
    let act = match p.next_field()? {
        Some(f) if !f.text().trim().is_empty() => Some(field_u8(f)?),
        _ => None,
    };
    Ok(Urc::Registration {
        kind,
        stat,
        area,
        cell,
        act,
    })
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    /// `name: line => expected URC;` — one test per line (httparse `req!` style).
    macro_rules! urc {
        ($($name:ident: $line:expr => $expected:expr;)+) => {$(
            #[test]
            fn $name() {
                let line: &[u8] = $line;
                assert_eq!(Urc::parse(line), Some(Ok($expected)), "{}", line.escape_ascii());
                assert!(is_urc(line), "{}", line.escape_ascii());
            }
        )+};
    }

    /// `name: line => expected error;` — a known prefix with a malformed body.
    macro_rules! malformed {
        ($($name:ident: $line:expr => $err:expr;)+) => {$(
            #[test]
            fn $name() {
                let line: &[u8] = $line;
                assert_eq!(Urc::parse(line), Some(Err($err)), "{}", line.escape_ascii());
                assert!(is_urc(line), "{}", line.escape_ascii());
            }
        )+};
    }

    const fn get(status: u16, content_length: Option<u32>) -> HttpResult {
        HttpResult {
            result: Ok(HttpStatus {
                status,
                content_length,
            }),
        }
    }

    const fn failed(e: HttpError) -> HttpResult {
        HttpResult { result: Err(e) }
    }

    const fn reg(
        kind: RegKind,
        stat: u8,
        area: Option<u32>,
        cell: Option<u32>,
        act: Option<u8>,
    ) -> Urc<'static> {
        Urc::Registration {
            kind,
            stat: RegStatus::from_code(stat),
            area,
            cell,
            act,
        }
    }

    urc! {
        rdy: b"RDY" => Urc::Ready;
        rdy_spaces: b" RDY " => Urc::Ready;
        app_rdy: b"APP RDY" => Urc::AppReady;
        cfun: b"+CFUN: 1" => Urc::Cfun(1);
        cpin_ready: b"+CPIN: READY" => Urc::Cpin(SimState::Ready);
        cpin_pin: b"+CPIN: SIM PIN" => Urc::Cpin(SimState::SimPin);
        cpin_puk: b"+CPIN: SIM PUK" => Urc::Cpin(SimState::SimPuk);
        cpin_ph: b"+CPIN: PH-SIM PIN" => Urc::Cpin(SimState::PhSimPin);
        cpin_pin2: b"+CPIN: SIM PIN2" => Urc::Cpin(SimState::SimPin2);
        cpin_puk2: b"+CPIN: SIM PUK2" => Urc::Cpin(SimState::SimPuk2);
        cpin_not_inserted: b"+CPIN: NOT INSERTED" => Urc::Cpin(SimState::NotInserted);
        cpin_not_ready: b"+CPIN: NOT READY" => Urc::Cpin(SimState::NotReady);
        cpin_other: b"+CPIN: PH-NET PIN" => Urc::Cpin(SimState::Other("PH-NET PIN"));
        qusim: b"+QUSIM: 1" => Urc::Qusim(1);
        sms_done: b"+QIND: SMS DONE" => Urc::SmsDone;
        pb_done: b"+QIND: PB DONE" => Urc::PbDone;
        pb_done_quoted: b"+QIND: \"PB DONE\"" => Urc::PbDone;
        csq: b"+QIND: \"csq\",27,99" => Urc::Csq { rssi: 27, ber: 99 };
        sms_full: b"+QIND: \"smsfull\",\"SM\"" => Urc::SmsFull("SM");
        act: b"+QIND: \"act\",\"LTE\"" => Urc::Act("LTE");
        datastatus: b"+QIND: \"datastatus\",1" => Urc::OtherQind(b"\"datastatus\",1");
        fota_unknown_stage: b"+QIND: \"FOTA\",\"NEWSTAGE\",3"
            => Urc::OtherQind(b"\"FOTA\",\"NEWSTAGE\",3");
        fota_http_start: b"+QIND: \"FOTA\",\"HTTPSTART\""
            => Urc::Fota(FotaEvent::HttpStart { https_spelling: false });
        fota_https_start: b"+QIND: \"FOTA\",\"HTTPSSTART\""
            => Urc::Fota(FotaEvent::HttpStart { https_spelling: true });
        fota_downloading: b"+QIND: \"FOTA\",\"DOWNLOADING\",45"
            => Urc::Fota(FotaEvent::Downloading(45));
        fota_http_end: b"+QIND: \"FOTA\",\"HTTPEND\",0"
            => Urc::Fota(FotaEvent::HttpEnd { https_spelling: false, code: 0 });
        fota_https_end: b"+QIND: \"FOTA\",\"HTTPSEND\",0"
            => Urc::Fota(FotaEvent::HttpEnd { https_spelling: true, code: 0 });
        fota_http_end_608: b"+QIND: \"FOTA\",\"HTTPEND\",608"
            => Urc::Fota(FotaEvent::HttpEnd { https_spelling: false, code: 608 });
        fota_http_end_701: b"+QIND: \"FOTA\",\"HTTPEND\",701"
            => Urc::Fota(FotaEvent::HttpEnd { https_spelling: false, code: 701 });
        fota_ftp_start: b"+QIND: \"FOTA\",\"FTPSTART\"" => Urc::Fota(FotaEvent::FtpStart);
        fota_ftp_end: b"+QIND: \"FOTA\",\"FTPEND\",609"
            => Urc::Fota(FotaEvent::FtpEnd { code: 609 });
        fota_file_start: b"+QIND: \"FOTA\",\"FILESTART\"" => Urc::Fota(FotaEvent::FileStart);
        fota_file_end: b"+QIND: \"FOTA\",\"FILEEND\",500"
            => Urc::Fota(FotaEvent::FileEnd { code: 500 });
        fota_start: b"+QIND: \"FOTA\",\"START\"" => Urc::Fota(FotaEvent::Start);
        fota_updating: b"+QIND: \"FOTA\",\"UPDATING\",47" => Urc::Fota(FotaEvent::Updating(47));
        fota_restore: b"+QIND: \"FOTA\",\"RESTORE\",10" => Urc::Fota(FotaEvent::Restore(10));
        fota_end_ok: b"+QIND: \"FOTA\",\"END\",0" => Urc::Fota(FotaEvent::End(FotaEndCode(0)));
        fota_end_506: b"+QIND: \"FOTA\",\"END\",506"
            => Urc::Fota(FotaEvent::End(FotaEndCode(506)));
        fota_lower_case: b"+qind: \"fota\",\"end\",0" => Urc::Fota(FotaEvent::End(FotaEndCode(0)));
        fota_extra_field: b"+QIND: \"FOTA\",\"END\",0,1" => Urc::Fota(FotaEvent::End(FotaEndCode(0)));
        pdp_deact: b"+QIURC: \"pdpdeact\",1" => Urc::PdpDeactivated { cid: 1 };
        qiurc_other: b"+QIURC: \"closed\",0" => Urc::OtherQiurc(b"\"closed\",0");
        http_closed: b"+QHTTPURC: \"closed\"" => Urc::HttpClosed;
        powered_down: b"POWERED DOWN" => Urc::PoweredDown;
        http_get: b"+QHTTPGET: 0,200,1024" => Urc::HttpGet(get(200, Some(1024)));
        http_get_chunked: b"+QHTTPGET: 0,200" => Urc::HttpGet(get(200, None));
        http_get_404: b"+QHTTPGET: 0,404,0" => Urc::HttpGet(get(404, Some(0)));
        http_get_range: b"+QHTTPGET: 0,206,8" => Urc::HttpGet(get(206, Some(8)));
        http_get_error: b"+QHTTPGET: 702" => Urc::HttpGet(failed(HttpError::Timeout));
        http_get_unknown: b"+QHTTPGET: 799" => Urc::HttpGet(failed(HttpError::Unknown(799)));
        http_post: b"+QHTTPPOST: 0,200,440" => Urc::HttpPost(get(200, Some(440)));
        http_post_file: b"+QHTTPPOSTFILE: 716"
            => Urc::HttpPostFile(failed(HttpError::SocketConnectError));
        http_read_ok: b"+QHTTPREAD: 0" => Urc::HttpRead(Ok(()));
        http_read_err: b"+QHTTPREAD: 717" => Urc::HttpRead(Err(HttpError::SocketReadError));
        http_read_file_ok: b"+QHTTPREADFILE: 0" => Urc::HttpReadFile(Ok(()));
        http_read_file_err: b"+QHTTPREADFILE: 722"
            => Urc::HttpReadFile(Err(HttpError::ReadTimeout));
        creg_stat: b"+CREG: 1" => reg(RegKind::Creg, 1, None, None, None);
        creg_full: b"+CREG: 1,\"1A2B\",\"01234567\",7"
            => reg(RegKind::Creg, 1, Some(0x1a2b), Some(0x0123_4567), Some(7));
        creg_no_act: b"+CREG: 5,\"1a2b\",\"ABCDEF\""
            => reg(RegKind::Creg, 5, Some(0x1a2b), Some(0xabcdef), None);
        cgreg_extra: b"+CGREG: 1,\"1A2B\",\"01234567\",7,\"FF\""
            => reg(RegKind::Cgreg, 1, Some(0x1a2b), Some(0x0123_4567), Some(7));
        cereg: b"+CEREG: 2" => reg(RegKind::Cereg, 2, None, None, None);
        cereg_other: b"+CEREG: 8" => reg(RegKind::Cereg, 8, None, None, None);
        cereg_empty_fields: b"+CEREG: 0,,,"
            => reg(RegKind::Cereg, 0, None, None, None);
    }

    malformed! {
        cfun_empty: b"+CFUN:" => ParseError::MissingField;
        cfun_text: b"+CFUN: x" => ParseError::BadNumber;
        cfun_big: b"+CFUN: 300" => ParseError::OutOfRange;
        cpin_empty: b"+CPIN: " => ParseError::MissingField;
        qusim_bad: b"+QUSIM: -1" => ParseError::BadNumber;
        qind_empty: b"+QIND:" => ParseError::MissingField;
        qind_unterminated: b"+QIND: \"csq" => ParseError::Unterminated;
        csq_missing_ber: b"+QIND: \"csq\",27" => ParseError::MissingField;
        act_missing: b"+QIND: \"act\"" => ParseError::MissingField;
        fota_no_stage: b"+QIND: \"FOTA\"" => ParseError::MissingField;
        fota_downloading_no_pct: b"+QIND: \"FOTA\",\"DOWNLOADING\"" => ParseError::MissingField;
        fota_end_no_code: b"+QIND: \"FOTA\",\"END\"" => ParseError::MissingField;
        fota_end_bad_code: b"+QIND: \"FOTA\",\"END\",abc" => ParseError::BadNumber;
        fota_http_end_big: b"+QIND: \"FOTA\",\"HTTPEND\",70000" => ParseError::OutOfRange;
        fota_updating_big: b"+QIND: \"FOTA\",\"UPDATING\",256" => ParseError::OutOfRange;
        pdpdeact_no_cid: b"+QIURC: \"pdpdeact\"" => ParseError::MissingField;
        qhttpurc_empty: b"+QHTTPURC:" => ParseError::MissingField;
        http_get_no_status: b"+QHTTPGET: 0" => ParseError::MissingField;
        http_get_empty: b"+QHTTPGET:" => ParseError::MissingField;
        http_get_test_response: b"+QHTTPGET: (1-65535),(1-2048)" => ParseError::BadNumber;
        http_get_bad_len: b"+QHTTPGET: 0,200,x" => ParseError::BadNumber;
        http_read_empty: b"+QHTTPREAD: " => ParseError::MissingField;
        http_read_file_bad: b"+QHTTPREADFILE: \"x" => ParseError::Unterminated;
        creg_empty: b"+CREG:" => ParseError::MissingField;
        creg_bad_stat: b"+CREG: x,\"1A2B\"" => ParseError::BadNumber;
        creg_bad_lac: b"+CREG: 1,\"XYZ\",\"1\"" => ParseError::BadNumber;
        creg_bad_act: b"+CEREG: 1,\"1A2B\",\"1\",E" => ParseError::BadNumber;
        creg_long_ci: b"+CEREG: 1,\"1A2B\",\"123456789\"" => ParseError::OutOfRange;
    }

    #[test]
    fn not_urcs() {
        for line in [
            &b""[..],
            b"Quectel",
            b"EG06",
            b"Revision: EG18EAPAR01A12M4G",
            b"EC200UCNAAR01A04M08",
            b"OK",
            b"+CSQ: 27,99",
            b"+QFUPL: 683,f6e",
            b"RDYX",
            b"+QHTTPGETEX: 0",
            b"\xff\xfe",
        ] {
            assert_eq!(Urc::parse(line), None, "{}", line.escape_ascii());
            assert!(!is_urc(line), "{}", line.escape_ascii());
        }
    }

    #[test]
    fn query_forms_are_left_to_the_command() {
        for line in [
            &b"+CREG: 0,1"[..],
            b"+CREG: 2,1,\"1A2B\",\"01234567\",7",
            b"+CEREG: 0,5",
            b"+CGREG: 1,2",
        ] {
            assert_eq!(Urc::parse(line), None, "{}", line.escape_ascii());
            assert!(is_urc(line));
        }
        // An unknown `+QHTTPURC:` kind is not decoded either.
        assert_eq!(Urc::parse(b"+QHTTPURC: \"other\""), None);
        assert!(is_urc(b"+QHTTPURC: \"other\""));
        assert!(is_urc(b"RING"));
        assert_eq!(Urc::parse(b"RING"), None);
    }

    #[test]
    fn helpers() {
        assert!(RegStatus::Home.is_registered());
        assert!(RegStatus::Roaming.is_registered());
        assert!(!RegStatus::Searching.is_registered());
        assert!(!RegStatus::Other(6).is_registered());
        for code in 0..=u8::MAX {
            assert_eq!(RegStatus::from_code(code).code(), code);
        }
        assert!(SimState::Ready.is_ready());
        assert_eq!(SimState::from_text("ready"), SimState::Ready);

        let end = FotaEvent::HttpEnd {
            https_spelling: false,
            code: 608,
        };
        assert_eq!(end.code(), Some(608));
        assert_eq!(end.succeeded(), Some(false));
        assert_eq!(end.http_result(), Some(Err(HttpError::Unknown(608))));
        assert_eq!(end.meaning(None), Some("socket closed by peer"));
        let end = FotaEvent::HttpEnd {
            https_spelling: true,
            code: 701,
        };
        assert_eq!(end.http_result(), Some(Err(HttpError::UnknownError)));
        assert_eq!(end.meaning(None), Some("unknown HTTP error"));
        assert_eq!(FotaEvent::FtpEnd { code: 0 }.ftp_result(), Some(Ok(())));
        assert_eq!(
            FotaEvent::FtpEnd { code: 609 }.ftp_result(),
            Some(Err(FtpError::Timeout))
        );
        assert_eq!(
            FotaEvent::FileEnd { code: 500 }.file_result(),
            Some(Err(FileEndError::DownloadError))
        );
        assert_eq!(
            FotaEvent::FileEnd { code: 500 }.meaning(None),
            Some("file download error")
        );
        let end = FotaEvent::End(FotaEndCode(506));
        assert_eq!(
            end.meaning(Some(ChipFamily::Asr)),
            Some("firmware MD5 check error")
        );
        assert_eq!(FotaEvent::End(FotaEndCode(0)).succeeded(), Some(true));
        assert_eq!(FotaEvent::Start.code(), None);
        assert_eq!(FotaEvent::Updating(5).meaning(None), None);
        assert_eq!(FotaEvent::Start.http_result(), None);

        assert_eq!(get(200, None).code(), 0);
        assert_eq!(failed(HttpError::Timeout).code(), 702);
        assert!(
            HttpStatus {
                status: 206,
                content_length: None
            }
            .is_success()
        );
        assert!(
            !HttpStatus {
                status: 404,
                content_length: None
            }
            .is_success()
        );
    }

    fn prefixes() -> Vec<&'static [u8]> {
        let mut v: Vec<&'static [u8]> = KNOWN_PREFIXES.to_vec();
        v.extend_from_slice(&KNOWN_WORDS);
        v.extend_from_slice(&[
            b"+QIND: \"FOTA\",",
            b"+QIND: \"FOTA\",\"END\",",
            b"+QIND: \"",
        ]);
        v
    }

    /// What the full parser says about a line, in the download matcher's terms.
    fn as_download(line: &[u8]) -> Option<DownloadUrc> {
        match Urc::parse(line)? {
            Ok(Urc::HttpGet(r)) => Some(DownloadUrc::HttpGet(r)),
            Ok(Urc::HttpRead(r)) => Some(DownloadUrc::HttpRead(r)),
            Ok(Urc::HttpReadFile(r)) => Some(DownloadUrc::HttpReadFile(r)),
            Ok(Urc::Ready) => Some(DownloadUrc::Ready),
            Ok(Urc::PdpDeactivated { .. }) => Some(DownloadUrc::PdpDeactivated),
            _ => None,
        }
    }

    #[test]
    fn download_matcher_agrees_with_the_full_parser() {
        for line in [
            &b"RDY"[..],
            b" rdy ",
            b"+QHTTPGET: 0,200,1024",
            b"+qhttpget: 0,206",
            b"+QHTTPGET: 702",
            b"+QHTTPGET: x",
            b"+QHTTPREAD: 0",
            b"+QHTTPREAD: 717",
            b"+QHTTPREADFILE: 0",
            b"+QHTTPREADFILE: 705",
            b"+QIURC: \"pdpdeact\",1",
            b"+QIURC: \"closed\",0",
            b"+QIURC: \"pdpdeact\"",
            b"APP RDY",
            b"+CPIN: READY",
            b"",
        ] {
            assert_eq!(DownloadUrc::parse(line), as_download(line), "{line:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn download_matcher_agrees_on_any_tail(
            prefix in proptest::sample::select(
                &["RDY", "+QHTTPGET:", "+QHTTPREAD:", "+QHTTPREADFILE:", "+QIURC:"][..]),
            tail in proptest::collection::vec(
                proptest::sample::select(&b"0123456789,\" pdpdeactRDY\xff"[..]), 0..24),
        ) {
            let mut line = prefix.as_bytes().to_vec();
            line.extend_from_slice(&tail);
            proptest::prop_assert_eq!(DownloadUrc::parse(&line), as_download(&line));
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..128)) {
            let parsed = Urc::parse(&bytes);
            if parsed.is_some() {
                proptest::prop_assert!(is_urc(&bytes));
            }
        }

        #[test]
        fn known_prefix_with_any_tail_never_panics(
            prefix in proptest::sample::select(prefixes()),
            tail in proptest::collection::vec(
                proptest::sample::select(&b"0123456789aF,\" -x\xff"[..]), 0..40),
        ) {
            let mut line = prefix.to_vec();
            line.extend_from_slice(&tail);
            let parsed = Urc::parse(&line);
            if parsed.is_some() {
                proptest::prop_assert!(is_urc(&line));
            }
        }
    }
}
