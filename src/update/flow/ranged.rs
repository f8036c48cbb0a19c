//! Host-paced ranged downloads (`AT+QHTTPGETEX` or a `Range:` header in request-header
//! mode): the `ranged` feature.

use super::*;
use crate::at::{EncodeError, Encoder, Lines, ParseError, ResponseLines};
use crate::quectel::http::{HttpGetRange, HttpGetWithHeader, write_get_request};

/// Room for one request-header block (`GET <path> HTTP/1.1`, `Host:`, `Range:`), taken from
/// the end of the chunk buffer in request-header mode.
pub(super) const HEADER_BUF: usize = 512;
/// `AT+QHTTPGETEX=?`: answers `OK` only where the module has the ranged GET.
pub(super) struct GetexProbe;

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

/// The ranged method this modem supports: GETEX if `AT+QHTTPGETEX=?` answers `OK`, else a
/// `Range:` header in request-header mode.
pub(super) async fn ranged_method<T, C, H, S>(
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

/// Requests `len` bytes at `start` with the chosen ranged method.
pub(super) async fn request_range<T, C, H, S>(
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
pub(super) async fn start_ranges<T, C, H, S>(
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
pub(super) enum RangeAnswer {
    /// 206 with the expected length.
    Chunk,
    /// 200 with the whole body: the server ignored Range.
    Whole(HttpStatus),
}

pub(super) async fn range_answer<T, C, H, S>(
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

/// Host-paced ranged transfer. Returns `Some(status)` if the server ignored Range (the
/// whole body then waits in the modem, to be streamed).
pub(super) async fn ranged<T, C, H, S>(
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
pub(super) async fn ranged_direct<T, C, H, S>(
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
