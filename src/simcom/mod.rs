//! SIMCom SIM7600, A76xx / SIM767x, SIM7000, SIM7070 / SIM7080 / SIM7090 and SIM800: what the
//! modules report, typed.
//!
//! Facts come from `simcom-at.md` (the project's reference); section numbers in the docs
//! below point into it. Built so far: the modules' error tables ([`error`]), their
//! unsolicited result codes ([`urc`]), identity and the command set it implies
//! ([`general`], [`Family::from_identity`]), and the HTTP(S) commands for `AT+HTTP*`
//! ([`http`]) and `AT+SH*` / `AT+HTTPTOFS` ([`sh`]), body reads included: `AT+HTTPREAD` and
//! `AT+SHREAD` answer `OK` first and then counted pieces (`+HTTPREAD: DATA,<n>`,
//! `+HTTPREAD: <n>`, `+SHREAD: <n>`), which the engine frames by byte count
//! ([`DataLength::Chunked`](crate::at::DataLength::Chunked)) and the clients read with
//! `read_data` / `send_receive` like any payload; data connections ([`pdp`]) and TLS
//! settings in both dialects ([`ssl`]); the update flow's
//! [`HttpModem`](crate::update::HttpModem) for these modules ([`SimcomHttp`]) and their
//! steps of [`crate::bring_up`] ([`bring_up::Simcom`]); the module's own firmware upgrade
//! ([`fota`]).

pub mod bring_up;
pub mod error;
pub mod fota;
pub mod general;
pub mod http;
pub mod http_modem;
pub mod pdp;
pub mod sh;
pub mod ssl;
pub mod urc;

pub use http_modem::{SimcomBody, SimcomHttp};

use crate::at::{EncodeError, Encoder};

/// Writes `name` quoted as a file name without a directory: not empty, no `/` or `\`, and
/// otherwise as [`Encoder::quoted`] checks it (at most `max` bytes, no quote or control
/// byte).
fn quoted_file_name(enc: &mut Encoder<'_>, name: &str, max: usize) -> Result<(), EncodeError> {
    if name.is_empty() {
        return Err(EncodeError::Empty);
    }
    if let Some(p) = name.bytes().position(|c| c == b'/' || c == b'\\') {
        return Err(EncodeError::ForbiddenByte {
            byte: name.as_bytes()[p],
            position: p,
        });
    }
    enc.quoted(name, max)
}

/// Which command set a SIMCom module speaks (`simcom-at.md` §1): the model alone does not
/// say, since SIM7000 firmware moved from the SIM800-style set to `AT+SH*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Family {
    /// SIM7600E/G/G-H (Qualcomm): `AT+HTTP*`, reads framed `+HTTPREAD: DATA,<n>`.
    Sim7600,
    /// A7670/A7672/A7608/A7600 and SIM7670/SIM7672 (Cat-1): `AT+HTTP*`, reads framed
    /// `+HTTPREAD: <n>`, `AT+CFOTA`.
    A76xx,
    /// SIM7000 with firmware from 1351B03 (A), 1529B01 (G), 1351B05 (E), and
    /// SIM7070/SIM7080/SIM7090: `AT+SH*`, `AT+HTTPTOFS`, `AT+CNACT`.
    Sh,
    /// SIM800 and early SIM7000 firmware: `AT+SAPBR` bearer and the SIM800-style
    /// `AT+HTTP*` (`+HTTPREAD: <n>`, `BREAK` resume).
    Sim800,
}
