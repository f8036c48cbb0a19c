//! What every subcommand shares: the terminal, the clock, opening and waking the modem,
//! telling its vendor, the network, and error texts with the modem's codes explained.

use std::fmt::Display;
use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;

use cellular_ota::at::{
    AtCommand, Clock, EncodeError, Encoder, Instant, Lines, ParseError, ResponseLines,
};
use cellular_ota::bring_up::{
    BringUpConfig, BringUpError, BringUpEvent, BringUpFailure, DataContext, ModemInfo,
    bring_up_blocking,
};
use cellular_ota::client::blocking::Client;
use cellular_ota::client::{Error as ClientError, ModemCode, Rejection, TimeoutExt, UrcHandler};
use cellular_ota::quectel::bring_up::Quectel;
use cellular_ota::quectel::error::{CmeError, CmsError};
use cellular_ota::quectel::general::UrcPort;
use cellular_ota::quectel::general::{
    Attention, ErrorFormat, GetRegistration, RegKind, RegStatus, Registration, SetEcho,
    SetErrorFormat, SetFlowControl,
};
use cellular_ota::simcom::Family as SimcomFamily;
use cellular_ota::simcom::bring_up::Simcom;
use clap::ValueEnum;
use indicatif::{MultiProgress, ProgressDrawTarget};

use crate::Global;
use crate::port::{OpenError, Port, PortError, Transcript};

/// A failure to report: the message, printed as `error: <message>` with exit code 1.
#[derive(Debug)]
pub struct Fail(pub String);

impl<T: Display> From<T> for Fail {
    fn from(m: T) -> Self {
        Fail(m.to_string())
    }
}

/// Result of a subcommand.
pub type Res<T> = Result<T, Fail>;

/// The client every subcommand uses.
pub type Modem<'b> = Client<'b, Port, StdClock, Urcs>;

/// The progress bars; messages go above them.
pub fn ui() -> &'static MultiProgress {
    static UI: OnceLock<MultiProgress> = OnceLock::new();
    UI.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
}

/// True when stderr is a terminal (the bars are drawn; otherwise progress is printed as
/// lines).
pub fn interactive() -> bool {
    std::io::stderr().is_terminal()
}

/// Prints a status line on stderr, above any progress bar.
pub fn say(msg: impl Display) {
    ui().suspend(|| eprintln!("{msg}"));
}

/// Wall time since the program started, as the crate's clock.
pub struct StdClock(std::time::Instant);

impl StdClock {
    pub fn new() -> Self {
        StdClock(std::time::Instant::now())
    }
}

impl Clock for StdClock {
    fn now(&self) -> Instant {
        if crate::port::PORT_LOST.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(1));
        }
        Instant::from_micros(u64::try_from(self.0.elapsed().as_micros()).unwrap_or(u64::MAX))
    }
}

/// URCs that arrive while commands run: shown with `--verbose`.
pub struct Urcs {
    pub verbose: bool,
}

impl UrcHandler for Urcs {
    fn on_urc(&mut self, line: &[u8]) {
        if self.verbose {
            say(format!("URC {}", String::from_utf8_lossy(line)));
        }
    }
}

/// Opens the port named by `--port`, with the transcript of `--log`.
pub fn open_port(g: &Global) -> Res<Port> {
    let path = g.port.as_str();
    let mut port = Port::open(path, g.baud, g.rtscts).map_err(|e| match e {
        OpenError::Missing => Fail(format!(
            "no such device: {path} — is the modem plugged in? try ls /dev/ttyUSB*"
        )),
        OpenError::Busy(why) => Fail(format!(
            "{path} is busy ({why}): another program (ModemManager, a terminal, another \
             serial_ota) has it open; close it, or stop ModemManager"
        )),
        OpenError::Permission(why) => Fail(format!(
            "permission denied on {path} ({why}): add yourself to the group owning it \
             (usually dialout: sudo usermod -aG dialout $USER, then log in again)"
        )),
        OpenError::Other(why) => Fail(format!("cannot open {path} as a serial port: {why}")),
    })?;
    if let Some(file) = &g.log {
        let t = Transcript::create(file, path, g.baud)
            .map_err(|e| Fail(format!("cannot write the log {}: {e}", file.display())))?;
        port.set_log(t);
    }
    Ok(port)
}

/// How long the modem has to answer `AT` before the port is called wrong.
pub const SYNC_TIME: Duration = Duration::from_secs(5);

/// Waits for `AT` to be answered (up to [`SYNC_TIME`]), then switches echo off and numeric
/// error codes on.
pub fn sync(c: &mut Modem<'_>, g: &Global) -> Res<()> {
    let start = std::time::Instant::now();
    loop {
        match c.send(&Attention.with_timeout(Duration::from_millis(500))) {
            Ok(()) => break,
            Err(ClientError::Io(e)) => {
                return Err(Fail(format!("cannot talk to {}: {e}", g.port)));
            }
            Err(_) if start.elapsed() < SYNC_TIME => c.reset(),
            Err(_) => {
                return Err(Fail(format!(
                    "no answer to AT on {} at {} baud: wrong port (the EC200U exposes several; \
                     the AT port is usually ttyUSB2) or wrong baud?",
                    g.port, g.baud
                )));
            }
        }
    }
    c.send(&SetEcho(false))
        .map_err(|e| Fail(format!("ATE0: {}", client_error(&e))))?;
    c.send(&SetErrorFormat(ErrorFormat::Numeric))
        .map_err(|e| Fail(format!("AT+CMEE=1: {}", client_error(&e))))?;
    if g.rtscts {
        c.send(&SetFlowControl::HARDWARE)
            .map_err(|e| Fail(format!("AT+IFC=2,2: {}", client_error(&e))))?;
    }
    Ok(())
}

/// The modem's maker: it decides the commands of every step (`--vendor`, else
/// [`detect_vendor`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Vendor {
    /// Quectel (EC200U, EC200T, EG06, ...): `AT+Q*`.
    Quectel,
    /// SIMCom (SIM7600, A76xx, SIM7000/7070/7080, SIM800): `AT+HTTP*` or `AT+SH*`.
    Simcom,
}

impl Vendor {
    /// `quectel`, `simcom` (the JSON value and the `--vendor` value).
    pub fn name(self) -> &'static str {
        match self {
            Vendor::Quectel => "quectel",
            Vendor::Simcom => "simcom",
        }
    }
}

/// A SIMCom command set by the name `--simcom-family` and the JSON use (the names of the
/// `explain` example).
pub fn simcom_family_name(f: SimcomFamily) -> &'static str {
    match f {
        SimcomFamily::Sim7600 => "sim7600",
        SimcomFamily::A76xx => "a76xx",
        SimcomFamily::Sh => "sh",
        SimcomFamily::Sim800 => "sim800",
        _ => "unknown",
    }
}

/// `AT+CGMI`: the manufacturer line (`Quectel`, `SIMCOM INCORPORATED`; a `+CGMI:` label is
/// removed where a firmware adds one).
struct Manufacturer;

impl AtCommand for Manufacturer {
    type Response<'a> = String;
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+CGMI")
    }
    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Unprefixed
    }
    fn parse<'a>(&self, lines: Lines<'a>) -> Result<String, ParseError> {
        lines
            .map(|l| {
                let l = l.trim_ascii();
                l.strip_prefix(b"+CGMI:").unwrap_or(l).trim_ascii()
            })
            .find(|l| !l.is_empty())
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .ok_or(ParseError::MissingLine)
    }
}

/// `ATI` as lines: Quectel answers `Quectel` / model / `Revision: ...`, SIMCom
/// `Manufacturer: SIMCOM INCORPORATED` / `Model: ...` (SIM7600, A76xx) or `SIM800 R14.18`.
struct AtiLines;

impl AtCommand for AtiLines {
    type Response<'a> = Vec<String>;
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"ATI")
    }
    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Unprefixed
    }
    fn parse<'a>(&self, lines: Lines<'a>) -> Result<Vec<String>, ParseError> {
        Ok(lines
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect())
    }
}

/// The vendor a manufacturer or identity line names.
fn vendor_in(text: &str) -> Option<Vendor> {
    let t = text.to_ascii_lowercase();
    if t.contains("quectel") {
        Some(Vendor::Quectel)
    } else if t.contains("simcom") {
        Some(Vendor::Simcom)
    } else {
        None
    }
}

/// Who made the modem on the port, and so which commands to use.
#[derive(Debug)]
pub struct Detected {
    /// The vendor: `--vendor`, else the one the modem names.
    pub vendor: Vendor,
    /// `AT+CGMI`'s answer, when the modem gave one.
    pub manufacturer: Option<String>,
}

/// Tells the vendor after [`sync`]: `--vendor` (or `--simcom-family`) when given, else
/// `AT+CGMI` (`Quectel`, `SIMCOM INCORPORATED`), else the lines of `ATI`. A modem that names
/// neither is driven as Quectel, as before SIMCom was supported, with a note on stderr.
pub fn detect_vendor(c: &mut Modem<'_>, g: &Global) -> Res<Detected> {
    let manufacturer = match c.send(&Manufacturer) {
        Ok(m) => Some(m),
        Err(ClientError::Io(e)) => return Err(Fail(format!("cannot talk to {}: {e}", g.port))),
        Err(_) => None,
    };
    if let Some(vendor) = g.vendor {
        return Ok(Detected {
            vendor,
            manufacturer,
        });
    }
    if let Some(vendor) = manufacturer.as_deref().and_then(vendor_in) {
        return Ok(Detected {
            vendor,
            manufacturer,
        });
    }
    let ati = match c.send(&AtiLines) {
        Ok(lines) => lines,
        Err(ClientError::Io(e)) => return Err(Fail(format!("cannot talk to {}: {e}", g.port))),
        Err(_) => Vec::new(),
    };
    let vendor = ati.iter().find_map(|l| vendor_in(l)).unwrap_or_else(|| {
        say(format!(
            "the modem does not say who made it (AT+CGMI: {}); driving it as Quectel \
             (give --vendor simcom for a SIMCom module)",
            manufacturer.as_deref().unwrap_or("no answer")
        ));
        Vendor::Quectel
    });
    Ok(Detected {
        vendor,
        manufacturer,
    })
}

/// A client error with the modem's code explained.
pub fn client_error(e: &ClientError<PortError>) -> String {
    match e {
        ClientError::Rejected(r) => format!("modem answered {}", rejection(r)),
        ClientError::Timeout => "the modem did not answer in time".into(),
        e => e.to_string(),
    }
}

/// `+CME ERROR: 10 (SIM not inserted)` and the like.
pub fn rejection(r: &Rejection) -> String {
    match r {
        Rejection::Cme(ModemCode::Numeric(n)) => {
            format!("+CME ERROR: {n} ({})", CmeError::from_code(*n).meaning())
        }
        Rejection::Cme(ModemCode::Text(t)) => match CmeError::from_text(t.as_bytes()) {
            Some(e) => format!("+CME ERROR: {t} (code {})", e.code()),
            None => format!("+CME ERROR: {t}"),
        },
        Rejection::Cms(ModemCode::Numeric(n)) => {
            format!("+CMS ERROR: {n} ({})", CmsError::from_code(*n).meaning())
        }
        r => r.to_string(),
    }
}

/// Words for a registration state.
pub fn reg_status(s: RegStatus) -> String {
    match s {
        RegStatus::NotSearching => "not registered, not searching".into(),
        RegStatus::Home => "registered, home network".into(),
        RegStatus::Searching => "not registered, searching".into(),
        RegStatus::Denied => "registration denied".into(),
        RegStatus::Unknown => "unknown (out of coverage?)".into(),
        RegStatus::Roaming => "registered, roaming".into(),
        other => format!("state {}", other.code()),
    }
}

/// The registration reports the module answers, LTE first.
pub fn registrations(c: &mut Modem<'_>) -> Vec<(RegKind, Result<Registration, String>)> {
    [RegKind::Cereg, RegKind::Cgreg, RegKind::Creg]
        .into_iter()
        .map(|kind| {
            let r = c
                .send(&GetRegistration { kind })
                .map_err(|e| client_error(&e));
            (kind, r)
        })
        .collect()
}

/// What bring-up found: the modem's details and, on a SIMCom module, its command set.
#[derive(Debug)]
pub struct BroughtUp {
    /// Model, revision, ICCID, the data context's address, ...
    pub info: ModemInfo,
    /// The SIMCom command set (`--simcom-family`, else the module's identity); `None` on a
    /// Quectel module.
    pub simcom: Option<SimcomFamily>,
}

/// The crate's bring-up ([`cellular_ota::bring_up`]) after [`sync`], with `vendor`'s steps:
/// on Quectel URCs routed to this port (`--urc-port`) and chatty URCs off; on SIMCom the
/// command set from the identity (or `--simcom-family`); then the SIM (`--sim-pin`),
/// registration within `registration`, and PDP context `cid` with `--apn` (when `cid` is
/// `Some`). Prints what it changed; a failure names the stage, the modem's code and its
/// meaning.
pub fn bring_up(
    c: &mut Modem<'_>,
    g: &Global,
    vendor: Vendor,
    registration: Duration,
    cid: Option<u8>,
) -> Res<BroughtUp> {
    let (r, simcom) = bring_up_report(c, g, vendor, registration, cid, &mut |_| {});
    let info = r.map_err(|e| Fail(bring_up_error(&e)))?;
    Ok(BroughtUp { info, simcom })
}

/// [`bring_up`], with every event also handed to `on` and the typed error returned, beside
/// the SIMCom command set as far as bring-up got to know it.
pub fn bring_up_report(
    c: &mut Modem<'_>,
    g: &Global,
    vendor: Vendor,
    registration: Duration,
    cid: Option<u8>,
    on: &mut dyn FnMut(&BringUpEvent<'_>),
) -> (
    Result<ModemInfo, BringUpError<PortError>>,
    Option<SimcomFamily>,
) {
    let mut config = BringUpConfig::new(&g.apn);
    config.ready_timeout = SYNC_TIME;
    config.sim_pin = g.sim_pin.as_deref();
    config.registration_timeout = registration;
    config.flow_control = g.rtscts;
    config.data = cid.map(|context_id| DataContext {
        context_id,
        ..DataContext::new(&g.apn)
    });
    let mut told = false;
    let mut progress = |e: BringUpEvent<'_>| {
        on(&e);
        match e {
            BringUpEvent::UrcPortForced { was } => say(format!(
                "URCs went to {was:?}; routed to {:?} (the module saves this; the device \
                 firmware routes them back to its own port)",
                g.urc_port
            )),
            BringUpEvent::PinEntered => say("SIM PIN entered"),
            BringUpEvent::Registration { .. } if !told => {
                say("waiting for network registration...");
                told = true;
            }
            BringUpEvent::DataActivated => say(format!("PDP context activated (APN {:?})", g.apn)),
            _ => {}
        }
    };
    match vendor {
        Vendor::Quectel => {
            let family = Quectel {
                urc_port: UrcPort::from_name(&g.urc_port),
            };
            (bring_up_blocking(c, &family, &config, &mut progress), None)
        }
        Vendor::Simcom => {
            let simcom = match g.simcom_family {
                Some(f) => Simcom::new(f),
                None => Simcom::detect(),
            };
            let r = bring_up_blocking(c, &simcom, &config, &mut progress);
            (r, simcom.family())
        }
    }
}

/// A bring-up failure with the modem's code and its meaning, and what to check.
pub fn bring_up_error(e: &BringUpError<PortError>) -> String {
    let mut m = e.to_string();
    let hint = match &e.failure {
        BringUpFailure::PinRequired | BringUpFailure::PinRejected => {
            "; give the SIM PIN with --sim-pin"
        }
        BringUpFailure::NotRegistered { .. } | BringUpFailure::Denied { .. } => {
            "; check the SIM, the antenna and `probe`"
        }
        BringUpFailure::Data { .. } => "; check --apn",
        _ => "",
    };
    m.push_str(hint);
    m
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
