//! The `explain` example, run as a user would: every code in the reference's error tables
//! (quectel-at.md §5) gets a non-empty meaning in `--json` output, and nothing is dropped.

mod example_bin;

use std::io::Write;
use std::process::{Command, Stdio};

use example_bin::example;

fn explain(args: &[&str], input: &str) -> Vec<serde_json::Value> {
    let mut child = Command::new(example("explain"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn range(a: u16, b: u16) -> Vec<u16> {
    (a..=b).collect()
}

#[test]
fn every_reference_code_has_a_meaning() {
    let http = range(701, 730);
    let ftp = range(601, 629);
    let file = [
        400, 401, 402, 403, 405, 406, 407, 409, 410, 411, 413, 414, 416, 417, 418, 419, 420, 421,
        423, 425, 426,
    ];
    let tcpip = range(550, 574);
    let mut cme: Vec<u16> = range(0, 7);
    cme.extend(range(10, 18));
    cme.extend(range(20, 27));
    cme.extend(range(30, 32));
    cme.extend(range(40, 47));
    cme.extend(range(901, 904));
    let mut cms = vec![
        300, 301, 302, 303, 304, 305, 310, 311, 312, 313, 314, 315, 316, 317,
    ];
    cms.extend([318, 320, 321, 322, 330, 331, 332, 340, 500, 510]);
    let mut fota_end: Vec<u16> = vec![0, 1, 501, 502, 504, 505, 506, 507, 510, 511, 552, 553];
    fota_end.extend(range(520, 530));
    fota_end.extend(range(540, 546));

    let mut log = String::new();
    let mut expect = Vec::new();
    for c in http
        .iter()
        .chain(&ftp)
        .chain(&file)
        .chain(&tcpip)
        .chain(&cme)
    {
        log.push_str(&format!("+CME ERROR: {c}\r\n"));
        expect.push(("cme_error", *c));
    }
    for c in &http {
        log.push_str(&format!("+QHTTPGET: {c}\r\n+QHTTPREAD: {c}\r\n"));
        expect.push(("http_get_result", *c));
        expect.push(("http_read_result", *c));
        log.push_str(&format!("+QIND: \"FOTA\",\"HTTPEND\",{c}\r\n"));
        expect.push(("fota_http_end", *c));
    }
    for c in &ftp {
        log.push_str(&format!("+QIND: \"FOTA\",\"FTPEND\",{c}\r\n"));
        expect.push(("fota_ftp_end", *c));
    }
    log.push_str("+QIND: \"FOTA\",\"FILEEND\",500\r\n");
    expect.push(("fota_file_end", 500));
    for c in &cms {
        log.push_str(&format!("+CMS ERROR: {c}\r\n"));
        expect.push(("cms_error", *c));
    }
    for c in &fota_end {
        log.push_str(&format!("+QIND: \"FOTA\",\"END\",{c}\r\n"));
        expect.push(("fota_end", *c));
    }
    // EC200U reports FTP-style codes in HTTPEND (quectel-at.md §5.2).
    log.push_str("+QIND: \"FOTA\",\"HTTPEND\",608\r\n");
    expect.push(("fota_http_end", 608));

    for family in [None, Some("qualcomm"), Some("asr"), Some("unisoc")] {
        let mut args = vec!["--json"];
        if let Some(f) = family {
            args.extend(["--family", f]);
        }
        let events = explain(&args, &log);
        assert_eq!(
            events.len(),
            expect.len(),
            "one event per line, none dropped"
        );
        for (ev, (kind, code)) in events.iter().zip(&expect) {
            assert_eq!(ev["kind"], *kind, "{ev}");
            assert_eq!(ev["code"], *code, "{ev}");
            let meaning = ev["meaning"].as_str().unwrap_or("");
            assert!(!meaning.trim().is_empty(), "no meaning: {ev}");
            assert!(ev["raw"].as_str().is_some_and(|r| !r.is_empty()));
        }
    }
}

#[test]
fn verbose_cme_text_is_mapped_to_its_code() {
    let ev = explain(
        &["--json"],
        "+CME ERROR: SIM not inserted\n+CME ERROR: file already exist\n",
    );
    assert_eq!(ev[0]["code"], 10);
    assert_eq!(ev[1]["code"], 407);
}

#[test]
fn unknown_lines_are_kept_and_payloads_counted() {
    let log = "\r\nHELLO WORLD\r\nAT+QHTTPREAD=80\r\r\nCONNECT\r\nbody\r\nOK\r\n\r\n+QHTTPREAD: 0\r\nAT\r\r\nOK\r\n";
    let ev = explain(&["--json"], log);
    let kinds: Vec<&str> = ev.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "unknown",
            "command",
            "payload",
            "ok",
            "http_read_result",
            "command",
            "ok"
        ]
    );
    assert_eq!(ev[2]["bytes"], 4);
    assert_eq!(ev[0]["raw"], "HELLO WORLD");
}

#[test]
fn lf_only_capture_with_known_length() {
    let log = "AT+QHTTPGET=80\nOK\n+QHTTPGET: 0,200,6\nAT+QHTTPREAD=80\nCONNECT\nab\ncd\nOK\n+QHTTPREAD: 0\n";
    let ev = explain(&["--json"], log);
    let payload = ev.iter().find(|e| e["kind"] == "payload").unwrap();
    assert_eq!(payload["bytes"], 6);
    assert_eq!(payload["announced"], 6);
    let get = ev.iter().find(|e| e["kind"] == "http_get_result").unwrap();
    assert_eq!(get["http_status"], 200);
    assert_eq!(get["content_length"], 6);
}

#[test]
fn a_last_line_without_its_line_end_is_reported_with_its_kind() {
    let out = explain(&["--json"], "AT+CPIN?\r\r\n+CPIN: READY");
    let last = out.last().unwrap();
    assert_eq!(last["raw"], "+CPIN: READY", "{out:?}");
    assert_eq!(last["unterminated"], true, "{out:?}");
    assert_ne!(last["kind"], "unknown", "{out:?}");
    // The same for a final result and for a line nothing classifies.
    let out = explain(&["--json"], "AT\r\r\nOK");
    assert_eq!(out.last().unwrap()["raw"], "OK");
    assert_eq!(out.last().unwrap()["unterminated"], true);
    let out = explain(&["--json"], "\r\nRDY\r\nsome noise");
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[1]["raw"], "some noise");
    assert_eq!(out[1]["kind"], "unknown");
    // A line end after it: nothing is marked.
    let out = explain(&["--json"], "\r\n+CPIN: READY\r\n");
    assert_eq!(out.last().unwrap()["unterminated"], serde_json::Value::Null);
}

// SIMCom captures: the vendor is told by the lines, payload pieces are counted, and codes
// that collide with Quectel's are decoded with SIMCom's tables.

use cellular_ota::at::{Final, Instant};
use cellular_ota::log_decoder::{LogDecoder, LogEvent, Vendor, VendorUrc};
use cellular_ota::simcom::Family;
use cellular_ota::simcom::urc::Urc as SimcomUrc;
use cellular_ota::transcript::{Direction, decode_line};

fn fixture(name: &str) -> String {
    format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// What the public decoder made of a transcript: its SIMCom URCs, payloads, finals, and the
/// vendor and family it settled on.
#[derive(Default, Debug)]
struct Decoded {
    urcs: Vec<SimcomUrc<'static>>,
    quectel_urcs: usize,
    payloads: Vec<(Vec<Option<u32>>, Vec<u8>)>,
    finals: Vec<String>,
    lines: Vec<Vec<u8>>,
    vendor: Option<Vendor>,
    family: Option<Family>,
}

fn decode_transcript(name: &str) -> Decoded {
    let text = std::fs::read(fixture(name)).unwrap();
    let mut rx = [0u8; 1024];
    let mut d = LogDecoder::new(&mut rx);
    let mut out = Decoded::default();
    let mut payload: Option<(Vec<Option<u32>>, Vec<u8>)> = None;
    let mut buf = vec![0u8; text.len()];
    let mut now = 0u64;
    let mut drain = |d: &mut LogDecoder<'_>, now: Instant, out: &mut Decoded| {
        while let Some(ev) = d.poll(now) {
            match ev {
                LogEvent::PayloadStart { len } => {
                    payload.get_or_insert_with(Default::default).0.push(len)
                }
                LogEvent::Payload(b) => payload
                    .get_or_insert_with(Default::default)
                    .1
                    .extend_from_slice(b),
                LogEvent::PayloadEnd => out.payloads.push(payload.take().unwrap()),
                LogEvent::Urc {
                    urc: VendorUrc::Simcom(u),
                    line,
                } => {
                    // Keep the typed value: re-parse from a leaked copy of the line.
                    let line: &'static [u8] = Box::leak(line.to_vec().into_boxed_slice());
                    assert_eq!(SimcomUrc::parse(line), Some(Ok(u)));
                    out.urcs.push(SimcomUrc::parse(line).unwrap().unwrap());
                }
                LogEvent::Urc { .. } => out.quectel_urcs += 1,
                LogEvent::Final(f) => out.finals.push(format!("{f:?}")),
                LogEvent::Line(l) => out.lines.push(l.to_vec()),
                LogEvent::MalformedUrc { line, .. } => panic!("malformed {line:?}"),
                LogEvent::Overflow { .. } => panic!("overflow"),
                LogEvent::Command(_) | LogEvent::Prompt(_) => {}
            }
        }
    };
    for line in text.split(|&b| b == b'\n') {
        match decode_line(line, &mut buf).unwrap() {
            None => {}
            Some((Direction::FromModem, n)) => {
                now += 10;
                let mut pos = 0;
                while pos < n {
                    pos += d.feed(&buf[pos..n]);
                    drain(&mut d, Instant::from_millis(now), &mut out);
                }
            }
            Some((Direction::ToModem, n)) => {
                now += 1000;
                drain(&mut d, Instant::from_millis(now), &mut out);
                d.host_command(&buf[..n]);
            }
        }
    }
    drain(&mut d, Instant::MAX, &mut out);
    assert!(payload.is_none(), "{name}: a payload did not end");
    out.vendor = d.vendor();
    out.family = d.simcom_family();
    out
}

fn http_ok(status: u16, len: u32) -> Result<cellular_ota::update::HttpStatus, ()> {
    Ok(cellular_ota::update::HttpStatus {
        status,
        content_length: Some(len),
    })
}

fn http_action(u: &SimcomUrc<'_>) -> (u8, Result<cellular_ota::update::HttpStatus, ()>) {
    match u {
        SimcomUrc::HttpAction(a) => (a.method, a.result.map_err(|_| ())),
        other => panic!("not +HTTPACTION: {other:?}"),
    }
}

#[test]
fn t1_sim7600_http_through_the_decoder() {
    let d = decode_transcript("simcom_t1_sim7600_http.txt");
    assert_eq!(d.vendor, Some(Vendor::Simcom));
    assert_eq!(d.family, Some(Family::Sim7600), "told by +HTTPHEAD: DATA,");
    assert_eq!(d.urcs.len(), 1);
    assert_eq!(http_action(&d.urcs[0]), (0, http_ok(200, 22505)));
    assert_eq!(d.payloads.len(), 2);
    let (pieces, head) = &d.payloads[0];
    assert_eq!(pieces, &[Some(387)]);
    assert_eq!(head.len(), 387);
    assert!(head.starts_with(b"HTTP/1.1 200 OK\r\n") && head.ends_with(b"bytes\r\n\r\n"));
    assert_eq!(
        d.payloads[1],
        (vec![Some(16)], b"<!DOCTYPE html P".to_vec())
    );
    assert!(d.lines.is_empty(), "{:?}", d.lines);
    assert!(d.finals.iter().all(|f| f == "Ok"));
}

#[test]
fn t2_a76xx_http_through_the_decoder() {
    let d = decode_transcript("simcom_t2_a76xx_http.txt");
    assert_eq!(d.vendor, Some(Vendor::Simcom));
    // Nothing in T2 separates A76xx from SIM800-style firmware: no family is claimed.
    assert_eq!(d.family, None);
    assert_eq!(http_action(&d.urcs[0]), (0, http_ok(200, 22505)));
    assert_eq!(http_action(&d.urcs[1]), (1, http_ok(200, 2)));
    assert_eq!(d.urcs[2], SimcomUrc::HttpPeerClosed);
    let sizes: Vec<usize> = d.payloads.iter().map(|p| p.1.len()).collect();
    assert_eq!(sizes, [387, 500, 377, 2]);
    // The body ends inside a two-byte GB2312 character, as the note's PDF shows.
    assert_eq!(d.payloads[1].1.last(), Some(&0xce));
    // The POST's body is literally "OK": a payload, not a result code.
    assert_eq!(d.payloads[3], (vec![Some(2)], b"OK".to_vec()));
    assert_eq!(d.finals.len(), 11, "{:?}", d.finals);
    assert!(d.lines.is_empty(), "{:?}", d.lines);
}

#[test]
fn t3_sim7070_sh_through_the_decoder() {
    let d = decode_transcript("simcom_t3_sim7070_sh.txt");
    assert_eq!(d.vendor, Some(Vendor::Simcom));
    assert_eq!(d.family, Some(Family::Sh));
    assert_eq!(d.urcs[0], SimcomUrc::ShState(1));
    let SimcomUrc::ShReq { method, result } = d.urcs[1] else {
        panic!("{:?}", d.urcs[1]);
    };
    assert_eq!((method, result.map_err(|_| ())), ("GET", http_ok(200, 387)));
    assert_eq!(d.payloads.len(), 1);
    let (pieces, body) = &d.payloads[0];
    assert_eq!(pieces, &[Some(387)]);
    assert_eq!(body.len(), 387);
    assert!(body.starts_with(b"{\n  \"args\"") && body.ends_with(b"}\n"));
    assert!(d.lines.is_empty(), "{:?}", d.lines);
}

#[test]
fn simcom_fixtures_have_no_unknown_lines() {
    for (name, family, payloads) in [
        ("simcom_t1_sim7600_http.txt", Some("sim7600"), vec![387, 16]),
        ("simcom_t2_a76xx_http.txt", None, vec![387, 500, 377, 2]),
        ("simcom_t3_sim7070_sh.txt", Some("sh"), vec![387]),
    ] {
        let ev = explain(&["--json", &fixture(name)], "");
        assert!(!ev.is_empty());
        for e in &ev {
            assert_ne!(e["kind"], "unknown", "{name}: {e}");
            assert_ne!(e["kind"], "payload_truncated", "{name}: {e}");
            assert_eq!(e["vendor"], "simcom", "{name}: {e}");
            assert_eq!(e["simcom_family"].as_str(), family, "{name}: {e}");
        }
        let got: Vec<u64> = ev
            .iter()
            .filter(|e| e["kind"] == "payload")
            .map(|e| e["bytes"].as_u64().unwrap())
            .collect();
        assert_eq!(got, payloads, "{name}");
        for e in ev.iter().filter(|e| e["kind"] == "payload") {
            assert_eq!(e["announced"], e["bytes"], "{name}: {e}");
        }
    }
    let t3 = explain(&["--json", &fixture("simcom_t3_sim7070_sh.txt")], "");
    let req = t3
        .iter()
        .find(|e| e["kind"] == "sh_request_result")
        .unwrap();
    assert_eq!(req["method"], "GET");
    assert_eq!(req["http_status"], 200);
    assert_eq!(req["content_length"], 387);
}

#[test]
fn a_quectel_log_is_still_told_as_quectel() {
    let ev = explain(&["--json", &fixture("http_get_read_known_length.txt")], "");
    assert!(ev.iter().all(|e| e["vendor"] == "quectel"), "{ev:?}");
    assert!(ev.iter().all(|e| e["simcom_family"].is_null()));
    let d = decode_transcript("http_get_read_known_length.txt");
    assert_eq!(d.vendor, Some(Vendor::Quectel));
    assert_eq!(d.family, None);
    assert!(d.urcs.is_empty() && d.quectel_urcs == 3, "{d:?}");
    // A log that tells nothing keeps Quectel's tables, and says so by naming no vendor.
    let ev = explain(&["--json"], "+CME ERROR: 601\r\n");
    assert_eq!(ev[0]["meaning"], "unknown FTP error");
    assert!(ev[0]["vendor"].is_null());
}

#[test]
fn colliding_codes_follow_the_vendor() {
    // SIMCom: AT+CNACT (an SH-family command) tells the vendor; the error before it is
    // decoded with SIMCom's table too (the example settles the vendor in a first pass).
    let log = "+CME ERROR: 601\r\nAT+CNACT=0,1\r\r\nOK\r\n\r\n+APP PDP: 0,ACTIVE\r\n";
    let ev = explain(&["--json"], log);
    assert_eq!(ev[0]["code"], 601);
    assert_eq!(ev[0]["meaning"], "unrecognized command");
    assert_eq!(ev[3]["kind"], "app_pdp");
    assert_eq!(ev[3]["active"], true);
    assert!(ev.iter().all(|e| e["vendor"] == "simcom"));
    // The same code in +HTTPACTION's status field is the module status table.
    let ev = explain(&["--json"], "\r\n+HTTPACTION: 0,601,0\r\n");
    assert_eq!(ev[0]["kind"], "http_action_result");
    assert_eq!(ev[0]["code"], 601);
    assert_eq!(ev[0]["meaning"], "network error");
    // Quectel: AT+QHTTPGET tells it.
    let ev = explain(&["--json"], "AT+QHTTPGET=80\r\r\n+CME ERROR: 601\r\n");
    assert_eq!(ev[1]["meaning"], "unknown FTP error");
    assert_eq!(ev[1]["vendor"], "quectel");
}

#[test]
fn a_modem_only_simcom_capture_is_framed_by_its_headers() {
    // Echo off, no host side: the payload headers alone start the pieces. Two pieces, the
    // first holding OK and CR LF with the next header right after it, and a URC between OK
    // and the first piece.
    let log = b"\r\n*ATREADY: 1\r\n\r\n+CPIN: READY\r\n\r\nOK\r\n\r\n+HTTP_PEER_CLOSED\r\n\
                \r\n+HTTPREAD: 4\r\nOK\r\n+HTTPREAD: 3\r\nabc\r\n+HTTPREAD: 0\r\n\
                \r\n+CME ERROR: 604\r\n";
    let mut rx = [0u8; 64];
    let mut d = LogDecoder::new(&mut rx);
    let mut pos = 0;
    let mut body = Vec::new();
    let mut pieces = Vec::new();
    let mut finals = Vec::new();
    let mut ends = 0;
    // One byte at a time.
    while pos < log.len() {
        pos += d.feed(&log[pos..pos + 1]);
        while let Some(ev) = d.poll(Instant::ZERO) {
            match ev {
                LogEvent::PayloadStart { len } => pieces.push(len),
                LogEvent::Payload(b) => body.extend_from_slice(b),
                LogEvent::PayloadEnd => ends += 1,
                LogEvent::Final(f) => finals.push(matches!(f, Final::CmeError(_))),
                LogEvent::Line(l) => panic!("line {l:?}"),
                _ => {}
            }
        }
    }
    assert_eq!(pieces, [Some(4), Some(3)]);
    assert_eq!(body, b"OK\r\nabc");
    assert_eq!(ends, 1);
    assert_eq!(finals, [false, true]);
    assert_eq!(d.vendor(), Some(Vendor::Simcom));
    assert_eq!(d.simcom_family(), Some(Family::A76xx));
}

#[test]
fn the_identity_answer_names_the_family() {
    let log = "AT+SIMCOMATI\r\r\nManufacturer: SIMCOM INCORPORATED\r\nModel: SIMCOM_SIM7600G-H\r\n\
               Revision: LE20B04SIM7600G22\r\n\r\nOK\r\n";
    let ev = explain(&["--json"], log);
    assert!(ev.iter().all(|e| e["simcom_family"] == "sim7600"), "{ev:?}");
    assert_eq!(ev[2]["kind"], "identity");
    assert_eq!(ev[2]["field"], "model");
    // AT+CGMR alone: SIM7070.
    let ev = explain(&["--json"], "\r\nRevision:1951B03SIM7070\r\n\r\nOK\r\n");
    assert_eq!(ev[0]["vendor"], "simcom");
    assert_eq!(ev[0]["simcom_family"], "sh");
}

#[test]
fn any_bytes_decode_without_panic() {
    // A small deterministic sweep over SIMCom-shaped noise (the fuzz target covers the
    // Quectel view; this drives the vendor-neutral decoder with SIMCom headers).
    let words: [&[u8]; 12] = [
        b"\r\n",
        b"+HTTPREAD: DATA,3\r\n",
        b"+HTTPREAD: 0\r\n",
        b"+SHREAD: 2\r\n",
        b"+HTTPHEAD: 5\r\n",
        b"OK\r\n",
        b"AT+SHREAD=0,4\r",
        b"AT+HTTPREAD=0,9\r",
        b"*ATREADY: 1\r\n",
        b"CONNECT\r\n",
        b"+QHTTPGET: 0,200,3\r\n",
        b"\xff\x00ab",
    ];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..2000 {
        let mut input = Vec::new();
        for _ in 0..12 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            input.extend_from_slice(words[(seed % words.len() as u64) as usize]);
        }
        let mut rx = [0u8; 24];
        let mut d = LogDecoder::new(&mut rx);
        let (mut pos, mut open) = (0, false);
        let mut guard = 0;
        while pos < input.len() {
            let n = d.feed(&input[pos..]);
            pos += n;
            let mut events = 0;
            while let Some(ev) = d.poll(Instant::from_millis(guard)) {
                events += 1;
                match ev {
                    LogEvent::PayloadStart { .. } => open = true,
                    LogEvent::PayloadEnd => {
                        assert!(open, "end outside a payload");
                        open = false;
                    }
                    LogEvent::Payload(b) => assert!(open && !b.is_empty()),
                    _ => {}
                }
            }
            assert!(n > 0 || events > 0, "stalled on {input:?}");
            guard += 1;
        }
        while d.poll(Instant::MAX).is_some() {}
        d.end_of_capture();
        while d.poll(Instant::MAX).is_some() {}
    }
}
