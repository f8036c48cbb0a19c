//! The update flow's [`HttpModem`] for SIMCom modules: `AT+HTTP*` on SIM7600, A76xx /
//! SIM767x and the SIM800-style set, `AT+SH*` on SIM7000 (newer firmware) and
//! SIM7070/7080/7090.
//!
//! # How the body is read
//!
//! The modules hold the response and hand it out per read command, `OK` first and then
//! counted pieces (`simcom-at.md` §2.1.1, §2.3), which the engine frames by byte count. One
//! [`SimcomBody`] runs as many reads as the body needs and lends each piece's bytes straight
//! from the receive buffer:
//!
//! | family | read | per command |
//! |---|---|---|
//! | SIM7600, A76xx | `AT+HTTPREAD=<offset>,<n>` | [`SimcomHttp::with_read_size`], 1024 by default (what working drivers use; no maximum is documented) |
//! | SIM800-style | `AT+HTTPREAD` | the whole body (the only form the reference documents) |
//! | `AT+SH*` | `AT+SHREAD=0,<len>` | the whole body (the module splits it into pieces of at most 2048) |
//!
//! Whether `AT+HTTPREAD` offsets count from the start of the body or the module drops what
//! was read (so the offset stays 0) is unresolved in the sources (§2.1.1; LilyGo reads at
//! offset 0 on SIM7600G-H and A76xx, other code uses increasing offsets). The body asks
//! `AT+HTTPREAD?` before and after its first read: a length that shrank by what was read
//! means the module consumes, and later reads use offset 0; otherwise (or when the module
//! does not say) offsets count from the start, as the manual describes. The answer is kept
//! for the rest of the update.
//!
//! # Limits and ranges
//!
//! A body the module cannot hold fails in place of the server's answer (SIM7670G:
//! `+HTTPACTION: 0,706,0` above its ~288 KB of storage; `AT+SH*`: `602` above about 40 KB,
//! §7.1). [`max_body`](HttpModem::max_body) says so, and [`Strategy::Auto`](crate::update::Strategy::Auto)
//! fetches such an image in ranges: a `Range:` header set with `AT+HTTPPARA="USERDATA"`
//! (every `AT+HTTP*` family) or `AT+SHAHEAD` (`AT+SH*`), answered `206`. SIM7670G refuses new
//! ranges after about ten in one session (LilyGo #352), so on A76xx the HTTP session is
//! restarted every [`RANGES_PER_SESSION`] ranges.
//!
//! # HTTPS
//!
//! `AT+HTTP*` on SIM7600 and A76xx: `AT+CSSLCFG` from [`UpdateConfig::tls`] (version,
//! authentication mode from the security level, SNI, local time, the CA certificate
//! downloaded with `AT+CCERTDOWN`) bound with `AT+HTTPPARA="SSLCFG"`. The SIM800-style set
//! cannot check a server certificate, and on `AT+SH*` this crate does not yet upload and
//! convert one (`AT+CFSWFILE`, `AT+CSSLCFG="convert"`): both refuse an `https://` URL with
//! [`Capability::ServerVerification`] unless [`Tls::sec_level`](crate::update::Tls::sec_level)
//! is `SecLevel::None`, which the caller must choose explicitly.

use core::time::Duration;

use embedded_io_async::{Read, Write};

use super::Family;
use super::http::{HttpAction, HttpInit, HttpPara, HttpRead, HttpReadLen, HttpTerm};
use super::sh::{ShAddHeader, ShClearHeaders, ShConf, ShConn, ShDisc, ShMethod, ShRead, ShRequest};
use super::urc::{CgevEvent, Urc};
use crate::at::AsyncClock;
use crate::client::asynch::{Client, DataReader};
use crate::client::{Error as ClientError, UrcHandler};
#[cfg(feature = "https")]
use crate::quectel::ssl::SecLevel;
use crate::update::{
    Capability, HttpBody, HttpModem, HttpStatus, Method, ModemFailure, UpdateConfig, is_https,
};

type Res<T, E> = Result<T, ModemFailure<E>>;

/// Ranges requested in one HTTP session on A76xx / SIM767x before it is restarted
/// (`AT+HTTPTERM`, `AT+HTTPINIT`): SIM7670G refuses new ranges after about ten (LilyGo #352).
pub const RANGES_PER_SESSION: u8 = 8;

/// The largest body an A76xx / SIM767x takes from one response: SIM7670G has about 288 KB
/// of user storage and answers `706` above it (§7.1); 256 KiB leaves room for files already
/// stored.
pub const A76XX_MAX_BODY: u32 = 256 * 1024;

/// The largest body `AT+SH*` takes from one response: "only works for files up to about
/// 40k. Above this it returns 602" (STACX, §7.1).
pub const SH_MAX_BODY: u32 = 32 * 1024;

/// Bytes per `AT+HTTPREAD` by default.
pub const DEFAULT_READ_SIZE: u32 = 1024;

/// `AT+SHCONF="BODYLEN"`: the request body's room. The update sends none; SIM7000E
/// 1529B01 refused 1024 and took 64 (§7.1).
const SH_BODY_LEN: u16 = 64;
/// `AT+SHCONF="HEADERLEN"`: the request headers' room (the most the modules take).
const SH_HEADER_LEN: u16 = 350;
/// `AT+SHREQ`'s result deadline after `OK` (the module's default `"TIMEOUT"`, 60 s, plus 10).
const SH_RESULT: Duration = Duration::from_secs(70);
/// Room for `bytes=<u32>-<u32>`.
type RangeText = heapless::String<32>;

/// A SIMCom module's HTTP(S) client as the update flow's [`HttpModem`], over the crate's
/// async client (the blocking client's [`as_async`](crate::client::blocking::Client::as_async)
/// gives one). Run it with [`update_with`](crate::update::update_with).
///
/// The family decides the command set; take it from the identity
/// ([`Family::from_identity`]) or the configuration. The data connection must be up (the
/// SIMCom bring-up, [`crate::simcom::bring_up`], does it).
pub struct SimcomHttp<'c, 'b, T, C, H> {
    client: &'c mut Client<'b, T, C, H>,
    family: Family,
    read_size: u32,
    /// `AT+HTTPINIT` done / `AT+SHCONN` done to `origin`.
    session: bool,
    /// The SSL context bound to the session, when a URL is `https://`.
    tls_ctx: Option<u8>,
    /// `AT+HTTPPARA="CID"` for the SIM800-style set.
    cid: u8,
    /// The `scheme://host[:port]` `AT+SH*` is connected to.
    origin: heapless::String<{ super::sh::SH_URL_MAX }>,
    /// `AT+HTTPREAD` consumes what it reads (offset stays 0), once learnt.
    consuming: Option<bool>,
    /// Ranges requested in this HTTP session.
    ranges: u8,
    /// A `Range:` header is set (`USERDATA`): a plain GET needs a new session.
    range_header: bool,
    /// The length the last answer announced.
    announced: Option<u32>,
}

impl<T, C, H> core::fmt::Debug for SimcomHttp<'_, '_, T, C, H> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SimcomHttp")
            .field("family", &self.family)
            .field("read_size", &self.read_size)
            .field("session", &self.session)
            .field("consuming", &self.consuming)
            .finish_non_exhaustive()
    }
}

impl<'c, 'b, T, C, H> SimcomHttp<'c, 'b, T, C, H> {
    /// The update flow's view of `client`, for a module of `family`.
    pub fn new(client: &'c mut Client<'b, T, C, H>, family: Family) -> Self {
        SimcomHttp {
            client,
            family,
            read_size: DEFAULT_READ_SIZE,
            session: false,
            tls_ctx: None,
            cid: 1,
            origin: heapless::String::new(),
            consuming: None,
            ranges: 0,
            range_header: false,
            announced: None,
        }
    }

    /// Bytes per `AT+HTTPREAD` on SIM7600 and A76xx (at least 1; default
    /// [`DEFAULT_READ_SIZE`]). Larger reads cost fewer command round trips; no maximum is
    /// documented.
    pub fn with_read_size(mut self, n: u32) -> Self {
        self.read_size = n.max(1);
        self
    }

    /// The family this modem was created for.
    pub fn family(&self) -> Family {
        self.family
    }
}

/// What `AT+SH*` needs of `url`: `scheme://host[:port]` for `AT+SHCONF="URL"`, the path
/// with its query for `AT+SHREQ` (`/` when it has none; a `#fragment` is not sent), and the
/// host for SNI. The URL is checked as every request URL of the crate is
/// ([`parse_url`](crate::quectel::http::parse_url)).
fn split_url(url: &str) -> Option<(&str, &str, &str)> {
    let host = crate::quectel::http::parse_url(url).ok()?.host;
    let after = url.find("://")? + 3;
    let end = url[after..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| after + i);
    let target = url[end..].split('#').next().unwrap_or("");
    let path = match target.as_bytes().first() {
        None => "/",
        // `?query` without a path: SHREQ's path must start with `/`; the query is kept
        // only after a path.
        Some(b'?') => "/",
        _ => target,
    };
    Some((&url[..end], path, host))
}

fn range_text(start: u32, len: u32) -> RangeText {
    let mut s = RangeText::new();
    let end = u64::from(start) + u64::from(len.max(1)) - 1;
    // 6 + 10 + 1 + 10 bytes always fit.
    let _ = core::fmt::write(&mut s, format_args!("bytes={start}-{end}"));
    s
}

impl<'b, T, C, H> SimcomHttp<'_, 'b, T, C, H>
where
    T: Read + Write,
    T::Error: embedded_io_async::Error,
    C: AsyncClock,
    H: UrcHandler,
{
    /// `AT+HTTPINIT` and the session's settings, unless a session is open.
    async fn ensure_http(&mut self) -> Res<(), T::Error> {
        if self.session {
            return Ok(());
        }
        self.client.send(&HttpInit).await?;
        self.session = true;
        self.ranges = 0;
        self.range_header = false;
        if self.family == Family::Sim800 {
            self.client.send(&HttpPara::Cid(self.cid)).await?;
        }
        if let Some(ctx) = self.tls_ctx {
            self.client.send(&HttpPara::SslConfig(ctx)).await?;
        }
        Ok(())
    }

    /// Ends the HTTP session and opens a new one.
    async fn restart_http(&mut self) -> Res<(), T::Error> {
        let _ = self.client.send(&HttpTerm).await;
        self.session = false;
        self.ensure_http().await
    }

    /// Connects `AT+SH*` to `url`'s origin unless it is connected there; returns the path.
    async fn sh_prepare<'u>(&mut self, url: &'u str) -> Res<&'u str, T::Error> {
        let Some((origin, path, host)) = split_url(url) else {
            return Err(ModemFailure::Modem(ClientError::Encode(
                crate::at::EncodeError::Invalid("not an http:// or https:// URL"),
            )));
        };
        if self.session && self.origin.as_str() == origin {
            return Ok(path);
        }
        if self.session {
            let _ = self.client.send(&ShDisc).await;
            self.session = false;
        }
        self.client.send(&ShConf::Url(origin)).await?;
        self.client.send(&ShConf::BodyLen(SH_BODY_LEN)).await?;
        self.client.send(&ShConf::HeaderLen(SH_HEADER_LEN)).await?;
        if is_https(origin) {
            let Some(ctx) = self.tls_ctx else {
                // `open` saw no https:// URL: the caller changed URLs under the flow.
                return Err(ModemFailure::Unsupported(Capability::ServerVerification));
            };
            use super::ssl::Sim70SslConfig;
            self.client.send(&Sim70SslConfig::Sni { ctx, host }).await?;
            // `sec_level` None was the caller's explicit choice (checked in `open`): the
            // empty CA name skips verification.
            self.client
                .send(&super::sh::ShSsl {
                    ctx,
                    ca: "",
                    cert: None,
                })
                .await?;
        }
        self.client.send(&ShConn).await?;
        self.session = true;
        self.origin.clear();
        // `ShConf::Url` accepted it, so it fits.
        let _ = self.origin.push_str(origin);
        Ok(path)
    }

    /// `AT+CSSLCFG` for an `https://` URL.
    #[cfg(feature = "https")]
    async fn tls_setup(&mut self, cfg: &UpdateConfig<'_>) -> Res<(), T::Error> {
        use super::ssl::{CertDownload, Sim70SslConfig, SslConfig, SslVersion};
        use crate::quectel::ssl::SslVersion as Q;
        let tls = cfg.tls.unwrap_or_default();
        let ctx = tls.ssl_ctx;
        match self.family {
            Family::Sim800 => Err(ModemFailure::Unsupported(Capability::ServerVerification)),
            Family::Sh => {
                if tls.sec_level != SecLevel::None {
                    return Err(ModemFailure::Unsupported(Capability::ServerVerification));
                }
                // SIM7070's numbering: 1 TLS 1.0, 2 TLS 1.1, 3 TLS 1.2.
                let version = match tls.version {
                    Q::Tls1_0 => 1,
                    Q::Tls1_1 => 2,
                    _ => 3,
                };
                self.client
                    .send(&Sim70SslConfig::SslVersion { ctx, version })
                    .await?;
                self.client
                    .send(&Sim70SslConfig::IgnoreRtcTime {
                        ctx,
                        on: tls.ignore_local_time,
                    })
                    .await?;
                self.tls_ctx = Some(ctx);
                Ok(())
            }
            _ => {
                let version = match tls.version {
                    Q::Ssl3 => SslVersion::Ssl3,
                    Q::Tls1_0 => SslVersion::Tls10,
                    Q::Tls1_1 => SslVersion::Tls11,
                    Q::Tls1_2 => SslVersion::Tls12,
                    Q::All => SslVersion::All,
                };
                for c in [
                    SslConfig::SslVersion { ctx, version },
                    SslConfig::AuthMode {
                        ctx,
                        mode: tls.sec_level as u8,
                    },
                    SslConfig::IgnoreLocalTime {
                        ctx,
                        on: tls.ignore_local_time,
                    },
                    SslConfig::EnableSni { ctx, on: tls.sni },
                ] {
                    self.client.send(&c).await?;
                }
                if let Some(ca) = tls.ca_cert {
                    self.client
                        .send(&CertDownload {
                            name: ca.file,
                            data: ca.pem,
                        })
                        .await?;
                    self.client
                        .send(&SslConfig::CaCert { ctx, file: ca.file })
                        .await?;
                }
                self.tls_ctx = Some(ctx);
                self.client.send(&HttpPara::SslConfig(ctx)).await?;
                Ok(())
            }
        }
    }
}

impl<'b, T, C, H> HttpModem for SimcomHttp<'_, 'b, T, C, H>
where
    T: Read + Write,
    T::Error: embedded_io_async::Error,
    C: AsyncClock,
    H: UrcHandler,
{
    type Error = T::Error;
    type Body<'a>
        = SimcomBody<'a, 'b, T, C, H>
    where
        Self: 'a;

    async fn open(&mut self, cfg: &UpdateConfig<'_>) -> Res<(), T::Error> {
        self.cid = cfg.context_id;
        self.tls_ctx = None;
        self.announced = None;
        self.ranges = 0;
        self.range_header = false;
        self.origin.clear();
        // A session left from before (a reset MCU) would refuse a new one: end it. "No
        // session" is an error answer too, so the result is ignored.
        if self.family == Family::Sh {
            let _ = self.client.send(&ShDisc).await;
            self.session = false;
        } else {
            let _ = self.client.send(&HttpTerm).await;
            self.session = false;
            self.ensure_http().await?;
        }
        if is_https(cfg.url) || cfg.manifest_url.is_some_and(is_https) {
            #[cfg(feature = "https")]
            self.tls_setup(cfg).await?;
        }
        Ok(())
    }

    async fn get(&mut self, url: &str) -> Res<Duration, T::Error> {
        self.announced = None;
        if self.family == Family::Sh {
            let path = self.sh_prepare(url).await?;
            self.client.send(&ShClearHeaders).await?;
            self.client
                .send(&ShRequest {
                    path,
                    method: ShMethod::Get,
                })
                .await?;
            return Ok(SH_RESULT);
        }
        if self.range_header {
            // USERDATA holds a Range header; only a new session clears it.
            self.restart_http().await?;
        }
        self.ensure_http().await?;
        self.client.send(&HttpPara::Url(url)).await?;
        self.client.send(&HttpAction::GET).await?;
        Ok(HttpAction::GET.result_deadline())
    }

    async fn response(&mut self, within: Duration) -> Res<HttpStatus, T::Error> {
        let r = self
            .client
            .wait_for(within, |line| {
                let fail =
                    |e: super::urc::RequestError| ModemFailure::HttpClient(e.to_client_error());
                match Urc::parse(line)?.ok()? {
                    Urc::HttpAction(a) => Some(a.result.map_err(fail)),
                    Urc::ShReq { result, .. } => Some(result.map_err(fail)),
                    Urc::Ready | Urc::AtReady(_) => Some(Err(ModemFailure::ModemRebooted)),
                    Urc::PdpDeactivated
                    | Urc::BearerDeactivated { .. }
                    | Urc::NetworkClosed
                    | Urc::HttpNoNetwork
                    | Urc::ShState(0)
                    | Urc::AppPdp { active: false, .. }
                    | Urc::Cgev(CgevEvent::PdnDeactivated { .. } | CgevEvent::Detached) => {
                        Some(Err(ModemFailure::LinkLost))
                    }
                    _ => None,
                }
            })
            .await
            .map_err(ModemFailure::from)
            .and_then(|r| r);
        match r {
            Ok(st) => {
                self.announced = st.content_length;
                Ok(st)
            }
            Err(e) => {
                // The connection may be gone: connect again next time.
                if self.family == Family::Sh {
                    self.session = false;
                }
                Err(e)
            }
        }
    }

    async fn body(&mut self, len: Option<u32>) -> Res<Self::Body<'_>, T::Error> {
        let total = len.or(self.announced);
        let piece = match self.family {
            Family::Sh => match total {
                Some(n) if n > super::sh::SH_READ_MAX => {
                    return Err(ModemFailure::Length {
                        expected: super::sh::SH_READ_MAX,
                        got: n,
                    });
                }
                Some(n) => n,
                // The module always announces the length; without one there is nothing to
                // ask for (asking for more than it holds is an error).
                None => 0,
            },
            Family::Sim800 => u32::MAX,
            _ => self.read_size,
        };
        let ended = total == Some(0) || piece == 0;
        Ok(SimcomBody {
            slot: Slot::Idle(&mut *self.client),
            family: self.family,
            consuming: &mut self.consuming,
            total,
            got: 0,
            piece,
            asked: 0,
            len_before: None,
            ended,
        })
    }

    async fn close(&mut self, failed: bool) {
        if failed {
            // A failed transfer may have left a read half-done: start from clean framing.
            self.client.reset();
        }
        if self.family == Family::Sh {
            if self.session {
                let _ = self.client.send(&ShDisc).await;
            }
        } else {
            let _ = self.client.send(&HttpTerm).await;
        }
        self.session = false;
        self.range_header = false;
        self.ranges = 0;
    }

    fn max_body(&self) -> Option<u32> {
        match self.family {
            Family::A76xx => Some(A76XX_MAX_BODY),
            Family::Sh => Some(SH_MAX_BODY),
            _ => None,
        }
    }

    /// A `Range:` header on every family (`USERDATA`, `AT+SHAHEAD`).
    async fn ranged_method(&mut self) -> Res<Option<Method>, T::Error> {
        Ok(Some(Method::RangedHeader))
    }

    async fn start_ranges(&mut self, url: &str, method: Method) -> Res<(), T::Error> {
        if method != Method::RangedHeader {
            return Err(ModemFailure::Unsupported(Capability::RangedRequests));
        }
        if self.family == Family::Sh {
            self.sh_prepare(url).await?;
        } else {
            self.ensure_http().await?;
        }
        Ok(())
    }

    async fn get_range(
        &mut self,
        url: &str,
        method: Method,
        start: u32,
        len: u32,
        _scratch: &mut [u8],
    ) -> Res<Duration, T::Error> {
        if method != Method::RangedHeader {
            return Err(ModemFailure::Unsupported(Capability::RangedRequests));
        }
        self.announced = None;
        let value = range_text(start, len);
        if self.family == Family::Sh {
            let path = self.sh_prepare(url).await?;
            self.client.send(&ShClearHeaders).await?;
            self.client
                .send(&ShAddHeader {
                    name: "Range",
                    value: &value,
                })
                .await?;
            self.client
                .send(&ShRequest {
                    path,
                    method: ShMethod::Get,
                })
                .await?;
            return Ok(SH_RESULT);
        }
        if self.family == Family::A76xx && self.ranges >= RANGES_PER_SESSION {
            self.restart_http().await?;
        }
        self.ensure_http().await?;
        self.client.send(&HttpPara::Url(url)).await?;
        self.client
            .send(&HttpPara::UserData {
                name: "Range",
                value: &value,
            })
            .await?;
        self.range_header = true;
        self.client.send(&HttpAction::GET).await?;
        self.ranges = self.ranges.saturating_add(1);
        Ok(HttpAction::GET.result_deadline())
    }
}

/// Where the body's reads stand.
enum Slot<'r, 'b, T, C, H> {
    /// Between reads: the client is free.
    Idle(&'r mut Client<'b, T, C, H>),
    /// A read is under way.
    Reading(DataReader<'r, 'b, T, C, H>, Piece),
    /// A read failed; the client went with it (the flow's `close` resets it).
    Broken,
}

/// The read command under way.
#[derive(Clone, Copy)]
enum Piece {
    Http(HttpRead),
    Sh(ShRead),
}

/// A SIMCom response body: one read command after another (see the [module
/// docs](self)), each piece lent zero-copy from the receive buffer.
pub struct SimcomBody<'r, 'b, T, C, H> {
    slot: Slot<'r, 'b, T, C, H>,
    family: Family,
    consuming: &'r mut Option<bool>,
    /// The body's length, if announced.
    total: Option<u32>,
    /// Body bytes read by finished reads.
    got: u32,
    /// Bytes per read.
    piece: u32,
    /// Bytes the read under way asked for.
    asked: u32,
    /// `AT+HTTPREAD?` before the first read, while the offset semantics are unknown.
    len_before: Option<u32>,
    /// No more reads.
    ended: bool,
}

impl<T, C, H> core::fmt::Debug for SimcomBody<'_, '_, T, C, H> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SimcomBody")
            .field("family", &self.family)
            .field("total", &self.total)
            .field("got", &self.got)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

const BROKEN: &str = "the body's read failed before";

impl<'r, 'b, T, C, H> SimcomBody<'r, 'b, T, C, H>
where
    T: Read + Write,
    T::Error: embedded_io_async::Error,
    C: AsyncClock,
    H: UrcHandler,
{
    /// Starts the next read.
    async fn start_read(&mut self) -> Res<(), T::Error> {
        let Slot::Idle(client) = core::mem::replace(&mut self.slot, Slot::Broken) else {
            return Err(ModemFailure::Modem(ClientError::Protocol(BROKEN)));
        };
        let want = match self.total {
            Some(t) => self.piece.min(t - self.got.min(t)),
            None => self.piece,
        };
        let piece = match self.family {
            Family::Sh => Piece::Sh(ShRead {
                start: self.got,
                len: want,
            }),
            Family::Sim800 => Piece::Http(HttpRead { range: None }),
            _ => {
                let many = self.total.is_none_or(|t| t > want);
                if self.got == 0 && self.consuming.is_none() && many {
                    // What the module holds now, to learn from the next answer whether a
                    // read consumes (§2.1.1). A module that does not say leaves it unknown.
                    self.len_before = client.send(&HttpReadLen).await.ok();
                }
                let offset = if *self.consuming == Some(true) {
                    0
                } else {
                    self.got
                };
                Piece::Http(HttpRead {
                    range: Some((offset, want)),
                })
            }
        };
        self.asked = want;
        let reader = match piece {
            Piece::Http(c) => client.read_data(&c).await?,
            Piece::Sh(c) => client.read_data(&c).await?,
        };
        self.slot = Slot::Reading(reader, piece);
        Ok(())
    }

    /// Ends the read under way and decides whether another follows.
    async fn end_read(&mut self) -> Res<(), T::Error> {
        let Slot::Reading(mut reader, piece) = core::mem::replace(&mut self.slot, Slot::Broken)
        else {
            return Err(ModemFailure::Modem(ClientError::Protocol(BROKEN)));
        };
        let n = match piece {
            Piece::Http(c) => reader.finish_in_place(&c, |()| ()).await?.1,
            Piece::Sh(c) => reader.finish_in_place(&c, |()| ()).await?.1,
        };
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        let client = reader.into_client();
        let first = self.got == 0;
        self.got = self.got.saturating_add(n);
        // A module gives what it holds when asked for more (§2.1.1): a short read is the end.
        self.ended = n < self.asked || self.total.is_some_and(|t| self.got >= t);
        if first
            && !self.ended
            && self.consuming.is_none()
            && !matches!(self.family, Family::Sh | Family::Sim800)
        {
            let after = match client.send(&HttpReadLen).await {
                Ok(len) => Some(len),
                // "No data": everything readable was consumed.
                Err(ClientError::Rejected(_)) => Some(0),
                Err(e) => return Err(e.into()),
            };
            *self.consuming = Some(match (self.len_before, after) {
                (Some(before), Some(after)) => after.saturating_add(n) == before && after < before,
                // Assumed: offsets from the start, as the manual describes.
                _ => false,
            });
        }
        self.slot = Slot::Idle(client);
        Ok(())
    }
}

impl<T, C, H> HttpBody for SimcomBody<'_, '_, T, C, H>
where
    T: Read + Write,
    T::Error: embedded_io_async::Error,
    C: AsyncClock,
    H: UrcHandler,
{
    type Error = T::Error;

    async fn fill_buf(&mut self) -> Res<&[u8], T::Error> {
        loop {
            match &mut self.slot {
                Slot::Reading(reader, _) => {
                    if reader.fill().await? > 0 {
                        break;
                    }
                    self.end_read().await?;
                }
                Slot::Idle(_) if self.ended => return Ok(&[]),
                Slot::Idle(_) => self.start_read().await?,
                Slot::Broken => return Err(ModemFailure::Modem(ClientError::Protocol(BROKEN))),
            }
        }
        match &mut self.slot {
            Slot::Reading(reader, _) => Ok(reader.available()),
            _ => Ok(&[]),
        }
    }

    fn consume(&mut self, n: usize) {
        if let Slot::Reading(reader, _) = &mut self.slot {
            reader.consume_seen(n, |_| {});
        }
    }

    async fn finish(mut self) -> Res<u64, T::Error> {
        loop {
            let n = self.fill_buf().await?.len();
            if n == 0 {
                return Ok(u64::from(self.got));
            }
            self.consume(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_origin_path_and_host() {
        assert_eq!(
            split_url("http://example.com:8080/fw/app.bin?v=2#top"),
            Some(("http://example.com:8080", "/fw/app.bin?v=2", "example.com"))
        );
        assert_eq!(
            split_url("HTTPS://example.com"),
            Some(("HTTPS://example.com", "/", "example.com"))
        );
        assert_eq!(
            split_url("https://[2001:db8::1]:8443/x"),
            Some(("https://[2001:db8::1]:8443", "/x", "[2001:db8::1]"))
        );
        assert_eq!(split_url("ftp://example.com/x"), None);
        assert_eq!(split_url("http:///x"), None);
        assert_eq!(split_url("http://user@example.com/x"), None);
    }

    #[test]
    fn range_text_is_inclusive() {
        assert_eq!(range_text(0, 1024).as_str(), "bytes=0-1023");
        assert_eq!(
            range_text(u32::MAX - 1, u32::MAX).as_str(),
            "bytes=4294967294-8589934588"
        );
    }
}
