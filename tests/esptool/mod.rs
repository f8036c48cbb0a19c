//! Espressif's esptool as a judge of images, through `tools/esp_judge.py` (no cellular-ota
//! code in it). The tests that use it need Python 3 with `esptool` (`pip install esptool`;
//! `.ci/run` installs it) and fail with that instruction when it is missing.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Runs the judge on `file` (`kind` is `flash` or `app`) for `chip` (`esp32s3`, `esp32c3`).
pub fn judge(chip: &str, kind: &str, file: &Path) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/esp_judge.py");
    let out = Command::new(python())
        .arg(&script)
        .args(["--chip", chip, kind])
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e} (Python 3 with esptool)", python()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "esp_judge.py printed no JSON ({e}): {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_ne!(
        out.status.code(),
        Some(2),
        "esp_judge.py could not run: {v} — install esptool (`pip install esptool`)"
    );
    v
}

/// Judges bytes written to a temporary file.
pub fn judge_bytes(chip: &str, kind: &str, name: &str, bytes: &[u8]) -> Value {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!(
        "cellular-ota-judge-{}-{n}-{name}.bin",
        std::process::id()
    ));
    std::fs::write(&path, bytes).unwrap();
    let v = judge(chip, kind, &path);
    let _ = std::fs::remove_file(&path);
    v
}
