//! An [`OtaSink`] over a caller's RAM buffer, for tests and host tools.
//!
//! [`MemSink`] stores an image in a `&mut [u8]` with the same contract as a flash sink:
//! writes must arrive in order, [`finish`](OtaSink::finish) re-hashes the stored bytes and
//! compares them with the expected SHA-256 before calling the image activated, and a
//! repeated [`begin`](OtaSink::begin) of the same image resumes. It checks no format (any
//! bytes are an image), so it fits any update flow: feed it a download in a test, or use it
//! in a host tool that fetches an image into memory before writing it elsewhere.
//!
//! "Durable" here means "since this `MemSink` value exists": every accepted byte is
//! immediately stored, and a later `begin` with the same [`ImageDescriptor`] on the same
//! value resumes at [`written`](MemSink::written). Dropping the value forgets everything.
//!
//! ```
//! use cellular_ota::ota::mem_sink::MemSink;
//! use cellular_ota::ota::{ExpectedImage, ImageDescriptor, OtaSink};
//! use sha2::{Digest, Sha256};
//!
//! let image = b"firmware bytes";
//! let sha: [u8; 32] = Sha256::digest(image).into();
//! let desc = ImageDescriptor { id: sha, size: image.len() as u32 };
//! let mut mem = [0u8; 64];
//! let mut sink = MemSink::new(&mut mem);
//! assert_eq!(sink.begin(&desc).unwrap().offset, 0);
//! sink.write(0, &image[..4]).unwrap();
//! // The link drops; the same image begins again and resumes at 4.
//! assert_eq!(sink.begin(&desc).unwrap().offset, 4);
//! sink.write(4, &image[4..]).unwrap();
//! sink.finish(&ExpectedImage::sha256(sha)).unwrap();
//! assert_eq!(sink.image(), Some(&image[..]));
//! ```

use sha2::{Digest, Sha256};

use super::sink::{
    AsyncOtaSink, ExpectedImage, ImageDescriptor, MAX_STATE_LEN, OtaSink, Resume, STATE_ALIGN,
};

/// Why a [`MemSink`] call failed. Nothing was changed unless stated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MemSinkError {
    /// `write`, `read` or `finish` without a `begin` (or after `abort`).
    #[error("no image started")]
    NotStarted,
    /// The image does not fit the buffer (from `begin`; no image is started).
    #[error("image of {size} bytes does not fit {capacity} bytes")]
    ImageTooLarge {
        /// The descriptor's size.
        size: u32,
        /// The buffer length (saturated to `u32`).
        capacity: u32,
    },
    /// A write not at the end of what was written.
    #[error("write at {got}, expected {expected}")]
    OutOfOrder {
        /// The offset the next write must use.
        expected: u32,
        /// The offset given.
        got: u32,
    },
    /// A write that would run past the image size.
    #[error("write up to {end} passes the {size}-byte image")]
    PastImageEnd {
        /// The image size.
        size: u32,
        /// Where the write would end.
        end: u64,
    },
    /// `finish` before all bytes were written.
    #[error("only {written} of {size} bytes written")]
    Incomplete {
        /// Bytes written.
        written: u32,
        /// The image size.
        size: u32,
    },
    /// The stored bytes do not hash to the expected SHA-256; nothing is activated and the
    /// written bytes are discarded (the next `begin` starts at 0).
    #[error("SHA-256 of the stored image does not match")]
    HashMismatch {
        /// The SHA-256 of what is stored.
        computed: [u8; 32],
    },
    /// `save_state` at a point that is not a positive multiple of
    /// [`STATE_ALIGN`]. Nothing was kept.
    #[error("a state at {at} is not at a positive multiple of 4096")]
    StatePoint {
        /// The point given.
        at: u32,
    },
    /// `save_state` with more than [`MAX_STATE_LEN`] bytes. Nothing was kept.
    #[error("a state of {len} bytes is longer than the 512 bytes a sink keeps")]
    StateTooLong {
        /// The state's length.
        len: usize,
    },
    /// `load_state` with a buffer shorter than the state kept.
    #[error("a buffer of {len} bytes cannot take the {needed}-byte state")]
    StateBufferTooSmall {
        /// The buffer's length.
        len: usize,
        /// The state's length.
        needed: usize,
    },
    /// `read_running` past the end of the running image.
    #[error("read of {len} bytes at {offset} passes the {size}-byte running image")]
    RunningReadOutOfRange {
        /// The offset given.
        offset: u32,
        /// The length asked for.
        len: usize,
        /// The running image's length.
        size: u32,
    },
    /// A read outside the bytes written so far.
    #[error("read of {len} bytes at {offset} outside the {available} bytes written")]
    ReadOutOfRange {
        /// The offset given.
        offset: u32,
        /// The length asked for.
        len: usize,
        /// Bytes that can be read.
        available: u32,
    },
}

/// Only [`MemSinkError::HashMismatch`] is transient (the next attempt writes the image
/// again); the others fail the same way again.
/// Each error is the [`SinkFault`](super::SinkFault) variant of the same name and fields.
impl super::ToSinkFault for MemSinkError {
    fn to_fault(&self) -> super::SinkFault {
        use crate::ota::esp_idf::sink::SinkError as S;
        match *self {
            MemSinkError::NotStarted => S::NotStarted,
            MemSinkError::ImageTooLarge { size, capacity } => S::ImageTooLarge { size, capacity },
            MemSinkError::OutOfOrder { expected, got } => S::OutOfOrder { expected, got },
            MemSinkError::PastImageEnd { size, end } => S::PastImageEnd { size, end },
            MemSinkError::Incomplete { written, size } => S::Incomplete { written, size },
            MemSinkError::HashMismatch { computed } => S::HashMismatch { computed },
            MemSinkError::StatePoint { at } => S::StatePoint { at },
            MemSinkError::StateTooLong { len } => S::StateTooLong { len },
            MemSinkError::StateBufferTooSmall { len, needed } => {
                S::StateBufferTooSmall { len, needed }
            }
            MemSinkError::RunningReadOutOfRange { offset, len, size } => {
                S::RunningReadOutOfRange { offset, len, size }
            }
            MemSinkError::ReadOutOfRange {
                offset,
                len,
                available,
            } => S::ReadOutOfRange {
                offset,
                len,
                available,
            },
        }
    }
}

impl crate::retry::Classify for MemSinkError {
    fn retry(&self) -> crate::retry::Retry {
        match self {
            MemSinkError::HashMismatch { .. } => crate::retry::Retry::Transient,
            _ => crate::retry::Retry::Permanent,
        }
    }
}

/// An in-memory [`OtaSink`] / [`AsyncOtaSink`]; see the [module docs](self).
#[derive(Debug)]
pub struct MemSink<'a> {
    mem: &'a mut [u8],
    image: Option<ImageDescriptor>,
    written: u32,
    activated: bool,
    running: Option<&'a [u8]>,
    /// The newest state kept ([`OtaSink::save_state`]): its point and bytes.
    state_at: Option<u32>,
    state: [u8; MAX_STATE_LEN],
    state_len: usize,
}

impl<'a> MemSink<'a> {
    /// A sink storing images in `mem`; its length is the capacity (saturated to `u32`).
    pub fn new(mem: &'a mut [u8]) -> Self {
        MemSink {
            mem,
            image: None,
            written: 0,
            activated: false,
            running: None,
            state_at: None,
            state: [0; MAX_STATE_LEN],
            state_len: 0,
        }
    }

    /// The same sink, with `running` as the image that runs now
    /// ([`OtaSink::read_running`]: the base of a delta). Without it `read_running` answers
    /// that this sink cannot.
    pub fn with_running(mut self, running: &'a [u8]) -> Self {
        self.running = Some(running);
        self
    }

    /// Forgets what is written of the current image after `at` (at most what is written),
    /// as a power cut that kept only `at` bytes would: the next `begin` resumes there, or
    /// at the newest kept state below it. For tests of resuming.
    pub fn truncate(&mut self, at: u32) {
        self.written = self.written.min(at);
        if self.state_at.is_some_and(|s| s > self.written) {
            self.state_at = None;
        }
    }

    /// The most bytes one image can have.
    pub fn capacity(&self) -> u32 {
        u32::try_from(self.mem.len()).unwrap_or(u32::MAX)
    }

    /// The image being written or activated, if any.
    pub fn descriptor(&self) -> Option<&ImageDescriptor> {
        self.image.as_ref()
    }

    /// Bytes of the current image stored so far (the durable offset a `begin` of the same
    /// image resumes from).
    pub fn written(&self) -> u32 {
        self.written
    }

    /// The activated image's bytes, once [`finish`](OtaSink::finish) has succeeded (until the
    /// next `begin` or `abort`).
    pub fn image(&self) -> Option<&[u8]> {
        if !self.activated {
            return None;
        }
        self.mem.get(..self.written as usize)
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> &'a mut [u8] {
        self.mem
    }

    fn do_begin(&mut self, image: &ImageDescriptor) -> Result<Resume, MemSinkError> {
        let capacity = self.capacity();
        if image.size > capacity {
            return Err(MemSinkError::ImageTooLarge {
                size: image.size,
                capacity,
            });
        }
        self.activated = false;
        if self.image.as_ref() != Some(image) {
            self.image = Some(*image);
            self.written = 0;
            self.state_at = None;
        }
        // A kept state is the resume point: later bytes are written again.
        if let Some(at) = self.state_at {
            self.written = self.written.min(at);
        }
        Ok(Resume {
            offset: self.written,
            capacity,
        })
    }

    fn do_write(&mut self, offset: u32, data: &[u8]) -> Result<(), MemSinkError> {
        let image = self.image.ok_or(MemSinkError::NotStarted)?;
        if self.activated {
            return Err(MemSinkError::NotStarted);
        }
        if offset != self.written {
            return Err(MemSinkError::OutOfOrder {
                expected: self.written,
                got: offset,
            });
        }
        let end = u64::from(offset) + data.len() as u64;
        if end > u64::from(image.size) {
            return Err(MemSinkError::PastImageEnd {
                size: image.size,
                end,
            });
        }
        // end <= size <= mem.len().
        let dst =
            self.mem
                .get_mut(offset as usize..end as usize)
                .ok_or(MemSinkError::PastImageEnd {
                    size: image.size,
                    end,
                })?;
        dst.copy_from_slice(data);
        self.written = end as u32;
        Ok(())
    }

    fn do_read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), MemSinkError> {
        if self.image.is_none() {
            return Err(MemSinkError::NotStarted);
        }
        let out_of_range = MemSinkError::ReadOutOfRange {
            offset,
            len: buf.len(),
            available: self.written,
        };
        let end = u64::from(offset) + buf.len() as u64;
        if end > u64::from(self.written) {
            return Err(out_of_range);
        }
        let src = self
            .mem
            .get(offset as usize..end as usize)
            .ok_or(out_of_range)?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn do_finish(&mut self, expected: &ExpectedImage<'_>) -> Result<(), MemSinkError> {
        let image = self.image.ok_or(MemSinkError::NotStarted)?;
        if self.activated {
            return Err(MemSinkError::NotStarted);
        }
        if self.written != image.size {
            return Err(MemSinkError::Incomplete {
                written: self.written,
                size: image.size,
            });
        }
        let stored = self.mem.get(..image.size as usize).unwrap_or(&[]);
        let digest: [u8; 32] = Sha256::digest(stored).into();
        if digest != expected.sha256 {
            // The stored bytes are known bad: resuming would only reproduce them.
            self.written = 0;
            return Err(MemSinkError::HashMismatch { computed: digest });
        }
        self.activated = true;
        Ok(())
    }

    fn do_abort(&mut self) {
        self.image = None;
        self.written = 0;
        self.activated = false;
        self.state_at = None;
    }

    fn do_read_running(&mut self, offset: u32, buf: &mut [u8]) -> Result<bool, MemSinkError> {
        let Some(running) = self.running else {
            return Ok(false);
        };
        let size = u32::try_from(running.len()).unwrap_or(u32::MAX);
        let src = (offset as usize)
            .checked_add(buf.len())
            .and_then(|end| running.get(offset as usize..end))
            .ok_or(MemSinkError::RunningReadOutOfRange {
                offset,
                len: buf.len(),
                size,
            })?;
        buf.copy_from_slice(src);
        Ok(true)
    }

    fn do_save_state(&mut self, at: u32, state: &[u8]) -> Result<bool, MemSinkError> {
        if self.image.is_none() || self.activated {
            return Err(MemSinkError::NotStarted);
        }
        if at != self.written {
            return Err(MemSinkError::OutOfOrder {
                expected: self.written,
                got: at,
            });
        }
        if at == 0 || !at.is_multiple_of(STATE_ALIGN) {
            return Err(MemSinkError::StatePoint { at });
        }
        let dst = self
            .state
            .get_mut(..state.len())
            .ok_or(MemSinkError::StateTooLong { len: state.len() })?;
        dst.copy_from_slice(state);
        self.state_len = state.len();
        self.state_at = Some(at);
        Ok(true)
    }

    fn do_load_state(&mut self, buf: &mut [u8]) -> Result<Option<usize>, MemSinkError> {
        if self.image.is_none() || self.state_at != Some(self.written) {
            return Ok(None);
        }
        let n = self.state_len;
        let too_small = MemSinkError::StateBufferTooSmall {
            len: buf.len(),
            needed: n,
        };
        let dst = buf.get_mut(..n).ok_or(too_small)?;
        dst.copy_from_slice(&self.state[..n]);
        Ok(Some(n))
    }
}

/// `begin` resumes the same descriptor at [`written`](MemSink::written) and restarts a
/// different one at 0; `finish` hashes the buffer (raw bytes have no header, so
/// [`ExpectedImage::version`] is not checked); `abort` forgets the image. See
/// [`MemSinkError`] for each failure. Never panics.
impl OtaSink for MemSink<'_> {
    type Error = MemSinkError;

    fn begin(&mut self, image: &ImageDescriptor) -> Result<Resume, Self::Error> {
        self.do_begin(image)
    }

    fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), Self::Error> {
        self.do_write(offset, data)
    }

    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), Self::Error> {
        self.do_read(offset, buf)
    }

    fn finish(&mut self, expected: &ExpectedImage<'_>) -> Result<(), Self::Error> {
        self.do_finish(expected)
    }

    fn abort(&mut self) -> Result<(), Self::Error> {
        self.do_abort();
        Ok(())
    }

    fn read_running(&mut self, offset: u32, buf: &mut [u8]) -> Result<bool, Self::Error> {
        self.do_read_running(offset, buf)
    }

    fn save_state(&mut self, at: u32, state: &[u8]) -> Result<bool, Self::Error> {
        self.do_save_state(at, state)
    }

    fn load_state(&mut self, buf: &mut [u8]) -> Result<Option<usize>, Self::Error> {
        self.do_load_state(buf)
    }
}

/// The same as the [`OtaSink`] implementation; every future completes on its first poll and
/// is cancel-safe.
impl AsyncOtaSink for MemSink<'_> {
    type Error = MemSinkError;

    async fn begin(&mut self, image: &ImageDescriptor) -> Result<Resume, Self::Error> {
        self.do_begin(image)
    }

    async fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), Self::Error> {
        self.do_write(offset, data)
    }

    async fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), Self::Error> {
        self.do_read(offset, buf)
    }

    async fn finish(&mut self, expected: &ExpectedImage<'_>) -> Result<(), Self::Error> {
        self.do_finish(expected)
    }

    async fn abort(&mut self) -> Result<(), Self::Error> {
        self.do_abort();
        Ok(())
    }

    async fn read_running(&mut self, offset: u32, buf: &mut [u8]) -> Result<bool, Self::Error> {
        self.do_read_running(offset, buf)
    }

    async fn save_state(&mut self, at: u32, state: &[u8]) -> Result<bool, Self::Error> {
        self.do_save_state(at, state)
    }

    async fn load_state(&mut self, buf: &mut [u8]) -> Result<Option<usize>, Self::Error> {
        self.do_load_state(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block_on;

    fn desc(bytes: &[u8]) -> (ImageDescriptor, [u8; 32]) {
        let sha: [u8; 32] = Sha256::digest(bytes).into();
        (
            ImageDescriptor {
                id: sha,
                size: bytes.len() as u32,
            },
            sha,
        )
    }

    #[test]
    fn write_resume_finish() {
        let img: [u8; 100] = core::array::from_fn(|i| i as u8);
        let (d, sha) = desc(&img);
        let mut mem = [0u8; 128];
        let mut s = MemSink::new(&mut mem);
        assert_eq!(s.capacity(), 128);
        assert_eq!(
            OtaSink::write(&mut s, 0, &img),
            Err(MemSinkError::NotStarted)
        );
        assert_eq!(
            OtaSink::begin(&mut s, &d),
            Ok(Resume {
                offset: 0,
                capacity: 128
            })
        );
        for (i, chunk) in img[..60].chunks(7).enumerate() {
            OtaSink::write(&mut s, (i * 7) as u32, chunk).unwrap();
        }
        assert_eq!(s.written(), 60);
        assert_eq!(
            OtaSink::write(&mut s, 59, &[0]),
            Err(MemSinkError::OutOfOrder {
                expected: 60,
                got: 59
            })
        );
        assert_eq!(
            OtaSink::finish(&mut s, &ExpectedImage::sha256(sha)),
            Err(MemSinkError::Incomplete {
                written: 60,
                size: 100
            })
        );
        // Resume.
        assert_eq!(OtaSink::begin(&mut s, &d).unwrap().offset, 60);
        let mut back = [0u8; 10];
        OtaSink::read(&mut s, 50, &mut back).unwrap();
        assert_eq!(back, img[50..60]);
        assert!(matches!(
            OtaSink::read(&mut s, 55, &mut back),
            Err(MemSinkError::ReadOutOfRange { available: 60, .. })
        ));
        assert_eq!(
            OtaSink::write(&mut s, 60, &[0; 41]),
            Err(MemSinkError::PastImageEnd {
                size: 100,
                end: 101
            })
        );
        OtaSink::write(&mut s, 60, &img[60..]).unwrap();
        assert_eq!(s.image(), None);
        OtaSink::finish(&mut s, &ExpectedImage::sha256(sha)).unwrap();
        assert_eq!(s.image(), Some(&img[..]));
        assert_eq!(s.descriptor(), Some(&d));
        // Finished: no more writes or finishes until the next begin.
        assert_eq!(
            OtaSink::write(&mut s, 100, &[]),
            Err(MemSinkError::NotStarted)
        );
        assert_eq!(
            OtaSink::finish(&mut s, &ExpectedImage::sha256(sha)),
            Err(MemSinkError::NotStarted)
        );
        // A different image starts at 0.
        let (d2, _) = desc(&img[..10]);
        assert_eq!(OtaSink::begin(&mut s, &d2).unwrap().offset, 0);
        assert_eq!(s.image(), None);
        OtaSink::abort(&mut s).unwrap();
        assert_eq!(s.descriptor(), None);
        assert_eq!(
            OtaSink::read(&mut s, 0, &mut back),
            Err(MemSinkError::NotStarted)
        );
        assert_eq!(s.into_inner()[..100], img);
    }

    #[test]
    fn hash_mismatch_and_too_large() {
        let img = [7u8; 32];
        let (d, mut sha) = desc(&img);
        let mut mem = [0u8; 32];
        let mut s = MemSink::new(&mut mem);
        let big = ImageDescriptor {
            id: [0; 32],
            size: 33,
        };
        assert_eq!(
            OtaSink::begin(&mut s, &big),
            Err(MemSinkError::ImageTooLarge {
                size: 33,
                capacity: 32
            })
        );
        OtaSink::begin(&mut s, &d).unwrap();
        OtaSink::write(&mut s, 0, &img).unwrap();
        let stored = sha;
        sha[0] ^= 1;
        assert_eq!(
            OtaSink::finish(&mut s, &ExpectedImage::sha256(sha)),
            Err(MemSinkError::HashMismatch { computed: stored })
        );
        assert_eq!(s.image(), None);
        // The bad bytes are discarded: begin starts over.
        assert_eq!(OtaSink::begin(&mut s, &d).unwrap().offset, 0);
    }

    #[test]
    fn running_image_and_kept_state() {
        let running = [7u8; 100];
        let mut mem = [0u8; 3 * 4096];
        let mut sink = MemSink::new(&mut mem);
        let mut b = [0u8; 4];
        // Without a running image the sink says it cannot read one.
        assert_eq!(OtaSink::read_running(&mut sink, 0, &mut b), Ok(false));
        let mut sink = MemSink::new(sink.into_inner()).with_running(&running);
        assert_eq!(OtaSink::read_running(&mut sink, 96, &mut b), Ok(true));
        assert_eq!(b, [7; 4]);
        assert_eq!(
            OtaSink::read_running(&mut sink, 97, &mut b),
            Err(MemSinkError::RunningReadOutOfRange {
                offset: 97,
                len: 4,
                size: 100
            })
        );
        let image = [1u8; 3 * 4096];
        let (d, _) = desc(&image);
        assert_eq!(
            OtaSink::save_state(&mut sink, 0, b"s"),
            Err(MemSinkError::NotStarted)
        );
        OtaSink::begin(&mut sink, &d).unwrap();
        OtaSink::write(&mut sink, 0, &image[..5000]).unwrap();
        assert_eq!(
            OtaSink::save_state(&mut sink, 4096, b"s"),
            Err(MemSinkError::OutOfOrder {
                expected: 5000,
                got: 4096
            })
        );
        assert_eq!(
            OtaSink::save_state(&mut sink, 5000, b"s"),
            Err(MemSinkError::StatePoint { at: 5000 })
        );
        OtaSink::write(&mut sink, 5000, &image[5000..8192]).unwrap();
        let long = [0u8; MAX_STATE_LEN + 1];
        assert_eq!(
            OtaSink::save_state(&mut sink, 8192, &long),
            Err(MemSinkError::StateTooLong {
                len: MAX_STATE_LEN + 1
            })
        );
        assert_eq!(OtaSink::save_state(&mut sink, 8192, b"state"), Ok(true));
        OtaSink::write(&mut sink, 8192, &image[8192..10_000]).unwrap();
        // The kept state is the resume point: later bytes are written again.
        assert_eq!(OtaSink::begin(&mut sink, &d).unwrap().offset, 8192);
        let mut small = [0u8; 2];
        assert_eq!(
            OtaSink::load_state(&mut sink, &mut small),
            Err(MemSinkError::StateBufferTooSmall { len: 2, needed: 5 })
        );
        let mut buf = [0u8; MAX_STATE_LEN];
        assert_eq!(OtaSink::load_state(&mut sink, &mut buf), Ok(Some(5)));
        assert_eq!(&buf[..5], b"state");
        // Abort forgets it.
        OtaSink::abort(&mut sink).unwrap();
        OtaSink::begin(&mut sink, &d).unwrap();
        assert_eq!(OtaSink::load_state(&mut sink, &mut buf), Ok(None));
    }

    #[test]
    fn async_twin() {
        let img = [3u8; 50];
        let (d, sha) = desc(&img);
        let mut mem = [0u8; 64];
        let mut s = MemSink::new(&mut mem);
        assert_eq!(block_on(AsyncOtaSink::begin(&mut s, &d)).unwrap().offset, 0);
        block_on(AsyncOtaSink::write(&mut s, 0, &img[..20])).unwrap();
        assert_eq!(
            block_on(AsyncOtaSink::begin(&mut s, &d)).unwrap().offset,
            20
        );
        block_on(AsyncOtaSink::write(&mut s, 20, &img[20..])).unwrap();
        let mut b = [0u8; 50];
        block_on(AsyncOtaSink::read(&mut s, 0, &mut b)).unwrap();
        assert_eq!(b, img);
        block_on(AsyncOtaSink::finish(&mut s, &ExpectedImage::sha256(sha))).unwrap();
        assert_eq!(s.image(), Some(&img[..]));
        block_on(AsyncOtaSink::abort(&mut s)).unwrap();
        assert_eq!(s.image(), None);
    }
}
