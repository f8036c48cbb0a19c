//! A power cut at every single flash operation of an update.
//!
//! First an uncut update of a small image is run to count its flash operations (erases and
//! writes, the operations a cut can hit): N. Then, for every k in 0..N, a fresh device runs
//! the same update with the power failing at operation k (the simulator's `power-cut=k`: k
//! operations succeed, operation k is cut half-way, nothing works afterwards). After the cut
//! the bootloader model must boot a valid image, the old one or (once otadata selects it)
//! the new one; then the device starts again on the flash as the cut left it (a new world,
//! power restored, the modem booting from scratch, a new client and sink), updates again,
//! resuming what is durable, and the bootloader must boot the new image.
//!
//! Run with `--nocapture` to see N, how the cuts ended and the runtime.

mod sim_device;

use std::collections::BTreeMap;
use std::time::Instant;

use cellular_ota::ota::esp_idf::sink::SinkError;
use cellular_ota::update::{Failure, Outcome, Strategy};
use cellular_ota_sim::Personality;
use sim_device::{AttemptError, Booted, Device, Setup};

/// What one cut did.
struct Cut {
    /// What was cut (the flash operation named by the sink's error, or "after activation"
    /// when the attempt still succeeded).
    what: String,
    /// What booted right after the cut.
    booted: Booted,
    /// Where the update after the power cycle resumed.
    resumed_from: Option<u32>,
}

fn one_cut(setup: &Setup, k: u64) -> Result<Cut, String> {
    let mut device = Device::new(setup.clone());
    device.inject(&[format!("power-cut={k}")]);
    let first = device.attempt(1, &mut |_, _| {});
    if device.flash.is_powered() {
        return Err(format!(
            "k={k}: the cut never happened ({:?})",
            first.result
        ));
    }
    if !first.boot.valid || !matches!(first.booted, Booted::Old | Booted::New) {
        return Err(format!(
            "k={k}: after the cut the bootloader finds {:?}: {}",
            first.booted, first.boot.reason
        ));
    }
    let what = match &first.result {
        Ok(_) => "after activation (journal clear)".to_string(),
        Err(AttemptError::Update(e)) => match &e.failure {
            Failure::Sink(SinkError::Flash { op, .. }) => format!("{op:?}"),
            other => format!("{other:?}"),
        },
        Err(e) => return Err(format!("k={k}: {e}")),
    };
    // The old image keeps booting until otadata selects the new one; only a successful
    // activation may select it.
    if first.booted == Booted::New && !(first.result.is_ok() || what == "Otadata") {
        return Err(format!("k={k}: new image selected by a cut at {what}"));
    }
    let second = device.attempt(2, &mut |_, _| {});
    match (&second.result, first.booted) {
        (Ok(Outcome::Installed { .. }), _) => {}
        // It already runs the new image: the manifest says it is up to date.
        (Ok(Outcome::UpToDate), Booted::New) => {}
        (r, _) => {
            return Err(format!(
                "k={k} (cut at {what}): the resumed update gave {r:?}"
            ));
        }
    }
    if second.booted != Booted::New {
        return Err(format!(
            "k={k} (cut at {what}): after the resumed update the bootloader boots {:?}: {}",
            second.booted, second.boot.reason
        ));
    }
    Ok(Cut {
        what,
        booted: first.booted,
        resumed_from: second.resumed_from,
    })
}

fn sweep(name: &str, setup: Setup) {
    let t0 = Instant::now();
    // The uncut update, to count the operations.
    let mut device = Device::new(setup.clone());
    let report = device.run(&mut |_, _| {});
    assert!(
        matches!(report.installed(), Some(Outcome::Installed { .. })),
        "{name}: the uncut update failed: {:?}",
        report.last().result
    );
    let stats = report.flash;
    let n = stats.erases + stats.writes;
    let image = device.served.len();

    let workers = std::thread::available_parallelism()
        .map_or(2, |p| p.get())
        .clamp(1, 4) as u64;
    let results: Vec<(u64, Result<Cut, String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let setup = &setup;
                s.spawn(move || {
                    (w..n)
                        .step_by(workers as usize)
                        .map(|k| (k, one_cut(setup, k)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker"))
            .collect()
    });
    let elapsed = t0.elapsed();

    let failures: Vec<&String> = results
        .iter()
        .filter_map(|(_, r)| r.as_ref().err())
        .collect();
    let mut by_op: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut old, mut new, mut from_zero) = (0, 0, 0);
    for (_, r) in &results {
        if let Ok(c) = r {
            *by_op.entry(c.what.as_str()).or_default() += 1;
            match c.booted {
                Booted::New => new += 1,
                _ => old += 1,
            }
            if c.resumed_from == Some(0) {
                from_zero += 1;
            }
        }
    }
    eprintln!(
        "{name}: image {image} bytes, N = {n} flash operations ({} erases, {} writes) in an \
         uncut update; {} cuts: old image booted after {old}, new after {new}; resumed from 0 \
         after {from_zero}; cut operations {by_op:?}; {} failures; {:.1} s with {workers} \
         threads",
        stats.erases,
        stats.writes,
        results.len(),
        failures.len(),
        elapsed.as_secs_f64()
    );
    assert_eq!(results.len() as u64, n);
    assert!(
        failures.is_empty(),
        "{name}: {} of {n} cuts failed, e.g.:\n{}",
        failures.len(),
        failures
            .iter()
            .take(10)
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The default path without flow control: the image is erased ahead while the modem
/// fetches it, then streamed into flash in small writes; resumed with ranges.
#[test]
fn power_cut_at_every_flash_operation_auto_64k() {
    let mut setup = Setup::new(Personality::Ec200u);
    setup.strategy = Strategy::Auto;
    setup.size = 64 * 1024;
    sweep("auto, EC200U, 64 KiB", setup);
}

/// Buffered ranges: each 4 KiB chunk is read completely, then written in one go.
#[test]
fn power_cut_at_every_flash_operation_ranged_buffered_128k() {
    let mut setup = Setup::new(Personality::Ec200t);
    setup.strategy = Strategy::Ranged;
    setup.range_size = None;
    setup.size = 128 * 1024;
    sweep("ranged (buffered), EC200T, 128 KiB", setup);
}
