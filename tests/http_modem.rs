//! The update flow over a modem that is not Quectel: a user's own [`HttpModem`], here an
//! in-memory server with optional ranged requests and a link that can drop mid-body. It
//! shows that the flow needs nothing beyond the trait, that a missing capability is a typed
//! failure (or, for `Strategy::Auto`, another method), and that resuming works without
//! ranges.

use core::time::Duration;

use cellular_ota::block_on;
use cellular_ota::ota::mem_sink::MemSink;
use cellular_ota::update::{
    Capability, Failure, HttpBody, HttpModem, HttpStatus, Method, ModemFailure, Outcome, Stage,
    Strategy, UpdateConfig, update_with,
};

/// What the modem was asked to do.
#[derive(Debug, Default)]
struct Log {
    opens: u32,
    gets: u32,
    ranges: Vec<(u32, u32)>,
    closes: Vec<bool>,
}

/// An HTTP server in memory behind a modem that hands the body out in pieces of `piece`
/// bytes.
struct MemModem<'a> {
    image: &'a [u8],
    ranged: bool,
    /// The link drops (`LinkLost`) once this many body bytes have been handed out.
    drop_at: Option<u32>,
    piece: usize,
    /// The answer waiting to be read: `(start, len)` of the image.
    pending: Option<(u32, u32)>,
    log: &'a mut Log,
}

struct MemBody<'m, 'a> {
    modem: &'m mut MemModem<'a>,
    start: u32,
    pos: u32,
    end: u32,
}

impl HttpBody for MemBody<'_, '_> {
    type Error = core::convert::Infallible;

    async fn fill_buf(&mut self) -> Result<&[u8], ModemFailure<Self::Error>> {
        if self.modem.drop_at.is_some_and(|d| self.pos >= d) {
            return Err(ModemFailure::LinkLost);
        }
        let stop = self
            .modem
            .drop_at
            .map_or(self.end, |d| d.min(self.end).max(self.pos));
        let n = ((stop - self.pos) as usize).min(self.modem.piece);
        let from = self.pos as usize;
        Ok(&self.modem.image[from..from + n])
    }

    fn consume(&mut self, n: usize) {
        self.pos += n as u32;
    }

    async fn finish(self) -> Result<u64, ModemFailure<Self::Error>> {
        Ok(u64::from(self.pos - self.start))
    }
}

impl<'a> HttpModem for MemModem<'a> {
    type Error = core::convert::Infallible;
    type Body<'m>
        = MemBody<'m, 'a>
    where
        Self: 'm;

    async fn open(&mut self, _: &UpdateConfig<'_>) -> Result<(), ModemFailure<Self::Error>> {
        self.log.opens += 1;
        Ok(())
    }

    async fn get(&mut self, _url: &str) -> Result<Duration, ModemFailure<Self::Error>> {
        self.log.gets += 1;
        self.pending = Some((0, self.image.len() as u32));
        Ok(Duration::from_secs(1))
    }

    async fn response(&mut self, _: Duration) -> Result<HttpStatus, ModemFailure<Self::Error>> {
        let (start, len) = self.pending.expect("a request before the response");
        let whole = start == 0 && len as usize == self.image.len();
        Ok(HttpStatus {
            status: if whole { 200 } else { 206 },
            content_length: Some(len),
        })
    }

    async fn body(
        &mut self,
        len: Option<u32>,
    ) -> Result<MemBody<'_, 'a>, ModemFailure<Self::Error>> {
        let (start, pending) = self.pending.take().expect("an answer to read");
        let len = len.unwrap_or(pending);
        Ok(MemBody {
            modem: self,
            start,
            pos: start,
            end: start + len,
        })
    }

    async fn close(&mut self, failed: bool) {
        self.log.closes.push(failed);
    }

    async fn ranged_method(&mut self) -> Result<Option<Method>, ModemFailure<Self::Error>> {
        Ok(self.ranged.then_some(Method::RangedHeader))
    }

    async fn start_ranges(&mut self, _: &str, _: Method) -> Result<(), ModemFailure<Self::Error>> {
        Ok(())
    }

    async fn get_range(
        &mut self,
        _url: &str,
        _method: Method,
        start: u32,
        len: u32,
        _scratch: &mut [u8],
    ) -> Result<Duration, ModemFailure<Self::Error>> {
        assert!(self.ranged, "a range asked of a modem without ranges");
        self.log.ranges.push((start, len));
        self.pending = Some((start, len));
        Ok(Duration::from_secs(1))
    }
}

fn image() -> Vec<u8> {
    (0..20_000u32).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn config(strategy: Strategy) -> UpdateConfig<'static> {
    let mut c = UpdateConfig::new("http://example.com/fw.bin");
    c.allow_unsigned = true;
    c.strategy = strategy;
    c
}

#[test]
fn a_stream_over_a_users_own_modem_installs_the_image() {
    let image = image();
    let mut log = Log::default();
    let modem = MemModem {
        image: &image,
        ranged: false,
        drop_at: None,
        piece: 333,
        pending: None,
        log: &mut log,
    };
    let mut mem = vec![0u8; 32 * 1024];
    let mut sink = MemSink::new(&mut mem);
    let mut buf = [0u8; 4096];
    let out = block_on(update_with(
        modem,
        &mut sink,
        &config(Strategy::Auto),
        &mut buf,
        &mut |_| {},
    ))
    .expect("installed");
    assert!(matches!(
        out,
        Outcome::Installed {
            method: Method::StreamErasedAhead,
            size: 20_000,
            resumed_from: 0,
            ..
        }
    ));
    assert_eq!(sink.image(), Some(&image[..]));
    assert_eq!((log.opens, log.closes.as_slice()), (1, &[false][..]));
}

/// Runs one update that loses the link after `drop_at` body bytes, then one that completes;
/// returns the second outcome, the image installed and what the modem was asked.
fn drop_then_resume(ranged: bool, drop_at: u32) -> (Outcome, Vec<u8>, Log) {
    let image = image();
    let mut log = Log::default();
    let mut mem = vec![0u8; 32 * 1024];
    let mut sink = MemSink::new(&mut mem);
    let mut buf = [0u8; 4096];
    let cfg = config(Strategy::Auto);
    let first = MemModem {
        image: &image,
        ranged,
        drop_at: Some(drop_at),
        piece: 1000,
        pending: None,
        log: &mut log,
    };
    let e = block_on(update_with(first, &mut sink, &cfg, &mut buf, &mut |_| {}))
        .expect_err("the link dropped");
    assert!(matches!(e.failure, Failure::LinkLost), "{e}");
    assert_eq!((e.stage, e.bytes_done), (Stage::Transfer, drop_at));
    assert_eq!(log.closes, [true]);
    log.closes.clear();
    let second = MemModem {
        image: &image,
        ranged,
        drop_at: None,
        piece: 1000,
        pending: None,
        log: &mut log,
    };
    let out = block_on(update_with(second, &mut sink, &cfg, &mut buf, &mut |_| {}))
        .expect("resumed and installed");
    let installed = sink.image().expect("activated").to_vec();
    (out, installed, log)
}

#[test]
fn without_ranges_a_resume_reads_the_body_again_and_skips_what_is_durable() {
    let (out, installed, log) = drop_then_resume(false, 7_000);
    assert!(matches!(
        out,
        Outcome::Installed {
            method: Method::StreamErasedAhead,
            resumed_from: 7_000,
            ..
        }
    ));
    assert_eq!(installed, image());
    assert!(log.ranges.is_empty());
    assert_eq!(log.closes, [false]);
}

#[test]
fn with_ranges_a_resume_asks_only_for_the_rest() {
    let (out, installed, log) = drop_then_resume(true, 7_000);
    assert!(matches!(
        out,
        Outcome::Installed {
            method: Method::RangedHeader,
            resumed_from: 7_000,
            ..
        }
    ));
    assert_eq!(installed, image());
    assert_eq!(log.ranges.first(), Some(&(7_000, 13_000)));
}

#[test]
fn a_capability_the_modem_lacks_is_a_typed_failure_and_the_modem_is_closed() {
    let image = image();
    for (strategy, capability, stage) in [
        (Strategy::Ranged, Capability::RangedRequests, Stage::Setup),
        (Strategy::ModemFile, Capability::ModemFile, Stage::Request),
    ] {
        let mut log = Log::default();
        let modem = MemModem {
            image: &image,
            ranged: false,
            drop_at: None,
            piece: 512,
            pending: None,
            log: &mut log,
        };
        let mut mem = vec![0u8; 32 * 1024];
        let mut sink = MemSink::new(&mut mem);
        let mut buf = [0u8; 4096];
        let e = block_on(update_with(
            modem,
            &mut sink,
            &config(strategy),
            &mut buf,
            &mut |_| {},
        ))
        .expect_err("refused");
        assert!(
            matches!(e.failure, Failure::Unsupported(c) if c == capability),
            "{strategy:?}: {e}"
        );
        assert_eq!(e.stage, stage, "{strategy:?}");
        assert_eq!(log.closes, [true], "{strategy:?}");
        assert!(sink.image().is_none());
    }
}
