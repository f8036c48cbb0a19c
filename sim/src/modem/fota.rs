//! Module firmware update with `AT+QFOTADL` (§8) and `AT+QCFG="fota/..."`.
//!
//! The package is fetched for real (like an HTTP GET) when the command runs; what follows is
//! a scripted sequence of URCs and reboots in virtual time, shaped by the personality (see
//! [`Personality`](super::Personality)):
//!
//! ```text
//! OK
//! +QIND: "FOTA","HTTPSTART"                     after FotaTiming::start_delay
//! +QIND: "FOTA","DOWNLOADING",<pct>   ...       ASR, EC200U; spread over the transfer time
//! +QIND: "FOTA","HTTPEND",<err>                 0, or 7xx (EC200U: 608 for a fota/path without ':')
//!   (reboot: output cut, input ignored)         FotaTiming::reboot_time
//! RDY
//! +QIND: "FOTA","START"
//! +QIND: "FOTA","UPDATING",<pct>      ...       over FotaTiming::upgrade_time
//!   (ASR: a second reboot + RDY half-way)
//! +QIND: "FOTA","END",<err>
//!   (reboot into the new firmware: RDY and the boot URCs; AT+GMR shows the new revision)
//! ```
//!
//! **Packages.** The simulator cannot apply a real delta, so it accepts packages made by
//! [`fota_package`]: a small text header naming the source and target revision. A package
//! for another source revision fails with the personality's "wrong source" code (Qualcomm
//! 510, ASR 507); anything else fails with 505; [`fota_package_with_result`] forces any
//! `END` code. Download-stage errors: DNS 714, connection 716, timeout 702, HTTP status not
//! 2xx 701 (assumed). FTP URLs reach no server: `FTPSTART` then `FTPEND,609` after 30 s.
//!
//! **A package the host streams** (`AT+QFOTADL="FILE:<len>"[,<mode>,<dl>[,<upd>]]`, §8.1):
//! ASR personality (EC200T) only — the others answer `ERROR`, as does the proprietary
//! protocol mode `,2` (not simulated) and a length of 0 or above 16 MiB (assumed limit).
//! The reference does not say what the module sends before it takes the bytes; the
//! simulator answers `OK`, takes bytes from then on, and reports
//! `+QIND: "FOTA","FILESTART"` [`FotaFileConfig::start_delay`] later (assumed). The receive
//! side is modelled (all sizes and rates in [`FotaFileConfig`]):
//!
//! * bytes enter a bounded receive buffer (4 KiB) that drains into the package store at the
//!   NOR-flash rate (15 000 bytes/s);
//! * with `AT+IFC=..,2` the modem holds the host with CTS while that buffer is full (see
//!   [`uart`](crate::uart)); without it, bytes that arrive while it is full are **lost**;
//! * `DOWNLOADING,<pct>` as the store fills (ASR reports it), then, once exactly `<len>`
//!   bytes are stored, `FILEEND,0` and the same upgrade as for a URL, with the received
//!   bytes as the package (bytes after the `<len>`th are AT input again);
//! * a transfer that stays short (bytes lost, or a host that stops) ends after
//!   [`FotaFileConfig::silence`] without a byte with `FILEEND,500` ("file download error",
//!   the one documented file error, §5.3) and no reboot — the module does not try to apply a
//!   package it did not get whole.
//!
//! [`SimModem::fota_file`](crate::SimModem::fota_file) and
//! [`SimModem::fota_file_stats`](crate::SimModem::fota_file_stats) show what arrived.

use std::collections::VecDeque;
use std::time::Duration;

use super::at::{CmdError, CmdResult, Command, Form, Reply};
use super::file::parse_name;
use super::{FotaFileConfig, Mode, Personality, Power};
use crate::network::{FetchError, Url};
use crate::world::{Scope, State, Timer, duration_ns};

const MAGIC: &[u8] = b"QSIMFOTA1\n";

/// A firmware package the simulated modem accepts: upgrades revision `from` to `to`
/// (revisions as `AT+GMR` prints them). `size` pads it with filler bytes (at least the
/// header is written).
pub fn fota_package(from: &str, to: &str, size: usize) -> Vec<u8> {
    build(from, to, None, size)
}

/// Like [`fota_package`], but the upgrade ends with `+QIND: "FOTA","END",<code>` (for
/// example ASR 506 "firmware MD5 check error"); code 0 is a success.
pub fn fota_package_with_result(from: &str, to: &str, code: u16, size: usize) -> Vec<u8> {
    build(from, to, Some(code), size)
}

fn build(from: &str, to: &str, code: Option<u16>, size: usize) -> Vec<u8> {
    let mut v = MAGIC.to_vec();
    v.extend_from_slice(format!("from={from}\nto={to}\n").as_bytes());
    if let Some(c) = code {
        v.extend_from_slice(format!("result={c}\n").as_bytes());
    }
    v.push(b'\n');
    let mut x: u32 = 0x1234_5678;
    while v.len() < size {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        v.push(x as u8);
    }
    v
}

/// What a package says: `Ok(target revision)` or `Err(END code)`.
pub(super) fn check_package(
    p: Personality,
    current: &str,
    data: &[u8],
) -> Result<String, (u16, Option<String>)> {
    let Some(rest) = data.strip_prefix(MAGIC) else {
        return Err((p.fota_bad_package_code(), None));
    };
    let end = rest
        .windows(2)
        .position(|w| w == b"\n\n")
        .ok_or((p.fota_bad_package_code(), None))?;
    let header = String::from_utf8_lossy(&rest[..end]);
    let (mut from, mut to, mut result) = (None, None, None);
    for line in header.lines() {
        if let Some(v) = line.strip_prefix("from=") {
            from = Some(v.to_string());
        } else if let Some(v) = line.strip_prefix("to=") {
            to = Some(v.to_string());
        } else if let Some(v) = line.strip_prefix("result=") {
            result = v.parse::<u16>().ok();
        }
    }
    let (Some(from), Some(to)) = (from, to) else {
        return Err((p.fota_bad_package_code(), None));
    };
    if to.is_empty() {
        return Err((p.fota_bad_package_code(), None));
    }
    if from != current {
        return Err((p.fota_wrong_source_code(), None));
    }
    match result {
        Some(0) | None => Ok(to),
        Some(code) => Err((code, Some(to))),
    }
}

#[derive(Clone, Debug)]
pub(super) enum Step {
    Urc(String),
    /// The module reboots inside the update: output is cut, input ignored.
    Reboot,
    /// `RDY` after a reboot inside the update.
    Rdy,
    /// The last reboot, into the new (or old) firmware.
    Finish(Option<String>),
}

/// A running `AT+QFOTADL`.
#[derive(Debug)]
pub(crate) struct FotaJob {
    pub(super) steps: VecDeque<(u64, Step)>,
    /// The receive side while the host streams a package.
    pub(super) file: Option<FileIn>,
}

/// Longest package accepted with `"FILE:<len>"` (assumed).
const FILE_MAX: usize = 16 << 20;

/// Counters of a package transfer (`AT+QFOTADL="FILE:<len>"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FotaFileStats {
    /// The announced length.
    pub expected: usize,
    /// Bytes the module took into its receive buffer (and then its package store).
    pub received: usize,
    /// Bytes that arrived while the receive buffer was full (no flow control), lost.
    pub lost: u64,
    /// The most bytes ever waiting in the receive buffer.
    pub max_fill: usize,
    /// Whether all `expected` bytes arrived.
    pub complete: bool,
}

/// What the module received (kept for tests).
#[derive(Clone, Debug, Default)]
pub(crate) struct FileRecord {
    pub(crate) data: Vec<u8>,
    pub(crate) stats: FotaFileStats,
}

/// The modem's receive buffer in front of its package store: a queue drained at `rate`
/// bytes/s. Its level is kept as the time it would be empty, scaled by the rate (ns × rate)
/// so that the arithmetic is exact.
#[derive(Debug)]
pub(crate) struct FileIn {
    cap: usize,
    rate: u64,
    empty_at_scaled: u128,
    /// When the last byte arrived (ns).
    last: u64,
    silence: u64,
    check_pending: bool,
    download_urcs: u64,
    update_urcs: u64,
}

const NS: u128 = 1_000_000_000;

impl FileIn {
    /// Bytes waiting in the buffer at `now`.
    fn level(&self, now: u64) -> usize {
        let now_s = u128::from(now) * u128::from(self.rate);
        if self.empty_at_scaled <= now_s {
            0
        } else {
            ((self.empty_at_scaled - now_s).div_ceil(NS)) as usize
        }
    }

    /// Takes one byte into the buffer.
    fn push(&mut self, now: u64) {
        let now_s = u128::from(now) * u128::from(self.rate);
        self.empty_at_scaled = self.empty_at_scaled.max(now_s) + NS;
    }

    /// When every byte taken so far is in the store (ns).
    fn drained_at(&self) -> u64 {
        self.empty_at_scaled.div_ceil(u128::from(self.rate)) as u64
    }

    /// If the buffer is full at `now`: when it has room for one byte again.
    fn room_at(&self, now: u64) -> Option<u64> {
        if self.level(now) < self.cap {
            return None;
        }
        let keep = (self.cap as u128 - 1) * NS;
        Some(
            self.empty_at_scaled
                .saturating_sub(keep)
                .div_ceil(u128::from(self.rate)) as u64,
        )
    }
}

impl State {
    pub(super) fn cmd_fota(&mut self, c: &Command) -> Option<CmdResult> {
        let p = self.modem.cfg.personality;
        let r = match (c.name.as_str(), c.form) {
            ("+QFOTADL", Form::Test) => Ok(if p.fota_takes_options() {
                Reply::line("+QFOTADL: <URL>,(0,1),(0,5-100),(0,5-100)")
            } else {
                Reply::ok()
            }),
            ("+QFOTADL", Form::Write) => self.qfotadl(c),
            _ => return None,
        };
        Some(r)
    }

    fn qfotadl(&mut self, c: &Command) -> CmdResult {
        let p = self.modem.cfg.personality;
        if self.modem.fota.is_some() {
            return Err(CmdError::Cme(3));
        }
        let source = c.args.quoted(0)?.to_string();
        let mut download_urcs = if p.fota_reports_downloading() { 5 } else { 0 };
        let mut update_urcs = 10;
        if c.args.len() > 1 {
            if !p.fota_takes_options() {
                return Err(CmdError::Error);
            }
            c.args.ranged(1, 0, 1)?;
            download_urcs = urc_count(c.args.ranged(2, 0, 100)?)?;
            if c.args.has(3) {
                update_urcs = urc_count(c.args.ranged(3, 0, 100)?)?;
            }
            if !p.fota_reports_downloading() {
                download_urcs = 0;
            }
        }
        let lower = source.to_ascii_lowercase();
        let t0 = self.now + duration_ns(self.modem.cfg.fota.start_delay);
        let mut steps: Vec<(u64, Step)> = Vec::new();
        if let Some(len) = lower.strip_prefix("file:") {
            if p.family() != Some(cellular_ota::quectel::ChipFamily::Asr) {
                return Err(CmdError::Error);
            }
            let len: usize = len.trim().parse().map_err(|_| CmdError::Error)?;
            if len == 0 || len > FILE_MAX {
                return Err(CmdError::Error);
            }
            self.start_file_in(len, download_urcs, update_urcs);
            return Ok(Reply::ok());
        } else if lower.starts_with("ftp://") {
            if p == Personality::Ec200u {
                return Err(CmdError::Error);
            }
            steps.push((t0, Step::Urc(fota_urc("FTPSTART", None))));
            steps.push((
                t0 + 30_000_000_000,
                Step::Urc(fota_urc("FTPEND", Some(609))),
            ));
        } else if source.starts_with('/') {
            if p.family() != Some(cellular_ota::quectel::ChipFamily::Qualcomm) {
                return Err(CmdError::Error);
            }
            let name = ["/usrdata/cache/ufs/", "/cache/ufs/", "/data/ufs/"]
                .iter()
                .find_map(|pre| source.strip_prefix(pre))
                .unwrap_or("");
            let data = parse_name(name)
                .ok()
                .and_then(|(d, n)| self.modem.fs.map(d).get(&n).cloned());
            let outcome = match data {
                Some(d) => check_package(p, &self.modem.revision, &d),
                None => Err((p.fota_bad_package_code(), None)),
            };
            // EG18: the port dropped right after OK to a local-file FOTADL (§8.1).
            self.plan_upgrade(&mut steps, self.now + 100_000_000, outcome, update_urcs);
        } else {
            let url = Url::parse(&source).ok_or(CmdError::Cme(711))?;
            let path_trap = p == Personality::Ec200u
                && self
                    .modem
                    .qcfg
                    .get("fota/path")
                    .is_some_and(|v| !v.contains(':'));
            steps.push((t0, Step::Urc(fota_urc("HTTPSTART", None))));
            if path_trap {
                steps.push((t0 + 200_000_000, Step::Urc(fota_urc("HTTPEND", Some(608)))));
            } else if !self.modem.registered() {
                steps.push((
                    t0 + 1_000_000_000,
                    Step::Urc(fota_urc("HTTPEND", Some(709))),
                ));
            } else {
                self.modem.fetches.push(source.clone());
                let fetched = self.net.get(&url, &[], Duration::from_secs(60));
                match fetched {
                    Err(e) => {
                        let code = match e {
                            FetchError::Dns => 714,
                            FetchError::Connect => 716,
                            FetchError::Timeout => 702,
                            FetchError::Protocol => 701,
                        };
                        steps.push((
                            t0 + 1_000_000_000,
                            Step::Urc(fota_urc("HTTPEND", Some(code))),
                        ));
                    }
                    Ok(f) if !(200..300).contains(&f.status) || f.truncated => {
                        let (_, h) = self.net.cfg.timing(&url, f.head.len(), f.real);
                        let code = if f.truncated { 717 } else { 701 };
                        steps.push((
                            t0 + duration_ns(h),
                            Step::Urc(fota_urc("HTTPEND", Some(code))),
                        ));
                    }
                    Ok(f) => {
                        let (h, done) =
                            self.net
                                .cfg
                                .download(&url, f.head.len(), f.body.len(), f.real);
                        let (h, done) = (t0 + duration_ns(h), t0 + duration_ns(done));
                        for i in 1..=download_urcs {
                            let at = h + (done - h) * i / download_urcs;
                            let pct = i * 100 / download_urcs;
                            steps.push((at, Step::Urc(fota_urc("DOWNLOADING", Some(pct as u16)))));
                        }
                        steps.push((done + 100_000_000, Step::Urc(fota_urc("HTTPEND", Some(0)))));
                        let outcome = check_package(p, &self.modem.revision, &f.body);
                        self.plan_upgrade(&mut steps, done + 200_000_000, outcome, update_urcs);
                    }
                }
            }
        }
        let mut steps: VecDeque<(u64, Step)> = steps.into();
        steps.make_contiguous().sort_by_key(|(t, _)| *t);
        if let Some(&(first, _)) = steps.front() {
            self.modem.fota = Some(FotaJob { steps, file: None });
            self.schedule_at(first, Scope::Fota, Timer::Fota);
        }
        Ok(Reply::ok())
    }

    /// `AT+QFOTADL="FILE:<len>"` accepted: take bytes from now on.
    fn start_file_in(&mut self, len: usize, download_urcs: u64, update_urcs: u64) {
        let FotaFileConfig {
            rx_buffer,
            flash_bytes_per_sec,
            silence,
            start_delay,
        } = self.modem.cfg.fota_file.clone();
        let now = self.now;
        let file = FileIn {
            cap: rx_buffer.max(1),
            rate: flash_bytes_per_sec.max(1),
            empty_at_scaled: 0,
            last: now,
            silence: duration_ns(silence).max(1),
            check_pending: false,
            download_urcs,
            update_urcs,
        };
        let mut steps = VecDeque::new();
        let t = now + duration_ns(start_delay);
        steps.push_back((t, Step::Urc(fota_urc("FILESTART", None))));
        self.modem.fota = Some(FotaJob {
            steps,
            file: Some(file),
        });
        self.schedule_at(t, Scope::Fota, Timer::Fota);
        self.modem.fota_file = Some(FileRecord {
            data: Vec::with_capacity(len.min(1 << 20)),
            stats: FotaFileStats {
                expected: len,
                ..FotaFileStats::default()
            },
        });
        self.modem.mode = Mode::FotaFile;
        self.fota_file_schedule_check();
    }

    /// Appends steps (later than every queued one) to the running job.
    fn fota_append(&mut self, new: Vec<(u64, Step)>) {
        let Some(job) = self.modem.fota.as_mut() else {
            return;
        };
        let was_empty = job.steps.is_empty();
        let first = new.first().map(|(t, _)| *t);
        job.steps.extend(new);
        if was_empty && let Some(t) = first {
            self.schedule_at(t, Scope::Fota, Timer::Fota);
        }
    }

    /// If the modem receives a package, holds CTS and the buffer is full: when it has room.
    pub(crate) fn modem_cts_hold(&self) -> Option<u64> {
        if self.modem.ifc.1 != 2 || !self.link.cfg.host_cts {
            return None;
        }
        if !matches!(self.modem.mode, Mode::FotaFile) {
            return None;
        }
        self.modem.fota.as_ref()?.file.as_ref()?.room_at(self.now)
    }

    /// A package byte arrived.
    pub(super) fn fota_file_byte(&mut self, b: u8) {
        let now = self.now;
        let (Some(job), Some(rec)) = (self.modem.fota.as_mut(), self.modem.fota_file.as_mut())
        else {
            return;
        };
        let Some(f) = job.file.as_mut() else {
            return;
        };
        f.last = now;
        if f.level(now) >= f.cap {
            rec.stats.lost += 1;
            return;
        }
        f.push(now);
        rec.data.push(b);
        rec.stats.received = rec.data.len();
        rec.stats.max_fill = rec.stats.max_fill.max(f.level(now));
        let (n, expected) = (rec.data.len() as u64, rec.stats.expected as u64);
        let drained = f.drained_at();
        let urcs = f.download_urcs;
        let mut steps = Vec::new();
        // DOWNLOADING,<pct> as the store passes each step (reported when the byte is stored).
        if urcs > 0 && (n * urcs / expected) != ((n - 1) * urcs / expected) {
            let pct = (n * urcs / expected) * 100 / urcs;
            if pct < 100 || n == expected {
                steps.push((
                    drained,
                    Step::Urc(fota_urc("DOWNLOADING", Some(pct as u16))),
                ));
            }
        }
        if n == expected {
            rec.stats.complete = true;
            let update_urcs = f.update_urcs;
            job.file = None;
            let outcome =
                check_package(self.modem.cfg.personality, &self.modem.revision, &rec.data);
            // Further bytes are AT input again.
            self.modem.mode = Mode::Command;
            steps.push((
                drained + 100_000_000,
                Step::Urc(fota_urc("FILEEND", Some(0))),
            ));
            self.plan_upgrade(&mut steps, drained + 200_000_000, outcome, update_urcs);
            self.fota_append(steps);
            self.rx_kick();
            return;
        }
        self.fota_append(steps);
        self.fota_file_schedule_check();
    }

    fn fota_file_schedule_check(&mut self) {
        let Some(f) = self.modem.fota.as_mut().and_then(|j| j.file.as_mut()) else {
            return;
        };
        if f.check_pending {
            return;
        }
        f.check_pending = true;
        let at = f.last.saturating_add(f.silence);
        self.schedule_at(at, Scope::Fota, Timer::FotaFileCheck);
    }

    /// The silence check: a transfer that stays short ends with `FILEEND,500`.
    pub(super) fn fota_file_check(&mut self) {
        let now = self.now;
        let Some(job) = self.modem.fota.as_mut() else {
            return;
        };
        let Some(f) = job.file.as_mut() else {
            return;
        };
        f.check_pending = false;
        if now < f.last.saturating_add(f.silence) {
            self.fota_file_schedule_check();
            return;
        }
        let at = f.drained_at().max(now);
        job.file = None;
        if matches!(self.modem.mode, Mode::FotaFile) {
            self.modem.mode = Mode::Command;
        }
        self.fota_append(vec![(at, Step::Urc(fota_urc("FILEEND", Some(500))))]);
        self.rx_kick();
    }

    fn plan_upgrade(
        &self,
        steps: &mut Vec<(u64, Step)>,
        at: u64,
        outcome: Result<String, (u16, Option<String>)>,
        update_urcs: u64,
    ) {
        let p = self.modem.cfg.personality;
        let timing = &self.modem.cfg.fota;
        let reboot = duration_ns(timing.reboot_time);
        let upgrade = duration_ns(timing.upgrade_time).max(1_000_000);
        steps.push((at, Step::Reboot));
        let mut t = at + reboot;
        steps.push((t, Step::Rdy));
        t += 500_000_000;
        steps.push((t, Step::Urc(fota_urc("START", None))));
        let n = update_urcs.max(1);
        let (end_code, target) = match outcome {
            Ok(to) => (0, Some(to)),
            Err((code, _)) => (code, None),
        };
        // A failing package stops early, after the first progress report.
        let reports = if end_code == 0 { n } else { 1 };
        let mut second_reboot_done = !p.fota_second_reboot() || end_code != 0;
        for i in 1..=reports {
            let mut at_i = t + upgrade * i / n;
            if !second_reboot_done && i * 2 > n {
                // ASR: a second reboot half-way through the upgrade (§8.2).
                let mid = t + upgrade * (i - 1) / n + 1;
                steps.push((mid, Step::Reboot));
                steps.push((mid + reboot, Step::Rdy));
                t += reboot;
                at_i += reboot;
                second_reboot_done = true;
            }
            if update_urcs > 0 {
                let pct = if end_code == 0 { i * 100 / n } else { 1 };
                steps.push((at_i, Step::Urc(fota_urc("UPDATING", Some(pct as u16)))));
            }
        }
        let end_at = if end_code == 0 {
            t + upgrade + 500_000_000
        } else {
            t + upgrade / n + 500_000_000
        };
        steps.push((end_at, Step::Urc(fota_urc("END", Some(end_code)))));
        steps.push((end_at + 500_000_000, Step::Finish(target)));
    }

    pub(super) fn fota_step(&mut self) {
        loop {
            let now = self.now;
            let Some(job) = self.modem.fota.as_mut() else {
                return;
            };
            match job.steps.front() {
                Some((t, _)) if *t <= now => {}
                Some((t, _)) => {
                    let t = *t;
                    self.schedule_at(t, Scope::Fota, Timer::Fota);
                    return;
                }
                None => {
                    // A package transfer still running keeps the job.
                    if job.file.is_none() {
                        self.modem.fota = None;
                    }
                    return;
                }
            }
            let Some((_, step)) = job.steps.pop_front() else {
                return;
            };
            match step {
                Step::Urc(u) => self.emit_urc(&u),
                Step::Reboot => {
                    self.epochs.modem += 1;
                    self.epochs.http += 1;
                    self.link.clear_modem_output();
                    self.modem.power = Power::Booting;
                }
                Step::Rdy => {
                    self.modem.power = Power::On;
                    self.modem.mode = Mode::Ignoring;
                    // `RDY` on Quectel modules, `*ATREADY: 1` on A76xx.
                    let ready = self.modem.cfg.personality.boot_urcs()[0];
                    self.emit_urc(ready);
                }
                Step::Finish(target) => {
                    if let Some(rev) = target {
                        self.modem.revision = rev;
                    }
                    self.modem_reboot();
                    return;
                }
            }
        }
    }
}

/// Number of progress URCs for a `<..._URC_max>` value: 0 = none, else the value is read as
/// the progress step in percent (5–100), so 50 gives `50` and `100` as in the EC200U example
/// `,1,50,100` (§8.1; the parameter's exact meaning is undocumented).
fn urc_count(v: i64) -> Result<u64, CmdError> {
    if v == 0 {
        Ok(0)
    } else if (5..=100).contains(&v) {
        Ok((100 / v) as u64)
    } else {
        Err(CmdError::Error)
    }
}

fn fota_urc(stage: &str, value: Option<u16>) -> String {
    match value {
        Some(v) => format!("+QIND: \"FOTA\",\"{stage}\",{v}"),
        None => format!("+QIND: \"FOTA\",\"{stage}\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages() {
        let p = Personality::Ec200t;
        let pkg = fota_package("A", "B", 100);
        assert_eq!(pkg.len(), 100);
        assert_eq!(check_package(p, "A", &pkg), Ok("B".to_string()));
        assert_eq!(check_package(p, "X", &pkg), Err((507, None)));
        assert_eq!(
            check_package(Personality::Eg06, "X", &pkg),
            Err((510, None))
        );
        assert_eq!(check_package(p, "A", b"garbage"), Err((505, None)));
        let f = fota_package_with_result("A", "B", 506, 0);
        assert_eq!(check_package(p, "A", &f), Err((506, Some("B".into()))));
    }
}
