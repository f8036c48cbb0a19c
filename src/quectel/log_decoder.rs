//! Decoding captured Quectel traffic into typed events, without knowing which commands the
//! host sent in advance.
//!
//! This is [`crate::log_decoder::LogDecoder`] told that the capture comes from a Quectel
//! module ([`Vendor::Quectel`]), with URCs typed as [`Urc`]. Use
//! [`crate::log_decoder`] when the vendor is not known (it tells Quectel from SIMCom by the
//! lines themselves).
//!
//! [`LogDecoder`] wraps the [`Engine`](crate::at::Engine) and supplies what a live client
//! knows from its own commands: what a bare `CONNECT` starts. It learns that from the host's
//! command lines (echoed by the modem, or given with [`LogDecoder::host_command`] from the
//! other side of a two-sided capture) and from the content length in `+QHTTPGET:`:
//!
//! * `AT+QHTTPREAD` reads the length of the last `+QHTTPGET: 0,<status>,<len>`, or, with no
//!   length, until the trailer `OK` / `+QHTTPREAD: <err>` followed by silence;
//! * `AT+QFDWL` reads until its `+QFDWL: <size>,<checksum>` / `OK` trailer;
//! * `AT+QFREAD` is announced by `CONNECT <n>`;
//! * with no command seen, a bare `CONNECT` after `+QHTTPGET: 0,...` is taken as that body;
//!   otherwise it is a prompt for the host's data.
//!
//! The decoder is `no_std` and allocation-free.

use super::urc::Urc;
use crate::at::{Final, Instant, ParseError, Prompt};
use crate::log_decoder::{self as any, Vendor, VendorUrc};

pub use crate::log_decoder::TRAILER_QUIET;

/// One decoded thing in a capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LogEvent<'a> {
    /// A command line the host sent (echo, or the host side of the capture).
    Command(&'a [u8]),
    /// A URC this crate knows, typed.
    Urc {
        /// The line as received.
        line: &'a [u8],
        /// Its typed form.
        urc: Urc<'a>,
    },
    /// A line with a known URC prefix whose body did not parse.
    MalformedUrc {
        /// The line.
        line: &'a [u8],
        /// What was wrong.
        error: ParseError,
    },
    /// Any other line: a command's information line, or something unknown.
    Line(&'a [u8]),
    /// A final result.
    Final(Final<'a>),
    /// The modem prompted for the host's data.
    Prompt(Prompt),
    /// A payload started (`len` is `None` when it ends at the trailer).
    PayloadStart {
        /// Announced or expected length.
        len: Option<u32>,
    },
    /// Payload bytes.
    Payload(&'a [u8]),
    /// The payload ended.
    PayloadEnd,
    /// A line longer than the buffer was dropped.
    Overflow {
        /// Bytes dropped.
        discarded: usize,
    },
}

/// Turns a capture into [`LogEvent`]s. See the module docs for how payloads are found.
#[derive(Debug)]
pub struct LogDecoder<'b>(any::LogDecoder<'b>);

impl<'b> LogDecoder<'b> {
    /// A decoder using `buf` as the engine's receive buffer (its size bounds the longest
    /// line; 1 KiB is plenty for logs).
    pub fn new(buf: &'b mut [u8]) -> Self {
        let mut d = any::LogDecoder::new(buf);
        d.assume(Vendor::Quectel);
        LogDecoder(d)
    }

    /// Tells the decoder the host sent this command line (with or without its CR), for
    /// captures that record the host side separately. Call it before feeding what the modem
    /// answered.
    pub fn host_command(&mut self, line: &[u8]) {
        self.0.host_command(line);
    }

    /// Feeds modem bytes; returns how many were taken (poll, then offer the rest again).
    pub fn feed(&mut self, bytes: &[u8]) -> usize {
        self.0.feed(bytes)
    }

    /// The capture ended (call it after polling until `None`). A last line the capture holds
    /// without its line end (the file
    /// ends in `+CPIN: READY` with no CR LF, or the capture was cut) is completed, so the
    /// next [`poll`](Self::poll)s return it like any other line; returns whether there was
    /// one. A payload cut by the capture is not a line: it stays a payload (poll with
    /// [`Instant::MAX`] to close one of unknown length).
    pub fn end_of_capture(&mut self) -> bool {
        self.0.end_of_capture()
    }

    /// The next event, or `None` when more input is needed. At the end of a capture, poll
    /// with [`Instant::MAX`] so that a trailing unknown-length payload is closed, and call
    /// [`end_of_capture`](Self::end_of_capture) for a last line without its line end.
    pub fn poll(&mut self, now: Instant) -> Option<LogEvent<'_>> {
        Some(match self.0.poll(now)? {
            any::LogEvent::Command(c) => LogEvent::Command(c),
            any::LogEvent::Urc {
                line,
                urc: VendorUrc::Quectel(urc),
            } => LogEvent::Urc { line, urc },
            any::LogEvent::MalformedUrc {
                line,
                vendor: Vendor::Quectel,
                error,
            } => LogEvent::MalformedUrc { line, error },
            // Settled on Quectel, the decoder offers lines to Quectel's parser only: a
            // SIMCom-typed line cannot come, and would be a plain line here.
            any::LogEvent::Urc { line, .. }
            | any::LogEvent::MalformedUrc { line, .. }
            | any::LogEvent::Line(line) => LogEvent::Line(line),
            any::LogEvent::Final(f) => LogEvent::Final(f),
            any::LogEvent::Prompt(p) => LogEvent::Prompt(p),
            any::LogEvent::PayloadStart { len } => LogEvent::PayloadStart { len },
            any::LogEvent::Payload(d) => LogEvent::Payload(d),
            any::LogEvent::PayloadEnd => LogEvent::PayloadEnd,
            any::LogEvent::Overflow { discarded } => LogEvent::Overflow { discarded },
        })
    }
}
