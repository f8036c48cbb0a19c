//! The serial port as the crate's clients see it: `embedded_io::{Read, Write, ReadReady}`
//! over `serialport`, a transcript of every byte, and optional re-opening of a port that
//! disappears (a USB modem re-enumerating while it reboots).

use std::fs::File;
use std::io::{self, Write as _};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cellular_ota::transcript::{Direction, encode_line};
use embedded_io::ErrorKind;
use serialport::SerialPort;

use crate::common::say;

/// Read/write timeout of the OS port. Reads only happen once bytes are waiting, so this
/// only bounds a write the port cannot take.
const IO_TIMEOUT: Duration = Duration::from_millis(50);
/// Longest a write may stay blocked (by flow control) before it is an error.
const WRITE_STALL: Duration = Duration::from_secs(2);
/// How often a lost port is re-opened.
const REOPEN_EVERY: Duration = Duration::from_secs(1);
/// How often an idle port checks that its device node is still the one it opened.
const CHECK_EVERY: Duration = Duration::from_millis(250);
/// Pause when nothing is waiting, so the blocking client's wait loop does not spin a core.
const IDLE_PAUSE: Duration = Duration::from_millis(1);

/// True while the port is lost. The blocking client's pauses between retries spin on the
/// clock alone (nothing reads the port then), so the clock sleeps a little while this is
/// set instead of burning a core.
pub static PORT_LOST: AtomicBool = AtomicBool::new(false);

/// A transport error, with the OS's words.
pub struct PortError {
    kind: ErrorKind,
    msg: String,
}

impl PortError {
    fn new(kind: ErrorKind, msg: impl Into<String>) -> Self {
        PortError {
            kind,
            msg: msg.into(),
        }
    }
}

// Debug is what the crate's error types print (`transport error: {0:?}`): keep it readable.
impl std::fmt::Debug for PortError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::fmt::Display for PortError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for PortError {}

impl embedded_io::Error for PortError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// Why the port could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// No such device node.
    Missing,
    /// Another program holds the port.
    Busy(String),
    /// The user may not open it.
    Permission(String),
    /// Anything else (not a tty, bad baud rate, ...).
    Other(String),
}

/// Appends every byte that crosses the port to a file in the format of
/// `cellular_ota::transcript`, one chunk per line, written as it happens.
pub struct Transcript {
    file: File,
    line: Vec<u8>,
}

impl Transcript {
    /// Creates (truncates) `path` and writes a header comment.
    pub fn create(path: &Path, port: &str, baud: u32) -> io::Result<Self> {
        let mut file = File::create(path)?;
        writeln!(
            file,
            "# serial_ota transcript of {port} at {baud} baud ('->' host to modem, '<-' modem to host)"
        )?;
        Ok(Transcript {
            file,
            line: Vec::new(),
        })
    }

    fn chunk(&mut self, dir: Direction, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.line.resize(bytes.len() * 4 + 4, 0);
        if let Ok(n) = encode_line(dir, bytes, &mut self.line) {
            // A transcript that cannot be written must not stop an update.
            let _ = self.file.write_all(&self.line[..n]);
            let _ = self.file.flush();
        }
    }

    fn comment(&mut self, text: &str) {
        let _ = writeln!(self.file, "# {}", text.replace(['\r', '\n'], " "));
        let _ = self.file.flush();
    }
}

/// Identity of a device node, to notice a port that was replaced by a new one.
#[cfg(unix)]
fn node_id(path: &str) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.rdev(), m.ino()))
}

/// Elsewhere (`COM3` is no file) a vanished port shows up as a failing read or write.
#[cfg(not(unix))]
fn node_id(_path: &str) -> Option<(u64, u64)> {
    Some((0, 0))
}

/// The modem's serial port.
pub struct Port {
    path: String,
    baud: u32,
    rtscts: bool,
    dev: Option<Box<dyn SerialPort>>,
    node: Option<(u64, u64)>,
    reconnect: bool,
    last_try: Instant,
    last_check: Instant,
    lost_since: Option<Instant>,
    log: Option<Transcript>,
    pending_tx: Vec<u8>,
    /// A write happened since the last `read_ready`: the caller is streaming and only looks
    /// at the port between writes, so an empty port is no reason to pause.
    wrote: bool,
}

fn open_device(path: &str, baud: u32, rtscts: bool) -> Result<Box<dyn SerialPort>, OpenError> {
    if cfg!(unix) && !Path::new(path).exists() {
        return Err(OpenError::Missing);
    }
    let flow = if rtscts {
        serialport::FlowControl::Hardware
    } else {
        serialport::FlowControl::None
    };
    serialport::new(path, baud)
        .timeout(IO_TIMEOUT)
        .flow_control(flow)
        .open()
        .map_err(|e| match e.kind() {
            // serialport reports EBUSY and a held lock as NoDevice.
            serialport::ErrorKind::NoDevice => OpenError::Busy(e.description),
            serialport::ErrorKind::Io(io::ErrorKind::NotFound) => OpenError::Missing,
            serialport::ErrorKind::Io(io::ErrorKind::PermissionDenied) => {
                OpenError::Permission(e.description)
            }
            _ if e.description.contains("busy") => OpenError::Busy(e.description),
            _ => OpenError::Other(e.description),
        })
}

impl Port {
    /// Opens `path` at `baud` (8N1; RTS/CTS if `rtscts`).
    pub fn open(path: &str, baud: u32, rtscts: bool) -> Result<Port, OpenError> {
        let dev = open_device(path, baud, rtscts)?;
        let now = Instant::now();
        Ok(Port {
            path: path.to_string(),
            baud,
            rtscts,
            dev: Some(dev),
            node: node_id(path),
            reconnect: false,
            last_try: now,
            last_check: now,
            lost_since: None,
            log: None,
            pending_tx: Vec::new(),
            wrote: false,
        })
    }

    /// Re-open the port when it fails (instead of failing for good).
    pub fn set_reconnect(&mut self, on: bool) {
        self.reconnect = on;
    }

    /// Record every byte to `log`.
    pub fn set_log(&mut self, log: Transcript) {
        self.log = Some(log);
    }

    /// Writes the bytes sent since the last flush as one transcript line.
    fn log_tx(&mut self) {
        if let Some(log) = &mut self.log {
            log.chunk(Direction::ToModem, &self.pending_tx);
        }
        self.pending_tx.clear();
    }

    /// Drops the device after a failure and says so once.
    fn lost(&mut self, why: &str) -> PortError {
        self.log_tx();
        self.dev = None;
        let now = Instant::now();
        if self.lost_since.is_none() {
            self.lost_since = Some(now);
            PORT_LOST.store(self.reconnect, Ordering::Relaxed);
            self.last_try = now;
            let what = if self.reconnect {
                "; waiting for it to come back"
            } else {
                ""
            };
            say(format!("port lost: {} ({why}){what}", self.path));
            if let Some(log) = &mut self.log {
                log.comment(&format!("port lost: {why}"));
            }
        }
        PortError::new(ErrorKind::BrokenPipe, format!("{} lost: {why}", self.path))
    }

    /// The open device; re-opens a lost one at most once per [`REOPEN_EVERY`] when
    /// reconnecting is on.
    fn device(&mut self) -> Result<&mut Box<dyn SerialPort>, PortError> {
        if self.dev.is_none() {
            let path = &self.path;
            let gone = || PortError::new(ErrorKind::NotConnected, format!("{path} is gone"));
            if !self.reconnect || self.last_try.elapsed() < REOPEN_EVERY {
                return Err(gone());
            }
            self.last_try = Instant::now();
            match open_device(&self.path, self.baud, self.rtscts) {
                Ok(dev) => {
                    let away = self.lost_since.take().map(|t| t.elapsed());
                    PORT_LOST.store(false, Ordering::Relaxed);
                    self.dev = Some(dev);
                    self.node = node_id(&self.path);
                    self.last_check = Instant::now();
                    let away = away.map_or(String::new(), |d| {
                        format!(" after {:.1} s", d.as_secs_f64())
                    });
                    say(format!("port back: {}{away}", self.path));
                    if let Some(log) = &mut self.log {
                        log.comment("port back");
                    }
                }
                Err(_) => return Err(gone()),
            }
        }
        self.dev
            .as_mut()
            .ok_or_else(|| PortError::new(ErrorKind::NotConnected, "port not available"))
    }

    /// False if the device node vanished or was replaced (a USB port re-enumerated).
    fn still_there(&mut self) -> bool {
        if self.last_check.elapsed() < CHECK_EVERY {
            return true;
        }
        self.last_check = Instant::now();
        let now = node_id(&self.path);
        now.is_some() && now == self.node
    }
}

impl embedded_io::ErrorType for Port {
    type Error = PortError;
}

impl embedded_io::ReadReady for Port {
    fn read_ready(&mut self) -> Result<bool, PortError> {
        if !self.pending_tx.is_empty() {
            self.log_tx();
        }
        let waiting = self.device()?.bytes_to_read();
        match waiting {
            Ok(n) if n > 0 => Ok(true),
            Ok(_) => {
                if !self.still_there() {
                    return Err(self.lost("the device disappeared"));
                }
                if !std::mem::take(&mut self.wrote) {
                    std::thread::sleep(IDLE_PAUSE);
                }
                Ok(false)
            }
            Err(e) => Err(self.lost(&e.to_string())),
        }
    }
}

impl embedded_io::Read for Port {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, PortError> {
        if buf.is_empty() {
            return Ok(0);
        }
        if !self.pending_tx.is_empty() {
            self.log_tx();
        }
        loop {
            let r = self.device()?.read(buf);
            match r {
                Ok(0) => return Err(self.lost("end of file")),
                Ok(n) => {
                    if let Some(log) = &mut self.log {
                        log.chunk(Direction::FromModem, &buf[..n]);
                    }
                    return Ok(n);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::TimedOut
                            | io::ErrorKind::WouldBlock
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    if !self.still_there() {
                        return Err(self.lost("the device disappeared"));
                    }
                }
                Err(e) => return Err(self.lost(&e.to_string())),
            }
        }
    }
}

impl embedded_io::Write for Port {
    fn write(&mut self, buf: &[u8]) -> Result<usize, PortError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let stall = Instant::now() + WRITE_STALL;
        loop {
            let r = self.device()?.write(buf);
            match r {
                Ok(n) if n > 0 => {
                    self.pending_tx.extend_from_slice(&buf[..n]);
                    self.wrote = true;
                    return Ok(n);
                }
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::TimedOut
                            | io::ErrorKind::WouldBlock
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(self.lost(&e.to_string())),
            }
            if Instant::now() >= stall {
                return Err(PortError::new(
                    ErrorKind::TimedOut,
                    format!(
                        "{} took no byte for {} s (flow control holding it?)",
                        self.path,
                        WRITE_STALL.as_secs()
                    ),
                ));
            }
        }
    }

    fn flush(&mut self) -> Result<(), PortError> {
        // The kernel sends what was written; only the transcript needs the boundary.
        self.log_tx();
        Ok(())
    }
}
