//! The `simulated_ota` example, run as a user would, with `--json`: the default update, every
//! documented `--fault` alias with its documented exit status, the naive streamer that loses
//! bytes, and the measurement table. A smaller image keeps it fast.

mod example_bin;

use std::process::Command;

use serde_json::Value;

use example_bin::example;

const SIZE: &str = "262144";

/// Runs the example with `--json --size SIZE` and `args`; returns the exit status and the
/// JSON values printed (one object, or one per line with `--table`).
fn run(args: &[&str]) -> (i32, Vec<Value>) {
    run_sized(SIZE, args)
}

fn run_sized(size: &str, args: &[&str]) -> (i32, Vec<Value>) {
    let out = Command::new(example("simulated_ota"))
        .args(["--json", "--size", size])
        .args(args)
        .output()
        .unwrap();
    let code = out.status.code().expect("exit status");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let values = if args.contains(&"--table") {
        stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    } else if stdout.trim().is_empty() {
        Vec::new()
    } else {
        vec![serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))]
    };
    (code, values)
}

fn one(args: &[&str]) -> (i32, Value) {
    let (code, mut v) = run(args);
    assert_eq!(v.len(), 1, "{args:?}: exit {code}, no JSON");
    (code, v.remove(0))
}

/// The summary of a successful update.
fn assert_installed(args: &[&str], v: &Value) {
    assert_eq!(v["ok"], true, "{args:?}: {v:#}");
    assert_eq!(v["exit"], 0, "{args:?}");
    assert_eq!(v["boot_slot"], "ota_1", "{args:?}");
    assert_eq!(v["boot_image"], "new", "{args:?}");
    assert_eq!(v["error"], Value::Null, "{args:?}");
    assert_eq!(v["bytes"], 262_144, "{args:?}");
    let sha = v["sha256"].as_str().unwrap();
    assert_eq!(sha.len(), 64, "{args:?}");
    assert!(v["virtual_seconds"].as_f64().unwrap() > 0.0);
    let pct = v["line_rate_pct"].as_f64().unwrap();
    assert!(pct > 0.0 && pct <= 100.5, "{args:?}: {pct}");
}

/// The summary of an update that failed safely.
fn assert_failed_safely(args: &[&str], code: i32, v: &Value, stage: &str) {
    assert_eq!(code, 1, "{args:?}: {v:#}");
    assert_eq!(v["ok"], false, "{args:?}");
    assert_eq!(v["boot_slot"], "ota_0", "{args:?}");
    assert_eq!(v["boot_image"], "old", "{args:?}");
    assert_eq!(v["sha256"], Value::Null, "{args:?}");
    assert_eq!(v["error_stage"], stage, "{args:?}: {v:#}");
    assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()));
}

#[test]
fn default_update_installs_without_losing_bytes() {
    let args = [];
    let (code, v) = one(&args);
    assert_eq!(code, 0, "{v:#}");
    assert_installed(&args, &v);
    assert_eq!(v["strategy"], "stream-erased-ahead");
    assert_eq!(v["uart_bytes_lost"], 0);
    assert_eq!(v["attempts"], 1);
    assert_eq!(v["modem"], "ec200u");
    // The board as shipped: the module boots at its factory rate, the device negotiates up
    // (921600 is the fastest its interrupt-driven UART without RTS/CTS sustains), the slot
    // was erased in idle time.
    assert_eq!(v["boot_baud"], 115_200);
    assert_eq!(v["baud"], 921_600);
    assert_eq!(v["negotiation"], true);
    assert_eq!(v["idle_erased"], true);
    assert_eq!(v["flow_control"], false);
    assert_eq!(v["rx_dma"], Value::Null);
    assert_eq!(v["modem_urc_port"], "uart1");
}

/// A module whose saved URC port is USB: the library's bring-up routes URCs back to the
/// UART and the update installs; hand-written bring-up (no URC routing) times out waiting
/// for `+QHTTPGET:`, and the error names the URC port.
#[test]
fn urcs_saved_on_usb_need_bring_up() {
    let args = ["--modem-urc-port", "usbat"];
    let (code, v) = one(&args);
    assert_eq!(code, 0, "{v:#}");
    assert_installed(&args, &v);
    assert_eq!(v["attempts"], 1);
    let args = [
        "--modem-urc-port",
        "usbat",
        "--bring-up",
        "naive",
        "--attempts",
        "1",
    ];
    let (code, v) = one(&args);
    assert_failed_safely(&args, code, &v, "request");
    assert_eq!(v["error_failure"], "Modem(Timeout)");
    assert_eq!(v["error_retry"], "transient");
    assert!(v["error"].as_str().unwrap().contains("urcport"), "{v:#}");
}

/// A modem reboot in the middle of the image, at offsets across the first 64 KiB block
/// boundary: at most two attempts, at most 20 s of virtual time above the clean run.
#[test]
fn modem_reboot_across_the_first_block_boundary_costs_seconds() {
    let (_, clean) = one(&[]);
    let clean = clean["virtual_seconds"].as_f64().unwrap();
    for k in (65536 - 24..=65536 + 24).step_by(12) {
        let fault = format!("modem-reboot=img+{k}");
        let args = ["--fault", fault.as_str()];
        let (code, v) = one(&args);
        assert_eq!(code, 0, "{args:?}: {v:#}");
        assert_installed(&args, &v);
        assert!(v["attempts"].as_u64().unwrap() <= 2, "{args:?}: {v:#}");
        let t = v["virtual_seconds"].as_f64().unwrap();
        assert!(t <= clean + 20.0, "{args:?}: {t} s vs {clean} s clean");
        let resumed = v["attempt_resumed_from"][1].as_u64().unwrap();
        assert!(resumed <= k, "{args:?}: resumed from {resumed}");
    }
}

/// Day-one cases of the SIM and the network: typed, classified, and retried only when
/// retrying can help.
#[test]
fn sim_and_network_cases_are_typed_and_classified() {
    let args = ["--modem-sim-pin", "1234"];
    let (code, v) = one(&args);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["bring_up_stage"], "SIM");
    assert_eq!(v["bring_up_failure"], "PinRequired");
    assert_eq!(v["error_retry"], "permanent");
    assert_eq!(v["attempts"], 1);
    let args = ["--modem-sim-pin", "1234", "--sim-pin", "1234"];
    let (code, v) = one(&args);
    assert_eq!(code, 0, "{v:#}");
    assert_installed(&args, &v);
    let args = ["--registration", "denied", "--reject-cause", "3"];
    let (code, v) = one(&args);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["bring_up_stage"], "registration");
    assert_eq!(v["error_retry"], "permanent");
    assert_eq!(v["attempts"], 1);
}

#[test]
fn faults_that_resume_end_installed() {
    for (fault, extra) in [
        ("drop-link", &[][..]),
        ("modem-reboot", &[]),
        ("mcu-reset", &[]),
        ("power-cut", &[]),
        ("ignore-range", &[]),
        ("ignore-range", &["--strategy", "ranged"]),
        ("byte-corrupt=img+1000", &["--modem", "eg06"]),
    ] {
        let mut args = vec!["--fault", fault];
        args.extend_from_slice(extra);
        let (code, v) = one(&args);
        assert_eq!(code, 0, "{args:?}: {v:#}");
        assert_installed(&args, &v);
        let attempts = v["attempts"].as_u64().unwrap();
        match fault {
            "ignore-range" => {
                assert_eq!(attempts, 1, "{args:?}");
                if extra.contains(&"ranged") {
                    assert_eq!(v["fallbacks"][0], "stream-erased-ahead", "{args:?}");
                }
            }
            _ => assert!(attempts >= 2, "{args:?}: {v:#}"),
        }
        match fault {
            "mcu-reset" => assert_eq!(v["mcu_resets"], 1),
            "power-cut" => assert_eq!(v["power_cycles"], 1),
            // A later attempt resumed from the bytes already in flash.
            "drop-link" | "modem-reboot" => {
                let resumed = v["attempt_resumed_from"].as_array().unwrap();
                assert!(
                    resumed[1..].iter().any(|r| r.as_u64().unwrap_or(0) > 0),
                    "{args:?}: {v:#}"
                )
            }
            _ => {}
        }
    }
}

#[test]
fn faults_that_fail_leave_the_old_image_booting() {
    for (fault, stage, error_code) in [
        ("corrupt-image", "verification", None),
        ("wrong-chip", "activation", None),
        ("http-404", "HTTP status", Some(404)),
    ] {
        let args = ["--fault", fault];
        let (code, v) = one(&args);
        assert_failed_safely(&args, code, &v, stage);
        if let Some(c) = error_code {
            assert_eq!(v["error_code"], c, "{args:?}");
        }
    }
}

/// The README's demonstration, at the default size (1.5 MB): a plain stream without flow
/// control loses bytes while flash sectors erase, and the flow reports `BytesLost` (which it
/// can only do when the modem's `OK` trailer itself arrived, as it does here); `auto` with
/// the same settings loses nothing.
#[test]
fn naive_streamer_loses_bytes_and_auto_does_not() {
    const DEFAULT_SIZE: &str = "1572864";
    let naive = [
        "--strategy",
        "stream",
        "--flow-control",
        "off",
        "--baud",
        "921600",
        "--no-idle-erase",
        "--attempts",
        "1",
    ];
    let (code, mut v) = run_sized(DEFAULT_SIZE, &naive);
    let v = v.remove(0);
    assert_failed_safely(&naive, code, &v, "transfer");
    assert!(v["uart_bytes_lost"].as_u64().unwrap() > 100_000, "{v:#}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("bytes were lost between modem and MCU"),
        "BytesLost expected: {v:#}"
    );
    let auto = [
        "--flow-control",
        "off",
        "--baud",
        "921600",
        "--no-idle-erase",
        "--attempts",
        "1",
    ];
    let (code, mut v) = run_sized(DEFAULT_SIZE, &auto);
    let v = v.remove(0);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["strategy"], "stream-erased-ahead");
    assert_eq!(v["uart_bytes_lost"], 0);
    // With RTS/CTS the plain stream loses nothing either (but waits for every erase).
    let flow = [
        "--strategy",
        "stream",
        "--flow-control",
        "on",
        "--attempts",
        "1",
    ];
    let (code, v) = one(&flow);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["uart_bytes_lost"], 0);
}

#[test]
fn bad_command_lines_are_usage_errors() {
    assert_eq!(run(&["--fault", "no-such-fault"]).0, 64);
    assert_eq!(run(&["--strategy", "carrier-pigeon"]).0, 64);
    assert_eq!(run(&["--range-size", "0"]).0, 64);
}

#[test]
fn measurement_table_covers_every_strategy_baud_and_flow_setting() {
    let (code, rows) = run_sized("65536", &["--table"]);
    assert_eq!(code, 0);
    assert_eq!(rows.len(), 13 * 3 * 2);
    for r in &rows {
        assert_ne!(r["exit"], 2, "{r:#}");
        let dma = r["rx_dma"] != Value::Null;
        // Auto is safe without flow control on an interrupt-driven UART; every method
        // with RTS/CTS loses nothing.
        if (r["row"] == "auto" && !dma) || r["flow_control"] == true {
            assert_eq!(r["uart_bytes_lost"], 0, "{r:#}");
            assert_eq!(r["ok"], true, "{r:#}");
        }
    }
}

/// The throughput goals, in virtual time (deterministic), for the README's 1.5 MB image at
/// 921 600 baud with UART DMA receive (a 24 KiB ring that fills while flash erases).
#[test]
fn line_rate_goals_hold_with_uart_dma_at_921600() {
    let size = "1572864";
    let dma = ["--baud", "921600", "--rx-dma", "24576", "--attempts", "1"];
    let pct = |v: &Value| v["line_rate_pct"].as_f64().unwrap_or(0.0);
    // Stream with RTS/CTS: at least 95 % of the line rate.
    let (code, v) = run_sized(
        size,
        &[&dma[..], &["--strategy", "stream", "--flow-control", "on"]].concat(),
    );
    assert_eq!(
        (code, v[0]["uart_bytes_lost"].as_u64()),
        (0, Some(0)),
        "{:#}",
        v[0]
    );
    assert!(pct(&v[0]) >= 95.0, "{:#}", v[0]);
    // Ranged without flow control: at least 85 %.
    let (code, v) = run_sized(
        size,
        &[&dma[..], &["--strategy", "ranged", "--flow-control", "off"]].concat(),
    );
    assert_eq!(
        (code, v[0]["uart_bytes_lost"].as_u64()),
        (0, Some(0)),
        "{:#}",
        v[0]
    );
    assert!(pct(&v[0]) >= 85.0, "{:#}", v[0]);
    // Auto picks the stream that erases as the body arrives when told about the DMA.
    let (code, v) = run_sized(size, &dma);
    assert_eq!(
        (code, v[0]["strategy"].as_str()),
        (0, Some("stream")),
        "{:#}",
        v[0]
    );
    assert!(pct(&v[0]) >= 95.0, "{:#}", v[0]);
}

/// The goals of "full speed on the board as shipped", in virtual time, for the 1.5 MB image:
/// the default run (negotiation from 115200, slot erased in idle time, interrupt-driven UART,
/// no RTS/CTS), the same board at a fixed 921600, and a wiring that garbles above 460800.
#[test]
fn full_speed_on_the_board_as_shipped() {
    const SIZE: &str = "1572864";
    let (code, v) = run_sized(SIZE, &[]);
    let v = &v[0];
    assert_eq!(code, 0, "{v:#}");
    assert!(v["baud"].as_u64().unwrap() >= 921_600, "{v:#}");
    assert_eq!(v["uart_bytes_lost"], 0);
    assert!(v["line_rate_pct"].as_f64().unwrap() >= 97.0, "{v:#}");
    assert!(v["virtual_seconds"].as_f64().unwrap() <= 20.0, "{v:#}");
    assert!(v["negotiation_seconds"].as_f64().unwrap() < 1.0, "{v:#}");

    // Fixed at 921600 on the interrupt-driven UART, slot erased in idle time.
    let fixed = ["--baud", "921600", "--attempts", "1"];
    for (extra, goal) in [
        (&["--strategy", "auto", "--flow-control", "off"][..], 98.5),
        (&["--strategy", "stream", "--flow-control", "on"], 98.5),
        (&["--strategy", "ranged", "--flow-control", "off"], 95.0),
    ] {
        let args = [&fixed[..], extra].concat();
        let (code, v) = run_sized(SIZE, &args);
        let v = &v[0];
        assert_eq!(code, 0, "{args:?}: {v:#}");
        assert_eq!(v["uart_bytes_lost"], 0, "{args:?}");
        let pct = v["line_rate_pct"].as_f64().unwrap();
        assert!(pct >= goal, "{args:?}: {pct} % < {goal} %");
    }

    // A wiring that garbles above 460800: negotiation falls back and says so.
    let args = ["--fault", "baud-limit=460800"];
    let (code, v) = run_sized(SIZE, &args);
    let v = &v[0];
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["baud"], 460_800);
    assert_eq!(v["uart_bytes_lost"], 0);
    assert_eq!(v["baud_fallbacks"][0]["rate"], 921_600, "{v:#}");
    assert_eq!(v["baud_fallbacks"][0]["why"], "Garbled", "{v:#}");
}

/// `--plot` with `--plot-compare-baud`: one SVG with the shipped run and the fixed-rate run
/// on one time axis, each titled with its configuration; the JSON still describes the first.
#[test]
fn plot_draws_the_shipped_run_next_to_a_fixed_rate() {
    let dir = std::env::temp_dir().join(format!("cellular-ota-plot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("timeline.svg");
    let path_str = path.to_str().unwrap();
    let (code, v) = one(&["--plot", path_str, "--plot-compare-baud", "921600"]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["baud"], 921_600);
    let svg = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
    assert_eq!(svg.matches("<svg").count(), 1);
    for title in [
        "Ec200u, boots at 115200 baud, negotiated 921600, RTS/CTS off, interrupt-driven \
         receive, slot erased in idle time",
        "Ec200u, 921600 baud fixed, RTS/CTS off, interrupt-driven receive, slot erased by \
         the update",
    ] {
        assert_eq!(svg.matches(title).count(), 1, "{title}");
    }
    // The negotiation is one marker label; the fixed run has none.
    // (plotters writes a text element's content on its own line.)
    assert_eq!(svg.matches("\nbaud 921600\n").count(), 1);
    // Only the run that erases during the update shows block erases in its legend.
    assert_eq!(svg.matches("\nflash block erase (").count(), 1);
}

/// Issue "SIMCom ... end to end", done when: `--modem M` exits 0 for every SIMCom
/// personality, also with each of `drop-link`, `modem-reboot`, `mcu-reset` and `power-cut`
/// (resumed), and `corrupt-image` exits 1. The image is above the A7670's and SIM7070's
/// one-response limits, so those two fetch it in ranges.
#[test]
fn simcom_modems_install_resume_and_refuse_a_corrupt_image() {
    const SIMCOM_SIZE: &str = "600000";
    for m in ["sim7600", "a7670", "sim7070", "sim800"] {
        let args = ["--modem", m];
        let (code, mut v) = run_sized(SIMCOM_SIZE, &args);
        let v = v.remove(0);
        assert_eq!(code, 0, "{args:?}: {v:#}");
        assert_eq!(v["modem"], m);
        assert_eq!(v["boot_image"], "new", "{args:?}");
        assert_eq!(v["attempts"], 1, "{args:?}");
        let ranged = matches!(m, "a7670" | "sim7070");
        let want = if ranged {
            "ranged-header"
        } else {
            "stream-erased-ahead"
        };
        assert_eq!(v["strategy"], want, "{args:?}");
        for fault in ["drop-link", "modem-reboot", "mcu-reset", "power-cut"] {
            let args = ["--modem", m, "--fault", fault];
            let (code, mut v) = run_sized(SIMCOM_SIZE, &args);
            let v = v.remove(0);
            assert_eq!(code, 0, "{args:?}: {v:#}");
            assert_eq!(v["boot_image"], "new", "{args:?}");
            assert!(v["attempts"].as_u64().unwrap() >= 2, "{args:?}: {v:#}");
            assert!(v["resumed_from"].as_u64().unwrap() > 0, "{args:?}: {v:#}");
        }
        let args = ["--modem", m, "--fault", "corrupt-image"];
        let (code, mut v) = run_sized(SIMCOM_SIZE, &args);
        let v = v.remove(0);
        assert_eq!(code, 1, "{args:?}: {v:#}");
        assert_eq!(v["boot_image"], "old", "{args:?}");
        assert_eq!(v["error_stage"], "verification", "{args:?}");
        assert_eq!(v["error_failure"], "HashMismatch", "{args:?}");
    }
}

/// The arguments for an ESP32-C3 device running `fixtures/esp32c3_app_v1.bin` offered
/// `esp32c3_app_v2.bin`, and v2's path.
fn real_c3() -> (Vec<String>, String) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");
    let (v1, v2) = (
        format!("{dir}/esp32c3_app_v1.bin"),
        format!("{dir}/esp32c3_app_v2.bin"),
    );
    let args = ["--chip", "esp32c3", "--running-image", &v1, "--image", &v2];
    (args.map(String::from).to_vec(), v2)
}

/// Real images: the example firmware's ESP32-C3 app image v1 runs, v2 is served (both made
/// by esptool, `fixtures/README.md`); the device is an ESP32-C3. The update installs v2,
/// which the bootloader model boots; the JSON reports the bytes the server sent
/// (`bytes_on_air`: the image and the manifest).
#[test]
fn real_c3_images_install_and_report_bytes_on_air() {
    let (args, v2) = real_c3();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let image_len = std::fs::metadata(&v2).unwrap().len();
    let (code, v) = one(&args);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["chip"], "esp32c3");
    assert_eq!(v["boot_image"], "new", "{v:#}");
    assert_eq!(v["bytes"], image_len);
    let air = v["bytes_on_air"].as_u64().unwrap();
    assert!(
        air > image_len && air < image_len + 1024,
        "{air} for {image_len}"
    );
    let args = [&args[..], &["--fault", "corrupt-image"]].concat();
    let (code, v) = one(&args);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["boot_image"], "old", "{v:#}");
}

/// A delta between the real ESP32-C3 images (made by detools with esp_delta_ota's flags,
/// from the running v1 to v2) goes over the simulated modem, is applied into the next slot
/// and boots byte-exact; the bytes on air are at most 3 % of the image. A power cut, an MCU
/// reset and a modem reboot in the middle of the patch resume at a checkpoint, not at 0;
/// a corrupt patch is refused and the old image boots. A compressed image installs too.
#[test]
fn real_c3_delta_installs_byte_exact_in_a_few_percent_of_the_bytes_and_resumes() {
    use sha2::{Digest, Sha256};
    let (args, v2) = real_c3();
    let image = std::fs::read(&v2).unwrap();
    let sha: String = Sha256::digest(&image)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let base: Vec<&str> = args.iter().map(String::as_str).collect();
    let delta = [&base[..], &["--delta"]].concat();
    let (code, v) = one(&delta);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(
        (v["payload"].as_str(), v["boot_image"].as_str()),
        (Some("delta"), Some("new"))
    );
    assert_eq!(v["boot_image_sha256"], sha, "{v:#}");
    assert_eq!(v["sha256"], sha);
    let air = v["bytes_on_air"].as_u64().unwrap();
    let patch = v["patch_size"].as_u64().unwrap();
    assert!(
        air > patch && air * 100 <= image.len() as u64 * 3,
        "{air} bytes on air"
    );
    let delta_time = v["virtual_seconds"].as_f64().unwrap();
    let (code, full) = one(&base);
    assert_eq!(code, 0, "{full:#}");
    assert!(delta_time < full["virtual_seconds"].as_f64().unwrap());

    for fault in [
        "bytes=6000:power-cut=0",
        "mcu-reset=img+6000",
        "modem-reboot=img+6000",
    ] {
        let args = [&delta[..], &["--fault", fault, "--attempts", "3"]].concat();
        let (code, v) = one(&args);
        assert_eq!(code, 0, "{fault}: {v:#}");
        assert_eq!(v["boot_image_sha256"], sha, "{fault}");
        let resumed = v["attempt_resumed_from"][1].as_u64().unwrap();
        assert!(
            resumed > 0,
            "{fault}: the second attempt resumed at {resumed}"
        );
        // Less than the whole patch again.
        assert!(
            v["bytes_on_air"].as_u64().unwrap() < air + patch,
            "{fault}: {v:#}"
        );
    }
    // A cut at each of a spread of flash operations of the delta update.
    for k in [1, 20, 100, 400, 800] {
        let cut = format!("power-cut={k}");
        let args = [&delta[..], &["--fault", cut.as_str(), "--attempts", "3"]].concat();
        let (code, v) = one(&args);
        assert_eq!(code, 0, "{cut}: {v:#}");
        assert_eq!(v["boot_image_sha256"], sha, "{cut}");
    }
    let args = [&delta[..], &["--fault", "corrupt-image"]].concat();
    let (code, v) = one(&args);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["boot_image"], "old", "{v:#}");
    // A server that answers ranges with the whole file cannot serve a patch: typed, at once.
    let args = [&delta[..], &["--fault", "ignore-range"]].concat();
    let (code, v) = one(&args);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(
        (v["error_stage"].as_str(), v["error_retry"].as_str()),
        (Some("HTTP status"), Some("permanent"))
    );
    assert_eq!(v["boot_image"], "old", "{v:#}");

    let compressed = [&base[..], &["--compressed"]].concat();
    let (code, v) = one(&compressed);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["boot_image_sha256"], sha, "{v:#}");
    assert!(v["bytes_on_air"].as_u64().unwrap() < image.len() as u64);
}
