//! Quectel EC200U / EC200T / EG06 (and the EC2x / BG9x relatives): typed commands, URCs and
//! every documented error code.
//!
//! Facts come from `quectel-at.md` (the project's reference); section numbers in the docs
//! below point into it.

pub mod bring_up;
pub mod error;
pub mod file;
pub mod fota;
pub mod general;
pub mod http;
mod http_modem;
pub mod log_decoder;
pub mod pdp;
pub mod ssl;
pub mod urc;

pub(crate) mod test_support;

pub use http_modem::{QuectelBody, QuectelHttp};

/// The chipset family inside a Quectel module. Behaviour (FOTA codes and URCs, HTTP range
/// support, file-system paths) differs per family, not per module name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ChipFamily {
    /// Qualcomm MDM9x07 / LTE-A: EC2x, EG9x, EG25-G, EG06/EP06/EM06, EG18, BG96/BG95.
    Qualcomm,
    /// ASR "LTE Standard(A)": EC200T, EC200A/N, EC600N/M, EC800K/M, EG800K, EG915N.
    Asr,
    /// Unisoc/RDA UIS8910: EC200U, EG915U, EG912U, EC600U.
    Unisoc,
}

impl ChipFamily {
    /// The family of a module, from the model line of `ATI` or the start of its revision
    /// string (`EC200UCNAAR01A04M08`). `None` for models this crate does not know.
    pub fn from_model(model: &str) -> Option<ChipFamily> {
        let m = model.trim().as_bytes();
        let starts = |p: &[u8]| m.len() >= p.len() && m[..p.len()].eq_ignore_ascii_case(p);
        const UNISOC: [&[u8]; 4] = [b"EC200U", b"EG915U", b"EG912U", b"EC600U"];
        const ASR: [&[u8]; 8] = [
            b"EC200T", b"EC200A", b"EC200N", b"EC600N", b"EC600M", b"EC800K", b"EC800M", b"EG800K",
        ];
        const QUALCOMM: [&[u8]; 12] = [
            b"EC20", b"EC21", b"EC25", b"EG91", b"EG95", b"EG25", b"EG06", b"EP06", b"EM06",
            b"EG18", b"BG96", b"BG95",
        ];
        if UNISOC.iter().any(|p| starts(p)) {
            Some(ChipFamily::Unisoc)
        } else if ASR.iter().any(|p| starts(p)) || starts(b"EG915N") {
            Some(ChipFamily::Asr)
        } else if QUALCOMM.iter().any(|p| starts(p)) || starts(b"EM05") {
            Some(ChipFamily::Qualcomm)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ChipFamily;

    #[test]
    fn families() {
        assert_eq!(
            ChipFamily::from_model("EC200UCNAAR01A04M08"),
            Some(ChipFamily::Unisoc)
        );
        assert_eq!(ChipFamily::from_model("EC200T"), Some(ChipFamily::Asr));
        assert_eq!(ChipFamily::from_model("EG06"), Some(ChipFamily::Qualcomm));
        assert_eq!(ChipFamily::from_model("SIM7600"), None);
    }
}
