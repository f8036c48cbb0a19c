//! The HTTP(S) client commands (§4): `AT+QHTTPCFG`, `AT+QHTTPURL`, `AT+QHTTPGET` (both
//! forms), `AT+QHTTPGETEX`, `AT+QHTTPREAD`, `AT+QHTTPREADFILE`, `AT+QHTTPSTOP`.
//!
//! Error choices where the reference has no source (all **assumed**): no URL set →
//! `+CME ERROR: 712`; PDP context of `contextid` inactive → `+CME ERROR: 709`; DNS failure
//! and refused connection → `+CME ERROR: 716` (EG800K reported 716 for DNS, §4.3); no
//! response within `<rsptime>` → `OK` then `+QHTTPGET: 702` (BG96, §4.3); a GET while one is
//! pending, or a read before the result → `+CME ERROR: 703`; nothing to read →
//! `+CME ERROR: 705` (§4.6); a body cut short by the server → the bytes received, then
//! `+QHTTPREAD: 717`; data-input timeout → `+CME ERROR: 726`; a full UFS during
//! `AT+QHTTPREADFILE` → `+QHTTPREADFILE: 701`. The stored response stays readable (by
//! `AT+QHTTPREAD` and `AT+QHTTPREADFILE`, any number of times) until the next request or
//! `AT+QHTTPSTOP`, as the `http_getex_range` fixture reads it twice.

use std::time::Duration;

use super::at::{CmdError, CmdResult, Command, Form, Reply};
use super::file::{Drive, parse_name};
use super::{DataKind, Power};
use crate::network::{FetchError, Fetched, Url};
use crate::uart::NetWindow;
use crate::world::{Scope, State, Timer, duration_ns};

/// `AT+QHTTPCFG` settings (lost at reboot, §4.1).
#[derive(Clone, Debug)]
pub(crate) struct HttpCfg {
    pub(crate) contextid: u8,
    pub(crate) requestheader: bool,
    pub(crate) responseheader: bool,
    pub(crate) sslctxid: u8,
    pub(crate) contenttype: u8,
    pub(crate) rspout_auto: bool,
    pub(crate) closed_ind: bool,
    pub(crate) added: Vec<(String, String)>,
    pub(crate) custom: Option<String>,
    pub(crate) auth: Option<String>,
    pub(crate) numbers: Vec<(String, u32)>,
}

impl Default for HttpCfg {
    fn default() -> Self {
        HttpCfg {
            contextid: 1,
            requestheader: false,
            responseheader: false,
            sslctxid: 1,
            contenttype: 0,
            rspout_auto: false,
            closed_ind: false,
            added: Vec::new(),
            custom: None,
            auth: None,
            numbers: Vec::new(),
        }
    }
}

/// A response kept for `AT+QHTTPREAD` / `AT+QHTTPREADFILE`.
#[derive(Clone, Debug)]
pub(crate) struct Stored {
    pub(crate) head: Vec<u8>,
    pub(crate) body: Vec<u8>,
    pub(crate) truncated: bool,
    /// When the response (header block, then body) arrives from the network: its first
    /// byte at `net_from` (virtual ns), then one byte every `8 / downlink` seconds. The
    /// module reports `+QHTTPGET:` once the header block is in and the body keeps arriving
    /// while `AT+QHTTPREAD` forwards it (§4.6: `<wait_time>` is the longest gap *between
    /// received packets*, and an EC21 log shows a pause mid-body, so the module streams
    /// rather than buffering the whole body first).
    pub(crate) net_from: u64,
    pub(crate) downlink_bps: u64,
}

impl Stored {
    /// Virtual time (ns) by which the first `n` bytes of head-then-body have arrived.
    pub(crate) fn arrived(&self, n: u64) -> u64 {
        let bps = u128::from(self.downlink_bps.max(1));
        let ns = u128::from(n) * 8 * 1_000_000_000 / bps;
        self.net_from
            .saturating_add(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    /// Virtual time (ns) by which the whole body has arrived.
    pub(crate) fn complete_at(&self) -> u64 {
        self.arrived((self.head.len() + self.body.len()) as u64)
    }
}

#[derive(Debug)]
struct PendingGet {
    line: String,
    response: Option<Stored>,
}

#[derive(Debug)]
struct PendingReadFile {
    drive: Drive,
    name: String,
    data: Vec<u8>,
    code: u16,
}

/// HTTP state of the modem.
#[derive(Debug, Default)]
pub(crate) struct Http {
    pub(crate) cfg: HttpCfg,
    pub(crate) url: Option<String>,
    response: Option<Stored>,
    pending: Option<PendingGet>,
    readfile: Option<PendingReadFile>,
}

const UNIVERSAL: [&str; 5] = [
    "contextid",
    "requestheader",
    "responseheader",
    "sslctxid",
    "contenttype",
];

impl State {
    pub(super) fn cmd_http(&mut self, c: &Command) -> Option<CmdResult> {
        let r = match (c.name.as_str(), c.form) {
            ("+QHTTPCFG", Form::Write) => self.qhttpcfg(c),
            ("+QHTTPCFG", Form::Test) => Ok(Reply::Lines(vec![
                "+QHTTPCFG: \"contextid\",(1-16)".into(),
                "+QHTTPCFG: \"requestheader\",(0,1)".into(),
                "+QHTTPCFG: \"responseheader\",(0,1)".into(),
                "+QHTTPCFG: \"sslctxid\",(0-5)".into(),
                "+QHTTPCFG: \"contenttype\",(0-5)".into(),
            ])),
            ("+QHTTPURL", Form::Test) => Ok(Reply::line("+QHTTPURL: (1-700),(1-65535)")),
            ("+QHTTPURL", Form::Read) => match &self.modem.http.url {
                Some(u) => Ok(Reply::line(format!("+QHTTPURL: {u}"))),
                None => Ok(Reply::ok()),
            },
            ("+QHTTPURL", Form::Write) => self.qhttpurl(c),
            ("+QHTTPGET", Form::Test) => Ok(Reply::line("+QHTTPGET: (1-65535),(1-2048),(1-65535)")),
            ("+QHTTPGET", Form::Exec) => self.qhttpget(60, None),
            ("+QHTTPGET", Form::Write) => self.qhttpget_write(c),
            ("+QHTTPGETEX", _) if !self.modem.cfg.personality.supports_getex() => {
                Err(CmdError::Error)
            }
            ("+QHTTPGETEX", Form::Test) => Ok(Reply::line(
                "+QHTTPGETEX: (1-65535),(0-2147483647),(1-2147483647)",
            )),
            ("+QHTTPGETEX", Form::Write) => self.qhttpgetex(c),
            ("+QHTTPREAD", Form::Exec) => self.qhttpread(),
            ("+QHTTPREAD", Form::Write) => {
                c.args.ranged(0, 1, 65535).and_then(|_| self.qhttpread())
            }
            ("+QHTTPREAD", Form::Test) => Ok(Reply::line("+QHTTPREAD: (1-65535)")),
            ("+QHTTPREADFILE", Form::Write) => self.qhttpreadfile(c),
            ("+QHTTPSTOP", Form::Exec) => {
                self.epochs.http += 1;
                let h = &mut self.modem.http;
                h.pending = None;
                h.readfile = None;
                h.response = None;
                Ok(Reply::ok())
            }
            _ => return None,
        };
        Some(r)
    }

    fn qhttpcfg(&mut self, c: &Command) -> CmdResult {
        let name = c.args.quoted(0)?.to_ascii_lowercase();
        let extra = self.modem.cfg.personality.http_cfg_extra();
        if !UNIVERSAL.contains(&name.as_str()) && !extra.contains(&name.as_str()) {
            return Err(CmdError::Error);
        }
        let cfg = &mut self.modem.http.cfg;
        if c.args.len() == 1 {
            let value = match name.as_str() {
                "contextid" => cfg.contextid.to_string(),
                "requestheader" => u8::from(cfg.requestheader).to_string(),
                "responseheader" => u8::from(cfg.responseheader).to_string(),
                "sslctxid" => cfg.sslctxid.to_string(),
                "contenttype" => cfg.contenttype.to_string(),
                "rspout/auto" => u8::from(cfg.rspout_auto).to_string(),
                "closed/ind" => u8::from(cfg.closed_ind).to_string(),
                "custom_header" => format!("\"{}\"", cfg.custom.clone().unwrap_or_default()),
                "auth" => format!("\"{}\"", cfg.auth.clone().unwrap_or_default()),
                "closewaittime" | "windowsize" => cfg
                    .numbers
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
                    .unwrap_or_else(|| "0".into()),
                _ => return Err(CmdError::Error),
            };
            return Ok(Reply::line(format!("+QHTTPCFG: \"{name}\",{value}")));
        }
        match name.as_str() {
            "contextid" => cfg.contextid = c.args.ranged(1, 1, 16)? as u8,
            "requestheader" => cfg.requestheader = c.args.ranged(1, 0, 1)? == 1,
            "responseheader" => cfg.responseheader = c.args.ranged(1, 0, 1)? == 1,
            "sslctxid" => cfg.sslctxid = c.args.ranged(1, 0, 5)? as u8,
            "contenttype" => cfg.contenttype = c.args.ranged(1, 0, 5)? as u8,
            "rspout/auto" => cfg.rspout_auto = c.args.ranged(1, 0, 1)? == 1,
            "closed/ind" => cfg.closed_ind = c.args.ranged(1, 0, 1)? == 1,
            "reqheader/add" => {
                let n = c.args.quoted(1)?.to_string();
                let v = c.args.quoted(2)?.to_string();
                if n.is_empty()
                    || !n
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
                {
                    return Err(CmdError::Error);
                }
                cfg.added.retain(|(k, _)| !k.eq_ignore_ascii_case(&n));
                cfg.added.push((n, v));
            }
            "reqheader/remove" => {
                let n = c.args.quoted(1)?.to_string();
                cfg.added.retain(|(k, _)| !k.eq_ignore_ascii_case(&n));
            }
            "custom_header" => {
                let h = c.args.quoted(1)?;
                if !h.contains(':') {
                    return Err(CmdError::Error);
                }
                cfg.custom = Some(h.to_string());
            }
            "auth" => cfg.auth = Some(c.args.quoted(1)?.to_string()),
            _ => {
                let v = c.args.ranged(1, 0, i64::from(u32::MAX))? as u32;
                cfg.numbers.retain(|(n, _)| *n != name);
                cfg.numbers.push((name, v));
            }
        }
        Ok(Reply::ok())
    }

    fn qhttpurl(&mut self, c: &Command) -> CmdResult {
        let len = c.args.ranged(0, 1, 700)? as usize;
        let timeout = c.args.ranged_or(1, 1, 65535, 60)? as u64;
        self.emit(b"\r\nCONNECT\r\n");
        self.start_data_in(
            DataKind::HttpUrl,
            len,
            None,
            Some(Duration::from_secs(timeout)),
        );
        Ok(Reply::Handled)
    }

    pub(super) fn http_url_done(&mut self, data: Vec<u8>) -> CmdResult {
        let url = String::from_utf8(data).map_err(|_| CmdError::Cme(711))?;
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            return Err(CmdError::Cme(711));
        }
        self.modem.http.url = Some(url);
        Ok(Reply::ok())
    }

    fn qhttpget_write(&mut self, c: &Command) -> CmdResult {
        let rsp = c.args.ranged(0, 1, 65535)? as u16;
        if c.args.has(1) {
            if !self.modem.http.cfg.requestheader {
                return Err(CmdError::Error);
            }
            let len = c.args.ranged(1, 1, 2048)? as usize;
            let input = c.args.ranged_or(2, 1, 65535, 60)? as u64;
            if self.modem.http.pending.is_some() {
                return Err(CmdError::Cme(703));
            }
            self.emit(b"\r\nCONNECT\r\n");
            self.start_data_in(
                DataKind::HttpHeader { rsp },
                len,
                None,
                Some(Duration::from_secs(input)),
            );
            return Ok(Reply::Handled);
        }
        if self.modem.http.cfg.requestheader {
            return Err(CmdError::Error);
        }
        self.qhttpget(rsp, None)
    }

    fn qhttpgetex(&mut self, c: &Command) -> CmdResult {
        let rsp = c.args.ranged(0, 1, 65535)? as u16;
        let start = c.args.ranged(1, 0, i64::from(i32::MAX))?;
        let len = c.args.ranged(2, 1, i64::from(i32::MAX))?;
        if self.modem.http.cfg.requestheader {
            return Err(CmdError::Error);
        }
        let range = format!("bytes={}-{}", start, start + len - 1);
        self.qhttpget(rsp, Some(vec![("Range".to_string(), range)]))
    }

    pub(super) fn http_header_done(&mut self, rsp: u16, block: &[u8]) -> CmdResult {
        let text = String::from_utf8_lossy(block);
        let mut lines = text.split("\r\n");
        let request = lines.next().unwrap_or("");
        let mut parts = request.split(' ');
        let (Some(method), Some(path), Some(version)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(CmdError::Cme(730));
        };
        if !method.eq_ignore_ascii_case("GET")
            || !path.starts_with('/')
            || !version.starts_with("HTTP/")
        {
            return Err(CmdError::Cme(730));
        }
        let mut headers = Vec::new();
        for l in lines {
            if l.is_empty() {
                break;
            }
            let Some((n, v)) = l.split_once(':') else {
                return Err(CmdError::Cme(730));
            };
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
        self.http_request(rsp, Some(path.to_string()), headers)
    }

    fn qhttpget(&mut self, rsp: u16, headers: Option<Vec<(String, String)>>) -> CmdResult {
        self.http_request(rsp, None, headers.unwrap_or_default())
    }

    /// Performs a GET (real, now) and schedules its result URC in virtual time.
    fn http_request(
        &mut self,
        rsp: u16,
        path: Option<String>,
        mut headers: Vec<(String, String)>,
    ) -> CmdResult {
        if self.modem.http.pending.is_some() {
            return Err(CmdError::Cme(703));
        }
        if let Some(code) = self.modem.faults.get_cme.take() {
            return Err(CmdError::Cme(code));
        }
        let Some(url_text) = self.modem.http.url.clone() else {
            return Err(CmdError::Cme(712));
        };
        let mut url = Url::parse(&url_text).ok_or(CmdError::Cme(711))?;
        if let Some(p) = path {
            url.path = p;
        }
        let cid = self.modem.http.cfg.contextid;
        if !self.modem.registered() || !self.modem.pdp.get(&cid).is_some_and(|p| p.active) {
            return Err(CmdError::Cme(709));
        }
        let cfg = &self.modem.http.cfg;
        headers.extend(cfg.added.iter().cloned());
        if let Some(h) = &cfg.custom
            && let Some((n, v)) = h.split_once(':')
        {
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
        if let Some(a) = &cfg.auth {
            headers.push((
                "Authorization".into(),
                format!("Basic {}", base64(a.as_bytes())),
            ));
        }
        let timeout = Duration::from_secs(u64::from(rsp));
        let mut fetched = self.fetch(&url, &headers, timeout);
        // Redirects (ASR: absolute Location only, §4.9).
        let mut hops = 0;
        while self.modem.cfg.personality.follows_redirects()
            && let Ok(f) = &fetched
            && matches!(f.status, 301 | 302 | 303 | 307 | 308)
        {
            let loc = f.location.clone().unwrap_or_default();
            if !Url::is_absolute(&loc) || hops >= 5 {
                return Err(CmdError::Cme(711));
            }
            url = Url::parse(loc.trim()).ok_or(CmdError::Cme(711))?;
            hops += 1;
            fetched = self.fetch(&url, &headers, timeout);
        }
        let (line, response, at) = match fetched {
            Err(FetchError::Dns) | Err(FetchError::Connect) => return Err(CmdError::Cme(716)),
            Err(FetchError::Protocol) => return Err(CmdError::Cme(701)),
            Err(FetchError::Timeout) => ("+QHTTPGET: 702".to_string(), None, duration_ns(timeout)),
            Ok(f) => {
                let (first_byte, headers_at) = self.net.cfg.timing(&url, f.head.len(), f.real);
                if headers_at > timeout {
                    ("+QHTTPGET: 702".to_string(), None, duration_ns(timeout))
                } else {
                    let line = match f.content_length {
                        Some(len) => format!("+QHTTPGET: 0,{},{}", f.status, len),
                        None => format!("+QHTTPGET: 0,{}", f.status),
                    };
                    let stored = Stored {
                        head: f.head,
                        body: f.body,
                        truncated: f.truncated,
                        net_from: self.now.saturating_add(duration_ns(first_byte)),
                        downlink_bps: self.net.cfg.downlink_bps,
                    };
                    (line, Some(stored), duration_ns(headers_at))
                }
            }
        };
        let (line, response) = match self.modem.faults.get_error.take() {
            Some(code) => (format!("+QHTTPGET: {code}"), None),
            None => (line, response),
        };
        self.modem.http.pending = Some(PendingGet { line, response });
        self.modem.http.response = None;
        self.schedule(at.max(1_000_000), Scope::Http, Timer::HttpResult);
        Ok(Reply::ok())
    }

    fn fetch(
        &mut self,
        url: &Url,
        headers: &[(String, String)],
        timeout: Duration,
    ) -> Result<Fetched, FetchError> {
        let scheme = if url.https { "https" } else { "http" };
        self.modem
            .fetches
            .push(format!("{scheme}://{}:{}{}", url.host, url.port, url.path));
        self.net.get(url, headers, timeout)
    }

    pub(super) fn http_result(&mut self) {
        let Some(p) = self.modem.http.pending.take() else {
            return;
        };
        if self.modem.power != Power::On {
            return;
        }
        self.modem.http.response = p.response;
        self.maybe_interleave_urc();
        self.emit_urc(&p.line);
    }

    /// The TCP window of a forwarded body ([`ModemConfig::tcp_window`](super::ModemConfig)).
    fn tcp_window(&self, downlink_bps: u64) -> Option<NetWindow> {
        let bytes = self.modem.cfg.tcp_window;
        if bytes == 0 {
            return None;
        }
        let block_ns = (super::PACE as u64 * 8 * 1_000_000_000) / downlink_bps.max(1);
        let rtt_ns = duration_ns(self.modem.cfg.network.rtt);
        Some(NetWindow::new(
            bytes.div_ceil(super::PACE),
            rtt_ns,
            block_ns,
        ))
    }

    fn qhttpread(&mut self) -> CmdResult {
        if self.modem.http.cfg.rspout_auto {
            return Err(CmdError::Cme(701));
        }
        if self.modem.http.pending.is_some() {
            return Err(CmdError::Cme(703));
        }
        if let Some(code) = self.modem.faults.read_cme.take() {
            return Err(CmdError::Cme(code));
        }
        let Some(resp) = self.modem.http.response.clone() else {
            return Err(CmdError::Cme(705));
        };
        self.emit(b"\r\nCONNECT\r\n");
        // Byte `i` of what is forwarded cannot leave before it arrived from the network, and
        // the network cannot send further than the module's buffer has room.
        let head = resp.head.len() as u64;
        let window = self.tcp_window(resp.downlink_bps);
        if self.modem.http.cfg.responseheader {
            let mut all = resp.head.clone();
            all.extend_from_slice(&resp.body);
            self.emit_payload_paced(&all, &|i| resp.arrived(i + 1), window);
        } else {
            self.emit_payload_paced(&resp.body, &|i| resp.arrived(head + i + 1), window);
        }
        self.emit(b"\r\nOK\r\n");
        let code = self
            .modem
            .faults
            .read_error
            .take()
            .unwrap_or(if resp.truncated { 717 } else { 0 });
        self.maybe_interleave_urc();
        self.emit_urc(&format!("+QHTTPREAD: {code}"));
        Ok(Reply::Handled)
    }

    fn qhttpreadfile(&mut self, c: &Command) -> CmdResult {
        let name = c.args.quoted(0)?;
        let (drive, name) = parse_name(name)?;
        c.args.ranged_or(1, 1, 65535, 60)?;
        if self.modem.http.cfg.rspout_auto {
            return Err(CmdError::Cme(701));
        }
        if self.modem.http.pending.is_some() || self.modem.http.readfile.is_some() {
            return Err(CmdError::Cme(703));
        }
        let Some(resp) = self.modem.http.response.clone() else {
            return Err(CmdError::Cme(705));
        };
        let code = self
            .modem
            .faults
            .readfile_error
            .take()
            .unwrap_or(if resp.truncated { 717 } else { 0 });
        let rate = self.modem.cfg.ufs_write_bytes_per_sec.max(1);
        // Done when the body has arrived from the network and is written to UFS.
        let write = (resp.body.len() as u64).saturating_mul(1_000_000_000) / rate;
        let arrive = resp.complete_at().saturating_sub(self.now);
        let ns = write.max(arrive) + 10_000_000;
        self.modem.http.readfile = Some(PendingReadFile {
            drive,
            name,
            data: resp.body,
            code,
        });
        self.schedule(ns, Scope::Http, Timer::ReadFileDone);
        Ok(Reply::ok())
    }

    pub(super) fn readfile_done(&mut self) {
        let Some(p) = self.modem.http.readfile.take() else {
            return;
        };
        let code = if self.modem.fs.fits(p.drive, &p.name, p.data.len() as u64) {
            self.modem.fs.map_mut(p.drive).insert(p.name, p.data);
            p.code
        } else {
            701
        };
        self.maybe_interleave_urc();
        self.emit_urc(&format!("+QHTTPREADFILE: {code}"));
    }
}

/// Standard base64 (RFC 4648) for `Authorization: Basic`.
fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_vectors() {
        assert_eq!(super::base64(b""), "");
        assert_eq!(super::base64(b"f"), "Zg==");
        assert_eq!(super::base64(b"fo"), "Zm8=");
        assert_eq!(super::base64(b"foo"), "Zm9v");
        assert_eq!(super::base64(b"user:pass"), "dXNlcjpwYXNz");
    }
}
