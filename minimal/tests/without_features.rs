//! cellular-ota without `signed-manifest`, `ranged`, `modem-file` and `https`: every
//! configuration that needs one of them is refused by name before anything is sent, and a
//! key is never silently ignored.

use cellular_ota::ota::manifest::{Decision, Manifest, ManifestError, Policy, Version, decide};
use cellular_ota::update::{ConfigError, Feature, Strategy, UpdateConfig};

const MANIFEST: &[u8] = b"cellular-ota-manifest 2\n\
product demo\n\
version 1.2.0\n\
size 4096\n\
sha256 0000000000000000000000000000000000000000000000000000000000000000\n";

fn unsigned() -> UpdateConfig<'static> {
    let mut c = UpdateConfig::new("http://example.com/fw.bin");
    c.allow_unsigned = true;
    c
}

fn refused(c: &UpdateConfig<'_>) -> Option<Feature> {
    match c.validate(4096, 4) {
        Err(ConfigError::FeatureDisabled { feature }) => Some(feature),
        _ => None,
    }
}

#[test]
fn this_build_has_no_optional_feature() {
    for f in [
        Feature::SignedManifest,
        Feature::Ranged,
        Feature::ModemFile,
        Feature::Https,
    ] {
        assert!(!f.enabled(), "{}", f.name());
    }
}

#[test]
fn a_plain_unsigned_stream_is_accepted() {
    assert_eq!(unsigned().validate(4096, 4), Ok(()));
    let mut auto = unsigned();
    auto.strategy = Strategy::Auto;
    assert_eq!(auto.validate(4096, 4), Ok(()));
    let mut stream = unsigned();
    stream.strategy = Strategy::Stream;
    assert_eq!(stream.validate(4096, 4), Ok(()));
}

#[test]
fn what_the_build_leaves_out_is_refused_by_name() {
    let mut key = unsigned();
    key.allow_unsigned = false;
    key.public_key = Some([9; 32]);
    key.manifest_url = Some("http://example.com/fw.manifest");
    key.product = Some("demo");
    key.running_version = Version::parse("1.0.0").ok();
    assert_eq!(refused(&key), Some(Feature::SignedManifest));

    let mut ranged = unsigned();
    ranged.strategy = Strategy::Ranged;
    assert_eq!(refused(&ranged), Some(Feature::Ranged));

    let mut file = unsigned();
    file.strategy = Strategy::ModemFile;
    assert_eq!(refused(&file), Some(Feature::ModemFile));

    let mut https = unsigned();
    https.url = "https://example.com/fw.bin";
    assert_eq!(refused(&https), Some(Feature::Https));

    let mut https_manifest = unsigned();
    https_manifest.manifest_url = Some("https://example.com/fw.manifest");
    https_manifest.product = Some("demo");
    assert_eq!(refused(&https_manifest), Some(Feature::Https));
}

#[test]
fn a_key_is_never_ignored_by_the_manifest_policy() {
    let m = Manifest::parse(MANIFEST).unwrap();
    let running = Version::parse("1.0.0").ok();
    let with_key = Policy {
        public_key: Some([9; 32]),
        product: "demo",
        hardware: None,
        running,
        allow_downgrade: false,
    };
    assert_eq!(decide(&m, &with_key), Err(ManifestError::VerifierNotBuilt));
    let without_key = Policy {
        public_key: None,
        ..with_key
    };
    assert_eq!(decide(&m, &without_key), Ok(Decision::Update));
}
