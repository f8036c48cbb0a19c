//! Nothing here: the tests in `tests/` use cellular-ota built with `default-features = false`
//! (see `Cargo.toml`). The same build runs a whole update under QEMU as the footprint
//! firmware's `smallest` variant (`footprint/report.sh`).
