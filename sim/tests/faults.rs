//! Every fault name in `FAULTS` parses and has an observable effect on a real client
//! session. A new name without a scenario here fails the test.

mod common;

use std::time::Duration;

use cellular_ota::at::Clock;
use cellular_ota::client::{Error, Rejection};
use cellular_ota::quectel::general::{Attention, Identify, SetBaudRate, SignalQuality};
use cellular_ota::quectel::http::{HttpGet, HttpGetRange, HttpRead, HttpReadFile, SetHttpUrl};
use cellular_ota_sim::{
    FAULTS, Fault, FaultError, FlashConfig, Personality, SimFlash, TestServer, World,
};
use common::*;
use embedded_storage::nor_flash::NorFlash;

const LEN: usize = 20_000;

fn cme<T: core::fmt::Debug>(r: Result<T, Error<embedded_io::ErrorKind>>) -> u16 {
    match r {
        Err(Error::Rejected(Rejection::Cme(c))) => c.code().unwrap_or(0),
        other => panic!("expected +CME ERROR, got {other:?}"),
    }
}

struct Session {
    world: World,
    server: TestServer,
    file: Vec<u8>,
}

fn session() -> Session {
    let file = data(LEN, 21);
    let server =
        TestServer::start([("fw.bin", file.clone()), ("other.bin", data(777, 22))]).unwrap();
    let world = ready_world(Personality::Ec200t);
    world.attach_server(&server);
    Session {
        world,
        server,
        file,
    }
}

fn read_all(c: &mut Host<'_>) -> (Vec<u8>, u16) {
    let mut body = Vec::new();
    c.send_receive(&HttpRead::until_trailer(), |d| body.extend_from_slice(d))
        .unwrap();
    (body, wait_read(c))
}

/// Runs the scenario for one fault and checks its effect.
fn scenario(example: &str) {
    let fault: Fault = example.parse().unwrap();
    assert_eq!(fault.to_string().parse::<Fault>().unwrap(), fault);
    let name = example.split(['=', '@']).next().unwrap();
    let s = session();
    let urcs = Urcs::default();
    let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
    let mut c = client(&s.world, &mut rx, &mut resp, &urcs);
    setup(&mut c);
    pdp_up(&mut c);
    let url = s.server.url("/fw.bin");
    let inject = || s.world.inject(fault.clone()).unwrap();
    match name {
        "byte-loss" => {
            get(&mut c, &url);
            inject();
            let (body, _) = read_all(&mut c);
            assert_eq!(body.len(), LEN - 3);
            assert_eq!(&body[..1000], &s.file[..1000]);
            assert_eq!(&body[1000..], &s.file[1003..]);
        }
        "byte-corrupt" => {
            get(&mut c, &url);
            inject();
            let (body, _) = read_all(&mut c);
            assert_eq!(body[1000], s.file[1000] ^ 0xFF);
            assert_eq!(&body[1001..], &s.file[1001..]);
        }
        "uart-stall" => {
            get(&mut c, &url);
            let t0 = c.clock().now();
            read_all(&mut c);
            let plain = c.clock().now().as_micros() - t0.as_micros();
            inject();
            let t0 = c.clock().now();
            let (body, _) = read_all(&mut c);
            let stalled = c.clock().now().as_micros() - t0.as_micros();
            assert_eq!(body, s.file);
            assert!(stalled >= plain + 490_000, "{plain} → {stalled}");
        }
        "modem-reboot" => {
            get(&mut c, &url);
            inject();
            let r = c.send_receive(&HttpRead::exact(LEN as u32).with_wait_time(2), |_| {});
            assert!(r.is_err(), "the read cannot complete");
            s.world.advance(Duration::from_secs(10));
            assert_eq!(s.world.modem().boots(), 2);
            c.reset();
            s.world.host_uart().clear_rx();
            setup(&mut c);
            // HTTP and PDP state were forgotten.
            assert_eq!(cme(c.send_receive(&HttpRead::exact(1), |_| {})), 705);
            assert!(!s.world.modem().pdp_active(1));
        }
        "mcu-reset" => {
            get(&mut c, &url);
            inject();
            let r = c.send_receive(&HttpRead::exact(LEN as u32), |_| {});
            assert!(
                matches!(r, Err(Error::Io(embedded_io::ErrorKind::Interrupted))),
                "{r:?}"
            );
            assert!(s.world.mcu_reset_pending());
            assert_eq!(s.world.mcu_resets(), 1);
            drop(c);
            s.world.acknowledge_mcu_reset();
            s.world.advance(Duration::from_secs(3));
            s.world.host_uart().clear_rx();
            let (mut rx2, mut resp2) = ([0u8; 2048], [0u8; 512]);
            let mut c2 = client(&s.world, &mut rx2, &mut resp2, &urcs);
            c2.send(&cellular_ota::quectel::general::Attention).unwrap();
        }
        "pdp-deact" => {
            inject();
            s.world.advance(Duration::from_millis(10));
            c.poll_urcs().unwrap();
            assert!(
                urcs.contains("+QIURC: \"pdpdeact\",1"),
                "{:?}",
                urcs.lines()
            );
            c.send(&SetHttpUrl::new(&url)).unwrap();
            assert_eq!(cme(c.send(&HttpGet::default())), 709);
        }
        "http-get-error" => {
            inject();
            assert_eq!(get(&mut c, &url).code(), 702);
        }
        "http-get-cme" => {
            inject();
            c.send(&SetHttpUrl::new(&url)).unwrap();
            assert_eq!(cme(c.send(&HttpGet::default())), 716);
            // One-shot: the next GET works.
            assert_eq!(get(&mut c, &url).code(), 0);
        }
        "http-read-error" => {
            get(&mut c, &url);
            inject();
            let (body, code) = read_body(&mut c, LEN as u32);
            assert_eq!((body == s.file, code), (true, 717));
        }
        "http-read-cme" => {
            get(&mut c, &url);
            inject();
            assert_eq!(
                cme(c.send_receive(&HttpRead::exact(LEN as u32), |_| {})),
                705
            );
        }
        "http-readfile-error" => {
            get(&mut c, &url);
            inject();
            c.send(&HttpReadFile::new("UFS:f.bin")).unwrap();
            let code = c
                .wait_for(Duration::from_secs(5), |l| {
                    text(l)
                        .strip_prefix("+QHTTPREADFILE: ")
                        .and_then(|v| v.parse::<u16>().ok())
                })
                .unwrap();
            assert_eq!(code, 722);
        }
        "cme" => {
            inject();
            assert_eq!(cme(c.send(&SignalQuality)), 3);
            c.send(&SignalQuality).unwrap();
        }
        "power-cut" => {
            let mut f = SimFlash::new(&s.world, FlashConfig::instant(8192));
            inject();
            assert!(f.write(0, &[0; 4]).is_err());
            assert!(!f.is_powered());
        }
        "power-cut-at" => {
            // The example cuts the second operation that touches 0xE000.
            let mut f = SimFlash::new(&s.world, FlashConfig::instant(0x10000));
            inject();
            f.write(0, &[0; 4]).unwrap();
            f.erase(0xE000, 0xF000).unwrap();
            f.write(0xD000, &[0; 4]).unwrap();
            assert!(f.write(0xE000, &[0; 4]).is_err());
            assert!(!f.is_powered());
        }
        "baud-limit" => {
            // At 460800 the example's limit is kept: clean. At 921600 one byte in 64
            // garbles, both ways: a long answer does not survive.
            inject();
            let switch = |c: &mut Host<'_>, rate: u32| {
                c.send(&SetBaudRate(rate)).unwrap();
                // The modem switches once its OK is out; a stray byte of it may arrive
                // garbled at the new rate and prefix the next line: end that line.
                s.world.advance(Duration::from_millis(20));
                s.world.host_uart().set_baud(rate);
                let _ = c.send(&Attention);
                c.reset();
            };
            switch(&mut c, 460_800);
            for _ in 0..20 {
                c.send(&Identify).unwrap();
            }
            let clean = s.world.uart_stats().framing_errors;
            switch(&mut c, 921_600);
            let ok = (0..20).filter(|_| c.send(&Identify).is_ok()).count();
            assert!(ok < 20, "{ok} of 20 long answers survived");
            assert!(s.world.uart_stats().framing_errors > clean + 5);
        }
        "baud-reset" => {
            // The example restarts the modem at 921600: it answers OK at the old rate, then
            // boots at its saved 115200.
            inject();
            c.send(&SetBaudRate(921_600)).unwrap();
            s.world.advance(Duration::from_secs(10));
            assert_eq!(s.world.modem().boots(), 2);
            assert_eq!(s.world.modem().baud(), 115_200);
            c.reset();
            s.world.host_uart().clear_rx();
            c.send(&Attention).unwrap();
            // Below the limit the rate changes as usual.
            c.send(&SetBaudRate(460_800)).unwrap();
            s.world.advance(Duration::from_millis(20));
            assert_eq!(s.world.modem().baud(), 460_800);
        }
        "server-404" => {
            inject();
            assert_eq!(get(&mut c, &url).result.unwrap().status, 404);
        }
        "server-500" => {
            inject();
            assert_eq!(get(&mut c, &url).result.unwrap().status, 500);
        }
        "server-ignore-range" => {
            inject();
            c.send(&SetHttpUrl::new(&url)).unwrap();
            c.send(&HttpGetRange::new(0, 10)).unwrap();
            let st = wait_get(&mut c, Duration::from_secs(61)).result.unwrap();
            assert_eq!((st.status, st.content_length), (200, Some(LEN as u32)));
        }
        "server-wrong-length" => {
            inject();
            assert_eq!(
                get(&mut c, &url).result.unwrap().content_length,
                Some(LEN as u32 - 10)
            );
        }
        "server-close-early" => {
            inject();
            get(&mut c, &url);
            let (body, code) = read_all(&mut c);
            assert_eq!((body.len(), code), (100, 717));
        }
        "server-slow" => {
            let t0 = c.clock().now();
            get(&mut c, &url);
            let plain = c.clock().now().as_micros() - t0.as_micros();
            inject();
            let t0 = c.clock().now();
            get(&mut c, &url);
            let slow = c.clock().now().as_micros() - t0.as_micros();
            assert!(slow >= plain + 25_000, "{plain} → {slow}");
        }
        "server-redirect" => {
            inject();
            let st = get(&mut c, &url).result.unwrap();
            assert_eq!(
                (st.status, st.content_length),
                (200, Some(777)),
                "EC200T follows absolute redirects"
            );
        }
        "server-redirect-relative" => {
            inject();
            c.send(&SetHttpUrl::new(&url)).unwrap();
            assert_eq!(cme(c.send(&HttpGet::default())), 711);
        }
        "server-chunked" => {
            inject();
            let st = get(&mut c, &url).result.unwrap();
            assert_eq!(st.content_length, None);
            assert_eq!(read_all(&mut c), (s.file.clone(), 0));
        }
        other => panic!("no scenario for fault `{other}`: add one"),
    }
}

#[test]
fn every_fault_parses_and_has_an_effect() {
    for info in FAULTS {
        scenario(info.example);
    }
}

#[test]
fn server_faults_can_be_scoped_to_a_path() {
    let s = session();
    let urcs = Urcs::default();
    let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
    let mut c = client(&s.world, &mut rx, &mut resp, &urcs);
    setup(&mut c);
    pdp_up(&mut c);
    s.world.inject_str("server-404@/other.bin").unwrap();
    assert_eq!(
        get(&mut c, &s.server.url("/other.bin"))
            .result
            .unwrap()
            .status,
        404
    );
    assert_eq!(
        get(&mut c, &s.server.url("/fw.bin")).result.unwrap().status,
        200
    );
    s.world.inject_str("server-404").unwrap();
    assert_eq!(
        get(&mut c, &s.server.url("/fw.bin")).result.unwrap().status,
        404
    );
    // Without an attached server, server faults are refused.
    let lonely = ready_world(Personality::Ec200u);
    assert_eq!(lonely.inject_str("server-500"), Err(FaultError::NoServer));
    assert!(matches!(
        lonely.inject_str("nonsense"),
        Err(FaultError::UnknownName(_))
    ));
}
