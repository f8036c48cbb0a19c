//! Blocking shell.

use super::*;

/// The ESP-IDF A/B slot sink over a blocking `NorFlash` that addresses the whole chip; see
/// the [module docs](super) for the layout, the flash operations and power-cut behaviour.
///
/// `F` may be `&mut Flash` so the caller keeps the flash. One sink value per boot is the
/// intended use: it remembers the running app from its first call.
#[derive(Debug)]
pub struct EspIdfSink<F> {
    pub(super) flash: F,
    pub(super) core: Core,
}

impl<F: NorFlash> EspIdfSink<F> {
    /// A sink over `flash`. Does no I/O; the partition table is read by each `begin`,
    /// `abort` and boot-side call.
    pub fn new(flash: F, config: SinkConfig) -> Self {
        EspIdfSink {
            flash,
            core: Core::new(config),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SinkConfig {
        &self.core.config
    }

    /// Gives the flash back. An update in progress stays resumable from the journal.
    pub fn into_inner(self) -> F {
        self.flash
    }

    /// The slot being written (after `begin`) or just activated (after `finish`).
    pub fn target(&self) -> Option<UpdateTarget> {
        self.core.target_view()
    }

    /// Bytes accepted in the current update (including up to [`WRITE_BUF_LEN`] buffered
    /// ones that are not on flash yet); `None` if no update is in progress.
    pub fn written(&self) -> Option<u32> {
        self.core.written()
    }

    /// The image the most recent `finish` of this sink activated; `None` if none has run
    /// or the most recent one failed.
    pub fn last_activated(&self) -> Option<&ActivatedImage> {
        self.core.last.as_ref()
    }

    /// Reads the partition table (up to its end marker) and both otadata entries.
    pub(super) fn read_layout(
        &mut self,
    ) -> Result<(SlotLayout, [OtaSelectEntry; 2]), SinkError<F::Error>> {
        let layout = read_table(&mut self.flash, self.core.config.partition_table_offset)?;
        let entries = self.otadata(&layout)?.read_entries().map_err(otadata_err)?;
        Ok((layout, entries))
    }

    pub(super) fn otadata(
        &mut self,
        layout: &SlotLayout,
    ) -> Result<Otadata<&mut F>, SinkError<F::Error>> {
        Otadata::new(&mut self.flash, layout.otadata, layout.ota_count)
            .map_err(SinkError::OtadataLayout)
    }

    /// What the bootloader selects from otadata now (honouring `ota_state`: ABORTED,
    /// INVALID and corrupt entries are skipped). After `finish` this is the new slot.
    pub fn boot_choice(&mut self) -> Result<BootChoice, SinkError<F::Error>> {
        let (layout, entries) = self.read_layout()?;
        Ok(boot_slot(&entries, layout.ota_count))
    }

    /// The app running now: [`SinkConfig::running_slot`], else what the bootloader selected
    /// (see there). Resolved on the first call of this sink and remembered.
    pub fn running_slot(&mut self) -> Result<AppSlot, SinkError<F::Error>> {
        let (layout, entries) = self.read_layout()?;
        self.core.running(&layout, &entries)
    }

    /// The otadata state of the running app's entry (`esp_ota_get_state_partition`):
    /// `None` if no valid entry selects it (factory, or `ota_0` booted by default).
    pub fn current_state(&mut self) -> Result<Option<OtaImageState>, SinkError<F::Error>> {
        let (layout, entries) = self.read_layout()?;
        match self.core.running(&layout, &entries)? {
            AppSlot::Ota(slot) => Ok(state_of(&entries, layout.ota_count, slot)),
            AppSlot::Factory => Ok(None),
        }
    }

    /// Confirms the running app: its entry becomes VALID, cancelling a pending rollback
    /// (`esp_ota_mark_app_valid_cancel_rollback`). No write if it is VALID already.
    /// [`SinkError::RunningNotSelected`] if otadata selects another app (nothing written);
    /// [`SinkError::Otadata`] with [`PlanError::NoActiveEntry`] if no entry is valid.
    pub fn mark_valid(&mut self) -> Result<(), SinkError<F::Error>> {
        let (layout, entries) = self.read_layout()?;
        self.core.check_selected(&layout, &entries)?;
        self.otadata(&layout)?.mark_valid().map_err(otadata_err)
    }

    /// Rejects the running app: its entry becomes INVALID so the bootloader skips it
    /// (`esp_ota_mark_app_invalid_rollback`), and returns the app the bootloader will boot
    /// after the caller resets. Same preconditions as [`mark_valid`](Self::mark_valid).
    /// Does not check that the fallback slot holds a valid image.
    pub fn mark_invalid_and_rollback(&mut self) -> Result<AppSlot, SinkError<F::Error>> {
        let (layout, entries) = self.read_layout()?;
        self.core.check_selected(&layout, &entries)?;
        let choice = self
            .otadata(&layout)?
            .mark_invalid_and_rollback()
            .map_err(otadata_err)?;
        Ok(layout.app_for(&choice))
    }

    pub(super) fn do_begin(
        &mut self,
        image: &ImageDescriptor,
    ) -> Result<Resume, SinkError<F::Error>> {
        self.core.session = Session::Idle;
        self.core.check_config()?;
        let geometry = FlashGeometry::of::<F>();
        let (layout, entries) = self.read_layout()?;
        let (target, mut journal) = self.core.target(&layout, &entries, geometry)?;
        if image.size > target.capacity {
            return Err(SinkError::ImageTooLarge {
                size: image.size,
                capacity: target.capacity,
            });
        }
        let rec = journal.load(&mut self.flash).map_err(journal_err)?;
        let resume = resume_offset(rec.as_ref(), image, &target, SECTOR_SIZE);
        let area = StateArea::of(&target, image.size);
        // A resume point with a kept state at or below it resumes at the state's point.
        let kept = match (resume, area) {
            (Some(durable), Some(area)) if durable > 0 => {
                state_job(&mut self.flash, area, StateGoal::Scan, &mut [])?
                    .scan()
                    .and_then(|scan| scan.resume_point(image, durable))
            }
            _ => None,
        };
        let mut w = Core::new_writing(
            &layout,
            target,
            image,
            journal,
            kept.map_or(resume.unwrap_or(0), |k| k.header.at),
            geometry,
        );
        w.state = kept.map(StateRef::from);
        if resume.is_none() {
            // Erased in idle time: what reads back erased of the sectors the image needs is
            // not erased again (the write buffer is empty: it takes the reads).
            let claim = erased_claim(rec.as_ref(), &target, image.size);
            let erased = check_erased(
                &mut self.flash,
                &mut w.writer.buf,
                target.offset,
                target.offset + claim,
            )
            .map_err(flash_err(FlashOp::ReadSlot))?;
            // Forgets the erase record (and any other) before anything is written to the
            // slot.
            w.journal.clear(&mut self.flash).map_err(journal_err)?;
            // Then a stale state can never be picked up by this download.
            if let Some(area) = area {
                state_job(&mut self.flash, area, StateGoal::Kill, &mut [])?;
            }
            w.writer.assume_erased(erased - target.offset);
        }
        Ok(self.core.start(w))
    }

    pub(super) fn do_write(&mut self, offset: u32, data: &[u8]) -> Result<(), SinkError<F::Error>> {
        self.core.writing()?.writer.check(offset, data.len())?;
        // Out of the sink while flash is touched: an error leaves the session closed.
        let mut w = self.core.take_writing()?;
        drive(&mut self.flash, &mut w, data, false)?;
        self.core.session = Session::Writing(w);
        Ok(())
    }

    pub(super) fn do_prepare(&mut self, offset: u32, len: u32) -> Result<(), SinkError<F::Error>> {
        let Some(end) = self.core.writing()?.writer.prepare_end(offset, len)? else {
            return Ok(());
        };
        // Out of the sink while flash is touched: an error leaves the session closed (and
        // the next `begin` forgets what was erased ahead).
        let mut w = self.core.take_writing()?;
        let last = w.writer.record_horizon(end);
        let room = w
            .journal
            .make_room(&mut self.flash, w.writer.records_to(last))
            .map_err(journal_err)?;
        w.writer.plan_records(last, room);
        while let Some(op) = w.writer.next_prepare(end) {
            if let Op::Erase { from, to } = op {
                self.flash
                    .erase(from, to)
                    .map_err(flash_err(FlashOp::EraseSlot))?;
            }
            w.writer.commit(op, &mut 0);
        }
        self.core.session = Session::Writing(w);
        Ok(())
    }

    pub(super) fn do_read(
        &mut self,
        offset: u32,
        out: &mut [u8],
    ) -> Result<(), SinkError<F::Error>> {
        let (addr, flash_len) = self.core.read_split(offset, out.len())?;
        let (on_flash, _) = out.split_at_mut(flash_len);
        read_unaligned(&mut self.flash, addr, on_flash).map_err(flash_err(FlashOp::ReadSlot))?;
        self.core.read_buffered(offset, out, flash_len);
        Ok(())
    }

    pub(super) fn do_finish(
        &mut self,
        expected: &ExpectedImage<'_>,
    ) -> Result<(), SinkError<F::Error>> {
        self.core.check_complete()?;
        self.core.last = None;
        let mut w = self.core.take_writing()?;
        drive(&mut self.flash, &mut w, &[], true)?;
        let mut done = Finishing::from(w);
        let verified = verify(&mut self.flash, &done, &self.core.config, expected);
        if let Err(e) = self.core.verified(&done, verified) {
            if is_verification_failure(&e) {
                // Best effort: the error that matters is the verification failure.
                let _ = done.journal.clear(&mut self.flash);
            }
            return Err(e);
        }
        let state = self.core.config.new_slot_state();
        let activated = match Otadata::new(&mut self.flash, done.otadata, done.ota_count) {
            Ok(mut o) => o.activate(done.target.slot, state).map_err(otadata_err),
            Err(e) => Err(SinkError::OtadataLayout(e)),
        };
        if let Err(e) = activated {
            self.core.last = None;
            return Err(e);
        }
        // Best effort: a stale record in the now-selected slot is only read when that slot
        // is the target again, and finish re-verifies whatever it resumes.
        let _ = done.journal.clear(&mut self.flash);
        self.core.finished(&done);
        Ok(())
    }

    pub(super) fn do_abort(&mut self) -> Result<(), SinkError<F::Error>> {
        let session = core::mem::replace(&mut self.core.session, Session::Idle);
        let (mut journal, area) = match session {
            Session::Writing(w) => (w.journal, StateArea::of(&w.target, w.image.size)),
            Session::Idle | Session::Done { .. } => {
                let (target, journal, rec) = self.next_slot(false)?;
                if rec.is_some_and(|r| r.is_erase_progress()) {
                    // Idle-erase progress is not a download: keep it.
                    return Ok(());
                }
                (journal, abort_area(&target, rec.as_ref()))
            }
        };
        journal.clear(&mut self.flash).map_err(journal_err)?;
        // After the journal: a cut in between leaves no resume point for the state.
        if let Some(area) = area {
            state_job(&mut self.flash, area, StateGoal::Kill, &mut [])?;
        }
        Ok(())
    }

    pub(super) fn do_read_running(
        &mut self,
        offset: u32,
        out: &mut [u8],
    ) -> Result<bool, SinkError<F::Error>> {
        let span = match self.core.running_span {
            Some(span) => span,
            None => {
                let (layout, entries) = self.read_layout()?;
                self.core.running_span(&layout, &entries)?
            }
        };
        let addr = running_read_addr(span, offset, out.len())?;
        read_unaligned(&mut self.flash, addr, out).map_err(flash_err(FlashOp::ReadRunning))?;
        Ok(true)
    }

    pub(super) fn do_save_state(
        &mut self,
        at: u32,
        state: &[u8],
    ) -> Result<bool, SinkError<F::Error>> {
        let Some(area) = check_save(self.core.writing()?, at, state)? else {
            return Ok(false);
        };
        // Out of the sink while flash is touched: an error leaves the session closed.
        let mut w = self.core.take_writing()?;
        drive(&mut self.flash, &mut w, &[], false)?;
        if let Some(offset) = w.writer.state_record(at) {
            w.journal
                .record(&mut self.flash, &w.record(offset))
                .map_err(journal_err)?;
            w.writer.commit(Op::Record { offset }, &mut 0);
            w.writer.replan_records(w.journal.room());
        }
        let mut job = StateJob::new(area, StateGoal::Save(state_header(&w, at, state.len())));
        run_state(&mut self.flash, &mut job, state, &mut [])?;
        w.state = job.written();
        self.core.session = Session::Writing(w);
        Ok(true)
    }

    pub(super) fn do_load_state(
        &mut self,
        out: &mut [u8],
    ) -> Result<Option<usize>, SinkError<F::Error>> {
        let Some((area, kept)) = self.core.kept_state(out.len())? else {
            return Ok(None);
        };
        Ok(state_job(&mut self.flash, area, StateGoal::Load(kept), out)?.loaded())
    }

    /// Erases the next unit of the slot the next update will write, and records it; see
    /// [Erasing the next slot while idle](super#erasing-the-next-slot-while-idle).
    ///
    /// One step: reads the partition table, otadata and the target slot's journal (about
    /// a hundred small reads), erases one unit ([`SinkConfig::idle_erase_unit`]: a 64 KiB
    /// block where aligned, else a 4 KiB sector) after what the journal records as erased,
    /// then appends an erase-progress record. Returns [`IdleErase::Progress`] while more
    /// remains, [`IdleErase::Done`] once the slot's image area is erased (a call then
    /// erases nothing). The running slot and otadata are never written.
    ///
    /// Refused, with nothing written: [`SinkError::RunningNotSelected`] if otadata selects
    /// another app than the running one (after `finish`, before the reset);
    /// [`SinkError::NotConfirmed`] if the running app's entry is NEW or PENDING_VERIFY (call
    /// [`mark_valid`](Self::mark_valid) first: the slot holds the rollback image);
    /// [`SinkError::DownloadPending`] if the slot holds a download's resume point (finish it,
    /// or [`abort`](OtaSink::abort) it). Before it erases, an update in progress in this sink
    /// value is closed, as `begin` would close it. On a flash error, or a power cut, call
    /// again: the next step redoes at most the unit that was in progress (a cut during a
    /// journal wrap starts the pass over).
    ///
    /// The slot is the next one after the app this sink takes for the running one, as for
    /// `begin`: pass [`SinkConfig::running_slot`] on a device. A sink value made after
    /// `finish` and before the reset, with `running_slot` `None`, would take the
    /// just-activated slot for the running one and erase the slot the app runs from.
    pub fn erase_idle_step(&mut self) -> Result<IdleErase, SinkError<F::Error>> {
        let (target, mut journal, rec) = self.next_slot(true)?;
        let unit = self.core.config.idle_erase_unit;
        let Some((from, to, erased)) = plan_idle_step(rec.as_ref(), &target, unit)? else {
            return Ok(IdleErase::Done);
        };
        self.core.close_update();
        self.flash
            .erase(from, to)
            .map_err(flash_err(FlashOp::EraseSlot))?;
        journal
            .record(
                &mut self.flash,
                &JournalRecord::erase_progress(target.capacity, erased),
            )
            .map_err(journal_err)?;
        Ok(IdleErase::after(erased, target.capacity))
    }

    /// What the slot the next update writes holds, as its journal records it: how much of it
    /// is erased ([`IdleEraseState::is_erased`] once all of it is), or that it holds a
    /// download's resume point. Only reads (the partition table, otadata, the journal).
    pub fn idle_erase_state(&mut self) -> Result<IdleEraseState, SinkError<F::Error>> {
        let (target, _, rec) = self.next_slot(false)?;
        Ok(idle_state(rec.as_ref(), &target))
    }

    /// The slot the next update writes, its journal and the journal's newest record (with
    /// `idle_erase`: after [`Core::check_idle_erase`]).
    pub(super) fn next_slot(
        &mut self,
        idle_erase: bool,
    ) -> Result<(UpdateTarget, Journal, Option<JournalRecord>), SinkError<F::Error>> {
        let (layout, entries) = self.read_layout()?;
        if idle_erase {
            self.core.check_idle_erase(&layout, &entries)?;
        }
        let (target, mut journal) =
            self.core
                .target(&layout, &entries, FlashGeometry::of::<F>())?;
        let rec = journal.load(&mut self.flash).map_err(journal_err)?;
        Ok((target, journal, rec))
    }
}

/// Reads the flash addresses `[from, to)` (sector boundaries) through `buf` and returns the
/// end of the whole sectors from `from` that read all `0xFF` ([`BlankCheck`]).
pub(super) fn check_erased<F: NorFlash>(
    flash: &mut F,
    buf: &mut [u8; WRITE_BUF_LEN],
    from: u32,
    to: u32,
) -> Result<u32, F::Error> {
    let mut check = BlankCheck::new(from, to);
    while let Some((addr, len)) = check.next_read() {
        let chunk = buf.get_mut(..len).unwrap_or(&mut []);
        flash.read(addr, chunk)?;
        check.feed(chunk);
    }
    Ok(check.erased_end())
}

/// Runs a [`StateJob`] (scan, append, tombstone or read-back in the state area) through
/// one [`STATE_CHUNK`]-byte stack buffer; a load's state bytes go to `out`.
pub(super) fn run_state<F: NorFlash>(
    flash: &mut F,
    job: &mut StateJob,
    state: &[u8],
    out: &mut [u8],
) -> Result<(), SinkError<F::Error>> {
    let mut buf = [0u8; STATE_CHUNK];
    while let Some(op) = job.next(&mut buf, state, F::WRITE_SIZE) {
        match op {
            StateOp::Read { addr, len } => {
                let chunk = buf.get_mut(..len).unwrap_or(&mut []);
                flash
                    .read(addr, chunk)
                    .map_err(flash_err(FlashOp::ReadState))?;
                job.feed(chunk, out);
            }
            StateOp::Erase { from } => flash
                .erase(from, from + SECTOR_SIZE)
                .map_err(flash_err(FlashOp::EraseState))?,
            StateOp::Write { addr, len } => flash
                .write(addr, buf.get(..len).unwrap_or(&[]))
                .map_err(flash_err(FlashOp::WriteState))?,
        }
        job.commit(op);
    }
    Ok(())
}

/// Runs `goal` in `area` with no caller state (scan, tombstone, load into `out`).
pub(super) fn state_job<F: NorFlash>(
    flash: &mut F,
    area: StateArea,
    goal: StateGoal,
    out: &mut [u8],
) -> Result<StateJob, SinkError<F::Error>> {
    let mut job = StateJob::new(area, goal);
    run_state(flash, &mut job, &[], out)?;
    Ok(job)
}

/// Runs the write engine over `data` until it is written or buffered (`finalize`: and the
/// buffered tail padded and written).
pub(super) fn drive<F: NorFlash>(
    flash: &mut F,
    w: &mut Writing,
    data: &[u8],
    finalize: bool,
) -> Result<(), SinkError<F::Error>> {
    let mut consumed = 0;
    while let Some(op) = w.writer.next(data, &mut consumed, finalize) {
        match op {
            Op::Erase { from, to } => flash
                .erase(from, to)
                .map_err(flash_err(FlashOp::EraseSlot))?,
            Op::Program { addr, src } => flash
                .write(addr, w.writer.bytes(src, data))
                .map_err(flash_err(FlashOp::WriteSlot))?,
            Op::Record { offset } => w
                .journal
                .record(flash, &w.record(offset))
                .map_err(journal_err)?,
        }
        w.writer.commit(op, &mut consumed);
    }
    Ok(())
}

/// Reads the image back through a [`VERIFY_BUF_LEN`]-byte buffer and checks it. Out of line:
/// its buffer and validator (about 0.8 KiB) then take stack only while `finish` runs, not in
/// every frame it would be inlined into.
#[inline(never)]
pub(super) fn verify<F: NorFlash>(
    flash: &mut F,
    w: &Finishing,
    config: &SinkConfig,
    expected: &ExpectedImage<'_>,
) -> Result<ImageInfo, SinkError<F::Error>> {
    let mut v = Verifier::new(config, &w.target, w.size, F::READ_SIZE);
    let mut buf = [0u8; VERIFY_BUF_LEN];
    while let Some((at, len)) = v.next_read() {
        let chunk = buf.get_mut(..len).unwrap_or(&mut []);
        flash
            .read(w.target.offset + at, chunk)
            .map_err(flash_err(FlashOp::ReadSlot))?;
        v.feed(chunk);
    }
    v.finish(expected)
}

/// Reads `out.len()` bytes at any `addr`, honouring `READ_SIZE`.
pub(super) fn read_unaligned<F: NorFlash>(
    flash: &mut F,
    addr: u32,
    out: &mut [u8],
) -> Result<(), F::Error> {
    let mut done = 0;
    while let Some(rest) = out.get_mut(done..).filter(|r| !r.is_empty()) {
        let at = addr + done as u32;
        match read_step(at, rest.len(), F::READ_SIZE) {
            ReadStep::Direct(n) => {
                flash.read(at, rest.get_mut(..n).unwrap_or(&mut []))?;
                done += n;
            }
            ReadStep::Bounce {
                aligned,
                len,
                skip,
                take,
            } => {
                let mut scratch = [0u8; WRITE_BUF_LEN];
                flash.read(aligned, scratch.get_mut(..len).unwrap_or(&mut []))?;
                if let (Some(dst), Some(src)) =
                    (rest.get_mut(..take), scratch.get(skip..skip + take))
                {
                    dst.copy_from_slice(src);
                }
                done += take.max(1);
            }
        }
    }
    Ok(())
}

/// The ESP-IDF sink contract on a blocking flash; see the [module docs](super).
///
/// Errors: see [`SinkError`]. After a flash error in `write`, `prepare` or `finish`, call
/// `begin` again: it resumes at the last recorded sector boundary.
impl<F: NorFlash> OtaSink for EspIdfSink<F> {
    type Error = SinkError<F::Error>;

    /// Picks the target slot, checks the image fits, and resumes (same id and size in the
    /// journal) or starts clean. Drops any update in progress in this value (its durable
    /// part stays in the journal).
    fn begin(&mut self, image: &ImageDescriptor) -> Result<Resume, Self::Error> {
        self.do_begin(image)
    }

    fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), Self::Error> {
        self.do_write(offset, data)
    }

    /// Reads from flash, and from the write buffer for the last few bytes not written yet.
    /// Works during an update and after `finish` (the activated image).
    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), Self::Error> {
        self.do_read(offset, buf)
    }

    /// Makes the writes of `[offset, offset + len)` erase nothing (see the
    /// [module docs](super)): wraps the journal early if the records they will append do not
    /// fit (recording sparsely if they do not fit even an empty journal), then erases the
    /// sectors this session has not erased yet. `offset` must be the write position
    /// ([`SinkError::OutOfOrder`] otherwise, changing nothing); the range is clamped to the
    /// image end, so a `len` past it (even `u32::MAX`) is fine and an empty range does
    /// nothing. Each slot `erase` call covers at most [`PREPARE_ERASE_MAX`] bytes. A flash
    /// error closes the session like one in `write`: `begin` again.
    fn prepare(&mut self, offset: u32, len: u32) -> Result<(), Self::Error> {
        self.do_prepare(offset, len)
    }

    fn finish(&mut self, expected: &ExpectedImage<'_>) -> Result<(), Self::Error> {
        self.do_finish(expected)
    }

    fn abort(&mut self) -> Result<(), Self::Error> {
        self.do_abort()
    }

    /// Reads the running app's partition (what `begin` takes for the running app: see
    /// [`SinkConfig::running_slot`]), before or during an update. The first call of a sink
    /// value reads the partition table and otadata to find the partition; later ones read
    /// only the bytes asked for (through a 64-byte buffer where `READ_SIZE` needs it).
    /// [`SinkError::RunningReadOutOfRange`] past the partition's end. Never writes.
    fn read_running(&mut self, offset: u32, buf: &mut [u8]) -> Result<bool, Self::Error> {
        self.do_read_running(offset, buf)
    }

    /// See the [module docs](super#caller-state-two-sectors-before-the-journal).
    /// `Ok(false)` with nothing written when the image leaves no room for the state area.
    /// Errors, changing nothing: [`SinkError::NotStarted`], [`SinkError::OutOfOrder`] (`at`
    /// is not the write position), [`SinkError::StatePoint`], [`SinkError::StateTooLong`].
    /// A flash error closes the session like one in `write`: `begin` again.
    fn save_state(&mut self, at: u32, state: &[u8]) -> Result<bool, Self::Error> {
        self.do_save_state(at, state)
    }

    /// Reads the state kept with the resume point (or saved last in this session) back
    /// from flash. [`SinkError::NotStarted`] before `begin`,
    /// [`SinkError::StateBufferTooSmall`] for a buffer shorter than the state.
    fn load_state(&mut self, buf: &mut [u8]) -> Result<Option<usize>, Self::Error> {
        self.do_load_state(buf)
    }

    /// The flash's `WRITE_SIZE`.
    fn write_size(&self) -> u32 {
        F::WRITE_SIZE as u32
    }

    /// What `begin` found erased ahead of the write position (a slot erased in idle time).
    fn erased_ahead(&self) -> u32 {
        self.core.erased_ahead()
    }
}
