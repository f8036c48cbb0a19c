//! What every subcommand shares: the terminal, the clock, opening and waking the modem,
//! the network, and error texts with the modem's codes explained.

use std::fmt::Display;
use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;

use cellular_ota::at::{Clock, Instant};
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

/// The crate's bring-up ([`cellular_ota::bring_up`]) after [`sync`]: URCs routed to this
/// port (`--urc-port`), chatty URCs off, the SIM (`--sim-pin`), registration within
/// `registration`, and PDP context `cid` with `--apn` (when `cid` is `Some`). Prints what it
/// changed; a failure names the stage, the modem's code and its meaning.
pub fn bring_up(
    c: &mut Modem<'_>,
    g: &Global,
    registration: Duration,
    cid: Option<u8>,
) -> Res<ModemInfo> {
    bring_up_report(c, g, registration, cid, &mut |_| {}).map_err(|e| Fail(bring_up_error(&e)))
}

/// [`bring_up`], with every event also handed to `on` and the typed error returned.
pub fn bring_up_report(
    c: &mut Modem<'_>,
    g: &Global,
    registration: Duration,
    cid: Option<u8>,
    on: &mut dyn FnMut(&BringUpEvent<'_>),
) -> Result<ModemInfo, BringUpError<PortError>> {
    let mut config = BringUpConfig::new(&g.apn);
    config.ready_timeout = SYNC_TIME;
    config.sim_pin = g.sim_pin.as_deref();
    config.registration_timeout = registration;
    config.flow_control = g.rtscts;
    config.data = cid.map(|context_id| DataContext {
        context_id,
        ..DataContext::new(&g.apn)
    });
    let family = Quectel {
        urc_port: UrcPort::from_name(&g.urc_port),
    };
    let mut told = false;
    bring_up_blocking(c, &family, &config, &mut |e| {
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
    })
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
