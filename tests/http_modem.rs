//! The update flow over a modem that is not Quectel: a user's own [`HttpModem`], here an
//! in-memory server with optional ranged requests and a link that can drop mid-body. It
//! shows that the flow needs nothing beyond the trait, that a missing capability is a typed
//! failure (or, for `Strategy::Auto`, another method), and that resuming works without
//! ranges.

use core::time::Duration;

use cellular_ota::block_on;
use cellular_ota::ota::OtaSink as _;
use cellular_ota::ota::manifest::{MAX_WRITTEN_LEN, Manifest, Payload, Version, write_manifest};
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
    /// Served for a URL ending in `.manifest`.
    manifest: Option<&'a [u8]>,
    ranged: bool,
    /// The link drops (`LinkLost`) once this many body bytes have been handed out.
    drop_at: Option<u32>,
    piece: usize,
    /// The answer waiting to be read: `(file, start, len)`.
    pending: Option<(&'a [u8], u32, u32)>,
    log: &'a mut Log,
}

struct MemBody<'m, 'a> {
    modem: &'m mut MemModem<'a>,
    file: &'a [u8],
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
        Ok(&self.file[from..from + n])
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

    async fn get(&mut self, url: &str) -> Result<Duration, ModemFailure<Self::Error>> {
        let file = match self.manifest {
            Some(m) if url.ends_with(".manifest") => m,
            _ => {
                self.log.gets += 1;
                self.image
            }
        };
        self.pending = Some((file, 0, file.len() as u32));
        Ok(Duration::from_secs(1))
    }

    async fn response(&mut self, _: Duration) -> Result<HttpStatus, ModemFailure<Self::Error>> {
        let (file, start, len) = self.pending.expect("a request before the response");
        let whole = start == 0 && len as usize == file.len();
        Ok(HttpStatus {
            status: if whole { 200 } else { 206 },
            content_length: Some(len),
        })
    }

    async fn body(
        &mut self,
        len: Option<u32>,
    ) -> Result<MemBody<'_, 'a>, ModemFailure<Self::Error>> {
        let (file, start, pending) = self.pending.take().expect("an answer to read");
        let len = len.unwrap_or(pending);
        Ok(MemBody {
            modem: self,
            file,
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
        self.pending = Some((self.image, start, len));
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
        manifest: None,
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
        manifest: None,
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
        manifest: None,
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
            manifest: None,
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

/// The real image pair (`fixtures/esp32c3_app_v1.bin` to `_v2.bin`) and the detools 0.53.0
/// patch between them made with esp_delta_ota's flags (`fixtures/delta/MANIFEST`).
fn real_pair() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |p: &str| std::fs::read(root.join(p)).expect(p);
    (
        read("fixtures/esp32c3_app_v1.bin"),
        read("fixtures/esp32c3_app_v2.bin"),
        read("fixtures/delta/esp32c3-app-heatshrink.patch"),
    )
}

/// An unsigned manifest for `target`, served as `payload`.
fn manifest(target: &[u8], payload: Payload) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let m = Manifest {
        product: "p",
        hardware: None,
        version: Version::parse("2.0.0").unwrap(),
        size: target.len() as u32,
        sha256: Sha256::digest(target).into(),
        payload,
        signature: None,
    };
    let mut out = [0u8; MAX_WRITTEN_LEN];
    let n = write_manifest(&m, &mut out).unwrap();
    out[..n].to_vec()
}

fn delta_payload(base: &[u8], patch: &[u8]) -> Payload {
    use sha2::{Digest, Sha256};
    Payload::Delta {
        size: patch.len() as u32,
        sha256: Sha256::digest(patch).into(),
        base_size: base.len() as u32,
        base_sha256: Sha256::digest(base).into(),
    }
}

fn delta_config() -> UpdateConfig<'static> {
    let mut c = config(Strategy::Auto);
    c.manifest_url = Some("http://example.com/fw.bin.manifest");
    c.product = Some("p");
    c.running_version = Some(Version::parse("1.0.0").unwrap());
    c.chunk_size = 1024;
    c
}

/// One update of `patch` over the in-memory modem into `sink`.
fn apply(
    sink: &mut MemSink<'_>,
    patch: &[u8],
    manifest: &[u8],
    drop_at: Option<u32>,
    log: &mut Log,
) -> Result<Outcome, cellular_ota::update::UpdateError> {
    let modem = MemModem {
        image: patch,
        manifest: Some(manifest),
        ranged: true,
        drop_at,
        piece: 700,
        pending: None,
        log,
    };
    let mut buf = [0u8; 2048];
    block_on(update_with(
        modem,
        sink,
        &delta_config(),
        &mut buf,
        &mut |_| {},
    ))
}

#[test]
fn a_delta_from_the_running_image_installs_the_new_one_byte_exact() {
    let (v1, v2, patch) = real_pair();
    let m = manifest(&v2, delta_payload(&v1, &patch));
    let mut mem = vec![0u8; 400 * 1024];
    let mut sink = MemSink::new(&mut mem).with_running(&v1);
    let mut log = Log::default();
    let out = apply(&mut sink, &patch, &m, None, &mut log).expect("installed");
    assert!(matches!(
        out,
        Outcome::Installed {
            method: Method::RangedHeader,
            size: 335_088,
            resumed_from: 0,
            ..
        }
    ));
    assert!(sink.image() == Some(&v2[..]));
    // Only the patch went over the link, in ranges of the chunk size.
    let fetched: u32 = log.ranges.iter().map(|r| r.1).sum();
    assert_eq!(fetched as usize, patch.len());
    assert_eq!(log.ranges.first(), Some(&(0, 1024)));
}

#[test]
fn a_delta_for_another_base_is_refused_before_anything_is_written() {
    let (v1, v2, patch) = real_pair();
    let m = manifest(&v2, delta_payload(&v1, &patch));
    let mut other = v1.clone();
    other[1000] ^= 1;
    let mut mem = vec![0u8; 400 * 1024];
    let mut sink = MemSink::new(&mut mem).with_running(&other);
    let mut log = Log::default();
    let e = apply(&mut sink, &patch, &m, None, &mut log).expect_err("another base");
    use sha2::{Digest, Sha256};
    let running: [u8; 32] = Sha256::digest(&other).into();
    assert!(
        matches!(e.failure, Failure::WrongBase { running: r, .. } if r == running),
        "{e}"
    );
    assert_eq!(e.stage, Stage::Manifest);
    assert_eq!(
        cellular_ota::retry::Classify::retry(&e),
        cellular_ota::retry::Retry::Permanent
    );
    // Nothing begun, nothing fetched.
    assert!(sink.descriptor().is_none());
    assert!(log.ranges.is_empty());
    assert_eq!(log.gets, 0);
}

#[test]
fn a_delta_needs_a_sink_that_reads_the_running_image() {
    let (v1, v2, patch) = real_pair();
    let m = manifest(&v2, delta_payload(&v1, &patch));
    let mut mem = vec![0u8; 400 * 1024];
    let mut sink = MemSink::new(&mut mem);
    let mut log = Log::default();
    let e = apply(&mut sink, &patch, &m, None, &mut log).expect_err("no base");
    assert!(
        matches!(e.failure, Failure::Unsupported(Capability::RunningImage)),
        "{e}"
    );
    assert!(sink.descriptor().is_none());
}

/// The link drops in the middle of the patch: the next attempt resumes at the sink's last
/// checkpoint with a range into the patch, not at its start, and installs the same bytes.
#[test]
fn a_dropped_delta_resumes_from_its_checkpoint() {
    let (v1, v2, patch) = real_pair();
    let m = manifest(&v2, delta_payload(&v1, &patch));
    let mut mem = vec![0u8; 400 * 1024];
    let mut sink = MemSink::new(&mut mem).with_running(&v1);
    for drop_at in [3000u32, 5500, 8000] {
        sink.abort().unwrap();
        let mut log = Log::default();
        let e = apply(&mut sink, &patch, &m, Some(drop_at), &mut log).expect_err("dropped");
        assert!(matches!(e.failure, Failure::LinkLost), "{e}");
        let durable = e.bytes_done;
        assert!(durable > 0);
        let mut log = Log::default();
        let out = apply(&mut sink, &patch, &m, None, &mut log).expect("resumed");
        let Outcome::Installed { resumed_from, .. } = out else {
            panic!("{out:?}")
        };
        // Resumed at a checkpoint (every 16 KiB of output) at or below what was written.
        assert!(
            resumed_from > 0 && resumed_from % (16 * 1024) == 0,
            "{resumed_from} of {durable} at {drop_at}"
        );
        assert!(resumed_from <= durable);
        let first = log.ranges.first().expect("ranges").0;
        assert!(
            first > 0 && first < drop_at,
            "resumed in the patch at {first}"
        );
        assert!(sink.image() == Some(&v2[..]), "drop at {drop_at}");
    }
}

/// A sink without checkpoints (or a resume point without one) still keeps its flash: the
/// patch is read again from its start and the output below the durable point is not
/// written again.
#[test]
fn without_a_checkpoint_a_delta_reads_the_patch_again_and_keeps_the_flash() {
    let (v1, v2, patch) = real_pair();
    let m = manifest(&v2, delta_payload(&v1, &patch));
    let mut mem = vec![0u8; 400 * 1024];
    let mut sink = MemSink::new(&mut mem).with_running(&v1);
    let mut log = Log::default();
    apply(&mut sink, &patch, &m, Some(5000), &mut log).expect_err("dropped");
    // A cut that kept 5000 bytes: no checkpoint at or below that point.
    sink.truncate(5000);
    let mut log = Log::default();
    let out = apply(&mut sink, &patch, &m, None, &mut log).expect("installed");
    assert!(
        matches!(
            out,
            Outcome::Installed {
                resumed_from: 5000,
                ..
            }
        ),
        "{out:?}"
    );
    assert_eq!(log.ranges.first(), Some(&(0, 1024)));
    assert!(sink.image() == Some(&v2[..]));
}

#[test]
fn a_compressed_image_installs_from_an_empty_base() {
    let (_, v2, _) = real_pair();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    // `detools create_patch` from an empty file: the heatshrink-compressed image.
    let patch = std::fs::read(root.join("fixtures/delta/esp32c3-app-compressed.patch")).unwrap();
    use sha2::{Digest, Sha256};
    let payload = Payload::Compressed {
        size: patch.len() as u32,
        sha256: Sha256::digest(&patch).into(),
    };
    let m = manifest(&v2, payload);
    let mut mem = vec![0u8; 400 * 1024];
    // No running image needed: nothing is read from a base.
    let mut sink = MemSink::new(&mut mem);
    let mut log = Log::default();
    apply(&mut sink, &patch, &m, None, &mut log).expect("installed");
    assert!(sink.image() == Some(&v2[..]));
    assert!(patch.len() < v2.len());
}

#[test]
fn a_corrupt_patch_is_never_activated() {
    let (v1, v2, patch) = real_pair();
    let m = manifest(&v2, delta_payload(&v1, &patch));
    let mut bad = patch.clone();
    bad[patch.len() / 2] ^= 0x40;
    let mut mem = vec![0u8; 400 * 1024];
    let mut sink = MemSink::new(&mut mem).with_running(&v1);
    let mut log = Log::default();
    let e = apply(&mut sink, &bad, &m, None, &mut log).expect_err("corrupt");
    assert!(
        matches!(e.failure, Failure::HashMismatch | Failure::Patch(_)),
        "{e}"
    );
    assert!(sink.image().is_none());
}

#[test]
fn a_patch_for_another_target_size_is_refused_typed() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |p: &str| std::fs::read(root.join(p)).expect(p);
    // A real detools patch from `random.from` to a 4,222-byte target, offered by a manifest
    // whose image is the 335,088-byte v2.
    let (base, patch) = (
        read("fixtures/delta/random.from"),
        read("fixtures/delta/random-heatshrink.patch"),
    );
    let (_, v2, _) = real_pair();
    let m = manifest(&v2, delta_payload(&base, &patch));
    let mut mem = vec![0u8; 400 * 1024];
    let mut sink = MemSink::new(&mut mem).with_running(&base);
    let mut log = Log::default();
    let e = apply(&mut sink, &patch, &m, None, &mut log).expect_err("another target");
    assert!(
        matches!(
            e.failure,
            Failure::Length {
                expected: 335_088,
                got: 4222
            }
        ),
        "{e}"
    );
    assert_eq!(e.stage, Stage::Transfer);
    assert!(sink.image().is_none());
}
