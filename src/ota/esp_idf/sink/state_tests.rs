//! `read_running`, `save_state` and `load_state` of the ESP-IDF sink, against `MemFlash`.

extern crate std;

use super::blocking::{run_state, state_job};
use super::tests::{
    ALIGNED, LARGE, MemSink, OTA0, SECTOR, app_image, chip_with, idle_chip, mem_flash,
};
use super::*;
use crate::block_on;
use crate::ota::esp_idf::partition::AppSubType;
use crate::ota::mem_flash::{MemFlash, MemFlashError};
use std::vec;
use std::vec::Vec;

fn config() -> SinkConfig {
    SinkConfig::new(ChipId::ESP32S3)
}

fn desc(image: &[u8], sha: [u8; 32]) -> ImageDescriptor {
    ImageDescriptor {
        id: sha,
        size: image.len() as u32,
    }
}

/// The delta checkpoint's size, with bytes that depend on `at`.
fn state_for(at: u32) -> Vec<u8> {
    (0..471u32)
        .map(|i| (i.wrapping_mul(7) ^ (at / SECTOR)) as u8)
        .collect()
}

/// The state area of `ALIGNED` / `LARGE` (both start at 0x5_0000): the two sectors before
/// the journal.
fn area_of(slot: (u32, u32)) -> StateArea {
    StateArea {
        start: slot.0 + slot.1 - 3 * SECTOR,
    }
}

fn scan(f: &mut MemFlash<'_>, slot: (u32, u32)) -> StateScanResult {
    let job = state_job(f, area_of(slot), StateGoal::Scan, &mut []).unwrap();
    job.scan().unwrap()
}

/// Writes `image[from..to]` in 1000-byte pieces.
fn write_range<F: NorFlash>(sink: &mut EspIdfSink<F>, image: &[u8], from: u32, to: u32) {
    for (i, piece) in image[from as usize..to as usize].chunks(1000).enumerate() {
        sink.write(from + i as u32 * 1000, piece).unwrap();
    }
}

/// A chip with a factory app (running: otadata is erased) and `ota_0`.
fn factory_chip() -> Vec<u8> {
    let mut mem = chip_with(&[
        (AppSubType::Factory, (0x1_0000, 0x2_0000), "factory"),
        (AppSubType::Ota(0), (0x3_0000, 0x4_0000), "ota_0"),
    ]);
    for (i, b) in mem[0x1_0000..0x3_0000].iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    mem
}

#[test]
#[allow(clippy::drop_non_drop)] // `drop(sink)`: the device reboots.
fn read_running_reads_the_running_app_and_never_writes() {
    let mut mem = idle_chip(ALIGNED);
    // Distinct bytes in ota_1 too, to tell the slots apart.
    for (i, b) in mem[ALIGNED.0 as usize..][..8192].iter_mut().enumerate() {
        *b = (i % 13) as u8;
    }
    let before = mem.clone();
    let mut f = mem_flash(&mut mem);
    // Before begin: ota_0 runs (otadata erased).
    let mut sink = EspIdfSink::new(&mut f, config());
    let mut buf = vec![0u8; 3000];
    assert_eq!(sink.read_running(5, &mut buf), Ok(true));
    assert_eq!(buf[..], before[OTA0.0 as usize + 5..][..3000]);
    // The last byte of the partition, and one past it.
    let mut one = [0u8; 1];
    assert_eq!(sink.read_running(OTA0.1 - 1, &mut one), Ok(true));
    assert_eq!(
        sink.read_running(OTA0.1 - 1, &mut [0u8; 2]),
        Err(SinkError::RunningReadOutOfRange {
            offset: OTA0.1 - 1,
            len: 2,
            size: OTA0.1
        })
    );
    assert_eq!(
        sink.read_running(u32::MAX, &mut one),
        Err(SinkError::RunningReadOutOfRange {
            offset: u32::MAX,
            len: 1,
            size: OTA0.1
        })
    );
    // During an update it still reads the running slot, not the target.
    let (image, sha) = app_image(5, 20_000);
    sink.begin(&desc(&image, sha)).unwrap();
    write_range(&mut sink, &image, 0, 8000);
    assert_eq!(sink.read_running(0, &mut buf), Ok(true));
    assert_eq!(buf[..], before[OTA0.0 as usize..][..3000]);
    sink.abort().unwrap();
    drop(sink);
    let mut sink = EspIdfSink::new(&mut f, config());
    let stats = sink.flash.stats();
    sink.read_running(0, &mut buf).unwrap();
    let after = sink.flash.stats();
    assert_eq!((after.writes, after.erases), (stats.writes, stats.erases));

    // ota_1 running (as configured): reads ota_1.
    let mut mem = before.clone();
    let mut f = mem_flash(&mut mem);
    let mut sink = EspIdfSink::new(&mut f, config().with_running_slot(Some(1)));
    assert_eq!(sink.read_running(100, &mut buf), Ok(true));
    assert_eq!(buf[..], before[ALIGNED.0 as usize + 100..][..3000]);
    assert_eq!(
        (sink.flash.stats().writes, sink.flash.stats().erases),
        (0, 0)
    );

    // Factory running.
    let mut mem = factory_chip();
    let want = mem[0x1_0000 + 777..][..3000].to_vec();
    let mut f = mem_flash(&mut mem);
    let mut sink = EspIdfSink::new(&mut f, config());
    assert_eq!(sink.running_slot(), Ok(AppSlot::Factory));
    assert_eq!(sink.read_running(777, &mut buf), Ok(true));
    assert_eq!(buf, want);
    assert!(matches!(
        sink.read_running(0x2_0000, &mut one),
        Err(SinkError::RunningReadOutOfRange { size: 0x2_0000, .. })
    ));
}

#[test]
#[allow(clippy::drop_non_drop)] // `drop(sink)`: the device reboots.
fn read_running_honours_read_size() {
    let mut mem = idle_chip(ALIGNED);
    let before = mem.clone();
    let mut f: MemFlash<'_, 4096, 16, 16> = MemFlash::new(&mut mem);
    let mut sink = EspIdfSink::new(&mut f, config());
    for (offset, len) in [(3, 37), (16, 16), (1, 1), (15, 200), (0, 1000)] {
        let mut buf = vec![0u8; len];
        assert_eq!(sink.read_running(offset, &mut buf), Ok(true));
        assert_eq!(buf[..], before[(OTA0.0 + offset) as usize..][..len]);
    }
    let mut blocking = vec![0u8; 300];
    sink.read_running(7, &mut blocking).unwrap();
    drop(sink);
    let mut sink = AsyncEspIdfSink::new(&mut f, config());
    let mut asynch = vec![0u8; 300];
    assert_eq!(
        block_on(AsyncOtaSink::read_running(&mut sink, 7, &mut asynch)),
        Ok(true)
    );
    assert_eq!(blocking, asynch);
}

#[test]
#[allow(clippy::drop_non_drop)] // `drop(sink)`: the device reboots.
fn a_state_is_kept_and_resumed_at_its_point() {
    let (image, sha) = app_image(5, 100_000);
    let d = desc(&image, sha);
    let mut mem = idle_chip(ALIGNED);
    let mut f = mem_flash(&mut mem);
    let mut sink = EspIdfSink::new(&mut f, config());
    // Not before begin.
    assert_eq!(sink.save_state(4096, &[1]), Err(SinkError::NotStarted));
    assert_eq!(sink.load_state(&mut [0; 512]), Err(SinkError::NotStarted));
    assert_eq!(sink.begin(&d).unwrap().offset, 0);
    assert_eq!(sink.load_state(&mut [0; 512]), Ok(None));
    // Refusals change nothing.
    let s0 = sink.flash.stats();
    assert_eq!(
        sink.save_state(0, &[1]),
        Err(SinkError::StatePoint { at: 0 })
    );
    write_range(&mut sink, &image, 0, 100);
    assert_eq!(
        sink.save_state(4096, &[1]),
        Err(SinkError::OutOfOrder {
            expected: 100,
            got: 4096
        })
    );
    assert_eq!(
        sink.save_state(100, &[1]),
        Err(SinkError::StatePoint { at: 100 })
    );
    write_range(&mut sink, &image, 100, 16384);
    let s1 = sink.flash.stats();
    assert_eq!(
        sink.save_state(16384, &[0; MAX_STATE_LEN + 1]),
        Err(SinkError::StateTooLong { len: 513 })
    );
    assert_eq!(sink.flash.stats(), s1);
    assert!(s1.writes > s0.writes);
    let state = state_for(16384);
    assert_eq!(sink.save_state(16384, &state), Ok(true));
    let mut buf = [0u8; 512];
    assert_eq!(sink.load_state(&mut buf), Ok(Some(471)));
    assert_eq!(buf[..471], state[..]);
    assert_eq!(
        sink.load_state(&mut [0; 470]),
        Err(SinkError::StateBufferTooSmall {
            len: 470,
            needed: 471
        })
    );
    // More sectors are written (and journaled) after the state.
    write_range(&mut sink, &image, 16384, 40_000);
    drop(sink);

    // Reboot: the state's point wins over the journal's 36 KiB.
    let mut sink = EspIdfSink::new(&mut f, config());
    let resume = sink.begin(&d).unwrap();
    assert_eq!(resume.offset, 16384);
    let mut buf = [0u8; 512];
    assert_eq!(sink.load_state(&mut buf), Ok(Some(471)));
    assert_eq!(buf[..471], state[..]);
    // The bytes after the point are written again (their sectors erased first).
    write_range(&mut sink, &image, 16384, image.len() as u32);
    sink.finish(&ExpectedImage::sha256(sha)).unwrap();
    assert_eq!(sink.boot_choice().unwrap().ota_slot(), Some(1));
}

#[test]
#[allow(clippy::drop_non_drop)] // `drop(sink)`: the device reboots.
fn the_newest_of_many_states_wins_across_both_sectors() {
    let (image, sha) = app_image(6, 100_000);
    let d = desc(&image, sha);
    let mut mem = idle_chip(ALIGNED);
    let mut f = mem_flash(&mut mem);
    let mut at = 0;
    let mut erases = Vec::new();
    // 24 states, one per sector: A, B, A, B (7 records each) with a reboot after each.
    while at + SECTOR <= image.len() as u32 - SECTOR {
        let mut sink = EspIdfSink::new(&mut f, config());
        let resume = sink.begin(&d).unwrap();
        assert_eq!(resume.offset, at);
        let mut buf = [0u8; 512];
        let loaded = sink.load_state(&mut buf).unwrap();
        if at == 0 {
            assert_eq!(loaded, None);
        } else {
            assert_eq!(loaded, Some(471));
            assert_eq!(buf[..471], state_for(at)[..]);
        }
        write_range(&mut sink, &image, at, at + SECTOR);
        at += SECTOR;
        let s0 = sink.flash.stats();
        assert_eq!(sink.save_state(at, &state_for(at)), Ok(true));
        erases.push(sink.flash.stats().erases - s0.erases);
        // Bytes past the state's point, lost on resume.
        write_range(
            &mut sink,
            &image,
            at,
            (at + SECTOR + 100).min(image.len() as u32),
        );
        drop(sink);
    }
    assert_eq!(erases.len(), 23);
    // The first record erases A (it held old bytes), then every seventh erases the other
    // sector.
    let expected: Vec<u32> = (0..23).map(|i| u32::from(i % 7 == 0)).collect();
    assert_eq!(erases, expected);
    let newest = scan(&mut f, ALIGNED).newest.unwrap();
    assert_eq!((newest.slot, newest.header.seq), (22 % 14, 23));
    let mut sink = EspIdfSink::new(&mut f, config());
    assert_eq!(sink.begin(&d).unwrap().offset, at);
    write_range(&mut sink, &image, at, image.len() as u32);
    sink.finish(&ExpectedImage::sha256(sha)).unwrap();
}

#[test]
#[allow(clippy::drop_non_drop)] // `drop(sink)`: the device reboots.
fn another_image_or_abort_kills_the_state() {
    let (image, sha) = app_image(7, 60_000);
    let (other, other_sha) = app_image(8, 50_000);
    let d = desc(&image, sha);
    let mut mem = idle_chip(ALIGNED);
    let mut f = mem_flash(&mut mem);
    let save_one = |f: &mut MemFlash<'_>| {
        let mut sink = EspIdfSink::new(f, config());
        assert_eq!(sink.begin(&d).unwrap().offset, 0);
        write_range(&mut sink, &image, 0, 8192);
        assert_eq!(sink.save_state(8192, &state_for(8192)), Ok(true));
        write_range(&mut sink, &image, 8192, 12288);
    };

    // Another image starts clean and kills the state.
    save_one(&mut f);
    let mut sink = EspIdfSink::new(&mut f, config());
    assert_eq!(sink.begin(&desc(&other, other_sha)).unwrap().offset, 0);
    assert_eq!(sink.load_state(&mut [0; 512]), Ok(None));
    drop(sink);
    let newest = scan(&mut f, ALIGNED).newest.unwrap();
    assert!(!newest.header.is_live());
    // And the first image after it starts clean too.
    let mut sink = EspIdfSink::new(&mut f, config());
    assert_eq!(sink.begin(&d).unwrap().offset, 0);
    assert_eq!(sink.load_state(&mut [0; 512]), Ok(None));
    drop(sink);

    // Abort in the session kills it.
    save_one(&mut f);
    assert!(scan(&mut f, ALIGNED).newest_is_live());
    let mut sink = EspIdfSink::new(&mut f, config());
    assert_eq!(sink.begin(&d).unwrap().offset, 8192);
    sink.abort().unwrap();
    drop(sink);
    assert!(!scan(&mut f, ALIGNED).newest_is_live());

    // Abort after a reboot (from the journal's record) kills it too.
    save_one(&mut f);
    let mut sink = EspIdfSink::new(&mut f, config());
    sink.abort().unwrap();
    drop(sink);
    assert!(!scan(&mut f, ALIGNED).newest_is_live());
    let mut sink = EspIdfSink::new(&mut f, config());
    assert_eq!(sink.begin(&d).unwrap().offset, 0);
    drop(sink);

    // A newest state of another image (however it got there) is ignored: the journal's
    // point counts.
    save_one(&mut f);
    let foreign = StateHeader {
        seq: 0,
        id: other_sha,
        size: other.len() as u32,
        at: 4096,
        len: 3,
    };
    let mut job = StateJob::new(area_of(ALIGNED), StateGoal::Save(foreign));
    run_state(&mut f, &mut job, &[1, 2, 3], &mut []).unwrap();
    assert!(job.written().is_some());
    let mut sink = EspIdfSink::new(&mut f, config());
    assert_eq!(sink.begin(&d).unwrap().offset, 12288);
    assert_eq!(sink.load_state(&mut [0; 512]), Ok(None));
}

#[test]
#[allow(clippy::drop_non_drop)] // `drop(sink)`: the device reboots.
fn an_image_that_reaches_the_state_area_keeps_no_state() {
    // ALIGNED: 63 sectors of image area; states need the image to end 2 sectors early.
    let (big, big_sha) = app_image(9, 0x3_E000 - 2000);
    assert!(big.len() as u32 > 0x3_D000 && big.len() as u32 <= 0x3_F000);
    let mut mem = idle_chip(ALIGNED);
    let mut f = mem_flash(&mut mem);
    let mut sink = EspIdfSink::new(&mut f, config());
    sink.begin(&desc(&big, big_sha)).unwrap();
    write_range(&mut sink, &big, 0, 8192);
    let s0 = sink.flash.stats();
    assert_eq!(sink.save_state(8192, &state_for(8192)), Ok(false));
    assert_eq!(sink.flash.stats(), s0);
    write_range(&mut sink, &big, 8192, big.len() as u32);
    sink.finish(&ExpectedImage::sha256(big_sha)).unwrap();
    drop(sink);
    // Its bytes now fill A and B: no valid record there.
    assert_eq!(scan(&mut f, ALIGNED).newest, None);
    assert_ne!(scan(&mut f, ALIGNED).erased & 1, 1);

    // The largest image with states ends right before A. Over the big image's bytes the
    // first state erases A.
    let (image, sha) = app_image(10, 0x3_D000 - 3000);
    assert!(image.len() as u32 > 0x3_C000 && image.len() as u32 <= 0x3_D000);
    let d = desc(&image, sha);
    let mut sink = EspIdfSink::new(&mut f, config().with_running_slot(Some(0)));
    sink.begin(&d).unwrap();
    write_range(&mut sink, &image, 0, 8192);
    let s0 = sink.flash.stats();
    assert_eq!(sink.save_state(8192, &state_for(8192)), Ok(true));
    assert_eq!(sink.flash.stats().erases - s0.erases, 1);
    write_range(&mut sink, &image, 8192, 0x3_0000);
    assert_eq!(sink.save_state(0x3_0000, &state_for(0x3_0000)), Ok(true));
    write_range(&mut sink, &image, 0x3_0000, 0x3_2000);
    drop(sink);
    let mut sink = EspIdfSink::new(&mut f, config().with_running_slot(Some(0)));
    assert_eq!(sink.begin(&d).unwrap().offset, 0x3_0000);
    write_range(&mut sink, &image, 0x3_0000, image.len() as u32);
    sink.finish(&ExpectedImage::sha256(sha)).unwrap();
}

#[test]
#[allow(clippy::drop_non_drop)] // `drop(sink)`: the device reboots.
fn a_state_in_a_sparsely_recorded_region_keeps_the_writes_erase_free() {
    // 90 whole sectors and a bit.
    let (image, sha) = app_image(11, 91 * 4096 - 3000);
    let d = desc(&image, sha);
    let mut mem = idle_chip(LARGE);
    let mut f = mem_flash(&mut mem);
    let mut sink = EspIdfSink::new(&mut f, config());
    sink.begin(&d).unwrap();
    write_range(&mut sink, &image, 0, SECTOR);
    assert_eq!(sink.save_state(SECTOR, &state_for(SECTOR)), Ok(true));
    // Fill the journal to 39 records: each round resumes at the state and records the
    // next sector again.
    for _ in 0..38 {
        assert_eq!(sink.begin(&d).unwrap().offset, SECTOR);
        write_range(&mut sink, &image, SECTOR, 2 * SECTOR);
    }
    assert_eq!(sink.begin(&d).unwrap().offset, SECTOR);
    sink.prepare(SECTOR, u32::MAX).unwrap();
    // 89 boundaries into 45 free journal slots: every 2nd, filling the journal exactly
    // (compacting would not lower the stride, so prepare did not).
    {
        let w = sink.core.writing::<()>().unwrap();
        assert_eq!((w.writer.stride, w.journal.room()), (2, Some(45)));
    }
    let erases = sink.flash.stats().erases;
    // States at odd sectors, which the plan does not record: each adds a record.
    let mut at = SECTOR;
    let mut states = 0;
    while at + 5 * SECTOR < image.len() as u32 {
        write_range(&mut sink, &image, at, at + 5 * SECTOR);
        at += 5 * SECTOR;
        assert_eq!(sink.save_state(at, &state_for(at)), Ok(true));
        states += 1;
    }
    write_range(&mut sink, &image, at, image.len() as u32);
    // Only the state area's own erases (the first state erased A): no journal wrap.
    assert_eq!(
        sink.flash.stats().erases - erases,
        (1 + states as u32).div_ceil(7) - 1
    );
    drop(sink);
    let mut sink = EspIdfSink::new(&mut f, config());
    assert_eq!(sink.begin(&d).unwrap().offset, at);
    let mut buf = [0u8; 512];
    assert_eq!(sink.load_state(&mut buf), Ok(Some(471)));
    assert_eq!(buf[..471], state_for(at)[..]);
    write_range(&mut sink, &image, at, image.len() as u32);
    sink.finish(&ExpectedImage::sha256(sha)).unwrap();
}

/// The sequence the cut sweep runs: begin, then 4 KiB of image and a state at its end,
/// 24 times (through A, B and A again), 2 KiB more after each state. Returns the point of
/// the last state kept and the one being kept when it stopped (0 for none).
fn save_sequence(
    sink: &mut MemSink<'_, '_>,
    image: &[u8],
    d: &ImageDescriptor,
) -> Result<(u32, u32), (u32, u32, SinkError<MemFlashError>)> {
    let mut kept = 0;
    let fail = |kept, trying, e| (kept, trying, e);
    let resume = sink.begin(d).map_err(|e| fail(kept, 0, e))?;
    assert_eq!(resume.offset, 0);
    let mut at = 0;
    while at + 3 * SECTOR <= image.len() as u32 {
        for (i, piece) in image[at as usize..][..SECTOR as usize]
            .chunks(1000)
            .enumerate()
        {
            sink.write(at + i as u32 * 1000, piece)
                .map_err(|e| fail(kept, 0, e))?;
        }
        at += SECTOR;
        match sink.save_state(at, &state_for(at)) {
            Ok(true) => kept = at,
            Ok(false) => panic!("no room"),
            Err(e) => return Err(fail(kept, at, e)),
        }
        sink.write(at, &image[at as usize..][..2048])
            .map_err(|e| fail(kept, 0, e))?;
        // Back to the state's point for the next sector: a reboot would do this.
        let r = sink.begin(d).map_err(|e| fail(kept, 0, e))?;
        assert_eq!(r.offset, at);
    }
    Ok((kept, 0))
}

#[test]
#[allow(clippy::drop_non_drop)] // `drop(sink)`: the device reboots.
fn states_survive_a_power_cut_at_every_operation() {
    let (image, sha) = app_image(12, 100_000);
    let d = desc(&image, sha);
    let ops = {
        let mut mem = idle_chip(ALIGNED);
        let mut f = mem_flash(&mut mem);
        let mut sink = EspIdfSink::new(&mut f, config());
        let (kept, _) = save_sequence(&mut sink, &image, &d).unwrap();
        assert!(kept >= 20 * SECTOR, "{kept}");
        f.stats().writes + f.stats().erases
    };
    let mut torn_states = 0;
    for k in 0..ops {
        let mut mem = idle_chip(ALIGNED);
        let mut f = mem_flash(&mut mem);
        f.fail_after(k);
        let mut sink = EspIdfSink::new(&mut f, config());
        let (kept, trying, e) = save_sequence(&mut sink, &image, &d).unwrap_err();
        assert!(
            matches!(
                e,
                SinkError::Flash {
                    error: MemFlashError::PowerCut,
                    ..
                }
            ),
            "cut {k}: {e:?}"
        );
        torn_states += usize::from(trying > 0);
        drop(sink);
        // Reboot.
        let mut sink = EspIdfSink::new(&mut f, config());
        let resume = sink.begin(&d).unwrap().offset;
        let mut buf = [0u8; 512];
        match sink.load_state(&mut buf).unwrap() {
            Some(n) => {
                // The last state kept, or the one being kept if its record landed.
                assert!(
                    resume == kept || (resume == trying && trying > 0),
                    "cut {k}"
                );
                assert_eq!(buf[..n], state_for(resume)[..], "cut {k}");
            }
            None => assert_eq!(kept, 0, "cut {k}: {resume}"),
        }
        // Everything below the resume point is on flash.
        let mut back = vec![0u8; resume as usize];
        sink.read(0, &mut back).unwrap();
        assert!(back[..] == image[..resume as usize], "cut {k}");
        write_range(&mut sink, &image, resume, image.len() as u32);
        sink.finish(&ExpectedImage::sha256(sha)).unwrap();
    }
    assert!(torn_states >= 20 * 9, "{torn_states}");
}

#[test]
fn async_states_write_the_same_bytes() {
    let (image, sha) = app_image(13, 100_000);
    let d = desc(&image, sha);
    let mut mem_a = idle_chip(ALIGNED);
    let mut mem_b = mem_a.clone();
    let mut fa = mem_flash(&mut mem_a);
    let mut fb = mem_flash(&mut mem_b);
    let mut a = AsyncEspIdfSink::new(&mut fa, config());
    let mut b = EspIdfSink::new(&mut fb, config());
    let mut base_a = [0u8; 100];
    let mut base_b = [0u8; 100];
    assert_eq!(
        block_on(AsyncOtaSink::read_running(&mut a, 33, &mut base_a)),
        b.read_running(33, &mut base_b)
    );
    assert_eq!(base_a, base_b);
    let mut at = 0;
    for round in 0..18 {
        let ra = block_on(AsyncOtaSink::begin(&mut a, &d)).unwrap();
        let rb = b.begin(&d).unwrap();
        assert_eq!(ra, rb);
        assert_eq!(ra.offset, at);
        let (mut sa, mut sb) = ([0u8; 512], [0u8; 512]);
        assert_eq!(
            block_on(AsyncOtaSink::load_state(&mut a, &mut sa)),
            b.load_state(&mut sb)
        );
        assert_eq!(sa, sb);
        let chunk = &image[at as usize..][..SECTOR as usize];
        block_on(AsyncOtaSink::write(&mut a, at, chunk)).unwrap();
        b.write(at, chunk).unwrap();
        at += SECTOR;
        let state = state_for(at);
        assert_eq!(
            block_on(AsyncOtaSink::save_state(&mut a, at, &state)),
            b.save_state(at, &state)
        );
        if round % 5 == 4 {
            block_on(AsyncOtaSink::abort(&mut a)).unwrap();
            b.abort().unwrap();
            at = 0;
        }
        assert_eq!(a.flash.as_slice(), b.flash.as_slice(), "round {round}");
    }
    assert_eq!(
        block_on(AsyncOtaSink::save_state(&mut a, 1, &[])),
        b.save_state(1, &[])
    );
    block_on(AsyncOtaSink::write(&mut a, at, &image[at as usize..])).unwrap();
    b.write(at, &image[at as usize..]).unwrap();
    block_on(AsyncOtaSink::finish(&mut a, &ExpectedImage::sha256(sha))).unwrap();
    b.finish(&ExpectedImage::sha256(sha)).unwrap();
    assert_eq!(a.flash.as_slice(), b.flash.as_slice());
}

#[test]
fn state_records_and_append_rules() {
    let area = StateArea { start: 0x8_D000 };
    assert_eq!(area.slot_addr(0), 0x8_D000);
    assert_eq!(area.slot_addr(6), 0x8_D000 + 6 * 576);
    assert_eq!(area.slot_addr(7), 0x8_E000);
    assert_eq!(area.slot_addr(13), 0x8_E000 + 6 * 576);
    // A record round-trips through the parser, written in any write size.
    let state = state_for(8192);
    let header = StateHeader {
        seq: 9,
        id: [3; 32],
        size: 1234,
        at: 8192,
        len: state.len() as u16,
    };
    for unit in [1, 4, 16, 64] {
        let rec = StateRecord::new(&header, &state);
        let mut slot = vec![0xFFu8; 576];
        let mut buf = [0u8; STATE_CHUNK];
        let mut k = 0;
        while let Some(n) = rec.chunk(k, unit, &mut buf) {
            assert_eq!(n % unit, 0);
            slot[k * 64..k * 64 + n].copy_from_slice(&buf[..n]);
            k += 1;
        }
        assert_eq!(k, (50 + 471 + 4usize).div_ceil(64));
        let mut parse = SlotParse::new();
        let mut out = [0u8; 512];
        let mut reads = 0;
        while let Some((at, len)) = parse.next_read() {
            parse.feed(&slot[at as usize..][..len], &mut out);
            reads += 1;
        }
        assert_eq!(reads, k);
        assert_eq!(parse.finish(), StateSlot::Valid(header));
        assert_eq!(out[..471], state[..]);
        // Any byte changed: invalid.
        for i in [0, 5, 49, 50, 300, 520, 524] {
            let mut bad = slot.clone();
            bad[i] ^= 0x01;
            let mut parse = SlotParse::new();
            while let Some((at, len)) = parse.next_read() {
                parse.feed(&bad[at as usize..][..len], &mut []);
            }
            assert_eq!(parse.finish(), StateSlot::Garbage, "{i}");
        }
    }
    // An erased slot is read whole; garbage stops after one chunk.
    let parse_all = |slot: &[u8]| {
        let mut parse = SlotParse::new();
        let mut reads = 0;
        while let Some((at, len)) = parse.next_read() {
            parse.feed(&slot[at as usize..][..len], &mut []);
            reads += 1;
        }
        (parse.finish(), reads)
    };
    assert_eq!(parse_all(&[0xFF; 576]), (StateSlot::Erased, 9));
    assert_eq!(parse_all(&[0x5A; 576]), (StateSlot::Garbage, 1));
    let mut late = [0xFFu8; 576];
    late[575] = 0;
    assert_eq!(parse_all(&late), (StateSlot::Garbage, 9));

    let found = |slot, seq| FoundState {
        slot,
        header: StateHeader { seq, ..header },
    };
    let result = |newest, erased| StateScanResult { newest, erased };
    let plan = |r: StateScanResult| plan_state_append(&area, &r);
    // Nothing valid: A's slot 0, erasing A unless that slot is erased.
    assert_eq!(
        plan(result(None, 0)),
        StateAppend {
            erase: Some(0x8_D000),
            slot: 0,
            seq: 1
        }
    );
    assert_eq!(plan(result(None, 1)).erase, None);
    // After the newest, in its sector, if erased.
    assert_eq!(
        plan(result(Some(found(2, 40)), 1 << 3)),
        StateAppend {
            erase: None,
            slot: 3,
            seq: 41
        }
    );
    // Not erased (a torn record), or the sector's last slot: the other sector.
    assert_eq!(
        plan(result(Some(found(2, 40)), 0)),
        StateAppend {
            erase: Some(0x8_E000),
            slot: 7,
            seq: 41
        }
    );
    assert_eq!(
        plan(result(Some(found(6, 40)), 0x3F80)),
        StateAppend {
            erase: Some(0x8_E000),
            slot: 7,
            seq: 41
        }
    );
    assert_eq!(
        plan(result(Some(found(13, 40)), 0x7F)),
        StateAppend {
            erase: Some(0x8_D000),
            slot: 0,
            seq: 41
        }
    );
    assert_eq!(plan(result(Some(found(9, 40)), 1 << 10)).slot, 10);

    // The area exists only for images that end before it.
    let target = UpdateTarget {
        slot: 1,
        offset: 0x5_0000,
        size: 0x4_0000,
        capacity: 0x3_F000,
        journal: 0x8_F000,
    };
    assert_eq!(StateArea::of(&target, 0x3_D000), Some(area));
    assert_eq!(StateArea::of(&target, 0x3_C001), Some(area));
    assert_eq!(StateArea::of(&target, 0x3_D001), None);
    assert_eq!(StateArea::of(&target, 0x3_F000), None);
    let small = UpdateTarget {
        size: 0x2000,
        capacity: 0x1000,
        journal: 0x5_1000,
        ..target
    };
    assert_eq!(StateArea::of(&small, 0), None);
}
