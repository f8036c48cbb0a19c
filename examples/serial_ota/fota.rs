//! `fota`: upgrade the module's own firmware with `AT+QFOTADL`, through its reboots: from a
//! URL the module downloads itself, or (`--file`) from a local package the tool streams over
//! the AT port (`AT+QFOTADL="FILE:<len>"`, ASR modules such as the EC200T). On a SIMCom
//! module, from a URL only, with `cellular_ota::simcom::fota` (A76xx `AT+CFOTA`, SIM7000 and
//! SIM7070/80/90 `AT+HTTPTOFS` + `AT+CFOTA=1`; SIM7600 and SIM800 are refused typed).

use std::path::PathBuf;
use std::time::Duration;

use cellular_ota::quectel::ChipFamily;
use cellular_ota::quectel::fota::{FotaOptions, UpgradeMode};
use cellular_ota::quectel::general::Identify;
use cellular_ota::update::module_fota::{
    FilePacing, FotaError, FotaFailure, FotaProgress, FotaReport, FotaTimeouts, HostFileConfig,
    ModemFotaConfig, upgrade_modem_blocking, upgrade_modem_from_host_blocking,
};
use clap::{ArgGroup, Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use crate::Global;
use crate::common::{
    Fail, Modem, Res, StdClock, Urcs, Vendor, bring_up, client_error, detect_vendor, interactive,
    open_port, say, sync, ui,
};
use crate::port::PortError;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FamilyArg {
    /// From the model `ATI` reports.
    Auto,
    Qualcomm,
    Asr,
    Unisoc,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("package").required(true).args(["url", "file"])))]
pub struct FotaArgs {
    /// Firmware package URL (http://, https:// or ftp://; at most 255 bytes). Give exactly
    /// one of URL and --file.
    pub url: Option<String>,
    /// Upload this local package over the AT port instead of a URL (AT+QFOTADL="FILE:<len>";
    /// ASR modules such as the EC200T). With --rtscts (alias --flow-control) as fast as the
    /// module's CTS allows; without, paced by --pace and --write-size.
    #[arg(long, value_name = "PACKAGE")]
    pub file: Option<PathBuf>,
    /// --file without RTS/CTS: most bytes per second written (the documented limit is
    /// 15000; the module loses bytes beyond its flash rate).
    #[arg(long, default_value_t = 15_000, value_name = "BYTES_PER_SEC")]
    pub pace: u32,
    /// --file without RTS/CTS: bytes per write.
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub write_size: u16,
    /// The module's chipset family (selects the configuration and the END code table).
    #[arg(long, value_enum, default_value_t = FamilyArg::Auto)]
    pub family: FamilyArg,
    /// Tail of AT+QFOTADL for ASR/EC200U: MODE,DL[,UPD] (e.g. 1,50,100).
    #[arg(long, value_name = "MODE,DL[,UPD]")]
    pub fota_options: Option<String>,
    /// AT+QCFG="fota/path" for Unisoc modules.
    #[arg(long, default_value = "UFS:", value_name = "PATH")]
    pub fota_path: String,
    /// PDP context for the download.
    #[arg(long, default_value_t = 1, value_name = "CID")]
    pub cid: u8,
    /// Do not re-open the port when it disappears (a UART that stays).
    #[arg(long)]
    pub no_reconnect: bool,
    /// Longest silence while downloading or upgrading, in seconds.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub gap_timeout: u64,
    /// Longest wait for the module after the upgrade, in seconds.
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    pub ready_timeout: u64,
    /// Longest wait for network registration, in seconds.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub register_timeout: u64,
}

fn parse_options(s: &str) -> Result<FotaOptions, String> {
    let bad = || format!("--fota-options {s:?}: expected MODE,DL[,UPD], e.g. 1,50,100");
    let v: Vec<u8> = s
        .split(',')
        .map(|p| p.trim().parse::<u8>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    let upgrade_mode = match v.first() {
        Some(0) => UpgradeMode::RebootThenUpgrade,
        Some(1) => UpgradeMode::Immediate,
        _ => return Err(bad()),
    };
    match v[1..] {
        [dl] => Ok(FotaOptions {
            upgrade_mode,
            download_urc_max: dl,
            update_urc_max: None,
        }),
        [dl, upd] => Ok(FotaOptions {
            upgrade_mode,
            download_urc_max: dl,
            update_urc_max: Some(upd),
        }),
        _ => Err(bad()),
    }
}

fn family_name(f: ChipFamily) -> &'static str {
    match f {
        ChipFamily::Qualcomm => "qualcomm",
        ChipFamily::Asr => "asr",
        ChipFamily::Unisoc => "unisoc",
    }
}

fn fota_error(e: &FotaError<PortError>) -> String {
    let mut msg = match &e.failure {
        cellular_ota::update::module_fota::FotaFailure::Modem(m) => {
            format!("module upgrade failed ({:?}): {}", e.stage, client_error(m))
        }
        _ => e.to_string(),
    };
    if let (Some(code), Some(meaning)) = (e.code(), e.meaning()) {
        if !msg.contains(meaning) {
            msg.push_str(&format!(" [code {code}: {meaning}]"));
        }
    }
    msg
}

fn bytes_bar(prefix: &'static str, total: u64) -> ProgressBar {
    let bar = ui().add(ProgressBar::new(total));
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>10} [{wide_bar}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix(prefix);
    bar
}

/// The package file as the crate's blocking source.
struct FileSource(std::io::BufReader<std::fs::File>);

impl embedded_io::ErrorType for FileSource {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Read for FileSource {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, embedded_io::ErrorKind> {
        std::io::Read::read(&mut self.0, buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::Interrupted => embedded_io::ErrorKind::Interrupted,
            std::io::ErrorKind::PermissionDenied => embedded_io::ErrorKind::PermissionDenied,
            _ => embedded_io::ErrorKind::Other,
        })
    }
}

/// What to do about a failed host-file upload, if the failure says.
fn file_hint(e: &FotaError<PortError>, g: &Global, a: &FotaArgs) -> Option<String> {
    match &e.failure {
        FotaFailure::FileEnd { .. } if g.rtscts => Some(
            "the module did not get the whole package although AT+IFC=2,2 was sent: check \
             that RTS and CTS are really wired to the module (and that the port honours \
             them), or upload without --rtscts at a lower --pace"
                .into(),
        ),
        FotaFailure::FileEnd { .. } => Some(format!(
            "the module did not get the whole package: without flow control it drops bytes \
             that arrive faster than it writes them to flash. Wire RTS/CTS and pass --rtscts \
             (the tool then sends AT+IFC=2,2), or lower --pace (now {} bytes/s; the \
             documented limit is 15000)",
            a.pace
        )),
        FotaFailure::Stalled { .. } => Some(
            "the port took no byte for a long time: with --rtscts the module may be holding \
             CTS, or CTS is not wired (then upload without --rtscts)"
                .into(),
        ),
        FotaFailure::Modem(cellular_ota::client::Error::Rejected(_))
            if e.stage == cellular_ota::update::module_fota::FotaStage::Request =>
        {
            Some(
                "AT+QFOTADL=\"FILE:<len>\" is documented for ASR modules (EC200T, EC200A, \
                 EC600N, EC800K ...) only; upgrade from a URL instead"
                    .into(),
            )
        }
        _ => None,
    }
}

fn percent_bar(prefix: &'static str) -> ProgressBar {
    let bar = ui().add(ProgressBar::new(100));
    bar.set_style(
        ProgressStyle::with_template("{prefix:>10} [{wide_bar}] {pos:>3}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(prefix);
    bar
}

/// The SIMCom module's own upgrade from a URL (`simcom::fota`).
fn run_simcom(mut c: Modem<'_>, g: &Global, a: &FotaArgs) -> Res<()> {
    use cellular_ota::simcom::fota::{SimcomFotaConfig, upgrade_modem_blocking};
    let Some(url) = &a.url else {
        return Err(Fail(
            "a SIMCom module downloads its package itself: give its URL (--file streams \
             a package over the AT port, which only Quectel's ASR modules take)"
                .into(),
        ));
    };
    let brought = bring_up(
        &mut c,
        g,
        Vendor::Simcom,
        Duration::from_secs(a.register_timeout),
        Some(a.cid),
    )?;
    let Some(family) = brought.simcom else {
        return Err(Fail("the SIMCom command set is not known".into()));
    };
    say(format!(
        "module {} {}, command set {family:?}",
        brought.info.model, brought.info.revision
    ));
    let mut config = SimcomFotaConfig::new(url, family);
    config.timeouts = FotaTimeouts {
        download_gap: Duration::from_secs(a.gap_timeout),
        upgrade_gap: Duration::from_secs(a.gap_timeout),
        ready: Duration::from_secs(a.ready_timeout),
        ..FotaTimeouts::default()
    };
    let started = std::time::Instant::now();
    let report = upgrade_modem_blocking(&mut c, &config, &mut |p| match p {
        FotaProgress::Accepted => say("module accepted the upgrade request"),
        FotaProgress::DownloadStarted => say("package download started"),
        FotaProgress::Downloading(pct) => say(format!("download {pct}%")),
        FotaProgress::Downloaded => say("package downloaded; the module installs it"),
        FotaProgress::Rebooted => say("module rebooted"),
        FotaProgress::UpgradeStarted => say("upgrade started"),
        FotaProgress::Updating(pct) => say(format!("upgrade {pct}%")),
        FotaProgress::Upgraded => say("upgrade finished; waiting for the module to come back"),
        FotaProgress::PortLost => say("port silent or gone while the module restarts; retrying"),
        _ => {}
    })
    .map_err(|e| Fail(fota_error(&e)))?;
    println!(
        "revision    {} → {}",
        report.old_revision, report.new_revision
    );
    println!("time        {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

pub fn run(g: &Global, a: &FotaArgs) -> Res<()> {
    let options = a.fota_options.as_deref().map(parse_options).transpose()?;
    let mut port = open_port(g)?;
    port.set_reconnect(!a.no_reconnect);
    let (mut rx, mut resp) = (vec![0u8; 4096], vec![0u8; 1024]);
    let urcs = Urcs { verbose: g.verbose };
    let mut c: Modem<'_> = Modem::new(port, StdClock::new(), &mut rx, &mut resp, urcs);
    sync(&mut c, g)?;
    let detected = detect_vendor(&mut c, g)?;
    if detected.vendor == Vendor::Simcom {
        return run_simcom(c, g, a);
    }
    let (model, family) = {
        let id = c
            .send(&Identify)
            .map_err(|e| Fail(format!("ATI: {}", client_error(&e))))?;
        (id.model.to_string(), id.family())
    };
    let family = match a.family {
        FamilyArg::Auto => family.ok_or_else(|| {
            Fail(format!(
                "unknown module {model:?}: pass --family qualcomm|asr|unisoc"
            ))
        })?,
        FamilyArg::Qualcomm => ChipFamily::Qualcomm,
        FamilyArg::Asr => ChipFamily::Asr,
        FamilyArg::Unisoc => ChipFamily::Unisoc,
    };
    say(format!(
        "module {model}, chip family {}",
        family_name(family)
    ));
    let timeouts = FotaTimeouts {
        download_gap: Duration::from_secs(a.gap_timeout),
        upgrade_gap: Duration::from_secs(a.gap_timeout),
        ready: Duration::from_secs(a.ready_timeout),
        ..FotaTimeouts::default()
    };
    let tty = interactive();
    let mut upload: Option<ProgressBar> = None;
    let mut download: Option<ProgressBar> = None;
    let mut upgrade: Option<ProgressBar> = None;
    let mut port_lost = false;
    let from_file = a.file.is_some();
    let mut on_progress = |p: FotaProgress| {
        if p != FotaProgress::PortLost && port_lost {
            port_lost = false;
        }
        match p {
            FotaProgress::Accepted if from_file => {
                say("module accepted AT+QFOTADL; sending the package")
            }
            FotaProgress::Accepted => say("module accepted AT+QFOTADL; waiting for the download"),
            FotaProgress::Sent { sent, total } => {
                let bar = upload.get_or_insert_with(|| bytes_bar("upload", u64::from(total)));
                bar.set_position(u64::from(sent));
                if !tty {
                    say(format!("sent {sent} of {total} bytes"));
                }
                if sent == total {
                    bar.finish_with_message("sent");
                    say(format!(
                        "package sent ({total} bytes); waiting for the module to store it"
                    ));
                }
            }
            FotaProgress::DownloadStarted if from_file => say("module receiving (FILESTART)"),
            FotaProgress::DownloadStarted => {
                say("package download started");
                download.get_or_insert_with(|| percent_bar("download"));
            }
            FotaProgress::Downloading(pct) => {
                let prefix = if from_file { "stored" } else { "download" };
                let bar = download.get_or_insert_with(|| percent_bar(prefix));
                bar.set_position(u64::from(pct));
                if !tty {
                    say(format!("{prefix} {pct}%"));
                }
            }
            FotaProgress::Downloaded => {
                if let Some(bar) = &download {
                    bar.set_position(100);
                    bar.finish_with_message("done");
                }
                if from_file {
                    say("package stored in the module (FILEEND,0); it reboots to install it");
                } else {
                    say("package downloaded; the module reboots to install it");
                }
            }
            FotaProgress::Rebooted => say("module rebooted (RDY)"),
            FotaProgress::PortLost => {
                if !port_lost {
                    port_lost = true;
                    say("port silent or gone while the module restarts; retrying");
                }
            }
            FotaProgress::UpgradeStarted => {
                say("upgrade started");
                upgrade.get_or_insert_with(|| percent_bar("upgrade"));
            }
            FotaProgress::Updating(pct) | FotaProgress::Restoring(pct) => {
                let bar = upgrade.get_or_insert_with(|| percent_bar("upgrade"));
                bar.set_position(u64::from(pct));
                if matches!(p, FotaProgress::Restoring(_)) {
                    bar.set_message("restoring");
                }
                if !tty {
                    say(format!("upgrade {pct}%"));
                }
            }
            FotaProgress::Upgraded => {
                if let Some(bar) = &upgrade {
                    bar.set_position(100);
                    bar.finish_with_message("done");
                }
                say("upgrade finished (END,0); waiting for the module to come back");
            }
        }
    };
    let started = std::time::Instant::now();
    let r: Result<FotaReport, FotaError<PortError>> = match (&a.url, &a.file) {
        (_, Some(path)) => {
            if family != ChipFamily::Asr {
                say(format!(
                    "note: AT+QFOTADL=\"FILE:<len>\" is documented for ASR modules only; \
                     this is a {} module",
                    family_name(family)
                ));
            }
            let file = std::fs::File::open(path)
                .map_err(|e| Fail(format!("cannot read {}: {e}", path.display())))?;
            let len = file
                .metadata()
                .map_err(|e| Fail(format!("cannot read {}: {e}", path.display())))?
                .len();
            let length = u32::try_from(len)
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| Fail(format!("{}: {len} bytes is no package", path.display())))?;
            let pacing = if g.rtscts {
                say(format!(
                    "sending {length} bytes with RTS/CTS flow control (AT+IFC=2,2)"
                ));
                FilePacing::FlowControl
            } else {
                say(format!(
                    "sending {length} bytes at most {} bytes/s in {}-byte writes (no flow \
                     control; pass --rtscts if RTS/CTS is wired)",
                    a.pace, a.write_size
                ));
                FilePacing::Paced {
                    bytes_per_sec: a.pace.max(1),
                    write_size: a.write_size.max(1),
                }
            };
            let mut config = HostFileConfig::new(pacing);
            config.family = family;
            config.options = options;
            config.timeouts = timeouts;
            let source = FileSource(std::io::BufReader::new(file));
            upgrade_modem_from_host_blocking(&mut c, &config, length, source, &mut on_progress)
        }
        (Some(url), None) => {
            let info = bring_up(
                &mut c,
                g,
                Vendor::Quectel,
                Duration::from_secs(a.register_timeout),
                Some(a.cid),
            )?
            .info;
            say(format!("PDP context {} up, IP {}", a.cid, info.ip));
            let mut config = ModemFotaConfig::new(url, family);
            config.context_id = a.cid;
            config.fota_path = &a.fota_path;
            config.options = options;
            config.timeouts = timeouts;
            upgrade_modem_blocking(&mut c, &config, &mut on_progress)
        }
        (None, None) => return Err(Fail("give a package URL or --file PACKAGE".into())),
    };
    for bar in upload.iter().chain(download.iter()).chain(upgrade.iter()) {
        bar.finish_and_clear();
        ui().remove(bar);
    }
    let report = r.map_err(|e| {
        let mut msg = fota_error(&e);
        if let Some(hint) = file_hint(&e, g, a) {
            msg.push_str("\nhint: ");
            msg.push_str(&hint);
        }
        Fail(msg)
    })?;
    println!(
        "revision    {} → {}",
        report.old_revision, report.new_revision
    );
    println!("time        {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}
