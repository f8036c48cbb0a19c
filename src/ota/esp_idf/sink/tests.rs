extern crate std;

use super::*;
use std::vec;
use std::vec::Vec;

pub(super) const SECTOR: u32 = 4096;

/// Runs the write engine over `data[resume..]` in `chunks` against a model slot that
/// enforces erase-before-write and checks every operation; returns the slot and the
/// journal offsets recorded.
fn simulate(data: &[u8], resume: u32, chunks: &[usize], unit: u32) -> (Vec<u8>, Vec<u32>) {
    let sim = simulate_prepared(data, resume, chunks, unit, Prep::Never, JOURNAL_ROOM);
    (sim.slot, sim.records)
}

/// Records a journal sector of 4 KiB holds before it wraps (85 slots of 48 bytes, the
/// last reserved for the tombstone).
const JOURNAL_ROOM: u32 = 84;

/// What [`simulate_prepared`] saw.
struct Sim {
    /// The slot's bytes afterwards.
    slot: Vec<u8>,
    /// The journal offsets recorded, in order.
    records: Vec<u32>,
    /// Slot erases the writes (not `prepare`) did.
    write_erases: usize,
    /// Journal wraps the writes did (each one a journal sector erase).
    write_wraps: usize,
    /// Early journal wraps `prepare` did (`make_room` compacting).
    prepare_wraps: usize,
    /// The largest record stride `prepare` planned.
    max_stride: u32,
}

/// A model of the journal's room: `next` slots used of `cap + 1` (the last one is the
/// tombstone reserve), and whether a progress record is the newest.
struct JournalModel {
    cap: u32,
    next: u32,
    latest: bool,
}

impl JournalModel {
    /// `Journal::record`: true if it had to wrap (erase).
    fn record(&mut self) -> bool {
        let wrap = self.next >= self.cap;
        self.next = if wrap { 1 } else { self.next + 1 };
        self.latest = true;
        wrap
    }

    /// `Journal::make_room`: the room afterwards and whether it compacted (erase).
    fn make_room(&mut self, want: u32) -> (u32, bool) {
        let room = self.cap - self.next;
        let compacted = self.cap - u32::from(self.latest);
        if record_stride(want, compacted) < record_stride(want, room) {
            self.next = u32::from(self.latest);
            return (compacted, true);
        }
        (room, false)
    }
}

/// When [`simulate_prepared`] calls `prepare`.
#[derive(Clone, Copy, Debug)]
enum Prep {
    Never,
    /// `prepare(pos, len)` before each chunk.
    EachChunk(u32),
    /// The update flow's way: `prepare(pos, len)` at the start of each `len`-byte range,
    /// chunks cut at the range end (`u32::MAX`: one prepare for the whole image).
    Ranges(u32),
}

/// [`simulate`], calling `prepare` as `prep` says, the way the sink does: the journal (a
/// model holding `journal_room` records before it wraps) makes room for the records the
/// prepared region needs, then the writer plans its records and the sectors are erased.
fn simulate_prepared(
    data: &[u8],
    resume: u32,
    chunks: &[usize],
    unit: u32,
    prep: Prep,
    journal_room: u32,
) -> Sim {
    let size = data.len() as u32;
    let slot_len = (80 * SECTOR as usize).max(data.len().div_ceil(4096) * 4096 + 4096);
    // Old contents: the durable prefix, then non-erased junk.
    let mut slot = vec![0x5Au8; slot_len];
    slot[..resume as usize].copy_from_slice(&data[..resume as usize]);
    let mut erased = vec![false; slot_len / SECTOR as usize];
    let mut records = Vec::new();
    // begin: a resumed journal holds the resume record; a fresh one is cleared.
    let journal = core::cell::RefCell::new(JournalModel {
        cap: journal_room,
        next: u32::from(resume > 0),
        latest: resume > 0,
    });
    let mut write_wraps = 0;
    let mut w = Writer::new(0, SECTOR, unit, size, resume);
    let mut apply = |op: Op, w: &Writer, input: &[u8], slot: &mut Vec<u8>| match op {
        Op::Erase { from, to } => {
            assert!(from < to && from % SECTOR == 0 && to % SECTOR == 0);
            assert!(to - from <= PREPARE_ERASE_MAX);
            assert_eq!(
                from / PREPARE_ERASE_MAX,
                (to - 1) / PREPARE_ERASE_MAX,
                "crosses a 64 KiB block"
            );
            assert!(to <= size.div_ceil(SECTOR) * SECTOR, "erase past the image");
            // Never a sector holding durable (recorded) or written bytes.
            assert!(
                from >= w.flushed.next_multiple_of(SECTOR),
                "erase over written bytes"
            );
            for s in from / SECTOR..to / SECTOR {
                assert!(!erased[s as usize], "erased twice");
                erased[s as usize] = true;
            }
            slot[from as usize..to as usize].fill(0xFF);
        }
        Op::Program { addr, src } => {
            let bytes = w.bytes(src, input);
            let (a, n) = (addr as usize, bytes.len());
            assert!(n > 0 && a % unit as usize == 0 && n % unit as usize == 0);
            assert_eq!(
                a / SECTOR as usize,
                (a + n - 1) / SECTOR as usize,
                "crosses"
            );
            assert!(erased[a / SECTOR as usize], "write before erase");
            assert!(slot[a..a + n].iter().all(|&b| b == 0xFF), "not erased");
            assert!(a + n <= (size as usize).div_ceil(unit as usize) * unit as usize);
            slot[a..a + n].copy_from_slice(bytes);
        }
        Op::Record { offset } => {
            assert_eq!(offset % SECTOR, 0);
            assert!(offset <= size);
            assert!(
                offset > records.last().copied().unwrap_or(resume),
                "not after"
            );
            // The durability claim: everything before it is on "flash".
            assert_eq!(&slot[..offset as usize], &data[..offset as usize]);
            records.push(offset);
            write_wraps += usize::from(journal.borrow_mut().record());
        }
    };
    let mut at = resume as usize;
    let mut sizes = chunks.iter().cycle();
    let mut write_erases = 0;
    let mut prepare_wraps = 0;
    let mut max_stride = 1;
    let mut range_end = at;
    while at < data.len() {
        let n = (*sizes.next().unwrap()).max(1);
        let mut stop = (at + n).min(data.len());
        let prepare = match prep {
            Prep::Never => None,
            Prep::EachChunk(len) => Some(len),
            Prep::Ranges(len) => {
                let start = at >= range_end;
                if start {
                    range_end = at.saturating_add(len as usize);
                }
                stop = stop.min(range_end);
                start.then_some(len)
            }
        };
        let input = &data[at..stop];
        let mut consumed = 0;
        if let Some(len) = prepare {
            if let Some(end) = w.prepare_end::<()>(at as u32, len).unwrap() {
                let last = w.record_horizon(end);
                let (room, wrapped) = journal.borrow_mut().make_room(w.records_to(last));
                prepare_wraps += usize::from(wrapped);
                w.plan_records(last, room);
                max_stride = max_stride.max(w.stride);
                // The plan fits the room it was given.
                let n = w.records_to(last);
                assert!(
                    n.div_ceil(w.stride) <= room.max(1),
                    "{n} / {} > {room}",
                    w.stride
                );
                while let Some(op) = w.next_prepare(end) {
                    assert_eq!(w.next_prepare(end), Some(op));
                    apply(op, &w, &[], &mut slot);
                    w.commit(op, &mut consumed);
                }
            }
            assert_eq!(consumed, 0);
            // Everything the range touches is erased now.
            let want = (at as u32).saturating_add(len).min(size);
            if want > at as u32 {
                assert!(w.erased >= want, "{} < {want}", w.erased);
            }
        }
        w.check::<()>(at as u32, input.len()).unwrap();
        while let Some(op) = w.next(input, &mut consumed, false) {
            // Asking again without committing gives the same operation.
            assert_eq!(w.next(input, &mut consumed, false), Some(op));
            if matches!(op, Op::Erase { .. }) {
                write_erases += 1;
            }
            apply(op, &w, input, &mut slot);
            w.commit(op, &mut consumed);
        }
        assert_eq!(consumed, input.len());
        at += input.len();
        assert_eq!(w.pos as usize, at);
    }
    let mut consumed = 0;
    while let Some(op) = w.next(&[], &mut consumed, true) {
        if matches!(op, Op::Erase { .. }) {
            write_erases += 1;
        }
        apply(op, &w, &[], &mut slot);
        w.commit(op, &mut consumed);
    }
    assert_eq!(w.buf_len, 0);
    // Whatever the plan, the image's last boundary is recorded (if it passed one).
    let last = size / SECTOR * SECTOR;
    if last > resume {
        assert_eq!(records.last(), Some(&last));
    }
    Sim {
        slot,
        records,
        write_erases,
        write_wraps,
        prepare_wraps,
        max_stride,
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
}

#[test]
fn writer_stores_the_image_whatever_the_chunking() {
    for size in [1usize, 3, 63, 64, 65, 4095, 4096, 4097, 10_000, 3 * 4096] {
        let data = pattern(size);
        let mut first = None;
        for chunks in [
            &[1usize][..],
            &[7],
            &[64],
            &[4096],
            &[10_000],
            &[3, 100, 5000],
        ] {
            for unit in [1u32, 4, 16, 64] {
                let (slot, records) = simulate(&data, 0, chunks, unit);
                assert_eq!(&slot[..size], &data[..]);
                // Padding to the write unit, then erased to the sector end.
                let sector_end = size.div_ceil(4096) * 4096;
                assert!(slot[size..sector_end].iter().all(|&b| b == 0xFF));
                // Sectors the image never reaches keep their old bytes.
                assert!(slot[sector_end..].iter().all(|&b| b == 0x5A));
                let want: Vec<u32> = (1..=size as u32 / SECTOR).map(|s| s * SECTOR).collect();
                assert_eq!(records, want, "size {size} chunks {chunks:?} unit {unit}");
                let first = first.get_or_insert(slot.clone());
                assert_eq!(first, &slot);
            }
        }
    }
}

#[test]
fn prepare_erases_ahead_and_writes_only_program() {
    for size in [1usize, 100, 4096, 4097, 70_000, 300_000] {
        let data = pattern(size);
        let (plain, plain_records) = simulate(&data, 0, &[4096], 4);
        for (chunks, len) in [
            (&[4096usize][..], 0x1_0000u32),
            (&[1000], 0x1_0000),
            (&[1000, 3, 70_000], 40_000),
            (&[65_536], 65_536),
            (&[7], 1),
            (&[5000], u32::MAX),
        ] {
            for unit in [1u32, 4, 64] {
                let sim =
                    simulate_prepared(&data, 0, chunks, unit, Prep::EachChunk(len), JOURNAL_ROOM);
                assert_eq!(sim.slot, plain, "size {size} {chunks:?} {len} {unit}");
                // At most 73 sectors: every one recorded, no wrap anywhere.
                assert_eq!(sim.records, plain_records);
                assert_eq!((sim.write_wraps, sim.prepare_wraps), (0, 0));
                // Each prepare covers at least the chunk that follows it.
                if len as usize >= chunks.iter().copied().max().unwrap() {
                    assert_eq!(sim.write_erases, 0, "size {size} {chunks:?} {len} {unit}");
                }
            }
        }
    }
    // Resumed: the sector at the resume point is erased by prepare, not before.
    let data = pattern(20_000);
    for resume in [4096u32, 8192] {
        let sim = simulate_prepared(
            &data,
            resume,
            &[999],
            4,
            Prep::EachChunk(8192),
            JOURNAL_ROOM,
        );
        assert_eq!(&sim.slot[..data.len()], &data[..]);
        assert_eq!((sim.write_erases, sim.write_wraps), (0, 0));
    }
}

/// The journal side of `prepare`: with 64 KiB ranges, or one prepare for the whole
/// image, the writes never wrap the journal (no erase at all during the writes). Ranges
/// that fit the journal keep a record per sector (an early wrap in `prepare` makes room
/// when needed); a region larger than the journal holds is recorded every `stride`
/// sectors, the smallest stride that fits.
#[test]
fn prepare_keeps_journal_wraps_out_of_the_writes() {
    // (image size, prepare length, chunk, expected stride, expected records)
    let cases: [(usize, u32, usize, u32, usize); 6] = [
        // 1 MiB-ish image (249 boundaries).
        (1_020_000, 0x1_0000, 4096, 1, 249),
        (1_020_000, 0x1_0000, 1000, 1, 249),
        (1_020_000, u32::MAX, 4096, 3, 83),
        // A 1.5 MiB stream (384 boundaries).
        (0x18_0000, 0x1_0000, 1460, 1, 384),
        (0x18_0000, u32::MAX, 1460, 5, 77),
        // Just more than the journal holds: every other sector.
        (85 * 4096 + 10, u32::MAX, 4096, 2, 43),
    ];
    for (size, len, chunk, stride, n_records) in cases {
        let data = pattern(size);
        let plain = simulate_prepared(&data, 0, &[chunk], 4, Prep::Never, JOURNAL_ROOM);
        let sim = simulate_prepared(&data, 0, &[chunk], 4, Prep::Ranges(len), JOURNAL_ROOM);
        assert_eq!(sim.slot, plain.slot);
        assert_eq!((sim.write_erases, sim.write_wraps), (0, 0), "{size} {len}");
        assert_eq!((sim.max_stride, sim.records.len()), (stride, n_records));
        // Resume points stay sector boundaries, at most `stride` sectors apart.
        let mut prev = 0;
        for &r in &sim.records {
            assert!(r % SECTOR == 0 && r - prev <= stride * SECTOR, "{prev} {r}");
            prev = r;
        }
        assert!(sim.records.iter().all(|r| plain.records.contains(r)));
        std::println!(
            "image {size} B, prepare {len:#x}, chunk {chunk}: {} records (stride {}), \
             journal erases in writes {} (without prepare {}), early wraps in prepare {}",
            sim.records.len(),
            sim.max_stride,
            sim.write_wraps,
            plain.write_wraps,
            sim.prepare_wraps,
        );
        if len == 0x1_0000 {
            // Per-sector records, the same wraps as without prepare, moved into prepare.
            assert_eq!(sim.records, plain.records);
            assert!(plain.write_wraps > 0);
            assert!(sim.prepare_wraps >= plain.write_wraps);
        } else {
            // One prepare for everything, on an empty journal: no wrap at all.
            assert_eq!(sim.prepare_wraps, 0);
        }
    }
    // Resumed (the journal holds just the resume record: a wrap would gain nothing): the
    // whole-image prepare strides over what is left, 344 boundaries in a room of 83.
    let data = pattern(0x18_0000);
    let resume = 40 * SECTOR;
    let sim = simulate_prepared(&data, resume, &[4096], 4, Prep::Ranges(u32::MAX), 84);
    assert_eq!(
        (sim.write_erases, sim.write_wraps, sim.prepare_wraps),
        (0, 0, 0)
    );
    assert_eq!((sim.max_stride, sim.records.len()), (5, 69));
    let sim = simulate_prepared(&data, resume, &[4096], 4, Prep::Ranges(0x1_0000), 84);
    assert_eq!((sim.write_erases, sim.write_wraps), (0, 0));
    assert_eq!(sim.max_stride, 1);
    // A prepare again inside a strided region (here before every chunk) never needs an
    // erase in the writes either; it may wrap early to record more densely.
    for (chunks, len) in [(&[4096usize][..], u32::MAX), (&[70_000, 5000], 80_000)] {
        for room in [20, 84] {
            let sim = simulate_prepared(&data, 0, chunks, 4, Prep::EachChunk(len), room);
            assert_eq!((sim.write_erases, sim.write_wraps), (0, 0), "{chunks:?}");
        }
    }
}

#[test]
fn record_plan_rules() {
    let mut w = Writer::new(0, SECTOR, 4, 100 * SECTOR + 5, 0);
    // Without a plan: every boundary, one at a time.
    assert_eq!(w.due_record(), None);
    w.flushed = SECTOR;
    assert_eq!(w.due_record(), Some(SECTOR));
    w.recorded = SECTOR;
    // 40 boundaries up to sector 41 in a room of 10: every 4th, and the last.
    assert_eq!(w.record_horizon(41 * SECTOR + 1), 41 * SECTOR);
    assert_eq!(w.records_to(41 * SECTOR), 40);
    w.plan_records(41 * SECTOR, 10);
    assert_eq!(w.stride, 4);
    let mut due = Vec::new();
    for s in 2..=45 {
        w.flushed = s * SECTOR;
        if let Some(r) = w.due_record() {
            due.push(r / SECTOR);
            w.recorded = r;
        }
    }
    assert_eq!(due, [5, 9, 13, 17, 21, 25, 29, 33, 37, 41, 42, 43, 44, 45]);
    // A room of 0 is taken as 1; fitting boundaries keep stride 1.
    w.plan_records(60 * SECTOR, 0);
    assert_eq!(w.stride, 15);
    w.plan_records(60 * SECTOR, 15);
    assert_eq!(w.stride, 1);
    // The horizon covers what is erased already and never passes the image end.
    w.erased = 70 * SECTOR;
    assert_eq!(w.record_horizon(50 * SECTOR), 70 * SECTOR);
    assert_eq!(w.record_horizon(u32::MAX), 100 * SECTOR);
    // A boundary passed before a re-plan that lands on no stride point of the new plan
    // is simply not recorded; the next one the plan asks for is.
    let mut w = Writer::new(0, SECTOR, 4, 100 * SECTOR, 0);
    w.plan_records(90 * SECTOR, 30);
    assert_eq!(w.stride, 3);
    w.flushed = 2 * SECTOR + 8;
    assert_eq!(w.due_record(), None);
    w.plan_records(20 * SECTOR, 4);
    assert_eq!(w.stride, 5);
    assert_eq!(w.due_record(), None);
    w.flushed = 5 * SECTOR;
    assert_eq!(w.due_record(), Some(5 * SECTOR));
}

#[test]
fn prepare_splits_at_64_kib_blocks() {
    // A slot at 0x11_0000 (64 KiB aligned), image of 300 000 bytes (74 sectors).
    let base = 0x11_0000;
    let mut w = Writer::new(base, SECTOR, 4, 300_000, 0);
    let erases = |w: &mut Writer, offset: u32, len: u32| {
        let end = w.prepare_end::<()>(offset, len).unwrap().unwrap_or(0);
        let mut ops = Vec::new();
        while let Some(op) = w.next_prepare(end) {
            let Op::Erase { from, to } = op else {
                unreachable!()
            };
            ops.push((from - base, to - base));
            w.commit(op, &mut 0);
        }
        ops
    };
    assert_eq!(erases(&mut w, 0, 0x1_0000), [(0, 0x1_0000)]);
    // Again: nothing left to erase.
    assert_eq!(erases(&mut w, 0, 0x1_0000), []);
    assert_eq!(erases(&mut w, 0, 0), []);
    // One byte into the next block.
    assert_eq!(erases(&mut w, 0, 0x1_0001), [(0x1_0000, 0x1_1000)]);
    // A range that crosses a block boundary: two calls, split at the boundary.
    assert_eq!(
        erases(&mut w, 0, 0x2_8000),
        [(0x1_1000, 0x2_0000), (0x2_0000, 0x2_8000)]
    );
    // Clamped to the image end (73.2 sectors: 74 sectors, 0x4A000).
    assert_eq!(
        erases(&mut w, 0, u32::MAX),
        [
            (0x2_8000, 0x3_0000),
            (0x3_0000, 0x4_0000),
            (0x4_0000, 0x4_A000)
        ]
    );
    assert_eq!(erases(&mut w, 0, u32::MAX), []);
    // An unaligned slot: splits follow flash addresses, not slot offsets.
    let base = 0x11_3000;
    let mut w = Writer::new(base, SECTOR, 4, 300_000, 0);
    let end = w.prepare_end::<()>(0, 0x1_0000).unwrap().unwrap();
    let mut ops = Vec::new();
    while let Some(op) = w.next_prepare(end) {
        ops.push(op);
        w.commit(op, &mut 0);
    }
    assert_eq!(
        ops,
        [
            Op::Erase {
                from: 0x11_3000,
                to: 0x12_0000
            },
            Op::Erase {
                from: 0x12_0000,
                to: 0x12_3000
            }
        ]
    );
}

#[test]
fn writer_resumes_at_a_sector_boundary() {
    let data = pattern(5 * 4096 + 100);
    for resume in [4096u32, 8192, 5 * 4096] {
        let (slot, records) = simulate(&data, resume, &[999], 4);
        assert_eq!(&slot[..data.len()], &data[..]);
        assert_eq!(
            records.first().copied(),
            Some(resume + SECTOR).filter(|&r| r <= 5 * 4096)
        );
    }
    // Resuming at the very end: nothing to write, nothing to record.
    let data = pattern(2 * 4096);
    let (slot, records) = simulate(&data, 2 * 4096, &[1], 4);
    assert_eq!(&slot[..data.len()], &data[..]);
    assert!(records.is_empty());
}

#[test]
fn writer_input_checks() {
    let mut w = Writer::new(0, SECTOR, 4, 100, 0);
    assert_eq!(
        w.check::<()>(1, 1),
        Err(SinkError::OutOfOrder {
            expected: 0,
            got: 1
        })
    );
    assert_eq!(
        w.check::<()>(0, 101),
        Err(SinkError::PastImageEnd {
            size: 100,
            end: 101
        })
    );
    assert_eq!(w.check::<()>(0, 100), Ok(()));
    let mut consumed = 0;
    assert_eq!(w.next(&[1, 2, 3], &mut consumed, false), None);
    assert_eq!((consumed, w.pos, w.buf_len), (3, 3, 3));
    assert_eq!(w.check::<()>(3, 97), Ok(()));
    // prepare: at the write position only; clamped to the image; empty is nothing.
    assert_eq!(
        w.prepare_end::<()>(0, 10),
        Err(SinkError::OutOfOrder {
            expected: 3,
            got: 0
        })
    );
    assert_eq!(w.prepare_end::<()>(3, 1), Ok(Some(SECTOR)));
    assert_eq!(w.prepare_end::<()>(3, u32::MAX), Ok(Some(SECTOR)));
    assert_eq!(w.prepare_end::<()>(3, 0), Ok(None));
    // The sector holding the 3 buffered bytes is not erased yet: prepare erases it.
    assert_eq!(
        w.next_prepare(SECTOR),
        Some(Op::Erase {
            from: 0,
            to: SECTOR
        })
    );
}

fn layout(count: u8, factory: bool) -> SlotLayout {
    let mut slots = [(0, 0); 16];
    for (i, s) in slots.iter_mut().enumerate().take(usize::from(count)) {
        *s = (0x10000 + i as u32 * 0x100000, 0x100000);
    }
    SlotLayout {
        otadata: 0xD000,
        ota_count: count,
        slots,
        factory: factory.then_some((0xF00_0000, 0x10_0000)),
    }
}

const G: FlashGeometry = FlashGeometry {
    read: 1,
    write: 4,
    erase: 4096,
};

#[test]
fn target_is_never_the_running_slot() {
    let t = |l: &SlotLayout, r| plan_target::<()>(l, r, G).map(|t| t.slot);
    for count in 2..=16u8 {
        for r in 0..count {
            let slot = t(&layout(count, false), AppSlot::Ota(r)).unwrap();
            assert_ne!(slot, r);
            assert_eq!(slot, (r + 1) % count);
        }
    }
    assert_eq!(t(&layout(1, true), AppSlot::Factory), Ok(0));
    assert_eq!(t(&layout(2, true), AppSlot::Factory), Ok(0));
    assert_eq!(
        t(&layout(1, true), AppSlot::Ota(0)),
        Err(SinkError::NoOtaSlots)
    );
    assert_eq!(
        t(&layout(1, false), AppSlot::Ota(0)),
        Err(SinkError::NoOtaSlots)
    );
    assert_eq!(
        t(&layout(0, true), AppSlot::Factory),
        Err(SinkError::NoOtaSlots)
    );
    let target = plan_target::<()>(&layout(2, false), AppSlot::Ota(0), G).unwrap();
    assert_eq!(
        target,
        UpdateTarget {
            slot: 1,
            offset: 0x110000,
            size: 0x100000,
            capacity: 0xFF000,
            journal: 0x20F000
        }
    );
    // A slot of one sector has no room for an image and a journal.
    let mut l = layout(2, false);
    l.slots[1] = (0x110000, 0x1000);
    assert!(matches!(
        plan_target::<()>(&l, AppSlot::Ota(0), G),
        Err(SinkError::BadSlot { slot: 1, .. })
    ));
    l.slots[1] = (0x110800, 0x2000);
    assert!(matches!(
        plan_target::<()>(&l, AppSlot::Ota(0), G),
        Err(SinkError::BadSlot { .. })
    ));
}

#[test]
fn geometry_rules() {
    let ok =
        |read, write, erase| check_geometry::<()>(FlashGeometry { read, write, erase }).is_ok();
    assert!(ok(1, 4, 4096));
    assert!(ok(4, 4, 4096));
    assert!(ok(64, 64, 256));
    assert!(!ok(0, 4, 4096));
    assert!(!ok(1, 0, 4096));
    assert!(!ok(1, 4, 0));
    assert!(!ok(1, 128, 4096));
    assert!(!ok(128, 4, 4096));
    assert!(!ok(1, 48, 4096));
    assert!(!ok(1, 4, 8192));
    assert!(!ok(1, 4, 3000));
}

#[test]
fn resume_rules() {
    let image = ImageDescriptor {
        id: [1; 32],
        size: 100_000,
    };
    let target = plan_target::<()>(&layout(2, false), AppSlot::Ota(0), G).unwrap();
    let rec = |id, size, offset| JournalRecord { id, size, offset };
    let r = |rec: Option<JournalRecord>| resume_offset(rec.as_ref(), &image, &target, SECTOR);
    assert_eq!(r(None), None);
    assert_eq!(r(Some(rec([1; 32], 100_000, 8192))), Some(8192));
    assert_eq!(r(Some(rec([1; 32], 100_000, 0))), Some(0));
    assert_eq!(r(Some(rec([2; 32], 100_000, 8192))), None);
    assert_eq!(r(Some(rec([1; 32], 100_001, 8192))), None);
    assert_eq!(r(Some(rec([1; 32], 100_000, 8191))), None);
    assert_eq!(r(Some(rec([1; 32], 100_000, 102_400))), None);
}

#[test]
fn running_app_and_states() {
    use super::super::otadata::OtaImageState::*;
    let e = |seq, state| OtaSelectEntry::new(seq, state);
    let l = layout(2, false);
    let erased = [OtaSelectEntry::ERASED; 2];
    let run = |entries: &[OtaSelectEntry; 2], cfg| resolve_running::<()>(&l, entries, cfg);
    assert_eq!(run(&erased, None), Ok(AppSlot::Ota(0)));
    assert_eq!(
        resolve_running::<()>(&layout(2, true), &erased, None),
        Ok(AppSlot::Factory)
    );
    assert_eq!(run(&erased, Some(1)), Ok(AppSlot::Ota(1)));
    assert_eq!(
        run(&erased, Some(2)),
        Err(SinkError::BadRunningSlot { slot: 2, count: 2 })
    );
    let rolled_back = [e(1, Valid), e(2, Aborted)];
    assert_eq!(run(&rolled_back, None), Ok(AppSlot::Ota(0)));
    assert_eq!(state_of(&rolled_back, 2, 0), Some(Valid));
    assert_eq!(state_of(&rolled_back, 2, 1), None);
    // After activation, before the reset: both entries valid, the old one still found.
    let pending = [e(1, Undefined), e(2, New)];
    assert_eq!(state_of(&pending, 2, 0), Some(Undefined));
    assert_eq!(state_of(&pending, 2, 1), Some(New));
    // Two valid entries for the same slot: the active (higher) one wins.
    let same = [e(3, Valid), e(1, Invalid)];
    assert_eq!(state_of(&same, 2, 0), Some(Valid));
    let same = [e(1, Undefined), e(3, Valid)];
    assert_eq!(state_of(&same, 2, 0), Some(Valid));
}

#[test]
fn unaligned_read_steps() {
    assert_eq!(read_step(0, 100, 1), ReadStep::Direct(100));
    assert_eq!(read_step(8, 100, 4), ReadStep::Direct(100));
    assert_eq!(read_step(8, 102, 4), ReadStep::Direct(100));
    assert_eq!(
        read_step(8, 2, 4),
        ReadStep::Bounce {
            aligned: 8,
            len: 4,
            skip: 0,
            take: 2
        }
    );
    assert_eq!(
        read_step(9, 100, 4),
        ReadStep::Bounce {
            aligned: 8,
            len: 64,
            skip: 1,
            take: 63
        }
    );
    assert_eq!(
        read_step(70, 3, 64),
        ReadStep::Bounce {
            aligned: 64,
            len: 64,
            skip: 6,
            take: 3
        }
    );
}

#[test]
fn verifier_reads_in_read_size_chunks() {
    let target = UpdateTarget {
        slot: 1,
        offset: 0x10000,
        size: 0x10000,
        capacity: 0xF000,
        journal: 0x1F000,
    };
    let v = Verifier::new(&SinkConfig::new(ChipId::ESP32S3), &target, 300, 16);
    assert_eq!(v.next_read(), Some((0, 256)));
    let mut v = v;
    v.feed(&[0u8; 256]);
    assert_eq!(v.next_read(), Some((256, 48)));
    v.feed(&[0u8; 48]);
    assert_eq!(v.done, 300);
    assert_eq!(v.next_read(), None);
    assert!(matches!(
        v.finish::<()>(&ExpectedImage::sha256([0; 32])),
        Err(SinkError::HashMismatch { .. })
    ));
}

// ----- idle erase ---------------------------------------------------------------------

use crate::block_on;
use crate::ota::esp_idf::image::testing::{AppParts, TestImage};
use crate::ota::esp_idf::partition::{
    self as table, AppSubType, DataSubType, PartitionEntry, PartitionType,
};
use crate::ota::mem_flash::{MemFlash, MemFlashError};

/// Size of the idle-erase test chip.
pub(super) const IDLE_CHIP: usize = 0x10_0000;
/// ota_0 of the idle-erase test chip: where the old image runs from.
pub(super) const OTA0: (u32, u32) = (0x1_0000, 0x4_0000);
/// A 64 KiB-aligned ota_1 of 64 sectors (63 of image area: 3 blocks and 15 sectors).
pub(super) const ALIGNED: (u32, u32) = (0x5_0000, 0x4_0000);
/// An ota_1 of 96 sectors (95 of image area: more records than one journal sector
/// holds when erased sector by sector).
pub(super) const LARGE: (u32, u32) = (0x5_0000, 0x6_0000);

pub(super) fn mem_flash(mem: &mut [u8]) -> MemFlash<'_> {
    MemFlash::new(mem)
}

fn idle_config(unit: IdleEraseUnit) -> SinkConfig {
    SinkConfig::new(ChipId::ESP32S3).with_idle_erase_unit(unit)
}

/// A valid ESP32-S3 app of about `payload` bytes.
pub(super) fn app_image(seed: u8, payload: usize) -> (Vec<u8>, [u8; 32]) {
    let text: Vec<u8> = (0..payload)
        .map(|i| (i as u8).wrapping_mul(seed) ^ (i >> 8) as u8)
        .collect();
    let parts = AppParts {
        text: &text,
        ..AppParts::default()
    };
    let mut buf = vec![0u8; payload + 4096];
    let len = TestImage::new(ChipId::ESP32S3.0)
        .build_app(&mut buf, &parts)
        .unwrap();
    buf.truncate(len);
    let sha = Sha256::digest(&buf).into();
    (buf, sha)
}

/// A 1 MiB erased chip with a partition table: otadata (erased) at `0xD000` and `apps`.
pub(super) fn chip_with(apps: &[(AppSubType, (u32, u32), &str)]) -> Vec<u8> {
    let mut mem = vec![0xFFu8; IDLE_CHIP];
    let otadata = PartitionType::Data(DataSubType::Ota);
    let mut entries = vec![PartitionEntry::new(otadata, 0xD000, 0x2000, "otadata").unwrap()];
    entries.extend(apps.iter().map(|&(app, (offset, size), name)| {
        PartitionEntry::new(PartitionType::App(app), offset, size, name).unwrap()
    }));
    table::encode(&entries, &mut mem[0x8000..0x9000], true).unwrap();
    mem
}

/// A 1 MiB chip: otadata (erased: `ota_0` boots), `ota_0` with an app, `ota_1` at
/// `slot` full of old bytes (`0x5A`) and an erased journal sector.
pub(super) fn idle_chip(slot: (u32, u32)) -> Vec<u8> {
    let mut mem = chip_with(&[
        (AppSubType::Ota(0), OTA0, "ota_0"),
        (AppSubType::Ota(1), slot, "ota_1"),
    ]);
    let (old, _) = app_image(3, 20_000);
    mem[OTA0.0 as usize..][..old.len()].copy_from_slice(&old);
    let (start, end) = (
        slot.0 as usize,
        (slot.0 + slot.1) as usize - SECTOR as usize,
    );
    mem[start..end].fill(0x5A);
    mem
}

/// The flash address each idle-erase step of `slot` ends at, worked out independently.
fn step_ends(slot: (u32, u32), unit: IdleEraseUnit) -> Vec<u32> {
    let end = slot.0 + slot.1 - SECTOR;
    let mut at = slot.0;
    let mut ends = Vec::new();
    while at < end {
        let block =
            unit == IdleEraseUnit::Block && at.is_multiple_of(0x1_0000) && at + 0x1_0000 <= end;
        at += if block { 0x1_0000 } else { SECTOR };
        ends.push(at);
    }
    ends
}

fn erased(mem: &[u8], from: u32, to: u32) -> bool {
    mem[from as usize..to as usize].iter().all(|&b| b == 0xFF)
}

pub(super) type MemSink<'a, 'm> = EspIdfSink<&'a mut MemFlash<'m>>;

/// Runs idle-erase steps until `Done`; returns how many.
fn erase_all(sink: &mut MemSink<'_, '_>) -> usize {
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(steps < 1000);
        if sink.erase_idle_step().unwrap() == IdleErase::Done {
            return steps;
        }
    }
}

/// What each phase of an update cost on flash.
#[derive(Debug, Default)]
struct Phases {
    begin_erases: u32,
    prepare_erases: u32,
    write_erases: u32,
    begin_reads: u32,
    resume: u32,
}

/// An update the way the flow does `StreamErasedAhead`: begin, one prepare for the
/// whole image, 256-byte writes, finish. Counts the erases of each phase.
fn update_counting(sink: &mut MemSink<'_, '_>, image: &[u8], sha: [u8; 32]) -> Phases {
    let desc = ImageDescriptor {
        id: sha,
        size: image.len() as u32,
    };
    let s0 = sink.flash.stats();
    let resume = sink.begin(&desc).unwrap();
    let s1 = sink.flash.stats();
    sink.prepare(resume.offset, u32::MAX).unwrap();
    let s2 = sink.flash.stats();
    for (i, piece) in image[resume.offset as usize..].chunks(256).enumerate() {
        sink.write(resume.offset + i as u32 * 256, piece).unwrap();
    }
    let s3 = sink.flash.stats();
    sink.finish(&ExpectedImage::sha256(sha)).unwrap();
    Phases {
        begin_erases: s1.erases - s0.erases,
        prepare_erases: s2.erases - s1.erases,
        write_erases: s3.erases - s2.erases,
        begin_reads: s1.reads - s0.reads,
        resume: resume.offset,
    }
}

#[test]
#[allow(clippy::drop_non_drop)] // `drop(sink)`: the device reboots.
fn idle_erase_runs_to_completion_one_unit_per_step() {
    for (slot, unit, steps) in [
        (ALIGNED, IdleEraseUnit::Block, 3 + 15),
        (ALIGNED, IdleEraseUnit::Sector, 63),
        (LARGE, IdleEraseUnit::Block, 5 + 15),
        (LARGE, IdleEraseUnit::Sector, 95),
    ] {
        let mut mem = idle_chip(slot);
        let before = mem.clone();
        let ends = step_ends(slot, unit);
        assert_eq!(ends.len(), steps);
        let total = slot.1 - SECTOR;
        let mut f = mem_flash(&mut mem);
        let mut sink = EspIdfSink::new(&mut f, idle_config(unit));
        assert_eq!(
            sink.idle_erase_state().unwrap(),
            IdleEraseState::Partial { erased: 0, total }
        );
        let mut wraps = 0;
        for (i, &end) in ends.iter().enumerate() {
            let s0 = sink.flash.stats();
            let step = sink.erase_idle_step().unwrap();
            let s1 = sink.flash.stats();
            // One erase of the unit and one record; a journal wrap adds a tombstone
            // and the journal sector's erase.
            let wrap = s1.erases - s0.erases == 2;
            wraps += usize::from(wrap);
            assert_eq!(s1.writes - s0.writes, 1 + u32::from(wrap), "step {i}");
            let unit_len = end - ends.get(i.wrapping_sub(1)).copied().unwrap_or(slot.0);
            assert_eq!(
                s1.bytes_erased - s0.bytes_erased,
                u64::from(unit_len) + if wrap { 4096 } else { 0 }
            );
            let done = end - slot.0;
            let mem = sink.flash.as_slice();
            assert!(erased(mem, slot.0, end), "step {i}");
            assert!(
                mem[end as usize..(slot.0 + total) as usize]
                    .iter()
                    .all(|&b| b == 0x5A)
            );
            if i + 1 == ends.len() {
                assert_eq!(step, IdleErase::Done);
                assert_eq!(
                    sink.idle_erase_state().unwrap(),
                    IdleEraseState::Erased { total }
                );
            } else {
                assert_eq!(
                    step,
                    IdleErase::Progress {
                        erased: done,
                        total
                    }
                );
                assert_eq!(
                    sink.idle_erase_state().unwrap(),
                    IdleEraseState::Partial {
                        erased: done,
                        total
                    }
                );
            }
        }
        assert_eq!(wraps, usize::from(steps > 84), "{slot:?} {unit:?}");
        assert!(sink.idle_erase_state().unwrap().is_erased());
        // Nothing left: no write, no erase.
        let s0 = sink.flash.stats();
        assert_eq!(sink.erase_idle_step().unwrap(), IdleErase::Done);
        let s1 = sink.flash.stats();
        assert_eq!((s1.writes, s1.erases), (s0.writes, s0.erases));
        drop(sink);
        // Everything but the slot's image area and journal is as it was.
        let slot_end = (slot.0 + slot.1) as usize;
        assert_eq!(mem[..slot.0 as usize], before[..slot.0 as usize]);
        assert_eq!(mem[slot_end..], before[slot_end..]);
    }
}

#[test]
#[allow(clippy::drop_non_drop)] // `drop(sink)`: the device reboots.
fn an_update_into_an_idle_erased_slot_only_programs() {
    let (new, sha) = app_image(9, 150_000);
    for slot in [ALIGNED, LARGE] {
        // Without idle erase: prepare erases the image's sectors.
        let mut plain = idle_chip(slot);
        let mut f = mem_flash(&mut plain);
        let mut sink = EspIdfSink::new(&mut f, idle_config(IdleEraseUnit::Block));
        let p = update_counting(&mut sink, &new, sha);
        assert!(p.prepare_erases >= 3, "{p:?}");
        assert_eq!((p.write_erases, p.begin_erases), (0, 0), "{p:?}");
        assert_eq!(sink.boot_choice().unwrap().ota_slot(), Some(1));
        drop(sink);

        let mut mem = idle_chip(slot);
        let mut f = mem_flash(&mut mem);
        let mut sink = EspIdfSink::new(&mut f, idle_config(IdleEraseUnit::Block));
        erase_all(&mut sink);
        let p = update_counting(&mut sink, &new, sha);
        // begin clears the journal (its sector erase) and reads the image's sectors
        // back; prepare and the writes erase nothing at all.
        assert_eq!(
            (p.begin_erases, p.prepare_erases, p.write_erases, p.resume),
            (1, 0, 0, 0),
            "{p:?}"
        );
        let image_sectors = new.len().div_ceil(4096) as u32;
        assert!(p.begin_reads >= image_sectors * 4096 / 64, "{p:?}");
        assert_eq!(sink.boot_choice().unwrap().ota_slot(), Some(1));
        // The record is gone: the slot now holds an image.
        assert_eq!(
            sink.idle_erase_state().unwrap(),
            IdleEraseState::Partial {
                erased: 0,
                total: slot.1 - SECTOR
            }
        );
        drop(sink);
        assert_eq!(mem[slot.0 as usize..][..new.len()], new[..]);
        // The same bytes as the update without idle erase, up to the image's end.
        assert_eq!(
            mem[slot.0 as usize..][..new.len()],
            plain[slot.0 as usize..][..new.len()]
        );
    }
}

#[test]
#[allow(clippy::drop_non_drop)] // `drop(sink)`: the device reboots.
fn the_read_back_check_falls_back_to_erasing() {
    let (new, sha) = app_image(11, 60_000);
    let slot = ALIGNED;
    // A byte written into sector 5 after the idle erase: sectors 0..5 are trusted,
    // the rest of the image's is erased normally (by prepare).
    let mut mem = idle_chip(slot);
    let mut f = mem_flash(&mut mem);
    let mut sink = EspIdfSink::new(&mut f, idle_config(IdleEraseUnit::Block));
    erase_all(&mut sink);
    sink.flash.as_mut_slice()[(slot.0 + 5 * SECTOR + 100) as usize] = 0x00;
    let desc = ImageDescriptor {
        id: sha,
        size: new.len() as u32,
    };
    sink.begin(&desc).unwrap();
    let s0 = sink.flash.stats();
    sink.prepare(0, u32::MAX).unwrap();
    let s1 = sink.flash.stats();
    let image_end = (new.len() as u32).div_ceil(SECTOR) * SECTOR;
    assert_eq!(
        s1.bytes_erased - s0.bytes_erased,
        u64::from(image_end - 5 * SECTOR)
    );
    for (i, piece) in new.chunks(256).enumerate() {
        sink.write(i as u32 * 256, piece).unwrap();
    }
    sink.finish(&ExpectedImage::sha256(sha)).unwrap();
    drop(sink);

    // A record that lies (nothing was erased): nothing is trusted, everything erased.
    let mut mem = idle_chip(slot);
    let mut f = mem_flash(&mut mem);
    let mut journal = Journal::new(
        slot.0 + slot.1 - SECTOR,
        slot.0 + slot.1,
        FlashGeometry::of::<MemFlash<'_>>(),
    )
    .unwrap();
    journal
        .record(
            &mut f,
            &JournalRecord::erase_progress(slot.1 - SECTOR, slot.1 - SECTOR),
        )
        .unwrap();
    let mut sink = EspIdfSink::new(&mut f, idle_config(IdleEraseUnit::Block));
    assert!(sink.idle_erase_state().unwrap().is_erased());
    let p = update_counting(&mut sink, &new, sha);
    // The first 64 bytes gave it away.
    assert_eq!(
        p.prepare_erases,
        1 + u32::from(image_end > 0x1_0000),
        "{p:?}"
    );
    assert_eq!(p.write_erases, 0);
    drop(sink);
    assert_eq!(mem[slot.0 as usize..][..new.len()], new[..]);

    // Partly erased (3 sectors recorded): the rest is erased normally.
    let mut mem = idle_chip(slot);
    let mut f = mem_flash(&mut mem);
    let mut sink = EspIdfSink::new(&mut f, idle_config(IdleEraseUnit::Sector));
    for _ in 0..3 {
        sink.erase_idle_step().unwrap();
    }
    let desc = ImageDescriptor {
        id: sha,
        size: new.len() as u32,
    };
    sink.begin(&desc).unwrap();
    let s0 = sink.flash.stats();
    sink.prepare(0, u32::MAX).unwrap();
    let s1 = sink.flash.stats();
    assert_eq!(
        s1.bytes_erased - s0.bytes_erased,
        u64::from(image_end - 3 * SECTOR)
    );
}

#[test]
#[allow(clippy::drop_non_drop)] // `drop(sink)`: the device reboots.
fn idle_erase_refuses_what_it_must_not_erase() {
    let (new, sha) = app_image(13, 30_000);
    let desc = ImageDescriptor {
        id: sha,
        size: new.len() as u32,
    };
    let slot = ALIGNED;
    let total = slot.1 - SECTOR;
    let mut mem = idle_chip(slot);
    let mut f = mem_flash(&mut mem);
    // A download with 3 durable sectors, cut.
    let mut sink = EspIdfSink::new(&mut f, SinkConfig::new(ChipId::ESP32S3));
    sink.begin(&desc).unwrap();
    sink.write(0, &new[..3 * 4096 + 10]).unwrap();
    drop(sink);
    let mut sink = EspIdfSink::new(&mut f, SinkConfig::new(ChipId::ESP32S3));
    assert_eq!(
        sink.idle_erase_state().unwrap(),
        IdleEraseState::DownloadPending {
            offset: 3 * SECTOR,
            size: desc.size
        }
    );
    let s0 = sink.flash.stats();
    assert_eq!(
        sink.erase_idle_step(),
        Err(SinkError::DownloadPending {
            offset: 3 * SECTOR,
            size: desc.size
        })
    );
    let s1 = sink.flash.stats();
    assert_eq!((s1.writes, s1.erases), (s0.writes, s0.erases));
    // Discarded: idle erase goes ahead; abort keeps its progress.
    sink.abort().unwrap();
    assert_eq!(
        sink.erase_idle_step().unwrap(),
        IdleErase::Progress {
            erased: 0x1_0000,
            total
        }
    );
    sink.abort().unwrap();
    assert_eq!(
        sink.idle_erase_state().unwrap(),
        IdleEraseState::Partial {
            erased: 0x1_0000,
            total
        }
    );
    // An update in progress in this value (nothing durable yet) is closed by a step.
    sink.begin(&desc).unwrap();
    sink.write(0, &new[..100]).unwrap();
    sink.erase_idle_step().unwrap();
    assert_eq!(sink.write(100, &new[100..200]), Err(SinkError::NotStarted));
    // After finish, before the reset: otadata selects the new slot, not the running one.
    erase_all(&mut sink);
    update_counting(&mut sink, &new, sha);
    let s0 = sink.flash.stats();
    assert_eq!(
        sink.erase_idle_step(),
        Err(SinkError::RunningNotSelected {
            running: AppSlot::Ota(0),
            selected: AppSlot::Ota(1)
        })
    );
    assert_eq!(sink.flash.stats().writes, s0.writes);
    drop(sink);

    // With rollback: the new app runs unconfirmed (NEW), so ota_0 is its fallback.
    let mut mem = idle_chip(slot);
    let mut f = mem_flash(&mut mem);
    let rollback = SinkConfig::new(ChipId::ESP32S3).with_rollback(true);
    let mut sink = EspIdfSink::new(&mut f, rollback);
    update_counting(&mut sink, &new, sha);
    drop(sink);
    let old_slot = f.as_slice()[OTA0.0 as usize..(OTA0.0 + OTA0.1) as usize].to_vec();
    let mut sink = EspIdfSink::new(&mut f, rollback.with_running_slot(Some(1)));
    assert_eq!(
        sink.erase_idle_step(),
        Err(SinkError::NotConfirmed {
            state: OtaImageState::New
        })
    );
    assert_eq!(
        &sink.flash.as_slice()[OTA0.0 as usize..(OTA0.0 + OTA0.1) as usize],
        &old_slot[..]
    );
    // Confirmed: the next step erases ota_0, never the running ota_1.
    sink.mark_valid().unwrap();
    let running = sink.flash.as_slice()[slot.0 as usize..(slot.0 + slot.1) as usize].to_vec();
    assert_eq!(
        sink.erase_idle_step().unwrap(),
        IdleErase::Progress {
            erased: 0x1_0000,
            total: OTA0.1 - SECTOR
        }
    );
    erase_all(&mut sink);
    let mem = sink.flash.as_slice();
    assert!(erased(mem, OTA0.0, OTA0.0 + OTA0.1 - SECTOR));
    assert_eq!(
        &mem[slot.0 as usize..(slot.0 + slot.1) as usize],
        &running[..]
    );
}

/// A power cut at every flash operation of an idle-erase pass: nothing outside the slot
/// changes, the record never claims more than is erased, a cut costs at most the unit
/// in progress (or, during a journal wrap, the pass so far), and a following pass and
/// update succeed with no erase after `begin`.
#[allow(clippy::drop_non_drop)] // `drop(sink)`: the device reboots.
fn idle_erase_cut_sweep(slot: (u32, u32), unit: IdleEraseUnit) -> (usize, usize) {
    let (new, sha) = app_image(17, 100_000);
    let config = idle_config(unit);
    let total = slot.1 - SECTOR;
    let ops = {
        let mut mem = idle_chip(slot);
        let mut f = mem_flash(&mut mem);
        erase_all(&mut EspIdfSink::new(&mut f, config));
        f.stats().writes + f.stats().erases
    };
    let (mut restarted, mut cuts) = (0, 0);
    for k in 0..ops {
        let base = idle_chip(slot);
        let mut mem = base.clone();
        let mut f = mem_flash(&mut mem);
        f.fail_after(k);
        let mut sink = EspIdfSink::new(&mut f, config);
        let mut last = 0;
        loop {
            match sink.erase_idle_step() {
                Ok(IdleErase::Progress { erased, .. }) => last = erased,
                Ok(IdleErase::Done) => panic!("cut {k} never fired"),
                Err(SinkError::Flash {
                    error: MemFlashError::PowerCut,
                    ..
                }) => break,
                Err(e) => panic!("cut {k}: {e:?}"),
            }
        }
        cuts += 1;
        drop(sink);
        // "Reboot." Outside the slot nothing changed.
        let slot_end = (slot.0 + slot.1) as usize;
        assert_eq!(f.as_slice()[..slot.0 as usize], base[..slot.0 as usize]);
        assert_eq!(f.as_slice()[slot_end..], base[slot_end..]);
        let mut sink = EspIdfSink::new(&mut f, config);
        let recorded = match sink.idle_erase_state().unwrap() {
            IdleEraseState::Partial { erased, .. } => erased,
            other => panic!("cut {k}: {other:?}"),
        };
        // The step that was cut is done again; a cut journal wrap starts over.
        assert!(
            recorded == last || recorded == 0,
            "cut {k}: {recorded} {last}"
        );
        restarted += usize::from(recorded == 0 && last > 0);
        assert!(erased(sink.flash.as_slice(), slot.0, slot.0 + recorded));
        let before = sink.flash.stats().erases;
        let steps = erase_all(&mut sink);
        let expected = step_ends(slot, unit)
            .iter()
            .filter(|&&e| e > slot.0 + recorded)
            .count();
        assert_eq!(steps, expected.max(1), "cut {k}");
        assert!(sink.flash.stats().erases - before >= expected as u32);
        assert!(erased(sink.flash.as_slice(), slot.0, slot.0 + total));
        let p = update_counting(&mut sink, &new, sha);
        assert_eq!((p.prepare_erases, p.write_erases), (0, 0), "cut {k}");
        assert_eq!(sink.boot_choice().unwrap().ota_slot(), Some(1));
    }
    (cuts, restarted)
}

#[test]
fn idle_erase_survives_a_power_cut_at_every_operation() {
    // Blocks: 18 steps, no journal wrap: no cut loses more than its unit.
    let (cuts, restarted) = idle_erase_cut_sweep(ALIGNED, IdleEraseUnit::Block);
    assert_eq!((cuts, restarted), (36, 0));
    // Sectors over 95 steps: one journal wrap (tombstone, erase, record), where a cut
    // during the erase or the record after it loses the progress.
    let (cuts, restarted) = idle_erase_cut_sweep(LARGE, IdleEraseUnit::Sector);
    assert_eq!((cuts, restarted), (95 * 2 + 2, 2));
}

#[test]
fn async_idle_erase_writes_the_same_bytes() {
    let (new, sha) = app_image(19, 40_000);
    let desc = ImageDescriptor {
        id: sha,
        size: new.len() as u32,
    };
    for unit in [IdleEraseUnit::Block, IdleEraseUnit::Sector] {
        let mut mem_a = idle_chip(LARGE);
        let mut mem_b = mem_a.clone();
        let mut fa = mem_flash(&mut mem_a);
        let mut fb = mem_flash(&mut mem_b);
        let mut a = AsyncEspIdfSink::new(&mut fa, idle_config(unit));
        let mut b = EspIdfSink::new(&mut fb, idle_config(unit));
        loop {
            let sa = block_on(a.erase_idle_step()).unwrap();
            let sb = b.erase_idle_step().unwrap();
            assert_eq!(sa, sb);
            assert_eq!(
                block_on(a.idle_erase_state()).unwrap(),
                b.idle_erase_state().unwrap()
            );
            assert_eq!(a.flash.as_slice(), b.flash.as_slice());
            if sa == IdleErase::Done {
                break;
            }
        }
        block_on(async {
            AsyncOtaSink::begin(&mut a, &desc).await.unwrap();
            AsyncOtaSink::prepare(&mut a, 0, u32::MAX).await.unwrap();
            let erases = a.flash.stats().erases;
            AsyncOtaSink::write(&mut a, 0, &new).await.unwrap();
            assert_eq!(a.flash.stats().erases, erases);
            AsyncOtaSink::finish(&mut a, &ExpectedImage::sha256(sha))
                .await
                .unwrap();
        });
        b.begin(&desc).unwrap();
        b.prepare(0, u32::MAX).unwrap();
        b.write(0, &new).unwrap();
        b.finish(&ExpectedImage::sha256(sha)).unwrap();
        assert_eq!(a.flash.as_slice(), b.flash.as_slice());
        // Refusals are the same too.
        assert_eq!(
            block_on(a.erase_idle_step()),
            Err(SinkError::RunningNotSelected {
                running: AppSlot::Ota(0),
                selected: AppSlot::Ota(1)
            })
        );
        block_on(AsyncOtaSink::abort(&mut a)).unwrap();
    }
}

#[test]
fn idle_erase_decisions() {
    let target = UpdateTarget {
        slot: 1,
        offset: 0x5_3000,
        size: 0x5_C000,
        capacity: 0x5_B000,
        journal: 0xA_E000,
    };
    let e = |erased| Some(JournalRecord::erase_progress(target.capacity, erased));
    let step = |rec: Option<JournalRecord>, unit| plan_idle_step::<()>(rec.as_ref(), &target, unit);
    // Sectors up to the first 64 KiB boundary, then blocks, then sectors again.
    assert_eq!(
        step(None, IdleEraseUnit::Block),
        Ok(Some((0x5_3000, 0x5_4000, 0x1000)))
    );
    assert_eq!(
        step(e(0xD000), IdleEraseUnit::Block),
        Ok(Some((0x6_0000, 0x7_0000, 0x1_D000)))
    );
    assert_eq!(
        step(e(0xD000), IdleEraseUnit::Sector),
        Ok(Some((0x6_0000, 0x6_1000, 0xE000)))
    );
    assert_eq!(
        step(e(0x4_D000), IdleEraseUnit::Block),
        Ok(Some((0xA_0000, 0xA_1000, 0x4_E000)))
    );
    assert_eq!(step(e(0x5_B000), IdleEraseUnit::Block), Ok(None));
    // A record that does not fit this slot (another size, past it, not a sector
    // boundary) counts as nothing erased.
    for bad in [
        JournalRecord::erase_progress(0x1000, 0x1000),
        JournalRecord::erase_progress(target.capacity, 0x5_C000),
        JournalRecord::erase_progress(target.capacity, 0x1800),
    ] {
        assert_eq!(
            step(Some(bad), IdleEraseUnit::Sector),
            Ok(Some((0x5_3000, 0x5_4000, 0x1000)))
        );
        assert_eq!(erased_claim(Some(&bad), &target, 100_000), 0);
    }
    // A download's resume point is not erased over.
    let download = JournalRecord {
        id: [7; 32],
        size: 100_000,
        offset: 0x3000,
    };
    assert_eq!(
        step(Some(download), IdleEraseUnit::Block),
        Err(SinkError::DownloadPending {
            offset: 0x3000,
            size: 100_000
        })
    );
    assert_eq!(erased_claim(Some(&download), &target, 100_000), 0);
    // An erase record never resumes an image, whatever its fields.
    let image = ImageDescriptor {
        id: crate::ota::journal::ERASED_ID,
        size: target.capacity,
    };
    assert_eq!(
        resume_offset(e(0x3000).as_ref(), &image, &target, SECTOR),
        None
    );
    // begin takes what the record covers, up to the image's last sector.
    assert_eq!(erased_claim(e(0x5_B000).as_ref(), &target, 10_000), 0x3000);
    assert_eq!(erased_claim(e(0x5_B000).as_ref(), &target, 8192), 0x2000);
    assert_eq!(erased_claim(e(0x1000).as_ref(), &target, 10_000), 0x1000);
    assert_eq!(erased_claim(None, &target, 10_000), 0);
    assert_eq!(
        idle_state(e(0x5_B000).as_ref(), &target),
        IdleEraseState::Erased {
            total: target.capacity
        }
    );
    assert_eq!(IdleErase::after(5, 5), IdleErase::Done);
    assert_eq!(
        IdleErase::after(4, 5),
        IdleErase::Progress {
            erased: 4,
            total: 5
        }
    );
}

#[test]
fn blank_check_stops_at_the_first_written_sector() {
    let mut c = BlankCheck::new(0x1000, 0x3000);
    let mut reads = 0;
    while let Some((addr, len)) = c.next_read() {
        assert_eq!(len, WRITE_BUF_LEN);
        assert_eq!(addr, 0x1000 + reads * 64);
        reads += 1;
        let mut chunk = [0xFF; WRITE_BUF_LEN];
        if addr == 0x2040 {
            chunk[3] = 0xFE;
        }
        c.feed(&chunk);
    }
    assert_eq!((reads, c.erased_end()), (64 + 2, 0x2000));
    // All erased: the whole region.
    let mut c = BlankCheck::new(0x1000, 0x3000);
    while c.next_read().is_some() {
        c.feed(&[0xFF; WRITE_BUF_LEN]);
    }
    assert_eq!(c.erased_end(), 0x3000);
    // An empty region reads nothing; an empty chunk ends the check.
    assert_eq!(BlankCheck::new(0x1000, 0x1000).next_read(), None);
    let mut c = BlankCheck::new(0x1000, 0x3000);
    c.feed(&[]);
    assert_eq!((c.next_read(), c.erased_end()), (None, 0x1000));
    // The writer takes it, clamped to its image's last sector, only at a clean start.
    let mut w = Writer::new(0, SECTOR, 4, 10_000, 0);
    w.assume_erased(0x5_0000);
    assert_eq!(w.erased, 0x3000);
    let mut w = Writer::new(0, SECTOR, 4, 10_000, 0);
    let mut consumed = 0;
    assert_eq!(w.next(&[1, 2, 3], &mut consumed, false), None);
    w.assume_erased(0x2000);
    assert_eq!(w.erased, 0);
}

proptest::proptest! {
    #[test]
    fn writer_never_breaks_flash_rules(
        size in 1usize..30_000,
        chunks in proptest::collection::vec(1usize..9_000, 1..8),
        unit_pow in 0u32..7,
        resume_sectors in 0u32..8,
    ) {
        let data = pattern(size);
        let resume = (resume_sectors * SECTOR).min(size as u32 / SECTOR * SECTOR);
        let (slot, _) = simulate(&data, resume, &chunks, 1 << unit_pow);
        proptest::prop_assert_eq!(&slot[..size], &data[..]);
    }

    #[test]
    fn prepare_never_breaks_flash_rules(
        size in 1usize..200_000,
        chunks in proptest::collection::vec(1usize..70_000, 1..8),
        unit_pow in 0u32..7,
        resume_sectors in 0u32..40,
        len in proptest::prop_oneof![0u32..100_000, proptest::strategy::Just(u32::MAX)],
        journal_room in proptest::prop_oneof![2u32..20, proptest::strategy::Just(84)],
        ranges in proptest::bool::ANY,
    ) {
        let data = pattern(size);
        let resume = (resume_sectors * SECTOR).min(size as u32 / SECTOR * SECTOR);
        let sim = simulate_prepared(
            &data,
            resume,
            &chunks,
            1 << unit_pow,
            if ranges { Prep::Ranges(len.max(1)) } else { Prep::EachChunk(len) },
            journal_room,
        );
        let (plain, plain_records) = simulate(&data, resume, &chunks, 1 << unit_pow);
        proptest::prop_assert_eq!(&sim.slot[..size], &data[..]);
        proptest::prop_assert!(sim.slot == plain);
        // Fewer records at most (a stride), all of them sector boundaries the plain
        // run records too; a plan of a whole journal's worth keeps every one.
        proptest::prop_assert!(sim.records.iter().all(|r| plain_records.contains(r)));
        if journal_room == 84 {
            proptest::prop_assert_eq!(&sim.records, &plain_records);
        }
        // Resume points at most `max_stride` sectors apart.
        let mut prev = resume;
        for &r in &sim.records {
            proptest::prop_assert!(r - prev <= sim.max_stride * SECTOR);
            prev = r;
        }
        // A prepare covering each chunk (or each range, whatever the chunks) leaves no
        // erase, slot or journal, to the writes.
        if ranges || len as usize >= chunks.iter().copied().max().unwrap_or(0) {
            proptest::prop_assert_eq!((sim.write_erases, sim.write_wraps), (0, 0));
        }
    }
}
