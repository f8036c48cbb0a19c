//! The vendor-neutral AT layer: framing engine, typed-command trait, parameter parsing and
//! time.
//!
//! Nothing in here knows about Quectel; a modem family adds its commands, URCs and error
//! codes in its own module (see [`crate::quectel`]).

pub mod command;
pub mod engine;
pub mod params;
pub mod time;

pub use command::{AtCommand, DataLength, DataPhase, EncodeError, Encoder, Lines, ResponseLines};
pub use engine::{DataState, Engine, ErrorCode, Event, Final, Prompt};
pub use time::{AsyncClock, Clock, Instant};

/// Why a response line could not be parsed. Carries no modem bytes, so it is `Copy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ParseError {
    /// A required field is missing.
    #[error("a required field is missing")]
    MissingField,
    /// A required response line is missing.
    #[error("a required response line is missing")]
    MissingLine,
    /// A line did not have the expected prefix.
    #[error("unexpected response line")]
    UnexpectedLine,
    /// A number field holds something other than digits.
    #[error("a number field is not a number")]
    BadNumber,
    /// A number does not fit the field's type or range.
    #[error("a number is out of range")]
    OutOfRange,
    /// A field is not valid UTF-8 text.
    #[error("a field is not text")]
    NotText,
    /// A quoted field has no closing quote.
    #[error("a quoted field is not closed")]
    Unterminated,
    /// A field is malformed (for example text after a closing quote).
    #[error("a field is malformed")]
    Malformed,
    /// More fields or lines than the response has.
    #[error("unexpected trailing data")]
    TrailingData,
    /// A field holds a value this crate does not know, where no open enum applies.
    #[error("unexpected value")]
    UnexpectedValue,
}
