//! Code shared by the three example binaries for the 7Semi ESP32-S3 + Quectel EC200U board
//! (or, with feature `sim7600`, an ESP32 wired to a SIMCom SIM7600 as in the tutorial).
//!
//! - [`config`]: every setting a user changes (URLs, APN, key, pins, baud, version).
//! - [`board`]: what differs between ESP32-S3 and ESP32-C3 (chip id, valid pins, flash).
//! - [`clock`]: the crate's `Clock` over esp-hal's timer, `AsyncClock` over embassy-time.
//! - [`trace`]: the UART seen by the AT client, optionally printing every byte as a
//!   transcript that `cargo run --example explain` decodes.
//! - [`modem`]: power-up, sync, SIM, registration and PDP context, written once (async) and
//!   driven by both the blocking and the async binary.
//! - [`boot`]: after booting a new image, the self-test that confirms it or rolls it back.
//! - [`flash`]: the running slot from the MMU, and esp-storage seen as async flash.
//! - [`report`]: printing progress, URCs and errors with their codes and meanings.
//!
//! The blocking binary runs the async code of [`modem`] and [`boot`] with [`block_on`], the
//! same way `cellular_ota::update::update_blocking` runs the crate's async update flow: one
//! implementation, two ways of waiting.

#![no_std]

pub mod config;

pub mod board;
pub mod boot;
pub mod clock;
pub mod flash;
pub mod modem;
pub mod report;
pub mod schedule;
pub mod trace;
#[cfg(feature = "uart-dma")]
pub mod uart_dma;

/// Runs a future to completion by spinning: the library's [`cellular_ota::block_on`], for
/// futures that are only pending while they wait for a UART byte or a deadline through the
/// blocking client's adapters (`client.as_async()`), which are polled, never woken.
pub use cellular_ota::block_on;

/// Places the ESP-IDF app descriptor in the binary, with [`config::FIRMWARE_VERSION`] as its
/// version (the default `esp_app_desc!()` would use the package version only).
///
/// `espflash save-image` refuses an ELF without it, and the OTA sink checks for it before it
/// selects a downloaded image. Invoke it once in every binary.
#[macro_export]
macro_rules! app_descriptor {
    () => {
        esp_bootloader_esp_idf::esp_app_desc!(
            $crate::config::FIRMWARE_VERSION,
            env!("CARGO_BIN_NAME"),
            esp_bootloader_esp_idf::BUILD_TIME,
            esp_bootloader_esp_idf::BUILD_DATE,
            esp_bootloader_esp_idf::ESP_IDF_COMPATIBLE_VERSION,
            esp_bootloader_esp_idf::MMU_PAGE_SIZE,
            0,
            u16::MAX,
            esp_bootloader_esp_idf::SECURE_VERSION
        );
    };
}

/// The modem's UART peripheral, taken from esp-hal's `Peripherals` `$p`: UART1 on the 7Semi
/// board and on the ESP32-C3 proxy, UART2 in the SIM7600 tutorial's wiring on the ESP32-S3
/// (feature `sim7600`).
#[cfg(not(all(feature = "sim7600", feature = "esp32s3")))]
#[macro_export]
macro_rules! modem_uart {
    ($p:ident) => {
        $p.UART1
    };
}

/// The modem's UART peripheral, taken from esp-hal's `Peripherals` `$p`: UART1 on the 7Semi
/// board and on the ESP32-C3 proxy, UART2 in the SIM7600 tutorial's wiring on the ESP32-S3
/// (feature `sim7600`).
#[cfg(all(feature = "sim7600", feature = "esp32s3"))]
#[macro_export]
macro_rules! modem_uart {
    ($p:ident) => {
        $p.UART2
    };
}

// The DMA receiver is written for UART1.
#[cfg(all(feature = "sim7600", feature = "esp32s3", feature = "uart-dma"))]
compile_error!("feature uart-dma drives UART1; the SIM7600 wiring (feature sim7600) uses UART2");

/// The UART settings for the modem: [`config::MODEM_BAUD`], 8 data bits, no parity, one stop
/// bit, no flow control.
pub fn modem_uart_config() -> esp_hal::uart::Config {
    esp_hal::uart::Config::default().with_baudrate(config::MODEM_BAUD)
}

/// The modem's UART (UART1 with [`modem_uart_config`]) with its receiver on DMA: UHCI0 and
/// GDMA channel 0 fill a ring of [`uart_dma::RING_SIZE`] bytes in internal RAM, which keeps
/// filling while the CPU is stalled in a flash operation. Async; use it with
/// `UpdateConfig::rx_dma` ([`config::RX_DMA`]); change its baud rate with
/// [`uart_dma::DmaUart::set_baudrate`]. Feature `uart-dma`, untested on hardware (see
/// [`uart_dma`]).
///
/// # Panics
///
/// If the UART or the UHCI refuses the configuration, or on a second call (the ring is
/// static and exists once; the same holds after [`modem_uart_dma_blocking`]).
#[cfg(feature = "uart-dma")]
pub fn modem_uart_dma(
    uart: esp_hal::peripherals::UART1<'static>,
    rx: esp_hal::gpio::AnyPin<'static>,
    tx: esp_hal::gpio::AnyPin<'static>,
    uhci: esp_hal::peripherals::UHCI0<'static>,
    dma: esp_hal::peripherals::DMA_CH0<'static>,
) -> uart_dma::DmaUart<'static, esp_hal::Async> {
    let ring = uart_dma::ring();
    match uart_dma::DmaUart::new(uart, modem_uart_config(), rx, tx, uhci, dma, ring) {
        Ok(io) => io,
        Err(e) => panic!("modem UART with DMA: {e}"),
    }
}

/// [`modem_uart_dma`] for the blocking client (`embedded_io::{Read, ReadReady, Write}`;
/// reads spin until bytes arrive).
///
/// # Panics
///
/// As [`modem_uart_dma`].
#[cfg(feature = "uart-dma")]
pub fn modem_uart_dma_blocking(
    uart: esp_hal::peripherals::UART1<'static>,
    rx: esp_hal::gpio::AnyPin<'static>,
    tx: esp_hal::gpio::AnyPin<'static>,
    uhci: esp_hal::peripherals::UHCI0<'static>,
    dma: esp_hal::peripherals::DMA_CH0<'static>,
) -> uart_dma::DmaUart<'static, esp_hal::Blocking> {
    let ring = uart_dma::ring();
    match uart_dma::DmaUart::new(uart, modem_uart_config(), rx, tx, uhci, dma, ring) {
        Ok(io) => io,
        Err(e) => panic!("modem UART with DMA: {e}"),
    }
}

/// The update settings from [`config`], for the modem `info` (its chipset family picks the
/// error-code tables). Prints a warning for each setting that weakens the update.
///
/// # Panics
///
/// If [`config::FIRMWARE_VERSION`] is not `MAJOR.MINOR.PATCH[-PRE]`.
pub fn update_config(info: &modem::ModemInfo) -> cellular_ota::update::UpdateConfig<'static> {
    let running = cellular_ota::ota::manifest::Version::parse(config::FIRMWARE_VERSION)
        .expect("config::FIRMWARE_VERSION must be MAJOR.MINOR.PATCH[-PRE]");
    let mut update = cellular_ota::update::UpdateConfig::new(config::FIRMWARE_URL);
    update.manifest_url = config::MANIFEST_URL;
    update.running_version = Some(running);
    update.allow_downgrade = config::ALLOW_DOWNGRADE;
    update.public_key = config::PUBLIC_KEY;
    update.allow_unsigned = config::ALLOW_UNSIGNED;
    update.product = Some(config::PRODUCT);
    update.hardware = config::HARDWARE;
    update.chunk_size = config::CHUNK_SIZE as u32;
    update.context_id = config::PDP_CONTEXT;
    update.tls = config::TLS;
    // No RTS/CTS on this board, and the UART FIFO holds 128 bytes (11 ms at 115200 baud):
    // `Strategy::Auto` then erases the target sectors while the modem fetches the body and
    // writes it in page-sized pieces, so no flash stall outlasts the FIFO.
    update.flow_control = false;
    update.family = modem::family(info);
    if update.manifest_url.is_none() {
        esp_println::println!(
            "WARNING: no manifest URL: the image is installed again on every check"
        );
    }
    if update.public_key.is_none() && update.allow_unsigned {
        esp_println::println!(
            "WARNING: no public key, unsigned images allowed: updates are not authenticated \
             (bench use only)"
        );
    }
    update
}
