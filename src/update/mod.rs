//! From a URL to a verified, activated image: the update flow.
//!
//! ```text
//! manifest (optional) ──► decide (up to date? downgrade? signature?)
//!        │
//!        ▼
//! sink.begin ──► resume offset ──► re-hash the durable prefix from flash
//!        │
//!        ▼
//! transfer by strategy (stream / ranged / modem-file) ──► sink.write, SHA-256
//!        │
//!        ▼
//! compare SHA-256 with the manifest ──► sink.finish (reads the image back, checks it the
//!                                        way the bootloader will, then activates)
//! ```
//!
//! # The modem it expects
//!
//! The flow speaks to the modem only through [`HttpModem`] ([`update_with`]); [`update`] and
//! [`update_blocking`] run it over [`QuectelHttp`](crate::quectel::QuectelHttp), described
//! here. Ranged requests and the module's file system are optional capabilities of the trait.
//!
//! The flow sends only HTTP(S), SSL and file commands: bring the modem up first, with
//! [`crate::bring_up`] (or the same steps yourself): echo off, numeric `+CME ERROR` codes,
//! URCs routed to the port the client is on (`+QHTTPGET:` arrives as a URC; a module whose
//! saved `AT+QURCCFG="urcport"` is another port times out at [`Stage::Request`]), chatty
//! URCs off, registered, and the PDP context [`UpdateConfig::context_id`] active. After a
//! failure, bring it up again before the next call: a modem that rebooted has lost all of
//! that. [`crate::retry`] says whether and when to call again.
//!
//! The flow is written once, async ([`update`]); [`update_blocking`] drives the very same
//! code with the blocking client. It prints nothing: progress goes to the caller's
//! [`Progress`] callback and every failure is an [`UpdateError`] naming the [`Stage`], the
//! modem's code and its meaning, and how many bytes were durable. On every exit the modem is
//! left ready for the next command: the HTTP session is stopped, request-header mode is
//! switched off and any module file is closed.
//!
//! # Strategies
//!
//! * [`Strategy::Stream`]: one `AT+QHTTPGET` and one `AT+QHTTPREAD` of the whole body,
//!   written to flash straight out of the receive buffer, each 64 KiB flash block erased
//!   just before the body reaches it. While a block erases the CPU cannot read the UART:
//!   use it with RTS/CTS flow control, or with UART DMA ([`UpdateConfig::rx_dma`]), where
//!   it is the fastest method because erase and transfer overlap.
//! * [`Strategy::Ranged`]: host-paced chunks. Each chunk is requested with
//!   `AT+QHTTPGETEX` where the module has it, else with a `Range:` header in request-header
//!   mode; it is read completely into the chunk buffer before flash is touched, and the next
//!   range is requested before the current chunk is written, so the modem fetches while the
//!   flash works. Each answer must be `206` with the chunk's length; a server that ignores
//!   `Range` (`200`) makes the flow fall back to streaming the rest. In request-header mode the
//!   last 512 bytes of the chunk buffer (at most half of it) hold the request block, so the
//!   chunk is that much smaller.
//! * [`Strategy::ModemFile`]: `AT+QHTTPREADFILE` into the module's UFS (after checking free
//!   space with `AT+QFLDS`), then `AT+QFOPEN` / `AT+QFREAD` chunks. A file already complete in
//!   UFS (after an MCU reset) is reused; one the module still holds open from before the
//!   reset (`+CME ERROR: 426`) cannot be, and the rest comes by ranges instead
//!   ([`Progress::Fallback`]).
//! * [`Strategy::Auto`]: a stream into flash erased ahead ([`Method::StreamErasedAhead`]:
//!   the sectors are erased after the request, before the read, and the body is written in
//!   page-sized pieces, so no flash stall outlasts the UART's FIFO; with or without RTS/CTS).
//!   With [`UpdateConfig::rx_dma`] it streams with [`Method::Stream`] instead, erasing while
//!   the body arrives. When resuming: ranges from the resume point (GETEX if
//!   `AT+QHTTPGETEX=?` answers OK, else a `Range:` header). The choice is reported as
//!   [`Progress::Strategy`].
//!
//! By default ranges are [`UpdateConfig::range_size`] (512 KiB) long and also go straight
//! into flash (erased before each range is read, or as it arrives with
//! [`UpdateConfig::rx_dma`]); with `range_size: None` they are chunk-sized and buffered.
//!
//! # Resuming
//!
//! The sink keeps the resume point ([`OtaSink::begin`]); the
//! flow re-hashes what is already in flash and asks the server only for the rest. A new
//! update for the same image (same manifest SHA-256, or same URL and length without a
//! manifest) continues; a different image starts clean.

mod flow;
pub mod http_modem;
pub mod module_fota;

pub use flow::{update, update_with};
pub use http_modem::{HttpBody, HttpClientError, HttpModem, HttpStatus, ModemFailure};

use core::fmt;

use crate::client::{Error as ClientError, ModemCode, Rejection, UrcHandler, blocking};
use crate::ota::manifest::{Field, ManifestError, Policy, Version, validate_id};
use crate::ota::{AsyncOtaSink, ExpectedImage, ImageDescriptor, OtaSink, Resume};
use crate::quectel::ChipFamily;
use crate::quectel::error::{CmeError, HttpError, describe};
use crate::quectel::file::check_name;
use crate::quectel::http::parse_url;
use crate::quectel::ssl::{MAX_SSL_CONTEXT, SecLevel, SslVersion};

/// How to fetch the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Strategy {
    /// Choose from the modem's abilities, flow control and resume state.
    #[default]
    Auto,
    /// One GET, one read of the whole body.
    Stream,
    /// Host-paced ranged requests (GETEX, or a `Range:` header).
    Ranged,
    /// Download into the module's file system, then read it in chunks.
    ModemFile,
}

/// The method the flow actually used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Method {
    /// One `AT+QHTTPREAD` of the whole body, each 64 KiB flash block erased just before the
    /// body reaches it (needs RTS/CTS or [`UpdateConfig::rx_dma`]: the CPU cannot read the
    /// UART while a block erases).
    Stream,
    /// One `AT+QHTTPREAD` of the whole body into flash erased ahead (after the request,
    /// before the read), written in page-sized pieces, so no long flash stall falls inside
    /// the payload: safe without flow control.
    StreamErasedAhead,
    /// Chunks requested with `AT+QHTTPGETEX`.
    RangedGetex,
    /// Chunks requested with a `Range:` header in request-header mode.
    RangedHeader,
    /// `AT+QHTTPREADFILE` into UFS, then `AT+QFREAD` chunks.
    ModemFile,
}

/// Whether `url` is an `https://` URL (any case).
pub(crate) fn is_https(url: &str) -> bool {
    url.len() >= 8 && url.as_bytes()[..8].eq_ignore_ascii_case(b"https://")
}

/// A modem capability that not every [`HttpModem`] has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Capability {
    /// Requests for a byte range ([`Strategy::Ranged`], resuming with ranges).
    RangedRequests,
    /// A file system in the module to download into ([`Strategy::ModemFile`]).
    ModemFile,
    /// HTTPS that checks the server's certificate ([`Tls::sec_level`] other than
    /// `SecLevel::None`): the SIM800-style command set cannot; the `AT+SH*` set would need
    /// its certificate upload and conversion, which this crate does not drive yet.
    ServerVerification,
    /// The sink reads the running image ([`OtaSink::read_running`]), the base a delta patch
    /// applies to.
    RunningImage,
}

impl Capability {
    /// What the capability is, in a few words.
    pub const fn name(self) -> &'static str {
        match self {
            Capability::RangedRequests => "ranged requests",
            Capability::ModemFile => "file system to download into",
            Capability::ServerVerification => "HTTPS with the server's certificate checked",
            Capability::RunningImage => "reading the running image (a delta's base)",
        }
    }
}

/// HTTPS settings: an SSL context bound to the HTTP session with `sslctxid`.
#[derive(Clone, Copy, Debug)]
pub struct Tls<'a> {
    /// SSL context 0..=5.
    pub ssl_ctx: u8,
    /// TLS version (`All` lets the module negotiate).
    pub version: SslVersion,
    /// Certificate verification level.
    pub sec_level: SecLevel,
    /// Send SNI (needed by servers hosting several names).
    pub sni: bool,
    /// Skip the certificate validity-date check (modules without network time).
    pub ignore_local_time: bool,
    /// A CA certificate to upload (checked by size and XOR checksum) and use.
    pub ca_cert: Option<CaCert<'a>>,
}

impl Default for Tls<'_> {
    fn default() -> Self {
        Tls {
            ssl_ctx: 1,
            version: SslVersion::All,
            sec_level: SecLevel::VerifyServer,
            sni: true,
            ignore_local_time: true,
            ca_cert: None,
        }
    }
}

/// A CA certificate for HTTPS.
#[derive(Clone, Copy, Debug)]
pub struct CaCert<'a> {
    /// Module file name, e.g. `UFS:ca.pem`.
    pub file: &'a str,
    /// The PEM bytes.
    pub pem: &'a [u8],
}

/// What to update from, and how.
#[derive(Clone, Copy, Debug)]
pub struct UpdateConfig<'a> {
    /// The image URL (`http://` or `https://`, at most 700 bytes).
    pub url: &'a str,
    /// The manifest URL (`ota::manifest`). Without one, the image's identity is its URL and
    /// length, and its integrity rests on the read-back check and the sink's own format
    /// checks: allowed only with [`allow_unsigned`](Self::allow_unsigned).
    pub manifest_url: Option<&'a str>,
    /// Require a manifest signed with this Ed25519 key: an unsigned or badly signed manifest
    /// is refused, and so is a configuration with a key but no
    /// [`manifest_url`](Self::manifest_url) ([`ConfigError::KeyWithoutManifest`]) or no
    /// [`running_version`](Self::running_version)
    /// ([`ConfigError::RunningVersionRequired`]).
    pub public_key: Option<[u8; 32]>,
    /// Install images that no signature vouches for: no key, an unsigned manifest or none at
    /// all. An explicit opt-in for development and for links that are authenticated
    /// otherwise (see the crate's threat model); without a key and without this,
    /// [`update`] refuses to start ([`ConfigError::NoPublicKey`]).
    pub allow_unsigned: bool,
    /// This device's product: a manifest for another product is refused
    /// ([`ManifestError::OtherProduct`]). Required with a manifest.
    pub product: Option<&'a str>,
    /// This device's hardware revision: a manifest that names a revision must name this
    /// one ([`ManifestError::OtherHardware`]).
    pub hardware: Option<&'a str>,
    /// The version running now; with a manifest, an equal version means "up to date" and
    /// an older one is refused. Required with a key: with an unknown running version any
    /// older signed manifest could be replayed. A device always knows it (compile it in,
    /// `env!("CARGO_PKG_VERSION")`, or read the running app's descriptor); a factory image
    /// that really has none can say `0.0.0`, which states the risk in the configuration.
    pub running_version: Option<Version<'a>>,
    /// Accept a manifest offering an older version.
    pub allow_downgrade: bool,
    /// How to fetch.
    pub strategy: Strategy,
    /// Chunk size for modem-file transfers and buffered ranges: at most the chunk buffer's
    /// length (in request-header mode buffered ranges use the buffer less its last 512
    /// bytes, which hold the request).
    pub chunk_size: u32,
    /// Size of each ranged request. `Some(n)`: ranges of `n` bytes go straight into flash
    /// that [`OtaSink::prepare`] erased before the read (or, with [`rx_dma`](Self::rx_dma),
    /// during it); one request and its network round trips per `n` bytes, so larger ranges
    /// waste less of the line (default 512 KiB: two 80 ms round trips per 5.7 s of payload
    /// at 921 600 baud; the README's "Measured" section has the simulator's figures). A resume
    /// restarts at the last durable sector, not at the range start, so the size costs
    /// nothing after a drop. `None`: buffered ranges of
    /// `chunk_size`, each read completely into the chunk buffer before flash is touched
    /// (safest for sinks whose writes stall long; one round trip per chunk).
    pub range_size: Option<u32>,
    /// Largest single sink write while a payload is arriving (a flash page: 256 bytes), so
    /// that each write stalls the UART for less than its hardware FIFO lasts.
    pub program_size: u32,
    /// PDP context for HTTP (`AT+QHTTPCFG="contextid"`).
    pub context_id: u8,
    /// HTTPS settings, used for `https://` URLs.
    pub tls: Option<Tls<'a>>,
    /// `AT+QHTTPGET` response time in seconds.
    pub response_time: u16,
    /// `AT+QHTTPREAD` longest gap between packets, in seconds.
    pub read_wait: u16,
    /// Module file for [`Strategy::ModemFile`].
    pub modem_file: &'a str,
    /// RTS/CTS is active between MCU and modem. Informational: [`Strategy::Auto`] chooses
    /// the same either way (erasing ahead is safe without flow control, and as fast as
    /// stalling the modem with it); [`Strategy::Stream`] needs it or [`rx_dma`](Self::rx_dma).
    pub flow_control: bool,
    /// The MCU's UART keeps receiving into RAM while flash is busy: UART DMA into internal
    /// RAM (ESP32-S3: UHCI with GDMA), which runs on while the CPU is stalled in a flash
    /// operation, with a buffer larger than what arrives during one 64 KiB block erase
    /// (W25Q-class flash: 150 ms typical, about 14 KB at 921 600 baud; 16 KiB or more).
    /// The flow then erases flash block by block while the body arrives, overlapping erase
    /// and transfer: [`Strategy::Auto`] streams with [`Method::Stream`] and ranges are not
    /// erased ahead. Keep RTS/CTS on as a backstop: a block erase may take up to 2 s.
    /// Default `false`: an interrupt-driven UART, whose interrupt cannot run while flash is
    /// busy, so only its hardware FIFO (128 bytes on ESP32-S3) catches bytes then.
    pub rx_dma: bool,
    /// The module's chipset family, if known (GETEX is probed regardless).
    pub family: Option<ChipFamily>,
}

impl<'a> UpdateConfig<'a> {
    /// Defaults: auto strategy, 4 KiB chunks, context 1, 60 s response and read waits,
    /// `UFS:ota.bin`, no flow control, no manifest, no key — which [`update`] refuses
    /// until you either configure [`signed`](Self::signed) updates or opt in with
    /// [`allow_unsigned`](Self::allow_unsigned).
    pub const fn new(url: &'a str) -> Self {
        UpdateConfig {
            url,
            manifest_url: None,
            public_key: None,
            allow_unsigned: false,
            product: None,
            hardware: None,
            running_version: None,
            allow_downgrade: false,
            strategy: Strategy::Auto,
            chunk_size: 4096,
            range_size: Some(512 * 1024),
            program_size: 256,
            context_id: 1,
            tls: None,
            response_time: 60,
            read_wait: 60,
            modem_file: "UFS:ota.bin",
            flow_control: false,
            rx_dma: false,
            family: None,
        }
    }

    /// Signed updates: the image at `url`, described by the manifest at `manifest_url`,
    /// which must be signed with `public_key` and name `product`; `running` is the version
    /// running now. Everything else as [`new`](Self::new).
    pub const fn signed(
        url: &'a str,
        manifest_url: &'a str,
        public_key: [u8; 32],
        product: &'a str,
        running: Version<'a>,
    ) -> Self {
        let mut c = UpdateConfig::new(url);
        c.manifest_url = Some(manifest_url);
        c.public_key = Some(public_key);
        c.product = Some(product);
        c.running_version = Some(running);
        c
    }

    /// Checks the configuration the way [`update`] does before it sends anything:
    /// `buf_len` is the chunk buffer's length, `write_size` the sink's
    /// ([`OtaSink::write_size`]). The first problem found is returned; see
    /// [`ConfigError`].
    pub fn validate(&self, buf_len: usize, write_size: u32) -> Result<(), ConfigError> {
        validate_config(self, buf_len, write_size)
    }

    /// The manifest policy this configuration asks for.
    fn policy(&self) -> Policy<'a> {
        Policy {
            public_key: self.public_key,
            product: self.product.unwrap_or(""),
            hardware: self.hardware,
            running: self.running_version,
            allow_downgrade: self.allow_downgrade,
        }
    }
}

/// The smallest chunk buffer [`update`] accepts: it holds the manifest
/// ([`MAX_MANIFEST_LEN`](crate::ota::manifest::MAX_MANIFEST_LEN), 1 KiB).
pub const MIN_CHUNK_BUFFER: usize = 1024;

/// A setting of [`UpdateConfig`] named by a [`ConfigError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Setting {
    /// [`UpdateConfig::url`].
    Url,
    /// [`UpdateConfig::manifest_url`].
    ManifestUrl,
    /// [`UpdateConfig::product`].
    Product,
    /// [`UpdateConfig::hardware`].
    Hardware,
    /// [`UpdateConfig::running_version`].
    RunningVersion,
    /// [`UpdateConfig::chunk_size`].
    ChunkSize,
    /// [`UpdateConfig::range_size`].
    RangeSize,
    /// [`UpdateConfig::program_size`].
    ProgramSize,
    /// [`UpdateConfig::response_time`].
    ResponseTime,
    /// [`UpdateConfig::read_wait`].
    ReadWait,
    /// [`UpdateConfig::context_id`].
    ContextId,
    /// [`UpdateConfig::modem_file`].
    ModemFile,
    /// [`Tls::ssl_ctx`].
    SslContext,
    /// [`CaCert::file`].
    CaCertFile,
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Setting::Url => "url",
            Setting::ManifestUrl => "manifest_url",
            Setting::Product => "product",
            Setting::Hardware => "hardware",
            Setting::RunningVersion => "running_version",
            Setting::ChunkSize => "chunk_size",
            Setting::RangeSize => "range_size",
            Setting::ProgramSize => "program_size",
            Setting::ResponseTime => "response_time",
            Setting::ReadWait => "read_wait",
            Setting::ContextId => "context_id",
            Setting::ModemFile => "modem_file",
            Setting::SslContext => "tls.ssl_ctx",
            Setting::CaCertFile => "tls.ca_cert.file",
        })
    }
}

/// Why [`update`] refused a configuration before sending anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ConfigError {
    /// A public key without a manifest URL: the key could check nothing, and the image
    /// would install unsigned.
    #[error("a public key is set but no manifest URL: nothing would be signature-checked")]
    KeyWithoutManifest,
    /// Neither a public key nor [`UpdateConfig::allow_unsigned`]: installing unsigned
    /// images must be asked for.
    #[error("no public key: configure one, or set allow_unsigned to install unsigned images")]
    NoPublicKey,
    /// A public key and [`UpdateConfig::allow_unsigned`] together: the two contradict.
    #[error("allow_unsigned contradicts the public key: choose one")]
    UnsignedWithKey,
    /// A public key without [`UpdateConfig::running_version`]: older signed manifests could
    /// be replayed.
    #[error("a public key needs the running version, or older manifests could be replayed")]
    RunningVersionRequired,
    /// A manifest URL without [`UpdateConfig::product`]: every manifest names the product it
    /// is for, and the device must name its own.
    #[error("a manifest URL needs the device's product")]
    ProductRequired,
    /// A text setting is not valid: a URL or file name the modem would not take (or that
    /// could break the AT line), a product or hardware name that is not an identifier, a
    /// running version that does not parse.
    #[error("`{setting}` is not valid")]
    Invalid {
        /// The setting.
        setting: Setting,
    },
    /// The chunk buffer is shorter than [`MIN_CHUNK_BUFFER`].
    #[error("the chunk buffer has {len} bytes, at least {min} are needed")]
    BufferTooSmall {
        /// The buffer's length.
        len: usize,
        /// The minimum.
        min: usize,
    },
    /// A size or time that must not be zero is zero.
    #[error("`{setting}` must not be zero")]
    Zero {
        /// The setting.
        setting: Setting,
    },
    /// A numeric setting is outside what the flow or the modem accepts
    /// (`chunk_size` larger than the buffer, `context_id` outside 1..=16, an SSL context
    /// outside 0..=5).
    #[error("`{setting}` is {value}, outside {min}..={max}")]
    OutOfRange {
        /// The setting.
        setting: Setting,
        /// Its value.
        value: u32,
        /// Smallest accepted.
        min: u32,
        /// Largest accepted.
        max: u32,
    },
    /// A size is not a whole number of the sink's write units
    /// ([`OtaSink::write_size`]).
    #[error("`{setting}` ({value}) is not a multiple of the sink's write size {unit}")]
    Misaligned {
        /// The setting.
        setting: Setting,
        /// Its value.
        value: u32,
        /// The sink's write size.
        unit: u32,
    },
    /// The configuration asks for something this build of the crate leaves out: a public
    /// key without the `signed-manifest` feature, [`Strategy::Ranged`] without `ranged`,
    /// [`Strategy::ModemFile`] without `modem-file`, an `https://` URL without `https`.
    /// Nothing is downgraded silently: enable the feature, or change the configuration.
    #[error("the configuration needs the crate feature `{feature}`, which this build leaves out")]
    FeatureDisabled {
        /// The missing feature.
        feature: Feature,
    },
}

/// An optional capability of the crate, a Cargo feature of the same name (all are on by
/// default). Named by [`ConfigError::FeatureDisabled`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Feature {
    /// `signed-manifest`: the Ed25519 check of [`UpdateConfig::public_key`].
    SignedManifest,
    /// `ranged`: [`Strategy::Ranged`] and resuming with ranged requests.
    Ranged,
    /// `modem-file`: [`Strategy::ModemFile`].
    ModemFile,
    /// `https`: `https://` URLs.
    Https,
}

impl Feature {
    /// The Cargo feature's name.
    pub fn name(self) -> &'static str {
        match self {
            Feature::SignedManifest => "signed-manifest",
            Feature::Ranged => "ranged",
            Feature::ModemFile => "modem-file",
            Feature::Https => "https",
        }
    }

    /// Whether this build of the crate has it.
    pub const fn enabled(self) -> bool {
        match self {
            Feature::SignedManifest => cfg!(feature = "signed-manifest"),
            Feature::Ranged => cfg!(feature = "ranged"),
            Feature::ModemFile => cfg!(feature = "modem-file"),
            Feature::Https => cfg!(feature = "https"),
        }
    }
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[inline(never)]
fn validate_config(c: &UpdateConfig<'_>, buf_len: usize, unit: u32) -> Result<(), ConfigError> {
    use ConfigError as E;
    // What this build leaves out is refused before anything else is judged.
    let needs = [
        (c.public_key.is_some(), Feature::SignedManifest),
        (c.strategy == Strategy::Ranged, Feature::Ranged),
        (c.strategy == Strategy::ModemFile, Feature::ModemFile),
        (
            is_https(c.url) || c.manifest_url.is_some_and(is_https),
            Feature::Https,
        ),
    ];
    for (needed, feature) in needs {
        if needed && !feature.enabled() {
            return Err(E::FeatureDisabled { feature });
        }
    }
    // Trust first: these decide whether an image can be installed at all.
    match (c.public_key.is_some(), c.allow_unsigned) {
        (true, true) => return Err(E::UnsignedWithKey),
        (false, false) => return Err(E::NoPublicKey),
        _ => {}
    }
    if c.public_key.is_some() {
        if c.manifest_url.is_none() {
            return Err(E::KeyWithoutManifest);
        }
        if c.running_version.is_none() {
            return Err(E::RunningVersionRequired);
        }
    }
    let invalid = |setting| E::Invalid { setting };
    parse_url(c.url).map_err(|_| invalid(Setting::Url))?;
    if let Some(url) = c.manifest_url {
        parse_url(url).map_err(|_| invalid(Setting::ManifestUrl))?;
        let product = c.product.ok_or(E::ProductRequired)?;
        validate_id(product, Field::Product).map_err(|_| invalid(Setting::Product))?;
    }
    if let Some(hardware) = c.hardware {
        validate_id(hardware, Field::Hardware).map_err(|_| invalid(Setting::Hardware))?;
    }
    if let Some(v) = &c.running_version {
        v.validate().map_err(|_| invalid(Setting::RunningVersion))?;
    }
    // Sizes.
    if buf_len < MIN_CHUNK_BUFFER {
        return Err(E::BufferTooSmall {
            len: buf_len,
            min: MIN_CHUNK_BUFFER,
        });
    }
    let unit = unit.max(1);
    let sizes = [
        (Setting::ChunkSize, Some(c.chunk_size)),
        (Setting::RangeSize, c.range_size),
        (Setting::ProgramSize, Some(c.program_size)),
    ];
    for (setting, value) in sizes {
        let Some(value) = value else { continue };
        if value == 0 {
            return Err(E::Zero { setting });
        }
        if value % unit != 0 {
            return Err(E::Misaligned {
                setting,
                value,
                unit,
            });
        }
    }
    let max = u32::try_from(buf_len).unwrap_or(u32::MAX);
    if c.chunk_size > max {
        return Err(E::OutOfRange {
            setting: Setting::ChunkSize,
            value: c.chunk_size,
            min: unit,
            max,
        });
    }
    for (setting, value) in [
        (Setting::ResponseTime, c.response_time),
        (Setting::ReadWait, c.read_wait),
    ] {
        if value == 0 {
            return Err(E::Zero { setting });
        }
    }
    if !(1..=16).contains(&c.context_id) {
        return Err(E::OutOfRange {
            setting: Setting::ContextId,
            value: u32::from(c.context_id),
            min: 1,
            max: 16,
        });
    }
    check_name(c.modem_file, false).map_err(|_| invalid(Setting::ModemFile))?;
    if let Some(tls) = &c.tls {
        if tls.ssl_ctx > MAX_SSL_CONTEXT {
            return Err(E::OutOfRange {
                setting: Setting::SslContext,
                value: u32::from(tls.ssl_ctx),
                min: 0,
                max: u32::from(MAX_SSL_CONTEXT),
            });
        }
        if let Some(ca) = &tls.ca_cert {
            check_name(ca.file, false).map_err(|_| invalid(Setting::CaCertFile))?;
        }
    }
    Ok(())
}

/// Progress reported to the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Progress {
    /// The manifest was read and accepted.
    Manifest {
        /// The offered image size.
        size: u32,
    },
    /// The method chosen, and why.
    Strategy {
        /// The method.
        method: Method,
        /// Why it was chosen.
        reason: &'static str,
    },
    /// The transfer starts (or resumes).
    Started {
        /// Image size.
        total: u32,
        /// Bytes already durable in flash for this image.
        resumed_from: u32,
    },
    /// Bytes durable in the sink so far.
    Bytes {
        /// Bytes written.
        done: u32,
        /// Image size.
        total: u32,
    },
    /// The method changed mid-way.
    Fallback {
        /// The new method.
        to: Method,
        /// Why.
        reason: &'static str,
    },
    /// All bytes are in; verifying.
    Verifying,
    /// Verified; the sink checks the image in flash and activates it.
    Activating,
}

/// What the update did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Outcome {
    /// The manifest offers the running version; nothing was downloaded.
    UpToDate,
    /// A new image was verified and activated; it boots at the next reset.
    Installed {
        /// The method used (the last one, after any fallback).
        method: Method,
        /// Image size.
        size: u32,
        /// SHA-256 of the image as read back from flash.
        sha256: [u8; 32],
        /// Bytes that were already durable when this update began.
        resumed_from: u32,
    },
}

/// Where an update failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Stage {
    /// Checking the [`UpdateConfig`] (nothing was sent to the modem).
    Config,
    /// Configuring HTTP(S) on the modem.
    Setup,
    /// Fetching or judging the manifest.
    Manifest,
    /// Sending a request (URL, GET, range).
    Request,
    /// The server's answer (status, length, range support).
    HttpStatus,
    /// Moving the body from the modem.
    Transfer,
    /// Checking what was written.
    Verification,
    /// Writing flash.
    Flash,
    /// The sink's final check of the stored image (SHA-256 read back from flash, the
    /// target's format, the version the image declares) and the switch of the boot slot.
    Activation,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Config => "configuration",
            Stage::Setup => "setup",
            Stage::Manifest => "manifest",
            Stage::Request => "request",
            Stage::HttpStatus => "HTTP status",
            Stage::Transfer => "transfer",
            Stage::Verification => "verification",
            Stage::Flash => "flash",
            Stage::Activation => "activation",
        })
    }
}

/// What went wrong.
#[derive(Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Failure {
    /// The configuration was refused before anything was sent.
    Config(ConfigError),
    /// The modem link: transport error, timeout, refused command (`+CME ERROR`), bad
    /// parameter.
    Modem(ClientError<embedded_io::ErrorKind>),
    /// The modem's HTTP layer reported an error (`+QHTTPGET: 7xx`, `+QHTTPREAD: 7xx`).
    Http(HttpError),
    /// Another vendor's HTTP client reported a code in place of a server answer (SIMCom:
    /// `+HTTPACTION: 0,706,0`, `+SHREQ: "GET",602,0`), with its meaning.
    HttpClient(HttpClientError),
    /// The server answered with this HTTP status.
    Status(u16),
    /// A length did not match.
    Length {
        /// Expected bytes.
        expected: u32,
        /// Bytes announced or received.
        got: u32,
    },
    /// The modem rebooted (`RDY`) in the middle of the update.
    ModemRebooted,
    /// The network deactivated the PDP context (`+QIURC: "pdpdeact"`).
    LinkLost,
    /// The manifest was malformed, unsigned, badly signed, for another product or hardware
    /// revision, or a downgrade.
    Manifest(ManifestError),
    /// The image does not fit the sink.
    TooLarge {
        /// Image size.
        size: u32,
        /// What the sink can take.
        capacity: u32,
    },
    /// The module's file system has too little space.
    NoSpace {
        /// Free bytes.
        free: u64,
        /// Bytes needed.
        needed: u32,
    },
    /// The body ended early inside the expected length (the modem's `OK` arrived among the
    /// body bytes): bytes were lost between modem and MCU. Enable RTS/CTS, or let
    /// [`Strategy::Auto`] erase flash ahead.
    BytesLost {
        /// Bytes missing, at least.
        at_least: u32,
    },
    /// The SHA-256 of what was written is not the manifest's.
    HashMismatch,
    /// An uploaded file's size or XOR checksum did not match.
    Checksum,
    /// The modem (its [`HttpModem`] implementation), the server (ranges for a patch, at
    /// [`Stage::HttpStatus`]: it answered a range with the whole file) or the sink
    /// ([`Capability::RunningImage`]) lacks a capability the update needs.
    Unsupported(Capability),
    /// The manifest's delta was made from another image than the one running: the running
    /// image's first `base-size` bytes do not hash to its `base-sha256`. Nothing was
    /// erased or downloaded; serve a patch from the running version, or the full image.
    WrongBase {
        /// The manifest's `base-sha256`.
        expected: [u8; 32],
        /// What the running image's bytes hash to.
        running: [u8; 32],
    },
    /// The patch (a delta or compressed payload) is malformed, or uses a format this
    /// decoder refuses.
    #[cfg(feature = "delta")]
    Patch(crate::delta::DeltaError),
    /// The sink failed (flash error, or its own verification before activation), as a
    /// [`SinkFault`](crate::ota::SinkFault): the flash driver's error reduced to its kind.
    Sink(#[cfg_attr(feature = "defmt", defmt(Debug2Format))] crate::ota::SinkFault),
}

/// The meaning of a timeout while waiting for an HTTP result.
const TIMEOUT_URC_PORT: &str = "the modem's result URC (+QHTTPGET:) did not arrive in time: a \
     module whose URCs go to another port (AT+QURCCFG=\"urcport\", saved in the module) \
     never shows them here, so bring the modem up with cellular_ota::bring_up, which routes \
     them to this port; otherwise the server or the network is slow";
/// The meaning of a timeout while a body arrives.
const TIMEOUT_BODY: &str =
    "the body stopped arriving before the deadline (a network stall, or a modem that restarted)";
/// The meaning of any other timeout.
const TIMEOUT_ANSWER: &str = "the modem did not answer in time";

/// A failed update: where, what, and how far it got. The running image is untouched.
#[derive(Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UpdateError {
    /// Where it failed.
    pub stage: Stage,
    /// What failed.
    pub failure: Failure,
    /// Bytes of the image durable in the sink (a retry resumes from there).
    pub bytes_done: u32,
}

impl UpdateError {
    /// The modem's numeric code, if the failure carries one.
    pub fn code(&self) -> Option<u16> {
        match &self.failure {
            Failure::Modem(ClientError::Rejected(Rejection::Cme(ModemCode::Numeric(n)))) => {
                Some(*n)
            }
            Failure::Modem(ClientError::Rejected(Rejection::Cme(ModemCode::Text(t)))) => {
                CmeError::from_text(t.as_bytes()).map(|e| e.code())
            }
            Failure::Http(e) => Some(e.code()),
            Failure::HttpClient(e) => Some(e.code),
            Failure::Status(s) => Some(*s),
            _ => None,
        }
    }

    /// A one-line meaning of the modem's code, if there is one; for a timeout, what most
    /// likely kept the answer away.
    pub fn meaning(&self) -> Option<&'static str> {
        match &self.failure {
            Failure::Status(_) => None,
            Failure::Http(e) => Some(e.meaning()),
            Failure::HttpClient(e) => Some(e.meaning),
            Failure::Modem(ClientError::Timeout) => Some(match self.stage {
                Stage::Manifest | Stage::Request | Stage::HttpStatus => TIMEOUT_URC_PORT,
                Stage::Transfer => TIMEOUT_BODY,
                _ => TIMEOUT_ANSWER,
            }),
            _ => self.code().map(describe),
        }
    }
}

impl fmt::Display for UpdateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "update failed at {} after {} bytes: ",
            self.stage, self.bytes_done
        )?;
        match &self.failure {
            Failure::Config(e) => write!(f, "{e}")?,
            Failure::Modem(e) => write!(f, "{e}")?,
            Failure::Http(e) => write!(f, "modem HTTP error {e}")?,
            Failure::HttpClient(e) => write!(f, "modem HTTP error {e}")?,
            Failure::Status(s) => write!(f, "server answered HTTP {s}")?,
            Failure::Length { expected, got } => write!(f, "expected {expected} bytes, got {got}")?,
            Failure::ModemRebooted => f.write_str("the modem rebooted")?,
            Failure::LinkLost => f.write_str("the network deactivated the PDP context")?,
            Failure::Manifest(e) => write!(f, "manifest: {e}")?,
            Failure::TooLarge { size, capacity } => {
                write!(f, "image of {size} bytes does not fit {capacity}")?
            }
            Failure::NoSpace { free, needed } => write!(
                f,
                "module file system has {free} bytes free, needs {needed}"
            )?,
            Failure::BytesLost { at_least } => write!(
                f,
                "the body came up at least {at_least} bytes short: bytes were lost between \
                 modem and MCU (enable RTS/CTS, or let Strategy::Auto erase flash ahead)"
            )?,
            Failure::HashMismatch => f.write_str("SHA-256 differs from the manifest")?,
            Failure::Checksum => f.write_str("uploaded file checksum mismatch")?,
            Failure::Unsupported(Capability::RangedRequests) if self.stage == Stage::HttpStatus => {
                f.write_str(
                    "the server ignored Range (200 with the whole file): a patch needs ranged \
                     requests",
                )?
            }
            Failure::Unsupported(Capability::RunningImage) => {
                f.write_str("the sink cannot read the running image (a delta's base)")?
            }
            Failure::Unsupported(c) => write!(f, "the modem has no {}", c.name())?,
            Failure::WrongBase { .. } => f.write_str(
                "the delta was made from another image than the one running (base-sha256 \
                 differs); nothing was erased",
            )?,
            #[cfg(feature = "delta")]
            Failure::Patch(e) => write!(f, "patch: {e}")?,
            Failure::Sink(e) => write!(f, "sink: {e}")?,
        }
        if let (Failure::Modem(_), Some(m)) = (&self.failure, self.meaning()) {
            write!(f, " ({m})")?;
        }
        Ok(())
    }
}

impl core::error::Error for UpdateError {}

/// A blocking [`OtaSink`] seen as an [`AsyncOtaSink`] whose futures complete at once.
#[derive(Debug)]
pub struct BlockingSink<'s, S>(pub &'s mut S);

impl<S: OtaSink> AsyncOtaSink for BlockingSink<'_, S> {
    type Error = S::Error;
    async fn begin(&mut self, image: &ImageDescriptor) -> Result<Resume, S::Error> {
        self.0.begin(image)
    }
    async fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), S::Error> {
        self.0.write(offset, data)
    }
    async fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), S::Error> {
        self.0.read(offset, buf)
    }
    async fn prepare(&mut self, offset: u32, len: u32) -> Result<(), S::Error> {
        self.0.prepare(offset, len)
    }
    async fn finish(&mut self, expected: &ExpectedImage<'_>) -> Result<(), S::Error> {
        self.0.finish(expected)
    }
    fn write_size(&self) -> u32 {
        self.0.write_size()
    }
    fn erased_ahead(&self) -> u32 {
        self.0.erased_ahead()
    }
    async fn abort(&mut self) -> Result<(), S::Error> {
        self.0.abort()
    }
    async fn read_running(&mut self, offset: u32, buf: &mut [u8]) -> Result<bool, S::Error> {
        self.0.read_running(offset, buf)
    }
    async fn save_state(&mut self, at: u32, state: &[u8]) -> Result<bool, S::Error> {
        self.0.save_state(at, state)
    }
    async fn load_state(&mut self, buf: &mut [u8]) -> Result<Option<usize>, S::Error> {
        self.0.load_state(buf)
    }
}

/// The blocking update: [`update`] driven to completion with the blocking client.
///
/// `buf` is the chunk buffer (4 KiB is a good size; at least [`MIN_CHUNK_BUFFER`], 1 KiB).
/// It also holds the manifest while it is read.
pub fn update_blocking<T, C, H, S>(
    client: &mut blocking::Client<'_, T, C, H>,
    sink: &mut S,
    config: &UpdateConfig<'_>,
    buf: &mut [u8],
    progress: &mut dyn FnMut(Progress),
) -> Result<Outcome, UpdateError>
where
    T: embedded_io::Read + embedded_io::Write + embedded_io::ReadReady,
    C: crate::at::Clock,
    H: UrcHandler,
    S: OtaSink,
{
    update_with_blocking(
        crate::quectel::QuectelHttp::new(client.as_async()),
        sink,
        config,
        buf,
        progress,
    )
}

/// The blocking twin of [`update_with`]: the flow over any [`HttpModem`] (for example
/// [`SimcomHttp`](crate::simcom::SimcomHttp) over the blocking client's
/// [`as_async`](blocking::Client::as_async)), driven to completion.
pub fn update_with_blocking<M, S>(
    modem: M,
    sink: &mut S,
    config: &UpdateConfig<'_>,
    buf: &mut [u8],
    progress: &mut dyn FnMut(Progress),
) -> Result<Outcome, UpdateError>
where
    M: HttpModem,
    S: OtaSink,
{
    let mut sink = BlockingSink(sink);
    crate::client::blocking::block_on(update_with(modem, &mut sink, config, buf, progress))
}

#[cfg(test)]
mod feature_tests {
    use super::*;

    /// A configuration that is valid in every build, to change one setting at a time.
    fn base() -> UpdateConfig<'static> {
        let mut c = UpdateConfig::new("http://example.com/fw.bin");
        c.allow_unsigned = true;
        c
    }

    fn refused(c: &UpdateConfig<'_>, feature: Feature) -> bool {
        c.validate(4096, 4) == Err(ConfigError::FeatureDisabled { feature })
    }

    #[test]
    fn what_a_build_leaves_out_is_refused_by_name() {
        assert_eq!(base().validate(4096, 4), Ok(()));

        let mut key = base();
        key.allow_unsigned = false;
        key.public_key = Some([7; 32]);
        key.manifest_url = Some("http://example.com/fw.manifest");
        key.product = Some("p");
        key.running_version = Version::parse("1.0.0").ok();
        assert_eq!(
            refused(&key, Feature::SignedManifest),
            !cfg!(feature = "signed-manifest")
        );

        let mut ranged = base();
        ranged.strategy = Strategy::Ranged;
        assert_eq!(refused(&ranged, Feature::Ranged), !cfg!(feature = "ranged"));

        let mut file = base();
        file.strategy = Strategy::ModemFile;
        assert_eq!(
            refused(&file, Feature::ModemFile),
            !cfg!(feature = "modem-file")
        );

        let mut https = base();
        https.url = "https://example.com/fw.bin";
        assert_eq!(refused(&https, Feature::Https), !cfg!(feature = "https"));
        let mut https_manifest = base();
        https_manifest.manifest_url = Some("HTTPS://example.com/fw.manifest");
        https_manifest.product = Some("p");
        assert_eq!(
            refused(&https_manifest, Feature::Https),
            !cfg!(feature = "https")
        );
    }

    #[test]
    fn features_know_their_names_and_builds() {
        for (f, name, on) in [
            (
                Feature::SignedManifest,
                "signed-manifest",
                cfg!(feature = "signed-manifest"),
            ),
            (Feature::Ranged, "ranged", cfg!(feature = "ranged")),
            (
                Feature::ModemFile,
                "modem-file",
                cfg!(feature = "modem-file"),
            ),
            (Feature::Https, "https", cfg!(feature = "https")),
        ] {
            assert_eq!(f.name(), name);
            assert_eq!(f.enabled(), on);
        }
    }
}
