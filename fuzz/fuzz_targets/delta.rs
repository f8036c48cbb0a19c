//! Fuzzes the detools patch decoder (`cellular_ota::delta::DeltaDecoder`, feature `delta`).
//!
//! Input layout (missing bytes read as 0):
//!
//! | byte | meaning                                                                      |
//! |------|------------------------------------------------------------------------------|
//! | 0    | base length: 0, 64, 4096 or `u32::MAX` (bits 0-1); save/restore every call (bit 2) |
//! | 1    | PRNG seed for the slice sizes (1..=64 bytes)                                 |
//! | rest | the patch                                                                    |
//!
//! The patch is fed twice: whole, and in random slices (saving and restoring the decoder
//! after every call when bit 2 is set). Checked: nothing panics and the decoder never
//! stalls (`NeedInput` consumes the whole slice; any other event consumes or outputs);
//! events are never empty, follow each other in the output (`to_offset`), stay within the
//! target size and, for diffs, within the base; `Done` comes only with the whole target
//! handed out; both runs give the same output and the same verdict (error, done or
//! incomplete); a saved state restores to one that saves the same bytes. A restore of the
//! patch bytes as a state record must not panic either.
#![no_main]
use cellular_ota::delta::{DeltaDecoder, DeltaError, Event, STATE_LEN};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Done(u32),
    Incomplete,
    Failed(DeltaError),
}

struct Out {
    base_len: u32,
    bytes: Vec<u8>,
    target: Option<u32>,
}

impl Out {
    fn take(&mut self, ev: &Event<'_>) {
        match *ev {
            Event::Diff {
                to_offset,
                base_offset,
                add,
            } => {
                assert!(!add.is_empty());
                assert_eq!(to_offset as usize, self.bytes.len());
                assert!(u64::from(base_offset) + add.len() as u64 <= u64::from(self.base_len));
                // The base is all 0x5A here: output = 0x5A + add.
                self.bytes.extend(add.iter().map(|a| a.wrapping_add(0x5A)));
            }
            Event::Extra { to_offset, data } => {
                assert!(!data.is_empty());
                assert_eq!(to_offset as usize, self.bytes.len());
                self.bytes.extend_from_slice(data);
            }
            Event::NeedInput | Event::Done | Event::Stopped => {}
        }
        if let Some(t) = self.target {
            assert!(self.bytes.len() as u64 <= u64::from(t));
        }
    }
}

fn run(
    patch: &[u8],
    base_len: u32,
    slices: &mut dyn FnMut() -> usize,
    restore: bool,
) -> (Vec<u8>, Verdict) {
    let mut dec = DeltaDecoder::new(base_len);
    let mut out = Out {
        base_len,
        bytes: Vec::new(),
        target: None,
    };
    let mut pos = 0usize;
    let mut state = [0u8; STATE_LEN];
    loop {
        let end = (pos + slices()).min(patch.len());
        let mut input = &patch[pos..end];
        pos = end;
        loop {
            let before = out.bytes.len();
            let (used, ev) = match dec.decode(input) {
                Ok(r) => r,
                Err(e) => return (out.bytes, Verdict::Failed(e)),
            };
            let stop = match ev {
                Event::NeedInput => {
                    assert_eq!(used, input.len(), "NeedInput leaves input behind");
                    true
                }
                Event::Done => true,
                _ => false,
            };
            let done = matches!(ev, Event::Done);
            out.take(&ev);
            if !stop {
                assert!(used > 0 || out.bytes.len() > before, "stall");
            }
            input = &input[used..];
            out.target = dec.target_size();
            if done {
                assert_eq!(Some(out.bytes.len() as u32), dec.target_size());
                assert_eq!(dec.finish(), Ok(out.bytes.len() as u32));
                let n = out.bytes.len() as u32;
                return (out.bytes, Verdict::Done(n));
            }
            if restore {
                dec.save(&mut state).expect("save of a live decoder");
                let back = DeltaDecoder::restore(&state).expect("restore of a saved state");
                let mut again = [0u8; STATE_LEN];
                back.save(&mut again).unwrap();
                assert!(state == again);
                dec = back;
                // The restored decoder continues from patch_consumed(): re-slice the input.
                let consumed = dec.patch_consumed() as usize;
                input = &patch[consumed.min(pos)..pos];
            }
            if stop {
                break;
            }
        }
        if pos >= patch.len() {
            assert!(matches!(dec.finish(), Err(DeltaError::Truncated { .. })));
            return (out.bytes, Verdict::Incomplete);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let b0 = data.first().copied().unwrap_or(0);
    let mut seed = u32::from(data.get(1).copied().unwrap_or(0)) | 0x100;
    let patch = data.get(2..).unwrap_or(&[]);
    let base_len = [0, 64, 4096, u32::MAX][usize::from(b0 & 3)];
    let restore = b0 & 4 != 0;

    let (whole_out, whole) = run(patch, base_len, &mut || usize::MAX / 2, false);
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        1 + (seed % 64) as usize
    };
    let (sliced_out, sliced) = run(patch, base_len, &mut rnd, restore);
    assert_eq!(whole, sliced);
    assert!(whole_out == sliced_out);

    // The same bytes as a state record: refused or restored, never a panic; a restored one
    // decodes on without panicking.
    if let Ok(mut d) = DeltaDecoder::restore(patch) {
        let _ = d.decode(patch);
    }
});
