//! Faults, selectable by name so that tests can be data-driven.
//!
//! Syntax: `<name>[=<arg>[,<arg>...]][@<path>]` (`@<path>` only for `server-*`: limit the
//! misbehaviour to one path). Offsets count **payload bytes** — bytes the modem sends inside
//! a data-mode answer (`AT+QHTTPREAD`, `AT+QFREAD`, `AT+QFDWL`) — from the moment the fault
//! is injected, across answers; each payload fault fires once. Other one-shot faults apply to
//! the next matching command.
//!
//! | name | arguments | effect |
//! |---|---|---|
//! | `byte-loss` | `<offset>[,<count>]` | the modem drops `count` (1) payload bytes at `offset`: the host receives fewer bytes than announced |
//! | `byte-corrupt` | `<offset>[,<xor>]` | the payload byte at `offset` is XORed with `xor` (0xFF) |
//! | `uart-stall` | `<offset>,<ms>` | the modem's transmitter pauses `ms` at payload `offset` |
//! | `modem-reboot` | `<offset>` | the modem reboots at payload `offset`: the rest of the answer is lost, `RDY` and the boot URCs follow, HTTP/PDP/file state is forgotten |
//! | `mcu-reset` | `<offset>` | the host MCU resets at payload `offset`: its UART buffers are emptied and the [`HostUart`](crate::HostUart) fails until [`World::acknowledge_mcu_reset`](crate::World::acknowledge_mcu_reset) |
//! | `pdp-deact` | `[<ms>[,<cid>]]` | after `ms` (0) the network deactivates context `cid` (1): `+QIURC: "pdpdeact",<cid>`; HTTP then fails with `+CME ERROR: 709` |
//! | `http-get-error` | `<code>` | the next `AT+QHTTPGET`/`AT+QHTTPGETEX` answers `OK`, then `+QHTTPGET: <code>` (SIMCom: the next `+HTTPACTION:` / `+SHREQ:` carries `<code>` in its status field) |
//! | `http-get-cme` | `<code>` | the next `AT+QHTTPGET`/`AT+QHTTPGETEX` is refused with `+CME ERROR: <code>` |
//! | `http-read-error` | `<code>` | the next `AT+QHTTPREAD` delivers the body, then `+QHTTPREAD: <code>` |
//! | `http-read-cme` | `<code>` | the next `AT+QHTTPREAD` is refused with `+CME ERROR: <code>` |
//! | `http-readfile-error` | `<code>` | the next `AT+QHTTPREADFILE` ends with `+QHTTPREADFILE: <code>` |
//! | `cme` | `<command>,<code>` | the next command starting with `<command>` (e.g. `AT+QIACT`) is refused with `+CME ERROR: <code>` |
//! | `power-cut` | `<k>` | flash: `k` more erase/write operations succeed, the next is cut half-way, then every flash operation fails until `SimFlash::restore_power` |
//! | `power-cut-at` | `<addr>[,<k>]` | flash: like `power-cut`, counting only the erase/write operations that touch flash address `addr` (decimal or `0x` hex): the `k+1`-th (default the first) is cut |
//! | `baud-limit` | `<rate>` | the wiring carries at most `rate`: while either end runs faster, one byte in 64 arrives garbled, both ways (short exchanges often pass, long ones do not) |
//! | `baud-reset` | `<rate>` | the modem restarts when `AT+IPR` sets `rate` or faster (after its `OK`), and comes back at its saved rate (reported for the EC200A at 921600) |
//! | `server-404` | | the attached [`TestServer`](crate::TestServer) answers 404 |
//! | `server-500` | | … answers 500 |
//! | `server-ignore-range` | | … ignores `Range` (200, whole file) |
//! | `server-wrong-length` | `<delta>` | … announces `Content-Length` + `delta` |
//! | `server-close-early` | `<n>` | … closes the connection after `n` body bytes (of the file: a ranged request is answered 206 and cut where the file's byte `n` would go) |
//! | `server-slow` | `<ms>` | … answers `ms` (wall clock) late |
//! | `server-redirect` | `<path>` | … redirects (302) to `path` with an absolute `Location` |
//! | `server-redirect-relative` | `<path>` | … redirects with a relative `Location` |
//! | `server-chunked` | | … sends bodies chunked (no `Content-Length`) |
//!
//! HTTP error codes are any of §5.1 (701–730); every one can be injected at the GET-result
//! stage (`http-get-error`) and at the read stage (`http-read-error`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::modem::{PayloadFault, PayloadFaultKind};
use crate::server::Behavior;
use crate::world::{Scope, State, Timer, duration_ns};

/// One fault. Parse with [`str::parse`]; [`Display`](fmt::Display) gives the name back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `byte-loss=<offset>[,<count>]`
    ByteLoss {
        /// Payload offset.
        offset: u64,
        /// Bytes dropped.
        count: u64,
    },
    /// `byte-corrupt=<offset>[,<xor>]`
    ByteCorrupt {
        /// Payload offset.
        offset: u64,
        /// XOR mask.
        xor: u8,
    },
    /// `uart-stall=<offset>,<ms>`
    UartStall {
        /// Payload offset.
        offset: u64,
        /// Pause.
        duration: Duration,
    },
    /// `modem-reboot=<offset>`
    ModemReboot {
        /// Payload offset.
        offset: u64,
    },
    /// `mcu-reset=<offset>`
    McuReset {
        /// Payload offset.
        offset: u64,
    },
    /// `pdp-deact[=<ms>[,<cid>]]`
    PdpDeact {
        /// Delay after injection.
        after: Duration,
        /// The context.
        cid: u8,
    },
    /// `http-get-error=<code>`
    HttpGetError(u16),
    /// `http-get-cme=<code>`
    HttpGetCme(u16),
    /// `http-read-error=<code>`
    HttpReadError(u16),
    /// `http-read-cme=<code>`
    HttpReadCme(u16),
    /// `http-readfile-error=<code>`
    HttpReadFileError(u16),
    /// `cme=<command>,<code>`
    Cme {
        /// Command prefix, e.g. `AT+QIACT`.
        command: String,
        /// The code.
        code: u16,
    },
    /// `power-cut=<k>`
    PowerCut {
        /// Operations that still succeed.
        after_ops: u32,
    },
    /// `power-cut-at=<addr>[,<k>]`
    PowerCutAt {
        /// The flash address.
        addr: u32,
        /// Operations on it that still succeed.
        after_ops: u32,
    },
    /// `baud-limit=<rate>`
    BaudLimit(u32),
    /// `baud-reset=<rate>`
    BaudReset(u32),
    /// `server-*`
    Server {
        /// What the server does.
        behavior: Behavior,
        /// Only for this path (`@<path>`), else for every path.
        path: Option<String>,
    },
}

/// One row of the fault table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultInfo {
    /// The name.
    pub name: &'static str,
    /// Argument syntax.
    pub args: &'static str,
    /// A complete example that parses.
    pub example: &'static str,
    /// What it does.
    pub effect: &'static str,
}

/// Every fault name, with an example (the table in the module docs, as data).
pub const FAULTS: &[FaultInfo] = &[
    FaultInfo {
        name: "byte-loss",
        args: "<offset>[,<count>]",
        example: "byte-loss=1000,3",
        effect: "drop payload bytes",
    },
    FaultInfo {
        name: "byte-corrupt",
        args: "<offset>[,<xor>]",
        example: "byte-corrupt=1000",
        effect: "corrupt a payload byte",
    },
    FaultInfo {
        name: "uart-stall",
        args: "<offset>,<ms>",
        example: "uart-stall=1000,500",
        effect: "pause the modem's transmitter",
    },
    FaultInfo {
        name: "modem-reboot",
        args: "<offset>",
        example: "modem-reboot=1000",
        effect: "reboot the modem mid-payload",
    },
    FaultInfo {
        name: "mcu-reset",
        args: "<offset>",
        example: "mcu-reset=1000",
        effect: "reset the host MCU mid-payload",
    },
    FaultInfo {
        name: "pdp-deact",
        args: "[<ms>[,<cid>]]",
        example: "pdp-deact=0,1",
        effect: "network deactivates a PDP context",
    },
    FaultInfo {
        name: "http-get-error",
        args: "<code>",
        example: "http-get-error=702",
        effect: "GET result URC carries an error",
    },
    FaultInfo {
        name: "http-get-cme",
        args: "<code>",
        example: "http-get-cme=716",
        effect: "GET refused with +CME ERROR",
    },
    FaultInfo {
        name: "http-read-error",
        args: "<code>",
        example: "http-read-error=717",
        effect: "read result URC carries an error",
    },
    FaultInfo {
        name: "http-read-cme",
        args: "<code>",
        example: "http-read-cme=705",
        effect: "read refused with +CME ERROR",
    },
    FaultInfo {
        name: "http-readfile-error",
        args: "<code>",
        example: "http-readfile-error=722",
        effect: "read-to-file result carries an error",
    },
    FaultInfo {
        name: "cme",
        args: "<command>,<code>",
        example: "cme=AT+CSQ,3",
        effect: "refuse the next matching command",
    },
    FaultInfo {
        name: "power-cut",
        args: "<k>",
        example: "power-cut=0",
        effect: "cut flash power at operation k+1",
    },
    FaultInfo {
        name: "power-cut-at",
        args: "<addr>[,<k>]",
        example: "power-cut-at=0xe000,1",
        effect: "cut flash power at the (k+1)-th operation touching addr",
    },
    FaultInfo {
        name: "baud-limit",
        args: "<rate>",
        example: "baud-limit=460800",
        effect: "bytes garble above a baud rate",
    },
    FaultInfo {
        name: "baud-reset",
        args: "<rate>",
        example: "baud-reset=921600",
        effect: "the modem restarts when switched to a rate",
    },
    FaultInfo {
        name: "server-404",
        args: "",
        example: "server-404",
        effect: "server answers 404",
    },
    FaultInfo {
        name: "server-500",
        args: "",
        example: "server-500",
        effect: "server answers 500",
    },
    FaultInfo {
        name: "server-ignore-range",
        args: "",
        example: "server-ignore-range",
        effect: "server ignores Range",
    },
    FaultInfo {
        name: "server-wrong-length",
        args: "<delta>",
        example: "server-wrong-length=-10",
        effect: "server announces a wrong length",
    },
    FaultInfo {
        name: "server-close-early",
        args: "<n>",
        example: "server-close-early=100",
        effect: "server closes after n body bytes",
    },
    FaultInfo {
        name: "server-slow",
        args: "<ms>",
        example: "server-slow=50",
        effect: "server answers late",
    },
    FaultInfo {
        name: "server-redirect",
        args: "<path>",
        example: "server-redirect=/other.bin",
        effect: "302 with absolute Location",
    },
    FaultInfo {
        name: "server-redirect-relative",
        args: "<path>",
        example: "server-redirect-relative=/other.bin",
        effect: "302 with relative Location",
    },
    FaultInfo {
        name: "server-chunked",
        args: "",
        example: "server-chunked",
        effect: "chunked body, no length",
    },
];

/// Why a fault could not be parsed or injected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultError {
    /// No fault has this name.
    UnknownName(String),
    /// The arguments do not fit the name.
    BadArguments(String),
    /// A `server-*` fault was injected into a world without an attached server.
    NoServer,
}

impl fmt::Display for FaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultError::UnknownName(n) => write!(f, "unknown fault `{n}`"),
            FaultError::BadArguments(s) => write!(f, "bad fault arguments in `{s}`"),
            FaultError::NoServer => write!(f, "server fault without an attached server"),
        }
    }
}

impl std::error::Error for FaultError {}

impl FromStr for Fault {
    type Err = FaultError;

    fn from_str(s: &str) -> Result<Fault, FaultError> {
        let s = s.trim();
        let (main, path) = match s.split_once('@') {
            Some((m, p)) => (m, Some(p.to_string())),
            None => (s, None),
        };
        let (name, args) = match main.split_once('=') {
            Some((n, a)) => (n.trim(), a.split(',').map(str::trim).collect::<Vec<_>>()),
            None => (main.trim(), Vec::new()),
        };
        let bad = || FaultError::BadArguments(s.to_string());
        let num = |i: usize| -> Result<u64, FaultError> {
            args.get(i)
                .ok_or_else(bad)?
                .parse::<u64>()
                .map_err(|_| bad())
        };
        let opt = |i: usize, d: u64| -> Result<u64, FaultError> {
            match args.get(i) {
                None => Ok(d),
                Some(&"") => Ok(d),
                Some(a) => a.parse::<u64>().map_err(|_| bad()),
            }
        };
        let code =
            |i: usize| -> Result<u16, FaultError> { u16::try_from(num(i)?).map_err(|_| bad()) };
        let count = |n: usize| if args.len() > n { Err(bad()) } else { Ok(()) };
        if path.is_some() && !name.starts_with("server-") {
            return Err(bad());
        }
        let f = match name {
            "byte-loss" => {
                count(2)?;
                Fault::ByteLoss {
                    offset: num(0)?,
                    count: opt(1, 1)?.max(1),
                }
            }
            "byte-corrupt" => {
                count(2)?;
                let xor = match args.get(1) {
                    None => 0xFF,
                    Some(a) => {
                        let a = a.trim_start_matches("0x");
                        u8::from_str_radix(a, if args[1].starts_with("0x") { 16 } else { 10 })
                            .map_err(|_| bad())?
                    }
                };
                Fault::ByteCorrupt {
                    offset: num(0)?,
                    xor,
                }
            }
            "uart-stall" => {
                count(2)?;
                Fault::UartStall {
                    offset: num(0)?,
                    duration: Duration::from_millis(num(1)?),
                }
            }
            "modem-reboot" => {
                count(1)?;
                Fault::ModemReboot { offset: num(0)? }
            }
            "mcu-reset" => {
                count(1)?;
                Fault::McuReset { offset: num(0)? }
            }
            "pdp-deact" => {
                count(2)?;
                let cid = u8::try_from(opt(1, 1)?).map_err(|_| bad())?;
                if !(1..=16).contains(&cid) {
                    return Err(bad());
                }
                Fault::PdpDeact {
                    after: Duration::from_millis(opt(0, 0)?),
                    cid,
                }
            }
            "http-get-error"
            | "http-get-cme"
            | "http-read-error"
            | "http-read-cme"
            | "http-readfile-error" => {
                count(1)?;
                let c = code(0)?;
                match name {
                    "http-get-error" => Fault::HttpGetError(c),
                    "http-get-cme" => Fault::HttpGetCme(c),
                    "http-read-error" => Fault::HttpReadError(c),
                    "http-read-cme" => Fault::HttpReadCme(c),
                    _ => Fault::HttpReadFileError(c),
                }
            }
            "cme" => {
                count(2)?;
                let command = args
                    .first()
                    .filter(|a| !a.is_empty())
                    .ok_or_else(bad)?
                    .to_string();
                Fault::Cme {
                    command,
                    code: code(1)?,
                }
            }
            "power-cut-at" => {
                count(2)?;
                let text = args.first().copied().ok_or_else(bad)?;
                let addr = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
                    Some(h) => u32::from_str_radix(h, 16).map_err(|_| bad())?,
                    None => text.parse::<u32>().map_err(|_| bad())?,
                };
                Fault::PowerCutAt {
                    addr,
                    after_ops: u32::try_from(opt(1, 0)?).map_err(|_| bad())?,
                }
            }
            "baud-limit" | "baud-reset" => {
                count(1)?;
                let rate = u32::try_from(num(0)?).map_err(|_| bad())?;
                if rate == 0 {
                    return Err(bad());
                }
                if name == "baud-limit" {
                    Fault::BaudLimit(rate)
                } else {
                    Fault::BaudReset(rate)
                }
            }
            "power-cut" => {
                count(1)?;
                Fault::PowerCut {
                    after_ops: u32::try_from(num(0)?).map_err(|_| bad())?,
                }
            }
            "server-404" | "server-500" | "server-ignore-range" | "server-chunked" => {
                count(0)?;
                let behavior = match name {
                    "server-404" => Behavior::NotFound,
                    "server-500" => Behavior::ServerError,
                    "server-ignore-range" => Behavior::IgnoreRange,
                    _ => Behavior::Chunked,
                };
                Fault::Server { behavior, path }
            }
            "server-wrong-length" => {
                count(1)?;
                let d = args
                    .first()
                    .ok_or_else(bad)?
                    .parse::<i64>()
                    .map_err(|_| bad())?;
                Fault::Server {
                    behavior: Behavior::WrongContentLength(d),
                    path,
                }
            }
            "server-close-early" => {
                count(1)?;
                Fault::Server {
                    behavior: Behavior::CloseAfter(num(0)?),
                    path,
                }
            }
            "server-slow" => {
                count(1)?;
                Fault::Server {
                    behavior: Behavior::Slow(Duration::from_millis(num(0)?)),
                    path,
                }
            }
            "server-redirect" | "server-redirect-relative" => {
                count(1)?;
                let to = args
                    .first()
                    .filter(|a| a.starts_with('/'))
                    .ok_or_else(bad)?
                    .to_string();
                let behavior = if name == "server-redirect" {
                    Behavior::Redirect(to)
                } else {
                    Behavior::RedirectRelative(to)
                };
                Fault::Server { behavior, path }
            }
            other => return Err(FaultError::UnknownName(other.to_string())),
        };
        Ok(f)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::ByteLoss { offset, count } => write!(f, "byte-loss={offset},{count}"),
            Fault::ByteCorrupt { offset, xor } => write!(f, "byte-corrupt={offset},0x{xor:02x}"),
            Fault::UartStall { offset, duration } => {
                write!(f, "uart-stall={offset},{}", duration.as_millis())
            }
            Fault::ModemReboot { offset } => write!(f, "modem-reboot={offset}"),
            Fault::McuReset { offset } => write!(f, "mcu-reset={offset}"),
            Fault::PdpDeact { after, cid } => write!(f, "pdp-deact={},{cid}", after.as_millis()),
            Fault::HttpGetError(c) => write!(f, "http-get-error={c}"),
            Fault::HttpGetCme(c) => write!(f, "http-get-cme={c}"),
            Fault::HttpReadError(c) => write!(f, "http-read-error={c}"),
            Fault::HttpReadCme(c) => write!(f, "http-read-cme={c}"),
            Fault::HttpReadFileError(c) => write!(f, "http-readfile-error={c}"),
            Fault::Cme { command, code } => write!(f, "cme={command},{code}"),
            Fault::PowerCut { after_ops } => write!(f, "power-cut={after_ops}"),
            Fault::BaudLimit(r) => write!(f, "baud-limit={r}"),
            Fault::BaudReset(r) => write!(f, "baud-reset={r}"),
            Fault::PowerCutAt { addr, after_ops } => {
                write!(f, "power-cut-at=0x{addr:x},{after_ops}")
            }
            Fault::Server { behavior, path } => {
                match behavior {
                    Behavior::Normal => write!(f, "server-normal")?,
                    Behavior::NotFound => write!(f, "server-404")?,
                    Behavior::ServerError => write!(f, "server-500")?,
                    Behavior::IgnoreRange => write!(f, "server-ignore-range")?,
                    Behavior::WrongContentLength(d) => write!(f, "server-wrong-length={d}")?,
                    Behavior::CloseAfter(n) => write!(f, "server-close-early={n}")?,
                    Behavior::Slow(d) => write!(f, "server-slow={}", d.as_millis())?,
                    Behavior::Redirect(p) => write!(f, "server-redirect={p}")?,
                    Behavior::RedirectRelative(p) => write!(f, "server-redirect-relative={p}")?,
                    Behavior::Chunked => write!(f, "server-chunked")?,
                }
                if let Some(p) = path {
                    write!(f, "@{p}")?;
                }
                Ok(())
            }
        }
    }
}

impl State {
    pub(crate) fn inject(&mut self, fault: Fault) -> Result<(), FaultError> {
        let base = self.modem.payload_offset;
        let payload = |offset: u64, kind| PayloadFault {
            at: base + offset,
            kind,
        };
        let faults = &mut self.modem.faults;
        match fault {
            Fault::ByteLoss { offset, count } => faults
                .payload
                .push(payload(offset, PayloadFaultKind::Loss(count))),
            Fault::ByteCorrupt { offset, xor } => faults
                .payload
                .push(payload(offset, PayloadFaultKind::Corrupt(xor))),
            Fault::UartStall { offset, duration } => faults.payload.push(payload(
                offset,
                PayloadFaultKind::Stall(duration_ns(duration)),
            )),
            Fault::ModemReboot { offset } => faults
                .payload
                .push(payload(offset, PayloadFaultKind::Reboot)),
            Fault::McuReset { offset } => faults
                .payload
                .push(payload(offset, PayloadFaultKind::McuReset)),
            Fault::PdpDeact { after, cid } => {
                self.schedule(duration_ns(after), Scope::World, Timer::PdpDeact(cid));
            }
            Fault::HttpGetError(c) => faults.get_error = Some(c),
            Fault::HttpGetCme(c) => faults.get_cme = Some(c),
            Fault::HttpReadError(c) => faults.read_error = Some(c),
            Fault::HttpReadCme(c) => faults.read_cme = Some(c),
            Fault::HttpReadFileError(c) => faults.readfile_error = Some(c),
            Fault::Cme { command, code } => faults.cme.push((command, code)),
            Fault::PowerCut { after_ops } => {
                self.power.countdown = Some(after_ops);
            }
            Fault::PowerCutAt { addr, after_ops } => {
                self.power.at = Some((addr, after_ops));
            }
            Fault::BaudLimit(rate) => self.link.baud_limit = Some(rate),
            Fault::BaudReset(rate) => faults.baud_reset = Some(rate),
            Fault::Server { behavior, path } => {
                let server = self.server.as_ref().ok_or(FaultError::NoServer)?;
                server.set(path.as_deref(), behavior);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_parses_and_round_trips() {
        for info in FAULTS {
            let f: Fault = info
                .example
                .parse()
                .unwrap_or_else(|e| panic!("{}: {e}", info.example));
            let again: Fault = f.to_string().parse().unwrap();
            assert_eq!(f, again, "{}", info.example);
            assert!(f.to_string().starts_with(info.name));
        }
    }

    #[test]
    fn bad_input() {
        for s in [
            "",
            "nope",
            "byte-loss",
            "byte-loss=x",
            "byte-loss=1,2,3",
            "cme=,3",
            "pdp-deact=0,99",
            "server-redirect=x",
            "byte-loss=1@/p",
            "server-404=1",
            "http-get-error=70000",
        ] {
            assert!(s.parse::<Fault>().is_err(), "{s}");
        }
        assert_eq!(
            "server-404@/fw.bin".parse::<Fault>().unwrap(),
            Fault::Server {
                behavior: Behavior::NotFound,
                path: Some("/fw.bin".into()),
            }
        );
        assert_eq!(
            "byte-corrupt=5,0x0f".parse::<Fault>().unwrap(),
            Fault::ByteCorrupt {
                offset: 5,
                xor: 0x0f
            }
        );
    }
}
