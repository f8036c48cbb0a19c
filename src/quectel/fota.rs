//! Module firmware update with `AT+QFOTADL` and its `AT+QCFG="fota/…"` settings
//! (quectel-at.md §8).
//!
//! # The contract of a FOTA download
//!
//! `OK` to [`FotaDownload`] only means the modem **accepted** the request. Everything after
//! it is reported by `+QIND: "FOTA",…` URCs (§8.2): a download stage (`"HTTPSTART"` /
//! `"FTPSTART"` / `"FILESTART"`, optional `"DOWNLOADING",<pct>`, then `"HTTPEND"` /
//! `"FTPEND"` / `"FILEEND",<err>`), a reboot, and an upgrade stage (`"START"`,
//! `"UPDATING",<pct>` …, on BG96 `"RESTORE",<pct>`, then `"END",<err>`). Only
//! `+QIND: "FOTA","END",0` means success; after it the module reboots again into the new
//! firmware. Across the reboots the AT port (USB or UART) can disappear: re-open it, re-sync
//! with `AT` and keep collecting `+QIND: "FOTA"` lines (§10). Confirm the new version with
//! `AT+QGMR` afterwards.
//!
//! Host deadlines (§9) are the `FOTA_*` constants of this module.

use core::time::Duration;

use crate::at::command::{DEFAULT_TIMEOUT, check_text};
use crate::at::{AtCommand, EncodeError, Encoder, Lines, ParseError, ResponseLines};

/// Longest FOTA URL: 255 bytes (Qualcomm and ASR DFOTA guides, §8.1). ASR MiniFOTA allows
/// only 128; a single EC800K note claims 700 \[U\].
pub const FOTA_URL_MAX: usize = 255;

/// Longest local package path for [`FotaSource::LocalPath`]; no source gives one, so the
/// URL limit is reused (chosen conservatively).
pub const FOTA_LOCAL_PATH_MAX: usize = 255;

/// Longest `fota/path` value; no source gives one. The only value seen is `"UFS:"`; 80
/// bytes is chosen conservatively.
pub const FOTA_PATH_MAX: usize = 80;

/// How long to wait after `OK` for the download stage to start (`"HTTPSTART"` etc.), per
/// Quectel's own test harness (§8.2, §9).
pub const FOTA_START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long to wait for the end of the download stage (`"HTTPEND"` etc.): 300 s per
/// Quectel's harness (§9); add time per MB for large packages on slow links.
pub const FOTA_DOWNLOAD_END_TIMEOUT: Duration = Duration::from_secs(300);

/// How long to wait for `"END"` of the upgrade stage: 300 s per Quectel's harness (§9).
/// Real EG18 upgrades took ~8 min (10–20 min from a local file, §8.2), so treat this as the
/// longest silence between progress URCs, not as a limit on the whole upgrade.
pub const FOTA_UPGRADE_END_TIMEOUT: Duration = Duration::from_secs(300);

/// Longest silence between two `+QIND: "FOTA"` URCs that fwupd tolerates (§8.2).
pub const FOTA_URC_GAP_TIMEOUT: Duration = Duration::from_secs(90);

/// Checks that a URC count is 0 (off) or 5..=100 (§8.1).
fn check_urc_max(v: u8) -> Result<(), EncodeError> {
    if v == 0 {
        return Ok(());
    }
    crate::at::command::check_range(i64::from(v), 5, 100)
}

// ---------------------------------------------------------------------------------------------
// AT+QFOTADL
// ---------------------------------------------------------------------------------------------

/// Where the module gets its firmware package (§8.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FotaSource<'a> {
    /// `AT+QFOTADL="<url>"`: `http://`, `https://` or `ftp://user:pass@host:port/file`
    /// (scheme ASCII case-insensitive), at most [`FOTA_URL_MAX`] bytes, printable ASCII
    /// without `"` or spaces. All platforms support HTTP(S); FTP is Qualcomm and ASR only
    /// (ASR: the file must be in the server's root).
    Url(&'a str),
    /// `AT+QFOTADL="FILE:<length>"`: the host streams a `length`-byte DFOTA package over the
    /// AT port. ASR (A) family only, single source. The guide requires hardware flow control
    /// (RTS/CTS); the one summary also gives a pace for links without it (§11.5). This
    /// command only starts the transfer: the reference does not document the prompt that
    /// follows. [`upgrade_modem_from_host`](crate::update::module_fota::upgrade_modem_from_host)
    /// sends it, streams the package (flow-controlled or paced) and follows the stages. The
    /// flow-control-free protocol mode (`"FILE:<length>",2`) is proprietary and not
    /// supported.
    HostFile {
        /// Package size in bytes (1 or more).
        length: u32,
    },
    /// `AT+QFOTADL="<path>"`: a package already stored in UFS, by absolute path (must start
    /// with `/`): `/usrdata/cache/ufs/<f>` (EC2x), `/cache/ufs/<f>` (EG18 and other Qualcomm
    /// builds), `/data/ufs/<f>` (the modules fwupd drives). The prefix differs per firmware;
    /// the file is uploaded first with [`UploadFile`](super::file::UploadFile). Qualcomm.
    /// On EG18 the AT port dropped right after `OK` to this form.
    LocalPath(&'a str),
    /// `AT+QFOTADL=1`: BG96 only, with the package fixed at `/fota/update.zip`. Takes no
    /// [`FotaOptions`].
    Bg96Fixed,
}

/// `<upgrade_mode>` of `AT+QFOTADL` (ASR (A) family and EC200U).
///
/// The ASR guide defines 0 = reboot, then upgrade and 1 = upgrade immediately; an EC800K tool
/// note instead calls them 0 = manual reboot, 1 = automatic reboot (§11.7, unresolved). The
/// names follow the guide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum UpgradeMode {
    /// 0: reboot, then upgrade.
    RebootThenUpgrade = 0,
    /// 1: upgrade immediately (the EC200U example uses `,1,50,100`).
    Immediate = 1,
}

/// The optional tail `,<upgrade_mode>,<download_URC_max>[,<update_URC_max>]` of
/// `AT+QFOTADL` (ASR (A) family and EC200U, §8.1). Qualcomm modules take only the URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FotaOptions {
    /// What happens after the download.
    pub upgrade_mode: UpgradeMode,
    /// How many `"DOWNLOADING"` progress URCs to send: 0 (none) or 5..=100.
    pub download_urc_max: u8,
    /// How many `"UPDATING"` progress URCs to send: 0 (none) or 5..=100; omitted when `None`.
    /// (In V1.1–V1.2 of the ASR guide this applied to EC200T only, §11.8.)
    pub update_urc_max: Option<u8>,
}

/// `AT+QFOTADL=…`: starts a firmware update of the module (§8).
///
/// Encoded forms:
///
/// | `source` | line |
/// |---|---|
/// | [`FotaSource::Url`] | `AT+QFOTADL="<url>"[,<mode>,<dl>[,<upd>]]` |
/// | [`FotaSource::HostFile`] | `AT+QFOTADL="FILE:<length>"[,<mode>,<dl>[,<upd>]]` |
/// | [`FotaSource::LocalPath`] | `AT+QFOTADL="<path>"[,<mode>,<dl>[,<upd>]]` |
/// | [`FotaSource::Bg96Fixed`] | `AT+QFOTADL=1` |
///
/// `OK` only means the request was accepted; see the [module docs](self) for the URCs that
/// follow, and for the only success signal, `+QIND: "FOTA","END",0`. The module reboots
/// (at least once) before that.
///
/// Timeout: [`DEFAULT_TIMEOUT`] for the `OK`; then [`FOTA_START_TIMEOUT`],
/// [`FOTA_DOWNLOAD_END_TIMEOUT`] and [`FOTA_UPGRADE_END_TIMEOUT`] for the URCs (§9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FotaDownload<'a> {
    /// Where the package comes from.
    pub source: FotaSource<'a>,
    /// The ASR/EC200U tail, or `None` to send only the source.
    pub options: Option<FotaOptions>,
}

impl<'a> FotaDownload<'a> {
    /// Download from `url` (HTTP, HTTPS or FTP), without options.
    pub const fn url(url: &'a str) -> Self {
        FotaDownload {
            source: FotaSource::Url(url),
            options: None,
        }
    }

    /// Upgrade from a package already in UFS, by absolute path, without options.
    pub const fn local_path(path: &'a str) -> Self {
        FotaDownload {
            source: FotaSource::LocalPath(path),
            options: None,
        }
    }

    /// Upgrade from a package the host streams over the AT port (ASR only), without options.
    pub const fn host_file(length: u32) -> Self {
        FotaDownload {
            source: FotaSource::HostFile { length },
            options: None,
        }
    }

    /// BG96: `AT+QFOTADL=1`.
    pub const fn bg96_fixed() -> Self {
        FotaDownload {
            source: FotaSource::Bg96Fixed,
            options: None,
        }
    }

    /// The same request with `options`.
    pub const fn with_options(self, options: FotaOptions) -> Self {
        FotaDownload {
            source: self.source,
            options: Some(options),
        }
    }
}

fn check_url(url: &str) -> Result<(), EncodeError> {
    check_text(url.as_bytes(), FOTA_URL_MAX)?;
    if url.is_empty() {
        return Err(EncodeError::Empty);
    }
    let rest = ["http://", "https://", "ftp://"].iter().find_map(|scheme| {
        let head = url.get(..scheme.len())?;
        head.eq_ignore_ascii_case(scheme)
            .then(|| url.get(scheme.len()..))
            .flatten()
    });
    let Some(rest) = rest else {
        return Err(EncodeError::Invalid(
            "FOTA URL must start with http://, https:// or ftp://",
        ));
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err(EncodeError::Invalid("FOTA URL has no host"));
    }
    if let Some(position) = url.find(' ') {
        return Err(EncodeError::ForbiddenByte {
            byte: b' ',
            position,
        });
    }
    Ok(())
}

impl AtCommand for FotaDownload<'_> {
    type Response<'a> = ();

    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        if let Some(o) = self.options {
            if self.source == FotaSource::Bg96Fixed {
                return Err(EncodeError::Invalid(
                    "AT+QFOTADL=1 (BG96) takes no further parameters",
                ));
            }
            check_urc_max(o.download_urc_max)?;
            if let Some(u) = o.update_urc_max {
                check_urc_max(u)?;
            }
        }
        match self.source {
            FotaSource::Url(url) => {
                check_url(url)?;
                enc.raw(b"AT+QFOTADL=")?;
                enc.quoted(url, FOTA_URL_MAX)?;
            }
            FotaSource::HostFile { length } => {
                crate::at::command::check_range(i64::from(length), 1, i64::from(u32::MAX))?;
                enc.raw(b"AT+QFOTADL=\"FILE:")?;
                enc.u32(length)?;
                enc.raw(b"\"")?;
            }
            FotaSource::LocalPath(path) => {
                check_text(path.as_bytes(), FOTA_LOCAL_PATH_MAX)?;
                if path.is_empty() {
                    return Err(EncodeError::Empty);
                }
                if !path.starts_with('/') {
                    return Err(EncodeError::Invalid(
                        "a local FOTA package path must be absolute (start with '/')",
                    ));
                }
                enc.raw(b"AT+QFOTADL=")?;
                enc.quoted(path, FOTA_LOCAL_PATH_MAX)?;
            }
            FotaSource::Bg96Fixed => enc.raw(b"AT+QFOTADL=1")?,
        }
        if let Some(o) = self.options {
            enc.comma()?;
            enc.u32(o.upgrade_mode as u32)?;
            enc.comma()?;
            enc.u32(u32::from(o.download_urc_max))?;
            if let Some(u) = o.update_urc_max {
                enc.comma()?;
                enc.u32(u32::from(u))?;
            }
        }
        Ok(())
    }

    fn timeout(&self) -> Duration {
        DEFAULT_TIMEOUT
    }

    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// `AT+QFOTADL=?`: which `AT+QFOTADL` parameters the firmware takes (§8.1).
///
/// BG96 answers only `OK` (no lines); ASR modules answer
/// `+QFOTADL: <url>,(modes),(dl URC max),(upd URC max)`. The response is the raw
/// `+QFOTADL:` lines, unparsed, because their exact shape is not documented. Timeout:
/// [`DEFAULT_TIMEOUT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FotaDownloadTest;

impl AtCommand for FotaDownloadTest {
    type Response<'a> = Lines<'a>;

    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+QFOTADL=?")
    }

    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+QFOTADL:")
    }

    fn parse<'a>(&self, lines: Lines<'a>) -> Result<Lines<'a>, ParseError> {
        Ok(lines)
    }
}

// ---------------------------------------------------------------------------------------------
// AT+QCFG="fota/…"
// ---------------------------------------------------------------------------------------------

/// Reads `+QCFG: "<name>",<value>` and returns the value field's parameters.
fn qcfg_value<'a>(
    lines: &mut Lines<'a>,
    name: &str,
) -> Result<crate::at::params::Params<'a>, ParseError> {
    let mut p = lines.expect_prefixed(b"+QCFG:")?;
    if !p.str()?.eq_ignore_ascii_case(name) {
        return Err(ParseError::UnexpectedLine);
    }
    Ok(p)
}

/// `AT+QCFG="fota/cid",<cid>`: the PDP context used for the FOTA download (ASR DFOTA,
/// EC200U, EG800Q; MiniFOTA ignores it, §8.1). `cid` 1..=16 (the EC2x range of §3). Answers
/// `OK`. Timeout: [`DEFAULT_TIMEOUT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SetFotaContext {
    /// PDP context id, 1..=16.
    pub cid: u8,
}

impl AtCommand for SetFotaContext {
    type Response<'a> = ();

    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+QCFG=\"fota/cid\",")?;
        enc.ranged(u32::from(self.cid), 1, 16)
    }

    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// `AT+QCFG="fota/cid"`: reads the FOTA PDP context (`+QCFG: "fota/cid",<cid>`).
/// Timeout: [`DEFAULT_TIMEOUT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QueryFotaContext;

impl AtCommand for QueryFotaContext {
    type Response<'a> = u8;

    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+QCFG=\"fota/cid\"")
    }

    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+QCFG:")
    }

    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<u8, ParseError> {
        let mut p = qcfg_value(&mut lines, "fota/cid")?;
        let cid = p.u8()?;
        p.end()?;
        lines.end()?;
        Ok(cid)
    }
}

/// `AT+QCFG="fota/path","<path>"`: where EC200U stores the downloaded package (§8.1).
///
/// The value is a drive or directory and must end with `:` or `/` — use `"UFS:"`. On EC200U
/// a value without the colon (`"UFS"`) made every FOTA fail at once with
/// `+QIND: "FOTA","HTTPEND",608`, so such values are refused with
/// [`EncodeError::Invalid`]. Printable ASCII without `"`, at most [`FOTA_PATH_MAX`] bytes.
/// Answers `OK`. Timeout: [`DEFAULT_TIMEOUT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SetFotaPath<'a> {
    /// Drive or directory, such as `"UFS:"`.
    pub path: &'a str,
}

impl AtCommand for SetFotaPath<'_> {
    type Response<'a> = ();

    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        check_text(self.path.as_bytes(), FOTA_PATH_MAX)?;
        if self.path.is_empty() {
            return Err(EncodeError::Empty);
        }
        if !(self.path.ends_with(':') || self.path.ends_with('/')) {
            return Err(EncodeError::Invalid(
                "fota/path must end with ':' or '/' (use \"UFS:\"; \"UFS\" makes EC200U FOTA \
                 fail with HTTPEND 608)",
            ));
        }
        enc.raw(b"AT+QCFG=\"fota/path\",")?;
        enc.quoted(self.path, FOTA_PATH_MAX)
    }

    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// `AT+QCFG="fota/path"`: reads the FOTA package location (`+QCFG: "fota/path","<path>"`).
/// Timeout: [`DEFAULT_TIMEOUT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QueryFotaPath;

impl AtCommand for QueryFotaPath {
    type Response<'a> = &'a str;

    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+QCFG=\"fota/path\"")
    }

    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+QCFG:")
    }

    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<&'a str, ParseError> {
        let mut p = qcfg_value(&mut lines, "fota/path")?;
        let path = p.str()?;
        p.end()?;
        lines.end()?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use proptest::prelude::*;

    use crate::quectel::test_support::{encode, is_one_line};

    macro_rules! enc {
        ($($cmd:expr => $bytes:expr),* $(,)?) => {$(
            assert_eq!(
                encode(&$cmd).as_deref(),
                Ok(&$bytes[..]),
                "{}",
                stringify!($cmd)
            );
        )*};
    }

    macro_rules! enc_err {
        ($($cmd:expr => $err:expr),* $(,)?) => {$(
            assert_eq!(encode(&$cmd), Err($err), "{}", stringify!($cmd));
        )*};
    }

    const EC200U: FotaOptions = FotaOptions {
        upgrade_mode: UpgradeMode::Immediate,
        download_urc_max: 50,
        update_urc_max: Some(100),
    };

    #[test]
    fn encodings() {
        enc! {
            FotaDownload::url("http://example.com/fw.bin")
                => b"AT+QFOTADL=\"http://example.com/fw.bin\"",
            FotaDownload::url("https://example.com:8443/a/b.zip")
                => b"AT+QFOTADL=\"https://example.com:8443/a/b.zip\"",
            FotaDownload::url("ftp://user:pass@host:21/fw.bin")
                => b"AT+QFOTADL=\"ftp://user:pass@host:21/fw.bin\"",
            FotaDownload::url("HTTP://example.com/x") => b"AT+QFOTADL=\"HTTP://example.com/x\"",
            FotaDownload::url("http://h/fw.pack").with_options(EC200U)
                => b"AT+QFOTADL=\"http://h/fw.pack\",1,50,100",
            FotaDownload::url("http://h/fw").with_options(FotaOptions {
                upgrade_mode: UpgradeMode::RebootThenUpgrade,
                download_urc_max: 0,
                update_urc_max: None,
            }) => b"AT+QFOTADL=\"http://h/fw\",0,0",
            FotaDownload::host_file(123456) => b"AT+QFOTADL=\"FILE:123456\"",
            FotaDownload::host_file(10).with_options(FotaOptions {
                upgrade_mode: UpgradeMode::RebootThenUpgrade,
                download_urc_max: 5,
                update_urc_max: Some(5),
            }) => b"AT+QFOTADL=\"FILE:10\",0,5,5",
            FotaDownload::local_path("/data/ufs/dfota_update.bin")
                => b"AT+QFOTADL=\"/data/ufs/dfota_update.bin\"",
            FotaDownload::local_path("/usrdata/cache/ufs/update.zip")
                => b"AT+QFOTADL=\"/usrdata/cache/ufs/update.zip\"",
            FotaDownload::local_path("/cache/ufs/u.zip") => b"AT+QFOTADL=\"/cache/ufs/u.zip\"",
            FotaDownload::bg96_fixed() => b"AT+QFOTADL=1",
            FotaDownloadTest => b"AT+QFOTADL=?",
            SetFotaContext { cid: 1 } => b"AT+QCFG=\"fota/cid\",1",
            SetFotaContext { cid: 16 } => b"AT+QCFG=\"fota/cid\",16",
            QueryFotaContext => b"AT+QCFG=\"fota/cid\"",
            SetFotaPath { path: "UFS:" } => b"AT+QCFG=\"fota/path\",\"UFS:\"",
            SetFotaPath { path: "UFS:fota/" } => b"AT+QCFG=\"fota/path\",\"UFS:fota/\"",
            QueryFotaPath => b"AT+QCFG=\"fota/path\"",
        }
    }

    #[test]
    fn invalid_parameters() {
        let long_url = std::format!("http://h/{}", "a".repeat(FOTA_URL_MAX));
        let max_url = std::format!("http://h/{}", "a".repeat(FOTA_URL_MAX - 9));
        assert!(encode(&FotaDownload::url(&max_url)).is_ok());
        let scheme = EncodeError::Invalid("FOTA URL must start with http://, https:// or ftp://");
        enc_err! {
            FotaDownload::url("http://h/a\"b") => EncodeError::ForbiddenByte { byte: b'"', position: 10 },
            FotaDownload::url("http://h/\r\nAT") => EncodeError::ForbiddenByte { byte: b'\r', position: 9 },
            FotaDownload::url("http://h/\n") => EncodeError::ForbiddenByte { byte: b'\n', position: 9 },
            FotaDownload::url("http://h/\0") => EncodeError::ForbiddenByte { byte: 0, position: 9 },
            FotaDownload::url("http://h/a b") => EncodeError::ForbiddenByte { byte: b' ', position: 10 },
            FotaDownload::url(&long_url)
                => EncodeError::TooLong { len: FOTA_URL_MAX + 9, max: FOTA_URL_MAX },
            FotaDownload::url("") => EncodeError::Empty,
            FotaDownload::url("example.com/fw.bin") => scheme,
            FotaDownload::url("file:///fw.bin") => scheme,
            FotaDownload::url("/data/ufs/x") => scheme,
            FotaDownload::url("http://") => EncodeError::Invalid("FOTA URL has no host"),
            FotaDownload::url("https:///x") => EncodeError::Invalid("FOTA URL has no host"),
            FotaDownload::host_file(0) => EncodeError::OutOfRange { value: 0, min: 1, max: i64::from(u32::MAX) },
            FotaDownload::local_path("data/ufs/x") => EncodeError::Invalid(
                "a local FOTA package path must be absolute (start with '/')"),
            FotaDownload::local_path("UFS:x") => EncodeError::Invalid(
                "a local FOTA package path must be absolute (start with '/')"),
            FotaDownload::local_path("") => EncodeError::Empty,
            FotaDownload::local_path("/a\"") => EncodeError::ForbiddenByte { byte: b'"', position: 2 },
            FotaDownload::bg96_fixed().with_options(EC200U) => EncodeError::Invalid(
                "AT+QFOTADL=1 (BG96) takes no further parameters"),
            FotaDownload::url("http://h/x").with_options(FotaOptions { download_urc_max: 4, ..EC200U })
                => EncodeError::OutOfRange { value: 4, min: 5, max: 100 },
            FotaDownload::url("http://h/x").with_options(FotaOptions { download_urc_max: 101, ..EC200U })
                => EncodeError::OutOfRange { value: 101, min: 5, max: 100 },
            FotaDownload::url("http://h/x").with_options(FotaOptions { update_urc_max: Some(1), ..EC200U })
                => EncodeError::OutOfRange { value: 1, min: 5, max: 100 },
            SetFotaContext { cid: 0 } => EncodeError::OutOfRange { value: 0, min: 1, max: 16 },
            SetFotaContext { cid: 17 } => EncodeError::OutOfRange { value: 17, min: 1, max: 16 },
            SetFotaPath { path: "" } => EncodeError::Empty,
            SetFotaPath { path: "UFS\"" } => EncodeError::ForbiddenByte { byte: b'"', position: 3 },
            SetFotaPath { path: "UFS:\r" } => EncodeError::ForbiddenByte { byte: b'\r', position: 4 },
        }
        assert!(matches!(
            encode(&SetFotaPath { path: "UFS" }),
            Err(EncodeError::Invalid(m)) if m.contains("608") && m.contains("UFS:")
        ));
        let long_path = std::format!("{}:", "a".repeat(FOTA_PATH_MAX));
        assert_eq!(
            encode(&SetFotaPath { path: &long_path }),
            Err(EncodeError::TooLong {
                len: FOTA_PATH_MAX + 1,
                max: FOTA_PATH_MAX
            })
        );
        // Nothing is written when a check fails.
        let mut buf = [0u8; 64];
        let mut enc = Encoder::new(&mut buf);
        assert!(FotaDownload::url("ftp:/x").encode(&mut enc).is_err());
        assert!(enc.is_empty());
    }

    #[test]
    fn short_buffer_is_an_error() {
        let mut buf = [0u8; 12];
        let mut enc = Encoder::new(&mut buf);
        assert_eq!(
            FotaDownload::url("http://example.com/fw.bin").encode(&mut enc),
            Err(EncodeError::BufferTooSmall { capacity: 12 })
        );
    }

    #[test]
    fn parsing() {
        assert_eq!(
            FotaDownload::url("http://h/x").parse(Lines::new(b"")),
            Ok(())
        );
        assert_eq!(
            FotaDownload::url("http://h/x").parse(Lines::new(b"x\n")),
            Err(ParseError::TrailingData)
        );
        assert_eq!(FotaDownload::url("http://h/x").timeout(), DEFAULT_TIMEOUT);
        // BG96: only OK.
        let mut none = FotaDownloadTest.parse(Lines::new(b"")).unwrap();
        assert_eq!(none.next(), None);
        // ASR: one raw line.
        let mut asr = FotaDownloadTest
            .parse(Lines::new(b"+QFOTADL: <url>,(0,1),(0,5-100),(0,5-100)\n"))
            .unwrap();
        assert_eq!(
            asr.next(),
            Some(&b"+QFOTADL: <url>,(0,1),(0,5-100),(0,5-100)"[..])
        );
        assert_eq!(asr.next(), None);

        assert_eq!(
            QueryFotaContext.parse(Lines::new(b"+QCFG: \"fota/cid\",1\n")),
            Ok(1)
        );
        assert_eq!(
            QueryFotaContext.parse(Lines::new(b"+QCFG: fota/cid,3\n")),
            Ok(3)
        );
        assert_eq!(
            QueryFotaContext.parse(Lines::new(b"+QCFG: \"fota/path\",1\n")),
            Err(ParseError::UnexpectedLine)
        );
        assert_eq!(
            QueryFotaContext.parse(Lines::new(b"+QCFG: \"fota/cid\",300\n")),
            Err(ParseError::OutOfRange)
        );
        assert_eq!(
            QueryFotaContext.parse(Lines::new(b"")),
            Err(ParseError::MissingLine)
        );
        assert_eq!(
            QueryFotaPath.parse(Lines::new(b"+QCFG: \"fota/path\",\"UFS:\"\n")),
            Ok("UFS:")
        );
        assert_eq!(
            QueryFotaPath.parse(Lines::new(b"+QCFG: \"FOTA/PATH\",UFS:\n")),
            Ok("UFS:")
        );
        assert_eq!(
            QueryFotaPath.parse(Lines::new(b"+QCFG: \"fota/path\",\"UFS:\",1\n")),
            Err(ParseError::TrailingData)
        );
        assert_eq!(
            QueryFotaPath.parse(Lines::new(b"+QCFG: \"fota/path\"\n")),
            Err(ParseError::MissingField)
        );
        assert_eq!(SetFotaPath { path: "UFS:" }.parse(Lines::new(b"")), Ok(()));
        assert_eq!(SetFotaContext { cid: 1 }.parse(Lines::new(b"")), Ok(()));
    }

    fn source(kind: u8, text: &str, n: u32) -> FotaSource<'_> {
        match kind % 4 {
            0 => FotaSource::Url(text),
            1 => FotaSource::HostFile { length: n },
            2 => FotaSource::LocalPath(text),
            _ => FotaSource::Bg96Fixed,
        }
    }

    proptest! {
        #[test]
        fn encode_is_one_safe_line(kind in any::<u8>(), text in any::<std::string::String>(),
                                   url in "(http|https|ftp|HTTP)://[ -~]{0,300}",
                                   path in "/[ -~]{0,300}",
                                   n in any::<u32>(), mode in any::<bool>(),
                                   dl in any::<u8>(), upd in proptest::option::of(any::<u8>()),
                                   opts in any::<bool>(), cid in any::<u8>()) {
            let options = opts.then_some(FotaOptions {
                upgrade_mode: if mode { UpgradeMode::Immediate } else { UpgradeMode::RebootThenUpgrade },
                download_urc_max: dl,
                update_urc_max: upd,
            });
            let outs = [
                encode(&FotaDownload { source: source(kind, &text, n), options }),
                encode(&FotaDownload { source: FotaSource::Url(&url), options }),
                encode(&FotaDownload { source: FotaSource::LocalPath(&path), options }),
                encode(&SetFotaContext { cid }),
                encode(&SetFotaPath { path: &text }),
                encode(&SetFotaPath { path: &path }),
            ];
            for out in outs.iter().flatten() {
                prop_assert!(is_one_line(out), "{:?}", out);
            }
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let l = Lines::new(&bytes);
            let _ = FotaDownload::url("http://h/x").parse(l);
            let _ = FotaDownloadTest.parse(l).map(|it| it.count());
            let _ = SetFotaContext { cid: 1 }.parse(l);
            let _ = QueryFotaContext.parse(l);
            let _ = SetFotaPath { path: "UFS:" }.parse(l);
            let _ = QueryFotaPath.parse(l);
        }
    }
}
