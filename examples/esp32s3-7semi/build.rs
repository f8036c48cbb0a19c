//! Link script for the ESP targets.

fn main() {
    // esp-hal's linker script (memory map, sections, `.flash.appdesc`). Only for the ESP
    // targets (no OS); esp-hal itself refuses to build for anything else.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg=-Tlinkall.x");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
