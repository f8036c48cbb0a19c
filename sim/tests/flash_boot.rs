//! The simulated flash (rules, timing, power cuts, its effect on the UART) and the
//! bootloader model, ending with a whole over-the-air update through the modem.

mod common;

use std::time::Duration;

use cellular_ota::ota::esp_idf::image::ChipId;
use cellular_ota::ota::esp_idf::otadata::{OtaImageState, Otadata};
use cellular_ota::ota::esp_idf::partition::{
    PARTITION_TABLE_MAX_LEN, PARTITION_TABLE_OFFSET, read_partition_table,
};
use cellular_ota::ota::mem_flash::MemFlashError;
use cellular_ota::quectel::general::SetFlowControl;
use cellular_ota::quectel::http::HttpRead;
use cellular_ota_sim::chip_image::layout;
use cellular_ota_sim::{
    BootOptions, BootTarget, FlashConfig, Personality, SimFlash, TestServer, boot, boot_with,
    build_chip_image, test_app_image,
};
use common::*;
use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};

const S3: u16 = 9;

#[test]
fn flash_rules_timing_and_counters() {
    let world = ready_world(Personality::Ec200u);
    let mut f = SimFlash::new(&world, FlashConfig::default());
    assert_eq!(f.capacity(), 4 << 20);
    let t = |w: &cellular_ota_sim::World| w.elapsed();
    let t0 = t(&world);
    f.erase(0x1000, 0x2000).unwrap();
    assert_eq!(t(&world) - t0, Duration::from_millis(45));
    let t0 = t(&world);
    f.erase(0x10000, 0x20000).unwrap();
    assert_eq!(
        t(&world) - t0,
        Duration::from_millis(150),
        "one 64 KiB block erase"
    );
    let t0 = t(&world);
    f.erase(0x20000, 0x31000).unwrap();
    assert_eq!(t(&world) - t0, Duration::from_millis(150 + 45));
    let t0 = t(&world);
    f.write(0x1000, &[0xAB; 256]).unwrap();
    assert_eq!(t(&world) - t0, Duration::from_micros(400));
    let t0 = t(&world);
    f.write(0x1100 + 128, &[1; 256]).unwrap();
    assert_eq!(
        t(&world) - t0,
        Duration::from_micros(800),
        "two pages touched"
    );
    // Rules: alignment, bounds, erase-before-write; rejected calls cost nothing.
    let t0 = t(&world);
    assert!(matches!(
        f.write(0x1002, &[0; 4]),
        Err(MemFlashError::NotAligned { .. })
    ));
    assert!(matches!(
        f.write(0x1000, &[0; 4]),
        Err(MemFlashError::NotErased { .. })
    ));
    assert!(matches!(
        f.erase(0, 100),
        Err(MemFlashError::NotAligned { .. })
    ));
    assert!(matches!(
        f.erase(0x3FF000, 0x401000),
        Err(MemFlashError::OutOfBounds { .. })
    ));
    assert_eq!(t(&world), t0);
    let mut back = [0u8; 4];
    f.read(0x1000, &mut back).unwrap();
    assert_eq!(back, [0xAB; 4]);
    let s = f.stats();
    assert_eq!((s.erases, s.writes, s.reads), (3, 2, 1));
    assert_eq!(f.image()[0x1000], 0xAB);
    // The async traits do the same.
    cellular_ota_sim::block_on(async {
        embedded_storage_async::nor_flash::NorFlash::erase(&mut f, 0x5000, 0x6000)
            .await
            .unwrap();
        embedded_storage_async::nor_flash::NorFlash::write(&mut f, 0x5000, &[7; 8])
            .await
            .unwrap();
    });
    assert_eq!(&f.snapshot()[0x5000..0x5008], &[7; 8]);
}

#[test]
fn power_cut_after_k_operations() {
    let world = ready_world(Personality::Ec200u);
    let mut f = SimFlash::new(&world, FlashConfig::instant(64 * 1024));
    f.power_cut_after(2);
    f.write(0, &[1; 16]).unwrap();
    f.erase(0x1000, 0x2000).unwrap();
    // The third operation is cut half-way: half of the words are programmed.
    assert_eq!(f.write(0x1000, &[2; 16]), Err(MemFlashError::PowerCut));
    assert_eq!(
        &f.image()[0x1000..0x1010],
        &[
            2, 2, 2, 2, 2, 2, 2, 2, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF
        ]
    );
    assert!(!f.is_powered());
    let mut b = [0u8; 4];
    assert_eq!(f.read(0, &mut b), Err(MemFlashError::PowerCut));
    assert_eq!(f.erase(0x2000, 0x3000), Err(MemFlashError::PowerCut));
    f.restore_power();
    f.read(0, &mut b).unwrap();
    assert_eq!(b, [1; 4]);
    // The same through the fault name: a cut erase leaves the second half of the range.
    world.inject_str("power-cut=0").unwrap();
    f.write(0x3000, &[3; 8]).ok();
    assert!(!f.is_powered());
    f.restore_power();
    f.erase(0, 0x2000).unwrap();
}

#[test]
fn flash_operations_starve_the_uart_without_flow_control() {
    for flow in [false, true] {
        let world = ready_world(Personality::Ec200u);
        world.modem().put_file("UFS:big.bin", &data(4000, 1));
        let mut f = SimFlash::new(&world, FlashConfig::default());
        raw(&world, b"ATE0\r", Duration::from_millis(20));
        if flow {
            raw(&world, b"AT+IFC=2,2\r", Duration::from_millis(20));
        }
        let mut u = world.host_uart();
        embedded_io::Write::write_all(&mut u, b"AT+QFDWL=\"UFS:big.bin\"\r").unwrap();
        world.advance(Duration::from_millis(5));
        // Erase 8 sectors (360 ms, interrupts off) while the modem sends 4 kB (350 ms).
        f.erase(0x10000, 0x18000).unwrap();
        let out = collect(&world, Duration::from_millis(500));
        let st = world.uart_stats();
        if flow {
            assert_eq!(st.lost, 0);
            assert!(out.ends_with(b"OK\r\n"));
            assert!(st.flow_pauses > 0, "the modem waited for RTS");
        } else {
            assert!(st.lost > 3000, "{st:?}");
            assert!(out.len() < 200, "{}", out.len());
        }
    }
}

fn table(f: &mut SimFlash) -> cellular_ota::ota::esp_idf::partition::PartitionTable {
    let mut buf = [0u8; PARTITION_TABLE_MAX_LEN];
    read_partition_table(f, PARTITION_TABLE_OFFSET, &mut buf).unwrap()
}

#[test]
fn bootloader_model_on_good_and_corrupt_images() {
    let world = ready_world(Personality::Ec200u);
    let img = build_chip_image(S3, None);
    let out = boot(&img, S3);
    assert_eq!(
        (out.target, out.valid, out.slot()),
        (Some(BootTarget::Ota(0)), true, Some(0)),
        "{}",
        out.reason
    );
    assert_eq!(
        boot(&img, 5).target,
        None,
        "an ESP32-S3 image does not boot on a C3"
    );

    // Put version 2 into ota_1 and select it.
    let mut f = SimFlash::with_image(&world, FlashConfig::instant(4 << 20), &img);
    let v2 = test_app_image(S3, "2.0.0", 100_000);
    let (off, size) = layout::OTA_1;
    f.erase(off, off + size).unwrap();
    f.write(off, &v2[..v2.len() / 4 * 4]).unwrap();
    let t = table(&mut f);
    Otadata::from_table(&mut f, &t)
        .unwrap()
        .activate(1, OtaImageState::Undefined)
        .unwrap();
    let out = boot(f.image(), S3);
    assert_eq!(out.target, Some(BootTarget::Ota(1)), "{}", out.reason);

    // Corrupt one byte of ota_1: the bootloader counts down to ota_0.
    let mut bad = f.snapshot();
    bad[off as usize + 5000] ^= 0x01;
    let out = boot(&bad, S3);
    assert_eq!(out.target, Some(BootTarget::Ota(0)), "{}", out.reason);
    assert_eq!(out.tried.len(), 2);
    assert!(out.tried[0].1.is_err());
    // Both corrupt: nothing boots.
    bad[layout::OTA_0.0 as usize + 100] ^= 0x80;
    let out = boot(&bad, S3);
    assert_eq!((out.target, out.valid), (None, false), "{}", out.reason);

    // Slot 0 selected but corrupt: no factory, so the search goes up to ota_1.
    let mut up = f.snapshot();
    let e = cellular_ota::ota::esp_idf::otadata::OtaSelectEntry::new(3, OtaImageState::Valid);
    up[layout::OTADATA.0 as usize + 0x1000..][..32].copy_from_slice(&e.encode());
    up[layout::OTA_0.0 as usize + 100] ^= 0x80;
    let out = boot(&up, S3);
    assert_eq!(out.target, Some(BootTarget::Ota(1)), "{}", out.reason);

    // Blank otadata, no factory: ota_0; with the rollback-enabled bootloader the entry is
    // then written (set_actual_ota_seq).
    let mut blank = img.clone();
    blank[layout::OTADATA.0 as usize..][..0x2000].fill(0xFF);
    let out = boot_with(&mut blank, BootOptions::new(S3).with_rollback(true));
    assert_eq!(
        (out.target, out.otadata_written),
        (Some(BootTarget::Ota(0)), true)
    );
    assert_eq!(boot(&blank, S3).target, Some(BootTarget::Ota(0)));
}

#[test]
fn rollback_pass_aborts_an_unconfirmed_image() {
    let world = ready_world(Personality::Ec200u);
    let img = build_chip_image(S3, None);
    let mut f = SimFlash::with_image(&world, FlashConfig::instant(4 << 20), &img);
    let v2 = test_app_image(S3, "2.0.0", 10_000);
    let (off, _) = layout::OTA_1;
    f.erase(off, off + 0x10000).unwrap();
    f.write(off, &v2).unwrap();
    let t = table(&mut f);
    Otadata::from_table(&mut f, &t)
        .unwrap()
        .activate(1, OtaImageState::New)
        .unwrap();
    let opts = BootOptions::new(S3).with_rollback(true);
    let mut image = f.snapshot();
    // First boot: NEW → PENDING_VERIFY, boots the new slot.
    let out = boot_with(&mut image, opts);
    assert_eq!(
        (out.target, out.otadata_written),
        (Some(BootTarget::Ota(1)), true)
    );
    // The app never confirms; next reset: PENDING_VERIFY → ABORTED, back to ota_0.
    let out = boot_with(&mut image, opts);
    assert_eq!(out.target, Some(BootTarget::Ota(0)), "{}", out.reason);
    // Without rollback support the NEW image would simply keep booting.
    let mut image = f.snapshot();
    assert_eq!(
        boot_with(&mut image, BootOptions::new(S3)).target,
        Some(BootTarget::Ota(1))
    );
    assert_eq!(
        boot_with(&mut image, BootOptions::new(S3)).target,
        Some(BootTarget::Ota(1))
    );
}

#[test]
fn whole_update_through_the_modem_into_flash() {
    // The new firmware on the server; the board's flash holds version 1 in ota_0.
    let v2 = test_app_image(S3, "2.0.0", 200_000);
    let server = TestServer::start([("app.bin", v2.clone())]).unwrap();
    let world = ready_world(Personality::Ec200t);
    let mut f = SimFlash::with_image(&world, FlashConfig::default(), &build_chip_image(S3, None));
    let urcs = Urcs::default();
    let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
    let mut c = client(&world, &mut rx, &mut resp, &urcs);
    setup(&mut c);
    c.send(&SetFlowControl::HARDWARE).unwrap();
    pdp_up(&mut c);
    let st = get(&mut c, &server.url("/app.bin")).result.unwrap();
    let len = st.content_length.unwrap();
    // Stream into ota_1: erase each sector just before it is first written.
    let (off, _) = layout::OTA_1;
    let mut pos = 0u32;
    let mut pending: Vec<u8> = Vec::new();
    let mut erased_to = off;
    let mut flash_err = None;
    c.send_receive(&HttpRead::exact(len), |d| {
        pending.extend_from_slice(d);
        let n = pending.len() / 4 * 4;
        if n == 0 {
            return;
        }
        let end = off + pos + n as u32;
        while erased_to < end {
            if let Err(e) = f.erase(erased_to, erased_to + 4096) {
                flash_err = Some(e);
            }
            erased_to += 4096;
        }
        if let Err(e) = f.write(off + pos, &pending[..n]) {
            flash_err = Some(e);
        }
        pos += n as u32;
        pending.drain(..n);
    })
    .unwrap();
    assert_eq!(flash_err, None);
    assert_eq!(pos + pending.len() as u32, len);
    assert_eq!(world.uart_bytes_lost(), 0);
    let mut chunk = [0u8; 1024];
    cellular_ota::ota::esp_idf::image::validate_in_flash(
        &mut f,
        off,
        layout::OTA_1.1,
        ChipId(S3),
        &mut chunk,
    )
    .unwrap();
    let t = table(&mut f);
    Otadata::from_table(&mut f, &t)
        .unwrap()
        .activate(1, OtaImageState::Undefined)
        .unwrap();
    let out = boot(f.image(), S3);
    assert_eq!(out.target, Some(BootTarget::Ota(1)), "{}", out.reason);
    assert!(
        f.stats().busy > Duration::from_secs(2),
        "49 sector erases + 782 pages"
    );
}
