//! The SIMCom steps of [`crate::bring_up`]: identity (and with it the command set), the
//! ICCID, and the data connection each family uses (`simcom-at.md` §1, §2.2, §2.3).
//!
//! ```no_run
//! # async fn f<T, C, H>(client: &mut cellular_ota::client::asynch::Client<'_, T, C, H>)
//! # where T: embedded_io_async::Read + embedded_io_async::Write, T::Error: embedded_io_async::Error,
//! #       C: cellular_ota::at::AsyncClock, H: cellular_ota::client::UrcHandler {
//! use cellular_ota::bring_up::{BringUpConfig, bring_up};
//! use cellular_ota::simcom::bring_up::Simcom;
//!
//! let simcom = Simcom::detect();
//! let info = bring_up(client, &simcom, &BringUpConfig::new("internet"), &mut |_| {}).await;
//! // The command set the module speaks, from its identity.
//! let family = simcom.family();
//! # }
//! ```
//!
//! | family | identity | ICCID | data connection |
//! |---|---|---|---|
//! | SIM7600, A76xx | `AT+SIMCOMATI` | `AT+CICCID` | `AT+CGDCONT`, `AT+CGACT=1,<cid>` (A76xx on LTE: already up), the address from `AT+CGPADDR` |
//! | `AT+SH*` (SIM7070/80/90, SIM7000 newer firmware) | `AT+CGMM`, `AT+CGMR` | `AT+CCID` | `AT+CNCFG`, `AT+CNACT=<idx>,1`, `+APP PDP: <idx>,ACTIVE` (SIM7000: `AT+CNACT=1,"<apn>"`) |
//! | SIM800-style | `AT+CGMM`, `AT+CGMR` | `AT+CCID` | `AT+SAPBR=3,<cid>,"APN",..`, `AT+SAPBR=1,<cid>` |
//!
//! URC routing: the SIMCom families this crate drives send their URCs on every port, and
//! nothing periodic is on by default, so the step has nothing to change (it sends nothing).

use core::cell::Cell;
use core::time::Duration;

use embedded_io_async::{Read, Write};

use super::Family;
use super::general::{IccidQuery, ModelQuery, RevisionQuery, SimcomAti};
use super::pdp::{
    Cgact, Cgdcont, Cgpaddr, Cnact, CnactAction, CnactQuery, CnactSim7000, Cncfg, IpType, Sapbr,
};
use super::urc::Urc;
use crate::at::AsyncClock;
use crate::bring_up::{
    BringUpError, BringUpEvent, BringUpFailure, BringUpStage, DataContext, Family as BringUp,
    IpVersion, ModemInfo, set_truncated,
};
use crate::client::asynch::Client;
use crate::client::{Error as ClientError, TimeoutExt, UrcHandler};

/// How long `AT+CNACT` may take to report `+APP PDP: ..ACTIVE` (TinyGSM waits 60 s).
const CNACT_WAIT: Duration = Duration::from_secs(60);

/// SIMCom modules in [`crate::bring_up`]. The command set comes from the configuration
/// ([`Simcom::new`]) or from the module's identity ([`Simcom::detect`]); read it after the
/// bring-up with [`Simcom::family`].
#[derive(Debug)]
pub struct Simcom {
    configured: Option<Family>,
    detected: Cell<Option<Family>>,
}

impl Simcom {
    /// A module of this family (the identity is still read, but does not change it).
    pub const fn new(family: Family) -> Self {
        Simcom {
            configured: Some(family),
            detected: Cell::new(None),
        }
    }

    /// A module whose family the identity tells ([`Family::from_identity`]); bring-up
    /// fails at [`BringUpStage::Identity`] when it cannot.
    pub const fn detect() -> Self {
        Simcom {
            configured: None,
            detected: Cell::new(None),
        }
    }

    /// The family: the configured one, else the one the last bring-up read from the
    /// identity (`None` before it).
    pub fn family(&self) -> Option<Family> {
        self.configured.or(self.detected.get())
    }
}

fn ip_type(v: IpVersion) -> IpType {
    match v {
        IpVersion::V4 => IpType::V4,
        IpVersion::V6 => IpType::V6,
        IpVersion::V4V6 => IpType::Dual,
    }
}

fn contains_ci(hay: &str, needle: &str) -> bool {
    hay.as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

impl BringUp for Simcom {
    /// Nothing to change (see the [module docs](self)).
    async fn route_urcs<T, C, H>(
        &self,
        _client: &mut Client<'_, T, C, H>,
        _progress: &mut dyn FnMut(BringUpEvent<'_>),
    ) -> Result<(), BringUpError<T::Error>>
    where
        T: Read + Write,
        C: AsyncClock,
        H: UrcHandler,
    {
        Ok(())
    }

    /// `AT+SIMCOMATI`, or `AT+CGMM` and `AT+CGMR` where it is refused; the family from
    /// them unless configured.
    async fn identify<T, C, H>(
        &self,
        client: &mut Client<'_, T, C, H>,
        info: &mut ModemInfo,
    ) -> Result<(), BringUpError<T::Error>>
    where
        T: Read + Write,
        C: AsyncClock,
        H: UrcHandler,
    {
        let stage = BringUpStage::Identity;
        let ati = !matches!(self.configured, Some(Family::Sh | Family::Sim800));
        let got = if ati {
            match client.send(&SimcomAti).await {
                Ok(id) => {
                    set_truncated(&mut info.model, id.model);
                    set_truncated(&mut info.revision, id.revision);
                    true
                }
                Err(ClientError::Rejected(_) | ClientError::Parse(_)) => false,
                Err(e) => return Err(BringUpError::modem(stage, e)),
            }
        } else {
            false
        };
        if !got {
            let model = client
                .send(&ModelQuery)
                .await
                .map_err(|e| BringUpError::modem(stage, e))?;
            set_truncated(&mut info.model, model);
            let revision = client
                .send(&RevisionQuery)
                .await
                .map_err(|e| BringUpError::modem(stage, e))?;
            set_truncated(&mut info.revision, revision);
        }
        let found = Family::from_identity(&info.model, &info.revision);
        self.detected.set(found);
        if self.family().is_none() {
            return Err(BringUpError {
                stage,
                failure: BringUpFailure::Modem(ClientError::Protocol(
                    "the identity does not say which SIMCom command set the module speaks: \
                     configure the family (Simcom::new)",
                )),
            });
        }
        Ok(())
    }

    /// `AT+CICCID` (SIM7600, A76xx) or `AT+CCID`.
    async fn iccid<T, C, H>(
        &self,
        client: &mut Client<'_, T, C, H>,
        info: &mut ModemInfo,
    ) -> Result<(), BringUpError<T::Error>>
    where
        T: Read + Write,
        C: AsyncClock,
        H: UrcHandler,
    {
        let q = match self.family() {
            Some(Family::Sim7600 | Family::A76xx) => IccidQuery::Ciccid,
            _ => IccidQuery::Ccid,
        };
        let id = client
            .send(&q)
            .await
            .map_err(|e| BringUpError::modem(BringUpStage::Sim, e))?;
        set_truncated(&mut info.iccid, id);
        Ok(())
    }

    /// `AT+CGMM` twice: short answers both ways, which every family gives.
    async fn verify_link<T, C, H>(&self, client: &mut Client<'_, T, C, H>) -> bool
    where
        T: Read + Write,
        C: AsyncClock,
        H: UrcHandler,
    {
        for _ in 0..2 {
            let q = ModelQuery.with_timeout(Duration::from_secs(1));
            if client.send(&q).await.is_err() {
                return false;
            }
        }
        true
    }

    /// The family's data connection (see the [module docs](self)).
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
        H: UrcHandler,
    {
        let stage = BringUpStage::Data;
        let data_err = |error| BringUpError {
            stage,
            failure: BringUpFailure::Data {
                error,
                detail: None,
            },
        };
        let cid = data.context_id;
        match self.family() {
            Some(Family::Sh) => {
                let sim7000 = contains_ci(&info.model, "SIM7000");
                if let Some(e) = client
                    .send(&CnactQuery)
                    .await
                    .map_err(|e| BringUpError::modem(stage, e))?
                {
                    set_truncated(&mut info.ip, e.ip);
                    progress(BringUpEvent::DataAlreadyActive);
                    return Ok(());
                }
                // SIM7070's PDP indexes are 0..=3: context 1 is index 0.
                let index = cid.saturating_sub(1).min(3);
                if sim7000 {
                    client
                        .send(&CnactSim7000 {
                            active: true,
                            apn: Some(data.apn),
                        })
                        .await
                        .map_err(data_err)?;
                } else {
                    client
                        .send(&Cncfg {
                            index,
                            ip_type: ip_type(data.ip),
                            apn: data.apn,
                            credentials: None,
                        })
                        .await
                        .map_err(|e| BringUpError::modem(stage, e))?;
                    client
                        .send(&Cnact {
                            index,
                            action: CnactAction::Activate,
                        })
                        .await
                        .map_err(data_err)?;
                }
                let up = client
                    .wait_for(CNACT_WAIT, |line| match Urc::parse(line) {
                        Some(Ok(Urc::AppPdp { index: i, active }))
                            if i.is_none_or(|i| i == index) =>
                        {
                            Some(active)
                        }
                        _ => None,
                    })
                    .await
                    .map_err(data_err)?;
                if !up {
                    return Err(data_err(ClientError::Protocol(
                        "+APP PDP: DEACTIVE after AT+CNACT",
                    )));
                }
                if let Some(e) = client
                    .send(&CnactQuery)
                    .await
                    .map_err(|e| BringUpError::modem(stage, e))?
                {
                    set_truncated(&mut info.ip, e.ip);
                }
            }
            Some(Family::Sim800) => {
                let q = |c| BringUpError::modem(stage, c);
                if let Some(b) = client.send(&Sapbr::Query(cid)).await.map_err(q)?
                    && b.status == 1
                {
                    set_truncated(&mut info.ip, b.ip);
                    progress(BringUpEvent::DataAlreadyActive);
                    return Ok(());
                }
                client
                    .send(&Sapbr::SetApn { cid, apn: data.apn })
                    .await
                    .map_err(q)?;
                client.send(&Sapbr::Open(cid)).await.map_err(data_err)?;
                if let Some(b) = client.send(&Sapbr::Query(cid)).await.map_err(q)? {
                    set_truncated(&mut info.ip, b.ip);
                }
            }
            _ => {
                client
                    .send(&Cgdcont {
                        cid,
                        ip_type: ip_type(data.ip),
                        apn: data.apn,
                    })
                    .await
                    .map_err(|e| BringUpError::modem(stage, e))?;
                client
                    .send(&Cgact { active: true, cid })
                    .await
                    .map_err(data_err)?;
                // The address, where the module tells it (not every firmware does).
                if let Ok(Some(ip)) = client.send(&Cgpaddr { cid }).await {
                    set_truncated(&mut info.ip, ip);
                }
            }
        }
        progress(BringUpEvent::DataActivated);
        Ok(())
    }
}
