//! The `explain` example, run as a user would: every code in the reference's error tables
//! (quectel-at.md §5) gets a non-empty meaning in `--json` output, and nothing is dropped.

use std::io::Write;
use std::process::{Command, Stdio};

fn explain(args: &[&str], input: &str) -> Vec<serde_json::Value> {
    // `cargo test` builds the examples next to the test binaries.
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir
        .join("examples")
        .join(format!("explain{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        // Running this test alone (`cargo test --test explain`) does not build examples.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = Command::new(cargo)
            .args(["build", "--example", "explain"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap()
            .success();
        assert!(ok && bin.exists(), "{} not built", bin.display());
    }
    let mut child = Command::new(bin)
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
