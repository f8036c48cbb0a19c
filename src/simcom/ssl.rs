//! TLS settings of SIMCom modules (`simcom-at.md` §2.1 and §2.3): `AT+CSSLCFG` in its two
//! dialects and `AT+CCERTDOWN`.
//!
//! SIM7600 and A76xx take `"sslversion"`, `"authmode"`, `"cacert"`, `"enableSNI"` … for
//! contexts 0–9 ([`SslConfig`]); SIM7070/80/90 take lower-case `"sslversion"`,
//! `"ignorertctime"`, `"sni"` (the host *name*, not a flag) and `"convert"` for contexts 0–5
//! ([`Sim70SslConfig`]). Server verification is never switched off by this crate: a
//! configuration without a CA leaves the module's default, which the caller chose.
//!
//! ```
//! use cellular_ota::at::{AtCommand, Encoder};
//! use cellular_ota::simcom::ssl::{Sim70SslConfig, SslConfig};
//!
//! let mut buf = [0u8; 64];
//! let mut enc = Encoder::new(&mut buf);
//! SslConfig::EnableSni { ctx: 0, on: true }.encode(&mut enc).unwrap();
//! assert_eq!(enc.as_bytes(), b"AT+CSSLCFG=\"enableSNI\",0,1");
//! let mut enc = Encoder::new(&mut buf);
//! Sim70SslConfig::Sni { ctx: 0, host: "example.com" }.encode(&mut enc).unwrap();
//! assert_eq!(enc.as_bytes(), b"AT+CSSLCFG=\"sni\",0,\"example.com\"");
//! ```

use core::time::Duration;

use crate::at::{AtCommand, DataPhase, EncodeError, Encoder, Lines, ParseError};

/// Longest certificate file name this crate sends.
pub const CERT_NAME_MAX: usize = 64;

/// Largest certificate `AT+CCERTDOWN` takes (bytes).
pub const CERT_MAX: usize = 10_240;

/// The TLS version of [`SslConfig::SslVersion`] (SIM7600, A76xx).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SslVersion {
    /// 0: SSL 3.0.
    Ssl3 = 0,
    /// 1: TLS 1.0.
    Tls10 = 1,
    /// 2: TLS 1.1.
    Tls11 = 2,
    /// 3: TLS 1.2.
    Tls12 = 3,
    /// 4: all (the default).
    All = 4,
}

/// `AT+CSSLCFG=...` on SIM7600, A76xx and SIM767x (contexts 0–9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SslConfig<'a> {
    /// `"sslversion",<ctx>,<version>`.
    SslVersion {
        /// Context.
        ctx: u8,
        /// Version.
        version: SslVersion,
    },
    /// `"authmode",<ctx>,<mode>`: 0 none (the default), 1 server, 2 server and client,
    /// 3 client.
    AuthMode {
        /// Context.
        ctx: u8,
        /// Mode, 0..=3.
        mode: u8,
    },
    /// `"ignorelocaltime",<ctx>,<0|1>`: skip the certificates' date check.
    IgnoreLocalTime {
        /// Context.
        ctx: u8,
        /// Skip it.
        on: bool,
    },
    /// `"negotiatetime",<ctx>,<10..=300>`: seconds for the handshake.
    NegotiateTime {
        /// Context.
        ctx: u8,
        /// Seconds.
        secs: u16,
    },
    /// `"cacert",<ctx>,"<file>"`: the CA certificate (downloaded with [`CertDownload`]).
    CaCert {
        /// Context.
        ctx: u8,
        /// File name.
        file: &'a str,
    },
    /// `"clientcert",<ctx>,"<file>"`.
    ClientCert {
        /// Context.
        ctx: u8,
        /// File name.
        file: &'a str,
    },
    /// `"clientkey",<ctx>,"<file>"`.
    ClientKey {
        /// Context.
        ctx: u8,
        /// File name.
        file: &'a str,
    },
    /// `"enableSNI",<ctx>,<0|1>`: send the host name (servers with several names need it).
    EnableSni {
        /// Context.
        ctx: u8,
        /// Send it.
        on: bool,
    },
}

impl AtCommand for SslConfig<'_> {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+CSSLCFG=\"")?;
        let (key, ctx): (&[u8], u8) = match *self {
            SslConfig::SslVersion { ctx, .. } => (b"sslversion", ctx),
            SslConfig::AuthMode { ctx, .. } => (b"authmode", ctx),
            SslConfig::IgnoreLocalTime { ctx, .. } => (b"ignorelocaltime", ctx),
            SslConfig::NegotiateTime { ctx, .. } => (b"negotiatetime", ctx),
            SslConfig::CaCert { ctx, .. } => (b"cacert", ctx),
            SslConfig::ClientCert { ctx, .. } => (b"clientcert", ctx),
            SslConfig::ClientKey { ctx, .. } => (b"clientkey", ctx),
            SslConfig::EnableSni { ctx, .. } => (b"enableSNI", ctx),
        };
        enc.raw(key)?;
        enc.raw(b"\",")?;
        enc.ranged(u32::from(ctx), 0, 9)?;
        enc.comma()?;
        match *self {
            SslConfig::SslVersion { version, .. } => enc.u32(version as u32),
            SslConfig::AuthMode { mode, .. } => enc.ranged(u32::from(mode), 0, 3),
            SslConfig::IgnoreLocalTime { on, .. } | SslConfig::EnableSni { on, .. } => {
                enc.u32(u32::from(on))
            }
            SslConfig::NegotiateTime { secs, .. } => enc.ranged(u32::from(secs), 10, 300),
            SslConfig::CaCert { file, .. }
            | SslConfig::ClientCert { file, .. }
            | SslConfig::ClientKey { file, .. } => cert_name(enc, file),
        }
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

fn cert_name(enc: &mut Encoder<'_>, file: &str) -> Result<(), EncodeError> {
    super::quoted_file_name(enc, file, CERT_NAME_MAX)
}

/// What [`Sim70SslConfig::Convert`] converts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConvertKind {
    /// 1: a certificate (and its key).
    Certificate = 1,
    /// 2: a CA list.
    CaList = 2,
    /// 3: a PSK table.
    PskTable = 3,
}

/// `AT+CSSLCFG=...` on SIM7070/80/90 (contexts 0–5; keys in lower case, which TinyGSM
/// found the modules need).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Sim70SslConfig<'a> {
    /// `"sslversion",<ctx>,<0..=5>`: 0 unknown, 1 TLS 1.0, 2 TLS 1.1, 3 TLS 1.2, 4 DTLS 1.0,
    /// 5 DTLS 1.2.
    SslVersion {
        /// Context.
        ctx: u8,
        /// Version, 0..=5.
        version: u8,
    },
    /// `"ignorertctime",<ctx>,<0|1>`: skip the certificates' date check.
    IgnoreRtcTime {
        /// Context.
        ctx: u8,
        /// Skip it.
        on: bool,
    },
    /// `"sni",<ctx>,"<host>"`: the server name to send (`"sni",0,1` would send the name
    /// "1", LilyGo#408).
    Sni {
        /// Context.
        ctx: u8,
        /// Host name.
        host: &'a str,
    },
    /// `"convert",<kind>,"<name>"[,"<key>"]`: converts an uploaded file for use.
    Convert {
        /// What it is.
        kind: ConvertKind,
        /// The file.
        name: &'a str,
        /// The key file of a certificate.
        key: Option<&'a str>,
    },
}

impl AtCommand for Sim70SslConfig<'_> {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+CSSLCFG=")?;
        match *self {
            Sim70SslConfig::SslVersion { ctx, version } => {
                enc.raw(b"\"sslversion\",")?;
                enc.ranged(u32::from(ctx), 0, 5)?;
                enc.comma()?;
                enc.ranged(u32::from(version), 0, 5)
            }
            Sim70SslConfig::IgnoreRtcTime { ctx, on } => {
                enc.raw(b"\"ignorertctime\",")?;
                enc.ranged(u32::from(ctx), 0, 5)?;
                enc.comma()?;
                enc.u32(u32::from(on))
            }
            Sim70SslConfig::Sni { ctx, host } => {
                if host.is_empty() {
                    return Err(EncodeError::Empty);
                }
                enc.raw(b"\"sni\",")?;
                enc.ranged(u32::from(ctx), 0, 5)?;
                enc.comma()?;
                enc.quoted(host, 255)
            }
            Sim70SslConfig::Convert { kind, name, key } => {
                enc.raw(b"\"convert\",")?;
                enc.u32(kind as u32)?;
                enc.comma()?;
                cert_name(enc, name)?;
                if let Some(key) = key {
                    enc.comma()?;
                    cert_name(enc, key)?;
                }
                Ok(())
            }
        }
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// `AT+CCERTDOWN="<name>",<len>` then, at the `>` prompt, the certificate's bytes
/// (SIM7600, A76xx). The name ends in `.pem` or `.der`; 1..=[`CERT_MAX`] bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CertDownload<'a> {
    /// File name.
    pub name: &'a str,
    /// The certificate.
    pub data: &'a [u8],
}

impl AtCommand for CertDownload<'_> {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        let lower = |ext: &str| {
            self.name.len() > ext.len()
                && self.name.as_bytes()[self.name.len() - ext.len()..]
                    .eq_ignore_ascii_case(ext.as_bytes())
        };
        if !lower(".pem") && !lower(".der") {
            return Err(EncodeError::Invalid(
                "AT+CCERTDOWN takes a .pem or .der file name",
            ));
        }
        if self.data.is_empty() {
            return Err(EncodeError::Empty);
        }
        if self.data.len() > CERT_MAX {
            return Err(EncodeError::TooLong {
                len: self.data.len(),
                max: CERT_MAX,
            });
        }
        enc.raw(b"AT+CCERTDOWN=")?;
        cert_name(enc, self.name)?;
        enc.comma()?;
        enc.u32(self.data.len() as u32)
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(30)
    }
    fn data(&self) -> DataPhase<'_> {
        DataPhase::Send(self.data)
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
    fn encodes_both_dialects() {
        encodes! {
            SslConfig::SslVersion { ctx: 0, version: SslVersion::Tls12 } =>
                b"AT+CSSLCFG=\"sslversion\",0,3";
            SslConfig::AuthMode { ctx: 9, mode: 1 } => b"AT+CSSLCFG=\"authmode\",9,1";
            SslConfig::IgnoreLocalTime { ctx: 0, on: true } => b"AT+CSSLCFG=\"ignorelocaltime\",0,1";
            SslConfig::NegotiateTime { ctx: 0, secs: 300 } => b"AT+CSSLCFG=\"negotiatetime\",0,300";
            SslConfig::CaCert { ctx: 0, file: "ca.pem" } => b"AT+CSSLCFG=\"cacert\",0,\"ca.pem\"";
            SslConfig::ClientCert { ctx: 0, file: "c.pem" } => b"AT+CSSLCFG=\"clientcert\",0,\"c.pem\"";
            SslConfig::ClientKey { ctx: 0, file: "k.pem" } => b"AT+CSSLCFG=\"clientkey\",0,\"k.pem\"";
            SslConfig::EnableSni { ctx: 1, on: false } => b"AT+CSSLCFG=\"enableSNI\",1,0";
            Sim70SslConfig::SslVersion { ctx: 1, version: 3 } => b"AT+CSSLCFG=\"sslversion\",1,3";
            Sim70SslConfig::IgnoreRtcTime { ctx: 1, on: true } => b"AT+CSSLCFG=\"ignorertctime\",1,1";
            Sim70SslConfig::Sni { ctx: 1, host: "example.com" } => b"AT+CSSLCFG=\"sni\",1,\"example.com\"";
            Sim70SslConfig::Convert { kind: ConvertKind::CaList, name: "ca.cer", key: None } =>
                b"AT+CSSLCFG=\"convert\",2,\"ca.cer\"";
            Sim70SslConfig::Convert { kind: ConvertKind::Certificate, name: "c.crt", key: Some("k.key") } =>
                b"AT+CSSLCFG=\"convert\",1,\"c.crt\",\"k.key\"";
            CertDownload { name: "ca.pem", data: b"-----BEGIN" } => b"AT+CCERTDOWN=\"ca.pem\",10";
        }
        refuses! {
            SslConfig::AuthMode { ctx: 10, mode: 1 } => EncodeError::OutOfRange { value: 10, min: 0, max: 9 };
            SslConfig::NegotiateTime { ctx: 0, secs: 9 } => EncodeError::OutOfRange { value: 9, min: 10, max: 300 };
            SslConfig::CaCert { ctx: 0, file: "../ca.pem" } => EncodeError::ForbiddenByte { byte: b'/', position: 2 };
            SslConfig::CaCert { ctx: 0, file: "c\"a" } => EncodeError::ForbiddenByte { byte: b'"', position: 1 };
            Sim70SslConfig::SslVersion { ctx: 6, version: 3 } => EncodeError::OutOfRange { value: 6, min: 0, max: 5 };
            Sim70SslConfig::Sni { ctx: 0, host: "" } => EncodeError::Empty;
            CertDownload { name: "ca.txt", data: b"x" } =>
                EncodeError::Invalid("AT+CCERTDOWN takes a .pem or .der file name");
            CertDownload { name: "ca.pem", data: b"" } => EncodeError::Empty;
        }
        let big = [0u8; CERT_MAX + 1];
        refuses! {
            CertDownload { name: "ca.der", data: &big } => EncodeError::TooLong { len: CERT_MAX + 1, max: CERT_MAX };
        }
    }
}
