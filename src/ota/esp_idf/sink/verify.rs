//! The read-back check of `finish`: SHA-256, image validity and the declared version.

use super::*;

/// The read-back check of `finish`: SHA-256 and image validation in one pass.
pub(super) struct Verifier {
    pub(super) sha: Sha256,
    pub(super) validator: ImageValidator,
    pub(super) size: u32,
    pub(super) done: u32,
    pub(super) read_size: usize,
}

impl Verifier {
    pub(super) fn new(
        config: &SinkConfig,
        target: &UpdateTarget,
        size: u32,
        read_size: usize,
    ) -> Self {
        let validator = ImageValidator::new(config.chip, target.capacity)
            .with_memory_map(config.memory_map)
            .at_flash_offset(target.offset)
            .with_revisions(config.revisions);
        Verifier {
            sha: Sha256::new(),
            validator,
            size,
            done: 0,
            read_size,
        }
    }

    /// The next chunk to read: slot-relative offset and length (a multiple of `READ_SIZE`,
    /// at most [`VERIFY_BUF_LEN`]); `None` when the image is read.
    pub(super) fn next_read(&self) -> Option<(u32, usize)> {
        let left = (self.size - self.done) as usize;
        if left == 0 {
            return None;
        }
        let take = left.min(VERIFY_BUF_LEN);
        let len = take.div_ceil(self.read_size) * self.read_size;
        Some((self.done, len.min(VERIFY_BUF_LEN)))
    }

    /// Feeds a chunk read at the position [`next_read`](Self::next_read) gave; bytes past
    /// the image end are ignored.
    pub(super) fn feed(&mut self, chunk: &[u8]) {
        let left = (self.size - self.done) as usize;
        let used = chunk.get(..left.min(chunk.len())).unwrap_or(&[]);
        self.sha.update(used);
        // Errors are sticky in the validator; `finish` reports them.
        let _ = self.validator.update(used);
        self.done += used.len() as u32;
    }

    pub(super) fn finish<E>(self, expected: &ExpectedImage<'_>) -> Result<ImageInfo, SinkError<E>> {
        let computed: [u8; 32] = self.sha.finalize().into();
        if computed != expected.sha256 {
            return Err(SinkError::HashMismatch { computed });
        }
        let info = self.validator.finish().map_err(SinkError::Image)?;
        if let Some(want) = &expected.version {
            check_declared_version(&info, want)?;
        }
        Ok(info)
    }
}

/// The version an app descriptor declares, as a [`Version`]: its text up to the first NUL,
/// with one leading `v` allowed (`git describe` style, `v1.4.2`); `None` if that is not a
/// version [`Version::parse`] accepts.
pub fn declared_version(desc: &AppDescriptor) -> Option<Version<'_>> {
    let text = desc.version_str()?;
    Version::parse(text.strip_prefix('v').unwrap_or(text)).ok()
}

/// Errors unless the image's app descriptor declares `want`.
pub(super) fn check_declared_version<E>(
    info: &ImageInfo,
    want: &Version<'_>,
) -> Result<(), SinkError<E>> {
    let Some(desc) = &info.app_desc else {
        return Err(SinkError::VersionMismatch { declared: [0; 32] });
    };
    if declared_version(desc).as_ref() != Some(want) {
        return Err(SinkError::VersionMismatch {
            declared: desc.version,
        });
    }
    Ok(())
}

/// One step of reading `want` bytes at `addr` with granularity `read_size` (which divides
/// [`WRITE_BUF_LEN`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ReadStep {
    /// Read this many bytes straight into the output.
    Direct(usize),
    /// Read `len` bytes at `aligned` into a scratch buffer, use `take` bytes from `skip`.
    Bounce {
        aligned: u32,
        len: usize,
        skip: usize,
        take: usize,
    },
}

pub(super) fn read_step(addr: u32, want: usize, read_size: usize) -> ReadStep {
    let skip = addr as usize % read_size;
    if skip == 0 && want >= read_size {
        return ReadStep::Direct(want - want % read_size);
    }
    let take = want.min(WRITE_BUF_LEN - skip);
    ReadStep::Bounce {
        aligned: addr - skip as u32,
        len: (skip + take).div_ceil(read_size) * read_size,
        skip,
        take,
    }
}
