//! Host-paced ranged downloads ([`HttpModem::get_range`]): the `ranged` feature.

use core::time::Duration;

use super::*;

/// What a range request got.
enum RangeAnswer {
    /// 206 with the expected length.
    Chunk,
    /// 200 with the whole body: the server ignored Range.
    Whole(HttpStatus),
}

async fn range_answer<M: HttpModem>(
    modem: &mut M,
    within: Duration,
    len: u32,
    ctx: &Ctx<'_>,
) -> Res<RangeAnswer> {
    let st = modem
        .response(within)
        .await
        .map_err(ctx.modem(Stage::Request))?;
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

/// Requests `len` bytes at `start`.
pub(super) async fn request<M: HttpModem>(
    modem: &mut M,
    cfg: &UpdateConfig<'_>,
    method: Method,
    (start, len): (u32, u32),
    scratch: &mut [u8],
    ctx: &Ctx<'_>,
) -> Res<Duration> {
    modem
        .get_range(cfg.url, method, start, len, scratch)
        .await
        .map_err(ctx.modem(Stage::Request))
}

/// Reads the answer to a range into all of `chunk` (its length is the range's), then asks
/// for the range `(next, next_len)` if it is not empty, so that the modem fetches it while
/// the caller writes; returns that request's deadline.
pub(super) async fn read_range<M: HttpModem>(
    modem: &mut M,
    (cfg, method): (&UpdateConfig<'_>, Method),
    chunk: &mut [u8],
    (next, next_len): (u32, u32),
    scratch: &mut [u8],
    ctx: &Ctx<'_>,
) -> Res<Option<Duration>> {
    let len = chunk.len() as u32;
    let got = read_body_into(modem, Some(len), chunk, Stage::Transfer, ctx).await?;
    if got != chunk.len() {
        return Err(ctx.fail(
            Stage::Transfer,
            Failure::Length {
                expected: len,
                got: got as u32,
            },
        ));
    }
    if next_len == 0 {
        return Ok(None);
    }
    Ok(Some(
        request(modem, cfg, method, (next, next_len), scratch, ctx).await?,
    ))
}

/// Host-paced ranged transfer. Returns `Some(status)` if the server ignored Range (the
/// whole body then waits in the modem, to be streamed).
pub(super) async fn ranged<M: HttpModem, S: AsyncOtaSink>(
    modem: &mut M,
    sink: &mut S,
    cfg: &UpdateConfig<'_>,
    buf: &mut [u8],
    ctx: &mut Ctx<'_>,
    method: Method,
) -> Res<Option<HttpStatus>> {
    if ctx.done >= ctx.size {
        return Ok(None);
    }
    // No range longer than the modem can hold from one response.
    let cap = modem.max_body().unwrap_or(u32::MAX).max(1);
    if let Some(range) = cfg.range_size {
        return ranged_direct(modem, sink, cfg, buf, ctx, method, range.min(cap).max(1)).await;
    }
    // The end of the buffer holds what the modem needs to build a request (a header block).
    let scratch = modem.range_scratch(method).min(buf.len() / 2);
    let (buf, scratch) = buf.split_at_mut(buf.len() - scratch);
    // At least 512 bytes remain (the buffer is at least 1 KiB), and chunk_size > 0.
    let chunk = cfg.chunk_size.min(buf.len() as u32).min(cap).max(1);
    modem
        .start_ranges(cfg.url, method)
        .await
        .map_err(ctx.modem(Stage::Request))?;
    let mut off = ctx.done;
    let mut len = chunk.min(ctx.size - off);
    let within = request(modem, cfg, method, (off, len), scratch, ctx).await?;
    if let RangeAnswer::Whole(st) = range_answer(modem, within, len, ctx).await? {
        return Ok(Some(st));
    }
    loop {
        let next = off + len;
        let next_len = chunk.min(ctx.size - next);
        let next_within = read_range(
            modem,
            (cfg, method),
            &mut buf[..len as usize],
            (next, next_len),
            scratch,
            ctx,
        )
        .await?;
        put(sink, ctx, &buf[..len as usize]).await?;
        let Some(within) = next_within else {
            return Ok(None);
        };
        if let RangeAnswer::Whole(st) = range_answer(modem, within, next_len, ctx).await? {
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
async fn ranged_direct<M: HttpModem, S: AsyncOtaSink>(
    modem: &mut M,
    sink: &mut S,
    cfg: &UpdateConfig<'_>,
    buf: &mut [u8],
    ctx: &mut Ctx<'_>,
    method: Method,
    range: u32,
) -> Res<Option<HttpStatus>> {
    modem
        .start_ranges(cfg.url, method)
        .await
        .map_err(ctx.modem(Stage::Request))?;
    let scratch = modem.range_scratch(method).min(buf.len());
    let scratch = &mut buf[..scratch];
    while ctx.done < ctx.size {
        let off = ctx.done;
        let len = range.min(ctx.size - off);
        let within = request(modem, cfg, method, (off, len), scratch, ctx).await?;
        if !cfg.rx_dma {
            prepare(sink, ctx, len).await?;
        }
        if let RangeAnswer::Whole(st) = range_answer(modem, within, len, ctx).await? {
            return Ok(Some(st));
        }
        let got = read_into_sink(modem, sink, ctx, Some(len), off, cfg.program_size).await?;
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
