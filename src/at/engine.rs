//! The sans-IO protocol engine: received bytes in, typed events out.

use super::command::DataLength;
use super::time::Instant;
use core::time::Duration;

/// Longest trailer (`OK` plus the result line plus any text lines after it) that ends a
/// payload of unknown length. Anything longer is payload.
const MAX_TRAILER: usize = 256;
/// Longest single line inside such a trailer.
const MAX_TRAILER_LINE: usize = 128;

/// A final result code, which ends a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Final<'a> {
    /// `OK`
    Ok,
    /// `ERROR` (with `AT+CMEE=0`, or for syntax errors)
    Error,
    /// `+CME ERROR: <n>` or its verbose text form (`AT+CMEE=2`).
    CmeError(ErrorCode<'a>),
    /// `+CMS ERROR: <n>` (SMS commands).
    CmsError(ErrorCode<'a>),
    /// `NO CARRIER`
    NoCarrier,
}

/// The argument of `+CME ERROR:` / `+CMS ERROR:`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ErrorCode<'a> {
    /// Numeric form (`AT+CMEE=1`).
    Numeric(u16),
    /// Verbose form (`AT+CMEE=2`): the text as sent, without surrounding spaces.
    Text(&'a [u8]),
}

/// A prompt that asks the host for data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Prompt {
    /// A bare `CONNECT` while no received payload was expected: the modem waits for the
    /// host's bytes (`AT+QHTTPURL`, `AT+QFUPL`, request-header `AT+QHTTPGET` ...).
    Connect,
    /// `> ` (`AT+QISEND`, `AT+CMGS`).
    Send,
}

/// One thing the engine recognised in the received bytes.
///
/// Borrowed slices point into the receive buffer; they stay valid until the next call that
/// takes `&mut self`, which releases them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Event<'a> {
    /// The modem echoed a command line (`ATE1`), or a capture contains the host's command.
    Echo(&'a [u8]),
    /// An information line or URC, without its line end. Which one it is depends on the
    /// command in flight; the client decides.
    Line(&'a [u8]),
    /// A final result.
    Final(Final<'a>),
    /// The modem asks for the host's data.
    Prompt(Prompt),
    /// `CONNECT` (or `CONNECT <n>`) started a received payload of `len` bytes (`None`:
    /// unknown, ends at the trailer). The engine is now in data mode.
    DataStart {
        /// Announced or expected length.
        len: Option<u32>,
    },
    /// Payload bytes, in order. Lines are not looked for until [`Event::DataEnd`].
    Data(&'a [u8]),
    /// The payload is complete; the engine frames lines again.
    DataEnd,
    /// A line longer than the receive buffer was dropped; framing resumed at its end.
    Overflow {
        /// How many bytes were discarded.
        discarded: usize,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Lines,
    Discard {
        discarded: usize,
    },
    Data {
        remaining: u32,
    },
    DataUntilTrailer {
        end_prefix: &'static [u8],
        quiet: Duration,
    },
    DataEnded,
}

/// What the data-mode state looks like to a caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DataState {
    /// Not in data mode.
    Idle,
    /// In data mode with this many payload bytes still to come.
    Remaining(u32),
    /// In data mode with an unknown length.
    UntilTrailer,
    /// All payload handed out; the next [`Engine::poll`] returns [`Event::DataEnd`].
    Ended,
}

/// The vendor-neutral AT framing engine.
///
/// It owns no I/O and no clock. Feed it bytes with [`Engine::consume`] (or read straight
/// into [`Engine::rx_spare`] and call [`Engine::rx_commit`]), then call [`Engine::poll`]
/// until it returns `None`, which means "need more bytes" (or, for a payload of unknown
/// length, "wait until [`Engine::next_deadline`]").
///
/// Framing rules:
/// * lines end at CR, LF or CRLF; blank lines are skipped;
/// * a line starting with `AT` (any case) is an echo; echoes end at CR alone;
/// * `OK`, `ERROR`, `+CME ERROR: …`, `+CMS ERROR: …`, `NO CARRIER` are final results;
/// * `> ` at the start of a line is a prompt and needs no line end;
/// * `CONNECT <n>` starts an `n`-byte payload; a bare `CONNECT` starts the payload set with
///   [`Engine::expect_data`], or else is a [`Prompt::Connect`]. Bytes received in the same
///   read as `CONNECT\r\n` are payload; exactly the line end after `CONNECT` is removed;
/// * with [`DataLength::Chunked`] expected, a line `<header> <n>` or `<header> DATA,<n>`
///   starts a piece of exactly `n` bytes (reported as [`Event::DataStart`] with the piece's
///   length; after the piece, lines are framed again until the next header), before or after
///   the final result; the payload ends ([`Event::DataEnd`]) at a header announcing 0, when
///   the announced pieces reach the expected total, or at a final result after a piece (which
///   is then reported next);
/// * a line longer than the buffer is dropped and reported as [`Event::Overflow`].
///
/// Nothing in here panics on any byte sequence; the buffer is never grown.
#[derive(Debug)]
pub struct Engine<'b> {
    buf: &'b mut [u8],
    start: usize,
    end: usize,
    /// Bytes at `start` lent out by the previous call, dropped at the next one.
    release: usize,
    state: State,
    expect: Option<DataLength>,
    received: u64,
    seen: u64,
    last_rx: Instant,
    /// A `CONNECT` line ended with CR as the last buffered byte: an LF that follows belongs
    /// to its line end, not to the payload.
    skip_lf: bool,
    /// A payload in announced pieces ([`DataLength::Chunked`]) has started.
    chunked: Option<Chunked>,
}

/// The progress of a [`DataLength::Chunked`] payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Chunked {
    header: &'static [u8],
    total: Option<u32>,
    /// Bytes announced so far.
    announced: u64,
}

impl Chunked {
    /// True once the announced pieces reach the payload's fixed length.
    fn complete(&self) -> bool {
        self.total.is_some_and(|t| self.announced >= u64::from(t))
    }
}

impl<'b> Engine<'b> {
    /// An engine framing into the caller's receive buffer.
    ///
    /// The buffer bounds the longest line and the largest payload slice lent out at once;
    /// 512 bytes or more is sensible, 1–4 KiB for firmware downloads.
    pub fn new(buf: &'b mut [u8]) -> Self {
        Engine {
            buf,
            start: 0,
            end: 0,
            release: 0,
            state: State::Lines,
            expect: None,
            received: 0,
            seen: 0,
            last_rx: Instant::ZERO,
            skip_lf: false,
            chunked: None,
        }
    }

    /// Capacity of the receive buffer.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Bytes received but not yet handed out as events.
    pub fn buffered(&self) -> usize {
        self.end - self.start - self.release
    }

    /// Total bytes ever fed in.
    pub fn received_total(&self) -> u64 {
        self.received
    }

    /// Forgets every buffered byte and leaves data mode (after a modem reboot or a port
    /// re-open). The expectation set with [`Engine::expect_data`] is cleared too.
    pub fn reset(&mut self) {
        self.start = 0;
        self.end = 0;
        self.release = 0;
        self.skip_lf = false;
        self.state = State::Lines;
        self.expect = None;
        self.chunked = None;
    }

    /// Declares what the next bare `CONNECT` starts: a received payload of this length
    /// (`Some`), or a prompt for the host's data (`None`, the default). It applies once. For
    /// [`DataLength::Chunked`] it applies to the next piece header; a chunked payload that
    /// has started continues until it ends, [`Engine::abort_data`] or [`Engine::reset`].
    pub fn expect_data(&mut self, len: Option<DataLength>) {
        self.expect = len;
    }

    /// Where the engine stands with a payload.
    pub fn data_state(&self) -> DataState {
        match self.state {
            State::Data { remaining } => DataState::Remaining(remaining),
            State::DataUntilTrailer { .. } => DataState::UntilTrailer,
            State::DataEnded => DataState::Ended,
            // Between two pieces of a chunked payload: more may come.
            State::Lines if self.chunked.is_some() => DataState::UntilTrailer,
            State::Lines | State::Discard { .. } => DataState::Idle,
        }
    }

    /// Leaves data mode at once (the caller gave up on the payload, e.g. after a timeout),
    /// returning how many announced bytes were never received. Buffered bytes are then framed
    /// as lines.
    pub fn abort_data(&mut self) -> u32 {
        let left = match self.state {
            State::Data { remaining } => remaining,
            _ => 0,
        };
        if matches!(
            self.state,
            State::Data { .. } | State::DataUntilTrailer { .. } | State::DataEnded
        ) {
            self.state = State::Lines;
        }
        self.chunked = None;
        left
    }

    /// The state after the last byte of a piece: the payload's end, or lines until the next
    /// piece's header.
    fn piece_done(&mut self) -> State {
        match self.chunked {
            Some(c) if !c.complete() => State::Lines,
            _ => {
                self.chunked = None;
                State::DataEnded
            }
        }
    }

    fn apply_release(&mut self) {
        self.start += self.release;
        self.release = 0;
        if self.skip_lf && self.start < self.end {
            self.skip_lf = false;
            if self.buf[self.start] == b'\n' {
                self.start += 1;
            }
        }
        if self.start >= self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Free space to read received bytes into directly (zero-copy receive). Call
    /// [`Engine::rx_commit`] with the number of bytes written. Empty when the buffer is full
    /// of bytes not yet handed out: poll first.
    pub fn rx_spare(&mut self) -> &mut [u8] {
        self.apply_release();
        if self.start > 0 && self.buf.len() - self.end < self.buf.len() / 4 + 1 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.buf[self.end..]
    }

    /// Records that `n` bytes were written into [`Engine::rx_spare`] (clamped to its size).
    pub fn rx_commit(&mut self, n: usize) {
        let n = n.min(self.buf.len() - self.end);
        self.end += n;
        self.received += n as u64;
    }

    /// Copies as many of `bytes` as fit into the receive buffer and returns how many.
    /// A return smaller than `bytes.len()` means: poll, then offer the rest again.
    pub fn consume(&mut self, bytes: &[u8]) -> usize {
        let spare = self.rx_spare();
        let n = spare.len().min(bytes.len());
        spare[..n].copy_from_slice(&bytes[..n]);
        self.rx_commit(n);
        n
    }

    /// When the engine needs to be polled again even if no byte arrives: the end of the
    /// quiet period after a candidate trailer of an unknown-length payload.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.state {
            State::DataUntilTrailer { end_prefix, quiet } if self.release == 0 => {
                match trailer_at(&self.buf[self.start..self.end], end_prefix) {
                    Trailer::Complete => Some(self.last_rx + quiet),
                    Trailer::Confirmed => Some(self.last_rx),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// Payload bytes ready to be handed out, without consuming them (for `BufRead`-style
    /// readers). Empty when not in data mode or when no payload byte is buffered.
    pub fn data_available(&mut self) -> &[u8] {
        self.apply_release();
        let n = self.data_len();
        &self.buf[self.start..self.start + n]
    }

    /// Every byte buffered and not consumed yet, payload or not (what follows the payload
    /// included), without consuming any.
    pub fn buffered_bytes(&mut self) -> &[u8] {
        self.apply_release();
        &self.buf[self.start..self.end]
    }

    /// Marks `n` bytes returned by [`Engine::data_available`] as consumed (clamped).
    pub fn consume_data(&mut self, n: usize) {
        self.apply_release();
        let n = n.min(self.data_len());
        self.start += n;
        if let State::Data { remaining } = &mut self.state {
            *remaining -= n as u32;
            if *remaining == 0 {
                self.state = self.piece_done();
            }
        }
        if self.start >= self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    fn data_len(&self) -> usize {
        let avail = &self.buf[self.start..self.end];
        match self.state {
            State::Data { remaining } => avail.len().min(remaining as usize),
            State::DataUntilTrailer { end_prefix, .. } => payload_before_trailer(
                avail,
                end_prefix,
                self.start == 0 && self.end == self.buf.len(),
            ),
            _ => 0,
        }
    }

    /// The next event, or `None` when more bytes (or time, see [`Engine::next_deadline`])
    /// are needed. Call it until it returns `None` after every batch of received bytes.
    pub fn poll(&mut self, now: Instant) -> Option<Event<'_>> {
        self.apply_release();
        if self.received != self.seen {
            self.seen = self.received;
            self.last_rx = now;
        }
        match self.state {
            State::DataEnded => {
                self.state = State::Lines;
                Some(Event::DataEnd)
            }
            State::Data { .. } => {
                let n = self.data_len();
                if n == 0 {
                    return None;
                }
                let State::Data { remaining } = &mut self.state else {
                    return None;
                };
                *remaining -= n as u32;
                if *remaining == 0 {
                    self.state = self.piece_done();
                }
                self.release = n;
                Some(Event::Data(&self.buf[self.start..self.start + n]))
            }
            State::DataUntilTrailer { end_prefix, quiet } => {
                let n = self.data_len();
                if n > 0 {
                    self.release = n;
                    return Some(Event::Data(&self.buf[self.start..self.start + n]));
                }
                let rest = &self.buf[self.start..self.end];
                let ended = match trailer_at(rest, end_prefix) {
                    Trailer::Complete => now >= self.last_rx + quiet,
                    Trailer::Confirmed => true,
                    Trailer::No | Trailer::Partial => false,
                };
                if ended {
                    self.state = State::Lines;
                    return Some(Event::DataEnd);
                }
                None
            }
            State::Discard { discarded } => self.poll_discard(discarded),
            State::Lines => self.poll_line(),
        }
    }

    fn poll_discard(&mut self, discarded: usize) -> Option<Event<'_>> {
        let rest = &self.buf[self.start..self.end];
        match rest.iter().position(|&b| b == b'\r' || b == b'\n') {
            Some(t) => {
                self.release = t + 1;
                self.state = State::Lines;
                Some(Event::Overflow {
                    discarded: discarded + t,
                })
            }
            None => {
                self.state = State::Discard {
                    discarded: discarded + rest.len(),
                };
                self.start = 0;
                self.end = 0;
                None
            }
        }
    }

    fn poll_line(&mut self) -> Option<Event<'_>> {
        // Skip blank lines.
        while self.start < self.end && matches!(self.buf[self.start], b'\r' | b'\n') {
            self.start += 1;
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            return None;
        }
        let rest = &self.buf[self.start..self.end];
        if rest.starts_with(b"> ") {
            self.release = 2;
            return Some(Event::Prompt(Prompt::Send));
        }
        let Some(t) = rest.iter().position(|&b| b == b'\r' || b == b'\n') else {
            if self.start == 0 && self.end == self.buf.len() {
                // A line as long as the whole buffer: drop it and resynchronise.
                self.state = State::Discard { discarded: 0 };
                return self.poll_discard(0);
            }
            return None;
        };
        let line = &rest[..t];
        let chunk_header = match (self.chunked, self.expect) {
            (Some(Chunked { header, .. }), _)
            | (None, Some(DataLength::Chunked { header, .. })) => Some(header),
            _ => None,
        };
        if let Some(header) = chunk_header {
            if let Some(n) = piece_len(line, header) {
                let term = self.line_end(t);
                self.start += t + term;
                let first = self.chunked.is_none();
                let chunked = self.chunked.get_or_insert_with(|| {
                    let total = match self.expect.take() {
                        Some(DataLength::Chunked { total, .. }) => total,
                        _ => None,
                    };
                    Chunked {
                        header,
                        total,
                        announced: 0,
                    }
                });
                chunked.announced += u64::from(n);
                if n == 0 {
                    self.chunked = None;
                    if first {
                        self.state = State::DataEnded;
                        return Some(Event::DataStart { len: Some(0) });
                    }
                    return Some(Event::DataEnd);
                }
                self.state = State::Data { remaining: n };
                return Some(Event::DataStart { len: Some(n) });
            }
            if self.chunked.is_some() && matches!(classify(line), Event::Final(_)) {
                // A final result after a piece ends the payload (SIM800-style reads): the
                // line stays for the next poll.
                self.chunked = None;
                return Some(Event::DataEnd);
            }
        }
        let line = &self.buf[self.start..self.start + t];
        if let Some(len) = connect(line) {
            let term = self.line_end(t);
            let expect = self.expect.take();
            let (state, event) = match (len, expect) {
                (Some(n), _) => (
                    if n == 0 {
                        State::DataEnded
                    } else {
                        State::Data { remaining: n }
                    },
                    Event::DataStart { len: Some(n) },
                ),
                (None, Some(DataLength::Exact(n))) => (
                    if n == 0 {
                        State::DataEnded
                    } else {
                        State::Data { remaining: n }
                    },
                    Event::DataStart { len: Some(n) },
                ),
                (None, Some(DataLength::UntilTrailer { end_prefix, quiet })) => (
                    State::DataUntilTrailer { end_prefix, quiet },
                    Event::DataStart { len: None },
                ),
                (None, Some(DataLength::Announced | DataLength::Chunked { .. }) | None) => {
                    (State::Lines, Event::Prompt(Prompt::Connect))
                }
            };
            self.state = state;
            self.start += t + term;
            return Some(event);
        }
        self.release = t + 1;
        let line = &self.buf[self.start..self.start + t];
        Some(classify(line))
    }

    /// The length of the line end at `start + t` to remove before a payload: CR LF, or a
    /// lone CR / LF. A CR that is the last buffered byte is taken now and an LF that arrives
    /// next is dropped (waiting could stall on a full buffer).
    fn line_end(&mut self, t: usize) -> usize {
        let rest = &self.buf[self.start..self.end];
        if rest[t] != b'\r' {
            return 1;
        }
        match rest.get(t + 1) {
            None => {
                self.skip_lf = true;
                1
            }
            Some(b'\n') => 2,
            Some(_) => 1,
        }
    }
}

/// The piece length a chunk header line announces: `<header> <n>` or `<header> DATA,<n>`
/// (spaces tolerated); `None` for any other line, including `<header> LEN,<n>`.
fn piece_len(line: &[u8], header: &[u8]) -> Option<u32> {
    let rest = trim(super::params::after_prefix(trim(line), header)?);
    let rest = match rest.get(..5) {
        Some(p) if p.eq_ignore_ascii_case(b"DATA,") => trim(&rest[5..]),
        _ => rest,
    };
    if rest.is_empty() || !rest.iter().all(u8::is_ascii_digit) {
        return None;
    }
    super::params::parse_u32(rest).ok()
}

/// `Some(None)` for a bare `CONNECT`, `Some(Some(n))` for `CONNECT <n>`.
fn connect(line: &[u8]) -> Option<Option<u32>> {
    let rest = line.strip_prefix(b"CONNECT")?;
    let rest = trim(rest);
    if rest.is_empty() {
        return Some(None);
    }
    super::params::parse_u32(rest).ok().map(Some)
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ', t @ ..] = s {
        s = t;
    }
    while let [h @ .., b' '] = s {
        s = h;
    }
    s
}

fn classify(line: &[u8]) -> Event<'_> {
    let trimmed = trim(line);
    match trimmed {
        b"OK" => return Event::Final(Final::Ok),
        b"ERROR" => return Event::Final(Final::Error),
        b"NO CARRIER" => return Event::Final(Final::NoCarrier),
        _ => {}
    }
    if let Some(code) = super::params::after_prefix(trimmed, b"+CME ERROR:") {
        return Event::Final(Final::CmeError(error_code(code)));
    }
    if let Some(code) = super::params::after_prefix(trimmed, b"+CMS ERROR:") {
        return Event::Final(Final::CmsError(error_code(code)));
    }
    if line.len() >= 2 && line[..2].eq_ignore_ascii_case(b"AT") {
        return Event::Echo(line);
    }
    Event::Line(line)
}

fn error_code(text: &[u8]) -> ErrorCode<'_> {
    let text = trim(text);
    match super::params::parse_u32(text) {
        Ok(n) if n <= u32::from(u16::MAX) => ErrorCode::Numeric(n as u16),
        _ => ErrorCode::Text(text),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trailer {
    /// Not a trailer: these bytes are payload.
    No,
    /// Could still become one: hold the bytes.
    Partial,
    /// `OK` and the result line (plus only text lines) are here.
    Complete,
    /// A complete trailer followed by an echoed command: the payload has certainly ended.
    Confirmed,
}

/// Is `s` (starting at a CR or LF) the modem's trailer after an unknown-length payload?
///
/// A trailer is a run of framed lines, the first of which is `OK` or starts with
/// `end_prefix`, which together contain both, and which contain only printable text. It is
/// only `Complete` once both lines are fully framed.
fn trailer_at(s: &[u8], end_prefix: &[u8]) -> Trailer {
    if !matches!(s.first(), Some(b'\r' | b'\n')) {
        return Trailer::No;
    }
    if s.len() > MAX_TRAILER {
        // More bytes followed the candidate than any trailer (plus a URC) is long: payload.
        return Trailer::No;
    }
    trailer_lines(s, end_prefix)
}

fn trailer_lines(s: &[u8], end_prefix: &[u8]) -> Trailer {
    let (mut seen_ok, mut seen_end) = (false, false);
    // The modem frames its first trailer line with exactly one line end (CR LF, or LF in
    // LF-only logs); any CR or LF before that belongs to the payload.
    let mut i = match s {
        [b'\r', b'\n', ..] | [b'\n', ..] => {
            if s[0] == b'\r' {
                2
            } else {
                1
            }
        }
        [b'\r'] => return Trailer::Partial,
        _ => return Trailer::No,
    };
    if i < s.len() && matches!(s[i], b'\r' | b'\n') {
        return Trailer::No;
    }
    let mut first = true;
    loop {
        while i < s.len() && matches!(s[i], b'\r' | b'\n') {
            i += 1;
        }
        if i == s.len() {
            return if seen_ok && seen_end {
                Trailer::Complete
            } else {
                Trailer::Partial
            };
        }
        let line_start = i;
        while i < s.len() && !matches!(s[i], b'\r' | b'\n') {
            if !(0x20..=0x7e).contains(&s[i]) || i - line_start >= MAX_TRAILER_LINE {
                return Trailer::No;
            }
            i += 1;
        }
        let line = &s[line_start..i];
        let framed = i < s.len();
        let is_ok = line == b"OK";
        let is_end = line.len() >= end_prefix.len()
            && line[..end_prefix.len()].eq_ignore_ascii_case(end_prefix);
        // Between and after the trailer lines the modem sends only URCs: lines that start
        // like one (`+`, or an upper-case word such as `RDY`).
        let urc_like = matches!(line.first(), None | Some(b'+' | b'A'..=b'Z'));
        if seen_ok && seen_end {
            // The host's next command, echoed, proves the payload ended (offline logs
            // carry no timing to prove it by silence).
            if line.len() >= 2 && line[..2].eq_ignore_ascii_case(b"AT") {
                return Trailer::Confirmed;
            }
            // Never another `OK` or result line after a complete trailer.
            if is_ok || is_end || !urc_like {
                return Trailer::No;
            }
            if !framed {
                return Trailer::Partial;
            }
            continue;
        }
        if !framed {
            // A line still arriving.
            let could_be = b"OK".starts_with(line)
                || (line.len() <= end_prefix.len()
                    && end_prefix[..line.len()].eq_ignore_ascii_case(line))
                || is_end
                || (!first && urc_like);
            return if could_be {
                Trailer::Partial
            } else {
                Trailer::No
            };
        }
        if !is_ok && !is_end && (first || !urc_like) {
            return Trailer::No;
        }
        first = false;
        seen_ok |= is_ok;
        seen_end |= is_end;
    }
}

/// How many leading bytes of `avail` are certainly payload (the rest may be the trailer).
fn payload_before_trailer(avail: &[u8], end_prefix: &[u8], buffer_full: bool) -> usize {
    let mut i = 0;
    while i < avail.len() {
        match avail[i..].iter().position(|&b| b == b'\r' || b == b'\n') {
            None => return avail.len(),
            Some(p) => i += p,
        }
        match trailer_at(&avail[i..], end_prefix) {
            Trailer::No => i += 1,
            Trailer::Partial | Trailer::Complete | Trailer::Confirmed => {
                if i == 0 && buffer_full {
                    // The whole buffer is a candidate that cannot grow: it is payload.
                    return 1;
                }
                return i;
            }
        }
    }
    avail.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;

    fn lines(e: &mut Engine<'_>, out: &mut [u8; 512]) -> usize {
        let mut n = 0;
        while let Some(ev) = e.poll(Instant::ZERO) {
            let tag = match ev {
                Event::Echo(_) => b'E',
                Event::Line(_) => b'L',
                Event::Final(_) => b'F',
                Event::Prompt(_) => b'P',
                Event::DataStart { .. } => b'S',
                Event::Data(d) => {
                    for &b in d {
                        out[n] = b;
                        n += 1;
                    }
                    continue;
                }
                Event::DataEnd => b'D',
                Event::Overflow { .. } => b'O',
            };
            out[n] = tag;
            n += 1;
        }
        n
    }

    #[test]
    fn payload_in_same_read_as_connect() {
        let mut buf = [0u8; 64];
        let mut e = Engine::new(&mut buf);
        e.expect_data(Some(DataLength::Exact(4)));
        e.consume(b"\r\nCONNECT\r\n\r\nOK\r\n\r\nOK\r\n");
        let mut out = [0u8; 512];
        let n = lines(&mut e, &mut out);
        assert_eq!(&out[..n], b"S\r\nOKDF");
    }

    #[test]
    fn connect_cr_at_the_end_of_a_full_buffer_does_not_stall() {
        // Found by the `framer` fuzz target: the line fills the buffer up to its CR.
        let mut buf = [0u8; 16];
        let mut e = Engine::new(&mut buf);
        e.expect_data(Some(DataLength::Exact(2)));
        assert_eq!(e.consume(b"CONNECT        \r\nab\r\nOK\r\n"), 16);
        assert_eq!(
            e.poll(Instant::ZERO),
            Some(Event::DataStart { len: Some(2) })
        );
        let mut rest: &[u8] = b"\nab\r\nOK\r\n";
        let mut out = heapless::Vec::<u8, 8>::new();
        let mut finals = 0;
        loop {
            let n = e.consume(rest);
            rest = &rest[n..];
            let mut any = false;
            while let Some(ev) = e.poll(Instant::ZERO) {
                any = true;
                match ev {
                    Event::Data(d) => out.extend_from_slice(d).unwrap(),
                    Event::Final(Final::Ok) => finals += 1,
                    _ => {}
                }
            }
            if rest.is_empty() && !any {
                break;
            }
        }
        assert_eq!(out.as_slice(), b"ab");
        assert_eq!(finals, 1);
        // Split exactly after the CR: the LF is still dropped.
        let mut buf = [0u8; 64];
        let mut e = Engine::new(&mut buf);
        e.consume(b"\r\nCONNECT 1\r");
        assert_eq!(
            e.poll(Instant::ZERO),
            Some(Event::DataStart { len: Some(1) })
        );
        e.consume(b"\nZ\r\nOK\r\n");
        assert_eq!(e.poll(Instant::ZERO), Some(Event::Data(b"Z")));
    }

    #[test]
    fn connect_n() {
        let mut buf = [0u8; 64];
        let mut e = Engine::new(&mut buf);
        e.consume(b"AT+QFREAD=1,3\r\r\nCONNECT 3\r\nabc\r\nOK\r\n");
        let mut out = [0u8; 512];
        let n = lines(&mut e, &mut out);
        assert_eq!(&out[..n], b"ESabcDF");
    }

    #[test]
    fn overlong_line_resyncs() {
        let mut buf = [0u8; 16];
        let mut e = Engine::new(&mut buf);
        let long = [b'x'; 40];
        let mut fed = 0;
        let mut events = heapless::Vec::<u8, 8>::new();
        while fed < long.len() {
            fed += e.consume(&long[fed..]);
            while let Some(ev) = e.poll(Instant::ZERO) {
                let _ = events.push(if matches!(ev, Event::Overflow { .. }) {
                    b'O'
                } else {
                    b'?'
                });
            }
        }
        e.consume(b"\r\nOK\r\n");
        let mut seen = None;
        while let Some(ev) = e.poll(Instant::ZERO) {
            match ev {
                Event::Overflow { discarded } => seen = Some(discarded),
                Event::Final(Final::Ok) => {
                    let _ = events.push(b'F');
                }
                _ => {}
            }
        }
        assert_eq!(seen, Some(40));
        assert_eq!(events.as_slice(), b"F");
    }

    #[test]
    fn unknown_length_waits_for_quiet() {
        let mut buf = [0u8; 128];
        let mut e = Engine::new(&mut buf);
        e.expect_data(Some(DataLength::UntilTrailer {
            end_prefix: b"+QHTTPREAD:",
            quiet: Duration::from_millis(100),
        }));
        e.consume(b"\r\nCONNECT\r\nab\r\nOK\r\n\r\n+QHTTPREAD: 0\r\n");
        assert_eq!(e.poll(Instant::ZERO), Some(Event::DataStart { len: None }));
        assert_eq!(e.poll(Instant::ZERO), Some(Event::Data(b"ab")));
        assert_eq!(e.poll(Instant::from_millis(50)), None);
        assert_eq!(e.next_deadline(), Some(Instant::from_millis(100)));
        // More bytes that no modem would send after its trailer: it was body content.
        e.consume(b"cd");
        let mut body = heapless::Vec::<u8, 64>::new();
        while let Some(Event::Data(d)) = e.poll(Instant::from_millis(60)) {
            body.extend_from_slice(d).unwrap();
        }
        assert_eq!(body.as_slice(), b"\r\nOK\r\n\r\n+QHTTPREAD: 0\r\ncd");
        e.consume(b"\r\nOK\r\n\r\n+QHTTPREAD: 0\r\n");
        assert_eq!(e.poll(Instant::from_millis(70)), None);
        assert_eq!(e.poll(Instant::from_millis(170)), Some(Event::DataEnd));
        assert_eq!(
            e.poll(Instant::from_millis(170)),
            Some(Event::Final(Final::Ok))
        );
        assert_eq!(
            e.poll(Instant::from_millis(170)),
            Some(Event::Line(b"+QHTTPREAD: 0"))
        );
    }

    fn read_unknown(chunks: &[&[u8]]) -> heapless::Vec<u8, 128> {
        let mut buf = [0u8; 128];
        let mut e = Engine::new(&mut buf);
        e.expect_data(Some(DataLength::UntilTrailer {
            end_prefix: b"+QHTTPREAD:",
            quiet: Duration::from_millis(100),
        }));
        let mut body = heapless::Vec::new();
        let mut t = 0;
        for c in chunks {
            e.consume(c);
            t += 1;
            while let Some(ev) = e.poll(Instant::from_millis(t)) {
                if let Event::Data(d) = ev {
                    body.extend_from_slice(d).unwrap();
                }
            }
        }
        let mut ended = false;
        while let Some(ev) = e.poll(Instant::from_millis(1000)) {
            match ev {
                Event::Data(d) => body.extend_from_slice(d).unwrap(),
                Event::DataEnd => ended = true,
                _ => {}
            }
        }
        assert!(ended);
        body
    }

    #[test]
    fn body_keeps_its_own_line_ends() {
        for (input, body) in [
            (
                &b"\r\nCONNECT\r\n</ht\n\r\nOK\r\n\r\n+QHTTPREAD: 0\r\n"[..],
                &b"</ht\n"[..],
            ),
            (
                b"\r\nCONNECT\r\nx\r\n\r\nOK\r\n\r\n+QHTTPREAD: 0\r\n",
                b"x\r\n",
            ),
            (b"\r\nCONNECT\r\nx\r\r\nOK\r\n\r\n+QHTTPREAD: 0\r\n", b"x\r"),
            (b"\nCONNECT\nx\nOK\n\n+QHTTPREAD: 0\n", b"x"),
            (b"\r\nCONNECT\r\n\r\nOK\r\n\r\n+QHTTPREAD: 0\r\n", b""),
        ] {
            assert_eq!(read_unknown(&[input]).as_slice(), body, "{input:?}");
            let bytes: heapless::Vec<&[u8], 64> = input.chunks(1).collect();
            assert_eq!(read_unknown(&bytes).as_slice(), body, "{input:?} bytewise");
        }
    }

    #[test]
    fn echo_after_trailer_ends_payload_without_waiting() {
        let mut buf = [0u8; 128];
        let mut e = Engine::new(&mut buf);
        e.expect_data(Some(DataLength::UntilTrailer {
            end_prefix: b"+QHTTPREAD:",
            quiet: Duration::from_secs(60),
        }));
        e.consume(b"\r\nCONNECT\r\nab\r\nOK\r\n\r\n+QHTTPREAD: 0\r\nAT+QHTTPSTOP\r\r\nOK\r\n");
        assert_eq!(e.poll(Instant::ZERO), Some(Event::DataStart { len: None }));
        assert_eq!(e.poll(Instant::ZERO), Some(Event::Data(b"ab")));
        assert_eq!(e.poll(Instant::ZERO), Some(Event::DataEnd));
        assert_eq!(e.poll(Instant::ZERO), Some(Event::Final(Final::Ok)));
        assert_eq!(e.poll(Instant::ZERO), Some(Event::Line(b"+QHTTPREAD: 0")));
        assert_eq!(e.poll(Instant::ZERO), Some(Event::Echo(b"AT+QHTTPSTOP")));
    }

    #[test]
    fn cme_forms() {
        let mut buf = [0u8; 128];
        let mut e = Engine::new(&mut buf);
        e.consume(b"\r\n+CME ERROR: 716\r\n\r\n+CME ERROR: file already exist\r\n");
        assert_eq!(
            e.poll(Instant::ZERO),
            Some(Event::Final(Final::CmeError(ErrorCode::Numeric(716))))
        );
        assert_eq!(
            e.poll(Instant::ZERO),
            Some(Event::Final(Final::CmeError(ErrorCode::Text(
                b"file already exist"
            ))))
        );
    }

    extern crate std;

    /// Feeds `wire` in the pieces `cuts` makes (byte positions) into an engine that expects
    /// a chunked payload, polling after each piece; returns the events as text: `S<n>` for
    /// a piece's start, the payload bytes in `[...]`, `D` for the payload's end, `F` for a
    /// final result, `L(<line>)` for a line.
    fn chunked_events(
        wire: &[u8],
        header: &'static [u8],
        total: Option<u32>,
        cuts: &[usize],
    ) -> std::string::String {
        use std::string::String;
        let mut buf = [0u8; 64];
        let mut e = Engine::new(&mut buf);
        e.expect_data(Some(DataLength::Chunked { header, total }));
        let mut out = String::new();
        let mut data = std::vec::Vec::new();
        let flush = |out: &mut String, data: &mut std::vec::Vec<u8>| {
            if !data.is_empty() {
                out.push('[');
                out.push_str(&String::from_utf8_lossy(data));
                out.push(']');
                data.clear();
            }
        };
        let mut from = 0;
        for &to in cuts.iter().chain(core::iter::once(&wire.len())) {
            let mut piece = &wire[from..to];
            from = to;
            loop {
                let n = e.consume(piece);
                piece = &piece[n..];
                while let Some(ev) = e.poll(Instant::ZERO) {
                    match ev {
                        Event::Data(d) => data.extend_from_slice(d),
                        other => {
                            flush(&mut out, &mut data);
                            match other {
                                Event::DataStart { len } => {
                                    out.push_str(&std::format!("S{}", len.unwrap_or(u32::MAX)))
                                }
                                Event::DataEnd => out.push('D'),
                                Event::Final(_) => out.push('F'),
                                Event::Line(l) => {
                                    out.push_str(&std::format!("L({})", String::from_utf8_lossy(l)))
                                }
                                Event::Echo(_) => out.push('E'),
                                Event::Prompt(_) => out.push('P'),
                                Event::Overflow { .. } => out.push('O'),
                                Event::Data(_) => unreachable!(),
                            }
                        }
                    }
                }
                if piece.is_empty() {
                    break;
                }
            }
        }
        flush(&mut out, &mut data);
        out
    }

    /// The same events whether `wire` arrives whole, one byte at a time, or split at any
    /// one position.
    fn chunked_all_splits(
        wire: &[u8],
        header: &'static [u8],
        total: Option<u32>,
    ) -> std::string::String {
        let whole = chunked_events(wire, header, total, &[]);
        let bytes: heapless::Vec<usize, 512> = (1..wire.len()).collect();
        assert_eq!(
            chunked_events(wire, header, total, &bytes),
            whole,
            "byte by byte"
        );
        for cut in 1..wire.len() {
            assert_eq!(
                chunked_events(wire, header, total, &[cut]),
                whole,
                "split at {cut}"
            );
        }
        whole
    }

    #[test]
    fn sim7600_read_answers_ok_first_then_data_pieces() {
        // SIM7600 (`simcom-at.md` T1): OK, `+HTTPREAD: DATA,<n>`, the bytes, `+HTTPREAD: 0`.
        let wire = b"\r\nOK\r\n\r\n+HTTPREAD: DATA,16\r\n<!DOCTYPE html P\r\n+HTTPREAD: 0\r\n";
        assert_eq!(
            chunked_all_splits(wire, b"+HTTPREAD:", None),
            "FS16[<!DOCTYPE html P]D"
        );
    }

    #[test]
    fn a76xx_body_that_reads_ok_is_payload() {
        // A76xx (T2): no `DATA,`; the 2-byte body is `OK`.
        let wire = b"\r\nOK\r\n\r\n+HTTPREAD: 2\r\nOK\r\n+HTTPREAD: 0\r\n";
        assert_eq!(chunked_all_splits(wire, b"+HTTPREAD:", None), "FS2[OK]D");
    }

    #[test]
    fn pieces_may_follow_each_other_without_a_line_end_and_urcs_may_come_between() {
        // Two pieces, the second header straight after the first's bytes (as a user's
        // SIM7600 fixtures have it); a URC before the first piece and between pieces.
        let wire = b"\r\nOK\r\n\r\n+HTTP_PEER_CLOSED\r\n\r\n+HTTPREAD: DATA,5\r\nab\r\nc+HTTPREAD: DATA,3\r\nxyz\r\n+CGEV: ME DETACH\r\n\r\n+HTTPREAD: 0\r\n";
        assert_eq!(
            chunked_all_splits(wire, b"+HTTPREAD:", None),
            "FL(+HTTP_PEER_CLOSED)S5[ab\r\nc]S3[xyz]L(+CGEV: ME DETACH)D"
        );
    }

    #[test]
    fn shread_ends_at_the_requested_length() {
        // SIM7070 (T3): no closing header; the pieces add up to the requested length.
        let wire = b"\r\nOK\r\n\r\n+SHREAD: 4\r\n{\r\n}\r\n+SHREAD: 2\r\nOK";
        assert_eq!(
            chunked_all_splits(wire, b"+SHREAD:", Some(6)),
            "FS4[{\r\n}]S2[OK]D"
        );
    }

    #[test]
    fn a_final_result_after_a_piece_ends_the_payload() {
        // SIM800-style `AT+HTTPREAD` and SIM7600's `AT+HTTPHEAD`: header, bytes, then OK.
        let wire = b"\r\n+HTTPREAD: 5\r\nhello\r\nOK\r\n";
        assert_eq!(chunked_all_splits(wire, b"+HTTPREAD:", None), "S5[hello]DF");
        // An empty body, and a length query that is not a piece header.
        let wire = b"\r\nOK\r\n\r\n+HTTPREAD: 0\r\n";
        assert_eq!(chunked_all_splits(wire, b"+HTTPREAD:", None), "FS0D");
        let wire = b"\r\n+HTTPREAD: LEN,12\r\nOK\r\n";
        assert_eq!(
            chunked_all_splits(wire, b"+HTTPREAD:", None),
            "L(+HTTPREAD: LEN,12)F"
        );
    }

    /// What the chunked-framing property test builds its streams from.
    const PIECES: &[&[u8]] = &[
        b"\r\n+HTTPREAD: DATA,3\r\n",
        b"\r\n+HTTPREAD: 2\r\n",
        b"+HTTPREAD: 0\r\n",
        b"\r\n+HTTPREAD: LEN,7\r\n",
        b"\r\nOK\r\n",
        b"\r\nERROR\r\n",
        b"abc",
        b"\r\n",
        b"+HTTPREAD:",
        b"DATA,",
        b"9\r",
        b"\n",
        b"+HTTP_PEER_CLOSED\r\n",
        b"CONNECT\r\n",
        b"0123456789012345678901234567890123456789012345678901234567890123456789",
    ];

    proptest::proptest! {
        /// Chunked framing never panics and does not depend on how the bytes are split.
        #[test]
        fn chunked_framing_is_total_and_split_independent(
            parts in proptest::collection::vec(proptest::sample::select(PIECES), 0..12),
            total in proptest::option::of(0u32..12),
            cut in 0usize..200,
        ) {
            let wire: std::vec::Vec<u8> = parts.concat();
            let whole = chunked_events(&wire, b"+HTTPREAD:", total, &[]);
            let bytes: std::vec::Vec<usize> = (1..wire.len()).collect();
            proptest::prop_assert_eq!(&chunked_events(&wire, b"+HTTPREAD:", total, &bytes), &whole);
            let cut = cut.min(wire.len());
            proptest::prop_assert_eq!(&chunked_events(&wire, b"+HTTPREAD:", total, &[cut]), &whole);
        }
    }
}
