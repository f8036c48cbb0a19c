//! The update flow against a scripted modem (byte-exact protocol), into the in-memory sink.
//! Whole-system runs against the simulated modem and the ESP-IDF sink live in `sim/tests`.

mod common;

use cellular_ota::client::blocking;
use cellular_ota::ota::manifest::{Manifest, ManifestError, Version, write_manifest};
use cellular_ota::ota::mem_sink::MemSink;
use cellular_ota::quectel::error::HttpError;
use cellular_ota::update::{
    Capability, Failure, Method, Outcome, Progress, Stage, Strategy, UpdateConfig, UpdateError,
    update_blocking,
};
use common::*;
use sha2::{Digest, Sha256};

const URL: &str = "http://example.com/fw.bin";
const MURL: &str = "http://example.com/fw.bin.manifest";

fn image(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn setup() -> Vec<Step> {
    vec![
        expect("AT+QHTTPSTOP\r"),
        reply("\r\nOK\r\n"),
        expect("AT+QHTTPCFG=\"contextid\",1\r"),
        reply("\r\nOK\r\n"),
        expect("AT+QHTTPCFG=\"responseheader\",0\r"),
        reply("\r\nOK\r\n"),
        expect("AT+QHTTPCFG=\"requestheader\",0\r"),
        reply("\r\nOK\r\n"),
    ]
}

fn set_url(url: &str) -> Vec<Step> {
    vec![
        expect(format!("AT+QHTTPURL={},60\r", url.len())),
        reply("\r\nCONNECT\r\n"),
        expect(url),
        reply("\r\nOK\r\n"),
    ]
}

fn get(status: u16, len: Option<usize>) -> Vec<Step> {
    let urc = match len {
        Some(n) => format!("\r\n+QHTTPGET: 0,{status},{n}\r\n"),
        None => format!("\r\n+QHTTPGET: 0,{status}\r\n"),
    };
    vec![
        expect("AT+QHTTPGET=60\r"),
        reply("\r\nOK\r\n"),
        reply_after(30, urc),
    ]
}

fn read(body: &[u8]) -> Vec<Step> {
    // The first body bytes arrive in the same read as CONNECT.
    let mut first = b"\r\nCONNECT\r\n".to_vec();
    let split = body.len().min(5);
    first.extend_from_slice(&body[..split]);
    let mut s = vec![expect("AT+QHTTPREAD=60\r"), reply(first)];
    for c in body[split..].chunks(100) {
        s.push(reply(c));
    }
    s.push(reply("\r\nOK\r\n"));
    s.push(reply_after(2, "\r\n+QHTTPREAD: 0\r\n"));
    s
}

fn cleanup() -> Vec<Step> {
    vec![expect("AT+QHTTPSTOP\r"), reply("\r\nOK\r\n")]
}

/// The update error of these runs.
type Error = UpdateError;

/// What a run produced: the result, the progress events, the modem, the activated image
/// and the bytes the sink holds.
type RunOutput = (
    Result<Outcome, Error>,
    Vec<Progress>,
    Sim,
    Option<Vec<u8>>,
    u32,
);

fn run(script: Vec<Step>, cfg: &UpdateConfig<'_>, mem: &mut [u8]) -> RunOutput {
    let sim = Sim::new(script);
    let (mut rx, mut resp) = ([0u8; 1024], [0u8; 256]);
    let mut client =
        blocking::Client::new(sim.port(), sim.clock(), &mut rx, &mut resp, Urcs::default());
    let mut sink = MemSink::new(mem);
    let mut buf = [0u8; 4096];
    let mut events = Vec::new();
    let r = update_blocking(&mut client, &mut sink, cfg, &mut buf, &mut |p| {
        events.push(p)
    });
    let img = sink.image().map(<[u8]>::to_vec);
    let written = sink.written();
    (r, events, sim, img, written)
}

const PRODUCT: &str = "test-product";

/// An unsigned manifest for `img`.
fn manifest_for(img: &[u8], version: &str) -> Vec<u8> {
    let m = Manifest {
        product: PRODUCT,
        hardware: None,
        version: Version::parse(version).unwrap(),
        size: img.len() as u32,
        sha256: Sha256::digest(img).into(),
        payload: cellular_ota::ota::manifest::Payload::Full,
        signature: None,
    };
    let mut out = [0u8; 512];
    let n = write_manifest(&m, &mut out).unwrap();
    out[..n].to_vec()
}

/// A configuration that opts in to unsigned images (these tests are about the transfer).
fn unsigned(url: &str) -> UpdateConfig<'_> {
    let mut c = UpdateConfig::new(url);
    c.allow_unsigned = true;
    c.product = Some(PRODUCT);
    c
}

#[test]
fn stream_without_manifest() {
    let img = image(1000);
    let mut s = setup();
    s.extend(set_url(URL));
    s.extend(get(200, Some(img.len())));
    s.extend(read(&img));
    s.extend(cleanup());
    let mut cfg = unsigned(URL);
    cfg.strategy = Strategy::Stream;
    let mut mem = vec![0u8; 4096];
    let (r, events, sim, out, _) = run(s, &cfg, &mut mem);
    let r = r.unwrap();
    sim.assert_done();
    assert_eq!(out.as_deref(), Some(&img[..]));
    match r {
        Outcome::Installed {
            method,
            size,
            sha256,
            resumed_from,
        } => {
            assert_eq!(method, Method::Stream);
            assert_eq!(size, 1000);
            assert_eq!(resumed_from, 0);
            assert_eq!(sha256, <[u8; 32]>::from(Sha256::digest(&img)));
        }
        other => panic!("{other:?}"),
    }
    assert!(events.contains(&Progress::Started {
        total: 1000,
        resumed_from: 0
    }));
    assert!(events.contains(&Progress::Bytes {
        done: 1000,
        total: 1000
    }));
}

#[test]
fn ranged_getex_with_manifest_pipelines_requests() {
    let img = image(10_000);
    let man = manifest_for(&img, "1.2.0");
    let mut s = setup();
    s.extend(set_url(MURL));
    s.extend(get(200, Some(man.len())));
    s.extend(read(&man));
    s.extend([
        expect("AT+QHTTPGETEX=?\r"),
        reply("\r\n+QHTTPGETEX: (1-65535),(0-2147483647),(1-2147483647)\r\n\r\nOK\r\n"),
    ]);
    s.extend(set_url(URL));
    let chunks = [(0usize, 4096usize), (4096, 4096), (8192, 1808)];
    // First range requested and answered.
    s.push(expect("AT+QHTTPGETEX=60,0,4096\r"));
    s.push(reply("\r\nOK\r\n"));
    s.push(reply_after(20, "\r\n+QHTTPGET: 0,206,4096\r\n"));
    for (i, &(off, len)) in chunks.iter().enumerate() {
        s.extend(read(&img[off..off + len]));
        if let Some(&(noff, nlen)) = chunks.get(i + 1) {
            // The next range is requested before the chunk is written.
            s.push(expect(format!("AT+QHTTPGETEX=60,{noff},{nlen}\r")));
            s.push(reply("\r\nOK\r\n"));
            s.push(reply_after(20, format!("\r\n+QHTTPGET: 0,206,{nlen}\r\n")));
        }
    }
    s.extend(cleanup());
    let mut cfg = unsigned(URL);
    cfg.manifest_url = Some(MURL);
    cfg.running_version = Some(Version::parse("1.1.9").unwrap());
    cfg.strategy = Strategy::Ranged;
    // Buffered ranges: each chunk is read into RAM before flash is touched.
    cfg.range_size = None;
    let mut mem = vec![0u8; 16_384];
    let (r, events, sim, out, _) = run(s, &cfg, &mut mem);
    r.unwrap();
    sim.assert_done();
    assert_eq!(out.as_deref(), Some(&img[..]));
    assert!(events.contains(&Progress::Manifest { size: 10_000 }));
    assert!(events.iter().any(|e| matches!(
        e,
        Progress::Strategy {
            method: Method::RangedGetex,
            ..
        }
    )));
}

#[test]
fn up_to_date_downloads_nothing() {
    let img = image(100);
    let man = manifest_for(&img, "2.0.0");
    let mut s = setup();
    s.extend(set_url(MURL));
    s.extend(get(200, Some(man.len())));
    s.extend(read(&man));
    s.extend(cleanup());
    let mut cfg = unsigned(URL);
    cfg.manifest_url = Some(MURL);
    cfg.running_version = Some(Version::parse("2.0.0").unwrap());
    let mut mem = vec![0u8; 1024];
    let (r, _, sim, out, _) = run(s, &cfg, &mut mem);
    assert_eq!(r.unwrap(), Outcome::UpToDate);
    sim.assert_done();
    assert_eq!(out, None);
}

#[test]
fn header_range_falls_back_to_stream_when_server_ignores_range() {
    let img = image(6000);
    let mut s = setup();
    // Without a manifest a first GET learns the size.
    s.extend(set_url(URL));
    s.extend(get(200, Some(img.len())));
    s.extend([expect("AT+QHTTPGETEX=?\r"), reply("\r\nERROR\r\n")]);
    s.extend(set_url(URL));
    s.extend([
        expect("AT+QHTTPCFG=\"requestheader\",1\r"),
        reply("\r\nOK\r\n"),
    ]);
    let hdr = "GET /fw.bin HTTP/1.1\r\nHost: example.com\r\nRange: bytes=0-3583\r\n\r\n";
    s.push(expect(format!("AT+QHTTPGET=60,{}\r", hdr.len())));
    s.push(reply("\r\nCONNECT\r\n"));
    s.push(expect(hdr));
    s.push(reply("\r\nOK\r\n"));
    s.push(reply_after(
        20,
        format!("\r\n+QHTTPGET: 0,200,{}\r\n", img.len()),
    ));
    s.extend(read(&img));
    s.extend([
        expect("AT+QHTTPCFG=\"requestheader\",0\r"),
        reply("\r\nOK\r\n"),
    ]);
    s.extend(cleanup());
    let mut cfg = unsigned(URL);
    cfg.strategy = Strategy::Ranged;
    cfg.range_size = None;
    let mut mem = vec![0u8; 8192];
    let (r, events, sim, out, _) = run(s, &cfg, &mut mem);
    let r = r.unwrap();
    sim.assert_done();
    assert_eq!(out.as_deref(), Some(&img[..]));
    assert!(matches!(
        r,
        Outcome::Installed {
            method: Method::StreamErasedAhead,
            ..
        }
    ));
    assert!(events.iter().any(|e| matches!(
        e,
        Progress::Fallback {
            to: Method::StreamErasedAhead,
            ..
        }
    )));
}

#[test]
fn modem_file_strategy() {
    let img = image(5000);
    let mut s = setup();
    s.extend(set_url(URL));
    s.extend(get(200, Some(img.len())));
    s.extend([
        expect("AT+QFLST=\"UFS:ota.bin\"\r"),
        reply("\r\n+CME ERROR: 405\r\n"),
        expect("AT+QFLDS=\"UFS\"\r"),
        reply("\r\n+QFLDS: 180224,286720\r\n\r\nOK\r\n"),
        expect("AT+QHTTPREADFILE=\"UFS:ota.bin\",60\r"),
        reply("\r\nOK\r\n"),
        reply_after(500, "\r\n+QHTTPREADFILE: 0\r\n"),
        expect("AT+QFLST=\"UFS:ota.bin\"\r"),
        reply("\r\n+QFLST: \"UFS:ota.bin\",5000\r\n\r\nOK\r\n"),
        expect("AT+QFOPEN=\"UFS:ota.bin\",2\r"),
        reply("\r\n+QFOPEN: 1027\r\n\r\nOK\r\n"),
    ]);
    for (off, len) in [(0usize, 4096usize), (4096, 904)] {
        s.push(expect(format!("AT+QFREAD=1027,{len}\r")));
        let mut r = format!("\r\nCONNECT {len}\r\n").into_bytes();
        r.extend_from_slice(&img[off..off + len]);
        r.extend_from_slice(b"\r\nOK\r\n");
        s.push(reply(r));
    }
    s.extend([expect("AT+QFCLOSE=1027\r"), reply("\r\nOK\r\n")]);
    s.extend(cleanup());
    s.extend([expect("AT+QFDEL=\"UFS:ota.bin\"\r"), reply("\r\nOK\r\n")]);
    let mut cfg = unsigned(URL);
    cfg.strategy = Strategy::ModemFile;
    let mut mem = vec![0u8; 8192];
    let (r, _, sim, out, _) = run(s, &cfg, &mut mem);
    r.unwrap();
    sim.assert_done();
    assert_eq!(out.as_deref(), Some(&img[..]));
}

#[test]
fn http_404_is_a_typed_error_and_the_session_is_stopped() {
    let mut s = setup();
    s.extend(set_url(URL));
    s.extend(get(404, Some(0)));
    s.extend(cleanup());
    let cfg = unsigned(URL);
    let mut mem = vec![0u8; 1024];
    let (r, _, sim, out, _) = run(s, &cfg, &mut mem);
    let e = r.unwrap_err();
    assert_eq!(e.stage, Stage::HttpStatus);
    assert!(matches!(e.failure, Failure::Status(404)), "{e}");
    sim.assert_done();
    assert_eq!(out, None);
}

#[test]
fn cme_error_carries_code_and_meaning() {
    let mut s = setup();
    s.extend(set_url(URL));
    s.extend([expect("AT+QHTTPGET=60\r"), reply("\r\n+CME ERROR: 716\r\n")]);
    s.extend(cleanup());
    let cfg = unsigned(URL);
    let mut mem = vec![0u8; 1024];
    let (r, _, sim, _, _) = run(s, &cfg, &mut mem);
    let e = r.unwrap_err();
    assert_eq!(e.code(), Some(716));
    assert_eq!(e.meaning(), Some("socket connect error"));
    sim.assert_done();
}

#[test]
fn read_error_after_all_bytes_is_still_an_error() {
    let img = image(300);
    let mut s = setup();
    s.extend(set_url(URL));
    s.extend(get(200, Some(img.len())));
    let mut r = read(&img);
    r.pop();
    r.push(reply_after(2, "\r\n+QHTTPREAD: 717\r\n"));
    s.extend(r);
    s.extend(cleanup());
    let mut cfg = unsigned(URL);
    cfg.strategy = Strategy::Stream;
    let mut mem = vec![0u8; 1024];
    let (r, _, sim, out, _) = run(s, &cfg, &mut mem);
    let e = r.unwrap_err();
    assert_eq!(e.stage, Stage::Transfer);
    assert!(
        matches!(e.failure, Failure::Http(HttpError::SocketReadError)),
        "{e}"
    );
    sim.assert_done();
    assert_eq!(out, None, "nothing activated");
}

#[test]
fn wrong_hash_is_never_activated() {
    let img = image(500);
    // A manifest for a different image of the same size.
    let other: Vec<u8> = img.iter().map(|b| b ^ 1).collect();
    let man = manifest_for(&other, "3.0.0");
    let mut s = setup();
    s.extend(set_url(MURL));
    s.extend(get(200, Some(man.len())));
    s.extend(read(&man));
    s.extend(set_url(URL));
    s.extend(get(200, Some(img.len())));
    s.extend(read(&img));
    s.extend(cleanup());
    let mut cfg = unsigned(URL);
    cfg.manifest_url = Some(MURL);
    cfg.strategy = Strategy::Stream;
    let mut mem = vec![0u8; 1024];
    let (r, _, sim, out, _) = run(s, &cfg, &mut mem);
    let e = r.unwrap_err();
    assert_eq!(e.stage, Stage::Verification);
    assert!(matches!(e.failure, Failure::HashMismatch), "{e}");
    sim.assert_done();
    assert_eq!(out, None);
}

#[test]
fn resume_after_a_dropped_link_continues_from_durable_bytes() {
    let img = image(3000);
    // Run 1: the link drops after 1200 body bytes.
    let mut s = setup();
    s.extend(set_url(URL));
    s.extend(get(200, Some(img.len())));
    let mut first = b"\r\nCONNECT\r\n".to_vec();
    first.extend_from_slice(&img[..1200]);
    s.extend([expect("AT+QHTTPREAD=60\r"), reply(first)]);
    s.extend(cleanup());
    let sim = Sim::new(s);
    let (mut rx, mut resp) = ([0u8; 1024], [0u8; 256]);
    let mut client =
        blocking::Client::new(sim.port(), sim.clock(), &mut rx, &mut resp, Urcs::default());
    let mut mem = vec![0u8; 4096];
    let mut sink = MemSink::new(&mut mem);
    let mut buf = [0u8; 4096];
    let mut cfg = unsigned(URL);
    cfg.strategy = Strategy::Stream;
    let e = update_blocking(&mut client, &mut sink, &cfg, &mut buf, &mut |_| {}).unwrap_err();
    assert_eq!(e.stage, cellular_ota::update::Stage::Transfer);
    assert!(matches!(
        e.failure,
        cellular_ota::update::Failure::Modem(cellular_ota::client::Error::Timeout)
    ));
    assert_eq!(e.bytes_done, 1200);
    sim.assert_done();
    drop(client);

    // Run 2, same sink: a range request for the rest only.
    let mut s = setup();
    s.extend(set_url(URL));
    s.extend(get(200, Some(img.len())));
    s.extend([expect("AT+QHTTPGETEX=?\r"), reply("\r\nOK\r\n")]);
    s.extend(set_url(URL));
    s.extend([
        expect("AT+QHTTPGETEX=60,1200,1800\r"),
        reply("\r\nOK\r\n"),
        reply_after(20, "\r\n+QHTTPGET: 0,206,1800\r\n"),
    ]);
    s.extend(read(&img[1200..]));
    s.extend(cleanup());
    let sim = Sim::new(s);
    let (mut rx, mut resp) = ([0u8; 1024], [0u8; 256]);
    let mut client =
        blocking::Client::new(sim.port(), sim.clock(), &mut rx, &mut resp, Urcs::default());
    let mut events = Vec::new();
    let cfg = unsigned(URL);
    let r = update_blocking(&mut client, &mut sink, &cfg, &mut buf, &mut |p| {
        events.push(p)
    })
    .unwrap();
    sim.assert_done();
    assert!(matches!(
        r,
        Outcome::Installed {
            resumed_from: 1200,
            method: Method::RangedGetex,
            ..
        }
    ));
    assert_eq!(sink.image(), Some(&img[..]));
    assert!(events.contains(&Progress::Started {
        total: 3000,
        resumed_from: 1200
    }));
}

#[test]
fn modem_reboot_while_waiting_is_reported_at_once() {
    let mut s = setup();
    s.extend(set_url(URL));
    s.extend([
        expect("AT+QHTTPGET=60\r"),
        reply("\r\nOK\r\n"),
        reply_after(100, "\r\nRDY\r\n\r\n+CFUN: 1\r\n"),
    ]);
    s.extend(cleanup());
    let cfg = unsigned(URL);
    let mut mem = vec![0u8; 1024];
    let (r, _, sim, _, _) = run(s, &cfg, &mut mem);
    let e = r.unwrap_err();
    assert_eq!(e.stage, Stage::Request);
    assert!(matches!(e.failure, Failure::ModemRebooted), "{e}");
    // Far less than the 61 s result deadline.
    assert!(sim.now_ms() < 5_000, "{} ms", sim.now_ms());
    sim.assert_done();
}

#[test]
fn chunked_body_containing_the_trailer_is_read_completely() {
    // The image itself contains the bytes the modem uses to end a read of unknown length.
    let mut img = image(700);
    img[300..325].copy_from_slice(b"\r\nOK\r\n\r\n+QHTTPREAD: 0\r\nXX");
    let man = manifest_for(&img, "1.0.1");
    let mut s = setup();
    s.extend(set_url(MURL));
    s.extend(get(200, Some(man.len())));
    s.extend(read(&man));
    s.extend(set_url(URL));
    s.extend(get(200, None));
    s.extend(read(&img));
    s.extend(cleanup());
    let mut cfg = unsigned(URL);
    cfg.manifest_url = Some(MURL);
    cfg.strategy = Strategy::Stream;
    let mut mem = vec![0u8; 1024];
    let (r, _, sim, out, _) = run(s, &cfg, &mut mem);
    r.unwrap();
    sim.assert_done();
    assert_eq!(out.as_deref(), Some(&img[..]));
}

#[test]
fn https_configures_tls_and_uploads_the_ca_checked_by_checksum() {
    let img = image(64);
    const HTTPS: &str = "https://example.com/fw.bin";
    let pem = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    let sum = cellular_ota::quectel::file::xor_checksum(pem);
    let mut s = setup();
    s.extend([
        expect("AT+QSSLCFG=\"sslversion\",1,4\r"),
        reply("\r\nOK\r\n"),
        expect("AT+QSSLCFG=\"seclevel\",1,1\r"),
        reply("\r\nOK\r\n"),
        expect("AT+QSSLCFG=\"sni\",1,1\r"),
        reply("\r\nOK\r\n"),
        expect("AT+QSSLCFG=\"ignorelocaltime\",1,1\r"),
        reply("\r\nOK\r\n"),
        expect("AT+QFDEL=\"UFS:ca.pem\"\r"),
        reply("\r\n+CME ERROR: 405\r\n"),
        expect(format!("AT+QFUPL=\"UFS:ca.pem\",{}\r", pem.len())),
        reply("\r\nCONNECT\r\n"),
        expect(&pem[..]),
        reply(format!("\r\n+QFUPL: {},{:x}\r\n\r\nOK\r\n", pem.len(), sum)),
        expect("AT+QSSLCFG=\"cacert\",1,\"UFS:ca.pem\"\r"),
        reply("\r\nOK\r\n"),
        expect("AT+QHTTPCFG=\"sslctxid\",1\r"),
        reply("\r\nOK\r\n"),
    ]);
    s.extend(set_url(HTTPS));
    s.extend(get(200, Some(img.len())));
    s.extend(read(&img));
    s.extend(cleanup());
    let mut cfg = unsigned(HTTPS);
    cfg.strategy = Strategy::Stream;
    cfg.tls = Some(cellular_ota::update::Tls {
        ca_cert: Some(cellular_ota::update::CaCert {
            file: "UFS:ca.pem",
            pem,
        }),
        ..Default::default()
    });
    let mut mem = vec![0u8; 1024];
    let (r, _, sim, out, _) = run(s, &cfg, &mut mem);
    r.unwrap();
    sim.assert_done();
    assert_eq!(out.as_deref(), Some(&img[..]));
}

#[test]
fn badly_signed_or_older_manifests_are_refused_before_any_download() {
    let img = image(100);
    let key = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([7; 32]));
    let other = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([8; 32]));
    let sign = |kp: &ed25519_compact::KeyPair, product: &str| {
        let mut m = Manifest {
            product,
            hardware: None,
            version: Version::parse("2.0.0").unwrap(),
            size: img.len() as u32,
            sha256: Sha256::digest(&img).into(),
            payload: cellular_ota::ota::manifest::Payload::Full,
            signature: None,
        };
        let mut msg = [0u8; 512];
        let msg = m.signed_message(&mut msg).unwrap();
        m.signature = Some(*kp.sk.sign(msg, None));
        let mut out = [0u8; 512];
        let n = write_manifest(&m, &mut out).unwrap();
        out[..n].to_vec()
    };
    let cases: [(Vec<u8>, &str, ManifestError); 4] = [
        (sign(&other, PRODUCT), "1.0.0", ManifestError::BadSignature),
        (
            manifest_for(&img, "2.0.0"),
            "1.0.0",
            ManifestError::NoSignature,
        ),
        (
            sign(&key, PRODUCT),
            "3.0.0",
            ManifestError::Downgrade {
                offered: [2, 0, 0],
                running: [3, 0, 0],
            },
        ),
        (
            sign(&key, "another-product"),
            "1.0.0",
            ManifestError::OtherProduct,
        ),
    ];
    for (man, running, want) in cases {
        let mut s = setup();
        s.extend(set_url(MURL));
        s.extend(get(200, Some(man.len())));
        s.extend(read(&man));
        s.extend(cleanup());
        let cfg = UpdateConfig::signed(
            URL,
            MURL,
            *key.pk,
            PRODUCT,
            Version::parse(running).unwrap(),
        );
        let mut mem = vec![0u8; 1024];
        let (r, _, sim, out, written) = run(s, &cfg, &mut mem);
        let e = r.unwrap_err();
        assert_eq!(e.stage, Stage::Manifest);
        assert!(
            matches!(e.failure, Failure::Manifest(got) if got == want),
            "{e}"
        );
        sim.assert_done();
        assert_eq!((out, written), (None, 0));
    }
}

#[test]
fn direct_ranges_are_prepared_while_the_modem_fetches() {
    let img = image(10_000);
    let man = manifest_for(&img, "1.3.0");
    let mut s = setup();
    s.extend(set_url(MURL));
    s.extend(get(200, Some(man.len())));
    s.extend(read(&man));
    s.extend([expect("AT+QHTTPGETEX=?\r"), reply("\r\nOK\r\n")]);
    s.extend(set_url(URL));
    for (off, len) in [(0usize, 4000usize), (4000, 4000), (8000, 2000)] {
        s.push(expect(format!("AT+QHTTPGETEX=60,{off},{len}\r")));
        s.push(reply("\r\nOK\r\n"));
        s.push(reply_after(20, format!("\r\n+QHTTPGET: 0,206,{len}\r\n")));
        s.extend(read(&img[off..off + len]));
    }
    s.extend(cleanup());
    let mut cfg = unsigned(URL);
    cfg.manifest_url = Some(MURL);
    cfg.strategy = Strategy::Ranged;
    cfg.range_size = Some(4000);
    let mut mem = vec![0u8; 16_384];
    let (r, events, sim, out, _) = run(s, &cfg, &mut mem);
    let r = r.unwrap();
    sim.assert_done();
    assert_eq!(out.as_deref(), Some(&img[..]));
    assert!(matches!(
        r,
        Outcome::Installed {
            method: Method::RangedGetex,
            ..
        }
    ));
    // Page-sized writes: no progress step is larger than 256 bytes.
    let mut last = 0;
    for e in &events {
        if let Progress::Bytes { done, .. } = e {
            assert!(done - last <= 256, "{} bytes in one write", done - last);
            last = *done;
        }
    }
}

#[test]
fn bytes_lost_on_the_uart_are_named_as_such() {
    // 20 body bytes never reached the MCU: the modem's trailer fills the expected count.
    let img = image(400);
    let mut s = setup();
    s.extend(set_url(URL));
    s.extend(get(200, Some(img.len())));
    let mut body = b"\r\nCONNECT\r\n".to_vec();
    body.extend_from_slice(&img[..380]);
    body.extend_from_slice(b"\r\nOK\r\n\r\n+QHTTPREAD: 0\r\n");
    s.extend([expect("AT+QHTTPREAD=60\r"), reply(body)]);
    s.extend(cleanup());
    let mut cfg = unsigned(URL);
    cfg.strategy = Strategy::Stream;
    let mut mem = vec![0u8; 1024];
    let (r, _, sim, out, _) = run(s, &cfg, &mut mem);
    let e = r.unwrap_err();
    assert_eq!(e.stage, Stage::Transfer);
    assert!(matches!(e.failure, Failure::BytesLost { .. }), "{e}");
    sim.assert_done();
    assert_eq!(out, None);
}

#[test]
fn configurations_that_mean_less_than_they_say_are_refused_before_anything_is_sent() {
    use cellular_ota::update::{ConfigError as C, Setting};
    let key = [7u8; 32];
    let running = Version::new(1, 0, 0);
    let signed = || UpdateConfig::signed(URL, MURL, key, PRODUCT, running);
    type Edit = fn(&mut UpdateConfig<'static>);
    let cases: Vec<(&str, Edit, C)> = vec![
        (
            "key without a manifest",
            |c| c.manifest_url = None,
            C::KeyWithoutManifest,
        ),
        ("no key, no opt-in", |c| c.public_key = None, C::NoPublicKey),
        (
            "key and unsigned opt-in",
            |c| c.allow_unsigned = true,
            C::UnsignedWithKey,
        ),
        (
            "key without the running version",
            |c| c.running_version = None,
            C::RunningVersionRequired,
        ),
        (
            "manifest without a product",
            |c| c.product = None,
            C::ProductRequired,
        ),
        (
            "product that is not an identifier",
            |c| c.product = Some("pump controller"),
            C::Invalid {
                setting: Setting::Product,
            },
        ),
        (
            "hardware that is not an identifier",
            |c| c.hardware = Some(""),
            C::Invalid {
                setting: Setting::Hardware,
            },
        ),
        (
            "URL that would break the AT line",
            |c| c.url = "http://example.com/fw.bin\"\r\nAT+QPOWD",
            C::Invalid {
                setting: Setting::Url,
            },
        ),
        (
            "manifest URL without a scheme",
            |c| c.manifest_url = Some("example.com/m"),
            C::Invalid {
                setting: Setting::ManifestUrl,
            },
        ),
        (
            "zero chunk",
            |c| c.chunk_size = 0,
            C::Zero {
                setting: Setting::ChunkSize,
            },
        ),
        (
            "zero range",
            |c| c.range_size = Some(0),
            C::Zero {
                setting: Setting::RangeSize,
            },
        ),
        (
            "zero program size",
            |c| c.program_size = 0,
            C::Zero {
                setting: Setting::ProgramSize,
            },
        ),
        (
            "zero read wait",
            |c| c.read_wait = 0,
            C::Zero {
                setting: Setting::ReadWait,
            },
        ),
        (
            "chunk larger than the buffer",
            |c| c.chunk_size = 8192,
            C::OutOfRange {
                setting: Setting::ChunkSize,
                value: 8192,
                min: 1,
                max: 4096,
            },
        ),
        (
            "module file name that would break the AT line",
            |c| c.modem_file = "UFS:ota\".bin",
            C::Invalid {
                setting: Setting::ModemFile,
            },
        ),
        (
            "SSL context 6",
            |c| {
                c.tls = Some(cellular_ota::update::Tls {
                    ssl_ctx: 6,
                    ..Default::default()
                })
            },
            C::OutOfRange {
                setting: Setting::SslContext,
                value: 6,
                min: 0,
                max: 5,
            },
        ),
        (
            "context 0",
            |c| c.context_id = 0,
            C::OutOfRange {
                setting: Setting::ContextId,
                value: 0,
                min: 1,
                max: 16,
            },
        ),
    ];
    for (what, edit, want) in cases {
        let mut cfg = signed();
        edit(&mut cfg);
        // An empty script: any byte written to the modem fails the run.
        let mut mem = vec![0u8; 1024];
        let (r, events, sim, out, _) = run(vec![], &cfg, &mut mem);
        let e = r.unwrap_err();
        assert_eq!(e.stage, Stage::Config, "{what}");
        assert!(
            matches!(e.failure, Failure::Config(got) if got == want),
            "{what}: {e}"
        );
        assert_eq!(e.bytes_done, 0);
        assert!(events.is_empty(), "{what}");
        assert!(sim.written().is_empty(), "{what}: {:?}", sim.written());
        assert_eq!(out, None);
    }
    // An empty chunk buffer (it used to panic in `clamp`, or loop in the resume re-hash).
    let sim = Sim::new(vec![]);
    let (mut rx, mut resp) = ([0u8; 1024], [0u8; 256]);
    let mut client =
        blocking::Client::new(sim.port(), sim.clock(), &mut rx, &mut resp, Urcs::default());
    let mut mem = vec![0u8; 1024];
    let mut sink = MemSink::new(&mut mem);
    let e = update_blocking(&mut client, &mut sink, &signed(), &mut [], &mut |_| {}).unwrap_err();
    assert!(matches!(
        e.failure,
        Failure::Config(C::BufferTooSmall { len: 0, min: 1024 })
    ));
    assert!(sim.written().is_empty());
    // The buffer minimum, and sizes that do not fit the sink's write unit.
    assert_eq!(
        signed().validate(512, 1),
        Err(C::BufferTooSmall {
            len: 512,
            min: 1024
        })
    );
    let mut c = signed();
    c.program_size = 250;
    assert_eq!(
        c.validate(4096, 4),
        Err(C::Misaligned {
            setting: Setting::ProgramSize,
            value: 250,
            unit: 4
        })
    );
    assert_eq!(signed().validate(4096, 4), Ok(()));
    // Unsigned installs are possible, when asked for.
    let mut c = UpdateConfig::new(URL);
    c.allow_unsigned = true;
    assert_eq!(c.validate(4096, 1), Ok(()));
}

/// Before the image URL is requested, a manifest that offers a delta is refused with a
/// typed error when the sink cannot read the running image (the delta's base; `MemSink`
/// without `with_running`); a build without the decoder refuses every patch payload, since a
/// patch written as an image would fail its hash only after the whole download.
#[test]
fn a_patch_payload_is_refused_before_the_download() {
    use cellular_ota::ota::manifest::{ManifestError, Payload};
    let img = image(1000);
    let decoder = cfg!(all(feature = "delta", feature = "ranged"));
    let compressed = Payload::Compressed {
        size: 500,
        sha256: [3; 32],
    };
    for payload in [
        compressed,
        Payload::Delta {
            size: 100,
            sha256: [4; 32],
            base_size: 900,
            base_sha256: [5; 32],
        },
    ] {
        // With the decoder, a compressed image goes on to the download (tests/http_modem.rs).
        if decoder && payload == compressed {
            continue;
        }
        let m = Manifest {
            product: PRODUCT,
            hardware: None,
            version: Version::parse("1.2.0").unwrap(),
            size: img.len() as u32,
            sha256: Sha256::digest(&img).into(),
            payload,
            signature: None,
        };
        let mut out = [0u8; 1024];
        let n = write_manifest(&m, &mut out).unwrap();
        let man = out[..n].to_vec();
        let mut s = setup();
        s.extend(set_url(MURL));
        s.extend(get(200, Some(man.len())));
        s.extend(read(&man));
        s.extend(cleanup());
        let mut cfg = unsigned(URL);
        cfg.manifest_url = Some(MURL);
        cfg.running_version = Some(Version::parse("1.1.9").unwrap());
        let mut mem = vec![0u8; 4096];
        let (r, _, sim, out, _) = run(s, &cfg, &mut mem);
        sim.assert_done();
        assert_eq!(out, None);
        let e = r.unwrap_err();
        assert_eq!(e.stage, Stage::Manifest);
        if decoder {
            assert!(
                matches!(e.failure, Failure::Unsupported(Capability::RunningImage)),
                "{e}"
            );
        } else {
            assert!(
                matches!(
                    e.failure,
                    Failure::Manifest(ManifestError::UnsupportedPayload { kind }) if kind == payload.kind()
                ),
                "{e}"
            );
        }
    }
}
