//! Complete updates through the simulated SIMCom modules (SIM7600, A7670, SIM7070, SIM800),
//! as a device does them: the library's bring-up with the family taken from the module's
//! identity, then the update flow over `simcom::SimcomHttp`, with faults, into the ESP-IDF
//! sink, judged by the bootloader model. The modules' quirks (OK before the data, the
//! `DATA,` prefix or not, reads that consume, body limits, the A7670's range limit per
//! session) are the simulator's (`cellular_ota_sim`'s `modem::simcom` docs).

mod sim_device;

use cellular_ota::bring_up::{BringUpConfig, bring_up_blocking};
use cellular_ota::client::CountUrcs;
use cellular_ota::client::blocking::Client;
use cellular_ota::ota::mem_sink::MemSink;
use cellular_ota::retry::{Classify, Retry};
use cellular_ota::simcom::bring_up::Simcom;
use cellular_ota::simcom::{Family, SimcomHttp};
use cellular_ota::update::{
    Capability, Failure, Method, Outcome, Stage, Strategy, UpdateConfig, update_with_blocking,
};
use cellular_ota_sim::{ModemConfig, Personality, TestServer, World, WorldConfig};
use sha2::{Digest, Sha256};
use sim_device::{AttemptError, Booted, Device, ImageKind, Report, Setup};

/// Bytes of the test image: above the A7670's and SIM7070's body limits, so those two
/// fetch it in ranges.
const SIZE: usize = 600_000;

fn setup(p: Personality) -> Setup {
    let mut s = Setup::new(p);
    s.size = SIZE;
    s.attempts = 4;
    s
}

fn run(s: Setup) -> (Device, Report) {
    let mut d = Device::new(s);
    let r = d.run(&mut |_, _| {});
    (d, r)
}

/// Every attempt left a bootable device, and the run installed the served image.
fn assert_installed(d: &Device, r: &Report, ctx: &str) {
    for (i, a) in r.attempts.iter().enumerate() {
        assert!(a.boot.valid, "{ctx}: attempt {}: {}", i + 1, a.boot.reason);
        if let Err(AttemptError::BringUp(e)) = &a.result {
            panic!("{ctx}: attempt {}: bring-up failed: {e}", i + 1);
        }
    }
    let sha: [u8; 32] = Sha256::digest(&d.served).into();
    match r.installed() {
        Some(Outcome::Installed { sha256, size, .. }) => {
            assert_eq!(*sha256, sha, "{ctx}");
            assert_eq!(*size as usize, d.served.len(), "{ctx}");
        }
        other => panic!(
            "{ctx}: not installed: {other:?}, last error {:?}",
            r.error()
        ),
    }
    assert_eq!(r.booted, Booted::New, "{ctx}: {}", r.boot.reason);
}

fn expected_method(p: Personality) -> Method {
    match p {
        // No body limit: one read into flash erased ahead.
        Personality::Sim7600 | Personality::Sim800 => Method::StreamErasedAhead,
        // The image is above what the module holds from one response.
        _ => Method::RangedHeader,
    }
}

#[test]
fn every_family_installs_with_its_family_from_the_identity() {
    for p in Personality::SIMCOM {
        let ctx = format!("{p:?}");
        let (d, r) = run(setup(p));
        assert_installed(&d, &r, &ctx);
        assert_eq!(r.attempts.len(), 1, "{ctx}");
        assert_eq!(r.last().method, Some(expected_method(p)), "{ctx}");
        assert_eq!(r.uart_lost, 0, "{ctx}");
    }
}

#[test]
fn every_family_resumes_after_a_dropped_link_a_modem_reboot_an_mcu_reset_and_a_power_cut() {
    let at = SIZE as u64 * 2 / 5;
    let cases: [(&str, Vec<String>, Vec<String>); 4] = [
        (
            "drop-link",
            vec![format!("bytes={}:pdp-deact=0", at / 2)],
            vec![format!(
                "server-close-early={at}@{}",
                sim_device::IMAGE_PATH
            )],
        ),
        (
            "modem-reboot",
            vec![format!("modem-reboot=img+{at}")],
            vec![],
        ),
        ("mcu-reset", vec![format!("mcu-reset=img+{at}")], vec![]),
        ("power-cut", vec![format!("bytes={at}:power-cut=0")], vec![]),
    ];
    for p in Personality::SIMCOM {
        for (name, faults, transient) in &cases {
            let ctx = format!("{p:?} {name}");
            let mut s = setup(p);
            s.faults = faults.clone();
            s.transient_faults = transient.clone();
            let (d, r) = run(s);
            assert_installed(&d, &r, &ctx);
            assert!(
                r.attempts.len() >= 2,
                "{ctx}: {} attempts",
                r.attempts.len()
            );
            let resumed = r.last().resumed_from.unwrap_or(0);
            assert!(resumed > 0, "{ctx}: the last attempt started from zero");
            assert!(
                r.attempts[0].result.is_err(),
                "{ctx}: the fault did not hit"
            );
        }
    }
}

#[test]
fn a_corrupt_image_is_refused_and_the_old_one_boots() {
    for p in Personality::SIMCOM {
        let ctx = format!("{p:?}");
        let mut s = setup(p);
        s.image = ImageKind::Corrupt;
        s.attempts = 1;
        let (_, r) = run(s);
        let e = r.error().expect("refused");
        assert_eq!(e.stage, Stage::Verification, "{ctx}");
        assert!(matches!(e.failure, Failure::HashMismatch), "{ctx}: {e}");
        assert_eq!(r.booted, Booted::Old, "{ctx}");
    }
}

/// Streaming a body above the module's limit gets the module's own code, typed. SIM7070's
/// 602 (no memory) is permanent; the A7670's 706 is SIMCom's "receive/send socket data
/// failed", a network failure in the manual's table, so it is retried like one (each
/// attempt ends the same way here).
#[test]
fn a_body_above_the_module_limit_is_its_typed_code() {
    for (p, code, retry) in [
        (Personality::A7670, 706, Retry::Transient),
        (Personality::Sim7070, 602, Retry::Permanent),
    ] {
        let ctx = format!("{p:?}");
        let mut s = setup(p);
        s.strategy = Strategy::Stream;
        let attempts = s.attempts as usize;
        let (_, r) = run(s);
        let want = if retry == Retry::Permanent {
            1
        } else {
            attempts
        };
        assert_eq!(r.attempts.len(), want, "{ctx}");
        for a in &r.attempts {
            let Err(AttemptError::Update(e)) = &a.result else {
                panic!("{ctx}: {:?}", a.result);
            };
            assert_eq!(e.stage, Stage::Request, "{ctx}");
            let Failure::HttpClient(h) = e.failure else {
                panic!("{ctx}: {e}");
            };
            assert_eq!(h.code, code, "{ctx}");
            assert_eq!(h.retry, retry, "{ctx}");
            assert_eq!(e.code(), Some(code), "{ctx}");
            assert_eq!(e.retry(), retry, "{ctx}");
            assert!(e.meaning().is_some_and(|m| !m.is_empty()), "{ctx}");
        }
        assert_eq!(r.booted, Booted::Old, "{ctx}");
    }
}

/// A module status or error code in place of the server's answer: typed with SIMCom's
/// meaning and retried when transient (the next attempt installs).
#[test]
fn module_codes_in_the_result_are_typed_and_retried() {
    for (p, code) in [
        (Personality::Sim7600, 713),
        (Personality::A7670, 714),
        (Personality::Sim7070, 604),
        (Personality::Sim800, 601),
    ] {
        let ctx = format!("{p:?} {code}");
        let mut s = setup(p);
        s.faults = vec![format!("http-get-error={code}")];
        let (d, r) = run(s);
        assert_installed(&d, &r, &ctx);
        assert_eq!(r.attempts.len(), 2, "{ctx}");
        let Err(AttemptError::Update(e)) = &r.attempts[0].result else {
            panic!("{ctx}: {:?}", r.attempts[0].result);
        };
        let Failure::HttpClient(h) = e.failure else {
            panic!("{ctx}: {e}");
        };
        assert_eq!(h.code, code, "{ctx}");
        assert_eq!(h.retry, Retry::Transient, "{ctx}");
        assert!(!h.meaning.is_empty(), "{ctx}");
    }
}

/// `AT+HTTPREAD` offsets: the SIM7600 counts from the body's start, the A7670 consumes what
/// it read; the body tells them apart with `AT+HTTPREAD?` once per update.
#[test]
fn http_read_offsets_follow_what_the_module_does() {
    let (d, r) = run(setup(Personality::Sim7600));
    assert_installed(&d, &r, "SIM7600");
    let cmds = d.world.modem().commands();
    assert!(
        cmds.iter().any(|c| c == "AT+HTTPREAD=1024,1024"),
        "SIM7600 reads at increasing offsets"
    );
    assert_eq!(cmds.iter().filter(|c| *c == "AT+HTTPREAD?").count(), 2);

    let (d, r) = run(setup(Personality::A7670));
    assert_installed(&d, &r, "A7670");
    let cmds = d.world.modem().commands();
    let reads: Vec<&String> = cmds
        .iter()
        .filter(|c| c.starts_with("AT+HTTPREAD="))
        .collect();
    assert!(reads.len() > 100);
    assert!(
        reads.iter().all(|c| c.starts_with("AT+HTTPREAD=0,")),
        "A7670 reads at offset 0"
    );
    assert_eq!(cmds.iter().filter(|c| *c == "AT+HTTPREAD?").count(), 2);
}

/// The A7670 refuses an eleventh range in one session; the flow's modem restarts the
/// session every eight.
#[test]
fn a7670_ranges_restart_the_session_before_the_module_refuses_them() {
    let mut s = setup(Personality::A7670);
    s.range_size = Some(16 * 1024);
    let (d, r) = run(s);
    assert_installed(&d, &r, "A7670");
    assert_eq!(r.attempts.len(), 1);
    let cmds = d.world.modem().commands();
    let ranges = cmds
        .iter()
        .filter(|c| c.contains("\"USERDATA\",\"Range:"))
        .count();
    let inits = cmds.iter().filter(|c| *c == "AT+HTTPINIT").count();
    assert!(ranges >= 37, "{ranges} ranges");
    assert!(inits >= ranges / 8, "{inits} sessions for {ranges} ranges");
}

/// A SIMCom module at time zero, booted, with the bring-up done; the server serves `files`.
fn booted_world(p: Personality, files: Vec<(String, Vec<u8>)>) -> (World, TestServer) {
    let server = TestServer::start(files).expect("server");
    let world = World::new(WorldConfig::new(ModemConfig::new(p).ready().quiet()));
    world.attach_server(&server);
    (world, server)
}

/// HTTPS the module cannot verify is refused before anything is fetched; the SIM7600 gets
/// its SSL context configured and bound.
#[test]
fn https_is_verified_or_refused() {
    let image = sim_device::make_image(&Setup::new(Personality::Sim7600)).1;
    for p in Personality::SIMCOM {
        let ctx = format!("{p:?}");
        let (world, server) = booted_world(p, vec![("/fw.bin".into(), image.clone())]);
        let url = server.url("/fw.bin").replacen("http://", "https://", 1);
        let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
        let mut c = Client::new(
            world.host_uart(),
            world.clock(),
            &mut rx,
            &mut resp,
            CountUrcs(0),
        );
        let simcom = Simcom::detect();
        let info = bring_up_blocking(
            &mut c,
            &simcom,
            &BringUpConfig::new("internet"),
            &mut |_| {},
        )
        .unwrap_or_else(|e| panic!("{ctx}: {e}"));
        // Every family reports the data connection's address.
        assert!(info.ip.starts_with("10."), "{ctx}: {:?}", info.ip);
        assert_eq!(info.model.as_str(), p.model(), "{ctx}");
        let family = simcom.family().expect("family");
        let mut cfg = UpdateConfig::new(&url);
        cfg.allow_unsigned = true;
        let mut mem = vec![0u8; 1 << 20];
        let mut sink = MemSink::new(&mut mem);
        let mut buf = [0u8; 4096];
        let r = update_with_blocking(
            SimcomHttp::new(c.as_async(), family),
            &mut sink,
            &cfg,
            &mut buf,
            &mut |_| {},
        );
        let cmds = world.modem().commands();
        match family {
            Family::Sim7600 | Family::A76xx => {
                assert!(r.is_ok(), "{ctx}: {r:?}");
                assert!(
                    cmds.iter().any(|c| c == "AT+CSSLCFG=\"authmode\",1,1"),
                    "{ctx}"
                );
                assert!(
                    cmds.iter().any(|c| c == "AT+HTTPPARA=\"SSLCFG\",1"),
                    "{ctx}"
                );
            }
            _ => {
                let e = r.expect_err("refused");
                assert_eq!(e.stage, Stage::Setup, "{ctx}");
                assert!(
                    matches!(
                        e.failure,
                        Failure::Unsupported(Capability::ServerVerification)
                    ),
                    "{ctx}: {e}"
                );
                assert!(world.modem().fetched_urls().is_empty(), "{ctx}: fetched");
            }
        }
    }
}

/// The module's own firmware: the A7670 (`AT+CFOTA` from a URL) and the SIM7070
/// (`AT+HTTPTOFS` into `/fota/update.zip`, then `AT+CFOTA=1`) upgrade to the package's
/// revision; a package for another revision fails with the module's typed verdict; the
/// SIM7600 and SIM800 are refused as unsupported.
#[test]
fn module_fota_upgrades_or_fails_typed() {
    use cellular_ota::simcom::fota::{SimcomFotaConfig, upgrade_modem_blocking};
    use cellular_ota::update::module_fota::{FotaFailure, FotaProgress, FotaStage};
    use cellular_ota_sim::fota_package;

    for p in Personality::SIMCOM {
        for good in [true, false] {
            let ctx = format!("{p:?} good={good}");
            let from = if good {
                p.revision()
            } else {
                "SOME-OTHER-REVISION"
            };
            let package = fota_package(from, "NEW-REVISION-B02", 200_000);
            let (world, server) = booted_world(p, vec![("/update.zip".into(), package)]);
            let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
            let mut c = Client::new(
                world.host_uart(),
                world.clock(),
                &mut rx,
                &mut resp,
                CountUrcs(0),
            );
            let simcom = Simcom::detect();
            bring_up_blocking(
                &mut c,
                &simcom,
                &BringUpConfig::new("internet"),
                &mut |_| {},
            )
            .unwrap_or_else(|e| panic!("{ctx}: {e}"));
            let url = server.url("/update.zip");
            let cfg = SimcomFotaConfig::new(&url, simcom.family().expect("family"));
            let mut seen = Vec::new();
            let r = upgrade_modem_blocking(&mut c, &cfg, &mut |e| seen.push(e));
            match (p, good) {
                (Personality::A7670 | Personality::Sim7070, true) => {
                    let report = r.unwrap_or_else(|e| panic!("{ctx}: {e}"));
                    assert_eq!(report.old_revision.as_str(), p.revision(), "{ctx}");
                    assert_eq!(report.new_revision.as_str(), "NEW-REVISION-B02", "{ctx}");
                    assert_eq!(world.modem().revision(), "NEW-REVISION-B02", "{ctx}");
                    assert!(seen.contains(&FotaProgress::Downloaded), "{ctx}: {seen:?}");
                    assert!(seen.contains(&FotaProgress::Rebooted), "{ctx}: {seen:?}");
                    assert!(seen.contains(&FotaProgress::Upgraded), "{ctx}: {seen:?}");
                }
                (Personality::A7670, false) => {
                    let e = r.expect_err("wrong package");
                    assert_eq!(e.stage, FotaStage::Download, "{ctx}");
                    assert!(
                        matches!(e.failure, FotaFailure::Download { code: 1008, .. }),
                        "{ctx}: {e}"
                    );
                    assert_eq!(world.modem().revision(), p.revision(), "{ctx}");
                }
                (Personality::Sim7070, false) => {
                    let e = r.expect_err("wrong package");
                    assert_eq!(e.stage, FotaStage::Upgrade, "{ctx}");
                    assert!(
                        matches!(e.failure, FotaFailure::Upgrade { code: 7, .. }),
                        "{ctx}: {e}"
                    );
                    assert_eq!(e.code(), Some(7), "{ctx}");
                }
                _ => {
                    let e = r.expect_err("unsupported");
                    assert!(matches!(e.failure, FotaFailure::Unsupported), "{ctx}: {e}");
                    assert!(world.modem().fetched_urls().is_empty(), "{ctx}");
                }
            }
        }
    }
}
