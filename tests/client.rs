//! The blocking and async clients against a scripted modem on virtual time.

mod common;

use core::time::Duration;

use cellular_ota::at::{
    AtCommand, DataLength, DataPhase, EncodeError, Encoder, Lines, ParseError, ResponseLines,
};
use cellular_ota::client::{Error, ModemCode, Rejection, TimeoutExt, asynch, blocking};
use common::*;

struct Attention;
impl AtCommand for Attention {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT")
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(), ParseError> {
        lines.end()
    }
}

struct Csq;
impl AtCommand for Csq {
    type Response<'a> = (u32, u32);
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+CSQ")
    }
    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Prefixed(b"+CSQ:")
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<(u32, u32), ParseError> {
        let mut p = lines.expect_prefixed(b"+CSQ:")?;
        Ok((p.u32()?, p.u32()?))
    }
}

struct Ati;
impl AtCommand for Ati {
    type Response<'a> = &'a [u8];
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"ATI")
    }
    fn response_lines(&self) -> ResponseLines {
        ResponseLines::Unprefixed
    }
    fn parse<'a>(&self, mut lines: Lines<'a>) -> Result<&'a [u8], ParseError> {
        lines.expect()?;
        lines.expect()
    }
}

struct Url<'u>(&'u str);
impl AtCommand for Url<'_> {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        cellular_ota::at::command::check_text(self.0.as_bytes(), 700)?;
        enc.raw(b"AT+QHTTPURL=")?;
        enc.u32(self.0.len() as u32)?;
        enc.raw(b",80")
    }
    fn data(&self) -> DataPhase<'_> {
        DataPhase::Send(self.0.as_bytes())
    }
    fn parse<'a>(&self, _: Lines<'a>) -> Result<(), ParseError> {
        Ok(())
    }
}

struct Read(DataLength);
impl AtCommand for Read {
    type Response<'a> = ();
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), EncodeError> {
        enc.raw(b"AT+QHTTPREAD=80")
    }
    fn data(&self) -> DataPhase<'_> {
        DataPhase::Receive(self.0)
    }
    fn parse<'a>(&self, _: Lines<'a>) -> Result<(), ParseError> {
        Ok(())
    }
}

macro_rules! both {
    ($name:ident, |$client:ident, $sim:ident| $body:block, $script:expr) => {
        mod $name {
            use super::*;
            #[test]
            fn blocking() {
                let $sim = Sim::new($script);
                let (mut rx, mut resp) = ([0u8; 256], [0u8; 128]);
                let urcs = Urcs::default();
                #[allow(unused_mut)]
                let mut $client = blocking::Client::new(
                    $sim.port(),
                    $sim.clock(),
                    &mut rx,
                    &mut resp,
                    urcs.clone(),
                );
                #[allow(unused_macros)]
                macro_rules! run {
                    ($e:expr) => {
                        $e
                    };
                }
                let urcs_out: Vec<String> = {
                    $body;
                    urcs.lines()
                };
                let _ = urcs_out;
            }
            #[test]
            fn asynch() {
                let $sim = Sim::new($script);
                let (mut rx, mut resp) = ([0u8; 256], [0u8; 128]);
                let urcs = Urcs::default();
                #[allow(unused_mut)]
                let mut $client = asynch::Client::new(
                    $sim.port(),
                    $sim.clock(),
                    &mut rx,
                    &mut resp,
                    urcs.clone(),
                );
                #[allow(unused_macros)]
                macro_rules! run {
                    ($e:expr) => {
                        block_on($e)
                    };
                }
                let urcs_out: Vec<String> = {
                    $body;
                    urcs.lines()
                };
                let _ = urcs_out;
            }
        }
    };
}

both!(
    ok_with_echo_and_urc,
    |c, sim| {
        let r = run!(c.send(&Csq)).unwrap();
        assert_eq!(r, (23, 99));
        sim.assert_done();
    },
    vec![
        expect("AT+CSQ\r"),
        reply("AT+CSQ\r\r\n+QIND: \"csq\",23,99\r\n"),
        reply("\r\n+CSQ: 23,99\r\n\r\nOK\r\n"),
    ]
);

both!(
    urc_between_lines_is_delivered,
    |c, sim| {
        let id = run!(c.send(&Ati)).unwrap();
        assert_eq!(id, b"EC200U");
        sim.assert_done();
    },
    vec![
        expect("ATI\r"),
        reply(
            "\r\nQuectel\r\n\r\nRDY\r\n\r\nEC200U\r\n\r\nRevision: EC200UCNAAR01A04M08\r\n\r\nOK\r\n"
        ),
    ]
);

both!(
    cme_error_numeric_and_text,
    |c, sim| {
        match run!(c.send(&Attention)) {
            Err(Error::Rejected(Rejection::Cme(ModemCode::Numeric(716)))) => {}
            other => panic!("{other:?}"),
        }
        match run!(c.send(&Attention)) {
            Err(Error::Rejected(Rejection::Cme(ModemCode::Text(t)))) => {
                assert_eq!(t.as_str(), "file already exist")
            }
            other => panic!("{other:?}"),
        }
        sim.assert_done();
    },
    vec![
        expect("AT\r"),
        reply("\r\n+CME ERROR: 716\r\n"),
        expect("AT\r"),
        reply("\r\n+CME ERROR: file already exist\r\n"),
    ]
);

both!(
    timeout_is_reported_on_virtual_time,
    |c, sim| {
        let started = sim.now_ms();
        match run!(c.send(&Attention.with_timeout(Duration::from_secs(3)))) {
            Err(Error::Timeout) => {}
            other => panic!("{other:?}"),
        }
        let waited = sim.now_ms() - started;
        assert!((3000..3100).contains(&waited), "waited {waited} ms");
    },
    vec![expect("AT\r")]
);

both!(
    send_phase_writes_payload_after_connect,
    |c, sim| {
        run!(c.send(&Url("http://example.com/fw.bin"))).unwrap();
        sim.assert_done();
    },
    vec![
        expect("AT+QHTTPURL=25,80\r"),
        reply("\r\nCONNECT\r\n"),
        expect("http://example.com/fw.bin"),
        reply("\r\nOK\r\n"),
    ]
);

both!(
    bad_parameter_writes_nothing,
    |c, sim| {
        match run!(c.send(&Url("http://a\r\nAT+QPOWD"))) {
            Err(Error::Encode(EncodeError::ForbiddenByte { byte: b'\r', .. })) => {}
            other => panic!("{other:?}"),
        }
        assert!(sim.written().is_empty());
    },
    vec![]
);

both!(
    payload_in_same_read_as_connect,
    |c, sim| {
        let mut body = Vec::new();
        let ((), n) =
            run!(c.send_receive(&Read(DataLength::Exact(10)), |d| body.extend_from_slice(d)))
                .unwrap();
        assert_eq!(n, 10);
        assert_eq!(body, b"0123\r\nOK\r\n");
        // The late result URC arrives after OK and reaches the handler.
        let code = run!(c.wait_for(Duration::from_secs(1), |l| {
            l.strip_prefix(b"+QHTTPREAD: ").map(|r| r.to_vec())
        }))
        .unwrap();
        assert_eq!(code, b"0");
        sim.assert_done();
    },
    vec![
        expect("AT+QHTTPREAD=80\r"),
        reply(
            "\r\nCONNECT\r\n0123\r\nOK\r\n\r\nOK\r\n\r\n+QIND: \"csq\",20,99\r\n\r\n+QHTTPREAD: 0\r\n"
        ),
    ]
);

both!(
    unknown_length_body_containing_trailer,
    |c, sim| {
        let read = Read(DataLength::UntilTrailer {
            end_prefix: b"+QHTTPREAD:",
            quiet: Duration::from_millis(200),
        });
        let mut body = Vec::new();
        let ((), n) = run!(c.send_receive(&read, |d| body.extend_from_slice(d))).unwrap();
        assert_eq!(body, b"A\r\nOK\r\n\r\n+QHTTPREAD: 0\r\nB");
        assert_eq!(n, body.len() as u64);
        sim.assert_done();
    },
    vec![
        expect("AT+QHTTPREAD=80\r"),
        reply("\r\nCONNECT\r\nA\r\nOK\r\n\r\n+QHTTPREAD: 0\r\n"),
        reply_after(50, "B"),
        reply_after(10, "\r\nOK\r\n\r\n+QHTTPREAD: 0\r\n"),
    ]
);

both!(
    error_instead_of_payload,
    |c, sim| {
        match run!(c.send_receive(&Read(DataLength::Announced), |_| {})) {
            Err(Error::Rejected(Rejection::Cme(ModemCode::Numeric(402)))) => {}
            other => panic!("{other:?}"),
        }
        sim.assert_done();
    },
    vec![
        expect("AT+QHTTPREAD=80\r"),
        reply("\r\n+CME ERROR: 402\r\n"),
    ]
);

both!(
    response_too_large_keeps_sync,
    |c, sim| {
        match run!(c.send(&Ati)) {
            Err(Error::ResponseTooLarge { capacity: 128 }) => {}
            other => panic!("{other:?}"),
        }
        run!(c.send(&Attention)).unwrap();
        sim.assert_done();
    },
    vec![
        expect("ATI\r"),
        reply(format!(
            "\r\nQuectel\r\n\r\n{}\r\n\r\nOK\r\n",
            "X".repeat(150)
        )),
        expect("AT\r"),
        reply("\r\nOK\r\n"),
    ]
);

#[test]
fn urcs_reach_the_handler_in_order() {
    let sim = Sim::new(vec![
        reply("\r\nRDY\r\n\r\n+CFUN: 1\r\n"),
        expect("AT\r"),
        reply("\r\n+CPIN: READY\r\n\r\nOK\r\n"),
    ]);
    let (mut rx, mut resp) = ([0u8; 64], [0u8; 64]);
    let urcs = Urcs::default();
    let mut c = blocking::Client::new(sim.port(), sim.clock(), &mut rx, &mut resp, urcs.clone());
    c.send(&Attention).unwrap();
    assert_eq!(urcs.lines(), ["RDY", "+CFUN: 1", "+CPIN: READY"]);
}

mod data_reader {
    use super::*;

    fn script() -> Vec<Step> {
        vec![
            expect("AT+QHTTPREAD=80\r"),
            reply("\r\nCONNECT\r\nfirst"),
            reply_after(5, "-second-"),
            reply_after(5, "third\r\nOK\r\n"),
            reply_after(5, "\r\n+QHTTPREAD: 0\r\n"),
        ]
    }

    #[test]
    fn blocking_bufread_is_zero_copy_and_exact() {
        use embedded_io::BufRead;
        let sim = Sim::new(script());
        let (mut rx, mut resp) = ([0u8; 64], [0u8; 64]);
        let mut c =
            blocking::Client::new(sim.port(), sim.clock(), &mut rx, &mut resp, Urcs::default());
        let mut r = c.read_data(&Read(DataLength::Exact(18))).unwrap();
        assert_eq!(r.announced(), Some(18));
        let mut body = Vec::new();
        loop {
            let buf = r.fill_buf().unwrap();
            if buf.is_empty() {
                break;
            }
            // Consume part of what is lent, to exercise partial consumption.
            let n = buf.len().min(3);
            body.extend_from_slice(&buf[..n]);
            r.consume(n);
        }
        assert_eq!(body, b"first-second-third");
        assert_eq!(r.finish().unwrap(), 18);
        c.wait_for(Duration::from_secs(1), |l| {
            (l == b"+QHTTPREAD: 0").then_some(())
        })
        .unwrap();
        sim.assert_done();
    }

    #[test]
    fn async_read_trait_and_unknown_length() {
        use embedded_io_async::Read as _;
        let sim = Sim::new(script());
        let (mut rx, mut resp) = ([0u8; 64], [0u8; 64]);
        let mut c =
            asynch::Client::new(sim.port(), sim.clock(), &mut rx, &mut resp, Urcs::default());
        let read = Read(DataLength::UntilTrailer {
            end_prefix: b"+QHTTPREAD:",
            quiet: Duration::from_millis(100),
        });
        block_on(async {
            let mut r = c.read_data(&read).await.unwrap();
            assert_eq!(r.announced(), None);
            let mut body = Vec::new();
            let mut buf = [0u8; 4];
            loop {
                let n = r.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&buf[..n]);
            }
            assert_eq!(body, b"first-second-third");
            assert_eq!(r.finish().await.unwrap(), 18);
        });
    }

    #[test]
    fn refusal_before_payload_and_timeout_inside_it() {
        use embedded_io::BufRead;
        let sim = Sim::new(vec![
            expect("AT+QHTTPREAD=80\r"),
            reply("\r\n+CME ERROR: 705\r\n"),
            expect("AT+QHTTPREAD=80\r"),
            reply("\r\nCONNECT\r\nabc"),
        ]);
        let (mut rx, mut resp) = ([0u8; 64], [0u8; 64]);
        let mut c =
            blocking::Client::new(sim.port(), sim.clock(), &mut rx, &mut resp, Urcs::default());
        match c.read_data(&Read(DataLength::Exact(10))) {
            Err(Error::Rejected(Rejection::Cme(ModemCode::Numeric(705)))) => {}
            other => panic!("{:?}", other.map(|_| ())),
        }
        let mut r = c.read_data(&Read(DataLength::Exact(10))).unwrap();
        assert_eq!(r.fill_buf().unwrap(), b"abc");
        r.consume(3);
        let started = sim.now_ms();
        match r.fill_buf() {
            Err(Error::Timeout) => {}
            other => panic!("{other:?}"),
        }
        // The default command timeout of the test command (5 s) bounds the gap.
        assert!(sim.now_ms() - started >= 5000);
    }

    #[test]
    fn a_trickle_of_stray_lines_does_not_keep_a_dead_payload_alive() {
        use embedded_io::BufRead;
        // The modem rebooted mid-payload: what follows is its boot URCs and a signal report
        // every 3 s, counted as payload. Each arrives well within the 5 s timeout, but 512
        // bytes never do, so the read ends after one timeout instead of after all of them.
        let mut script = vec![
            expect("AT+QHTTPREAD=80\r"),
            reply("\r\nCONNECT\r\n0123456789"),
        ];
        for _ in 0..20 {
            script.push(reply_after(3000, "\r\n+QIND: \"csq\",20,99\r\n"));
        }
        let sim = Sim::new(script);
        let (mut rx, mut resp) = ([0u8; 64], [0u8; 64]);
        let mut c =
            blocking::Client::new(sim.port(), sim.clock(), &mut rx, &mut resp, Urcs::default());
        let mut r = c.read_data(&Read(DataLength::Exact(4096))).unwrap();
        let started = sim.now_ms();
        let mut got = 0usize;
        let err = loop {
            match r.fill_buf() {
                Ok(d) => {
                    let n = d.len();
                    got += n;
                    r.consume(n);
                }
                Err(e) => break e,
            }
        };
        assert!(matches!(err, Error::Timeout), "{err:?}");
        let took = sim.now_ms() - started;
        assert!((5000..6500).contains(&took), "timed out after {took} ms");
        // The first stray line arrived and was counted before the timeout.
        assert!(got > 10 && got < 512, "{got}");
    }

    /// Reads until an error or the end; returns what was handed out and the error.
    fn drain<R: embedded_io::BufRead>(r: &mut R) -> (Vec<u8>, Option<R::Error>) {
        let mut got = Vec::new();
        loop {
            match r.fill_buf() {
                Ok([]) => return (got, None),
                Ok(d) => {
                    let n = d.len();
                    got.extend_from_slice(d);
                    r.consume(n);
                }
                Err(e) => return (got, Some(e)),
            }
        }
    }

    /// A modem that restarts mid-payload: after a silence its `RDY` arrives where payload
    /// should. Every way the boot line can come (whole, split within the hold, after
    /// power-on noise, without the leading CR LF) is recognised at once, none of it is
    /// handed out, and the boot URCs then reach the handler.
    #[test]
    fn a_modem_that_restarts_mid_payload_is_recognised_by_its_rdy() {
        let forms: [&[(u64, &str)]; 4] = [
            &[(3000, "\r\nRDY\r\n")],
            &[(3000, "\r\nR"), (50, "DY\r\n")],
            &[(3000, "\u{0}\r\nRDY\r\n")],
            &[(3000, "RDY\r\n")],
        ];
        for form in forms {
            let mut script = vec![
                expect("AT+QHTTPREAD=80\r"),
                reply("\r\nCONNECT\r\n0123456789"),
            ];
            for (after, bytes) in form {
                script.push(reply_after(*after, bytes));
            }
            script.push(reply_after(100, "\r\n+CFUN: 1\r\n"));
            let sim = Sim::new(script);
            let (mut rx, mut resp) = ([0u8; 64], [0u8; 64]);
            let urcs = Urcs::default();
            let mut c =
                blocking::Client::new(sim.port(), sim.clock(), &mut rx, &mut resp, urcs.clone());
            let mut r = c.read_data(&Read(DataLength::Exact(4096))).unwrap();
            let (got, err) = drain(&mut r);
            assert_eq!(got, b"0123456789", "{form:?}");
            assert!(
                matches!(err, Some(Error::ModemRebooted)),
                "{form:?}: {err:?}"
            );
            // Recognised as soon as the line was complete (3 s of silence, then RDY; the
            // test command's 5 s timeout never ran out).
            let t = sim.now_ms();
            assert!((3000..3200).contains(&t), "{form:?}: at {t} ms");
            let _ = c.wait_for(Duration::from_millis(500), |_| None::<()>);
            // (Power-on noise before it is a line of its own.)
            let lines = urcs.lines();
            assert!(
                lines.ends_with(&["RDY".into(), "+CFUN: 1".into()]),
                "{form:?}: {lines:?}"
            );
        }
    }

    /// Payload that happens to look like `RDY` is payload: without a silence before it, or
    /// when what follows rules it out, every byte is handed out unchanged.
    #[test]
    fn payload_that_looks_like_rdy_is_payload() {
        type Parts = &'static [(u64, &'static str)];
        let cases: [(Parts, &[u8]); 5] = [
            // No gap: RDY inside the body.
            (&[(1, "01\r\nRDY\r\n89")], b"01\r\nRDY\r\n89"),
            // A gap, then bytes that start like RDY but are not.
            (&[(1, "01"), (2000, "\r\nRDX\r\n89")], b"01\r\nRDX\r\n89"),
            // A gap, then a lone CR LF, then silence longer than the hold, then more payload.
            (
                &[(1, "01"), (2000, "\r\n"), (1000, "RDY\r\n89")],
                b"01\r\nRDY\r\n89",
            ),
            // A gap, then CR LF at the end of the payload, with the trailer right behind.
            (&[(1, "0123456789"), (2000, "\r\n")], b"0123456789\r\n"),
            // A gap right after CONNECT: the first payload bytes are held only if they could
            // be RDY.
            (&[(3000, "0123456789\r\n")], b"0123456789\r\n"),
        ];
        for (parts, want) in cases {
            let mut script = vec![expect("AT+QHTTPREAD=80\r"), reply("\r\nCONNECT\r\n")];
            for (after, bytes) in parts {
                script.push(reply_after(*after, bytes));
            }
            script.push(reply_after(1, "\r\nOK\r\n"));
            let sim = Sim::new(script);
            let (mut rx, mut resp) = ([0u8; 64], [0u8; 64]);
            let mut c =
                blocking::Client::new(sim.port(), sim.clock(), &mut rx, &mut resp, Urcs::default());
            let len = want.len() as u32;
            let mut r = c.read_data(&Read(DataLength::Exact(len))).unwrap();
            let (got, err) = drain(&mut r);
            assert!(err.is_none(), "{parts:?}: {err:?}");
            assert_eq!(got, want, "{parts:?}");
            assert_eq!(r.finish().unwrap(), u64::from(len));
        }
    }

    #[test]
    fn async_reader_recognises_a_restart_too() {
        use embedded_io_async::BufRead;
        let sim = Sim::new(vec![
            expect("AT+QHTTPREAD=80\r"),
            reply("\r\nCONNECT\r\n0123"),
            reply_after(4000, "\r\nRDY\r\n"),
        ]);
        let (mut rx, mut resp) = ([0u8; 64], [0u8; 64]);
        let mut c =
            asynch::Client::new(sim.port(), sim.clock(), &mut rx, &mut resp, Urcs::default());
        block_on(async {
            let mut r = c.read_data(&Read(DataLength::Exact(100))).await.unwrap();
            assert_eq!(r.fill_buf().await.unwrap(), b"0123");
            r.consume(4);
            assert!(matches!(r.fill_buf().await, Err(Error::ModemRebooted)));
        });
    }

    #[test]
    fn finish_discards_unread_payload() {
        let sim = Sim::new(script());
        let (mut rx, mut resp) = ([0u8; 64], [0u8; 64]);
        let mut c =
            blocking::Client::new(sim.port(), sim.clock(), &mut rx, &mut resp, Urcs::default());
        let r = c.read_data(&Read(DataLength::Exact(18))).unwrap();
        assert_eq!(r.finish().unwrap(), 18);
    }
}

/// SIMCom reads: `OK` first, then counted pieces (`simcom-at.md` §2.1.1, §2.3).
mod simcom_reads {
    use super::*;
    use cellular_ota::simcom::http::HttpRead;
    use cellular_ota::simcom::sh::ShRead;

    both!(
        sim7600_pieces_after_ok_with_a_urc_between,
        |c, sim| {
            let mut body = Vec::new();
            let read = HttpRead {
                range: Some((0, 1024)),
            };
            let ((), n) = run!(c.send_receive(&read, |d| body.extend_from_slice(d))).unwrap();
            assert_eq!(body, b"OK\r\n+HTTPREAD: 9\r\nabc");
            assert_eq!(n, 21);
            sim.assert_done();
        },
        vec![
            expect("AT+HTTPREAD=0,1024\r"),
            reply(
                "\r\nOK\r\n\r\n+HTTP_PEER_CLOSED\r\n\r\n+HTTPREAD: DATA,18\r\nOK\r\n+HTTPREAD: 9\r\n"
            ),
            reply_after(20, "\r\n+HTTPREAD: DATA,3\r\nabc"),
            reply_after(20, "\r\n+HTTPREAD: 0\r\n"),
        ]
    );

    both!(
        a76xx_two_byte_body_that_reads_ok,
        |c, sim| {
            let mut body = Vec::new();
            let read = HttpRead {
                range: Some((0, 10)),
            };
            let ((), n) = run!(c.send_receive(&read, |d| body.extend_from_slice(d))).unwrap();
            assert_eq!((body.as_slice(), n), (&b"OK"[..], 2));
            // The next command starts in sync.
            run!(c.send(&Attention)).unwrap();
            sim.assert_done();
        },
        vec![
            expect("AT+HTTPREAD=0,10\r"),
            reply("\r\nOK\r\n\r\n+HTTPREAD: 2\r\nOK\r\n+HTTPREAD: 0\r\n"),
            expect("AT\r"),
            reply("\r\nOK\r\n"),
        ]
    );

    both!(
        sim7070_shread_ends_at_the_requested_length,
        |c, sim| {
            let mut body = Vec::new();
            let read = ShRead { start: 0, len: 6 };
            let ((), n) = run!(c.send_receive(&read, |d| body.extend_from_slice(d))).unwrap();
            assert_eq!((body.as_slice(), n), (&b"{\r\n}OK"[..], 6));
            sim.assert_done();
        },
        vec![
            expect("AT+SHREAD=0,6\r"),
            reply("\r\nOK\r\n\r\n+SHREAD: 4\r\n{\r\n}"),
            reply_after(10, "\r\n+SHREAD: 2\r\nOK"),
        ]
    );

    both!(
        sim800_style_piece_before_ok,
        |c, sim| {
            let mut body = Vec::new();
            let read = HttpRead { range: None };
            let ((), n) = run!(c.send_receive(&read, |d| body.extend_from_slice(d))).unwrap();
            assert_eq!((body.as_slice(), n), (&b"hello"[..], 5));
            sim.assert_done();
        },
        vec![
            expect("AT+HTTPREAD\r"),
            reply("\r\n+HTTPREAD: 5\r\nhello\r\nOK\r\n"),
        ]
    );

    both!(
        error_instead_of_pieces,
        |c, sim| {
            match run!(c.send_receive(
                &HttpRead {
                    range: Some((0, 10))
                },
                |_| {}
            )) {
                Err(Error::Rejected(Rejection::Error)) => {}
                other => panic!("{other:?}"),
            }
            sim.assert_done();
        },
        vec![expect("AT+HTTPREAD=0,10\r"), reply("\r\nERROR\r\n")]
    );

    both!(
        pieces_that_stop_coming_time_out,
        |c, sim| {
            match run!(c.send_receive(
                &HttpRead {
                    range: Some((0, 10))
                },
                |_| {}
            )) {
                Err(Error::Timeout) => {}
                other => panic!("{other:?}"),
            }
            let _ = sim;
        },
        vec![
            expect("AT+HTTPREAD=0,10\r"),
            reply("\r\nOK\r\n\r\n+HTTPREAD: 10\r\n01234"),
        ]
    );

    #[test]
    fn zero_copy_reader_over_pieces() {
        use embedded_io::BufRead;
        let sim = Sim::new(vec![
            expect("AT+HTTPREAD=0,64\r"),
            reply("\r\nOK\r\n\r\n+HTTPREAD: DATA,5\r\nfirst"),
            reply_after(10, "\r\n+HTTPREAD: DATA,7\r\n-secon"),
            reply_after(10, "d\r\n+HTTPREAD: 0\r\n"),
            expect("AT\r"),
            reply("\r\nOK\r\n"),
        ]);
        let (mut rx, mut resp) = ([0u8; 64], [0u8; 64]);
        let mut c =
            blocking::Client::new(sim.port(), sim.clock(), &mut rx, &mut resp, Urcs::default());
        let mut r = c
            .read_data(&HttpRead {
                range: Some((0, 64)),
            })
            .unwrap();
        // A piece's length is not the body's.
        assert_eq!(r.announced(), None);
        let mut body = Vec::new();
        loop {
            let buf = r.fill_buf().unwrap();
            if buf.is_empty() {
                break;
            }
            let n = buf.len().min(4);
            body.extend_from_slice(&buf[..n]);
            r.consume(n);
        }
        assert_eq!(body, b"first-second");
        assert_eq!(r.finish().unwrap(), 12);
        c.send(&Attention).unwrap();
        sim.assert_done();
    }
}
