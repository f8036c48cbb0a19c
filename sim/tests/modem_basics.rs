//! Boot, identification, registration, PDP and AT framing, driven by the real client.

mod common;

use std::time::Duration;

use cellular_ota::client::{Error, Rejection};
use cellular_ota::quectel::general::{
    GetFullRevision, GetRegistration, GetRevision, Iccid, Identify, RegUrcMode, SetFlowControl,
    SetRegistrationUrc, SignalQuality, SimStatus,
};
use cellular_ota::quectel::pdp::{ActiveContexts, DeactivateContext, LastError, PdpActivations};
use cellular_ota::quectel::urc::RegKind;
use cellular_ota_sim::{ModemConfig, Personality, UartConfig, World, WorldConfig};
use common::*;

#[test]
fn boot_identify_register_pdp_every_personality() {
    for p in Personality::ALL {
        let world = World::new(WorldConfig::new(ModemConfig::new(p).quiet()));
        let urcs = Urcs::default();
        let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
        let mut c = client(&world, &mut rx, &mut resp, &urcs);
        wait_rdy(&mut c);
        let t_rdy = world.elapsed();
        assert!(t_rdy >= Duration::from_secs(8), "{p:?} booted at {t_rdy:?}");
        setup(&mut c);
        let id = c.send(&Identify).unwrap();
        assert_eq!((id.manufacturer, id.model), ("Quectel", p.model()));
        assert_eq!(id.revision, p.revision());
        assert_eq!(id.family(), p.family());
        assert_eq!(c.send(&GetRevision).unwrap(), p.revision());
        assert!(c.send(&GetFullRevision).unwrap().starts_with(p.revision()));
        assert_eq!(c.send(&Iccid).unwrap(), "89860012345678901234");
        assert!(c.send(&SimStatus).unwrap().is_ready());
        let csq = c.send(&SignalQuality).unwrap();
        assert_eq!(csq.dbm(), Some(-113 + 2 * 23));
        // Registration: searching until the registration delay passed.
        let mut registered = false;
        for _ in 0..50 {
            let r = c
                .send(&GetRegistration {
                    kind: RegKind::Cereg,
                })
                .unwrap();
            if r.is_registered() {
                registered = true;
                break;
            }
            world.advance(Duration::from_millis(200));
        }
        assert!(registered, "{p:?} never registered");
        pdp_up(&mut c);
        let ctx = c.send(&ActiveContexts).unwrap();
        let one = ctx.get(1).expect("context 1 listed");
        assert!(one.state.is_active());
        assert_eq!(one.ip, Some("10.187.7.8"));
        assert!(
            c.send(&PdpActivations)
                .unwrap()
                .get(1)
                .unwrap()
                .state
                .is_active()
        );
        // Activating twice is refused (572), and QIGETERROR says why.
        match c.send(&cellular_ota::quectel::pdp::ActivateContext { cid: 1 }) {
            Err(Error::Rejected(Rejection::Cme(code))) => assert_eq!(code.code(), Some(572)),
            other => panic!("{other:?}"),
        }
        assert_eq!(c.send(&LastError).unwrap().code, 572);
        c.send(&DeactivateContext { cid: 1 }).unwrap();
        assert!(!world.modem().pdp_active(1));
        // The boot URCs, in the personality's order, reached the URC handler.
        world.advance(Duration::from_secs(4));
        c.poll_urcs().unwrap();
        let seen: Vec<String> = urcs
            .lines()
            .into_iter()
            .filter(|l| p.boot_urcs().contains(&l.as_str()))
            .collect();
        assert_eq!(seen, p.boot_urcs()[1..].to_vec(), "{p:?}");
    }
}

#[test]
fn echo_and_final_results_are_byte_exact() {
    let world = ready_world(Personality::Ec200u);
    assert_eq!(
        text(&raw(&world, b"AT\r", Duration::from_millis(20))),
        "AT\r\r\nOK\r\n"
    );
    assert_eq!(
        text(&raw(&world, b"ATI\r", Duration::from_millis(20))),
        "ATI\r\r\nQuectel\r\nEC200U\r\nRevision: EC200UCNAAR01A04M08\r\n\r\nOK\r\n"
    );
    assert_eq!(
        text(&raw(&world, b"ATE0\r", Duration::from_millis(20))),
        "ATE0\r\r\nOK\r\n"
    );
    // The transcript, in the crate's fixture format.
    let t = world.transcript();
    assert!(
        t.starts_with("-> AT\\r\n<- AT\\r\n<- \\r\\nOK\\r\\n\n-> ATI\\r\n"),
        "{t}"
    );
    // Error formats: CMEE 1 (default), 0, 2.
    let q = b"AT+QFDEL=\"nope\"\r";
    assert_eq!(
        text(&raw(&world, q, Duration::from_millis(20))),
        "\r\n+CME ERROR: 405\r\n"
    );
    raw(&world, b"AT+CMEE=0\r", Duration::from_millis(20));
    assert_eq!(
        text(&raw(&world, q, Duration::from_millis(20))),
        "\r\nERROR\r\n"
    );
    raw(&world, b"AT+CMEE=2\r", Duration::from_millis(20));
    assert_eq!(
        text(&raw(&world, q, Duration::from_millis(20))),
        "\r\n+CME ERROR: file not found\r\n"
    );
    assert_eq!(
        text(&raw(&world, b"AT+CMEE?\r", Duration::from_millis(20))),
        "\r\n+CMEE: 2\r\n\r\nOK\r\n"
    );
    // LF after CR is ignored; lower case works.
    assert_eq!(
        text(&raw(&world, b"at\r\n", Duration::from_millis(20))),
        "\r\nOK\r\n"
    );
    // Chained commands: both answers, one OK.
    assert_eq!(
        text(&raw(&world, b"AT+CSQ;+CFUN?\r", Duration::from_millis(20))),
        "\r\n+CSQ: 23,99\r\n\r\n+CFUN: 1\r\n\r\nOK\r\n"
    );
}

#[test]
fn garbage_is_answered_with_error_and_never_wedges_the_modem() {
    let world = ready_world(Personality::Eg06);
    raw(&world, b"ATE0\r", Duration::from_millis(20));
    let cases: [&[u8]; 10] = [
        b"hello\r",
        b"AT+\r",
        b"AT+NOPE\r",
        b"AT+QHTTPGET=abc\r",
        b"AT+QFOPEN=\"x\r",
        b"\xff\xfe\x00AT\r",
        b"AT\xe9\xff\r",
        b"AT+QHTTPURL=0\r",
        b"AT+QHTTPURL=701,5\r",
        b"AT+IPR=12345\r",
    ];
    for g in cases {
        let out = text(&raw(&world, g, Duration::from_millis(20)));
        assert_eq!(out, "\r\nERROR\r\n", "{:?}", text(g));
    }
    // An over-long line.
    let mut long = b"AT+".to_vec();
    long.extend(std::iter::repeat_n(b'A', 5000));
    long.push(b'\r');
    assert_eq!(
        text(&raw(&world, &long, Duration::from_millis(800))),
        "\r\nERROR\r\n"
    );
    // Blank lines are ignored, and the modem still works.
    assert_eq!(
        text(&raw(&world, b"\r\r  \r", Duration::from_millis(20))),
        ""
    );
    assert_eq!(
        text(&raw(&world, b"AT\r", Duration::from_millis(20))),
        "\r\nOK\r\n"
    );
}

#[test]
fn ifc_switches_the_uart_model_and_ipr_the_baud_rate() {
    let world = ready_world(Personality::Ec200t);
    let urcs = Urcs::default();
    let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
    let mut c = client(&world, &mut rx, &mut resp, &urcs);
    setup(&mut c);
    assert!(!world.flow_control_active());
    c.send(&SetFlowControl::HARDWARE).unwrap();
    assert!(world.flow_control_active());
    assert_eq!(world.modem().flow_control(), (2, 2));
    c.send(&SetFlowControl::NONE).unwrap();
    assert!(!world.flow_control_active());
    drop(c);
    // The client returned at the OK's CR; its LF is still on the wire.
    assert_eq!(text(&collect(&world, Duration::from_millis(5))), "\n");
    // AT+IPR: the OK still comes at 115200, then the modem switches.
    let out = raw(&world, b"AT+IPR=921600\r", Duration::from_millis(20));
    assert_eq!(text(&out), "\r\nOK\r\n");
    assert_eq!(world.modem().baud(), 921_600);
    let before = world.uart_stats().framing_errors;
    raw(&world, b"AT\r", Duration::from_millis(20));
    assert!(
        world.uart_stats().framing_errors > before,
        "mismatched rates garble bytes"
    );
    world.host_uart().set_baud(921_600);
    world.host_uart().clear_rx();
    // The garbled bytes left junk in the modem's line buffer: a CR flushes it (ERROR).
    assert_eq!(
        text(&raw(&world, b"\r", Duration::from_millis(20))),
        "\r\nERROR\r\n"
    );
    assert_eq!(
        text(&raw(&world, b"AT\r", Duration::from_millis(5))),
        "\r\nOK\r\n"
    );
}

#[test]
fn registration_urcs_csq_urcs_and_urc_routing() {
    let cfg = ModemConfig {
        urc_rate_per_min: 120.0,
        ..ModemConfig::new(Personality::Ec200u).ready()
    };
    let world = World::new(WorldConfig::new(cfg).with_seed(7));
    let urcs = Urcs::default();
    let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
    let mut c = client(&world, &mut rx, &mut resp, &urcs);
    setup(&mut c);
    c.send(&SetRegistrationUrc {
        kind: RegKind::Cereg,
        mode: RegUrcMode::WithLocation,
    })
    .unwrap();
    world.modem().set_registration(5);
    world.advance(Duration::from_secs(20));
    c.poll_urcs().unwrap();
    assert!(
        urcs.contains("+CEREG: 5,\"1A2B\",\"01234567\",7"),
        "{:?}",
        urcs.lines()
    );
    assert!(urcs.contains("+QIND: \"csq\","), "{:?}", urcs.lines());
    // Route URCs to USB: the UART sees none any more.
    drop(c);
    raw(
        &world,
        b"AT+QURCCFG=\"urcport\",\"usbat\"\r",
        Duration::from_millis(20),
    );
    let out = collect(&world, Duration::from_secs(20));
    assert!(!text(&out).contains("+QIND"), "{}", text(&out));
    assert!(world.modem().urcs_dropped() > 0);
}

#[test]
fn power_down_and_reset() {
    let world = ready_world(Personality::Ec200u);
    raw(&world, b"ATE0\r", Duration::from_millis(20));
    let out = raw(&world, b"AT+CFUN=1,1\r", Duration::from_secs(12));
    let t = text(&out);
    assert!(t.starts_with("\r\nOK\r\n\r\nRDY\r\n"), "{t}");
    assert_eq!(world.modem().boots(), 2);
    // After the reboot echo is on again.
    assert_eq!(
        text(&raw(&world, b"AT\r", Duration::from_millis(20))),
        "AT\r\r\nOK\r\n"
    );
    let out = raw(&world, b"AT+QPOWD=1\r", Duration::from_secs(3));
    assert_eq!(text(&out), "AT+QPOWD=1\r\r\nOK\r\n\r\nPOWERED DOWN\r\n");
    assert!(!world.modem().is_ready());
    assert_eq!(text(&raw(&world, b"AT\r", Duration::from_millis(100))), "");
    world.modem().power_on();
    let out = collect(&world, Duration::from_secs(9));
    assert!(text(&out).contains("RDY"));
}

#[test]
fn async_client_boots_and_identifies() {
    use cellular_ota::client::asynch::Client;
    let world = World::new(WorldConfig::new(
        ModemConfig::new(Personality::Eg06).quiet(),
    ));
    let (mut rx, mut resp) = ([0u8; 1024], [0u8; 512]);
    let mut c = Client::new(
        world.host_uart(),
        world.clock(),
        &mut rx,
        &mut resp,
        Urcs::default(),
    );
    cellular_ota_sim::block_on(async {
        c.wait_for(Duration::from_secs(60), |l| (l == b"RDY").then_some(()))
            .await
            .unwrap();
        c.send(&cellular_ota::quectel::general::Attention)
            .await
            .unwrap();
        let id = c.send(&Identify).await.unwrap();
        assert_eq!(id.model, "EG06");
    });
    assert!(world.elapsed() >= Duration::from_secs(8));
}

#[test]
fn uart_timing_follows_the_baud_rate() {
    // A module with 9600 saved, and the host opening the UART at 9600.
    let mut modem = ModemConfig::new(Personality::Ec200u).ready().quiet();
    modem.baud = 9600;
    let world =
        World::new(WorldConfig::new(modem).with_uart(UartConfig::default().with_baud(9600)));
    let t0 = world.elapsed();
    let out = raw(&world, b"ATI\r", Duration::from_millis(200));
    assert_eq!(out.len(), 4 + 56);
    // 4 bytes in, 2 ms, 60 bytes out at 9600 baud (1.04 ms per byte): about 65 ms.
    let _ = t0;
    let world2 = ready_world(Personality::Ec200u);
    let mut u = world2.host_uart();
    embedded_io::Write::write_all(&mut u, b"ATI\r").unwrap();
    let start = world2.elapsed();
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while got.len() < 60 {
        let n = embedded_io::Read::read(&mut u, &mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    let took = world2.elapsed() - start;
    // 60 bytes at 115200 = 5.2 ms, plus the command latency.
    assert!(
        took > Duration::from_millis(5) && took < Duration::from_millis(12),
        "{took:?}"
    );
}

#[test]
fn random_input_never_panics_and_the_modem_recovers() {
    const WORDS: [&str; 24] = [
        "AT",
        "+QHTTPURL=",
        "+QHTTPGET=",
        "+QHTTPGETEX=",
        "+QHTTPREAD",
        "+QFUPL=",
        "+QFOPEN=",
        "+QFREAD=",
        "+QFWRITE=",
        "+QFSEEK=",
        "+QFOTADL=",
        "+QCFG=",
        "+QSSLCFG=",
        "+QIACT=",
        "+CFUN=",
        "+IFC=",
        "\"UFS:a\"",
        ",",
        "1",
        "0",
        "-5",
        "99999999999",
        "?",
        "=?",
    ];
    for (seed, p) in Personality::ALL.into_iter().enumerate() {
        let world = ready_world(p);
        let mut x = 0x1234_5678u32 ^ seed as u32;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        let mut input = Vec::new();
        for _ in 0..3000 {
            match next() % 4 {
                0 => input.push(next() as u8),
                1 => input.push(b'\r'),
                _ => input.extend_from_slice(WORDS[next() as usize % WORDS.len()].as_bytes()),
            }
        }
        let mut u = world.host_uart();
        for chunk in input.chunks(64) {
            embedded_io::Write::write_all(&mut u, chunk).unwrap();
            world.advance(Duration::from_millis(5));
            let mut sink = [0u8; 4096];
            while u.try_read(&mut sink).unwrap() > 0 {}
        }
        // Let data-input timeouts (up to 60 s) and reboots run out, then the modem answers.
        collect(&world, Duration::from_secs(100));
        if !world.modem().is_ready() {
            world.modem().power_on();
            collect(&world, Duration::from_secs(15));
        }
        // An IFC or IPR in the noise may have changed the line; put it back.
        raw(&world, b"\r", Duration::from_millis(50));
        world.host_uart().set_baud(world.modem().baud());
        let out = text(&raw(&world, b"\rAT\r", Duration::from_secs(2)));
        assert!(out.contains("OK\r\n"), "{p:?}: {out:?}");
    }
}
