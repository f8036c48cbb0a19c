//! The ESP-IDF A/B sink through the public API, checked by an independent bootloader model.
//!
//! The flash is a 4 MiB chip image in a `Vec`: partition table at 0x8000 with nvs,
//! otadata (0x2000), phy, ota_0 and ota_1 (1 MiB each). After each operation the test's own
//! reader — not the crate's otadata code — decodes the two otadata entries with a local
//! CRC-32, computes `(seq - 1) % count` and checks the app image in that slot (magic, chip
//! id, segment walk, checksum, appended SHA-256, length), as the ESP-IDF second-stage
//! bootloader does (reference §3.3–3.6).

// `drop(sink)` marks where the device "reboots" (and ends the sink's borrow of the flash).
#![allow(clippy::drop_non_drop)]

use cellular_ota::ota::esp_idf::image::testing::{AppParts, TestImage};
use cellular_ota::ota::esp_idf::image::{ChipId, ImageError};
use cellular_ota::ota::esp_idf::otadata::OtaImageState;
use cellular_ota::ota::esp_idf::partition::{
    self, AppSubType, DataSubType, PartitionEntry, PartitionType,
};
use cellular_ota::ota::esp_idf::sink::{
    AppSlot, AsyncEspIdfSink, EspIdfSink, FlashOp, IdleErase, IdleEraseState, SinkConfig, SinkError,
};
use cellular_ota::ota::mem_flash::{MemFlash, MemFlashError};
use cellular_ota::ota::{AsyncOtaSink, ExpectedImage, ImageDescriptor, OtaSink, Resume};
use sha2::{Digest, Sha256};

const FLASH_SIZE: usize = 4 << 20;
const OTADATA: usize = 0xD000;
const SLOT_SIZE: usize = 0x10_0000;
const SECTOR: usize = 0x1000;
const CAPACITY: u32 = (SLOT_SIZE - SECTOR) as u32;
const S3: u16 = 9;

type Err = SinkError<MemFlashError>;

// ----- chip images ------------------------------------------------------------------------

fn entry(kind: PartitionType, offset: u32, size: u32, label: &str) -> PartitionEntry {
    PartitionEntry::new(kind, offset, size, label).unwrap()
}

fn app(n: u8) -> PartitionType {
    PartitionType::App(AppSubType::Ota(n))
}

/// A 4 MiB flash with the partition table written and everything else erased.
fn chip_with(entries: &[PartitionEntry]) -> Vec<u8> {
    let mut mem = vec![0xFF; FLASH_SIZE];
    partition::encode(entries, &mut mem[0x8000..0x9000], true).unwrap();
    mem
}

/// nvs, otadata, phy, ota_0 @ 0x10000, ota_1 @ 0x110000.
fn chip() -> Vec<u8> {
    chip_with(&[
        entry(PartitionType::Data(DataSubType::Nvs), 0x9000, 0x4000, "nvs"),
        entry(
            PartitionType::Data(DataSubType::Ota),
            0xD000,
            0x2000,
            "otadata",
        ),
        entry(
            PartitionType::Data(DataSubType::Phy),
            0xF000,
            0x1000,
            "phy_init",
        ),
        entry(app(0), 0x10000, SLOT_SIZE as u32, "ota_0"),
        entry(app(1), 0x110000, SLOT_SIZE as u32, "ota_1"),
    ])
}

/// otadata, factory @ 0x10000, ota_0 @ 0x110000, ota_1 @ 0x210000.
fn chip_with_factory() -> Vec<u8> {
    chip_with(&[
        entry(
            PartitionType::Data(DataSubType::Ota),
            0xD000,
            0x2000,
            "otadata",
        ),
        entry(
            PartitionType::App(AppSubType::Factory),
            0x10000,
            SLOT_SIZE as u32,
            "factory",
        ),
        entry(app(0), 0x110000, SLOT_SIZE as u32, "ota_0"),
        entry(app(1), 0x210000, SLOT_SIZE as u32, "ota_1"),
    ])
}

/// otadata and three 512 KiB OTA slots.
fn chip_with_three_slots() -> Vec<u8> {
    chip_with(&[
        entry(
            PartitionType::Data(DataSubType::Ota),
            0xD000,
            0x2000,
            "otadata",
        ),
        entry(app(0), 0x10000, 0x80000, "ota_0"),
        entry(app(1), 0x90000, 0x80000, "ota_1"),
        entry(app(2), 0x110000, 0x80000, "ota_2"),
    ])
}

/// Slot addresses of `chip()`.
const SLOTS: [usize; 2] = [0x10000, 0x110000];

// ----- images -----------------------------------------------------------------------------

struct Img {
    bytes: Vec<u8>,
    sha: [u8; 32],
}

impl Img {
    fn desc(&self) -> ImageDescriptor {
        ImageDescriptor {
            id: self.sha,
            size: self.bytes.len() as u32,
        }
    }
}

/// A valid app image of about `payload` bytes of pseudo-random data for chip `chip_id`.
fn image_for(seed: u32, payload: usize, chip_id: u16) -> Img {
    let mut state = seed.wrapping_mul(0x9E37_79B9) | 1;
    let data: Vec<u8> = (0..payload)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect();
    // Laid out as an app: an eighth as read-only data (DROM), the rest as code (IROM).
    let (rodata, text) = data.split_at(payload / 8);
    let parts = AppParts {
        rodata,
        text,
        ..AppParts::default()
    };
    let mut buf = vec![0u8; payload + 4096];
    let len = TestImage::new(chip_id).build_app(&mut buf, &parts).unwrap();
    buf.truncate(len);
    let sha = Sha256::digest(&buf).into();
    Img { bytes: buf, sha }
}

fn image(seed: u32, payload: usize) -> Img {
    image_for(seed, payload, S3)
}

// ----- reading otadata, and what boots (the simulator's bootloader model) ---------------

/// `esp_rom_crc32_le(UINT32_MAX, ..)`: reflected CRC-32, register starts at 0, result
/// inverted.
fn rom_crc32(bytes: &[u8]) -> u32 {
    let mut c: u32 = 0;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn word(mem: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(mem[at..at + 4].try_into().unwrap())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RawEntry {
    seq: u32,
    state: u32,
    crc: u32,
}

fn raw_entry(mem: &[u8], index: usize) -> RawEntry {
    let at = OTADATA + index * 0x1000;
    RawEntry {
        seq: word(mem, at),
        state: word(mem, at + 24),
        crc: word(mem, at + 28),
    }
}

/// `bootloader_common_ota_select_valid`.
fn entry_valid(e: &RawEntry) -> bool {
    e.seq != u32::MAX && e.state != 3 && e.state != 4 && e.crc == rom_crc32(&e.seq.to_le_bytes())
}

/// What the bootloader picks: `(slot index or None for the default app, entry state)`.
fn select(mem: &[u8], count: u32) -> (Option<u32>, Option<u32>) {
    let e = [raw_entry(mem, 0), raw_entry(mem, 1)];
    let active = match (entry_valid(&e[0]), entry_valid(&e[1])) {
        (true, true) if e[1].seq > e[0].seq => Some(1),
        (true, _) => Some(0),
        (false, true) => Some(1),
        (false, false) => None,
    };
    match active {
        Some(i) => (Some((e[i].seq - 1) % count), Some(e[i].state)),
        None => (None, None),
    }
}

/// Writes an otadata entry the way ESP-IDF does (erase its sector, write 32 bytes).
fn put_entry(mem: &mut [u8], index: usize, seq: u32, state: u32) {
    let at = OTADATA + index * 0x1000;
    mem[at..at + 0x1000].fill(0xFF);
    mem[at..at + 4].copy_from_slice(&seq.to_le_bytes());
    mem[at + 24..at + 28].copy_from_slice(&state.to_le_bytes());
    mem[at + 28..at + 32].copy_from_slice(&rom_crc32(&seq.to_le_bytes()).to_le_bytes());
}

/// The image the bootloader boots in `chip()`, decided by the simulator's bootloader model
/// (written from ESP-IDF's rules, without the library's code): slot and the image's
/// SHA-256, and the selected otadata entry's state. Panics unless the slot otadata selects
/// boots (no fallback is relied on).
fn booted(mem: &[u8]) -> (usize, [u8; 32], Option<u32>) {
    let (slot, state) = select(mem, 2);
    let slot = slot.unwrap_or(0) as usize;
    let outcome = cellular_ota_sim::boot(mem, S3);
    assert_eq!(
        outcome.slot(),
        Some(slot as u8),
        "selected slot {slot} is not bootable: {}",
        outcome.reason
    );
    (slot, outcome.image.expect("an image boots").sha256, state)
}

// ----- driving the sink -------------------------------------------------------------------

fn flash(mem: &mut [u8]) -> MemFlash<'_> {
    MemFlash::new(mem)
}

fn cfg() -> SinkConfig {
    SinkConfig::new(ChipId::ESP32S3)
}

/// begin, write from the resume point in `chunk`-byte pieces, finish.
fn run<S: OtaSink>(sink: &mut S, img: &Img, chunk: usize) -> Result<Resume, S::Error> {
    run_with(sink, img, chunk, None)
}

/// [`run`], and with `prepare: Some(range)` the way the update flow fetches large ranges:
/// `prepare(at, range)` at the start of each `range`-byte range, then its bytes in
/// `chunk`-byte pieces (a piece never crosses into the next range).
fn run_with<S: OtaSink>(
    sink: &mut S,
    img: &Img,
    chunk: usize,
    prepare: Option<usize>,
) -> Result<Resume, S::Error> {
    let resume = sink.begin(&img.desc())?;
    let mut at = resume.offset as usize;
    let mut range_end = at;
    while at < img.bytes.len() {
        let mut end = (at + chunk).min(img.bytes.len());
        if let Some(range) = prepare {
            if at == range_end {
                sink.prepare(at as u32, range as u32)?;
                range_end = at + range;
            }
            end = end.min(range_end);
        }
        sink.write(at as u32, &img.bytes[at..end])?;
        at = end;
    }
    sink.finish(&ExpectedImage::sha256(img.sha))?;
    Ok(resume)
}

fn update(mem: &mut [u8], config: SinkConfig, img: &Img, chunk: usize) -> Result<u8, Err> {
    let mut f = flash(mem);
    let mut sink = EspIdfSink::new(&mut f, config);
    run(&mut sink, img, chunk)?;
    Ok(sink.last_activated().unwrap().slot)
}

/// A chip with image `a` in ota_0, selected by entry 0 (seq 1), as after a first OTA.
fn chip_running(a: &Img) -> Vec<u8> {
    let mut mem = chip();
    let slot = update(&mut mem, cfg().with_running_slot(Some(1)), a, 4096).unwrap();
    assert_eq!(slot, 0);
    assert_eq!(booted(&mem).1, a.sha);
    mem
}

use cellular_ota::block_on;

// ----- tests ------------------------------------------------------------------------------

#[test]
fn local_crc_matches_the_reference_vectors() {
    assert_eq!(rom_crc32(&1u32.to_le_bytes()), 0x4743_989A);
    assert_eq!(rom_crc32(&2u32.to_le_bytes()), 0x55F6_3774);
    assert_eq!(rom_crc32(&3u32.to_le_bytes()), 0xED4A_5011);
}

#[test]
fn full_update_in_any_chunking() {
    let img = image(1, 150_000);
    let original = chip();
    for rollback in [false, true] {
        for chunk in [1, 7, 4096, 10_000, img.bytes.len()] {
            let mut mem = original.clone();
            let slot = update(&mut mem, cfg().with_rollback(rollback), &img, chunk).unwrap();
            assert_eq!(slot, 1, "ota_0 runs (erased otadata, no factory)");
            let (slot, sha, state) = booted(&mem);
            assert_eq!((slot, sha), (1, img.sha), "chunk {chunk}");
            let want_state = if rollback { 0 } else { 0xFFFF_FFFF };
            assert_eq!(state, Some(want_state));
            // Entry 0 was written: seq 2 selects ota_1 from erased otadata.
            assert_eq!(raw_entry(&mem, 0).seq, 2);
            assert_eq!(&mem[OTADATA + 4..OTADATA + 24], &[0xFF; 20], "seq_label");
            // Only otadata entry 0's sector and ota_1 changed; ota_0 untouched.
            for (i, (a, b)) in original.iter().zip(&mem).enumerate() {
                let in_otadata0 = (OTADATA..OTADATA + 0x1000).contains(&i);
                let in_ota1 = (SLOTS[1]..SLOTS[1] + SLOT_SIZE).contains(&i);
                assert!(a == b || in_otadata0 || in_ota1, "byte 0x{i:x} changed");
            }
            // The journal sector is clean again.
            let journal = SLOTS[1] + SLOT_SIZE - SECTOR;
            assert!(mem[journal..journal + SECTOR].iter().all(|&b| b == 0xFF));
            // Nothing written past the image (padded to WRITE_SIZE) in the slot.
            let end = SLOTS[1] + img.bytes.len().div_ceil(4) * 4;
            assert!(mem[end..journal].iter().all(|&b| b == 0xFF));
        }
    }
}

#[test]
fn finish_reports_what_it_activated() {
    let img = image(2, 20_000);
    let mut mem = chip();
    let mut f = flash(&mut mem);
    let mut sink = EspIdfSink::new(&mut f, cfg());
    assert!(sink.last_activated().is_none());
    run(&mut sink, &img, 3000).unwrap();
    let act = sink.last_activated().unwrap();
    assert_eq!(act.slot, 1);
    assert_eq!(act.info.len as usize, img.bytes.len());
    assert_eq!(act.info.header.chip_id, 9);
    assert_eq!(
        act.info.sha256.unwrap()[..],
        img.bytes[img.bytes.len() - 32..]
    );
    assert_eq!(
        act.info.app_desc.unwrap().project_name_str(),
        Some("test-app")
    );
    let t = sink.target().unwrap();
    assert_eq!(
        (t.slot, t.offset, t.size, t.capacity, t.journal),
        (1, 0x110000, 0x100000, CAPACITY, 0x20F000)
    );
    // The activated image can still be read back; a second finish is refused.
    let mut back = vec![0u8; img.bytes.len()];
    sink.read(0, &mut back).unwrap();
    assert_eq!(back, img.bytes);
    assert_eq!(
        sink.finish(&ExpectedImage::sha256(img.sha)),
        Err(SinkError::NotStarted)
    );
    assert_eq!(sink.written(), None);
    // Until the reset ota_0 runs; otadata selects ota_1 now.
    assert_eq!(sink.running_slot().unwrap(), AppSlot::Ota(0));
    assert_eq!(sink.boot_choice().unwrap().ota_slot(), Some(1));
    // This sink remembers ota_0 runs: another update goes to ota_1 again, not ota_0.
    assert_eq!(sink.begin(&img.desc()).unwrap().offset, 0);
    assert_eq!(sink.target().unwrap().slot, 1);
    // A failed finish clears what the earlier one reported.
    sink.write(0, &img.bytes).unwrap();
    assert!(matches!(
        sink.finish(&ExpectedImage::sha256([0; 32])),
        Err(SinkError::HashMismatch { .. })
    ));
    assert!(sink.last_activated().is_none());
    // ...and the state of the running app is not touched while otadata selects another.
    assert!(matches!(
        sink.mark_valid(),
        Err(SinkError::RunningNotSelected {
            running: AppSlot::Ota(0),
            selected: AppSlot::Ota(1)
        })
    ));
}

#[test]
fn seq_crc_vectors_after_successive_updates() {
    let mut mem = chip();
    let expected = [
        (0usize, 1u32, 0x4743_989Au32, 0usize),
        (1, 2, 0x55F6_3774, 1),
        (0, 3, 0xED4A_5011, 0),
    ];
    for (n, &(entry_index, seq, crc, slot)) in expected.iter().enumerate() {
        let img = image(10 + n as u32, 30_000 + n * 5_000);
        // First boot: the app was flashed into ota_1 (e.g. `--target-app-partition`).
        let config = if n == 0 {
            cfg().with_running_slot(Some(1))
        } else {
            cfg()
        };
        assert_eq!(update(&mut mem, config, &img, 4096).unwrap() as usize, slot);
        let at = OTADATA + entry_index * 0x1000;
        assert_eq!(word(&mem, at), seq, "update {}", n + 1);
        assert_eq!(word(&mem, at + 28), crc, "update {}", n + 1);
        let (booted_slot, sha, _) = booted(&mem);
        assert_eq!((booted_slot, sha), (slot, img.sha));
    }
}

#[test]
fn factory_layout_counts_from_ota_0() {
    let mut mem = chip_with_factory();
    for (n, want_slot) in [0usize, 1, 0].into_iter().enumerate() {
        let img = image(20 + n as u32, 10_000);
        let mut f = flash(&mut mem);
        let mut sink = EspIdfSink::new(&mut f, cfg());
        let running = sink.running_slot().unwrap();
        assert_eq!(
            running,
            if n == 0 {
                AppSlot::Factory
            } else {
                AppSlot::Ota(1 - want_slot as u8)
            }
        );
        run(&mut sink, &img, 4096).unwrap();
        drop(sink);
        assert_eq!(raw_entry(&mem, n % 2).seq, n as u32 + 1);
        let (slot, _) = select(&mem, 2);
        assert_eq!(slot, Some(want_slot as u32));
        let outcome = cellular_ota_sim::boot(&mem, S3);
        assert_eq!(outcome.slot(), Some(want_slot as u8), "{}", outcome.reason);
        assert_eq!(outcome.image.unwrap().sha256, img.sha);
    }
    // The factory app is never written.
    assert!(mem[0x10000..0x110000].iter().all(|&b| b == 0xFF));
}

#[test]
fn resume_after_drop() {
    let img = image(3, 40_000);
    for rollback in [false, true] {
        let mut mem = chip();
        let mut f = flash(&mut mem);
        let written = 3 * SECTOR + 1234;
        {
            let mut sink = EspIdfSink::new(&mut f, cfg().with_rollback(rollback));
            assert_eq!(sink.begin(&img.desc()).unwrap().offset, 0);
            for (i, c) in img.bytes[..written].chunks(333).enumerate() {
                sink.write((i * 333) as u32, c).unwrap();
            }
            assert_eq!(sink.written(), Some(written as u32));
        }
        // A new sink on the same flash ("after the reboot").
        let mut sink = EspIdfSink::new(&mut f, cfg().with_rollback(rollback));
        let resume = sink.begin(&img.desc()).unwrap();
        assert_eq!(
            resume,
            Resume {
                offset: 3 * SECTOR as u32,
                capacity: CAPACITY
            }
        );
        // The caller re-hashes the durable prefix from the sink.
        let mut prefix = vec![0u8; resume.offset as usize];
        sink.read(0, &mut prefix).unwrap();
        assert_eq!(prefix, img.bytes[..resume.offset as usize]);
        for (i, c) in img.bytes[resume.offset as usize..].chunks(5000).enumerate() {
            sink.write(resume.offset + (i * 5000) as u32, c).unwrap();
        }
        sink.finish(&ExpectedImage::sha256(img.sha)).unwrap();
        drop(sink);
        let (slot, sha, state) = booted(&mem);
        assert_eq!((slot, sha), (1, img.sha));
        assert_eq!(state, Some(if rollback { 0 } else { u32::MAX }));
    }
}

#[test]
fn a_different_image_starts_clean() {
    let a = image(4, 40_000);
    let b = image(5, 40_000);
    let mut mem = chip();
    let mut f = flash(&mut mem);
    let mut sink = EspIdfSink::new(&mut f, cfg());
    sink.begin(&a.desc()).unwrap();
    sink.write(0, &a.bytes[..20_000]).unwrap();
    drop(sink);
    let mut sink = EspIdfSink::new(&mut f, cfg());
    assert_eq!(sink.begin(&b.desc()).unwrap().offset, 0);
    drop(sink);
    // a's progress is gone too: b's begin cleared the journal.
    let mut sink = EspIdfSink::new(&mut f, cfg());
    assert_eq!(sink.begin(&a.desc()).unwrap().offset, 0);
    // Same id, other size: a different image.
    sink.write(0, &a.bytes[..20_000]).unwrap();
    let other_size = ImageDescriptor {
        size: a.bytes.len() as u32 - 4,
        ..a.desc()
    };
    let mut sink = EspIdfSink::new(&mut f, cfg());
    assert_eq!(sink.begin(&other_size).unwrap().offset, 0);
    // abort forgets progress.
    let mut sink = EspIdfSink::new(&mut f, cfg());
    sink.begin(&a.desc()).unwrap();
    sink.write(0, &a.bytes[..20_000]).unwrap();
    drop(sink);
    let mut sink = EspIdfSink::new(&mut f, cfg());
    assert_eq!(sink.begin(&a.desc()).unwrap().offset, 4 * SECTOR as u32);
    sink.abort().unwrap();
    assert_eq!(sink.write(0, &[0]), Err(SinkError::NotStarted));
    let mut sink = EspIdfSink::new(&mut f, cfg());
    assert_eq!(sink.begin(&a.desc()).unwrap().offset, 0);
    // abort without begin (a fresh sink after a reboot) clears the target's journal too.
    sink.write(0, &a.bytes[..20_000]).unwrap();
    drop(sink);
    EspIdfSink::new(&mut f, cfg()).abort().unwrap();
    let mut sink = EspIdfSink::new(&mut f, cfg());
    assert_eq!(sink.begin(&a.desc()).unwrap().offset, 0);
}

#[test]
fn image_that_fills_whole_sectors_resumes_at_its_end() {
    // Grow the payload until the image is an exact multiple of the sector size.
    let img = (8_000..12_000)
        .step_by(4)
        .map(|p| image(6, p))
        .find(|i| i.bytes.len() % SECTOR == 0)
        .unwrap();
    let mut mem = chip();
    let mut f = flash(&mut mem);
    let mut sink = EspIdfSink::new(&mut f, cfg());
    sink.begin(&img.desc()).unwrap();
    sink.write(0, &img.bytes).unwrap();
    drop(sink);
    let mut sink = EspIdfSink::new(&mut f, cfg());
    let resume = sink.begin(&img.desc()).unwrap();
    assert_eq!(resume.offset as usize, img.bytes.len());
    sink.finish(&ExpectedImage::sha256(img.sha)).unwrap();
    drop(sink);
    assert_eq!(booted(&mem).1, img.sha);
}

/// Cut the power at every erase/write of an update, then check what the bootloader would
/// boot and that a fresh sink completes the update. Returns the number of cut points.
fn power_cut_sweep(base: &[u8], old: &Img, new: &Img, config: SinkConfig, chunk: usize) -> usize {
    power_cut_sweep_where(base, old, new, config, chunk, |_| true)
}

/// [`power_cut_sweep`] over the operations `at` selects.
fn power_cut_sweep_where(
    base: &[u8],
    old: &Img,
    new: &Img,
    config: SinkConfig,
    chunk: usize,
    at: impl Fn(u32) -> bool,
) -> usize {
    power_cut_sweep_prepared(base, old, new, config, chunk, None, at, |_, _| {})
}

/// [`power_cut_sweep_where`] with the update (and each resumed one) run by
/// [`run_with`]`(.., prepare)`; `resumed(k, offset)` sees where the update resumed after
/// the cut at operation `k` (not called for a cut after activation).
#[allow(clippy::too_many_arguments)]
fn power_cut_sweep_prepared(
    base: &[u8],
    old: &Img,
    new: &Img,
    config: SinkConfig,
    chunk: usize,
    prepare: Option<usize>,
    at: impl Fn(u32) -> bool,
    mut resumed: impl FnMut(u32, u32),
) -> usize {
    let run = |sink: &mut EspIdfSink<&mut MemFlash<'_>>, img: &Img, chunk| {
        run_with(sink, img, chunk, prepare)
    };
    // A clean run counts the operations.
    let total = {
        let mut mem = base.to_vec();
        let mut f = flash(&mut mem);
        run(&mut EspIdfSink::new(&mut f, config), new, chunk).unwrap();
        f.stats().writes + f.stats().erases
    };
    // Armed for one more than there are: never fires.
    {
        let mut mem = base.to_vec();
        let mut f = flash(&mut mem);
        f.fail_after(total);
        run(&mut EspIdfSink::new(&mut f, config), new, chunk).unwrap();
        assert!(f.is_armed());
    }
    let mut cuts = 0;
    let mut resumed_mid_way = 0;
    let mut after_activation = 0;
    for k in (0..total).filter(|&k| at(k)) {
        let mut mem = base.to_vec();
        let mut f = flash(&mut mem);
        f.fail_after(k);
        let result = run(&mut EspIdfSink::new(&mut f, config), new, chunk);
        assert!(!f.is_armed(), "cut {k} did not fire");
        cuts += 1;
        match result {
            Err(SinkError::Flash {
                error: MemFlashError::PowerCut,
                ..
            }) => {}
            // The only cut finish shrugs off: clearing the journal after activation.
            Ok(_) => {
                drop(f);
                assert_eq!(booted(&mem).1, new.sha, "cut {k}");
                after_activation += 1;
                continue;
            }
            Err(e) => panic!("cut {k}: {e:?}"),
        }
        drop(f);
        // "Reboot": the bootloader finds a valid image, the old one unless otadata was
        // written completely.
        let (slot, sha, _) = booted(&mem);
        assert!(sha == old.sha || sha == new.sha, "cut {k}: unknown image");
        if sha == old.sha {
            assert_eq!(slot, 0, "cut {k}");
        }
        // A new sink resumes and completes.
        let mut f = flash(&mut mem);
        let mut sink = EspIdfSink::new(&mut f, config);
        let resume = run(&mut sink, new, chunk).unwrap_or_else(|e| panic!("cut {k}: {e:?}"));
        assert_eq!(resume.offset as usize % SECTOR, 0);
        resumed(k, resume.offset);
        if resume.offset > 0 {
            resumed_mid_way += 1;
        }
        drop(sink);
        drop(f);
        let (_, sha, _) = booted(&mem);
        assert_eq!(sha, new.sha, "cut {k}");
    }
    assert!(resumed_mid_way > 0);
    // The final journal clear is a tombstone write and an erase.
    if at(total - 1) && at(total - 2) {
        assert_eq!(after_activation, 2);
    }
    cuts
}

#[test]
fn power_cut_at_every_flash_operation() {
    let old = image(7, 12_000);
    let new = image(8, 14_000);
    let base = chip_running(&old);
    let cuts = power_cut_sweep(&base, &old, &new, cfg(), 1000);
    let cuts_rb = power_cut_sweep(&base, &old, &new, cfg().with_rollback(true), 777);
    // 4 sectors: 4 erases + writes + 3 records, activation (erase + write), journal clear.
    assert!(cuts >= 15 && cuts_rb >= 15, "{cuts} {cuts_rb}");
}

#[test]
fn power_cut_sweep_from_fresh_otadata() {
    // espflash-style first flash: app in ota_0, otadata erased.
    let old = image(9, 9_000);
    let new = image(11, 9_000);
    let mut base = chip();
    base[SLOTS[0]..SLOTS[0] + old.bytes.len()].copy_from_slice(&old.bytes);
    assert_eq!(booted(&base).1, old.sha);
    power_cut_sweep(&base, &old, &new, cfg(), 4096);
}

#[test]
fn power_cut_sweep_over_a_journal_wrap() {
    // 90 sectors: more records than one journal sector holds (84), so the journal wraps.
    let old = image(12, 9_000);
    let new = image(13, 90 * SECTOR - 200);
    let base = chip_running(&old);
    // Three operations per sector (erase, write, journal record); the wrap comes with the
    // 85th record, near operation 255. Cut at every operation around it, and at every
    // 16th elsewhere (each cut costs two 370 KB updates).
    let cuts = power_cut_sweep_where(&base, &old, &new, cfg(), 4 * SECTOR, |k| {
        (240..270).contains(&k) || k % 16 == 0 || k > 266
    });
    assert!(cuts > 40, "{cuts}");
}

/// The flash operations (erases and writes, counted as `MemFlash::fail_after` counts them)
/// of a clean prepared update from `base`, with the mark each one came after.
fn operations(base: &[u8], img: &Img, chunk: usize, range: usize) -> Vec<(&'static str, Ev)> {
    let mut mem = base.to_vec();
    let (f, log) = logged(&mut mem);
    let mut sink = EspIdfSink::new(f, cfg());
    run_marked(&mut sink, &log, img, chunk, range).unwrap();
    drop(sink);
    let mut mark = "";
    let mut ops = Vec::new();
    for ev in log.borrow().iter() {
        match ev {
            Ev::Mark(m) => mark = m,
            ev => ops.push((mark, *ev)),
        }
    }
    ops
}

#[test]
fn power_cut_sweep_over_an_early_journal_wrap() {
    // 90 sectors in 64 KiB ranges: after five ranges (80 records) the journal has room for
    // 4, so the sixth prepare wraps it early (tombstone, erase, the record for 80 sectors
    // again at slot 0), and the writes never erase.
    let old = image(14, 9_000);
    let new = image(15, 90 * SECTOR - 200);
    let base = chip_running(&old);
    let journal = (
        SLOTS[1] as u32 + CAPACITY,
        SLOTS[1] as u32 + SLOT_SIZE as u32,
    );
    let ops = operations(&base, &new, 4 * SECTOR, 0x1_0000);
    assert!(
        ops.iter()
            .all(|(m, ev)| *m != "write" || !matches!(ev, Ev::Erase(..)))
    );
    let early: Vec<u32> = (0..ops.len() as u32)
        .filter(|&k| ops[k as usize] == ("prepare", Ev::Erase(journal.0, journal.1)))
        .collect();
    assert_eq!(early.len(), 1, "{early:?}");
    let wrap = early[0];
    // The early wrap: tombstone write, erase, the record written again.
    assert!(matches!(ops[wrap as usize - 1], ("prepare", Ev::Write(a, _)) if a >= journal.0));
    assert!(matches!(ops[wrap as usize + 1], ("prepare", Ev::Write(a, 48)) if a == journal.0));
    let durable = 80 * SECTOR as u32;
    let mut seen = Vec::new();
    let cuts = power_cut_sweep_prepared(
        &base,
        &old,
        &new,
        cfg(),
        4 * SECTOR,
        Some(0x1_0000),
        // Every operation around the early wrap, every 8th elsewhere, and the finish.
        |k| (wrap - 4..=wrap + 4).contains(&k) || k % 8 == 0 || k as usize + 6 > ops.len(),
        |k, offset| {
            if (wrap - 4..=wrap + 4).contains(&k) {
                seen.push((k, offset));
            }
        },
    );
    // Before the wrap's erase the resume point is intact; a cut in its erase or before the
    // record lands may lose it (start clean, safe); once it lands, nothing is lost.
    for &(k, offset) in &seen {
        if k < wrap - 2 {
            // Still writing the fifth range.
            assert!(offset < durable, "cut {k}");
        } else if k < wrap {
            // The fifth range's last record (or the tombstone) was cut: intact.
            assert!(offset == durable || k == wrap - 2, "cut {k}");
        } else if k <= wrap + 1 {
            assert!(offset == 0 || offset == durable, "cut {k}: {offset}");
        } else {
            assert!(offset >= durable, "cut {k}: {offset}");
        }
    }
    assert_eq!(seen.len(), 9);
    println!("early wrap at operation {wrap}: resumes {seen:?}; {cuts} cuts");
    assert!(cuts > 30, "{cuts}");
}

#[test]
fn power_cut_sweep_over_a_whole_image_prepare() {
    // 90 sectors in one prepare: more records than the journal holds, so every 2nd sector
    // is recorded; a cut loses at most two sectors plus the one in progress.
    let old = image(16, 9_000);
    let new = image(17, 90 * SECTOR - 200);
    let base = chip_running(&old);
    let ops = operations(&base, &new, 4 * SECTOR, usize::MAX >> 1);
    assert!(
        ops.iter()
            .all(|(m, ev)| *m != "write" || !matches!(ev, Ev::Erase(..)))
    );
    // Operation k's position in the image when it is a write of the slot (0 before any).
    let slot = SLOTS[1] as u32;
    let mut written = vec![0u32; ops.len()];
    let mut pos = 0;
    for (k, (_, ev)) in ops.iter().enumerate() {
        written[k] = pos;
        if let Ev::Write(a, n) = ev {
            if (slot..slot + CAPACITY).contains(a) {
                pos = a - slot + *n as u32;
            }
        }
    }
    let mut lost = Vec::new();
    let cuts = power_cut_sweep_prepared(
        &base,
        &old,
        &new,
        cfg(),
        4 * SECTOR,
        Some(usize::MAX >> 1),
        |k| k % 5 == 0 || k as usize + 6 > ops.len(),
        |k, offset| {
            // Bytes fully written before the cut, less at most 2 sectors of stride.
            let done = written[k as usize] / SECTOR as u32 * SECTOR as u32;
            assert!(offset <= done, "cut {k}: {offset} > {done}");
            assert!(
                offset + 2 * SECTOR as u32 >= done,
                "cut {k}: resumed at {offset}, {done} written"
            );
            lost.push((done - offset) / SECTOR as u32);
        },
    );
    // Some cuts lose two sectors (the stride), none more.
    assert_eq!(lost.iter().max(), Some(&2));
    assert!(cuts > 30, "{cuts}");
}

fn assert_rejected(
    img_bytes: &[u8],
    desc: ImageDescriptor,
    expected_sha: [u8; 32],
    check: impl Fn(&Err),
) {
    let old = image(14, 12_000);
    let mut mem = chip_running(&old);
    let before = mem.clone();
    let mut f = flash(&mut mem);
    let mut sink = EspIdfSink::new(&mut f, cfg());
    let err = (|| {
        sink.begin(&desc)?;
        for (i, c) in img_bytes.chunks(4096).enumerate() {
            sink.write((i * 4096) as u32, c)?;
        }
        sink.finish(&ExpectedImage::sha256(expected_sha))
    })()
    .unwrap_err();
    check(&err);
    assert!(sink.last_activated().is_none());
    // The session is closed and the journal forgotten: the next begin starts at 0.
    assert_eq!(
        sink.finish(&ExpectedImage::sha256(expected_sha)),
        Err(SinkError::NotStarted)
    );
    if desc.size <= CAPACITY {
        assert_eq!(sink.begin(&desc).unwrap().offset, 0);
    }
    drop(sink);
    drop(f);
    assert_eq!(
        &mem[OTADATA..OTADATA + 0x2000],
        &before[OTADATA..OTADATA + 0x2000],
        "otadata changed"
    );
    assert_eq!(
        &mem[SLOTS[0]..SLOTS[0] + SLOT_SIZE],
        &before[SLOTS[0]..SLOTS[0] + SLOT_SIZE],
        "running slot changed"
    );
    assert_eq!(booted(&mem), booted(&before));
}

#[test]
fn bad_images_are_never_activated() {
    let img = image(15, 30_000);
    // A corrupt byte on the way: the SHA-256 read back from flash differs.
    let mut corrupt = img.bytes.clone();
    corrupt[20_000] ^= 0x01;
    assert_rejected(&corrupt, img.desc(), img.sha, |e| {
        assert!(matches!(e, SinkError::HashMismatch { .. }), "{e:?}")
    });
    // The right bytes, the wrong expected digest.
    let mut wrong = img.sha;
    wrong[31] ^= 0x80;
    assert_rejected(&img.bytes, img.desc(), wrong, |e| match e {
        SinkError::HashMismatch { computed } => assert_eq!(computed, &img.sha),
        other => panic!("{other:?}"),
    });
    // A truncated image whose digest matches what was sent: the validator catches it.
    let cut = &img.bytes[..img.bytes.len() - 100];
    let cut_sha: [u8; 32] = Sha256::digest(cut).into();
    let cut_desc = ImageDescriptor {
        id: cut_sha,
        size: cut.len() as u32,
    };
    assert_rejected(cut, cut_desc, cut_sha, |e| {
        assert!(
            matches!(e, SinkError::Image(ImageError::Truncated { .. })),
            "{e:?}"
        )
    });
    // An image for the ESP32-C3.
    let c3 = image_for(16, 30_000, 5);
    assert_rejected(&c3.bytes, c3.desc(), c3.sha, |e| {
        assert_eq!(
            e,
            &SinkError::Image(ImageError::WrongChip {
                expected: 9,
                found: 5
            })
        )
    });
    // A valid image with trailing bytes after it.
    let mut longer = img.bytes.clone();
    longer.extend_from_slice(&[0u8; 16]);
    let longer_sha: [u8; 32] = Sha256::digest(&longer).into();
    let longer_desc = ImageDescriptor {
        id: longer_sha,
        size: longer.len() as u32,
    };
    assert_rejected(&longer, longer_desc, longer_sha, |e| {
        assert!(
            matches!(e, SinkError::Image(ImageError::TrailingData { .. })),
            "{e:?}"
        )
    });
    // Larger than the slot capacity: refused by begin, before anything is written.
    let big = ImageDescriptor {
        id: [1; 32],
        size: CAPACITY + 1,
    };
    assert_rejected(&[], big, [0; 32], |e| {
        assert_eq!(
            e,
            &SinkError::ImageTooLarge {
                size: CAPACITY + 1,
                capacity: CAPACITY
            }
        )
    });
}

#[test]
fn oversized_image_touches_nothing() {
    let mut mem = chip();
    let before = mem.clone();
    let mut f = flash(&mut mem);
    let mut sink = EspIdfSink::new(&mut f, cfg());
    let big = ImageDescriptor {
        id: [1; 32],
        size: u32::MAX,
    };
    assert!(matches!(
        sink.begin(&big),
        Err(SinkError::ImageTooLarge { .. })
    ));
    let exact = ImageDescriptor {
        id: [1; 32],
        size: CAPACITY,
    };
    assert_eq!(sink.begin(&exact).unwrap().capacity, CAPACITY);
    assert_eq!(f.stats().writes + f.stats().erases, 0);
    drop(f);
    assert!(mem == before);
}

#[test]
fn write_contract_errors() {
    let img = image(17, 10_000);
    let mut mem = chip();
    let mut f = flash(&mut mem);
    let mut sink = EspIdfSink::new(&mut f, cfg());
    assert_eq!(sink.write(0, &[1]), Err(SinkError::NotStarted));
    assert_eq!(
        sink.finish(&ExpectedImage::sha256(img.sha)),
        Err(SinkError::NotStarted)
    );
    let mut b = [0u8; 4];
    assert_eq!(sink.read(0, &mut b), Err(SinkError::NotStarted));
    sink.begin(&img.desc()).unwrap();
    sink.write(0, &img.bytes[..100]).unwrap();
    assert_eq!(
        sink.write(99, &img.bytes[99..200]),
        Err(SinkError::OutOfOrder {
            expected: 100,
            got: 99
        })
    );
    assert_eq!(
        sink.write(101, &img.bytes[101..200]),
        Err(SinkError::OutOfOrder {
            expected: 100,
            got: 101
        })
    );
    let len = img.bytes.len() as u32;
    let mut too_long = img.bytes[100..].to_vec();
    too_long.push(0);
    assert_eq!(
        sink.write(100, &too_long),
        Err(SinkError::PastImageEnd {
            size: len,
            end: u64::from(len) + 1
        })
    );
    assert_eq!(
        sink.finish(&ExpectedImage::sha256(img.sha)),
        Err(SinkError::Incomplete {
            written: 100,
            size: len
        })
    );
    // The errors changed nothing: the update continues.
    let mut back = [0u8; 100];
    sink.read(0, &mut back).unwrap();
    assert_eq!(back[..], img.bytes[..100]);
    assert!(matches!(
        sink.read(1, &mut back),
        Err(SinkError::ReadOutOfRange { available: 100, .. })
    ));
    sink.write(100, &[]).unwrap();
    sink.write(100, &img.bytes[100..]).unwrap();
    sink.finish(&ExpectedImage::sha256(img.sha)).unwrap();
}

#[test]
fn read_back_spans_flash_and_buffer() {
    let img = image(18, 10_000);
    let mut mem = chip();
    let mut f: MemFlash<'_, 4096, 16, 16> = MemFlash::new(&mut mem);
    let mut sink = EspIdfSink::new(&mut f, cfg());
    sink.begin(&img.desc()).unwrap();
    // 4100 bytes direct, then 50 buffered bytes (not on flash yet).
    sink.write(0, &img.bytes[..4100]).unwrap();
    sink.write(4100, &img.bytes[4100..4150]).unwrap();
    for (offset, len) in [(0, 4150), (1, 7), (4090, 60), (4113, 37), (4149, 1), (3, 0)] {
        let mut out = vec![0u8; len];
        sink.read(offset as u32, &mut out).unwrap();
        assert_eq!(out, img.bytes[offset..offset + len], "{offset}+{len}");
    }
}

#[test]
fn other_flash_geometries() {
    let img = image(19, 20_000);
    // (erase, write, read) granularities.
    fn go<const E: usize, const W: usize, const R: usize>(img: &Img) {
        let mut mem = chip();
        let mut f: MemFlash<'_, E, W, R> = MemFlash::new(&mut mem);
        let mut sink = EspIdfSink::new(&mut f, cfg());
        for chunk in [1, 13, 5000] {
            run(&mut sink, img, chunk).unwrap();
        }
        drop(sink);
        assert_eq!(booted(&mem).1, img.sha, "E={E} W={W} R={R}");
        // Resume under this geometry.
        let mut mem = chip();
        let mut f: MemFlash<'_, E, W, R> = MemFlash::new(&mut mem);
        let mut sink = EspIdfSink::new(&mut f, cfg());
        sink.begin(&img.desc()).unwrap();
        sink.write(0, &img.bytes[..9_999]).unwrap();
        drop(sink);
        let mut sink = EspIdfSink::new(&mut f, cfg());
        let r = run(&mut sink, img, 777).unwrap();
        assert_eq!(r.offset, 8192);
        drop(sink);
        assert_eq!(booted(&mem).1, img.sha);
    }
    go::<4096, 1, 1>(&img);
    go::<4096, 4, 4>(&img);
    go::<4096, 16, 16>(&img);
    go::<4096, 32, 4>(&img);
    go::<4096, 64, 64>(&img);
    // Smaller erase blocks: the sink still works in 4 KiB sectors.
    go::<256, 4, 1>(&img);
    go::<1024, 16, 4>(&img);
    // A write granularity the buffer cannot hold.
    let mut mem = chip();
    let mut f: MemFlash<'_, 4096, 128, 1> = MemFlash::new(&mut mem);
    let mut sink = EspIdfSink::new(&mut f, cfg());
    assert_eq!(
        sink.begin(&img.desc()),
        Err(SinkError::UnsupportedGeometry {
            read: 1,
            write: 128,
            erase: 4096
        })
    );
}

#[test]
fn running_slot_is_never_the_target() {
    let img = image(20, 10_000);
    // (how otadata looks, configured running slot, expected running, expected target)
    type Setup = fn(&mut Vec<u8>);
    let cases: [(Setup, Option<u8>, AppSlot, u8); 7] = [
        (|_| {}, None, AppSlot::Ota(0), 1),
        (|_| {}, Some(1), AppSlot::Ota(1), 0),
        (|m| put_entry(m, 0, 1, 2), None, AppSlot::Ota(0), 1),
        // Newer entry ABORTED (rollback happened): the older one runs.
        (
            |m| {
                put_entry(m, 0, 1, 2);
                put_entry(m, 1, 2, 4);
            },
            None,
            AppSlot::Ota(0),
            1,
        ),
        // Newer entry INVALID, selecting ota_0: ota_1 runs, so ota_0 is the target.
        (
            |m| {
                put_entry(m, 0, 3, 3);
                put_entry(m, 1, 2, 2);
            },
            None,
            AppSlot::Ota(1),
            0,
        ),
        // Newer entry with a bad CRC is ignored.
        (
            |m| {
                put_entry(m, 0, 1, 2);
                put_entry(m, 1, 2, 2);
                m[OTADATA + 0x1000 + 28] ^= 1;
            },
            None,
            AppSlot::Ota(0),
            1,
        ),
        // PENDING_VERIFY counts as running (the bootloader just booted it).
        (|m| put_entry(m, 1, 2, 1), None, AppSlot::Ota(1), 0),
    ];
    for (i, (setup, configured, running, target)) in cases.into_iter().enumerate() {
        let mut mem = chip();
        // Put a valid image in both slots so "the running slot" is something to protect.
        let a = image(21, 8_000);
        for s in SLOTS {
            mem[s..s + a.bytes.len()].copy_from_slice(&a.bytes);
        }
        setup(&mut mem);
        let before = mem.clone();
        let mut f = flash(&mut mem);
        let mut sink = EspIdfSink::new(&mut f, cfg().with_running_slot(configured));
        assert_eq!(sink.running_slot().unwrap(), running, "case {i}");
        run(&mut sink, &img, 4096).unwrap();
        assert_eq!(sink.target().unwrap().slot, target, "case {i}");
        drop(sink);
        let AppSlot::Ota(r) = running else {
            unreachable!()
        };
        let r = SLOTS[r as usize];
        assert!(
            mem[r..r + SLOT_SIZE] == before[r..r + SLOT_SIZE],
            "case {i}"
        );
        // The new entry is written fresh: no INVALID/ABORTED state carried over (§3.7).
        let (slot, sha, state) = booted(&mem);
        assert_eq!(
            (slot, sha, state),
            (target as usize, img.sha, Some(u32::MAX)),
            "case {i}"
        );
    }
    // Three slots: the next one after the running one, wrapping.
    for running in 0..3u8 {
        let mut mem = chip_with_three_slots();
        let mut f = flash(&mut mem);
        let mut sink = EspIdfSink::new(&mut f, cfg().with_running_slot(Some(running)));
        let r = sink.begin(&img.desc()).unwrap();
        assert_eq!(r.capacity, 0x80000 - 0x1000);
        assert_eq!(sink.target().unwrap().slot, (running + 1) % 3);
    }
    // A running slot the table does not have.
    let mut mem = chip();
    let mut f = flash(&mut mem);
    let mut sink = EspIdfSink::new(&mut f, cfg().with_running_slot(Some(2)));
    assert_eq!(
        sink.begin(&img.desc()),
        Err(SinkError::BadRunningSlot { slot: 2, count: 2 })
    );
}

#[test]
fn layouts_without_a_free_slot_are_refused() {
    let img = image(22, 10_000);
    let begin = |mut mem: Vec<u8>, config: SinkConfig| {
        let mut f = flash(&mut mem);
        EspIdfSink::new(&mut f, config).begin(&img.desc())
    };
    let otadata = entry(
        PartitionType::Data(DataSubType::Ota),
        0xD000,
        0x2000,
        "otadata",
    );
    let factory = entry(
        PartitionType::App(AppSubType::Factory),
        0x10000,
        0x100000,
        "factory",
    );
    let ota0 = entry(app(0), 0x110000, 0x100000, "ota_0");
    // One OTA slot, no factory.
    assert_eq!(
        begin(chip_with(&[otadata, ota0]), cfg()),
        Err(SinkError::NoOtaSlots)
    );
    // Factory + one OTA slot: fine while factory runs, refused once ota_0 runs.
    assert!(begin(chip_with(&[otadata, factory, ota0]), cfg()).is_ok());
    assert_eq!(
        begin(
            chip_with(&[otadata, factory, ota0]),
            cfg().with_running_slot(Some(0))
        ),
        Err(SinkError::NoOtaSlots)
    );
    // No OTA slots, no otadata, no table.
    assert_eq!(
        begin(chip_with(&[otadata, factory]), cfg()),
        Err(SinkError::NoOtaSlots)
    );
    assert_eq!(
        begin(chip_with(&[factory, ota0]), cfg()),
        Err(SinkError::NoOtadata)
    );
    assert!(matches!(
        begin(vec![0xFF; FLASH_SIZE], cfg()),
        Err(SinkError::PartitionTable(_))
    ));
    // A table at another offset.
    let mut mem = vec![0xFF; FLASH_SIZE];
    partition::encode(
        &[
            otadata,
            entry(app(0), 0x20000, 0x10000, "a"),
            entry(app(1), 0x30000, 0x10000, "b"),
        ],
        &mut mem[0xF000..0x10000],
        true,
    )
    .unwrap();
    let r = begin(mem, cfg().with_partition_table_offset(0xF000)).unwrap();
    assert_eq!(r.capacity, 0xF000);
    // Long tables: 22 partitions are read, more are refused with a clear error.
    let long = |n: u32| {
        let mut entries = vec![
            otadata,
            entry(app(0), 0x100000, 0x10000, "a"),
            entry(app(1), 0x110000, 0x10000, "b"),
        ];
        for i in 0..n - 3 {
            entries.push(entry(
                PartitionType::Data(DataSubType::Nvs),
                0x20000 + i * 0x1000,
                0x1000,
                "n",
            ));
        }
        chip_with(&entries)
    };
    assert!(begin(long(22), cfg()).is_ok());
    assert_eq!(
        begin(long(23), cfg()),
        Err(SinkError::PartitionTableTooLong { max_partitions: 22 })
    );
    // A broken MD5 is reported as such.
    let mut mem = chip();
    mem[0x8000 + 40] ^= 1;
    assert_eq!(
        begin(mem, cfg()),
        Err(SinkError::PartitionTable(
            partition::PartitionTableError::Md5Mismatch
        ))
    );
    // A flash that fails to read.
    let mut mem = chip();
    let mut f: MemFlash<'_> = MemFlash::new(&mut mem[..0x8080]);
    let mut sink = EspIdfSink::new(&mut f, cfg());
    assert!(matches!(
        sink.begin(&img.desc()),
        Err(SinkError::Flash {
            op: FlashOp::ReadPartitionTable,
            ..
        })
    ));
}

/// What the full parser (`PartitionTable::parse`, then `check_fits`) says about the table
/// at 0x8000: `Ok` or its error. The sink checks the table as it reads it, without the
/// parsed table, and must agree.
fn parser_verdict(mem: &[u8]) -> Result<(), partition::PartitionTableError> {
    let table = partition::PartitionTable::parse(&mem[0x8000..0x8000 + 0xC00])?;
    table.check_fits(mem.len())
}

/// `begin` through the blocking and the async sink.
fn begin_both(mem: &[u8], config: SinkConfig, img: &Img) -> Result<Resume, Err> {
    let mut a = mem.to_vec();
    let blocking = EspIdfSink::new(&mut flash(&mut a), config).begin(&img.desc());
    let mut b = mem.to_vec();
    let mut f = flash(&mut b);
    let asynchronous = block_on(async {
        let mut sink = AsyncEspIdfSink::new(&mut f, config);
        AsyncOtaSink::begin(&mut sink, &img.desc()).await
    });
    assert_eq!(blocking, asynchronous);
    blocking
}

#[test]
fn partition_table_errors_are_the_parsers() {
    let img = image(28, 10_000);
    let nvs = entry(PartitionType::Data(DataSubType::Nvs), 0x9000, 0x4000, "nvs");
    let otadata = entry(
        PartitionType::Data(DataSubType::Ota),
        0xD000,
        0x2000,
        "otadata",
    );
    let phy = entry(PartitionType::Data(DataSubType::Phy), 0xF000, 0x1000, "phy");
    let ota0 = entry(app(0), 0x10000, 0x100000, "ota_0");
    let ota1 = entry(app(1), 0x110000, 0x100000, "ota_1");
    let base = [nvs, otadata, phy, ota0, ota1];
    let with = |f: &dyn Fn(&mut [PartitionEntry; 5])| {
        let mut t = base;
        f(&mut t);
        t
    };
    use partition::PartitionTableError as E;
    let cases: Vec<([PartitionEntry; 5], E)> = vec![
        // nvs (listed first, kept by nobody) inside ota_1: the slot must not be written.
        (
            with(&|t| t[0].offset = 0x1F0000),
            E::Overlap {
                first: 0,
                second: 4,
            },
        ),
        (
            with(&|t| t[4].offset = 0x100000),
            E::Overlap {
                first: 3,
                second: 4,
            },
        ),
        (
            with(&|t| t[2].offset = 0xE000),
            E::Overlap {
                first: 1,
                second: 2,
            },
        ),
        (
            with(&|t| t[4].offset = 0x118000),
            E::Misaligned {
                index: 4,
                offset: 0x118000,
                alignment: 0x10000,
            },
        ),
        (
            with(&|t| t[1].size = 0x1000),
            E::OtadataSize {
                index: 1,
                size: 0x1000,
            },
        ),
        (with(&|t| t[0].size = 0), E::ZeroSize { index: 0 }),
        (
            with(&|t| t[4].kind = app(0)),
            E::DuplicateOtaSlot { index: 4, slot: 0 },
        ),
        (with(&|t| t[4].kind = app(2)), E::OtaSlotGap { missing: 1 }),
        (
            with(&|t| t[4].offset = 0x3F0000),
            E::ExceedsFlash {
                index: 4,
                end: 0x4F0000,
                capacity: FLASH_SIZE,
            },
        ),
        // Past the flash and a gap: the gap (a layout rule) is reported, as by the parser.
        (
            with(&|t| {
                t[4].offset = 0x3F0000;
                t[4].kind = app(3);
            }),
            E::OtaSlotGap { missing: 1 },
        ),
        (
            with(&|t| {
                t[1].kind = PartitionType::Data(DataSubType::Ota);
                t[2] = entry(
                    PartitionType::Data(DataSubType::Ota),
                    0x20_0000,
                    0x2000,
                    "x",
                );
                t[4].offset = 0x210000;
            }),
            E::DuplicateOtadata { index: 2 },
        ),
    ];
    for (entries, want) in &cases {
        for md5 in [true, false] {
            let mut mem = vec![0xFF; FLASH_SIZE];
            partition::encode(entries, &mut mem[0x8000..0x9000], md5).unwrap();
            assert_eq!(parser_verdict(&mem), Err(*want));
            assert_eq!(
                begin_both(&mem, cfg(), &img),
                Err(SinkError::PartitionTable(*want)),
                "{want:?}"
            );
            // A broken record after the entries outranks the layout error, as in the parser.
            mem[0x8000 + 5 * 32] = 0x12;
            let Err(record_error) = parser_verdict(&mem) else {
                panic!("{want:?}")
            };
            assert!(matches!(
                record_error,
                E::BadMagic { index: 5, .. } | E::Md5Mismatch
            ));
            assert_eq!(
                begin_both(&mem, cfg(), &img),
                Err(SinkError::PartitionTable(record_error))
            );
        }
    }
    // Every byte of the table flipped: the sink says what the parser says.
    let good = chip();
    for pos in 0..7 * 32 {
        let mut mem = good.clone();
        mem[0x8000 + pos] ^= 0x04;
        let got = begin_both(&mem, cfg(), &img);
        match parser_verdict(&mem) {
            Err(e) => assert_eq!(got, Err(SinkError::PartitionTable(e)), "byte {pos}"),
            // A flipped label or flag bit, or an end-marker byte past the first four.
            Ok(()) => assert!(got.is_ok(), "byte {pos}: {got:?}"),
        }
    }
    // An entry after the MD5 record, and a second MD5 record.
    let mut mem = vec![0xFF; FLASH_SIZE];
    partition::encode(&base[..4], &mut mem[0x8000..0x9000], true).unwrap();
    mem[0x8000 + 5 * 32..0x8000 + 6 * 32].copy_from_slice(&ota1.encode());
    assert_eq!(
        begin_both(&mem, cfg(), &img),
        Err(SinkError::PartitionTable(E::EntryAfterMd5 { index: 5 }))
    );
    let mut mem = chip();
    mem.copy_within(0x8000 + 5 * 32..0x8000 + 6 * 32, 0x8000 + 6 * 32);
    assert_eq!(
        begin_both(&mem, cfg(), &img),
        Err(SinkError::PartitionTable(E::DuplicateMd5 { index: 6 }))
    );
}

#[test]
fn sixteen_slots_in_any_table_order() {
    let img = image(29, 10_000);
    // otadata, factory and ota_15 .. ota_0 (listed backwards), 64 KiB slots.
    let mut entries = vec![
        entry(
            PartitionType::Data(DataSubType::Ota),
            0xD000,
            0x2000,
            "otadata",
        ),
        entry(
            PartitionType::App(AppSubType::Factory),
            0x10000,
            0x10000,
            "factory",
        ),
    ];
    for n in (0..16u8).rev() {
        entries.push(entry(
            app(n),
            0x20000 + u32::from(n) * 0x10000,
            0x10000,
            "ota",
        ));
    }
    let mem = chip_with(&entries);
    // Factory runs (erased otadata): ota_0 is the target.
    let r = begin_both(&mem, cfg(), &img).unwrap();
    assert_eq!(r.capacity, 0xF000);
    let mut m = mem.clone();
    let mut f = flash(&mut m);
    let mut sink = EspIdfSink::new(&mut f, cfg());
    sink.begin(&img.desc()).unwrap();
    assert_eq!(sink.target().unwrap().offset, 0x20000);
    drop(sink);
    // ota_15 runs: ota_0 again; ota_7 runs: ota_8.
    let mut sink = EspIdfSink::new(&mut f, cfg().with_running_slot(Some(15)));
    sink.begin(&img.desc()).unwrap();
    assert_eq!(sink.target().unwrap().slot, 0);
    let mut sink = EspIdfSink::new(&mut f, cfg().with_running_slot(Some(7)));
    sink.begin(&img.desc()).unwrap();
    assert_eq!(
        (sink.target().unwrap().slot, sink.target().unwrap().offset),
        (8, 0xA0000)
    );
    assert_eq!(sink.running_slot().unwrap(), AppSlot::Ota(7));
}

#[test]
fn partition_table_is_read_in_64_byte_chunks_up_to_its_end() {
    // The table is read in 64-byte chunks up to the one holding the end marker (at most
    // 768 bytes): the reads of `boot_choice` minus the otadata reads.
    let reads = |mem: &mut Vec<u8>| {
        let mut f = flash(mem);
        let mut sink = EspIdfSink::new(&mut f, cfg());
        let _ = sink.boot_choice();
        drop(sink);
        f.stats().reads
    };
    let otadata = entry(
        PartitionType::Data(DataSubType::Ota),
        0xD000,
        0x2000,
        "otadata",
    );
    let table = |partitions: u32| {
        let mut entries = vec![
            otadata,
            entry(app(0), 0x100000, 0x10000, "a"),
            entry(app(1), 0x110000, 0x10000, "b"),
        ];
        for i in 0..partitions - 3 {
            entries.push(entry(
                PartitionType::Data(DataSubType::Nvs),
                0x20000 + i * 0x1000,
                0x1000,
                "n",
            ));
        }
        chip_with(&entries)
    };
    let base = reads(&mut table(3)) - 3; // 3 partitions, MD5, end: 5 records, 3 chunks.
    for partitions in 3..=22u32 {
        let records = partitions + 2;
        let chunks = (records * 32).div_ceil(64);
        assert_eq!(reads(&mut table(partitions)), base + chunks, "{partitions}");
    }
    // Longer: 12 chunks, then refused.
    let mut mem = table(23);
    assert_eq!(reads(&mut mem), 12);
    let mut f = flash(&mut mem);
    assert_eq!(
        EspIdfSink::new(&mut f, cfg()).boot_choice(),
        Err(SinkError::PartitionTableTooLong { max_partitions: 22 })
    );
}

#[test]
fn mark_valid_and_rollback_follow_the_bootloader() {
    let old = image(23, 10_000);
    let new = image(24, 12_000);
    let mut mem = chip_running(&old);
    // Update with rollback: ota_1 selected as NEW.
    update(&mut mem, cfg().with_rollback(true), &new, 4096).unwrap();
    assert_eq!(booted(&mem), (1, new.sha, Some(0)));
    // First boot of a rollback-enabled bootloader: NEW -> PENDING_VERIFY.
    put_entry(&mut mem, 1, 2, 1);
    let booted_pending = mem.clone();
    {
        let mut f = flash(&mut mem);
        let mut sink = EspIdfSink::new(&mut f, cfg().with_rollback(true));
        assert_eq!(sink.running_slot().unwrap(), AppSlot::Ota(1));
        assert_eq!(
            sink.current_state().unwrap(),
            Some(OtaImageState::PendingVerify)
        );
        sink.mark_valid().unwrap();
        assert_eq!(sink.current_state().unwrap(), Some(OtaImageState::Valid));
        // Again: already VALID, nothing to write.
        sink.mark_valid().unwrap();
    }
    assert_eq!(raw_entry(&mem, 1).state, 2);
    assert_eq!(raw_entry(&mem, 1).seq, 2);
    // The next reset keeps booting ota_1 (VALID is not touched by the bootloader).
    assert_eq!(booted(&mem), (1, new.sha, Some(2)));

    // The other path: the new app rejects itself.
    let mut mem = booted_pending;
    {
        let mut f = flash(&mut mem);
        let mut sink = EspIdfSink::new(&mut f, cfg().with_rollback(true));
        assert_eq!(sink.mark_invalid_and_rollback().unwrap(), AppSlot::Ota(0));
        assert_eq!(sink.boot_choice().unwrap().ota_slot(), Some(0));
    }
    assert_eq!(raw_entry(&mem, 1).state, 3);
    assert_eq!(booted(&mem), (0, old.sha, Some(u32::MAX)));
    // After the reset ota_0 runs again and the next update targets ota_1.
    let mut f = flash(&mut mem);
    let mut sink = EspIdfSink::new(&mut f, cfg());
    assert_eq!(sink.running_slot().unwrap(), AppSlot::Ota(0));
    assert_eq!(
        sink.current_state().unwrap(),
        Some(OtaImageState::Undefined)
    );
    sink.begin(&new.desc()).unwrap();
    assert_eq!(sink.target().unwrap().slot, 1);
}

#[test]
fn mark_valid_needs_a_selected_entry() {
    let mut mem = chip();
    let mut f = flash(&mut mem);
    let mut sink = EspIdfSink::new(&mut f, cfg());
    // Erased otadata: ota_0 runs by default, there is no entry to mark.
    assert_eq!(sink.current_state().unwrap(), None);
    assert!(matches!(sink.mark_valid(), Err(SinkError::Otadata(_))));
    // Factory running: nothing to mark either.
    let mut mem = chip_with_factory();
    let mut f = flash(&mut mem);
    let mut sink = EspIdfSink::new(&mut f, cfg());
    assert_eq!(sink.running_slot().unwrap(), AppSlot::Factory);
    assert_eq!(sink.current_state().unwrap(), None);
}

#[test]
fn async_update_and_resume() {
    let img = image(25, 40_000);
    // Full update; same bytes as the blocking sink.
    let mut mem_a = chip();
    let mut f = flash(&mut mem_a);
    let mut sink = AsyncEspIdfSink::new(&mut f, cfg().with_rollback(true));
    block_on(async {
        let r = AsyncOtaSink::begin(&mut sink, &img.desc()).await.unwrap();
        assert_eq!(r.offset, 0);
        for (i, c) in img.bytes.chunks(999).enumerate() {
            AsyncOtaSink::write(&mut sink, (i * 999) as u32, c)
                .await
                .unwrap();
        }
        AsyncOtaSink::finish(&mut sink, &ExpectedImage::sha256(img.sha))
            .await
            .unwrap();
    });
    assert_eq!(sink.last_activated().unwrap().slot, 1);
    assert_eq!(block_on(sink.boot_choice()).unwrap().ota_slot(), Some(1));
    drop(sink);
    let mut mem_b = chip();
    update(&mut mem_b, cfg().with_rollback(true), &img, 999).unwrap();
    assert!(
        mem_a == mem_b,
        "async and blocking sinks wrote different bytes"
    );
    assert_eq!(booted(&mem_a), (1, img.sha, Some(0)));

    // Resume.
    let mut mem = chip();
    let mut f = flash(&mut mem);
    block_on(async {
        let mut sink = AsyncEspIdfSink::new(&mut f, cfg());
        AsyncOtaSink::begin(&mut sink, &img.desc()).await.unwrap();
        AsyncOtaSink::write(&mut sink, 0, &img.bytes[..25_000])
            .await
            .unwrap();
    });
    block_on(async {
        let mut sink = AsyncEspIdfSink::new(&mut f, cfg());
        let r = AsyncOtaSink::begin(&mut sink, &img.desc()).await.unwrap();
        assert_eq!(r.offset, 6 * SECTOR as u32);
        let mut prefix = vec![0u8; r.offset as usize];
        AsyncOtaSink::read(&mut sink, 0, &mut prefix).await.unwrap();
        assert_eq!(prefix, img.bytes[..r.offset as usize]);
        AsyncOtaSink::write(&mut sink, r.offset, &img.bytes[r.offset as usize..])
            .await
            .unwrap();
        AsyncOtaSink::finish(&mut sink, &ExpectedImage::sha256(img.sha))
            .await
            .unwrap();
        assert_eq!(sink.running_slot().await.unwrap(), AppSlot::Ota(0));
    });
    assert_eq!(booted(&mem), (1, img.sha, Some(u32::MAX)));
}

#[test]
fn async_rejects_and_boot_side() {
    let old = image(26, 10_000);
    let new = image(27, 10_000);
    let mut mem = chip_running(&old);
    let before = mem.clone();
    let mut f = flash(&mut mem);
    block_on(async {
        let mut sink = AsyncEspIdfSink::new(&mut f, cfg().with_rollback(true));
        AsyncOtaSink::begin(&mut sink, &new.desc()).await.unwrap();
        AsyncOtaSink::write(&mut sink, 0, &new.bytes).await.unwrap();
        let mut wrong = new.sha;
        wrong[0] ^= 1;
        assert!(matches!(
            AsyncOtaSink::finish(&mut sink, &ExpectedImage::sha256(wrong)).await,
            Err(SinkError::HashMismatch { .. })
        ));
        assert_eq!(
            AsyncOtaSink::begin(&mut sink, &new.desc())
                .await
                .unwrap()
                .offset,
            0
        );
        AsyncOtaSink::abort(&mut sink).await.unwrap();
        AsyncOtaSink::abort(&mut sink).await.unwrap();
        assert_eq!(
            sink.current_state().await.unwrap(),
            Some(OtaImageState::Undefined)
        );
    });
    drop(f);
    assert!(mem[OTADATA..OTADATA + 0x2000] == before[OTADATA..OTADATA + 0x2000]);
    // Update, then confirm or reject from the async side.
    update(&mut mem, cfg().with_rollback(true), &new, 4096).unwrap();
    let selected = mem.clone();
    let mut f = flash(&mut mem);
    block_on(async {
        let mut sink = AsyncEspIdfSink::new(&mut f, cfg());
        sink.mark_valid().await.unwrap();
        assert_eq!(
            sink.current_state().await.unwrap(),
            Some(OtaImageState::Valid)
        );
    });
    let mut mem = selected;
    let mut f = flash(&mut mem);
    block_on(async {
        let mut sink = AsyncEspIdfSink::new(&mut f, cfg());
        assert_eq!(
            sink.mark_invalid_and_rollback().await.unwrap(),
            AppSlot::Ota(0)
        );
    });
    drop(f);
    assert_eq!(booted(&mem).1, old.sha);
}

#[test]
fn async_power_cut_then_blocking_resume() {
    let old = image(28, 9_000);
    let new = image(29, 30_000);
    let base = chip_running(&old);
    for k in [3u32, 9, 14] {
        let mut mem = base.clone();
        let mut f = flash(&mut mem);
        f.fail_after(k);
        let r = block_on(async {
            let mut sink = AsyncEspIdfSink::new(&mut f, cfg());
            let resume = AsyncOtaSink::begin(&mut sink, &new.desc()).await?;
            AsyncOtaSink::write(&mut sink, resume.offset, &new.bytes).await?;
            AsyncOtaSink::finish(&mut sink, &ExpectedImage::sha256(new.sha)).await
        });
        assert!(r.is_err(), "cut {k}");
        drop(f);
        assert_eq!(booted(&mem).1, old.sha);
        update(&mut mem, cfg(), &new, 4096).unwrap();
        assert_eq!(booted(&mem).1, new.sha);
    }
}

/// Flash operations and journal records for an update that fills a 1 MiB slot.
#[test]
fn flash_operations_per_mib() {
    let img = image(30, 1_020_000);
    assert!(img.bytes.len() as u32 <= CAPACITY);
    let sectors = img.bytes.len().div_ceil(SECTOR) as u32;
    for chunk in [1usize, 512, 4096, 16 * 1024] {
        let mut mem = chip();
        let mut f = flash(&mut mem);
        let mut sink = EspIdfSink::new(&mut f, cfg());
        run(&mut sink, &img, chunk).unwrap();
        drop(sink);
        let s = f.stats();
        drop(f);
        assert_eq!(booted(&mem).1, img.sha);
        let records = img.bytes.len() as u32 / SECTOR as u32;
        let wraps = (records - 1) / 84;
        // Slot sectors + journal wraps + otadata + final journal clear.
        assert_eq!(s.erases, sectors + wraps + 1 + 1, "chunk {chunk}");
        println!(
            "image {} B, chunk {chunk}: {} erases, {} writes ({} B), {} reads; {records} journal records, {wraps} journal wraps",
            img.bytes.len(),
            s.erases,
            s.writes,
            s.bytes_written,
            s.reads
        );
    }
}

/// An async flash whose every operation waits once before it happens, so a future can be
/// dropped between operations.
struct Yielding<'a>(MemFlash<'a>);

struct YieldOnce(bool);

impl std::future::Future for YieldOnce {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            std::task::Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    }
}

impl embedded_storage::nor_flash::ErrorType for Yielding<'_> {
    type Error = MemFlashError;
}

impl embedded_storage_async::nor_flash::ReadNorFlash for Yielding<'_> {
    const READ_SIZE: usize = 1;
    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), MemFlashError> {
        YieldOnce(false).await;
        embedded_storage_async::nor_flash::ReadNorFlash::read(&mut self.0, offset, bytes).await
    }
    fn capacity(&self) -> usize {
        self.0.as_slice().len()
    }
}

impl embedded_storage_async::nor_flash::NorFlash for Yielding<'_> {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = 4096;
    async fn erase(&mut self, from: u32, to: u32) -> Result<(), MemFlashError> {
        YieldOnce(false).await;
        embedded_storage_async::nor_flash::NorFlash::erase(&mut self.0, from, to).await
    }
    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), MemFlashError> {
        YieldOnce(false).await;
        embedded_storage_async::nor_flash::NorFlash::write(&mut self.0, offset, bytes).await
    }
}

#[test]
fn async_cancellation_closes_the_update() {
    let old = image(31, 9_000);
    let new = image(32, 40_000);
    let mut mem = chip_running(&old);
    let mut sink = AsyncEspIdfSink::new(Yielding(flash(&mut mem)), cfg());
    assert_eq!(
        block_on(AsyncOtaSink::begin(&mut sink, &new.desc()))
            .unwrap()
            .offset,
        0
    );
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    // Each flash operation takes one poll; a sector is erase, write, journal record.
    for (polls, resumes_at) in [(1usize, 0u32), (7, 8192), (8, 16384), (5, 20480)] {
        {
            let at = sink.written().unwrap_or(0);
            let fut = AsyncOtaSink::write(&mut sink, at, &new.bytes[at as usize..]);
            let mut fut = std::pin::pin!(fut);
            for _ in 0..polls {
                assert!(fut.as_mut().poll(&mut cx).is_pending());
            }
            // Dropped mid-way: a timeout fired.
        }
        assert_eq!(
            block_on(AsyncOtaSink::write(&mut sink, 0, &new.bytes[..4])),
            Err(SinkError::NotStarted)
        );
        let r = block_on(AsyncOtaSink::begin(&mut sink, &new.desc())).unwrap();
        assert_eq!(r.offset, resumes_at, "after {polls} polls");
        assert_eq!(sink.written(), Some(r.offset));
    }
    let r = block_on(AsyncOtaSink::begin(&mut sink, &new.desc())).unwrap();
    assert!(r.offset > 0);
    block_on(async {
        AsyncOtaSink::write(&mut sink, r.offset, &new.bytes[r.offset as usize..]).await?;
        AsyncOtaSink::finish(&mut sink, &ExpectedImage::sha256(new.sha)).await
    })
    .unwrap();
    drop(sink);
    assert_eq!(booted(&mem), (1, new.sha, Some(u32::MAX)));
}

// ----- prepare: erasing a range ahead of its bytes ----------------------------------------

/// What a [`Logged`] flash saw, in order, with the test's marks between sink calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ev {
    Mark(&'static str),
    Erase(u32, u32),
    Write(u32, usize),
}

type Log = std::rc::Rc<std::cell::RefCell<Vec<Ev>>>;

/// A blocking flash that logs every erase and write into a log the test shares.
struct Logged<'a> {
    flash: MemFlash<'a>,
    log: Log,
}

impl embedded_storage::nor_flash::ErrorType for Logged<'_> {
    type Error = MemFlashError;
}

impl embedded_storage::nor_flash::ReadNorFlash for Logged<'_> {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), MemFlashError> {
        embedded_storage::nor_flash::ReadNorFlash::read(&mut self.flash, offset, bytes)
    }
    fn capacity(&self) -> usize {
        self.flash.as_slice().len()
    }
}

impl embedded_storage::nor_flash::NorFlash for Logged<'_> {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = 4096;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), MemFlashError> {
        self.log.borrow_mut().push(Ev::Erase(from, to));
        embedded_storage::nor_flash::NorFlash::erase(&mut self.flash, from, to)
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), MemFlashError> {
        self.log.borrow_mut().push(Ev::Write(offset, bytes.len()));
        embedded_storage::nor_flash::NorFlash::write(&mut self.flash, offset, bytes)
    }
}

fn logged(mem: &mut [u8]) -> (Logged<'_>, Log) {
    let log = Log::default();
    let flash = Logged {
        flash: MemFlash::new(mem),
        log: log.clone(),
    };
    (flash, log)
}

/// The erases the log holds between the mark `from` and the next mark.
fn erases_after(log: &[Ev], from: &str) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let mut inside = false;
    for ev in log {
        match ev {
            Ev::Mark(m) => inside = *m == from,
            Ev::Erase(a, b) if inside => out.push((*a, *b)),
            _ => {}
        }
    }
    out
}

/// [`run_with`] with a mark before each sink call (`range` 0: no prepare).
fn run_marked(
    sink: &mut EspIdfSink<Logged<'_>>,
    log: &Log,
    img: &Img,
    chunk: usize,
    range: usize,
) -> Result<Resume, Err> {
    let mark = |m| log.borrow_mut().push(Ev::Mark(m));
    mark("begin");
    let resume = sink.begin(&img.desc())?;
    let mut at = resume.offset as usize;
    let mut range_end = at;
    while at < img.bytes.len() {
        if at == range_end && range > 0 {
            mark("prepare");
            sink.prepare(at as u32, range as u32)?;
            range_end = at + range;
        }
        let mut end = (at + chunk).min(img.bytes.len());
        if range > 0 {
            end = end.min(range_end);
        }
        mark("write");
        sink.write(at as u32, &img.bytes[at..end])?;
        at = end;
    }
    mark("finish");
    sink.finish(&ExpectedImage::sha256(img.sha))?;
    mark("done");
    Ok(resume)
}

#[test]
fn prepare_then_write_stores_the_same_bytes_as_write_alone() {
    let img = image(40, 150_000);
    let mut plain = chip();
    update(&mut plain, cfg(), &img, 4096).unwrap();
    for (range, chunk) in [
        (0x1_0000, 4096),
        (0x1_0000, 1000),
        (0x1_0000, 0x1_0000),
        (40_000, 777),
        (4096, 1),
        (1, 100),
        (usize::MAX >> 1, 5000),
    ] {
        let mut mem = chip();
        {
            let mut f = flash(&mut mem);
            let mut sink = EspIdfSink::new(&mut f, cfg());
            run_with(&mut sink, &img, chunk, Some(range)).unwrap();
        }
        assert!(mem == plain, "range {range} chunk {chunk}");
        assert_eq!(booted(&mem).1, img.sha);
    }
    // Resumed with prepare after a plain partial write.
    let mut mem = chip();
    let mut f = flash(&mut mem);
    let mut sink = EspIdfSink::new(&mut f, cfg());
    sink.begin(&img.desc()).unwrap();
    sink.write(0, &img.bytes[..30_000]).unwrap();
    drop(sink);
    let mut sink = EspIdfSink::new(&mut f, cfg());
    let r = run_with(&mut sink, &img, 3000, Some(0x1_0000)).unwrap();
    assert_eq!(r.offset, 7 * SECTOR as u32);
    drop(sink);
    drop(f);
    assert!(mem == plain);
}

/// The stats: with `prepare(pos, 64 KiB)` before each 64 KiB range, or one `prepare` for the
/// whole image (a stream), every erase happens in `prepare` and the writes only program:
/// ZERO erases during the writes. Slot erases come in calls of at most 64 KiB that never
/// cross a 64 KiB block; the journal, when a range's records would not fit, wraps early
/// inside `prepare` (the only other erases there). Without `prepare` the writes erase every
/// slot sector and the journal sector on each of its wraps (every 84 sectors).
#[test]
fn prepare_leaves_no_erase_to_the_writes() {
    let img = image(41, 1_020_000);
    let size = img.bytes.len();
    let sectors = size.div_ceil(SECTOR) as u32;
    let boundaries = size as u32 / SECTOR as u32;
    let slot = SLOTS[1] as u32;
    let journal = slot + CAPACITY;
    let in_journal = |a: u32| (journal..journal + SECTOR as u32).contains(&a);
    // Without prepare: the writes erase every slot sector and the journal on its wraps.
    let (plain_write_erases, plain_wraps) = {
        let mut mem = chip();
        let (f, log) = logged(&mut mem);
        let mut sink = EspIdfSink::new(f, cfg());
        run_marked(&mut sink, &log, &img, 4096, 0).unwrap();
        let in_write = erases_after(&log.borrow(), "write");
        let wraps = in_write.iter().filter(|(a, _)| in_journal(*a)).count() as u32;
        assert_eq!(wraps, (boundaries - 1) / 84);
        assert_eq!(in_write.len() as u32, sectors + wraps);
        (in_write.len(), wraps)
    };
    let whole = usize::MAX >> 1;
    for (range, chunk) in [
        (0x1_0000usize, 4096usize),
        (0x1_0000, 1000),
        (40_000, 1460),
        (whole, 4096),
        (whole, 1460),
    ] {
        let mut mem = chip();
        let (f, log) = logged(&mut mem);
        let mut sink = EspIdfSink::new(f, cfg());
        run_marked(&mut sink, &log, &img, chunk, range).unwrap();
        let stats = sink.into_inner().flash.stats();
        let log = log.borrow();
        assert_eq!(booted(&mem).1, img.sha);

        // No erase at all while the bytes are written.
        let in_write = erases_after(&log, "write");
        assert_eq!(in_write, [], "range {range} chunk {chunk}");
        let in_prepare = erases_after(&log, "prepare");
        let (early_wraps, slot_erases): (Vec<_>, Vec<_>) =
            in_prepare.iter().partition(|(a, _)| in_journal(*a));
        assert!(
            early_wraps
                .iter()
                .all(|&&e| e == (journal, journal + SECTOR as u32))
        );
        // Prepare erases every image sector once, nothing else, in calls of at most 64 KiB
        // that stay inside one 64 KiB block.
        let mut erased = vec![0u32; sectors as usize];
        for &&(from, to) in &slot_erases {
            assert!(
                from >= slot && to <= slot + sectors * SECTOR as u32,
                "{from:x}..{to:x}"
            );
            assert!(from < to && (to - from) <= 0x1_0000);
            assert_eq!(from / 0x1_0000, (to - 1) / 0x1_0000, "{from:x}..{to:x}");
            for s in (from - slot) / SECTOR as u32..(to - slot) / SECTOR as u32 {
                erased[s as usize] += 1;
            }
        }
        assert!(erased.iter().all(|&n| n == 1));
        // Journal records the writes appended (all of them program only).
        let records: Vec<usize> = {
            let mut inside = false;
            let mut n = 0;
            let mut out = Vec::new();
            for ev in log.iter() {
                match ev {
                    Ev::Mark(m) => {
                        if inside && *m != "write" {
                            out.push(n);
                            n = 0;
                        }
                        inside = *m == "write";
                    }
                    Ev::Write(a, _) if inside && in_journal(*a) => n += 1,
                    _ => {}
                }
            }
            out
        };
        let total_records: usize = records.iter().sum();
        let prepare_bytes: u32 = slot_erases.iter().map(|(a, b)| b - a).sum();
        println!(
            "image {size} B, range {range:#x}, chunk {chunk}: erases in writes {} (without \
             prepare {plain_write_erases}, of which {plain_wraps} journal wraps); in prepare \
             {} slot erase calls ({prepare_bytes} B, largest {} B) and {} early journal wraps; \
             {total_records} journal records in the writes; {} erases, {} writes in total",
            in_write.len(),
            slot_erases.len(),
            slot_erases.iter().map(|(a, b)| b - a).max().unwrap(),
            early_wraps.len(),
            stats.erases,
            stats.writes,
        );
        if range == 0x1_0000 {
            // The slot is 64 KiB aligned and each range starts on a 64 KiB boundary.
            assert_eq!(slot_erases.len() as u32, sectors.div_ceil(16));
            // A record per sector; the journal wraps early about as often as it used to.
            assert_eq!(total_records as u32, boundaries);
            assert_eq!(early_wraps.len(), 3);
        }
        if range == whole {
            // One prepare, an empty journal: every 3rd sector recorded (249 boundaries,
            // room for 84), and no journal erase at all until the final clear.
            assert_eq!(total_records, 83);
            assert_eq!(early_wraps.len(), 0);
        }
        // Slot erases and early wraps in prepare, otadata, final journal clear.
        assert_eq!(stats.erases, in_prepare.len() as u32 + 2);
    }
}

#[test]
fn prepare_contract() {
    let img = image(42, 30_000);
    let size = img.bytes.len() as u32;
    let image_end = size.div_ceil(SECTOR as u32) * SECTOR as u32;
    let slot = SLOTS[1];
    let journal = slot + CAPACITY as usize;
    let mut mem = chip();
    // Old bytes in the target slot (not the journal), to see what prepare erases.
    mem[slot..journal].fill(0x5A);
    let before = mem.clone();
    let (f, log) = logged(&mut mem);
    let mut sink = EspIdfSink::new(f, cfg());
    assert_eq!(sink.prepare(0, 4096), Err(SinkError::NotStarted));
    sink.begin(&img.desc()).unwrap();
    sink.write(0, &img.bytes[..100]).unwrap();
    let ops = log.borrow().len();
    // Not at the write position: refused, nothing erased, the session goes on.
    for got in [0, 99, 101, 4096] {
        assert_eq!(
            sink.prepare(got, 4096),
            Err(SinkError::OutOfOrder { expected: 100, got })
        );
    }
    assert_eq!(log.borrow().len(), ops);
    // Empty: nothing.
    sink.prepare(100, 0).unwrap();
    assert_eq!(log.borrow().len(), ops);
    // The sector being filled (erased by the first write) is not erased again: only the
    // next one.
    sink.prepare(100, 3996).unwrap();
    assert_eq!(log.borrow().len(), ops);
    sink.prepare(100, 3997).unwrap();
    assert_eq!(
        log.borrow()[ops..],
        [Ev::Erase(slot as u32 + 0x1000, slot as u32 + 0x2000)]
    );
    // Past the image end (even u32::MAX): clamped to the image's last sector.
    sink.prepare(100, u32::MAX).unwrap();
    assert_eq!(
        log.borrow()[ops + 1..],
        [Ev::Erase(slot as u32 + 0x2000, slot as u32 + image_end)]
    );
    sink.prepare(100, u32::MAX).unwrap();
    assert_eq!(log.borrow().len(), ops + 2);
    sink.write(100, &img.bytes[100..]).unwrap();
    // At the end: nothing left to prepare.
    sink.prepare(size, 4096).unwrap();
    sink.finish(&ExpectedImage::sha256(img.sha)).unwrap();
    assert_eq!(sink.prepare(size, 4096), Err(SinkError::NotStarted));
    let erased_in_writes = log
        .borrow()
        .iter()
        .skip(ops + 2)
        .filter(|e| matches!(e, Ev::Erase(a, _) if (slot..journal).contains(&(*a as usize))))
        .count();
    assert_eq!(erased_in_writes, 0);
    drop(sink);
    assert_eq!(booted(&mem).1, img.sha);
    // Past the image end the old bytes are still there; the journal sector is clean.
    let end = slot + image_end as usize;
    assert_eq!(mem[end..journal], before[end..journal]);
    assert!(mem[journal..journal + SECTOR].iter().all(|&b| b == 0xFF));
    // abort closes the session too.
    let mut f = flash(&mut mem);
    let mut sink = EspIdfSink::new(&mut f, cfg());
    sink.begin(&img.desc()).unwrap();
    sink.abort().unwrap();
    assert_eq!(sink.prepare(0, 4096), Err(SinkError::NotStarted));
}

/// What prepare erased belongs to its session: a new `begin` (same sink value, a new one
/// after a reboot, or after a flash error) erases every sector past the resume point again
/// before writing it.
#[test]
fn prepared_sectors_are_erased_again_in_a_new_session() {
    let img = image(43, 40_000);
    let slot = SLOTS[1] as u32;
    let sector = SECTOR as u32;
    let mut mem = chip();
    let (f, log) = logged(&mut mem);
    let mut sink = EspIdfSink::new(f, cfg());
    let mark = |m| log.borrow_mut().push(Ev::Mark(m));
    sink.begin(&img.desc()).unwrap();
    mark("prepare");
    sink.prepare(0, 0x1_0000).unwrap();
    assert_eq!(
        erases_after(&log.borrow(), "prepare"),
        [(slot, slot + 10 * sector)]
    );
    mark("write");
    sink.write(0, &img.bytes[..5000]).unwrap();
    assert_eq!(erases_after(&log.borrow(), "write"), []);
    // The same sink begins again: resumes at 4096, sector 1 is erased before its bytes.
    assert_eq!(sink.begin(&img.desc()).unwrap().offset, sector);
    mark("rewrite");
    sink.write(sector, &img.bytes[SECTOR..10_000]).unwrap();
    assert_eq!(
        erases_after(&log.borrow(), "rewrite"),
        [
            (slot + sector, slot + 2 * sector),
            (slot + 2 * sector, slot + 3 * sector)
        ]
    );
    // Prepared ahead again, then the device reboots.
    sink.prepare(10_000, 0x1_0000).unwrap();
    drop(sink);
    // A new sink ("after the reboot") erases again too.
    let (f, log) = logged(&mut mem);
    let mut sink = EspIdfSink::new(f, cfg());
    assert_eq!(sink.begin(&img.desc()).unwrap().offset, 2 * sector);
    log.borrow_mut().push(Ev::Mark("write"));
    sink.write(2 * sector, &img.bytes[2 * SECTOR..]).unwrap();
    let erased: Vec<_> = erases_after(&log.borrow(), "write");
    assert_eq!(erased.len(), 8);
    assert_eq!(erased[0], (slot + 2 * sector, slot + 3 * sector));
    sink.finish(&ExpectedImage::sha256(img.sha)).unwrap();
    drop(sink);
    assert_eq!(booted(&mem).1, img.sha);

    // A flash error in prepare: the session is closed; begin resumes and erases again.
    let old = image(44, 9_000);
    let mut mem = chip_running(&old);
    // Old bytes in the target slot: a write over a sector that was not erased fails.
    mem[SLOTS[1]..SLOTS[1] + 0x8_0000].fill(0x5A);
    let mut f = flash(&mut mem);
    let mut sink = EspIdfSink::new(&mut f, cfg());
    sink.begin(&img.desc()).unwrap();
    sink.write(0, &img.bytes[..9000]).unwrap();
    drop(sink);
    f.fail_after(0);
    let mut sink = EspIdfSink::new(&mut f, cfg());
    let r = sink.begin(&img.desc()).unwrap();
    assert_eq!(r.offset, 2 * sector);
    assert_eq!(
        sink.prepare(r.offset, 0x1_0000),
        Err(SinkError::Flash {
            op: FlashOp::EraseSlot,
            error: MemFlashError::PowerCut
        })
    );
    assert_eq!(
        sink.write(r.offset, &img.bytes[2 * SECTOR..]),
        Err(SinkError::NotStarted)
    );
    assert_eq!(sink.prepare(r.offset, 0x1_0000), Err(SinkError::NotStarted));
    // The cut erase left half of the range erased; the next session erases it all again.
    run_with(&mut sink, &img, 3000, None).unwrap();
    drop(sink);
    drop(f);
    assert_eq!(booted(&mem), (1, img.sha, Some(u32::MAX)));
}

#[test]
fn power_cut_at_every_flash_operation_with_prepare() {
    let old = image(45, 12_000);
    let base = chip_running(&old);
    // 10 sectors in 16 KiB ranges of 1000-byte pieces: prepare erases 4 sectors at a time,
    // unaligned to 64 KiB, then the pieces only program.
    let new = image(46, 40_000);
    let cuts = power_cut_sweep_prepared(
        &base,
        &old,
        &new,
        cfg(),
        1000,
        Some(0x4000),
        |_| true,
        |_, _| {},
    );
    // Ranges that cross a 64 KiB block: prepare splits them.
    let new = image(47, 150_000);
    let cuts_64k = power_cut_sweep_prepared(
        &base,
        &old,
        &new,
        cfg().with_rollback(true),
        4096,
        Some(40_000),
        |_| true,
        |_, _| {},
    );
    println!("prepare power cuts: {cuts} (16 KiB ranges), {cuts_64k} (40 000-byte ranges)");
    assert!(cuts > 50 && cuts_64k > 70, "{cuts} {cuts_64k}");
}

#[test]
fn async_prepare_matches_blocking() {
    let img = image(48, 100_000);
    let range = 0x1_0000usize;
    let mut mem_b = chip();
    let blocking_erases = {
        let mut f = flash(&mut mem_b);
        run_with(&mut EspIdfSink::new(&mut f, cfg()), &img, 1000, Some(range)).unwrap();
        f.stats().erases
    };
    let mut mem_a = chip();
    let mut f = flash(&mut mem_a);
    let mut sink = AsyncEspIdfSink::new(&mut f, cfg());
    block_on(async {
        AsyncOtaSink::begin(&mut sink, &img.desc()).await.unwrap();
        assert_eq!(
            AsyncOtaSink::prepare(&mut sink, 1, 10).await,
            Err(SinkError::OutOfOrder {
                expected: 0,
                got: 1
            })
        );
        let mut at = 0;
        while at < img.bytes.len() {
            let range_end = (at + range).min(img.bytes.len());
            AsyncOtaSink::prepare(&mut sink, at as u32, range as u32)
                .await
                .unwrap();
            while at < range_end {
                let end = (at + 1000).min(range_end);
                AsyncOtaSink::write(&mut sink, at as u32, &img.bytes[at..end])
                    .await
                    .unwrap();
                at = end;
            }
        }
        AsyncOtaSink::finish(&mut sink, &ExpectedImage::sha256(img.sha))
            .await
            .unwrap();
    });
    drop(sink);
    assert_eq!(f.stats().erases, blocking_erases);
    drop(f);
    assert!(
        mem_a == mem_b,
        "async and blocking prepare wrote different bytes"
    );
    assert_eq!(booted(&mem_a).1, img.sha);

    // A prepare cancelled mid-erase closes the session like a cancelled write.
    let mut mem = chip();
    let mut sink = AsyncEspIdfSink::new(Yielding(flash(&mut mem)), cfg());
    block_on(AsyncOtaSink::begin(&mut sink, &img.desc())).unwrap();
    {
        let fut = AsyncOtaSink::prepare(&mut sink, 0, 0x2_0000);
        let mut fut = std::pin::pin!(fut);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
    }
    assert_eq!(
        block_on(AsyncOtaSink::write(&mut sink, 0, &img.bytes[..4])),
        Err(SinkError::NotStarted)
    );
    let r = block_on(AsyncOtaSink::begin(&mut sink, &img.desc())).unwrap();
    assert_eq!(r.offset, 0);
    block_on(async {
        AsyncOtaSink::prepare(&mut sink, 0, u32::MAX).await?;
        AsyncOtaSink::write(&mut sink, 0, &img.bytes).await?;
        AsyncOtaSink::finish(&mut sink, &ExpectedImage::sha256(img.sha)).await
    })
    .unwrap();
    drop(sink);
    assert_eq!(booted(&mem).1, img.sha);
}

#[test]
fn idle_erase_then_an_update_that_only_programs() {
    let old = image(40, 10_000);
    let new = image(41, 300_000);
    let mut mem = chip_running(&old);
    // Leftovers of an older image in ota_1, which idle erase clears.
    mem[SLOTS[1]..SLOTS[1] + 200_000].fill(0x5A);
    let (f, log) = logged(&mut mem);
    let mut sink = EspIdfSink::new(f, cfg());
    assert_eq!(
        sink.idle_erase_state().unwrap(),
        IdleEraseState::Partial {
            erased: 0,
            total: CAPACITY
        }
    );
    // 15 blocks, then the 15 sectors before the journal sector, each a step of its own.
    let mut steps = Vec::new();
    loop {
        log.borrow_mut().clear();
        let step = sink.erase_idle_step().unwrap();
        let ops: Vec<Ev> = log.borrow().clone();
        // One erase inside ota_1's image area, one journal record in its last sector.
        assert!(
            matches!(ops[..], [Ev::Erase(a, b), Ev::Write(j, 48)]
                if a >= SLOTS[1] as u32 && b <= SLOTS[1] as u32 + CAPACITY
                    && j >= SLOTS[1] as u32 + CAPACITY),
            "{ops:?}"
        );
        steps.push(ops[0]);
        if step == IdleErase::Done {
            break;
        }
    }
    assert_eq!(steps.len(), 15 + 15);
    assert_eq!(
        steps[0],
        Ev::Erase(SLOTS[1] as u32, SLOTS[1] as u32 + 0x1_0000)
    );
    assert!(sink.idle_erase_state().unwrap().is_erased());
    drop(sink);
    // The old image still boots, from untouched otadata.
    assert_eq!(booted(&mem), (0, old.sha, Some(u32::MAX)));

    // The update: begin reads the image's sectors back and clears the record; prepare and
    // the writes erase nothing.
    let (f, log) = logged(&mut mem);
    let mut sink = EspIdfSink::new(f, cfg());
    run_marked(&mut sink, &log, &new, 4 * SECTOR, usize::MAX >> 1).unwrap();
    drop(sink);
    let log = log.borrow().clone();
    let journal = (
        SLOTS[1] as u32 + CAPACITY,
        SLOTS[1] as u32 + SLOT_SIZE as u32,
    );
    assert_eq!(erases_after(&log, "begin"), [journal]);
    assert_eq!(erases_after(&log, "prepare"), []);
    assert_eq!(erases_after(&log, "write"), []);
    assert_eq!(booted(&mem), (1, new.sha, Some(u32::MAX)));
}

#[test]
fn idle_erase_needs_a_confirmed_selected_app() {
    let old = image(42, 10_000);
    let new = image(43, 20_000);
    let mut mem = chip_running(&old);
    // Update with rollback: ota_1 selected as NEW; the reset boots it PENDING_VERIFY.
    update(&mut mem, cfg().with_rollback(true), &new, 4096).unwrap();
    put_entry(&mut mem, 1, 2, 1);
    let before = mem.clone();
    let mut f = flash(&mut mem);
    let mut sink = EspIdfSink::new(&mut f, cfg().with_rollback(true));
    assert_eq!(
        sink.erase_idle_step(),
        Err(SinkError::NotConfirmed {
            state: OtaImageState::PendingVerify
        })
    );
    drop(sink);
    drop(f);
    // Nothing written: the old image a rollback would boot is still in ota_0.
    assert!(mem == before);
    assert_eq!(mem[SLOTS[0]..SLOTS[0] + old.bytes.len()], old.bytes[..]);
    // Confirmed: ota_0, the old image's slot, is erased; ota_1 keeps booting.
    let mut f = flash(&mut mem);
    let mut sink = EspIdfSink::new(&mut f, cfg().with_rollback(true));
    sink.mark_valid().unwrap();
    while sink.erase_idle_step().unwrap() != IdleErase::Done {}
    assert!(sink.idle_erase_state().unwrap().is_erased());
    drop(sink);
    drop(f);
    assert!(
        mem[SLOTS[0]..SLOTS[0] + CAPACITY as usize]
            .iter()
            .all(|&b| b == 0xFF)
    );
    assert_eq!(booted(&mem), (1, new.sha, Some(2)));
}
