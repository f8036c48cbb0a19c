//! Helpers shared by the command modules' unit tests.
#![cfg(test)]

extern crate std;

use std::vec::Vec;

use crate::at::{AtCommand, EncodeError, Encoder};

/// Encodes `cmd` into `out`; the number of bytes written.
pub(crate) fn encoded<C: AtCommand>(cmd: &C, out: &mut [u8]) -> Result<usize, EncodeError> {
    let mut e = Encoder::new(out);
    cmd.encode(&mut e)?;
    Ok(e.len())
}

/// Encodes `cmd` into a 512-byte buffer and returns the bytes.
pub(crate) fn encode<C: AtCommand>(cmd: &C) -> Result<Vec<u8>, EncodeError> {
    let mut buf = [0u8; 512];
    let n = encoded(cmd, &mut buf)?;
    Ok(buf[..n].to_vec())
}

/// One AT line: starts with `AT`, no CR/LF/NUL, balanced quotes.
pub(crate) fn is_one_line(b: &[u8]) -> bool {
    b.starts_with(b"AT")
        && !b.iter().any(|&c| matches!(c, b'\r' | b'\n' | 0))
        && b.iter().filter(|&&c| c == b'"').count() % 2 == 0
}

/// `encodes! { Cmd => b"AT..."; ... }`: each command encodes to exactly these bytes, as one
/// well-formed line.
macro_rules! encodes {
    ($($cmd:expr => $bytes:expr;)*) => {$({
        let bytes = $crate::quectel::test_support::encode(&$cmd).unwrap();
        assert_eq!(
            core::str::from_utf8(&bytes).unwrap(),
            core::str::from_utf8($bytes).unwrap(),
            "{}", stringify!($cmd)
        );
        assert!($crate::quectel::test_support::is_one_line(&bytes));
    })*};
}

/// `refuses! { Cmd => EncodeError::...; ... }`: each command is refused with this error.
macro_rules! refuses {
    ($($cmd:expr => $err:expr;)*) => {$({
        assert_eq!(
            $crate::quectel::test_support::encode(&$cmd),
            Err($err),
            "{}", stringify!($cmd)
        );
    })*};
}

pub(crate) use {encodes, refuses};
