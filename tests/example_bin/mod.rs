//! The crate's examples as the CLI tests run them: built next to the test binaries with this
//! test binary's profile. Cargo is asked once per example and process, so a test run alone
//! (`cargo test --test <name>`, which builds no examples) or after an edit never runs a
//! missing or stale binary; when the example is up to date that is a no-op.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

/// The path of example `name`, built (or found up to date) first.
pub fn example(name: &str) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(bin) = built.get_or_insert_with(HashMap::new).get(name) {
        return bin.clone();
    }
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let profile = match dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev",
        Some(p) => p,
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let ok = Command::new(cargo)
        .args(["build", "--example", name, "--profile", profile])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap()
        .success();
    assert!(ok && bin.exists(), "{} not built", bin.display());
    built
        .get_or_insert_with(HashMap::new)
        .insert(name.to_string(), bin.clone());
    bin
}
