//! Identity: which SIMCom module this is, and so which command set it speaks
//! (`simcom-at.md` §1).
//!
//! ```
//! use cellular_ota::simcom::Family;
//! assert_eq!(Family::from_identity("SIMCOM_SIM7600G-H", "LE20B04SIM7600G22"), Some(Family::Sim7600));
//! assert_eq!(Family::from_identity("A7670E-LASE", "A011B07A7670M7"), Some(Family::A76xx));
//! // SIM7000: the firmware decides between AT+SH* and the SIM800-style set.
//! assert_eq!(Family::from_identity("SIM7000E", "1351B05SIM7000E"), Some(Family::Sh));
//! assert_eq!(Family::from_identity("SIM7000A", "1351B01SIM7000A"), Some(Family::Sim800));
//! ```

use super::Family;
use crate::at::params::after_prefix;
use crate::at::{AtCommand, EncodeError, Encoder, Lines, ParseError, ResponseLines};

/// `AT+SIMCOMATI` (SIM7600, A76xx, SIM767x): `Manufacturer: …`, `Model: …`, `Revision: …`
/// lines (others, such as `IMEI:` and `+GCAP:`, are skipped).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SimcomAti;

/// The answer of [`SimcomAti`]; a field the module did not print is empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Identity<'a> {
    /// `Manufacturer:`, e.g. `SIMCOM INCORPORATED`.
    pub manufacturer: &'a str,
    /// `Model:`, e.g. `SIMCOM_SIM7600G-H` or `A7670E-LASE`.
    pub model: &'a str,
    /// `Revision:`, e.g. `LE20B04SIM7600G22`.
    pub revision: &'a str,
}

impl AtCommand for SimcomAti {
    type Response<'a> = Identity<'a>;
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+SIMCOMATI")
    }
    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Unprefixed
    }
    fn parse<'a>(&self, lines: Lines<'a>) -> Result<Identity<'a>, ParseError> {
        let mut id = Identity::default();
        for line in lines {
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let key = line[..colon].trim_ascii();
            let value = core::str::from_utf8(line[colon + 1..].trim_ascii())
                .map_err(|_| ParseError::NotText)?;
            if key.eq_ignore_ascii_case(b"Manufacturer") {
                id.manufacturer = value;
            } else if key.eq_ignore_ascii_case(b"Model") {
                id.model = value;
            } else if key.eq_ignore_ascii_case(b"Revision") {
                id.revision = value;
            }
        }
        if id.model.is_empty() {
            return Err(ParseError::MissingLine);
        }
        Ok(id)
    }
}

/// The revision text of an `AT+GMR` / `AT+CGMR` answer line: `Revision:1951B03SIM7070`
/// (SIM7000, SIM7070) and `+CGMR: LE11B02SIM7600CE-A_161220` (SIM7600) lose their prefix;
/// any other line is returned trimmed.
pub fn revision_text(line: &[u8]) -> &[u8] {
    let line = line.trim_ascii();
    after_prefix(line, b"Revision:")
        .or_else(|| after_prefix(line, b"+CGMR:"))
        .map_or(line, <[u8]>::trim_ascii)
}

/// The SIM7000 firmware from which it speaks `AT+SH*`: 1351B03 for the A variant, 1529B01
/// for G, 1351B05 for E (botletics issue 112, `simcom-at.md` §1).
const SH_FIRMWARE: [(u8, (u16, u8)); 3] = [(b'A', (1351, 3)), (b'G', (1529, 1)), (b'E', (1351, 5))];

/// `<build>B<sub>` at the start of a SIM7000 revision (`1351B05SIM7000E`).
fn sim7000_build(revision: &[u8]) -> Option<(u16, u8)> {
    let digits = |s: &[u8]| -> Option<u32> {
        if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        crate::at::params::parse_u32(s).ok()
    };
    let build = u16::try_from(digits(revision.get(..4)?)?).ok()?;
    if !revision.get(4)?.eq_ignore_ascii_case(&b'B') {
        return None;
    }
    let sub = u8::try_from(digits(revision.get(5..7)?)?).ok()?;
    Some((build, sub))
}

fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

impl Family {
    /// The command set of the module with this model and revision (from [`SimcomAti`], or
    /// `AT+CGMM` and `AT+GMR`), or `None` when they do not say: configure the family then.
    ///
    /// A SIM7000 speaks `AT+SH*` from the firmware [`Family::Sh`] names and the SIM800-style
    /// set before it; a SIM7000 revision this crate cannot read, or a variant other than A, G
    /// and E, is `None`.
    pub fn from_identity(model: &str, revision: &str) -> Option<Family> {
        let (m, r) = (model.as_bytes(), revision_text(revision.as_bytes()));
        let either = |needle: &[u8]| contains_ci(m, needle) || contains_ci(r, needle);
        if either(b"SIM7070") || either(b"SIM7080") || either(b"SIM7090") {
            return Some(Family::Sh);
        }
        if either(b"SIM7000") {
            let variant = [m, r].into_iter().find_map(|s| {
                let at = s
                    .windows(7)
                    .position(|w| w.eq_ignore_ascii_case(b"SIM7000"))?;
                s.get(at + 7).map(u8::to_ascii_uppercase)
            })?;
            let (_, gate) = SH_FIRMWARE.iter().find(|(v, _)| *v == variant)?;
            let build = sim7000_build(r)?;
            return Some(if build >= *gate {
                Family::Sh
            } else {
                Family::Sim800
            });
        }
        if either(b"SIM767") || either(b"A76") {
            return Some(Family::A76xx);
        }
        if either(b"SIM7600") || either(b"SIM7500") {
            return Some(Family::Sim7600);
        }
        if either(b"SIM800") {
            return Some(Family::Sim800);
        }
        None
    }
}

/// The first line of an unprefixed answer that is text and not empty, with `label` removed
/// where a module adds it.
fn first_line<'a>(lines: Lines<'a>, labels: &[&[u8]]) -> Result<&'a str, ParseError> {
    for line in lines {
        let mut t = line.trim_ascii();
        for l in labels {
            if let Some(rest) = after_prefix(t, l) {
                t = rest.trim_ascii();
            }
        }
        if !t.is_empty() {
            return core::str::from_utf8(t).map_err(|_| ParseError::NotText);
        }
    }
    Err(ParseError::MissingLine)
}

/// `AT+CGMM`: the model as one line (`SIMCOM_SIM7600G-H`, `SIM7070`, `SIM800L`; a
/// `+CGMM:` label is removed where a firmware adds one). Every SIMCom family answers it;
/// `AT+SIMCOMATI` only SIM7600 and A76xx.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ModelQuery;

impl AtCommand for ModelQuery {
    type Response<'a> = &'a str;
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+CGMM")
    }
    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Unprefixed
    }
    fn parse<'a>(&self, lines: Lines<'a>) -> Result<&'a str, ParseError> {
        first_line(lines, &[b"+CGMM:"])
    }
}

/// `AT+CGMR`: the firmware revision (`+CGMR: LE11B02SIM7600CE-A_161220`,
/// `Revision:1951B03SIM7070`), without its label ([`revision_text`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RevisionQuery;

impl AtCommand for RevisionQuery {
    type Response<'a> = &'a str;
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+CGMR")
    }
    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Unprefixed
    }
    fn parse<'a>(&self, lines: Lines<'a>) -> Result<&'a str, ParseError> {
        first_line(lines, &[b"+CGMR:", b"Revision:"])
    }
}

/// The SIM's ICCID: `AT+CICCID` → `+ICCID: <iccid>` on SIM7600 and A76xx, `AT+CCID` → the
/// bare digits on SIM7000, SIM7070 and SIM800 (either answer is read from either command).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum IccidQuery {
    /// `AT+CICCID`.
    Ciccid,
    /// `AT+CCID`.
    Ccid,
}

impl AtCommand for IccidQuery {
    type Response<'a> = &'a str;
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(match self {
            IccidQuery::Ciccid => b"AT+CICCID",
            IccidQuery::Ccid => b"AT+CCID",
        })
    }
    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Unprefixed
    }
    fn parse<'a>(&self, lines: Lines<'a>) -> Result<&'a str, ParseError> {
        let id = first_line(lines, &[b"+ICCID:", b"+CCID:"])?;
        if id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Ok(id)
        } else {
            Err(ParseError::UnexpectedValue)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quectel::test_support::encodes;

    #[test]
    fn reads_model_revision_and_iccid() {
        encodes! {
            ModelQuery => b"AT+CGMM";
            RevisionQuery => b"AT+CGMR";
            IccidQuery::Ciccid => b"AT+CICCID";
            IccidQuery::Ccid => b"AT+CCID";
        }
        assert_eq!(
            ModelQuery.parse(Lines::new(b"SIMCOM_SIM7600G-H")),
            Ok("SIMCOM_SIM7600G-H")
        );
        assert_eq!(
            ModelQuery.parse(Lines::new(b"+CGMM: SIM7070")),
            Ok("SIM7070")
        );
        assert_eq!(
            RevisionQuery.parse(Lines::new(b"+CGMR: LE20B04SIM7600G22")),
            Ok("LE20B04SIM7600G22")
        );
        assert_eq!(
            RevisionQuery.parse(Lines::new(b"Revision:1951B03SIM7070")),
            Ok("1951B03SIM7070")
        );
        let iccid = "89860012345678901234";
        assert_eq!(
            IccidQuery::Ciccid.parse(Lines::new(b"+ICCID: 89860012345678901234")),
            Ok(iccid)
        );
        assert_eq!(
            IccidQuery::Ccid.parse(Lines::new(b"89860012345678901234")),
            Ok(iccid)
        );
        assert_eq!(
            IccidQuery::Ccid.parse(Lines::new(b"")),
            Err(ParseError::MissingLine)
        );
        assert_eq!(
            IccidQuery::Ccid.parse(Lines::new(b"8986 0012")),
            Err(ParseError::UnexpectedValue)
        );
    }

    #[test]
    fn reads_the_identity() {
        encodes! { SimcomAti => b"AT+SIMCOMATI"; }
        let text = b"Manufacturer: SIMCOM INCORPORATED\nModel: SIMCOM_SIM7600G-H\n\
                     Revision: LE20B04SIM7600G22\nIMEI: 861234567890123\n+GCAP: +CGSM";
        assert_eq!(
            SimcomAti.parse(Lines::new(text)),
            Ok(Identity {
                manufacturer: "SIMCOM INCORPORATED",
                model: "SIMCOM_SIM7600G-H",
                revision: "LE20B04SIM7600G22",
            })
        );
        assert_eq!(
            SimcomAti.parse(Lines::new(b"IMEI: 1")),
            Err(ParseError::MissingLine)
        );
        assert_eq!(revision_text(b"Revision:1951B03SIM7070"), b"1951B03SIM7070");
        assert_eq!(
            revision_text(b"+CGMR: LE11B02SIM7600CE-A_161220"),
            b"LE11B02SIM7600CE-A_161220"
        );
    }

    #[test]
    fn tells_the_family() {
        let cases: &[(&str, &str, Option<Family>)] = &[
            (
                "SIMCOM_SIM7600G-H",
                "LE20B04SIM7600G22",
                Some(Family::Sim7600),
            ),
            (
                "SIMCOM_SIM7600CE-A",
                "+CGMR: LE11B02SIM7600CE-A_161220",
                Some(Family::Sim7600),
            ),
            ("A7670E-LASE", "A011B07A7670M7", Some(Family::A76xx)),
            ("A7608SA-H", "A50C4B12A7600M7", Some(Family::A76xx)),
            ("SIM7670G-MNGV", "2374B04SIM767XM5A_M", Some(Family::A76xx)),
            ("SIM7070G", "Revision:1951B03SIM7070", Some(Family::Sh)),
            ("SIM7080G", "1951B02SIM7080G", Some(Family::Sh)),
            ("SIM7000E", "Revision:1351B05SIM7000E", Some(Family::Sh)),
            ("SIM7000A", "1351B03SIM7000A", Some(Family::Sh)),
            ("SIM7000A", "1351B01SIM7000A", Some(Family::Sim800)),
            ("SIM7000G", "1529B11SIM7000G", Some(Family::Sh)),
            ("SIM7000G", "1418B05SIM7000G", Some(Family::Sim800)),
            ("SIM7000E", "unknown", None),
            ("SIM7000C", "1351B05SIM7000C", None),
            ("SIM800L", "1418B05SIM800L24", Some(Family::Sim800)),
            ("EC200U", "EC200UCNAAR02A01M08", None),
        ];
        for (model, revision, want) in cases {
            assert_eq!(
                Family::from_identity(model, revision),
                *want,
                "{model} {revision}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn any_identity_is_answered(model in ".{0,40}", revision in ".{0,40}") {
            let _ = Family::from_identity(&model, &revision);
        }
    }
}
