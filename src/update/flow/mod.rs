//! The update flow itself (async; the blocking entry point drives the same code).

use core::time::Duration;

use embedded_io_async::{BufRead, Read, Write};
use sha2::{Digest, Sha256};

#[cfg(not(all(feature = "ranged", feature = "modem-file")))]
use super::{ConfigError, Feature};
use super::{Failure, Method, Outcome, Progress, Stage, Strategy, UpdateConfig, UpdateError};
use crate::at::AsyncClock;
#[cfg(any(feature = "ranged", feature = "modem-file"))]
use crate::at::AtCommand;
#[cfg(any(feature = "ranged", feature = "modem-file"))]
use crate::client::TimeoutExt;
use crate::client::asynch::Client;
use crate::client::{Error as ClientError, UrcHandler};
use crate::ota::manifest::{Decision, MAX_VERSION_LEN, Manifest, Version, decide};
use crate::ota::{AsyncOtaSink, ExpectedImage, ImageDescriptor};
use crate::quectel::error::HttpError;
#[cfg(feature = "modem-file")]
use crate::quectel::file::{CloseFile, DeleteFile, FileHandle};
use crate::quectel::http::{HttpConfig, HttpGet, HttpRead, HttpStop, SetHttpUrl};
use crate::quectel::urc::{DownloadUrc, HttpStatus};

/// Deadline for the clean-up commands run on every exit.
#[cfg(any(feature = "ranged", feature = "modem-file"))]
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(feature = "modem-file")]
mod modem_file;
#[cfg(feature = "ranged")]
mod ranged;
#[cfg(feature = "modem-file")]
use modem_file::modem_file;
#[cfg(feature = "ranged")]
use ranged::{ranged, ranged_method};

type Res<T, E, S> = Result<T, UpdateError<E, S>>;

/// Mutable state of one update.
struct Ctx<'p> {
    /// Bytes durable in the sink (also the next write offset).
    done: u32,
    /// Image size.
    size: u32,
    hasher: Sha256,
    progress: &'p mut dyn FnMut(Progress),
    #[cfg(feature = "ranged")]
    header_mode: bool,
    #[cfg(feature = "modem-file")]
    file: Option<FileHandle>,
    /// Image offset up to which the sink was asked to get flash ready
    /// ([`AsyncOtaSink::prepare`]).
    prepared: u32,
}

impl Ctx<'_> {
    /// Hands `p` to the caller and, with the `log` or `defmt` feature, logs it: every stage
    /// of the flow at debug level (per-write progress at trace), a fallback as a warning.
    fn report(&mut self, p: Progress) {
        match p {
            Progress::Bytes { done, total } => {
                trace!("update: {} of {} bytes durable", done, total)
            }
            Progress::Fallback { to, reason } => {
                warn!("update: falling back to {:?}: {}", to, reason)
            }
            Progress::Manifest { size } => {
                debug!("update: manifest accepted, image {} bytes", size)
            }
            Progress::Strategy { method, reason } => {
                debug!("update: method {:?}: {}", method, reason)
            }
            Progress::Started {
                total,
                resumed_from,
            } => debug!(
                "update: transfer of {} bytes starts at {}",
                total, resumed_from
            ),
            Progress::Verifying => debug!("update: all bytes in, verifying"),
            Progress::Activating => debug!("update: verified, activating"),
        }
        (self.progress)(p);
    }

    fn fail<E, S>(&self, stage: Stage, failure: Failure<E, S>) -> UpdateError<E, S> {
        // The payload reader recognised a modem restart (its `RDY` after a silence).
        let failure = match failure {
            Failure::Modem(ClientError::ModemRebooted) => Failure::ModemRebooted,
            f => f,
        };
        UpdateError {
            stage,
            failure,
            bytes_done: self.done,
        }
    }
}

/// Room for a pre-release: a version is at most [`MAX_VERSION_LEN`] bytes, of which
/// `MAJOR.MINOR.PATCH-` takes at least 6.
const MAX_PRE_LEN: usize = MAX_VERSION_LEN - "0.0.0-".len();

/// A manifest's version kept by value (the manifest itself lives in the chunk buffer,
/// which the transfer overwrites).
struct OwnedVersion {
    major: u32,
    minor: u32,
    patch: u32,
    pre: [u8; MAX_PRE_LEN],
    pre_len: u8,
}

impl OwnedVersion {
    fn of(v: &Version<'_>) -> Self {
        let mut pre = [0u8; MAX_PRE_LEN];
        // A parsed version's text is at most MAX_VERSION_LEN bytes, so its pre-release fits.
        let n = v.pre.len().min(MAX_PRE_LEN);
        pre[..n].copy_from_slice(&v.pre.as_bytes()[..n]);
        OwnedVersion {
            major: v.major,
            minor: v.minor,
            patch: v.patch,
            pre,
            pre_len: n as u8,
        }
    }

    fn as_version(&self) -> Version<'_> {
        let pre = self.pre.get(..usize::from(self.pre_len)).unwrap_or(&[]);
        Version {
            major: self.major,
            minor: self.minor,
            patch: self.patch,
            // Copied from a `&str` at a char boundary (ASCII), so always valid.
            pre: core::str::from_utf8(pre).unwrap_or(""),
        }
    }
}

pub(super) fn is_https(url: &str) -> bool {
    url.len() >= 8 && url.as_bytes()[..8].eq_ignore_ascii_case(b"https://")
}

/// Runs an update: fetch (and judge) the manifest, download the image into `sink` with the
/// configured strategy, resume where the sink says, verify, activate.
///
/// * `buf` is the chunk buffer (a 4 KiB chunk needs 4 KiB) and holds the manifest while it
///   is read; at least 1 KiB.
/// * `progress` receives [`Progress`] events; the library prints nothing.
///
/// Returns [`Outcome::UpToDate`] when the manifest offers the running version, else
/// [`Outcome::Installed`] once the sink has verified and activated the image. On error the
/// running image stays selected and [`UpdateError::bytes_done`] says how much a retry will
/// not download again. Whatever the result, the HTTP session is stopped and module files
/// are closed before this returns.
///
/// Cancel safety: not cancel-safe; dropping the future mid-transfer leaves the modem
/// sending. Reset the client and call `AT+QHTTPSTOP` before reusing it; the sink's resume
/// point stays valid.
pub async fn update<T, C, H, S>(
    client: &mut Client<'_, T, C, H>,
    sink: &mut S,
    config: &UpdateConfig<'_>,
    buf: &mut [u8],
    progress: &mut dyn FnMut(Progress),
) -> Result<Outcome, UpdateError<T::Error, S::Error>>
where
    T: Read + Write,
    T::Error: embedded_io_async::Error,
    C: AsyncClock,
    H: UrcHandler,
    S: AsyncOtaSink,
{
    if let Err(e) = config.validate(buf.len(), sink.write_size()) {
        // Refused before a byte goes to the modem: no clean-up either.
        return Err(UpdateError {
            stage: Stage::Config,
            failure: Failure::Config(e),
            bytes_done: 0,
        });
    }
    let mut ctx = Ctx {
        done: 0,
        size: 0,
        hasher: Sha256::new(),
        progress,
        #[cfg(feature = "ranged")]
        header_mode: false,
        #[cfg(feature = "modem-file")]
        file: None,
        prepared: 0,
    };
    let result = run(client, sink, config, buf, &mut ctx).await;
    match &result {
        Ok(Outcome::UpToDate) => debug!("update: the running version is current"),
        Ok(Outcome::Installed { method, size, .. }) => {
            debug!(
                "update: {} bytes installed by {:?}; boots at the next reset",
                size, method
            )
        }
        Err(e) => warn!(
            "update failed at {:?} with {} bytes durable (a retry resumes there)",
            e.stage, e.bytes_done
        ),
    }
    cleanup(client, &mut ctx, result.is_err()).await;
    #[cfg(feature = "modem-file")]
    if let Ok(Outcome::Installed {
        method: Method::ModemFile,
        ..
    }) = result
    {
        // The copy in the module is no longer needed.
        let _ = client
            .send(&DeleteFile::new(config.modem_file).with_timeout(CLEANUP_TIMEOUT))
            .await;
    }
    result
}

/// Leaves the modem ready for the next command. Errors are ignored: this runs on every
/// exit, including after the link failed.
#[cfg_attr(
    not(any(feature = "ranged", feature = "modem-file")),
    allow(unused_variables)
)]
async fn cleanup<T, C, H>(client: &mut Client<'_, T, C, H>, ctx: &mut Ctx<'_>, failed: bool)
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    if failed {
        // A failed transfer may have left a payload half-read: start from clean framing.
        client.reset();
    }
    #[cfg(feature = "modem-file")]
    if let Some(handle) = ctx.file.take() {
        let _ = client
            .send(&CloseFile { handle }.with_timeout(CLEANUP_TIMEOUT))
            .await;
    }
    #[cfg(feature = "ranged")]
    if ctx.header_mode {
        ctx.header_mode = false;
        let _ = client
            .send(&HttpConfig::RequestHeader(false).with_timeout(CLEANUP_TIMEOUT))
            .await;
    }
    let _ = client.send(&HttpStop).await;
}

async fn run<T, C, H, S>(
    client: &mut Client<'_, T, C, H>,
    sink: &mut S,
    cfg: &UpdateConfig<'_>,
    buf: &mut [u8],
    ctx: &mut Ctx<'_>,
) -> Res<Outcome, T::Error, S::Error>
where
    T: Read + Write,
    T::Error: embedded_io_async::Error,
    C: AsyncClock,
    H: UrcHandler,
    S: AsyncOtaSink,
{
    setup(client, cfg, ctx).await?;

    // The image's identity, size and (with a manifest) expected SHA-256.
    let mut pending_get = None;
    let (desc, expected) = match cfg.manifest_url {
        Some(murl) => {
            let n = fetch_small(client, cfg, murl, buf, ctx).await?;
            let m = Manifest::parse(&buf[..n])
                .map_err(|e| ctx.fail(Stage::Manifest, Failure::Manifest(e)))?;
            let decision = decide(&m, &cfg.policy())
                .map_err(|e| ctx.fail(Stage::Manifest, Failure::Manifest(e)))?;
            if decision == Decision::UpToDate {
                return Ok(Outcome::UpToDate);
            }
            ctx.report(Progress::Manifest { size: m.size });
            // `m` borrows `buf`, which the transfer reuses: keep the version by value.
            (
                m.image_descriptor(),
                Some((m.sha256, OwnedVersion::of(&m.version))),
            )
        }
        None => {
            // Learn the size from the server; the response stays in the modem for a stream.
            let st = get(client, cfg, cfg.url, ctx).await?;
            if st.status != 200 {
                return Err(ctx.fail(Stage::HttpStatus, Failure::Status(st.status)));
            }
            let size = match st.content_length {
                Some(n) if n > 0 => n,
                other => {
                    return Err(ctx.fail(
                        Stage::HttpStatus,
                        Failure::Length {
                            expected: 1,
                            got: other.unwrap_or(0),
                        },
                    ));
                }
            };
            pending_get = Some(st);
            let mut id = Sha256::new();
            id.update(b"cellular-ota url+length\n");
            id.update(cfg.url.as_bytes());
            id.update(size.to_le_bytes());
            (
                ImageDescriptor {
                    id: id.finalize().into(),
                    size,
                },
                None,
            )
        }
    };
    ctx.size = desc.size;

    let resume = sink
        .begin(&desc)
        .await
        .map_err(|e| ctx.fail(Stage::Flash, Failure::Sink(e)))?;
    if desc.size > resume.capacity {
        return Err(ctx.fail(
            Stage::Flash,
            Failure::TooLarge {
                size: desc.size,
                capacity: resume.capacity,
            },
        ));
    }
    let resumed_from = resume.offset.min(desc.size);
    // Re-hash what is already durable, as stored.
    let mut pos = 0u32;
    while pos < resumed_from {
        let n = (resumed_from - pos).min(buf.len() as u32) as usize;
        sink.read(pos, &mut buf[..n])
            .await
            .map_err(|e| ctx.fail(Stage::Flash, Failure::Sink(e)))?;
        ctx.hasher.update(&buf[..n]);
        pos += n as u32;
    }
    ctx.done = resumed_from;

    #[cfg_attr(
        not(any(feature = "ranged", feature = "modem-file")),
        allow(unused_mut)
    )]
    let mut method = choose(client, cfg, ctx).await?;
    ctx.report(Progress::Started {
        total: desc.size,
        resumed_from,
    });

    // Transfer, falling back to a stream when a server ignores Range.
    #[cfg_attr(
        not(any(feature = "ranged", feature = "modem-file")),
        allow(clippy::never_loop)
    )]
    loop {
        match method {
            Method::Stream | Method::StreamErasedAhead => {
                let ahead = method == Method::StreamErasedAhead;
                stream(client, sink, cfg, ctx, pending_get.take(), ahead).await?;
                break;
            }
            #[cfg(feature = "ranged")]
            Method::RangedGetex | Method::RangedHeader => {
                match ranged(client, sink, cfg, buf, ctx, method).await? {
                    None => break,
                    Some(full) => {
                        method = Method::StreamErasedAhead;
                        ctx.report(Progress::Fallback {
                            to: method,
                            reason: "the server ignored Range (200 instead of 206)",
                        });
                        pending_get = Some(full);
                    }
                }
            }
            #[cfg(feature = "modem-file")]
            Method::ModemFile => {
                if modem_file(client, sink, cfg, buf, ctx, pending_get.take()).await? {
                    break;
                }
                #[cfg(feature = "ranged")]
                let (to, reason) = (
                    ranged_method(client, ctx).await?,
                    "the module file is still open from a session the MCU lost \
                     (+CME ERROR: 426); ranges from the resume point instead",
                );
                #[cfg(not(feature = "ranged"))]
                let (to, reason) = (
                    Method::StreamErasedAhead,
                    "the module file is still open from a session the MCU lost \
                     (+CME ERROR: 426); the body again, skipping what is in flash",
                );
                method = to;
                ctx.report(Progress::Fallback { to, reason });
            }
            // `choose` never picks a method this build leaves out.
            #[cfg(not(all(feature = "ranged", feature = "modem-file")))]
            _ => {
                let feature = if method == Method::ModemFile {
                    Feature::ModemFile
                } else {
                    Feature::Ranged
                };
                let e = ConfigError::FeatureDisabled { feature };
                return Err(ctx.fail(Stage::Setup, Failure::Config(e)));
            }
        }
    }

    ctx.report(Progress::Verifying);
    if ctx.done != desc.size {
        return Err(ctx.fail(
            Stage::Verification,
            Failure::Length {
                expected: desc.size,
                got: ctx.done,
            },
        ));
    }
    let mut check = ExpectedImage::sha256(core::mem::take(&mut ctx.hasher).finalize().into());
    if let Some((sha256, version)) = &expected {
        if check.sha256 != *sha256 {
            // Never resume into a prefix that hashes wrong.
            let _ = sink.abort().await;
            return Err(ctx.fail(Stage::Verification, Failure::HashMismatch));
        }
        check.version = Some(version.as_version());
    }
    ctx.report(Progress::Activating);
    sink.finish(&check)
        .await
        .map_err(|e| ctx.fail(Stage::Activation, Failure::Sink(e)))?;
    Ok(Outcome::Installed {
        method,
        size: desc.size,
        sha256: check.sha256,
        resumed_from,
    })
}

/// Stops any old session and configures HTTP(S).
async fn setup<T, C, H, S>(
    client: &mut Client<'_, T, C, H>,
    cfg: &UpdateConfig<'_>,
    ctx: &mut Ctx<'_>,
) -> Res<(), T::Error, S>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    let m = |ctx: &Ctx<'_>, e| ctx.fail(Stage::Setup, Failure::Modem(e));
    // A session left over from before (a reset MCU) would refuse new requests: end it.
    // "No session" is an error answer too, so the result is ignored.
    let _ = client.send(&HttpStop).await;
    for c in [
        HttpConfig::ContextId(cfg.context_id),
        HttpConfig::ResponseHeader(false),
        HttpConfig::RequestHeader(false),
    ] {
        client.send(&c).await.map_err(|e| m(ctx, e))?;
    }
    // Without the `https` feature an https:// URL was refused by the configuration check.
    #[cfg(feature = "https")]
    if is_https(cfg.url) || cfg.manifest_url.is_some_and(is_https) {
        tls_setup(client, cfg, ctx).await?;
    }
    Ok(())
}

/// Configures the SSL context for an https:// URL (and uploads the CA certificate).
#[cfg(feature = "https")]
async fn tls_setup<T, C, H, S>(
    client: &mut Client<'_, T, C, H>,
    cfg: &UpdateConfig<'_>,
    ctx: &mut Ctx<'_>,
) -> Res<(), T::Error, S>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    use crate::quectel::file::{DeleteFile, UploadFile};
    use crate::quectel::ssl::{SetSslConfig, SslConfig};
    let m = |ctx: &Ctx<'_>, e| ctx.fail(Stage::Setup, Failure::Modem(e));
    let tls: super::Tls<'_> = cfg.tls.unwrap_or_default();
    let ctx_id = tls.ssl_ctx;
    for config in [
        SslConfig::SslVersion(tls.version),
        SslConfig::SecLevel(tls.sec_level),
        SslConfig::Sni(tls.sni),
        SslConfig::IgnoreLocalTime(tls.ignore_local_time),
    ] {
        client
            .send(&SetSslConfig {
                ctx: ctx_id,
                config,
            })
            .await
            .map_err(|e| m(ctx, e))?;
    }
    if let Some(ca) = tls.ca_cert {
        // Replace the file, then check what the module stored.
        let _ = client.send(&DeleteFile::new(ca.file)).await;
        let stored = client
            .send(&UploadFile::new(ca.file, ca.pem))
            .await
            .map_err(|e| m(ctx, e))?;
        if stored.verify(ca.pem).is_err() {
            return Err(ctx.fail(Stage::Setup, Failure::Checksum));
        }
        client
            .send(&SetSslConfig {
                ctx: ctx_id,
                config: SslConfig::CaCert(ca.file),
            })
            .await
            .map_err(|e| m(ctx, e))?;
    }
    client
        .send(&HttpConfig::SslContextId(ctx_id))
        .await
        .map_err(|e| m(ctx, e))?;
    Ok(())
}

/// Waits for the `+QHTTPGET:` result URC, failing fast on a modem reboot or a lost link.
async fn get_result<T, C, H, S>(
    client: &mut Client<'_, T, C, H>,
    deadline: Duration,
    ctx: &Ctx<'_>,
) -> Res<HttpStatus, T::Error, S>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    let r = client
        .wait_for(deadline, |line| match DownloadUrc::parse(line) {
            Some(DownloadUrc::HttpGet(r)) => Some(Ok(r.result)),
            Some(DownloadUrc::Ready) => Some(Err(Failure::ModemRebooted)),
            Some(DownloadUrc::PdpDeactivated) => Some(Err(Failure::LinkLost)),
            _ => None,
        })
        .await
        .map_err(|e| ctx.fail(Stage::Request, Failure::Modem(e)))?;
    match r {
        Ok(Ok(status)) => Ok(status),
        Ok(Err(http)) => Err(ctx.fail(Stage::Request, Failure::Http(http))),
        Err(f) => Err(ctx.fail(Stage::Request, f)),
    }
}

/// Waits for `+QHTTPREAD: <err>` (unless it came before `OK`) and checks it.
async fn read_result<T, C, H, S>(
    client: &mut Client<'_, T, C, H>,
    early: Option<u16>,
    cfg: &UpdateConfig<'_>,
    ctx: &Ctx<'_>,
) -> Res<(), T::Error, S>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    let code = match early {
        Some(c) => c,
        None => {
            let wait = Duration::from_secs(u64::from(cfg.read_wait) + 1);
            let r = client
                .wait_for(wait, |line| match DownloadUrc::parse(line) {
                    Some(DownloadUrc::HttpRead(r)) => Some(Ok(r)),
                    Some(DownloadUrc::Ready) => Some(Err(Failure::ModemRebooted)),
                    _ => None,
                })
                .await
                .map_err(|e| ctx.fail(Stage::Transfer, Failure::Modem(e)))?;
            match r {
                Ok(Ok(())) => 0,
                Ok(Err(e)) => e.code(),
                Err(f) => return Err(ctx.fail(Stage::Transfer, f)),
            }
        }
    };
    match code {
        0 => Ok(()),
        c => Err(ctx.fail(Stage::Transfer, Failure::Http(HttpError::from_code(c)))),
    }
}

/// Sets the URL and sends a plain GET; returns the server's status.
async fn get<T, C, H, S>(
    client: &mut Client<'_, T, C, H>,
    cfg: &UpdateConfig<'_>,
    url: &str,
    ctx: &Ctx<'_>,
) -> Res<HttpStatus, T::Error, S>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    let m = |e| ctx.fail(Stage::Request, Failure::Modem(e));
    client.send(&SetHttpUrl::new(url)).await.map_err(m)?;
    let get = HttpGet {
        response_time: cfg.response_time,
    };
    client.send(&get).await.map_err(m)?;
    get_result(client, get.result_deadline(), ctx).await
}

/// Fetches a small document (the manifest) into `buf`; returns its length.
async fn fetch_small<T, C, H, S>(
    client: &mut Client<'_, T, C, H>,
    cfg: &UpdateConfig<'_>,
    url: &str,
    buf: &mut [u8],
    ctx: &mut Ctx<'_>,
) -> Res<usize, T::Error, S>
where
    T: Read + Write,
    T::Error: embedded_io_async::Error,
    C: AsyncClock,
    H: UrcHandler,
{
    let st = get(client, cfg, url, ctx).await?;
    if st.status != 200 {
        return Err(ctx.fail(Stage::Manifest, Failure::Status(st.status)));
    }
    let cap = buf.len().min(crate::ota::manifest::MAX_MANIFEST_LEN) as u32;
    let read = match st.content_length {
        Some(n) if n > cap => {
            return Err(ctx.fail(
                Stage::Manifest,
                Failure::Length {
                    expected: cap,
                    got: n,
                },
            ));
        }
        Some(n) => HttpRead::exact(n),
        None => HttpRead::until_trailer(),
    }
    .with_wait_time(cfg.read_wait);
    let mut reader = client
        .read_data(&read)
        .await
        .map_err(|e| ctx.fail(Stage::Manifest, Failure::Modem(e)))?;
    let mut n = 0usize;
    loop {
        let slice = reader
            .fill_buf()
            .await
            .map_err(|e| ctx.fail(Stage::Manifest, Failure::Modem(e)))?;
        if slice.is_empty() {
            break;
        }
        let k = slice.len();
        if n + k > cap as usize {
            return Err(ctx.fail(
                Stage::Manifest,
                Failure::Length {
                    expected: cap,
                    got: (n + k) as u32,
                },
            ));
        }
        buf[n..n + k].copy_from_slice(slice);
        n += k;
        reader.consume(k);
    }
    let (early, _) = reader
        .finish_response(&read)
        .await
        .map_err(|e| ctx.fail(Stage::Manifest, Failure::Modem(e)))?;
    read_result(client, early, cfg, ctx).await?;
    Ok(n)
}

/// Picks the method for `cfg.strategy`.
#[cfg_attr(not(feature = "ranged"), allow(unused_variables))]
async fn choose<T, C, H, S>(
    client: &mut Client<'_, T, C, H>,
    cfg: &UpdateConfig<'_>,
    ctx: &mut Ctx<'_>,
) -> Res<Method, T::Error, S>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    let (method, reason) = match cfg.strategy {
        Strategy::Stream => (Method::Stream, "chosen by the caller"),
        #[cfg(feature = "modem-file")]
        Strategy::ModemFile => (Method::ModemFile, "chosen by the caller"),
        // Refused by the configuration check already; typed here too.
        #[cfg(not(feature = "modem-file"))]
        Strategy::ModemFile => {
            let e = ConfigError::FeatureDisabled {
                feature: Feature::ModemFile,
            };
            return Err(ctx.fail(Stage::Config, Failure::Config(e)));
        }
        #[cfg(not(feature = "ranged"))]
        Strategy::Ranged => {
            let e = ConfigError::FeatureDisabled {
                feature: Feature::Ranged,
            };
            return Err(ctx.fail(Stage::Config, Failure::Config(e)));
        }
        #[cfg(not(feature = "ranged"))]
        Strategy::Auto => {
            if ctx.done == 0 && cfg.rx_dma {
                (
                    Method::Stream,
                    "the UART receives by DMA while flash erases: one read, erasing block by \
                     block as the body arrives",
                )
            } else {
                (
                    Method::StreamErasedAhead,
                    "one read, into flash erased while the modem fetches (built without \
                     ranged requests: a resume reads the body again, skipping what is in flash)",
                )
            }
        }
        #[cfg(feature = "ranged")]
        Strategy::Ranged | Strategy::Auto => {
            if cfg.strategy == Strategy::Auto && ctx.done == 0 && cfg.rx_dma {
                (
                    Method::Stream,
                    "nothing to resume and the UART receives by DMA while flash erases: one \
                     read, erasing block by block as the body arrives",
                )
            } else if cfg.strategy == Strategy::Auto && ctx.done == 0 {
                (
                    Method::StreamErasedAhead,
                    "nothing to resume: one read, into flash erased while the modem fetches \
                     (no erase stalls the UART, with or without flow control)",
                )
            } else {
                let method = ranged_method(client, ctx).await?;
                let reason = if method == Method::RangedGetex {
                    "the modem has AT+QHTTPGETEX"
                } else {
                    "no AT+QHTTPGETEX: Range header in request-header mode"
                };
                (method, reason)
            }
        }
    };
    ctx.report(Progress::Strategy { method, reason });
    Ok(method)
}

/// Writes `data` at the current offset, hashes it and reports progress. Flash not prepared
/// yet is prepared first, one [`ERASE_BLOCK`] at a time ([`prepare_for`]).
async fn put<E, S: AsyncOtaSink>(
    sink: &mut S,
    ctx: &mut Ctx<'_>,
    data: &[u8],
) -> Res<(), E, S::Error> {
    if data.is_empty() {
        return Ok(());
    }
    // `prepare` inlined: calling it here nests one more future in every payload write
    // (8 bytes more in the update future).
    if let Some(len) = prepare_for(ctx, data.len() as u32) {
        sink.prepare(ctx.done, len)
            .await
            .map_err(|e| ctx.fail(Stage::Flash, Failure::Sink(e)))?;
    }
    sink.write(ctx.done, data)
        .await
        .map_err(|e| ctx.fail(Stage::Flash, Failure::Sink(e)))?;
    ctx.hasher.update(data);
    ctx.done += data.len() as u32;
    ctx.report(Progress::Bytes {
        done: ctx.done,
        total: ctx.size,
    });
    Ok(())
}

/// One read of the whole body, written straight from the receive buffer. Bytes already in
/// flash (a resume without Range) are skipped. With `ahead`, the sink erases the rest of the
/// image while the modem fetches it.
async fn stream<T, C, H, S>(
    client: &mut Client<'_, T, C, H>,
    sink: &mut S,
    cfg: &UpdateConfig<'_>,
    ctx: &mut Ctx<'_>,
    pending: Option<HttpStatus>,
    ahead: bool,
) -> Res<(), T::Error, S::Error>
where
    T: Read + Write,
    T::Error: embedded_io_async::Error,
    C: AsyncClock,
    H: UrcHandler,
    S: AsyncOtaSink,
{
    let st = match pending {
        Some(st) => {
            if ahead {
                prepare(sink, ctx, ctx.size - ctx.done).await?;
            }
            st
        }
        None => {
            let m = |e| ctx.fail(Stage::Request, Failure::Modem(e));
            client.send(&SetHttpUrl::new(cfg.url)).await.map_err(m)?;
            let get = HttpGet {
                response_time: cfg.response_time,
            };
            client.send(&get).await.map_err(m)?;
            if ahead {
                // Erase while the modem fetches the body.
                prepare(sink, ctx, ctx.size - ctx.done).await?;
            }
            get_result(client, get.result_deadline(), ctx).await?
        }
    };
    if st.status != 200 {
        return Err(ctx.fail(Stage::HttpStatus, Failure::Status(st.status)));
    }
    if let Some(len) = st.content_length {
        if len != ctx.size {
            return Err(ctx.fail(
                Stage::HttpStatus,
                Failure::Length {
                    expected: ctx.size,
                    got: len,
                },
            ));
        }
    }
    if !ahead {
        // Flash erased in idle time needs no erase: prepare all of it now (nothing is
        // erased), so the sink plans its journal for the whole region and nothing is
        // erased while the body arrives.
        let free = sink.erased_ahead().min(ctx.size - ctx.done);
        if free > 0 {
            prepare(sink, ctx, free).await?;
        }
    }
    let read = match st.content_length {
        Some(n) => HttpRead::exact(n),
        None => HttpRead::until_trailer(),
    }
    .with_wait_time(cfg.read_wait);
    let total = read_into_sink(client, sink, cfg, ctx, &read, 0).await?;
    if total != u64::from(ctx.size) {
        return Err(ctx.fail(
            Stage::Transfer,
            Failure::Length {
                expected: ctx.size,
                got: total.min(u64::from(u32::MAX)) as u32,
            },
        ));
    }
    Ok(())
}

/// Asks the sink to get the next `len` bytes ready (erase ahead) and records them as
/// prepared.
async fn prepare<E, S: AsyncOtaSink>(
    sink: &mut S,
    ctx: &mut Ctx<'_>,
    len: u32,
) -> Res<(), E, S::Error> {
    if len == 0 {
        return Ok(());
    }
    let end = ctx.done.saturating_add(len).min(ctx.size);
    ctx.prepared = ctx.prepared.max(end);
    sink.prepare(ctx.done, len)
        .await
        .map_err(|e| ctx.fail(Stage::Flash, Failure::Sink(e)))
}

/// Size of the flash blocks erased one at a time while a body arrives
/// ([`ERASE_BLOCK`]-aligned image offsets: one 64 KiB block erase each, which NOR flash
/// does several times faster per byte than sixteen 4 KiB sector erases).
const ERASE_BLOCK: u32 = 0x1_0000;

/// Before writing `n` more bytes: if they reach past what is prepared, the length to
/// prepare from the write position up to the next [`ERASE_BLOCK`] boundary after them
/// (normally one block erase), recorded as prepared.
fn prepare_for(ctx: &mut Ctx<'_>, n: u32) -> Option<u32> {
    let need = ctx.done.saturating_add(n).min(ctx.size);
    if need <= ctx.prepared {
        return None;
    }
    let target = need
        .div_ceil(ERASE_BLOCK)
        .saturating_mul(ERASE_BLOCK)
        .min(ctx.size);
    ctx.prepared = target;
    Some(target - ctx.done)
}

/// How many bytes at the end of a payload are kept to recognise a trailer that was counted
/// as body (bytes lost on the UART).
const TAIL: usize = 32;

/// Reads one payload (`read`) whose first byte is image offset `start` straight into the
/// sink, skipping bytes already durable and writing at most `program_size` bytes per sink
/// write ([`put`] prepares flash one [`ERASE_BLOCK`] at a time just before the body reaches
/// it, unless it was prepared ahead). Checks the `+QHTTPREAD:` result. Returns the payload
/// length.
async fn read_into_sink<T, C, H, S>(
    client: &mut Client<'_, T, C, H>,
    sink: &mut S,
    cfg: &UpdateConfig<'_>,
    ctx: &mut Ctx<'_>,
    read: &HttpRead,
    start: u32,
) -> Res<u64, T::Error, S::Error>
where
    T: Read + Write,
    T::Error: embedded_io_async::Error,
    C: AsyncClock,
    H: UrcHandler,
    S: AsyncOtaSink,
{
    let piece = cfg.program_size.max(1) as usize;
    let mut tail = [0u8; TAIL];
    let mut tail_len = 0usize;
    let mut reader = client
        .read_data(read)
        .await
        .map_err(|e| ctx.fail(Stage::Transfer, Failure::Modem(e)))?;
    let mut pos = u64::from(start);
    loop {
        let slice = match reader.fill_buf().await {
            Ok(s) => s,
            Err(e) => return Err(lost_or(ctx, &tail[..tail_len], e)),
        };
        if slice.is_empty() {
            break;
        }
        let n = slice.len();
        let skip = (u64::from(ctx.done).saturating_sub(pos)).min(n as u64) as usize;
        let room = (ctx.size - ctx.done.min(ctx.size)) as usize;
        let data = &slice[skip..];
        if data.len() > room {
            return Err(ctx.fail(
                Stage::Transfer,
                Failure::Length {
                    expected: ctx.size,
                    got: (pos + n as u64).min(u64::from(u32::MAX)) as u32,
                },
            ));
        }
        for p in data.chunks(piece) {
            put(sink, ctx, p).await?;
        }
        keep_tail(&mut tail, &mut tail_len, slice);
        pos += n as u64;
        reader.consume(n);
    }
    let (early, total) = match reader.finish_response(read).await {
        Ok(r) => r,
        Err(e) => return Err(lost_or(ctx, &tail[..tail_len], e)),
    };
    read_result(client, early, cfg, ctx).await?;
    Ok(total)
}

fn keep_tail(tail: &mut [u8; TAIL], len: &mut usize, new: &[u8]) {
    if new.len() >= TAIL {
        tail.copy_from_slice(&new[new.len() - TAIL..]);
        *len = TAIL;
    } else {
        let keep = (*len).min(TAIL - new.len());
        tail.copy_within(*len - keep..*len, 0);
        tail[keep..keep + new.len()].copy_from_slice(new);
        *len = keep + new.len();
    }
}

/// A payload that timed out with the modem's `\r\nOK\r\n` among its last bytes lost bytes
/// on the UART: the trailer filled the count. Otherwise the error stands.
fn lost_or<E, S>(ctx: &Ctx<'_>, tail: &[u8], e: ClientError<E>) -> UpdateError<E, S> {
    const OK: &[u8] = b"\r\nOK\r\n";
    const RESULT: &[u8] = b"+QHTTPREAD: ";
    if matches!(e, ClientError::Timeout) {
        // The modem ended the body itself with an error (the server closed early): that is
        // the failure, not the UART.
        if let Some(p) = tail.windows(RESULT.len()).rposition(|w| w == RESULT) {
            let digits = tail[p + RESULT.len()..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .fold(0u32, |v, &b| {
                    v.saturating_mul(10).saturating_add(u32::from(b - b'0'))
                });
            if digits != 0 {
                let code = u16::try_from(digits).unwrap_or(u16::MAX);
                return ctx.fail(Stage::Transfer, Failure::Http(HttpError::from_code(code)));
            }
        }
        if let Some(p) = tail.windows(OK.len()).rposition(|w| w == OK) {
            return ctx.fail(
                Stage::Transfer,
                Failure::BytesLost {
                    at_least: (tail.len() - p) as u32,
                },
            );
        }
    }
    ctx.fail(Stage::Transfer, Failure::Modem(e))
}

/// Reads a payload of exactly `len` bytes into `buf[..len]` (nothing touches flash
/// meanwhile); returns the reader's parsed answer of `cmd`.
#[cfg(any(feature = "ranged", feature = "modem-file"))]
async fn read_chunk<'r, T, C, H, S, Cmd>(
    client: &'r mut Client<'_, T, C, H>,
    cmd: &Cmd,
    buf: &mut [u8],
    ctx: &Ctx<'_>,
) -> Res<(Cmd::Response<'r>, usize), T::Error, S>
where
    T: Read + Write,
    T::Error: embedded_io_async::Error,
    C: AsyncClock,
    H: UrcHandler,
    Cmd: AtCommand,
{
    let t = |e| ctx.fail(Stage::Transfer, Failure::Modem(e));
    let mut reader = client.read_data(cmd).await.map_err(t)?;
    let mut n = 0usize;
    loop {
        let slice = reader.fill_buf().await.map_err(t)?;
        if slice.is_empty() {
            break;
        }
        let k = slice.len();
        if n + k > buf.len() {
            return Err(ctx.fail(
                Stage::Transfer,
                Failure::Length {
                    expected: buf.len() as u32,
                    got: (n + k) as u32,
                },
            ));
        }
        buf[n..n + k].copy_from_slice(slice);
        n += k;
        reader.consume(k);
    }
    let (resp, _) = reader.finish_response(cmd).await.map_err(t)?;
    Ok((resp, n))
}
