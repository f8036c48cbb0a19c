//! The crate's clocks: [`HalClock`] for the blocking client, [`EmbassyClock`] for the async
//! one. Both count microseconds since boot; each client uses one clock only, so the two
//! time bases never meet.

use cellular_ota::at::{AsyncClock, Clock, Instant};

/// esp-hal's monotonic system timer (`esp_hal::time::Instant`), microsecond resolution.
#[derive(Clone, Copy, Debug, Default)]
pub struct HalClock;

impl Clock for HalClock {
    fn now(&self) -> Instant {
        Instant::from_micros(
            esp_hal::time::Instant::now()
                .duration_since_epoch()
                .as_micros(),
        )
    }
}

/// embassy-time (driven by esp-rtos): `wait_until` sleeps on an embassy `Timer`, so other
/// tasks run while the client waits for a deadline.
#[derive(Clone, Copy, Debug, Default)]
pub struct EmbassyClock;

impl Clock for EmbassyClock {
    fn now(&self) -> Instant {
        Instant::from_micros(embassy_time::Instant::now().as_micros())
    }
}

impl AsyncClock for EmbassyClock {
    async fn wait_until(&mut self, deadline: Instant) {
        // `Instant::MAX` (no deadline) does not convert to ticks: wait forever.
        let at = embassy_time::Instant::try_from_micros(deadline.as_micros())
            .unwrap_or(embassy_time::Instant::MAX);
        embassy_time::Timer::at(at).await
    }
}
