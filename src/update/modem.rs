//! Upgrading the modem's own firmware with `AT+QFOTADL` (quectel-at.md §8).
//!
//! [`upgrade_modem`] configures the module where its family needs it (`AT+QCFG="fota/path"`
//! and `"fota/cid"`), starts the download, turns the `+QIND: "FOTA",...` stream into
//! [`FotaProgress`] events, waits through the module's reboots (the port may go silent or
//! report errors while the module restarts; the modem re-sends its boot URCs), and reports
//! success only on `"END",0` followed by a new revision from `AT+QGMR`. Every failure is a
//! [`FotaError`] naming the [`FotaStage`] and, where the modem sent one, its code with a
//! meaning for the module's chipset family.
//!
//! Deadlines (quectel-at.md §9, from Quectel's own test harness): 60 s from `OK` to the
//! download's start, 300 s of silence at most while downloading or upgrading, and 120 s for
//! the module to answer `AT` again after its final reboot. They are fields of
//! [`FotaTimeouts`].
//!
//! The transport must survive the reboot: a UART does by itself; a USB port disappears and
//! comes back, so its transport should re-open the device when a read fails (the host
//! example `serial_ota` does). While it is gone, errors from the transport are retried until
//! the stage's deadline.

use core::time::Duration;

use embedded_io_async::{Read, Write};

use crate::at::AsyncClock;
use crate::client::asynch::Client;
use crate::client::{Error as ClientError, TimeoutExt, UrcHandler, blocking};
use crate::quectel::ChipFamily;
use crate::quectel::error::{FotaEndCode, describe};
use crate::quectel::fota::{FotaDownload, FotaOptions, SetFotaContext, SetFotaPath};
use crate::quectel::general::{Attention, FullRevision};
use crate::quectel::urc::{FotaEvent, Urc};

/// Longest revision string kept.
pub const MAX_REVISION: usize = 64;

/// A revision string as `AT+QGMR` printed it.
pub type Revision = heapless::String<MAX_REVISION>;

/// Per-stage deadlines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FotaTimeouts {
    /// From `OK` to the download's start URC.
    pub start: Duration,
    /// Longest silence while downloading (between progress URCs).
    pub download_gap: Duration,
    /// Longest silence while rebooting and upgrading (between URCs).
    pub upgrade_gap: Duration,
    /// From `"END",0` until the module answers `AT` again.
    pub ready: Duration,
}

impl Default for FotaTimeouts {
    fn default() -> Self {
        FotaTimeouts {
            start: Duration::from_secs(60),
            download_gap: Duration::from_secs(300),
            upgrade_gap: Duration::from_secs(300),
            ready: Duration::from_secs(120),
        }
    }
}

/// What to upgrade from.
#[derive(Clone, Copy, Debug)]
pub struct ModemFotaConfig<'a> {
    /// The package: `http://`, `https://` or `ftp://` URL (at most 255 bytes).
    pub url: &'a str,
    /// The module's chipset family (selects configuration and the `END` code table).
    pub family: ChipFamily,
    /// PDP context for the download (`AT+QCFG="fota/cid"`; ASR and Unisoc).
    pub context_id: u8,
    /// `AT+QCFG="fota/path"` for Unisoc modules (EC200U needs `"UFS:"`, with the colon).
    pub fota_path: &'a str,
    /// The ASR/EC200U tail of `AT+QFOTADL` (upgrade mode and progress URC counts).
    pub options: Option<FotaOptions>,
    /// Deadlines.
    pub timeouts: FotaTimeouts,
}

impl<'a> ModemFotaConfig<'a> {
    /// Defaults for `family`: context 1, `"UFS:"`, no options, default timeouts.
    pub const fn new(url: &'a str, family: ChipFamily) -> Self {
        ModemFotaConfig {
            url,
            family,
            context_id: 1,
            fota_path: "UFS:",
            options: None,
            timeouts: FotaTimeouts {
                start: Duration::from_secs(60),
                download_gap: Duration::from_secs(300),
                upgrade_gap: Duration::from_secs(300),
                ready: Duration::from_secs(120),
            },
        }
    }
}

/// Progress of a module upgrade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FotaProgress {
    /// The module accepted `AT+QFOTADL`.
    Accepted,
    /// The package download started.
    DownloadStarted,
    /// Download progress in percent.
    Downloading(u8),
    /// The package is in the module.
    Downloaded,
    /// The module rebooted (`RDY`).
    Rebooted,
    /// The transport failed; retrying until the stage's deadline (a USB port re-enumerating).
    PortLost,
    /// The upgrade started.
    UpgradeStarted,
    /// Upgrade progress in percent (may jump and restart across reboots).
    Updating(u8),
    /// BG96's restore phase, in percent.
    Restoring(u8),
    /// `"END",0`: the upgrade succeeded; waiting for the module to come back.
    Upgraded,
}

/// Where a module upgrade failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FotaStage {
    /// Reading the revision or configuring `fota/path` / `fota/cid`.
    Configure,
    /// `AT+QFOTADL` itself.
    Request,
    /// The package download.
    Download,
    /// Rebooting into and running the upgrade.
    Upgrade,
    /// Confirming the new revision.
    Confirm,
}

impl core::fmt::Display for FotaStage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            FotaStage::Configure => "configuration",
            FotaStage::Request => "request",
            FotaStage::Download => "download",
            FotaStage::Upgrade => "upgrade",
            FotaStage::Confirm => "confirmation",
        })
    }
}

/// What went wrong.
#[derive(Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FotaFailure<E> {
    /// A command failed (refused, timed out, transport error).
    Modem(ClientError<E>),
    /// No FOTA URC within the stage's deadline.
    Silent,
    /// The download ended with this code (`HTTPEND` / `FTPEND` / `FILEEND`).
    Download {
        /// The code.
        code: u16,
        /// Its meaning.
        meaning: &'static str,
    },
    /// The upgrade ended with this code (`"END",<err>`).
    Upgrade {
        /// The code.
        code: u16,
        /// Its meaning for the module's family.
        meaning: &'static str,
    },
    /// `AT+QGMR` shows the same revision as before the upgrade.
    RevisionUnchanged,
}

/// A failed module upgrade.
#[derive(Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FotaError<E> {
    /// Where it failed.
    pub stage: FotaStage,
    /// What failed.
    pub failure: FotaFailure<E>,
}

impl<E> FotaError<E> {
    /// The modem's code, if any.
    pub fn code(&self) -> Option<u16> {
        match &self.failure {
            FotaFailure::Download { code, .. } | FotaFailure::Upgrade { code, .. } => Some(*code),
            FotaFailure::Modem(ClientError::Rejected(crate::client::Rejection::Cme(c))) => {
                match c {
                    crate::client::ModemCode::Numeric(n) => Some(*n),
                    crate::client::ModemCode::Text(t) => {
                        crate::quectel::error::CmeError::from_text(t.as_bytes()).map(|e| e.code())
                    }
                }
            }
            _ => None,
        }
    }

    /// The code's meaning, if any.
    pub fn meaning(&self) -> Option<&'static str> {
        match &self.failure {
            FotaFailure::Download { meaning, .. } | FotaFailure::Upgrade { meaning, .. } => {
                Some(meaning)
            }
            _ => self.code().map(describe),
        }
    }
}

impl<E: core::fmt::Debug> core::fmt::Display for FotaError<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "module upgrade failed at {}: ", self.stage)?;
        match &self.failure {
            FotaFailure::Modem(e) => {
                write!(f, "{e}")?;
                match self.meaning() {
                    Some(m) => write!(f, " ({m})"),
                    None => Ok(()),
                }
            }
            FotaFailure::Silent => f.write_str("no FOTA report within the deadline"),
            FotaFailure::Download { code, meaning } => {
                write!(f, "download ended with {code}: {meaning}")
            }
            FotaFailure::Upgrade { code, meaning } => {
                write!(f, "upgrade ended with {code}: {meaning}")
            }
            FotaFailure::RevisionUnchanged => f.write_str("the revision did not change"),
        }
    }
}

impl<E: core::fmt::Debug> core::error::Error for FotaError<E> {}

/// The result of a successful module upgrade.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FotaReport {
    /// `AT+QGMR` before.
    pub old_revision: Revision,
    /// `AT+QGMR` after.
    pub new_revision: Revision,
}

fn fail<E>(stage: FotaStage, failure: FotaFailure<E>) -> FotaError<E> {
    FotaError { stage, failure }
}

async fn revision<T, C, H>(
    client: &mut Client<'_, T, C, H>,
    stage: FotaStage,
) -> Result<Revision, FotaError<T::Error>>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    let r = client
        .send(&FullRevision)
        .await
        .map_err(|e| fail(stage, FotaFailure::Modem(e)))?;
    let mut s = Revision::new();
    for c in r.chars().take(MAX_REVISION) {
        let _ = s.push(c);
    }
    Ok(s)
}

/// What the next FOTA URC (or the lack of one) means.
enum Seen {
    Fota(FotaEvent),
    Rebooted,
}

/// Waits up to `gap` for a FOTA URC or a reboot; transport errors (a port re-enumerating)
/// are retried until then.
async fn next_event<T, C, H>(
    client: &mut Client<'_, T, C, H>,
    gap: Duration,
    stage: FotaStage,
    progress: &mut dyn FnMut(FotaProgress),
) -> Result<Seen, FotaError<T::Error>>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    let deadline = client.clock().now() + gap;
    loop {
        let left = deadline.saturating_duration_since(client.clock().now());
        if left.is_zero() {
            return Err(fail(stage, FotaFailure::Silent));
        }
        let r = client
            .wait_for(left, |line| match Urc::parse(line) {
                Some(Ok(Urc::Fota(ev))) => Some(Seen::Fota(ev)),
                Some(Ok(Urc::Ready)) => Some(Seen::Rebooted),
                _ => None,
            })
            .await;
        match r {
            Ok(seen) => return Ok(seen),
            Err(ClientError::Timeout) => return Err(fail(stage, FotaFailure::Silent)),
            Err(ClientError::Io(_) | ClientError::Closed) => {
                progress(FotaProgress::PortLost);
                client.reset();
                // Give the port a moment before reading again.
                let now = client.clock().now();
                let pause = (now + Duration::from_secs(1)).min(deadline);
                client.clock().wait_until(pause).await;
            }
            Err(e) => return Err(fail(stage, FotaFailure::Modem(e))),
        }
    }
}

/// Upgrades the module's firmware from `config.url`; see the module docs.
///
/// Returns the revisions before and after. Not cancel-safe: dropping the future leaves the
/// module downloading or upgrading (it finishes on its own).
pub async fn upgrade_modem<T, C, H>(
    client: &mut Client<'_, T, C, H>,
    config: &ModemFotaConfig<'_>,
    progress: &mut dyn FnMut(FotaProgress),
) -> Result<FotaReport, FotaError<T::Error>>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    use FotaStage::*;
    let old_revision = revision(client, Configure).await?;
    let m = |stage, e| fail(stage, FotaFailure::Modem(e));
    match config.family {
        ChipFamily::Unisoc => {
            client
                .send(&SetFotaPath {
                    path: config.fota_path,
                })
                .await
                .map_err(|e| m(Configure, e))?;
            client
                .send(&SetFotaContext {
                    cid: config.context_id,
                })
                .await
                .map_err(|e| m(Configure, e))?;
        }
        ChipFamily::Asr => {
            client
                .send(&SetFotaContext {
                    cid: config.context_id,
                })
                .await
                .map_err(|e| m(Configure, e))?;
        }
        ChipFamily::Qualcomm => {}
    }
    let mut cmd = FotaDownload::url(config.url);
    if let Some(o) = config.options {
        cmd = cmd.with_options(o);
    }
    client.send(&cmd).await.map_err(|e| m(Request, e))?;
    progress(FotaProgress::Accepted);

    let t = config.timeouts;
    // Download stage.
    let mut gap = t.start;
    let mut started = false;
    loop {
        match next_event(client, gap, Download, progress).await? {
            Seen::Rebooted => progress(FotaProgress::Rebooted),
            Seen::Fota(ev) => match ev {
                FotaEvent::HttpStart { .. } | FotaEvent::FtpStart | FotaEvent::FileStart => {
                    started = true;
                    gap = t.download_gap;
                    progress(FotaProgress::DownloadStarted);
                }
                FotaEvent::Downloading(p) => {
                    gap = t.download_gap;
                    progress(FotaProgress::Downloading(p));
                }
                FotaEvent::HttpEnd { code, .. }
                | FotaEvent::FtpEnd { code }
                | FotaEvent::FileEnd { code } => {
                    if code != 0 {
                        let meaning = ev.meaning(Some(config.family)).unwrap_or(describe(code));
                        return Err(fail(Download, FotaFailure::Download { code, meaning }));
                    }
                    progress(FotaProgress::Downloaded);
                    break;
                }
                // A local package (or BG96's fixed path) has no download stage.
                FotaEvent::Start if !started => {
                    progress(FotaProgress::UpgradeStarted);
                    break;
                }
                FotaEvent::End(code) => {
                    return finish_end(client, config, code, old_revision, progress).await;
                }
                _ => {}
            },
        }
    }
    // Reboot and upgrade stage.
    loop {
        match next_event(client, t.upgrade_gap, Upgrade, progress).await? {
            Seen::Rebooted => progress(FotaProgress::Rebooted),
            Seen::Fota(FotaEvent::Start) => progress(FotaProgress::UpgradeStarted),
            Seen::Fota(FotaEvent::Updating(p)) => progress(FotaProgress::Updating(p)),
            Seen::Fota(FotaEvent::Restore(p)) => progress(FotaProgress::Restoring(p)),
            Seen::Fota(FotaEvent::End(code)) => {
                return finish_end(client, config, code, old_revision, progress).await;
            }
            Seen::Fota(_) => {}
        }
    }
}

/// After `"END",<code>`: fail on a non-zero code, else wait for the module and confirm the
/// new revision.
async fn finish_end<T, C, H>(
    client: &mut Client<'_, T, C, H>,
    config: &ModemFotaConfig<'_>,
    code: FotaEndCode,
    old_revision: Revision,
    progress: &mut dyn FnMut(FotaProgress),
) -> Result<FotaReport, FotaError<T::Error>>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    if !code.is_success() {
        return Err(fail(
            FotaStage::Upgrade,
            FotaFailure::Upgrade {
                code: code.code(),
                meaning: code.meaning(Some(config.family)),
            },
        ));
    }
    progress(FotaProgress::Upgraded);
    // The module reboots into the new firmware. Wait for its `RDY` for up to half the
    // deadline (a port that re-enumerates may lose it), then poll with AT until it answers.
    let deadline = client.clock().now() + config.timeouts.ready;
    if let Ok(Seen::Rebooted) = next_event(
        client,
        config.timeouts.ready / 2,
        FotaStage::Confirm,
        progress,
    )
    .await
    {
        progress(FotaProgress::Rebooted);
    }
    loop {
        let now = client.clock().now();
        if now >= deadline {
            return Err(fail(FotaStage::Confirm, FotaFailure::Silent));
        }
        match client
            .send(&Attention.with_timeout(Duration::from_secs(2)))
            .await
        {
            Ok(()) => break,
            Err(ClientError::Io(_) | ClientError::Closed) => {
                progress(FotaProgress::PortLost);
                client.reset();
                let pause = (now + Duration::from_secs(1)).min(deadline);
                client.clock().wait_until(pause).await;
            }
            Err(_) => {
                // Booting modules answer nothing or ERROR; try again.
                client.reset();
            }
        }
    }
    let new_revision = revision(client, FotaStage::Confirm).await?;
    if new_revision == old_revision {
        return Err(fail(FotaStage::Confirm, FotaFailure::RevisionUnchanged));
    }
    Ok(FotaReport {
        old_revision,
        new_revision,
    })
}

/// The blocking twin of [`upgrade_modem`] (the same code, driven to completion).
pub fn upgrade_modem_blocking<T, C, H>(
    client: &mut blocking::Client<'_, T, C, H>,
    config: &ModemFotaConfig<'_>,
    progress: &mut dyn FnMut(FotaProgress),
) -> Result<FotaReport, FotaError<T::Error>>
where
    T: embedded_io::Read + embedded_io::Write + embedded_io::ReadReady,
    C: crate::at::Clock,
    H: UrcHandler,
{
    blocking::block_on(upgrade_modem(client.as_async(), config, progress))
}
