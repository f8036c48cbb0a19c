//! A faster UART than the module's saved rate: negotiate a rate, prove it, fall back.
//!
//! Modules boot at their saved rate (115200 from the factory, quectel-at.md §1). A 1.5 MB
//! image takes over two minutes at 115200; at 3000000 it takes seconds, if the wiring, the
//! level shifters and both UARTs really carry that rate. [`negotiate`] finds out:
//!
//! 1. It checks where the modem answers: at the MCU's current rate, else at the module's
//!    boot rate (a module that restarted, for example in the middle of an update, is back at
//!    its saved rate), else, with a reset the caller provides (PWRKEY, RESET_N), at the boot
//!    rate after the reset.
//! 2. If the link is at the boot rate, it tries each faster rate of
//!    [`BaudConfig::rates`], fastest first: `AT+IPR=<rate>` (not saved: a restart brings the
//!    module back to its saved rate), then the MCU's UART (the caller's `set_rate`), then a
//!    proof that the link carries every byte both ways at the new rate: several `AT`, a long
//!    answer, and the family's own check ([`Family::verify_link`]; Quectel: a 256-byte file
//!    with every byte value, uploaded and downloaded again). One `AT` is not proof: a
//!    marginal link passes short exchanges and garbles long ones.
//! 3. A rate that fails is left the way it was entered: `AT+IPR=<previous>` at the failed
//!    rate (which a marginal link may still carry), the MCU back, `AT` at the previous
//!    rate; failing that, the boot rate; failing that, the reset. Then the next rate.
//!
//! Call it before [`bring_up`](crate::bring_up::bring_up) (which then runs at the new rate)
//! and again before each retry: it returns at once when the modem answers at the rate
//! already negotiated (and still listed). Every wait has a deadline; every rate tried and
//! why it was dropped is in [`Negotiated::fallbacks`].
//!
//! A clean link is not enough: the MCU must also take the bytes while it writes flash.
//! An interrupt-driven UART without RTS/CTS cannot read while the CPU is stalled in a page
//! program (0.4 ms typical), so its FIFO (128 bytes on the ESP32-S3) bounds the rate: 921600
//! leaves a margin (128 bytes take 1.4 ms), 3000000 does not (0.43 ms). Offer the rates the
//! receive path sustains, and drop a rate at which a payload lost bytes
//! ([`Failure::BytesLost`](crate::update::Failure::BytesLost)): the next call then steps
//! down ([`Refusal::Dropped`]).

use core::time::Duration;

use embedded_io_async::{Read, Write};

use crate::at::AsyncClock;
use crate::bring_up::{Family, idle, poll_at};
use crate::client::asynch::Client;
use crate::client::{Error as ClientError, TimeoutExt, UrcHandler, blocking};
use crate::quectel::general::{Attention, SetBaudRate};

/// The default candidates, fastest first. 3000000 is within what the EC2x list offers
/// (quectel-at.md §1) and the ESP32-S3 UART's 5 Mbaud; 230400 is the last step above the
/// factory 115200.
pub const DEFAULT_RATES: [u32; 4] = [3_000_000, 921_600, 460_800, 230_400];

/// The module's factory rate (quectel-at.md §1).
pub const FACTORY_RATE: u32 = 115_200;

/// Settings of [`negotiate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BaudConfig<'a> {
    /// Rates to try, fastest first. Each must be one the module accepts (`AT+IPR=?`) and the
    /// MCU can set.
    pub rates: &'a [u32],
    /// The rate the module boots at: its saved rate (factory 115200).
    pub boot_rate: u32,
    /// `AT` exchanges that must all succeed at a new rate before the long checks.
    pub probes: u8,
    /// Pause after both ends switched, before the first exchange at the new rate.
    pub settle: Duration,
    /// How long the caller's reset is held (PWRKEY: at least 2 s switches an EC200U on,
    /// 3 s or more switches a running one off; 2.5 s is safe for both).
    pub reset_pulse: Duration,
    /// How long a module may take to answer after a reset or a restart. Default 35 s (an
    /// EG800K took up to 30.2 s to `RDY`, quectel-at.md §2.1).
    pub ready_timeout: Duration,
}

impl<'a> BaudConfig<'a> {
    /// `rates`, boot rate 115200, 3 probes, 20 ms settle, 2.5 s reset pulse, 35 s to answer.
    pub const fn new(rates: &'a [u32]) -> Self {
        BaudConfig {
            rates,
            boot_rate: FACTORY_RATE,
            probes: 3,
            settle: Duration::from_millis(20),
            reset_pulse: Duration::from_millis(2500),
            ready_timeout: Duration::from_secs(35),
        }
    }
}

impl Default for BaudConfig<'static> {
    fn default() -> Self {
        BaudConfig::new(&DEFAULT_RATES)
    }
}

/// Why a rate was not kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Refusal {
    /// The module refused `AT+IPR=<rate>` (`ERROR`, `+CME ERROR`): nothing changed.
    Refused,
    /// The MCU's `set_rate` refused the rate.
    Mcu,
    /// The link did not carry clean traffic at the rate (no answer, garbled answers, a file
    /// that came back different).
    Garbled,
    /// The module restarted when switched (it came back at its boot rate).
    ModemRestarted,
    /// The link ran at this rate, which is no longer among [`BaudConfig::rates`]: it was
    /// brought back to the boot rate first.
    Dropped,
}

/// A rate that was tried and dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Fallback {
    /// The rate.
    pub rate: u32,
    /// Why.
    pub why: Refusal,
}

/// Most rates [`Negotiated::fallbacks`] keeps.
pub const MAX_FALLBACKS: usize = 8;

/// What [`negotiate`] achieved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Negotiated {
    /// The rate both ends use now; the modem answered `AT` at it.
    pub rate: u32,
    /// Rates tried and dropped, in order (at most [`MAX_FALLBACKS`]).
    pub fallbacks: heapless::Vec<Fallback, MAX_FALLBACKS>,
    /// The modem was found at its boot rate after the MCU had used another one (it
    /// restarted, or the reset was used): whatever was set up on it is gone; bring it up
    /// again.
    pub restarted: bool,
    /// The caller's reset was used.
    pub reset_used: bool,
}

/// What [`negotiate`] is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum BaudEvent {
    /// The modem answered at this rate.
    Found(u32),
    /// Trying this rate.
    Trying(u32),
    /// Both ends run at this rate, proven.
    Switched(u32),
    /// A rate was dropped.
    Fallback(Fallback),
    /// Neither rate answered: the caller's reset is pressed now.
    Reset,
}

/// Why [`negotiate`] failed.
#[derive(Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BaudError<E> {
    /// The transport failed.
    Io(E),
    /// The modem answered at none of the rates, even after the reset (or there is no reset):
    /// power, wiring, or a saved rate other than [`BaudConfig::boot_rate`].
    NoAnswer,
    /// The MCU's `set_rate` refused the boot rate or the rate it had: the UART cannot be put
    /// back.
    Mcu(u32),
}

impl<E: core::fmt::Debug> core::fmt::Display for BaudError<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BaudError::Io(e) => write!(f, "transport error: {e:?}"),
            BaudError::NoAnswer => f.write_str(
                "the modem answers at none of the rates, even after a reset: check power, \
                 wiring and the module's saved rate (AT+IPR?)",
            ),
            BaudError::Mcu(r) => write!(f, "the MCU's UART refused {r} baud"),
        }
    }
}

impl<E: core::fmt::Debug> core::error::Error for BaudError<E> {}

/// Transient: a modem that answers nowhere may be restarting or unpowered, and a transport
/// error may pass; an MCU UART that refuses a rate it had is permanent.
impl<E> crate::retry::Classify for BaudError<E> {
    fn retry(&self) -> crate::retry::Retry {
        match self {
            BaudError::Mcu(_) => crate::retry::Retry::Permanent,
            _ => crate::retry::Retry::Transient,
        }
    }
}

/// The caller's side of the link, as [`negotiate`] uses it.
struct Link<'s, 'r, 'f, 'g, T> {
    set_rate: &'s mut (dyn FnMut(&mut T, u32) -> bool + 'f),
    reset: Option<&'r mut (dyn FnMut(bool) + 'g)>,
    rate: u32,
}

/// Negotiates the fastest rate of `config` that the link carries cleanly; see the
/// [module docs](self).
///
/// `rate` is the MCU's UART rate now; on return (success or not) it is the rate the MCU was
/// left at, and on success both ends run at [`Negotiated::rate`]. `set_rate(transport,
/// baud)` switches the MCU's UART to `baud` and returns `false` for a rate it cannot set; it
/// must not lose or garble bytes already written (the command before it has been answered,
/// so none are in flight). Before a rate is offered to the modem it is set and set back
/// once, so a rate the MCU refuses is dropped while the modem is untouched. `reset(pressed)`
/// drives the module's reset or PWRKEY line, if there is one: `true` presses it, `false`
/// releases it, [`BaudConfig::reset_pulse`] apart.
///
/// Not cancel-safe: after dropping the future the two ends may disagree on the rate; call
/// it again (it finds the modem).
pub async fn negotiate<T, C, H, F>(
    client: &mut Client<'_, T, C, H>,
    family: &F,
    config: &BaudConfig<'_>,
    rate: &mut u32,
    set_rate: &mut dyn FnMut(&mut T, u32) -> bool,
    reset: Option<&mut dyn FnMut(bool)>,
    progress: &mut dyn FnMut(BaudEvent),
) -> Result<Negotiated, BaudError<T::Error>>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
    F: Family,
{
    let mut link = Link {
        set_rate,
        reset,
        rate: *rate,
    };
    let r = run(client, family, config, &mut link, progress).await;
    *rate = link.rate;
    r
}

async fn run<T, C, H, F>(
    client: &mut Client<'_, T, C, H>,
    family: &F,
    config: &BaudConfig<'_>,
    link: &mut Link<'_, '_, '_, '_, T>,
    progress: &mut dyn FnMut(BaudEvent),
) -> Result<Negotiated, BaudError<T::Error>>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
    F: Family,
{
    let mut out = Negotiated {
        rate: link.rate,
        ..Negotiated::default()
    };
    find(client, config, link, &mut out, progress).await?;
    if out.rate != config.boot_rate {
        // Negotiated before: still a candidate (the caller may have dropped it, for example
        // after a payload lost bytes at it), and still clean? (A marginal link can pass a
        // few `AT`.)
        let listed = config.rates.contains(&out.rate);
        if listed && family.verify_link(client).await {
            return Ok(out);
        }
        let rate = out.rate;
        let why = match restore(
            client,
            config,
            link,
            rate,
            config.boot_rate,
            &mut out,
            progress,
        )
        .await?
        {
            true => Refusal::ModemRestarted,
            false if listed => Refusal::Garbled,
            false => Refusal::Dropped,
        };
        fallback(&mut out, Fallback { rate, why }, progress);
    }
    for &rate in config.rates {
        if rate <= out.rate || out.fallbacks.iter().any(|f| f.rate == rate) {
            continue;
        }
        progress(BaudEvent::Trying(rate));
        let why = match try_rate(client, family, config, link, rate).await? {
            None => {
                out.rate = rate;
                progress(BaudEvent::Switched(rate));
                return Ok(out);
            }
            // Nothing changed on the modem.
            Some(why @ (Refusal::Refused | Refusal::Mcu)) => why,
            Some(why) => {
                let before = out.rate;
                match restore(client, config, link, rate, before, &mut out, progress).await? {
                    true => Refusal::ModemRestarted,
                    false => why,
                }
            }
        };
        fallback(&mut out, Fallback { rate, why }, progress);
    }
    Ok(out)
}

/// The blocking twin of [`negotiate`] (the same code, driven to completion). `set_rate`
/// gets the blocking transport.
pub fn negotiate_blocking<T, C, H, F>(
    client: &mut blocking::Client<'_, T, C, H>,
    family: &F,
    config: &BaudConfig<'_>,
    rate: &mut u32,
    set_rate: &mut dyn FnMut(&mut T, u32) -> bool,
    reset: Option<&mut dyn FnMut(bool)>,
    progress: &mut dyn FnMut(BaudEvent),
) -> Result<Negotiated, BaudError<T::Error>>
where
    T: embedded_io::Read + embedded_io::Write + embedded_io::ReadReady,
    C: crate::at::Clock,
    H: UrcHandler,
    F: Family,
{
    let mut inner = |io: &mut blocking::BlockingIo<T>, r: u32| set_rate(&mut io.0, r);
    blocking::block_on(negotiate(
        client.as_async(),
        family,
        config,
        rate,
        &mut inner,
        reset,
        progress,
    ))
}

/// Whether the modem answers `AT` `times` times in a row at the current rate, each within
/// `each`. Line noise is dropped between tries.
async fn answers<T, C, H>(client: &mut Client<'_, T, C, H>, times: u8, each: Duration) -> bool
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    for _ in 0..times.max(1) {
        if client.send(&Attention.with_timeout(each)).await.is_err() {
            client.reset();
            return false;
        }
    }
    true
}

/// The modem at its boot rate: the MCU switched to it, the line cleared, then `AT` every
/// half second for up to [`BaudConfig::ready_timeout`] (a module that restarted may still be
/// booting). On an answer, records the rate (and `restarted`) in `out`.
async fn at_boot_rate<T, C, H>(
    client: &mut Client<'_, T, C, H>,
    config: &BaudConfig<'_>,
    link: &mut Link<'_, '_, '_, '_, T>,
    out: &mut Negotiated,
    restarted: bool,
    progress: &mut dyn FnMut(BaudEvent),
) -> Result<bool, BaudError<T::Error>>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    set_mcu(client, link, config.boot_rate)?;
    clear_line(client, config.settle).await?;
    let per_try = Duration::from_millis(500);
    if poll_at(client, config.ready_timeout, per_try)
        .await
        .is_none()
    {
        return Ok(false);
    }
    out.rate = config.boot_rate;
    out.restarted |= restarted;
    progress(BaudEvent::Found(config.boot_rate));
    Ok(true)
}

/// After a switch: lets both ends settle, then ends whatever partial line the modem holds
/// (bytes that arrived garbled at another rate would otherwise prefix the next command), and
/// forgets what came back.
async fn clear_line<T, C, H>(
    client: &mut Client<'_, T, C, H>,
    settle: Duration,
) -> Result<(), BaudError<T::Error>>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    // The modem switches once its `OK` is out: let it, and read away what arrived at the
    // old rate (a framing error ends a wait early: keep reading until the time is up).
    drain(client, settle).await;
    Write::write_all(client.io(), b"\r")
        .await
        .map_err(BaudError::Io)?;
    drain(client, settle).await;
    client.reset();
    Ok(())
}

/// Reads and drops what arrives until the line has been quiet for `quiet` (at most
/// [`DRAIN_MAX`]), through transport errors: bytes sent at another rate (the tail of an
/// answer, a payload still on its way) must not prefix the next answer.
async fn drain<T, C, H>(client: &mut Client<'_, T, C, H>, quiet: Duration)
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    let deadline = client.clock().now() + DRAIN_MAX;
    loop {
        let before = client.engine().received_total();
        let t0 = client.clock().now();
        idle(client, quiet).await;
        client.reset();
        // Quiet: nothing arrived, and the wait was not cut short by a transport error.
        let waited = client.clock().now().saturating_duration_since(t0);
        let quiet_now = client.engine().received_total() == before && waited >= quiet;
        if quiet_now || client.clock().now() >= deadline {
            return;
        }
    }
}

/// The longest [`drain`]: a payload the modem was still sending at another rate.
const DRAIN_MAX: Duration = Duration::from_secs(5);

/// Switches the MCU to `rate` and forgets what arrived at the old one.
fn set_mcu<T, C, H>(
    client: &mut Client<'_, T, C, H>,
    link: &mut Link<'_, '_, '_, '_, T>,
    rate: u32,
) -> Result<(), BaudError<T::Error>>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    if link.rate != rate {
        if !(link.set_rate)(client.io(), rate) {
            return Err(BaudError::Mcu(rate));
        }
        link.rate = rate;
    }
    client.reset();
    Ok(())
}

/// Where does the modem answer: at the MCU's rate; else, quickly, at the boot rate and at
/// each candidate (an MCU that restarted does not know the rate it had negotiated); else,
/// patiently, at the boot rate (a module that restarted may still be booting); else after
/// the caller's reset.
async fn find<T, C, H>(
    client: &mut Client<'_, T, C, H>,
    config: &BaudConfig<'_>,
    link: &mut Link<'_, '_, '_, '_, T>,
    out: &mut Negotiated,
    progress: &mut dyn FnMut(BaudEvent),
) -> Result<(), BaudError<T::Error>>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    let quick = Duration::from_millis(300);
    let was = link.rate;
    if answers(client, 2, quick).await {
        out.rate = was;
        progress(BaudEvent::Found(was));
        return Ok(());
    }
    let others = core::iter::once(config.boot_rate).chain(config.rates.iter().copied());
    for rate in others.filter(|&r| r != was) {
        // A rate the MCU cannot set was never negotiated.
        if set_mcu(client, link, rate).is_ok() {
            clear_line(client, config.settle).await?;
            if answers(client, 2, quick).await {
                out.rate = rate;
                out.restarted |= rate == config.boot_rate && was != config.boot_rate;
                progress(BaudEvent::Found(rate));
                return Ok(());
            }
        }
    }
    let restarted = was != config.boot_rate;
    if at_boot_rate(client, config, link, out, restarted, progress).await? {
        return Ok(());
    }
    reset(client, config, link, out, progress).await
}

/// The caller's reset, then the modem at its boot rate.
async fn reset<T, C, H>(
    client: &mut Client<'_, T, C, H>,
    config: &BaudConfig<'_>,
    link: &mut Link<'_, '_, '_, '_, T>,
    out: &mut Negotiated,
    progress: &mut dyn FnMut(BaudEvent),
) -> Result<(), BaudError<T::Error>>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    let Some(press) = link.reset.as_deref_mut() else {
        return Err(BaudError::NoAnswer);
    };
    progress(BaudEvent::Reset);
    press(true);
    idle(client, config.reset_pulse).await;
    if let Some(press) = link.reset.as_deref_mut() {
        press(false);
    }
    out.reset_used = true;
    set_mcu(client, link, config.boot_rate)?;
    let per_try = Duration::from_millis(500);
    if poll_at(client, config.ready_timeout, per_try)
        .await
        .is_some()
    {
        out.rate = config.boot_rate;
        out.restarted = true;
        progress(BaudEvent::Found(config.boot_rate));
        Ok(())
    } else {
        Err(BaudError::NoAnswer)
    }
}

/// Switches both ends to `rate` and proves the link; `None` when it carries clean traffic,
/// else why not (both ends may then be anywhere: [`restore`] finds the modem again).
async fn try_rate<T, C, H, F>(
    client: &mut Client<'_, T, C, H>,
    family: &F,
    config: &BaudConfig<'_>,
    link: &mut Link<'_, '_, '_, '_, T>,
    rate: u32,
) -> Result<Option<Refusal>, BaudError<T::Error>>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
    F: Family,
{
    // The MCU first: a rate it cannot set is dropped before the modem is told anything.
    let before = link.rate;
    if !(link.set_rate)(client.io(), rate) {
        return Ok(Some(Refusal::Mcu));
    }
    if !(link.set_rate)(client.io(), before) {
        return Err(BaudError::Mcu(before));
    }
    match client.send(&SetBaudRate(rate)).await {
        Ok(()) => {}
        // Refused, or an encode error for a rate the module does not list: nothing changed.
        Err(ClientError::Rejected(_) | ClientError::Encode(_)) => {
            return Ok(Some(Refusal::Refused));
        }
        // No clean answer at the old rate: unknown whether it switched.
        Err(_) => return Ok(Some(Refusal::Garbled)),
    }
    set_mcu(client, link, rate)?;
    clear_line(client, config.settle).await?;
    let each = Duration::from_millis(300);
    if !answers(client, config.probes, each).await || !family.verify_link(client).await {
        client.reset();
        return Ok(Some(Refusal::Garbled));
    }
    Ok(None)
}

/// Records a dropped rate and reports it.
fn fallback(out: &mut Negotiated, f: Fallback, progress: &mut dyn FnMut(BaudEvent)) {
    let _ = out.fallbacks.push(f);
    progress(BaudEvent::Fallback(f));
}

/// After a failed `rate`, gets both ends back to `before` (or the boot rate). Returns
/// whether the modem had restarted.
async fn restore<T, C, H>(
    client: &mut Client<'_, T, C, H>,
    config: &BaudConfig<'_>,
    link: &mut Link<'_, '_, '_, '_, T>,
    rate: u32,
    before: u32,
    out: &mut Negotiated,
    progress: &mut dyn FnMut(BaudEvent),
) -> Result<bool, BaudError<T::Error>>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    let quick = Duration::from_millis(300);
    // The modem is most likely at `rate`: a marginal link still carries a short command back
    // down more often than not, so ask it a few times.
    for _ in 0..3 {
        set_mcu(client, link, rate)?;
        clear_line(client, config.settle).await?;
        let _ = client.send(&SetBaudRate(before).with_timeout(quick)).await;
        set_mcu(client, link, before)?;
        clear_line(client, config.settle).await?;
        if answers(client, 2, quick).await {
            out.rate = before;
            return Ok(false);
        }
    }
    // Not at the previous rate: the modem restarted (at its boot rate) or is lost.
    if at_boot_rate(client, config, link, out, true, progress).await? {
        return Ok(true);
    }
    reset(client, config, link, out, progress).await?;
    Ok(true)
}
