//! Fuzzes the payload reader as the log decoder drives it: [`LogDecoder`] fed arbitrary
//! modem bytes, with host command lines from a small dictionary given at chosen points.
//!
//! Input layout (missing bytes read as 0):
//!
//! | byte | meaning                                                                      |
//! |------|------------------------------------------------------------------------------|
//! | 0-1  | buffer capacity: 16 + (u16 LE % 1009), i.e. 16..=1024                         |
//! | 2    | fake milliseconds that pass per chunk                                        |
//! | 3    | PRNG seed for the chunk sizes (1..=64)                                       |
//! | 4    | number of host commands (% 9), then 3 bytes each: stream offset (u16 LE,     |
//! |      | modulo the stream length + 1), index into `COMMANDS`                         |
//! | rest | the bytes the modem sends                                                    |
//!
//! Invariants checked:
//! * nothing panics and the decoder never stalls (buffer full, `poll` says "need more");
//! * `PayloadStart` / `Payload` / `PayloadEnd` are properly nested: no `PayloadStart`
//!   inside a payload, no `Payload` or `PayloadEnd` outside one, and no other event inside
//!   one;
//! * a payload of announced length n yields at most n bytes, exactly n by `PayloadEnd`;
//! * commands and lines are non-empty and contain no CR/LF; `Urc` / `MalformedUrc` lines
//!   satisfy `is_urc` and re-parse to the same result, plain lines are not URCs.

#![no_main]

use cellular_ota::at::Instant;
use cellular_ota::quectel::log_decoder::{LogDecoder, LogEvent};
use cellular_ota::quectel::urc::{Urc, is_urc};
use libfuzzer_sys::fuzz_target;

const COMMANDS: [&[u8]; 8] = [
    b"AT+QHTTPREAD=80",
    b"AT+QFDWL=\"a\"",
    b"AT+QFREAD=1,8",
    b"AT+QHTTPGET=80",
    b"AT+QHTTPREAD=80\r",
    b"AT+QHTTPREADFILE=\"UFS:a\",80",
    b"AT+QHTTPREAD?",
    b"AT+QFUPL=\"a\",10",
];
const HEADER: usize = 5;
const MAX_COMMANDS: usize = 8;

struct Check {
    cap: usize,
    /// `Some(len)` inside a payload, with the bytes seen so far.
    payload: Option<(Option<u32>, u64)>,
}

fn has_line_end(s: &[u8]) -> bool {
    s.iter().any(|&b| b == b'\r' || b == b'\n')
}

impl Check {
    fn event(&mut self, ev: LogEvent<'_>) {
        match ev {
            LogEvent::PayloadStart { len } => {
                assert!(self.payload.is_none(), "PayloadStart inside a payload");
                self.payload = Some((len, 0));
                return;
            }
            LogEvent::Payload(d) => {
                assert!(!d.is_empty(), "empty Payload");
                assert!(d.len() <= self.cap);
                let (len, got) = self.payload.as_mut().expect("Payload outside a payload");
                *got += d.len() as u64;
                if let Some(n) = *len {
                    assert!(*got <= u64::from(n), "payload of {n} bytes yielded {got}");
                }
                return;
            }
            LogEvent::PayloadEnd => {
                let (len, got) = self.payload.take().expect("PayloadEnd outside a payload");
                if let Some(n) = len {
                    assert_eq!(got, u64::from(n), "payload ended short");
                }
                return;
            }
            _ => {}
        }
        assert!(self.payload.is_none(), "{ev:?} inside a payload");
        match ev {
            LogEvent::Command(l) | LogEvent::Line(l) => {
                assert!(
                    !l.is_empty() && !has_line_end(l) && l.len() <= self.cap,
                    "{ev:?}"
                );
                if let LogEvent::Line(l) = ev {
                    assert_eq!(Urc::parse(l), None, "a URC reported as a plain line");
                }
            }
            LogEvent::Urc { line, urc } => {
                assert!(is_urc(line));
                assert_eq!(Urc::parse(line), Some(Ok(urc)));
            }
            LogEvent::MalformedUrc { line, error } => {
                assert!(is_urc(line));
                assert_eq!(Urc::parse(line), Some(Err(error)));
            }
            LogEvent::Overflow { discarded } => assert!(discarded >= self.cap),
            _ => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let b = |i: usize| data.get(i).copied().unwrap_or(0);
    let cap = 16 + usize::from(u16::from_le_bytes([b(0), b(1)])) % 1009;
    let tick = u64::from(b(2));
    let mut seed = u64::from(b(3)).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let n_cmds = usize::from(b(4)) % (MAX_COMMANDS + 1);
    let start = (HEADER + 3 * n_cmds).min(data.len());
    let stream = &data[start..];
    let mut cmds: Vec<(usize, &[u8])> = (0..n_cmds)
        .map(|k| {
            let o = HEADER + 3 * k;
            let at = usize::from(u16::from_le_bytes([b(o), b(o + 1)])) % (stream.len() + 1);
            (at, COMMANDS[usize::from(b(o + 2)) % COMMANDS.len()])
        })
        .collect();
    cmds.sort_by_key(|&(at, _)| at);

    let mut buf = vec![0u8; cap];
    let mut d = LogDecoder::new(&mut buf);
    let mut check = Check { cap, payload: None };
    let mut now = 0u64;
    let mut pos = 0usize;
    let mut next_cmd = 0usize;
    let drain = |d: &mut LogDecoder<'_>, check: &mut Check, now: Instant| -> usize {
        let mut events = 0;
        while let Some(ev) = d.poll(now) {
            check.event(ev);
            events += 1;
            assert!(events <= 2 * cap + 8, "poll keeps returning events");
        }
        events
    };
    loop {
        while next_cmd < cmds.len() && cmds[next_cmd].0 <= pos {
            d.host_command(cmds[next_cmd].1);
            next_cmd += 1;
        }
        if pos == stream.len() {
            break;
        }
        // The next chunk ends at the next command's offset at the latest.
        let limit = cmds.get(next_cmd).map_or(stream.len(), |c| c.0);
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        let size = 1 + (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) % 64) as usize;
        let end = (pos + size).min(limit);
        now += tick;
        while pos < end {
            let n = d.feed(&stream[pos..end]);
            pos += n;
            let events = drain(&mut d, &mut check, Instant::from_millis(now));
            if n == 0 && events == 0 {
                panic!(
                    "decoder stalled: feed took 0 bytes and poll returned None (capacity {cap})"
                );
            }
        }
    }
    drain(&mut d, &mut check, Instant::MAX);
});
