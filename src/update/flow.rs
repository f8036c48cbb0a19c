//! The update flow itself (async; the blocking entry point drives the same code).

use core::time::Duration;

use embedded_io_async::{BufRead, Read, Write};
use sha2::{Digest, Sha256};

use super::{Failure, Method, Outcome, Progress, Stage, Strategy, Tls, UpdateConfig, UpdateError};
use crate::at::{AsyncClock, AtCommand, EncodeError, Encoder, Lines, ParseError, ResponseLines};
use crate::client::asynch::Client;
use crate::client::{Error as ClientError, ModemCode, Rejection, TimeoutExt, UrcHandler};
use crate::ota::manifest::{Decision, MAX_VERSION_LEN, Manifest, Version, decide};
use crate::ota::{AsyncOtaSink, ExpectedImage, ImageDescriptor};
use crate::quectel::error::HttpError;
use crate::quectel::file::{
    CloseFile, DeleteFile, Drive, FileHandle, FreeSpace, ListFiles, OpenFile, OpenMode, ReadFile,
    SeekFile, SeekOrigin, UploadFile,
};
use crate::quectel::http::{
    HttpConfig, HttpGet, HttpGetRange, HttpGetWithHeader, HttpRead, HttpReadFile, HttpStop,
    SetHttpUrl, write_get_request,
};
use crate::quectel::ssl::{SetSslConfig, SslConfig};
use crate::quectel::urc::{HttpStatus, Urc};

/// Room for one request-header block (`GET <path> HTTP/1.1`, `Host:`, `Range:`), taken from
/// the end of the chunk buffer in request-header mode.
const HEADER_BUF: usize = 512;
/// Slowest transfer rate assumed when waiting for `+QHTTPREADFILE:` (bytes per second).
const MIN_FILE_RATE: u32 = 4096;
/// Deadline for the clean-up commands run on every exit.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(10);

type Res<T, E, S> = Result<T, UpdateError<E, S>>;

/// Mutable state of one update.
struct Ctx<'p> {
    /// Bytes durable in the sink (also the next write offset).
    done: u32,
    /// Image size.
    size: u32,
    hasher: Sha256,
    progress: &'p mut dyn FnMut(Progress),
    header_mode: bool,
    file: Option<FileHandle>,
    /// Image offset up to which the sink was asked to get flash ready
    /// ([`AsyncOtaSink::prepare`]).
    prepared: u32,
}

impl Ctx<'_> {
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

/// `AT+QHTTPGETEX=?`: answers `OK` only where the module has the ranged GET.
struct GetexProbe;

impl AtCommand for GetexProbe {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+QHTTPGETEX=?")
    }
    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+QHTTPGETEX:")
    }
    fn parse<'a>(&self, _lines: Lines<'a>) -> Result<(), ParseError> {
        Ok(())
    }
}

fn is_https(url: &str) -> bool {
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
        header_mode: false,
        file: None,
        prepared: 0,
    };
    let result = run(client, sink, config, buf, &mut ctx).await;
    cleanup(client, &mut ctx, result.is_err()).await;
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
    if let Some(handle) = ctx.file.take() {
        let _ = client
            .send(&CloseFile { handle }.with_timeout(CLEANUP_TIMEOUT))
            .await;
    }
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
            (ctx.progress)(Progress::Manifest { size: m.size });
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

    let mut method = choose(client, cfg, ctx).await?;
    (ctx.progress)(Progress::Started {
        total: desc.size,
        resumed_from,
    });

    // Transfer, falling back to a stream when a server ignores Range.
    loop {
        match method {
            Method::Stream | Method::StreamErasedAhead => {
                let ahead = method == Method::StreamErasedAhead;
                stream(client, sink, cfg, ctx, pending_get.take(), ahead).await?;
                break;
            }
            Method::RangedGetex | Method::RangedHeader => {
                match ranged(client, sink, cfg, buf, ctx, method).await? {
                    None => break,
                    Some(full) => {
                        method = Method::StreamErasedAhead;
                        (ctx.progress)(Progress::Fallback {
                            to: method,
                            reason: "the server ignored Range (200 instead of 206)",
                        });
                        pending_get = Some(full);
                    }
                }
            }
            Method::ModemFile => {
                if modem_file(client, sink, cfg, buf, ctx, pending_get.take()).await? {
                    break;
                }
                method = ranged_method(client, ctx).await?;
                (ctx.progress)(Progress::Fallback {
                    to: method,
                    reason: "the module file is still open from a session the MCU lost \
                             (+CME ERROR: 426); ranges from the resume point instead",
                });
            }
        }
    }

    (ctx.progress)(Progress::Verifying);
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
    (ctx.progress)(Progress::Activating);
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
    let https = is_https(cfg.url) || cfg.manifest_url.is_some_and(is_https);
    if https {
        let tls: Tls<'_> = cfg.tls.unwrap_or_default();
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
    }
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
        .wait_for(deadline, |line| match Urc::parse(line) {
            Some(Ok(Urc::HttpGet(r))) => Some(Ok(r.result)),
            Some(Ok(Urc::Ready)) => Some(Err(Failure::ModemRebooted)),
            Some(Ok(Urc::PdpDeactivated { .. })) => Some(Err(Failure::LinkLost)),
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
                .wait_for(wait, |line| match Urc::parse(line) {
                    Some(Ok(Urc::HttpRead(r))) => Some(Ok(r)),
                    Some(Ok(Urc::Ready)) => Some(Err(Failure::ModemRebooted)),
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
        Strategy::ModemFile => (Method::ModemFile, "chosen by the caller"),
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
    (ctx.progress)(Progress::Strategy { method, reason });
    Ok(method)
}

/// The ranged method this modem supports: GETEX if `AT+QHTTPGETEX=?` answers `OK`, else a
/// `Range:` header in request-header mode.
async fn ranged_method<T, C, H, S>(
    client: &mut Client<'_, T, C, H>,
    ctx: &Ctx<'_>,
) -> Res<Method, T::Error, S>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    match client.send(&GetexProbe).await {
        Ok(()) => Ok(Method::RangedGetex),
        Err(ClientError::Rejected(_)) => Ok(Method::RangedHeader),
        Err(e) => Err(ctx.fail(Stage::Setup, Failure::Modem(e))),
    }
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
    (ctx.progress)(Progress::Bytes {
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

/// Requests `len` bytes at `start` with the chosen ranged method.
async fn request_range<T, C, H, S>(
    client: &mut Client<'_, T, C, H>,
    cfg: &UpdateConfig<'_>,
    hdr: &mut [u8],
    method: Method,
    start: u32,
    len: u32,
    ctx: &Ctx<'_>,
) -> Res<Duration, T::Error, S>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    let m = |e| ctx.fail(Stage::Request, Failure::Modem(e));
    if method == Method::RangedGetex {
        let get = HttpGetRange {
            response_time: cfg.response_time,
            start,
            len,
        };
        client.send(&get).await.map_err(m)?;
        Ok(get.result_deadline())
    } else {
        let end = u64::from(start) + u64::from(len) - 1;
        let n = write_get_request(hdr, cfg.url, Some((u64::from(start), Some(end))), &[])
            .map_err(|e| m(ClientError::Encode(e)))?;
        let get = HttpGetWithHeader {
            response_time: cfg.response_time,
            header: &hdr[..n],
            input_time: None,
        };
        client.send(&get).await.map_err(m)?;
        Ok(get.result_deadline())
    }
}

/// Sets the URL for ranged requests and, for `Range:` headers, switches request-header mode
/// on (the clean-up switches it off again).
async fn start_ranges<T, C, H, S>(
    client: &mut Client<'_, T, C, H>,
    cfg: &UpdateConfig<'_>,
    ctx: &mut Ctx<'_>,
    method: Method,
) -> Res<(), T::Error, S>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    let m = |ctx: &Ctx<'_>, e| ctx.fail(Stage::Request, Failure::Modem(e));
    client
        .send(&SetHttpUrl::new(cfg.url))
        .await
        .map_err(|e| m(ctx, e))?;
    if method == Method::RangedHeader {
        client
            .send(&HttpConfig::RequestHeader(true))
            .await
            .map_err(|e| m(ctx, e))?;
        ctx.header_mode = true;
    }
    Ok(())
}

/// What a range request got.
enum RangeAnswer {
    /// 206 with the expected length.
    Chunk,
    /// 200 with the whole body: the server ignored Range.
    Whole(HttpStatus),
}

async fn range_answer<T, C, H, S>(
    client: &mut Client<'_, T, C, H>,
    deadline: Duration,
    len: u32,
    ctx: &Ctx<'_>,
) -> Res<RangeAnswer, T::Error, S>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    let st = get_result(client, deadline, ctx).await?;
    match (st.status, st.content_length) {
        (206, Some(n)) if n == len => Ok(RangeAnswer::Chunk),
        (206, got) => Err(ctx.fail(
            Stage::HttpStatus,
            Failure::Length {
                expected: len,
                got: got.unwrap_or(0),
            },
        )),
        // The whole body (or a chunked one, whose length the stream then checks).
        (200, Some(n)) if n == ctx.size => Ok(RangeAnswer::Whole(st)),
        (200, None) => Ok(RangeAnswer::Whole(st)),
        (200, got) => Err(ctx.fail(
            Stage::HttpStatus,
            Failure::Length {
                expected: ctx.size,
                got: got.unwrap_or(0),
            },
        )),
        (status, _) => Err(ctx.fail(Stage::HttpStatus, Failure::Status(status))),
    }
}

/// Reads a payload of exactly `len` bytes into `buf[..len]` (nothing touches flash
/// meanwhile); returns the reader's parsed answer of `cmd`.
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

/// Host-paced ranged transfer. Returns `Some(status)` if the server ignored Range (the
/// whole body then waits in the modem, to be streamed).
async fn ranged<T, C, H, S>(
    client: &mut Client<'_, T, C, H>,
    sink: &mut S,
    cfg: &UpdateConfig<'_>,
    buf: &mut [u8],
    ctx: &mut Ctx<'_>,
    method: Method,
) -> Res<Option<HttpStatus>, T::Error, S::Error>
where
    T: Read + Write,
    T::Error: embedded_io_async::Error,
    C: AsyncClock,
    H: UrcHandler,
    S: AsyncOtaSink,
{
    if ctx.done >= ctx.size {
        return Ok(None);
    }
    if let Some(range) = cfg.range_size {
        return ranged_direct(client, sink, cfg, buf, ctx, method, range.max(1)).await;
    }
    // In request-header mode the end of the buffer holds the request block.
    let hdr_len = if method == Method::RangedHeader {
        HEADER_BUF.min(buf.len() / 2)
    } else {
        0
    };
    let (buf, hdr) = buf.split_at_mut(buf.len() - hdr_len);
    // At least 512 bytes remain (the buffer is at least 1 KiB), and chunk_size > 0.
    let chunk = cfg.chunk_size.min(buf.len() as u32).max(1);
    start_ranges(client, cfg, ctx, method).await?;
    let mut off = ctx.done;
    let mut len = chunk.min(ctx.size - off);
    let deadline = request_range(client, cfg, hdr, method, off, len, ctx).await?;
    if let RangeAnswer::Whole(st) = range_answer(client, deadline, len, ctx).await? {
        return Ok(Some(st));
    }
    loop {
        let read = HttpRead::exact(len).with_wait_time(cfg.read_wait);
        let (early, got) = read_chunk(client, &read, &mut buf[..len as usize], ctx).await?;
        let early: Option<u16> = early;
        read_result(client, early, cfg, ctx).await?;
        if got != len as usize {
            return Err(ctx.fail(
                Stage::Transfer,
                Failure::Length {
                    expected: len,
                    got: got as u32,
                },
            ));
        }
        let next = off + len;
        let next_len = chunk.min(ctx.size - next);
        // Ask for the next range before writing, so the modem fetches while flash works.
        let next_deadline = if next_len > 0 {
            Some(request_range(client, cfg, hdr, method, next, next_len, ctx).await?)
        } else {
            None
        };
        put(sink, ctx, &buf[..len as usize]).await?;
        let Some(deadline) = next_deadline else {
            return Ok(None);
        };
        if let RangeAnswer::Whole(st) = range_answer(client, deadline, next_len, ctx).await? {
            return Ok(Some(st));
        }
        off = next;
        len = next_len;
    }
}

/// Ranged transfer straight into flash: each range's sectors are erased while the modem
/// fetches it (or, with [`UpdateConfig::rx_dma`], block by block as the range arrives),
/// then the range is written in page-sized pieces as it arrives. Returns `Some(status)` if
/// the server ignored Range.
async fn ranged_direct<T, C, H, S>(
    client: &mut Client<'_, T, C, H>,
    sink: &mut S,
    cfg: &UpdateConfig<'_>,
    buf: &mut [u8],
    ctx: &mut Ctx<'_>,
    method: Method,
    range: u32,
) -> Res<Option<HttpStatus>, T::Error, S::Error>
where
    T: Read + Write,
    T::Error: embedded_io_async::Error,
    C: AsyncClock,
    H: UrcHandler,
    S: AsyncOtaSink,
{
    start_ranges(client, cfg, ctx, method).await?;
    let hdr_len = HEADER_BUF.min(buf.len());
    let hdr = &mut buf[..hdr_len];
    while ctx.done < ctx.size {
        let off = ctx.done;
        let len = range.min(ctx.size - off);
        let deadline = request_range(client, cfg, hdr, method, off, len, ctx).await?;
        if !cfg.rx_dma {
            prepare(sink, ctx, len).await?;
        }
        if let RangeAnswer::Whole(st) = range_answer(client, deadline, len, ctx).await? {
            return Ok(Some(st));
        }
        let read = HttpRead::exact(len).with_wait_time(cfg.read_wait);
        let got = read_into_sink(client, sink, cfg, ctx, &read, off).await?;
        if got != u64::from(len) {
            return Err(ctx.fail(
                Stage::Transfer,
                Failure::Length {
                    expected: len,
                    got: got as u32,
                },
            ));
        }
    }
    Ok(None)
}

/// File error "file already opened" (quectel-at.md §5, file error codes).
const FILE_ALREADY_OPEN: u16 = 426;

/// Download into the module's file system, then read it back in chunks. `Ok(false)`: the
/// module file is still open from a session the MCU lost, so it cannot be read; fetch the
/// rest over HTTP instead.
async fn modem_file<T, C, H, S>(
    client: &mut Client<'_, T, C, H>,
    sink: &mut S,
    cfg: &UpdateConfig<'_>,
    buf: &mut [u8],
    ctx: &mut Ctx<'_>,
    pending: Option<HttpStatus>,
) -> Res<bool, T::Error, S::Error>
where
    T: Read + Write,
    T::Error: embedded_io_async::Error,
    C: AsyncClock,
    H: UrcHandler,
    S: AsyncOtaSink,
{
    let file = cfg.modem_file;
    let m = |ctx: &Ctx<'_>, stage, e| ctx.fail(stage, Failure::Modem(e));
    // A complete copy from an earlier attempt (before an MCU reset) is reused.
    let present = match client.send(&ListFiles::name(file)).await {
        Ok(list) => list.find(file).map(|e| e.size),
        Err(ClientError::Rejected(_)) => None,
        Err(e) => return Err(m(ctx, Stage::Request, e)),
    };
    if present != Some(ctx.size) {
        if present.is_some() {
            client
                .send(&DeleteFile::new(file))
                .await
                .map_err(|e| m(ctx, Stage::Request, e))?;
        }
        let space = client
            .send(&FreeSpace { drive: Drive::Ufs })
            .await
            .map_err(|e| m(ctx, Stage::Request, e))?;
        if space.free < u64::from(ctx.size) {
            return Err(ctx.fail(
                Stage::Request,
                Failure::NoSpace {
                    free: space.free,
                    needed: ctx.size,
                },
            ));
        }
        let st = match pending {
            Some(st) => st,
            None => get(client, cfg, cfg.url, ctx).await?,
        };
        if st.status != 200 {
            return Err(ctx.fail(Stage::HttpStatus, Failure::Status(st.status)));
        }
        if st.content_length.is_some_and(|n| n != ctx.size) {
            return Err(ctx.fail(
                Stage::HttpStatus,
                Failure::Length {
                    expected: ctx.size,
                    got: st.content_length.unwrap_or(0),
                },
            ));
        }
        client
            .send(&HttpReadFile {
                file,
                wait_time: cfg.read_wait,
            })
            .await
            .map_err(|e| m(ctx, Stage::Transfer, e))?;
        let wait =
            Duration::from_secs(u64::from(cfg.read_wait) + u64::from(ctx.size / MIN_FILE_RATE) + 1);
        let r = client
            .wait_for(wait, |line| match Urc::parse(line) {
                Some(Ok(Urc::HttpReadFile(r))) => Some(r.map_err(Failure::Http)),
                Some(Ok(Urc::Ready)) => Some(Err(Failure::ModemRebooted)),
                Some(Ok(Urc::PdpDeactivated { .. })) => Some(Err(Failure::LinkLost)),
                _ => None,
            })
            .await
            .map_err(|e| m(ctx, Stage::Transfer, e))?;
        r.map_err(|f| ctx.fail(Stage::Transfer, f))?;
        let stored = client
            .send(&ListFiles::name(file))
            .await
            .map_err(|e| m(ctx, Stage::Transfer, e))?
            .find(file)
            .map(|e| e.size);
        if stored != Some(ctx.size) {
            return Err(ctx.fail(
                Stage::Transfer,
                Failure::Length {
                    expected: ctx.size,
                    got: stored.unwrap_or(0),
                },
            ));
        }
    }
    let handle = match client
        .send(&OpenFile {
            name: file,
            mode: OpenMode::ReadOnly,
        })
        .await
    {
        Ok(h) => h,
        // Still open from before an MCU reset, under a handle this session never learnt:
        // only a module reboot closes it. The server still has the image.
        Err(ClientError::Rejected(Rejection::Cme(ModemCode::Numeric(FILE_ALREADY_OPEN)))) => {
            return Ok(false);
        }
        Err(e) => return Err(m(ctx, Stage::Transfer, e)),
    };
    ctx.file = Some(handle);
    if ctx.done > 0 {
        client
            .send(&SeekFile {
                handle,
                offset: ctx.done,
                origin: SeekOrigin::Start,
            })
            .await
            .map_err(|e| m(ctx, Stage::Transfer, e))?;
    }
    let chunk = cfg.chunk_size.min(buf.len() as u32).max(1);
    while ctx.done < ctx.size {
        let want = chunk.min(ctx.size - ctx.done);
        let read = ReadFile {
            handle,
            len: Some(want),
        };
        let ((), got) = read_chunk(client, &read, &mut buf[..want as usize], ctx).await?;
        if got == 0 {
            return Err(ctx.fail(
                Stage::Transfer,
                Failure::Length {
                    expected: ctx.size,
                    got: ctx.done,
                },
            ));
        }
        put(sink, ctx, &buf[..got]).await?;
    }
    if let Some(handle) = ctx.file.take() {
        client
            .send(&CloseFile { handle })
            .await
            .map_err(|e| m(ctx, Stage::Transfer, e))?;
    }
    Ok(true)
}
