//! What the update flow needs from a modem: HTTP requests, the body through a zero-copy
//! reader, and clean-up; ranged requests and the module's file system as optional
//! capabilities.
//!
//! The flow ([`update_with`](super::update_with)) speaks only this trait, so one flow serves
//! every modem family. [`QuectelHttp`](crate::quectel::QuectelHttp) implements it over the
//! crate's client for Quectel modules; [`update`](super::update) is the flow over it.
//!
//! An implementation keeps its own per-update state (a request-header mode it switched on, a
//! module file it opened) and undoes it in [`HttpModem::close`], which the flow calls on
//! every exit. The flow assigns the [`Stage`](super::Stage) of a failure; an implementation
//! says only what failed ([`ModemFailure`]).

use core::time::Duration;

use super::{Capability, Failure, Method, UpdateConfig};
use crate::client::Error as ClientError;
use crate::quectel::error::HttpError;
pub use crate::quectel::urc::HttpStatus;
use crate::retry::Retry;

/// A code the modem's HTTP client reported in place of a server answer, from any vendor's
/// table (SIMCom's 6xx statuses and 7xx error codes in `+HTTPACTION:` / `+SHREQ:`); the
/// implementation of [`HttpModem`] that decoded it gives its meaning and whether trying
/// again can help. Quectel's codes keep their own typed variant ([`ModemFailure::Http`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HttpClientError {
    /// The numeric code as the module printed it.
    pub code: u16,
    /// One line of plain English.
    pub meaning: &'static str,
    /// Whether the same request can succeed later.
    pub retry: Retry,
}

impl core::fmt::Display for HttpClientError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}: {}", self.code, self.meaning)
    }
}

/// What a modem operation of the update can fail with. Converted into the update's
/// [`Failure`] (same variants, same meaning).
#[derive(Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ModemFailure<E> {
    /// The modem link: transport error, timeout, refused command, bad parameter.
    Modem(ClientError<E>),
    /// The modem's HTTP layer reported an error.
    Http(HttpError),
    /// The modem's HTTP client reported a code of another vendor's table.
    HttpClient(HttpClientError),
    /// A length did not match.
    Length {
        /// Expected bytes.
        expected: u32,
        /// Bytes announced or received.
        got: u32,
    },
    /// The modem rebooted in the middle of the update.
    ModemRebooted,
    /// The network deactivated the PDP context.
    LinkLost,
    /// The module's file system has too little space.
    NoSpace {
        /// Free bytes.
        free: u64,
        /// Bytes needed.
        needed: u32,
    },
    /// The body ended early inside the expected length: bytes were lost between modem and
    /// MCU.
    BytesLost {
        /// Bytes missing, at least.
        at_least: u32,
    },
    /// An uploaded file's size or checksum did not match.
    Checksum,
    /// This modem (or its implementation of [`HttpModem`]) lacks the capability.
    Unsupported(Capability),
}

impl<E> From<ClientError<E>> for ModemFailure<E> {
    fn from(e: ClientError<E>) -> Self {
        match e {
            // The payload reader recognised a modem restart (its `RDY` after a silence).
            ClientError::ModemRebooted => ModemFailure::ModemRebooted,
            e => ModemFailure::Modem(e),
        }
    }
}

impl<E: embedded_io::Error> From<ModemFailure<E>> for Failure {
    fn from(f: ModemFailure<E>) -> Self {
        match f {
            ModemFailure::Modem(ClientError::ModemRebooted) => Failure::ModemRebooted,
            ModemFailure::Modem(e) => Failure::Modem(e.map_io(|e| e.kind())),
            ModemFailure::Http(e) => Failure::Http(e),
            ModemFailure::HttpClient(e) => Failure::HttpClient(e),
            ModemFailure::Length { expected, got } => Failure::Length { expected, got },
            ModemFailure::ModemRebooted => Failure::ModemRebooted,
            ModemFailure::LinkLost => Failure::LinkLost,
            ModemFailure::NoSpace { free, needed } => Failure::NoSpace { free, needed },
            ModemFailure::BytesLost { at_least } => Failure::BytesLost { at_least },
            ModemFailure::Checksum => Failure::Checksum,
            ModemFailure::Unsupported(c) => Failure::Unsupported(c),
        }
    }
}

/// A response body being read: the zero-copy view of the modem's receive buffer.
#[allow(async_fn_in_trait)]
pub trait HttpBody {
    /// The transport's error.
    type Error: embedded_io::Error;

    /// The next body bytes, straight from the receive buffer; empty at the end of the body.
    async fn fill_buf(&mut self) -> Result<&[u8], ModemFailure<Self::Error>>;

    /// Marks `n` bytes of the last [`fill_buf`](Self::fill_buf) as used.
    fn consume(&mut self, n: usize);

    /// Waits for the modem's end of the body (discarding unread bytes) and checks its result;
    /// returns the body's length.
    async fn finish(self) -> Result<u64, ModemFailure<Self::Error>>;
}

/// The modem side of an update. Every method has a deadline of its own; none may wait
/// without one.
///
/// Required: plain GETs, the response's status, the body, clean-up. Optional, with
/// defaults that say the capability is missing: ranged requests (without them
/// [`Strategy::Auto`](super::Strategy::Auto) resumes by reading the body again and skipping
/// what is durable) and the module's file system ([`Strategy::ModemFile`](super::Strategy::ModemFile)).
#[allow(async_fn_in_trait)]
pub trait HttpModem {
    /// The transport's error (the update reports its [`kind`](embedded_io::Error::kind)).
    type Error: embedded_io::Error;
    /// A body being read.
    type Body<'a>: HttpBody<Error = Self::Error>
    where
        Self: 'a;

    /// Ends any session left from before (an MCU reset) and configures HTTP(S) for
    /// `config` (TLS where a URL is `https://`).
    async fn open(&mut self, config: &UpdateConfig<'_>) -> Result<(), ModemFailure<Self::Error>>;

    /// Sends a GET for `url`; returns how long its answer ([`response`](Self::response))
    /// may take. The modem fetches while the caller does other work (erases flash).
    async fn get(&mut self, url: &str) -> Result<Duration, ModemFailure<Self::Error>>;

    /// Waits up to `within` for the answer to the last request: the server's status and
    /// the body's announced length.
    async fn response(&mut self, within: Duration)
    -> Result<HttpStatus, ModemFailure<Self::Error>>;

    /// Starts reading the last answer's body: exactly `len` bytes, or up to its end when
    /// `None`.
    async fn body(&mut self, len: Option<u32>)
    -> Result<Self::Body<'_>, ModemFailure<Self::Error>>;

    /// Leaves the modem ready for the next command: undoes what this update switched on,
    /// closes what it opened, ends the HTTP session. Errors are ignored (this runs on every
    /// exit, also after the link failed). `failed`: the update is ending with an error, so
    /// a payload may be half-read.
    async fn close(&mut self, failed: bool);

    /// The largest body this modem can take from one response, if it has a limit (module
    /// storage or a protocol-stack buffer the whole body must fit in).
    /// [`Strategy::Auto`](super::Strategy::Auto) fetches a larger image in ranges of at
    /// most this size, and ranges are never longer.
    fn max_body(&self) -> Option<u32> {
        None
    }

    /// The ranged method this modem offers, if any ([`Method::RangedGetex`] or
    /// [`Method::RangedHeader`]); may ask the modem.
    async fn ranged_method(&mut self) -> Result<Option<Method>, ModemFailure<Self::Error>> {
        Ok(None)
    }

    /// How many bytes of scratch a ranged request with `method` needs
    /// ([`get_range`](Self::get_range)); the flow takes them from the chunk buffer.
    fn range_scratch(&self, method: Method) -> usize {
        let _ = method;
        0
    }

    /// Prepares ranged requests for `url` with `method` (what it switches on,
    /// [`close`](Self::close) switches off).
    async fn start_ranges(
        &mut self,
        url: &str,
        method: Method,
    ) -> Result<(), ModemFailure<Self::Error>> {
        let _ = (url, method);
        Err(ModemFailure::Unsupported(Capability::RangedRequests))
    }

    /// Requests `len` bytes of `url` at `start`; returns how long the answer may take.
    /// `scratch` holds [`range_scratch`](Self::range_scratch) bytes.
    async fn get_range(
        &mut self,
        url: &str,
        method: Method,
        start: u32,
        len: u32,
        scratch: &mut [u8],
    ) -> Result<Duration, ModemFailure<Self::Error>> {
        let _ = (url, method, start, len, scratch);
        Err(ModemFailure::Unsupported(Capability::RangedRequests))
    }

    /// The size of file `name` in the module's storage, `None` if there is none.
    async fn stored_size(&mut self, name: &str) -> Result<Option<u32>, ModemFailure<Self::Error>> {
        let _ = name;
        Err(ModemFailure::Unsupported(Capability::ModemFile))
    }

    /// Deletes file `name` from the module's storage.
    async fn delete_stored(&mut self, name: &str) -> Result<(), ModemFailure<Self::Error>> {
        let _ = name;
        Err(ModemFailure::Unsupported(Capability::ModemFile))
    }

    /// Free bytes in the module's storage.
    async fn free_space(&mut self) -> Result<u64, ModemFailure<Self::Error>> {
        Err(ModemFailure::Unsupported(Capability::ModemFile))
    }

    /// Saves the last answer's body (`size` bytes) into file `name` in the module's
    /// storage, waiting until it is all there.
    async fn fetch_to_storage(
        &mut self,
        name: &str,
        size: u32,
    ) -> Result<(), ModemFailure<Self::Error>> {
        let _ = (name, size);
        Err(ModemFailure::Unsupported(Capability::ModemFile))
    }

    /// Opens file `name` for reading at `offset`. `Ok(false)`: the module holds it open
    /// from a session the MCU lost, so it cannot be read now.
    async fn open_stored(
        &mut self,
        name: &str,
        offset: u32,
    ) -> Result<bool, ModemFailure<Self::Error>> {
        let _ = (name, offset);
        Err(ModemFailure::Unsupported(Capability::ModemFile))
    }

    /// Reads the next bytes of the open file into `buf` (at most `buf.len()`); returns how
    /// many (0 at its end).
    async fn read_stored(&mut self, buf: &mut [u8]) -> Result<usize, ModemFailure<Self::Error>> {
        let _ = buf;
        Err(ModemFailure::Unsupported(Capability::ModemFile))
    }

    /// Closes the open file.
    async fn close_stored(&mut self) -> Result<(), ModemFailure<Self::Error>> {
        Err(ModemFailure::Unsupported(Capability::ModemFile))
    }
}
