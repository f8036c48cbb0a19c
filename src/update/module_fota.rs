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
//! Bring the modem up first ([`crate::bring_up`]): URCs must reach this port, or no
//! `+QIND: "FOTA"` ever arrives; a URL upgrade also needs registration and the PDP context.
//!
//! The transport must survive the reboot: a UART does by itself; a USB port disappears and
//! comes back, so its transport should re-open the device when a read fails (the host
//! example `serial_ota` does). While it is gone, errors from the transport are retried until
//! the stage's deadline.
//!
//! # A package the host streams (`AT+QFOTADL="FILE:<length>"`)
//!
//! [`upgrade_modem_from_host`] (and [`upgrade_modem_from_slice`], and their `_blocking`
//! twins) upgrade the module from a package the host sends over the AT port itself, read
//! from any `embedded_io_async::Read` source of a known length, so a package of hundreds of
//! KB never has to be in RAM. The form is documented for the ASR "LTE Standard(A)" family
//! only (EC200T and its siblings, quectel-at.md §8.1, a single source \[S6\]); other modules
//! refuse it (`ERROR`, reported at [`FotaStage::Request`]).
//!
//! 1. `AT+QFOTADL="FILE:<length>"` (with the family's `,<mode>,<dl>[,<upd>]` tail if
//!    [`HostFileConfig::options`] is set). No `fota/cid` or `fota/path` is configured: the
//!    package does not come over the network.
//! 2. The reference does not say what the module answers before it takes the bytes
//!    (§8.1, §11.5). **Assumed**, both handled: a `CONNECT` prompt (then the package
//!    follows at once and the final result comes after it, as for `AT+QFUPL`), or `OK`
//!    followed by `+QIND: "FOTA","FILESTART"` (§8.2); after `OK` the package follows the
//!    `FILESTART`, or [`HostFileConfig::start_grace`] after the `OK` if no `FILESTART` came
//!    (for a module that announces the transfer only once bytes arrive).
//! 3. The package is written in chunks with [`Client::write_payload`]:
//!    * [`FilePacing::FlowControl`]: RTS/CTS is active (`AT+IFC=2,2`, required by the guide
//!      \[S6\], and the host UART's CTS input wired and enabled): as fast as the transport
//!      takes it; the module holds the host with CTS while it writes to its flash.
//!    * [`FilePacing::Paced`]: no flow control; the host paces itself. The one summary
//!      (§11.5, unverified) gives 15 kB/s for NOR-flash modules and a 32-byte write size.
//!      The reference reads it as "≤ 32 bytes per write", the request for this feature as
//!      "at least 32": the default ([`FilePacing::DOCUMENTED`]) writes exactly 32 bytes per
//!      write, which satisfies both readings, at most 15 000 bytes/s averaged. The pace never catches up after a
//!      late write (no burst above one write). At 115 200 baud the wire itself (11 520
//!      bytes/s) is already slower than that; the pace matters at higher rates.
//!
//!    Progress reports [`FotaProgress::Sent`] every [`SENT_REPORT_STEP`] bytes and at the
//!    end. URCs that arrive while streaming are processed between writes: a
//!    `"FILEEND",<err>` other than 0 stops the stream.
//! 4. Then the same stages as for a URL: `"FILESTART"`, optional `"DOWNLOADING",<pct>`,
//!    `"FILEEND",<err>` (0, or 500 "file download error", §5.3: the module did not get the
//!    whole package, e.g. bytes lost on a link without flow control — reported as
//!    [`FotaFailure::FileEnd`] with the typed [`FileEndError`]), the reboot, `"START"`,
//!    `"UPDATING",<pct>`, `"END",<err>`, and the new revision from `AT+QGMR`.
//!
//! Failures of the stream itself are typed too: the source failing
//! ([`FotaFailure::Source`]) or ending early ([`FotaFailure::SourceEnded`]), the transport
//! taking no byte for [`HostFileConfig::write_stall`] ([`FotaFailure::Stalled`]), the module
//! rebooting in the middle ([`FotaFailure::RebootedDuringTransfer`]). After the first three
//! the module is still waiting for the rest of the package; it gives up on its own (the
//! simulator: after 5 s without a byte, with `"FILEEND",500`) — wait for that before sending
//! AT commands again, or reset it.

use core::time::Duration;

use embedded_io_async::{Read, Write};

use crate::at::{AsyncClock, EncodeError, Instant};
use crate::bring_up::{MAX_REVISION, Revision};
use crate::client::asynch::Client;
use crate::client::{Error as ClientError, StreamStart, TimeoutExt, UrcHandler, blocking};
use crate::quectel::ChipFamily;
use crate::quectel::error::{FileEndError, FotaEndCode, describe};
use crate::quectel::fota::{FotaDownload, FotaOptions, SetFotaContext, SetFotaPath};
use crate::quectel::general::{Attention, GetFullRevision};
use crate::quectel::urc::{FotaEvent, Urc};

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

impl FotaTimeouts {
    /// The defaults: 60 s to start, 300 s silences while downloading and upgrading, 120 s
    /// until the module answers again.
    pub const DEFAULT: FotaTimeouts = FotaTimeouts {
        start: Duration::from_secs(60),
        download_gap: Duration::from_secs(300),
        upgrade_gap: Duration::from_secs(300),
        ready: Duration::from_secs(120),
    };
}

impl Default for FotaTimeouts {
    fn default() -> Self {
        Self::DEFAULT
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
            timeouts: FotaTimeouts::DEFAULT,
        }
    }
}

/// How the host paces a package it streams to the module ([`upgrade_modem_from_host`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FilePacing {
    /// RTS/CTS flow control is active on the link: `AT+IFC=2,2` was sent and the host UART
    /// obeys CTS (the line is wired and enabled). Bytes are written as fast as the
    /// transport takes them, in chunks of [`STREAM_CHUNK`] bytes; the module holds the host
    /// with CTS while it writes to its flash.
    FlowControl,
    /// No flow control: at most `bytes_per_sec` bytes per second averaged, in writes of
    /// `write_size` bytes (1..=[`STREAM_CHUNK`]; the last write may be shorter). A write
    /// that starts late does not make the next one earlier, so the host never sends more
    /// than one write above the average rate.
    Paced {
        /// Most bytes per second, averaged (at least 1).
        bytes_per_sec: u32,
        /// Bytes per write.
        write_size: u16,
    },
}

impl FilePacing {
    /// The pace of the one summary that describes `FILE:` without flow control
    /// (quectel-at.md §11.5, unverified): 15 000 bytes/s (15 kB/s, the rate given for
    /// NOR-flash modules) in 32-byte writes.
    pub const DOCUMENTED: FilePacing = FilePacing::Paced {
        bytes_per_sec: 15_000,
        write_size: 32,
    };
}

/// Largest write to the transport while streaming a package (the size of the stack buffer
/// the package is read into).
pub const STREAM_CHUNK: usize = 256;

/// [`FotaProgress::Sent`] is reported every this many bytes (and once at the end).
pub const SENT_REPORT_STEP: u32 = 4096;

/// How to upgrade from a package the host streams ([`upgrade_modem_from_host`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HostFileConfig {
    /// The module's chipset family (selects the `END` code table). `FILE:` is documented
    /// for [`ChipFamily::Asr`] only.
    pub family: ChipFamily,
    /// The ASR tail of `AT+QFOTADL` (upgrade mode and progress URC counts).
    pub options: Option<FotaOptions>,
    /// Flow control, or the host's own pace.
    pub pacing: FilePacing,
    /// After an `OK` without `CONNECT`: how long to wait for `"FILESTART"` before streaming
    /// anyway (see the module docs; the reference does not say which comes first).
    pub start_grace: Duration,
    /// Longest time one write may stay blocked (flow control holding the host) before the
    /// transfer fails with [`FotaFailure::Stalled`].
    pub write_stall: Duration,
    /// Deadlines of the stages that follow. `start` also bounds the final result after a
    /// prompted stream.
    pub timeouts: FotaTimeouts,
}

impl HostFileConfig {
    /// Defaults: ASR, no options, `pacing`, 2 s start grace, 10 s write stall, default
    /// timeouts.
    pub const fn new(pacing: FilePacing) -> Self {
        HostFileConfig {
            family: ChipFamily::Asr,
            options: None,
            pacing,
            start_grace: Duration::from_secs(2),
            write_stall: Duration::from_secs(10),
            timeouts: FotaTimeouts::DEFAULT,
        }
    }
}

/// Progress of a module upgrade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FotaProgress {
    /// The module accepted `AT+QFOTADL`.
    Accepted,
    /// Package bytes the host has streamed so far ([`upgrade_modem_from_host`] only):
    /// reported every [`SENT_REPORT_STEP`] bytes and when the last byte was written.
    Sent {
        /// Bytes written to the transport.
        sent: u32,
        /// The package length.
        total: u32,
    },
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
    /// The host-file transfer ended with `"FILEEND",<err>` other than 0: the module did not
    /// get the whole package intact (500: bytes lost on a link without flow control, or a
    /// transfer cut short). Enable RTS/CTS ([`FilePacing::FlowControl`]) or lower the pace.
    FileEnd {
        /// The module's code (open: unknown codes are kept).
        error: FileEndError,
        /// Bytes the host had streamed.
        sent: u32,
    },
    /// Reading the package from the source failed.
    Source {
        /// The source's error kind.
        kind: embedded_io::ErrorKind,
        /// Bytes streamed to the module before.
        sent: u32,
    },
    /// The source ended before the announced length.
    SourceEnded {
        /// Bytes the source gave.
        read: u32,
        /// The length announced to the module.
        length: u32,
    },
    /// The transport took no byte for [`HostFileConfig::write_stall`] (flow control holding
    /// the host, or a dead link).
    Stalled {
        /// Bytes streamed before.
        sent: u32,
    },
    /// The module rebooted (`RDY`) while the host was streaming the package.
    RebootedDuringTransfer {
        /// Bytes streamed before.
        sent: u32,
    },
    /// This module has no firmware upgrade the crate drives (SIMCom SIM7600 and the
    /// SIM800-style set: [`crate::simcom::fota`]).
    Unsupported,
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
            FotaFailure::FileEnd { error, .. } => Some(error.code()),
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
            FotaFailure::FileEnd { error, .. } => Some(error.meaning()),
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
            FotaFailure::FileEnd { error, sent } => write!(
                f,
                "file transfer ended with {}: {} (after {sent} bytes sent)",
                error.code(),
                error.meaning()
            ),
            FotaFailure::Source { kind, sent } => {
                write!(
                    f,
                    "reading the package failed ({kind:?}) after {sent} bytes"
                )
            }
            FotaFailure::SourceEnded { read, length } => {
                write!(f, "the package source ended after {read} of {length} bytes")
            }
            FotaFailure::Stalled { sent } => write!(
                f,
                "the port took no byte within the write deadline after {sent} bytes \
                 (flow control holding the host?)"
            ),
            FotaFailure::RebootedDuringTransfer { sent } => {
                write!(f, "the module rebooted after {sent} bytes of the package")
            }
            FotaFailure::Unsupported => {
                f.write_str("this module has no firmware upgrade the crate drives")
            }
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

pub(crate) fn fail<E>(stage: FotaStage, failure: FotaFailure<E>) -> FotaError<E> {
    FotaError { stage, failure }
}

/// A revision as the module printed it, truncated to [`MAX_REVISION`] characters.
pub(crate) fn to_revision(text: &str) -> Revision {
    let mut s = Revision::new();
    for c in text.chars().take(MAX_REVISION) {
        let _ = s.push(c);
    }
    s
}

/// The module's revision as `query` reports it (`AT+QGMR`, SIMCom's `AT+CGMR`).
pub(crate) async fn revision<T, C, H, Q>(
    client: &mut Client<'_, T, C, H>,
    query: &Q,
    stage: FotaStage,
) -> Result<Revision, FotaError<T::Error>>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
    Q: for<'a> crate::at::AtCommand<Response<'a> = &'a str>,
{
    let r = client
        .send(query)
        .await
        .map_err(|e| fail(stage, FotaFailure::Modem(e)))?;
    Ok(to_revision(r))
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
    wait_event(client, gap, stage, progress, |line| {
        match Urc::parse(line) {
            Some(Ok(Urc::Fota(ev))) => Some(Seen::Fota(ev)),
            Some(Ok(Urc::Ready)) => Some(Seen::Rebooted),
            _ => None,
        }
    })
    .await
}

/// Waits up to `gap` for a line `pick` accepts; no line within it is
/// [`FotaFailure::Silent`]. Transport errors (a port re-enumerating while the module
/// restarts) are reported as [`FotaProgress::PortLost`] and retried until then. Shared with
/// the SIMCom upgrade ([`crate::simcom::fota`]).
pub(crate) async fn wait_event<T, C, H, R>(
    client: &mut Client<'_, T, C, H>,
    gap: Duration,
    stage: FotaStage,
    progress: &mut dyn FnMut(FotaProgress),
    mut pick: impl FnMut(&[u8]) -> Option<R>,
) -> Result<R, FotaError<T::Error>>
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
        match client.wait_for(left, &mut pick).await {
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

/// What a download-stage event means for the flow.
enum Verdict {
    /// Keep waiting.
    Wait,
    /// The package is in the module (`…END,0`), or a local package's upgrade started
    /// (`START` without a download stage): follow the upgrade stage.
    Upgrade,
    /// `"END",<err>` arrived already.
    End(FotaEndCode),
}

/// The download stage as the `+QIND: "FOTA"` URCs report it, shared by the URL and the
/// host-file flows (sans-IO: events in, a verdict out).
struct DownloadStage {
    family: ChipFamily,
    /// A start URC (or progress) was seen: the deadline is the download gap now.
    started: bool,
    /// Package bytes the host streamed (0 for a URL), for [`FotaFailure::FileEnd`].
    sent: u32,
}

impl DownloadStage {
    fn new(family: ChipFamily) -> Self {
        DownloadStage {
            family,
            started: false,
            sent: 0,
        }
    }

    /// The longest silence allowed now.
    fn gap(&self, t: &FotaTimeouts) -> Duration {
        if self.started {
            t.download_gap
        } else {
            t.start
        }
    }

    fn on_event<E>(
        &mut self,
        ev: FotaEvent,
        progress: &mut dyn FnMut(FotaProgress),
    ) -> Result<Verdict, FotaError<E>> {
        use FotaStage::Download;
        match ev {
            FotaEvent::HttpStart { .. } | FotaEvent::FtpStart | FotaEvent::FileStart => {
                self.started = true;
                progress(FotaProgress::DownloadStarted);
            }
            FotaEvent::Downloading(p) => {
                self.started = true;
                progress(FotaProgress::Downloading(p));
            }
            FotaEvent::FileEnd { code } => {
                if code != 0 {
                    return Err(fail(
                        Download,
                        FotaFailure::FileEnd {
                            error: FileEndError::from_code(code),
                            sent: self.sent,
                        },
                    ));
                }
                progress(FotaProgress::Downloaded);
                return Ok(Verdict::Upgrade);
            }
            FotaEvent::HttpEnd { code, .. } | FotaEvent::FtpEnd { code } => {
                if code != 0 {
                    let meaning = ev.meaning(Some(self.family)).unwrap_or(describe(code));
                    return Err(fail(Download, FotaFailure::Download { code, meaning }));
                }
                progress(FotaProgress::Downloaded);
                return Ok(Verdict::Upgrade);
            }
            // A local package (or BG96's fixed path) has no download stage.
            FotaEvent::Start if !self.started => {
                progress(FotaProgress::UpgradeStarted);
                return Ok(Verdict::Upgrade);
            }
            FotaEvent::End(code) => return Ok(Verdict::End(code)),
            _ => {}
        }
        Ok(Verdict::Wait)
    }
}

/// Reads the revision, and configures `fota/path` / `fota/cid` where the family needs it.
async fn configure<T, C, H>(
    client: &mut Client<'_, T, C, H>,
    config: &ModemFotaConfig<'_>,
) -> Result<(), FotaError<T::Error>>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    let m = |e| fail(FotaStage::Configure, FotaFailure::Modem(e));
    if config.family == ChipFamily::Unisoc {
        client
            .send(&SetFotaPath {
                path: config.fota_path,
            })
            .await
            .map_err(m)?;
    }
    if matches!(config.family, ChipFamily::Unisoc | ChipFamily::Asr) {
        client
            .send(&SetFotaContext {
                cid: config.context_id,
            })
            .await
            .map_err(m)?;
    }
    Ok(())
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
    let old_revision = revision(client, &GetFullRevision, FotaStage::Configure).await?;
    configure(client, config).await?;
    let mut cmd = FotaDownload::url(config.url);
    if let Some(o) = config.options {
        cmd = cmd.with_options(o);
    }
    client
        .send(&cmd)
        .await
        .map_err(|e| fail(FotaStage::Request, FotaFailure::Modem(e)))?;
    progress(FotaProgress::Accepted);
    let stage = DownloadStage::new(config.family);
    follow(
        client,
        &config.timeouts,
        stage,
        Verdict::Wait,
        old_revision,
        progress,
    )
    .await
}

/// Follows the `+QIND: "FOTA"` stages from `verdict` on (the download stage while it is
/// [`Verdict::Wait`]), through the reboots, to `"END"` and the new revision. Shared by
/// both flows.
async fn follow<T, C, H>(
    client: &mut Client<'_, T, C, H>,
    t: &FotaTimeouts,
    mut stage: DownloadStage,
    mut verdict: Verdict,
    old_revision: Revision,
    progress: &mut dyn FnMut(FotaProgress),
) -> Result<FotaReport, FotaError<T::Error>>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    let family = stage.family;
    // Download stage.
    while let Verdict::Wait = verdict {
        match next_event(client, stage.gap(t), FotaStage::Download, progress).await? {
            Seen::Rebooted => progress(FotaProgress::Rebooted),
            Seen::Fota(ev) => verdict = stage.on_event(ev, progress)?,
        }
    }
    // Reboot and upgrade stage.
    let code = loop {
        if let Verdict::End(code) = verdict {
            break code;
        }
        match next_event(client, t.upgrade_gap, FotaStage::Upgrade, progress).await? {
            Seen::Rebooted => progress(FotaProgress::Rebooted),
            Seen::Fota(FotaEvent::Start) => progress(FotaProgress::UpgradeStarted),
            Seen::Fota(FotaEvent::Updating(p)) => progress(FotaProgress::Updating(p)),
            Seen::Fota(FotaEvent::Restore(p)) => progress(FotaProgress::Restoring(p)),
            Seen::Fota(FotaEvent::End(code)) => verdict = Verdict::End(code),
            Seen::Fota(_) => {}
        }
    };
    finish_end(client, family, t.ready, code, old_revision, progress).await
}

/// After `"END",<code>`: fail on a non-zero code, else wait for the module and confirm the
/// new revision.
async fn finish_end<T, C, H>(
    client: &mut Client<'_, T, C, H>,
    family: ChipFamily,
    ready: Duration,
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
                meaning: code.meaning(Some(family)),
            },
        ));
    }
    progress(FotaProgress::Upgraded);
    // The module reboots into the new firmware. Wait for its `RDY` for up to half the
    // deadline (a port that re-enumerates may lose it), then poll with AT until it answers.
    let deadline = client.clock().now() + ready;
    if let Ok(Seen::Rebooted) = next_event(client, ready / 2, FotaStage::Confirm, progress).await {
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
    let new_revision = revision(client, &GetFullRevision, FotaStage::Confirm).await?;
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

// ---------------------------------------------------------------------------------------------
// A package the host streams: AT+QFOTADL="FILE:<length>"
// ---------------------------------------------------------------------------------------------

/// What the URCs seen while the package is streamed decided (the first decision wins).
struct Watch<'p, E> {
    stage: DownloadStage,
    progress: &'p mut dyn FnMut(FotaProgress),
    /// A terminal verdict or a failure.
    outcome: Option<Result<Verdict, FotaError<E>>>,
}

impl<E> Watch<'_, E> {
    /// Takes a FOTA URC or `RDY`; returns whether the line was one.
    fn on_line(&mut self, line: &[u8]) -> bool {
        let seen = match Urc::parse(line) {
            Some(Ok(Urc::Fota(ev))) => Seen::Fota(ev),
            Some(Ok(Urc::Ready)) => Seen::Rebooted,
            _ => return false,
        };
        if self.outcome.is_some() {
            return true;
        }
        match seen {
            Seen::Fota(ev) => match self.stage.on_event(ev, self.progress) {
                Ok(Verdict::Wait) => {}
                r => self.outcome = Some(r),
            },
            Seen::Rebooted => {
                (self.progress)(FotaProgress::Rebooted);
                self.outcome = Some(Err(fail(
                    FotaStage::Download,
                    FotaFailure::RebootedDuringTransfer {
                        sent: self.stage.sent,
                    },
                )));
            }
        }
        true
    }

    /// Whether a decision (end of the download stage, or a failure) was made.
    fn decided(&self) -> bool {
        self.outcome.is_some()
    }
}

/// The host's own pace: the next write may start at `t0 + bytes / rate`; a late write
/// restarts the schedule instead of catching up.
struct Pacer {
    bytes_per_sec: u64,
    t0: Instant,
    bytes: u64,
}

impl Pacer {
    /// When the next write may start, or `None` if it may start now (the schedule is
    /// restarted at `now` when behind it).
    fn due(&mut self, now: Instant) -> Option<Instant> {
        if self.bytes_per_sec == 0 {
            return None;
        }
        // Rounded up: never faster than the rate.
        let micros = (self.bytes * 1_000_000).div_ceil(self.bytes_per_sec);
        let due = Instant::from_micros(self.t0.as_micros().saturating_add(micros));
        if due > now {
            Some(due)
        } else {
            self.t0 = now;
            self.bytes = 0;
            None
        }
    }
}

/// Reads until `buf` is full or the source ends; returns the bytes read.
async fn read_full<R: embedded_io_async::Read>(
    source: &mut R,
    buf: &mut [u8],
) -> Result<usize, embedded_io::ErrorKind> {
    let mut n = 0;
    while n < buf.len() {
        match source.read(&mut buf[n..]).await {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(embedded_io::Error::kind(&e)),
        }
    }
    Ok(n)
}

/// Upgrades the module from a `length`-byte package the host streams from `source` with
/// `AT+QFOTADL="FILE:<length>"` (ASR family); see the [module docs](self) for the sequence,
/// the assumptions and the pacing.
///
/// The package is read in chunks of at most [`STREAM_CHUNK`] bytes into a buffer on the
/// stack (nothing is allocated, the package never has to be in RAM). Every wait has a
/// deadline from the client's clock: `cmd.timeout()` for `OK`/`CONNECT`,
/// [`HostFileConfig::start_grace`], [`HostFileConfig::write_stall`] per write, then the
/// [`FotaTimeouts`]. Returns the revisions before and after, or a [`FotaError`]: source
/// failures and a `"FILEEND"` other than 0 at [`FotaStage::Download`], with the bytes sent.
///
/// Not cancel-safe: dropping the future mid-stream leaves the module waiting for the rest
/// of the package (it gives up on its own after a silence).
pub async fn upgrade_modem_from_host<T, C, H, R>(
    client: &mut Client<'_, T, C, H>,
    config: &HostFileConfig,
    length: u32,
    mut source: R,
    progress: &mut dyn FnMut(FotaProgress),
) -> Result<FotaReport, FotaError<T::Error>>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
    R: embedded_io_async::Read,
{
    use FotaStage::{Download, Request};
    let modem = |stage, e| fail(stage, FotaFailure::Modem(e));
    let old_revision = revision(client, &GetFullRevision, FotaStage::Configure).await?;
    let mut cmd = FotaDownload::host_file(length);
    if let Some(o) = config.options {
        cmd = cmd.with_options(o);
    }
    let mut watch = Watch {
        stage: DownloadStage::new(config.family),
        progress,
        outcome: None,
    };
    let start = client
        .open_stream(&cmd, &mut |l| watch.on_line(l))
        .await
        .map_err(|e| modem(Request, e))?;
    (watch.progress)(FotaProgress::Accepted);
    if start == StreamStart::Ok {
        // Assumed (module docs): after OK the module announces the transfer with FILESTART.
        let grace_end = client.clock().now() + config.start_grace;
        while !watch.stage.started && !watch.decided() {
            let left = grace_end.saturating_duration_since(client.clock().now());
            if left.is_zero() {
                break;
            }
            match client
                .wait_for(left, |l| {
                    let mine = watch.on_line(l);
                    mine.then_some(())
                })
                .await
            {
                Ok(()) => {}
                Err(ClientError::Timeout) => break,
                Err(e) => return Err(modem(Download, e)),
            }
        }
    }

    let mut buf = [0u8; STREAM_CHUNK];
    let (chunk, rate) = match config.pacing {
        FilePacing::FlowControl => (STREAM_CHUNK, 0),
        FilePacing::Paced {
            bytes_per_sec,
            write_size,
        } => (
            usize::from(write_size).clamp(1, STREAM_CHUNK),
            u64::from(bytes_per_sec.max(1)),
        ),
    };
    let mut pacer = Pacer {
        bytes_per_sec: rate,
        t0: client.clock().now(),
        bytes: 0,
    };
    let mut sent: u32 = 0;
    let mut reported: u32 = 0;
    while sent < length && !watch.decided() {
        let want = chunk.min((length - sent) as usize);
        let got = read_full(&mut source, &mut buf[..want])
            .await
            .map_err(|kind| fail(Download, FotaFailure::Source { kind, sent }))?;
        if got < want {
            return Err(fail(
                Download,
                FotaFailure::SourceEnded {
                    read: sent + got as u32,
                    length,
                },
            ));
        }
        let now = client.clock().now();
        if let Some(due) = pacer.due(now) {
            client.clock().wait_until(due).await;
        }
        let deadline = client.clock().now() + config.write_stall;
        let took = client
            .write_payload(&buf[..got], deadline)
            .await
            .map_err(|e| modem(Download, e))?;
        sent += took as u32;
        pacer.bytes += took as u64;
        watch.stage.sent = sent;
        if took < got {
            return Err(fail(Download, FotaFailure::Stalled { sent }));
        }
        if sent / SENT_REPORT_STEP != reported / SENT_REPORT_STEP || sent == length {
            reported = sent;
            (watch.progress)(FotaProgress::Sent {
                sent,
                total: length,
            });
        }
        // After the last byte of a prompted stream the final result is the module's
        // answer to the payload: finish_stream collects it.
        if sent < length || start == StreamStart::Ok {
            client
                .poll_lines(&mut |l| watch.on_line(l))
                .await
                .map_err(|e| modem(Download, e))?;
        }
    }
    if matches!(start, StreamStart::Prompt(_)) && !watch.decided() {
        client
            .finish_stream(config.timeouts.start, &mut |l| watch.on_line(l))
            .await
            .map_err(|e| modem(Download, e))?;
    }
    let verdict = match watch.outcome {
        Some(r) => r?,
        None => Verdict::Wait,
    };
    follow(
        client,
        &config.timeouts,
        watch.stage,
        verdict,
        old_revision,
        watch.progress,
    )
    .await
}

/// [`upgrade_modem_from_host`] for a package in memory (or memory-mapped flash).
///
/// A package longer than `u32::MAX` bytes, or an empty one, is refused before anything is
/// sent ([`ClientError::Encode`] at [`FotaStage::Request`]).
pub async fn upgrade_modem_from_slice<T, C, H>(
    client: &mut Client<'_, T, C, H>,
    config: &HostFileConfig,
    package: &[u8],
    progress: &mut dyn FnMut(FotaProgress),
) -> Result<FotaReport, FotaError<T::Error>>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    let length = package_length(package.len())?;
    upgrade_modem_from_host(client, config, length, package, progress).await
}

fn package_length<E>(len: usize) -> Result<u32, FotaError<E>> {
    u32::try_from(len).map_err(|_| {
        fail(
            FotaStage::Request,
            FotaFailure::Modem(ClientError::Encode(EncodeError::OutOfRange {
                value: i64::try_from(len).unwrap_or(i64::MAX),
                min: 1,
                max: i64::from(u32::MAX),
            })),
        )
    })
}

/// A blocking source seen as an async one (its `read` completes on the spot).
struct BlockingSource<R>(R);

impl<R: embedded_io::ErrorType> embedded_io::ErrorType for BlockingSource<R> {
    type Error = R::Error;
}

impl<R: embedded_io::Read> embedded_io_async::Read for BlockingSource<R> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        self.0.read(buf)
    }
}

/// The blocking twin of [`upgrade_modem_from_host`] (the same code, driven to completion),
/// reading the package from a blocking `embedded_io::Read` source (a file, an external
/// flash).
pub fn upgrade_modem_from_host_blocking<T, C, H, R>(
    client: &mut blocking::Client<'_, T, C, H>,
    config: &HostFileConfig,
    length: u32,
    source: R,
    progress: &mut dyn FnMut(FotaProgress),
) -> Result<FotaReport, FotaError<T::Error>>
where
    T: embedded_io::Read + embedded_io::Write + embedded_io::ReadReady,
    C: crate::at::Clock,
    H: UrcHandler,
    R: embedded_io::Read,
{
    blocking::block_on(upgrade_modem_from_host(
        client.as_async(),
        config,
        length,
        BlockingSource(source),
        progress,
    ))
}

/// The blocking twin of [`upgrade_modem_from_slice`].
pub fn upgrade_modem_from_slice_blocking<T, C, H>(
    client: &mut blocking::Client<'_, T, C, H>,
    config: &HostFileConfig,
    package: &[u8],
    progress: &mut dyn FnMut(FotaProgress),
) -> Result<FotaReport, FotaError<T::Error>>
where
    T: embedded_io::Read + embedded_io::Write + embedded_io::ReadReady,
    C: crate::at::Clock,
    H: UrcHandler,
{
    blocking::block_on(upgrade_modem_from_slice(
        client.as_async(),
        config,
        package,
        progress,
    ))
}
