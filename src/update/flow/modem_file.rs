//! Downloads into the module's file system, then reads it back in chunks: the `modem-file`
//! feature.

use super::*;

/// Download into the module's file system, then read it back in chunks. `Ok(false)`: the
/// module file is still open from a session the MCU lost, so it cannot be read; fetch the
/// rest over HTTP instead.
pub(super) async fn modem_file<M: HttpModem, S: AsyncOtaSink>(
    modem: &mut M,
    sink: &mut S,
    cfg: &UpdateConfig<'_>,
    buf: &mut [u8],
    ctx: &mut Ctx<'_>,
    pending: Option<HttpStatus>,
) -> Res<bool> {
    let file = cfg.modem_file;
    // A complete copy from an earlier attempt (before an MCU reset) is reused.
    let present = modem
        .stored_size(file)
        .await
        .map_err(ctx.modem(Stage::Request))?;
    if present != Some(ctx.size) {
        if present.is_some() {
            modem
                .delete_stored(file)
                .await
                .map_err(ctx.modem(Stage::Request))?;
        }
        let free = modem
            .free_space()
            .await
            .map_err(ctx.modem(Stage::Request))?;
        if free < u64::from(ctx.size) {
            return Err(ctx.fail(
                Stage::Request,
                Failure::NoSpace {
                    free,
                    needed: ctx.size,
                },
            ));
        }
        let st = match pending {
            Some(st) => st,
            None => get(modem, cfg.url, ctx).await?,
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
        modem
            .fetch_to_storage(file, ctx.size)
            .await
            .map_err(ctx.modem(Stage::Transfer))?;
        let stored = modem
            .stored_size(file)
            .await
            .map_err(ctx.modem(Stage::Transfer))?;
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
    let opened = modem
        .open_stored(file, ctx.done)
        .await
        .map_err(ctx.modem(Stage::Transfer))?;
    if !opened {
        return Ok(false);
    }
    let chunk = cfg.chunk_size.min(buf.len() as u32).max(1);
    while ctx.done < ctx.size {
        let want = chunk.min(ctx.size - ctx.done) as usize;
        let got = modem
            .read_stored(&mut buf[..want])
            .await
            .map_err(ctx.modem(Stage::Transfer))?;
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
    modem
        .close_stored()
        .await
        .map_err(ctx.modem(Stage::Transfer))?;
    Ok(true)
}
