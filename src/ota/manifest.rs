//! The update manifest: a tiny signed text file that says which image to install, for which
//! product.
//!
//! A manifest is published beside the firmware image (for example `firmware.bin.manifest`
//! next to `firmware.bin`). The device fetches it first — it is a few hundred bytes, so one
//! short HTTP read — and only then decides whether to download the image at all:
//!
//! 1. [`Manifest::parse`] the bytes (zero-copy, no allocation, never panics);
//! 2. [`decide`] against the device's [`Policy`]: verify the signature, check that the
//!    manifest names this product (and hardware revision), refuse downgrades, skip an image
//!    that is already running;
//! 3. on [`Decision::Update`], stream the image into an [`OtaSink`](super::OtaSink) with
//!    [`Manifest::image_descriptor`] and let the sink check [`Manifest::expected_image`]
//!    (the SHA-256, and the version the image carries in its own header) before it
//!    activates anything.
//!
//! The signature covers the product, hardware revision, version, size and SHA-256 of the
//! image, so the one Ed25519 verification here plus the sink's hash check authenticate every
//! byte of the image and bind it to one product.
//!
//! # Format (version 2)
//!
//! ```text
//! cellular-ota-manifest 2
//! product 7semi-ec200u-logger
//! hardware rev-b
//! version 1.4.2
//! size 1572864
//! sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//! signature baf3934caeb9…(128 hex digits)
//! ```
//!
//! - **Encoding.** Printable ASCII (`0x20..=0x7E`) and tab only, in lines ended by LF or CRLF;
//!   the last line may lack its line ending. Any other byte — UTF-8, a byte-order mark, a
//!   control character, a CR not followed by LF — is [`ManifestError::InvalidByte`].
//! - **Limits.** The whole file is at most [`MAX_MANIFEST_LEN`] (1024) bytes
//!   ([`ManifestError::TooLarge`]); a line is at most [`MAX_LINE_LEN`] (256) bytes without
//!   its line ending ([`ManifestError::LineTooLong`]).
//! - **Lines.** Spaces and tabs at the start and end of a line are ignored. A line is a key,
//!   then one or more spaces or tabs, then the value (which runs to the end of the line). A
//!   key is a lowercase ASCII letter followed by lowercase letters, digits, `-` or `_`
//!   (anything else is [`ManifestError::BadLine`]); keys are case-sensitive. Empty lines and
//!   lines whose first non-blank character is `#` (comments) are ignored.
//! - **Header.** Line 1 must be `cellular-ota-manifest <format>` ([`ManifestError::BadHeader`]
//!   otherwise, including for an empty file). This parser reads format `2` only. Format `1`
//!   (which named no product) is [`ManifestError::Outdated`]: re-sign the image with
//!   `sign_image` to publish a format-2 manifest. Format `3` is format 2 plus the
//!   [payload keys](#format-3-compressed-images-and-deltas). Any other number is
//!   [`ManifestError::UnsupportedFormat`]. The header may not appear again.
//! - **Keys**, in any order after the header, each at most once
//!   ([`ManifestError::Duplicate`]):
//!
//!   | key | required | value |
//!   |---|---|---|
//!   | `product` | yes | the product the image is for, see [identifiers](#identifiers) ([`ManifestError::BadId`]) |
//!   | `hardware` | no | the hardware revision the image is for; absent: every revision of the product |
//!   | `version` | yes | `MAJOR.MINOR.PATCH[-PRE]`, see [`Version::parse`] ([`ManifestError::BadVersion`]) |
//!   | `size` | yes | image length in bytes, decimal, `1..=4294967295`, no sign, no leading zeros ([`ManifestError::BadSize`]) |
//!   | `sha256` | yes | SHA-256 of the image, 64 hex digits, either case ([`ManifestError::BadHex`]) |
//!   | `signature` | no | Ed25519 signature of the [signed message](#the-signed-message), 128 hex digits, either case ([`ManifestError::BadHex`]) |
//!
//!   A missing required key is [`ManifestError::Missing`].
//! - **Unknown keys** (for example `notes Fixes the modem reboot loop` or `built 2026-11-20`)
//!   are accepted and ignored, may repeat, and their value may contain spaces. This keeps
//!   devices working when a publisher adds informational lines. They are **not signed**:
//!   never put anything a device acts on into an unknown key. A future format that needs
//!   more signed fields gets a new header number, which this parser rejects.
//!
//! # Format 3: compressed images and deltas
//!
//! A format-3 manifest describes the same image (`size`, `sha256`, `version`) and says what
//! the image URL serves instead of the image itself ([`Payload`]):
//!
//! | key | when | value |
//! |---|---|---|
//! | `payload` | always (format 3) | `full`, `compressed` (a detools sequential patch from nothing) or `delta` (a detools sequential patch from the running image) |
//! | `payload-size` | `compressed`, `delta` | the served file's length, decimal, at least 1 |
//! | `payload-sha256` | `compressed`, `delta` | the served file's SHA-256, 64 hex digits |
//! | `base-size` | `delta` | the length of the image the patch applies to |
//! | `base-sha256` | `delta` | that image's SHA-256: a device running anything else refuses the patch before it downloads it |
//!
//! A missing key is [`ManifestError::Missing`]; a key of another payload kind, or an
//! unknown `payload` value, is [`ManifestError::BadPayload`]. In format 2 these keys are
//! unknown keys (ignored, unsigned): a format-2 manifest always describes a full image. The
//! signed message of a format-3 manifest starts with `cellular-ota-manifest 3` and has the
//! payload lines, in the order of the table, after `sha256`. [`write_manifest`] writes
//! format 2 for [`Payload::Full`] and format 3 otherwise.
//!
//! # Identifiers
//!
//! `product` and `hardware` are 1 to [`MAX_ID_LEN`] (64) bytes of ASCII letters, digits,
//! `.`, `_` and `-`, compared exactly (case-sensitive). Pick a product name per firmware
//! line that must never run another line's image (`7semi-ec200u-logger`,
//! `pump-controller`), and a hardware revision where one product has boards that need
//! different builds. [`validate_id`] checks a name.
//!
//! # The signed message
//!
//! The signature is not computed over the file. It is computed over a canonical message
//! rebuilt from the parsed values, so reformatting the file (CRLF, extra blanks, comments,
//! key order, hex case, unknown keys) never breaks a signature, and no reformatting can make
//! a signature cover different values. The message is exactly these LF-terminated lines,
//! with single spaces, the `hardware` line only if the manifest has one, the version as
//! written by [`Version`]'s `Display` (`MAJOR.MINOR.PATCH` or `MAJOR.MINOR.PATCH-PRE`), the
//! size in decimal without leading zeros, and the hash in lowercase hex:
//!
//! ```text
//! cellular-ota-manifest 2\n
//! product 7semi-ec200u-logger\n
//! hardware rev-b\n
//! version 1.4.2\n
//! size 1572864\n
//! sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n
//! ```
//!
//! It is at most [`MAX_SIGNED_MESSAGE_LEN`] bytes; [`Manifest::signed_message`] writes it.
//! The signature is plain Ed25519 (RFC 8032, not prehashed, no context), 64 bytes `R || S`.
//! The first line doubles as a domain separator: a key used for this format signs nothing
//! else that could be mistaken for a manifest, and a format-1 signature never verifies as
//! format 2. [`write_manifest`] writes a file that is the signed message followed by the
//! `signature` line.
//!
//! # Security
//!
//! With a public key, [`decide`] accepts only a manifest whose signature verifies, so every
//! signed value comes from the key holder. It then refuses a manifest for another product
//! or hardware revision ([`ManifestError::OtherProduct`], [`ManifestError::OtherHardware`]),
//! and, because the device always knows its own version when it has a key
//! ([`ManifestError::RunningVersionUnknown`] otherwise), a replayed older manifest is
//! refused as a downgrade (unless downgrades are allowed) and the same version is reported
//! as up to date. The sink then checks that the image carries the manifest's version in its
//! own header (ESP-IDF: `esp_app_desc_t.version`), so a build published under the wrong
//! version is refused before it can boot.
//!
//! Without a key, unsigned manifests are accepted and the SHA-256 only detects corruption:
//! whoever can alter the HTTP response (plain HTTP over cellular, a compromised server or
//! CDN) can install any firmware, and the product and downgrade checks are worth nothing
//! because those values can be forged too. Run without a key only in development or where
//! the transport itself is authenticated and the server trusted.
//!
//! Not covered even with a key: a stolen signing key; an attacker who keeps a device on its
//! current version by withholding newer manifests (manifests do not expire); what the
//! running firmware does with its own integrity (use the chip's secure boot for that).
//!
//! # Example
//!
//! The key below is the RFC 8032 §7.1 test key; never use it for real devices.
//!
//! ```
//! use cellular_ota::ota::manifest::{Decision, Manifest, Policy, Version, decide};
//!
//! const PUBLIC_KEY: [u8; 32] = [
//!     0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64,
//!     0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68,
//!     0xf7, 0x07, 0x51, 0x1a,
//! ];
//! let file = b"cellular-ota-manifest 2\r\n\
//!     sha256 9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08\r\n\
//!     # key order, CRLF, hex case and comments do not matter\r\n\
//!     size    1572864\r\n\
//!     product 7semi-ec200u-logger\r\n\
//!     version 1.4.2\r\n\
//!     notes   unknown keys are ignored\r\n\
//!     signature baf3934caeb9978352933a9dc15b646132a104653e32c90fe6664ddade366fb4\
//!     c52bade4a369f51384693bb133f18d6ee74f611315c569fd697f15d8dfcdd208\r\n";
//!
//! let manifest = Manifest::parse(file)?;
//! assert_eq!((manifest.product, manifest.size), ("7semi-ec200u-logger", 1_572_864));
//!
//! // The running firmware's own version, e.g. from `env!("CARGO_PKG_VERSION")`.
//! let policy = Policy::signed(PUBLIC_KEY, "7semi-ec200u-logger", Version::parse("1.4.1")?);
//! assert_eq!(decide(&manifest, &policy)?, Decision::Update);
//!
//! let image = manifest.image_descriptor(); // hand this to `OtaSink::begin`
//! assert_eq!(image.id, manifest.sha256);
//! # Ok::<(), cellular_ota::ota::manifest::ManifestError>(())
//! ```

use core::cmp::Ordering;
use core::fmt;

use crate::ota::sink::{ExpectedImage, ImageDescriptor};

/// The largest manifest [`Manifest::parse`] accepts, in bytes.
pub const MAX_MANIFEST_LEN: usize = 1024;

/// The longest line [`Manifest::parse`] accepts, in bytes, not counting the LF or CRLF.
pub const MAX_LINE_LEN: usize = 256;

/// The longest version text (`MAJOR.MINOR.PATCH-PRE`) accepted, in bytes: the size of the
/// version field of an ESP-IDF app descriptor (`esp_app_desc_t.version`), so every version
/// a manifest names can also be the one the image declares.
pub const MAX_VERSION_LEN: usize = 32;

/// The longest `product` or `hardware` identifier, in bytes.
pub const MAX_ID_LEN: usize = 64;

/// The header's key, the first word of every manifest.
pub const MAGIC: &str = "cellular-ota-manifest";

/// `payload` values, by kind index (full, compressed, delta).
const PAYLOAD_KINDS: [&str; 3] = ["full", "compressed", "delta"];

/// Format 3's payload keys other than `payload`, in signed-message order: sizes at even
/// indexes, hashes at odd ones.
const PAYLOAD_FIELDS: [Field; 4] = [
    Field::PayloadSize,
    Field::PayloadSha256,
    Field::BaseSize,
    Field::BaseSha256,
];

/// The newest format number this module reads and writes (it reads 2 and 3; it writes 2
/// for a full image, so published format-2 manifests and their signatures stay as they
/// are, and 3 for a compressed image or a delta).
pub const FORMAT: u32 = 3;

/// The first line of the signed message of a full image's manifest (format 2), without its
/// LF.
pub const HEADER: &str = "cellular-ota-manifest 2";

/// The first line of the signed message of a compressed or delta manifest (format 3).
pub const HEADER_V3: &str = "cellular-ota-manifest 3";

/// The longest [signed message](self#the-signed-message), in bytes: a buffer this large
/// always suffices for [`Manifest::signed_message`].
pub const MAX_SIGNED_MESSAGE_LEN: usize = HEADER.len() + 1 // header line
    + "product ".len() + MAX_ID_LEN + 1
    + "hardware ".len() + MAX_ID_LEN + 1
    + "version ".len() + MAX_VERSION_LEN + 1
    + "size ".len() + 10 + 1
    + "sha256 ".len() + 64 + 1
    + "payload compressed".len() + 1
    + "payload-size ".len() + 10 + 1
    + "payload-sha256 ".len() + 64 + 1
    + "base-size ".len() + 10 + 1
    + "base-sha256 ".len() + 64 + 1;

/// The longest manifest [`write_manifest`] produces, in bytes: a buffer this large always
/// suffices.
pub const MAX_WRITTEN_LEN: usize = MAX_SIGNED_MESSAGE_LEN + "signature ".len() + 128 + 1;

/// A key whose value the manifest format defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Field {
    /// `product`: the product the image is for.
    Product,
    /// `hardware`: the hardware revision the image is for.
    Hardware,
    /// `version`: the image's version.
    Version,
    /// `size`: the image's length in bytes.
    Size,
    /// `sha256`: the image's SHA-256.
    Sha256,
    /// `signature`: the Ed25519 signature of the signed message.
    Signature,
    /// `payload`: what the image URL serves (format 3).
    Payload,
    /// `payload-size`: the served file's length.
    PayloadSize,
    /// `payload-sha256`: the served file's SHA-256.
    PayloadSha256,
    /// `base-size`: the length of the image a delta applies to.
    BaseSize,
    /// `base-sha256`: the SHA-256 of the image a delta applies to.
    BaseSha256,
}

impl Field {
    /// The key as it appears in the file.
    pub const fn key(self) -> &'static str {
        match self {
            Field::Product => "product",
            Field::Hardware => "hardware",
            Field::Version => "version",
            Field::Size => "size",
            Field::Sha256 => "sha256",
            Field::Signature => "signature",
            Field::Payload => "payload",
            Field::PayloadSize => "payload-size",
            Field::PayloadSha256 => "payload-sha256",
            Field::BaseSize => "base-size",
            Field::BaseSha256 => "base-sha256",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// Why a manifest was rejected, or why it may not be installed.
///
/// Parse errors come first in the order the parser meets them: [`TooLarge`](Self::TooLarge),
/// then [`InvalidByte`](Self::InvalidByte) for the whole input, then line by line, then
/// [`Missing`](Self::Missing) in the order `product`, `version`, `size`, `sha256`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ManifestError {
    /// The input is longer than [`MAX_MANIFEST_LEN`].
    #[error("manifest is {len} bytes, limit {MAX_MANIFEST_LEN}")]
    TooLarge {
        /// The input's length.
        len: usize,
    },
    /// A byte that is not printable ASCII, space, tab or a line ending: non-ASCII (UTF-8, a
    /// byte-order mark), a control character, or a CR not followed by LF.
    #[error("invalid byte at offset {offset}")]
    InvalidByte {
        /// Its offset in the input.
        offset: usize,
    },
    /// A line is longer than [`MAX_LINE_LEN`] without its line ending.
    #[error("line {line} is longer than {MAX_LINE_LEN} bytes")]
    LineTooLong {
        /// The line number, from 1.
        line: u16,
    },
    /// Line 1 is not `cellular-ota-manifest <number>` (or the input is empty): this is not
    /// a manifest, perhaps an HTTP error page.
    #[error("not a cellular-ota manifest (bad first line)")]
    BadHeader,
    /// The header names an older format this version no longer accepts: format 1 named no
    /// product, so its image could be installed on any product that trusts the key.
    #[error(
        "manifest format {format} is no longer accepted (it names no product): re-sign the \
         image with sign_image to publish format {FORMAT}"
    )]
    Outdated {
        /// The format number found.
        format: u32,
    },
    /// The header names a format newer than [`FORMAT`] (or otherwise unknown).
    #[error("manifest format {format} is not supported (only 2 and {FORMAT})")]
    UnsupportedFormat {
        /// The format number found (saturated at `u32::MAX`).
        format: u32,
    },
    /// A line is not `key value`: the key has characters outside `[a-z0-9_-]` or does not
    /// start with a letter, or the line repeats the header.
    #[error("line {line} is not `key value`")]
    BadLine {
        /// The line number, from 1.
        line: u16,
    },
    /// A key appears twice.
    #[error("`{field}` appears more than once")]
    Duplicate {
        /// The repeated key.
        field: Field,
    },
    /// A required key is absent.
    #[error("`{field}` is missing")]
    Missing {
        /// The absent key.
        field: Field,
    },
    /// A `product` or `hardware` value is not an [identifier](self#identifiers).
    #[error("`{field}` is not 1 to {MAX_ID_LEN} letters, digits, `.`, `_` or `-`")]
    BadId {
        /// The key whose value is bad.
        field: Field,
    },
    /// The version is not `MAJOR.MINOR.PATCH[-PRE]` (see [`Version::parse`]), or is longer
    /// than [`MAX_VERSION_LEN`].
    #[error("bad version")]
    BadVersion,
    /// The size is not a decimal number in `1..=4294967295` without sign or leading zeros.
    #[error("bad size")]
    BadSize,
    /// A hex value has the wrong length or a character that is not a hex digit.
    #[error("bad hex in `{field}`")]
    BadHex {
        /// The key whose value is bad.
        field: Field,
    },
    /// A signature is required but the manifest has none.
    #[error("manifest is not signed")]
    NoSignature,
    /// The signature does not verify with the given key: the manifest was altered, or
    /// signed with another key.
    #[error("signature does not verify")]
    BadSignature,
    /// The public key is not a valid Ed25519 key (not a curve point, or of small order).
    #[error("invalid public key")]
    BadKey,
    /// The manifest names another product than the device's.
    #[error("manifest is for another product")]
    OtherProduct,
    /// The manifest names a hardware revision, and the device has another one (or names
    /// none).
    #[error("manifest is for another hardware revision")]
    OtherHardware,
    /// A public key is set but the running version is not known: with a key the device
    /// must know its own version, or an older signed manifest could be replayed.
    #[error("the running version is needed to judge a signed manifest")]
    RunningVersionUnknown,
    /// A public key is set but the crate was built without its `signed-manifest` feature,
    /// so the signature cannot be checked (and the manifest is not trusted).
    #[error("a public key is set but the signature check is not built (feature `signed-manifest`)")]
    VerifierNotBuilt,
    /// The manifest offers an older version than the one running and downgrades are not
    /// allowed. Versions are `[major, minor, patch]`; they may be equal when only the
    /// pre-release part differs.
    #[error(
        "manifest offers {}.{}.{}, older than running {}.{}.{}",
        offered[0], offered[1], offered[2], running[0], running[1], running[2]
    )]
    Downgrade {
        /// The manifest's version.
        offered: [u32; 3],
        /// The running version.
        running: [u32; 3],
    },
    /// The `payload` value is not `full`, `compressed` or `delta`, or a key that describes
    /// another kind of payload is present (`base-size` without `payload delta`, a
    /// `payload-size` with `payload full`), or `payload` appears in format 2.
    #[error("bad payload description (`{field}`)")]
    BadPayload {
        /// The key that does not fit.
        field: Field,
    },
    /// The manifest describes a compressed image or a delta, and this update cannot install
    /// one (built without it, or the caller's flow does not apply patches).
    #[error("the manifest offers a {kind} payload, which this build does not install")]
    UnsupportedPayload {
        /// `compressed` or `delta`.
        kind: &'static str,
    },
    /// The output buffer is too small.
    #[error("buffer too small, need {needed} bytes")]
    BufferTooSmall {
        /// The bytes the output needs.
        needed: usize,
    },
}

/// Checks that `text` is a `product` or `hardware` [identifier](self#identifiers): 1 to
/// [`MAX_ID_LEN`] bytes of ASCII letters, digits, `.`, `_` and `-`. The error names
/// `field`.
pub fn validate_id(text: &str, field: Field) -> Result<(), ManifestError> {
    let ok = !text.is_empty()
        && text.len() <= MAX_ID_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ManifestError::BadId { field })
    }
}

/// A semver-like version, `MAJOR.MINOR.PATCH[-PRE]`, ordered by semver precedence.
///
/// Ordering: `major`, then `minor`, then `patch` numerically; then a version with a
/// pre-release sorts before the same version without one (`1.0.0-rc.1 < 1.0.0`). Two
/// pre-releases compare identifier by identifier (split at `.`): numeric identifiers
/// numerically, others by ASCII order, numeric before non-numeric, and a shorter list before
/// a longer one it is a prefix of (`1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-alpha.beta <
/// 1.0.0-beta < 1.0.0-beta.2 < 1.0.0-beta.11 < 1.0.0-rc.1 < 1.0.0`). The order is total and
/// agrees with `==`, which compares the fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Version<'a> {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Patch version.
    pub patch: u32,
    /// Pre-release identifiers without the leading `-` (`"rc.1"`); empty for a release.
    pub pre: &'a str,
}

impl<'a> Version<'a> {
    /// A release version (no pre-release part).
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Version {
            major,
            minor,
            patch,
            pre: "",
        }
    }

    /// Parses `MAJOR.MINOR.PATCH` or `MAJOR.MINOR.PATCH-PRE`, borrowing `PRE` from `text`.
    ///
    /// `MAJOR`, `MINOR` and `PATCH` are decimal `u32` without leading zeros (`0` itself is
    /// fine). `PRE` is one or more non-empty identifiers separated by `.`, made of
    /// `[0-9A-Za-z-]`; a purely numeric identifier has no leading zeros. Build metadata
    /// (`+…`), a leading `v`, blanks, and text longer than [`MAX_VERSION_LEN`] are
    /// rejected. Every error is [`ManifestError::BadVersion`].
    pub fn parse(text: &'a str) -> Result<Self, ManifestError> {
        if text.len() > MAX_VERSION_LEN {
            return Err(ManifestError::BadVersion);
        }
        let (core, pre) = match text.split_once('-') {
            Some((core, pre)) => (core, pre),
            None => (text, ""),
        };
        let mut parts = core.split('.');
        let major = parts.next().and_then(parse_u32);
        let minor = parts.next().and_then(parse_u32);
        let patch = parts.next().and_then(parse_u32);
        let (Some(major), Some(minor), Some(patch), None) = (major, minor, patch, parts.next())
        else {
            return Err(ManifestError::BadVersion);
        };
        if text.len() > core.len() && !valid_pre(pre) {
            return Err(ManifestError::BadVersion);
        }
        Ok(Version {
            major,
            minor,
            patch,
            pre,
        })
    }

    /// Whether this is a pre-release (`pre` is not empty).
    pub const fn is_prerelease(&self) -> bool {
        !self.pre.is_empty()
    }

    /// Checks what [`Version::parse`] would check, for a version built from its fields:
    /// `pre` is empty or valid, and the text is at most [`MAX_VERSION_LEN`] bytes.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let len = decimal_len(self.major)
            + decimal_len(self.minor)
            + decimal_len(self.patch)
            + 2
            + if self.pre.is_empty() {
                0
            } else {
                1 + self.pre.len()
            };
        if len > MAX_VERSION_LEN || (!self.pre.is_empty() && !valid_pre(self.pre)) {
            return Err(ManifestError::BadVersion);
        }
        Ok(())
    }

    fn core(&self) -> [u32; 3] {
        [self.major, self.minor, self.patch]
    }
}

impl fmt::Display for Version<'_> {
    /// Writes `MAJOR.MINOR.PATCH` or `MAJOR.MINOR.PATCH-PRE`, the form used in the signed
    /// message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre)?;
        }
        Ok(())
    }
}

impl Ord for Version<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.core().cmp(&other.core()).then_with(|| {
            match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => cmp_pre(self.pre, other.pre),
            }
        })
    }
}

impl PartialOrd for Version<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Semver pre-release precedence, with a final byte-wise tie-break so that the order agrees
/// with `==` even for hand-built versions that `parse` would reject (`"01"` vs `"1"`).
fn cmp_pre(a: &str, b: &str) -> Ordering {
    let mut left = a.split('.');
    let mut right = b.split('.');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => match cmp_identifier(x, y) {
                Ordering::Equal => {}
                unequal => return unequal,
            },
        }
    }
}

fn cmp_identifier(x: &str, y: &str) -> Ordering {
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match (numeric(x), numeric(y)) {
        (true, true) => {
            // Any length: compare without leading zeros, by length, then by digits.
            let x = x.trim_start_matches('0');
            let y = y.trim_start_matches('0');
            x.len().cmp(&y.len()).then_with(|| x.cmp(y))
        }
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => x.cmp(y),
    }
}

fn valid_pre(pre: &str) -> bool {
    !pre.is_empty()
        && pre.split('.').all(|id| {
            !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !(id.len() > 1 && id.starts_with('0') && id.bytes().all(|b| b.is_ascii_digit()))
        })
}

/// Decimal `u32` without sign or leading zeros.
fn parse_u32(text: &str) -> Option<u32> {
    let bytes = text.as_bytes();
    if bytes.is_empty() || (bytes.len() > 1 && bytes.first() == Some(&b'0')) {
        return None;
    }
    let mut value: u32 = 0;
    for &b in bytes {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u32::from(b - b'0'))?;
    }
    Some(value)
}

fn decimal_len(mut n: u32) -> usize {
    let mut len = 1;
    while n >= 10 {
        n /= 10;
        len += 1;
    }
    len
}

/// A parsed manifest; see the [module docs](self) for the format.
///
/// The fields are public so a host tool or simulator can build one; [`write_manifest`] and
/// [`Manifest::signed_message`] validate what they write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Manifest<'a> {
    /// The product the image is for (an [identifier](self#identifiers)).
    pub product: &'a str,
    /// The hardware revision the image is for; `None`: every revision of the product.
    pub hardware: Option<&'a str>,
    /// The image's version.
    pub version: Version<'a>,
    /// The image's exact length in bytes (at least 1).
    pub size: u32,
    /// The image's SHA-256.
    pub sha256: [u8; 32],
    /// What the image URL serves: the image itself, or a patch that makes it.
    pub payload: Payload,
    /// The Ed25519 signature of the [signed message](self#the-signed-message), if present.
    pub signature: Option<[u8; 64]>,
}

/// What the image URL serves (format 3's `payload` keys; format 2 is always [`Full`](Self::Full)).
///
/// A compressed image and a delta are detools "sequential" patches: from nothing, or from
/// the image the device runs ([`base`](Self::Delta::base_sha256)). Either way the result is
/// the image `size` and `sha256` describe, checked as for a full image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Payload {
    /// The image itself (`payload full`, or a format-2 manifest).
    #[default]
    Full,
    /// A compressed image (`payload compressed`): a patch from an empty base.
    Compressed {
        /// The served file's length.
        size: u32,
        /// The served file's SHA-256.
        sha256: [u8; 32],
    },
    /// A delta (`payload delta`): a patch from the image the device runs.
    Delta {
        /// The served file's length.
        size: u32,
        /// The served file's SHA-256.
        sha256: [u8; 32],
        /// The length of the image the patch applies to.
        base_size: u32,
        /// The SHA-256 of that image: checked against the running image before anything is
        /// erased.
        base_sha256: [u8; 32],
    },
}

impl Payload {
    /// `full`, `compressed` or `delta`, as in the file.
    pub const fn kind(&self) -> &'static str {
        match self {
            Payload::Full => "full",
            Payload::Compressed { .. } => "compressed",
            Payload::Delta { .. } => "delta",
        }
    }

    /// The served file's length and SHA-256, for a patch.
    pub const fn patch(&self) -> Option<(u32, [u8; 32])> {
        match *self {
            Payload::Full => None,
            Payload::Compressed { size, sha256 } | Payload::Delta { size, sha256, .. } => {
                Some((size, sha256))
            }
        }
    }
}

impl<'a> Manifest<'a> {
    /// Parses a manifest (see the [module docs](self)), borrowing the product, hardware
    /// revision and the version's pre-release text from `input`.
    ///
    /// Checks the format only; call [`decide`] (or [`Manifest::verify_signature`]) before
    /// trusting the values. Every malformed input is an error, never a panic; an empty input
    /// is [`ManifestError::BadHeader`].
    #[inline(never)]
    pub fn parse(input: &'a [u8]) -> Result<Self, ManifestError> {
        if input.len() > MAX_MANIFEST_LEN {
            return Err(ManifestError::TooLarge { len: input.len() });
        }
        for (offset, &b) in input.iter().enumerate() {
            let ok = matches!(b, 0x20..=0x7e | b'\t' | b'\n')
                || (b == b'\r' && input.get(offset + 1) == Some(&b'\n'));
            if !ok {
                return Err(ManifestError::InvalidByte { offset });
            }
        }

        let mut product = None;
        let mut hardware = None;
        let mut version = None;
        let mut size = None;
        let mut sha256 = None;
        let mut signature = None;
        let mut format = 0;
        let mut kind: Option<usize> = None;
        // PAYLOAD_FIELDS' values: sizes as little-endian in the first 4 bytes.
        let mut extra: [Option<[u8; 32]>; 4] = [None; 4];

        for (index, raw) in input.split(|&b| b == b'\n').enumerate() {
            // At most MAX_MANIFEST_LEN + 1 lines, so this never saturates.
            let line = u16::try_from(index + 1).unwrap_or(u16::MAX);
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            if raw.len() > MAX_LINE_LEN {
                return Err(ManifestError::LineTooLong { line });
            }
            let text = raw.trim_ascii_start();
            let text = trim_blank_end(text);
            let (key, value) = split_key(text);

            if line == 1 {
                if key != MAGIC.as_bytes() {
                    return Err(ManifestError::BadHeader);
                }
                format = check_format(value)?;
                continue;
            }
            if text.is_empty() || text.starts_with(b"#") {
                continue;
            }
            if !valid_key(key) || key == MAGIC.as_bytes() {
                return Err(ManifestError::BadLine { line });
            }
            // Every byte was checked above to be printable ASCII or a tab: valid UTF-8.
            let value_str = core::str::from_utf8(value).unwrap_or("");
            match key {
                b"product" => {
                    check_unset(&product, Field::Product)?;
                    validate_id(value_str, Field::Product)?;
                    product = Some(value_str);
                }
                b"hardware" => {
                    check_unset(&hardware, Field::Hardware)?;
                    validate_id(value_str, Field::Hardware)?;
                    hardware = Some(value_str);
                }
                b"version" => {
                    check_unset(&version, Field::Version)?;
                    version = Some(Version::parse(value_str)?);
                }
                b"size" => {
                    check_unset(&size, Field::Size)?;
                    match parse_u32(value_str) {
                        Some(n) if n > 0 => size = Some(n),
                        _ => return Err(ManifestError::BadSize),
                    }
                }
                b"sha256" => {
                    check_unset(&sha256, Field::Sha256)?;
                    sha256 = Some(decode_hex::<32>(value).ok_or(ManifestError::BadHex {
                        field: Field::Sha256,
                    })?);
                }
                b"signature" => {
                    check_unset(&signature, Field::Signature)?;
                    signature = Some(decode_hex::<64>(value).ok_or(ManifestError::BadHex {
                        field: Field::Signature,
                    })?);
                }
                b"payload" if format >= 3 => {
                    check_unset(&kind, Field::Payload)?;
                    kind = Some(
                        PAYLOAD_KINDS
                            .iter()
                            .position(|k| k.as_bytes() == value)
                            .ok_or(ManifestError::BadPayload {
                                field: Field::Payload,
                            })?,
                    );
                }
                // Format 3's other payload keys; in format 2 they are unknown (ignored), as
                // is any other unknown key.
                _ => {
                    let i = PAYLOAD_FIELDS
                        .iter()
                        .position(|f| f.key().as_bytes() == key)
                        .filter(|_| format >= 3);
                    if let Some(i) = i {
                        let field = PAYLOAD_FIELDS[i];
                        if extra[i].is_some() {
                            return Err(ManifestError::Duplicate { field });
                        }
                        extra[i] = Some(if i % 2 == 0 {
                            // A size.
                            let n = parse_u32(value_str)
                                .filter(|&n| n > 0)
                                .ok_or(ManifestError::BadSize)?;
                            let mut v = [0u8; 32];
                            v[..4].copy_from_slice(&n.to_le_bytes());
                            v
                        } else {
                            decode_hex::<32>(value).ok_or(ManifestError::BadHex { field })?
                        });
                    }
                }
            }
        }

        let payload = if format < 3 {
            Payload::Full
        } else {
            // Which of PAYLOAD_FIELDS each kind (full, compressed, delta) takes: all of them
            // are then required, the others refused.
            const TAKES: [usize; 3] = [0, 2, 4];
            let k = kind.ok_or(ManifestError::Missing {
                field: Field::Payload,
            })?;
            let mut v = [[0u8; 32]; 4];
            for (i, (slot, field)) in extra.iter().zip(PAYLOAD_FIELDS).enumerate() {
                match (slot, i < TAKES[k]) {
                    (Some(x), true) => v[i] = *x,
                    (None, true) => return Err(ManifestError::Missing { field }),
                    (Some(_), false) => return Err(ManifestError::BadPayload { field }),
                    (None, false) => {}
                }
            }
            let size = |x: &[u8; 32]| u32::from_le_bytes([x[0], x[1], x[2], x[3]]);
            match k {
                0 => Payload::Full,
                1 => Payload::Compressed {
                    size: size(&v[0]),
                    sha256: v[1],
                },
                _ => Payload::Delta {
                    size: size(&v[0]),
                    sha256: v[1],
                    base_size: size(&v[2]),
                    base_sha256: v[3],
                },
            }
        };

        Ok(Manifest {
            product: product.ok_or(ManifestError::Missing {
                field: Field::Product,
            })?,
            hardware,
            version: version.ok_or(ManifestError::Missing {
                field: Field::Version,
            })?,
            size: size.ok_or(ManifestError::Missing { field: Field::Size })?,
            sha256: sha256.ok_or(ManifestError::Missing {
                field: Field::Sha256,
            })?,
            payload,
            signature,
        })
    }

    /// Writes the canonical [signed message](self#the-signed-message) into `buf` and returns
    /// it. A buffer of [`MAX_SIGNED_MESSAGE_LEN`] bytes always suffices.
    ///
    /// Errors: [`ManifestError::BufferTooSmall`] (with the length needed),
    /// [`ManifestError::BadId`], [`ManifestError::BadVersion`] or [`ManifestError::BadSize`]
    /// for a hand-built manifest that [`Manifest::parse`] would reject.
    pub fn signed_message<'b>(&self, buf: &'b mut [u8]) -> Result<&'b [u8], ManifestError> {
        let mut out = Out::new(buf);
        write_signed_part(&mut out, self)?;
        out.finish()
    }

    /// Checks the signature against `public_key`.
    ///
    /// Errors, in this order: [`ManifestError::NoSignature`] if the manifest is unsigned,
    /// [`ManifestError::BadKey`] if the key is not a usable Ed25519 public key,
    /// [`ManifestError::BadSignature`] if the signature does not verify (including a
    /// non-canonical signature), and the errors of [`Manifest::signed_message`].
    #[cfg(feature = "signed-manifest")]
    #[inline(never)]
    pub fn verify_signature(&self, public_key: &[u8; 32]) -> Result<(), ManifestError> {
        let mut buf = [0u8; MAX_SIGNED_MESSAGE_LEN];
        self.verify_signature_in(public_key, &mut buf)
    }

    /// [`verify_signature`](Self::verify_signature) that builds the signed message in
    /// `scratch` instead of a [`MAX_SIGNED_MESSAGE_LEN`]-byte stack buffer (the update flow
    /// lends the free end of its chunk buffer, which keeps 521 bytes off the deepest stack
    /// of the update). `scratch` must hold the message ([`ManifestError::BufferTooSmall`]
    /// otherwise); [`MAX_SIGNED_MESSAGE_LEN`] bytes always suffice.
    #[cfg(feature = "signed-manifest")]
    #[inline(never)]
    pub fn verify_signature_in(
        &self,
        public_key: &[u8; 32],
        scratch: &mut [u8],
    ) -> Result<(), ManifestError> {
        let signature = self.signature.as_ref().ok_or(ManifestError::NoSignature)?;
        let key = ed25519_compact::PublicKey::new(*public_key);
        key.validate().map_err(|_| ManifestError::BadKey)?;
        let message = self.signed_message(scratch)?;
        key.verify(message, &ed25519_compact::Signature::new(*signature))
            .map_err(|e| match e {
                ed25519_compact::Error::InvalidPublicKey
                | ed25519_compact::Error::WeakPublicKey => ManifestError::BadKey,
                _ => ManifestError::BadSignature,
            })
    }

    /// The descriptor to pass to [`OtaSink::begin`](super::OtaSink::begin): `id` is the
    /// image's SHA-256, `size` its length, so a resumed download continues only this image.
    pub fn image_descriptor(&self) -> ImageDescriptor {
        ImageDescriptor {
            id: self.sha256,
            size: self.size,
        }
    }

    /// What [`OtaSink::finish`](super::OtaSink::finish) must find in storage: this
    /// SHA-256, and this version in the image's own header.
    pub fn expected_image(&self) -> ExpectedImage<'a> {
        ExpectedImage {
            sha256: self.sha256,
            version: Some(self.version),
        }
    }
}

/// The header's format number: 2 or 3 ([`FORMAT`]); errors for any other.
fn check_format(value: &[u8]) -> Result<u32, ManifestError> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(ManifestError::BadHeader);
    }
    let format = value.iter().fold(0u32, |n, &b| {
        n.saturating_mul(10).saturating_add(u32::from(b - b'0'))
    });
    match format {
        2 | FORMAT => Ok(format),
        1 => Err(ManifestError::Outdated { format }),
        _ => Err(ManifestError::UnsupportedFormat { format }),
    }
}

fn check_unset<T>(slot: &Option<T>, field: Field) -> Result<(), ManifestError> {
    match slot {
        Some(_) => Err(ManifestError::Duplicate { field }),
        None => Ok(()),
    }
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_blank_end(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., last] = s {
        if !is_blank(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// Splits a trimmed line into its first word and the rest with leading blanks removed.
fn split_key(text: &[u8]) -> (&[u8], &[u8]) {
    let end = text.iter().position(|&b| is_blank(b)).unwrap_or(text.len());
    let (key, rest) = text.split_at(end);
    let start = rest
        .iter()
        .position(|&b| !is_blank(b))
        .unwrap_or(rest.len());
    let (_, value) = rest.split_at(start);
    (key, value)
}

fn valid_key(key: &[u8]) -> bool {
    match key {
        [first, rest @ ..] => {
            first.is_ascii_lowercase()
                && rest.iter().all(|&b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                })
        }
        [] => false,
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn decode_hex<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    if text.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let [high, low] = pair else { return None };
        *byte = hex_value(*high)? << 4 | hex_value(*low)?;
    }
    Some(out)
}

/// Writes into a caller's buffer, counting what it would need past the end.
struct Out<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> Out<'b> {
    fn new(buf: &'b mut [u8]) -> Self {
        Out { buf, len: 0 }
    }

    fn put(&mut self, bytes: &[u8]) {
        let end = self.len.saturating_add(bytes.len());
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            dst.copy_from_slice(bytes);
        }
        self.len = end;
    }

    fn put_u32(&mut self, mut n: u32) {
        // u32::MAX has 10 digits; fill from the right.
        let mut digits = [0u8; 10];
        let mut start = digits.len();
        for slot in digits.iter_mut().rev() {
            *slot = b'0' + (n % 10) as u8;
            n /= 10;
            start -= 1;
            if n == 0 {
                break;
            }
        }
        self.put(digits.get(start..).unwrap_or(&[]));
    }

    fn put_hex(&mut self, bytes: &[u8]) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for &b in bytes {
            self.put(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
        }
    }

    fn finish(self) -> Result<&'b [u8], ManifestError> {
        let needed = self.len;
        let buf: &'b [u8] = self.buf;
        buf.get(..needed)
            .ok_or(ManifestError::BufferTooSmall { needed })
    }
}

fn write_signed_part(out: &mut Out<'_>, m: &Manifest<'_>) -> Result<(), ManifestError> {
    validate_id(m.product, Field::Product)?;
    if let Some(hardware) = m.hardware {
        validate_id(hardware, Field::Hardware)?;
    }
    let version = &m.version;
    version.validate()?;
    if m.size == 0 {
        return Err(ManifestError::BadSize);
    }
    let full = m.payload == Payload::Full;
    out.put(if full { HEADER } else { HEADER_V3 }.as_bytes());
    out.put(b"\nproduct ");
    out.put(m.product.as_bytes());
    if let Some(hardware) = m.hardware {
        out.put(b"\nhardware ");
        out.put(hardware.as_bytes());
    }
    out.put(b"\nversion ");
    out.put_u32(version.major);
    out.put(b".");
    out.put_u32(version.minor);
    out.put(b".");
    out.put_u32(version.patch);
    if !version.pre.is_empty() {
        out.put(b"-");
        out.put(version.pre.as_bytes());
    }
    out.put(b"\nsize ");
    out.put_u32(m.size);
    out.put(b"\nsha256 ");
    out.put_hex(&m.sha256);
    out.put(b"\n");
    if let Some((size, sha256)) = m.payload.patch() {
        out.put(b"payload ");
        out.put(m.payload.kind().as_bytes());
        out.put(b"\npayload-size ");
        out.put_u32(size);
        out.put(b"\npayload-sha256 ");
        out.put_hex(&sha256);
        out.put(b"\n");
    }
    if let Payload::Delta {
        base_size,
        base_sha256,
        ..
    } = m.payload
    {
        out.put(b"base-size ");
        out.put_u32(base_size);
        out.put(b"\nbase-sha256 ");
        out.put_hex(&base_sha256);
        out.put(b"\n");
    }
    Ok(())
}

/// Writes a canonical manifest into `out` and returns its length: the
/// [signed message](self#the-signed-message), then `signature <128 lowercase hex>\n` if the
/// manifest has a signature. The result parses back to the same values.
///
/// A buffer of [`MAX_WRITTEN_LEN`] bytes always suffices. Errors:
/// [`ManifestError::BufferTooSmall`] (with the length needed), [`ManifestError::BadId`] for
/// a product or hardware revision that is not an [identifier](self#identifiers),
/// [`ManifestError::BadVersion`] for a version [`Version::parse`] would reject,
/// [`ManifestError::BadSize`] for size 0.
pub fn write_manifest(manifest: &Manifest<'_>, out: &mut [u8]) -> Result<usize, ManifestError> {
    let mut out = Out::new(out);
    write_signed_part(&mut out, manifest)?;
    if let Some(signature) = &manifest.signature {
        out.put(b"signature ");
        out.put_hex(signature);
        out.put(b"\n");
    }
    out.finish().map(<[u8]>::len)
}

/// What to do with a manifest, from [`decide`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Decision {
    /// The manifest offers the version that is running: nothing to download.
    UpToDate,
    /// Download and install the image the manifest describes.
    Update,
}

/// What a device accepts: its key, its identity and its version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Policy<'a> {
    /// The Ed25519 key manifests must be signed with; `None` accepts unsigned manifests
    /// (see [Security](self#security)).
    pub public_key: Option<[u8; 32]>,
    /// This device's product: a manifest for another is refused.
    pub product: &'a str,
    /// This device's hardware revision, if it has one: a manifest that names a revision
    /// must name this one.
    pub hardware: Option<&'a str>,
    /// The version running now. Required with a key
    /// ([`ManifestError::RunningVersionUnknown`]).
    pub running: Option<Version<'a>>,
    /// Accept a manifest that offers an older version than `running`.
    pub allow_downgrade: bool,
}

impl<'a> Policy<'a> {
    /// Signed manifests only, for `product`, running `running`; no hardware revision, no
    /// downgrades.
    pub const fn signed(public_key: [u8; 32], product: &'a str, running: Version<'a>) -> Self {
        Policy {
            public_key: Some(public_key),
            product,
            hardware: None,
            running: Some(running),
            allow_downgrade: false,
        }
    }

    /// Unsigned manifests accepted, for `product` (development only, see
    /// [Security](self#security)).
    pub const fn unsigned(product: &'a str, running: Option<Version<'a>>) -> Self {
        Policy {
            public_key: None,
            product,
            hardware: None,
            running,
            allow_downgrade: false,
        }
    }
}

/// The update policy: whether to install what `manifest` offers, in this order.
///
/// 1. With a public key, the running version must be known
///    ([`ManifestError::RunningVersionUnknown`]) and the signature must be present and
///    verify ([`Manifest::verify_signature`]'s errors), so nothing below acts on an
///    unauthenticated value. Without a key, unsigned (and signed) manifests are accepted
///    **without any signature check** — see [Security](self#security) for what that
///    exposes.
/// 2. The manifest's product must be the policy's ([`ManifestError::OtherProduct`]); if the
///    manifest names a hardware revision, the policy must name the same one
///    ([`ManifestError::OtherHardware`]).
/// 3. With no running version known (possible only without a key), the result is
///    [`Decision::Update`].
/// 4. The same version (by [`Version`]'s order, so including the pre-release) is
///    [`Decision::UpToDate`], whatever the image hash: publish a new image under a new
///    version.
/// 5. A newer version is [`Decision::Update`]; an older one is [`Decision::Update`] only if
///    downgrades are allowed, otherwise [`ManifestError::Downgrade`].
pub fn decide(manifest: &Manifest<'_>, policy: &Policy<'_>) -> Result<Decision, ManifestError> {
    decide_in(manifest, policy, &mut [])
}

/// [`decide`], building the signed message in `scratch` when it is large enough
/// ([`Manifest::verify_signature_in`]), else in a stack buffer.
#[inline(never)]
pub fn decide_in(
    manifest: &Manifest<'_>,
    policy: &Policy<'_>,
    scratch: &mut [u8],
) -> Result<Decision, ManifestError> {
    if let Some(key) = &policy.public_key {
        if policy.running.is_none() {
            return Err(ManifestError::RunningVersionUnknown);
        }
        #[cfg(feature = "signed-manifest")]
        match manifest.verify_signature_in(key, scratch) {
            Err(ManifestError::BufferTooSmall { .. }) => manifest.verify_signature(key)?,
            r => r?,
        }
        #[cfg(not(feature = "signed-manifest"))]
        {
            let _ = (key, scratch);
            return Err(ManifestError::VerifierNotBuilt);
        }
    }
    if manifest.product != policy.product {
        return Err(ManifestError::OtherProduct);
    }
    if manifest.hardware.is_some() && manifest.hardware != policy.hardware {
        return Err(ManifestError::OtherHardware);
    }
    let Some(running) = &policy.running else {
        return Ok(Decision::Update);
    };
    match manifest.version.cmp(running) {
        Ordering::Equal => Ok(Decision::UpToDate),
        Ordering::Greater => Ok(Decision::Update),
        Ordering::Less if policy.allow_downgrade => Ok(Decision::Update),
        Ordering::Less => Err(ManifestError::Downgrade {
            offered: manifest.version.core(),
            running: running.core(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8032 §7.1 TEST 1 secret key (seed) and public key.
    const SEED: [u8; 32] = [
        0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c,
        0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae,
        0x7f, 0x60,
    ];
    const PUBLIC_KEY: [u8; 32] = [
        0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07,
        0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07,
        0x51, 0x1a,
    ];
    const SHA256_HEX: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    const SIGNED_MESSAGE: &[u8] = b"cellular-ota-manifest 2\n\
        product 7semi-ec200u-logger\n\
        version 1.4.2\n\
        size 1572864\n\
        sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n";
    /// Pinned: a change here means the signed message (or the signer) changed, which would
    /// invalidate every manifest in the field. Cross-checked with an independent Ed25519
    /// implementation (pyca/cryptography, i.e. OpenSSL) over `SIGNED_MESSAGE`.
    const SIGNATURE_HEX: &str = "baf3934caeb9978352933a9dc15b646132a104653e32c90fe6664ddade366fb4\
        c52bade4a369f51384693bb133f18d6ee74f611315c569fd697f15d8dfcdd208";

    fn hex<const N: usize>(s: &str) -> [u8; N] {
        decode_hex(s.as_bytes()).unwrap()
    }

    fn sample() -> Manifest<'static> {
        Manifest {
            product: "7semi-ec200u-logger",
            hardware: None,
            version: Version::new(1, 4, 2),
            size: 1_572_864,
            sha256: hex(SHA256_HEX),
            payload: Payload::Full,
            signature: None,
        }
    }

    #[test]
    fn fixed_seed_gives_fixed_public_key() {
        let pair = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new(SEED));
        assert_eq!(*pair.pk, PUBLIC_KEY);
    }

    #[test]
    fn signed_message_is_pinned() {
        let mut buf = [0u8; MAX_SIGNED_MESSAGE_LEN];
        assert_eq!(sample().signed_message(&mut buf).unwrap(), SIGNED_MESSAGE);
    }

    #[test]
    fn signature_is_pinned() {
        let pair = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new(SEED));
        let signature = pair.sk.sign(SIGNED_MESSAGE, None);
        assert_eq!(*signature, hex::<64>(SIGNATURE_HEX));
    }

    #[test]
    fn pinned_manifest_parses_and_verifies() {
        let mut file = [0u8; MAX_WRITTEN_LEN];
        let signature = hex::<64>(SIGNATURE_HEX);
        let signed = Manifest {
            signature: Some(signature),
            ..sample()
        };
        let n = write_manifest(&signed, &mut file).unwrap();
        let mut expected = [0u8; MAX_WRITTEN_LEN];
        let mut out = Out::new(&mut expected);
        out.put(SIGNED_MESSAGE);
        out.put(b"signature ");
        out.put(SIGNATURE_HEX.as_bytes());
        out.put(b"\n");
        assert_eq!(&file[..n], out.finish().unwrap());
        let manifest = Manifest::parse(&file[..n]).unwrap();
        assert_eq!(manifest, signed);
        manifest.verify_signature(&PUBLIC_KEY).unwrap();
    }

    #[test]
    fn hardware_line_is_signed_after_the_product() {
        let manifest = Manifest {
            hardware: Some("rev-b"),
            ..sample()
        };
        let mut buf = [0u8; MAX_SIGNED_MESSAGE_LEN];
        let message = manifest.signed_message(&mut buf).unwrap();
        assert!(message.starts_with(
            b"cellular-ota-manifest 2\nproduct 7semi-ec200u-logger\nhardware rev-b\nversion 1.4.2\n"
        ));
    }

    #[test]
    fn prerelease_in_signed_message() {
        let manifest = Manifest {
            version: Version::parse("2.0.0-rc.1").unwrap(),
            size: 7,
            ..sample()
        };
        let mut buf = [0u8; MAX_SIGNED_MESSAGE_LEN];
        let message = manifest.signed_message(&mut buf).unwrap();
        assert!(message.ends_with(
            b"\nversion 2.0.0-rc.1\nsize 7\nsha256 \
              9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
        ));
    }

    #[test]
    fn longest_signed_message_fits_the_constant() {
        let pre = [b'a'; MAX_VERSION_LEN - "4294967295.0.0-".len()];
        let pre = core::str::from_utf8(&pre).unwrap();
        let id = [b'x'; MAX_ID_LEN];
        let id = core::str::from_utf8(&id).unwrap();
        let manifest = Manifest {
            product: id,
            hardware: Some(id),
            version: Version {
                major: u32::MAX,
                minor: 0,
                patch: 0,
                pre,
            },
            size: u32::MAX,
            payload: Payload::Compressed {
                size: u32::MAX,
                sha256: [0xee; 32],
            },
            ..sample()
        };
        let mut buf = [0u8; MAX_SIGNED_MESSAGE_LEN];
        // A compressed payload's kind is the longest; a delta adds the base lines.
        let compressed = manifest.signed_message(&mut buf).unwrap().len();
        let manifest = Manifest {
            payload: Payload::Delta {
                size: u32::MAX,
                sha256: [0xee; 32],
                base_size: u32::MAX,
                base_sha256: [0xdd; 32],
            },
            ..manifest
        };
        let delta = manifest.signed_message(&mut buf).unwrap().len();
        assert_eq!(
            delta + ("payload compressed".len() - "payload delta".len()),
            MAX_SIGNED_MESSAGE_LEN
        );
        assert!(compressed < delta);
        let mut out = [0u8; MAX_WRITTEN_LEN];
        let signed = Manifest {
            signature: Some([0xff; 64]),
            ..manifest
        };
        let n = write_manifest(&signed, &mut out).unwrap();
        assert_eq!(
            n + ("payload compressed".len() - "payload delta".len()),
            MAX_WRITTEN_LEN
        );
        assert_eq!(Manifest::parse(&out[..n]).unwrap(), signed);
    }

    #[test]
    fn short_buffer_reports_needed_length() {
        let mut buf = [0u8; 10];
        assert_eq!(
            sample().signed_message(&mut buf),
            Err(ManifestError::BufferTooSmall {
                needed: SIGNED_MESSAGE.len()
            })
        );
    }

    #[test]
    fn hand_built_bad_values_are_not_written() {
        let mut buf = [0u8; MAX_WRITTEN_LEN];
        let bad = Manifest {
            version: Version {
                pre: "rc\n1",
                ..Version::new(1, 0, 0)
            },
            ..sample()
        };
        assert_eq!(
            write_manifest(&bad, &mut buf),
            Err(ManifestError::BadVersion)
        );
        let zero = Manifest {
            size: 0,
            ..sample()
        };
        assert_eq!(write_manifest(&zero, &mut buf), Err(ManifestError::BadSize));
        let product = Manifest {
            product: "a b",
            ..sample()
        };
        assert_eq!(
            write_manifest(&product, &mut buf),
            Err(ManifestError::BadId {
                field: Field::Product
            })
        );
        let hardware = Manifest {
            hardware: Some(""),
            ..sample()
        };
        assert_eq!(
            write_manifest(&hardware, &mut buf),
            Err(ManifestError::BadId {
                field: Field::Hardware
            })
        );
    }

    #[test]
    fn header_is_magic_and_format() {
        let mut buf = [0u8; 32];
        let mut out = Out::new(&mut buf);
        out.put(MAGIC.as_bytes());
        out.put(b" ");
        out.put_u32(2);
        assert_eq!(out.finish().unwrap(), HEADER.as_bytes());
        let mut buf = [0u8; 32];
        let mut out = Out::new(&mut buf);
        out.put(MAGIC.as_bytes());
        out.put(b" ");
        out.put_u32(FORMAT);
        assert_eq!(out.finish().unwrap(), HEADER_V3.as_bytes());
        assert_eq!(MAX_SIGNED_MESSAGE_LEN, 521);
        assert_eq!(MAX_WRITTEN_LEN, 660);
    }

    #[test]
    fn identifiers() {
        let longest = [b'x'; MAX_ID_LEN + 1];
        let longest = core::str::from_utf8(&longest).unwrap();
        for ok in ["a", "7semi-ec200u_logger.v2", "ABC", &longest[..MAX_ID_LEN]] {
            assert_eq!(validate_id(ok, Field::Product), Ok(()), "{ok}");
        }
        for bad in ["", "a b", "a/b", "é", "a\tb", longest] {
            assert_eq!(
                validate_id(bad, Field::Hardware),
                Err(ManifestError::BadId {
                    field: Field::Hardware
                }),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn hex_decoding() {
        assert_eq!(decode_hex::<2>(b"aBcD"), Some([0xab, 0xcd]));
        assert_eq!(decode_hex::<2>(b"abc"), None);
        assert_eq!(decode_hex::<2>(b"abcg"), None);
        assert_eq!(decode_hex::<2>(b"+bcd"), None);
    }

    #[test]
    fn u32_decoding() {
        assert_eq!(parse_u32("0"), Some(0));
        assert_eq!(parse_u32("4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32("4294967296"), None);
        assert_eq!(parse_u32("01"), None);
        assert_eq!(parse_u32("+1"), None);
        assert_eq!(parse_u32(""), None);
    }

    #[test]
    fn ordering_agrees_with_eq_for_hand_built_versions() {
        let a = Version {
            pre: "01",
            ..Version::new(1, 0, 0)
        };
        let b = Version {
            pre: "1",
            ..Version::new(1, 0, 0)
        };
        assert_ne!(a, b);
        assert_ne!(a.cmp(&b), Ordering::Equal);
        assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
    }
}
