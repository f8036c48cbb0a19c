//! Output bytes per second of the detools patch decoder (`cellular_ota::delta`), against a
//! plain `memcpy` of the same number of bytes, measured interleaved in the same run.
//!
//! The patch is the realistic one of the fixtures: the example firmware's ESP32-C3 app image
//! (`fixtures/esp32c3_app_v1.bin`) against its next version with a small code change
//! (`esp32c3_app_v2.bin`, 335,088 bytes, of which 163,582 differ: code moved), made by
//! detools 0.53.0 with esp_delta_ota's settings (`fixtures/delta/`):
//!
//! * `heatshrink`: `esp32c3-app-heatshrink.patch` (8,315 bytes; w8/l7, as esp_delta_ota);
//! * `none`: the same blocks without compression, rebuilt here from the heatshrink patch's
//!   events (detools' own `-c none` patch of this pair is not committed: it is as large as
//!   the image);
//! * `heatshrink-256`: the heatshrink patch through `DeltaDecoder<256>`, the decoder the
//!   update flow runs (events of at most 256 bytes instead of 1024);
//! * `memcpy`: one `copy_from_slice` of the 335,088-byte target.
//!
//! Each decoder run feeds the patch in 4 KiB slices (what a modem read hands over) and
//! writes every event into a RAM copy of the target: diff bytes added to the base image
//! (also in RAM), extra bytes copied. Flash reads and writes, which dominate on a device,
//! are not in it.

mod common;

use std::hint::black_box;
use std::time::Duration;

use cellular_ota::delta::{DeltaDecoder, Event};
use common::{Contender, Mode};
use criterion::Throughput;

const SLICE: usize = 4096;

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// Decodes `patch` against `base` into `dst` (which must be the target's size).
fn apply(patch: &[u8], base: &[u8], dst: &mut [u8]) {
    apply_with::<1024>(patch, base, dst)
}

/// [`apply`] with an `OUT`-byte output buffer.
fn apply_with<const OUT: usize>(patch: &[u8], base: &[u8], dst: &mut [u8]) {
    let mut dec = DeltaDecoder::<OUT>::with_buffer(base.len() as u32);
    for chunk in patch.chunks(SLICE) {
        let mut input = chunk;
        loop {
            let (used, ev) = dec.decode(input).unwrap();
            input = &input[used..];
            match ev {
                Event::Diff {
                    to_offset,
                    base_offset,
                    add,
                } => {
                    let out = &mut dst[to_offset as usize..][..add.len()];
                    let base = &base[base_offset as usize..][..add.len()];
                    for ((o, b), a) in out.iter_mut().zip(base).zip(add) {
                        *o = b.wrapping_add(*a);
                    }
                }
                Event::Extra { to_offset, data } => {
                    dst[to_offset as usize..][..data.len()].copy_from_slice(data);
                }
                Event::NeedInput | Event::Done | Event::Stopped => break,
            }
        }
    }
    assert_eq!(dec.finish(), Ok(dst.len() as u32));
    black_box(&mut *dst);
}

/// A detools number: sign and magnitude, six bits first, seven per following byte.
fn push_number(out: &mut Vec<u8>, v: i64) {
    let mut m = v.unsigned_abs();
    let mut b = (m & 0x3f) as u8 | if v < 0 { 0x40 } else { 0 };
    m >>= 6;
    while m > 0 {
        out.push(b | 0x80);
        b = (m & 0x7f) as u8;
        m >>= 7;
    }
    out.push(b);
}

/// The same instructions as `patch`, as an uncompressed (`-c none`) patch: one block per
/// diff event (an empty extra follows a diff that is not followed by an extra).
fn as_none_patch(patch: &[u8], base_len: u32) -> Vec<u8> {
    // (diff base offset, diff bytes, extra bytes) per block.
    let mut blocks: Vec<(u32, Vec<u8>, Vec<u8>)> = Vec::new();
    let mut dec = DeltaDecoder::new(base_len);
    let mut input = patch;
    loop {
        let (used, ev) = dec.decode(input).unwrap();
        input = &input[used..];
        match ev {
            Event::Diff {
                base_offset, add, ..
            } => match blocks.last_mut() {
                Some((off, diff, extra))
                    if extra.is_empty() && *off + diff.len() as u32 == base_offset =>
                {
                    diff.extend_from_slice(add)
                }
                _ => blocks.push((base_offset, add.to_vec(), Vec::new())),
            },
            Event::Extra { data, .. } => match blocks.last_mut() {
                Some((_, _, extra)) => extra.extend_from_slice(data),
                None => blocks.push((0, Vec::new(), data.to_vec())),
            },
            Event::NeedInput | Event::Done | Event::Stopped => break,
        }
    }
    let to_size = dec.finish().unwrap();
    let mut out = vec![0x00];
    push_number(&mut out, i64::from(to_size));
    push_number(&mut out, 0); // no data format
    let mut base_pos = 0i64;
    for (k, (off, diff, extra)) in blocks.iter().enumerate() {
        // The adjustment before this block was written with the previous one; the first
        // block's base offset must be reached from 0 by an empty block.
        if k == 0 && *off != 0 && !diff.is_empty() {
            push_number(&mut out, 0);
            push_number(&mut out, 0);
            push_number(&mut out, i64::from(*off));
            base_pos = i64::from(*off);
        }
        push_number(&mut out, diff.len() as i64);
        out.extend_from_slice(diff);
        push_number(&mut out, extra.len() as i64);
        out.extend_from_slice(extra);
        base_pos += diff.len() as i64;
        let next = blocks
            .get(k + 1)
            .filter(|b| !b.1.is_empty())
            .map_or(base_pos, |b| i64::from(b.0));
        push_number(&mut out, next - base_pos);
        base_pos = next;
    }
    out
}

fn main() {
    let mode = common::mode();
    let base = fixture("fixtures/esp32c3_app_v1.bin");
    let heatshrink = fixture("fixtures/delta/esp32c3-app-heatshrink.patch");
    let none = as_none_patch(&heatshrink, base.len() as u32);
    let to_len = {
        let mut d = DeltaDecoder::new(base.len() as u32);
        let _ = d.decode(&heatshrink[..4]).unwrap();
        d.target_size().unwrap() as usize
    };
    let mut target = vec![0u8; to_len];
    apply(&heatshrink, &base, &mut target);
    let mut dst = vec![0u8; to_len];
    assert!(target == fixture("fixtures/esp32c3_app_v2.bin"));
    apply(&none, &base, &mut dst);
    assert!(dst == target, "none disagrees with heatshrink");
    apply_with::<256>(&heatshrink, &base, &mut dst);
    assert!(dst == target, "a 256-byte output buffer disagrees");
    println!(
        "delta: target {} bytes; patches heatshrink {}, none {} bytes",
        to_len,
        heatshrink.len(),
        none.len()
    );

    let mut c = common::criterion();
    {
        let mut g = c.benchmark_group("delta");
        g.throughput(Throughput::Bytes(to_len as u64));
        g.bench_function("heatshrink", |b| {
            b.iter(|| apply(&heatshrink, &base, &mut dst))
        });
        g.bench_function("heatshrink-256", |b| {
            b.iter(|| apply_with::<256>(&heatshrink, &base, &mut dst))
        });
        g.bench_function("none", |b| b.iter(|| apply(&none, &base, &mut dst)));
        g.bench_function("memcpy", |b| {
            b.iter(|| {
                dst.copy_from_slice(black_box(&target));
                black_box(&mut dst);
            })
        });
        g.finish();
    }
    c.final_summary();

    if mode == Mode::Test {
        println!("delta: test mode, every decoder checked once; no ratios");
        return;
    }

    let dst = std::cell::RefCell::new(dst);
    let mut contenders = [
        Contender::new("heatshrink", || {
            apply(&heatshrink, &base, &mut dst.borrow_mut())
        }),
        Contender::new("none", || apply(&none, &base, &mut dst.borrow_mut())),
        Contender::new("heatshrink-256", || {
            apply_with::<256>(&heatshrink, &base, &mut dst.borrow_mut())
        }),
        Contender::new("memcpy", || {
            let mut d = dst.borrow_mut();
            d.copy_from_slice(black_box(&target));
            black_box(&mut *d);
        }),
    ];
    let s = common::interleaved(&mut contenders, 51, Duration::from_millis(20));
    let (hs, no, hs256, memcpy) = (0, 1, 2, 3);
    let mbs = |i: usize| common::rate(to_len as f64, s.median(i), "B");
    for (name, i) in [("heatshrink", hs), ("none", no), ("heatshrink-256", hs256)] {
        println!(
            "RATIO delta {name}/memcpy = {:.4} ({name} {} of output, memcpy {})",
            s.speedup(i, memcpy),
            mbs(i),
            mbs(memcpy)
        );
    }
}
