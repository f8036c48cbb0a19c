//! Complete updates through the simulated modem, one named scenario per test, each with
//! faults: every fault name of the simulator's table at a sensible point, every HTTP error
//! code 701–730 at the GET and at the READ stage, refused commands, misbehaving servers,
//! power cuts, bad images and manifests, over each strategy, modem and flow-control setting.
//!
//! Each scenario is a [`Device`] (see `sim_device`): an ESP32-S3 flash with version 1.0.0 in
//! `ota_0`, an [`EspIdfSink`](cellular_ota::ota::esp_idf::sink::EspIdfSink) over it, the
//! update flow through a simulated modem to a local server, and a device's recovery between
//! attempts (resume after a link failure, a modem reboot, an MCU reset or a power cut). Every
//! scenario must end either with the new image verified, activated and booted by the
//! bootloader model, or with a typed `UpdateError` while the old image still boots; and
//! after every attempt the bootloader must find a valid image (old or new).
//!
//! Fault syntax (see `Setup::faults`): a simulator fault name, optionally behind a trigger
//! (`manifest:`, `started:`, `bytes=N:`, `activating:`, `attempt=N:`); `img+N` is payload
//! offset N of the image body (after the manifest's bytes).

mod sim_device;

use cellular_ota::ota::esp_idf::image::{ImageError, SegmentFault};
use cellular_ota::ota::esp_idf::sink::SinkError;
use cellular_ota::ota::manifest::ManifestError;
use cellular_ota::update::{ConfigError, Failure, Method, Outcome, Stage, Strategy};
use cellular_ota_sim::{FAULTS, Personality};
use sha2::{Digest, Sha256};
use sim_device::{
    AttemptError, Booted, Device, ImageKind, ManifestMode, Report, Setup, parse_trigger,
};

/// Code bytes of the test image: about 200 KB (49 flash sectors, 4 ranges of 64 KiB).
const SIZE: usize = 200_000;

type Fail = Failure;

/// How a scenario must end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// The new image is verified, activated and booted.
    Installed,
    /// The last attempt failed at this stage with a typed error; the old image boots.
    FailedSafely(Stage),
}

use Expect::{FailedSafely, Installed};

struct Scenario {
    setup: Setup,
    expect: Expect,
    first: Option<(Stage, Option<u16>)>,
    code: Option<u16>,
    method: Option<Method>,
    fallback: Option<Method>,
    failure: Option<fn(&Fail) -> bool>,
    lost: Option<bool>,
    min_attempts: u32,
    baud: Option<u32>,
}

impl Scenario {
    fn new(
        personality: Personality,
        strategy: Strategy,
        baud: u32,
        flow: bool,
        faults: &[&str],
        expect: Expect,
    ) -> Self {
        let mut setup = Setup::new(personality);
        setup.strategy = strategy;
        setup.baud = baud;
        setup.flow = flow;
        setup.size = SIZE;
        setup.faults = faults.iter().map(|f| f.to_string()).collect();
        // A device retries (resuming) after a failure; three attempts unless a scenario says
        // otherwise. Scenarios expecting a failure use what they need to show it persists.
        setup.attempts = 3;
        Scenario {
            setup,
            expect,
            first: None,
            code: None,
            method: None,
            fallback: None,
            failure: None,
            lost: None,
            min_attempts: 1,
            baud: None,
        }
    }

    /// Attempts the device makes at most.
    fn attempts(mut self, n: u32) -> Self {
        self.setup.attempts = n;
        self
    }
    /// Code bytes of the new image.
    fn size(mut self, n: usize) -> Self {
        self.setup.size = n;
        self
    }
    fn manifest(mut self, m: ManifestMode) -> Self {
        self.setup.manifest = m;
        self
    }
    fn image(mut self, k: ImageKind) -> Self {
        self.setup.image = k;
        self
    }
    /// `UpdateConfig::range_size` (`None`: buffered ranges).
    fn range(mut self, r: Option<u32>) -> Self {
        self.setup.range_size = r;
        self
    }
    /// Server faults for the first attempt only.
    fn transient(mut self, f: &[&str]) -> Self {
        self.setup.transient_faults = f.iter().map(|f| f.to_string()).collect();
        self
    }
    /// The device has its key but no manifest URL.
    fn key_without_manifest(mut self, on: bool) -> Self {
        self.setup.key_without_manifest = on;
        self
    }
    /// Leave the modem's `csq` URCs on.
    fn csq(mut self, on: bool) -> Self {
        self.setup.csq_urcs = on;
        self
    }
    fn seed(mut self, s: u64) -> Self {
        self.setup.seed = s;
        self
    }
    /// The board as shipped: the module boots at 115200 and the device negotiates up to
    /// these rates before each attempt; its slot was erased in idle time.
    fn negotiate(mut self, rates: &[u32]) -> Self {
        self.setup.baud = 115_200;
        self.setup.negotiate = Some(rates.to_vec());
        self.setup.idle_erased = true;
        self
    }
    /// The last attempt ran at this UART rate.
    fn baud(mut self, b: u32) -> Self {
        self.baud = Some(b);
        self
    }
    /// The first attempt fails at this stage, with this code.
    fn first(mut self, f: (Stage, Option<u16>)) -> Self {
        self.first = Some(f);
        self.min_attempts = self.min_attempts.max(2);
        self
    }
    /// The final error carries this code.
    fn code(mut self, c: u16) -> Self {
        self.code = Some(c);
        self
    }
    /// The method of the last attempt.
    fn method(mut self, m: Method) -> Self {
        self.method = Some(m);
        self
    }
    /// Some attempt fell back to this method.
    fn fallback(mut self, m: Method) -> Self {
        self.fallback = Some(m);
        self
    }
    /// The final (or, with `first`, the first) failure matches.
    fn failure(mut self, f: fn(&Fail) -> bool) -> Self {
        self.failure = Some(f);
        self
    }
    /// Whether the UART lost bytes.
    fn lost(mut self, l: bool) -> Self {
        self.lost = Some(l);
        self
    }
    /// At least this many attempts were made.
    fn min_attempts(mut self, n: u32) -> Self {
        self.min_attempts = n;
        self
    }

    fn run(self, name: &str) {
        for f in self.setup.faults.iter().chain(&self.setup.transient_faults) {
            let (_, fault) = parse_trigger(f);
            let fault = fault.replace("img+", "");
            assert!(
                fault.starts_with("mcu-reset-in=")
                    || fault.parse::<cellular_ota_sim::Fault>().is_ok(),
                "{name}: `{f}` does not parse"
            );
        }
        let t0 = std::time::Instant::now();
        let mut device = Device::new(self.setup.clone());
        let served_sha: [u8; 32] = Sha256::digest(&device.served).into();
        let report = device.run(&mut |_, _| {});
        let summary = summarize(&report);
        if std::env::var_os("FAULTS_VERBOSE").is_some() {
            eprintln!("{name} ({:.2} s):\n{summary}", t0.elapsed().as_secs_f64());
        }
        let ctx = format!("{name}:\n{summary}");
        check_safe(&report, &ctx);
        if let Some(b) = self.baud {
            assert_eq!(report.last().baud, b, "{ctx}UART rate of the last attempt");
        }
        assert!(
            report.attempts.len() as u32 >= self.min_attempts,
            "{ctx}expected at least {} attempts",
            self.min_attempts
        );
        match self.expect {
            Installed => {
                match report.installed() {
                    Some(Outcome::Installed { sha256, size, .. }) => {
                        assert_eq!(*sha256, served_sha, "{ctx}SHA-256 of the installed image");
                        assert_eq!(*size as usize, device.served.len(), "{ctx}");
                    }
                    // After a power cut that fell after the activation, the device boots the
                    // new image and the manifest says it is up to date.
                    Some(Outcome::UpToDate) => {
                        assert!(
                            report.power_cycles > 0,
                            "{ctx}up to date without a power cut"
                        )
                    }
                    None => panic!("{ctx}expected the image to be installed"),
                }
                assert_eq!(report.booted, Booted::New, "{ctx}{}", report.boot.reason);
            }
            FailedSafely(stage) => {
                let e = report
                    .error()
                    .unwrap_or_else(|| panic!("{ctx}expected a typed UpdateError"));
                assert_eq!(e.stage, stage, "{ctx}stage of `{e}`");
                assert_eq!(report.booted, Booted::Old, "{ctx}{}", report.boot.reason);
                if let Some(c) = self.code {
                    assert_eq!(e.code(), Some(c), "{ctx}code of `{e}`");
                }
            }
        }
        if let Some((stage, code)) = self.first {
            let e = report.attempts[0]
                .error()
                .unwrap_or_else(|| panic!("{ctx}the first attempt should fail"));
            assert_eq!(e.stage, stage, "{ctx}stage of the first error `{e}`");
            if code.is_some() {
                assert_eq!(e.code(), code, "{ctx}code of the first error `{e}`");
            }
        }
        if let Some(check) = self.failure {
            let e = match (self.first, report.error()) {
                (Some(_), _) | (None, None) => report.attempts[0].error(),
                (None, Some(e)) => Some(e),
            };
            let e = e.unwrap_or_else(|| panic!("{ctx}expected a failure to check"));
            assert!(check(&e.failure), "{ctx}unexpected failure `{e}`");
        }
        if let Some(m) = self.method {
            assert_eq!(report.last().method, Some(m), "{ctx}method");
        }
        if let Some(m) = self.fallback {
            assert!(
                report.attempts.iter().any(|a| a.fallbacks.contains(&m)),
                "{ctx}expected a fallback to {m:?}"
            );
        }
        if let Some(lost) = self.lost {
            assert_eq!(report.uart_lost > 0, lost, "{ctx}UART bytes lost");
        }
    }
}

/// The invariant of every scenario: after every attempt the bootloader boots a valid image,
/// the old one until an attempt installed the new one; no attempt failed outside the update
/// flow (the modem bring-up always recovers).
fn check_safe(report: &Report, ctx: &str) {
    let mut installed = false;
    for (i, a) in report.attempts.iter().enumerate() {
        assert!(
            a.boot.valid,
            "{ctx}attempt {}: nothing would boot: {}",
            i + 1,
            a.boot.reason
        );
        if let Err(AttemptError::BringUp(e)) = &a.result {
            panic!("{ctx}attempt {}: bring-up failed: {e}", i + 1);
        }
        installed |= a.result.is_ok();
        let want = if installed { Booted::New } else { Booted::Old };
        assert_eq!(a.booted, want, "{ctx}attempt {}: {}", i + 1, a.boot.reason);
    }
    assert!(report.boot.valid, "{ctx}{}", report.boot.reason);
}

fn summarize(r: &Report) -> String {
    let mut s = format!(
        "  booted {:?} ({:?}), {} UART bytes lost, {:.1} s virtual, {} power cycles, {} MCU resets\n",
        r.booted,
        r.boot.target,
        r.uart_lost,
        r.virtual_time.as_secs_f64(),
        r.power_cycles,
        r.mcu_resets
    );
    for (i, a) in r.attempts.iter().enumerate() {
        let res = match &a.result {
            Ok(Outcome::Installed {
                method,
                resumed_from,
                ..
            }) => format!("installed by {method:?}, resumed from {resumed_from}"),
            Ok(o) => format!("{o:?}"),
            Err(e) => e.to_string(),
        };
        s.push_str(&format!(
            "  attempt {}: {:?} (fallbacks {:?}), resumed from {:?}, lost {}: {res}\n",
            i + 1,
            a.method,
            a.fallbacks,
            a.resumed_from,
            a.uart_lost
        ));
    }
    s
}

macro_rules! flow {
    (on) => {
        true
    };
    (off) => {
        false
    };
}

/// `scenario!(name, modem, strategy, baud, on|off, faults = [...], expect = ..., option = value, ...)`
macro_rules! scenario {
    ($(#[$meta:meta])* $name:ident, $p:ident, $strategy:ident, $baud:expr, $flow:ident,
     faults = [$($f:expr),* $(,)?], expect = $expect:expr $(, $opt:ident = $val:expr)* $(,)?) => {
        #[test]
        $(#[$meta])*
        fn $name() {
            let s = Scenario::new(
                Personality::$p,
                Strategy::$strategy,
                $baud,
                flow!($flow),
                &[$($f),*],
                $expect,
            );
            $( let s = s.$opt($val); )*
            s.run(stringify!($name));
        }
    };
}

// -------------------------------------------------------------------------------------------
// Every strategy on every modem, flow control on and off, no faults.

scenario!(
    auto_ec200u_no_flow,
    Ec200u,
    Auto,
    921_600,
    off,
    faults = [],
    expect = Installed,
    method = Method::StreamErasedAhead,
    lost = false
);
scenario!(
    auto_ec200u_rtscts,
    Ec200u,
    Auto,
    921_600,
    on,
    faults = [],
    expect = Installed,
    method = Method::StreamErasedAhead,
    lost = false
);
scenario!(
    auto_ec200t_no_flow_115200,
    Ec200t,
    Auto,
    115_200,
    off,
    faults = [],
    expect = Installed,
    method = Method::StreamErasedAhead,
    lost = false
);
scenario!(
    auto_eg06_rtscts_460800,
    Eg06,
    Auto,
    460_800,
    on,
    faults = [],
    expect = Installed,
    method = Method::StreamErasedAhead,
    lost = false
);
scenario!(
    stream_ec200u_rtscts,
    Ec200u,
    Stream,
    921_600,
    on,
    faults = [],
    expect = Installed,
    method = Method::Stream,
    lost = false
);
scenario!(
    stream_ec200t_rtscts_115200,
    Ec200t,
    Stream,
    115_200,
    on,
    faults = [],
    expect = Installed,
    method = Method::Stream,
    lost = false
);
scenario!(
    stream_eg06_rtscts_460800,
    Eg06,
    Stream,
    460_800,
    on,
    faults = [],
    expect = Installed,
    method = Method::Stream,
    lost = false
);
// A naive streamer without flow control: each sector erase (45 ms, interrupts off) lets
// ~4 KB arrive at a 128-byte FIFO. The flow reports the loss as a typed error.
scenario!(
    stream_ec200u_no_flow_loses_bytes,
    Ec200u,
    Stream,
    921_600,
    off,
    faults = [],
    expect = FailedSafely(Stage::Transfer),
    attempts = 1,
    lost = true,
    failure = |f| matches!(f, Failure::BytesLost { .. })
);
scenario!(
    stream_eg06_no_flow_115200_loses_bytes,
    Eg06,
    Stream,
    115_200,
    off,
    faults = [],
    expect = FailedSafely(Stage::Transfer),
    attempts = 2,
    lost = true
);
scenario!(
    ranged_ec200u_header_no_flow,
    Ec200u,
    Ranged,
    921_600,
    off,
    faults = [],
    expect = Installed,
    method = Method::RangedHeader,
    lost = false
);
scenario!(
    ranged_ec200t_getex_no_flow,
    Ec200t,
    Ranged,
    921_600,
    off,
    faults = [],
    expect = Installed,
    method = Method::RangedGetex,
    lost = false
);
scenario!(
    ranged_eg06_getex_rtscts,
    Eg06,
    Ranged,
    460_800,
    on,
    faults = [],
    expect = Installed,
    method = Method::RangedGetex,
    lost = false
);
scenario!(
    ranged_buffered_ec200u_no_flow,
    Ec200u,
    Ranged,
    921_600,
    off,
    faults = [],
    expect = Installed,
    range = None,
    method = Method::RangedHeader,
    lost = false
);
scenario!(
    ranged_buffered_ec200t_115200,
    Ec200t,
    Ranged,
    115_200,
    off,
    faults = [],
    expect = Installed,
    range = None,
    method = Method::RangedGetex,
    lost = false
);
scenario!(
    ranged_buffered_eg06_rtscts,
    Eg06,
    Ranged,
    921_600,
    on,
    faults = [],
    expect = Installed,
    range = None,
    method = Method::RangedGetex,
    lost = false
);
scenario!(
    modem_file_ec200u_no_flow,
    Ec200u,
    ModemFile,
    921_600,
    off,
    faults = [],
    expect = Installed,
    method = Method::ModemFile,
    lost = false
);
scenario!(
    modem_file_ec200t_rtscts,
    Ec200t,
    ModemFile,
    460_800,
    on,
    faults = [],
    expect = Installed,
    method = Method::ModemFile,
    lost = false
);
scenario!(
    modem_file_eg06_115200,
    Eg06,
    ModemFile,
    115_200,
    off,
    faults = [],
    expect = Installed,
    method = Method::ModemFile,
    lost = false
);
// EC200T's UFS (286 720 bytes) cannot take a 300 KB image.
scenario!(
    modem_file_ec200t_no_space,
    Ec200t,
    ModemFile,
    921_600,
    off,
    faults = [],
    expect = FailedSafely(Stage::Request),
    size = 300_000,
    failure = |f| matches!(f, Failure::NoSpace { .. })
);
// Without a manifest the image is identified by URL and length.
scenario!(
    no_manifest_auto_ec200t,
    Ec200t,
    Auto,
    921_600,
    off,
    faults = [],
    expect = Installed,
    manifest = ManifestMode::Absent
);
scenario!(
    no_manifest_ranged_eg06,
    Eg06,
    Ranged,
    921_600,
    off,
    faults = [],
    expect = Installed,
    manifest = ManifestMode::Absent,
    method = Method::RangedGetex
);
// The modem's signal-quality URCs left on: they arrive between commands, between `OK` and
// result URCs.
scenario!(
    csq_urcs_on_auto_ec200u,
    Ec200u,
    Auto,
    921_600,
    off,
    faults = [],
    expect = Installed,
    csq = true,
    seed = 7
);
scenario!(
    csq_urcs_on_ranged_ec200t,
    Ec200t,
    Ranged,
    921_600,
    off,
    faults = [],
    expect = Installed,
    csq = true,
    seed = 8
);

// -------------------------------------------------------------------------------------------
// Payload faults: byte-loss, byte-corrupt, uart-stall, modem-reboot, mcu-reset.

scenario!(
    byte_loss_auto_ec200u,
    Ec200u,
    Auto,
    921_600,
    off,
    faults = ["byte-loss=img+100000,10"],
    expect = Installed,
    first = (Stage::Transfer, None),
    failure = |f| matches!(f, Failure::BytesLost { .. })
);
scenario!(
    byte_loss_ranged_ec200t,
    Ec200t,
    Ranged,
    921_600,
    off,
    faults = ["byte-loss=img+70000,3"],
    expect = Installed,
    first = (Stage::Transfer, None)
);
// One or two bytes lost inside a buffered chunk go unnoticed at the transfer: the CR LF of
// the modem's `\r\nOK\r\n` fill the announced count and the rest still reads as `OK`. The
// chunk is written with the trailer's bytes in it, and only the SHA-256 at the end (or,
// without a manifest, the sink's image checks) catches it; the next attempt starts over.
scenario!(
    byte_loss_ranged_buffered_eg06,
    Eg06,
    Ranged,
    921_600,
    off,
    faults = ["byte-loss=img+30000"],
    expect = Installed,
    range = None,
    first = (Stage::Verification, None),
    failure = |f| matches!(f, Failure::HashMismatch)
);
scenario!(
    byte_loss_modem_file_ec200u,
    Ec200u,
    ModemFile,
    921_600,
    off,
    faults = ["byte-loss=img+50000,2"],
    expect = Installed,
    first = (Stage::Verification, None),
    method = Method::ModemFile
);
scenario!(
    byte_loss_3_modem_file_ec200t,
    Ec200t,
    ModemFile,
    921_600,
    off,
    faults = ["byte-loss=img+50000,3"],
    expect = Installed,
    first = (Stage::Transfer, None),
    method = Method::ModemFile
);
scenario!(
    byte_corrupt_auto_ec200u,
    Ec200u,
    Auto,
    921_600,
    off,
    faults = ["byte-corrupt=img+123456"],
    expect = Installed,
    first = (Stage::Verification, None),
    failure = |f| matches!(f, Failure::HashMismatch)
);
scenario!(
    byte_corrupt_stream_rtscts_eg06,
    Eg06,
    Stream,
    921_600,
    on,
    faults = ["byte-corrupt=img+5"],
    expect = Installed,
    first = (Stage::Verification, None)
);
// Without a manifest only the sink's image checks can notice.
scenario!(
    byte_corrupt_no_manifest_ec200t,
    Ec200t,
    Auto,
    921_600,
    off,
    faults = ["byte-corrupt=img+150000,0x01"],
    expect = Installed,
    manifest = ManifestMode::Absent,
    first = (Stage::Activation, None),
    failure = |f| matches!(f, Failure::Sink(SinkError::Image(_)))
);
// The copy in the module's UFS is intact; only the UART corrupted a byte: reused on retry.
scenario!(
    byte_corrupt_modem_file_eg06,
    Eg06,
    ModemFile,
    921_600,
    off,
    faults = ["byte-corrupt=img+77777"],
    expect = Installed,
    first = (Stage::Verification, None)
);
scenario!(
    uart_stall_500ms_auto_ec200u,
    Ec200u,
    Auto,
    921_600,
    off,
    faults = ["uart-stall=img+60000,500"],
    expect = Installed,
    attempts = 1
);
scenario!(
    uart_stall_500ms_ranged_buffered_ec200t,
    Ec200t,
    Ranged,
    115_200,
    off,
    faults = ["uart-stall=img+10000,500"],
    expect = Installed,
    attempts = 1,
    range = None
);
// A stall longer than `read_wait` (60 s): the read times out, the device resumes.
scenario!(
    uart_stall_longer_than_read_wait_eg06,
    Eg06,
    Auto,
    921_600,
    on,
    faults = ["uart-stall=img+90000,65000"],
    expect = Installed,
    first = (Stage::Transfer, None)
);
scenario!(
    modem_reboot_mid_stream_ec200u,
    Ec200u,
    Auto,
    921_600,
    off,
    faults = ["modem-reboot=img+100000"],
    expect = Installed,
    first = (Stage::Transfer, None)
);
scenario!(
    modem_reboot_mid_stream_rtscts_ec200t,
    Ec200t,
    Stream,
    921_600,
    on,
    faults = ["modem-reboot=img+30000"],
    expect = Installed,
    first = (Stage::Transfer, None)
);
scenario!(
    modem_reboot_mid_range_eg06,
    Eg06,
    Ranged,
    460_800,
    off,
    faults = ["modem-reboot=img+140000"],
    expect = Installed,
    first = (Stage::Transfer, None)
);
scenario!(
    modem_reboot_mid_modem_file_read_ec200t,
    Ec200t,
    ModemFile,
    921_600,
    off,
    faults = ["modem-reboot=img+20000"],
    expect = Installed,
    first = (Stage::Transfer, None)
);
scenario!(
    mcu_reset_mid_download_auto_ec200u,
    Ec200u,
    Auto,
    921_600,
    off,
    faults = ["mcu-reset=img+100000"],
    expect = Installed,
    first = (Stage::Transfer, None)
);
scenario!(
    mcu_reset_mid_download_stream_rtscts_eg06,
    Eg06,
    Stream,
    921_600,
    on,
    faults = ["mcu-reset=img+150000"],
    expect = Installed,
    first = (Stage::Transfer, None)
);
scenario!(
    mcu_reset_mid_range_ec200t,
    Ec200t,
    Ranged,
    921_600,
    off,
    faults = ["mcu-reset=img+90000"],
    expect = Installed,
    first = (Stage::Transfer, None)
);
// An MCU reset while reading the module file: the module keeps the file open under a handle
// the restarted MCU never learns (AT+QFOPEN answers +CME ERROR: 426), so the device fetches
// the rest over HTTP ranges from its resume point instead.
scenario!(
    mcu_reset_mid_modem_file_read_ec200u,
    Ec200u,
    ModemFile,
    921_600,
    off,
    faults = ["mcu-reset=img+120000"],
    expect = Installed,
    first = (Stage::Transfer, None),
    method = Method::RangedHeader
);
// An MCU reset while the module downloads into its UFS (before the file is opened): the
// device starts again and downloads the file again.
scenario!(
    mcu_reset_during_modem_file_download_ec200t,
    Ec200t,
    ModemFile,
    921_600,
    off,
    faults = ["started:mcu-reset-in=2000"],
    expect = Installed,
    first = (Stage::Transfer, None),
    method = Method::ModemFile
);
// Two MCU resets and a modem reboot in one update.
scenario!(
    mcu_reset_twice_and_modem_reboot_ec200t,
    Ec200t,
    Auto,
    460_800,
    off,
    faults = [
        "mcu-reset=img+50000",
        "attempt=2:mcu-reset=40000",
        "attempt=3:modem-reboot=30000"
    ],
    expect = Installed,
    attempts = 5,
    min_attempts = 4
);

// -------------------------------------------------------------------------------------------
// The network deactivates the PDP context.

scenario!(
    pdp_deact_before_manifest_ec200u,
    Ec200u,
    Auto,
    921_600,
    off,
    faults = ["ready:pdp-deact=0"],
    expect = Installed,
    first = (Stage::Request, Some(709))
);
scenario!(
    pdp_deact_between_ranges_ec200t,
    Ec200t,
    Ranged,
    921_600,
    off,
    faults = ["bytes=70000:pdp-deact=0"],
    expect = Installed,
    first = (Stage::Request, Some(709))
);
scenario!(
    pdp_deact_while_get_pending_eg06,
    Eg06,
    Stream,
    921_600,
    on,
    faults = ["manifest:pdp-deact=50"],
    expect = Installed,
    first = (Stage::Request, None),
    failure = |f| matches!(f, Failure::LinkLost)
);
scenario!(
    pdp_deact_before_modem_file_get_ec200u,
    Ec200u,
    ModemFile,
    921_600,
    off,
    faults = ["manifest:pdp-deact=0"],
    expect = Installed,
    first = (Stage::Request, Some(709))
);

// -------------------------------------------------------------------------------------------
// Refused commands (`+CME ERROR`).

scenario!(
    cme_qhttpcfg_in_setup_ec200u,
    Ec200u,
    Auto,
    921_600,
    off,
    faults = ["cme=AT+QHTTPCFG,3"],
    expect = Installed,
    first = (Stage::Setup, Some(3))
);
scenario!(
    cme_qhttpurl_eg06,
    Eg06,
    Auto,
    921_600,
    off,
    faults = ["manifest:cme=AT+QHTTPURL,703"],
    expect = Installed,
    first = (Stage::Request, Some(703))
);
scenario!(
    http_get_cme_716_ec200t,
    Ec200t,
    Auto,
    921_600,
    off,
    faults = ["http-get-cme=716"],
    expect = Installed,
    first = (Stage::Request, Some(716))
);
scenario!(
    http_get_cme_703_on_a_range_ec200t,
    Ec200t,
    Ranged,
    921_600,
    off,
    faults = ["bytes=60000:http-get-cme=703"],
    expect = Installed,
    first = (Stage::Request, Some(703))
);
scenario!(
    http_read_cme_705_ec200u,
    Ec200u,
    Auto,
    921_600,
    off,
    faults = ["manifest:http-read-cme=705"],
    expect = Installed,
    first = (Stage::Transfer, Some(705))
);
scenario!(
    http_read_cme_on_the_manifest_eg06,
    Eg06,
    Auto,
    921_600,
    off,
    faults = ["http-read-cme=704"],
    expect = Installed,
    first = (Stage::Manifest, Some(704))
);
// A module that refuses `AT+QHTTPGETEX=?` is driven with a Range header instead.
scenario!(
    cme_getex_probe_falls_back_to_header_eg06,
    Eg06,
    Ranged,
    921_600,
    off,
    faults = ["cme=AT+QHTTPGETEX,4"],
    expect = Installed,
    attempts = 1,
    method = Method::RangedHeader
);
scenario!(
    cme_qflds_modem_file_ec200u,
    Ec200u,
    ModemFile,
    921_600,
    off,
    faults = ["cme=AT+QFLDS,3"],
    expect = Installed,
    first = (Stage::Request, Some(3))
);
scenario!(
    cme_qfopen_modem_file_eg06,
    Eg06,
    ModemFile,
    921_600,
    off,
    faults = ["cme=AT+QFOPEN,421"],
    expect = Installed,
    first = (Stage::Transfer, Some(421))
);
// "File already opened" cannot be cured by this session (the handle is unknown): the flow
// fetches the image by ranges in the same attempt.
scenario!(
    cme_qfopen_already_open_falls_back_to_ranges_eg06,
    Eg06,
    ModemFile,
    921_600,
    off,
    faults = ["cme=AT+QFOPEN,426"],
    expect = Installed,
    method = Method::RangedGetex
);
scenario!(
    cme_qfread_modem_file_ec200t,
    Ec200t,
    ModemFile,
    921_600,
    off,
    faults = ["bytes=40000:cme=AT+QFREAD,411"],
    expect = Installed,
    first = (Stage::Transfer, Some(411))
);
scenario!(
    http_readfile_error_722_ec200u,
    Ec200u,
    ModemFile,
    921_600,
    off,
    faults = ["http-readfile-error=722"],
    expect = Installed,
    first = (Stage::Transfer, Some(722))
);
// The device's own bring-up retries a refused activation.
scenario!(
    cme_qiact_in_bring_up_ec200t,
    Ec200t,
    Auto,
    921_600,
    off,
    faults = ["attempt=2:cme=AT+QIACT,561", "ready:pdp-deact=0"],
    expect = Installed,
    first = (Stage::Request, Some(709))
);

// -------------------------------------------------------------------------------------------
// Misbehaving servers.

scenario!(
    server_404_image_ec200u,
    Ec200u,
    Auto,
    921_600,
    off,
    faults = ["server-404@/fw.bin"],
    expect = FailedSafely(Stage::HttpStatus),
    code = 404
);
scenario!(
    server_404_manifest_ec200t,
    Ec200t,
    Auto,
    921_600,
    off,
    faults = ["server-404"],
    expect = FailedSafely(Stage::Manifest),
    code = 404
);
scenario!(
    server_404_no_manifest_eg06,
    Eg06,
    Ranged,
    921_600,
    off,
    faults = ["server-404"],
    expect = FailedSafely(Stage::HttpStatus),
    code = 404,
    manifest = ManifestMode::Absent
);
scenario!(
    server_500_persistent_ec200u,
    Ec200u,
    Ranged,
    921_600,
    off,
    faults = ["server-500@/fw.bin"],
    expect = FailedSafely(Stage::HttpStatus),
    code = 500,
    attempts = 2,
    min_attempts = 2
);
scenario!(
    server_500_transient_ec200t,
    Ec200t,
    Auto,
    921_600,
    off,
    faults = [],
    expect = Installed,
    transient = &["server-500@/fw.bin"],
    first = (Stage::HttpStatus, Some(500))
);
scenario!(
    server_ignore_range_ranged_ec200t,
    Ec200t,
    Ranged,
    921_600,
    off,
    faults = ["server-ignore-range"],
    expect = Installed,
    attempts = 1,
    fallback = Method::StreamErasedAhead
);
scenario!(
    server_ignore_range_buffered_ec200u,
    Ec200u,
    Ranged,
    921_600,
    off,
    faults = ["server-ignore-range"],
    expect = Installed,
    attempts = 1,
    range = None,
    fallback = Method::StreamErasedAhead
);
// Resuming after a reboot asks for ranges; the server ignores them.
scenario!(
    server_ignore_range_on_resume_ec200u,
    Ec200u,
    Auto,
    921_600,
    off,
    faults = ["server-ignore-range", "modem-reboot=img+120000"],
    expect = Installed,
    fallback = Method::StreamErasedAhead
);
scenario!(
    server_wrong_length_shorter_ec200u,
    Ec200u,
    Auto,
    921_600,
    off,
    faults = ["server-wrong-length=-100@/fw.bin"],
    expect = FailedSafely(Stage::HttpStatus),
    attempts = 2,
    failure = |f| matches!(f, Failure::Length { .. })
);
scenario!(
    server_wrong_length_longer_ranged_eg06,
    Eg06,
    Ranged,
    921_600,
    off,
    faults = ["server-wrong-length=100@/fw.bin"],
    expect = FailedSafely(Stage::HttpStatus),
    attempts = 2
);
// Without a manifest the announced length is the image's length: the shortened image fails
// the sink's checks.
scenario!(
    server_wrong_length_no_manifest_ec200t,
    Ec200t,
    Auto,
    921_600,
    off,
    faults = ["server-wrong-length=-100@/fw.bin"],
    expect = FailedSafely(Stage::Activation),
    attempts = 2,
    manifest = ManifestMode::Absent,
    failure = |f| matches!(f, Failure::Sink(SinkError::Image(_)))
);
// The connection closes after 100 000 body bytes, once: the device resumes.
scenario!(
    server_close_early_transient_ec200u,
    Ec200u,
    Auto,
    921_600,
    off,
    faults = [],
    expect = Installed,
    transient = &["server-close-early=100000@/fw.bin"],
    first = (Stage::Transfer, None)
);
scenario!(
    server_close_early_transient_stream_rtscts_eg06,
    Eg06,
    Stream,
    921_600,
    on,
    faults = [],
    expect = Installed,
    transient = &["server-close-early=50000@/fw.bin"],
    first = (Stage::Transfer, None)
);
// Always closing early (also on ranges, which it answers with the whole file): no attempt
// can complete.
scenario!(
    server_close_early_persistent_ec200t,
    Ec200t,
    Auto,
    921_600,
    off,
    faults = ["server-close-early=100000@/fw.bin"],
    expect = FailedSafely(Stage::Transfer),
    attempts = 2
);
scenario!(
    server_slow_ec200u,
    Ec200u,
    Auto,
    921_600,
    off,
    faults = ["server-slow=60"],
    expect = Installed,
    attempts = 1
);
scenario!(
    server_redirect_absolute_ec200t_follows,
    Ec200t,
    Auto,
    921_600,
    off,
    faults = ["server-redirect=/mirror/fw.bin@/fw.bin"],
    expect = Installed,
    attempts = 1
);
scenario!(
    server_redirect_absolute_ranged_ec200t_follows,
    Ec200t,
    Ranged,
    921_600,
    off,
    faults = ["server-redirect=/mirror/fw.bin@/fw.bin"],
    expect = Installed,
    attempts = 1,
    method = Method::RangedGetex
);
scenario!(
    server_redirect_absolute_ec200u_not_followed,
    Ec200u,
    Auto,
    921_600,
    off,
    faults = ["server-redirect=/mirror/fw.bin@/fw.bin"],
    expect = FailedSafely(Stage::HttpStatus),
    code = 302,
    attempts = 1
);
scenario!(
    server_redirect_absolute_eg06_not_followed,
    Eg06,
    Ranged,
    921_600,
    off,
    faults = ["server-redirect=/mirror/fw.bin@/fw.bin"],
    expect = FailedSafely(Stage::HttpStatus),
    code = 302,
    attempts = 1
);
scenario!(
    server_redirect_relative_ec200t_refused,
    Ec200t,
    Auto,
    921_600,
    off,
    faults = ["server-redirect-relative=/mirror/fw.bin@/fw.bin"],
    expect = FailedSafely(Stage::Request),
    code = 711,
    attempts = 2
);
scenario!(
    server_redirect_relative_ec200u_not_followed,
    Ec200u,
    Auto,
    921_600,
    off,
    faults = ["server-redirect-relative=/mirror/fw.bin@/fw.bin"],
    expect = FailedSafely(Stage::HttpStatus),
    code = 302,
    attempts = 1
);
scenario!(
    server_chunked_auto_ec200u,
    Ec200u,
    Auto,
    921_600,
    off,
    faults = ["server-chunked@/fw.bin"],
    expect = Installed,
    attempts = 1
);
scenario!(
    server_chunked_stream_rtscts_ec200t,
    Ec200t,
    Stream,
    460_800,
    on,
    faults = ["server-chunked@/fw.bin"],
    expect = Installed,
    attempts = 1
);
// Chunked and no manifest: nothing says how long the image is.
scenario!(
    server_chunked_no_manifest_eg06,
    Eg06,
    Auto,
    921_600,
    off,
    faults = ["server-chunked"],
    expect = FailedSafely(Stage::HttpStatus),
    manifest = ManifestMode::Absent,
    attempts = 2
);
// A chunked answer to a range request (200 without a length) falls back to streaming the
// whole body, whose length and hash are then checked.
scenario!(
    server_chunked_ranged_ec200t,
    Ec200t,
    Ranged,
    921_600,
    off,
    faults = ["server-chunked@/fw.bin"],
    expect = Installed,
    method = Method::StreamErasedAhead,
    lost = false
);

// -------------------------------------------------------------------------------------------
// Power cuts at flash operations (see tests/power_cut.rs for every operation).

scenario!(
    power_cut_first_flash_op_ec200u,
    Ec200u,
    Auto,
    921_600,
    off,
    faults = ["power-cut=0"],
    expect = Installed,
    first = (Stage::Flash, None)
);
scenario!(
    power_cut_mid_download_ec200t,
    Ec200t,
    Auto,
    921_600,
    off,
    faults = ["power-cut=1500"],
    expect = Installed,
    first = (Stage::Flash, None)
);
scenario!(
    power_cut_mid_stream_rtscts_eg06,
    Eg06,
    Stream,
    921_600,
    on,
    faults = ["power-cut=700"],
    expect = Installed,
    first = (Stage::Flash, None)
);
scenario!(
    power_cut_mid_ranged_buffered_ec200u,
    Ec200u,
    Ranged,
    921_600,
    off,
    faults = ["power-cut=80"],
    expect = Installed,
    range = None,
    first = (Stage::Flash, None)
);
scenario!(
    power_cut_mid_modem_file_eg06,
    Eg06,
    ModemFile,
    921_600,
    off,
    faults = ["power-cut=70"],
    expect = Installed,
    first = (Stage::Flash, None)
);
// `finish`: the padded tail write (if bytes are still buffered), then the otadata sector
// erase and the entry write (entry 1, at 0xE000: entry 0 selects the running ota_0), then the
// journal (the last sector of ota_1, at 0x3EF000) is cleared.
scenario!(
    power_cut_at_first_write_in_finish_ec200u,
    Ec200u,
    Auto,
    921_600,
    off,
    faults = ["activating:power-cut=0"],
    expect = Installed,
    first = (Stage::Activation, None)
);
scenario!(
    power_cut_at_otadata_erase_ec200t,
    Ec200t,
    Auto,
    921_600,
    off,
    faults = ["activating:power-cut-at=0xe000"],
    expect = Installed,
    first = (Stage::Activation, None),
    failure = |f| matches!(f, Failure::Sink(SinkError::Flash { .. }))
);
scenario!(
    power_cut_at_otadata_write_eg06,
    Eg06,
    Ranged,
    921_600,
    off,
    faults = ["activating:power-cut-at=0xe000,1"],
    expect = Installed,
    first = (Stage::Activation, None)
);
// The entry is written: the new image is selected. The device reboots into it and the
// manifest then says it is up to date.
scenario!(
    power_cut_at_journal_clear_after_activation_ec200u,
    Ec200u,
    Auto,
    921_600,
    off,
    faults = ["activating:power-cut-at=0x3ef000"],
    expect = Installed
);
scenario!(
    power_cut_twice_eg06,
    Eg06,
    Auto,
    921_600,
    off,
    faults = ["power-cut=300", "attempt=2:power-cut=400"],
    expect = Installed,
    min_attempts = 3
);

// -------------------------------------------------------------------------------------------
// Bad images and manifests: never activated, the old image keeps booting.

scenario!(
    corrupt_image_ec200u,
    Ec200u,
    Auto,
    921_600,
    off,
    faults = [],
    expect = FailedSafely(Stage::Verification),
    image = ImageKind::Corrupt,
    attempts = 2,
    failure = |f| matches!(f, Failure::HashMismatch)
);
scenario!(
    corrupt_image_signed_as_is_eg06,
    Eg06,
    Ranged,
    921_600,
    off,
    faults = [],
    expect = FailedSafely(Stage::Activation),
    image = ImageKind::CorruptSigned,
    failure = |f| matches!(f, Failure::Sink(SinkError::Image(_)))
);
scenario!(
    corrupt_image_no_manifest_ec200t,
    Ec200t,
    Auto,
    921_600,
    off,
    faults = [],
    expect = FailedSafely(Stage::Activation),
    image = ImageKind::Corrupt,
    manifest = ManifestMode::Absent,
    attempts = 2
);
scenario!(
    wrong_chip_ec200u,
    Ec200u,
    Auto,
    921_600,
    off,
    faults = [],
    expect = FailedSafely(Stage::Activation),
    image = ImageKind::WrongChip,
    failure = |f| matches!(f, Failure::Sink(SinkError::Image(_)))
);
scenario!(
    wrong_chip_modem_file_eg06,
    Eg06,
    ModemFile,
    921_600,
    off,
    faults = [],
    expect = FailedSafely(Stage::Activation),
    image = ImageKind::WrongChip
);
scenario!(
    oversized_image_ec200t,
    Ec200t,
    Auto,
    921_600,
    off,
    faults = [],
    expect = FailedSafely(Stage::Flash),
    image = ImageKind::Oversized,
    failure = |f| matches!(f, Failure::Sink(SinkError::ImageTooLarge { .. }))
);
scenario!(
    oversized_image_no_manifest_ec200u,
    Ec200u,
    Auto,
    921_600,
    off,
    faults = [],
    expect = FailedSafely(Stage::Flash),
    image = ImageKind::Oversized,
    manifest = ManifestMode::Absent
);
scenario!(
    bad_signature_ec200u,
    Ec200u,
    Auto,
    921_600,
    off,
    faults = [],
    expect = FailedSafely(Stage::Manifest),
    manifest = ManifestMode::WrongKey,
    failure = |f| matches!(f, Failure::Manifest(ManifestError::BadSignature))
);
scenario!(
    older_version_eg06,
    Eg06,
    Auto,
    921_600,
    off,
    faults = [],
    expect = FailedSafely(Stage::Manifest),
    manifest = ManifestMode::Version("0.9.1"),
    failure = |f| matches!(f, Failure::Manifest(ManifestError::Downgrade { .. }))
);
scenario!(
    unsigned_manifest_with_a_key_ec200u,
    Ec200u,
    Auto,
    921_600,
    off,
    faults = [],
    expect = FailedSafely(Stage::Manifest),
    manifest = ManifestMode::Unsigned,
    failure = |f| matches!(f, Failure::Manifest(ManifestError::NoSignature))
);
scenario!(
    other_product_signed_with_the_same_key_ec200t,
    Ec200t,
    Ranged,
    921_600,
    off,
    faults = [],
    expect = FailedSafely(Stage::Manifest),
    manifest = ManifestMode::OtherProduct,
    failure = |f| matches!(f, Failure::Manifest(ManifestError::OtherProduct))
);
scenario!(
    image_declares_another_version_than_its_manifest_ec200u,
    Ec200u,
    Auto,
    921_600,
    off,
    faults = [],
    expect = FailedSafely(Stage::Activation),
    image = ImageKind::VersionMismatch,
    failure = |f| matches!(f, Failure::Sink(SinkError::VersionMismatch { declared })
        if declared.starts_with(b"2.0.1\0"))
);
scenario!(
    image_with_a_segment_over_the_bootloaders_ram_eg06,
    Eg06,
    ModemFile,
    921_600,
    off,
    faults = [],
    expect = FailedSafely(Stage::Activation),
    image = ImageKind::OverBootloader,
    failure = |f| matches!(
        f,
        Failure::Sink(SinkError::Image(ImageError::BadSegment {
            fault: SegmentFault::BootloaderRam,
            ..
        }))
    )
);
scenario!(
    key_without_manifest_url_is_refused_before_anything_is_sent_ec200u,
    Ec200u,
    Auto,
    921_600,
    off,
    faults = [],
    expect = FailedSafely(Stage::Config),
    key_without_manifest = true,
    failure = |f| matches!(f, Failure::Config(ConfigError::KeyWithoutManifest))
);

// -------------------------------------------------------------------------------------------
// Every HTTP error code of quectel-at.md §5.1 (701–730) at the GET stage (`+QHTTPGET: <err>`
// for the image request, after the manifest) and at the READ stage (`+QHTTPREAD: <err>`
// after a 64 KiB range): the first attempt fails with that code, the next one resumes.

macro_rules! http_get_error {
    ($($name:ident = $code:literal),* $(,)?) => {$(
        scenario!($name, Ec200u, Auto, 921_600, off,
            faults = [concat!("manifest:http-get-error=", $code)], expect = Installed,
            attempts = 2, first = (Stage::Request, Some($code)),
            failure = |f| matches!(f, Failure::Http(e) if e.code() == $code));
    )*};
}

macro_rules! http_read_error {
    ($($name:ident = $code:literal),* $(,)?) => {$(
        scenario!($name, Ec200t, Ranged, 921_600, off,
            faults = [concat!("manifest:http-read-error=", $code)], expect = Installed,
            attempts = 2, first = (Stage::Transfer, Some($code)),
            failure = |f| matches!(f, Failure::Http(e) if e.code() == $code));
    )*};
}

http_get_error!(
    http_get_error_701 = 701,
    http_get_error_702 = 702,
    http_get_error_703 = 703,
    http_get_error_704 = 704,
    http_get_error_705 = 705,
    http_get_error_706 = 706,
    http_get_error_707 = 707,
    http_get_error_708 = 708,
    http_get_error_709 = 709,
    http_get_error_710 = 710,
    http_get_error_711 = 711,
    http_get_error_712 = 712,
    http_get_error_713 = 713,
    http_get_error_714 = 714,
    http_get_error_715 = 715,
    http_get_error_716 = 716,
    http_get_error_717 = 717,
    http_get_error_718 = 718,
    http_get_error_719 = 719,
    http_get_error_720 = 720,
    http_get_error_721 = 721,
    http_get_error_722 = 722,
    http_get_error_723 = 723,
    http_get_error_724 = 724,
    http_get_error_725 = 725,
    http_get_error_726 = 726,
    http_get_error_727 = 727,
    http_get_error_728 = 728,
    http_get_error_729 = 729,
    http_get_error_730 = 730,
);

http_read_error!(
    http_read_error_701 = 701,
    http_read_error_702 = 702,
    http_read_error_703 = 703,
    http_read_error_704 = 704,
    http_read_error_705 = 705,
    http_read_error_706 = 706,
    http_read_error_707 = 707,
    http_read_error_708 = 708,
    http_read_error_709 = 709,
    http_read_error_710 = 710,
    http_read_error_711 = 711,
    http_read_error_712 = 712,
    http_read_error_713 = 713,
    http_read_error_714 = 714,
    http_read_error_715 = 715,
    http_read_error_716 = 716,
    http_read_error_717 = 717,
    http_read_error_718 = 718,
    http_read_error_719 = 719,
    http_read_error_720 = 720,
    http_read_error_721 = 721,
    http_read_error_722 = 722,
    http_read_error_723 = 723,
    http_read_error_724 = 724,
    http_read_error_725 = 725,
    http_read_error_726 = 726,
    http_read_error_727 = 727,
    http_read_error_728 = 728,
    http_read_error_729 = 729,
    http_read_error_730 = 730,
);

// -------------------------------------------------------------------------------------------
// The board as shipped: baud negotiation from 115200, the slot erased in idle time.

const SHIPPED_RATES: &[u32] = &[921_600, 460_800, 230_400];

scenario!(
    shipped_negotiates_921600,
    Ec200u,
    Auto,
    115_200,
    off,
    faults = [],
    expect = Installed,
    negotiate = SHIPPED_RATES,
    baud = 921_600,
    method = Method::StreamErasedAhead,
    lost = false
);
// A wiring that garbles above 460800: negotiation falls back, nothing is lost.
scenario!(
    shipped_wiring_limit_falls_back_to_460800,
    Ec200u,
    Auto,
    115_200,
    off,
    faults = ["baud-limit=460800"],
    expect = Installed,
    negotiate = SHIPPED_RATES,
    baud = 460_800,
    lost = false
);
// A module that restarts when switched to 921600 (reported for the EC200A).
scenario!(
    shipped_module_restarting_at_921600_stays_below,
    Ec200t,
    Auto,
    115_200,
    off,
    faults = ["baud-reset=921600"],
    expect = Installed,
    negotiate = SHIPPED_RATES,
    baud = 460_800,
    lost = false
);
// A modem that reboots mid-image comes back at its saved 115200: the next attempt finds it
// there, negotiates again and resumes.
scenario!(
    shipped_modem_reboot_renegotiates,
    Ec200u,
    Auto,
    115_200,
    off,
    faults = ["modem-reboot=img+100000"],
    expect = Installed,
    negotiate = SHIPPED_RATES,
    baud = 921_600,
    min_attempts = 2,
    first = (Stage::Transfer, None)
);
// An MCU reset mid-image: the restarted firmware opens the UART at 115200 while the module
// kept 921600; negotiation finds it there.
scenario!(
    shipped_mcu_reset_finds_the_negotiated_rate,
    Ec200u,
    Auto,
    115_200,
    off,
    faults = ["mcu-reset=img+100000"],
    expect = Installed,
    negotiate = SHIPPED_RATES,
    baud = 921_600,
    min_attempts = 2
);

/// Every fault name of the simulator's table appears in a scenario of this file.
#[test]
fn every_fault_name_has_a_scenario() {
    let source = include_str!("faults.rs");
    for info in FAULTS {
        let quoted_at = format!("\"{}=", info.name);
        let quoted_bare = format!("\"{}\"", info.name);
        let triggered = format!(":{}=", info.name);
        let pathed = format!("\"{}@", info.name);
        assert!(
            source.contains(&quoted_at)
                || source.contains(&quoted_bare)
                || source.contains(&triggered)
                || source.contains(&pathed),
            "no scenario injects `{}`",
            info.name
        );
    }
}
