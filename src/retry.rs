//! When to try again: every failure classified as transient or permanent, and a backoff
//! schedule with jitter that the caller drives.
//!
//! A device in the field cannot ask anyone what went wrong. After a failed update (or
//! bring-up) it has two sensible choices:
//!
//! * **[`Retry::Transient`]**: something outside the device may be different next time:
//!   the link dropped, the modem rebooted, a deadline passed, the server answered 5xx,
//!   408 or 429, the body came up short. Try again after the next [`Backoff`] delay (the
//!   update resumes from what is durable in flash), bringing the modem up again first
//!   (bring-up itself waits for a rebooting modem and for registration).
//! * **[`Retry::Permanent`]**: the same request will get the same answer: the
//!   configuration or the manifest was refused, the image does not fit, the server says
//!   404, the image is not one the bootloader would start. Report it and wait for the next
//!   regular check (a new release, a fixed server) instead of hammering the server.
//!
//! ```
//! use core::time::Duration;
//! use cellular_ota::retry::{Backoff, Retry};
//!
//! let mut backoff = Backoff::new();
//! // Transient failures in a row; `random` comes from the device's RNG (here the middle of
//! // the jitter band, which is the schedule's own value).
//! let waits: [Duration; 6] = core::array::from_fn(|_| backoff.next_delay(0x8000_0000));
//! assert_eq!(waits[0], Duration::ZERO); // one immediate retry
//! assert_eq!(waits[1], Duration::from_secs(30));
//! assert_eq!(waits[4], Duration::from_secs(3600));
//! assert_eq!(waits[5], Duration::from_secs(3600)); // capped
//! backoff.reset(); // after a success, or an attempt that made bytes durable
//! assert_eq!(backoff.failures(), 0);
//! # let _ = Retry::Transient;
//! ```
//!
//! A device loop: bring the modem up, update, and on a transient failure wait
//! [`Backoff::next_delay`]; call [`Backoff::reset`] when an attempt made progress (more
//! bytes durable than before), so a link that drops now and then still finishes quickly.
//! On a permanent failure, report it and wait for the regular check instead.
//!
//! How each failure is classified is documented on [`Classify`]'s implementations; the
//! classification never looks at Debug text, only at typed values.

use core::time::Duration;

use crate::client::{Error as ClientError, ModemCode, Rejection};
use crate::quectel::error::HttpError;
use crate::update::{Failure, Stage, UpdateError};

/// Whether another attempt can succeed where this one failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Retry {
    /// The cause may be gone next time (link, modem reboot, timeout, server 5xx): retry
    /// after a [`Backoff`] delay.
    Transient,
    /// The same attempt will fail the same way (refused manifest, image too large, 404,
    /// an image the bootloader would not start, a bad configuration): report it and do not
    /// retry until something changes (a new release, a fixed server or configuration).
    Permanent,
}

impl Retry {
    /// True for [`Retry::Transient`].
    pub fn is_transient(self) -> bool {
        self == Retry::Transient
    }
}

/// A failure that knows whether retrying can help.
pub trait Classify {
    /// Transient or permanent.
    fn retry(&self) -> Retry;
}

impl Classify for core::convert::Infallible {
    fn retry(&self) -> Retry {
        match *self {}
    }
}

/// The default schedule: one immediate retry (a modem reboot or a dropped link is usually
/// over by the time bring-up has waited for the modem and the network), then 30 s, 2 min,
/// 10 min, and 1 h for every further failure.
pub const DEFAULT_DELAYS: [Duration; 5] = [
    Duration::ZERO,
    Duration::from_secs(30),
    Duration::from_secs(2 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(60 * 60),
];

/// The default jitter: each delay is spread uniformly over ±20 % of its value, so a fleet
/// that failed together (a server outage) does not come back together.
pub const DEFAULT_JITTER_PERCENT: u8 = 20;

/// A backoff schedule with jitter. The caller drives it: after a transient failure, wait
/// [`Backoff::next_delay`]; after a success, [`Backoff::reset`].
///
/// The delays are a list; after the last one the last delay repeats (the cap), so a
/// device keeps trying forever, at most once per capped interval. The randomness comes
/// from the caller (`random`: any `u32` from the device's RNG), so the schedule is
/// deterministic in tests.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Backoff<'a> {
    delays: &'a [Duration],
    jitter_percent: u8,
    failures: u32,
}

impl Default for Backoff<'static> {
    fn default() -> Self {
        Backoff::new()
    }
}

impl Backoff<'static> {
    /// [`DEFAULT_DELAYS`] with [`DEFAULT_JITTER_PERCENT`].
    pub const fn new() -> Self {
        Backoff {
            delays: &DEFAULT_DELAYS,
            jitter_percent: DEFAULT_JITTER_PERCENT,
            failures: 0,
        }
    }
}

impl<'a> Backoff<'a> {
    /// A schedule of `delays` (the last repeats; an empty list means no wait) with
    /// [`DEFAULT_JITTER_PERCENT`].
    pub const fn with_delays(delays: &'a [Duration]) -> Self {
        Backoff {
            delays,
            jitter_percent: DEFAULT_JITTER_PERCENT,
            failures: 0,
        }
    }

    /// The same schedule with the jitter set to ±`percent` % (capped at 100; 0 = none).
    pub const fn with_jitter(mut self, percent: u8) -> Self {
        self.jitter_percent = if percent > 100 { 100 } else { percent };
        self
    }

    /// Failures counted since the last [`Backoff::reset`].
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The delay the next failure will get, before jitter.
    pub fn base_delay(&self) -> Duration {
        let i = (self.failures as usize).min(self.delays.len().saturating_sub(1));
        self.delays.get(i).copied().unwrap_or(Duration::ZERO)
    }

    /// Counts a failure and returns how long to wait before the next attempt: the
    /// schedule's delay for this failure, moved uniformly within ±jitter by `random`
    /// (`0` gives the shortest wait, `u32::MAX` the longest, `0x8000_0000` the middle).
    pub fn next_delay(&mut self, random: u32) -> Duration {
        let base = self.base_delay();
        self.failures = self.failures.saturating_add(1);
        let ms = base.as_millis().min(u128::from(u64::MAX)) as u64;
        let span = ms / 100 * u64::from(self.jitter_percent)
            + ms % 100 * u64::from(self.jitter_percent) / 100;
        // Map `random` onto [ms - span, ms + span] (integer maths; span <= ms).
        let offset = 2 * u128::from(span) * u128::from(random) / u128::from(u32::MAX);
        let total = u128::from(ms - span) + offset;
        Duration::from_millis(total.min(u128::from(u64::MAX)) as u64)
    }

    /// Starts the schedule over (after a success).
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// HTTP statuses worth retrying: 408 Request Timeout, 425 Too Early, 429 Too Many
/// Requests, and every 5xx. Every other status (404, 403, 410, a redirect the modem did
/// not follow, ...) is permanent.
pub fn status_retry(status: u16) -> Retry {
    match status {
        408 | 425 | 429 | 500..=599 => Retry::Transient,
        _ => Retry::Permanent,
    }
}

/// The modem's HTTP error codes (quectel-at.md §5.1) are all transient: timeouts, DNS,
/// sockets, a busy or deactivated network, and codes not in the table. Even the URL and
/// parameter codes (711 to 713, 730) are: the update flow checks its URLs and parameters
/// before it sends anything ([`UpdateConfig::validate`](crate::update::UpdateConfig::validate)),
/// so the modem reporting them means something on its side (the EG800K answers a redirect
/// to a relative `Location` with 711), and the capped backoff bounds the cost.
pub fn http_retry(_error: HttpError) -> Retry {
    Retry::Transient
}

/// A client error: transport errors, timeouts, unparsable answers and refused commands
/// are transient (the modem may be rebooting or busy), except a command that could not be
/// encoded (bad parameters), an answer too large for the response buffer (it will not fit
/// next time either) and `+CME ERROR: 4` (operation not supported).
pub fn client_retry<E>(error: &ClientError<E>) -> Retry {
    match error {
        ClientError::Encode(_) | ClientError::ResponseTooLarge { .. } => Retry::Permanent,
        ClientError::Rejected(Rejection::Cme(ModemCode::Numeric(4))) => Retry::Permanent,
        _ => Retry::Transient,
    }
}

/// The update flow's failures:
///
/// | failure | retry |
/// |---|---|
/// | `Config`, `Manifest`, `TooLarge`, `NoSpace` | permanent |
/// | `Status(s)` | [`status_retry`] (5xx, 408, 425, 429 transient) |
/// | `Http(e)` | [`http_retry`] |
/// | `HttpClient(e)` | `e.retry`, as the modem's implementation classified the code |
/// | `Modem(e)` | [`client_retry`] |
/// | `Length` at [`Stage::HttpStatus`] or [`Stage::Manifest`] (the server's length is not the manifest's, or the manifest is too long) | permanent |
/// | `Length` elsewhere (a body cut short) | transient |
/// | `ModemRebooted`, `LinkLost`, `BytesLost`, `Checksum` | transient |
/// | `HashMismatch` | transient: a byte changed on the UART (noise on a long cable, a baud-rate error) looks the same as a server file that is not the one the manifest describes; the next attempt downloads it again, and the capped backoff bounds the cost of the second case |
/// | `WrongBase` | permanent: the running image stays the same |
/// | `Patch(e)` | permanent for a patch this decoder refuses (`Unsupported*`, `TargetTooLarge`); transient for a malformed one, as `HashMismatch` |
/// | `Sink(e)` | the sink error's own [`Classify`] |
impl Classify for UpdateError {
    fn retry(&self) -> Retry {
        match &self.failure {
            Failure::Config(_)
            | Failure::Manifest(_)
            | Failure::TooLarge { .. }
            | Failure::NoSpace { .. }
            | Failure::Unsupported(_)
            | Failure::WrongBase { .. } => Retry::Permanent,
            #[cfg(feature = "delta")]
            Failure::Patch(e) => {
                use crate::delta::DeltaError as D;
                match e {
                    D::UnsupportedPatchType(_)
                    | D::UnsupportedCompression(_)
                    | D::UnsupportedHeatshrink { .. }
                    | D::UnsupportedDataFormat
                    | D::TargetTooLarge(_) => Retry::Permanent,
                    _ => Retry::Transient,
                }
            }
            Failure::Status(s) => status_retry(*s),
            Failure::Http(e) => http_retry(*e),
            Failure::HttpClient(e) => e.retry,
            Failure::Modem(e) => client_retry(e),
            Failure::Length { .. } => match self.stage {
                Stage::HttpStatus | Stage::Manifest => Retry::Permanent,
                _ => Retry::Transient,
            },
            Failure::ModemRebooted
            | Failure::LinkLost
            | Failure::BytesLost { .. }
            | Failure::Checksum
            | Failure::HashMismatch => Retry::Transient,
            Failure::Sink(e) => e.retry(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_without_jitter_is_the_list_then_the_cap() {
        let mut b = Backoff::new().with_jitter(0);
        let got: [u64; 7] = core::array::from_fn(|_| b.next_delay(12345).as_secs());
        assert_eq!(got, [0, 30, 120, 600, 3600, 3600, 3600]);
        assert_eq!(b.failures(), 7);
        b.reset();
        assert_eq!(b.next_delay(u32::MAX), Duration::ZERO);
    }

    #[test]
    fn jitter_stays_within_its_band() {
        let mut lo = Backoff::new();
        let mut hi = Backoff::new();
        let mut mid = Backoff::new();
        for b in [&mut lo, &mut hi, &mut mid] {
            assert_eq!(b.next_delay(u32::MAX), Duration::ZERO);
        }
        assert_eq!(lo.next_delay(0), Duration::from_secs(24));
        assert_eq!(hi.next_delay(u32::MAX), Duration::from_secs(36));
        let m = mid.next_delay(0x8000_0000).as_millis();
        assert!((29_999..=30_001).contains(&m), "{m}");
    }

    #[test]
    fn empty_and_extreme_schedules() {
        let mut none = Backoff::with_delays(&[]);
        assert_eq!(none.next_delay(u32::MAX), Duration::ZERO);
        const HUGE: [Duration; 1] = [Duration::MAX];
        let mut huge = Backoff::with_delays(&HUGE).with_jitter(200);
        // Saturates at u64::MAX milliseconds without overflowing.
        let d = huge.next_delay(u32::MAX);
        assert!(d >= Duration::from_millis(u64::MAX / 2));
        for _ in 0..5 {
            huge.next_delay(0);
        }
    }

    #[test]
    fn statuses() {
        for s in [500, 502, 503, 504, 408, 425, 429] {
            assert_eq!(status_retry(s), Retry::Transient, "{s}");
        }
        for s in [400, 401, 403, 404, 410, 301, 302, 200] {
            assert_eq!(status_retry(s), Retry::Permanent, "{s}");
        }
    }

    #[test]
    fn client_errors() {
        let cme = |n| ClientError::<()>::Rejected(Rejection::Cme(ModemCode::Numeric(n)));
        assert_eq!(client_retry(&ClientError::<()>::Timeout), Retry::Transient);
        assert_eq!(client_retry(&ClientError::Io(())), Retry::Transient);
        assert_eq!(client_retry(&cme(702)), Retry::Transient);
        assert_eq!(client_retry(&cme(711)), Retry::Transient);
        assert_eq!(client_retry(&cme(4)), Retry::Permanent);
        assert_eq!(client_retry(&cme(3)), Retry::Transient);
        assert_eq!(
            client_retry(&ClientError::<()>::Encode(crate::at::EncodeError::Empty)),
            Retry::Permanent
        );
    }
}
