//! Data connection commands of SIMCom modules (`simcom-at.md` §1 and §2.3): `AT+NETOPEN`
//! (SIM7600, A76xx), `AT+CGACT`, `AT+CNCFG` and `AT+CNACT` (SIM7070/80/90, and SIM7000's own
//! `AT+CNACT` form), `AT+SAPBR` (the SIM800-style bearer).
//!
//! ```
//! use cellular_ota::at::{AtCommand, Encoder};
//! use cellular_ota::simcom::pdp::{Cnact, CnactAction, Sapbr};
//!
//! let mut buf = [0u8; 64];
//! let mut enc = Encoder::new(&mut buf);
//! Cnact { index: 0, action: CnactAction::Activate }.encode(&mut enc).unwrap();
//! assert_eq!(enc.as_bytes(), b"AT+CNACT=0,1");
//! let mut enc = Encoder::new(&mut buf);
//! Sapbr::SetApn { cid: 1, apn: "internet" }.encode(&mut enc).unwrap();
//! assert_eq!(enc.as_bytes(), b"AT+SAPBR=3,1,\"APN\",\"internet\"");
//! ```

use core::time::Duration;

use crate::at::{AtCommand, EncodeError, Encoder, Lines, ParseError, ResponseLines};

/// Longest APN, user name or password this crate sends (3GPP TS 23.003: an APN is at most
/// 100 octets).
pub const APN_MAX: usize = 100;

/// `AT+CGACT` may take this long (3GPP: up to 150 s for the network to answer).
pub const CGACT_TIMEOUT: Duration = Duration::from_secs(150);

/// `AT+NETOPEN` (SIM7600, A76xx): opens the socket service and activates the context set
/// with `AT+CGDCONT`. `OK` comes at once; `+NETOPEN: <err>`
/// ([`Urc::NetOpen`](super::urc::Urc::NetOpen)) says how it went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NetOpen;

impl AtCommand for NetOpen {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+NETOPEN")
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// `AT+NETOPEN?`: `+NETOPEN: <0|1>`; true when the socket service is open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NetOpenQuery;

impl AtCommand for NetOpenQuery {
    type Response<'a> = bool;
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+NETOPEN?")
    }
    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+NETOPEN:")
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<bool, ParseError> {
        let open = flag(lines.expect_prefixed(b"+NETOPEN:")?.u8()?)?;
        lines.end()?;
        Ok(open)
    }
}

fn flag(v: u8) -> Result<bool, ParseError> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(ParseError::UnexpectedValue),
    }
}

/// `AT+CGACT=<0|1>,<cid>`: activates or deactivates a PDP context (GSM/WCDMA on A76xx; LTE
/// activates the default bearer by itself). SIM7070 must not use it: `AT+CNACT` instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Cgact {
    /// Activate (true) or deactivate.
    pub active: bool,
    /// The context id, 1..=24.
    pub cid: u8,
}

impl AtCommand for Cgact {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+CGACT=")?;
        enc.u32(u32::from(self.active))?;
        enc.comma()?;
        enc.ranged(u32::from(self.cid), 1, 24)
    }
    fn timeout(&self) -> Duration {
        CGACT_TIMEOUT
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// The IP type of [`Cncfg`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum IpType {
    /// 0: dual stack.
    Dual = 0,
    /// 1: IPv4.
    V4 = 1,
    /// 2: IPv6.
    V6 = 2,
}

/// Credentials of [`Cncfg`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Credentials<'a> {
    /// User name.
    pub user: &'a str,
    /// Password.
    pub password: &'a str,
    /// 0 none, 1 PAP, 2 CHAP, 3 PAP or CHAP.
    pub auth: u8,
}

/// `AT+CNCFG=<index>,<ip_type>,"<apn>"[,"<user>","<password>",<auth>]` (SIM7070/80/90):
/// configures an application PDP context before [`Cnact`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Cncfg<'a> {
    /// PDP index, 0..=3.
    pub index: u8,
    /// IP type.
    pub ip_type: IpType,
    /// Access point name (may be empty: the network's default).
    pub apn: &'a str,
    /// User name, password and authentication, if the APN needs them.
    pub credentials: Option<Credentials<'a>>,
}

impl AtCommand for Cncfg<'_> {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+CNCFG=")?;
        enc.ranged(u32::from(self.index), 0, 3)?;
        enc.comma()?;
        enc.u32(self.ip_type as u32)?;
        enc.comma()?;
        enc.quoted(self.apn, APN_MAX)?;
        if let Some(c) = self.credentials {
            enc.comma()?;
            enc.quoted(c.user, APN_MAX)?;
            enc.comma()?;
            enc.quoted(c.password, APN_MAX)?;
            enc.comma()?;
            enc.ranged(u32::from(c.auth), 0, 3)?;
        }
        Ok(())
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// What [`Cnact`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CnactAction {
    /// 0.
    Deactivate = 0,
    /// 1.
    Activate = 1,
    /// 2: activate, and again whenever the network drops it.
    AutoActivate = 2,
}

/// `AT+CNACT=<index>,<action>` (SIM7070/80/90): `OK`, then
/// `+APP PDP: <index>,ACTIVE` ([`Urc::AppPdp`](super::urc::Urc::AppPdp)). TinyGSM waits up
/// to 60 s for the URC and retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Cnact {
    /// PDP index, 0..=3.
    pub index: u8,
    /// What to do.
    pub action: CnactAction,
}

impl AtCommand for Cnact {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+CNACT=")?;
        enc.ranged(u32::from(self.index), 0, 3)?;
        enc.comma()?;
        enc.u32(self.action as u32)
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// `AT+CNACT=<0|1>[,"<apn>"]` (SIM7000's form, without an index): `OK`, then
/// `+APP PDP: ACTIVE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CnactSim7000<'a> {
    /// Activate (true) or deactivate.
    pub active: bool,
    /// The APN (when activating).
    pub apn: Option<&'a str>,
}

impl AtCommand for CnactSim7000<'_> {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+CNACT=")?;
        enc.u32(u32::from(self.active))?;
        if let Some(apn) = self.apn {
            enc.comma()?;
            enc.quoted(apn, APN_MAX)?;
        }
        Ok(())
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// One line of `AT+CNACT?`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CnactEntry<'a> {
    /// PDP index (`None` on SIM7000, whose line has none).
    pub index: Option<u8>,
    /// 0 deactivated, 1 activated, 2 in operation.
    pub status: u8,
    /// The address, `0.0.0.0` when inactive.
    pub ip: &'a str,
}

/// `AT+CNACT?`: one `+CNACT: <index>,<status>,"<ip>"` line per index (SIM7070), or
/// `+CNACT: <status>,"<ip>"` (SIM7000). Answers the first active entry, or `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CnactQuery;

impl AtCommand for CnactQuery {
    type Response<'a> = Option<CnactEntry<'a>>;
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+CNACT?")
    }
    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+CNACT:")
    }
    fn parse<'a>(&self, lines: Lines<'a>) -> Result<Option<CnactEntry<'a>>, ParseError> {
        let mut active = None;
        for line in lines {
            let mut p = crate::at::params::Params::after(line, b"+CNACT:")
                .ok_or(ParseError::UnexpectedLine)?;
            let first = p.u8()?;
            let second = p.field()?;
            let entry = match second {
                crate::at::params::Field::Bare(b) => CnactEntry {
                    index: Some(first),
                    status: crate::at::params::parse_u32(b.as_bytes())?
                        .try_into()
                        .map_err(|_| ParseError::OutOfRange)?,
                    ip: p.str()?,
                },
                crate::at::params::Field::Quoted(ip) => CnactEntry {
                    index: None,
                    status: first,
                    ip,
                },
            };
            if active.is_none() && entry.status == 1 {
                active = Some(entry);
            }
        }
        Ok(active)
    }
}

/// `AT+SAPBR=<cmd>,<cid>[,...]`: the SIM800-style bearer (SIM800, early SIM7000 firmware).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Sapbr<'a> {
    /// `3,<cid>,"APN","<apn>"`.
    SetApn {
        /// Bearer id.
        cid: u8,
        /// The APN.
        apn: &'a str,
    },
    /// `1,<cid>`: open the bearer (up to 85 s).
    Open(u8),
    /// `0,<cid>`: close it (up to 65 s).
    Close(u8),
    /// `2,<cid>`: `+SAPBR: <cid>,<status>,"<ip>"` (status 0 connecting, 1 connected, 2
    /// closing, 3 closed).
    Query(u8),
}

/// The answer of [`Sapbr::Query`] (`None` for the other forms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BearerState<'a> {
    /// Bearer id.
    pub cid: u8,
    /// 0 connecting, 1 connected, 2 closing, 3 closed.
    pub status: u8,
    /// The address.
    pub ip: &'a str,
}

impl AtCommand for Sapbr<'_> {
    type Response<'a> = Option<BearerState<'a>>;
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+SAPBR=")?;
        let (cmd, cid) = match *self {
            Sapbr::SetApn { cid, .. } => (3, cid),
            Sapbr::Open(cid) => (1, cid),
            Sapbr::Close(cid) => (0, cid),
            Sapbr::Query(cid) => (2, cid),
        };
        enc.u32(cmd)?;
        enc.comma()?;
        enc.ranged(u32::from(cid), 1, 3)?;
        if let Sapbr::SetApn { apn, .. } = *self {
            enc.raw(b",\"APN\",")?;
            enc.quoted(apn, APN_MAX)?;
        }
        Ok(())
    }
    fn timeout(&self) -> Duration {
        match self {
            Sapbr::Open(_) => Duration::from_secs(85),
            Sapbr::Close(_) => Duration::from_secs(65),
            _ => crate::at::command::DEFAULT_TIMEOUT,
        }
    }
    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+SAPBR:")
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<Option<BearerState<'a>>, ParseError> {
        if !matches!(self, Sapbr::Query(_)) {
            lines.end()?;
            return Ok(None);
        }
        let mut p = lines.expect_prefixed(b"+SAPBR:")?;
        let state = BearerState {
            cid: p.u8()?,
            status: p.u8()?,
            ip: p.str()?,
        };
        lines.end()?;
        Ok(Some(state))
    }
}

/// `AT+CGDCONT=<cid>,"<type>","<apn>"` (3GPP TS 27.007): defines PDP context `cid`, which
/// `AT+HTTPINIT`, `AT+NETOPEN` and `AT+CGACT` use on SIM7600 and A76xx.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Cgdcont<'a> {
    /// Context id, 1..=24.
    pub cid: u8,
    /// IP version.
    pub ip_type: IpType,
    /// The APN.
    pub apn: &'a str,
}

impl AtCommand for Cgdcont<'_> {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+CGDCONT=")?;
        enc.ranged(u32::from(self.cid), 1, 24)?;
        enc.raw(match self.ip_type {
            IpType::V4 => b",\"IP\",",
            IpType::V6 => b",\"IPV6\",",
            IpType::Dual => b",\"IPV4V6\",",
        })?;
        enc.quoted(self.apn, APN_MAX)
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// `AT+CGPADDR=<cid>` (3GPP TS 27.007) → `+CGPADDR: <cid>,<address>`: the address of
/// context `cid` (quoted or not, as modules print it), `None` when the module gives none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Cgpaddr {
    /// Context id, 1..=24.
    pub cid: u8,
}

impl AtCommand for Cgpaddr {
    type Response<'a> = Option<&'a str>;
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+CGPADDR=")?;
        enc.ranged(u32::from(self.cid), 1, 24)
    }
    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+CGPADDR:")
    }
    fn parse<'a>(&self, lines: Lines<'a>) -> Result<Option<&'a str>, ParseError> {
        for line in lines {
            let mut p = crate::at::params::Params::after(line, b"+CGPADDR:")
                .ok_or(ParseError::UnexpectedLine)?;
            if p.u8()? == self.cid {
                let ip = p.str().unwrap_or("");
                return Ok((!ip.is_empty()).then_some(ip));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quectel::test_support::{encodes, refuses};

    #[test]
    fn reads_the_context_address() {
        assert_eq!(
            Cgpaddr { cid: 1 }.parse(Lines::new(b"+CGPADDR: 1,10.71.155.118")),
            Ok(Some("10.71.155.118"))
        );
        assert_eq!(
            Cgpaddr { cid: 2 }.parse(Lines::new(
                b"+CGPADDR: 1,\"10.0.0.1\"\n+CGPADDR: 2,\"10.0.0.2\""
            )),
            Ok(Some("10.0.0.2"))
        );
        assert_eq!(
            Cgpaddr { cid: 1 }.parse(Lines::new(b"+CGPADDR: 1,")),
            Ok(None)
        );
        assert_eq!(Cgpaddr { cid: 3 }.parse(Lines::new(b"")), Ok(None));
    }

    #[test]
    fn encodes_every_command() {
        encodes! {
            NetOpen => b"AT+NETOPEN";
            Cgpaddr { cid: 1 } => b"AT+CGPADDR=1";
            Cgdcont { cid: 1, ip_type: IpType::V4, apn: "internet" } =>
                b"AT+CGDCONT=1,\"IP\",\"internet\"";
            Cgdcont { cid: 2, ip_type: IpType::Dual, apn: "iot" } =>
                b"AT+CGDCONT=2,\"IPV4V6\",\"iot\"";
            NetOpenQuery => b"AT+NETOPEN?";
            Cgact { active: true, cid: 1 } => b"AT+CGACT=1,1";
            Cncfg { index: 0, ip_type: IpType::V4, apn: "iot.example", credentials: None } =>
                b"AT+CNCFG=0,1,\"iot.example\"";
            Cncfg { index: 1, ip_type: IpType::Dual, apn: "a",
                    credentials: Some(Credentials { user: "u", password: "p", auth: 3 }) } =>
                b"AT+CNCFG=1,0,\"a\",\"u\",\"p\",3";
            Cnact { index: 0, action: CnactAction::Activate } => b"AT+CNACT=0,1";
            CnactSim7000 { active: true, apn: Some("CMNET") } => b"AT+CNACT=1,\"CMNET\"";
            CnactQuery => b"AT+CNACT?";
            Sapbr::SetApn { cid: 1, apn: "CMNET" } => b"AT+SAPBR=3,1,\"APN\",\"CMNET\"";
            Sapbr::Open(1) => b"AT+SAPBR=1,1";
            Sapbr::Close(1) => b"AT+SAPBR=0,1";
            Sapbr::Query(1) => b"AT+SAPBR=2,1";
        }
        refuses! {
            Cgact { active: true, cid: 0 } => EncodeError::OutOfRange { value: 0, min: 1, max: 24 };
            Cncfg { index: 4, ip_type: IpType::V4, apn: "a", credentials: None } =>
                EncodeError::OutOfRange { value: 4, min: 0, max: 3 };
            Cncfg { index: 0, ip_type: IpType::V4, apn: "a\"\r\nAT+CFUN=0", credentials: None } =>
                EncodeError::ForbiddenByte { byte: b'"', position: 1 };
            Sapbr::SetApn { cid: 1, apn: "x\r" } => EncodeError::ForbiddenByte { byte: b'\r', position: 1 };
        }
    }

    #[test]
    fn parses_the_answers() {
        assert_eq!(NetOpenQuery.parse(Lines::new(b"+NETOPEN: 1")), Ok(true));
        // SIM7070: one line per index.
        let text = b"+CNACT: 0,1,\"10.94.36.44\"\n+CNACT: 1,0,\"0.0.0.0\"";
        assert_eq!(
            CnactQuery.parse(Lines::new(text)),
            Ok(Some(CnactEntry {
                index: Some(0),
                status: 1,
                ip: "10.94.36.44"
            }))
        );
        // SIM7000: no index.
        assert_eq!(
            CnactQuery.parse(Lines::new(b"+CNACT: 1,\"10.94.36.44\"")),
            Ok(Some(CnactEntry {
                index: None,
                status: 1,
                ip: "10.94.36.44"
            }))
        );
        assert_eq!(
            CnactQuery.parse(Lines::new(b"+CNACT: 0,0,\"0.0.0.0\"")),
            Ok(None)
        );
        assert_eq!(
            Sapbr::Query(1).parse(Lines::new(b"+SAPBR: 1,1,\"10.89.193.1\"")),
            Ok(Some(BearerState {
                cid: 1,
                status: 1,
                ip: "10.89.193.1"
            }))
        );
        assert_eq!(Sapbr::Open(1).parse(Lines::new(b"")), Ok(None));
    }
}
