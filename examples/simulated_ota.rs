//! A whole firmware update on a simulated device, on virtual time: a local HTTP server with a
//! generated ESP32-S3 image and its signed manifest, a simulated modem (Quectel EC200U,
//! EC200T or EG06; SIMCom SIM7600, A7670, SIM7070 or SIM800 with `--modem`) behind a
//! byte-accurate UART, a simulated NOR flash holding version 1.0.0,
//! `cellular_ota::update::update_blocking` (SIMCom: `update_with_blocking` over
//! `simcom::SimcomHttp`) into the ESP-IDF A/B sink, and the ESP-IDF bootloader's slot choice
//! at the end.
//!
//! Without options the device is the 7Semi firmware as shipped: the module boots at 115200,
//! the device negotiates the UART rate up (`cellular_ota::baud`, `--rates`), the slot the
//! update writes was erased in idle time beforehand (`--no-idle-erase` to skip), no RTS/CTS,
//! an interrupt-driven receive ring. `--baud B` fixes the rate without negotiation.
//!
//! ```text
//! cargo run --release --example simulated_ota
//! cargo run --release --example simulated_ota -- --baud 921600 --no-idle-erase
//! cargo run --release --example simulated_ota -- --fault baud-limit=460800
//! cargo run --release --example simulated_ota -- --plot timeline.svg --plot-compare-baud 921600
//! cargo run --release --example simulated_ota -- --strategy stream --flow-control off
//! cargo run --release --example simulated_ota -- --fault modem-reboot --fault ignore-range
//! cargo run --release --example simulated_ota -- --json --size 262144 --fault mcu-reset
//! cargo run --release --example simulated_ota -- --table            # the README's table
//! ```
//!
//! The device behaves like firmware: after a failed attempt it recovers (MCU reset: new
//! client and sink over the same flash; power cut: everything restarts from the flash as the
//! cut left it; modem reboot or lost PDP context: the modem is brought up again) and calls the
//! update again, which resumes from what is durable in flash. `--attempts` bounds that.
//!
//! Faults (`--fault`, repeatable): every name of `cellular_ota_sim::FAULTS` with its
//! arguments (e.g. `byte-loss=100000,3`, `server-500@/fw.bin`; offsets count payload
//! bytes, `img+N` means byte N of the image body; a `trigger:` prefix such as `manifest:`,
//! `started:`, `bytes=N:` or `attempt=N:` delays it), and these aliases:
//!
//! | alias | what happens | exit |
//! |---|---|---|
//! | `drop-link` | the TCP connection drops after 40 % of the body (once) and the network deactivates the PDP context | 0 (resumes) |
//! | `modem-reboot` | the modem reboots after 40 % of the body | 0 (resumes) |
//! | `mcu-reset` | the MCU resets after 40 % of the body | 0 (resumes) |
//! | `power-cut` | the power fails at the first flash operation after 40 % of the image is durable | 0 (resumes) |
//! | `ignore-range` | the server ignores `Range` (200 with the whole file) | 0 (falls back to a stream) |
//! | `corrupt-image` | the server's copy has a flipped byte (the manifest has the good SHA-256) | 1 |
//! | `wrong-chip` | the image is built for ESP32-C3 (signed as it is) | 1 |
//! | `http-404` | the server answers 404 for the image | 1 |
//! | `unsigned-manifest` | the manifest has no signature while the device has a key | 1 (stage manifest, `NoSignature`) |
//! | `other-product` | the manifest is validly signed, for another product | 1 (stage manifest, `OtherProduct`) |
//! | `downgrade` | the manifest is validly signed, for version 0.9.0 (older than the running 1.0.0) | 1 (stage manifest, `Downgrade`) |
//! | `version-mismatch` | the manifest says 2.0.0, the image's app descriptor 2.0.1 (signed as it is) | 1 (stage activation, `VersionMismatch`) |
//! | `key-without-manifest` | the device is configured with its key but no manifest URL | 1 (stage configuration, nothing sent) |
//! | `segment-over-bootloader` | the image (signed as it is) has a RAM segment over the bootloader's own RAM | 1 (stage activation, `BadSegment`) |
//!
//! Exit status: 0 = the new image is verified, activated and the bootloader boots it; 1 = the
//! update failed with a typed error and the old image still boots; 2 = no valid image would
//! boot (never expected); 64 = bad command line.
//!
//! # What the numbers mean
//!
//! * **transfer interval**: the virtual time from the last attempt's `Progress::Started` to
//!   its `Progress::Verifying`: the image request(s), the modem fetching the body from the
//!   network, flash erases, the UART transfer and the flash writes — everything between
//!   "the transfer starts" and "the last byte is durable in flash". Not in it: modem
//!   bring-up, the manifest, the read-back verification and the activation.
//! * **throughput, % of line rate**: (image bytes moved in that attempt) / (transfer
//!   interval) divided by the UART's line rate of baud / 10 bytes per second (8N1: ten bit
//!   times per byte), at the rate the payload ran at (the negotiated one).
//! * **negotiation**: the virtual time the last attempt's baud negotiation took (before the
//!   bring-up, not in the transfer interval); the idle erase runs before the whole run and
//!   is reported apart (`idle_erase_steps`, `idle_erase_seconds`).
//! * **payload interval**: from the first to the last `Progress::Bytes` of the last attempt
//!   (the body flowing into flash), for the same ratio without the request overhead.
//! * **UART bytes lost**: bytes that arrived at the MCU's UART while its 128-byte FIFO and
//!   driver ring were full (only possible without RTS/CTS). The ring is interrupt-driven
//!   (1 KiB; it cannot fill while flash is busy) unless `--rx-dma BYTES` makes it a DMA ring
//!   that keeps filling during flash operations (ESP32-S3 UHCI + GDMA).

#![recursion_limit = "256"]

#[path = "../tests/sim_device/mod.rs"]
mod sim_device;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use cellular_ota::retry::{Classify, Retry};
use cellular_ota::update::{Failure, Outcome, Progress, Strategy};
use cellular_ota_sim::{Fault, Personality};
use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};
use sim_device::plot::{PlotCollector, plot_svg};
use sim_device::{
    AttemptError, Booted, BringUpKind, Device, Event, ImageKind, ManifestMode, Report, Setup, hex,
    method_name, parse_trigger,
};

fn retry_name(r: Retry) -> &'static str {
    match r {
        Retry::Transient => "transient",
        Retry::Permanent => "permanent",
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum OnOff {
    On,
    Off,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum StrategyArg {
    Auto,
    Stream,
    Ranged,
    ModemFile,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BringUpArg {
    Library,
    Naive,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum RegistrationArg {
    Home,
    Roaming,
    Searching,
    Denied,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ChipArg {
    Esp32s3,
    Esp32c3,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Modem {
    Ec200u,
    Ec200t,
    Eg06,
    Sim7600,
    A7670,
    Sim7070,
    Sim800,
}

/// A complete firmware update through a simulated Quectel or SIMCom modem into simulated ESP32-S3
/// flash, on virtual time.
#[derive(Parser, Debug)]
#[command(
    version,
    after_help = "Exit status: 0 = the new image is verified, activated and boots; 1 = the update \
                  failed with a typed error and the old image still boots; 2 = no valid image \
                  would boot (never expected); 64 = bad command line."
)]
struct Cli {
    /// Image size in bytes (of the generated image; see `--image`).
    #[arg(long, default_value_t = 1_572_864)]
    size: usize,
    /// Serve this real app image (an `espflash save-image` / `esptool elf2image` output for
    /// `--chip`) instead of a generated one; its app descriptor's version is the new
    /// version.
    #[arg(long, value_name = "FILE")]
    image: Option<std::path::PathBuf>,
    /// The device runs this real app image at the start (in `ota_0`); its app descriptor's
    /// version is the running one.
    #[arg(long, value_name = "FILE")]
    running_image: Option<std::path::PathBuf>,
    /// Serve a detools patch from the running image to the new one instead of the image
    /// (`python3 -m detools create_patch -c heatshrink --heatshrink-window-sz2 8
    /// --heatshrink-lookahead-sz2 7`, esp_delta_ota's flags; needs `pip install detools`),
    /// with a signed `payload delta` manifest.
    #[arg(long, conflicts_with = "compressed")]
    delta: bool,
    /// Serve the new image heatshrink-compressed (a detools patch from an empty base) with a
    /// signed `payload compressed` manifest.
    #[arg(long)]
    compressed: bool,
    /// The chip the simulated device is (the images' chip id, the bootloader model's and the
    /// sink's chip).
    #[arg(long, value_enum, default_value = "esp32s3")]
    chip: ChipArg,
    /// A UART rate (8N1) fixed from the start, without negotiation: the module has this rate
    /// saved and the MCU opens the UART at it (for measurements). Without it the device
    /// does what the 7Semi firmware does: the module boots at its factory 115200 and the
    /// device negotiates up (`--rates`).
    #[arg(long)]
    baud: Option<u32>,
    /// Do not erase the update slot in idle time before the run (the 7Semi firmware does,
    /// after it confirmed its image): the update then erases while the modem fetches.
    #[arg(long)]
    no_idle_erase: bool,
    /// Candidate rates for negotiation, fastest first (comma-separated). The default is the
    /// 7Semi firmware's for its interrupt-driven UART without RTS/CTS: 921600 is the fastest
    /// whose 128-byte FIFO outlasts a page program; add 3000000 with `--rx-dma`.
    #[arg(long, value_delimiter = ',', default_value = "921600,460800,230400")]
    rates: Vec<u32>,
    /// RTS/CTS hardware flow control.
    #[arg(long, value_enum, default_value = "off")]
    flow_control: OnOff,
    /// How to fetch the image.
    #[arg(long, value_enum, default_value = "auto")]
    strategy: StrategyArg,
    /// Size of each ranged request in bytes, or `none` for buffered 4 KiB chunks.
    #[arg(long, default_value = "524288")]
    range_size: String,
    /// Receive by UART DMA into a ring of this many bytes that keeps filling while flash
    /// is busy (ESP32-S3 UHCI + GDMA); the update then erases while the body arrives. `0`
    /// (the default): an interrupt-driven 1 KiB ring, so only the 128-byte FIFO catches
    /// bytes during a flash operation.
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
    rx_dma: usize,
    /// The modem.
    #[arg(long, value_enum, default_value = "ec200u")]
    modem: Modem,
    /// A fault to inject (repeatable): a simulator fault (`byte-loss=100000,3`,
    /// `server-500@/fw.bin`, `manifest:http-get-error=702`, ...) or an alias: `drop-link`,
    /// `modem-reboot`, `mcu-reset`, `power-cut`, `ignore-range` (the device resumes or falls
    /// back: exit 0), `corrupt-image`, `wrong-chip`, `http-404`, `unsigned-manifest`,
    /// `other-product`, `downgrade`, `version-mismatch`, `key-without-manifest`,
    /// `segment-over-bootloader` (exit 1).
    #[arg(long = "fault", value_name = "FAULT")]
    faults: Vec<String>,
    /// Attempts the device makes at most.
    #[arg(long, default_value_t = 3)]
    attempts: u32,
    /// Random seed of the simulation.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The URC port saved in the module (`AT+QURCCFG="urcport"`): `uart1` (the default), or
    /// `usbat` / `usbmodem` for a module last set up over USB, whose URCs (`+QHTTPGET:`
    /// included) never reach the UART until bring-up routes them back.
    #[arg(long, value_name = "PORT", default_value = "uart1")]
    modem_urc_port: String,
    /// How the device brings the modem up before each attempt: `library` (the crate's
    /// bring-up) or `naive` (AT, ATE0, AT+CMEE=1 and the PDP context, as hand-written
    /// firmware does: the URC port is never read or set).
    #[arg(long, value_enum, default_value = "library")]
    bring_up: BringUpArg,
    /// The SIM asks for this PIN at power-on.
    #[arg(long, value_name = "PIN")]
    modem_sim_pin: Option<String>,
    /// The PIN the device is configured with.
    #[arg(long, value_name = "PIN")]
    sim_pin: Option<String>,
    /// The registration the network gives: `home`, `roaming`, `searching` (never
    /// registers) or `denied`.
    #[arg(long, value_enum, default_value = "home")]
    registration: RegistrationArg,
    /// The EMM cause reported with a denial (`AT+CEREG=3`), e.g. 15 (no suitable cells,
    /// retried) or 3 (illegal UE, final).
    #[arg(long, value_name = "CAUSE")]
    reject_cause: Option<u16>,
    /// Draw where the run's time went into FILE (SVG): payload bytes durable against the line
    /// rate, flash erasing and programming, the MCU's receive-buffer fill, baud changes and
    /// retries.
    #[arg(long, value_name = "FILE")]
    plot: Option<std::path::PathBuf>,
    /// With `--plot`: also run the same setup the way it ran before negotiation and idle
    /// erase, with the UART fixed at this rate and the slot erased during the update, and
    /// draw it in a second panel on the same time axis.
    #[arg(long, value_name = "BAUD", requires = "plot")]
    plot_compare_baud: Option<u32>,
    /// Print one JSON object (no progress bar).
    #[arg(long)]
    json: bool,
    /// Write the whole simulated flash (4 MiB), as the bootloader sees it at the next reset
    /// (after the run's last operation, power cut or not), to FILE: check it with
    /// Espressif's tools (`esptool image-info` on the slot that boots).
    #[arg(long, value_name = "FILE")]
    flash_out: Option<std::path::PathBuf>,
    /// Measure every strategy × baud rate × flow control (one attempt each) and print a
    /// table (Markdown, or JSON lines with --json).
    #[arg(long)]
    table: bool,
}

fn personality(m: Modem) -> Personality {
    match m {
        Modem::Ec200u => Personality::Ec200u,
        Modem::Ec200t => Personality::Ec200t,
        Modem::Eg06 => Personality::Eg06,
        Modem::Sim7600 => Personality::Sim7600,
        Modem::A7670 => Personality::A7670,
        Modem::Sim7070 => Personality::Sim7070,
        Modem::Sim800 => Personality::Sim800,
    }
}

fn strategy(s: StrategyArg) -> Strategy {
    match s {
        StrategyArg::Auto => Strategy::Auto,
        StrategyArg::Stream => Strategy::Stream,
        StrategyArg::Ranged => Strategy::Ranged,
        StrategyArg::ModemFile => Strategy::ModemFile,
    }
}

/// The downgrade alias's offer: validly signed, older than the running 1.0.0.
const DOWNGRADE_VERSION: &str = "0.9.0";

/// Applies `--fault` values to `setup`: aliases become simulator faults, a served image or
/// manifest, or a device configuration; other values are simulator faults (checked here).
fn apply_faults(setup: &mut Setup, faults: &[String], image_len: usize) -> Result<(), String> {
    let at = image_len * 2 / 5;
    for f in faults {
        match f.as_str() {
            "drop-link" => {
                setup.transient_faults.push(format!(
                    "server-close-early={at}@{}",
                    sim_device::IMAGE_PATH
                ));
                setup.faults.push(format!("bytes={}:pdp-deact=0", at / 2));
            }
            "modem-reboot" => setup.faults.push(format!("modem-reboot=img+{at}")),
            "mcu-reset" => setup.faults.push(format!("mcu-reset=img+{at}")),
            "power-cut" => setup.faults.push(format!("bytes={at}:power-cut=0")),
            "ignore-range" => setup.faults.push("server-ignore-range".into()),
            "corrupt-image" => setup.image = ImageKind::Corrupt,
            "wrong-chip" => setup.image = ImageKind::WrongChip,
            "http-404" => setup
                .faults
                .push(format!("server-404@{}", sim_device::IMAGE_PATH)),
            "unsigned-manifest" => setup.manifest = ManifestMode::Unsigned,
            "other-product" => setup.manifest = ManifestMode::OtherProduct,
            "downgrade" => setup.manifest = ManifestMode::Version(DOWNGRADE_VERSION),
            "version-mismatch" => setup.image = ImageKind::VersionMismatch,
            "key-without-manifest" => setup.key_without_manifest = true,
            "segment-over-bootloader" => setup.image = ImageKind::OverBootloader,
            other => {
                let (_, fault) = parse_trigger(other);
                let plain = fault.replace("img+", "");
                if !plain.starts_with("mcu-reset-in=") {
                    plain
                        .parse::<Fault>()
                        .map_err(|e| format!("--fault {other}: {e}"))?;
                }
                setup.faults.push(other.to_string());
            }
        }
    }
    Ok(())
}

/// Numbers of one run.
struct Numbers {
    bytes: usize,
    moved: u32,
    transfer: Option<Duration>,
    payload: Option<(Duration, u32)>,
    line_rate: f64,
}

impl Numbers {
    fn of(report: &Report, image_len: usize, baud: u32) -> Numbers {
        let a = report.last();
        let moved = image_len as u32 - a.resumed_from.unwrap_or(0).min(image_len as u32);
        let transfer = match (a.t_started, a.t_verifying) {
            (Some(s), Some(v)) => Some(v - s),
            _ => None,
        };
        let payload = match (a.t_first_bytes, a.t_last_bytes) {
            (Some(f), Some(l)) if l > f => Some((l - f, a.last_bytes_done - a.first_bytes_done)),
            _ => None,
        };
        Numbers {
            bytes: image_len,
            moved,
            transfer,
            payload,
            line_rate: f64::from(baud) / 10.0,
        }
    }

    fn transfer_pct(&self) -> Option<f64> {
        self.transfer
            .map(|t| f64::from(self.moved) / t.as_secs_f64() / self.line_rate * 100.0)
    }

    fn payload_pct(&self) -> Option<f64> {
        self.payload
            .map(|(t, n)| f64::from(n) / t.as_secs_f64() / self.line_rate * 100.0)
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}

/// A plot panel's title: the setup as a device would be configured.
fn plot_title(setup: &Setup, report: &Report) -> String {
    format!(
        "{:?}, {}, RTS/CTS {}, {}, {}",
        setup.personality,
        match &setup.negotiate {
            Some(_) => format!(
                "boots at {} baud, negotiated {}",
                setup.baud,
                report.last().baud
            ),
            None => format!("{} baud fixed", setup.baud),
        },
        if setup.flow { "on" } else { "off" },
        match setup.rx_dma {
            Some(n) => format!("UART DMA ring {n} B"),
            None => "interrupt-driven receive".into(),
        },
        if setup.idle_erased {
            "slot erased in idle time"
        } else {
            "slot erased by the update"
        },
    )
}

fn exit_code(report: &Report) -> u8 {
    match (report.installed(), report.booted) {
        (_, Booted::Nothing | Booted::Other) => 2,
        (Some(_), Booted::New) => 0,
        _ => 1,
    }
}

fn slot_name(report: &Report) -> Value {
    match report.boot.target {
        Some(cellular_ota_sim::BootTarget::Ota(n)) => json!(format!("ota_{n}")),
        Some(t) => json!(format!("{t:?}")),
        None => Value::Null,
    }
}

fn summary_json(
    cli: &Cli,
    setup: &Setup,
    report: &Report,
    n: &Numbers,
    wall: Duration,
    device: &Device,
) -> Value {
    let idle = device.idle_erase;
    let last = report.last();
    let sha = match report.installed() {
        Some(Outcome::Installed { sha256, .. }) => json!(hex(sha256)),
        _ => Value::Null,
    };
    let e = report.error();
    let error = match &last.result {
        Ok(_) => Value::Null,
        Err(e) => json!(e.to_string()),
    };
    json!({
        "ok": exit_code(report) == 0,
        "exit": exit_code(report),
        "strategy": last.method.map(method_name),
        "requested_strategy": format!("{:?}", cli.strategy).to_lowercase(),
        "range_size": setup.range_size,
        "modem": format!("{:?}", setup.personality).to_lowercase(),
        "boot_baud": setup.baud,
        "baud": last.baud,
        "negotiation": setup.negotiate.is_some(),
        "idle_erased": setup.idle_erased,
        "idle_erase_steps": idle.map(|(n, _)| n),
        "idle_erase_seconds": idle.map(|(_, t)| round(t.as_secs_f64(), 3)),
        "negotiation_seconds": round(last.negotiation.as_secs_f64(), 3),
        "baud_fallbacks": last
            .negotiated
            .as_ref()
            .map(|n| {
                n.fallbacks
                    .iter()
                    .map(|f| json!({ "rate": f.rate, "why": format!("{:?}", f.why) }))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default(),
        "flow_control": setup.flow,
        "rx_dma": setup.rx_dma,
        "faults": cli.faults,
        "bytes": n.bytes,
        "bytes_moved_last_attempt": n.moved,
        "resumed_from": last.resumed_from,
        "attempt_resumed_from": report.attempts.iter().map(|a| a.resumed_from).collect::<Vec<_>>(),
        "sha256": sha,
        "boot_slot": slot_name(report),
        "boot_image": format!("{:?}", report.booted).to_lowercase(),
        "boot_image_len": report.boot.image.map(|i| i.len),
        "boot_image_sha256": report.boot.image.map(|i| hex(&i.sha256)),
        "boot_image_offset": report.boot.image.map(|i| i.offset),
        "boot_reason": report.boot.reason,
        "flash_out": cli.flash_out.as_ref().map(|p| p.display().to_string()),
        "virtual_seconds": round(report.virtual_time.as_secs_f64(), 3),
        "transfer_seconds": n.transfer.map(|t| round(t.as_secs_f64(), 3)),
        "line_rate_pct": n.transfer_pct().map(|p| round(p, 1)),
        "payload_seconds": n.payload.map(|(t, _)| round(t.as_secs_f64(), 3)),
        "payload_line_rate_pct": n.payload_pct().map(|p| round(p, 1)),
        "line_rate_bytes_per_second": n.line_rate,
        "uart_bytes_lost": report.uart_lost,
        "bytes_on_air": report.bytes_on_air,
        "image_size": device.served.len(),
        "payload": match setup.payload {
            sim_device::PayloadKind::Full => "full",
            sim_device::PayloadKind::Delta => "delta",
            sim_device::PayloadKind::Compressed => "compressed",
        },
        "patch_size": device.patch.as_ref().map(Vec::len),
        "chip": match setup.chip { sim_device::C3 => "esp32c3", _ => "esp32s3" },
        "flash_busy_seconds": round(report.flash.busy.as_secs_f64(), 3),
        "flash_erases": report.flash.erases,
        "flash_writes": report.flash.writes,
        "error": error,
        "error_stage": e.map(|e| e.stage.to_string()),
        "error_failure": e.map(|e| format!("{:?}", e.failure)),
        "error_code": e.and_then(|e| e.code()),
        "error_retry": match &last.result {
            Err(AttemptError::Update(e)) => json!(retry_name(e.retry())),
            Err(AttemptError::BringUp(e)) => json!(retry_name(e.retry())),
            Err(AttemptError::Baud(e)) => json!(retry_name(e.retry())),
            Ok(_) => Value::Null,
        },
        "bring_up_stage": match &last.result {
            Err(AttemptError::BringUp(e)) => json!(e.stage.to_string()),
            _ => Value::Null,
        },
        "bring_up_failure": match &last.result {
            Err(AttemptError::BringUp(e)) => json!(format!("{:?}", e.failure)),
            _ => Value::Null,
        },
        "modem_urc_port": setup.urc_port,
        "bring_up": format!("{:?}", cli.bring_up).to_lowercase(),
        "backoff_seconds": report.attempts.iter().map(|a| round(a.backoff.as_secs_f64(), 3)).collect::<Vec<_>>(),
        "attempts": report.attempts.len(),
        "attempt_errors": report.attempts.iter().filter_map(|a| a.result.as_ref().err().map(|e| e.to_string())).collect::<Vec<_>>(),
        "fallbacks": report.attempts.iter().flat_map(|a| a.fallbacks.iter().map(|m| method_name(*m))).collect::<Vec<_>>(),
        "power_cycles": report.power_cycles,
        "mcu_resets": report.mcu_resets,
        "wall_seconds": round(wall.as_secs_f64(), 3),
    })
}

fn make_setup(cli: &Cli) -> Result<Setup, String> {
    let mut setup = Setup::new(personality(cli.modem));
    setup.strategy = strategy(cli.strategy);
    setup.range_size = match cli.range_size.as_str() {
        "none" => None,
        n => Some(
            n.parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("--range-size {n}: a positive number or `none`"))?,
        ),
    };
    match cli.baud {
        Some(b) => setup.baud = b,
        None => {
            setup.baud = cellular_ota::baud::FACTORY_RATE;
            setup.negotiate = Some(cli.rates.clone());
        }
    }
    setup.flow = cli.flow_control == OnOff::On;
    setup.rx_dma = (cli.rx_dma > 0).then_some(cli.rx_dma);
    setup.size = cli.size;
    setup.chip = match cli.chip {
        ChipArg::Esp32s3 => sim_device::S3,
        ChipArg::Esp32c3 => sim_device::C3,
    };
    let read = |path: &std::path::Path| {
        std::fs::read(path)
            .map(std::sync::Arc::new)
            .map_err(|e| format!("{}: {e}", path.display()))
    };
    if let Some(p) = &cli.image {
        setup.image_file = Some(read(p)?);
    }
    if let Some(p) = &cli.running_image {
        setup.running_file = Some(read(p)?);
    }
    setup.payload = match (cli.delta, cli.compressed) {
        (true, _) => sim_device::PayloadKind::Delta,
        (_, true) => sim_device::PayloadKind::Compressed,
        _ => sim_device::PayloadKind::Full,
    };
    setup.attempts = cli.attempts.max(1);
    setup.seed = cli.seed;
    setup.idle_erased = !cli.no_idle_erase;
    setup.urc_port = cli.modem_urc_port.to_ascii_lowercase();
    setup.bring_up = match cli.bring_up {
        BringUpArg::Library => BringUpKind::Library,
        BringUpArg::Naive => BringUpKind::WithoutUrcRouting,
    };
    setup.modem_sim_pin = cli.modem_sim_pin.clone();
    setup.device_sim_pin = cli.sim_pin.clone();
    setup.registration_stat = match cli.registration {
        RegistrationArg::Home => 1,
        RegistrationArg::Roaming => 5,
        RegistrationArg::Searching => 2,
        RegistrationArg::Denied => 3,
    };
    setup.reject_cause = cli.reject_cause;
    // Faults at "40 % of the body" count in what the server sends: the patch, the image file
    // or the generated image.
    let len = sim_device::body_len(&setup);
    apply_faults(&mut setup, &cli.faults, len)?;
    Ok(setup)
}

fn run_one(cli: &Cli) -> Result<u8, String> {
    let setup = make_setup(cli)?;
    let wall = Instant::now();
    let mut device = Device::new(setup.clone());
    let image_len = device.served.len();
    let pb = if cli.json || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        let pb =
            ProgressBar::with_draw_target(Some(image_len as u64), ProgressDrawTarget::stderr());
        pb.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:32.cyan/blue}] {bytes}/{total_bytes} {msg}",
            )
            .expect("template")
            .progress_chars("=> "),
        );
        pb
    };
    let log = |pb: &ProgressBar, line: String| {
        if !cli.json {
            if pb.is_hidden() {
                eprintln!("{line}");
            } else {
                pb.println(line);
            }
        }
    };
    log(
        &pb,
        format!(
            "simulated {:?} at {} baud, RTS/CTS {}, {} image of {image_len} bytes (v{} over v{}), strategy {:?}{}",
            setup.personality,
            match &setup.negotiate {
                Some(rates) => format!("{} negotiating up to {:?}", setup.baud, rates),
                None => setup.baud.to_string(),
            },
            if setup.flow { "on" } else { "off" },
            if device.manifest.is_some() {
                "signed"
            } else {
                "unsigned"
            },
            setup.new_version(),
            setup.old_version(),
            setup.strategy,
            if cli.faults.is_empty() {
                String::new()
            } else {
                format!(", faults {:?}", cli.faults)
            }
        ),
    );
    let mut last_msg = Duration::ZERO;
    let mut on_event = |world: &cellular_ota_sim::World, ev: Event<'_>| match ev {
        Event::Attempt(n) => pb.set_prefix(format!("attempt {n}")),
        Event::Recovered(what) => log(&pb, format!("  {what}")),
        Event::Failed(e) => log(&pb, format!("  attempt failed: {e}")),
        Event::Backoff(d) if !d.is_zero() => log(
            &pb,
            format!("  retrying in {:.1} s (backoff)", d.as_secs_f64()),
        ),
        Event::Backoff(_) => {}
        Event::Progress(p) => match p {
            Progress::Strategy { method, reason } => {
                log(&pb, format!("  method {}: {reason}", method_name(method)))
            }
            Progress::Fallback { to, reason } => {
                log(&pb, format!("  fallback to {}: {reason}", method_name(to)))
            }
            Progress::Started {
                total,
                resumed_from,
            } => {
                pb.set_length(u64::from(total));
                pb.set_position(u64::from(resumed_from));
                if resumed_from > 0 {
                    log(&pb, format!("  resuming from byte {resumed_from}"));
                }
            }
            Progress::Bytes { done, .. } => {
                pb.set_position(u64::from(done));
                // A power cycle starts a new world (and its clock) from zero.
                let t = world.elapsed();
                if t < last_msg || t - last_msg >= Duration::from_millis(200) {
                    last_msg = t;
                    pb.set_message(format!("{:.1} s virtual", t.as_secs_f64()));
                }
            }
            Progress::Verifying => pb.set_message("verifying"),
            Progress::Activating => pb.set_message("activating"),
            Progress::Manifest { .. } => {}
        },
    };
    let mut plot = PlotCollector::new();
    if cli.plot.is_some() {
        device.world.record_timeline(true);
    }
    let report = device.run(&mut |world, ev| {
        if cli.plot.is_some() {
            plot.on_event(world, &ev);
        }
        on_event(world, ev)
    });
    pb.finish_and_clear();
    if let Some(path) = &cli.plot {
        let mut runs = vec![plot.into_run(
            plot_title(&setup, &report),
            device.world.timeline(),
            f64::from(report.last().baud) / 10.0,
        )];
        if let Some(b) = cli.plot_compare_baud {
            let mut other = setup.clone();
            other.baud = b;
            other.negotiate = None;
            other.idle_erased = false;
            let mut d = Device::new(other.clone());
            d.world.record_timeline(true);
            let mut p = PlotCollector::new();
            let r = d.run(&mut |w, ev| p.on_event(w, &ev));
            runs.push(p.into_run(
                plot_title(&other, &r),
                d.world.timeline(),
                f64::from(r.last().baud) / 10.0,
            ));
        }
        plot_svg(path, &runs).map_err(|e| format!("--plot {}: {e}", path.display()))?;
    }
    if let Some(path) = &cli.flash_out {
        std::fs::write(path, device.flash.image())
            .map_err(|e| format!("--flash-out {}: {e}", path.display()))?;
    }
    let wall = wall.elapsed();
    let n = Numbers::of(&report, image_len, report.last().baud);
    if cli.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&summary_json(cli, &setup, &report, &n, wall, &device))
                .expect("json")
        );
    } else {
        print_summary(&setup, &report, &n, wall);
    }
    Ok(exit_code(&report))
}

fn print_summary(setup: &Setup, report: &Report, n: &Numbers, wall: Duration) {
    let last = report.last();
    let code = exit_code(report);
    println!(
        "{}",
        match code {
            0 => "result: new image verified, activated and booting",
            1 => "result: update failed safely, the old image still boots",
            _ => "result: NO VALID IMAGE WOULD BOOT",
        }
    );
    println!(
        "strategy:        {}",
        last.method.map_or("(none)", method_name)
    );
    println!(
        "attempts:        {} ({} power cycles, {} MCU resets)",
        report.attempts.len(),
        report.power_cycles,
        report.mcu_resets
    );
    for (i, a) in report.attempts.iter().enumerate() {
        if let Err(e) = &a.result {
            println!("  attempt {}:     {e}", i + 1);
        }
    }
    println!(
        "bytes:           {} (last attempt moved {}, resumed from {})",
        n.bytes,
        n.moved,
        last.resumed_from.unwrap_or(0)
    );
    println!(
        "virtual time:    {:.3} s in total",
        report.virtual_time.as_secs_f64()
    );
    match (n.transfer, n.transfer_pct()) {
        (Some(t), Some(p)) => println!(
            "transfer:        {:.3} s from Started to Verifying of the last attempt: {:.0} B/s = {p:.1} % of the line rate ({} baud / 10 = {:.0} B/s)",
            t.as_secs_f64(),
            f64::from(n.moved) / t.as_secs_f64(),
            report.last().baud,
            n.line_rate
        ),
        _ => println!("transfer:        (did not complete)"),
    }
    if let (Some((t, b)), Some(p)) = (n.payload, n.payload_pct()) {
        println!(
            "payload:         {:.3} s from the first to the last byte written ({b} bytes): {p:.1} % of the line rate",
            t.as_secs_f64()
        );
    }
    println!(
        "flash:           {:.3} s busy (interrupts off), {} erases, {} writes",
        report.flash.busy.as_secs_f64(),
        report.flash.erases,
        report.flash.writes
    );
    println!(
        "UART bytes lost: {} ({})",
        report.uart_lost,
        match setup.rx_dma {
            Some(n) =>
                format!("128-byte FIFO + {n}-byte DMA ring, filling during flash operations"),
            None => "128-byte FIFO + 1 KiB interrupt-driven ring".to_string(),
        }
    );
    match report.installed() {
        Some(Outcome::Installed { sha256, .. }) => {
            println!("SHA-256:         {} (verified from flash)", hex(sha256))
        }
        Some(Outcome::UpToDate) => println!("SHA-256:         (already running the new image)"),
        None => println!("SHA-256:         (not installed)"),
    }
    println!(
        "boots:           {} ({:?} image): {}",
        match report.boot.target {
            Some(cellular_ota_sim::BootTarget::Ota(s)) => format!("ota_{s}"),
            Some(t) => format!("{t:?}"),
            None => "nothing".into(),
        },
        report.booted,
        report.boot.reason
    );
    if report.uart_lost > 0 {
        let bytes_lost = report
            .error()
            .is_some_and(|e| matches!(e.failure, Failure::BytesLost { .. }));
        println!(
            "note:            {} bytes arrived while the MCU's UART buffers were full: flash \
             operations run with interrupts off, a 4 KiB sector erase takes 45 ms, and \
             without RTS/CTS the modem keeps sending into the 128-byte FIFO.{} Use \
             --flow-control on, or --strategy auto (erases ahead, writes page-sized pieces).",
            report.uart_lost,
            if bytes_lost {
                " The update flow noticed (BytesLost) and activated nothing."
            } else {
                ""
            }
        );
    }
    println!("wall time:       {:.2} s", wall.as_secs_f64());
}

/// One row of the measurement table.
struct Row {
    label: &'static str,
    strategy: StrategyArg,
    range: &'static str,
    /// UART DMA ring in bytes (0: interrupt-driven).
    rx_dma: usize,
    /// The slot was erased in idle time before the run.
    idle_erased: bool,
}

/// The DMA ring of the table's DMA rows: room for what arrives at 921 600 baud during the
/// longest flash stall of an update, a 150 ms block erase followed by the journal's 45 ms
/// sector erase: 195 ms × 92 160 B/s ≈ 18 KB (a 16 KiB ring loses bytes there).
const TABLE_DMA_RING: usize = 24 * 1024;

fn run_table(cli: &Cli) -> Result<u8, String> {
    let row = |label, strategy, range, rx_dma| Row {
        label,
        strategy,
        range,
        rx_dma,
        idle_erased: false,
    };
    let idle = |label, strategy, range| Row {
        label,
        strategy,
        range,
        rx_dma: 0,
        idle_erased: true,
    };
    let rows = [
        idle(
            "auto, slot erased in idle time",
            StrategyArg::Auto,
            "524288",
        ),
        idle(
            "ranged (direct, 512 KiB), slot erased in idle time",
            StrategyArg::Ranged,
            "524288",
        ),
        idle(
            "stream, slot erased in idle time",
            StrategyArg::Stream,
            "524288",
        ),
        row("stream", StrategyArg::Stream, "524288", 0),
        row("auto", StrategyArg::Auto, "524288", 0),
        row("ranged (direct, 512 KiB)", StrategyArg::Ranged, "524288", 0),
        row("ranged (direct, 64 KiB)", StrategyArg::Ranged, "65536", 0),
        row("ranged (buffered, 4 KiB)", StrategyArg::Ranged, "none", 0),
        row("modem-file", StrategyArg::ModemFile, "524288", 0),
        row(
            "stream, UART DMA 24 KiB",
            StrategyArg::Stream,
            "524288",
            TABLE_DMA_RING,
        ),
        row(
            "auto, UART DMA 24 KiB",
            StrategyArg::Auto,
            "524288",
            TABLE_DMA_RING,
        ),
        row(
            "ranged (direct, 512 KiB), UART DMA 24 KiB",
            StrategyArg::Ranged,
            "524288",
            TABLE_DMA_RING,
        ),
        row(
            "ranged (direct, 64 KiB), UART DMA 24 KiB",
            StrategyArg::Ranged,
            "65536",
            TABLE_DMA_RING,
        ),
    ];
    if !cli.json {
        println!(
            "| strategy | method | modem | baud | RTS/CTS | result | transfer s | % line rate | payload % | UART bytes lost | flash busy s | virtual s |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    }
    let mut worst = 0;
    for row in &rows {
        for baud in [115_200u32, 460_800, 921_600] {
            for flow in [OnOff::On, OnOff::Off] {
                let mut one = Cli::parse_from(["simulated_ota"]);
                one.size = cli.size;
                one.baud = Some(baud);
                one.flow_control = flow;
                one.strategy = row.strategy;
                one.range_size = row.range.to_string();
                one.rx_dma = row.rx_dma;
                one.no_idle_erase = !row.idle_erased;
                one.modem = cli.modem;
                one.faults = cli.faults.clone();
                one.attempts = 1;
                one.seed = cli.seed;
                // A module whose UFS cannot hold the image cannot use modem-file: EG06.
                let len = cellular_ota_sim::test_app_len(cli.size) as u64;
                if row.strategy == StrategyArg::ModemFile
                    && personality(cli.modem).ufs_total() < len
                {
                    one.modem = Modem::Eg06;
                }
                let setup = make_setup(&one)?;
                let wall = Instant::now();
                let mut device = Device::new(setup.clone());
                let report = device.run(&mut |_, _| {});
                let n = Numbers::of(&report, device.served.len(), baud);
                worst = worst.max(exit_code(&report));
                let result = match report.error() {
                    None => "ok".to_string(),
                    Some(e) => match &e.failure {
                        Failure::BytesLost { .. } => "BytesLost".into(),
                        Failure::NoSpace { .. } => "NoSpace".into(),
                        _ => format!("failed at {}", e.stage),
                    },
                };
                if cli.json {
                    let mut v = summary_json(&one, &setup, &report, &n, wall.elapsed(), &device);
                    v["row"] = json!(row.label);
                    println!("{v}");
                } else {
                    let f = |x: Option<f64>, d: usize| {
                        x.map_or("–".to_string(), |x| format!("{x:.d$}"))
                    };
                    println!(
                        "| {} | {} | {:?} | {baud} | {} | {result} | {} | {} | {} | {} | {:.1} | {:.1} |",
                        row.label,
                        report.last().method.map_or("–", method_name),
                        setup.personality,
                        if flow == OnOff::On { "on" } else { "off" },
                        f(n.transfer.map(|t| t.as_secs_f64()), 2),
                        f(n.transfer_pct(), 1),
                        f(n.payload_pct(), 1),
                        report.uart_lost,
                        report.flash.busy.as_secs_f64(),
                        report.virtual_time.as_secs_f64(),
                    );
                }
            }
        }
    }
    if !cli.json {
        println!(
            "\nimage {} bytes (ESP32-S3 app image, signed manifest), 1 attempt each; line rate = baud / 10 bytes/s; transfer = Started → Verifying of the attempt, payload = first → last byte written.",
            cellular_ota_sim::test_app_len(cli.size)
        );
    }
    // A failed row is a measurement, not a failure of the table; only an unbootable device is.
    Ok(if worst == 2 { 2 } else { 0 })
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let usage = e.use_stderr();
            let _ = e.print();
            return ExitCode::from(if usage { 64 } else { 0 });
        }
    };
    let r = if cli.table {
        run_table(&cli)
    } else {
        run_one(&cli)
    };
    match r {
        Ok(code) => ExitCode::from(code),
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::from(64)
        }
    }
}
