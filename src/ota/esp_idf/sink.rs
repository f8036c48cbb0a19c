//! The ESP-IDF A/B slot sink: streams a download into the OTA slot that is not running,
//! verifies it from flash, and only then selects it in `otadata`.
//!
//! [`EspIdfSink`] (blocking `NorFlash`) and [`AsyncEspIdfSink`] (async `NorFlash`) implement
//! [`OtaSink`] / [`AsyncOtaSink`] over a flash addressed from the start of the chip (what
//! `esp-storage`'s `FlashStorage` gives). Everything they decide is decided by the same
//! non-generic code in this module; the two types differ only in `.await`.
//!
//! # Slot layout: the resume journal lives in the target slot's last sector
//!
//! ```text
//!  target slot (ota_N), `size` bytes
//! ┌──────────────────────────────────────────────────────┬──────────────┐
//! │ image: up to `capacity` = size − 4 KiB               │ journal      │
//! │ (each sector erased before its first byte is written)│ (last 4 KiB) │
//! └──────────────────────────────────────────────────────┴──────────────┘
//! ```
//!
//! The last [`SECTOR_SIZE`] (4 KiB, ESP-IDF's `SPI_FLASH_SEC_SIZE`) sector of the slot
//! being written holds the [`Journal`] that makes a download resumable after a power cut,
//! so an image may use at most `slot size − 4 KiB` ([`Resume::capacity`],
//! [`UpdateTarget::capacity`]). "Sector" below always means these 4 KiB; the flash's
//! `ERASE_SIZE` must divide it (it is 4 KiB on ESP32 chips). This
//! needs no extra partition and never touches the running slot. It is harmless to the
//! bootloader: ESP-IDF only requires the image length to be ≤ the partition size (reference
//! §3.6), and reads nothing past the image, so journal bytes behind the image are ignored.
//! The journal is cleared after activation, and only ever read or written while its slot is
//! the update target (never while it runs).
//!
//! # What each call does on flash
//!
//! - [`begin`](OtaSink::begin): reads the partition table (checking its MD5) and otadata,
//!   decides which app runs ([`SinkConfig::running_slot`], else otadata's choice honouring
//!   `ota_state`, else factory, else `ota_0` — what the bootloader does, §3.4) and picks the
//!   **next OTA slot after it** (`ota_0` if factory runs; never the running one). Then it
//!   loads the journal: the same image id and size resume at the recorded offset (always a
//!   sector boundary); anything else clears the journal and starts at 0. If what it clears
//!   is an idle erase's record, the sectors the image needs that it covers are read back
//!   first, and those that read erased are not erased again (see
//!   [below](#erasing-the-next-slot-while-idle)).
//! - [`write`](OtaSink::write): offsets must be consecutive. Bytes are collected in a
//!   64-byte buffer ([`WRITE_BUF_LEN`]) and written in whole `WRITE_SIZE` units; a large
//!   write goes straight to flash. Each sector is erased just before its first byte is
//!   written, unless [`prepare`](OtaSink::prepare) erased it earlier in this session (a
//!   sector the image never reaches keeps its old bytes). When a sector is complete a
//!   journal record `{id, size, offset = sector end}` is appended (inside a region
//!   `prepare` planned more sparsely, see below), so resume points are sector-aligned and
//!   the sector after one is always erased before it is written again. A record that finds
//!   the journal full wraps it (a journal sector erase) — unless `prepare` made room first.
//! - [`prepare`](OtaSink::prepare)`(offset, len)`: `offset` must be the write position.
//!   Afterwards the writes into the prepared region — everything below the end of the
//!   last sector the range touches, clamped to the image — **erase nothing at all**, slot
//!   or journal, and only program (a page in about a millisecond at most; a sector erase
//!   takes tens of milliseconds, hundreds worst case, and a 4 KiB one stalls an ESP32's
//!   UART servicing for about 45 ms). The update flow calls it while the modem is still
//!   fetching a large range, so no erase stalls the UART mid-payload. Two parts:
//!   1. *Journal room.* The region will append one record per sector boundary it passes
//!      (after the last recorded one), and the journal holds 84 records between wraps (85
//!      48-byte slots in 4 KiB, the last kept for a tombstone). If they do not fit in what
//!      is left, the journal wraps early, now ([`Journal::make_room`]: tombstone, journal
//!      sector erase, the current durable offset recorded again at slot 0). If they do not
//!      fit even an empty journal (a region of more than 84 sectors, about 336 KiB, such as
//!      a whole-image prepare for a stream), the region is recorded only every `stride`-th
//!      sector, the smallest stride that fits, plus its last boundary: a 1 MiB image
//!      prepared whole is recorded every 3rd sector (83 records), a 1.5 MiB one every 5th
//!      (77), and a cut then loses at most `stride` sectors instead of one. Past the
//!      prepared region every sector is recorded again. 64 KiB ranges (16 sectors) always
//!      fit: every sector stays recorded, and the journal wraps early in about one
//!      `prepare` in six instead of in a write.
//!   2. *Slot sectors.* Erases, now, every sector overlapping `[offset, offset + len)` that
//!      this session has not erased yet (the sector being filled already is). The range is
//!      clamped to the image end (rounded up to its sector): never past the image, so
//!      never the journal sector or outside the slot. Contiguous sectors go in one `erase`
//!      call each, split at 64 KiB-aligned flash addresses ([`PREPARE_ERASE_MAX`]). Only
//!      the session remembers what was erased and the record plan: nothing is journaled,
//!      and a later `begin` erases every sector past the resume point again before its
//!      first write and records every sector again.
//!
//!   An empty range (`len` 0, or `offset` at the image end) does nothing.
//! - [`finish`](OtaSink::finish): pads the buffered tail with `0xFF` to `WRITE_SIZE`, then
//!   reads the whole image back from flash (in [`VERIFY_BUF_LEN`]-byte chunks) computing its
//!   SHA-256 and running [`ImageValidator`] (magic, chip id, segments and where each loads
//!   by [`SinkConfig::memory_map`], the revision ranges with [`SinkConfig::revisions`],
//!   checksum, appended SHA-256, length ≤ capacity, app descriptor). Only if the SHA-256
//!   equals the expected one, the image is valid and its app descriptor declares the
//!   expected version ([`ExpectedImage::version`], when given) does it select the slot in
//!   otadata (`esp_ota_set_boot_partition`
//!   semantics: the inactive entry, a fresh state NEW or UNDEFINED, the right CRC; see
//!   [`otadata::plan_activate`](super::otadata::plan_activate)), then clear the journal.
//! - [`abort`](OtaSink::abort): clears the journal of the target slot (outside an update,
//!   unless it records idle-erase progress, which it keeps); never touches otadata.
//! - [`erase_idle_step`](EspIdfSink::erase_idle_step) and
//!   [`idle_erase_state`](EspIdfSink::idle_erase_state): see the next section.
//!
//! # Erasing the next slot while idle
//!
//! Erasing is the slow part of writing NOR flash (W25Q32JV: 150 ms per 64 KiB block, so
//! about 3.6 s for 1.5 MiB), and on an ESP32 nothing else runs meanwhile, not even the UART
//! interrupt. Without flow control the update flow therefore erases the whole target region
//! after the request and before the body ([`Method::StreamErasedAhead`]), which adds the
//! erase time to every update. Once the running image is confirmed, the application can
//! instead erase the slot the next update will write in its idle time, one short step at a
//! time, and that update then only programs pages:
//!
//! ```text
//!  idle, one step per call             next update
//! ┌──────┬──────┬─────┬──────┬─────────┐   begin: newest record "erased up to E"
//! │erased│erased│ ... │ next │ journal │   ─► read back what the image needs below E
//! └──────┴──────┴─────┴──────┴─────────┘   ─► clear the journal (forget the record)
//!   each step: erase a unit, then append     ─► prepare / writes erase nothing below E
//!   the record "erased up to here"
//! ```
//!
//! - **A step** ([`EspIdfSink::erase_idle_step`]) reads the partition table, otadata and
//!   the target slot's journal, erases the next unit after what the journal records (one
//!   64 KiB block when the flash address is 64 KiB aligned and the block lies in the image
//!   area, else one 4 KiB sector; [`IdleEraseUnit::Sector`] for sectors only), then appends
//!   an erase-progress record ([`JournalRecord::erase_progress`]: the reserved id
//!   [`ERASED_ID`](crate::ota::journal::ERASED_ID), `size` = the slot's capacity, `offset` =
//!   bytes erased from the slot start) to the same journal that holds a download's resume
//!   point. It erases only the image area, never the journal sector (which the journal
//!   erases itself when it wraps), the running slot or otadata. The slot is the one `begin`
//!   targets: the next OTA slot after the app the sink takes for the running one. As for
//!   `begin`, that must be the app really running: pass [`SinkConfig::running_slot`] on a
//!   device (see [After `finish`, before the reset](#after-finish-before-the-reset)).
//! - **Preconditions**, refused with nothing written: otadata must select the running app
//!   ([`SinkError::RunningNotSelected`] otherwise, for example after `finish` and before the
//!   reset), and that app must be confirmed: an entry in state NEW or PENDING_VERIFY means
//!   the slot still holds the image a rollback would boot ([`SinkError::NotConfirmed`];
//!   call [`mark_valid`](EspIdfSink::mark_valid) first). VALID, UNDEFINED (rollback off)
//!   and no entry at all (factory, or `ota_0` by default) are confirmed. A download's resume
//!   point in the journal is kept ([`SinkError::DownloadPending`]) until an update
//!   completes it or [`abort`](OtaSink::abort) discards it. Erasing the slot removes the
//!   old image for good: if the running image later fails the bootloader's check, there is
//!   no other OTA image to fall back to until the next update.
//! - **State**: [`EspIdfSink::idle_erase_state`] says how much is recorded erased
//!   ([`IdleEraseState::is_erased`] when all of it), or that a download is pending.
//! - **Power cuts.** A cut during a step's erase, or during its record write (a torn
//!   record is ignored), leaves the previous record the newest: the next step erases that
//!   unit again. The one exception is a journal wrap: a record that finds the journal full
//!   (84 records; a slot's journal is clear after its image was activated, so a block-unit
//!   pass over a slot of up to 84 units — 5 MiB — never wraps) writes a tombstone, erases
//!   the journal sector and writes the record again at its start; a cut in between loses
//!   the progress, and the next step starts the pass over at 0 (safe, the erases are done
//!   again). Nothing a cut leaves ever claims more erased than was erased.
//! - **The next update.** `begin` for an image that does not resume, with an erase-progress
//!   record up to `E` the newest in the journal, reads back the sectors the image needs
//!   below `E` (from the slot start to the end of the image's last sector) through the
//!   64-byte write buffer, stopping at the first byte that is not `0xFF`. The sectors before
//!   that one count as erased; from that sector on (someone wrote there, a cut that was
//!   not recorded, a flash that lied) everything is erased normally, so nothing is ever
//!   written over unerased flash. Then it clears the journal — a tombstone, the journal
//!   sector erase — *before* anything is written to the slot, so no record claims a slot
//!   erased that an update has written: after a cut the next `begin` erases as usual.
//!   [`prepare`](OtaSink::prepare) and the writes erase nothing below the checked end, so a
//!   stream into a pre-erased slot only programs pages during its payload (the journal
//!   records it every few sectors, [`Method::StreamErasedAhead`]'s whole-image plan, with
//!   no journal erase either). **Cost of the check:** one `read` call per 64 bytes of the
//!   image, all in `begin` before the request (24 576 calls for 1.5 MiB), far less than
//!   the block erases it replaces. An image larger than what is recorded erased has its
//!   other sectors erased as before.
//!
//! [`Method::StreamErasedAhead`]: crate::update::Method::StreamErasedAhead
//!
//! # Power cuts
//!
//! Every flash operation can be cut (for idle erasing see
//! [above](#erasing-the-next-slot-while-idle)). The running image stays selected until the
//! single otadata entry write of `finish`; a cut before or during it leaves the old
//! selection (a half-written entry fails its CRC and is ignored by the bootloader). A cut
//! anywhere during the download loses at most the sector in progress: a new sink's `begin`
//! resumes at the last recorded sector boundary. `prepare` keeps this: it only erases
//! sectors at or past the write position (never a recorded one), and journal records still
//! cover only sectors whose bytes are all written; in a region it had to record sparsely a
//! cut loses up to `stride` sectors (still sector-aligned). Its early journal wrap has the
//! guarantee of a normal wrap: cut during the tombstone write, nothing is lost; cut during
//! the journal erase or before the record lands again, the resume point is lost and the
//! download restarts at 0 (safe, just slower). Journal wrap-around or clearing cut at the
//! wrong moment loses the resume point the same way (see [`crate::ota::journal`]). After
//! the otadata write, `finish` clears the journal on a best-effort basis and returns `Ok`
//! even if that fails: the image *is* selected, and a leftover record is only read when
//! that slot is the target again (and whatever it resumes is re-verified).
//!
//! A verification failure in `finish` (wrong SHA-256, invalid image) also clears the
//! journal: the stored bytes are known bad, so the next `begin` starts at 0 instead of
//! resuming them.
//!
//! # After `finish`, before the reset
//!
//! The sink remembers the app that was running when it first looked, so a second `begin` on
//! the same value targets the same slot again (the one just selected), exactly like ESP-IDF's
//! `esp_ota_get_next_update_partition(NULL)`; it never targets the running app. A *new* sink
//! value with [`SinkConfig::running_slot`] `None` would instead believe otadata and take the
//! just-selected slot for the running one, so create one sink per boot, or pass the running
//! slot.
//!
//! # Differences from `esp-bootloader-esp-idf` 0.6 (§3.7)
//!
//! Partition flags use ESP-IDF's bits; the running slot honours `ota_state` (an ABORTED or
//! INVALID newer entry is skipped, as the bootloader does), so the target is never the
//! running slot after a rollback; a corrupt otadata entry is ignored, not an error; and the
//! newly selected entry is written fresh, never with the state left in its sector.
//!
//! # Memory
//!
//! No heap. The sink value is about 0.5 KiB (config, the session with its 64-byte write
//! buffer and journal cursor, and the last activated image's [`ImageInfo`]). `begin`,
//! `abort` and the boot-side methods read the partition table in 64-byte chunks and check
//! each record as it arrives ([`TableScanner`]), with every check of
//! [`PartitionTable::parse`](super::partition::PartitionTable::parse) and `check_fits` and
//! the same errors, but without the parsed table: the scanner holds an MD5 state, the
//! offset and size of each partition read (for the pairwise overlap check), and otadata,
//! factory and the OTA slots, about 0.5 KiB. On a Cortex-M4 (opt-level `s`) the table step
//! takes under 1 KiB of stack (the reading frame, about 0.6 KiB, plus the MD5 compression);
//! the async sink holds the scanner and one chunk in its future across the reads.
//! `finish` needs about 1.5 KiB (read buffer, SHA-256 state and the validator); `write`
//! under 1 KiB.
//!
//! ```
//! use cellular_ota::ota::esp_idf::image::{ChipId, testing};
//! use cellular_ota::ota::esp_idf::partition::{self, AppSubType, DataSubType, PartitionEntry, PartitionType};
//! use cellular_ota::ota::esp_idf::sink::{AppSlot, EspIdfSink, SinkConfig};
//! use cellular_ota::ota::mem_flash::MemFlash;
//! use cellular_ota::ota::{ExpectedImage, ImageDescriptor, OtaSink};
//! use sha2::{Digest, Sha256};
//!
//! // A 256 KiB flash: otadata, ota_0, ota_1 (64 KiB each), erased otadata: ota_0 runs.
//! let mut mem = vec![0xFFu8; 0x40000];
//! let entries = [
//!     PartitionEntry::new(PartitionType::Data(DataSubType::Ota), 0xD000, 0x2000, "otadata").unwrap(),
//!     PartitionEntry::new(PartitionType::App(AppSubType::Ota(0)), 0x10000, 0x10000, "ota_0").unwrap(),
//!     PartitionEntry::new(PartitionType::App(AppSubType::Ota(1)), 0x20000, 0x10000, "ota_1").unwrap(),
//! ];
//! partition::encode(&entries, &mut mem[0x8000..0x9000], true).unwrap();
//! let mut flash: MemFlash<'_> = MemFlash::new(&mut mem);
//!
//! let mut image = vec![0u8; 4096];
//! let parts = testing::AppParts { text: &[7u8; 3000], ..Default::default() };
//! let len = testing::TestImage::new(ChipId::ESP32S3.0).build_app(&mut image, &parts).unwrap();
//! let image = &image[..len];
//! let sha: [u8; 32] = Sha256::digest(image).into();
//!
//! let mut sink = EspIdfSink::new(&mut flash, SinkConfig::new(ChipId::ESP32S3));
//! let resume = sink.begin(&ImageDescriptor { id: sha, size: len as u32 }).unwrap();
//! assert_eq!((resume.offset, resume.capacity), (0, 0x10000 - 0x1000));
//! for (i, chunk) in image.chunks(1000).enumerate() {
//!     sink.write((i * 1000) as u32, chunk).unwrap();
//! }
//! sink.finish(&ExpectedImage::sha256(sha)).unwrap();
//! assert_eq!(sink.last_activated().unwrap().slot, 1);
//! // Still running ota_0 until the reset; otadata now selects ota_1.
//! assert_eq!(sink.running_slot().unwrap(), AppSlot::Ota(0));
//! assert_eq!(sink.boot_choice().unwrap().ota_slot(), Some(1));
//! ```

use embedded_storage::nor_flash::NorFlash;
use embedded_storage_async::nor_flash::NorFlash as AsyncNorFlash;
use sha2::{Digest, Sha256};

use super::image::{
    AppDescriptor, ChipId, ImageError, ImageInfo, ImageValidator, MemoryMap, Revisions,
};
use super::otadata::{
    AsyncOtadata, BootChoice, OtaImageState, OtaSelectEntry, Otadata, OtadataError,
    OtadataLayoutError, PlanError, boot_slot, select_entry,
};
use super::partition::{
    ENTRY_LEN, MAX_OTA_SLOTS, OtaLayout, PARTITION_TABLE_OFFSET, PartitionTableError, TableScanner,
};
use crate::ota::journal::{
    FlashGeometry, Journal, JournalError, JournalLayoutError, JournalRecord, record_stride,
};
use crate::ota::manifest::Version;
use crate::ota::sink::{AsyncOtaSink, ExpectedImage, ImageDescriptor, OtaSink, Resume};

/// Shows a NUL-padded text field: up to the first NUL, other bytes outside printable ASCII
/// as `\xNN`.
struct NulText<'a>(&'a [u8]);

impl core::fmt::Display for NulText<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for &b in self.0.iter().take_while(|&&b| b != 0) {
            if (0x20..0x7f).contains(&b) {
                core::fmt::Write::write_char(f, char::from(b))?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

/// Size of the internal write buffer: partial `WRITE_SIZE` units and small writes are
/// collected here (up to 64 bytes, never across a sector boundary) before they are written.
/// The flash's `WRITE_SIZE` and `READ_SIZE` must divide it.
pub const WRITE_BUF_LEN: usize = 64;

/// The sector the sink erases, journals and resumes by: 4 KiB (`SPI_FLASH_SEC_SIZE`), also
/// the unit of otadata. The flash's `ERASE_SIZE` must divide it; a sector is erased with one
/// `erase(start, start + 4096)` call.
pub const SECTOR_SIZE: u32 = 0x1000;

/// Bytes of the partition table the sink reads at most: 24 records, enough for 22
/// partitions plus the MD5 record and the end marker (ESP-IDF allows 95; a longer table is
/// [`SinkError::PartitionTableTooLong`]). The table is read in 64-byte chunks up to the one
/// holding its end marker, so a typical 7-partition table costs four small reads, and
/// checked as it is read ([`TableScanner`]): no buffer of this size is held.
pub const TABLE_BUF_LEN: usize = 768;

/// Chunk size of the partition table read.
const TABLE_CHUNK: usize = 64;

/// Records in [`TABLE_BUF_LEN`] bytes: the most partitions the sink's scanner ever sees.
const TABLE_RECORDS: usize = TABLE_BUF_LEN / ENTRY_LEN;

/// The most one `erase` call of [`prepare`](OtaSink::prepare) covers: 64 KiB (one NOR
/// block). A run of sectors is split at 64 KiB-aligned flash addresses, so a whole aligned
/// block is one call (a driver may erase it with one block erase) and no call spans more.
///
/// Why bound it: one erase call runs to its end before anything else does. On ESP32 chips
/// code in flash cannot run meanwhile (the cache is off during flash operations), and an
/// async executor cannot poll another task (nor a timeout fire) until the call returns. A
/// 64 KiB block erase takes about 150 ms typically and up to about 2 s worst case on common
/// NOR chips; one call covering a whole 1 MiB range could stall 16 times as long. Between
/// calls the caller's other work (watchdog, link keep-alive, timeouts) gets a chance, and a
/// cancelled or cut `prepare` loses at most one call's work.
pub const PREPARE_ERASE_MAX: u32 = 0x1_0000;

/// Size of the stack buffer `finish` reads the image back through.
pub const VERIFY_BUF_LEN: usize = 256;

/// The block [`IdleEraseUnit::Block`] erases in one step: 64 KiB, the NOR flash block.
pub const IDLE_ERASE_BLOCK: u32 = 0x1_0000;

/// How much one [`EspIdfSink::erase_idle_step`] erases ([`SinkConfig::idle_erase_unit`]).
///
/// One step is one `erase` call, and nothing else runs until it returns (on ESP32 chips the
/// cache is off: no code from flash, no interrupt handler outside IRAM). Choose the unit by
/// how long the application can stall at a time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum IdleEraseUnit {
    /// One 64 KiB block ([`IDLE_ERASE_BLOCK`]) when the step starts at a 64 KiB-aligned flash
    /// address and the whole block lies in the slot's image area; otherwise one 4 KiB sector
    /// (the last 60 KiB, before the journal sector: app slots are 64 KiB aligned). A driver
    /// that erases an aligned 64 KiB range with one block erase (the simulator does; check
    /// yours) takes about 150 ms typical (W25Q32JV), 2 s worst case, for what sixteen sector
    /// erases do in about 720 ms. A 1.9 MiB slot is 45 steps.
    #[default]
    Block,
    /// Always one 4 KiB sector: about 45 ms typical, 400 ms worst case per step. A 1.9 MiB
    /// slot is 495 steps, and its records wrap the journal five times (see the
    /// [module docs](self#erasing-the-next-slot-while-idle)).
    Sector,
}

/// What one [`EspIdfSink::erase_idle_step`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum IdleErase {
    /// One unit was erased and recorded: the first `erased` of the slot's `total` image
    /// bytes are erased now, and `erased < total`. Call again when there is time.
    Progress {
        /// Bytes from the slot start recorded erased.
        erased: u32,
        /// The slot's image area ([`UpdateTarget::capacity`]).
        total: u32,
    },
    /// The slot's whole image area is recorded erased (this call erased its last unit, or
    /// nothing was left): nothing to do until an update writes the slot.
    Done,
}

impl IdleErase {
    fn after(erased: u32, total: u32) -> Self {
        if erased >= total {
            IdleErase::Done
        } else {
            IdleErase::Progress { erased, total }
        }
    }
}

/// What the slot the next update writes holds, as its journal records it
/// ([`EspIdfSink::idle_erase_state`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum IdleEraseState {
    /// The first `erased` of the slot's `total` image bytes are recorded erased, and `erased
    /// < total`. 0 when nothing is recorded: never erased in idle time, or an update wrote
    /// the slot since. [`EspIdfSink::erase_idle_step`] continues from `erased`.
    Partial {
        /// Bytes from the slot start recorded erased.
        erased: u32,
        /// The slot's image area ([`UpdateTarget::capacity`]).
        total: u32,
    },
    /// The slot's whole image area (`total` bytes) is recorded erased: the next update
    /// erases nothing there once it has checked that it reads back erased.
    Erased {
        /// The slot's image area ([`UpdateTarget::capacity`]).
        total: u32,
    },
    /// The slot's journal holds a download's resume point (`offset` of `size` bytes
    /// durable). An idle erase would destroy it, so [`EspIdfSink::erase_idle_step`] refuses
    /// ([`SinkError::DownloadPending`]) until an update completes it or
    /// [`abort`](OtaSink::abort) discards it.
    DownloadPending {
        /// Bytes durable.
        offset: u32,
        /// The image size.
        size: u32,
    },
}

impl IdleEraseState {
    /// Whether the slot's whole image area is recorded erased.
    pub fn is_erased(&self) -> bool {
        matches!(self, IdleEraseState::Erased { .. })
    }
}

/// How the sink is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SinkConfig {
    /// The chip the images must be built for (`chip_id` in the image header): ESP32-S3 is
    /// [`ChipId::ESP32S3`] (9).
    pub chip: ChipId,
    /// Flash address of the partition table (`CONFIG_PARTITION_TABLE_OFFSET`, default
    /// [`PARTITION_TABLE_OFFSET`] = `0x8000`).
    pub partition_table_offset: u32,
    /// Whether the bootloader has rollback enabled and new apps confirm themselves: the new
    /// slot's otadata state is then NEW (`true`), else UNDEFINED (`false`), as ESP-IDF's
    /// `set_new_state_otadata` does.
    pub rollback: bool,
    /// The OTA slot the app is actually running from, if the caller knows it (for example
    /// `esp-bootloader-esp-idf`'s `PartitionTable::booted_partition()`, which reads the MMU).
    /// `None` takes otadata's current choice (honouring `ota_state`), or, with no valid entry,
    /// factory if the table has one, else `ota_0` — what the bootloader would have booted.
    /// `None` is wrong if the bootloader fell back because the selected image was corrupt,
    /// or if an earlier sink value already activated another slot in this boot; on a device,
    /// pass the real slot. Whatever it resolves to is remembered for the life of the sink
    /// value (the running app cannot change without a reset). Only OTA slots can be named;
    /// a running factory app is recognised through `None` (no valid otadata entry).
    pub running_slot: Option<u8>,
    /// Where the chip's bootloader lets an app's segments go: `finish` refuses an image it
    /// would not load ([`MemoryMap`]). [`new`](Self::new) takes the built-in map of the chip
    /// (ESP32-S3, ESP32-C3); for another chip it is `None` and `begin` refuses to start
    /// ([`SinkError::NoMemoryMap`]) until one is given with
    /// [`with_memory_map`](Self::with_memory_map).
    pub memory_map: Option<&'static MemoryMap>,
    /// The chip's revision and eFuse block revision (from its eFuses), if the application
    /// knows them: `finish` then also refuses an image built for other revisions
    /// ([`ImageError::ChipRevision`], [`ImageError::EfuseBlockRevision`]). `None`: not
    /// checked, and the bootloader falls back to the old image if they do not match.
    pub revisions: Option<Revisions>,
    /// How much one [`EspIdfSink::erase_idle_step`] erases (default
    /// [`IdleEraseUnit::Block`]).
    pub idle_erase_unit: IdleEraseUnit,
}

impl SinkConfig {
    /// Defaults for `chip`: table at `0x8000`, no rollback, running slot from otadata, the
    /// chip's built-in memory map, revisions unknown, idle erase by 64 KiB blocks.
    pub const fn new(chip: ChipId) -> Self {
        SinkConfig {
            chip,
            partition_table_offset: PARTITION_TABLE_OFFSET,
            rollback: false,
            running_slot: None,
            memory_map: MemoryMap::for_chip(chip),
            revisions: None,
            idle_erase_unit: IdleEraseUnit::Block,
        }
    }

    /// The same with this idle-erase step (see [`idle_erase_unit`](Self::idle_erase_unit)).
    pub const fn with_idle_erase_unit(mut self, unit: IdleEraseUnit) -> Self {
        self.idle_erase_unit = unit;
        self
    }

    /// The same with this memory map (for a chip without a built-in one).
    pub const fn with_memory_map(mut self, map: &'static MemoryMap) -> Self {
        self.memory_map = Some(map);
        self
    }

    /// The same with the chip's revisions known (see [`revisions`](Self::revisions)).
    pub const fn with_revisions(mut self, revisions: Revisions) -> Self {
        self.revisions = Some(revisions);
        self
    }

    /// The same with the partition table at `offset`.
    pub const fn with_partition_table_offset(mut self, offset: u32) -> Self {
        self.partition_table_offset = offset;
        self
    }

    /// The same with rollback on or off (see [`rollback`](Self::rollback)).
    pub const fn with_rollback(mut self, rollback: bool) -> Self {
        self.rollback = rollback;
        self
    }

    /// The same with the running slot given (see [`running_slot`](Self::running_slot)).
    pub const fn with_running_slot(mut self, slot: Option<u8>) -> Self {
        self.running_slot = slot;
        self
    }

    /// The state a newly activated slot gets: NEW with rollback, else UNDEFINED.
    pub const fn new_slot_state(&self) -> OtaImageState {
        if self.rollback {
            OtaImageState::New
        } else {
            OtaImageState::Undefined
        }
    }
}

/// An app partition the bootloader can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AppSlot {
    /// The `factory` app.
    Factory,
    /// `ota_N`.
    Ota(u8),
}

/// The slot an update goes to, as decided by `begin`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UpdateTarget {
    /// The OTA slot number (`ota_N`).
    pub slot: u8,
    /// Flash address of the slot.
    pub offset: u32,
    /// Size of the slot partition.
    pub size: u32,
    /// Most image bytes: `size` minus the journal sector.
    pub capacity: u32,
    /// Flash address of the journal sector (`offset + capacity`); it runs to the slot end.
    pub journal: u32,
}

/// The image a successful `finish` activated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ActivatedImage {
    /// The OTA slot now selected in otadata.
    pub slot: u8,
    /// What validation found in it (length, header, app descriptor, digest).
    pub info: ImageInfo,
}

/// The flash operation that failed in [`SinkError::Flash`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FlashOp {
    /// Reading the partition table.
    ReadPartitionTable,
    /// Reading or writing otadata. If a write was cut, the entry being written is invalid
    /// and the previous selection stays in force.
    Otadata,
    /// Erasing a sector of the target slot.
    EraseSlot,
    /// Writing image bytes to the target slot.
    WriteSlot,
    /// Reading the target slot (`read`, or the read-back in `finish`).
    ReadSlot,
    /// Reading the journal.
    ReadJournal,
    /// Writing a journal record.
    WriteJournal,
    /// Erasing the journal sector.
    EraseJournal,
}

/// Why a sink call failed, naming the stage. `E` is the flash's error type.
///
/// After [`Flash`](Self::Flash) during `write`, `prepare` or `finish`, the session is
/// closed: call `begin` again (it resumes from the journal) or `abort`. The input errors
/// ([`OutOfOrder`](Self::OutOfOrder), [`PastImageEnd`](Self::PastImageEnd),
/// [`Incomplete`](Self::Incomplete), [`ReadOutOfRange`](Self::ReadOutOfRange)) change
/// nothing. [`HashMismatch`](Self::HashMismatch) and [`Image`](Self::Image) from `finish`
/// clear the journal (the stored bytes are known bad) and activate nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SinkError<E> {
    /// A flash operation failed.
    #[error("flash {op:?} failed: {error:?}")]
    Flash {
        /// What was being done.
        op: FlashOp,
        /// The flash's error.
        error: E,
    },
    /// The partition table is missing or invalid.
    #[error("partition table: {0}")]
    PartitionTable(PartitionTableError),
    /// The partition table has no end marker within [`TABLE_BUF_LEN`] bytes: more
    /// partitions than the sink reads (ESP-IDF itself allows up to 95).
    #[error("partition table longer than the {max_partitions} partitions the sink reads")]
    PartitionTableTooLong {
        /// The most partitions the sink reads.
        max_partitions: u8,
    },
    /// The partition table has no otadata partition.
    #[error("no otadata partition")]
    NoOtadata,
    /// There is no OTA slot to write that is not running: the table needs two `ota_N` slots,
    /// or a factory app and one `ota_N` slot (and factory running).
    #[error("no OTA slot available besides the running one")]
    NoOtaSlots,
    /// [`SinkConfig::running_slot`] names a slot the table does not have.
    #[error("running slot ota_{slot} does not exist ({count} OTA slots)")]
    BadRunningSlot {
        /// The configured slot.
        slot: u8,
        /// OTA slots in the table.
        count: u8,
    },
    /// The flash's granularity is not supported: read and write sizes must divide
    /// [`WRITE_BUF_LEN`] and the erase size, and the erase size must divide
    /// [`SECTOR_SIZE`] (4 KiB, which otadata needs too).
    #[error("unsupported flash geometry: read {read}, write {write}, erase {erase}")]
    UnsupportedGeometry {
        /// `READ_SIZE`.
        read: usize,
        /// `WRITE_SIZE`.
        write: usize,
        /// `ERASE_SIZE`.
        erase: usize,
    },
    /// The target slot is not whole 4 KiB sectors, or smaller than two (image + journal).
    #[error(
        "slot ota_{slot} at 0x{offset:x} (0x{size:x} bytes) cannot hold an image and a journal"
    )]
    BadSlot {
        /// The slot.
        slot: u8,
        /// Its offset.
        offset: u32,
        /// Its size.
        size: u32,
    },
    /// The image is larger than the slot's capacity (slot size minus the journal sector).
    /// Reported by `begin`, before anything is written.
    #[error("image of {size} bytes does not fit the {capacity}-byte slot capacity")]
    ImageTooLarge {
        /// The descriptor's size.
        size: u32,
        /// The capacity.
        capacity: u32,
    },
    /// `write`, `prepare`, `read` or `finish` without a successful `begin` (or after an
    /// error closed the session, or after `finish` / `abort`).
    #[error("no update in progress")]
    NotStarted,
    /// A write (or `prepare`) not at the end of what was written.
    #[error("write at {got}, expected {expected}")]
    OutOfOrder {
        /// The offset the next write must use.
        expected: u32,
        /// The offset given.
        got: u32,
    },
    /// A write that would run past the image size given to `begin`.
    #[error("write up to {end} passes the {size}-byte image")]
    PastImageEnd {
        /// The image size.
        size: u32,
        /// Where the write would end.
        end: u64,
    },
    /// `finish` before every byte was written.
    #[error("only {written} of {size} bytes written")]
    Incomplete {
        /// Bytes written.
        written: u32,
        /// The image size.
        size: u32,
    },
    /// A read outside what was written.
    #[error("read of {len} bytes at {offset} outside the {available} bytes written")]
    ReadOutOfRange {
        /// The offset given.
        offset: u32,
        /// The length asked for.
        len: usize,
        /// Bytes that can be read.
        available: u32,
    },
    /// The image read back from flash does not have the expected SHA-256.
    #[error("SHA-256 of the stored image does not match")]
    HashMismatch {
        /// The SHA-256 of the bytes in flash.
        computed: [u8; 32],
    },
    /// The image read back from flash is not a valid app image for this chip and slot.
    #[error("invalid image: {0}")]
    Image(ImageError),
    /// The image's app descriptor declares another version than the manifest
    /// ([`ExpectedImage::version`]; compared with [`declared_version`]).
    #[error(
        "the image declares version `{}`, not the manifest's",
        NulText(declared)
    )]
    VersionMismatch {
        /// The descriptor's `version` field as stored (NUL-padded).
        declared: [u8; 32],
    },
    /// [`SinkConfig::memory_map`] is `None`: no built-in map for this chip and none given,
    /// so `finish` could not check where the image's segments go. Reported by `begin`.
    #[error("no memory map for chip {chip}: give one with SinkConfig::with_memory_map")]
    NoMemoryMap {
        /// The configured chip id.
        chip: u16,
    },
    /// The otadata change cannot be made (no valid entry to mark, sequence exhausted).
    #[error("otadata: {0}")]
    Otadata(PlanError),
    /// The otadata partition cannot be used on this flash.
    #[error("otadata layout: {0}")]
    OtadataLayout(OtadataLayoutError),
    /// The journal sector cannot be used on this flash.
    #[error("journal: {0}")]
    Journal(JournalLayoutError),
    /// `mark_valid`, `mark_invalid_and_rollback` or `erase_idle_step` while otadata selects
    /// another app than the one running (for example after `finish`, before the reset).
    /// Nothing was written.
    #[error("running {running:?} but otadata selects {selected:?}")]
    RunningNotSelected {
        /// The running app.
        running: AppSlot,
        /// What otadata selects.
        selected: AppSlot,
    },
    /// `erase_idle_step` while the running app is not confirmed: its otadata entry is NEW or
    /// PENDING_VERIFY, so the slot the step would erase holds the image a rollback boots.
    /// Confirm the running app first ([`EspIdfSink::mark_valid`]). Nothing was written.
    #[error("the running app is not confirmed ({state:?}): its fallback slot stays as it is")]
    NotConfirmed {
        /// The running app's otadata state.
        state: OtaImageState,
    },
    /// `erase_idle_step` while the slot's journal holds a download's resume point: erasing
    /// would throw the download away. Finish it with an update, or discard it with
    /// [`abort`](OtaSink::abort). Nothing was written.
    #[error("the slot holds a resumable download ({offset} of {size} bytes)")]
    DownloadPending {
        /// Bytes of it durable.
        offset: u32,
        /// Its size.
        size: u32,
    },
}

/// Whether retrying an update can get past this error. Transient: a flash operation that
/// failed, a stored image whose read-back SHA-256 differs (the next attempt rewrites it),
/// and an image whose own checksum or appended SHA-256 is wrong (without a manifest that is
/// how a byte changed on the UART shows). Permanent: everything else (the partition table,
/// the slot, an image too large, an image built for another chip or with segments the
/// bootloader refuses, a version other than the manifest's, calls out of order).
impl<E> crate::retry::Classify for SinkError<E> {
    fn retry(&self) -> crate::retry::Retry {
        match self {
            SinkError::Flash { .. }
            | SinkError::HashMismatch { .. }
            | SinkError::Image(ImageError::ChecksumMismatch { .. } | ImageError::HashMismatch) => {
                crate::retry::Retry::Transient
            }
            _ => crate::retry::Retry::Permanent,
        }
    }
}

fn flash_err<E>(op: FlashOp) -> impl FnOnce(E) -> SinkError<E> {
    move |error| SinkError::Flash { op, error }
}

fn otadata_err<E>(e: OtadataError<E>) -> SinkError<E> {
    match e {
        OtadataError::Flash(error) => SinkError::Flash {
            op: FlashOp::Otadata,
            error,
        },
        OtadataError::Plan(p) => SinkError::Otadata(p),
    }
}

fn journal_err<E>(e: JournalError<E>) -> SinkError<E> {
    let (op, error) = match e {
        JournalError::Read(e) => (FlashOp::ReadJournal, e),
        JournalError::Write(e) => (FlashOp::WriteJournal, e),
        JournalError::Erase(e) => (FlashOp::EraseJournal, e),
    };
    SinkError::Flash { op, error }
}

// ---------------------------------------------------------------------------------------
// Pure decisions (no flash, no generics beyond the error type).
// ---------------------------------------------------------------------------------------

/// What the sink needs from the partition table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SlotLayout {
    otadata: u32,
    ota_count: u8,
    /// `(offset, size)` of `ota_0 .. ota_{count-1}`.
    slots: [(u32, u32); MAX_OTA_SLOTS as usize],
    factory: bool,
}

impl SlotLayout {
    fn from_layout<E>(layout: &OtaLayout) -> Result<Self, SinkError<E>> {
        let otadata = layout.otadata().ok_or(SinkError::NoOtadata)?.offset;
        let ota_count = layout.ota_count();
        if ota_count == 0 {
            return Err(SinkError::NoOtaSlots);
        }
        let mut slots = [(0, 0); MAX_OTA_SLOTS as usize];
        for (n, s) in slots.iter_mut().enumerate().take(usize::from(ota_count)) {
            // n < 16.
            let p = layout.ota_slot(n as u8).ok_or(SinkError::NoOtaSlots)?;
            *s = (p.offset, p.size);
        }
        Ok(SlotLayout {
            otadata,
            ota_count,
            slots,
            factory: layout.factory().is_some(),
        })
    }

    /// What the bootloader loads for `choice` (§3.4, `find_default_boot_partition`).
    fn app_for(&self, choice: &BootChoice) -> AppSlot {
        match choice {
            BootChoice::Ota { slot, .. } => AppSlot::Ota(*slot),
            BootChoice::NoOtaSlots | BootChoice::NoValidEntry if self.factory => AppSlot::Factory,
            BootChoice::NoOtaSlots | BootChoice::NoValidEntry => AppSlot::Ota(0),
        }
    }
}

/// The partition table check while it is read: at most [`TABLE_RECORDS`] partitions, so
/// every one is checked against every earlier one for overlap.
type Scanner = TableScanner<TABLE_RECORDS>;

/// Feeds one chunk read from the table (whole 32-byte records) to the scanner and returns
/// whether the chunk holds the table's end marker, recognised as ESP-IDF does by four `0xFF`
/// bytes at the start of a record. Reading stops after that chunk (or after
/// [`TABLE_BUF_LEN`] bytes), whatever the scanner found before it, so the reads are the same
/// whatever the table holds.
#[inline(never)]
fn scan_chunk(scan: &mut Scanner, chunk: &[u8; TABLE_CHUNK]) -> bool {
    let mut end = false;
    for record in chunk.chunks_exact(ENTRY_LEN) {
        let Ok(record) = <&[u8; ENTRY_LEN]>::try_from(record) else {
            continue;
        };
        scan.feed(record);
        end |= record[..4] == [0xFF; 4];
    }
    end
}

/// The verdict on the table once `read` bytes of it were scanned (up to the chunk holding
/// the end marker, or [`TABLE_BUF_LEN`]): what the sink needs, or why the table is refused.
#[inline(never)]
fn layout_from_scan<E>(scan: &Scanner, read: usize) -> Result<SlotLayout, SinkError<E>> {
    let layout = scan.finish().map_err(|e| match e {
        PartitionTableError::MissingEndMarker if read >= TABLE_BUF_LEN => {
            SinkError::PartitionTableTooLong {
                max_partitions: (TABLE_RECORDS - 2) as u8,
            }
        }
        other => SinkError::PartitionTable(other),
    })?;
    SlotLayout::from_layout(&layout)
}

/// Reads the partition table at `offset` in [`TABLE_CHUNK`]-byte chunks, checking it as it
/// goes, and keeps what the sink needs. The scanner (about 0.5 KiB) lives only in this
/// call's frame.
#[inline(never)]
fn read_table<F: NorFlash>(flash: &mut F, offset: u32) -> Result<SlotLayout, SinkError<F::Error>> {
    let mut scan = Scanner::with_flash_capacity(flash.capacity());
    let mut read = 0;
    loop {
        let mut chunk = [0u8; TABLE_CHUNK];
        flash
            .read(offset + read as u32, &mut chunk)
            .map_err(flash_err(FlashOp::ReadPartitionTable))?;
        read += TABLE_CHUNK;
        if scan_chunk(&mut scan, &chunk) || read >= TABLE_BUF_LEN {
            break;
        }
    }
    layout_from_scan(&scan, read)
}

/// The running app: the configured slot, else what otadata selects (honouring states).
fn resolve_running<E>(
    layout: &SlotLayout,
    entries: &[OtaSelectEntry; 2],
    configured: Option<u8>,
) -> Result<AppSlot, SinkError<E>> {
    match configured {
        Some(slot) if slot >= layout.ota_count => Err(SinkError::BadRunningSlot {
            slot,
            count: layout.ota_count,
        }),
        Some(slot) => Ok(AppSlot::Ota(slot)),
        None => Ok(layout.app_for(&boot_slot(entries, layout.ota_count))),
    }
}

/// Checks the flash granularity the sink and otadata need.
fn check_geometry<E>(g: FlashGeometry) -> Result<(), SinkError<E>> {
    let ok = g.read > 0
        && g.write > 0
        && g.erase > 0
        && WRITE_BUF_LEN.is_multiple_of(g.read)
        && WRITE_BUF_LEN.is_multiple_of(g.write)
        && g.erase.is_multiple_of(g.read)
        && g.erase.is_multiple_of(g.write)
        && (SECTOR_SIZE as usize).is_multiple_of(g.erase);
    if ok {
        Ok(())
    } else {
        Err(SinkError::UnsupportedGeometry {
            read: g.read,
            write: g.write,
            erase: g.erase,
        })
    }
}

/// The slot to write while `running` runs: the next OTA slot after it (`ota_0` after
/// factory), never `running` itself (`esp_ota_get_next_update_partition`).
fn plan_target<E>(
    layout: &SlotLayout,
    running: AppSlot,
    geometry: FlashGeometry,
) -> Result<UpdateTarget, SinkError<E>> {
    check_geometry(geometry)?;
    let count = layout.ota_count;
    let slot = match running {
        AppSlot::Factory if count >= 1 => 0,
        AppSlot::Ota(r) if count >= 2 => (r % count + 1) % count,
        _ => return Err(SinkError::NoOtaSlots),
    };
    let (offset, size) = layout
        .slots
        .get(usize::from(slot))
        .copied()
        .ok_or(SinkError::NoOtaSlots)?;
    let sector = SECTOR_SIZE;
    if !offset.is_multiple_of(sector) || !size.is_multiple_of(sector) || size / sector < 2 {
        return Err(SinkError::BadSlot { slot, offset, size });
    }
    let capacity = size - sector;
    Ok(UpdateTarget {
        slot,
        offset,
        size,
        capacity,
        journal: offset + capacity,
    })
}

/// Where to resume `image` given the journal's newest record: its offset if it is for the
/// same id and size and is a sector boundary within the image; `None` (start clean) else.
fn resume_offset(
    rec: Option<&JournalRecord>,
    image: &ImageDescriptor,
    target: &UpdateTarget,
    sector: u32,
) -> Option<u32> {
    let rec = rec?;
    let usable = !rec.is_erase_progress()
        && rec.id == image.id
        && rec.size == image.size
        && rec.offset <= image.size
        && rec.offset <= target.capacity
        && rec.offset.is_multiple_of(sector);
    usable.then_some(rec.offset)
}

/// The bytes from the slot start that an erase-progress record
/// ([`JournalRecord::erase_progress`]) says are erased: its offset if it is for this slot's
/// image area (`size` = capacity) and a sector boundary within it; `None` for any other
/// record.
fn recorded_erased(rec: &JournalRecord, target: &UpdateTarget) -> Option<u32> {
    let usable = rec.is_erase_progress()
        && rec.size == target.capacity
        && rec.offset <= target.capacity
        && rec.offset.is_multiple_of(SECTOR_SIZE);
    usable.then_some(rec.offset)
}

/// How far from the slot start `begin` may take the slot as erased for an image of `size`
/// bytes, once it reads back erased: what the journal's erase-progress record covers, up to
/// the end of the image's last sector. 0 without such a record.
fn erased_claim(rec: Option<&JournalRecord>, target: &UpdateTarget, size: u32) -> u32 {
    let image_end = size.div_ceil(SECTOR_SIZE).saturating_mul(SECTOR_SIZE);
    rec.and_then(|r| recorded_erased(r, target))
        .map_or(0, |erased| erased.min(image_end))
}

/// What the journal's newest record says about the slot for idle erasing.
fn idle_state(rec: Option<&JournalRecord>, target: &UpdateTarget) -> IdleEraseState {
    let total = target.capacity;
    match rec {
        Some(r) if !r.is_erase_progress() => IdleEraseState::DownloadPending {
            offset: r.offset,
            size: r.size,
        },
        rec => match rec.and_then(|r| recorded_erased(r, target)).unwrap_or(0) {
            erased if erased >= total => IdleEraseState::Erased { total },
            erased => IdleEraseState::Partial { erased, total },
        },
    }
}

/// The next idle-erase step: the flash range `[from, to)` to erase and the bytes from the slot
/// start recorded erased afterwards; `Ok(None)` when the image area is erased already;
/// [`SinkError::DownloadPending`] when the journal holds a download's resume point.
fn plan_idle_step<E>(
    rec: Option<&JournalRecord>,
    target: &UpdateTarget,
    unit: IdleEraseUnit,
) -> Result<Option<(u32, u32, u32)>, SinkError<E>> {
    let erased = match idle_state(rec, target) {
        IdleEraseState::DownloadPending { offset, size } => {
            return Err(SinkError::DownloadPending { offset, size });
        }
        IdleEraseState::Erased { .. } => return Ok(None),
        IdleEraseState::Partial { erased, .. } => erased,
    };
    // `erased < capacity`, both sector multiples; the slot lies inside the flash (the table
    // scanner checked it against the flash capacity): no overflow.
    let from = target.offset + erased;
    let end = target.offset + target.capacity;
    let len = match unit {
        IdleEraseUnit::Block
            if from.is_multiple_of(IDLE_ERASE_BLOCK) && end - from >= IDLE_ERASE_BLOCK =>
        {
            IDLE_ERASE_BLOCK
        }
        IdleEraseUnit::Block | IdleEraseUnit::Sector => SECTOR_SIZE,
    };
    Ok(Some((from, from + len, erased + len)))
}

/// The read-back check of a region recorded erased, in chunks of at most [`WRITE_BUF_LEN`]
/// bytes (read through the write buffer, which is empty when `begin` runs it): finds how many
/// whole sectors from its start read all `0xFF`. Stops at the first chunk that does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct BlankCheck {
    /// Flash address checked up to (a sector boundary once the check has failed).
    pos: u32,
    /// Flash address of the region end (a sector boundary).
    end: u32,
    /// No byte that is not `0xFF` seen yet.
    blank: bool,
}

impl BlankCheck {
    fn new(from: u32, end: u32) -> Self {
        BlankCheck {
            pos: from,
            end,
            blank: true,
        }
    }

    /// The next chunk to read (flash address, length); `None` when the check is over. Region
    /// ends are sector boundaries and [`WRITE_BUF_LEN`] divides a sector, so every length is
    /// [`WRITE_BUF_LEN`], a multiple of the flash's `READ_SIZE`.
    fn next_read(&self) -> Option<(u32, usize)> {
        if !self.blank || self.pos >= self.end {
            return None;
        }
        let len = (self.end - self.pos).min(WRITE_BUF_LEN as u32);
        Some((self.pos, len as usize))
    }

    /// Feeds the chunk read where [`next_read`](Self::next_read) said. A chunk with a byte
    /// that is not `0xFF` (or an empty one) ends the check at the start of its sector.
    fn feed(&mut self, chunk: &[u8]) {
        if !chunk.is_empty() && chunk.iter().all(|&b| b == 0xFF) {
            self.pos += chunk.len() as u32;
        } else {
            self.blank = false;
            self.pos = self.pos / SECTOR_SIZE * SECTOR_SIZE;
        }
    }

    /// The end of the whole sectors from the region start that read erased (flash address).
    fn erased_end(&self) -> u32 {
        self.pos
    }
}

/// The state of a valid entry selecting `slot` (the active one first), if any
/// (`esp_ota_get_state_partition`).
fn state_of(entries: &[OtaSelectEntry; 2], count: u8, slot: u8) -> Option<OtaImageState> {
    let active = select_entry(&entries[0], &entries[1]);
    let order = match active {
        Some(1) => [1, 0],
        _ => [0, 1],
    };
    order
        .iter()
        .filter_map(|&i| entries.get(i))
        .find(|e| e.is_valid() && e.slot_for(count) == Some(slot))
        .map(|e| e.state)
}

/// Where the bytes of a write go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Src {
    /// The first `n` bytes of the internal buffer.
    Buffer(usize),
    /// `len` bytes of the caller's data from `start`.
    Input { start: usize, len: usize },
}

/// One flash operation the writer needs next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// Erase `from..to`: one sector of the slot while writing; up to [`PREPARE_ERASE_MAX`]
    /// bytes of whole sectors in `prepare`.
    Erase { from: u32, to: u32 },
    /// Write bytes at `addr`.
    Program { addr: u32, src: Src },
    /// Append a journal record: the image is durable up to `offset` (a sector boundary).
    /// Appends without an erase inside a region `prepare` planned (it made room).
    Record { offset: u32 },
}

/// The write engine: decides buffering, erases, writes and journal records; does no I/O.
///
/// Offsets are slot-relative. Invariants: `flushed <= pos`, except after the final padded
/// flush; `flushed` is a multiple of `unit`; `pos - flushed == buf_len` while buffering
/// (and the buffer never crosses a sector boundary, so `pos` is in the sector holding
/// `flushed`); `erased` is a sector boundary, the sector holding `flushed` is erased iff
/// `flushed < erased`, and every sector from it up to `erased` is erased and holds nothing
/// past `flushed` (`prepare` may move `erased` several sectors ahead, and so may `begin` on
/// a slot erased in idle time, [`assume_erased`](Self::assume_erased)); nothing is ever
/// erased at or past `round_up(size, sector)` nor written at or past `round_up(size, unit)`,
/// both `<= capacity`; `recorded` is a sector boundary `<= min(flushed, size)`.
///
/// Journal records: every sector boundary the image passes is recorded, except up to the
/// record plan's `stride_last` (set by `prepare`, see [`plan_records`](Self::plan_records)),
/// where only `stride_last` and every `stride`-th boundary before it are.
#[derive(Clone, Debug)]
struct Writer {
    base: u32,
    sector: u32,
    unit: u32,
    size: u32,
    pos: u32,
    flushed: u32,
    erased: u32,
    recorded: u32,
    stride_last: u32,
    stride: u32,
    buf: [u8; WRITE_BUF_LEN],
    buf_len: usize,
}

impl Writer {
    fn new(base: u32, sector: u32, unit: u32, size: u32, resume: u32) -> Self {
        Writer {
            base,
            sector,
            unit,
            size,
            pos: resume,
            flushed: resume,
            erased: resume,
            recorded: resume,
            stride_last: resume,
            stride: 1,
            buf: [0xFF; WRITE_BUF_LEN],
            buf_len: 0,
        }
    }

    /// Takes the slot from the write position up to `end` (a sector boundary; clamped to the
    /// end of the image's last sector) as erased already: `begin` found it recorded erased in
    /// idle time and read it back erased. `prepare` and the writes then erase nothing below
    /// it. Only at a sector-aligned write position with nothing buffered (as `begin` leaves
    /// it); otherwise, or for an `end` at or before what is erased, nothing changes.
    fn assume_erased(&mut self, end: u32) {
        let image_end = self.size.div_ceil(self.sector).saturating_mul(self.sector);
        let end = end.min(image_end) / self.sector * self.sector;
        if self.buf_len == 0 && self.flushed == self.pos && self.flushed.is_multiple_of(self.sector)
        {
            self.erased = self.erased.max(end);
        }
    }

    /// The last sector boundary the journal may be asked to record for what is prepared
    /// once a `prepare` up to `end` (from [`prepare_end`](Self::prepare_end)) is done: the
    /// prepared region ends at `max(erased, end)`; records never pass the image size.
    fn record_horizon(&self, end: u32) -> u32 {
        let top = self.erased.max(end).min(self.size);
        top / self.sector * self.sector
    }

    /// Journal records the writes up to `last` (a sector boundary) append at one per sector:
    /// the boundaries after the last recorded one.
    fn records_to(&self, last: u32) -> u32 {
        last.saturating_sub(self.recorded) / self.sector
    }

    /// Plans the journal records up to `last` so that at most `room` are appended: every
    /// boundary if they fit, otherwise `last` and every `stride`-th boundary before it
    /// (`last - j * stride` sectors) after the last recorded one, with the smallest stride
    /// that fits ([`record_stride`]: `ceil(n / room)` for `n` boundaries, so
    /// `ceil(n / stride) <= room` records). Past `last`, every boundary again. A `room` of 0
    /// is taken as 1 (the sink's journal always has more).
    fn plan_records(&mut self, last: u32, room: u32) {
        self.stride = record_stride(self.records_to(last), room.max(1));
        self.stride_last = last;
    }

    /// The sector boundary to record now, if any: the largest boundary up to
    /// `min(flushed, size)`, past `recorded`, that the record plan asks for.
    fn due_record(&self) -> Option<u32> {
        let at = self.flushed.min(self.size) / self.sector * self.sector;
        if at <= self.recorded {
            return None;
        }
        if at >= self.stride_last {
            return Some(at);
        }
        // `recorded < at < stride_last`: the plan's points are `stride_last - j * step`;
        // the first one at or below `at` (none if the step does not fit below
        // `stride_last`).
        let step = u64::from(self.stride) * u64::from(self.sector);
        let behind = u64::from(self.stride_last - at).div_ceil(step.max(1)) * step;
        let due = u64::from(self.stride_last).checked_sub(behind)?;
        // `due < stride_last`: it fits a u32.
        (due > u64::from(self.recorded)).then_some(due as u32)
    }

    fn check<E>(&self, offset: u32, len: usize) -> Result<(), SinkError<E>> {
        if offset != self.pos {
            return Err(SinkError::OutOfOrder {
                expected: self.pos,
                got: offset,
            });
        }
        let end = u64::from(offset) + len as u64;
        if end > u64::from(self.size) {
            return Err(SinkError::PastImageEnd {
                size: self.size,
                end,
            });
        }
        Ok(())
    }

    /// Checks a `prepare(offset, len)` and returns the slot-relative end of the sectors it
    /// gets ready: `[offset, offset + len)` clamped to the image size, rounded up to a
    /// sector. `None` for an empty range (nothing to do).
    fn prepare_end<E>(&self, offset: u32, len: u32) -> Result<Option<u32>, SinkError<E>> {
        if offset != self.pos {
            return Err(SinkError::OutOfOrder {
                expected: self.pos,
                got: offset,
            });
        }
        let end = offset.saturating_add(len).min(self.size);
        if end <= offset {
            return Ok(None);
        }
        // `size <= capacity`, a sector multiple below the slot end: no overflow in practice;
        // saturate to a sector boundary anyway.
        let top = u32::MAX / self.sector * self.sector;
        Ok(Some(
            end.div_ceil(self.sector)
                .checked_mul(self.sector)
                .unwrap_or(top),
        ))
    }

    /// The next erase of a `prepare` up to `end` (from [`prepare_end`](Self::prepare_end)):
    /// the sectors from `erased` on, up to `end` or the next [`PREPARE_ERASE_MAX`]-aligned
    /// flash address, whichever comes first. `None` once everything up to `end` is erased.
    fn next_prepare(&self, end: u32) -> Option<Op> {
        if self.erased >= end {
            return None;
        }
        let from = self.base + self.erased;
        let block_end = u64::from(from / PREPARE_ERASE_MAX + 1) * u64::from(PREPARE_ERASE_MAX);
        // `base + end` is a flash address (the end of the image's last sector): the cast
        // of the smaller of the two is lossless.
        let to = (u64::from(self.base) + u64::from(end)).min(block_end) as u32;
        Some(Op::Erase { from, to })
    }

    /// The next operation for `input`, of which `consumed` bytes are taken already (input
    /// may be moved into the buffer). `finalize` pads and flushes the buffered tail. `None`
    /// when everything given is written or buffered. Calling again without
    /// [`commit`](Self::commit) returns the same operation.
    fn next(&mut self, input: &[u8], consumed: &mut usize, finalize: bool) -> Option<Op> {
        if let Some(offset) = self.due_record() {
            return Some(Op::Record { offset });
        }
        let src = self.next_program(input, consumed, finalize)?;
        if self.flushed >= self.erased {
            let from = self.base + self.erased;
            return Some(Op::Erase {
                from,
                to: from + self.sector,
            });
        }
        Some(Op::Program {
            addr: self.base + self.flushed,
            src,
        })
    }

    fn next_program(&mut self, input: &[u8], consumed: &mut usize, finalize: bool) -> Option<Src> {
        let unit = self.unit as usize;
        // Bytes to the end of the sector holding `flushed`: a positive multiple of `unit`.
        let room = (self.sector - self.flushed % self.sector) as usize;
        let rest = input.get(*consumed..).unwrap_or(&[]);
        if self.buf_len == 0 && rest.len() >= WRITE_BUF_LEN {
            let len = rest.len().min(room);
            return Some(Src::Input {
                start: *consumed,
                len: len - len % unit,
            });
        }
        let cap = WRITE_BUF_LEN.min(room);
        let take = rest.len().min(cap.saturating_sub(self.buf_len));
        if let (Some(dst), Some(src)) = (
            self.buf.get_mut(self.buf_len..self.buf_len + take),
            rest.get(..take),
        ) {
            dst.copy_from_slice(src);
            self.buf_len += take;
            self.pos += take as u32;
            *consumed += take;
        }
        if self.buf_len == cap {
            return Some(Src::Buffer(cap));
        }
        if finalize && self.buf_len > 0 {
            let padded = self.buf_len.div_ceil(unit) * unit;
            if let Some(pad) = self.buf.get_mut(self.buf_len..padded) {
                pad.fill(0xFF);
            }
            return Some(Src::Buffer(padded));
        }
        None
    }

    /// The bytes of a [`Src`].
    fn bytes<'a>(&'a self, src: Src, input: &'a [u8]) -> &'a [u8] {
        match src {
            Src::Buffer(n) => self.buf.get(..n).unwrap_or(&[]),
            Src::Input { start, len } => input.get(start..start + len).unwrap_or(&[]),
        }
    }

    /// Records that `op` was carried out.
    fn commit(&mut self, op: Op, consumed: &mut usize) {
        match op {
            Op::Erase { to, .. } => self.erased = to - self.base,
            Op::Program {
                src: Src::Buffer(n),
                ..
            } => {
                self.flushed += n as u32;
                self.buf_len = 0;
            }
            Op::Program {
                src: Src::Input { len, .. },
                ..
            } => {
                self.flushed += len as u32;
                self.pos += len as u32;
                *consumed += len;
            }
            Op::Record { offset } => self.recorded = offset,
        }
    }
}

/// The read-back check of `finish`: SHA-256 and image validation in one pass.
struct Verifier {
    sha: Sha256,
    validator: ImageValidator,
    size: u32,
    done: u32,
    read_size: usize,
}

impl Verifier {
    fn new(config: &SinkConfig, target: &UpdateTarget, size: u32, read_size: usize) -> Self {
        let validator = ImageValidator::new(config.chip, target.capacity)
            .with_memory_map(config.memory_map)
            .at_flash_offset(target.offset)
            .with_revisions(config.revisions);
        Verifier {
            sha: Sha256::new(),
            validator,
            size,
            done: 0,
            read_size,
        }
    }

    /// The next chunk to read: slot-relative offset and length (a multiple of `READ_SIZE`,
    /// at most [`VERIFY_BUF_LEN`]); `None` when the image is read.
    fn next_read(&self) -> Option<(u32, usize)> {
        let left = (self.size - self.done) as usize;
        if left == 0 {
            return None;
        }
        let take = left.min(VERIFY_BUF_LEN);
        let len = take.div_ceil(self.read_size) * self.read_size;
        Some((self.done, len.min(VERIFY_BUF_LEN)))
    }

    /// Feeds a chunk read at the position [`next_read`](Self::next_read) gave; bytes past
    /// the image end are ignored.
    fn feed(&mut self, chunk: &[u8]) {
        let left = (self.size - self.done) as usize;
        let used = chunk.get(..left.min(chunk.len())).unwrap_or(&[]);
        self.sha.update(used);
        // Errors are sticky in the validator; `finish` reports them.
        let _ = self.validator.update(used);
        self.done += used.len() as u32;
    }

    fn finish<E>(self, expected: &ExpectedImage<'_>) -> Result<ImageInfo, SinkError<E>> {
        let computed: [u8; 32] = self.sha.finalize().into();
        if computed != expected.sha256 {
            return Err(SinkError::HashMismatch { computed });
        }
        let info = self.validator.finish().map_err(SinkError::Image)?;
        if let Some(want) = &expected.version {
            check_declared_version(&info, want)?;
        }
        Ok(info)
    }
}

/// The version an app descriptor declares, as a [`Version`]: its text up to the first NUL,
/// with one leading `v` allowed (`git describe` style, `v1.4.2`); `None` if that is not a
/// version [`Version::parse`] accepts.
pub fn declared_version(desc: &AppDescriptor) -> Option<Version<'_>> {
    let text = desc.version_str()?;
    Version::parse(text.strip_prefix('v').unwrap_or(text)).ok()
}

/// Errors unless the image's app descriptor declares `want`.
fn check_declared_version<E>(info: &ImageInfo, want: &Version<'_>) -> Result<(), SinkError<E>> {
    let Some(desc) = &info.app_desc else {
        return Err(SinkError::VersionMismatch { declared: [0; 32] });
    };
    if declared_version(desc).as_ref() != Some(want) {
        return Err(SinkError::VersionMismatch {
            declared: desc.version,
        });
    }
    Ok(())
}

/// One step of reading `want` bytes at `addr` with granularity `read_size` (which divides
/// [`WRITE_BUF_LEN`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadStep {
    /// Read this many bytes straight into the output.
    Direct(usize),
    /// Read `len` bytes at `aligned` into a scratch buffer, use `take` bytes from `skip`.
    Bounce {
        aligned: u32,
        len: usize,
        skip: usize,
        take: usize,
    },
}

fn read_step(addr: u32, want: usize, read_size: usize) -> ReadStep {
    let skip = addr as usize % read_size;
    if skip == 0 && want >= read_size {
        return ReadStep::Direct(want - want % read_size);
    }
    let take = want.min(WRITE_BUF_LEN - skip);
    ReadStep::Bounce {
        aligned: addr - skip as u32,
        len: (skip + take).div_ceil(read_size) * read_size,
        skip,
        take,
    }
}

/// An update in progress.
#[derive(Clone, Debug)]
struct Writing {
    target: UpdateTarget,
    otadata: u32,
    ota_count: u8,
    image: ImageDescriptor,
    journal: Journal,
    writer: Writer,
}

impl Writing {
    /// The journal record for "durable up to `offset`".
    fn record(&self, offset: u32) -> JournalRecord {
        JournalRecord {
            id: self.image.id,
            size: self.image.size,
            offset,
        }
    }
}

/// What `finish` keeps of an update once the write buffer is flushed.
#[derive(Clone, Debug)]
struct Finishing {
    target: UpdateTarget,
    otadata: u32,
    ota_count: u8,
    size: u32,
    journal: Journal,
}

impl From<Writing> for Finishing {
    fn from(w: Writing) -> Self {
        Finishing {
            target: w.target,
            otadata: w.otadata,
            ota_count: w.ota_count,
            size: w.image.size,
            journal: w.journal,
        }
    }
}

// No heap to box into: the session *is* the sink's state, and it is one value per sink.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
enum Session {
    Idle,
    Writing(Writing),
    /// Activated; the image can still be read back.
    Done {
        target: UpdateTarget,
        size: u32,
    },
}

/// Everything the two shells share: configuration, the remembered running app, the session.
#[derive(Clone, Debug)]
struct Core {
    config: SinkConfig,
    running: Option<AppSlot>,
    session: Session,
    last: Option<ActivatedImage>,
}

impl Core {
    fn new(config: SinkConfig) -> Self {
        Core {
            config,
            running: None,
            session: Session::Idle,
            last: None,
        }
    }

    /// Refuses a configuration that could not check what the bootloader checks.
    fn check_config<E>(&self) -> Result<(), SinkError<E>> {
        if self.config.memory_map.is_none() {
            return Err(SinkError::NoMemoryMap {
                chip: self.config.chip.0,
            });
        }
        Ok(())
    }

    /// The running app, resolved once per sink value.
    fn running<E>(
        &mut self,
        layout: &SlotLayout,
        entries: &[OtaSelectEntry; 2],
    ) -> Result<AppSlot, SinkError<E>> {
        if let Some(r) = self.running {
            return Ok(r);
        }
        let r = resolve_running(layout, entries, self.config.running_slot)?;
        self.running = Some(r);
        Ok(r)
    }

    fn target<E>(
        &mut self,
        layout: &SlotLayout,
        entries: &[OtaSelectEntry; 2],
        geometry: FlashGeometry,
    ) -> Result<(UpdateTarget, Journal), SinkError<E>> {
        let running = self.running(layout, entries)?;
        let target = plan_target(layout, running, geometry)?;
        let journal = Journal::new(target.journal, target.offset + target.size, geometry)
            .map_err(SinkError::Journal)?;
        Ok((target, journal))
    }

    /// The update `begin` opens once the journal is read (and cleared, unless it resumes).
    fn new_writing(
        layout: &SlotLayout,
        target: UpdateTarget,
        image: &ImageDescriptor,
        journal: Journal,
        resume: u32,
        geometry: FlashGeometry,
    ) -> Writing {
        // plan_target checked the geometry: the write size is at most 64.
        let writer = Writer::new(
            target.offset,
            SECTOR_SIZE,
            geometry.write as u32,
            image.size,
            resume,
        );
        Writing {
            target,
            otadata: layout.otadata,
            ota_count: layout.ota_count,
            image: *image,
            journal,
            writer,
        }
    }

    /// Opens the session.
    fn start(&mut self, w: Writing) -> Resume {
        let resume = Resume {
            offset: w.writer.pos,
            capacity: w.target.capacity,
        };
        self.session = Session::Writing(w);
        resume
    }

    /// Closes an update in progress in this value (its durable part stays in the journal).
    fn close_update(&mut self) {
        if matches!(self.session, Session::Writing(_)) {
            self.session = Session::Idle;
        }
    }

    /// Checks that the slot the next update writes may be erased now: otadata selects the
    /// running app, and that app is confirmed (its entry is not NEW or PENDING_VERIFY).
    fn check_idle_erase<E>(
        &mut self,
        layout: &SlotLayout,
        entries: &[OtaSelectEntry; 2],
    ) -> Result<(), SinkError<E>> {
        self.check_selected(layout, entries)?;
        let state = match self.running(layout, entries)? {
            AppSlot::Ota(slot) => state_of(entries, layout.ota_count, slot),
            AppSlot::Factory => None,
        };
        match state {
            Some(state @ (OtaImageState::New | OtaImageState::PendingVerify)) => {
                Err(SinkError::NotConfirmed { state })
            }
            _ => Ok(()),
        }
    }

    fn target_view(&self) -> Option<UpdateTarget> {
        match &self.session {
            Session::Idle => None,
            Session::Writing(w) => Some(w.target),
            Session::Done { target, .. } => Some(*target),
        }
    }

    fn written(&self) -> Option<u32> {
        match &self.session {
            Session::Writing(w) => Some(w.writer.pos),
            _ => None,
        }
    }

    /// `finish` may run only once every byte is accepted.
    fn check_complete<E>(&mut self) -> Result<(), SinkError<E>> {
        let w = self.writing()?;
        if w.writer.pos != w.image.size {
            return Err(SinkError::Incomplete {
                written: w.writer.pos,
                size: w.image.size,
            });
        }
        Ok(())
    }

    /// Moves the update out of the sink, leaving it closed until the caller puts it back.
    fn take_writing<E>(&mut self) -> Result<Writing, SinkError<E>> {
        match core::mem::replace(&mut self.session, Session::Idle) {
            Session::Writing(w) => Ok(w),
            other => {
                self.session = other;
                Err(SinkError::NotStarted)
            }
        }
    }

    /// Bytes known erased from the write position on (0 outside an update).
    fn erased_ahead(&self) -> u32 {
        match &self.session {
            Session::Writing(w) => w.writer.erased.saturating_sub(w.writer.pos),
            _ => 0,
        }
    }

    fn writing<E>(&mut self) -> Result<&mut Writing, SinkError<E>> {
        match &mut self.session {
            Session::Writing(w) => Ok(w),
            _ => Err(SinkError::NotStarted),
        }
    }

    /// Splits a read of `len` bytes at `offset` into the flash part (address, length) and
    /// the part still in the write buffer.
    fn read_split<E>(&self, offset: u32, len: usize) -> Result<(u32, usize), SinkError<E>> {
        let (base, on_flash, available) = match &self.session {
            Session::Idle => return Err(SinkError::NotStarted),
            Session::Writing(w) => (w.target.offset, w.writer.flushed, w.writer.pos),
            Session::Done { target, size } => (target.offset, *size, *size),
        };
        let end = u64::from(offset) + len as u64;
        if end > u64::from(available) {
            return Err(SinkError::ReadOutOfRange {
                offset,
                len,
                available,
            });
        }
        let flash_len = u64::from(on_flash.min(available))
            .saturating_sub(u64::from(offset))
            .min(len as u64) as usize;
        Ok((base + offset, flash_len))
    }

    /// Copies the buffered (not yet written) bytes of a read into `out[flash_len..]`.
    fn read_buffered(&self, offset: u32, out: &mut [u8], flash_len: usize) {
        let Session::Writing(w) = &self.session else {
            return;
        };
        let Some(rest) = out.get_mut(flash_len..) else {
            return;
        };
        let from = (offset as usize + flash_len).saturating_sub(w.writer.flushed as usize);
        if let Some(src) = w.writer.buf.get(from..from + rest.len()) {
            rest.copy_from_slice(src);
        }
    }

    /// Keeps what verification found (in the sink, not in a future) for
    /// [`EspIdfSink::last_activated`]; `finish` clears it again if activation fails.
    fn verified<E>(
        &mut self,
        f: &Finishing,
        result: Result<ImageInfo, SinkError<E>>,
    ) -> Result<(), SinkError<E>> {
        self.last = Some(ActivatedImage {
            slot: f.target.slot,
            info: result?,
        });
        Ok(())
    }

    fn finished(&mut self, f: &Finishing) {
        self.session = Session::Done {
            target: f.target,
            size: f.size,
        };
    }

    /// Checks that otadata selects the running app before its state is changed.
    fn check_selected<E>(
        &mut self,
        layout: &SlotLayout,
        entries: &[OtaSelectEntry; 2],
    ) -> Result<(), SinkError<E>> {
        let running = self.running(layout, entries)?;
        let selected = layout.app_for(&boot_slot(entries, layout.ota_count));
        if running != selected {
            return Err(SinkError::RunningNotSelected { running, selected });
        }
        Ok(())
    }
}

fn is_verification_failure<E>(e: &SinkError<E>) -> bool {
    matches!(
        e,
        SinkError::HashMismatch { .. } | SinkError::Image(_) | SinkError::VersionMismatch { .. }
    )
}

// ---------------------------------------------------------------------------------------
// Blocking shell.
// ---------------------------------------------------------------------------------------

/// The ESP-IDF A/B slot sink over a blocking `NorFlash` that addresses the whole chip; see
/// the [module docs](self) for the layout, the flash operations and power-cut behaviour.
///
/// `F` may be `&mut Flash` so the caller keeps the flash. One sink value per boot is the
/// intended use: it remembers the running app from its first call.
#[derive(Debug)]
pub struct EspIdfSink<F> {
    flash: F,
    core: Core,
}

impl<F: NorFlash> EspIdfSink<F> {
    /// A sink over `flash`. Does no I/O; the partition table is read by each `begin`,
    /// `abort` and boot-side call.
    pub fn new(flash: F, config: SinkConfig) -> Self {
        EspIdfSink {
            flash,
            core: Core::new(config),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SinkConfig {
        &self.core.config
    }

    /// Gives the flash back. An update in progress stays resumable from the journal.
    pub fn into_inner(self) -> F {
        self.flash
    }

    /// The slot being written (after `begin`) or just activated (after `finish`).
    pub fn target(&self) -> Option<UpdateTarget> {
        self.core.target_view()
    }

    /// Bytes accepted in the current update (including up to [`WRITE_BUF_LEN`] buffered
    /// ones that are not on flash yet); `None` if no update is in progress.
    pub fn written(&self) -> Option<u32> {
        self.core.written()
    }

    /// The image the most recent `finish` of this sink activated; `None` if none has run
    /// or the most recent one failed.
    pub fn last_activated(&self) -> Option<&ActivatedImage> {
        self.core.last.as_ref()
    }

    /// Reads the partition table (up to its end marker) and both otadata entries.
    fn read_layout(&mut self) -> Result<(SlotLayout, [OtaSelectEntry; 2]), SinkError<F::Error>> {
        let layout = read_table(&mut self.flash, self.core.config.partition_table_offset)?;
        let entries = self.otadata(&layout)?.read_entries().map_err(otadata_err)?;
        Ok((layout, entries))
    }

    fn otadata(&mut self, layout: &SlotLayout) -> Result<Otadata<&mut F>, SinkError<F::Error>> {
        Otadata::new(&mut self.flash, layout.otadata, layout.ota_count)
            .map_err(SinkError::OtadataLayout)
    }

    /// What the bootloader selects from otadata now (honouring `ota_state`: ABORTED,
    /// INVALID and corrupt entries are skipped). After `finish` this is the new slot.
    pub fn boot_choice(&mut self) -> Result<BootChoice, SinkError<F::Error>> {
        let (layout, entries) = self.read_layout()?;
        Ok(boot_slot(&entries, layout.ota_count))
    }

    /// The app running now: [`SinkConfig::running_slot`], else what the bootloader selected
    /// (see there). Resolved on the first call of this sink and remembered.
    pub fn running_slot(&mut self) -> Result<AppSlot, SinkError<F::Error>> {
        let (layout, entries) = self.read_layout()?;
        self.core.running(&layout, &entries)
    }

    /// The otadata state of the running app's entry (`esp_ota_get_state_partition`):
    /// `None` if no valid entry selects it (factory, or `ota_0` booted by default).
    pub fn current_state(&mut self) -> Result<Option<OtaImageState>, SinkError<F::Error>> {
        let (layout, entries) = self.read_layout()?;
        match self.core.running(&layout, &entries)? {
            AppSlot::Ota(slot) => Ok(state_of(&entries, layout.ota_count, slot)),
            AppSlot::Factory => Ok(None),
        }
    }

    /// Confirms the running app: its entry becomes VALID, cancelling a pending rollback
    /// (`esp_ota_mark_app_valid_cancel_rollback`). No write if it is VALID already.
    /// [`SinkError::RunningNotSelected`] if otadata selects another app (nothing written);
    /// [`SinkError::Otadata`] with [`PlanError::NoActiveEntry`] if no entry is valid.
    pub fn mark_valid(&mut self) -> Result<(), SinkError<F::Error>> {
        let (layout, entries) = self.read_layout()?;
        self.core.check_selected(&layout, &entries)?;
        self.otadata(&layout)?.mark_valid().map_err(otadata_err)
    }

    /// Rejects the running app: its entry becomes INVALID so the bootloader skips it
    /// (`esp_ota_mark_app_invalid_rollback`), and returns the app the bootloader will boot
    /// after the caller resets. Same preconditions as [`mark_valid`](Self::mark_valid).
    /// Does not check that the fallback slot holds a valid image.
    pub fn mark_invalid_and_rollback(&mut self) -> Result<AppSlot, SinkError<F::Error>> {
        let (layout, entries) = self.read_layout()?;
        self.core.check_selected(&layout, &entries)?;
        let choice = self
            .otadata(&layout)?
            .mark_invalid_and_rollback()
            .map_err(otadata_err)?;
        Ok(layout.app_for(&choice))
    }

    fn do_begin(&mut self, image: &ImageDescriptor) -> Result<Resume, SinkError<F::Error>> {
        self.core.session = Session::Idle;
        self.core.check_config()?;
        let geometry = FlashGeometry::of::<F>();
        let (layout, entries) = self.read_layout()?;
        let (target, mut journal) = self.core.target(&layout, &entries, geometry)?;
        if image.size > target.capacity {
            return Err(SinkError::ImageTooLarge {
                size: image.size,
                capacity: target.capacity,
            });
        }
        let rec = journal.load(&mut self.flash).map_err(journal_err)?;
        let resume = resume_offset(rec.as_ref(), image, &target, SECTOR_SIZE);
        let mut w = Core::new_writing(
            &layout,
            target,
            image,
            journal,
            resume.unwrap_or(0),
            geometry,
        );
        if resume.is_none() {
            // Erased in idle time: what reads back erased of the sectors the image needs is
            // not erased again (the write buffer is empty: it takes the reads).
            let claim = erased_claim(rec.as_ref(), &target, image.size);
            let erased = check_erased(
                &mut self.flash,
                &mut w.writer.buf,
                target.offset,
                target.offset + claim,
            )
            .map_err(flash_err(FlashOp::ReadSlot))?;
            // Forgets the erase record (and any other) before anything is written to the
            // slot.
            w.journal.clear(&mut self.flash).map_err(journal_err)?;
            w.writer.assume_erased(erased - target.offset);
        }
        Ok(self.core.start(w))
    }

    fn do_write(&mut self, offset: u32, data: &[u8]) -> Result<(), SinkError<F::Error>> {
        self.core.writing()?.writer.check(offset, data.len())?;
        // Out of the sink while flash is touched: an error leaves the session closed.
        let mut w = self.core.take_writing()?;
        drive(&mut self.flash, &mut w, data, false)?;
        self.core.session = Session::Writing(w);
        Ok(())
    }

    fn do_prepare(&mut self, offset: u32, len: u32) -> Result<(), SinkError<F::Error>> {
        let Some(end) = self.core.writing()?.writer.prepare_end(offset, len)? else {
            return Ok(());
        };
        // Out of the sink while flash is touched: an error leaves the session closed (and
        // the next `begin` forgets what was erased ahead).
        let mut w = self.core.take_writing()?;
        let last = w.writer.record_horizon(end);
        let room = w
            .journal
            .make_room(&mut self.flash, w.writer.records_to(last))
            .map_err(journal_err)?;
        w.writer.plan_records(last, room);
        while let Some(op) = w.writer.next_prepare(end) {
            if let Op::Erase { from, to } = op {
                self.flash
                    .erase(from, to)
                    .map_err(flash_err(FlashOp::EraseSlot))?;
            }
            w.writer.commit(op, &mut 0);
        }
        self.core.session = Session::Writing(w);
        Ok(())
    }

    fn do_read(&mut self, offset: u32, out: &mut [u8]) -> Result<(), SinkError<F::Error>> {
        let (addr, flash_len) = self.core.read_split(offset, out.len())?;
        let (on_flash, _) = out.split_at_mut(flash_len);
        read_unaligned(&mut self.flash, addr, on_flash).map_err(flash_err(FlashOp::ReadSlot))?;
        self.core.read_buffered(offset, out, flash_len);
        Ok(())
    }

    fn do_finish(&mut self, expected: &ExpectedImage<'_>) -> Result<(), SinkError<F::Error>> {
        self.core.check_complete()?;
        self.core.last = None;
        let mut w = self.core.take_writing()?;
        drive(&mut self.flash, &mut w, &[], true)?;
        let mut done = Finishing::from(w);
        let verified = verify(&mut self.flash, &done, &self.core.config, expected);
        if let Err(e) = self.core.verified(&done, verified) {
            if is_verification_failure(&e) {
                // Best effort: the error that matters is the verification failure.
                let _ = done.journal.clear(&mut self.flash);
            }
            return Err(e);
        }
        let state = self.core.config.new_slot_state();
        let activated = match Otadata::new(&mut self.flash, done.otadata, done.ota_count) {
            Ok(mut o) => o.activate(done.target.slot, state).map_err(otadata_err),
            Err(e) => Err(SinkError::OtadataLayout(e)),
        };
        if let Err(e) = activated {
            self.core.last = None;
            return Err(e);
        }
        // Best effort: a stale record in the now-selected slot is only read when that slot
        // is the target again, and finish re-verifies whatever it resumes.
        let _ = done.journal.clear(&mut self.flash);
        self.core.finished(&done);
        Ok(())
    }

    fn do_abort(&mut self) -> Result<(), SinkError<F::Error>> {
        let session = core::mem::replace(&mut self.core.session, Session::Idle);
        let mut journal = match session {
            Session::Writing(w) => w.journal,
            Session::Idle | Session::Done { .. } => {
                let (_, journal, rec) = self.next_slot(false)?;
                if rec.is_some_and(|r| r.is_erase_progress()) {
                    // Idle-erase progress is not a download: keep it.
                    return Ok(());
                }
                journal
            }
        };
        journal.clear(&mut self.flash).map_err(journal_err)
    }

    /// Erases the next unit of the slot the next update will write, and records it; see
    /// [Erasing the next slot while idle](self#erasing-the-next-slot-while-idle).
    ///
    /// One step: reads the partition table, otadata and the target slot's journal (about
    /// a hundred small reads), erases one unit ([`SinkConfig::idle_erase_unit`]: a 64 KiB
    /// block where aligned, else a 4 KiB sector) after what the journal records as erased,
    /// then appends an erase-progress record. Returns [`IdleErase::Progress`] while more
    /// remains, [`IdleErase::Done`] once the slot's image area is erased (a call then
    /// erases nothing). The running slot and otadata are never written.
    ///
    /// Refused, with nothing written: [`SinkError::RunningNotSelected`] if otadata selects
    /// another app than the running one (after `finish`, before the reset);
    /// [`SinkError::NotConfirmed`] if the running app's entry is NEW or PENDING_VERIFY (call
    /// [`mark_valid`](Self::mark_valid) first: the slot holds the rollback image);
    /// [`SinkError::DownloadPending`] if the slot holds a download's resume point (finish it,
    /// or [`abort`](OtaSink::abort) it). Before it erases, an update in progress in this sink
    /// value is closed, as `begin` would close it. On a flash error, or a power cut, call
    /// again: the next step redoes at most the unit that was in progress (a cut during a
    /// journal wrap starts the pass over).
    ///
    /// The slot is the next one after the app this sink takes for the running one, as for
    /// `begin`: pass [`SinkConfig::running_slot`] on a device. A sink value made after
    /// `finish` and before the reset, with `running_slot` `None`, would take the
    /// just-activated slot for the running one and erase the slot the app runs from.
    pub fn erase_idle_step(&mut self) -> Result<IdleErase, SinkError<F::Error>> {
        let (target, mut journal, rec) = self.next_slot(true)?;
        let unit = self.core.config.idle_erase_unit;
        let Some((from, to, erased)) = plan_idle_step(rec.as_ref(), &target, unit)? else {
            return Ok(IdleErase::Done);
        };
        self.core.close_update();
        self.flash
            .erase(from, to)
            .map_err(flash_err(FlashOp::EraseSlot))?;
        journal
            .record(
                &mut self.flash,
                &JournalRecord::erase_progress(target.capacity, erased),
            )
            .map_err(journal_err)?;
        Ok(IdleErase::after(erased, target.capacity))
    }

    /// What the slot the next update writes holds, as its journal records it: how much of it
    /// is erased ([`IdleEraseState::is_erased`] once all of it is), or that it holds a
    /// download's resume point. Only reads (the partition table, otadata, the journal).
    pub fn idle_erase_state(&mut self) -> Result<IdleEraseState, SinkError<F::Error>> {
        let (target, _, rec) = self.next_slot(false)?;
        Ok(idle_state(rec.as_ref(), &target))
    }

    /// The slot the next update writes, its journal and the journal's newest record (with
    /// `idle_erase`: after [`Core::check_idle_erase`]).
    fn next_slot(
        &mut self,
        idle_erase: bool,
    ) -> Result<(UpdateTarget, Journal, Option<JournalRecord>), SinkError<F::Error>> {
        let (layout, entries) = self.read_layout()?;
        if idle_erase {
            self.core.check_idle_erase(&layout, &entries)?;
        }
        let (target, mut journal) =
            self.core
                .target(&layout, &entries, FlashGeometry::of::<F>())?;
        let rec = journal.load(&mut self.flash).map_err(journal_err)?;
        Ok((target, journal, rec))
    }
}

/// Reads the flash addresses `[from, to)` (sector boundaries) through `buf` and returns the
/// end of the whole sectors from `from` that read all `0xFF` ([`BlankCheck`]).
fn check_erased<F: NorFlash>(
    flash: &mut F,
    buf: &mut [u8; WRITE_BUF_LEN],
    from: u32,
    to: u32,
) -> Result<u32, F::Error> {
    let mut check = BlankCheck::new(from, to);
    while let Some((addr, len)) = check.next_read() {
        let chunk = buf.get_mut(..len).unwrap_or(&mut []);
        flash.read(addr, chunk)?;
        check.feed(chunk);
    }
    Ok(check.erased_end())
}

/// Runs the write engine over `data` until it is written or buffered (`finalize`: and the
/// buffered tail padded and written).
fn drive<F: NorFlash>(
    flash: &mut F,
    w: &mut Writing,
    data: &[u8],
    finalize: bool,
) -> Result<(), SinkError<F::Error>> {
    let mut consumed = 0;
    while let Some(op) = w.writer.next(data, &mut consumed, finalize) {
        match op {
            Op::Erase { from, to } => flash
                .erase(from, to)
                .map_err(flash_err(FlashOp::EraseSlot))?,
            Op::Program { addr, src } => flash
                .write(addr, w.writer.bytes(src, data))
                .map_err(flash_err(FlashOp::WriteSlot))?,
            Op::Record { offset } => w
                .journal
                .record(flash, &w.record(offset))
                .map_err(journal_err)?,
        }
        w.writer.commit(op, &mut consumed);
    }
    Ok(())
}

/// Reads the image back through a [`VERIFY_BUF_LEN`]-byte buffer and checks it. Out of line:
/// its buffer and validator (about 0.8 KiB) then take stack only while `finish` runs, not in
/// every frame it would be inlined into.
#[inline(never)]
fn verify<F: NorFlash>(
    flash: &mut F,
    w: &Finishing,
    config: &SinkConfig,
    expected: &ExpectedImage<'_>,
) -> Result<ImageInfo, SinkError<F::Error>> {
    let mut v = Verifier::new(config, &w.target, w.size, F::READ_SIZE);
    let mut buf = [0u8; VERIFY_BUF_LEN];
    while let Some((at, len)) = v.next_read() {
        let chunk = buf.get_mut(..len).unwrap_or(&mut []);
        flash
            .read(w.target.offset + at, chunk)
            .map_err(flash_err(FlashOp::ReadSlot))?;
        v.feed(chunk);
    }
    v.finish(expected)
}

/// Reads `out.len()` bytes at any `addr`, honouring `READ_SIZE`.
fn read_unaligned<F: NorFlash>(flash: &mut F, addr: u32, out: &mut [u8]) -> Result<(), F::Error> {
    let mut done = 0;
    while let Some(rest) = out.get_mut(done..).filter(|r| !r.is_empty()) {
        let at = addr + done as u32;
        match read_step(at, rest.len(), F::READ_SIZE) {
            ReadStep::Direct(n) => {
                flash.read(at, rest.get_mut(..n).unwrap_or(&mut []))?;
                done += n;
            }
            ReadStep::Bounce {
                aligned,
                len,
                skip,
                take,
            } => {
                let mut scratch = [0u8; WRITE_BUF_LEN];
                flash.read(aligned, scratch.get_mut(..len).unwrap_or(&mut []))?;
                if let (Some(dst), Some(src)) =
                    (rest.get_mut(..take), scratch.get(skip..skip + take))
                {
                    dst.copy_from_slice(src);
                }
                done += take.max(1);
            }
        }
    }
    Ok(())
}

/// The ESP-IDF sink contract on a blocking flash; see the [module docs](self).
///
/// Errors: see [`SinkError`]. After a flash error in `write`, `prepare` or `finish`, call
/// `begin` again: it resumes at the last recorded sector boundary.
impl<F: NorFlash> OtaSink for EspIdfSink<F> {
    type Error = SinkError<F::Error>;

    /// Picks the target slot, checks the image fits, and resumes (same id and size in the
    /// journal) or starts clean. Drops any update in progress in this value (its durable
    /// part stays in the journal).
    fn begin(&mut self, image: &ImageDescriptor) -> Result<Resume, Self::Error> {
        self.do_begin(image)
    }

    fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), Self::Error> {
        self.do_write(offset, data)
    }

    /// Reads from flash, and from the write buffer for the last few bytes not written yet.
    /// Works during an update and after `finish` (the activated image).
    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), Self::Error> {
        self.do_read(offset, buf)
    }

    /// Makes the writes of `[offset, offset + len)` erase nothing (see the
    /// [module docs](self)): wraps the journal early if the records they will append do not
    /// fit (recording sparsely if they do not fit even an empty journal), then erases the
    /// sectors this session has not erased yet. `offset` must be the write position
    /// ([`SinkError::OutOfOrder`] otherwise, changing nothing); the range is clamped to the
    /// image end, so a `len` past it (even `u32::MAX`) is fine and an empty range does
    /// nothing. Each slot `erase` call covers at most [`PREPARE_ERASE_MAX`] bytes. A flash
    /// error closes the session like one in `write`: `begin` again.
    fn prepare(&mut self, offset: u32, len: u32) -> Result<(), Self::Error> {
        self.do_prepare(offset, len)
    }

    fn finish(&mut self, expected: &ExpectedImage<'_>) -> Result<(), Self::Error> {
        self.do_finish(expected)
    }

    fn abort(&mut self) -> Result<(), Self::Error> {
        self.do_abort()
    }

    /// The flash's `WRITE_SIZE`.
    fn write_size(&self) -> u32 {
        F::WRITE_SIZE as u32
    }

    /// What `begin` found erased ahead of the write position (a slot erased in idle time).
    fn erased_ahead(&self) -> u32 {
        self.core.erased_ahead()
    }
}

// ---------------------------------------------------------------------------------------
// Async shell: the blocking shell's I/O with `.await`; every decision is in `Core`,
// `Writer`, `Verifier` and the plans above.
// ---------------------------------------------------------------------------------------

/// The async twin of [`EspIdfSink`], over `embedded_storage_async::nor_flash::NorFlash`.
/// Same layout, rules and errors; only the waiting differs.
///
/// Cancel safety: `read`, [`boot_choice`](Self::boot_choice),
/// [`running_slot`](Self::running_slot), [`current_state`](Self::current_state) and
/// [`idle_erase_state`](Self::idle_erase_state) only read and are cancel-safe. Cancelling
/// `begin`, `write`, `prepare`, `finish`, `abort`, [`mark_valid`](Self::mark_valid),
/// [`mark_invalid_and_rollback`](Self::mark_invalid_and_rollback) or
/// [`erase_idle_step`](Self::erase_idle_step) mid-way has the effect of a power cut at that
/// point on flash, and a cancelled `begin`,
/// `write`, `prepare` or `finish` closes the update like an error does: the next `write` or
/// `finish` returns [`SinkError::NotStarted`]; call `begin` again to resume from the
/// journal.
#[derive(Debug)]
pub struct AsyncEspIdfSink<F> {
    flash: F,
    core: Core,
}

impl<F: AsyncNorFlash> AsyncEspIdfSink<F> {
    /// See [`EspIdfSink::new`].
    pub fn new(flash: F, config: SinkConfig) -> Self {
        AsyncEspIdfSink {
            flash,
            core: Core::new(config),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SinkConfig {
        &self.core.config
    }

    /// Gives the flash back.
    pub fn into_inner(self) -> F {
        self.flash
    }

    /// See [`EspIdfSink::target`].
    pub fn target(&self) -> Option<UpdateTarget> {
        self.core.target_view()
    }

    /// See [`EspIdfSink::written`].
    pub fn written(&self) -> Option<u32> {
        self.core.written()
    }

    /// See [`EspIdfSink::last_activated`].
    pub fn last_activated(&self) -> Option<&ActivatedImage> {
        self.core.last.as_ref()
    }

    async fn read_layout(
        &mut self,
    ) -> Result<(SlotLayout, [OtaSelectEntry; 2]), SinkError<F::Error>> {
        let layout = {
            // Held across the reads: the scanner (about 0.5 KiB) and one chunk.
            let offset = self.core.config.partition_table_offset;
            let mut scan = Scanner::with_flash_capacity(self.flash.capacity());
            let mut read = 0;
            loop {
                let mut chunk = [0u8; TABLE_CHUNK];
                self.flash
                    .read(offset + read as u32, &mut chunk)
                    .await
                    .map_err(flash_err(FlashOp::ReadPartitionTable))?;
                read += TABLE_CHUNK;
                if scan_chunk(&mut scan, &chunk) || read >= TABLE_BUF_LEN {
                    break;
                }
            }
            layout_from_scan(&scan, read)?
        };
        let entries = self
            .otadata(&layout)?
            .read_entries()
            .await
            .map_err(otadata_err)?;
        Ok((layout, entries))
    }

    fn otadata(
        &mut self,
        layout: &SlotLayout,
    ) -> Result<AsyncOtadata<&mut F>, SinkError<F::Error>> {
        AsyncOtadata::new(&mut self.flash, layout.otadata, layout.ota_count)
            .map_err(SinkError::OtadataLayout)
    }

    /// See [`EspIdfSink::boot_choice`].
    pub async fn boot_choice(&mut self) -> Result<BootChoice, SinkError<F::Error>> {
        let (layout, entries) = self.read_layout().await?;
        Ok(boot_slot(&entries, layout.ota_count))
    }

    /// See [`EspIdfSink::running_slot`].
    pub async fn running_slot(&mut self) -> Result<AppSlot, SinkError<F::Error>> {
        let (layout, entries) = self.read_layout().await?;
        self.core.running(&layout, &entries)
    }

    /// See [`EspIdfSink::current_state`].
    pub async fn current_state(&mut self) -> Result<Option<OtaImageState>, SinkError<F::Error>> {
        let (layout, entries) = self.read_layout().await?;
        match self.core.running(&layout, &entries)? {
            AppSlot::Ota(slot) => Ok(state_of(&entries, layout.ota_count, slot)),
            AppSlot::Factory => Ok(None),
        }
    }

    /// See [`EspIdfSink::mark_valid`].
    pub async fn mark_valid(&mut self) -> Result<(), SinkError<F::Error>> {
        let (layout, entries) = self.read_layout().await?;
        self.core.check_selected(&layout, &entries)?;
        self.otadata(&layout)?
            .mark_valid()
            .await
            .map_err(otadata_err)
    }

    /// See [`EspIdfSink::mark_invalid_and_rollback`].
    pub async fn mark_invalid_and_rollback(&mut self) -> Result<AppSlot, SinkError<F::Error>> {
        let (layout, entries) = self.read_layout().await?;
        self.core.check_selected(&layout, &entries)?;
        let choice = self
            .otadata(&layout)?
            .mark_invalid_and_rollback()
            .await
            .map_err(otadata_err)?;
        Ok(layout.app_for(&choice))
    }

    async fn do_begin(&mut self, image: &ImageDescriptor) -> Result<Resume, SinkError<F::Error>> {
        self.core.session = Session::Idle;
        self.core.check_config()?;
        let geometry = FlashGeometry::of_async::<F>();
        let (layout, entries) = self.read_layout().await?;
        let (target, mut journal) = self.core.target(&layout, &entries, geometry)?;
        if image.size > target.capacity {
            return Err(SinkError::ImageTooLarge {
                size: image.size,
                capacity: target.capacity,
            });
        }
        let rec = journal
            .load_async(&mut self.flash)
            .await
            .map_err(journal_err)?;
        let resume = resume_offset(rec.as_ref(), image, &target, SECTOR_SIZE);
        let mut w = Core::new_writing(
            &layout,
            target,
            image,
            journal,
            resume.unwrap_or(0),
            geometry,
        );
        if resume.is_none() {
            let claim = erased_claim(rec.as_ref(), &target, image.size);
            let erased = check_erased_async(
                &mut self.flash,
                &mut w.writer.buf,
                target.offset,
                target.offset + claim,
            )
            .await
            .map_err(flash_err(FlashOp::ReadSlot))?;
            w.journal
                .clear_async(&mut self.flash)
                .await
                .map_err(journal_err)?;
            w.writer.assume_erased(erased - target.offset);
        }
        Ok(self.core.start(w))
    }

    async fn do_write(&mut self, offset: u32, data: &[u8]) -> Result<(), SinkError<F::Error>> {
        self.core.writing()?.writer.check(offset, data.len())?;
        // Out of the sink while flash is touched: an error or a cancellation leaves the
        // session closed.
        let mut w = self.core.take_writing()?;
        drive_async(&mut self.flash, &mut w, data, false).await?;
        self.core.session = Session::Writing(w);
        Ok(())
    }

    async fn do_prepare(&mut self, offset: u32, len: u32) -> Result<(), SinkError<F::Error>> {
        let Some(end) = self.core.writing()?.writer.prepare_end(offset, len)? else {
            return Ok(());
        };
        // Out of the sink while flash is touched: an error or a cancellation leaves the
        // session closed.
        let mut w = self.core.take_writing()?;
        let last = w.writer.record_horizon(end);
        let room = w
            .journal
            .make_room_async(&mut self.flash, w.writer.records_to(last))
            .await
            .map_err(journal_err)?;
        w.writer.plan_records(last, room);
        while let Some(op) = w.writer.next_prepare(end) {
            if let Op::Erase { from, to } = op {
                self.flash
                    .erase(from, to)
                    .await
                    .map_err(flash_err(FlashOp::EraseSlot))?;
            }
            w.writer.commit(op, &mut 0);
        }
        self.core.session = Session::Writing(w);
        Ok(())
    }

    async fn do_read(&mut self, offset: u32, out: &mut [u8]) -> Result<(), SinkError<F::Error>> {
        let (addr, flash_len) = self.core.read_split(offset, out.len())?;
        let (on_flash, _) = out.split_at_mut(flash_len);
        read_unaligned_async(&mut self.flash, addr, on_flash)
            .await
            .map_err(flash_err(FlashOp::ReadSlot))?;
        self.core.read_buffered(offset, out, flash_len);
        Ok(())
    }

    async fn do_finish(&mut self, expected: &ExpectedImage<'_>) -> Result<(), SinkError<F::Error>> {
        self.core.check_complete()?;
        self.core.last = None;
        let mut w = self.core.take_writing()?;
        drive_async(&mut self.flash, &mut w, &[], true).await?;
        let mut done = Finishing::from(w);
        let verified = verify_async(&mut self.flash, &done, &self.core.config, expected).await;
        if let Err(e) = self.core.verified(&done, verified) {
            if is_verification_failure(&e) {
                let _ = done.journal.clear_async(&mut self.flash).await;
            }
            return Err(e);
        }
        let state = self.core.config.new_slot_state();
        let activated = match AsyncOtadata::new(&mut self.flash, done.otadata, done.ota_count) {
            Ok(mut o) => o
                .activate(done.target.slot, state)
                .await
                .map_err(otadata_err),
            Err(e) => Err(SinkError::OtadataLayout(e)),
        };
        if let Err(e) = activated {
            self.core.last = None;
            return Err(e);
        }
        let _ = done.journal.clear_async(&mut self.flash).await;
        self.core.finished(&done);
        Ok(())
    }

    async fn do_abort(&mut self) -> Result<(), SinkError<F::Error>> {
        let session = core::mem::replace(&mut self.core.session, Session::Idle);
        let mut journal = match session {
            Session::Writing(w) => w.journal,
            Session::Idle | Session::Done { .. } => {
                let (_, journal, rec) = self.next_slot(false).await?;
                if rec.is_some_and(|r| r.is_erase_progress()) {
                    return Ok(());
                }
                journal
            }
        };
        journal
            .clear_async(&mut self.flash)
            .await
            .map_err(journal_err)
    }

    /// See [`EspIdfSink::erase_idle_step`]. Cancelling it has the effect of a power cut at
    /// that point (the next step redoes at most the unit in progress).
    pub async fn erase_idle_step(&mut self) -> Result<IdleErase, SinkError<F::Error>> {
        let (target, mut journal, rec) = self.next_slot(true).await?;
        let unit = self.core.config.idle_erase_unit;
        let Some((from, to, erased)) = plan_idle_step(rec.as_ref(), &target, unit)? else {
            return Ok(IdleErase::Done);
        };
        self.core.close_update();
        self.flash
            .erase(from, to)
            .await
            .map_err(flash_err(FlashOp::EraseSlot))?;
        journal
            .record_async(
                &mut self.flash,
                &JournalRecord::erase_progress(target.capacity, erased),
            )
            .await
            .map_err(journal_err)?;
        Ok(IdleErase::after(erased, target.capacity))
    }

    /// See [`EspIdfSink::idle_erase_state`]. Cancel-safe (it only reads).
    pub async fn idle_erase_state(&mut self) -> Result<IdleEraseState, SinkError<F::Error>> {
        let (target, _, rec) = self.next_slot(false).await?;
        Ok(idle_state(rec.as_ref(), &target))
    }

    /// See [`EspIdfSink::next_slot`].
    async fn next_slot(
        &mut self,
        idle_erase: bool,
    ) -> Result<(UpdateTarget, Journal, Option<JournalRecord>), SinkError<F::Error>> {
        let (layout, entries) = self.read_layout().await?;
        if idle_erase {
            self.core.check_idle_erase(&layout, &entries)?;
        }
        let (target, mut journal) =
            self.core
                .target(&layout, &entries, FlashGeometry::of_async::<F>())?;
        let rec = journal
            .load_async(&mut self.flash)
            .await
            .map_err(journal_err)?;
        Ok((target, journal, rec))
    }
}

/// The async twin of [`check_erased`].
async fn check_erased_async<F: AsyncNorFlash>(
    flash: &mut F,
    buf: &mut [u8; WRITE_BUF_LEN],
    from: u32,
    to: u32,
) -> Result<u32, F::Error> {
    let mut check = BlankCheck::new(from, to);
    while let Some((addr, len)) = check.next_read() {
        let chunk = buf.get_mut(..len).unwrap_or(&mut []);
        flash.read(addr, chunk).await?;
        check.feed(chunk);
    }
    Ok(check.erased_end())
}

/// The async twin of [`drive`].
async fn drive_async<F: AsyncNorFlash>(
    flash: &mut F,
    w: &mut Writing,
    data: &[u8],
    finalize: bool,
) -> Result<(), SinkError<F::Error>> {
    let mut consumed = 0;
    while let Some(op) = w.writer.next(data, &mut consumed, finalize) {
        match op {
            Op::Erase { from, to } => flash
                .erase(from, to)
                .await
                .map_err(flash_err(FlashOp::EraseSlot))?,
            Op::Program { addr, src } => flash
                .write(addr, w.writer.bytes(src, data))
                .await
                .map_err(flash_err(FlashOp::WriteSlot))?,
            Op::Record { offset } => w
                .journal
                .record_async(flash, &w.record(offset))
                .await
                .map_err(journal_err)?,
        }
        w.writer.commit(op, &mut consumed);
    }
    Ok(())
}

/// The async twin of [`verify`].
async fn verify_async<F: AsyncNorFlash>(
    flash: &mut F,
    w: &Finishing,
    config: &SinkConfig,
    expected: &ExpectedImage<'_>,
) -> Result<ImageInfo, SinkError<F::Error>> {
    let mut v = Verifier::new(config, &w.target, w.size, F::READ_SIZE);
    let mut buf = [0u8; VERIFY_BUF_LEN];
    while let Some((at, len)) = v.next_read() {
        let chunk = buf.get_mut(..len).unwrap_or(&mut []);
        flash
            .read(w.target.offset + at, chunk)
            .await
            .map_err(flash_err(FlashOp::ReadSlot))?;
        v.feed(chunk);
    }
    v.finish(expected)
}

/// The async twin of [`read_unaligned`].
async fn read_unaligned_async<F: AsyncNorFlash>(
    flash: &mut F,
    addr: u32,
    out: &mut [u8],
) -> Result<(), F::Error> {
    let mut done = 0;
    while let Some(rest) = out.get_mut(done..).filter(|r| !r.is_empty()) {
        let at = addr + done as u32;
        match read_step(at, rest.len(), F::READ_SIZE) {
            ReadStep::Direct(n) => {
                flash.read(at, rest.get_mut(..n).unwrap_or(&mut [])).await?;
                done += n;
            }
            ReadStep::Bounce {
                aligned,
                len,
                skip,
                take,
            } => {
                let mut scratch = [0u8; WRITE_BUF_LEN];
                flash
                    .read(aligned, scratch.get_mut(..len).unwrap_or(&mut []))
                    .await?;
                if let (Some(dst), Some(src)) =
                    (rest.get_mut(..take), scratch.get(skip..skip + take))
                {
                    dst.copy_from_slice(src);
                }
                done += take.max(1);
            }
        }
    }
    Ok(())
}

/// The ESP-IDF sink contract on an async flash; see [`EspIdfSink`]'s implementation of
/// [`OtaSink`] and the cancel-safety notes on [`AsyncEspIdfSink`].
impl<F: AsyncNorFlash> AsyncOtaSink for AsyncEspIdfSink<F> {
    type Error = SinkError<F::Error>;

    async fn begin(&mut self, image: &ImageDescriptor) -> Result<Resume, Self::Error> {
        self.do_begin(image).await
    }

    async fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), Self::Error> {
        self.do_write(offset, data).await
    }

    async fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), Self::Error> {
        self.do_read(offset, buf).await
    }

    async fn prepare(&mut self, offset: u32, len: u32) -> Result<(), Self::Error> {
        self.do_prepare(offset, len).await
    }

    async fn finish(&mut self, expected: &ExpectedImage<'_>) -> Result<(), Self::Error> {
        self.do_finish(expected).await
    }

    async fn abort(&mut self) -> Result<(), Self::Error> {
        self.do_abort().await
    }

    /// The flash's `WRITE_SIZE`.
    fn write_size(&self) -> u32 {
        F::WRITE_SIZE as u32
    }

    /// What `begin` found erased ahead of the write position (a slot erased in idle time).
    fn erased_ahead(&self) -> u32 {
        self.core.erased_ahead()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use std::vec;
    use std::vec::Vec;

    const SECTOR: u32 = 4096;

    /// Runs the write engine over `data[resume..]` in `chunks` against a model slot that
    /// enforces erase-before-write and checks every operation; returns the slot and the
    /// journal offsets recorded.
    fn simulate(data: &[u8], resume: u32, chunks: &[usize], unit: u32) -> (Vec<u8>, Vec<u32>) {
        let sim = simulate_prepared(data, resume, chunks, unit, Prep::Never, JOURNAL_ROOM);
        (sim.slot, sim.records)
    }

    /// Records a journal sector of 4 KiB holds before it wraps (85 slots of 48 bytes, the
    /// last reserved for the tombstone).
    const JOURNAL_ROOM: u32 = 84;

    /// What [`simulate_prepared`] saw.
    struct Sim {
        /// The slot's bytes afterwards.
        slot: Vec<u8>,
        /// The journal offsets recorded, in order.
        records: Vec<u32>,
        /// Slot erases the writes (not `prepare`) did.
        write_erases: usize,
        /// Journal wraps the writes did (each one a journal sector erase).
        write_wraps: usize,
        /// Early journal wraps `prepare` did (`make_room` compacting).
        prepare_wraps: usize,
        /// The largest record stride `prepare` planned.
        max_stride: u32,
    }

    /// A model of the journal's room: `next` slots used of `cap + 1` (the last one is the
    /// tombstone reserve), and whether a progress record is the newest.
    struct JournalModel {
        cap: u32,
        next: u32,
        latest: bool,
    }

    impl JournalModel {
        /// `Journal::record`: true if it had to wrap (erase).
        fn record(&mut self) -> bool {
            let wrap = self.next >= self.cap;
            self.next = if wrap { 1 } else { self.next + 1 };
            self.latest = true;
            wrap
        }

        /// `Journal::make_room`: the room afterwards and whether it compacted (erase).
        fn make_room(&mut self, want: u32) -> (u32, bool) {
            let room = self.cap - self.next;
            let compacted = self.cap - u32::from(self.latest);
            if record_stride(want, compacted) < record_stride(want, room) {
                self.next = u32::from(self.latest);
                return (compacted, true);
            }
            (room, false)
        }
    }

    /// When [`simulate_prepared`] calls `prepare`.
    #[derive(Clone, Copy, Debug)]
    enum Prep {
        Never,
        /// `prepare(pos, len)` before each chunk.
        EachChunk(u32),
        /// The update flow's way: `prepare(pos, len)` at the start of each `len`-byte range,
        /// chunks cut at the range end (`u32::MAX`: one prepare for the whole image).
        Ranges(u32),
    }

    /// [`simulate`], calling `prepare` as `prep` says, the way the sink does: the journal (a
    /// model holding `journal_room` records before it wraps) makes room for the records the
    /// prepared region needs, then the writer plans its records and the sectors are erased.
    fn simulate_prepared(
        data: &[u8],
        resume: u32,
        chunks: &[usize],
        unit: u32,
        prep: Prep,
        journal_room: u32,
    ) -> Sim {
        let size = data.len() as u32;
        let slot_len = (80 * SECTOR as usize).max(data.len().div_ceil(4096) * 4096 + 4096);
        // Old contents: the durable prefix, then non-erased junk.
        let mut slot = vec![0x5Au8; slot_len];
        slot[..resume as usize].copy_from_slice(&data[..resume as usize]);
        let mut erased = vec![false; slot_len / SECTOR as usize];
        let mut records = Vec::new();
        // begin: a resumed journal holds the resume record; a fresh one is cleared.
        let journal = core::cell::RefCell::new(JournalModel {
            cap: journal_room,
            next: u32::from(resume > 0),
            latest: resume > 0,
        });
        let mut write_wraps = 0;
        let mut w = Writer::new(0, SECTOR, unit, size, resume);
        let mut apply = |op: Op, w: &Writer, input: &[u8], slot: &mut Vec<u8>| match op {
            Op::Erase { from, to } => {
                assert!(from < to && from % SECTOR == 0 && to % SECTOR == 0);
                assert!(to - from <= PREPARE_ERASE_MAX);
                assert_eq!(
                    from / PREPARE_ERASE_MAX,
                    (to - 1) / PREPARE_ERASE_MAX,
                    "crosses a 64 KiB block"
                );
                assert!(to <= size.div_ceil(SECTOR) * SECTOR, "erase past the image");
                // Never a sector holding durable (recorded) or written bytes.
                assert!(
                    from >= w.flushed.next_multiple_of(SECTOR),
                    "erase over written bytes"
                );
                for s in from / SECTOR..to / SECTOR {
                    assert!(!erased[s as usize], "erased twice");
                    erased[s as usize] = true;
                }
                slot[from as usize..to as usize].fill(0xFF);
            }
            Op::Program { addr, src } => {
                let bytes = w.bytes(src, input);
                let (a, n) = (addr as usize, bytes.len());
                assert!(n > 0 && a % unit as usize == 0 && n % unit as usize == 0);
                assert_eq!(
                    a / SECTOR as usize,
                    (a + n - 1) / SECTOR as usize,
                    "crosses"
                );
                assert!(erased[a / SECTOR as usize], "write before erase");
                assert!(slot[a..a + n].iter().all(|&b| b == 0xFF), "not erased");
                assert!(a + n <= (size as usize).div_ceil(unit as usize) * unit as usize);
                slot[a..a + n].copy_from_slice(bytes);
            }
            Op::Record { offset } => {
                assert_eq!(offset % SECTOR, 0);
                assert!(offset <= size);
                assert!(
                    offset > records.last().copied().unwrap_or(resume),
                    "not after"
                );
                // The durability claim: everything before it is on "flash".
                assert_eq!(&slot[..offset as usize], &data[..offset as usize]);
                records.push(offset);
                write_wraps += usize::from(journal.borrow_mut().record());
            }
        };
        let mut at = resume as usize;
        let mut sizes = chunks.iter().cycle();
        let mut write_erases = 0;
        let mut prepare_wraps = 0;
        let mut max_stride = 1;
        let mut range_end = at;
        while at < data.len() {
            let n = (*sizes.next().unwrap()).max(1);
            let mut stop = (at + n).min(data.len());
            let prepare = match prep {
                Prep::Never => None,
                Prep::EachChunk(len) => Some(len),
                Prep::Ranges(len) => {
                    let start = at >= range_end;
                    if start {
                        range_end = at.saturating_add(len as usize);
                    }
                    stop = stop.min(range_end);
                    start.then_some(len)
                }
            };
            let input = &data[at..stop];
            let mut consumed = 0;
            if let Some(len) = prepare {
                if let Some(end) = w.prepare_end::<()>(at as u32, len).unwrap() {
                    let last = w.record_horizon(end);
                    let (room, wrapped) = journal.borrow_mut().make_room(w.records_to(last));
                    prepare_wraps += usize::from(wrapped);
                    w.plan_records(last, room);
                    max_stride = max_stride.max(w.stride);
                    // The plan fits the room it was given.
                    let n = w.records_to(last);
                    assert!(
                        n.div_ceil(w.stride) <= room.max(1),
                        "{n} / {} > {room}",
                        w.stride
                    );
                    while let Some(op) = w.next_prepare(end) {
                        assert_eq!(w.next_prepare(end), Some(op));
                        apply(op, &w, &[], &mut slot);
                        w.commit(op, &mut consumed);
                    }
                }
                assert_eq!(consumed, 0);
                // Everything the range touches is erased now.
                let want = (at as u32).saturating_add(len).min(size);
                if want > at as u32 {
                    assert!(w.erased >= want, "{} < {want}", w.erased);
                }
            }
            w.check::<()>(at as u32, input.len()).unwrap();
            while let Some(op) = w.next(input, &mut consumed, false) {
                // Asking again without committing gives the same operation.
                assert_eq!(w.next(input, &mut consumed, false), Some(op));
                if matches!(op, Op::Erase { .. }) {
                    write_erases += 1;
                }
                apply(op, &w, input, &mut slot);
                w.commit(op, &mut consumed);
            }
            assert_eq!(consumed, input.len());
            at += input.len();
            assert_eq!(w.pos as usize, at);
        }
        let mut consumed = 0;
        while let Some(op) = w.next(&[], &mut consumed, true) {
            if matches!(op, Op::Erase { .. }) {
                write_erases += 1;
            }
            apply(op, &w, &[], &mut slot);
            w.commit(op, &mut consumed);
        }
        assert_eq!(w.buf_len, 0);
        // Whatever the plan, the image's last boundary is recorded (if it passed one).
        let last = size / SECTOR * SECTOR;
        if last > resume {
            assert_eq!(records.last(), Some(&last));
        }
        Sim {
            slot,
            records,
            write_erases,
            write_wraps,
            prepare_wraps,
            max_stride,
        }
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
    }

    #[test]
    fn writer_stores_the_image_whatever_the_chunking() {
        for size in [1usize, 3, 63, 64, 65, 4095, 4096, 4097, 10_000, 3 * 4096] {
            let data = pattern(size);
            let mut first = None;
            for chunks in [
                &[1usize][..],
                &[7],
                &[64],
                &[4096],
                &[10_000],
                &[3, 100, 5000],
            ] {
                for unit in [1u32, 4, 16, 64] {
                    let (slot, records) = simulate(&data, 0, chunks, unit);
                    assert_eq!(&slot[..size], &data[..]);
                    // Padding to the write unit, then erased to the sector end.
                    let sector_end = size.div_ceil(4096) * 4096;
                    assert!(slot[size..sector_end].iter().all(|&b| b == 0xFF));
                    // Sectors the image never reaches keep their old bytes.
                    assert!(slot[sector_end..].iter().all(|&b| b == 0x5A));
                    let want: Vec<u32> = (1..=size as u32 / SECTOR).map(|s| s * SECTOR).collect();
                    assert_eq!(records, want, "size {size} chunks {chunks:?} unit {unit}");
                    let first = first.get_or_insert(slot.clone());
                    assert_eq!(first, &slot);
                }
            }
        }
    }

    #[test]
    fn prepare_erases_ahead_and_writes_only_program() {
        for size in [1usize, 100, 4096, 4097, 70_000, 300_000] {
            let data = pattern(size);
            let (plain, plain_records) = simulate(&data, 0, &[4096], 4);
            for (chunks, len) in [
                (&[4096usize][..], 0x1_0000u32),
                (&[1000], 0x1_0000),
                (&[1000, 3, 70_000], 40_000),
                (&[65_536], 65_536),
                (&[7], 1),
                (&[5000], u32::MAX),
            ] {
                for unit in [1u32, 4, 64] {
                    let sim = simulate_prepared(
                        &data,
                        0,
                        chunks,
                        unit,
                        Prep::EachChunk(len),
                        JOURNAL_ROOM,
                    );
                    assert_eq!(sim.slot, plain, "size {size} {chunks:?} {len} {unit}");
                    // At most 73 sectors: every one recorded, no wrap anywhere.
                    assert_eq!(sim.records, plain_records);
                    assert_eq!((sim.write_wraps, sim.prepare_wraps), (0, 0));
                    // Each prepare covers at least the chunk that follows it.
                    if len as usize >= chunks.iter().copied().max().unwrap() {
                        assert_eq!(sim.write_erases, 0, "size {size} {chunks:?} {len} {unit}");
                    }
                }
            }
        }
        // Resumed: the sector at the resume point is erased by prepare, not before.
        let data = pattern(20_000);
        for resume in [4096u32, 8192] {
            let sim = simulate_prepared(
                &data,
                resume,
                &[999],
                4,
                Prep::EachChunk(8192),
                JOURNAL_ROOM,
            );
            assert_eq!(&sim.slot[..data.len()], &data[..]);
            assert_eq!((sim.write_erases, sim.write_wraps), (0, 0));
        }
    }

    /// The journal side of `prepare`: with 64 KiB ranges, or one prepare for the whole
    /// image, the writes never wrap the journal (no erase at all during the writes). Ranges
    /// that fit the journal keep a record per sector (an early wrap in `prepare` makes room
    /// when needed); a region larger than the journal holds is recorded every `stride`
    /// sectors, the smallest stride that fits.
    #[test]
    fn prepare_keeps_journal_wraps_out_of_the_writes() {
        // (image size, prepare length, chunk, expected stride, expected records)
        let cases: [(usize, u32, usize, u32, usize); 6] = [
            // 1 MiB-ish image (249 boundaries).
            (1_020_000, 0x1_0000, 4096, 1, 249),
            (1_020_000, 0x1_0000, 1000, 1, 249),
            (1_020_000, u32::MAX, 4096, 3, 83),
            // A 1.5 MiB stream (384 boundaries).
            (0x18_0000, 0x1_0000, 1460, 1, 384),
            (0x18_0000, u32::MAX, 1460, 5, 77),
            // Just more than the journal holds: every other sector.
            (85 * 4096 + 10, u32::MAX, 4096, 2, 43),
        ];
        for (size, len, chunk, stride, n_records) in cases {
            let data = pattern(size);
            let plain = simulate_prepared(&data, 0, &[chunk], 4, Prep::Never, JOURNAL_ROOM);
            let sim = simulate_prepared(&data, 0, &[chunk], 4, Prep::Ranges(len), JOURNAL_ROOM);
            assert_eq!(sim.slot, plain.slot);
            assert_eq!((sim.write_erases, sim.write_wraps), (0, 0), "{size} {len}");
            assert_eq!((sim.max_stride, sim.records.len()), (stride, n_records));
            // Resume points stay sector boundaries, at most `stride` sectors apart.
            let mut prev = 0;
            for &r in &sim.records {
                assert!(r % SECTOR == 0 && r - prev <= stride * SECTOR, "{prev} {r}");
                prev = r;
            }
            assert!(sim.records.iter().all(|r| plain.records.contains(r)));
            std::println!(
                "image {size} B, prepare {len:#x}, chunk {chunk}: {} records (stride {}), \
                 journal erases in writes {} (without prepare {}), early wraps in prepare {}",
                sim.records.len(),
                sim.max_stride,
                sim.write_wraps,
                plain.write_wraps,
                sim.prepare_wraps,
            );
            if len == 0x1_0000 {
                // Per-sector records, the same wraps as without prepare, moved into prepare.
                assert_eq!(sim.records, plain.records);
                assert!(plain.write_wraps > 0);
                assert!(sim.prepare_wraps >= plain.write_wraps);
            } else {
                // One prepare for everything, on an empty journal: no wrap at all.
                assert_eq!(sim.prepare_wraps, 0);
            }
        }
        // Resumed (the journal holds just the resume record: a wrap would gain nothing): the
        // whole-image prepare strides over what is left, 344 boundaries in a room of 83.
        let data = pattern(0x18_0000);
        let resume = 40 * SECTOR;
        let sim = simulate_prepared(&data, resume, &[4096], 4, Prep::Ranges(u32::MAX), 84);
        assert_eq!(
            (sim.write_erases, sim.write_wraps, sim.prepare_wraps),
            (0, 0, 0)
        );
        assert_eq!((sim.max_stride, sim.records.len()), (5, 69));
        let sim = simulate_prepared(&data, resume, &[4096], 4, Prep::Ranges(0x1_0000), 84);
        assert_eq!((sim.write_erases, sim.write_wraps), (0, 0));
        assert_eq!(sim.max_stride, 1);
        // A prepare again inside a strided region (here before every chunk) never needs an
        // erase in the writes either; it may wrap early to record more densely.
        for (chunks, len) in [(&[4096usize][..], u32::MAX), (&[70_000, 5000], 80_000)] {
            for room in [20, 84] {
                let sim = simulate_prepared(&data, 0, chunks, 4, Prep::EachChunk(len), room);
                assert_eq!((sim.write_erases, sim.write_wraps), (0, 0), "{chunks:?}");
            }
        }
    }

    #[test]
    fn record_plan_rules() {
        let mut w = Writer::new(0, SECTOR, 4, 100 * SECTOR + 5, 0);
        // Without a plan: every boundary, one at a time.
        assert_eq!(w.due_record(), None);
        w.flushed = SECTOR;
        assert_eq!(w.due_record(), Some(SECTOR));
        w.recorded = SECTOR;
        // 40 boundaries up to sector 41 in a room of 10: every 4th, and the last.
        assert_eq!(w.record_horizon(41 * SECTOR + 1), 41 * SECTOR);
        assert_eq!(w.records_to(41 * SECTOR), 40);
        w.plan_records(41 * SECTOR, 10);
        assert_eq!(w.stride, 4);
        let mut due = Vec::new();
        for s in 2..=45 {
            w.flushed = s * SECTOR;
            if let Some(r) = w.due_record() {
                due.push(r / SECTOR);
                w.recorded = r;
            }
        }
        assert_eq!(due, [5, 9, 13, 17, 21, 25, 29, 33, 37, 41, 42, 43, 44, 45]);
        // A room of 0 is taken as 1; fitting boundaries keep stride 1.
        w.plan_records(60 * SECTOR, 0);
        assert_eq!(w.stride, 15);
        w.plan_records(60 * SECTOR, 15);
        assert_eq!(w.stride, 1);
        // The horizon covers what is erased already and never passes the image end.
        w.erased = 70 * SECTOR;
        assert_eq!(w.record_horizon(50 * SECTOR), 70 * SECTOR);
        assert_eq!(w.record_horizon(u32::MAX), 100 * SECTOR);
        // A boundary passed before a re-plan that lands on no stride point of the new plan
        // is simply not recorded; the next one the plan asks for is.
        let mut w = Writer::new(0, SECTOR, 4, 100 * SECTOR, 0);
        w.plan_records(90 * SECTOR, 30);
        assert_eq!(w.stride, 3);
        w.flushed = 2 * SECTOR + 8;
        assert_eq!(w.due_record(), None);
        w.plan_records(20 * SECTOR, 4);
        assert_eq!(w.stride, 5);
        assert_eq!(w.due_record(), None);
        w.flushed = 5 * SECTOR;
        assert_eq!(w.due_record(), Some(5 * SECTOR));
    }

    #[test]
    fn prepare_splits_at_64_kib_blocks() {
        // A slot at 0x11_0000 (64 KiB aligned), image of 300 000 bytes (74 sectors).
        let base = 0x11_0000;
        let mut w = Writer::new(base, SECTOR, 4, 300_000, 0);
        let erases = |w: &mut Writer, offset: u32, len: u32| {
            let end = w.prepare_end::<()>(offset, len).unwrap().unwrap_or(0);
            let mut ops = Vec::new();
            while let Some(op) = w.next_prepare(end) {
                let Op::Erase { from, to } = op else {
                    unreachable!()
                };
                ops.push((from - base, to - base));
                w.commit(op, &mut 0);
            }
            ops
        };
        assert_eq!(erases(&mut w, 0, 0x1_0000), [(0, 0x1_0000)]);
        // Again: nothing left to erase.
        assert_eq!(erases(&mut w, 0, 0x1_0000), []);
        assert_eq!(erases(&mut w, 0, 0), []);
        // One byte into the next block.
        assert_eq!(erases(&mut w, 0, 0x1_0001), [(0x1_0000, 0x1_1000)]);
        // A range that crosses a block boundary: two calls, split at the boundary.
        assert_eq!(
            erases(&mut w, 0, 0x2_8000),
            [(0x1_1000, 0x2_0000), (0x2_0000, 0x2_8000)]
        );
        // Clamped to the image end (73.2 sectors: 74 sectors, 0x4A000).
        assert_eq!(
            erases(&mut w, 0, u32::MAX),
            [
                (0x2_8000, 0x3_0000),
                (0x3_0000, 0x4_0000),
                (0x4_0000, 0x4_A000)
            ]
        );
        assert_eq!(erases(&mut w, 0, u32::MAX), []);
        // An unaligned slot: splits follow flash addresses, not slot offsets.
        let base = 0x11_3000;
        let mut w = Writer::new(base, SECTOR, 4, 300_000, 0);
        let end = w.prepare_end::<()>(0, 0x1_0000).unwrap().unwrap();
        let mut ops = Vec::new();
        while let Some(op) = w.next_prepare(end) {
            ops.push(op);
            w.commit(op, &mut 0);
        }
        assert_eq!(
            ops,
            [
                Op::Erase {
                    from: 0x11_3000,
                    to: 0x12_0000
                },
                Op::Erase {
                    from: 0x12_0000,
                    to: 0x12_3000
                }
            ]
        );
    }

    #[test]
    fn writer_resumes_at_a_sector_boundary() {
        let data = pattern(5 * 4096 + 100);
        for resume in [4096u32, 8192, 5 * 4096] {
            let (slot, records) = simulate(&data, resume, &[999], 4);
            assert_eq!(&slot[..data.len()], &data[..]);
            assert_eq!(
                records.first().copied(),
                Some(resume + SECTOR).filter(|&r| r <= 5 * 4096)
            );
        }
        // Resuming at the very end: nothing to write, nothing to record.
        let data = pattern(2 * 4096);
        let (slot, records) = simulate(&data, 2 * 4096, &[1], 4);
        assert_eq!(&slot[..data.len()], &data[..]);
        assert!(records.is_empty());
    }

    #[test]
    fn writer_input_checks() {
        let mut w = Writer::new(0, SECTOR, 4, 100, 0);
        assert_eq!(
            w.check::<()>(1, 1),
            Err(SinkError::OutOfOrder {
                expected: 0,
                got: 1
            })
        );
        assert_eq!(
            w.check::<()>(0, 101),
            Err(SinkError::PastImageEnd {
                size: 100,
                end: 101
            })
        );
        assert_eq!(w.check::<()>(0, 100), Ok(()));
        let mut consumed = 0;
        assert_eq!(w.next(&[1, 2, 3], &mut consumed, false), None);
        assert_eq!((consumed, w.pos, w.buf_len), (3, 3, 3));
        assert_eq!(w.check::<()>(3, 97), Ok(()));
        // prepare: at the write position only; clamped to the image; empty is nothing.
        assert_eq!(
            w.prepare_end::<()>(0, 10),
            Err(SinkError::OutOfOrder {
                expected: 3,
                got: 0
            })
        );
        assert_eq!(w.prepare_end::<()>(3, 1), Ok(Some(SECTOR)));
        assert_eq!(w.prepare_end::<()>(3, u32::MAX), Ok(Some(SECTOR)));
        assert_eq!(w.prepare_end::<()>(3, 0), Ok(None));
        // The sector holding the 3 buffered bytes is not erased yet: prepare erases it.
        assert_eq!(
            w.next_prepare(SECTOR),
            Some(Op::Erase {
                from: 0,
                to: SECTOR
            })
        );
    }

    fn layout(count: u8, factory: bool) -> SlotLayout {
        let mut slots = [(0, 0); 16];
        for (i, s) in slots.iter_mut().enumerate().take(usize::from(count)) {
            *s = (0x10000 + i as u32 * 0x100000, 0x100000);
        }
        SlotLayout {
            otadata: 0xD000,
            ota_count: count,
            slots,
            factory,
        }
    }

    const G: FlashGeometry = FlashGeometry {
        read: 1,
        write: 4,
        erase: 4096,
    };

    #[test]
    fn target_is_never_the_running_slot() {
        let t = |l: &SlotLayout, r| plan_target::<()>(l, r, G).map(|t| t.slot);
        for count in 2..=16u8 {
            for r in 0..count {
                let slot = t(&layout(count, false), AppSlot::Ota(r)).unwrap();
                assert_ne!(slot, r);
                assert_eq!(slot, (r + 1) % count);
            }
        }
        assert_eq!(t(&layout(1, true), AppSlot::Factory), Ok(0));
        assert_eq!(t(&layout(2, true), AppSlot::Factory), Ok(0));
        assert_eq!(
            t(&layout(1, true), AppSlot::Ota(0)),
            Err(SinkError::NoOtaSlots)
        );
        assert_eq!(
            t(&layout(1, false), AppSlot::Ota(0)),
            Err(SinkError::NoOtaSlots)
        );
        assert_eq!(
            t(&layout(0, true), AppSlot::Factory),
            Err(SinkError::NoOtaSlots)
        );
        let target = plan_target::<()>(&layout(2, false), AppSlot::Ota(0), G).unwrap();
        assert_eq!(
            target,
            UpdateTarget {
                slot: 1,
                offset: 0x110000,
                size: 0x100000,
                capacity: 0xFF000,
                journal: 0x20F000
            }
        );
        // A slot of one sector has no room for an image and a journal.
        let mut l = layout(2, false);
        l.slots[1] = (0x110000, 0x1000);
        assert!(matches!(
            plan_target::<()>(&l, AppSlot::Ota(0), G),
            Err(SinkError::BadSlot { slot: 1, .. })
        ));
        l.slots[1] = (0x110800, 0x2000);
        assert!(matches!(
            plan_target::<()>(&l, AppSlot::Ota(0), G),
            Err(SinkError::BadSlot { .. })
        ));
    }

    #[test]
    fn geometry_rules() {
        let ok =
            |read, write, erase| check_geometry::<()>(FlashGeometry { read, write, erase }).is_ok();
        assert!(ok(1, 4, 4096));
        assert!(ok(4, 4, 4096));
        assert!(ok(64, 64, 256));
        assert!(!ok(0, 4, 4096));
        assert!(!ok(1, 0, 4096));
        assert!(!ok(1, 4, 0));
        assert!(!ok(1, 128, 4096));
        assert!(!ok(128, 4, 4096));
        assert!(!ok(1, 48, 4096));
        assert!(!ok(1, 4, 8192));
        assert!(!ok(1, 4, 3000));
    }

    #[test]
    fn resume_rules() {
        let image = ImageDescriptor {
            id: [1; 32],
            size: 100_000,
        };
        let target = plan_target::<()>(&layout(2, false), AppSlot::Ota(0), G).unwrap();
        let rec = |id, size, offset| JournalRecord { id, size, offset };
        let r = |rec: Option<JournalRecord>| resume_offset(rec.as_ref(), &image, &target, SECTOR);
        assert_eq!(r(None), None);
        assert_eq!(r(Some(rec([1; 32], 100_000, 8192))), Some(8192));
        assert_eq!(r(Some(rec([1; 32], 100_000, 0))), Some(0));
        assert_eq!(r(Some(rec([2; 32], 100_000, 8192))), None);
        assert_eq!(r(Some(rec([1; 32], 100_001, 8192))), None);
        assert_eq!(r(Some(rec([1; 32], 100_000, 8191))), None);
        assert_eq!(r(Some(rec([1; 32], 100_000, 102_400))), None);
    }

    #[test]
    fn running_app_and_states() {
        use super::super::otadata::OtaImageState::*;
        let e = |seq, state| OtaSelectEntry::new(seq, state);
        let l = layout(2, false);
        let erased = [OtaSelectEntry::ERASED; 2];
        let run = |entries: &[OtaSelectEntry; 2], cfg| resolve_running::<()>(&l, entries, cfg);
        assert_eq!(run(&erased, None), Ok(AppSlot::Ota(0)));
        assert_eq!(
            resolve_running::<()>(&layout(2, true), &erased, None),
            Ok(AppSlot::Factory)
        );
        assert_eq!(run(&erased, Some(1)), Ok(AppSlot::Ota(1)));
        assert_eq!(
            run(&erased, Some(2)),
            Err(SinkError::BadRunningSlot { slot: 2, count: 2 })
        );
        let rolled_back = [e(1, Valid), e(2, Aborted)];
        assert_eq!(run(&rolled_back, None), Ok(AppSlot::Ota(0)));
        assert_eq!(state_of(&rolled_back, 2, 0), Some(Valid));
        assert_eq!(state_of(&rolled_back, 2, 1), None);
        // After activation, before the reset: both entries valid, the old one still found.
        let pending = [e(1, Undefined), e(2, New)];
        assert_eq!(state_of(&pending, 2, 0), Some(Undefined));
        assert_eq!(state_of(&pending, 2, 1), Some(New));
        // Two valid entries for the same slot: the active (higher) one wins.
        let same = [e(3, Valid), e(1, Invalid)];
        assert_eq!(state_of(&same, 2, 0), Some(Valid));
        let same = [e(1, Undefined), e(3, Valid)];
        assert_eq!(state_of(&same, 2, 0), Some(Valid));
    }

    #[test]
    fn unaligned_read_steps() {
        assert_eq!(read_step(0, 100, 1), ReadStep::Direct(100));
        assert_eq!(read_step(8, 100, 4), ReadStep::Direct(100));
        assert_eq!(read_step(8, 102, 4), ReadStep::Direct(100));
        assert_eq!(
            read_step(8, 2, 4),
            ReadStep::Bounce {
                aligned: 8,
                len: 4,
                skip: 0,
                take: 2
            }
        );
        assert_eq!(
            read_step(9, 100, 4),
            ReadStep::Bounce {
                aligned: 8,
                len: 64,
                skip: 1,
                take: 63
            }
        );
        assert_eq!(
            read_step(70, 3, 64),
            ReadStep::Bounce {
                aligned: 64,
                len: 64,
                skip: 6,
                take: 3
            }
        );
    }

    #[test]
    fn verifier_reads_in_read_size_chunks() {
        let target = UpdateTarget {
            slot: 1,
            offset: 0x10000,
            size: 0x10000,
            capacity: 0xF000,
            journal: 0x1F000,
        };
        let v = Verifier::new(&SinkConfig::new(ChipId::ESP32S3), &target, 300, 16);
        assert_eq!(v.next_read(), Some((0, 256)));
        let mut v = v;
        v.feed(&[0u8; 256]);
        assert_eq!(v.next_read(), Some((256, 48)));
        v.feed(&[0u8; 48]);
        assert_eq!(v.done, 300);
        assert_eq!(v.next_read(), None);
        assert!(matches!(
            v.finish::<()>(&ExpectedImage::sha256([0; 32])),
            Err(SinkError::HashMismatch { .. })
        ));
    }

    // ----- idle erase ---------------------------------------------------------------------

    use crate::block_on;
    use crate::ota::esp_idf::image::testing::{AppParts, TestImage};
    use crate::ota::esp_idf::partition::{
        self as table, AppSubType, DataSubType, PartitionEntry, PartitionType,
    };
    use crate::ota::mem_flash::{MemFlash, MemFlashError};

    /// Size of the idle-erase test chip.
    const IDLE_CHIP: usize = 0x10_0000;
    /// ota_0 of the idle-erase test chip: where the old image runs from.
    const OTA0: (u32, u32) = (0x1_0000, 0x4_0000);
    /// A 64 KiB-aligned ota_1 of 64 sectors (63 of image area: 3 blocks and 15 sectors).
    const ALIGNED: (u32, u32) = (0x5_0000, 0x4_0000);
    /// An ota_1 of 96 sectors (95 of image area: more records than one journal sector
    /// holds when erased sector by sector).
    const LARGE: (u32, u32) = (0x5_0000, 0x6_0000);

    fn mem_flash(mem: &mut [u8]) -> MemFlash<'_> {
        MemFlash::new(mem)
    }

    fn idle_config(unit: IdleEraseUnit) -> SinkConfig {
        SinkConfig::new(ChipId::ESP32S3).with_idle_erase_unit(unit)
    }

    /// A valid ESP32-S3 app of about `payload` bytes.
    fn app_image(seed: u8, payload: usize) -> (Vec<u8>, [u8; 32]) {
        let text: Vec<u8> = (0..payload)
            .map(|i| (i as u8).wrapping_mul(seed) ^ (i >> 8) as u8)
            .collect();
        let parts = AppParts {
            text: &text,
            ..AppParts::default()
        };
        let mut buf = vec![0u8; payload + 4096];
        let len = TestImage::new(ChipId::ESP32S3.0)
            .build_app(&mut buf, &parts)
            .unwrap();
        buf.truncate(len);
        let sha = Sha256::digest(&buf).into();
        (buf, sha)
    }

    /// A 1 MiB chip: otadata (erased: `ota_0` boots), `ota_0` with an app, `ota_1` at
    /// `slot` full of old bytes (`0x5A`) and an erased journal sector.
    fn idle_chip(slot: (u32, u32)) -> Vec<u8> {
        let mut mem = vec![0xFFu8; IDLE_CHIP];
        let entries = [
            PartitionEntry::new(
                PartitionType::Data(DataSubType::Ota),
                0xD000,
                0x2000,
                "otadata",
            )
            .unwrap(),
            PartitionEntry::new(
                PartitionType::App(AppSubType::Ota(0)),
                OTA0.0,
                OTA0.1,
                "ota_0",
            )
            .unwrap(),
            PartitionEntry::new(
                PartitionType::App(AppSubType::Ota(1)),
                slot.0,
                slot.1,
                "ota_1",
            )
            .unwrap(),
        ];
        table::encode(&entries, &mut mem[0x8000..0x9000], true).unwrap();
        let (old, _) = app_image(3, 20_000);
        mem[OTA0.0 as usize..][..old.len()].copy_from_slice(&old);
        let (start, end) = (
            slot.0 as usize,
            (slot.0 + slot.1) as usize - SECTOR as usize,
        );
        mem[start..end].fill(0x5A);
        mem
    }

    /// The flash address each idle-erase step of `slot` ends at, worked out independently.
    fn step_ends(slot: (u32, u32), unit: IdleEraseUnit) -> Vec<u32> {
        let end = slot.0 + slot.1 - SECTOR;
        let mut at = slot.0;
        let mut ends = Vec::new();
        while at < end {
            let block =
                unit == IdleEraseUnit::Block && at.is_multiple_of(0x1_0000) && at + 0x1_0000 <= end;
            at += if block { 0x1_0000 } else { SECTOR };
            ends.push(at);
        }
        ends
    }

    fn erased(mem: &[u8], from: u32, to: u32) -> bool {
        mem[from as usize..to as usize].iter().all(|&b| b == 0xFF)
    }

    type MemSink<'a, 'm> = EspIdfSink<&'a mut MemFlash<'m>>;

    /// Runs idle-erase steps until `Done`; returns how many.
    fn erase_all(sink: &mut MemSink<'_, '_>) -> usize {
        let mut steps = 0;
        loop {
            steps += 1;
            assert!(steps < 1000);
            if sink.erase_idle_step().unwrap() == IdleErase::Done {
                return steps;
            }
        }
    }

    /// What each phase of an update cost on flash.
    #[derive(Debug, Default)]
    struct Phases {
        begin_erases: u32,
        prepare_erases: u32,
        write_erases: u32,
        begin_reads: u32,
        resume: u32,
    }

    /// An update the way the flow does `StreamErasedAhead`: begin, one prepare for the
    /// whole image, 256-byte writes, finish. Counts the erases of each phase.
    fn update_counting(sink: &mut MemSink<'_, '_>, image: &[u8], sha: [u8; 32]) -> Phases {
        let desc = ImageDescriptor {
            id: sha,
            size: image.len() as u32,
        };
        let s0 = sink.flash.stats();
        let resume = sink.begin(&desc).unwrap();
        let s1 = sink.flash.stats();
        sink.prepare(resume.offset, u32::MAX).unwrap();
        let s2 = sink.flash.stats();
        for (i, piece) in image[resume.offset as usize..].chunks(256).enumerate() {
            sink.write(resume.offset + i as u32 * 256, piece).unwrap();
        }
        let s3 = sink.flash.stats();
        sink.finish(&ExpectedImage::sha256(sha)).unwrap();
        Phases {
            begin_erases: s1.erases - s0.erases,
            prepare_erases: s2.erases - s1.erases,
            write_erases: s3.erases - s2.erases,
            begin_reads: s1.reads - s0.reads,
            resume: resume.offset,
        }
    }

    #[test]
    #[allow(clippy::drop_non_drop)] // `drop(sink)`: the device reboots.
    fn idle_erase_runs_to_completion_one_unit_per_step() {
        for (slot, unit, steps) in [
            (ALIGNED, IdleEraseUnit::Block, 3 + 15),
            (ALIGNED, IdleEraseUnit::Sector, 63),
            (LARGE, IdleEraseUnit::Block, 5 + 15),
            (LARGE, IdleEraseUnit::Sector, 95),
        ] {
            let mut mem = idle_chip(slot);
            let before = mem.clone();
            let ends = step_ends(slot, unit);
            assert_eq!(ends.len(), steps);
            let total = slot.1 - SECTOR;
            let mut f = mem_flash(&mut mem);
            let mut sink = EspIdfSink::new(&mut f, idle_config(unit));
            assert_eq!(
                sink.idle_erase_state().unwrap(),
                IdleEraseState::Partial { erased: 0, total }
            );
            let mut wraps = 0;
            for (i, &end) in ends.iter().enumerate() {
                let s0 = sink.flash.stats();
                let step = sink.erase_idle_step().unwrap();
                let s1 = sink.flash.stats();
                // One erase of the unit and one record; a journal wrap adds a tombstone
                // and the journal sector's erase.
                let wrap = s1.erases - s0.erases == 2;
                wraps += usize::from(wrap);
                assert_eq!(s1.writes - s0.writes, 1 + u32::from(wrap), "step {i}");
                let unit_len = end - ends.get(i.wrapping_sub(1)).copied().unwrap_or(slot.0);
                assert_eq!(
                    s1.bytes_erased - s0.bytes_erased,
                    u64::from(unit_len) + if wrap { 4096 } else { 0 }
                );
                let done = end - slot.0;
                let mem = sink.flash.as_slice();
                assert!(erased(mem, slot.0, end), "step {i}");
                assert!(
                    mem[end as usize..(slot.0 + total) as usize]
                        .iter()
                        .all(|&b| b == 0x5A)
                );
                if i + 1 == ends.len() {
                    assert_eq!(step, IdleErase::Done);
                    assert_eq!(
                        sink.idle_erase_state().unwrap(),
                        IdleEraseState::Erased { total }
                    );
                } else {
                    assert_eq!(
                        step,
                        IdleErase::Progress {
                            erased: done,
                            total
                        }
                    );
                    assert_eq!(
                        sink.idle_erase_state().unwrap(),
                        IdleEraseState::Partial {
                            erased: done,
                            total
                        }
                    );
                }
            }
            assert_eq!(wraps, usize::from(steps > 84), "{slot:?} {unit:?}");
            assert!(sink.idle_erase_state().unwrap().is_erased());
            // Nothing left: no write, no erase.
            let s0 = sink.flash.stats();
            assert_eq!(sink.erase_idle_step().unwrap(), IdleErase::Done);
            let s1 = sink.flash.stats();
            assert_eq!((s1.writes, s1.erases), (s0.writes, s0.erases));
            drop(sink);
            // Everything but the slot's image area and journal is as it was.
            let slot_end = (slot.0 + slot.1) as usize;
            assert_eq!(mem[..slot.0 as usize], before[..slot.0 as usize]);
            assert_eq!(mem[slot_end..], before[slot_end..]);
        }
    }

    #[test]
    #[allow(clippy::drop_non_drop)] // `drop(sink)`: the device reboots.
    fn an_update_into_an_idle_erased_slot_only_programs() {
        let (new, sha) = app_image(9, 150_000);
        for slot in [ALIGNED, LARGE] {
            // Without idle erase: prepare erases the image's sectors.
            let mut plain = idle_chip(slot);
            let mut f = mem_flash(&mut plain);
            let mut sink = EspIdfSink::new(&mut f, idle_config(IdleEraseUnit::Block));
            let p = update_counting(&mut sink, &new, sha);
            assert!(p.prepare_erases >= 3, "{p:?}");
            assert_eq!((p.write_erases, p.begin_erases), (0, 0), "{p:?}");
            assert_eq!(sink.boot_choice().unwrap().ota_slot(), Some(1));
            drop(sink);

            let mut mem = idle_chip(slot);
            let mut f = mem_flash(&mut mem);
            let mut sink = EspIdfSink::new(&mut f, idle_config(IdleEraseUnit::Block));
            erase_all(&mut sink);
            let p = update_counting(&mut sink, &new, sha);
            // begin clears the journal (its sector erase) and reads the image's sectors
            // back; prepare and the writes erase nothing at all.
            assert_eq!(
                (p.begin_erases, p.prepare_erases, p.write_erases, p.resume),
                (1, 0, 0, 0),
                "{p:?}"
            );
            let image_sectors = new.len().div_ceil(4096) as u32;
            assert!(p.begin_reads >= image_sectors * 4096 / 64, "{p:?}");
            assert_eq!(sink.boot_choice().unwrap().ota_slot(), Some(1));
            // The record is gone: the slot now holds an image.
            assert_eq!(
                sink.idle_erase_state().unwrap(),
                IdleEraseState::Partial {
                    erased: 0,
                    total: slot.1 - SECTOR
                }
            );
            drop(sink);
            assert_eq!(mem[slot.0 as usize..][..new.len()], new[..]);
            // The same bytes as the update without idle erase, up to the image's end.
            assert_eq!(
                mem[slot.0 as usize..][..new.len()],
                plain[slot.0 as usize..][..new.len()]
            );
        }
    }

    #[test]
    #[allow(clippy::drop_non_drop)] // `drop(sink)`: the device reboots.
    fn the_read_back_check_falls_back_to_erasing() {
        let (new, sha) = app_image(11, 60_000);
        let slot = ALIGNED;
        // A byte written into sector 5 after the idle erase: sectors 0..5 are trusted,
        // the rest of the image's is erased normally (by prepare).
        let mut mem = idle_chip(slot);
        let mut f = mem_flash(&mut mem);
        let mut sink = EspIdfSink::new(&mut f, idle_config(IdleEraseUnit::Block));
        erase_all(&mut sink);
        sink.flash.as_mut_slice()[(slot.0 + 5 * SECTOR + 100) as usize] = 0x00;
        let desc = ImageDescriptor {
            id: sha,
            size: new.len() as u32,
        };
        sink.begin(&desc).unwrap();
        let s0 = sink.flash.stats();
        sink.prepare(0, u32::MAX).unwrap();
        let s1 = sink.flash.stats();
        let image_end = (new.len() as u32).div_ceil(SECTOR) * SECTOR;
        assert_eq!(
            s1.bytes_erased - s0.bytes_erased,
            u64::from(image_end - 5 * SECTOR)
        );
        for (i, piece) in new.chunks(256).enumerate() {
            sink.write(i as u32 * 256, piece).unwrap();
        }
        sink.finish(&ExpectedImage::sha256(sha)).unwrap();
        drop(sink);

        // A record that lies (nothing was erased): nothing is trusted, everything erased.
        let mut mem = idle_chip(slot);
        let mut f = mem_flash(&mut mem);
        let mut journal = Journal::new(
            slot.0 + slot.1 - SECTOR,
            slot.0 + slot.1,
            FlashGeometry::of::<MemFlash<'_>>(),
        )
        .unwrap();
        journal
            .record(
                &mut f,
                &JournalRecord::erase_progress(slot.1 - SECTOR, slot.1 - SECTOR),
            )
            .unwrap();
        let mut sink = EspIdfSink::new(&mut f, idle_config(IdleEraseUnit::Block));
        assert!(sink.idle_erase_state().unwrap().is_erased());
        let p = update_counting(&mut sink, &new, sha);
        // The first 64 bytes gave it away.
        assert_eq!(
            p.prepare_erases,
            1 + u32::from(image_end > 0x1_0000),
            "{p:?}"
        );
        assert_eq!(p.write_erases, 0);
        drop(sink);
        assert_eq!(mem[slot.0 as usize..][..new.len()], new[..]);

        // Partly erased (3 sectors recorded): the rest is erased normally.
        let mut mem = idle_chip(slot);
        let mut f = mem_flash(&mut mem);
        let mut sink = EspIdfSink::new(&mut f, idle_config(IdleEraseUnit::Sector));
        for _ in 0..3 {
            sink.erase_idle_step().unwrap();
        }
        let desc = ImageDescriptor {
            id: sha,
            size: new.len() as u32,
        };
        sink.begin(&desc).unwrap();
        let s0 = sink.flash.stats();
        sink.prepare(0, u32::MAX).unwrap();
        let s1 = sink.flash.stats();
        assert_eq!(
            s1.bytes_erased - s0.bytes_erased,
            u64::from(image_end - 3 * SECTOR)
        );
    }

    #[test]
    #[allow(clippy::drop_non_drop)] // `drop(sink)`: the device reboots.
    fn idle_erase_refuses_what_it_must_not_erase() {
        let (new, sha) = app_image(13, 30_000);
        let desc = ImageDescriptor {
            id: sha,
            size: new.len() as u32,
        };
        let slot = ALIGNED;
        let total = slot.1 - SECTOR;
        let mut mem = idle_chip(slot);
        let mut f = mem_flash(&mut mem);
        // A download with 3 durable sectors, cut.
        let mut sink = EspIdfSink::new(&mut f, SinkConfig::new(ChipId::ESP32S3));
        sink.begin(&desc).unwrap();
        sink.write(0, &new[..3 * 4096 + 10]).unwrap();
        drop(sink);
        let mut sink = EspIdfSink::new(&mut f, SinkConfig::new(ChipId::ESP32S3));
        assert_eq!(
            sink.idle_erase_state().unwrap(),
            IdleEraseState::DownloadPending {
                offset: 3 * SECTOR,
                size: desc.size
            }
        );
        let s0 = sink.flash.stats();
        assert_eq!(
            sink.erase_idle_step(),
            Err(SinkError::DownloadPending {
                offset: 3 * SECTOR,
                size: desc.size
            })
        );
        let s1 = sink.flash.stats();
        assert_eq!((s1.writes, s1.erases), (s0.writes, s0.erases));
        // Discarded: idle erase goes ahead; abort keeps its progress.
        sink.abort().unwrap();
        assert_eq!(
            sink.erase_idle_step().unwrap(),
            IdleErase::Progress {
                erased: 0x1_0000,
                total
            }
        );
        sink.abort().unwrap();
        assert_eq!(
            sink.idle_erase_state().unwrap(),
            IdleEraseState::Partial {
                erased: 0x1_0000,
                total
            }
        );
        // An update in progress in this value (nothing durable yet) is closed by a step.
        sink.begin(&desc).unwrap();
        sink.write(0, &new[..100]).unwrap();
        sink.erase_idle_step().unwrap();
        assert_eq!(sink.write(100, &new[100..200]), Err(SinkError::NotStarted));
        // After finish, before the reset: otadata selects the new slot, not the running one.
        erase_all(&mut sink);
        update_counting(&mut sink, &new, sha);
        let s0 = sink.flash.stats();
        assert_eq!(
            sink.erase_idle_step(),
            Err(SinkError::RunningNotSelected {
                running: AppSlot::Ota(0),
                selected: AppSlot::Ota(1)
            })
        );
        assert_eq!(sink.flash.stats().writes, s0.writes);
        drop(sink);

        // With rollback: the new app runs unconfirmed (NEW), so ota_0 is its fallback.
        let mut mem = idle_chip(slot);
        let mut f = mem_flash(&mut mem);
        let rollback = SinkConfig::new(ChipId::ESP32S3).with_rollback(true);
        let mut sink = EspIdfSink::new(&mut f, rollback);
        update_counting(&mut sink, &new, sha);
        drop(sink);
        let old_slot = f.as_slice()[OTA0.0 as usize..(OTA0.0 + OTA0.1) as usize].to_vec();
        let mut sink = EspIdfSink::new(&mut f, rollback.with_running_slot(Some(1)));
        assert_eq!(
            sink.erase_idle_step(),
            Err(SinkError::NotConfirmed {
                state: OtaImageState::New
            })
        );
        assert_eq!(
            &sink.flash.as_slice()[OTA0.0 as usize..(OTA0.0 + OTA0.1) as usize],
            &old_slot[..]
        );
        // Confirmed: the next step erases ota_0, never the running ota_1.
        sink.mark_valid().unwrap();
        let running = sink.flash.as_slice()[slot.0 as usize..(slot.0 + slot.1) as usize].to_vec();
        assert_eq!(
            sink.erase_idle_step().unwrap(),
            IdleErase::Progress {
                erased: 0x1_0000,
                total: OTA0.1 - SECTOR
            }
        );
        erase_all(&mut sink);
        let mem = sink.flash.as_slice();
        assert!(erased(mem, OTA0.0, OTA0.0 + OTA0.1 - SECTOR));
        assert_eq!(
            &mem[slot.0 as usize..(slot.0 + slot.1) as usize],
            &running[..]
        );
    }

    /// A power cut at every flash operation of an idle-erase pass: nothing outside the slot
    /// changes, the record never claims more than is erased, a cut costs at most the unit
    /// in progress (or, during a journal wrap, the pass so far), and a following pass and
    /// update succeed with no erase after `begin`.
    #[allow(clippy::drop_non_drop)] // `drop(sink)`: the device reboots.
    fn idle_erase_cut_sweep(slot: (u32, u32), unit: IdleEraseUnit) -> (usize, usize) {
        let (new, sha) = app_image(17, 100_000);
        let config = idle_config(unit);
        let total = slot.1 - SECTOR;
        let ops = {
            let mut mem = idle_chip(slot);
            let mut f = mem_flash(&mut mem);
            erase_all(&mut EspIdfSink::new(&mut f, config));
            f.stats().writes + f.stats().erases
        };
        let (mut restarted, mut cuts) = (0, 0);
        for k in 0..ops {
            let base = idle_chip(slot);
            let mut mem = base.clone();
            let mut f = mem_flash(&mut mem);
            f.fail_after(k);
            let mut sink = EspIdfSink::new(&mut f, config);
            let mut last = 0;
            loop {
                match sink.erase_idle_step() {
                    Ok(IdleErase::Progress { erased, .. }) => last = erased,
                    Ok(IdleErase::Done) => panic!("cut {k} never fired"),
                    Err(SinkError::Flash {
                        error: MemFlashError::PowerCut,
                        ..
                    }) => break,
                    Err(e) => panic!("cut {k}: {e:?}"),
                }
            }
            cuts += 1;
            drop(sink);
            // "Reboot." Outside the slot nothing changed.
            let slot_end = (slot.0 + slot.1) as usize;
            assert_eq!(f.as_slice()[..slot.0 as usize], base[..slot.0 as usize]);
            assert_eq!(f.as_slice()[slot_end..], base[slot_end..]);
            let mut sink = EspIdfSink::new(&mut f, config);
            let recorded = match sink.idle_erase_state().unwrap() {
                IdleEraseState::Partial { erased, .. } => erased,
                other => panic!("cut {k}: {other:?}"),
            };
            // The step that was cut is done again; a cut journal wrap starts over.
            assert!(
                recorded == last || recorded == 0,
                "cut {k}: {recorded} {last}"
            );
            restarted += usize::from(recorded == 0 && last > 0);
            assert!(erased(sink.flash.as_slice(), slot.0, slot.0 + recorded));
            let before = sink.flash.stats().erases;
            let steps = erase_all(&mut sink);
            let expected = step_ends(slot, unit)
                .iter()
                .filter(|&&e| e > slot.0 + recorded)
                .count();
            assert_eq!(steps, expected.max(1), "cut {k}");
            assert!(sink.flash.stats().erases - before >= expected as u32);
            assert!(erased(sink.flash.as_slice(), slot.0, slot.0 + total));
            let p = update_counting(&mut sink, &new, sha);
            assert_eq!((p.prepare_erases, p.write_erases), (0, 0), "cut {k}");
            assert_eq!(sink.boot_choice().unwrap().ota_slot(), Some(1));
        }
        (cuts, restarted)
    }

    #[test]
    fn idle_erase_survives_a_power_cut_at_every_operation() {
        // Blocks: 18 steps, no journal wrap: no cut loses more than its unit.
        let (cuts, restarted) = idle_erase_cut_sweep(ALIGNED, IdleEraseUnit::Block);
        assert_eq!((cuts, restarted), (36, 0));
        // Sectors over 95 steps: one journal wrap (tombstone, erase, record), where a cut
        // during the erase or the record after it loses the progress.
        let (cuts, restarted) = idle_erase_cut_sweep(LARGE, IdleEraseUnit::Sector);
        assert_eq!((cuts, restarted), (95 * 2 + 2, 2));
    }

    #[test]
    fn async_idle_erase_writes_the_same_bytes() {
        let (new, sha) = app_image(19, 40_000);
        let desc = ImageDescriptor {
            id: sha,
            size: new.len() as u32,
        };
        for unit in [IdleEraseUnit::Block, IdleEraseUnit::Sector] {
            let mut mem_a = idle_chip(LARGE);
            let mut mem_b = mem_a.clone();
            let mut fa = mem_flash(&mut mem_a);
            let mut fb = mem_flash(&mut mem_b);
            let mut a = AsyncEspIdfSink::new(&mut fa, idle_config(unit));
            let mut b = EspIdfSink::new(&mut fb, idle_config(unit));
            loop {
                let sa = block_on(a.erase_idle_step()).unwrap();
                let sb = b.erase_idle_step().unwrap();
                assert_eq!(sa, sb);
                assert_eq!(
                    block_on(a.idle_erase_state()).unwrap(),
                    b.idle_erase_state().unwrap()
                );
                assert_eq!(a.flash.as_slice(), b.flash.as_slice());
                if sa == IdleErase::Done {
                    break;
                }
            }
            block_on(async {
                AsyncOtaSink::begin(&mut a, &desc).await.unwrap();
                AsyncOtaSink::prepare(&mut a, 0, u32::MAX).await.unwrap();
                let erases = a.flash.stats().erases;
                AsyncOtaSink::write(&mut a, 0, &new).await.unwrap();
                assert_eq!(a.flash.stats().erases, erases);
                AsyncOtaSink::finish(&mut a, &ExpectedImage::sha256(sha))
                    .await
                    .unwrap();
            });
            b.begin(&desc).unwrap();
            b.prepare(0, u32::MAX).unwrap();
            b.write(0, &new).unwrap();
            b.finish(&ExpectedImage::sha256(sha)).unwrap();
            assert_eq!(a.flash.as_slice(), b.flash.as_slice());
            // Refusals are the same too.
            assert_eq!(
                block_on(a.erase_idle_step()),
                Err(SinkError::RunningNotSelected {
                    running: AppSlot::Ota(0),
                    selected: AppSlot::Ota(1)
                })
            );
            block_on(AsyncOtaSink::abort(&mut a)).unwrap();
        }
    }

    #[test]
    fn idle_erase_decisions() {
        let target = UpdateTarget {
            slot: 1,
            offset: 0x5_3000,
            size: 0x5_C000,
            capacity: 0x5_B000,
            journal: 0xA_E000,
        };
        let e = |erased| Some(JournalRecord::erase_progress(target.capacity, erased));
        let step =
            |rec: Option<JournalRecord>, unit| plan_idle_step::<()>(rec.as_ref(), &target, unit);
        // Sectors up to the first 64 KiB boundary, then blocks, then sectors again.
        assert_eq!(
            step(None, IdleEraseUnit::Block),
            Ok(Some((0x5_3000, 0x5_4000, 0x1000)))
        );
        assert_eq!(
            step(e(0xD000), IdleEraseUnit::Block),
            Ok(Some((0x6_0000, 0x7_0000, 0x1_D000)))
        );
        assert_eq!(
            step(e(0xD000), IdleEraseUnit::Sector),
            Ok(Some((0x6_0000, 0x6_1000, 0xE000)))
        );
        assert_eq!(
            step(e(0x4_D000), IdleEraseUnit::Block),
            Ok(Some((0xA_0000, 0xA_1000, 0x4_E000)))
        );
        assert_eq!(step(e(0x5_B000), IdleEraseUnit::Block), Ok(None));
        // A record that does not fit this slot (another size, past it, not a sector
        // boundary) counts as nothing erased.
        for bad in [
            JournalRecord::erase_progress(0x1000, 0x1000),
            JournalRecord::erase_progress(target.capacity, 0x5_C000),
            JournalRecord::erase_progress(target.capacity, 0x1800),
        ] {
            assert_eq!(
                step(Some(bad), IdleEraseUnit::Sector),
                Ok(Some((0x5_3000, 0x5_4000, 0x1000)))
            );
            assert_eq!(erased_claim(Some(&bad), &target, 100_000), 0);
        }
        // A download's resume point is not erased over.
        let download = JournalRecord {
            id: [7; 32],
            size: 100_000,
            offset: 0x3000,
        };
        assert_eq!(
            step(Some(download), IdleEraseUnit::Block),
            Err(SinkError::DownloadPending {
                offset: 0x3000,
                size: 100_000
            })
        );
        assert_eq!(erased_claim(Some(&download), &target, 100_000), 0);
        // An erase record never resumes an image, whatever its fields.
        let image = ImageDescriptor {
            id: crate::ota::journal::ERASED_ID,
            size: target.capacity,
        };
        assert_eq!(
            resume_offset(e(0x3000).as_ref(), &image, &target, SECTOR),
            None
        );
        // begin takes what the record covers, up to the image's last sector.
        assert_eq!(erased_claim(e(0x5_B000).as_ref(), &target, 10_000), 0x3000);
        assert_eq!(erased_claim(e(0x5_B000).as_ref(), &target, 8192), 0x2000);
        assert_eq!(erased_claim(e(0x1000).as_ref(), &target, 10_000), 0x1000);
        assert_eq!(erased_claim(None, &target, 10_000), 0);
        assert_eq!(
            idle_state(e(0x5_B000).as_ref(), &target),
            IdleEraseState::Erased {
                total: target.capacity
            }
        );
        assert_eq!(IdleErase::after(5, 5), IdleErase::Done);
        assert_eq!(
            IdleErase::after(4, 5),
            IdleErase::Progress {
                erased: 4,
                total: 5
            }
        );
    }

    #[test]
    fn blank_check_stops_at_the_first_written_sector() {
        let mut c = BlankCheck::new(0x1000, 0x3000);
        let mut reads = 0;
        while let Some((addr, len)) = c.next_read() {
            assert_eq!(len, WRITE_BUF_LEN);
            assert_eq!(addr, 0x1000 + reads * 64);
            reads += 1;
            let mut chunk = [0xFF; WRITE_BUF_LEN];
            if addr == 0x2040 {
                chunk[3] = 0xFE;
            }
            c.feed(&chunk);
        }
        assert_eq!((reads, c.erased_end()), (64 + 2, 0x2000));
        // All erased: the whole region.
        let mut c = BlankCheck::new(0x1000, 0x3000);
        while c.next_read().is_some() {
            c.feed(&[0xFF; WRITE_BUF_LEN]);
        }
        assert_eq!(c.erased_end(), 0x3000);
        // An empty region reads nothing; an empty chunk ends the check.
        assert_eq!(BlankCheck::new(0x1000, 0x1000).next_read(), None);
        let mut c = BlankCheck::new(0x1000, 0x3000);
        c.feed(&[]);
        assert_eq!((c.next_read(), c.erased_end()), (None, 0x1000));
        // The writer takes it, clamped to its image's last sector, only at a clean start.
        let mut w = Writer::new(0, SECTOR, 4, 10_000, 0);
        w.assume_erased(0x5_0000);
        assert_eq!(w.erased, 0x3000);
        let mut w = Writer::new(0, SECTOR, 4, 10_000, 0);
        let mut consumed = 0;
        assert_eq!(w.next(&[1, 2, 3], &mut consumed, false), None);
        w.assume_erased(0x2000);
        assert_eq!(w.erased, 0);
    }

    proptest::proptest! {
        #[test]
        fn writer_never_breaks_flash_rules(
            size in 1usize..30_000,
            chunks in proptest::collection::vec(1usize..9_000, 1..8),
            unit_pow in 0u32..7,
            resume_sectors in 0u32..8,
        ) {
            let data = pattern(size);
            let resume = (resume_sectors * SECTOR).min(size as u32 / SECTOR * SECTOR);
            let (slot, _) = simulate(&data, resume, &chunks, 1 << unit_pow);
            proptest::prop_assert_eq!(&slot[..size], &data[..]);
        }

        #[test]
        fn prepare_never_breaks_flash_rules(
            size in 1usize..200_000,
            chunks in proptest::collection::vec(1usize..70_000, 1..8),
            unit_pow in 0u32..7,
            resume_sectors in 0u32..40,
            len in proptest::prop_oneof![0u32..100_000, proptest::strategy::Just(u32::MAX)],
            journal_room in proptest::prop_oneof![2u32..20, proptest::strategy::Just(84)],
            ranges in proptest::bool::ANY,
        ) {
            let data = pattern(size);
            let resume = (resume_sectors * SECTOR).min(size as u32 / SECTOR * SECTOR);
            let sim = simulate_prepared(
                &data,
                resume,
                &chunks,
                1 << unit_pow,
                if ranges { Prep::Ranges(len.max(1)) } else { Prep::EachChunk(len) },
                journal_room,
            );
            let (plain, plain_records) = simulate(&data, resume, &chunks, 1 << unit_pow);
            proptest::prop_assert_eq!(&sim.slot[..size], &data[..]);
            proptest::prop_assert!(sim.slot == plain);
            // Fewer records at most (a stride), all of them sector boundaries the plain
            // run records too; a plan of a whole journal's worth keeps every one.
            proptest::prop_assert!(sim.records.iter().all(|r| plain_records.contains(r)));
            if journal_room == 84 {
                proptest::prop_assert_eq!(&sim.records, &plain_records);
            }
            // Resume points at most `max_stride` sectors apart.
            let mut prev = resume;
            for &r in &sim.records {
                proptest::prop_assert!(r - prev <= sim.max_stride * SECTOR);
                prev = r;
            }
            // A prepare covering each chunk (or each range, whatever the chunks) leaves no
            // erase, slot or journal, to the writes.
            if ranges || len as usize >= chunks.iter().copied().max().unwrap_or(0) {
                proptest::prop_assert_eq!((sim.write_erases, sim.write_wraps), (0, 0));
            }
        }
    }
}
