//! Fuzzes the sans-IO framing [`Engine`].
//!
//! Input layout (missing bytes read as 0):
//!
//! | byte  | meaning                                                                    |
//! |-------|----------------------------------------------------------------------------|
//! | 0     | bits 0-1 first `expect_data` (none / Exact / Announced / UntilTrailer),     |
//! |       | bits 2-3 trailer prefix, bits 4-5 quiet period, bit 6 chunked run reads     |
//! |       | payload through `data_available`/`consume_data`, bit 7 huge Exact length    |
//! | 1-2   | buffer capacity: 16 + (u16 LE % 1009), i.e. 16..=1024                       |
//! | 3-4   | n for Exact(n) (u16 LE; with bit 7 of byte 0: u32::MAX - n)                 |
//! | 5     | chunking: bits 0-1 kind (fixed / one byte / random 1..=64 / random up to    |
//! |       | twice the capacity), bits 2-7 fixed chunk size - 1                          |
//! | 6     | PRNG seed (random chunk sizes, consume vs rx_spare/rx_commit, read sizes)   |
//! | 7     | fake milliseconds that pass per chunk in the chunked run                   |
//! | 8     | number of operations (% 9), then 4 bytes each: stream offset (u16 LE,       |
//! |       | taken modulo the stream length + 1), operation, argument                   |
//! | rest  | the bytes the modem sends                                                  |
//!
//! The stream is fed twice: once in the chosen chunks (polling after each chunk with a
//! monotonically increasing fake time), once whole (offered in one piece between two
//! operations, polling until `None` whenever the buffer is full). The operations run at
//! the same stream offsets in both runs, after everything before them has been polled.
//!
//! Invariants checked:
//! * nothing panics and the engine never stalls (buffer full, `poll` says "need more");
//! * the bytes of an `Exact(n)` / `CONNECT n` payload never exceed n, and are exactly n
//!   when `DataEnd` arrives; `data_state()` and `abort_data()` agree with that count;
//! * `DataStart` / `Data` / `DataEnd` are properly nested and nothing else arrives inside a
//!   payload;
//! * every `Echo` / `Line` (and `+CME ERROR` text) is non-empty and contains no CR/LF;
//! * after `poll` returned `None` at `now`, `next_deadline()` is `None` or later than `now`;
//! * `buffered()`, every lent slice and `rx_spare()` stay within `capacity()`;
//!   `received_total()` counts exactly the bytes fed;
//! * both runs give the same events (consecutive `Data` merged). The comparison is split at
//!   every `reset` and stops at the first unknown-length `DataStart` of each part, because
//!   where such a payload ends legitimately depends on timing and read boundaries.

#![no_main]

use core::time::Duration;

use cellular_ota::at::{DataLength, DataState, Engine, ErrorCode, Event, Final, Instant, Prompt};
use libfuzzer_sys::fuzz_target;

const PREFIXES: [&[u8]; 4] = [b"+QHTTPREAD:", b"+QFDWL:", b"OK", b""];
const QUIET_MS: [u64; 4] = [0, 1, 100, 200];
const HEADER: usize = 9;
const MAX_OPS: usize = 8;

fn until_trailer(arg: u8) -> DataLength {
    DataLength::UntilTrailer {
        end_prefix: PREFIXES[usize::from(arg & 3)],
        quiet: Duration::from_millis(QUIET_MS[usize::from((arg >> 2) & 3)]),
    }
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Expect(Option<DataLength>),
    Abort,
    Reset,
    /// Let this many milliseconds pass (both runs).
    Sleep(u64),
}

impl Op {
    fn decode(op: u8, arg: u8) -> Op {
        match op % 8 {
            0 => Op::Expect(None),
            1 => Op::Expect(Some(DataLength::Exact(u32::from(arg)))),
            2 => Op::Expect(Some(DataLength::Announced)),
            3 => Op::Expect(Some(until_trailer(arg))),
            4 => Op::Abort,
            5 => Op::Reset,
            6 => Op::Expect(Some(DataLength::Exact(u32::MAX - u32::from(arg)))),
            _ => Op::Sleep(u64::from(arg) * 50),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Chunking {
    Fixed(usize),
    Random { max: usize },
}

struct Setup<'a> {
    cap: usize,
    first: Option<DataLength>,
    reader: bool,
    chunking: Chunking,
    seed: u64,
    tick_ms: u64,
    ops: Vec<(usize, Op)>,
    stream: &'a [u8],
}

fn setup(data: &[u8]) -> Setup<'_> {
    let b = |i: usize| data.get(i).copied().unwrap_or(0);
    let flags = b(0);
    let cap = 16 + usize::from(u16::from_le_bytes([b(1), b(2)])) % 1009;
    let small_n = u32::from(u16::from_le_bytes([b(3), b(4)]));
    let n = if flags & 0x80 != 0 {
        u32::MAX - small_n
    } else {
        small_n
    };
    let first = match flags & 3 {
        0 => None,
        1 => Some(DataLength::Exact(n)),
        2 => Some(DataLength::Announced),
        _ => Some(until_trailer((flags >> 2) & 0xf)),
    };
    let chunking = match b(5) & 3 {
        0 => Chunking::Fixed(usize::from(b(5) >> 2) + 1),
        1 => Chunking::Fixed(1),
        2 => Chunking::Random { max: 64 },
        _ => Chunking::Random { max: 2 * cap },
    };
    let n_ops = usize::from(b(8)) % (MAX_OPS + 1);
    let ops_end = (HEADER + 4 * n_ops).min(data.len());
    let stream = data.get(ops_end..).unwrap_or(&[]);
    let mut ops: Vec<(usize, Op)> = (0..n_ops)
        .map(|k| {
            let o = HEADER + 4 * k;
            let at = usize::from(u16::from_le_bytes([b(o), b(o + 1)])) % (stream.len() + 1);
            (at, Op::decode(b(o + 2), b(o + 3)))
        })
        .collect();
    ops.sort_by_key(|&(at, _)| at);
    Setup {
        cap,
        first,
        reader: flags & 0x40 != 0,
        chunking,
        seed: u64::from(b(6)),
        tick_ms: u64::from(b(7)),
        ops,
        stream,
    }
}

/// xorshift64*, deterministic per input.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// 1..=max
    fn size(&mut self, max: usize) -> usize {
        1 + (self.next() % max as u64) as usize
    }
}

/// One event, rendered without borrowing the engine (bytes as escaped text).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Echo(String),
    Line(String),
    Final(String),
    Prompt(Prompt),
    Start(Option<u32>),
    Data(String),
    End,
    Overflow(usize),
}

fn esc(b: &[u8]) -> String {
    b.escape_ascii().to_string()
}

fn has_line_end(s: &[u8]) -> bool {
    s.iter().any(|&b| b == b'\r' || b == b'\n')
}

/// The payload currently open (between `DataStart` and `DataEnd`).
#[derive(Clone, Copy, Debug)]
struct Payload {
    len: Option<u32>,
    got: u64,
}

/// Everything that is checked and recorded, kept apart from the engine so that an event
/// (which borrows the engine) can be recorded.
struct Record {
    cap: usize,
    payload: Option<Payload>,
    /// Events, one list per stretch between resets.
    epochs: Vec<Vec<Tok>>,
}

impl Record {
    fn push(&mut self, tok: Tok) {
        let epoch = self.epochs.last_mut().unwrap();
        if let (Tok::Data(new), Some(Tok::Data(old))) = (&tok, epoch.last_mut()) {
            old.push_str(new);
            return;
        }
        epoch.push(tok);
    }

    fn data(&mut self, d: &[u8]) {
        assert!(!d.is_empty(), "empty Data");
        assert!(
            d.len() <= self.cap,
            "Data of {} bytes > capacity {}",
            d.len(),
            self.cap
        );
        let p = self.payload.as_mut().expect("Data outside a payload");
        p.got += d.len() as u64;
        if let Some(n) = p.len {
            assert!(
                p.got <= u64::from(n),
                "payload of {n} bytes produced {} bytes",
                p.got
            );
        }
        self.push(Tok::Data(esc(d)));
    }

    fn event(&mut self, ev: Event<'_>) {
        let inside = self.payload.is_some();
        let tok = match ev {
            Event::Echo(l) | Event::Line(l) => {
                assert!(!l.is_empty(), "empty line");
                assert!(!has_line_end(l), "line with CR/LF: {}", esc(l));
                assert!(l.len() <= self.cap);
                if matches!(ev, Event::Echo(_)) {
                    assert!(l[..2].eq_ignore_ascii_case(b"AT"));
                    Tok::Echo(esc(l))
                } else {
                    Tok::Line(esc(l))
                }
            }
            Event::Final(f) => {
                if let Final::CmeError(ErrorCode::Text(t)) | Final::CmsError(ErrorCode::Text(t)) = f
                {
                    assert!(!has_line_end(t));
                }
                Tok::Final(format!("{f:?}"))
            }
            Event::Prompt(p) => Tok::Prompt(p),
            Event::DataStart { len } => {
                assert!(!inside, "DataStart inside a payload");
                self.payload = Some(Payload { len, got: 0 });
                Tok::Start(len)
            }
            Event::Data(d) => {
                self.data(d);
                return;
            }
            Event::DataEnd => {
                let p = self.payload.take().expect("DataEnd outside a payload");
                if let Some(n) = p.len {
                    assert_eq!(p.got, u64::from(n), "payload ended short");
                }
                Tok::End
            }
            Event::Overflow { discarded } => {
                assert!(
                    discarded >= self.cap,
                    "Overflow of {discarded} < capacity {}",
                    self.cap
                );
                Tok::Overflow(discarded)
            }
        };
        if !matches!(tok, Tok::Start(_) | Tok::End) {
            assert!(!inside, "{tok:?} inside a payload");
        }
        self.push(tok);
    }

    fn expected_state(&self) -> DataState {
        match self.payload {
            None => DataState::Idle,
            Some(Payload { len: None, .. }) => DataState::UntilTrailer,
            Some(Payload { len: Some(n), got }) if got < u64::from(n) => {
                DataState::Remaining(n - got as u32)
            }
            Some(_) => DataState::Ended,
        }
    }
}

struct Run<'b> {
    e: Engine<'b>,
    rec: Record,
    now_ms: u64,
    fed: u64,
}

impl<'b> Run<'b> {
    fn new(buf: &'b mut [u8]) -> Self {
        let cap = buf.len();
        Run {
            e: Engine::new(buf),
            rec: Record {
                cap,
                payload: None,
                epochs: vec![Vec::new()],
            },
            now_ms: 0,
            fed: 0,
        }
    }

    fn check(&mut self) {
        let cap = self.rec.cap;
        assert_eq!(self.e.capacity(), cap);
        assert!(
            self.e.buffered() <= cap,
            "buffered {} > capacity {cap}",
            self.e.buffered()
        );
        assert_eq!(self.e.received_total(), self.fed);
        assert_eq!(self.e.data_state(), self.rec.expected_state());
    }

    /// Polls until `None`; returns the number of events.
    fn drain(&mut self, now: Instant) -> usize {
        let mut events = 0;
        while let Some(ev) = self.e.poll(now) {
            self.rec.event(ev);
            events += 1;
            assert!(
                events <= 2 * self.rec.cap + 8,
                "poll keeps returning events"
            );
            self.check();
        }
        self.check();
        // A deadline that has already passed would have ended the payload in this poll.
        if let Some(deadline) = self.e.next_deadline() {
            assert!(
                deadline > now,
                "next_deadline {deadline:?} not after {now:?}, yet poll returned None"
            );
        }
        events
    }

    /// Reads payload through `data_available` / `consume_data`, as a `BufRead` would;
    /// returns the number of bytes read.
    fn read_payload(&mut self, rng: &mut Rng) -> usize {
        let mut total = 0;
        loop {
            if !matches!(
                self.e.data_state(),
                DataState::Remaining(_) | DataState::UntilTrailer
            ) {
                return total;
            }
            let avail = self.e.data_available();
            let len = avail.len();
            if len == 0 {
                return total;
            }
            // Sometimes ask for more than is there: consume_data clamps.
            let want = rng.size(len + len / 2);
            let take = want.min(len);
            let chunk = avail[..take].to_vec();
            self.rec.data(&chunk);
            self.e.consume_data(want);
            total += take;
            self.check();
        }
    }

    /// Offers `bytes` until all are taken, polling after each offer; panics if the engine
    /// stalls. `chunked`: the PRNG (consume vs rx_spare/rx_commit, read sizes) and whether to
    /// read payload through `data_available`/`consume_data` before polling.
    fn feed(&mut self, mut bytes: &[u8], mut chunked: Option<(&mut Rng, bool)>) {
        while !bytes.is_empty() {
            let piece = bytes.len();
            let zero_copy = match &mut chunked {
                Some((rng, _)) => rng.next() & 1 == 1,
                None => false,
            };
            let n = if zero_copy {
                let spare = self.e.rx_spare();
                let n = spare.len().min(piece);
                spare[..n].copy_from_slice(&bytes[..n]);
                self.e.rx_commit(n);
                n
            } else {
                self.e.consume(&bytes[..piece])
            };
            assert!(n <= piece);
            self.fed += n as u64;
            bytes = &bytes[n..];
            self.check();
            let mut progress = n;
            if let Some((rng, true)) = &mut chunked {
                progress += self.read_payload(rng);
            }
            progress += self.drain(Instant::from_millis(self.now_ms));
            let spare = self.e.rx_spare().len();
            assert!(spare + self.e.buffered() <= self.rec.cap);
            if progress == 0 {
                panic!(
                    "engine stalled: consume took 0 bytes and poll returned None \
                     (capacity {}, buffered {}, state {:?})",
                    self.rec.cap,
                    self.e.buffered(),
                    self.e.data_state()
                );
            }
        }
    }

    fn op(&mut self, op: Op) {
        match op {
            Op::Expect(len) => self.e.expect_data(len),
            Op::Abort => {
                let expected = match self.rec.payload {
                    Some(Payload { len: Some(n), got }) => n - got as u32,
                    _ => 0,
                };
                assert_eq!(self.e.abort_data(), expected, "abort_data return");
                self.rec.payload = None;
            }
            Op::Reset => {
                self.e.reset();
                self.rec.payload = None;
                self.rec.epochs.push(Vec::new());
            }
            Op::Sleep(ms) => self.now_ms += ms,
        }
        self.check();
        self.drain(Instant::from_millis(self.now_ms));
    }

    fn finish(&mut self) {
        self.drain(Instant::MAX);
    }
}

fn run_chunked(s: &Setup<'_>) -> Vec<Vec<Tok>> {
    let mut buf = vec![0u8; s.cap];
    let mut r = Run::new(&mut buf);
    let mut rng = Rng::new(s.seed);
    r.e.expect_data(s.first);
    let mut pos = 0;
    for &(at, op) in &s.ops {
        feed_ticking(&mut r, &s.stream[pos..at], s, &mut rng);
        pos = at;
        r.op(op);
    }
    feed_ticking(&mut r, &s.stream[pos..], s, &mut rng);
    r.finish();
    r.rec.epochs
}

/// Feeds in the chosen chunks, letting `tick_ms` pass before each chunk.
fn feed_ticking(r: &mut Run<'_>, bytes: &[u8], s: &Setup<'_>, rng: &mut Rng) {
    // `feed` offers each chunk again until the engine has taken all of it.
    let mut rest = bytes;
    while !rest.is_empty() {
        let piece = match s.chunking {
            Chunking::Fixed(n) => n.min(rest.len()),
            Chunking::Random { max } => rng.size(max).min(rest.len()),
        };
        r.now_ms += s.tick_ms;
        r.feed(&rest[..piece], Some((&mut *rng, s.reader)));
        rest = &rest[piece..];
    }
}

fn run_whole(s: &Setup<'_>) -> Vec<Vec<Tok>> {
    let mut buf = vec![0u8; s.cap];
    let mut r = Run::new(&mut buf);
    r.e.expect_data(s.first);
    let mut pos = 0;
    for &(at, op) in &s.ops {
        r.feed(&s.stream[pos..at], None);
        pos = at;
        r.op(op);
    }
    r.feed(&s.stream[pos..], None);
    r.finish();
    r.rec.epochs
}

/// The part of an epoch whose events do not depend on timing.
fn comparable(epoch: &[Tok]) -> &[Tok] {
    match epoch.iter().position(|t| *t == Tok::Start(None)) {
        Some(i) => &epoch[..=i],
        None => epoch,
    }
}

fuzz_target!(|data: &[u8]| {
    let s = setup(data);
    let chunked = run_chunked(&s);
    let whole = run_whole(&s);
    assert_eq!(chunked.len(), whole.len());
    for (c, w) in chunked.iter().zip(&whole) {
        assert_eq!(comparable(c), comparable(w), "chunked vs whole");
    }
});
