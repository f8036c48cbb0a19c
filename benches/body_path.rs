//! Bytes per second of an HTTP body through the zero-copy payload path, against a plain
//! `memcpy` of the same bytes.
//!
//! The modem is an in-memory transport replaying `\r\nCONNECT\r\n` + 1 MiB body +
//! `\r\nOK\r\n\r\n+QHTTPREAD: 0\r\n`, returning at most `chunk` bytes per read (a UART
//! driver handing over what its DMA buffer holds). Contenders, all writing the body into the
//! same 1 MiB destination:
//!
//! * `reader/4096`, `reader/256`: the blocking client's `read_data(&HttpRead::exact(n))`,
//!   then `fill_buf` / `consume` (rx buffer 4 KiB), then `finish`;
//! * `engine`: the engine alone, `Engine::consume` + `poll` → `Event::Data`;
//! * `bounce`: the floor of any design that reads a UART into a buffer: copy 4 KiB chunks
//!   into a 4 KiB buffer, then into the destination (two copies, no framing);
//! * `memcpy`: one `copy_from_slice` of the body from the source stream.

mod common;

use std::convert::Infallible;
use std::hint::black_box;
use std::time::Duration;

use cellular_ota::at::{Clock, DataLength, Engine, Event, Final, Instant};
use cellular_ota::client::CountUrcs;
use cellular_ota::client::blocking::Client;
use cellular_ota::quectel::http::HttpRead;
use common::{Contender, Mode};
use criterion::{BenchmarkId, Throughput};
use embedded_io::{BufRead, ErrorType, Read, ReadReady, Write};

const HEAD: &[u8] = b"\r\nCONNECT\r\n";
const TAIL: &[u8] = b"\r\nOK\r\n\r\n+QHTTPREAD: 0\r\n";
const RX: usize = 4096;

/// A modem that replays `data`, `chunk` bytes at most per read, and swallows writes.
struct MemUart<'a> {
    data: &'a [u8],
    pos: usize,
    chunk: usize,
}

impl ErrorType for MemUart<'_> {
    type Error = Infallible;
}

impl Read for MemUart<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        let n = buf.len().min(self.chunk).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl ReadReady for MemUart<'_> {
    fn read_ready(&mut self) -> Result<bool, Infallible> {
        // Always ready: at the end `read` returns 0 and the client reports `Closed`
        // instead of spinning.
        Ok(true)
    }
}

impl Write for MemUart<'_> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

/// A clock that stands still: no deadline ever passes (the transfer never waits).
struct Frozen;

impl Clock for Frozen {
    fn now(&self) -> Instant {
        Instant::ZERO
    }
}

/// Pseudo-random body bytes (xorshift), so nothing depends on their content.
fn body(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The blocking client's zero-copy reader, end to end.
fn via_reader(stream: &[u8], body_len: usize, chunk: usize, rx: &mut [u8], dst: &mut [u8]) {
    let uart = MemUart {
        data: stream,
        pos: 0,
        chunk,
    };
    let mut resp = [0u8; 256];
    let mut client = Client::new(uart, Frozen, rx, &mut resp, CountUrcs(0));
    let mut reader = client
        .read_data(&HttpRead::exact(body_len as u32))
        .expect("CONNECT");
    let mut pos = 0;
    loop {
        let buf = reader.fill_buf().expect("payload");
        if buf.is_empty() {
            break;
        }
        let n = buf.len();
        dst[pos..pos + n].copy_from_slice(buf);
        pos += n;
        reader.consume(n);
    }
    let total = reader.finish().expect("OK");
    assert_eq!((pos, total), (body_len, body_len as u64));
    black_box(&mut *dst);
}

/// The engine alone: consume what one read returned, poll the `Data` events.
fn via_engine(stream: &[u8], body_len: usize, chunk: usize, rx: &mut [u8], dst: &mut [u8]) {
    let mut engine = Engine::new(rx);
    engine.expect_data(Some(DataLength::Exact(body_len as u32)));
    let (mut fed, mut pos, mut done) = (0, 0, false);
    while !done {
        let end = (fed + chunk).min(stream.len());
        assert!(fed < end, "stream ended before OK");
        fed += engine.consume(&stream[fed..end]);
        while let Some(ev) = engine.poll(Instant::ZERO) {
            match ev {
                Event::Data(d) => {
                    dst[pos..pos + d.len()].copy_from_slice(d);
                    pos += d.len();
                }
                Event::Final(Final::Ok) => done = true,
                _ => {}
            }
        }
    }
    assert_eq!(pos, body_len);
    black_box(&mut *dst);
}

/// Two plain copies through a 4 KiB buffer: what reading a UART costs with no framing.
fn via_bounce(body: &[u8], bounce: &mut [u8], dst: &mut [u8]) {
    let mut pos = 0;
    for c in body.chunks(bounce.len()) {
        let b = &mut bounce[..c.len()];
        b.copy_from_slice(c);
        let b = black_box(b);
        dst[pos..pos + b.len()].copy_from_slice(b);
        pos += b.len();
    }
    black_box(&mut *dst);
}

fn via_memcpy(body: &[u8], dst: &mut [u8]) {
    dst.copy_from_slice(black_box(body));
    black_box(&mut *dst);
}

fn main() {
    let mode = common::mode();
    let body_len = match mode {
        Mode::Bench => 1 << 20,
        Mode::Test => 64 << 10,
    };
    let payload = body(body_len);
    let mut stream = Vec::with_capacity(HEAD.len() + body_len + TAIL.len());
    stream.extend_from_slice(HEAD);
    stream.extend_from_slice(&payload);
    stream.extend_from_slice(TAIL);
    let body_src = &stream[HEAD.len()..HEAD.len() + body_len];
    let mut rx = vec![0u8; RX];
    let mut bounce = vec![0u8; RX];
    let mut dst = vec![0u8; body_len];

    // Every path must deliver exactly the body.
    for check in 0..4 {
        dst.fill(0);
        match check {
            0 => via_reader(&stream, body_len, 4096, &mut rx, &mut dst),
            1 => via_reader(&stream, body_len, 256, &mut rx, &mut dst),
            2 => via_engine(&stream, body_len, 4096, &mut rx, &mut dst),
            _ => via_bounce(body_src, &mut bounce, &mut dst),
        }
        assert!(dst == payload, "path {check} corrupted the body");
    }

    let mut c = common::criterion();
    {
        let mut g = c.benchmark_group("body_path");
        g.throughput(Throughput::Bytes(body_len as u64));
        for chunk in [4096, 256] {
            g.bench_function(BenchmarkId::new("reader", chunk), |b| {
                b.iter(|| via_reader(&stream, body_len, chunk, &mut rx, &mut dst))
            });
        }
        g.bench_function("engine/4096", |b| {
            b.iter(|| via_engine(&stream, body_len, 4096, &mut rx, &mut dst))
        });
        g.bench_function("bounce/4096", |b| {
            b.iter(|| via_bounce(body_src, &mut bounce, &mut dst))
        });
        g.bench_function("memcpy", |b| b.iter(|| via_memcpy(body_src, &mut dst)));
        g.finish();
    }
    c.final_summary();

    if mode == Mode::Test {
        println!("body_path: test mode, every path checked once; no ratios");
        return;
    }

    // The figures: all contenders interleaved in this run; ratios are medians of per-round
    // ratios, rates are median times.
    let (rx, bounce, dst) = (
        std::cell::RefCell::new(rx),
        std::cell::RefCell::new(bounce),
        std::cell::RefCell::new(dst),
    );
    let mut contenders = [
        Contender::new("reader/4096", || {
            via_reader(
                &stream,
                body_len,
                4096,
                &mut rx.borrow_mut(),
                &mut dst.borrow_mut(),
            )
        }),
        Contender::new("reader/256", || {
            via_reader(
                &stream,
                body_len,
                256,
                &mut rx.borrow_mut(),
                &mut dst.borrow_mut(),
            )
        }),
        Contender::new("engine/4096", || {
            via_engine(
                &stream,
                body_len,
                4096,
                &mut rx.borrow_mut(),
                &mut dst.borrow_mut(),
            )
        }),
        Contender::new("bounce/4096", || {
            via_bounce(body_src, &mut bounce.borrow_mut(), &mut dst.borrow_mut())
        }),
        Contender::new("memcpy", || via_memcpy(body_src, &mut dst.borrow_mut())),
    ];
    let s = common::interleaved(&mut contenders, 101, Duration::from_millis(6));
    let (reader, reader256, engine, bounce, memcpy) = (0, 1, 2, 3, 4);
    let bytes = body_len as f64;
    let mbs = |i: usize| common::rate(bytes, s.median(i), "B");
    println!(
        "RATIO body_path reader/memcpy = {:.2} (reader {}, memcpy {})",
        s.speedup(reader, memcpy),
        mbs(reader),
        mbs(memcpy)
    );
    println!(
        "RATIO body_path engine/memcpy = {:.2} (engine {}, memcpy {})",
        s.speedup(engine, memcpy),
        mbs(engine),
        mbs(memcpy)
    );
    println!(
        "RATIO body_path reader/engine = {:.2} (reader {}, engine alone {})",
        s.speedup(reader, engine),
        mbs(reader),
        mbs(engine)
    );
    println!(
        "RATIO body_path reader/bounce = {:.2} (reader {}, two plain copies through 4 KiB {})",
        s.speedup(reader, bounce),
        mbs(reader),
        mbs(bounce)
    );
    println!(
        "RATIO body_path reader256/memcpy = {:.2} (reader with 256-byte reads {}, memcpy {})",
        s.speedup(reader256, memcpy),
        mbs(reader256),
        mbs(memcpy)
    );
}
