//! Async shell: the blocking shell's I/O with `.await`; every decision is in `Core`,
//! `Writer`, `Verifier` and the plans above.

use super::*;

/// The async twin of [`EspIdfSink`], over `embedded_storage_async::nor_flash::NorFlash`.
/// Same layout, rules and errors; only the waiting differs.
///
/// Cancel safety: `read`, `read_running`, `load_state`, [`boot_choice`](Self::boot_choice),
/// [`running_slot`](Self::running_slot), [`current_state`](Self::current_state) and
/// [`idle_erase_state`](Self::idle_erase_state) only read and are cancel-safe. Cancelling
/// `begin`, `write`, `prepare`, `save_state`, `finish`, `abort`,
/// [`mark_valid`](Self::mark_valid),
/// [`mark_invalid_and_rollback`](Self::mark_invalid_and_rollback) or
/// [`erase_idle_step`](Self::erase_idle_step) mid-way has the effect of a power cut at that
/// point on flash, and a cancelled `begin`, `write`, `prepare`, `save_state` or `finish`
/// closes the update like an error does: the next `write` or `finish` returns
/// [`SinkError::NotStarted`]; call `begin` again to resume from the journal.
#[derive(Debug)]
pub struct AsyncEspIdfSink<F> {
    pub(super) flash: F,
    pub(super) core: Core,
}

impl<F: AsyncNorFlash> AsyncEspIdfSink<F> {
    /// See [`EspIdfSink::new`].
    pub fn new(flash: F, config: SinkConfig) -> Self {
        AsyncEspIdfSink {
            flash,
            core: Core::new(config),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SinkConfig {
        &self.core.config
    }

    /// Gives the flash back.
    pub fn into_inner(self) -> F {
        self.flash
    }

    /// See [`EspIdfSink::target`].
    pub fn target(&self) -> Option<UpdateTarget> {
        self.core.target_view()
    }

    /// See [`EspIdfSink::written`].
    pub fn written(&self) -> Option<u32> {
        self.core.written()
    }

    /// See [`EspIdfSink::last_activated`].
    pub fn last_activated(&self) -> Option<&ActivatedImage> {
        self.core.last.as_ref()
    }

    pub(super) async fn read_layout(
        &mut self,
    ) -> Result<(SlotLayout, [OtaSelectEntry; 2]), SinkError<F::Error>> {
        let layout = {
            // Held across the reads: the scanner (about 0.5 KiB) and one chunk.
            let offset = self.core.config.partition_table_offset;
            let mut scan = Scanner::with_flash_capacity(self.flash.capacity());
            let mut read = 0;
            loop {
                let mut chunk = [0u8; TABLE_CHUNK];
                self.flash
                    .read(offset + read as u32, &mut chunk)
                    .await
                    .map_err(flash_err(FlashOp::ReadPartitionTable))?;
                read += TABLE_CHUNK;
                if scan_chunk(&mut scan, &chunk) || read >= TABLE_BUF_LEN {
                    break;
                }
            }
            layout_from_scan(&scan, read)?
        };
        let entries = self
            .otadata(&layout)?
            .read_entries()
            .await
            .map_err(otadata_err)?;
        Ok((layout, entries))
    }

    pub(super) fn otadata(
        &mut self,
        layout: &SlotLayout,
    ) -> Result<AsyncOtadata<&mut F>, SinkError<F::Error>> {
        AsyncOtadata::new(&mut self.flash, layout.otadata, layout.ota_count)
            .map_err(SinkError::OtadataLayout)
    }

    /// See [`EspIdfSink::boot_choice`].
    pub async fn boot_choice(&mut self) -> Result<BootChoice, SinkError<F::Error>> {
        let (layout, entries) = self.read_layout().await?;
        Ok(boot_slot(&entries, layout.ota_count))
    }

    /// See [`EspIdfSink::running_slot`].
    pub async fn running_slot(&mut self) -> Result<AppSlot, SinkError<F::Error>> {
        let (layout, entries) = self.read_layout().await?;
        self.core.running(&layout, &entries)
    }

    /// See [`EspIdfSink::current_state`].
    pub async fn current_state(&mut self) -> Result<Option<OtaImageState>, SinkError<F::Error>> {
        let (layout, entries) = self.read_layout().await?;
        match self.core.running(&layout, &entries)? {
            AppSlot::Ota(slot) => Ok(state_of(&entries, layout.ota_count, slot)),
            AppSlot::Factory => Ok(None),
        }
    }

    /// See [`EspIdfSink::mark_valid`].
    pub async fn mark_valid(&mut self) -> Result<(), SinkError<F::Error>> {
        let (layout, entries) = self.read_layout().await?;
        self.core.check_selected(&layout, &entries)?;
        self.otadata(&layout)?
            .mark_valid()
            .await
            .map_err(otadata_err)
    }

    /// See [`EspIdfSink::mark_invalid_and_rollback`].
    pub async fn mark_invalid_and_rollback(&mut self) -> Result<AppSlot, SinkError<F::Error>> {
        let (layout, entries) = self.read_layout().await?;
        self.core.check_selected(&layout, &entries)?;
        let choice = self
            .otadata(&layout)?
            .mark_invalid_and_rollback()
            .await
            .map_err(otadata_err)?;
        Ok(layout.app_for(&choice))
    }

    pub(super) async fn do_begin(
        &mut self,
        image: &ImageDescriptor,
    ) -> Result<Resume, SinkError<F::Error>> {
        self.core.session = Session::Idle;
        self.core.check_config()?;
        let geometry = FlashGeometry::of_async::<F>();
        let (layout, entries) = self.read_layout().await?;
        let (target, mut journal) = self.core.target(&layout, &entries, geometry)?;
        if image.size > target.capacity {
            return Err(SinkError::ImageTooLarge {
                size: image.size,
                capacity: target.capacity,
            });
        }
        let rec = journal
            .load_async(&mut self.flash)
            .await
            .map_err(journal_err)?;
        let resume = resume_offset(rec.as_ref(), image, &target, SECTOR_SIZE);
        let area = StateArea::of(&target, image.size);
        let kept = match (resume, area) {
            (Some(durable), Some(area)) if durable > 0 => {
                state_job_async(&mut self.flash, area, StateGoal::Scan, &mut [])
                    .await?
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
            let claim = erased_claim(rec.as_ref(), &target, image.size);
            let erased = check_erased_async(
                &mut self.flash,
                &mut w.writer.buf,
                target.offset,
                target.offset + claim,
            )
            .await
            .map_err(flash_err(FlashOp::ReadSlot))?;
            w.journal
                .clear_async(&mut self.flash)
                .await
                .map_err(journal_err)?;
            if let Some(area) = area {
                state_job_async(&mut self.flash, area, StateGoal::Kill, &mut []).await?;
            }
            w.writer.assume_erased(erased - target.offset);
        }
        Ok(self.core.start(w))
    }

    pub(super) async fn do_write(
        &mut self,
        offset: u32,
        data: &[u8],
    ) -> Result<(), SinkError<F::Error>> {
        self.core.writing()?.writer.check(offset, data.len())?;
        // Out of the sink while flash is touched: an error or a cancellation leaves the
        // session closed.
        let mut w = self.core.take_writing()?;
        drive_async(&mut self.flash, &mut w, data, false).await?;
        self.core.session = Session::Writing(w);
        Ok(())
    }

    pub(super) async fn do_prepare(
        &mut self,
        offset: u32,
        len: u32,
    ) -> Result<(), SinkError<F::Error>> {
        let Some(end) = self.core.writing()?.writer.prepare_end(offset, len)? else {
            return Ok(());
        };
        // Out of the sink while flash is touched: an error or a cancellation leaves the
        // session closed.
        let mut w = self.core.take_writing()?;
        let last = w.writer.record_horizon(end);
        let room = w
            .journal
            .make_room_async(&mut self.flash, w.writer.records_to(last))
            .await
            .map_err(journal_err)?;
        w.writer.plan_records(last, room);
        while let Some(op) = w.writer.next_prepare(end) {
            if let Op::Erase { from, to } = op {
                self.flash
                    .erase(from, to)
                    .await
                    .map_err(flash_err(FlashOp::EraseSlot))?;
            }
            w.writer.commit(op, &mut 0);
        }
        self.core.session = Session::Writing(w);
        Ok(())
    }

    pub(super) async fn do_read(
        &mut self,
        offset: u32,
        out: &mut [u8],
    ) -> Result<(), SinkError<F::Error>> {
        let (addr, flash_len) = self.core.read_split(offset, out.len())?;
        let (on_flash, _) = out.split_at_mut(flash_len);
        read_unaligned_async(&mut self.flash, addr, on_flash)
            .await
            .map_err(flash_err(FlashOp::ReadSlot))?;
        self.core.read_buffered(offset, out, flash_len);
        Ok(())
    }

    pub(super) async fn do_finish(
        &mut self,
        expected: &ExpectedImage<'_>,
    ) -> Result<(), SinkError<F::Error>> {
        self.core.check_complete()?;
        self.core.last = None;
        let mut w = self.core.take_writing()?;
        drive_async(&mut self.flash, &mut w, &[], true).await?;
        let mut done = Finishing::from(w);
        let verified = verify_async(&mut self.flash, &done, &self.core.config, expected).await;
        if let Err(e) = self.core.verified(&done, verified) {
            if is_verification_failure(&e) {
                let _ = done.journal.clear_async(&mut self.flash).await;
            }
            return Err(e);
        }
        let state = self.core.config.new_slot_state();
        let activated = match AsyncOtadata::new(&mut self.flash, done.otadata, done.ota_count) {
            Ok(mut o) => o
                .activate(done.target.slot, state)
                .await
                .map_err(otadata_err),
            Err(e) => Err(SinkError::OtadataLayout(e)),
        };
        if let Err(e) = activated {
            self.core.last = None;
            return Err(e);
        }
        let _ = done.journal.clear_async(&mut self.flash).await;
        self.core.finished(&done);
        Ok(())
    }

    pub(super) async fn do_abort(&mut self) -> Result<(), SinkError<F::Error>> {
        let session = core::mem::replace(&mut self.core.session, Session::Idle);
        let (mut journal, area) = match session {
            Session::Writing(w) => (w.journal, StateArea::of(&w.target, w.image.size)),
            Session::Idle | Session::Done { .. } => {
                let (target, journal, rec) = self.next_slot(false).await?;
                if rec.is_some_and(|r| r.is_erase_progress()) {
                    return Ok(());
                }
                (journal, abort_area(&target, rec.as_ref()))
            }
        };
        journal
            .clear_async(&mut self.flash)
            .await
            .map_err(journal_err)?;
        if let Some(area) = area {
            state_job_async(&mut self.flash, area, StateGoal::Kill, &mut []).await?;
        }
        Ok(())
    }

    pub(super) async fn do_read_running(
        &mut self,
        offset: u32,
        out: &mut [u8],
    ) -> Result<bool, SinkError<F::Error>> {
        let span = match self.core.running_span {
            Some(span) => span,
            None => {
                let (layout, entries) = self.read_layout().await?;
                self.core.running_span(&layout, &entries)?
            }
        };
        let addr = running_read_addr(span, offset, out.len())?;
        read_unaligned_async(&mut self.flash, addr, out)
            .await
            .map_err(flash_err(FlashOp::ReadRunning))?;
        Ok(true)
    }

    pub(super) async fn do_save_state(
        &mut self,
        at: u32,
        state: &[u8],
    ) -> Result<bool, SinkError<F::Error>> {
        let Some(area) = check_save(self.core.writing()?, at, state)? else {
            return Ok(false);
        };
        // Out of the sink while flash is touched: an error or a cancellation leaves the
        // session closed.
        let mut w = self.core.take_writing()?;
        drive_async(&mut self.flash, &mut w, &[], false).await?;
        if let Some(offset) = w.writer.state_record(at) {
            w.journal
                .record_async(&mut self.flash, &w.record(offset))
                .await
                .map_err(journal_err)?;
            w.writer.commit(Op::Record { offset }, &mut 0);
            w.writer.replan_records(w.journal.room());
        }
        let mut job = StateJob::new(area, StateGoal::Save(state_header(&w, at, state.len())));
        run_state_async(&mut self.flash, &mut job, state, &mut []).await?;
        w.state = job.written();
        self.core.session = Session::Writing(w);
        Ok(true)
    }

    pub(super) async fn do_load_state(
        &mut self,
        out: &mut [u8],
    ) -> Result<Option<usize>, SinkError<F::Error>> {
        let Some((area, kept)) = self.core.kept_state(out.len())? else {
            return Ok(None);
        };
        let job = state_job_async(&mut self.flash, area, StateGoal::Load(kept), out).await?;
        Ok(job.loaded())
    }

    /// See [`EspIdfSink::erase_idle_step`]. Cancelling it has the effect of a power cut at
    /// that point (the next step redoes at most the unit in progress).
    pub async fn erase_idle_step(&mut self) -> Result<IdleErase, SinkError<F::Error>> {
        let (target, mut journal, rec) = self.next_slot(true).await?;
        let unit = self.core.config.idle_erase_unit;
        let Some((from, to, erased)) = plan_idle_step(rec.as_ref(), &target, unit)? else {
            return Ok(IdleErase::Done);
        };
        self.core.close_update();
        self.flash
            .erase(from, to)
            .await
            .map_err(flash_err(FlashOp::EraseSlot))?;
        journal
            .record_async(
                &mut self.flash,
                &JournalRecord::erase_progress(target.capacity, erased),
            )
            .await
            .map_err(journal_err)?;
        Ok(IdleErase::after(erased, target.capacity))
    }

    /// See [`EspIdfSink::idle_erase_state`]. Cancel-safe (it only reads).
    pub async fn idle_erase_state(&mut self) -> Result<IdleEraseState, SinkError<F::Error>> {
        let (target, _, rec) = self.next_slot(false).await?;
        Ok(idle_state(rec.as_ref(), &target))
    }

    /// See [`EspIdfSink::next_slot`].
    pub(super) async fn next_slot(
        &mut self,
        idle_erase: bool,
    ) -> Result<(UpdateTarget, Journal, Option<JournalRecord>), SinkError<F::Error>> {
        let (layout, entries) = self.read_layout().await?;
        if idle_erase {
            self.core.check_idle_erase(&layout, &entries)?;
        }
        let (target, mut journal) =
            self.core
                .target(&layout, &entries, FlashGeometry::of_async::<F>())?;
        let rec = journal
            .load_async(&mut self.flash)
            .await
            .map_err(journal_err)?;
        Ok((target, journal, rec))
    }
}

/// The async twin of [`check_erased`].
pub(super) async fn check_erased_async<F: AsyncNorFlash>(
    flash: &mut F,
    buf: &mut [u8; WRITE_BUF_LEN],
    from: u32,
    to: u32,
) -> Result<u32, F::Error> {
    let mut check = BlankCheck::new(from, to);
    while let Some((addr, len)) = check.next_read() {
        let chunk = buf.get_mut(..len).unwrap_or(&mut []);
        flash.read(addr, chunk).await?;
        check.feed(chunk);
    }
    Ok(check.erased_end())
}

/// The async twin of [`run_state`].
pub(super) async fn run_state_async<F: AsyncNorFlash>(
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
                    .await
                    .map_err(flash_err(FlashOp::ReadState))?;
                job.feed(chunk, out);
            }
            StateOp::Erase { from } => flash
                .erase(from, from + SECTOR_SIZE)
                .await
                .map_err(flash_err(FlashOp::EraseState))?,
            StateOp::Write { addr, len } => flash
                .write(addr, buf.get(..len).unwrap_or(&[]))
                .await
                .map_err(flash_err(FlashOp::WriteState))?,
        }
        job.commit(op);
    }
    Ok(())
}

/// The async twin of [`state_job`].
pub(super) async fn state_job_async<F: AsyncNorFlash>(
    flash: &mut F,
    area: StateArea,
    goal: StateGoal,
    out: &mut [u8],
) -> Result<StateJob, SinkError<F::Error>> {
    let mut job = StateJob::new(area, goal);
    run_state_async(flash, &mut job, &[], out).await?;
    Ok(job)
}

/// The async twin of [`drive`].
pub(super) async fn drive_async<F: AsyncNorFlash>(
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
                .await
                .map_err(flash_err(FlashOp::EraseSlot))?,
            Op::Program { addr, src } => flash
                .write(addr, w.writer.bytes(src, data))
                .await
                .map_err(flash_err(FlashOp::WriteSlot))?,
            Op::Record { offset } => w
                .journal
                .record_async(flash, &w.record(offset))
                .await
                .map_err(journal_err)?,
        }
        w.writer.commit(op, &mut consumed);
    }
    Ok(())
}

/// The async twin of [`verify`].
pub(super) async fn verify_async<F: AsyncNorFlash>(
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
            .await
            .map_err(flash_err(FlashOp::ReadSlot))?;
        v.feed(chunk);
    }
    v.finish(expected)
}

/// The async twin of [`read_unaligned`].
pub(super) async fn read_unaligned_async<F: AsyncNorFlash>(
    flash: &mut F,
    addr: u32,
    out: &mut [u8],
) -> Result<(), F::Error> {
    let mut done = 0;
    while let Some(rest) = out.get_mut(done..).filter(|r| !r.is_empty()) {
        let at = addr + done as u32;
        match read_step(at, rest.len(), F::READ_SIZE) {
            ReadStep::Direct(n) => {
                flash.read(at, rest.get_mut(..n).unwrap_or(&mut [])).await?;
                done += n;
            }
            ReadStep::Bounce {
                aligned,
                len,
                skip,
                take,
            } => {
                let mut scratch = [0u8; WRITE_BUF_LEN];
                flash
                    .read(aligned, scratch.get_mut(..len).unwrap_or(&mut []))
                    .await?;
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

/// The ESP-IDF sink contract on an async flash; see [`EspIdfSink`]'s implementation of
/// [`OtaSink`] and the cancel-safety notes on [`AsyncEspIdfSink`].
impl<F: AsyncNorFlash> AsyncOtaSink for AsyncEspIdfSink<F> {
    type Error = SinkError<F::Error>;

    async fn begin(&mut self, image: &ImageDescriptor) -> Result<Resume, Self::Error> {
        self.do_begin(image).await
    }

    async fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), Self::Error> {
        self.do_write(offset, data).await
    }

    async fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), Self::Error> {
        self.do_read(offset, buf).await
    }

    async fn prepare(&mut self, offset: u32, len: u32) -> Result<(), Self::Error> {
        self.do_prepare(offset, len).await
    }

    async fn finish(&mut self, expected: &ExpectedImage<'_>) -> Result<(), Self::Error> {
        self.do_finish(expected).await
    }

    async fn abort(&mut self) -> Result<(), Self::Error> {
        self.do_abort().await
    }

    /// See [`EspIdfSink`]'s `read_running`. Cancel-safe (it only reads).
    async fn read_running(&mut self, offset: u32, buf: &mut [u8]) -> Result<bool, Self::Error> {
        self.do_read_running(offset, buf).await
    }

    /// See [`EspIdfSink`]'s `save_state`. Cancelling it has the effect of a power cut at
    /// that point (the previous newest state stays in force) and closes the session.
    async fn save_state(&mut self, at: u32, state: &[u8]) -> Result<bool, Self::Error> {
        self.do_save_state(at, state).await
    }

    /// See [`EspIdfSink`]'s `load_state`. Cancel-safe (it only reads).
    async fn load_state(&mut self, buf: &mut [u8]) -> Result<Option<usize>, Self::Error> {
        self.do_load_state(buf).await
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
