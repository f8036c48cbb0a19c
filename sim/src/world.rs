//! The shared virtual timeline: one [`World`] holds the clock, the UART, the modem, the
//! flash power state and the event queue. Everything is single-threaded
//! (`Rc<RefCell<..>>`); only the HTTP server and the pty pump run on threads of their own.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::rc::Rc;
use std::time::Duration;

use cellular_ota::at::{AsyncClock, Clock, Instant};
use cellular_ota::transcript::Direction;
use embedded_io::ErrorKind;

use crate::fault::{Fault, FaultError};
use crate::modem::{Modem, ModemConfig, SimModem};
use crate::network::Network;
use crate::rng::Rng;
use crate::server::{ServerHandle, TestServer};
use crate::timeline::Recorder;
use crate::uart::{HostUart, Link, UartConfig, UartStats};

/// Nanoseconds of a duration, saturating.
pub(crate) fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Settings of a whole simulation.
#[derive(Clone, Debug)]
pub struct WorldConfig {
    /// The UART between host and modem.
    pub uart: UartConfig,
    /// The modem.
    pub modem: ModemConfig,
    /// Seed of every random choice (URC timing and kind).
    pub seed: u64,
    /// Most bytes the [transcript](World::transcript) keeps (further traffic is counted but
    /// not recorded).
    pub transcript_limit: usize,
}

impl Default for WorldConfig {
    fn default() -> Self {
        WorldConfig {
            uart: UartConfig::default(),
            modem: ModemConfig::default(),
            seed: 1,
            transcript_limit: 1 << 20,
        }
    }
}

impl WorldConfig {
    /// Default settings with this modem.
    pub fn new(modem: ModemConfig) -> Self {
        WorldConfig {
            modem,
            ..WorldConfig::default()
        }
    }

    /// The same settings with another UART.
    pub fn with_uart(mut self, uart: UartConfig) -> Self {
        self.uart = uart;
        self
    }

    /// The same settings with another random seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// Which state a timer belongs to: a timer is dropped when its scope was reset after it was
/// scheduled (a modem reboot forgets pending command results, `AT+QHTTPSTOP` forgets the
/// pending HTTP result, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Never reset.
    World,
    /// Reset by every modem reboot.
    Modem,
    /// Reset by a reboot and by `AT+QHTTPSTOP`.
    Http,
    /// Reset only by powering the modem off (FOTA survives its own reboots).
    Fota,
}

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Epochs {
    pub(crate) modem: u64,
    pub(crate) http: u64,
    pub(crate) fota: u64,
}

impl Epochs {
    fn of(&self, scope: Scope) -> u64 {
        match scope {
            Scope::World => 0,
            Scope::Modem => self.modem,
            Scope::Http => self.http,
            Scope::Fota => self.fota,
        }
    }
}

/// Something that happens at a point in virtual time.
#[derive(Debug)]
pub(crate) enum Timer {
    /// The modem finished processing the command line it holds.
    Execute,
    /// Emit boot URC number `n` of the personality's list (0 = `RDY`).
    BootUrc(usize),
    /// The modem registered on the network.
    Registered,
    /// A random URC is due.
    RandomUrc,
    /// Emit these bytes (a URC line, already framed).
    Emit(Vec<u8>),
    /// The pending `AT+QHTTPGET` result is due.
    HttpResult,
    /// The pending SIMCom `+HTTPACTION:` / `+SHREQ:` result is due.
    SimcomResult,
    /// `AT+QHTTPREADFILE` finished writing.
    ReadFileDone,
    /// Check the data-input timeout of input number `n`.
    InputTimeout(u64),
    /// The next step of the running FOTA job.
    Fota,
    /// Check whether the host has gone silent while streaming a FOTA package.
    FotaFileCheck,
    /// The network deactivates PDP context `cid`.
    PdpDeact(u8),
    /// The MCU resets.
    McuReset,
    /// The modem switches itself off (end of `AT+QPOWD`).
    PowerOff,
}

#[derive(Debug)]
struct Scheduled {
    at: u64,
    seq: u64,
    scope: Scope,
    epoch: u64,
    timer: Timer,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.seq == other.seq
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        // Min-heap on (at, seq).
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// State of the (shared) flash power supply.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FlashPower {
    /// `Some(k)`: `k` more erase/write operations succeed, the next one is cut.
    pub(crate) countdown: Option<u32>,
    /// `Some((addr, k))`: `k` more erase/write operations that touch flash address `addr`
    /// succeed, the next one is cut.
    pub(crate) at: Option<(u32, u32)>,
    /// Power is off: every flash operation fails.
    pub(crate) cut: bool,
}

/// MCU reset bookkeeping.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct McuState {
    pub(crate) pending: bool,
    pub(crate) resets: u32,
}

/// What went over the wire, for [`World::transcript`].
#[derive(Debug, Default)]
pub(crate) struct Transcript {
    chunks: Vec<(Direction, Vec<u8>)>,
    bytes: usize,
    limit: usize,
    dropped: u64,
    /// The last chunk is an echo still being typed (no CR yet).
    echo_open: bool,
}

impl Transcript {
    /// One echoed byte: echoes of a command line form one chunk, ending at its CR.
    pub(crate) fn record_echo(&mut self, b: u8) {
        if self.echo_open
            && self.bytes < self.limit
            && let Some((Direction::FromModem, v)) = self.chunks.last_mut()
        {
            v.push(b);
            self.bytes += 1;
        } else {
            self.record(Direction::FromModem, &[b]);
        }
        self.echo_open = b != b'\r';
    }

    pub(crate) fn record(&mut self, dir: Direction, bytes: &[u8]) {
        self.echo_open = false;
        if self.bytes + bytes.len() > self.limit {
            self.dropped += bytes.len() as u64;
            return;
        }
        self.bytes += bytes.len();
        match self.chunks.last_mut() {
            Some((d, v)) if *d == dir && dir == Direction::ToModem && !v.ends_with(b"\r") => {
                v.extend_from_slice(bytes)
            }
            _ => self.chunks.push((dir, bytes.to_vec())),
        }
    }
}

/// Everything the simulation holds.
pub(crate) struct State {
    /// Virtual time in nanoseconds.
    pub(crate) now: u64,
    pub(crate) link: Link,
    pub(crate) modem: Modem,
    timers: BinaryHeap<Scheduled>,
    timer_seq: u64,
    pub(crate) epochs: Epochs,
    pub(crate) rng: Rng,
    pub(crate) power: FlashPower,
    pub(crate) mcu: McuState,
    pub(crate) server: Option<ServerHandle>,
    pub(crate) transcript: Transcript,
    pub(crate) net: Network,
    /// The timeline recorder ([`World::record_timeline`]); `None` until first switched on.
    pub(crate) timeline: Option<Box<Recorder>>,
}

impl State {
    /// Schedules `timer` `delay` nanoseconds from now.
    pub(crate) fn schedule(&mut self, delay: u64, scope: Scope, timer: Timer) {
        self.schedule_at(self.now.saturating_add(delay), scope, timer);
    }

    /// Schedules `timer` at absolute time `at`.
    pub(crate) fn schedule_at(&mut self, at: u64, scope: Scope, timer: Timer) {
        self.timer_seq += 1;
        let epoch = self.epochs.of(scope);
        self.timers.push(Scheduled {
            at: at.max(self.now),
            seq: self.timer_seq,
            scope,
            epoch,
            timer,
        });
    }

    /// The time of the next event, if any.
    pub(crate) fn next_event(&self) -> Option<u64> {
        let candidates = [
            self.link.rx.map(|(t, _)| t),
            self.link.cts_wait,
            self.link.tx.map(|(t, _)| t),
            self.timers.peek().map(|s| s.at),
            match self.link.stall_until {
                Some(t) if self.link.tx.is_none() && !self.link.out.is_empty() => Some(t),
                _ => None,
            },
        ];
        candidates.into_iter().flatten().min()
    }

    /// Processes every event up to and including time `t`, then sets the clock to `t`
    /// (never backwards).
    pub(crate) fn run_until(&mut self, t: u64) {
        while let Some(next) = self.next_event() {
            if next > t {
                break;
            }
            if next > self.now {
                self.now = next;
            }
            self.step();
        }
        if t > self.now {
            self.now = t;
        }
    }

    /// Processes one event due now.
    fn step(&mut self) {
        let now = self.now;
        if let Some((t, b)) = self.link.rx
            && t <= now
        {
            self.rx_done(b);
            return;
        }
        if let Some(t) = self.link.cts_wait
            && t <= now
        {
            // The modem's buffer has room again: CTS asserted.
            self.link.cts_wait = None;
            self.rx_kick();
            return;
        }
        if self.timers.peek().is_some_and(|s| s.at <= now) {
            if let Some(s) = self.timers.pop()
                && s.epoch == self.epochs.of(s.scope)
            {
                self.fire(s.timer);
            }
            return;
        }
        if let Some((t, b)) = self.link.tx
            && t <= now
        {
            self.tx_done(b);
            return;
        }
        // A stall ended.
        self.tx_kick();
        if self.link.stall_until.is_some_and(|t| t <= now) {
            self.link.stall_until = None;
            self.tx_kick();
        }
    }

    fn fire(&mut self, timer: Timer) {
        match timer {
            Timer::McuReset => self.mcu_reset(),
            other => self.modem_timer(other),
        }
    }

    /// The host MCU resets: its UART buffers are gone and the host's handles fail until the
    /// test acknowledges the reset.
    pub(crate) fn mcu_reset(&mut self) {
        self.mcu.pending = true;
        self.mcu.resets += 1;
        self.link.clear_host();
        self.timeline_uart();
        self.tx_kick();
    }

    pub(crate) fn check_mcu(&self) -> Result<(), ErrorKind> {
        if self.mcu.pending {
            Err(ErrorKind::Interrupted)
        } else {
            Ok(())
        }
    }

    /// The host is busy for `ns` with interrupts on or off.
    pub(crate) fn busy(&mut self, ns: u64, interrupts: bool) {
        let t = self.now.saturating_add(ns);
        if interrupts {
            self.run_until(t);
        } else {
            self.link.interrupts = false;
            self.run_until(t);
            self.link.interrupts = true;
            self.link.isr();
            self.tx_kick();
        }
    }
}

/// The simulation: a handle to the shared virtual timeline. Cheap to clone; all clones are
/// the same world.
///
/// ```
/// use cellular_ota_sim::{ModemConfig, Personality, World, WorldConfig};
/// use std::time::Duration;
///
/// let world = World::new(WorldConfig::new(ModemConfig::new(Personality::Ec200u).ready()));
/// let t0 = world.now();
/// world.advance(Duration::from_millis(5));
/// assert_eq!(world.now().as_micros() - t0.as_micros(), 5_000);
/// ```
#[derive(Clone)]
pub struct World(pub(crate) Rc<RefCell<State>>);

impl core::fmt::Debug for World {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0.try_borrow() {
            Ok(s) => f
                .debug_struct("World")
                .field("now_ns", &s.now)
                .field("personality", &s.modem.cfg.personality)
                .finish_non_exhaustive(),
            Err(_) => f.write_str("World { <in use> }"),
        }
    }
}

impl World {
    /// A new simulation at virtual time zero. The modem starts booting (or is ready at
    /// once, see [`ModemConfig::ready`]).
    pub fn new(config: WorldConfig) -> World {
        let WorldConfig {
            uart,
            modem,
            seed,
            transcript_limit,
        } = config;
        let net = Network::new(&modem);
        let state = State {
            now: 0,
            link: Link::new(uart),
            modem: Modem::new(modem),
            timers: BinaryHeap::new(),
            timer_seq: 0,
            epochs: Epochs::default(),
            rng: Rng::new(seed),
            power: FlashPower::default(),
            mcu: McuState::default(),
            server: None,
            transcript: Transcript {
                limit: transcript_limit,
                ..Transcript::default()
            },
            net,
            timeline: None,
        };
        let world = World(Rc::new(RefCell::new(state)));
        world.0.borrow_mut().modem_start();
        world
    }

    /// A simulation with default UART settings and this modem.
    pub fn with_modem(modem: ModemConfig) -> World {
        World::new(WorldConfig::new(modem))
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        Instant::from_micros(self.0.borrow().now / 1000)
    }

    /// The virtual time as a duration since the start.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.0.borrow().now)
    }

    /// The host is busy (CPU work) for `d`: virtual time passes, the modem keeps sending,
    /// the UART receive interrupt keeps moving bytes into the ring buffer.
    pub fn advance(&self, d: Duration) {
        self.0.borrow_mut().busy(duration_ns(d), true);
    }

    /// The host is busy for `d` with interrupts off (as during a flash operation): bytes
    /// pile up in the hardware FIFO only.
    pub fn advance_interrupts_off(&self, d: Duration) {
        self.0.borrow_mut().busy(duration_ns(d), false);
    }

    /// Runs until the modem's output queue is empty and nothing is on the wire, or `max`
    /// has passed. Returns whether it settled.
    pub fn settle(&self, max: Duration) -> bool {
        let mut s = self.0.borrow_mut();
        let end = s.now.saturating_add(duration_ns(max));
        loop {
            let idle = s.link.out.is_empty() && s.link.tx.is_none() && s.link.rx.is_none();
            if idle {
                return true;
            }
            if s.now >= end {
                return false;
            }
            let next = s.next_event().unwrap_or(end).min(end);
            let t = next.max(s.now + 1);
            s.run_until(t);
        }
    }

    /// The virtual clock, for the client and the OTA code.
    pub fn clock(&self) -> SimClock {
        SimClock(self.clone())
    }

    /// The host end of the UART.
    pub fn host_uart(&self) -> HostUart {
        HostUart {
            world: self.clone(),
        }
    }

    /// The modem, for inspection and out-of-band control.
    pub fn modem(&self) -> SimModem {
        SimModem {
            world: self.clone(),
        }
    }

    /// Injects a fault (see [`Fault`] for the names and their effects).
    pub fn inject(&self, fault: Fault) -> Result<(), FaultError> {
        self.0.borrow_mut().inject(fault)
    }

    /// Parses and injects a fault by name, e.g. `"byte-loss=5000"`.
    pub fn inject_str(&self, fault: &str) -> Result<(), FaultError> {
        let f: Fault = fault.parse()?;
        self.inject(f)
    }

    /// Lets server faults (`server-*`) reach this server.
    pub fn attach_server(&self, server: &TestServer) {
        self.0.borrow_mut().server = Some(server.handle());
    }

    /// Response body bytes the servers sent to the modem, over all its requests (what went
    /// over the air; the simulator fetches each body whole, so a transfer cut short still
    /// counts its whole response).
    pub fn body_bytes_on_air(&self) -> u64 {
        self.0.borrow().net.body_bytes.get()
    }

    /// Bytes lost at the host's UART receiver (buffers full, no flow control).
    pub fn uart_bytes_lost(&self) -> u64 {
        self.0.borrow().link.stats.lost
    }

    /// All UART counters.
    pub fn uart_stats(&self) -> UartStats {
        self.0.borrow().link.stats
    }

    /// Whether the modem currently obeys RTS (`AT+IFC=2,..`) and the host drives it.
    pub fn flow_control_active(&self) -> bool {
        let s = self.0.borrow();
        s.link.modem_obeys_rts && s.link.cfg.host_rts
    }

    /// Whether a simulated MCU reset happened that the test has not acknowledged; the
    /// [`HostUart`] fails with [`ErrorKind::Interrupted`] meanwhile. The harness should drop
    /// the host's state (client, buffers), call [`acknowledge_mcu_reset`](Self::acknowledge_mcu_reset)
    /// and start the host again.
    pub fn mcu_reset_pending(&self) -> bool {
        self.0.borrow().mcu.pending
    }

    /// How many MCU resets happened.
    pub fn mcu_resets(&self) -> u32 {
        self.0.borrow().mcu.resets
    }

    /// Ends the MCU-reset state: the host UART works again (with empty buffers).
    pub fn acknowledge_mcu_reset(&self) {
        let mut s = self.0.borrow_mut();
        s.mcu.pending = false;
        s.link.clear_host();
        s.timeline_uart();
    }

    /// Schedules an MCU reset `after` from now.
    pub fn schedule_mcu_reset(&self, after: Duration) {
        self.0
            .borrow_mut()
            .schedule(duration_ns(after), Scope::World, Timer::McuReset);
    }

    /// Everything that went over the wire so far, in the transcript format of
    /// [`cellular_ota::transcript`] (`->` host to modem, `<-` modem to host, one chunk per
    /// line). Modem chunks are recorded as the modem queued them (after payload faults).
    pub fn transcript(&self) -> String {
        let s = self.0.borrow();
        let mut out = String::new();
        for (dir, bytes) in &s.transcript.chunks {
            let mut buf = vec![0u8; bytes.len() * 4 + 8];
            if let Ok(n) = cellular_ota::transcript::encode_line(*dir, bytes, &mut buf) {
                out.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
        if s.transcript.dropped > 0 {
            out.push_str(&format!(
                "# {} more bytes not recorded\n",
                s.transcript.dropped
            ));
        }
        out
    }
}

/// The virtual clock: implements [`Clock`] and [`AsyncClock`].
///
/// `wait_until` jumps virtual time to the deadline or the next scheduled event, whichever
/// comes first, and completes once the deadline is reached; it is cancel-safe.
#[derive(Clone, Debug)]
pub struct SimClock(World);

impl SimClock {
    /// The world this clock belongs to.
    pub fn world(&self) -> &World {
        &self.0
    }
}

impl Clock for SimClock {
    /// Each reading moves virtual time on by 1 µs (running the modem and UART up to then):
    /// code that spins on the clock, like the blocking client's waits, sees time pass as it
    /// would on a real timer instead of spinning forever.
    fn now(&self) -> Instant {
        {
            let mut s = self.0.0.borrow_mut();
            let target = s.now + 1_000;
            s.run_until(target);
        }
        self.0.now()
    }
}

impl AsyncClock for SimClock {
    async fn wait_until(&mut self, deadline: Instant) {
        let deadline_ns = deadline.as_micros().saturating_mul(1000);
        std::future::poll_fn(|cx| {
            let mut s = self.0.0.borrow_mut();
            if s.now >= deadline_ns {
                return std::task::Poll::Ready(());
            }
            let next = s.next_event().unwrap_or(deadline_ns);
            let target = next.min(deadline_ns).max(s.now);
            s.run_until(target);
            if s.now >= deadline_ns {
                std::task::Poll::Ready(())
            } else {
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            }
        })
        .await
    }
}

/// Runs a future to completion by polling it in a loop: the library's
/// [`cellular_ota::block_on`]. The simulator's futures (the async client over [`HostUart`]
/// and [`SimClock`]) always make progress when polled because they drive virtual time
/// themselves.
pub use cellular_ota::block_on;
