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
//! The same is done for an idle erase of the slot the next update writes
//! ([`EspIdfSink::erase_idle_step`], the application's call between updates): a cut at every
//! erase and journal write of the whole pass, after which the old image must boot, the
//! recorded progress must be what was erased before the cut step, and a following idle
//! erase and update must succeed, the update erasing nothing of the image.
//!
//! Run with `--nocapture` to see N, how the cuts ended and the runtime.

mod sim_device;

use std::collections::BTreeMap;
use std::time::Instant;

use cellular_ota::ota::esp_idf::image::ChipId;
use cellular_ota::ota::esp_idf::sink::{
    EspIdfSink, FlashOp, IdleErase, IdleEraseState, SinkConfig, SinkError,
};
use cellular_ota::ota::mem_flash::MemFlashError;
use cellular_ota::update::{Failure, Method, Outcome, Strategy};
use cellular_ota_sim::chip_image::layout;
use cellular_ota_sim::{Personality, SimFlash};
use sim_device::{AttemptError, Booted, Device, Setup};

/// Runs `f(k)` for every k in `0..n` on up to four threads; results in no particular order.
fn parallel<T: Send>(n: u64, f: impl Fn(u64) -> T + Sync) -> (Vec<(u64, T)>, u64) {
    let workers = std::thread::available_parallelism()
        .map_or(2, |p| p.get())
        .clamp(1, 4) as u64;
    let results = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let f = &f;
                s.spawn(move || {
                    (w..n)
                        .step_by(workers as usize)
                        .map(|k| (k, f(k)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker"))
            .collect()
    });
    (results, workers)
}

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
    let (what, cut_op) = match &first.result {
        Ok(_) => ("after activation (journal clear)".to_string(), None),
        Err(AttemptError::Update(e)) => match &e.failure {
            Failure::Sink(SinkError::Flash { op, .. }) => (format!("{op:?}"), Some(*op)),
            other => (format!("{other:?}"), None),
        },
        Err(e) => return Err(format!("k={k}: {e}")),
    };
    // The old image keeps booting until otadata selects the new one; only a successful
    // activation may select it.
    if first.booted == Booted::New && !(first.result.is_ok() || cut_op == Some(FlashOp::Otadata)) {
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

    let (results, workers) = parallel(n, |k| one_cut(&setup, k));
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

/// A delta update (a detools patch from the running image, applied in ranges with a
/// checkpoint every 16 KiB of output): a cut anywhere resumes, at the last checkpoint when
/// there is one, and the new image boots.
#[test]
fn power_cut_at_every_flash_operation_delta_64k() {
    let mut setup = Setup::new(Personality::Ec200u);
    setup.size = 64 * 1024;
    setup.payload = sim_device::PayloadKind::Delta;
    sweep("delta, EC200U, 64 KiB", setup);
}

/// A sink over the device's flash for the application's idle work (same running slot as the
/// update's sink).
fn idle_sink(device: &mut Device) -> EspIdfSink<&mut SimFlash> {
    let config = SinkConfig::new(ChipId::ESP32S3).with_running_slot(device.running.slot());
    EspIdfSink::new(&mut device.flash, config)
}

/// Idle-erase steps until `Done`: the progress each reported, or the first error.
fn erase_idle(
    sink: &mut EspIdfSink<&mut SimFlash>,
) -> Result<Vec<u32>, (Vec<u32>, SinkError<MemFlashError>)> {
    let mut progress = Vec::new();
    loop {
        match sink.erase_idle_step() {
            Ok(IdleErase::Progress { erased, .. }) => progress.push(erased),
            Ok(IdleErase::Done) => return Ok(progress),
            Err(e) => return Err((progress, e)),
        }
    }
}

/// What one cut of an idle erase did.
struct IdleCut {
    /// The flash operation the sink's error names.
    what: String,
    /// Idle-erase steps the following pass took.
    steps_after: usize,
}

fn one_idle_cut(setup: &Setup, k: u64) -> Result<IdleCut, String> {
    let mut device = Device::new(setup.clone());
    device.flash.power_cut_after(k as u32);
    let (done, what) = match erase_idle(&mut idle_sink(&mut device)) {
        Ok(_) => return Err(format!("k={k}: the cut never happened")),
        Err((
            done,
            SinkError::Flash {
                op,
                error: MemFlashError::PowerCut,
            },
        )) => (done.last().copied().unwrap_or(0), format!("{op:?}")),
        Err((_, e)) => return Err(format!("k={k}: {e:?}")),
    };
    if device.flash.is_powered() {
        return Err(format!("k={k}: the flash still has power"));
    }
    let (boot, booted) = device.boot_now();
    if !boot.valid || booted != Booted::Old {
        return Err(format!(
            "k={k} (cut at {what}): the bootloader finds {booted:?}: {}",
            boot.reason
        ));
    }
    // Power back: the record says what was erased before the cut step, and is true.
    device.power_cycle();
    let recorded = match idle_sink(&mut device).idle_erase_state() {
        Ok(IdleEraseState::Partial { erased, .. }) => erased,
        other => return Err(format!("k={k} (cut at {what}): state {other:?}")),
    };
    if recorded != done {
        return Err(format!(
            "k={k} (cut at {what}): {recorded} recorded, {done} erased before the cut step"
        ));
    }
    let slot = layout::OTA_1.0 as usize;
    if device.flash.image()[slot..slot + recorded as usize]
        .iter()
        .any(|&b| b != 0xFF)
    {
        return Err(format!("k={k}: {recorded} bytes recorded erased are not"));
    }
    // The following idle erase redoes the cut step and completes.
    let after = erase_idle(&mut idle_sink(&mut device))
        .map_err(|(_, e)| format!("k={k} (cut at {what}): the next idle erase: {e:?}"))?;
    let steps_after = after.len() + 1;
    if !matches!(idle_sink(&mut device).idle_erase_state(), Ok(s) if s.is_erased()) {
        return Err(format!("k={k}: not erased after the following pass"));
    }
    if device.boot_now().1 != Booted::Old {
        return Err(format!("k={k}: the old image no longer boots"));
    }
    // The update erases nothing of the image: only the journal sector (begin clears the
    // record), the otadata entry and the journal again after activation.
    let before = device.flash.stats();
    let a = device.attempt(1, &mut |_, _| {});
    let erased = device.flash.stats().bytes_erased - before.bytes_erased;
    if !matches!(a.result, Ok(Outcome::Installed { .. })) || a.booted != Booted::New {
        return Err(format!(
            "k={k} (cut at {what}): the update gave {:?}, boots {:?}",
            a.result, a.booted
        ));
    }
    if a.method != Some(Method::StreamErasedAhead) || erased > 3 * 4096 || a.uart_lost > 0 {
        return Err(format!(
            "k={k}: {:?}, {erased} bytes erased, {} UART bytes lost",
            a.method, a.uart_lost
        ));
    }
    Ok(IdleCut { what, steps_after })
}

/// A power cut at every flash operation of an idle erase of `ota_1` (1.9 MiB: 30 blocks and
/// 15 sectors, each erased and then recorded), then a following idle erase and an update.
#[test]
fn power_cut_at_every_flash_operation_of_an_idle_erase() {
    let t0 = Instant::now();
    let mut setup = Setup::new(Personality::Ec200u);
    setup.strategy = Strategy::Auto;
    setup.size = 64 * 1024;
    // The uncut pass, to count its operations.
    let mut device = Device::new(setup.clone());
    let before = device.flash.stats();
    let progress = erase_idle(&mut idle_sink(&mut device)).expect("uncut idle erase");
    let stats = device.flash.stats();
    let (erases, writes) = (stats.erases - before.erases, stats.writes - before.writes);
    let steps = progress.len() + 1;
    assert_eq!((steps, erases, writes), (45, 45, 45));
    let n = erases + writes;

    let (results, workers) = parallel(n, |k| one_idle_cut(&setup, k));
    let failures: Vec<&String> = results
        .iter()
        .filter_map(|(_, r)| r.as_ref().err())
        .collect();
    let mut by_op: BTreeMap<&str, usize> = BTreeMap::new();
    let mut redone = BTreeMap::new();
    for (k, r) in &results {
        if let Ok(c) = r {
            *by_op.entry(c.what.as_str()).or_default() += 1;
            // The cut step is done again, and nothing before it: operation k belongs to
            // step k / 2 (an erase, then its record).
            *redone
                .entry(c.steps_after == steps - (*k as usize / 2))
                .or_insert(0) += 1;
        }
    }
    eprintln!(
        "idle erase of ota_1, EC200U: N = {n} flash operations ({erases} erases, {writes} \
         writes) in an uncut pass of {steps} steps; {} cuts: cut operations {by_op:?}; the \
         following pass redid exactly the cut step after {:?} of them; {} failures; {:.1} s \
         with {workers} threads",
        results.len(),
        redone.get(&true),
        failures.len(),
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(results.len() as u64, n);
    assert!(
        failures.is_empty(),
        "{} of {n} cuts failed, e.g.:\n{}",
        failures.len(),
        failures
            .iter()
            .take(10)
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(redone.get(&true).copied(), Some(n as usize));
}
