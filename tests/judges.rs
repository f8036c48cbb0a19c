//! What boots after `simulated_ota`, decided by judges that share no code with the library:
//! the simulator's bootloader model (`cellular_ota_sim::boot`, written from ESP-IDF's rules)
//! and Espressif's esptool (`tools/esp_judge.py`). Each run writes its flash with
//! `--flash-out`; both judges must find in it the slot and the image (length, SHA-256) the
//! run's JSON reports, and, after an install, the SHA-256 the crate reported as verified.
//!
//! Needs Python 3 with esptool (`pip install esptool`; `.ci/run` installs it).

mod esptool;
mod example_bin;

use std::process::Command;

use cellular_ota_sim::{BootTarget, boot};
use serde_json::Value;

use example_bin::example;

/// One run: exit status, JSON, and the flash it left.
struct Run {
    code: i32,
    json: Value,
    flash: Vec<u8>,
    args: Vec<String>,
}

fn simulate(size: &str, args: &[&str]) -> Run {
    let flash_out = std::env::temp_dir().join(format!(
        "cellular-ota-flash-{}-{}.bin",
        std::process::id(),
        args.join("_").replace(['/', ' ', '='], "-")
    ));
    let out = Command::new(example("simulated_ota"))
        .args(["--json", "--size", size, "--flash-out"])
        .arg(&flash_out)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let json: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"));
    let flash = std::fs::read(&flash_out).unwrap();
    let _ = std::fs::remove_file(&flash_out);
    Run {
        code: out.status.code().unwrap(),
        json,
        flash,
        args: args.iter().map(|s| s.to_string()).collect(),
    }
}

fn slot_name(t: Option<BootTarget>) -> Value {
    match t {
        Some(BootTarget::Ota(n)) => Value::from(format!("ota_{n}")),
        Some(other) => Value::from(format!("{other:?}")),
        None => Value::Null,
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Both judges agree with the run's JSON, and with each other, about what boots.
fn judged(run: &Run) {
    let ctx = format!("{:?}: {:#}", run.args, run.json);
    // The simulator's model, from the flash file alone.
    let model = boot(&run.flash, 9);
    assert_eq!(
        slot_name(model.target),
        run.json["boot_slot"],
        "{ctx}\n{}",
        model.reason
    );
    let image = model.image.expect("an image boots");
    assert_eq!(
        Value::from(hex(&image.sha256)),
        run.json["boot_image_sha256"],
        "{ctx}"
    );
    assert_eq!(Value::from(image.len), run.json["boot_image_len"], "{ctx}");
    // esptool, from the same file.
    let e = esptool::judge_bytes("esp32s3", "flash", "run", &run.flash);
    assert_eq!(e["boot_slot"], run.json["boot_slot"], "{ctx}\nesptool: {e}");
    assert_eq!(e["checksum_valid"], true, "{ctx}\nesptool: {e}");
    assert_eq!(e["sha256_valid"], true, "{ctx}\nesptool: {e}");
    assert_eq!(e["chip_id"], 9, "{ctx}\nesptool: {e}");
    assert_eq!(e["segments_placed"], true, "{ctx}\nesptool: {e}");
    assert_eq!(
        e["sha256"].as_str(),
        Some(hex(&image.sha256).as_str()),
        "{ctx}"
    );
    assert_eq!(e["len"], Value::from(image.len), "{ctx}");
    // After an install, the image that boots is the one the crate verified.
    if run.code == 0 {
        assert_eq!(run.json["sha256"], e["sha256"], "{ctx}");
        assert_eq!(run.json["boot_image"], "new", "{ctx}");
    } else {
        assert_eq!(run.json["boot_image"], "old", "{ctx}");
        assert_eq!(run.json["boot_slot"], "ota_0", "{ctx}");
    }
}

#[test]
fn security_faults_fail_safely_and_both_judges_see_the_old_image() {
    for (fault, stage, failure) in [
        ("unsigned-manifest", "manifest", "Manifest(NoSignature)"),
        ("other-product", "manifest", "Manifest(OtherProduct)"),
        ("downgrade", "manifest", "Manifest(Downgrade"),
        ("version-mismatch", "activation", "Sink(VersionMismatch"),
        (
            "key-without-manifest",
            "configuration",
            "Config(KeyWithoutManifest)",
        ),
        (
            "segment-over-bootloader",
            "activation",
            "Sink(Image(BadSegment { segment: 1, addr: 1070446336, len: 256, fault: BootloaderRam",
        ),
    ] {
        let run = simulate("262144", &["--fault", fault]);
        assert_eq!(run.code, 1, "{fault}: {:#}", run.json);
        assert_eq!(run.json["error_stage"], stage, "{fault}: {:#}", run.json);
        let got = run.json["error_failure"].as_str().unwrap_or("");
        assert!(got.starts_with(failure), "{fault}: {got}");
        // Refused before anything was downloaded: at most the manifest was read.
        if stage != "activation" {
            assert_eq!(run.json["resumed_from"], Value::Null, "{fault}");
        }
        judged(&run);
    }
}

#[test]
fn every_fault_alias_boots_what_the_report_says_at_two_sizes() {
    for size in ["1572864", "524288"] {
        for (fault, code) in [
            ("", 0),
            ("drop-link", 0),
            ("modem-reboot", 0),
            ("mcu-reset", 0),
            ("power-cut", 0),
            ("ignore-range", 0),
            ("corrupt-image", 1),
            ("wrong-chip", 1),
            ("http-404", 1),
        ] {
            let args: Vec<&str> = if fault.is_empty() {
                vec![]
            } else {
                vec!["--fault", fault]
            };
            let run = simulate(size, &args);
            assert_eq!(run.code, code, "{size} {fault}: {:#}", run.json);
            judged(&run);
        }
    }
}

#[test]
fn each_strategy_installs_what_esptool_accepts() {
    for args in [
        &["--strategy", "stream", "--flow-control", "on"][..],
        &["--strategy", "ranged"],
        &["--strategy", "ranged", "--range-size", "none"],
        &["--strategy", "modem-file", "--modem", "eg06"],
        &["--rx-dma", "24576"],
        &["--strategy", "ranged", "--fault", "power-cut"],
        &["--strategy", "ranged", "--fault", "mcu-reset"],
    ] {
        let run = simulate("262144", args);
        assert_eq!(run.code, 0, "{args:?}: {:#}", run.json);
        judged(&run);
    }
}
