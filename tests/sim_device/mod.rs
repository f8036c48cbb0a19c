//! A simulated device that updates its firmware through a simulated Quectel modem, used by
//! `tests/faults.rs`, `tests/power_cut.rs` and `examples/simulated_ota.rs` (which includes
//! this file with `#[path]`).
//!
//! The device is an ESP32-S3 with 4 MiB of flash ([`build_chip_image`]: version 1.0.0 in
//! `ota_0`, `ota_1` free), a modem on a UART and a server holding the new image and its
//! signed manifest. It behaves like firmware: it brings the modem up, calls
//! [`update_blocking`] with an [`EspIdfSink`] over the flash, and after a failure recovers
//! the way a device would before trying again (resuming from what is durable in flash):
//!
//! * **MCU reset** (`mcu-reset`): the old client and sink are gone; the bootloader runs, the
//!   UART is re-initialised and drained, and a new client and sink are made over the same
//!   flash.
//! * **power cut** (`power-cut`): the whole device (MCU and modem) loses power. A new
//!   [`World`] starts from the flash contents the cut left, the modem boots from scratch.
//! * **modem reboot** and **lost PDP context**: the bring-up before each attempt
//!   ([`cellular_ota::bring_up`]) waits for the modem to answer, sets it up again, routes
//!   URCs to the UART and re-activates the context.
//!
//! Between attempts it follows the library's retry policy: a permanent failure
//! ([`Classify::retry`]) ends the run; a transient one waits [`Backoff::next_delay`] in
//! virtual time first (one immediate retry, then 30 s, 2 min ... with jitter), and an
//! attempt that made bytes durable starts the schedule over.
//!
//! After every attempt the bootloader model ([`boot`]) is asked what would boot now; the
//! [`Report`] keeps each answer so tests can check that a valid image boots at every point.

#![allow(dead_code)]

pub mod plot;

use std::time::Duration;

use cellular_ota::baud::{BaudConfig, BaudError, Negotiated, negotiate_blocking};
use cellular_ota::bring_up::{BringUpConfig, BringUpError, bring_up_blocking};
use cellular_ota::client::blocking::Client;
use cellular_ota::client::{CountUrcs, Error as ClientError, TimeoutExt};
use cellular_ota::ota::esp_idf::image::ChipId;
use cellular_ota::ota::esp_idf::sink::{EspIdfSink, IdleErase, SinkConfig};
use cellular_ota::ota::manifest::{
    MAX_SIGNED_MESSAGE_LEN, MAX_WRITTEN_LEN, Manifest, Payload, Version, write_manifest,
};
use cellular_ota::ota::mem_flash::MemFlashError;
use cellular_ota::quectel::bring_up::Quectel;
use cellular_ota::quectel::general::{
    Attention, ErrorFormat, IndicationType, SetEcho, SetErrorFormat, SetFlowControl, SetIndication,
};
use cellular_ota::quectel::pdp::{
    ActivateContext, ActiveContexts, AuthMethod, ConfigureContext, PdpType,
};
use cellular_ota::retry::{Backoff, Classify};
use cellular_ota::simcom::SimcomHttp;
use cellular_ota::simcom::bring_up::Simcom;
use cellular_ota::update::{
    Failure, Method, Outcome, Progress, Stage, Strategy, UpdateConfig, UpdateError,
    update_blocking, update_with_blocking,
};
use cellular_ota_sim::chip_image::layout;
use cellular_ota_sim::{
    BootOptions, BootOutcome, BootTarget, FlashConfig, FlashStats, ModemConfig, Personality,
    SimFlash, TestServer, UartConfig, World, WorldConfig, boot_with, build_chip_image,
    test_app_image, test_app_image_with_segment,
};
use ed25519_compact::{KeyPair, Seed};
use embedded_io::ErrorKind;
use sha2::{Digest, Sha256};

/// ESP32-S3 (`chip_id` 9).
pub const S3: u16 = 9;
/// The chip id of ESP32-C3, for "built for the wrong chip".
pub const C3: u16 = 5;
/// The version the device runs at the start.
pub const OLD_VERSION: &str = "1.0.0";
/// The version the server offers.
pub const NEW_VERSION: &str = "2.0.0";
/// The fixed Ed25519 test key (its 32-byte seed). Test use only.
pub const TEST_KEY_SEED: [u8; 32] = *b"cellular-ota simulated test key!";
/// Another key, for "signed by the wrong key".
pub const OTHER_KEY_SEED: [u8; 32] = *b"not the key the device trusts!!!";
/// The product the device is and the manifests name.
pub const PRODUCT: &str = "sim-ec200u-esp32s3";
/// Another product signed with the same key.
pub const OTHER_PRODUCT: &str = "sim-ec200u-pump";
/// Image path on the server.
pub const IMAGE_PATH: &str = "/fw.bin";
/// Manifest path on the server.
pub const MANIFEST_PATH: &str = "/fw.bin.manifest";
/// A second copy of the image (redirect target).
pub const MIRROR_PATH: &str = "/mirror/fw.bin";

/// What the stock bootloader (rollback off) boots from this flash, without changing it (with
/// rollback off the model writes nothing, so no copy of the 4 MiB is needed).
pub fn boot(flash: &mut SimFlash, chip: u16) -> BootOutcome {
    boot_with(flash.image_mut(), BootOptions::new(chip))
}

/// The device's flash as the sink sees it: the simulated chip, and when its power fails the
/// MCU dies with it (the same supply feeds both), so nothing the update flow does after the
/// cut (its clean-up commands to the modem) happens: the UART fails at once, as after a
/// reset, until the device is powered again.
pub struct DeviceFlash<'a> {
    flash: &'a mut SimFlash,
    world: World,
}

impl DeviceFlash<'_> {
    fn check<T>(&self, r: Result<T, MemFlashError>) -> Result<T, MemFlashError> {
        if matches!(r, Err(MemFlashError::PowerCut)) && !self.world.mcu_reset_pending() {
            self.world.schedule_mcu_reset(Duration::ZERO);
        }
        r
    }
}

impl embedded_storage::nor_flash::ErrorType for DeviceFlash<'_> {
    type Error = MemFlashError;
}

impl embedded_storage::nor_flash::ReadNorFlash for DeviceFlash<'_> {
    const READ_SIZE: usize = <SimFlash as embedded_storage::nor_flash::ReadNorFlash>::READ_SIZE;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), MemFlashError> {
        let r = embedded_storage::nor_flash::ReadNorFlash::read(self.flash, offset, bytes);
        self.check(r)
    }

    fn capacity(&self) -> usize {
        embedded_storage::nor_flash::ReadNorFlash::capacity(self.flash)
    }
}

impl embedded_storage::nor_flash::NorFlash for DeviceFlash<'_> {
    const WRITE_SIZE: usize = <SimFlash as embedded_storage::nor_flash::NorFlash>::WRITE_SIZE;
    const ERASE_SIZE: usize = <SimFlash as embedded_storage::nor_flash::NorFlash>::ERASE_SIZE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), MemFlashError> {
        let r = embedded_storage::nor_flash::NorFlash::erase(self.flash, from, to);
        self.check(r)
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), MemFlashError> {
        let r = embedded_storage::nor_flash::NorFlash::write(self.flash, offset, bytes);
        self.check(r)
    }
}

/// The update error of this device.
pub type Error = UpdateError;

/// The test key pair.
pub fn test_key() -> KeyPair {
    KeyPair::from_seed(Seed::new(TEST_KEY_SEED))
}

/// What the server publishes as the manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestMode {
    /// A manifest for the served image, signed with the test key, version [`NEW_VERSION`].
    Signed,
    /// No manifest: the device identifies the image by URL and length.
    Absent,
    /// Signed with a key the device does not trust.
    WrongKey,
    /// Signed with the test key, with this version.
    Version(&'static str),
    /// A manifest for the served image without a signature line.
    Unsigned,
    /// Signed with the test key, for [`OTHER_PRODUCT`].
    OtherProduct,
}

/// What the server serves as the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageKind {
    /// A valid image for the device's chip.
    Good,
    /// One byte of the served copy flipped after the manifest was made (transport or storage
    /// corruption): the SHA-256 does not match the manifest.
    Corrupt,
    /// A broken build that was signed as it is (the manifest matches the bytes): only the
    /// image checks of the sink can refuse it.
    CorruptSigned,
    /// A valid image, but for ESP32-C3.
    WrongChip,
    /// Larger than the slot can take (slot size minus the journal sector).
    Oversized,
    /// A valid image whose app descriptor says [`MISMATCHED_VERSION`] while the (signed)
    /// manifest says [`NEW_VERSION`]: a build published under the wrong version.
    VersionMismatch,
    /// A signed image with a segment to be copied over the bootloader's own RAM
    /// ([`OVER_BOOTLOADER`]): the real bootloader refuses to load it.
    OverBootloader,
}

/// Where the [`ImageKind::OverBootloader`] image puts a 256-byte RAM segment: the DRAM alias
/// of the ESP32-S3 bootloader's loader code.
pub const OVER_BOOTLOADER: u32 = 0x3FCD_B700;

/// The version the [`ImageKind::VersionMismatch`] image declares.
pub const MISMATCHED_VERSION: &str = "2.0.1";

/// Everything a run is made of.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The modem.
    pub personality: Personality,
    /// `UpdateConfig::strategy`.
    pub strategy: Strategy,
    /// `UpdateConfig::range_size`.
    pub range_size: Option<u32>,
    /// UART baud rate (both ends).
    pub baud: u32,
    /// RTS/CTS: the host drives RTS and the modem gets `AT+IFC=2,2`; also
    /// `UpdateConfig::flow_control`.
    pub flow: bool,
    /// `Some(n)`: the MCU receives by UART DMA into an `n`-byte ring that keeps filling
    /// during flash operations (`UartConfig::with_rx_dma`), and `UpdateConfig::rx_dma` is
    /// set. `None`: the interrupt-driven 1 KiB ring behind the 128-byte FIFO.
    pub rx_dma: Option<usize>,
    /// Length of the new image ([`test_app_image`]: rounded up to 16 bytes).
    pub size: usize,
    /// The manifest the server publishes.
    pub manifest: ManifestMode,
    /// The image the server serves.
    pub image: ImageKind,
    /// Faults by their simulator names ([`cellular_ota_sim::FAULTS`]), injected before the
    /// first attempt, or when a trigger fires: `<trigger>:<fault>` with trigger `attempt=N`
    /// (before attempt N), `ready` (the modem bring-up of an attempt is done, the update flow
    /// starts), `manifest` (the manifest was accepted), `started` (the transfer
    /// starts), `bytes=N` (N image bytes are durable), `verifying` or `activating`. In the
    /// fault, `img+N` stands for payload offset N of the image (after the manifest's bytes).
    /// Besides the simulator's names, `mcu-reset-in=<ms>` resets the MCU that long after the
    /// trigger (not tied to a payload).
    pub faults: Vec<String>,
    /// Server behaviours that last for the first attempt only: the server (or the network
    /// path to it) recovers before the second one.
    pub transient_faults: Vec<String>,
    /// Attempts the device makes at most.
    pub attempts: u32,
    /// Random seed of the world.
    pub seed: u64,
    /// The device is configured with its public key but no manifest URL (a configuration
    /// mistake `update` must refuse before it sends anything).
    pub key_without_manifest: bool,
    /// Leave the modem's signal-quality URCs (`+QIND: "csq",..`, about 4 a minute, some
    /// between an `OK` and its result URC) on. A careful device turns them off with
    /// `AT+QINDCFG="csq",0` before long transfers (quectel-at.md §1.1), which the bring-up
    /// does unless this is set. A modem reboot turns them on again until the next bring-up.
    pub csq_urcs: bool,
    /// The URC port saved in the module (`ModemConfig::urc_port`): `"uart1"`, or `"usbat"`
    /// for a module last set up over USB.
    pub urc_port: String,
    /// How the device brings the modem up before each attempt.
    pub bring_up: BringUpKind,
    /// The SIM's PIN, if it asks for one at power-on (`ModemConfig::sim_pin`).
    pub modem_sim_pin: Option<String>,
    /// The PIN the device is configured with (`BringUpConfig::sim_pin`).
    pub device_sim_pin: Option<String>,
    /// The registration state the network gives (`ModemConfig::registration_stat`: 1 home,
    /// 5 roaming, 2 searching for ever, 3 denied).
    pub registration_stat: u8,
    /// The EMM cause of a denial (`ModemConfig::reject_cause`).
    pub reject_cause: Option<u16>,
    /// `BringUpConfig::registration_timeout`.
    pub registration_timeout: Duration,
    /// The running image was confirmed earlier and the other slot erased in idle time
    /// (`EspIdfSink::erase_idle_step` until done), before the device starts: the update
    /// finds it erased. The erase's virtual time is reported apart
    /// ([`Device::idle_erase`]), not in the run's.
    pub idle_erased: bool,
    /// Baud negotiation before each attempt (`cellular_ota::baud::negotiate`) with these
    /// candidate rates, fastest first, from the module's boot rate `baud`; `None`: the link
    /// stays at `baud` (a rate the module has saved).
    pub negotiate: Option<Vec<u32>>,
    /// The chip the simulated device is (its images' `chip_id`, the bootloader model's and
    /// the sink's chip): [`S3`] or [`C3`].
    pub chip: u16,
    /// A real app image to serve instead of a generated one (`simulated_ota --image`); its
    /// app descriptor's version is the new version. Only [`ImageKind::Good`] and
    /// [`ImageKind::Corrupt`] apply to it.
    pub image_file: Option<std::sync::Arc<Vec<u8>>>,
    /// A real app image the device runs at the start, in `ota_0`
    /// (`simulated_ota --running-image`); its app descriptor's version is the running one.
    pub running_file: Option<std::sync::Arc<Vec<u8>>>,
    /// What the server sends for the new image (`simulated_ota --delta`, `--compressed`).
    pub payload: PayloadKind,
}

/// What the server sends for the new image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadKind {
    /// The image itself.
    Full,
    /// A detools patch from the running image to the new one, made with esp_delta_ota's
    /// flags ([`make_patch`]).
    Delta,
    /// A detools patch from an empty base: a heatshrink-compressed image.
    Compressed,
}

/// `python3 -m detools create_patch -c heatshrink --heatshrink-window-sz2 8
/// --heatshrink-lookahead-sz2 7 FROM TO PATCH` (esp_delta_ota's flags): the tool users
/// have makes the patch. Panics with a clear message when detools is not installed
/// (`pip install detools==0.53.0`; `.ci/run` installs it).
pub fn make_patch(from: &[u8], to: &[u8]) -> Vec<u8> {
    type Cache = std::sync::Mutex<Vec<(([u8; 32], [u8; 32]), Vec<u8>)>>;
    static MADE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
    let key = (Sha256::digest(from).into(), Sha256::digest(to).into());
    let made = MADE.get_or_init(Default::default);
    if let Some((_, p)) = made.lock().unwrap().iter().find(|(k, _)| *k == key) {
        return p.clone();
    }
    let patch = run_detools(from, to);
    made.lock().unwrap().push((key, patch.clone()));
    patch
}

/// The patch [`Device::new`] serves for `setup` ([`Setup::payload`] delta or compressed).
pub fn patch_for(setup: &Setup) -> Option<Vec<u8>> {
    let base = match setup.payload {
        PayloadKind::Full => return None,
        PayloadKind::Delta => start_flash(setup).0,
        PayloadKind::Compressed => Vec::new(),
    };
    Some(make_patch(&base, &make_image(setup).0))
}

/// The length of the body the server sends for the new image: the patch, the image file,
/// or the generated image.
pub fn body_len(setup: &Setup) -> usize {
    match (patch_for(setup), &setup.image_file) {
        (Some(p), _) => p.len(),
        (None, Some(f)) => f.len(),
        (None, None) => cellular_ota_sim::test_app_len(setup.size),
    }
}

fn run_detools(from: &[u8], to: &[u8]) -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!(
        "cellular-ota-patch-{}-{:x}",
        std::process::id(),
        u64::from_le_bytes(Sha256::digest(to)[..8].try_into().unwrap())
            ^ u64::from_le_bytes(Sha256::digest(from)[..8].try_into().unwrap())
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (f, t, p) = (dir.join("from"), dir.join("to"), dir.join("patch"));
    std::fs::write(&f, from).expect("write base");
    std::fs::write(&t, to).expect("write target");
    let out = std::process::Command::new("python3")
        .args(["-m", "detools", "create_patch", "-c", "heatshrink"])
        .args([
            "--heatshrink-window-sz2",
            "8",
            "--heatshrink-lookahead-sz2",
            "7",
        ])
        .arg(&f)
        .arg(&t)
        .arg(&p)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "detools create_patch failed (pip install detools==0.53.0): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let patch = std::fs::read(&p).expect("patch");
    let _ = std::fs::remove_dir_all(&dir);
    patch
}

/// How the device brings the modem up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BringUpKind {
    /// The library's [`bring_up_blocking`] with [`Quectel::UART1`].
    Library,
    /// What hand-written firmware usually does: `AT` until it answers, `ATE0`, `AT+CMEE=1`,
    /// the PDP context; the URC port is never read or set.
    WithoutUrcRouting,
}

impl Setup {
    /// Defaults: this modem, auto strategy, 64 KiB ranges, 921 600 baud without flow
    /// control, a 256 KiB signed image, no faults, one attempt, `csq` URCs turned off by the
    /// bring-up.
    pub fn new(personality: Personality) -> Self {
        Setup {
            personality,
            strategy: Strategy::Auto,
            range_size: Some(64 * 1024),
            baud: 921_600,
            flow: false,
            rx_dma: None,
            size: 256 * 1024,
            manifest: ManifestMode::Signed,
            image: ImageKind::Good,
            faults: Vec::new(),
            transient_faults: Vec::new(),
            attempts: 1,
            seed: 1,
            key_without_manifest: false,
            csq_urcs: false,
            urc_port: "uart1".into(),
            bring_up: BringUpKind::Library,
            modem_sim_pin: None,
            device_sim_pin: None,
            registration_stat: 1,
            reject_cause: None,
            registration_timeout: Duration::from_secs(180),
            negotiate: None,
            idle_erased: false,
            chip: S3,
            image_file: None,
            running_file: None,
            payload: PayloadKind::Full,
        }
    }

    /// The version of the served image: its app descriptor's with [`Setup::image_file`],
    /// else [`NEW_VERSION`].
    pub fn new_version(&self) -> String {
        self.image_file
            .as_deref()
            .and_then(|i| declared_version(i))
            .unwrap_or_else(|| NEW_VERSION.to_string())
    }

    /// The version the device runs at the start: [`Setup::running_file`]'s, else
    /// [`OLD_VERSION`].
    pub fn old_version(&self) -> String {
        self.running_file
            .as_deref()
            .and_then(|i| declared_version(i))
            .unwrap_or_else(|| OLD_VERSION.to_string())
    }

    /// The sink's chip.
    fn chip_id(&self) -> ChipId {
        ChipId(self.chip)
    }
}

/// The version an ESP app image declares in its app descriptor (without a leading `v`).
pub fn declared_version(image: &[u8]) -> Option<String> {
    use cellular_ota::ota::esp_idf::image::{APP_DESC_LEN, AppDescriptor, IMAGE_MAGIC};
    if image.first() != Some(&IMAGE_MAGIC) {
        return None;
    }
    let desc: &[u8; APP_DESC_LEN] = image.get(0x20..0x20 + APP_DESC_LEN)?.try_into().ok()?;
    let d = AppDescriptor::decode(desc).ok()?;
    let v = d.version_str()?;
    Some(v.strip_prefix('v').unwrap_or(v).to_string())
}

/// When a fault is injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// Before attempt N (1 = at power-on).
    Attempt(u32),
    /// After the bring-up of an attempt, before the update flow.
    Ready,
    /// `Progress::Manifest`.
    Manifest,
    /// `Progress::Started`.
    Started,
    /// The first `Progress::Bytes` with at least this many bytes durable.
    Bytes(u32),
    /// `Progress::Verifying`.
    Verifying,
    /// `Progress::Activating`.
    Activating,
}

/// Splits `<trigger>:<fault>`; a fault without a known trigger is injected before attempt 1.
pub fn parse_trigger(f: &str) -> (Trigger, &str) {
    if let Some((t, rest)) = f.split_once(':') {
        let t = t.trim();
        let trig = match t {
            "ready" => Some(Trigger::Ready),
            "manifest" => Some(Trigger::Manifest),
            "started" => Some(Trigger::Started),
            "verifying" => Some(Trigger::Verifying),
            "activating" => Some(Trigger::Activating),
            _ => match t.split_once('=') {
                Some(("bytes", n)) => n.parse().ok().map(Trigger::Bytes),
                Some(("attempt", n)) => n.parse().ok().map(Trigger::Attempt),
                _ => None,
            },
        };
        if let Some(trig) = trig {
            return (trig, rest.trim());
        }
    }
    (Trigger::Attempt(1), f.trim())
}

/// Injects one fault: a simulator fault name, or `mcu-reset-in=<ms>`.
pub fn inject_one(world: &World, fault: &str) {
    if let Some(ms) = fault.strip_prefix("mcu-reset-in=") {
        let ms: u64 = ms.trim().parse().expect("mcu-reset-in=<ms>");
        world.schedule_mcu_reset(Duration::from_millis(ms));
        return;
    }
    world
        .inject_str(fault)
        .unwrap_or_else(|e| panic!("fault `{fault}`: {e}"));
}

/// Replaces every `img+N` with `base + N`.
fn resolve_offsets(fault: &str, base: u64) -> String {
    let mut out = String::new();
    let mut rest = fault;
    while let Some(i) = rest.find("img+") {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 4..];
        let end = tail
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(tail.len());
        let n: u64 = tail[..end].parse().unwrap_or(0);
        out.push_str(&(base + n).to_string());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

struct Pending {
    trigger: Trigger,
    fault: String,
}

fn fire(world: &World, pending: &mut Vec<Pending>, p: &Progress) {
    pending.retain(|f| {
        let hit = match (f.trigger, p) {
            (Trigger::Manifest, Progress::Manifest { .. }) => true,
            (Trigger::Started, Progress::Started { .. }) => true,
            (Trigger::Bytes(n), Progress::Bytes { done, .. }) => *done >= n,
            (Trigger::Verifying, Progress::Verifying) => true,
            (Trigger::Activating, Progress::Activating) => true,
            _ => false,
        };
        if hit {
            inject_one(world, &f.fault);
        }
        !hit
    });
}

/// What the bootloader boots, by content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Booted {
    /// The new image (the one the server serves).
    New,
    /// The image the device ran at the start.
    Old,
    /// Something else that validates (never expected).
    Other,
    /// Nothing valid: the chip would reset for ever.
    Nothing,
}

/// Something the device did, for a progress display.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// Attempt `n` (from 1) starts.
    Attempt(u32),
    /// The update flow reported progress.
    Progress(Progress),
    /// The device recovered from something before an attempt.
    Recovered(&'a str),
    /// An attempt failed.
    Failed(&'a Error),
    /// The device waits this long before the next attempt (the retry policy's backoff).
    Backoff(Duration),
}

/// Why an attempt failed.
#[derive(Debug)]
pub enum AttemptError {
    /// The modem could not be brought up (the update never started).
    BringUp(BringUpError<ErrorKind>),
    /// Baud negotiation found no modem (the update never started).
    Baud(BaudError<ErrorKind>),
    /// The update flow failed.
    Update(Error),
}

impl std::fmt::Display for AttemptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttemptError::BringUp(e) => write!(f, "modem bring-up failed: {e}"),
            AttemptError::Baud(e) => write!(f, "baud negotiation failed: {e}"),
            AttemptError::Update(e) => write!(f, "{e}"),
        }
    }
}

/// One attempt.
#[derive(Debug)]
pub struct Attempt {
    /// What `update_blocking` returned.
    pub result: Result<Outcome, AttemptError>,
    /// The method chosen (and after a fallback, the last one).
    pub method: Option<Method>,
    /// Fallbacks reported.
    pub fallbacks: Vec<Method>,
    /// `Progress::Started::resumed_from`.
    pub resumed_from: Option<u32>,
    /// Virtual time of the attempt's start (before the bring-up).
    pub t_begin: Duration,
    /// Virtual time when the flow reported `Started`.
    pub t_started: Option<Duration>,
    /// Virtual time of the first `Bytes` event.
    pub t_first_bytes: Option<Duration>,
    /// Virtual time of the last `Bytes` event.
    pub t_last_bytes: Option<Duration>,
    /// Image bytes durable when the first `Bytes` event came (the write before it counts
    /// too: `done` of that event).
    pub first_bytes_done: u32,
    /// `done` of the last `Bytes` event.
    pub last_bytes_done: u32,
    /// Virtual time when the flow reported `Verifying`.
    pub t_verifying: Option<Duration>,
    /// Virtual time when the attempt returned.
    pub t_end: Duration,
    /// UART bytes lost during the attempt.
    pub uart_lost: u64,
    /// The backoff the device waited before this attempt.
    pub backoff: Duration,
    /// The UART rate of the attempt (after negotiation, if any).
    pub baud: u32,
    /// Virtual time baud negotiation took.
    pub negotiation: Duration,
    /// What negotiation achieved, if it ran.
    pub negotiated: Option<Negotiated>,
    /// What the bootloader would boot right after the attempt.
    pub boot: BootOutcome,
    /// Which image that is.
    pub booted: Booted,
}

impl Attempt {
    /// The update error, if the flow failed.
    pub fn error(&self) -> Option<&Error> {
        match &self.result {
            Err(AttemptError::Update(e)) => Some(e),
            _ => None,
        }
    }
}

/// The whole run.
#[derive(Debug)]
pub struct Report {
    /// Every attempt, in order.
    pub attempts: Vec<Attempt>,
    /// What the bootloader boots at the end.
    pub boot: BootOutcome,
    /// Which image that is.
    pub booted: Booted,
    /// UART bytes lost over the whole run (all power cycles).
    pub uart_lost: u64,
    /// Response body bytes the server sent over the whole run, every request of every
    /// attempt (manifest and image; [`World::body_bytes_on_air`]).
    pub bytes_on_air: u64,
    /// Virtual time of the whole run (all power cycles).
    pub virtual_time: Duration,
    /// Power cycles the device went through.
    pub power_cycles: u32,
    /// MCU resets the device went through.
    pub mcu_resets: u32,
    /// Flash operation counters of the last power cycle.
    pub flash: FlashStats,
}

impl Report {
    /// The last attempt.
    pub fn last(&self) -> &Attempt {
        self.attempts.last().expect("at least one attempt")
    }

    /// The final outcome: the new image installed (or found already running after a power
    /// cycle), or the last attempt's error.
    pub fn installed(&self) -> Option<&Outcome> {
        self.last().result.as_ref().ok()
    }

    /// The last attempt's update error.
    pub fn error(&self) -> Option<&Error> {
        self.last().error()
    }
}

/// The whole device: server, modem world, flash.
pub struct Device {
    /// The setup it was made from.
    pub setup: Setup,
    /// The HTTP server.
    pub server: TestServer,
    /// The image the server's bytes stand for (what boots after the update).
    pub served: Vec<u8>,
    /// The patch served in its place ([`Setup::payload`] delta or compressed).
    pub patch: Option<Vec<u8>>,
    /// The manifest served, if any.
    pub manifest: Option<Vec<u8>>,
    /// The image the device runs at the start (in `ota_0`).
    pub old_image: Vec<u8>,
    /// The current world (a power cycle makes a new one).
    pub world: World,
    /// The flash chip.
    pub flash: SimFlash,
    /// What the bootloader booted at the last reset (power-on, MCU reset).
    pub running: BootOutcome,
    image_url: String,
    manifest_url: String,
    public_key: [u8; 32],
    pending: Vec<Pending>,
    power_cycles: u32,
    mcu_resets: u32,
    lost_before: u64,
    air_before: u64,
    elapsed_before: Duration,
    /// The MCU's UART rate now.
    pub link_rate: u32,
    /// The slowest rate at which a payload lost bytes: it and faster ones are no longer
    /// negotiated.
    pub dropped_rate: Option<u32>,
    /// With [`Setup::idle_erased`]: the idle erase's steps and the virtual time they took
    /// (on a world of their own, before the run).
    pub idle_erase: Option<(u32, Duration)>,
}

/// `chip` after the application confirmed its image and erased the other slot in idle time,
/// one `erase_idle_step` at a time: the flash afterwards, the steps and their virtual time.
fn idle_erased(chip: &[u8], chip_id: ChipId) -> (Vec<u8>, (u32, Duration)) {
    let world = World::new(WorldConfig::new(
        ModemConfig::new(Personality::Ec200u).ready(),
    ));
    let mut flash = SimFlash::with_image(&world, FlashConfig::default(), chip);
    let t0 = world.elapsed();
    let mut steps = 0;
    {
        let mut sink = EspIdfSink::new(
            DeviceFlash {
                flash: &mut flash,
                world: world.clone(),
            },
            SinkConfig::new(chip_id).with_running_slot(Some(0)),
        );
        loop {
            steps += 1;
            match sink.erase_idle_step().expect("idle erase") {
                IdleErase::Done => break,
                IdleErase::Progress { .. } => {}
            }
        }
        assert!(sink.idle_erase_state().expect("state").is_erased());
    }
    (flash.snapshot(), (steps, world.elapsed() - t0))
}

/// The device's flash at the start (4 MiB, [`build_chip_image`] with version
/// [`OLD_VERSION`], 64 KiB of code, in `ota_0`), and that old image; built once per process.
pub fn base_flash() -> &'static (Vec<u8>, Vec<u8>) {
    static BASE: std::sync::OnceLock<(Vec<u8>, Vec<u8>)> = std::sync::OnceLock::new();
    BASE.get_or_init(|| {
        let old = test_app_image(S3, OLD_VERSION, 64 * 1024);
        let chip = build_chip_image(S3, Some(&old));
        (old, chip)
    })
}

/// The device's flash at the start for `setup`: [`base_flash`], or with
/// [`Setup::running_file`] or another chip, that image (or a generated one for the chip) in
/// `ota_0`.
fn start_flash(setup: &Setup) -> (Vec<u8>, Vec<u8>) {
    match (&setup.running_file, setup.chip) {
        (None, S3) => base_flash().clone(),
        (file, chip) => {
            let old = match file {
                Some(f) => f.to_vec(),
                None => test_app_image(chip, OLD_VERSION, 64 * 1024),
            };
            let flash = build_chip_image(chip, Some(&old));
            (old, flash)
        }
    }
}

/// The served image for a setup (deterministic).
pub fn make_image(setup: &Setup) -> (Vec<u8>, Vec<u8>) {
    if let Some(file) = &setup.image_file {
        let good = file.to_vec();
        let mut served = good.clone();
        if matches!(setup.image, ImageKind::Corrupt | ImageKind::CorruptSigned) {
            let at = served.len() / 2;
            served[at] ^= 0x40;
        }
        return (good, served);
    }
    let chip = if setup.image == ImageKind::WrongChip {
        if setup.chip == C3 { S3 } else { C3 }
    } else {
        setup.chip
    };
    let size = if setup.image == ImageKind::Oversized {
        layout::OTA_1.1 as usize
    } else {
        setup.size
    };
    let good = test_app_image(chip, NEW_VERSION, size);
    let mut served = match setup.image {
        ImageKind::VersionMismatch => test_app_image(chip, MISMATCHED_VERSION, size),
        ImageKind::OverBootloader => {
            test_app_image_with_segment(chip, NEW_VERSION, size, OVER_BOOTLOADER, 256)
        }
        _ => good.clone(),
    };
    if matches!(setup.image, ImageKind::Corrupt | ImageKind::CorruptSigned) {
        let at = served.len() / 2;
        served[at] ^= 0x40;
    }
    (good, served)
}

/// A manifest for `image` with `version` for `product`, signed with `key` (or unsigned).
pub fn manifest_for(image: &[u8], version: &str, product: &str, key: Option<&KeyPair>) -> Vec<u8> {
    manifest_with(image, Payload::Full, version, product, key)
}

/// A manifest for `image` sent as `payload`.
pub fn manifest_with(
    image: &[u8],
    payload: Payload,
    version: &str,
    product: &str,
    key: Option<&KeyPair>,
) -> Vec<u8> {
    let mut manifest = Manifest {
        product,
        hardware: None,
        version: Version::parse(version).expect("version"),
        size: u32::try_from(image.len()).expect("size"),
        sha256: Sha256::digest(image).into(),
        payload,
        signature: None,
    };
    if let Some(k) = key {
        let mut msg = [0u8; MAX_SIGNED_MESSAGE_LEN];
        let msg = manifest.signed_message(&mut msg).expect("message");
        manifest.signature = Some(*k.sk.sign(msg, None));
    }
    let mut out = [0u8; MAX_WRITTEN_LEN];
    let n = write_manifest(&manifest, &mut out).expect("write");
    out[..n].to_vec()
}

fn make_world(setup: &Setup, booting: bool, seed: u64) -> World {
    let mut modem = ModemConfig::new(setup.personality);
    if !booting {
        modem = modem.ready();
    }
    // `Setup::baud` is a link fixed at that rate from the start: the module saved it.
    modem.baud = setup.baud;
    modem.urc_port = setup.urc_port.clone();
    modem.sim_pin = setup.modem_sim_pin.clone();
    modem.registration_stat = setup.registration_stat;
    modem.reject_cause = setup.reject_cause;
    let mut uart = UartConfig::default().with_baud(setup.baud);
    if let Some(ring) = setup.rx_dma {
        uart = uart.with_rx_dma(ring);
    }
    uart.host_rts = setup.flow;
    World::new(WorldConfig::new(modem).with_uart(uart).with_seed(seed))
}

/// The bring-up a device does before each update attempt: the library's bring-up (URCs
/// routed to the UART, `csq` and `act` URCs off, registration, PDP context 1), then `csq`
/// URCs back on if the setup wants them.
pub fn bring_up<H: cellular_ota::client::UrcHandler>(
    c: &mut Client<'_, cellular_ota_sim::HostUart, cellular_ota_sim::SimClock, H>,
    setup: &Setup,
) -> Result<(), BringUpError<ErrorKind>> {
    if let Some(family) = setup.personality.simcom() {
        let mut config = BringUpConfig::new("internet");
        config.flow_control = setup.flow;
        config.ready_timeout = Duration::from_secs(90);
        config.sim_pin = setup.device_sim_pin.as_deref();
        config.registration_timeout = setup.registration_timeout;
        // The family from the module's identity, as a device that does not configure it.
        let simcom = Simcom::detect();
        bring_up_blocking(c, &simcom, &config, &mut |_| {})?;
        assert_eq!(simcom.family(), Some(family), "family from the identity");
        return Ok(());
    }
    if setup.bring_up == BringUpKind::WithoutUrcRouting {
        return naive_bring_up(c, setup.flow, setup.csq_urcs)
            .map_err(|e| BringUpError::modem(cellular_ota::bring_up::BringUpStage::Setup, e));
    }
    let mut config = BringUpConfig::new("internet");
    config.flow_control = setup.flow;
    config.ready_timeout = Duration::from_secs(90);
    config.sim_pin = setup.device_sim_pin.as_deref();
    config.registration_timeout = setup.registration_timeout;
    bring_up_blocking(c, &Quectel::UART1, &config, &mut |_| {})?;
    if setup.csq_urcs {
        c.send(&SetIndication {
            kind: IndicationType::Csq,
            enable: true,
            save: None,
        })
        .map_err(|e| BringUpError::modem(cellular_ota::bring_up::BringUpStage::UrcRouting, e))?;
    }
    Ok(())
}

/// The bring-up hand-written firmware does: wait until the modem answers (it may be
/// booting), echo off, numeric errors, `csq` URCs off (unless `csq`), RTS/CTS if wanted,
/// and PDP context 1 active (waiting for registration). It never reads or sets the URC
/// port.
pub fn naive_bring_up<H: cellular_ota::client::UrcHandler>(
    c: &mut Client<'_, cellular_ota_sim::HostUart, cellular_ota_sim::SimClock, H>,
    flow: bool,
    csq: bool,
) -> Result<(), ClientError<ErrorKind>> {
    use cellular_ota::at::Clock;
    let elapsed = |c: &mut Client<'_, _, cellular_ota_sim::SimClock, H>| {
        Duration::from_micros(c.clock().now().as_micros())
    };
    let deadline = elapsed(c) + Duration::from_secs(90);
    loop {
        match c.send(&Attention.with_timeout(Duration::from_millis(300))) {
            Ok(()) => break,
            Err(e) if elapsed(c) >= deadline => return Err(e),
            Err(ClientError::Io(e)) => return Err(ClientError::Io(e)),
            Err(_) => {
                c.reset();
                // Idle (URCs still go to the handler) before trying again.
                let _ = c.wait_for(Duration::from_millis(500), |_| None::<()>);
            }
        }
    }
    c.send(&SetEcho(false))?;
    c.send(&SetErrorFormat(ErrorFormat::Numeric))?;
    if !csq {
        c.send(&SetIndication {
            kind: IndicationType::Csq,
            enable: false,
            save: None,
        })?;
    }
    if flow {
        c.send(&SetFlowControl::HARDWARE)?;
    }
    let deadline = elapsed(c) + Duration::from_secs(60);
    loop {
        let active = match c.send(&ActiveContexts) {
            Ok(l) => l.get(1).is_some_and(|s| s.state.is_active()),
            Err(ClientError::Io(e)) => return Err(ClientError::Io(e)),
            Err(_) => false,
        };
        if active {
            return Ok(());
        }
        let r = c
            .send(&ConfigureContext {
                cid: 1,
                pdp_type: PdpType::Ipv4,
                apn: "internet",
                user: "",
                password: "",
                auth: AuthMethod::None,
            })
            .and_then(|()| c.send(&ActivateContext { cid: 1 }));
        match r {
            Ok(()) => return Ok(()),
            Err(e) if elapsed(c) >= deadline => return Err(e),
            Err(ClientError::Io(e)) => return Err(ClientError::Io(e)),
            Err(_) => {
                // Not registered yet: wait a second.
                let _ = c.wait_for(Duration::from_secs(1), |_| None::<()>);
            }
        }
    }
}

/// Reads and discards whatever the modem sends until it has been quiet for `quiet` (what a
/// freshly reset MCU sees of a payload the modem was still sending).
pub fn drain_quiet(world: &World, quiet: Duration, max: Duration) {
    let uart = world.host_uart();
    let start = world.elapsed();
    let mut last = start;
    let mut buf = [0u8; 1024];
    loop {
        match uart.try_read(&mut buf) {
            Ok(n) if n > 0 => last = world.elapsed(),
            _ => {}
        }
        let now = world.elapsed();
        if now - last >= quiet || now - start >= max {
            return;
        }
        world.advance(Duration::from_micros(500));
    }
}

impl Device {
    /// A device at power-on with version 1.0.0 running and the server up.
    pub fn new(setup: Setup) -> Device {
        let (good, served) = make_image(&setup);
        let key = test_key();
        let new_version = setup.new_version();
        let new_version = new_version.as_str();
        let (old_image, chip) = start_flash(&setup);
        if setup.payload != PayloadKind::Full {
            return Device::with_patch(setup, good, served, old_image, chip);
        }
        let manifest = match setup.manifest {
            ManifestMode::Absent => None,
            ManifestMode::Signed => Some(manifest_for(
                if matches!(
                    setup.image,
                    ImageKind::CorruptSigned
                        | ImageKind::VersionMismatch
                        | ImageKind::OverBootloader
                ) {
                    &served
                } else {
                    &good
                },
                new_version,
                PRODUCT,
                Some(&key),
            )),
            ManifestMode::Unsigned => Some(manifest_for(&good, new_version, PRODUCT, None)),
            ManifestMode::OtherProduct => {
                Some(manifest_for(&good, new_version, OTHER_PRODUCT, Some(&key)))
            }
            ManifestMode::WrongKey => Some(manifest_for(
                &good,
                new_version,
                PRODUCT,
                Some(&KeyPair::from_seed(Seed::new(OTHER_KEY_SEED))),
            )),
            ManifestMode::Version(v) => Some(manifest_for(&good, v, PRODUCT, Some(&key))),
        };
        let mut files = vec![
            (IMAGE_PATH.to_string(), served.clone()),
            (MIRROR_PATH.to_string(), served.clone()),
        ];
        if let Some(m) = &manifest {
            files.push((MANIFEST_PATH.to_string(), m.clone()));
        }
        Device::serve(setup, files, served, manifest, old_image, chip)
    }

    /// A device served a detools patch ([`PayloadKind::Delta`] from the running image,
    /// [`PayloadKind::Compressed`] from nothing) with a signed format-3 manifest. A corrupt
    /// image is the served patch with one byte flipped.
    fn with_patch(
        setup: Setup,
        good: Vec<u8>,
        served: Vec<u8>,
        old_image: Vec<u8>,
        chip: Vec<u8>,
    ) -> Device {
        let base: &[u8] = if setup.payload == PayloadKind::Delta {
            &old_image
        } else {
            &[]
        };
        let patch = make_patch(base, &good);
        let mut sent = patch.clone();
        if served != good {
            let at = sent.len() / 2;
            sent[at] ^= 0x40;
        }
        let size = u32::try_from(patch.len()).expect("size");
        let sha256: [u8; 32] = Sha256::digest(&patch).into();
        let payload = match setup.payload {
            PayloadKind::Delta => Payload::Delta {
                size,
                sha256,
                base_size: u32::try_from(base.len()).expect("size"),
                base_sha256: Sha256::digest(base).into(),
            },
            _ => Payload::Compressed { size, sha256 },
        };
        let key = test_key();
        let manifest = manifest_with(&good, payload, &setup.new_version(), PRODUCT, Some(&key));
        let files = vec![
            (IMAGE_PATH.to_string(), sent.clone()),
            (MIRROR_PATH.to_string(), sent.clone()),
            (MANIFEST_PATH.to_string(), manifest.clone()),
        ];
        let mut device = Device::serve(setup, files, served, Some(manifest), old_image, chip);
        device.patch = Some(sent);
        device
    }

    fn serve(
        setup: Setup,
        files: Vec<(String, Vec<u8>)>,
        served: Vec<u8>,
        manifest: Option<Vec<u8>>,
        old_image: Vec<u8>,
        chip: Vec<u8>,
    ) -> Device {
        let key = test_key();
        let server = TestServer::start(files).expect("server");
        let world = make_world(&setup, false, setup.seed);
        world.attach_server(&server);
        let (chip, idle_erase) = if setup.idle_erased {
            let (image, took) = idle_erased(&chip, setup.chip_id());
            (std::borrow::Cow::Owned(image), Some(took))
        } else {
            (std::borrow::Cow::Owned(chip), None)
        };
        let mut flash = SimFlash::with_image(&world, FlashConfig::default(), &chip);
        let running = boot(&mut flash, setup.chip);
        assert_eq!(
            running.target,
            Some(BootTarget::Ota(0)),
            "{}",
            running.reason
        );
        let image_url = server.url(IMAGE_PATH);
        let manifest_url = server.url(MANIFEST_PATH);
        Device {
            setup,
            server,
            served,
            manifest,
            old_image,
            world,
            flash,
            running,
            image_url,
            manifest_url,
            public_key: *key.pk,
            pending: Vec::new(),
            power_cycles: 0,
            mcu_resets: 0,
            lost_before: 0,
            air_before: 0,
            elapsed_before: Duration::ZERO,
            link_rate: 0,
            dropped_rate: None,
            idle_erase,
            patch: None,
        }
        .with_link_rate()
    }

    fn with_link_rate(mut self) -> Self {
        self.link_rate = self.setup.baud;
        self
    }

    /// The image URL.
    pub fn image_url(&self) -> &str {
        &self.image_url
    }

    /// Arms faults (see [`Setup::faults`] for the syntax); those for attempt 1 are injected
    /// at once.
    pub fn inject(&mut self, faults: &[String]) {
        let base = self.manifest.as_ref().map_or(0, |m| m.len() as u64);
        for f in faults {
            let (trigger, fault) = parse_trigger(f);
            let fault = resolve_offsets(fault, base);
            self.pending.push(Pending { trigger, fault });
        }
        self.fire_attempt(1);
    }

    fn fire_attempt(&mut self, n: u32) {
        self.fire_exact(Trigger::Attempt(n));
    }

    fn fire_exact(&mut self, t: Trigger) {
        let world = self.world.clone();
        self.pending.retain(|f| {
            let hit = f.trigger == t;
            if hit {
                inject_one(&world, &f.fault);
            }
            !hit
        });
    }

    fn slot_holds(&self, slot: BootTarget, image: &[u8]) -> bool {
        let off = match slot {
            BootTarget::Ota(0) => layout::OTA_0.0,
            BootTarget::Ota(1) => layout::OTA_1.0,
            _ => return false,
        } as usize;
        self.flash.image().get(off..off + image.len()) == Some(image)
    }

    /// What boots now, and which image it is.
    pub fn boot_now(&mut self) -> (BootOutcome, Booted) {
        let b = boot(&mut self.flash, self.setup.chip);
        let booted = match b.target {
            Some(t) if self.slot_holds(t, &self.served) => Booted::New,
            Some(t) if self.slot_holds(t, &self.old_image) => Booted::Old,
            Some(_) => Booted::Other,
            None => Booted::Nothing,
        };
        (b, booted)
    }

    /// Total virtual time so far (over power cycles).
    pub fn elapsed(&self) -> Duration {
        self.elapsed_before + self.world.elapsed()
    }

    /// Total UART bytes lost so far (over power cycles).
    pub fn uart_lost(&self) -> u64 {
        self.lost_before + self.world.uart_bytes_lost()
    }

    /// The power went off: the device starts again from the flash as it is, with a new
    /// world (the modem boots from scratch).
    pub fn power_cycle(&mut self) {
        self.power_cycles += 1;
        self.lost_before += self.world.uart_bytes_lost();
        self.air_before += self.world.body_bytes_on_air();
        self.elapsed_before += self.world.elapsed();
        let image = self.flash.snapshot();
        let seed = self
            .setup
            .seed
            .wrapping_add(u64::from(self.power_cycles) * 7919);
        self.world = make_world(&self.setup, true, seed);
        self.link_rate = self.setup.baud;
        self.world.attach_server(&self.server);
        self.flash = SimFlash::with_image(&self.world, FlashConfig::default(), &image);
        self.running = boot(&mut self.flash, self.setup.chip);
    }

    /// Recovers from what the last attempt left: a power cut, an MCU reset.
    fn recover(&mut self, on: &mut dyn FnMut(&World, Event<'_>)) {
        if !self.flash.is_powered() {
            self.power_cycle();
            on(
                &self.world,
                Event::Recovered("power cut: the device restarted"),
            );
        }
        if self.world.mcu_reset_pending() {
            self.mcu_resets += 1;
            self.world.acknowledge_mcu_reset();
            // The restarted firmware opens the UART at its configured rate.
            self.world.host_uart().set_baud(self.setup.baud);
            self.link_rate = self.setup.baud;
            self.running = boot(&mut self.flash, self.setup.chip);
            on(
                &self.world,
                Event::Recovered("MCU reset: the device restarted"),
            );
        }
        // Whatever the modem still sends (the rest of a payload) is of no use now.
        drain_quiet(
            &self.world,
            Duration::from_millis(50),
            Duration::from_secs(120),
        );
    }

    /// One attempt: bring-up, then `update_blocking`.
    pub fn attempt(&mut self, n: u32, on: &mut dyn FnMut(&World, Event<'_>)) -> Attempt {
        self.recover(on);
        if n > 1 {
            self.fire_attempt(n);
        }
        on(&self.world, Event::Attempt(n));
        let world = self.world.clone();
        let lost0 = world.uart_bytes_lost();
        let mut a = Attempt {
            result: Ok(Outcome::UpToDate),
            method: None,
            fallbacks: Vec::new(),
            resumed_from: None,
            t_begin: world.elapsed(),
            t_started: None,
            t_first_bytes: None,
            t_last_bytes: None,
            first_bytes_done: 0,
            last_bytes_done: 0,
            t_verifying: None,
            t_end: Duration::ZERO,
            uart_lost: 0,
            backoff: Duration::ZERO,
            baud: self.link_rate,
            negotiation: Duration::ZERO,
            negotiated: None,
            boot: self.running.clone(),
            booted: Booted::Old,
        };
        let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
        let mut client = Client::new(
            world.host_uart(),
            world.clock(),
            &mut rx,
            &mut resp,
            CountUrcs(0),
        );
        let mut baud_failed = None;
        if let Some(rates) = &self.setup.negotiate {
            let t0 = world.elapsed();
            let mut set = |u: &mut cellular_ota_sim::HostUart, r: u32| {
                u.set_baud(r);
                true
            };
            // Rates at which a payload lost bytes are no longer offered.
            let rates: Vec<u32> = rates
                .iter()
                .copied()
                .filter(|r| self.dropped_rate.is_none_or(|d| *r < d))
                .collect();
            let mut config = BaudConfig::new(&rates);
            config.ready_timeout = Duration::from_secs(90);
            let r = match self.setup.personality.simcom() {
                Some(f) => negotiate_blocking(
                    &mut client,
                    &Simcom::new(f),
                    &config,
                    &mut self.link_rate,
                    &mut set,
                    None,
                    &mut |_| {},
                ),
                None => negotiate_blocking(
                    &mut client,
                    &Quectel::UART1,
                    &config,
                    &mut self.link_rate,
                    &mut set,
                    None,
                    &mut |_| {},
                ),
            };
            a.negotiation = world.elapsed() - t0;
            a.baud = self.link_rate;
            match r {
                Ok(n) => a.negotiated = Some(n),
                Err(e) => baud_failed = Some(e),
            }
        }
        a.result = match baud_failed {
            Some(e) => Err(AttemptError::Baud(e)),
            None => self.bring_up_and_update(&mut client, &world, &mut a, on),
        };
        drop(client);
        if let Err(AttemptError::Update(e)) = &a.result {
            on(&world, Event::Failed(e));
        }
        a.t_end = world.elapsed();
        a.uart_lost = world.uart_bytes_lost() - lost0;
        let (b, booted) = self.boot_now();
        a.boot = b;
        a.booted = booted;
        a
    }

    /// Bring-up, then `update_blocking`.
    fn bring_up_and_update(
        &mut self,
        client: &mut Client<'_, cellular_ota_sim::HostUart, cellular_ota_sim::SimClock, CountUrcs>,
        world: &World,
        a: &mut Attempt,
        on: &mut dyn FnMut(&World, Event<'_>),
    ) -> Result<Outcome, AttemptError> {
        let world = world.clone();
        match bring_up(client, &self.setup) {
            Err(e) => Err(AttemptError::BringUp(e)),
            Ok(()) => {
                self.fire_exact(Trigger::Ready);
                // The version that runs: the new one only if the bootloader booted it.
                let running_new = self.running.target.is_some_and(|t| {
                    self.slot_holds(t, &self.served) && self.setup.image == ImageKind::Good
                });
                let running_version = if running_new {
                    self.setup.new_version()
                } else {
                    self.setup.old_version()
                };
                let slot = self.running.slot();
                let running_version = Version::parse(&running_version).unwrap();
                let mut config = if self.setup.key_without_manifest {
                    // The device's mistake: its key, but no manifest URL.
                    let mut c = UpdateConfig::new(&self.image_url);
                    c.public_key = Some(self.public_key);
                    c.running_version = Some(running_version);
                    c.product = Some(PRODUCT);
                    c
                } else if self.manifest.is_some() {
                    UpdateConfig::signed(
                        &self.image_url,
                        &self.manifest_url,
                        self.public_key,
                        PRODUCT,
                        running_version,
                    )
                } else {
                    // No manifest: an explicit opt-in to unsigned images.
                    let mut c = UpdateConfig::new(&self.image_url);
                    c.allow_unsigned = true;
                    c
                };
                config.strategy = self.setup.strategy;
                config.range_size = self.setup.range_size;
                config.flow_control = self.setup.flow;
                config.rx_dma = self.setup.rx_dma.is_some();
                config.family = self.setup.personality.family();
                let mut sink = EspIdfSink::new(
                    DeviceFlash {
                        flash: &mut self.flash,
                        world: world.clone(),
                    },
                    SinkConfig::new(self.setup.chip_id()).with_running_slot(slot),
                );
                let mut chunk = [0u8; 4096];
                let w = world.clone();
                let pending = &mut self.pending;
                let simcom = self.setup.personality.simcom();
                let mut on_progress = |p: Progress| {
                    fire(&w, pending, &p);
                    let t = w.elapsed();
                    match p {
                        Progress::Strategy { method, .. } => a.method = Some(method),
                        Progress::Fallback { to, .. } => {
                            a.method = Some(to);
                            a.fallbacks.push(to);
                        }
                        Progress::Started { resumed_from, .. } => {
                            a.resumed_from = Some(resumed_from);
                            a.t_started = Some(t);
                        }
                        Progress::Bytes { done, .. } => {
                            if a.t_first_bytes.is_none() {
                                a.t_first_bytes = Some(t);
                                a.first_bytes_done = done;
                            }
                            a.t_last_bytes = Some(t);
                            a.last_bytes_done = done;
                        }
                        Progress::Verifying => a.t_verifying = Some(t),
                        _ => {}
                    }
                    on(&w, Event::Progress(p));
                };
                let r = match simcom {
                    Some(family) => update_with_blocking(
                        SimcomHttp::new(client.as_async(), family),
                        &mut sink,
                        &config,
                        &mut chunk,
                        &mut on_progress,
                    ),
                    None => {
                        update_blocking(client, &mut sink, &config, &mut chunk, &mut on_progress)
                    }
                };
                r.map_err(AttemptError::Update)
            }
        }
    }

    /// Runs attempts until one installs the image, an error is not worth retrying, or the
    /// attempts are used up.
    pub fn run(&mut self, on: &mut dyn FnMut(&World, Event<'_>)) -> Report {
        let faults = self.setup.faults.clone();
        self.inject(&faults);
        let transient = self.setup.transient_faults.clone();
        self.inject(&transient);
        let mut attempts: Vec<Attempt> = Vec::new();
        let mut backoff = Backoff::new();
        let mut durable = 0;
        for n in 1..=self.setup.attempts.max(1) {
            let mut waited = Duration::ZERO;
            if let Some(prev) = attempts.last()
                && prev.result.is_err()
            {
                // The library's schedule, jittered from the seed; virtual time passes (the
                // modem's bytes are read and dropped meanwhile, as an idle device would).
                let random =
                    (self.setup.seed ^ u64::from(n)).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32;
                let wait = backoff.next_delay(random as u32);
                drain_quiet(&self.world, wait, wait);
                on(&self.world, Event::Backoff(wait));
                waited = wait;
            }
            let mut a = self.attempt(n, on);
            a.backoff = waited;
            if n == 1 && !transient.is_empty() {
                self.server.clear_behaviors();
            }
            // A payload that lost bytes on the UART at a negotiated rate: the MCU cannot take
            // that rate while it writes flash; step down next time.
            if self.setup.negotiate.is_some()
                && let Err(AttemptError::Update(e)) = &a.result
                && (matches!(e.failure, Failure::BytesLost { .. })
                    || (e.stage == Stage::Transfer
                        && matches!(e.failure, Failure::Modem(ClientError::Timeout))))
            {
                self.dropped_rate = Some(a.baud);
            }
            // An attempt that made bytes durable starts the schedule over.
            if a.last_bytes_done > durable {
                durable = a.last_bytes_done;
                backoff.reset();
            }
            let stop = match &a.result {
                Ok(_) => true,
                Err(AttemptError::Update(e)) => !e.retry().is_transient(),
                Err(AttemptError::BringUp(e)) => !e.retry().is_transient(),
                Err(AttemptError::Baud(e)) => !e.retry().is_transient(),
            };
            attempts.push(a);
            if stop {
                break;
            }
        }
        // Whatever the last attempt left (a cut power supply included), the bootloader has
        // the last word.
        let (boot, booted) = self.boot_now();
        Report {
            attempts,
            boot,
            booted,
            uart_lost: self.uart_lost(),
            bytes_on_air: self.air_before + self.world.body_bytes_on_air(),
            virtual_time: self.elapsed(),
            power_cycles: self.power_cycles,
            mcu_resets: self.mcu_resets,
            flash: self.flash.stats(),
        }
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A short name of a method.
pub fn method_name(m: Method) -> &'static str {
    match m {
        Method::Stream => "stream",
        Method::StreamErasedAhead => "stream-erased-ahead",
        Method::RangedGetex => "ranged-getex",
        Method::RangedHeader => "ranged-header",
        Method::ModemFile => "modem-file",
    }
}
