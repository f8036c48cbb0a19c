//! The sink state both shells share (`Core`): configuration, the running app and the update session.

use super::*;

/// An update in progress.
#[derive(Clone, Debug)]
pub(super) struct Writing {
    pub(super) target: UpdateTarget,
    pub(super) otadata: u32,
    pub(super) ota_count: u8,
    pub(super) image: ImageDescriptor,
    pub(super) journal: Journal,
    pub(super) writer: Writer,
    /// The state kept with the resume point, or the one `save_state` kept last.
    pub(super) state: Option<StateRef>,
}

impl Writing {
    /// The journal record for "durable up to `offset`".
    pub(super) fn record(&self, offset: u32) -> JournalRecord {
        JournalRecord {
            id: self.image.id,
            size: self.image.size,
            offset,
        }
    }
}

/// What `finish` keeps of an update once the write buffer is flushed.
#[derive(Clone, Debug)]
pub(super) struct Finishing {
    pub(super) target: UpdateTarget,
    pub(super) otadata: u32,
    pub(super) ota_count: u8,
    pub(super) size: u32,
    pub(super) journal: Journal,
}

impl From<Writing> for Finishing {
    fn from(w: Writing) -> Self {
        Finishing {
            target: w.target,
            otadata: w.otadata,
            ota_count: w.ota_count,
            size: w.image.size,
            journal: w.journal,
        }
    }
}

// No heap to box into: the session *is* the sink's state, and it is one value per sink.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub(super) enum Session {
    Idle,
    Writing(Writing),
    /// Activated; the image can still be read back.
    Done {
        target: UpdateTarget,
        size: u32,
    },
}

/// Everything the two shells share: configuration, the remembered running app, the session.
#[derive(Clone, Debug)]
pub(super) struct Core {
    pub(super) config: SinkConfig,
    pub(super) running: Option<AppSlot>,
    /// `(offset, size)` of the running app's partition, once `read_running` looked it up.
    pub(super) running_span: Option<(u32, u32)>,
    pub(super) session: Session,
    pub(super) last: Option<ActivatedImage>,
}

impl Core {
    pub(super) fn new(config: SinkConfig) -> Self {
        Core {
            config,
            running: None,
            running_span: None,
            session: Session::Idle,
            last: None,
        }
    }

    /// Refuses a configuration that could not check what the bootloader checks.
    pub(super) fn check_config<E>(&self) -> Result<(), SinkError<E>> {
        if self.config.memory_map.is_none() {
            return Err(SinkError::NoMemoryMap {
                chip: self.config.chip.0,
            });
        }
        Ok(())
    }

    /// The running app, resolved once per sink value.
    pub(super) fn running<E>(
        &mut self,
        layout: &SlotLayout,
        entries: &[OtaSelectEntry; 2],
    ) -> Result<AppSlot, SinkError<E>> {
        if let Some(r) = self.running {
            return Ok(r);
        }
        let r = resolve_running(layout, entries, self.config.running_slot)?;
        self.running = Some(r);
        Ok(r)
    }

    /// The running app's partition, resolved once per sink value like the running app.
    pub(super) fn running_span<E>(
        &mut self,
        layout: &SlotLayout,
        entries: &[OtaSelectEntry; 2],
    ) -> Result<(u32, u32), SinkError<E>> {
        let running = self.running(layout, entries)?;
        let span = app_span(layout, running)?;
        self.running_span = Some(span);
        Ok(span)
    }

    /// Where `load_state` reads the kept state from: `None` if the resume point has none;
    /// [`SinkError::StateBufferTooSmall`] for a `len`-byte buffer that cannot take it.
    pub(super) fn kept_state<E>(
        &mut self,
        len: usize,
    ) -> Result<Option<(StateArea, StateRef)>, SinkError<E>> {
        let w = self.writing()?;
        let (Some(r), Some(area)) = (w.state, StateArea::of(&w.target, w.image.size)) else {
            return Ok(None);
        };
        if len < usize::from(r.len) {
            return Err(SinkError::StateBufferTooSmall {
                len,
                needed: usize::from(r.len),
            });
        }
        Ok(Some((area, r)))
    }

    pub(super) fn target<E>(
        &mut self,
        layout: &SlotLayout,
        entries: &[OtaSelectEntry; 2],
        geometry: FlashGeometry,
    ) -> Result<(UpdateTarget, Journal), SinkError<E>> {
        let running = self.running(layout, entries)?;
        let target = plan_target(layout, running, geometry)?;
        let journal = Journal::new(target.journal, target.offset + target.size, geometry)
            .map_err(SinkError::Journal)?;
        Ok((target, journal))
    }

    /// The update `begin` opens once the journal is read (and cleared, unless it resumes).
    pub(super) fn new_writing(
        layout: &SlotLayout,
        target: UpdateTarget,
        image: &ImageDescriptor,
        journal: Journal,
        resume: u32,
        geometry: FlashGeometry,
    ) -> Writing {
        // plan_target checked the geometry: the write size is at most 64.
        let writer = Writer::new(
            target.offset,
            SECTOR_SIZE,
            geometry.write as u32,
            image.size,
            resume,
        );
        Writing {
            target,
            otadata: layout.otadata,
            ota_count: layout.ota_count,
            image: *image,
            journal,
            writer,
            state: None,
        }
    }

    /// Opens the session.
    pub(super) fn start(&mut self, w: Writing) -> Resume {
        let resume = Resume {
            offset: w.writer.pos,
            capacity: w.target.capacity,
        };
        self.session = Session::Writing(w);
        resume
    }

    /// Closes an update in progress in this value (its durable part stays in the journal).
    pub(super) fn close_update(&mut self) {
        if matches!(self.session, Session::Writing(_)) {
            self.session = Session::Idle;
        }
    }

    /// Checks that the slot the next update writes may be erased now: otadata selects the
    /// running app, and that app is confirmed (its entry is not NEW or PENDING_VERIFY).
    pub(super) fn check_idle_erase<E>(
        &mut self,
        layout: &SlotLayout,
        entries: &[OtaSelectEntry; 2],
    ) -> Result<(), SinkError<E>> {
        self.check_selected(layout, entries)?;
        let state = match self.running(layout, entries)? {
            AppSlot::Ota(slot) => state_of(entries, layout.ota_count, slot),
            AppSlot::Factory => None,
        };
        match state {
            Some(state @ (OtaImageState::New | OtaImageState::PendingVerify)) => {
                Err(SinkError::NotConfirmed { state })
            }
            _ => Ok(()),
        }
    }

    pub(super) fn target_view(&self) -> Option<UpdateTarget> {
        match &self.session {
            Session::Idle => None,
            Session::Writing(w) => Some(w.target),
            Session::Done { target, .. } => Some(*target),
        }
    }

    pub(super) fn written(&self) -> Option<u32> {
        match &self.session {
            Session::Writing(w) => Some(w.writer.pos),
            _ => None,
        }
    }

    /// `finish` may run only once every byte is accepted.
    pub(super) fn check_complete<E>(&mut self) -> Result<(), SinkError<E>> {
        let w = self.writing()?;
        if w.writer.pos != w.image.size {
            return Err(SinkError::Incomplete {
                written: w.writer.pos,
                size: w.image.size,
            });
        }
        Ok(())
    }

    /// Moves the update out of the sink, leaving it closed until the caller puts it back.
    pub(super) fn take_writing<E>(&mut self) -> Result<Writing, SinkError<E>> {
        match core::mem::replace(&mut self.session, Session::Idle) {
            Session::Writing(w) => Ok(w),
            other => {
                self.session = other;
                Err(SinkError::NotStarted)
            }
        }
    }

    /// Bytes known erased from the write position on (0 outside an update).
    pub(super) fn erased_ahead(&self) -> u32 {
        match &self.session {
            Session::Writing(w) => w.writer.erased.saturating_sub(w.writer.pos),
            _ => 0,
        }
    }

    pub(super) fn writing<E>(&mut self) -> Result<&mut Writing, SinkError<E>> {
        match &mut self.session {
            Session::Writing(w) => Ok(w),
            _ => Err(SinkError::NotStarted),
        }
    }

    /// Splits a read of `len` bytes at `offset` into the flash part (address, length) and
    /// the part still in the write buffer.
    pub(super) fn read_split<E>(
        &self,
        offset: u32,
        len: usize,
    ) -> Result<(u32, usize), SinkError<E>> {
        let (base, on_flash, available) = match &self.session {
            Session::Idle => return Err(SinkError::NotStarted),
            Session::Writing(w) => (w.target.offset, w.writer.flushed, w.writer.pos),
            Session::Done { target, size } => (target.offset, *size, *size),
        };
        let end = u64::from(offset) + len as u64;
        if end > u64::from(available) {
            return Err(SinkError::ReadOutOfRange {
                offset,
                len,
                available,
            });
        }
        let flash_len = u64::from(on_flash.min(available))
            .saturating_sub(u64::from(offset))
            .min(len as u64) as usize;
        Ok((base + offset, flash_len))
    }

    /// Copies the buffered (not yet written) bytes of a read into `out[flash_len..]`.
    pub(super) fn read_buffered(&self, offset: u32, out: &mut [u8], flash_len: usize) {
        let Session::Writing(w) = &self.session else {
            return;
        };
        let Some(rest) = out.get_mut(flash_len..) else {
            return;
        };
        let from = (offset as usize + flash_len).saturating_sub(w.writer.flushed as usize);
        if let Some(src) = w.writer.buf.get(from..from + rest.len()) {
            rest.copy_from_slice(src);
        }
    }

    /// Keeps what verification found (in the sink, not in a future) for
    /// [`EspIdfSink::last_activated`]; `finish` clears it again if activation fails.
    pub(super) fn verified<E>(
        &mut self,
        f: &Finishing,
        result: Result<ImageInfo, SinkError<E>>,
    ) -> Result<(), SinkError<E>> {
        self.last = Some(ActivatedImage {
            slot: f.target.slot,
            info: result?,
        });
        Ok(())
    }

    pub(super) fn finished(&mut self, f: &Finishing) {
        self.session = Session::Done {
            target: f.target,
            size: f.size,
        };
    }

    /// Checks that otadata selects the running app before its state is changed.
    pub(super) fn check_selected<E>(
        &mut self,
        layout: &SlotLayout,
        entries: &[OtaSelectEntry; 2],
    ) -> Result<(), SinkError<E>> {
        let running = self.running(layout, entries)?;
        let selected = layout.app_for(&boot_slot(entries, layout.ota_count));
        if running != selected {
            return Err(SinkError::RunningNotSelected { running, selected });
        }
        Ok(())
    }
}

pub(super) fn is_verification_failure<E>(e: &SinkError<E>) -> bool {
    matches!(
        e,
        SinkError::HashMismatch { .. } | SinkError::Image(_) | SinkError::VersionMismatch { .. }
    )
}
