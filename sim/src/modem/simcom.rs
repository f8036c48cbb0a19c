//! The SIMCom personalities: identity, data connections and HTTP(S) as `simcom-at.md`
//! describes them (section numbers below point into it).
//!
//! | | SIM7600 | A7670 | SIM7070 | SIM800 |
//! |---|---|---|---|---|
//! | identity | `AT+SIMCOMATI`, `+CGMR: <rev>` | `AT+SIMCOMATI`, `+CGMR: <rev>` | `AT+CGMM`, `Revision:<rev>` (`AT+SIMCOMATI` → `ERROR`, assumed) | as SIM7070 |
//! | ICCID | `AT+CICCID` → `+ICCID:` | `AT+CICCID` | `AT+CCID` → bare digits | `AT+CCID` |
//! | data | `AT+CGDCONT`, `AT+CGACT` | `AT+CGDCONT`, `AT+CGACT` | `AT+CNCFG`, `AT+CNACT=<i>,1` → `+APP PDP: <i>,ACTIVE` | `AT+SAPBR` |
//! | HTTP | `AT+HTTP*` | `AT+HTTP*` | `AT+SH*` | `AT+HTTP*` with `"CID"` |
//! | read | `OK`, then `+HTTPREAD: DATA,<n>` pieces of ≤1024 with **no CR LF before the next header** (the user-observed form, §2.1.1), `+HTTPREAD: 0` | `OK`, `\r\n+HTTPREAD: <n>\r\n` pieces of ≤1024, `+HTTPREAD: 0` | `OK`, `+SHREAD: <n>` pieces of ≤2048, no terminator; asking for more than it holds is `ERROR` | `+HTTPREAD: <n>`, the bytes, then `OK` |
//! | `AT+HTTPREAD=<off>,<n>` | `<off>` from the body's start; `AT+HTTPREAD?` = the whole length | reads **consume**: bytes at `<off>` after what was read, `AT+HTTPREAD?` = what remains (LilyGo's reading, §2.1.1; both kinds exist here so a driver must tell them apart) | – | – |
//! | body limit | none | 288 KiB (`+HTTPACTION: 0,706,0`, §7.1) | 40 KB (`+SHREQ: "GET",602,0`, STACX) | none |
//! | ranges | `USERDATA` `Range:` | `USERDATA`; after 10 in one session `AT+HTTPPARA="USERDATA"` answers `ERROR` until `AT+HTTPTERM`/`AT+HTTPINIT` (LilyGo #352) | `AT+SHAHEAD` | `USERDATA` |
//! | link lost | `+HTTP_NONET_EVENT` | `+HTTP_NONET_EVENT` | `+SHSTATE: 0`, `+APP PDP: 0,DEACTIVE` | `+SAPBR 1: DEACT` |
//!
//! | module FOTA | – (not driven) | `AT+CFOTA=<ch>,<mode>,"<host/path>",<u>,<p>`: `FOTA,START`, `DOWNLOADING:<n>`, `100`, restart, silent upgrade, restart; wrong package `1008` (assumed), missing `1005` | `AT+HTTPTOFS` into `/fota/update.zip`, `AT+CFOTA=1`: `"Start to update"`, `"Updating",<n>`, the verdict, restart; `AT+CFOTA?` 6 / 7 | – |
//!
//! The `http-get-error=<code>` fault puts `<code>` in the status field of the next
//! `+HTTPACTION:` / `+SHREQ:` (a 6xx module status or a 7xx error code).
//!
//! All modules fetch and hold the whole body before the result URC (`<datalen>` is "the
//! body length received into the module buffer", §2.1); a server that closes early leaves
//! fewer bytes than the announced length, and a read then returns only those, with no
//! error (the SIM7600 field report of §7.3; **assumed** for the others). No request
//! reaches the network without an active data connection: `+HTTPACTION: 0,601,0` on
//! SIM800 (botletics #74), `0,717,0` on SIM7600/A7670 (assumed), `AT+SHCONN` → `ERROR`.
//! `AT+CSSLCFG` and `AT+SHSSL` are accepted; HTTPS is fetched as plain HTTP, as for the
//! Quectel personalities.

use std::time::Duration;

use super::at::{CmdError, CmdResult, Command, Form, Reply};
use super::{Pdp, Personality, Power};
use crate::network::{FetchError, Url};
use crate::world::{Scope, State, Timer, duration_ns};

/// USERDATA ranges an A7670 takes in one session (LilyGo #352: "after approximately 10 KB"
/// of 1 KB ranges).
const A7670_RANGES: u32 = 10;
/// The `AT+SH*` body limit (STACX: "only works for files up to about 40k").
const SH_LIMIT: usize = 40 * 1024;
/// `AT+HTTPREAD` piece size (§2.1.1: "one chunk per ~1024 bytes").
const HTTP_PIECE: usize = 1024;
/// `AT+SHREAD` piece size (§2.3).
const SH_PIECE: usize = 2048;

/// A response the module holds.
#[derive(Clone, Debug)]
pub(crate) struct Held {
    /// The body bytes that arrived.
    body: Vec<u8>,
    /// Bytes consumed by reads (A7670).
    cursor: usize,
}

/// What the HTTP/SH application holds (lost at reboot).
#[derive(Debug, Default)]
pub(crate) struct SimcomState {
    init: bool,
    url: Option<String>,
    userdata: Option<String>,
    ranges: u32,
    response: Option<Held>,
    /// The result URC being waited for, and what it brings.
    pending: Option<(String, Option<Held>)>,
    sh_url: Option<String>,
    sh_connected: bool,
    sh_headers: Vec<(String, String)>,
    apn: String,
}

fn limit(p: Personality) -> Option<usize> {
    match p {
        Personality::A7670 => Some(p.ufs_total() as usize),
        Personality::Sim7070 => Some(SH_LIMIT),
        _ => None,
    }
}

impl State {
    fn simcom_personality(&self) -> Personality {
        self.modem.cfg.personality
    }

    /// SIMCom commands; `None` for a command this module does not know here.
    pub(super) fn cmd_simcom(&mut self, c: &Command) -> Option<CmdResult> {
        let p = self.simcom_personality();
        let ati = matches!(p, Personality::Sim7600 | Personality::A7670);
        let sh = p == Personality::Sim7070;
        let m = &mut self.modem;
        let r = match (c.name.as_str(), c.form) {
            // Quectel's own commands do not exist here.
            (n, _) if n.starts_with("+Q") => Err(CmdError::Error),
            ("I", Form::Exec) => Ok(Reply::Lines(vec![
                "Manufacturer: SIMCOM INCORPORATED".into(),
                format!("Model: {}", p.model()),
                format!("Revision: {}", m.revision),
                format!("IMEI: {}", m.cfg.imei),
            ])),
            ("+SIMCOMATI", Form::Exec) if ati => Ok(Reply::Lines(vec![
                "Manufacturer: SIMCOM INCORPORATED".into(),
                format!("Model: {}", p.model()),
                format!("Revision: {}", m.revision),
                format!("IMEI: {}", m.cfg.imei),
                "+GCAP: +CGSM".into(),
            ])),
            ("+SIMCOMATI", _) => Err(CmdError::Error),
            ("+CGMM" | "+GMM", Form::Exec) => Ok(Reply::line(p.model())),
            ("+CGMI" | "+GMI", Form::Exec) => Ok(Reply::line("SIMCOM INCORPORATED")),
            ("+CGMR" | "+GMR", Form::Exec) => Ok(Reply::line(if ati {
                format!("+CGMR: {}", m.revision)
            } else {
                format!("Revision:{}", m.revision)
            })),
            ("+CICCID", Form::Exec) if ati => {
                sim_ready(m).map(|iccid| Reply::line(format!("+ICCID: {iccid}")))
            }
            ("+CCID", Form::Exec) if !ati => sim_ready(m).map(Reply::line),
            ("+CICCID" | "+CCID", _) => Err(CmdError::Error),
            ("+CGDCONT", Form::Write) if ati => {
                let cid = c.args.ranged(0, 1, 24).map(|v| v as u8);
                let apn = c.args.quoted(2).map(str::to_string);
                match (cid, c.args.quoted(1), apn) {
                    (Ok(cid), Ok(_), Ok(apn)) => {
                        m.pdp.entry(cid).or_insert_with(Pdp::new).apn = apn;
                        Ok(Reply::ok())
                    }
                    _ => Err(CmdError::Error),
                }
            }
            ("+CGPADDR", Form::Write) => match c.args.ranged(0, 1, 24) {
                Ok(cid) => Ok(Reply::line(
                    match m.pdp.get(&(cid as u8)).filter(|p| p.active) {
                        Some(p) => format!("+CGPADDR: {cid},{}", p.ip),
                        None => format!("+CGPADDR: {cid},0.0.0.0"),
                    },
                )),
                Err(e) => Err(e),
            },
            ("+CNCFG", Form::Write) if sh => match (c.args.ranged(0, 0, 3), c.args.quoted(2)) {
                (Ok(_), Ok(apn)) => {
                    m.simcom.apn = apn.to_string();
                    Ok(Reply::ok())
                }
                _ => Err(CmdError::Error),
            },
            ("+CNACT", Form::Write) if sh => return Some(self.cnact(c)),
            ("+CNACT", Form::Read) if sh => {
                let lines = (0..4u8)
                    .map(|i| match m.pdp.get(&(i + 1)).filter(|p| p.active) {
                        Some(pdp) => format!("+CNACT: {i},1,\"{}\"", pdp.ip),
                        None => format!("+CNACT: {i},0,\"0.0.0.0\""),
                    })
                    .collect();
                Ok(Reply::Lines(lines))
            }
            ("+SAPBR", Form::Write) if p == Personality::Sim800 => return Some(self.sapbr(c)),
            ("+CSSLCFG", Form::Write) | ("+SHSSL", Form::Write) => Ok(Reply::ok()),
            ("+HTTPINIT", Form::Exec) if !sh => {
                if m.simcom.init {
                    Err(CmdError::Error)
                } else {
                    m.simcom.init = true;
                    m.simcom.ranges = 0;
                    Ok(Reply::ok())
                }
            }
            ("+HTTPTERM", Form::Exec) if !sh => {
                if !m.simcom.init {
                    Err(CmdError::Error)
                } else {
                    self.epochs.http += 1;
                    let s = &mut self.modem.simcom;
                    *s = SimcomState {
                        apn: std::mem::take(&mut s.apn),
                        ..SimcomState::default()
                    };
                    Ok(Reply::ok())
                }
            }
            ("+HTTPPARA", Form::Write) if !sh => return Some(self.httppara(c)),
            ("+HTTPACTION", Form::Write) if !sh => return Some(self.httpaction(c)),
            ("+HTTPREAD", Form::Read) if ati => match &m.simcom.response {
                Some(h) if p == Personality::A7670 && h.cursor < h.body.len() => Ok(Reply::line(
                    format!("+HTTPREAD: LEN,{}", h.body.len() - h.cursor),
                )),
                Some(h) if p == Personality::Sim7600 => {
                    Ok(Reply::line(format!("+HTTPREAD: LEN,{}", h.body.len())))
                }
                _ => Err(CmdError::Error),
            },
            ("+HTTPREAD", Form::Exec | Form::Write) if !sh => return Some(self.httpread(c)),
            ("+SHCONF", Form::Write) if sh => {
                let name = c.args.quoted(0).map(str::to_ascii_uppercase);
                match name.as_deref() {
                    Ok("URL") => match c.args.quoted(1) {
                        Ok(u) if u.len() <= 64 && Url::parse(u).is_some() => {
                            m.simcom.sh_url = Some(u.to_string());
                            Ok(Reply::ok())
                        }
                        _ => Err(CmdError::Error),
                    },
                    Ok("BODYLEN") => c.args.ranged(1, 0, 4096).map(|_| Reply::ok()),
                    Ok("HEADERLEN") => c.args.ranged(1, 0, 350).map(|_| Reply::ok()),
                    Ok("TIMEOUT") => c.args.ranged(1, 30, 1800).map(|_| Reply::ok()),
                    _ => Err(CmdError::Error),
                }
            }
            ("+SHCONN", Form::Exec) if sh => {
                let up = m.registered() && m.pdp.values().any(|p| p.active);
                if m.simcom.sh_connected || m.simcom.sh_url.is_none() || !up {
                    Err(CmdError::Error)
                } else {
                    m.simcom.sh_connected = true;
                    m.simcom.sh_headers.clear();
                    Ok(Reply::ok())
                }
            }
            ("+SHSTATE", Form::Read) if sh => Ok(Reply::line(format!(
                "+SHSTATE: {}",
                u8::from(m.simcom.sh_connected)
            ))),
            ("+SHDISC", Form::Exec) if sh => {
                if m.simcom.sh_connected {
                    self.epochs.http += 1;
                    let s = &mut self.modem.simcom;
                    s.sh_connected = false;
                    s.pending = None;
                    s.response = None;
                    Ok(Reply::ok())
                } else {
                    Err(CmdError::Error)
                }
            }
            ("+SHCHEAD", Form::Exec) if sh && m.simcom.sh_connected => {
                m.simcom.sh_headers.clear();
                Ok(Reply::ok())
            }
            ("+SHAHEAD", Form::Write) if sh && m.simcom.sh_connected => {
                match (c.args.quoted(0), c.args.quoted(1)) {
                    (Ok(n), Ok(v)) if n.len() + v.len() <= 350 => {
                        m.simcom.sh_headers.push((n.to_string(), v.to_string()));
                        Ok(Reply::ok())
                    }
                    _ => Err(CmdError::Error),
                }
            }
            ("+CFOTA", Form::Write) if p == Personality::A7670 => return Some(self.cfota_a76(c)),
            ("+CFOTA", Form::Write) if sh => return Some(self.cfota_apply(c)),
            ("+CFOTA", Form::Read) if sh => Ok(Reply::line(format!(
                "+CFOTA: {}",
                m.cfota_status.unwrap_or(0)
            ))),
            ("+HTTPTOFS", Form::Write) if sh => return Some(self.httptofs(c)),
            ("+SHREQ", Form::Write) if sh => return Some(self.shreq(c)),
            ("+SHREAD", Form::Write) if sh => return Some(self.shread(c)),
            _ => return None,
        };
        Some(r)
    }

    fn cnact(&mut self, c: &Command) -> CmdResult {
        let index = c.args.ranged(0, 0, 3)? as u8;
        let action = c.args.ranged(1, 0, 2)?;
        let cid = index + 1;
        if action == 0 {
            if let Some(p) = self.modem.pdp.get_mut(&cid) {
                p.active = false;
            }
            self.schedule_urc(
                Duration::from_millis(100),
                format!("+APP PDP: {index},DEACTIVE"),
            );
            return Ok(Reply::ok());
        }
        if !self.modem.registered() {
            return Err(CmdError::Error);
        }
        let ip = format!("10.187.7.{}", 7 + u32::from(cid));
        let apn = self.modem.simcom.apn.clone();
        let p = self.modem.pdp.entry(cid).or_insert_with(Pdp::new);
        p.apn = apn;
        p.ip = ip;
        p.active = true;
        let d = self.modem.cfg.pdp_activate_time;
        self.schedule_urc(d, format!("+APP PDP: {index},ACTIVE"));
        Ok(Reply::ok())
    }

    fn sapbr(&mut self, c: &Command) -> CmdResult {
        let cmd = c.args.ranged(0, 0, 4)?;
        let cid = c.args.ranged(1, 1, 3)? as u8;
        match cmd {
            3 => {
                let tag = c.args.quoted(2)?.to_ascii_uppercase();
                let v = c.args.quoted(3)?.to_string();
                if tag == "APN" {
                    self.modem.pdp.entry(cid).or_insert_with(Pdp::new).apn = v;
                }
                Ok(Reply::ok())
            }
            1 => {
                if !self.modem.registered() {
                    return Err(CmdError::Error);
                }
                let ip = format!("10.187.7.{}", 7 + u32::from(cid));
                let p = self.modem.pdp.entry(cid).or_insert_with(Pdp::new);
                if p.active {
                    // SIM800 refuses to open an open bearer.
                    return Err(CmdError::Error);
                }
                p.ip = ip;
                p.active = true;
                Ok(Reply::ok())
            }
            0 => {
                if let Some(p) = self.modem.pdp.get_mut(&cid) {
                    p.active = false;
                }
                Ok(Reply::ok())
            }
            2 => {
                let (status, ip) = match self.modem.pdp.get(&cid) {
                    Some(p) if p.active => (1, p.ip.clone()),
                    _ => (3, "0.0.0.0".to_string()),
                };
                Ok(Reply::line(format!("+SAPBR: {cid},{status},\"{ip}\"")))
            }
            _ => Err(CmdError::Error),
        }
    }

    fn httppara(&mut self, c: &Command) -> CmdResult {
        let p = self.simcom_personality();
        let s = &mut self.modem.simcom;
        if !s.init {
            return Err(CmdError::Error);
        }
        let tag = c.args.quoted(0)?.to_ascii_uppercase();
        match tag.as_str() {
            "URL" => {
                let u = c.args.quoted(1)?;
                Url::parse(u).ok_or(CmdError::Error)?;
                s.url = Some(u.to_string());
            }
            "USERDATA" => {
                let v = c.args.quoted(1)?;
                let max = if p == Personality::Sim7600 { 512 } else { 256 };
                if v.len() > max {
                    return Err(CmdError::Error);
                }
                if p == Personality::A7670 && !v.is_empty() {
                    if s.ranges >= A7670_RANGES {
                        return Err(CmdError::Error);
                    }
                    s.ranges += 1;
                }
                s.userdata = (!v.is_empty()).then(|| v.to_string());
            }
            "CID" if p == Personality::Sim800 => {
                c.args.ranged(1, 1, 3)?;
            }
            "SSLCFG" if p != Personality::Sim800 => {
                c.args.ranged(1, 0, 9)?;
            }
            "CONNECTTO" | "RECVTO" | "CONTENT" | "ACCEPT" => {}
            "BREAK" | "BREAKEND" if p != Personality::A7670 => {}
            "READMODE" if p == Personality::A7670 => {}
            _ => return Err(CmdError::Error),
        }
        Ok(Reply::ok())
    }

    /// Whether the data connection an HTTP request needs is up.
    fn simcom_link_up(&self) -> bool {
        self.modem.registered() && self.modem.pdp.values().any(|p| p.active)
    }

    fn httpaction(&mut self, c: &Command) -> CmdResult {
        let method = c.args.ranged(0, 0, 4)?;
        let p = self.simcom_personality();
        let s = &self.modem.simcom;
        if !s.init || s.pending.is_some() {
            return Err(CmdError::Error);
        }
        if method != 0 {
            return Err(CmdError::Error);
        }
        let Some(url_text) = s.url.clone() else {
            return Err(CmdError::Error);
        };
        let mut headers = Vec::new();
        if let Some(h) = &s.userdata
            && let Some((n, v)) = h.split_once(':')
        {
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
        let no_net = if p == Personality::Sim800 { 601 } else { 717 };
        let (line, held, at) = if !self.simcom_link_up() {
            (format!("+HTTPACTION: 0,{no_net},0"), None, 200_000_000)
        } else {
            match Url::parse(&url_text) {
                None => ("+HTTPACTION: 0,603,0".to_string(), None, 100_000_000),
                Some(url) => self.simcom_fetch(
                    &url,
                    &headers,
                    |status, len| format!("+HTTPACTION: 0,{status},{len}"),
                    706,
                    "+HTTPACTION: 0,{code},0",
                ),
            }
        };
        let (line, held) = match self.modem.faults.get_error.take() {
            Some(code) => (format!("+HTTPACTION: 0,{code},0"), None),
            None => (line, held),
        };
        self.modem.simcom.pending = Some((line, held));
        self.modem.simcom.response = None;
        self.schedule(at.max(1_000_000), Scope::Http, Timer::SimcomResult);
        Ok(Reply::ok())
    }

    /// Fetches `url` and says when the result URC is due: the whole body in the module.
    fn simcom_fetch(
        &mut self,
        url: &Url,
        headers: &[(String, String)],
        ok_line: impl Fn(u16, usize) -> String,
        too_big: u16,
        err_form: &str,
    ) -> (String, Option<Held>, u64) {
        let p = self.simcom_personality();
        let scheme = if url.https { "https" } else { "http" };
        self.modem
            .fetches
            .push(format!("{scheme}://{}:{}{}", url.host, url.port, url.path));
        let timeout = Duration::from_secs(120);
        let err = |code: u16| err_form.replace("{code}", &code.to_string());
        match self.net.get(url, headers, timeout) {
            Err(FetchError::Dns) => (
                err(if p == Personality::Sim7070 { 603 } else { 713 }),
                None,
                100_000_000,
            ),
            Err(FetchError::Connect) => (
                err(if p == Personality::Sim800 { 601 } else { 714 }),
                None,
                300_000_000,
            ),
            Err(FetchError::Protocol) => (err(600), None, 300_000_000),
            Err(FetchError::Timeout) => (
                err(if p == Personality::Sim800 { 601 } else { 705 }),
                None,
                duration_ns(timeout),
            ),
            Ok(f) => {
                let (first_byte, _) = self.net.cfg.timing(url, f.head.len(), f.real);
                let bps = self.net.cfg.downlink_bps.max(1);
                let all = (f.head.len() + f.body.len()) as u64;
                let done =
                    duration_ns(first_byte).saturating_add(all.saturating_mul(8_000_000_000) / bps);
                let declared = f.content_length.map_or(f.body.len(), |n| n as usize);
                if limit(p).is_some_and(|l| declared > l) {
                    return (err(too_big), None, done);
                }
                let line = ok_line(f.status, declared);
                (
                    line,
                    Some(Held {
                        body: f.body,
                        cursor: 0,
                    }),
                    done,
                )
            }
        }
    }

    /// The pending result URC is due.
    pub(super) fn simcom_result(&mut self) {
        let Some((line, held)) = self.modem.simcom.pending.take() else {
            return;
        };
        if self.modem.power != Power::On {
            return;
        }
        self.modem.simcom.response = held;
        self.emit_urc(&line);
        if matches!(
            self.simcom_personality(),
            Personality::Sim7600 | Personality::A7670
        ) {
            // "often appears right after +HTTPACTION" and must be ignored (§2.1).
            self.emit_urc("+HTTP_PEER_CLOSED");
        }
    }

    fn httpread(&mut self, c: &Command) -> CmdResult {
        let p = self.simcom_personality();
        if !self.modem.simcom.init || self.modem.simcom.pending.is_some() {
            return Err(CmdError::Error);
        }
        let Some(held) = self.modem.simcom.response.as_mut() else {
            return Err(CmdError::Error);
        };
        let (off, size) = if c.form == Form::Write {
            let off = c.args.ranged(0, 0, i64::from(u32::MAX))? as usize;
            let size = c.args.ranged(1, 1, i64::from(u32::MAX))? as usize;
            (off, size)
        } else {
            (0, usize::MAX)
        };
        let base = if p == Personality::A7670 {
            held.cursor
        } else {
            0
        };
        let from = base.saturating_add(off).min(held.body.len());
        let to = from.saturating_add(size).min(held.body.len());
        let data = held.body[from..to].to_vec();
        if p == Personality::A7670 {
            held.cursor = to;
        }
        if p == Personality::Sim800 {
            self.emit(format!("\r\n+HTTPREAD: {}\r\n", data.len()).as_bytes());
            self.emit_payload(&data);
            self.emit_ok();
            return Ok(Reply::Handled);
        }
        self.emit_ok();
        for (i, piece) in data.chunks(HTTP_PIECE).enumerate() {
            if p == Personality::Sim7600 {
                // No CR LF between one piece's bytes and the next header (§2.1.1).
                let lead = if i == 0 { "\r\n" } else { "" };
                self.emit(format!("{lead}+HTTPREAD: DATA,{}\r\n", piece.len()).as_bytes());
            } else {
                self.emit(format!("\r\n+HTTPREAD: {}\r\n", piece.len()).as_bytes());
            }
            self.emit_payload(piece);
        }
        self.emit(b"\r\n+HTTPREAD: 0\r\n");
        Ok(Reply::Handled)
    }

    fn shreq(&mut self, c: &Command) -> CmdResult {
        let path = c.args.quoted(0)?.to_string();
        let kind = c.args.ranged(1, 1, 5)?;
        let s = &self.modem.simcom;
        if !s.sh_connected || s.pending.is_some() || kind != 1 || !path.starts_with('/') {
            return Err(CmdError::Error);
        }
        let Some(mut url) = s.sh_url.as_deref().and_then(Url::parse) else {
            return Err(CmdError::Error);
        };
        url.path = path;
        let headers = s.sh_headers.clone();
        let (line, held, at) = self.simcom_fetch(
            &url,
            &headers,
            |status, len| format!("+SHREQ: \"GET\",{status},{len}"),
            602,
            "+SHREQ: \"GET\",{code},0",
        );
        let (line, held) = match self.modem.faults.get_error.take() {
            Some(code) => (format!("+SHREQ: \"GET\",{code},0"), None),
            None => (line, held),
        };
        self.modem.simcom.pending = Some((line, held));
        self.modem.simcom.response = None;
        self.schedule(at.max(1_000_000), Scope::Http, Timer::SimcomResult);
        Ok(Reply::ok())
    }

    fn shread(&mut self, c: &Command) -> CmdResult {
        let start = c.args.ranged(0, 0, 307_200)? as usize;
        let len = c.args.ranged(1, 1, 307_200)? as usize;
        let Some(held) = self.modem.simcom.response.as_ref() else {
            return Err(CmdError::Error);
        };
        // "If <datalen> is bigger than the data size received, it's error" (§2.3).
        if start.saturating_add(len) > held.body.len() {
            return Err(CmdError::Error);
        }
        let data = held.body[start..start + len].to_vec();
        self.emit_ok();
        for piece in data.chunks(SH_PIECE) {
            self.emit(format!("\r\n+SHREAD: {}\r\n", piece.len()).as_bytes());
            self.emit_payload(piece);
        }
        Ok(Reply::Handled)
    }

    /// `AT+CFOTA=<channel>,<mode>,"<host[:port]/path>",<user>,<password>` (A7670, §6.2):
    /// the package is fetched over HTTP (`<mode>` 1; FTP is not simulated: `1003`), then
    /// `FOTA,START`, `DOWNLOADING:<n>`, `100`, a restart 8 s later into the updater (which
    /// takes no commands), the upgrade, and a restart into the new revision. A package for
    /// another revision ends the download with `1008` (file check error, **assumed**); a
    /// missing file with `1005`; an unreachable host with `1003`.
    fn cfota_a76(&mut self, c: &Command) -> CmdResult {
        c.args.ranged(0, 0, 5)?;
        let mode = c.args.ranged(1, 0, 1)?;
        let location = c.args.quoted(2)?.to_string();
        if c.args.len() != 5 || self.modem.fota.is_some() {
            return Err(CmdError::Error);
        }
        let t0 = self.now;
        let ms = |ms: u64| t0.saturating_add(ms * 1_000_000);
        let mut steps = std::collections::VecDeque::new();
        let urc = |s: &str| super::fota::Step::Urc(format!("+CFOTA: {s}"));
        let url = Url::parse(&format!("http://{location}"));
        let fetched = match (mode, url) {
            (1, Some(url)) if self.simcom_link_up() => {
                self.modem
                    .fetches
                    .push(format!("http://{}:{}{}", url.host, url.port, url.path));
                self.net.get(&url, &[], Duration::from_secs(120)).ok()
            }
            _ => None,
        };
        let Some(f) = fetched else {
            steps.push_back((ms(1000), urc("1003")));
            return self.start_simcom_fota(steps);
        };
        if f.status == 404 {
            steps.push_back((ms(1000), urc("1005")));
            return self.start_simcom_fota(steps);
        }
        steps.push_back((ms(1000), urc("FOTA,START")));
        let bps = self.net.cfg.downlink_bps.max(1);
        let dl_ms = (f.body.len() as u64).saturating_mul(8_000) / bps + 1;
        for pct in [25u64, 50, 75, 100] {
            steps.push_back((
                ms(1000 + dl_ms * pct / 100),
                urc(&format!("DOWNLOADING:{pct}")),
            ));
        }
        let current = self.modem.revision.clone();
        let done = 1000 + dl_ms + 200;
        match super::fota::check_package(Personality::A7670, &current, &f.body) {
            Ok(target) => {
                let fota = self.modem.cfg.fota.clone();
                let boot = duration_ns(self.modem.cfg.boot_time) / 1_000_000;
                let reboot_at = done + 8_000;
                let rdy_at = reboot_at + boot;
                let finish_at = rdy_at + duration_ns(fota.upgrade_time) / 1_000_000;
                steps.push_back((ms(done), urc("100")));
                steps.push_back((ms(reboot_at), super::fota::Step::Reboot));
                steps.push_back((ms(rdy_at), super::fota::Step::Rdy));
                steps.push_back((ms(finish_at), super::fota::Step::Finish(Some(target))));
            }
            Err(_) => steps.push_back((ms(done), urc("1008"))),
        }
        self.start_simcom_fota(steps)
    }

    /// `AT+HTTPTOFS="<url>","<path>"` (SIM7070, §2.3): the file is fetched and stored, then
    /// `+HTTPTOFS: <status>,<len>` once the body has arrived. The file is in the file system
    /// from the start of the download (simplified). Errors: no data connection `601`,
    /// DNS/connect `603` (module statuses, §4.1).
    fn httptofs(&mut self, c: &Command) -> CmdResult {
        let url_text = c.args.quoted(0)?.to_string();
        let path = c.args.quoted(1)?.to_string();
        if !path.starts_with('/') || path.len() > 127 {
            return Err(CmdError::Error);
        }
        let url = Url::parse(&url_text).ok_or(CmdError::Error)?;
        let (line, at) = if !self.simcom_link_up() {
            ("+HTTPTOFS: 601,0".to_string(), 100_000_000)
        } else {
            self.modem
                .fetches
                .push(format!("http://{}:{}{}", url.host, url.port, url.path));
            match self.net.get(&url, &[], Duration::from_secs(50)) {
                Err(_) => ("+HTTPTOFS: 603,0".to_string(), 300_000_000),
                Ok(f) => {
                    let bps = self.net.cfg.downlink_bps.max(1);
                    let ns = (f.body.len() as u64).saturating_mul(8_000_000_000) / bps;
                    let line = format!("+HTTPTOFS: {},{}", f.status, f.body.len());
                    if f.status == 200 {
                        let name = path.trim_start_matches('/').to_string();
                        self.modem
                            .fs
                            .map_mut(super::file::Drive::Ufs)
                            .insert(name, f.body);
                    }
                    (line, ns + duration_ns(self.net.cfg.rtt))
                }
            }
        };
        self.schedule(
            at.max(1_000_000),
            Scope::Modem,
            Timer::Emit(format!("\r\n{line}\r\n").into_bytes()),
        );
        Ok(Reply::ok())
    }

    /// `AT+CFOTA=1` (SIM7070, §6.3): applies `/fota/update.zip`; `"Start to update"`,
    /// `"Updating",<n>`, the verdict, and a restart; `AT+CFOTA?` then says 6 or 7. Without
    /// the file: `ERROR`.
    fn cfota_apply(&mut self, c: &Command) -> CmdResult {
        if c.args.ranged(0, 0, 1)? != 1 {
            // `AT+CFOTA=0` cleans the flag.
            self.modem.cfota_status = Some(8);
            return Ok(Reply::ok());
        }
        if self.modem.fota.is_some() {
            return Err(CmdError::Error);
        }
        let Some(package) = self
            .modem
            .fs
            .map(super::file::Drive::Ufs)
            .get("fota/update.zip")
            .cloned()
        else {
            return Err(CmdError::Error);
        };
        let t0 = self.now;
        let ms = |ms: u64| t0.saturating_add(ms * 1_000_000);
        let urc = |s: &str| super::fota::Step::Urc(format!("+CFOTA: {s}"));
        let mut steps = std::collections::VecDeque::new();
        steps.push_back((ms(500), urc("\"Start to update\"")));
        let upgrade = duration_ns(self.modem.cfg.fota.upgrade_time) / 1_000_000;
        for pct in [20u64, 40, 60, 80, 100] {
            steps.push_back((
                ms(500 + upgrade * pct / 100),
                urc(&format!("\"Updating\",{pct}")),
            ));
        }
        let current = self.modem.revision.clone();
        let end = 500 + upgrade + 200;
        let target = match super::fota::check_package(Personality::Sim7070, &current, &package) {
            Ok(target) => {
                self.modem.cfota_status = Some(6);
                steps.push_back((
                    ms(end),
                    urc("\"Update successfully, please wait for reset\""),
                ));
                Some(target)
            }
            Err(_) => {
                self.modem.cfota_status = Some(7);
                steps.push_back((ms(end), urc("\"Update failed, please wait for reset\"")));
                None
            }
        };
        steps.push_back((ms(end + 2_000), super::fota::Step::Finish(target)));
        self.start_simcom_fota(steps)
    }

    fn start_simcom_fota(
        &mut self,
        steps: std::collections::VecDeque<(u64, super::fota::Step)>,
    ) -> CmdResult {
        self.modem.fota = Some(super::fota::FotaJob { steps, file: None });
        self.schedule(0, Scope::Fota, Timer::Fota);
        Ok(Reply::ok())
    }

    /// A URC after `d`.
    fn schedule_urc(&mut self, d: Duration, text: String) {
        self.schedule(
            duration_ns(d),
            Scope::Modem,
            Timer::Emit(format!("\r\n{text}\r\n").into_bytes()),
        );
    }

    /// The network took the data connection down: the family's URCs.
    pub(crate) fn simcom_link_lost(&mut self, cid: u8) {
        if let Some(p) = self.modem.pdp.get_mut(&cid) {
            p.active = false;
        }
        match self.simcom_personality() {
            Personality::Sim7070 => {
                if self.modem.simcom.sh_connected {
                    self.modem.simcom.sh_connected = false;
                    self.emit_urc("+SHSTATE: 0");
                }
                self.emit_urc(&format!("+APP PDP: {},DEACTIVE", cid.saturating_sub(1)));
            }
            Personality::Sim800 => self.emit_urc(&format!("+SAPBR {cid}: DEACT")),
            _ => self.emit_urc("+HTTP_NONET_EVENT"),
        }
    }
}

/// The ICCID, or the error a module without a ready SIM gives.
fn sim_ready(m: &super::Modem) -> Result<String, CmdError> {
    if !m.cfg.sim_ready {
        Err(CmdError::Cme(10))
    } else {
        Ok(m.cfg.iccid.clone())
    }
}
