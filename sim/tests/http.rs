//! HTTP through the simulated modem and the test server, with the real client.

mod common;

use std::time::Duration;

use cellular_ota::at::Clock;
use cellular_ota::client::{Error, Rejection};
use cellular_ota::quectel::general::SetFlowControl;
use cellular_ota::quectel::http::{
    HttpConfig, HttpGet, HttpGetRange, HttpGetWithHeader, HttpRead, SetHttpUrl, write_get_request,
};
use cellular_ota::quectel::urc::HttpStatus;
use cellular_ota_sim::{
    Behavior, ModemConfig, Personality, TestServer, UartConfig, World, WorldConfig,
};
use common::*;

const KB100: usize = 100 * 1024;

fn status(r: cellular_ota::quectel::urc::HttpResult) -> HttpStatus {
    r.result.unwrap_or_else(|e| panic!("HTTP error {e:?}"))
}

fn cme(e: Error<embedded_io::ErrorKind>) -> Option<u16> {
    match e {
        Error::Rejected(Rejection::Cme(c)) => c.code(),
        _ => None,
    }
}

/// Reads 100 KB while the host "erases a flash sector" (45 ms, interrupts off) every 4 KiB.
fn slow_host_download(flow_control: bool) -> (World, Result<Vec<u8>, String>) {
    slow_host_download_on(ready_world(Personality::Ec200u), flow_control)
}

fn slow_host_download_on(world: World, flow_control: bool) -> (World, Result<Vec<u8>, String>) {
    let file = data(KB100, 1);
    let server = TestServer::start([("fw.bin", file.clone())]).unwrap();
    let urcs = Urcs::default();
    let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
    let mut c = client(&world, &mut rx, &mut resp, &urcs);
    setup(&mut c);
    if flow_control {
        c.send(&SetFlowControl::HARDWARE).unwrap();
    }
    pdp_up(&mut c);
    let st = status(get(&mut c, &server.url("/fw.bin")));
    assert_eq!((st.status, st.content_length), (200, Some(KB100 as u32)));
    let mut body = Vec::new();
    let mut since_erase = 0usize;
    let w = world.clone();
    let r = c.send_receive(&HttpRead::exact(KB100 as u32).with_wait_time(5), |d| {
        body.extend_from_slice(d);
        since_erase += d.len();
        while since_erase >= 4096 {
            since_erase -= 4096;
            w.advance_interrupts_off(Duration::from_millis(45));
        }
    });
    let out = match r {
        Ok(_) => Ok(body),
        Err(e) => Err(format!("{e:?} after {} bytes", body.len())),
    };
    (world, out)
}

#[test]
fn read_100k_with_rts_cts_loses_nothing_even_with_a_slow_host() {
    let (world, r) = slow_host_download(true);
    assert_eq!(r.unwrap(), data(KB100, 1));
    let st = world.uart_stats();
    assert_eq!(st.lost, 0);
    assert!(st.flow_pauses > 10, "{st:?}");
    assert!(st.max_rx_fill <= 128 + 1024);
}

#[test]
fn uart_dma_ring_keeps_filling_while_the_host_erases() {
    // 45 ms of erase at 115 200 baud brings ~520 bytes: more than the 128-byte FIFO, which is
    // all an interrupt-driven driver has while flash is busy, but within a 1 KiB DMA ring.
    let cfg = WorldConfig::new(ModemConfig::new(Personality::Ec200u).ready().quiet())
        .with_uart(UartConfig::default().with_rx_dma(1024));
    let (world, r) = slow_host_download_on(World::new(cfg), false);
    assert_eq!(r.unwrap(), data(KB100, 1));
    let st = world.uart_stats();
    assert_eq!((st.lost, st.flow_pauses), (0, 0), "{st:?}");
    assert!(st.max_rx_fill > 128, "{st:?}");
}

#[test]
fn body_is_forwarded_no_faster_than_the_network_delivers_it() {
    // A 50 kbit/s downlink (6 250 bytes/s) is slower than the 115 200-baud UART (11 520
    // bytes/s): the read is paced by the network, and the GET result still comes after the
    // headers, not after the body.
    let file = data(KB100, 4);
    let server = TestServer::start([("fw.bin", file.clone())]).unwrap();
    let mut modem = ModemConfig::new(Personality::Ec200u).ready().quiet();
    modem.network.downlink_bps = 50_000;
    let world = World::new(WorldConfig::new(modem));
    let urcs = Urcs::default();
    let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
    let mut c = client(&world, &mut rx, &mut resp, &urcs);
    setup(&mut c);
    pdp_up(&mut c);
    let t0 = c.clock().now();
    let st = status(get(&mut c, &server.url("/fw.bin")));
    let t_get = c.clock().now().as_micros() - t0.as_micros();
    assert!(t_get < 300_000, "GET took {t_get} µs");
    let (body, code) = read_body(&mut c, st.content_length.unwrap());
    let t_all = c.clock().now().as_micros() - t0.as_micros();
    assert_eq!((body == file, code), (true, 0));
    // 160 ms of round trips + (headers + 102 400 bytes) × 8 / 50 000 ≈ 16.5 s; the UART
    // alone would need 8.9 s.
    assert!(
        (16_300_000..17_000_000).contains(&t_all),
        "GET and read took {t_all} µs"
    );
    assert_eq!(world.uart_bytes_lost(), 0);
}

#[test]
fn read_100k_without_flow_control_and_a_slow_host_loses_bytes() {
    let (world, r) = slow_host_download(false);
    let lost = world.uart_bytes_lost();
    assert!(lost > 1000, "lost {lost}");
    match r {
        Ok(body) => assert_ne!(body, data(KB100, 1)),
        Err(e) => assert!(e.contains("Timeout"), "{e}"),
    }
}

#[test]
fn fast_host_without_flow_control_loses_nothing() {
    let file = data(KB100, 2);
    let server = TestServer::start([("fw.bin", file.clone())]).unwrap();
    let world = ready_world(Personality::Eg06);
    let urcs = Urcs::default();
    let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
    let mut c = client(&world, &mut rx, &mut resp, &urcs);
    setup(&mut c);
    pdp_up(&mut c);
    let t0 = c.clock().now();
    let st = status(get(&mut c, &server.url("/fw.bin")));
    let t_get = c.clock().now().as_micros() - t0.as_micros();
    // 2 RTT (IP literal: TCP + request) = 160 ms, + the header block at 5 Mbit/s, + the
    // command and its answers on the UART (~12 ms at 115 200 baud). The body is not waited
    // for: the module reports once the headers are in and forwards the body as it arrives.
    assert!((160_000..200_000).contains(&t_get), "GET took {t_get} µs");
    let t1 = c.clock().now();
    let (body, code) = read_body(&mut c, st.content_length.unwrap());
    let t_read = c.clock().now().as_micros() - t1.as_micros();
    assert_eq!((body == file, code), (true, 0));
    // 102 400 bytes at 11 520 bytes/s ≈ 8.9 s.
    assert!(
        (8_800_000..9_200_000).contains(&t_read),
        "read took {t_read} µs"
    );
    assert_eq!(world.uart_bytes_lost(), 0);
    assert_eq!(server.requests().len(), 1);
    assert!(
        server.requests()[0]
            .headers
            .iter()
            .any(|(k, v)| k == "user-agent" && v == "QUECTEL_MODULE")
    );
}

#[test]
fn getex_per_personality() {
    let file = data(4096, 3);
    let server = TestServer::start([("fw.bin", file.clone())]).unwrap();
    for p in Personality::ALL {
        let world = ready_world(p);
        let urcs = Urcs::default();
        let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
        let mut c = client(&world, &mut rx, &mut resp, &urcs);
        setup(&mut c);
        pdp_up(&mut c);
        c.send(&SetHttpUrl::new(&server.url("/fw.bin"))).unwrap();
        let g = HttpGetRange::new(1024, 8);
        match c.send(&g) {
            Err(Error::Rejected(Rejection::Error)) => {
                assert_eq!(p, Personality::Ec200u, "only EC200U lacks QHTTPGETEX");
                continue;
            }
            Ok(()) => assert!(p.supports_getex()),
            Err(e) => panic!("{p:?}: {e:?}"),
        }
        let st = status(wait_get(&mut c, g.result_deadline()));
        assert_eq!((st.status, st.content_length), (206, Some(8)), "{p:?}");
        let (body, code) = read_body(&mut c, 8);
        assert_eq!((&body[..], code), (&file[1024..1032], 0));
        let last = server.requests().pop().unwrap();
        assert_eq!(last.range.as_deref(), Some("bytes=1024-1031"));
    }
}

#[test]
fn request_header_range_get_gives_206_everywhere() {
    let file = data(10_000, 4);
    let server = TestServer::start([("a/fw.bin", file.clone())]).unwrap();
    for p in Personality::ALL {
        let world = ready_world(p);
        let urcs = Urcs::default();
        let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
        let mut c = client(&world, &mut rx, &mut resp, &urcs);
        setup(&mut c);
        pdp_up(&mut c);
        let url = server.url("/a/fw.bin");
        c.send(&HttpConfig::RequestHeader(true)).unwrap();
        c.send(&SetHttpUrl::new(&url)).unwrap();
        let mut block = [0u8; 512];
        let n = write_get_request(
            &mut block,
            &url,
            Some((5000, Some(5999))),
            &[("X-Test", "1")],
        )
        .unwrap();
        let g = HttpGetWithHeader::new(&block[..n]);
        c.send(&g).unwrap();
        let st = status(wait_get(&mut c, g.result_deadline()));
        assert_eq!((st.status, st.content_length), (206, Some(1000)), "{p:?}");
        let (body, code) = read_body(&mut c, 1000);
        assert_eq!((&body[..], code), (&file[5000..6000], 0));
        let req = server.requests().pop().unwrap();
        assert_eq!(req.range.as_deref(), Some("bytes=5000-5999"));
        assert!(req.headers.iter().any(|(k, v)| k == "x-test" && v == "1"));
        // A plain GET is refused in request-header mode, and GETEX too.
        assert!(c.send(&HttpGet::default()).is_err());
    }
}

#[test]
fn response_header_mode_and_chunked_bodies() {
    let file = data(3000, 5);
    let server = TestServer::start([("fw.bin", file.clone())]).unwrap();
    let world = ready_world(Personality::Ec200t);
    let urcs = Urcs::default();
    let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
    let mut c = client(&world, &mut rx, &mut resp, &urcs);
    setup(&mut c);
    pdp_up(&mut c);
    c.send(&HttpConfig::ResponseHeader(true)).unwrap();
    let st = status(get(&mut c, &server.url("/fw.bin")));
    assert_eq!(st.content_length, Some(3000));
    let mut all = Vec::new();
    c.send_receive(&HttpRead::until_trailer(), |d| all.extend_from_slice(d))
        .unwrap();
    assert!(
        all.starts_with(b"HTTP/1.1 200 OK\r\n"),
        "{}",
        text(&all[..40])
    );
    let split = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(&all[split..], &file[..]);
    assert_eq!(wait_read(&mut c), 0);
    // Chunked: no content length in the result, the body is de-chunked.
    c.send(&HttpConfig::ResponseHeader(false)).unwrap();
    server.set_behavior("/fw.bin", Behavior::Chunked);
    let st = status(get(&mut c, &server.url("/fw.bin")));
    assert_eq!((st.status, st.content_length), (200, None));
    let mut body = Vec::new();
    c.send_receive(&HttpRead::until_trailer(), |d| body.extend_from_slice(d))
        .unwrap();
    assert_eq!(body, file);
    assert_eq!(wait_read(&mut c), 0);
}

#[test]
fn redirects_per_personality() {
    let file = data(500, 6);
    let server = TestServer::start([("fw.bin", file.clone())]).unwrap();
    server.set_behavior("/abs", Behavior::Redirect("/fw.bin".into()));
    server.set_behavior("/rel", Behavior::RedirectRelative("/fw.bin".into()));
    for p in Personality::ALL {
        let world = ready_world(p);
        let urcs = Urcs::default();
        let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
        let mut c = client(&world, &mut rx, &mut resp, &urcs);
        setup(&mut c);
        pdp_up(&mut c);
        let st = status(get(&mut c, &server.url("/abs")));
        if p.follows_redirects() {
            assert_eq!((st.status, st.content_length), (200, Some(500)));
            let (body, _) = read_body(&mut c, 500);
            assert_eq!(body, file);
        } else {
            assert_eq!(st.status, 302, "{p:?}");
        }
        c.send(&SetHttpUrl::new(&server.url("/rel"))).unwrap();
        let r = c.send(&HttpGet::default());
        if p.follows_redirects() {
            assert_eq!(
                cme(r.unwrap_err()),
                Some(711),
                "ASR: relative Location → 711"
            );
        } else {
            r.unwrap();
            assert_eq!(
                status(wait_get(&mut c, Duration::from_secs(61))).status,
                302
            );
        }
    }
}

#[test]
fn every_server_behaviour_shows_through_the_modem() {
    let file = data(2000, 7);
    let server = TestServer::start([("fw.bin", file.clone())]).unwrap();
    let world = ready_world(Personality::Ec200t);
    let urcs = Urcs::default();
    let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
    let mut c = client(&world, &mut rx, &mut resp, &urcs);
    setup(&mut c);
    pdp_up(&mut c);
    let url = server.url("/fw.bin");
    let read_all = |c: &mut Host<'_>| {
        let mut body = Vec::new();
        c.send_receive(&HttpRead::until_trailer(), |d| body.extend_from_slice(d))
            .unwrap();
        (body, wait_read(c))
    };
    // 404 and 500 are successful transactions with that status.
    server.set_behavior("/fw.bin", Behavior::NotFound);
    assert_eq!(
        status(get(&mut c, &url)),
        HttpStatus {
            status: 404,
            content_length: Some(0)
        }
    );
    server.set_behavior("/fw.bin", Behavior::ServerError);
    assert_eq!(status(get(&mut c, &url)).status, 500);
    // Ignoring Range: 200 with the whole file instead of 206.
    server.set_behavior("/fw.bin", Behavior::IgnoreRange);
    c.send(&SetHttpUrl::new(&url)).unwrap();
    c.send(&HttpGetRange::new(100, 10)).unwrap();
    assert_eq!(
        status(wait_get(&mut c, Duration::from_secs(61))),
        HttpStatus {
            status: 200,
            content_length: Some(2000)
        }
    );
    // Wrong Content-Length, both ways.
    server.set_behavior("/fw.bin", Behavior::WrongContentLength(-500));
    assert_eq!(status(get(&mut c, &url)).content_length, Some(1500));
    let (body, code) = read_all(&mut c);
    assert_eq!((&body[..], code), (&file[..1500], 0));
    server.set_behavior("/fw.bin", Behavior::WrongContentLength(100));
    assert_eq!(status(get(&mut c, &url)).content_length, Some(2100));
    let (body, code) = read_all(&mut c);
    assert_eq!((&body[..], code), (&file[..], 717));
    // Closed early: the announced length, fewer bytes, and 717 at the end of the read.
    server.set_behavior("/fw.bin", Behavior::CloseAfter(700));
    assert_eq!(status(get(&mut c, &url)).content_length, Some(2000));
    let (body, code) = read_all(&mut c);
    assert_eq!((&body[..], code), (&file[..700], 717));
    // Slow: the server's delay shows in virtual time; too slow is a 702.
    server.set_behavior("/fw.bin", Behavior::Slow(Duration::from_millis(300)));
    let t0 = c.clock().now();
    status(get(&mut c, &url));
    let took = c.clock().now().as_micros() - t0.as_micros();
    assert!(took > 400_000, "slow GET took {took} µs");
    server.set_behavior("/fw.bin", Behavior::Slow(Duration::from_millis(1300)));
    c.send(&SetHttpUrl::new(&url)).unwrap();
    c.send(&HttpGet { response_time: 1 }).unwrap();
    let r = wait_get(&mut c, Duration::from_secs(3));
    assert_eq!(r.code(), 702);
    // Redirect and chunked are covered by their own tests; back to normal.
    server.clear_behaviors();
    let st = status(get(&mut c, &url));
    let (body, code) = read_body(&mut c, st.content_length.unwrap());
    assert_eq!((body, code), (file, 0));
}

#[test]
fn network_failures_map_to_cme_errors() {
    let world = ready_world(Personality::Ec200u);
    let urcs = Urcs::default();
    let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
    let mut c = client(&world, &mut rx, &mut resp, &urcs);
    setup(&mut c);
    // No URL yet.
    assert_eq!(cme(c.send(&HttpGet::default()).unwrap_err()), Some(712));
    // PDP not active.
    c.send(&SetHttpUrl::new("http://127.0.0.1:9/x")).unwrap();
    assert_eq!(cme(c.send(&HttpGet::default()).unwrap_err()), Some(709));
    pdp_up(&mut c);
    // Nothing listens on the discard port: connection refused.
    assert_eq!(cme(c.send(&HttpGet::default()).unwrap_err()), Some(716));
    // No DNS in the simulation.
    c.send(&SetHttpUrl::new("http://nowhere.example/x"))
        .unwrap();
    assert_eq!(cme(c.send(&HttpGet::default()).unwrap_err()), Some(716));
    // Nothing to read.
    assert_eq!(
        cme(c.send_receive(&HttpRead::exact(1), |_| {}).unwrap_err()),
        Some(705)
    );
}

#[test]
fn host_names_resolve_through_the_modem_config_and_https_is_plain() {
    let server = TestServer::start([("fw.bin", b"hello".to_vec())]).unwrap();
    let cfg = ModemConfig::new(Personality::Eg06)
        .ready()
        .quiet()
        .with_host("updates.example.com", server.addr());
    let world = World::new(WorldConfig::new(cfg));
    let urcs = Urcs::default();
    let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
    let mut c = client(&world, &mut rx, &mut resp, &urcs);
    setup(&mut c);
    pdp_up(&mut c);
    let t0 = c.clock().now();
    let st = status(get(&mut c, "https://updates.example.com/fw.bin"));
    let took = c.clock().now().as_micros() - t0.as_micros();
    // DNS + TCP + 2 TLS + request = 5 RTT.
    assert!(took >= 400_000, "{took}");
    let (body, _) = read_body(&mut c, st.content_length.unwrap());
    assert_eq!(body, b"hello");
    assert_eq!(world.modem().fetched_urls().len(), 1);
}

#[test]
fn urcs_come_between_ok_and_result_but_never_inside_a_payload() {
    let file = data(20_000, 8);
    let server = TestServer::start([("fw.bin", file.clone())]).unwrap();
    let cfg = ModemConfig {
        urc_rate_per_min: 600.0,
        urc_between_ok_and_result: 1.0,
        ..ModemConfig::new(Personality::Ec200u).ready()
    };
    let world = World::new(WorldConfig::new(cfg).with_seed(3));
    let urcs = Urcs::default();
    let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
    let mut c = client(&world, &mut rx, &mut resp, &urcs);
    setup(&mut c);
    pdp_up(&mut c);
    for _ in 0..3 {
        let before = urcs.lines().len();
        let st = status(get(&mut c, &server.url("/fw.bin")));
        assert!(
            urcs.lines().len() > before,
            "a URC came between OK and +QHTTPGET"
        );
        let (body, code) = read_body(&mut c, st.content_length.unwrap());
        assert_eq!((body == file, code), (true, 0));
    }
    assert!(urcs.lines().iter().any(|l| l.starts_with("+QIND: \"csq\"")));
}

#[test]
fn async_client_downloads() {
    use cellular_ota::client::asynch::Client;
    let file = data(5000, 9);
    let server = TestServer::start([("fw.bin", file.clone())]).unwrap();
    let world = ready_world(Personality::Ec200t);
    let (mut rx, mut resp) = ([0u8; 1024], [0u8; 512]);
    let mut c = Client::new(
        world.host_uart(),
        world.clock(),
        &mut rx,
        &mut resp,
        Urcs::default(),
    );
    let body = cellular_ota_sim::block_on(async {
        c.send(&cellular_ota::quectel::pdp::ActivateContext { cid: 1 })
            .await
            .unwrap();
        c.send(&SetHttpUrl::new(&server.url("/fw.bin")))
            .await
            .unwrap();
        c.send(&HttpGet::default()).await.unwrap();
        let r = c
            .wait_for(
                Duration::from_secs(61),
                |l| match cellular_ota::quectel::urc::Urc::parse(l) {
                    Some(Ok(cellular_ota::quectel::urc::Urc::HttpGet(r))) => Some(r),
                    _ => None,
                },
            )
            .await
            .unwrap();
        let len = r.result.unwrap().content_length.unwrap();
        let mut body = Vec::new();
        c.send_receive(&HttpRead::exact(len), |d| body.extend_from_slice(d))
            .await
            .unwrap();
        body
    });
    assert_eq!(body, file);
}

#[test]
fn serve_dir_records_requests() {
    let dir = std::env::temp_dir().join(format!("sim-serve-dir-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/a.bin"), b"0123456789").unwrap();
    let server = TestServer::serve_dir(&dir).unwrap();
    server.add_file("b.bin", b"bb").unwrap();
    let world = ready_world(Personality::Eg06);
    let urcs = Urcs::default();
    let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
    let mut c = client(&world, &mut rx, &mut resp, &urcs);
    setup(&mut c);
    pdp_up(&mut c);
    c.send(&SetHttpUrl::new(&server.url("/sub/a.bin"))).unwrap();
    c.send(&HttpGetRange::new(2, 3)).unwrap();
    let st = status(wait_get(&mut c, Duration::from_secs(61)));
    assert_eq!((st.status, st.content_length), (206, Some(3)));
    assert_eq!(read_body(&mut c, 3).0, b"234");
    assert_eq!(
        status(get(&mut c, &server.url("/b.bin"))).content_length,
        Some(2)
    );
    assert_eq!(status(get(&mut c, &server.url("/missing"))).status, 404);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 3);
    assert_eq!(
        (reqs[0].method.as_str(), reqs[0].path.as_str()),
        ("GET", "/sub/a.bin")
    );
    server.clear_requests();
    assert!(server.requests().is_empty());
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A host that stops reading (RTS/CTS holds the modem) for 10 s in the middle of a body
/// that comes over a 50 kbit/s downlink to a 921 600-baud UART: the module's buffer fills
/// and the server is held by the TCP window, so the stall costs time the network cannot
/// make up. With an unbounded buffer (`tcp_window: 0`) the module kept receiving and the
/// stall hid behind the download.
#[test]
fn a_stalled_reader_stalls_the_server_through_the_tcp_window() {
    let run = |window: usize| {
        let file = data(KB100, 5);
        let server = TestServer::start([("fw.bin", file.clone())]).unwrap();
        let mut modem = ModemConfig::new(Personality::Ec200u).ready().quiet();
        modem.network.downlink_bps = 50_000;
        modem.tcp_window = window;
        // A UART much faster than the network, so the network is the bottleneck.
        modem.baud = 921_600;
        let world = World::new(WorldConfig::new(modem).with_uart(UartConfig {
            host_rts: true,
            ..UartConfig::default().with_baud(921_600)
        }));
        let urcs = Urcs::default();
        let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
        let mut c = client(&world, &mut rx, &mut resp, &urcs);
        setup(&mut c);
        c.send(&SetFlowControl::HARDWARE).unwrap();
        pdp_up(&mut c);
        let t0 = world.elapsed();
        let st = status(get(&mut c, &server.url("/fw.bin")));
        let mut body = Vec::new();
        let mut stalled = false;
        let w = world.clone();
        c.send_receive(&HttpRead::exact(KB100 as u32).with_wait_time(30), |d| {
            body.extend_from_slice(d);
            if !stalled && body.len() >= 20 * 1024 {
                stalled = true;
                // The MCU is busy elsewhere: nothing is read, RTS goes down when full.
                w.advance_interrupts_off(Duration::from_secs(10));
            }
        })
        .unwrap();
        assert_eq!(body, file);
        assert_eq!(st.status, 200);
        assert_eq!(world.uart_bytes_lost(), 0);
        world.elapsed() - t0
    };
    let unbounded = run(0);
    let bounded = run(32 * 1024);
    // 100 KB at 6 250 bytes/s is 16.4 s: with an unbounded buffer the 10 s stall hides
    // behind the download; with 32 KiB the server stops after about 5 s of it.
    eprintln!("unbounded {unbounded:?}, bounded {bounded:?}");
    assert!(unbounded < Duration::from_secs(18), "{unbounded:?}");
    assert!(
        bounded >= unbounded + Duration::from_secs(4),
        "bounded {bounded:?}, unbounded {unbounded:?}"
    );
}
