//! When to try again: the crate's retry policy ([`cellular_ota::retry`]) driven by this
//! firmware.
//!
//! * After a **transient** failure (the link dropped, the modem rebooted, a deadline
//!   passed, the server answered 5xx, bring-up could not register): wait the next delay of
//!   [`Backoff::new`] (at once, then 30 s, 2 min, 10 min, then every hour; each ±20 % from
//!   the chip's RNG so a fleet does not come back all at once), bring the modem up again
//!   and resume. An attempt that made more bytes durable than any before starts the
//!   schedule over, so a link that drops now and then still finishes quickly.
//! * After a **permanent** failure (a refused manifest, an image that does not fit, a 404,
//!   an image the bootloader would not start, a SIM that wants its PIN or PUK): report it
//!   and wait for the next regular check ([`config::UPDATE_CHECK_INTERVAL`]).
//! * After a success (up to date): the next regular check.

use core::time::Duration;

use cellular_ota::retry::{Backoff, Retry};
use esp_hal::rng::Rng;
use esp_println::println;

use crate::config;

/// The retry state of the update loop.
#[derive(Debug)]
pub struct Schedule {
    backoff: Backoff<'static>,
    durable: u32,
    rng: Rng,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule::new()
    }
}

impl Schedule {
    /// A fresh schedule.
    pub fn new() -> Self {
        Schedule {
            backoff: Backoff::new(),
            durable: 0,
            rng: Rng::new(),
        }
    }

    /// After a failed attempt (update or bring-up): how long to wait before the next one.
    /// `durable` is how many image bytes the attempt left in flash (0 for bring-up).
    pub fn after_failure(&mut self, retry: Retry, durable: u32) -> Duration {
        if durable > self.durable {
            self.durable = durable;
            self.backoff.reset();
        }
        match retry {
            Retry::Transient => {
                let wait = self.backoff.next_delay(self.rng.random());
                println!(
                    "transient failure {} in a row: next attempt in {} s",
                    self.backoff.failures(),
                    wait.as_secs()
                );
                wait
            }
            Retry::Permanent => {
                self.backoff.reset();
                self.durable = 0;
                println!(
                    "permanent failure: not retried; next regular check in {} s",
                    config::UPDATE_CHECK_INTERVAL.as_secs()
                );
                config::UPDATE_CHECK_INTERVAL
            }
        }
    }

    /// After a successful check: the next regular one.
    pub fn after_success(&mut self) -> Duration {
        self.backoff.reset();
        self.durable = 0;
        println!(
            "next check in {} s",
            config::UPDATE_CHECK_INTERVAL.as_secs()
        );
        config::UPDATE_CHECK_INTERVAL
    }
}
