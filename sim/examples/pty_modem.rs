//! Serves a simulated modem (an EC200U unless `--modem` names another) on a
//! pseudo-terminal, with a local HTTP server holding a test firmware image, for the number of
//! seconds given as the first argument (default: one hour).
//!
//! ```text
//! cargo run -p cellular-ota-sim --example pty_modem -- 600
//! cargo run -p cellular-ota-sim --example pty_modem -- 600 --modem sim7600
//! picocom -b 115200 /dev/pts/N        # the path it prints
//! cargo run --example serial_ota -- --port /dev/pts/N --urc-port uart1 probe
//! ```
//!
//! `--modem`: `ec200u`, `ec200t`, `eg06` (Quectel) or `sim7600`, `a7670`, `sim7070`,
//! `sim800` (SIMCom).

#[cfg(unix)]
fn main() -> std::io::Result<()> {
    use cellular_ota_sim::{
        ModemConfig, Personality, PtyModem, TestServer, WorldConfig, test_app_image,
    };
    use std::time::Duration;

    let names = || {
        Personality::ALL
            .iter()
            .chain(&Personality::SIMCOM)
            .map(|p| p.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut secs: u64 = 3600;
    let mut personality = Personality::Ec200u;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let value = match a.strip_prefix("--modem") {
            Some("") => args.next(),
            Some(v) if v.starts_with('=') => Some(v[1..].to_string()),
            _ => {
                match a.parse() {
                    Ok(s) => secs = s,
                    Err(_) => {
                        eprintln!(
                            "usage: pty_modem [SECONDS] [--modem NAME] (NAME: {})",
                            names()
                        );
                        std::process::exit(64);
                    }
                }
                continue;
            }
        };
        let found = value.as_deref().and_then(|v| {
            Personality::ALL
                .into_iter()
                .chain(Personality::SIMCOM)
                .find(|p| p.name().eq_ignore_ascii_case(v))
        });
        match found {
            Some(p) => personality = p,
            None => {
                eprintln!("--modem takes one of: {}", names());
                std::process::exit(64);
            }
        }
    }

    let server = TestServer::start([("fw.bin", test_app_image(9, "2.0.0", 64 * 1024))])?;
    let cfg = ModemConfig::new(personality)
        .ready()
        .with_host("updates.example.com", server.addr());
    let modem = PtyModem::spawn(WorldConfig::new(cfg))?;
    let url = "http://updates.example.com/fw.bin";
    println!(
        "simulated {} on {}",
        personality.model(),
        modem.slave_path().display()
    );
    match personality.simcom() {
        None => println!(
            "try: AT+QIACT=1, AT+QHTTPURL={},10 then {url}, AT+QHTTPGET=60, AT+QHTTPREAD=60",
            url.len()
        ),
        Some(_) => println!(
            "try: serial_ota --port {} --urc-port uart1 download {url} --allow-unsigned \
             --out fw.bin",
            modem.slave_path().display()
        ),
    }
    std::thread::sleep(Duration::from_secs(secs));
    Ok(())
}

#[cfg(not(unix))]
fn main() {
    eprintln!("the pseudo-terminal face needs a Unix host");
}
