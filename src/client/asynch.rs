//! The async client over `embedded_io_async::{Read, Write}` and an [`AsyncClock`].

use core::future::{Future, poll_fn};
use core::pin::pin;
use core::task::Poll;
use core::time::Duration;

use embedded_io_async::{Read, Write};

use super::{Config, Error, Exchange, Step, UrcHandler, encode_line, payload};
use crate::at::{AsyncClock, AtCommand, DataPhase, Engine, Event, Instant, Lines};

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
        let len = self.exchange(cmd, &mut |_| {}).await?;
        Ok(cmd.parse(Lines::new(&self.resp[..len]))?)
    }

    /// Async twin of [`blocking::Client::send_receive`](super::blocking::Client::send_receive).
    pub async fn send_receive<Cmd: AtCommand>(
        &mut self,
        cmd: &Cmd,
        mut on_data: impl FnMut(&[u8]),
    ) -> Result<(Cmd::Response<'_>, u64), Error<T::Error>> {
        let mut received = 0u64;
        let len = self
            .exchange(cmd, &mut |d| {
                received += d.len() as u64;
                on_data(d)
            })
            .await?;
        Ok((cmd.parse(Lines::new(&self.resp[..len]))?, received))
    }

    async fn exchange<Cmd: AtCommand>(
        &mut self,
        cmd: &Cmd,
        on_data: &mut dyn FnMut(&[u8]),
    ) -> Result<usize, Error<T::Error>> {
        let Client {
            io,
            clock,
            engine,
            resp,
            urc,
            config,
        } = self;
        let n = encode_line(cmd, resp)?;
        engine.expect_data(match cmd.data() {
            DataPhase::Receive(len) => Some(len),
            _ => None,
        });
        io.write_all(&resp[..n]).await.map_err(Error::Io)?;
        io.flush().await.map_err(Error::Io)?;
        let mut ex = Exchange::new(cmd, config);
        let timeout = cmd.timeout();
        let mut deadline = clock.now() + timeout;
        loop {
            let now = clock.now();
            while let Some(ev) = engine.poll(now) {
                match ex.on_event::<T::Error, H>(ev, resp, urc) {
                    Step::Continue => {}
                    Step::SendPayload => {
                        io.write_all(payload(cmd)).await.map_err(Error::Io)?;
                        io.flush().await.map_err(Error::Io)?;
                        deadline = clock.now() + timeout;
                    }
                    Step::Data(d) => {
                        on_data(d);
                        deadline = now + timeout;
                    }
                    Step::Done(r) => {
                        engine.expect_data(None);
                        r?;
                        return Ok(ex.response_len());
                    }
                }
            }
            if now >= deadline {
                engine.expect_data(None);
                engine.abort_data();
                return Err(Error::Timeout);
            }
            let wake = engine.next_deadline().map_or(deadline, |d| d.min(deadline));
            wait_bytes(io, engine, clock, wake).await?;
        }
    }

    /// Async twin of [`blocking::Client::wait_for`](super::blocking::Client::wait_for).
    pub async fn wait_for<R>(
        &mut self,
        timeout: Duration,
        mut pick: impl FnMut(&[u8]) -> Option<R>,
    ) -> Result<R, Error<T::Error>> {
        let deadline = self.clock.now() + timeout;
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
                    match pick(line) {
                        Some(r) => return Ok(r),
                        None => urc.on_urc(line),
                    }
                }
            }
            if now >= deadline {
                return Err(Error::Timeout);
            }
            wait_bytes(io, engine, clock, deadline).await?;
        }
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
