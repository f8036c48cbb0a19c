//! What a board as shipped does on its first day, on the simulated device (virtual time):
//! a module whose saved URC port is USB, a modem that reboots in the middle of the image,
//! a SIM with a PIN, a network that denies registration, and the retry policy between
//! attempts.

mod sim_device;

use std::time::Duration;

use cellular_ota::bring_up::{BringUpFailure, BringUpStage};
use cellular_ota::client::Error as ClientError;
use cellular_ota::retry::{Classify, Retry};
use cellular_ota::update::{Failure, Outcome, Stage};
use cellular_ota_sim::Personality;
use sim_device::{AttemptError, Booted, BringUpKind, Device, Report, Setup};

/// The board as shipped: 115200 baud, no RTS/CTS, interrupt-driven UART.
fn shipped(size: usize) -> Setup {
    let mut s = Setup::new(Personality::Ec200u);
    s.baud = 115_200;
    s.flow = false;
    s.rx_dma = None;
    s.size = size;
    s.attempts = 3;
    s
}

fn run(setup: Setup) -> Report {
    Device::new(setup).run(&mut |_, _| {})
}

#[test]
fn urcs_saved_on_usb_are_routed_back_by_bring_up() {
    let mut setup = shipped(64 * 1024);
    setup.urc_port = "usbat".into();
    let report = run(setup.clone());
    assert!(
        matches!(report.installed(), Some(Outcome::Installed { .. })),
        "{:?}",
        report.last().result
    );
    assert_eq!(report.attempts.len(), 1);
    assert_eq!(report.booted, Booted::New);

    // The same module, brought up the way hand-written firmware does it (no URC routing):
    // `+QHTTPGET:` goes to USB, the manifest request times out, and the error says why.
    setup.bring_up = BringUpKind::WithoutUrcRouting;
    setup.attempts = 1;
    let report = run(setup);
    let e = report.error().expect("a typed update error");
    assert_eq!(e.stage, Stage::Request);
    assert!(matches!(e.failure, Failure::Modem(ClientError::Timeout)));
    assert_eq!(e.retry(), Retry::Transient);
    let meaning = e.meaning().expect("a meaning");
    assert!(meaning.contains("AT+QURCCFG=\"urcport\""), "{meaning}");
    assert!(e.to_string().contains("urcport"), "{e}");
    assert_eq!(report.booted, Booted::Old);
}

#[test]
fn sim_pin_and_denied_registration_are_typed_and_classified() {
    // The SIM wants a PIN the device does not have: permanent, one attempt only.
    let mut setup = shipped(16 * 1024);
    setup.modem_sim_pin = Some("4321".into());
    let report = run(setup.clone());
    assert_eq!(report.attempts.len(), 1);
    match &report.last().result {
        Err(AttemptError::BringUp(e)) => {
            assert_eq!(e.stage, BringUpStage::Sim);
            assert!(matches!(e.failure, BringUpFailure::PinRequired));
            assert_eq!(e.retry(), Retry::Permanent);
        }
        other => panic!("{other:?}"),
    }
    // With the PIN configured: installed.
    setup.device_sim_pin = Some("4321".into());
    assert!(run(setup).installed().is_some());

    // Denied with cause 15 (no suitable cells): transient, retried on the backoff schedule
    // (at once, then after 30 s ± 20 %).
    let mut setup = shipped(16 * 1024);
    setup.registration_stat = 3;
    setup.reject_cause = Some(15);
    setup.registration_timeout = Duration::from_secs(20);
    let report = run(setup.clone());
    assert_eq!(report.attempts.len(), 3);
    let waits: Vec<Duration> = report.attempts.iter().map(|a| a.backoff).collect();
    assert_eq!(waits[0], Duration::ZERO);
    assert_eq!(waits[1], Duration::ZERO);
    assert!(
        waits[2] >= Duration::from_secs(24) && waits[2] <= Duration::from_secs(36),
        "{waits:?}"
    );
    for a in &report.attempts {
        match &a.result {
            Err(AttemptError::BringUp(e)) => {
                assert!(
                    matches!(e.failure, BringUpFailure::Denied { cause: Some(c) } if c.code == 15)
                );
                assert_eq!(e.retry(), Retry::Transient);
            }
            other => panic!("{other:?}"),
        }
    }
    // Cause 3 (illegal UE): permanent at once.
    setup.reject_cause = Some(3);
    let report = run(setup);
    assert_eq!(report.attempts.len(), 1);
    assert!(report.virtual_time < Duration::from_secs(30));
}

/// A modem that reboots in the middle of the image, at every 4th byte across the first
/// sector boundary (4 KiB) and the first 64 KiB block boundary: the reboot is recognised
/// from its `RDY` (not by the 60 s read deadline), nothing the modem sent after it is
/// written, and the second attempt resumes and installs, at most 20 s of virtual time
/// after the same run without the fault.
#[test]
fn modem_reboot_mid_image_costs_one_attempt_and_seconds() {
    const SIZE: usize = 96 * 1024;
    let clean = run(shipped(SIZE));
    assert_eq!(clean.attempts.len(), 1);
    let boot_time = Duration::from_secs(8); // ModemConfig::boot_time
    for boundary in [4096u64, 65536] {
        for k in (boundary - 40..=boundary + 40).step_by(4) {
            let mut setup = shipped(SIZE);
            setup.faults = vec![format!("modem-reboot=img+{k}")];
            let report = run(setup);
            let ctx = format!("reboot at image byte {k}");
            assert!(
                matches!(report.installed(), Some(Outcome::Installed { .. })),
                "{ctx}: {:?}",
                report.last().result
            );
            assert_eq!(report.attempts.len(), 2, "{ctx}");
            assert!(
                report.virtual_time <= clean.virtual_time + Duration::from_secs(20),
                "{ctx}: {:?} vs {:?}",
                report.virtual_time,
                clean.virtual_time
            );
            let first = &report.attempts[0];
            let e = first.error().expect("first attempt fails");
            assert_eq!(e.stage, Stage::Transfer, "{ctx}");
            assert!(matches!(e.failure, Failure::ModemRebooted), "{ctx}: {e}");
            assert_eq!(e.retry(), Retry::Transient);
            assert!(
                u64::from(e.bytes_done) <= k,
                "{ctx}: {} written",
                e.bytes_done
            );
            // Recognised within 5 s of RDY (which comes one boot time after the reboot).
            let last = first.t_last_bytes.expect("bytes before the reboot");
            assert!(
                first.t_end <= last + boot_time + Duration::from_secs(5),
                "{ctx}: failed at {:?}, last bytes at {last:?}",
                first.t_end
            );
            // The retry resumed at or before the reboot: nothing after it was durable.
            let resumed = report.attempts[1].resumed_from.expect("resumed");
            assert!(u64::from(resumed) <= k, "{ctx}: resumed from {resumed}");
            assert_eq!(report.booted, Booted::New, "{ctx}");
        }
    }
}
