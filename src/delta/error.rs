//! What can go wrong while decoding a patch or restoring a saved state.

/// Why [`DeltaDecoder`](super::DeltaDecoder) refused a patch or a saved state.
///
/// Every error is final for the decoder that returned it: further calls to
/// [`decode`](super::DeltaDecoder::decode) return the same error. Output already handed out
/// stays valid as far as it went, but the image is not complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum DeltaError {
    /// The first byte is not a detools header (its top bit is set), or the target size is
    /// negative.
    #[error("not a detools patch header")]
    BadHeader,
    /// A detools patch of another type: 1 in-place, 2 hdiffpatch. Only sequential (0)
    /// patches are decoded.
    #[error("detools patch type {0} is not supported (only sequential, 0)")]
    UnsupportedPatchType(u8),
    /// A compression this decoder does not have: 1 lzma, 3 bz2, 5 zstd, 6 lz4 (or an
    /// undefined number). Supported: 0 none, 2 crle, 4 heatshrink.
    #[error("detools compression {0} is not supported (only none 0, crle 2, heatshrink 4)")]
    UnsupportedCompression(u8),
    /// A heatshrink stream made with settings this decoder cannot hold: the window is at
    /// most 2^8 bytes, and heatshrink needs `3 <= lookahead_sz2 < window_sz2`.
    #[error(
        "heatshrink window_sz2 {window_sz2} / lookahead_sz2 {lookahead_sz2} is not supported (window_sz2 4..=8, lookahead_sz2 3..window_sz2)"
    )]
    UnsupportedHeatshrink {
        /// The stream's `window_sz2`.
        window_sz2: u8,
        /// The stream's `lookahead_sz2`.
        lookahead_sz2: u8,
    },
    /// The patch was made with `--data-format` (an instruction-aware pre-pass for
    /// ARM Cortex-M4, AArch64 or Xtensa LX106 code), which this decoder does not apply.
    #[error("the patch uses a detools data format (--data-format), which is not supported")]
    UnsupportedDataFormat,
    /// The header's target size is above `u32::MAX`.
    #[error("target size {0} is above 4 GiB")]
    TargetTooLarge(u64),
    /// A diff or extra block would write past the target size from the header.
    #[error(
        "a block of {size} bytes at output offset {to_offset} passes the target size {to_size}"
    )]
    TooLong {
        /// Output offset where the block starts.
        to_offset: u32,
        /// The block's size from the patch.
        size: u64,
        /// The target size from the header.
        to_size: u32,
    },
    /// A diff block reads base bytes outside `0..base_len`.
    #[error(
        "a diff reads {len} base bytes at offset {offset}, outside the base of {base_len} bytes"
    )]
    BaseOutOfRange {
        /// Base offset where the block would start (may be negative).
        offset: i64,
        /// The block's size.
        len: u32,
        /// The base length given to [`DeltaDecoder::new`](super::DeltaDecoder::new).
        base_len: u32,
    },
    /// The patch's bytes do not follow the format.
    #[error("corrupt patch: {0}")]
    Corrupt(Corrupt),
    /// [`finish`](super::DeltaDecoder::finish) before the patch's end: the patch is
    /// truncated (or its download is not complete).
    #[error("patch incomplete after {patch_consumed} bytes ({output} bytes of output)")]
    Truncated {
        /// Patch bytes consumed so far.
        patch_consumed: u64,
        /// Output bytes handed out so far.
        output: u32,
    },
    /// A saved state of another state format version (the first byte).
    #[error("saved decoder state has format {0}, this build reads format {STATE_VERSION}", STATE_VERSION = super::state::STATE_VERSION)]
    StateVersion(u8),
    /// A saved state whose checksum or fields are wrong (torn write, another record, a
    /// state of no detools sequential patch).
    #[error("saved decoder state is damaged or not a delta decoder state")]
    BadState,
}

/// How a patch breaks the format, inside [`DeltaError::Corrupt`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Corrupt {
    /// A size or offset number is longer than 10 bytes or above `i64::MAX`.
    Number,
    /// A diff or extra size is negative.
    NegativeSize,
    /// The base position left the `i64` range.
    BasePosition,
    /// A CRLE segment kind other than 0 (scattered) or 1 (repeated).
    CrleKind(u8),
    /// A CRLE length above `u32::MAX` or longer than five bytes.
    CrleLength,
    /// The compressed stream still holds output after the patch's last instruction.
    DataAfterEnd,
    /// More blocks than the target has bytes, plus one (detools never makes more).
    TooManyBlocks,
}

impl core::fmt::Display for Corrupt {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Corrupt::Number => f.write_str("a number is too long"),
            Corrupt::NegativeSize => f.write_str("a block size is negative"),
            Corrupt::BasePosition => f.write_str("the base position overflows"),
            Corrupt::CrleKind(k) => write!(f, "CRLE segment kind {k}"),
            Corrupt::CrleLength => f.write_str("a CRLE length is too long"),
            Corrupt::DataAfterEnd => f.write_str("data after the last instruction"),
            Corrupt::TooManyBlocks => f.write_str("more blocks than target bytes"),
        }
    }
}

impl From<Corrupt> for DeltaError {
    #[cold]
    fn from(c: Corrupt) -> Self {
        DeltaError::Corrupt(c)
    }
}
