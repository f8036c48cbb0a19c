//! General commands: attention, echo, error format, identification, SIM, signal quality,
//! network registration, flow control, baud rate, functionality, URC routing and filtering,
//! power down (quectel-at.md §1, §2, §3).
//!
//! Every command here answers within the default deadline
//! ([`DEFAULT_TIMEOUT`](crate::at::command::DEFAULT_TIMEOUT), quectel-at.md §9) unless its
//! documentation names another one.
//!
//! Query responses whose prefix the modem also uses for URCs (`+CPIN:`, `+CFUN:`, `+CREG:`
//! ...) may arrive with such a URC among the claimed lines; the parsers below pick the line
//! that is the answer instead of failing (see each response's documentation).

use core::time::Duration;

use super::ChipFamily;
use super::error::EmmCause;
use crate::at::params::{Params, after_prefix};
use crate::at::{AtCommand, EncodeError, Encoder, Lines, ParseError, ResponseLines};

pub use super::urc::{RegKind, RegStatus, SimState};

impl RegKind {
    /// The command name without `AT` or colon: `b"+CREG"` etc.
    pub fn command(self) -> &'static [u8] {
        match self {
            RegKind::Creg => b"+CREG",
            RegKind::Cgreg => b"+CGREG",
            RegKind::Cereg => b"+CEREG",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Shared parsing helpers (no field splitting: fields are read with `Params`).

/// A whole line as text with surrounding spaces removed.
fn trimmed(line: &[u8]) -> Result<&str, ParseError> {
    core::str::from_utf8(line)
        .map(str::trim)
        .map_err(|_| ParseError::NotText)
}

/// The parameters of the last line carrying `prefix`. A URC with the same prefix may have
/// been claimed before the answer; the answer is the modem's most recent statement.
fn last_prefixed<'a>(lines: Lines<'a>, prefix: &[u8]) -> Result<Params<'a>, ParseError> {
    let mut found = None;
    for line in lines {
        found = Some(Params::after(line, prefix).ok_or(ParseError::UnexpectedLine)?);
    }
    found.ok_or(ParseError::MissingLine)
}

/// The first non-empty unprefixed line, with an optional `strip` prefix (such as
/// `b"Revision:"`) removed. Later lines are ignored.
fn first_text_line<'a>(lines: Lines<'a>, strip: &[u8]) -> Result<&'a str, ParseError> {
    for line in lines {
        let t = trimmed(after_prefix(line, strip).unwrap_or(line))?;
        if !t.is_empty() {
            return Ok(t);
        }
    }
    Err(ParseError::MissingLine)
}

/// An optional hexadecimal field (`"1A2B"`, `1A2B`, `0x1A2B`); empty or absent is `None`.
fn opt_hex(p: &mut Params<'_>) -> Result<Option<u32>, ParseError> {
    let mut peek = p.clone();
    match peek.opt_str()? {
        None => Ok(None),
        Some("") => {
            *p = peek;
            Ok(None)
        }
        Some(_) => p.hex_u32().map(Some),
    }
}

/// A `u8` field; values above 255 are out of range.
fn u8_of(v: u32) -> Result<u8, ParseError> {
    u8::try_from(v).map_err(|_| ParseError::OutOfRange)
}

// ---------------------------------------------------------------------------------------------
// AT, ATE, AT+CMEE

/// `AT`: checks that the modem answers (and, after a reboot or baud-rate change, that the
/// line is in sync). Answers `OK`; no response lines (quectel-at.md §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Attention;

impl AtCommand for Attention {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT")
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// `ATE0` / `ATE1`: switches command echo off (`false`) or on (`true`). Factory default is
/// on; the echo is the raw command line ending with CR only (quectel-at.md §1). Answers `OK`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SetEcho(pub bool);

impl AtCommand for SetEcho {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(if self.0 { b"ATE1" } else { b"ATE0" })
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// How the modem reports errors, `AT+CMEE=<n>` (quectel-at.md §1). Factory default on EC2x
/// is [`ErrorFormat::Numeric`]. Module-specific codes (4xx file, 5xx TCP/IP, 7xx HTTP) come
/// in `+CME ERROR:` whatever the setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ErrorFormat {
    /// 0: plain `ERROR`.
    Disabled,
    /// 1: numeric `+CME ERROR: <code>`.
    Numeric,
    /// 2: verbose `+CME ERROR: <text>` (some errors still come back numeric, §1).
    Verbose,
    /// A value reported by `AT+CMEE?` that this crate does not know. Refused by
    /// [`SetErrorFormat`].
    Other(u8),
}

impl ErrorFormat {
    /// The format for a `<n>` code.
    pub fn from_code(code: u8) -> Self {
        match code {
            0 => ErrorFormat::Disabled,
            1 => ErrorFormat::Numeric,
            2 => ErrorFormat::Verbose,
            c => ErrorFormat::Other(c),
        }
    }

    /// The `<n>` code.
    pub fn code(self) -> u8 {
        match self {
            ErrorFormat::Disabled => 0,
            ErrorFormat::Numeric => 1,
            ErrorFormat::Verbose => 2,
            ErrorFormat::Other(c) => c,
        }
    }
}

/// `AT+CMEE=<n>`: selects the error format (quectel-at.md §1). Answers `OK`.
/// [`ErrorFormat::Other`] is refused with [`EncodeError::OutOfRange`] (0..=2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SetErrorFormat(pub ErrorFormat);

impl AtCommand for SetErrorFormat {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+CMEE=")?;
        enc.ranged(u32::from(self.0.code()), 0, 2)
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// `AT+CMEE?`: the current error format, from `+CMEE: <n>` (quectel-at.md §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GetErrorFormat;

impl AtCommand for GetErrorFormat {
    type Response<'a> = ErrorFormat;
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+CMEE?")
    }
    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+CMEE:")
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<ErrorFormat, ParseError> {
        let mut p = lines.expect_prefixed(b"+CMEE:")?;
        let v = ErrorFormat::from_code(p.u8()?);
        p.end()?;
        lines.end()?;
        Ok(v)
    }
}

// ---------------------------------------------------------------------------------------------
// Identification: ATI, AT+GMR, AT+QGMR, AT+GSN, AT+QCCID

/// `ATI`: manufacturer, model and firmware revision (quectel-at.md §2.2).
///
/// The modem answers three unprefixed lines, `Quectel` / `EC200U` /
/// `Revision: EC200UCNAAR01A04M08`, then `OK`. See [`Identity`] for how extra lines are
/// handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Identify;

/// The answer to [`Identify`].
///
/// Parsing looks for the first line starting with `Revision:` and takes the two non-empty
/// lines just before it as manufacturer and model; blank lines, lines before those two and
/// lines after the revision are ignored. Without a `Revision:` line, or with fewer than two
/// lines before it, parsing fails with [`ParseError::MissingLine`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Identity<'a> {
    /// Manufacturer line, `Quectel`.
    pub manufacturer: &'a str,
    /// Model line, such as `EC200U` or `EG18`.
    pub model: &'a str,
    /// Revision without the `Revision:` label, such as `EC200UCNAAR01A04M08`.
    pub revision: &'a str,
}

impl Identity<'_> {
    /// The chipset family, from the model line or else from the revision string; `None` for
    /// models this crate does not know.
    pub fn family(&self) -> Option<ChipFamily> {
        ChipFamily::from_model(self.model).or_else(|| ChipFamily::from_model(self.revision))
    }
}

impl AtCommand for Identify {
    type Response<'a> = Identity<'a>;
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"ATI")
    }
    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Unprefixed
    }
    fn parse<'a>(&self, lines: Lines<'a>) -> Result<Identity<'a>, ParseError> {
        let mut before: [Option<&'a str>; 2] = [None, None];
        for line in lines {
            if let Some(rev) = after_prefix(line, b"Revision:") {
                let revision = trimmed(rev)?;
                if revision.is_empty() {
                    return Err(ParseError::MissingField);
                }
                return match before {
                    [Some(manufacturer), Some(model)] => Ok(Identity {
                        manufacturer,
                        model,
                        revision,
                    }),
                    _ => Err(ParseError::MissingLine),
                };
            }
            let t = trimmed(line)?;
            if !t.is_empty() {
                before = [before[1], Some(t)];
            }
        }
        Err(ParseError::MissingLine)
    }
}

/// `AT+GMR`: the firmware revision as one bare line, such as `EG800QEULCR01A03M`
/// (quectel-at.md §2.2).
///
/// The response is the first non-empty line, with a `Revision:` label removed if a firmware
/// adds one; further lines are ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GetRevision;

impl AtCommand for GetRevision {
    type Response<'a> = &'a str;
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+GMR")
    }
    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Unprefixed
    }
    fn parse<'a>(&self, lines: Lines<'a>) -> Result<&'a str, ParseError> {
        first_text_line(lines, b"Revision:")
    }
}

/// `AT+QGMR`: the revision with its sub-version, such as `EG18EAPAR01A12M4G_01.001.01.001`
/// (quectel-at.md §2.2). DFOTA delta packages are built for an exact source revision, so
/// this is the string to compare before and after an update (§10).
///
/// Parsed like [`GetRevision`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GetFullRevision;

impl AtCommand for GetFullRevision {
    type Response<'a> = &'a str;
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+QGMR")
    }
    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Unprefixed
    }
    fn parse<'a>(&self, lines: Lines<'a>) -> Result<&'a str, ParseError> {
        first_text_line(lines, b"Revision:")
    }
}

/// `AT+GSN`: the IMEI as one bare line of digits (quectel-at.md §2.2).
///
/// The response is the first line made only of digits (a `+GSN:` label, which newer
/// firmware prints for `AT+GSN=1`, is removed); other lines are skipped. Fails with
/// [`ParseError::UnexpectedValue`] if there were lines but none of digits, and with
/// [`ParseError::MissingLine`] if there were none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Imei;

impl AtCommand for Imei {
    type Response<'a> = &'a str;
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+GSN")
    }
    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Unprefixed
    }
    fn parse<'a>(&self, lines: Lines<'a>) -> Result<&'a str, ParseError> {
        let mut other = false;
        for line in lines {
            let Ok(t) = trimmed(after_prefix(line, b"+GSN:").unwrap_or(line)) else {
                other = true;
                continue;
            };
            if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
                return Ok(t);
            }
            other |= !t.is_empty();
        }
        Err(if other {
            ParseError::UnexpectedValue
        } else {
            ParseError::MissingLine
        })
    }
}

/// `AT+QCCID`: the SIM's ICCID, from `+QCCID: <ICCID>` (quectel-at.md §2.2). The value is
/// returned as sent (ICCIDs may end in a hex digit such as `F`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Iccid;

impl AtCommand for Iccid {
    type Response<'a> = &'a str;
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+QCCID")
    }
    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+QCCID:")
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<&'a str, ParseError> {
        let mut p = lines.expect_prefixed(b"+QCCID:")?;
        let v = p.str()?;
        p.end()?;
        lines.end()?;
        if v.is_empty() {
            return Err(ParseError::MissingField);
        }
        Ok(v)
    }
}

// ---------------------------------------------------------------------------------------------
// SIM: AT+CPIN

/// `AT+CPIN?`: whether the SIM is ready or waits for a code, from `+CPIN: <code>`
/// (quectel-at.md §2.1, §2.2). A missing SIM answers `+CME ERROR: 10` instead.
///
/// `+CPIN:` is also a boot URC; if one arrived during the query, the last line wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SimStatus;

impl AtCommand for SimStatus {
    type Response<'a> = SimState<'a>;
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+CPIN?")
    }
    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+CPIN:")
    }
    fn parse<'a>(&self, lines: Lines<'a>) -> Result<SimState<'a>, ParseError> {
        let mut p = last_prefixed(lines, b"+CPIN:")?;
        let s = p.str()?;
        p.end()?;
        if s.is_empty() {
            return Err(ParseError::MissingField);
        }
        Ok(SimState::from_text(s))
    }
}

/// `AT+CPIN="<pin>"`: enters the SIM PIN (quectel-at.md §2.2). Answers `OK`; the new state
/// follows as a `+CPIN:` URC.
///
/// The PIN must be 4 to 8 ASCII digits (3GPP TS 31.101): longer is
/// [`EncodeError::TooLong`], empty is [`EncodeError::Empty`], a non-digit is
/// [`EncodeError::ForbiddenByte`], and 1 to 3 digits is [`EncodeError::Invalid`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EnterPin<'p> {
    /// The PIN.
    pub pin: &'p str,
}

impl AtCommand for EnterPin<'_> {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        let b = self.pin.as_bytes();
        if b.is_empty() {
            return Err(EncodeError::Empty);
        }
        if b.len() > 8 {
            return Err(EncodeError::TooLong {
                len: b.len(),
                max: 8,
            });
        }
        if let Some(position) = b.iter().position(|c| !c.is_ascii_digit()) {
            return Err(EncodeError::ForbiddenByte {
                byte: b[position],
                position,
            });
        }
        if b.len() < 4 {
            return Err(EncodeError::Invalid("a PIN has 4 to 8 digits"));
        }
        enc.raw(b"AT+CPIN=")?;
        enc.quoted(self.pin, 8)
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

// ---------------------------------------------------------------------------------------------
// AT+CSQ

/// `AT+CSQ`: signal quality, from `+CSQ: <rssi>,<ber>` (quectel-at.md §2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SignalQuality;

/// The answer to [`SignalQuality`]: raw 3GPP values, kept as sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Csq {
    /// 0..=31 (see [`Csq::dbm`]), 99 = unknown.
    pub rssi: u8,
    /// Bit error rate class 0..=7, 99 = unknown.
    pub ber: u8,
}

impl Csq {
    /// Received signal strength in dBm, `-113 + 2 * rssi` (0 means -113 or less, 31 means
    /// -51 or more). `None` for 99 (unknown) and every other value above 31, whose meaning
    /// the reference does not give.
    pub fn dbm(self) -> Option<i16> {
        (self.rssi <= 31).then(|| -113 + 2 * i16::from(self.rssi))
    }

    /// The bit error rate class, `None` for 99 (unknown) or any value above 7.
    pub fn ber_class(self) -> Option<u8> {
        (self.ber <= 7).then_some(self.ber)
    }
}

impl AtCommand for SignalQuality {
    type Response<'a> = Csq;
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+CSQ")
    }
    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+CSQ:")
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<Csq, ParseError> {
        let mut p = lines.expect_prefixed(b"+CSQ:")?;
        let v = Csq {
            rssi: p.u8()?,
            ber: p.u8()?,
        };
        p.end()?;
        lines.end()?;
        Ok(v)
    }
}

// ---------------------------------------------------------------------------------------------
// Registration: AT+CREG / AT+CGREG / AT+CEREG

/// The `<n>` of `AT+CREG=<n>` (and CGREG, CEREG): which registration URCs the modem sends
/// (quectel-at.md §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum RegUrcMode {
    /// 0: no registration URC.
    Disabled,
    /// 1: `+CREG: <stat>` on every status change.
    Enabled,
    /// 2: `+CREG: <stat>[,<lac>,<ci>[,<AcT>]]`, also on cell changes.
    WithLocation,
    /// 3 (3GPP TS 27.007, `+CREG` and `+CEREG`): as 2, plus `<cause_type>,<reject_cause>`
    /// when registration is denied; a query then reports [`Registration::reject_cause`].
    /// A module that does not support it answers `ERROR`.
    WithCause,
    /// A value reported by a query that this crate does not know (3GPP defines more for
    /// `+CEREG`, such as the PSM modes 4 and 5). Refused by [`SetRegistrationUrc`].
    Other(u8),
}

impl RegUrcMode {
    /// The mode for an `<n>` code.
    pub fn from_code(code: u8) -> Self {
        match code {
            0 => RegUrcMode::Disabled,
            1 => RegUrcMode::Enabled,
            2 => RegUrcMode::WithLocation,
            3 => RegUrcMode::WithCause,
            c => RegUrcMode::Other(c),
        }
    }

    /// The `<n>` code.
    pub fn code(self) -> u8 {
        match self {
            RegUrcMode::Disabled => 0,
            RegUrcMode::Enabled => 1,
            RegUrcMode::WithLocation => 2,
            RegUrcMode::WithCause => 3,
            RegUrcMode::Other(c) => c,
        }
    }
}

/// The `<AcT>` of a registration report (3GPP TS 27.007; quectel-at.md §3 names 7 =
/// E-UTRAN). Open: other codes are kept in [`AccessTech::Other`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum AccessTech {
    /// 0: GSM.
    Gsm,
    /// 2: UTRAN.
    Utran,
    /// 3: GSM with EGPRS.
    GsmEgprs,
    /// 4: UTRAN with HSDPA.
    UtranHsdpa,
    /// 5: UTRAN with HSUPA.
    UtranHsupa,
    /// 6: UTRAN with HSDPA and HSUPA.
    UtranHsdpaHsupa,
    /// 7: E-UTRAN (LTE).
    EUtran,
    /// Any other code.
    Other(u8),
}

impl AccessTech {
    /// The technology for an `<AcT>` code.
    pub fn from_code(code: u8) -> Self {
        match code {
            0 => AccessTech::Gsm,
            2 => AccessTech::Utran,
            3 => AccessTech::GsmEgprs,
            4 => AccessTech::UtranHsdpa,
            5 => AccessTech::UtranHsupa,
            6 => AccessTech::UtranHsdpaHsupa,
            7 => AccessTech::EUtran,
            c => AccessTech::Other(c),
        }
    }

    /// The `<AcT>` code.
    pub fn code(self) -> u8 {
        match self {
            AccessTech::Gsm => 0,
            AccessTech::Utran => 2,
            AccessTech::GsmEgprs => 3,
            AccessTech::UtranHsdpa => 4,
            AccessTech::UtranHsupa => 5,
            AccessTech::UtranHsdpaHsupa => 6,
            AccessTech::EUtran => 7,
            AccessTech::Other(c) => c,
        }
    }
}

/// `AT+CREG?` / `AT+CGREG?` / `AT+CEREG?`: registration state, from
/// `+CREG: <n>,<stat>[,<lac>,<ci>[,<AcT>]]` (`+CEREG:` carries `<tac>` in place of `<lac>`)
/// (quectel-at.md §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GetRegistration {
    /// Which report to query.
    pub kind: RegKind,
}

/// The answer to [`GetRegistration`].
///
/// If registration URCs are enabled, a URC (`+CREG: <stat>` or `+CREG: <stat>,"<lac>",...`,
/// without `<n>`) may be among the claimed lines; parsing skips lines whose second field is
/// missing or quoted and reads the first line of the query form. In mode 3
/// ([`RegUrcMode::WithCause`]) `+CREG` and `+CEREG` add `<cause_type>,<reject_cause>` after
/// `<AcT>` (empty fields before them are accepted: `+CEREG: 3,3,,,,0,15`); other fields
/// after `<AcT>` (`+CGREG` `<rac>`, PSM timers) are ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Registration {
    /// Which report this is.
    pub kind: RegKind,
    /// The URC mode `<n>`.
    pub mode: RegUrcMode,
    /// The registration state `<stat>`.
    pub status: RegStatus,
    /// `<lac>` (CREG, CGREG) or `<tac>` (CEREG), sent only in mode 2.
    pub area_code: Option<u32>,
    /// `<ci>`, the cell id, sent only in mode 2.
    pub cell_id: Option<u32>,
    /// `<AcT>`, if sent.
    pub access_tech: Option<AccessTech>,
    /// Why registration was denied, if the modem said (`+CREG` and `+CEREG` in mode 3).
    pub reject_cause: Option<RejectCause>,
}

/// A registration reject cause (`<cause_type>,<reject_cause>` of 3GPP TS 27.007 mode 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RejectCause {
    /// `<cause_type>`: 0 = a 3GPP cause (for `+CEREG` an EMM cause of TS 24.301 Annex A,
    /// for `+CREG` an MM cause of TS 24.008 Annex G), 1 = manufacturer-specific.
    pub cause_type: u8,
    /// `<reject_cause>`.
    pub code: u16,
}

impl RejectCause {
    /// The EMM cause, for a 3GPP cause reported by `+CEREG` (`None` for a
    /// manufacturer-specific one).
    pub fn emm(self) -> Option<EmmCause> {
        (self.cause_type == 0).then(|| EmmCause::from_code(self.code))
    }

    /// One line of plain English: the EMM cause's meaning (3GPP codes shared by the MM
    /// causes of `+CREG` mean the same), or that the cause is the manufacturer's.
    pub fn meaning(self) -> &'static str {
        match self.emm() {
            Some(c) => c.meaning(),
            None => "manufacturer-specific reject cause",
        }
    }
}

impl Registration {
    /// True when registered, on the home network or roaming.
    pub fn is_registered(&self) -> bool {
        self.status.is_registered()
    }
}

/// Parses a query-form registration line; `Ok(None)` if it has the URC form instead.
fn registration_line(kind: RegKind, line: &[u8]) -> Result<Option<Registration>, ParseError> {
    let mut p = Params::after(line, kind.prefix()).ok_or(ParseError::UnexpectedLine)?;
    let mut peek = p.clone();
    peek.field()?;
    match peek.next_field()? {
        None | Some(crate::at::params::Field::Quoted(_)) => return Ok(None),
        Some(_) => {}
    }
    let mode = RegUrcMode::from_code(p.u8()?);
    let status = RegStatus::from_code(p.u8()?);
    let area_code = opt_hex(&mut p)?;
    let cell_id = opt_hex(&mut p)?;
    let access_tech = p
        .opt_u32()?
        .map(u8_of)
        .transpose()?
        .map(AccessTech::from_code);
    let reject_cause = match kind {
        // `+CGREG` has `<rac>` here; its mode-3 cause fields are not read.
        RegKind::Cgreg => None,
        // Lenient: a cause that does not parse is left out rather than failing the report.
        RegKind::Creg | RegKind::Cereg => match (p.opt_u32(), p.opt_u32()) {
            (Ok(Some(t)), Ok(Some(code))) => match (u8::try_from(t), u16::try_from(code)) {
                (Ok(cause_type), Ok(code)) => Some(RejectCause { cause_type, code }),
                _ => None,
            },
            _ => None,
        },
    };
    Ok(Some(Registration {
        kind,
        mode,
        status,
        area_code,
        cell_id,
        access_tech,
        reject_cause,
    }))
}

impl AtCommand for GetRegistration {
    type Response<'a> = Registration;
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT")?;
        enc.raw(self.kind.command())?;
        enc.raw(b"?")
    }
    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(self.kind.prefix())
    }
    fn parse<'a>(&self, lines: Lines<'a>) -> Result<Registration, ParseError> {
        for line in lines {
            if let Some(r) = registration_line(self.kind, line)? {
                return Ok(r);
            }
        }
        Err(ParseError::MissingLine)
    }
}

/// `AT+CREG=<n>` / `AT+CGREG=<n>` / `AT+CEREG=<n>`: enables or disables the registration
/// URCs (quectel-at.md §3). Answers `OK`. [`RegUrcMode::Other`] is refused with
/// [`EncodeError::OutOfRange`] (0..=3). Mode 3 ([`RegUrcMode::WithCause`]) exists for
/// `+CREG` and `+CEREG` only (3GPP TS 27.007); `+CGREG` modes stop at 2 here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SetRegistrationUrc {
    /// Which report.
    pub kind: RegKind,
    /// The URC mode.
    pub mode: RegUrcMode,
}

impl AtCommand for SetRegistrationUrc {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT")?;
        enc.raw(self.kind.command())?;
        enc.raw(b"=")?;
        let max = if self.kind == RegKind::Cgreg { 2 } else { 3 };
        enc.ranged(u32::from(self.mode.code()), 0, max)
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

// ---------------------------------------------------------------------------------------------
// AT+IFC

/// One direction of `AT+IFC` flow control (quectel-at.md §1). Open for the query: codes the
/// reference does not give (V.250 also defines XON/XOFF) are kept in
/// [`FlowControl::Other`] and refused by [`SetFlowControl`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum FlowControl {
    /// 0: no flow control.
    None,
    /// 2: hardware flow control (RTS for DCE-by-DTE, CTS for DTE-by-DCE).
    RtsCts,
    /// Any other code.
    Other(u8),
}

impl FlowControl {
    /// The setting for a code.
    pub fn from_code(code: u8) -> Self {
        match code {
            0 => FlowControl::None,
            2 => FlowControl::RtsCts,
            c => FlowControl::Other(c),
        }
    }

    /// The code.
    pub fn code(self) -> u8 {
        match self {
            FlowControl::None => 0,
            FlowControl::RtsCts => 2,
            FlowControl::Other(c) => c,
        }
    }

    fn encode(self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        match self {
            FlowControl::Other(_) => Err(EncodeError::Invalid(
                "flow control must be None (0) or RtsCts (2)",
            )),
            v => enc.u32(u32::from(v.code())),
        }
    }
}

/// `AT+IFC=<dce_by_dte>,<dte_by_dce>`: UART flow control (quectel-at.md §1). `AT+IFC=2,2`
/// enables hardware flow control, which DFOTA streaming from the host requires; the EC2x
/// manual says it applies in data mode only. Storable with [`SaveSettings`]. Answers `OK`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SetFlowControl {
    /// How the modem is flow-controlled by the host (RTS).
    pub dce_by_dte: FlowControl,
    /// How the host is flow-controlled by the modem (CTS).
    pub dte_by_dce: FlowControl,
}

impl SetFlowControl {
    /// `AT+IFC=2,2`: RTS/CTS both ways.
    pub const HARDWARE: SetFlowControl = SetFlowControl {
        dce_by_dte: FlowControl::RtsCts,
        dte_by_dce: FlowControl::RtsCts,
    };
    /// `AT+IFC=0,0`: no flow control.
    pub const NONE: SetFlowControl = SetFlowControl {
        dce_by_dte: FlowControl::None,
        dte_by_dce: FlowControl::None,
    };
}

impl AtCommand for SetFlowControl {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+IFC=")?;
        self.dce_by_dte.encode(enc)?;
        enc.comma()?;
        self.dte_by_dce.encode(enc)
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// `AT+IFC?`: the current flow control, from `+IFC: <dce_by_dte>,<dte_by_dce>`, returned as
/// a [`SetFlowControl`] value (quectel-at.md §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GetFlowControl;

impl AtCommand for GetFlowControl {
    type Response<'a> = SetFlowControl;
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+IFC?")
    }
    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+IFC:")
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<SetFlowControl, ParseError> {
        let mut p = lines.expect_prefixed(b"+IFC:")?;
        let v = SetFlowControl {
            dce_by_dte: FlowControl::from_code(p.u8()?),
            dte_by_dce: FlowControl::from_code(p.u8()?),
        };
        p.end()?;
        lines.end()?;
        Ok(v)
    }
}

// ---------------------------------------------------------------------------------------------
// AT+IPR, AT&W

/// The fixed rates `AT+IPR` accepts (quectel-at.md §1): the EC2x list 4800 … 921600 and
/// 2.9 / 3.0 / 3.2 / 3.6864 / 4.0 Mbit/s, plus 1200 and 10400, which only newer EC200U
/// firmware lists (unconfirmed, marked U in §1); other modules answer `ERROR` to those two.
pub const BAUD_RATES: [u32; 16] = [
    1200, 4800, 9600, 10400, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 2_900_000,
    3_000_000, 3_200_000, 3_686_400, 4_000_000,
];

/// `AT+IPR=<rate>`: UART baud rate (quectel-at.md §1). Default 115200.
///
/// The new rate takes effect after the `OK` (which still comes at the old rate): switch the
/// host UART once the command has succeeded. Not restored by `AT&F`/`ATZ`, kept over a
/// reboot only after [`SaveSettings`]; refused while CMUX is active. A rate outside
/// [`BAUD_RATES`] is refused with [`EncodeError::Invalid`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SetBaudRate(pub u32);

impl AtCommand for SetBaudRate {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        if !BAUD_RATES.contains(&self.0) {
            return Err(EncodeError::Invalid("baud rate is not one AT+IPR accepts"));
        }
        enc.raw(b"AT+IPR=")?;
        enc.u32(self.0)
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// `AT+IPR?`: the current baud rate, from `+IPR: <rate>` (quectel-at.md §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GetBaudRate;

impl AtCommand for GetBaudRate {
    type Response<'a> = u32;
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+IPR?")
    }
    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+IPR:")
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<u32, ParseError> {
        let mut p = lines.expect_prefixed(b"+IPR:")?;
        let v = p.u32()?;
        p.end()?;
        lines.end()?;
        Ok(v)
    }
}

/// `AT&W`: stores the current settings (flow control, baud rate, echo ...) in the modem's
/// profile so they survive a reboot (quectel-at.md §1). Answers `OK`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SaveSettings;

impl AtCommand for SaveSettings {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT&W")
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

// ---------------------------------------------------------------------------------------------
// AT+CFUN

/// Deadline for `AT+CFUN` (quectel-at.md §2.1, §9).
pub const CFUN_TIMEOUT: Duration = Duration::from_secs(15);

/// The `<fun>` of `AT+CFUN` (3GPP TS 27.007). Open for the query; [`SetFunctionality`]
/// refuses [`Functionality::Other`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Functionality {
    /// 0: minimum functionality (RF and SIM off).
    Minimum,
    /// 1: full functionality.
    Full,
    /// 4: RF transmit and receive off ("airplane mode").
    RfOff,
    /// Any other code.
    Other(u8),
}

impl Functionality {
    /// The level for a `<fun>` code.
    pub fn from_code(code: u8) -> Self {
        match code {
            0 => Functionality::Minimum,
            1 => Functionality::Full,
            4 => Functionality::RfOff,
            c => Functionality::Other(c),
        }
    }

    /// The `<fun>` code.
    pub fn code(self) -> u8 {
        match self {
            Functionality::Minimum => 0,
            Functionality::Full => 1,
            Functionality::RfOff => 4,
            Functionality::Other(c) => c,
        }
    }
}

/// `AT+CFUN=<fun>[,<rst>]`: sets the phone functionality; with `reset` the module reboots
/// (`AT+CFUN=1,1`), then sends the boot URCs (`RDY`, `+CFUN: 1`, `+CPIN: READY` ...)
/// (quectel-at.md §2.1). Answers `OK` within [`CFUN_TIMEOUT`] (15 s, §9).
/// [`Functionality::Other`] is refused with [`EncodeError::Invalid`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SetFunctionality {
    /// The level to set.
    pub fun: Functionality,
    /// Reset the module (`<rst>` = 1). `false` omits `<rst>`.
    pub reset: bool,
}

impl SetFunctionality {
    /// `AT+CFUN=1,1`: full functionality after a reset, the usual way to reboot the module.
    pub const RESET: SetFunctionality = SetFunctionality {
        fun: Functionality::Full,
        reset: true,
    };
}

impl AtCommand for SetFunctionality {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        if let Functionality::Other(_) = self.fun {
            return Err(EncodeError::Invalid(
                "functionality must be Minimum (0), Full (1) or RfOff (4)",
            ));
        }
        enc.raw(b"AT+CFUN=")?;
        enc.u32(u32::from(self.fun.code()))?;
        if self.reset {
            enc.raw(b",1")?;
        }
        Ok(())
    }
    fn timeout(&self) -> Duration {
        CFUN_TIMEOUT
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// `AT+CFUN?`: the current functionality, from `+CFUN: <fun>` (quectel-at.md §2.1).
/// Deadline [`CFUN_TIMEOUT`] (15 s, §9). `+CFUN:` is also a boot URC; if one arrived during
/// the query, the last line wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GetFunctionality;

impl AtCommand for GetFunctionality {
    type Response<'a> = Functionality;
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+CFUN?")
    }
    fn timeout(&self) -> Duration {
        CFUN_TIMEOUT
    }
    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+CFUN:")
    }
    fn parse<'a>(&self, lines: Lines<'a>) -> Result<Functionality, ParseError> {
        let mut p = last_prefixed(lines, b"+CFUN:")?;
        let v = Functionality::from_code(p.u8()?);
        p.end()?;
        Ok(v)
    }
}

// ---------------------------------------------------------------------------------------------
// AT+QURCCFG

/// Longest custom port name [`SetUrcPort`] accepts (a crate limit; the documented names are
/// at most 8 bytes).
pub const URC_PORT_MAX: usize = 16;

/// Where the modem sends URCs (quectel-at.md §1). Open: other names are kept as text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum UrcPort<'a> {
    /// `"uart1"`: the main UART.
    Uart1,
    /// `"usbat"`: the USB AT port.
    UsbAt,
    /// `"usbmodem"`: the USB modem port.
    UsbModem,
    /// Another port name, as sent or to send. When sent it must be 1 to [`URC_PORT_MAX`]
    /// printable ASCII bytes without `"`.
    Other(&'a str),
}

impl<'a> UrcPort<'a> {
    /// The port for a name (compared ASCII case-insensitively).
    pub fn from_name(name: &'a str) -> Self {
        if name.eq_ignore_ascii_case("uart1") {
            UrcPort::Uart1
        } else if name.eq_ignore_ascii_case("usbat") {
            UrcPort::UsbAt
        } else if name.eq_ignore_ascii_case("usbmodem") {
            UrcPort::UsbModem
        } else {
            UrcPort::Other(name)
        }
    }

    /// The port's name.
    pub fn name(self) -> &'a str {
        match self {
            UrcPort::Uart1 => "uart1",
            UrcPort::UsbAt => "usbat",
            UrcPort::UsbModem => "usbmodem",
            UrcPort::Other(s) => s,
        }
    }
}

/// `AT+QURCCFG="urcport","<port>"`: routes URCs to a port (quectel-at.md §1). The setting is
/// saved in the module; if URCs go to another port, this one never sees `+QHTTPGET:` or
/// `+QIND: "FOTA"`, so force it during initialisation. Answers `OK`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SetUrcPort<'p>(pub UrcPort<'p>);

impl AtCommand for SetUrcPort<'_> {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        let name = self.0.name();
        if name.is_empty() {
            return Err(EncodeError::Empty);
        }
        enc.raw(b"AT+QURCCFG=\"urcport\",")?;
        enc.quoted(name, URC_PORT_MAX)
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// `AT+QURCCFG="urcport"`: where URCs go now, from `+QURCCFG: "urcport","<port>"`
/// (quectel-at.md §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GetUrcPort;

impl AtCommand for GetUrcPort {
    type Response<'a> = UrcPort<'a>;
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+QURCCFG=\"urcport\"")
    }
    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+QURCCFG:")
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<UrcPort<'a>, ParseError> {
        let mut p = lines.expect_prefixed(b"+QURCCFG:")?;
        if !p.str()?.eq_ignore_ascii_case("urcport") {
            return Err(ParseError::UnexpectedValue);
        }
        let port = p.str()?;
        p.end()?;
        lines.end()?;
        if port.is_empty() {
            return Err(ParseError::MissingField);
        }
        Ok(UrcPort::from_name(port))
    }
}

// ---------------------------------------------------------------------------------------------
// AT+QINDCFG

/// The URC groups `AT+QINDCFG` switches (quectel-at.md §1, §8.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum IndicationType {
    /// `"all"`: every group below.
    All,
    /// `"csq"`: `+QIND: "csq",<rssi>,<ber>` on signal changes (chatty; disable before long
    /// data-mode transfers, §1.1).
    Csq,
    /// `"smsfull"`: `+QIND: "smsfull",<storage>`.
    SmsFull,
    /// `"ring"`: `RING` for incoming calls.
    Ring,
    /// `"smsincoming"`: incoming SMS indications.
    SmsIncoming,
    /// `"act"`: `+QIND: "act","<rat>"` on access-technology changes.
    Act,
    /// `"datastatus"`: `+QIND: "datastatus",…`.
    DataStatus,
    /// `"sqi"`: signal quality indications.
    Sqi,
    /// `"psm"`: power-saving-mode indications.
    Psm,
}

impl IndicationType {
    /// The name sent in quotes.
    pub fn name(self) -> &'static str {
        match self {
            IndicationType::All => "all",
            IndicationType::Csq => "csq",
            IndicationType::SmsFull => "smsfull",
            IndicationType::Ring => "ring",
            IndicationType::SmsIncoming => "smsincoming",
            IndicationType::Act => "act",
            IndicationType::DataStatus => "datastatus",
            IndicationType::Sqi => "sqi",
            IndicationType::Psm => "psm",
        }
    }

    fn encode(self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+QINDCFG=\"")?;
        enc.raw(self.name().as_bytes())?;
        enc.raw(b"\"")
    }
}

/// `AT+QINDCFG="<type>",<enable>[,<save>]`: switches a group of URCs on or off
/// (quectel-at.md §1). `save: None` omits `<save>` (the module's default applies). Answers
/// `OK`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SetIndication {
    /// The URC group.
    pub kind: IndicationType,
    /// Whether the group is reported.
    pub enable: bool,
    /// `<save>`: whether the setting survives a reboot; `None` omits the parameter.
    pub save: Option<bool>,
}

impl AtCommand for SetIndication {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        self.kind.encode(enc)?;
        enc.raw(if self.enable { b",1" } else { b",0" })?;
        match self.save {
            None => Ok(()),
            Some(true) => enc.raw(b",1"),
            Some(false) => enc.raw(b",0"),
        }
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// `AT+QINDCFG="<type>"`: whether a URC group is enabled, from
/// `+QINDCFG: "<type>",<enable>` (quectel-at.md §1). Any non-zero `<enable>` counts as
/// enabled; fields after it are ignored. A line naming another type is
/// [`ParseError::UnexpectedValue`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GetIndication {
    /// The URC group.
    pub kind: IndicationType,
}

impl AtCommand for GetIndication {
    type Response<'a> = bool;
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        self.kind.encode(enc)
    }
    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+QINDCFG:")
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<bool, ParseError> {
        let mut p = lines.expect_prefixed(b"+QINDCFG:")?;
        if !p.str()?.eq_ignore_ascii_case(self.kind.name()) {
            return Err(ParseError::UnexpectedValue);
        }
        let v = p.u32()? != 0;
        lines.end()?;
        Ok(v)
    }
}

// ---------------------------------------------------------------------------------------------
// AT+QPOWD

/// How long to wait for `POWERED DOWN` after [`PowerDown`] before cutting power anyway
/// (quectel-at.md §2.1, §9).
pub const POWER_DOWN_TIMEOUT: Duration = Duration::from_secs(65);

/// `AT+QPOWD=1`: normal power-down (quectel-at.md §2.1). Answers `OK`; the URC
/// `POWERED DOWN` follows when the module has shut down, after which power may be cut about
/// 1 s later. If `POWERED DOWN` has not come within [`POWER_DOWN_TIMEOUT`] (65 s, §9), cut
/// power anyway. The command's own deadline is the same 65 s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PowerDown;

impl AtCommand for PowerDown {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+QPOWD=1")
    }
    fn timeout(&self) -> Duration {
        POWER_DOWN_TIMEOUT
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::at::command::DEFAULT_TIMEOUT;
    use proptest::prelude::*;
    use std::string::String;

    use crate::quectel::test_support::{encoded, encodes, is_one_line as well_formed, refuses};

    fn parse<C: AtCommand>(cmd: C, stored: &[u8]) -> Result<C::Response<'_>, ParseError> {
        cmd.parse(Lines::new(stored))
    }

    #[test]
    fn encodings() {
        encodes! {
            Attention => b"AT";
            SetEcho(false) => b"ATE0";
            SetEcho(true) => b"ATE1";
            SetErrorFormat(ErrorFormat::Disabled) => b"AT+CMEE=0";
            SetErrorFormat(ErrorFormat::Numeric) => b"AT+CMEE=1";
            SetErrorFormat(ErrorFormat::Verbose) => b"AT+CMEE=2";
            GetErrorFormat => b"AT+CMEE?";
            Identify => b"ATI";
            GetRevision => b"AT+GMR";
            GetFullRevision => b"AT+QGMR";
            Imei => b"AT+GSN";
            Iccid => b"AT+QCCID";
            SimStatus => b"AT+CPIN?";
            EnterPin { pin: "1234" } => b"AT+CPIN=\"1234\"";
            EnterPin { pin: "12345678" } => b"AT+CPIN=\"12345678\"";
            SignalQuality => b"AT+CSQ";
            GetRegistration { kind: RegKind::Creg } => b"AT+CREG?";
            GetRegistration { kind: RegKind::Cgreg } => b"AT+CGREG?";
            GetRegistration { kind: RegKind::Cereg } => b"AT+CEREG?";
            SetRegistrationUrc { kind: RegKind::Creg, mode: RegUrcMode::Disabled } => b"AT+CREG=0";
            SetRegistrationUrc { kind: RegKind::Cgreg, mode: RegUrcMode::Enabled } => b"AT+CGREG=1";
            SetRegistrationUrc { kind: RegKind::Cereg, mode: RegUrcMode::WithLocation } => b"AT+CEREG=2";
            SetRegistrationUrc { kind: RegKind::Cereg, mode: RegUrcMode::WithCause } => b"AT+CEREG=3";
            SetRegistrationUrc { kind: RegKind::Creg, mode: RegUrcMode::WithCause } => b"AT+CREG=3";
            SetFlowControl::HARDWARE => b"AT+IFC=2,2";
            SetFlowControl::NONE => b"AT+IFC=0,0";
            SetFlowControl { dce_by_dte: FlowControl::None, dte_by_dce: FlowControl::RtsCts } => b"AT+IFC=0,2";
            GetFlowControl => b"AT+IFC?";
            SetBaudRate(115200) => b"AT+IPR=115200";
            SetBaudRate(921600) => b"AT+IPR=921600";
            SetBaudRate(3_686_400) => b"AT+IPR=3686400";
            SetBaudRate(1200) => b"AT+IPR=1200";
            SetBaudRate(10400) => b"AT+IPR=10400";
            GetBaudRate => b"AT+IPR?";
            SaveSettings => b"AT&W";
            SetFunctionality::RESET => b"AT+CFUN=1,1";
            SetFunctionality { fun: Functionality::Minimum, reset: false } => b"AT+CFUN=0";
            SetFunctionality { fun: Functionality::Full, reset: false } => b"AT+CFUN=1";
            SetFunctionality { fun: Functionality::RfOff, reset: false } => b"AT+CFUN=4";
            GetFunctionality => b"AT+CFUN?";
            SetUrcPort(UrcPort::Uart1) => b"AT+QURCCFG=\"urcport\",\"uart1\"";
            SetUrcPort(UrcPort::UsbAt) => b"AT+QURCCFG=\"urcport\",\"usbat\"";
            SetUrcPort(UrcPort::UsbModem) => b"AT+QURCCFG=\"urcport\",\"usbmodem\"";
            SetUrcPort(UrcPort::Other("uart2")) => b"AT+QURCCFG=\"urcport\",\"uart2\"";
            GetUrcPort => b"AT+QURCCFG=\"urcport\"";
            SetIndication { kind: IndicationType::Csq, enable: false, save: None } => b"AT+QINDCFG=\"csq\",0";
            SetIndication { kind: IndicationType::All, enable: true, save: Some(true) } => b"AT+QINDCFG=\"all\",1,1";
            SetIndication { kind: IndicationType::SmsFull, enable: true, save: Some(false) } => b"AT+QINDCFG=\"smsfull\",1,0";
            SetIndication { kind: IndicationType::Ring, enable: false, save: None } => b"AT+QINDCFG=\"ring\",0";
            SetIndication { kind: IndicationType::SmsIncoming, enable: false, save: None } => b"AT+QINDCFG=\"smsincoming\",0";
            SetIndication { kind: IndicationType::Act, enable: false, save: None } => b"AT+QINDCFG=\"act\",0";
            SetIndication { kind: IndicationType::DataStatus, enable: false, save: None } => b"AT+QINDCFG=\"datastatus\",0";
            SetIndication { kind: IndicationType::Sqi, enable: false, save: None } => b"AT+QINDCFG=\"sqi\",0";
            SetIndication { kind: IndicationType::Psm, enable: true, save: None } => b"AT+QINDCFG=\"psm\",1";
            GetIndication { kind: IndicationType::Csq } => b"AT+QINDCFG=\"csq\"";
            GetIndication { kind: IndicationType::DataStatus } => b"AT+QINDCFG=\"datastatus\"";
            PowerDown => b"AT+QPOWD=1";
        }
    }

    #[test]
    fn refusals() {
        refuses! {
            SetErrorFormat(ErrorFormat::Other(3)) => EncodeError::OutOfRange { value: 3, min: 0, max: 2 };
            EnterPin { pin: "" } => EncodeError::Empty;
            EnterPin { pin: "123" } => EncodeError::Invalid("a PIN has 4 to 8 digits");
            EnterPin { pin: "123456789" } => EncodeError::TooLong { len: 9, max: 8 };
            EnterPin { pin: "12a4" } => EncodeError::ForbiddenByte { byte: b'a', position: 2 };
            EnterPin { pin: "12\"4" } => EncodeError::ForbiddenByte { byte: b'"', position: 2 };
            EnterPin { pin: "12\r4" } => EncodeError::ForbiddenByte { byte: b'\r', position: 2 };
            EnterPin { pin: "12\n4" } => EncodeError::ForbiddenByte { byte: b'\n', position: 2 };
            EnterPin { pin: "12\x004" } => EncodeError::ForbiddenByte { byte: 0, position: 2 };
            EnterPin { pin: "1234\"" } => EncodeError::ForbiddenByte { byte: b'"', position: 4 };
            SetRegistrationUrc { kind: RegKind::Cereg, mode: RegUrcMode::Other(4) } => EncodeError::OutOfRange { value: 4, min: 0, max: 3 };
            SetRegistrationUrc { kind: RegKind::Cgreg, mode: RegUrcMode::WithCause } => EncodeError::OutOfRange { value: 3, min: 0, max: 2 };
            SetFlowControl { dce_by_dte: FlowControl::Other(1), dte_by_dce: FlowControl::None } => EncodeError::Invalid("flow control must be None (0) or RtsCts (2)");
            SetFlowControl { dce_by_dte: FlowControl::None, dte_by_dce: FlowControl::Other(3) } => EncodeError::Invalid("flow control must be None (0) or RtsCts (2)");
            SetBaudRate(0) => EncodeError::Invalid("baud rate is not one AT+IPR accepts");
            SetBaudRate(115201) => EncodeError::Invalid("baud rate is not one AT+IPR accepts");
            SetBaudRate(u32::MAX) => EncodeError::Invalid("baud rate is not one AT+IPR accepts");
            SetFunctionality { fun: Functionality::Other(5), reset: false } => EncodeError::Invalid("functionality must be Minimum (0), Full (1) or RfOff (4)");
            SetUrcPort(UrcPort::Other("")) => EncodeError::Empty;
            SetUrcPort(UrcPort::Other("a\"b")) => EncodeError::ForbiddenByte { byte: b'"', position: 1 };
            SetUrcPort(UrcPort::Other("a\rb")) => EncodeError::ForbiddenByte { byte: b'\r', position: 1 };
            SetUrcPort(UrcPort::Other("a\nb")) => EncodeError::ForbiddenByte { byte: b'\n', position: 1 };
            SetUrcPort(UrcPort::Other("a\0b")) => EncodeError::ForbiddenByte { byte: 0, position: 1 };
            SetUrcPort(UrcPort::Other("u\u{e9}")) => EncodeError::ForbiddenByte { byte: 0xc3, position: 1 };
            SetUrcPort(UrcPort::Other("abcdefghijklmnopq")) => EncodeError::TooLong { len: 17, max: 16 };
        }
    }

    #[test]
    fn short_buffer_is_an_error() {
        let mut buf = [0u8; 10];
        assert_eq!(
            encoded(&SetUrcPort(UrcPort::UsbModem), &mut buf),
            Err(EncodeError::BufferTooSmall { capacity: 10 })
        );
        let mut buf = [0u8; 1];
        assert_eq!(
            encoded(&Attention, &mut buf),
            Err(EncodeError::BufferTooSmall { capacity: 1 })
        );
    }

    #[test]
    fn timeouts_and_claimed_lines() {
        assert_eq!(SetFunctionality::RESET.timeout(), Duration::from_secs(15));
        assert_eq!(GetFunctionality.timeout(), Duration::from_secs(15));
        assert_eq!(PowerDown.timeout(), Duration::from_secs(65));
        assert_eq!(SignalQuality.timeout(), DEFAULT_TIMEOUT);
        assert_eq!(Attention.response_lines(), ResponseLines::None);
        assert_eq!(Identify.response_lines(), ResponseLines::Unprefixed);
        assert_eq!(GetRevision.response_lines(), ResponseLines::Unprefixed);
        assert_eq!(Imei.response_lines(), ResponseLines::Unprefixed);
        assert_eq!(
            GetRegistration {
                kind: RegKind::Cgreg
            }
            .response_lines(),
            ResponseLines::Prefixed(b"+CGREG:")
        );
        assert_eq!(
            SimStatus.response_lines(),
            ResponseLines::Prefixed(b"+CPIN:")
        );
        assert_eq!(Iccid.response_lines(), ResponseLines::Prefixed(b"+QCCID:"));
    }

    #[test]
    fn no_response_lines() {
        assert_eq!(parse(Attention, b""), Ok(()));
        assert_eq!(parse(Attention, b"junk\n"), Err(ParseError::TrailingData));
        assert_eq!(parse(SetEcho(false), b""), Ok(()));
        assert_eq!(parse(PowerDown, b""), Ok(()));
    }

    #[test]
    fn error_format() {
        assert_eq!(
            parse(GetErrorFormat, b"+CMEE: 1\n"),
            Ok(ErrorFormat::Numeric)
        );
        assert_eq!(
            parse(GetErrorFormat, b"+CMEE: 2\n"),
            Ok(ErrorFormat::Verbose)
        );
        assert_eq!(
            parse(GetErrorFormat, b"+CMEE: 7\n"),
            Ok(ErrorFormat::Other(7))
        );
        assert_eq!(parse(GetErrorFormat, b""), Err(ParseError::MissingLine));
        assert_eq!(
            parse(GetErrorFormat, b"+CMEE: 1,2\n"),
            Err(ParseError::TrailingData)
        );
    }

    #[test]
    fn identity() {
        let id = parse(
            Identify,
            b"Quectel\nEC200U\nRevision: EC200UCNAAR01A04M08\n",
        )
        .unwrap();
        assert_eq!(
            id,
            Identity {
                manufacturer: "Quectel",
                model: "EC200U",
                revision: "EC200UCNAAR01A04M08"
            }
        );
        assert_eq!(id.family(), Some(ChipFamily::Unisoc));

        let id = parse(Identify, b"Quectel\nEG18\nRevision: EG18EAPAR01A12M4G\n").unwrap();
        assert_eq!(id.model, "EG18");
        assert_eq!(id.family(), Some(ChipFamily::Qualcomm));

        let id = parse(Identify, b"Quectel\nEG800Q\nRevision: EG800QEULCR01A03M\n").unwrap();
        assert_eq!(id.revision, "EG800QEULCR01A03M");
        assert_eq!(id.family(), None);

        // Family from the revision when the model line is unknown.
        let id = parse(Identify, b"Quectel\nModule\nRevision: EC200TCNLCR01A03M\n").unwrap();
        assert_eq!(id.family(), Some(ChipFamily::Asr));

        // Tolerant of blank lines, leading junk, trailing lines and case.
        let id = parse(
            Identify,
            b"ATI\n\nQuectel \n\n EC200U\nrevision:EC200UCNAAR01A04M08\n\nextra\n",
        )
        .unwrap();
        assert_eq!(
            id,
            Identity {
                manufacturer: "Quectel",
                model: "EC200U",
                revision: "EC200UCNAAR01A04M08"
            }
        );

        assert_eq!(
            parse(Identify, b"Quectel\nEC200U\n"),
            Err(ParseError::MissingLine)
        );
        assert_eq!(
            parse(Identify, b"EC200U\nRevision: X\n"),
            Err(ParseError::MissingLine)
        );
        assert_eq!(parse(Identify, b""), Err(ParseError::MissingLine));
        assert_eq!(
            parse(Identify, b"Quectel\nEC200U\nRevision: \n"),
            Err(ParseError::MissingField)
        );
        assert_eq!(
            parse(Identify, b"\xff\nEC200U\nRevision: X\n"),
            Err(ParseError::NotText)
        );
    }

    #[test]
    fn revisions() {
        assert_eq!(
            parse(GetRevision, b"EG800QEULCR01A03M\n"),
            Ok("EG800QEULCR01A03M")
        );
        assert_eq!(
            parse(GetRevision, b"\nRevision: EG18EAPAR01A12M4G\n"),
            Ok("EG18EAPAR01A12M4G")
        );
        assert_eq!(parse(GetRevision, b"A\nB\n"), Ok("A"));
        assert_eq!(parse(GetRevision, b""), Err(ParseError::MissingLine));
        assert_eq!(parse(GetRevision, b"  \n"), Err(ParseError::MissingLine));
        assert_eq!(
            parse(GetFullRevision, b"EG18EAPAR01A12M4G_01.001.01.001\n"),
            Ok("EG18EAPAR01A12M4G_01.001.01.001")
        );
    }

    #[test]
    fn imei() {
        assert_eq!(parse(Imei, b"867584030123456\n"), Ok("867584030123456"));
        assert_eq!(
            parse(Imei, b"+GSN: 867584030123456\n"),
            Ok("867584030123456")
        );
        assert_eq!(
            parse(Imei, b"\xff\nnoise\n867584030123456\n"),
            Ok("867584030123456")
        );
        assert_eq!(parse(Imei, b"noise\n"), Err(ParseError::UnexpectedValue));
        assert_eq!(parse(Imei, b""), Err(ParseError::MissingLine));
    }

    #[test]
    fn iccid() {
        assert_eq!(
            parse(Iccid, b"+QCCID: 89860318740210409000\n"),
            Ok("89860318740210409000")
        );
        assert_eq!(
            parse(Iccid, b"+QCCID: 8944500102198304826F\n"),
            Ok("8944500102198304826F")
        );
        assert_eq!(parse(Iccid, b"+QCCID: \n"), Err(ParseError::MissingField));
        assert_eq!(parse(Iccid, b""), Err(ParseError::MissingLine));
    }

    #[test]
    fn sim_state() {
        let cases: [(&[u8], SimState<'_>); 8] = [
            (b"+CPIN: READY\n", SimState::Ready),
            (b"+CPIN: SIM PIN\n", SimState::SimPin),
            (b"+CPIN: SIM PUK\n", SimState::SimPuk),
            (b"+CPIN: PH-SIM PIN\n", SimState::PhSimPin),
            (b"+CPIN: SIM PIN2\n", SimState::SimPin2),
            (b"+CPIN: SIM PUK2\n", SimState::SimPuk2),
            (b"+CPIN: PH-NET PIN\n", SimState::Other("PH-NET PIN")),
            (b"+cpin: ready\n", SimState::Ready),
        ];
        for (line, want) in cases {
            assert_eq!(parse(SimStatus, line), Ok(want));
        }
        assert!(SimState::Ready.is_ready());
        assert!(!SimState::SimPin.is_ready());
        // A boot URC claimed before the answer: the last line wins.
        assert_eq!(
            parse(SimStatus, b"+CPIN: SIM PIN\n+CPIN: READY\n"),
            Ok(SimState::Ready)
        );
        assert_eq!(parse(SimStatus, b""), Err(ParseError::MissingLine));
        assert_eq!(
            parse(SimStatus, b"+CPIN: \n"),
            Err(ParseError::MissingField)
        );
    }

    #[test]
    fn signal_quality() {
        let q = parse(SignalQuality, b"+CSQ: 31,99\n").unwrap();
        assert_eq!(q, Csq { rssi: 31, ber: 99 });
        assert_eq!(q.dbm(), Some(-51));
        assert_eq!(q.ber_class(), None);
        let q = parse(SignalQuality, b"+CSQ: 0,0\n").unwrap();
        assert_eq!((q.dbm(), q.ber_class()), (Some(-113), Some(0)));
        assert_eq!(Csq { rssi: 15, ber: 7 }.dbm(), Some(-83));
        assert_eq!(Csq { rssi: 99, ber: 99 }.dbm(), None);
        assert_eq!(Csq { rssi: 32, ber: 8 }.dbm(), None);
        assert_eq!(Csq { rssi: 32, ber: 8 }.ber_class(), None);
        assert_eq!(
            parse(SignalQuality, b"+CSQ: 31\n"),
            Err(ParseError::MissingField)
        );
        assert_eq!(
            parse(SignalQuality, b"+CSQ: 31,99,1\n"),
            Err(ParseError::TrailingData)
        );
        assert_eq!(
            parse(SignalQuality, b"+CSQ: 300,99\n"),
            Err(ParseError::OutOfRange)
        );
        assert_eq!(
            parse(SignalQuality, b"+CSQ: 1,2\n+CSQ: 1,2\n"),
            Err(ParseError::TrailingData)
        );
    }

    #[test]
    fn reg_status_and_kind() {
        for c in 0..=255u8 {
            assert_eq!(RegStatus::from_code(c).code(), c);
            assert_eq!(RegUrcMode::from_code(c).code(), c);
            assert_eq!(AccessTech::from_code(c).code(), c);
            assert_eq!(ErrorFormat::from_code(c).code(), c);
            assert_eq!(FlowControl::from_code(c).code(), c);
            assert_eq!(Functionality::from_code(c).code(), c);
            assert_eq!(RegStatus::from_code(c).is_registered(), c == 1 || c == 5);
        }
        assert_eq!(RegStatus::from_code(3), RegStatus::Denied);
        assert_eq!(RegStatus::from_code(9), RegStatus::Other(9));
        assert_eq!(RegKind::Creg.prefix(), b"+CREG:");
        assert_eq!(RegKind::Cgreg.prefix(), b"+CGREG:");
        assert_eq!(RegKind::Cereg.prefix(), b"+CEREG:");
    }

    #[test]
    fn registration() {
        let creg = GetRegistration {
            kind: RegKind::Creg,
        };
        let cereg = GetRegistration {
            kind: RegKind::Cereg,
        };
        let cgreg = GetRegistration {
            kind: RegKind::Cgreg,
        };

        let r = parse(creg, b"+CREG: 0,2\n").unwrap();
        assert_eq!(
            r,
            Registration {
                kind: RegKind::Creg,
                mode: RegUrcMode::Disabled,
                status: RegStatus::Searching,
                area_code: None,
                cell_id: None,
                access_tech: None,
                reject_cause: None,
            }
        );
        assert!(!r.is_registered());
        assert!(parse(creg, b"+CREG: 0,1\n").unwrap().is_registered());
        let r = parse(cereg, b"+CEREG: 0,5\n").unwrap();
        assert_eq!(r.status, RegStatus::Roaming);
        assert!(r.is_registered());

        let r = parse(cereg, b"+CEREG: 2,1,\"1A2B\",\"01C3D4E5\",7\n").unwrap();
        assert_eq!(r.mode, RegUrcMode::WithLocation);
        assert_eq!(r.area_code, Some(0x1a2b));
        assert_eq!(r.cell_id, Some(0x01c3_d4e5));
        assert_eq!(r.access_tech, Some(AccessTech::EUtran));

        // Unquoted hex, no AcT.
        let r = parse(cgreg, b"+CGREG: 2,1,1A2B,0x3D4E5\n").unwrap();
        assert_eq!(
            (r.area_code, r.cell_id, r.access_tech),
            (Some(0x1a2b), Some(0x3d4e5), None)
        );

        // Empty location fields.
        let r = parse(creg, b"+CREG: 2,0,\"\",\"\"\n").unwrap();
        assert_eq!(
            (r.status, r.area_code, r.cell_id),
            (RegStatus::NotSearching, None, None)
        );

        // Mode 3: the reject cause, with empty location fields or with them.
        let r = parse(cereg, b"+CEREG: 3,3,,,,0,15\n").unwrap();
        assert_eq!(
            (r.mode, r.status),
            (RegUrcMode::WithCause, RegStatus::Denied)
        );
        let cause = r.reject_cause.unwrap();
        assert_eq!(
            cause,
            RejectCause {
                cause_type: 0,
                code: 15
            }
        );
        assert_eq!(cause.emm(), Some(EmmCause::NoSuitableCells));
        let r = parse(creg, b"+CREG: 3,3,\"1A2B\",\"01C3D4E5\",7,1,201\n").unwrap();
        let cause = r.reject_cause.unwrap();
        assert_eq!((cause.cause_type, cause.code, cause.emm()), (1, 201, None));
        assert_eq!(cause.meaning(), "manufacturer-specific reject cause");
        // A cause that does not parse is left out; CGREG's field after AcT is <rac>.
        let r = parse(cereg, b"+CEREG: 3,3,,,,x,15\n").unwrap();
        assert_eq!(r.reject_cause, None);
        let r = parse(cgreg, b"+CGREG: 3,3,\"1A2B\",\"01C3D4E5\",7,\"01\",0,15\n");
        assert_eq!(r.map(|r| r.reject_cause), Ok(None));

        // Fields after AcT are ignored (CEREG mode 4: reject cause, PSM timers).
        let r = parse(
            cereg,
            b"+CEREG: 4,1,\"1A2B\",\"01C3D4E5\",7,,,\"00100100\",\"01000111\"\n",
        )
        .unwrap();
        assert_eq!(
            (r.mode, r.access_tech),
            (RegUrcMode::Other(4), Some(AccessTech::EUtran))
        );

        // URCs claimed with the answer are skipped.
        let r = parse(cereg, b"+CEREG: 5\n+CEREG: 2,1,\"1A2B\",\"01C3D4E5\",7\n").unwrap();
        assert_eq!(r.status, RegStatus::Home);
        let r = parse(cereg, b"+CEREG: 1,\"1A2B\",\"01C3D4E5\",7\n+CEREG: 0,3\n").unwrap();
        assert_eq!(r.status, RegStatus::Denied);
        assert_eq!(parse(cereg, b"+CEREG: 1\n"), Err(ParseError::MissingLine));
        assert_eq!(parse(cereg, b""), Err(ParseError::MissingLine));

        assert_eq!(parse(creg, b"+CREG: x,1\n"), Err(ParseError::BadNumber));
        assert_eq!(
            parse(creg, b"+CREG: 2,1,\"XYZ\",\"1\"\n"),
            Err(ParseError::BadNumber)
        );
        assert_eq!(
            parse(creg, b"+CGREG: 0,1\n"),
            Err(ParseError::UnexpectedLine)
        );
    }

    #[test]
    fn flow_control_and_baud() {
        assert_eq!(
            parse(GetFlowControl, b"+IFC: 2,2\n"),
            Ok(SetFlowControl::HARDWARE)
        );
        assert_eq!(
            parse(GetFlowControl, b"+IFC: 0,0\n"),
            Ok(SetFlowControl::NONE)
        );
        assert_eq!(
            parse(GetFlowControl, b"+IFC: 1,1\n"),
            Ok(SetFlowControl {
                dce_by_dte: FlowControl::Other(1),
                dte_by_dce: FlowControl::Other(1)
            })
        );
        assert_eq!(
            parse(GetFlowControl, b"+IFC: 2\n"),
            Err(ParseError::MissingField)
        );
        assert_eq!(parse(GetBaudRate, b"+IPR: 115200\n"), Ok(115200));
        assert_eq!(parse(GetBaudRate, b"+IPR: 0\n"), Ok(0));
        assert_eq!(
            parse(GetBaudRate, b"+IPR:\n"),
            Err(ParseError::MissingField)
        );
        for rate in BAUD_RATES {
            let mut buf = [0u8; 32];
            assert!(encoded(&SetBaudRate(rate), &mut buf).is_ok());
        }
    }

    #[test]
    fn functionality() {
        assert_eq!(
            parse(GetFunctionality, b"+CFUN: 1\n"),
            Ok(Functionality::Full)
        );
        assert_eq!(
            parse(GetFunctionality, b"+CFUN: 0\n"),
            Ok(Functionality::Minimum)
        );
        assert_eq!(
            parse(GetFunctionality, b"+CFUN: 4\n"),
            Ok(Functionality::RfOff)
        );
        assert_eq!(
            parse(GetFunctionality, b"+CFUN: 7\n"),
            Ok(Functionality::Other(7))
        );
        assert_eq!(
            parse(GetFunctionality, b"+CFUN: 1\n+CFUN: 4\n"),
            Ok(Functionality::RfOff)
        );
        assert_eq!(parse(GetFunctionality, b""), Err(ParseError::MissingLine));
    }

    #[test]
    fn urc_port() {
        assert_eq!(
            parse(GetUrcPort, b"+QURCCFG: \"urcport\",\"uart1\"\n"),
            Ok(UrcPort::Uart1)
        );
        assert_eq!(
            parse(GetUrcPort, b"+QURCCFG: \"urcport\",\"usbat\"\n"),
            Ok(UrcPort::UsbAt)
        );
        assert_eq!(
            parse(GetUrcPort, b"+QURCCFG: urcport,usbmodem\n"),
            Ok(UrcPort::UsbModem)
        );
        assert_eq!(
            parse(GetUrcPort, b"+QURCCFG: \"urcport\",\"uart2\"\n"),
            Ok(UrcPort::Other("uart2"))
        );
        assert_eq!(UrcPort::Other("uart2").name(), "uart2");
        assert_eq!(UrcPort::from_name("USBAT"), UrcPort::UsbAt);
        assert_eq!(
            parse(GetUrcPort, b"+QURCCFG: \"other\",\"uart1\"\n"),
            Err(ParseError::UnexpectedValue)
        );
        assert_eq!(
            parse(GetUrcPort, b"+QURCCFG: \"urcport\",\"\"\n"),
            Err(ParseError::MissingField)
        );
        assert_eq!(
            parse(GetUrcPort, b"+QURCCFG: \"urcport\"\n"),
            Err(ParseError::MissingField)
        );
    }

    #[test]
    fn indication() {
        let csq = GetIndication {
            kind: IndicationType::Csq,
        };
        assert_eq!(parse(csq, b"+QINDCFG: \"csq\",1\n"), Ok(true));
        assert_eq!(parse(csq, b"+QINDCFG: \"csq\",0\n"), Ok(false));
        assert_eq!(parse(csq, b"+QINDCFG: csq,1,1\n"), Ok(true));
        assert_eq!(
            parse(csq, b"+QINDCFG: \"ring\",1\n"),
            Err(ParseError::UnexpectedValue)
        );
        assert_eq!(
            parse(csq, b"+QINDCFG: \"csq\"\n"),
            Err(ParseError::MissingField)
        );
        assert_eq!(parse(csq, b""), Err(ParseError::MissingLine));
    }

    /// Every command, for the never-panics property.
    fn parse_all(bytes: &[u8]) {
        let l = || Lines::new(bytes);
        let _ = Attention.parse(l());
        let _ = SetEcho(true).parse(l());
        let _ = SetErrorFormat(ErrorFormat::Numeric).parse(l());
        let _ = GetErrorFormat.parse(l());
        if let Ok(id) = Identify.parse(l()) {
            let _ = id.family();
        }
        let _ = GetRevision.parse(l());
        let _ = GetFullRevision.parse(l());
        let _ = Imei.parse(l());
        let _ = Iccid.parse(l());
        let _ = SimStatus.parse(l());
        let _ = EnterPin { pin: "1234" }.parse(l());
        if let Ok(q) = SignalQuality.parse(l()) {
            let _ = q.dbm();
        }
        for kind in [RegKind::Creg, RegKind::Cgreg, RegKind::Cereg] {
            let _ = GetRegistration { kind }.parse(l());
            let _ = SetRegistrationUrc {
                kind,
                mode: RegUrcMode::Enabled,
            }
            .parse(l());
        }
        let _ = SetFlowControl::HARDWARE.parse(l());
        let _ = GetFlowControl.parse(l());
        let _ = SetBaudRate(115200).parse(l());
        let _ = GetBaudRate.parse(l());
        let _ = SaveSettings.parse(l());
        let _ = SetFunctionality::RESET.parse(l());
        let _ = GetFunctionality.parse(l());
        let _ = SetUrcPort(UrcPort::Uart1).parse(l());
        let _ = GetUrcPort.parse(l());
        let _ = SetIndication {
            kind: IndicationType::All,
            enable: true,
            save: None,
        }
        .parse(l());
        let _ = GetIndication {
            kind: IndicationType::Csq,
        }
        .parse(l());
        let _ = PowerDown.parse(l());
    }

    fn check_encode<C: AtCommand>(cmd: &C) -> Result<(), TestCaseError> {
        let mut buf = [0u8; 256];
        if let Ok(n) = encoded(cmd, &mut buf) {
            prop_assert!(well_formed(&buf[..n]), "{:?}", &buf[..n]);
        }
        let mut small = [0u8; 8];
        let _ = encoded(cmd, &mut small);
        Ok(())
    }

    proptest! {
        #[test]
        fn encode_never_breaks_the_line(s in any::<String>(), n in any::<u32>(), c in any::<u8>(), b in any::<bool>()) {
            check_encode(&EnterPin { pin: &s })?;
            check_encode(&SetUrcPort(UrcPort::Other(&s)))?;
            check_encode(&SetUrcPort(UrcPort::from_name(&s)))?;
            check_encode(&SetBaudRate(n))?;
            let mut buf = [0u8; 32];
            prop_assert_eq!(encoded(&SetBaudRate(n), &mut buf).is_ok(), BAUD_RATES.contains(&n));
            check_encode(&SetErrorFormat(ErrorFormat::from_code(c)))?;
            check_encode(&SetRegistrationUrc { kind: RegKind::Cereg, mode: RegUrcMode::from_code(c) })?;
            check_encode(&SetFlowControl { dce_by_dte: FlowControl::from_code(c), dte_by_dce: FlowControl::from_code(c) })?;
            check_encode(&SetFunctionality { fun: Functionality::from_code(c), reset: b })?;
            check_encode(&SetIndication { kind: IndicationType::Psm, enable: b, save: Some(b) })?;
        }

        #[test]
        fn pin_accepted_iff_4_to_8_digits(s in "[0-9]{0,10}|.{0,10}") {
            let mut buf = [0u8; 64];
            let ok = (4..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
            prop_assert_eq!(encoded(&EnterPin { pin: &s }, &mut buf).is_ok(), ok);
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            parse_all(&bytes);
        }

        #[test]
        fn parse_never_panics_on_plausible_lines(
            lines in proptest::collection::vec(
                "(\\+CREG: |\\+CEREG: |\\+CPIN: |\\+CSQ: |\\+QURCCFG: |\\+QINDCFG: |Revision: |\\+GSN: |)[0-9A-Fa-f\", x]{0,24}\n",
                0..5,
            )
        ) {
            let joined: String = lines.concat();
            parse_all(joined.as_bytes());
        }
    }
}
