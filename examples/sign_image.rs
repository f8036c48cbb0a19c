//! Makes and checks signed update manifests on the host (see `cellular_ota::ota::manifest`).
//!
//! ```text
//! cargo run --example sign_image -- keygen KEYFILE
//! cargo run --example sign_image -- pubkey KEYFILE
//! cargo run --example sign_image -- sign --key KEYFILE --product NAME [--hardware REV] \
//!                                        [--version 1.4.2] [--patch PATCH [--base BASE]] \
//!                                        IMAGE [--out MANIFEST]
//! cargo run --example sign_image -- verify --pubkey HEX IMAGE MANIFEST
//! ```
//!
//! - `keygen` writes a new random Ed25519 secret key — its 32-byte seed, raw — to KEYFILE
//!   (refusing to overwrite one; mode 0600 on Unix) and prints the public key as hex and as a
//!   Rust `[u8; 32]` literal to compile into the firmware. Keep KEYFILE out of version control.
//! - `pubkey` prints the public key of an existing KEYFILE the same way.
//! - `sign` hashes IMAGE (size and SHA-256), signs the canonical message (format 2: product,
//!   optional hardware revision, version, size, SHA-256) and writes the manifest to MANIFEST
//!   (default `IMAGE.manifest`), then parses and verifies what it wrote. For an ESP app image
//!   the version defaults to the one its app descriptor declares, and a `--version` that
//!   differs from it is refused: the device would refuse that image after downloading it.
//!   With `--patch PATCH` the server publishes PATCH instead of IMAGE: a detools
//!   "sequential" patch that rebuilds IMAGE, from BASE (`--base`, the image the devices
//!   run: a delta) or from nothing (a compressed image). The manifest is then format 3 and
//!   also signs the patch's size and SHA-256 and, for a delta, the base's (default MANIFEST:
//!   `PATCH.manifest`). Make the patch with detools (`pip install detools`), as Espressif's
//!   esp_delta_ota does: `detools create_patch -c heatshrink BASE IMAGE PATCH` (a delta) or
//!   `detools create_patch -c heatshrink /dev/null IMAGE PATCH` (a compressed image).
//! - `verify` checks a manifest's signature with the public key and that IMAGE has the size
//!   and SHA-256 it names.
//!
//! Exit status: 0 on success, 1 on failure (I/O, bad key file, verification failed), 2 on a
//! usage error.

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cellular_ota::ota::esp_idf::image::{APP_DESC_LEN, AppDescriptor, IMAGE_MAGIC};
use cellular_ota::ota::manifest::{
    Field, MAX_SIGNED_MESSAGE_LEN, MAX_WRITTEN_LEN, Manifest, Payload, Version, validate_id,
    write_manifest,
};
use ed25519_compact::{KeyPair, Seed};
use sha2::{Digest, Sha256};

const USAGE: &str = "\
usage:
  sign_image keygen KEYFILE
  sign_image pubkey KEYFILE
  sign_image sign --key KEYFILE --product NAME [--hardware REV] [--version VERSION]
                  [--patch PATCH [--base BASE]] IMAGE [--out MANIFEST]
  sign_image verify --pubkey HEX [--patch PATCH] IMAGE MANIFEST

KEYFILE holds a raw 32-byte Ed25519 seed (written by `keygen`); keep it secret.
NAME and REV are 1-64 letters, digits, `.`, `_` or `-` (the device's product and
hardware revision; a device refuses manifests for another product).
VERSION is MAJOR.MINOR.PATCH[-PRE], e.g. 1.4.2 or 2.0.0-rc.1; for an ESP app image it
defaults to the version its app descriptor declares, and must equal it.
MANIFEST defaults to IMAGE.manifest (PATCH.manifest with --patch).
PATCH is a detools sequential patch that makes IMAGE from BASE (a delta) or from nothing
(a compressed image); the server publishes it in place of IMAGE.";

enum Failure {
    /// Bad command line: exit status 2.
    Usage(String),
    /// The operation failed: exit status 1.
    Failed(String),
}

type Outcome = Result<(), Failure>;

fn usage(message: impl Into<String>) -> Failure {
    Failure::Usage(message.into())
}

fn failed(message: impl Into<String>) -> Failure {
    Failure::Failed(message.into())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("error: {message}\n\n{USAGE}");
            ExitCode::from(2)
        }
        Err(Failure::Failed(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &[String]) -> Outcome {
    let Some((command, rest)) = args.split_first() else {
        return Err(usage("no command given"));
    };
    match command.as_str() {
        "keygen" => keygen(rest),
        "pubkey" => pubkey(rest),
        "sign" => sign(rest),
        "verify" => verify(rest),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(usage(format!("unknown command `{other}`"))),
    }
}

/// `--name value` options (each at most once) and positional arguments.
struct Args {
    options: Vec<(&'static str, String)>,
    positional: Vec<String>,
}

impl Args {
    fn parse(args: &[String], known: &[&'static str]) -> Result<Self, Failure> {
        let mut parsed = Args {
            options: Vec::new(),
            positional: Vec::new(),
        };
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            if let Some(name) = arg.strip_prefix("--") {
                let Some(&known) = known.iter().find(|k| **k == name) else {
                    return Err(usage(format!("unknown option `{arg}`")));
                };
                if parsed.options.iter().any(|(k, _)| *k == known) {
                    return Err(usage(format!("`{arg}` given twice")));
                }
                let Some(value) = iter.next() else {
                    return Err(usage(format!("`{arg}` needs a value")));
                };
                parsed.options.push((known, value.clone()));
            } else {
                parsed.positional.push(arg.clone());
            }
        }
        Ok(parsed)
    }

    fn option(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    fn required(&self, name: &str) -> Result<&str, Failure> {
        self.option(name)
            .ok_or_else(|| usage(format!("missing `--{name}`")))
    }

    fn positional<const N: usize>(&self, names: [&str; N]) -> Result<[&str; N], Failure> {
        if self.positional.len() != N {
            return Err(usage(format!(
                "expected {} argument(s) ({}), got {}",
                N,
                names.join(" "),
                self.positional.len()
            )));
        }
        Ok(std::array::from_fn(|i| self.positional[i].as_str()))
    }
}

fn keygen(args: &[String]) -> Outcome {
    let args = Args::parse(args, &[])?;
    let [keyfile] = args.positional(["KEYFILE"])?;
    let pair = KeyPair::generate();
    let seed = pair.sk.seed();

    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(keyfile).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            failed(format!("{keyfile} already exists; not overwriting a key"))
        } else {
            failed(format!("cannot create {keyfile}: {e}"))
        }
    })?;
    file.write_all(&seed[..])
        .and_then(|()| file.sync_all())
        .map_err(|e| failed(format!("cannot write {keyfile}: {e}")))?;

    println!("wrote a new secret key (32-byte Ed25519 seed) to {keyfile}; keep it secret");
    print_public_key(&pair.pk);
    Ok(())
}

fn pubkey(args: &[String]) -> Outcome {
    let args = Args::parse(args, &[])?;
    let [keyfile] = args.positional(["KEYFILE"])?;
    let pair = read_key(keyfile)?;
    print_public_key(&pair.pk);
    Ok(())
}

fn print_public_key(key: &[u8; 32]) {
    println!("public key: {}", hex(key));
    let mut literal = String::from("pub const UPDATE_PUBLIC_KEY: [u8; 32] = [");
    for (i, b) in key.iter().enumerate() {
        if i % 8 == 0 {
            literal.push_str("\n    ");
        } else {
            literal.push(' ');
        }
        let _ = write!(literal, "0x{b:02x},");
    }
    literal.push_str("\n];");
    println!("{literal}");
}

fn read_key(path: &str) -> Result<KeyPair, Failure> {
    let bytes = fs::read(path).map_err(|e| failed(format!("cannot read key file {path}: {e}")))?;
    let seed = Seed::from_slice(&bytes).map_err(|_| {
        failed(format!(
            "{path} is {} bytes; a key file is exactly 32 bytes (an Ed25519 seed from `keygen`)",
            bytes.len()
        ))
    })?;
    KeyPair::try_from_seed(seed).map_err(|_| failed(format!("{path} holds an all-zero seed")))
}

/// Streams a file through SHA-256: (length, hash).
fn hash_file(path: &str) -> Result<(u64, [u8; 32]), Failure> {
    let mut file = File::open(path).map_err(|e| failed(format!("cannot open {path}: {e}")))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut len = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(failed(format!("cannot read {path}: {e}"))),
        };
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok((len, hasher.finalize().into()))
}

fn image_size(path: &str, len: u64) -> Result<u32, Failure> {
    match u32::try_from(len) {
        Ok(0) => Err(failed(format!("{path} is empty"))),
        Ok(size) => Ok(size),
        Err(_) => Err(failed(format!("{path} is {len} bytes, more than 4 GiB"))),
    }
}

/// The version an ESP app image declares in its app descriptor (`esp_app_desc_t` at offset
/// 0x20), if IMAGE is one; `None` for other files.
fn declared_version(path: &str) -> Result<Option<String>, Failure> {
    let mut head = [0u8; 0x20 + APP_DESC_LEN];
    let mut file = File::open(path).map_err(|e| failed(format!("cannot open {path}: {e}")))?;
    if file.read_exact(&mut head).is_err() || head[0] != IMAGE_MAGIC {
        return Ok(None);
    }
    let desc: &[u8; APP_DESC_LEN] = head[0x20..].try_into().expect("length");
    Ok(AppDescriptor::decode(desc)
        .ok()
        .and_then(|d| d.version_str().map(str::to_string)))
}

fn sign(args: &[String]) -> Outcome {
    let args = Args::parse(
        args,
        &[
            "key", "version", "out", "product", "hardware", "patch", "base",
        ],
    )?;
    let [image] = args.positional(["IMAGE"])?;
    let keyfile = args.required("key")?;
    let product = args.required("product")?;
    validate_id(product, Field::Product).map_err(|_| {
        usage(format!(
            "bad product `{product}`: 1-64 letters, digits, `.`, `_` or `-`"
        ))
    })?;
    let hardware = args.option("hardware");
    if let Some(h) = hardware {
        validate_id(h, Field::Hardware).map_err(|_| {
            usage(format!(
                "bad hardware revision `{h}`: 1-64 letters, digits, `.`, `_` or `-`"
            ))
        })?;
    }
    let declared = declared_version(image)?;
    let version_text = match (args.option("version"), declared.as_deref()) {
        (Some(v), _) => v.to_string(),
        (None, Some(d)) => d.strip_prefix('v').unwrap_or(d).to_string(),
        (None, None) => {
            return Err(usage(
                "--version is needed: IMAGE is not an ESP app image with an app descriptor",
            ));
        }
    };
    let version = Version::parse(&version_text).map_err(|_| {
        usage(format!(
            "bad version `{version_text}`: expected MAJOR.MINOR.PATCH[-PRE] \
             without leading zeros, e.g. 1.4.2 or 2.0.0-rc.1"
        ))
    })?;
    if let Some(d) = declared.as_deref() {
        let same = Version::parse(d.strip_prefix('v').unwrap_or(d)).is_ok_and(|dv| dv == version);
        if !same {
            return Err(failed(format!(
                "{image} declares version `{d}` in its app descriptor, not {version}: a device \
                 would refuse it after the download (rebuild it, or sign the version it declares)"
            )));
        }
    }
    let patch = args.option("patch");
    let base = args.option("base");
    if base.is_some() && patch.is_none() {
        return Err(usage("--base needs --patch (the delta made from BASE)"));
    }
    let out_path = match (args.option("out"), patch) {
        (Some(out), _) => PathBuf::from(out),
        (None, Some(p)) => PathBuf::from(format!("{p}.manifest")),
        (None, None) => PathBuf::from(format!("{image}.manifest")),
    };

    let pair = read_key(keyfile)?;
    let (len, sha256) = hash_file(image)?;
    let size = image_size(image, len)?;
    let payload = match (patch, base) {
        (None, _) => Payload::Full,
        (Some(p), None) => {
            let (len, sha256) = hash_file(p)?;
            Payload::Compressed {
                size: nonzero_size(p, len)?,
                sha256,
            }
        }
        (Some(p), Some(b)) => {
            let (len, sha256) = hash_file(p)?;
            let (base_len, base_sha256) = hash_file(b)?;
            Payload::Delta {
                size: nonzero_size(p, len)?,
                sha256,
                base_size: nonzero_size(b, base_len)?,
                base_sha256,
            }
        }
    };

    let mut manifest = Manifest {
        product,
        hardware,
        version,
        size,
        sha256,
        payload,
        signature: None,
    };
    let mut message = [0u8; MAX_SIGNED_MESSAGE_LEN];
    let message = manifest
        .signed_message(&mut message)
        .map_err(|e| failed(format!("cannot build the signed message: {e}")))?;
    manifest.signature = Some(*pair.sk.sign(message, None));

    let mut file = [0u8; MAX_WRITTEN_LEN];
    let n = write_manifest(&manifest, &mut file)
        .map_err(|e| failed(format!("cannot write the manifest: {e}")))?;
    let file = &file[..n];

    // Check what we are about to publish with the same code the device runs.
    let parsed = Manifest::parse(file).map_err(|e| {
        failed(format!(
            "internal error: written manifest does not parse: {e}"
        ))
    })?;
    parsed.verify_signature(&pair.pk).map_err(|e| {
        failed(format!(
            "internal error: written manifest does not verify: {e}"
        ))
    })?;

    write_file(&out_path, file)?;
    println!("wrote {}:", out_path.display());
    print!("{}", String::from_utf8_lossy(file));
    println!("public key: {}", hex(&pair.pk[..]));
    Ok(())
}

/// A patch or base file's length, which the manifest needs in `1..=u32::MAX`.
fn nonzero_size(path: &str, len: u64) -> Result<u32, Failure> {
    match u32::try_from(len) {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(failed(format!(
            "{path} is {len} bytes: a manifest takes 1 to {} bytes",
            u32::MAX
        ))),
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Outcome {
    fs::write(path, bytes).map_err(|e| failed(format!("cannot write {}: {e}", path.display())))
}

fn verify(args: &[String]) -> Outcome {
    let args = Args::parse(args, &["pubkey", "patch"])?;
    let [image, manifest_path] = args.positional(["IMAGE", "MANIFEST"])?;
    let key_hex = args.required("pubkey")?;
    let key: [u8; 32] = unhex(key_hex).ok_or_else(|| {
        usage(format!(
            "bad `--pubkey`: expected 64 hex digits, got {} characters",
            key_hex.len()
        ))
    })?;

    let bytes =
        fs::read(manifest_path).map_err(|e| failed(format!("cannot read {manifest_path}: {e}")))?;
    let manifest = Manifest::parse(&bytes).map_err(|e| failed(format!("{manifest_path}: {e}")))?;
    manifest
        .verify_signature(&key)
        .map_err(|e| failed(format!("{manifest_path}: {e}")))?;

    let (len, sha256) = hash_file(image)?;
    if len != u64::from(manifest.size) {
        return Err(failed(format!(
            "{image} is {len} bytes, the manifest says {}",
            manifest.size
        )));
    }
    if sha256 != manifest.sha256 {
        return Err(failed(format!(
            "{image} has SHA-256 {}, the manifest says {}",
            hex(&sha256),
            hex(&manifest.sha256)
        )));
    }
    match (manifest.payload.patch(), args.option("patch")) {
        (Some((size, sha256)), Some(p)) => {
            let (len, got) = hash_file(p)?;
            if len != u64::from(size) || got != sha256 {
                return Err(failed(format!(
                    "{p} is {len} bytes with SHA-256 {}; the manifest's {} payload is {size} \
                     bytes with SHA-256 {}",
                    hex(&got),
                    manifest.payload.kind(),
                    hex(&sha256)
                )));
            }
        }
        (None, Some(_)) => {
            return Err(failed(format!(
                "{manifest_path} describes a full image, not a patch"
            )));
        }
        (Some(_), None) => println!(
            "note: the manifest's payload is a {}; pass --patch PATCH to check it too",
            manifest.payload.kind()
        ),
        (None, None) => {}
    }
    println!(
        "OK: {image} is {}{} version {}, {} bytes, SHA-256 {}, signed by {}",
        manifest.product,
        manifest
            .hardware
            .map(|h| format!(" ({h})"))
            .unwrap_or_default(),
        manifest.version,
        manifest.size,
        hex(&manifest.sha256),
        hex(&key)
    );
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = text.trim();
    if text.len() != 2 * N || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}
