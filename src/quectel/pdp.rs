//! PDP contexts: configure (`AT+QICSGP`), activate and deactivate (`AT+QIACT`,
//! `AT+QIDEACT`, `AT+CGACT`), list, and read the last TCP/IP error (`AT+QIGETERROR`)
//! (quectel-at.md §3).
//!
//! Recovery when the network moved the context (§3, EG800K quirk): cross-check
//! [`ActiveContexts`] with [`PdpActivations`], then [`DeactivateContext`] →
//! [`SetPdpActivation`] `{ active: false }` → [`ActivateContext`].

use core::time::Duration;

use crate::at::params::Params;
use crate::at::{AtCommand, EncodeError, Encoder, Lines, ParseError, ResponseLines};

/// Smallest context id (quectel-at.md §3).
pub const CID_MIN: u8 = 1;
/// Largest context id on EC2x (quectel-at.md §3; a Cat.1 wrapper limits it to 15, and such
/// modules answer `ERROR` to 16).
pub const CID_MAX: u8 = 16;

/// Longest APN [`ConfigureContext`] accepts: 99 bytes. 3GPP TS 23.003 limits an APN to 100
/// octets in its encoded form, where every label carries a length byte; the dotted text of
/// such an APN is one byte shorter. (The reference gives no Quectel-specific limit.)
pub const APN_MAX: usize = 99;
/// Longest user name or password [`ConfigureContext`] accepts: 127 bytes (a crate limit; the
/// reference gives none).
pub const CREDENTIAL_MAX: usize = 127;

/// Deadline for `AT+QIACT` and `AT+CGACT` (quectel-at.md §3, §9).
pub const ACTIVATE_TIMEOUT: Duration = Duration::from_secs(150);
/// Deadline for `AT+QIDEACT` (quectel-at.md §3, §9).
pub const DEACTIVATE_TIMEOUT: Duration = Duration::from_secs(40);

fn cid(enc: &mut Encoder<'_>, cid: u8) -> Result<(), EncodeError> {
    enc.ranged(u32::from(cid), u32::from(CID_MIN), u32::from(CID_MAX))
}

/// The `<type>` of a PDP context (quectel-at.md §3). Open: other codes (such as the 0 some
/// firmware reports for a context never configured) are kept in [`PdpType::Other`] and
/// refused by [`ConfigureContext`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum PdpType {
    /// 1: IPv4.
    Ipv4,
    /// 2: IPv6.
    Ipv6,
    /// 3: IPv4v6 (dual stack).
    Ipv4v6,
    /// Any other code.
    Other(u8),
}

impl PdpType {
    /// The type for a `<type>` code.
    pub fn from_code(code: u8) -> Self {
        match code {
            1 => PdpType::Ipv4,
            2 => PdpType::Ipv6,
            3 => PdpType::Ipv4v6,
            c => PdpType::Other(c),
        }
    }

    /// The `<type>` code.
    pub fn code(self) -> u8 {
        match self {
            PdpType::Ipv4 => 1,
            PdpType::Ipv6 => 2,
            PdpType::Ipv4v6 => 3,
            PdpType::Other(c) => c,
        }
    }
}

/// The `<auth>` of a PDP context (quectel-at.md §3). Open like [`PdpType`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum AuthMethod {
    /// 0: no authentication.
    None,
    /// 1: PAP.
    Pap,
    /// 2: CHAP.
    Chap,
    /// 3: PAP or CHAP.
    PapOrChap,
    /// Any other code.
    Other(u8),
}

impl AuthMethod {
    /// The method for an `<auth>` code.
    pub fn from_code(code: u8) -> Self {
        match code {
            0 => AuthMethod::None,
            1 => AuthMethod::Pap,
            2 => AuthMethod::Chap,
            3 => AuthMethod::PapOrChap,
            c => AuthMethod::Other(c),
        }
    }

    /// The `<auth>` code.
    pub fn code(self) -> u8 {
        match self {
            AuthMethod::None => 0,
            AuthMethod::Pap => 1,
            AuthMethod::Chap => 2,
            AuthMethod::PapOrChap => 3,
            AuthMethod::Other(c) => c,
        }
    }
}

/// `AT+QICSGP=<cid>,<type>,"<APN>","<user>","<pwd>",<auth>`: configures a context
/// (quectel-at.md §3), e.g. `AT+QICSGP=1,1,"apn","","",1`. Answers `OK`.
///
/// Refused before anything is sent: `cid` outside [`CID_MIN`]..=[`CID_MAX`]
/// ([`EncodeError::OutOfRange`]); [`PdpType::Other`] or [`AuthMethod::Other`]
/// ([`EncodeError::OutOfRange`], 1..=3 resp. 0..=3); an APN over [`APN_MAX`] or a user name
/// or password over [`CREDENTIAL_MAX`] bytes ([`EncodeError::TooLong`]); `"`, control or
/// non-ASCII bytes in any of them ([`EncodeError::ForbiddenByte`]). An empty APN is allowed
/// (the network then chooses). The CDMA password parameter is not supported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ConfigureContext<'p> {
    /// Context id.
    pub cid: u8,
    /// IP version.
    pub pdp_type: PdpType,
    /// Access point name.
    pub apn: &'p str,
    /// User name, empty for none.
    pub user: &'p str,
    /// Password, empty for none.
    pub password: &'p str,
    /// Authentication method.
    pub auth: AuthMethod,
}

impl AtCommand for ConfigureContext<'_> {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+QICSGP=")?;
        cid(enc, self.cid)?;
        enc.comma()?;
        enc.ranged(u32::from(self.pdp_type.code()), 1, 3)?;
        enc.comma()?;
        enc.quoted(self.apn, APN_MAX)?;
        enc.comma()?;
        enc.quoted(self.user, CREDENTIAL_MAX)?;
        enc.comma()?;
        enc.quoted(self.password, CREDENTIAL_MAX)?;
        enc.comma()?;
        enc.ranged(u32::from(self.auth.code()), 0, 3)
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// `AT+QICSGP=<cid>`: a context's configuration, from
/// `+QICSGP: <type>,"<APN>","<user>","<pwd>",<auth>` (quectel-at.md §3). Fields after
/// `<auth>` (such as a CDMA password) are ignored. `cid` is checked as in
/// [`ConfigureContext`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GetContextConfig {
    /// Context id.
    pub cid: u8,
}

/// The answer to [`GetContextConfig`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ContextConfig<'a> {
    /// IP version.
    pub pdp_type: PdpType,
    /// Access point name (may be empty).
    pub apn: &'a str,
    /// User name (may be empty).
    pub user: &'a str,
    /// Password (may be empty).
    pub password: &'a str,
    /// Authentication method.
    pub auth: AuthMethod,
}

impl AtCommand for GetContextConfig {
    type Response<'a> = ContextConfig<'a>;
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+QICSGP=")?;
        cid(enc, self.cid)
    }
    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+QICSGP:")
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<ContextConfig<'a>, ParseError> {
        let mut p = lines.expect_prefixed(b"+QICSGP:")?;
        let v = ContextConfig {
            pdp_type: PdpType::from_code(p.u8()?),
            apn: p.str()?,
            user: p.str()?,
            password: p.str()?,
            auth: AuthMethod::from_code(p.u8()?),
        };
        lines.end()?;
        Ok(v)
    }
}

/// `AT+QIACT=<cid>`: activates a context (quectel-at.md §3). Answers `OK`, or an error such
/// as 561 / 572 (read the detail with [`LastError`]). Deadline [`ACTIVATE_TIMEOUT`]
/// (150 s, §9). `cid` is checked as in [`ConfigureContext`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ActivateContext {
    /// Context id.
    pub cid: u8,
}

impl AtCommand for ActivateContext {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+QIACT=")?;
        cid(enc, self.cid)
    }
    fn timeout(&self) -> Duration {
        ACTIVATE_TIMEOUT
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// `AT+QIDEACT=<cid>`: deactivates a context (quectel-at.md §3). Answers `OK`. Deadline
/// [`DEACTIVATE_TIMEOUT`] (40 s, §9). `cid` is checked as in [`ConfigureContext`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DeactivateContext {
    /// Context id.
    pub cid: u8,
}

impl AtCommand for DeactivateContext {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+QIDEACT=")?;
        cid(enc, self.cid)
    }
    fn timeout(&self) -> Duration {
        DEACTIVATE_TIMEOUT
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// The `<state>` of a context in `+QIACT:` and `+CGACT:` lines. Open: other codes are kept
/// in [`PdpState::Other`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum PdpState {
    /// 0: deactivated.
    Deactivated,
    /// 1: activated.
    Activated,
    /// Any other code.
    Other(u8),
}

impl PdpState {
    /// The state for a `<state>` code.
    pub fn from_code(code: u8) -> Self {
        match code {
            0 => PdpState::Deactivated,
            1 => PdpState::Activated,
            c => PdpState::Other(c),
        }
    }

    /// The `<state>` code.
    pub fn code(self) -> u8 {
        match self {
            PdpState::Deactivated => 0,
            PdpState::Activated => 1,
            PdpState::Other(c) => c,
        }
    }

    /// True for [`PdpState::Activated`].
    pub fn is_active(self) -> bool {
        self == PdpState::Activated
    }
}

/// `AT+QIACT?`: the active contexts, one `+QIACT: <cid>,<state>,<type>[,"<ip>"]` line each,
/// e.g. `+QIACT: 1,1,1,"10.187.7.8"` (quectel-at.md §3). No line means no active context.
///
/// The response, [`ContextList`], reads the stored lines lazily.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ActiveContexts;

/// One `+QIACT:` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ContextState<'a> {
    /// Context id.
    pub cid: u8,
    /// Activation state.
    pub state: PdpState,
    /// IP version.
    pub pdp_type: PdpType,
    /// The local address as sent; `None` when absent or empty. Fields after it (a second
    /// address on dual-stack contexts, if a firmware sends one) are ignored.
    pub ip: Option<&'a str>,
}

fn qiact_line(line: &[u8]) -> Result<ContextState<'_>, ParseError> {
    let mut p = Params::after(line, b"+QIACT:").ok_or(ParseError::UnexpectedLine)?;
    Ok(ContextState {
        cid: p.u8()?,
        state: PdpState::from_code(p.u8()?),
        pdp_type: PdpType::from_code(p.u8()?),
        ip: p.opt_str()?.filter(|s| !s.is_empty()),
    })
}

/// The answer to [`ActiveContexts`]: an iterator over the `+QIACT:` lines, parsed one by
/// one as it advances (nothing is copied).
///
/// Every line was checked when the response was parsed, so the iterator yields plain
/// [`ContextState`] values and never stops early; a malformed line makes the whole
/// response a [`ParseError`] instead.
#[derive(Clone, Copy, Debug)]
pub struct ContextList<'a> {
    lines: Lines<'a>,
    remaining: usize,
}

impl<'a> ContextList<'a> {
    /// The entry for `cid`, if the modem listed it.
    pub fn get(self, cid: u8) -> Option<ContextState<'a>> {
        self.into_iter().find(|c| c.cid == cid)
    }
}

impl<'a> Iterator for ContextList<'a> {
    type Item = ContextState<'a>;
    fn next(&mut self) -> Option<ContextState<'a>> {
        let item = self.lines.find_map(|l| qiact_line(l).ok());
        self.remaining = self.remaining.saturating_sub(1);
        item
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for ContextList<'_> {}

/// Checks every line with `parse_line` and counts them.
fn validate<'a, T>(
    lines: Lines<'a>,
    parse_line: fn(&'a [u8]) -> Result<T, ParseError>,
) -> Result<usize, ParseError> {
    let mut n = 0;
    for line in lines {
        parse_line(line)?;
        n += 1;
    }
    Ok(n)
}

impl AtCommand for ActiveContexts {
    type Response<'a> = ContextList<'a>;
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+QIACT?")
    }
    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+QIACT:")
    }
    fn parse<'a>(&self, lines: Lines<'a>) -> Result<ContextList<'a>, ParseError> {
        let remaining = validate(lines, qiact_line)?;
        Ok(ContextList { lines, remaining })
    }
}

/// `AT+CGACT?`: the 3GPP activation state of every defined context, one
/// `+CGACT: <cid>,<state>` line each (quectel-at.md §3). Use it to cross-check
/// [`ActiveContexts`] when the network may have moved the context.
///
/// The response, [`PdpActivationList`], reads the stored lines lazily.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PdpActivations;

/// One `+CGACT:` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PdpActivation {
    /// Context id.
    pub cid: u8,
    /// Activation state.
    pub state: PdpState,
}

fn cgact_line(line: &[u8]) -> Result<PdpActivation, ParseError> {
    let mut p = Params::after(line, b"+CGACT:").ok_or(ParseError::UnexpectedLine)?;
    let v = PdpActivation {
        cid: p.u8()?,
        state: PdpState::from_code(p.u8()?),
    };
    p.end()?;
    Ok(v)
}

/// The answer to [`PdpActivations`]: an iterator over the `+CGACT:` lines, parsed lazily,
/// with the same guarantee as [`ContextList`] (all lines were checked by `parse`).
#[derive(Clone, Copy, Debug)]
pub struct PdpActivationList<'a> {
    lines: Lines<'a>,
    remaining: usize,
}

impl PdpActivationList<'_> {
    /// The entry for `cid`, if the modem listed it.
    pub fn get(self, cid: u8) -> Option<PdpActivation> {
        self.into_iter().find(|c| c.cid == cid)
    }
}

impl Iterator for PdpActivationList<'_> {
    type Item = PdpActivation;
    fn next(&mut self) -> Option<PdpActivation> {
        let item = self.lines.find_map(|l| cgact_line(l).ok());
        self.remaining = self.remaining.saturating_sub(1);
        item
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for PdpActivationList<'_> {}

impl AtCommand for PdpActivations {
    type Response<'a> = PdpActivationList<'a>;
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+CGACT?")
    }
    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+CGACT:")
    }
    fn parse<'a>(&self, lines: Lines<'a>) -> Result<PdpActivationList<'a>, ParseError> {
        let remaining = validate(lines, cgact_line)?;
        Ok(PdpActivationList { lines, remaining })
    }
}

/// `AT+CGACT=<state>,<cid>`: activates or deactivates a context at the 3GPP level
/// (quectel-at.md §3; `AT+CGACT=0,<cid>` is the recovery step after [`DeactivateContext`]).
/// Answers `OK`. Deadline [`ACTIVATE_TIMEOUT`] (150 s, §9). `cid` is checked as in
/// [`ConfigureContext`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SetPdpActivation {
    /// Context id.
    pub cid: u8,
    /// `true` activates (`1`), `false` deactivates (`0`).
    pub active: bool,
}

impl AtCommand for SetPdpActivation {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(if self.active {
            b"AT+CGACT=1,"
        } else {
            b"AT+CGACT=0,"
        })?;
        cid(enc, self.cid)
    }
    fn timeout(&self) -> Duration {
        ACTIVATE_TIMEOUT
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// `AT+QIGETERROR`: the result of the last TCP/IP command, from
/// `+QIGETERROR: <code>,<text>`, e.g. `+QIGETERROR: 572,operation not allowed`
/// (quectel-at.md §3, codes in §5.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LastError;

/// The answer to [`LastError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TcpIpError<'a> {
    /// The numeric code (0 = no error, 5xx TCP/IP errors, §5.5).
    pub code: u16,
    /// The modem's description, quoted or not; empty if it sent none. A comma ends it (no
    /// documented text contains one); further fields are ignored.
    pub text: &'a str,
}

impl AtCommand for LastError {
    type Response<'a> = TcpIpError<'a>;
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+QIGETERROR")
    }
    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+QIGETERROR:")
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<TcpIpError<'a>, ParseError> {
        let mut p = lines.expect_prefixed(b"+QIGETERROR:")?;
        let v = TcpIpError {
            code: p.u16()?,
            text: p.opt_str()?.unwrap_or(""),
        };
        lines.end()?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::at::command::DEFAULT_TIMEOUT;
    use proptest::prelude::*;
    use std::string::String;
    use std::vec::Vec;

    use crate::quectel::test_support::{encoded, encodes, is_one_line as well_formed, refuses};

    fn parse<C: AtCommand>(cmd: C, stored: &[u8]) -> Result<C::Response<'_>, ParseError> {
        cmd.parse(Lines::new(stored))
    }

    const CFG: ConfigureContext<'static> = ConfigureContext {
        cid: 1,
        pdp_type: PdpType::Ipv4,
        apn: "apn",
        user: "",
        password: "",
        auth: AuthMethod::Pap,
    };

    #[test]
    fn encodings() {
        encodes! {
            CFG => b"AT+QICSGP=1,1,\"apn\",\"\",\"\",1";
            ConfigureContext {
                cid: 16, pdp_type: PdpType::Ipv4v6, apn: "internet.example", user: "user",
                password: "p@ss w;rd,", auth: AuthMethod::PapOrChap,
            } => b"AT+QICSGP=16,3,\"internet.example\",\"user\",\"p@ss w;rd,\",3";
            ConfigureContext { pdp_type: PdpType::Ipv6, auth: AuthMethod::None, apn: "", ..CFG }
                => b"AT+QICSGP=1,2,\"\",\"\",\"\",0";
            ConfigureContext { auth: AuthMethod::Chap, ..CFG } => b"AT+QICSGP=1,1,\"apn\",\"\",\"\",2";
            GetContextConfig { cid: 1 } => b"AT+QICSGP=1";
            ActivateContext { cid: 1 } => b"AT+QIACT=1";
            ActivateContext { cid: 16 } => b"AT+QIACT=16";
            DeactivateContext { cid: 1 } => b"AT+QIDEACT=1";
            ActiveContexts => b"AT+QIACT?";
            PdpActivations => b"AT+CGACT?";
            SetPdpActivation { cid: 9, active: false } => b"AT+CGACT=0,9";
            SetPdpActivation { cid: 1, active: true } => b"AT+CGACT=1,1";
            LastError => b"AT+QIGETERROR";
        }
        let long_apn = "a".repeat(APN_MAX);
        let long_cred = "b".repeat(CREDENTIAL_MAX);
        let cmd = ConfigureContext {
            apn: &long_apn,
            user: &long_cred,
            password: &long_cred,
            ..CFG
        };
        let mut buf = [0u8; 512];
        let n = encoded(&cmd, &mut buf).unwrap();
        assert!(well_formed(&buf[..n]));
    }

    #[test]
    fn refusals() {
        let too_long_apn = "a".repeat(APN_MAX + 1);
        let too_long_cred = "b".repeat(CREDENTIAL_MAX + 1);
        refuses! {
            ConfigureContext { cid: 0, ..CFG } => EncodeError::OutOfRange { value: 0, min: 1, max: 16 };
            ConfigureContext { cid: 17, ..CFG } => EncodeError::OutOfRange { value: 17, min: 1, max: 16 };
            ConfigureContext { pdp_type: PdpType::Other(0), ..CFG } => EncodeError::OutOfRange { value: 0, min: 1, max: 3 };
            ConfigureContext { pdp_type: PdpType::Other(4), ..CFG } => EncodeError::OutOfRange { value: 4, min: 1, max: 3 };
            ConfigureContext { auth: AuthMethod::Other(4), ..CFG } => EncodeError::OutOfRange { value: 4, min: 0, max: 3 };
            ConfigureContext { apn: "a\"b", ..CFG } => EncodeError::ForbiddenByte { byte: b'"', position: 1 };
            ConfigureContext { apn: "a\rb", ..CFG } => EncodeError::ForbiddenByte { byte: b'\r', position: 1 };
            ConfigureContext { apn: "a\nb", ..CFG } => EncodeError::ForbiddenByte { byte: b'\n', position: 1 };
            ConfigureContext { apn: "a\0b", ..CFG } => EncodeError::ForbiddenByte { byte: 0, position: 1 };
            ConfigureContext { apn: "\u{e9}", ..CFG } => EncodeError::ForbiddenByte { byte: 0xc3, position: 0 };
            ConfigureContext { apn: &too_long_apn, ..CFG } => EncodeError::TooLong { len: APN_MAX + 1, max: APN_MAX };
            ConfigureContext { user: "\"", ..CFG } => EncodeError::ForbiddenByte { byte: b'"', position: 0 };
            ConfigureContext { user: "x\r\nAT+QPOWD=1", ..CFG } => EncodeError::ForbiddenByte { byte: b'\r', position: 1 };
            ConfigureContext { user: &too_long_cred, ..CFG } => EncodeError::TooLong { len: CREDENTIAL_MAX + 1, max: CREDENTIAL_MAX };
            ConfigureContext { password: "pw\"", ..CFG } => EncodeError::ForbiddenByte { byte: b'"', position: 2 };
            ConfigureContext { password: "\x7f", ..CFG } => EncodeError::ForbiddenByte { byte: 0x7f, position: 0 };
            ConfigureContext { password: &too_long_cred, ..CFG } => EncodeError::TooLong { len: CREDENTIAL_MAX + 1, max: CREDENTIAL_MAX };
            GetContextConfig { cid: 0 } => EncodeError::OutOfRange { value: 0, min: 1, max: 16 };
            ActivateContext { cid: 0 } => EncodeError::OutOfRange { value: 0, min: 1, max: 16 };
            ActivateContext { cid: 255 } => EncodeError::OutOfRange { value: 255, min: 1, max: 16 };
            DeactivateContext { cid: 17 } => EncodeError::OutOfRange { value: 17, min: 1, max: 16 };
            SetPdpActivation { cid: 0, active: true } => EncodeError::OutOfRange { value: 0, min: 1, max: 16 };
        }
        let mut small = [0u8; 20];
        assert_eq!(
            encoded(&CFG, &mut small),
            Err(EncodeError::BufferTooSmall { capacity: 20 })
        );
    }

    #[test]
    fn timeouts_and_claimed_lines() {
        assert_eq!(
            ActivateContext { cid: 1 }.timeout(),
            Duration::from_secs(150)
        );
        assert_eq!(
            DeactivateContext { cid: 1 }.timeout(),
            Duration::from_secs(40)
        );
        assert_eq!(
            SetPdpActivation {
                cid: 1,
                active: false
            }
            .timeout(),
            Duration::from_secs(150)
        );
        assert_eq!(CFG.timeout(), DEFAULT_TIMEOUT);
        assert_eq!(LastError.timeout(), DEFAULT_TIMEOUT);
        assert_eq!(CFG.response_lines(), ResponseLines::None);
        assert_eq!(
            GetContextConfig { cid: 1 }.response_lines(),
            ResponseLines::Prefixed(b"+QICSGP:")
        );
        assert_eq!(
            ActiveContexts.response_lines(),
            ResponseLines::Prefixed(b"+QIACT:")
        );
        assert_eq!(
            PdpActivations.response_lines(),
            ResponseLines::Prefixed(b"+CGACT:")
        );
        assert_eq!(
            LastError.response_lines(),
            ResponseLines::Prefixed(b"+QIGETERROR:")
        );
        assert_eq!(
            ActivateContext { cid: 1 }.response_lines(),
            ResponseLines::None
        );
    }

    #[test]
    fn no_response_lines() {
        assert_eq!(parse(CFG, b""), Ok(()));
        assert_eq!(parse(ActivateContext { cid: 1 }, b""), Ok(()));
        assert_eq!(
            parse(DeactivateContext { cid: 1 }, b"x\n"),
            Err(ParseError::TrailingData)
        );
        assert_eq!(
            parse(
                SetPdpActivation {
                    cid: 1,
                    active: true
                },
                b""
            ),
            Ok(())
        );
    }

    #[test]
    fn codes_round_trip() {
        for c in 0..=255u8 {
            assert_eq!(PdpType::from_code(c).code(), c);
            assert_eq!(AuthMethod::from_code(c).code(), c);
            assert_eq!(PdpState::from_code(c).code(), c);
            assert_eq!(PdpState::from_code(c).is_active(), c == 1);
        }
    }

    #[test]
    fn context_config() {
        let g = GetContextConfig { cid: 1 };
        assert_eq!(
            parse(g, b"+QICSGP: 1,\"apn\",\"\",\"\",1\n"),
            Ok(ContextConfig {
                pdp_type: PdpType::Ipv4,
                apn: "apn",
                user: "",
                password: "",
                auth: AuthMethod::Pap
            })
        );
        let c = parse(g, b"+QICSGP: 3,\"a,b\",\"u\",\"p\",3,\"cdma\"\n").unwrap();
        assert_eq!(
            (c.pdp_type, c.apn, c.auth),
            (PdpType::Ipv4v6, "a,b", AuthMethod::PapOrChap)
        );
        let c = parse(g, b"+QICSGP: 0,\"\",\"\",\"\",0\n").unwrap();
        assert_eq!((c.pdp_type, c.auth), (PdpType::Other(0), AuthMethod::None));
        assert_eq!(
            parse(g, b"+QICSGP: 1,\"apn\"\n"),
            Err(ParseError::MissingField)
        );
        assert_eq!(
            parse(g, b"+QICSGP: 1,\"apn\n"),
            Err(ParseError::Unterminated)
        );
        assert_eq!(parse(g, b""), Err(ParseError::MissingLine));
    }

    #[test]
    fn active_contexts() {
        let list = parse(ActiveContexts, b"+QIACT: 1,1,1,\"10.187.7.8\"\n").unwrap();
        assert_eq!(list.len(), 1);
        let all: Vec<_> = list.collect();
        assert_eq!(
            all,
            [ContextState {
                cid: 1,
                state: PdpState::Activated,
                pdp_type: PdpType::Ipv4,
                ip: Some("10.187.7.8")
            }]
        );

        let stored = b"+QIACT: 1,1,1,\"10.187.7.8\"\n+QIACT: 9,0,3\n+QIACT: 2,1,2,\"\"\n";
        let list = parse(ActiveContexts, stored).unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list.get(9).map(|c| c.state), Some(PdpState::Deactivated));
        assert_eq!(list.get(9).map(|c| c.ip), Some(None));
        assert_eq!(list.get(2).map(|c| c.ip), Some(None));
        assert_eq!(list.get(3), None);
        let mut it = list;
        assert_eq!(it.next().map(|c| c.cid), Some(1));
        assert_eq!(it.len(), 2);
        assert_eq!(it.next().map(|c| c.cid), Some(9));
        assert_eq!(it.next().map(|c| c.pdp_type), Some(PdpType::Ipv6));
        assert_eq!(it.next(), None);
        assert_eq!(it.len(), 0);

        // A second address (dual stack) is ignored.
        let list = parse(
            ActiveContexts,
            b"+QIACT: 1,1,3,\"10.0.0.1\",\"2001:db8::1\"\n",
        )
        .unwrap();
        assert_eq!(list.get(1).and_then(|c| c.ip), Some("10.0.0.1"));

        let empty = parse(ActiveContexts, b"").unwrap();
        assert_eq!(empty.len(), 0);
        assert_eq!(empty.count(), 0);

        // One bad line fails the whole response.
        assert_eq!(
            parse(
                ActiveContexts,
                b"+QIACT: 1,1,1,\"10.0.0.1\"\n+QIACT: x,1,1\n"
            )
            .map(|l| l.len()),
            Err(ParseError::BadNumber)
        );
        assert_eq!(
            parse(ActiveContexts, b"+QIACT: 1,1\n").map(|l| l.len()),
            Err(ParseError::MissingField)
        );
        assert_eq!(
            parse(ActiveContexts, b"+CGACT: 1,1\n").map(|l| l.len()),
            Err(ParseError::UnexpectedLine)
        );
    }

    #[test]
    fn pdp_activations() {
        let list = parse(PdpActivations, b"+CGACT: 1,1\n+CGACT: 9,0\n+CGACT: 2,7\n").unwrap();
        assert_eq!(list.len(), 3);
        let all: Vec<_> = list.collect();
        assert_eq!(
            all,
            [
                PdpActivation {
                    cid: 1,
                    state: PdpState::Activated
                },
                PdpActivation {
                    cid: 9,
                    state: PdpState::Deactivated
                },
                PdpActivation {
                    cid: 2,
                    state: PdpState::Other(7)
                },
            ]
        );
        assert_eq!(list.get(9).map(|a| a.state.is_active()), Some(false));
        assert_eq!(list.get(1).map(|a| a.state.is_active()), Some(true));
        assert_eq!(parse(PdpActivations, b"").map(|l| l.len()), Ok(0));
        assert_eq!(
            parse(PdpActivations, b"+CGACT: 1,1,1\n").map(|l| l.len()),
            Err(ParseError::TrailingData)
        );
        assert_eq!(
            parse(PdpActivations, b"+CGACT: 1\n").map(|l| l.len()),
            Err(ParseError::MissingField)
        );
    }

    #[test]
    fn last_error() {
        assert_eq!(
            parse(LastError, b"+QIGETERROR: 572,operation not allowed\n"),
            Ok(TcpIpError {
                code: 572,
                text: "operation not allowed"
            })
        );
        assert_eq!(
            parse(LastError, b"+QIGETERROR: 0,\"operation success\"\n"),
            Ok(TcpIpError {
                code: 0,
                text: "operation success"
            })
        );
        assert_eq!(
            parse(LastError, b"+QIGETERROR: 561\n"),
            Ok(TcpIpError {
                code: 561,
                text: ""
            })
        );
        assert_eq!(
            parse(LastError, b"+QIGETERROR: 70000,x\n"),
            Err(ParseError::OutOfRange)
        );
        assert_eq!(parse(LastError, b""), Err(ParseError::MissingLine));
    }

    fn parse_all(bytes: &[u8]) {
        let l = || Lines::new(bytes);
        let _ = CFG.parse(l());
        let _ = GetContextConfig { cid: 1 }.parse(l());
        let _ = ActivateContext { cid: 1 }.parse(l());
        let _ = DeactivateContext { cid: 1 }.parse(l());
        if let Ok(list) = ActiveContexts.parse(l()) {
            let n = list.len();
            assert_eq!(list.count(), n);
        }
        if let Ok(list) = PdpActivations.parse(l()) {
            let n = list.len();
            assert_eq!(list.count(), n);
        }
        let _ = SetPdpActivation {
            cid: 1,
            active: true,
        }
        .parse(l());
        let _ = LastError.parse(l());
    }

    fn check_encode<C: AtCommand>(cmd: &C) -> Result<(), TestCaseError> {
        let mut buf = [0u8; 512];
        if let Ok(n) = encoded(cmd, &mut buf) {
            prop_assert!(well_formed(&buf[..n]), "{:?}", &buf[..n]);
        }
        let mut small = [0u8; 16];
        let _ = encoded(cmd, &mut small);
        Ok(())
    }

    proptest! {
        #[test]
        fn encode_never_breaks_the_line(
            apn in any::<String>(),
            user in any::<String>(),
            password in any::<String>(),
            cid in any::<u8>(),
            t in any::<u8>(),
            a in any::<u8>(),
            active in any::<bool>(),
        ) {
            let cfg = ConfigureContext {
                cid,
                pdp_type: PdpType::from_code(t),
                apn: &apn,
                user: &user,
                password: &password,
                auth: AuthMethod::from_code(a),
            };
            check_encode(&cfg)?;
            check_encode(&GetContextConfig { cid })?;
            check_encode(&ActivateContext { cid })?;
            check_encode(&DeactivateContext { cid })?;
            check_encode(&SetPdpActivation { cid, active })?;
            let mut buf = [0u8; 32];
            prop_assert_eq!(
                encoded(&ActivateContext { cid }, &mut buf).is_ok(),
                (CID_MIN..=CID_MAX).contains(&cid)
            );
        }

        #[test]
        fn printable_credentials_accepted(
            apn in "[ !#-~]{0,99}",
            user in "[ !#-~]{0,127}",
            cid in 1u8..=16,
        ) {
            let mut buf = [0u8; 512];
            let cfg = ConfigureContext { cid, apn: &apn, user: &user, password: &user, ..CFG };
            let n = encoded(&cfg, &mut buf);
            prop_assert!(n.is_ok());
            if let Ok(n) = n {
                prop_assert!(well_formed(&buf[..n]));
            }
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            parse_all(&bytes);
        }

        #[test]
        fn parse_never_panics_on_plausible_lines(
            lines in proptest::collection::vec(
                "(\\+QIACT: |\\+CGACT: |\\+QICSGP: |\\+QIGETERROR: |)[0-9a-z\", .]{0,24}\n",
                0..5,
            )
        ) {
            let joined: String = lines.concat();
            parse_all(joined.as_bytes());
        }
    }
}
