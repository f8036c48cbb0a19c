//! The `serial_ota` example, run as a user would, against the simulated EC200U (and the
//! SIMCom SIM7600, A7670, SIM7070 and SIM800) on a pseudo-terminal (real time) and a local
//! HTTP server.
#![cfg(unix)]

mod example_bin;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cellular_ota::simcom::Family;
use cellular_ota_sim::{
    FotaTiming, ModemConfig, ModemStart, Personality, PtyModem, TestServer, UartConfig,
    WorldConfig, fota_package, test_app_image,
};
use sha2::{Digest, Sha256};

use example_bin::example;

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?} after {:.1} s\n--- stdout\n{}--- stderr\n{}",
            self.code,
            self.took.as_secs_f64(),
            self.stdout,
            self.stderr
        )
    }
}

/// Runs the example with `args`, killing it after `limit`. The simulated modem's host side
/// is its main UART, so `--urc-port uart1` is added unless `args` name a port.
fn serial_ota(args: &[&str], limit: Duration) -> Run {
    let t0 = Instant::now();
    let mut all: Vec<&str> = args.to_vec();
    if !args.contains(&"--urc-port") {
        all.extend(["--urc-port", "uart1"]);
    }
    let mut child = Command::new(example("serial_ota"))
        .args(&all)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drain the pipes on threads so a chatty child never blocks.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).ok();
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).ok();
        s
    });
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let run = Run {
        code: status.and_then(|s| s.code()),
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
        took: t0.elapsed(),
    };
    eprintln!("serial_ota {}: {run:?}", args.join(" "));
    assert!(status.is_some(), "killed after {limit:?}: {run:?}");
    run
}

/// An EC200U that is up, registered and quiet, with short boot and FOTA timings, resolving
/// `fw.example` to `server`.
fn fast_ec200u(server: &TestServer) -> ModemConfig {
    let mut cfg = ModemConfig::new(Personality::Ec200u)
        .ready()
        .quiet()
        .with_host("fw.example", server.addr());
    cfg.boot_time = Duration::from_millis(1500);
    cfg.registration_delay = Duration::from_millis(200);
    cfg.pdp_activate_time = Duration::from_millis(100);
    cfg.fota = FotaTiming {
        start_delay: Duration::from_millis(200),
        reboot_time: Duration::from_secs(1),
        upgrade_time: Duration::from_secs(2),
    };
    cfg
}

/// An EC200T (ASR: takes `AT+QFOTADL="FILE:<len>"`) that is up and quiet, with short FOTA
/// timings, on a 921 600-baud line: faster than the module writes a streamed package to
/// flash (15 000 bytes/s), so flow control or pacing matters.
fn fast_ec200t_921600() -> WorldConfig {
    let mut cfg = ModemConfig::new(Personality::Ec200t).ready().quiet();
    cfg.boot_time = Duration::from_millis(1500);
    cfg.baud = 921_600;
    cfg.fota = FotaTiming {
        start_delay: Duration::from_millis(200),
        reboot_time: Duration::from_secs(1),
        upgrade_time: Duration::from_secs(2),
    };
    WorldConfig::new(cfg).with_uart(UartConfig::default().with_baud(921_600))
}

fn port(modem: &PtyModem) -> String {
    modem.slave_path().to_string_lossy().into_owned()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("serial_ota-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn probe_prints_identity_network_and_commands() {
    let server = TestServer::start([("x.bin", vec![0u8; 16])]).unwrap();
    let modem = PtyModem::spawn(WorldConfig::new(fast_ec200u(&server))).unwrap();
    let p = port(&modem);

    let r = serial_ota(&["--port", &p, "probe"], Duration::from_secs(30));
    assert_eq!(r.code, Some(0), "{r:?}");
    for want in [
        "EC200U",
        "unisoc",
        "EC200UCNAAR01A04M08_01.001.01.001",
        "866123456789012",
        "89860012345678901234",
        "READY",
        "-67 dBm",
        "registered, home network",
        "activated now",
        "AT+QHTTPURL=?",
        "AT+QFOTADL=?",
    ] {
        assert!(r.stdout.contains(want), "{want:?} missing: {r:?}");
    }
    assert!(r.took < Duration::from_secs(10), "{r:?}");

    // The same modem again, as JSON: the context is now already up.
    let r = serial_ota(&["probe", "--port", &p, "--json"], Duration::from_secs(30));
    assert_eq!(r.code, Some(0), "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["identity"]["model"], "EC200U");
    assert_eq!(v["identity"]["family"], "unisoc");
    assert_eq!(v["signal"]["dbm"], -67);
    assert_eq!(v["registration"]["cereg"]["registered"], true);
    assert_eq!(v["pdp"]["active"], true);
    assert_eq!(v["pdp"]["activated_now"], false);
    assert!(v["pdp"]["ip"].is_string(), "{v}");
    let supported = |cmd: &str| {
        v["commands"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["command"] == cmd)
            .map(|c| c["supported"].clone())
            .unwrap_or_else(|| panic!("{cmd} not probed: {v}"))
    };
    assert_eq!(supported("AT+QHTTPURL=?"), true);
    assert_eq!(supported("AT+QHTTPGET=?"), true);
    assert_eq!(supported("AT+QFOTADL=?"), true);
    // The simulated EC200U has no ranged GET.
    assert_eq!(supported("AT+QHTTPGETEX=?"), false);
    assert_eq!(v["bring_up"]["ok"], true, "{v}");
    assert_eq!(v["urc_port"]["was"], "uart1");
}

/// A module whose saved URC port is USB, probed on its UART: bring-up routes URCs back and
/// says so; a SIM that wants a PIN the tool was not given is a permanent, typed failure.
#[test]
fn probe_routes_urcs_back_and_names_sim_problems() {
    let server = TestServer::start([("x.bin", vec![0u8; 16])]).unwrap();
    let mut cfg = fast_ec200u(&server);
    cfg.urc_port = "usbat".into();
    let modem = PtyModem::spawn(WorldConfig::new(cfg.clone())).unwrap();
    let p = port(&modem);
    let r = serial_ota(&["--port", &p, "probe", "--json"], Duration::from_secs(30));
    assert_eq!(r.code, Some(0), "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["bring_up"]["ok"], true, "{v}");
    assert_eq!(v["urc_port"]["was"], "usbat");
    assert_eq!(v["urc_port"]["now"], "uart1");
    assert!(r.stderr.contains("URCs went to \"usbat\""), "{r:?}");
    assert_eq!(modem.with_modem(|m| m.urc_port()).as_deref(), Some("uart1"));

    cfg.urc_port = "uart1".into();
    cfg.sim_pin = Some("2468".into());
    let modem = PtyModem::spawn(WorldConfig::new(cfg)).unwrap();
    let p = port(&modem);
    let r = serial_ota(&["--port", &p, "probe", "--json"], Duration::from_secs(30));
    assert_eq!(r.code, Some(0), "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["bring_up"]["ok"], false, "{v}");
    assert_eq!(v["bring_up"]["stage"], "SIM");
    assert_eq!(v["bring_up"]["failure"], "PinRequired");
    assert_eq!(v["bring_up"]["retry"], "permanent");
    assert!(
        v["bring_up"]["error"]
            .as_str()
            .unwrap()
            .contains("--sim-pin"),
        "{v}"
    );
    // With the PIN the download's bring-up goes through.
    let r = serial_ota(
        &["--port", &p, "--sim-pin", "2468", "probe", "--json"],
        Duration::from_secs(30),
    );
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["bring_up"]["ok"], true, "{v}");
}

#[test]
fn download_writes_the_served_image_and_logs_a_decodable_transcript() {
    // An ESP32-S3 app image, small: the pty runs at 115200 baud in real time.
    let image = test_app_image(9, "1.2.3", 20 * 1024);
    let server = TestServer::start([("fw.bin", image.clone())]).unwrap();
    let modem = PtyModem::spawn(WorldConfig::new(fast_ec200u(&server))).unwrap();
    let p = port(&modem);
    let out = temp("download.bin");
    let log = temp("download.log");
    let _ = std::fs::remove_file(&out);

    let r = serial_ota(
        &[
            "--port",
            &p,
            "--log",
            log.to_str().unwrap(),
            "download",
            "http://fw.example/fw.bin",
            "--allow-unsigned",
            "--out",
            out.to_str().unwrap(),
            "--validate",
            "esp32s3",
            "--max-size",
            "1M",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    let written = std::fs::read(&out).unwrap();
    let sha = hex(&Sha256::digest(&image));
    assert_eq!(hex(&Sha256::digest(&written)), sha);
    assert!(r.stdout.contains(&format!("sha256      {sha}")), "{r:?}");
    assert!(
        r.stdout.contains(&format!("bytes       {}", image.len())),
        "{r:?}"
    );
    assert!(r.stdout.contains("valid for esp32s3"), "{r:?}");
    assert!(r.stdout.contains("version     1.2.3"), "{r:?}");
    assert!(r.took < Duration::from_secs(20), "{r:?}");

    // The transcript decodes with the explain example: every command, the payload.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.lines().any(|l| l.starts_with("-> AT+QHTTPGET")),
        "{text}"
    );
    assert!(text.lines().any(|l| l.starts_with("<- ")), "{text}");
    let explained = Command::new(example("explain"))
        .args(["--json", log.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(explained.status.success(), "{explained:?}");
    let events: Vec<serde_json::Value> = String::from_utf8(explained.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert!(kinds.contains(&"command"), "{kinds:?}");
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "payload" && e["bytes"] == image.len()),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| e["raw"]
            .as_str()
            .is_some_and(|r| r.starts_with("+QHTTPGET: 0,200"))),
        "{events:?}"
    );
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(&log);
}

#[test]
fn fota_upgrades_the_module_and_prints_both_revisions() {
    let from = Personality::Ec200u.revision();
    let to = format!("{from}X");
    let server = TestServer::start([("pkg.bin", fota_package(from, &to, 50_000))]).unwrap();
    let modem = PtyModem::spawn(WorldConfig::new(fast_ec200u(&server))).unwrap();
    let p = port(&modem);
    let r = serial_ota(
        &["--port", &p, "fota", "http://fw.example/pkg.bin"],
        Duration::from_secs(40),
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    let line = format!("{from}_01.001.01.001 → {to}_01.001.01.001");
    assert!(r.stdout.contains(&line), "{line:?} missing: {r:?}");
    for milestone in ["download", "rebooted", "upgrade started", "END,0"] {
        assert!(r.stderr.contains(milestone), "{milestone:?} missing: {r:?}");
    }
    assert!(r.took < Duration::from_secs(25), "{r:?}");
}

#[test]
fn fota_failure_names_the_code_and_its_meaning() {
    // A package for another source revision: the EC200U ends the download stage fine and
    // then refuses the upgrade.
    let server = TestServer::start([("pkg.bin", fota_package("OTHER", "NEW", 10_000))]).unwrap();
    let modem = PtyModem::spawn(WorldConfig::new(fast_ec200u(&server))).unwrap();
    let p = port(&modem);
    let r = serial_ota(
        &["--port", &p, "fota", "http://fw.example/pkg.bin"],
        Duration::from_secs(40),
    );
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stderr.contains("error: module upgrade failed"), "{r:?}");
    assert!(r.stderr.contains("upgrade ended with"), "{r:?}");
}

#[test]
fn missing_port_is_a_clear_error() {
    let path = "/dev/ttyUSB_serial_ota_missing";
    assert!(!Path::new(path).exists());
    let r = serial_ota(&["--port", path, "probe"], Duration::from_secs(10));
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "error: no such device: {path} — is the modem plugged in? try ls /dev/ttyUSB*"
        )),
        "{r:?}"
    );
}

#[test]
fn silent_modem_is_a_clear_error() {
    // Still booting for a minute: nothing answers AT.
    let mut cfg = ModemConfig::new(Personality::Ec200u).quiet();
    cfg.start = ModemStart::Booting;
    cfg.boot_time = Duration::from_secs(60);
    let modem = PtyModem::spawn(WorldConfig::new(cfg)).unwrap();
    let p = port(&modem);
    let r = serial_ota(&["--port", &p, "probe"], Duration::from_secs(20));
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "error: no answer to AT on {p} at 115200 baud: wrong port (the EC200U exposes \
             several; the AT port is usually ttyUSB2) or wrong baud?"
        )),
        "{r:?}"
    );
}

#[test]
fn busy_port_is_a_clear_error() {
    // Another program holds the port (flock(1) takes the same lock serialport takes).
    if Command::new("flock").arg("--version").output().is_err() {
        eprintln!("flock(1) not installed; skipped");
        return;
    }
    let server = TestServer::start([("x.bin", vec![0u8; 16])]).unwrap();
    let modem = PtyModem::spawn(WorldConfig::new(fast_ec200u(&server))).unwrap();
    let p = port(&modem);
    let mut holder = Command::new("flock")
        .args(["--exclusive", &p, "sleep", "20"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let r = serial_ota(&["--port", &p, "probe"], Duration::from_secs(10));
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stderr.contains(&format!("error: {p} is busy")), "{r:?}");
}

#[test]
fn port_is_required() {
    let r = serial_ota(&["probe"], Duration::from_secs(10));
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains("--port"), "{r:?}");
}

#[test]
fn fota_waits_for_a_port_that_disappears_and_comes_back() {
    // The port is reached through a symlink; removing it while the module upgrades looks
    // like a USB port that re-enumerates: the example must drop it, re-open it when it is
    // back, and finish the upgrade.
    use std::io::BufRead;
    let from = Personality::Ec200u.revision();
    let to = format!("{from}Y");
    let server = TestServer::start([("pkg.bin", fota_package(from, &to, 20_000))]).unwrap();
    let mut cfg = fast_ec200u(&server);
    cfg.fota.upgrade_time = Duration::from_secs(4);
    let modem = PtyModem::spawn(WorldConfig::new(cfg)).unwrap();
    let link = temp("ttyUSB-link");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(modem.slave_path(), &link).unwrap();

    let t0 = Instant::now();
    let mut child = Command::new(example("serial_ota"))
        .args([
            "--port",
            link.to_str().unwrap(),
            "--urc-port",
            "uart1",
            "fota",
            "http://fw.example/pkg.bin",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).ok();
        s
    });
    let err = std::io::BufReader::new(child.stderr.take().unwrap());
    let link2 = link.clone();
    let slave = modem.slave_path().to_path_buf();
    let t_err = std::thread::spawn(move || {
        let mut all = String::new();
        let mut pulled = false;
        for line in err.lines() {
            let Ok(line) = line else { break };
            if !pulled && line.contains("upgrade started") {
                pulled = true;
                std::fs::remove_file(&link2).unwrap();
                std::thread::sleep(Duration::from_millis(1500));
                std::os::unix::fs::symlink(&slave, &link2).unwrap();
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if t0.elapsed() > Duration::from_secs(40) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let r = Run {
        code: status.and_then(|s| s.code()),
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
        took: t0.elapsed(),
    };
    eprintln!("{r:?}");
    let _ = std::fs::remove_file(&link);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("port lost: "), "{r:?}");
    assert!(r.stderr.contains("port back: "), "{r:?}");
    assert!(r.stdout.contains(&format!("→ {to}_01.001.01.001")), "{r:?}");
    assert!(r.took < Duration::from_secs(25), "{r:?}");
}

#[test]
fn download_failures_name_the_stage_and_the_code() {
    let server = TestServer::start([("fw.bin", vec![7u8; 1024])]).unwrap();
    let modem = PtyModem::spawn(WorldConfig::new(fast_ec200u(&server))).unwrap();
    let p = port(&modem);
    let out = temp("never.bin");
    let out = out.to_str().unwrap();
    // Without a key, installing unsigned images must be asked for: refused before anything
    // is requested.
    let r = serial_ota(
        &[
            "--port",
            &p,
            "download",
            "http://fw.example/fw.bin",
            "--out",
            out,
        ],
        Duration::from_secs(30),
    );
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stderr
            .contains("update failed at configuration after 0 bytes: no public key"),
        "{r:?}"
    );
    // The server has no such file.
    let r = serial_ota(
        &[
            "--port",
            &p,
            "download",
            "http://fw.example/missing.bin",
            "--allow-unsigned",
            "--out",
            out,
        ],
        Duration::from_secs(30),
    );
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stderr.contains("server answered HTTP 404"), "{r:?}");
    // A host the modem cannot reach: the modem's own HTTP error code, with its meaning.
    let r = serial_ota(
        &[
            "--port",
            &p,
            "download",
            "http://nowhere.example/fw.bin",
            "--allow-unsigned",
            "--out",
            out,
        ],
        Duration::from_secs(30),
    );
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stderr
            .contains("update failed at request after 0 bytes: modem answered +CME ERROR: 716 (socket connect error)"),
        "{r:?}"
    );
    assert!(!Path::new(out).exists());
}

#[test]
fn fota_file_streams_a_local_package_with_rts_cts() {
    let p = Personality::Ec200t;
    let from = p.revision();
    let to = format!("{from}F");
    let pkg = fota_package(from, &to, 40_000);
    let file = temp("ec200t-delta.bin");
    std::fs::write(&file, &pkg).unwrap();
    let modem = PtyModem::spawn(fast_ec200t_921600()).unwrap();
    let port = port(&modem);
    let r = serial_ota(
        &[
            "--port",
            &port,
            "--baud",
            "921600",
            "--flow-control",
            "fota",
            "--file",
            file.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    let line = format!("{from}_01.001.01.001 → {to}_01.001.01.001");
    assert!(r.stdout.contains(&line), "{line:?} missing: {r:?}");
    for milestone in [
        "sending 40000 bytes with RTS/CTS",
        "package sent (40000 bytes)",
        "FILEEND,0",
        "upgrade started",
        "END,0",
    ] {
        assert!(r.stderr.contains(milestone), "{milestone:?} missing: {r:?}");
    }
    // Both sides hold the same package, and the module runs the new firmware.
    let stored = modem.with_modem(|m| m.fota_file()).flatten().unwrap();
    assert!(stored == pkg, "the module stored other bytes");
    let stats = modem.with_modem(|m| m.fota_file_stats()).flatten().unwrap();
    assert!(stats.complete && stats.lost == 0, "{stats:?}");
    assert_eq!(modem.with_modem(|m| m.revision()).unwrap(), to);
    // 40 000 bytes at the module's 15 000 bytes/s, plus the reboots and the upgrade.
    assert!(r.took < Duration::from_secs(30), "{r:?}");
    let _ = std::fs::remove_file(&file);
}

#[test]
fn fota_file_too_fast_without_flow_control_says_what_to_do() {
    let p = Personality::Ec200t;
    let pkg = fota_package(p.revision(), "NEW", 30_000);
    let file = temp("ec200t-fast.bin");
    std::fs::write(&file, &pkg).unwrap();
    let modem = PtyModem::spawn(fast_ec200t_921600()).unwrap();
    let port = port(&modem);
    let r = serial_ota(
        &[
            "--port",
            &port,
            "fota",
            "--file",
            file.to_str().unwrap(),
            "--pace",
            "80000",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stderr
            .contains("file transfer ended with 500: file download error"),
        "{r:?}"
    );
    for advice in ["RTS/CTS", "--rtscts", "lower --pace (now 80000 bytes/s"] {
        assert!(r.stderr.contains(advice), "{advice:?} missing: {r:?}");
    }
    let stats = modem.with_modem(|m| m.fota_file_stats()).flatten().unwrap();
    assert!(!stats.complete && stats.lost > 0, "{stats:?}");
    assert_eq!(modem.with_modem(|m| m.revision()).unwrap(), p.revision());
    let _ = std::fs::remove_file(&file);
}

#[test]
fn fota_needs_exactly_one_of_url_and_file() {
    let r = serial_ota(&["--port", "/dev/null", "fota"], Duration::from_secs(10));
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains("--file"), "{r:?}");
    let r = serial_ota(
        &["--port", "/dev/null", "fota", "http://x/y", "--file", "y"],
        Duration::from_secs(10),
    );
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains("cannot be used with"), "{r:?}");
}

/// A SIMCom module that is up, registered and quiet, resolving `fw.example` to `server`.
fn fast_simcom(p: Personality, server: &TestServer) -> ModemConfig {
    let mut cfg = ModemConfig::new(p)
        .ready()
        .quiet()
        .with_host("fw.example", server.addr());
    cfg.registration_delay = Duration::from_millis(200);
    cfg.pdp_activate_time = Duration::from_millis(100);
    cfg
}

/// The command set's name in serial_ota's JSON (and `--simcom-family`).
fn family_name(p: Personality) -> &'static str {
    match p.simcom().expect("a SIMCom personality") {
        Family::Sim7600 => "sim7600",
        Family::A76xx => "a76xx",
        Family::Sh => "sh",
        Family::Sim800 => "sim800",
        other => panic!("no name for {other:?}"),
    }
}

/// The commands the simulated module received.
fn commands(modem: &PtyModem) -> Vec<String> {
    modem
        .with_modem(|m| m.commands())
        .expect("the pump answers")
}

#[test]
fn probe_tells_each_simcom_module_and_its_command_set() {
    let server = TestServer::start([("x.bin", vec![0u8; 16])]).unwrap();
    for p in Personality::SIMCOM {
        let ctx = p.name();
        let cfg = fast_simcom(p, &server);
        let modem = PtyModem::spawn(WorldConfig::new(cfg.clone())).unwrap();
        let port = port(&modem);
        let r = serial_ota(
            &["--port", &port, "probe", "--json"],
            Duration::from_secs(30),
        );
        assert_eq!(r.code, Some(0), "{ctx}: {r:?}");
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        let family = family_name(p);
        assert_eq!(v["vendor"], "simcom", "{ctx}: {v}");
        assert_eq!(v["simcom_family"], family, "{ctx}: {v}");
        assert_eq!(
            v["identity"]["manufacturer"], "SIMCOM INCORPORATED",
            "{ctx}"
        );
        assert_eq!(v["identity"]["model"], p.model(), "{ctx}");
        assert_eq!(v["identity"]["revision"], p.revision(), "{ctx}");
        assert_eq!(v["identity"]["family"], family, "{ctx}");
        assert_eq!(v["bring_up"]["ok"], true, "{ctx}: {v}");
        assert_eq!(v["imei"], cfg.imei.as_str(), "{ctx}");
        assert_eq!(v["iccid"], cfg.iccid.as_str(), "{ctx}");
        assert_eq!(v["sim"]["ready"], true, "{ctx}");
        assert_eq!(v["pdp"]["active"], true, "{ctx}");
        assert_eq!(v["pdp"]["activated_now"], true, "{ctx}");
        assert_eq!(v["command_set"]["family"], family, "{ctx}");
        let max_body = match p {
            Personality::A7670 => serde_json::json!(256 * 1024),
            Personality::Sim7070 => serde_json::json!(32 * 1024),
            _ => serde_json::Value::Null,
        };
        assert_eq!(v["command_set"]["max_body"], max_body, "{ctx}");
        // No Quectel test forms, no URC routing: nothing Quectel reached the module.
        assert!(v.get("commands").is_none(), "{ctx}: {v}");
        assert!(v.get("urc_port").is_none(), "{ctx}: {v}");
        let cmds = commands(&modem);
        assert!(cmds.iter().any(|c| c == "AT+CGMI"), "{ctx}: {cmds:?}");
        assert!(
            !cmds.iter().any(|c| c.starts_with("AT+Q")),
            "{ctx}: {cmds:?}"
        );
        assert!(r.took < Duration::from_secs(10), "{ctx}: {r:?}");
    }

    // The table names the vendor's model and the command set; a configured command set is
    // used as given.
    let p = Personality::Sim7070;
    let modem = PtyModem::spawn(WorldConfig::new(fast_simcom(p, &server))).unwrap();
    let port = port(&modem);
    let r = serial_ota(
        &["--port", &port, "--simcom-family", "sh", "probe"],
        Duration::from_secs(30),
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    for want in [
        "SIMCOM INCORPORATED",
        "SIM7070G (command set: sh)",
        "AT+SHREQ",
    ] {
        assert!(r.stdout.contains(want), "{want:?} missing: {r:?}");
    }
}

/// `fota URL` on SIMCom modules: the A7670 (`AT+CFOTA`) and the SIM7070 (`AT+HTTPTOFS` +
/// `AT+CFOTA=1`) upgrade to the package's revision and print both; a package for another
/// revision fails with the module's verdict; the SIM7600 (no `AT+CFOTA`) is refused typed
/// before anything is fetched.
#[test]
fn fota_upgrades_simcom_modules_or_says_why_not() {
    for p in [Personality::A7670, Personality::Sim7070] {
        let ctx = p.name();
        let to = format!("{}X", p.revision());
        let server = TestServer::start([
            ("pkg.bin", fota_package(p.revision(), &to, 20_000)),
            ("other.bin", fota_package("OTHER", "NEW", 20_000)),
        ])
        .unwrap();
        let mut cfg = fast_simcom(p, &server);
        cfg.boot_time = Duration::from_millis(1500);
        cfg.fota = FotaTiming {
            start_delay: Duration::from_millis(200),
            reboot_time: Duration::from_secs(1),
            upgrade_time: Duration::from_secs(2),
        };
        let modem = PtyModem::spawn(WorldConfig::new(cfg)).unwrap();
        let port = port(&modem);
        let r = serial_ota(
            &["--port", &port, "fota", "http://fw.example/pkg.bin"],
            Duration::from_secs(60),
        );
        assert_eq!(r.code, Some(0), "{ctx}: {r:?}");
        let line = format!("{} → {to}", p.revision());
        assert!(r.stdout.contains(&line), "{ctx}: {line:?} missing: {r:?}");
        assert!(r.stderr.contains("module rebooted"), "{ctx}: {r:?}");
        assert_eq!(modem.with_modem(|m| m.revision()).unwrap(), to, "{ctx}");
        // Now running `to`, a package made for another revision is refused by the module.
        let r = serial_ota(
            &["--port", &port, "fota", "http://fw.example/other.bin"],
            Duration::from_secs(60),
        );
        assert_eq!(r.code, Some(1), "{ctx}: {r:?}");
        let code = if p == Personality::A7670 { "1008" } else { "7" };
        assert!(r.stderr.contains(code), "{ctx}: {code} missing: {r:?}");
    }
    let server = TestServer::start([("x.bin", vec![0u8; 16])]).unwrap();
    let modem =
        PtyModem::spawn(WorldConfig::new(fast_simcom(Personality::Sim7600, &server))).unwrap();
    let port = port(&modem);
    let r = serial_ota(
        &["--port", &port, "fota", "http://fw.example/x.bin"],
        Duration::from_secs(30),
    );
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stderr.contains("no firmware upgrade"), "{r:?}");
    assert!(modem.with_modem(|m| m.fetched_urls()).unwrap().is_empty());
}

#[test]
fn download_through_each_simcom_module_writes_the_served_image() {
    let image = test_app_image(9, "1.2.3", 20 * 1024);
    let server = TestServer::start([("fw.bin", image.clone())]).unwrap();
    for p in Personality::SIMCOM {
        let ctx = p.name();
        let modem = PtyModem::spawn(WorldConfig::new(fast_simcom(p, &server))).unwrap();
        let port = port(&modem);
        let out = temp(&format!("{ctx}.bin"));
        let log = temp(&format!("{ctx}.log"));
        let _ = std::fs::remove_file(&out);
        let r = serial_ota(
            &[
                "--port",
                &port,
                "--log",
                log.to_str().unwrap(),
                "download",
                "http://fw.example/fw.bin",
                "--allow-unsigned",
                "--out",
                out.to_str().unwrap(),
                "--validate",
                "esp32s3",
                "--max-size",
                "1M",
            ],
            Duration::from_secs(30),
        );
        assert_eq!(r.code, Some(0), "{ctx}: {r:?}");
        assert!(std::fs::read(&out).unwrap() == image, "{ctx}: other bytes");
        // The module's own HTTP client fetched it.
        let cmds = commands(&modem);
        let request = match p.simcom() {
            Some(Family::Sh) => "AT+SHREQ=",
            _ => "AT+HTTPACTION=0",
        };
        assert!(
            cmds.iter().any(|c| c.starts_with(request)),
            "{ctx}: {cmds:?}"
        );
        assert!(
            !cmds.iter().any(|c| c.starts_with("AT+Q")),
            "{ctx}: {cmds:?}"
        );
        assert!(r.took < Duration::from_secs(20), "{ctx}: {r:?}");

        // The transcript decodes as this vendor and command set.
        let explained = Command::new(example("explain"))
            .args(["--json", log.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(explained.status.success(), "{ctx}: {explained:?}");
        let events: Vec<serde_json::Value> = String::from_utf8(explained.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(
            events
                .iter()
                .any(|e| e["vendor"] == "simcom" && e["simcom_family"] == family_name(p)),
            "{ctx}: {events:?}"
        );
        let _ = std::fs::remove_file(&out);
        let _ = std::fs::remove_file(&log);
    }
}

/// An image larger than a SIM7070 holds from one response: without a manifest the size
/// GET is refused (602) and the tool says what to do; with one the image comes in ranges
/// (`AT+SHAHEAD`).
#[test]
fn download_through_sim7070_in_ranges_with_a_manifest() {
    // Above the 40 KB the simulated SIM7070 holds (and the 32 KiB the crate assumes).
    let image = test_app_image(9, "1.2.3", 48 * 1024);
    let manifest = format!(
        "cellular-ota-manifest 2\nproduct bench\nversion 1.2.3\nsize {}\nsha256 {}\n",
        image.len(),
        hex(&Sha256::digest(&image))
    );
    let server = TestServer::start([
        ("fw.bin", image.clone()),
        ("fw.bin.manifest", manifest.into_bytes()),
    ])
    .unwrap();
    let modem =
        PtyModem::spawn(WorldConfig::new(fast_simcom(Personality::Sim7070, &server))).unwrap();
    let port = port(&modem);
    let out = temp("sim7070-ranged.bin");
    let out = out.to_str().unwrap();
    let _ = std::fs::remove_file(out);
    let base = [
        "--port",
        &port,
        "download",
        "http://fw.example/fw.bin",
        "--allow-unsigned",
        "--out",
        out,
    ];

    let r = serial_ota(&base, Duration::from_secs(30));
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stderr.contains("modem HTTP error 602"), "{r:?}");
    assert!(r.stderr.contains("--manifest"), "{r:?}");
    assert!(!Path::new(out).exists());

    let mut args = base.to_vec();
    args.extend([
        "--manifest",
        "http://fw.example/fw.bin.manifest",
        "--product",
        "bench",
    ]);
    let r = serial_ota(&args, Duration::from_secs(30));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(std::fs::read(out).unwrap() == image, "other bytes");
    assert!(r.stdout.contains("AT+SHAHEAD"), "{r:?}");
    let heads = commands(&modem)
        .into_iter()
        .filter(|c| c.starts_with("AT+SHAHEAD=\"Range\""))
        .count();
    assert!(heads >= 2, "{heads} ranges");
    let _ = std::fs::remove_file(out);
}
