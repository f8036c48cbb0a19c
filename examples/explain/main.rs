//! Decodes a captured Quectel or SIMCom modem log and says what every line means.
//!
//! ```text
//! cargo run --example explain [--json] [--family qualcomm|asr|unisoc] [FILE]
//! ```
//!
//! Reads FILE (standard input if none): either a raw capture of the modem's port (CRLF or
//! LF-only line ends, echo on or off, payload bytes after `CONNECT` or after SIMCom's
//! `+HTTPREAD:` / `+HTTPHEAD:` / `+SHREAD:` headers), or a two-sided transcript in this
//! crate's format (`-> ` host lines, `<- ` modem lines; see `cellular_ota::transcript`).
//! Prints one event per line, or JSON Lines with `--json`. Lines it cannot classify are
//! printed with kind `unknown`, never dropped; a last line without its line end is reported
//! with its kind and `unterminated`.
//!
//! The vendor is told from the lines themselves (`cellular_ota::log_decoder`): a first pass
//! over the capture settles it, the second decodes every line with that vendor's URC and
//! error tables (SIMCom's `+CME ERROR: 601` is not Quectel's). Each JSON object carries
//! `vendor` (and SIMCom's command set as `simcom_family`) once known; the text output names
//! them in its first line. With no telling line the tables are Quectel's, as before.
//! `--family` picks the Quectel chip family for FOTA codes.

mod describe;

use std::io::{Read, Write};

use cellular_ota::at::Instant;
use cellular_ota::log_decoder::{LogDecoder, LogEvent, Vendor, VendorUrc};
use cellular_ota::quectel::ChipFamily;
use cellular_ota::simcom::Family;
use cellular_ota::transcript::{Direction, decode_line};
use serde_json::{Map, Value};

struct Output {
    json: bool,
    family: Option<ChipFamily>,
    /// The vendor the first pass settled on (`None`: Quectel's tables, as before).
    vendor: Option<Vendor>,
    simcom_family: Option<Family>,
    in_command: bool,
    /// A payload being collected: its bytes, and per piece the announced lengths.
    payload: Option<Payload>,
    out: Vec<Map<String, Value>>,
}

#[derive(Default)]
struct Payload {
    bytes: Vec<u8>,
    /// One entry per piece (a Quectel payload is one piece).
    announced: Vec<Option<u32>>,
}

impl Payload {
    fn describe(&self) -> Map<String, Value> {
        let announced = if self.announced.iter().all(Option::is_some) && !self.announced.is_empty()
        {
            Some(self.announced.iter().flatten().sum::<u32>())
        } else {
            None
        };
        let mut m = describe::payload(&self.bytes, announced);
        if self.announced.len() > 1 {
            m.insert("pieces".into(), self.announced.len().into());
        }
        m
    }
}

impl Output {
    fn event(&mut self, ev: &LogEvent<'_>) {
        let m = match ev {
            LogEvent::PayloadStart { len } => {
                // A SIMCom payload comes in pieces, each with its own start.
                self.payload
                    .get_or_insert_with(Payload::default)
                    .announced
                    .push(*len);
                return;
            }
            LogEvent::Payload(d) => {
                self.payload
                    .get_or_insert_with(Payload::default)
                    .bytes
                    .extend_from_slice(d);
                return;
            }
            LogEvent::PayloadEnd => self.payload.take().unwrap_or_default().describe(),
            LogEvent::Command(c) => {
                self.in_command = true;
                describe::command(c)
            }
            LogEvent::Urc {
                line,
                urc: VendorUrc::Quectel(urc),
            } => describe::urc(line, urc, self.family),
            LogEvent::Urc {
                line,
                urc: VendorUrc::Simcom(urc),
            } => describe::simcom_urc(line, urc),
            LogEvent::MalformedUrc { line, error, .. } => {
                let mut m = describe::line(line, self.in_command, self.vendor);
                m.insert("kind".into(), "malformed_urc".into());
                m.insert("error".into(), error.to_string().into());
                m
            }
            LogEvent::Line(l) => describe::line(l, self.in_command, self.vendor),
            LogEvent::Final(f) => {
                self.in_command = false;
                describe::final_result(final_raw(f).as_bytes(), f, self.vendor)
            }
            LogEvent::Prompt(p) => describe::prompt(
                match p {
                    cellular_ota::at::Prompt::Connect => b"CONNECT",
                    cellular_ota::at::Prompt::Send => b"> ",
                },
                *p,
            ),
            LogEvent::Overflow { discarded } => {
                let mut m = Map::new();
                m.insert("raw".into(), format!("<{discarded} bytes>").into());
                m.insert("kind".into(), "overlong_line".into());
                m.insert("bytes".into(), (*discarded).into());
                m
            }
        };
        self.push(m);
    }

    /// Adds an event, marked with the vendor whose tables decoded it.
    fn push(&mut self, mut m: Map<String, Value>) {
        if let Some(v) = self.vendor {
            m.insert("vendor".into(), v.name().into());
        }
        if let Some(f) = self.simcom_family {
            m.insert("simcom_family".into(), family_name(f).into());
        }
        self.out.push(m);
    }
}

fn family_name(f: Family) -> &'static str {
    match f {
        Family::Sim7600 => "sim7600",
        Family::A76xx => "a76xx",
        Family::Sh => "sh",
        Family::Sim800 => "sim800",
        _ => "other",
    }
}

fn final_raw(f: &cellular_ota::at::Final<'_>) -> String {
    use cellular_ota::at::{ErrorCode, Final};
    let code = |c: &ErrorCode<'_>| match c {
        ErrorCode::Numeric(n) => n.to_string(),
        ErrorCode::Text(t) => String::from_utf8_lossy(t).into_owned(),
    };
    match f {
        Final::Ok => "OK".into(),
        Final::Error => "ERROR".into(),
        Final::NoCarrier => "NO CARRIER".into(),
        Final::CmeError(c) => format!("+CME ERROR: {}", code(c)),
        Final::CmsError(c) => format!("+CMS ERROR: {}", code(c)),
    }
}

fn usage() -> ! {
    eprintln!("usage: explain [--json] [--family qualcomm|asr|unisoc] [FILE]");
    std::process::exit(2)
}

fn main() {
    let mut json = false;
    let mut family = None;
    let mut file = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--json" => json = true,
            "--family" => {
                family = match args.next().as_deref() {
                    Some("qualcomm") => Some(ChipFamily::Qualcomm),
                    Some("asr") => Some(ChipFamily::Asr),
                    Some("unisoc") => Some(ChipFamily::Unisoc),
                    _ => usage(),
                }
            }
            "-h" | "--help" => usage(),
            f if file.is_none() && !f.starts_with("--") => file = Some(f.to_string()),
            _ => usage(),
        }
    }
    let mut input = Vec::new();
    let read = match &file {
        Some(f) => std::fs::File::open(f).and_then(|mut h| h.read_to_end(&mut input)),
        None => std::io::stdin().read_to_end(&mut input),
    };
    if let Err(e) = read {
        eprintln!(
            "explain: cannot read {}: {e}",
            file.as_deref().unwrap_or("stdin")
        );
        std::process::exit(1);
    }
    let output = |vendor, simcom_family| Output {
        json,
        family,
        vendor,
        simcom_family,
        in_command: false,
        payload: None,
        out: Vec::new(),
    };
    // First pass: which vendor (and SIMCom family) the lines tell.
    let mut first = output(None, None);
    let told = match explain(&input, &mut first, None) {
        Ok(told) => told,
        Err(e) => {
            eprintln!("explain: {e}");
            std::process::exit(1);
        }
    };
    let mut o = output(told.0, told.1);
    if let Err(e) = explain(&input, &mut o, told.0) {
        eprintln!("explain: {e}");
        std::process::exit(1);
    }
    let stdout = std::io::stdout();
    let mut w = stdout.lock();
    if !o.json {
        let vendor = match (o.vendor, o.simcom_family) {
            (Some(v), Some(f)) => format!("{} ({})", v.name(), family_name(f)),
            (Some(v), None) => v.name().to_string(),
            (None, _) => "not told by the log (Quectel's tables used)".to_string(),
        };
        if writeln!(w, "# vendor: {vendor}").is_err() {
            return;
        }
    }
    for m in &o.out {
        let line = if o.json {
            Value::Object(m.clone()).to_string()
        } else {
            human(m)
        };
        if writeln!(w, "{line}").is_err() {
            return;
        }
    }
}

fn human(m: &Map<String, Value>) -> String {
    let kind = m.get("kind").and_then(Value::as_str).unwrap_or("");
    let raw = m.get("raw").and_then(Value::as_str).unwrap_or("");
    let mut s = format!("{kind:<24} {raw}");
    let extras: Vec<String> = m
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "kind" | "raw" | "meaning" | "vendor" | "simcom_family"
            )
        })
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if !extras.is_empty() {
        s.push_str(&format!("  [{}]", extras.join(" ")));
    }
    if let Some(meaning) = m.get("meaning").and_then(Value::as_str) {
        s.push_str(&format!("  -- {meaning}"));
    }
    s
}

/// True if the input is a two-sided transcript (its first content line has a marker).
fn is_transcript(input: &[u8]) -> bool {
    input
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .find(|l| !l.is_empty() && !l.starts_with(b"#"))
        .is_some_and(|l| l.starts_with(b"-> ") || l.starts_with(b"<- "))
}

/// Decodes `input` into `o` (with `vendor` assumed when given); returns the vendor and
/// SIMCom family the decoder settled on.
fn explain(
    input: &[u8],
    o: &mut Output,
    vendor: Option<Vendor>,
) -> Result<(Option<Vendor>, Option<Family>), String> {
    let mut rx = vec![0u8; 4096];
    let mut d = LogDecoder::new(&mut rx);
    if let Some(v) = vendor {
        d.assume(v);
    }
    let drain = |d: &mut LogDecoder<'_>, now: Instant, o: &mut Output| {
        while let Some(ev) = d.poll(now) {
            o.event(&ev);
        }
    };
    let feed = |d: &mut LogDecoder<'_>, bytes: &[u8], now: Instant, o: &mut Output| {
        let mut pos = 0;
        while pos < bytes.len() {
            pos += d.feed(&bytes[pos..]);
            drain(d, now, o);
        }
    };
    if is_transcript(input) {
        // Time model: each modem chunk 10 ms after the previous one; the host answers
        // 1 s after the modem's last chunk (so unknown-length payloads end by silence).
        let mut now_ms = 0u64;
        let mut buf = vec![0u8; input.len() + 1];
        for (i, line) in input.split(|&b| b == b'\n').enumerate() {
            match decode_line(line, &mut buf) {
                Ok(None) => {}
                Ok(Some((Direction::FromModem, n))) => {
                    now_ms += 10;
                    feed(&mut d, &buf[..n], Instant::from_millis(now_ms), o);
                }
                Ok(Some((Direction::ToModem, n))) => {
                    now_ms += 1000;
                    drain(&mut d, Instant::from_millis(now_ms), o);
                    d.host_command(&buf[..n]);
                    // A command line is shown; data the host sent after CONNECT is counted.
                    let sent = &buf[..n];
                    if sent.len() >= 2 && sent[..2].eq_ignore_ascii_case(b"AT") {
                        o.event(&LogEvent::Command(sent));
                    } else {
                        let mut m = Map::new();
                        m.insert(
                            "raw".into(),
                            format!("<{} bytes sent by the host>", sent.len()).into(),
                        );
                        m.insert("kind".into(), "host_data".into());
                        m.insert("bytes".into(), sent.len().into());
                        o.push(m);
                    }
                }
                Err(e) => return Err(format!("line {}: {e}", i + 1)),
            }
        }
    } else {
        feed(&mut d, input, Instant::ZERO, o);
    }
    drain(&mut d, Instant::MAX, o);
    if d.end_of_capture() {
        // The capture's last line has no line end: report it, marked as such.
        let before = o.out.len();
        drain(&mut d, Instant::MAX, o);
        for m in &mut o.out[before..] {
            m.insert("unterminated".into(), true.into());
        }
    }
    if let Some(p) = o.payload.take() {
        // Input ended inside a payload.
        let mut m = p.describe();
        m.insert("kind".into(), "payload_truncated".into());
        o.push(m);
    }
    Ok((d.vendor(), d.simcom_family()))
}
