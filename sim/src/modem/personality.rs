//! Per-module behaviour of the simulated modem.
//!
//! Where the reference (`quectel-at.md`) has no source for a module, the choice made here is
//! marked **assumed**; [`Personality`]'s docs list them all in one table.

use cellular_ota::quectel::ChipFamily;
use cellular_ota::simcom::Family as SimcomFamily;

/// Which module the simulator pretends to be.
///
/// | | [`Ec200u`](Self::Ec200u) (Unisoc) | [`Ec200t`](Self::Ec200t) (ASR) | [`Eg06`](Self::Eg06) (Qualcomm) |
/// |---|---|---|---|
/// | `ATI` model / revision | `EC200U` / `EC200UCNAAR01A04M08` (§2.2, unconfirmed) | `EC200T` / `EC200TCNDAR02A01M16` (assumed, the fixture's post-FOTA revision minus one) | `EG06` / `EG06ELAR04A05M4G` (assumed) |
/// | boot URC order (§2.1) | RDY, +CFUN, +CPIN, +QUSIM, SMS DONE, PB DONE (EG25-G order, assumed) | RDY, +CFUN, +CPIN, +QUSIM, PB DONE, SMS DONE (PB first as in an RG520N example, assumed) | RDY, +CPIN, +QUSIM, +CFUN, SMS DONE, PB DONE (EG18 after DFOTA) |
/// | `AT+QHTTPGETEX` (§4.4, §11.1) | **not supported → `ERROR`** (not confirmed for EC200U; the simulator takes the conservative side) | supported (ASR Cat.1 measured) | supported (assumed: EC2x command list has "range GET"; §11.9 says EG06 HTTP matches EC2x) |
/// | redirects (§4.9) | not followed: the 3xx is the result (assumed) | follows absolute `Location` only; relative → `+CME ERROR: 711` at once (EG800K measured) | not followed (assumed) |
/// | extra `AT+QHTTPCFG` names (§4.1) | `rspout/auto`, `closed/ind`, `reqheader/add|remove` (assumed, "likely EC200U") | same (ASR Cat.1) | `custom_header`, `auth`, `closewaittime`, `windowsize` (EC25/EG25 lists) |
/// | UFS size | 1 MiB (assumed) | 286 720 bytes (EG800K, same ASR family) | 10 MiB (assumed) |
/// | `+QFLST` names | without `UFS:` | with `UFS:` (EG800K) | with `UFS:` (EG18) |
/// | FOTA download URCs (§8.2) | HTTPSTART, DOWNLOADING, HTTPEND | HTTPSTART, DOWNLOADING, HTTPEND | HTTPSTART, HTTPEND (no DOWNLOADING) |
/// | FOTA options `,<mode>,<dl>,<upd>` | accepted | accepted | refused (`ERROR`) |
/// | FOTA upgrade | RDY, START, UPDATING, END, reboot (assumed, §11.2) | RDY, START, UPDATING, **second reboot** (RDY) mid-way, UPDATING, END, reboot (§8.2) | RDY, START, UPDATING, END, reboot (EG18) |
/// | FOTA END codes (§5.3) | like Qualcomm (assumed: no table found) | 505 bad package, 507 wrong source version | 505 bad package, 510 wrong source version |
/// | `fota/path` trap | a value without `:` → `HTTPEND,608` (§8.1) | – | – |
/// | local-package FOTA (`AT+QFOTADL="/…/ufs/<f>"`) | `ERROR` | `ERROR` | supported (Qualcomm) |
/// | host-streamed FOTA (`AT+QFOTADL="FILE:<len>"`, §8.1) | `ERROR` | supported: `OK`, `FILESTART`, bounded receive buffer, CTS or loss (`FILEEND,500`) | `ERROR` |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Personality {
    /// Quectel EC200U (Unisoc UIS8910) — the module on the 7Semi board.
    #[default]
    Ec200u,
    /// Quectel EC200T (ASR "LTE Standard(A)").
    Ec200t,
    /// Quectel EG06 (Qualcomm LTE-A).
    Eg06,
    /// SIMCom SIM7600G-H: `AT+HTTP*`, reads framed `+HTTPREAD: DATA,<n>` (see
    /// [`simcom`](crate::modem::simcom) for the SIMCom model).
    Sim7600,
    /// SIMCom A7670E: `AT+HTTP*`, reads framed `+HTTPREAD: <n>`, a 288 KB body limit.
    A7670,
    /// SIMCom SIM7070G: `AT+SH*`.
    Sim7070,
    /// SIMCom SIM800L: `AT+SAPBR` and the SIM800-style `AT+HTTP*`.
    Sim800,
}

impl Personality {
    /// All personalities.
    pub const ALL: [Personality; 3] = [Personality::Ec200u, Personality::Ec200t, Personality::Eg06];

    /// The SIMCom personalities.
    pub const SIMCOM: [Personality; 4] = [
        Personality::Sim7600,
        Personality::A7670,
        Personality::Sim7070,
        Personality::Sim800,
    ];

    /// The SIMCom command set, for a SIMCom personality.
    pub fn simcom(self) -> Option<SimcomFamily> {
        match self {
            Personality::Sim7600 => Some(SimcomFamily::Sim7600),
            Personality::A7670 => Some(SimcomFamily::A76xx),
            Personality::Sim7070 => Some(SimcomFamily::Sh),
            Personality::Sim800 => Some(SimcomFamily::Sim800),
            _ => None,
        }
    }

    /// The name used on command lines (`ec200u`, `sim7600`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Personality::Ec200u => "ec200u",
            Personality::Ec200t => "ec200t",
            Personality::Eg06 => "eg06",
            Personality::Sim7600 => "sim7600",
            Personality::A7670 => "a7670",
            Personality::Sim7070 => "sim7070",
            Personality::Sim800 => "sim800",
        }
    }

    /// The model line of `ATI`.
    pub fn model(self) -> &'static str {
        match self {
            Personality::Ec200u => "EC200U",
            Personality::Ec200t => "EC200T",
            Personality::Eg06 => "EG06",
            // `AT+CGMM` / the `Model:` line of `AT+SIMCOMATI` (simcom-at.md §1, §11).
            Personality::Sim7600 => "SIMCOM_SIM7600G-H",
            Personality::A7670 => "A7670E-LASE",
            Personality::Sim7070 => "SIM7070G",
            Personality::Sim800 => "SIMCOM_SIM800L",
        }
    }

    /// The factory firmware revision (`AT+GMR`).
    pub fn revision(self) -> &'static str {
        match self {
            Personality::Ec200u => "EC200UCNAAR01A04M08",
            Personality::Ec200t => "EC200TCNDAR02A01M16",
            Personality::Eg06 => "EG06ELAR04A05M4G",
            // Revisions from the reference's logs (simcom-at.md §1, §7).
            Personality::Sim7600 => "LE20B04SIM7600G22",
            Personality::A7670 => "A011B07A7670M7",
            Personality::Sim7070 => "1951B03SIM7070",
            Personality::Sim800 => "1418B05SIM800L24",
        }
    }

    /// The Quectel chipset family (`None` for a SIMCom personality).
    pub fn family(self) -> Option<ChipFamily> {
        match self {
            Personality::Ec200u => Some(ChipFamily::Unisoc),
            Personality::Ec200t => Some(ChipFamily::Asr),
            Personality::Eg06 => Some(ChipFamily::Qualcomm),
            _ => None,
        }
    }

    /// Whether `AT+QHTTPGETEX` exists.
    pub fn supports_getex(self) -> bool {
        !matches!(self, Personality::Ec200u)
    }

    /// Whether the module follows redirects (absolute `Location` only).
    pub fn follows_redirects(self) -> bool {
        matches!(self, Personality::Ec200t)
    }

    /// Total UFS size in bytes.
    pub fn ufs_total(self) -> u64 {
        match self {
            Personality::Ec200u => 1 << 20,
            Personality::Ec200t => 286_720,
            Personality::Eg06 => 10 << 20,
            // SIM7670G: "288KB available user storage space" (simcom-at.md §7.1).
            Personality::A7670 => 288 * 1024,
            _ => 1 << 20,
        }
    }

    /// Whether `+QFLST` prints names with the `UFS:` prefix.
    pub fn lists_with_drive(self) -> bool {
        !matches!(self, Personality::Ec200u)
    }

    /// The boot URCs in order (without framing).
    pub fn boot_urcs(self) -> &'static [&'static str] {
        match self {
            Personality::Ec200u => &[
                "RDY",
                "+CFUN: 1",
                "+CPIN: READY",
                "+QUSIM: 1",
                "+QIND: SMS DONE",
                "+QIND: PB DONE",
            ],
            Personality::Ec200t => &[
                "RDY",
                "+CFUN: 1",
                "+CPIN: READY",
                "+QUSIM: 1",
                "+QIND: PB DONE",
                "+QIND: SMS DONE",
            ],
            Personality::Eg06 => &[
                "RDY",
                "+CPIN: READY",
                "+QUSIM: 1",
                "+CFUN: 1",
                "+QIND: SMS DONE",
                "+QIND: PB DONE",
            ],
            // simcom-at.md §5.1.
            Personality::Sim7600 => &["RDY", "+CPIN: READY", "SMS DONE", "PB DONE"],
            Personality::A7670 => &[
                "*ATREADY: 1",
                "+CPIN: READY",
                "SMS DONE",
                "+CGEV: EPS PDN ACT 1",
                "PB DONE",
            ],
            Personality::Sim7070 | Personality::Sim800 => {
                &["RDY", "+CFUN: 1", "+CPIN: READY", "SMS Ready"]
            }
        }
    }

    /// Extra `AT+QHTTPCFG` names beyond the universal five.
    pub(crate) fn http_cfg_extra(self) -> &'static [&'static str] {
        match self {
            Personality::Ec200u | Personality::Ec200t => &[
                "rspout/auto",
                "closed/ind",
                "reqheader/add",
                "reqheader/remove",
            ],
            Personality::Eg06 => &["custom_header", "auth", "closewaittime", "windowsize"],
            _ => &[],
        }
    }

    /// Whether FOTA reports `DOWNLOADING` progress.
    pub fn fota_reports_downloading(self) -> bool {
        !matches!(self, Personality::Eg06)
    }

    /// Whether `AT+QFOTADL` takes the `,<mode>,<dl>[,<upd>]` options.
    pub fn fota_takes_options(self) -> bool {
        !matches!(self, Personality::Eg06)
    }

    /// `END` code for a package that is not a valid package.
    pub fn fota_bad_package_code(self) -> u16 {
        505
    }

    /// `END` code for a package built for another source version.
    pub fn fota_wrong_source_code(self) -> u16 {
        match self {
            Personality::Ec200t => 507,
            _ => 510,
        }
    }

    /// Whether the upgrade stage has a second reboot in the middle (ASR, §8.2).
    pub fn fota_second_reboot(self) -> bool {
        matches!(self, Personality::Ec200t)
    }
}
