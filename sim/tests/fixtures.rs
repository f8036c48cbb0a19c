//! The simulator reproduces the crate's recorded exchanges (`fixtures/*.txt`) byte for byte:
//! each host chunk is written to the simulated modem and everything the modem sends until the
//! next host chunk must equal the fixture's `<-` lines. State a fixture assumes but does not
//! show (a URL set earlier, a file on the module, an injected failure) is arranged by hooks
//! that run before an exchange and whose traffic is not compared. `+QIND: "csq"` URCs are
//! ignored on both sides (they come at random points).
//!
//! Not replayed, because they do not describe one consistent module: `registration.txt`
//! (`+CEREG: 1` URC followed by a query answering stat 5), `boot_eg18_after_dfota.txt`
//! (LF-only line ends of a capture tool, `APP RDY`), `fota_http_success_asr.txt` (its
//! progress percentages are illustrative), `fota_https_eg18.txt` (the `HTTPSSTART` spelling of
//! one write-up) and `fota_ftp_and_file.txt` (BG96 and `FILE:` forms).

mod common;

use std::time::Duration;

use cellular_ota::transcript::{Direction, decode_line};
use cellular_ota_sim::{
    Behavior, ModemConfig, Personality, TestServer, World, WorldConfig, fota_package,
};
use common::*;

type Exchange = (Vec<u8>, Vec<u8>);

fn load(name: &str) -> Vec<Exchange> {
    let path = format!("{}/../fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut out: Vec<Exchange> = Vec::new();
    let mut buf = vec![0u8; 4096];
    for line in text.split(|&b| b == b'\n') {
        match decode_line(line, &mut buf).unwrap() {
            None => {}
            Some((Direction::ToModem, n)) => out.push((buf[..n].to_vec(), Vec::new())),
            Some((Direction::FromModem, n)) => {
                if out.is_empty() {
                    out.push((Vec::new(), Vec::new()));
                }
                out.last_mut().unwrap().1.extend_from_slice(&buf[..n]);
            }
        }
    }
    out
}

/// Removes complete `\r\n+QIND: "csq",...\r\n` frames.
fn strip_csq(b: &[u8]) -> Vec<u8> {
    const P: &[u8] = b"\r\n+QIND: \"csq\",";
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(P)
            && let Some(end) = b[i + P.len()..].windows(2).position(|w| w == b"\r\n")
        {
            i += P.len() + end + 2;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn incomplete_urc(b: &[u8]) -> bool {
    const P: &[u8] = b"\r\n+QIND: \"csq\",";
    match b.windows(P.len()).rposition(|w| w == P) {
        Some(at) => !b[at + P.len()..].windows(2).any(|w| w == b"\r\n"),
        None => P.starts_with(&b[b.len().saturating_sub(P.len())..]) && b.ends_with(b"\r\n+"),
    }
}

/// Sends a command the fixture does not show and discards the answer.
fn hidden(world: &World, cmd: &str) {
    raw(world, cmd.as_bytes(), Duration::from_millis(1500));
}

fn replay(name: &str, world: &World, skip: &[usize], mut hook: impl FnMut(usize, &World)) {
    let exchanges = load(name);
    let uart = world.host_uart();
    for (i, (host, expected)) in exchanges.iter().enumerate() {
        hook(i, world);
        let mut u = uart.clone();
        embedded_io::Write::write_all(&mut u, host).unwrap();
        if skip.contains(&i) {
            collect(world, Duration::from_millis(500));
            continue;
        }
        let want = strip_csq(expected);
        let mut got = Vec::new();
        let limit = world.elapsed() + Duration::from_secs(120);
        let mut b = [0u8; 1];
        while strip_csq(&got).len() < want.len() || incomplete_urc(&got) {
            if uart.try_read(&mut b).unwrap() == 1 {
                got.push(b[0]);
                continue;
            }
            if world.elapsed() > limit {
                break;
            }
            world.advance(Duration::from_micros(500));
        }
        assert_eq!(
            text(&strip_csq(&got)),
            text(&want),
            "{name}, exchange {i} (host {:?})",
            text(host)
        );
    }
}

fn quiet_ready(p: Personality) -> ModemConfig {
    ModemConfig::new(p).ready().quiet()
}

#[test]
fn boot_eg25g() {
    let world = World::new(WorldConfig::new(
        ModemConfig::new(Personality::Ec200u).quiet(),
    ));
    replay("boot_eg25g.txt", &world, &[], |_, _| {});
}

#[test]
fn file_upload_download() {
    let world = World::new(WorldConfig::new(quiet_ready(Personality::Ec200u)));
    replay("file_upload_download.txt", &world, &[], |i, w| match i {
        0 => hidden(w, "ATE0\r"),
        3 => {
            w.modem().put_file("UFS:cacert.pem", &data(1939, 1));
            hidden(w, "AT+CMEE=2\r");
        }
        _ => {}
    });
}

#[test]
fn file_qfread() {
    let world = World::new(WorldConfig::new(quiet_ready(Personality::Ec200t)));
    // Exchange 1 lists names with and without `UFS:` at once, which no single module does.
    replay("file_qfread.txt", &world, &[1], |i, w| {
        if i == 0 {
            hidden(w, "ATE0\r");
            w.modem().put_file("UFS:fw.bin", b"\r\nOK\r\n\xff\x00AB");
            w.modem().put_file("UFS:cacert.pem", &data(1939, 2));
            // 24 more blocks so that the free space is 180224 of 286720 as in the capture.
            w.modem().put_file("UFS:filler.bin", &vec![0u8; 24 * 4096]);
        }
    });
}

fn http_world(p: Personality, server: &TestServer, urcs: bool) -> World {
    let mut cfg = quiet_ready(p).with_host("example.com", server.addr());
    if urcs {
        cfg.urc_between_ok_and_result = 1.0;
    }
    let w = World::new(WorldConfig::new(cfg));
    w.attach_server(server);
    hidden(&w, "ATE0\r");
    hidden(&w, "AT+QIACT=1\r");
    w
}

fn set_url(w: &World, url: &str) {
    hidden(w, &format!("AT+QHTTPURL={}\r", url.len()));
    hidden(w, url);
}

#[test]
fn http_get_read_known_length() {
    let body = b"ABCDEFGH\r\nOK\r\n\x00\x01\x02\xff\xfe0123456".to_vec();
    let server = TestServer::start([("firmware.bin", body)]).unwrap();
    let world = http_world(Personality::Ec200u, &server, true);
    replay("http_get_read_known_length.txt", &world, &[], |_, _| {});
}

#[test]
fn http_get_read_unknown_length() {
    let server = TestServer::start([(
        "chunked.bin",
        b"line one\r\nOK\r\nline two\x00\x80".to_vec(),
    )])
    .unwrap();
    server.set_behavior("/chunked.bin", Behavior::Chunked);
    let world = http_world(Personality::Eg06, &server, false);
    set_url(&world, &server.url("/chunked.bin"));
    replay("http_get_read_unknown_length.txt", &world, &[], |_, _| {});
}

#[test]
fn http_getex_range() {
    let mut file = data(2048, 3);
    file[1024..1032].copy_from_slice(b"\xe9\x05\x02\x20\x00\x00\x00\x00");
    let server = TestServer::start([("fw.bin", file)]).unwrap();
    let world = http_world(Personality::Ec200t, &server, false);
    set_url(&world, &server.url("/fw.bin"));
    replay("http_getex_range.txt", &world, &[], |_, _| {});
    assert_eq!(world.modem().file("UFS:fw.bin").unwrap().len(), 8);
}

#[test]
fn http_errors() {
    let server =
        TestServer::start([("relative", b"12345678".to_vec()), ("other", b"x".to_vec())]).unwrap();
    server.set_behavior("/relative", Behavior::RedirectRelative("/elsewhere".into()));
    let world = http_world(Personality::Ec200t, &server, false);
    set_url(&world, &server.url("/other"));
    replay("http_errors.txt", &world, &[], |i, w| match i {
        0 => w.inject_str("http-get-error=702").unwrap(),
        1 => w.inject_str("http-get-cme=716").unwrap(),
        5 => w.inject_str("server-404@/relative").unwrap(),
        6 => w.inject_str("http-read-cme=705").unwrap(),
        7 => server.set_behavior("/relative", Behavior::Normal),
        8 => w.inject_str("http-read-error=717").unwrap(),
        _ => {}
    });
}

#[test]
fn pdp() {
    let world = World::new(WorldConfig::new(quiet_ready(Personality::Ec200t)));
    replay("pdp.txt", &world, &[], |i, w| match i {
        0 => hidden(w, "ATE0\r"),
        5 => w.inject_str("pdp-deact=100,1").unwrap(),
        _ => {}
    });
}

#[test]
fn fota_ec200u_path_failure() {
    let p = Personality::Ec200u;
    let pkg = fota_package(p.revision(), "EC200UCNAAR01A05M08", 50_000);
    let server = TestServer::start([("ec200u.pack", pkg)]).unwrap();
    let world = http_world(p, &server, false);
    replay("fota_ec200u_path_failure.txt", &world, &[], |_, _| {});
}
