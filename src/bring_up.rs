//! From power-on to "ready for an update": the modem answers, reports its URCs on this
//! port, has a ready SIM, is registered and has its data context active.
//!
//! [`bring_up`] (async) and [`bring_up_blocking`] run the same steps, in this order:
//!
//! | stage | what | deadline |
//! |---|---|---|
//! | [`Sync`](BringUpStage::Sync) | `AT` every 0.5 s until `OK` (the modem may be booting; its boot URCs go to the handler) | [`BringUpConfig::ready_timeout`] |
//! | [`Setup`](BringUpStage::Setup) | `ATE0`, `AT+CMEE=1` (numeric error codes, which the crate decodes), `AT+IFC=2,2` if [`BringUpConfig::flow_control`] | each command's own |
//! | [`UrcRouting`](BringUpStage::UrcRouting) | the family's step: URCs to this port, chatty URCs off without saving | each command's own |
//! | [`Identity`](BringUpStage::Identity) | the family's model and revision, `AT+GSN` (IMEI) | each command's own |
//! | [`Sim`](BringUpStage::Sim) | `AT+CPIN?` every second; the PIN is entered once if asked; then the ICCID | [`BringUpConfig::sim_timeout`] |
//! | [`Registration`](BringUpStage::Registration) | `AT+CEREG?`, `AT+CGREG?`, `AT+CREG?` every 2 s until one says home or roaming; `AT+CSQ` | [`BringUpConfig::registration_timeout`] |
//! | [`Data`](BringUpStage::Data) | the family's step: configure and activate [`BringUpConfig::data`] (skipped when `None`); a refused activation is tried [`DATA_TRIES`] times, [`DATA_RETRY_PAUSE`] apart | the activation's own (150 s on Quectel) |
//!
//! Modem-family specifics (the URC port, the identity lines, the ICCID command, the data
//! context commands) are a [`Family`]; [`Quectel`](crate::quectel::bring_up::Quectel)
//! implements it. The other steps use V.250 / 3GPP TS 27.007 commands every LTE module
//! answers (today defined in [`crate::quectel::general`]).
//!
//! # The state the update flow expects
//!
//! [`update`](crate::update::update) and [`upgrade_modem`](crate::update::module_fota::upgrade_modem)
//! expect exactly what a successful bring-up leaves: echo off, numeric `+CME ERROR` codes,
//! URCs on this port (`+QHTTPGET:`, `+QIND: "FOTA"` never arrive otherwise), registered, and
//! the context of [`UpdateConfig::context_id`](crate::update::UpdateConfig::context_id)
//! active. Run bring-up again before each retry: a modem that rebooted starts with echo on
//! and no data context.
//!
//! # Decisions
//!
//! * A PIN is entered at most once per bring-up, and never after the SIM refused it
//!   (`+CME ERROR: 16`): each wrong try uses up one of the SIM's three. A SIM that still
//!   asks after the PIN was taken (`OK`) is waited for until the SIM deadline.
//! * `NOT INSERTED` (or `+CME ERROR: 10`) is final only at the SIM deadline: some modules
//!   report it while the SIM is still starting after a reboot.
//! * Registration denied (`<stat>` 3) with a cause that cannot change by waiting (the SIM or
//!   the device is barred: EMM causes 2, 3, 5, 6, 7, 8) fails at once; any other denial is
//!   waited out until the deadline, as the module keeps trying other cells and networks.
//!   The cause is read with `AT+CEREG=3` and the previous mode is restored; a module that
//!   refuses mode 3 gives no cause.

use core::fmt;
use core::time::Duration;

use embedded_io_async::{Read, Write};

use crate::at::AsyncClock;
use crate::client::asynch::Client;
use crate::client::{Error as ClientError, ModemCode, Rejection, TimeoutExt, UrcHandler, blocking};
use crate::quectel::error::{EmmCause, describe};
use crate::quectel::general::{
    Attention, Csq, EnterPin, ErrorFormat, GetRegistration, Imei, RegKind, RegStatus, RegUrcMode,
    Registration, RejectCause, SetEcho, SetErrorFormat, SetFlowControl, SetRegistrationUrc,
    SignalQuality, SimState, SimStatus,
};
use crate::retry::{Classify, Retry, client_retry};

/// Activations of the data context tried when the module refuses them (`+CME ERROR`), with
/// [`DATA_RETRY_PAUSE`] between tries.
pub const DATA_TRIES: u32 = 3;
/// Pause between refused activations.
pub const DATA_RETRY_PAUSE: Duration = Duration::from_secs(2);

/// Longest model name kept in [`ModemInfo::model`].
pub const MAX_MODEL: usize = 24;
/// Longest revision kept in a [`Revision`].
pub const MAX_REVISION: usize = 64;
/// A module firmware revision as the module prints it (`ATI`'s `Revision:` line, `AT+GMR`,
/// `AT+QGMR`), truncated to [`MAX_REVISION`] bytes: [`ModemInfo::revision`] and the old and
/// new revision of a module FOTA ([`crate::update::module_fota`]).
pub type Revision = heapless::String<MAX_REVISION>;
/// Longest IMEI kept (15 digits, 16 for an IMEISV).
pub const MAX_IMEI: usize = 16;
/// Longest ICCID kept (19 or 20 digits, sometimes with a trailing `F`).
pub const MAX_ICCID: usize = 24;
/// Longest address kept in [`ModemInfo::ip`] (an IPv6 address in text).
pub const MAX_IP: usize = 46;

/// Settings of [`bring_up`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BringUpConfig<'a> {
    /// How long the modem may take to answer `AT`, for a modem that is still booting.
    /// Default 35 s: an EG800K took 7.8 to 30.2 s from power-on to `RDY`
    /// (quectel-at.md §2.1).
    pub ready_timeout: Duration,
    /// The SIM PIN (4 to 8 digits), entered once if the SIM asks for it. `None`: a SIM that
    /// asks for a PIN fails with [`BringUpFailure::PinRequired`].
    pub sim_pin: Option<&'a str>,
    /// How long the SIM may take to become ready. Default 20 s.
    pub sim_timeout: Duration,
    /// How long registration may take. Default 180 s (`AT+COPS` may take 180 s,
    /// quectel-at.md §9).
    pub registration_timeout: Duration,
    /// The data context to activate; `None` leaves data alone (the caller does it).
    pub data: Option<DataContext<'a>>,
    /// RTS/CTS is wired and the host UART uses it: the modem is told with `AT+IFC=2,2`
    /// (not saved: a modem that rebooted has its saved setting again until the next
    /// bring-up). Default `false` (the 7Semi board does not wire RTS/CTS).
    pub flow_control: bool,
}

impl<'a> BringUpConfig<'a> {
    /// Defaults, activating context 1 with `apn` (IPv4, no authentication).
    pub const fn new(apn: &'a str) -> Self {
        BringUpConfig {
            ready_timeout: Duration::from_secs(35),
            sim_pin: None,
            sim_timeout: Duration::from_secs(20),
            registration_timeout: Duration::from_secs(180),
            data: Some(DataContext::new(apn)),
            flow_control: false,
        }
    }
}

/// A packet data (PDP) context to set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DataContext<'a> {
    /// Context id (Quectel: 1 to 16). The update flow's
    /// [`UpdateConfig::context_id`](crate::update::UpdateConfig::context_id) must name it.
    pub context_id: u8,
    /// The access point name from the SIM's operator.
    pub apn: &'a str,
    /// User name, often empty.
    pub user: &'a str,
    /// Password, often empty.
    pub password: &'a str,
    /// Authentication.
    pub auth: Auth,
    /// IP version.
    pub ip: IpVersion,
}

impl<'a> DataContext<'a> {
    /// Context 1, IPv4, no authentication.
    pub const fn new(apn: &'a str) -> Self {
        DataContext {
            context_id: 1,
            apn,
            user: "",
            password: "",
            auth: Auth::None,
            ip: IpVersion::V4,
        }
    }
}

/// Authentication of a data context.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Auth {
    /// None.
    None,
    /// PAP.
    Pap,
    /// CHAP.
    Chap,
    /// PAP or CHAP, as the network asks.
    PapOrChap,
}

/// IP version of a data context.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum IpVersion {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
    /// Dual stack.
    V4V6,
}

/// What the modem said about itself and its network.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ModemInfo {
    /// The model, such as `EC200U` (truncated to [`MAX_MODEL`] bytes).
    pub model: heapless::String<MAX_MODEL>,
    /// The firmware revision, such as `EC200UCNAAR01A04M08` (truncated to
    /// [`MAX_REVISION`] bytes).
    pub revision: Revision,
    /// The IMEI.
    pub imei: heapless::String<MAX_IMEI>,
    /// The SIM's ICCID.
    pub iccid: heapless::String<MAX_ICCID>,
    /// Signal quality when registration completed (`None` if `AT+CSQ` failed).
    pub signal: Option<Csq>,
    /// The registration report that said home or roaming.
    pub registration: Option<Registration>,
    /// The data context's address, if the modem reported one.
    pub ip: heapless::String<MAX_IP>,
}

/// Copies as much of `s` as fits into `out` (whole characters only).
pub(crate) fn set_truncated<const N: usize>(out: &mut heapless::String<N>, s: &str) {
    out.clear();
    let mut end = s.len().min(N);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let _ = out.push_str(&s[..end]);
}

/// What bring-up is doing, for a log or a display. New events may be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum BringUpEvent<'a> {
    /// The modem answered `AT` after this many tries.
    Answered {
        /// `AT` commands sent.
        tries: u32,
    },
    /// URCs went to another port (this name); they were routed to this one.
    UrcPortForced {
        /// The port the module had saved.
        was: &'a str,
    },
    /// The module has no URC routing command (it answered `ERROR`): it has one port.
    UrcRoutingUnsupported,
    /// The SIM asked for its PIN and it was entered.
    PinEntered,
    /// The SIM is ready.
    SimReady,
    /// A registration report changed.
    Registration {
        /// Which report.
        kind: RegKind,
        /// Its state.
        status: RegStatus,
    },
    /// Registered (home or roaming).
    Registered(Registration),
    /// The data context was already active.
    DataAlreadyActive,
    /// The data context was activated.
    DataActivated,
}

/// Where bring-up failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BringUpStage {
    /// Waiting for `OK` to `AT`.
    Sync,
    /// Echo off, numeric errors.
    Setup,
    /// Routing URCs to this port, chatty URCs off.
    UrcRouting,
    /// Model, revision, IMEI.
    Identity,
    /// SIM state, PIN, ICCID.
    Sim,
    /// Network registration.
    Registration,
    /// The data context.
    Data,
}

impl fmt::Display for BringUpStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BringUpStage::Sync => "sync",
            BringUpStage::Setup => "setup",
            BringUpStage::UrcRouting => "URC routing",
            BringUpStage::Identity => "identity",
            BringUpStage::Sim => "SIM",
            BringUpStage::Registration => "registration",
            BringUpStage::Data => "data context",
        })
    }
}

/// What went wrong in bring-up. `E` is the transport's error type.
#[derive(Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BringUpFailure<E> {
    /// The modem never answered `AT` within [`BringUpConfig::ready_timeout`]: power
    /// (peak current), wiring, baud rate, PWRKEY.
    NoAnswer,
    /// A command failed.
    Modem(ClientError<E>),
    /// No SIM card (`NOT INSERTED` or `+CME ERROR: 10` until the SIM deadline).
    SimNotInserted,
    /// The SIM asks for a PIN and [`BringUpConfig::sim_pin`] is `None`.
    PinRequired,
    /// The SIM refused the PIN (one of its tries is used up; it was not entered again).
    PinRejected,
    /// The SIM is blocked and asks for its PUK (unlock it in a phone).
    PukRequired,
    /// The SIM did not become ready within [`BringUpConfig::sim_timeout`].
    SimNotReady,
    /// The network denied registration.
    Denied {
        /// Why, if the module reports causes (`AT+CEREG=3`).
        cause: Option<RejectCause>,
    },
    /// Not registered within [`BringUpConfig::registration_timeout`].
    NotRegistered {
        /// The last state the LTE report (`+CEREG`) gave, else the first other one.
        last: Option<RegStatus>,
    },
    /// The data context could not be activated.
    Data {
        /// How the activation failed.
        error: ClientError<E>,
        /// The module's detail code (Quectel: `AT+QIGETERROR`), if it gave one.
        detail: Option<u16>,
    },
}

/// A failed bring-up: where, and what.
#[derive(Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BringUpError<E> {
    /// Where it failed.
    pub stage: BringUpStage,
    /// What failed.
    pub failure: BringUpFailure<E>,
}

#[cold]
fn fail<E>(stage: BringUpStage, failure: BringUpFailure<E>) -> BringUpError<E> {
    BringUpError { stage, failure }
}

impl<E> BringUpError<E> {
    /// A failed command at `stage`.
    #[cold]
    pub fn modem(stage: BringUpStage, error: ClientError<E>) -> Self {
        fail(stage, BringUpFailure::Modem(error))
    }

    /// The modem's numeric code, if the failure carries one.
    pub fn code(&self) -> Option<u16> {
        let cme = |e: &ClientError<E>| match e {
            ClientError::Rejected(Rejection::Cme(ModemCode::Numeric(n))) => Some(*n),
            _ => None,
        };
        match &self.failure {
            BringUpFailure::Modem(e) => cme(e),
            BringUpFailure::Data { error, detail } => detail.or_else(|| cme(error)),
            BringUpFailure::Denied { cause: Some(c) } => Some(c.code),
            _ => None,
        }
    }

    /// A one-line meaning of the modem's code, if there is one.
    pub fn meaning(&self) -> Option<&'static str> {
        match &self.failure {
            BringUpFailure::Denied { cause: Some(c) } => Some(c.meaning()),
            _ => self.code().map(describe),
        }
    }
}

impl<E: fmt::Debug> fmt::Display for BringUpError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bring-up failed at {}: ", self.stage)?;
        match &self.failure {
            BringUpFailure::NoAnswer => f.write_str(
                "the modem does not answer AT: check its power supply (peak current), the \
                 UART wiring and baud rate, and PWRKEY",
            ),
            BringUpFailure::Modem(e) => write!(f, "{e}"),
            BringUpFailure::SimNotInserted => f.write_str("no SIM card"),
            BringUpFailure::PinRequired => f.write_str("the SIM asks for a PIN and none is set"),
            BringUpFailure::PinRejected => {
                f.write_str("the SIM refused the PIN (not entered again: the SIM allows 3 tries)")
            }
            BringUpFailure::PukRequired => {
                f.write_str("the SIM is blocked (PUK required): unlock it in a phone")
            }
            BringUpFailure::SimNotReady => f.write_str("the SIM did not become ready"),
            BringUpFailure::Denied { cause: None } => {
                f.write_str("the network denied registration")
            }
            BringUpFailure::Denied { cause: Some(c) } => write!(
                f,
                "the network denied registration (cause {}: {})",
                c.code,
                c.meaning()
            ),
            BringUpFailure::NotRegistered { last } => write!(
                f,
                "not registered before the deadline (last state {last:?}): check the antenna, \
                 coverage and that the SIM is active"
            ),
            BringUpFailure::Data { error, .. } => {
                write!(
                    f,
                    "the data context did not activate: {error}; check the APN"
                )
            }
        }?;
        match (&self.failure, self.code(), self.meaning()) {
            (BringUpFailure::Denied { .. }, _, _) => Ok(()),
            (_, Some(code), Some(m)) => write!(f, " (code {code}: {m})"),
            _ => Ok(()),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for BringUpError<E> {}

/// EMM causes after which waiting or retrying cannot help: the subscription or the device
/// is refused (TS 24.301 Annex A: 2, 3, 5, 6, 7, 8).
fn denial_is_final(cause: Option<RejectCause>) -> bool {
    matches!(
        cause.and_then(RejectCause::emm),
        Some(
            EmmCause::ImsiUnknownInHss
                | EmmCause::IllegalUe
                | EmmCause::ImeiNotAccepted
                | EmmCause::IllegalMe
                | EmmCause::EpsNotAllowed
                | EmmCause::EpsAndNonEpsNotAllowed
        )
    )
}

/// Permanent: no SIM, PIN problems, and a denial whose cause bars the SIM or device (EMM
/// causes 2, 3, 5, 6, 7, 8). A failed command follows
/// [`client_retry`]. Everything else (no answer, SIM not ready,
/// not registered or denied for another cause, the data context) is transient.
impl<E> Classify for BringUpError<E> {
    fn retry(&self) -> Retry {
        match &self.failure {
            BringUpFailure::SimNotInserted
            | BringUpFailure::PinRequired
            | BringUpFailure::PinRejected
            | BringUpFailure::PukRequired => Retry::Permanent,
            BringUpFailure::Denied { cause } if denial_is_final(*cause) => Retry::Permanent,
            BringUpFailure::Modem(e) => client_retry(e),
            _ => Retry::Transient,
        }
    }
}

/// The steps of bring-up that differ between modem families. Implemented by
/// [`Quectel`](crate::quectel::bring_up::Quectel).
///
/// Each step reports failures as a [`BringUpError`] with its stage; the helpers
/// [`BringUpError::modem`] and [`BringUpFailure::Data`] build them.
#[allow(async_fn_in_trait)] // Used with concrete types; no Send bound is needed.
pub trait Family {
    /// Routes URCs to the port this client uses and turns chatty URCs off without saving.
    async fn route_urcs<T, C, H>(
        &self,
        client: &mut Client<'_, T, C, H>,
        progress: &mut dyn FnMut(BringUpEvent<'_>),
    ) -> Result<(), BringUpError<T::Error>>
    where
        T: Read + Write,
        C: AsyncClock,
        H: UrcHandler;

    /// Fills [`ModemInfo::model`] and [`ModemInfo::revision`].
    async fn identify<T, C, H>(
        &self,
        client: &mut Client<'_, T, C, H>,
        info: &mut ModemInfo,
    ) -> Result<(), BringUpError<T::Error>>
    where
        T: Read + Write,
        C: AsyncClock,
        H: UrcHandler;

    /// Fills [`ModemInfo::iccid`] (called once the SIM is ready).
    async fn iccid<T, C, H>(
        &self,
        client: &mut Client<'_, T, C, H>,
        info: &mut ModemInfo,
    ) -> Result<(), BringUpError<T::Error>>
    where
        T: Read + Write,
        C: AsyncClock,
        H: UrcHandler;

    /// Proves that the link carries clean traffic both ways at the current rate, after a rate
    /// change ([`crate::baud::negotiate`]); `false` on any garbled, missing or refused
    /// answer. The default asks `ATI` twice (a long answer, modem to host); a family with a
    /// file system does better (Quectel: a file with every byte value, up and down).
    async fn verify_link<T, C, H>(&self, client: &mut Client<'_, T, C, H>) -> bool
    where
        T: Read + Write,
        C: AsyncClock,
        H: UrcHandler,
    {
        for _ in 0..2 {
            let ati = crate::quectel::general::Identify.with_timeout(Duration::from_secs(1));
            if client.send(&ati).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Configures and activates `data` unless it is already active, and fills
    /// [`ModemInfo::ip`].
    async fn activate_data<T, C, H>(
        &self,
        client: &mut Client<'_, T, C, H>,
        data: &DataContext<'_>,
        info: &mut ModemInfo,
        progress: &mut dyn FnMut(BringUpEvent<'_>),
    ) -> Result<(), BringUpError<T::Error>>
    where
        T: Read + Write,
        C: AsyncClock,
        H: UrcHandler;
}

/// Waits `d` while still reading the port (URCs go to the handler). A transport error just
/// ends the pause and drops the broken line.
pub(crate) async fn idle<T, C, H>(client: &mut Client<'_, T, C, H>, d: Duration)
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    if let Err(ClientError::Io(_) | ClientError::Closed) = client.wait_for(d, |_| None::<()>).await
    {
        client.reset();
    }
}

/// Brings the modem up; see the [module docs](self) for the steps, deadlines and decisions.
///
/// On success the modem is in the state the update flow expects, and the returned
/// [`ModemInfo`] says what it is and where it is registered. Not cancel-safe in the sense of
/// the client: after dropping the future, call [`Client::reset`] before the next command.
pub async fn bring_up<T, C, H, F>(
    client: &mut Client<'_, T, C, H>,
    family: &F,
    config: &BringUpConfig<'_>,
    progress: &mut dyn FnMut(BringUpEvent<'_>),
) -> Result<ModemInfo, BringUpError<T::Error>>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
    F: Family,
{
    sync(client, config.ready_timeout, progress).await?;
    let setup = |e| BringUpError::modem(BringUpStage::Setup, e);
    client.send(&SetEcho(false)).await.map_err(setup)?;
    client
        .send(&SetErrorFormat(ErrorFormat::Numeric))
        .await
        .map_err(setup)?;
    if config.flow_control {
        client
            .send(&SetFlowControl::HARDWARE)
            .await
            .map_err(setup)?;
    }
    family.route_urcs(client, progress).await?;
    let mut info = ModemInfo::default();
    family.identify(client, &mut info).await?;
    let imei = client
        .send(&Imei)
        .await
        .map_err(|e| BringUpError::modem(BringUpStage::Identity, e))?;
    set_truncated(&mut info.imei, imei);
    wait_for_sim(client, config, progress).await?;
    family.iccid(client, &mut info).await?;
    let reg = wait_for_registration(client, config.registration_timeout, progress).await?;
    info.registration = Some(reg);
    info.signal = client.send(&SignalQuality).await.ok();
    if let Some(data) = &config.data {
        let mut tries = 1;
        while let Err(e) = family
            .activate_data(client, data, &mut info, progress)
            .await
        {
            // The network refusing the first activation right after registration is common
            // (`561`): try again, a few times, before giving up.
            let refused = matches!(
                e.failure,
                BringUpFailure::Data {
                    error: ClientError::Rejected(_),
                    ..
                }
            );
            if !refused || tries >= DATA_TRIES {
                return Err(e);
            }
            tries += 1;
            idle(client, DATA_RETRY_PAUSE).await;
        }
    }
    Ok(info)
}

/// The blocking twin of [`bring_up`] (the same code, driven to completion).
pub fn bring_up_blocking<T, C, H, F>(
    client: &mut blocking::Client<'_, T, C, H>,
    family: &F,
    config: &BringUpConfig<'_>,
    progress: &mut dyn FnMut(BringUpEvent<'_>),
) -> Result<ModemInfo, BringUpError<T::Error>>
where
    T: embedded_io::Read + embedded_io::Write + embedded_io::ReadReady,
    C: crate::at::Clock,
    H: UrcHandler,
    F: Family,
{
    blocking::block_on(bring_up(client.as_async(), family, config, progress))
}

/// `AT` every half second until `OK`, for at most `timeout`; line noise (a booting modem, a
/// UART error) is dropped between tries.
async fn sync<T, C, H>(
    client: &mut Client<'_, T, C, H>,
    timeout: Duration,
    progress: &mut dyn FnMut(BringUpEvent<'_>),
) -> Result<(), BringUpError<T::Error>>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    match poll_at(client, timeout, Duration::from_secs(1)).await {
        Some(tries) => {
            progress(BringUpEvent::Answered { tries });
            Ok(())
        }
        None => Err(fail(BringUpStage::Sync, BringUpFailure::NoAnswer)),
    }
}

/// Sends `AT` (each try answered within `per_try`) every half second until `OK`, for at most
/// `timeout`; line noise (a booting modem, a UART error) is dropped between tries. Returns
/// the tries it took, or `None` when the deadline passed. Shared by bring-up's sync and
/// [`crate::baud`]'s wait for a module at its boot rate.
pub(crate) async fn poll_at<T, C, H>(
    client: &mut Client<'_, T, C, H>,
    timeout: Duration,
    per_try: Duration,
) -> Option<u32>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    let deadline = client.clock().now() + timeout;
    let mut tries = 0;
    loop {
        tries += 1;
        let left = deadline.saturating_duration_since(client.clock().now());
        if client
            .send(&Attention.with_timeout(left.min(per_try)))
            .await
            .is_ok()
        {
            return Some(tries);
        }
        client.reset();
        let left = deadline.saturating_duration_since(client.clock().now());
        if left.is_zero() {
            return None;
        }
        idle(client, left.min(Duration::from_millis(500))).await;
    }
}

/// Whether a client error is `+CME ERROR: <code>`.
fn is_cme<E>(e: &ClientError<E>, code: u16) -> bool {
    matches!(e, ClientError::Rejected(Rejection::Cme(ModemCode::Numeric(n))) if *n == code)
}

/// Polls `AT+CPIN?` every second until `READY`, entering the PIN once if asked.
async fn wait_for_sim<T, C, H>(
    client: &mut Client<'_, T, C, H>,
    config: &BringUpConfig<'_>,
    progress: &mut dyn FnMut(BringUpEvent<'_>),
) -> Result<(), BringUpError<T::Error>>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    let stage = BringUpStage::Sim;
    let deadline = client.clock().now() + config.sim_timeout;
    let mut pin_sent = false;
    loop {
        let last_failure = match client.send(&SimStatus).await {
            Ok(SimState::Ready) => {
                progress(BringUpEvent::SimReady);
                return Ok(());
            }
            Ok(SimState::SimPin) => {
                let Some(pin) = config.sim_pin else {
                    return Err(fail(stage, BringUpFailure::PinRequired));
                };
                if pin_sent {
                    // The module took the PIN (`OK`; a wrong one is `+CME ERROR: 16`) and is
                    // still unlocking the SIM: wait, never enter it twice.
                    BringUpFailure::SimNotReady
                } else {
                    pin_sent = true;
                    match client.send(&EnterPin { pin }).await {
                        Ok(()) => progress(BringUpEvent::PinEntered),
                        // 16: incorrect password; 12: the wrong PIN blocked the SIM.
                        Err(e) if is_cme(&e, 16) => {
                            return Err(fail(stage, BringUpFailure::PinRejected));
                        }
                        Err(e) if is_cme(&e, 12) => {
                            return Err(fail(stage, BringUpFailure::PukRequired));
                        }
                        Err(e) => return Err(BringUpError::modem(stage, e)),
                    }
                    continue;
                }
            }
            Ok(SimState::SimPuk | SimState::SimPuk2) => {
                return Err(fail(stage, BringUpFailure::PukRequired));
            }
            Ok(SimState::NotInserted) => BringUpFailure::SimNotInserted,
            // NOT READY or another state: the SIM may still be starting.
            Ok(_) => BringUpFailure::SimNotReady,
            Err(e) if is_cme(&e, 10) => BringUpFailure::SimNotInserted,
            Err(e) if is_cme(&e, 11) && config.sim_pin.is_none() => {
                return Err(fail(stage, BringUpFailure::PinRequired));
            }
            Err(e) if is_cme(&e, 12) => return Err(fail(stage, BringUpFailure::PukRequired)),
            // 13 SIM failure, 14 SIM busy, a timeout: the SIM may still be starting.
            Err(e @ (ClientError::Rejected(_) | ClientError::Timeout)) => BringUpFailure::Modem(e),
            Err(e) => return Err(BringUpError::modem(stage, e)),
        };
        let left = deadline.saturating_duration_since(client.clock().now());
        if left.is_zero() {
            return Err(fail(stage, last_failure));
        }
        idle(client, left.min(Duration::from_secs(1))).await;
    }
}

const REG_KINDS: [RegKind; 3] = [RegKind::Cereg, RegKind::Cgreg, RegKind::Creg];

/// Polls the registration reports every 2 s until one says home or roaming.
async fn wait_for_registration<T, C, H>(
    client: &mut Client<'_, T, C, H>,
    timeout: Duration,
    progress: &mut dyn FnMut(BringUpEvent<'_>),
) -> Result<Registration, BringUpError<T::Error>>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    let stage = BringUpStage::Registration;
    let deadline = client.clock().now() + timeout;
    let mut last: [Option<RegStatus>; 3] = [None; 3];
    let mut cause: Option<Option<RejectCause>> = None;
    loop {
        for (i, kind) in REG_KINDS.into_iter().enumerate() {
            let reg = match client.send(&GetRegistration { kind }).await {
                Ok(reg) => reg,
                // A module without this report (no 2G/3G: `+CREG`) answers ERROR.
                Err(ClientError::Rejected(_)) => continue,
                Err(e) => return Err(BringUpError::modem(stage, e)),
            };
            if reg.is_registered() {
                progress(BringUpEvent::Registered(reg));
                return Ok(reg);
            }
            if last[i] != Some(reg.status) {
                progress(BringUpEvent::Registration {
                    kind,
                    status: reg.status,
                });
                last[i] = Some(reg.status);
            }
            if kind == RegKind::Cereg && reg.status == RegStatus::Denied && cause.is_none() {
                let c = reject_cause(client, reg.mode).await?;
                cause = Some(c);
                if denial_is_final(c) {
                    return Err(fail(stage, BringUpFailure::Denied { cause: c }));
                }
            }
        }
        let left = deadline.saturating_duration_since(client.clock().now());
        if left.is_zero() {
            let status = last.iter().flatten().copied().next();
            return Err(fail(
                stage,
                match status {
                    Some(RegStatus::Denied) => BringUpFailure::Denied {
                        cause: cause.flatten(),
                    },
                    last => BringUpFailure::NotRegistered { last },
                },
            ));
        }
        idle(client, left.min(Duration::from_secs(2))).await;
    }
}

/// Reads the LTE reject cause with `AT+CEREG=3` and restores the previous mode. `None` if
/// the module refuses mode 3 or gives no cause.
async fn reject_cause<T, C, H>(
    client: &mut Client<'_, T, C, H>,
    previous: RegUrcMode,
) -> Result<Option<RejectCause>, BringUpError<T::Error>>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    let stage = BringUpStage::Registration;
    let set = |mode| SetRegistrationUrc {
        kind: RegKind::Cereg,
        mode,
    };
    match client.send(&set(RegUrcMode::WithCause)).await {
        Ok(()) => {}
        Err(ClientError::Rejected(_)) => return Ok(None),
        Err(e) => return Err(BringUpError::modem(stage, e)),
    }
    let cause = match client
        .send(&GetRegistration {
            kind: RegKind::Cereg,
        })
        .await
    {
        Ok(reg) => reg.reject_cause,
        Err(ClientError::Rejected(_) | ClientError::Parse(_)) => None,
        Err(e) => return Err(BringUpError::modem(stage, e)),
    };
    if !matches!(previous, RegUrcMode::Other(_) | RegUrcMode::WithCause) {
        client
            .send(&set(previous))
            .await
            .map_err(|e| BringUpError::modem(stage, e))?;
    }
    Ok(cause)
}
