//! Bringing the EC200U up: power (PWRKEY) here, everything else with the crate's bring-up
//! ([`cellular_ota::bring_up`]: `AT` sync, echo off, numeric errors, URCs routed to UART1,
//! chatty URCs off, identity, SIM and PIN, registration, the PDP context).
//!
//! Written once, against the crate's async client. The async binary awaits these functions;
//! the blocking binary runs them on its blocking client's async view
//! (`client.as_async()`) with [`crate::block_on`].
//!
//! Every wait here still reads the UART ([`pause`] is a `wait_for` that accepts nothing),
//! so URCs are printed as they come and the 128-byte UART FIFO never overflows while the
//! blocking binary waits.

use core::fmt::{self, Debug, Display};
use core::time::Duration;

use cellular_ota::at::{AsyncClock, Clock};
use cellular_ota::baud::{BaudConfig, BaudError, BaudEvent, Negotiated, negotiate};
pub use cellular_ota::bring_up::ModemInfo;
use cellular_ota::bring_up::{self, BringUpConfig, BringUpEvent, DataContext};
use cellular_ota::client::asynch::Client;
use cellular_ota::client::{Error as ClientError, TimeoutExt, UrcHandler};
use cellular_ota::quectel::ChipFamily;
#[cfg(not(feature = "sim7600"))]
use cellular_ota::quectel::bring_up::Quectel;
use cellular_ota::quectel::general::Attention;
use cellular_ota::retry::{Classify, Retry};
#[cfg(feature = "sim7600")]
use cellular_ota::simcom::{Family as SimcomFamily, SimcomHttp, bring_up::Simcom};
use cellular_ota::update::{Failure, Outcome, Progress, Stage, UpdateConfig, UpdateError};
use embedded_io_async::{Read, Write};
use esp_hal::gpio::{Level, Output, OutputConfig};
use esp_println::println;

use crate::config;

/// The chipset family of a brought-up Quectel modem (it picks the error-code tables);
/// `None` for a SIMCom module.
pub fn family(info: &ModemInfo) -> Option<ChipFamily> {
    ChipFamily::from_model(&info.model).or_else(|| ChipFamily::from_model(&info.revision))
}

/// The modem family's steps of the crate's bring-up and baud negotiation: Quectel with URCs
/// on UART1 (the 7Semi board), or a SIM7600 (feature `sim7600`).
#[cfg(not(feature = "sim7600"))]
pub fn steps() -> Quectel<'static> {
    Quectel::UART1
}

/// The modem family's steps of the crate's bring-up and baud negotiation: Quectel with URCs
/// on UART1 (the 7Semi board), or a SIM7600 (feature `sim7600`).
#[cfg(feature = "sim7600")]
pub fn steps() -> Simcom {
    Simcom::new(SimcomFamily::Sim7600)
}

/// The crate's update flow over this firmware's modem, driven by the blocking client: the
/// Quectel flow (`update_blocking`), or with feature `sim7600` the flow over
/// `simcom::SimcomHttp`.
pub fn update_blocking<T, C, H, S>(
    client: &mut cellular_ota::client::blocking::Client<'_, T, C, H>,
    sink: &mut S,
    config: &UpdateConfig<'_>,
    chunk: &mut [u8],
    progress: &mut dyn FnMut(Progress),
) -> Result<Outcome, UpdateError>
where
    T: embedded_io::Read + embedded_io::Write + embedded_io::ReadReady,
    C: Clock,
    H: UrcHandler,
    S: cellular_ota::ota::OtaSink,
{
    #[cfg(not(feature = "sim7600"))]
    return cellular_ota::update::update_blocking(client, sink, config, chunk, progress);
    #[cfg(feature = "sim7600")]
    return cellular_ota::update::update_with_blocking(
        SimcomHttp::new(client.as_async(), SimcomFamily::Sim7600),
        sink,
        config,
        chunk,
        progress,
    );
}

/// [`update_blocking`] for the async client.
pub async fn update<T, C, H, S>(
    client: &mut Client<'_, T, C, H>,
    sink: &mut S,
    config: &UpdateConfig<'_>,
    chunk: &mut [u8],
    progress: &mut dyn FnMut(Progress),
) -> Result<Outcome, UpdateError>
where
    T: Read + Write,
    T::Error: embedded_io_async::Error,
    C: AsyncClock,
    H: UrcHandler,
    S: cellular_ota::ota::AsyncOtaSink,
{
    #[cfg(not(feature = "sim7600"))]
    return cellular_ota::update::update(client, sink, config, chunk, progress).await;
    #[cfg(feature = "sim7600")]
    return cellular_ota::update::update_with(
        SimcomHttp::new(client, SimcomFamily::Sim7600),
        sink,
        config,
        chunk,
        progress,
    )
    .await;
}

/// Why the modem could not be brought up. `E` is the UART's error type.
#[derive(Debug)]
pub enum BringUpError<E> {
    /// The modem never answered `AT`, even after a PWRKEY press (power, wiring, baud rate).
    NoAnswer,
    /// Baud negotiation found no modem at any rate, even after PWRKEY.
    Baud(BaudError<E>),
    /// The crate's bring-up failed (its stage and reason).
    Steps(bring_up::BringUpError<E>),
}

impl<E> Classify for BringUpError<E> {
    fn retry(&self) -> Retry {
        match self {
            BringUpError::NoAnswer => Retry::Transient,
            BringUpError::Baud(e) => e.retry(),
            BringUpError::Steps(e) => e.retry(),
        }
    }
}

impl<E: Debug> Display for BringUpError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BringUpError::NoAnswer => f.write_str(
                "the modem does not answer AT: check its power supply (peak current), the \
                 UART pins and baud rate in config.rs, and PWRKEY",
            ),
            BringUpError::Baud(e) => write!(f, "{e}"),
            BringUpError::Steps(e) => {
                write!(f, "{e}")?;
                if let bring_up::BringUpFailure::Data { .. } = e.failure {
                    write!(f, "; the APN is \"{}\"", config::APN)?;
                }
                Ok(())
            }
        }
    }
}

/// Waits `d` while still reading the UART (URCs go to the handler).
pub async fn pause<T, C, H>(client: &mut Client<'_, T, C, H>, d: Duration)
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    // Only a timeout or a UART error can end a wait that accepts no line; both just end the
    // pause. After a UART error, forget the bytes of the broken line.
    if let Err(ClientError::Io(_)) = client.wait_for(d, |_| None::<()>).await {
        client.reset();
    }
}

/// Sends `AT` every half second until the modem answers `OK`, for at most `timeout`.
/// Line noise (a modem booting, a UART error) is discarded between tries.
pub async fn sync<T, C, H>(client: &mut Client<'_, T, C, H>, timeout: Duration) -> bool
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    let deadline = client.clock().now() + timeout;
    loop {
        if client
            .send(&Attention.with_timeout(Duration::from_secs(1)))
            .await
            .is_ok()
        {
            return true;
        }
        client.reset();
        if client.clock().now() >= deadline {
            return false;
        }
        pause(client, Duration::from_millis(500)).await;
    }
}

/// The PWRKEY output, released (not pressed).
pub fn pwrkey_output(pin: esp_hal::gpio::AnyPin<'static>) -> Output<'static> {
    Output::new(pin, pwrkey_level(false), OutputConfig::default())
}

fn pwrkey_level(pressed: bool) -> Level {
    if pressed == config::PWRKEY_ACTIVE_HIGH {
        Level::High
    } else {
        Level::Low
    }
}

/// Gets the modem to answer `AT`. The EC200U on this board usually starts by itself when
/// powered; PWRKEY is pressed only if it stays silent for 5 s, so a running modem is never
/// switched off by a press.
pub async fn power_up<T, C, H>(
    client: &mut Client<'_, T, C, H>,
    pwrkey: Option<&mut Output<'_>>,
) -> Result<(), BringUpError<T::Error>>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    println!("waiting for the modem to answer AT");
    if sync(client, Duration::from_secs(5)).await {
        return Ok(());
    }
    if let Some(key) = pwrkey {
        println!(
            "no answer: pressing PWRKEY for {} ms",
            config::PWRKEY_ON_PULSE.as_millis()
        );
        key.set_level(pwrkey_level(true));
        pause(client, config::PWRKEY_ON_PULSE).await;
        key.set_level(pwrkey_level(false));
    }
    if sync(client, config::MODEM_BOOT_TIMEOUT).await {
        Ok(())
    } else {
        Err(BringUpError::NoAnswer)
    }
}

/// The crate's bring-up settings from [`config`].
pub fn bring_up_config() -> BringUpConfig<'static> {
    let mut c = BringUpConfig::new(config::APN);
    // `power_up` has seen the modem answer already.
    c.ready_timeout = Duration::from_secs(10);
    c.sim_pin = config::SIM_PIN;
    c.registration_timeout = config::REGISTRATION_TIMEOUT;
    c.data = Some(DataContext {
        context_id: config::PDP_CONTEXT,
        user: config::APN_USER,
        password: config::APN_PASSWORD,
        auth: config::APN_AUTH,
        ..DataContext::new(config::APN)
    });
    // No RTS/CTS between the ESP32 and the modem on this board.
    c.flow_control = false;
    c
}

/// Prints what bring-up does.
fn print_event(e: BringUpEvent<'_>) {
    match e {
        BringUpEvent::Answered { tries } => println!("modem answered AT (try {tries})"),
        BringUpEvent::UrcPortForced { was } => {
            println!("URCs went to \"{was}\": routed to UART1 (the module saves this)")
        }
        BringUpEvent::UrcRoutingUnsupported => println!("no URC routing on this module"),
        BringUpEvent::PinEntered => println!("SIM PIN entered"),
        BringUpEvent::SimReady => println!("SIM ready"),
        BringUpEvent::Registration { kind, status } => println!("  {kind:?}: {status:?}"),
        BringUpEvent::Registered(r) => println!("registered ({:?}, {:?})", r.kind, r.status),
        BringUpEvent::DataAlreadyActive => {
            println!("PDP context {} already active", config::PDP_CONTEXT)
        }
        BringUpEvent::DataActivated => println!("PDP context {} activated", config::PDP_CONTEXT),
        _ => {}
    }
}

/// Switches the MCU's side of the modem UART (behind the trace wrapper) to `rate`.
pub fn set_uart_rate<Dm: esp_hal::DriverMode>(
    uart: &mut crate::trace::Traced<esp_hal::uart::Uart<'_, Dm>>,
    rate: u32,
) -> bool {
    uart.inner()
        .apply_config(&crate::modem_uart_config().with_baudrate(rate))
        .is_ok()
}

/// Finds the modem at whatever rate it is (the MCU's, its saved [`config::MODEM_BAUD`] after
/// a restart, or after a PWRKEY press), then negotiates the fastest of `rates` (start with
/// [`config::MODEM_RATES`]) the link carries cleanly. `rate` is the MCU's UART rate,
/// updated. A modem that restarted mid-update comes back at its saved rate: this finds it
/// there and negotiates again. A rate left out of `rates` ([`slower_than`]) is stepped down
/// from.
pub async fn connect<T, C, H>(
    client: &mut Client<'_, T, C, H>,
    rates: &[u32],
    rate: &mut u32,
    set_rate: &mut dyn FnMut(&mut T, u32) -> bool,
    pwrkey: Option<&mut Output<'_>>,
) -> Result<Negotiated, BringUpError<T::Error>>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    let mut config = BaudConfig::new(rates);
    config.boot_rate = config::MODEM_BAUD;
    config.reset_pulse = config::PWRKEY_ON_PULSE;
    config.ready_timeout = config::MODEM_BOOT_TIMEOUT;
    let mut press = pwrkey.map(|key| move |pressed: bool| key.set_level(pwrkey_level(pressed)));
    let reset = press.as_mut().map(|p| p as &mut dyn FnMut(bool));
    let n = negotiate(
        client,
        &steps(),
        &config,
        rate,
        set_rate,
        reset,
        &mut |e| match e {
            BaudEvent::Found(r) => println!("modem answers at {r} baud"),
            BaudEvent::Trying(r) => println!("trying {r} baud"),
            BaudEvent::Switched(r) => println!("UART at {r} baud (proven both ways)"),
            BaudEvent::Fallback(f) => println!("  {} baud dropped: {:?}", f.rate, f.why),
            BaudEvent::Reset => println!("no answer at any rate: pressing PWRKEY"),
            _ => {}
        },
    )
    .await
    .map_err(BringUpError::Baud)?;
    Ok(n)
}

/// Whether an update that failed with `e` lost bytes between the modem and the MCU (or
/// waited in vain in the middle of the body, which is how a lost byte of a known length
/// shows): the UART rate is more than the MCU takes while it writes flash.
pub fn lost_bytes(e: &UpdateError) -> bool {
    matches!(e.failure, Failure::BytesLost { .. })
        || (e.stage == Stage::Transfer && matches!(e.failure, Failure::Modem(ClientError::Timeout)))
}

/// The candidates of `rates` (fastest first) slower than `rate`: after [`lost_bytes`] at a
/// negotiated rate, negotiate only these from then on.
pub fn slower_than(rates: &[u32], rate: u32) -> &[u32] {
    let from = rates.iter().position(|r| *r < rate).unwrap_or(rates.len());
    &rates[from..]
}

/// [`connect`], then [`bring_up`]: what the update programs run before every attempt.
pub async fn connect_and_bring_up<T, C, H>(
    client: &mut Client<'_, T, C, H>,
    rates: &[u32],
    rate: &mut u32,
    set_rate: &mut dyn FnMut(&mut T, u32) -> bool,
    pwrkey: Option<&mut Output<'_>>,
) -> Result<ModemInfo, BringUpError<T::Error>>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    connect(client, rates, rate, set_rate, pwrkey).await?;
    bring_up(client).await
}

/// The crate's [`bring_up::bring_up`] with [`bring_up_config`], after [`connect`] (or
/// [`power_up`]). Run both before every update attempt: a modem that rebooted since the
/// last one is back at its saved rate, with echo on, its saved URC port and no PDP context.
pub async fn bring_up<T, C, H>(
    client: &mut Client<'_, T, C, H>,
) -> Result<ModemInfo, BringUpError<T::Error>>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    let info = bring_up::bring_up(client, &steps(), &bring_up_config(), &mut print_event)
        .await
        .map_err(BringUpError::Steps)?;
    println!(
        "modem: {} {} (family {:?}), IMEI {}, ICCID {}, signal {:?} dBm, IP {}",
        info.model,
        info.revision,
        family(&info),
        info.imei,
        info.iccid,
        info.signal.and_then(|s| s.dbm()),
        info.ip
    );
    Ok(info)
}
