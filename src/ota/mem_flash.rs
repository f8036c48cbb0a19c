//! An in-memory NOR flash for tests and host simulators.
//!
//! [`MemFlash`] lends a caller-owned `&mut [u8]` the behaviour of a NOR flash chip and is
//! strict about everything a real chip (or the `embedded-storage` contract) forbids, so code
//! that passes against it does not depend on luck:
//!
//! - **Alignment.** Reads must be aligned to `READ` (offset and length), writes to `WRITE`,
//!   erases to `ERASE` (both ends). Misalignment is [`MemFlashError::NotAligned`].
//! - **Bounds.** Anything past the end of the buffer is [`MemFlashError::OutOfBounds`].
//! - **Erase before write.** Every byte a write covers must read `0xFF` beforehand, otherwise
//!   the whole write is rejected with [`MemFlashError::NotErased`] and nothing changes. This
//!   is stricter than physical NOR (which would silently AND the bits) and matches the
//!   `NorFlash::write` contract "it is not allowed to write to the same word twice"; it also
//!   catches writing `0xFF` over programmed data, which NOR would silently ignore. The model
//!   does not implement `MultiwriteNorFlash`.
//! - **Power cuts on demand.** [`MemFlash::fail_after`] arms a one-shot failure: after that
//!   many further erase/write operations have succeeded, the next one is cut short and
//!   returns [`MemFlashError::PowerCut`]. A cut **write** has programmed the first half of its
//!   `WRITE`-sized units (rounded down) and left the rest erased; a cut **erase** has erased
//!   the first half of its bytes and left the second half as it was. Reads are never cut. The
//!   failure fires once and then disarms, so the test can "reboot" and inspect the state.
//! - **Counters** of reads, writes and erases (calls that passed the checks), see
//!   [`MemFlashStats`].
//!
//! Blocking (`embedded_storage`) and async (`embedded_storage_async`) traits are both
//! implemented; the async versions complete immediately. The logic lives in non-generic
//! functions; the const generics only carry the sizes the traits need as associated
//! constants.
//!
//! ```
//! use cellular_ota::ota::mem_flash::{MemFlash, MemFlashError};
//! use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};
//!
//! let mut mem = [0u8; 8192];
//! let mut flash: MemFlash<'_, 4096, 4> = MemFlash::new_erased(&mut mem);
//! flash.write(0, &[1, 2, 3, 4]).unwrap();
//! // Writing the same word again without an erase is refused.
//! assert_eq!(flash.write(0, &[0, 0, 0, 0]), Err(MemFlashError::NotErased { offset: 0 }));
//! flash.erase(0, 4096).unwrap();
//! flash.write(0, &[0, 0, 0, 0]).unwrap();
//! let mut back = [0u8; 4];
//! flash.read(0, &mut back).unwrap();
//! assert_eq!(back, [0; 4]);
//! ```

use embedded_storage::nor_flash::{ErrorType, NorFlashError, NorFlashErrorKind};

/// Why a [`MemFlash`] operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MemFlashError {
    /// The offset or length is not a multiple of the operation's granularity
    /// (`READ`, `WRITE` or `ERASE`). Nothing was changed.
    #[error("offset 0x{offset:x} / length {len} not aligned to {align}")]
    NotAligned {
        /// Start of the rejected operation.
        offset: u32,
        /// Its length in bytes.
        len: usize,
        /// The granularity it had to respect.
        align: usize,
    },
    /// The range runs past the end of the flash, or an erase has `from > to`. Nothing was
    /// changed.
    #[error("range 0x{offset:x}+{len} is outside the {capacity}-byte flash")]
    OutOfBounds {
        /// Start of the rejected operation.
        offset: u32,
        /// Its length in bytes.
        len: usize,
        /// Size of the flash.
        capacity: usize,
    },
    /// A write covered a byte that was not erased (`0xFF`). Nothing was changed.
    #[error("write over non-erased byte at 0x{offset:x}")]
    NotErased {
        /// Address of the first non-erased byte in the written range.
        offset: u32,
    },
    /// A failure armed with [`MemFlash::fail_after`] cut this operation short; the range is
    /// half done as described in the module docs.
    #[error("simulated power cut")]
    PowerCut,
}

impl NorFlashError for MemFlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            MemFlashError::NotAligned { .. } => NorFlashErrorKind::NotAligned,
            MemFlashError::OutOfBounds { .. } => NorFlashErrorKind::OutOfBounds,
            MemFlashError::NotErased { .. } | MemFlashError::PowerCut => NorFlashErrorKind::Other,
        }
    }
}

/// Operation counters of a [`MemFlash`]. Only operations that passed the alignment, bounds
/// and erase checks are counted (a write or erase cut by a simulated power cut is counted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MemFlashStats {
    /// Number of `read` calls.
    pub reads: u32,
    /// Number of `write` calls.
    pub writes: u32,
    /// Number of `erase` calls.
    pub erases: u32,
    /// Bytes requested by those writes.
    pub bytes_written: u64,
    /// Bytes requested by those erases.
    pub bytes_erased: u64,
}

/// An in-memory NOR flash over a caller-owned buffer; see the [module docs](self) for the
/// rules it enforces.
///
/// `ERASE` is the erase granularity (`NorFlash::ERASE_SIZE`), `WRITE` the write granularity
/// (`NorFlash::WRITE_SIZE`), `READ` the read granularity (`ReadNorFlash::READ_SIZE`). The
/// defaults (4096 / 4 / 1) match `esp-storage` on ESP32 chips. All three must be non-zero and
/// `ERASE` a multiple of `WRITE`; this is checked at compile time.
#[derive(Debug)]
pub struct MemFlash<'a, const ERASE: usize = 4096, const WRITE: usize = 4, const READ: usize = 1> {
    core: Core<'a>,
}

impl<'a, const ERASE: usize, const WRITE: usize, const READ: usize>
    MemFlash<'a, ERASE, WRITE, READ>
{
    const GEOMETRY_OK: () = assert!(
        ERASE > 0 && WRITE > 0 && READ > 0 && ERASE.is_multiple_of(WRITE),
        "MemFlash: ERASE, WRITE and READ must be non-zero and ERASE a multiple of WRITE"
    );

    /// Wraps `mem` as it is (for example a prepared flash image). The capacity is
    /// `mem.len()`.
    pub fn new(mem: &'a mut [u8]) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::GEOMETRY_OK;
        MemFlash {
            core: Core {
                mem,
                stats: MemFlashStats::default(),
                fail_countdown: None,
            },
        }
    }

    /// Fills `mem` with `0xFF` (the erased state) and wraps it.
    pub fn new_erased(mem: &'a mut [u8]) -> Self {
        mem.fill(0xFF);
        Self::new(mem)
    }

    /// Arms a one-shot simulated power cut: the next `ops` erase/write operations succeed,
    /// the one after that is cut short and returns [`MemFlashError::PowerCut`]
    /// (`fail_after(0)` cuts the very next one). Replaces any failure armed before.
    /// Operations rejected for alignment, bounds or erase state do not count.
    pub fn fail_after(&mut self, ops: u32) {
        self.core.fail_countdown = Some(ops);
    }

    /// Disarms a failure armed with [`fail_after`](Self::fail_after).
    pub fn disarm(&mut self) {
        self.core.fail_countdown = None;
    }

    /// Whether a failure is armed and has not fired yet.
    pub fn is_armed(&self) -> bool {
        self.core.fail_countdown.is_some()
    }

    /// The operation counters.
    pub fn stats(&self) -> MemFlashStats {
        self.core.stats
    }

    /// Sets all counters back to zero.
    pub fn reset_stats(&mut self) {
        self.core.stats = MemFlashStats::default();
    }

    /// The flash contents.
    pub fn as_slice(&self) -> &[u8] {
        self.core.mem
    }

    /// The flash contents, writable without any checks (to prepare or corrupt state in a
    /// test).
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        self.core.mem
    }
}

impl<const ERASE: usize, const WRITE: usize, const READ: usize> ErrorType
    for MemFlash<'_, ERASE, WRITE, READ>
{
    type Error = MemFlashError;
}

impl<const ERASE: usize, const WRITE: usize, const READ: usize>
    embedded_storage::nor_flash::ReadNorFlash for MemFlash<'_, ERASE, WRITE, READ>
{
    const READ_SIZE: usize = READ;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        self.core.read(offset, bytes, READ)
    }

    fn capacity(&self) -> usize {
        self.core.mem.len()
    }
}

impl<const ERASE: usize, const WRITE: usize, const READ: usize>
    embedded_storage::nor_flash::NorFlash for MemFlash<'_, ERASE, WRITE, READ>
{
    const WRITE_SIZE: usize = WRITE;
    const ERASE_SIZE: usize = ERASE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        self.core.erase(from, to, ERASE)
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        self.core.write(offset, bytes, WRITE)
    }
}

impl<const ERASE: usize, const WRITE: usize, const READ: usize>
    embedded_storage_async::nor_flash::ReadNorFlash for MemFlash<'_, ERASE, WRITE, READ>
{
    const READ_SIZE: usize = READ;

    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        self.core.read(offset, bytes, READ)
    }

    fn capacity(&self) -> usize {
        self.core.mem.len()
    }
}

impl<const ERASE: usize, const WRITE: usize, const READ: usize>
    embedded_storage_async::nor_flash::NorFlash for MemFlash<'_, ERASE, WRITE, READ>
{
    const WRITE_SIZE: usize = WRITE;
    const ERASE_SIZE: usize = ERASE;

    async fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        self.core.erase(from, to, ERASE)
    }

    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        self.core.write(offset, bytes, WRITE)
    }
}

/// The size-independent part of [`MemFlash`].
#[derive(Debug)]
struct Core<'a> {
    mem: &'a mut [u8],
    stats: MemFlashStats,
    fail_countdown: Option<u32>,
}

impl Core<'_> {
    /// Checks bounds and alignment of `offset..offset+len`; returns the range as indices.
    fn check(
        &self,
        offset: u32,
        len: usize,
        align: usize,
    ) -> Result<core::ops::Range<usize>, MemFlashError> {
        let capacity = self.mem.len();
        let start = offset as usize;
        let end = start
            .checked_add(len)
            .filter(|&end| end <= capacity)
            .ok_or(MemFlashError::OutOfBounds {
                offset,
                len,
                capacity,
            })?;
        if !start.is_multiple_of(align) || !len.is_multiple_of(align) {
            return Err(MemFlashError::NotAligned { offset, len, align });
        }
        Ok(start..end)
    }

    /// Counts one erase/write and tells whether the armed power cut fires on it.
    fn cut_now(&mut self) -> bool {
        match self.fail_countdown {
            Some(0) => {
                self.fail_countdown = None;
                true
            }
            Some(n) => {
                self.fail_countdown = Some(n - 1);
                false
            }
            None => false,
        }
    }

    fn read(&mut self, offset: u32, bytes: &mut [u8], align: usize) -> Result<(), MemFlashError> {
        let range = self.check(offset, bytes.len(), align)?;
        self.stats.reads = self.stats.reads.saturating_add(1);
        bytes.copy_from_slice(&self.mem[range]);
        Ok(())
    }

    fn erase(&mut self, from: u32, to: u32, align: usize) -> Result<(), MemFlashError> {
        let Some(len) = to.checked_sub(from) else {
            return Err(MemFlashError::OutOfBounds {
                offset: from,
                len: 0,
                capacity: self.mem.len(),
            });
        };
        let range = self.check(from, len as usize, align)?;
        self.stats.erases = self.stats.erases.saturating_add(1);
        self.stats.bytes_erased = self.stats.bytes_erased.saturating_add(u64::from(len));
        if self.cut_now() {
            let half = range.start + range.len() / 2;
            self.mem[range.start..half].fill(0xFF);
            return Err(MemFlashError::PowerCut);
        }
        self.mem[range].fill(0xFF);
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8], align: usize) -> Result<(), MemFlashError> {
        let range = self.check(offset, bytes.len(), align)?;
        if let Some(pos) = self.mem[range.clone()].iter().position(|&b| b != 0xFF) {
            return Err(MemFlashError::NotErased {
                // `pos < bytes.len()` and the range is in bounds of a u32-addressed flash.
                offset: offset.saturating_add(pos as u32),
            });
        }
        self.stats.writes = self.stats.writes.saturating_add(1);
        self.stats.bytes_written = self.stats.bytes_written.saturating_add(bytes.len() as u64);
        if self.cut_now() {
            let done = bytes.len() / align / 2 * align;
            self.mem[range.start..range.start + done].copy_from_slice(&bytes[..done]);
            return Err(MemFlashError::PowerCut);
        }
        self.mem[range].copy_from_slice(bytes);
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::block_on;
    use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};

    type Flash<'a> = MemFlash<'a, 4096, 4, 1>;

    #[test]
    fn new_erased_reads_ff() {
        let mut mem = [0u8; 8192];
        let mut f: Flash = MemFlash::new_erased(&mut mem);
        let mut b = [0u8; 16];
        f.read(100, &mut b).unwrap();
        assert_eq!(b, [0xFF; 16]);
        assert_eq!(ReadNorFlash::capacity(&f), 8192);
    }

    #[test]
    fn write_requires_erase() {
        let mut mem = [0u8; 8192];
        let mut f: Flash = MemFlash::new_erased(&mut mem);
        f.write(8, &[0xFF, 0xFF, 0x12, 0xFF]).unwrap();
        assert_eq!(
            f.write(8, &[0xFF, 0xFF, 0x02, 0xFF]),
            Err(MemFlashError::NotErased { offset: 10 })
        );
        // Even writing 0xFF over programmed data is refused.
        assert_eq!(
            f.write(8, &[0xFF; 4]),
            Err(MemFlashError::NotErased { offset: 10 })
        );
        // The rejected writes changed nothing.
        assert_eq!(&f.as_slice()[8..12], &[0xFF, 0xFF, 0x12, 0xFF]);
        f.erase(0, 4096).unwrap();
        f.write(8, &[0, 0, 0, 0]).unwrap();
        assert_eq!(&f.as_slice()[8..12], &[0; 4]);
    }

    #[test]
    fn new_keeps_contents() {
        let mut mem = [0u8; 4096];
        let mut f: Flash = MemFlash::new(&mut mem);
        assert_eq!(
            f.write(0, &[0xFF; 4]),
            Err(MemFlashError::NotErased { offset: 0 })
        );
    }

    #[test]
    fn alignment_is_enforced() {
        let mut mem = [0u8; 8192];
        let mut f: MemFlash<'_, 4096, 4, 4> = MemFlash::new_erased(&mut mem);
        assert!(matches!(
            f.write(2, &[0; 4]),
            Err(MemFlashError::NotAligned { align: 4, .. })
        ));
        assert!(matches!(
            f.write(0, &[0; 3]),
            Err(MemFlashError::NotAligned { align: 4, .. })
        ));
        assert!(matches!(
            f.erase(0, 100),
            Err(MemFlashError::NotAligned { align: 4096, .. })
        ));
        assert!(matches!(
            f.erase(1, 4097),
            Err(MemFlashError::NotAligned { align: 4096, .. })
        ));
        let mut b = [0u8; 3];
        assert!(matches!(
            f.read(0, &mut b),
            Err(MemFlashError::NotAligned { align: 4, .. })
        ));
        assert_eq!(f.stats(), MemFlashStats::default());
        assert_eq!(
            MemFlashError::NotAligned {
                offset: 0,
                len: 0,
                align: 4
            }
            .kind(),
            NorFlashErrorKind::NotAligned
        );
    }

    #[test]
    fn bounds_are_enforced() {
        let mut mem = [0u8; 8192];
        let mut f: Flash = MemFlash::new_erased(&mut mem);
        assert!(matches!(
            f.write(8192, &[0; 4]),
            Err(MemFlashError::OutOfBounds { .. })
        ));
        assert!(matches!(
            f.write(u32::MAX - 1, &[0; 4]),
            Err(MemFlashError::OutOfBounds { .. })
        ));
        assert!(matches!(
            f.erase(4096, 12288),
            Err(MemFlashError::OutOfBounds { .. })
        ));
        assert!(matches!(
            f.erase(4096, 0),
            Err(MemFlashError::OutOfBounds { .. })
        ));
        let mut b = [0u8; 8];
        assert!(matches!(
            f.read(8190, &mut b),
            Err(MemFlashError::OutOfBounds { .. })
        ));
        assert_eq!(
            MemFlashError::OutOfBounds {
                offset: 0,
                len: 0,
                capacity: 0
            }
            .kind(),
            NorFlashErrorKind::OutOfBounds
        );
    }

    #[test]
    fn fail_after_cuts_a_write_in_half() {
        let mut mem = [0u8; 8192];
        let mut f: Flash = MemFlash::new_erased(&mut mem);
        f.fail_after(1);
        assert!(f.is_armed());
        f.write(0, &[1; 8]).unwrap();
        assert_eq!(f.write(16, &[2; 16]), Err(MemFlashError::PowerCut));
        assert!(!f.is_armed());
        assert_eq!(&f.as_slice()[16..24], &[2; 8]);
        assert_eq!(&f.as_slice()[24..32], &[0xFF; 8]);
        // Disarmed after firing once.
        f.write(32, &[3; 4]).unwrap();
        assert_eq!(f.stats().writes, 3);
    }

    #[test]
    fn fail_after_cuts_an_erase_in_half() {
        let mut mem = [0u8; 8192];
        let mut f: Flash = MemFlash::new(&mut mem);
        f.fail_after(0);
        assert_eq!(f.erase(0, 8192), Err(MemFlashError::PowerCut));
        assert!(f.as_slice()[..4096].iter().all(|&b| b == 0xFF));
        assert!(f.as_slice()[4096..].iter().all(|&b| b == 0));
        assert_eq!(f.stats().erases, 1);
    }

    #[test]
    fn rejected_ops_do_not_count_towards_fail_after() {
        let mut mem = [0u8; 8192];
        let mut f: Flash = MemFlash::new_erased(&mut mem);
        f.fail_after(0);
        assert!(matches!(
            f.write(1, &[0; 4]),
            Err(MemFlashError::NotAligned { .. })
        ));
        assert!(f.is_armed());
        f.disarm();
        f.write(0, &[0; 4]).unwrap();
    }

    #[test]
    fn counters() {
        let mut mem = [0u8; 8192];
        let mut f: Flash = MemFlash::new_erased(&mut mem);
        f.erase(0, 8192).unwrap();
        f.write(0, &[0; 8]).unwrap();
        let mut b = [0u8; 4];
        f.read(0, &mut b).unwrap();
        f.read(4, &mut b).unwrap();
        assert_eq!(
            f.stats(),
            MemFlashStats {
                reads: 2,
                writes: 1,
                erases: 1,
                bytes_written: 8,
                bytes_erased: 8192,
            }
        );
        f.reset_stats();
        assert_eq!(f.stats(), MemFlashStats::default());
    }

    #[test]
    fn async_twin_enforces_the_same_rules() {
        use embedded_storage_async::nor_flash::NorFlash as AsyncNorFlash;
        let mut mem = [0u8; 8192];
        let mut f: Flash = MemFlash::new_erased(&mut mem);
        block_on(AsyncNorFlash::write(&mut f, 0, &[1, 2, 3, 4])).unwrap();
        assert_eq!(
            block_on(AsyncNorFlash::write(&mut f, 0, &[1, 2, 3, 4])),
            Err(MemFlashError::NotErased { offset: 0 })
        );
        block_on(AsyncNorFlash::erase(&mut f, 0, 4096)).unwrap();
        let mut b = [0u8; 4];
        block_on(embedded_storage_async::nor_flash::ReadNorFlash::read(
            &mut f, 0, &mut b,
        ))
        .unwrap();
        assert_eq!(b, [0xFF; 4]);
    }
}
