//! `AT+QSSLCFG`: the SSL/TLS contexts that HTTPS uses (quectel-at.md §6, §4.10).
//!
//! Form: `AT+QSSLCFG="<name>",<ctx>[,<value>]` with `<ctx>` 0..=5; the value omitted reads
//! the setting back. Bind a context to HTTP with
//! [`HttpConfig::SslContextId`](super::http::HttpConfig::SslContextId). Settings are not kept
//! across reboot on EG800K (§6), so configure them in every session. Both commands answer
//! within [`DEFAULT_TIMEOUT`] (§9: 300 ms by specification, 1–5 s in practice).

use core::time::Duration;

use crate::at::ParseError;
use crate::at::command::{AtCommand, DEFAULT_TIMEOUT, EncodeError, Encoder, Lines, ResponseLines};
use crate::at::params::{parse_hex, parse_u32};

use super::http::{MAX_FILE_NAME_LEN, check_file_name};

/// Highest SSL context id (§6: 0–5).
pub const MAX_SSL_CONTEXT: u8 = 5;

/// Bounds this crate accepts for `"negotiatetime"` in seconds. The reference gives only the
/// default (300 s on EG800K, §6); 10..=300 keeps a handshake timeout that is neither too
/// short for a slow cellular link nor longer than the module default.
pub const NEGOTIATE_TIME_SECS: core::ops::RangeInclusive<u16> = 10..=300;

/// The cipher-suite id meaning "all suites the module supports" (§6).
pub const CIPHER_SUITE_ALL: u16 = 0xFFFF;

/// `"sslversion"` values (§6; the 0–4 mapping is unconfirmed: from memory of the SSL note).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SslVersion {
    /// 0: SSL 3.0.
    Ssl3 = 0,
    /// 1: TLS 1.0.
    Tls1_0 = 1,
    /// 2: TLS 1.1.
    Tls1_1 = 2,
    /// 3: TLS 1.2.
    Tls1_2 = 3,
    /// 4: all versions (widely used).
    All = 4,
}

/// `"seclevel"` values (§6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SecLevel {
    /// 0: no authentication (the server certificate is not checked).
    None = 0,
    /// 1: verify the server with `"cacert"`.
    VerifyServer = 1,
    /// 2: mutual authentication (also `"clientcert"` and `"clientkey"`).
    Mutual = 2,
}

/// One `AT+QSSLCFG` setting with its value (§6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SslConfig<'a> {
    /// `"sslversion",<0..=4>`.
    SslVersion(SslVersion),
    /// `"ciphersuite",0X<hex>`: one suite id, or [`CIPHER_SUITE_ALL`]. Written as four
    /// upper-case hex digits with a `0X` prefix. Quoting differs per module (§6): BG96 and
    /// EG800K take it unquoted (`0XFFFF`, `quoted: false`, the usual choice); UC20 needed
    /// `"0XFFFF"` (`quoted: true`).
    CipherSuite {
        /// The suite id.
        id: u16,
        /// Write the value in quotes.
        quoted: bool,
    },
    /// `"seclevel",<0..=2>`.
    SecLevel(SecLevel),
    /// `"cacert","<file>"`: the CA certificate file (upload with `AT+QFUPL` first), e.g.
    /// `UFS:cacert.pem`. Checked with [`check_file_name`].
    CaCert(&'a str),
    /// `"clientcert","<file>"`: the client certificate file for mutual authentication.
    ClientCert(&'a str),
    /// `"clientkey","<file>"`: the client key file for mutual authentication.
    ClientKey(&'a str),
    /// `"sni",<0|1>`: send the server name (factory default 0 on EG800K; without it servers
    /// hosting several names may present the wrong certificate, error 566).
    Sni(bool),
    /// `"ignorelocaltime",<0|1>`: 1 = do not check certificate validity dates against the
    /// module clock (EG800K factory value 1).
    IgnoreLocalTime(bool),
    /// `"negotiatetime",<s>`: handshake timeout in seconds, within
    /// [`NEGOTIATE_TIME_SECS`].
    NegotiateTime(u16),
}

impl SslConfig<'_> {
    /// The setting's name.
    pub const fn name(&self) -> SslConfigName {
        match self {
            SslConfig::SslVersion(_) => SslConfigName::SslVersion,
            SslConfig::CipherSuite { .. } => SslConfigName::CipherSuite,
            SslConfig::SecLevel(_) => SslConfigName::SecLevel,
            SslConfig::CaCert(_) => SslConfigName::CaCert,
            SslConfig::ClientCert(_) => SslConfigName::ClientCert,
            SslConfig::ClientKey(_) => SslConfigName::ClientKey,
            SslConfig::Sni(_) => SslConfigName::Sni,
            SslConfig::IgnoreLocalTime(_) => SslConfigName::IgnoreLocalTime,
            SslConfig::NegotiateTime(_) => SslConfigName::NegotiateTime,
        }
    }
}

/// The name of an `AT+QSSLCFG` setting, for [`QuerySslConfig`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SslConfigName {
    /// `"sslversion"`
    SslVersion,
    /// `"ciphersuite"`
    CipherSuite,
    /// `"seclevel"`
    SecLevel,
    /// `"cacert"`
    CaCert,
    /// `"clientcert"`
    ClientCert,
    /// `"clientkey"`
    ClientKey,
    /// `"sni"`
    Sni,
    /// `"ignorelocaltime"`
    IgnoreLocalTime,
    /// `"negotiatetime"`
    NegotiateTime,
}

impl SslConfigName {
    /// The name as written in the command, without quotes.
    pub const fn as_str(self) -> &'static str {
        match self {
            SslConfigName::SslVersion => "sslversion",
            SslConfigName::CipherSuite => "ciphersuite",
            SslConfigName::SecLevel => "seclevel",
            SslConfigName::CaCert => "cacert",
            SslConfigName::ClientCert => "clientcert",
            SslConfigName::ClientKey => "clientkey",
            SslConfigName::Sni => "sni",
            SslConfigName::IgnoreLocalTime => "ignorelocaltime",
            SslConfigName::NegotiateTime => "negotiatetime",
        }
    }
}

fn write_head(enc: &mut Encoder<'_>, name: SslConfigName, ctx: u8) -> Result<(), EncodeError> {
    enc.raw(b"AT+QSSLCFG=\"")?;
    enc.raw(name.as_str().as_bytes())?;
    enc.raw(b"\",")?;
    enc.ranged(u32::from(ctx), 0, u32::from(MAX_SSL_CONTEXT))
}

fn write_hex4(enc: &mut Encoder<'_>, id: u16) -> Result<(), EncodeError> {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = *b"0X0000";
    for (i, slot) in out[2..].iter_mut().enumerate() {
        let shift = 12 - 4 * i;
        *slot = DIGITS[usize::from((id >> shift) & 0xF)];
    }
    enc.raw(&out)
}

/// `AT+QSSLCFG="<name>",<ctx>,<value>`: sets one setting of SSL context `ctx` (0..=5)
/// (§6). Answers `OK`; no response lines. Timeout: [`DEFAULT_TIMEOUT`].
///
/// ```
/// use cellular_ota::at::command::Encoder;
/// use cellular_ota::at::AtCommand;
/// use cellular_ota::quectel::ssl::{SetSslConfig, SslConfig, SecLevel};
/// let mut buf = [0u8; 64];
/// let mut enc = Encoder::new(&mut buf);
/// SetSslConfig { ctx: 1, config: SslConfig::SecLevel(SecLevel::VerifyServer) }.encode(&mut enc).unwrap();
/// assert_eq!(enc.as_bytes(), b"AT+QSSLCFG=\"seclevel\",1,1");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SetSslConfig<'a> {
    /// The SSL context, 0..=5.
    pub ctx: u8,
    /// The setting and its value.
    pub config: SslConfig<'a>,
}

impl AtCommand for SetSslConfig<'_> {
    type Response<'a> = ();

    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        if let SslConfig::CaCert(f) | SslConfig::ClientCert(f) | SslConfig::ClientKey(f) =
            self.config
        {
            check_file_name(f)?;
        }
        write_head(enc, self.config.name(), self.ctx)?;
        enc.comma()?;
        match self.config {
            SslConfig::SslVersion(v) => enc.u32(v as u32),
            SslConfig::SecLevel(l) => enc.u32(l as u32),
            SslConfig::CipherSuite { id, quoted } => {
                if quoted {
                    enc.raw(b"\"")?;
                }
                write_hex4(enc, id)?;
                if quoted {
                    enc.raw(b"\"")?;
                }
                Ok(())
            }
            SslConfig::CaCert(f) | SslConfig::ClientCert(f) | SslConfig::ClientKey(f) => {
                enc.quoted(f, MAX_FILE_NAME_LEN)
            }
            SslConfig::Sni(on) | SslConfig::IgnoreLocalTime(on) => {
                enc.raw(if on { b"1" } else { b"0" })
            }
            SslConfig::NegotiateTime(s) => enc.ranged(
                u32::from(s),
                u32::from(*NEGOTIATE_TIME_SECS.start()),
                u32::from(*NEGOTIATE_TIME_SECS.end()),
            ),
        }
    }

    fn timeout(&self) -> Duration {
        DEFAULT_TIMEOUT
    }

    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// `AT+QSSLCFG="<name>",<ctx>`: reads one setting of SSL context `ctx` (§6). Response
/// `+QSSLCFG: "<name>",<ctx>,<value>` → [`SslConfigValue`]; the value is accepted quoted or
/// not (`0XFFFF` and `"0XFFFF"`, `"UFS:cacert.pem"`). Timeout: [`DEFAULT_TIMEOUT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QuerySslConfig {
    /// The SSL context, 0..=5.
    pub ctx: u8,
    /// The setting to read.
    pub name: SslConfigName,
}

/// The answer to [`QuerySslConfig`]: the value as the modem wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SslConfigValue<'a> {
    /// The setting name as echoed by the modem (quotes removed).
    pub name: &'a str,
    /// The context the modem reported.
    pub ctx: u8,
    /// The first value field, quotes removed; empty if the modem sent none.
    pub value: &'a str,
    /// A second value field, if the modem sent one. Further fields are ignored.
    pub extra: Option<&'a str>,
}

impl SslConfigValue<'_> {
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

    /// The value as a hexadecimal cipher-suite id (`0XFFFF`, `0x0035` or `FFFF`), if it is
    /// one.
    pub fn cipher_suite(&self) -> Option<u16> {
        let t = self.value.as_bytes();
        let t = match t {
            [b'0', b'x' | b'X', rest @ ..] => rest,
            t => t,
        };
        parse_hex(t).ok().and_then(|v| u16::try_from(v).ok())
    }
}

impl AtCommand for QuerySslConfig {
    type Response<'a> = SslConfigValue<'a>;

    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        write_head(enc, self.name, self.ctx)
    }

    fn timeout(&self) -> Duration {
        DEFAULT_TIMEOUT
    }

    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+QSSLCFG:")
    }

    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<SslConfigValue<'a>, ParseError> {
        let mut p = lines.expect_prefixed(b"+QSSLCFG:")?;
        let name = p.str()?;
        if !name.eq_ignore_ascii_case(self.name.as_str()) {
            return Err(ParseError::UnexpectedLine);
        }
        let ctx = p.u8()?;
        if ctx != self.ctx {
            return Err(ParseError::UnexpectedValue);
        }
        let value = p.opt_str()?.unwrap_or("");
        let extra = p.opt_str()?;
        lines.end()?;
        Ok(SslConfigValue {
            name,
            ctx,
            value,
            extra,
        })
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
        let mut buf = [0u8; 256];
        let mut e = Encoder::new(&mut buf);
        c.encode(&mut e)?;
        Ok(e.as_bytes().to_vec())
    }

    macro_rules! encodes {
        ($($ctx:expr, $cfg:expr => $bytes:expr;)*) => {$(
            let cmd = SetSslConfig { ctx: $ctx, config: $cfg };
            assert_eq!(
                enc(&cmd).map(|v| String::from_utf8(v).unwrap()),
                Ok(String::from($bytes)),
                "{:?}", cmd
            );
        )*};
    }

    macro_rules! refuses {
        ($($ctx:expr, $cfg:expr => $err:pat),* $(,)?) => {$(
            let cmd = SetSslConfig { ctx: $ctx, config: $cfg };
            let r = enc(&cmd);
            assert!(matches!(r, Err($err)), "{:?} gave {:?}", cmd, r);
        )*};
    }

    fn one_at_line(out: &[u8]) {
        assert!(out.starts_with(b"AT"));
        assert!(!out.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0 | b';')));
        assert_eq!(out.iter().filter(|&&b| b == b'"').count() % 2, 0);
    }

    #[test]
    fn set_encodings() {
        encodes! {
            1, SslConfig::SslVersion(SslVersion::All) => "AT+QSSLCFG=\"sslversion\",1,4";
            0, SslConfig::SslVersion(SslVersion::Ssl3) => "AT+QSSLCFG=\"sslversion\",0,0";
            5, SslConfig::SslVersion(SslVersion::Tls1_2) => "AT+QSSLCFG=\"sslversion\",5,3";
            1, SslConfig::CipherSuite { id: CIPHER_SUITE_ALL, quoted: false } => "AT+QSSLCFG=\"ciphersuite\",1,0XFFFF";
            1, SslConfig::CipherSuite { id: CIPHER_SUITE_ALL, quoted: true } => "AT+QSSLCFG=\"ciphersuite\",1,\"0XFFFF\"";
            2, SslConfig::CipherSuite { id: 0x0035, quoted: false } => "AT+QSSLCFG=\"ciphersuite\",2,0X0035";
            2, SslConfig::CipherSuite { id: 0xC02F, quoted: false } => "AT+QSSLCFG=\"ciphersuite\",2,0XC02F";
            1, SslConfig::SecLevel(SecLevel::None) => "AT+QSSLCFG=\"seclevel\",1,0";
            1, SslConfig::SecLevel(SecLevel::Mutual) => "AT+QSSLCFG=\"seclevel\",1,2";
            1, SslConfig::CaCert("UFS:cacert.pem") => "AT+QSSLCFG=\"cacert\",1,\"UFS:cacert.pem\"";
            1, SslConfig::ClientCert("UFS:client.pem") => "AT+QSSLCFG=\"clientcert\",1,\"UFS:client.pem\"";
            1, SslConfig::ClientKey("user_key.pem") => "AT+QSSLCFG=\"clientkey\",1,\"user_key.pem\"";
            1, SslConfig::Sni(true) => "AT+QSSLCFG=\"sni\",1,1";
            1, SslConfig::IgnoreLocalTime(false) => "AT+QSSLCFG=\"ignorelocaltime\",1,0";
            1, SslConfig::NegotiateTime(300) => "AT+QSSLCFG=\"negotiatetime\",1,300";
            1, SslConfig::NegotiateTime(10) => "AT+QSSLCFG=\"negotiatetime\",1,10";
        }
        let q = QuerySslConfig {
            ctx: 1,
            name: SslConfigName::SslVersion,
        };
        assert_eq!(enc(&q).unwrap(), b"AT+QSSLCFG=\"sslversion\",1");
        let q = QuerySslConfig {
            ctx: 0,
            name: SslConfigName::IgnoreLocalTime,
        };
        assert_eq!(enc(&q).unwrap(), b"AT+QSSLCFG=\"ignorelocaltime\",0");
        assert_eq!(q.timeout(), DEFAULT_TIMEOUT);
        assert_eq!(
            SetSslConfig {
                ctx: 0,
                config: SslConfig::Sni(true)
            }
            .response_lines(),
            ResponseLines::None
        );
    }

    #[test]
    fn set_refusals() {
        let long = std::format!("UFS:{}", "a".repeat(80));
        refuses! {
            6, SslConfig::Sni(true) => EncodeError::OutOfRange { value: 6, min: 0, max: 5 },
            255, SslConfig::SecLevel(SecLevel::None) => EncodeError::OutOfRange { value: 255, .. },
            1, SslConfig::NegotiateTime(9) => EncodeError::OutOfRange { value: 9, min: 10, max: 300 },
            1, SslConfig::NegotiateTime(301) => EncodeError::OutOfRange { value: 301, .. },
            1, SslConfig::CaCert("UFS:ca\".pem") => EncodeError::ForbiddenByte { byte: b'"', position: 6 },
            1, SslConfig::CaCert("UFS:ca.pem\r\nAT+QPOWD") => EncodeError::ForbiddenByte { byte: b'\r', position: 10 },
            1, SslConfig::ClientCert("") => EncodeError::Empty,
            1, SslConfig::ClientKey("UFS:") => EncodeError::Empty,
            1, SslConfig::ClientKey("UFS:a b") => EncodeError::ForbiddenByte { byte: b' ', .. },
            1, SslConfig::ClientKey("UFS:\0") => EncodeError::ForbiddenByte { byte: 0, .. },
            1, SslConfig::CaCert(long.as_str()) => EncodeError::TooLong { len: 84, max: 80 },
        }
        // A bad file name is refused even when the context is bad too: nothing is written.
        let mut buf = [0u8; 64];
        let mut e = Encoder::new(&mut buf);
        assert!(
            SetSslConfig {
                ctx: 9,
                config: SslConfig::CaCert("a\"")
            }
            .encode(&mut e)
            .is_err()
        );
        assert!(e.is_empty());
        assert!(
            enc(&QuerySslConfig {
                ctx: 6,
                name: SslConfigName::Sni
            })
            .is_err()
        );
    }

    #[test]
    fn query_parse() {
        let q = |name| QuerySslConfig { ctx: 1, name };
        let v = q(SslConfigName::SslVersion)
            .parse(Lines::new(b"+QSSLCFG: \"sslversion\",1,4\n"))
            .unwrap();
        assert_eq!(
            (v.name, v.ctx, v.value, v.number()),
            ("sslversion", 1, "4", Some(4))
        );
        for line in [
            &b"+QSSLCFG: \"ciphersuite\",1,0XFFFF\n"[..],
            b"+QSSLCFG: \"ciphersuite\",1,\"0XFFFF\"\n",
            b"+QSSLCFG: \"ciphersuite\",1,0xffff\n",
        ] {
            let v = q(SslConfigName::CipherSuite)
                .parse(Lines::new(line))
                .unwrap();
            assert_eq!(v.cipher_suite(), Some(0xFFFF));
        }
        let v = q(SslConfigName::CaCert)
            .parse(Lines::new(b"+QSSLCFG: \"cacert\",1,\"UFS:cacert.pem\"\n"))
            .unwrap();
        assert_eq!(
            (v.value, v.number(), v.cipher_suite()),
            ("UFS:cacert.pem", None, None)
        );
        let v = q(SslConfigName::Sni)
            .parse(Lines::new(b"+QSSLCFG: sni,1,0\n"))
            .unwrap();
        assert_eq!(v.flag(), Some(false));
        let v = q(SslConfigName::CaCert)
            .parse(Lines::new(b"+QSSLCFG: \"cacert\",1\n"))
            .unwrap();
        assert_eq!((v.value, v.extra), ("", None));
        assert_eq!(
            q(SslConfigName::Sni).parse(Lines::new(b"+QSSLCFG: \"sni\",2,0\n")),
            Err(ParseError::UnexpectedValue)
        );
        assert_eq!(
            q(SslConfigName::Sni).parse(Lines::new(b"+QSSLCFG: \"seclevel\",1,0\n")),
            Err(ParseError::UnexpectedLine)
        );
        assert_eq!(
            q(SslConfigName::Sni).parse(Lines::new(b"")),
            Err(ParseError::MissingLine)
        );
        assert_eq!(
            q(SslConfigName::Sni).parse(Lines::new(b"+QSSLCFG: \"sni\",x,0\n")),
            Err(ParseError::BadNumber)
        );
    }

    proptest! {
        #[test]
        fn prop_encode_never_breaks_the_line(s in ".{0,100}", t in "[ -~\\r\\n\"]{0,40}", ctx in any::<u8>(), n in any::<u16>(), q in any::<bool>()) {
            for f in [s.as_str(), t.as_str()] {
                for config in [
                    SslConfig::CaCert(f),
                    SslConfig::ClientCert(f),
                    SslConfig::ClientKey(f),
                    SslConfig::CipherSuite { id: n, quoted: q },
                    SslConfig::NegotiateTime(n),
                    SslConfig::Sni(q),
                ] {
                    if let Ok(out) = enc(&SetSslConfig { ctx, config }) {
                        one_at_line(&out);
                    }
                }
            }
            if let Ok(out) = enc(&QuerySslConfig { ctx, name: SslConfigName::CaCert }) {
                one_at_line(&out);
            }
        }

        #[test]
        fn prop_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200), ctx in 0u8..6) {
            let v = QuerySslConfig { ctx, name: SslConfigName::CipherSuite }.parse(Lines::new(&bytes));
            if let Ok(v) = v {
                let _ = (v.number(), v.flag(), v.cipher_suite());
            }
            let _ = SetSslConfig { ctx, config: SslConfig::Sni(true) }.parse(Lines::new(&bytes));
        }
    }
}
