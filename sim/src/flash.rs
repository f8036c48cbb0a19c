//! A simulated SPI NOR flash chip (the ESP32-S3's external flash) that costs virtual time.
//!
//! Geometry as `esp-storage` presents it on ESP32 chips: erase unit 4096 bytes, write unit 4,
//! read unit 1 (`ERASE_SIZE`/`WRITE_SIZE`/`READ_SIZE`). Rules (alignment, bounds,
//! erase-before-write, half-done operations on a power cut) are those of
//! [`cellular_ota::ota::mem_flash::MemFlash`], which does the checking here.
//!
//! # Timing
//!
//! Typical values of the Winbond W25Q32JV datasheet (AC electrical characteristics):
//! sector erase (4 KiB) `tSE` = 45 ms, block erase (64 KiB) `tBE2` = 150 ms, page program
//! (256 bytes) `tPP` = 0.4 ms. GigaDevice GD25Q32 parts are in the same range (sector erase
//! ~50 ms, page program ~0.6 ms). An erase uses 64 KiB block erases for whole aligned blocks
//! and sector erases for the rest; a write costs one page-program time per 256-byte page it
//! touches. Reads are modelled at 20 MB/s plus 10 µs per call (an estimate for 80 MHz quad
//! SPI through the ROM routines).
//!
//! Every operation **advances the virtual clock** with the host's interrupts **off** (code
//! cannot run from flash while it is busy; see [`World::advance_interrupts_off`]), so the
//! modem's bytes pile up in the 128-byte UART FIFO meanwhile — without RTS/CTS they are lost.
//!
//! # Power cuts
//!
//! The flash power supply belongs to the [`World`] (fault `power-cut=<k>`, or
//! [`SimFlash::power_cut_after`]): `k` more erase/write operations succeed, the next is cut
//! half-way (as `MemFlash` models it), and from then on every operation — reads too — fails
//! with [`MemFlashError::PowerCut`] until [`SimFlash::restore_power`].

use std::time::Duration;

use cellular_ota::ota::mem_flash::{MemFlash, MemFlashError};
use embedded_storage::nor_flash::ErrorType;

use crate::timeline::{FlashOp, FlashOpKind};
use crate::world::{World, duration_ns};

/// Flash geometry and timing.
#[derive(Clone, Debug)]
pub struct FlashConfig {
    /// Capacity in bytes (4, 8 or 16 MiB on ESP32-S3 modules).
    pub size: usize,
    /// Sector (4 KiB) erase time. W25Q32JV typical: 45 ms.
    pub sector_erase: Duration,
    /// 64 KiB block erase time. W25Q32JV typical: 150 ms.
    pub block_erase: Duration,
    /// 256-byte page program time. W25Q32JV typical: 0.4 ms.
    pub page_program: Duration,
    /// Read throughput in bytes per second.
    pub read_bytes_per_sec: u64,
    /// Fixed cost of each read call.
    pub read_overhead: Duration,
    /// Whether operations run with the host's interrupts off (the UART receive interrupt
    /// cannot empty the FIFO meanwhile).
    pub interrupts_off: bool,
}

impl Default for FlashConfig {
    fn default() -> Self {
        FlashConfig {
            size: 4 << 20,
            sector_erase: Duration::from_millis(45),
            block_erase: Duration::from_millis(150),
            page_program: Duration::from_micros(400),
            read_bytes_per_sec: 20_000_000,
            read_overhead: Duration::from_micros(10),
            interrupts_off: true,
        }
    }
}

impl FlashConfig {
    /// Default timing with another capacity.
    pub fn with_size(size: usize) -> Self {
        FlashConfig {
            size,
            ..FlashConfig::default()
        }
    }

    /// Operations that take no virtual time (for setting up images).
    pub fn instant(size: usize) -> Self {
        FlashConfig {
            size,
            sector_erase: Duration::ZERO,
            block_erase: Duration::ZERO,
            page_program: Duration::ZERO,
            read_bytes_per_sec: u64::MAX,
            read_overhead: Duration::ZERO,
            interrupts_off: false,
        }
    }
}

/// Operation counters of a [`SimFlash`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlashStats {
    /// Successful read calls.
    pub reads: u64,
    /// Write calls that passed the checks (including a cut one).
    pub writes: u64,
    /// Erase calls that passed the checks (including a cut one).
    pub erases: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Bytes erased.
    pub bytes_erased: u64,
    /// Virtual time spent in flash operations.
    pub busy: Duration,
}

/// Erase unit.
pub const ERASE_SIZE: usize = 4096;
/// Write unit.
pub const WRITE_SIZE: usize = 4;
const PAGE: u64 = 256;
const BLOCK: u64 = 64 * 1024;

/// A simulated NOR flash chip on virtual time; implements `embedded_storage`'s
/// `ReadNorFlash` + `NorFlash` and the `embedded_storage_async` twins (which complete at
/// once, after advancing the clock). Address 0 is the start of the chip.
#[derive(Debug)]
pub struct SimFlash {
    world: World,
    mem: Vec<u8>,
    cfg: FlashConfig,
    stats: FlashStats,
}

impl SimFlash {
    /// An erased chip (all `0xFF`).
    pub fn new(world: &World, cfg: FlashConfig) -> Self {
        let mem = vec![0xFF; cfg.size];
        SimFlash {
            world: world.clone(),
            mem,
            cfg,
            stats: FlashStats::default(),
        }
    }

    /// A chip holding `image` (padded with `0xFF` to the configured size; a longer image sets
    /// the size).
    pub fn with_image(world: &World, cfg: FlashConfig, image: &[u8]) -> Self {
        let mut mem = vec![0xFF; cfg.size.max(image.len())];
        mem[..image.len()].copy_from_slice(image);
        SimFlash {
            world: world.clone(),
            mem,
            cfg,
            stats: FlashStats::default(),
        }
    }

    /// The chip's contents.
    pub fn image(&self) -> &[u8] {
        &self.mem
    }

    /// The chip's contents, writable without checks or time (to prepare or corrupt state).
    pub fn image_mut(&mut self) -> &mut [u8] {
        &mut self.mem
    }

    /// A copy of the contents.
    pub fn snapshot(&self) -> Vec<u8> {
        self.mem.clone()
    }

    /// The counters.
    pub fn stats(&self) -> FlashStats {
        self.stats
    }

    /// Arms a power cut: `k` more erase/write operations succeed, the next one is cut
    /// half-way, and every operation after it fails until [`restore_power`](Self::restore_power).
    /// (The power supply is the world's: every `SimFlash` of the world shares it.)
    pub fn power_cut_after(&mut self, k: u32) {
        self.world.0.borrow_mut().power.countdown = Some(k);
    }

    /// Power is back: operations work again (the armed cut, if it has not fired, is
    /// disarmed).
    pub fn restore_power(&mut self) {
        let mut s = self.world.0.borrow_mut();
        s.power.cut = false;
        s.power.countdown = None;
        s.power.at = None;
    }

    /// Whether the flash has power.
    pub fn is_powered(&self) -> bool {
        !self.world.0.borrow().power.cut
    }

    fn spend(&mut self, d: Duration, op: FlashOp) {
        if d.is_zero() {
            return;
        }
        self.stats.busy += d;
        let mut s = self.world.0.borrow_mut();
        s.timeline_flash(&self.cfg, op, d);
        s.busy(duration_ns(d), !self.cfg.interrupts_off);
    }

    fn powered(&self) -> Result<(), MemFlashError> {
        if self.world.0.borrow().power.cut {
            Err(MemFlashError::PowerCut)
        } else {
            Ok(())
        }
    }

    /// Whether the next erase/write, of `[from, to)`, is the one the power cut hits (and
    /// counts it).
    fn cut_now(&self, from: u32, to: u32) -> bool {
        let mut s = self.world.0.borrow_mut();
        if let Some((addr, k)) = s.power.at
            && from <= addr
            && addr < to
        {
            if k == 0 {
                s.power.at = None;
                s.power.cut = true;
                return true;
            }
            s.power.at = Some((addr, k - 1));
        }
        match s.power.countdown {
            Some(0) => {
                s.power.countdown = None;
                s.power.cut = true;
                true
            }
            Some(n) => {
                s.power.countdown = Some(n - 1);
                false
            }
            None => false,
        }
    }

    fn do_read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), MemFlashError> {
        self.powered()?;
        let mut f = MemFlash::<'_, ERASE_SIZE, WRITE_SIZE, 1>::new(&mut self.mem);
        embedded_storage::nor_flash::ReadNorFlash::read(&mut f, offset, bytes)?;
        self.stats.reads += 1;
        let rate = self.cfg.read_bytes_per_sec.max(1);
        let ns = (bytes.len() as u64).saturating_mul(1_000_000_000) / rate;
        self.spend(
            self.cfg.read_overhead + Duration::from_nanos(ns),
            FlashOp::Read,
        );
        Ok(())
    }

    fn erase_time(&self, from: u32, to: u32) -> Duration {
        let mut t = Duration::ZERO;
        erase_steps(&self.cfg, from, to, |_, d| t += d);
        t
    }

    fn write_time(&self, offset: u32, len: usize) -> Duration {
        if len == 0 {
            return Duration::ZERO;
        }
        let first = u64::from(offset) / PAGE;
        let last = (u64::from(offset) + len as u64 - 1) / PAGE;
        self.cfg.page_program * (last - first + 1) as u32
    }

    fn do_erase(&mut self, from: u32, to: u32) -> Result<(), MemFlashError> {
        self.powered()?;
        // Check first without touching anything: a rejected call does not count.
        if to < from {
            return Err(MemFlashError::OutOfBounds {
                offset: from,
                len: 0,
                capacity: self.mem.len(),
            });
        }
        check(from, (to - from) as usize, ERASE_SIZE, self.mem.len())?;
        let cut = self.cut_now(from, to);
        let t = self.erase_time(from, to);
        let mut f = MemFlash::<'_, ERASE_SIZE, WRITE_SIZE, 1>::new(&mut self.mem);
        if cut {
            f.fail_after(0);
        }
        let r = embedded_storage::nor_flash::NorFlash::erase(&mut f, from, to);
        self.stats.erases += 1;
        self.stats.bytes_erased += u64::from(to - from);
        self.spend(if cut { t / 2 } else { t }, FlashOp::Erase { from, to });
        r
    }

    fn do_write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), MemFlashError> {
        self.powered()?;
        check(offset, bytes.len(), WRITE_SIZE, self.mem.len())?;
        let start = offset as usize;
        if let Some(pos) = self.mem[start..start + bytes.len()]
            .iter()
            .position(|&b| b != 0xFF)
        {
            return Err(MemFlashError::NotErased {
                offset: offset.saturating_add(pos as u32),
            });
        }
        let cut = self.cut_now(offset, offset.saturating_add(bytes.len() as u32));
        let t = self.write_time(offset, bytes.len());
        let mut f = MemFlash::<'_, ERASE_SIZE, WRITE_SIZE, 1>::new(&mut self.mem);
        if cut {
            f.fail_after(0);
        }
        let r = embedded_storage::nor_flash::NorFlash::write(&mut f, offset, bytes);
        self.stats.writes += 1;
        self.stats.bytes_written += bytes.len() as u64;
        self.spend(if cut { t / 2 } else { t }, FlashOp::Program);
        r
    }
}

/// The steps an erase of `[from, to)` takes, in order: a block erase for each whole aligned
/// 64 KiB block, a sector erase for the rest.
pub(crate) fn erase_steps(
    cfg: &FlashConfig,
    from: u32,
    to: u32,
    mut step: impl FnMut(FlashOpKind, Duration),
) {
    let (mut a, b) = (u64::from(from), u64::from(to));
    while a < b {
        if a.is_multiple_of(BLOCK) && a + BLOCK <= b {
            step(FlashOpKind::BlockErase, cfg.block_erase);
            a += BLOCK;
        } else {
            step(FlashOpKind::SectorErase, cfg.sector_erase);
            a += ERASE_SIZE as u64;
        }
    }
}

fn check(offset: u32, len: usize, align: usize, capacity: usize) -> Result<(), MemFlashError> {
    let start = offset as usize;
    if start.checked_add(len).is_none_or(|end| end > capacity) {
        return Err(MemFlashError::OutOfBounds {
            offset,
            len,
            capacity,
        });
    }
    if !start.is_multiple_of(align) || !len.is_multiple_of(align) {
        return Err(MemFlashError::NotAligned { offset, len, align });
    }
    Ok(())
}

impl ErrorType for SimFlash {
    type Error = MemFlashError;
}

impl embedded_storage::nor_flash::ReadNorFlash for SimFlash {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        self.do_read(offset, bytes)
    }

    fn capacity(&self) -> usize {
        self.mem.len()
    }
}

impl embedded_storage::nor_flash::NorFlash for SimFlash {
    const WRITE_SIZE: usize = WRITE_SIZE;
    const ERASE_SIZE: usize = ERASE_SIZE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        self.do_erase(from, to)
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        self.do_write(offset, bytes)
    }
}

impl embedded_storage_async::nor_flash::ReadNorFlash for SimFlash {
    const READ_SIZE: usize = 1;

    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        self.do_read(offset, bytes)
    }

    fn capacity(&self) -> usize {
        self.mem.len()
    }
}

impl embedded_storage_async::nor_flash::NorFlash for SimFlash {
    const WRITE_SIZE: usize = WRITE_SIZE;
    const ERASE_SIZE: usize = ERASE_SIZE;

    async fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        self.do_erase(from, to)
    }

    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        self.do_write(offset, bytes)
    }
}
