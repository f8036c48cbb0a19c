//! Firmware updates and diagnostics for a Quectel or SIMCom modem on a host serial port.
//!
//! ```text
//! cargo run --example serial_ota -- --port /dev/ttyUSB2 probe [--json]
//! cargo run --example serial_ota -- --port /dev/ttyUSB2 download URL --out FILE
//!     [--manifest URL --pubkey HEX [--running-version V]] [--validate esp32s3|esp32c3]
//!     [--strategy auto|stream|ranged|modem-file] [--max-size 16M]
//! cargo run --example serial_ota -- --port /dev/ttyUSB2 fota URL [--family auto|qualcomm|asr|unisoc]
//! cargo run --example serial_ota -- --port /dev/ttyS0 [--rtscts] fota --file PACKAGE [--pace 15000]
//! ```
//!
//! Global options: `--baud` (115200), `--apn` (`internet`), `--rtscts` (alias
//! `--flow-control`), `--urc-port` (`usbat`: the port this tool is on, where bring-up
//! routes URCs; `uart1` for the module's main UART), `--sim-pin`, `--log FILE` (a
//! transcript of every byte, in the format `cargo run --example explain FILE` decodes),
//! `-v` (show URCs), `--vendor quectel|simcom` and `--simcom-family
//! sim7600|a76xx|sh|sim800` (both told from the modem when not given). Progress bars go to
//! stderr, results to stdout; any failure prints `error: ...` with the modem's code and its
//! meaning and exits with 1.
//!
//! The vendor comes from `AT+CGMI` (`Quectel`, `SIMCOM INCORPORATED`), else from `ATI`; a
//! modem that names neither is driven as Quectel. On a SIMCom module the crate's SIMCom
//! bring-up (`cellular_ota::simcom::bring_up::Simcom`: the command set from the identity,
//! the data connection that set uses) and its HTTP client (`cellular_ota::simcom::SimcomHttp`)
//! take the place of the Quectel ones; `fota URL` uses `cellular_ota::simcom::fota` there
//! (`fota --file` is Quectel's ASR only).
//!
//! * `probe`: the crate's bring-up (`cellular_ota::bring_up`: URC port, SIM, registration
//!   within `--wait` seconds, PDP context 1 with the APN) and what it found or where it
//!   stopped, then vendor, identity, revision, IMEI, ICCID, SIM, signal, registration,
//!   and on Quectel which HTTP and FOTA commands the firmware accepts (their `=?` test
//!   forms), on SIMCom the command set (`sim7600`, `a76xx`, `sh`, `sim800`) and the commands
//!   it implies.
//! * `download` and `fota URL` bring the modem up the same way first.
//! * `download`: the crate's update flow (`update_blocking`, or `update_with_blocking` over
//!   `SimcomHttp` on SIMCom) into memory, then to a file; optionally checked as an ESP-IDF
//!   app image. An A76xx or `AT+SH*` module holds at most 256 KiB / 32 KiB of one response;
//!   a larger image is fetched in ranges, but without `--manifest` (which gives the size) the
//!   flow first GETs the whole image to learn its size, which such a module may refuse
//!   (`602`, `706`): the error then says to pass `--manifest`.
//! * `fota`: the module's own firmware (`upgrade_modem_blocking`; on a SIMCom A76xx, SIM7000
//!   or SIM7070/80/90 from a URL, `simcom::fota::upgrade_modem_blocking`). A USB port
//!   disappears while the module reboots: the port is re-opened every second until it is
//!   back. With `--file PACKAGE` the tool streams a local package over the AT port instead
//!   (`upgrade_modem_from_host_blocking`, `AT+QFOTADL="FILE:<len>"`, ASR modules): with
//!   `--rtscts` as fast as the module's CTS allows, otherwise at most `--pace` bytes/s
//!   (15000, the documented limit) in `--write-size`-byte writes (32).

mod common;
mod download;
mod fota;
mod port;
mod probe;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

use cellular_ota::simcom::Family as SimcomFamily;

use crate::common::{Res, Vendor, say, ui};

const EXAMPLES: &str = "Examples:
  serial_ota --port /dev/ttyUSB2 probe
  serial_ota --port /dev/ttyUSB2 probe --json      # Quectel or SIMCom, told from AT+CGMI
  serial_ota --port /dev/ttyUSB2 --log modem.log download https://example.com/fw.bin \\
      --out fw.bin --validate esp32s3
  serial_ota --port /dev/ttyUSB2 fota http://example.com/EC200U_delta.bin
  serial_ota --port /dev/ttyS0 --rtscts fota --file EC200T_delta.bin
  cargo run --example explain modem.log

Exit code 1 on any failure, with the stage, the modem's code and its meaning.";

/// Firmware updates over a Quectel or SIMCom cellular modem on a serial port.
#[derive(Debug, Parser)]
#[command(name = "serial_ota", version, after_help = EXAMPLES)]
struct Cli {
    /// The modem's AT port, e.g. /dev/ttyUSB2.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        help_heading = "Modem options"
    )]
    port: Option<String>,
    /// Baud rate (a USB port ignores it).
    #[arg(
        long,
        global = true,
        default_value_t = 115_200,
        value_name = "N",
        help_heading = "Modem options"
    )]
    baud: u32,
    /// APN for the PDP context, configured when the context is down.
    #[arg(
        long,
        global = true,
        default_value = "internet",
        help_heading = "Modem options"
    )]
    apn: String,
    /// RTS/CTS flow control on the port and in the modem (AT+IFC=2,2); say so only if the
    /// lines are wired.
    #[arg(
        long,
        global = true,
        alias = "flow-control",
        help_heading = "Modem options"
    )]
    rtscts: bool,
    /// The module's port this tool is connected to, where URCs must go (bring-up forces
    /// AT+QURCCFG="urcport" to it, and the module saves that): `usbat` for the USB AT port
    /// (/dev/ttyUSB2 on an EC200U), `uart1` for the main UART through a USB-serial adapter.
    #[arg(
        long,
        global = true,
        default_value = "usbat",
        value_name = "PORT",
        help_heading = "Modem options"
    )]
    urc_port: String,
    /// The SIM's PIN, entered once if the SIM asks for it.
    #[arg(
        long,
        global = true,
        value_name = "PIN",
        help_heading = "Modem options"
    )]
    sim_pin: Option<String>,
    /// Write a transcript of every byte both ways to FILE (decode it with the explain
    /// example).
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        help_heading = "Modem options"
    )]
    log: Option<PathBuf>,
    /// Show URCs as they arrive.
    #[arg(short, long, global = true, help_heading = "Modem options")]
    verbose: bool,
    /// The modem's maker; told from AT+CGMI (else ATI) when not given.
    #[arg(long, global = true, value_enum, help_heading = "Modem options")]
    vendor: Option<Vendor>,
    /// A SIMCom module's command set (implies --vendor simcom); told from its identity
    /// (AT+SIMCOMATI, or AT+CGMM and AT+CGMR) when not given.
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "FAMILY",
        help_heading = "Modem options"
    )]
    simcom_family: Option<FamilyArg>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Identify the modem and check what an update needs.
    Probe {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Longest wait for network registration, in seconds.
        #[arg(long, default_value_t = 30, value_name = "SECONDS")]
        wait: u64,
    },
    /// Download an image with the update flow and write it to a file.
    Download(download::DownloadArgs),
    /// Upgrade the module's own firmware (Quectel AT+QFOTADL; SIMCom AT+CFOTA).
    Fota(fota::FotaArgs),
}

/// `--simcom-family`: the SIMCom command sets.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum FamilyArg {
    /// SIM7600E/G/G-H: AT+HTTP*, reads framed `+HTTPREAD: DATA,<n>`.
    Sim7600,
    /// A7670/A7672/A7608, SIM7670/SIM7672: AT+HTTP*, reads framed `+HTTPREAD: <n>`.
    A76xx,
    /// SIM7070/SIM7080/SIM7090, SIM7000 with newer firmware: AT+SH*, AT+CNACT.
    Sh,
    /// SIM800, SIM7000 with early firmware: AT+SAPBR and the SIM800-style AT+HTTP*.
    Sim800,
}

impl From<FamilyArg> for SimcomFamily {
    fn from(f: FamilyArg) -> Self {
        match f {
            FamilyArg::Sim7600 => SimcomFamily::Sim7600,
            FamilyArg::A76xx => SimcomFamily::A76xx,
            FamilyArg::Sh => SimcomFamily::Sh,
            FamilyArg::Sim800 => SimcomFamily::Sim800,
        }
    }
}

/// Options every subcommand uses.
#[derive(Debug)]
pub struct Global {
    pub port: String,
    pub baud: u32,
    pub apn: String,
    pub rtscts: bool,
    pub urc_port: String,
    pub sim_pin: Option<String>,
    pub log: Option<PathBuf>,
    pub verbose: bool,
    /// `--vendor`, or SIMCom for `--simcom-family`; `None`: told from the modem.
    pub vendor: Option<Vendor>,
    pub simcom_family: Option<SimcomFamily>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(port) = cli.port.clone() else {
        Cli::command()
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "the following required argument was not provided: --port <PATH>",
            )
            .exit()
    };
    if cli.vendor == Some(Vendor::Quectel) && cli.simcom_family.is_some() {
        Cli::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "--simcom-family is for SIMCom modules; it cannot be used with --vendor quectel",
            )
            .exit()
    }
    let g = Global {
        port,
        baud: cli.baud,
        apn: cli.apn,
        rtscts: cli.rtscts,
        urc_port: cli.urc_port.clone(),
        sim_pin: cli.sim_pin.clone(),
        log: cli.log,
        verbose: cli.verbose,
        vendor: cli.vendor.or(cli.simcom_family.map(|_| Vendor::Simcom)),
        simcom_family: cli.simcom_family.map(SimcomFamily::from),
    };
    let r: Res<()> = match &cli.command {
        Cmd::Probe { json, wait } => probe::run(&g, *json, std::time::Duration::from_secs(*wait)),
        Cmd::Download(a) => download::run(&g, a),
        Cmd::Fota(a) => fota::run(&g, a),
    };
    let _ = ui().clear();
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say(format!("error: {}", e.0));
            ExitCode::from(1)
        }
    }
}
