//! The simulated Quectel modem: AT framing, boot, the command set the crate uses, URCs,
//! HTTP over the [network model](crate::network), the UFS file system and FOTA.
//!
//! # Framing
//!
//! * Echo is on after boot (`ATE0`/`ATE1`); the echo is the raw command line, ending with
//!   CR only, sent byte by byte as the bytes arrive.
//! * Every information line and final result is framed `\r\n<text>\r\n`; consecutive
//!   information lines share one frame (`\r\nA\r\nB\r\n\r\nOK\r\n`), as in the fixtures.
//! * Errors follow `AT+CMEE` (factory default 1): 0 → `ERROR`, 1 → `+CME ERROR: <n>`,
//!   2 → `+CME ERROR: <text>`. Unknown commands and syntax errors are always `ERROR`.
//! * Commands chain with `;` (`AT+QIDEACT=1;+QIACT=1`).
//! * The modem answers after [`ModemConfig::command_latency`] (longer for `AT+QIACT`,
//!   `AT+QIDEACT`, `AT+CFUN`); bytes that arrive meanwhile wait in its input buffer.
//! * Before `RDY` (booting) and during a FOTA upgrade the modem ignores input.
//!
//! # URCs
//!
//! Random URCs (`+QIND: "csq",<rssi>,99`, `+CEREG: ...` when enabled, `+QIND: "act","LTE"`)
//! arrive as a Poisson process of [`ModemConfig::urc_rate_per_min`], only at legal points:
//! never inside a payload, never inside a command's answer, never while the host is typing a
//! command. With probability [`ModemConfig::urc_between_ok_and_result`] one is also slipped
//! between a command's `OK` and its result URC (`+QHTTPGET:`, `+QHTTPREAD:`, ...). `csq`
//! indications are **on by default** in the simulator (so a host sees URCs unless it turns
//! them off with `AT+QINDCFG="csq",0`, as §1.1 recommends); `+CEREG` URCs need
//! `AT+CEREG=1|2`. URCs go to the main UART only while `AT+QURCCFG="urcport"` is `"uart1"`
//! (the default here); routed elsewhere they never arrive, as on real hardware.

mod at;
mod file;
mod fota;
mod general;
mod http;
mod personality;
pub mod simcom;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use cellular_ota::transcript::Direction;

pub use fota::{FotaFileStats, fota_package, fota_package_with_result};
pub use personality::Personality;

use crate::network::NetworkConfig;
use crate::uart::{Mark, NetWindow};
use crate::world::{Scope, State, Timer, World, duration_ns};
use at::{CmdError, CmdResult, Reply};

/// How the modem is at time zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ModemStart {
    /// Powered on at time zero: `RDY` and the boot URCs follow after
    /// [`ModemConfig::boot_time`].
    #[default]
    Booting,
    /// Already booted and registered, echo on, no URCs pending (for tests that do not care
    /// about the boot).
    Ready,
    /// Powered off until [`SimModem::power_on`].
    Off,
}

/// Timing of `AT+QFOTADL` in virtual time (§8.2, §9).
#[derive(Clone, Debug)]
pub struct FotaTiming {
    /// From `OK` to `HTTPSTART`.
    pub start_delay: Duration,
    /// Each reboot of the upgrade (until `RDY`). EG18: about 30 s.
    pub reboot_time: Duration,
    /// The upgrade stage from `START` to `END`. EG18: about 8 min.
    pub upgrade_time: Duration,
}

impl Default for FotaTiming {
    fn default() -> Self {
        FotaTiming {
            start_delay: Duration::from_secs(1),
            reboot_time: Duration::from_secs(30),
            upgrade_time: Duration::from_secs(8 * 60),
        }
    }
}

/// The module's receive side for a firmware package the host streams
/// (`AT+QFOTADL="FILE:<len>"`, ASR only; see the `fota` model in the [module docs](self)).
#[derive(Clone, Debug)]
pub struct FotaFileConfig {
    /// Receive buffer in bytes between the UART and the package store. Assumed 4 KiB (no
    /// source gives it; "a few KiB" is typical of a module's UART driver buffer).
    pub rx_buffer: usize,
    /// Rate at which the module moves the buffer into its package store, in bytes/s:
    /// 15 000, the NOR-flash figure of the one summary that describes `FILE:` (§11.5,
    /// unverified).
    pub flash_bytes_per_sec: u64,
    /// Silence after which an incomplete transfer ends with `"FILEEND",500` (assumed 5 s,
    /// the default data gap of `AT+QFUPL`, §9).
    pub silence: Duration,
    /// From the `OK` to `+QIND: "FOTA","FILESTART"` (assumed 10 ms).
    pub start_delay: Duration,
}

impl Default for FotaFileConfig {
    fn default() -> Self {
        FotaFileConfig {
            rx_buffer: 4096,
            flash_bytes_per_sec: 15_000,
            silence: Duration::from_secs(5),
            start_delay: Duration::from_millis(10),
        }
    }
}

/// Settings of the simulated modem. Start from [`ModemConfig::new`] and adjust fields.
#[derive(Clone, Debug)]
pub struct ModemConfig {
    /// Which module to be.
    pub personality: Personality,
    /// State at time zero.
    pub start: ModemStart,
    /// Power-on to `RDY`. EG800K measured 7.8–30.2 s (§2.1); default 8 s.
    pub boot_time: Duration,
    /// `RDY` to network registration (assumed 2 s).
    pub registration_delay: Duration,
    /// The registration state reached (`<stat>`: 1 home, 5 roaming, 3 denied ...).
    pub registration_stat: u8,
    /// Signal strength reported by `AT+CSQ` (0–31; §2.2 example 23).
    pub rssi: u8,
    /// Whether a SIM is inserted and ready.
    pub sim_ready: bool,
    /// The SIM's PIN, if it asks for one at every power-on (`+CPIN: SIM PIN` until
    /// `AT+CPIN="<pin>"`; registration waits for it). Three wrong tries block the SIM
    /// (`+CPIN: SIM PUK`, for good).
    pub sim_pin: Option<String>,
    /// The EMM cause reported with `AT+CEREG=3` (and `AT+CREG=3`) while registration is
    /// denied (`registration_stat` 3), as `<cause_type>` 0 (3GPP).
    pub reject_cause: Option<u16>,
    /// The URC port saved in the module (`AT+QURCCFG="urcport"` survives reboots). The
    /// simulated host is on `"uart1"`; a module shipped or last used with `"usbat"` sends
    /// its URCs, including `+QHTTPGET:` and `+QIND: "FOTA"`, where the host never sees
    /// them. Default `"uart1"`, the factory setting assumed for a module on a UART (the
    /// reference gives no factory value).
    pub urc_port: String,
    /// The baud rate saved in the module, at which it boots: 115 200 from the factory
    /// (quectel-at.md §1), another rate only after `AT+IPR=<rate>;&W`. The host UART starts
    /// at [`UartConfig::baud`](crate::UartConfig::baud); while the two differ every byte
    /// arrives garbled.
    pub baud: u32,
    /// `AT+QCCID`.
    pub iccid: String,
    /// `AT+GSN`.
    pub imei: String,
    /// Firmware revision instead of the personality's factory one.
    pub revision: Option<String>,
    /// UFS size instead of the personality's.
    pub ufs_total: Option<u64>,
    /// Command processing time before the answer (assumed 2 ms).
    pub command_latency: Duration,
    /// `AT+QIACT` processing time (assumed 800 ms; the allowed maximum is 150 s, §3).
    pub pdp_activate_time: Duration,
    /// Random URCs per minute of virtual time (0 = none).
    pub urc_rate_per_min: f64,
    /// Probability of a random URC between an `OK` and its result URC.
    pub urc_between_ok_and_result: f64,
    /// The module's receive buffer for an HTTP body it forwards with `AT+QHTTPREAD`, in
    /// bytes: a host that reads slower than the network delivers fills it, and then the
    /// server is held by the TCP window instead of the module buffering the whole body.
    /// Assumed 32 KiB (no source gives it; a typical TCP receive window of a module's IP
    /// stack); 0 = unbounded (the module takes the whole body at the network's pace).
    pub tcp_window: usize,
    /// UFS write speed for `AT+QHTTPREADFILE` in bytes/s (assumed 50 kB/s: a 20 KB body
    /// then takes 0.4 s, close to the ~0.5 s reported for a Cat.1 module, §4.7).
    pub ufs_write_bytes_per_sec: u64,
    /// The cellular link.
    pub network: NetworkConfig,
    /// Host names the modem can resolve, each to an address **and port** (there is no real
    /// DNS in the simulation; the URL's port is replaced, like a hosts entry plus a port
    /// forward, so `http://example.com/fw.bin` can reach a [`TestServer`](crate::TestServer)
    /// on an ephemeral port).
    pub hosts: Vec<(String, SocketAddr)>,
    /// FOTA timing.
    pub fota: FotaTiming,
    /// The receive side of a package the host streams (`AT+QFOTADL="FILE:<len>"`).
    pub fota_file: FotaFileConfig,
}

impl Default for ModemConfig {
    fn default() -> Self {
        ModemConfig::new(Personality::default())
    }
}

impl ModemConfig {
    /// Defaults for `personality`, booting at time zero.
    pub fn new(personality: Personality) -> Self {
        ModemConfig {
            personality,
            start: ModemStart::Booting,
            boot_time: Duration::from_secs(8),
            registration_delay: Duration::from_secs(2),
            registration_stat: 1,
            rssi: 23,
            sim_ready: true,
            sim_pin: None,
            reject_cause: None,
            urc_port: "uart1".into(),
            baud: 115_200,
            iccid: "89860012345678901234".into(),
            imei: "866123456789012".into(),
            revision: None,
            ufs_total: None,
            command_latency: Duration::from_millis(2),
            pdp_activate_time: Duration::from_millis(800),
            urc_rate_per_min: 4.0,
            urc_between_ok_and_result: 0.25,
            tcp_window: 32 * 1024,
            ufs_write_bytes_per_sec: 50_000,
            network: NetworkConfig::default(),
            hosts: Vec::new(),
            fota: FotaTiming::default(),
            fota_file: FotaFileConfig::default(),
        }
    }

    /// The same settings, but already booted and registered at time zero.
    pub fn ready(mut self) -> Self {
        self.start = ModemStart::Ready;
        self
    }

    /// The same settings without random URCs.
    pub fn quiet(mut self) -> Self {
        self.urc_rate_per_min = 0.0;
        self.urc_between_ok_and_result = 0.0;
        self
    }

    /// The same settings with a host name that resolves to `addr` (address and port).
    pub fn with_host(mut self, name: &str, addr: SocketAddr) -> Self {
        self.hosts.push((name.to_string(), addr));
        self
    }
}

/// What the modem is doing with incoming bytes.
#[derive(Debug)]
pub(crate) enum Mode {
    /// Reading a command line.
    Command,
    /// Executing a command; input waits.
    Busy,
    /// Receiving a data payload after `CONNECT`.
    DataIn(DataIn),
    /// Receiving a firmware package after `AT+QFOTADL="FILE:<len>"` (the state is in the
    /// FOTA job).
    FotaFile,
    /// Input is ignored (FOTA upgrade stage, shutting down).
    Ignoring,
}

/// What a data-mode input is for.
#[derive(Debug, Clone)]
pub(crate) enum DataKind {
    HttpUrl,
    HttpHeader {
        rsp: u16,
    },
    Upload {
        drive: file::Drive,
        name: String,
        ack: bool,
    },
    Write {
        handle: u32,
    },
}

#[derive(Debug)]
pub(crate) struct DataIn {
    kind: DataKind,
    expected: usize,
    buf: Vec<u8>,
    id: u64,
    last: u64,
    /// Longest gap between bytes, or the whole input's deadline.
    gap: Option<u64>,
    deadline: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Power {
    Off,
    Booting,
    On,
}

/// What a fault does at a payload offset.
#[derive(Clone, Debug)]
pub(crate) enum PayloadFaultKind {
    Loss(u64),
    Corrupt(u8),
    Stall(u64),
    Reboot,
    McuReset,
}

#[derive(Clone, Debug)]
pub(crate) struct PayloadFault {
    pub(crate) at: u64,
    pub(crate) kind: PayloadFaultKind,
}

/// One-shot faults the modem consults.
#[derive(Clone, Debug, Default)]
pub(crate) struct ModemFaults {
    pub(crate) get_error: Option<u16>,
    pub(crate) get_cme: Option<u16>,
    pub(crate) read_error: Option<u16>,
    pub(crate) read_cme: Option<u16>,
    pub(crate) readfile_error: Option<u16>,
    pub(crate) cme: Vec<(String, u16)>,
    pub(crate) payload: Vec<PayloadFault>,
    /// `baud-reset`: `AT+IPR` at this rate or faster restarts the modem.
    pub(crate) baud_reset: Option<u32>,
}

/// Settings kept across reboots (`AT&W`).
#[derive(Clone, Copy, Debug)]
struct Saved {
    ifc: (u8, u8),
    ipr: u32,
}

#[derive(Clone, Debug)]
pub(crate) struct Pdp {
    pub(crate) kind: u8,
    pub(crate) apn: String,
    pub(crate) user: String,
    pub(crate) password: String,
    pub(crate) auth: u8,
    pub(crate) active: bool,
    pub(crate) ip: String,
}

impl Pdp {
    fn new() -> Self {
        Pdp {
            kind: 1,
            apn: String::new(),
            user: String::new(),
            password: String::new(),
            auth: 0,
            active: false,
            ip: String::new(),
        }
    }
}

/// The modem's whole state.
pub(crate) struct Modem {
    pub(crate) cfg: ModemConfig,
    pub(crate) power: Power,
    pub(crate) mode: Mode,
    line: Vec<u8>,
    line_overflow: bool,
    pending_input: VecDeque<u8>,
    executing: Option<Vec<u8>>,
    data_seq: u64,
    pub(crate) echo: bool,
    pub(crate) cmee: u8,
    pub(crate) ifc: (u8, u8),
    pub(crate) ipr: u32,
    saved: Saved,
    pub(crate) cfun: u8,
    /// URC modes of `+CREG`, `+CGREG`, `+CEREG`.
    pub(crate) reg_n: [u8; 3],
    pub(crate) reg_stat: u8,
    pub(crate) indications: BTreeMap<String, bool>,
    pub(crate) urc_port: String,
    /// The SIM's lock: `true` while it waits for its PIN.
    pub(crate) pin_locked: bool,
    /// Wrong PINs left before the SIM blocks (0: blocked, PUK required).
    pub(crate) pin_tries: u8,
    pub(crate) pdp: BTreeMap<u8, Pdp>,
    pub(crate) ip_error: u16,
    pub(crate) http: http::Http,
    pub(crate) ssl: BTreeMap<(String, u8), String>,
    pub(crate) qcfg: BTreeMap<String, String>,
    pub(crate) fs: file::Fs,
    pub(crate) fota: Option<fota::FotaJob>,
    /// The last package received with `AT+QFOTADL="FILE:<len>"` (kept across reboots, for
    /// tests).
    pub(crate) fota_file: Option<fota::FileRecord>,
    pub(crate) revision: String,
    pub(crate) faults: ModemFaults,
    pub(crate) payload_offset: u64,
    pub(crate) commands: Vec<String>,
    pub(crate) fetches: Vec<String>,
    pub(crate) boots: u32,
    pub(crate) urcs_dropped: u64,
    /// The SIMCom personalities' HTTP / SH state.
    pub(crate) simcom: simcom::SimcomState,
    /// SIM7070's FOTA flag (`AT+CFOTA?`), kept across reboots.
    pub(crate) cfota_status: Option<u8>,
}

const MAX_LINE: usize = 2048;

impl Modem {
    pub(crate) fn new(cfg: ModemConfig) -> Self {
        let revision = cfg
            .revision
            .clone()
            .unwrap_or_else(|| cfg.personality.revision().to_string());
        let ufs_total = cfg.ufs_total.unwrap_or(cfg.personality.ufs_total());
        let mut pdp = BTreeMap::new();
        pdp.insert(1, Pdp::new());
        Modem {
            power: Power::Off,
            mode: Mode::Command,
            line: Vec::new(),
            line_overflow: false,
            pending_input: VecDeque::new(),
            executing: None,
            data_seq: 0,
            echo: true,
            cmee: 1,
            ifc: (0, 0),
            ipr: 0,
            saved: Saved {
                ifc: (0, 0),
                ipr: 0,
            },
            cfun: 1,
            reg_n: [0; 3],
            reg_stat: 0,
            indications: default_indications(cfg.personality),
            urc_port: cfg.urc_port.to_ascii_lowercase(),
            pin_locked: cfg.sim_pin.is_some(),
            pin_tries: 3,
            pdp,
            ip_error: 0,
            http: http::Http::default(),
            ssl: BTreeMap::new(),
            qcfg: BTreeMap::new(),
            fs: file::Fs::new(ufs_total),
            fota: None,
            fota_file: None,
            revision,
            faults: ModemFaults::default(),
            payload_offset: 0,
            commands: Vec::new(),
            fetches: Vec::new(),
            boots: 0,
            urcs_dropped: 0,
            simcom: simcom::SimcomState::default(),
            cfota_status: None,
            cfg,
        }
    }

    /// Whether registered for data (home or roaming).
    pub(crate) fn registered(&self) -> bool {
        matches!(self.reg_stat, 1 | 5)
    }

    fn reset_volatile(&mut self) {
        self.mode = Mode::Command;
        self.line.clear();
        self.line_overflow = false;
        self.pending_input.clear();
        self.executing = None;
        self.echo = true;
        self.cmee = 1;
        self.ifc = self.saved.ifc;
        self.ipr = self.saved.ipr;
        self.cfun = 1;
        self.reg_n = [0; 3];
        self.reg_stat = 0;
        self.indications = default_indications(self.cfg.personality);
        self.http = http::Http::default();
        self.simcom = simcom::SimcomState::default();
        self.ssl.clear();
        for p in self.pdp.values_mut() {
            p.active = false;
        }
        self.fs.handles.clear();
        // A SIM with a PIN asks for it again at every power-on (a blocked one stays blocked).
        self.pin_locked = self.cfg.sim_pin.is_some();
    }

    /// Whether the SIM is inserted and unlocked (registration can proceed).
    pub(crate) fn sim_usable(&self) -> bool {
        self.cfg.sim_ready && !self.pin_locked
    }
}

fn default_indications(p: Personality) -> BTreeMap<String, bool> {
    let mut m = BTreeMap::new();
    // SIMCom modules report no signal quality unasked (`AT+AUTOCSQ` is off by default).
    m.insert("csq".to_string(), p.simcom().is_none());
    m.insert("act".to_string(), false);
    m
}

/// Granularity of the network pacing of a forwarded payload, in bytes.
pub(crate) const PACE: usize = 512;

/// Offsets of the boot URCs after `RDY`, in milliseconds (assumed).
const BOOT_URC_OFFSETS_MS: [u64; 6] = [0, 100, 400, 450, 2000, 3000];

/// Verbose text for `AT+CMEE=2`: the meanings of quectel-at.md §5.
pub(crate) fn cme_text(code: u16) -> &'static str {
    match code {
        3 => "operation not allowed",
        4 => "operation not supported",
        10 => "SIM not inserted",
        12 => "SIM PUK required",
        16 => "incorrect password",
        30 => "no network service",
        400 => "invalid input value",
        401 => "larger than the size of the file",
        402 => "read zero byte",
        403 => "drive full",
        405 => "file not found",
        406 => "invalid file name",
        // EG800K's spelling, as captured (§1 quirk).
        407 => "file already exist",
        409 => "fail to write the file",
        410 => "fail to open the file",
        411 => "fail to read the file",
        413 => "reach the max number of file allowed to be opened",
        414 => "the file read-only",
        416 => "invalid file descriptor",
        420 => "no space",
        421 => "time out",
        423 => "file too large",
        425 => "invalid parameter",
        426 => "file already opened",
        561 => "open PDP context failed",
        572 => "operation not allowed",
        701 => "HTTP(S) unknown error",
        702 => "HTTP(S) timeout",
        703 => "HTTP(S) busy",
        704 => "HTTP(S) UART busy",
        705 => "HTTP(S) no GET/POST/PUT request",
        706 => "HTTP(S) network busy",
        707 => "HTTP(S) network open failed",
        708 => "HTTP(S) network not configured",
        709 => "HTTP(S) network deactivated",
        710 => "HTTP(S) network error",
        711 => "HTTP(S) URL error",
        712 => "HTTP(S) empty URL",
        713 => "HTTP(S) IP address error",
        714 => "HTTP(S) DNS error",
        715 => "HTTP(S) socket create error",
        716 => "HTTP(S) socket connect error",
        717 => "HTTP(S) socket read error",
        718 => "HTTP(S) socket write error",
        719 => "HTTP(S) socket closed",
        720 => "HTTP(S) data encode error",
        721 => "HTTP(S) data decode error",
        722 => "HTTP(S) read timeout",
        723 => "HTTP(S) response failed",
        724 => "incoming call busy",
        725 => "voice call busy",
        726 => "input timeout",
        727 => "wait data timeout",
        728 => "wait HTTP(S) response timeout",
        729 => "memory allocation failed",
        730 => "invalid parameter",
        _ => "unknown error",
    }
}

/// TCP/IP error text for `AT+QIGETERROR` (§5.5).
pub(crate) fn ip_error_text(code: u16) -> &'static str {
    match code {
        0 => "operation successful",
        550 => "unknown error",
        552 => "invalid parameters",
        561 => "open PDP context failed",
        562 => "close PDP context failed",
        570 => "PDP context broken down",
        572 => "operation not allowed",
        _ => "unknown error",
    }
}

impl State {
    /// Puts the modem into its configured start state.
    pub(crate) fn modem_start(&mut self) {
        let baud = self.modem.cfg.baud;
        self.link.modem_baud = baud;
        self.modem.saved.ipr = baud;
        self.modem.ipr = baud;
        match self.modem.cfg.start {
            ModemStart::Booting => self.modem_reboot(),
            ModemStart::Ready => {
                self.modem.power = Power::On;
                self.modem.boots = 1;
                if self.modem.sim_usable() {
                    self.modem.reg_stat = self.modem.cfg.registration_stat;
                }
            }
            ModemStart::Off => self.modem.power = Power::Off,
        }
        if self.modem.cfg.urc_rate_per_min > 0.0 {
            self.schedule_random_urc();
        }
    }

    fn schedule_random_urc(&mut self) {
        let mean = 60e9 / self.modem.cfg.urc_rate_per_min;
        let d = self.rng.exp_interval(mean);
        self.schedule(d, Scope::World, Timer::RandomUrc);
    }

    /// Reboots the modem: output in flight is lost, volatile settings return to their
    /// defaults, HTTP state, PDP contexts, open files and a running FOTA are forgotten, and
    /// `RDY` plus the boot URCs follow after the boot time.
    pub(crate) fn modem_reboot(&mut self) {
        self.epochs.modem += 1;
        self.epochs.http += 1;
        self.epochs.fota += 1;
        self.modem.fota = None;
        self.link.clear_modem_output();
        self.modem.reset_volatile();
        self.link.modem_obeys_rts = self.modem.ifc.0 == 2;
        self.link.modem_baud = self.modem.ipr;
        self.modem.power = Power::Booting;
        let boot = duration_ns(self.modem.cfg.boot_time);
        self.schedule(boot, Scope::Modem, Timer::BootUrc(0));
    }

    /// Powers the modem off (no output, input ignored) until [`SimModem::power_on`].
    pub(crate) fn modem_power_off(&mut self) {
        self.epochs.modem += 1;
        self.epochs.http += 1;
        self.epochs.fota += 1;
        self.modem.fota = None;
        self.link.clear_modem_output();
        self.modem.reset_volatile();
        self.modem.power = Power::Off;
    }

    // -----------------------------------------------------------------------------------
    // Output
    // -----------------------------------------------------------------------------------

    /// Queues raw modem output.
    pub(crate) fn emit(&mut self, bytes: &[u8]) {
        if self.modem.power == Power::Off || bytes.is_empty() {
            return;
        }
        self.transcript.record(Direction::FromModem, bytes);
        self.link_push(bytes);
    }

    /// Information lines in one frame (`\r\nA\r\nB\r\n`).
    pub(crate) fn emit_lines(&mut self, lines: &[String]) {
        if lines.is_empty() {
            return;
        }
        let mut v = b"\r\n".to_vec();
        for l in lines {
            v.extend_from_slice(l.as_bytes());
            v.extend_from_slice(b"\r\n");
        }
        self.emit(&v);
    }

    pub(crate) fn emit_ok(&mut self) {
        self.emit(b"\r\nOK\r\n");
    }

    pub(crate) fn emit_error(&mut self, e: CmdError) {
        let text = match (e, self.modem.cmee) {
            (CmdError::Error, _) | (CmdError::Cme(_), 0) => "ERROR".to_string(),
            (CmdError::Cme(n), 1) => format!("+CME ERROR: {n}"),
            (CmdError::Cme(n), _) => format!("+CME ERROR: {}", cme_text(n)),
        };
        self.emit(format!("\r\n{text}\r\n").as_bytes());
    }

    /// A command's outcome: lines + `OK`, or the error.
    pub(crate) fn emit_result(&mut self, r: CmdResult) {
        match r {
            Ok(Reply::Lines(lines)) => {
                self.emit_lines(&lines);
                self.emit_ok();
            }
            Ok(Reply::Handled) => {}
            Err(e) => self.emit_error(e),
        }
    }

    /// A URC line (dropped when URCs are routed to another port).
    pub(crate) fn emit_urc(&mut self, text: &str) {
        if !self.modem.urc_port.eq_ignore_ascii_case("uart1") {
            self.modem.urcs_dropped += 1;
            return;
        }
        self.emit(format!("\r\n{text}\r\n").as_bytes());
    }

    /// With the configured probability, a random URC (between an `OK` and a result URC).
    pub(crate) fn maybe_interleave_urc(&mut self) {
        let p = self.modem.cfg.urc_between_ok_and_result;
        if self.rng.chance(p)
            && let Some(u) = self.random_urc_text()
        {
            self.emit_urc(&u);
        }
    }

    fn random_urc_text(&mut self) -> Option<String> {
        let mut kinds: Vec<u8> = Vec::new();
        if self.modem.indications.get("csq").copied().unwrap_or(false) {
            kinds.push(0);
        }
        if self.modem.reg_n[2] > 0 && self.modem.registered() {
            kinds.push(1);
        }
        if self.modem.indications.get("act").copied().unwrap_or(false) {
            kinds.push(2);
        }
        if kinds.is_empty() {
            return None;
        }
        let k = kinds[self.rng.below(kinds.len() as u64) as usize];
        Some(match k {
            0 => {
                let base = i64::from(self.modem.cfg.rssi.min(31));
                let rssi = (base + self.rng.below(5) as i64 - 2).clamp(0, 31);
                format!("+QIND: \"csq\",{rssi},99")
            }
            1 => self.reg_urc(2),
            _ => "+QIND: \"act\",\"LTE\"".to_string(),
        })
    }

    /// Payload bytes of a data-mode answer, with the payload faults applied.
    pub(crate) fn emit_payload(&mut self, data: &[u8]) {
        self.emit_payload_paced(data, &|_| 0, None);
    }

    /// [`emit_payload`](Self::emit_payload) for bytes that arrive from the network while
    /// they are forwarded: `arrived(i)` is the virtual time (ns) by which byte `i` of `data`
    /// is in the module; the transmitter does not start a block of [`PACE`] bytes before its
    /// last byte has arrived. With `window` the module's receive buffer is bounded: a block
    /// also waits until the server could send it ([`NetWindow`]).
    pub(crate) fn emit_payload_paced(
        &mut self,
        data: &[u8],
        arrived: &dyn Fn(u64) -> u64,
        window: Option<NetWindow>,
    ) {
        let start = self.modem.payload_offset;
        let end = start + data.len() as u64;
        self.modem.payload_offset = end;
        let mut hits: Vec<PayloadFault> = Vec::new();
        self.modem.faults.payload.retain(|f| {
            if f.at >= start && f.at < end {
                hits.push(f.clone());
                false
            } else {
                true
            }
        });
        hits.sort_by_key(|f| f.at);
        let base = self.link_end_pos();
        let now = self.now;
        let mut out = Vec::with_capacity(data.len());
        let mut marks = Vec::new();
        let mut skip = 0u64;
        let mut hit = hits.iter().peekable();
        let windowed = window.is_some();
        if let Some(w) = window {
            marks.push((base, Mark::NetStart(w)));
        }
        for (i, &b) in data.iter().enumerate() {
            if i % PACE == 0 {
                let last = (i + PACE).min(data.len()) - 1;
                let t = arrived(last as u64);
                if windowed {
                    marks.push((base + out.len() as u64, Mark::NetBlock(t)));
                } else if t > now {
                    marks.push((base + out.len() as u64, Mark::NotBefore(t)));
                }
            }
            let off = start + i as u64;
            let mut xor = 0u8;
            while let Some(f) = hit.next_if(|f| f.at == off) {
                match f.kind {
                    PayloadFaultKind::Loss(n) => skip += n,
                    PayloadFaultKind::Corrupt(x) => xor ^= x,
                    PayloadFaultKind::Stall(ns) => {
                        marks.push((base + out.len() as u64, Mark::Stall(ns)))
                    }
                    PayloadFaultKind::Reboot => marks.push((base + out.len() as u64, Mark::Reboot)),
                    PayloadFaultKind::McuReset => {
                        marks.push((base + out.len() as u64, Mark::McuReset))
                    }
                }
            }
            if skip > 0 {
                skip -= 1;
                continue;
            }
            out.push(b ^ xor);
        }
        self.link_insert_marks(marks);
        if out.is_empty() {
            self.tx_kick();
        }
        self.emit(&out);
    }

    // -----------------------------------------------------------------------------------
    // Input
    // -----------------------------------------------------------------------------------

    /// A byte from the host arrived.
    pub(crate) fn modem_rx(&mut self, b: u8) {
        if self.modem.power != Power::On {
            return;
        }
        match self.modem.mode {
            Mode::Ignoring => {}
            Mode::Busy => self.modem.pending_input.push_back(b),
            Mode::DataIn(_) => self.data_byte(b),
            Mode::FotaFile => self.fota_file_byte(b),
            Mode::Command => self.command_byte(b),
        }
    }

    fn command_byte(&mut self, b: u8) {
        if b == b'\n' {
            return;
        }
        if self.modem.echo {
            self.transcript_echo(b);
        }
        match b {
            b'\r' => {
                let line = std::mem::take(&mut self.modem.line);
                let overflow = std::mem::replace(&mut self.modem.line_overflow, false);
                if overflow {
                    self.emit_error(CmdError::Error);
                    return;
                }
                if line.iter().all(|c| c.is_ascii_whitespace()) {
                    return;
                }
                let latency = self.latency_for(&line);
                self.modem.executing = Some(line);
                self.modem.mode = Mode::Busy;
                self.schedule(latency, Scope::Modem, Timer::Execute);
            }
            0x08 => {
                self.modem.line.pop();
            }
            _ => {
                if self.modem.line.len() < MAX_LINE {
                    self.modem.line.push(b);
                } else {
                    self.modem.line_overflow = true;
                }
            }
        }
    }

    fn transcript_echo(&mut self, b: u8) {
        self.transcript.record_echo(b);
        self.link_push(&[b]);
    }

    fn latency_for(&self, line: &[u8]) -> u64 {
        let text = String::from_utf8_lossy(line).to_ascii_uppercase();
        let cfg = &self.modem.cfg;
        let d = if text.contains("+QIACT=") || text.contains("+CGACT=1") {
            cfg.pdp_activate_time
        } else if text.contains("+QIDEACT=") || text.contains("+CGACT=0") {
            Duration::from_millis(300)
        } else if text.contains("+CFUN=") {
            Duration::from_millis(200)
        } else {
            cfg.command_latency
        };
        duration_ns(d)
    }

    /// Enters data mode for `expected` host bytes.
    pub(crate) fn start_data_in(
        &mut self,
        kind: DataKind,
        expected: usize,
        gap: Option<Duration>,
        total: Option<Duration>,
    ) {
        self.modem.data_seq += 1;
        let id = self.modem.data_seq;
        let now = self.now;
        let gap = gap.map(duration_ns);
        let deadline = total.map(|d| now.saturating_add(duration_ns(d)));
        self.modem.mode = Mode::DataIn(DataIn {
            kind,
            expected,
            buf: Vec::with_capacity(expected.min(1 << 20)),
            id,
            last: now,
            gap,
            deadline,
        });
        self.schedule_input_check();
    }

    fn schedule_input_check(&mut self) {
        if let Mode::DataIn(d) = &self.modem.mode {
            let mut at = u64::MAX;
            if let Some(g) = d.gap {
                at = at.min(d.last.saturating_add(g));
            }
            if let Some(dl) = d.deadline {
                at = at.min(dl);
            }
            if at != u64::MAX {
                let id = d.id;
                self.schedule_at(at, Scope::Modem, Timer::InputTimeout(id));
            }
        }
    }

    fn data_byte(&mut self, b: u8) {
        let now = self.now;
        let Mode::DataIn(d) = &mut self.modem.mode else {
            return;
        };
        d.buf.push(b);
        d.last = now;
        let n = d.buf.len();
        let ack = matches!(d.kind, DataKind::Upload { ack: true, .. }) && n % 1024 == 0;
        let done = n >= d.expected;
        if ack {
            self.emit(b"A");
        }
        if done {
            let Mode::DataIn(d) = std::mem::replace(&mut self.modem.mode, Mode::Command) else {
                return;
            };
            self.data_complete(d.kind, d.buf, false);
            self.drain_pending_input();
        }
    }

    fn input_timeout(&mut self, id: u64) {
        let now = self.now;
        let Mode::DataIn(d) = &self.modem.mode else {
            return;
        };
        if d.id != id {
            return;
        }
        let gap_over = d.gap.is_some_and(|g| now >= d.last.saturating_add(g));
        let deadline_over = d.deadline.is_some_and(|t| now >= t);
        if !gap_over && !deadline_over {
            self.schedule_input_check();
            return;
        }
        let Mode::DataIn(d) = std::mem::replace(&mut self.modem.mode, Mode::Command) else {
            return;
        };
        self.data_complete(d.kind, d.buf, true);
        self.drain_pending_input();
    }

    fn data_complete(&mut self, kind: DataKind, data: Vec<u8>, timed_out: bool) {
        match kind {
            DataKind::HttpUrl => {
                let r = if timed_out {
                    Err(CmdError::Cme(726))
                } else {
                    self.http_url_done(data)
                };
                self.emit_result(r);
            }
            DataKind::HttpHeader { rsp } => {
                let r = if timed_out {
                    Err(CmdError::Cme(726))
                } else {
                    self.http_header_done(rsp, &data)
                };
                self.emit_result(r);
            }
            DataKind::Upload { drive, name, .. } => self.upload_done(drive, name, data, timed_out),
            DataKind::Write { handle } => self.write_done(handle, data, timed_out),
        }
    }

    fn drain_pending_input(&mut self) {
        while matches!(
            self.modem.mode,
            Mode::Command | Mode::DataIn(_) | Mode::FotaFile
        ) {
            let Some(b) = self.modem.pending_input.pop_front() else {
                break;
            };
            self.modem_rx(b);
        }
    }

    // -----------------------------------------------------------------------------------
    // Timers
    // -----------------------------------------------------------------------------------

    pub(crate) fn modem_timer(&mut self, t: Timer) {
        match t {
            Timer::Execute => self.execute(),
            Timer::BootUrc(i) => self.boot_urc(i),
            Timer::Registered => self.registered_now(),
            Timer::RandomUrc => {
                let legal = self.modem.power == Power::On
                    && matches!(self.modem.mode, Mode::Command)
                    && self.modem.line.is_empty()
                    && self.modem.executing.is_none()
                    && self.link.host_tx.is_empty()
                    && self.link.rx.is_none();
                if legal && let Some(u) = self.random_urc_text() {
                    self.emit_urc(&u);
                }
                self.schedule_random_urc();
            }
            Timer::Emit(bytes) => self.emit(&bytes),
            Timer::HttpResult => self.http_result(),
            Timer::SimcomResult => self.simcom_result(),
            Timer::ReadFileDone => self.readfile_done(),
            Timer::InputTimeout(id) => self.input_timeout(id),
            Timer::Fota => self.fota_step(),
            Timer::FotaFileCheck => self.fota_file_check(),
            Timer::PdpDeact(cid) => self.pdp_deactivated_by_network(cid),
            Timer::PowerOff => self.modem_power_off(),
            Timer::McuReset => self.mcu_reset(),
        }
    }

    fn boot_urc(&mut self, i: usize) {
        let urcs = self.modem.cfg.personality.boot_urcs();
        if i == 0 {
            self.modem.power = Power::On;
            self.modem.boots += 1;
            if self.modem.sim_usable() {
                self.set_reg_stat(2);
                let d = duration_ns(self.modem.cfg.registration_delay);
                self.schedule(d, Scope::Modem, Timer::Registered);
            }
        }
        if let Some(u) = urcs.get(i) {
            if *u == "+CPIN: READY" && !self.modem.cfg.sim_ready {
                self.emit_urc("+CPIN: NOT INSERTED");
            } else if *u == "+CPIN: READY" && self.modem.pin_locked {
                let state = if self.modem.pin_tries == 0 {
                    "+CPIN: SIM PUK"
                } else {
                    "+CPIN: SIM PIN"
                };
                self.emit_urc(state);
            } else {
                self.emit_urc(u);
            }
        }
        if i + 1 < urcs.len() {
            let now_off = BOOT_URC_OFFSETS_MS.get(i).copied().unwrap_or(0);
            let next_off = BOOT_URC_OFFSETS_MS
                .get(i + 1)
                .copied()
                .unwrap_or(now_off + 100);
            let d = next_off.saturating_sub(now_off) * 1_000_000;
            self.schedule(d, Scope::Modem, Timer::BootUrc(i + 1));
        }
    }

    fn execute(&mut self) {
        let Some(line) = self.modem.executing.take() else {
            return;
        };
        self.modem.mode = Mode::Command;
        let text = String::from_utf8_lossy(&line).trim().to_string();
        self.modem.commands.push(text.clone());
        let starts_at = text.get(..2).is_some_and(|h| h.eq_ignore_ascii_case("AT"));
        let parts = if starts_at {
            at::split_chain(&text)
        } else {
            None
        };
        let Some(parts) = parts else {
            self.emit_error(CmdError::Error);
            self.drain_pending_input();
            return;
        };
        let count = parts.len();
        let mut outcome: CmdResult = Ok(Reply::ok());
        for (i, part) in parts.into_iter().enumerate() {
            let r = at::parse_command(part).and_then(|c| self.dispatch(&c));
            match r {
                Ok(Reply::Lines(lines)) => {
                    self.emit_lines(&lines);
                    outcome = Ok(Reply::ok());
                }
                Ok(Reply::Handled) => {
                    outcome = Ok(Reply::Handled);
                    if i + 1 < count {
                        // Data mode or a delayed answer ends the chain.
                        break;
                    }
                }
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        self.emit_result(outcome);
        self.drain_pending_input();
    }

    fn dispatch(&mut self, c: &at::Command) -> CmdResult {
        // A `cme=<command>,<code>` fault refuses the next matching command.
        let upper = c.text.to_ascii_uppercase();
        if let Some(i) = self.modem.faults.cme.iter().position(|(p, _)| {
            let p = p.to_ascii_uppercase();
            let p = p.strip_prefix("AT").unwrap_or(&p).to_string();
            upper.starts_with(&p)
        }) {
            let (_, code) = self.modem.faults.cme.remove(i);
            return Err(CmdError::Cme(code));
        }
        if self.modem.cfg.personality.simcom().is_some() {
            if let Some(r) = self.cmd_simcom(c) {
                return r;
            }
            return self.cmd_general(c).unwrap_or(Err(CmdError::Error));
        }
        if let Some(r) = self.cmd_general(c) {
            return r;
        }
        if let Some(r) = self.cmd_http(c) {
            return r;
        }
        if let Some(r) = self.cmd_file(c) {
            return r;
        }
        if let Some(r) = self.cmd_fota(c) {
            return r;
        }
        Err(CmdError::Error)
    }
}

/// A handle on the simulated modem, for tests: inspect its state and act on it out of band
/// (as the network or the board would).
#[derive(Clone, Debug)]
pub struct SimModem {
    pub(crate) world: World,
}

impl SimModem {
    /// The personality.
    pub fn personality(&self) -> Personality {
        self.world.0.borrow().modem.cfg.personality
    }

    /// The current firmware revision (`AT+GMR`); changes after a successful FOTA.
    pub fn revision(&self) -> String {
        self.world.0.borrow().modem.revision.clone()
    }

    /// Whether the modem has booted (`RDY` sent) and accepts commands.
    pub fn is_ready(&self) -> bool {
        self.world.0.borrow().modem.power == Power::On
    }

    /// How many times the modem has booted.
    pub fn boots(&self) -> u32 {
        self.world.0.borrow().modem.boots
    }

    /// Reboots the modem now (as a RESET pulse would).
    pub fn reboot(&self) {
        self.world.0.borrow_mut().modem_reboot();
    }

    /// Cuts the modem's power.
    pub fn power_off(&self) {
        self.world.0.borrow_mut().modem_power_off();
    }

    /// Powers the modem on (it boots).
    pub fn power_on(&self) {
        let mut s = self.world.0.borrow_mut();
        if s.modem.power == Power::Off {
            s.modem_reboot();
        }
    }

    /// Whether `AT+IFC` has the modem obey RTS.
    pub fn flow_control(&self) -> (u8, u8) {
        self.world.0.borrow().modem.ifc
    }

    /// The modem's current baud rate.
    pub fn baud(&self) -> u32 {
        self.world.0.borrow().link.modem_baud
    }

    /// Every command line the modem executed, in order.
    pub fn commands(&self) -> Vec<String> {
        self.world.0.borrow().modem.commands.clone()
    }

    /// Every URL the modem fetched (HTTP GETs and FOTA downloads), in order.
    pub fn fetched_urls(&self) -> Vec<String> {
        self.world.0.borrow().modem.fetches.clone()
    }

    /// Stores a file in the modem's file system (`UFS:name`, `RAM:name` or `name`).
    pub fn put_file(&self, name: &str, data: &[u8]) -> bool {
        let mut s = self.world.0.borrow_mut();
        match file::parse_name(name) {
            Ok((drive, n)) => {
                s.modem.fs.map_mut(drive).insert(n, data.to_vec());
                true
            }
            Err(_) => false,
        }
    }

    /// A file's content.
    pub fn file(&self, name: &str) -> Option<Vec<u8>> {
        let s = self.world.0.borrow();
        let (drive, n) = file::parse_name(name).ok()?;
        s.modem.fs.map(drive).get(&n).cloned()
    }

    /// Names and sizes of the UFS files.
    pub fn files(&self) -> Vec<(String, usize)> {
        let s = self.world.0.borrow();
        s.modem
            .fs
            .map(file::Drive::Ufs)
            .iter()
            .map(|(k, v)| (k.clone(), v.len()))
            .collect()
    }

    /// Whether PDP context `cid` is active.
    pub fn pdp_active(&self, cid: u8) -> bool {
        self.world
            .0
            .borrow()
            .modem
            .pdp
            .get(&cid)
            .is_some_and(|p| p.active)
    }

    /// The network deactivates PDP context `cid` now (`+QIURC: "pdpdeact",<cid>`).
    pub fn deactivate_pdp(&self, cid: u8) {
        self.world.0.borrow_mut().pdp_deactivated_by_network(cid);
    }

    /// Changes the registration state (`<stat>`), with URCs where enabled.
    pub fn set_registration(&self, stat: u8) {
        self.world.0.borrow_mut().set_reg_stat(stat);
    }

    /// Sends an arbitrary URC line now (framed as `\r\n<text>\r\n`).
    pub fn send_urc(&self, text: &str) {
        self.world.0.borrow_mut().emit_urc(text);
    }

    /// Whether a FOTA job is running.
    pub fn fota_running(&self) -> bool {
        self.world.0.borrow().modem.fota.is_some()
    }

    /// The package bytes the module stored from the last `AT+QFOTADL="FILE:<len>"` transfer
    /// (during a transfer: what it has so far, including bytes still in its receive
    /// buffer), or `None` if there was none.
    pub fn fota_file(&self) -> Option<Vec<u8>> {
        self.world
            .0
            .borrow()
            .modem
            .fota_file
            .as_ref()
            .map(|r| r.data.clone())
    }

    /// Counters of the last `AT+QFOTADL="FILE:<len>"` transfer.
    pub fn fota_file_stats(&self) -> Option<FotaFileStats> {
        self.world
            .0
            .borrow()
            .modem
            .fota_file
            .as_ref()
            .map(|r| r.stats)
    }

    /// URCs dropped because `AT+QURCCFG="urcport"` routes them to another port.
    pub fn urcs_dropped(&self) -> u64 {
        self.world.0.borrow().modem.urcs_dropped
    }

    /// Where the module sends URCs now (`AT+QURCCFG="urcport"`, lower case).
    pub fn urc_port(&self) -> String {
        self.world.0.borrow().modem.urc_port.clone()
    }

    /// Whether a `AT+QINDCFG` group (`"csq"`, `"act"` ...) is reported now.
    pub fn indication(&self, kind: &str) -> bool {
        let w = self.world.0.borrow();
        w.modem.indications.get(kind).copied().unwrap_or(false)
    }

    /// Wrong PINs the SIM still accepts before it blocks (3 when unlocked).
    pub fn pin_tries(&self) -> u8 {
        self.world.0.borrow().modem.pin_tries
    }
}
