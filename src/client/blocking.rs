//! The blocking client over `embedded_io::{Read, Write, ReadReady}`.

use core::time::Duration;

use embedded_io::{Read, ReadReady, Write};

use super::{Config, Error, Exchange, Step, UrcHandler, encode_line, payload};
use crate::at::{AtCommand, Clock, DataPhase, Engine, Event, Instant, Lines};

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
            io,
            clock,
            engine: Engine::new(rx),
            resp: response,
            urc,
            config,
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
        if matches!(cmd.data(), DataPhase::Receive(_)) {
            return Err(Error::Protocol(
                "command receives a payload: use send_receive",
            ));
        }
        let len = self.exchange(cmd, &mut |_| {})?;
        Ok(cmd.parse(Lines::new(&self.resp[..len]))?)
    }

    /// Sends a command whose answer carries a payload after `CONNECT` (`AT+QFREAD`,
    /// `AT+QHTTPREAD`, `AT+QFDWL`) and hands every payload slice to `on_data`, straight out
    /// of the receive buffer (no copy). Returns the parsed answer and the payload length.
    ///
    /// The deadline `cmd.timeout()` restarts whenever payload bytes arrive, so it bounds the
    /// gap between bytes rather than the whole transfer.
    pub fn send_receive<Cmd: AtCommand>(
        &mut self,
        cmd: &Cmd,
        mut on_data: impl FnMut(&[u8]),
    ) -> Result<(Cmd::Response<'_>, u64), Error<T::Error>> {
        let mut received = 0u64;
        let len = self.exchange(cmd, &mut |d| {
            received += d.len() as u64;
            on_data(d)
        })?;
        Ok((cmd.parse(Lines::new(&self.resp[..len]))?, received))
    }

    fn exchange<Cmd: AtCommand>(
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
        io.write_all(&resp[..n]).map_err(Error::Io)?;
        io.flush().map_err(Error::Io)?;
        let mut ex = Exchange::new(cmd, config);
        let timeout = cmd.timeout();
        let mut deadline = clock.now() + timeout;
        loop {
            let now = clock.now();
            while let Some(ev) = engine.poll(now) {
                match ex.on_event::<T::Error, H>(ev, resp, urc) {
                    Step::Continue => {}
                    Step::SendPayload => {
                        io.write_all(payload(cmd)).map_err(Error::Io)?;
                        io.flush().map_err(Error::Io)?;
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
            wait_bytes(io, engine, clock, wake)?;
        }
    }

    /// Waits up to `timeout` for a line that `pick` accepts (returns `Some`), handing every
    /// other line to the URC handler. Use it for results that arrive as URCs after `OK`
    /// (`+QHTTPGET:`, `+QIND: "FOTA",...`).
    pub fn wait_for<R>(
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
            wait_bytes(io, engine, clock, deadline)?;
        }
    }

    /// Processes the bytes that are available now without waiting, handing URCs to the
    /// handler. Call it between commands to keep URCs flowing.
    pub fn poll_urcs(&mut self) -> Result<(), Error<T::Error>> {
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
            if !io.read_ready().map_err(Error::Io)? {
                return Ok(());
            }
            let spare = engine.rx_spare();
            let n = io.read(spare).map_err(Error::Io)?;
            if n == 0 {
                return Err(Error::Closed);
            }
            engine.rx_commit(n);
        }
    }

    /// Forgets buffered bytes (after a modem reboot or port re-open).
    pub fn reset(&mut self) {
        self.engine.reset();
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// The URC handler.
    pub fn urc_handler(&mut self) -> &mut H {
        &mut self.urc
    }

    /// The transport.
    pub fn io(&mut self) -> &mut T {
        &mut self.io
    }

    /// The transport and the engine, for code that drives a payload itself (the streaming
    /// body reader).
    pub fn parts(&mut self) -> (&mut T, &C, &mut Engine<'b>, &mut H) {
        (&mut self.io, &self.clock, &mut self.engine, &mut self.urc)
    }

    /// Gives back the transport, the clock and the URC handler.
    pub fn into_parts(self) -> (T, C, H) {
        (self.io, self.clock, self.urc)
    }
}

/// Reads what the transport has into the engine, or returns once `until` has passed.
pub(crate) fn wait_bytes<T: Read + ReadReady, C: Clock>(
    io: &mut T,
    engine: &mut Engine<'_>,
    clock: &C,
    until: Instant,
) -> Result<(), Error<T::Error>> {
    loop {
        if io.read_ready().map_err(Error::Io)? {
            let spare = engine.rx_spare();
            if spare.is_empty() {
                return Ok(());
            }
            let n = io.read(spare).map_err(Error::Io)?;
            if n == 0 {
                return Err(Error::Closed);
            }
            engine.rx_commit(n);
            return Ok(());
        }
        if clock.now() >= until {
            return Ok(());
        }
    }
}
