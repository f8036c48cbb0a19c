//! Validating an ESP app image before switching slots (reference §3.6).
//!
//! An app image (`espflash save-image` output) is:
//!
//! ```text
//! esp_image_header_t            24 bytes, magic 0xE9, segment_count, entry, chip_id, hash_appended
//! segment × segment_count       8-byte header (load_addr, data_len) + data_len bytes
//! 0x00 padding + checksum byte  up to the next 16-byte boundary; the checksum is the last byte
//! SHA-256                       32 bytes over everything before it (if hash_appended)
//! ```
//!
//! Segment 0's data starts with the app descriptor `esp_app_desc_t` (magic `0xABCD5432`, at
//! image offset 0x20).
//!
//! [`ImageValidator`] checks all of that in one streaming pass with constant memory, as the
//! bytes arrive (from the network, or read back from flash with [`validate_in_flash`]). It
//! mirrors what `esp_ota_end` / `esp_ota_set_boot_partition` check through `image_validate(…,
//! ESP_IMAGE_VERIFY)` (`esp_image_format.c`): magic, chip id, segment count and lengths,
//! checksum, SHA-256, length against the slot. Not checked (they need the running chip): the
//! chip revision range and the eFuse block revision, load addresses against the memory map,
//! secure-boot signatures.
//!
//! [`testing::build_test_image`] writes valid images for tests and simulators.

use embedded_storage::nor_flash::ReadNorFlash;
use sha2::{Digest, Sha256};

/// First byte of every image (`ESP_IMAGE_HEADER_MAGIC`).
pub const IMAGE_MAGIC: u8 = 0xE9;
/// Size of `esp_image_header_t`.
pub const IMAGE_HEADER_LEN: usize = 24;
/// Size of `esp_image_segment_header_t`.
pub const SEGMENT_HEADER_LEN: usize = 8;
/// Most segments an image may have (`ESP_IMAGE_MAX_SEGMENTS`).
pub const MAX_SEGMENTS: u8 = 16;
/// A segment's `data_len` must be below this (16 MiB, `esp_image_format.c`).
pub const MAX_SEGMENT_LEN: u32 = 0x100_0000;
/// Initial value of the XOR checksum (`ESP_ROM_CHECKSUM_INITIAL`).
pub const CHECKSUM_SEED: u8 = 0xEF;
/// Length of the appended SHA-256 digest.
pub const HASH_LEN: usize = 32;
/// Magic word of `esp_app_desc_t` (`ESP_APP_DESC_MAGIC_WORD`).
pub const APP_DESC_MAGIC: u32 = 0xABCD_5432;
/// Image offset of the app descriptor: after the image header and segment 0's header.
pub const APP_DESC_OFFSET: usize = IMAGE_HEADER_LEN + SEGMENT_HEADER_LEN;
/// Size of `esp_app_desc_t`.
pub const APP_DESC_LEN: usize = 256;

/// An ESP chip id as stored in the image header (`esp_chip_id_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ChipId(pub u16);

impl ChipId {
    /// ESP32.
    pub const ESP32: ChipId = ChipId(0);
    /// ESP32-S2.
    pub const ESP32S2: ChipId = ChipId(2);
    /// ESP32-C3.
    pub const ESP32C3: ChipId = ChipId(5);
    /// ESP32-S3.
    pub const ESP32S3: ChipId = ChipId(9);
    /// ESP32-C2.
    pub const ESP32C2: ChipId = ChipId(12);
    /// ESP32-C6.
    pub const ESP32C6: ChipId = ChipId(13);
    /// ESP32-H2.
    pub const ESP32H2: ChipId = ChipId(16);
    /// ESP32-P4.
    pub const ESP32P4: ChipId = ChipId(18);
    /// ESP32-C61.
    pub const ESP32C61: ChipId = ChipId(20);
    /// ESP32-C5.
    pub const ESP32C5: ChipId = ChipId(23);
}

impl From<u16> for ChipId {
    fn from(raw: u16) -> Self {
        ChipId(raw)
    }
}

/// The decoded `esp_image_header_t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ImageHeader {
    /// Number of segments.
    pub segment_count: u8,
    /// SPI flash mode (0 QIO, 1 QOUT, 2 DIO, 3 DOUT, …).
    pub spi_mode: u8,
    /// Low nibble: SPI speed; high nibble: flash size.
    pub spi_speed_size: u8,
    /// Entry point address.
    pub entry: u32,
    /// WP pin (0xEE = disabled).
    pub wp_pin: u8,
    /// SPI pin drive settings.
    pub spi_pin_drv: [u8; 3],
    /// Chip id.
    pub chip_id: u16,
    /// Legacy minimum chip revision.
    pub min_chip_rev: u8,
    /// Minimum chip revision, `major * 100 + minor`.
    pub min_chip_rev_full: u16,
    /// Maximum chip revision, `major * 100 + minor`.
    pub max_chip_rev_full: u16,
    /// Non-zero if a SHA-256 digest follows the checksum.
    pub hash_appended: u8,
}

impl ImageHeader {
    /// Decodes the 24 header bytes; never fails (the magic byte is not part of the struct).
    pub fn decode(b: &[u8; IMAGE_HEADER_LEN]) -> Self {
        ImageHeader {
            segment_count: b[1],
            spi_mode: b[2],
            spi_speed_size: b[3],
            entry: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            wp_pin: b[8],
            spi_pin_drv: [b[9], b[10], b[11]],
            chip_id: u16::from_le_bytes([b[12], b[13]]),
            min_chip_rev: b[14],
            min_chip_rev_full: u16::from_le_bytes([b[15], b[16]]),
            max_chip_rev_full: u16::from_le_bytes([b[17], b[18]]),
            hash_appended: b[23],
        }
    }

    /// Encodes the header with magic [`IMAGE_MAGIC`] and zero reserved bytes.
    pub fn encode(&self) -> [u8; IMAGE_HEADER_LEN] {
        let mut b = [0u8; IMAGE_HEADER_LEN];
        b[0] = IMAGE_MAGIC;
        b[1] = self.segment_count;
        b[2] = self.spi_mode;
        b[3] = self.spi_speed_size;
        b[4..8].copy_from_slice(&self.entry.to_le_bytes());
        b[8] = self.wp_pin;
        b[9..12].copy_from_slice(&self.spi_pin_drv);
        b[12..14].copy_from_slice(&self.chip_id.to_le_bytes());
        b[14] = self.min_chip_rev;
        b[15..17].copy_from_slice(&self.min_chip_rev_full.to_le_bytes());
        b[17..19].copy_from_slice(&self.max_chip_rev_full.to_le_bytes());
        b[23] = self.hash_appended;
        b
    }
}

/// The decoded `esp_app_desc_t` (256 bytes at the start of segment 0's data).
///
/// Layout (ESP-IDF `esp_app_desc.h`): `magic u32 @0`, `secure_version u32 @4`,
/// `reserv1[2] @8`, `version[32] @16`, `project_name[32] @48`, `time[16] @80`,
/// `date[16] @96`, `idf_ver[32] @112`, `app_elf_sha256[32] @144`,
/// `min_efuse_blk_rev_full u16 @176`, `max_efuse_blk_rev_full u16 @178`,
/// `mmu_page_size u8 @180` (log2), `reserv3[3]`, `reserv2[18] u32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AppDescriptor {
    /// Anti-rollback secure version.
    pub secure_version: u32,
    /// App version, NUL-padded.
    pub version: [u8; 32],
    /// Project name, NUL-padded.
    pub project_name: [u8; 32],
    /// Compile time, NUL-padded.
    pub time: [u8; 16],
    /// Compile date, NUL-padded.
    pub date: [u8; 16],
    /// ESP-IDF version (or the esp-hal equivalent), NUL-padded.
    pub idf_ver: [u8; 32],
    /// SHA-256 of the ELF file.
    pub app_elf_sha256: [u8; 32],
    /// Minimum eFuse block revision, `major * 100 + minor`.
    pub min_efuse_blk_rev_full: u16,
    /// Maximum eFuse block revision, `major * 100 + minor`.
    pub max_efuse_blk_rev_full: u16,
    /// MMU page size as log2 (0 on images that predate the field).
    pub mmu_page_size: u8,
}

/// The text of a NUL-padded field up to its first NUL; `None` if that is not UTF-8.
fn c_str(field: &[u8]) -> Option<&str> {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    core::str::from_utf8(&field[..end]).ok()
}

impl AppDescriptor {
    /// Decodes 256 bytes; `Err(found_magic)` if they do not start with [`APP_DESC_MAGIC`].
    pub fn decode(b: &[u8; APP_DESC_LEN]) -> Result<Self, u32> {
        let word = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let magic = word(0);
        if magic != APP_DESC_MAGIC {
            return Err(magic);
        }
        let mut d = AppDescriptor {
            secure_version: word(4),
            version: [0; 32],
            project_name: [0; 32],
            time: [0; 16],
            date: [0; 16],
            idf_ver: [0; 32],
            app_elf_sha256: [0; 32],
            min_efuse_blk_rev_full: u16::from_le_bytes([b[176], b[177]]),
            max_efuse_blk_rev_full: u16::from_le_bytes([b[178], b[179]]),
            mmu_page_size: b[180],
        };
        d.version.copy_from_slice(&b[16..48]);
        d.project_name.copy_from_slice(&b[48..80]);
        d.time.copy_from_slice(&b[80..96]);
        d.date.copy_from_slice(&b[96..112]);
        d.idf_ver.copy_from_slice(&b[112..144]);
        d.app_elf_sha256.copy_from_slice(&b[144..176]);
        Ok(d)
    }

    /// Encodes the 256 bytes (reserved fields zero).
    pub fn encode(&self) -> [u8; APP_DESC_LEN] {
        let mut b = [0u8; APP_DESC_LEN];
        b[0..4].copy_from_slice(&APP_DESC_MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&self.secure_version.to_le_bytes());
        b[16..48].copy_from_slice(&self.version);
        b[48..80].copy_from_slice(&self.project_name);
        b[80..96].copy_from_slice(&self.time);
        b[96..112].copy_from_slice(&self.date);
        b[112..144].copy_from_slice(&self.idf_ver);
        b[144..176].copy_from_slice(&self.app_elf_sha256);
        b[176..178].copy_from_slice(&self.min_efuse_blk_rev_full.to_le_bytes());
        b[178..180].copy_from_slice(&self.max_efuse_blk_rev_full.to_le_bytes());
        b[180] = self.mmu_page_size;
        b
    }

    /// The version text; `None` if not UTF-8.
    pub fn version_str(&self) -> Option<&str> {
        c_str(&self.version)
    }

    /// The project name; `None` if not UTF-8.
    pub fn project_name_str(&self) -> Option<&str> {
        c_str(&self.project_name)
    }

    /// The compile time; `None` if not UTF-8.
    pub fn time_str(&self) -> Option<&str> {
        c_str(&self.time)
    }

    /// The compile date; `None` if not UTF-8.
    pub fn date_str(&self) -> Option<&str> {
        c_str(&self.date)
    }

    /// The IDF version text; `None` if not UTF-8.
    pub fn idf_ver_str(&self) -> Option<&str> {
        c_str(&self.idf_ver)
    }
}

/// What a successful validation found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ImageInfo {
    /// Total image length: header, segments, padding, checksum, and the digest if appended.
    pub len: u32,
    /// The image header.
    pub header: ImageHeader,
    /// Number of segments (same as `header.segment_count`).
    pub segments: u8,
    /// Entry point (same as `header.entry`).
    pub entry: u32,
    /// The checksum byte (verified).
    pub checksum: u8,
    /// The appended SHA-256 (verified against the image); `None` if the image has none.
    pub sha256: Option<[u8; 32]>,
    /// The app descriptor, if segment 0 starts with one.
    pub app_desc: Option<AppDescriptor>,
}

/// Exactly what made an image invalid. Offsets and lengths are image-relative.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ImageError {
    /// The first byte is not [`IMAGE_MAGIC`].
    #[error("bad image magic 0x{found:02x}")]
    BadMagic {
        /// The byte found.
        found: u8,
    },
    /// The image is for another chip.
    #[error("image is for chip {found}, expected {expected}")]
    WrongChip {
        /// The chip id the validator was built for.
        expected: u16,
        /// The header's chip id.
        found: u16,
    },
    /// More than [`MAX_SEGMENTS`] segments.
    #[error("{count} segments (max 16)")]
    TooManySegments {
        /// The header's segment count.
        count: u8,
    },
    /// `hash_appended` is 0 but the validator requires the SHA-256.
    #[error("image has no appended SHA-256")]
    NoAppendedHash,
    /// A segment length is not a multiple of 4 or not below 16 MiB.
    #[error("segment {segment} has bad length {len}")]
    BadSegmentLength {
        /// Segment index.
        segment: u8,
        /// Its `data_len`.
        len: u32,
    },
    /// The image is (or would become) longer than the limit.
    #[error("image is at least {at_least} bytes, limit {max}")]
    TooLarge {
        /// A lower bound of the image length, known from the headers so far.
        at_least: u64,
        /// The limit (the slot size).
        max: u32,
    },
    /// Segment 0 is too short to hold an app descriptor (or there is no segment).
    #[error("segment 0 has {len} bytes, too short for esp_app_desc_t")]
    ShortAppDescriptor {
        /// Segment 0's `data_len` (0 if there are no segments).
        len: u32,
    },
    /// Segment 0 does not start with [`APP_DESC_MAGIC`].
    #[error("app descriptor magic is 0x{found:08x}")]
    BadAppDescriptor {
        /// The word found at image offset 0x20.
        found: u32,
    },
    /// The stored checksum byte differs from the computed one.
    #[error("checksum 0x{computed:02x} computed, 0x{stored:02x} stored")]
    ChecksumMismatch {
        /// Computed over the segment data.
        computed: u8,
        /// Read from the image.
        stored: u8,
    },
    /// The appended SHA-256 differs from the digest of the image.
    #[error("SHA-256 mismatch")]
    HashMismatch,
    /// The input ended before the image did ([`ImageValidator::finish`] before completion).
    #[error("image truncated after {len} bytes")]
    Truncated {
        /// Bytes received.
        len: u64,
    },
    /// Bytes arrived after the image had ended (see [`ImageValidator::want`] to avoid this).
    #[error("data after the end of the {len}-byte image")]
    TrailingData {
        /// The image length; the extra bytes start there.
        len: u32,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Collecting the 24-byte header; `have` bytes so far (in `scratch`).
    Header { have: u8 },
    /// Collecting segment `index`'s 8-byte header.
    SegmentHeader { index: u8, have: u8 },
    /// Inside segment `index`'s data; `done` bytes seen, `remaining` to go (never 0).
    SegmentData {
        index: u8,
        done: u32,
        remaining: u32,
    },
    /// Inside the padding; the last of the `remaining` bytes is the checksum.
    Padding { remaining: u8 },
    /// Collecting the appended digest.
    Hash { have: u8 },
    /// The image is complete and valid.
    Done,
    /// Validation failed; the error is sticky.
    Failed(ImageError),
}

/// Streaming validator of an ESP app image; see the [module docs](self).
///
/// Feed the image with [`update`](Self::update) in chunks of any size (the result does not
/// depend on the chunking), then call [`finish`](Self::finish). Errors are reported as soon as
/// the bytes that prove them arrive (a wrong chip after 24 bytes, an oversized segment at its
/// header), so a download can be abandoned early. Memory use is constant (about 0.5 KiB);
/// no input can make it panic.
#[derive(Clone)]
pub struct ImageValidator {
    expected_chip: u16,
    max_len: u32,
    require_hash: bool,
    require_app_desc: bool,
    stage: Stage,
    /// Bytes accepted so far.
    pos: u64,
    /// Header / segment header / digest staging.
    scratch: [u8; HASH_LEN],
    header: Option<ImageHeader>,
    /// XOR of all segment data bytes (see `update_checksum`).
    xor: u8,
    checksum: u8,
    sha: Sha256,
    digest: [u8; HASH_LEN],
    desc: [u8; APP_DESC_LEN],
}

impl core::fmt::Debug for ImageValidator {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ImageValidator")
            .field("expected_chip", &self.expected_chip)
            .field("max_len", &self.max_len)
            .field("stage", &self.stage)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

impl ImageValidator {
    /// A validator for images of chip `expected` that must fit in `max_len` bytes (the slot
    /// size). By default the appended SHA-256 and the app descriptor are required.
    pub fn new(expected: ChipId, max_len: u32) -> Self {
        ImageValidator {
            expected_chip: expected.0,
            max_len,
            require_hash: true,
            require_app_desc: true,
            stage: Stage::Header { have: 0 },
            pos: 0,
            scratch: [0; HASH_LEN],
            header: None,
            xor: 0,
            checksum: 0,
            sha: Sha256::new(),
            digest: [0; HASH_LEN],
            desc: [0; APP_DESC_LEN],
        }
    }

    /// Whether `hash_appended == 0` is an error ([`ImageError::NoAppendedHash`]). Default
    /// `true`. ESP-IDF itself accepts images without a digest (checksum only) unless secure
    /// boot is on. A non-zero `hash_appended` always means a digest follows and is checked.
    pub fn require_appended_hash(mut self, required: bool) -> Self {
        self.require_hash = required;
        self
    }

    /// Whether segment 0 must start with an `esp_app_desc_t`. Default `true`; turn off for
    /// non-app images such as a bootloader.
    pub fn require_app_descriptor(mut self, required: bool) -> Self {
        self.require_app_desc = required;
        self
    }

    /// Bytes accepted so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Whether the whole image has arrived and is valid.
    pub fn is_complete(&self) -> bool {
        self.stage == Stage::Done
    }

    /// The error validation stopped at, if any.
    pub fn error(&self) -> Option<ImageError> {
        match self.stage {
            Stage::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// How many bytes [`update`](Self::update) can take before the next field boundary. Never
    /// more than the rest of the image, never 0 while the image is incomplete and no error has
    /// occurred; 0 once complete or failed. Feeding at most this many bytes at a time lets a
    /// caller stop exactly at the end of the image (used by [`validate_in_flash`]).
    pub fn want(&self) -> usize {
        match self.stage {
            Stage::Header { have } => IMAGE_HEADER_LEN - usize::from(have),
            Stage::SegmentHeader { have, .. } => SEGMENT_HEADER_LEN - usize::from(have),
            Stage::SegmentData { remaining, .. } => remaining as usize,
            Stage::Padding { remaining } => usize::from(remaining),
            Stage::Hash { have } => HASH_LEN - usize::from(have),
            Stage::Done | Stage::Failed(_) => 0,
        }
    }

    /// Feeds the next bytes of the image. An empty slice does nothing.
    ///
    /// Returns the first error found; after an error every call returns it again. Bytes after
    /// the end of the image are [`ImageError::TrailingData`] (the image itself was valid; use
    /// [`want`](Self::want) to avoid sending them).
    pub fn update(&mut self, mut data: &[u8]) -> Result<(), ImageError> {
        if let Stage::Failed(e) = self.stage {
            return Err(e);
        }
        while !data.is_empty() {
            match self.step(data) {
                Ok(used) => data = data.get(used..).unwrap_or(&[]),
                Err(e) => {
                    self.stage = Stage::Failed(e);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// The result: the image's facts if it arrived completely and is valid, the error that
    /// stopped validation, or [`ImageError::Truncated`] if the input ended early. Can be called
    /// at any time; does not change the validator.
    pub fn finish(&self) -> Result<ImageInfo, ImageError> {
        match self.stage {
            Stage::Failed(e) => Err(e),
            Stage::Done => {
                let header = self.header.ok_or(ImageError::Truncated { len: self.pos })?;
                let app_desc = if header.segment_count > 0 {
                    AppDescriptor::decode(&self.desc).ok()
                } else {
                    None
                };
                Ok(ImageInfo {
                    len: u32::try_from(self.pos).unwrap_or(u32::MAX),
                    header,
                    segments: header.segment_count,
                    entry: header.entry,
                    checksum: self.checksum,
                    sha256: (header.hash_appended != 0).then_some(self.digest),
                    app_desc,
                })
            }
            _ => Err(ImageError::Truncated { len: self.pos }),
        }
    }

    /// Consumes bytes of the current stage from the front of `data` (which is not empty);
    /// returns how many.
    fn step(&mut self, data: &[u8]) -> Result<usize, ImageError> {
        match self.stage {
            Stage::Header { have } => {
                let used = self.stage_bytes(data, have, IMAGE_HEADER_LEN);
                let have = usize::from(have) + used;
                if have < IMAGE_HEADER_LEN {
                    self.stage = Stage::Header { have: have as u8 };
                } else {
                    self.on_header()?;
                }
                Ok(used)
            }
            Stage::SegmentHeader { index, have } => {
                let used = self.stage_bytes(data, have, SEGMENT_HEADER_LEN);
                let have = usize::from(have) + used;
                if have < SEGMENT_HEADER_LEN {
                    self.stage = Stage::SegmentHeader {
                        index,
                        have: have as u8,
                    };
                } else {
                    self.on_segment_header(index)?;
                }
                Ok(used)
            }
            Stage::SegmentData {
                index,
                done,
                remaining,
            } => {
                let n = data.len().min(remaining as usize);
                let chunk = &data[..n];
                self.sha.update(chunk);
                self.xor = chunk.iter().fold(self.xor, |x, b| x ^ b);
                if index == 0 && (done as usize) < APP_DESC_LEN {
                    let start = done as usize;
                    let take = n.min(APP_DESC_LEN - start);
                    self.desc[start..start + take].copy_from_slice(&chunk[..take]);
                    // Check the magic as soon as its 4 bytes are in.
                    if self.require_app_desc && start < 4 && start + take >= 4 {
                        let found = u32::from_le_bytes([
                            self.desc[0],
                            self.desc[1],
                            self.desc[2],
                            self.desc[3],
                        ]);
                        if found != APP_DESC_MAGIC {
                            return Err(ImageError::BadAppDescriptor { found });
                        }
                    }
                }
                self.pos += n as u64;
                let n32 = n as u32; // n <= remaining: u32
                if n32 < remaining {
                    self.stage = Stage::SegmentData {
                        index,
                        done: done + n32,
                        remaining: remaining - n32,
                    };
                } else {
                    self.after_segment(index)?;
                }
                Ok(n)
            }
            Stage::Padding { remaining } => {
                let n = data.len().min(usize::from(remaining));
                let chunk = &data[..n];
                self.sha.update(chunk);
                self.pos += n as u64;
                let left = usize::from(remaining) - n;
                if left > 0 {
                    self.stage = Stage::Padding {
                        remaining: left as u8,
                    };
                    return Ok(n);
                }
                // The last padding byte is the checksum (`process_checksum`).
                let stored = chunk.last().copied().unwrap_or(0);
                let computed = CHECKSUM_SEED ^ self.xor;
                if stored != computed {
                    return Err(ImageError::ChecksumMismatch { computed, stored });
                }
                self.checksum = stored;
                self.digest = core::mem::take(&mut self.sha).finalize().into();
                let appended = self.header.is_some_and(|h| h.hash_appended != 0);
                self.stage = if appended {
                    Stage::Hash { have: 0 }
                } else {
                    Stage::Done
                };
                Ok(n)
            }
            Stage::Hash { have } => {
                let start = usize::from(have);
                let n = data.len().min(HASH_LEN - start);
                self.scratch[start..start + n].copy_from_slice(&data[..n]);
                self.pos += n as u64;
                if start + n < HASH_LEN {
                    self.stage = Stage::Hash {
                        have: (start + n) as u8,
                    };
                } else if self.scratch != self.digest {
                    return Err(ImageError::HashMismatch);
                } else {
                    self.stage = Stage::Done;
                }
                Ok(n)
            }
            Stage::Done => Err(ImageError::TrailingData {
                len: u32::try_from(self.pos).unwrap_or(u32::MAX),
            }),
            Stage::Failed(e) => Err(e),
        }
    }

    /// Copies up to `total - have` bytes into `scratch[have..]`, hashes them, returns the count.
    fn stage_bytes(&mut self, data: &[u8], have: u8, total: usize) -> usize {
        let start = usize::from(have);
        let n = data.len().min(total - start);
        self.scratch[start..start + n].copy_from_slice(&data[..n]);
        self.sha.update(&data[..n]);
        self.pos += n as u64;
        n
    }

    /// Bytes that must still follow the segments: at least the checksum, plus the digest.
    fn tail_min(&self) -> u64 {
        1 + if self.header.is_some_and(|h| h.hash_appended != 0) {
            HASH_LEN as u64
        } else {
            0
        }
    }

    fn check_len(&self, at_least: u64) -> Result<(), ImageError> {
        if at_least > u64::from(self.max_len) {
            return Err(ImageError::TooLarge {
                at_least,
                max: self.max_len,
            });
        }
        Ok(())
    }

    fn on_header(&mut self) -> Result<(), ImageError> {
        let mut raw = [0u8; IMAGE_HEADER_LEN];
        raw.copy_from_slice(&self.scratch[..IMAGE_HEADER_LEN]);
        if raw[0] != IMAGE_MAGIC {
            return Err(ImageError::BadMagic { found: raw[0] });
        }
        let h = ImageHeader::decode(&raw);
        if h.chip_id != self.expected_chip {
            return Err(ImageError::WrongChip {
                expected: self.expected_chip,
                found: h.chip_id,
            });
        }
        if h.segment_count > MAX_SEGMENTS {
            return Err(ImageError::TooManySegments {
                count: h.segment_count,
            });
        }
        if h.hash_appended == 0 && self.require_hash {
            return Err(ImageError::NoAppendedHash);
        }
        self.header = Some(h);
        let min_total = self.pos + u64::from(h.segment_count) * SEGMENT_HEADER_LEN as u64;
        self.check_len(min_total + self.tail_min())?;
        if h.segment_count == 0 {
            if self.require_app_desc {
                return Err(ImageError::ShortAppDescriptor { len: 0 });
            }
            self.enter_padding()
        } else {
            self.stage = Stage::SegmentHeader { index: 0, have: 0 };
            Ok(())
        }
    }

    fn on_segment_header(&mut self, index: u8) -> Result<(), ImageError> {
        let s = &self.scratch;
        let len = u32::from_le_bytes([s[4], s[5], s[6], s[7]]);
        if !len.is_multiple_of(4) || len >= MAX_SEGMENT_LEN {
            return Err(ImageError::BadSegmentLength {
                segment: index,
                len,
            });
        }
        if index == 0 && self.require_app_desc && (len as usize) < APP_DESC_LEN {
            return Err(ImageError::ShortAppDescriptor { len });
        }
        let count = self.header.map_or(0, |h| h.segment_count);
        let later_headers = u64::from(count.saturating_sub(index + 1)) * SEGMENT_HEADER_LEN as u64;
        self.check_len(self.pos + u64::from(len) + later_headers + self.tail_min())?;
        if len == 0 {
            self.after_segment(index)
        } else {
            self.stage = Stage::SegmentData {
                index,
                done: 0,
                remaining: len,
            };
            Ok(())
        }
    }

    fn after_segment(&mut self, index: u8) -> Result<(), ImageError> {
        let count = self.header.map_or(0, |h| h.segment_count);
        if index + 1 < count {
            self.stage = Stage::SegmentHeader {
                index: index + 1,
                have: 0,
            };
            Ok(())
        } else {
            self.enter_padding()
        }
    }

    /// Pads so that `len + 1` becomes a multiple of 16; the checksum is the last pad byte.
    fn enter_padding(&mut self) -> Result<(), ImageError> {
        let padded = (self.pos + 1).div_ceil(16) * 16;
        self.check_len(padded + self.tail_min() - 1)?;
        // 1..=16 bytes.
        self.stage = Stage::Padding {
            remaining: (padded - self.pos) as u8,
        };
        Ok(())
    }
}

/// Why [`validate_in_flash`] failed. `E` is the flash's error type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FlashImageError<E> {
    /// Reading the flash failed.
    #[error("flash read failed: {0:?}")]
    Flash(E),
    /// The image is invalid.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The buffer is shorter than the flash's `READ_SIZE`.
    #[error("read buffer smaller than the flash read size {read_size}")]
    BufferTooSmall {
        /// The flash's `READ_SIZE`.
        read_size: usize,
    },
    /// `offset` is not a multiple of the flash's `READ_SIZE`.
    #[error("offset 0x{offset:x} not aligned to the flash read size")]
    Misaligned {
        /// The offset given.
        offset: u32,
    },
}

/// Plans the next read: its length, a multiple of `read_size`, at most `buf_len`, not past
/// `limit`. 0 when nothing more can be read.
fn next_read_len(done: u64, limit: u64, buf_len: usize, read_size: usize) -> usize {
    let rest = limit.saturating_sub(done);
    let rest = usize::try_from(rest).unwrap_or(usize::MAX);
    let n = rest.min(buf_len);
    n - n % read_size
}

/// The end of the readable window: `max_len` rounded up to `read_size`, cut at the flash end.
fn read_limit(offset: u32, max_len: u32, capacity: usize, read_size: usize) -> u64 {
    let rs = read_size as u64;
    let wanted = u64::from(max_len).div_ceil(rs) * rs;
    let available = (capacity as u64).saturating_sub(u64::from(offset));
    wanted.min(available)
}

/// Feeds `chunk` up to the end of the image; the rest of the chunk (slot contents after the
/// image) is ignored.
fn feed(v: &mut ImageValidator, mut chunk: &[u8]) -> Result<(), ImageError> {
    while !chunk.is_empty() && !v.is_complete() {
        let n = v.want().min(chunk.len()).max(1);
        v.update(&chunk[..n])?;
        chunk = &chunk[n..];
    }
    Ok(())
}

fn check_read_args(offset: u32, buf_len: usize, read_size: usize) -> Result<usize, (bool, usize)> {
    if read_size == 0 || buf_len < read_size {
        return Err((true, read_size));
    }
    if !(offset as usize).is_multiple_of(read_size) {
        return Err((false, read_size));
    }
    Ok(buf_len - buf_len % read_size)
}

/// Validates the app image stored at flash address `offset` (the start of an app slot of
/// `max_len` bytes) for chip `chip`, reading it through `buf` in chunks (any size of at least
/// the flash's `READ_SIZE`; larger is faster). Reads stop at the end of the image, or at
/// `max_len` rounded up to `READ_SIZE` (and at the end of the flash); bytes of the last chunk
/// beyond the image are ignored. Uses the default [`ImageValidator`] settings (SHA-256 and app descriptor
/// required).
pub fn validate_in_flash<F: ReadNorFlash>(
    flash: &mut F,
    offset: u32,
    max_len: u32,
    chip: ChipId,
    buf: &mut [u8],
) -> Result<ImageInfo, FlashImageError<F::Error>> {
    let chunk = check_read_args(offset, buf.len(), F::READ_SIZE).map_err(|(small, rs)| {
        if small {
            FlashImageError::BufferTooSmall { read_size: rs }
        } else {
            FlashImageError::Misaligned { offset }
        }
    })?;
    let limit = read_limit(offset, max_len, flash.capacity(), F::READ_SIZE);
    let mut v = ImageValidator::new(chip, max_len);
    let mut done = 0u64;
    while !v.is_complete() {
        let n = next_read_len(done, limit, chunk, F::READ_SIZE);
        if n == 0 {
            break;
        }
        // done < limit <= capacity - offset, so this fits a u32 flash address.
        let addr = offset.saturating_add(done as u32);
        flash
            .read(addr, &mut buf[..n])
            .map_err(FlashImageError::Flash)?;
        feed(&mut v, &buf[..n])?;
        done += n as u64;
    }
    Ok(v.finish()?)
}

/// The async twin of [`validate_in_flash`]. Cancel-safe: it only reads.
pub async fn validate_in_flash_async<F: embedded_storage_async::nor_flash::ReadNorFlash>(
    flash: &mut F,
    offset: u32,
    max_len: u32,
    chip: ChipId,
    buf: &mut [u8],
) -> Result<ImageInfo, FlashImageError<F::Error>> {
    let chunk = check_read_args(offset, buf.len(), F::READ_SIZE).map_err(|(small, rs)| {
        if small {
            FlashImageError::BufferTooSmall { read_size: rs }
        } else {
            FlashImageError::Misaligned { offset }
        }
    })?;
    let limit = read_limit(offset, max_len, flash.capacity(), F::READ_SIZE);
    let mut v = ImageValidator::new(chip, max_len);
    let mut done = 0u64;
    while !v.is_complete() {
        let n = next_read_len(done, limit, chunk, F::READ_SIZE);
        if n == 0 {
            break;
        }
        let addr = offset.saturating_add(done as u32);
        flash
            .read(addr, &mut buf[..n])
            .await
            .map_err(FlashImageError::Flash)?;
        feed(&mut v, &buf[..n])?;
        done += n as u64;
    }
    Ok(v.finish()?)
}

/// Building valid app images, **for tests and simulators** (not needed on a device).
///
/// Always compiled (not `cfg(test)`) so integration tests, examples and host simulators can
/// produce images the validator and the real bootloader accept.
pub mod testing {
    use super::{
        APP_DESC_LEN, AppDescriptor, HASH_LEN, IMAGE_HEADER_LEN, ImageHeader, MAX_SEGMENT_LEN,
        MAX_SEGMENTS, SEGMENT_HEADER_LEN,
    };
    use sha2::{Digest, Sha256};

    /// Why a test image could not be built.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
    #[cfg_attr(feature = "defmt", derive(defmt::Format))]
    pub enum TestImageError {
        /// The output buffer is too small.
        #[error("buffer too small: {needed} bytes needed")]
        BufferTooSmall {
            /// Bytes the image needs.
            needed: usize,
        },
        /// More than 15 caller segments (the descriptor segment makes 16).
        #[error("too many segments")]
        TooManySegments,
        /// A segment of 16 MiB or more.
        #[error("segment too long")]
        SegmentTooLong,
        /// A text field is longer than its descriptor field (version / project name: 32 bytes).
        #[error("text field too long")]
        FieldTooLong,
    }

    /// Options of a test image; [`TestImage::new`] gives sensible defaults.
    #[derive(Clone, Copy, Debug)]
    pub struct TestImage<'a> {
        /// Chip id in the header.
        pub chip_id: u16,
        /// Entry point.
        pub entry: u32,
        /// Load address of segment 0 (which holds the app descriptor).
        pub desc_load_addr: u32,
        /// `esp_app_desc_t.version`.
        pub version: &'a str,
        /// `esp_app_desc_t.project_name`.
        pub project_name: &'a str,
        /// `esp_app_desc_t.secure_version`.
        pub secure_version: u32,
        /// Whether to append the SHA-256 (`hash_appended = 1`).
        pub hash_appended: bool,
    }

    impl<'a> TestImage<'a> {
        /// Defaults: entry `0x4037_0000`, descriptor segment at `0x3C00_0020`, version
        /// `"0.1.0"`, project `"test-app"`, secure version 0, SHA-256 appended.
        pub const fn new(chip_id: u16) -> Self {
            TestImage {
                chip_id,
                entry: 0x4037_0000,
                desc_load_addr: 0x3C00_0020,
                version: "0.1.0",
                project_name: "test-app",
                secure_version: 0,
                hash_appended: true,
            }
        }

        /// The descriptor this image will carry.
        pub fn app_desc(&self) -> Result<AppDescriptor, TestImageError> {
            let mut d = AppDescriptor {
                secure_version: self.secure_version,
                version: [0; 32],
                project_name: [0; 32],
                time: [0; 16],
                date: [0; 16],
                idf_ver: [0; 32],
                app_elf_sha256: [0; 32],
                min_efuse_blk_rev_full: 0,
                max_efuse_blk_rev_full: 0,
                mmu_page_size: 16,
            };
            put(&mut d.version, self.version)?;
            put(&mut d.project_name, self.project_name)?;
            put(&mut d.time, "00:00:00")?;
            put(&mut d.date, "Jan  1 2026")?;
            put(&mut d.idf_ver, "cellular-ota test")?;
            Ok(d)
        }

        /// Writes the image into `buf` and returns its length. Layout: header; segment 0 =
        /// the 256-byte app descriptor at `desc_load_addr`; then `segments` in order (each
        /// `(load_addr, data)`, data zero-padded to a multiple of 4); zero padding and the
        /// checksum; the SHA-256 if `hash_appended`.
        pub fn build(
            &self,
            buf: &mut [u8],
            segments: &[(u32, &[u8])],
        ) -> Result<usize, TestImageError> {
            if segments.len() >= usize::from(MAX_SEGMENTS) {
                return Err(TestImageError::TooManySegments);
            }
            let desc = self.app_desc()?.encode();
            let mut len = IMAGE_HEADER_LEN + SEGMENT_HEADER_LEN + APP_DESC_LEN;
            for (_, data) in segments {
                let padded = data.len().next_multiple_of(4);
                if padded >= MAX_SEGMENT_LEN as usize {
                    return Err(TestImageError::SegmentTooLong);
                }
                len += SEGMENT_HEADER_LEN + padded;
            }
            let padded_len = (len + 1).next_multiple_of(16);
            let needed = padded_len + if self.hash_appended { HASH_LEN } else { 0 };
            let out = buf
                .get_mut(..needed)
                .ok_or(TestImageError::BufferTooSmall { needed })?;
            out.fill(0);
            let header = ImageHeader {
                segment_count: segments.len() as u8 + 1,
                spi_mode: 2,
                spi_speed_size: 0x20,
                entry: self.entry,
                wp_pin: 0xEE,
                spi_pin_drv: [0; 3],
                chip_id: self.chip_id,
                min_chip_rev: 0,
                min_chip_rev_full: 0,
                max_chip_rev_full: 99,
                hash_appended: u8::from(self.hash_appended),
            };
            out[..IMAGE_HEADER_LEN].copy_from_slice(&header.encode());
            let mut at = IMAGE_HEADER_LEN;
            let mut xor = 0u8;
            let all = core::iter::once((self.desc_load_addr, &desc[..]))
                .chain(segments.iter().map(|&(addr, data)| (addr, data)));
            for (addr, data) in all {
                let padded = data.len().next_multiple_of(4);
                out[at..at + 4].copy_from_slice(&addr.to_le_bytes());
                out[at + 4..at + 8].copy_from_slice(&(padded as u32).to_le_bytes());
                at += SEGMENT_HEADER_LEN;
                out[at..at + data.len()].copy_from_slice(data);
                xor = data.iter().fold(xor, |x, b| x ^ b);
                at += padded;
            }
            out[padded_len - 1] = super::CHECKSUM_SEED ^ xor;
            if self.hash_appended {
                let digest: [u8; 32] = Sha256::digest(&out[..padded_len]).into();
                out[padded_len..needed].copy_from_slice(&digest);
            }
            Ok(needed)
        }
    }

    fn put(field: &mut [u8], text: &str) -> Result<(), TestImageError> {
        field
            .get_mut(..text.len())
            .ok_or(TestImageError::FieldTooLong)?
            .copy_from_slice(text.as_bytes());
        Ok(())
    }

    /// Writes a valid app image for `chip_id` into `buf` with [`TestImage::new`]'s defaults
    /// and returns its length. See [`TestImage::build`] for the layout.
    ///
    /// ```
    /// use cellular_ota::ota::esp_idf::image::{ChipId, ImageValidator, testing};
    ///
    /// let mut buf = [0u8; 512];
    /// let len = testing::build_test_image(&mut buf, 9, &[(0x4037_0000, &[1u8, 2, 3, 4][..])]).unwrap();
    /// let mut v = ImageValidator::new(ChipId::ESP32S3, 0x10000);
    /// v.update(&buf[..len]).unwrap();
    /// let info = v.finish().unwrap();
    /// assert_eq!(info.segments, 2);
    /// assert_eq!(info.app_desc.unwrap().project_name_str(), Some("test-app"));
    /// ```
    pub fn build_test_image(
        buf: &mut [u8],
        chip_id: u16,
        segments: &[(u32, &[u8])],
    ) -> Result<usize, TestImageError> {
        TestImage::new(chip_id).build(buf, segments)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::testing::{TestImage, TestImageError, build_test_image};
    use super::*;
    use crate::ota::mem_flash::MemFlash;
    use crate::ota::mem_flash::tests::block_on;
    use std::vec::Vec;

    const S3: ChipId = ChipId::ESP32S3;

    fn image() -> Vec<u8> {
        let code: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        let rodata = [0xA5u8; 6]; // not a multiple of 4: padded by the builder
        let mut buf = std::vec![0u8; 2048];
        let len = build_test_image(
            &mut buf,
            S3.0,
            &[(0x4037_0000, &code), (0x3FC8_8000, &rodata), (0, &[])],
        )
        .unwrap();
        buf.truncate(len);
        buf
    }

    fn validate(bytes: &[u8]) -> Result<ImageInfo, ImageError> {
        let mut v = ImageValidator::new(S3, 0x10000);
        v.update(bytes)?;
        v.finish()
    }

    #[test]
    fn valid_image_facts() {
        let img = image();
        // 24 + (8+256) + (8+300) + (8+8) + 8 = 620; +1 -> 624 padded; +32 digest.
        assert_eq!(img.len(), 656);
        assert_eq!(img[0], IMAGE_MAGIC);
        assert_eq!(
            &img[APP_DESC_OFFSET..APP_DESC_OFFSET + 4],
            &APP_DESC_MAGIC.to_le_bytes()
        );
        let info = validate(&img).unwrap();
        assert_eq!(info.len, 656);
        assert_eq!(info.segments, 4);
        assert_eq!(info.entry, 0x4037_0000);
        assert_eq!(info.header.chip_id, 9);
        assert_eq!(info.checksum, img[623]);
        assert_eq!(info.sha256.unwrap()[..], img[624..]);
        let d = info.app_desc.unwrap();
        assert_eq!(d.version_str(), Some("0.1.0"));
        assert_eq!(d.project_name_str(), Some("test-app"));
        assert_eq!(d.idf_ver_str(), Some("cellular-ota test"));
        assert_eq!(d.date_str(), Some("Jan  1 2026"));
        assert_eq!(d.time_str(), Some("00:00:00"));
        assert_eq!(d.secure_version, 0);
        assert_eq!(d.mmu_page_size, 16);
    }

    #[test]
    fn any_chunking_gives_the_same_result() {
        let img = image();
        let whole = validate(&img);
        assert!(whole.is_ok());
        // Byte by byte.
        let mut v = ImageValidator::new(S3, 0x10000);
        for b in &img {
            v.update(core::slice::from_ref(b)).unwrap();
        }
        assert_eq!(v.finish(), whole);
        // Split at every position.
        for cut in 0..=img.len() {
            let mut v = ImageValidator::new(S3, 0x10000);
            v.update(&img[..cut]).unwrap();
            if cut < img.len() {
                assert_eq!(v.finish(), Err(ImageError::Truncated { len: cut as u64 }));
            }
            v.update(&img[cut..]).unwrap();
            assert_eq!(v.finish(), whole, "cut at {cut}");
        }
        // Three-way splits on a stride.
        for a in (0..img.len()).step_by(7) {
            for b in (a..img.len()).step_by(13) {
                let mut v = ImageValidator::new(S3, 0x10000);
                v.update(&img[..a]).unwrap();
                v.update(&img[a..b]).unwrap();
                v.update(&img[b..]).unwrap();
                assert_eq!(v.finish(), whole);
            }
        }
    }

    #[test]
    fn corruptions_name_what_failed() {
        let img = image();
        let with = |pos: usize, val: u8| {
            let mut c = img.clone();
            c[pos] = val;
            validate(&c)
        };
        assert_eq!(with(0, 0xE8), Err(ImageError::BadMagic { found: 0xE8 }));
        assert_eq!(
            with(12, 5),
            Err(ImageError::WrongChip {
                expected: 9,
                found: 5
            })
        );
        assert_eq!(with(1, 17), Err(ImageError::TooManySegments { count: 17 }));
        assert_eq!(with(23, 0), Err(ImageError::NoAppendedHash));
        // Checksum byte.
        let stored = img[623];
        assert_eq!(
            with(623, stored ^ 0x10),
            Err(ImageError::ChecksumMismatch {
                computed: stored,
                stored: stored ^ 0x10
            })
        );
        // A data byte: the checksum catches it first.
        assert!(matches!(
            with(400, img[400] ^ 1),
            Err(ImageError::ChecksumMismatch { .. })
        ));
        // Two data bytes flipped the same way keep the XOR checksum: the SHA-256 catches it.
        let mut c = img.clone();
        c[400] ^= 0x40;
        c[404] ^= 0x40;
        assert_eq!(validate(&c), Err(ImageError::HashMismatch));
        // Padding byte (hashed, not checksummed).
        assert_eq!(with(621, 1), Err(ImageError::HashMismatch));
        // A digest byte.
        assert_eq!(with(640, img[640] ^ 1), Err(ImageError::HashMismatch));
        // App descriptor magic.
        assert_eq!(
            with(APP_DESC_OFFSET, 0x33),
            Err(ImageError::BadAppDescriptor { found: 0xABCD_5433 })
        );
        // Segment length not a multiple of 4 (segment 1's header is at 24 + 8 + 256).
        let seg1 = IMAGE_HEADER_LEN + SEGMENT_HEADER_LEN + APP_DESC_LEN;
        assert_eq!(
            with(seg1 + 4, 0x2D),
            Err(ImageError::BadSegmentLength {
                segment: 1,
                len: 0x12D
            })
        );
        assert_eq!(
            with(seg1 + 7, 0x01),
            Err(ImageError::BadSegmentLength {
                segment: 1,
                len: 0x0100_012C
            })
        );
        // Segment 0 too short for the descriptor.
        let mut c = img.clone();
        c[IMAGE_HEADER_LEN + 4..IMAGE_HEADER_LEN + 8].copy_from_slice(&16u32.to_le_bytes());
        assert_eq!(
            validate(&c),
            Err(ImageError::ShortAppDescriptor { len: 16 })
        );
        // Truncated.
        assert_eq!(
            validate(&img[..img.len() - 1]),
            Err(ImageError::Truncated {
                len: img.len() as u64 - 1
            })
        );
        assert_eq!(validate(&[]), Err(ImageError::Truncated { len: 0 }));
        // Trailing data.
        let mut c = img.clone();
        c.push(0xFF);
        assert_eq!(validate(&c), Err(ImageError::TrailingData { len: 656 }));
    }

    #[test]
    fn oversized_images_fail_early() {
        let img = image();
        // Exactly fits.
        let mut v = ImageValidator::new(S3, 656);
        v.update(&img).unwrap();
        assert!(v.finish().is_ok());
        // One byte short of room: known at the last segment header's end, before the padding.
        let mut v = ImageValidator::new(S3, 655);
        assert_eq!(
            v.update(&img),
            Err(ImageError::TooLarge {
                at_least: 656,
                max: 655
            })
        );
        assert!(v.position() < 640);
        // A huge segment is rejected at its header.
        let mut c = img.clone();
        let seg1 = IMAGE_HEADER_LEN + SEGMENT_HEADER_LEN + APP_DESC_LEN;
        c[seg1 + 4..seg1 + 8].copy_from_slice(&0x8_0000u32.to_le_bytes());
        let mut v = ImageValidator::new(S3, 0x10000);
        assert!(matches!(
            v.update(&c[..seg1 + 8]),
            Err(ImageError::TooLarge { .. })
        ));
        assert_eq!(v.position(), seg1 as u64 + 8);
        // Errors are sticky.
        assert!(matches!(
            v.update(&c[seg1 + 8..]),
            Err(ImageError::TooLarge { .. })
        ));
        assert!(matches!(v.finish(), Err(ImageError::TooLarge { .. })));
        assert!(v.error().is_some());
        assert_eq!(v.want(), 0);
    }

    #[test]
    fn wrong_chip_is_known_after_the_header() {
        let img = image();
        let mut v = ImageValidator::new(ChipId::ESP32C3, 0x10000);
        v.update(&img[..23]).unwrap();
        assert_eq!(
            v.update(&img[23..24]),
            Err(ImageError::WrongChip {
                expected: 5,
                found: 9
            })
        );
    }

    #[test]
    fn want_never_overshoots() {
        let img = image();
        let mut v = ImageValidator::new(S3, 0x10000);
        let mut at = 0;
        while !v.is_complete() {
            let w = v.want();
            assert!(w > 0 && at + w <= img.len(), "want {w} at {at}");
            v.update(&img[at..at + w]).unwrap();
            at += w;
        }
        assert_eq!(at, img.len());
        assert_eq!(v.want(), 0);
        assert_eq!(v.update(&[]), Ok(()));
    }

    #[test]
    fn optional_hash_and_descriptor() {
        let mut buf = [0u8; 1024];
        let opts = TestImage {
            hash_appended: false,
            ..TestImage::new(S3.0)
        };
        let len = opts.build(&mut buf, &[(0x4037_0000, &[9; 8])]).unwrap();
        assert_eq!(len % 16, 0);
        assert_eq!(validate(&buf[..len]), Err(ImageError::NoAppendedHash));
        let mut v = ImageValidator::new(S3, 0x10000).require_appended_hash(false);
        v.update(&buf[..len]).unwrap();
        let info = v.finish().unwrap();
        assert_eq!(info.sha256, None);
        assert_eq!(info.len as usize, len);
        // A bootloader-like image without a descriptor.
        let mut img = image();
        img[APP_DESC_OFFSET] = 0;
        // (Fix the checksum and digest so only the descriptor is off.)
        let fix = |img: &mut Vec<u8>| {
            let n = img.len();
            let xor_delta = 0x32; // old byte 0x32 -> 0x00
            img[n - 33] ^= xor_delta;
            let d: [u8; 32] = Sha256::digest(&img[..n - 32]).into();
            img[n - 32..].copy_from_slice(&d);
        };
        fix(&mut img);
        assert_eq!(
            validate(&img),
            Err(ImageError::BadAppDescriptor { found: 0xABCD_5400 })
        );
        let mut v = ImageValidator::new(S3, 0x10000).require_app_descriptor(false);
        v.update(&img).unwrap();
        assert_eq!(v.finish().unwrap().app_desc, None);
    }

    #[test]
    fn zero_segment_image() {
        // Header only: 24 bytes, padding to 32 with the checksum 0xEF last, no digest.
        let h = ImageHeader {
            segment_count: 0,
            spi_mode: 2,
            spi_speed_size: 0,
            entry: 0,
            wp_pin: 0xEE,
            spi_pin_drv: [0; 3],
            chip_id: 9,
            min_chip_rev: 0,
            min_chip_rev_full: 0,
            max_chip_rev_full: 0,
            hash_appended: 0,
        };
        let mut img = [0u8; 32];
        img[..24].copy_from_slice(&h.encode());
        img[31] = CHECKSUM_SEED;
        assert_eq!(validate(&img), Err(ImageError::NoAppendedHash));
        let mut v = ImageValidator::new(S3, 32)
            .require_appended_hash(false)
            .require_app_descriptor(false);
        v.update(&img).unwrap();
        let info = v.finish().unwrap();
        assert_eq!((info.len, info.segments, info.app_desc), (32, 0, None));
        let mut v = ImageValidator::new(S3, 32).require_appended_hash(false);
        assert_eq!(
            v.update(&img),
            Err(ImageError::ShortAppDescriptor { len: 0 })
        );
    }

    #[test]
    fn builder_errors() {
        let mut small = [0u8; 64];
        assert!(matches!(
            build_test_image(&mut small, 9, &[]),
            Err(TestImageError::BufferTooSmall { needed: 336 })
        ));
        let mut buf = [0u8; 4096];
        let segs = [(0u32, &[][..]); 16];
        assert_eq!(
            build_test_image(&mut buf, 9, &segs),
            Err(TestImageError::TooManySegments)
        );
        let long = TestImage {
            version: "a version string that is longer than 32 bytes",
            ..TestImage::new(9)
        };
        assert_eq!(long.build(&mut buf, &[]), Err(TestImageError::FieldTooLong));
        // 15 caller segments is the maximum and validates.
        let len = build_test_image(&mut buf, 9, &segs[..15]).unwrap();
        assert_eq!(validate(&buf[..len]).unwrap().segments, 16);
    }

    #[test]
    fn header_and_descriptor_round_trip() {
        let img = image();
        let raw: [u8; 24] = img[..24].try_into().unwrap();
        assert_eq!(ImageHeader::decode(&raw).encode(), raw);
        let raw: [u8; 256] = img[APP_DESC_OFFSET..APP_DESC_OFFSET + 256]
            .try_into()
            .unwrap();
        assert_eq!(AppDescriptor::decode(&raw).unwrap().encode(), raw);
        assert_eq!(AppDescriptor::decode(&[0; 256]), Err(0));
        assert_eq!(ChipId::from(5), ChipId::ESP32C3);
    }

    #[test]
    fn validates_in_flash() {
        let img = image();
        let mut mem = std::vec![0u8; 0x30000];
        let mut flash: MemFlash<'_, 4096, 4, 4> = MemFlash::new_erased(&mut mem);
        flash.as_mut_slice()[0x10000..0x10000 + img.len()].copy_from_slice(&img);
        // Junk after the image in the slot does not matter.
        flash.as_mut_slice()[0x10000 + img.len()..0x10000 + img.len() + 8].fill(0x00);
        for chunk in [4usize, 5, 16, 100, 256, 4096] {
            let mut buf = std::vec![0u8; chunk];
            let info = validate_in_flash(&mut flash, 0x10000, 0x10000, S3, &mut buf).unwrap();
            assert_eq!(info, validate(&img).unwrap(), "chunk {chunk}");
            let info2 = block_on(validate_in_flash_async(
                &mut flash, 0x10000, 0x10000, S3, &mut buf,
            ))
            .unwrap();
            assert_eq!(info2, info);
        }
        let mut buf = [0u8; 256];
        // Empty slot.
        assert_eq!(
            validate_in_flash(&mut flash, 0x20000, 0x10000, S3, &mut buf),
            Err(FlashImageError::Image(ImageError::BadMagic { found: 0xFF }))
        );
        // Slot too small for the image.
        assert_eq!(
            validate_in_flash(&mut flash, 0x10000, 0x200, S3, &mut buf),
            Err(FlashImageError::Image(ImageError::TooLarge {
                at_least: 296 + 300 + 2 * 8 + 33,
                max: 0x200
            }))
        );
        // Argument errors.
        assert_eq!(
            validate_in_flash(&mut flash, 0x10000, 0x10000, S3, &mut buf[..3]),
            Err(FlashImageError::BufferTooSmall { read_size: 4 })
        );
        assert_eq!(
            validate_in_flash(&mut flash, 0x10002, 0x10000, S3, &mut buf),
            Err(FlashImageError::Misaligned { offset: 0x10002 })
        );
        // An image cut off by the end of the flash.
        let cap = 0x30000;
        flash.as_mut_slice()[cap - 256..].copy_from_slice(&img[..256]);
        assert_eq!(
            validate_in_flash(&mut flash, (cap - 256) as u32, 0x10000, S3, &mut buf),
            Err(FlashImageError::Image(ImageError::Truncated { len: 256 }))
        );
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(
            bytes in proptest::collection::vec(any::<u8>(), 0..1024),
            cuts in proptest::collection::vec(any::<usize>(), 0..6),
        ) {
            let mut v = ImageValidator::new(S3, 0x800).require_appended_hash(false).require_app_descriptor(false);
            let mut rest = &bytes[..];
            for c in cuts {
                let c = c % (rest.len() + 1);
                let _ = v.update(&rest[..c]);
                rest = &rest[c..];
            }
            let _ = v.update(rest);
            let _ = v.finish();
            let _ = v.want();
        }

        #[test]
        fn never_panics_on_arbitrary_headers(
            header in proptest::collection::vec(any::<u8>(), 24),
            rest in proptest::collection::vec(any::<u8>(), 0..700),
        ) {
            // Valid magic and chip so the segment walk is exercised.
            let mut bytes = header;
            bytes[0] = IMAGE_MAGIC;
            bytes[12] = 9;
            bytes[13] = 0;
            bytes.extend_from_slice(&rest);
            let mut v = ImageValidator::new(S3, u32::MAX).require_app_descriptor(false);
            let _ = v.update(&bytes);
            let _ = v.finish();
        }

        #[test]
        fn mutated_valid_image_never_passes_unless_unchanged(pos in 0usize..656, val in any::<u8>()) {
            let img = image();
            let mut c = img.clone();
            c[pos] = val;
            let r = validate(&c);
            if val == img[pos] {
                prop_assert!(r.is_ok());
            } else {
                prop_assert!(r.is_err());
            }
        }
    }
}
