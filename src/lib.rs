#![no_std]
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![doc = include_str!("../README.md")]

#[cfg(feature = "std")]
extern crate std;

#[macro_use]
mod fmt;

pub mod at;
pub mod baud;
pub mod bring_up;
pub mod client;
mod code_enum;
#[cfg(feature = "delta")]
pub mod delta;
pub mod log_decoder;
pub mod ota;
pub mod quectel;
pub mod retry;
pub mod simcom;
pub mod transcript;
pub mod update;

pub use client::blocking::block_on;
