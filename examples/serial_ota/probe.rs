//! `probe`: who the modem is (Quectel or SIMCom, and on SIMCom the command set), whether it
//! is on the network, and which HTTP and FOTA commands its firmware accepts (Quectel) or the
//! command set implies (SIMCom).

use cellular_ota::at::{AtCommand, EncodeError, Encoder, Lines, ParseError, ResponseLines};
use std::time::Duration;

use cellular_ota::bring_up::BringUpEvent;
use cellular_ota::client::Error as ClientError;
use cellular_ota::quectel::ChipFamily;
use cellular_ota::quectel::general::{
    GetFullRevision, Iccid, Identify, Imei, SignalQuality, SimState, SimStatus,
};
use cellular_ota::retry::{Classify, Retry};
use cellular_ota::simcom::Family as SimcomFamily;
use cellular_ota::simcom::general::{IccidQuery, ModelQuery, RevisionQuery, SimcomAti};
use cellular_ota::simcom::http_modem::{A76XX_MAX_BODY, SH_MAX_BODY};
use serde_json::{Value, json};

use crate::Global;
use crate::common::{
    Detected, Modem, Res, StdClock, Urcs, Vendor, bring_up_error, bring_up_report, client_error,
    detect_vendor, open_port, reg_status, registrations, simcom_family_name, sync,
};

/// A command's test form (`AT+X=?`): answers `OK` (with its parameter ranges) where the
/// firmware has the command, `ERROR` where it does not.
struct TestForm {
    line: &'static str,
    prefix: &'static str,
}

impl AtCommand for TestForm {
    type Response<'a> = Vec<String>;
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(self.line.as_bytes())
    }
    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(self.prefix.as_bytes())
    }
    fn parse<'a>(&self, lines: Lines<'a>) -> Result<Vec<String>, ParseError> {
        Ok(lines
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect())
    }
}

/// The commands probed, with what the crate uses them for.
const PROBES: [(TestForm, &str); 6] = [
    (
        TestForm {
            line: "AT+QHTTPURL=?",
            prefix: "+QHTTPURL:",
        },
        "HTTP(S) URL",
    ),
    (
        TestForm {
            line: "AT+QHTTPGET=?",
            prefix: "+QHTTPGET:",
        },
        "HTTP GET (stream strategy)",
    ),
    (
        TestForm {
            line: "AT+QHTTPGETEX=?",
            prefix: "+QHTTPGETEX:",
        },
        "ranged GET (ranged strategy without a Range: header)",
    ),
    (
        TestForm {
            line: "AT+QHTTPREADFILE=?",
            prefix: "+QHTTPREADFILE:",
        },
        "download into the module's UFS (modem-file strategy)",
    ),
    (
        TestForm {
            line: "AT+QFOTADL=?",
            prefix: "+QFOTADL:",
        },
        "module firmware upgrade (fota)",
    ),
    (
        TestForm {
            line: "AT+QSSLCFG=?",
            prefix: "+QSSLCFG:",
        },
        "TLS settings (https:// URLs)",
    ),
];

fn sim_text(s: SimState<'_>) -> String {
    match s {
        SimState::Ready => "READY".into(),
        SimState::SimPin => "SIM PIN (enter the PIN)".into(),
        SimState::SimPuk => "SIM PUK (blocked: enter the PUK)".into(),
        SimState::PhSimPin => "PH-SIM PIN".into(),
        SimState::SimPin2 => "SIM PIN2".into(),
        SimState::SimPuk2 => "SIM PUK2".into(),
        SimState::NotInserted => "NOT INSERTED".into(),
        SimState::NotReady => "NOT READY".into(),
        SimState::Other(t) => t.to_string(),
        other => format!("{other:?}"),
    }
}

fn family_name(f: Option<ChipFamily>) -> &'static str {
    match f {
        Some(ChipFamily::Qualcomm) => "qualcomm",
        Some(ChipFamily::Asr) => "asr",
        Some(ChipFamily::Unisoc) => "unisoc",
        None => "unknown",
    }
}

/// `Ok(v)` as `{ "value": v }`, `Err(e)` as `{ "error": e }`.
fn field<T: Into<Value>>(r: Result<T, String>) -> Value {
    match r {
        Ok(v) => v.into(),
        Err(e) => json!({ "error": e }),
    }
}

pub fn run(g: &Global, as_json: bool, wait: Duration) -> Res<()> {
    let port = open_port(g)?;
    let (mut rx, mut resp) = (vec![0u8; 4096], vec![0u8; 1024]);
    let urcs = Urcs { verbose: g.verbose };
    let mut c: Modem<'_> = Modem::new(port, StdClock::new(), &mut rx, &mut resp, urcs);
    sync(&mut c, g)?;
    let detected = detect_vendor(&mut c, g)?;
    let report = collect(&mut c, g, &detected, wait);
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print_table(&report);
    }
    Ok(())
}

fn text(r: Result<&str, ClientError<crate::port::PortError>>) -> Result<String, String> {
    r.map(str::to_string).map_err(|e| client_error(&e))
}

fn collect(c: &mut Modem<'_>, g: &Global, detected: &Detected, wait: Duration) -> Value {
    let vendor = detected.vendor;
    let mut out = serde_json::Map::new();
    out.insert("port".into(), g.port.clone().into());
    out.insert("baud".into(), g.baud.into());
    out.insert("vendor".into(), vendor.name().into());
    // The crate's bring-up first (URC port, SIM, registration, PDP context 1), then the
    // details, which are read even when bring-up stopped early.
    let mut events = Vec::new();
    let mut urc_port_was = None;
    let mut activated_now = false;
    let (brought, simcom) = bring_up_report(c, g, vendor, wait, Some(1), &mut |e| {
        match e {
            BringUpEvent::UrcPortForced { was } => urc_port_was = Some(was.to_string()),
            BringUpEvent::DataActivated => activated_now = true,
            _ => {}
        }
        events.push(format!("{e:?}"));
    });
    let bring = match &brought {
        Ok(_) => json!({ "ok": true, "events": events }),
        Err(e) => json!({
            "ok": false,
            "stage": e.stage.to_string(),
            "failure": format!("{:?}", e.failure),
            "retry": match e.retry() { Retry::Transient => "transient", Retry::Permanent => "permanent" },
            "code": e.code(),
            "meaning": e.meaning(),
            "error": bring_up_error(e),
            "events": events,
        }),
    };
    out.insert("bring_up".into(), bring);
    if vendor == Vendor::Simcom {
        // SIMCom modules send URCs on every port: nothing to route, no `urc_port`.
        simcom_identity(c, &mut out, detected, simcom);
    } else {
        quectel_identity(c, &mut out, g, urc_port_was);
    }
    out.insert("imei".into(), field(text(c.send(&Imei))));
    let iccid = match (vendor, out.get("simcom_family").and_then(Value::as_str)) {
        (Vendor::Quectel, _) => c.send(&Iccid),
        (Vendor::Simcom, Some("sim7600" | "a76xx")) => c.send(&IccidQuery::Ciccid),
        (Vendor::Simcom, _) => c.send(&IccidQuery::Ccid),
    };
    out.insert("iccid".into(), field(text(iccid)));
    let sim = c
        .send(&SimStatus)
        .map(|s| json!({ "state": sim_text(s), "ready": s.is_ready() }))
        .map_err(|e| client_error(&e));
    out.insert("sim".into(), field(sim));
    let csq = c
        .send(&SignalQuality)
        .map(|q| json!({ "rssi": q.rssi, "ber": q.ber, "dbm": q.dbm() }))
        .map_err(|e| client_error(&e));
    out.insert("signal".into(), field(csq));
    let mut regs = serde_json::Map::new();
    for (kind, r) in registrations(c) {
        let name = String::from_utf8_lossy(kind.command())
            .trim_start_matches('+')
            .to_ascii_lowercase();
        let v = r.map(|r| {
            json!({
                "stat": r.status.code(),
                "status": reg_status(r.status),
                "registered": r.is_registered(),
                "area_code": r.area_code.map(|a| format!("{a:X}")),
                "cell_id": r.cell_id.map(|a| format!("{a:X}")),
                "access_tech": r.access_tech.map(|a| a.code()),
            })
        });
        regs.insert(name, field(v));
    }
    out.insert("registration".into(), Value::Object(regs));
    let pdp = match &brought {
        Ok(info) => Ok(json!({
            "cid": 1,
            "apn": g.apn,
            "active": true,
            "ip": info.ip.as_str(),
            "activated_now": activated_now,
        })),
        Err(e) => Err(bring_up_error(e)),
    };
    out.insert("pdp".into(), field(pdp));
    if vendor == Vendor::Quectel {
        out.insert("commands".into(), quectel_commands(c));
    }
    Value::Object(out)
}

/// ATI (manufacturer, model, revision, chip family), the URC port and `AT+QGMR`.
fn quectel_identity(
    c: &mut Modem<'_>,
    out: &mut serde_json::Map<String, Value>,
    g: &Global,
    urc_port_was: Option<String>,
) {
    out.insert(
        "urc_port".into(),
        json!({ "now": g.urc_port, "was": urc_port_was.unwrap_or_else(|| g.urc_port.clone()) }),
    );
    let identity = c
        .send(&Identify)
        .map(|id| {
            json!({
                "manufacturer": id.manufacturer,
                "model": id.model,
                "revision": id.revision,
                "family": family_name(id.family()),
            })
        })
        .map_err(|e| client_error(&e));
    out.insert("identity".into(), field(identity));
    out.insert(
        "full_revision".into(),
        field(text(c.send(&GetFullRevision))),
    );
}

/// Model and revision as the SIMCom bring-up reads them (`AT+SIMCOMATI`, else `AT+CGMM` and
/// `AT+CGMR`), the manufacturer `AT+CGMI` named, the command set (`simcom_family`: the one
/// bring-up used, else the one the identity implies) and what that set uses
/// (`command_set`).
fn simcom_identity(
    c: &mut Modem<'_>,
    out: &mut serde_json::Map<String, Value>,
    detected: &Detected,
    brought: Option<SimcomFamily>,
) {
    let mut model_revision = || -> Result<(String, String), String> {
        if !matches!(brought, Some(SimcomFamily::Sh | SimcomFamily::Sim800)) {
            match c.send(&SimcomAti) {
                Ok(id) => return Ok((id.model.to_string(), id.revision.to_string())),
                Err(ClientError::Rejected(_) | ClientError::Parse(_)) => {}
                Err(e) => return Err(client_error(&e)),
            }
        }
        let model = c
            .send(&ModelQuery)
            .map(str::to_string)
            .map_err(|e| client_error(&e))?;
        let revision = c
            .send(&RevisionQuery)
            .map(str::to_string)
            .map_err(|e| client_error(&e))?;
        Ok((model, revision))
    };
    let id = model_revision();
    let family = brought.or_else(|| {
        id.as_ref()
            .ok()
            .and_then(|(m, r)| SimcomFamily::from_identity(m, r))
    });
    let family_value = family.map(simcom_family_name);
    let identity = id.map(|(model, revision)| {
        json!({
            "manufacturer": detected.manufacturer,
            "model": model,
            "revision": revision,
            "family": family_value,
        })
    });
    out.insert("identity".into(), field(identity));
    out.insert("simcom_family".into(), family_value.into());
    out.insert(
        "command_set".into(),
        family.map_or(Value::Null, command_set),
    );
}

/// What the crate sends to a module of `family` (`cellular_ota::simcom`'s bring-up and
/// `SimcomHttp`).
fn command_set(family: SimcomFamily) -> Value {
    let (identity, iccid, data, http, ranges, https) = match family {
        SimcomFamily::Sim7600 | SimcomFamily::A76xx => (
            "AT+SIMCOMATI",
            "AT+CICCID",
            "AT+CGDCONT, AT+CGACT",
            "AT+HTTPINIT, AT+HTTPPARA, AT+HTTPACTION, AT+HTTPREAD=<offset>,<n>",
            "Range: header in AT+HTTPPARA=\"USERDATA\"",
            "AT+CSSLCFG, AT+CCERTDOWN, AT+HTTPPARA=\"SSLCFG\"",
        ),
        SimcomFamily::Sh => (
            "AT+CGMM, AT+CGMR",
            "AT+CCID",
            "AT+CNCFG, AT+CNACT",
            "AT+SHCONF, AT+SHCONN, AT+SHREQ, AT+SHREAD",
            "Range: header with AT+SHAHEAD",
            "refused (server certificates are not uploaded to AT+SH* yet)",
        ),
        _ => (
            "AT+CGMM, AT+CGMR",
            "AT+CCID",
            "AT+SAPBR",
            "AT+HTTPINIT, AT+HTTPPARA, AT+HTTPACTION, AT+HTTPREAD",
            "Range: header in AT+HTTPPARA=\"USERDATA\"",
            "refused (the SIM800-style set cannot verify a server)",
        ),
    };
    let max_body = match family {
        SimcomFamily::A76xx => Some(A76XX_MAX_BODY),
        SimcomFamily::Sh => Some(SH_MAX_BODY),
        _ => None,
    };
    json!({
        "family": simcom_family_name(family),
        "identity": identity,
        "iccid": iccid,
        "data": data,
        "http": http,
        "ranges": ranges,
        "max_body": max_body,
        "https": https,
        "module_fota": match family {
            SimcomFamily::A76xx => "AT+CFOTA (serial_ota fota URL)",
            SimcomFamily::Sh => "AT+HTTPTOFS + AT+CFOTA=1 (serial_ota fota URL)",
            _ => "none this crate drives",
        },
    })
}

/// The test forms of [`PROBES`], each supported, refused or unanswered.
fn quectel_commands(c: &mut Modem<'_>) -> Value {
    let mut cmds = Vec::new();
    for (probe, purpose) in &PROBES {
        let v = match c.send(probe) {
            Ok(lines) => json!({
                "command": probe.line,
                "purpose": purpose,
                "supported": true,
                "answer": lines,
            }),
            Err(ClientError::Rejected(r)) => json!({
                "command": probe.line,
                "purpose": purpose,
                "supported": false,
                "answer": [crate::common::rejection(&r)],
            }),
            Err(e) => json!({
                "command": probe.line,
                "purpose": purpose,
                "supported": null,
                "error": client_error(&e),
            }),
        };
        cmds.push(v);
    }
    Value::Array(cmds)
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        v => v.to_string(),
    }
}

/// `value` or `error: ...`.
fn or_error(v: &Value, f: impl FnOnce(&Value) -> String) -> String {
    match v.get("error") {
        Some(e) => format!("error: {}", s(e)),
        None => f(v),
    }
}

fn print_table(r: &Value) {
    let row = |k: &str, v: String| println!("{k:<16} {v}");
    row(
        "port",
        format!("{} at {} baud", s(&r["port"]), s(&r["baud"])),
    );
    let up = &r["bring_up"];
    row(
        "bring-up",
        if up["ok"] == true {
            "ok".into()
        } else {
            format!("failed: {} ({})", s(&up["error"]), s(&up["retry"]))
        },
    );
    let simcom = r["vendor"] == "simcom";
    let id = &r["identity"];
    if simcom {
        row(
            "manufacturer",
            or_error(id, |id| format!("{} (SIMCom)", s(&id["manufacturer"]))),
        );
        row(
            "model",
            or_error(id, |id| {
                format!("{} (command set: {})", s(&id["model"]), s(&id["family"]))
            }),
        );
        row("revision", or_error(id, |id| s(&id["revision"])));
    } else {
        let urc = &r["urc_port"];
        row(
            "URC port",
            if urc["was"] == urc["now"] {
                s(&urc["now"])
            } else {
                format!("{} (was {}: routed here)", s(&urc["now"]), s(&urc["was"]))
            },
        );
        row("manufacturer", or_error(id, |id| s(&id["manufacturer"])));
        row(
            "model",
            or_error(id, |id| {
                format!("{} (chip family: {})", s(&id["model"]), s(&id["family"]))
            }),
        );
        row("revision", or_error(id, |id| s(&id["revision"])));
        row("full revision", or_error(&r["full_revision"], s));
    }
    row("IMEI", or_error(&r["imei"], s));
    row("ICCID", or_error(&r["iccid"], s));
    row("SIM", or_error(&r["sim"], |v| s(&v["state"])));
    row(
        "signal",
        or_error(&r["signal"], |v| {
            let dbm = match v["dbm"].as_i64() {
                Some(d) => format!("{d} dBm"),
                None => "unknown".into(),
            };
            let ber = match v["ber"].as_u64() {
                Some(b) if b <= 7 => format!("class {b}"),
                _ => "unknown".into(),
            };
            format!("CSQ {} ({dbm}), BER {ber}", s(&v["rssi"]))
        }),
    );
    for (name, label) in [
        ("cereg", "LTE (CEREG)"),
        ("cgreg", "packet (CGREG)"),
        ("creg", "circuit (CREG)"),
    ] {
        let v = &r["registration"][name];
        row(
            label,
            or_error(v, |v| {
                let mut t = s(&v["status"]);
                if !v["area_code"].is_null() {
                    t.push_str(&format!(
                        ", area {} cell {}",
                        s(&v["area_code"]),
                        s(&v["cell_id"])
                    ));
                }
                t
            }),
        );
    }
    row(
        "PDP context",
        or_error(&r["pdp"], |v| {
            format!(
                "{} up, APN {}, IP {}{}",
                s(&v["cid"]),
                s(&v["apn"]),
                match v["ip"].as_str() {
                    Some("") => "not reported".into(),
                    _ => s(&v["ip"]),
                },
                if v["activated_now"].as_bool() == Some(true) {
                    " (activated now)"
                } else {
                    ""
                }
            )
        }),
    );
    println!();
    if simcom {
        print_command_set(&r["command_set"]);
        return;
    }
    println!(
        "{:<20} {:<12} {:<52} answer",
        "command", "firmware", "used for"
    );
    if let Some(cmds) = r["commands"].as_array() {
        for c in cmds {
            let state = match c["supported"].as_bool() {
                Some(true) => "supported",
                Some(false) => "unsupported",
                None => "no answer",
            };
            let answer = match c.get("error") {
                Some(e) => s(e),
                None => c["answer"]
                    .as_array()
                    .map(|a| a.iter().map(s).collect::<Vec<_>>().join(" | "))
                    .unwrap_or_default(),
            };
            let answer = if answer.is_empty() {
                "OK".to_string()
            } else {
                answer
            };
            println!(
                "{:<20} {:<12} {:<52} {answer}",
                s(&c["command"]),
                state,
                s(&c["purpose"])
            );
        }
    }
}

/// What the crate sends to this SIMCom module, by step.
fn print_command_set(set: &Value) {
    if set.is_null() {
        println!(
            "command set      unknown: the identity does not say; give --simcom-family \
             sim7600|a76xx|sh|sim800"
        );
        return;
    }
    let row = |k: &str, v: String| println!("{k:<16} {v}");
    row("command set", s(&set["family"]));
    row("  identity", s(&set["identity"]));
    row("  ICCID", s(&set["iccid"]));
    row("  data", s(&set["data"]));
    row("  HTTP", s(&set["http"]));
    row("  ranges", s(&set["ranges"]));
    row(
        "  body limit",
        match set["max_body"].as_u64() {
            Some(n) => format!("{n} bytes per response (larger images are fetched in ranges)"),
            None => "none".into(),
        },
    );
    row("  HTTPS", s(&set["https"]));
    row("  module FOTA", s(&set["module_fota"]));
}
