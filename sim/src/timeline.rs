//! A recorder of where one run's virtual time goes: when the flash was busy and with what,
//! how full the MCU's receive buffer was, which UART bytes were lost, and when either end of
//! the UART changed its baud rate.
//!
//! Recording is off by default and costs one branch per hook when off. Switch it on per
//! world with [`World::record_timeline`], take a copy with [`World::timeline`]:
//!
//! ```
//! use cellular_ota_sim::{FlashConfig, ModemConfig, Personality, SimFlash, World, WorldConfig};
//! use embedded_storage::nor_flash::NorFlash;
//! use std::time::Duration;
//!
//! let world = World::new(WorldConfig::new(ModemConfig::new(Personality::Ec200u).ready()));
//! world.record_timeline(true);
//! let mut flash = SimFlash::new(&world, FlashConfig::default());
//! flash.erase(0, 4096).unwrap();
//! let t = world.timeline();
//! assert_eq!(t.flash.len(), 1);
//! assert_eq!(t.flash_busy(), Duration::from_millis(45));
//! assert_eq!(t.flash_busy(), flash.stats().busy);
//! ```
//!
//! Times are virtual, measured from the world's start (as [`World::elapsed`]). A power cycle
//! of a simulated device makes a new world, with a timeline of its own.
//!
//! # Size
//!
//! Flash intervals are kept one per operation (back-to-back operations of the same kind are
//! merged). The receive-buffer fill changes with every byte, so it is kept as at most one
//! [`FillSample`] per [`Timeline::period`] (1 ms) with the highest fill of that period (peaks
//! are not lost) and the fill at its end; lost bytes are counted per period the same way.
//! The 140 s of a 1.5 MB update at 115 200 baud make about 137 000 fill samples and 25 000
//! flash intervals: about 4 MB in memory.

use std::time::Duration;

use crate::flash::{FlashConfig, erase_steps};
use crate::world::{State, World, duration_ns};

/// Sampling period of the receive-buffer fill and of the loss counts.
const PERIOD_NS: u64 = 1_000_000;

/// What kept the flash busy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlashOpKind {
    /// 4 KiB sector erases.
    SectorErase,
    /// 64 KiB block erases.
    BlockErase,
    /// Page programs (writes).
    PageProgram,
    /// Reads.
    Read,
}

impl FlashOpKind {
    /// Every kind, erases first.
    pub const ALL: [FlashOpKind; 4] = [
        FlashOpKind::SectorErase,
        FlashOpKind::BlockErase,
        FlashOpKind::PageProgram,
        FlashOpKind::Read,
    ];

    /// Whether this is an erase (sector or block).
    pub fn is_erase(self) -> bool {
        matches!(self, FlashOpKind::SectorErase | FlashOpKind::BlockErase)
    }

    /// A short name: `sector erase`, `block erase`, `program`, `read`.
    pub fn name(self) -> &'static str {
        match self {
            FlashOpKind::SectorErase => "sector erase",
            FlashOpKind::BlockErase => "block erase",
            FlashOpKind::PageProgram => "program",
            FlashOpKind::Read => "read",
        }
    }
}

/// An interval in which the flash was busy (and the host, with interrupts off unless the
/// flash is configured otherwise).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlashBusy {
    /// Start (virtual time since the world's start).
    pub start: Duration,
    /// End.
    pub end: Duration,
    /// What the flash did.
    pub kind: FlashOpKind,
}

impl FlashBusy {
    /// How long it lasted.
    pub fn duration(&self) -> Duration {
        self.end.saturating_sub(self.start)
    }
}

/// The MCU's receive-buffer fill (hardware FIFO plus driver ring, in bytes) in one sampling
/// period in which it changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FillSample {
    /// Start of the period.
    pub at: Duration,
    /// The highest fill in the period (including the fill the period started with).
    pub max: u32,
    /// The fill at the last change in the period; it holds until the next sample.
    pub last: u32,
}

/// UART bytes lost at the host's receiver (FIFO and ring full) in one sampling period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LossSample {
    /// Start of the period.
    pub at: Duration,
    /// Bytes lost in it.
    pub bytes: u64,
}

/// An end of the UART.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UartEnd {
    /// The modem (switches after the `OK` of `AT+IPR`, or back to its saved rate on a
    /// reboot).
    Modem,
    /// The host MCU ([`HostUart::set_baud`](crate::HostUart::set_baud)).
    Host,
}

/// A baud-rate change of one end of the UART.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BaudChange {
    /// When (virtual time since the world's start).
    pub at: Duration,
    /// Which end.
    pub end: UartEnd,
    /// The new rate.
    pub baud: u32,
}

/// One run's timeline, as recorded by a [`World`] (see the [module docs](self)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Timeline {
    /// When recording started.
    pub start: Duration,
    /// When this copy was taken (or recording stopped, whichever came first).
    pub end: Duration,
    /// Sampling period of [`rx_fill`](Self::rx_fill) and [`lost`](Self::lost).
    pub period: Duration,
    /// Flash-busy intervals, in time order.
    pub flash: Vec<FlashBusy>,
    /// Capacity of the MCU's receive buffer: hardware FIFO plus driver ring, in bytes.
    pub rx_capacity: u32,
    /// Receive-buffer fill, one sample per period in which it changed, in time order. The
    /// fill before the first sample is [`rx_fill_at_start`](Self::rx_fill_at_start).
    pub rx_fill: Vec<FillSample>,
    /// The fill when recording started.
    pub rx_fill_at_start: u32,
    /// UART bytes lost at the host, per period in which any were, in time order.
    pub lost: Vec<LossSample>,
    /// The modem's baud rate when recording started.
    pub modem_baud_at_start: u32,
    /// The host's baud rate when recording started.
    pub host_baud_at_start: u32,
    /// Baud-rate changes, in time order. A modem reboot that brings back its saved rate is
    /// noticed at the next UART event (its first byte), not at the reboot itself.
    pub bauds: Vec<BaudChange>,
}

impl Timeline {
    /// Total time the flash was busy.
    pub fn flash_busy(&self) -> Duration {
        self.flash.iter().map(FlashBusy::duration).sum()
    }

    /// Time the flash was busy with operations of `kind`.
    pub fn flash_busy_of(&self, kind: FlashOpKind) -> Duration {
        self.flash
            .iter()
            .filter(|b| b.kind == kind)
            .map(FlashBusy::duration)
            .sum()
    }

    /// Total UART bytes lost.
    pub fn lost_bytes(&self) -> u64 {
        self.lost.iter().map(|l| l.bytes).sum()
    }

    /// The highest receive-buffer fill recorded.
    pub fn max_rx_fill(&self) -> u32 {
        self.rx_fill
            .iter()
            .map(|s| s.max)
            .fold(self.rx_fill_at_start, u32::max)
    }

    /// The baud rate of `end` at time `t`.
    pub fn baud_at(&self, end: UartEnd, t: Duration) -> u32 {
        let start = match end {
            UartEnd::Modem => self.modem_baud_at_start,
            UartEnd::Host => self.host_baud_at_start,
        };
        self.bauds
            .iter()
            .rev()
            .find(|c| c.end == end && c.at <= t)
            .map_or(start, |c| c.baud)
    }
}

/// The fill samples of the current period, not yet in the timeline.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    index: u64,
    max: u32,
    last: u32,
}

/// The recording state of a world.
#[derive(Debug)]
pub(crate) struct Recorder {
    on: bool,
    t: Timeline,
    bucket: Option<Bucket>,
    fill: u32,
    lost_seen: u64,
    modem_baud: u32,
    host_baud: u32,
}

/// A flash operation, as [`SimFlash`](crate::SimFlash) reports it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum FlashOp {
    Read,
    Program,
    /// An erase of `[from, to)`: block erases for whole aligned 64 KiB blocks, sector erases
    /// for the rest.
    Erase {
        from: u32,
        to: u32,
    },
}

fn dur(ns: u64) -> Duration {
    Duration::from_nanos(ns)
}

fn sat_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Recorder {
    fn new(s: &State) -> Recorder {
        let fill = sat_u32(s.link.rx_buffered());
        Recorder {
            on: true,
            t: Timeline {
                start: dur(s.now),
                end: dur(s.now),
                period: dur(PERIOD_NS),
                rx_capacity: sat_u32(s.link.cfg.host_fifo.saturating_add(s.link.cfg.host_ring)),
                rx_fill_at_start: fill,
                modem_baud_at_start: s.link.modem_baud,
                host_baud_at_start: s.link.host_baud,
                ..Timeline::default()
            },
            bucket: None,
            fill,
            lost_seen: s.link.stats.lost,
            modem_baud: s.link.modem_baud,
            host_baud: s.link.host_baud,
        }
    }

    fn flush_bucket(&mut self) {
        if let Some(b) = self.bucket.take() {
            self.t.rx_fill.push(FillSample {
                at: dur(b.index * PERIOD_NS),
                max: b.max,
                last: b.last,
            });
        }
    }

    fn fill(&mut self, now: u64, fill: u32) {
        if fill == self.fill {
            return;
        }
        let index = now / PERIOD_NS;
        match &mut self.bucket {
            Some(b) if b.index == index => {
                b.max = b.max.max(fill);
                b.last = fill;
            }
            _ => {
                self.flush_bucket();
                self.bucket = Some(Bucket {
                    index,
                    // The period started with the previous fill.
                    max: self.fill.max(fill),
                    last: fill,
                });
            }
        }
        self.fill = fill;
    }

    fn lost(&mut self, now: u64, total: u64) {
        let n = total.saturating_sub(self.lost_seen);
        self.lost_seen = total;
        if n == 0 {
            return;
        }
        let at = dur(now / PERIOD_NS * PERIOD_NS);
        match self.t.lost.last_mut() {
            Some(l) if l.at == at => l.bytes += n,
            _ => self.t.lost.push(LossSample { at, bytes: n }),
        }
    }

    fn bauds(&mut self, now: u64, modem: u32, host: u32) {
        if modem != self.modem_baud {
            self.modem_baud = modem;
            self.t.bauds.push(BaudChange {
                at: dur(now),
                end: UartEnd::Modem,
                baud: modem,
            });
        }
        if host != self.host_baud {
            self.host_baud = host;
            self.t.bauds.push(BaudChange {
                at: dur(now),
                end: UartEnd::Host,
                baud: host,
            });
        }
    }

    fn flash(&mut self, start: u64, d: Duration, kind: FlashOpKind) {
        if d.is_zero() {
            return;
        }
        let start = dur(start);
        let end = start + d;
        match self.t.flash.last_mut() {
            Some(b) if b.kind == kind && b.end == start => b.end = end,
            _ => self.t.flash.push(FlashBusy { start, end, kind }),
        }
    }

    fn snapshot(&self, now: u64) -> Timeline {
        let mut t = self.t.clone();
        if self.on {
            t.end = dur(now);
        }
        if let Some(b) = self.bucket {
            t.rx_fill.push(FillSample {
                at: dur(b.index * PERIOD_NS),
                max: b.max,
                last: b.last,
            });
        }
        t
    }
}

impl State {
    /// The recorder, if recording is on.
    fn recorder(&mut self) -> Option<&mut Recorder> {
        self.timeline.as_deref_mut().filter(|r| r.on)
    }

    /// Hook: the UART may have changed (a byte arrived at the host or was lost, the host
    /// read or dropped bytes, a baud rate changed). Records what did. One branch when
    /// recording was never switched on.
    #[inline]
    pub(crate) fn timeline_uart(&mut self) {
        if self.timeline.is_some() {
            self.record_uart();
        }
    }

    fn record_uart(&mut self) {
        let (now, fill, lost) = (
            self.now,
            sat_u32(self.link.rx_buffered()),
            self.link.stats.lost,
        );
        let (modem, host) = (self.link.modem_baud, self.link.host_baud);
        if let Some(r) = self.recorder() {
            r.bauds(now, modem, host);
            r.lost(now, lost);
            r.fill(now, fill);
        }
    }

    /// Hook: the flash is about to be busy for `d` from now with `op`.
    #[inline]
    pub(crate) fn timeline_flash(&mut self, cfg: &FlashConfig, op: FlashOp, d: Duration) {
        if self.timeline.is_some() {
            self.record_flash(cfg, op, d);
        }
    }

    fn record_flash(&mut self, cfg: &FlashConfig, op: FlashOp, d: Duration) {
        let now = self.now;
        let Some(r) = self.recorder() else {
            return;
        };
        match op {
            FlashOp::Read => r.flash(now, d, FlashOpKind::Read),
            FlashOp::Program => r.flash(now, d, FlashOpKind::PageProgram),
            FlashOp::Erase { from, to } => {
                // One interval per step, cut short where the operation was (a power cut
                // stops it half-way).
                let (mut at, mut left) = (now, d);
                erase_steps(cfg, from, to, |kind, step| {
                    let step = step.min(left);
                    r.flash(at, step, kind);
                    at = at.saturating_add(duration_ns(step));
                    left -= step;
                });
            }
        }
    }
}

impl World {
    /// Switches timeline recording on or off (it is off when a world is made). Switching it
    /// on the first time starts an empty [`Timeline`] at the current virtual time; switching
    /// it off keeps what was recorded, and on again goes on adding to it.
    pub fn record_timeline(&self, on: bool) {
        let mut s = self.0.borrow_mut();
        if on && s.timeline.is_none() {
            let r = Recorder::new(&s);
            s.timeline = Some(Box::new(r));
            return;
        }
        let now = s.now;
        let (fill, lost) = (sat_u32(s.link.rx_buffered()), s.link.stats.lost);
        let (modem, host) = (s.link.modem_baud, s.link.host_baud);
        if let Some(r) = s.timeline.as_deref_mut() {
            if on && !r.on {
                // Catch up with what changed meanwhile, without recording it as events.
                r.fill = fill;
                r.lost_seen = lost;
                r.modem_baud = modem;
                r.host_baud = host;
            }
            if !on && r.on {
                r.t.end = dur(now);
            }
            r.on = on;
        }
    }

    /// Whether timeline recording is on.
    pub fn recording_timeline(&self) -> bool {
        self.0.borrow().timeline.as_ref().is_some_and(|r| r.on)
    }

    /// A copy of the timeline recorded so far (an empty one, starting and ending now, if
    /// recording was never switched on).
    pub fn timeline(&self) -> Timeline {
        let s = self.0.borrow();
        match s.timeline.as_deref() {
            Some(r) => r.snapshot(s.now),
            None => {
                let mut t = Recorder::new(&s).t;
                t.end = dur(s.now);
                t
            }
        }
    }
}
