//! Flash for the OTA sink: which slot is running, and esp-storage seen as async flash.

use embedded_storage::nor_flash::{ErrorType, NorFlash, ReadNorFlash};
use esp_bootloader_esp_idf::partitions::{self, PARTITION_TABLE_MAX_LEN};
use esp_storage::FlashStorage;

/// The OTA slot (`ota_N`) this app was booted from, read from the MMU by
/// `esp-bootloader-esp-idf` (`PartitionTable::booted_partition`); `None` if it cannot tell
/// (then the sink falls back to what otadata selects, which is the same unless the
/// bootloader skipped a corrupt image).
///
/// Reads the partition table (3 KiB on the stack for the duration of the call).
pub fn running_slot(flash: &mut FlashStorage<'_>) -> Option<u8> {
    let mut buf = [0u8; PARTITION_TABLE_MAX_LEN];
    let table = partitions::read_partition_table(flash, &mut buf).ok()?;
    let booted = table.booted_partition().ok()??;
    // App partitions have type 0; ota_0..ota_15 are subtypes 0x10..=0x1F.
    match (booted.raw_type(), booted.raw_subtype()) {
        (0x00, sub @ 0x10..=0x1F) => Some(sub - 0x10),
        _ => None,
    }
}

/// Whether the newest image in otadata was rejected: an entry with a higher sequence number
/// than every valid one is INVALID (its self-test failed) or ABORTED (a rollback bootloader
/// gave up on it), so the app running now is the fallback.
///
/// The update check uses this to avoid a loop: the server still offers the rejected
/// version, and installing it again would fail again. Reads the partition table and otadata
/// with the crate's own parsers; `false` if they cannot be read.
pub fn newer_image_rejected(flash: &mut FlashStorage<'_>) -> bool {
    use cellular_ota::ota::esp_idf::Otadata;
    use cellular_ota::ota::esp_idf::partition::{self, PARTITION_TABLE_OFFSET};

    let mut buf = [0u8; partition::PARTITION_TABLE_MAX_LEN];
    let Ok(table) = partition::read_partition_table(flash, PARTITION_TABLE_OFFSET, &mut buf) else {
        return false;
    };
    let Ok(mut otadata) = Otadata::from_table(&mut *flash, &table) else {
        return false;
    };
    let Ok(entries) = otadata.read_entries() else {
        return false;
    };
    let newest_valid = entries.iter().filter(|e| e.is_valid()).map(|e| e.seq).max();
    entries.iter().any(|e| {
        e.seq != u32::MAX
            && e.crc_matches()
            && e.state.disqualifies()
            && newest_valid.is_none_or(|valid| e.seq > valid)
    })
}

/// A blocking `NorFlash` (esp-storage's `FlashStorage`) seen as an `embedded-storage-async`
/// one, for `AsyncEspIdfSink`.
///
/// esp-storage has no async API: every operation still stalls the CPU while the flash works
/// (an erase takes tens of milliseconds). What this adapter adds over the crate's
/// `update::BlockingSink` is a yield to the executor after each erase and write, so other
/// tasks run between flash operations instead of only when the whole sink call returns.
#[derive(Debug)]
pub struct AsyncFlash<F>(pub F);

impl<F: ErrorType> ErrorType for AsyncFlash<F> {
    type Error = F::Error;
}

impl<F: ReadNorFlash> embedded_storage_async::nor_flash::ReadNorFlash for AsyncFlash<F> {
    const READ_SIZE: usize = F::READ_SIZE;

    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        self.0.read(offset, bytes)
    }

    fn capacity(&self) -> usize {
        self.0.capacity()
    }
}

impl<F: NorFlash> embedded_storage_async::nor_flash::NorFlash for AsyncFlash<F> {
    const WRITE_SIZE: usize = F::WRITE_SIZE;
    const ERASE_SIZE: usize = F::ERASE_SIZE;

    async fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        let result = self.0.erase(from, to);
        embassy_futures::yield_now().await;
        result
    }

    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        let result = self.0.write(offset, bytes);
        embassy_futures::yield_now().await;
        result
    }
}
