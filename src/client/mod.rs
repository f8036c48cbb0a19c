//! Blocking and async clients: thin shells over [`Engine`](crate::at::Engine) that differ
//! only in how they wait for bytes and deadlines.
//!
//! Both run the same loop — read, feed the engine, poll events, write — and hand every event
//! to the same sans-IO exchange bookkeeping (one private type), so they cannot drift apart.

pub mod asynch;
pub mod blocking;

use core::time::Duration;

use crate::at::{
    AtCommand, DataPhase, EncodeError, Encoder, ErrorCode, Event, Final, ParseError, Prompt,
    ResponseLines,
};

/// Receives every unsolicited line (URC) that arrives while the client waits, in order.
///
/// The line has no CR/LF and borrows the receive buffer: copy what you need. A Quectel
/// application typically calls [`crate::quectel::urc::Urc::parse`] on it.
pub trait UrcHandler {
    /// Called once per unsolicited line.
    fn on_urc(&mut self, line: &[u8]);
}

impl<F: FnMut(&[u8])> UrcHandler for F {
    fn on_urc(&mut self, line: &[u8]) {
        self(line)
    }
}

/// A [`UrcHandler`] that counts and otherwise ignores URCs, for callers that poll state
/// with commands instead.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CountUrcs(pub u32);

impl UrcHandler for CountUrcs {
    fn on_urc(&mut self, _line: &[u8]) {
        self.0 = self.0.saturating_add(1);
    }
}

/// Client settings.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Tells URCs from information lines of commands without a response prefix (`ATI`,
    /// `AT+GMR`). For Quectel modems use [`crate::quectel::urc::is_urc`].
    pub is_urc: fn(&[u8]) -> bool,
}

impl Config {
    /// Settings for Quectel modems.
    pub fn quectel() -> Self {
        Config {
            is_urc: crate::quectel::urc::is_urc,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::quectel()
    }
}

/// Longest verbose `+CME ERROR: <text>` kept in an error.
pub const MAX_ERROR_TEXT: usize = 48;

/// The modem's code for a refused command.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ModemCode {
    /// Numeric form (`AT+CMEE=1`).
    Numeric(u16),
    /// Verbose form (`AT+CMEE=2`), truncated to [`MAX_ERROR_TEXT`] bytes.
    Text(heapless::String<MAX_ERROR_TEXT>),
}

impl ModemCode {
    fn from_engine(code: ErrorCode<'_>) -> Self {
        match code {
            ErrorCode::Numeric(n) => ModemCode::Numeric(n),
            ErrorCode::Text(t) => {
                let mut s = heapless::String::new();
                for &b in t.iter().take(MAX_ERROR_TEXT) {
                    let c = if (0x20..0x7f).contains(&b) {
                        b as char
                    } else {
                        '?'
                    };
                    let _ = s.push(c);
                }
                ModemCode::Text(s)
            }
        }
    }

    /// The numeric code, if the modem sent one.
    pub fn code(&self) -> Option<u16> {
        match self {
            ModemCode::Numeric(n) => Some(*n),
            ModemCode::Text(_) => None,
        }
    }
}

impl core::fmt::Display for ModemCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ModemCode::Numeric(n) => write!(f, "{n}"),
            ModemCode::Text(t) => f.write_str(t),
        }
    }
}

/// A final result other than `OK`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Rejection {
    /// `ERROR`.
    #[error("ERROR")]
    Error,
    /// `+CME ERROR: <code>`; decode it with [`crate::quectel::error::CmeError`].
    #[error("+CME ERROR: {0}")]
    Cme(ModemCode),
    /// `+CMS ERROR: <code>`.
    #[error("+CMS ERROR: {0}")]
    Cms(ModemCode),
    /// `NO CARRIER`.
    #[error("NO CARRIER")]
    NoCarrier,
}

impl Rejection {
    fn from_final(f: Final<'_>) -> Option<Self> {
        match f {
            Final::Ok => None,
            Final::Error => Some(Rejection::Error),
            Final::CmeError(c) => Some(Rejection::Cme(ModemCode::from_engine(c))),
            Final::CmsError(c) => Some(Rejection::Cms(ModemCode::from_engine(c))),
            Final::NoCarrier => Some(Rejection::NoCarrier),
        }
    }
}

/// Why a client call failed. `E` is the transport's error type.
#[derive(Debug, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error<E> {
    /// The transport failed.
    #[error("transport error: {0:?}")]
    Io(E),
    /// The transport reported end of stream (the port closed).
    #[error("the transport closed")]
    Closed,
    /// The deadline passed before the modem finished.
    #[error("no complete answer within the deadline")]
    Timeout,
    /// The command could not be encoded; nothing was written.
    #[error("command not sent: {0}")]
    Encode(#[from] EncodeError),
    /// The answer did not parse.
    #[error("answer did not parse: {0}")]
    Parse(#[from] ParseError),
    /// The modem refused the command.
    #[error("modem answered {0}")]
    Rejected(Rejection),
    /// The answer's lines did not fit the response buffer. The exchange was still followed
    /// to its final result, so the next command starts in sync.
    #[error("answer does not fit the {capacity}-byte response buffer")]
    ResponseTooLarge {
        /// Size of the response buffer.
        capacity: usize,
    },
    /// A line longer than the receive buffer arrived while this command ran (it was
    /// discarded, and may have been part of the answer).
    #[error("a {discarded}-byte line did not fit the receive buffer")]
    LineTooLong {
        /// Bytes discarded.
        discarded: usize,
    },
    /// The modem did something this command does not allow (a prompt or payload where none
    /// was expected, or a payload of the wrong length).
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// The modem restarted in the middle of a payload: after a silence its boot URC
    /// (`RDY`) came where payload bytes should be. None of it was handed out as payload;
    /// the engine left data mode.
    #[error("the modem restarted during the payload (RDY)")]
    ModemRebooted,
}

impl<E> Error<E> {
    /// The same error with the transport's error mapped by `f` (for example to its
    /// [`embedded_io::ErrorKind`]).
    pub fn map_io<F>(self, f: impl FnOnce(E) -> F) -> Error<F> {
        match self {
            Error::Io(e) => Error::Io(f(e)),
            Error::Closed => Error::Closed,
            Error::Timeout => Error::Timeout,
            Error::Encode(e) => Error::Encode(e),
            Error::Parse(e) => Error::Parse(e),
            Error::Rejected(r) => Error::Rejected(r),
            Error::ResponseTooLarge { capacity } => Error::ResponseTooLarge { capacity },
            Error::LineTooLong { discarded } => Error::LineTooLong { discarded },
            Error::Protocol(p) => Error::Protocol(p),
            Error::ModemRebooted => Error::ModemRebooted,
        }
    }
}

impl<E: embedded_io::Error> embedded_io::Error for Error<E> {
    fn kind(&self) -> embedded_io::ErrorKind {
        use embedded_io::ErrorKind;
        match self {
            Error::Io(e) => e.kind(),
            Error::Closed => ErrorKind::BrokenPipe,
            Error::Timeout => ErrorKind::TimedOut,
            Error::Encode(_) => ErrorKind::InvalidInput,
            Error::Parse(_) | Error::Protocol(_) | Error::LineTooLong { .. } => {
                ErrorKind::InvalidData
            }
            Error::ResponseTooLarge { .. } => ErrorKind::OutOfMemory,
            Error::ModemRebooted => ErrorKind::ConnectionReset,
            Error::Rejected(_) => ErrorKind::Other,
        }
    }
}

/// How the modem answered a command whose payload the caller streams itself (see
/// [`asynch::Client::open_stream`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum StreamStart {
    /// The modem prompted (`CONNECT` or `> `): write the payload with
    /// [`asynch::Client::write_payload`], then collect the final result with
    /// [`asynch::Client::finish_stream`].
    Prompt(Prompt),
    /// The final result `OK` came without a prompt. Whether the modem now takes raw bytes is
    /// the command's own contract (`AT+QFOTADL="FILE:<len>"` is one that may work this way);
    /// there is no final result to collect after the payload.
    Ok,
}

/// A command with a different deadline than its default.
#[derive(Clone, Copy, Debug)]
pub struct WithTimeout<'c, C> {
    /// The command.
    pub command: &'c C,
    /// Its deadline, counted from the moment the line is written.
    pub timeout: Duration,
}

impl<C: AtCommand> AtCommand for WithTimeout<'_, C> {
    type Response<'a> = C::Response<'a>;
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        self.command.encode(enc)
    }
    fn timeout(&self) -> Duration {
        self.timeout
    }
    fn response_lines(&self) -> ResponseLines {
        self.command.response_lines()
    }
    fn data(&self) -> DataPhase<'_> {
        self.command.data()
    }
    fn parse<'a>(&self, lines: crate::at::Lines<'a>) -> Result<Self::Response<'a>, ParseError> {
        self.command.parse(lines)
    }
}

/// Extension for overriding a command's deadline: `client.send(&cmd.with_timeout(d))`.
pub trait TimeoutExt: AtCommand + Sized {
    /// This command with deadline `timeout`.
    fn with_timeout(&self, timeout: Duration) -> WithTimeout<'_, Self> {
        WithTimeout {
            command: self,
            timeout,
        }
    }
}

impl<C: AtCommand> TimeoutExt for C {}

/// What the shell must do after an event.
#[derive(Debug)]
pub(crate) enum Step<'e, E> {
    /// Keep polling.
    Continue,
    /// Write the command's payload now (the modem prompted for it).
    SendPayload,
    /// Payload bytes for the caller.
    Data(&'e [u8]),
    /// The exchange is over.
    Done(Result<(), Error<E>>),
}

/// The sans-IO state of one command in flight, shared by both shells.
#[derive(Debug)]
pub(crate) struct Exchange {
    lines: ResponseLines,
    is_urc: fn(&[u8]) -> bool,
    sends: bool,
    receives: bool,
    prompted: bool,
    in_data: bool,
    data_done: bool,
    /// The payload may follow the final result ([`DataLength::Chunked`]).
    final_first: bool,
    /// The final `OK` came before the payload ended.
    final_seen: bool,
    resp_len: usize,
    error: Option<ExchangeError>,
    pub(crate) received: u64,
}

#[derive(Debug, Clone, Copy)]
enum ExchangeError {
    TooLarge(usize),
    LineTooLong(usize),
    Protocol(&'static str),
}

impl Exchange {
    pub(crate) fn new(req: &Request<'_>, config: &Config) -> Self {
        Exchange {
            lines: req.lines,
            is_urc: config.is_urc,
            sends: matches!(req.data, DataPhase::Send(_)),
            receives: matches!(req.data, DataPhase::Receive(_)),
            prompted: false,
            in_data: false,
            data_done: false,
            final_first: matches!(
                req.data,
                DataPhase::Receive(crate::at::DataLength::Chunked { .. })
            ),
            final_seen: false,
            resp_len: 0,
            error: None,
            received: 0,
        }
    }

    /// Length of the stored response lines.
    pub(crate) fn response_len(&self) -> usize {
        self.resp_len
    }

    /// True while the payload is being received.
    pub(crate) fn in_data(&self) -> bool {
        self.in_data
    }

    /// True once the whole payload was received.
    pub(crate) fn data_done(&self) -> bool {
        self.data_done
    }

    /// The exchange's outcome if its final result came before the payload and the payload
    /// is now complete (nothing more will arrive for it).
    pub(crate) fn finished_early<E>(&self) -> Option<Result<(), Error<E>>> {
        (self.final_seen && self.data_done).then(|| self.outcome())
    }

    /// The outcome of an `OK`: the first problem recorded on the way, if any.
    fn outcome<E>(&self) -> Result<(), Error<E>> {
        match self.error {
            None => Ok(()),
            Some(ExchangeError::TooLarge(capacity)) => Err(Error::ResponseTooLarge { capacity }),
            Some(ExchangeError::LineTooLong(discarded)) => Err(Error::LineTooLong { discarded }),
            Some(ExchangeError::Protocol(p)) => Err(Error::Protocol(p)),
        }
    }

    pub(crate) fn on_event<'e, E>(
        &mut self,
        ev: Event<'e>,
        resp: &mut [u8],
        urc: &mut dyn UrcHandler,
    ) -> Step<'e, E> {
        match ev {
            Event::Echo(_) => Step::Continue,
            Event::Line(line) => {
                let is_urc = (self.is_urc)(line);
                if self.lines.claims(line, is_urc) {
                    let end = self.resp_len + line.len() + 1;
                    match resp.get_mut(self.resp_len..end) {
                        Some(dst) if self.error.is_none() => {
                            dst[..line.len()].copy_from_slice(line);
                            dst[line.len()] = b'\n';
                            self.resp_len = end;
                        }
                        Some(_) => {}
                        None => {
                            self.error
                                .get_or_insert(ExchangeError::TooLarge(resp.len()));
                        }
                    }
                } else {
                    urc.on_urc(line);
                }
                Step::Continue
            }
            Event::Final(f) => {
                if self.in_data {
                    // Cannot happen: the engine frames no lines in data mode.
                    return Step::Done(Err(Error::Protocol("final result inside payload")));
                }
                match Rejection::from_final(f) {
                    Some(r) => Step::Done(Err(Error::Rejected(r))),
                    None => {
                        if self.receives && !self.data_done {
                            if self.final_first && !self.final_seen {
                                // SIMCom's reads answer `OK` first, then the pieces.
                                self.final_seen = true;
                                return Step::Continue;
                            }
                            return Step::Done(Err(Error::Protocol(
                                "OK before the expected payload",
                            )));
                        }
                        Step::Done(self.outcome())
                    }
                }
            }
            Event::Prompt(p) => {
                if self.sends && !self.prompted {
                    self.prompted = true;
                    Step::SendPayload
                } else {
                    self.error.get_or_insert(ExchangeError::Protocol(match p {
                        Prompt::Connect => "unexpected CONNECT prompt",
                        Prompt::Send => "unexpected '> ' prompt",
                    }));
                    Step::Continue
                }
            }
            Event::DataStart { .. } => {
                if self.receives && !self.data_done {
                    self.in_data = true;
                } else {
                    self.error
                        .get_or_insert(ExchangeError::Protocol("unexpected payload"));
                }
                Step::Continue
            }
            Event::Data(d) => {
                self.received += d.len() as u64;
                if self.in_data {
                    Step::Data(d)
                } else {
                    Step::Continue
                }
            }
            Event::DataEnd => {
                if self.in_data {
                    self.in_data = false;
                    self.data_done = true;
                    if self.final_seen {
                        // The final result came first: the exchange ends with the payload.
                        return Step::Done(self.outcome());
                    }
                }
                Step::Continue
            }
            Event::Overflow { discarded } => {
                self.error
                    .get_or_insert(ExchangeError::LineTooLong(discarded));
                Step::Continue
            }
        }
    }
}

/// A typed command reduced to what the exchange needs, so that the exchange itself is not
/// generic over the command: its line (with CR) is encoded at the start of the client's
/// response buffer, `line_len` bytes long.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Request<'p> {
    pub(crate) line_len: usize,
    pub(crate) timeout: Duration,
    pub(crate) lines: ResponseLines,
    pub(crate) data: DataPhase<'p>,
}

impl<'p> Request<'p> {
    /// Encodes `cmd` plus CR into `buf` (nothing is written to the transport).
    pub(crate) fn encode<C: AtCommand + ?Sized>(
        cmd: &'p C,
        buf: &mut [u8],
    ) -> Result<Self, EncodeError> {
        let mut enc = Encoder::new(buf);
        cmd.encode(&mut enc)?;
        enc.raw(b"\r")?;
        Ok(Request {
            line_len: enc.len(),
            timeout: cmd.timeout(),
            lines: cmd.response_lines(),
            data: cmd.data(),
        })
    }

    /// The payload bytes of a sending command.
    pub(crate) fn payload(&self) -> &'p [u8] {
        match self.data {
            DataPhase::Send(p) => p,
            _ => &[],
        }
    }

    /// The payload length of a receiving command.
    pub(crate) fn receives(&self) -> Option<crate::at::DataLength> {
        match self.data {
            DataPhase::Receive(len) => Some(len),
            _ => None,
        }
    }
}
