//! Upgrades the EC200U's own firmware with `AT+QFOTADL` (reference `quectel-at.md` §8),
//! using the crate's module-upgrade flow (`cellular_ota::update::module_fota`).
//!
//! 1. Bring the modem up (power, `AT`, SIM, registration, PDP): the module downloads the
//!    package itself, over its own PDP context.
//! 2. The flow reads `AT+QGMR`, sends `AT+QCFG="fota/path","UFS:"` and
//!    `AT+QCFG="fota/cid",<cid>` (without the colon in `UFS:` the EC200U fails at once with
//!    `HTTPEND,608`), then `AT+QFOTADL="<url>",1,50,100`: download, then upgrade at once,
//!    with up to 50 download and 100 upgrade progress reports.
//! 3. It follows the `+QIND: "FOTA",...` reports with a deadline per stage (§9) across the
//!    module's reboots (`RDY`, line noise and UART errors are expected and survived).
//! 4. Success only on `+QIND: "FOTA","END",0`, then the reboot, then `AT+QGMR` showing a
//!    different revision than before.
//!
//! The package must be made by Quectel for the exact revision the module runs (`AT+QGMR`);
//! a delta for another source revision is rejected by the module.

#![no_std]
#![no_main]

#[cfg(feature = "sim7600")]
compile_error!(
    "modem_fota upgrades Quectel modules (AT+QFOTADL); the SIM7600 has no AT+CFOTA: build the \
     sim7600 configuration with --bin ota_update --bin ota_update_async"
);

use core::time::Duration;

use cellular_ota::client::blocking::Client;
use cellular_ota::quectel::ChipFamily;
use cellular_ota::quectel::fota::{FotaOptions, UpgradeMode};
use cellular_ota::update::module_fota::{
    FotaError, FotaProgress, FotaTimeouts, ModemFotaConfig, upgrade_modem_blocking,
};
use cellular_ota_esp32s3_7semi::board::{self, ModemPins};
use cellular_ota_esp32s3_7semi::clock::HalClock;
use cellular_ota_esp32s3_7semi::report::UrcLog;
use cellular_ota_esp32s3_7semi::trace::Traced;
use cellular_ota_esp32s3_7semi::{block_on, config, modem};
use esp_backtrace as _;
use esp_hal::uart::Uart;
use esp_println::println;

cellular_ota_esp32s3_7semi::app_descriptor!();

#[esp_hal::main]
fn main() -> ! {
    let p = esp_hal::init(esp_hal::Config::default());
    println!(
        "\ncellular-ota modem FOTA example {} on {}",
        config::FIRMWARE_VERSION,
        board::CHIP_NAME
    );

    // SAFETY: the modem's GPIOs are taken only here; nothing else uses GPIOs.
    let pins = unsafe { ModemPins::take() };
    let mut pwrkey = pins.pwrkey.map(modem::pwrkey_output);
    let uart = Uart::new(p.UART1, cellular_ota_esp32s3_7semi::modem_uart_config())
        .expect("UART1 configuration")
        .with_rx(pins.rx)
        .with_tx(pins.tx);
    let (mut rx, mut response) = ([0u8; 2048], [0u8; 512]);
    let mut client = Client::new(
        Traced::new(uart),
        HalClock,
        &mut rx,
        &mut response,
        UrcLog::default(),
    );

    let brought_up = block_on(async {
        let c = client.as_async();
        modem::power_up(c, pwrkey.as_mut()).await?;
        modem::bring_up(c).await
    });
    match brought_up {
        Err(e) => println!("MODEM FOTA NOT STARTED: modem bring-up failed: {e}"),
        Ok(info) => {
            let family = modem::family(&info).unwrap_or_else(|| {
                println!("unknown module family; assuming Unisoc (EC200U)");
                ChipFamily::Unisoc
            });
            let fota = ModemFotaConfig {
                context_id: config::PDP_CONTEXT,
                fota_path: "UFS:",
                options: Some(FotaOptions {
                    upgrade_mode: UpgradeMode::Immediate,
                    download_urc_max: 50,
                    update_urc_max: Some(100),
                }),
                timeouts: FotaTimeouts {
                    start: cellular_ota::quectel::fota::FOTA_START_TIMEOUT,
                    download_gap: config::MODEM_FOTA_DOWNLOAD_GAP,
                    upgrade_gap: config::MODEM_FOTA_UPGRADE_GAP,
                    ready: config::MODEM_FOTA_READY_TIMEOUT,
                },
                ..ModemFotaConfig::new(config::MODEM_FOTA_URL, family)
            };
            println!("AT+QFOTADL=\"{}\",1,50,100", config::MODEM_FOTA_URL);
            match upgrade_modem_blocking(&mut client, &fota, &mut print_progress) {
                Ok(report) => println!(
                    "MODEM FOTA SUCCEEDED: revision {} -> {}",
                    report.old_revision, report.new_revision
                ),
                Err(e) => print_failure(&e),
            }
        }
    }
    // Nothing else to do: keep printing what the modem says.
    loop {
        let _ = client.wait_for(Duration::from_secs(3600), |_| None::<()>);
    }
}

fn print_progress(p: FotaProgress) {
    match p {
        FotaProgress::Accepted => println!("FOTA: request accepted (OK)"),
        FotaProgress::Sent { sent, total } => println!("FOTA: sent {sent} of {total} bytes"),
        FotaProgress::DownloadStarted => println!("FOTA: download started"),
        FotaProgress::Downloading(pct) => println!("FOTA: downloading {pct} %"),
        FotaProgress::Downloaded => println!("FOTA: package downloaded"),
        FotaProgress::Rebooted => println!("FOTA: module rebooted (expected)"),
        FotaProgress::PortLost => println!("FOTA: UART error while the module restarts; retrying"),
        FotaProgress::UpgradeStarted => println!("FOTA: upgrade started -- do not cut the power"),
        FotaProgress::Updating(pct) => println!("FOTA: upgrading {pct} %"),
        FotaProgress::Restoring(pct) => println!("FOTA: restoring {pct} %"),
        FotaProgress::Upgraded => {
            println!("FOTA: END,0 -- waiting for the module to restart and confirming AT+QGMR")
        }
    }
}

fn print_failure<E: core::fmt::Debug>(e: &FotaError<E>) {
    println!("MODEM FOTA FAILED");
    println!("  stage:   {:?}", e.stage);
    match (e.code(), e.meaning()) {
        (Some(code), Some(meaning)) => println!("  code:    {code} ({meaning})"),
        (Some(code), None) => println!("  code:    {code}"),
        (None, _) => println!("  code:    none"),
    }
    println!("  detail:  {e}");
}
