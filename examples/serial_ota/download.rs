//! `download`: the crate's update flow into memory, then to a file: over the Quectel HTTP
//! client (`update_blocking`) or a SIMCom module's (`SimcomHttp`, `update_with_blocking`).

use std::path::PathBuf;
use std::time::Duration;

use cellular_ota::ota::esp_idf::image::{ChipId, ImageValidator};
use cellular_ota::ota::manifest::Version;
use cellular_ota::ota::mem_sink::MemSink;
use cellular_ota::simcom::{Family as SimcomFamily, SimcomHttp};
use cellular_ota::update::{
    Failure, Method, Outcome, Progress, Stage, Strategy, UpdateConfig, UpdateError,
    update_blocking, update_with_blocking,
};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use crate::Global;
use crate::common::{
    Fail, Modem, Res, StdClock, Urcs, Vendor, bring_up, detect_vendor, hex, interactive, open_port,
    say, simcom_family_name, sync, ui,
};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum StrategyArg {
    /// Chosen from the modem's abilities and flow control.
    Auto,
    /// One GET, one read of the whole body.
    Stream,
    /// Host-paced ranges (AT+QHTTPGETEX or a Range: header; SIMCom: a Range: header).
    Ranged,
    /// Into the module's file system, then read in chunks (Quectel).
    ModemFile,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Chip {
    /// ESP32-S3 (chip id 9).
    Esp32s3,
    /// ESP32-C3 (chip id 5).
    Esp32c3,
}

#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// Image URL (http:// or https://).
    pub url: String,
    /// Where to write the image.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Signed manifest published beside the image.
    #[arg(long, value_name = "URL")]
    pub manifest: Option<String>,
    /// Ed25519 public key the manifest must be signed with (64 hex digits).
    #[arg(long, value_name = "HEX")]
    pub pubkey: Option<String>,
    /// Install without a signature (no --pubkey): for bench tests only.
    #[arg(long)]
    pub allow_unsigned: bool,
    /// The product the manifest must name (with --manifest).
    #[arg(long, value_name = "NAME")]
    pub product: Option<String>,
    /// The hardware revision a manifest that names one must name.
    #[arg(long, value_name = "REV")]
    pub hardware: Option<String>,
    /// The version running now (with --manifest: an equal version is "up to date").
    #[arg(long, value_name = "VERSION")]
    pub running_version: Option<String>,
    /// Accept a manifest that offers an older version.
    #[arg(long)]
    pub allow_downgrade: bool,
    /// Check the result as an ESP-IDF app image for this chip and print its descriptor.
    #[arg(long, value_name = "CHIP")]
    pub validate: Option<Chip>,
    /// How to fetch.
    #[arg(long, value_enum, default_value_t = StrategyArg::Auto)]
    pub strategy: StrategyArg,
    /// Largest image accepted (bytes; K/M suffixes allowed).
    #[arg(long, value_name = "SIZE", default_value = "16M")]
    pub max_size: String,
    /// PDP context for HTTP.
    #[arg(long, default_value_t = 1, value_name = "CID")]
    pub cid: u8,
    /// Longest wait for network registration, in seconds.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub register_timeout: u64,
}

/// `1048576`, `512K`, `16M`, `16MiB`.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(digits);
    let n: usize = n.parse().map_err(|_| format!("bad size {s:?}"))?;
    let mul = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        _ => return Err(format!("bad size unit in {s:?} (use K or M)")),
    };
    n.checked_mul(mul)
        .filter(|&v| v > 0 && v <= u32::MAX as usize)
        .ok_or_else(|| format!("size {s:?} out of range"))
}

fn parse_key(s: &str) -> Result<[u8; 32], String> {
    let s = s.trim();
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "--pubkey needs 64 hex digits (32 bytes), got {:?}",
            s
        ));
    }
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
    }
    Ok(k)
}

/// How `m` fetches, in the commands of the modem's vendor (`simcom`: a SIMCom module's
/// command set).
pub fn method_text(m: Method, simcom: Option<SimcomFamily>) -> &'static str {
    match (simcom, m) {
        (Some(SimcomFamily::Sh), Method::Stream) => {
            "stream (AT+SHREQ, AT+SHREAD of the whole body)"
        }
        (Some(SimcomFamily::Sh), Method::StreamErasedAhead) => {
            "stream into storage prepared ahead (AT+SHREQ, AT+SHREAD of the whole body)"
        }
        (Some(SimcomFamily::Sh), Method::RangedHeader) => {
            "ranges with a Range: header (AT+SHAHEAD)"
        }
        (Some(_), Method::Stream) => "stream (AT+HTTPACTION, AT+HTTPREAD of the whole body)",
        (Some(_), Method::StreamErasedAhead) => {
            "stream into storage prepared ahead (AT+HTTPACTION, AT+HTTPREAD of the whole body)"
        }
        (Some(_), Method::RangedHeader) => "ranges with a Range: header (AT+HTTPPARA=\"USERDATA\")",
        (_, m) => quectel_method_text(m),
    }
}

fn quectel_method_text(m: Method) -> &'static str {
    match m {
        Method::Stream => "stream (one AT+QHTTPREAD)",
        Method::StreamErasedAhead => "stream into storage prepared ahead (one AT+QHTTPREAD)",
        Method::RangedGetex => "ranges with AT+QHTTPGETEX",
        Method::RangedHeader => "ranges with a Range: header",
        Method::ModemFile => "via the module's file system (AT+QHTTPREADFILE, AT+QFREAD)",
    }
}

/// The error with the modem's code and meaning, each said once, and what to do when a
/// SIMCom module cannot hold the whole body.
fn update_error(e: &UpdateError, simcom: Option<SimcomFamily>, manifest: bool) -> String {
    let mut msg = e.to_string();
    if let (Some(code), Some(meaning)) = (e.code(), e.meaning()) {
        if !msg.contains(meaning) {
            msg.push_str(&format!(" [code {code}: {meaning}]"));
        }
    }
    // Without a manifest the flow learns the size with a plain GET of the whole image, which
    // a module with a body limit refuses (AT+SH*: 602, A76xx: 706) when the image is larger.
    let too_big = match (simcom, &e.failure) {
        (Some(SimcomFamily::Sh), Failure::HttpClient(h)) => h.code == 602,
        (Some(SimcomFamily::A76xx), Failure::HttpClient(h)) => h.code == 706,
        _ => false,
    };
    if too_big && e.stage == Stage::Request && e.bytes_done == 0 && !manifest {
        msg.push_str(
            "; the image may be larger than the module holds from one response: publish a \
             manifest beside it and pass --manifest (it gives the size, and the image is then \
             fetched in ranges)",
        );
    }
    msg
}

fn bytes_bar() -> ProgressBar {
    let bar = ui().add(ProgressBar::new(0));
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>10} [{wide_bar}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix("download");
    bar
}

pub fn run(g: &Global, a: &DownloadArgs) -> Res<()> {
    let max = parse_size(&a.max_size)?;
    let public_key = a.pubkey.as_deref().map(parse_key).transpose()?;
    let running_version = a
        .running_version
        .as_deref()
        .map(|v| Version::parse(v).map_err(|e| Fail(format!("--running-version {v:?}: {e}"))))
        .transpose()?;
    let port = open_port(g)?;
    let (mut rx, mut resp) = (vec![0u8; 8192], vec![0u8; 1024]);
    let urcs = Urcs { verbose: g.verbose };
    let mut c: Modem<'_> = Modem::new(port, StdClock::new(), &mut rx, &mut resp, urcs);
    sync(&mut c, g)?;
    let vendor = detect_vendor(&mut c, g)?.vendor;
    let up = bring_up(
        &mut c,
        g,
        vendor,
        Duration::from_secs(a.register_timeout),
        Some(a.cid),
    )?;
    let (info, simcom) = (&up.info, up.simcom);
    let maker = match simcom {
        Some(f) => format!(" (SIMCom, command set {})", simcom_family_name(f)),
        None => String::new(),
    };
    let ip = if info.ip.is_empty() {
        "not reported"
    } else {
        info.ip.as_str()
    };
    say(format!(
        "{} {}{maker}: registered, PDP context {} up, IP {ip}",
        info.model, info.revision, a.cid
    ));

    let mut config = UpdateConfig::new(&a.url);
    config.manifest_url = a.manifest.as_deref();
    config.public_key = public_key;
    config.allow_unsigned = a.allow_unsigned;
    config.product = a.product.as_deref();
    config.hardware = a.hardware.as_deref();
    config.running_version = running_version;
    config.allow_downgrade = a.allow_downgrade;
    config.context_id = a.cid;
    config.flow_control = g.rtscts;
    config.strategy = match a.strategy {
        StrategyArg::Auto => Strategy::Auto,
        StrategyArg::Stream => Strategy::Stream,
        StrategyArg::Ranged => Strategy::Ranged,
        StrategyArg::ModemFile => Strategy::ModemFile,
    };

    let mut mem = vec![0u8; max];
    let mut sink = MemSink::new(&mut mem);
    let mut chunk = vec![0u8; 4096];
    let bar = bytes_bar();
    let tty = interactive();
    let mut chosen: Option<(Method, &'static str)> = None;
    let mut last_pct = 0u32;
    let started = std::time::Instant::now();
    let mut on_progress = |p: Progress| match p {
        Progress::Manifest { size } => say(format!("manifest accepted: {size} bytes offered")),
        Progress::Strategy { method, reason } => {
            chosen = Some((method, reason));
            say(format!(
                "strategy: {} ({reason})",
                method_text(method, simcom)
            ));
        }
        Progress::Started {
            total,
            resumed_from,
        } => {
            bar.set_length(u64::from(total));
            bar.set_position(u64::from(resumed_from));
            say(format!("transfer of {total} bytes started"));
        }
        Progress::Bytes { done, total } => {
            bar.set_position(u64::from(done));
            let pct = if total == 0 {
                100
            } else {
                (u64::from(done) * 100 / u64::from(total)) as u32
            };
            if !tty && pct / 25 > last_pct / 25 {
                say(format!("download {pct}% ({done}/{total} bytes)"));
            }
            last_pct = pct;
        }
        Progress::Fallback { to, reason } => {
            chosen = Some((to, reason));
            say(format!(
                "switching to {} ({reason})",
                method_text(to, simcom)
            ));
        }
        Progress::Verifying => bar.set_message("verifying"),
        Progress::Activating => bar.set_message("checking the stored copy"),
    };
    let r = match (vendor, simcom) {
        (Vendor::Simcom, Some(family)) => update_with_blocking(
            SimcomHttp::new(c.as_async(), family),
            &mut sink,
            &config,
            &mut chunk,
            &mut on_progress,
        ),
        // SIMCom bring-up does not succeed without a command set.
        (Vendor::Simcom, None) => {
            return Err(Fail(
                "the SIMCom module's command set is unknown: give --simcom-family".into(),
            ));
        }
        (Vendor::Quectel, _) => {
            update_blocking(&mut c, &mut sink, &config, &mut chunk, &mut on_progress)
        }
    };
    let took = started.elapsed();
    bar.finish_and_clear();
    ui().remove(&bar);
    let (method, size, sha256) = match r {
        Ok(Outcome::UpToDate) => {
            println!("up to date: the manifest offers the running version; nothing downloaded");
            return Ok(());
        }
        Ok(Outcome::Installed {
            method,
            size,
            sha256,
            ..
        }) => (method, size, sha256),
        Err(e) => return Err(Fail(update_error(&e, simcom, a.manifest.is_some()))),
    };
    let image = sink
        .image()
        .ok_or("the sink holds no finished image")?
        .to_vec();
    std::fs::write(&a.out, &image)
        .map_err(|e| Fail(format!("cannot write {}: {e}", a.out.display())))?;

    let secs = took.as_secs_f64().max(1e-3);
    let reason = chosen.map_or("", |(_, r)| r);
    println!("url         {}", a.url);
    println!("strategy    {} ({reason})", method_text(method, simcom));
    println!("bytes       {size}");
    println!("time        {secs:.1} s");
    println!("throughput  {:.1} KiB/s", f64::from(size) / 1024.0 / secs);
    println!("sha256      {}", hex(&sha256));
    println!("written to  {}", a.out.display());

    if let Some(chip) = a.validate {
        let (id, name) = match chip {
            Chip::Esp32s3 => (ChipId::ESP32S3, "esp32s3"),
            Chip::Esp32c3 => (ChipId::ESP32C3, "esp32c3"),
        };
        let mut v = ImageValidator::new(id, u32::try_from(max).unwrap_or(u32::MAX));
        let _ = v.update(&image);
        let info = v
            .finish()
            .map_err(|e| Fail(format!("not a valid {name} app image: {e}")))?;
        println!(
            "app image   valid for {name}: {} segments, entry 0x{:08x}, {}",
            info.segments,
            info.entry,
            if info.sha256.is_some() {
                "SHA-256 appended and checked"
            } else {
                "no appended SHA-256"
            }
        );
        if let Some(d) = info.app_desc {
            let f = |s: Option<&str>| s.unwrap_or("?").to_string();
            println!("version     {}", f(d.version_str()));
            println!("project     {}", f(d.project_name_str()));
            println!("ESP-IDF     {}", f(d.idf_ver_str()));
            println!("built       {} {}", f(d.date_str()), f(d.time_str()));
            println!("secure ver  {}", d.secure_version);
        }
    }
    Ok(())
}
