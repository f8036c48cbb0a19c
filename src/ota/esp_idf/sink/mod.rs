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
//! The two sectors before the journal hold caller state ([`OtaSink::save_state`]) while the
//! image leaves them free; see [below](#caller-state-two-sectors-before-the-journal).
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
//!   unless it records idle-erase progress, which it keeps), then kills a live state (see
//!   [below](#caller-state-two-sectors-before-the-journal)); never touches otadata.
//! - [`read_running`](OtaSink::read_running): reads the partition of the app `begin` takes
//!   for the running one ([`SinkConfig::running_slot`], else otadata's choice, else factory,
//!   else `ota_0`), honouring `READ_SIZE` (unaligned ends go through a 64-byte bounce
//!   buffer on the stack). Works before `begin` and during an update, never writes.
//!   The first call of a sink value reads the partition table and otadata; the partition
//!   is then remembered with the running app. A read past the partition's end is
//!   [`SinkError::RunningReadOutOfRange`], with nothing read.
//! - [`save_state`](OtaSink::save_state) and [`load_state`](OtaSink::load_state): see the
//!   next section.
//! - [`erase_idle_step`](EspIdfSink::erase_idle_step) and
//!   [`idle_erase_state`](EspIdfSink::idle_erase_state): see the next section.
//!
//! # Caller state: two sectors before the journal
//!
//! The update flow applies a delta patch to the running image and saves its decoder's
//! checkpoint (about 471 bytes, at most [`MAX_STATE_LEN`] = 512) every 16 KiB of output, so
//! that a power cut resumes the patch there instead of at its start. The sink keeps **one
//! newest state** per slot, with the image point it belongs to:
//!
//! ```text
//!  target slot (ota_N), `size` bytes
//! ┌───────────────────────────────────────┬───────────┬───────────┬──────────┐
//! │ image (≤ size − 12 KiB to keep state) │ sector A  │ sector B  │ journal  │
//! └───────────────────────────────────────┴───────────┴───────────┴──────────┘
//!                                          7 records   7 records
//! ```
//!
//! - **Where.** Sectors A and B are `slot end − 12 KiB .. slot end − 4 KiB`, inside the
//!   image area. They are used only while the image leaves them free: when
//!   `round_up(image size, 4 KiB) > size − 12 KiB`, [`save_state`](OtaSink::save_state)
//!   returns `Ok(false)` and writes nothing, `begin` resumes from the journal alone and
//!   [`load_state`](OtaSink::load_state) returns `None`. **A delta target must leave 8 KiB
//!   of the slot's capacity free to be resumable mid-patch.** While states are used the
//!   image ends before A, and nothing the download does reaches A or B: `prepare` and the
//!   writes never erase past the image's last sector. An idle erase
//!   ([`erase_idle_step`](EspIdfSink::erase_idle_step)) erases them with the rest of the image
//!   area; it runs only when no download is pending, so no state it erases is wanted.
//! - **Record.** Seven 576-byte slots per sector (4032 bytes; the last 64 stay erased).
//!
//!   | offset | field |
//!   |---|---|
//!   | 0 | magic `u32` LE `0x5341544F` (`"OTAS"`) |
//!   | 4 | sequence number `u32` LE: higher is newer |
//!   | 8 | image id `[u8; 32]` (all zero: a tombstone) |
//!   | 40 | image size `u32` LE |
//!   | 44 | `at` `u32` LE: the image point the state belongs to |
//!   | 48 | state length `u16` LE, at most 512 (0: a tombstone) |
//!   | 50 | the state bytes |
//!   | 50 + len | CRC-32 (ISO-HDLC, the zlib one, as the journal) `u32` LE over the bytes before it |
//!   | 54 + len | `0xFF` up to 576 (never written) |
//!
//!   A record is valid only if its magic and CRC match (and its length is at most 512).
//!   Anything else in a slot — a torn record, image bytes of an earlier, larger image, half
//!   of a cut erase — is ignored. It is written in chunks of 64 bytes (rounded up to
//!   `WRITE_SIZE`) in order, from one 64-byte stack buffer, so the CRC lands last.
//! - **Reading.** A scan reads the 14 slots in 64-byte chunks, stopping in each as soon as
//!   it is decided (a record after its CRC, anything else after its first chunk, an erased
//!   slot after all nine), and keeps the valid record with the highest sequence number: at
//!   most 126 reads of 64 bytes, no buffer but one chunk.
//! - **Append.** The newest valid record (of any image, tombstones included) decides: the
//!   next record goes into the slot right after it in the same sector if that slot reads
//!   fully erased; otherwise the **other** sector is erased and the record goes into its
//!   slot 0. With no valid record, A is erased (unless its slot 0 reads erased) and the
//!   record goes there. The sector holding the newest valid record is never erased, so a
//!   cut during the erase or the write leaves the previous newest record in force; a torn
//!   record or a half-erased sector only makes the next append move to the other sector.
//!   One erase every seven records (4 KiB at 16 KiB of output per state: once per 112 KiB).
//! - **`save_state(at, state)`** needs an update in progress ([`SinkError::NotStarted`]),
//!   `at` equal to the write position ([`SinkError::OutOfOrder`]), a positive multiple of
//!   [`STATE_ALIGN`] ([`SinkError::StatePoint`]) and at most 512 bytes
//!   ([`SinkError::StateTooLong`]); refused calls change nothing. It first makes every byte
//!   before `at` durable: a full write buffer is flushed (at a sector boundary nothing is
//!   left in it), and if the journal does not record `at` yet — a region
//!   [`prepare`](OtaSink::prepare) planned to record only every `stride`-th sector — it
//!   appends the journal record `{id, size, offset: at}` and plans the rest of that region's
//!   records into the journal room left, so its writes still erase nothing. Then it appends
//!   the state record and returns `Ok(true)`. Cost: a scan, an erase one time in seven,
//!   nine small writes, at times a journal record.
//! - **`begin`.** When the journal resumes the same image at `R > 0`, the newest valid
//!   record counts if it is a state of this image (same id and size) with `0 < at ≤ R`
//!   and `at` a multiple of 4 KiB: the download resumes at `at`, not `R`
//!   ([`Resume::offset`] = `at`), and the sink remembers that record for `load_state`.
//!   Resuming below what was written is the ordinary resume path: the writer starts at
//!   `at` and erases each sector from there again before writing it. A newest record of
//!   another image, or a tombstone, is ignored (resume at `R`). A `begin` that starts
//!   clean (another image, nothing to resume) first clears the journal and then, if the
//!   newest valid record is a live state, appends a tombstone (id all zero, no state) — only
//!   when the new image leaves the area free, since otherwise its sectors will hold image
//!   bytes.
//! - **`load_state(buf)`**, after `begin`: reads the remembered record (the resume point's,
//!   or the one this session's `save_state` appended last) back from flash into `buf` and
//!   returns its length; `None` if the resume point carries no state (or the record no
//!   longer reads back valid). A `buf` shorter than the state is
//!   [`SinkError::StateBufferTooSmall`].
//! - **Killing stale states.** `abort` kills a live newest state the same way after it
//!   clears the journal: the session's image's area, or outside a session the area of the
//!   download the journal records (none for an empty journal: the slot may then hold an
//!   activated image, and erasing a sector of it is not `abort`'s business). The order —
//!   journal first, then the tombstone — matters: a state may lie below a journal point
//!   whose bytes a resumed session has erased again, so a cut between the two must never
//!   leave that journal point alone. Journal first, a cut leaves no resume point at all (the
//!   next `begin` starts clean and kills the state then).
//! - **Why a state can never resume the wrong bytes.** `begin` resumes at a state only while
//!   the journal resumes the same image at or above its point. Journal records of an image
//!   exist only after a clean `begin` of it, which killed any state that was live then
//!   (tombstone, or, for an image covering the area, its own sectors); every state live
//!   since was saved by that download after its bytes up to `at` were durable. `finish`
//!   leaves the area alone: it lies past the image, the bootloader reads nothing past the
//!   image end (§3.6), and the state left there is dead for any later download of the slot
//!   by the rules above (a clean `begin` kills it; a larger image overwrites it or turns
//!   it into garbage).
//! - **Memory.** The sink value grows by 24 bytes (the remembered record and the running
//!   partition; 528 → 552 bytes for a `&mut MemFlash` sink on a 64-bit host). Every state
//!   operation is one `StateJob` (the scan's parser, the newest header, the record being
//!   appended: 392 bytes on that host) run through one 64-byte chunk buffer, so `begin`,
//!   `save_state`, `load_state` and `abort` take about 0.5 KiB more stack while they touch
//!   the area (the async sink holds the same in its future); no 576-byte record buffer is
//!   ever held. The blocking and async shells differ only in `.await` in that one loop.
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
//! [above](#erasing-the-next-slot-while-idle), for caller state
//! [above](#caller-state-two-sectors-before-the-journal): a cut `save_state` leaves the
//! previous state in force, and `begin` never resumes above what is durable). The running image stays selected until the
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
use crate::ota::sink::{
    AsyncOtaSink, ExpectedImage, ImageDescriptor, MAX_STATE_LEN, OtaSink, Resume, STATE_ALIGN,
};

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

mod asynch;
mod blocking;
mod error;
mod layout;
mod plan;
mod session;
mod state;
#[cfg(test)]
mod state_tests;
#[cfg(test)]
mod tests;
mod verify;
mod writer;

pub use asynch::AsyncEspIdfSink;
pub use blocking::EspIdfSink;
use error::*;
pub use error::{FlashOp, SinkError};
use layout::*;
use plan::*;
use session::*;
use state::*;
pub use verify::declared_version;
use verify::*;
use writer::*;
