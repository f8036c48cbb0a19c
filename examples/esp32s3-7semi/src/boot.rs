//! After booting a new image: a self-test, then confirm the image or roll back.
//!
//! The OTA sink selects a new image in otadata with state NEW (rollback bootloader,
//! [`config::ROLLBACK_BOOTLOADER`]) or UNDEFINED (stock bootloader). At its first boot a
//! rollback bootloader turns NEW into PENDING_VERIFY and, if the app does not confirm
//! itself before the next reset, into ABORTED, and boots the previous image (reference
//! `esp-idf-ota.md` §3.5).
//!
//! The self-test is the modem bring-up itself: the modem answers `AT` and the network
//! registers ([`crate::modem::bring_up`]). Its result decides:
//!
//! | running image's state | self-test passes | self-test fails |
//! |---|---|---|
//! | PENDING_VERIFY, NEW, UNDEFINED (a fresh OTA image) | mark VALID | mark INVALID, reset into the previous image |
//! | VALID, or no otadata entry (flashed over USB) | nothing to do | nothing to do (retry later) |
//!
//! Marking INVALID works with the stock bootloader too: it skips INVALID entries whatever
//! its configuration. What only a rollback bootloader adds is the case of an image that
//! hangs or crashes before its self-test.
//!
//! A failing self-test can also mean no coverage rather than bad firmware; widen
//! [`config::REGISTRATION_TIMEOUT`] if devices sit in weak coverage.

use core::fmt::Debug;

use cellular_ota::ota::esp_idf::OtaImageState;
use cellular_ota::ota::esp_idf::sink::{
    AppSlot, AsyncEspIdfSink, EspIdfSink, IdleErase, SinkError,
};
use esp_println::println;

use crate::config;

/// The boot-side half of the two ESP-IDF sinks, seen through one async interface so that
/// [`settle`] is written once for both binaries.
#[allow(async_fn_in_trait)]
pub trait BootSlots {
    /// The sink's error.
    type Error: Debug + core::fmt::Display;
    /// otadata's state for the running app (`None`: no entry selects it).
    async fn state(&mut self) -> Result<Option<OtaImageState>, Self::Error>;
    /// The running app.
    async fn running(&mut self) -> Result<AppSlot, Self::Error>;
    /// Confirms the running app.
    async fn mark_valid(&mut self) -> Result<(), Self::Error>;
    /// Rejects the running app; returns the app that boots after the reset.
    async fn mark_invalid_and_rollback(&mut self) -> Result<AppSlot, Self::Error>;
    /// Erases the next step of the slot the next update writes.
    async fn erase_idle_step(&mut self) -> Result<IdleErase, Self::Error>;
    /// The typed reason [`Self::erase_idle_step`] refused, if it did.
    fn refusal(e: &Self::Error) -> Option<IdleRefusal>;
}

/// Why the next slot is not erased in idle time (none of these is a fault).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdleRefusal {
    /// The slot holds a download that the next attempt resumes; erasing would throw it away.
    DownloadPending,
    /// The running image is not confirmed yet: the slot is its rollback target.
    NotConfirmed,
    /// otadata selects another app (an update was installed and waits for the reset).
    NotSelected,
}

fn refusal_of<E>(e: &SinkError<E>) -> Option<IdleRefusal> {
    match e {
        SinkError::DownloadPending { .. } => Some(IdleRefusal::DownloadPending),
        SinkError::NotConfirmed { .. } => Some(IdleRefusal::NotConfirmed),
        SinkError::RunningNotSelected { .. } => Some(IdleRefusal::NotSelected),
        _ => None,
    }
}

impl<F: embedded_storage::nor_flash::NorFlash> BootSlots for EspIdfSink<F> {
    type Error = cellular_ota::ota::esp_idf::sink::SinkError<F::Error>;
    async fn state(&mut self) -> Result<Option<OtaImageState>, Self::Error> {
        self.current_state()
    }
    async fn running(&mut self) -> Result<AppSlot, Self::Error> {
        self.running_slot()
    }
    async fn mark_valid(&mut self) -> Result<(), Self::Error> {
        EspIdfSink::mark_valid(self)
    }
    async fn mark_invalid_and_rollback(&mut self) -> Result<AppSlot, Self::Error> {
        EspIdfSink::mark_invalid_and_rollback(self)
    }
    async fn erase_idle_step(&mut self) -> Result<IdleErase, Self::Error> {
        EspIdfSink::erase_idle_step(self)
    }
    fn refusal(e: &Self::Error) -> Option<IdleRefusal> {
        refusal_of(e)
    }
}

impl<F: embedded_storage_async::nor_flash::NorFlash> BootSlots for AsyncEspIdfSink<F> {
    type Error = cellular_ota::ota::esp_idf::sink::SinkError<F::Error>;
    async fn state(&mut self) -> Result<Option<OtaImageState>, Self::Error> {
        self.current_state().await
    }
    async fn running(&mut self) -> Result<AppSlot, Self::Error> {
        self.running_slot().await
    }
    async fn mark_valid(&mut self) -> Result<(), Self::Error> {
        AsyncEspIdfSink::mark_valid(self).await
    }
    async fn mark_invalid_and_rollback(&mut self) -> Result<AppSlot, Self::Error> {
        AsyncEspIdfSink::mark_invalid_and_rollback(self).await
    }
    async fn erase_idle_step(&mut self) -> Result<IdleErase, Self::Error> {
        AsyncEspIdfSink::erase_idle_step(self).await
    }
    fn refusal(e: &Self::Error) -> Option<IdleRefusal> {
        refusal_of(e)
    }
}

/// Whether the running image still has to prove itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trial {
    /// A fresh OTA image (PENDING_VERIFY, NEW or UNDEFINED): run the self-test and settle.
    Pending,
    /// Confirmed already, or flashed over USB: nothing to settle.
    Settled,
}

/// Reads and prints the running image's slot and state, and says whether it is on trial.
pub async fn trial<S: BootSlots>(slots: &mut S) -> Trial {
    let running = slots.running().await;
    let state = slots.state().await;
    println!("running {running:?}, otadata state {state:?}");
    match state {
        Ok(Some(OtaImageState::PendingVerify)) => Trial::Pending,
        Ok(Some(OtaImageState::New)) => {
            if config::ROLLBACK_BOOTLOADER {
                println!(
                    "note: state NEW at run time means the bootloader has no rollback, but \
                     ROLLBACK_BOOTLOADER is true; see the README"
                );
            }
            Trial::Pending
        }
        // Written by an update without rollback: confirmed once, then VALID.
        Ok(Some(OtaImageState::Undefined)) => Trial::Pending,
        Ok(_) => Trial::Settled,
        Err(e) => {
            println!("cannot read otadata: {e}");
            Trial::Settled
        }
    }
}

/// What [`settle`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    /// Nothing to do, or the image is now VALID.
    Keep,
    /// The image was marked INVALID: reset now to boot `fallback`.
    RollBack {
        /// The app the bootloader boots next.
        fallback: AppSlot,
    },
}

/// Confirms the running image if `self_test_passed`, else marks it invalid (for an image on
/// [`Trial::Pending`]).
pub async fn settle<S: BootSlots>(slots: &mut S, trial: Trial, self_test_passed: bool) -> Settled {
    if trial == Trial::Settled {
        return Settled::Keep;
    }
    if self_test_passed {
        match slots.mark_valid().await {
            Ok(()) => println!("self-test passed: image marked VALID"),
            Err(e) => println!("self-test passed, but marking VALID failed: {e}"),
        }
        return Settled::Keep;
    }
    match slots.mark_invalid_and_rollback().await {
        Ok(fallback) => {
            println!("SELF-TEST FAILED: image marked INVALID, rolling back to {fallback:?}");
            Settled::RollBack { fallback }
        }
        Err(e) => {
            println!("self-test failed, and marking INVALID failed too: {e}");
            Settled::Keep
        }
    }
}

/// Erases the slot the next update writes, one step (a 64 KiB block, about 150 ms on the
/// board's flash) at a time, so that the next download only programs pages: without flow
/// control on the modem's UART the erase would otherwise run between the request and the
/// body (24 block erases of about 150 ms each for 1.5 MiB, about 3.6 s) or stall the receive.
///
/// Call it in idle time, once the running image is confirmed. Each step is recorded in the
/// slot's journal, so a reset or a power cut costs at most the step in progress and the
/// next call goes on from there; a slot already erased costs only reading the journal.
/// While a step erases, the CPU stalls and the UART's hardware FIFO (128 bytes) holds what
/// the modem sends; between two updates that is at most a URC.
///
/// Refusals ([`IdleRefusal`]) and errors are printed, not returned: the update itself
/// erases whatever is left.
pub async fn erase_next_slot<S: BootSlots>(slots: &mut S) {
    let mut steps = 0u32;
    loop {
        match slots.erase_idle_step().await {
            Ok(IdleErase::Progress { total, .. }) => {
                if steps == 0 {
                    println!("erasing the next OTA slot while idle ({total} bytes)");
                }
                steps += 1;
            }
            Ok(IdleErase::Done) => {
                if steps > 0 {
                    println!("next OTA slot erased");
                }
                return;
            }
            Err(e) => {
                match S::refusal(&e) {
                    Some(IdleRefusal::DownloadPending) => {
                        println!("next OTA slot holds a download to resume: not erased")
                    }
                    Some(IdleRefusal::NotConfirmed) => {
                        println!("running image not confirmed: next OTA slot not erased")
                    }
                    Some(IdleRefusal::NotSelected) => {
                        println!("an installed update waits for the reset: slot not erased")
                    }
                    None => println!("erasing the next OTA slot failed: {e}"),
                }
                return;
            }
        }
    }
}
