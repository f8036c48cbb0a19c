//! Patch payloads (features `delta` and `ranged`): a detools patch, from the running image
//! (a delta) or from nothing (a compressed image), applied while it downloads.
//!
//! The patch comes in host-paced ranges: each range is read into the chunk buffer while
//! nothing is written, then decoded, and its output written through the sink while the
//! modem already fetches the next range. A patch expands (2.5 % of the image for a small
//! code change), so its output could not be written as fast as a stream of it arrives.
//!
//! Every [`CHECKPOINT`] bytes of output the decoder stops
//! ([`DeltaDecoder::decode_until`]) and its state, with the patch hash's and the patch's
//! identity, is kept by the sink with that resume point ([`AsyncOtaSink::save_state`]).
//! A later attempt resumes the patch there with a range request. A sink that keeps no state
//! (or a resume point without one) resumes the flash writes only: the patch is read from its
//! start again and the output below the durable point is checked off, not written.

use sha2::digest::common::hazmat::SerializableState;

use super::ranged::{read_range, request};
use super::*;
use crate::delta::{DeltaDecoder, Event, STATE_LEN, add_base};
use crate::ota::sink::{MAX_STATE_LEN, STATE_ALIGN};
use crate::update::Capability;

/// The decoder the flow runs: a 256-byte output buffer (events of at most 256 bytes) keeps
/// it at 624 bytes instead of 1392.
type Decoder = DeltaDecoder<256>;

/// Output bytes between two checkpoints (a multiple of [`STATE_ALIGN`]).
pub(super) const CHECKPOINT: u32 = 4 * STATE_ALIGN;

/// Serialized length of a SHA-256 in progress.
const HASH_STATE_LEN: usize = 104;
/// A checkpoint: the patch's SHA-256 (its identity), the patch hash in progress, the
/// decoder.
const RECORD_LEN: usize = 32 + HASH_STATE_LEN + STATE_LEN;
const _: () = assert!(RECORD_LEN <= MAX_STATE_LEN);

/// Room at the end of the chunk buffer for base bytes and a checkpoint record.
const SCRATCH: usize = 512;
const _: () = assert!(SCRATCH >= RECORD_LEN);

/// What the manifest says about the patch.
#[derive(Clone, Copy)]
pub(super) struct PatchSpec {
    /// The served file's length and SHA-256.
    pub(super) size: u32,
    pub(super) sha256: [u8; 32],
    /// The base image's length (0 for a compressed image).
    pub(super) base_len: u32,
}

/// Checks that the running image's first `size` bytes hash to `sha256`, before anything is
/// erased. `buf` is scratch.
pub(super) async fn check_base<S: AsyncOtaSink>(
    sink: &mut S,
    (size, sha256): (u32, [u8; 32]),
    buf: &mut [u8],
    ctx: &Ctx<'_>,
) -> Res<()> {
    let mut hasher = Sha256::new();
    let mut pos = 0u32;
    while pos < size {
        let n = (size - pos).min(buf.len() as u32) as usize;
        let chunk = &mut buf[..n];
        let read = sink
            .read_running(pos, chunk)
            .await
            .map_err(|e| ctx.fail(Stage::Manifest, Failure::Sink(e.to_fault())))?;
        if !read {
            let f = Failure::Unsupported(Capability::RunningImage);
            return Err(ctx.fail(Stage::Manifest, f));
        }
        hasher.update(&*chunk);
        pos += n as u32;
    }
    let running: [u8; 32] = hasher.finalize().into();
    if running != sha256 {
        return Err(ctx.fail(
            Stage::Manifest,
            Failure::WrongBase {
                expected: sha256,
                running,
            },
        ));
    }
    Ok(())
}

/// Downloads the patch in ranges of the chunk buffer and writes its output from the resume
/// point on. Returns the method used.
pub(super) async fn apply<M: HttpModem, S: AsyncOtaSink>(
    modem: &mut M,
    sink: &mut S,
    cfg: &UpdateConfig<'_>,
    buf: &mut [u8],
    ctx: &mut Ctx<'_>,
    spec: PatchSpec,
) -> Res<Method> {
    let method = modem
        .ranged_method()
        .await
        .map_err(ctx.modem(Stage::Setup))?
        .ok_or_else(|| {
            let f = Failure::Unsupported(Capability::RangedRequests);
            ctx.fail(Stage::Setup, f)
        })?;
    ctx.report(Progress::Strategy {
        method,
        reason: "a patch comes in ranges, each decoded and written while the modem fetches \
                 the next",
    });

    // The buffer: [ chunk | range request scratch | base bytes and checkpoint ].
    let (rest, tmp) = buf.split_at_mut(buf.len() - SCRATCH);
    let scratch = modem.range_scratch(method).min(rest.len() / 2);
    let (chunk, scratch) = rest.split_at_mut(rest.len() - scratch);
    let chunk_len = cfg.chunk_size.min(chunk.len() as u32).max(1);
    let chunk_len = modem
        .max_body()
        .map_or(chunk_len, |m| chunk_len.min(m.max(1)));

    let mut dec = Decoder::with_buffer(spec.base_len);
    let mut hasher = Sha256::new();
    resume(sink, spec, tmp, ctx, (&mut dec, &mut hasher)).await?;
    // The next output offset to stop at for a checkpoint.
    let mut stop = (dec.output_position() / CHECKPOINT + 1).saturating_mul(CHECKPOINT);
    let mut off = dec.patch_consumed().min(u64::from(spec.size)) as u32;
    let done = if off >= spec.size {
        // A checkpoint after the patch's last byte (its output still in the decoder's
        // window): the rest comes without input.
        decode(
            sink,
            ctx,
            (&mut dec, &mut stop),
            &mut hasher,
            spec,
            &[],
            tmp,
        )
        .await?
    } else {
        modem
            .start_ranges(cfg.url, method)
            .await
            .map_err(ctx.modem(Stage::Request))?;
        let mut len = chunk_len.min(spec.size - off);
        let mut within = request(modem, cfg, method, (off, len), scratch, ctx).await?;
        loop {
            check_range(modem, within, (len, off == 0 && len == spec.size), ctx).await?;
            let next = off + len;
            let next_len = chunk_len.min(spec.size - next);
            let next_within = read_range(
                modem,
                (cfg, method),
                &mut chunk[..len as usize],
                (next, next_len),
                scratch,
                ctx,
            )
            .await?;
            let data = &chunk[..len as usize];
            let done = decode(
                sink,
                ctx,
                (&mut dec, &mut stop),
                &mut hasher,
                spec,
                data,
                tmp,
            )
            .await?;
            match (done, next_within) {
                (false, Some(w)) => (off, len, within) = (next, next_len, w),
                (done, None) => break done,
                // The patch ended before its last byte: not the file the manifest describes.
                (true, Some(_)) => {
                    return Err(ctx.fail(
                        Stage::Transfer,
                        Failure::Length {
                            expected: spec.size,
                            got: dec.patch_consumed() as u32,
                        },
                    ));
                }
            }
        }
    };
    if !done {
        let e = dec
            .finish()
            .err()
            .unwrap_or(crate::delta::DeltaError::Truncated {
                patch_consumed: dec.patch_consumed(),
                output: dec.output_position(),
            });
        return Err(ctx.fail(Stage::Transfer, Failure::Patch(e)));
    }
    let patch: [u8; 32] = hasher.finalize().into();
    if patch != spec.sha256 {
        // The output came from a patch that is not the signed one: never resume it.
        let _ = sink.abort().await;
        return Err(ctx.fail(Stage::Verification, Failure::HashMismatch));
    }
    Ok(method)
}

/// 206 with the length asked for (or 200 when the range asked for is the whole file); any
/// other 200 means the server ignored Range, which a patch cannot do without.
async fn check_range<M: HttpModem>(
    modem: &mut M,
    within: core::time::Duration,
    (len, whole): (u32, bool),
    ctx: &Ctx<'_>,
) -> Res<()> {
    let st = modem
        .response(within)
        .await
        .map_err(ctx.modem(Stage::Request))?;
    let failure = match (st.status, st.content_length) {
        (206, Some(n)) if n == len => return Ok(()),
        (200, Some(n)) if whole && n == len => return Ok(()),
        (206, got) => Failure::Length {
            expected: len,
            got: got.unwrap_or(0),
        },
        (200, _) => Failure::Unsupported(Capability::RangedRequests),
        (status, _) => Failure::Status(status),
    };
    Err(ctx.fail(Stage::HttpStatus, failure))
}

/// Sets the decoder and patch hash (fresh) to the state the sink kept with its resume
/// point, if it has one for this patch; otherwise they stay fresh and the patch is read from
/// its start.
async fn resume<S: AsyncOtaSink>(
    sink: &mut S,
    spec: PatchSpec,
    tmp: &mut [u8],
    ctx: &Ctx<'_>,
    (dec, hasher): (&mut Decoder, &mut Sha256),
) -> Res<()> {
    if ctx.done == 0 {
        return Ok(());
    }
    let kept = sink
        .load_state(tmp)
        .await
        .map_err(|e| ctx.fail(Stage::Flash, Failure::Sink(e.to_fault())))?;
    let hash = <&_>::try_from(&tmp[32..32 + HASH_STATE_LEN])
        .ok()
        .and_then(|s| Sha256::deserialize(s).ok());
    match hash {
        Some(hash)
            if kept == Some(RECORD_LEN)
                && tmp[..32] == spec.sha256
                && dec
                    .restore_into(&tmp[32 + HASH_STATE_LEN..RECORD_LEN])
                    .is_ok()
                && dec.output_position() == ctx.done =>
        {
            *hasher = hash;
        }
        _ => {
            *dec = Decoder::with_buffer(spec.base_len);
            warn!(
                "update: no checkpoint at {}: the patch is read from its start, writing from \
                 there",
                ctx.done
            );
        }
    }
    Ok(())
}

/// Feeds one range to the decoder and writes its output beyond what is durable. Returns
/// whether the patch is complete.
async fn decode<S: AsyncOtaSink>(
    sink: &mut S,
    ctx: &mut Ctx<'_>,
    (dec, stop): (&mut Decoder, &mut u32),
    hasher: &mut Sha256,
    spec: PatchSpec,
    mut input: &[u8],
    tmp: &mut [u8],
) -> Res<bool> {
    loop {
        // A patch for another target size: refused once its header is read (before its
        // first piece is written, or right after it).
        if let Some(to) = dec.target_size().filter(|&to| to != ctx.size) {
            return Err(ctx.fail(
                Stage::Transfer,
                Failure::Length {
                    expected: ctx.size,
                    got: to,
                },
            ));
        }
        let (used, event) = dec
            .decode_until(input, *stop)
            .map_err(|e| ctx.fail(Stage::Transfer, Failure::Patch(e)))?;
        // The hash covers exactly what the decoder consumed, so that a checkpoint's hash
        // state continues at its patch offset.
        hasher.update(&input[..used]);
        input = &input[used..];
        match event {
            Event::NeedInput => return Ok(false),
            Event::Done => {
                // Bytes after the end (padding of the last heatshrink byte) are part of
                // the file the manifest hashes.
                hasher.update(input);
                return Ok(true);
            }
            Event::Stopped => {
                // Below the durable point (a patch read again) there is nothing to keep.
                if dec.output_position() == ctx.done {
                    checkpoint(sink, ctx, dec, hasher, spec, tmp).await?;
                }
                *stop = stop.saturating_add(CHECKPOINT);
            }
            Event::Extra { to_offset, data } => {
                let skip = ctx.done.saturating_sub(to_offset).min(data.len() as u32);
                put(sink, ctx, &data[skip as usize..]).await?;
            }
            Event::Diff {
                to_offset,
                base_offset,
                add,
            } => {
                let skip = ctx.done.saturating_sub(to_offset).min(add.len() as u32) as usize;
                let mut at = base_offset + skip as u32;
                for piece in add[skip..].chunks(tmp.len()) {
                    let out = &mut tmp[..piece.len()];
                    let read = sink
                        .read_running(at, out)
                        .await
                        .map_err(|e| ctx.fail(Stage::Flash, Failure::Sink(e.to_fault())))?;
                    if !read {
                        let f = Failure::Unsupported(Capability::RunningImage);
                        return Err(ctx.fail(Stage::Flash, f));
                    }
                    add_base(out, piece);
                    put(sink, ctx, out).await?;
                    at += piece.len() as u32;
                }
            }
        }
    }
}

/// Keeps the decoder's state with the sink's resume point at the write position.
async fn checkpoint<S: AsyncOtaSink>(
    sink: &mut S,
    ctx: &mut Ctx<'_>,
    dec: &Decoder,
    hasher: &Sha256,
    spec: PatchSpec,
    tmp: &mut [u8],
) -> Res<()> {
    let record = &mut tmp[..RECORD_LEN];
    let (head, state) = record.split_at_mut(32 + HASH_STATE_LEN);
    head[..32].copy_from_slice(&spec.sha256);
    head[32..].copy_from_slice(&hasher.serialize());
    // RECORD_LEN - 136 == STATE_LEN, so the chunk is always there.
    if let Some(state) = state.first_chunk_mut::<STATE_LEN>() {
        dec.save(state)
            .map_err(|e| ctx.fail(Stage::Transfer, Failure::Patch(e)))?;
    }
    let kept = sink
        .save_state(ctx.done, record)
        .await
        .map_err(|e| ctx.fail(Stage::Flash, Failure::Sink(e.to_fault())))?;
    if kept {
        trace!("update: checkpoint at {}", ctx.done);
    }
    Ok(())
}
