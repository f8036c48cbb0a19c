//! Decoding captured modem traffic into typed events, without knowing in advance which
//! vendor's module produced it or which commands the host sent.
//!
//! [`LogDecoder`] wraps the [`Engine`] and supplies what a live client knows from its own
//! commands: where a received payload starts and how long it is. It learns that from the
//! host's command lines (echoed by the modem, or given with [`LogDecoder::host_command`] from
//! the other side of a two-sided capture) and from the lines themselves.
//!
//! **Which vendor.** The decoder settles on [`Vendor::Quectel`] or [`Vendor::Simcom`] at the
//! first line that only one of them sends, and never changes its mind afterwards (call
//! [`LogDecoder::assume`] when the vendor is known from elsewhere, e.g. a first pass over
//! the same capture):
//!
//! * Quectel: a command `AT+Q…`, a line `+Q…` (`+QIND:`, `+QHTTPGET:`, `+QUSIM:` …), the
//!   `Quectel` line of an `ATI` answer;
//! * SIMCom: `*ATREADY`, `SMS Ready`, `+HTTPACTION:`, `+SHREQ:`, `+SHSTATE:`, `+HTTPTOFS:`,
//!   `+APP PDP:`, `+SAPBR`, `+HTTP_PEER_CLOSED`, `+HTTP_NONET_EVENT`, `+HTTPREADFILE:`,
//!   `+NETOPEN:` / `+NETCLOSE:`, `+IPCLOSE:`, `+CIPEVENT:`, `+CFOTA:`, a payload header
//!   (`+HTTPREAD:`, `+HTTPHEAD:`, `+SHREAD:`), SIMCom's commands (`AT+HTTPINIT`, `AT+SHCONN`,
//!   `AT+CNACT`, `AT+NETOPEN`, `AT+SAPBR`, `AT+SIMCOMATI` …), and identity lines
//!   (`Manufacturer: SIMCOM …`, `Model:` / `Revision:` / `+CGMR:` lines that
//!   [`Family::from_identity`] recognises).
//!
//! Lines common to both (`RDY`, `+CPIN:`, `+CFUN:`, `+CGEV:`, `+CME ERROR:` …) settle
//! nothing. Before the vendor is known a line is offered to Quectel's URC parser first, then
//! to SIMCom's; afterwards only to the settled vendor's. [`LogDecoder::simcom_family`] also
//! says which SIMCom command set the capture shows (identity lines win over the hints
//! `*ATREADY` → A76xx, `DATA,` headers → SIM7600, `AT+SH*` / `+SHREQ:` → SH, `AT+SAPBR` →
//! SIM800-style).
//!
//! **Payloads.** Quectel (unless the capture is settled as SIMCom):
//!
//! * `AT+QHTTPREAD` reads the length of the last `+QHTTPGET: 0,<status>,<len>`, or, with no
//!   length, until the trailer `OK` / `+QHTTPREAD: <err>` followed by silence;
//! * `AT+QFDWL` reads until its `+QFDWL: <size>,<checksum>` / `OK` trailer;
//! * `AT+QFREAD` is announced by `CONNECT <n>`;
//! * with no command seen, a bare `CONNECT` after `+QHTTPGET: 0,...` is taken as that body;
//!   otherwise it is a prompt for the host's data.
//!
//! SIMCom (unless the capture is settled as Quectel): the bytes after a header line
//! `+HTTPREAD: [DATA,]<n>`, `+HTTPHEAD: [DATA,]<n>` or `+SHREAD: <n>` are a payload piece of
//! exactly `n` bytes, whether or not the command was seen and whether `OK` came before or
//! after ([`DataLength::Chunked`]). Each piece is reported as [`LogEvent::PayloadStart`] with
//! its length followed by its bytes; URCs may come between pieces; [`LogEvent::PayloadEnd`]
//! comes once, at `+HTTPREAD: 0`, at a final result after a piece, or when an
//! `AT+SHREAD=<start>,<len>` has received its `len` bytes.
//!
//! The decoder is `no_std` and allocation-free; the `explain` example drives it.
//!
//! ```
//! use cellular_ota::at::Instant;
//! use cellular_ota::log_decoder::{LogDecoder, LogEvent, Vendor};
//! use cellular_ota::simcom::Family;
//!
//! // SIM7600 with echo on: OK comes before the piece, whose bytes hold "OK" and CR LF.
//! let log = b"AT+HTTPREAD=0,4\r\r\nOK\r\n\r\n+HTTPREAD: DATA,4\r\nOK\r\n\r\n+HTTPREAD: 0\r\n";
//! let mut buf = [0u8; 256];
//! let mut d = LogDecoder::new(&mut buf);
//! assert_eq!(d.feed(log), log.len());
//! let mut body = Vec::new();
//! while let Some(ev) = d.poll(Instant::ZERO) {
//!     if let LogEvent::Payload(b) = ev {
//!         body.extend_from_slice(b);
//!     }
//! }
//! assert_eq!(body, b"OK\r\n");
//! assert_eq!(d.vendor(), Some(Vendor::Simcom));
//! assert_eq!(d.simcom_family(), Some(Family::Sim7600));
//! ```

use core::time::Duration;

use crate::at::params::{Params, after_prefix, parse_u32};
use crate::at::{DataLength, DataState, Engine, Event, Final, Instant, ParseError, Prompt};
use crate::quectel::urc::Urc as QuectelUrc;
use crate::simcom::Family;
use crate::simcom::urc::Urc as SimcomUrc;

/// How long the line must be silent after a candidate trailer of an unknown-length payload.
pub const TRAILER_QUIET: Duration = Duration::from_millis(200);

/// The maker of the module a capture comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Vendor {
    /// Quectel (`crate::quectel`).
    Quectel,
    /// SIMCom (`crate::simcom`).
    Simcom,
}

impl Vendor {
    /// Lower-case name (`quectel`, `simcom`).
    pub const fn name(self) -> &'static str {
        match self {
            Vendor::Quectel => "quectel",
            Vendor::Simcom => "simcom",
        }
    }
}

/// A URC typed by the vendor's parser that recognised it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum VendorUrc<'a> {
    /// Parsed by [`crate::quectel::urc::Urc::parse`].
    Quectel(QuectelUrc<'a>),
    /// Parsed by [`crate::simcom::urc::Urc::parse`].
    Simcom(SimcomUrc<'a>),
}

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
        urc: VendorUrc<'a>,
    },
    /// A line with a known URC prefix whose body did not parse.
    MalformedUrc {
        /// The line.
        line: &'a [u8],
        /// Whose parser knew the prefix.
        vendor: Vendor,
        /// What was wrong.
        error: ParseError,
    },
    /// Any other line: a command's information line, or something unknown.
    Line(&'a [u8]),
    /// A final result.
    Final(Final<'a>),
    /// The modem prompted for the host's data.
    Prompt(Prompt),
    /// A payload, or one piece of a SIMCom payload, started (`len` is `None` when it ends at
    /// the trailer).
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

/// Turns a capture into [`LogEvent`]s. See the module docs for how payloads and the vendor
/// are found.
#[derive(Debug)]
pub struct LogDecoder<'b> {
    engine: Engine<'b>,
    known: Known,
}

/// What the decoder has learned from the capture so far (kept apart from the engine, whose
/// buffer the events borrow).
#[derive(Debug, Default)]
struct Known {
    /// Expectation to hand to the engine at the next poll.
    pending: Option<Option<DataLength>>,
    /// What the engine was last told to expect and has not used yet.
    expecting: Option<DataLength>,
    /// Body announced by the last `+QHTTPGET:` (not yet read).
    http_body: Option<DataLength>,
    vendor: Option<Vendor>,
    family: Option<Family>,
    /// The family came from an identity line: hints no longer change it.
    family_from_identity: bool,
}

impl<'b> LogDecoder<'b> {
    /// A decoder using `buf` as the engine's receive buffer (its size bounds the longest
    /// line; 1 KiB is plenty for logs). It finds the vendor from the capture.
    pub fn new(buf: &'b mut [u8]) -> Self {
        LogDecoder {
            engine: Engine::new(buf),
            known: Known::default(),
        }
    }

    /// Settles the vendor now (the capture is known to come from this vendor's module): from
    /// here on only its URC parser and its payload rules apply.
    pub fn assume(&mut self, vendor: Vendor) {
        self.known.vendor = Some(vendor);
    }

    /// The vendor the decoder settled on, `None` while the capture has not told.
    pub fn vendor(&self) -> Option<Vendor> {
        self.known.vendor
    }

    /// The SIMCom command set the capture shows, if it told (see the module docs).
    pub fn simcom_family(&self) -> Option<Family> {
        self.known.family
    }

    /// Tells the decoder the host sent this command line (with or without its CR), for
    /// captures that record the host side separately. Call it before feeding what the modem
    /// answered.
    pub fn host_command(&mut self, line: &[u8]) {
        let mut line = line;
        while let [l @ .., b'\r' | b'\n' | b' '] = line {
            line = l;
        }
        self.known.command(line);
    }

    /// Feeds modem bytes; returns how many were taken (poll, then offer the rest again).
    pub fn feed(&mut self, bytes: &[u8]) -> usize {
        self.engine.consume(bytes)
    }

    /// The capture ended (call it after polling until `None`). A last line the capture holds
    /// without its line end (the file ends in `+CPIN: READY` with no CR LF, or the capture
    /// was cut) is completed, so the next [`poll`](Self::poll)s return it like any other
    /// line; returns whether there was one. A payload cut by the capture is not a line: it
    /// stays a payload (poll with [`Instant::MAX`] to close one of unknown length).
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
        if let Some(p) = self.known.pending.take() {
            self.known.expecting = p;
            self.engine.expect_data(p);
        }
        if self.known.vendor != Some(Vendor::Quectel) && self.engine.data_state() == DataState::Idle
        {
            self.sniff_piece_header();
        }
        let known = &mut self.known;
        let ev = self.engine.poll(now)?;
        Some(match ev {
            Event::Echo(cmd) => {
                known.command(cmd);
                LogEvent::Command(cmd)
            }
            Event::Line(line) => known.line(line),
            Event::Final(f) => LogEvent::Final(f),
            Event::Prompt(p) => {
                if p == Prompt::Connect {
                    known.expecting = None;
                }
                LogEvent::Prompt(p)
            }
            Event::DataStart { len } => {
                known.expecting = None;
                LogEvent::PayloadStart { len }
            }
            Event::Data(d) => LogEvent::Payload(d),
            Event::DataEnd => LogEvent::PayloadEnd,
            Event::Overflow { discarded } => LogEvent::Overflow { discarded },
        })
    }

    /// If the next line the engine will frame is a SIMCom payload header, makes sure the
    /// engine expects a payload announced by it (the command may not be in the capture).
    fn sniff_piece_header(&mut self) {
        let bytes = self.engine.buffered_bytes();
        let start = bytes
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(bytes.len());
        let rest = &bytes[start..];
        let Some(end) = rest.iter().position(|&b| b == b'\r' || b == b'\n') else {
            return;
        };
        let Some((header, data_form)) = piece_header(&rest[..end]) else {
            return;
        };
        let hint = if data_form {
            Some(Family::Sim7600)
        } else if header == SHREAD {
            Some(Family::Sh)
        } else {
            None
        };
        self.known.settle(Vendor::Simcom, hint);
        let expected = matches!(
            self.known.expecting,
            Some(DataLength::Chunked { header: h, .. }) if h == header
        );
        if !expected {
            let len = Some(DataLength::Chunked {
                header,
                total: None,
            });
            self.known.expecting = len;
            self.engine.expect_data(len);
        }
    }
}

const HTTPREAD: &[u8] = b"+HTTPREAD:";
const HTTPHEAD: &[u8] = b"+HTTPHEAD:";
const SHREAD: &[u8] = b"+SHREAD:";

/// The header prefix of a SIMCom payload piece header (`+HTTPREAD: DATA,16`,
/// `+HTTPREAD: 500`, `+HTTPHEAD: 387`, `+SHREAD: 387`), and whether it has SIM7600's `DATA,`.
/// The same rule as the engine's framing: spaces tolerated, digits only, `LEN,` excluded.
fn piece_header(line: &[u8]) -> Option<(&'static [u8], bool)> {
    let line = line.trim_ascii();
    [HTTPREAD, HTTPHEAD, SHREAD].into_iter().find_map(|h| {
        let rest = after_prefix(line, h)?.trim_ascii();
        let (rest, data_form) = match rest.get(..5) {
            Some(p) if p.eq_ignore_ascii_case(b"DATA,") => (rest[5..].trim_ascii(), true),
            _ => (rest, false),
        };
        let digits = !rest.is_empty() && rest.iter().all(u8::is_ascii_digit);
        (digits && parse_u32(rest).is_ok()).then_some((h, data_form))
    })
}

/// How a line was typed.
enum Decoded<'a> {
    Urc(VendorUrc<'a>),
    Malformed(Vendor, ParseError),
    Line,
}

impl Known {
    /// Records that the host sent `cmd`: what a payload after it looks like, and what it says
    /// about the vendor.
    fn command(&mut self, cmd: &[u8]) {
        let (quectel, simcom) = (
            self.vendor != Some(Vendor::Simcom),
            self.vendor != Some(Vendor::Quectel),
        );
        if starts_with_ci(cmd, b"AT+Q") {
            self.settle(Vendor::Quectel, None);
        } else if let Some(hint) = simcom_command(cmd) {
            self.settle(Vendor::Simcom, hint);
        }
        let expect = if quectel && starts_with_ci(cmd, b"AT+Q") {
            quectel_expectation(cmd, &mut self.http_body)
        } else if simcom {
            simcom_expectation(cmd)
        } else {
            None
        };
        self.pending = Some(expect);
    }

    /// Types a line and notes what it says.
    fn line<'a>(&mut self, line: &'a [u8]) -> LogEvent<'a> {
        if self.vendor != Some(Vendor::Simcom) {
            if let Some(len) = http_get_body(line) {
                self.http_body = Some(len);
                // Without a visible command, the next bare CONNECT is this body.
                self.pending = Some(Some(len));
            }
        }
        let decoded = self.decode(line);
        self.evidence(line, &decoded);
        match decoded {
            Decoded::Urc(urc) => LogEvent::Urc { line, urc },
            Decoded::Malformed(vendor, error) => LogEvent::MalformedUrc {
                line,
                vendor,
                error,
            },
            Decoded::Line => LogEvent::Line(line),
        }
    }

    /// The settled vendor's URC parser, or before that Quectel's and then SIMCom's.
    fn decode<'a>(&self, line: &'a [u8]) -> Decoded<'a> {
        let quectel = || match QuectelUrc::parse(line)? {
            Ok(u) => Some(Decoded::Urc(VendorUrc::Quectel(u))),
            Err(e) => Some(Decoded::Malformed(Vendor::Quectel, e)),
        };
        let simcom = || match SimcomUrc::parse(line)? {
            Ok(u) => Some(Decoded::Urc(VendorUrc::Simcom(u))),
            Err(e) => Some(Decoded::Malformed(Vendor::Simcom, e)),
        };
        let found = match self.vendor {
            Some(Vendor::Quectel) => quectel(),
            Some(Vendor::Simcom) => simcom(),
            None => quectel().or_else(simcom),
        };
        found.unwrap_or(Decoded::Line)
    }

    /// What a modem line says about the vendor and the SIMCom family.
    fn evidence(&mut self, line: &[u8], decoded: &Decoded<'_>) {
        let line = line.trim_ascii();
        if starts_with_ci(line, b"+Q") || line.eq_ignore_ascii_case(b"Quectel") {
            return self.settle(Vendor::Quectel, None);
        }
        if let Some(family) = identity(line) {
            self.settle(Vendor::Simcom, None);
            if let (Some(f), Some(Vendor::Simcom)) = (family, self.vendor) {
                // The module said what it is: that beats every hint.
                self.family = Some(f);
                self.family_from_identity = true;
            }
            return;
        }
        let simcom = |u: &SimcomUrc<'_>| -> Option<Option<Family>> {
            Some(match u {
                SimcomUrc::AtReady(_) => Some(Family::A76xx),
                SimcomUrc::ShReq { .. } | SimcomUrc::ShState(_) | SimcomUrc::AppPdp { .. } => {
                    Some(Family::Sh)
                }
                SimcomUrc::HttpToFs(_) => Some(Family::Sh),
                SimcomUrc::BearerDeactivated { .. } => Some(Family::Sim800),
                SimcomUrc::SmsReady if line.eq_ignore_ascii_case(b"SMS Ready") => None,
                SimcomUrc::HttpAction(_)
                | SimcomUrc::HttpPeerClosed
                | SimcomUrc::HttpNoNetwork
                | SimcomUrc::HttpReadFile(_)
                | SimcomUrc::PdpDeactivated
                | SimcomUrc::NetOpen(_)
                | SimcomUrc::NetClose(_)
                | SimcomUrc::IpClose { .. }
                | SimcomUrc::NetworkClosed
                | SimcomUrc::Cfota(_) => None,
                _ => return None,
            })
        };
        let hint = match decoded {
            Decoded::Urc(VendorUrc::Simcom(u)) => simcom(u),
            // A SIMCom line the settled parser did not type (or typed as Quectel's).
            _ => match SimcomUrc::parse(line) {
                Some(Ok(u)) if self.vendor.is_none() => simcom(&u),
                _ => None,
            },
        };
        if let Some(hint) = hint {
            self.settle(Vendor::Simcom, hint);
        } else if starts_with_ci(line, b"+SAPBR:") || starts_with_ci(line, b"+CNACT:") {
            let hint = if starts_with_ci(line, b"+SAPBR:") {
                Family::Sim800
            } else {
                Family::Sh
            };
            self.settle(Vendor::Simcom, Some(hint));
        }
    }

    /// Settles the vendor if it is not yet known, and takes a SIMCom family hint unless an
    /// identity line has told.
    fn settle(&mut self, vendor: Vendor, hint: Option<Family>) {
        if self.vendor.is_none() {
            self.vendor = Some(vendor);
        }
        if vendor == Vendor::Simcom && self.vendor == Some(Vendor::Simcom) {
            if let (Some(f), false) = (hint, self.family_from_identity) {
                if self.family.is_none() {
                    self.family = Some(f);
                }
            }
        }
    }
}

/// `Some(family)` for a SIMCom identity line (`Manufacturer: SIMCOM …`; `Model:`,
/// `Revision:` or `+CGMR:` lines [`Family::from_identity`] knows), `None` otherwise.
fn identity(line: &[u8]) -> Option<Option<Family>> {
    let text = core::str::from_utf8(line).ok()?;
    if let Some(m) = after_prefix(line, b"Manufacturer:") {
        let simcom = m.windows(6).any(|w| w.eq_ignore_ascii_case(b"SIMCOM"));
        return simcom.then_some(None);
    }
    let family = if let Some(model) = after_prefix(line, b"Model:") {
        Family::from_identity(core::str::from_utf8(model).ok()?, "")
    } else if starts_with_ci(line, b"Revision:") || starts_with_ci(line, b"+CGMR:") {
        Family::from_identity("", text)
    } else {
        None
    };
    family.map(Some)
}

/// SIMCom's own commands, with the family they hint at.
const SIMCOM_COMMANDS: &[(&[u8], Option<Family>)] = &[
    (b"AT+HTTPINIT", None),
    (b"AT+HTTPPARA", None),
    (b"AT+HTTPACTION", None),
    (b"AT+HTTPHEAD", None),
    (b"AT+HTTPREAD", None),
    (b"AT+HTTPDATA", None),
    (b"AT+HTTPTERM", None),
    (b"AT+HTTPPOSTFILE", None),
    (b"AT+HTTPSTATUS", None),
    (b"AT+HTTPTOFS", Some(Family::Sh)),
    (b"AT+SHCONF", Some(Family::Sh)),
    (b"AT+SHCONN", Some(Family::Sh)),
    (b"AT+SHDISC", Some(Family::Sh)),
    (b"AT+SHSTATE", Some(Family::Sh)),
    (b"AT+SHCHEAD", Some(Family::Sh)),
    (b"AT+SHAHEAD", Some(Family::Sh)),
    (b"AT+SHREQ", Some(Family::Sh)),
    (b"AT+SHREAD", Some(Family::Sh)),
    (b"AT+SHSSL", Some(Family::Sh)),
    (b"AT+SHBOD", Some(Family::Sh)),
    (b"AT+CNACT", Some(Family::Sh)),
    (b"AT+CNCFG", Some(Family::Sh)),
    (b"AT+CAOPEN", Some(Family::Sh)),
    (b"AT+NETOPEN", None),
    (b"AT+NETCLOSE", None),
    (b"AT+CIPOPEN", None),
    (b"AT+SAPBR", Some(Family::Sim800)),
    (b"AT+SIMCOMATI", None),
    (b"AT+CSSLCFG", None),
    (b"AT+CCERTDOWN", None),
];

/// `Some(hint)` if `cmd` is one of SIMCom's own commands.
fn simcom_command(cmd: &[u8]) -> Option<Option<Family>> {
    SIMCOM_COMMANDS
        .iter()
        .find(|(name, _)| {
            starts_with_ci(cmd, name)
                && !cmd
                    .get(name.len())
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        })
        .map(|&(_, hint)| hint)
}

fn starts_with_ci(line: &[u8], p: &[u8]) -> bool {
    line.len() >= p.len() && line[..p.len()].eq_ignore_ascii_case(p)
}

/// What the piece headers after this SIMCom command belong to.
fn simcom_expectation(cmd: &[u8]) -> Option<DataLength> {
    if cmd.ends_with(b"?") || cmd.ends_with(b"=?") {
        return None;
    }
    let chunked = |header, total| Some(DataLength::Chunked { header, total });
    if starts_with_ci(cmd, b"AT+HTTPREADFILE") {
        None
    } else if starts_with_ci(cmd, b"AT+HTTPREAD") {
        chunked(HTTPREAD, None)
    } else if starts_with_ci(cmd, b"AT+HTTPHEAD") {
        chunked(HTTPHEAD, None)
    } else if let Some(mut p) = Params::after(cmd, b"AT+SHREAD=") {
        // `AT+SHREAD=<start>,<len>` has no closing header: the length ends it.
        let total = p.u32().and_then(|_| p.u32()).ok();
        chunked(SHREAD, total)
    } else {
        None
    }
}

/// What a bare `CONNECT` after this Quectel command starts.
fn quectel_expectation(cmd: &[u8], http_body: &mut Option<DataLength>) -> Option<DataLength> {
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
