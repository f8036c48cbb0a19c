//! Fuzzes the URC parser and the parameter-list reader on arbitrary bytes.
//!
//! The whole input is one line.
//!
//! Invariants checked:
//! * `Urc::parse` and `is_urc` never panic; whenever `Urc::parse` returns `Some`, `is_urc`
//!   is true;
//! * both ignore surrounding whitespace: the same line padded with spaces, tabs and CR/LF
//!   parses to the same value;
//! * walking `Params` over the line (after its `+NAME:` prefix, if any) with a sequence of
//!   getters taken from the input bytes never panics, terminates, yields quoted fields
//!   without `"` and bare fields without `,` or surrounding spaces, and stays at its end
//!   once there;
//! * `parse_u32`, `parse_hex` and `after_prefix` agree with simple reference versions.

#![no_main]

use cellular_ota::at::ParseError;
use cellular_ota::at::params::{Field, Params, after_prefix, parse_hex, parse_u32};
use cellular_ota::quectel::urc::{Urc, is_urc};
use libfuzzer_sys::fuzz_target;

fn reference_number(s: &[u8], radix: u64) -> Result<u32, ParseError> {
    let digit = |c: u8| (c as char).to_digit(radix as u32).map(u64::from);
    if s.is_empty() || s.iter().any(|&c| digit(c).is_none()) {
        return Err(ParseError::BadNumber);
    }
    let mut v: u64 = 0;
    for &c in s {
        v = v * radix + digit(c).unwrap();
        if v > u64::from(u32::MAX) {
            return Err(ParseError::OutOfRange);
        }
    }
    Ok(v as u32)
}

fn reference_after_prefix<'a>(line: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    if line.len() < prefix.len() || !line[..prefix.len()].eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = &line[prefix.len()..];
    let skip = rest.iter().take_while(|&&c| c == b' ').count();
    Some(&rest[skip..])
}

fn check_field(f: Field<'_>) {
    match f {
        Field::Quoted(s) => assert!(!s.contains('"'), "quoted field with a quote: {s:?}"),
        Field::Bare(s) => {
            assert!(!s.contains(','), "bare field with a comma: {s:?}");
            assert!(
                !s.starts_with(' ') && !s.ends_with(' '),
                "bare field not trimmed: {s:?}"
            );
        }
    }
}

/// Reads fields with getters chosen by `selectors` until the list ends or a field is bad.
fn walk(text: &[u8], selectors: &[u8]) {
    let mut p = Params::new(text);
    assert_eq!(p.is_empty(), text.iter().all(|&c| c == b' '));
    let mut fields = 0usize;
    let mut text_len = 0usize;
    for i in 0..=text.len() + 1 {
        let sel = if selectors.is_empty() {
            0
        } else {
            selectors[i % selectors.len()]
        };
        let was_done = p.is_empty();
        let got: Result<Option<usize>, ParseError> = match sel % 11 {
            0 => p.next_field().map(|f| {
                f.map(|f| {
                    check_field(f);
                    f.text().len()
                })
            }),
            1 => p.field().map(|f| {
                check_field(f);
                Some(f.text().len())
            }),
            2 => p.str().map(|s| Some(s.len())),
            3 => p.opt_str().map(|s| s.map(str::len)),
            4 => p.u32().map(|_| Some(0)),
            5 => p.opt_u32().map(|v| v.map(|_| 0)),
            6 => p.u16().map(|_| Some(0)),
            7 => p.u8().map(|_| Some(0)),
            8 => p.i32().map(|_| Some(0)),
            9 => p.hex_u32().map(|_| Some(0)),
            _ => p.end().map(|()| None),
        };
        if was_done {
            // At the end, every getter reports the end.
            match got {
                Ok(None) | Err(ParseError::MissingField) => {}
                other => panic!("getter after the end returned {other:?}"),
            }
            assert!(p.is_empty());
            assert!(matches!(p.next_field(), Ok(None)));
            return;
        }
        match got {
            Ok(Some(n)) => {
                fields += 1;
                text_len += n;
                assert!(text_len <= text.len());
                assert!(fields <= text.len() + 1, "more fields than bytes");
            }
            // `end()` on a finished list, or an optional getter on an empty field.
            Ok(None) => {}
            Err(_) => return,
        }
    }
    // Every step either read a field (each consumes at least its comma) or returned; with
    // more steps than bytes the list must have ended.
    assert!(p.is_empty(), "Params did not reach its end");
}

const PREFIXES: [&[u8]; 6] = [
    b"+QHTTPGET:",
    b"+QIND:",
    b"+CREG:",
    b"+",
    b"",
    b"+QIND: \"FOTA\",",
];

fuzz_target!(|data: &[u8]| {
    let parsed = Urc::parse(data);
    let urc = is_urc(data);
    if parsed.is_some() {
        assert!(urc, "Urc::parse returned {parsed:?} but is_urc is false");
    }

    let mut padded = Vec::with_capacity(data.len() + 4);
    padded.extend_from_slice(b" \t");
    padded.extend_from_slice(data);
    padded.extend_from_slice(b"\r\n");
    assert_eq!(
        Urc::parse(&padded),
        parsed,
        "surrounding whitespace changed the parse"
    );
    assert_eq!(is_urc(&padded), urc);

    // Params over the text after the line's prefix (up to its first ':'), or the whole line.
    let text = match data.iter().position(|&c| c == b':') {
        Some(i) => &data[i + 1..],
        None => data,
    };
    walk(text, data);
    walk(data, text);

    assert_eq!(parse_u32(data), reference_number(data, 10), "parse_u32");
    assert_eq!(parse_hex(data), reference_number(data, 16), "parse_hex");
    for prefix in PREFIXES {
        assert_eq!(
            after_prefix(data, prefix),
            reference_after_prefix(data, prefix)
        );
        if let Some(mut p) = Params::after(data, prefix) {
            let mut n = 0;
            while let Ok(Some(f)) = p.next_field() {
                check_field(f);
                n += 1;
                assert!(n <= data.len() + 1, "more fields than bytes");
            }
        }
    }
});
