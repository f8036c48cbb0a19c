//! The [`OtaSink`] contract: where a downloaded image goes, and the only code allowed to make
//! it bootable.
//!
//! The update flow streams bytes into a sink in order, may stop at any point (link drop,
//! modem reboot, power cut), and later begins the same image again; the sink tells it where
//! to resume. Only [`OtaSink::finish`] may make an image bootable, and only after it has read
//! the whole image back from its storage and found the expected SHA-256 there (plus whatever
//! format checks the target's bootloader applies). A sink therefore never activates bytes it
//! has not verified itself, whatever its caller did before.

/// A sink's error as an update reports it ([`Failure::Sink`](crate::update::Failure::Sink)):
/// the ESP-IDF sink's vocabulary with the flash driver's error reduced to its
/// [`NorFlashErrorKind`](embedded_storage::nor_flash::NorFlashErrorKind), so the update's
/// error type does not depend on the sink or the flash driver.
pub type SinkFault =
    crate::ota::esp_idf::sink::SinkError<embedded_storage::nor_flash::NorFlashErrorKind>;

/// A sink error the update flow can report as a [`SinkFault`]. Implemented by the ESP-IDF
/// sink's error over any flash driver and by the in-memory sink's; a sink of your own maps
/// its errors onto the closest [`SinkFault`] variant.
pub trait ToSinkFault {
    /// This error as a [`SinkFault`].
    fn to_fault(&self) -> SinkFault;
}

/// Identifies the image being written, so that a resumed download continues only the same
/// image and a different one starts clean.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ImageDescriptor {
    /// A 32-byte identity: the image's SHA-256 from its manifest when there is one,
    /// otherwise a hash of whatever identifies it (URL and length). Compared for equality
    /// only.
    pub id: [u8; 32],
    /// The image's exact length in bytes.
    pub size: u32,
}

/// What [`OtaSink::finish`] must find in storage before it activates anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ExpectedImage<'a> {
    /// The SHA-256 of the whole image: from a manifest, or as hashed while downloading.
    pub sha256: [u8; 32],
    /// The version the image must declare in its own header, when a manifest names one
    /// ([`Manifest::expected_image`](crate::ota::manifest::Manifest::expected_image)). A sink
    /// whose image format carries a version (ESP-IDF: `esp_app_desc_t.version`) refuses an
    /// image that declares another; a sink whose format carries none (the in-memory sink)
    /// has nothing to compare and says so in its docs.
    pub version: Option<crate::ota::manifest::Version<'a>>,
}

impl ExpectedImage<'_> {
    /// Only this SHA-256, no version.
    pub const fn sha256(sha256: [u8; 32]) -> Self {
        ExpectedImage {
            sha256,
            version: None,
        }
    }
}

/// Where a sink stands with an image after [`OtaSink::begin`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Resume {
    /// Bytes already durable in the sink for this very image: continue the download here.
    /// Zero for a fresh start. Never more than the image size.
    pub offset: u32,
    /// The most bytes this sink can take for one image.
    pub capacity: u32,
}

/// Most bytes of caller state a sink keeps with a resume point ([`OtaSink::save_state`]):
/// the update flow's delta checkpoint (the decoder's [`STATE_LEN`](crate::delta::STATE_LEN)
/// bytes, the patch hash's state and the patch's identity) fits.
pub const MAX_STATE_LEN: usize = 512;

/// Resume points that carry caller state ([`OtaSink::save_state`]) lie on multiples of this
/// many image bytes (4 KiB: the ESP-IDF sink resumes at sector boundaries).
pub const STATE_ALIGN: u32 = 4096;

/// A destination for firmware images (blocking).
///
/// Call order: `begin`, then `write` with consecutive offsets starting at the resume
/// offset, then `finish` or `abort`. Any call may fail; after a failure the caller may
/// `begin` again (the sink resumes from what is durable) or `abort`.
///
/// Implementations: [`crate::ota::esp_idf`]'s A/B slot sink and the in-memory sink.
pub trait OtaSink {
    /// The sink's error type.
    type Error: core::fmt::Debug + ToSinkFault;

    /// Starts writing `image`, or resumes it. Returns the offset to continue from, which is
    /// 0 unless this same image (same `id` and `size`) was partly written before and those
    /// bytes survived. A different image discards any earlier partial one.
    fn begin(&mut self, image: &ImageDescriptor) -> Result<Resume, Self::Error>;

    /// Writes `data` at `offset`, which must be the end of what was written so far. Bytes
    /// may be buffered internally until a write unit or sector is complete; they count as
    /// durable (for the next `begin`) only once the sink has recorded them.
    fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), Self::Error>;

    /// Reads back `buf.len()` bytes of the image at `offset` (within what was written), as
    /// stored, so the caller can re-hash a resumed prefix.
    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), Self::Error>;

    /// Gets `[offset, offset + len)` ready for writing now (for flash: erases its sectors),
    /// so that the writes that follow only program. The update flow calls it before a large
    /// range arrives, while the modem is still fetching, so that no long erase stalls the
    /// UART in the middle of a payload. `offset` is the current write position.
    ///
    /// After `prepare`, the writes of the prepared range perform no erase of any kind (a
    /// flash sink also makes room in its resume journal ahead of time; for ranges larger
    /// than its journal it records progress every few sectors instead of every sector, so a
    /// power cut may cost a few sectors of re-download).
    ///
    /// Sinks with no preparation cost (RAM) do nothing, which is this default. A prepared
    /// range that is never written is simply erased again before its first write after a
    /// later `begin`. Storage the sink knows to be erased already is not erased again: the
    /// ESP-IDF sink's slot erased in idle time
    /// ([`EspIdfSink::erase_idle_step`](crate::ota::esp_idf::sink::EspIdfSink::erase_idle_step)),
    /// which `begin` has read back, makes `prepare` return without erasing anything.
    fn prepare(&mut self, offset: u32, len: u32) -> Result<(), Self::Error> {
        let _ = (offset, len);
        Ok(())
    }

    /// Verifies the complete image in storage — its length, its SHA-256 against
    /// `expected.sha256` (read back from storage, not from RAM), the version it declares
    /// against `expected.version` where its format carries one, and the target's own format
    /// checks — and only then makes it the image that boots next. On any failure nothing is
    /// activated and the running image stays selected.
    fn finish(&mut self, expected: &ExpectedImage<'_>) -> Result<(), Self::Error>;

    /// Abandons the current image: forgets resume state so the next `begin` starts clean.
    /// Never touches the running image or the boot selection.
    fn abort(&mut self) -> Result<(), Self::Error>;

    /// Reads `buf.len()` bytes at `offset` of the image that runs now (the base a delta
    /// patch applies to). May be called before [`begin`](Self::begin), and never changes
    /// what is stored. `Ok(false)`: this sink cannot read the running image (the default);
    /// the update flow then refuses a delta with
    /// [`Capability::RunningImage`](crate::update::Capability::RunningImage).
    fn read_running(&mut self, offset: u32, buf: &mut [u8]) -> Result<bool, Self::Error> {
        let _ = (offset, buf);
        Ok(false)
    }

    /// Makes every byte before `at` durable and keeps `state` (at most [`MAX_STATE_LEN`]
    /// bytes) with that point, so that a later [`begin`](Self::begin) of the same image
    /// resumes exactly at `at` and [`load_state`](Self::load_state) returns `state`.
    /// `at` is the current write position and a multiple of [`STATE_ALIGN`]. Only the
    /// newest state counts: once a state is kept, `begin` resumes at the newest kept
    /// state's point even if later bytes were durable (they are written again).
    ///
    /// `Ok(false)`: this sink keeps no state (the default, and the ESP-IDF sink when the
    /// slot has no room for it); the caller's work since its last kept state is then not
    /// resumable. May erase (a sector of state records) and so must not run while bytes
    /// stream in unpaced.
    fn save_state(&mut self, at: u32, state: &[u8]) -> Result<bool, Self::Error> {
        let _ = (at, state);
        Ok(false)
    }

    /// After [`begin`](Self::begin): the state kept with the resume point, copied into
    /// `buf` (at least [`MAX_STATE_LEN`] bytes); returns its length. `None` when the resume
    /// point carries no state (a fresh start, a point recorded without state, or a sink
    /// that keeps none, the default).
    fn load_state(&mut self, buf: &mut [u8]) -> Result<Option<usize>, Self::Error> {
        let _ = buf;
        Ok(None)
    }

    /// The unit the storage programs, in bytes (a flash's `WRITE_SIZE`): the update flow's
    /// write and request sizes must be multiples of it. Default 1 (any length).
    fn write_size(&self) -> u32 {
        1
    }

    /// Bytes from the write position on that the sink knows to be erased already (the
    /// ESP-IDF sink: what `begin` read back erased of a slot erased in idle time), so that
    /// [`prepare`](Self::prepare) over them erases nothing. The update flow prepares them
    /// at once, which lets a sink plan its bookkeeping for the whole region. Default 0.
    fn erased_ahead(&self) -> u32 {
        0
    }
}

/// The async twin of [`OtaSink`], for sinks over `embedded_storage_async` flash.
#[allow(async_fn_in_trait)]
pub trait AsyncOtaSink {
    /// The sink's error type.
    type Error: core::fmt::Debug + ToSinkFault;
    /// See [`OtaSink::begin`].
    async fn begin(&mut self, image: &ImageDescriptor) -> Result<Resume, Self::Error>;
    /// See [`OtaSink::write`].
    async fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), Self::Error>;
    /// See [`OtaSink::read`].
    async fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), Self::Error>;
    /// See [`OtaSink::prepare`].
    async fn prepare(&mut self, offset: u32, len: u32) -> Result<(), Self::Error> {
        let _ = (offset, len);
        Ok(())
    }
    /// See [`OtaSink::finish`].
    async fn finish(&mut self, expected: &ExpectedImage<'_>) -> Result<(), Self::Error>;
    /// See [`OtaSink::abort`].
    async fn abort(&mut self) -> Result<(), Self::Error>;
    /// See [`OtaSink::read_running`].
    async fn read_running(&mut self, offset: u32, buf: &mut [u8]) -> Result<bool, Self::Error> {
        let _ = (offset, buf);
        Ok(false)
    }
    /// See [`OtaSink::save_state`].
    async fn save_state(&mut self, at: u32, state: &[u8]) -> Result<bool, Self::Error> {
        let _ = (at, state);
        Ok(false)
    }
    /// See [`OtaSink::load_state`].
    async fn load_state(&mut self, buf: &mut [u8]) -> Result<Option<usize>, Self::Error> {
        let _ = buf;
        Ok(None)
    }
    /// See [`OtaSink::write_size`].
    fn write_size(&self) -> u32 {
        1
    }
    /// See [`OtaSink::erased_ahead`].
    fn erased_ahead(&self) -> u32 {
        0
    }
}
