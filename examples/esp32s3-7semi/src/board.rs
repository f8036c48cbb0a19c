//! What differs between the chips this example builds for: the image's chip id, which GPIOs
//! may carry the modem's signals, and how flash is opened.
//!
//! The real board is the 7Semi ESP32-S3 + EC200U (feature `esp32s3`, the default). The
//! `esp32c3` feature builds the very same source for an ESP32-C3 so that it can be compiled
//! on stable Rust (CI does); its pins are stand-ins (see [`crate::config`]).
//!
//! The pins themselves are numbers in [`crate::config`]; this module checks them at compile
//! time against the chip's GPIO map, so a typo or a flash pin fails the build instead of
//! hanging the board.

use esp_hal::gpio::AnyPin;
use esp_storage::FlashStorage;

use cellular_ota::ota::esp_idf::ChipId;

use crate::config;

#[cfg(all(feature = "esp32s3", feature = "esp32c3"))]
compile_error!(
    "choose one chip: `--no-default-features --features esp32c3` (or the default `esp32s3`)"
);
#[cfg(not(any(feature = "esp32s3", feature = "esp32c3")))]
compile_error!("choose a chip feature: `esp32s3` (the 7Semi board) or `esp32c3`");

/// The chip id images must carry (`chip_id` in the image header): the sink refuses an
/// image built for another chip before it selects it.
#[cfg(feature = "esp32s3")]
pub const CHIP: ChipId = ChipId::ESP32S3;
/// The chip id images must carry (`chip_id` in the image header).
#[cfg(feature = "esp32c3")]
pub const CHIP: ChipId = ChipId::ESP32C3;

/// This chip's revision and eFuse block revision, read from its eFuses: the sink then
/// refuses an image built for other revisions, which the bootloader would not load.
pub fn revisions() -> cellular_ota::ota::esp_idf::image::Revisions {
    let full = |major: u8, minor: u8| u16::from(major) * 100 + u16::from(minor);
    let (blk_major, blk_minor) = esp_hal::efuse::block_version();
    cellular_ota::ota::esp_idf::image::Revisions {
        chip: full(
            esp_hal::efuse::major_chip_version(),
            esp_hal::efuse::minor_chip_version(),
        ),
        efuse_block: full(blk_major, blk_minor),
    }
}

/// The chip's name as espflash spells it (`--chip`).
#[cfg(feature = "esp32s3")]
pub const CHIP_NAME: &str = "esp32s3";
/// The chip's name as espflash spells it (`--chip`).
#[cfg(feature = "esp32c3")]
pub const CHIP_NAME: &str = "esp32c3";

/// Whether `gpio` can carry a modem signal on this chip; panics (at compile time, from the
/// checks below) with the reason if not.
#[cfg(feature = "esp32s3")]
const fn check_gpio(gpio: u8) {
    match gpio {
        22..=25 | 49.. => panic!("this GPIO does not exist on the ESP32-S3"),
        26..=32 => panic!("GPIO26..=32 connect the ESP32-S3's SPI flash and PSRAM"),
        33..=37 => panic!("GPIO33..=37 connect octal flash/PSRAM on most ESP32-S3 modules"),
        19 | 20 => panic!("GPIO19/20 are the USB port (console and flashing)"),
        43 | 44 => panic!("GPIO43/44 are UART0 (console and flashing)"),
        0 | 45 | 46 => panic!("GPIO0/45/46 are strapping pins that select the boot mode"),
        _ => {}
    }
}

/// Whether `gpio` can carry a modem signal on this chip; panics (at compile time, from the
/// checks below) with the reason if not.
#[cfg(feature = "esp32c3")]
const fn check_gpio(gpio: u8) {
    match gpio {
        22.. => panic!("this GPIO does not exist on the ESP32-C3"),
        12..=17 => panic!("GPIO12..=17 connect the ESP32-C3's SPI flash"),
        18 | 19 => panic!("GPIO18/19 are the USB port (console and flashing)"),
        20 | 21 => panic!("GPIO20/21 are UART0 (console and flashing)"),
        2 | 8 | 9 => panic!("GPIO2/8/9 are strapping pins that select the boot mode"),
        _ => {}
    }
}

const _: () = {
    check_gpio(config::MODEM_RX_GPIO);
    check_gpio(config::MODEM_TX_GPIO);
    if config::MODEM_RX_GPIO == config::MODEM_TX_GPIO {
        panic!("MODEM_RX_GPIO and MODEM_TX_GPIO must differ");
    }
    if let Some(pwrkey) = config::MODEM_PWRKEY_GPIO {
        check_gpio(pwrkey);
        if pwrkey == config::MODEM_RX_GPIO || pwrkey == config::MODEM_TX_GPIO {
            panic!("MODEM_PWRKEY_GPIO must differ from the UART pins");
        }
    }
};

/// The modem's pins, taken by number from [`crate::config`].
pub struct ModemPins {
    /// ESP32 RX (modem TXD).
    pub rx: AnyPin<'static>,
    /// ESP32 TX (modem RXD).
    pub tx: AnyPin<'static>,
    /// PWRKEY, if wired.
    pub pwrkey: Option<AnyPin<'static>>,
}

impl ModemPins {
    /// Takes the pins named in [`crate::config`].
    ///
    /// # Safety
    ///
    /// Call once, and do not take these GPIOs from the `Peripherals` struct as well: pins
    /// are taken by number (`AnyPin::steal`) because the configuration names them by
    /// number. The binaries of this package use no other GPIO.
    pub unsafe fn take() -> Self {
        // SAFETY: the caller promises these pins have no other owner; the numbers were
        // checked against the chip's GPIO map at compile time.
        unsafe {
            ModemPins {
                rx: AnyPin::steal(config::MODEM_RX_GPIO),
                tx: AnyPin::steal(config::MODEM_TX_GPIO),
                pwrkey: config::MODEM_PWRKEY_GPIO.map(|n| AnyPin::steal(n)),
            }
        }
    }
}

/// The whole SPI flash as a `NorFlash`, addressed from 0 (what the OTA sink expects).
///
/// On the dual-core ESP32-S3 esp-storage refuses to write while the second core runs; these
/// binaries never start it, and `multicore_auto_park` parks it around writes should a
/// future change start it.
pub fn flash(flash: esp_hal::peripherals::FLASH<'static>) -> FlashStorage<'static> {
    let storage = FlashStorage::new(flash);
    #[cfg(feature = "esp32s3")]
    let storage = storage.multicore_auto_park();
    storage
}
