//! Firmware update over the EC200U, blocking.
//!
//! 1. Bring the modem up: power, find the module's saved UART rate and negotiate the fastest
//!    one both ends carry (`config::MODEM_RATES`, checked with a file round trip), then the
//!    crate's bring-up (`AT`, `ATE0`, `AT+CMEE=1`, URCs to UART1, SIM, registration, PDP).
//! 2. If this image is fresh from an update, that bring-up was its self-test: confirm the
//!    image (VALID) or mark it INVALID and reset into the previous one.
//! 3. In idle time, erase the other OTA slot a 64 KiB block at a time, so that the next
//!    download only programs pages.
//! 4. Fetch the manifest, and if it offers a new version, download the image into the
//!    other OTA slot, verify it from flash and select it; then reset into it.
//! 5. After a transient failure, bring the modem up again and retry on the crate's backoff
//!    schedule; otherwise check again every `config::UPDATE_CHECK_INTERVAL`
//!    (`schedule.rs`).
//!
//! Settings: `src/config.rs`. Build, flash and serve: see the README.

#![no_std]
#![no_main]

use core::time::Duration;

use cellular_ota::client::blocking::{BlockingIo, Client};
use cellular_ota::ota::esp_idf::sink::{EspIdfSink, SinkConfig};
use cellular_ota::retry::Classify;
use cellular_ota::update::Outcome;
use cellular_ota_esp32s3_7semi::board::{self, ModemPins};
use cellular_ota_esp32s3_7semi::boot::{self, Settled};
use cellular_ota_esp32s3_7semi::clock::HalClock;
use cellular_ota_esp32s3_7semi::modem_uart;
use cellular_ota_esp32s3_7semi::report::{self, ProgressLog, UrcLog};
use cellular_ota_esp32s3_7semi::schedule::Schedule;
use cellular_ota_esp32s3_7semi::trace::Traced;
use cellular_ota_esp32s3_7semi::{block_on, config, flash, modem, update_config};
use esp_backtrace as _;
use esp_hal::Blocking;
#[cfg(not(feature = "uart-dma"))]
use esp_hal::uart::Uart;
use esp_println::println;

cellular_ota_esp32s3_7semi::app_descriptor!();

#[cfg(not(feature = "uart-dma"))]
type ModemUart = Uart<'static, Blocking>;
#[cfg(feature = "uart-dma")]
type ModemUart = cellular_ota_esp32s3_7semi::uart_dma::DmaUart<'static, Blocking>;

#[esp_hal::main]
fn main() -> ! {
    let p = esp_hal::init(esp_hal::Config::default());
    println!(
        "\ncellular-ota example (blocking) {} on {}",
        config::FIRMWARE_VERSION,
        board::CHIP_NAME
    );

    // SAFETY: the modem's GPIOs are taken only here; nothing else uses GPIOs.
    let pins = unsafe { ModemPins::take() };
    let mut pwrkey = pins.pwrkey.map(modem::pwrkey_output);
    // The interrupt-driven UART, or with the `uart-dma` feature UART receive by DMA.
    #[cfg(not(feature = "uart-dma"))]
    let uart: ModemUart = Uart::new(
        modem_uart!(p),
        cellular_ota_esp32s3_7semi::modem_uart_config(),
    )
    .expect("modem UART configuration")
    .with_rx(pins.rx)
    .with_tx(pins.tx);
    #[cfg(feature = "uart-dma")]
    let uart: ModemUart = cellular_ota_esp32s3_7semi::modem_uart_dma_blocking(
        p.UART1, pins.rx, pins.tx, p.UHCI0, p.DMA_CH0,
    );

    let mut flash = board::flash(p.FLASH);
    let running = flash::running_slot(&mut flash);
    let rejected = flash::newer_image_rejected(&mut flash);
    let sink_config = SinkConfig::new(board::CHIP)
        .with_rollback(config::ROLLBACK_BOOTLOADER)
        .with_running_slot(running)
        .with_revisions(board::revisions());
    let mut sink = EspIdfSink::new(&mut flash, sink_config);

    let (mut rx, mut response) = ([0u8; 2048], [0u8; 512]);
    let mut client = Client::new(
        Traced::new(uart),
        HalClock,
        &mut rx,
        &mut response,
        UrcLog::default(),
    );

    // The UART's rate: the module's saved one, then what negotiation reaches; the
    // candidates shrink when a payload loses bytes at a negotiated rate.
    let mut rates: &[u32] = config::MODEM_RATES;
    let mut rate = config::MODEM_BAUD;
    #[cfg(not(feature = "uart-dma"))]
    let mut set_rate =
        |io: &mut BlockingIo<Traced<ModemUart>>, r: u32| modem::set_uart_rate(&mut io.0, r);
    #[cfg(feature = "uart-dma")]
    let mut set_rate =
        |io: &mut BlockingIo<Traced<ModemUart>>, r: u32| io.0.inner().set_baudrate(r).is_ok();

    // The bring-up is the new image's self-test.
    let trial = block_on(boot::trial(&mut sink));
    let brought_up = block_on(modem::connect_and_bring_up(
        client.as_async(),
        rates,
        &mut rate,
        &mut set_rate,
        pwrkey.as_mut(),
    ));
    if let Err(e) = &brought_up {
        println!("modem bring-up failed: {e}");
    }
    if let Settled::RollBack { .. } = block_on(boot::settle(&mut sink, trial, brought_up.is_ok())) {
        reset();
    }
    let Ok(modem_info) = brought_up else {
        // Not a rolled-back image: retry the bring-up after the first delays of the
        // schedule by resetting (the self-test only judges a fresh image once).
        println!("resetting in 30 s to try again");
        block_on(modem::pause(client.as_async(), Duration::from_secs(30)));
        reset();
    };

    let mut update = update_config(&modem_info);
    // Only with the DMA transport: it keeps receiving while flash is busy.
    update.rx_dma = config::RX_DMA;
    let mut chunk = [0u8; config::CHUNK_SIZE];
    let mut schedule = Schedule::new();
    let mut wait = Duration::ZERO;
    if rejected {
        // The server most likely still offers the image that was just rejected; installing
        // it again at once would loop (download, reboot, fail, roll back) all day.
        println!(
            "the newest image was rejected and rolled back: next update check in {} s",
            config::UPDATE_CHECK_INTERVAL.as_secs()
        );
        wait = config::UPDATE_CHECK_INTERVAL;
    }
    let mut modem_ready = !rejected;
    loop {
        // Idle time: erase the slot the next download writes, so that it only programs
        // pages while the body arrives (a step at a time, power-cut safe; nothing to do
        // once erased, refused while a download waits to be resumed).
        block_on(boot::erase_next_slot(&mut sink));
        if !wait.is_zero() {
            block_on(modem::pause(client.as_async(), wait));
        }
        if !modem_ready {
            // The modem may have rebooted, lost its context or its network since the last
            // attempt: bring it up again (power, URC port, registration, PDP).
            // At the negotiated rate if the modem is still there, else found at its saved
            // rate (it restarted) and negotiated again.
            let brought_up = block_on(modem::connect_and_bring_up(
                client.as_async(),
                rates,
                &mut rate,
                &mut set_rate,
                pwrkey.as_mut(),
            ));
            if let Err(e) = brought_up {
                println!("modem bring-up failed: {e}");
                wait = schedule.after_failure(e.retry(), 0);
                continue;
            }
        }
        modem_ready = false;
        println!("checking for an update");
        let mut progress = ProgressLog::default();
        match modem::update_blocking(&mut client, &mut sink, &update, &mut chunk, &mut |p| {
            progress.on(p)
        }) {
            Ok(outcome) => {
                report::outcome(&outcome);
                if let Outcome::Installed { .. } = outcome {
                    reset();
                }
                wait = schedule.after_success();
            }
            Err(e) => {
                report::update_error(&e);
                if rate != config::MODEM_BAUD && modem::lost_bytes(&e) {
                    rates = modem::slower_than(rates, rate);
                    println!("bytes lost at {rate} baud: negotiating below it from now on");
                }
                wait = schedule.after_failure(e.retry(), e.bytes_done);
            }
        }
    }
}

/// Resets the chip (after the console had time to print).
fn reset() -> ! {
    esp_hal::delay::Delay::new().delay_millis(200);
    esp_hal::system::software_reset()
}
