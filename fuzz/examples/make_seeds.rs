//! Writes seed inputs for the fuzz targets from the recorded transcripts in `../fixtures/`.
//!
//! Run from the `fuzz/` directory: `cargo run --example make_seeds`. It (re)writes
//! `seeds/framer/fixture-*`, `seeds/decoder/fixture-*` and `seeds/urc/fixture-*`; other files
//! in `seeds/` (hand-written seeds, regression reproducers) are left alone. The input layouts are
//! documented at the top of each target in `fuzz_targets/`.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use cellular_ota::transcript::{Direction, decode_line};

struct Transcript {
    modem: Vec<u8>,
    /// (offset into `modem`, host bytes)
    host: Vec<(usize, Vec<u8>)>,
}

fn load(path: &Path) -> Transcript {
    let text = fs::read(path).unwrap();
    let mut t = Transcript {
        modem: Vec::new(),
        host: Vec::new(),
    };
    let mut buf = vec![0u8; text.len() + 1];
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        match decode_line(line, &mut buf) {
            Ok(None) => {}
            Ok(Some((Direction::FromModem, n))) => t.modem.extend_from_slice(&buf[..n]),
            Ok(Some((Direction::ToModem, n))) => t.host.push((t.modem.len(), buf[..n].to_vec())),
            Err(e) => panic!("{}:{}: {e}", path.display(), i + 1),
        }
    }
    t
}

fn starts_ci(line: &[u8], p: &[u8]) -> bool {
    line.len() >= p.len() && line[..p.len()].eq_ignore_ascii_case(p)
}

/// The framer operation (op, arg) a live client would perform before sending `cmd`.
fn framer_op(cmd: &[u8]) -> Option<(u8, u8)> {
    if !starts_ci(cmd, b"AT") || cmd.contains(&b'?') {
        return None;
    }
    if starts_ci(cmd, b"AT+QHTTPREADFILE") {
        None
    } else if starts_ci(cmd, b"AT+QHTTPREAD") {
        Some((3, 3 << 2)) // UntilTrailer "+QHTTPREAD:", 200 ms
    } else if starts_ci(cmd, b"AT+QFDWL") {
        Some((3, 1 | 3 << 2)) // UntilTrailer "+QFDWL:", 200 ms
    } else if starts_ci(cmd, b"AT+QFREAD") {
        Some((2, 0)) // Announced
    } else {
        Some((0, 0)) // expect nothing
    }
}

/// The index into the decoder target's `COMMANDS` closest to `cmd`.
fn decoder_command(cmd: &[u8]) -> Option<u8> {
    if !starts_ci(cmd, b"AT") {
        return None;
    }
    Some(if cmd.ends_with(b"?\r") || cmd.ends_with(b"?") {
        6
    } else if starts_ci(cmd, b"AT+QHTTPREADFILE") {
        5
    } else if starts_ci(cmd, b"AT+QHTTPREAD") {
        0
    } else if starts_ci(cmd, b"AT+QFDWL") {
        1
    } else if starts_ci(cmd, b"AT+QFREAD") {
        2
    } else if starts_ci(cmd, b"AT+QFUPL") {
        7
    } else {
        3
    })
}

fn le(v: u16) -> [u8; 2] {
    v.to_le_bytes()
}

/// framer header: flags, capacity, n, chunking, seed, tick, ops.
fn framer_seed(t: &Transcript, flags: u8, cap: usize, chunking: u8, tick: u8) -> Vec<u8> {
    let ops: Vec<(usize, (u8, u8))> = t
        .host
        .iter()
        .filter_map(|(at, cmd)| framer_op(cmd).map(|op| (*at, op)))
        .filter(|(_, op)| op.0 != 0)
        .take(8)
        .collect();
    let mut v = vec![flags];
    v.extend(le((cap - 16) as u16));
    v.extend(le(0));
    v.extend([chunking, 1, tick, ops.len() as u8]);
    for (at, (op, arg)) in &ops {
        v.extend(le(*at as u16));
        v.extend([*op, *arg]);
    }
    v.extend_from_slice(&t.modem);
    v
}

fn decoder_seed(t: &Transcript, cap: usize, tick: u8) -> Vec<u8> {
    let cmds: Vec<(usize, u8)> = t
        .host
        .iter()
        .filter_map(|(at, cmd)| decoder_command(cmd).map(|c| (*at, c)))
        .take(8)
        .collect();
    let mut v = Vec::new();
    v.extend(le((cap - 16) as u16));
    v.extend([tick, 1, cmds.len() as u8]);
    for (at, c) in &cmds {
        v.extend(le(*at as u16));
        v.push(*c);
    }
    v.extend_from_slice(&t.modem);
    v
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixtures = root.join("../fixtures");
    let seeds = root.join("seeds");
    for target in ["framer", "decoder", "urc"] {
        let dir = seeds.join(target);
        fs::create_dir_all(&dir).unwrap();
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("fixture-")
            {
                fs::remove_file(path).unwrap();
            }
        }
    }
    let mut paths: Vec<_> = fs::read_dir(&fixtures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .filter(|p| p.file_name().is_some_and(|n| n != "README.txt"))
        .collect();
    paths.sort();
    let mut lines = BTreeSet::new();
    for path in &paths {
        let name = path.file_stem().unwrap().to_string_lossy();
        let t = load(path);
        let write = |target: &str, suffix: &str, bytes: &[u8]| {
            let file = seeds.join(target).join(format!("fixture-{name}{suffix}"));
            fs::write(file, bytes).unwrap();
        };
        // Random chunks of up to 64 bytes, 512-byte buffer, 10 ms per chunk.
        write("framer", "", &framer_seed(&t, 0, 512, 2, 10));
        // One byte at a time into a 64-byte buffer, payload read through data_available.
        write("framer", "-bytewise", &framer_seed(&t, 0x40, 64, 1, 1));
        write("decoder", "", &decoder_seed(&t, 512, 10));
        for line in t.modem.split(|&b| b == b'\r' || b == b'\n') {
            if !line.is_empty() && line.len() <= 128 {
                lines.insert(line.to_vec());
            }
        }
    }
    for (i, line) in lines.iter().enumerate() {
        fs::write(seeds.join("urc").join(format!("fixture-{i:03}")), line).unwrap();
    }
    println!(
        "{} transcripts, {} distinct lines",
        paths.len(),
        lines.len()
    );
}
