//! The module FOTA flow against recorded URC sequences for each chipset family
//! (quectel-at.md §8; the sequences follow fixtures/fota_*.txt).

mod common;

use cellular_ota::client::blocking;
use cellular_ota::quectel::ChipFamily;
use cellular_ota::quectel::fota::{FotaOptions, UpgradeMode};
use cellular_ota::update::module_fota::{
    FotaFailure, FotaProgress, FotaStage, ModemFotaConfig, upgrade_modem_blocking,
};
use common::*;

fn qgmr(rev: &str) -> Vec<Step> {
    vec![
        expect("AT+QGMR\r"),
        reply(format!("\r\n{rev}\r\n\r\nOK\r\n")),
    ]
}

fn urc(after_ms: u64, s: &str) -> Step {
    reply_after(after_ms, format!("\r\n{s}\r\n"))
}

fn run(
    script: Vec<Step>,
    cfg: &ModemFotaConfig<'_>,
) -> (Result<(String, String), String>, Vec<FotaProgress>, Sim) {
    let sim = Sim::new(script);
    let (mut rx, mut resp) = ([0u8; 512], [0u8; 256]);
    let mut client =
        blocking::Client::new(sim.port(), sim.clock(), &mut rx, &mut resp, Urcs::default());
    let mut events = Vec::new();
    let r = upgrade_modem_blocking(&mut client, cfg, &mut |p| events.push(p))
        .map(|r| (r.old_revision.to_string(), r.new_revision.to_string()))
        .map_err(|e| format!("{e} | code={:?} meaning={:?}", e.code(), e.meaning()));
    (r, events, sim)
}

#[test]
fn asr_http_success_through_two_reboots() {
    let mut s = qgmr("EC200TCNDAR02A01M16_01.001.01.001");
    s.extend([
        expect("AT+QCFG=\"fota/cid\",1\r"),
        reply("\r\nOK\r\n"),
        expect("AT+QFOTADL=\"http://example.com/update.bin\",0,50,50\r"),
        reply("\r\nOK\r\n"),
        urc(2000, "+QIND: \"FOTA\",\"HTTPSTART\""),
        urc(5000, "+QIND: \"FOTA\",\"DOWNLOADING\",10"),
        urc(50_000, "+QIND: \"FOTA\",\"DOWNLOADING\",100"),
        urc(100, "+QIND: \"FOTA\",\"HTTPEND\",0"),
        port_error(200, 3),
        urc(30_000, "RDY"),
        urc(5000, "+QIND: \"FOTA\",\"START\""),
        urc(60_000, "+QIND: \"FOTA\",\"UPDATING\",7"),
        urc(200_000, "+QIND: \"FOTA\",\"UPDATING\",47"),
        urc(30_000, "RDY"),
        urc(100_000, "+QIND: \"FOTA\",\"UPDATING\",96"),
        urc(100_000, "+QIND: \"FOTA\",\"END\",0"),
        urc(20_000, "RDY"),
        expect("AT\r"),
        reply("\r\nOK\r\n"),
    ]);
    s.extend(qgmr("EC200TCNDAR02A02M16_01.001.01.001"));
    let mut cfg = ModemFotaConfig::new("http://example.com/update.bin", ChipFamily::Asr);
    cfg.options = Some(FotaOptions {
        upgrade_mode: UpgradeMode::RebootThenUpgrade,
        download_urc_max: 50,
        update_urc_max: Some(50),
    });
    let (r, events, sim) = run(s, &cfg);
    let (old, new) = r.unwrap();
    sim.assert_done();
    assert_eq!(old, "EC200TCNDAR02A01M16_01.001.01.001");
    assert_eq!(new, "EC200TCNDAR02A02M16_01.001.01.001");
    use FotaProgress::*;
    for want in [
        Accepted,
        DownloadStarted,
        Downloading(100),
        Downloaded,
        PortLost,
        Rebooted,
        UpgradeStarted,
        Updating(96),
        Upgraded,
    ] {
        assert!(events.contains(&want), "{want:?} missing from {events:?}");
    }
}

#[test]
fn qualcomm_https_spelling_and_wrong_package() {
    let mut s = qgmr("EG18EAPAR01A12M4G_01.001.01.001");
    s.extend([
        expect("AT+QFOTADL=\"https://example.com/delta.zip\"\r"),
        reply("\r\nOK\r\n"),
        urc(1000, "+QIND: \"FOTA\",\"HTTPSSTART\""),
        urc(60_000, "+QIND: \"FOTA\",\"HTTPSEND\",0"),
        urc(30_000, "RDY"),
        urc(1000, "+QIND: \"FOTA\",\"START\""),
        urc(1000, "+QIND: \"FOTA\",\"UPDATING\",1"),
        urc(1000, "+QIND: \"FOTA\",\"END\",510"),
    ]);
    let cfg = ModemFotaConfig::new("https://example.com/delta.zip", ChipFamily::Qualcomm);
    let (r, _, sim) = run(s, &cfg);
    let e = r.unwrap_err();
    assert!(
        e.contains("at upgrade") && e.contains("510") && e.contains("source firmware"),
        "{e}"
    );
    sim.assert_done();
}

#[test]
fn ec200u_path_trap_608_is_decoded() {
    let mut s = qgmr("EC200UCNAAR01A04M08_01.001.01.001");
    s.extend([
        expect("AT+QCFG=\"fota/path\",\"UFS:\"\r"),
        reply("\r\nOK\r\n"),
        expect("AT+QCFG=\"fota/cid\",1\r"),
        reply("\r\nOK\r\n"),
        expect("AT+QFOTADL=\"http://example.com/ec200u.pack\",1,50,100\r"),
        reply("\r\nOK\r\n"),
        urc(500, "+QIND: \"FOTA\",\"HTTPSTART\""),
        urc(500, "+QIND: \"FOTA\",\"HTTPEND\",608"),
    ]);
    let mut cfg = ModemFotaConfig::new("http://example.com/ec200u.pack", ChipFamily::Unisoc);
    cfg.options = Some(FotaOptions {
        upgrade_mode: UpgradeMode::Immediate,
        download_urc_max: 50,
        update_urc_max: Some(100),
    });
    let (r, _, sim) = run(s, &cfg);
    let e = r.unwrap_err();
    assert!(e.contains("at download") && e.contains("608"), "{e}");
    sim.assert_done();
}

#[test]
fn silence_after_ok_times_out_at_the_start_deadline() {
    let mut s = qgmr("EG06ELAR03A01M4G");
    s.extend([
        expect("AT+QFOTADL=\"http://example.com/x.zip\"\r"),
        reply("\r\nOK\r\n"),
    ]);
    let cfg = ModemFotaConfig::new("http://example.com/x.zip", ChipFamily::Qualcomm);
    let sim_clock_start;
    let (r, _, sim) = {
        let out = run(s, &cfg);
        sim_clock_start = 0;
        out
    };
    let e = r.unwrap_err();
    assert!(
        e.contains("at download") && e.contains("no FOTA report"),
        "{e}"
    );
    let waited = sim.now_ms() - sim_clock_start;
    assert!((60_000..61_000).contains(&waited), "{waited}");
}

#[test]
fn same_revision_after_end_0_is_not_success() {
    let mut s = qgmr("BG96MAR02A07M1G");
    s.extend([
        expect("AT+QFOTADL=\"http://example.com/bg96.zip\"\r"),
        reply("\r\nOK\r\n"),
        urc(100, "+QIND: \"FOTA\",\"HTTPSTART\""),
        urc(100, "+QIND: \"FOTA\",\"HTTPEND\",0"),
        urc(100, "+QIND: \"FOTA\",\"START\""),
        urc(100, "+QIND: \"FOTA\",\"UPDATING\",50"),
        urc(100, "+QIND: \"FOTA\",\"RESTORE\",20"),
        urc(100, "+QIND: \"FOTA\",\"END\",0"),
        expect("AT\r"),
        reply("\r\nOK\r\n"),
    ]);
    s.extend(qgmr("BG96MAR02A07M1G"));
    let cfg = ModemFotaConfig::new("http://example.com/bg96.zip", ChipFamily::Qualcomm);
    let (r, events, sim) = run(s, &cfg);
    let e = r.unwrap_err();
    assert!(
        e.contains("at confirmation") && e.contains("did not change"),
        "{e}"
    );
    assert!(events.contains(&FotaProgress::Restoring(20)));
    sim.assert_done();
    let _ = (FotaStage::Confirm, core::mem::size_of::<FotaFailure<()>>());
}

// ---------------------------------------------------------------------------------------------
// A package the host streams (`AT+QFOTADL="FILE:<len>"`): the start cues the reference leaves
// open, and URCs during the stream. (The simulator's EC200T runs the whole flow in
// sim/tests/fota.rs.)
// ---------------------------------------------------------------------------------------------

mod host_file {
    use cellular_ota::client::blocking;
    use cellular_ota::quectel::error::FileEndError;
    use cellular_ota::update::module_fota::{
        FilePacing, FotaError, FotaFailure, FotaProgress, FotaReport, FotaStage, HostFileConfig,
        upgrade_modem_from_slice_blocking,
    };

    use super::common::*;
    use super::{qgmr, urc};

    fn package(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 256) as u8).collect()
    }

    /// The outcome, the progress events with their time (ms), and the script.
    type Run = (
        Result<FotaReport, FotaError<embedded_io::ErrorKind>>,
        Vec<(u64, FotaProgress)>,
        Sim,
    );

    fn run(script: Vec<Step>, cfg: &HostFileConfig, pkg: &[u8]) -> Run {
        let sim = Sim::new(script);
        let (mut rx, mut resp) = ([0u8; 512], [0u8; 256]);
        let mut client =
            blocking::Client::new(sim.port(), sim.clock(), &mut rx, &mut resp, Urcs::default());
        let mut events = Vec::new();
        let s2 = sim.clone();
        let r = upgrade_modem_from_slice_blocking(&mut client, cfg, pkg, &mut |p| {
            events.push((s2.now_ms(), p))
        });
        (r, events, sim)
    }

    fn after_fileend_ok() -> Vec<Step> {
        let mut s = vec![
            urc(100, "+QIND: \"FOTA\",\"FILEEND\",0"),
            urc(20_000, "RDY"),
            urc(1000, "+QIND: \"FOTA\",\"START\""),
            urc(1000, "+QIND: \"FOTA\",\"UPDATING\",50"),
            urc(1000, "+QIND: \"FOTA\",\"END\",0"),
            urc(5000, "RDY"),
            expect("AT\r"),
            reply("\r\nOK\r\n"),
        ];
        s.extend(qgmr("EC200TCNDAR02A02M16_01.001.01.001"));
        s
    }

    #[test]
    fn connect_prompt_then_package_then_ok() {
        let pkg = package(1000);
        let mut s = qgmr("EC200TCNDAR02A01M16_01.001.01.001");
        s.extend([
            expect("AT+QFOTADL=\"FILE:1000\"\r"),
            reply("\r\nCONNECT\r\n"),
            expect(&pkg),
            reply("\r\nOK\r\n"),
            urc(10, "+QIND: \"FOTA\",\"FILESTART\""),
        ]);
        s.extend(after_fileend_ok());
        let (r, events, sim) = run(s, &HostFileConfig::new(FilePacing::FlowControl), &pkg);
        let r = r.unwrap();
        sim.assert_done();
        assert_eq!(r.new_revision.as_str(), "EC200TCNDAR02A02M16_01.001.01.001");
        let seen: Vec<FotaProgress> = events.iter().map(|(_, p)| *p).collect();
        use FotaProgress::*;
        assert_eq!(seen[0], Accepted, "{seen:?}");
        assert_eq!(
            seen[1],
            Sent {
                sent: 1000,
                total: 1000
            },
            "{seen:?}"
        );
        for want in [
            DownloadStarted,
            Downloaded,
            Rebooted,
            UpgradeStarted,
            Upgraded,
        ] {
            assert!(seen.contains(&want), "{want:?} missing from {seen:?}");
        }
    }

    #[test]
    fn ok_then_filestart_then_package() {
        let pkg = package(2000);
        let mut s = qgmr("EC200TCNDAR02A01M16_01.001.01.001");
        s.extend([
            expect("AT+QFOTADL=\"FILE:2000\",0,5,5\r"),
            reply("\r\nOK\r\n"),
            urc(300, "+QIND: \"FOTA\",\"FILESTART\""),
            expect(&pkg),
            urc(50, "+QIND: \"FOTA\",\"DOWNLOADING\",100"),
        ]);
        s.extend(after_fileend_ok());
        let mut cfg = HostFileConfig::new(FilePacing::DOCUMENTED);
        cfg.options = Some(cellular_ota::quectel::fota::FotaOptions {
            upgrade_mode: cellular_ota::quectel::fota::UpgradeMode::RebootThenUpgrade,
            download_urc_max: 5,
            update_urc_max: Some(5),
        });
        let (r, events, sim) = run(s, &cfg, &pkg);
        r.unwrap();
        sim.assert_done();
        let t = |want: FotaProgress| {
            events
                .iter()
                .find(|(_, p)| *p == want)
                .map(|(t, _)| *t)
                .unwrap_or_else(|| panic!("{want:?} missing from {events:?}"))
        };
        // The stream starts at FILESTART and takes 2000 bytes / 15 000 bytes/s = 133 ms.
        let started = t(FotaProgress::DownloadStarted);
        let done = t(FotaProgress::Sent {
            sent: 2000,
            total: 2000,
        });
        assert!((130..140).contains(&(done - started)), "{events:?}");
        assert!(t(FotaProgress::Downloading(100)) > done);
    }

    #[test]
    fn ok_without_filestart_streams_after_the_grace() {
        let pkg = package(64);
        let mut s = qgmr("EC200TCNDAR02A01M16_01.001.01.001");
        s.extend([
            expect("AT+QFOTADL=\"FILE:64\"\r"),
            reply("\r\nOK\r\n"),
            expect(&pkg),
            urc(10, "+QIND: \"FOTA\",\"FILESTART\""),
        ]);
        s.extend(after_fileend_ok());
        let (r, events, sim) = run(s, &HostFileConfig::new(FilePacing::DOCUMENTED), &pkg);
        r.unwrap();
        sim.assert_done();
        let accepted = events[0].0;
        let (sent_at, _) = events
            .iter()
            .find(|(_, p)| matches!(p, FotaProgress::Sent { .. }))
            .unwrap();
        assert!((2000..2100).contains(&(sent_at - accepted)), "{events:?}");
    }

    #[test]
    fn fileend_error_during_the_stream_stops_it() {
        let pkg = package(10_000);
        let mut s = qgmr("EC200TCNDAR02A01M16_01.001.01.001");
        s.extend([
            expect("AT+QFOTADL=\"FILE:10000\"\r"),
            reply("\r\nOK\r\n"),
            urc(10, "+QIND: \"FOTA\",\"FILESTART\""),
            expect(&pkg[..1024]),
            reply("\r\n+QIND: \"FOTA\",\"FILEEND\",500\r\n"),
        ]);
        let (r, _, sim) = run(s, &HostFileConfig::new(FilePacing::DOCUMENTED), &pkg);
        let e = r.unwrap_err();
        assert_eq!(e.stage, FotaStage::Download);
        let FotaFailure::FileEnd { error, sent } = e.failure else {
            panic!("{e}");
        };
        assert_eq!(error, FileEndError::DownloadError);
        assert!((1024..=1024 + 64).contains(&sent), "{sent}");
        // The host stopped writing at once.
        let cmd = "AT+QFOTADL=\"FILE:10000\"\r".len();
        let written = sim.written().len() - cmd - "AT+QGMR\r".len();
        assert_eq!(written as u32, sent);
        assert_eq!(e.code(), Some(500));
        assert_eq!(e.meaning(), Some("file download error"));
    }

    #[test]
    fn refusal_and_empty_package() {
        let mut s = qgmr("EC200UCNAAR01A04M08_01.001.01.001");
        s.extend([expect("AT+QFOTADL=\"FILE:10\"\r"), reply("\r\nERROR\r\n")]);
        let (r, _, sim) = run(s, &HostFileConfig::new(FilePacing::DOCUMENTED), &[1; 10]);
        let e = r.unwrap_err();
        sim.assert_done();
        assert_eq!(e.stage, FotaStage::Request);
        assert!(matches!(
            e.failure,
            FotaFailure::Modem(cellular_ota::client::Error::Rejected(
                cellular_ota::client::Rejection::Error
            ))
        ));
        // An empty package is refused before anything is sent.
        let (r, _, sim) = run(
            qgmr("EC200TCNDAR02A01M16_01.001.01.001"),
            &HostFileConfig::new(FilePacing::DOCUMENTED),
            &[],
        );
        let e = r.unwrap_err();
        sim.assert_done();
        assert!(matches!(
            e.failure,
            FotaFailure::Modem(cellular_ota::client::Error::Encode(_))
        ));
    }
}
