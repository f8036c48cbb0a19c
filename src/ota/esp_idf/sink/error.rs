//! What can fail in the sink, and the flash operation it failed in.

use super::*;

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
    /// Reading the running app's partition ([`read_running`](OtaSink::read_running)).
    ReadRunning,
    /// Reading the state area ([`save_state`](OtaSink::save_state), `begin`, `abort`,
    /// [`load_state`](OtaSink::load_state)).
    ReadState,
    /// Writing a state record. A cut write leaves an invalid record: the previous newest
    /// one stays in force.
    WriteState,
    /// Erasing a sector of the state area (never the one holding the newest record).
    EraseState,
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
    /// A [`read_running`](OtaSink::read_running) past the end of the running app's
    /// partition. Nothing was read.
    #[error("read of {len} bytes at {offset} passes the running app's {size}-byte partition")]
    RunningReadOutOfRange {
        /// The offset given.
        offset: u32,
        /// The length asked for.
        len: usize,
        /// The partition's size.
        size: u32,
    },
    /// [`save_state`](OtaSink::save_state) at a point that is not a positive multiple of
    /// [`STATE_ALIGN`] (4096). Nothing was written.
    #[error("a state can be kept only at a positive multiple of 4096 bytes, not at {at}")]
    StatePoint {
        /// The point given.
        at: u32,
    },
    /// [`save_state`](OtaSink::save_state) with more than [`MAX_STATE_LEN`] (512) bytes.
    /// Nothing was written.
    #[error("a state of {len} bytes is longer than the 512 bytes a sink keeps")]
    StateTooLong {
        /// The state's length.
        len: usize,
    },
    /// [`load_state`](OtaSink::load_state) with a buffer shorter than the state kept.
    #[error("a buffer of {len} bytes cannot take the {needed}-byte state")]
    StateBufferTooSmall {
        /// The buffer's length.
        len: usize,
        /// The state's length.
        needed: usize,
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
impl<E> SinkError<E> {
    /// The same error with the flash error mapped by `f` (for example to its
    /// `NorFlashErrorKind`, as [`ToSinkFault`](crate::ota::sink::ToSinkFault) does).
    pub fn map_flash<F>(&self, f: impl FnOnce(&E) -> F) -> SinkError<F> {
        use SinkError as S;
        match self {
            S::Flash { op, error } => S::Flash {
                op: *op,
                error: f(error),
            },
            S::PartitionTable(e) => S::PartitionTable(*e),
            S::PartitionTableTooLong { max_partitions } => S::PartitionTableTooLong {
                max_partitions: *max_partitions,
            },
            S::NoOtadata => S::NoOtadata,
            S::NoOtaSlots => S::NoOtaSlots,
            S::BadRunningSlot { slot, count } => S::BadRunningSlot {
                slot: *slot,
                count: *count,
            },
            &S::UnsupportedGeometry { read, write, erase } => {
                S::UnsupportedGeometry { read, write, erase }
            }
            S::BadSlot { slot, offset, size } => S::BadSlot {
                slot: *slot,
                offset: *offset,
                size: *size,
            },
            S::ImageTooLarge { size, capacity } => S::ImageTooLarge {
                size: *size,
                capacity: *capacity,
            },
            S::NotStarted => S::NotStarted,
            S::OutOfOrder { expected, got } => S::OutOfOrder {
                expected: *expected,
                got: *got,
            },
            S::PastImageEnd { size, end } => S::PastImageEnd {
                size: *size,
                end: *end,
            },
            S::Incomplete { written, size } => S::Incomplete {
                written: *written,
                size: *size,
            },
            &S::ReadOutOfRange {
                offset,
                len,
                available,
            } => S::ReadOutOfRange {
                offset,
                len,
                available,
            },
            &S::RunningReadOutOfRange { offset, len, size } => {
                S::RunningReadOutOfRange { offset, len, size }
            }
            &S::StatePoint { at } => S::StatePoint { at },
            &S::StateTooLong { len } => S::StateTooLong { len },
            &S::StateBufferTooSmall { len, needed } => S::StateBufferTooSmall { len, needed },
            S::HashMismatch { computed } => S::HashMismatch {
                computed: *computed,
            },
            S::Image(e) => S::Image(*e),
            S::VersionMismatch { declared } => S::VersionMismatch {
                declared: *declared,
            },
            S::NoMemoryMap { chip } => S::NoMemoryMap { chip: *chip },
            S::Otadata(e) => S::Otadata(*e),
            S::OtadataLayout(e) => S::OtadataLayout(*e),
            S::Journal(e) => S::Journal(*e),
            &S::RunningNotSelected { running, selected } => {
                S::RunningNotSelected { running, selected }
            }
            S::NotConfirmed { state } => S::NotConfirmed { state: *state },
            S::DownloadPending { offset, size } => S::DownloadPending {
                offset: *offset,
                size: *size,
            },
        }
    }
}

impl<E: embedded_storage::nor_flash::NorFlashError> crate::ota::sink::ToSinkFault for SinkError<E> {
    fn to_fault(&self) -> crate::ota::sink::SinkFault {
        self.map_flash(|e| e.kind())
    }
}

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

pub(super) fn flash_err<E>(op: FlashOp) -> impl FnOnce(E) -> SinkError<E> {
    move |error| SinkError::Flash { op, error }
}

pub(super) fn otadata_err<E>(e: OtadataError<E>) -> SinkError<E> {
    match e {
        OtadataError::Flash(error) => SinkError::Flash {
            op: FlashOp::Otadata,
            error,
        },
        OtadataError::Plan(p) => SinkError::Otadata(p),
    }
}

pub(super) fn journal_err<E>(e: JournalError<E>) -> SinkError<E> {
    let (op, error) = match e {
        JournalError::Read(e) => (FlashOp::ReadJournal, e),
        JournalError::Write(e) => (FlashOp::WriteJournal, e),
        JournalError::Erase(e) => (FlashOp::EraseJournal, e),
    };
    SinkError::Flash { op, error }
}
