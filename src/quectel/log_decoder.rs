//! Decoding captured Quectel traffic into typed events, without knowing which commands the
//! host sent in advance.
//!
//! [`LogDecoder`] wraps the [`Engine`] and supplies what a live client knows from its own
//! commands: what a bare `CONNECT` starts. It learns that from the host's command lines
//! (echoed by the modem, or given with [`LogDecoder::host_command`] from the other side of a
//! two-sided capture) and from the content length in `+QHTTPGET:`:
//!
//! * `AT+QHTTPREAD` reads the length of the last `+QHTTPGET: 0,<status>,<len>`, or, with no
//!   length, until the trailer `OK` / `+QHTTPREAD: <err>` followed by silence;
//! * `AT+QFDWL` reads until its `+QFDWL: <size>,<checksum>` / `OK` trailer;
//! * `AT+QFREAD` is announced by `CONNECT <n>`;
//! * with no command seen, a bare `CONNECT` after `+QHTTPGET: 0,...` is taken as that body;
//!   otherwise it is a prompt for the host's data.
//!
//! The decoder is `no_std` and allocation-free; the `explain` example drives it.

use core::time::Duration;

use super::urc::Urc;
use crate::at::params::Params;
use crate::at::{DataLength, DataState, Engine, Event, Final, Instant, ParseError, Prompt};

/// How long the line must be silent after a candidate trailer of an unknown-length payload.
pub const TRAILER_QUIET: Duration = Duration::from_millis(200);

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
pub struct LogDecoder<'b> {
    engine: Engine<'b>,
    /// Expectation to hand to the engine at the next poll.
    pending: Option<Option<DataLength>>,
    /// Body announced by the last `+QHTTPGET:` (not yet read).
    http_body: Option<DataLength>,
}

impl<'b> LogDecoder<'b> {
    /// A decoder using `buf` as the engine's receive buffer (its size bounds the longest
    /// line; 1 KiB is plenty for logs).
    pub fn new(buf: &'b mut [u8]) -> Self {
        LogDecoder {
            engine: Engine::new(buf),
            pending: None,
            http_body: None,
        }
    }

    /// Tells the decoder the host sent this command line (with or without its CR), for
    /// captures that record the host side separately. Call it before feeding what the modem
    /// answered.
    pub fn host_command(&mut self, line: &[u8]) {
        let mut line = line;
        while let [l @ .., b'\r' | b'\n' | b' '] = line {
            line = l;
        }
        self.pending = Some(expectation(line, &mut self.http_body));
    }

    /// Feeds modem bytes; returns how many were taken (poll, then offer the rest again).
    pub fn feed(&mut self, bytes: &[u8]) -> usize {
        self.engine.consume(bytes)
    }

    /// The capture ended (call it after polling until `None`). A last line the capture holds
    /// without its line end (the file
    /// ends in `+CPIN: READY` with no CR LF, or the capture was cut) is completed, so the
    /// next [`poll`](Self::poll)s return it like any other line; returns whether there was
    /// one. A payload cut by the capture is not a line: it stays a payload (poll with
    /// [`Instant::MAX`] to close one of unknown length).
    pub fn end_of_capture(&mut self) -> bool {
        if self.engine.data_state() != DataState::Idle || self.engine.buffered() == 0 {
            return false;
        }
        // A line as long as the buffer is already being discarded: the poll reports it.
        self.engine.consume(b"\r\n") > 0
    }

    /// The next event, or `None` when more input is needed. At the end of a capture, poll
    /// with [`Instant::MAX`] so that a trailing unknown-length payload is closed, and call
    /// [`end_of_capture`](Self::end_of_capture) for a last line without its line end.
    pub fn poll(&mut self, now: Instant) -> Option<LogEvent<'_>> {
        if let Some(p) = self.pending.take() {
            self.engine.expect_data(p);
        }
        let ev = self.engine.poll(now)?;
        Some(match ev {
            Event::Echo(cmd) => {
                self.pending = Some(expectation(cmd, &mut self.http_body));
                LogEvent::Command(cmd)
            }
            Event::Line(line) => {
                if let Some(len) = http_get_body(line) {
                    self.http_body = Some(len);
                    // Without a visible command, the next bare CONNECT is this body.
                    self.pending = Some(Some(len));
                }
                match Urc::parse(line) {
                    Some(Ok(urc)) => LogEvent::Urc { line, urc },
                    Some(Err(error)) => LogEvent::MalformedUrc { line, error },
                    None => LogEvent::Line(line),
                }
            }
            Event::Final(f) => LogEvent::Final(f),
            Event::Prompt(p) => LogEvent::Prompt(p),
            Event::DataStart { len } => LogEvent::PayloadStart { len },
            Event::Data(d) => LogEvent::Payload(d),
            Event::DataEnd => LogEvent::PayloadEnd,
            Event::Overflow { discarded } => LogEvent::Overflow { discarded },
        })
    }
}

fn starts_with_ci(line: &[u8], p: &[u8]) -> bool {
    line.len() >= p.len() && line[..p.len()].eq_ignore_ascii_case(p)
}

/// What a bare `CONNECT` after this command starts.
fn expectation(cmd: &[u8], http_body: &mut Option<DataLength>) -> Option<DataLength> {
    let is_test_or_query = cmd.ends_with(b"?");
    if is_test_or_query {
        return None;
    }
    if starts_with_ci(cmd, b"AT+QHTTPREADFILE") {
        None
    } else if starts_with_ci(cmd, b"AT+QHTTPREAD") {
        Some(http_body.take().unwrap_or(DataLength::UntilTrailer {
            end_prefix: b"+QHTTPREAD:",
            quiet: TRAILER_QUIET,
        }))
    } else if starts_with_ci(cmd, b"AT+QFDWL") {
        Some(DataLength::UntilTrailer {
            end_prefix: b"+QFDWL:",
            quiet: TRAILER_QUIET,
        })
    } else if starts_with_ci(cmd, b"AT+QFREAD") {
        Some(DataLength::Announced)
    } else {
        None
    }
}

/// The body a `+QHTTPGET: 0,<status>[,<len>]` line announces.
fn http_get_body(line: &[u8]) -> Option<DataLength> {
    let mut p = Params::after(line, b"+QHTTPGET:")?;
    if p.u32().ok()? != 0 {
        return None;
    }
    let _status = p.u32().ok()?;
    Some(match p.opt_u32() {
        Ok(Some(len)) => DataLength::Exact(len),
        _ => DataLength::UntilTrailer {
            end_prefix: b"+QHTTPREAD:",
            quiet: TRAILER_QUIET,
        },
    })
}
