//! The timeline recorder: flash-busy intervals, receive-buffer fill, lost bytes and baud
//! changes of a world with recording on, checked against the simulator's own counters.

mod common;

use std::time::Duration;

use cellular_ota::quectel::general::SetFlowControl;
use cellular_ota::quectel::http::HttpRead;
use cellular_ota_sim::{
    FlashConfig, FlashOpKind, Personality, SimFlash, TestServer, Timeline, UartEnd, World,
};
use common::*;
use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};

/// What every timeline must satisfy.
fn check_shape(t: &Timeline, world: &World) {
    assert!(t.start <= t.end && t.end <= world.elapsed());
    for w in t.flash.windows(2) {
        assert!(w[0].end <= w[1].start, "flash intervals overlap: {w:?}");
    }
    for b in &t.flash {
        assert!(
            b.start < b.end && b.start >= t.start && b.end <= t.end,
            "{b:?}"
        );
    }
    for w in t.rx_fill.windows(2) {
        assert!(w[0].at < w[1].at, "one fill sample per period: {w:?}");
    }
    for s in &t.rx_fill {
        assert!(
            s.last <= s.max && s.max <= t.rx_capacity,
            "{s:?} / {}",
            t.rx_capacity
        );
        assert_eq!(s.at.as_nanos() % t.period.as_nanos(), 0);
    }
    for w in t.lost.windows(2) {
        assert!(w[0].at < w[1].at);
    }
}

#[test]
fn off_by_default_and_off_keeps_what_was_recorded() {
    let world = ready_world(Personality::Ec200u);
    assert!(!world.recording_timeline());
    let mut f = SimFlash::new(&world, FlashConfig::default());
    f.erase(0, 4096).unwrap();
    let t = world.timeline();
    assert!(t.flash.is_empty() && t.rx_fill.is_empty() && t.bauds.is_empty());
    assert_eq!(t.rx_capacity, 128 + 1024);

    world.record_timeline(true);
    assert!(world.recording_timeline());
    let t0 = world.elapsed();
    f.erase(4096, 8192).unwrap();
    world.record_timeline(false);
    f.erase(8192, 12288).unwrap();
    let t = world.timeline();
    assert_eq!(t.start, t0);
    assert_eq!(t.end, t0 + Duration::from_millis(45));
    assert_eq!(t.flash.len(), 1);
    assert_eq!(t.flash[0].start, t0);
    assert_eq!(t.flash_busy(), Duration::from_millis(45));
    // On again: goes on adding.
    world.record_timeline(true);
    let t1 = world.elapsed();
    f.write(4096, &[0u8; 512]).unwrap();
    let t = world.timeline();
    assert_eq!(t.flash.len(), 2);
    assert_eq!(t.flash[1].start, t1);
    assert_eq!(t.flash[1].kind, FlashOpKind::PageProgram);
    assert_eq!(
        t.flash_busy_of(FlashOpKind::PageProgram),
        Duration::from_micros(800)
    );
}

#[test]
fn erases_split_into_block_and_sector_steps() {
    let world = ready_world(Personality::Ec200u);
    world.record_timeline(true);
    let mut f = SimFlash::new(&world, FlashConfig::default());
    let t0 = world.elapsed();
    // One sector before the block, one aligned 64 KiB block, two sectors after it.
    f.erase(0xF000, 0x22000).unwrap();
    let mut buf = [0u8; 4096];
    f.read(0x10000, &mut buf).unwrap();
    let t = world.timeline();
    check_shape(&t, &world);
    let kinds: Vec<_> = t.flash.iter().map(|b| b.kind).collect();
    assert_eq!(
        kinds,
        [
            FlashOpKind::SectorErase,
            FlashOpKind::BlockErase,
            FlashOpKind::SectorErase,
            FlashOpKind::Read
        ]
    );
    assert_eq!(t.flash[0].start, t0);
    assert_eq!(t.flash[0].duration(), Duration::from_millis(45));
    assert_eq!(t.flash[1].duration(), Duration::from_millis(150));
    assert_eq!(t.flash[2].duration(), Duration::from_millis(90));
    assert_eq!(t.flash_busy(), f.stats().busy);

    // A power cut stops an erase half-way: the recorded steps end there too.
    f.power_cut_after(0);
    let t1 = world.elapsed();
    assert!(f.erase(0x30000, 0x40000).is_err());
    let t = world.timeline();
    let last = t.flash.last().unwrap();
    assert_eq!(
        (last.kind, last.start, last.duration()),
        (FlashOpKind::BlockErase, t1, Duration::from_millis(75))
    );
    assert_eq!(t.flash_busy(), f.stats().busy);
}

#[test]
fn flash_operations_without_flow_control_lose_bytes_on_the_timeline() {
    let world = ready_world(Personality::Ec200u);
    world.modem().put_file("UFS:big.bin", &data(4000, 1));
    world.record_timeline(true);
    let mut f = SimFlash::new(&world, FlashConfig::default());
    raw(&world, b"ATE0\r", Duration::from_millis(20));
    let mut u = world.host_uart();
    embedded_io::Write::write_all(&mut u, b"AT+QFDWL=\"UFS:big.bin\"\r").unwrap();
    world.advance(Duration::from_millis(5));
    let erase_at = world.elapsed();
    // 8 sectors (360 ms, interrupts off) while the modem sends 4 kB (350 ms).
    f.erase(0x10000, 0x18000).unwrap();
    collect(&world, Duration::from_millis(500));
    let st = world.uart_stats();
    assert!(st.lost > 3000, "{st:?}");
    let t = world.timeline();
    check_shape(&t, &world);
    assert_eq!(t.flash_busy(), f.stats().busy);
    assert_eq!(t.flash_busy_of(FlashOpKind::SectorErase), f.stats().busy);
    // Eight back-to-back sector erases of one call: one band.
    assert_eq!(t.flash.len(), 1);
    assert_eq!(t.flash[0].start, erase_at);
    assert_eq!(t.flash[0].duration(), Duration::from_millis(360));
    // Every lost byte is on the timeline, inside the erase (only the FIFO catches bytes).
    assert_eq!(t.lost_bytes(), st.lost);
    for l in &t.lost {
        assert!(
            l.at + t.period > t.flash[0].start && l.at < t.flash[0].end,
            "{l:?}"
        );
    }
    // The peak is kept although samples are throttled: the FIFO filled up (on top of what
    // was in the ring when the erase began).
    assert_eq!(t.max_rx_fill() as usize, st.max_rx_fill);
    assert!(t.max_rx_fill() >= 128, "{}", t.max_rx_fill());
    assert!(t.rx_fill.len() < 1000, "{} samples", t.rx_fill.len());
}

#[test]
fn download_into_flash_with_flow_control_then_a_baud_change() {
    let body = data(40_000, 3);
    let server = TestServer::start([("app.bin", body.clone())]).unwrap();
    let world = ready_world(Personality::Ec200t);
    world.record_timeline(true);
    let mut f = SimFlash::new(&world, FlashConfig::default());
    let urcs = Urcs::default();
    let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
    let mut c = client(&world, &mut rx, &mut resp, &urcs);
    setup(&mut c);
    c.send(&SetFlowControl::HARDWARE).unwrap();
    pdp_up(&mut c);
    let len = get(&mut c, &server.url("/app.bin"))
        .result
        .unwrap()
        .content_length
        .unwrap();
    // Stream into flash: erase each sector just before it is first written.
    let (mut pos, mut erased_to) = (0u32, 0u32);
    let mut pending: Vec<u8> = Vec::new();
    c.send_receive(&HttpRead::exact(len), |d| {
        pending.extend_from_slice(d);
        let n = pending.len() / 4 * 4;
        if n == 0 {
            return;
        }
        while erased_to < pos + n as u32 {
            f.erase(erased_to, erased_to + 4096).unwrap();
            erased_to += 4096;
        }
        f.write(pos, &pending[..n]).unwrap();
        pos += n as u32;
        pending.drain(..n);
    })
    .unwrap();
    assert_eq!(pos, len);
    let mut back = vec![0u8; body.len()];
    f.read(0, &mut back).unwrap();
    assert_eq!(back, body);
    drop(c);
    collect(&world, Duration::from_millis(20));

    // AT+IPR: the OK comes at 115200, then the modem switches; then the host follows.
    let ipr_sent = world.elapsed();
    raw(&world, b"AT+IPR=921600\r", Duration::from_millis(20));
    let host_at = world.elapsed();
    world.host_uart().set_baud(921_600);

    let st = world.uart_stats();
    let t = world.timeline();
    check_shape(&t, &world);
    assert_eq!(st.lost, 0);
    assert!(t.lost.is_empty());
    assert_eq!(t.flash_busy(), f.stats().busy);
    for kind in [
        FlashOpKind::SectorErase,
        FlashOpKind::PageProgram,
        FlashOpKind::Read,
    ] {
        assert!(t.flash_busy_of(kind) > Duration::ZERO, "{kind:?}");
    }
    assert_eq!(t.flash_busy_of(FlashOpKind::BlockErase), Duration::ZERO);
    assert_eq!(
        t.flash_busy_of(FlashOpKind::SectorErase),
        Duration::from_millis(45) * 10
    );
    assert_eq!(t.max_rx_fill() as usize, st.max_rx_fill);
    assert!(t.max_rx_fill() > 0);
    // Throttled: at most one sample per millisecond of recording.
    let periods = (t.end - t.start).as_millis() + 1;
    assert!(t.rx_fill.len() as u128 <= periods);
    // Drained at the end.
    assert_eq!(t.rx_fill.last().unwrap().last, 0);

    assert_eq!(
        (t.modem_baud_at_start, t.host_baud_at_start),
        (115_200, 115_200)
    );
    assert_eq!(t.bauds.len(), 2, "{:?}", t.bauds);
    let (m, h) = (t.bauds[0], t.bauds[1]);
    assert_eq!((m.end, m.baud), (UartEnd::Modem, 921_600));
    // After the command and its OK (6 bytes, 0.5 ms at 115200).
    assert!(m.at > ipr_sent + Duration::from_micros(500), "{m:?}");
    assert!(m.at < host_at);
    assert_eq!((h.end, h.baud, h.at), (UartEnd::Host, 921_600, host_at));
    assert_eq!(t.baud_at(UartEnd::Modem, m.at), 921_600);
    assert_eq!(t.baud_at(UartEnd::Host, m.at), 115_200);
}
