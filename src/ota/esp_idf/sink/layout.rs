//! Where the slots are: the partition table read and checked, the running app, the target slot and the resume point (pure decisions, no flash).

use super::*;

/// What the sink needs from the partition table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct SlotLayout {
    pub(super) otadata: u32,
    pub(super) ota_count: u8,
    /// `(offset, size)` of `ota_0 .. ota_{count-1}`.
    pub(super) slots: [(u32, u32); MAX_OTA_SLOTS as usize],
    /// `(offset, size)` of the factory app, if the table has one.
    pub(super) factory: Option<(u32, u32)>,
}

impl SlotLayout {
    pub(super) fn from_layout<E>(layout: &OtaLayout) -> Result<Self, SinkError<E>> {
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
            factory: layout.factory().map(|p| (p.offset, p.size)),
        })
    }

    /// What the bootloader loads for `choice` (§3.4, `find_default_boot_partition`).
    pub(super) fn app_for(&self, choice: &BootChoice) -> AppSlot {
        match choice {
            BootChoice::Ota { slot, .. } => AppSlot::Ota(*slot),
            BootChoice::NoOtaSlots | BootChoice::NoValidEntry if self.factory.is_some() => {
                AppSlot::Factory
            }
            BootChoice::NoOtaSlots | BootChoice::NoValidEntry => AppSlot::Ota(0),
        }
    }
}

/// The partition table check while it is read: at most [`TABLE_RECORDS`] partitions, so
/// every one is checked against every earlier one for overlap.
pub(super) type Scanner = TableScanner<TABLE_RECORDS>;

/// Feeds one chunk read from the table (whole 32-byte records) to the scanner and returns
/// whether the chunk holds the table's end marker, recognised as ESP-IDF does by four `0xFF`
/// bytes at the start of a record. Reading stops after that chunk (or after
/// [`TABLE_BUF_LEN`] bytes), whatever the scanner found before it, so the reads are the same
/// whatever the table holds.
#[inline(never)]
pub(super) fn scan_chunk(scan: &mut Scanner, chunk: &[u8; TABLE_CHUNK]) -> bool {
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
pub(super) fn layout_from_scan<E>(scan: &Scanner, read: usize) -> Result<SlotLayout, SinkError<E>> {
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
pub(super) fn read_table<F: NorFlash>(
    flash: &mut F,
    offset: u32,
) -> Result<SlotLayout, SinkError<F::Error>> {
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
pub(super) fn resolve_running<E>(
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

/// `(offset, size)` of the app partition `app`.
pub(super) fn app_span<E>(layout: &SlotLayout, app: AppSlot) -> Result<(u32, u32), SinkError<E>> {
    match app {
        AppSlot::Factory => layout.factory,
        AppSlot::Ota(n) if n < layout.ota_count => layout.slots.get(usize::from(n)).copied(),
        AppSlot::Ota(_) => None,
    }
    .ok_or(SinkError::NoOtaSlots)
}

/// The flash address of a `read_running(offset, len)` in the running app's partition
/// `span`, or [`SinkError::RunningReadOutOfRange`].
pub(super) fn running_read_addr<E>(
    span: (u32, u32),
    offset: u32,
    len: usize,
) -> Result<u32, SinkError<E>> {
    let (start, size) = span;
    if u64::from(offset) + len as u64 > u64::from(size) {
        return Err(SinkError::RunningReadOutOfRange { offset, len, size });
    }
    Ok(start + offset)
}

/// Checks the flash granularity the sink and otadata need.
pub(super) fn check_geometry<E>(g: FlashGeometry) -> Result<(), SinkError<E>> {
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
pub(super) fn plan_target<E>(
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
pub(super) fn resume_offset(
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
pub(super) fn recorded_erased(rec: &JournalRecord, target: &UpdateTarget) -> Option<u32> {
    let usable = rec.is_erase_progress()
        && rec.size == target.capacity
        && rec.offset <= target.capacity
        && rec.offset.is_multiple_of(SECTOR_SIZE);
    usable.then_some(rec.offset)
}

/// How far from the slot start `begin` may take the slot as erased for an image of `size`
/// bytes, once it reads back erased: what the journal's erase-progress record covers, up to
/// the end of the image's last sector. 0 without such a record.
pub(super) fn erased_claim(rec: Option<&JournalRecord>, target: &UpdateTarget, size: u32) -> u32 {
    let image_end = size.div_ceil(SECTOR_SIZE).saturating_mul(SECTOR_SIZE);
    rec.and_then(|r| recorded_erased(r, target))
        .map_or(0, |erased| erased.min(image_end))
}

/// What the journal's newest record says about the slot for idle erasing.
pub(super) fn idle_state(rec: Option<&JournalRecord>, target: &UpdateTarget) -> IdleEraseState {
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
pub(super) fn plan_idle_step<E>(
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
