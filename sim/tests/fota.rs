//! Module FOTA (`AT+QFOTADL`) per personality: URC sequences, reboots, end codes.

mod common;

use std::time::Duration;

use cellular_ota::client::{Error, Rejection};
use cellular_ota::quectel::file::UploadFile;
use cellular_ota::quectel::fota::{FotaDownload, FotaOptions, SetFotaPath, UpgradeMode};
use cellular_ota::quectel::general::{Attention, Revision};
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
        assert_eq!(c.send(&Revision).unwrap(), target);
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
