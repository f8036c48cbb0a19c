//! The module's own file system (`UFS:`, `RAM:`, `SD:`): listing, free space, upload and
//! download of whole files, handle-based I/O, and the 16-bit XOR checksum the modem reports
//! for transfers (quectel-at.md §7).
//!
//! # File names
//!
//! Every name parameter is checked before a byte is sent:
//!
//! * printable ASCII only, no `"` (the [`check_text`] rules: no CR, LF, NUL or other control
//!   byte can end the AT line);
//! * at most [`FILE_NAME_MAX`] bytes, drive prefix included;
//! * an optional drive prefix `UFS:`, `RAM:` or `SD:` (ASCII case-insensitive); any other `:`
//!   is refused with [`EncodeError::Invalid`], because the modem reads `:` as a drive
//!   separator;
//! * something after the drive prefix ([`EncodeError::Empty`] otherwise);
//! * no `*`, except the documented wildcards: [`ListFiles`] accepts `*` as the whole name part
//!   (`"*"`, `"UFS:*"`) and [`DeleteFile::all`] sends `"*"`.
//!
//! `/` is allowed (EC200U stores its FOTA package as `UFS:UFS/fota.pac`, §8.1).
//!
//! # Error codes
//!
//! Failures arrive as `+CME ERROR: <code>` with the file-system codes of §5.4 (400 invalid
//! input, 402 read zero bytes / end of file, 405 not found, 407 already exists, 421 time out,
//! ...); the client turns them into its error type. They are not visible to
//! [`AtCommand::parse`], which only runs after `OK`.

use core::fmt;
use core::time::Duration;

use crate::at::command::{DEFAULT_TIMEOUT, check_text};
use crate::at::params::Params;
use crate::at::{
    AtCommand, DataLength, DataPhase, EncodeError, Encoder, Lines, ParseError, ResponseLines,
};

/// Longest file name accepted, in bytes, drive prefix included.
///
/// The reference (§7) gives no limit; 80 bytes is chosen conservatively (it fits every name
/// seen in the reference, such as `UFS:dfota_update.bin`, with a wide margin, and keeps the
/// command line short). Longer names are refused with [`EncodeError::TooLong`].
pub const FILE_NAME_MAX: usize = 80;

/// Extra time allowed per transferred byte on top of a command's own timeout: one second per
/// 10 KiB, which assumes a link of at least 115 200 baud (about 11.5 KB/s). Slower links need
/// a longer deadline from the client's timeout wrapper.
const BYTES_PER_SECOND: u64 = 10 * 1024;

/// Margin added to a timeout the modem itself enforces (`<timeout>` of QFUPL/QFWRITE).
const MARGIN: Duration = Duration::from_secs(5);

/// The time needed to move `len` bytes at [`BYTES_PER_SECOND`], rounded up.
fn transfer_time(len: u64) -> Duration {
    Duration::from_secs(len.div_ceil(BYTES_PER_SECOND))
}

// ---------------------------------------------------------------------------------------------
// Drives and names
// ---------------------------------------------------------------------------------------------

/// A storage area of the module's file system (§7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Drive {
    /// `UFS`: user flash, the default drive and the only one every module has.
    #[default]
    Ufs,
    /// `RAM`: volatile storage (EC2x).
    Ram,
    /// `SD`: an SD card, on some models only.
    Sd,
}

impl Drive {
    /// The drive's name as the modem spells it (`"UFS"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Drive::Ufs => "UFS",
            Drive::Ram => "RAM",
            Drive::Sd => "SD",
        }
    }

    /// The prefix in a file name (`"UFS:"`).
    pub fn prefix(self) -> &'static str {
        match self {
            Drive::Ufs => "UFS:",
            Drive::Ram => "RAM:",
            Drive::Sd => "SD:",
        }
    }

    /// Splits an optional drive prefix (ASCII case-insensitive) off `name`.
    pub fn split(name: &str) -> (Option<Drive>, &str) {
        for d in [Drive::Ufs, Drive::Ram, Drive::Sd] {
            let p = d.prefix();
            if let (Some(head), Some(rest)) = (name.get(..p.len()), name.get(p.len()..)) {
                if head.eq_ignore_ascii_case(p) {
                    return (Some(d), rest);
                }
            }
        }
        (None, name)
    }
}

/// Checks a file name by the rules in the [module docs](self). `wildcard` allows `*` as the
/// whole name part.
pub(crate) fn check_name(name: &str, wildcard: bool) -> Result<(), EncodeError> {
    check_text(name.as_bytes(), FILE_NAME_MAX)?;
    let (_, rest) = Drive::split(name);
    if rest.is_empty() {
        return Err(EncodeError::Empty);
    }
    if rest.contains(':') {
        return Err(EncodeError::Invalid(
            "a file name may only carry a UFS:, RAM: or SD: drive prefix",
        ));
    }
    if wildcard && rest == "*" {
        return Ok(());
    }
    match rest.find('*') {
        Some(p) => Err(EncodeError::ForbiddenByte {
            byte: b'*',
            position: name.len() - rest.len() + p,
        }),
        None => Ok(()),
    }
}

/// `name` without a leading `UFS:` (ASCII case-insensitive), the default drive.
fn without_ufs(name: &str) -> &str {
    match Drive::split(name) {
        (Some(Drive::Ufs), rest) => rest,
        _ => name,
    }
}

/// Parses a whole decimal field into a `u64` (sizes of SD cards can exceed `u32`).
fn parse_u64(s: &str) -> Result<u64, ParseError> {
    if s.is_empty() {
        return Err(ParseError::BadNumber);
    }
    s.bytes().try_fold(0u64, |v, d| {
        if !d.is_ascii_digit() {
            return Err(ParseError::BadNumber);
        }
        v.checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
            .ok_or(ParseError::OutOfRange)
    })
}

/// Length of a payload as the `u32` the modem takes, or [`EncodeError::OutOfRange`].
fn payload_len(data: &[u8]) -> Result<u32, EncodeError> {
    u32::try_from(data.len()).map_err(|_| EncodeError::OutOfRange {
        value: i64::try_from(data.len()).unwrap_or(i64::MAX),
        min: 1,
        max: i64::from(u32::MAX),
    })
}

// ---------------------------------------------------------------------------------------------
// Checksum
// ---------------------------------------------------------------------------------------------

/// The modem's transfer checksum of `data` (§7, hardware-verified): the XOR of all
/// big-endian 16-bit words; an odd final byte is the high byte of a last word whose low byte
/// is 0.
///
/// ```
/// use cellular_ota::quectel::file::xor_checksum;
/// assert_eq!(xor_checksum(&[0x12, 0x34, 0x56]), 0x1234 ^ 0x5600);
/// assert_eq!(xor_checksum(&[]), 0);
/// ```
pub fn xor_checksum(data: &[u8]) -> u16 {
    let mut c = XorChecksum::new();
    c.update(data);
    c.finish()
}

/// Streaming form of [`xor_checksum`]: feed the data in chunks of any size (odd chunk
/// boundaries are handled) and read the checksum with [`finish`](Self::finish).
///
/// ```
/// use cellular_ota::quectel::file::{XorChecksum, xor_checksum};
/// let mut c = XorChecksum::new();
/// c.update(&[0x12]);
/// c.update(&[0x34, 0x56]);
/// assert_eq!(c.finish(), xor_checksum(&[0x12, 0x34, 0x56]));
/// assert_eq!(c.len(), 3);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct XorChecksum {
    sum: u16,
    /// The first byte of a word whose second byte has not arrived yet.
    high: Option<u8>,
    len: u64,
}

impl XorChecksum {
    /// An empty checksum (the checksum of no bytes is 0).
    pub const fn new() -> Self {
        XorChecksum {
            sum: 0,
            high: None,
            len: 0,
        }
    }

    /// Adds the next bytes of the data.
    pub fn update(&mut self, data: &[u8]) {
        self.len = self
            .len
            .saturating_add(u64::try_from(data.len()).unwrap_or(u64::MAX));
        let mut data = data;
        if let Some(h) = self.high.take() {
            match data.split_first() {
                Some((&l, rest)) => {
                    self.sum ^= u16::from_be_bytes([h, l]);
                    data = rest;
                }
                None => {
                    self.high = Some(h);
                    return;
                }
            }
        }
        let mut words = data.chunks_exact(2);
        for w in &mut words {
            if let [a, b] = *w {
                self.sum ^= u16::from_be_bytes([a, b]);
            }
        }
        if let [last] = *words.remainder() {
            self.high = Some(last);
        }
    }

    /// The checksum of everything added so far (a pending odd byte counts as the high byte
    /// of a word with low byte 0). Does not reset; more data may still be added.
    pub fn finish(&self) -> u16 {
        self.sum ^ self.high.map_or(0, |h| u16::from(h) << 8)
    }

    /// Number of bytes added so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True if no byte has been added.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Writes `checksum` as the modem prints it — lowercase hex, no `0x`, no leading zeros
/// (`f6e`, `0`) — into `buf` and returns it as text. For logs and tests.
///
/// ```
/// use cellular_ota::quectel::file::format_checksum;
/// let mut buf = [0u8; 4];
/// assert_eq!(format_checksum(0x0f6e, &mut buf), "f6e");
/// assert_eq!(format_checksum(0, &mut buf), "0");
/// ```
pub fn format_checksum(checksum: u16, buf: &mut [u8; 4]) -> &str {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bits = 16 - checksum.leading_zeros() as usize;
    let digits = bits.div_ceil(4).max(1);
    let mut n = 0;
    for (i, slot) in (0..digits).rev().zip(buf.iter_mut()) {
        *slot = HEX[usize::from((checksum >> (4 * i)) & 0xf)];
        n += 1;
    }
    core::str::from_utf8(buf.get(..n).unwrap_or(&[])).unwrap_or("")
}

/// The size or checksum the modem reported for a transfer differs from the local data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[error(
    "modem reports {modem_size} bytes / checksum {modem_checksum:#06x}, \
     local data is {local_size} bytes / checksum {local_checksum:#06x}"
)]
pub struct ChecksumMismatch {
    /// Size reported by the modem.
    pub modem_size: u32,
    /// Checksum reported by the modem.
    pub modem_checksum: u16,
    /// Size of the local data.
    pub local_size: u64,
    /// [`xor_checksum`] of the local data.
    pub local_checksum: u16,
}

fn compare(
    modem_size: u32,
    modem_checksum: u16,
    local_size: u64,
    local_checksum: u16,
) -> Result<(), ChecksumMismatch> {
    if u64::from(modem_size) == local_size && modem_checksum == local_checksum {
        Ok(())
    } else {
        Err(ChecksumMismatch {
            modem_size,
            modem_checksum,
            local_size,
            local_checksum,
        })
    }
}

/// Reads `<size>,<checksum>` (checksum in hex, with or without `0x`).
fn size_and_checksum(lines: &mut Lines<'_>, prefix: &[u8]) -> Result<(u32, u16), ParseError> {
    let mut p = lines.expect_prefixed(prefix)?;
    let size = p.u32()?;
    let checksum = u16::try_from(p.hex_u32()?).map_err(|_| ParseError::OutOfRange)?;
    p.end()?;
    lines.end()?;
    Ok((size, checksum))
}

// ---------------------------------------------------------------------------------------------
// AT+QFLST
// ---------------------------------------------------------------------------------------------

/// `AT+QFLST="<pattern>"`: lists files (§7).
///
/// The pattern is `*` (all UFS files), `<drive>:*` (all files of a drive) or one file name;
/// see the [module docs](self) for the name rules. The answer is one
/// `+QFLST: "<name>",<size>` line per file, then `OK`, returned as a [`FileList`]. Some
/// modules print names with `UFS:` (EG18, EG800K), others without; both are accepted. An
/// unknown name is answered with an error (`+CME ERROR: 405`), not an empty list.
///
/// Timeout: [`DEFAULT_TIMEOUT`] (§9: 300 ms by specification).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ListFiles<'a> {
    /// `*`, `<drive>:*` or a file name.
    pub pattern: &'a str,
}

impl<'a> ListFiles<'a> {
    /// `AT+QFLST="*"`: every file on UFS.
    pub const fn all() -> Self {
        ListFiles { pattern: "*" }
    }

    /// `AT+QFLST="<drive>:*"`: every file on `drive`.
    pub const fn drive(drive: Drive) -> Self {
        ListFiles {
            pattern: match drive {
                Drive::Ufs => "UFS:*",
                Drive::Ram => "RAM:*",
                Drive::Sd => "SD:*",
            },
        }
    }

    /// `AT+QFLST="<name>"`: one file (its size, or an error if it does not exist).
    pub const fn name(name: &'a str) -> Self {
        ListFiles { pattern: name }
    }
}

impl AtCommand for ListFiles<'_> {
    type Response<'a> = FileList<'a>;

    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        check_name(self.pattern, true)?;
        enc.raw(b"AT+QFLST=")?;
        enc.quoted(self.pattern, FILE_NAME_MAX)
    }

    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+QFLST:")
    }

    fn parse<'a>(&self, lines: Lines<'a>) -> Result<FileList<'a>, ParseError> {
        for line in lines {
            parse_entry(line)?;
        }
        Ok(FileList { lines })
    }
}

fn parse_entry(line: &[u8]) -> Result<FileEntry<'_>, ParseError> {
    let mut p = Params::after(line, b"+QFLST:").ok_or(ParseError::UnexpectedLine)?;
    let name = p.str()?;
    let size = p.u32()?;
    p.end()?;
    Ok(FileEntry { name, size })
}

/// One `+QFLST:` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FileEntry<'a> {
    /// The name as the modem sent it, with or without a drive prefix.
    pub name: &'a str,
    /// Size in bytes.
    pub size: u32,
}

impl<'a> FileEntry<'a> {
    /// The name without a `UFS:`, `RAM:` or `SD:` prefix.
    pub fn name_without_drive(&self) -> &'a str {
        Drive::split(self.name).1
    }
}

/// The files listed by [`ListFiles`], iterated lazily from the response buffer.
///
/// Every line was validated when the response was parsed, so iteration cannot fail: it yields
/// each [`FileEntry`] in the modem's order and then ends.
#[derive(Clone, Copy, Debug)]
pub struct FileList<'a> {
    lines: Lines<'a>,
}

impl<'a> FileList<'a> {
    /// The entry named `name`, comparing names exactly except that an optional `UFS:` prefix
    /// (the default drive) is ignored on either side: `find("a.bin")` finds
    /// `"UFS:a.bin"` and `find("UFS:a.bin")` finds `"a.bin"`.
    ///
    /// This inherent method takes precedence over [`Iterator::find`] in method-call syntax;
    /// call `Iterator::find(&mut list, ..)` for the predicate form.
    pub fn find(&self, name: &str) -> Option<FileEntry<'a>> {
        let wanted = without_ufs(name);
        let mut entries = *self;
        Iterator::find(&mut entries, |e| without_ufs(e.name) == wanted)
    }

    /// True if no file was listed.
    pub fn is_empty(&self) -> bool {
        let mut entries = *self;
        entries.next().is_none()
    }
}

impl<'a> Iterator for FileList<'a> {
    type Item = FileEntry<'a>;

    fn next(&mut self) -> Option<FileEntry<'a>> {
        // Lines were validated in `parse`; an error here cannot happen and ends the iteration.
        self.lines.next().and_then(|l| parse_entry(l).ok())
    }
}

// ---------------------------------------------------------------------------------------------
// AT+QFLDS
// ---------------------------------------------------------------------------------------------

/// `AT+QFLDS="<drive>"`: free and total space of a drive (§7), answered as
/// `+QFLDS: <free>,<total>` (EG800K: `+QFLDS: 180224,286720`; files occupy 4 KB blocks).
///
/// `UFS` is confirmed; `RAM` and `SD` follow the drive names of §7 \[U\].
/// Timeout: [`DEFAULT_TIMEOUT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FreeSpace {
    /// The drive to query.
    pub drive: Drive,
}

/// Answer to [`FreeSpace`], in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DriveSpace {
    /// Free bytes.
    pub free: u64,
    /// Total bytes.
    pub total: u64,
}

impl AtCommand for FreeSpace {
    type Response<'a> = DriveSpace;

    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+QFLDS=\"")?;
        enc.raw(self.drive.as_str().as_bytes())?;
        enc.raw(b"\"")
    }

    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+QFLDS:")
    }

    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<DriveSpace, ParseError> {
        let mut p = lines.expect_prefixed(b"+QFLDS:")?;
        let v = DriveSpace {
            free: parse_u64(p.str()?)?,
            total: parse_u64(p.str()?)?,
        };
        p.end()?;
        lines.end()?;
        Ok(v)
    }
}

/// `AT+QFLDS` without argument: totals of the stored files, answered as
/// `+QFLDS: <total_size_of_files>,<count>`.
///
/// \[U\] The reference (§7) knows this form only from memory of the manual; prefer
/// [`FreeSpace`] and [`ListFiles`]. Timeout: [`DEFAULT_TIMEOUT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct StoredFiles;

/// Answer to [`StoredFiles`] \[U\].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct StoredFilesTotal {
    /// Total size of the stored files in bytes.
    pub size: u64,
    /// Number of stored files.
    pub count: u32,
}

impl AtCommand for StoredFiles {
    type Response<'a> = StoredFilesTotal;

    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+QFLDS")
    }

    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+QFLDS:")
    }

    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<StoredFilesTotal, ParseError> {
        let mut p = lines.expect_prefixed(b"+QFLDS:")?;
        let v = StoredFilesTotal {
            size: parse_u64(p.str()?)?,
            count: p.u32()?,
        };
        p.end()?;
        lines.end()?;
        Ok(v)
    }
}

// ---------------------------------------------------------------------------------------------
// AT+QFDEL
// ---------------------------------------------------------------------------------------------

/// `AT+QFDEL="<name>"`: deletes one file, or with [`DeleteFile::all`] (`AT+QFDEL="*"`) every
/// UFS file (§7). Answers `OK`; a missing file is an error (`+CME ERROR: 405`).
///
/// Timeout: [`DEFAULT_TIMEOUT`] (§9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DeleteFile<'a> {
    name: &'a str,
    all: bool,
}

impl<'a> DeleteFile<'a> {
    /// Deletes the file `name` (no wildcard; see the [module docs](self)).
    pub const fn new(name: &'a str) -> Self {
        DeleteFile { name, all: false }
    }

    /// `AT+QFDEL="*"`: deletes every file on UFS.
    pub const fn all() -> Self {
        DeleteFile {
            name: "*",
            all: true,
        }
    }

    /// The name (or `*`) that will be sent.
    pub const fn name(&self) -> &'a str {
        self.name
    }
}

impl AtCommand for DeleteFile<'_> {
    type Response<'a> = ();

    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        if self.all {
            return enc.raw(b"AT+QFDEL=\"*\"");
        }
        check_name(self.name, false)?;
        enc.raw(b"AT+QFDEL=")?;
        enc.quoted(self.name, FILE_NAME_MAX)
    }

    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

// ---------------------------------------------------------------------------------------------
// AT+QFUPL
// ---------------------------------------------------------------------------------------------

/// `AT+QFUPL="<name>",<size>[,<timeout>[,<ackmode>]]`: stores `data` as a new file (§7).
///
/// The modem answers `CONNECT`, takes exactly `data.len()` raw bytes (sent by the client as
/// [`DataPhase::Send`]; binary is fine, nothing is escaped or terminated), then prints
/// `+QFUPL: <size>,<checksum>` and `OK`, parsed into an [`UploadResult`]; check it with
/// [`UploadResult::verify`].
///
/// * `timeout_s` is the modem's limit, in seconds, for a gap in the data (1–65535, default
///   5). If fewer bytes than declared arrive, the modem stores what it got after that time,
///   prints the real size and checksum and then `+CME ERROR: 421`.
/// * `ack_mode` (`<ackmode>`=1) makes the modem send one `A` byte after every 1024 bytes it
///   received, which gives flow control without RTS/CTS. The loop that honours it (send 1024
///   bytes, wait for `A`, ...) belongs to the client; this command only announces the mode.
///   fwupd pads to 2048-byte chunks and expects `chunk / 1024` `A`s; another driver sends
///   1024-byte chunks and waits for each `A`.
/// * An existing name is refused with `+CME ERROR: 407` ("file already exist"): delete it
///   first with [`DeleteFile`].
/// * An empty `data` is refused ([`EncodeError::Empty`]): the modem's range is
///   `1-<freesize>`.
///
/// Defaults (timeout 5, no ack mode) are omitted from the line; `ack_mode` forces the
/// timeout to be written.
///
/// Timeout ([`AtCommand::timeout`]): `timeout_s` + 5 s, plus one second per 10 KiB of data
/// (assumes ≥ 115 200 baud).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UploadFile<'a> {
    /// Name of the file to create.
    pub name: &'a str,
    /// The file's content.
    pub data: &'a [u8],
    /// Longest gap in the data the modem waits for, in seconds (1–65535, default 5).
    pub timeout_s: u16,
    /// Ask the modem for one `A` byte per 1024 bytes received.
    pub ack_mode: bool,
}

impl<'a> UploadFile<'a> {
    /// Default `<timeout>` of QFUPL in seconds (§7).
    pub const DEFAULT_TIMEOUT_S: u16 = 5;

    /// Uploads `data` as `name` with the default timeout and without ack mode.
    pub const fn new(name: &'a str, data: &'a [u8]) -> Self {
        UploadFile {
            name,
            data,
            timeout_s: Self::DEFAULT_TIMEOUT_S,
            ack_mode: false,
        }
    }
}

impl AtCommand for UploadFile<'_> {
    type Response<'a> = UploadResult;

    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        check_name(self.name, false)?;
        if self.data.is_empty() {
            return Err(EncodeError::Empty);
        }
        let len = payload_len(self.data)?;
        enc.raw(b"AT+QFUPL=")?;
        enc.quoted(self.name, FILE_NAME_MAX)?;
        enc.comma()?;
        enc.u32(len)?;
        if self.ack_mode || self.timeout_s != Self::DEFAULT_TIMEOUT_S {
            enc.comma()?;
            enc.ranged(u32::from(self.timeout_s), 1, 65535)?;
        }
        if self.ack_mode {
            enc.raw(b",1")?;
        }
        Ok(())
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(u64::from(self.timeout_s))
            + MARGIN
            + transfer_time(u64::try_from(self.data.len()).unwrap_or(u64::MAX))
    }

    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+QFUPL:")
    }

    fn data(&self) -> DataPhase<'_> {
        DataPhase::Send(self.data)
    }

    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<UploadResult, ParseError> {
        let (size, checksum) = size_and_checksum(&mut lines, b"+QFUPL:")?;
        Ok(UploadResult { size, checksum })
    }
}

/// `+QFUPL: <size>,<checksum>`: what the modem stored.
///
/// The checksum is printed as lowercase hex without leading zeros (`+QFUPL: 683,f6e`); a
/// `0x` prefix, reported once for an EC600M (`+QFUPL: 20,0x4A2B`), is accepted too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UploadResult {
    /// Bytes stored.
    pub size: u32,
    /// [`xor_checksum`] of the stored bytes, as computed by the modem.
    pub checksum: u16,
}

impl UploadResult {
    /// Checks that the modem stored exactly `data`: same size, same [`xor_checksum`].
    pub fn verify(&self, data: &[u8]) -> Result<(), ChecksumMismatch> {
        let len = u64::try_from(data.len()).unwrap_or(u64::MAX);
        compare(self.size, self.checksum, len, xor_checksum(data))
    }

    /// Like [`verify`](Self::verify) for data whose checksum was computed in chunks.
    pub fn verify_streamed(&self, local: &XorChecksum) -> Result<(), ChecksumMismatch> {
        compare(self.size, self.checksum, local.len(), local.finish())
    }
}

// ---------------------------------------------------------------------------------------------
// AT+QFDWL
// ---------------------------------------------------------------------------------------------

/// `AT+QFDWL="<name>"`: reads a whole file (§7).
///
/// The modem answers a bare `CONNECT` — it does **not** announce the length — then the file
/// bytes, then `+QFDWL: <size>,<checksum>` and `OK`. The caller must therefore know the size
/// beforehand (from [`ListFiles`] with the file's name) and passes it as `size`; the payload is
/// received as [`DataLength::Exact`]. The tail is parsed into a [`DownloadResult`]; check the
/// received bytes with [`DownloadResult::verify_streamed`]. (One EC600M note puts `OK` before
/// the `+QFDWL:` line; it is considered unreliable, §7.) For a length announced by the
/// modem, use [`OpenFile`] + [`ReadFile`] instead.
///
/// Timeout: 5 s plus one second per 10 KiB of `size` (assumes ≥ 115 200 baud).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DownloadFile<'a> {
    /// Name of the file.
    pub name: &'a str,
    /// The file's size, as listed by [`ListFiles`].
    pub size: u32,
}

impl AtCommand for DownloadFile<'_> {
    type Response<'a> = DownloadResult;

    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        check_name(self.name, false)?;
        enc.raw(b"AT+QFDWL=")?;
        enc.quoted(self.name, FILE_NAME_MAX)
    }

    fn timeout(&self) -> Duration {
        DEFAULT_TIMEOUT + transfer_time(u64::from(self.size))
    }

    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+QFDWL:")
    }

    fn data(&self) -> DataPhase<'_> {
        DataPhase::Receive(DataLength::Exact(self.size))
    }

    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<DownloadResult, ParseError> {
        let (size, checksum) = size_and_checksum(&mut lines, b"+QFDWL:")?;
        Ok(DownloadResult { size, checksum })
    }
}

/// `+QFDWL: <size>,<checksum>`: what the modem sent (checksum in hex, with or without `0x`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DownloadResult {
    /// Bytes sent.
    pub size: u32,
    /// [`xor_checksum`] of the file, as computed by the modem.
    pub checksum: u16,
}

impl DownloadResult {
    /// Checks that `data` is what the modem sent: same size, same [`xor_checksum`].
    pub fn verify(&self, data: &[u8]) -> Result<(), ChecksumMismatch> {
        let len = u64::try_from(data.len()).unwrap_or(u64::MAX);
        compare(self.size, self.checksum, len, xor_checksum(data))
    }

    /// Like [`verify`](Self::verify) for data whose checksum was computed in chunks while it
    /// was received.
    pub fn verify_streamed(&self, local: &XorChecksum) -> Result<(), ChecksumMismatch> {
        compare(self.size, self.checksum, local.len(), local.finish())
    }
}

// ---------------------------------------------------------------------------------------------
// Handle I/O
// ---------------------------------------------------------------------------------------------

/// A file handle returned by [`OpenFile`] (`+QFOPEN: <handle>`); EC2x handles are numbers
/// such as 1027, not small indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FileHandle(pub u32);

impl fmt::Display for FileHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// `<mode>` of `AT+QFOPEN` (§7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum OpenMode {
    /// 0: create the file if missing, else open it; read/write.
    CreateOrOpen = 0,
    /// 1: create the file, or truncate it if it exists; read/write. (One EC600M note calls
    /// mode 1 "append" \[U\]; the other sources agree on truncate.)
    CreateOrTruncate = 1,
    /// 2: open an existing file read-only; an error if it is missing.
    ReadOnly = 2,
}

/// `AT+QFOPEN="<name>",<mode>`: opens a file and returns its [`FileHandle`]
/// (`+QFOPEN: <handle>`, §7).
///
/// The mode is always sent: the sources disagree on the modem's default when it is omitted.
/// Close the handle with [`CloseFile`]; too many open files gives `+CME ERROR: 413`, an already
/// open file 426. Timeout: [`DEFAULT_TIMEOUT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct OpenFile<'a> {
    /// Name of the file.
    pub name: &'a str,
    /// How to open it.
    pub mode: OpenMode,
}

impl AtCommand for OpenFile<'_> {
    type Response<'a> = FileHandle;

    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        check_name(self.name, false)?;
        enc.raw(b"AT+QFOPEN=")?;
        enc.quoted(self.name, FILE_NAME_MAX)?;
        enc.comma()?;
        enc.u32(self.mode as u32)
    }

    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+QFOPEN:")
    }

    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<FileHandle, ParseError> {
        let mut p = lines.expect_prefixed(b"+QFOPEN:")?;
        let h = FileHandle(p.u32()?);
        p.end()?;
        lines.end()?;
        Ok(h)
    }
}

/// `AT+QFREAD=<handle>[,<len>]`: reads up to `len` bytes (all remaining bytes if `None`)
/// from the handle's position (§7).
///
/// The modem answers `CONNECT <n>` with the exact count it sends, then `n` bytes, then `OK`;
/// the payload is received as [`DataLength::Announced`]. At the end of the file it answers
/// `+CME ERROR: 402` ("read zero bytes") instead, which is not a failure: Quectel's own driver
/// treats it as end of file. A `len` of 0 is refused ([`EncodeError::OutOfRange`]).
///
/// Timeout: 5 s plus one second per 10 KiB of `len` (assumes ≥ 115 200 baud); without a
/// `len` the client's timeout wrapper should allow for the file's size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ReadFile {
    /// The open file.
    pub handle: FileHandle,
    /// Most bytes to read, or `None` for the rest of the file.
    pub len: Option<u32>,
}

impl AtCommand for ReadFile {
    type Response<'a> = ();

    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+QFREAD=")?;
        enc.u32(self.handle.0)?;
        if let Some(len) = self.len {
            enc.comma()?;
            enc.ranged(len, 1, u32::MAX)?;
        }
        Ok(())
    }

    fn timeout(&self) -> Duration {
        DEFAULT_TIMEOUT + transfer_time(u64::from(self.len.unwrap_or(0)))
    }

    fn data(&self) -> DataPhase<'_> {
        DataPhase::Receive(DataLength::Announced)
    }

    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// `AT+QFWRITE=<handle>,<len>[,<timeout>]`: writes `data` at the handle's position (§7).
///
/// The modem answers `CONNECT`, takes exactly `data.len()` bytes ([`DataPhase::Send`],
/// binary), then prints `+QFWRITE: <written>,<total>` and `OK`. `timeout_s` is the modem's
/// limit for the data, in seconds (1–65535; omitted when `None`). Empty `data` is refused
/// ([`EncodeError::Empty`]).
///
/// Timeout: `timeout_s` (5 when `None`) + 5 s, plus one second per 10 KiB of data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct WriteFile<'a> {
    /// The open file.
    pub handle: FileHandle,
    /// Bytes to write.
    pub data: &'a [u8],
    /// The modem's data timeout in seconds, or `None` for its default.
    pub timeout_s: Option<u16>,
}

/// `+QFWRITE: <written>,<total>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct WriteResult {
    /// Bytes written by this command.
    pub written: u32,
    /// Size of the file afterwards.
    pub total: u32,
}

impl AtCommand for WriteFile<'_> {
    type Response<'a> = WriteResult;

    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        if self.data.is_empty() {
            return Err(EncodeError::Empty);
        }
        let len = payload_len(self.data)?;
        enc.raw(b"AT+QFWRITE=")?;
        enc.u32(self.handle.0)?;
        enc.comma()?;
        enc.u32(len)?;
        if let Some(t) = self.timeout_s {
            enc.comma()?;
            enc.ranged(u32::from(t), 1, 65535)?;
        }
        Ok(())
    }

    fn timeout(&self) -> Duration {
        let modem = self.timeout_s.unwrap_or(UploadFile::DEFAULT_TIMEOUT_S);
        Duration::from_secs(u64::from(modem))
            + MARGIN
            + transfer_time(u64::try_from(self.data.len()).unwrap_or(u64::MAX))
    }

    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+QFWRITE:")
    }

    fn data(&self) -> DataPhase<'_> {
        DataPhase::Send(self.data)
    }

    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<WriteResult, ParseError> {
        let mut p = lines.expect_prefixed(b"+QFWRITE:")?;
        let v = WriteResult {
            written: p.u32()?,
            total: p.u32()?,
        };
        p.end()?;
        lines.end()?;
        Ok(v)
    }
}

/// `<origin>` of `AT+QFSEEK` (§7; 1 and 2 are \[U\]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SeekOrigin {
    /// 0: from the start of the file (the modem's default).
    #[default]
    Start = 0,
    /// 1: from the current position.
    Current = 1,
    /// 2: from the end of the file.
    End = 2,
}

/// `AT+QFSEEK=<handle>,<offset>[,<origin>]`: moves the handle's position (§7). The origin is
/// omitted for [`SeekOrigin::Start`], the modem's default. Answers `OK`.
/// Timeout: [`DEFAULT_TIMEOUT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SeekFile {
    /// The open file.
    pub handle: FileHandle,
    /// Offset in bytes from `origin`.
    pub offset: u32,
    /// Where `offset` counts from.
    pub origin: SeekOrigin,
}

impl AtCommand for SeekFile {
    type Response<'a> = ();

    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+QFSEEK=")?;
        enc.u32(self.handle.0)?;
        enc.comma()?;
        enc.u32(self.offset)?;
        if self.origin != SeekOrigin::Start {
            enc.comma()?;
            enc.u32(self.origin as u32)?;
        }
        Ok(())
    }

    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// `AT+QFPOSITION=<handle>`: the handle's position in bytes (`+QFPOSITION: <pos>`, §7).
/// Timeout: [`DEFAULT_TIMEOUT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FilePosition {
    /// The open file.
    pub handle: FileHandle,
}

impl AtCommand for FilePosition {
    type Response<'a> = u32;

    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+QFPOSITION=")?;
        enc.u32(self.handle.0)
    }

    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+QFPOSITION:")
    }

    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<u32, ParseError> {
        let mut p = lines.expect_prefixed(b"+QFPOSITION:")?;
        let pos = p.u32()?;
        p.end()?;
        lines.end()?;
        Ok(pos)
    }
}

/// `AT+QFFLUSH=<handle>`: writes buffered data of the handle to flash (§7). Answers `OK`.
/// Timeout: [`DEFAULT_TIMEOUT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FlushFile {
    /// The open file.
    pub handle: FileHandle,
}

impl AtCommand for FlushFile {
    type Response<'a> = ();

    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+QFFLUSH=")?;
        enc.u32(self.handle.0)
    }

    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

/// `AT+QFCLOSE=<handle>`: closes the handle (§7). Answers `OK`; an unknown handle gives
/// `+CME ERROR: 416`. Timeout: [`DEFAULT_TIMEOUT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CloseFile {
    /// The open file.
    pub handle: FileHandle,
}

impl AtCommand for CloseFile {
    type Response<'a> = ();

    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+QFCLOSE=")?;
        enc.u32(self.handle.0)
    }

    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

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

    const H: FileHandle = FileHandle(1027);

    #[test]
    fn encodings() {
        enc! {
            ListFiles::all() => b"AT+QFLST=\"*\"",
            ListFiles::drive(Drive::Ufs) => b"AT+QFLST=\"UFS:*\"",
            ListFiles::drive(Drive::Ram) => b"AT+QFLST=\"RAM:*\"",
            ListFiles::name("UFS:dfota_update.bin") => b"AT+QFLST=\"UFS:dfota_update.bin\"",
            ListFiles::name("a.bin") => b"AT+QFLST=\"a.bin\"",
            FreeSpace::default() => b"AT+QFLDS=\"UFS\"",
            FreeSpace { drive: Drive::Sd } => b"AT+QFLDS=\"SD\"",
            StoredFiles => b"AT+QFLDS",
            DeleteFile::new("UFS:a.bin") => b"AT+QFDEL=\"UFS:a.bin\"",
            DeleteFile::all() => b"AT+QFDEL=\"*\"",
            UploadFile::new("cacert.pem", b"abc") => b"AT+QFUPL=\"cacert.pem\",3",
            UploadFile { timeout_s: 10, ..UploadFile::new("x", b"abcd") }
                => b"AT+QFUPL=\"x\",4,10",
            UploadFile { ack_mode: true, ..UploadFile::new("dfota_update.bin", &[0; 2048]) }
                => b"AT+QFUPL=\"dfota_update.bin\",2048,5,1",
            DownloadFile { name: "UFS:a.bin", size: 20 } => b"AT+QFDWL=\"UFS:a.bin\"",
            OpenFile { name: "a.bin", mode: OpenMode::CreateOrOpen } => b"AT+QFOPEN=\"a.bin\",0",
            OpenFile { name: "a.bin", mode: OpenMode::CreateOrTruncate }
                => b"AT+QFOPEN=\"a.bin\",1",
            OpenFile { name: "RAM:a", mode: OpenMode::ReadOnly } => b"AT+QFOPEN=\"RAM:a\",2",
            ReadFile { handle: H, len: None } => b"AT+QFREAD=1027",
            ReadFile { handle: H, len: Some(1024) } => b"AT+QFREAD=1027,1024",
            WriteFile { handle: H, data: b"hello", timeout_s: None } => b"AT+QFWRITE=1027,5",
            WriteFile { handle: H, data: b"hello", timeout_s: Some(3) }
                => b"AT+QFWRITE=1027,5,3",
            SeekFile { handle: H, offset: 100, origin: SeekOrigin::Start }
                => b"AT+QFSEEK=1027,100",
            SeekFile { handle: H, offset: 0, origin: SeekOrigin::Current }
                => b"AT+QFSEEK=1027,0,1",
            SeekFile { handle: H, offset: 0, origin: SeekOrigin::End } => b"AT+QFSEEK=1027,0,2",
            FilePosition { handle: H } => b"AT+QFPOSITION=1027",
            FlushFile { handle: H } => b"AT+QFFLUSH=1027",
            CloseFile { handle: H } => b"AT+QFCLOSE=1027",
        }
    }

    #[test]
    fn data_phases_and_timeouts() {
        let up = UploadFile::new("x", b"abc");
        assert_eq!(up.data(), DataPhase::Send(b"abc"));
        assert_eq!(up.timeout(), Duration::from_secs(11));
        let big = [0u8; 20 * 1024];
        let up = UploadFile {
            timeout_s: 30,
            ..UploadFile::new("x", &big)
        };
        assert_eq!(up.timeout(), Duration::from_secs(37));
        let dl = DownloadFile {
            name: "a",
            size: 20,
        };
        assert_eq!(dl.data(), DataPhase::Receive(DataLength::Exact(20)));
        assert_eq!(dl.timeout(), Duration::from_secs(6));
        let rd = ReadFile {
            handle: H,
            len: None,
        };
        assert_eq!(rd.data(), DataPhase::Receive(DataLength::Announced));
        assert_eq!(rd.timeout(), DEFAULT_TIMEOUT);
        let wr = WriteFile {
            handle: H,
            data: b"ab",
            timeout_s: None,
        };
        assert_eq!(wr.data(), DataPhase::Send(b"ab"));
        assert_eq!(wr.timeout(), Duration::from_secs(11));
        assert_eq!(CloseFile { handle: H }.data(), DataPhase::None);
    }

    #[test]
    fn bad_names_are_refused() {
        let long = "a".repeat(FILE_NAME_MAX + 1);
        let max = "b".repeat(FILE_NAME_MAX);
        assert!(encode(&DeleteFile::new(&max)).is_ok());
        enc_err! {
            DeleteFile::new("a\"b") => EncodeError::ForbiddenByte { byte: b'"', position: 1 },
            DeleteFile::new("a\rb") => EncodeError::ForbiddenByte { byte: b'\r', position: 1 },
            DeleteFile::new("a\nb") => EncodeError::ForbiddenByte { byte: b'\n', position: 1 },
            DeleteFile::new("a\0b") => EncodeError::ForbiddenByte { byte: 0, position: 1 },
            DeleteFile::new("é") => EncodeError::ForbiddenByte { byte: 0xc3, position: 0 },
            DeleteFile::new(&long) => EncodeError::TooLong { len: FILE_NAME_MAX + 1, max: FILE_NAME_MAX },
            DeleteFile::new("") => EncodeError::Empty,
            DeleteFile::new("UFS:") => EncodeError::Empty,
            DeleteFile::new("*") => EncodeError::ForbiddenByte { byte: b'*', position: 0 },
            DeleteFile::new("UFS:*") => EncodeError::ForbiddenByte { byte: b'*', position: 4 },
            DeleteFile::new("EFS:a") => EncodeError::Invalid(
                "a file name may only carry a UFS:, RAM: or SD: drive prefix"),
            ListFiles::name("a*b") => EncodeError::ForbiddenByte { byte: b'*', position: 1 },
            ListFiles::name("UFS:a\"") => EncodeError::ForbiddenByte { byte: b'"', position: 5 },
            ListFiles::name("") => EncodeError::Empty,
            UploadFile::new("x", b"") => EncodeError::Empty,
            UploadFile::new("*", b"a") => EncodeError::ForbiddenByte { byte: b'*', position: 0 },
            UploadFile { timeout_s: 0, ..UploadFile::new("x", b"a") }
                => EncodeError::OutOfRange { value: 0, min: 1, max: 65535 },
            DownloadFile { name: "a\r\nAT", size: 1 }
                => EncodeError::ForbiddenByte { byte: b'\r', position: 1 },
            OpenFile { name: "", mode: OpenMode::ReadOnly } => EncodeError::Empty,
            ReadFile { handle: H, len: Some(0) }
                => EncodeError::OutOfRange { value: 0, min: 1, max: i64::from(u32::MAX) },
            WriteFile { handle: H, data: b"", timeout_s: None } => EncodeError::Empty,
            WriteFile { handle: H, data: b"a", timeout_s: Some(0) }
                => EncodeError::OutOfRange { value: 0, min: 1, max: 65535 },
        }
        // Lower-case drive prefixes are accepted, as is a sub-directory.
        enc! {
            DeleteFile::new("ufs:UFS/fota.pac") => b"AT+QFDEL=\"ufs:UFS/fota.pac\"",
            ListFiles::name("sd:*") => b"AT+QFLST=\"sd:*\"",
        }
    }

    #[test]
    fn short_buffer_is_an_error() {
        let mut buf = [0u8; 10];
        let mut enc = Encoder::new(&mut buf);
        assert_eq!(
            UploadFile::new("name.bin", b"abc").encode(&mut enc),
            Err(EncodeError::BufferTooSmall { capacity: 10 })
        );
    }

    #[test]
    fn parse_listing() {
        let cmd = ListFiles::all();
        let list = cmd
            .parse(Lines::new(
                b"+QFLST: \"UFS:dfota_update.bin\",1939\n+QFLST: \"cacert.pem\",683\n",
            ))
            .unwrap();
        let mut it = list;
        assert_eq!(
            it.next(),
            Some(FileEntry {
                name: "UFS:dfota_update.bin",
                size: 1939
            })
        );
        assert_eq!(
            it.next(),
            Some(FileEntry {
                name: "cacert.pem",
                size: 683
            })
        );
        assert_eq!(it.next(), None);
        assert_eq!(list.count(), 2);
        assert!(!list.is_empty());
        assert_eq!(list.find("dfota_update.bin").map(|e| e.size), Some(1939));
        assert_eq!(list.find("UFS:cacert.pem").map(|e| e.size), Some(683));
        assert_eq!(list.find("RAM:cacert.pem"), None);
        assert_eq!(list.find("missing"), None);
        let e = list.find("dfota_update.bin").unwrap();
        assert_eq!(e.name_without_drive(), "dfota_update.bin");
        // Unquoted names are accepted too.
        let l = cmd.parse(Lines::new(b"+QFLST: a.bin,20\n")).unwrap();
        assert_eq!(l.find("a.bin").map(|e| e.size), Some(20));
        // Empty listing.
        assert!(cmd.parse(Lines::new(b"")).unwrap().is_empty());
        // Any bad line fails the whole parse.
        for bad in [
            &b"+QFLST: \"a\",1\n+QFLST: \"b\"\n"[..],
            b"+QFLST: \"a\",x\n",
            b"+QFLST: \"a\",1,2\n",
            b"+QFLDS: 1,2\n",
            b"+QFLST: \"a\n",
        ] {
            assert!(cmd.parse(Lines::new(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parse_space() {
        assert_eq!(
            FreeSpace::default().parse(Lines::new(b"+QFLDS: 180224,286720\n")),
            Ok(DriveSpace {
                free: 180224,
                total: 286720
            })
        );
        assert_eq!(
            FreeSpace { drive: Drive::Sd }.parse(Lines::new(b"+QFLDS: 8000000000,16000000000\n")),
            Ok(DriveSpace {
                free: 8_000_000_000,
                total: 16_000_000_000
            })
        );
        assert_eq!(
            StoredFiles.parse(Lines::new(b"+QFLDS: 2622,2\n")),
            Ok(StoredFilesTotal {
                size: 2622,
                count: 2
            })
        );
        assert_eq!(
            FreeSpace::default().parse(Lines::new(b"+QFLDS: 1\n")),
            Err(ParseError::MissingField)
        );
        assert_eq!(
            FreeSpace::default().parse(Lines::new(b"+QFLDS: -1,2\n")),
            Err(ParseError::BadNumber)
        );
        assert_eq!(
            FreeSpace::default().parse(Lines::new(b"+QFLDS: 99999999999999999999,2\n")),
            Err(ParseError::OutOfRange)
        );
        assert_eq!(
            FreeSpace::default().parse(Lines::new(b"")),
            Err(ParseError::MissingLine)
        );
    }

    #[test]
    fn parse_transfers() {
        let up = UploadFile::new("x", b"a");
        assert_eq!(
            up.parse(Lines::new(b"+QFUPL: 683,f6e\n")),
            Ok(UploadResult {
                size: 683,
                checksum: 0xf6e
            })
        );
        assert_eq!(
            up.parse(Lines::new(b"+QFUPL: 1939,4f64\n")),
            Ok(UploadResult {
                size: 1939,
                checksum: 0x4f64
            })
        );
        assert_eq!(
            up.parse(Lines::new(b"+QFUPL: 20,0x4A2B\n")),
            Ok(UploadResult {
                size: 20,
                checksum: 0x4a2b
            })
        );
        assert_eq!(
            up.parse(Lines::new(b"+QFUPL: 20,12345\n")),
            Err(ParseError::OutOfRange)
        );
        assert_eq!(
            up.parse(Lines::new(b"+QFUPL: 20,xyz\n")),
            Err(ParseError::BadNumber)
        );
        assert_eq!(
            up.parse(Lines::new(b"+QFUPL: 20,3\n+QFUPL: 20,3\n")),
            Err(ParseError::TrailingData)
        );
        let dl = DownloadFile {
            name: "a",
            size: 20,
        };
        assert_eq!(
            dl.parse(Lines::new(b"+QFDWL: 20,3\n")),
            Ok(DownloadResult {
                size: 20,
                checksum: 3
            })
        );
        assert_eq!(
            dl.parse(Lines::new(b"+QFUPL: 20,3\n")),
            Err(ParseError::UnexpectedLine)
        );
        let open = OpenFile {
            name: "a",
            mode: OpenMode::ReadOnly,
        };
        assert_eq!(open.parse(Lines::new(b"+QFOPEN: 1027\n")), Ok(H));
        assert_eq!(
            open.parse(Lines::new(b"+QFOPEN: \n")),
            Err(ParseError::MissingField)
        );
        let wr = WriteFile {
            handle: H,
            data: b"hello",
            timeout_s: None,
        };
        assert_eq!(
            wr.parse(Lines::new(b"+QFWRITE: 5,105\n")),
            Ok(WriteResult {
                written: 5,
                total: 105
            })
        );
        assert_eq!(
            FilePosition { handle: H }.parse(Lines::new(b"+QFPOSITION: 4096\n")),
            Ok(4096)
        );
        assert_eq!(
            ReadFile {
                handle: H,
                len: None
            }
            .parse(Lines::new(b"")),
            Ok(())
        );
        assert_eq!(CloseFile { handle: H }.parse(Lines::new(b"")), Ok(()));
        assert_eq!(
            CloseFile { handle: H }.parse(Lines::new(b"junk\n")),
            Err(ParseError::TrailingData)
        );
    }

    #[test]
    fn verify_results() {
        let data = [0x12, 0x34, 0x56];
        let ok = UploadResult {
            size: 3,
            checksum: 0x4434,
        };
        assert_eq!(ok.verify(&data), Ok(()));
        let mut c = XorChecksum::new();
        c.update(&data[..1]);
        c.update(&data[1..]);
        assert_eq!(ok.verify_streamed(&c), Ok(()));
        assert_eq!(
            UploadResult {
                size: 4,
                checksum: 0x4434
            }
            .verify(&data),
            Err(ChecksumMismatch {
                modem_size: 4,
                modem_checksum: 0x4434,
                local_size: 3,
                local_checksum: 0x4434
            })
        );
        let dl = DownloadResult {
            size: 3,
            checksum: 0x4435,
        };
        assert!(dl.verify(&data).is_err());
        assert!(dl.verify_streamed(&c).is_err());
        assert_eq!(
            DownloadResult {
                size: 3,
                checksum: 0x4434
            }
            .verify(&data),
            Ok(())
        );
    }

    #[test]
    fn checksum_known_values() {
        assert_eq!(xor_checksum(&[]), 0);
        assert_eq!(xor_checksum(&[0xab]), 0xab00);
        assert_eq!(xor_checksum(&[0x12, 0x34]), 0x1234);
        assert_eq!(xor_checksum(&[0x12, 0x34, 0x56]), 0x4434);
        assert_eq!(xor_checksum(&[0x12, 0x34, 0x12, 0x34]), 0);
        assert_eq!(xor_checksum(b"ABCD"), 0x4142 ^ 0x4344);
        // A 20-byte file (the size of the `+QFDWL: 20,3` fixture) whose words cancel except
        // for a final 0x0003.
        let mut twenty = [0u8; 20];
        twenty[19] = 3;
        assert_eq!(xor_checksum(&twenty), 3);
    }

    #[test]
    fn streaming_matches_one_shot_at_every_split() {
        let data: Vec<u8> = (0..=255u8)
            .cycle()
            .take(301)
            .map(|b| b.wrapping_mul(37))
            .collect();
        for len in [0, 1, 2, 3, 7, 300, 301] {
            let d = &data[..len];
            let want = xor_checksum(d);
            for i in 0..=len {
                for j in i..=len {
                    let mut c = XorChecksum::new();
                    c.update(&d[..i]);
                    c.update(&d[i..j]);
                    c.update(&[]);
                    c.update(&d[j..]);
                    assert_eq!(c.finish(), want, "len {len} split {i}/{j}");
                    assert_eq!(c.len(), len as u64);
                }
            }
            // One byte at a time.
            let mut c = XorChecksum::new();
            for b in d {
                c.update(core::slice::from_ref(b));
            }
            assert_eq!(c.finish(), want);
            assert_eq!(c.is_empty(), len == 0);
        }
    }

    #[test]
    fn checksum_formatting() {
        let mut buf = [0u8; 4];
        for (v, s) in [
            (0xf6e, "f6e"),
            (0x4f64, "4f64"),
            (3, "3"),
            (0, "0"),
            (0x10, "10"),
            (0xffff, "ffff"),
            (0x0100, "100"),
        ] {
            assert_eq!(format_checksum(v, &mut buf), s);
        }
    }

    proptest! {
        #[test]
        fn encode_is_one_safe_line(name in any::<std::string::String>(), size in any::<u32>(),
                                   t in any::<u16>(), ack in any::<bool>(),
                                   len in proptest::option::of(any::<u32>()),
                                   data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let outs = [
                encode(&ListFiles::name(&name)),
                encode(&DeleteFile::new(&name)),
                encode(&UploadFile { name: &name, data: &data, timeout_s: t, ack_mode: ack }),
                encode(&DownloadFile { name: &name, size }),
                encode(&OpenFile { name: &name, mode: OpenMode::CreateOrOpen }),
                encode(&ReadFile { handle: FileHandle(size), len }),
                encode(&WriteFile { handle: FileHandle(size), data: &data, timeout_s: Some(t) }),
                encode(&SeekFile { handle: FileHandle(size), offset: size, origin: SeekOrigin::End }),
            ];
            for out in outs.iter().flatten() {
                prop_assert!(is_one_line(out), "{:?}", out);
            }
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let l = Lines::new(&bytes);
            if let Ok(list) = ListFiles::all().parse(l) {
                for e in list {
                    let _ = e.name_without_drive();
                }
                let _ = list.find("a");
            }
            let _ = FreeSpace::default().parse(l);
            let _ = StoredFiles.parse(l);
            let _ = DeleteFile::all().parse(l);
            let _ = UploadFile::new("a", b"a").parse(l);
            let _ = DownloadFile { name: "a", size: 1 }.parse(l);
            let _ = OpenFile { name: "a", mode: OpenMode::ReadOnly }.parse(l);
            let _ = ReadFile { handle: H, len: None }.parse(l);
            let _ = WriteFile { handle: H, data: b"a", timeout_s: None }.parse(l);
            let _ = FilePosition { handle: H }.parse(l);
            let _ = SeekFile { handle: H, offset: 0, origin: SeekOrigin::Start }.parse(l);
            let _ = FlushFile { handle: H }.parse(l);
            let _ = CloseFile { handle: H }.parse(l);
        }

        #[test]
        fn streaming_checksum_any_chunks(data in proptest::collection::vec(any::<u8>(), 0..200),
                                         cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
            cuts.sort_unstable();
            let mut c = XorChecksum::new();
            let mut at = 0;
            for cut in cuts {
                c.update(&data[at..cut]);
                at = cut;
            }
            c.update(&data[at..]);
            prop_assert_eq!(c.finish(), xor_checksum(&data));
            let mut buf = [0u8; 4];
            let s = format_checksum(c.finish(), &mut buf);
            prop_assert_eq!(crate::at::params::parse_hex(s.as_bytes()), Ok(u32::from(c.finish())));
        }
    }
}
