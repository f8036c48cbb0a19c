//! An independent model of the ESP-IDF second-stage bootloader: what boots from a flash image.
//!
//! Written from ESP-IDF's rules (master `102122904a`, v6.1-dev, 2026-07-23; the project's
//! `esp-idf-ota.md` §3.2–3.6), **without any code of `cellular_ota`**: the library's image
//! validator, otadata selection and partition parser are what this model judges, so it must
//! not share them (a test below keeps this file free of the library). Where the real
//! bootloader's behaviour depends on its build (its stack pointer, the end of its data and
//! of its loader code), the model takes the largest value those can have, so it never
//! accepts an image the real one could refuse.
//!
//! One call of [`boot_with`] is one reset:
//!
//! 1. **Partition table** at 0x8000 (`bootloader_utility_load_partition_table`,
//!    `esp_partition_table_verify`): 32-byte records with magic `AA 50`, an `EB EB` record
//!    whose MD5 must match the records before it, an all-`FF` end; app/factory, app/test,
//!    app/ota_N (`bs->ota[N]`, counted into `app_count`) and data/ota.
//! 2. **Slot choice** (`bootloader_utility_get_selected_boot_partition`): otadata must be at
//!    least two 4 KiB sectors, else the chip resets. With rollback, every PENDING_VERIFY entry
//!    becomes ABORTED first. An entry is valid if its `ota_seq` is not `0xFFFFFFFF`, its state
//!    is not INVALID (3) or ABORTED (4) and its CRC is `crc32_le(0xFFFFFFFF, ota_seq)`; the
//!    valid entry with the larger sequence selects `ota[(seq - 1) % app_count]`; with none,
//!    factory (or `ota_0` when there is no factory, remembering blank otadata for
//!    `set_actual_ota_seq`). With rollback a selected NEW entry becomes PENDING_VERIFY.
//! 3. **Loading** (`bootloader_utility_load_boot_image`): from the selected index down to
//!    factory, then up through the other OTA slots, then the test app; the first image that
//!    loads (`image_load` in `ESP_IMAGE_LOAD` mode) boots. Nothing loads: a reset loop.
//! 4. **Image checks** (`esp_image_format.c`): partition at most 16 MiB (ESP32-C3), magic
//!    `0xE9`, chip id, chip revision range (the minimum has no "unset" value; a maximum of 0
//!    or `0xFFFF` is none), at most 16 segments; per segment: length a multiple of 4 and below
//!    16 MiB (ESP32-C3), segment 0 at least 256 bytes, flash-mapped IROM/DROM segments at the
//!    same offset in a 64 KiB page of flash as their address, and every segment the
//!    bootloader copies into RAM (`should_load`: not mapped, address ≥ `0x1000_0000`) inside
//!    DRAM, IRAM or RTC memory and clear of the bootloader's stack window, data and loader
//!    code, also through the D/IRAM aliases (`verify_load_addresses`); the eFuse block
//!    revision range at bytes 0xB0/0xB2 of segment 0; the XOR checksum of the segment data;
//!    the appended SHA-256; the image inside the partition.
//! 5. **Mapping** (`unpack_load_app`, `set_cache_and_start_app`): the last DROM and the last
//!    IROM segment are mapped (earlier ones are not); an image without one, or whose mapped
//!    range leaves the bus range, makes `mmu_hal_map_region` assert: `abort()`, then the
//!    watchdog resets, and the same choice is made again — a reset loop, with no fallback.
//!
//! Not modelled: secure boot, flash encryption, anti-rollback (`secure_version`), the
//! factory-reset and test GPIOs, deep-sleep wake (RTC segments are always loaded).
//!
//! [`boot`] and [`boot_with`] also report the booted image's length and SHA-256 (of all its
//! bytes, digest included), so a test can compare them with what the updater claims and with
//! what esptool reads, without the library's code.

use md5::Md5;
use sha2::{Digest, Sha256};

/// Which app partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BootTarget {
    /// The `factory` app.
    Factory,
    /// OTA slot `n` (`ota_n`).
    Ota(u8),
    /// The `test` app.
    Test,
}

/// The image that boots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootedImage {
    /// Flash address of its partition.
    pub offset: u32,
    /// Its length: header through the appended digest.
    pub len: u32,
    /// SHA-256 of its `len` bytes (the digest included).
    pub sha256: [u8; 32],
}

/// What the bootloader did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootOutcome {
    /// The app that boots; `None` if nothing boots (a reset loop) or the partition table is
    /// unusable.
    pub target: Option<BootTarget>,
    /// Whether an app boots (`target.is_some()`).
    pub valid: bool,
    /// What happened, for people: the selection and each rejected candidate.
    pub reason: String,
    /// The partitions tried, in order, with the validation result.
    pub tried: Vec<(BootTarget, Result<(), String>)>,
    /// Whether otadata was rewritten (rollback pass or `set_actual_ota_seq`).
    pub otadata_written: bool,
    /// The booted image, when one boots.
    pub image: Option<BootedImage>,
    /// The chosen image loaded but mapping it aborted (no IROM or DROM segment, or one past
    /// its bus range): the chip resets for ever without trying another slot.
    pub aborted: bool,
}

impl BootOutcome {
    /// The booted OTA slot, if an OTA slot booted.
    pub fn slot(&self) -> Option<u8> {
        match self.target {
            Some(BootTarget::Ota(n)) => Some(n),
            _ => None,
        }
    }
}

/// The chip the bootloader runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chip {
    /// `chip_id` of its images (ESP32-S3 9, ESP32-C3 5).
    pub id: u16,
    /// Its revision, `major * 100 + minor`.
    pub revision: u16,
    /// Its eFuse block revision, `major * 100 + minor`.
    pub efuse_block_revision: u16,
}

impl Chip {
    /// An ESP32-S3 v0.2 with eFuse block revision 1.3 (a common production part).
    pub const ESP32S3: Chip = Chip {
        id: 9,
        revision: 2,
        efuse_block_revision: 103,
    };
    /// An ESP32-C3 v0.4 with eFuse block revision 1.3.
    pub const ESP32C3: Chip = Chip {
        id: 5,
        revision: 4,
        efuse_block_revision: 103,
    };

    /// The modelled chip with this id, if there is one.
    pub fn with_id(id: u16) -> Option<Chip> {
        [Chip::ESP32S3, Chip::ESP32C3]
            .into_iter()
            .find(|c| c.id == id)
    }
}

/// Options of [`boot_with`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootOptions {
    /// The chip (image header `chip_id`): ESP32-S3 is 9, ESP32-C3 is 5.
    pub chip_id: u16,
    /// `CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE` (off in espflash's bundled bootloader).
    pub rollback: bool,
    /// The chip's revision and eFuse block revision; `None`: [`Chip::ESP32S3`] /
    /// [`Chip::ESP32C3`]'s.
    pub revisions: Option<(u16, u16)>,
}

impl BootOptions {
    /// The stock bootloader (no rollback) on the modelled chip with this id.
    pub fn new(chip_id: u16) -> Self {
        BootOptions {
            chip_id,
            rollback: false,
            revisions: None,
        }
    }

    /// The same with rollback on or off.
    pub fn with_rollback(mut self, rollback: bool) -> Self {
        self.rollback = rollback;
        self
    }
}

// ---------------------------------------------------------------------------------------
// The chips' memory (soc.h, bootloader.memory.ld.in, bootloader.sections.common.ld).

/// An address range `[start, end)`.
#[derive(Clone, Copy, Debug)]
struct Span(u32, u32);

impl Span {
    fn has(&self, p: u64) -> bool {
        u64::from(self.0) <= p && p < u64::from(self.1)
    }
}

/// `bootloader_util_regions_overlap`: `e1 > s2 && e2 > s1`.
fn overlap(s1: u64, e1: u64, s2: u64, e2: u64) -> bool {
    e1 > s2 && e2 > s1
}

#[derive(Clone, Copy, Debug)]
struct Soc {
    irom: Span,
    drom: Span,
    iram: Span,
    dram: Span,
    diram_iram: Span,
    diram_dram: Span,
    rtc_iram: Span,
    rtc_dram: Span,
    rtc_slow: Option<Span>,
    /// `SOC_ROM_STACK_START`.
    rom_stack_start: u32,
    /// The lowest the bootloader's stack pointer can be while it loads: the bottom of the
    /// stack overhead above `dram_seg`.
    lowest_sp: u32,
    /// `_dram_start.._dram_end` at its largest: the whole `dram_seg`.
    dram_data: Span,
    /// `_loader_text_start.._loader_text_end` at its largest: the whole `iram_loader_seg`.
    loader_text: Span,
    /// `ESP_IMAGE_MAX_FLASH_ADDR_SIZE`.
    max_flash_addr: u64,
    /// `SOC_MMU_MAX_PADDR_PAGE_NUM * 64 KiB`: the flash the MMU can reach.
    mmu_flash: u64,
}

const PAGE: u32 = 0x1_0000;

fn soc(chip_id: u16) -> Option<Soc> {
    match chip_id {
        9 => Some(Soc {
            irom: Span(0x4200_0000, 0x4400_0000),
            drom: Span(0x3C00_0000, 0x3E00_0000),
            iram: Span(0x4037_0000, 0x403E_0000),
            dram: Span(0x3FC8_8000, 0x3FD0_0000),
            diram_iram: Span(0x4037_8000, 0x403E_0000),
            diram_dram: Span(0x3FC8_8000, 0x3FCF_0000),
            rtc_iram: Span(0x600F_E000, 0x6010_0000),
            rtc_dram: Span(0x600F_E000, 0x6010_0000),
            rtc_slow: Some(Span(0x5000_0000, 0x5000_2000)),
            rom_stack_start: 0x3FCE_B710,
            // usable end 0x3FCE9700 - stack overhead 0x2000 = dram_seg end.
            lowest_sp: 0x3FCE_7700,
            dram_data: Span(0x3FCE_2700, 0x3FCE_7700),
            loader_text: Span(0x403C_B700, 0x403D_2700),
            max_flash_addr: u64::from(u32::MAX),
            mmu_flash: 16384 * u64::from(PAGE),
        }),
        5 => Some(Soc {
            irom: Span(0x4200_0000, 0x4280_0000),
            drom: Span(0x3C00_0000, 0x3C80_0000),
            iram: Span(0x4037_C000, 0x403E_0000),
            dram: Span(0x3FC8_0000, 0x3FCE_0000),
            diram_iram: Span(0x4038_0000, 0x403E_0000),
            diram_dram: Span(0x3FC8_0000, 0x3FCE_0000),
            rtc_iram: Span(0x5000_0000, 0x5000_2000),
            rtc_dram: Span(0x5000_0000, 0x5000_2000),
            rtc_slow: None,
            rom_stack_start: 0x3FCD_E710,
            lowest_sp: 0x3FCD_A710,
            dram_data: Span(0x3FCD_5710, 0x3FCD_A710),
            loader_text: Span(0x403C_E710, 0x403D_5710),
            max_flash_addr: 0x100_0000,
            mmu_flash: 256 * u64::from(PAGE),
        }),
        _ => None,
    }
}

/// `STACK_LOAD_HEADROOM`.
const STACK_HEADROOM: u64 = 32768;

impl Soc {
    fn is_drom(&self, a: u32) -> bool {
        self.drom.has(u64::from(a))
    }

    fn is_irom(&self, a: u32) -> bool {
        self.irom.has(u64::from(a))
    }

    /// `should_map`.
    fn should_map(&self, a: u32) -> bool {
        self.is_irom(a) || self.is_drom(a)
    }

    /// `should_load` on a reset that is not a deep-sleep wake.
    fn should_load(&self, a: u32) -> bool {
        !self.should_map(a) && a >= 0x1000_0000
    }

    fn dram_to_iram(&self, p: u64) -> u64 {
        u64::from(self.diram_iram.0) + (p - u64::from(self.diram_dram.0))
    }

    fn iram_to_dram(&self, p: u64) -> u64 {
        u64::from(self.diram_dram.0) + (p - u64::from(self.diram_iram.0))
    }

    /// `verify_load_addresses`: `None` if fine, else why not.
    fn load_problem(&self, a: u64, e: u64, no_recurse: bool) -> Option<&'static str> {
        if e == a {
            return None;
        }
        let last = e - 1;
        if self.dram.has(a) && self.dram.has(last) {
            let sp = u64::from(self.lowest_sp);
            if overlap(sp - STACK_HEADROOM, u64::from(self.rom_stack_start), a, e) {
                return Some("overlaps bootloader stack");
            }
            if overlap(
                u64::from(self.dram_data.0),
                u64::from(self.dram_data.1),
                a,
                e,
            ) {
                return Some("overlaps bootloader data");
            }
            let d = self.diram_dram;
            if !no_recurse && overlap(u64::from(d.0), u64::from(d.1), a, e) {
                let ia = self.dram_to_iram(if d.has(a) { a } else { u64::from(d.0) });
                let ie = self.dram_to_iram(if d.has(last) { e } else { u64::from(d.1) });
                return self.load_problem(ia.min(ie), ia.max(ie), true);
            }
            None
        } else if self.iram.has(a) && self.iram.has(last) {
            let l = self.loader_text;
            if overlap(u64::from(l.0), u64::from(l.1), a, e) {
                return Some("overlaps loader IRAM");
            }
            let d = self.diram_iram;
            if !no_recurse && overlap(u64::from(d.0), u64::from(d.1), a, e) {
                let da = self.iram_to_dram(if d.has(a) { a } else { u64::from(d.0) });
                let de = self.iram_to_dram(if d.has(last) { e } else { u64::from(d.1) });
                return self.load_problem(da.min(de), da.max(de), true);
            }
            None
        } else if (self.rtc_iram.has(a) && self.rtc_iram.has(last))
            || (self.rtc_dram.has(a) && self.rtc_dram.has(last))
            || self.rtc_slow.is_some_and(|s| s.has(a) && s.has(last))
        {
            None
        } else {
            Some("bad load address range")
        }
    }
}

// ---------------------------------------------------------------------------------------
// Reading the flash image.

fn bytes(flash: &[u8], at: u64, len: usize) -> Result<&[u8], String> {
    let start = usize::try_from(at).map_err(|_| "flash address out of range".to_string())?;
    flash
        .get(start..start.saturating_add(len))
        .ok_or_else(|| format!("flash read of {len} bytes at 0x{at:x} fails"))
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// `IS_FIELD_SET`.
fn is_set(v: u16) -> bool {
    v != 0 && v != 0xFFFF
}

/// A partition as the bootloader keeps it (`esp_partition_pos_t`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Part {
    offset: u32,
    size: u32,
}

/// What `image_load` found.
struct Loaded {
    len: u32,
    /// `(load_addr, data_len, flash address of the data)` of each segment.
    segments: Vec<(u32, u32, u64)>,
}

/// `image_load(ESP_IMAGE_LOAD, part)`.
fn image_load(flash: &[u8], part: Part, soc: &Soc, chip: &Chip) -> Result<Loaded, String> {
    if u64::from(part.size) > soc.max_flash_addr {
        return Err(format!(
            "partition size 0x{:x} larger than 16 MiB",
            part.size
        ));
    }
    let start = u64::from(part.offset);
    let h = bytes(flash, start, 24)?;
    if h[0] != 0xE9 {
        return Err(format!("invalid magic byte 0x{:02x}", h[0]));
    }
    let chip_id = u16_at(h, 12);
    if chip_id != chip.id {
        return Err(format!(
            "mismatch chip ID, expected {}, found {chip_id}",
            chip.id
        ));
    }
    let (min_rev, max_rev) = (u16_at(h, 15), u16_at(h, 17));
    if chip.revision < min_rev {
        return Err(format!(
            "image needs chip revision >= {min_rev}, chip is {}",
            chip.revision
        ));
    }
    if is_set(max_rev) && chip.revision > max_rev {
        return Err(format!(
            "image needs chip revision <= {max_rev}, chip is {}",
            chip.revision
        ));
    }
    let count = h[1];
    if count > 16 {
        return Err(format!("segment count {count} exceeds max 16"));
    }
    let hash_appended = h[23] != 0;
    let mut sha = Sha256::new();
    sha.update(h);
    let mut checksum: u32 = 0xEF;
    let mut next = start + 24;
    let mut segments = Vec::new();
    for index in 0..count {
        let sh = bytes(flash, next, 8)?;
        sha.update(sh);
        let load = u32_at(sh, 0);
        let len = u32_at(sh, 4);
        let data_at = next + 8;
        // verify_segment_header
        if !len.is_multiple_of(4) || u64::from(len) >= soc.max_flash_addr {
            return Err(format!("invalid segment length 0x{len:x}"));
        }
        if index == 0 && len < 256 {
            return Err(format!(
                "segment 0 is {len} bytes, too short for app description"
            ));
        }
        if soc.should_map(load) && data_at % u64::from(PAGE) != u64::from(load % PAGE) {
            return Err(format!(
                "segment {index} load address 0x{load:08x}, doesn't match data 0x{data_at:08x}"
            ));
        }
        if soc.should_load(load) && len > 0 {
            let a = u64::from(load);
            if let Some(why) = soc.load_problem(a, a + u64::from(len), false) {
                return Err(format!(
                    "segment {index} 0x{load:08x}-0x{:08x} invalid: {why}",
                    a + u64::from(len)
                ));
            }
        }
        let data = bytes(flash, data_at, len as usize)?;
        if index == 0 && data.len() >= 0xB4 {
            let (min, max) = (u16_at(data, 0xB0), u16_at(data, 0xB2));
            let rev = chip.efuse_block_revision;
            if (is_set(min) && rev < min) || (is_set(max) && rev > max) {
                return Err(format!(
                    "image needs eFuse block revision {min}..={max}, chip has {rev}"
                ));
            }
        }
        for w in data.chunks_exact(4) {
            checksum ^= u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        }
        sha.update(data);
        segments.push((load, len, data_at));
        next = data_at + u64::from(len);
    }
    // process_checksum
    let unpadded = next - start;
    let pad = (unpadded + 1).div_ceil(16) * 16 - unpadded;
    let tail = bytes(flash, next, pad as usize)?;
    let read = tail[tail.len() - 1];
    let calc =
        (checksum >> 24) as u8 ^ (checksum >> 16) as u8 ^ (checksum >> 8) as u8 ^ checksum as u8;
    if calc != read {
        return Err(format!(
            "checksum failed, calculated 0x{calc:02x} read 0x{read:02x}"
        ));
    }
    sha.update(tail);
    let mut len = unpadded + pad;
    // process_appended_hash_and_sig
    if hash_appended {
        let stored = bytes(flash, start + len, 32)?;
        len += 32;
        if len > u64::from(part.size) {
            return Err(format!(
                "image length {len} doesn't fit in partition length {}",
                part.size
            ));
        }
        let digest: [u8; 32] = sha.finalize().into();
        if digest[..] != stored[..] {
            return Err("image hash failed, image is corrupt".into());
        }
    } else if len > u64::from(part.size) {
        return Err(format!(
            "image length {len} doesn't fit in partition length {}",
            part.size
        ));
    }
    Ok(Loaded {
        len: len as u32,
        segments,
    })
}

/// `unpack_load_app` + `set_cache_and_start_app`: `Err` where `mmu_hal_map_region`'s
/// assertions make the bootloader abort.
fn map_app(loaded: &Loaded, soc: &Soc) -> Result<(), String> {
    let last = |f: &dyn Fn(u32) -> bool| loaded.segments.iter().rev().find(|s| f(s.0)).copied();
    let drom = last(&|a| soc.is_drom(a));
    let irom = last(&|a| soc.is_irom(a));
    for (name, seg, bus) in [("DROM", drom, soc.drom), ("IROM", irom, soc.irom)] {
        let Some((vaddr, len, paddr)) = seg else {
            return Err(format!("no {name} segment: mmu_hal_map_region asserts"));
        };
        let map_len = u64::from(vaddr & (PAGE - 1)) + u64::from(len);
        let v0 = u64::from(vaddr & !(PAGE - 1));
        let p0 = paddr & !u64::from(PAGE - 1);
        if map_len == 0 || !bus.has(v0) || !bus.has(v0 + map_len - 1) {
            return Err(format!("{name} mapping leaves its bus range: assert"));
        }
        if p0 + map_len > soc.mmu_flash {
            return Err(format!(
                "{name} mapping past the flash the MMU reaches: assert"
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Partition table and otadata.

struct Table {
    factory: Option<Part>,
    test: Option<Part>,
    ota: [Part; 16],
    app_count: u32,
    otadata: Option<Part>,
}

/// `bootloader_utility_load_partition_table` with `esp_partition_table_verify`.
fn load_table(flash: &[u8]) -> Result<Table, String> {
    let raw = bytes(flash, 0x8000, 0xC00)?;
    let mut t = Table {
        factory: None,
        test: None,
        ota: [Part::default(); 16],
        app_count: 0,
        otadata: None,
    };
    for (i, e) in raw.chunks_exact(32).enumerate() {
        let magic = u16_at(e, 0);
        match magic {
            0x50AA => {}
            0xEBEB => {
                let digest: [u8; 16] = Md5::digest(&raw[..i * 32]).into();
                if digest[..] != e[16..32] {
                    return Err("partition table MD5 does not match".into());
                }
                break;
            }
            0xFFFF => break,
            other => return Err(format!("partition {i} invalid magic 0x{other:04x}")),
        }
        let (ptype, subtype) = (e[2], e[3]);
        let part = Part {
            offset: u32_at(e, 4),
            size: u32_at(e, 8),
        };
        match (ptype, subtype) {
            (0x00, 0x00) => t.factory = Some(part),
            (0x00, 0x20) => t.test = Some(part),
            (0x00, 0x10..=0x1F) => {
                t.ota[usize::from(subtype & 0x0F)] = part;
                t.app_count += 1;
            }
            (0x01, 0x00) => t.otadata = Some(part),
            _ => {}
        }
    }
    // CONFIG_PARTITION_TABLE_MD5 (default y) checks the MD5 record if there is one
    // (gen_esp32part and espflash always write it); a table without one is accepted.
    Ok(t)
}

/// `esp_rom_crc32_le(UINT32_MAX, ..)`: reflected CRC-32, register from 0, result inverted.
fn ota_crc(seq: u32) -> u32 {
    let mut c: u32 = 0;
    for b in seq.to_le_bytes() {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    seq: u32,
    state: u32,
    crc: u32,
}

const PENDING_VERIFY: u32 = 1;
const VALID: u32 = 2;
const INVALID: u32 = 3;
const ABORTED: u32 = 4;
const NEW: u32 = 0;

impl Entry {
    fn read(flash: &[u8], at: u64) -> Entry {
        match bytes(flash, at, 32) {
            Ok(b) => Entry {
                seq: u32_at(b, 0),
                state: u32_at(b, 24),
                crc: u32_at(b, 28),
            },
            Err(_) => Entry {
                seq: u32::MAX,
                state: u32::MAX,
                crc: u32::MAX,
            },
        }
    }

    /// `bootloader_common_ota_select_invalid`.
    fn invalid(&self) -> bool {
        self.seq == u32::MAX || self.state == INVALID || self.state == ABORTED
    }

    /// `bootloader_common_ota_select_valid`.
    fn valid(&self) -> bool {
        !self.invalid() && self.crc == ota_crc(self.seq)
    }

    /// `write_otadata`: erase the entry's sector, write the 32 bytes.
    fn write(&self, flash: &mut [u8], at: u64) {
        let at = at as usize;
        let end = (at + 0x1000).min(flash.len());
        if let Some(sector) = flash.get_mut(at..end) {
            sector.fill(0xFF);
            if sector.len() >= 32 {
                sector[0..4].copy_from_slice(&self.seq.to_le_bytes());
                sector[24..28].copy_from_slice(&self.state.to_le_bytes());
                sector[28..32].copy_from_slice(&self.crc.to_le_bytes());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// One reset.

/// What the stock bootloader (rollback off) boots from this flash image, without changing
/// it.
pub fn boot(flash_image: &[u8], chip_id: u16) -> BootOutcome {
    let mut copy = flash_image.to_vec();
    boot_with(&mut copy, BootOptions::new(chip_id))
}

/// One boot of the bootloader on `flash_image`, which it may rewrite (otadata) as the real
/// one would.
pub fn boot_with(flash_image: &mut [u8], opts: BootOptions) -> BootOutcome {
    let mut out = BootOutcome {
        target: None,
        valid: false,
        reason: String::new(),
        tried: Vec::new(),
        otadata_written: false,
        image: None,
        aborted: false,
    };
    let (Some(soc), Some(mut chip)) = (soc(opts.chip_id), Chip::with_id(opts.chip_id)) else {
        out.reason = format!("chip id {} is not modelled", opts.chip_id);
        return out;
    };
    if let Some((revision, efuse)) = opts.revisions {
        chip.revision = revision;
        chip.efuse_block_revision = efuse;
    }
    let table = match load_table(flash_image) {
        Ok(t) => t,
        Err(e) => {
            out.reason = format!("partition table unusable: {e}");
            return out;
        }
    };
    // -1 = factory, -2 = test, 0.. = OTA slot.
    let mut start: i32 = -1;
    let mut initial_contents = false;
    match table.otadata {
        None => out.reason.push_str("no otadata partition: factory; "),
        Some(od) if od.size < 0x2000 => {
            out.reason = "otadata smaller than two sectors: reset".into();
            return out;
        }
        Some(od) => {
            let at = [u64::from(od.offset), u64::from(od.offset) + 0x1000];
            let mut e = [
                Entry::read(flash_image, at[0]),
                Entry::read(flash_image, at[1]),
            ];
            if opts.rollback {
                for (i, entry) in e.iter_mut().enumerate() {
                    if entry.state == PENDING_VERIFY {
                        entry.state = ABORTED;
                        entry.write(flash_image, at[i]);
                        out.otadata_written = true;
                    }
                }
            }
            if (e[0].invalid() && e[1].invalid()) || table.app_count == 0 {
                if table.factory.is_some() {
                    out.reason.push_str("otadata empty: factory; ");
                } else {
                    start = 0;
                    out.reason.push_str("otadata empty, no factory: ota_0; ");
                    let blank = |x: &Entry| x.seq == u32::MAX || x.crc != ota_crc(x.seq);
                    initial_contents = blank(&e[0]) && blank(&e[1]);
                }
            } else {
                let active = match (e[0].valid(), e[1].valid()) {
                    (true, true) => Some(if e[1].seq > e[0].seq { 1 } else { 0 }),
                    (true, false) => Some(0),
                    (false, true) => Some(1),
                    (false, false) => None,
                };
                match active {
                    Some(i) => {
                        start = ((e[i].seq - 1) % table.app_count) as i32;
                        out.reason.push_str(&format!(
                            "otadata[{i}] seq {} selects ota_{start}; ",
                            e[i].seq
                        ));
                        if opts.rollback && e[i].state == NEW {
                            e[i].state = PENDING_VERIFY;
                            e[i].write(flash_image, at[i]);
                            out.otadata_written = true;
                        }
                    }
                    None => out.reason.push_str("otadata invalid (CRC): factory; "),
                }
            }
        }
    }
    let part_of = |i: i32| -> (BootTarget, Part) {
        match i {
            -1 => (BootTarget::Factory, table.factory.unwrap_or_default()),
            -2 => (BootTarget::Test, table.test.unwrap_or_default()),
            n if (n as u32) < table.app_count => (BootTarget::Ota(n as u8), table.ota[n as usize]),
            n => (BootTarget::Ota(n as u8), Part::default()),
        }
    };
    let mut order: Vec<i32> = (-1..=start).rev().collect();
    order.extend(start + 1..table.app_count as i32);
    order.push(-2);
    for i in order {
        let (target, part) = part_of(i);
        if part.size == 0 {
            continue;
        }
        let r = image_load(flash_image, part, &soc, &chip);
        match r {
            Err(e) => {
                out.reason
                    .push_str(&format!("{target:?} not bootable ({e}); "));
                out.tried.push((target, Err(e)));
            }
            Ok(loaded) => {
                out.tried.push((target, Ok(())));
                if let Err(e) = map_app(&loaded, &soc) {
                    out.aborted = true;
                    out.reason
                        .push_str(&format!("{target:?} loads, then abort(): {e}; reset loop"));
                    return out;
                }
                if let (BootTarget::Ota(slot), true, true, Some(od)) =
                    (target, initial_contents, opts.rollback, table.otadata)
                {
                    // set_actual_ota_seq: entry 0 := slot + 1, VALID.
                    let seq = u32::from(slot) + 1;
                    let e = Entry {
                        seq,
                        state: VALID,
                        crc: ota_crc(seq),
                    };
                    e.write(flash_image, u64::from(od.offset));
                    out.otadata_written = true;
                }
                let img =
                    bytes(flash_image, u64::from(part.offset), loaded.len as usize).unwrap_or(&[]);
                out.image = Some(BootedImage {
                    offset: part.offset,
                    len: loaded.len,
                    sha256: Sha256::digest(img).into(),
                });
                out.reason.push_str(&format!("boots {target:?}"));
                out.target = Some(target);
                out.valid = true;
                return out;
            }
        }
    }
    out.reason.push_str("no bootable app: reset loop");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_judge_does_not_use_the_library() {
        // The model must stay independent of the code it judges.
        let source = include_str!("boot.rs");
        let crate_name = ["cellular", "_ota::"].concat();
        assert!(!source.contains(&crate_name));
    }

    #[test]
    fn crc_vectors() {
        // esp-idf-ota.md §3.3.
        assert_eq!(ota_crc(1), 0x4743_989A);
        assert_eq!(ota_crc(2), 0x55F6_3774);
        assert_eq!(ota_crc(3), 0xED4A_5011);
    }

    #[test]
    fn bootloader_ram_is_refused_through_both_aliases() {
        let s3 = soc(9).unwrap();
        // DRAM just below the protected range is fine, the first byte in it is not.
        assert_eq!(s3.load_problem(0x3FCD_A700, 0x3FCD_B700, false), None);
        assert!(s3.load_problem(0x3FCD_A700, 0x3FCD_B704, false).is_some());
        // Its IRAM alias (the loader code itself).
        assert_eq!(
            s3.load_problem(0x403C_B700, 0x403C_B800, false),
            Some("overlaps loader IRAM")
        );
        // The stack window, seen from IRAM.
        assert_eq!(
            s3.load_problem(0x403D_9000, 0x403D_A000, false),
            Some("overlaps bootloader stack")
        );
        // Nothing RAM about flash addresses.
        assert_eq!(
            s3.load_problem(0x4000_0000, 0x4000_0100, false),
            Some("bad load address range")
        );
        let c3 = soc(5).unwrap();
        assert_eq!(c3.load_problem(0x3FC8_0000, 0x3FCC_E710, false), None);
        assert!(c3.load_problem(0x3FC8_0000, 0x3FCC_E714, false).is_some());
    }
}
