//! The ESP-IDF partition table (reference §3.2): parse, validate and encode.
//!
//! The table lives at [`PARTITION_TABLE_OFFSET`] (`CONFIG_PARTITION_TABLE_OFFSET`) and holds
//! at most [`PARTITION_TABLE_MAX_LEN`] bytes of 32-byte records (`esp_partition_info_t`):
//!
//! | offset | field |
//! |---|---|
//! | 0 | magic `u16` = `0x50AA` (bytes `AA 50`) |
//! | 2 | type `u8` |
//! | 3 | subtype `u8` |
//! | 4 | offset `u32` LE |
//! | 8 | size `u32` LE |
//! | 12 | label `[u8; 16]`, NUL-padded |
//! | 28 | flags `u32` LE: bit 0 encrypted, bit 1 readonly |
//!
//! After the entries `gen_esp32part.py` writes an MD5 record (`EB EB`, 14 × `FF`, then the MD5
//! of all preceding entry bytes) and an end marker of `0xFF` bytes; the rest of the sector is
//! `0xFF`.
//!
//! [`PartitionTable::parse`] follows `esp_partition_table_verify` and adds the layout rules
//! `gen_esp32part.py` enforces, so a table that parses here is one the bootloader and
//! `esp_ota_ops` handle correctly. [`encode`] writes a table (with MD5) for tests and
//! simulators; it does not validate, so tests can also build broken tables.
//!
//! [`TableScanner`] makes the same checks record by record, as the table is read, and keeps
//! only what an OTA updater needs ([`OtaLayout`]: otadata, factory, the `ota_N` slots), so
//! a device never holds the whole [`PartitionTable`] (about 3.4 KiB) on its stack.

use embedded_storage::nor_flash::ReadNorFlash;
use md5::{Digest, Md5};

use super::otadata::BootChoice;

/// Default flash address of the partition table (`CONFIG_PARTITION_TABLE_OFFSET`).
pub const PARTITION_TABLE_OFFSET: u32 = 0x8000;
/// Maximum length of the table's records (`ESP_PARTITION_TABLE_MAX_LEN`).
pub const PARTITION_TABLE_MAX_LEN: usize = 0xC00;
/// Size of one record (`sizeof(esp_partition_info_t)`).
pub const ENTRY_LEN: usize = 32;
/// Record slots in [`PARTITION_TABLE_MAX_LEN`] bytes (`ESP_PARTITION_TABLE_MAX_ENTRIES`).
pub const MAX_RECORDS: usize = PARTITION_TABLE_MAX_LEN / ENTRY_LEN;
/// Most partitions a table can hold: one record slot is always needed for the end marker.
pub const MAX_PARTITIONS: usize = MAX_RECORDS - 1;
/// Magic of a partition record (`ESP_PARTITION_MAGIC`), stored as bytes `AA 50`.
pub const ENTRY_MAGIC: u16 = 0x50AA;
/// Magic of the MD5 record (`ESP_PARTITION_MAGIC_MD5`), stored as bytes `EB EB`.
pub const MD5_MAGIC: u16 = 0xEBEB;
/// Offset of the digest inside the MD5 record (`ESP_PARTITION_MD5_OFFSET`).
pub const MD5_OFFSET: usize = 16;
/// Required alignment of app partition offsets (`gen_esp32part.py` `ALIGNMENT`).
pub const APP_ALIGNMENT: u32 = 0x10000;
/// Required alignment of data (and all non-app) partition offsets.
pub const DATA_ALIGNMENT: u32 = 0x1000;
/// Required size of the otadata partition: two 4 KiB sectors (§3.3).
pub const OTADATA_SIZE: u32 = 0x2000;
/// Maximum number of `ota_N` app slots (`ota_0` … `ota_15`).
pub const MAX_OTA_SLOTS: u8 = 16;

/// Subtype of an app partition (type `0x00`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AppSubType {
    /// `factory` (0x00): booted when otadata selects nothing.
    Factory,
    /// `ota_0` … `ota_15` (0x10 … 0x1F): the OTA slot with this index (0 ..= 15).
    Ota(u8),
    /// `test` (0x20): the test app, booted by a GPIO at reset.
    Test,
    /// `tee_0` / `tee_1` (0x30 / 0x31): ESP-TEE slots, index 0 or 1.
    Tee(u8),
    /// Any other subtype, as stored.
    Other(u8),
}

impl AppSubType {
    /// Decodes a raw app subtype byte; never fails.
    pub const fn from_raw(raw: u8) -> Self {
        match raw {
            0x00 => AppSubType::Factory,
            0x10..=0x1F => AppSubType::Ota(raw & 0x0F),
            0x20 => AppSubType::Test,
            0x30 | 0x31 => AppSubType::Tee(raw & 0x01),
            other => AppSubType::Other(other),
        }
    }

    /// The raw subtype byte. `Ota(n)` keeps only the low 4 bits of `n`, `Tee(n)` the low bit.
    pub const fn to_raw(self) -> u8 {
        match self {
            AppSubType::Factory => 0x00,
            AppSubType::Ota(n) => 0x10 | (n & 0x0F),
            AppSubType::Test => 0x20,
            AppSubType::Tee(n) => 0x30 | (n & 0x01),
            AppSubType::Other(raw) => raw,
        }
    }
}

/// Subtype of a data partition (type `0x01`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DataSubType {
    /// `ota` (0x00): otadata, the boot-slot selection (two 4 KiB sectors).
    Ota,
    /// `phy` (0x01): PHY calibration data.
    Phy,
    /// `nvs` (0x02): non-volatile storage.
    Nvs,
    /// `coredump` (0x03): core dumps.
    Coredump,
    /// `nvs_keys` (0x04): NVS encryption keys.
    NvsKeys,
    /// `efuse` (0x05): virtual eFuses.
    Efuse,
    /// `undefined` (0x06): data of no defined kind.
    Undefined,
    /// `esphttpd` (0x80).
    EspHttpd,
    /// `fat` (0x81): FAT file system.
    Fat,
    /// `spiffs` (0x82): SPIFFS file system.
    Spiffs,
    /// `littlefs` (0x83): LittleFS file system.
    LittleFs,
    /// `tee_ota` (0x90): ESP-TEE otadata.
    TeeOta,
    /// Any other subtype, as stored.
    Other(u8),
}

impl DataSubType {
    /// Decodes a raw data subtype byte; never fails.
    pub const fn from_raw(raw: u8) -> Self {
        match raw {
            0x00 => DataSubType::Ota,
            0x01 => DataSubType::Phy,
            0x02 => DataSubType::Nvs,
            0x03 => DataSubType::Coredump,
            0x04 => DataSubType::NvsKeys,
            0x05 => DataSubType::Efuse,
            0x06 => DataSubType::Undefined,
            0x80 => DataSubType::EspHttpd,
            0x81 => DataSubType::Fat,
            0x82 => DataSubType::Spiffs,
            0x83 => DataSubType::LittleFs,
            0x90 => DataSubType::TeeOta,
            other => DataSubType::Other(other),
        }
    }

    /// The raw subtype byte.
    pub const fn to_raw(self) -> u8 {
        match self {
            DataSubType::Ota => 0x00,
            DataSubType::Phy => 0x01,
            DataSubType::Nvs => 0x02,
            DataSubType::Coredump => 0x03,
            DataSubType::NvsKeys => 0x04,
            DataSubType::Efuse => 0x05,
            DataSubType::Undefined => 0x06,
            DataSubType::EspHttpd => 0x80,
            DataSubType::Fat => 0x81,
            DataSubType::Spiffs => 0x82,
            DataSubType::LittleFs => 0x83,
            DataSubType::TeeOta => 0x90,
            DataSubType::Other(raw) => raw,
        }
    }
}

/// Type and subtype of a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PartitionType {
    /// `app` (type 0x00).
    App(AppSubType),
    /// `data` (type 0x01).
    Data(DataSubType),
    /// `bootloader` (type 0x02) with its raw subtype (primary 0x00, ota 0x01, recovery 0x02).
    Bootloader(u8),
    /// `partition_table` (type 0x03) with its raw subtype (primary 0x00, ota 0x01).
    PartitionTable(u8),
    /// Any other (custom) type, as stored.
    Other {
        /// The raw type byte.
        ty: u8,
        /// The raw subtype byte.
        subtype: u8,
    },
}

impl PartitionType {
    /// Decodes a raw type and subtype; never fails.
    pub const fn from_raw(ty: u8, subtype: u8) -> Self {
        match ty {
            0x00 => PartitionType::App(AppSubType::from_raw(subtype)),
            0x01 => PartitionType::Data(DataSubType::from_raw(subtype)),
            0x02 => PartitionType::Bootloader(subtype),
            0x03 => PartitionType::PartitionTable(subtype),
            ty => PartitionType::Other { ty, subtype },
        }
    }

    /// The raw type byte.
    pub const fn ty(self) -> u8 {
        match self {
            PartitionType::App(_) => 0x00,
            PartitionType::Data(_) => 0x01,
            PartitionType::Bootloader(_) => 0x02,
            PartitionType::PartitionTable(_) => 0x03,
            PartitionType::Other { ty, .. } => ty,
        }
    }

    /// The raw subtype byte.
    pub const fn subtype(self) -> u8 {
        match self {
            PartitionType::App(s) => s.to_raw(),
            PartitionType::Data(s) => s.to_raw(),
            PartitionType::Bootloader(s) | PartitionType::PartitionTable(s) => s,
            PartitionType::Other { subtype, .. } => subtype,
        }
    }

    /// Whether this is an app partition (alignment 64 KiB).
    pub const fn is_app(self) -> bool {
        self.ty() == 0x00
    }

    /// The offset alignment `gen_esp32part.py` requires for this type: [`APP_ALIGNMENT`] for
    /// apps, [`DATA_ALIGNMENT`] for everything else.
    pub const fn alignment(self) -> u32 {
        if self.is_app() {
            APP_ALIGNMENT
        } else {
            DATA_ALIGNMENT
        }
    }
}

/// The `flags` word of a partition record. Unknown bits are kept.
///
/// Bit 0 is **encrypted** and bit 1 **readonly**, as in ESP-IDF (`PART_FLAG_ENCRYPTED`,
/// `PART_FLAG_READONLY`, `gen_esp32part.py` `FLAGS`). `esp-bootloader-esp-idf` 0.6 has the two
/// swapped (§3.7 caveat 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PartitionFlags(pub u32);

impl PartitionFlags {
    /// No flags.
    pub const NONE: PartitionFlags = PartitionFlags(0);
    /// Bit 0: the partition is flash-encrypted (`PART_FLAG_ENCRYPTED`).
    pub const ENCRYPTED: PartitionFlags = PartitionFlags(1 << 0);
    /// Bit 1: the partition is read-only (`PART_FLAG_READONLY`).
    pub const READONLY: PartitionFlags = PartitionFlags(1 << 1);

    /// Whether bit 0 (encrypted) is set.
    pub const fn is_encrypted(self) -> bool {
        self.0 & Self::ENCRYPTED.0 != 0
    }

    /// Whether bit 1 (readonly) is set.
    pub const fn is_readonly(self) -> bool {
        self.0 & Self::READONLY.0 != 0
    }

    /// The union of two flag sets.
    pub const fn union(self, other: PartitionFlags) -> PartitionFlags {
        PartitionFlags(self.0 | other.0)
    }
}

/// One partition: a decoded `esp_partition_info_t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PartitionEntry {
    /// Type and subtype.
    pub kind: PartitionType,
    /// Flash address of the first byte.
    pub offset: u32,
    /// Length in bytes.
    pub size: u32,
    /// Label, NUL-padded (16 non-NUL bytes are allowed and then have no terminator).
    pub label: [u8; 16],
    /// The flags word.
    pub flags: PartitionFlags,
}

impl PartitionEntry {
    /// A partition with no flags. `None` if `label` is longer than 16 bytes.
    pub fn new(kind: PartitionType, offset: u32, size: u32, label: &str) -> Option<Self> {
        let bytes = label.as_bytes();
        let mut padded = [0u8; 16];
        padded.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(PartitionEntry {
            kind,
            offset,
            size,
            label: padded,
            flags: PartitionFlags::NONE,
        })
    }

    /// The same partition with `flags`.
    pub const fn with_flags(mut self, flags: PartitionFlags) -> Self {
        self.flags = flags;
        self
    }

    /// Decodes one 32-byte record. `None` unless it starts with [`ENTRY_MAGIC`].
    pub fn decode(record: &[u8; ENTRY_LEN]) -> Option<Self> {
        if u16::from_le_bytes([record[0], record[1]]) != ENTRY_MAGIC {
            return None;
        }
        let word = |at: usize| {
            u32::from_le_bytes([record[at], record[at + 1], record[at + 2], record[at + 3]])
        };
        let mut label = [0u8; 16];
        label.copy_from_slice(&record[12..28]);
        Some(PartitionEntry {
            kind: PartitionType::from_raw(record[2], record[3]),
            offset: word(4),
            size: word(8),
            label,
            flags: PartitionFlags(word(28)),
        })
    }

    /// Encodes the 32-byte record.
    pub fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut r = [0u8; ENTRY_LEN];
        r[0..2].copy_from_slice(&ENTRY_MAGIC.to_le_bytes());
        r[2] = self.kind.ty();
        r[3] = self.kind.subtype();
        r[4..8].copy_from_slice(&self.offset.to_le_bytes());
        r[8..12].copy_from_slice(&self.size.to_le_bytes());
        r[12..28].copy_from_slice(&self.label);
        r[28..32].copy_from_slice(&self.flags.0.to_le_bytes());
        r
    }

    /// The label bytes up to the first NUL.
    pub fn label_bytes(&self) -> &[u8] {
        let end = self.label.iter().position(|&b| b == 0).unwrap_or(16);
        &self.label[..end]
    }

    /// The label as text; `None` if it is not UTF-8.
    pub fn label_str(&self) -> Option<&str> {
        core::str::from_utf8(self.label_bytes()).ok()
    }

    /// One past the last byte, as a `u64` so it cannot overflow.
    pub const fn end(&self) -> u64 {
        self.offset as u64 + self.size as u64
    }

    /// The OTA slot index if this is an `ota_N` app partition.
    pub const fn ota_slot(&self) -> Option<u8> {
        match self.kind {
            PartitionType::App(AppSubType::Ota(n)) => Some(n & 0x0F),
            _ => None,
        }
    }

    /// Whether `self` and `other` share at least one byte.
    pub const fn overlaps(&self, other: &PartitionEntry) -> bool {
        (self.offset as u64) < other.end() && (other.offset as u64) < self.end()
    }

    /// Where the partition lies: its offset and size.
    pub const fn span(&self) -> PartitionSpan {
        PartitionSpan {
            offset: self.offset,
            size: self.size,
        }
    }
}

/// Whether the table carried an MD5 record. A present but wrong MD5 is an error, never a
/// status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Md5Status {
    /// No MD5 record (tables from old tools, or `--disable-md5sum`).
    Absent,
    /// The MD5 record was present and matched.
    Verified,
}

/// Why a partition table was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PartitionTableError {
    /// The first record is the end marker: there is no table (erased flash).
    #[error("no partition table (first record is erased)")]
    Empty,
    /// A record that is neither a partition, the MD5 record nor the end marker
    /// (`esp_partition_table_verify`: "invalid magic number").
    #[error("record {index} has bad magic 0x{found:04x}")]
    BadMagic {
        /// Record index (0-based).
        index: usize,
        /// The magic found (little-endian `u16` of the first two bytes).
        found: u16,
    },
    /// The MD5 record does not match the records before it.
    #[error("partition table MD5 mismatch")]
    Md5Mismatch,
    /// A second MD5 record ("Only one MD5 checksum is allowed").
    #[error("record {index} is a second MD5 record")]
    DuplicateMd5 {
        /// Record index.
        index: usize,
    },
    /// A partition record after the MD5 record. ESP-IDF would not cover it by the MD5 and
    /// its bootloader would then mis-count the partitions.
    #[error("record {index} follows the MD5 record")]
    EntryAfterMd5 {
        /// Record index.
        index: usize,
    },
    /// No end marker within [`PARTITION_TABLE_MAX_LEN`] bytes (or within the given slice).
    #[error("partition table has no end marker")]
    MissingEndMarker,
    /// More than [`MAX_PARTITIONS`] partitions.
    #[error("more than {MAX_PARTITIONS} partitions")]
    TooManyEntries,
    /// A partition of size 0.
    #[error("partition {index} has size 0")]
    ZeroSize {
        /// Partition index.
        index: usize,
    },
    /// `offset + size` passes the 4 GiB address space.
    #[error("partition {index} ends past 4 GiB")]
    OutOfRange {
        /// Partition index.
        index: usize,
    },
    /// The partition ends past the flash chip ([`PartitionTable::check_fits`]).
    #[error("partition {index} ends at 0x{end:x}, past the {capacity}-byte flash")]
    ExceedsFlash {
        /// Partition index.
        index: usize,
        /// One past its last byte.
        end: u64,
        /// Flash capacity.
        capacity: usize,
    },
    /// The offset is not aligned as `gen_esp32part.py` requires (64 KiB for apps, 4 KiB
    /// otherwise).
    #[error("partition {index} at 0x{offset:x} is not aligned to 0x{alignment:x}")]
    Misaligned {
        /// Partition index.
        index: usize,
        /// Its offset.
        offset: u32,
        /// The alignment it needed.
        alignment: u32,
    },
    /// Two partitions share bytes.
    #[error("partitions {first} and {second} overlap")]
    Overlap {
        /// Index of the earlier record.
        first: usize,
        /// Index of the later record.
        second: usize,
    },
    /// The otadata partition is not exactly [`OTADATA_SIZE`] bytes.
    #[error("otadata partition {index} is 0x{size:x} bytes, must be 0x2000")]
    OtadataSize {
        /// Partition index.
        index: usize,
        /// Its size.
        size: u32,
    },
    /// A second otadata partition.
    #[error("partition {index} is a second otadata partition")]
    DuplicateOtadata {
        /// Partition index.
        index: usize,
    },
    /// A second partition for the same `ota_N` slot.
    #[error("partition {index} is a second ota_{slot}")]
    DuplicateOtaSlot {
        /// Partition index.
        index: usize,
        /// Slot number.
        slot: u8,
    },
    /// The `ota_N` slots are not `ota_0 .. ota_{count-1}`. The bootloader maps a sequence
    /// number to `(seq - 1) % count`, so a gap makes it pick a slot that does not exist.
    #[error("ota_{missing} is missing while a higher slot exists")]
    OtaSlotGap {
        /// The first missing slot number.
        missing: u8,
    },
}

/// Why [`read_partition_table`] failed. `E` is the flash's error type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ReadTableError<E> {
    /// Reading the flash failed.
    #[error("flash read failed: {0:?}")]
    Flash(E),
    /// The bytes read are not a valid table.
    #[error(transparent)]
    Table(#[from] PartitionTableError),
}

/// Why [`encode`] failed. The output buffer may have been partly overwritten.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum EncodeError {
    /// The output buffer is shorter than the records to write.
    #[error("buffer too small: {needed} bytes needed")]
    BufferTooSmall {
        /// Bytes needed (entries, MD5 record if asked for, end marker).
        needed: usize,
    },
    /// The records would not fit in [`PARTITION_TABLE_MAX_LEN`] bytes.
    #[error("{count} partitions do not fit in a partition table")]
    TooManyEntries {
        /// Number of partitions given.
        count: usize,
    },
}

/// A parsed and validated partition table, held without allocation (up to
/// [`MAX_PARTITIONS`] entries, in table order).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PartitionTable {
    entries: heapless::Vec<PartitionEntry, MAX_PARTITIONS>,
    md5: Md5Status,
}

impl PartitionTable {
    /// Parses and validates a table from its bytes (only the first
    /// [`PARTITION_TABLE_MAX_LEN`] bytes are looked at; a slice that ends before the end
    /// marker is [`PartitionTableError::MissingEndMarker`]).
    ///
    /// Records are read until the end marker, recognised as ESP-IDF does by its first four
    /// bytes being `0xFF` (magic `0xFFFF`, type and subtype `0xFF`). An MD5 record, if
    /// present, must match the MD5 of all records before it; whether one was present is
    /// reported by [`md5_status`](Self::md5_status); its 14 filler bytes are not checked (nor
    /// does ESP-IDF check them). Then the layout is checked: no empty,
    /// overflowing, misaligned or overlapping partitions, otadata exactly 0x2000 bytes and at
    /// most one, OTA slots unique and contiguous from `ota_0`. Partitions are not checked
    /// against the flash size here; see [`check_fits`](Self::check_fits).
    pub fn parse(bytes: &[u8]) -> Result<Self, PartitionTableError> {
        let bytes = bytes.get(..PARTITION_TABLE_MAX_LEN).unwrap_or(bytes);
        let mut entries = heapless::Vec::new();
        let mut md5 = Md5Status::Absent;
        let mut ended = false;
        for (index, record) in bytes.chunks_exact(ENTRY_LEN).enumerate() {
            let Ok(record) = <&[u8; ENTRY_LEN]>::try_from(record) else {
                break;
            };
            let magic = u16::from_le_bytes([record[0], record[1]]);
            if let Some(entry) = PartitionEntry::decode(record) {
                if md5 == Md5Status::Verified {
                    return Err(PartitionTableError::EntryAfterMd5 { index });
                }
                entries
                    .push(entry)
                    .map_err(|_| PartitionTableError::TooManyEntries)?;
            } else if magic == MD5_MAGIC {
                if md5 == Md5Status::Verified {
                    return Err(PartitionTableError::DuplicateMd5 { index });
                }
                let digest: [u8; 16] = Md5::digest(&bytes[..index * ENTRY_LEN]).into();
                if digest[..] != record[MD5_OFFSET..] {
                    return Err(PartitionTableError::Md5Mismatch);
                }
                md5 = Md5Status::Verified;
            } else if record[..4] == [0xFF; 4] {
                ended = true;
                break;
            } else {
                return Err(PartitionTableError::BadMagic {
                    index,
                    found: magic,
                });
            }
        }
        if !ended {
            return Err(PartitionTableError::MissingEndMarker);
        }
        if entries.is_empty() {
            return Err(PartitionTableError::Empty);
        }
        validate(&entries)?;
        Ok(PartitionTable { entries, md5 })
    }

    /// Whether the table carried an MD5 record (it matched, or parsing would have failed).
    pub fn md5_status(&self) -> Md5Status {
        self.md5
    }

    /// Checks that every partition ends within a flash of `capacity` bytes
    /// (`esp_partition_table_verify` checks against the chip size).
    pub fn check_fits(&self, capacity: usize) -> Result<(), PartitionTableError> {
        for (index, e) in self.entries.iter().enumerate() {
            if e.end() > capacity as u64 {
                return Err(PartitionTableError::ExceedsFlash {
                    index,
                    end: e.end(),
                    capacity,
                });
            }
        }
        Ok(())
    }

    /// The partitions, in table order.
    pub fn entries(&self) -> &[PartitionEntry] {
        &self.entries
    }

    /// Iterates over the partitions in table order.
    pub fn iter(&self) -> core::slice::Iter<'_, PartitionEntry> {
        self.entries.iter()
    }

    /// Number of partitions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no partitions (never true for a table from [`parse`](Self::parse)).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The first partition of this type and subtype (compared as raw bytes, so
    /// `App(AppSubType::Other(0x11))` finds `ota_1`).
    pub fn find(&self, kind: PartitionType) -> Option<&PartitionEntry> {
        self.find_raw(kind.ty(), kind.subtype())
    }

    /// The first partition with this raw type and subtype.
    pub fn find_raw(&self, ty: u8, subtype: u8) -> Option<&PartitionEntry> {
        self.entries
            .iter()
            .find(|e| e.kind.ty() == ty && e.kind.subtype() == subtype)
    }

    /// The first partition with this label.
    pub fn find_by_label(&self, label: &str) -> Option<&PartitionEntry> {
        self.entries
            .iter()
            .find(|e| e.label_bytes() == label.as_bytes())
    }

    /// The otadata partition (data/ota), if any.
    pub fn otadata(&self) -> Option<&PartitionEntry> {
        self.find(PartitionType::Data(DataSubType::Ota))
    }

    /// The factory app partition, if any.
    pub fn factory(&self) -> Option<&PartitionEntry> {
        self.find(PartitionType::App(AppSubType::Factory))
    }

    /// The `ota_N` partition for slot `slot`, if any.
    pub fn ota_slot(&self, slot: u8) -> Option<&PartitionEntry> {
        if slot >= MAX_OTA_SLOTS {
            return None;
        }
        self.find(PartitionType::App(AppSubType::Ota(slot)))
    }

    /// Number of `ota_N` slots (the bootloader's `app_count`); they are `ota_0 ..
    /// ota_{count-1}`.
    pub fn ota_count(&self) -> u8 {
        let count = self
            .entries
            .iter()
            .filter(|e| e.ota_slot().is_some())
            .count();
        // At most 16 after validation (unique slot numbers 0..=15).
        count.min(usize::from(MAX_OTA_SLOTS)) as u8
    }

    /// The OTA slots in slot order (`ota_0`, `ota_1`, …), whatever their order in the table.
    pub fn ota_slots(&self) -> impl Iterator<Item = &PartitionEntry> + '_ {
        (0..self.ota_count()).filter_map(|slot| self.ota_slot(slot))
    }

    /// The partition the bootloader loads first for `choice`: the OTA slot it selected, or
    /// for no selection `find_default_boot_partition`'s order: factory, else the first OTA
    /// slot, else the test app. `None` if that partition does not exist.
    ///
    /// If that image then fails verification, the real bootloader falls back further
    /// (§3.4); that needs image checks and is not modelled here.
    pub fn boot_partition(&self, choice: &BootChoice) -> Option<&PartitionEntry> {
        match choice {
            BootChoice::Ota { slot, .. } => self.ota_slot(*slot),
            BootChoice::NoOtaSlots | BootChoice::NoValidEntry => self
                .factory()
                .or_else(|| self.ota_slot(0))
                .or_else(|| self.find(PartitionType::App(AppSubType::Test))),
        }
    }

    /// Encodes this table into `out` like [`encode`].
    pub fn encode(&self, out: &mut [u8], with_md5: bool) -> Result<usize, EncodeError> {
        encode(&self.entries, out, with_md5)
    }
}

impl<'a> IntoIterator for &'a PartitionTable {
    type Item = &'a PartitionEntry;
    type IntoIter = core::slice::Iter<'a, PartitionEntry>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter()
    }
}

/// The layout rules checked by [`PartitionTable::parse`] after the records decoded.
fn validate(entries: &[PartitionEntry]) -> Result<(), PartitionTableError> {
    let mut otadata_seen = false;
    let mut slots: u16 = 0;
    for (index, e) in entries.iter().enumerate() {
        check_entry(index, e, &mut otadata_seen, &mut slots)?;
        for (first, earlier) in entries[..index].iter().enumerate() {
            if earlier.overlaps(e) {
                return Err(PartitionTableError::Overlap {
                    first,
                    second: index,
                });
            }
        }
    }
    check_slot_gap(slots)
}

/// The rules for partition `index` that need no other partition, in [`validate`]'s order:
/// size, range, alignment, otadata (size, at most one), OTA slot unique. `otadata_seen` and
/// `slots` (a bit per `ota_N` seen) carry what the earlier partitions had.
fn check_entry(
    index: usize,
    e: &PartitionEntry,
    otadata_seen: &mut bool,
    slots: &mut u16,
) -> Result<(), PartitionTableError> {
    if e.size == 0 {
        return Err(PartitionTableError::ZeroSize { index });
    }
    if e.end() > 1 << 32 {
        return Err(PartitionTableError::OutOfRange { index });
    }
    let alignment = e.kind.alignment();
    if !e.offset.is_multiple_of(alignment) {
        return Err(PartitionTableError::Misaligned {
            index,
            offset: e.offset,
            alignment,
        });
    }
    if e.kind == PartitionType::Data(DataSubType::Ota) {
        if e.size != OTADATA_SIZE {
            return Err(PartitionTableError::OtadataSize {
                index,
                size: e.size,
            });
        }
        if *otadata_seen {
            return Err(PartitionTableError::DuplicateOtadata { index });
        }
        *otadata_seen = true;
    }
    if let Some(slot) = e.ota_slot() {
        let bit = 1u16 << slot;
        if *slots & bit != 0 {
            return Err(PartitionTableError::DuplicateOtaSlot { index, slot });
        }
        *slots |= bit;
    }
    Ok(())
}

/// Contiguous from `ota_0`: the set bits of `slots` are exactly the low `count` bits.
fn check_slot_gap(slots: u16) -> Result<(), PartitionTableError> {
    let count = slots.count_ones();
    if count < 16 && slots != (1u16 << count) - 1 {
        return Err(PartitionTableError::OtaSlotGap {
            missing: slots.trailing_ones() as u8,
        });
    }
    Ok(())
}

/// Where a partition lies: flash offset and length in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PartitionSpan {
    /// Flash address of the first byte.
    pub offset: u32,
    /// Length in bytes.
    pub size: u32,
}

impl PartitionSpan {
    /// One past the last byte, as a `u64` so it cannot overflow.
    pub const fn end(&self) -> u64 {
        self.offset as u64 + self.size as u64
    }

    /// Whether `self` and `other` share at least one byte.
    pub const fn overlaps(&self, other: &PartitionSpan) -> bool {
        (self.offset as u64) < other.end() && (other.offset as u64) < self.end()
    }
}

/// What an OTA updater needs from a partition table, in about 150 bytes: otadata, the first
/// factory app and the `ota_N` slots.
///
/// Made by a [`TableScanner`] (or [`OtaLayout::parse`]) after exactly the checks of
/// [`PartitionTable::parse`], so a table gives an `OtaLayout` if and only if it parses, and
/// then the same otadata, factory and slots as the parsed table ([`From<&PartitionTable>`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct OtaLayout {
    otadata: Option<PartitionSpan>,
    factory: Option<PartitionSpan>,
    /// `ota_0 .. ota_{ota_count-1}`; the rest are zero.
    slots: [PartitionSpan; MAX_OTA_SLOTS as usize],
    ota_count: u8,
    partitions: u8,
    md5: Md5Status,
}

impl OtaLayout {
    /// Checks a table from its bytes like [`PartitionTable::parse`] (same errors, in the
    /// same order) and keeps only the layout; the records are never held together, but the
    /// scanner keeps the span of every partition for the overlap check (760 bytes).
    pub fn parse(bytes: &[u8]) -> Result<Self, PartitionTableError> {
        let mut scan = TableScanner::<MAX_PARTITIONS>::new();
        for record in bytes.chunks_exact(ENTRY_LEN) {
            let Ok(record) = <&[u8; ENTRY_LEN]>::try_from(record) else {
                break;
            };
            if !scan.feed(record) {
                break;
            }
        }
        scan.finish()
    }

    /// The otadata partition (data/ota), if any; its size is [`OTADATA_SIZE`].
    pub fn otadata(&self) -> Option<PartitionSpan> {
        self.otadata
    }

    /// The first factory app partition, if any.
    pub fn factory(&self) -> Option<PartitionSpan> {
        self.factory
    }

    /// The `ota_N` partition for slot `slot`, if any.
    pub fn ota_slot(&self, slot: u8) -> Option<PartitionSpan> {
        if slot >= self.ota_count {
            return None;
        }
        self.slots.get(usize::from(slot)).copied()
    }

    /// Number of `ota_N` slots (the bootloader's `app_count`); they are `ota_0 ..
    /// ota_{count-1}`.
    pub fn ota_count(&self) -> u8 {
        self.ota_count
    }

    /// The OTA slots in slot order (`ota_0`, `ota_1`, …), whatever their order in the table.
    pub fn ota_slots(&self) -> impl Iterator<Item = PartitionSpan> + '_ {
        self.slots.iter().take(usize::from(self.ota_count)).copied()
    }

    /// Number of partitions in the table (all types).
    pub fn partitions(&self) -> usize {
        usize::from(self.partitions)
    }

    /// Whether the table carried an MD5 record (it matched, or the check would have failed).
    pub fn md5_status(&self) -> Md5Status {
        self.md5
    }
}

impl From<&PartitionTable> for OtaLayout {
    fn from(table: &PartitionTable) -> Self {
        let ota_count = table.ota_count();
        let mut slots = [PartitionSpan::default(); MAX_OTA_SLOTS as usize];
        for (n, s) in slots.iter_mut().enumerate().take(usize::from(ota_count)) {
            // n < 16.
            if let Some(p) = table.ota_slot(n as u8) {
                *s = p.span();
            }
        }
        OtaLayout {
            otadata: table.otadata().map(PartitionEntry::span),
            factory: table.factory().map(PartitionEntry::span),
            slots,
            ota_count,
            // At most MAX_PARTITIONS (95).
            partitions: table.len() as u8,
            md5: table.md5_status(),
        }
    }
}

/// How far a problem found by [`TableScanner`] outranks another: [`PartitionTable::parse`]
/// reports record errors before layout errors, and [`PartitionTable::check_fits`] runs only
/// on a valid table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    /// A partition ends past the flash ([`PartitionTableError::ExceedsFlash`]).
    Fit,
    /// A layout rule ([`validate`]).
    Layout,
    /// A record that cannot be read as part of the table (magic, MD5, too many).
    Record,
}

/// Checks a partition table record by record, as it is read, without holding it: the lean
/// counterpart of [`PartitionTable::parse`] (plus [`PartitionTable::check_fits`] when made
/// with [`with_flash_capacity`](Self::with_flash_capacity)), ending in an [`OtaLayout`].
///
/// Feed the 32-byte records in table order with [`feed`](Self::feed) until it returns
/// `false`, then call [`finish`](Self::finish). The result is exactly `parse`'s (and
/// `check_fits`'s): the same error for the same table, found in the same order (record
/// errors, then a missing end marker or an empty table, then the first layout error by
/// partition index, then an OTA slot gap, then the first partition past the flash).
/// Records past the first [`MAX_RECORDS`] are ignored, as `parse` ignores bytes past
/// [`PARTITION_TABLE_MAX_LEN`].
///
/// What it holds: an MD5 state (the digest of the partition records is compared with the
/// MD5 record when one comes), the layout it is building, the first problem found, and the
/// span (offset, size: 8 bytes) of each of up to `N` partitions, so that every partition is
/// checked against every earlier one for overlap, as `parse` does. A table with more than
/// `N` partitions (at most [`MAX_PARTITIONS`]) is [`PartitionTableError::TooManyEntries`].
/// `TableScanner<24>` is about 0.5 KiB; the default (95 partitions) about 1.1 KiB.
///
/// ```
/// use cellular_ota::ota::esp_idf::partition::{
///     self, AppSubType, DataSubType, PartitionEntry, PartitionType, TableScanner, ENTRY_LEN,
/// };
///
/// let entries = [
///     PartitionEntry::new(PartitionType::Data(DataSubType::Ota), 0xD000, 0x2000, "otadata").unwrap(),
///     PartitionEntry::new(PartitionType::App(AppSubType::Ota(0)), 0x10000, 0x10000, "ota_0").unwrap(),
///     PartitionEntry::new(PartitionType::App(AppSubType::Ota(1)), 0x20000, 0x10000, "ota_1").unwrap(),
/// ];
/// let mut table = [0u8; 256];
/// partition::encode(&entries, &mut table, true).unwrap();
///
/// // As if read from flash in 64-byte chunks.
/// let mut scan = TableScanner::<8>::with_flash_capacity(0x40000);
/// 'read: for chunk in table.chunks(64) {
///     for record in chunk.chunks_exact(ENTRY_LEN) {
///         if !scan.feed(record.try_into().unwrap()) {
///             break 'read;
///         }
///     }
/// }
/// let layout = scan.finish().unwrap();
/// assert_eq!(layout.otadata().unwrap().offset, 0xD000);
/// assert_eq!(layout.ota_count(), 2);
/// assert_eq!(layout.ota_slot(1).unwrap().offset, 0x20000);
/// ```
#[derive(Clone, Debug)]
pub struct TableScanner<const N: usize = MAX_PARTITIONS> {
    md5: Md5,
    /// Records taken so far (at most [`MAX_RECORDS`]).
    records: usize,
    /// The end marker was seen.
    ended: bool,
    md5_status: Md5Status,
    /// The problem to report, the highest [`Rank`] found first.
    problem: Option<(Rank, PartitionTableError)>,
    /// Flash size for the [`PartitionTableError::ExceedsFlash`] check, if asked for.
    capacity: Option<usize>,
    /// Spans of partitions `0 .. count`.
    spans: [PartitionSpan; N],
    count: usize,
    /// A bit per `ota_N` seen.
    slot_bits: u16,
    otadata: Option<PartitionSpan>,
    factory: Option<PartitionSpan>,
    slots: [PartitionSpan; MAX_OTA_SLOTS as usize],
}

impl<const N: usize> Default for TableScanner<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> TableScanner<N> {
    /// A scanner that checks what [`PartitionTable::parse`] checks.
    pub fn new() -> Self {
        TableScanner {
            md5: Md5::new(),
            records: 0,
            ended: false,
            md5_status: Md5Status::Absent,
            problem: None,
            capacity: None,
            spans: [PartitionSpan::default(); N],
            count: 0,
            slot_bits: 0,
            otadata: None,
            factory: None,
            slots: [PartitionSpan::default(); MAX_OTA_SLOTS as usize],
        }
    }

    /// A scanner that also checks, like [`PartitionTable::check_fits`], that every
    /// partition ends within a flash of `capacity` bytes.
    pub fn with_flash_capacity(capacity: usize) -> Self {
        let mut scan = Self::new();
        scan.capacity = Some(capacity);
        scan
    }

    /// Takes the next record. Returns whether more records are wanted: `false` once the end
    /// marker, a record error or the [`MAX_RECORDS`]th record was seen (further records are
    /// then ignored).
    pub fn feed(&mut self, record: &[u8; ENTRY_LEN]) -> bool {
        if !self.wants_more() {
            return false;
        }
        let index = self.records;
        self.records += 1;
        let magic = u16::from_le_bytes([record[0], record[1]]);
        if let Some(entry) = PartitionEntry::decode(record) {
            if self.md5_status == Md5Status::Verified {
                self.latch(Rank::Record, PartitionTableError::EntryAfterMd5 { index });
            } else if self.count >= N.min(MAX_PARTITIONS) {
                self.latch(Rank::Record, PartitionTableError::TooManyEntries);
            } else {
                self.md5.update(record);
                self.add(&entry);
            }
        } else if magic == MD5_MAGIC {
            if self.md5_status == Md5Status::Verified {
                self.latch(Rank::Record, PartitionTableError::DuplicateMd5 { index });
            } else {
                let digest: [u8; 16] = self.md5.finalize_reset().into();
                if digest[..] == record[MD5_OFFSET..] {
                    self.md5_status = Md5Status::Verified;
                } else {
                    self.latch(Rank::Record, PartitionTableError::Md5Mismatch);
                }
            }
        } else if record[..4] == [0xFF; 4] {
            self.ended = true;
        } else {
            self.latch(
                Rank::Record,
                PartitionTableError::BadMagic {
                    index,
                    found: magic,
                },
            );
        }
        self.wants_more()
    }

    /// Whether [`feed`](Self::feed) would take another record.
    pub fn wants_more(&self) -> bool {
        !self.ended && self.rank() < Some(Rank::Record) && self.records < MAX_RECORDS
    }

    /// The verdict on the records fed so far: the layout, or the error
    /// [`PartitionTable::parse`] (and [`PartitionTable::check_fits`]) gives for them
    /// ([`PartitionTableError::MissingEndMarker`] if no end marker was fed).
    pub fn finish(&self) -> Result<OtaLayout, PartitionTableError> {
        if let Some((Rank::Record, e)) = self.problem {
            return Err(e);
        }
        if !self.ended {
            return Err(PartitionTableError::MissingEndMarker);
        }
        if self.count == 0 {
            return Err(PartitionTableError::Empty);
        }
        if let Some((Rank::Layout, e)) = self.problem {
            return Err(e);
        }
        check_slot_gap(self.slot_bits)?;
        if let Some((_, e)) = self.problem {
            return Err(e);
        }
        // At most 16 set bits, at most MAX_PARTITIONS (95) partitions.
        let ota_count = self.slot_bits.count_ones() as u8;
        Ok(OtaLayout {
            otadata: self.otadata,
            factory: self.factory,
            slots: self.slots,
            ota_count,
            partitions: self.count as u8,
            md5: self.md5_status,
        })
    }

    fn rank(&self) -> Option<Rank> {
        self.problem.map(|(rank, _)| rank)
    }

    /// Keeps `error` unless a problem of the same or a higher rank came first.
    fn latch(&mut self, rank: Rank, error: PartitionTableError) {
        if self.rank() < Some(rank) {
            self.problem = Some((rank, error));
        }
    }

    /// Partition `self.count`: its span is kept, and unless a layout error came first, it
    /// is checked like [`validate`] (itself, then against every earlier partition) and
    /// against the flash size.
    fn add(&mut self, entry: &PartitionEntry) {
        let index = self.count;
        let span = entry.span();
        let Some(slot) = self.spans.get_mut(index) else {
            return;
        };
        *slot = span;
        self.count += 1;
        if self.rank() >= Some(Rank::Layout) {
            return;
        }
        let mut otadata_seen = self.otadata.is_some();
        if let Err(e) = check_entry(index, entry, &mut otadata_seen, &mut self.slot_bits) {
            self.latch(Rank::Layout, e);
            return;
        }
        let earlier = self.spans.get(..index).unwrap_or(&[]);
        if let Some(first) = earlier.iter().position(|s| s.overlaps(&span)) {
            self.latch(
                Rank::Layout,
                PartitionTableError::Overlap {
                    first,
                    second: index,
                },
            );
            return;
        }
        match entry.kind {
            PartitionType::Data(DataSubType::Ota) => self.otadata = Some(span),
            PartitionType::App(AppSubType::Factory) if self.factory.is_none() => {
                self.factory = Some(span);
            }
            PartitionType::App(AppSubType::Ota(n)) => {
                if let Some(s) = self.slots.get_mut(usize::from(n & 0x0F)) {
                    *s = span;
                }
            }
            _ => {}
        }
        if let Some(capacity) = self.capacity {
            if span.end() > capacity as u64 {
                self.latch(
                    Rank::Fit,
                    PartitionTableError::ExceedsFlash {
                        index,
                        end: span.end(),
                        capacity,
                    },
                );
            }
        }
    }
}

/// Writes a partition table for `entries` into `out` and returns the number of record bytes
/// (entries, MD5 record if `with_md5`, 32-byte end marker).
///
/// The whole of `out` is first filled with `0xFF`, so a [`PARTITION_TABLE_MAX_LEN`]- or
/// sector-sized buffer comes out exactly as `gen_esp32part.py` pads it. The entries are not
/// validated (tests use this to build broken tables); parse the result to check it.
pub fn encode(
    entries: &[PartitionEntry],
    out: &mut [u8],
    with_md5: bool,
) -> Result<usize, EncodeError> {
    let records = entries.len() + usize::from(with_md5) + 1;
    if records > MAX_RECORDS {
        return Err(EncodeError::TooManyEntries {
            count: entries.len(),
        });
    }
    let needed = records * ENTRY_LEN;
    if out.len() < needed {
        return Err(EncodeError::BufferTooSmall { needed });
    }
    out.fill(0xFF);
    for (record, entry) in out.chunks_exact_mut(ENTRY_LEN).zip(entries) {
        record.copy_from_slice(&entry.encode());
    }
    if with_md5 {
        let body = entries.len() * ENTRY_LEN;
        let digest: [u8; 16] = Md5::digest(&out[..body]).into();
        let record = &mut out[body..body + ENTRY_LEN];
        record[..2].copy_from_slice(&MD5_MAGIC.to_le_bytes());
        record[MD5_OFFSET..].copy_from_slice(&digest);
    }
    Ok(needed)
}

/// Reads [`PARTITION_TABLE_MAX_LEN`] bytes at `offset` (normally [`PARTITION_TABLE_OFFSET`])
/// into `buf`, parses them with [`PartitionTable::parse`] and checks every partition fits the
/// flash ([`PartitionTable::check_fits`]). `flash` addresses the whole chip.
pub fn read_partition_table<F: ReadNorFlash>(
    flash: &mut F,
    offset: u32,
    buf: &mut [u8; PARTITION_TABLE_MAX_LEN],
) -> Result<PartitionTable, ReadTableError<F::Error>> {
    flash.read(offset, buf).map_err(ReadTableError::Flash)?;
    Ok(parse_and_fit(buf, flash.capacity())?)
}

/// The async twin of [`read_partition_table`]. Cancel-safe: it only reads.
pub async fn read_partition_table_async<F: embedded_storage_async::nor_flash::ReadNorFlash>(
    flash: &mut F,
    offset: u32,
    buf: &mut [u8; PARTITION_TABLE_MAX_LEN],
) -> Result<PartitionTable, ReadTableError<F::Error>> {
    flash
        .read(offset, buf)
        .await
        .map_err(ReadTableError::Flash)?;
    Ok(parse_and_fit(buf, flash.capacity())?)
}

fn parse_and_fit(buf: &[u8], capacity: usize) -> Result<PartitionTable, PartitionTableError> {
    let table = PartitionTable::parse(buf)?;
    table.check_fits(capacity)?;
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ota::mem_flash::MemFlash;

    fn e(kind: PartitionType, offset: u32, size: u32, label: &str) -> PartitionEntry {
        PartitionEntry::new(kind, offset, size, label).unwrap()
    }

    /// The layout espflash uses by default (nvs, otadata, phy, ota_0, ota_1).
    fn standard() -> [PartitionEntry; 5] {
        [
            e(PartitionType::Data(DataSubType::Nvs), 0x9000, 0x4000, "nvs"),
            e(
                PartitionType::Data(DataSubType::Ota),
                0xD000,
                0x2000,
                "otadata",
            ),
            e(
                PartitionType::Data(DataSubType::Phy),
                0xF000,
                0x1000,
                "phy_init",
            ),
            e(
                PartitionType::App(AppSubType::Ota(0)),
                0x10000,
                0x100000,
                "ota_0",
            ),
            e(
                PartitionType::App(AppSubType::Ota(1)),
                0x110000,
                0x100000,
                "ota_1",
            ),
        ]
    }

    fn encoded(entries: &[PartitionEntry], md5: bool) -> [u8; PARTITION_TABLE_MAX_LEN] {
        let mut buf = [0u8; PARTITION_TABLE_MAX_LEN];
        encode(entries, &mut buf, md5).unwrap();
        buf
    }

    /// `otadata` as gen_esp32part writes it: `otadata, data, ota, 0xd000, 0x2000`.
    const OTADATA_RECORD: [u8; 32] = [
        0xAA, 0x50, 0x01, 0x00, 0x00, 0xD0, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00, b'o', b't', b'a',
        b'd', b'a', b't', b'a', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    #[test]
    fn record_fixture_decodes() {
        let p = PartitionEntry::decode(&OTADATA_RECORD).unwrap();
        assert_eq!(p.kind, PartitionType::Data(DataSubType::Ota));
        assert_eq!((p.offset, p.size), (0xD000, 0x2000));
        assert_eq!(p.label_str(), Some("otadata"));
        assert_eq!(p.flags, PartitionFlags::NONE);
        assert_eq!(p.encode(), OTADATA_RECORD);
    }

    #[test]
    fn encoded_table_parses_back_with_md5() {
        let buf = encoded(&standard(), true);
        // 5 entries, MD5 record, end marker; the rest is 0xFF padding.
        assert_eq!(&buf[5 * 32..5 * 32 + 2], &[0xEB, 0xEB]);
        assert_eq!(&buf[5 * 32 + 2..5 * 32 + 16], &[0xFF; 14]);
        assert!(buf[6 * 32..].iter().all(|&b| b == 0xFF));
        let t = PartitionTable::parse(&buf).unwrap();
        assert_eq!(t.md5_status(), Md5Status::Verified);
        assert_eq!(t.entries(), &standard());
        assert_eq!(t.otadata().unwrap().offset, 0xD000);
        assert_eq!(t.ota_count(), 2);
        assert!(t.factory().is_none());
        assert_eq!(t.find_by_label("phy_init").unwrap().offset, 0xF000);
        assert_eq!(t.find_raw(0x00, 0x11).unwrap().label_str(), Some("ota_1"));
        assert_eq!(
            t.find(PartitionType::App(AppSubType::Other(0x10)))
                .unwrap()
                .offset,
            0x10000
        );
        assert_eq!(t.iter().count(), 5);
        assert_eq!((&t).into_iter().count(), 5);
        let mut again = [0u8; PARTITION_TABLE_MAX_LEN];
        t.encode(&mut again, true).unwrap();
        assert_eq!(again, buf);
    }

    #[test]
    fn table_without_md5_parses_as_absent() {
        let buf = encoded(&standard(), false);
        let t = PartitionTable::parse(&buf).unwrap();
        assert_eq!(t.md5_status(), Md5Status::Absent);
        assert_eq!(t.len(), 5);
    }

    #[test]
    fn flipped_byte_breaks_md5() {
        let good = encoded(&standard(), true);
        for pos in 0..5 * 32 {
            let mut buf = good;
            buf[pos] ^= 0x01;
            let r = PartitionTable::parse(&buf);
            assert!(
                matches!(
                    r,
                    Err(PartitionTableError::Md5Mismatch)
                        | Err(PartitionTableError::BadMagic { .. })
                ),
                "byte {pos}: {r:?}"
            );
        }
        // A flipped digest byte too.
        let mut buf = good;
        buf[5 * 32 + 20] ^= 0x80;
        assert_eq!(
            PartitionTable::parse(&buf),
            Err(PartitionTableError::Md5Mismatch)
        );
    }

    #[test]
    fn flag_bits_are_esp_idf_ones() {
        // gen_esp32part.py: FLAGS = {'encrypted': 0, 'readonly': 1}.
        // esp-bootloader-esp-idf 0.6 swaps these (§3.7 caveat 1).
        let mut rec = OTADATA_RECORD;
        rec[28] = 0b01;
        let p = PartitionEntry::decode(&rec).unwrap();
        assert!(p.flags.is_encrypted());
        assert!(!p.flags.is_readonly());
        rec[28] = 0b10;
        let p = PartitionEntry::decode(&rec).unwrap();
        assert!(!p.flags.is_encrypted());
        assert!(p.flags.is_readonly());
        // Unknown bits survive a round trip.
        rec[28..32].copy_from_slice(&0x8000_0003u32.to_le_bytes());
        let p = PartitionEntry::decode(&rec).unwrap();
        assert_eq!(p.flags.0, 0x8000_0003);
        assert_eq!(p.encode(), rec);
        assert_eq!(
            PartitionFlags::ENCRYPTED.union(PartitionFlags::READONLY),
            PartitionFlags(3)
        );
        let entry = e(PartitionType::Data(DataSubType::Nvs), 0x9000, 0x1000, "n")
            .with_flags(PartitionFlags::READONLY);
        assert_eq!(entry.encode()[28], 0b10);
    }

    #[test]
    fn types_round_trip() {
        for ty in 0..=255u8 {
            for sub in 0..=255u8 {
                let k = PartitionType::from_raw(ty, sub);
                assert_eq!((k.ty(), k.subtype()), (ty, sub));
            }
        }
        assert_eq!(
            PartitionType::from_raw(0, 0x1F),
            PartitionType::App(AppSubType::Ota(15))
        );
        assert_eq!(
            PartitionType::from_raw(0, 0x20),
            PartitionType::App(AppSubType::Test)
        );
        assert_eq!(
            PartitionType::from_raw(0, 0x31),
            PartitionType::App(AppSubType::Tee(1))
        );
        assert_eq!(
            PartitionType::from_raw(1, 0x83),
            PartitionType::Data(DataSubType::LittleFs)
        );
        assert_eq!(
            PartitionType::from_raw(1, 0x07),
            PartitionType::Data(DataSubType::Other(7))
        );
        assert_eq!(
            PartitionType::from_raw(0x40, 0x07),
            PartitionType::Other {
                ty: 0x40,
                subtype: 7
            }
        );
    }

    #[test]
    fn bad_magic_in_the_middle() {
        let mut buf = encoded(&standard(), true);
        buf[2 * 32] = 0x00;
        assert_eq!(
            PartitionTable::parse(&buf),
            Err(PartitionTableError::BadMagic {
                index: 2,
                found: 0x5000
            })
        );
    }

    #[test]
    fn erased_and_unterminated_tables() {
        assert_eq!(
            PartitionTable::parse(&[0xFF; PARTITION_TABLE_MAX_LEN]),
            Err(PartitionTableError::Empty)
        );
        let buf = encoded(&standard(), true);
        // Cut before the end marker.
        assert_eq!(
            PartitionTable::parse(&buf[..6 * 32]),
            Err(PartitionTableError::MissingEndMarker)
        );
        assert_eq!(
            PartitionTable::parse(&[]),
            Err(PartitionTableError::MissingEndMarker)
        );
        // A partial record is not a record.
        assert_eq!(
            PartitionTable::parse(&buf[..6 * 32 + 31]),
            Err(PartitionTableError::MissingEndMarker)
        );
        // The end marker is recognised by its first four bytes, like ESP-IDF.
        let mut buf2 = buf;
        buf2[6 * 32 + 10] = 0;
        assert!(PartitionTable::parse(&buf2).is_ok());
    }

    #[test]
    fn md5_position_rules() {
        let entries = standard();
        let mut buf = [0xFFu8; PARTITION_TABLE_MAX_LEN];
        // entries, MD5, entry -> EntryAfterMd5
        encode(&entries[..4], &mut buf, true).unwrap();
        buf[5 * 32..6 * 32].copy_from_slice(&entries[4].encode());
        buf[6 * 32..7 * 32].fill(0xFF);
        assert_eq!(
            PartitionTable::parse(&buf),
            Err(PartitionTableError::EntryAfterMd5 { index: 5 })
        );
        // two MD5 records
        let mut buf = encoded(&entries, true);
        let md5_rec: [u8; 32] = buf[5 * 32..6 * 32].try_into().unwrap();
        buf[6 * 32..7 * 32].copy_from_slice(&md5_rec);
        assert_eq!(
            PartitionTable::parse(&buf),
            Err(PartitionTableError::DuplicateMd5 { index: 6 })
        );
    }

    #[test]
    fn layout_errors() {
        let base = standard();
        let check = |entries: &[PartitionEntry], want: PartitionTableError| {
            assert_eq!(PartitionTable::parse(&encoded(entries, true)), Err(want));
        };
        // misaligned app
        let mut t = base;
        t[3].offset = 0x18000;
        check(
            &t,
            PartitionTableError::Misaligned {
                index: 3,
                offset: 0x18000,
                alignment: 0x10000,
            },
        );
        // misaligned data
        let mut t = base;
        t[0].offset = 0x9800;
        check(
            &t,
            PartitionTableError::Misaligned {
                index: 0,
                offset: 0x9800,
                alignment: 0x1000,
            },
        );
        // overlap
        let mut t = base;
        t[4].offset = 0x100000;
        check(
            &t,
            PartitionTableError::Overlap {
                first: 3,
                second: 4,
            },
        );
        // otadata size
        let mut t = base;
        t[1].size = 0x1000;
        check(
            &t,
            PartitionTableError::OtadataSize {
                index: 1,
                size: 0x1000,
            },
        );
        // zero size
        let mut t = base;
        t[2].size = 0;
        check(&t, PartitionTableError::ZeroSize { index: 2 });
        // past 4 GiB
        let mut t = base;
        t[4].offset = 0xFFFF_0000;
        t[4].size = 0x2_0000;
        check(&t, PartitionTableError::OutOfRange { index: 4 });
        // duplicate slot
        let mut t = base;
        t[4].kind = PartitionType::App(AppSubType::Ota(0));
        check(
            &t,
            PartitionTableError::DuplicateOtaSlot { index: 4, slot: 0 },
        );
        // gap: ota_0 and ota_2
        let mut t = base;
        t[4].kind = PartitionType::App(AppSubType::Ota(2));
        check(&t, PartitionTableError::OtaSlotGap { missing: 1 });
        // duplicate otadata
        let mut t = base;
        t[2] = e(
            PartitionType::Data(DataSubType::Ota),
            0xF000,
            0x2000,
            "ota2",
        );
        t[3].offset = 0x20000;
        t[4].offset = 0x120000;
        check(&t, PartitionTableError::DuplicateOtadata { index: 2 });
    }

    #[test]
    fn ota_slots_sorted_by_index_and_all_sixteen() {
        // 16 slots listed in reverse order, plus otadata and factory.
        let mut entries: heapless::Vec<PartitionEntry, 20> = heapless::Vec::new();
        entries
            .push(e(
                PartitionType::Data(DataSubType::Ota),
                0xD000,
                0x2000,
                "otadata",
            ))
            .unwrap();
        entries
            .push(e(
                PartitionType::App(AppSubType::Factory),
                0x10000,
                0x10000,
                "factory",
            ))
            .unwrap();
        for slot in (0..16u8).rev() {
            let offset = 0x20000 + u32::from(slot) * 0x10000;
            entries
                .push(e(
                    PartitionType::App(AppSubType::Ota(slot)),
                    offset,
                    0x10000,
                    "x",
                ))
                .unwrap();
        }
        let t = PartitionTable::parse(&encoded(&entries, true)).unwrap();
        assert_eq!(t.ota_count(), 16);
        let order: heapless::Vec<u8, 16> = t.ota_slots().map(|p| p.ota_slot().unwrap()).collect();
        assert_eq!(&order[..], &(0..16).collect::<heapless::Vec<u8, 16>>()[..]);
        assert!(t.ota_slot(16).is_none());
        assert_eq!(
            t.boot_partition(&BootChoice::NoValidEntry)
                .unwrap()
                .label_str(),
            Some("factory")
        );
    }

    #[test]
    fn boot_partition_defaults() {
        let t = PartitionTable::parse(&encoded(&standard(), true)).unwrap();
        // No factory: ota_0.
        assert_eq!(
            t.boot_partition(&BootChoice::NoValidEntry).unwrap().offset,
            0x10000
        );
        assert_eq!(
            t.boot_partition(&BootChoice::NoOtaSlots).unwrap().offset,
            0x10000
        );
        let choice = BootChoice::Ota {
            slot: 1,
            entry: 0,
            seq: 2,
            state: crate::ota::esp_idf::otadata::OtaImageState::Valid,
        };
        assert_eq!(t.boot_partition(&choice).unwrap().offset, 0x110000);
    }

    #[test]
    fn too_many_entries() {
        let mut entries: heapless::Vec<PartitionEntry, 96> = heapless::Vec::new();
        for i in 0..96u32 {
            entries
                .push(e(
                    PartitionType::Data(DataSubType::Nvs),
                    0x10000 + i * 0x1000,
                    0x1000,
                    "n",
                ))
                .unwrap();
        }
        let mut buf = [0u8; PARTITION_TABLE_MAX_LEN];
        assert_eq!(
            encode(&entries, &mut buf, false),
            Err(EncodeError::TooManyEntries { count: 96 })
        );
        assert_eq!(
            encode(&entries[..95], &mut buf, true),
            Err(EncodeError::TooManyEntries { count: 95 })
        );
        // 95 entries and the end marker fill the table exactly.
        assert_eq!(encode(&entries[..95], &mut buf, false), Ok(0xC00));
        let t = PartitionTable::parse(&buf).unwrap();
        assert_eq!(t.len(), 95);
        // 96 partition records and no end marker.
        for (i, rec) in buf.chunks_exact_mut(32).enumerate() {
            rec.copy_from_slice(&entries[i].encode());
        }
        assert_eq!(
            PartitionTable::parse(&buf),
            Err(PartitionTableError::TooManyEntries)
        );
        let mut small = [0u8; 64];
        assert_eq!(
            encode(&standard(), &mut small, true),
            Err(EncodeError::BufferTooSmall { needed: 7 * 32 })
        );
    }

    #[test]
    fn labels() {
        assert!(
            PartitionEntry::new(
                PartitionType::Data(DataSubType::Nvs),
                0,
                1,
                "0123456789abcdef"
            )
            .is_some()
        );
        assert!(
            PartitionEntry::new(
                PartitionType::Data(DataSubType::Nvs),
                0,
                1,
                "0123456789abcdefg"
            )
            .is_none()
        );
        let p = e(
            PartitionType::Data(DataSubType::Nvs),
            0,
            1,
            "0123456789abcdef",
        );
        assert_eq!(p.label_bytes().len(), 16);
        let mut rec = p.encode();
        rec[12] = 0xFF;
        assert_eq!(PartitionEntry::decode(&rec).unwrap().label_str(), None);
    }

    #[test]
    fn read_from_flash_and_check_fits() {
        let mut mem = std::vec![0xFFu8; 0x400000];
        let mut flash: MemFlash<'_> = MemFlash::new(&mut mem);
        let table = encoded(&standard(), true);
        flash.as_mut_slice()[0x8000..0x8000 + table.len()].copy_from_slice(&table);
        let mut buf = [0u8; PARTITION_TABLE_MAX_LEN];
        let t = read_partition_table(&mut flash, PARTITION_TABLE_OFFSET, &mut buf).unwrap();
        assert_eq!(t.ota_count(), 2);
        let t2 = crate::block_on(read_partition_table_async(
            &mut flash,
            PARTITION_TABLE_OFFSET,
            &mut buf,
        ))
        .unwrap();
        assert_eq!(t, t2);
        // Flash error.
        assert!(matches!(
            read_partition_table(&mut flash, 0x3FFF00, &mut buf),
            Err(ReadTableError::Flash(_))
        ));
        // A flash too small for ota_1.
        let mut small = std::vec![0xFFu8; 0x180000];
        let mut flash: MemFlash<'_> = MemFlash::new(&mut small);
        flash.as_mut_slice()[0x8000..0x8000 + table.len()].copy_from_slice(&table);
        assert_eq!(
            read_partition_table(&mut flash, PARTITION_TABLE_OFFSET, &mut buf),
            Err(ReadTableError::Table(PartitionTableError::ExceedsFlash {
                index: 4,
                end: 0x210000,
                capacity: 0x180000
            }))
        );
    }

    extern crate std;

    /// Feeds every whole record of `bytes` (also those after the scanner stopped wanting
    /// more: they must be ignored) to a `TableScanner<N>`.
    fn scan<const N: usize>(
        bytes: &[u8],
        capacity: Option<usize>,
    ) -> Result<OtaLayout, PartitionTableError> {
        let mut scanner = match capacity {
            Some(c) => TableScanner::<N>::with_flash_capacity(c),
            None => TableScanner::<N>::new(),
        };
        for record in bytes.chunks_exact(ENTRY_LEN) {
            let wanted = scanner.wants_more();
            let more = scanner.feed(record.try_into().unwrap());
            assert!(wanted || !more);
            assert_eq!(more, scanner.wants_more());
        }
        scanner.finish()
    }

    /// What the scanner must give: `parse`, then `check_fits`, projected.
    fn reference(bytes: &[u8], capacity: Option<usize>) -> Result<OtaLayout, PartitionTableError> {
        let table = PartitionTable::parse(bytes)?;
        if let Some(c) = capacity {
            table.check_fits(c)?;
        }
        Ok(OtaLayout::from(&table))
    }

    /// The scanner agrees with `parse` (+ `check_fits`) with every capacity, and with a
    /// small `N` on a table cut to `N` records (where `TooManyEntries` cannot come up).
    fn assert_scan_matches(bytes: &[u8]) {
        for capacity in [None, Some(0x2_0000), Some(0x40_0000)] {
            let want = reference(bytes, capacity);
            assert_eq!(
                scan::<MAX_PARTITIONS>(bytes, capacity),
                want,
                "{capacity:?}"
            );
            // A larger N changes nothing: the table format caps the partitions.
            assert_eq!(scan::<100>(bytes, capacity), want, "{capacity:?}");
            let cut = &bytes[..bytes.len().min(24 * ENTRY_LEN)];
            assert_eq!(
                scan::<24>(cut, capacity),
                reference(cut, capacity),
                "{capacity:?}"
            );
        }
        assert_eq!(OtaLayout::parse(bytes), reference(bytes, None));
    }

    #[test]
    fn scanner_keeps_what_an_updater_needs() {
        let l = OtaLayout::parse(&encoded(&standard(), true)).unwrap();
        assert_eq!(
            l.otadata(),
            Some(PartitionSpan {
                offset: 0xD000,
                size: 0x2000
            })
        );
        assert_eq!(l.factory(), None);
        assert_eq!(l.ota_count(), 2);
        assert_eq!(l.ota_slot(1).unwrap().offset, 0x110000);
        assert_eq!(l.ota_slot(2), None);
        assert_eq!(
            l.ota_slots()
                .map(|s| s.offset)
                .collect::<std::vec::Vec<_>>(),
            [0x10000, 0x110000]
        );
        assert_eq!(l.partitions(), 5);
        assert_eq!(l.md5_status(), Md5Status::Verified);
        assert_eq!(
            OtaLayout::parse(&encoded(&standard(), false))
                .unwrap()
                .md5_status(),
            Md5Status::Absent
        );
        assert_eq!(standard()[3].span().end(), 0x110000);
        assert!(standard()[3].span().overlaps(&PartitionSpan {
            offset: 0x10FFFF,
            size: 1
        }));
        assert!(!standard()[3].span().overlaps(&PartitionSpan {
            offset: 0x110000,
            size: 1
        }));
        // The first factory is kept (more than one is allowed).
        let mut entries = std::vec::Vec::from(standard());
        entries.push(e(
            PartitionType::App(AppSubType::Factory),
            0x210000,
            0x10000,
            "f1",
        ));
        entries.push(e(
            PartitionType::App(AppSubType::Factory),
            0x220000,
            0x10000,
            "f2",
        ));
        let l = OtaLayout::parse(&encoded(&entries, true)).unwrap();
        assert_eq!(l.factory().unwrap().offset, 0x210000);
        assert_scan_matches(&encoded(&entries, true));
    }

    #[test]
    fn scanner_matches_parse_on_the_known_cases() {
        assert_scan_matches(&encoded(&standard(), true));
        assert_scan_matches(&encoded(&standard(), false));
        assert_scan_matches(&[0xFF; PARTITION_TABLE_MAX_LEN]);
        assert_scan_matches(&[]);
        let good = encoded(&standard(), true);
        assert_scan_matches(&good[..6 * 32]);
        for pos in 0..7 * 32 {
            for bit in [0x01, 0x80] {
                let mut buf = good;
                buf[pos] ^= bit;
                assert_scan_matches(&buf);
            }
        }
        // Every layout rule, from the table order's point of view.
        let base = standard();
        let mut cases: std::vec::Vec<std::vec::Vec<PartitionEntry>> = std::vec::Vec::new();
        let mut t = base;
        t[3].offset = 0x18000;
        cases.push(t.into());
        let mut t = base;
        t[4].offset = 0x100000;
        cases.push(t.into());
        // ota_1 overlapping nvs, listed before it: neither is otadata nor a slot yet.
        let mut t = base;
        t[0].offset = 0x110000;
        cases.push(t.into());
        let mut t = base;
        t[1].size = 0x1000;
        cases.push(t.into());
        let mut t = base;
        t[2].size = 0;
        cases.push(t.into());
        let mut t = base;
        t[4].offset = 0xFFFF_0000;
        t[4].size = 0x2_0000;
        cases.push(t.into());
        let mut t = base;
        t[4].kind = PartitionType::App(AppSubType::Ota(0));
        cases.push(t.into());
        let mut t = base;
        t[4].kind = PartitionType::App(AppSubType::Ota(2));
        cases.push(t.into());
        // A gap and a partition past a small flash: the gap wins (check_fits runs last).
        let mut t = base;
        t[4].kind = PartitionType::App(AppSubType::Ota(2));
        t[4].offset = 0x3F_0000;
        cases.push(t.into());
        // Past the flash first, then a layout error: the layout error wins.
        let mut t = base;
        t[3].offset = 0x50_0000;
        t[4].size = 0;
        cases.push(t.into());
        for entries in &cases {
            assert_scan_matches(&encoded(entries, true));
            assert_scan_matches(&encoded(entries, false));
            // A broken record after the layout error: the record error wins.
            let mut buf = encoded(entries, false);
            buf[entries.len() * 32] = 0x12;
            assert_scan_matches(&buf);
        }
    }

    #[test]
    fn scanner_limits() {
        let entries: std::vec::Vec<PartitionEntry> = (0..96u32)
            .map(|i| {
                e(
                    PartitionType::Data(DataSubType::Nvs),
                    0x10000 + i * 0x1000,
                    0x1000,
                    "n",
                )
            })
            .collect();
        let mut buf = [0u8; PARTITION_TABLE_MAX_LEN];
        encode(&entries[..95], &mut buf, false).unwrap();
        assert_eq!(OtaLayout::parse(&buf).unwrap().partitions(), 95);
        assert_scan_matches(&buf);
        for (i, rec) in buf.chunks_exact_mut(32).enumerate() {
            rec.copy_from_slice(&entries[i].encode());
        }
        assert_eq!(
            OtaLayout::parse(&buf),
            Err(PartitionTableError::TooManyEntries)
        );
        assert_scan_matches(&buf);
        // Records past the 96th are not part of the table.
        let mut long = std::vec![0xFFu8; PARTITION_TABLE_MAX_LEN + 64];
        encode(&entries[..94], &mut long[..PARTITION_TABLE_MAX_LEN], false).unwrap();
        long[94 * 32..96 * 32].fill(0);
        assert_eq!(
            OtaLayout::parse(&long),
            Err(PartitionTableError::BadMagic {
                index: 94,
                found: 0
            })
        );
        long[94 * 32..96 * 32]
            .copy_from_slice(&[entries[94].encode(), entries[95].encode()].concat());
        assert_eq!(
            scan::<MAX_PARTITIONS>(&long, None),
            Err(PartitionTableError::TooManyEntries)
        );
        encode(&entries[..94], &mut long[..PARTITION_TABLE_MAX_LEN], true).unwrap();
        long[95 * 32..96 * 32].copy_from_slice(&entries[95].encode());
        assert_eq!(
            scan::<MAX_PARTITIONS>(&long, None),
            Err(PartitionTableError::EntryAfterMd5 { index: 95 })
        );
        // A scanner for N partitions refuses the (N+1)th, at its record.
        let table = encoded(&standard(), true);
        assert!(scan::<5>(&table, None).is_ok());
        assert_eq!(
            scan::<4>(&table, None),
            Err(PartitionTableError::TooManyEntries)
        );
        let mut scanner = TableScanner::<4>::default();
        for rec in table.chunks_exact(32).take(4) {
            assert!(scanner.feed(rec.try_into().unwrap()));
        }
        assert!(!scanner.feed(table[4 * 32..5 * 32].try_into().unwrap()));
        assert!(!scanner.wants_more());
        // Nothing fed: no end marker.
        assert_eq!(
            TableScanner::<4>::new().finish(),
            Err(PartitionTableError::MissingEndMarker)
        );
    }

    fn arb_entry() -> impl proptest::strategy::Strategy<Value = PartitionEntry> {
        use proptest::prelude::*;
        let kind = prop_oneof![
            (0x10u8..0x14).prop_map(|s| PartitionType::from_raw(0, s)),
            Just(PartitionType::App(AppSubType::Factory)),
            Just(PartitionType::App(AppSubType::Test)),
            Just(PartitionType::Data(DataSubType::Ota)),
            Just(PartitionType::Data(DataSubType::Nvs)),
            Just(PartitionType::Other {
                ty: 0x40,
                subtype: 1
            }),
        ];
        let offset = prop_oneof![
            4 => (0u32..64).prop_map(|k| k * 0x1_0000),
            2 => (0u32..1024).prop_map(|k| k * 0x1000),
            1 => (0u32..64).prop_map(|k| k * 0x800),
            1 => Just(0xFFFF_0000u32),
        ];
        let size = prop_oneof![
            Just(0x2000u32),
            Just(0x1000),
            Just(0x1_0000),
            Just(0x10_0000),
            Just(0),
            Just(0x2_0000),
        ];
        (kind, offset, size).prop_map(|(kind, offset, size)| PartitionEntry {
            kind,
            offset,
            size,
            label: [b'x'; 16],
            flags: PartitionFlags::NONE,
        })
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let _ = PartitionTable::parse(&bytes);
        }

        #[test]
        fn parse_never_panics_on_mutated_tables(pos in 0usize..256, val in proptest::prelude::any::<u8>()) {
            let mut buf = encoded(&standard(), false);
            buf[pos] = val;
            let _ = PartitionTable::parse(&buf);
        }

        #[test]
        fn scanner_matches_parse_on_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            assert_scan_matches(&bytes);
        }

        #[test]
        fn scanner_matches_parse_on_random_tables(
            entries in proptest::collection::vec(arb_entry(), 0..30),
            md5 in proptest::prelude::any::<bool>(),
            mutation in proptest::option::of((0usize..32 * 32, proptest::prelude::any::<u8>())),
        ) {
            let mut buf = [0xFFu8; PARTITION_TABLE_MAX_LEN];
            encode(&entries, &mut buf, md5).unwrap();
            if let Some((pos, val)) = mutation {
                buf[pos] = val;
            }
            assert_scan_matches(&buf);
        }

        #[test]
        fn scanner_matches_parse_on_valid_tables(
            slots in 0u8..=16,
            factory in proptest::prelude::any::<bool>(),
            extra in 0usize..=4,
            order in proptest::collection::vec(proptest::prelude::any::<u32>(), 24),
            md5 in proptest::prelude::any::<bool>(),
        ) {
            // otadata, optional factory, the slots and some data partitions, in a shuffled
            // order, without overlaps: these parse, so the layouts must agree.
            let mut entries = std::vec![e(PartitionType::Data(DataSubType::Ota), 0xD000, 0x2000, "otadata")];
            if factory {
                entries.push(e(PartitionType::App(AppSubType::Factory), 0x10000, 0x10000, "factory"));
            }
            for n in 0..slots {
                entries.push(e(PartitionType::App(AppSubType::Ota(n)), 0x20000 + u32::from(n) * 0x20000, 0x20000, "ota"));
            }
            for i in 0..extra as u32 {
                entries.push(e(PartitionType::Data(DataSubType::Nvs), 0x9000 + i * 0x1000, 0x1000, "nvs"));
            }
            let mut keyed: std::vec::Vec<(u32, PartitionEntry)> =
                entries.iter().zip(&order).map(|(e, k)| (*k, *e)).collect();
            keyed.sort_by_key(|(k, _)| *k);
            let entries: std::vec::Vec<PartitionEntry> = keyed.into_iter().map(|(_, e)| e).collect();
            let buf = encoded(&entries, md5);
            let layout = OtaLayout::parse(&buf);
            proptest::prop_assert!(layout.is_ok(), "{layout:?}");
            assert_scan_matches(&buf);
        }
    }
}
