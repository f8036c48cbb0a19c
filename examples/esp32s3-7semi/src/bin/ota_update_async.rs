//! Firmware update over the EC200U, async: the same steps as `ota_update`, on embassy
//! (esp-rtos), with the async UART, an embassy-time clock, the crate's async `update` and
//! `AsyncEspIdfSink`.
//!
//! esp-storage's `FlashStorage` is blocking; it is wrapped in
//! [`AsyncFlash`](cellular_ota_esp32s3_7semi::flash::AsyncFlash), which yields to the
//! executor after every erase and write, rather than using the crate's `BlockingSink`
//! adapter (which would run a whole sink call, up to a verification read of the entire
//! image, without giving other tasks a turn). Flash operations still stall the CPU while
//! they run; esp-storage has no asynchronous mode.

#![no_std]
#![no_main]

use core::time::Duration;

use cellular_ota::client::asynch::Client;
use cellular_ota::ota::esp_idf::sink::{AsyncEspIdfSink, SinkConfig};
use cellular_ota::retry::Classify;
use cellular_ota::update::Outcome;
use cellular_ota_esp32s3_7semi::board::{self, ModemPins};
use cellular_ota_esp32s3_7semi::boot::{self, Settled};
use cellular_ota_esp32s3_7semi::clock::EmbassyClock;
use cellular_ota_esp32s3_7semi::flash::{self, AsyncFlash};
use cellular_ota_esp32s3_7semi::modem_uart;
use cellular_ota_esp32s3_7semi::report::{self, ProgressLog, UrcLog};
use cellular_ota_esp32s3_7semi::schedule::Schedule;
use cellular_ota_esp32s3_7semi::trace::Traced;
use cellular_ota_esp32s3_7semi::{config, modem, update_config};
use embassy_executor::Spawner;
use esp_backtrace as _;
use esp_hal::Async;
use esp_hal::timer::timg::TimerGroup;
#[cfg(not(feature = "uart-dma"))]
use esp_hal::uart::Uart;
use esp_println::println;

cellular_ota_esp32s3_7semi::app_descriptor!();

#[cfg(not(feature = "uart-dma"))]
type ModemUart = Uart<'static, Async>;
#[cfg(feature = "uart-dma")]
type ModemUart = cellular_ota_esp32s3_7semi::uart_dma::DmaUart<'static, Async>;

#[esp_hal::main]
async fn main(_spawner: Spawner) {
    let p = esp_hal::init(esp_hal::Config::default());
    let timg0 = TimerGroup::new(p.TIMG0);
    esp_rtos::start(timg0.timer0, p.FROM_CPU_INTR0);
    println!(
        "\ncellular-ota example (async) {} on {}",
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
    .with_tx(pins.tx)
    .into_async();
    #[cfg(feature = "uart-dma")]
    let uart: ModemUart =
        cellular_ota_esp32s3_7semi::modem_uart_dma(p.UART1, pins.rx, pins.tx, p.UHCI0, p.DMA_CH0);

    let mut flash = board::flash(p.FLASH);
    let running = flash::running_slot(&mut flash);
    let rejected = flash::newer_image_rejected(&mut flash);
    let sink_config = SinkConfig::new(board::CHIP)
        .with_rollback(config::ROLLBACK_BOOTLOADER)
        .with_running_slot(running)
        .with_revisions(board::revisions());
    let mut sink = AsyncEspIdfSink::new(AsyncFlash(&mut flash), sink_config);

    let (mut rx, mut response) = ([0u8; 2048], [0u8; 512]);
    let mut client = Client::new(
        Traced::new(uart),
        EmbassyClock,
        &mut rx,
        &mut response,
        UrcLog::default(),
    );

    // The UART's rate: the module's saved one, then what negotiation reaches; the
    // candidates shrink when a payload loses bytes at a negotiated rate.
    let mut rates: &[u32] = config::MODEM_RATES;
    let mut rate = config::MODEM_BAUD;
    #[cfg(not(feature = "uart-dma"))]
    let mut set_rate = |io: &mut Traced<ModemUart>, r: u32| modem::set_uart_rate(io, r);
    #[cfg(feature = "uart-dma")]
    let mut set_rate = |io: &mut Traced<ModemUart>, r: u32| io.inner().set_baudrate(r).is_ok();

    // The bring-up is the new image's self-test.
    let trial = boot::trial(&mut sink).await;
    let brought_up = modem::connect_and_bring_up(
        &mut client,
        rates,
        &mut rate,
        &mut set_rate,
        pwrkey.as_mut(),
    )
    .await;
    if let Err(e) = &brought_up {
        println!("modem bring-up failed: {e}");
    }
    if let Settled::RollBack { .. } = boot::settle(&mut sink, trial, brought_up.is_ok()).await {
        reset().await;
    }
    let Ok(modem_info) = brought_up else {
        // Not a rolled-back image: reset and try the bring-up again.
        println!("resetting in 30 s to try again");
        modem::pause(&mut client, Duration::from_secs(30)).await;
        reset().await
    };

    let mut update_cfg = update_config(&modem_info);
    // Only with the DMA transport: it keeps receiving while flash is busy.
    update_cfg.rx_dma = config::RX_DMA;
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
        boot::erase_next_slot(&mut sink).await;
        if !wait.is_zero() {
            modem::pause(&mut client, wait).await;
        }
        if !modem_ready {
            // The modem may have rebooted, lost its context or its network since the last
            // attempt: bring it up again (power, URC port, registration, PDP).
            // At the negotiated rate if the modem is still there, else found at its saved
            // rate (it restarted) and negotiated again.
            let brought_up = modem::connect_and_bring_up(
                &mut client,
                rates,
                &mut rate,
                &mut set_rate,
                pwrkey.as_mut(),
            )
            .await;
            if let Err(e) = brought_up {
                println!("modem bring-up failed: {e}");
                wait = schedule.after_failure(e.retry(), 0);
                continue;
            }
        }
        modem_ready = false;
        println!("checking for an update");
        let mut progress = ProgressLog::default();
        let result = modem::update(&mut client, &mut sink, &update_cfg, &mut chunk, &mut |p| {
            progress.on(p)
        })
        .await;
        match result {
            Ok(outcome) => {
                report::outcome(&outcome);
                if let Outcome::Installed { .. } = outcome {
                    reset().await;
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
async fn reset() -> ! {
    embassy_time::Timer::after_millis(200).await;
    esp_hal::system::software_reset()
}
