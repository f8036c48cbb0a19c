//! The update manifest through its public API: sign → write → parse → verify → decide, what
//! tampering and reformatting do to a signature, one specific error per malformed input, and
//! property tests that parsing never panics and writing round-trips.

use cellular_ota::ota::manifest::{
    Decision, Field, MAX_LINE_LEN, MAX_MANIFEST_LEN, MAX_SIGNED_MESSAGE_LEN, MAX_WRITTEN_LEN,
    Manifest, ManifestError, Policy, Version, decide, write_manifest,
};
use ed25519_compact::{KeyPair, Seed};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

/// A fixed test key, so failures reproduce. Never use it for real devices.
fn test_key() -> KeyPair {
    KeyPair::from_seed(Seed::new([0x5e; 32]))
}

fn public(pair: &KeyPair) -> [u8; 32] {
    *pair.pk
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// The product these manifests are for.
const PRODUCT: &str = "7semi-ec200u-logger";

/// What the host tool does: hash the image, sign the canonical message, write the file.
fn sign_image(pair: &KeyPair, version: &str, image: &[u8]) -> Vec<u8> {
    sign_for(pair, PRODUCT, None, version, image)
}

fn sign_for(
    pair: &KeyPair,
    product: &str,
    hardware: Option<&str>,
    version: &str,
    image: &[u8],
) -> Vec<u8> {
    let mut manifest = Manifest {
        product,
        hardware,
        version: Version::parse(version).unwrap(),
        size: u32::try_from(image.len()).unwrap(),
        sha256: sha256(image),
        payload: cellular_ota::ota::manifest::Payload::Full,
        signature: None,
    };
    let mut message = [0u8; MAX_SIGNED_MESSAGE_LEN];
    let message = manifest.signed_message(&mut message).unwrap();
    manifest.signature = Some(*pair.sk.sign(message, None));
    let mut out = [0u8; MAX_WRITTEN_LEN];
    let n = write_manifest(&manifest, &mut out).unwrap();
    out[..n].to_vec()
}

/// A plain manifest with these values (for writing tests).
fn plain(
    version: Version<'_>,
    size: u32,
    sha256: [u8; 32],
    signature: Option<[u8; 64]>,
) -> Manifest<'_> {
    Manifest {
        product: PRODUCT,
        hardware: None,
        version,
        size,
        sha256,
        payload: cellular_ota::ota::manifest::Payload::Full,
        signature,
    }
}

/// The policy of a device running `running` that trusts `key`.
fn policy<'a>(key: [u8; 32], running: Version<'a>) -> Policy<'a> {
    Policy::signed(key, PRODUCT, running)
}

fn image() -> Vec<u8> {
    (0..100_000u32).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn text(file: &[u8]) -> String {
    String::from_utf8(file.to_vec()).unwrap()
}

/// The value of `key` in a canonical file.
fn value_of(file: &[u8], key: &str) -> String {
    text(file)
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix(' ')))
        .unwrap()
        .to_string()
}

fn replace_value(file: &[u8], key: &str, value: &str) -> Vec<u8> {
    let old = format!("{key} {}", value_of(file, key));
    let new = format!("{key} {value}");
    text(file).replacen(&old, &new, 1).into_bytes()
}

// ---------------------------------------------------------------------------------------
// Round trip

#[test]
fn keygen_sign_parse_verify_round_trip() {
    let pair = KeyPair::generate();
    let key = public(&pair);
    let image = image();
    let file = sign_image(&pair, "1.4.2", &image);
    assert!(file.len() <= MAX_WRITTEN_LEN);

    let manifest = Manifest::parse(&file).unwrap();
    assert_eq!(manifest.version, Version::new(1, 4, 2));
    assert_eq!(manifest.size as usize, image.len());
    assert_eq!(manifest.sha256, sha256(&image));
    manifest.verify_signature(&key).unwrap();

    let running = Version::parse("1.4.1").unwrap();
    assert_eq!(
        decide(&manifest, &policy(key, running)),
        Ok(Decision::Update)
    );
    let descriptor = manifest.image_descriptor();
    assert_eq!(descriptor.id, sha256(&image));
    assert_eq!(descriptor.size as usize, image.len());
}

#[test]
fn written_file_is_exactly_the_documented_format() {
    let pair = test_key();
    let file = sign_image(&pair, "2.0.0-rc.1", b"hello");
    let lines: Vec<&str> = std::str::from_utf8(&file).unwrap().lines().collect();
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[0], "cellular-ota-manifest 2");
    assert_eq!(lines[1], "product 7semi-ec200u-logger");
    assert_eq!(lines[2], "version 2.0.0-rc.1");
    assert_eq!(lines[3], "size 5");
    assert_eq!(
        lines[4],
        "sha256 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
    assert_eq!(lines[5].len(), "signature ".len() + 128);
    assert!(file.ends_with(b"\n"));
    // The signed message is the file minus its last line.
    let manifest = Manifest::parse(&file).unwrap();
    let mut buf = [0u8; MAX_SIGNED_MESSAGE_LEN];
    let message = manifest.signed_message(&mut buf).unwrap();
    assert!(file.starts_with(message));
    assert_eq!(file.len() - message.len(), "signature ".len() + 128 + 1);
}

#[test]
fn unsigned_manifest_round_trips() {
    let mut out = [0u8; MAX_WRITTEN_LEN];
    let n = write_manifest(
        &plain(Version::new(3, 0, 0), 42, [0xab; 32], None),
        &mut out,
    )
    .unwrap();
    let manifest = Manifest::parse(&out[..n]).unwrap();
    assert_eq!(manifest.signature, None);
    assert_eq!(
        manifest.verify_signature(&public(&test_key())),
        Err(ManifestError::NoSignature)
    );
}

#[test]
fn write_into_short_buffer_reports_needed_length() {
    let m = plain(Version::new(1, 0, 0), 1, [0; 32], Some([0; 64]));
    let mut big = [0u8; MAX_WRITTEN_LEN];
    let n = write_manifest(&m, &mut big).unwrap();
    for len in [0, 1, 23, n - 1] {
        let mut short = vec![0u8; len];
        assert_eq!(
            write_manifest(&m, &mut short),
            Err(ManifestError::BufferTooSmall { needed: n })
        );
    }
    let mut exact = vec![0u8; n];
    assert_eq!(write_manifest(&m, &mut exact), Ok(n));
}

// ---------------------------------------------------------------------------------------
// Tampering

fn verify(file: &[u8], key: &[u8; 32]) -> Result<(), ManifestError> {
    Manifest::parse(file)?.verify_signature(key)
}

#[test]
fn tampered_fields_are_detected() {
    let pair = test_key();
    let key = public(&pair);
    let file = sign_image(&pair, "1.4.2", &image());
    verify(&file, &key).unwrap();

    let size = value_of(&file, "size");
    let sha = value_of(&file, "sha256");
    let mut sha_flipped = sha.clone().into_bytes();
    sha_flipped[10] = if sha_flipped[10] == b'0' { b'1' } else { b'0' };
    let sha_flipped = String::from_utf8(sha_flipped).unwrap();
    let bigger = (size.parse::<u32>().unwrap() + 1).to_string();
    let smaller = (size.parse::<u32>().unwrap() - 1).to_string();

    for (key_name, value) in [
        ("product", "7semi-ec200u-pump"),
        ("product", "7semi-ec200u-logge"),
        ("version", "1.4.3"),
        ("version", "1.4.2-rc.1"),
        ("version", "2.4.2"),
        ("version", "99.0.0"),
        ("size", bigger.as_str()),
        ("size", smaller.as_str()),
        ("sha256", sha_flipped.as_str()),
        ("sha256", &"0".repeat(64)),
    ] {
        let tampered = replace_value(&file, key_name, value);
        assert_ne!(tampered, file);
        assert_eq!(
            verify(&tampered, &key),
            Err(ManifestError::BadSignature),
            "{key_name} {value}"
        );
    }
}

#[test]
fn every_signature_bit_matters() {
    let pair = test_key();
    let key = public(&pair);
    let file = sign_image(&pair, "1.4.2", &image());
    let manifest = Manifest::parse(&file).unwrap();
    let signature = manifest.signature.unwrap();
    for bit in 0..512 {
        let mut bad = signature;
        bad[bit / 8] ^= 1 << (bit % 8);
        let tampered = Manifest {
            signature: Some(bad),
            ..manifest
        };
        assert_eq!(
            tampered.verify_signature(&key),
            Err(ManifestError::BadSignature),
            "bit {bit}"
        );
    }
}

#[test]
fn tampered_image_no_longer_matches_the_manifest() {
    let pair = test_key();
    let mut image = image();
    let manifest_file = sign_image(&pair, "1.4.2", &image);
    let manifest = Manifest::parse(&manifest_file).unwrap();
    manifest.verify_signature(&public(&pair)).unwrap();

    image[12_345] ^= 0x01;
    assert_ne!(sha256(&image), manifest.sha256);
    image.push(0);
    assert_ne!(image.len(), manifest.size as usize);
}

#[test]
fn other_key_or_other_signature_is_rejected() {
    let pair = test_key();
    let other = KeyPair::from_seed(Seed::new([0x77; 32]));
    let file = sign_image(&pair, "1.4.2", &image());
    assert_eq!(
        verify(&file, &public(&other)),
        Err(ManifestError::BadSignature)
    );

    // A valid signature for another manifest, pasted in.
    let donor = sign_image(&pair, "1.4.3", &image());
    let spliced = replace_value(&file, "signature", &value_of(&donor, "signature"));
    assert_eq!(
        verify(&spliced, &public(&pair)),
        Err(ManifestError::BadSignature)
    );
}

#[test]
fn invalid_public_keys_are_bad_key() {
    let file = sign_image(&test_key(), "1.4.2", &image());
    // [0; 32] decodes to a point of small order; [0xff; 32] is not a canonical encoding.
    for key in [[0u8; 32], [0xff; 32]] {
        assert_eq!(verify(&file, &key), Err(ManifestError::BadKey));
    }
}

// ---------------------------------------------------------------------------------------
// Formatting changes keep signatures valid

#[test]
fn reformatting_keeps_the_signature_valid() {
    let pair = test_key();
    let key = public(&pair);
    let file = sign_image(&pair, "1.4.2-beta.3", &image());
    let original = Manifest::parse(&file).unwrap();
    let canonical = text(&file);
    let lines: Vec<&str> = canonical.lines().collect();
    let (header, body) = lines.split_first().unwrap();

    let mut variants: Vec<String> = vec![
        canonical.replace('\n', "\r\n"),
        canonical.trim_end().to_string(), // no final line ending
        canonical.replace(' ', "   "),
        canonical.replace(' ', "\t"),
        canonical.replace(' ', " \t "),
        lines
            .iter()
            .map(|l| format!("  {l}\t "))
            .collect::<Vec<_>>()
            .join("\n"),
        canonical
            .to_uppercase()
            .replace("CELLULAR-OTA-MANIFEST", "cellular-ota-manifest")
            .replace("VERSION", "version")
            .replace("PRODUCT", "product")
            .replace("7SEMI-EC200U-LOGGER", "7semi-ec200u-logger")
            .replace("SIZE", "size")
            .replace("SHA256", "sha256")
            .replace("SIGNATURE", "signature")
            .replace("BETA", "beta"),
        format!(
            "{header}\n\n# built by CI job 1234\n   # indented comment\n{}\nnotes Fixes the modem reboot loop\nbuilt 2026-11-20\nnotes again\nx-flag\n\n",
            body.join("\n\n")
        ),
    ];
    // Every order of the five keys after the header.
    for perm in permutations(body.len()) {
        let reordered: Vec<&str> = perm.iter().map(|&i| body[i]).collect();
        variants.push(format!("{header}\n{}\n", reordered.join("\n")));
        variants.push(format!("{header}\r\n{}", reordered.join("\r\n")));
    }

    for variant in &variants {
        let parsed =
            Manifest::parse(variant.as_bytes()).unwrap_or_else(|e| panic!("{e:?} for {variant:?}"));
        assert_eq!(parsed, original, "{variant:?}");
        parsed.verify_signature(&key).unwrap();
    }
}

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for i in 0..=p.len() {
            let mut q = p.clone();
            q.insert(i, n - 1);
            out.push(q);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Malformed input: one specific error each

const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// A valid unsigned body with one line replaced (or removed with `None`): header (line 1),
/// version (2), size (3), sha256 (4), product (5).
fn body_with(key: &str, line: Option<&str>) -> String {
    let mut out = String::from("cellular-ota-manifest 2\n");
    for (k, l) in [
        ("version", "version 1.4.2".to_string()),
        ("size", "size 1572864".to_string()),
        ("sha256", format!("sha256 {SHA}")),
        ("product", "product 7semi-ec200u-logger".to_string()),
    ] {
        if k == key {
            if let Some(line) = line {
                out.push_str(line);
                out.push('\n');
            }
        } else {
            out.push_str(&l);
            out.push('\n');
        }
    }
    out
}

macro_rules! rejects {
    ($($name:ident: $input:expr => $error:expr;)*) => {$(
        #[test]
        fn $name() {
            let input: Vec<u8> = $input.into();
            assert_eq!(Manifest::parse(&input), Err($error), "{:?}", String::from_utf8_lossy(&input));
        }
    )*};
}

rejects! {
    empty: "" => ManifestError::BadHeader;
    only_newlines: "\n\n" => ManifestError::BadHeader;
    html_error_page: "<html><body>404 Not Found</body></html>\n" => ManifestError::BadHeader;
    header_wrong_magic: body_with("", None).replace("cellular-ota-manifest", "cellular-ota-manifes") => ManifestError::BadHeader;
    header_uppercase: body_with("", None).replace("cellular-ota-manifest", "CELLULAR-OTA-MANIFEST") => ManifestError::BadHeader;
    header_without_format: body_with("", None).replace("manifest 2", "manifest") => ManifestError::BadHeader;
    header_non_numeric_format: body_with("", None).replace("manifest 2", "manifest one") => ManifestError::BadHeader;
    header_trailing_word: body_with("", None).replace("manifest 2", "manifest 2 extra") => ManifestError::BadHeader;
    header_not_first: format!("\n{}", body_with("", None)) => ManifestError::BadHeader;
    comment_before_header: format!("# hi\n{}", body_with("", None)) => ManifestError::BadHeader;
    header_format_1_is_outdated: body_with("", None).replace("manifest 2", "manifest 1") => ManifestError::Outdated { format: 1 };
    format_1_file_is_outdated: format!("cellular-ota-manifest 1\nversion 1.4.2\nsize 5\nsha256 {SHA}\n") => ManifestError::Outdated { format: 1 };
    header_format_3_without_payload: body_with("", None).replace("manifest 2", "manifest 3") => ManifestError::Missing { field: Field::Payload };
    header_format_4: body_with("", None).replace("manifest 2", "manifest 4") => ManifestError::UnsupportedFormat { format: 4 };
    header_format_0: body_with("", None).replace("manifest 2", "manifest 0") => ManifestError::UnsupportedFormat { format: 0 };
    header_format_huge: body_with("", None).replace("manifest 2", "manifest 99999999999") => ManifestError::UnsupportedFormat { format: u32::MAX };
    header_repeated: format!("{}cellular-ota-manifest 2\n", body_with("", None)) => ManifestError::BadLine { line: 6 };

    key_uppercase: body_with("version", Some("Version 1.4.2")) => ManifestError::BadLine { line: 2 };
    key_starts_with_digit: format!("{}9lives yes\n", body_with("", None)) => ManifestError::BadLine { line: 6 };
    key_with_colon: body_with("size", Some("size: 5")) => ManifestError::BadLine { line: 3 };
    key_with_equals: body_with("size", Some("size=5")) => ManifestError::BadLine { line: 3 };
    key_value_json_like: format!("{}{{\"a\": 1}}\n", body_with("", None)) => ManifestError::BadLine { line: 6 };

    duplicate_product: format!("{}product 7semi-ec200u-logger\n", body_with("", None)) => ManifestError::Duplicate { field: Field::Product };
    duplicate_hardware: format!("{}hardware a\nhardware b\n", body_with("", None)) => ManifestError::Duplicate { field: Field::Hardware };
    duplicate_version: format!("{}version 1.4.2\n", body_with("", None)) => ManifestError::Duplicate { field: Field::Version };
    duplicate_size_even_if_equal: format!("{}size 1572864\n", body_with("", None)) => ManifestError::Duplicate { field: Field::Size };
    duplicate_sha256: format!("{}sha256 {SHA}\n", body_with("", None)) => ManifestError::Duplicate { field: Field::Sha256 };
    duplicate_signature: format!("{}signature {s}\nsignature {s}\n", body_with("", None), s = "0".repeat(128)) => ManifestError::Duplicate { field: Field::Signature };

    missing_product: body_with("product", None) => ManifestError::Missing { field: Field::Product };
    missing_version: body_with("version", None) => ManifestError::Missing { field: Field::Version };
    missing_size: body_with("size", None) => ManifestError::Missing { field: Field::Size };
    missing_sha256: body_with("sha256", None) => ManifestError::Missing { field: Field::Sha256 };
    header_only: "cellular-ota-manifest 2\n" => ManifestError::Missing { field: Field::Product };

    product_empty: body_with("product", Some("product")) => ManifestError::BadId { field: Field::Product };
    product_with_space: body_with("product", Some("product pump controller")) => ManifestError::BadId { field: Field::Product };
    product_with_slash: body_with("product", Some("product a/b")) => ManifestError::BadId { field: Field::Product };
    product_too_long: body_with("product", Some(&format!("product {}", "p".repeat(65)))) => ManifestError::BadId { field: Field::Product };
    hardware_empty: format!("{}hardware\n", body_with("", None)) => ManifestError::BadId { field: Field::Hardware };
    hardware_with_quote: format!("{}hardware \"rev-b\"\n", body_with("", None)) => ManifestError::BadId { field: Field::Hardware };

    sha256_short: body_with("sha256", Some(&format!("sha256 {}", &SHA[1..]))) => ManifestError::BadHex { field: Field::Sha256 };
    sha256_long: body_with("sha256", Some(&format!("sha256 {SHA}0"))) => ManifestError::BadHex { field: Field::Sha256 };
    sha256_non_hex: body_with("sha256", Some(&format!("sha256 g{}", &SHA[1..]))) => ManifestError::BadHex { field: Field::Sha256 };
    sha256_with_0x: body_with("sha256", Some(&format!("sha256 0x{}", &SHA[2..]))) => ManifestError::BadHex { field: Field::Sha256 };
    sha256_split_by_space: body_with("sha256", Some(&format!("sha256 {} {}", &SHA[..32], &SHA[32..]))) => ManifestError::BadHex { field: Field::Sha256 };
    sha256_empty: body_with("sha256", Some("sha256")) => ManifestError::BadHex { field: Field::Sha256 };
    signature_short: format!("{}signature {}\n", body_with("", None), "0".repeat(127)) => ManifestError::BadHex { field: Field::Signature };
    signature_long: format!("{}signature {}\n", body_with("", None), "0".repeat(130)) => ManifestError::BadHex { field: Field::Signature };
    signature_non_hex: format!("{}signature {}z\n", body_with("", None), "0".repeat(127)) => ManifestError::BadHex { field: Field::Signature };

    size_zero: body_with("size", Some("size 0")) => ManifestError::BadSize;
    size_leading_zero: body_with("size", Some("size 0100")) => ManifestError::BadSize;
    size_negative: body_with("size", Some("size -1")) => ManifestError::BadSize;
    size_plus: body_with("size", Some("size +1")) => ManifestError::BadSize;
    size_overflow: body_with("size", Some("size 4294967296")) => ManifestError::BadSize;
    size_huge: body_with("size", Some("size 99999999999999999999999")) => ManifestError::BadSize;
    size_fraction: body_with("size", Some("size 1.5")) => ManifestError::BadSize;
    size_exponent: body_with("size", Some("size 1e6")) => ManifestError::BadSize;
    size_hex: body_with("size", Some("size 0x10")) => ManifestError::BadSize;
    size_with_unit: body_with("size", Some("size 10 bytes")) => ManifestError::BadSize;
    size_empty: body_with("size", Some("size")) => ManifestError::BadSize;

    version_two_parts: body_with("version", Some("version 1.4")) => ManifestError::BadVersion;
    version_four_parts: body_with("version", Some("version 1.4.2.1")) => ManifestError::BadVersion;
    version_v_prefix: body_with("version", Some("version v1.4.2")) => ManifestError::BadVersion;
    version_leading_zero: body_with("version", Some("version 01.4.2")) => ManifestError::BadVersion;
    version_empty_part: body_with("version", Some("version 1..2")) => ManifestError::BadVersion;
    version_overflow: body_with("version", Some("version 4294967296.0.0")) => ManifestError::BadVersion;
    version_empty_pre: body_with("version", Some("version 1.4.2-")) => ManifestError::BadVersion;
    version_empty_pre_identifier: body_with("version", Some("version 1.4.2-rc..1")) => ManifestError::BadVersion;
    version_pre_leading_zero: body_with("version", Some("version 1.4.2-rc.01")) => ManifestError::BadVersion;
    version_pre_bad_char: body_with("version", Some("version 1.4.2-rc_1")) => ManifestError::BadVersion;
    version_build_metadata: body_with("version", Some("version 1.4.2+build.5")) => ManifestError::BadVersion;
    version_with_space: body_with("version", Some("version 1.4.2 -rc")) => ManifestError::BadVersion;
    version_empty: body_with("version", Some("version")) => ManifestError::BadVersion;
    version_too_long: body_with("version", Some(&format!("version 1.0.0-{}", "a".repeat(27)))) => ManifestError::BadVersion;

    line_too_long: format!("{}notes {}\n", body_with("", None), "x".repeat(MAX_LINE_LEN - 5)) => ManifestError::LineTooLong { line: 6 };
    line_too_long_before_other_errors: format!("cellular-ota-manifest 2\n{}\n", "x".repeat(MAX_LINE_LEN + 1)) => ManifestError::LineTooLong { line: 2 };

    non_ascii_utf8: format!("{}notes caf\u{e9}\n", body_with("", None)) => ManifestError::InvalidByte { offset: body_with("", None).len() + 9 };
    byte_order_mark: format!("\u{feff}{}", body_with("", None)) => ManifestError::InvalidByte { offset: 0 };
    nul_byte: format!("{}\0", body_with("", None)) => ManifestError::InvalidByte { offset: body_with("", None).len() };
    escape_char: format!("{}notes \x1b[31m\n", body_with("", None)) => ManifestError::InvalidByte { offset: body_with("", None).len() + 6 };
    delete_char: format!("{}notes \x7f\n", body_with("", None)) => ManifestError::InvalidByte { offset: body_with("", None).len() + 6 };
    lone_cr: body_with("", None).replacen('\n', "\r", 1) => ManifestError::InvalidByte { offset: 23 };
    cr_at_end_of_input: format!("{}\r", body_with("", None)) => ManifestError::InvalidByte { offset: body_with("", None).len() };
    invalid_byte_beats_structure: b"garbage\n\xff".to_vec() => ManifestError::InvalidByte { offset: 8 };

    too_large: format!("{}#{}", body_with("", None), "\n".repeat(MAX_MANIFEST_LEN)) => ManifestError::TooLarge { len: body_with("", None).len() + 1 + MAX_MANIFEST_LEN };
    too_large_binary: vec![0xffu8; 4096] => ManifestError::TooLarge { len: 4096 };
}

#[test]
fn limits_are_inclusive() {
    // A line of exactly MAX_LINE_LEN bytes (CRLF not counted) is accepted.
    let base = body_with("", None);
    let line = format!("notes {}", "x".repeat(MAX_LINE_LEN - 6));
    assert_eq!(line.len(), MAX_LINE_LEN);
    let input = format!("{base}{line}\r\n");
    assert!(Manifest::parse(input.as_bytes()).is_ok());

    // A file of exactly MAX_MANIFEST_LEN bytes is accepted.
    let mut input = base.clone().into_bytes();
    input.resize(MAX_MANIFEST_LEN, b'\n');
    assert!(Manifest::parse(&input).is_ok());
    input.push(b'\n');
    assert_eq!(
        Manifest::parse(&input),
        Err(ManifestError::TooLarge {
            len: MAX_MANIFEST_LEN + 1
        })
    );

    // The longest version is accepted, one byte more is not.
    let longest = format!("1.0.0-{}", "a".repeat(26));
    assert_eq!(longest.len(), 32);
    assert!(Version::parse(&longest).is_ok());
    assert_eq!(
        Version::parse(&format!("{longest}a")),
        Err(ManifestError::BadVersion)
    );
}

#[test]
fn leading_blanks_on_the_header_are_accepted() {
    let input = format!("  {}", body_with("", None));
    assert!(Manifest::parse(input.as_bytes()).is_ok());
}

#[test]
fn errors_have_messages() {
    let cases = [
        (ManifestError::TooLarge { len: 2000 }, "2000"),
        (ManifestError::LineTooLong { line: 7 }, "line 7"),
        (
            ManifestError::Missing {
                field: Field::Sha256,
            },
            "`sha256` is missing",
        ),
        (
            ManifestError::Downgrade {
                offered: [1, 2, 3],
                running: [1, 3, 0],
            },
            "1.2.3, older than running 1.3.0",
        ),
    ];
    for (error, needle) in cases {
        let message = error.to_string();
        assert!(message.contains(needle), "{message:?} lacks {needle:?}");
    }
    let _: &dyn core::error::Error = &ManifestError::BadHeader;
}

// ---------------------------------------------------------------------------------------
// Policy

fn signed(version: &str) -> (Vec<u8>, [u8; 32]) {
    let pair = test_key();
    (sign_image(&pair, version, b"image"), public(&pair))
}

#[test]
fn decide_same_version_is_up_to_date() {
    let (file, key) = signed("1.4.2");
    let m = Manifest::parse(&file).unwrap();
    let running = Version::new(1, 4, 2);
    assert_eq!(decide(&m, &policy(key, running)), Ok(Decision::UpToDate));
    let mut unsigned = Policy::unsigned(PRODUCT, Some(running));
    unsigned.allow_downgrade = true;
    assert_eq!(decide(&m, &unsigned), Ok(Decision::UpToDate));
}

#[test]
fn decide_newer_is_update() {
    for (offered, running) in [
        ("1.4.2", "1.4.1"),
        ("1.5.0", "1.4.9"),
        ("2.0.0", "1.99.99"),
        ("1.4.2", "1.4.2-rc.9"),
        ("1.4.2-rc.10", "1.4.2-rc.9"),
    ] {
        let (file, key) = signed(offered);
        let m = Manifest::parse(&file).unwrap();
        let running = Version::parse(running).unwrap();
        assert_eq!(
            decide(&m, &policy(key, running)),
            Ok(Decision::Update),
            "{offered} over {running}"
        );
    }
}

#[test]
fn decide_older_is_refused_unless_allowed() {
    let (file, key) = signed("1.4.2");
    let m = Manifest::parse(&file).unwrap();
    let running = Version::parse("1.10.0").unwrap();
    let mut p = policy(key, running);
    assert_eq!(
        decide(&m, &p),
        Err(ManifestError::Downgrade {
            offered: [1, 4, 2],
            running: [1, 10, 0]
        })
    );
    p.allow_downgrade = true;
    assert_eq!(decide(&m, &p), Ok(Decision::Update));

    // Release to its own pre-release is a downgrade too.
    let (file, key) = signed("1.4.2-rc.1");
    let m = Manifest::parse(&file).unwrap();
    assert_eq!(
        decide(&m, &policy(key, Version::new(1, 4, 2))),
        Err(ManifestError::Downgrade {
            offered: [1, 4, 2],
            running: [1, 4, 2]
        })
    );
}

#[test]
fn decide_with_key_needs_the_running_version() {
    // Replaying an old signed manifest would otherwise be accepted.
    let (file, key) = signed("0.0.1");
    let m = Manifest::parse(&file).unwrap();
    let mut p = policy(key, Version::new(1, 0, 0));
    p.running = None;
    assert_eq!(decide(&m, &p), Err(ManifestError::RunningVersionUnknown));
    // Without a key (development) an unknown version installs whatever is offered.
    assert_eq!(
        decide(&m, &Policy::unsigned(PRODUCT, None)),
        Ok(Decision::Update)
    );
}

#[test]
fn decide_refuses_another_product() {
    let pair = test_key();
    let key = public(&pair);
    let running = Version::new(1, 0, 0);
    let file = sign_for(&pair, "7semi-ec200u-pump", None, "2.0.0", b"image");
    let m = Manifest::parse(&file).unwrap();
    assert_eq!(
        decide(&m, &policy(key, running)),
        Err(ManifestError::OtherProduct)
    );
    // Names compare exactly.
    let file = sign_for(&pair, "7Semi-EC200U-Logger", None, "2.0.0", b"image");
    let m = Manifest::parse(&file).unwrap();
    assert_eq!(
        decide(&m, &policy(key, running)),
        Err(ManifestError::OtherProduct)
    );
    // Even unsigned manifests name their product.
    let unsigned = Manifest {
        signature: None,
        ..m
    };
    assert_eq!(
        decide(&unsigned, &Policy::unsigned(PRODUCT, Some(running))),
        Err(ManifestError::OtherProduct)
    );
}

#[test]
fn decide_checks_the_hardware_revision_when_the_manifest_names_one() {
    let pair = test_key();
    let key = public(&pair);
    let running = Version::new(1, 0, 0);
    let for_rev_b = Manifest::parse(&sign_for(&pair, PRODUCT, Some("rev-b"), "2.0.0", b"i"))
        .unwrap()
        .to_owned_file();
    let m = Manifest::parse(&for_rev_b).unwrap();
    let mut p = policy(key, running);
    // A device that names no revision, or another one, refuses it.
    assert_eq!(decide(&m, &p), Err(ManifestError::OtherHardware));
    p.hardware = Some("rev-c");
    assert_eq!(decide(&m, &p), Err(ManifestError::OtherHardware));
    p.hardware = Some("rev-b");
    assert_eq!(decide(&m, &p), Ok(Decision::Update));
    // A manifest without a revision is for every revision of the product.
    let any = sign_for(&pair, PRODUCT, None, "2.0.0", b"i");
    assert_eq!(
        decide(&Manifest::parse(&any).unwrap(), &p),
        Ok(Decision::Update)
    );
    // The revision is signed: removing it breaks the signature.
    let stripped = text(&for_rev_b).replace("hardware rev-b\n", "");
    assert_eq!(
        verify(stripped.as_bytes(), &key),
        Err(ManifestError::BadSignature)
    );
}

/// Keeps the parsed bytes around (test convenience).
trait ToOwnedFile {
    fn to_owned_file(&self) -> Vec<u8>;
}

impl ToOwnedFile for Manifest<'_> {
    fn to_owned_file(&self) -> Vec<u8> {
        let mut out = [0u8; MAX_WRITTEN_LEN];
        let n = write_manifest(self, &mut out).unwrap();
        out[..n].to_vec()
    }
}

#[test]
fn decide_with_key_requires_a_valid_signature() {
    let (file, key) = signed("1.4.2");
    let unsigned = Manifest {
        signature: None,
        ..Manifest::parse(&file).unwrap()
    };
    let running = Version::new(1, 0, 0);
    assert_eq!(
        decide(&unsigned, &policy(key, running)),
        Err(ManifestError::NoSignature)
    );
    // The signature is checked before anything else, even for "up to date" or another
    // product.
    let forged = Manifest {
        version: Version::new(1, 0, 0),
        product: "anything",
        ..Manifest::parse(&file).unwrap()
    };
    assert_eq!(
        decide(&forged, &policy(key, running)),
        Err(ManifestError::BadSignature)
    );
    assert_eq!(
        decide(&forged, &policy([0; 32], running)),
        Err(ManifestError::BadKey)
    );
}

#[test]
fn decide_without_key_accepts_unsigned_and_even_forged() {
    // This is the documented security consequence of running without a key.
    let (file, _) = signed("1.4.2");
    let m = Manifest::parse(&file).unwrap();
    let unsigned = Manifest {
        signature: None,
        ..m
    };
    let forged = Manifest {
        version: Version::new(9, 0, 0),
        ..m
    };
    let p = Policy::unsigned(PRODUCT, Some(Version::new(1, 0, 0)));
    assert_eq!(decide(&unsigned, &p), Ok(Decision::Update));
    assert_eq!(decide(&forged, &p), Ok(Decision::Update));
}

#[test]
fn format_1_signatures_never_verify_as_format_2() {
    // The header line is part of the signed message: a format-1 signature over the same
    // values cannot be reused under a format-2 header.
    let pair = test_key();
    let key = public(&pair);
    let sha = sha256(b"image");
    let hex: String = sha.iter().map(|b| format!("{b:02x}")).collect();
    let v1_message = format!("cellular-ota-manifest 1\nversion 1.4.2\nsize 5\nsha256 {hex}\n");
    let v1_signature: [u8; 64] = *pair.sk.sign(v1_message.as_bytes(), None);
    let reheadered = Manifest {
        product: PRODUCT,
        hardware: None,
        version: Version::new(1, 4, 2),
        size: 5,
        sha256: sha,
        payload: cellular_ota::ota::manifest::Payload::Full,
        signature: Some(v1_signature),
    };
    assert_eq!(
        reheadered.verify_signature(&key),
        Err(ManifestError::BadSignature)
    );
}

// ---------------------------------------------------------------------------------------
// Version ordering

/// Strictly ascending, from the semver 2.0.0 specification (§11) plus numeric edge cases.
const ASCENDING: &[&str] = &[
    "0.0.0",
    "0.0.1",
    "0.1.0",
    "0.9.0",
    "0.10.0",
    "1.0.0-0",
    "1.0.0-1",
    "1.0.0-2",
    "1.0.0-10",
    "1.0.0-10.1",
    "1.0.0-99999999999999999999",
    "1.0.0-100000000000000000000",
    "1.0.0-A",
    "1.0.0-Z",
    "1.0.0-a-",
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1-rc.1",
    "1.0.1",
    "1.2.0",
    "1.10.0",
    "1.10.2",
    "2.0.0",
    "10.0.0",
    "4294967295.4294967295.4294967295",
];

#[test]
fn version_ordering_table() {
    let versions: Vec<Version<'_>> = ASCENDING
        .iter()
        .map(|v| Version::parse(v).unwrap_or_else(|e| panic!("{v}: {e:?}")))
        .collect();
    for (i, a) in versions.iter().enumerate() {
        for (j, b) in versions.iter().enumerate() {
            assert_eq!(a.cmp(b), i.cmp(&j), "{} vs {}", ASCENDING[i], ASCENDING[j]);
            assert_eq!(a == b, i == j);
        }
    }
}

#[test]
fn version_display_round_trips() {
    for text in ASCENDING {
        let version = Version::parse(text).unwrap();
        assert_eq!(version.to_string(), *text);
        assert_eq!(version.is_prerelease(), text.contains('-'));
    }
}

// ---------------------------------------------------------------------------------------
// Properties

/// Versions whose text fits `MAX_VERSION_LEN` (32 bytes).
fn version_strategy() -> impl Strategy<Value = (u32, u32, u32, String)> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        prop_oneof![
            Just(String::new()),
            "(0|[1-9][0-9]{0,5}|[A-Za-z-][0-9A-Za-z-]{0,5})(\\.(0|[1-9][0-9]{0,5}|[A-Za-z-][0-9A-Za-z-]{0,5})){0,3}",
        ],
    )
        .prop_filter("fits MAX_VERSION_LEN", |(a, b, c, pre)| {
            let v = Version {
                major: *a,
                minor: *b,
                patch: *c,
                pre,
            };
            v.to_string().len() <= cellular_ota::ota::manifest::MAX_VERSION_LEN
        })
}

fn id_strategy() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._-]{1,64}"
}

fn valid_manifest_bytes() -> impl Strategy<Value = Vec<u8>> {
    (
        version_strategy(),
        1..=u32::MAX,
        any::<[u8; 32]>(),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 64)),
        id_strategy(),
        proptest::option::of(id_strategy()),
    )
        .prop_map(
            |((major, minor, patch, pre), size, sha, sig, product, hardware)| {
                let manifest = Manifest {
                    product: &product,
                    hardware: hardware.as_deref(),
                    version: Version {
                        major,
                        minor,
                        patch,
                        pre: &pre,
                    },
                    size,
                    sha256: sha,
                    payload: cellular_ota::ota::manifest::Payload::Full,
                    signature: sig.map(|s| s.try_into().unwrap()),
                };
                let mut out = [0u8; MAX_WRITTEN_LEN];
                let n = write_manifest(&manifest, &mut out).unwrap();
                out[..n].to_vec()
            },
        )
}

proptest! {
    #[test]
    fn parse_never_panics_on_arbitrary_bytes(input in proptest::collection::vec(any::<u8>(), 0..1200)) {
        let _ = Manifest::parse(&input);
    }

    #[test]
    fn parse_never_panics_on_near_manifests(
        base in valid_manifest_bytes(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 1..8),
    ) {
        let mut input = base;
        for (at, byte, op) in edits {
            let i = at.index(input.len() + 1);
            match op {
                0 => { if i < input.len() { input[i] = byte; } }
                1 => input.insert(i, byte),
                _ => { if i < input.len() { input.remove(i); } }
            }
        }
        if let Ok(manifest) = Manifest::parse(&input) {
            // Whatever parses can be written canonically and parses to the same values.
            let mut out = [0u8; MAX_WRITTEN_LEN];
            let n = write_manifest(&manifest, &mut out).unwrap();
            prop_assert_eq!(Manifest::parse(&out[..n]).unwrap(), manifest);
        }
    }

    #[test]
    fn write_then_parse_round_trips(
        (major, minor, patch, pre) in version_strategy(),
        size in 1..=u32::MAX,
        sha in any::<[u8; 32]>(),
        product in id_strategy(),
        hardware in proptest::option::of(id_strategy()),
    ) {
        let version = Version { major, minor, patch, pre: &pre };
        let manifest = Manifest {
            product: &product,
            hardware: hardware.as_deref(),
            version,
            size,
            sha256: sha,
            payload: cellular_ota::ota::manifest::Payload::Full,
            signature: Some([7; 64]),
        };
        let mut out = [0u8; MAX_WRITTEN_LEN];
        let n = write_manifest(&manifest, &mut out).unwrap();
        let parsed = Manifest::parse(&out[..n]).unwrap();
        prop_assert_eq!(parsed, manifest);
        let shown = version.to_string();
        prop_assert_eq!(Version::parse(&shown), Ok(version));
    }

    #[test]
    fn version_order_is_antisymmetric_and_agrees_with_eq(
        (a0, a1, a2, apre) in (0..3u32, 0..3u32, 0..3u32, "[a-c0-2.]{0,6}"),
        (b0, b1, b2, bpre) in (0..3u32, 0..3u32, 0..3u32, "[a-c0-2.]{0,6}"),
    ) {
        // Hand-built versions, even ones `parse` would reject: the order stays total.
        let a = Version { major: a0, minor: a1, patch: a2, pre: &apre };
        let b = Version { major: b0, minor: b1, patch: b2, pre: &bpre };
        prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
        prop_assert_eq!(a.cmp(&b) == std::cmp::Ordering::Equal, a == b);
    }
}

/// Format 3: a compressed image and a delta round-trip through `write_manifest` and `parse`,
/// sign with the `cellular-ota-manifest 3` header and the payload lines, and a changed
/// payload value breaks the signature.
#[test]
fn format_3_payloads_round_trip_and_are_signed() {
    use cellular_ota::ota::manifest::Payload;
    let pair = KeyPair::from_seed(Seed::new([9; 32]));
    let key = *pair.pk;
    let img = image();
    let delta = Payload::Delta {
        size: 4242,
        sha256: [0xab; 32],
        base_size: 65_536,
        base_sha256: [0xcd; 32],
    };
    let compressed = Payload::Compressed {
        size: 777,
        sha256: [0x12; 32],
    };
    for payload in [delta, compressed] {
        let mut m = plain(Version::new(2, 0, 0), img.len() as u32, sha256(&img), None);
        m.payload = payload;
        let mut msg = [0u8; MAX_SIGNED_MESSAGE_LEN];
        let message = m.signed_message(&mut msg).unwrap().to_vec();
        let text = String::from_utf8(message.clone()).unwrap();
        assert!(text.starts_with("cellular-ota-manifest 3\n"), "{text}");
        assert!(
            text.contains(&format!("\npayload {}\n", payload.kind())),
            "{text}"
        );
        m.signature = Some(*pair.sk.sign(&message, None));
        let mut out = [0u8; MAX_WRITTEN_LEN];
        let n = write_manifest(&m, &mut out).unwrap();
        let parsed = Manifest::parse(&out[..n]).unwrap();
        assert_eq!(parsed, m);
        assert_eq!(parsed.payload, payload);
        assert_eq!(parsed.verify_signature(&key), Ok(()));
        // Another base (or another patch) under the same signature does not verify.
        let mut other = parsed;
        other.payload = match payload {
            Payload::Delta {
                size,
                sha256,
                base_size,
                ..
            } => Payload::Delta {
                size,
                sha256,
                base_size,
                base_sha256: [0xce; 32],
            },
            Payload::Compressed { sha256, .. } => Payload::Compressed { size: 778, sha256 },
            Payload::Full => unreachable!(),
        };
        assert_eq!(
            other.verify_signature(&key),
            Err(ManifestError::BadSignature)
        );
    }
    // A full image is still written as format 2.
    let m = plain(Version::new(2, 0, 0), 5, [1; 32], None);
    let mut out = [0u8; MAX_WRITTEN_LEN];
    let n = write_manifest(&m, &mut out).unwrap();
    assert!(out[..n].starts_with(b"cellular-ota-manifest 2\n"));
}

/// Format 3's payload keys: each kind needs its keys and refuses another kind's; in format 2
/// they are unknown keys and the manifest describes a full image.
#[test]
fn format_3_payload_keys_are_checked() {
    use cellular_ota::ota::manifest::{Field, Payload};
    let hex = "ab".repeat(32);
    let base = format!(
        "cellular-ota-manifest 3\nproduct {PRODUCT}\nversion 1.0.0\nsize 10\nsha256 {hex}\n"
    );
    let parse = |extra: &str| {
        let text = format!("{base}{extra}");
        Manifest::parse(text.as_bytes()).map(|m| m.payload)
    };
    assert_eq!(
        parse(""),
        Err(ManifestError::Missing {
            field: Field::Payload
        })
    );
    assert_eq!(parse("payload full\n"), Ok(Payload::Full));
    assert_eq!(
        parse("payload zip\n"),
        Err(ManifestError::BadPayload {
            field: Field::Payload
        })
    );
    assert_eq!(
        parse("payload full\npayload-size 5\n"),
        Err(ManifestError::BadPayload {
            field: Field::PayloadSize
        })
    );
    assert_eq!(
        parse(
            "payload compressed\npayload-sha256 {hex}\n"
                .replace("{hex}", &hex)
                .as_str()
        ),
        Err(ManifestError::Missing {
            field: Field::PayloadSize
        })
    );
    assert_eq!(
        parse(&format!(
            "payload compressed\npayload-size 5\npayload-sha256 {hex}\nbase-size 9\n"
        )),
        Err(ManifestError::BadPayload {
            field: Field::BaseSize
        })
    );
    assert_eq!(
        parse(&format!(
            "payload delta\npayload-size 5\npayload-sha256 {hex}\nbase-size 9\n"
        )),
        Err(ManifestError::Missing {
            field: Field::BaseSha256
        })
    );
    assert_eq!(
        parse(&format!(
            "payload delta\npayload-size 0\npayload-sha256 {hex}\nbase-size 9\nbase-sha256 {hex}\n"
        )),
        Err(ManifestError::BadSize)
    );
    assert_eq!(
        parse(&format!(
            "payload delta\npayload-size 5\npayload-sha256 {hex}\nbase-size 9\nbase-sha256 {hex}\npayload delta\n"
        )),
        Err(ManifestError::Duplicate {
            field: Field::Payload
        })
    );
    let v2 = format!(
        "cellular-ota-manifest 2\nproduct {PRODUCT}\nversion 1.0.0\nsize 10\nsha256 {hex}\npayload delta\nbase-size 9\n"
    );
    assert_eq!(
        Manifest::parse(v2.as_bytes()).map(|m| m.payload),
        Ok(Payload::Full)
    );
    assert_eq!(
        Manifest::parse(b"cellular-ota-manifest 4\n"),
        Err(ManifestError::UnsupportedFormat { format: 4 })
    );
}
