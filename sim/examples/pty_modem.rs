//! Serves a simulated EC200U on a pseudo-terminal, with a local HTTP server holding a test
//! firmware image, for the number of seconds given as the first argument (default: one hour).
//!
//! ```text
//! cargo run -p cellular-ota-sim --example pty_modem -- 600
//! picocom -b 115200 /dev/pts/N        # the path it prints
//! ```

#[cfg(unix)]
fn main() -> std::io::Result<()> {
    use cellular_ota_sim::{
        ModemConfig, Personality, PtyModem, TestServer, WorldConfig, test_app_image,
    };
    use std::time::Duration;

    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3600);
    let server = TestServer::start([("fw.bin", test_app_image(9, "2.0.0", 64 * 1024))])?;
    let cfg = ModemConfig::new(Personality::Ec200u)
        .ready()
        .with_host("updates.example.com", server.addr());
    let modem = PtyModem::spawn(WorldConfig::new(cfg))?;
    let url = "http://updates.example.com/fw.bin";
    println!("simulated EC200U on {}", modem.slave_path().display());
    println!(
        "try: AT+QIACT=1, AT+QHTTPURL={},10 then {url}, AT+QHTTPGET=60, AT+QHTTPREAD=60",
        url.len()
    );
    std::thread::sleep(Duration::from_secs(secs));
    Ok(())
}

#[cfg(not(unix))]
fn main() {
    eprintln!("the pseudo-terminal face needs a Unix host");
}
