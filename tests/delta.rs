//! The detools patch decoder (`cellular_ota::delta`, feature `delta`) judged by the real
//! tool: patches made by detools 0.53.0 (`fixtures/delta/make_patches.py`, the flags
//! esp_delta_ota uses) must rebuild their targets byte for byte, however the patch is cut
//! into slices and wherever the decoder is saved and restored; and a live run of detools,
//! when it is installed, on data made up here.
#![cfg(feature = "delta")]

use std::path::{Path, PathBuf};
use std::process::Command;

use cellular_ota::delta::{Compression, DeltaDecoder, DeltaError, Event, STATE_LEN, STATE_VERSION};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One pair of `fixtures/delta/MANIFEST`, its target rebuilt from the base and the edits.
struct Pair {
    name: String,
    base: Vec<u8>,
    target: Vec<u8>,
}

fn apply_edits(base: &[u8], edits: &str) -> Vec<u8> {
    let mut out = base.to_vec();
    for line in edits.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let num = |s: &str| s.parse::<usize>().unwrap();
        let hex = |s: &str| {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect::<Vec<u8>>()
        };
        match f[0] {
            "replace" => {
                let (at, bytes) = (num(f[1]), hex(f[2]));
                out[at..at + bytes.len()].copy_from_slice(&bytes);
            }
            "insert" => {
                let at = num(f[1]);
                out.splice(at..at, hex(f[2]));
            }
            "delete" => {
                let at = num(f[1]);
                out.drain(at..at + num(f[2]));
            }
            "truncate" => out.truncate(num(f[1])),
            other => panic!("unknown edit {other}"),
        }
    }
    out
}

fn pairs() -> Vec<Pair> {
    let dir = root().join("fixtures/delta");
    let manifest = std::fs::read_to_string(dir.join("MANIFEST")).unwrap();
    manifest
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            // pair base base_len target target_len target_sha256
            let f: Vec<&str> = l.split_whitespace().collect();
            let base = std::fs::read(root().join(f[1])).unwrap();
            assert_eq!(base.len(), f[2].parse::<usize>().unwrap(), "{l}");
            let target = if f[3] == "edits" {
                let edits = std::fs::read_to_string(dir.join(format!("{}.edits", f[0]))).unwrap();
                apply_edits(&base, &edits)
            } else {
                std::fs::read(root().join(f[3])).unwrap()
            };
            assert_eq!(target.len(), f[4].parse::<usize>().unwrap(), "{l}");
            let digest: String = Sha256::digest(&target)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(digest, f[5], "target of {}", f[0]);
            Pair {
                name: f[0].to_string(),
                base,
                target,
            }
        })
        .collect()
}

/// The pairs, and every committed patch with its pair: (file name, patch, pair index).
type Fixtures = (Vec<Pair>, Vec<(String, Vec<u8>, usize)>);

/// Loads [`Fixtures`].
fn fixtures() -> Fixtures {
    let pairs = pairs();
    let mut patches = Vec::new();
    for (k, p) in pairs.iter().enumerate() {
        for c in ["none", "crle", "heatshrink"] {
            let name = format!("{}-{c}.patch", p.name);
            if let Ok(bytes) = std::fs::read(root().join("fixtures/delta").join(&name)) {
                patches.push((name, bytes, k));
            }
        }
    }
    assert_eq!(patches.len(), 12, "fixtures/delta holds 12 patches");
    (pairs, patches)
}

/// Output under construction: checks each event against the base and the offsets so far.
struct Sink<'a> {
    base: &'a [u8],
    out: Vec<u8>,
    events: usize,
}

impl Sink<'_> {
    fn take(&mut self, event: &Event<'_>) {
        match *event {
            Event::Diff {
                to_offset,
                base_offset,
                add,
            } => {
                assert_eq!(to_offset as usize, self.out.len());
                assert!(!add.is_empty());
                let base = &self.base[base_offset as usize..][..add.len()];
                let start = self.out.len();
                self.out.extend_from_slice(base);
                cellular_ota::delta::add_base(&mut self.out[start..], add);
                self.events += 1;
            }
            Event::Extra { to_offset, data } => {
                assert_eq!(to_offset as usize, self.out.len());
                assert!(!data.is_empty());
                self.out.extend_from_slice(data);
                self.events += 1;
            }
            Event::NeedInput | Event::Done | Event::Stopped => {}
        }
    }
}

/// Feeds `patch` in slices ending at `cuts` (and the end), handling every event; returns
/// the output and the decoder. Stops at the first error.
fn run(
    patch: &[u8],
    base: &[u8],
    cuts: &mut dyn Iterator<Item = usize>,
) -> (Vec<u8>, Result<DeltaDecoder, DeltaError>) {
    let mut dec = DeltaDecoder::new(base.len() as u32);
    let mut sink = Sink {
        base,
        out: Vec::new(),
        events: 0,
    };
    let mut from = 0;
    let ends: Vec<usize> = cuts.chain(std::iter::once(patch.len())).collect();
    for end in ends {
        let mut input = &patch[from..end.max(from)];
        from = end.max(from);
        loop {
            match dec.decode(input) {
                Ok((used, event)) => {
                    let done = matches!(event, Event::Done);
                    let need = matches!(event, Event::NeedInput);
                    if need {
                        assert_eq!(used, input.len(), "NeedInput leaves no input behind");
                    }
                    sink.take(&event);
                    input = &input[used..];
                    if done || need {
                        break;
                    }
                }
                Err(e) => return (sink.out, Err(e)),
            }
        }
    }
    (sink.out, Ok(dec))
}

fn check_complete(name: &str, pair: &Pair, out: &[u8], dec: Result<DeltaDecoder, DeltaError>) {
    let dec = dec.unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(dec.finish(), Ok(pair.target.len() as u32), "{name}");
    assert!(out == pair.target, "{name}: output differs from the target");
}

#[test]
fn every_fixture_whole_rebuilds_its_target() {
    let (pairs, patches) = fixtures();
    for (name, patch, k) in &patches {
        let pair = &pairs[*k];
        let (out, dec) = run(patch, &pair.base, &mut std::iter::empty());
        let dec_ok = dec.as_ref().unwrap();
        assert_eq!(dec_ok.patch_consumed(), patch.len() as u64, "{name}");
        assert_eq!(dec_ok.target_size(), Some(pair.target.len() as u32));
        let c = dec_ok.compression().unwrap();
        match name.rsplit('-').next().unwrap() {
            "none.patch" => assert_eq!(c, Compression::None),
            "crle.patch" => assert_eq!(c, Compression::Crle),
            _ if pair.target.is_empty() => assert!(matches!(c, Compression::Heatshrink { .. })),
            _ => assert_eq!(
                c,
                Compression::Heatshrink {
                    window_sz2: 8,
                    lookahead_sz2: 7
                }
            ),
        }
        check_complete(name, pair, &out, dec);
    }
}

#[test]
fn every_fixture_one_byte_at_a_time() {
    let (pairs, patches) = fixtures();
    for (name, patch, k) in &patches {
        let pair = &pairs[*k];
        let (out, dec) = run(patch, &pair.base, &mut (1..patch.len()));
        check_complete(name, pair, &out, dec);
    }
}

/// Split points: every position for patches up to 5 KiB of patch and 8 KiB of output,
/// otherwise 97 spread over the patch.
fn split_points(patch: &[u8], out_len: usize) -> Vec<usize> {
    if patch.len() <= 5 * 1024 && out_len <= 8 * 1024 {
        (0..=patch.len()).collect()
    } else {
        (0..=96).map(|i| i * patch.len() / 96).collect()
    }
}

#[test]
fn every_fixture_split_at_every_position() {
    let (pairs, patches) = fixtures();
    for (name, patch, k) in &patches {
        let pair = &pairs[*k];
        for at in split_points(patch, pair.target.len()) {
            let (out, dec) = run(patch, &pair.base, &mut std::iter::once(at));
            check_complete(&format!("{name} split at {at}"), pair, &out, dec);
        }
    }
}

/// Feeds `patch` in `step`-byte slices; after every call (every event boundary and every
/// `NeedInput`) saves the decoder, restores it from the record and goes on with the copy.
fn run_restoring_everywhere(patch: &[u8], base: &[u8], step: usize) -> (Vec<u8>, DeltaDecoder) {
    let mut dec = DeltaDecoder::new(base.len() as u32);
    let mut sink = Sink {
        base,
        out: Vec::new(),
        events: 0,
    };
    let mut state = [0u8; STATE_LEN];
    loop {
        let pos = dec.patch_consumed() as usize;
        let input = &patch[pos..(pos + step).min(patch.len())];
        let (_, event) = dec.decode(input).unwrap();
        let done = matches!(event, Event::Done);
        let end = matches!(event, Event::NeedInput) && pos + step >= patch.len();
        sink.take(&event);
        dec.save(&mut state).unwrap();
        let restored = DeltaDecoder::restore(&state).unwrap();
        assert_eq!(restored.patch_consumed(), dec.patch_consumed());
        assert_eq!(restored.output_position(), dec.output_position());
        assert_eq!(restored.output_position() as usize, sink.out.len());
        let mut again = [0u8; STATE_LEN];
        restored.save(&mut again).unwrap();
        assert_eq!(state, again, "save(restore(s)) == s");
        dec = restored;
        if done || end {
            return (sink.out, dec);
        }
    }
}

#[test]
fn save_and_restore_at_every_call_reproduce_the_output() {
    let (pairs, patches) = fixtures();
    for (name, patch, k) in &patches {
        let pair = &pairs[*k];
        // Byte by byte for the small ones (states in the middle of numbers, heatshrink
        // tokens and CRLE segments), 7-byte slices for the large one.
        let step = if pair.target.len() > 64 * 1024 { 7 } else { 1 };
        let (out, dec) = run_restoring_everywhere(patch, &pair.base, step);
        check_complete(name, pair, &out, Ok(dec));
    }
}

/// Resumes from a state saved at checkpoint `n` with a brand-new decoder fed from
/// `patch_consumed()` to the end: the output must be exactly the rest of the target.
#[test]
fn a_restored_decoder_fed_from_patch_consumed_produces_the_rest() {
    let (pairs, patches) = fixtures();
    for (name, patch, k) in &patches {
        let pair = &pairs[*k];
        let calls = patch.len().min(400);
        let every = if pair.target.len() > 64 * 1024 { 37 } else { 1 };
        let mut dec = DeltaDecoder::new(pair.base.len() as u32);
        let mut state = [0u8; STATE_LEN];
        for call in 0..calls {
            // Advance by one call on a 3-byte slice.
            let pos = dec.patch_consumed() as usize;
            let input = &patch[pos..(pos + 3).min(patch.len())];
            let (_, event) = dec.decode(input).unwrap();
            if matches!(event, Event::Done) {
                break;
            }
            if call % every != 0 {
                continue;
            }
            dec.save(&mut state).unwrap();
            let mut resumed = DeltaDecoder::restore(&state).unwrap();
            let at = resumed.output_position() as usize;
            let mut sink = Sink {
                base: &pair.base,
                out: pair.target[..at].to_vec(),
                events: 0,
            };
            let mut input = &patch[resumed.patch_consumed() as usize..];
            loop {
                let (used, event) = resumed.decode(input).unwrap();
                let stop = matches!(event, Event::Done | Event::NeedInput);
                sink.take(&event);
                input = &input[used..];
                if stop {
                    break;
                }
            }
            assert_eq!(
                resumed.finish(),
                Ok(pair.target.len() as u32),
                "{name} @{call}"
            );
            assert!(sink.out == pair.target, "{name}: resumed at call {call}");
        }
    }
}

/// `decode_until` stops exactly at each stop (no piece crosses one), and a decoder saved
/// there and restored, fed from `patch_consumed()`, rebuilds the rest: the checkpoints the
/// update flow takes every 16 KiB of output.
#[test]
fn decode_until_stops_exactly_and_resumes_from_there() {
    let (pairs, patches) = fixtures();
    for (name, patch, k) in &patches {
        let pair = &pairs[*k];
        let small = pair.target.len() <= 64 * 1024;
        for every in [1u32, 100, 4096, 16 * 1024] {
            if every < 4096 && !small {
                continue;
            }
            let mut dec = DeltaDecoder::new(pair.base.len() as u32);
            let mut sink = Sink {
                base: &pair.base,
                out: Vec::new(),
                events: 0,
            };
            let mut stop = every;
            let mut stops = 0;
            let mut state = [0u8; STATE_LEN];
            loop {
                let pos = dec.patch_consumed() as usize;
                let input = &patch[pos..(pos + 5).min(patch.len())];
                let (_, event) = dec.decode_until(input, stop).unwrap();
                if let Event::Diff {
                    to_offset, add: d, ..
                }
                | Event::Extra { to_offset, data: d } = event
                {
                    assert!(
                        to_offset + d.len() as u32 <= stop,
                        "{name}: piece crosses {stop}"
                    );
                }
                match event {
                    Event::Done => break,
                    Event::Stopped => {
                        assert_eq!(dec.output_position(), stop, "{name}");
                        assert_eq!(sink.out.len() as u32, stop, "{name}");
                        // Checkpoint: continue with a restored copy.
                        dec.save(&mut state).unwrap();
                        dec = DeltaDecoder::restore(&state).unwrap();
                        stops += 1;
                        stop += every;
                    }
                    Event::NeedInput if pos + 5 >= patch.len() => break,
                    ref e => sink.take(e),
                }
            }
            let expected = (pair.target.len() as u32).saturating_sub(1) / every;
            assert_eq!(
                stops, expected,
                "{name}: one stop per {every} bytes of output"
            );
            check_complete(
                &format!("{name} stopping every {every}"),
                pair,
                &sink.out,
                Ok(dec),
            );
        }
    }
}

#[test]
fn truncated_patches_are_incomplete_never_wrong() {
    let (pairs, patches) = fixtures();
    for (name, patch, k) in &patches {
        let pair = &pairs[*k];
        let cuts: Vec<usize> = if patch.len() <= 5 * 1024 && pair.target.len() <= 8 * 1024 {
            (0..patch.len()).collect()
        } else {
            (0..96).map(|i| i * patch.len() / 96).collect()
        };
        for cut in cuts {
            let (out, dec) = run(&patch[..cut], &pair.base, &mut std::iter::empty());
            let dec = dec.unwrap_or_else(|e| panic!("{name} cut at {cut}: {e}"));
            assert!(!dec.is_done(), "{name} cut at {cut} claims completion");
            assert!(
                matches!(dec.finish(), Err(DeltaError::Truncated { .. })),
                "{name} cut at {cut}"
            );
            assert!(
                pair.target.starts_with(&out),
                "{name} cut at {cut}: output is not a prefix of the target"
            );
        }
    }
}

#[test]
fn bytes_after_the_end_are_not_consumed() {
    let (pairs, patches) = fixtures();
    let (name, patch, k) = &patches[0];
    let pair = &pairs[*k];
    let mut longer = patch.clone();
    longer.extend_from_slice(b"trailing");
    let (out, dec) = run(&longer, &pair.base, &mut std::iter::empty());
    let dec = dec.unwrap();
    assert_eq!(dec.patch_consumed(), patch.len() as u64, "{name}");
    assert!(out == pair.target);
    let mut dec = dec;
    assert_eq!(dec.decode(b"more").unwrap(), (0, Event::Done));
}

fn first_error(patch: &[u8], base_len: u32) -> Option<DeltaError> {
    let mut dec = DeltaDecoder::new(base_len);
    let mut input = patch;
    loop {
        match dec.decode(input) {
            Ok((_, Event::NeedInput | Event::Done)) => return None,
            Ok((used, _)) => input = &input[used..],
            Err(e) => {
                // An error is final.
                assert_eq!(dec.decode(b"\0").unwrap_err(), e);
                assert_eq!(dec.finish(), Err(e));
                let mut state = [0u8; STATE_LEN];
                assert_eq!(dec.save(&mut state), Err(e));
                return Some(e);
            }
        }
    }
}

#[test]
fn unsupported_patches_are_refused_typed() {
    use DeltaError::*;
    // Header byte: bit 7 zero, patch type in bits 6..4, compression in bits 3..0.
    assert_eq!(first_error(&[0x80], 0), Some(BadHeader));
    assert_eq!(first_error(&[0x10], 0), Some(UnsupportedPatchType(1)));
    assert_eq!(first_error(&[0x24], 0), Some(UnsupportedPatchType(2)));
    for c in [1, 3, 5, 6, 7, 15] {
        assert_eq!(first_error(&[c], 0), Some(UnsupportedCompression(c)));
    }
    // Negative, over-long and above-4-GiB target sizes.
    assert_eq!(first_error(&[0x00, 0x41], 0), Some(BadHeader));
    assert_eq!(
        first_error(
            &[
                0x00, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80
            ],
            0
        ),
        Some(BadHeader)
    );
    // 2^32: value bits at 0, 6, 13, 20 and 27; bit 32 is bit 5 of the fifth byte.
    assert_eq!(
        first_error(&[0x00, 0x80, 0x80, 0x80, 0x80, 0x20], 0),
        Some(TargetTooLarge(1 << 32))
    );
    // Heatshrink settings: window 2^9 is too large for this decoder; lookahead must be
    // below the window.
    assert_eq!(
        first_error(&[0x04, 0x01, 0x54], 0),
        Some(UnsupportedHeatshrink {
            window_sz2: 9,
            lookahead_sz2: 7
        })
    );
    assert_eq!(
        first_error(&[0x04, 0x01, 0x45], 0),
        Some(UnsupportedHeatshrink {
            window_sz2: 8,
            lookahead_sz2: 8
        })
    );
    // A data-format pre-pass (`--data-format`).
    assert_eq!(
        first_error(&[0x00, 0x01, 0x05, 0x00], 0),
        Some(UnsupportedDataFormat)
    );
}

#[test]
fn malformed_blocks_are_refused_typed() {
    use DeltaError::*;
    // Target 4; diff of 5.
    assert_eq!(
        first_error(&[0x00, 0x04, 0x00, 0x05], 10),
        Some(TooLong {
            to_offset: 0,
            size: 5,
            to_size: 4
        })
    );
    // Target 4; diff 2 (fine), extra 3.
    assert_eq!(
        first_error(&[0x00, 0x04, 0x00, 0x02, 1, 1, 0x03], 10),
        Some(TooLong {
            to_offset: 2,
            size: 3,
            to_size: 4
        })
    );
    // A negative diff size.
    assert_eq!(
        first_error(&[0x00, 0x04, 0x00, 0x41], 10),
        Some(DeltaError::Corrupt(
            cellular_ota::delta::Corrupt::NegativeSize
        ))
    );
    // Diff of 4 against a base of 3.
    assert_eq!(
        first_error(&[0x00, 0x04, 0x00, 0x04], 3),
        Some(BaseOutOfRange {
            offset: 0,
            len: 4,
            base_len: 3
        })
    );
    // Diff 1, extra 0, adjustment -2: the next diff starts at -1.
    assert_eq!(
        first_error(&[0x00, 0x04, 0x00, 0x01, 7, 0x00, 0x42, 0x01], 10),
        Some(BaseOutOfRange {
            offset: -1,
            len: 1,
            base_len: 10
        })
    );
    // A CRLE segment of kind 9.
    assert_eq!(
        first_error(&[0x02, 0x04, 0x09], 10),
        Some(DeltaError::Corrupt(cellular_ota::delta::Corrupt::CrleKind(
            9
        )))
    );
    // CRLE: target 1 is df 0, diff 1, one diff byte, extra 0, adjustment 0 (five bytes);
    // a scattered segment of six still owes a byte when the patch ends.
    assert_eq!(
        first_error(&[0x02, 0x01, 0x00, 0x06, 0, 1, 0, 0, 0, 9], 10),
        Some(DeltaError::Corrupt(
            cellular_ota::delta::Corrupt::DataAfterEnd
        ))
    );
    // The same with a segment of exactly five ends cleanly.
    let patch = [0x02, 0x01, 0x00, 0x05, 0, 1, 0, 0, 0];
    let mut dec = DeltaDecoder::new(10);
    let (used, e) = dec.decode(&patch).unwrap();
    assert!(matches!(
        e,
        Event::Diff {
            base_offset: 0,
            add: [0],
            ..
        }
    ));
    assert_eq!(dec.decode(&patch[used..]).unwrap(), (2, Event::Done));
    assert_eq!(dec.finish(), Ok(1));
    // A CRLE run of u32::MAX zeros read as empty blocks (diff 0, extra 0, adjustment 0):
    // refused after target size + 1 blocks instead of billions of steps (the fuzz target's
    // slow unit).
    let started = std::time::Instant::now();
    assert_eq!(
        first_error(&[0x02, 0x05, 0x01, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00], 10),
        Some(DeltaError::Corrupt(
            cellular_ota::delta::Corrupt::TooManyBlocks
        ))
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    // The base position leaving i64: adjustment i64::MAX twice.
    let mut max = vec![0x00, 0x04, 0x00, 0x00, 0x00];
    let big = [0xbf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
    max.extend_from_slice(&big);
    max.extend_from_slice(&[0x00, 0x00]);
    max.extend_from_slice(&big);
    assert_eq!(
        first_error(&max, 10),
        Some(DeltaError::Corrupt(
            cellular_ota::delta::Corrupt::BasePosition
        ))
    );
}

/// The output before an error is the same however the patch is sliced: a corrupt CRLE byte
/// after some output in the same call comes out as an error on the next call.
#[test]
fn output_before_an_error_does_not_depend_on_slicing() {
    // crle, target 20: a scattered segment of df 0, diff 0, extra 10, "abcde"; then kind 9.
    let patch = [
        0x02, 0x14, 0x00, 0x08, 0x00, 0x00, 0x0a, b'a', b'b', b'c', b'd', b'e', 0x09,
    ];
    for step in [1, 2, 5, patch.len()] {
        let (out, dec) = run(&patch, &[], &mut (1..patch.len() / step).map(|i| i * step));
        assert_eq!(out, b"abcde", "slices of {step}");
        assert_eq!(
            dec.unwrap_err(),
            DeltaError::Corrupt(cellular_ota::delta::Corrupt::CrleKind(9))
        );
    }
}

#[test]
fn saved_states_are_versioned_and_checked() {
    let (pairs, patches) = fixtures();
    let (_, patch, k) = patches
        .iter()
        .find(|(n, ..)| n == "random-heatshrink.patch")
        .unwrap();
    let pair = &pairs[*k];
    let mut dec = DeltaDecoder::new(pair.base.len() as u32);
    let _ = dec.decode(&patch[..40]).unwrap();
    let mut state = [0u8; STATE_LEN];
    dec.save(&mut state).unwrap();
    assert_eq!(state[0], STATE_VERSION);
    assert!(DeltaDecoder::restore(&state).is_ok());
    // Another version.
    let mut other = state;
    other[0] = STATE_VERSION + 1;
    assert_eq!(
        DeltaDecoder::restore(&other).unwrap_err(),
        DeltaError::StateVersion(STATE_VERSION + 1)
    );
    // Any flipped bit, and any truncation.
    for i in 1..STATE_LEN {
        let mut bad = state;
        bad[i] ^= 0x10;
        assert_eq!(
            DeltaDecoder::restore(&bad).unwrap_err(),
            DeltaError::BadState,
            "byte {i}"
        );
    }
    for len in 0..STATE_LEN {
        assert!(DeltaDecoder::restore(&state[..len]).is_err());
    }
}

#[test]
fn ram_figures() {
    let size = std::mem::size_of::<DeltaDecoder>();
    println!("size_of::<DeltaDecoder>() = {size} bytes, STATE_LEN = {STATE_LEN} bytes");
    assert!(size <= 256 + 2048, "decoder RAM {size}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any bytes, cut anywhere: no panic, and at most one piece of output per call.
    #[test]
    fn arbitrary_bytes_never_panic(
        patch in proptest::collection::vec(any::<u8>(), 0..600),
        cut in 0usize..600,
        base_len in prop_oneof![Just(0u32), Just(64), Just(u32::MAX)],
    ) {
        let base = vec![0u8; (base_len as usize).min(4096)];
        let cut = cut.min(patch.len());
        let mut dec = DeltaDecoder::new(base.len() as u32);
        for part in [&patch[..cut], &patch[cut..]] {
            let mut input = part;
            for _ in 0..10_000 {
                match dec.decode(input) {
                    Ok((used, Event::NeedInput)) => { prop_assert_eq!(used, input.len()); break; }
                    Ok((_, Event::Done | Event::Stopped)) | Err(_) => break,
                    Ok((used, Event::Diff { base_offset, add, .. })) => {
                        prop_assert!(base_offset as usize + add.len() <= base.len());
                        input = &input[used..];
                    }
                    Ok((used, Event::Extra { .. })) => input = &input[used..],
                }
            }
        }
        let _ = dec.finish();
    }

    /// Valid headers with arbitrary bodies reach the decompressors and the block parser.
    #[test]
    fn arbitrary_bodies_behind_valid_headers_never_panic(
        header in prop_oneof![Just(vec![0x00u8, 0x90, 0x01]), Just(vec![0x02, 0x90, 0x01]), Just(vec![0x04, 0x90, 0x01, 0x44]), Just(vec![0x04, 0x90, 0x01, 0x00])],
        body in proptest::collection::vec(any::<u8>(), 0..800),
    ) {
        let mut patch = header;
        patch.extend_from_slice(&body);
        let mut dec = DeltaDecoder::new(300);
        let mut input = &patch[..];
        let mut state = [0u8; STATE_LEN];
        loop {
            match dec.decode(input) {
                Ok((_, Event::NeedInput | Event::Done)) | Err(_) => break,
                Ok((used, _)) => input = &input[used..],
            }
            // Any reachable state saves and restores.
            dec.save(&mut state).unwrap();
            dec = DeltaDecoder::restore(&state).unwrap();
        }
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Fixtures with a few bytes changed: no panic; if the decoder claims completion, the
    /// output has the target's length.
    #[test]
    fn mutated_fixtures_never_panic(which in 0usize..12, edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        let (pairs, patches) = fixtures_cached();
        let (_, patch, k) = &patches[which];
        let pair = &pairs[*k];
        let mut patch = patch.clone();
        if patch.is_empty() { return Ok(()); }
        for (at, b) in edits {
            let n = patch.len();
            patch[at % n] = b;
        }
        let (out, dec) = run(&patch, &pair.base, &mut std::iter::empty());
        if let Ok(dec) = dec {
            if dec.is_done() {
                prop_assert_eq!(out.len() as u32, dec.target_size().unwrap());
            }
        }
    }
}

fn fixtures_cached() -> &'static Fixtures {
    static CACHE: std::sync::OnceLock<Fixtures> = std::sync::OnceLock::new();
    CACHE.get_or_init(fixtures)
}

/// `python3 -m detools`, if it is there.
fn detools_available() -> bool {
    Command::new("python3")
        .args(["-m", "detools", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn create_patch(dir: &Path, from: &[u8], to: &[u8], compression: &str) -> Vec<u8> {
    std::fs::write(dir.join("from"), from).unwrap();
    std::fs::write(dir.join("to"), to).unwrap();
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "detools", "create_patch", "-c", compression]);
    if compression == "heatshrink" {
        cmd.args([
            "--heatshrink-window-sz2",
            "8",
            "--heatshrink-lookahead-sz2",
            "7",
        ]);
    }
    let status = cmd
        .arg(dir.join("from"))
        .arg(dir.join("to"))
        .arg(dir.join("patch"))
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "detools create_patch -c {compression}");
    std::fs::read(dir.join("patch")).unwrap()
}

/// detools itself, on data made up here: random bases with random edits, small and large,
/// each compression, fed in odd-sized slices and restored midway.
#[test]
fn live_detools_patches_decode() {
    if !detools_available() {
        println!(
            "note: `python3 -m detools` is not installed; skipping the live check \
             (python3 -m pip install detools==0.53.0)"
        );
        return;
    }
    let dir = std::env::temp_dir().join(format!("cellular-ota-delta-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A small deterministic generator (xorshift), so a failure can be reproduced.
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    for round in 0..4 {
        let len = [300usize, 5000, 40_000, 1][round];
        let from: Vec<u8> = (0..len)
            .map(|i| {
                if i % 3 == 0 {
                    rnd() as u8
                } else {
                    (i / 7) as u8
                }
            })
            .collect();
        let mut to = from.clone();
        for _ in 0..(1 + rnd() % 20) {
            let at = (rnd() as usize) % (to.len() + 1);
            match rnd() % 3 {
                0 if at < to.len() => to[at] = rnd() as u8,
                1 => {
                    let n = (rnd() % 300) as usize;
                    let ins: Vec<u8> = (0..n).map(|_| rnd() as u8).collect();
                    to.splice(at..at, ins);
                }
                _ => {
                    let end = (at + (rnd() % 200) as usize).min(to.len());
                    to.drain(at..end);
                }
            }
        }
        let pair = Pair {
            name: format!("live-{round}"),
            base: from.clone(),
            target: to.clone(),
        };
        for c in ["none", "crle", "heatshrink"] {
            let patch = create_patch(&dir, &from, &to, c);
            let step = 1 + (rnd() % 97) as usize;
            let (out, dec) = run(
                &patch,
                &from,
                &mut (1..patch.len() / step).map(|i| i * step),
            );
            check_complete(&format!("{} -c {c}", pair.name), &pair, &out, dec);
            let (out, dec) = run_restoring_everywhere(&patch, &from, step);
            check_complete(
                &format!("{} -c {c} restored", pair.name),
                &pair,
                &out,
                Ok(dec),
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
