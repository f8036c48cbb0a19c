//! Bringing the EC200U up: power, sync, echo off, numeric errors, identity, SIM,
//! registration and the PDP context (reference `quectel-at.md` §2, §3).
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
use cellular_ota::client::asynch::Client;
use cellular_ota::client::{Error as ClientError, TimeoutExt, UrcHandler};
use cellular_ota::quectel::ChipFamily;
use cellular_ota::quectel::error::describe;
use cellular_ota::quectel::general::{
    Attention, EnterPin, ErrorFormat, GetRegistration, Identify, RegKind, RegStatus, SetEcho,
    SetErrorFormat, SignalQuality, SimState, SimStatus,
};
use cellular_ota::quectel::pdp::{
    ActivateContext, ActiveContexts, ConfigureContext, LastError, PdpType,
};
use embedded_io_async::{Read, Write};
use esp_hal::gpio::{Level, Output, OutputConfig};
use esp_println::println;

use crate::config;
use crate::report::modem_code;

/// What the modem said about itself.
#[derive(Clone, Debug, Default)]
pub struct ModemInfo {
    /// Model line of `ATI`, such as `EC200U`.
    pub model: heapless::String<24>,
    /// Firmware revision from `ATI`, such as `EC200UCNAAR01A04M08`.
    pub revision: heapless::String<64>,
    /// The chipset family (EC200U: Unisoc), which selects error-code tables.
    pub family: Option<ChipFamily>,
}

/// Why the modem could not be brought up. `E` is the UART's error type.
#[derive(Debug)]
pub enum BringUpError<E> {
    /// The modem never answered `AT` (power, wiring, baud rate, PWRKEY).
    NoAnswer,
    /// A command failed.
    Command {
        /// The command.
        step: &'static str,
        /// How.
        error: ClientError<E>,
    },
    /// The SIM is missing or locked.
    Sim(&'static str),
    /// Not registered on a network before [`config::REGISTRATION_TIMEOUT`].
    NotRegistered {
        /// The last state the modem reported.
        last: Option<RegStatus>,
    },
    /// `AT+QIACT` failed; `detail` is the code from `AT+QIGETERROR`.
    Pdp {
        /// How `AT+QIACT` failed.
        error: ClientError<E>,
        /// `+QIGETERROR: <code>`, if the modem gave one.
        detail: Option<u16>,
    },
}

impl<E: Debug> Display for BringUpError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BringUpError::NoAnswer => f.write_str(
                "the modem does not answer AT: check its power supply (peak current), the \
                 UART pins and baud rate in config.rs, and PWRKEY",
            ),
            BringUpError::Command { step, error } => {
                write!(f, "{step} failed: {error}")?;
                if let Some(code) = modem_code(error) {
                    write!(f, " -- code {code}: {}", describe(code))?;
                }
                Ok(())
            }
            BringUpError::Sim(why) => f.write_str(why),
            BringUpError::NotRegistered { last } => write!(
                f,
                "not registered on a network within {} s (last state: {last:?}); check the \
                 antenna, coverage and that the SIM is active",
                config::REGISTRATION_TIMEOUT.as_secs()
            ),
            BringUpError::Pdp { error, detail } => {
                write!(f, "AT+QIACT failed: {error}")?;
                if let Some(code) = detail.or_else(|| modem_code(error)) {
                    write!(f, " -- code {code}: {}", describe(code))?;
                }
                write!(f, "; check the APN \"{}\"", config::APN)
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

/// `ATE0`, `AT+CMEE=1` (numeric error codes, which the crate decodes) and `ATI`.
pub async fn configure<T, C, H>(
    client: &mut Client<'_, T, C, H>,
) -> Result<ModemInfo, BringUpError<T::Error>>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    let step = |step| move |error| BringUpError::Command { step, error };
    client.send(&SetEcho(false)).await.map_err(step("ATE0"))?;
    client
        .send(&SetErrorFormat(ErrorFormat::Numeric))
        .await
        .map_err(step("AT+CMEE=1"))?;
    let id = client.send(&Identify).await.map_err(step("ATI"))?;
    let mut info = ModemInfo {
        family: id.family(),
        ..ModemInfo::default()
    };
    let _ = info.model.push_str(truncate(id.model, 24));
    let _ = info.revision.push_str(truncate(id.revision, 64));
    println!(
        "modem: {} {} (family {:?})",
        info.model, info.revision, info.family
    );
    Ok(info)
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Waits up to 20 s for `+CPIN: READY`, entering [`config::SIM_PIN`] if the SIM asks.
pub async fn wait_for_sim<T, C, H>(
    client: &mut Client<'_, T, C, H>,
) -> Result<(), BringUpError<T::Error>>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    let deadline = client.clock().now() + Duration::from_secs(20);
    let mut pin_sent = false;
    loop {
        let last_error = match client.send(&SimStatus).await {
            Ok(SimState::Ready) => {
                println!("SIM ready");
                return Ok(());
            }
            Ok(SimState::SimPin) => match config::SIM_PIN {
                Some(pin) if !pin_sent => {
                    pin_sent = true;
                    client.send(&EnterPin { pin }).await.map_err(|error| {
                        BringUpError::Command {
                            step: "AT+CPIN=<pin>",
                            error,
                        }
                    })?;
                    None
                }
                Some(_) => return Err(BringUpError::Sim("the SIM refused SIM_PIN")),
                None => {
                    return Err(BringUpError::Sim(
                        "the SIM asks for a PIN: set SIM_PIN in config.rs (or OTA_SIM_PIN)",
                    ));
                }
            },
            Ok(SimState::SimPuk | SimState::SimPuk2) => {
                return Err(BringUpError::Sim(
                    "the SIM is blocked (PUK): unlock it in a phone",
                ));
            }
            Ok(SimState::NotInserted) => return Err(BringUpError::Sim("no SIM card inserted")),
            // NOT READY, or another state: the SIM may still be starting.
            Ok(_) => None,
            Err(e) if modem_code(&e) == Some(10) => {
                return Err(BringUpError::Sim("no SIM card inserted (+CME ERROR: 10)"));
            }
            // 13 SIM failure, 14 SIM busy and others: the SIM may still be starting.
            Err(e) => Some(e),
        };
        if client.clock().now() >= deadline {
            return Err(match last_error {
                Some(error) => BringUpError::Command {
                    step: "AT+CPIN?",
                    error,
                },
                None => BringUpError::Sim("the SIM did not become ready within 20 s"),
            });
        }
        pause(client, Duration::from_secs(1)).await;
    }
}

/// Polls `AT+CEREG?` (LTE) and `AT+CGREG?` every 2 s until either reports home or roaming
/// registration, for at most [`config::REGISTRATION_TIMEOUT`].
pub async fn wait_for_network<T, C, H>(
    client: &mut Client<'_, T, C, H>,
) -> Result<(), BringUpError<T::Error>>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    let deadline = client.clock().now() + config::REGISTRATION_TIMEOUT;
    let mut last = None;
    println!("waiting for network registration");
    loop {
        for kind in [RegKind::Cereg, RegKind::Cgreg] {
            if let Ok(reg) = client.send(&GetRegistration { kind }).await {
                if reg.is_registered() {
                    println!("registered ({:?}, {:?})", reg.kind, reg.status);
                    if let Ok(csq) = client.send(&SignalQuality).await {
                        println!("signal: {:?} dBm", csq.dbm());
                    }
                    return Ok(());
                }
                if last != Some(reg.status) {
                    println!("  {:?}: {:?}", reg.kind, reg.status);
                }
                last = Some(reg.status);
            }
        }
        if client.clock().now() >= deadline {
            return Err(BringUpError::NotRegistered { last });
        }
        pause(client, Duration::from_secs(2)).await;
    }
}

/// Configures [`config::PDP_CONTEXT`] with the APN and activates it, unless `AT+QIACT?`
/// shows it active already.
pub async fn activate_pdp<T, C, H>(
    client: &mut Client<'_, T, C, H>,
) -> Result<(), BringUpError<T::Error>>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    let cid = config::PDP_CONTEXT;
    match client.send(&ActiveContexts).await {
        Ok(list) => {
            if let Some(ctx) = list.get(cid).filter(|c| c.state.is_active()) {
                println!("PDP context {cid} already active, IP {:?}", ctx.ip);
                return Ok(());
            }
        }
        Err(error) => {
            return Err(BringUpError::Command {
                step: "AT+QIACT?",
                error,
            });
        }
    }
    client
        .send(&ConfigureContext {
            cid,
            pdp_type: PdpType::Ipv4,
            apn: config::APN,
            user: config::APN_USER,
            password: config::APN_PASSWORD,
            auth: config::APN_AUTH,
        })
        .await
        .map_err(|error| BringUpError::Command {
            step: "AT+QICSGP",
            error,
        })?;
    println!("activating PDP context {cid} (APN \"{}\")", config::APN);
    if let Err(error) = client.send(&ActivateContext { cid }).await {
        let detail = match client.send(&LastError).await {
            Ok(e) if e.code != 0 => Some(e.code),
            _ => None,
        };
        return Err(BringUpError::Pdp { error, detail });
    }
    if let Ok(Some(ctx)) = client.send(&ActiveContexts).await.map(|l| l.get(cid)) {
        println!("PDP context {cid} active, IP {:?}", ctx.ip);
    }
    Ok(())
}

/// The whole bring-up: [`power_up`], [`configure`], [`wait_for_sim`],
/// [`wait_for_network`], [`activate_pdp`].
pub async fn bring_up<T, C, H>(
    client: &mut Client<'_, T, C, H>,
    pwrkey: Option<&mut Output<'_>>,
) -> Result<ModemInfo, BringUpError<T::Error>>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    power_up(client, pwrkey).await?;
    let info = configure(client).await?;
    wait_for_sim(client).await?;
    wait_for_network(client).await?;
    activate_pdp(client).await?;
    Ok(info)
}
