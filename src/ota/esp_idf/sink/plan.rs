//! The read-back check of regions the journal records erased, and the otadata state of a slot.

use super::*;

/// The read-back check of a region recorded erased, in chunks of at most [`WRITE_BUF_LEN`]
/// bytes (read through the write buffer, which is empty when `begin` runs it): finds how many
/// whole sectors from its start read all `0xFF`. Stops at the first chunk that does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct BlankCheck {
    /// Flash address checked up to (a sector boundary once the check has failed).
    pub(super) pos: u32,
    /// Flash address of the region end (a sector boundary).
    pub(super) end: u32,
    /// No byte that is not `0xFF` seen yet.
    pub(super) blank: bool,
}

impl BlankCheck {
    pub(super) fn new(from: u32, end: u32) -> Self {
        BlankCheck {
            pos: from,
            end,
            blank: true,
        }
    }

    /// The next chunk to read (flash address, length); `None` when the check is over. Region
    /// ends are sector boundaries and [`WRITE_BUF_LEN`] divides a sector, so every length is
    /// [`WRITE_BUF_LEN`], a multiple of the flash's `READ_SIZE`.
    pub(super) fn next_read(&self) -> Option<(u32, usize)> {
        if !self.blank || self.pos >= self.end {
            return None;
        }
        let len = (self.end - self.pos).min(WRITE_BUF_LEN as u32);
        Some((self.pos, len as usize))
    }

    /// Feeds the chunk read where [`next_read`](Self::next_read) said. A chunk with a byte
    /// that is not `0xFF` (or an empty one) ends the check at the start of its sector.
    pub(super) fn feed(&mut self, chunk: &[u8]) {
        if !chunk.is_empty() && chunk.iter().all(|&b| b == 0xFF) {
            self.pos += chunk.len() as u32;
        } else {
            self.blank = false;
            self.pos = self.pos / SECTOR_SIZE * SECTOR_SIZE;
        }
    }

    /// The end of the whole sectors from the region start that read erased (flash address).
    pub(super) fn erased_end(&self) -> u32 {
        self.pos
    }
}

/// The state of a valid entry selecting `slot` (the active one first), if any
/// (`esp_ota_get_state_partition`).
pub(super) fn state_of(
    entries: &[OtaSelectEntry; 2],
    count: u8,
    slot: u8,
) -> Option<OtaImageState> {
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
