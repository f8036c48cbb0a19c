//! Module FOTA (`AT+QFOTADL`) per personality: URC sequences, reboots, end codes.

mod common;

use std::time::Duration;

use cellular_ota::client::{Error, Rejection};
use cellular_ota::quectel::file::UploadFile;
use cellular_ota::quectel::fota::{FotaDownload, FotaOptions, SetFotaPath, UpgradeMode};
use cellular_ota::quectel::general::{Attention, GetRevision};
use cellular_ota::quectel::urc::{FotaEvent, Urc};
use cellular_ota_sim::{Personality, TestServer, fota_package, fota_package_with_result};
use common::*;

/// Collects FOTA URCs and `RDY`s until the reboot after `END`.
fn fota_events(c: &mut Host<'_>) -> Vec<String> {
    let mut seen = Vec::new();
    let mut ended = false;
    loop {
        let line = c
            .wait_for(Duration::from_secs(120), |l| {
                let t = text(l);
                (t.starts_with("+QIND: \"FOTA\"") || t == "RDY").then_some(t)
            })
            .unwrap_or_else(|e| panic!("{e:?} after {seen:?}"));
        if ended && line == "RDY" {
            seen.push(line);
            return seen;
        }
        if let Some(Ok(Urc::Fota(FotaEvent::End(_)))) = Urc::parse(line.as_bytes()) {
            ended = true;
        }
        // A download-stage failure ends the job without a reboot.
        if let Some(Ok(Urc::Fota(e @ (FotaEvent::HttpEnd { .. } | FotaEvent::FtpEnd { .. })))) =
            Urc::parse(line.as_bytes())
            && e.succeeded() == Some(false)
        {
            seen.push(line);
            return seen;
        }
        seen.push(line);
    }
}

fn stages(events: &[String]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e.strip_prefix("+QIND: \"FOTA\",") {
            Some(rest) => rest
                .split(',')
                .next()
                .unwrap_or("")
                .trim_matches('"')
                .to_string(),
            None => e.clone(),
        })
        .collect::<Vec<_>>()
}

fn dedup(v: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in v {
        if out.last() != Some(&s) {
            out.push(s);
        }
    }
    out
}

#[test]
fn fota_success_per_personality() {
    for p in Personality::ALL {
        let target = format!("{}X", p.revision());
        let server =
            TestServer::start([("pkg.bin", fota_package(p.revision(), &target, 200_000))]).unwrap();
        let world = ready_world(p);
        let urcs = Urcs::default();
        let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
        let mut c = client(&world, &mut rx, &mut resp, &urcs);
        setup(&mut c);
        let url = server.url("/pkg.bin");
        let mut cmd = FotaDownload::url(&url);
        if p.fota_takes_options() {
            cmd = cmd.with_options(FotaOptions {
                upgrade_mode: UpgradeMode::Immediate,
                download_urc_max: 25,
                update_urc_max: Some(10),
            });
        }
        c.send(&cmd).unwrap();
        let t0 = world.elapsed();
        let events = fota_events(&mut c);
        let took = world.elapsed() - t0;
        let s = dedup(stages(&events));
        let expected: Vec<&str> = match p {
            Personality::Ec200u => vec![
                "HTTPSTART",
                "DOWNLOADING",
                "HTTPEND",
                "RDY",
                "START",
                "UPDATING",
                "END",
                "RDY",
            ],
            Personality::Ec200t => vec![
                "HTTPSTART",
                "DOWNLOADING",
                "HTTPEND",
                "RDY",
                "START",
                "UPDATING",
                "RDY",
                "UPDATING",
                "END",
                "RDY",
            ],
            Personality::Eg06 => vec![
                "HTTPSTART",
                "HTTPEND",
                "RDY",
                "START",
                "UPDATING",
                "END",
                "RDY",
            ],
            other => panic!("{other:?} is not a Quectel personality"),
        };
        assert_eq!(s, expected, "{p:?}: {events:?}");
        if p.fota_takes_options() {
            let downloading = events.iter().filter(|e| e.contains("DOWNLOADING")).count();
            assert_eq!(downloading, 4, "25 % steps");
        }
        assert!(events.contains(&"+QIND: \"FOTA\",\"HTTPEND\",0".to_string()));
        assert!(events.contains(&"+QIND: \"FOTA\",\"END\",0".to_string()));
        assert!(took > Duration::from_secs(8 * 60 + 30), "{took:?}");
        // After the final reboot: the boot URCs, echo on again, and the new revision.
        world.advance(Duration::from_secs(9));
        c.reset();
        c.poll_urcs().unwrap();
        world.host_uart().clear_rx();
        setup(&mut c);
        assert_eq!(c.send(&GetRevision).unwrap(), target);
        assert_eq!(world.modem().revision(), target);
        // Full boots: the start and the reboot into the new firmware (the reboots inside
        // the update print only RDY).
        assert_eq!(world.modem().boots(), 2);
    }
}

#[test]
fn fota_failures_carry_the_personality_codes() {
    let cases: Vec<(Personality, Vec<u8>, u16)> = vec![
        (Personality::Ec200t, fota_package("OTHER", "NEW", 1000), 507),
        (Personality::Eg06, fota_package("OTHER", "NEW", 1000), 510),
        (Personality::Ec200u, fota_package("OTHER", "NEW", 1000), 510),
        (Personality::Eg06, data(5000, 1), 505),
        (
            Personality::Ec200t,
            fota_package_with_result(Personality::Ec200t.revision(), "NEW", 506, 1000),
            506,
        ),
    ];
    for (p, pkg, code) in cases {
        let server = TestServer::start([("pkg.bin", pkg)]).unwrap();
        let world = ready_world(p);
        let urcs = Urcs::default();
        let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
        let mut c = client(&world, &mut rx, &mut resp, &urcs);
        setup(&mut c);
        c.send(&FotaDownload::url(&server.url("/pkg.bin"))).unwrap();
        let events = fota_events(&mut c);
        assert!(
            events.contains(&format!("+QIND: \"FOTA\",\"END\",{code}")),
            "{p:?}: {events:?}"
        );
        assert_eq!(
            world.modem().revision(),
            p.revision(),
            "failed upgrades keep the old firmware"
        );
    }
}

#[test]
fn download_stage_failures() {
    let server = TestServer::start([("pkg.bin", vec![0u8; 10])]).unwrap();
    for (p, url, expect) in [
        (
            Personality::Ec200t,
            server.url("/missing.bin"),
            "+QIND: \"FOTA\",\"HTTPEND\",701",
        ),
        (
            Personality::Eg06,
            "http://no.such.host/pkg.bin".to_string(),
            "+QIND: \"FOTA\",\"HTTPEND\",714",
        ),
        (
            Personality::Ec200u,
            "http://127.0.0.1:9/pkg.bin".to_string(),
            "+QIND: \"FOTA\",\"HTTPEND\",716",
        ),
        (
            Personality::Ec200t,
            "ftp://u:p@127.0.0.1:21/pkg.bin".to_string(),
            "+QIND: \"FOTA\",\"FTPEND\",609",
        ),
    ] {
        let world = ready_world(p);
        let urcs = Urcs::default();
        let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
        let mut c = client(&world, &mut rx, &mut resp, &urcs);
        setup(&mut c);
        c.send(&FotaDownload::url(&url)).unwrap();
        let events = fota_events(&mut c);
        assert_eq!(events.last().map(String::as_str), Some(expect), "{p:?}");
        assert!(!world.modem().fota_running());
        // The module stayed up.
        c.send(&Attention).unwrap();
    }
}

#[test]
fn ec200u_path_trap_and_option_rules() {
    let server = TestServer::start([(
        "pkg.bin",
        fota_package(Personality::Ec200u.revision(), "N", 100),
    )])
    .unwrap();
    let world = ready_world(Personality::Ec200u);
    let urcs = Urcs::default();
    let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
    let mut c = client(&world, &mut rx, &mut resp, &urcs);
    setup(&mut c);
    // The crate refuses this path (it knows the trap), so send it raw.
    assert!(c.send(&SetFotaPath { path: "UFS" }).is_err());
    let out = raw(
        &world,
        b"AT+QCFG=\"fota/path\",\"UFS\"\r",
        Duration::from_millis(20),
    );
    assert!(text(&out).ends_with("\r\nOK\r\n"), "{:?}", text(&out));
    c.send(&FotaDownload::url(&server.url("/pkg.bin"))).unwrap();
    let events = fota_events(&mut c);
    assert_eq!(events.last().unwrap(), "+QIND: \"FOTA\",\"HTTPEND\",608");
    // EC200U: no FTP, no local path.
    assert!(matches!(
        c.send(&FotaDownload::url("ftp://u:p@127.0.0.1:21/x")),
        Err(Error::Rejected(Rejection::Error))
    ));
    assert!(c.send(&FotaDownload::local_path("/cache/ufs/x")).is_err());
    // EG06: no options.
    let world = ready_world(Personality::Eg06);
    let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
    let mut c = client(&world, &mut rx, &mut resp, &urcs);
    setup(&mut c);
    let r = c.send(
        &FotaDownload::url(&server.url("/pkg.bin")).with_options(FotaOptions {
            upgrade_mode: UpgradeMode::Immediate,
            download_urc_max: 50,
            update_urc_max: None,
        }),
    );
    assert!(matches!(r, Err(Error::Rejected(Rejection::Error))));
}

#[test]
fn eg06_upgrades_from_a_local_package_and_ignores_commands_while_upgrading() {
    let p = Personality::Eg06;
    let world = ready_world(p);
    let urcs = Urcs::default();
    let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
    let mut c = client(&world, &mut rx, &mut resp, &urcs);
    setup(&mut c);
    let pkg = fota_package(p.revision(), "EG06ELAR04A06M4G", 30_000);
    c.send(&UploadFile::new("UFS:update.zip", &pkg))
        .unwrap()
        .verify(&pkg)
        .unwrap();
    c.send(&FotaDownload::local_path("/cache/ufs/update.zip"))
        .unwrap();
    c.wait_for(Duration::from_secs(60), |l| (l == b"RDY").then_some(()))
        .unwrap();
    // In the upgrade stage the AT port does not answer.
    assert!(matches!(c.send(&Attention), Err(Error::Timeout)));
    let events = fota_events(&mut c);
    assert!(
        events.contains(&"+QIND: \"FOTA\",\"END\",0".to_string()),
        "{events:?}"
    );
    assert_eq!(world.modem().revision(), "EG06ELAR04A06M4G");
}

// ---------------------------------------------------------------------------------------------
// The library's host-file flow (`AT+QFOTADL="FILE:<len>"`) against the simulated EC200T.
// ---------------------------------------------------------------------------------------------

mod file {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::Duration;

    use cellular_ota::client::{Error, Rejection, asynch};
    use cellular_ota::quectel::error::FileEndError;
    use cellular_ota::quectel::general::{Attention, SetFlowControl};
    use cellular_ota::update::module_fota::{
        FilePacing, FotaFailure, FotaProgress, FotaReport, FotaStage, HostFileConfig,
        upgrade_modem_from_host, upgrade_modem_from_host_blocking,
        upgrade_modem_from_slice_blocking,
    };
    use cellular_ota_sim::{
        FotaTiming, ModemConfig, Personality, UartConfig, World, WorldConfig, block_on,
        fota_package,
    };

    use super::common::*;

    const P: Personality = Personality::Ec200t;
    const LEN: usize = 100_000;

    /// A quiet, ready module at `baud` with short reboots and upgrade (the stream is what
    /// these tests look at).
    fn file_world(p: Personality, baud: u32) -> World {
        let mut m = ModemConfig::new(p).ready().quiet();
        m.baud = baud;
        m.fota = FotaTiming {
            start_delay: Duration::from_millis(200),
            reboot_time: Duration::from_secs(2),
            upgrade_time: Duration::from_secs(10),
        };
        World::new(WorldConfig::new(m).with_uart(UartConfig::default().with_baud(baud)))
    }

    fn target() -> String {
        format!("{}X", P.revision())
    }

    /// Progress events with the virtual time they came at.
    type Events = Rc<RefCell<Vec<(Duration, FotaProgress)>>>;

    fn recorder(world: &World, events: &Events) -> impl FnMut(FotaProgress) {
        let (w, ev) = (world.clone(), events.clone());
        move |p| ev.borrow_mut().push((w.elapsed(), p))
    }

    fn at(events: &Events, want: FotaProgress) -> Duration {
        events
            .borrow()
            .iter()
            .find(|(_, p)| *p == want)
            .map(|(t, _)| *t)
            .unwrap_or_else(|| panic!("{want:?} missing from {:?}", events.borrow()))
    }

    /// Virtual time from `OK` to the last byte written.
    fn stream_time(events: &Events) -> Duration {
        let total = LEN as u32;
        at(events, FotaProgress::Sent { sent: total, total }) - at(events, FotaProgress::Accepted)
    }

    fn check_success(world: &World, r: FotaReport, pkg: &[u8], events: &Events) {
        assert!(r.old_revision.starts_with(P.revision()), "{r:?}");
        assert_eq!(
            r.new_revision.as_str(),
            format!("{}_01.001.01.001", target())
        );
        assert_eq!(world.modem().revision(), target());
        // The module stored exactly the bytes the host sent.
        assert!(world.modem().fota_file().unwrap() == pkg, "package differs");
        let stats = world.modem().fota_file_stats().unwrap();
        assert!(stats.complete && stats.lost == 0, "{stats:?}");
        assert!(stats.max_fill <= 4096, "{stats:?}");
        let t = world.transcript();
        for urc in [
            "+QIND: \"FOTA\",\"FILESTART\"",
            "+QIND: \"FOTA\",\"FILEEND\",0",
            "+QIND: \"FOTA\",\"END\",0",
        ] {
            assert!(t.contains(urc), "{urc} missing");
        }
        use FotaProgress::*;
        let seen: Vec<FotaProgress> = events.borrow().iter().map(|(_, p)| *p).collect();
        for want in [
            Accepted,
            DownloadStarted,
            Downloading(100),
            Downloaded,
            Rebooted,
            UpgradeStarted,
            Updating(100),
            Upgraded,
        ] {
            assert!(seen.contains(&want), "{want:?} missing from {seen:?}");
        }
        // Bytes sent are reported in steps, in order, up to the whole package.
        let sent: Vec<u32> = seen
            .iter()
            .filter_map(|p| match p {
                Sent { sent, total } => {
                    assert_eq!(*total, LEN as u32);
                    Some(*sent)
                }
                _ => None,
            })
            .collect();
        assert!(sent.len() >= 20, "{sent:?}");
        assert!(sent.windows(2).all(|w| w[0] < w[1]), "{sent:?}");
        assert_eq!(sent.last(), Some(&(LEN as u32)));
    }

    #[test]
    fn file_fota_with_rts_cts_is_held_at_the_flash_rate() {
        let world = file_world(P, 921_600);
        let urcs = Urcs::default();
        let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
        let mut c = client(&world, &mut rx, &mut resp, &urcs);
        setup(&mut c);
        c.send(&SetFlowControl::HARDWARE).unwrap();
        let pkg = fota_package(P.revision(), &target(), LEN);
        let events = Events::default();
        let cfg = HostFileConfig::new(FilePacing::FlowControl);
        let r =
            upgrade_modem_from_slice_blocking(&mut c, &cfg, &pkg, &mut recorder(&world, &events))
                .unwrap();
        check_success(&world, r, &pkg, &events);
        // The wire (92 kB/s) is six times faster than the module's flash: CTS held the host.
        assert!(world.uart_stats().cts_pauses > 0);
        let t = stream_time(&events);
        eprintln!(
            "100 KB with RTS/CTS at 921600 baud: stream {t:?}, total {:?}",
            world.elapsed()
        );
        // (100 000 - 4 096 bytes of buffer) / 15 000 bytes/s = 6.4 s.
        assert!(
            (Duration::from_millis(6300)..Duration::from_millis(6800)).contains(&t),
            "{t:?}"
        );
    }

    #[test]
    fn file_fota_paced_without_flow_control() {
        let world = file_world(P, 921_600);
        let urcs = Urcs::default();
        let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
        let mut c = client(&world, &mut rx, &mut resp, &urcs);
        setup(&mut c);
        let pkg = fota_package(P.revision(), &target(), LEN);
        let events = Events::default();
        let cfg = HostFileConfig::new(FilePacing::DOCUMENTED);
        let r =
            upgrade_modem_from_slice_blocking(&mut c, &cfg, &pkg, &mut recorder(&world, &events))
                .unwrap();
        check_success(&world, r, &pkg, &events);
        assert_eq!(world.uart_stats().cts_pauses, 0);
        let t = stream_time(&events);
        eprintln!(
            "100 KB paced at 15 000 B/s, 921600 baud: stream {t:?}, total {:?}",
            world.elapsed()
        );
        // 100 000 bytes at 15 000 bytes/s: 6.67 s, never faster.
        assert!(
            (Duration::from_millis(6660)..Duration::from_millis(6800)).contains(&t),
            "{t:?}"
        );
    }

    #[test]
    fn file_fota_at_115200_needs_neither() {
        // The wire (11 520 bytes/s) is slower than the flash: nothing can be lost.
        let world = file_world(P, 115_200);
        let urcs = Urcs::default();
        let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
        let mut c = client(&world, &mut rx, &mut resp, &urcs);
        setup(&mut c);
        let pkg = fota_package(P.revision(), &target(), LEN);
        let events = Events::default();
        let cfg = HostFileConfig::new(FilePacing::FlowControl);
        let r =
            upgrade_modem_from_slice_blocking(&mut c, &cfg, &pkg, &mut recorder(&world, &events))
                .unwrap();
        check_success(&world, r, &pkg, &events);
        let t = stream_time(&events);
        eprintln!("100 KB unpaced at 115200 baud: stream {t:?}");
        assert!(t >= Duration::from_millis(8400), "{t:?}");
    }

    #[test]
    fn file_fota_too_fast_without_flow_control_reports_the_loss() {
        for pacing in [
            FilePacing::FlowControl,
            FilePacing::Paced {
                bytes_per_sec: 60_000,
                write_size: 32,
            },
        ] {
            let world = file_world(P, 921_600);
            let urcs = Urcs::default();
            let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
            let mut c = client(&world, &mut rx, &mut resp, &urcs);
            setup(&mut c);
            let pkg = fota_package(P.revision(), &target(), LEN);
            let cfg = HostFileConfig::new(pacing);
            let e = upgrade_modem_from_slice_blocking(&mut c, &cfg, &pkg, &mut |_| {}).unwrap_err();
            assert_eq!(e.stage, FotaStage::Download, "{pacing:?}");
            assert!(
                matches!(
                    e.failure,
                    FotaFailure::FileEnd {
                        error: FileEndError::DownloadError,
                        sent
                    } if sent == LEN as u32
                ),
                "{pacing:?}: {e}"
            );
            assert_eq!(e.code(), Some(500));
            assert_eq!(e.meaning(), Some("file download error"));
            let stats = world.modem().fota_file_stats().unwrap();
            eprintln!("too fast without flow control ({pacing:?}): {stats:?}");
            assert!(!stats.complete && stats.lost > 0, "{stats:?}");
            assert_eq!(stats.received as u64 + stats.lost, LEN as u64, "{stats:?}");
            // No upgrade, no reboot: the module answers and keeps its firmware.
            assert_eq!(world.modem().revision(), P.revision());
            assert!(!world.modem().fota_running());
            c.send(&Attention).unwrap();
        }
    }

    /// A source that fails after `ok` bytes.
    struct Failing {
        data: Vec<u8>,
        pos: usize,
        ok: usize,
    }

    impl embedded_io::ErrorType for Failing {
        type Error = embedded_io::ErrorKind;
    }

    impl embedded_io::Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
            if self.pos >= self.ok {
                return Err(embedded_io::ErrorKind::Other);
            }
            let n = buf.len().min(self.ok - self.pos).min(100);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    #[test]
    fn file_fota_short_or_failing_source() {
        let pkg = fota_package(P.revision(), &target(), 20_000);
        // Short: the source ends after 12 000 of the announced 20 000 bytes.
        let world = file_world(P, 115_200);
        let urcs = Urcs::default();
        let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
        let mut c = client(&world, &mut rx, &mut resp, &urcs);
        setup(&mut c);
        let cfg = HostFileConfig::new(FilePacing::DOCUMENTED);
        let e = upgrade_modem_from_host_blocking(&mut c, &cfg, 20_000, &pkg[..12_000], &mut |_| {})
            .unwrap_err();
        assert_eq!(e.stage, FotaStage::Download);
        assert!(
            matches!(
                e.failure,
                FotaFailure::SourceEnded {
                    read: 12_000,
                    length: 20_000
                }
            ),
            "{e}"
        );
        // The module gives up on the rest after its silence and stays on its firmware.
        c.wait_for(Duration::from_secs(10), |l| {
            (l == b"+QIND: \"FOTA\",\"FILEEND\",500").then_some(())
        })
        .unwrap();
        assert_eq!(world.modem().fota_file_stats().unwrap().received, 12_000);
        c.send(&Attention).unwrap();

        // Failing: a read error after 5 000 bytes.
        let world = file_world(P, 115_200);
        let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
        let mut c = client(&world, &mut rx, &mut resp, &urcs);
        setup(&mut c);
        let src = Failing {
            data: pkg.clone(),
            pos: 0,
            ok: 5_000,
        };
        let e =
            upgrade_modem_from_host_blocking(&mut c, &cfg, 20_000, src, &mut |_| {}).unwrap_err();
        assert!(
            matches!(
                e.failure,
                FotaFailure::Source {
                    kind: embedded_io::ErrorKind::Other,
                    sent
                } if sent <= 5_000
            ),
            "{e}"
        );
    }

    #[test]
    fn file_fota_wrong_source_package_fails_with_the_modules_end_code() {
        let world = file_world(P, 921_600);
        let urcs = Urcs::default();
        let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
        let mut c = client(&world, &mut rx, &mut resp, &urcs);
        setup(&mut c);
        c.send(&SetFlowControl::HARDWARE).unwrap();
        let pkg = fota_package("OTHER", "NEW", 30_000);
        let cfg = HostFileConfig::new(FilePacing::FlowControl);
        let e = upgrade_modem_from_slice_blocking(&mut c, &cfg, &pkg, &mut |_| {}).unwrap_err();
        assert_eq!(e.stage, FotaStage::Upgrade);
        assert!(
            matches!(e.failure, FotaFailure::Upgrade { code: 507, meaning } if meaning == "package version mismatch"),
            "{e}"
        );
        // The transfer itself was whole.
        assert!(world.modem().fota_file().unwrap() == pkg);
        assert_eq!(world.modem().revision(), P.revision());
    }

    #[test]
    fn file_fota_is_refused_outside_the_asr_family() {
        for p in [Personality::Ec200u, Personality::Eg06] {
            let world = file_world(p, 115_200);
            let urcs = Urcs::default();
            let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
            let mut c = client(&world, &mut rx, &mut resp, &urcs);
            setup(&mut c);
            let pkg = fota_package(p.revision(), "NEW", 1_000);
            let cfg = HostFileConfig::new(FilePacing::DOCUMENTED);
            let e = upgrade_modem_from_slice_blocking(&mut c, &cfg, &pkg, &mut |_| {}).unwrap_err();
            assert_eq!(e.stage, FotaStage::Request, "{p:?}");
            assert!(
                matches!(
                    e.failure,
                    FotaFailure::Modem(Error::Rejected(Rejection::Error))
                ),
                "{p:?}: {e}"
            );
            // Nothing was streamed: the module still takes commands.
            c.send(&Attention).unwrap();
        }
    }

    #[test]
    fn file_fota_async_with_rts_cts() {
        let world = file_world(P, 921_600);
        let urcs = Urcs::default();
        let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
        let mut c = asynch::Client::new(
            world.host_uart(),
            world.clock(),
            &mut rx,
            &mut resp,
            urcs.clone(),
        );
        block_on(async {
            c.send(&Attention).await.unwrap();
            c.send(&SetFlowControl::HARDWARE).await.unwrap();
        });
        let pkg = fota_package(P.revision(), &target(), LEN);
        let events = Events::default();
        let cfg = HostFileConfig::new(FilePacing::FlowControl);
        let mut progress = recorder(&world, &events);
        let r = block_on(upgrade_modem_from_host(
            &mut c,
            &cfg,
            LEN as u32,
            &pkg[..],
            &mut progress,
        ))
        .unwrap();
        check_success(&world, r, &pkg, &events);
        assert!(world.uart_stats().cts_pauses > 0);
    }
}
