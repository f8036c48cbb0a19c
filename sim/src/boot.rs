//! A model of the ESP-IDF second-stage bootloader's slot choice (`esp-idf-ota.md` §3.4–3.6),
//! and a builder for whole flash images to start tests from.
//!
//! [`boot`] reads the partition table at 0x8000, the two otadata entries, picks the slot as
//! `bootloader_utility_get_selected_boot_partition` does, validates that slot's app image
//! (magic, chip id, segments, checksum, SHA-256, length ≤ slot) and on failure falls back as
//! `bootloader_utility_load_boot_image` does: counting **down** to the factory app, then
//! **up** through the remaining OTA slots, then the test app; if nothing is bootable the
//! chip would reset for ever ([`BootOutcome::target`] is `None`).
//!
//! [`boot_with`] can also apply the rollback pass (`CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE`):
//! PENDING_VERIFY → ABORTED, then a selected NEW → PENDING_VERIFY, written back into the
//! image; and, with no factory app and no usable otadata, `set_actual_ota_seq` (entry 0 :=
//! `seq = slot + 1`, VALID) after booting an OTA slot. Not modelled: anti-rollback
//! (`secure_version`), secure boot, flash encryption, the chip-revision check.

use cellular_ota::ota::esp_idf::image::{ChipId, testing::TestImage, validate_in_flash};
use cellular_ota::ota::esp_idf::otadata::{
    OTA_SELECT_ENTRY_LEN, OTADATA_SECTOR_SIZE, OtaImageState, OtaSelectEntry, bootloader_pass,
    select_entry,
};
use cellular_ota::ota::esp_idf::partition::{
    self, AppSubType, DataSubType, PARTITION_TABLE_MAX_LEN, PARTITION_TABLE_OFFSET, PartitionEntry,
    PartitionTable, PartitionType,
};
use embedded_storage::nor_flash::{ErrorType, NorFlashErrorKind, ReadNorFlash};

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

/// What the bootloader did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootOutcome {
    /// The app that boots; `None` if no partition holds a valid image (the chip resets in a
    /// loop) or the partition table is unusable.
    pub target: Option<BootTarget>,
    /// Whether an app boots (`target.is_some()`).
    pub valid: bool,
    /// What happened, for people: the selection and each rejected candidate.
    pub reason: String,
    /// The partitions tried, in order, with the validation result.
    pub tried: Vec<(BootTarget, Result<(), String>)>,
    /// Whether otadata was rewritten (rollback pass or `set_actual_ota_seq`).
    pub otadata_written: bool,
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

/// Options of [`boot_with`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootOptions {
    /// The chip (image header `chip_id`): ESP32-S3 is 9.
    pub chip_id: u16,
    /// `CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE` (off in espflash's bundled bootloader).
    pub rollback: bool,
}

/// A read-only flash over a slice, for the image validator.
struct SliceFlash<'a>(&'a [u8]);

#[derive(Debug)]
struct OutOfBounds;

impl embedded_storage::nor_flash::NorFlashError for OutOfBounds {
    fn kind(&self) -> NorFlashErrorKind {
        NorFlashErrorKind::OutOfBounds
    }
}

impl ErrorType for SliceFlash<'_> {
    type Error = OutOfBounds;
}

impl ReadNorFlash for SliceFlash<'_> {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), OutOfBounds> {
        let start = offset as usize;
        let src = self.0.get(start..start + bytes.len()).ok_or(OutOfBounds)?;
        bytes.copy_from_slice(src);
        Ok(())
    }
    fn capacity(&self) -> usize {
        self.0.len()
    }
}

fn validate(image: &[u8], part: &PartitionEntry, chip: u16) -> Result<(), String> {
    let mut buf = [0u8; 4096];
    validate_in_flash(
        &mut SliceFlash(image),
        part.offset,
        part.size,
        ChipId(chip),
        &mut buf,
    )
    .map(|_| ())
    .map_err(|e| format!("{e:?}"))
}

fn read_entry(image: &[u8], at: usize) -> OtaSelectEntry {
    let mut b = [0xFFu8; OTA_SELECT_ENTRY_LEN];
    if let Some(src) = image.get(at..at + OTA_SELECT_ENTRY_LEN) {
        b.copy_from_slice(src);
    }
    OtaSelectEntry::decode(&b)
}

fn write_entry(image: &mut [u8], at: usize, e: &OtaSelectEntry) {
    // ESP-IDF erases the entry's sector, then writes the 32-byte struct.
    let end = (at + OTADATA_SECTOR_SIZE as usize).min(image.len());
    if let Some(sector) = image.get_mut(at..end) {
        sector.fill(0xFF);
        if let Some(dst) = sector.get_mut(..OTA_SELECT_ENTRY_LEN) {
            dst.copy_from_slice(&e.encode());
        }
    }
}

/// What the stock bootloader (rollback off) boots from this flash image, without changing
/// it.
pub fn boot(flash_image: &[u8], chip_id: u16) -> BootOutcome {
    let mut copy = flash_image.to_vec();
    boot_with(
        &mut copy,
        BootOptions {
            chip_id,
            rollback: false,
        },
    )
}

fn partition_of(table: &PartitionTable, t: BootTarget) -> Option<PartitionEntry> {
    match t {
        BootTarget::Factory => table.factory().copied(),
        BootTarget::Ota(n) => table.ota_slot(n).copied(),
        BootTarget::Test => table.find(PartitionType::App(AppSubType::Test)).copied(),
    }
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
    };
    let start = PARTITION_TABLE_OFFSET as usize;
    let table = match flash_image
        .get(start..start + PARTITION_TABLE_MAX_LEN)
        .ok_or_else(|| "flash smaller than the partition table offset".to_string())
        .and_then(|b| PartitionTable::parse(b).map_err(|e| format!("{e:?}")))
        .and_then(|t| {
            t.check_fits(flash_image.len())
                .map(|_| t)
                .map_err(|e| format!("{e:?}"))
        }) {
        Ok(t) => t,
        Err(e) => {
            out.reason = format!("partition table unusable: {e}");
            return out;
        }
    };
    let count = table.ota_count();
    let has_factory = table.factory().is_some();
    // `start_index` of ESP-IDF: -1 = factory, 0.. = OTA slot.
    let mut start_index: i32 = -1;
    let mut initial_contents = false;
    let otadata = table.otadata().copied();
    if let Some(od) = otadata.filter(|_| count > 0) {
        let at0 = od.offset as usize;
        let at1 = at0 + OTADATA_SECTOR_SIZE as usize;
        let mut entries = [read_entry(flash_image, at0), read_entry(flash_image, at1)];
        if opts.rollback {
            let before = entries;
            let pass = bootloader_pass(&mut entries, count, true);
            for (i, at) in [at0, at1].into_iter().enumerate() {
                if pass.rewritten[i] && entries[i] != before[i] {
                    write_entry(flash_image, at, &entries[i]);
                    out.otadata_written = true;
                }
            }
        }
        if entries[0].is_invalid() && entries[1].is_invalid() {
            if has_factory {
                out.reason.push_str("otadata empty: factory; ");
            } else {
                start_index = 0;
                out.reason.push_str("otadata empty, no factory: ota_0; ");
                let bad = |e: &OtaSelectEntry| e.seq == u32::MAX || !e.crc_matches();
                initial_contents = bad(&entries[0]) && bad(&entries[1]);
            }
        } else {
            match select_entry(&entries[0], &entries[1]) {
                Some(i) => {
                    let seq = entries[i].seq;
                    start_index = (seq.wrapping_sub(1) % u32::from(count)) as i32;
                    out.reason.push_str(&format!(
                        "otadata[{i}] seq {seq} selects ota_{start_index}; "
                    ));
                }
                None => out.reason.push_str("otadata invalid (CRC): factory; "),
            }
        }
    } else if count > 0 && otadata.is_none() {
        out.reason.push_str("no otadata partition: factory; ");
    } else {
        out.reason.push_str("no OTA slots: factory; ");
    }
    // With no factory app, index -1 has no partition: the downward loop skips it, as
    // ESP-IDF's `index_to_partition` gives a zero-sized partition.
    let try_one = |t: BootTarget, img: &[u8], out: &mut BootOutcome| -> bool {
        let Some(p) = partition_of(&table, t) else {
            return false;
        };
        let r = validate(img, &p, opts.chip_id);
        let ok = r.is_ok();
        if let Err(e) = &r {
            out.reason.push_str(&format!("{t:?} invalid ({e}); "));
        }
        out.tried.push((t, r));
        ok
    };
    let to_target = |i: i32| {
        if i < 0 {
            BootTarget::Factory
        } else {
            BootTarget::Ota(i as u8)
        }
    };
    let mut booted = None;
    let mut i = start_index;
    while i >= -1 {
        if try_one(to_target(i), flash_image, &mut out) {
            booted = Some(i);
            break;
        }
        i -= 1;
    }
    if booted.is_none() {
        let mut i = start_index + 1;
        while i < i32::from(count) {
            if try_one(to_target(i), flash_image, &mut out) {
                booted = Some(i);
                break;
            }
            i += 1;
        }
    }
    let target = match booted {
        Some(i) => Some(to_target(i)),
        None => {
            if try_one(BootTarget::Test, flash_image, &mut out) {
                Some(BootTarget::Test)
            } else {
                None
            }
        }
    };
    if let (Some(BootTarget::Ota(slot)), true, true, Some(od)) =
        (target, initial_contents, opts.rollback, otadata)
    {
        // set_actual_ota_seq: no factory and otadata blank → entry 0 := slot + 1, VALID.
        let e = OtaSelectEntry::new(u32::from(slot) + 1, OtaImageState::Valid);
        write_entry(flash_image, od.offset as usize, &e);
        out.otadata_written = true;
    }
    match target {
        Some(t) => out.reason.push_str(&format!("boots {t:?}")),
        None => out.reason.push_str("no bootable app: reset loop"),
    }
    out.valid = target.is_some();
    out.target = target;
    out
}

/// Layout of [`build_chip_image`] for a 4 MiB flash (offsets in bytes).
pub mod layout {
    /// `nvs` (data/nvs).
    pub const NVS: (u32, u32) = (0x9000, 0x4000);
    /// `otadata` (data/ota), two 4 KiB sectors.
    pub const OTADATA: (u32, u32) = (0xD000, 0x2000);
    /// `phy_init` (data/phy).
    pub const PHY: (u32, u32) = (0xF000, 0x1000);
    /// `ota_0` (app/ota_0).
    pub const OTA_0: (u32, u32) = (0x10000, 0x1F0000);
    /// `ota_1` (app/ota_1).
    pub const OTA_1: (u32, u32) = (0x200000, 0x1F0000);
}

/// A valid ESP app image for `chip_id` with this version string and about `size` bytes of
/// code (deterministic filler), built with
/// [`cellular_ota::ota::esp_idf::image::testing::TestImage`].
pub fn test_app_image(chip_id: u16, version: &str, size: usize) -> Vec<u8> {
    let mut code = vec![0u8; size.next_multiple_of(4)];
    let mut x: u32 = 0x9E37_79B9 ^ size as u32;
    for b in &mut code {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    let mut img = TestImage::new(chip_id);
    img.version = version;
    let mut buf = vec![0u8; code.len() + 1024];
    match img.build(&mut buf, &[(0x4037_0000, &code[..])]) {
        Ok(n) => {
            buf.truncate(n);
            buf
        }
        Err(_) => Vec::new(),
    }
}

/// A whole 4 MiB flash image: partition table (nvs, otadata, phy_init, ota_0, ota_1; see
/// [`layout`]) with its MD5 record, `app` in `ota_0` (or a 64 KiB [`test_app_image`]
/// version `"1.0.0"` when `None`), and otadata selecting `ota_0` (entry 0: seq 1, state
/// UNDEFINED, as an app built without rollback writes it). Everything else is `0xFF`.
pub fn build_chip_image(chip_id: u16, app: Option<&[u8]>) -> Vec<u8> {
    let mut img = vec![0xFFu8; 4 << 20];
    let entries: Vec<PartitionEntry> = [
        (PartitionType::Data(DataSubType::Nvs), layout::NVS, "nvs"),
        (
            PartitionType::Data(DataSubType::Ota),
            layout::OTADATA,
            "otadata",
        ),
        (
            PartitionType::Data(DataSubType::Phy),
            layout::PHY,
            "phy_init",
        ),
        (
            PartitionType::App(AppSubType::Ota(0)),
            layout::OTA_0,
            "ota_0",
        ),
        (
            PartitionType::App(AppSubType::Ota(1)),
            layout::OTA_1,
            "ota_1",
        ),
    ]
    .into_iter()
    .filter_map(|(k, (off, size), label)| PartitionEntry::new(k, off, size, label))
    .collect();
    let mut table = [0xFFu8; PARTITION_TABLE_MAX_LEN];
    if partition::encode(&entries, &mut table, true).is_ok() {
        let at = PARTITION_TABLE_OFFSET as usize;
        img[at..at + table.len()].copy_from_slice(&table);
    }
    let default_app;
    let app = match app {
        Some(a) => a,
        None => {
            default_app = test_app_image(chip_id, "1.0.0", 64 * 1024);
            &default_app
        }
    };
    let (off, size) = layout::OTA_0;
    let n = app.len().min(size as usize);
    img[off as usize..off as usize + n].copy_from_slice(&app[..n]);
    write_entry(
        &mut img,
        layout::OTADATA.0 as usize,
        &OtaSelectEntry::new(1, OtaImageState::Undefined),
    );
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    const S3: u16 = 9;

    #[test]
    fn default_image_boots_ota_0() {
        let img = build_chip_image(S3, None);
        let o = boot(&img, S3);
        assert_eq!(o.target, Some(BootTarget::Ota(0)), "{}", o.reason);
        assert!(o.valid);
        // Wrong chip: nothing boots.
        let o = boot(&img, 5);
        assert_eq!(o.target, None);
    }
}
