//! Time as the engine and the clients see it: an injectable clock.
//!
//! The crate never reads a hardware timer itself. Every deadline is computed from
//! [`Clock::now`], which the caller implements (a hardware timer on a board, a virtual
//! clock in tests), so that tests run on virtual time: fast and deterministic.

use core::time::Duration;

/// A point in time, in microseconds since an arbitrary epoch chosen by the [`Clock`].
///
/// Arithmetic saturates: adding a huge duration gives [`Instant::MAX`] ("never"), never a
/// wrap-around that would turn a far deadline into one in the past.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Instant {
    micros: u64,
}

impl Instant {
    /// The epoch of the clock.
    pub const ZERO: Instant = Instant { micros: 0 };
    /// A deadline that never passes.
    pub const MAX: Instant = Instant { micros: u64::MAX };

    /// An instant `micros` microseconds after the epoch.
    pub const fn from_micros(micros: u64) -> Self {
        Instant { micros }
    }

    /// An instant `millis` milliseconds after the epoch (saturating).
    pub const fn from_millis(millis: u64) -> Self {
        Instant {
            micros: millis.saturating_mul(1000),
        }
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.micros
    }

    /// This instant plus `d`, saturating at [`Instant::MAX`].
    pub fn saturating_add(self, d: Duration) -> Instant {
        let add = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        Instant {
            micros: self.micros.saturating_add(add),
        }
    }

    /// Time elapsed from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.micros.saturating_sub(earlier.micros))
    }
}

impl core::ops::Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        self.saturating_add(rhs)
    }
}

/// A monotonic clock supplied by the caller.
///
/// `now` must never go backwards. Resolution is up to the implementation; the crate's
/// deadlines are in the range of milliseconds to minutes.
pub trait Clock {
    /// The current time.
    fn now(&self) -> Instant;

    /// Called by the blocking client on every turn of its wait loop while nothing is ready.
    /// The default does nothing (a pure spin). Override it to save power or CPU: sleep
    /// briefly (a host tool: `thread::sleep` of 1 ms), or wait for an interrupt. Keep it
    /// shorter than the UART's hardware FIFO lasts at the line rate (128 bytes at 921600
    /// baud fill in 1.4 ms), unless the receive path is interrupt-driven into a ring buffer.
    fn relax(&self) {}
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> Instant {
        (**self).now()
    }
    fn relax(&self) {
        (**self).relax()
    }
}

impl<C: Clock + ?Sized> Clock for &mut C {
    fn now(&self) -> Instant {
        (**self).now()
    }
    fn relax(&self) {
        (**self).relax()
    }
}

/// A clock that can also wait, for the async client.
///
/// `wait_until` must complete no earlier than `deadline` (by this clock's `now`). It must be
/// cancel-safe: the async client drops it when bytes arrive first.
#[allow(async_fn_in_trait)]
pub trait AsyncClock: Clock {
    /// Completes once `now() >= deadline`.
    async fn wait_until(&mut self, deadline: Instant);
}

impl<C: AsyncClock + ?Sized> AsyncClock for &mut C {
    async fn wait_until(&mut self, deadline: Instant) {
        (**self).wait_until(deadline).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturating_arithmetic() {
        assert_eq!(Instant::MAX + Duration::from_secs(1), Instant::MAX);
        assert_eq!(
            Instant::from_millis(5) + Duration::from_millis(7),
            Instant::from_millis(12)
        );
        assert_eq!(
            Instant::from_millis(5).saturating_duration_since(Instant::from_millis(9)),
            Duration::ZERO
        );
        assert_eq!(Instant::from_millis(u64::MAX), Instant::MAX);
    }
}
