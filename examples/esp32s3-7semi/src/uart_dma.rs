//! The modem's UART received by DMA (UHCI + GDMA) into a ring in internal RAM, for
//! [`UpdateConfig::rx_dma`](cellular_ota::update::UpdateConfig::rx_dma). Cargo feature
//! `uart-dma`.
//!
//! **Untested on hardware.** This compiles for the ESP32-C3 proxy in CI; it has never run on
//! an ESP32-S3 or an ESP32-C3. The README's "UART DMA" section says what is and is not
//! known.
//!
//! # Why
//!
//! esp-hal's interrupt-driven UART copies bytes out of the 128-byte hardware FIFO in an
//! interrupt handler. While esp-storage erases or writes flash, the CPU cannot run code from
//! flash and interrupts wait, so at 921 600 baud the FIFO overflows after 1.4 ms and bytes
//! are lost (this board has no RTS/CTS). The GDMA engine writes into internal RAM without
//! the CPU, so a DMA receive keeps filling its ring for the whole stall and the reader
//! catches up afterwards. That is the property `rx_dma` promises the update flow.
//!
//! # Design
//!
//! esp-hal 1.2 has the UHCI driver (`esp_hal::uart::uhci`, unstable) but no circular
//! receive buffer: its `DmaRxStreamBuf` re-links descriptors while the DMA runs, which
//! esp-hal itself reports as racy because the GDMA prefetches descriptors (esp-hal issue
//! #5623; a "true circular" buffer is requested in #6154). [`RxRing`] is therefore this
//! file's own [`DmaRxBuffer`]: a *fixed* circle of descriptors, each over one slice of the
//! ring, whose links never change while the DMA runs.
//!
//! - **Continuous receive.** [`RxRing::prepare`](DmaRxBuffer::prepare) links descriptor
//!   *n − 1* back to descriptor 0 and hands all of them to the DMA (owner bit = DMA). The
//!   DMA fills them in order, forever, and writes each one back (length, owner bit = CPU)
//!   when it is full or when the UHCI ends a packet: at [`DESCRIPTOR_SIZE`] bytes
//!   (`len_eof`) or after the line was idle for 256 bit times (`idle_eof`, the UART's reset
//!   value of `RX_IDLE_THRHD`), so a short reply such as `OK\r\n` becomes readable at once.
//! - **The reader tracks the DMA's write position** by descriptor owner bits: it copies out
//!   of the CPU-owned descriptors in ring order, and gives each one back to the DMA (owner
//!   bit = DMA, length 0) only after its last byte was copied.
//! - **Overruns are detected, never silent.** The channel runs with *check owner* on: when
//!   the DMA reaches a descriptor the reader has not given back (the ring is full), it stops
//!   with a descriptor error instead of overwriting unread bytes. Bytes then wait in the
//!   UART FIFO (128 bytes) and are lost when it overflows. The reader checks, before every
//!   read, the channel's raw `IN_DSCR_ERR` / `IN_DSCR_EMPTY` flags (the DMA stopped) and
//!   the UART's raw `RXFIFO_OVF` flag (bytes lost); either one makes the read return
//!   [`Error::Overrun`], and the receive is restarted with an empty ring and an emptied UART
//!   FIFO. A byte with a framing or parity error (which the UART drops: esp-hal's default
//!   `discard_erroneous_bytes`; raw `FRM_ERR` / `PARITY_ERR`) or the UHCI's `IN_ERR_EOF`
//!   gives [`Error::Line`] the same way. Every read checks the flags before it hands out
//!   bytes. When the DMA stopped, every byte in the ring arrived before the loss; the
//!   restart discards them anyway, so that the error marks where the stream breaks.
//! - **Cancel-safe.** A read copies and gives back descriptors in one synchronous step,
//!   then returns; its only `await` is a timer that runs while *no* byte has been taken.
//!   Dropping the future there (the crate's client races every read against a deadline)
//!   leaves every byte in the ring for the next read.
//! - **Polled, not interrupt-woken.** esp-hal's only way to await a UHCI receive
//!   (`UhciDmaRxTransfer::wait_for_done`) clears *all* the channel's interrupt flags when it
//!   completes, including the error flags above, so this driver does not use it: the async
//!   read checks the ring every 1 ms while bytes flow, backing off to 16 ms when the line is
//!   quiet. The ring holds hundreds of milliseconds of data, so the poll interval costs
//!   latency, never bytes.
//!
//! The ring's usable size is [`RING_SIZE`] less up to two descriptors (the one the DMA may
//! have prefetched, and the partly read one), less the unused tail of each descriptor that
//! an idle gap closed early. [`RING_SIZE`] explains the figure.
//!
//! # Transmit
//!
//! Writes go to the UART's TX FIFO through esp-hal's `UartTx` (the UHCI's TX DMA is not
//! used), as with the interrupt-driven UART.
//!
//! # Baud rate
//!
//! esp-hal 1.2 cannot change the baud rate of a UART the UHCI has split into halves, so
//! [`DmaUart::set_config`] / [`DmaUart::set_baudrate`] drop the drivers and build them
//! again over the same peripherals and pins (which the transport owns), discarding bytes
//! not yet read, as esp-hal's `Uart::apply_config` discards its FIFO.
//!
//! # Limits
//!
//! - Internal RAM only: the ring must not be in PSRAM (no cache maintenance is done).
//! - UART1, UHCI0 and GDMA channel 0 only: the flags above are read from those
//!   peripherals' registers directly, which esp-hal's UHCI driver does not expose.
//! - After an error the receive restarts with the ring and the UART FIFO emptied, but the
//!   UHCI may still hold a few bytes from before the gap, delivered first. Treat
//!   everything after an [`Error::Overrun`] or [`Error::Line`] as a new stream (the crate's
//!   update flow does: it reports the error and retries from the last durable sector).
//! - A flash stall longer than the ring's worth of bytes still loses data (a 64 KiB block
//!   erase can take up to 2 s): without RTS/CTS that is reported, not prevented.

use core::fmt;
use core::ptr::{self, NonNull};
use core::sync::atomic::{Ordering, fence};

use esp_hal::dma::aligned::DmaAlignedMut;
use esp_hal::dma::{BurstConfig, DmaDescriptor, DmaRxBuffer, Preparation};
use esp_hal::gpio::{AnyPin, Pin};
use esp_hal::peripherals::{DMA, DMA_CH0, UART1, UHCI0};
use esp_hal::uart::uhci::{self, Uhci, UhciDmaRxTransfer, UhciRx, UhciTx};
use esp_hal::uart::{Config as UartConfig, ConfigError as UartConfigError, TxError, Uart, UartTx};
use esp_hal::{Async, Blocking, DriverMode};

/// Bytes in the receive ring (internal RAM). 32 KiB.
///
/// It must hold what arrives while the CPU is stalled in flash: a 64 KiB block erase plus a
/// journal sector erase take about 195 ms typically, about 18 KB at 921 600 baud, so 24 KiB
/// or more; 32 KiB leaves room for the two descriptors the DMA may hold back and for
/// descriptors closed early by idle gaps. 32 KiB lasts about 340 ms at 921 600 baud and
/// 2.8 s at 115 200 baud. A worst-case block erase (up to 2 s) at 921 600 baud outlasts it:
/// then bytes are lost and reported ([`Error::Overrun`]).
pub const RING_SIZE: usize = 32 * 1024;

/// Bytes per DMA descriptor: each descriptor covers this much of the ring, and the UHCI ends
/// a packet (so the DMA hands the descriptor to the reader) every this many bytes. 64
/// descriptors of 512 bytes: 768 bytes of descriptors, a descriptor completed every 5.6 ms
/// at 921 600 baud.
pub const DESCRIPTOR_SIZE: usize = 512;

/// Shortest pause between two looks at the ring while a read waits.
const POLL_MIN: embassy_time::Duration = embassy_time::Duration::from_millis(1);
/// Longest pause, reached by doubling while nothing arrives.
const POLL_MAX: embassy_time::Duration = embassy_time::Duration::from_millis(16);

/// The ring of [`RING_SIZE`] bytes and its descriptors, in static internal RAM.
///
/// # Panics
///
/// On a second call (the storage exists once; esp-hal's macro panics rather than alias it).
pub fn ring() -> RxRing {
    let stream = esp_hal::dma_rx_stream_buffer!(RING_SIZE, DESCRIPTOR_SIZE);
    let (descriptors, buffer) = stream.split();
    RxRing::new(descriptors, buffer).expect("RING_SIZE / DESCRIPTOR_SIZE form a valid ring")
}

// ---------------------------------------------------------------------------------------------
// The ring (a DMA receive buffer)

/// Why a ring cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingError {
    /// Fewer than 3 descriptors: the DMA may hold two, the reader needs one more.
    TooFewDescriptors,
    /// The buffer is not split evenly into descriptors of a multiple of 4 bytes, at most
    /// 4092 bytes (the descriptor's 12-bit size, word-aligned).
    BadSplit,
}

/// A circular DMA receive buffer: `descriptors.len()` descriptors over equal slices of one
/// buffer, linked in a circle. See the [module docs](self).
///
/// Holds raw pointers (from the `'static` borrows it was built from) rather than
/// references, because the DMA writes the descriptors and the buffer behind the CPU's back.
#[derive(Debug)]
pub struct RxRing {
    descriptors: NonNull<DmaDescriptor>,
    count: usize,
    buffer: NonNull<u8>,
    chunk: usize,
}

// SAFETY: the ring owns its descriptors and buffer exclusively (it was built from `'static`
// mutable borrows that it consumed); moving it to another thread moves that ownership.
unsafe impl Send for RxRing {}

impl RxRing {
    /// A ring over `buffer`, split evenly between `descriptors`. Both must be in internal
    /// RAM (what esp-hal's `dma_*buffer!` macros allocate), not PSRAM.
    pub fn new(
        descriptors: DmaAlignedMut<'static, [DmaDescriptor]>,
        buffer: DmaAlignedMut<'static, [u8]>,
    ) -> Result<Self, RingError> {
        let descriptors = descriptors.into_inner();
        let buffer = buffer.into_inner();
        let count = descriptors.len();
        if count < 3 {
            return Err(RingError::TooFewDescriptors);
        }
        let chunk = buffer.len() / count;
        if chunk == 0 || chunk * count != buffer.len() || !chunk.is_multiple_of(4) || chunk > 4092 {
            return Err(RingError::BadSplit);
        }
        Ok(RxRing {
            descriptors: NonNull::from(descriptors).cast(),
            count,
            buffer: NonNull::from(buffer).cast(),
            chunk,
        })
    }

    /// Bytes per descriptor.
    pub fn descriptor_size(&self) -> usize {
        self.chunk
    }

    /// Total bytes.
    pub fn capacity(&self) -> usize {
        self.chunk * self.count
    }

    fn descriptor(&self, i: usize) -> *mut DmaDescriptor {
        debug_assert!(i < self.count);
        // SAFETY: `i < count`, inside the descriptor array.
        unsafe { self.descriptors.as_ptr().add(i) }
    }
}

// SAFETY: the descriptors and the buffer are `'static` and owned by the ring, so they stay
// valid for as long as any transfer uses them; the buffer of each descriptor lies inside the
// ring's buffer (`i * chunk .. (i + 1) * chunk`), and the links stay inside the descriptor
// array.
unsafe impl DmaRxBuffer for RxRing {
    type View = RingView;
    type Final = RxRing;

    fn prepare(&mut self) -> Preparation {
        // The channel is stopped here (esp-hal calls this before it resets and starts the
        // channel), so plain writes are fine; esp-hal fences before starting.
        for i in 0..self.count {
            let mut d = DmaDescriptor::EMPTY;
            d.set_size(self.chunk);
            d.reset_for_rx(); // owner DMA, length 0, no EOF
            // SAFETY: `i * chunk` is inside the buffer (see `new`).
            d.buffer = unsafe { self.buffer.as_ptr().add(i * self.chunk) };
            d.next = self.descriptor((i + 1) % self.count);
            // SAFETY: in bounds, and the DMA is not running.
            unsafe { ptr::write_volatile(self.descriptor(i), d) };
        }
        Preparation {
            start: self.descriptor(0),
            #[cfg(feature = "esp32s3")]
            accesses_psram: false,
            burst_transfer: BurstConfig::DEFAULT,
            // The DMA must stop at a descriptor the reader still owns rather than overwrite
            // unread bytes: that is what makes an overrun detectable.
            check_owner: Some(true),
            auto_write_back: true,
        }
    }

    fn into_view(self) -> RingView {
        RingView {
            ring: self,
            index: 0,
            offset: 0,
        }
    }

    fn from_view(view: RingView) -> RxRing {
        view.ring
    }
}

/// The reader's side of a running [`RxRing`]: where the next unread byte is.
#[derive(Debug)]
pub struct RingView {
    ring: RxRing,
    /// The descriptor holding the next unread byte (or the one the DMA fills next).
    index: usize,
    /// Bytes of it already read.
    offset: usize,
}

impl RingView {
    /// Whether the next descriptor has been written back by the DMA.
    fn ready(&self) -> bool {
        // SAFETY: in bounds; a volatile read because the DMA writes the flags.
        let flags =
            unsafe { ptr::read_volatile(&raw const (*self.ring.descriptor(self.index)).flags) };
        !flags.owner()
    }

    /// Copies what the DMA has written back into `out`, in ring order, and gives every
    /// descriptor read to its end back to the DMA. Never waits; returns the bytes copied.
    fn pop(&mut self, out: &mut [u8]) -> usize {
        let mut done = 0;
        // Each step either fills `out`, stops at a DMA-owned descriptor, or finishes one
        // descriptor; one lap is the most there can be.
        for _ in 0..=self.ring.count {
            if done == out.len() {
                break;
            }
            let d = self.ring.descriptor(self.index);
            // SAFETY: in bounds; volatile because the DMA writes the flags.
            let flags = unsafe { ptr::read_volatile(&raw const (*d).flags) };
            if flags.owner() {
                break; // still the DMA's: nothing more has arrived
            }
            // The DMA wrote the data before it wrote the descriptor back.
            fence(Ordering::Acquire);
            let len = usize::from(flags.length()).min(self.ring.chunk);
            let start = self.offset.min(len);
            let n = (len - start).min(out.len() - done);
            // SAFETY: `index * chunk + start + n <= (index + 1) * chunk`, inside the buffer,
            // which the DMA does not write while the descriptor is the CPU's; `out` is a
            // distinct slice.
            unsafe {
                ptr::copy_nonoverlapping(
                    self.ring
                        .buffer
                        .as_ptr()
                        .add(self.index * self.ring.chunk + start),
                    out.as_mut_ptr().add(done),
                    n,
                );
            }
            done += n;
            self.offset = start + n;
            if self.offset >= len {
                // Read to its end: give it back to the DMA, after the copy above.
                let mut back = flags;
                back.set_length(0);
                back.set_suc_eof(false);
                back.set_owner(true);
                fence(Ordering::Release);
                // SAFETY: in bounds; the DMA does not touch a descriptor the CPU owns.
                unsafe { ptr::write_volatile(&raw mut (*d).flags, back) };
                self.index = (self.index + 1) % self.ring.count;
                self.offset = 0;
            }
        }
        done
    }
}

// ---------------------------------------------------------------------------------------------
// Hardware flags esp-hal's UHCI driver does not expose. Only read, except that the UART's
// receive error flags are cleared, which nothing else reads while the UHCI owns the
// receiver (esp-hal's UART reads them only in its own read functions, unused here).

/// GDMA channel 0 stopped its receive: it met a descriptor the reader still owns
/// (`IN_DSCR_ERR`, check-owner) or ran out of descriptors (`IN_DSCR_EMPTY`). Raw flags stay
/// set until the next start (esp-hal clears them when it prepares a transfer); nothing
/// listens to them, so no interrupt handler clears them.
fn dma_stopped() -> bool {
    #[cfg(feature = "esp32c3")]
    let raw = DMA::regs().int_ch(0).raw().read();
    #[cfg(feature = "esp32s3")]
    let raw = DMA::regs().ch(0).in_int().raw().read();
    raw.in_dscr_err().bit_is_set() || raw.in_dscr_empty().bit_is_set()
}

/// The UHCI marked received data as damaged (`IN_ERR_EOF`: a parity or framing error).
fn dma_err_eof() -> bool {
    #[cfg(feature = "esp32c3")]
    let raw = DMA::regs().int_ch(0).raw().read();
    #[cfg(feature = "esp32s3")]
    let raw = DMA::regs().ch(0).in_int().raw().read();
    raw.in_err_eof().bit_is_set()
}

/// UART1's receive FIFO overflowed: a byte arrived when the FIFO was full, and was lost.
fn uart_overflowed() -> bool {
    UART1::regs().int_raw().read().rxfifo_ovf().bit_is_set()
}

/// UART1 received a byte with a framing or parity error, which it dropped (esp-hal's
/// default `discard_erroneous_bytes`).
fn uart_line_error() -> bool {
    let raw = UART1::regs().int_raw().read();
    raw.frm_err().bit_is_set() || raw.parity_err().bit_is_set()
}

/// Clears the UART1 flags above, before a receive starts.
fn clear_uart_flags() {
    UART1::regs().int_clr().write(|w| {
        w.rxfifo_ovf().clear_bit_by_one();
        w.frm_err().clear_bit_by_one();
        w.parity_err().clear_bit_by_one()
    });
}

// ---------------------------------------------------------------------------------------------
// The transport

/// A receive or transmit error of [`DmaUart`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Error {
    /// Received bytes were lost: the ring was full (the reader fell behind, or the CPU was
    /// stalled longer than the ring lasts) and the UART FIFO overflowed, or the DMA stopped.
    /// The receive was restarted with an empty ring; see the [module docs](self) for where
    /// the gap is.
    Overrun,
    /// A byte arrived damaged (framing or parity error; the UART drops such bytes). The
    /// receive was restarted with an empty ring.
    Line,
    /// The drivers could not be built or the receive DMA not started again; the next read
    /// tries again.
    Setup(SetupError),
    /// The drivers are not there (a previous [`DmaUart::set_config`] failed twice); the
    /// next read tries to build them again.
    Down,
    /// The UART transmitter failed (esp-hal 1.2 defines no such error; kept for its type).
    Tx(TxError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Overrun => f.write_str("UART DMA overrun: received bytes were lost"),
            Error::Line => f.write_str("UART: damaged byte (framing or parity error)"),
            Error::Setup(e) => write!(f, "{e}"),
            Error::Down => f.write_str("UART DMA drivers are down"),
            Error::Tx(e) => write!(f, "UART transmit: {e}"),
        }
    }
}

impl core::error::Error for Error {}

impl embedded_io::Error for Error {
    fn kind(&self) -> embedded_io::ErrorKind {
        // As esp-hal's own UART errors (`RxError::FifoOverflowed` included).
        embedded_io::ErrorKind::Other
    }
}

/// Why the UART, UHCI or DMA could not be set up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SetupError {
    /// The UART refused the configuration (a baud rate it cannot make).
    Uart(UartConfigError),
    /// The UHCI refused the packet length (the descriptor size, at most 4095).
    Uhci(uhci::ConfigError),
    /// The receive DMA did not start.
    Start(uhci::Error),
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::Uart(e) => write!(f, "UART configuration: {e}"),
            SetupError::Uhci(e) => write!(f, "UHCI configuration: {e}"),
            SetupError::Start(e) => write!(f, "UART DMA did not start: {e:?}"),
        }
    }
}

impl core::error::Error for SetupError {}

/// What the transport holds: the UHCI's two halves with the receive running or not, or
/// only the ring (the drivers could not be built).
enum State<'d, Dm: DriverMode> {
    Running {
        transfer: UhciDmaRxTransfer<'d, Dm, RxRing>,
        tx: UhciTx<'d, Dm>,
    },
    /// The receive DMA did not start; the next read tries again.
    Stopped {
        rx: UhciRx<'d, Dm>,
        ring: RxRing,
        tx: UhciTx<'d, Dm>,
    },
    /// The UART or UHCI refused the configuration; the next read builds them again.
    Down { ring: RxRing },
    /// Only while [`DmaUart`] takes its parts out and puts them back.
    Gone,
}

/// The driver modes [`DmaUart`] comes in: [`Async`] (`embedded_io_async` and
/// `embedded_io` traits) and [`Blocking`] (`embedded_io` traits only).
pub trait Mode: DriverMode + Sized {
    /// `uhci` in this mode.
    fn from_blocking<'d>(uhci: Uhci<'d, Blocking>) -> Uhci<'d, Self>;
}

impl Mode for Blocking {
    fn from_blocking<'d>(uhci: Uhci<'d, Blocking>) -> Uhci<'d, Blocking> {
        uhci
    }
}

impl Mode for Async {
    fn from_blocking<'d>(uhci: Uhci<'d, Blocking>) -> Uhci<'d, Async> {
        uhci.into_async()
    }
}

/// UART1 with its receiver on DMA: `embedded_io_async::{Read, Write}` (in [`Async`] mode)
/// and `embedded_io::{Read, ReadReady, Write}`, for the crate's AT clients. See the
/// [module docs](self).
pub struct DmaUart<'d, Dm: Mode> {
    state: State<'d, Dm>,
    /// The UART settings in force (kept to build the drivers again).
    config: UartConfig,
    /// RX and TX GPIO numbers (likewise).
    pins: (u8, u8),
    /// How long the next wait for bytes sleeps.
    poll: embassy_time::Duration,
}

impl<Dm: Mode> fmt::Debug for DmaUart<'_, Dm> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Running { .. } => "running",
            State::Stopped { .. } => "stopped",
            State::Down { .. } => "down",
            State::Gone => "gone",
        };
        f.debug_struct("DmaUart")
            .field("state", &state)
            .field("baudrate", &self.config.baudrate())
            .finish()
    }
}

impl<'d, Dm: Mode> DmaUart<'d, Dm> {
    /// Takes over UART1 with `config` on the `rx` and `tx` pins, attaches UHCI0 and GDMA
    /// channel 0 to it, and starts receiving into `ring`.
    pub fn new(
        uart: UART1<'d>,
        config: UartConfig,
        rx: AnyPin<'d>,
        tx: AnyPin<'d>,
        uhci: UHCI0<'static>,
        channel: DMA_CH0<'d>,
        ring: RxRing,
    ) -> Result<Self, SetupError> {
        let pins = (rx.number(), tx.number());
        let state = build(uart, &config, rx, tx, uhci, channel, ring).map_err(|(e, _)| e)?;
        Ok(DmaUart {
            state,
            config,
            pins,
            poll: POLL_MIN,
        })
    }

    /// The UART settings in force.
    pub fn config(&self) -> UartConfig {
        self.config
    }

    /// Changes the UART settings (the baud rate, for negotiation): waits until the
    /// transmitter is done, then builds the UART, UHCI and DMA drivers again with `config`
    /// and restarts the receive. Bytes received and not yet read are discarded (as esp-hal's
    /// `Uart::apply_config` discards its FIFO), and the TX line may glitch once while the
    /// drivers change, which the modem may see as a garbled byte.
    ///
    /// esp-hal 1.2 cannot change the baud rate of a UART whose halves the UHCI has split,
    /// hence the rebuild. If `config` is refused, the previous settings are restored and the
    /// error returned.
    pub fn set_config(&mut self, config: UartConfig) -> Result<(), SetupError> {
        if let State::Running { tx, .. } | State::Stopped { tx, .. } = &mut self.state {
            let _ = embedded_io::Write::flush(&mut tx.uart_tx);
        }
        let ring = self.tear_down();
        let (e, ring) = match self.rebuild(&config, ring) {
            Ok(()) => {
                self.config = config;
                return Ok(());
            }
            Err(failed) => failed,
        };
        let previous = self.config;
        if let Err((_, ring)) = self.rebuild(&previous, ring) {
            self.state = State::Down { ring };
        }
        Err(e)
    }

    /// [`Self::set_config`] with only the baud rate changed.
    pub fn set_baudrate(&mut self, baudrate: u32) -> Result<(), SetupError> {
        self.set_config(self.config.with_baudrate(baudrate))
    }

    /// Stops the receive and drops the drivers; returns the ring.
    fn tear_down(&mut self) -> RxRing {
        match core::mem::replace(&mut self.state, State::Gone) {
            State::Running { transfer, tx } => {
                let (rx, ring) = transfer.cancel();
                drop(rx);
                drop(tx);
                ring
            }
            State::Stopped { rx, ring, tx } => {
                drop(rx);
                drop(tx);
                ring
            }
            State::Down { ring } => ring,
            // Only seen if a previous call panicked half-way, after which nothing runs.
            State::Gone => unreachable!("UART DMA ring lost"),
        }
    }

    /// Builds the drivers again over the peripherals and pins this transport owns.
    fn rebuild(&mut self, config: &UartConfig, ring: RxRing) -> Result<(), (SetupError, RxRing)> {
        // SAFETY: this transport took UART1, UHCI0, DMA channel 0 and the two pins when it was
        // made, and every driver that used them has been dropped (`tear_down`, or a failed
        // `build`), so these are again the only handles.
        let (uart, rx, tx, uhci, channel) = unsafe {
            (
                UART1::steal(),
                AnyPin::steal(self.pins.0),
                AnyPin::steal(self.pins.1),
                UHCI0::steal(),
                DMA_CH0::steal(),
            )
        };
        self.state = build(uart, config, rx, tx, uhci, channel, ring)?;
        self.poll = POLL_MIN;
        Ok(())
    }

    /// Stops the receive (if it runs) and starts it again with an empty ring.
    fn restart(&mut self) -> Result<(), Error> {
        let (rx, ring, tx) = match core::mem::replace(&mut self.state, State::Gone) {
            State::Running { transfer, tx } => {
                let (rx, ring) = transfer.cancel();
                (rx, ring, tx)
            }
            State::Stopped { rx, ring, tx } => (rx, ring, tx),
            State::Down { ring } => {
                let config = self.config;
                return match self.rebuild(&config, ring) {
                    Ok(()) => Ok(()),
                    Err((e, ring)) => {
                        self.state = State::Down { ring };
                        Err(Error::Setup(e))
                    }
                };
            }
            State::Gone => unreachable!("UART DMA ring lost"),
        };
        // Empty the UART's FIFO too (esp-hal resets it when it applies a receive
        // configuration): what waits there is the old stream's, cut off by the loss.
        let mut rx = rx;
        let _ = rx.uart_rx.apply_config(&self.config);
        clear_uart_flags();
        match rx.read(ring) {
            Ok(transfer) => {
                self.state = State::Running { transfer, tx };
                Ok(())
            }
            Err((e, rx, ring)) => {
                self.state = State::Stopped { rx, ring, tx };
                Err(Error::Setup(SetupError::Start(e)))
            }
        }
    }

    /// One non-waiting read: an error the hardware flagged (after restarting the receive),
    /// or the bytes that are there (0 if none).
    fn try_read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        match &mut self.state {
            State::Running { transfer, .. } => {
                if dma_stopped() || uart_overflowed() {
                    self.restart()?;
                    return Err(Error::Overrun);
                }
                if dma_err_eof() || uart_line_error() {
                    self.restart()?;
                    return Err(Error::Line);
                }
                Ok(transfer.pop(buf))
            }
            State::Stopped { .. } | State::Down { .. } | State::Gone => self.restart().map(|()| 0),
        }
    }

    /// Whether a read would return at once (bytes, or an error to report).
    fn ready(&self) -> bool {
        match &self.state {
            State::Running { transfer, .. } => {
                transfer.ready()
                    || dma_stopped()
                    || uart_overflowed()
                    || dma_err_eof()
                    || uart_line_error()
            }
            State::Stopped { .. } | State::Down { .. } | State::Gone => true,
        }
    }

    fn uart_tx(&mut self) -> Result<&mut UartTx<'d, Dm>, Error> {
        match &mut self.state {
            State::Running { tx, .. } | State::Stopped { tx, .. } => Ok(&mut tx.uart_tx),
            State::Down { .. } | State::Gone => Err(Error::Down),
        }
    }
}

/// Builds UART1 with `config` on the pins, the UHCI over it with packets of the ring's
/// descriptor size (ended early when the line goes idle), and starts the receive.
fn build<'d, Dm: Mode>(
    uart: UART1<'d>,
    config: &UartConfig,
    rx: AnyPin<'d>,
    tx: AnyPin<'d>,
    uhci: UHCI0<'static>,
    channel: DMA_CH0<'d>,
    ring: RxRing,
) -> Result<State<'d, Dm>, (SetupError, RxRing)> {
    let uart = match Uart::new(uart, *config) {
        Ok(uart) => uart.with_rx(rx).with_tx(tx),
        Err(e) => return Err((SetupError::Uart(e), ring)),
    };
    let mut u = Uhci::new(uart, uhci, channel);
    // Checked by `RxRing::new`: at most 4092.
    let chunk = ring.descriptor_size() as u16;
    if let Err(e) = u.apply_rx_config(&uhci::RxConfig::default().with_chunk_limit(chunk)) {
        return Err((SetupError::Uhci(e), ring));
    }
    // esp-hal names the receive-side EOF conditions `TxConfig` (UHCI_CONF0's
    // UART_IDLE_EOF_EN and LEN_EOF_EN; esp-hal's own HIL test turns both on).
    let eof = uhci::TxConfig::default()
        .with_idle_eof(true)
        .with_len_eof(true);
    if let Err(e) = u.apply_tx_config(&eof) {
        return Err((SetupError::Uhci(e), ring));
    }
    let (rx, tx) = Dm::from_blocking(u).split();
    clear_uart_flags();
    match rx.read(ring) {
        Ok(transfer) => Ok(State::Running { transfer, tx }),
        Err((e, _, ring)) => Err((SetupError::Start(e), ring)),
    }
}

impl<Dm: Mode> embedded_io::ErrorType for DmaUart<'_, Dm> {
    type Error = Error;
}

impl<Dm: Mode> embedded_io::Read for DmaUart<'_, Dm> {
    /// Spins until at least one byte (or an error) is there.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let n = self.try_read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            core::hint::spin_loop();
        }
    }
}

impl<Dm: Mode> embedded_io::ReadReady for DmaUart<'_, Dm> {
    fn read_ready(&mut self) -> Result<bool, Error> {
        Ok(self.ready())
    }
}

impl<Dm: Mode> embedded_io::Write for DmaUart<'_, Dm> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Error> {
        embedded_io::Write::write(self.uart_tx()?, buf).map_err(Error::Tx)
    }

    fn flush(&mut self) -> Result<(), Error> {
        embedded_io::Write::flush(self.uart_tx()?).map_err(Error::Tx)
    }
}

impl embedded_io_async::Read for DmaUart<'_, Async> {
    /// Waits until at least one byte (or an error) is there.
    ///
    /// Cancel-safe: bytes are copied and their descriptors given back in one synchronous
    /// step right before returning; the only `await` is a timer while nothing was taken.
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let n = self.try_read(buf)?;
            if n > 0 {
                self.poll = POLL_MIN;
                return Ok(n);
            }
            embassy_time::Timer::after(self.poll).await;
            self.poll = (self.poll * 2).min(POLL_MAX);
        }
    }
}

impl embedded_io_async::Write for DmaUart<'_, Async> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Error> {
        embedded_io_async::Write::write(self.uart_tx()?, buf)
            .await
            .map_err(Error::Tx)
    }

    async fn flush(&mut self) -> Result<(), Error> {
        embedded_io_async::Write::flush(self.uart_tx()?)
            .await
            .map_err(Error::Tx)
    }
}
