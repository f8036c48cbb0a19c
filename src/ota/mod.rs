//! Writing firmware into flash slots, and the on-flash formats a bootloader reads.
//!
//! This module is pure format code plus a test flash; it owns no flash driver. Everything
//! that touches flash is generic over `embedded-storage`'s `NorFlash` (blocking) or
//! `embedded-storage-async`'s `NorFlash`, so the same code runs against `esp-storage` on a
//! device, against `mem_flash::MemFlash` (feature `test-doubles`) in tests, and against a simulator on the host.
//!
//! - [`esp_idf`]: the ESP-IDF partition table, `otadata` slot selection and app-image
//!   validation, bit-exact with the ESP-IDF second-stage bootloader (reference
//!   `esp-idf-ota.md` §3).
//! - `mem_flash` and `mem_sink` (feature `test-doubles`): an in-memory NOR flash that
//!   enforces alignment and erase-before-write and can fail on demand, and an in-memory
//!   sink, for power-cut tests and host simulators.
//!
//! The OTA sink (the thing that streams a download into the inactive slot and switches to
//! it) is built on top of these pieces and lives beside them.

pub(crate) mod crc32;
pub mod esp_idf;
pub mod journal;
pub mod manifest;
#[cfg(any(test, feature = "test-doubles"))]
pub mod mem_flash;
#[cfg(any(test, feature = "test-doubles"))]
pub mod mem_sink;
pub mod sink;

pub use sink::{
    AsyncOtaSink, ExpectedImage, ImageDescriptor, OtaSink, Resume, SinkFault, ToSinkFault,
};
