//! The modem on a pseudo-terminal, in real time, opened like a serial port.
#![cfg(unix)]

mod common;

use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cellular_ota_sim::{ModemConfig, Personality, PtyModem, TestServer, WorldConfig};

/// Reads from `port` until `until` appears or `timeout` passes.
fn read_until(port: &mut std::fs::File, until: &[u8], timeout: Duration) -> Vec<u8> {
    let mut port = port.try_clone().unwrap();
    let until = until.to_vec();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        while !got.windows(until.len()).any(|w| w == until.as_slice()) {
            match port.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        let _ = tx.send(got);
    });
    rx.recv_timeout(timeout).unwrap_or_default()
}

#[test]
fn pty_round_trip() {
    let server = TestServer::start([("hello.txt", b"hello over a pty".to_vec())]).unwrap();
    let cfg = ModemConfig::new(Personality::Ec200u).ready().quiet();
    let modem = PtyModem::spawn(WorldConfig::new(cfg)).unwrap();
    let path = modem.slave_path().to_path_buf();
    assert!(
        path.to_string_lossy().starts_with("/dev/pts/"),
        "{}",
        path.display()
    );
    let mut port = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let t0 = Instant::now();
    port.write_all(b"AT\r").unwrap();
    let got = read_until(&mut port, b"OK\r\n", Duration::from_secs(5));
    assert_eq!(got, b"AT\r\r\nOK\r\n");
    assert!(t0.elapsed() < Duration::from_secs(2));
    port.write_all(b"ATE0\r").unwrap();
    read_until(&mut port, b"OK\r\n", Duration::from_secs(5));
    port.write_all(b"ATI\r").unwrap();
    let got = read_until(&mut port, b"OK\r\n", Duration::from_secs(5));
    assert_eq!(
        String::from_utf8_lossy(&got),
        "\r\nQuectel\r\nEC200U\r\nRevision: EC200UCNAAR01A04M08\r\n\r\nOK\r\n"
    );
    // A whole HTTP exchange, typed as a terminal user would.
    let url = server.url("/hello.txt");
    port.write_all(b"AT+QIACT=1\r").unwrap();
    read_until(&mut port, b"OK\r\n", Duration::from_secs(5));
    port.write_all(format!("AT+QHTTPURL={},10\r", url.len()).as_bytes())
        .unwrap();
    read_until(&mut port, b"CONNECT\r\n", Duration::from_secs(5));
    port.write_all(url.as_bytes()).unwrap();
    read_until(&mut port, b"OK\r\n", Duration::from_secs(5));
    port.write_all(b"AT+QHTTPGET=10\r").unwrap();
    let got = read_until(
        &mut port,
        b"+QHTTPGET: 0,200,16\r\n",
        Duration::from_secs(5),
    );
    assert!(
        got.ends_with(b"+QHTTPGET: 0,200,16\r\n"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    port.write_all(b"AT+QHTTPREAD=10\r").unwrap();
    let got = read_until(&mut port, b"+QHTTPREAD: 0\r\n", Duration::from_secs(5));
    assert_eq!(
        String::from_utf8_lossy(&got),
        "\r\nCONNECT\r\nhello over a pty\r\nOK\r\n\r\n+QHTTPREAD: 0\r\n"
    );
    drop(port);
    drop(modem);
}
