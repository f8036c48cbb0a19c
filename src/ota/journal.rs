//! Durable resume progress: a power-cut-safe, append-only log of "image X is written up to
//! offset N" in a flash region the caller sets aside.
//!
//! A download that is cut (link drop, modem reboot, power loss) should continue where the
//! flash says it stopped, not where RAM said it was. [`Journal`] keeps that fact on flash:
//!
//! - [`Journal::record`] appends one fixed-size record `{id, size, offset}`;
//! - [`Journal::load`] scans the region and returns the newest valid record;
//! - [`Journal::clear`] forgets everything (the next download starts clean);
//! - [`Journal::make_room`] wraps early, at a moment the caller picks, so that the next
//!   records it announces append without an erase (see "Making room ahead of time").
//!
//! # On-flash format
//!
//! The region is one or more whole erase sectors. It is divided into *slots* of
//! [`Journal::record_len`] bytes: [`RECORD_LEN`] (48) rounded up to a multiple of the flash's
//! `WRITE_SIZE` and `READ_SIZE` (48 for the usual 1/4/16-byte flashes, 64 for 32/64-byte
//! ones). Slots are written in order from the start of the region and never rewritten.
//!
//! | offset | field |
//! |---|---|
//! | 0 | magic `u32` LE: `0x4A41544F` (`"OTAJ"`, progress) or `0x5841544F` (`"OTAX"`, cleared) |
//! | 4 | image id `[u8; 32]`: all of [`ImageDescriptor::id`](crate::ota::ImageDescriptor::id) |
//! | 36 | image size `u32` LE |
//! | 40 | durable offset `u32` LE |
//! | 44 | CRC-32 (ISO-HDLC, the zlib one) `u32` LE over bytes 0..44 |
//! | 48 | `0xFF` padding up to the slot length |
//!
//! The whole 32-byte id is stored (not a prefix): 48 bytes is still a single small write,
//! and a prefix would let two images that share 16 id bytes resume each other's bytes
//! (harmless, because the sink re-hashes before activating, but a wasted download).
//!
//! ## Reserved id: erase progress
//!
//! A progress record whose id is [`ERASED_ID`] (the 32 ASCII bytes
//! `cellular-ota: slot erased (idle)`) is not an image: it says "the first `offset` bytes of
//! the `size`-byte region this journal guards are erased" ([`JournalRecord::erase_progress`]).
//! The ESP-IDF sink writes it while it erases the next update's slot in idle time
//! ([`EspIdfSink::erase_idle_step`](crate::ota::esp_idf::sink::EspIdfSink::erase_idle_step)).
//! It uses the same magic, layout and CRC, so every rule below applies to it unchanged; a
//! reader that does not know the convention sees a progress record for an image it is not
//! writing and starts clean, which is safe. Image ids are SHA-256 values, so none equals
//! this text in practice.
//!
//! # Rules that make it power-cut safe
//!
//! - **A torn record is ignored, never an error.** A record is valid only if its magic and
//!   CRC match. [`load`](Journal::load) returns the last *valid* record by position; a
//!   partly written one fails its CRC, so the record before it (the previous durable point)
//!   wins. A slot that is not fully erased is never written again (new records go after the
//!   last non-erased slot), so a torn record never makes a later write fail.
//! - **Clearing writes a tombstone first.** [`clear`](Journal::clear) appends a "cleared"
//!   record, then erases the region. A cut during the erase leaves either erased slots or
//!   the tombstone as the newest record, so no older progress record can come back.
//! - **Wrapping loses the resume point, safely.** The last slot is reserved for a
//!   tombstone. When a record would need it, [`record`](Journal::record) writes the
//!   tombstone there, erases the region and writes the record at slot 0. A power cut during
//!   that erase (or before the new record lands) loses the resume point: the next download
//!   starts clean, which is safe, just slower. With a 4 KiB region and 48-byte records this
//!   happens once every 84 records.
//! - **Making room ahead of time is an early wrap, with the same guarantee.**
//!   [`make_room`](Journal::make_room)`(want)` checks that `want` more records fit before
//!   the reserved last slot ([`Journal::room`]); if not, and if compacting helps (see
//!   [`plan_make_room`]), it compacts now: a [`clear`](Journal::clear) (tombstone in the
//!   first free slot, region erase) followed by a [`record`](Journal::record) of the newest
//!   progress record at slot 0. A cut during the tombstone write leaves the journal as it was; a cut during
//!   the erase, or before the record lands, loses the resume point (the next download
//!   starts clean, which is safe); once the record lands nothing is lost. Either way no
//!   older progress record can come back. The tombstone reserve is kept: records never take
//!   the last slot, so a later `clear` always has room for its tombstone.
//! - **Nothing is erased needlessly.** `clear` on a region with no used slot does nothing;
//!   an erase happens only on `clear` of a used region, on wrap and on a `make_room` that
//!   compacts.
//!
//! Limitation: a *torn erase* is modelled as "some bytes erased, the rest unchanged" (what
//! `MemFlash` (feature `test-doubles`) does). A chip that leaves a half-erased
//! word reading as a valid-looking record with a matching CRC-32 is not defended against
//! beyond the 2⁻³² chance of the CRC; the OTA sink re-hashes the whole image before
//! activating anyway, so a wrong resume point can cost a download, never a bad boot.
//!
//! # Blocking and async
//!
//! [`Journal`] does not own the flash: it holds the region and a cursor (where the next
//! record goes), and each operation takes the flash as an argument, so an owner (the OTA
//! sink) can keep using the same flash between calls. Blocking methods take an
//! `embedded_storage::nor_flash::NorFlash`, the `_async` twins an
//! `embedded_storage_async::nor_flash::NorFlash`; both follow the same non-generic plans
//! ([`plan_append`], [`plan_clear`], the slot scan) and differ only in `.await`.
//!
//! ```
//! use cellular_ota::ota::journal::{FlashGeometry, Journal, JournalRecord};
//! use cellular_ota::ota::mem_flash::MemFlash;
//!
//! let mut mem = [0u8; 0x2000];
//! let mut flash: MemFlash<'_> = MemFlash::new_erased(&mut mem);
//! let geometry = FlashGeometry::of::<MemFlash<'_>>();
//! let mut journal = Journal::new(0x1000, 0x2000, geometry).unwrap();
//! assert_eq!(journal.load(&mut flash).unwrap(), None);
//! let rec = JournalRecord { id: [7; 32], size: 100_000, offset: 8192 };
//! journal.record(&mut flash, &rec).unwrap();
//! // After a reboot: a new Journal value finds the record on flash.
//! let mut again = Journal::new(0x1000, 0x2000, geometry).unwrap();
//! assert_eq!(again.load(&mut flash).unwrap(), Some(rec));
//! again.clear(&mut flash).unwrap();
//! assert_eq!(Journal::new(0x1000, 0x2000, geometry).unwrap().load(&mut flash).unwrap(), None);
//! ```

use embedded_storage::nor_flash::NorFlash;
use embedded_storage_async::nor_flash::NorFlash as AsyncNorFlash;

/// Encoded length of a record before padding.
pub const RECORD_LEN: usize = 48;
/// Largest slot length supported (48 rounded up to the flash's write/read granularity must
/// not exceed this).
pub const MAX_SLOT_LEN: usize = 64;
/// Magic of a progress record (`"OTAJ"` in memory order).
pub const PROGRESS_MAGIC: u32 = 0x4A41_544F;
/// Magic of a tombstone ("cleared") record (`"OTAX"` in memory order).
pub const CLEARED_MAGIC: u32 = 0x5841_544F;
/// Byte offset of the CRC inside a record; the CRC covers the bytes before it.
const CRC_AT: usize = 44;
/// The reserved image id of an erase-progress record (see the [module docs](self)): the 32
/// ASCII bytes `cellular-ota: slot erased (idle)`.
pub const ERASED_ID: [u8; 32] = *b"cellular-ota: slot erased (idle)";

/// One durable progress point: `offset` bytes of image `id` (of `size` bytes) are on flash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct JournalRecord {
    /// The image identity ([`ImageDescriptor::id`](crate::ota::ImageDescriptor::id)).
    pub id: [u8; 32],
    /// The image length in bytes.
    pub size: u32,
    /// Bytes of the image that are durable. The journal stores any value; its user decides
    /// what it means (the ESP-IDF sink stores sector boundaries).
    pub offset: u32,
}

impl JournalRecord {
    /// An erase-progress record: the first `erased` bytes of a `region`-byte region are
    /// erased (id [`ERASED_ID`], `size` = `region`, `offset` = `erased`).
    pub const fn erase_progress(region: u32, erased: u32) -> Self {
        JournalRecord {
            id: ERASED_ID,
            size: region,
            offset: erased,
        }
    }

    /// Whether this is an erase-progress record (its id is [`ERASED_ID`]), not an image's.
    pub fn is_erase_progress(&self) -> bool {
        self.id == ERASED_ID
    }

    /// Encodes the 48-byte progress record (magic, fields, CRC).
    pub fn encode(&self) -> [u8; RECORD_LEN] {
        encode_raw(PROGRESS_MAGIC, &self.id, self.size, self.offset)
    }
}

fn encode_raw(magic: u32, id: &[u8; 32], size: u32, offset: u32) -> [u8; RECORD_LEN] {
    let mut b = [0u8; RECORD_LEN];
    b[0..4].copy_from_slice(&magic.to_le_bytes());
    b[4..36].copy_from_slice(id);
    b[36..40].copy_from_slice(&size.to_le_bytes());
    b[40..44].copy_from_slice(&offset.to_le_bytes());
    let crc = super::crc32::crc32_iso_hdlc(&b[..CRC_AT]);
    b[CRC_AT..RECORD_LEN].copy_from_slice(&crc.to_le_bytes());
    b
}

/// The encoded tombstone record.
fn tombstone() -> [u8; RECORD_LEN] {
    encode_raw(CLEARED_MAGIC, &[0; 32], 0, 0)
}

/// What one slot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SlotContent {
    /// Every byte is `0xFF`: free.
    Erased,
    /// A valid progress record.
    Progress(JournalRecord),
    /// A valid tombstone: everything before it is forgotten.
    Cleared,
    /// Anything else (a torn or corrupt record). Ignored, but the slot is used.
    Garbage,
}

/// Classifies one slot's bytes (at least the first [`RECORD_LEN`] are looked at; a shorter
/// slice is [`SlotContent::Garbage`] unless it is all `0xFF`). Never fails.
pub fn classify(slot: &[u8]) -> SlotContent {
    if slot.iter().all(|&b| b == 0xFF) {
        return SlotContent::Erased;
    }
    let Some(raw) = slot.get(..RECORD_LEN) else {
        return SlotContent::Garbage;
    };
    let word = |at: usize| u32::from_le_bytes([raw[at], raw[at + 1], raw[at + 2], raw[at + 3]]);
    if super::crc32::crc32_iso_hdlc(&raw[..CRC_AT]) != word(CRC_AT) {
        return SlotContent::Garbage;
    }
    match word(0) {
        PROGRESS_MAGIC => {
            let mut id = [0u8; 32];
            id.copy_from_slice(&raw[4..36]);
            SlotContent::Progress(JournalRecord {
                id,
                size: word(36),
                offset: word(40),
            })
        }
        CLEARED_MAGIC => SlotContent::Cleared,
        _ => SlotContent::Garbage,
    }
}

/// The read/write/erase granularity of a flash (`READ_SIZE`, `WRITE_SIZE`, `ERASE_SIZE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FlashGeometry {
    /// `ReadNorFlash::READ_SIZE`.
    pub read: usize,
    /// `NorFlash::WRITE_SIZE`.
    pub write: usize,
    /// `NorFlash::ERASE_SIZE`.
    pub erase: usize,
}

impl FlashGeometry {
    /// The geometry of a blocking flash type.
    pub const fn of<F: NorFlash>() -> Self {
        FlashGeometry {
            read: F::READ_SIZE,
            write: F::WRITE_SIZE,
            erase: F::ERASE_SIZE,
        }
    }

    /// The geometry of an async flash type.
    pub const fn of_async<F: AsyncNorFlash>() -> Self {
        FlashGeometry {
            read: F::READ_SIZE,
            write: F::WRITE_SIZE,
            erase: F::ERASE_SIZE,
        }
    }
}

/// Why a [`Journal`] could not be set up. Nothing was read or written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum JournalLayoutError {
    /// `start`/`end` are not erase-sector boundaries, or `end <= start`.
    #[error("journal region 0x{start:x}..0x{end:x} is not whole {erase}-byte sectors")]
    Misaligned {
        /// Region start.
        start: u32,
        /// Region end.
        end: u32,
        /// The erase size.
        erase: usize,
    },
    /// The region holds fewer than two slots (one record plus the reserved tombstone slot).
    #[error("journal region holds only {slots} records, at least 2 are needed")]
    TooSmall {
        /// Slots that fit.
        slots: u32,
    },
    /// A granularity is zero, or 48 bytes rounded up to it exceeds [`MAX_SLOT_LEN`].
    #[error("unsupported flash geometry: read {read}, write {write}, erase {erase}")]
    UnsupportedGeometry {
        /// `READ_SIZE`.
        read: usize,
        /// `WRITE_SIZE`.
        write: usize,
        /// `ERASE_SIZE`.
        erase: usize,
    },
}

/// Why a journal operation failed: the flash operation that failed, with the flash's error.
///
/// After any error the journal forgets its cursor and scans the region again on the next
/// call, so it is safe to retry (or to create a new [`Journal`] after a reboot).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum JournalError<E> {
    /// Reading a slot failed.
    #[error("journal read failed: {0:?}")]
    Read(E),
    /// Writing a record or tombstone failed; the slot may hold a torn record (ignored).
    #[error("journal write failed: {0:?}")]
    Write(E),
    /// Erasing the region failed; the resume point may be lost (the next download starts
    /// clean).
    #[error("journal erase failed: {0:?}")]
    Erase(E),
}

/// What a scan of the region found; where the next record goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Cursor {
    /// Index of the first slot after the last non-erased one (0 if all are erased).
    pub next: u32,
    /// Whether the last non-erased slot is a valid tombstone.
    pub tail_cleared: bool,
    /// The newest valid progress record, unless a tombstone follows it.
    pub latest: Option<JournalRecord>,
}

impl Cursor {
    /// The cursor of an erased region.
    pub const EMPTY: Cursor = Cursor {
        next: 0,
        tail_cleared: false,
        latest: None,
    };

    /// Folds slot `index` (scanned in increasing order) into the cursor.
    pub fn feed(&mut self, index: u32, content: SlotContent) {
        if content == SlotContent::Erased {
            return;
        }
        self.next = index.saturating_add(1);
        self.tail_cleared = content == SlotContent::Cleared;
        match content {
            SlotContent::Progress(rec) => self.latest = Some(rec),
            SlotContent::Cleared => self.latest = None,
            SlotContent::Erased | SlotContent::Garbage => {}
        }
    }
}

/// The flash operations of one [`Journal::record`], in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AppendPlan {
    /// Write a tombstone in this slot first (the reserved last slot, on wrap).
    pub tombstone: Option<u32>,
    /// Then erase the whole region.
    pub erase: bool,
    /// Then write the record in this slot.
    pub write_at: u32,
}

/// Plans an append with the cursor at `next` in a region of `slots` slots. The last slot is
/// reserved for the wrap tombstone: records go in `0 ..= slots - 2`.
pub fn plan_append(next: u32, slots: u32) -> AppendPlan {
    let last = slots.saturating_sub(1);
    if next < last {
        AppendPlan {
            tombstone: None,
            erase: false,
            write_at: next,
        }
    } else {
        AppendPlan {
            tombstone: (next == last).then_some(last),
            erase: true,
            write_at: 0,
        }
    }
}

/// The flash operations of one [`Journal::clear`], in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ClearPlan {
    /// Write a tombstone in this slot first.
    pub tombstone: Option<u32>,
    /// Then erase the whole region.
    pub erase: bool,
}

/// Plans a clear: nothing for an unused region; otherwise a tombstone (unless the newest
/// used slot already is one, or no slot is free) and an erase.
pub fn plan_clear(cursor: &Cursor, slots: u32) -> ClearPlan {
    if cursor.next == 0 {
        return ClearPlan {
            tombstone: None,
            erase: false,
        };
    }
    let tombstone = (!cursor.tail_cleared && cursor.next < slots).then_some(cursor.next);
    ClearPlan {
        tombstone,
        erase: true,
    }
}

/// Records that fit before the next wrap with the cursor at `next` in a region of `slots`
/// slots: the free slots before the last one, which is reserved for the wrap tombstone.
pub fn room(next: u32, slots: u32) -> u32 {
    slots.saturating_sub(1).saturating_sub(next)
}

/// How sparsely a caller that means to append `want` records must record to append at most
/// `room`: 1 (every one) if they fit, else `ceil(want / room)` (one kept per that many, so
/// at most `room` in all), `u32::MAX` with no room at all.
pub fn record_stride(want: u32, room: u32) -> u32 {
    if want <= room {
        1
    } else if room == 0 {
        u32::MAX
    } else {
        want.div_ceil(room)
    }
}

/// Plans a [`Journal::make_room`]: `true` to compact now (clear, then write the newest
/// progress record again at slot 0). That is when `want` records do not fit before the next
/// wrap and compacting lowers the [`record_stride`] they need (in particular whenever they
/// fit a compacted region); never when compacting would not help.
pub fn plan_make_room(cursor: &Cursor, slots: u32, want: u32) -> bool {
    let now = room(cursor.next, slots);
    let compacted = room(u32::from(cursor.latest.is_some()), slots);
    record_stride(want, compacted) < record_stride(want, now)
}

/// A resume journal over a flash region; see the [module docs](self) for the format and the
/// power-cut rules.
///
/// Holds the region and a cached [`Cursor`]; the flash is passed to each call. Use one
/// `Journal` value per region at a time (two values over the same region would each trust
/// their own cursor).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Journal {
    start: u32,
    end: u32,
    slot_len: u32,
    slots: u32,
    cursor: Option<Cursor>,
}

/// Least common multiple; `None` if either is 0 or it overflows.
fn lcm(a: usize, b: usize) -> Option<usize> {
    if a == 0 || b == 0 {
        return None;
    }
    let (mut x, mut y) = (a, b);
    while y != 0 {
        (x, y) = (y, x % y);
    }
    (a / x).checked_mul(b)
}

impl Journal {
    /// A journal over flash addresses `start..end`, which must be whole erase sectors of a
    /// flash with `geometry`. Does no I/O: the region is scanned on the first call.
    pub fn new(start: u32, end: u32, geometry: FlashGeometry) -> Result<Self, JournalLayoutError> {
        let FlashGeometry { read, write, erase } = geometry;
        let bad_geometry = JournalLayoutError::UnsupportedGeometry { read, write, erase };
        if erase == 0 {
            return Err(bad_geometry);
        }
        let unit = lcm(read, write).ok_or(bad_geometry)?;
        let slot_len = RECORD_LEN.div_ceil(unit).saturating_mul(unit);
        if slot_len > MAX_SLOT_LEN {
            return Err(bad_geometry);
        }
        if end <= start
            || !(start as usize).is_multiple_of(erase)
            || !(end as usize).is_multiple_of(erase)
        {
            return Err(JournalLayoutError::Misaligned { start, end, erase });
        }
        // slot_len <= 64.
        let slots = (end - start) / slot_len as u32;
        if slots < 2 {
            return Err(JournalLayoutError::TooSmall { slots });
        }
        Ok(Journal {
            start,
            end,
            slot_len: slot_len as u32,
            slots,
            cursor: None,
        })
    }

    /// First byte of the region.
    pub fn start(&self) -> u32 {
        self.start
    }

    /// One past the last byte of the region.
    pub fn end(&self) -> u32 {
        self.end
    }

    /// Length of one slot (a record plus padding to the flash granularity).
    pub fn record_len(&self) -> usize {
        self.slot_len as usize
    }

    /// Number of slots; `slots() - 1` records fit before the region wraps.
    pub fn slots(&self) -> u32 {
        self.slots
    }

    /// The cursor from the last scan or operation, if the journal has one (no I/O).
    pub fn cursor(&self) -> Option<Cursor> {
        self.cursor
    }

    /// Records that [`record`](Self::record) can append before the next wrap (the free
    /// slots before the reserved last one), from the cursor; `None` without a cursor (no
    /// I/O).
    pub fn room(&self) -> Option<u32> {
        self.cursor.map(|c| room(c.next, self.slots))
    }

    /// The room a compacted journal has: `slots() - 1`, less one for the newest progress
    /// record if there is one. `None` without a cursor (no I/O).
    pub fn room_when_compacted(&self) -> Option<u32> {
        self.cursor
            .map(|c| room(u32::from(c.latest.is_some()), self.slots))
    }

    fn slot_addr(&self, index: u32) -> u32 {
        self.start + index * self.slot_len
    }

    fn padded(&self, raw: &[u8; RECORD_LEN]) -> ([u8; MAX_SLOT_LEN], usize) {
        let mut buf = [0xFF; MAX_SLOT_LEN];
        buf[..RECORD_LEN].copy_from_slice(raw);
        (buf, self.slot_len as usize)
    }

    /// Scans the region and returns the newest valid progress record, or `None` if there is
    /// none or a tombstone follows it. Torn and corrupt slots are skipped, never an error.
    /// Reads every slot (`slots()` reads of `record_len()` bytes). Read-only.
    pub fn load<F: NorFlash>(
        &mut self,
        flash: &mut F,
    ) -> Result<Option<JournalRecord>, JournalError<F::Error>> {
        self.cursor = None;
        let mut cursor = Cursor::EMPTY;
        let mut buf = [0u8; MAX_SLOT_LEN];
        let buf = &mut buf[..self.slot_len as usize];
        for index in 0..self.slots {
            flash
                .read(self.slot_addr(index), buf)
                .map_err(JournalError::Read)?;
            cursor.feed(index, classify(buf));
        }
        self.cursor = Some(cursor);
        Ok(cursor.latest)
    }

    /// Appends `rec` so that a later [`load`](Self::load) returns it. Scans first if the
    /// journal has no cursor yet. One write normally; on wrap a tombstone write, a region
    /// erase and the write (see the module docs: a cut there loses the resume point).
    ///
    /// On error the record may or may not have landed; the cursor is dropped and the next
    /// call rescans.
    pub fn record<F: NorFlash>(
        &mut self,
        flash: &mut F,
        rec: &JournalRecord,
    ) -> Result<(), JournalError<F::Error>> {
        let cursor = match self.cursor {
            Some(c) => c,
            None => {
                self.load(flash)?;
                self.cursor.unwrap_or(Cursor::EMPTY)
            }
        };
        let plan = plan_append(cursor.next, self.slots);
        self.cursor = None;
        if let Some(slot) = plan.tombstone {
            let (buf, len) = self.padded(&tombstone());
            flash
                .write(self.slot_addr(slot), &buf[..len])
                .map_err(JournalError::Write)?;
        }
        if plan.erase {
            flash
                .erase(self.start, self.end)
                .map_err(JournalError::Erase)?;
        }
        let (buf, len) = self.padded(&rec.encode());
        flash
            .write(self.slot_addr(plan.write_at), &buf[..len])
            .map_err(JournalError::Write)?;
        self.cursor = Some(Cursor {
            next: plan.write_at + 1,
            tail_cleared: false,
            latest: Some(*rec),
        });
        Ok(())
    }

    /// Forgets all records: afterwards [`load`](Self::load) returns `None`. Scans first if
    /// the journal has no cursor yet. Does nothing on an unused region; otherwise writes a
    /// tombstone (if a slot is free and the newest slot is not already one) and erases the
    /// region.
    ///
    /// On error the cursor is dropped. A cut during the tombstone write leaves the journal
    /// as it was; a cut during the erase leaves it cleared.
    pub fn clear<F: NorFlash>(&mut self, flash: &mut F) -> Result<(), JournalError<F::Error>> {
        let cursor = match self.cursor {
            Some(c) => c,
            None => {
                self.load(flash)?;
                self.cursor.unwrap_or(Cursor::EMPTY)
            }
        };
        let plan = plan_clear(&cursor, self.slots);
        self.cursor = None;
        if let Some(slot) = plan.tombstone {
            let (buf, len) = self.padded(&tombstone());
            flash
                .write(self.slot_addr(slot), &buf[..len])
                .map_err(JournalError::Write)?;
        }
        if plan.erase {
            flash
                .erase(self.start, self.end)
                .map_err(JournalError::Erase)?;
        }
        self.cursor = Some(Cursor::EMPTY);
        Ok(())
    }

    /// Makes room for the next `want` [`record`](Self::record)s so that they append without
    /// a wrap (so without an erase), wrapping early now if they would not fit; returns the
    /// room there is afterwards ([`room`](Self::room)). That is at least `want` unless even a
    /// compacted region is too small (`want > slots() - 2` with a progress record); the
    /// caller then appends only every [`record_stride`]`(want, room)`-th record, and this
    /// call has compacted only if that lowered the stride.
    ///
    /// Scans first if the journal has no cursor yet. No write or erase if the room suffices
    /// (or compacting would not help, see [`plan_make_room`]); otherwise a
    /// [`clear`](Self::clear) (tombstone, region erase) and a [`record`](Self::record) of the
    /// newest progress record at slot 0. A cut during it may lose the resume point (see the
    /// module docs); on error the cursor is dropped and the next call rescans.
    pub fn make_room<F: NorFlash>(
        &mut self,
        flash: &mut F,
        want: u32,
    ) -> Result<u32, JournalError<F::Error>> {
        let cursor = match self.cursor {
            Some(c) => c,
            None => {
                self.load(flash)?;
                self.cursor.unwrap_or(Cursor::EMPTY)
            }
        };
        if plan_make_room(&cursor, self.slots, want) {
            self.clear(flash)?;
            if let Some(rec) = cursor.latest {
                self.record(flash, &rec)?;
            }
        }
        Ok(self.room().unwrap_or(0))
    }

    /// The async twin of [`load`](Self::load). Cancel-safe (it only reads; a cancelled scan
    /// leaves no cursor and the next call rescans).
    pub async fn load_async<F: AsyncNorFlash>(
        &mut self,
        flash: &mut F,
    ) -> Result<Option<JournalRecord>, JournalError<F::Error>> {
        self.cursor = None;
        let mut cursor = Cursor::EMPTY;
        let mut buf = [0u8; MAX_SLOT_LEN];
        let buf = &mut buf[..self.slot_len as usize];
        for index in 0..self.slots {
            flash
                .read(self.slot_addr(index), buf)
                .await
                .map_err(JournalError::Read)?;
            cursor.feed(index, classify(buf));
        }
        self.cursor = Some(cursor);
        Ok(cursor.latest)
    }

    /// The async twin of [`record`](Self::record). Cancelling it has the effect of a power
    /// cut at that point (the cursor is dropped and the next call rescans).
    pub async fn record_async<F: AsyncNorFlash>(
        &mut self,
        flash: &mut F,
        rec: &JournalRecord,
    ) -> Result<(), JournalError<F::Error>> {
        let cursor = match self.cursor {
            Some(c) => c,
            None => {
                self.load_async(flash).await?;
                self.cursor.unwrap_or(Cursor::EMPTY)
            }
        };
        let plan = plan_append(cursor.next, self.slots);
        self.cursor = None;
        if let Some(slot) = plan.tombstone {
            let (buf, len) = self.padded(&tombstone());
            flash
                .write(self.slot_addr(slot), &buf[..len])
                .await
                .map_err(JournalError::Write)?;
        }
        if plan.erase {
            flash
                .erase(self.start, self.end)
                .await
                .map_err(JournalError::Erase)?;
        }
        let (buf, len) = self.padded(&rec.encode());
        flash
            .write(self.slot_addr(plan.write_at), &buf[..len])
            .await
            .map_err(JournalError::Write)?;
        self.cursor = Some(Cursor {
            next: plan.write_at + 1,
            tail_cleared: false,
            latest: Some(*rec),
        });
        Ok(())
    }

    /// The async twin of [`make_room`](Self::make_room). Cancelling it has the effect of a
    /// power cut at that point.
    pub async fn make_room_async<F: AsyncNorFlash>(
        &mut self,
        flash: &mut F,
        want: u32,
    ) -> Result<u32, JournalError<F::Error>> {
        let cursor = match self.cursor {
            Some(c) => c,
            None => {
                self.load_async(flash).await?;
                self.cursor.unwrap_or(Cursor::EMPTY)
            }
        };
        if plan_make_room(&cursor, self.slots, want) {
            self.clear_async(flash).await?;
            if let Some(rec) = cursor.latest {
                self.record_async(flash, &rec).await?;
            }
        }
        Ok(self.room().unwrap_or(0))
    }

    /// The async twin of [`clear`](Self::clear). Cancelling it has the effect of a power cut
    /// at that point.
    pub async fn clear_async<F: AsyncNorFlash>(
        &mut self,
        flash: &mut F,
    ) -> Result<(), JournalError<F::Error>> {
        let cursor = match self.cursor {
            Some(c) => c,
            None => {
                self.load_async(flash).await?;
                self.cursor.unwrap_or(Cursor::EMPTY)
            }
        };
        let plan = plan_clear(&cursor, self.slots);
        self.cursor = None;
        if let Some(slot) = plan.tombstone {
            let (buf, len) = self.padded(&tombstone());
            flash
                .write(self.slot_addr(slot), &buf[..len])
                .await
                .map_err(JournalError::Write)?;
        }
        if plan.erase {
            flash
                .erase(self.start, self.end)
                .await
                .map_err(JournalError::Erase)?;
        }
        self.cursor = Some(Cursor::EMPTY);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::block_on;
    use crate::ota::mem_flash::{MemFlash, MemFlashError};
    use std::vec::Vec;

    const START: u32 = 0x1000;
    const END: u32 = 0x2000;

    fn rec(n: u8, offset: u32) -> JournalRecord {
        JournalRecord {
            id: [n; 32],
            size: 0x10_0000,
            offset,
        }
    }

    fn geometry() -> FlashGeometry {
        FlashGeometry::of::<MemFlash<'static>>()
    }

    /// A record as it sits on flash: id 0x11.., size 0x1000, offset 0x800.
    const RECORD_FIXTURE: [u8; RECORD_LEN] = {
        let mut b = [0x11u8; RECORD_LEN];
        b[0] = 0x4F; // "OTAJ"
        b[1] = 0x54;
        b[2] = 0x41;
        b[3] = 0x4A;
        b[36] = 0x00; // size 0x1000
        b[37] = 0x10;
        b[38] = 0x00;
        b[39] = 0x00;
        b[40] = 0x00; // offset 0x800
        b[41] = 0x08;
        b[42] = 0x00;
        b[43] = 0x00;
        b
    };

    #[test]
    fn record_codec() {
        let r = JournalRecord {
            id: [0x11; 32],
            size: 0x1000,
            offset: 0x800,
        };
        let enc = r.encode();
        assert_eq!(&enc[..CRC_AT], &RECORD_FIXTURE[..CRC_AT]);
        // Standard CRC-32 (zlib) of the first 44 bytes.
        let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&RECORD_FIXTURE[..CRC_AT]);
        assert_eq!(&enc[CRC_AT..], &crc.to_le_bytes());
        assert_eq!(classify(&enc), SlotContent::Progress(r));
        assert_eq!(classify(&tombstone()), SlotContent::Cleared);
        assert_eq!(classify(&[0xFF; 64]), SlotContent::Erased);
        assert_eq!(classify(&[0xFF; 3]), SlotContent::Erased);
        assert_eq!(classify(&enc[..40]), SlotContent::Garbage);
        // Any single flipped bit makes the record garbage.
        for bit in 0..RECORD_LEN * 8 {
            let mut b = enc;
            b[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(classify(&b), SlotContent::Garbage, "bit {bit}");
        }
        // A valid CRC with an unknown magic is garbage too.
        let other = encode_raw(0x1234_5678, &[0; 32], 0, 0);
        assert_eq!(classify(&other), SlotContent::Garbage);
        // Half a record (a torn write) is garbage.
        let mut torn = [0xFF; RECORD_LEN];
        torn[..24].copy_from_slice(&enc[..24]);
        assert_eq!(classify(&torn), SlotContent::Garbage);
    }

    #[test]
    fn erase_progress_records() {
        let r = JournalRecord::erase_progress(0x1E_F000, 0x4_0000);
        assert!(r.is_erase_progress());
        assert!(!rec(1, 0).is_erase_progress());
        assert_eq!(&r.encode()[4..36], b"cellular-ota: slot erased (idle)");
        assert_eq!(classify(&r.encode()), SlotContent::Progress(r));
        // It is an ordinary progress record for load, record and clear.
        let mut mem = std::vec![0u8; 0x3000];
        let mut flash: MemFlash<'_> = MemFlash::new_erased(&mut mem);
        let mut j = Journal::new(START, END, geometry()).unwrap();
        j.record(&mut flash, &rec(1, 4096)).unwrap();
        j.record(&mut flash, &r).unwrap();
        assert_eq!(j.load(&mut flash).unwrap(), Some(r));
    }

    #[test]
    fn layout_rules() {
        let g = geometry();
        let j = Journal::new(START, END, g).unwrap();
        assert_eq!((j.record_len(), j.slots()), (48, 85));
        assert_eq!((j.start(), j.end()), (START, END));
        let g16 = FlashGeometry {
            read: 16,
            write: 16,
            erase: 4096,
        };
        assert_eq!(Journal::new(START, END, g16).unwrap().record_len(), 48);
        let g32 = FlashGeometry {
            read: 4,
            write: 32,
            erase: 4096,
        };
        assert_eq!(Journal::new(START, END, g32).unwrap().record_len(), 64);
        let g128 = FlashGeometry {
            read: 1,
            write: 128,
            erase: 4096,
        };
        assert!(matches!(
            Journal::new(START, END, g128),
            Err(JournalLayoutError::UnsupportedGeometry { write: 128, .. })
        ));
        assert!(matches!(
            Journal::new(
                START,
                END,
                FlashGeometry {
                    read: 0,
                    write: 4,
                    erase: 4096
                }
            ),
            Err(JournalLayoutError::UnsupportedGeometry { .. })
        ));
        assert!(matches!(
            Journal::new(START, END, FlashGeometry { erase: 0, ..g }),
            Err(JournalLayoutError::UnsupportedGeometry { .. })
        ));
        assert!(matches!(
            Journal::new(START + 4, END, g),
            Err(JournalLayoutError::Misaligned { .. })
        ));
        assert!(matches!(
            Journal::new(END, START, g),
            Err(JournalLayoutError::Misaligned { .. })
        ));
        let tiny = FlashGeometry {
            read: 1,
            write: 4,
            erase: 64,
        };
        assert_eq!(
            Journal::new(0, 64, tiny),
            Err(JournalLayoutError::TooSmall { slots: 1 })
        );
        assert_eq!(Journal::new(0, 128, tiny).unwrap().slots(), 2);
        assert_eq!(
            FlashGeometry::of_async::<MemFlash<'static, 4096, 8, 2>>(),
            FlashGeometry {
                read: 2,
                write: 8,
                erase: 4096
            }
        );
    }

    #[test]
    fn plans() {
        assert_eq!(
            plan_append(0, 85),
            AppendPlan {
                tombstone: None,
                erase: false,
                write_at: 0
            }
        );
        assert_eq!(plan_append(83, 85).write_at, 83);
        assert_eq!(
            plan_append(84, 85),
            AppendPlan {
                tombstone: Some(84),
                erase: true,
                write_at: 0
            }
        );
        assert_eq!(
            plan_append(85, 85),
            AppendPlan {
                tombstone: None,
                erase: true,
                write_at: 0
            }
        );
        assert_eq!(
            plan_clear(&Cursor::EMPTY, 85),
            ClearPlan {
                tombstone: None,
                erase: false
            }
        );
        let used = Cursor {
            next: 3,
            tail_cleared: false,
            latest: None,
        };
        assert_eq!(
            plan_clear(&used, 85),
            ClearPlan {
                tombstone: Some(3),
                erase: true
            }
        );
        let cleared = Cursor {
            tail_cleared: true,
            ..used
        };
        assert_eq!(plan_clear(&cleared, 85).tombstone, None);
        let full = Cursor { next: 85, ..used };
        assert_eq!(
            plan_clear(&full, 85),
            ClearPlan {
                tombstone: None,
                erase: true
            }
        );
        // Room: the free slots before the reserved last one.
        assert_eq!(
            (room(0, 85), room(3, 85), room(84, 85), room(85, 85)),
            (84, 81, 0, 0)
        );
        // make_room compacts only when the room is short and compacting adds some.
        let latest = Some(JournalRecord {
            id: [1; 32],
            size: 1,
            offset: 0,
        });
        let at = |next, latest| Cursor {
            next,
            tail_cleared: false,
            latest,
        };
        assert!(!plan_make_room(&at(3, latest), 85, 81));
        assert!(plan_make_room(&at(3, latest), 85, 82));
        assert!(plan_make_room(&at(85, None), 85, 1));
        // Compacted already: nothing to gain, even if `want` does not fit.
        assert!(!plan_make_room(&Cursor::EMPTY, 85, 500));
        assert!(!plan_make_room(&at(1, latest), 85, 500));
        // More than a compacted region holds: only if it lowers the stride.
        assert!(plan_make_room(&at(1, None), 85, 500)); // 7 -> 6
        assert!(!plan_make_room(&at(2, latest), 85, 500)); // 7 either way
        assert!(plan_make_room(&at(30, latest), 85, 160)); // 3 -> 2
        assert!(!plan_make_room(&at(30, latest), 85, 0));
        assert!(plan_make_room(&at(84, latest), 85, 1000)); // no room -> 13
        assert_eq!(
            (
                record_stride(0, 0),
                record_stride(5, 5),
                record_stride(6, 5),
                record_stride(384, 84),
                record_stride(1, 0)
            ),
            (1, 1, 2, 5, u32::MAX)
        );
    }

    #[test]
    fn make_room_wraps_early_and_keeps_the_newest_record() {
        let mut mem = std::vec![0u8; 0x3000];
        let mut flash: MemFlash<'_> = MemFlash::new_erased(&mut mem);
        let mut j = Journal::new(START, END, geometry()).unwrap();
        assert_eq!(j.room(), None);
        // Scans first; an empty region has all the room there is: no I/O.
        assert_eq!(j.make_room(&mut flash, 1000).unwrap(), 84);
        assert_eq!((flash.stats().writes, flash.stats().erases), (0, 0));
        for i in 0..60 {
            j.record(&mut flash, &rec(9, i * 4096)).unwrap();
        }
        assert_eq!((j.room(), j.room_when_compacted()), (Some(24), Some(83)));
        // Enough room: nothing happens.
        flash.reset_stats();
        assert_eq!(j.make_room(&mut flash, 24).unwrap(), 24);
        assert_eq!((flash.stats().writes, flash.stats().erases), (0, 0));
        // Not enough: tombstone, erase, the newest record again at slot 0.
        assert_eq!(j.make_room(&mut flash, 25).unwrap(), 83);
        assert_eq!((flash.stats().writes, flash.stats().erases), (2, 1));
        let mut fresh = Journal::new(START, END, geometry()).unwrap();
        assert_eq!(fresh.load(&mut flash).unwrap(), Some(rec(9, 59 * 4096)));
        assert_eq!(fresh.cursor().unwrap().next, 1);
        // The 83 records it promised append without an erase.
        flash.reset_stats();
        for i in 0..83 {
            fresh.record(&mut flash, &rec(9, (60 + i) * 4096)).unwrap();
        }
        assert_eq!((flash.stats().writes, flash.stats().erases), (83, 0));
        assert_eq!(fresh.room(), Some(0));
        // Asking for more than a compacted region holds: compacts, returns what there is.
        assert_eq!(fresh.make_room(&mut flash, 500).unwrap(), 83);
        assert_eq!(fresh.make_room(&mut flash, 500).unwrap(), 83);
        assert_eq!(flash.stats().erases, 1);
        // A region with nothing to keep (cleared) compacts to an empty one.
        fresh.clear(&mut flash).unwrap();
        assert_eq!(fresh.make_room(&mut flash, 84).unwrap(), 84);
        assert_eq!(fresh.load(&mut flash).unwrap(), None);
        // Garbage only, no record: a make_room that compacts leaves no record behind.
        let mut mem = std::vec![0u8; 0x3000];
        let mut flash: MemFlash<'_> = MemFlash::new_erased(&mut mem);
        flash.as_mut_slice()[START as usize + 10 * 48] = 0;
        let mut j = Journal::new(START, END, geometry()).unwrap();
        assert_eq!(j.make_room(&mut flash, 80).unwrap(), 84);
        assert_eq!(j.load(&mut flash).unwrap(), None);
        assert_eq!(j.cursor().unwrap().next, 0);
        // Read errors are reported.
        let mut small = std::vec![0u8; 0x1800];
        let mut fs: MemFlash<'_> = MemFlash::new_erased(&mut small);
        let mut j = Journal::new(START, END, geometry()).unwrap();
        assert!(matches!(
            j.make_room(&mut fs, 1),
            Err(JournalError::Read(_))
        ));
        assert!(block_on(j.make_room_async(&mut fs, 1)).is_err());
    }

    #[test]
    fn record_load_clear() {
        let mut mem = std::vec![0u8; 0x3000];
        let mut flash: MemFlash<'_> = MemFlash::new_erased(&mut mem);
        let mut j = Journal::new(START, END, geometry()).unwrap();
        assert_eq!(j.cursor(), None);
        // Clear on an erased region does nothing.
        j.clear(&mut flash).unwrap();
        assert_eq!((flash.stats().writes, flash.stats().erases), (0, 0));
        for i in 0..10u32 {
            j.record(&mut flash, &rec(1, i * 4096)).unwrap();
        }
        assert_eq!(flash.stats().writes, 10);
        let mut fresh = Journal::new(START, END, geometry()).unwrap();
        assert_eq!(fresh.load(&mut flash).unwrap(), Some(rec(1, 9 * 4096)));
        assert_eq!(fresh.cursor().unwrap().next, 10);
        // Bytes outside the region untouched.
        assert!(
            flash.as_slice()[..START as usize]
                .iter()
                .all(|&b| b == 0xFF)
        );
        assert!(flash.as_slice()[END as usize..].iter().all(|&b| b == 0xFF));
        fresh.clear(&mut flash).unwrap();
        assert_eq!(fresh.load(&mut flash).unwrap(), None);
        assert!(
            flash.as_slice()[START as usize..END as usize]
                .iter()
                .all(|&b| b == 0xFF)
        );
        // A second clear right away writes nothing.
        flash.reset_stats();
        fresh.clear(&mut flash).unwrap();
        assert_eq!((flash.stats().writes, flash.stats().erases), (0, 0));
    }

    #[test]
    fn wraps_and_erases_only_when_full() {
        let mut mem = std::vec![0u8; 0x3000];
        let mut flash: MemFlash<'_> = MemFlash::new_erased(&mut mem);
        let mut j = Journal::new(START, END, geometry()).unwrap();
        let per_cycle = j.slots() - 1;
        for i in 0..per_cycle {
            j.record(&mut flash, &rec(2, i)).unwrap();
        }
        assert_eq!(flash.stats().erases, 0);
        j.record(&mut flash, &rec(2, 1000)).unwrap();
        assert_eq!(flash.stats().erases, 1);
        // Tombstone + record.
        assert_eq!(flash.stats().writes, per_cycle + 2);
        let mut fresh = Journal::new(START, END, geometry()).unwrap();
        assert_eq!(fresh.load(&mut flash).unwrap(), Some(rec(2, 1000)));
        assert_eq!(fresh.cursor().unwrap().next, 1);
        // 500 more records: 500 / 84 wraps.
        flash.reset_stats();
        for i in 0..500 {
            fresh.record(&mut flash, &rec(2, i)).unwrap();
        }
        assert_eq!(flash.stats().erases, 500 / per_cycle);
        assert_eq!(
            Journal::new(START, END, geometry())
                .unwrap()
                .load(&mut flash)
                .unwrap(),
            Some(rec(2, 499))
        );
    }

    #[test]
    fn garbage_is_skipped_and_never_overwritten() {
        let mut mem = std::vec![0u8; 0x3000];
        let mut flash: MemFlash<'_> = MemFlash::new_erased(&mut mem);
        let mut j = Journal::new(START, END, geometry()).unwrap();
        j.record(&mut flash, &rec(3, 1)).unwrap();
        // A torn record in slot 1, garbage in slot 5 (e.g. left by a torn erase).
        flash.as_mut_slice()[START as usize + 48..START as usize + 60].fill(0x00);
        flash.as_mut_slice()[START as usize + 5 * 48 + 7] = 0x12;
        let mut j = Journal::new(START, END, geometry()).unwrap();
        assert_eq!(j.load(&mut flash).unwrap(), Some(rec(3, 1)));
        assert_eq!(j.cursor().unwrap().next, 6);
        j.record(&mut flash, &rec(3, 2)).unwrap();
        assert_eq!(j.load(&mut flash).unwrap(), Some(rec(3, 2)));
        // Garbage in the last slot: the region is full, no room for a tombstone.
        let mut mem = std::vec![0u8; 0x3000];
        let mut flash: MemFlash<'_> = MemFlash::new_erased(&mut mem);
        flash.as_mut_slice()[START as usize + 84 * 48] = 0;
        let mut j = Journal::new(START, END, geometry()).unwrap();
        assert_eq!(j.load(&mut flash).unwrap(), None);
        j.record(&mut flash, &rec(4, 9)).unwrap();
        assert_eq!(flash.stats().erases, 1);
        assert_eq!(j.load(&mut flash).unwrap(), Some(rec(4, 9)));
        j.clear(&mut flash).unwrap();
        assert_eq!(j.load(&mut flash).unwrap(), None);
    }

    /// Operations of the power-cut script.
    #[derive(Clone, Copy, Debug)]
    enum Op {
        Record(JournalRecord),
        Clear,
        /// `make_room(want)`: an early wrap when the room is short.
        MakeRoom(u32),
    }

    fn script() -> Vec<Op> {
        let mut ops = Vec::new();
        // Enough records to wrap twice in a 2-sector region (169 slots), with clears between.
        for i in 0..200u32 {
            ops.push(Op::Record(rec(5, i * 4096)));
            if i == 50 || i == 120 {
                ops.push(Op::Clear);
                ops.push(Op::Clear);
            }
            // Early wraps, the way the OTA sink asks for room for a range of 16 sectors
            // (compacting when the room is short), and now and then with nothing to do.
            if i % 16 == 7 {
                ops.push(Op::MakeRoom(16));
            }
            if [30, 31, 100, 170].contains(&i) {
                ops.push(Op::MakeRoom(160));
            }
        }
        ops.push(Op::Clear);
        ops.push(Op::Record(rec(6, 0)));
        ops
    }

    fn state_after(ops: &[Op]) -> Option<JournalRecord> {
        ops.iter().fold(None, |state, op| match op {
            Op::Record(r) => Some(*r),
            Op::Clear => None,
            Op::MakeRoom(_) => state,
        })
    }

    fn run<E>(
        j: &mut Journal,
        flash: &mut impl NorFlash<Error = E>,
        op: Op,
    ) -> Result<(), JournalError<E>> {
        match op {
            Op::Record(r) => j.record(flash, &r),
            Op::Clear => j.clear(flash),
            Op::MakeRoom(want) => j.make_room(flash, want).map(|_| ()),
        }
    }

    #[test]
    fn power_cut_at_every_operation() {
        const REGION: (u32, u32) = (0x1000, 0x3000);
        let ops = script();
        let mut cut_points = 0;
        for k in 0.. {
            let mut mem = std::vec![0u8; 0x4000];
            let mut flash: MemFlash<'_> = MemFlash::new_erased(&mut mem);
            flash.fail_after(k);
            let mut j = Journal::new(REGION.0, REGION.1, geometry()).unwrap();
            let mut failed_at = None;
            let mut wrapping = false;
            let mut early_wraps = 0;
            for (i, op) in ops.iter().enumerate() {
                let cursor = j.cursor().unwrap_or(Cursor::EMPTY);
                wrapping = match op {
                    Op::Record(_) => cursor.next + 1 >= j.slots(),
                    Op::MakeRoom(want) => plan_make_room(&cursor, j.slots(), *want),
                    Op::Clear => false,
                };
                early_wraps += usize::from(matches!(op, Op::MakeRoom(_)) && wrapping);
                match run(&mut j, &mut flash, *op) {
                    Ok(()) => {}
                    Err(JournalError::Write(MemFlashError::PowerCut))
                    | Err(JournalError::Erase(MemFlashError::PowerCut)) => {
                        failed_at = Some(i);
                        break;
                    }
                    Err(e) => panic!("cut {k}, op {i}: {e:?}"),
                }
            }
            let Some(i) = failed_at else {
                assert!(flash.is_armed(), "the script ended without using cut {k}");
                // The script wraps early (compacting) more than once.
                assert!(early_wraps >= 3, "{early_wraps}");
                break;
            };
            cut_points += 1;
            // "Reboot": a new journal finds the state before or after the cut operation, or
            // (only for a clear or a wrap) nothing.
            let before = state_after(&ops[..i]);
            let after = state_after(&ops[..=i]);
            let mut j = Journal::new(REGION.0, REGION.1, geometry()).unwrap();
            let found = j.load(&mut flash).unwrap();
            let lost_on_wrap = wrapping && found.is_none();
            assert!(
                found == before || found == after || lost_on_wrap,
                "cut {k} at op {i}: found {found:?}, before {before:?}, after {after:?}"
            );
            // Carry on from the cut operation: no write may hit a non-erased slot.
            for op in &ops[i..] {
                run(&mut j, &mut flash, *op).unwrap();
            }
            let mut j = Journal::new(REGION.0, REGION.1, geometry()).unwrap();
            assert_eq!(j.load(&mut flash).unwrap(), state_after(&ops), "cut {k}");
        }
        // 202 records + 5 clears, 2 wraps (tombstone + erase), clears with tombstone + erase.
        assert!(cut_points > 200, "{cut_points}");
    }

    #[test]
    fn respects_write_and_read_granularity() {
        let mut mem = std::vec![0u8; 0x3000];
        let mut flash: MemFlash<'_, 4096, 32, 16> = MemFlash::new_erased(&mut mem);
        let g = FlashGeometry::of::<MemFlash<'static, 4096, 32, 16>>();
        let mut j = Journal::new(START, END, g).unwrap();
        assert_eq!(j.record_len(), 64);
        for i in 0..200 {
            j.record(&mut flash, &rec(7, i)).unwrap();
        }
        j.clear(&mut flash).unwrap();
        j.record(&mut flash, &rec(8, 1)).unwrap();
        let mut j = Journal::new(START, END, g).unwrap();
        assert_eq!(j.load(&mut flash).unwrap(), Some(rec(8, 1)));
    }

    #[test]
    fn read_errors_are_reported() {
        let mut mem = std::vec![0u8; 0x1800];
        let mut flash: MemFlash<'_> = MemFlash::new_erased(&mut mem);
        // Region past the end of the flash.
        let mut j = Journal::new(START, END, geometry()).unwrap();
        assert!(matches!(
            j.load(&mut flash),
            Err(JournalError::Read(MemFlashError::OutOfBounds { .. }))
        ));
        assert!(matches!(
            j.record(&mut flash, &rec(1, 1)),
            Err(JournalError::Read(_))
        ));
        assert!(matches!(j.clear(&mut flash), Err(JournalError::Read(_))));
        assert_eq!(j.cursor(), None);
    }

    #[test]
    fn async_twin_writes_the_same_bytes() {
        let mut mem_a = std::vec![0u8; 0x3000];
        let mut mem_b = std::vec![0u8; 0x3000];
        let mut fa: MemFlash<'_> = MemFlash::new_erased(&mut mem_a);
        let mut fb: MemFlash<'_> = MemFlash::new_erased(&mut mem_b);
        let g = FlashGeometry::of_async::<MemFlash<'static>>();
        let mut ja = Journal::new(START, END, g).unwrap();
        let mut jb = Journal::new(START, END, g).unwrap();
        block_on(ja.clear_async(&mut fa)).unwrap();
        for op in script() {
            match op {
                Op::Record(r) => block_on(ja.record_async(&mut fa, &r)).unwrap(),
                Op::Clear => block_on(ja.clear_async(&mut fa)).unwrap(),
                Op::MakeRoom(want) => {
                    let room = block_on(ja.make_room_async(&mut fa, want)).unwrap();
                    assert_eq!(Some(room), ja.room());
                }
            }
            run(&mut jb, &mut fb, op).unwrap();
            assert_eq!(fa.as_slice(), fb.as_slice());
        }
        let mut j = Journal::new(START, END, g).unwrap();
        assert_eq!(block_on(j.load_async(&mut fa)).unwrap(), Some(rec(6, 0)));
        // Async read errors.
        let mut small = std::vec![0u8; 0x1800];
        let mut fs: MemFlash<'_> = MemFlash::new_erased(&mut small);
        let mut j = Journal::new(START, END, g).unwrap();
        assert!(block_on(j.record_async(&mut fs, &rec(1, 1))).is_err());
        assert!(block_on(j.clear_async(&mut fs)).is_err());
    }
}
