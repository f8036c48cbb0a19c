//! The modem file system: QHTTPREADFILE + QFOPEN/QFREAD, QFUPL/QFDWL and their checksums.

mod common;

use std::time::Duration;

use cellular_ota::at::Clock;
use cellular_ota::client::{Error, Rejection};
use cellular_ota::quectel::file::{
    CloseFile, DeleteFile, DownloadFile, Drive, FileHandle, FilePosition, FreeSpace, ListFiles,
    OpenFile, OpenMode, ReadFile, SeekFile, SeekOrigin, UploadFile, WriteFile, XorChecksum,
    xor_checksum,
};
use cellular_ota::quectel::http::HttpReadFile;
use cellular_ota_sim::{Personality, TestServer};
use common::*;

fn cme<E: core::fmt::Debug>(r: Result<impl core::fmt::Debug, Error<E>>) -> Option<u16> {
    match r {
        Err(Error::Rejected(Rejection::Cme(c))) => c.code(),
        other => panic!("expected a CME error, got {other:?}"),
    }
}

#[test]
fn readfile_then_qfread_loop_reassembles_the_file() {
    let file = data(100 * 1024 + 17, 11);
    let server = TestServer::start([("fw.bin", file.clone())]).unwrap();
    for p in Personality::ALL {
        let world = ready_world(p);
        let urcs = Urcs::default();
        let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
        let mut c = client(&world, &mut rx, &mut resp, &urcs);
        setup(&mut c);
        pdp_up(&mut c);
        let st = get(&mut c, &server.url("/fw.bin")).result.unwrap();
        assert_eq!(st.content_length, Some(file.len() as u32));
        let t0 = c.clock().now();
        c.send(&HttpReadFile::new("UFS:fw.bin")).unwrap();
        let code = c
            .wait_for(Duration::from_secs(30), |l| {
                text(l)
                    .strip_prefix("+QHTTPREADFILE: ")
                    .and_then(|v| v.parse::<u16>().ok())
            })
            .unwrap();
        assert_eq!(code, 0);
        // ~102 kB at 50 kB/s.
        let took = c.clock().now().as_micros() - t0.as_micros();
        assert!((2_000_000..2_200_000).contains(&took), "{took}");
        let list = c.send(&ListFiles::name("UFS:fw.bin")).unwrap();
        let size = list.find("fw.bin").unwrap().size;
        assert_eq!(size as usize, file.len());
        let h = c
            .send(&OpenFile {
                name: "UFS:fw.bin",
                mode: OpenMode::ReadOnly,
            })
            .unwrap();
        assert_eq!(h, FileHandle(1027));
        let mut got = Vec::new();
        let mut sum = XorChecksum::default();
        loop {
            let r = c.send_receive(
                &ReadFile {
                    handle: h,
                    len: Some(1024),
                },
                |d| {
                    sum.update(d);
                    got.extend_from_slice(d)
                },
            );
            match r {
                Ok(_) => {}
                Err(Error::Rejected(Rejection::Cme(code))) => {
                    assert_eq!(code.code(), Some(402), "EOF");
                    break;
                }
                Err(e) => panic!("{e:?}"),
            }
        }
        assert_eq!(got, file, "{p:?}");
        assert_eq!(sum.finish(), xor_checksum(&file));
        assert_eq!(
            c.send(&FilePosition { handle: h }).unwrap(),
            file.len() as u32
        );
        c.send(&CloseFile { handle: h }).unwrap();
        assert_eq!(cme(c.send(&CloseFile { handle: h })), Some(416));
        assert_eq!(world.modem().file("fw.bin").unwrap(), file);
    }
}

#[test]
fn upload_download_and_checksums() {
    let world = ready_world(Personality::Ec200t);
    let urcs = Urcs::default();
    let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
    let mut c = client(&world, &mut rx, &mut resp, &urcs);
    setup(&mut c);
    let payload = data(4099, 12); // odd length: the last byte is a high byte
    let space = c.send(&FreeSpace { drive: Drive::Ufs }).unwrap();
    assert_eq!((space.free, space.total), (286_720, 286_720));
    let up = c.send(&UploadFile::new("UFS:blob.bin", &payload)).unwrap();
    assert_eq!(up.size as usize, payload.len());
    up.verify(&payload).unwrap();
    // Two 4 KiB blocks are used now.
    let space = c.send(&FreeSpace { drive: Drive::Ufs }).unwrap();
    assert_eq!(space.free, 286_720 - 8192);
    // Uploading the same name again: 407.
    assert_eq!(
        cme(c.send(&UploadFile::new("UFS:blob.bin", b"x"))),
        Some(407)
    );
    // More than the free space: 403.
    let big = vec![0u8; 300_000];
    assert_eq!(
        cme(c.send(&UploadFile::new("UFS:big.bin", &big))),
        Some(403)
    );
    // Download it back.
    let mut got = Vec::new();
    let (res, n) = c
        .send_receive(
            &DownloadFile {
                name: "UFS:blob.bin",
                size: payload.len() as u32,
            },
            |d| got.extend_from_slice(d),
        )
        .unwrap();
    assert_eq!(n as usize, payload.len());
    res.verify(&got).unwrap();
    assert_eq!(got, payload);
    // Write, seek, read back through a read/write handle.
    let h = c
        .send(&OpenFile {
            name: "RAM:scratch",
            mode: OpenMode::CreateOrTruncate,
        })
        .unwrap();
    let w = c
        .send(&WriteFile {
            handle: h,
            data: b"hello world",
            timeout_s: None,
        })
        .unwrap();
    assert_eq!((w.written, w.total), (11, 11));
    c.send(&SeekFile {
        handle: h,
        offset: 6,
        origin: SeekOrigin::Start,
    })
    .unwrap();
    let mut back = Vec::new();
    c.send_receive(
        &ReadFile {
            handle: h,
            len: None,
        },
        |d| back.extend_from_slice(d),
    )
    .unwrap();
    assert_eq!(back, b"world");
    assert_eq!(
        cme(c.send(&SeekFile {
            handle: h,
            offset: 100,
            origin: SeekOrigin::Start
        })),
        Some(401)
    );
    c.send(&CloseFile { handle: h }).unwrap();
    // Read-only handles refuse writes.
    let h = c
        .send(&OpenFile {
            name: "UFS:blob.bin",
            mode: OpenMode::ReadOnly,
        })
        .unwrap();
    assert_eq!(
        cme(c.send(&WriteFile {
            handle: h,
            data: b"x",
            timeout_s: None
        })),
        Some(414)
    );
    assert_eq!(
        cme(c.send(&OpenFile {
            name: "UFS:blob.bin",
            mode: OpenMode::ReadOnly
        })),
        Some(426)
    );
    c.send(&CloseFile { handle: h }).unwrap();
    c.send(&DeleteFile::new("UFS:blob.bin")).unwrap();
    assert_eq!(cme(c.send(&DeleteFile::new("UFS:blob.bin"))), Some(405));
    assert_eq!(
        cme(c.send(&OpenFile {
            name: "UFS:none",
            mode: OpenMode::ReadOnly
        })),
        Some(405)
    );
}

#[test]
fn qflst_names_follow_the_personality() {
    for (p, expect) in [
        (Personality::Ec200u, "+QFLST: \"a.bin\",3"),
        (Personality::Ec200t, "+QFLST: \"UFS:a.bin\",3"),
        (Personality::Eg06, "+QFLST: \"UFS:a.bin\",3"),
    ] {
        let world = ready_world(p);
        world.modem().put_file("UFS:a.bin", b"abc");
        world.modem().put_file("RAM:r", b"r");
        raw(&world, b"ATE0\r", Duration::from_millis(10));
        let out = text(&raw(&world, b"AT+QFLST=\"*\"\r", Duration::from_millis(10)));
        assert_eq!(out, format!("\r\n{expect}\r\n\r\nOK\r\n"));
        let out = text(&raw(
            &world,
            b"AT+QFLST=\"RAM:*\"\r",
            Duration::from_millis(10),
        ));
        assert_eq!(out, "\r\n+QFLST: \"RAM:r\",1\r\n\r\nOK\r\n");
        let out = text(&raw(&world, b"AT+QFLDS\r", Duration::from_millis(10)));
        assert_eq!(out, "\r\n+QFLDS: 3,1\r\n\r\nOK\r\n");
    }
}

#[test]
fn ack_mode_sends_an_a_per_kilobyte() {
    let world = ready_world(Personality::Eg06);
    raw(&world, b"ATE0\r", Duration::from_millis(10));
    let out = raw(
        &world,
        b"AT+QFUPL=\"UFS:up.bin\",2500,5,1\r",
        Duration::from_millis(10),
    );
    assert_eq!(text(&out), "\r\nCONNECT\r\n");
    let payload = data(2500, 13);
    let out = raw(&world, &payload[..1024], Duration::from_millis(200));
    assert_eq!(text(&out), "A");
    let out = raw(&world, &payload[1024..2048], Duration::from_millis(200));
    assert_eq!(text(&out), "A");
    let out = raw(&world, &payload[2048..], Duration::from_millis(200));
    assert_eq!(
        text(&out),
        format!(
            "\r\n+QFUPL: 2500,{:x}\r\n\r\nOK\r\n",
            xor_checksum(&payload)
        )
    );
    assert_eq!(world.modem().file("up.bin").unwrap(), payload);
}

#[test]
fn upload_gap_timeout_stores_what_arrived() {
    let world = ready_world(Personality::Eg06);
    raw(&world, b"ATE0\r", Duration::from_millis(10));
    raw(
        &world,
        b"AT+QFUPL=\"UFS:short.bin\",100,2\r",
        Duration::from_millis(10),
    );
    let out = raw(&world, b"ABCDE", Duration::from_secs(3));
    assert_eq!(text(&out), "\r\n+QFUPL: 5,4706\r\n\r\n+CME ERROR: 421\r\n");
    assert_eq!(world.modem().file("short.bin").unwrap(), b"ABCDE");
}
