//! Everything a user of this example changes, in one place.
//!
//! The strings can also be set when building, from environment variables, so a build script
//! or CI can make firmware for a fleet without editing this file:
//!
//! ```sh
//! OTA_FIRMWARE_VERSION=1.0.1 \
//! OTA_FIRMWARE_URL=http://ota.example.net/7semi/firmware.bin \
//! OTA_MANIFEST_URL=http://ota.example.net/7semi/firmware.bin.manifest \
//! OTA_PUBLIC_KEY=0123...64 hex digits... \
//! OTA_PRODUCT=7semi-ec200u-logger \
//! OTA_APN=internet \
//!   cargo build-c3
//! ```
//!
//! | variable | constant | default |
//! |---|---|---|
//! | `OTA_FIRMWARE_VERSION` | [`FIRMWARE_VERSION`] | the package version in `Cargo.toml` |
//! | `OTA_FIRMWARE_URL` | [`FIRMWARE_URL`] | `http://example.com/ota/firmware.bin` |
//! | `OTA_MANIFEST_URL` (empty: no manifest) | [`MANIFEST_URL`] | `http://example.com/ota/firmware.bin.manifest` |
//! | `OTA_PUBLIC_KEY` (64 hex digits) | [`PUBLIC_KEY`] | none: updates refused unless `OTA_ALLOW_UNSIGNED` |
//! | `OTA_ALLOW_UNSIGNED` (`1`/`true`) | [`ALLOW_UNSIGNED`] | `false` |
//! | `OTA_PRODUCT` | [`PRODUCT`] | `7semi-ec200u-example` |
//! | `OTA_HARDWARE` (empty: none) | [`HARDWARE`] | none |
//! | `OTA_APN`, `OTA_APN_USER`, `OTA_APN_PASSWORD` | [`APN`], [`APN_USER`], [`APN_PASSWORD`] | `internet`, empty, empty |
//! | `OTA_SIM_PIN` | [`SIM_PIN`] | none |
//! | `OTA_MODEM_FOTA_URL` | [`MODEM_FOTA_URL`] | `http://example.com/ec200u/fota.pack` |
//! | `OTA_ROLLBACK_BOOTLOADER` (`1`/`true`) | [`ROLLBACK_BOOTLOADER`] | `false` |
//! | `OTA_TRACE_AT` (`1`/`true`) | [`TRACE_AT`] | `false` |
//!
//! rustc records which variables `option_env!` read, so cargo rebuilds when one of them
//! changes.

use core::time::Duration;

use cellular_ota::bring_up::Auth;
use cellular_ota::update::Tls;

/// `option_env!($name)`, or `$default` when the variable is not set (usable in constants).
macro_rules! env_or {
    ($name:literal, $default:expr) => {
        match option_env!($name) {
            Some(v) => v,
            None => $default,
        }
    };
}

// ---------------------------------------------------------------------------------------------
// The firmware update (ota_update, ota_update_async)

/// The version of this firmware. It is written into the image's app descriptor (what
/// `espflash` and ESP-IDF tools show) and compared with the manifest's `version`: the same
/// version means "up to date", an older one is refused unless [`ALLOW_DOWNGRADE`].
///
/// Build every new image with a higher version, and sign it with the same version
/// (`sign_image sign --version <this>`). Format `MAJOR.MINOR.PATCH[-PRE]`, at most 31 bytes.
pub const FIRMWARE_VERSION: &str = env_or!("OTA_FIRMWARE_VERSION", env!("CARGO_PKG_VERSION"));

/// Where the app image lives: the output of `espflash save-image --chip esp32s3 <elf>
/// firmware.bin` (not the ELF, not a `--merge` image). `http://` or `https://`.
pub const FIRMWARE_URL: &str = env_or!("OTA_FIRMWARE_URL", "http://example.com/ota/firmware.bin");

/// Where the manifest made by `cargo run --example sign_image -- sign ...` lives.
///
/// Keep one: without a manifest the device cannot tell whether the image on the server is
/// the one it runs, so it downloads and installs it again on every boot. Set
/// `OTA_MANIFEST_URL=` (empty) to build without one anyway (for a first test).
pub const MANIFEST_URL: Option<&str> = non_empty(env_or!(
    "OTA_MANIFEST_URL",
    "http://example.com/ota/firmware.bin.manifest"
));

/// The Ed25519 public key manifests must be signed with (printed by
/// `sign_image keygen` / `sign_image pubkey`). Without one the update is refused
/// (`ConfigError::NoPublicKey`) unless [`ALLOW_UNSIGNED`] says otherwise.
pub const PUBLIC_KEY: Option<[u8; 32]> = match option_env!("OTA_PUBLIC_KEY") {
    Some(hex) if !hex.is_empty() => Some(hex32(hex)),
    _ => None,
};

/// Install images no signature vouches for (no [`PUBLIC_KEY`]): then anyone who can alter
/// the HTTP traffic can install any firmware. Bench use only.
pub const ALLOW_UNSIGNED: bool = env_flag(option_env!("OTA_ALLOW_UNSIGNED"));

/// This firmware's product name: manifests for another product are refused. Sign with the
/// same name (`sign_image sign --product <this>`). 1-64 letters, digits, `.`, `_`, `-`.
#[cfg(not(feature = "sim7600"))]
pub const PRODUCT: &str = env_or!("OTA_PRODUCT", "7semi-ec200u-example");
/// This firmware's product name (the SIM7600 configuration's default differs from the
/// 7Semi board's, so neither installs the other's images).
#[cfg(feature = "sim7600")]
pub const PRODUCT: &str = env_or!("OTA_PRODUCT", "esp32-sim7600-example");

/// This board's hardware revision, if its builds differ by revision: a manifest that names
/// a revision (`sign_image sign --hardware <rev>`) must name this one.
pub const HARDWARE: Option<&str> = non_empty(env_or!("OTA_HARDWARE", ""));

/// Accept a manifest that offers an older version than [`FIRMWARE_VERSION`].
pub const ALLOW_DOWNGRADE: bool = false;

/// HTTPS settings, used when a URL starts with `https://`. `None` uses the crate's defaults
/// (verify the server, SNI on, no CA upload: the modem must already trust the server). To
/// upload a CA certificate, for example:
///
/// ```ignore
/// pub const TLS: Option<Tls<'static>> = Some(Tls {
///     ssl_ctx: 1,
///     version: cellular_ota::quectel::ssl::SslVersion::All,
///     sec_level: cellular_ota::quectel::ssl::SecLevel::VerifyServer,
///     sni: true,
///     ignore_local_time: true,
///     ca_cert: Some(cellular_ota::update::CaCert { file: "UFS:ca.pem", pem: include_bytes!("../ca.pem") }),
/// });
/// ```
pub const TLS: Option<Tls<'static>> = None;

/// How often a running device asks the server for a newer version; also how long it waits
/// after a *permanent* failure (a refused manifest, an image that does not fit, a 404, an
/// image the bootloader would not start) or after a new image was rejected and rolled back.
/// A *transient* failure (link, modem reboot, timeout, server 5xx) is retried on the
/// crate's backoff schedule instead ([`cellular_ota::retry::Backoff`]: at once, then 30 s,
/// 2 min, 10 min, then every hour, each ±20 %), with a fresh modem bring-up before every
/// attempt; see [`crate::schedule`].
pub const UPDATE_CHECK_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);

/// Chunk size of a ranged download; also the size of the buffer that holds a chunk (and the
/// manifest). 4 KiB is one flash sector.
pub const CHUNK_SIZE: usize = 4096;

/// Whether the flashed second-stage bootloader was built with
/// `CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE=y` (see the README). With `true`, a new image is
/// selected in state NEW and must confirm itself after its first boot, or the bootloader
/// returns to the previous one at the next reset. espflash's stock bootloader has no
/// rollback: keep `false` with it (the self-test still marks a failing image invalid, but a
/// new image that hangs before its self-test is not rolled back).
pub const ROLLBACK_BOOTLOADER: bool = env_flag(option_env!("OTA_ROLLBACK_BOOTLOADER"));

// ---------------------------------------------------------------------------------------------
// The modem's own firmware (modem_fota)

/// The EC200U FOTA package (`.pack`, made by Quectel for your exact source revision), served
/// over HTTP(S). At most 255 bytes.
pub const MODEM_FOTA_URL: &str =
    env_or!("OTA_MODEM_FOTA_URL", "http://example.com/ec200u/fota.pack");

/// Longest silence while the module downloads the package (between its
/// `+QIND: "FOTA","DOWNLOADING"` reports, or until `HTTPEND`). Quectel's own harness allows
/// 300 s for the whole download; raise it for a large package on a slow cell.
pub const MODEM_FOTA_DOWNLOAD_GAP: Duration =
    cellular_ota::quectel::fota::FOTA_DOWNLOAD_END_TIMEOUT;

/// Longest silence while the module reboots and upgrades (between two reports, until
/// `END`). Real upgrades took 8 to 20 minutes on other Quectel modules, reporting progress
/// along the way.
pub const MODEM_FOTA_UPGRADE_GAP: Duration = cellular_ota::quectel::fota::FOTA_UPGRADE_END_TIMEOUT;

/// After `END,0`: how long the module may take to reboot and answer `AT` again.
pub const MODEM_FOTA_READY_TIMEOUT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------------
// Cellular network

/// The APN of your SIM's operator.
pub const APN: &str = env_or!("OTA_APN", "internet");

/// APN user name; usually empty.
pub const APN_USER: &str = env_or!("OTA_APN_USER", "");

/// APN password; usually empty.
pub const APN_PASSWORD: &str = env_or!("OTA_APN_PASSWORD", "");

/// APN authentication (none, PAP, CHAP, PAP or CHAP).
pub const APN_AUTH: Auth = Auth::None;

/// The PDP context for HTTP and FOTA (1 on almost every SIM).
pub const PDP_CONTEXT: u8 = 1;

/// The SIM PIN, if the SIM asks for one.
pub const SIM_PIN: Option<&str> = non_empty(env_or!("OTA_SIM_PIN", ""));

/// Longest wait for network registration (`AT+CEREG?` home or roaming). The first
/// registration of a new SIM can take minutes.
pub const REGISTRATION_TIMEOUT: Duration = Duration::from_secs(180);

// ---------------------------------------------------------------------------------------------
// Board wiring

/// UART baud rate between the ESP32 and the modem at start: the module's saved rate (the
/// EC200U's factory default is 115200, 8N1, no flow control).
pub const MODEM_BAUD: u32 = 115_200;

/// Faster rates to negotiate, fastest first (`cellular_ota::baud::negotiate`: each is set
/// with `AT+IPR` (not saved), proven with a file round trip, and dropped if the link garbles
/// it or the module restarts). Empty: stay at [`MODEM_BAUD`].
///
/// 921600 is the fastest this board's interrupt-driven UART without RTS/CTS sustains while
/// it programs flash: the CPU cannot empty the 128-byte FIFO during a page program (0.4 ms
/// typical), and 128 bytes take 1.4 ms at 921600 but 0.43 ms at 3000000. The EC2x list goes
/// on with 2900000 to 4000000 (quectel-at.md §1); with `uart-dma` and the slot erased in idle
/// time 3000000 is within reach, but the 32 KiB DMA ring then lasts only 110 ms, less than a
/// block erase, so it is not offered by default.
pub const MODEM_RATES: &[u32] = &[921_600, 460_800, 230_400];

/// GPIO the ESP32 receives on (wired to the modem's TXD).
#[cfg(all(feature = "esp32s3", not(feature = "sim7600")))]
pub const MODEM_RX_GPIO: u8 = 12;
/// GPIO the ESP32 sends on (wired to the modem's RXD).
#[cfg(all(feature = "esp32s3", not(feature = "sim7600")))]
pub const MODEM_TX_GPIO: u8 = 13;
/// GPIO driving the modem's PWRKEY, or `None` if the modem powers up by itself.
///
/// **Medium confidence**: GPIO10 comes from one community project for this board (reference
/// `esp-idf-ota.md` §5), not from a 7Semi schematic. The example only pulses it when the
/// modem does not answer `AT`, so a wrong pin costs nothing on a modem that starts by itself.
#[cfg(all(feature = "esp32s3", not(feature = "sim7600")))]
pub const MODEM_PWRKEY_GPIO: Option<u8> = Some(10);

// The SIM7600 tutorial's wiring (feature `sim7600`): UART2 on GPIO16 (RX) and GPIO17 (TX),
// PWRKEY on GPIO4. The tutorial's board is a classic ESP32; these numbers are valid GPIOs of
// the ESP32-S3 as well.
/// GPIO the ESP32 receives on (wired to the SIM7600's TXD).
#[cfg(all(feature = "esp32s3", feature = "sim7600"))]
pub const MODEM_RX_GPIO: u8 = 16;
/// GPIO the ESP32 sends on (wired to the SIM7600's RXD).
#[cfg(all(feature = "esp32s3", feature = "sim7600"))]
pub const MODEM_TX_GPIO: u8 = 17;
/// GPIO driving the SIM7600's PWRKEY.
#[cfg(all(feature = "esp32s3", feature = "sim7600"))]
pub const MODEM_PWRKEY_GPIO: Option<u8> = Some(4);

// ESP32-C3 proxy pins: only so that the same source compiles (and runs on a C3 board wired
// to an EC200U module the same way). Free pins on an ESP32-C3-DevKitM-1.
/// GPIO the ESP32 receives on (wired to the modem's TXD).
#[cfg(feature = "esp32c3")]
pub const MODEM_RX_GPIO: u8 = 5;
/// GPIO the ESP32 sends on (wired to the modem's RXD).
#[cfg(feature = "esp32c3")]
pub const MODEM_TX_GPIO: u8 = 4;
/// GPIO driving the modem's PWRKEY, or `None` if the modem powers up by itself.
#[cfg(feature = "esp32c3")]
pub const MODEM_PWRKEY_GPIO: Option<u8> = Some(6);

/// The GPIO level that presses PWRKEY. On the 7Semi board (and most carrier boards) the
/// GPIO drives PWRKEY through an inverting transistor, so HIGH presses it.
pub const PWRKEY_ACTIVE_HIGH: bool = true;

/// How long PWRKEY is pressed to switch the modem on. The EC200U needs at least 2 s; at
/// 3 s or more a running modem switches off, so stay in between (reference §5).
#[cfg(not(feature = "sim7600"))]
pub const PWRKEY_ON_PULSE: Duration = Duration::from_millis(2_500);
/// How long PWRKEY is pressed to switch the SIM7600 on: LilyGO's boards pulse it 500 ms
/// (esp-idf-ota.md §5, "fallback boards"); 3 s switches a running module off.
#[cfg(feature = "sim7600")]
pub const PWRKEY_ON_PULSE: Duration = Duration::from_millis(500);

/// Longest wait for the modem to answer `AT`: after power-up (7 to 30 s on Quectel modules)
/// and again after the PWRKEY pulse.
pub const MODEM_BOOT_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether the modem's UART receives by DMA (Cargo feature `uart-dma`), for
/// `UpdateConfig::rx_dma`. Set `rx_dma` from this only where the client's transport really
/// is `uart_dma::DmaUart` (built by `modem_uart_dma`): with the interrupt-driven
/// UART, `rx_dma = true` makes the update erase flash while the body arrives and lose bytes.
pub const RX_DMA: bool = cfg!(feature = "uart-dma");

/// Print every byte exchanged with the modem in the transcript format (`-> ` / `<- ` lines)
/// that `cargo run --example explain` reads. Slow: every payload byte is printed too, so
/// keep it off for downloads unless the console is the USB-serial-JTAG port.
pub const TRACE_AT: bool = env_flag(option_env!("OTA_TRACE_AT"));

// ---------------------------------------------------------------------------------------------
// Compile-time helpers for the environment variables above.

/// `None` for an empty string.
const fn non_empty(s: &str) -> Option<&str> {
    if s.is_empty() { None } else { Some(s) }
}

/// `1`, `true`, `yes` or `on` (lower case) is true; anything else, or unset, is false.
const fn env_flag(v: Option<&str>) -> bool {
    match v {
        Some(s) => matches!(s.as_bytes(), b"1" | b"true" | b"yes" | b"on"),
        None => false,
    }
}

/// 64 hex digits to 32 bytes, at compile time.
const fn hex32(s: &str) -> [u8; 32] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => panic!("OTA_PUBLIC_KEY: not a hex digit"),
        }
    }
    let b = s.as_bytes();
    if b.len() != 64 {
        panic!("OTA_PUBLIC_KEY must be 64 hex digits (32 bytes)");
    }
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}
