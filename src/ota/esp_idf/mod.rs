//! The ESP-IDF on-flash formats an OTA update must honour, pure and generic over the flash.
//!
//! Section numbers (§3.x) point into the project's reference `esp-idf-ota.md`; C function
//! names point into ESP-IDF, whose second-stage bootloader is what finally reads these bytes.
//!
//! - [`partition`]: the partition table at `0x8000` (§3.2): parse, validate, encode.
//! - [`otadata`]: the two `esp_ota_select_entry_t` records that choose the boot slot
//!   (§3.3–3.5), the bootloader's choice, the sequence arithmetic to select a slot, and
//!   [`otadata::Otadata`] / [`otadata::AsyncOtadata`] to read and write them on a flash.
//! - [`image`]: a streaming validator for app images (§3.6), usable on a download as it
//!   arrives or on a slot read back from flash, plus a test-image builder.
//!
//! Unlike `esp-bootloader-esp-idf` 0.6 (§3.7), this code uses the correct partition flag bits,
//! honours `ota_state` when reporting the current slot, ignores a corrupt `otadata` entry
//! instead of failing, and never carries an old entry's state into a newly selected slot.
//!
//! A typical update, with the flash addressed as the whole chip:
//!
//! ```
//! use cellular_ota::ota::esp_idf::image::{ChipId, testing, validate_in_flash};
//! use cellular_ota::ota::esp_idf::otadata::{BootChoice, OtaImageState, Otadata};
//! use cellular_ota::ota::esp_idf::partition::{
//!     self, AppSubType, DataSubType, PartitionEntry, PartitionTable, PartitionType,
//! };
//! use cellular_ota::ota::mem_flash::MemFlash;
//! use embedded_storage::nor_flash::NorFlash;
//!
//! // A 256 KiB flash with otadata, ota_0 and ota_1.
//! let mut mem = [0xFFu8; 0x40000];
//! let mut flash: MemFlash<'_> = MemFlash::new(&mut mem);
//! let entries = [
//!     PartitionEntry::new(PartitionType::Data(DataSubType::Ota), 0xD000, 0x2000, "otadata").unwrap(),
//!     PartitionEntry::new(PartitionType::App(AppSubType::Ota(0)), 0x10000, 0x10000, "ota_0").unwrap(),
//!     PartitionEntry::new(PartitionType::App(AppSubType::Ota(1)), 0x20000, 0x10000, "ota_1").unwrap(),
//! ];
//! let mut table = [0u8; 0x1000];
//! partition::encode(&entries, &mut table, true).unwrap();
//! flash.write(partition::PARTITION_TABLE_OFFSET, &table).unwrap();
//!
//! let mut buf = [0u8; partition::PARTITION_TABLE_MAX_LEN];
//! let table = partition::read_partition_table(&mut flash, partition::PARTITION_TABLE_OFFSET, &mut buf).unwrap();
//! let slot = table.ota_slot(1).unwrap();
//!
//! // Write an image into ota_1 (here: a generated test image), then check it in place.
//! let mut image = [0u8; 1024];
//! let parts = testing::AppParts { text: &[0u8; 64], ..Default::default() };
//! let len = testing::TestImage::new(ChipId::ESP32S3.0).build_app(&mut image, &parts).unwrap();
//! flash.erase(slot.offset, slot.offset + slot.size).unwrap();
//! flash.write(slot.offset, &image[..len]).unwrap();
//! let mut chunk = [0u8; 256];
//! let info = validate_in_flash(&mut flash, slot.offset, slot.size, ChipId::ESP32S3, &mut chunk).unwrap();
//! assert_eq!(info.len as usize, len);
//!
//! // Select it for the next boot.
//! let mut otadata = Otadata::from_table(&mut flash, &table).unwrap();
//! otadata.activate(1, OtaImageState::Undefined).unwrap();
//! assert_eq!(otadata.current().unwrap().ota_slot(), Some(1));
//! ```

pub mod image;
pub mod otadata;
pub mod partition;
pub mod sink;

pub use image::{ChipId, ImageError, ImageInfo, ImageValidator};
pub use otadata::{AsyncOtadata, BootChoice, OtaImageState, OtaSelectEntry, Otadata, OtadataError};
pub use partition::{PartitionEntry, PartitionTable, PartitionTableError, PartitionType};
