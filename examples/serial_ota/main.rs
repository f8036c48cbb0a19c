//! Firmware updates and diagnostics for a Quectel modem on a host serial port.
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
//! `-v` (show URCs). Progress bars go to stderr, results to stdout; any failure prints
//! `error: ...` with the modem's code and its meaning and exits with 1.
//!
//! * `probe`: the crate's bring-up (`cellular_ota::bring_up`: URC port, SIM, registration
//!   within `--wait` seconds, PDP context 1 with the APN) and what it found or where it
//!   stopped, then identity, revision, IMEI, ICCID, SIM, signal, registration, and which
//!   HTTP and FOTA commands the firmware accepts (their `=?` test forms).
//! * `download` and `fota URL` bring the modem up the same way first.
//! * `download`: the crate's update flow (`update_blocking`) into memory, then to a file;
//!   optionally checked as an ESP-IDF app image.
//! * `fota`: the module's own firmware (`upgrade_modem_blocking`). A USB port disappears
//!   while the module reboots: the port is re-opened every second until it is back. With
//!   `--file PACKAGE` the tool streams a local package over the AT port instead
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

use clap::{CommandFactory, Parser, Subcommand};

use crate::common::{Res, say, ui};

const EXAMPLES: &str = "Examples:
  serial_ota --port /dev/ttyUSB2 probe
  serial_ota --port /dev/ttyUSB2 --log modem.log download https://example.com/fw.bin \\
      --out fw.bin --validate esp32s3
  serial_ota --port /dev/ttyUSB2 fota http://example.com/EC200U_delta.bin
  serial_ota --port /dev/ttyS0 --rtscts fota --file EC200T_delta.bin
  cargo run --example explain modem.log

Exit code 1 on any failure, with the stage, the modem's code and its meaning.";

/// Firmware updates over a Quectel cellular modem on a serial port.
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
    /// Upgrade the module's own firmware (AT+QFOTADL).
    Fota(fota::FotaArgs),
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
    let g = Global {
        port,
        baud: cli.baud,
        apn: cli.apn,
        rtscts: cli.rtscts,
        urc_port: cli.urc_port.clone(),
        sim_pin: cli.sim_pin.clone(),
        log: cli.log,
        verbose: cli.verbose,
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
