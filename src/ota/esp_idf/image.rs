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
//! applies what the ESP-IDF second-stage bootloader checks before it runs an app
//! (`esp_image_format.c` in `ESP_IMAGE_LOAD` mode, ESP-IDF v6.1): magic, chip id, segment
//! count and lengths, checksum, SHA-256, length against the slot, and, with the chip's
//! [`MemoryMap`], where each segment goes:
//!
//! - a segment in the flash-mapped ranges (IROM code, DROM read-only data) must sit at the
//!   same offset within a 64 KiB MMU page in flash as at its address (`verify_segment_header`),
//!   must end inside its range (`mmu_hal_map_region` asserts otherwise), and there must be
//!   exactly one of each: the bootloader maps only the last IROM and the last DROM segment,
//!   and an image without one makes it abort (`unpack_load_app`). The IROM and DROM pages
//!   must not share an MMU entry (the bootloader would map the second over the first);
//! - a segment the bootloader copies into RAM (load address ≥ `0x1000_0000`, not mapped)
//!   must lie entirely in IRAM, DRAM or RTC memory, and must not overlap the RAM the
//!   bootloader itself runs in while it copies: its data, its loader code and its stack
//!   (`verify_load_addresses`; through the shared D/IRAM aliases as well). The reserved
//!   range used here is the largest those can take ([`MemoryMap::bootloader_dram`]); an app
//!   linked by ESP-IDF or esp-hal never reaches it;
//! - segments below `0x1000_0000` (padding segments at address 0) are neither loaded nor
//!   mapped.
//!
//! With the chip's [`Revisions`] it also checks the image's chip revision range
//! (`bootloader_common_check_chip_revision_validity`) and the app descriptor's eFuse block
//! revision range. Not checked: secure-boot signatures and anti-rollback (`secure_version`),
//! which need the chip's eFuses and keys.
//!
//! [`testing::TestImage::build_app`] writes valid images laid out the way the ESP toolchains
//! lay them out, for tests and simulators.

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
    /// A segment goes where the bootloader would not put it ([`SegmentFault`] says why).
    #[error("segment {segment} at 0x{addr:08x} ({len} bytes): {fault}")]
    BadSegment {
        /// Segment index.
        segment: u8,
        /// Its load address.
        addr: u32,
        /// Its `data_len`.
        len: u32,
        /// What is wrong with it.
        fault: SegmentFault,
    },
    /// The image has no segment in this flash-mapped range: the bootloader maps both
    /// unconditionally and aborts without one.
    #[error("no {0} segment")]
    MissingMapped(Mapped),
    /// The chip's revision is outside the image's `min_chip_rev_full..=max_chip_rev_full`
    /// (`major * 100 + minor`; a maximum of 0 or 0xFFFF means none).
    #[error("image needs chip revision {min}..={max}, the chip is {chip}")]
    ChipRevision {
        /// The image's minimum.
        min: u16,
        /// The image's maximum.
        max: u16,
        /// The chip's revision.
        chip: u16,
    },
    /// The chip's eFuse block revision is outside the app descriptor's
    /// `min_efuse_blk_rev_full..=max_efuse_blk_rev_full` (0 and 0xFFFF mean unset).
    #[error("image needs eFuse block revision {min}..={max}, the chip has {chip}")]
    EfuseBlockRevision {
        /// The descriptor's minimum.
        min: u16,
        /// The descriptor's maximum.
        max: u16,
        /// The chip's eFuse block revision.
        chip: u16,
    },
}

/// A flash-mapped address range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Mapped {
    /// Code executed from flash (`SOC_IROM_LOW..SOC_IROM_HIGH`).
    Irom,
    /// Read-only data read from flash (`SOC_DROM_LOW..SOC_DROM_HIGH`).
    Drom,
}

impl core::fmt::Display for Mapped {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Mapped::Irom => "IROM",
            Mapped::Drom => "DROM",
        })
    }
}

/// Why the bootloader would not load or map a segment ([`ImageError::BadSegment`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SegmentFault {
    /// A flash-mapped segment whose data sits at another offset within its 64 KiB MMU page
    /// in flash than its address does.
    #[error("{0} segment not at its address's offset within a 64 KiB flash page")]
    PageOffset(Mapped),
    /// A flash-mapped segment that runs past the end of its range.
    #[error("{0} segment runs past the end of its range")]
    PastMappedRange(Mapped),
    /// A second segment in the same flash-mapped range: only the last would be mapped.
    #[error("a second {0} segment (the bootloader maps only one)")]
    SecondMapped(Mapped),
    /// IROM and DROM pages that share an MMU entry: one mapping would replace the other.
    #[error("IROM and DROM share an MMU page")]
    MmuOverlap,
    /// A segment to copy into RAM that is not entirely inside IRAM, DRAM or RTC memory.
    #[error("outside IRAM, DRAM and RTC memory")]
    NotInRam,
    /// A segment to copy into RAM over the RAM the bootloader runs in (its data, loader
    /// code or stack) while it copies.
    #[error("over the bootloader's own RAM")]
    BootloaderRam,
}

/// A range of addresses, `start..end` (end exclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Region {
    /// First address.
    pub start: u32,
    /// One past the last address.
    pub end: u32,
}

impl Region {
    /// `start..end`.
    pub const fn new(start: u32, end: u32) -> Self {
        Region { start, end }
    }

    /// Whether `addr` is inside.
    pub const fn contains(&self, addr: u32) -> bool {
        self.start <= addr && addr < self.end
    }

    /// Whether the non-empty `[start, end)` (as u64, so `end` may be 2^32) lies inside.
    fn holds(&self, start: u64, end: u64) -> bool {
        u64::from(self.start) <= start && end <= u64::from(self.end)
    }

    /// Whether `[start, end)` overlaps this region.
    fn overlaps(&self, start: u64, end: u64) -> bool {
        start < u64::from(self.end) && u64::from(self.start) < end
    }
}

/// Where a chip's second-stage bootloader lets an app's segments go: the chip's memory map
/// (ESP-IDF `components/soc/<chip>/include/soc/soc.h`) and the RAM the bootloader occupies
/// while it loads (`components/bootloader/subproject/main/ld/<chip>/bootloader.memory.ld.in`,
/// ESP-IDF v5.3 to v6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MemoryMap {
    /// Flash-mapped code (`SOC_IROM_LOW..SOC_IROM_HIGH`).
    pub irom: Region,
    /// Flash-mapped read-only data (`SOC_DROM_LOW..SOC_DROM_HIGH`).
    pub drom: Region,
    /// Instruction RAM (`SOC_IRAM_LOW..SOC_IRAM_HIGH`).
    pub iram: Region,
    /// Data RAM (`SOC_DRAM_LOW..SOC_DRAM_HIGH`).
    pub dram: Region,
    /// The part of [`dram`](Self::dram) that is the same memory as IRAM at
    /// `+ iram_offset` (`SOC_DIRAM_DRAM_LOW..SOC_DIRAM_DRAM_HIGH`).
    pub diram: Region,
    /// IRAM address minus DRAM address of the same byte (`SOC_I_D_OFFSET`).
    pub iram_offset: u32,
    /// RTC memories a segment may load into (fast and slow; equal when a chip has one).
    pub rtc: [Region; 2],
    /// DRAM the bootloader occupies while it copies segments: from its loader code (seen
    /// at its DRAM alias) through its data to the top of the ROM stack it runs on
    /// (`SOC_ROM_STACK_START`). Also refused at the IRAM alias.
    pub bootloader_dram: Region,
    /// Mask of a flash-mapped virtual address that selects its MMU entry, with the 64 KiB
    /// page (`SOC_MMU_VADDR_MASK`).
    pub mmu_vaddr_mask: u32,
}

/// The MMU page of ESP32-S3 and ESP32-C3 (`CONFIG_MMU_PAGE_SIZE`): flash-mapped segments
/// keep their offset within it.
pub const MMU_PAGE: u32 = 0x1_0000;

/// Load addresses below this are not loaded (padding segments use 0).
pub const LOADED_FROM: u32 = 0x1000_0000;

impl MemoryMap {
    /// ESP32-S3 (`soc/esp32s3/include/soc/soc.h`; bootloader loader code from
    /// `0x403C_B700`, i.e. DRAM `0x3FCD_B700`, ROM stack top `0x3FCE_B710`).
    pub const ESP32S3: MemoryMap = MemoryMap {
        irom: Region::new(0x4200_0000, 0x4400_0000),
        drom: Region::new(0x3C00_0000, 0x3E00_0000),
        iram: Region::new(0x4037_0000, 0x403E_0000),
        dram: Region::new(0x3FC8_8000, 0x3FD0_0000),
        diram: Region::new(0x3FC8_8000, 0x3FCF_0000),
        iram_offset: 0x6F_0000,
        rtc: [
            Region::new(0x600F_E000, 0x6010_0000),
            Region::new(0x5000_0000, 0x5000_2000),
        ],
        bootloader_dram: Region::new(0x3FCD_B700, 0x3FCE_B710),
        mmu_vaddr_mask: 0x1FF_FFFF,
    };

    /// ESP32-C3 (`soc/esp32c3/include/soc/soc.h`; bootloader loader code from
    /// `0x403C_E710`, i.e. DRAM `0x3FCC_E710`, ROM stack top `0x3FCD_E710`).
    pub const ESP32C3: MemoryMap = MemoryMap {
        irom: Region::new(0x4200_0000, 0x4280_0000),
        drom: Region::new(0x3C00_0000, 0x3C80_0000),
        iram: Region::new(0x4037_C000, 0x403E_0000),
        dram: Region::new(0x3FC8_0000, 0x3FCE_0000),
        diram: Region::new(0x3FC8_0000, 0x3FCE_0000),
        iram_offset: 0x70_0000,
        rtc: [
            Region::new(0x5000_0000, 0x5000_2000),
            Region::new(0x5000_0000, 0x5000_2000),
        ],
        bootloader_dram: Region::new(0x3FCC_E710, 0x3FCD_E710),
        mmu_vaddr_mask: 0x7F_FFFF,
    };

    /// The built-in map of `chip`, if this crate has one (ESP32-S3 and ESP32-C3).
    pub const fn for_chip(chip: ChipId) -> Option<&'static MemoryMap> {
        match chip.0 {
            9 => Some(&MemoryMap::ESP32S3),
            5 => Some(&MemoryMap::ESP32C3),
            _ => None,
        }
    }

    /// Which flash-mapped range `addr` is in.
    pub fn mapped(&self, addr: u32) -> Option<Mapped> {
        if self.irom.contains(addr) {
            Some(Mapped::Irom)
        } else if self.drom.contains(addr) {
            Some(Mapped::Drom)
        } else {
            None
        }
    }

    /// The MMU entry of a flash-mapped address (saturated at `u16::MAX` for a hand-made
    /// map with a mask wider than 32 bits of pages).
    fn mmu_entry(&self, addr: u32) -> u16 {
        u16::try_from((addr & self.mmu_vaddr_mask) / MMU_PAGE).unwrap_or(u16::MAX)
    }

    /// Checks a segment the bootloader copies into RAM: `[addr, addr + len)`, `len > 0`.
    fn check_loaded(&self, addr: u32, len: u32) -> Result<(), SegmentFault> {
        let (start, end) = (u64::from(addr), u64::from(addr) + u64::from(len));
        let reserved = self.bootloader_dram;
        let reserved_i = Region::new(
            reserved.start.wrapping_add(self.iram_offset),
            reserved.end.wrapping_add(self.iram_offset),
        );
        if self.dram.holds(start, end) {
            if reserved.overlaps(start, end) {
                return Err(SegmentFault::BootloaderRam);
            }
            Ok(())
        } else if self.iram.holds(start, end) {
            if reserved_i.overlaps(start, end) {
                return Err(SegmentFault::BootloaderRam);
            }
            Ok(())
        } else if self.rtc.iter().any(|r| r.holds(start, end)) {
            Ok(())
        } else {
            Err(SegmentFault::NotInRam)
        }
    }
}

/// The revisions of the chip an image will run on, for the checks that depend on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Revisions {
    /// The chip revision, `major * 100 + minor` (v0.4 is 4, v1.2 is 102).
    pub chip: u16,
    /// The eFuse block revision, `major * 100 + minor`.
    pub efuse_block: u16,
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
    /// Where segments may go; `None`: not checked.
    map: Option<&'static MemoryMap>,
    /// Flash address of the image's first byte (only its offset in a 64 KiB page matters).
    flash_offset: u32,
    /// The chip's revisions; `None`: the revision ranges are not checked.
    revisions: Option<Revisions>,
    /// First and last MMU entry of the IROM and DROM segments seen so far (entries are below
    /// 2^16: the virtual address masks are at most 25 bits wide).
    irom: Option<(u16, u16)>,
    drom: Option<(u16, u16)>,
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
    /// A validator for app images of chip `expected` that must fit in `max_len` bytes (the
    /// slot size). By default the appended SHA-256 and the app descriptor are required, and
    /// segments are checked against the chip's built-in [`MemoryMap`] (ESP32-S3, ESP32-C3;
    /// for another chip give one with [`with_memory_map`](Self::with_memory_map)).
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
            map: MemoryMap::for_chip(expected),
            flash_offset: 0,
            revisions: None,
            irom: None,
            drom: None,
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
    /// non-app images such as a bootloader (and give no memory map: the app rules for where
    /// segments go do not apply to them).
    pub fn require_app_descriptor(mut self, required: bool) -> Self {
        self.require_app_desc = required;
        self
    }

    /// The memory map segments are checked against; `None` checks no addresses (for images
    /// that are not apps).
    pub fn with_memory_map(mut self, map: Option<&'static MemoryMap>) -> Self {
        self.map = map;
        self
    }

    /// The memory map segments are checked against.
    pub fn memory_map(&self) -> Option<&'static MemoryMap> {
        self.map
    }

    /// The flash address the image starts at (the slot's offset; default 0). Flash-mapped
    /// segments must sit at their address's offset within a 64 KiB page of *flash*; app
    /// partitions are 64 KiB aligned, so 0 is right for them.
    pub fn at_flash_offset(mut self, offset: u32) -> Self {
        self.flash_offset = offset;
        self
    }

    /// The revisions of the chip the image will run on: its chip revision range and its
    /// eFuse block revision range are then checked. Default `None`: not checked.
    pub fn with_revisions(mut self, revisions: Option<Revisions>) -> Self {
        self.revisions = revisions;
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
        if let Some(r) = self.revisions {
            let (min, max) = (h.min_chip_rev_full, h.max_chip_rev_full);
            // `bootloader_common_check_chip_revision_validity`: the minimum has no "unset"
            // value; a maximum of 0 or 0xFFFF is none.
            if r.chip < min || (is_set(max) && r.chip > max) {
                return Err(ImageError::ChipRevision {
                    min,
                    max,
                    chip: r.chip,
                });
            }
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
        let addr = u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
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
        if let Some(map) = self.map {
            self.check_place(map, addr, len)
                .map_err(|fault| ImageError::BadSegment {
                    segment: index,
                    addr,
                    len,
                    fault,
                })?;
        }
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

    /// Where a segment goes (its header was just read; `pos` is where its data starts).
    fn check_place(&mut self, map: &MemoryMap, addr: u32, len: u32) -> Result<(), SegmentFault> {
        let Some(kind) = map.mapped(addr) else {
            if addr < LOADED_FROM || len == 0 {
                return Ok(()); // not loaded (padding), or nothing to load
            }
            return map.check_loaded(addr, len);
        };
        let (region, this, other) = match kind {
            Mapped::Irom => (map.irom, &self.irom, &self.drom),
            Mapped::Drom => (map.drom, &self.drom, &self.irom),
        };
        let data = u64::from(self.flash_offset) + self.pos;
        if data % u64::from(MMU_PAGE) != u64::from(addr % MMU_PAGE) {
            return Err(SegmentFault::PageOffset(kind));
        }
        let end = u64::from(addr) + u64::from(len);
        if end > u64::from(region.end) {
            return Err(SegmentFault::PastMappedRange(kind));
        }
        if this.is_some() {
            return Err(SegmentFault::SecondMapped(kind));
        }
        let last = addr.saturating_add(len.saturating_sub(1));
        let entries = (map.mmu_entry(addr), map.mmu_entry(last));
        if other.is_some_and(|(a, b)| entries.0 <= b && a <= entries.1) {
            return Err(SegmentFault::MmuOverlap);
        }
        match kind {
            Mapped::Irom => self.irom = Some(entries),
            Mapped::Drom => self.drom = Some(entries),
        }
        Ok(())
    }

    fn after_segment(&mut self, index: u8) -> Result<(), ImageError> {
        if index == 0 && self.require_app_desc {
            // `bootloader_common_check_efuse_blk_validity`, with the descriptor's u16s at
            // 0xB0 and 0xB2 (0 and 0xFFFF are unset).
            if let Some(r) = self.revisions {
                let min = u16::from_le_bytes([self.desc[0xB0], self.desc[0xB1]]);
                let max = u16::from_le_bytes([self.desc[0xB2], self.desc[0xB3]]);
                let chip = r.efuse_block;
                if (is_set(min) && chip < min) || (is_set(max) && chip > max) {
                    return Err(ImageError::EfuseBlockRevision { min, max, chip });
                }
            }
        }
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
        if self.map.is_some() && self.require_app_desc {
            if self.drom.is_none() {
                return Err(ImageError::MissingMapped(Mapped::Drom));
            }
            if self.irom.is_none() {
                return Err(ImageError::MissingMapped(Mapped::Irom));
            }
        }
        let padded = (self.pos + 1).div_ceil(16) * 16;
        self.check_len(padded + self.tail_min() - 1)?;
        // 1..=16 bytes.
        self.stage = Stage::Padding {
            remaining: (padded - self.pos) as u8,
        };
        Ok(())
    }
}

/// A revision field that means something (`IS_FIELD_SET`: not 0, not 0xFFFF).
fn is_set(v: u16) -> bool {
    v != 0 && v != u16::MAX
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
/// beyond the image are ignored. Uses the default [`ImageValidator`] settings (SHA-256 and app
/// descriptor required, segments checked against the chip's built-in memory map) at flash
/// offset `offset`.
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
    let mut v = ImageValidator::new(chip, max_len).at_flash_offset(offset);
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
    let mut v = ImageValidator::new(chip, max_len).at_flash_offset(offset);
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
        APP_DESC_LEN, AppDescriptor, ChipId, HASH_LEN, IMAGE_HEADER_LEN, ImageHeader,
        MAX_SEGMENT_LEN, MAX_SEGMENTS, MMU_PAGE, MemoryMap, SEGMENT_HEADER_LEN,
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
        /// [`TestImage::build_app`] for a chip without a built-in [`MemoryMap`].
        #[error("no memory map for this chip")]
        NoMemoryMap,
        /// [`TestImage::build_app`]: the RAM parts do not fit below the bootloader's RAM.
        #[error("IRAM and DRAM parts too large")]
        RamTooLarge,
    }

    /// The parts of an app [`TestImage::build_app`] lays out. Each is padded to a multiple
    /// of 4 bytes.
    #[derive(Clone, Copy, Debug, Default)]
    pub struct AppParts<'a> {
        /// Read-only data, after the app descriptor in the DROM segment.
        pub rodata: &'a [u8],
        /// Initialised data, copied into DRAM.
        pub data: &'a [u8],
        /// Code copied into IRAM.
        pub iram: &'a [u8],
        /// Code executed from flash (IROM).
        pub text: &'a [u8],
        /// Put the IROM data at offset 0x20 of a 64 KiB flash page, with a padding segment
        /// before it, as esptool and espflash do for an app linked at `0x4200_0020 + n ·
        /// 64 KiB`. `false`: no padding; the IROM address takes the offset its data happens
        /// to have (as valid for the bootloader, and smaller for tiny test images).
        pub page_aligned_text: bool,
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

        /// Writes an app laid out as the ESP toolchains lay one out (compare
        /// `esptool image-info` of an `espflash save-image` output) and returns its length:
        ///
        /// | segment | address | holds |
        /// |---|---|---|
        /// | 0 | DROM `+ 0x20` | the app descriptor, then `rodata` |
        /// | 1 | DRAM, after the IRAM part's alias | `data` |
        /// | 2 | IRAM (the shared D/IRAM start) | `iram` |
        /// | (3) | 0 | padding, with [`AppParts::page_aligned_text`] |
        /// | 3 or 4 | IROM, in the first MMU page after DROM's, at its data's page offset | `text` |
        ///
        /// `desc_load_addr` and `entry` are ignored: the DROM address is fixed and the entry
        /// is the start of `text`. Errors: [`TestImageError::NoMemoryMap`] for a chip
        /// without a built-in map, [`TestImageError::RamTooLarge`] if `iram` and `data` do
        /// not fit below the bootloader's RAM, and those of [`build`](Self::build).
        pub fn build_app(
            &self,
            buf: &mut [u8],
            parts: &AppParts<'_>,
        ) -> Result<usize, TestImageError> {
            let l = self.app_layout(parts)?;
            let mut segments = [Seg::Bytes(0, &[]); 4];
            segments[0] = Seg::Bytes(l.dram, parts.data);
            segments[1] = Seg::Bytes(l.iram, parts.iram);
            let mut n = 2;
            if let Some(len) = l.padding {
                segments[n] = Seg::Zeros(0, len);
                n += 1;
            }
            segments[n] = Seg::Bytes(l.irom, parts.text);
            n += 1;
            let opts = TestImage {
                desc_load_addr: l.drom,
                entry: l.irom,
                ..*self
            };
            opts.write(buf, parts.rodata, &segments[..n])
        }

        /// The image offset where [`build_app`](Self::build_app) puts the first byte of
        /// `parts.text` (it does not depend on the text's length): an image with `t` text
        /// bytes (a multiple of 4) is `(offset + t + 1)` rounded up to 16, plus 32 bytes of
        /// SHA-256.
        pub fn app_text_offset(&self, parts: &AppParts<'_>) -> Result<u32, TestImageError> {
            Ok(self.app_layout(parts)?.text_data)
        }

        fn app_layout(&self, parts: &AppParts<'_>) -> Result<AppLayout, TestImageError> {
            let map =
                MemoryMap::for_chip(ChipId(self.chip_id)).ok_or(TestImageError::NoMemoryMap)?;
            let pad4 = |n: usize| n.next_multiple_of(4) as u32;
            let header = SEGMENT_HEADER_LEN as u32;
            let drom = map.drom.start + 0x20;
            let drom_len = APP_DESC_LEN as u32 + pad4(parts.rodata.len());
            // IRAM code at the start of the shared D/IRAM, data right after its DRAM alias.
            let iram = map.diram.start + map.iram_offset;
            let dram = map.diram.start + pad4(parts.iram.len());
            let ram_end = u64::from(dram) + u64::from(pad4(parts.data.len()));
            if ram_end > u64::from(map.bootloader_dram.start) {
                return Err(TestImageError::RamTooLarge);
            }
            // Where the next segment's header starts, after DROM, DRAM and IRAM.
            let at = IMAGE_HEADER_LEN as u32
                + 3 * header
                + drom_len
                + pad4(parts.data.len())
                + pad4(parts.iram.len());
            let (padding, text_data) = if parts.page_aligned_text {
                // A padding segment (with its own header) so that the IROM data lands at
                // 0x20 of a page, as elf2image does.
                let text_data = (at + 2 * header - 0x20).next_multiple_of(MMU_PAGE) + 0x20;
                (Some((text_data - at - 2 * header) as usize), text_data)
            } else {
                (None, at + header)
            };
            // The first MMU page after DROM's last one, at the data's offset in its page.
            let drom_pages = (drom + drom_len - 1 - map.drom.start) / MMU_PAGE + 1;
            let irom = map.irom.start + drom_pages * MMU_PAGE + text_data % MMU_PAGE;
            Ok(AppLayout {
                drom,
                dram,
                iram,
                irom,
                padding,
                text_data,
            })
        }

        /// Writes the image into `buf` and returns its length. Layout: header; segment 0 =
        /// the 256-byte app descriptor at `desc_load_addr`; then `segments` in order (each
        /// `(load_addr, data)`, data zero-padded to a multiple of 4); zero padding and the
        /// checksum; the SHA-256 if `hash_appended`. The segments are written as given: use
        /// [`build_app`](Self::build_app) for an image the bootloader would load.
        pub fn build(
            &self,
            buf: &mut [u8],
            segments: &[(u32, &[u8])],
        ) -> Result<usize, TestImageError> {
            let mut segs = [Seg::Bytes(0, &[]); MAX_SEGMENTS as usize];
            let all = segs
                .get_mut(..segments.len())
                .ok_or(TestImageError::TooManySegments)?;
            for (dst, &(addr, data)) in all.iter_mut().zip(segments) {
                *dst = Seg::Bytes(addr, data);
            }
            self.write(buf, &[], all)
        }

        /// Header, the descriptor segment (descriptor + `rodata`), `segments`, checksum,
        /// digest.
        fn write(
            &self,
            buf: &mut [u8],
            rodata: &[u8],
            segments: &[Seg<'_>],
        ) -> Result<usize, TestImageError> {
            if segments.len() >= usize::from(MAX_SEGMENTS) {
                return Err(TestImageError::TooManySegments);
            }
            let desc = self.app_desc()?.encode();
            let seg0 = APP_DESC_LEN + rodata.len().next_multiple_of(4);
            let mut len = IMAGE_HEADER_LEN + SEGMENT_HEADER_LEN + seg0;
            for seg in segments {
                let padded = seg.len().next_multiple_of(4);
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
            let segment_header = |out: &mut [u8], at: &mut usize, addr: u32, len: usize| {
                out[*at..*at + 4].copy_from_slice(&addr.to_le_bytes());
                out[*at + 4..*at + 8].copy_from_slice(&(len as u32).to_le_bytes());
                *at += SEGMENT_HEADER_LEN;
            };
            segment_header(out, &mut at, self.desc_load_addr, seg0);
            for part in [&desc[..], rodata] {
                out[at..at + part.len()].copy_from_slice(part);
                xor = part.iter().fold(xor, |x, b| x ^ b);
                at += part.len();
            }
            at = at.next_multiple_of(4);
            for seg in segments {
                let padded = seg.len().next_multiple_of(4);
                segment_header(out, &mut at, seg.addr(), padded);
                if let Seg::Bytes(_, data) = seg {
                    out[at..at + data.len()].copy_from_slice(data);
                    xor = data.iter().fold(xor, |x, b| x ^ b);
                }
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

    /// Where [`TestImage::build_app`] puts things.
    struct AppLayout {
        drom: u32,
        dram: u32,
        iram: u32,
        irom: u32,
        /// Length of the padding segment's data, if there is one.
        padding: Option<usize>,
        /// Image offset of the IROM data.
        text_data: u32,
    }

    /// A segment to write: bytes, or that many zero bytes (padding).
    #[derive(Clone, Copy)]
    enum Seg<'a> {
        Bytes(u32, &'a [u8]),
        Zeros(u32, usize),
    }

    impl Seg<'_> {
        fn addr(&self) -> u32 {
            match self {
                Seg::Bytes(a, _) | Seg::Zeros(a, _) => *a,
            }
        }

        fn len(&self) -> usize {
            match self {
                Seg::Bytes(_, d) => d.len(),
                Seg::Zeros(_, n) => *n,
            }
        }
    }

    fn put(field: &mut [u8], text: &str) -> Result<(), TestImageError> {
        field
            .get_mut(..text.len())
            .ok_or(TestImageError::FieldTooLong)?
            .copy_from_slice(text.as_bytes());
        Ok(())
    }

    /// Writes an image for `chip_id` into `buf` with [`TestImage::new`]'s defaults and the
    /// given raw segments, and returns its length. See [`TestImage::build`] for the layout:
    /// the segments go where they are given, so this is a format test image; use
    /// [`TestImage::build_app`] for an app the bootloader would load.
    ///
    /// ```
    /// use cellular_ota::ota::esp_idf::image::{ChipId, ImageError, ImageValidator, Mapped, testing};
    ///
    /// let mut buf = [0u8; 512];
    /// let len = testing::build_test_image(&mut buf, 9, &[(0x4037_0000, &[1u8, 2, 3, 4][..])]).unwrap();
    /// // A valid image format, but no flash-mapped code: the bootloader would abort.
    /// let mut v = ImageValidator::new(ChipId::ESP32S3, 0x10000);
    /// v.update(&buf[..len]).unwrap_err();
    /// assert_eq!(v.finish(), Err(ImageError::MissingMapped(Mapped::Irom)));
    /// // Checked as a format only.
    /// let mut v = ImageValidator::new(ChipId::ESP32S3, 0x10000).with_memory_map(None);
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

    use super::testing::{AppParts, TestImage, TestImageError, build_test_image};
    use super::*;
    use crate::block_on;
    use crate::ota::mem_flash::MemFlash;
    use std::vec::Vec;

    const S3: ChipId = ChipId::ESP32S3;

    /// Segment 0 (DROM): header at 24, descriptor + 8 bytes of read-only data; segment 1
    /// (DRAM, 8 bytes) at 296; segment 2 (IRAM, empty) at 312; segment 3 (IROM, 300 bytes)
    /// at 320, data from 328; checksum at 639, digest 640..672.
    fn image() -> Vec<u8> {
        let code: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        let rodata = [0xA5u8; 6]; // not a multiple of 4: padded by the builder
        let data = [1u8, 2, 3, 4, 5, 6, 7, 8];
        let mut buf = std::vec![0u8; 2048];
        let parts = AppParts {
            rodata: &rodata,
            data: &data,
            iram: &[],
            text: &code,
            page_aligned_text: false,
        };
        let len = TestImage::new(S3.0).build_app(&mut buf, &parts).unwrap();
        buf.truncate(len);
        buf
    }

    const SEG1: usize = 296;
    const CHECKSUM_AT: usize = 639;
    const LEN: usize = 672;

    fn validate(bytes: &[u8]) -> Result<ImageInfo, ImageError> {
        let mut v = ImageValidator::new(S3, 0x10000);
        v.update(bytes)?;
        v.finish()
    }

    #[test]
    fn valid_image_facts() {
        let img = image();
        // 24 + (8+264) + (8+8) + 8 + (8+300) = 628; +1 -> 640 padded; +32 digest.
        assert_eq!(img.len(), LEN);
        assert_eq!(img[0], IMAGE_MAGIC);
        assert_eq!(
            &img[APP_DESC_OFFSET..APP_DESC_OFFSET + 4],
            &APP_DESC_MAGIC.to_le_bytes()
        );
        let info = validate(&img).unwrap();
        assert_eq!(info.len as usize, LEN);
        assert_eq!(info.segments, 4);
        // IROM in the page after DROM's, at its data's offset (328) in the page.
        assert_eq!(info.entry, 0x4201_0148);
        assert_eq!(info.header.chip_id, 9);
        assert_eq!(info.checksum, img[CHECKSUM_AT]);
        assert_eq!(info.sha256.unwrap()[..], img[CHECKSUM_AT + 1..]);
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
        let stored = img[CHECKSUM_AT];
        assert_eq!(
            with(CHECKSUM_AT, stored ^ 0x10),
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
        assert_eq!(with(630, 1), Err(ImageError::HashMismatch));
        // A digest byte.
        assert_eq!(with(650, img[650] ^ 1), Err(ImageError::HashMismatch));
        // App descriptor magic.
        assert_eq!(
            with(APP_DESC_OFFSET, 0x33),
            Err(ImageError::BadAppDescriptor { found: 0xABCD_5433 })
        );
        // Segment length not a multiple of 4.
        assert_eq!(
            with(SEG1 + 4, 0x09),
            Err(ImageError::BadSegmentLength { segment: 1, len: 9 })
        );
        assert_eq!(
            with(SEG1 + 7, 0x01),
            Err(ImageError::BadSegmentLength {
                segment: 1,
                len: 0x0100_0008
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
        assert_eq!(
            validate(&c),
            Err(ImageError::TrailingData { len: LEN as u32 })
        );
    }

    #[test]
    fn oversized_images_fail_early() {
        let img = image();
        // Exactly fits.
        let mut v = ImageValidator::new(S3, LEN as u32);
        v.update(&img).unwrap();
        assert!(v.finish().is_ok());
        // One byte short of room: known at the end of the last segment, before the padding.
        let mut v = ImageValidator::new(S3, LEN as u32 - 1);
        assert_eq!(
            v.update(&img),
            Err(ImageError::TooLarge {
                at_least: LEN as u64,
                max: LEN as u32 - 1
            })
        );
        assert!(v.position() < CHECKSUM_AT as u64);
        // A huge segment is rejected at its header.
        let mut c = img.clone();
        let seg1 = SEG1;
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
        let parts = AppParts {
            text: &[9; 8],
            ..AppParts::default()
        };
        let len = opts.build_app(&mut buf, &parts).unwrap();
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
        // 15 caller segments is the maximum and validates (as a format: the segments go
        // nowhere an app's would).
        let len = build_test_image(&mut buf, 9, &segs[..15]).unwrap();
        let mut v = ImageValidator::new(S3, 0x10000).with_memory_map(None);
        v.update(&buf[..len]).unwrap();
        assert_eq!(v.finish().unwrap().segments, 16);
        // build_app needs a chip with a memory map, and RAM parts that fit.
        let parts = AppParts::default();
        assert_eq!(
            TestImage::new(2).build_app(&mut buf, &parts),
            Err(TestImageError::NoMemoryMap)
        );
        let big = std::vec![0u8; 0x60000];
        let parts = AppParts {
            data: &big,
            ..AppParts::default()
        };
        assert_eq!(
            TestImage::new(9).build_app(&mut buf, &parts),
            Err(TestImageError::RamTooLarge)
        );
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
                at_least: 328 + 300 + 33,
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
        flash.as_mut_slice()[cap - 0x1000..cap - 0x1000 + 256].copy_from_slice(&img[..256]);
        flash.as_mut_slice()[cap - 0x1000 + 256..].fill(0xFF);
        // (At an address that is not 64 KiB aligned the DROM segment's page offset is wrong
        // first: the bootloader maps flash pages.)
        assert_eq!(
            validate_in_flash(&mut flash, (cap - 0x1000) as u32, 0x10000, S3, &mut buf),
            Err(FlashImageError::Image(ImageError::BadSegment {
                segment: 0,
                addr: 0x3C00_0020,
                len: 264,
                fault: SegmentFault::PageOffset(Mapped::Drom)
            }))
        );
        let mut small: MemFlash<'_, 4096, 4, 4> = MemFlash::new_erased(&mut mem[..0x10100]);
        small.as_mut_slice()[0x10000..].copy_from_slice(&img[..256]);
        assert_eq!(
            validate_in_flash(&mut small, 0x10000, 0x10000, S3, &mut buf),
            Err(FlashImageError::Image(ImageError::Truncated { len: 256 }))
        );
    }

    /// An S3 image from raw segments `(addr, len)` after the descriptor segment (DROM at
    /// `0x3C00_0020`, 256 bytes); an address of `IROM` is replaced by the IROM address at
    /// that segment's page offset in the page after DROM's.
    fn raw(segments: &[(u32, usize)]) -> Vec<u8> {
        let zeros = std::vec![0u8; 0x20000];
        let mut at = IMAGE_HEADER_LEN + SEGMENT_HEADER_LEN + APP_DESC_LEN;
        let segs: Vec<(u32, &[u8])> = segments
            .iter()
            .map(|&(addr, len)| {
                let data = at + SEGMENT_HEADER_LEN;
                at = data + len;
                let addr = if addr == IROM {
                    0x4201_0000 + (data as u32 % MMU_PAGE)
                } else {
                    addr
                };
                (addr, &zeros[..len])
            })
            .collect();
        let mut buf = std::vec![0u8; 0x30000];
        let len = TestImage::new(S3.0).build(&mut buf, &segs).unwrap();
        buf.truncate(len);
        buf
    }

    const IROM: u32 = 1;

    fn placed(segments: &[(u32, usize)]) -> Result<ImageInfo, ImageError> {
        let mut v = ImageValidator::new(S3, 0x30000);
        v.update(&raw(segments))?;
        v.finish()
    }

    fn fault(
        segment: u8,
        addr: u32,
        len: u32,
        fault: SegmentFault,
    ) -> Result<ImageInfo, ImageError> {
        Err(ImageError::BadSegment {
            segment,
            addr,
            len,
            fault,
        })
    }

    #[test]
    fn segments_go_where_the_bootloader_puts_them() {
        use SegmentFault as F;
        // A minimal app: DROM (descriptor) and IROM.
        assert!(placed(&[(IROM, 16)]).is_ok());
        // RAM segments, padding at 0, RTC memory.
        assert!(
            placed(&[
                (0x3FC8_8000, 64),
                (0x4037_0000, 64),
                (0, 4096),
                (0x600F_E000, 64),
                (0x5000_0000, 64),
                (IROM, 16)
            ])
            .is_ok()
        );
        // Up to the bootloader's RAM, and not one word into it, from either side.
        assert!(placed(&[(0x3FCD_B6F0, 16), (IROM, 16)]).is_ok());
        assert_eq!(
            placed(&[(0x3FCD_B6F0, 20), (IROM, 16)]),
            fault(1, 0x3FCD_B6F0, 20, F::BootloaderRam)
        );
        assert_eq!(
            placed(&[(0x403C_B6FC, 8), (IROM, 16)]),
            fault(1, 0x403C_B6FC, 8, F::BootloaderRam)
        );
        assert_eq!(
            placed(&[(0x3FCE_B700, 16), (IROM, 16)]),
            fault(1, 0x3FCE_B700, 16, F::BootloaderRam)
        );
        // Above the ROM stack the bootloader does not care.
        assert!(placed(&[(0x3FCE_B710, 16), (IROM, 16)]).is_ok());
        // Not RAM at all, or straddling the end of DRAM.
        assert_eq!(
            placed(&[(0x4000_0000, 16), (IROM, 16)]),
            fault(1, 0x4000_0000, 16, F::NotInRam)
        );
        assert_eq!(
            placed(&[(0x3FCF_FFF0, 32), (IROM, 16)]),
            fault(1, 0x3FCF_FFF0, 32, F::NotInRam)
        );
        // Flash-mapped segments: page offset, range end, one of each, separate MMU pages.
        let seg1_data =
            (IMAGE_HEADER_LEN + SEGMENT_HEADER_LEN + APP_DESC_LEN + SEGMENT_HEADER_LEN) as u32;
        assert_eq!(
            placed(&[(0x4201_0000, 16)]),
            fault(1, 0x4201_0000, 16, F::PageOffset(Mapped::Irom))
        );
        let near_end = 0x43FF_0000 + seg1_data;
        assert_eq!(
            placed(&[(near_end, 0x1_0000)]),
            fault(1, near_end, 0x1_0000, F::PastMappedRange(Mapped::Irom))
        );
        let second_drom = 0x3C01_0000 + seg1_data;
        assert_eq!(
            placed(&[(second_drom, 16), (IROM, 16)]),
            fault(1, second_drom, 16, F::SecondMapped(Mapped::Drom))
        );
        let same_page = 0x4200_0000 + seg1_data;
        assert_eq!(
            placed(&[(same_page, 16)]),
            fault(1, same_page, 16, F::MmuOverlap)
        );
        // Both flash-mapped ranges must be there.
        assert_eq!(
            placed(&[(0x3FC8_8000, 16)]),
            Err(ImageError::MissingMapped(Mapped::Irom))
        );
        // Without a memory map only the format is checked.
        let mut v = ImageValidator::new(S3, 0x30000).with_memory_map(None);
        v.update(&raw(&[(0x4000_0000, 16)])).unwrap();
        assert!(v.finish().is_ok());
        // A chip without a built-in map has none until one is given.
        assert_eq!(ImageValidator::new(ChipId::ESP32C6, 1).memory_map(), None);
        assert_eq!(
            ImageValidator::new(ChipId::ESP32C3, 1).memory_map(),
            Some(&MemoryMap::ESP32C3)
        );
    }

    #[test]
    fn the_flash_offset_is_part_of_the_page_rule() {
        let img = image();
        for offset in [0u32, 0x1_0000, 0x20_0000] {
            let mut v = ImageValidator::new(S3, 0x10000).at_flash_offset(offset);
            v.update(&img).unwrap();
            assert!(v.finish().is_ok());
        }
        let mut v = ImageValidator::new(S3, 0x10000).at_flash_offset(0x1000);
        assert!(matches!(
            v.update(&img),
            Err(ImageError::BadSegment {
                segment: 0,
                fault: SegmentFault::PageOffset(Mapped::Drom),
                ..
            })
        ));
    }

    #[test]
    fn revisions_are_checked_when_known() {
        let img = image();
        let with_header = |min: u16, max: u16| {
            let mut c = img.clone();
            c[15..17].copy_from_slice(&min.to_le_bytes());
            c[17..19].copy_from_slice(&max.to_le_bytes());
            c
        };
        let check = |bytes: &[u8], chip: u16, efuse: u16| {
            let mut v = ImageValidator::new(S3, 0x10000).with_revisions(Some(Revisions {
                chip,
                efuse_block: efuse,
            }));
            v.update(bytes).and_then(|()| v.finish()).map(|_| ())
        };
        // The test image: chip revisions 0..=99, eFuse block unset.
        assert_eq!(check(&img, 2, 103), Ok(()));
        assert_eq!(
            check(&img, 100, 103),
            Err(ImageError::ChipRevision {
                min: 0,
                max: 99,
                chip: 100
            })
        );
        // (The SHA-256 breaks after a header change, but the revision comes first.)
        assert_eq!(
            check(&with_header(3, 0xFFFF), 2, 0),
            Err(ImageError::ChipRevision {
                min: 3,
                max: 0xFFFF,
                chip: 2
            })
        );
        assert!(matches!(
            check(&with_header(2, 0), 2, 0),
            Err(ImageError::ChecksumMismatch { .. } | ImageError::HashMismatch)
        ));
        // The eFuse block revision range is in the descriptor (bytes 0xB0 and 0xB2).
        let mut c = img.clone();
        let at = APP_DESC_OFFSET + 0xB0;
        c[at..at + 2].copy_from_slice(&200u16.to_le_bytes());
        assert_eq!(
            check(&c, 2, 103),
            Err(ImageError::EfuseBlockRevision {
                min: 200,
                max: 0,
                chip: 103
            })
        );
        // Without revisions nothing is known about them.
        assert!(matches!(
            validate(&c),
            Err(ImageError::ChecksumMismatch { .. })
        ));
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
        fn mutated_valid_image_never_passes_unless_unchanged(pos in 0usize..LEN, val in any::<u8>()) {
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
