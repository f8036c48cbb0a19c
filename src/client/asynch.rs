//! The async client over `embedded_io_async::{Read, Write}` and an [`AsyncClock`].

use core::future::{Future, poll_fn};
use core::pin::pin;
use core::task::Poll;
use core::time::Duration;

use embedded_io_async::{Read, Write};

use super::{Config, Error, Exchange, Rejection, Request, Step, StreamStart, UrcHandler};
use crate::at::{
    AsyncClock, AtCommand, DataLength, DataPhase, DataState, Engine, Event, Instant, Lines,
};

/// The async twin of [`blocking::Client`](super::blocking::Client): same engine, same
/// bookkeeping, same contract; it waits by racing the transport's `read` against
/// [`AsyncClock::wait_until`].
///
/// Cancel safety: dropping a future returned by this client mid-command leaves the modem
/// possibly still answering; call [`Client::reset`] or send `AT` before the next command.
/// The transport's `read` must itself be cancel-safe (no byte lost when the future is
/// dropped before it completes), as esp-hal's and embassy's UART reads are.
#[derive(Debug)]
pub struct Client<'b, T, C, H> {
    io: T,
    clock: C,
    engine: Engine<'b>,
    resp: &'b mut [u8],
    urc: H,
    config: Config,
}

impl<'b, T, C, H> Client<'b, T, C, H>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    /// A client with the default (Quectel) [`Config`].
    pub fn new(io: T, clock: C, rx: &'b mut [u8], response: &'b mut [u8], urc: H) -> Self {
        Self::with_config(io, clock, rx, response, urc, Config::default())
    }

    /// A client with explicit settings.
    pub fn with_config(
        io: T,
        clock: C,
        rx: &'b mut [u8],
        response: &'b mut [u8],
        urc: H,
        config: Config,
    ) -> Self {
        Client {
            io,
            clock,
            engine: Engine::new(rx),
            resp: response,
            urc,
            config,
        }
    }

    /// Async twin of [`blocking::Client::send`](super::blocking::Client::send).
    pub async fn send<Cmd: AtCommand>(
        &mut self,
        cmd: &Cmd,
    ) -> Result<Cmd::Response<'_>, Error<T::Error>> {
        if matches!(cmd.data(), DataPhase::Receive(_)) {
            return Err(Error::Protocol(
                "command receives a payload: use send_receive",
            ));
        }
        let req = Request::encode(cmd, self.resp)?;
        let len = self.exchange(&req, &mut |_| {}).await?;
        Ok(cmd.parse(Lines::new(&self.resp[..len]))?)
    }

    /// Async twin of [`blocking::Client::send_receive`](super::blocking::Client::send_receive).
    pub async fn send_receive<Cmd: AtCommand>(
        &mut self,
        cmd: &Cmd,
        mut on_data: impl FnMut(&[u8]),
    ) -> Result<(Cmd::Response<'_>, u64), Error<T::Error>> {
        let mut received = 0u64;
        let req = Request::encode(cmd, self.resp)?;
        let len = self
            .exchange(&req, &mut |d| {
                received += d.len() as u64;
                on_data(d)
            })
            .await?;
        Ok((cmd.parse(Lines::new(&self.resp[..len]))?, received))
    }

    /// Writes the encoded line of `req` (at the start of the response buffer), preparing
    /// the engine for its payload.
    async fn start(&mut self, req: &Request<'_>) -> Result<Exchange, Error<T::Error>> {
        self.engine.expect_data(req.receives());
        self.io
            .write_all(&self.resp[..req.line_len])
            .await
            .map_err(Error::Io)?;
        self.io.flush().await.map_err(Error::Io)?;
        Ok(Exchange::new(req, &self.config))
    }

    /// The one wait loop of the client: polls the engine, hands each event to `on_event`
    /// until it answers [`Act::Stop`], and otherwise reads until `deadline` (or the
    /// engine's own trailer deadline, whichever is first). `on_event` may move the
    /// deadline (progress). When the deadline passes, the engine leaves data mode and the
    /// answer is [`Error::Timeout`]; events that were ready are always handled first.
    ///
    /// Not generic over the caller: each client method is a closure over this one loop.
    async fn drive(
        &mut self,
        deadline: &mut Instant,
        on_event: &mut dyn FnMut(Event<'_>, &mut Seen<'_>) -> Act,
    ) -> Result<(), Error<T::Error>> {
        loop {
            let now = self.clock.now();
            while let Some(ev) = self.engine.poll(now) {
                let mut seen = Seen {
                    resp: self.resp,
                    urc: &mut self.urc,
                    deadline,
                    now,
                };
                match on_event(ev, &mut seen) {
                    Act::Continue => {}
                    Act::AbortData => {
                        self.engine.abort_data();
                    }
                    Act::Stop => return Ok(()),
                }
            }
            if now >= *deadline {
                self.engine.expect_data(None);
                self.engine.abort_data();
                return Err(Error::Timeout);
            }
            let wake = self
                .engine
                .next_deadline()
                .map_or(*deadline, |d| d.min(*deadline));
            wait_bytes(&mut self.io, &mut self.engine, &mut self.clock, wake).await?;
        }
    }

    /// Follows a command in flight ([`Follow`]) through [`Client::drive`] until it stops;
    /// returns what stopped it.
    async fn follow(
        &mut self,
        f: &mut Follow<'_, T::Error>,
        deadline: &mut Instant,
    ) -> Result<Followed, Error<T::Error>> {
        self.drive(deadline, &mut |ev, seen| f.on(ev, seen)).await?;
        match f.outcome.take() {
            Some(Ok(stop)) => Ok(stop),
            Some(Err(e)) => {
                self.engine.expect_data(None);
                Err(e)
            }
            None => Err(Error::Protocol("exchange stopped without an outcome")),
        }
    }

    async fn exchange(
        &mut self,
        req: &Request<'_>,
        on_data: &mut dyn FnMut(&[u8]),
    ) -> Result<usize, Error<T::Error>> {
        let mut ex = self.start(req).await?;
        let mut deadline = self.clock.now() + req.timeout;
        let mut f = Follow::new(&mut ex, req.timeout, false, on_data);
        loop {
            match self.follow(&mut f, &mut deadline).await? {
                Followed::Prompted => {
                    self.io.write_all(req.payload()).await.map_err(Error::Io)?;
                    self.io.flush().await.map_err(Error::Io)?;
                    deadline = self.clock.now() + req.timeout;
                }
                Followed::Done | Followed::InData => {
                    self.engine.expect_data(None);
                    return Ok(f.ex.response_len());
                }
            }
        }
    }

    /// Async twin of [`blocking::Client::wait_for`](super::blocking::Client::wait_for).
    pub async fn wait_for<R>(
        &mut self,
        timeout: Duration,
        mut pick: impl FnMut(&[u8]) -> Option<R>,
    ) -> Result<R, Error<T::Error>> {
        let mut deadline = self.clock.now() + timeout;
        let mut found = None;
        self.drive(&mut deadline, &mut |ev, seen| {
            if let Event::Line(line) = ev {
                match pick(line) {
                    Some(r) => {
                        found = Some(r);
                        return Act::Stop;
                    }
                    None => seen.urc.on_urc(line),
                }
            }
            Act::Continue
        })
        .await?;
        found.ok_or(Error::Protocol("wait ended without a line"))
    }

    /// Sends a command whose payload the caller streams itself, and waits until the modem
    /// prompts for it (`CONNECT`, `> `) or gives its final result: for payloads too large to
    /// hold in memory (a module firmware package sent with `AT+QFOTADL="FILE:<len>"`, a
    /// large `AT+QFUPL` upload).
    ///
    /// Only the command line is written. After [`StreamStart::Prompt`], write the payload
    /// with [`Client::write_payload`] (and [`Client::poll_lines`] between writes), then call
    /// [`Client::finish_stream`] for the final result. [`StreamStart::Ok`] means the modem
    /// answered `OK` without a prompt; what follows is the command's own contract.
    ///
    /// Lines that arrive meanwhile are offered to `on_line` first (return `true` to take
    /// one), the rest go to the URC handler; so use it for commands without information
    /// lines. The deadline is `cmd.timeout()` from the moment the line was written; a
    /// refusal is [`Error::Rejected`]. A command that carries its payload
    /// ([`DataPhase::Send`]) or receives one is refused with [`Error::Protocol`] before
    /// anything is written.
    pub async fn open_stream<Cmd: AtCommand>(
        &mut self,
        cmd: &Cmd,
        on_line: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<StreamStart, Error<T::Error>> {
        if !matches!(cmd.data(), DataPhase::None) {
            return Err(Error::Protocol(
                "open_stream takes a command without its own data phase",
            ));
        }
        let req = Request::encode(cmd, self.resp)?;
        self.engine.expect_data(None);
        self.io
            .write_all(&self.resp[..req.line_len])
            .await
            .map_err(Error::Io)?;
        self.io.flush().await.map_err(Error::Io)?;
        let deadline = self.clock.now() + req.timeout;
        self.wait_answer(deadline, true, on_line).await
    }

    /// Writes payload bytes straight to the transport: the data phase after
    /// [`Client::open_stream`] (or any stream the modem takes raw).
    ///
    /// Returns how many bytes the transport took: all of `data`, unless `deadline` (by the
    /// client's clock) passed first — a short count is how a stall shows (flow control
    /// holding the host for too long); it never returns [`Error::Timeout`]. When the
    /// transport takes `data` in several writes, bytes that have already arrived are read
    /// into the receive buffer between them, without waiting, so that a long stream cannot
    /// overflow the transport's receive side; they are not processed: call
    /// [`Client::poll_lines`] between payload writes (it reads too).
    ///
    /// Cancel safety: the transport's `write` is raced against the deadline; a transport
    /// whose `write` is not cancel-safe may have sent part of a write the deadline
    /// interrupted, so treat a short count as the end of the data phase. A blocking
    /// transport (the blocking client) cannot be interrupted: the deadline is checked
    /// between its writes.
    pub async fn write_payload(
        &mut self,
        data: &[u8],
        deadline: Instant,
    ) -> Result<usize, Error<T::Error>> {
        let Client {
            io, clock, engine, ..
        } = self;
        let mut done = 0;
        while done < data.len() {
            if clock.now() >= deadline {
                break;
            }
            match select(io.write(&data[done..]), clock.wait_until(deadline)).await {
                Either::Left(Ok(0)) => return Err(Error::Closed),
                Either::Left(Ok(n)) => done += n.min(data.len() - done),
                Either::Left(Err(e)) => return Err(Error::Io(e)),
                Either::Right(()) => break,
            }
            if done < data.len() {
                read_now(io, engine).await?;
            }
        }
        Ok(done)
    }

    /// Processes the lines that have already arrived, plus whatever one read returns at
    /// once, without waiting: each line is offered to `on_line` (return `true` to take it),
    /// the others go to the URC handler. For use between [`Client::write_payload`] calls.
    ///
    /// A final result here means the modem ended the data phase early: a refusal is
    /// [`Error::Rejected`], an `OK` is [`Error::Protocol`]. So do not call it after the
    /// last payload byte of a prompted stream (the `OK` then belongs to
    /// [`Client::finish_stream`]).
    pub async fn poll_lines(
        &mut self,
        on_line: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<(), Error<T::Error>> {
        let Client {
            io,
            clock,
            engine,
            urc,
            ..
        } = self;
        let mut read = false;
        loop {
            let now = clock.now();
            while let Some(ev) = engine.poll(now) {
                match ev {
                    Event::Line(line) if !on_line(line) => urc.on_urc(line),
                    Event::Final(f) => {
                        return Err(match Rejection::from_final(f) {
                            Some(r) => Error::Rejected(r),
                            None => Error::Protocol("final result inside a streamed payload"),
                        });
                    }
                    Event::Overflow { discarded } => return Err(Error::LineTooLong { discarded }),
                    _ => {}
                }
            }
            if read {
                return Ok(());
            }
            read = true;
            read_now(io, engine).await?;
        }
    }

    /// Waits for the final result that ends a prompted stream ([`StreamStart::Prompt`])
    /// after the last payload byte, for up to `timeout`. Lines are offered to `on_line`
    /// first, as in [`Client::open_stream`].
    pub async fn finish_stream(
        &mut self,
        timeout: Duration,
        on_line: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<(), Error<T::Error>> {
        let deadline = self.clock.now() + timeout;
        self.wait_answer(deadline, false, on_line).await.map(|_| ())
    }

    /// Waits until `deadline` for a final result (or, with `prompt`, a prompt).
    async fn wait_answer(
        &mut self,
        mut deadline: Instant,
        prompt: bool,
        on_line: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<StreamStart, Error<T::Error>> {
        let mut error: Option<Error<T::Error>> = None;
        let mut answer: Option<Result<StreamStart, Error<T::Error>>> = None;
        self.drive(&mut deadline, &mut |ev, seen| {
            match ev {
                Event::Line(line) if !on_line(line) => seen.urc.on_urc(line),
                Event::Final(f) => {
                    answer = Some(match (Rejection::from_final(f), error.take()) {
                        (Some(r), _) => Err(Error::Rejected(r)),
                        (None, Some(e)) => Err(e),
                        (None, None) => Ok(StreamStart::Ok),
                    });
                    return Act::Stop;
                }
                Event::Prompt(p) if prompt && error.is_none() => {
                    answer = Some(Ok(StreamStart::Prompt(p)));
                    return Act::Stop;
                }
                Event::Prompt(_) => {
                    error.get_or_insert(Error::Protocol("unexpected prompt"));
                }
                Event::DataStart { .. } => {
                    error.get_or_insert(Error::Protocol("unexpected payload"));
                    return Act::AbortData;
                }
                Event::Overflow { discarded } => {
                    error.get_or_insert(Error::LineTooLong { discarded });
                }
                Event::Echo(_) | Event::Line(_) | Event::Data(_) | Event::DataEnd => {}
            }
            Act::Continue
        })
        .await?;
        answer.unwrap_or(Err(Error::Protocol("wait ended without an answer")))
    }

    /// Sends a command whose answer carries a payload after `CONNECT` and, once the payload
    /// has started, returns a zero-copy reader over it ([`DataReader`]).
    ///
    /// A refusal before the payload (`+CME ERROR: 402` at the end of a file, `+CME ERROR:
    /// 705` for "nothing to read") is returned here as [`Error::Rejected`]. The deadline
    /// `cmd.timeout()` covers the wait for `CONNECT`, then restarts each time the payload
    /// passes another [`PROGRESS_BYTES`] boundary.
    pub async fn read_data<Cmd: AtCommand>(
        &mut self,
        cmd: &Cmd,
    ) -> Result<DataReader<'_, 'b, T, C, H>, Error<T::Error>> {
        if !matches!(cmd.data(), DataPhase::Receive(_)) {
            return Err(Error::Protocol("command receives no payload: use send"));
        }
        let req = Request::encode(cmd, self.resp)?;
        let mut ex = self.start(&req).await?;
        let timeout = req.timeout;
        let mut deadline = self.clock.now() + timeout;
        let mut ignore = |_: &[u8]| {};
        let mut f = Follow::new(&mut ex, timeout, true, &mut ignore);
        if let Err(e) = self.follow(&mut f, &mut deadline).await {
            self.engine.expect_data(None);
            return Err(e);
        }
        let announced = match (self.engine.data_state(), cmd.data()) {
            // A piece's length is not the payload's.
            (_, DataPhase::Receive(DataLength::Chunked { .. })) => None,
            (DataState::Remaining(n), _) => Some(n),
            (DataState::Ended, _) => Some(0),
            (DataState::UntilTrailer | DataState::Idle, _) => None,
        };
        Ok(DataReader {
            client: self,
            ex,
            timeout,
            deadline: Instant::ZERO,
            announced,
            position: 0,
            last_data: Instant::ZERO,
        }
        .armed())
    }

    /// Processes what has already arrived, plus whatever one read returns at once, handing
    /// URCs to the handler; never waits.
    pub async fn poll_urcs(&mut self) -> Result<(), Error<T::Error>> {
        let Client {
            io,
            clock,
            engine,
            urc,
            ..
        } = self;
        loop {
            let now = clock.now();
            while let Some(ev) = engine.poll(now) {
                if let Event::Line(line) = ev {
                    urc.on_urc(line);
                }
            }
            let spare = engine.rx_spare();
            if spare.is_empty() {
                return Ok(());
            }
            match select(io.read(spare), core::future::ready(())).await {
                Either::Left(Ok(0)) => return Err(Error::Closed),
                Either::Left(Ok(n)) => engine.rx_commit(n),
                Either::Left(Err(e)) => return Err(Error::Io(e)),
                Either::Right(()) => return Ok(()),
            }
        }
    }

    /// The engine, for inspection.
    pub fn engine(&mut self) -> &mut Engine<'b> {
        &mut self.engine
    }

    /// Forgets buffered bytes (after a modem reboot or port re-open).
    pub fn reset(&mut self) {
        self.engine.reset();
    }

    /// The clock.
    pub fn clock(&mut self) -> &mut C {
        &mut self.clock
    }

    /// The URC handler.
    pub fn urc_handler(&mut self) -> &mut H {
        &mut self.urc
    }

    /// The transport.
    pub fn io(&mut self) -> &mut T {
        &mut self.io
    }

    /// The transport, clock, engine and URC handler, for code that drives a payload itself.
    pub fn parts(&mut self) -> (&mut T, &mut C, &mut Engine<'b>, &mut H) {
        (
            &mut self.io,
            &mut self.clock,
            &mut self.engine,
            &mut self.urc,
        )
    }

    /// Gives back the transport, the clock and the URC handler.
    pub fn into_parts(self) -> (T, C, H) {
        (self.io, self.clock, self.urc)
    }
}

enum Either<A, B> {
    Left(A),
    Right(B),
}

async fn select<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let mut a = pin!(a);
    let mut b = pin!(b);
    poll_fn(|cx| {
        if let Poll::Ready(x) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(x));
        }
        if let Poll::Ready(y) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(y));
        }
        Poll::Pending
    })
    .await
}

/// What the one wait loop ([`Client::drive`]) does after an event.
enum Act {
    /// Keep polling and waiting.
    Continue,
    /// Leave the engine's data mode (an unexpected payload), then keep going.
    AbortData,
    /// The caller has its answer.
    Stop,
}

/// What an event handler of [`Client::drive`] may touch besides the event.
struct Seen<'s> {
    resp: &'s mut [u8],
    urc: &'s mut dyn UrcHandler,
    deadline: &'s mut Instant,
    now: Instant,
}

/// What stopped a [`Follow`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Followed {
    /// The modem prompted for the command's payload.
    Prompted,
    /// The payload started (or ended) and the follower was asked to stop there.
    InData,
    /// The final result, and it was a success.
    Done,
}

/// A command in flight followed event by event: the sans-IO bookkeeping of [`Exchange`]
/// plus progress and what the caller wants to stop at. Shared by `send`, `read_data` and
/// `DataReader::finish`.
struct Follow<'f, E> {
    ex: &'f mut Exchange,
    timeout: Duration,
    until_data: bool,
    got: u64,
    on_data: &'f mut dyn FnMut(&[u8]),
    outcome: Option<Result<Followed, Error<E>>>,
}

impl<'f, E> Follow<'f, E> {
    fn new(
        ex: &'f mut Exchange,
        timeout: Duration,
        until_data: bool,
        on_data: &'f mut dyn FnMut(&[u8]),
    ) -> Self {
        Follow {
            ex,
            timeout,
            until_data,
            got: 0,
            on_data,
            outcome: None,
        }
    }

    fn stop(&mut self, outcome: Result<Followed, Error<E>>) -> Act {
        self.outcome = Some(outcome);
        Act::Stop
    }

    fn on(&mut self, ev: Event<'_>, seen: &mut Seen<'_>) -> Act {
        let until_data = self.until_data;
        match self.ex.on_event::<E>(ev, seen.resp, seen.urc) {
            Step::Continue => {}
            Step::SendPayload if !until_data => return self.stop(Ok(Followed::Prompted)),
            Step::Data(d) if !until_data => {
                (self.on_data)(d);
                let old = self.got;
                self.got += d.len() as u64;
                if progressed(old, self.got) {
                    *seen.deadline = seen.now + self.timeout;
                }
            }
            Step::Done(Err(e)) => return self.stop(Err(e)),
            Step::Done(Ok(())) if !until_data => return self.stop(Ok(Followed::Done)),
            Step::Done(Ok(())) | Step::SendPayload | Step::Data(_) => {
                return self.stop(Err(Error::Protocol("no payload where one was expected")));
            }
        }
        if until_data && (self.ex.in_data() || self.ex.data_done()) {
            return self.stop(Ok(Followed::InData));
        }
        Act::Continue
    }
}

/// Reads what one transport read returns at once into the engine, without waiting (nothing
/// when no byte is ready or the receive buffer is full).
async fn read_now<T: Read>(io: &mut T, engine: &mut Engine<'_>) -> Result<(), Error<T::Error>> {
    let spare = engine.rx_spare();
    if spare.is_empty() {
        return Ok(());
    }
    match select(io.read(spare), core::future::ready(())).await {
        Either::Left(Ok(0)) => Err(Error::Closed),
        Either::Left(Ok(n)) => {
            engine.rx_commit(n);
            Ok(())
        }
        Either::Left(Err(e)) => Err(Error::Io(e)),
        Either::Right(()) => Ok(()),
    }
}

/// Reads once into the engine, or returns when `until` passes first.
pub(crate) async fn wait_bytes<T: Read, C: AsyncClock>(
    io: &mut T,
    engine: &mut Engine<'_>,
    clock: &mut C,
    until: Instant,
) -> Result<(), Error<T::Error>> {
    if clock.now() >= until {
        return Ok(());
    }
    let spare = engine.rx_spare();
    if spare.is_empty() {
        return Ok(());
    }
    let outcome = select(io.read(spare), clock.wait_until(until)).await;
    match outcome {
        Either::Left(Ok(0)) => Err(Error::Closed),
        Either::Left(Ok(n)) => {
            engine.rx_commit(n);
            Ok(())
        }
        Either::Left(Err(e)) => Err(Error::Io(e)),
        Either::Right(()) => Ok(()),
    }
}

/// Payload bytes that must arrive within each timeout of a [`DataReader`].
pub const PROGRESS_BYTES: u64 = 512;

/// A silence in a payload after which a [`DataReader`] checks whether the bytes that follow
/// are a modem's boot URC (`RDY`) rather than payload. A module takes seconds to restart
/// (an EG800K 7.8 to 30.2 s to `RDY`, quectel-at.md §2.1), so its boot URCs always follow a
/// silence at least this long.
pub const REBOOT_GAP: Duration = Duration::from_secs(1);

/// How long a [`DataReader`] holds back bytes after a [`REBOOT_GAP`] that could still be
/// the start of `RDY` (a lone CR LF) before it hands them out as payload.
pub const REBOOT_HOLD: Duration = Duration::from_millis(200);

/// Whether bytes that follow a silence are a modem's boot URC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Boot {
    /// Not a boot URC: payload.
    No,
    /// `RDY` and a line end, or `*ATREADY:`, after optional CR, LF and power-on noise
    /// (NUL, 0xFF).
    Yes,
    /// Too few bytes to tell.
    Maybe,
}

fn boot_urc(bytes: &[u8]) -> Boot {
    // Quectel and most SIMCom modules say `RDY`; A76xx / SIM767x say `*ATREADY: 1`
    // (simcom-at.md §5.1).
    const MARKERS: [&[u8]; 2] = [b"RDY", b"*ATREADY:"];
    let start = bytes
        .iter()
        .position(|b| !matches!(b, b'\r' | b'\n' | 0x00 | 0xff))
        .unwrap_or(bytes.len());
    let rest = &bytes[start..];
    let mut verdict = Boot::No;
    for m in MARKERS {
        let n = rest.len().min(m.len());
        if rest[..n] != m[..n] {
            continue;
        }
        if rest.len() <= m.len() {
            verdict = Boot::Maybe;
        } else if m.ends_with(b":") || matches!(rest[m.len()], b'\r' | b'\n') {
            return Boot::Yes;
        }
    }
    verdict
}

/// Whether a payload that grew from `old` to `new` bytes passed a [`PROGRESS_BYTES`]
/// boundary (its timeout restarts then).
fn progressed(old: u64, new: u64) -> bool {
    old / PROGRESS_BYTES != new / PROGRESS_BYTES
}

/// A zero-copy reader over a payload that follows `CONNECT`.
///
/// [`fill_buf`](embedded_io_async::BufRead::fill_buf) lends payload bytes straight out of the
/// engine's receive buffer; [`consume`](embedded_io_async::BufRead::consume) releases them.
/// An empty slice means the payload is complete (the announced length was reached, or the
/// trailer of an unknown-length payload was proven). URCs that arrive meanwhile (never
/// inside the payload: the engine frames no lines in data mode) reach the URC handler.
///
/// Every wait is bounded: the command's timeout restarts each time the payload passes
/// another [`PROGRESS_BYTES`] boundary, so it limits the time per 512 payload bytes. A real
/// transfer is far faster than 512 bytes per timeout; a trickle of stray lines (the URCs of
/// a modem that rebooted mid-payload, counted as payload) is slower and cannot keep a dead
/// transfer alive. On [`Error::Timeout`] the engine leaves data mode; the modem may still be
/// sending, so reset the client (and stop the HTTP session) before the next command.
///
/// A modem that restarts mid-payload is recognised as soon as its `RDY` line is in: after a
/// silence of [`REBOOT_GAP`] (1 s) or more, bytes that are, or could still become, `RDY` and
/// a line end (after optional CR, LF and power-on noise) are held back and never handed
/// out; a complete `RDY` ends the payload with [`Error::ModemRebooted`] (the engine leaves
/// data mode, so `RDY` and the boot URCs after it reach the URC handler as lines). Bytes
/// held back are released as payload when the next byte rules `RDY` out, or after
/// [`REBOOT_HOLD`]. The limit: the gap is measured between this reader's calls, so a
/// caller that stops reading for longer than the modem takes to restart could find payload
/// and `RDY` in the buffer together, with no gap between them to see; payload that
/// itself reads `\r\nRDY\r\n` right after a 1 s network stall would be taken for a reboot
/// (the retry resumes at the same byte).
///
/// Call [`DataReader::finish`] after the payload to collect the command's final result.
/// Dropping the reader before that leaves the modem's answer to arrive as unclaimed lines.
/// Cancel safety: `fill_buf` may be dropped and called again without losing bytes.
#[derive(Debug)]
pub struct DataReader<'c, 'b, T, C, H> {
    client: &'c mut Client<'b, T, C, H>,
    ex: Exchange,
    timeout: Duration,
    deadline: Instant,
    announced: Option<u32>,
    position: u64,
    /// When payload bytes were last handed out (or the reader started).
    last_data: Instant,
}

impl<'c, 'b, T, C, H> DataReader<'c, 'b, T, C, H>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    fn armed(mut self) -> Self {
        let now = self.client.clock.now();
        self.deadline = now + self.timeout;
        self.last_data = now;
        self
    }

    /// The payload length announced by `CONNECT <n>` or given by the command (`None` for a
    /// payload that ends at the modem's trailer).
    pub fn announced(&self) -> Option<u32> {
        self.announced
    }

    /// Payload bytes consumed so far.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Waits for payload bytes; returns how many are available (0 at the payload's end).
    pub(crate) async fn fill(&mut self) -> Result<usize, Error<T::Error>> {
        let mut hold_until: Option<Instant> = None;
        loop {
            if self.ex.data_done() {
                return Ok(0);
            }
            let Client {
                io,
                clock,
                engine,
                resp,
                urc,
                ..
            } = &mut *self.client;
            let avail = engine.data_available().len();
            if avail > 0 {
                let now = clock.now();
                if now.saturating_duration_since(self.last_data) >= REBOOT_GAP {
                    match boot_urc(engine.buffered_bytes()) {
                        Boot::Yes => {
                            engine.expect_data(None);
                            engine.abort_data();
                            return Err(Error::ModemRebooted);
                        }
                        Boot::Maybe if hold_until.is_none_or(|t| now < t) => {
                            let until = *hold_until.get_or_insert(now + REBOOT_HOLD);
                            let wake = until.min(self.deadline);
                            if now >= self.deadline {
                                engine.expect_data(None);
                                engine.abort_data();
                                return Err(Error::Timeout);
                            }
                            wait_bytes(io, engine, clock, wake).await?;
                            continue;
                        }
                        Boot::No | Boot::Maybe => {}
                    }
                }
                self.last_data = now;
                return Ok(avail);
            }
            let now = clock.now();
            match engine.poll(now) {
                Some(ev) => match self.ex.on_event::<T::Error>(ev, resp, urc) {
                    Step::Continue => {}
                    // The payload ended after an early final result: complete.
                    Step::Done(Ok(())) if self.ex.data_done() => return Ok(0),
                    Step::Done(Err(e)) => return Err(e),
                    Step::Done(Ok(())) | Step::SendPayload | Step::Data(_) => {
                        return Err(Error::Protocol("payload framing lost"));
                    }
                },
                None => {
                    if now >= self.deadline {
                        engine.expect_data(None);
                        engine.abort_data();
                        return Err(Error::Timeout);
                    }
                    let wake = engine
                        .next_deadline()
                        .map_or(self.deadline, |d| d.min(self.deadline));
                    wait_bytes(io, engine, clock, wake).await?;
                }
            }
        }
    }

    /// Like [`DataReader::finish`], and also parses the command's information lines (for
    /// example a `+QFDWL: <size>,<checksum>` line after the payload, or a `+QHTTPREAD:`
    /// result that arrived before `OK`). `cmd` must be the command that started the reader.
    pub async fn finish_response<Cmd: AtCommand>(
        mut self,
        cmd: &Cmd,
    ) -> Result<(Cmd::Response<'c>, u64), Error<T::Error>> {
        let (len, n) = self.finish_inner().await?;
        let client = self.client;
        Ok((cmd.parse(Lines::new(&client.resp[..len]))?, n))
    }

    /// Like [`DataReader::finish_response`] without giving the reader up (so nothing is
    /// moved into the future): parses the command's information lines into an owned value
    /// with `keep`. The reader is spent afterwards; [`client`](Self::client) still reaches
    /// the client.
    pub(crate) async fn finish_in_place<Cmd: AtCommand, R>(
        &mut self,
        cmd: &Cmd,
        keep: impl FnOnce(Cmd::Response<'_>) -> R,
    ) -> Result<(R, u64), Error<T::Error>> {
        let (len, n) = self.finish_inner().await?;
        Ok((keep(cmd.parse(Lines::new(&self.client.resp[..len]))?), n))
    }

    /// The client this reader reads from.
    pub(crate) fn client(&mut self) -> &mut Client<'b, T, C, H> {
        self.client
    }

    /// The payload bytes available now (after [`fill`](Self::fill)).
    pub(crate) fn available(&mut self) -> &[u8] {
        self.client.engine.data_available()
    }

    /// Gives the client back (after [`finish_in_place`](Self::finish_in_place), or to drop
    /// a reader whose payload the caller abandons: then reset the client).
    pub(crate) fn into_client(self) -> &'c mut Client<'b, T, C, H> {
        self.client
    }

    /// [`BufRead::consume`](embedded_io_async::BufRead::consume) that first shows `seen` the
    /// bytes it consumes (from the same look at the buffer, so the payload path pays nothing
    /// more).
    pub(crate) fn consume_seen(&mut self, amt: usize, seen: impl FnOnce(&[u8])) {
        let avail = self.client.engine.data_available();
        let taken = amt.min(avail.len());
        seen(&avail[..taken]);
        self.client.engine.consume_data(amt);
        let old = self.position;
        self.position += taken as u64;
        if progressed(old, self.position) {
            self.deadline = self.client.clock.now() + self.timeout;
        }
    }

    /// Waits for the command's final result after the payload, discarding payload bytes not
    /// consumed yet. Returns the payload length.
    pub async fn finish(mut self) -> Result<u64, Error<T::Error>> {
        self.finish_inner().await.map(|(_, n)| n)
    }

    async fn finish_inner(&mut self) -> Result<(usize, u64), Error<T::Error>> {
        loop {
            let n = self.fill().await?;
            if n == 0 {
                break;
            }
            embedded_io_async::BufRead::consume(self, n);
        }
        if let Some(outcome) = self.ex.finished_early() {
            // The final result came before the payload (SIMCom's reads).
            outcome?;
            self.client.engine.expect_data(None);
            return Ok((self.ex.response_len(), self.position));
        }
        let mut deadline = self.client.clock.now() + self.timeout;
        let mut ignore = |_: &[u8]| {};
        let mut f = Follow::new(&mut self.ex, self.timeout, false, &mut ignore);
        if self.client.follow(&mut f, &mut deadline).await? == Followed::Prompted {
            return Err(Error::Protocol("prompt after payload"));
        }
        self.client.engine.expect_data(None);
        Ok((self.ex.response_len(), self.position))
    }
}

impl<T: Read + Write, C, H> embedded_io_async::ErrorType for DataReader<'_, '_, T, C, H> {
    type Error = Error<T::Error>;
}

impl<T, C, H> embedded_io_async::BufRead for DataReader<'_, '_, T, C, H>
where
    T: Read + Write,
    T::Error: embedded_io_async::Error,
    C: AsyncClock,
    H: UrcHandler,
{
    async fn fill_buf(&mut self) -> Result<&[u8], Self::Error> {
        self.fill().await?;
        Ok(self.client.engine.data_available())
    }

    fn consume(&mut self, amt: usize) {
        self.consume_seen(amt, |_| {});
    }
}

impl<T, C, H> embedded_io_async::Read for DataReader<'_, '_, T, C, H>
where
    T: Read + Write,
    T::Error: embedded_io_async::Error,
    C: AsyncClock,
    H: UrcHandler,
{
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let n = self.fill().await?;
        let n = n.min(buf.len());
        buf[..n].copy_from_slice(&self.client.engine.data_available()[..n]);
        embedded_io_async::BufRead::consume(self, n);
        Ok(n)
    }
}
