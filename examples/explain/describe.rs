//! Turns decoded log events into JSON objects (shared by the `explain` example and its
//! tests).

use cellular_ota::at::params::Params;
use cellular_ota::at::{ErrorCode, Final, Prompt};
use cellular_ota::log_decoder::Vendor;
use cellular_ota::quectel::ChipFamily;
use cellular_ota::quectel::error::{CmeError, CmsError, describe};
use cellular_ota::quectel::urc::RegStatus;
use cellular_ota::quectel::urc::{FotaEvent, HttpResult, HttpStatus, SimState, Urc};
use cellular_ota::simcom::error::CmeError as SimcomCme;
use cellular_ota::simcom::urc::{CfotaEvent, CgevEvent, RequestError, Urc as SimcomUrc};
use serde_json::{Map, Value, json};

/// Escapes bytes for the `raw` field: printable ASCII as is, the rest as `\r`, `\n`, `\xNN`.
pub fn esc(b: &[u8]) -> String {
    let mut s = String::new();
    for &c in b {
        match c {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s
}

fn obj(kind: &str, raw: &[u8]) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("raw".into(), json!(esc(raw)));
    m.insert("kind".into(), json!(kind));
    m
}

fn with_code(mut m: Map<String, Value>, code: u16, meaning: &str) -> Map<String, Value> {
    m.insert("code".into(), json!(code));
    m.insert("meaning".into(), json!(meaning));
    m
}

fn http_result(kind: &str, raw: &[u8], r: HttpResult) -> Map<String, Value> {
    let mut m = obj(kind, raw);
    match r.result {
        Ok(st) => {
            m.insert("code".into(), json!(0));
            m.insert("meaning".into(), json!("request completed"));
            m.insert("http_status".into(), json!(st.status));
            m.insert("content_length".into(), json!(st.content_length));
            m
        }
        Err(e) => with_code(m, e.code(), e.meaning()),
    }
}

fn reg_status(m: &mut Map<String, Value>, stat: RegStatus) {
    m.insert("stat".into(), json!(stat.code()));
    m.insert("registered".into(), json!(stat.is_registered()));
}

/// A command line the host sent.
pub fn command(raw: &[u8]) -> Map<String, Value> {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    let mut m = obj("command", raw);
    let text = String::from_utf8_lossy(raw).trim_end().to_string();
    m.insert("command".into(), json!(text));
    m
}

/// A typed URC.
pub fn urc(raw: &[u8], u: &Urc<'_>, family: Option<ChipFamily>) -> Map<String, Value> {
    match *u {
        Urc::Ready => obj("ready", raw),
        Urc::AppReady => obj("app_ready", raw),
        Urc::Cfun(f) => {
            let mut m = obj("functionality", raw);
            m.insert("fun".into(), json!(f));
            m
        }
        Urc::Cpin(s) => sim_state(raw, s),
        Urc::Qusim(v) => {
            let mut m = obj("sim_type", raw);
            m.insert("usim".into(), json!(v == 1));
            m
        }
        Urc::SmsDone => obj("sms_done", raw),
        Urc::PbDone => obj("phonebook_done", raw),
        Urc::Csq { rssi, ber } => {
            let mut m = obj("signal_quality", raw);
            m.insert("rssi".into(), json!(rssi));
            m.insert("ber".into(), json!(ber));
            if rssi != 99 {
                m.insert("dbm".into(), json!(-113 + 2 * i32::from(rssi)));
            }
            m
        }
        Urc::SmsFull(s) => {
            let mut m = obj("sms_full", raw);
            m.insert("storage".into(), json!(s));
            m
        }
        Urc::Act(rat) => {
            let mut m = obj("access_technology", raw);
            m.insert("rat".into(), json!(rat));
            m
        }
        Urc::Fota(ev) => fota(raw, ev, family),
        Urc::PdpDeactivated { cid } => {
            let mut m = obj("pdp_deactivated", raw);
            m.insert("cid".into(), json!(cid));
            m
        }
        Urc::HttpClosed => obj("http_closed", raw),
        Urc::PoweredDown => obj("powered_down", raw),
        Urc::HttpGet(r) => http_result("http_get_result", raw, r),
        Urc::HttpPost(r) => http_result("http_post_result", raw, r),
        Urc::HttpPostFile(r) => http_result("http_post_file_result", raw, r),
        Urc::HttpRead(r) | Urc::HttpReadFile(r) => {
            let kind = if matches!(u, Urc::HttpRead(_)) {
                "http_read_result"
            } else {
                "http_read_file_result"
            };
            match r {
                Ok(()) => with_code(obj(kind, raw), 0, "read completed"),
                Err(e) => with_code(obj(kind, raw), e.code(), e.meaning()),
            }
        }
        Urc::Registration {
            kind,
            stat,
            area,
            cell,
            act,
        } => {
            let mut m = obj("registration", raw);
            m.insert("type".into(), json!(format!("{kind:?}").to_lowercase()));
            reg_status(&mut m, stat);
            m.insert("area".into(), json!(area));
            m.insert("cell".into(), json!(cell));
            m.insert("act".into(), json!(act));
            m
        }
        Urc::OtherQind(_) => obj("indication", raw),
        Urc::OtherQiurc(_) => obj("tcpip_indication", raw),
        _ => obj("urc", raw),
    }
}

fn sim_state(raw: &[u8], s: SimState<'_>) -> Map<String, Value> {
    let mut m = obj("sim_state", raw);
    let state = match s {
        SimState::Ready => "READY".to_string(),
        SimState::Other(t) => t.to_string(),
        other => format!("{other:?}"),
    };
    m.insert("state".into(), json!(state));
    m
}

/// A request's result in a SIMCom URC: the server's status and the body length the module
/// holds, or the module status / error code in their place.
fn request_result(
    mut m: Map<String, Value>,
    r: Result<HttpStatus, RequestError>,
) -> Map<String, Value> {
    match r {
        Ok(st) => {
            m.insert("code".into(), json!(0));
            m.insert("meaning".into(), json!("request completed"));
            m.insert("http_status".into(), json!(st.status));
            m.insert("content_length".into(), json!(st.content_length));
            m
        }
        Err(e) => with_code(m, e.code(), e.meaning()),
    }
}

/// A typed SIMCom URC.
pub fn simcom_urc(raw: &[u8], u: &SimcomUrc<'_>) -> Map<String, Value> {
    match *u {
        SimcomUrc::Ready => obj("ready", raw),
        SimcomUrc::AtReady(n) => {
            let mut m = obj("at_ready", raw);
            m.insert("ready".into(), json!(n == 1));
            m
        }
        SimcomUrc::Cfun(f) => {
            let mut m = obj("functionality", raw);
            m.insert("fun".into(), json!(f));
            m
        }
        SimcomUrc::Cpin(s) => sim_state(raw, s),
        SimcomUrc::SmsReady => obj("sms_done", raw),
        SimcomUrc::PbDone => obj("phonebook_done", raw),
        SimcomUrc::PowerDown(_) => obj("powered_down", raw),
        SimcomUrc::UnderVoltageWarning => obj("under_voltage_warning", raw),
        SimcomUrc::HttpAction(a) => {
            let mut m = obj("http_action_result", raw);
            m.insert("method".into(), json!(a.method));
            request_result(m, a.result)
        }
        SimcomUrc::HttpPeerClosed => {
            let m = obj("http_peer_closed", raw);
            with_meaning(m, "the server closed the connection")
        }
        SimcomUrc::HttpNoNetwork => with_meaning(obj("http_no_network", raw), "no network"),
        SimcomUrc::HttpReadFile(r) => match r {
            Ok(()) => with_code(obj("http_read_file_result", raw), 0, "read completed"),
            Err(e) => with_code(obj("http_read_file_result", raw), e.code(), e.meaning()),
        },
        SimcomUrc::ShReq { method, result } => {
            let mut m = obj("sh_request_result", raw);
            m.insert("method".into(), json!(method));
            request_result(m, result)
        }
        SimcomUrc::ShState(s) => {
            let mut m = obj("sh_state", raw);
            m.insert("connected".into(), json!(s == 1));
            m
        }
        SimcomUrc::HttpToFs(r) => request_result(obj("http_to_fs_result", raw), r),
        SimcomUrc::AppPdp { index, active } => {
            let mut m = obj("app_pdp", raw);
            m.insert("index".into(), json!(index));
            m.insert("active".into(), json!(active));
            m
        }
        SimcomUrc::PdpDeactivated => obj("pdp_deactivated", raw),
        SimcomUrc::BearerDeactivated { cid } => {
            let mut m = obj("bearer_deactivated", raw);
            m.insert("cid".into(), json!(cid));
            m
        }
        SimcomUrc::Cgev(ev) => {
            let mut m = obj("pdp_event", raw);
            match ev {
                CgevEvent::PdnActivated { cid } => {
                    m.insert("event".into(), json!("activated"));
                    m.insert("cid".into(), json!(cid));
                }
                CgevEvent::PdnDeactivated { cid } => {
                    m.insert("event".into(), json!("deactivated"));
                    m.insert("cid".into(), json!(cid));
                }
                CgevEvent::Detached => {
                    m.insert("event".into(), json!("detached"));
                }
                _ => {}
            }
            m
        }
        SimcomUrc::NetworkClosed => obj("network_closed", raw),
        SimcomUrc::NetOpen(r) | SimcomUrc::NetClose(r) => {
            let kind = if matches!(u, SimcomUrc::NetOpen(_)) {
                "net_open_result"
            } else {
                "net_close_result"
            };
            match r {
                Ok(()) => with_code(obj(kind, raw), 0, "operation succeeded"),
                Err(e) => with_code(obj(kind, raw), e.code(), e.meaning()),
            }
        }
        SimcomUrc::IpClose { link, reason } => {
            let mut m = obj("socket_closed", raw);
            m.insert("link".into(), json!(link));
            m.insert("reason".into(), json!(reason));
            m
        }
        SimcomUrc::Cfota(ev) => {
            let mut m = obj("module_fota", raw);
            match ev {
                CfotaEvent::Downloading(p) | CfotaEvent::Updating(p) => {
                    m.insert("percent".into(), json!(p));
                }
                CfotaEvent::Error(e) => m = with_code(m, e.code(), e.meaning()),
                _ => {}
            }
            m
        }
        _ => obj("urc", raw),
    }
}

fn with_meaning(mut m: Map<String, Value>, meaning: &str) -> Map<String, Value> {
    m.insert("meaning".into(), json!(meaning));
    m
}

fn fota(raw: &[u8], ev: FotaEvent, family: Option<ChipFamily>) -> Map<String, Value> {
    let (kind, pct) = match ev {
        FotaEvent::HttpStart { .. } => ("fota_http_start", None),
        FotaEvent::HttpEnd { .. } => ("fota_http_end", None),
        FotaEvent::FtpStart => ("fota_ftp_start", None),
        FotaEvent::FtpEnd { .. } => ("fota_ftp_end", None),
        FotaEvent::FileStart => ("fota_file_start", None),
        FotaEvent::FileEnd { .. } => ("fota_file_end", None),
        FotaEvent::Downloading(p) => ("fota_downloading", Some(p)),
        FotaEvent::Start => ("fota_upgrade_start", None),
        FotaEvent::Updating(p) => ("fota_updating", Some(p)),
        FotaEvent::Restore(p) => ("fota_restore", Some(p)),
        FotaEvent::End(_) => ("fota_end", None),
        _ => ("fota", None),
    };
    let mut m = obj(kind, raw);
    if let Some(p) = pct {
        m.insert("percent".into(), json!(p));
    }
    if let (Some(code), Some(meaning)) = (ev.code(), ev.meaning(family)) {
        m = with_code(m, code, meaning);
        m.insert("success".into(), json!(code == 0));
    }
    m
}

/// A final result, its error codes decoded with `vendor`'s tables (Quectel's when unknown).
pub fn final_result(raw: &[u8], f: &Final<'_>, vendor: Option<Vendor>) -> Map<String, Value> {
    match *f {
        Final::Ok => obj("ok", raw),
        Final::Error => obj("error", raw),
        Final::NoCarrier => obj("no_carrier", raw),
        Final::CmeError(code) if vendor == Some(Vendor::Simcom) => {
            let m = obj("cme_error", raw);
            match code {
                ErrorCode::Numeric(n) => with_code(m, n, SimcomCme::from_code(n).meaning()),
                // Verbose texts are the 3GPP set, shared by both vendors.
                ErrorCode::Text(t) => match CmeError::from_text(t) {
                    Some(CmeError::Equipment(e)) => with_code(m, e.code(), e.meaning()),
                    _ => with_meaning(m, &String::from_utf8_lossy(t)),
                },
            }
        }
        Final::CmeError(code) => {
            let m = obj("cme_error", raw);
            match code {
                ErrorCode::Numeric(n) => with_code(m, n, CmeError::from_code(n).meaning()),
                ErrorCode::Text(t) => match CmeError::from_text(t) {
                    Some(e) => with_code(m, e.code(), e.meaning()),
                    None => {
                        let mut m = m;
                        m.insert("meaning".into(), json!(String::from_utf8_lossy(t)));
                        m
                    }
                },
            }
        }
        Final::CmsError(code) => {
            let m = obj("cms_error", raw);
            match code {
                ErrorCode::Numeric(n) => with_code(m, n, CmsError::from_code(n).meaning()),
                ErrorCode::Text(t) => {
                    let mut m = m;
                    m.insert("meaning".into(), json!(String::from_utf8_lossy(t)));
                    m
                }
            }
        }
    }
}

/// A prompt.
pub fn prompt(raw: &[u8], p: Prompt) -> Map<String, Value> {
    let mut m = obj("prompt", raw);
    m.insert(
        "prompt".into(),
        json!(match p {
            Prompt::Connect => "connect",
            Prompt::Send => "send",
        }),
    );
    m
}

/// An information line (a command's response, or something unknown).
pub fn line(raw: &[u8], in_command: bool, vendor: Option<Vendor>) -> Map<String, Value> {
    let p = |prefix: &[u8]| Params::after(raw, prefix);
    if vendor == Some(Vendor::Simcom) {
        if let Some(m) = simcom_line(raw) {
            return m;
        }
    }
    if let Some(mut f) = p(b"+CSQ:") {
        let mut m = obj("signal_quality", raw);
        if let (Ok(rssi), Ok(ber)) = (f.u32(), f.u32()) {
            m.insert("rssi".into(), json!(rssi));
            m.insert("ber".into(), json!(ber));
            if rssi != 99 {
                m.insert("dbm".into(), json!(-113 + 2 * rssi as i64));
            }
        }
        return m;
    }
    for (prefix, kind) in [
        (&b"+QFUPL:"[..], "file_upload_result"),
        (&b"+QFDWL:"[..], "file_download_result"),
    ] {
        if let Some(mut f) = p(prefix) {
            let mut m = obj(kind, raw);
            if let (Ok(size), Ok(sum)) = (f.u32(), f.hex_u32()) {
                m.insert("size".into(), json!(size));
                m.insert("checksum".into(), json!(format!("{sum:x}")));
            }
            return m;
        }
    }
    if let Some(mut f) = p(b"+QIGETERROR:") {
        let m = obj("tcpip_error", raw);
        if let Ok(code) = f.u16() {
            return with_code(m, code, describe(code));
        }
        return m;
    }
    if let Some(mut f) = p(b"+QFLST:") {
        let mut m = obj("file_entry", raw);
        if let (Ok(name), Ok(size)) = (f.str(), f.u32()) {
            m.insert("name".into(), json!(name));
            m.insert("size".into(), json!(size));
        }
        return m;
    }
    if let Some(mut f) = p(b"+QFLDS:") {
        let mut m = obj("file_space", raw);
        if let (Ok(free), Ok(total)) = (f.u32(), f.u32()) {
            m.insert("free".into(), json!(free));
            m.insert("total".into(), json!(total));
        }
        return m;
    }
    for (prefix, ty) in [
        (&b"+CREG:"[..], "creg"),
        (&b"+CGREG:"[..], "cgreg"),
        (&b"+CEREG:"[..], "cereg"),
    ] {
        if let Some(mut f) = p(prefix) {
            let mut m = obj("registration_status", raw);
            m.insert("type".into(), json!(ty));
            if let (Ok(n), Ok(stat)) = (f.u8(), f.u8()) {
                m.insert("mode".into(), json!(n));
                reg_status(&mut m, RegStatus::from_code(stat));
            }
            return m;
        }
    }
    if let Some(mut f) = p(b"+QIACT:") {
        let mut m = obj("pdp_context", raw);
        if let (Ok(cid), Ok(state), Ok(ty)) = (f.u8(), f.u8(), f.u8()) {
            m.insert("cid".into(), json!(cid));
            m.insert("active".into(), json!(state == 1));
            m.insert("type".into(), json!(ty));
            if let Ok(Some(ip)) = f.opt_str() {
                m.insert("ip".into(), json!(ip));
            }
        }
        return m;
    }
    if raw.first() == Some(&b'+') || in_command {
        obj("response", raw)
    } else {
        obj("unknown", raw)
    }
}

/// SIMCom information lines this example knows.
fn simcom_line(raw: &[u8]) -> Option<Map<String, Value>> {
    let p = |prefix: &[u8]| Params::after(raw, prefix);
    if let Some(mut f) = p(b"+HTTPREAD:") {
        // `AT+HTTPREAD?`: `+HTTPREAD: LEN,<n>`.
        let mut m = obj("http_read_length", raw);
        if let (Ok(_), Ok(len)) = (f.str(), f.u32()) {
            m.insert("length".into(), json!(len));
        }
        return Some(m);
    }
    if let Some(mut f) = p(b"+CNACT:") {
        let mut m = obj("pdp_context", raw);
        if let Ok(a) = f.u8() {
            match (f.opt_u32(), f.opt_str()) {
                // SIM7070: `<pdpidx>,<status>,"<ip>"`.
                (Ok(Some(status)), Ok(ip)) => {
                    m.insert("cid".into(), json!(a));
                    m.insert("active".into(), json!(status == 1));
                    m.insert("ip".into(), json!(ip));
                }
                // SIM7000: `<status>,"<ip>"`.
                _ => {
                    m.insert("active".into(), json!(a == 1));
                }
            }
        }
        return Some(m);
    }
    for key in ["Manufacturer:", "Model:", "Revision:", "+CGMR:"] {
        if Params::after(raw, key.as_bytes()).is_some() {
            let mut m = obj("identity", raw);
            let field = key.trim_start_matches('+').trim_end_matches(':');
            m.insert("field".into(), json!(field.to_lowercase()));
            return Some(m);
        }
    }
    None
}

/// A payload, summarised.
pub fn payload(bytes: &[u8], announced: Option<u32>) -> Map<String, Value> {
    let desc = format!("<{} payload bytes>", bytes.len());
    let mut m = obj("payload", desc.as_bytes());
    m.insert("bytes".into(), json!(bytes.len()));
    m.insert("announced".into(), json!(announced));
    let head: Vec<u8> = bytes.iter().copied().take(32).collect();
    m.insert("head".into(), json!(esc(&head)));
    m
}
