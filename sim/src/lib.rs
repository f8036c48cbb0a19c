//! A host-side simulator for [`cellular_ota`]: a Quectel modem (EC200U, EC200T or EG06
//! personality) behind a byte-accurate UART, a NOR flash, the ESP-IDF bootloader's slot
//! choice and a local HTTP server — all on **virtual time**, so host tests of the real client
//! and OTA code run in milliseconds and deterministically.
//!
//! The simulator is a separate `std` crate: the embedded library gains no `std` and no
//! feature by being tested with it.
//!
//! # Pieces
//!
//! | piece | type | model |
//! |---|---|---|
//! | timeline | [`World`], [`SimClock`] | one virtual clock (ns); `Rc<RefCell<..>>`, single-threaded |
//! | UART (host side) | [`HostUart`] | 8N1 bytes at the baud rate, 128-byte FIFO + driver ring, RTS/CTS or loss both ways; a byte sent at another rate than the receiver's is a framing error ([`uart`]) |
//! | modem | [`SimModem`], [`ModemConfig`], [`Personality`] | AT framing, boot, registration, PDP, HTTP, UFS, FOTA ([`modem`]) |
//! | network | [`NetworkConfig`] | real HTTP over loopback, timed by RTT and bandwidth ([`network`]) |
//! | flash | [`SimFlash`] | NOR rules of `MemFlash`, datasheet timing, power cuts ([`flash`]) |
//! | bootloader | [`boot()`] | ESP-IDF slot selection, image and load-address checks, fallback, rollback, written without the library's code ([`boot`](mod@boot)) |
//! | flash images | [`build_chip_image`], [`test_app_image`] | partition table, otadata, apps laid out as espflash lays them out ([`chip_image`]) |
//! | server | [`TestServer`], [`Behavior`] | axum + tower-http `ServeDir` on 127.0.0.1 ([`server`]) |
//! | faults | [`Fault`], [`FAULTS`] | data-driven, by name ([`fault`]) |
//! | recording | [`Timeline`] via [`World::record_timeline`] | flash busy by kind, receive-buffer fill, bytes lost, baud changes, on virtual time (off by default) |
//! | serial port | `PtyModem` | the modem on a Linux pseudo-terminal in real time (`pty`, Unix only) |
//!
//! # A test
//!
//! ```no_run
//! use std::time::Duration;
//! use cellular_ota::client::{CountUrcs, blocking::Client};
//! use cellular_ota::quectel::general::{Attention, Identify};
//! use cellular_ota_sim::{ModemConfig, Personality, World, WorldConfig};
//!
//! let world = World::new(WorldConfig::new(ModemConfig::new(Personality::Ec200u)));
//! let (mut rx, mut resp) = ([0u8; 2048], [0u8; 512]);
//! let mut client = Client::new(world.host_uart(), world.clock(), &mut rx, &mut resp, CountUrcs(0));
//! client.wait_for(Duration::from_secs(40), |l| (l == b"RDY").then_some(())).unwrap();
//! client.send(&Attention).unwrap();
//! let id = client.send(&Identify).unwrap();
//! assert_eq!(id.model, "EC200U");
//! ```
//!
//! # Timing constants and their sources
//!
//! | what | default | source |
//! |---|---|---|
//! | baud rate | 115 200, 8N1 (86.8 µs/byte) | module factory default (quectel-at.md §1); 7Semi board (esp-idf-ota.md §5) |
//! | host RX FIFO | 128 bytes | ESP32/ESP32-S3 UART FIFO length (TRM) |
//! | host driver ring | 1024 bytes | typical driver buffer (configurable; 0 = FIFO only) |
//! | boot to `RDY` | 8 s | EG800K measured 7.8–30.2 s (§2.1) |
//! | registration after `RDY` | 2 s | assumed |
//! | command latency | 2 ms | assumed |
//! | `AT+QIACT` | 800 ms | assumed (limit 150 s, §3) |
//! | network RTT | 80 ms | typical LTE 50–100 ms |
//! | downlink / uplink | 5 / 2.5 Mbit/s | half the LTE Cat-1 peaks 10.3 / 5.2 Mbit/s (3GPP TS 36.306) |
//! | UFS write (`QHTTPREADFILE`) | 50 kB/s | ~0.5 s for 20 KB on a Cat.1 module (§4.7) |
//! | HTTP body buffer in the module (`ModemConfig::tcp_window`) | 32 KiB | assumed: a reader slower than the network holds the server through the TCP window |
//! | FOTA reboot / upgrade | 30 s / 8 min | EG18 real timings (§8.2) |
//! | `FILE:` package: receive buffer / flash rate / silence | 4 KiB / 15 000 bytes/s / 5 s | assumed / the one summary (§11.5) / `AT+QFUPL` data gap (§9) |
//! | flash sector erase / 64 KiB block / page program | 45 ms / 150 ms / 0.4 ms | Winbond W25Q32JV typical values |
//! | flash read | 20 MB/s + 10 µs | estimate |
//!
//! # What is not simulated faithfully
//!
//! * No TLS and no DNS: `https://` is fetched as plain HTTP, names resolve only through
//!   [`ModemConfig::hosts`].
//! * The body is fetched for real at once, then forwarded by `AT+QHTTPREAD` no faster than
//!   the modelled downlink delivers it; the modem's buffer is unbounded (no TCP window
//!   stalls the server), and a server that closes early is noticed only after the bytes it
//!   sent.
//! * Error codes where no source exists are guesses (listed in the [`modem`] module docs);
//!   EC200U HTTP behaviour is largely unconfirmed (§11).
//! * RTS is ideal (deasserted exactly at "full") and honoured in command mode too; the host's
//!   RX interrupt (or DMA, [`UartConfig::host_rx_dma`]) empties the FIFO instantly whenever
//!   it can run. The modem's own receive buffer is bounded only while it takes a firmware
//!   package (`AT+QFOTADL="FILE:<len>"`): then CTS is modelled (ideal too), and without it
//!   bytes are lost; otherwise it never overflows and CTS stays asserted.
//! * FOTA packages are simulator packages ([`fota_package`]); no real delta is applied.
//! * URCs are never interleaved inside a payload (undocumented on real modules, §11.3).
//! * Anti-rollback, secure boot and flash encryption are not checked by the bootloader model;
//!   the chip revision is a fixed, typical one ([`Chip`]).

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod boot;
pub mod chip_image;
pub mod fault;
pub mod flash;
pub mod modem;
pub mod network;
#[cfg(unix)]
pub mod pty;
mod rng;
pub mod server;
pub mod timeline;
pub mod uart;
mod world;

pub use boot::{BootOptions, BootOutcome, BootTarget, BootedImage, Chip, boot, boot_with};
pub use chip_image::{build_chip_image, test_app_image, test_app_image_with_segment, test_app_len};
pub use fault::{FAULTS, Fault, FaultError, FaultInfo};
pub use flash::{FlashConfig, FlashStats, SimFlash};
pub use modem::{
    FotaFileConfig, FotaFileStats, FotaTiming, ModemConfig, ModemStart, Personality, SimModem,
    fota_package, fota_package_with_result,
};
pub use network::NetworkConfig;
#[cfg(unix)]
pub use pty::PtyModem;
pub use server::{Behavior, RequestRecord, TestServer};
pub use timeline::{BaudChange, FillSample, FlashBusy, FlashOpKind, LossSample, Timeline, UartEnd};
pub use uart::{HostUart, UartConfig, UartStats};
pub use world::{SimClock, World, WorldConfig, block_on};
