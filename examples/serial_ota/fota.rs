//! `fota`: upgrade the module's own firmware with `AT+QFOTADL`, through its reboots.

use std::time::Duration;

use cellular_ota::quectel::ChipFamily;
use cellular_ota::quectel::fota::{FotaOptions, UpgradeMode};
use cellular_ota::quectel::general::Identify;
use cellular_ota::update::modem::{
    FotaError, FotaProgress, FotaTimeouts, ModemFotaConfig, upgrade_modem_blocking,
};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use crate::Global;
use crate::common::{
    Fail, Modem, Res, StdClock, Urcs, client_error, ensure_pdp, interactive, open_port, say, sync,
    ui, wait_registered,
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
pub struct FotaArgs {
    /// Firmware package URL (http://, https:// or ftp://; at most 255 bytes).
    pub url: String,
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
        cellular_ota::update::modem::FotaFailure::Modem(m) => {
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

pub fn run(g: &Global, a: &FotaArgs) -> Res<()> {
    let options = a.fota_options.as_deref().map(parse_options).transpose()?;
    let mut port = open_port(g)?;
    port.set_reconnect(!a.no_reconnect);
    let (mut rx, mut resp) = (vec![0u8; 4096], vec![0u8; 1024]);
    let urcs = Urcs { verbose: g.verbose };
    let mut c: Modem<'_> = Modem::new(port, StdClock::new(), &mut rx, &mut resp, urcs);
    sync(&mut c, g)?;
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
    wait_registered(&mut c, Duration::from_secs(a.register_timeout))?;
    let pdp = ensure_pdp(&mut c, a.cid, &g.apn)?;
    say(format!(
        "PDP context {} up, IP {}",
        pdp.cid,
        pdp.ip.as_deref().unwrap_or("?")
    ));

    let mut config = ModemFotaConfig::new(&a.url, family);
    config.context_id = a.cid;
    config.fota_path = &a.fota_path;
    config.options = options;
    config.timeouts = FotaTimeouts {
        download_gap: Duration::from_secs(a.gap_timeout),
        upgrade_gap: Duration::from_secs(a.gap_timeout),
        ready: Duration::from_secs(a.ready_timeout),
        ..FotaTimeouts::default()
    };

    let tty = interactive();
    let mut download: Option<ProgressBar> = None;
    let mut upgrade: Option<ProgressBar> = None;
    let mut port_lost = false;
    let started = std::time::Instant::now();
    let r = upgrade_modem_blocking(&mut c, &config, &mut |p| {
        if p != FotaProgress::PortLost && port_lost {
            port_lost = false;
        }
        match p {
            FotaProgress::Accepted => say("module accepted AT+QFOTADL; waiting for the download"),
            FotaProgress::DownloadStarted => {
                say("package download started");
                download.get_or_insert_with(|| percent_bar("download"));
            }
            FotaProgress::Downloading(pct) => {
                let bar = download.get_or_insert_with(|| percent_bar("download"));
                bar.set_position(u64::from(pct));
                if !tty {
                    say(format!("download {pct}%"));
                }
            }
            FotaProgress::Downloaded => {
                if let Some(bar) = &download {
                    bar.set_position(100);
                    bar.finish_with_message("done");
                }
                say("package downloaded; the module reboots to install it");
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
    });
    for bar in download.iter().chain(upgrade.iter()) {
        bar.finish_and_clear();
        ui().remove(bar);
    }
    let report = r.map_err(|e| Fail(fota_error(&e)))?;
    println!(
        "revision    {} → {}",
        report.old_revision, report.new_revision
    );
    println!("time        {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}
