//! Every recorded transcript in `fixtures/` is decoded whole, one byte at a time and split at
//! every position by the vendor-neutral `log_decoder::LogDecoder` (Quectel and SIMCom
//! captures alike); all three must give the same events, and those events must match the
//! reviewed snapshot `fixtures/<name>.events`.
//!
//! Set `UPDATE_SNAPSHOTS=1` to rewrite the snapshots (then review the diff).

use cellular_ota::at::Instant;
use cellular_ota::log_decoder::{LogDecoder, LogEvent, Vendor, VendorUrc};
use cellular_ota::transcript::{Direction, decode_line};

struct Transcript {
    /// Modem-to-host bytes, concatenated.
    modem: Vec<u8>,
    /// (offset into `modem`, host line) — the host line was sent when the modem stream had
    /// reached this offset.
    host: Vec<(usize, Vec<u8>)>,
    /// Start offset of each modem chunk, with its timestamp in ms.
    chunk_times: Vec<(usize, u64)>,
}

fn load(path: &std::path::Path) -> Transcript {
    let text = std::fs::read(path).unwrap();
    let mut t = Transcript {
        modem: Vec::new(),
        host: Vec::new(),
        chunk_times: Vec::new(),
    };
    let mut now = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        match decode_line(line, &mut buf) {
            Ok(None) => {}
            Ok(Some((Direction::FromModem, n))) => {
                now += 10;
                t.chunk_times.push((t.modem.len(), now));
                t.modem.extend_from_slice(&buf[..n]);
            }
            Ok(Some((Direction::ToModem, n))) => {
                // The host answers after the modem went quiet for a while.
                now += 1000;
                t.host.push((t.modem.len(), buf[..n].to_vec()));
            }
            Err(e) => panic!("{}:{}: {e}", path.display(), i + 1),
        }
    }
    t
}

fn esc(b: &[u8]) -> String {
    b.iter()
        .flat_map(|&c| std::ascii::escape_default(c))
        .map(char::from)
        .collect()
}

fn describe(ev: &LogEvent<'_>) -> String {
    match ev {
        LogEvent::Command(c) => format!("command {}", esc(c)),
        // Quectel's URCs as before the decoder knew SIMCom's; SIMCom's marked.
        LogEvent::Urc {
            urc: VendorUrc::Quectel(urc),
            ..
        } => format!("urc {urc:?}"),
        LogEvent::Urc {
            urc: VendorUrc::Simcom(urc),
            ..
        } => format!("urc simcom {urc:?}"),
        LogEvent::MalformedUrc {
            line,
            vendor: Vendor::Quectel,
            error,
        } => format!("malformed {} ({error:?})", esc(line)),
        LogEvent::MalformedUrc {
            line,
            vendor,
            error,
        } => format!("malformed {vendor:?} {} ({error:?})", esc(line)),
        LogEvent::Line(l) => format!("line {}", esc(l)),
        LogEvent::Final(f) => match f {
            cellular_ota::at::Final::CmeError(cellular_ota::at::ErrorCode::Text(t)) => {
                format!("final CmeError(text {})", esc(t))
            }
            f => format!("final {f:?}"),
        },
        LogEvent::Prompt(p) => format!("prompt {p:?}"),
        LogEvent::PayloadStart { len } => format!("payload-start {len:?}"),
        LogEvent::Payload(_) => unreachable!("aggregated"),
        LogEvent::PayloadEnd => "payload-end".into(),
        LogEvent::Overflow { discarded } => format!("overflow {discarded}"),
    }
}

/// Decodes `t`, feeding the modem stream in pieces that end at each of `cuts`.
fn decode(t: &Transcript, cuts: &[usize]) -> Vec<String> {
    let mut rx = [0u8; 512];
    let mut d = LogDecoder::new(&mut rx);
    let mut out = Vec::new();
    let mut payload: Option<Vec<u8>> = None;
    let mut flush_payload = |out: &mut Vec<String>, payload: &mut Option<Vec<u8>>| {
        if let Some(p) = payload.take() {
            out.push(format!("payload {} bytes \"{}\"", p.len(), esc(&p)));
        }
    };
    // Every boundary: the caller's cuts, host-command points, chunk starts (for time).
    let mut bounds: Vec<usize> = cuts.to_vec();
    bounds.extend(t.host.iter().map(|(o, _)| *o));
    bounds.extend(t.chunk_times.iter().map(|(o, _)| *o));
    bounds.push(t.modem.len());
    bounds.sort();
    bounds.dedup();
    let time_at = |offset: usize| -> u64 {
        // Timestamp of the chunk containing the byte just before `offset`.
        t.chunk_times
            .iter()
            .take_while(|(o, _)| *o < offset.max(1))
            .last()
            .map_or(0, |(_, ms)| *ms)
    };
    let mut pos = 0usize;
    let mut host_i = 0usize;
    for &b in &bounds {
        // Host commands sent at this offset come first, after time has passed.
        while host_i < t.host.len() && t.host[host_i].0 <= pos {
            let now = Instant::from_millis(time_at(pos) + 999);
            while let Some(ev) = d.poll(now) {
                push(&mut out, &mut payload, &ev, &mut flush_payload);
            }
            d.host_command(&t.host[host_i].1);
            out.push(format!("host {}", esc(&t.host[host_i].1)));
            host_i += 1;
        }
        let now = Instant::from_millis(time_at(b));
        while pos < b {
            let n = d.feed(&t.modem[pos..b]);
            pos += n;
            while let Some(ev) = d.poll(now) {
                push(&mut out, &mut payload, &ev, &mut flush_payload);
            }
        }
    }
    while host_i < t.host.len() {
        d.host_command(&t.host[host_i].1);
        out.push(format!("host {}", esc(&t.host[host_i].1)));
        host_i += 1;
    }
    while let Some(ev) = d.poll(Instant::MAX) {
        push(&mut out, &mut payload, &ev, &mut flush_payload);
    }
    flush_payload(&mut out, &mut payload);
    out
}

fn push(
    out: &mut Vec<String>,
    payload: &mut Option<Vec<u8>>,
    ev: &LogEvent<'_>,
    flush: &mut impl FnMut(&mut Vec<String>, &mut Option<Vec<u8>>),
) {
    if let LogEvent::Payload(p) = ev {
        payload.get_or_insert_with(Vec::new).extend_from_slice(p);
        return;
    }
    if matches!(ev, LogEvent::PayloadEnd) {
        // An empty payload still shows up.
        payload.get_or_insert_with(Vec::new);
    }
    flush(out, payload);
    out.push(describe(ev));
}

#[test]
fn every_fixture_whole_bytewise_and_split() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    names.sort();
    assert!(names.len() >= 10, "fixtures missing");
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    for path in names {
        let t = load(&path);
        let whole = decode(&t, &[]);
        assert!(!whole.is_empty());
        let bytewise: Vec<usize> = (1..t.modem.len()).collect();
        assert_eq!(
            decode(&t, &bytewise),
            whole,
            "{}: byte by byte",
            path.display()
        );
        for k in 1..t.modem.len() {
            assert_eq!(decode(&t, &[k]), whole, "{}: split at {k}", path.display());
        }
        let snap = path.with_extension("events");
        let text = whole.join("\n") + "\n";
        if update {
            std::fs::write(&snap, &text).unwrap();
        } else {
            let want = std::fs::read_to_string(&snap).unwrap_or_else(|_| {
                panic!("{} missing: run with UPDATE_SNAPSHOTS=1", snap.display())
            });
            assert_eq!(text, want, "{} differs from its snapshot", path.display());
        }
        // No line the decoder could not classify is dropped: every modem line is an event.
        assert!(
            !whole.iter().any(|e| e.starts_with("overflow")),
            "{}",
            path.display()
        );
    }
}
