//! The modem's UART as the AT client sees it, with an optional wire trace.
//!
//! esp-hal 1.2's `Uart` (with its `unstable` feature) already implements everything the
//! clients need: `embedded_io::{Read, Write, ReadReady}` in blocking mode and
//! `embedded_io_async::{Read, Write}` in async mode. [`Traced`] forwards to those trait
//! methods by their full paths, because `Uart`'s inherent `read`/`write`/`read_ready`
//! methods (different signatures, esp-hal error types) would otherwise shadow them.
//!
//! With tracing on, every chunk read from or written to the modem is printed as one line of
//! the transcript format of `cellular_ota::transcript` (`-> ` host to modem, `<- ` modem to
//! host, `\r`, `\n`, `\t`, `\\`, `\0` and `\xNN` escapes). Keep the `-> `/`<- ` lines of a
//! console log and `cargo run --example explain` decodes them (see the README).

use core::fmt::Write as _;

/// A transport that prints what passes through it when `enabled`.
#[derive(Debug)]
pub struct Traced<T> {
    inner: T,
    /// Print every chunk (see the [module docs](self)).
    pub enabled: bool,
    /// A `-> ` line is open: the host's bytes so far did not end with CR. A UART write may
    /// take only part of a command line; the rest joins the same transcript line, so that
    /// `explain` sees one command.
    tx_open: bool,
}

impl<T> Traced<T> {
    /// Wraps `inner`; tracing as [`crate::config::TRACE_AT`] says.
    pub fn new(inner: T) -> Self {
        Traced {
            inner,
            enabled: crate::config::TRACE_AT,
            tx_open: false,
        }
    }

    /// The wrapped transport.
    pub fn inner(&mut self) -> &mut T {
        &mut self.inner
    }

    fn trace_rx(&mut self, bytes: &[u8]) {
        if !self.enabled || bytes.is_empty() {
            return;
        }
        let mut out = LineBuf::new();
        if core::mem::take(&mut self.tx_open) {
            out.push("\n");
        }
        out.push("<- ");
        out.escaped(bytes);
        out.push("\n");
        out.flush();
    }

    fn trace_tx(&mut self, bytes: &[u8]) {
        if !self.enabled || bytes.is_empty() {
            return;
        }
        let mut out = LineBuf::new();
        if !self.tx_open {
            out.push("-> ");
        }
        out.escaped(bytes);
        self.tx_open = bytes.last() != Some(&b'\r');
        if !self.tx_open {
            out.push("\n");
        }
        out.flush();
    }
}

/// Collects output in 64-byte pieces so that a line costs a few console writes, not one
/// per byte, and needs no buffer of its own size (a command line may be 700 bytes).
struct LineBuf {
    buf: [u8; 64],
    len: usize,
}

impl LineBuf {
    fn new() -> Self {
        LineBuf {
            buf: [0; 64],
            len: 0,
        }
    }

    /// Appends `bytes` escaped as the transcript format requires.
    fn escaped(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match b {
                b'\r' => self.push("\\r"),
                b'\n' => self.push("\\n"),
                b'\t' => self.push("\\t"),
                b'\\' => self.push("\\\\"),
                0 => self.push("\\0"),
                0x20..=0x7e => self.push_byte(b),
                _ => {
                    let _ = write!(self, "\\x{b:02x}");
                }
            }
        }
    }

    fn push(&mut self, s: &str) {
        for &b in s.as_bytes() {
            self.push_byte(b);
        }
    }

    fn push_byte(&mut self, b: u8) {
        if self.len == self.buf.len() {
            self.flush();
        }
        self.buf[self.len] = b;
        self.len += 1;
    }

    fn flush(&mut self) {
        // Only printable ASCII and LF are ever pushed, so this is always valid UTF-8.
        if let Ok(s) = core::str::from_utf8(&self.buf[..self.len]) {
            esp_println::print!("{s}");
        }
        self.len = 0;
    }
}

impl core::fmt::Write for LineBuf {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.push(s);
        Ok(())
    }
}

impl<T: embedded_io::ErrorType> embedded_io::ErrorType for Traced<T> {
    type Error = T::Error;
}

impl<T: embedded_io::Read> embedded_io::Read for Traced<T> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let n = embedded_io::Read::read(&mut self.inner, buf)?;
        self.trace_rx(&buf[..n]);
        Ok(n)
    }
}

impl<T: embedded_io::ReadReady> embedded_io::ReadReady for Traced<T> {
    fn read_ready(&mut self) -> Result<bool, Self::Error> {
        embedded_io::ReadReady::read_ready(&mut self.inner)
    }
}

impl<T: embedded_io::Write> embedded_io::Write for Traced<T> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        let n = embedded_io::Write::write(&mut self.inner, buf)?;
        self.trace_tx(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        embedded_io::Write::flush(&mut self.inner)
    }
}

impl<T: embedded_io_async::Read> embedded_io_async::Read for Traced<T> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let n = embedded_io_async::Read::read(&mut self.inner, buf).await?;
        self.trace_rx(&buf[..n]);
        Ok(n)
    }
}

impl<T: embedded_io_async::Write> embedded_io_async::Write for Traced<T> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        let n = embedded_io_async::Write::write(&mut self.inner, buf).await?;
        self.trace_tx(&buf[..n]);
        Ok(n)
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        embedded_io_async::Write::flush(&mut self.inner).await
    }
}
