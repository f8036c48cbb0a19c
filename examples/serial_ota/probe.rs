//! `probe`: who the modem is, whether it is on the network, and which HTTP and FOTA
//! commands its firmware accepts.

use cellular_ota::at::{AtCommand, EncodeError, Encoder, Lines, ParseError, ResponseLines};
use std::time::Duration;

use cellular_ota::bring_up::BringUpEvent;
use cellular_ota::client::Error as ClientError;
use cellular_ota::quectel::ChipFamily;
use cellular_ota::quectel::general::{
    GetFullRevision, Iccid, Identify, Imei, SignalQuality, SimState, SimStatus,
};
use cellular_ota::retry::{Classify, Retry};
use serde_json::{Value, json};

use crate::Global;
use crate::common::{
    Modem, Res, StdClock, Urcs, bring_up_error, bring_up_report, client_error, open_port,
    reg_status, registrations, sync,
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
    let report = collect(&mut c, g, wait);
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

fn collect(c: &mut Modem<'_>, g: &Global, wait: Duration) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("port".into(), g.port.clone().into());
    out.insert("baud".into(), g.baud.into());
    // The crate's bring-up first (URC port, SIM, registration, PDP context 1), then the
    // details, which are read even when bring-up stopped early.
    let mut events = Vec::new();
    let mut urc_port_was = None;
    let mut activated_now = false;
    let brought = bring_up_report(c, g, wait, Some(1), &mut |e| {
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
    out.insert(
        "urc_port".into(),
        json!({ "now": g.urc_port, "was": urc_port_was.clone().unwrap_or_else(|| g.urc_port.clone()) }),
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
    out.insert("imei".into(), field(text(c.send(&Imei))));
    out.insert("iccid".into(), field(text(c.send(&Iccid))));
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
    out.insert("commands".into(), Value::Array(cmds));
    Value::Object(out)
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
    let urc = &r["urc_port"];
    row(
        "URC port",
        if urc["was"] == urc["now"] {
            s(&urc["now"])
        } else {
            format!("{} (was {}: routed here)", s(&urc["now"]), s(&urc["was"]))
        },
    );
    let id = &r["identity"];
    row("manufacturer", or_error(id, |id| s(&id["manufacturer"])));
    row(
        "model",
        or_error(id, |id| {
            format!("{} (chip family: {})", s(&id["model"]), s(&id["family"]))
        }),
    );
    row("revision", or_error(id, |id| s(&id["revision"])));
    row("full revision", or_error(&r["full_revision"], s));
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
                s(&v["ip"]),
                if v["activated_now"].as_bool() == Some(true) {
                    " (activated now)"
                } else {
                    ""
                }
            )
        }),
    );
    println!();
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
