//! Fuzzes the engine's chunked payloads (`DataLength::Chunked`: SIMCom's `+HTTPREAD:` and
//! `+SHREAD:` pieces, before or after `OK`).
//!
//! Input layout (missing bytes read as 0):
//!
//! | byte | meaning                                                                 |
//! |------|-------------------------------------------------------------------------|
//! | 0    | bit 0 header (`+HTTPREAD:` / `+SHREAD:`), bit 1 a total, bits 2-7 total  |
//! | 1    | buffer capacity: 16 + byte (16..=271)                                   |
//! | 2    | PRNG seed for the chunked run's read sizes                              |
//! | rest | the bytes the modem sends                                               |
//!
//! The stream is fed twice, whole and in random pieces of 1..=64 bytes, polling after
//! each. Checked: nothing panics and the engine never stalls; both runs give the same
//! events (consecutive `Data` merged); a piece never yields more bytes than its header
//! announced, and a new piece or the payload's end comes only once the piece is complete;
//! every `Line` is non-empty and has no CR/LF; lent slices stay within the capacity.
#![no_main]
use cellular_ota::at::{DataLength, Engine, Event, Instant};
use libfuzzer_sys::fuzz_target;

const HEADERS: [&[u8]; 2] = [b"+HTTPREAD:", b"+SHREAD:"];

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Line(Vec<u8>),
    Other(String),
    Start(Option<u32>),
    Data(Vec<u8>),
    End,
}

struct Record {
    cap: usize,
    toks: Vec<Tok>,
    /// The open piece: announced length and bytes so far.
    piece: Option<(u32, u64)>,
}

impl Record {
    fn event(&mut self, ev: Event<'_>) {
        match ev {
            Event::Data(d) => {
                assert!(!d.is_empty() && d.len() <= self.cap);
                let (n, got) = self.piece.as_mut().expect("Data outside a piece");
                *got += d.len() as u64;
                assert!(*got <= u64::from(*n), "piece of {n} produced {got}");
                if let Some(Tok::Data(old)) = self.toks.last_mut() {
                    old.extend_from_slice(d);
                } else {
                    self.toks.push(Tok::Data(d.to_vec()));
                }
            }
            Event::DataStart { len } => {
                if let Some((n, got)) = self.piece {
                    assert_eq!(got, u64::from(n), "a new piece before the last was complete");
                }
                self.piece = Some((len.unwrap_or(u32::MAX), 0));
                self.toks.push(Tok::Start(len));
            }
            Event::DataEnd => {
                if let Some((n, got)) = self.piece.take() {
                    assert_eq!(got, u64::from(n), "payload ended inside a piece");
                }
                self.toks.push(Tok::End);
            }
            Event::Line(l) | Event::Echo(l) => {
                assert!(!l.is_empty() && !l.iter().any(|&b| b == b'\r' || b == b'\n'));
                self.toks.push(Tok::Line(l.to_vec()));
            }
            other => self.toks.push(Tok::Other(format!("{other:?}"))),
        }
    }
}

fn run(stream: &[u8], cap: usize, expect: DataLength, sizes: &mut dyn FnMut() -> usize) -> Vec<Tok> {
    let mut buf = vec![0u8; cap];
    let mut e = Engine::new(&mut buf);
    e.expect_data(Some(expect));
    let mut rec = Record {
        cap,
        toks: Vec::new(),
        piece: None,
    };
    let mut rest = stream;
    while !rest.is_empty() {
        let want = sizes().min(rest.len());
        let n = e.consume(&rest[..want]);
        rest = &rest[n..];
        let mut events = 0;
        while let Some(ev) = e.poll(Instant::ZERO) {
            rec.event(ev);
            events += 1;
        }
        assert!(n > 0 || events > 0, "stalled: buffer full and no event");
        assert!(e.buffered() <= cap);
    }
    rec.toks
}

fuzz_target!(|data: &[u8]| {
    let b = |i: usize| data.get(i).copied().unwrap_or(0);
    let header = HEADERS[usize::from(b(0) & 1)];
    let total = (b(0) & 2 != 0).then(|| u32::from(b(0) >> 2));
    let cap = 16 + usize::from(b(1));
    let stream = data.get(3..).unwrap_or(&[]);
    let expect = DataLength::Chunked { header, total };
    let whole = run(stream, cap, expect, &mut || usize::MAX);
    let mut state = u64::from(b(2)).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let pieces = run(stream, cap, expect, &mut || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        1 + (state.wrapping_mul(0x2545_f491_4f6c_dd1d) % 64) as usize
    });
    assert_eq!(whole, pieces);
});
