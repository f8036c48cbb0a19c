//! Whole flash images and app images to start tests from: a partition table, otadata and
//! apps laid out the way the ESP toolchains lay them out.
//!
//! These builders use the library's encoders (partition table, otadata entry, app image);
//! what boots from their output is judged by [`crate::boot`](mod@crate::boot), which does
//! not.

use cellular_ota::ota::esp_idf::image::testing::{AppParts, TestImage};
use cellular_ota::ota::esp_idf::otadata::{OTADATA_SECTOR_SIZE, OtaImageState, OtaSelectEntry};
use cellular_ota::ota::esp_idf::partition::{
    self, AppSubType, DataSubType, PARTITION_TABLE_MAX_LEN, PARTITION_TABLE_OFFSET, PartitionEntry,
    PartitionType,
};

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

/// Deterministic filler (xorshift32).
fn filler(len: usize, seed: u32) -> Vec<u8> {
    let mut x = 0x9E37_79B9 ^ seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// The RAM and read-only parts of a [`test_app_image`] of `size` bytes, and whether its code
/// is page-aligned: realistic proportions for large images (8 KiB IRAM code, 2 KiB data,
/// a sixteenth read-only data, the code at 0x20 of a flash page after a padding segment),
/// small ones for tiny test images.
fn parts_for(size: usize) -> (usize, usize, usize, bool) {
    if size >= 160 * 1024 {
        ((size / 16) & !3, 2048, 8192, true)
    } else if size >= 16 * 1024 {
        ((size / 16) & !3, 512, 1024, false)
    } else {
        (0, 64, 256, false)
    }
}

/// The length [`test_app_image`] gives for `size`: `size` rounded up to 16, or the smallest
/// image of that shape when `size` is below it.
pub fn test_app_len(size: usize) -> usize {
    let (rodata, data, iram, aligned) = parts_for(size);
    let (r, d, i) = (vec![0; rodata], vec![0; data], vec![0; iram]);
    let parts = AppParts {
        rodata: &r,
        data: &d,
        iram: &i,
        text: &[],
        page_aligned_text: aligned,
    };
    let offset = TestImage::new(9)
        .app_text_offset(&parts)
        .expect("ESP32-S3 has a memory map") as usize;
    // offset + text + 1, rounded up to 16, + 32; at least 4 bytes of text.
    let smallest = (offset + 4 + 1).next_multiple_of(16) + 32;
    size.next_multiple_of(16).max(smallest)
}

/// A valid ESP app image for `chip_id` (ESP32-S3 9 or ESP32-C3 5) with this version string,
/// [`test_app_len`]`(size)` bytes long, laid out as espflash lays out an app (DROM with the
/// app descriptor, DRAM, IRAM, a padding segment for large images, IROM), with deterministic
/// content. Empty for a chip without a memory map.
pub fn test_app_image(chip_id: u16, version: &str, size: usize) -> Vec<u8> {
    let total = test_app_len(size);
    let (rodata, data, iram, aligned) = parts_for(size);
    let seed = size as u32;
    let (r, d, i) = (
        filler(rodata, seed),
        filler(data, seed ^ 1),
        filler(iram, seed ^ 2),
    );
    let mut img = TestImage::new(chip_id);
    img.version = version;
    let mut parts = AppParts {
        rodata: &r,
        data: &d,
        iram: &i,
        text: &[],
        page_aligned_text: aligned,
    };
    let Ok(offset) = img.app_text_offset(&parts) else {
        return Vec::new();
    };
    // offset + text + 1 rounds up to total - 32.
    let text_len = total - 32 - offset as usize - 4;
    let text = filler(text_len, seed ^ 3);
    parts.text = &text;
    let mut buf = vec![0u8; total];
    match img.build_app(&mut buf, &parts) {
        Ok(n) => {
            buf.truncate(n);
            buf
        }
        Err(_) => Vec::new(),
    }
}

/// Like [`test_app_image`] (about `size` bytes), with one more segment: `len` bytes to be
/// copied to RAM address `addr` — for example over the bootloader's own RAM, which the real
/// bootloader refuses to load. Layout: DROM (the app descriptor), the extra segment, IROM.
pub fn test_app_image_with_segment(
    chip_id: u16,
    version: &str,
    size: usize,
    addr: u32,
    len: usize,
) -> Vec<u8> {
    let mut img = TestImage::new(chip_id);
    img.version = version;
    let extra = filler(len.next_multiple_of(4), addr);
    // Header 24, DROM header + descriptor 264, extra header + data, IROM header.
    let text_at = 24 + 264 + 8 + extra.len() + 8;
    let text_len = size.saturating_sub(text_at + 48).next_multiple_of(4).max(4);
    let text = filler(text_len, size as u32);
    let irom = 0x4201_0000 + (text_at as u32 % 0x1_0000);
    img.entry = irom;
    let mut buf = vec![0u8; text_at + text_len + 64];
    match img.build(&mut buf, &[(addr, &extra), (irom, &text)]) {
        Ok(n) => {
            buf.truncate(n);
            buf
        }
        Err(_) => Vec::new(),
    }
}

fn write_entry(image: &mut [u8], at: usize, e: &OtaSelectEntry) {
    // ESP-IDF erases the entry's sector, then writes the 32-byte struct.
    let end = (at + OTADATA_SECTOR_SIZE as usize).min(image.len());
    if let Some(sector) = image.get_mut(at..end) {
        sector.fill(0xFF);
        let entry = e.encode();
        if let Some(dst) = sector.get_mut(..entry.len()) {
            dst.copy_from_slice(&entry);
        }
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
    use crate::boot::{BootTarget, boot};

    #[test]
    fn test_images_have_the_length_asked_for_and_boot() {
        for chip in [9u16, 5] {
            for size in [
                5_000,
                10_000,
                20 * 1024,
                64 * 1024,
                100_000,
                200_000,
                512 * 1024,
                1_572_864,
            ] {
                let app = test_app_image(chip, "2.0.0", size);
                assert_eq!(app.len(), test_app_len(size), "chip {chip} size {size}");
                let flash = build_chip_image(chip, Some(&app));
                let o = boot(&flash, chip);
                assert_eq!(o.target, Some(BootTarget::Ota(0)), "{size}: {}", o.reason);
                assert_eq!(o.image.map(|i| i.len as usize), Some(app.len()));
            }
        }
    }

    #[test]
    fn a_segment_over_the_bootloaders_ram_is_not_loaded() {
        // Just below the ESP32-S3 bootloader's loader code (DRAM alias 0x3FCD_B700): boots.
        let ok = test_app_image_with_segment(9, "2.0.0", 20_000, 0x3FCD_B600, 256);
        assert_eq!(
            boot(&build_chip_image(9, Some(&ok)), 9).target,
            Some(BootTarget::Ota(0))
        );
        // Over it: not bootable, and with nothing else to fall back to, a reset loop.
        let bad = test_app_image_with_segment(9, "2.0.0", 20_000, 0x3FCD_B700, 256);
        let o = boot(&build_chip_image(9, Some(&bad)), 9);
        assert_eq!(o.target, None, "{}", o.reason);
        assert!(o.reason.contains("overlaps"), "{}", o.reason);
    }

    #[test]
    fn large_test_images_page_align_their_code_as_espflash_does() {
        let app = test_app_image(9, "2.0.0", 1_572_864);
        // DROM, DRAM, IRAM, padding, IROM.
        assert_eq!(app[1], 5);
        let mut at = 24usize;
        let mut segs = Vec::new();
        for _ in 0..5 {
            let addr = u32::from_le_bytes(app[at..at + 4].try_into().unwrap());
            let len = u32::from_le_bytes(app[at + 4..at + 8].try_into().unwrap());
            segs.push((addr, at + 8));
            at += 8 + len as usize;
        }
        assert_eq!(segs[0].0, 0x3C00_0020);
        assert_eq!(segs[3].0, 0);
        assert_eq!(segs[4].1 % 0x10000, 0x20);
        assert_eq!(segs[4].0 % 0x10000, 0x20);
        assert!(segs[4].0 >= 0x4200_0000);
    }
}
