//! The otadata partition: which OTA slot the ESP-IDF bootloader boots (reference §3.3–3.5).
//!
//! otadata is two 4 KiB sectors, each starting with one 32-byte `esp_ota_select_entry_t`
//! ([`OtaSelectEntry`]). The bootloader ignores an entry whose `ota_seq` is erased, whose
//! state is INVALID or ABORTED, or whose CRC does not match; of the entries left it takes the
//! one with the highest `ota_seq` (entry 0 on a tie) and boots slot
//! `(ota_seq - 1) % app_count`. To switch slots the app rewrites the *other* entry with a
//! higher sequence number, so a power cut during the write leaves the old selection intact.
//!
//! This module has three layers:
//!
//! 1. **Pure rules**, bit-exact with ESP-IDF: [`ota_seq_crc`], [`OtaSelectEntry::is_valid`],
//!    [`select_entry`], [`boot_slot`], [`next_seq`], [`bootloader_pass`].
//! 2. **Plans**: [`plan_activate`] and [`plan_set_state`] turn the two entries read from flash
//!    into the single entry write that performs an operation ([`OtadataWrite`]).
//! 3. **Flash shells**: [`Otadata`] (blocking `NorFlash`) and [`AsyncOtadata`] (async
//!    `NorFlash`) read the entries, call the plans and perform the erase + write. They hold no
//!    state between calls: every call reads the flash again.
//!
//! Three deliberate differences from `esp-bootloader-esp-idf` 0.6 (§3.7): the current slot
//! honours `ota_state` (an ABORTED/INVALID newer entry is skipped, as the bootloader does); a
//! corrupt entry is ignored rather than turned into an error; and a newly selected slot gets a
//! freshly written state, never the state left in the sector it overwrites.

use embedded_storage::nor_flash::NorFlash;

use super::partition::{MAX_OTA_SLOTS, OTADATA_SIZE, PartitionTable};

/// Size of one otadata sector; entry `i` starts at `i * OTADATA_SECTOR_SIZE`.
pub const OTADATA_SECTOR_SIZE: u32 = 0x1000;
/// Size of an encoded [`OtaSelectEntry`] (`sizeof(esp_ota_select_entry_t)`).
pub const OTA_SELECT_ENTRY_LEN: usize = 32;

/// The CRC the bootloader puts in an otadata entry: `esp_rom_crc32_le(UINT32_MAX, &ota_seq,
/// 4)`. In catalogue terms: width 32, poly 0x04C11DB7, **init 0**, reflected, xorout
/// 0xFFFFFFFF (standard CRC-32 has init 0xFFFFFFFF). Reference §3.3.
pub const OTA_SEQ_CRC_ALGORITHM: crc::Algorithm<u32> = crc::Algorithm {
    width: 32,
    poly: 0x04C1_1DB7,
    init: 0,
    refin: true,
    refout: true,
    xorout: 0xFFFF_FFFF,
    check: 0xD202_D277,
    residue: 0xDEBB_20E3,
};

/// The CRC of an otadata entry: computed over the four little-endian bytes of `ota_seq` only
/// (`bootloader_common_ota_select_crc`).
pub fn ota_seq_crc(seq: u32) -> u32 {
    crate::ota::crc32::crc32_reflected(0, &seq.to_le_bytes())
}

/// `ota_state` of an otadata entry (`esp_ota_img_states_t`, §3.5). Unknown values are kept in
/// [`Other`](Self::Other) and never make decoding fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum OtaImageState {
    /// 0: just written; its first boot has not been monitored yet. A rollback-enabled
    /// bootloader turns it into `PendingVerify` when it boots it.
    New,
    /// 1: booted once and waiting for the app to confirm itself. A rollback-enabled
    /// bootloader turns it into `Aborted` on the next reset.
    PendingVerify,
    /// 2: confirmed working.
    Valid,
    /// 3: confirmed broken; the bootloader skips this entry.
    Invalid,
    /// 4: never confirmed; the bootloader skips this entry.
    Aborted,
    /// 0xFFFFFFFF: no rollback tracking (what apps built without rollback write).
    Undefined,
    /// Any other value, as stored. The bootloader treats it like a valid state.
    Other(u32),
}

impl OtaImageState {
    /// Decodes a raw state; never fails.
    pub const fn from_raw(raw: u32) -> Self {
        match raw {
            0 => OtaImageState::New,
            1 => OtaImageState::PendingVerify,
            2 => OtaImageState::Valid,
            3 => OtaImageState::Invalid,
            4 => OtaImageState::Aborted,
            0xFFFF_FFFF => OtaImageState::Undefined,
            other => OtaImageState::Other(other),
        }
    }

    /// The raw value.
    pub const fn to_raw(self) -> u32 {
        match self {
            OtaImageState::New => 0,
            OtaImageState::PendingVerify => 1,
            OtaImageState::Valid => 2,
            OtaImageState::Invalid => 3,
            OtaImageState::Aborted => 4,
            OtaImageState::Undefined => 0xFFFF_FFFF,
            OtaImageState::Other(raw) => raw,
        }
    }

    /// Whether this state alone makes the bootloader skip the entry (INVALID or ABORTED),
    /// whatever the rollback configuration.
    pub const fn disqualifies(self) -> bool {
        matches!(self.to_raw(), 3 | 4)
    }
}

/// One otadata entry (`esp_ota_select_entry_t`, 32 bytes little-endian, §3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct OtaSelectEntry {
    /// `ota_seq`: the sequence number; slot = `(seq - 1) % app_count`. `0xFFFFFFFF` = erased.
    pub seq: u32,
    /// `seq_label`: unused by ESP-IDF, written as `0xFF`.
    pub seq_label: [u8; 20],
    /// `ota_state`.
    pub state: OtaImageState,
    /// `crc`: [`ota_seq_crc`] of `seq`.
    pub crc: u32,
}

impl OtaSelectEntry {
    /// An erased entry (all bytes `0xFF`).
    pub const ERASED: OtaSelectEntry = OtaSelectEntry {
        seq: u32::MAX,
        seq_label: [0xFF; 20],
        state: OtaImageState::Undefined,
        crc: u32::MAX,
    };

    /// A fresh entry: this sequence number and state, label `0xFF`, correct CRC.
    pub fn new(seq: u32, state: OtaImageState) -> Self {
        OtaSelectEntry {
            seq,
            seq_label: [0xFF; 20],
            state,
            crc: ota_seq_crc(seq),
        }
    }

    /// Decodes 32 bytes; never fails (validity is a separate question, see
    /// [`is_valid`](Self::is_valid)).
    pub fn decode(bytes: &[u8; OTA_SELECT_ENTRY_LEN]) -> Self {
        let word = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let mut seq_label = [0u8; 20];
        seq_label.copy_from_slice(&bytes[4..24]);
        OtaSelectEntry {
            seq: word(0),
            seq_label,
            state: OtaImageState::from_raw(word(24)),
            crc: word(28),
        }
    }

    /// Encodes the 32 bytes.
    pub fn encode(&self) -> [u8; OTA_SELECT_ENTRY_LEN] {
        let mut b = [0u8; OTA_SELECT_ENTRY_LEN];
        b[0..4].copy_from_slice(&self.seq.to_le_bytes());
        b[4..24].copy_from_slice(&self.seq_label);
        b[24..28].copy_from_slice(&self.state.to_raw().to_le_bytes());
        b[28..32].copy_from_slice(&self.crc.to_le_bytes());
        b
    }

    /// Whether the stored CRC matches `seq`.
    pub fn crc_matches(&self) -> bool {
        self.crc == ota_seq_crc(self.seq)
    }

    /// `bootloader_common_ota_select_invalid`: `seq` erased, or state INVALID / ABORTED.
    /// (The CRC is not looked at; an entry can be neither invalid nor valid.)
    pub fn is_invalid(&self) -> bool {
        self.seq == u32::MAX || self.state.disqualifies()
    }

    /// `bootloader_common_ota_select_valid`: not [invalid](Self::is_invalid) and the CRC
    /// matches. Only valid entries can select a slot.
    pub fn is_valid(&self) -> bool {
        !self.is_invalid() && self.crc_matches()
    }

    /// The slot this entry's `seq` maps to with `app_count` OTA slots: `(seq - 1) %
    /// app_count` in `u32` arithmetic, exactly as the bootloader computes it (so `seq == 0`
    /// wraps to `0xFFFFFFFF % app_count`). `None` if `app_count` is 0. Says nothing about
    /// validity.
    pub fn slot_for(&self, app_count: u8) -> Option<u8> {
        slot_of_seq(self.seq, app_count)
    }
}

fn slot_of_seq(seq: u32, app_count: u8) -> Option<u8> {
    if app_count == 0 {
        return None;
    }
    // The remainder is below app_count <= 255.
    Some((seq.wrapping_sub(1) % u32::from(app_count)) as u8)
}

/// `bootloader_common_get_active_otadata`: the index (0 or 1) of the valid entry with the
/// highest `seq`; entry 0 wins a tie. `None` if neither entry is valid.
pub fn select_entry(e0: &OtaSelectEntry, e1: &OtaSelectEntry) -> Option<usize> {
    match (e0.is_valid(), e1.is_valid()) {
        (true, true) if e1.seq > e0.seq => Some(1),
        (true, _) => Some(0),
        (false, true) => Some(1),
        (false, false) => None,
    }
}

/// What the bootloader selects from otadata (`bootloader_utility_get_selected_boot_partition`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BootChoice {
    /// The partition table has no `ota_N` slots; otadata is not consulted. The bootloader
    /// boots `factory` (see [`PartitionTable::boot_partition`]).
    NoOtaSlots,
    /// Neither entry is valid (erased, INVALID/ABORTED, or bad CRC). The bootloader boots
    /// `factory` if the table has one, otherwise `ota_0`.
    NoValidEntry,
    /// A valid entry selects an OTA slot.
    Ota {
        /// The slot: `(seq - 1) % app_count`.
        slot: u8,
        /// Which entry (0 or 1) selected it: the *active* entry.
        entry: usize,
        /// That entry's sequence number.
        seq: u32,
        /// That entry's state.
        state: OtaImageState,
    },
}

impl BootChoice {
    /// The selected OTA slot, if any.
    pub const fn ota_slot(&self) -> Option<u8> {
        match self {
            BootChoice::Ota { slot, .. } => Some(*slot),
            _ => None,
        }
    }

    /// The active entry index, if any.
    pub const fn active_entry(&self) -> Option<usize> {
        match self {
            BootChoice::Ota { entry, .. } => Some(*entry),
            _ => None,
        }
    }
}

/// The bootloader's choice for these two entries and `app_count` OTA slots, without any
/// rollback rewriting (see [`bootloader_pass`] for that). This is also what is running now,
/// unless the bootloader had to fall back because the selected image failed verification.
pub fn boot_slot(entries: &[OtaSelectEntry; 2], app_count: u8) -> BootChoice {
    if app_count == 0 {
        return BootChoice::NoOtaSlots;
    }
    match select_entry(&entries[0], &entries[1]) {
        Some(entry) => {
            let e = &entries[entry];
            BootChoice::Ota {
                slot: slot_of_seq(e.seq, app_count).unwrap_or(0),
                entry,
                seq: e.seq,
                state: e.state,
            }
        }
        None => BootChoice::NoValidEntry,
    }
}

/// The result of [`bootloader_pass`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BootloaderPass {
    /// What the bootloader boots (its state field already shows any change made).
    pub choice: BootChoice,
    /// Which entries the bootloader rewrote in place.
    pub rewritten: [bool; 2],
}

/// Models one reset of an ESP-IDF bootloader on otadata, updating `entries` as it would.
///
/// With `rollback_enabled` (`CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE`), every PENDING_VERIFY
/// entry first becomes ABORTED, then a selected NEW entry becomes PENDING_VERIFY. Without it
/// nothing is rewritten (the stock espflash bootloader, §3.5). Not modelled: the fallback when
/// the selected image fails verification, and `set_actual_ota_seq` (which, with no factory app
/// and both entries erased, writes `seq = slot + 1`, VALID into entry 0 after booting).
pub fn bootloader_pass(
    entries: &mut [OtaSelectEntry; 2],
    app_count: u8,
    rollback_enabled: bool,
) -> BootloaderPass {
    let mut rewritten = [false; 2];
    if rollback_enabled {
        for (e, w) in entries.iter_mut().zip(rewritten.iter_mut()) {
            if e.state == OtaImageState::PendingVerify {
                e.state = OtaImageState::Aborted;
                *w = true;
            }
        }
    }
    let mut choice = boot_slot(entries, app_count);
    if rollback_enabled {
        if let BootChoice::Ota { entry, state, .. } = &mut choice {
            if *state == OtaImageState::New {
                *state = OtaImageState::PendingVerify;
                if let Some(e) = entries.get_mut(*entry) {
                    e.state = OtaImageState::PendingVerify;
                }
                if let Some(w) = rewritten.get_mut(*entry) {
                    *w = true;
                }
            }
        }
    }
    BootloaderPass { choice, rewritten }
}

/// The sequence number that makes the bootloader boot `target_slot`: the smallest
/// `s >= active_seq` with `(s - 1) % ota_count == target_slot` (`compute_ota_seq_for_target_slot`
/// in `esp_ota_ops.c`: `((target_slot + 1) % ota_count) + ota_count * i`), or `target_slot + 1`
/// if no entry is valid (`active_seq == None`).
///
/// If the active entry already maps to `target_slot` this returns `active_seq` itself; ESP-IDF
/// then rewrites that entry in place ([`plan_activate`] does the same). For `active_seq == 0`
/// (possible only with a hand-written entry) the wrapping slot formula is honoured, so the
/// result always maps to `target_slot`, which ESP-IDF's loop does not guarantee there.
///
/// `None` if `ota_count` is 0 or above 16, `target_slot >= ota_count`, or the result would
/// reach `0xFFFFFFFF` (the erased marker) — sequence space is exhausted after ~4·10⁹ updates.
pub fn next_seq(active_seq: Option<u32>, target_slot: u8, ota_count: u8) -> Option<u32> {
    if ota_count == 0 || ota_count > MAX_OTA_SLOTS || target_slot >= ota_count {
        return None;
    }
    let Some(active) = active_seq else {
        return Some(u32::from(target_slot) + 1);
    };
    if slot_of_seq(active, ota_count) == Some(target_slot) {
        return (active != u32::MAX).then_some(active);
    }
    let count = u64::from(ota_count);
    let base = (u64::from(target_slot) + 1) % count;
    let active = u64::from(active);
    // Smallest base + count*i >= active; base + 0 maps to target unless it is 0 and the
    // wrap makes it map elsewhere, which the early return above has excluded for s == active.
    let mut s = if active <= base {
        base
    } else {
        base + (active - base).div_ceil(count) * count
    };
    if s == 0 && slot_of_seq(0, ota_count) != Some(target_slot) {
        s = count;
    }
    u32::try_from(s).ok().filter(|&s| s != u32::MAX)
}

/// One entry write that performs an otadata operation: erase sector `index`, then write
/// `entry` at its start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct OtadataWrite {
    /// Entry (and sector) index: 0 or 1.
    pub index: usize,
    /// The entry to write.
    pub entry: OtaSelectEntry,
}

/// Why an otadata operation cannot be planned. Nothing was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PlanError {
    /// The slot does not exist (`slot >= ota_count`, or `ota_count` is 0 or above 16).
    #[error("OTA slot {slot} does not exist ({count} slots)")]
    SlotOutOfRange {
        /// The requested slot.
        slot: u8,
        /// The number of slots.
        count: u8,
    },
    /// The operation needs an active (valid) entry and neither entry is valid.
    #[error("no valid otadata entry")]
    NoActiveEntry,
    /// No sequence number below `0xFFFFFFFF` selects the slot any more.
    #[error("otadata sequence numbers exhausted")]
    SeqExhausted,
}

/// Plans `esp_ota_set_boot_partition` for `slot` (`esp_rewrite_ota_data`, §3.4):
///
/// - if the active entry already selects `slot`, rewrite it in place with the same `seq` and
///   the new `state`;
/// - otherwise write the inactive entry (`(~active) & 1`, entry 0 if neither is valid) with
///   [`next_seq`] and the new `state`.
///
/// The entry is written fresh: label `0xFF`, the given state, the correct CRC. Nothing is
/// copied from the entry it replaces. Pass [`OtaImageState::New`] when the bootloader has
/// rollback enabled and the new app will confirm itself, [`OtaImageState::Undefined`]
/// otherwise (ESP-IDF's `set_new_state_otadata`).
pub fn plan_activate(
    entries: &[OtaSelectEntry; 2],
    ota_count: u8,
    slot: u8,
    state: OtaImageState,
) -> Result<OtadataWrite, PlanError> {
    if ota_count == 0 || ota_count > MAX_OTA_SLOTS || slot >= ota_count {
        return Err(PlanError::SlotOutOfRange {
            slot,
            count: ota_count,
        });
    }
    let active = select_entry(&entries[0], &entries[1]);
    let active_seq = active.and_then(|i| entries.get(i)).map(|e| e.seq);
    let seq = next_seq(active_seq, slot, ota_count).ok_or(PlanError::SeqExhausted)?;
    let index = match active {
        Some(a) if active_seq == Some(seq) => a,
        Some(a) => (!a) & 1,
        None => 0,
    };
    Ok(OtadataWrite {
        index,
        entry: OtaSelectEntry::new(seq, state),
    })
}

/// Plans a state change of the active entry, rewritten in place with the same `seq`
/// (`esp_ota_mark_app_valid_cancel_rollback` / `esp_ota_mark_app_invalid_rollback`).
/// `Ok(None)` if the entry already has that state (nothing to write).
pub fn plan_set_state(
    entries: &[OtaSelectEntry; 2],
    state: OtaImageState,
) -> Result<Option<OtadataWrite>, PlanError> {
    let index = select_entry(&entries[0], &entries[1]).ok_or(PlanError::NoActiveEntry)?;
    let current = entries.get(index).ok_or(PlanError::NoActiveEntry)?;
    if current.state == state {
        return Ok(None);
    }
    Ok(Some(OtadataWrite {
        index,
        entry: OtaSelectEntry { state, ..*current },
    }))
}

/// Why an [`Otadata`] view could not be created.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum OtadataLayoutError {
    /// The partition table has no otadata partition.
    #[error("no otadata partition")]
    NoOtadata,
    /// The OTA slot count is 0 or above 16.
    #[error("{count} OTA slots (must be 1..=16)")]
    BadOtaCount {
        /// The count given.
        count: u8,
    },
    /// The otadata offset is not 4 KiB aligned.
    #[error("otadata offset 0x{offset:x} is not 4 KiB aligned")]
    Misaligned {
        /// The offset given.
        offset: u32,
    },
    /// The two sectors do not fit in the flash.
    #[error("otadata at 0x{offset:x} does not fit the {capacity}-byte flash")]
    OutOfBounds {
        /// The offset given.
        offset: u32,
        /// Flash capacity.
        capacity: usize,
    },
    /// The flash cannot erase one 4 KiB sector alone (`ERASE_SIZE` does not divide 4096), or
    /// its read/write granularity rounds a 32-byte entry above 256 bytes.
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

/// Why an [`Otadata`] operation failed. `E` is the flash's error type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum OtadataError<E> {
    /// A flash operation failed. If it was the erase or write of an entry, that entry may now
    /// be erased or partly written, which the bootloader treats as invalid (so a failed
    /// `activate` leaves the previous selection in force).
    #[error("flash operation failed: {0:?}")]
    Flash(E),
    /// The operation cannot be planned; nothing was written.
    #[error(transparent)]
    Plan(#[from] PlanError),
}

/// Largest entry I/O (32 bytes rounded up to the flash's read/write granularity).
const ENTRY_IO_MAX: usize = 256;

/// Checks the view's parameters and returns the entry I/O lengths (read, write).
fn check_layout(
    offset: u32,
    ota_count: u8,
    capacity: usize,
    read: usize,
    write: usize,
    erase: usize,
) -> Result<(usize, usize), OtadataLayoutError> {
    if ota_count == 0 || ota_count > MAX_OTA_SLOTS {
        return Err(OtadataLayoutError::BadOtaCount { count: ota_count });
    }
    if !offset.is_multiple_of(OTADATA_SECTOR_SIZE) {
        return Err(OtadataLayoutError::Misaligned { offset });
    }
    if u64::from(offset) + u64::from(OTADATA_SIZE) > capacity as u64 {
        return Err(OtadataLayoutError::OutOfBounds { offset, capacity });
    }
    let geometry = OtadataLayoutError::UnsupportedGeometry { read, write, erase };
    let sector = OTADATA_SECTOR_SIZE as usize;
    if erase == 0 || erase > sector || !sector.is_multiple_of(erase) || read == 0 || write == 0 {
        return Err(geometry);
    }
    let read_len = OTA_SELECT_ENTRY_LEN.div_ceil(read) * read;
    let write_len = OTA_SELECT_ENTRY_LEN.div_ceil(write) * write;
    if read_len > ENTRY_IO_MAX || write_len > ENTRY_IO_MAX {
        return Err(geometry);
    }
    Ok((read_len, write_len))
}

/// Entry `index`'s flash address.
fn entry_addr(offset: u32, index: usize) -> u32 {
    offset + if index == 0 { 0 } else { OTADATA_SECTOR_SIZE }
}

/// The padded bytes to write for `entry` (the tail up to `write_len` stays `0xFF`).
fn write_image(entry: &OtaSelectEntry) -> [u8; ENTRY_IO_MAX] {
    let mut buf = [0xFF; ENTRY_IO_MAX];
    buf[..OTA_SELECT_ENTRY_LEN].copy_from_slice(&entry.encode());
    buf
}

fn decode_prefix(buf: &[u8; ENTRY_IO_MAX]) -> OtaSelectEntry {
    let mut raw = [0u8; OTA_SELECT_ENTRY_LEN];
    raw.copy_from_slice(&buf[..OTA_SELECT_ENTRY_LEN]);
    OtaSelectEntry::decode(&raw)
}

/// Where otadata sits and how to address it; shared by both shells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
struct Layout {
    offset: u32,
    ota_count: u8,
    read_len: usize,
    write_len: usize,
}

/// A view of the otadata partition on a blocking [`NorFlash`] that addresses the whole chip.
///
/// Every method reads both entries from flash first; nothing is cached. Writes follow ESP-IDF:
/// erase the entry's 4 KiB sector, then write the 32-byte entry (padded with `0xFF` to the
/// flash's `WRITE_SIZE`). A power cut between the two leaves that entry erased, which the
/// bootloader ignores; see each method for what that means.
///
/// `F` may be `&mut Flash`, so the view can borrow a flash the caller keeps using.
#[derive(Debug)]
pub struct Otadata<F> {
    flash: F,
    layout: Layout,
}

impl<F: NorFlash> Otadata<F> {
    /// A view of otadata at flash address `offset` (4 KiB aligned, two sectors inside the
    /// flash) for a table with `ota_count` OTA slots (1..=16). Checks that the flash can erase
    /// one 4 KiB sector on its own.
    pub fn new(flash: F, offset: u32, ota_count: u8) -> Result<Self, OtadataLayoutError> {
        let (read_len, write_len) = check_layout(
            offset,
            ota_count,
            flash.capacity(),
            F::READ_SIZE,
            F::WRITE_SIZE,
            F::ERASE_SIZE,
        )?;
        Ok(Otadata {
            flash,
            layout: Layout {
                offset,
                ota_count,
                read_len,
                write_len,
            },
        })
    }

    /// A view using the table's otadata partition and OTA slot count.
    pub fn from_table(flash: F, table: &PartitionTable) -> Result<Self, OtadataLayoutError> {
        let otadata = table.otadata().ok_or(OtadataLayoutError::NoOtadata)?;
        Self::new(flash, otadata.offset, table.ota_count())
    }

    /// Flash address of otadata.
    pub fn offset(&self) -> u32 {
        self.layout.offset
    }

    /// Number of OTA slots.
    pub fn ota_count(&self) -> u8 {
        self.layout.ota_count
    }

    /// Gives the flash back.
    pub fn into_inner(self) -> F {
        self.flash
    }

    /// Reads both entries as stored (erased or corrupt entries included; judge them with
    /// [`OtaSelectEntry::is_valid`]).
    pub fn read_entries(&mut self) -> Result<[OtaSelectEntry; 2], OtadataError<F::Error>> {
        let mut out = [OtaSelectEntry::ERASED; 2];
        for (index, slot) in out.iter_mut().enumerate() {
            let mut buf = [0u8; ENTRY_IO_MAX];
            let addr = entry_addr(self.layout.offset, index);
            self.flash
                .read(addr, &mut buf[..self.layout.read_len])
                .map_err(OtadataError::Flash)?;
            *slot = decode_prefix(&buf);
        }
        Ok(out)
    }

    /// What the bootloader selects now ([`boot_slot`]), honouring `ota_state`: a newer entry
    /// that is ABORTED, INVALID or corrupt is skipped and the other one is reported.
    pub fn current(&mut self) -> Result<BootChoice, OtadataError<F::Error>> {
        let entries = self.read_entries()?;
        Ok(boot_slot(&entries, self.layout.ota_count))
    }

    /// Selects `slot` for the next boot with a fresh `state` ([`plan_activate`]); returns what
    /// was written. Validate the image in the slot first.
    ///
    /// Power cut: if the inactive entry is being written, the old selection stays in force.
    /// If the active entry is rewritten in place (it already selected `slot`), a cut leaves no
    /// valid entry or only the older one.
    pub fn activate(
        &mut self,
        slot: u8,
        state: OtaImageState,
    ) -> Result<OtadataWrite, OtadataError<F::Error>> {
        let entries = self.read_entries()?;
        let write = plan_activate(&entries, self.layout.ota_count, slot, state)?;
        self.apply(&write)?;
        Ok(write)
    }

    /// Sets the state of the active entry in place ([`plan_set_state`]); no write if it
    /// already has it. [`PlanError::NoActiveEntry`] if neither entry is valid.
    ///
    /// Power cut: the active entry may be left erased, so the bootloader selects the other
    /// entry (the previous slot) or none. ESP-IDF has the same window.
    pub fn set_state(&mut self, state: OtaImageState) -> Result<(), OtadataError<F::Error>> {
        let entries = self.read_entries()?;
        if let Some(write) = plan_set_state(&entries, state)? {
            self.apply(&write)?;
        }
        Ok(())
    }

    /// Confirms the running app: sets the active entry VALID, cancelling a pending rollback
    /// (`esp_ota_mark_app_valid_cancel_rollback`). No write if it is already VALID.
    pub fn mark_valid(&mut self) -> Result<(), OtadataError<F::Error>> {
        self.set_state(OtaImageState::Valid)
    }

    /// Rejects the running app: sets the active entry INVALID so the bootloader skips it
    /// (`esp_ota_mark_app_invalid_rollback`), and returns what the bootloader will select
    /// after the caller resets. Unlike ESP-IDF this does not check that the fallback slot
    /// holds a bootable image; validate it first if that matters.
    pub fn mark_invalid_and_rollback(&mut self) -> Result<BootChoice, OtadataError<F::Error>> {
        self.set_state(OtaImageState::Invalid)?;
        self.current()
    }

    /// Erases both sectors: no OTA selection, the bootloader boots `factory` (what ESP-IDF's
    /// `esp_ota_set_boot_partition(factory)` does).
    pub fn erase(&mut self) -> Result<(), OtadataError<F::Error>> {
        let start = self.layout.offset;
        self.flash
            .erase(start, start + OTADATA_SIZE)
            .map_err(OtadataError::Flash)
    }

    fn apply(&mut self, write: &OtadataWrite) -> Result<(), OtadataError<F::Error>> {
        let addr = entry_addr(self.layout.offset, write.index);
        self.flash
            .erase(addr, addr + OTADATA_SECTOR_SIZE)
            .map_err(OtadataError::Flash)?;
        let buf = write_image(&write.entry);
        self.flash
            .write(addr, &buf[..self.layout.write_len])
            .map_err(OtadataError::Flash)
    }
}

/// The async twin of [`Otadata`], over `embedded_storage_async::nor_flash::NorFlash`. Same
/// rules and documents; only the waiting differs.
///
/// Cancel safety: reads ([`read_entries`](Self::read_entries), [`current`](Self::current))
/// are cancel-safe. Dropping a writing future between its erase and its write has the effect
/// of a power cut at that point (see [`Otadata`]).
#[derive(Debug)]
pub struct AsyncOtadata<F> {
    flash: F,
    layout: Layout,
}

impl<F: embedded_storage_async::nor_flash::NorFlash> AsyncOtadata<F> {
    /// See [`Otadata::new`].
    pub fn new(flash: F, offset: u32, ota_count: u8) -> Result<Self, OtadataLayoutError> {
        let (read_len, write_len) = check_layout(
            offset,
            ota_count,
            flash.capacity(),
            F::READ_SIZE,
            F::WRITE_SIZE,
            F::ERASE_SIZE,
        )?;
        Ok(AsyncOtadata {
            flash,
            layout: Layout {
                offset,
                ota_count,
                read_len,
                write_len,
            },
        })
    }

    /// See [`Otadata::from_table`].
    pub fn from_table(flash: F, table: &PartitionTable) -> Result<Self, OtadataLayoutError> {
        let otadata = table.otadata().ok_or(OtadataLayoutError::NoOtadata)?;
        Self::new(flash, otadata.offset, table.ota_count())
    }

    /// Flash address of otadata.
    pub fn offset(&self) -> u32 {
        self.layout.offset
    }

    /// Number of OTA slots.
    pub fn ota_count(&self) -> u8 {
        self.layout.ota_count
    }

    /// Gives the flash back.
    pub fn into_inner(self) -> F {
        self.flash
    }

    /// See [`Otadata::read_entries`].
    pub async fn read_entries(&mut self) -> Result<[OtaSelectEntry; 2], OtadataError<F::Error>> {
        let mut out = [OtaSelectEntry::ERASED; 2];
        for (index, slot) in out.iter_mut().enumerate() {
            let mut buf = [0u8; ENTRY_IO_MAX];
            let addr = entry_addr(self.layout.offset, index);
            self.flash
                .read(addr, &mut buf[..self.layout.read_len])
                .await
                .map_err(OtadataError::Flash)?;
            *slot = decode_prefix(&buf);
        }
        Ok(out)
    }

    /// See [`Otadata::current`].
    pub async fn current(&mut self) -> Result<BootChoice, OtadataError<F::Error>> {
        let entries = self.read_entries().await?;
        Ok(boot_slot(&entries, self.layout.ota_count))
    }

    /// See [`Otadata::activate`].
    pub async fn activate(
        &mut self,
        slot: u8,
        state: OtaImageState,
    ) -> Result<OtadataWrite, OtadataError<F::Error>> {
        let entries = self.read_entries().await?;
        let write = plan_activate(&entries, self.layout.ota_count, slot, state)?;
        self.apply(&write).await?;
        Ok(write)
    }

    /// See [`Otadata::set_state`].
    pub async fn set_state(&mut self, state: OtaImageState) -> Result<(), OtadataError<F::Error>> {
        let entries = self.read_entries().await?;
        if let Some(write) = plan_set_state(&entries, state)? {
            self.apply(&write).await?;
        }
        Ok(())
    }

    /// See [`Otadata::mark_valid`].
    pub async fn mark_valid(&mut self) -> Result<(), OtadataError<F::Error>> {
        self.set_state(OtaImageState::Valid).await
    }

    /// See [`Otadata::mark_invalid_and_rollback`].
    pub async fn mark_invalid_and_rollback(
        &mut self,
    ) -> Result<BootChoice, OtadataError<F::Error>> {
        self.set_state(OtaImageState::Invalid).await?;
        self.current().await
    }

    /// See [`Otadata::erase`].
    pub async fn erase(&mut self) -> Result<(), OtadataError<F::Error>> {
        let start = self.layout.offset;
        self.flash
            .erase(start, start + OTADATA_SIZE)
            .await
            .map_err(OtadataError::Flash)
    }

    async fn apply(&mut self, write: &OtadataWrite) -> Result<(), OtadataError<F::Error>> {
        let addr = entry_addr(self.layout.offset, write.index);
        self.flash
            .erase(addr, addr + OTADATA_SECTOR_SIZE)
            .await
            .map_err(OtadataError::Flash)?;
        let buf = write_image(&write.entry);
        self.flash
            .write(addr, &buf[..self.layout.write_len])
            .await
            .map_err(OtadataError::Flash)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::block_on;
    use crate::ota::mem_flash::{MemFlash, MemFlashError};
    use OtaImageState::*;

    const OTADATA: u32 = 0xD000;

    fn valid(seq: u32, state: OtaImageState) -> OtaSelectEntry {
        OtaSelectEntry::new(seq, state)
    }

    fn bad_crc(seq: u32) -> OtaSelectEntry {
        OtaSelectEntry {
            crc: ota_seq_crc(seq) ^ 1,
            ..OtaSelectEntry::new(seq, Valid)
        }
    }

    const E: OtaSelectEntry = OtaSelectEntry::ERASED;

    #[test]
    fn crc_vectors() {
        // Reference §3.3 (verified against esp_rom_crc32_le and esp-bootloader-esp-idf).
        assert_eq!(ota_seq_crc(1), 0x4743_989A);
        assert_eq!(ota_seq_crc(2), 0x55F6_3774);
        assert_eq!(ota_seq_crc(3), 0xED4A_5011);
        // Not standard CRC-32 (which gives 0x99F8B879 for seq 1)...
        assert_eq!(
            crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&1u32.to_le_bytes()),
            0x99F8_B879
        );
        // ...and the catalogue check value matches the algorithm.
        assert_eq!(
            crc::Crc::<u32>::new(&OTA_SEQ_CRC_ALGORITHM).checksum(b"123456789"),
            OTA_SEQ_CRC_ALGORITHM.check
        );
    }

    /// A real entry: seq 1, state UNDEFINED, as `esp_ota_set_boot_partition(ota_0)` writes it
    /// without rollback.
    const ENTRY_FIXTURE: [u8; 32] = [
        0x01, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x9A, 0x98,
        0x43, 0x47,
    ];

    #[test]
    fn entry_codec() {
        let e = OtaSelectEntry::decode(&ENTRY_FIXTURE);
        assert_eq!(e, OtaSelectEntry::new(1, Undefined));
        assert!(e.is_valid());
        assert_eq!(e.encode(), ENTRY_FIXTURE);
        assert_eq!(OtaSelectEntry::decode(&[0xFF; 32]), E);
        assert!(!E.is_valid() && E.is_invalid());
        // Unknown state decodes and is treated as a usable state.
        let mut raw = ENTRY_FIXTURE;
        raw[24..28].copy_from_slice(&7u32.to_le_bytes());
        let e = OtaSelectEntry::decode(&raw);
        assert_eq!(e.state, Other(7));
        assert!(e.is_valid());
        assert_eq!(e.encode(), raw);
        for raw in [0u32, 1, 2, 3, 4, 5, 0xFFFF_FFFF, 0x1234] {
            assert_eq!(OtaImageState::from_raw(raw).to_raw(), raw);
        }
        assert!(Other(3).disqualifies() && Other(4).disqualifies() && !Other(5).disqualifies());
    }

    #[test]
    fn validity_rules() {
        for (entry, valid_, invalid) in [
            (valid(1, Undefined), true, false),
            (valid(1, New), true, false),
            (valid(1, PendingVerify), true, false),
            (valid(1, Valid), true, false),
            (valid(1, Invalid), false, true),
            (valid(1, Aborted), false, true),
            (valid(u32::MAX, Valid), false, true),
            (bad_crc(1), false, false),
            (valid(0, Valid), true, false),
        ] {
            assert_eq!(entry.is_valid(), valid_, "{entry:?}");
            assert_eq!(entry.is_invalid(), invalid, "{entry:?}");
        }
    }

    /// `boot_slot` over (entry 0, entry 1, app_count) -> expected choice (slot, entry) or None.
    macro_rules! boot_cases {
        ($($name:ident: $e0:expr, $e1:expr, $count:expr => $want:expr;)*) => {
            $(#[test]
            fn $name() {
                let got = boot_slot(&[$e0, $e1], $count);
                let want: Option<(u8, usize)> = $want;
                assert_eq!(got.ota_slot().zip(got.active_entry()), want, "{got:?}");
            })*
        };
    }

    boot_cases! {
        boot_both_erased: E, E, 2 => None;
        boot_only_first: valid(1, Undefined), E, 2 => Some((0, 0));
        boot_only_second: E, valid(2, Undefined), 2 => Some((1, 1));
        boot_highest_wins: valid(3, Valid), valid(4, Valid), 2 => Some((1, 1));
        boot_highest_wins_entry0: valid(5, Valid), valid(4, Valid), 2 => Some((0, 0));
        boot_tie_is_entry0: valid(2, Valid), valid(2, New), 2 => Some((1, 0));
        boot_corrupt_higher_ignored: valid(1, Valid), bad_crc(2), 2 => Some((0, 0));
        boot_corrupt_lower_ignored: bad_crc(1), valid(2, Valid), 2 => Some((1, 1));
        boot_both_corrupt: bad_crc(1), bad_crc(2), 2 => None;
        boot_aborted_higher_falls_back: valid(1, Valid), valid(2, Aborted), 2 => Some((0, 0));
        boot_invalid_higher_falls_back: valid(3, Invalid), valid(2, Valid), 2 => Some((1, 1));
        boot_both_disqualified: valid(1, Aborted), valid(2, Invalid), 2 => None;
        boot_pending_verify_still_boots: valid(1, Valid), valid(2, PendingVerify), 2 => Some((1, 1));
        boot_three_slots: valid(5, Valid), E, 3 => Some((1, 0));
        boot_three_slots_wrap: valid(7, Valid), valid(6, Valid), 3 => Some((0, 0));
        boot_seq_zero_wraps: valid(0, Valid), E, 3 => Some((0, 0));
        boot_seq_zero_wraps_two: valid(0, Valid), E, 2 => Some((1, 0));
        boot_sixteen_slots: valid(17, Valid), E, 16 => Some((0, 0));
    }

    #[test]
    fn no_ota_slots_means_factory() {
        assert_eq!(boot_slot(&[valid(1, Valid), E], 0), BootChoice::NoOtaSlots);
        assert_eq!(boot_slot(&[E, E], 2), BootChoice::NoValidEntry);
    }

    #[test]
    fn select_entry_table() {
        assert_eq!(select_entry(&E, &E), None);
        assert_eq!(select_entry(&valid(9, Valid), &valid(10, Valid)), Some(1));
        assert_eq!(select_entry(&valid(10, Valid), &valid(10, Valid)), Some(0));
        assert_eq!(select_entry(&bad_crc(10), &valid(1, Valid)), Some(1));
    }

    /// `next_seq(active, target, count) == want`.
    macro_rules! seq_cases {
        ($($active:expr, $target:expr, $count:expr => $want:expr;)*) => {{
            $(
                let active: Option<u32> = $active;
                let got = next_seq(active, $target, $count);
                assert_eq!(got, $want, "next_seq({:?}, {}, {})", active, $target, $count);
                if let (Some(s), Some(a)) = (got, active) {
                    assert!(s >= a);
                    assert_eq!(slot_of_seq(s, $count), Some($target));
                }
            )*
        }};
    }

    #[test]
    fn next_seq_two_slots() {
        seq_cases! {
            None, 0, 2 => Some(1);
            None, 1, 2 => Some(2);
            Some(1), 1, 2 => Some(2);
            Some(1), 0, 2 => Some(1); // already selected: same seq (rewrite in place)
            Some(2), 0, 2 => Some(3);
            Some(2), 1, 2 => Some(2);
            Some(3), 1, 2 => Some(4);
            Some(10), 0, 2 => Some(11);
            Some(11), 1, 2 => Some(12);
        }
    }

    #[test]
    fn next_seq_three_slots() {
        seq_cases! {
            None, 2, 3 => Some(3);
            Some(1), 1, 3 => Some(2);
            Some(1), 2, 3 => Some(3);
            Some(2), 0, 3 => Some(4);
            Some(3), 0, 3 => Some(4);
            Some(3), 1, 3 => Some(5);
            Some(4), 2, 3 => Some(6);
            Some(6), 0, 3 => Some(7);
            Some(6), 1, 3 => Some(8);
        }
    }

    #[test]
    fn next_seq_edges() {
        seq_cases! {
            Some(1), 0, 1 => Some(1);
            Some(5), 0, 1 => Some(5);
            // seq 0 maps to 0xFFFFFFFF % 3 = 0; slot 2 needs base 0 which would tie: use 3.
            Some(0), 2, 3 => Some(3);
            Some(0), 0, 3 => Some(0);
            Some(0), 1, 2 => Some(0);
            Some(0), 0, 2 => Some(1);
            // Exhaustion near the erased marker.
            Some(0xFFFF_FFFD), 1, 2 => Some(0xFFFF_FFFE);
            Some(0xFFFF_FFFE), 1, 2 => Some(0xFFFF_FFFE);
            Some(0xFFFF_FFFE), 0, 2 => None;
            Some(0xFFFF_FFFD), 0, 16 => None;
            // Bad arguments.
            Some(1), 2, 2 => None;
            None, 0, 0 => None;
            None, 16, 17 => None;
        }
    }

    #[test]
    fn plan_activate_writes_inactive_entry_fresh() {
        // Active entry 0 (slot 0); target slot 1 -> entry 1, seq 2.
        let leftover = valid(0, Aborted); // stale state in the target sector
        let w = plan_activate(&[valid(1, Valid), leftover], 2, 1, New).unwrap();
        assert_eq!(w.index, 1);
        assert_eq!(w.entry, OtaSelectEntry::new(2, New));
        assert_eq!(w.entry.seq_label, [0xFF; 20]);
        // Active entry 1 -> entry 0.
        let w = plan_activate(&[valid(1, Valid), valid(2, Valid)], 2, 0, Undefined).unwrap();
        assert_eq!((w.index, w.entry.seq, w.entry.state), (0, 3, Undefined));
        // Neither valid -> entry 0, seq N+1.
        let w = plan_activate(&[bad_crc(7), E], 3, 2, Undefined).unwrap();
        assert_eq!((w.index, w.entry.seq), (0, 3));
        // Already selected -> in place, same seq, new state.
        let w = plan_activate(&[valid(4, Valid), valid(3, Valid)], 3, 0, New).unwrap();
        assert_eq!((w.index, w.entry.seq, w.entry.state), (0, 4, New));
        // Aborted higher entry is not active: the valid lower one is, so write the other.
        let w = plan_activate(&[valid(1, Valid), valid(2, Aborted)], 2, 1, New).unwrap();
        assert_eq!((w.index, w.entry.seq, w.entry.state), (1, 2, New));
        assert_eq!(
            plan_activate(&[E, E], 2, 2, New),
            Err(PlanError::SlotOutOfRange { slot: 2, count: 2 })
        );
        assert_eq!(
            plan_activate(&[valid(0xFFFF_FFFE, Valid), E], 2, 0, New),
            Err(PlanError::SeqExhausted)
        );
    }

    #[test]
    fn plan_activate_always_boots_the_target() {
        let states = [
            E,
            valid(1, Valid),
            valid(2, Valid),
            valid(3, Aborted),
            bad_crc(4),
            valid(5, New),
            valid(0, Valid),
        ];
        for count in 1..=4u8 {
            for a in states {
                for b in states {
                    for slot in 0..count {
                        let mut entries = [a, b];
                        let w = plan_activate(&entries, count, slot, New).unwrap();
                        entries[w.index] = w.entry;
                        assert_eq!(
                            boot_slot(&entries, count).ota_slot(),
                            Some(slot),
                            "{a:?} {b:?} {count} {slot}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn plan_set_state_in_place() {
        let w = plan_set_state(&[valid(1, Valid), valid(2, PendingVerify)], Valid)
            .unwrap()
            .unwrap();
        assert_eq!((w.index, w.entry), (1, valid(2, Valid)));
        assert_eq!(plan_set_state(&[valid(1, Valid), E], Valid), Ok(None));
        assert_eq!(
            plan_set_state(&[E, bad_crc(1)], Valid),
            Err(PlanError::NoActiveEntry)
        );
    }

    #[test]
    fn rollback_pass_model() {
        // New app selected with NEW: first boot marks it PENDING_VERIFY.
        let mut entries = [valid(1, Valid), valid(2, New)];
        let p = bootloader_pass(&mut entries, 2, true);
        assert_eq!(p.choice.ota_slot(), Some(1));
        assert_eq!(p.rewritten, [false, true]);
        assert_eq!(entries[1].state, PendingVerify);
        // Not confirmed: next reset aborts it and boots the old slot.
        let p = bootloader_pass(&mut entries, 2, true);
        assert_eq!(p.choice.ota_slot(), Some(0));
        assert_eq!(p.rewritten, [false, true]);
        assert_eq!(entries[1].state, Aborted);
        // Without rollback support nothing changes.
        let mut entries = [valid(1, Valid), valid(2, New)];
        let p = bootloader_pass(&mut entries, 2, false);
        assert_eq!(p.rewritten, [false, false]);
        assert_eq!(entries[1].state, New);
        assert_eq!(p.choice.ota_slot(), Some(1));
    }

    fn flash_with(mem: &mut [u8]) -> MemFlash<'_> {
        MemFlash::new_erased(mem)
    }

    #[test]
    fn otadata_on_flash_full_cycle() {
        let mut mem = std::vec![0u8; 0x10000];
        let mut flash = flash_with(&mut mem);
        {
            let mut od = Otadata::new(&mut flash, OTADATA, 2).unwrap();
            assert_eq!(od.current().unwrap(), BootChoice::NoValidEntry);
            assert_eq!(
                od.set_state(Valid),
                Err(OtadataError::Plan(PlanError::NoActiveEntry))
            );
            let w = od.activate(0, Undefined).unwrap();
            assert_eq!((w.index, w.entry.seq), (0, 1));
            assert_eq!(od.current().unwrap().ota_slot(), Some(0));
            let w = od.activate(1, New).unwrap();
            assert_eq!((w.index, w.entry.seq), (1, 2));
            assert_eq!(
                od.current().unwrap(),
                BootChoice::Ota {
                    slot: 1,
                    entry: 1,
                    seq: 2,
                    state: New
                }
            );
            od.mark_valid().unwrap();
            assert_eq!(od.read_entries().unwrap()[1], valid(2, Valid));
        }
        // Bytes on flash: entry 1 at +0x1000, rest of sector erased.
        let raw = &flash.as_slice()[0xE000..0xE020];
        assert_eq!(
            OtaSelectEntry::decode(raw.try_into().unwrap()),
            valid(2, Valid)
        );
        assert!(flash.as_slice()[0xE020..0xF000].iter().all(|&b| b == 0xFF));
        // mark_valid when already valid writes nothing.
        flash.reset_stats();
        let mut od = Otadata::new(&mut flash, OTADATA, 2).unwrap();
        od.mark_valid().unwrap();
        assert_eq!((flash.stats().writes, flash.stats().erases), (0, 0));
        let mut od = Otadata::new(&mut flash, OTADATA, 2).unwrap();
        // Roll back: slot 1 becomes INVALID, slot 0 boots.
        let after = od.mark_invalid_and_rollback().unwrap();
        assert_eq!(after.ota_slot(), Some(0));
        assert_eq!(od.read_entries().unwrap()[1].state, Invalid);
        // Re-activating slot 1 writes entry 1 again (the inactive one) with a fresh state.
        let w = od.activate(1, Undefined).unwrap();
        assert_eq!((w.index, w.entry.seq, w.entry.state), (1, 2, Undefined));
        assert_eq!(od.current().unwrap().ota_slot(), Some(1));
        od.erase().unwrap();
        assert_eq!(od.current().unwrap(), BootChoice::NoValidEntry);
    }

    #[test]
    fn corrupt_entry_does_not_block() {
        let mut mem = std::vec![0u8; 0x10000];
        let mut flash = flash_with(&mut mem);
        let mut od = Otadata::new(&mut flash, OTADATA, 2).unwrap();
        od.activate(0, Valid).unwrap();
        od.activate(1, Valid).unwrap();
        // Corrupt entry 1's CRC.
        flash.as_mut_slice()[0xE000 + 28] ^= 0xFF;
        let mut od = Otadata::new(&mut flash, OTADATA, 2).unwrap();
        assert_eq!(od.current().unwrap().ota_slot(), Some(0));
        let w = od.activate(1, New).unwrap();
        assert_eq!((w.index, w.entry.seq), (1, 2));
        assert_eq!(od.current().unwrap().ota_slot(), Some(1));
    }

    #[test]
    fn power_cut_during_activate_keeps_old_selection() {
        for cut in 0..2u32 {
            let mut mem = std::vec![0u8; 0x10000];
            let mut flash = flash_with(&mut mem);
            Otadata::new(&mut flash, OTADATA, 2)
                .unwrap()
                .activate(0, Valid)
                .unwrap();
            // Put junk (a stale ABORTED entry) where the next write goes.
            flash.as_mut_slice()[0xE000..0xE020].copy_from_slice(&valid(0, Aborted).encode());
            flash.fail_after(cut); // cut the erase (0) or the write (1)
            let mut od = Otadata::new(&mut flash, OTADATA, 2).unwrap();
            assert_eq!(
                od.activate(1, New),
                Err(OtadataError::Flash(MemFlashError::PowerCut))
            );
            assert_eq!(od.current().unwrap().ota_slot(), Some(0), "cut {cut}");
            // After "reboot" the activation succeeds.
            od.activate(1, New).unwrap();
            assert_eq!(od.current().unwrap().ota_slot(), Some(1));
        }
    }

    #[test]
    fn respects_write_and_read_granularity() {
        let mut mem = std::vec![0u8; 0x10000];
        let mut flash: MemFlash<'_, 4096, 64, 16> = MemFlash::new_erased(&mut mem);
        let mut od = Otadata::new(&mut flash, OTADATA, 2).unwrap();
        od.activate(1, Undefined).unwrap();
        assert_eq!(od.current().unwrap().ota_slot(), Some(1));
        assert_eq!(flash.stats().bytes_written, 64);
        // Erase size 256 divides 4 KiB: fine. 8 KiB does not.
        let mut mem2 = std::vec![0u8; 0x10000];
        let flash2: MemFlash<'_, 8192, 4> = MemFlash::new_erased(&mut mem2);
        assert!(matches!(
            Otadata::new(flash2, OTADATA, 2),
            Err(OtadataLayoutError::UnsupportedGeometry { erase: 8192, .. })
        ));
        let mut mem3 = std::vec![0u8; 0x10000];
        let flash3: MemFlash<'_, 4096, 512> = MemFlash::new_erased(&mut mem3);
        assert!(matches!(
            Otadata::new(flash3, OTADATA, 2),
            Err(OtadataLayoutError::UnsupportedGeometry { write: 512, .. })
        ));
    }

    #[test]
    fn layout_errors() {
        let mut mem = std::vec![0u8; 0x10000];
        let mut flash = flash_with(&mut mem);
        assert!(matches!(
            Otadata::new(&mut flash, 0xD800, 2),
            Err(OtadataLayoutError::Misaligned { offset: 0xD800 })
        ));
        assert!(matches!(
            Otadata::new(&mut flash, 0xF000, 2),
            Err(OtadataLayoutError::OutOfBounds { .. })
        ));
        assert!(matches!(
            Otadata::new(&mut flash, OTADATA, 0),
            Err(OtadataLayoutError::BadOtaCount { count: 0 })
        ));
        assert!(matches!(
            Otadata::new(&mut flash, OTADATA, 17),
            Err(OtadataLayoutError::BadOtaCount { count: 17 })
        ));
        let mut od = Otadata::new(&mut flash, OTADATA, 3).unwrap();
        assert_eq!((od.offset(), od.ota_count()), (OTADATA, 3));
        assert!(matches!(
            od.activate(3, New),
            Err(OtadataError::Plan(PlanError::SlotOutOfRange {
                slot: 3,
                count: 3
            }))
        ));
        let _flash: &mut MemFlash<'_> = od.into_inner();
    }

    #[test]
    fn from_table() {
        use crate::ota::esp_idf::partition::{
            self, AppSubType, DataSubType, PartitionEntry, PartitionType,
        };
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
                0x10000,
                0x10000,
                "ota_0",
            )
            .unwrap(),
            PartitionEntry::new(
                PartitionType::App(AppSubType::Ota(1)),
                0x20000,
                0x10000,
                "ota_1",
            )
            .unwrap(),
            PartitionEntry::new(
                PartitionType::App(AppSubType::Ota(2)),
                0x30000,
                0x10000,
                "ota_2",
            )
            .unwrap(),
        ];
        let mut buf = [0u8; partition::PARTITION_TABLE_MAX_LEN];
        partition::encode(&entries, &mut buf, true).unwrap();
        let table = PartitionTable::parse(&buf).unwrap();
        let mut mem = std::vec![0u8; 0x40000];
        let mut flash = flash_with(&mut mem);
        let mut od = Otadata::from_table(&mut flash, &table).unwrap();
        assert_eq!((od.offset(), od.ota_count()), (0xD000, 3));
        od.activate(2, Undefined).unwrap();
        let choice = od.current().unwrap();
        assert_eq!(table.boot_partition(&choice).unwrap().offset, 0x30000);
        let no_otadata = PartitionTable::parse(&{
            let mut b = [0u8; partition::PARTITION_TABLE_MAX_LEN];
            partition::encode(&entries[1..], &mut b, true).unwrap();
            b
        })
        .unwrap();
        assert!(matches!(
            Otadata::from_table(&mut flash, &no_otadata),
            Err(OtadataLayoutError::NoOtadata)
        ));
    }

    #[test]
    fn async_twin_matches_blocking() {
        let mut mem = std::vec![0u8; 0x10000];
        let mut flash = flash_with(&mut mem);
        let mut od = AsyncOtadata::new(&mut flash, OTADATA, 2).unwrap();
        assert_eq!(od.offset(), OTADATA);
        assert_eq!(block_on(od.current()).unwrap(), BootChoice::NoValidEntry);
        let w = block_on(od.activate(1, New)).unwrap();
        assert_eq!((w.index, w.entry.seq), (0, 2));
        assert_eq!(block_on(od.current()).unwrap().ota_slot(), Some(1));
        block_on(od.mark_valid()).unwrap();
        assert_eq!(block_on(od.read_entries()).unwrap()[0].state, Valid);
        let w = block_on(od.activate(0, New)).unwrap();
        assert_eq!((w.index, w.entry.seq), (1, 3));
        assert_eq!(
            block_on(od.mark_invalid_and_rollback()).unwrap().ota_slot(),
            Some(1)
        );
        block_on(od.set_state(PendingVerify)).unwrap();
        block_on(od.erase()).unwrap();
        assert_eq!(block_on(od.current()).unwrap(), BootChoice::NoValidEntry);
        // Same bytes as the blocking shell produces.
        let mut mem_b = std::vec![0u8; 0x10000];
        let mut flash_b = flash_with(&mut mem_b);
        let mut mem_a = std::vec![0u8; 0x10000];
        let mut flash_a = flash_with(&mut mem_a);
        let mut b = Otadata::new(&mut flash_b, OTADATA, 3).unwrap();
        let mut a = AsyncOtadata::new(&mut flash_a, OTADATA, 3).unwrap();
        for slot in [0u8, 2, 1, 1, 0] {
            b.activate(slot, New).unwrap();
            block_on(a.activate(slot, New)).unwrap();
        }
        assert_eq!(flash_a.as_slice(), flash_b.as_slice());
        let mut mem_c = std::vec![0u8; 0x10000];
        let flash_c = flash_with(&mut mem_c);
        assert!(AsyncOtadata::new(flash_c, OTADATA + 1, 2).is_err());
    }
}
