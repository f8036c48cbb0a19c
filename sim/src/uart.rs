//! The UART between the MCU (host) and the modem, modelled byte by byte on virtual time.
//!
//! # The model
//!
//! * **Wire.** 8N1 framing: every byte costs [`BITS_PER_BYTE`] = 10 bit times, so at
//!   115 200 baud one byte takes 86.8 µs (11 520 bytes/s). Each direction carries one byte at
//!   a time; the next starts when the previous one has arrived.
//! * **Modem → host.** The modem queues what it wants to send (its output buffer is
//!   unbounded). Arriving bytes go into the host's receive path, which has two stages:
//!   1. the **hardware FIFO** ([`UartConfig::host_fifo`], 128 bytes on ESP32/ESP32-S3,
//!      `UART_FIFO_LEN` in the technical reference manual);
//!   2. the **driver ring buffer** ([`UartConfig::host_ring`], default 1024 bytes): the
//!      receive interrupt moves bytes from the FIFO into it. The model moves them at once
//!      whenever interrupts can run, i.e. always except while the host is inside a flash
//!      operation ([`SimFlash`](crate::SimFlash) runs with interrupts off, as code executing
//!      from flash cannot run while the flash is busy; see
//!      [`World::advance_interrupts_off`](crate::World::advance_interrupts_off)). Then only
//!      the FIFO fills.
//!
//!   With [`UartConfig::host_rx_dma`] the ring is filled by DMA instead (ESP32-S3: UHCI with
//!   GDMA into internal RAM, which runs on while the CPU is stalled in a flash operation),
//!   so the ring keeps filling during flash operations too.
//!
//!   Reads take from the ring first, then from the FIFO. A byte that arrives when both are
//!   full is **lost** and counted ([`UartStats::lost`]) — unless RTS/CTS flow control is on.
//! * **Flow control.** When the modem has `AT+IFC=2,<x>` (it obeys RTS) and the host drives
//!   RTS ([`UartConfig::host_rts`], the default), the modem does not start a byte while the
//!   host has no free space. RTS is modelled as ideal: deasserted exactly when the buffer is
//!   full (real UARTs deassert at a threshold a few bytes earlier and the modem may finish
//!   the byte in flight; one byte in flight always fits here). Nothing is lost then; the
//!   modem just waits. Flow control applies to everything the modem sends, not only in data
//!   mode as the EC2x manual's wording suggests (§1, unconfirmed translation).
//! * **Host → modem.** Writes enter the host's transmit buffer ([`UartConfig::host_tx_buffer`])
//!   and travel at the same rate; a write blocks (virtual time passes) while that buffer is
//!   full. In command and data mode the modem accepts every byte (its receive buffer is
//!   large). While it receives a module firmware package (`AT+QFOTADL="FILE:<len>"`,
//!   [`modem`](crate::modem)) its receive buffer is bounded and drains at its flash rate:
//!   * **CTS.** When the modem drives CTS (`AT+IFC=<x>,2`) and the host obeys it
//!     ([`UartConfig::host_cts`], the default), the host's transmitter does not start a byte
//!     while that buffer is full; it starts again as soon as the buffer has room (ideal, like
//!     RTS: no threshold, the byte in flight always fits). The host's writes then block in
//!     virtual time once its transmit buffer is full too ([`UartStats::cts_pauses`] counts
//!     the holds).
//!   * Without CTS, bytes that arrive while the buffer is full are **lost** by the modem.
//! * **Baud rate.** The host starts at [`UartConfig::baud`], the modem at its saved rate
//!   ([`ModemConfig::baud`](crate::ModemConfig::baud)). `AT+IPR=<rate>` switches the modem
//!   after its `OK`; the host switches with [`HostUart::set_baud`]. While the rates differ
//!   every byte arrives garbled and is counted in [`UartStats::framing_errors`], and the
//!   host's next read fails once with [`ErrorKind::InvalidData`] before it returns them (a
//!   UART driver's framing error: ESP32 `RxError::FrameFormatViolated`). With the fault
//!   `baud-limit` one byte in 64 garbles while the rate is above the limit, silently (a bit
//!   flipped inside a well-formed frame).
//! * **Idle host.** When the host waits for bytes (`read_ready()` false, a blocking `read`, a
//!   pending async `read`), virtual time jumps to the next scheduled event, at most
//!   [`UartConfig::idle_step`] at a time, so a host polling its own deadline sees it pass.

use std::collections::VecDeque;
use std::time::Duration;

use embedded_io::ErrorKind;

use crate::world::{State, World, duration_ns};

/// Bit times per byte on the wire: start bit, 8 data bits, stop bit (8N1).
pub const BITS_PER_BYTE: u64 = 10;

/// Settings of the simulated UART.
#[derive(Clone, Debug)]
pub struct UartConfig {
    /// Baud rate of the host UART at start (the modem starts at `ModemConfig::baud`, its saved
    /// rate: factory 115 200, §1).
    pub baud: u32,
    /// Size of the host's hardware receive FIFO in bytes (ESP32/ESP32-S3: 128).
    pub host_fifo: usize,
    /// Size of the host driver's receive ring buffer in bytes, filled from the FIFO by the
    /// receive interrupt (0 models a driver that reads the FIFO directly).
    pub host_ring: usize,
    /// Size of the host's transmit buffer (FIFO plus driver buffer) in bytes.
    pub host_tx_buffer: usize,
    /// Whether the ring is filled by DMA (keeps filling while the host is inside a flash
    /// operation with interrupts off) rather than by the receive interrupt.
    pub host_rx_dma: bool,
    /// Whether the host UART drives RTS. Flow control needs this *and* the modem's
    /// `AT+IFC=2,..`.
    pub host_rts: bool,
    /// Whether the host UART obeys CTS (the line is wired and hardware flow control is on at
    /// the host). The modem holds the host only with this *and* its own `AT+IFC=..,2`.
    pub host_cts: bool,
    /// Longest virtual-time jump an idle host poll makes when nothing is scheduled sooner.
    pub idle_step: Duration,
    /// Most bytes one host `read` returns (models a driver that hands out small chunks).
    pub max_read: usize,
    /// How long a *blocking* `read` waits in virtual time for a first byte before it gives
    /// up with [`ErrorKind::TimedOut`] (a real UART read would block for ever).
    pub blocking_read_limit: Duration,
}

impl Default for UartConfig {
    fn default() -> Self {
        UartConfig {
            baud: 115_200,
            host_fifo: 128,
            host_ring: 1024,
            host_tx_buffer: 1024,
            host_rx_dma: false,
            host_rts: true,
            host_cts: true,
            idle_step: Duration::from_millis(1),
            max_read: usize::MAX,
            blocking_read_limit: Duration::from_secs(600),
        }
    }
}

impl UartConfig {
    /// The same settings at another baud rate.
    pub fn with_baud(mut self, baud: u32) -> Self {
        self.baud = baud;
        self
    }

    /// The same settings with other receive buffer sizes (FIFO, driver ring).
    pub fn with_rx_buffers(mut self, fifo: usize, ring: usize) -> Self {
        self.host_fifo = fifo;
        self.host_ring = ring;
        self
    }

    /// The same settings with a DMA-filled receive ring of `ring` bytes (ESP32-S3 UHCI):
    /// unlike an interrupt-driven ring it keeps filling during flash operations.
    pub fn with_rx_dma(mut self, ring: usize) -> Self {
        self.host_ring = ring;
        self.host_rx_dma = true;
        self
    }
}

/// Counters of the simulated UART.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UartStats {
    /// Bytes the modem put on the wire.
    pub to_host: u64,
    /// Bytes that arrived at the host but found the FIFO and ring full (no flow control).
    pub lost: u64,
    /// Bytes the host wrote that reached the modem.
    pub to_modem: u64,
    /// Bytes garbled because the two ends used different baud rates.
    pub framing_errors: u64,
    /// The most bytes ever waiting in the host's FIFO plus ring.
    pub max_rx_fill: usize,
    /// How often the modem found RTS deasserted (host buffer full) and paused.
    pub flow_pauses: u64,
    /// How often the host found CTS deasserted (the modem's receive buffer full while it
    /// takes a firmware package) and paused.
    pub cts_pauses: u64,
}

/// Something to do when the modem's transmitter reaches a position in its output stream.
#[derive(Clone, Debug)]
pub(crate) enum Mark {
    /// Switch the modem's baud rate (after the `OK` of `AT+IPR`).
    SetBaud(u32),
    /// Stop transmitting for this long (fault `uart-stall`).
    Stall(u64),
    /// The modem reboots here (fault `modem-reboot`).
    Reboot,
    /// The host MCU resets here (fault `mcu-reset`).
    McuReset,
    /// Do not start this byte before virtual time `t` (ns): it has not arrived from the
    /// network yet.
    NotBefore(u64),
    /// A payload that arrives from the network through a bounded receive buffer starts here
    /// (the TCP window: the server sends no further than the buffer has room).
    NetStart(NetWindow),
    /// A block of that payload starts here; at the network's own pace its last byte would
    /// be in the module at virtual time `t` (ns), but not before the window let the server
    /// send it.
    NetBlock(u64),
}

/// The module's receive buffer for a payload it forwards from the network, seen as a TCP
/// window: block `k` cannot arrive before block `k - blocks` has left the module (its buffer
/// room is free again) plus a round trip (the window update reaches the server, the data
/// comes back), and after a stall the network delivers at its own rate again, without a
/// burst.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NetWindow {
    /// Blocks the buffer holds.
    pub(crate) blocks: usize,
    /// Round trip (ns).
    pub(crate) rtt_ns: u64,
    /// Time one block takes on the downlink (ns).
    pub(crate) block_ns: u64,
    /// When the previous block arrived (ns).
    pub(crate) prev_arrival: Option<u64>,
    /// When each of the last `blocks` blocks started on the UART (ns), oldest first.
    pub(crate) starts: VecDeque<u64>,
}

impl NetWindow {
    pub(crate) fn new(blocks: usize, rtt_ns: u64, block_ns: u64) -> Self {
        NetWindow {
            // One block in flight and one free: the smallest buffer that can stream.
            blocks: blocks.max(2),
            rtt_ns,
            block_ns,
            prev_arrival: None,
            starts: VecDeque::new(),
        }
    }

    /// When the next block arrives, given its unconstrained arrival `t`, and records that
    /// it starts on the UART at `max(now, arrival)`.
    pub(crate) fn next_block(&mut self, t: u64, now: u64) -> u64 {
        let mut a = t;
        if let Some(p) = self.prev_arrival {
            a = a.max(p + self.block_ns);
        }
        // Block k needs block k - blocks to have left: that is when block k - blocks + 1
        // started, the oldest start kept once `blocks - 1` are kept.
        let kept = self.starts.len();
        if kept + 1 >= self.blocks {
            let freed = self.starts[kept + 1 - self.blocks];
            a = a.max(freed + self.rtt_ns);
        }
        self.prev_arrival = Some(a);
        self.starts.push_back(a.max(now));
        while self.starts.len() > self.blocks {
            self.starts.pop_front();
        }
        a
    }
}

/// The two directions of the wire plus the host's buffers.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) cfg: UartConfig,
    pub(crate) modem_baud: u32,
    pub(crate) host_baud: u32,
    /// The modem's output queue; `out_pos` is the stream index of `out[0]`.
    pub(crate) out: VecDeque<u8>,
    pub(crate) out_pos: u64,
    /// Marks by stream index, in order.
    pub(crate) marks: VecDeque<(u64, Mark)>,
    /// The byte on the wire towards the host and when it arrives.
    pub(crate) tx: Option<(u64, u8)>,
    pub(crate) stall_until: Option<u64>,
    pub(crate) fifo: VecDeque<u8>,
    pub(crate) ring: VecDeque<u8>,
    pub(crate) interrupts: bool,
    /// The modem obeys RTS (`AT+IFC=2,..`).
    pub(crate) modem_obeys_rts: bool,
    pub(crate) paused: bool,
    /// Host transmit buffer and the byte on the wire towards the modem.
    pub(crate) host_tx: VecDeque<u8>,
    pub(crate) rx: Option<(u64, u8)>,
    /// The host's transmitter is held by CTS until this time (ns).
    pub(crate) cts_wait: Option<u64>,
    /// The window of the payload being forwarded from the network, if bounded.
    pub(crate) net: Option<NetWindow>,
    /// Fault `baud-limit`: the fastest rate the wiring carries cleanly.
    pub(crate) baud_limit: Option<u32>,
    /// Bytes sent above `baud_limit` (which of them garble).
    pub(crate) marginal: u64,
    /// A byte arrived at another rate than the host's: the next read reports a framing
    /// error.
    pub(crate) framing_pending: bool,
    pub(crate) stats: UartStats,
}

impl Link {
    pub(crate) fn new(cfg: UartConfig) -> Self {
        Link {
            modem_baud: cfg.baud,
            host_baud: cfg.baud,
            out: VecDeque::new(),
            out_pos: 0,
            marks: VecDeque::new(),
            tx: None,
            stall_until: None,
            fifo: VecDeque::new(),
            ring: VecDeque::new(),
            interrupts: true,
            modem_obeys_rts: false,
            paused: false,
            host_tx: VecDeque::new(),
            rx: None,
            cts_wait: None,
            net: None,
            baud_limit: None,
            marginal: 0,
            framing_pending: false,
            stats: UartStats::default(),
            cfg,
        }
    }

    /// Nanoseconds one byte takes at `baud` (8N1).
    pub(crate) fn byte_ns(baud: u32) -> u64 {
        let baud = u64::from(baud.max(1));
        (BITS_PER_BYTE * 1_000_000_000 + baud / 2) / baud
    }

    /// Whether bytes move from the FIFO into the ring now (the receive interrupt can run,
    /// or DMA moves them).
    fn ring_fills(&self) -> bool {
        self.interrupts || self.cfg.host_rx_dma
    }

    fn host_free(&self) -> usize {
        let fifo_free = self.cfg.host_fifo.saturating_sub(self.fifo.len());
        if self.ring_fills() {
            fifo_free + self.cfg.host_ring.saturating_sub(self.ring.len())
        } else {
            fifo_free
        }
    }

    pub(crate) fn rx_buffered(&self) -> usize {
        self.fifo.len() + self.ring.len()
    }

    fn flow_blocked(&self) -> bool {
        self.modem_obeys_rts && self.cfg.host_rts && self.host_free() == 0
    }

    /// Moves FIFO bytes into the ring, as the receive interrupt (or DMA) does.
    pub(crate) fn isr(&mut self) {
        if !self.ring_fills() {
            return;
        }
        while self.ring.len() < self.cfg.host_ring {
            match self.fifo.pop_front() {
                Some(b) => self.ring.push_back(b),
                None => break,
            }
        }
    }

    /// Whether the byte now on the wire arrives garbled: the ends disagree on the rate, or
    /// the wiring does not carry it (fault `baud-limit`: one byte in 64, spread evenly).
    pub(crate) fn garbles(&mut self) -> bool {
        if self.modem_baud != self.host_baud {
            return true;
        }
        match self.baud_limit {
            Some(limit) if self.modem_baud > limit => {
                self.marginal += 1;
                self.marginal.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58 == 0
            }
            _ => false,
        }
    }

    fn deliver(&mut self, b: u8) {
        self.stats.to_host += 1;
        // Sent at another rate: the receiver sees a broken frame and its driver reports it.
        self.framing_pending |= self.modem_baud != self.host_baud;
        let b = if self.garbles() {
            self.stats.framing_errors += 1;
            b.rotate_left(3) ^ 0xA5
        } else {
            b
        };
        if self.ring_fills() && self.ring.len() < self.cfg.host_ring && self.fifo.is_empty() {
            self.ring.push_back(b);
        } else if self.fifo.len() < self.cfg.host_fifo {
            self.fifo.push_back(b);
            self.isr();
        } else {
            self.stats.lost += 1;
        }
        self.stats.max_rx_fill = self.stats.max_rx_fill.max(self.rx_buffered());
    }

    /// Takes received bytes for the host.
    pub(crate) fn take(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.cfg.max_read.max(1));
        let mut i = 0;
        while i < n {
            let b = match self.ring.pop_front() {
                Some(b) => b,
                None => match self.fifo.pop_front() {
                    Some(b) => b,
                    None => break,
                },
            };
            buf[i] = b;
            i += 1;
        }
        self.isr();
        i
    }

    /// Forgets everything in flight (modem reboot: the port content is reset).
    pub(crate) fn clear_modem_output(&mut self) {
        self.out_pos += self.out.len() as u64;
        self.out.clear();
        self.marks.clear();
        self.stall_until = None;
        self.net = None;
    }

    /// Forgets the host's buffers (MCU reset: the UART is re-initialised).
    pub(crate) fn clear_host(&mut self) {
        self.fifo.clear();
        self.ring.clear();
        self.host_tx.clear();
        self.framing_pending = false;
    }
}

impl State {
    /// Queues modem output and starts the transmitter.
    pub(crate) fn link_push(&mut self, bytes: &[u8]) {
        self.link.out.extend(bytes.iter().copied());
        self.tx_kick();
    }

    /// The stream index the next pushed byte will have.
    pub(crate) fn link_end_pos(&self) -> u64 {
        self.link.out_pos + self.link.out.len() as u64
    }

    /// Adds a mark at stream index `pos` (kept in order).
    pub(crate) fn link_mark(&mut self, pos: u64, mark: Mark) {
        self.link_insert_marks(vec![(pos, mark)]);
        self.tx_kick();
    }

    /// Adds marks given in stream order, keeping the queue in order (appended at once when
    /// they all come after the marks already queued, the usual case).
    pub(crate) fn link_insert_marks(&mut self, marks: Vec<(u64, Mark)>) {
        let after_all = match (self.link.marks.back(), marks.first()) {
            (Some((last, _)), Some((first, _))) => last <= first,
            _ => true,
        };
        if after_all {
            self.link.marks.extend(marks);
            return;
        }
        for (pos, m) in marks {
            let at = self
                .link
                .marks
                .iter()
                .position(|(p, _)| *p > pos)
                .unwrap_or(self.link.marks.len());
            self.link.marks.insert(at, (pos, m));
        }
    }

    /// Starts the next byte towards the host if the line is free and allowed.
    pub(crate) fn tx_kick(&mut self) {
        loop {
            if self.link.tx.is_some() {
                return;
            }
            if let Some(&(pos, _)) = self.link.marks.front()
                && pos <= self.link.out_pos
            {
                if let Some((_, mark)) = self.link.marks.pop_front() {
                    self.fire_mark(mark);
                }
                continue;
            }
            if let Some(until) = self.link.stall_until {
                if self.now < until {
                    return;
                }
                self.link.stall_until = None;
            }
            if self.link.out.is_empty() {
                return;
            }
            if self.link.flow_blocked() {
                if !self.link.paused {
                    self.link.paused = true;
                    self.link.stats.flow_pauses += 1;
                }
                return;
            }
            self.link.paused = false;
            let Some(b) = self.link.out.pop_front() else {
                return;
            };
            self.link.out_pos += 1;
            let done = self.now + Link::byte_ns(self.link.modem_baud);
            self.link.tx = Some((done, b));
            return;
        }
    }

    fn stall_until_at_least(&mut self, t: u64) {
        if t > self.now {
            let until = self.link.stall_until.map_or(t, |u| u.max(t));
            self.link.stall_until = Some(until);
        }
    }

    fn fire_mark(&mut self, mark: Mark) {
        match mark {
            Mark::SetBaud(b) => self.link.modem_baud = b,
            Mark::Stall(ns) => self.link.stall_until = Some(self.now + ns),
            Mark::Reboot => self.modem_reboot(),
            Mark::McuReset => self.mcu_reset(),
            Mark::NotBefore(t) => self.stall_until_at_least(t),
            Mark::NetStart(w) => self.link.net = Some(w),
            Mark::NetBlock(t) => {
                let now = self.now;
                let t = match &mut self.link.net {
                    Some(w) => w.next_block(t, now),
                    None => t,
                };
                self.stall_until_at_least(t);
            }
        }
        self.timeline_uart();
    }

    /// Starts the next host byte towards the modem, unless the modem holds CTS.
    pub(crate) fn rx_kick(&mut self) {
        if self.link.rx.is_some() || self.link.host_tx.is_empty() {
            return;
        }
        if let Some(room) = self.modem_cts_hold() {
            if self.link.cts_wait.is_none() {
                self.link.stats.cts_pauses += 1;
            }
            self.link.cts_wait = Some(room.max(self.now + 1));
            return;
        }
        self.link.cts_wait = None;
        if let Some(b) = self.link.host_tx.pop_front() {
            let done = self.now + Link::byte_ns(self.link.host_baud);
            self.link.rx = Some((done, b));
        }
    }

    /// A byte finished arriving at the host.
    pub(crate) fn tx_done(&mut self, b: u8) {
        self.link.tx = None;
        self.link.deliver(b);
        self.timeline_uart();
        self.tx_kick();
    }

    /// A host byte finished arriving at the modem.
    pub(crate) fn rx_done(&mut self, b: u8) {
        self.link.rx = None;
        self.link.stats.to_modem += 1;
        let b = if self.link.garbles() {
            self.link.stats.framing_errors += 1;
            b.rotate_left(3) ^ 0x5A
        } else {
            b
        };
        self.modem_rx(b);
        self.rx_kick();
    }

    /// Host side: takes received bytes (after processing everything due).
    /// Takes received bytes; a framing error (a byte sent at another rate than the host's)
    /// is reported once, as a UART driver does, before the bytes (ESP32 `RxError::
    /// FrameFormatViolated`).
    pub(crate) fn host_take(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        let now = self.now;
        self.run_until(now);
        if std::mem::take(&mut self.link.framing_pending) {
            return Err(ErrorKind::InvalidData);
        }
        let n = self.link.take(buf);
        if n > 0 {
            self.timeline_uart();
            self.tx_kick();
        }
        Ok(n)
    }

    /// Host side: lets virtual time pass while the host waits for something.
    pub(crate) fn idle_advance(&mut self) {
        let step = duration_ns(self.link.cfg.idle_step).max(1);
        let cap = self.now.saturating_add(step);
        let target = match self.next_event() {
            Some(t) => t.min(cap).max(self.now),
            None => cap,
        };
        self.run_until(target);
    }

    /// When a host write has to wait for room: the end of the byte on the wire, the end of
    /// a CTS hold, or the next event.
    fn host_tx_wait(&self) -> u64 {
        self.link
            .rx
            .map(|(t, _)| t)
            .or(self.link.cts_wait)
            .or_else(|| self.next_event())
            .unwrap_or(self.now + 1)
            .max(self.now + 1)
    }

    /// Host side: queues bytes for the modem; returns how many fit.
    pub(crate) fn host_write(&mut self, buf: &[u8]) -> usize {
        let now = self.now;
        self.run_until(now);
        let free = self
            .link
            .cfg
            .host_tx_buffer
            .max(1)
            .saturating_sub(self.link.host_tx.len());
        let n = free.min(buf.len());
        self.link.host_tx.extend(buf[..n].iter().copied());
        if n > 0 {
            self.transcript
                .record(cellular_ota::transcript::Direction::ToModem, &buf[..n]);
        }
        self.rx_kick();
        n
    }
}

/// The host (MCU) end of the simulated UART: implements `embedded_io::{Read, Write,
/// ReadReady}` and `embedded_io_async::{Read, Write}`.
///
/// Cheap to clone; every clone is the same port. Errors are [`ErrorKind`]s:
/// [`ErrorKind::Interrupted`] after a simulated MCU reset (until
/// [`World::acknowledge_mcu_reset`](crate::World::acknowledge_mcu_reset)),
/// [`ErrorKind::TimedOut`] when a blocking read would block for ever.
///
/// Async `read` is cancel-safe: bytes stay buffered until a read returns them.
#[derive(Clone, Debug)]
pub struct HostUart {
    pub(crate) world: World,
}

impl HostUart {
    /// Switches the host's baud rate (the host reconfiguring its UART after `AT+IPR`).
    pub fn set_baud(&self, baud: u32) {
        let mut s = self.world.0.borrow_mut();
        s.link.host_baud = baud;
        s.timeline_uart();
    }

    /// The host's baud rate.
    pub fn baud(&self) -> u32 {
        self.world.0.borrow().link.host_baud
    }

    /// Bytes waiting in the host's FIFO and ring buffer now.
    pub fn rx_buffered(&self) -> usize {
        self.world.0.borrow().link.rx_buffered()
    }

    /// Discards everything received but not read yet.
    pub fn clear_rx(&self) {
        let mut s = self.world.0.borrow_mut();
        s.link.fifo.clear();
        s.link.ring.clear();
        s.link.framing_pending = false;
        s.timeline_uart();
        s.tx_kick();
    }

    /// Queues what fits into the host's transmit buffer now, without letting virtual time
    /// pass (0 if it is full): for a pump that must not run ahead of wall time.
    pub fn try_write(&self, buf: &[u8]) -> Result<usize, ErrorKind> {
        let mut s = self.world.0.borrow_mut();
        s.check_mcu()?;
        Ok(s.host_write(buf))
    }

    /// Bytes in the host's transmit buffer, not on the wire yet.
    pub fn tx_buffered(&self) -> usize {
        self.world.0.borrow().link.host_tx.len()
    }

    /// Reads what is there now without waiting (0 if nothing).
    pub fn try_read(&self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        let mut s = self.world.0.borrow_mut();
        s.check_mcu()?;
        s.host_take(buf)
    }

    fn ready(&self) -> Result<bool, ErrorKind> {
        let mut s = self.world.0.borrow_mut();
        s.check_mcu()?;
        let now = s.now;
        s.run_until(now);
        if s.link.rx_buffered() > 0 {
            return Ok(true);
        }
        s.idle_advance();
        Ok(s.link.rx_buffered() > 0)
    }

    fn blocking_read(&self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut s = self.world.0.borrow_mut();
        let limit = s
            .now
            .saturating_add(duration_ns(s.link.cfg.blocking_read_limit));
        loop {
            s.check_mcu()?;
            let n = s.host_take(buf)?;
            if n > 0 {
                return Ok(n);
            }
            if s.now >= limit {
                return Err(ErrorKind::TimedOut);
            }
            s.idle_advance();
        }
    }

    fn write_some(&self, buf: &[u8]) -> Result<usize, ErrorKind> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut s = self.world.0.borrow_mut();
        loop {
            s.check_mcu()?;
            let n = s.host_write(buf);
            if n > 0 {
                return Ok(n);
            }
            // Transmit buffer full: the host busy-waits until a byte left.
            let next = s.host_tx_wait();
            s.run_until(next);
        }
    }

    fn drain(&self) -> Result<(), ErrorKind> {
        let mut s = self.world.0.borrow_mut();
        loop {
            s.check_mcu()?;
            match s.link.rx {
                Some((t, _)) => s.run_until(t),
                None if s.link.host_tx.is_empty() => return Ok(()),
                None => {
                    s.rx_kick();
                    if s.link.rx.is_none() {
                        // Held by CTS.
                        let next = s.host_tx_wait();
                        s.run_until(next);
                    }
                }
            }
        }
    }
}

impl embedded_io::ErrorType for HostUart {
    type Error = ErrorKind;
}

impl embedded_io::ReadReady for HostUart {
    /// True when bytes are buffered. When none are, virtual time first advances to the
    /// next event (at most [`UartConfig::idle_step`]): the host is idle-waiting.
    fn read_ready(&mut self) -> Result<bool, Self::Error> {
        self.ready()
    }
}

impl embedded_io::Read for HostUart {
    /// Returns at least one byte, letting virtual time pass until one arrives (at most
    /// [`UartConfig::blocking_read_limit`]).
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        self.blocking_read(buf)
    }
}

impl embedded_io::Write for HostUart {
    /// Queues bytes for the modem; blocks in virtual time while the transmit buffer is
    /// full.
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.write_some(buf)
    }

    /// Returns once every queued byte has reached the modem.
    fn flush(&mut self) -> Result<(), Self::Error> {
        // Like a UART driver's `flush`: the host waits until its buffer went out. Modem
        // output keeps arriving meanwhile.
        self.drain()
    }
}

impl embedded_io_async::Read for HostUart {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        std::future::poll_fn(|cx| {
            if buf.is_empty() {
                return std::task::Poll::Ready(Ok(0));
            }
            let mut s = self.world.0.borrow_mut();
            if let Err(e) = s.check_mcu() {
                return std::task::Poll::Ready(Err(e));
            }
            match s.host_take(buf) {
                Ok(0) => {}
                r => return std::task::Poll::Ready(r),
            }
            s.idle_advance();
            match s.host_take(buf) {
                Ok(0) => {}
                r => return std::task::Poll::Ready(r),
            }
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        })
        .await
    }
}

impl embedded_io_async::Write for HostUart {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.write_some(buf)
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        self.drain()
    }
}
