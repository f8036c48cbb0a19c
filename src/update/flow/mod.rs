//! The update flow itself (async; the blocking entry point drives the same code). It speaks
//! to the modem only through [`HttpModem`].

use embedded_io_async::{Read, Write};
use sha2::{Digest, Sha256};

#[cfg(not(all(feature = "ranged", feature = "modem-file")))]
use super::{ConfigError, Feature};
use super::{
    Failure, HttpBody, HttpModem, HttpStatus, Method, ModemFailure, Outcome, Progress, Stage,
    Strategy, UpdateConfig, UpdateError,
};
use crate::at::AsyncClock;
use crate::client::UrcHandler;
use crate::client::asynch::Client;
use crate::ota::manifest::{Decision, MAX_VERSION_LEN, Manifest, Payload, Version, decide_in};
use crate::ota::{AsyncOtaSink, ExpectedImage, ImageDescriptor, ToSinkFault as _};
use crate::quectel::QuectelHttp;

#[cfg(feature = "modem-file")]
mod modem_file;
#[cfg(all(feature = "delta", feature = "ranged"))]
mod patch;
#[cfg(feature = "ranged")]
mod ranged;
#[cfg(feature = "modem-file")]
use modem_file::modem_file;
#[cfg(feature = "ranged")]
use ranged::ranged;

type Res<T> = Result<T, UpdateError>;

/// Mutable state of one update.
struct Ctx<'p> {
    /// Bytes durable in the sink (also the next write offset).
    done: u32,
    /// Image size.
    size: u32,
    hasher: Sha256,
    progress: &'p mut dyn FnMut(Progress),
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

    fn fail(&self, stage: Stage, failure: Failure) -> UpdateError {
        UpdateError {
            stage,
            failure,
            bytes_done: self.done,
        }
    }

    /// A modem failure at `stage`.
    fn modem<E: embedded_io::Error>(
        &self,
        stage: Stage,
    ) -> impl FnOnce(ModemFailure<E>) -> UpdateError + '_ {
        move |f| self.fail(stage, f.into())
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

/// Runs an update over a Quectel module: [`update_with`] over
/// [`QuectelHttp`](crate::quectel::QuectelHttp) (a plain function returning that future, so
/// the wrapper costs no RAM).
///
/// Cancel safety: not cancel-safe; dropping the future mid-transfer leaves the modem
/// sending. Reset the client and call `AT+QHTTPSTOP` before reusing it; the sink's resume
/// point stays valid.
pub fn update<T, C, H, S>(
    client: &mut Client<'_, T, C, H>,
    sink: &mut S,
    config: &UpdateConfig<'_>,
    buf: &mut [u8],
    progress: &mut dyn FnMut(Progress),
) -> impl Future<Output = Result<Outcome, UpdateError>>
where
    T: Read + Write,
    T::Error: embedded_io_async::Error,
    C: AsyncClock,
    H: UrcHandler,
    S: AsyncOtaSink,
{
    update_with(QuectelHttp::new(client), sink, config, buf, progress)
}

/// Runs an update over any [`HttpModem`] (taken by value: pass a view that borrows the
/// modem, as [`QuectelHttp`] borrows the client): fetch (and judge) the manifest, download the image
/// into `sink` with the configured strategy, resume where the sink says, verify, activate.
///
/// * `buf` is the chunk buffer (a 4 KiB chunk needs 4 KiB) and holds the manifest while it
///   is read; at least 1 KiB.
/// * `progress` receives [`Progress`] events; the library prints nothing.
///
/// Returns [`Outcome::UpToDate`] when the manifest offers the running version, else
/// [`Outcome::Installed`] once the sink has verified and activated the image. On error the
/// running image stays selected and [`UpdateError::bytes_done`] says how much a retry will
/// not download again. Whatever the result, [`HttpModem::close`] runs before this returns.
///
/// Cancel safety: not cancel-safe; dropping the future mid-transfer leaves the modem
/// sending; the sink's resume point stays valid.
pub async fn update_with<M, S>(
    mut modem: M,
    sink: &mut S,
    config: &UpdateConfig<'_>,
    buf: &mut [u8],
    progress: &mut dyn FnMut(Progress),
) -> Result<Outcome, UpdateError>
where
    M: HttpModem,
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
        prepared: 0,
    };
    let result = run(&mut modem, sink, config, buf, &mut ctx).await;
    conclude(modem, config, result).await
}

/// Logs the outcome and leaves the modem ready ([`HttpModem::close`]); after an install
/// from the module's file system, deletes the file there. (A function of its own, so the
/// result waits inside its future instead of beside [`run`]'s in the caller's.)
#[cfg_attr(not(feature = "modem-file"), allow(unused_variables))]
async fn conclude<M: HttpModem>(
    mut modem: M,
    config: &UpdateConfig<'_>,
    result: Res<Outcome>,
) -> Res<Outcome> {
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
    modem.close(result.is_err()).await;
    #[cfg(feature = "modem-file")]
    if let Ok(Outcome::Installed {
        method: Method::ModemFile,
        ..
    }) = result
    {
        // The copy in the module is no longer needed.
        let _ = modem.delete_stored(config.modem_file).await;
    }
    result
}

async fn run<M, S>(
    modem: &mut M,
    sink: &mut S,
    cfg: &UpdateConfig<'_>,
    buf: &mut [u8],
    ctx: &mut Ctx<'_>,
) -> Res<Outcome>
where
    M: HttpModem,
    S: AsyncOtaSink,
{
    modem.open(cfg).await.map_err(ctx.modem(Stage::Setup))?;
    // The image's identity, size and (with a manifest) expected SHA-256.
    let mut pending_get = None;
    let mut payload = Payload::Full;
    let (desc, expected) = match cfg.manifest_url {
        Some(murl) => {
            let n = fetch_small(modem, murl, buf, ctx).await?;
            // The rest of the buffer holds the signed message while the signature is checked.
            let (text, scratch) = buf.split_at_mut(n);
            let m = Manifest::parse(text)
                .map_err(|e| ctx.fail(Stage::Manifest, Failure::Manifest(e)))?;
            let decision = decide_in(&m, &cfg.policy(), scratch)
                .map_err(|e| ctx.fail(Stage::Manifest, Failure::Manifest(e)))?;
            if decision == Decision::UpToDate {
                return Ok(Outcome::UpToDate);
            }
            // Without the decoder a patch would be written as if it were the image and
            // fail its hash after the whole download: refuse it now.
            #[cfg(not(all(feature = "delta", feature = "ranged")))]
            if m.payload != Payload::Full {
                let e = crate::ota::manifest::ManifestError::UnsupportedPayload {
                    kind: m.payload.kind(),
                };
                return Err(ctx.fail(Stage::Manifest, Failure::Manifest(e)));
            }
            payload = m.payload;
            ctx.report(Progress::Manifest { size: m.size });
            // `m` borrows `buf`, which the transfer reuses: keep the version by value.
            (
                m.image_descriptor(),
                Some((m.sha256, OwnedVersion::of(&m.version))),
            )
        }
        None => {
            // Learn the size from the server; the response stays in the modem for a stream.
            let st = get(modem, cfg.url, ctx).await?;
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

    // A patch: its description, and for a delta the running image checked against the
    // base it was made from, before anything is erased.
    #[cfg(all(feature = "delta", feature = "ranged"))]
    let patch = match payload {
        Payload::Full => None,
        Payload::Compressed { size, sha256 } => Some(patch::PatchSpec {
            size,
            sha256,
            base_len: 0,
        }),
        Payload::Delta {
            size,
            sha256,
            base_size,
            base_sha256,
        } => {
            patch::check_base(sink, (base_size, base_sha256), buf, ctx).await?;
            Some(patch::PatchSpec {
                size,
                sha256,
                base_len: base_size,
            })
        }
    };
    #[cfg(not(all(feature = "delta", feature = "ranged")))]
    let _ = payload;

    let resume = sink
        .begin(&desc)
        .await
        .map_err(|e| ctx.fail(Stage::Flash, Failure::Sink(e.to_fault())))?;
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
            .map_err(|e| ctx.fail(Stage::Flash, Failure::Sink(e.to_fault())))?;
        ctx.hasher.update(&buf[..n]);
        pos += n as u32;
    }
    ctx.done = resumed_from;

    #[cfg(all(feature = "delta", feature = "ranged"))]
    let method = match patch {
        Some(spec) => {
            ctx.report(Progress::Started {
                total: desc.size,
                resumed_from,
            });
            patch::apply(modem, sink, cfg, buf, ctx, spec).await?
        }
        None => transfer(modem, sink, cfg, buf, ctx, pending_get, resumed_from).await?,
    };
    #[cfg(not(all(feature = "delta", feature = "ranged")))]
    let method = transfer(modem, sink, cfg, buf, ctx, pending_get, resumed_from).await?;
    verify(sink, ctx, method, expected.as_ref(), resumed_from).await
}

/// Downloads the image itself with the configured strategy, from the resume point.
#[cfg_attr(
    not(any(feature = "ranged", feature = "modem-file")),
    allow(unused_variables)
)]
async fn transfer<M, S>(
    modem: &mut M,
    sink: &mut S,
    cfg: &UpdateConfig<'_>,
    buf: &mut [u8],
    ctx: &mut Ctx<'_>,
    mut pending_get: Option<HttpStatus>,
    resumed_from: u32,
) -> Res<Method>
where
    M: HttpModem,
    S: AsyncOtaSink,
{
    #[cfg_attr(
        not(any(feature = "ranged", feature = "modem-file")),
        allow(unused_mut)
    )]
    let mut method = choose(modem, cfg, ctx).await?;
    ctx.report(Progress::Started {
        total: ctx.size,
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
                stream(modem, sink, cfg, ctx, pending_get.take(), ahead).await?;
                break;
            }
            #[cfg(feature = "ranged")]
            Method::RangedGetex | Method::RangedHeader => {
                match ranged(modem, sink, cfg, buf, ctx, method).await? {
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
                if modem_file(modem, sink, cfg, buf, ctx, pending_get.take()).await? {
                    break;
                }
                #[cfg(feature = "ranged")]
                let ranges = modem
                    .ranged_method()
                    .await
                    .map_err(ctx.modem(Stage::Setup))?;
                #[cfg(not(feature = "ranged"))]
                let ranges: Option<Method> = None;
                let (to, reason) = match ranges {
                    Some(m) => (
                        m,
                        "the module file is still open from a session the MCU lost \
                         (+CME ERROR: 426); ranges from the resume point instead",
                    ),
                    None => (
                        Method::StreamErasedAhead,
                        "the module file is still open from a session the MCU lost \
                         (+CME ERROR: 426); the body again, skipping what is in flash",
                    ),
                };
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

    Ok(method)
}

/// Checks the length and SHA-256 of what was written, then lets the sink verify and
/// activate it.
async fn verify<S: AsyncOtaSink>(
    sink: &mut S,
    ctx: &mut Ctx<'_>,
    method: Method,
    expected: Option<&([u8; 32], OwnedVersion)>,
    resumed_from: u32,
) -> Res<Outcome> {
    ctx.report(Progress::Verifying);
    if ctx.done != ctx.size {
        return Err(ctx.fail(
            Stage::Verification,
            Failure::Length {
                expected: ctx.size,
                got: ctx.done,
            },
        ));
    }
    let mut check = ExpectedImage::sha256(core::mem::take(&mut ctx.hasher).finalize().into());
    if let Some((sha256, version)) = expected {
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
        .map_err(|e| ctx.fail(Stage::Activation, Failure::Sink(e.to_fault())))?;
    Ok(Outcome::Installed {
        method,
        size: ctx.size,
        sha256: check.sha256,
        resumed_from,
    })
}

/// Sends a plain GET and waits for the server's status.
async fn get<M: HttpModem>(modem: &mut M, url: &str, ctx: &Ctx<'_>) -> Res<HttpStatus> {
    let within = modem.get(url).await.map_err(ctx.modem(Stage::Request))?;
    modem
        .response(within)
        .await
        .map_err(ctx.modem(Stage::Request))
}

/// Fetches a small document (the manifest) into `buf`; returns its length.
async fn fetch_small<M: HttpModem>(
    modem: &mut M,
    url: &str,
    buf: &mut [u8],
    ctx: &mut Ctx<'_>,
) -> Res<usize> {
    let st = get(modem, url, ctx).await?;
    if st.status != 200 {
        return Err(ctx.fail(Stage::Manifest, Failure::Status(st.status)));
    }
    let cap = buf.len().min(crate::ota::manifest::MAX_MANIFEST_LEN) as u32;
    if let Some(n) = st.content_length.filter(|&n| n > cap) {
        return Err(ctx.fail(
            Stage::Manifest,
            Failure::Length {
                expected: cap,
                got: n,
            },
        ));
    }
    read_body_into(
        modem,
        st.content_length,
        &mut buf[..cap as usize],
        Stage::Manifest,
        ctx,
    )
    .await
}

/// Reads a body (`len` bytes, or to its end) into `buf` (nothing touches flash meanwhile);
/// returns its length. A body longer than `buf` is a [`Failure::Length`].
async fn read_body_into<M: HttpModem>(
    modem: &mut M,
    len: Option<u32>,
    buf: &mut [u8],
    stage: Stage,
    ctx: &Ctx<'_>,
) -> Res<usize> {
    let mut body = modem.body(len).await.map_err(ctx.modem(stage))?;
    let mut n = 0usize;
    loop {
        let slice = body.fill_buf().await.map_err(ctx.modem(stage))?;
        if slice.is_empty() {
            break;
        }
        let k = slice.len();
        if n + k > buf.len() {
            return Err(ctx.fail(
                stage,
                Failure::Length {
                    expected: buf.len() as u32,
                    got: (n + k) as u32,
                },
            ));
        }
        buf[n..n + k].copy_from_slice(slice);
        n += k;
        body.consume(k);
    }
    body.finish().await.map_err(ctx.modem(stage))?;
    Ok(n)
}

/// Picks the method for `cfg.strategy`.
#[cfg_attr(not(feature = "ranged"), allow(unused_variables))]
async fn choose<M: HttpModem>(
    modem: &mut M,
    cfg: &UpdateConfig<'_>,
    ctx: &mut Ctx<'_>,
) -> Res<Method> {
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
            // A body larger than the modem can hold from one response comes in ranges.
            let fits = modem.max_body().is_none_or(|max| max >= ctx.size);
            if cfg.strategy == Strategy::Auto && ctx.done == 0 && cfg.rx_dma && fits {
                (
                    Method::Stream,
                    "nothing to resume and the UART receives by DMA while flash erases: one \
                     read, erasing block by block as the body arrives",
                )
            } else if cfg.strategy == Strategy::Auto && ctx.done == 0 && fits {
                (
                    Method::StreamErasedAhead,
                    "nothing to resume: one read, into flash erased while the modem fetches \
                     (no erase stalls the UART, with or without flow control)",
                )
            } else {
                let ranges = modem
                    .ranged_method()
                    .await
                    .map_err(ctx.modem(Stage::Setup))?;
                match ranges {
                    Some(Method::RangedGetex) => {
                        (Method::RangedGetex, "the modem has AT+QHTTPGETEX")
                    }
                    Some(method) if !fits => (
                        method,
                        "the image is larger than the modem can hold from one response: \
                         ranges by a Range header",
                    ),
                    Some(method) => (method, "ranges by a Range header"),
                    None if cfg.strategy == Strategy::Ranged => {
                        let f = Failure::Unsupported(super::Capability::RangedRequests);
                        return Err(ctx.fail(Stage::Setup, f));
                    }
                    None => (
                        Method::StreamErasedAhead,
                        "the modem has no ranged requests: one read, into flash erased while \
                         the modem fetches, skipping what is in flash",
                    ),
                }
            }
        }
    };
    ctx.report(Progress::Strategy { method, reason });
    Ok(method)
}

/// Writes `data` at the current offset, hashes it and reports progress. Flash not prepared
/// yet is prepared first, one [`ERASE_BLOCK`] at a time ([`prepare_for`]).
async fn put<S: AsyncOtaSink>(sink: &mut S, ctx: &mut Ctx<'_>, data: &[u8]) -> Res<()> {
    if data.is_empty() {
        return Ok(());
    }
    // `prepare` inlined: calling it here nests one more future in every payload write
    // (8 bytes more in the update future).
    if let Some(len) = prepare_for(ctx, data.len() as u32) {
        sink.prepare(ctx.done, len)
            .await
            .map_err(|e| ctx.fail(Stage::Flash, Failure::Sink(e.to_fault())))?;
    }
    sink.write(ctx.done, data)
        .await
        .map_err(|e| ctx.fail(Stage::Flash, Failure::Sink(e.to_fault())))?;
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
async fn stream<M: HttpModem, S: AsyncOtaSink>(
    modem: &mut M,
    sink: &mut S,
    cfg: &UpdateConfig<'_>,
    ctx: &mut Ctx<'_>,
    pending: Option<HttpStatus>,
    ahead: bool,
) -> Res<()> {
    let st = match pending {
        Some(st) => {
            if ahead {
                prepare(sink, ctx, ctx.size - ctx.done).await?;
            }
            st
        }
        None => {
            let within = modem
                .get(cfg.url)
                .await
                .map_err(ctx.modem(Stage::Request))?;
            if ahead {
                // Erase while the modem fetches the body.
                prepare(sink, ctx, ctx.size - ctx.done).await?;
            }
            modem
                .response(within)
                .await
                .map_err(ctx.modem(Stage::Request))?
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
    let total = read_into_sink(modem, sink, ctx, st.content_length, 0, cfg.program_size).await?;
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
async fn prepare<S: AsyncOtaSink>(sink: &mut S, ctx: &mut Ctx<'_>, len: u32) -> Res<()> {
    if len == 0 {
        return Ok(());
    }
    let end = ctx.done.saturating_add(len).min(ctx.size);
    ctx.prepared = ctx.prepared.max(end);
    sink.prepare(ctx.done, len)
        .await
        .map_err(|e| ctx.fail(Stage::Flash, Failure::Sink(e.to_fault())))
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

/// Reads one body (`len` bytes, or to its end) whose first byte is image offset `start`
/// straight into the sink, skipping bytes already durable and writing at most `piece` bytes
/// per sink write (the sink's program size; [`put`] prepares flash one [`ERASE_BLOCK`] at a time just before the body
/// reaches it, unless it was prepared ahead). Returns the body's length.
async fn read_into_sink<M: HttpModem, S: AsyncOtaSink>(
    modem: &mut M,
    sink: &mut S,
    ctx: &mut Ctx<'_>,
    len: Option<u32>,
    start: u32,
    piece: u32,
) -> Res<u64> {
    let piece = piece.max(1) as usize;
    let mut body = modem.body(len).await.map_err(ctx.modem(Stage::Transfer))?;
    let mut pos = u64::from(start);
    loop {
        let slice = body.fill_buf().await.map_err(ctx.modem(Stage::Transfer))?;
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
        pos += n as u64;
        body.consume(n);
    }
    body.finish().await.map_err(ctx.modem(Stage::Transfer))
}
