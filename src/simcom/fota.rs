//! Upgrading a SIMCom module's own firmware (`simcom-at.md` §6), with the progress, errors
//! and deadlines of [`crate::update::module_fota`].
//!
//! | family | how | source |
//! |---|---|---|
//! | A76xx / SIM767x | `AT+CFOTA=<channel>,<mode>,"<host[:port]/path>",<user>,<password>`; `+CFOTA: FOTA,START`, `+CFOTA: DOWNLOADING:<n>`, `+CFOTA: 100` (restart in 8 s), or `+CFOTA: <err>` (1001–1012); the module restarts, applies, restarts again | §6.2 |
//! | SIM7000, SIM7070/80/90 (`AT+SH*` family) | `AT+HTTPTOFS="<url>","/fota/update.zip"` → `+HTTPTOFS: 200,<len>`; `AT+CFOTA=1` → `+CFOTA: "Start to update"`, `+CFOTA: "Updating",<n>`, `+CFOTA: "Update successfully, please wait for reset"` or `"Update failed, …"`; after the reset `AT+CFOTA?` → 6 success, 7 failed | §6.3 |
//! | SIM7600, SIM800-style | not driven: SIM7600 upgrades by FTP + `AT+CDELTA` or SIMCom's cloud (§6.1), SIM800 documents none | [`FotaFailure::Unsupported`] |
//!
//! Success needs the module to answer again with a revision (`AT+CGMR`) other than the one
//! before. What the A76xx prints between its two restarts is not documented, so after
//! `+CFOTA: 100` the upgrade asks `AT+CGMR` every [`POLL`] until the revision changes, for
//! at most [`SILENT_UPGRADE_GAPS`] × `upgrade_gap` + `ready` ([`FotaTimeouts`]).
//!
//! Assumed where the manual is silent: the A76xx URL is sent without its scheme (the
//! manual's example is `"183.230.174.137:6022/bin/fbf_dfota.bin"`, the scheme given by
//! `<mode>`: 0 FTP, 1 HTTP) and the credentials unquoted, as in that example; they are
//! therefore limited to letters, digits, `.`, `_` and `-`.

use core::time::Duration;

use embedded_io_async::{Read, Write};

use super::Family;
use super::general::RevisionQuery;
use super::sh::HttpToFs;
use super::urc::{CfotaEvent, Urc};
use crate::at::{AsyncClock, AtCommand, EncodeError, Encoder, Lines, ParseError, ResponseLines};
use crate::bring_up::Revision;
use crate::client::asynch::Client;
use crate::client::{Error as ClientError, TimeoutExt, UrcHandler, blocking};
use crate::update::module_fota::{
    FotaError, FotaFailure, FotaProgress, FotaReport, FotaStage, FotaTimeouts, fail, revision,
    to_revision, wait_event,
};

/// How often the revision is asked while the module upgrades.
pub const POLL: Duration = Duration::from_secs(5);

/// The A76xx prints nothing while it applies a package, so its upgrade may take this many
/// [`FotaTimeouts::upgrade_gap`]s (20 min by default: upgrades of 8 to 20 minutes are
/// reported for Quectel modules; none are for SIMCom's) plus [`FotaTimeouts::ready`].
pub const SILENT_UPGRADE_GAPS: u32 = 4;

/// Where the `AT+SH*` family's upgrade package must be (§6.3).
pub const PACKAGE_PATH: &str = "/fota/update.zip";

/// `<mode>` of the A76xx `AT+CFOTA`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CfotaMode {
    /// 0: FTP.
    Ftp = 0,
    /// 1: HTTP.
    Http = 1,
}

/// `AT+CFOTA=<channel>,<mode>,"<host[:port]/path>",<user>,<password>` (A76xx, SIM767x).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CfotaDownload<'a> {
    /// 0..=5.
    pub channel: u8,
    /// FTP or HTTP.
    pub mode: CfotaMode,
    /// `host[:port]/path`, without a scheme.
    pub location: &'a str,
    /// User name (letters, digits, `.`, `_`, `-`; may be empty).
    pub user: &'a str,
    /// Password (as the user name).
    pub password: &'a str,
}

/// Longest location of [`CfotaDownload`] this crate sends (none is documented).
pub const LOCATION_MAX: usize = 255;

fn credential(enc: &mut Encoder<'_>, s: &str) -> Result<(), EncodeError> {
    if let Some(p) = s
        .bytes()
        .position(|b| !(b.is_ascii_alphanumeric() || b"._-".contains(&b)))
    {
        return Err(EncodeError::ForbiddenByte {
            byte: s.as_bytes()[p],
            position: p,
        });
    }
    if s.len() > 64 {
        return Err(EncodeError::TooLong {
            len: s.len(),
            max: 64,
        });
    }
    enc.raw(s.as_bytes())
}

impl AtCommand for CfotaDownload<'_> {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        if self.location.contains("://") {
            return Err(EncodeError::Invalid(
                "the AT+CFOTA location has no scheme (the mode says it)",
            ));
        }
        if self.location.is_empty() {
            return Err(EncodeError::Empty);
        }
        enc.raw(b"AT+CFOTA=")?;
        enc.ranged(u32::from(self.channel), 0, 5)?;
        enc.comma()?;
        enc.u32(self.mode as u32)?;
        enc.comma()?;
        enc.quoted(self.location, LOCATION_MAX)?;
        enc.comma()?;
        credential(enc, self.user)?;
        enc.comma()?;
        credential(enc, self.password)
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// `AT+CFOTA=1` (SIM7000, SIM7070/80/90): apply `/fota/update.zip`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CfotaApply;

impl AtCommand for CfotaApply {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+CFOTA=1")
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// `AT+CFOTA?` (SIM7000, SIM7070/80/90) → `+CFOTA: <status>`: 1 updating, 2–5 SIM7000's
/// recovery stages, 6 success, 7 failed, 8 flag cleaned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CfotaStatus;

/// [`CfotaStatus`]'s "success".
pub const STATUS_SUCCESS: u8 = 6;
/// [`CfotaStatus`]'s "failed".
pub const STATUS_FAILED: u8 = 7;

impl AtCommand for CfotaStatus {
    type Response<'a> = u8;
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+CFOTA?")
    }
    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+CFOTA:")
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<u8, ParseError> {
        let v = lines.expect_prefixed(b"+CFOTA:")?.u8()?;
        lines.end()?;
        Ok(v)
    }
}

/// What to upgrade from.
#[derive(Clone, Copy, Debug)]
pub struct SimcomFotaConfig<'a> {
    /// The module's command set.
    pub family: Family,
    /// The package: `http://` (both families) or `ftp://` (A76xx) URL, made by SIMCom for
    /// the exact revision the module runs.
    pub url: &'a str,
    /// A76xx: the server's user name (empty for none).
    pub user: &'a str,
    /// A76xx: the password.
    pub password: &'a str,
    /// A76xx: `<channel>` (0..=5).
    pub channel: u8,
    /// Deadlines.
    pub timeouts: FotaTimeouts,
}

impl<'a> SimcomFotaConfig<'a> {
    /// `url` for `family`, no credentials, channel 0, default deadlines.
    pub const fn new(url: &'a str, family: Family) -> Self {
        SimcomFotaConfig {
            family,
            url,
            user: "",
            password: "",
            channel: 0,
            timeouts: FotaTimeouts::DEFAULT,
        }
    }
}

/// What a line means during the upgrade.
enum Seen<'a> {
    Cfota(CfotaEvent<'a>),
    ToFs(Result<crate::update::HttpStatus, super::urc::RequestError>),
    Booted,
}

/// Waits up to `gap` for a FOTA line or a boot line that `on` accepts
/// ([`wait_event`]: transport errors are retried until then).
async fn next<T, C, H, R>(
    client: &mut Client<'_, T, C, H>,
    gap: Duration,
    stage: FotaStage,
    progress: &mut dyn FnMut(FotaProgress),
    mut on: impl FnMut(Seen<'_>) -> Option<R>,
) -> Result<R, FotaError<T::Error>>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    wait_event(client, gap, stage, progress, |line| {
        match Urc::parse(line)?.ok()? {
            Urc::Cfota(ev) => on(Seen::Cfota(ev)),
            Urc::HttpToFs(r) => on(Seen::ToFs(r)),
            Urc::Ready | Urc::AtReady(_) => on(Seen::Booted),
            _ => None,
        }
    })
    .await
}

/// Asks `AT+CGMR` every [`POLL`] until it differs from `old`, for at most `within`.
async fn new_revision<T, C, H>(
    client: &mut Client<'_, T, C, H>,
    old: &Revision,
    within: Duration,
    progress: &mut dyn FnMut(FotaProgress),
) -> Result<Revision, FotaError<T::Error>>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    let deadline = client.clock().now() + within;
    let mut answered = false;
    loop {
        let q = RevisionQuery.with_timeout(Duration::from_secs(2));
        match client.send(&q).await {
            Ok(r) if r != old.as_str() => return Ok(to_revision(r)),
            Ok(_) => answered = true,
            Err(ClientError::Io(_) | ClientError::Closed) => {
                progress(FotaProgress::PortLost);
                client.reset();
            }
            // Booting or upgrading: no answer, or a refusal.
            Err(_) => client.reset(),
        }
        let now = client.clock().now();
        if now >= deadline {
            return Err(if answered {
                fail(FotaStage::Confirm, FotaFailure::RevisionUnchanged)
            } else {
                fail(FotaStage::Upgrade, FotaFailure::Silent)
            });
        }
        // Keep reading (boot lines go to the handler) until the next poll.
        let _ = client
            .wait_for(deadline.saturating_duration_since(now).min(POLL), |_| {
                None::<()>
            })
            .await;
    }
}

/// Upgrades the module's firmware from `config.url`; see the [module docs](self).
///
/// Bring the module up first ([`crate::bring_up`] with
/// [`Simcom`](super::bring_up::Simcom)): the download needs registration and the data
/// connection. Returns the revisions before and after. Not cancel-safe: dropping the future
/// leaves the module downloading or upgrading (it finishes on its own).
pub async fn upgrade_modem<T, C, H>(
    client: &mut Client<'_, T, C, H>,
    config: &SimcomFotaConfig<'_>,
    progress: &mut dyn FnMut(FotaProgress),
) -> Result<FotaReport, FotaError<T::Error>>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    let t = config.timeouts;
    match config.family {
        Family::A76xx | Family::Sh => {}
        _ => return Err(fail(FotaStage::Request, FotaFailure::Unsupported)),
    }
    let old = revision(client, &RevisionQuery, FotaStage::Configure).await?;
    let request = |e| fail(FotaStage::Request, FotaFailure::Modem(e));
    if config.family == Family::A76xx {
        let (mode, location) = if let Some(rest) = strip_scheme(config.url, "http://") {
            (CfotaMode::Http, rest)
        } else if let Some(rest) = strip_scheme(config.url, "ftp://") {
            (CfotaMode::Ftp, rest)
        } else {
            return Err(request(ClientError::Encode(EncodeError::Invalid(
                "the A76xx FOTA takes an http:// or ftp:// URL",
            ))));
        };
        client
            .send(&CfotaDownload {
                channel: config.channel,
                mode,
                location,
                user: config.user,
                password: config.password,
            })
            .await
            .map_err(request)?;
        progress(FotaProgress::Accepted);
        let mut started = false;
        loop {
            let gap = if started { t.download_gap } else { t.start };
            let ev = next(client, gap, FotaStage::Download, progress, |s| match s {
                Seen::Cfota(ev) => match ev {
                    CfotaEvent::Started | CfotaEvent::Downloading(_) | CfotaEvent::Complete => {
                        Some(Ok(ev_progress(ev)))
                    }
                    CfotaEvent::Error(e) => Some(Err((e.code(), e.meaning()))),
                    _ => None,
                },
                _ => None,
            })
            .await?;
            match ev {
                Ok(FotaProgress::Downloaded) => {
                    progress(FotaProgress::Downloaded);
                    break;
                }
                Ok(p) => {
                    started = true;
                    progress(p);
                }
                Err((code, meaning)) => {
                    return Err(fail(
                        FotaStage::Download,
                        FotaFailure::Download { code, meaning },
                    ));
                }
            }
        }
        // "FOTA COMPLETE, it will restart in 8s": restart, apply, restart.
        next(client, t.upgrade_gap, FotaStage::Upgrade, progress, |s| {
            matches!(s, Seen::Booted).then_some(())
        })
        .await?;
        progress(FotaProgress::Rebooted);
        progress(FotaProgress::UpgradeStarted);
        let window = t.upgrade_gap.saturating_mul(SILENT_UPGRADE_GAPS) + t.ready;
        let new = new_revision(client, &old, window, progress).await?;
        progress(FotaProgress::Upgraded);
        return Ok(FotaReport {
            old_revision: old,
            new_revision: new,
        });
    }

    // The AT+SH* family: download into the file system, then apply.
    client
        .send(&HttpToFs {
            url: config.url,
            path: PACKAGE_PATH,
            timeout: None,
            retries: None,
        })
        .await
        .map_err(request)?;
    progress(FotaProgress::Accepted);
    progress(FotaProgress::DownloadStarted);
    let got = next(
        client,
        t.download_gap,
        FotaStage::Download,
        progress,
        |s| match s {
            Seen::ToFs(r) => Some(r),
            _ => None,
        },
    )
    .await?;
    match got {
        Ok(st) if st.status == 200 => progress(FotaProgress::Downloaded),
        Ok(st) => {
            return Err(fail(
                FotaStage::Download,
                FotaFailure::Download {
                    code: st.status,
                    meaning: "the server's HTTP status",
                },
            ));
        }
        Err(e) => {
            return Err(fail(
                FotaStage::Download,
                FotaFailure::Download {
                    code: e.code(),
                    meaning: e.meaning(),
                },
            ));
        }
    }
    client
        .send(&CfotaApply)
        .await
        .map_err(|e| fail(FotaStage::Upgrade, FotaFailure::Modem(e)))?;
    // `Some(true)`: "Update successfully"; `Some(false)`: "Update failed"; `None`: the
    // module reset before either line (its status flag tells).
    let verdict = loop {
        let step = next(
            client,
            t.upgrade_gap,
            FotaStage::Upgrade,
            progress,
            |s| match s {
                Seen::Cfota(CfotaEvent::Started) => {
                    Some(Apply::Progress(FotaProgress::UpgradeStarted))
                }
                Seen::Cfota(CfotaEvent::Updating(n)) => {
                    Some(Apply::Progress(FotaProgress::Updating(n)))
                }
                Seen::Cfota(CfotaEvent::Succeeded) => Some(Apply::Verdict(true)),
                Seen::Cfota(CfotaEvent::Failed) => Some(Apply::Verdict(false)),
                Seen::Booted => Some(Apply::Booted),
                _ => None,
            },
        )
        .await?;
        match step {
            Apply::Progress(p) => progress(p),
            Apply::Verdict(ok) => break Some(ok),
            Apply::Booted => {
                progress(FotaProgress::Rebooted);
                break None;
            }
        }
    };
    match verdict {
        Some(false) => return Err(fail(FotaStage::Upgrade, failed_upgrade())),
        Some(true) => {
            progress(FotaProgress::Upgraded);
            // "please wait for reset".
            next(client, t.upgrade_gap, FotaStage::Upgrade, progress, |s| {
                matches!(s, Seen::Booted).then_some(())
            })
            .await?;
            progress(FotaProgress::Rebooted);
        }
        None => {}
    }
    // The module answers again; its flag says how the update went.
    let deadline = client.clock().now() + t.ready;
    let status = loop {
        match client
            .send(&CfotaStatus.with_timeout(Duration::from_secs(2)))
            .await
        {
            Ok(s) => break s,
            Err(_) if client.clock().now() < deadline => {
                client.reset();
                let _ = client
                    .wait_for(Duration::from_secs(1), |_| None::<()>)
                    .await;
            }
            Err(e) => return Err(fail(FotaStage::Confirm, FotaFailure::Modem(e))),
        }
    };
    if status == STATUS_FAILED {
        return Err(fail(FotaStage::Upgrade, failed_upgrade()));
    }
    let new = revision(client, &RevisionQuery, FotaStage::Confirm).await?;
    if new == old {
        return Err(fail(FotaStage::Confirm, FotaFailure::RevisionUnchanged));
    }
    Ok(FotaReport {
        old_revision: old,
        new_revision: new,
    })
}

/// The `"Update failed"` verdict (and `AT+CFOTA?` 7) as a typed failure.
fn failed_upgrade<E>() -> FotaFailure<E> {
    FotaFailure::Upgrade {
        code: u16::from(STATUS_FAILED),
        meaning: "the module reported \"Update failed\" (AT+CFOTA? 7): the package does not \
                  fit the running revision, or is damaged",
    }
}

/// What a line means while the `AT+SH*` family applies the package.
enum Apply {
    Progress(FotaProgress),
    Verdict(bool),
    Booted,
}

/// The progress of an A76xx download line.
fn ev_progress(ev: CfotaEvent<'_>) -> FotaProgress {
    match ev {
        CfotaEvent::Downloading(n) => FotaProgress::Downloading(n),
        CfotaEvent::Complete => FotaProgress::Downloaded,
        _ => FotaProgress::DownloadStarted,
    }
}

fn strip_scheme<'u>(url: &'u str, scheme: &str) -> Option<&'u str> {
    (url.len() > scheme.len()
        && url.as_bytes()[..scheme.len()].eq_ignore_ascii_case(scheme.as_bytes()))
    .then(|| &url[scheme.len()..])
}

/// The blocking twin of [`upgrade_modem`].
pub fn upgrade_modem_blocking<T, C, H>(
    client: &mut blocking::Client<'_, T, C, H>,
    config: &SimcomFotaConfig<'_>,
    progress: &mut dyn FnMut(FotaProgress),
) -> Result<FotaReport, FotaError<T::Error>>
where
    T: embedded_io::Read + embedded_io::Write + embedded_io::ReadReady,
    C: crate::at::Clock,
    H: UrcHandler,
{
    blocking::block_on(upgrade_modem(client.as_async(), config, progress))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quectel::test_support::{encodes, refuses};

    #[test]
    fn encodes_the_fota_commands() {
        encodes! {
            CfotaDownload { channel: 0, mode: CfotaMode::Http, location: "183.230.174.137:6022/bin/fbf_dfota.bin", user: "simcom", password: "simcom" } =>
                b"AT+CFOTA=0,1,\"183.230.174.137:6022/bin/fbf_dfota.bin\",simcom,simcom";
            CfotaDownload { channel: 2, mode: CfotaMode::Ftp, location: "h/p.bin", user: "", password: "" } =>
                b"AT+CFOTA=2,0,\"h/p.bin\",,";
            CfotaApply => b"AT+CFOTA=1";
            CfotaStatus => b"AT+CFOTA?";
        }
        let at = |location, user, password| CfotaDownload {
            channel: 0,
            mode: CfotaMode::Http,
            location,
            user,
            password,
        };
        refuses! {
            at("http://h/p", "", "") => EncodeError::Invalid(
                "the AT+CFOTA location has no scheme (the mode says it)");
            CfotaDownload { channel: 6, ..at("h/p", "", "") } =>
                EncodeError::OutOfRange { value: 6, min: 0, max: 5 };
            at("h/p", "a,b", "") => EncodeError::ForbiddenByte { byte: b',', position: 1 };
            at("h/p", "", "x\r\nAT") => EncodeError::ForbiddenByte { byte: b'\r', position: 1 };
            at("", "", "") => EncodeError::Empty;
        }
        assert_eq!(CfotaStatus.parse(Lines::new(b"+CFOTA: 6")), Ok(6));
        assert_eq!(strip_scheme("HTTP://h/p", "http://"), Some("h/p"));
        assert_eq!(strip_scheme("http://", "http://"), None);
    }
}
