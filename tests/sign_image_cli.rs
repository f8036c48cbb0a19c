//! The `sign_image` example, run as a publisher would: a full image's manifest stays format
//! 2; with `--patch` (and `--base`) the manifest is format 3 and signs the patch's and the
//! base's size and SHA-256; `verify --patch` checks the served file.

mod example_bin;

use std::path::Path;
use std::process::{Command, Output};

use cellular_ota::ota::manifest::{Manifest, Payload};
use sha2::{Digest, Sha256};

use example_bin::example;

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(example("sign_image"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn sha(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

#[test]
fn patches_get_format_3_manifests_that_sign_them() {
    let dir = std::env::temp_dir().join(format!("sign_image_cli_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let image = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/esp32c3_ota_update.bin"
    ))
    .unwrap();
    std::fs::write(dir.join("new.bin"), &image).unwrap();
    let base: Vec<u8> = image.iter().map(|b| b.wrapping_add(1)).collect();
    std::fs::write(dir.join("old.bin"), &base).unwrap();
    let patch = b"not a real patch, but any bytes the server publishes".to_vec();
    std::fs::write(dir.join("new.patch"), &patch).unwrap();

    assert!(run(&dir, &["keygen", "key.bin"]).status.success());
    let common = ["sign", "--key", "key.bin", "--product", "p1"];

    // A full image: format 2, as before.
    let out = run(&dir, &[&common[..], &["new.bin"]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read(dir.join("new.bin.manifest")).unwrap();
    assert!(text.starts_with(b"cellular-ota-manifest 2\n"));
    assert_eq!(Manifest::parse(&text).unwrap().payload, Payload::Full);

    // A delta: format 3, written next to the patch.
    let out = run(
        &dir,
        &[
            &common[..],
            &["--patch", "new.patch", "--base", "old.bin", "new.bin"],
        ]
        .concat(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read(dir.join("new.patch.manifest")).unwrap();
    assert!(text.starts_with(b"cellular-ota-manifest 3\n"));
    let m = Manifest::parse(&text).unwrap();
    assert_eq!(m.size as usize, image.len());
    assert_eq!(m.sha256, sha(&image));
    assert_eq!(
        m.payload,
        Payload::Delta {
            size: patch.len() as u32,
            sha256: sha(&patch),
            base_size: base.len() as u32,
            base_sha256: sha(&base),
        }
    );

    // A compressed image.
    let out = run(
        &dir,
        &[
            &common[..],
            &["--patch", "new.patch", "--out", "c.manifest", "new.bin"],
        ]
        .concat(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read(dir.join("c.manifest")).unwrap();
    let m = Manifest::parse(&text).unwrap();
    assert_eq!(
        m.payload,
        Payload::Compressed {
            size: patch.len() as u32,
            sha256: sha(&patch)
        }
    );

    // verify checks the signature, the image and, with --patch, the served file.
    let pubkey = String::from_utf8(run(&dir, &["pubkey", "key.bin"]).stdout).unwrap();
    let pubkey = pubkey
        .split_whitespace()
        .find(|w| w.len() == 64 && w.bytes().all(|b| b.is_ascii_hexdigit()))
        .expect("public key in hex")
        .to_string();
    let verify = |patch: &str| {
        run(
            &dir,
            &[
                "verify",
                "--pubkey",
                &pubkey,
                "--patch",
                patch,
                "new.bin",
                "new.patch.manifest",
            ],
        )
    };
    assert!(verify("new.patch").status.success());
    assert_eq!(verify("old.bin").status.code(), Some(1));

    // --base alone is a usage error.
    let out = run(
        &dir,
        &[&common[..], &["--base", "old.bin", "new.bin"]].concat(),
    );
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}
