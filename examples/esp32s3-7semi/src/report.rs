//! What the binaries print: URCs, progress, and every error with its stage, code and
//! meaning. Everything goes to the console through esp-println.

use core::fmt::{self, Debug, Display};

use cellular_ota::client::{Error as ClientError, Rejection, UrcHandler};
use cellular_ota::quectel::error::describe;
use cellular_ota::quectel::urc::Urc;
use cellular_ota::update::{Failure, Outcome, Progress, UpdateError};
use esp_println::println;

/// Bytes from the modem shown as text: printable ASCII as is, anything else as `\xNN`.
pub struct Printable<'a>(pub &'a [u8]);

impl Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.0 {
            if (0x20..0x7f).contains(&b) {
                fmt::Write::write_char(f, b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

/// The URC handler of every client here: prints each unsolicited line and remembers whether
/// the modem announced a reboot (`RDY`) since [`UrcLog::take_reboot`] was last called.
#[derive(Debug, Default)]
pub struct UrcLog {
    rebooted: bool,
}

impl UrcLog {
    /// True if `RDY` arrived since the last call.
    pub fn take_reboot(&mut self) -> bool {
        core::mem::take(&mut self.rebooted)
    }
}

impl UrcHandler for UrcLog {
    fn on_urc(&mut self, line: &[u8]) {
        if line.trim_ascii().is_empty() {
            return;
        }
        match Urc::parse(line) {
            Some(Ok(Urc::Ready)) => {
                self.rebooted = true;
                println!("modem: RDY (the modem booted)");
            }
            Some(Ok(_)) => println!("modem: {}", Printable(line)),
            Some(Err(e)) => println!("modem: {} (malformed: {e})", Printable(line)),
            None => println!("modem: {} (unsolicited)", Printable(line)),
        }
    }
}

/// The modem's numeric `+CME ERROR` code in a client error, if it sent one.
pub fn modem_code<E>(e: &ClientError<E>) -> Option<u16> {
    match e {
        ClientError::Rejected(Rejection::Cme(code)) => code.code(),
        _ => None,
    }
}

/// Prints a failed AT exchange: what was being done, the error, and the code's meaning.
pub fn client_error<E: Debug>(doing: &str, e: &ClientError<E>) {
    match modem_code(e) {
        Some(code) => println!("{doing} failed: {e} -- code {code}: {}", describe(code)),
        None => println!("{doing} failed: {e}"),
    }
}

/// Prints a failed update: the stage, the modem's or server's code and its meaning, how much
/// of the image is already in flash (a retry resumes there), and the whole error.
pub fn update_error(e: &UpdateError) {
    println!("UPDATE FAILED");
    println!("  stage:   {}", e.stage);
    match (e.code(), e.meaning()) {
        (Some(code), Some(meaning)) => println!("  code:    {code} ({meaning})"),
        (Some(code), None) => println!("  code:    {code}"),
        (None, _) => println!("  code:    none"),
    }
    println!("  durable: {} bytes (a retry resumes there)", e.bytes_done);
    match &e.failure {
        Failure::Sink(s) => println!("  detail:  flash/image: {s}"),
        _ => println!("  detail:  {e}"),
    }
}

/// Prints the end of a successful update.
pub fn outcome(o: &Outcome) {
    match o {
        Outcome::UpToDate => println!("up to date: the manifest offers the running version"),
        Outcome::Installed {
            method,
            size,
            sha256,
            resumed_from,
        } => {
            println!("INSTALLED {size} bytes with {method:?} (resumed from byte {resumed_from})");
            println!("  sha256 {}", Hex(sha256));
            println!("  the new image runs after the reset");
        }
    }
}

/// Lower-case hex.
pub struct Hex<'a>(pub &'a [u8]);

impl Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Prints [`Progress`] events; byte counts only every 5 %, so the console does not slow the
/// transfer down.
#[derive(Debug, Default)]
pub struct ProgressLog {
    next_pct: u32,
}

impl ProgressLog {
    /// Prints one event.
    pub fn on(&mut self, p: Progress) {
        match p {
            Progress::Manifest { size } => println!("manifest accepted: image of {size} bytes"),
            Progress::Strategy { method, reason } => println!("method: {method:?} ({reason})"),
            Progress::Started {
                total,
                resumed_from,
            } => {
                println!("downloading {total} bytes, starting at {resumed_from}");
                self.next_pct = 0;
            }
            Progress::Bytes { done, total } => {
                let pct = (u64::from(done) * 100 / u64::from(total.max(1))) as u32;
                if pct >= self.next_pct {
                    println!("  {pct:3} %  {done}/{total} bytes");
                    self.next_pct = (pct / 5 + 1) * 5;
                }
            }
            Progress::Fallback { to, reason } => println!("switching to {to:?}: {reason}"),
            Progress::Verifying => println!("verifying the SHA-256 of what was written"),
            Progress::Activating => {
                println!("checking the image in flash and selecting it for the next boot")
            }
        }
    }
}
