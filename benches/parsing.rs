//! Events per second out of realistic modem output: our `Engine` and `LogDecoder` against
//! atat 0.25's `AtDigester`, on the same bytes in the same chunks.
//!
//! Corpora (modem side only, each `<-` line of a transcript is one read, as it arrived):
//!
//! * `text`: the fixtures without a received payload after `CONNECT` and without LF-only
//!   line ends, plus a URC/response-heavy block (`+QIND: "csq"`, `+CREG`/`+CGREG`/`+CEREG`,
//!   `+QHTTPGET:`, a whole FOTA download and update, boot URCs, `+CME ERROR`), repeated to
//!   about 1 MB. Both sides frame every byte of it; this is the comparison.
//! * `all`: every fixture, repeated to about 1 MB, including HTTP bodies, `CONNECT <n>` file
//!   reads, `AT+QFDWL` and the LF-only boot log. The decoder gets the host lines of the
//!   transcripts (`LogDecoder::host_command`) so it knows which `CONNECT` starts a payload;
//!   atat has no data mode and frames payload bytes as text, so its counts differ.
//!
//! atat is driven exactly as its `Ingress::try_advance` does: append the read to a 1 KiB
//! buffer, digest until nothing is swallowed, shift the rest down with `copy_within`. Its URC
//! parser is what `#[derive(AtatUrc)]` generates: `alt` over `urc_helper(<prefix>)` for every
//! prefix and word our URC parser knows. atat's `string_errors` feature is on, so that
//! `+CME ERROR: <text>` (after `AT+CMEE=2`) is an error rather than text folded into the next
//! `OK` response. Our engine and decoder get a 1 KiB buffer too.
//!
//! What atat makes of the `all` corpus (why its counts differ there): `CONNECT` is a
//! successful response that runs up to the first `\r\nOK\r\n`, which is often inside or
//! at the end of the body, so body bytes end up in responses, `OK`s inside bodies become extra
//! responses, and binary bytes before a line end are dropped as "echo"; the LF-only boot log
//! (no CR) is never framed and is dropped as echo when the next CR LF arrives.

mod common;

use std::hint::black_box;
use std::time::Duration;

use atat::digest::parser::urc_helper;
use atat::digest::{AtDigester, DigestResult, Digester, ParseError};
use atat::nom::IResult;
use atat::nom::branch::alt;
use cellular_ota::at::{Engine, Event, Instant};
use cellular_ota::quectel::log_decoder::{LogDecoder, LogEvent};
use cellular_ota::transcript::{Direction, decode_line};
use common::{Contender, Mode};
use criterion::{SamplingMode, Throughput};

const BUF: usize = 1024;

/// Fixtures with no received payload and CR LF line ends.
const TEXT_FIXTURES: [&str; 7] = [
    "boot_eg25g",
    "fota_ec200u_path_failure",
    "fota_ftp_and_file",
    "fota_http_success_asr",
    "fota_https_eg18",
    "pdp",
    "registration",
];

/// Every fixture.
const ALL_FIXTURES: [&str; 14] = [
    "boot_eg18_after_dfota",
    "boot_eg25g",
    "file_qfread",
    "file_upload_download",
    "fota_ec200u_path_failure",
    "fota_ftp_and_file",
    "fota_http_success_asr",
    "fota_https_eg18",
    "http_errors",
    "http_get_read_known_length",
    "http_get_read_unknown_length",
    "http_getex_range",
    "pdp",
    "registration",
];

/// One read from the modem, with what the host sent before it.
struct Chunk {
    start: usize,
    end: usize,
    ms: u64,
    host: Vec<Vec<u8>>,
}

struct Corpus {
    bytes: Vec<u8>,
    chunks: Vec<Chunk>,
}

/// A transcript as (host lines before, modem chunk) pairs.
type Unit = Vec<(Vec<Vec<u8>>, Vec<u8>)>;

fn load_fixture(name: &str, unit: &mut Unit) {
    let path = format!("{}/fixtures/{name}.txt", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut out = vec![0u8; 64 * 1024];
    let mut host = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        match decode_line(line, &mut out).unwrap_or_else(|e| panic!("{path}: {e}")) {
            None => {}
            Some((Direction::ToModem, n)) => host.push(out[..n].to_vec()),
            Some((Direction::FromModem, n)) => {
                unit.push((std::mem::take(&mut host), out[..n].to_vec()));
            }
        }
    }
}

/// URC- and response-heavy traffic of a FOTA session, one line (or one response) per read.
fn synthetic(unit: &mut Unit) {
    let mut lines: Vec<String> = vec![
        "\r\n+QIND: \"csq\",23,99\r\n".into(),
        "\r\n+CREG: 1\r\n".into(),
        "\r\n+CGREG: 1\r\n".into(),
        "\r\n+CEREG: 1,\"1A2B\",\"01234567\",7\r\n".into(),
        "\r\n+QIND: \"act\",\"LTE\"\r\n".into(),
        "\r\n+CSQ: 23,99\r\n\r\nOK\r\n".into(),
        "\r\n+CREG: 0,1\r\n\r\nOK\r\n".into(),
        "\r\nOK\r\n".into(),
        "\r\n+QIND: \"csq\",21,99\r\n".into(),
        "\r\n+QHTTPGET: 0,200,1048576\r\n".into(),
        "\r\nOK\r\n".into(),
        "\r\n+QHTTPGET: 0,206,4096\r\n".into(),
        "\r\n+CME ERROR: 716\r\n".into(),
        "\r\nOK\r\n".into(),
        "\r\n+QHTTPGET: 702\r\n".into(),
        "\r\nOK\r\n".into(),
        "\r\n+QIND: \"FOTA\",\"HTTPSTART\"\r\n".into(),
    ];
    for p in (10..=100).step_by(10) {
        lines.push(format!("\r\n+QIND: \"FOTA\",\"DOWNLOADING\",{p}\r\n"));
    }
    lines.push("\r\n+QIND: \"FOTA\",\"HTTPEND\",0\r\n".into());
    lines.push("\r\nRDY\r\n".into());
    lines.push("\r\n+QIND: \"FOTA\",\"START\"\r\n".into());
    for p in (10..=100).step_by(10) {
        lines.push(format!("\r\n+QIND: \"FOTA\",\"UPDATING\",{p}\r\n"));
    }
    for l in [
        "\r\n+QIND: \"FOTA\",\"END\",0\r\n",
        "\r\nRDY\r\n",
        "\r\n+CFUN: 1\r\n",
        "\r\n+CPIN: READY\r\n",
        "\r\n+QUSIM: 1\r\n",
        "\r\n+QIND: SMS DONE\r\n",
        "\r\n+QIND: PB DONE\r\n",
        "\r\n+QIURC: \"pdpdeact\",1\r\n",
    ] {
        lines.push(l.into());
    }
    unit.extend(lines.into_iter().map(|l| (Vec::new(), l.into_bytes())));
}

/// Repeats `unit` until the corpus holds at least `target` bytes. Time: 10 ms per modem
/// read, 1 s before each host line (as `tests/fixtures.rs` does).
fn build(unit: &Unit, target: usize) -> Corpus {
    let mut c = Corpus {
        bytes: Vec::with_capacity(target + 4096),
        chunks: Vec::new(),
    };
    let mut ms = 0u64;
    while c.bytes.len() < target {
        for (host, bytes) in unit {
            ms += 1000 * host.len() as u64 + 10;
            let start = c.bytes.len();
            c.bytes.extend_from_slice(bytes);
            c.chunks.push(Chunk {
                start,
                end: c.bytes.len(),
                ms,
                host: host.clone(),
            });
        }
        ms += 1000;
    }
    c
}

// ---------------------------------------------------------------------------------------
// Ours
// ---------------------------------------------------------------------------------------

/// What our side reported. Payload slices are not events (their number depends on the
/// reads); a payload counts once, at its start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Ours {
    echo: u64,
    line: u64,
    urc: u64,
    malformed: u64,
    final_: u64,
    prompt: u64,
    payload: u64,
    payload_bytes: u64,
    overflow: u64,
}

impl Ours {
    fn events(&self) -> u64 {
        self.echo
            + self.line
            + self.urc
            + self.malformed
            + self.final_
            + self.prompt
            + self.payload
            + self.overflow
    }
}

fn engine_pass(c: &Corpus, rx: &mut [u8]) -> Ours {
    let mut e = Engine::new(rx);
    let mut n = Ours::default();
    for ch in &c.chunks {
        let now = Instant::from_millis(ch.ms);
        let mut data = &c.bytes[ch.start..ch.end];
        while !data.is_empty() {
            let k = e.consume(data);
            data = &data[k..];
            while let Some(ev) = e.poll(now) {
                match ev {
                    Event::Echo(_) => n.echo += 1,
                    Event::Line(l) => {
                        black_box(l);
                        n.line += 1
                    }
                    Event::Final(f) => {
                        black_box(f);
                        n.final_ += 1
                    }
                    Event::Prompt(_) => n.prompt += 1,
                    Event::DataStart { .. } => n.payload += 1,
                    Event::Data(d) => n.payload_bytes += d.len() as u64,
                    Event::DataEnd => {}
                    Event::Overflow { .. } => n.overflow += 1,
                }
            }
        }
    }
    n
}

fn count(n: &mut Ours, ev: LogEvent<'_>) {
    match ev {
        LogEvent::Command(_) => n.echo += 1,
        LogEvent::Urc { urc, .. } => {
            black_box(urc);
            n.urc += 1
        }
        LogEvent::MalformedUrc { .. } => n.malformed += 1,
        LogEvent::Line(l) => {
            black_box(l);
            n.line += 1
        }
        LogEvent::Final(f) => {
            black_box(f);
            n.final_ += 1
        }
        LogEvent::Prompt(_) => n.prompt += 1,
        LogEvent::PayloadStart { .. } => n.payload += 1,
        LogEvent::Payload(d) => n.payload_bytes += d.len() as u64,
        LogEvent::PayloadEnd => {}
        LogEvent::Overflow { .. } => n.overflow += 1,
    }
}

/// The log decoder; with `hints`, the transcript's host lines are passed on as a two-sided
/// capture would (after the modem has been quiet for a second).
fn decoder_pass(c: &Corpus, rx: &mut [u8], hints: bool) -> Ours {
    let mut d = LogDecoder::new(rx);
    let mut n = Ours::default();
    let mut prev_ms = 0;
    for ch in &c.chunks {
        if hints && !ch.host.is_empty() {
            let quiet = Instant::from_millis(prev_ms + 999);
            while let Some(ev) = d.poll(quiet) {
                count(&mut n, ev);
            }
            for h in &ch.host {
                d.host_command(h);
            }
        }
        let now = Instant::from_millis(ch.ms);
        let mut data = &c.bytes[ch.start..ch.end];
        while !data.is_empty() {
            let k = d.feed(data);
            data = &data[k..];
            while let Some(ev) = d.poll(now) {
                count(&mut n, ev);
            }
        }
        prev_ms = ch.ms;
    }
    while let Some(ev) = d.poll(Instant::MAX) {
        count(&mut n, ev);
    }
    n
}

// ---------------------------------------------------------------------------------------
// atat 0.25
// ---------------------------------------------------------------------------------------

/// The URC parser `#[derive(AtatUrc)]` would generate for the prefixes and words that
/// `cellular_ota::quectel::urc` knows.
enum QuectelUrcs {}

impl atat::Parser for QuectelUrcs {
    fn parse(buf: &[u8]) -> Result<(&[u8], usize), ParseError> {
        let r: IResult<&[u8], (&[u8], usize)> = alt((
            alt((
                urc_helper("+CFUN"),
                urc_helper("+CPIN"),
                urc_helper("+QUSIM"),
                urc_helper("+QIND"),
                urc_helper("+QIURC"),
                urc_helper("+QHTTPURC"),
                urc_helper("+QHTTPGET"),
                urc_helper("+QHTTPPOST"),
                urc_helper("+QHTTPPOSTFILE"),
            )),
            alt((
                urc_helper("+QHTTPREAD"),
                urc_helper("+QHTTPREADFILE"),
                urc_helper("+CREG"),
                urc_helper("+CGREG"),
                urc_helper("+CEREG"),
                urc_helper("RDY"),
                urc_helper("APP RDY"),
                urc_helper("POWERED DOWN"),
                urc_helper("RING"),
            )),
        ))(buf);
        let (_, r) = r?;
        Ok(r)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Atat {
    urc: u64,
    ok: u64,
    err: u64,
    prompt: u64,
    /// Times the ingress buffer was full with nothing digestible and had to be cleared.
    cleared: u64,
}

impl Atat {
    fn events(&self) -> u64 {
        self.urc + self.ok + self.err + self.prompt
    }
}

/// `Ingress::try_advance`, minus the response slot and URC channel.
fn atat_pass(c: &Corpus, buf: &mut [u8]) -> Atat {
    let mut dig = AtDigester::<QuectelUrcs>::new();
    let mut n = Atat::default();
    let mut pos = 0;
    for ch in &c.chunks {
        let mut data = &c.bytes[ch.start..ch.end];
        while !data.is_empty() {
            let k = data.len().min(buf.len() - pos);
            if k == 0 {
                n.cleared += 1;
                pos = 0;
                continue;
            }
            buf[pos..pos + k].copy_from_slice(&data[..k]);
            pos += k;
            data = &data[k..];
            loop {
                let (res, swallowed) = dig.digest(&buf[..pos]);
                match res {
                    DigestResult::Urc(u) => {
                        black_box(u);
                        n.urc += 1
                    }
                    DigestResult::Response(Ok(r)) => {
                        black_box(r);
                        n.ok += 1
                    }
                    DigestResult::Response(Err(e)) => {
                        black_box(e);
                        n.err += 1
                    }
                    DigestResult::Prompt(_) => n.prompt += 1,
                    DigestResult::None => {}
                }
                if swallowed == 0 {
                    break;
                }
                buf.copy_within(swallowed..pos, 0);
                pos -= swallowed;
            }
        }
    }
    n
}

// ---------------------------------------------------------------------------------------

fn describe_ours(n: &Ours) -> String {
    format!(
        "{} events: {} lines, {} urc, {} malformed, {} final, {} prompt, {} echo, {} payloads \
         ({} B), {} overflow",
        n.events(),
        n.line,
        n.urc,
        n.malformed,
        n.final_,
        n.prompt,
        n.echo,
        n.payload,
        n.payload_bytes,
        n.overflow
    )
}

fn describe_atat(n: &Atat) -> String {
    format!(
        "{} results: {} urc, {} ok, {} error, {} prompt, {} buffer clears",
        n.events(),
        n.urc,
        n.ok,
        n.err,
        n.prompt,
        n.cleared
    )
}

fn main() {
    let mode = common::mode();
    let target = match mode {
        Mode::Bench => 1_000_000,
        Mode::Test => 1,
    };
    let mut text_unit = Unit::new();
    for f in TEXT_FIXTURES {
        load_fixture(f, &mut text_unit);
    }
    synthetic(&mut text_unit);
    let mut all_unit = Unit::new();
    for f in ALL_FIXTURES {
        load_fixture(f, &mut all_unit);
    }
    let text = build(&text_unit, target);
    let all = build(&all_unit, target);

    let mut rx = vec![0u8; BUF];
    let mut ing = vec![0u8; BUF];

    // Counts, and what each side makes of the corpora.
    let t_engine = engine_pass(&text, &mut rx);
    let t_decoder = decoder_pass(&text, &mut rx, false);
    let t_atat = atat_pass(&text, &mut ing);
    let a_decoder = decoder_pass(&all, &mut rx, true);
    let a_atat = atat_pass(&all, &mut ing);
    assert_eq!(
        t_engine.overflow + t_decoder.overflow + a_decoder.overflow,
        0
    );
    assert_eq!(t_decoder.malformed + a_decoder.malformed, 0);
    println!(
        "corpus text: {} bytes in {} reads; corpus all: {} bytes in {} reads",
        text.bytes.len(),
        text.chunks.len(),
        all.bytes.len(),
        all.chunks.len()
    );
    println!("  text  engine : {}", describe_ours(&t_engine));
    println!("  text  decoder: {}", describe_ours(&t_decoder));
    println!("  text  atat   : {}", describe_atat(&t_atat));
    println!("  all   decoder: {}", describe_ours(&a_decoder));
    println!("  all   atat   : {}", describe_atat(&a_atat));

    let mut c = common::criterion();
    {
        let mut g = c.benchmark_group("parsing");
        g.sampling_mode(SamplingMode::Flat);
        g.throughput(Throughput::Bytes(text.bytes.len() as u64));
        g.bench_function("text/engine", |b| b.iter(|| engine_pass(&text, &mut rx)));
        g.bench_function("text/decoder", |b| {
            b.iter(|| decoder_pass(&text, &mut rx, false))
        });
        g.bench_function("text/atat", |b| b.iter(|| atat_pass(&text, &mut ing)));
        g.throughput(Throughput::Bytes(all.bytes.len() as u64));
        g.bench_function("all/decoder", |b| {
            b.iter(|| decoder_pass(&all, &mut rx, true))
        });
        g.bench_function("all/atat", |b| b.iter(|| atat_pass(&all, &mut ing)));
        g.finish();
    }
    c.final_summary();

    if mode == Mode::Test {
        println!("parsing: test mode, every path run once; no ratios");
        return;
    }

    let (rx, ing) = (std::cell::RefCell::new(rx), std::cell::RefCell::new(ing));
    let mut contenders = [
        Contender::new("text/engine", || {
            black_box(engine_pass(&text, &mut rx.borrow_mut()));
        }),
        Contender::new("text/decoder", || {
            black_box(decoder_pass(&text, &mut rx.borrow_mut(), false));
        }),
        Contender::new("text/atat", || {
            black_box(atat_pass(&text, &mut ing.borrow_mut()));
        }),
        Contender::new("all/decoder", || {
            black_box(decoder_pass(&all, &mut rx.borrow_mut(), true));
        }),
        Contender::new("all/atat", || {
            black_box(atat_pass(&all, &mut ing.borrow_mut()));
        }),
    ];
    let s = common::interleaved(&mut contenders, 41, Duration::from_millis(25));
    let [engine, decoder, atat_t, all_decoder, all_atat] = [0, 1, 2, 3, 4].map(|i| s.median(i));
    let ev = |n: u64, secs: f64| common::rate(n as f64, secs, "ev");
    let mb = |bytes: usize, secs: f64| common::rate(bytes as f64, secs, "B");
    let tb = text.bytes.len();
    println!(
        "RATIO parsing engine/atat = {:.2} (engine {} events, {}, {}; atat {} results, {}, {})",
        s.speedup(0, 2),
        t_engine.events(),
        ev(t_engine.events(), engine),
        mb(tb, engine),
        t_atat.events(),
        ev(t_atat.events(), atat_t),
        mb(tb, atat_t)
    );
    println!(
        "RATIO parsing decoder/atat = {:.2} (decoder {} events incl. typed URCs, {}, {}; atat {} \
         results, {}, {})",
        s.speedup(1, 2),
        t_decoder.events(),
        ev(t_decoder.events(), decoder),
        mb(tb, decoder),
        t_atat.events(),
        ev(t_atat.events(), atat_t),
        mb(tb, atat_t)
    );
    println!(
        "CHECK parsing text: command completions: ours {} (finals + prompts), atat {} (responses \
         + prompts)",
        t_engine.final_ + t_engine.prompt,
        t_atat.ok + t_atat.err + t_atat.prompt
    );
    if t_engine.events() != t_atat.events() {
        println!(
            "NOTE parsing text: event counts differ (engine {}, atat {}): atat returns one \
             response per command (information lines + final result together), the engine one \
             event per line; see the breakdown above",
            t_engine.events(),
            t_atat.events()
        );
    }
    let ab = all.bytes.len();
    println!(
        "RATIO parsing all/decoder/atat = {:.2} (decoder {} events, {}, {}; atat {} results, {}, \
         {}) -- atat cannot frame payloads after CONNECT, its counts are not comparable",
        s.speedup(3, 4),
        a_decoder.events(),
        ev(a_decoder.events(), all_decoder),
        mb(ab, all_decoder),
        a_atat.events(),
        ev(a_atat.events(), all_atat),
        mb(ab, all_atat)
    );
}
