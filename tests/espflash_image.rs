//! A real app image made by Espressif tooling: `fixtures/esp32c3_ota_update.bin` is
//! `espflash save-image --chip esp32c3` (espflash 4.7.0) of the ESP32-C3 build of
//! `examples/esp32s3-7semi` (`ota_update`, see `fixtures/README.md`). The ESP-IDF sink must
//! accept it as it is, and refuse it after each single-field corruption; esptool and the
//! simulator's bootloader model judge the same bytes.
//!
//! Needs Python 3 with esptool (`pip install esptool`; `.ci/run` installs it).

mod esptool;

use cellular_ota::ota::esp_idf::image::{ChipId, ImageError, ImageValidator, Mapped};
use cellular_ota::ota::esp_idf::sink::{EspIdfSink, SinkConfig, SinkError};
use cellular_ota::ota::manifest::Version;
use cellular_ota::ota::mem_flash::MemFlash;
use cellular_ota::ota::{ExpectedImage, ImageDescriptor, OtaSink};
use cellular_ota_sim::{BootTarget, boot, build_chip_image, test_app_image};
use sha2::{Digest, Sha256};

const FIXTURE: &[u8] = include_bytes!("../fixtures/esp32c3_ota_update.bin");
const C3: u16 = 5;

fn sha(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

#[test]
fn the_validator_reads_what_espflash_wrote() {
    let mut v = ImageValidator::new(ChipId::ESP32C3, 0x1F_0000);
    v.update(FIXTURE).unwrap();
    let info = v.finish().unwrap();
    assert_eq!(info.len as usize, FIXTURE.len());
    assert_eq!(info.segments, 5);
    assert_eq!(info.sha256.unwrap()[..], FIXTURE[FIXTURE.len() - 32..]);
    let desc = info.app_desc.unwrap();
    assert_eq!(desc.project_name_str(), Some("ota_update"));
    assert_eq!(desc.version_str(), Some("0.1.0"));
    // The same bytes, judged by esptool.
    let e = esptool::judge_bytes("esp32c3", "app", "fixture", FIXTURE);
    assert_eq!(e["valid"], true, "{e}");
    assert_eq!(e["len"], FIXTURE.len());
    assert_eq!(e["sha256"], hex(&sha(FIXTURE)));
    let types: Vec<&str> = e["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["DROM", "DRAM", "IRAM", "PADDING", "IROM"]);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A 4 MiB ESP32-C3 flash running a test app in ota_0, with `image` installed through the
/// ESP-IDF sink; returns the sink's result and the flash.
fn install(image: &[u8], expected: ExpectedImage<'_>) -> (Result<(), SinkError<()>>, Vec<u8>) {
    let mut mem = build_chip_image(C3, Some(&test_app_image(C3, "0.0.9", 64 * 1024)));
    let r = {
        let mut flash: MemFlash<'_> = MemFlash::new(&mut mem);
        let mut sink = EspIdfSink::new(&mut flash, SinkConfig::new(ChipId::ESP32C3));
        let desc = ImageDescriptor {
            id: expected.sha256,
            size: image.len() as u32,
        };
        sink.begin(&desc).unwrap();
        for (i, chunk) in image.chunks(4096).enumerate() {
            sink.write((i * 4096) as u32, chunk).unwrap();
        }
        sink.finish(&expected).map_err(|e| match e {
            SinkError::Image(i) => SinkError::Image(i),
            SinkError::VersionMismatch { declared } => SinkError::VersionMismatch { declared },
            other => panic!("unexpected sink error {other:?}"),
        })
    };
    (r, mem)
}

#[test]
fn the_sink_installs_it_as_it_is_and_both_judges_boot_it() {
    let expected = ExpectedImage {
        sha256: sha(FIXTURE),
        version: Some(Version::new(0, 1, 0)),
    };
    let (r, flash) = install(FIXTURE, expected);
    r.unwrap();
    let model = boot(&flash, C3);
    assert_eq!(model.target, Some(BootTarget::Ota(1)), "{}", model.reason);
    assert_eq!(model.image.unwrap().sha256, sha(FIXTURE));
    let e = esptool::judge_bytes("esp32c3", "flash", "fixture-flash", &flash);
    assert_eq!(e["boot_slot"], "ota_1", "{e}");
    assert_eq!(e["sha256"], hex(&sha(FIXTURE)));
    // Published under another version, it is refused.
    let (r, flash) = install(
        FIXTURE,
        ExpectedImage {
            sha256: sha(FIXTURE),
            version: Some(Version::new(0, 1, 1)),
        },
    );
    assert!(matches!(r, Err(SinkError::VersionMismatch { .. })), "{r:?}");
    assert_eq!(boot(&flash, C3).target, Some(BootTarget::Ota(0)));
}

#[test]
fn every_single_field_corruption_is_refused_by_the_sink_and_by_esptool() {
    let n = FIXTURE.len();
    let cases: [(&str, usize, u8, Option<ImageError>); 6] = [
        ("magic", 0, 0xE8, Some(ImageError::BadMagic { found: 0xE8 })),
        (
            "segment count above 16",
            1,
            17,
            Some(ImageError::TooManySegments { count: 17 }),
        ),
        (
            "segment count one short",
            1,
            4,
            Some(ImageError::MissingMapped(Mapped::Irom)),
        ),
        (
            "chip id",
            12,
            9,
            Some(ImageError::WrongChip {
                expected: 5,
                found: 9,
            }),
        ),
        ("checksum", n - 33, FIXTURE[n - 33] ^ 0x01, None),
        ("appended SHA-256", n - 1, FIXTURE[n - 1] ^ 0x80, None),
    ];
    for (what, at, value, want) in cases {
        let mut bad = FIXTURE.to_vec();
        bad[at] = value;
        // The manifest vouches for these very bytes: only the format checks can refuse them.
        let (r, flash) = install(&bad, ExpectedImage::sha256(sha(&bad)));
        let Err(SinkError::Image(got)) = r else {
            panic!("{what}: the sink accepted it ({r:?})");
        };
        match (what, want) {
            (_, Some(want)) => assert_eq!(got, want, "{what}"),
            ("checksum", None) => {
                assert!(
                    matches!(got, ImageError::ChecksumMismatch { .. }),
                    "{what}: {got:?}"
                )
            }
            _ => assert_eq!(got, ImageError::HashMismatch, "{what}"),
        }
        // Nothing was activated.
        assert_eq!(boot(&flash, C3).target, Some(BootTarget::Ota(0)), "{what}");
        // esptool refuses the image too.
        let e = esptool::judge_bytes("esp32c3", "app", "corrupt", &bad);
        assert_eq!(e["valid"], false, "{what}: esptool {e}");
    }
}
