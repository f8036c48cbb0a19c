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
use cellular_ota::ota::esp_idf::sink::{AppSlot, AsyncEspIdfSink, EspIdfSink};
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
