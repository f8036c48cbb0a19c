//! The Quectel steps of [bring-up](crate::bring_up): URC routing (`AT+QURCCFG`), chatty URCs
//! off (`AT+QINDCFG`), identity (`ATI`), ICCID (`AT+QCCID`) and the data context
//! (`AT+QICSGP`, `AT+QIACT`, `AT+QIGETERROR`) (quectel-at.md §1 to §3).
//!
//! ```no_run
//! # async fn f<T, C>(client: &mut cellular_ota::client::asynch::Client<'_, T, C, cellular_ota::client::CountUrcs>)
//! # where T: embedded_io_async::Read + embedded_io_async::Write, C: cellular_ota::at::AsyncClock {
//! use cellular_ota::bring_up::{BringUpConfig, bring_up};
//! use cellular_ota::quectel::bring_up::Quectel;
//!
//! let config = BringUpConfig::new("internet");
//! match bring_up(client, &Quectel::UART1, &config, &mut |_| {}).await {
//!     Ok(info) => { /* info.model, info.imei, info.registration ... */ }
//!     Err(e) => { /* e.stage, e.failure; e.retry() says whether to try again */ }
//! }
//! # }
//! ```

use embedded_io_async::{Read, Write};

use core::time::Duration;

use super::file::{DeleteFile, DownloadFile, UploadFile};
use super::general::{
    GetUrcPort, Iccid, Identify, IndicationType, SetIndication, SetUrcPort, UrcPort,
};
use super::pdp::{
    ActivateContext, ActiveContexts, AuthMethod, ConfigureContext, LastError, PdpType,
};
use crate::at::AsyncClock;
use crate::bring_up::{
    Auth, BringUpError, BringUpEvent, BringUpFailure, BringUpStage, DataContext, Family, IpVersion,
    ModemInfo, set_truncated,
};
use crate::client::asynch::Client;
use crate::client::{Error as ClientError, TimeoutExt, UrcHandler};

/// Quectel modules (EC200U, EC200T, EG06, EC2x, BG9x ...): which port this host talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Quectel<'a> {
    /// The port the client is connected to: URCs are routed here
    /// (`AT+QURCCFG="urcport"`), because a module whose saved setting sends them to another
    /// port never shows `+QHTTPGET:` or `+QIND: "FOTA"` on this one (quectel-at.md §1).
    pub urc_port: UrcPort<'a>,
}

impl Quectel<'static> {
    /// Connected to the main UART (`"uart1"`), as on the 7Semi board.
    pub const UART1: Quectel<'static> = Quectel {
        urc_port: UrcPort::Uart1,
    };
    /// Connected to the USB AT port (`"usbat"`).
    pub const USB_AT: Quectel<'static> = Quectel {
        urc_port: UrcPort::UsbAt,
    };
}

/// The file [`Quectel`]'s `verify_link` writes and deletes again.
const LINK_FILE: &str = "UFS:cota_link.bin";

/// Every byte value once.
const LINK_PATTERN: [u8; 256] = {
    let mut p = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        p[i] = i as u8;
        i += 1;
    }
    p
};

/// The URC groups turned off (without saving): `+QIND: "csq"` and `+QIND: "act"` arrive at
/// any time and only cost bandwidth and parsing during a transfer (quectel-at.md §1.1).
const CHATTY: [IndicationType; 2] = [IndicationType::Csq, IndicationType::Act];

impl Family for Quectel<'_> {
    /// Reads `AT+QURCCFG="urcport"` and, if it names another port, sets this one (the
    /// module saves it). A module that answers `ERROR` has no routing (one port): reported
    /// as [`BringUpEvent::UrcRoutingUnsupported`]. Then `AT+QINDCFG="csq",0,0` and
    /// `AT+QINDCFG="act",0,0`; a module without one of these groups (`ERROR`) is fine.
    async fn route_urcs<T, C, H>(
        &self,
        client: &mut Client<'_, T, C, H>,
        progress: &mut dyn FnMut(BringUpEvent<'_>),
    ) -> Result<(), BringUpError<T::Error>>
    where
        T: Read + Write,
        C: AsyncClock,
        H: UrcHandler,
    {
        let stage = BringUpStage::UrcRouting;
        let want = self.urc_port;
        let set = match client.send(&GetUrcPort).await {
            Ok(port) if port.name().eq_ignore_ascii_case(want.name()) => false,
            Ok(port) => {
                progress(BringUpEvent::UrcPortForced { was: port.name() });
                true
            }
            // No `+QURCCFG` query on this firmware: set it anyway.
            Err(ClientError::Rejected(_) | ClientError::Parse(_)) => true,
            Err(e) => return Err(BringUpError::modem(stage, e)),
        };
        if set {
            match client.send(&SetUrcPort(want)).await {
                Ok(()) => {}
                Err(ClientError::Rejected(_)) => progress(BringUpEvent::UrcRoutingUnsupported),
                Err(e) => return Err(BringUpError::modem(stage, e)),
            }
        }
        for kind in CHATTY {
            let off = SetIndication {
                kind,
                enable: false,
                save: Some(false),
            };
            match client.send(&off).await {
                Ok(()) | Err(ClientError::Rejected(_)) => {}
                Err(e) => return Err(BringUpError::modem(stage, e)),
            }
        }
        Ok(())
    }

    /// `ATI` (a long answer), then a 256-byte file holding every byte value once, uploaded
    /// to the module's file system (`AT+QFUPL`, host to modem), downloaded again
    /// (`AT+QFDWL`, modem to host), compared byte for byte and deleted: binary-clean both
    /// ways, which is what a firmware payload needs. Each command has a short deadline (the
    /// file takes 22 ms at 115200).
    async fn verify_link<T, C, H>(&self, client: &mut Client<'_, T, C, H>) -> bool
    where
        T: Read + Write,
        C: AsyncClock,
        H: UrcHandler,
    {
        let short = Duration::from_secs(1);
        if client.send(&Identify.with_timeout(short)).await.is_err() {
            return false;
        }
        // A file left over from an interrupted check would be refused (407).
        let _ = client
            .send(&DeleteFile::new(LINK_FILE).with_timeout(short))
            .await;
        let stored = client
            .send(&UploadFile::new(LINK_FILE, &LINK_PATTERN).with_timeout(Duration::from_secs(2)))
            .await;
        if !matches!(stored, Ok(r) if r.verify(&LINK_PATTERN).is_ok()) {
            return false;
        }
        let mut same = true;
        let mut at = 0usize;
        let back = client
            .send_receive(
                &DownloadFile {
                    name: LINK_FILE,
                    size: LINK_PATTERN.len() as u32,
                }
                .with_timeout(Duration::from_secs(2)),
                |chunk| {
                    for &b in chunk {
                        same &= LINK_PATTERN.get(at) == Some(&b);
                        at += 1;
                    }
                },
            )
            .await;
        let ok = same && at == LINK_PATTERN.len() && back.is_ok();
        let _ = client
            .send(&DeleteFile::new(LINK_FILE).with_timeout(short))
            .await;
        ok
    }

    /// `ATI`: model and revision.
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
        let id = client
            .send(&Identify)
            .await
            .map_err(|e| BringUpError::modem(BringUpStage::Identity, e))?;
        set_truncated(&mut info.model, id.model);
        set_truncated(&mut info.revision, id.revision);
        Ok(())
    }

    /// `AT+QCCID`.
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
        let iccid = client
            .send(&Iccid)
            .await
            .map_err(|e| BringUpError::modem(BringUpStage::Sim, e))?;
        set_truncated(&mut info.iccid, iccid);
        Ok(())
    }

    /// `AT+QIACT?`; if the context is not active, `AT+QICSGP` and `AT+QIACT` (up to 150 s).
    /// When `AT+QIACT` fails, `AT+QIACT?` is asked again (the network may have activated
    /// the context meanwhile: the EG800K quirk of quectel-at.md §3), and otherwise
    /// `AT+QIGETERROR` gives the detail.
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
        let cid = data.context_id;
        if active_ip(client, cid, info).await? {
            progress(BringUpEvent::DataAlreadyActive);
            return Ok(());
        }
        client
            .send(&ConfigureContext {
                cid,
                pdp_type: match data.ip {
                    IpVersion::V4 => PdpType::Ipv4,
                    IpVersion::V6 => PdpType::Ipv6,
                    IpVersion::V4V6 => PdpType::Ipv4v6,
                },
                apn: data.apn,
                user: data.user,
                password: data.password,
                auth: match data.auth {
                    Auth::None => AuthMethod::None,
                    Auth::Pap => AuthMethod::Pap,
                    Auth::Chap => AuthMethod::Chap,
                    Auth::PapOrChap => AuthMethod::PapOrChap,
                },
            })
            .await
            .map_err(|e| BringUpError::modem(stage, e))?;
        if let Err(error) = client.send(&ActivateContext { cid }).await {
            // The network may have activated the context meanwhile.
            let refused = matches!(error, ClientError::Rejected(_));
            if refused && active_ip(client, cid, info).await? {
                progress(BringUpEvent::DataAlreadyActive);
                return Ok(());
            }
            let detail = match client.send(&LastError).await {
                Ok(e) if e.code != 0 => Some(e.code),
                _ => None,
            };
            return Err(BringUpError {
                stage,
                failure: BringUpFailure::Data { error, detail },
            });
        }
        active_ip(client, cid, info).await?;
        progress(BringUpEvent::DataActivated);
        Ok(())
    }
}

/// Whether context `cid` is active (`AT+QIACT?`); fills [`ModemInfo::ip`] if it is. A
/// refused query counts as "not known to be active" (activation follows, and says more).
async fn active_ip<T, C, H>(
    client: &mut Client<'_, T, C, H>,
    cid: u8,
    info: &mut ModemInfo,
) -> Result<bool, BringUpError<T::Error>>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    let list = match client.send(&ActiveContexts).await {
        Ok(list) => list,
        Err(ClientError::Rejected(_)) => return Ok(false),
        Err(e) => return Err(BringUpError::modem(BringUpStage::Data, e)),
    };
    match list.get(cid).filter(|c| c.state.is_active()) {
        Some(ctx) => {
            set_truncated(&mut info.ip, ctx.ip.unwrap_or(""));
            Ok(true)
        }
        None => Ok(false),
    }
}
