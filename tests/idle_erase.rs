//! Erasing the next slot while idle, on the simulated device (virtual time, the simulator's
//! W25Q32JV flash timings, an interrupt-driven UART at 921 600 baud without flow control).
//!
//! The same 1.5 MiB signed-manifest update runs twice on an ESP32-S3 running 1.0.0 from
//! `ota_0`: once as the board ships (the flow's `Strategy::Auto` picks
//! `Method::StreamErasedAhead`: it erases the image's sectors after the request, before the
//! body), and once after the application erased `ota_1` in idle time with
//! `EspIdfSink::erase_idle_step` (one 64 KiB block or 4 KiB sector per call). The update
//! into the pre-erased slot must lose no UART byte, erase nothing between the request and
//! the end of the body, and run its payload close to the line rate.
//!
//! Figures (run with `--nocapture`): payload = first to last byte written, transfer =
//! `Progress::Started` to `Progress::Verifying`, both as % of the line rate (baud / 10 bytes
//! per second, 8N1).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use cellular_ota::bring_up::{BringUpConfig, bring_up_blocking};
use cellular_ota::client::CountUrcs;
use cellular_ota::client::blocking::Client;
use cellular_ota::ota::esp_idf::image::ChipId;
use cellular_ota::ota::esp_idf::sink::{EspIdfSink, IdleErase, SinkConfig};
use cellular_ota::ota::manifest::{MAX_WRITTEN_LEN, Manifest, Version, write_manifest};
use cellular_ota::ota::mem_flash::MemFlashError;
use cellular_ota::quectel::bring_up::Quectel;
use cellular_ota::update::{Method, Outcome, Progress, UpdateConfig, update_blocking};
use cellular_ota_sim::{
    BootOptions, BootTarget, FlashConfig, ModemConfig, Personality, SimFlash, TestServer,
    UartConfig, World, WorldConfig, boot_with, build_chip_image, test_app_image,
};
use embedded_storage::nor_flash::{ErrorType, NorFlash, ReadNorFlash};
use sha2::{Digest, Sha256};

const S3: u16 = 9;
const BAUD: u32 = 921_600;
const IMAGE_LEN: usize = 1536 * 1024;
const PRODUCT: &str = "sim-ec200u-esp32s3";

/// An erase the flash saw: its range and its virtual start and end.
#[derive(Clone, Copy, Debug)]
struct Erase {
    from: u32,
    to: u32,
    start: Duration,
    end: Duration,
}

/// The simulated flash, logging each erase with its virtual time.
struct Timed<'a> {
    flash: &'a mut SimFlash,
    world: World,
    erases: Rc<RefCell<Vec<Erase>>>,
}

impl ErrorType for Timed<'_> {
    type Error = MemFlashError;
}

impl ReadNorFlash for Timed<'_> {
    const READ_SIZE: usize = <SimFlash as ReadNorFlash>::READ_SIZE;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), MemFlashError> {
        ReadNorFlash::read(self.flash, offset, bytes)
    }

    fn capacity(&self) -> usize {
        ReadNorFlash::capacity(self.flash)
    }
}

impl NorFlash for Timed<'_> {
    const WRITE_SIZE: usize = <SimFlash as NorFlash>::WRITE_SIZE;
    const ERASE_SIZE: usize = <SimFlash as NorFlash>::ERASE_SIZE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), MemFlashError> {
        let start = self.world.elapsed();
        let r = NorFlash::erase(self.flash, from, to);
        self.erases.borrow_mut().push(Erase {
            from,
            to,
            start,
            end: self.world.elapsed(),
        });
        r
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), MemFlashError> {
        NorFlash::write(self.flash, offset, bytes)
    }
}

/// What the idle erase took.
#[derive(Debug)]
struct Idle {
    steps: usize,
    total: Duration,
    longest: Duration,
}

/// What one update showed.
#[derive(Debug)]
struct Run {
    idle: Option<Idle>,
    method: Option<Method>,
    /// `update_blocking` called, `Progress::Manifest`, returned.
    call: Duration,
    manifest: Duration,
    end: Duration,
    started: Duration,
    first: (Duration, u32),
    last: (Duration, u32),
    verifying: Duration,
    uart_lost: u64,
    erases: Vec<Erase>,
    booted: Option<BootTarget>,
}

impl Run {
    fn line_rate() -> f64 {
        f64::from(BAUD) / 10.0
    }

    /// First to last byte written, % of the line rate.
    fn payload_pct(&self) -> f64 {
        let bytes = f64::from(self.last.1 - self.first.1);
        bytes / (self.last.0 - self.first.0).as_secs_f64() / Self::line_rate() * 100.0
    }

    /// `Started` to `Verifying`, % of the line rate.
    fn transfer_pct(&self) -> f64 {
        IMAGE_LEN as f64 / (self.verifying - self.started).as_secs_f64() / Self::line_rate() * 100.0
    }

    /// The erases that ran between `from` and `to` (virtual time).
    fn erases_between(&self, from: Duration, to: Duration) -> Vec<Erase> {
        self.erases
            .iter()
            .filter(|e| e.end > from && e.start < to)
            .copied()
            .collect()
    }
}

fn manifest_for(image: &[u8]) -> Vec<u8> {
    let manifest = Manifest {
        product: PRODUCT,
        hardware: None,
        version: Version::parse("2.0.0").unwrap(),
        size: image.len() as u32,
        sha256: Sha256::digest(image).into(),
        payload: cellular_ota::ota::manifest::Payload::Full,
        signature: None,
    };
    let mut out = [0u8; MAX_WRITTEN_LEN];
    let n = write_manifest(&manifest, &mut out).unwrap();
    out[..n].to_vec()
}

/// A device running 1.0.0 from `ota_0` updates to a 1.5 MiB 2.0.0; with `idle_erase`, the
/// application first erases `ota_1` step by step.
fn run(idle_erase: bool) -> Run {
    let old = test_app_image(S3, "1.0.0", 64 * 1024);
    let chip = build_chip_image(S3, Some(&old));
    let image = test_app_image(S3, "2.0.0", IMAGE_LEN);
    assert_eq!(image.len(), IMAGE_LEN);
    let server = TestServer::start(vec![
        ("/fw.bin".to_string(), image.clone()),
        ("/fw.bin.manifest".to_string(), manifest_for(&image)),
    ])
    .unwrap();
    let mut modem = ModemConfig::new(Personality::Ec200u).ready();
    modem.baud = BAUD;
    let uart = UartConfig::default().with_baud(BAUD);
    let world = World::new(WorldConfig::new(modem).with_uart(uart).with_seed(1));
    world.attach_server(&server);
    let mut flash = SimFlash::with_image(&world, FlashConfig::default(), &chip);
    let boot = boot_with(flash.image_mut(), BootOptions::new(S3));
    assert_eq!(boot.target, Some(BootTarget::Ota(0)), "{}", boot.reason);
    let config = SinkConfig::new(ChipId::ESP32S3).with_running_slot(Some(0));
    let erases = Rc::new(RefCell::new(Vec::new()));

    // Idle time: one step per call, as an application's scheduler would call it.
    let idle = idle_erase.then(|| {
        let mut sink = EspIdfSink::new(
            Timed {
                flash: &mut flash,
                world: world.clone(),
                erases: erases.clone(),
            },
            config,
        );
        let (mut steps, t0, mut longest) = (0, world.elapsed(), Duration::ZERO);
        loop {
            let t = world.elapsed();
            let step = sink.erase_idle_step().unwrap();
            longest = longest.max(world.elapsed() - t);
            steps += 1;
            if step == IdleErase::Done {
                break;
            }
            // The application does other things between steps.
            world.advance(Duration::from_millis(20));
        }
        assert!(sink.idle_erase_state().unwrap().is_erased());
        Idle {
            steps,
            total: world.elapsed() - t0,
            longest,
        }
    });
    erases.borrow_mut().clear();

    let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
    let mut client = Client::new(
        world.host_uart(),
        world.clock(),
        &mut rx,
        &mut resp,
        CountUrcs(0),
    );
    let mut bring = BringUpConfig::new("internet");
    bring.ready_timeout = Duration::from_secs(90);
    bring_up_blocking(&mut client, &Quectel::UART1, &bring, &mut |_| {}).unwrap();

    let url = server.url("/fw.bin");
    let manifest_url = server.url("/fw.bin.manifest");
    let mut cfg = UpdateConfig::new(&url);
    cfg.manifest_url = Some(&manifest_url);
    cfg.product = Some(PRODUCT);
    cfg.allow_unsigned = true;
    cfg.running_version = Some(Version::parse("1.0.0").unwrap());
    let mut sink = EspIdfSink::new(
        Timed {
            flash: &mut flash,
            world: world.clone(),
            erases: erases.clone(),
        },
        config,
    );
    let lost0 = world.uart_bytes_lost();
    let (mut method, mut manifest, mut started, mut first, mut last, mut verifying) =
        (None, None, None, None, None, None);
    let call = world.elapsed();
    let mut chunk = [0u8; 4096];
    let w = world.clone();
    let outcome = update_blocking(&mut client, &mut sink, &cfg, &mut chunk, &mut |p| {
        let t = w.elapsed();
        match p {
            Progress::Manifest { .. } => manifest = Some(t),
            Progress::Strategy { method: m, .. } => method = Some(m),
            Progress::Started { .. } => started = Some(t),
            Progress::Bytes { done, .. } => {
                first.get_or_insert((t, done));
                last = Some((t, done));
            }
            Progress::Verifying => verifying = Some(t),
            _ => {}
        }
    })
    .unwrap();
    assert!(matches!(outcome, Outcome::Installed { .. }), "{outcome:?}");
    let end = world.elapsed();
    let uart_lost = world.uart_bytes_lost() - lost0;
    drop(sink);
    let booted = boot_with(flash.image_mut(), BootOptions::new(S3)).target;
    let erases = erases.borrow().clone();
    Run {
        idle,
        method,
        call,
        manifest: manifest.unwrap(),
        end,
        started: started.unwrap(),
        first: first.unwrap(),
        last: last.unwrap(),
        verifying: verifying.unwrap(),
        uart_lost,
        erases,
        booted,
    }
}

#[test]
fn an_update_into_an_idle_erased_slot_runs_at_the_line_rate_without_erasing() {
    let plain = run(false);
    let idle = run(true);
    for (name, r) in [("as shipped", &plain), ("after idle erase", &idle)] {
        let to_first = r.first.0 - r.started;
        let in_transfer = r.erases_between(r.started, r.verifying);
        let erased: u32 = in_transfer.iter().map(|e| e.to - e.from).sum();
        let busy: Duration = in_transfer.iter().map(|e| e.end - e.start).sum();
        eprintln!(
            "{name}: {:?}; whole update {:.3} s; manifest -> Started (begin) {:.3} s; Started -> \
             first byte {:.3} s; payload {:.3} s = {:.1} % of the line rate; transfer (Started \
             -> Verifying) {:.3} s = {:.1} % of the line rate; erases in the transfer: {} ({} \
             KiB, {:.3} s); UART bytes lost {}; boots {:?}",
            r.method,
            (r.end - r.call).as_secs_f64(),
            (r.started - r.manifest).as_secs_f64(),
            to_first.as_secs_f64(),
            (r.last.0 - r.first.0).as_secs_f64(),
            r.payload_pct(),
            (r.verifying - r.started).as_secs_f64(),
            r.transfer_pct(),
            in_transfer.len(),
            erased / 1024,
            busy.as_secs_f64(),
            r.uart_lost,
            r.booted,
        );
        assert_eq!(r.method, Some(Method::StreamErasedAhead), "{name}");
        assert_eq!(r.uart_lost, 0, "{name}");
        assert_eq!(r.booted, Some(BootTarget::Ota(1)), "{name}");
        // Neither erases while the body arrives: the plain run erased before it.
        assert!(r.erases_between(r.first.0, r.last.0).is_empty(), "{name}");
    }
    let i = idle.idle.as_ref().unwrap();
    eprintln!(
        "idle erase of ota_1 (1.9 MiB): {} steps, {:.3} s of virtual time with 20 ms between \
         steps, longest step {:.1} ms",
        i.steps,
        i.total.as_secs_f64(),
        i.longest.as_secs_f64() * 1000.0,
    );
    // 30 blocks and 15 sectors; each step one erase (at most a 150 ms block) plus reads.
    assert_eq!(i.steps, 45);
    assert!(i.longest < Duration::from_millis(160), "{i:?}");
    // The pre-erased update erases nothing from the request to the end of the body...
    assert!(idle.erases_between(idle.started, idle.verifying).is_empty());
    // ...while the shipped one spends about 3.6 s erasing there (24 blocks).
    let plain_erase: Duration = plain
        .erases_between(plain.started, plain.verifying)
        .iter()
        .map(|e| e.end - e.start)
        .sum();
    assert!(
        plain_erase >= Duration::from_millis(3500),
        "{plain_erase:?}"
    );
    let saved = (plain.verifying - plain.started).saturating_sub(idle.verifying - idle.started);
    assert!(saved >= Duration::from_secs(3), "{saved:?}");
    // Close to the line rate, with no flow control.
    assert!(idle.payload_pct() >= 90.0, "{:.1}", idle.payload_pct());
    assert!(idle.transfer_pct() > plain.transfer_pct());
}
