//! Downloads into the module's file system (`AT+QHTTPREADFILE`, then `AT+QFREAD` chunks):
//! the `modem-file` feature.

use super::*;
use crate::client::{ModemCode, Rejection};
use crate::quectel::file::{
    Drive, FreeSpace, ListFiles, OpenFile, OpenMode, ReadFile, SeekFile, SeekOrigin,
};
use crate::quectel::http::HttpReadFile;

/// Slowest transfer rate assumed when waiting for `+QHTTPREADFILE:` (bytes per second).
pub(super) const MIN_FILE_RATE: u32 = 4096;
/// File error "file already opened" (quectel-at.md §5, file error codes).
pub(super) const FILE_ALREADY_OPEN: u16 = 426;

/// Download into the module's file system, then read it back in chunks. `Ok(false)`: the
/// module file is still open from a session the MCU lost, so it cannot be read; fetch the
/// rest over HTTP instead.
pub(super) async fn modem_file<T, C, H, S>(
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
            .wait_for(wait, |line| match DownloadUrc::parse(line) {
                Some(DownloadUrc::HttpReadFile(r)) => Some(r.map_err(Failure::Http)),
                Some(DownloadUrc::Ready) => Some(Err(Failure::ModemRebooted)),
                Some(DownloadUrc::PdpDeactivated) => Some(Err(Failure::LinkLost)),
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
