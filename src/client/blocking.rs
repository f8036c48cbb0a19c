//! The blocking client: the async client driven to completion on the spot.
//!
//! There is one implementation of the client logic, in [`asynch`]. This
//! module adapts a blocking transport (`embedded_io::{Read, Write, ReadReady}`) and a plain
//! [`Clock`] to the async traits — a read that is not ready yet, or a deadline not reached
//! yet, is simply "pending" — and polls the async futures in a loop until they finish. The
//! two APIs therefore cannot drift apart: they are the same code.

use core::future::{Future, poll_fn};
use core::pin::pin;
use core::task::{Context, Poll, Waker};
use core::time::Duration;

use embedded_io::{Read, ReadReady, Write};

use super::{Config, Error, StreamStart, UrcHandler, asynch};
use crate::at::{AsyncClock, AtCommand, Clock, Engine, Instant};

/// Runs `fut` to completion on the spot by polling it in a loop, with a waker that does
/// nothing.
///
/// This is how the blocking client runs the async one: through [`BlockingIo`] and
/// [`SpinClock`] a future is only `Pending` while no byte is ready or a deadline has not
/// passed, so spinning is exactly what a blocking loop on `read_ready()` and the clock
/// would do. Use it for such futures (the async client over those adapters, an in-memory
/// flash, a simulator that advances virtual time when polled), for example to call an
/// async-only function from blocking code. It never sleeps and never returns while the
/// future is pending: a future that waits for a real waker (an interrupt-driven UART, an
/// embassy timer) needs an executor instead.
///
/// ```
/// let answer = cellular_ota::block_on(async { 40 + 2 });
/// assert_eq!(answer, 42);
/// ```
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// A blocking transport seen through the async traits: `read` is pending until
/// `read_ready()` says bytes are there, then reads without blocking.
#[derive(Debug)]
pub struct BlockingIo<T>(pub T);

impl<T: embedded_io::ErrorType> embedded_io::ErrorType for BlockingIo<T> {
    type Error = T::Error;
}

impl<T: Read + ReadReady> embedded_io_async::Read for BlockingIo<T> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        poll_fn(|_| match self.0.read_ready() {
            Ok(true) => Poll::Ready(self.0.read(buf)),
            Ok(false) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        })
        .await
    }
}

impl<T: Write> embedded_io_async::Write for BlockingIo<T> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.0.write(buf)
    }
    async fn flush(&mut self) -> Result<(), Self::Error> {
        self.0.flush()
    }
}

/// A plain clock seen as an [`AsyncClock`]: `wait_until` is pending until the deadline.
#[derive(Debug)]
pub struct SpinClock<C>(pub C);

impl<C: Clock> Clock for SpinClock<C> {
    fn now(&self) -> Instant {
        self.0.now()
    }
    fn relax(&self) {
        self.0.relax()
    }
}

impl<C: Clock> AsyncClock for SpinClock<C> {
    async fn wait_until(&mut self, deadline: Instant) {
        poll_fn(|_| {
            if self.0.now() >= deadline {
                Poll::Ready(())
            } else {
                // Nothing else was ready either (a read is polled first): let the caller's
                // clock rest for a moment.
                self.0.relax();
                Poll::Pending
            }
        })
        .await
    }
}

/// A blocking AT client: one command at a time, every wait bounded by a deadline from the
/// caller's [`Clock`].
///
/// The transport must implement [`ReadReady`] so that the client can check for bytes
/// without blocking past a deadline: it spins on `read_ready()` and `clock.now()` while
/// waiting. URCs that arrive while a command runs go to the [`UrcHandler`] in order.
///
/// Buffers: `rx` is the engine's receive buffer (bounds the longest line and the payload
/// slices lent out; 1–4 KiB for downloads), `response` holds the encoded command line and
/// then the answer's information lines (256–512 bytes covers every command in this crate).
///
/// Every method behaves exactly as its [`asynch::Client`] namesake.
#[derive(Debug)]
pub struct Client<'b, T, C, H> {
    inner: asynch::Client<'b, BlockingIo<T>, SpinClock<C>, H>,
}

impl<'b, T, C, H> Client<'b, T, C, H>
where
    T: Read + Write + ReadReady,
    C: Clock,
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
            inner: asynch::Client::with_config(
                BlockingIo(io),
                SpinClock(clock),
                rx,
                response,
                urc,
                config,
            ),
        }
    }

    /// Sends `cmd` and waits for its final result, until `cmd.timeout()` after the line was
    /// written. A command with a send phase writes its payload when the modem prompts for it.
    ///
    /// Returns the parsed answer, or [`Error::Rejected`] with the modem's code. On
    /// [`Error::Timeout`] the modem may still answer later; those lines then reach the URC
    /// handler or the next command's unclaimed lines.
    pub fn send<Cmd: AtCommand>(
        &mut self,
        cmd: &Cmd,
    ) -> Result<Cmd::Response<'_>, Error<T::Error>> {
        block_on(self.inner.send(cmd))
    }

    /// Sends a command whose answer carries a payload after `CONNECT` (`AT+QFREAD`,
    /// `AT+QHTTPREAD`, `AT+QFDWL`) and hands every payload slice to `on_data`, straight out
    /// of the receive buffer (no copy). Returns the parsed answer and the payload length.
    ///
    /// The deadline `cmd.timeout()` restarts each time the payload passes another
    /// [`PROGRESS_BYTES`](asynch::PROGRESS_BYTES) boundary (512 bytes), so it bounds the time
    /// per 512 bytes rather than the whole transfer, and a trickle of stray lines cannot keep
    /// a dead transfer alive.
    pub fn send_receive<Cmd: AtCommand>(
        &mut self,
        cmd: &Cmd,
        on_data: impl FnMut(&[u8]),
    ) -> Result<(Cmd::Response<'_>, u64), Error<T::Error>> {
        block_on(self.inner.send_receive(cmd, on_data))
    }

    /// Sends a payload-receiving command and returns a zero-copy reader over the payload
    /// once it has started. See [`asynch::Client::read_data`].
    pub fn read_data<Cmd: AtCommand>(
        &mut self,
        cmd: &Cmd,
    ) -> Result<DataReader<'_, 'b, T, C, H>, Error<T::Error>> {
        let inner = block_on(self.inner.read_data(cmd))?;
        Ok(DataReader { inner })
    }

    /// Waits up to `timeout` for a line that `pick` accepts (returns `Some`), handing every
    /// other line to the URC handler. Use it for results that arrive as URCs after `OK`
    /// (`+QHTTPGET:`, `+QIND: "FOTA",...`).
    pub fn wait_for<R>(
        &mut self,
        timeout: Duration,
        pick: impl FnMut(&[u8]) -> Option<R>,
    ) -> Result<R, Error<T::Error>> {
        block_on(self.inner.wait_for(timeout, pick))
    }

    /// Sends a command whose payload the caller streams itself and waits for its prompt or
    /// final result. See [`asynch::Client::open_stream`].
    pub fn open_stream<Cmd: AtCommand>(
        &mut self,
        cmd: &Cmd,
        on_line: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<StreamStart, Error<T::Error>> {
        block_on(self.inner.open_stream(cmd, on_line))
    }

    /// Writes payload bytes straight to the transport until `deadline`; returns how many the
    /// transport took. See [`asynch::Client::write_payload`]: a blocking write that flow
    /// control holds is not interrupted, the deadline is checked between writes.
    pub fn write_payload(
        &mut self,
        data: &[u8],
        deadline: Instant,
    ) -> Result<usize, Error<T::Error>> {
        block_on(self.inner.write_payload(data, deadline))
    }

    /// Processes the lines that have already arrived without waiting. See
    /// [`asynch::Client::poll_lines`].
    pub fn poll_lines(
        &mut self,
        on_line: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<(), Error<T::Error>> {
        block_on(self.inner.poll_lines(on_line))
    }

    /// Waits for the final result after a prompted stream. See
    /// [`asynch::Client::finish_stream`].
    pub fn finish_stream(
        &mut self,
        timeout: Duration,
        on_line: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<(), Error<T::Error>> {
        block_on(self.inner.finish_stream(timeout, on_line))
    }

    /// Processes what has already arrived without waiting, handing URCs to the handler.
    pub fn poll_urcs(&mut self) -> Result<(), Error<T::Error>> {
        block_on(self.inner.poll_urcs())
    }

    /// Forgets buffered bytes (after a modem reboot or port re-open).
    pub fn reset(&mut self) {
        self.inner.reset();
    }

    /// The clock.
    pub fn clock(&mut self) -> &C {
        &self.inner.clock().0
    }

    /// The URC handler.
    pub fn urc_handler(&mut self) -> &mut H {
        self.inner.urc_handler()
    }

    /// The transport.
    pub fn io(&mut self) -> &mut T {
        &mut self.inner.io().0
    }

    /// The underlying async client over the blocking adapters (the update flow runs on it).
    pub fn as_async(&mut self) -> &mut asynch::Client<'b, BlockingIo<T>, SpinClock<C>, H> {
        &mut self.inner
    }

    /// The engine, for inspection.
    pub fn engine(&mut self) -> &mut Engine<'b> {
        self.inner.engine()
    }

    /// Gives back the transport, the clock and the URC handler.
    pub fn into_parts(self) -> (T, C, H) {
        let (io, clock, urc) = self.inner.into_parts();
        (io.0, clock.0, urc)
    }
}

/// A zero-copy reader over a payload that follows `CONNECT` (blocking). Implements
/// [`embedded_io::BufRead`] and [`embedded_io::Read`]; see [`asynch::DataReader`] for the
/// contract.
#[derive(Debug)]
pub struct DataReader<'c, 'b, T, C, H>
where
    T: Read + Write + ReadReady,
    C: Clock,
    H: UrcHandler,
{
    inner: asynch::DataReader<'c, 'b, BlockingIo<T>, SpinClock<C>, H>,
}

impl<'c, T, C, H> DataReader<'c, '_, T, C, H>
where
    T: Read + Write + ReadReady,
    C: Clock,
    H: UrcHandler,
{
    /// Like [`DataReader::finish`], and also parses the command's information lines; see
    /// [`asynch::DataReader::finish_response`].
    pub fn finish_response<Cmd: AtCommand>(
        self,
        cmd: &Cmd,
    ) -> Result<(Cmd::Response<'c>, u64), Error<T::Error>> {
        block_on(self.inner.finish_response(cmd))
    }

    /// The payload length announced by `CONNECT <n>` or given by the command.
    pub fn announced(&self) -> Option<u32> {
        self.inner.announced()
    }

    /// Payload bytes consumed so far.
    pub fn position(&self) -> u64 {
        self.inner.position()
    }

    /// Waits for the command's final result after the payload; returns the payload length.
    pub fn finish(self) -> Result<u64, Error<T::Error>> {
        block_on(self.inner.finish())
    }
}

impl<T, C, H> embedded_io::ErrorType for DataReader<'_, '_, T, C, H>
where
    T: Read + Write + ReadReady,
    C: Clock,
    H: UrcHandler,
{
    type Error = Error<T::Error>;
}

impl<T, C, H> embedded_io::BufRead for DataReader<'_, '_, T, C, H>
where
    T: Read + Write + ReadReady,
    C: Clock,
    H: UrcHandler,
    T::Error: embedded_io::Error,
{
    fn fill_buf(&mut self) -> Result<&[u8], Self::Error> {
        block_on(embedded_io_async::BufRead::fill_buf(&mut self.inner))
    }
    fn consume(&mut self, amt: usize) {
        embedded_io_async::BufRead::consume(&mut self.inner, amt)
    }
}

impl<T, C, H> embedded_io::Read for DataReader<'_, '_, T, C, H>
where
    T: Read + Write + ReadReady,
    C: Clock,
    H: UrcHandler,
    T::Error: embedded_io::Error,
{
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        block_on(embedded_io_async::Read::read(&mut self.inner, buf))
    }
}
