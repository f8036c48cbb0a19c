//! Test support: a virtual clock and a scripted modem transport that share one timeline.
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use cellular_ota::at::{AsyncClock, Clock, Instant};

/// One step of a script.
#[derive(Clone, Debug)]
pub enum Step {
    /// The host must write exactly these bytes next (compared when enough have arrived).
    Expect(Vec<u8>),
    /// The modem sends these bytes `after_ms` after the previous step completed.
    Reply { after_ms: u64, bytes: Vec<u8> },
    /// The port fails `count` reads (a USB port re-enumerating), `after_ms` after the
    /// previous step.
    PortError { after_ms: u64, count: u32 },
}

pub fn port_error(after_ms: u64, count: u32) -> Step {
    Step::PortError { after_ms, count }
}

/// Shorthand constructors.
pub fn expect(b: impl AsRef<[u8]>) -> Step {
    Step::Expect(b.as_ref().to_vec())
}
pub fn reply(b: impl AsRef<[u8]>) -> Step {
    Step::Reply {
        after_ms: 1,
        bytes: b.as_ref().to_vec(),
    }
}
pub fn reply_after(ms: u64, b: impl AsRef<[u8]>) -> Step {
    Step::Reply {
        after_ms: ms,
        bytes: b.as_ref().to_vec(),
    }
}

#[derive(Debug, Default)]
pub struct World {
    pub now_us: u64,
    script: VecDeque<Step>,
    /// Bytes scheduled for delivery: (time, byte).
    pending: VecDeque<(u64, u8)>,
    /// Host bytes not yet matched against an Expect.
    written: Vec<u8>,
    /// Everything the host wrote.
    pub all_written: Vec<u8>,
    /// Largest chunk a single read returns.
    pub max_read: usize,
    /// Time advanced per idle `read_ready` poll when nothing is scheduled.
    pub idle_step_us: u64,
    pub mismatch: Option<String>,
    /// Scheduled port failures: (time, remaining failing reads).
    errors: VecDeque<(u64, u32)>,
}

impl World {
    fn schedule_ready_steps(&mut self) {
        let mut t = self.now_us;
        if let Some(&(last, _)) = self.pending.back() {
            t = t.max(last);
        }
        loop {
            match self.script.front() {
                Some(Step::Reply { .. }) => {
                    let Some(Step::Reply { after_ms, bytes }) = self.script.pop_front() else {
                        unreachable!()
                    };
                    t += after_ms * 1000;
                    for b in bytes {
                        self.pending.push_back((t, b));
                    }
                }
                Some(Step::PortError { .. }) => {
                    let Some(Step::PortError { after_ms, count }) = self.script.pop_front() else {
                        unreachable!()
                    };
                    t += after_ms * 1000;
                    self.errors.push_back((t, count));
                }
                _ => break,
            }
        }
    }

    fn on_write(&mut self, buf: &[u8]) {
        self.written.extend_from_slice(buf);
        self.all_written.extend_from_slice(buf);
        loop {
            let Some(Step::Expect(e)) = self.script.front() else {
                if !self.written.is_empty() && self.mismatch.is_none() {
                    self.mismatch = Some(format!(
                        "unexpected host bytes {:?}",
                        String::from_utf8_lossy(&self.written)
                    ));
                }
                return;
            };
            if self.written.len() < e.len() {
                if !e.starts_with(&self.written) && self.mismatch.is_none() {
                    self.mismatch = Some(format!(
                        "host wrote {:?}, script expects {:?}",
                        String::from_utf8_lossy(&self.written),
                        String::from_utf8_lossy(e)
                    ));
                }
                return;
            }
            let e = e.clone();
            if self.written[..e.len()] != e[..] && self.mismatch.is_none() {
                self.mismatch = Some(format!(
                    "host wrote {:?}, script expects {:?}",
                    String::from_utf8_lossy(&self.written),
                    String::from_utf8_lossy(&e)
                ));
            }
            self.written.drain(..e.len());
            self.script.pop_front();
            self.schedule_ready_steps();
        }
    }

    fn due(&self) -> usize {
        self.pending
            .iter()
            .take_while(|(t, _)| *t <= self.now_us)
            .count()
    }

    fn next_event(&self) -> Option<u64> {
        let bytes = self.pending.front().map(|&(t, _)| t);
        let errs = self.errors.front().map(|&(t, _)| t);
        match (bytes, errs) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Takes one scheduled read failure that is due.
    fn take_error(&mut self) -> bool {
        match self.errors.front_mut() {
            Some((t, n)) if *t <= self.now_us => {
                *n -= 1;
                if *n == 0 {
                    self.errors.pop_front();
                }
                true
            }
            _ => false,
        }
    }

    fn error_due(&self) -> bool {
        self.errors.front().is_some_and(|&(t, _)| t <= self.now_us)
    }

    pub fn script_done(&self) -> bool {
        self.script.is_empty() && self.pending.is_empty()
    }
}

/// The shared timeline.
#[derive(Clone, Debug)]
pub struct Sim(pub Rc<RefCell<World>>);

impl Sim {
    pub fn new(script: Vec<Step>) -> Self {
        let mut w = World {
            script: script.into(),
            max_read: 64,
            idle_step_us: 1_000,
            ..Default::default()
        };
        w.schedule_ready_steps();
        Sim(Rc::new(RefCell::new(w)))
    }

    pub fn with_max_read(self, n: usize) -> Self {
        self.0.borrow_mut().max_read = n;
        self
    }

    pub fn clock(&self) -> VClock {
        VClock(self.0.clone())
    }

    pub fn port(&self) -> Port {
        Port(self.0.clone())
    }

    pub fn now_ms(&self) -> u64 {
        self.0.borrow().now_us / 1000
    }

    pub fn assert_done(&self) {
        let w = self.0.borrow();
        assert_eq!(w.mismatch, None);
        assert!(w.script.is_empty(), "script not finished: {:?}", w.script);
    }

    pub fn written(&self) -> Vec<u8> {
        self.0.borrow().all_written.clone()
    }
}

/// Virtual clock. `wait_until` jumps to the next scheduled modem byte or the deadline.
#[derive(Clone, Debug)]
pub struct VClock(Rc<RefCell<World>>);

impl Clock for VClock {
    /// Each reading moves time on by 1 µs: a program that spins on the clock (the blocking
    /// client's waits) sees time pass, as it would on a real timer.
    fn now(&self) -> Instant {
        let mut w = self.0.borrow_mut();
        w.now_us += 1;
        Instant::from_micros(w.now_us)
    }
}

impl AsyncClock for VClock {
    async fn wait_until(&mut self, deadline: Instant) {
        std::future::poll_fn(|cx| {
            let mut w = self.0.borrow_mut();
            if w.now_us >= deadline.as_micros() {
                return std::task::Poll::Ready(());
            }
            let next = w.next_event().unwrap_or(u64::MAX);
            w.now_us = next.min(deadline.as_micros()).max(w.now_us);
            if w.now_us >= deadline.as_micros() {
                std::task::Poll::Ready(())
            } else {
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            }
        })
        .await
    }
}

/// The host side of the scripted UART.
#[derive(Clone, Debug)]
pub struct Port(Rc<RefCell<World>>);

impl embedded_io::ErrorType for Port {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::ReadReady for Port {
    fn read_ready(&mut self) -> Result<bool, Self::Error> {
        let mut w = self.0.borrow_mut();
        if w.due() > 0 || w.error_due() {
            return Ok(true);
        }
        // Idle: let virtual time pass up to the next scheduled byte.
        let step = w.idle_step_us;
        let next = w.next_event().unwrap_or(u64::MAX);
        w.now_us = next.min(w.now_us + step);
        Ok(w.due() > 0 || w.error_due())
    }
}

impl Port {
    fn take(&mut self, buf: &mut [u8]) -> usize {
        let mut w = self.0.borrow_mut();
        let n = w.due().min(buf.len()).min(w.max_read);
        for b in buf.iter_mut().take(n) {
            *b = w.pending.pop_front().unwrap().1;
        }
        n
    }
}

impl embedded_io::Read for Port {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        if self.0.borrow_mut().take_error() {
            return Err(embedded_io::ErrorKind::NotConnected);
        }
        // Blocking read: wait (in virtual time) for at least one byte.
        loop {
            let n = self.take(buf);
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            let mut w = self.0.borrow_mut();
            match w.next_event() {
                Some(t) => w.now_us = w.now_us.max(t),
                None => return Ok(0),
            }
        }
    }
}

impl embedded_io::Write for Port {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.0.borrow_mut().on_write(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl embedded_io_async::Read for Port {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        std::future::poll_fn(|cx| {
            if self.0.borrow_mut().take_error() {
                return std::task::Poll::Ready(Err(embedded_io::ErrorKind::NotConnected));
            }
            let n = self.take(buf);
            if n > 0 || buf.is_empty() {
                std::task::Poll::Ready(Ok(n))
            } else {
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            }
        })
        .await
    }
}

impl embedded_io_async::Write for Port {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.0.borrow_mut().on_write(buf);
        Ok(buf.len())
    }
    async fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Runs a future to completion on the current thread (the futures here never wait on
/// anything but the virtual world, which always makes progress when polled).
#[allow(unused_imports)] // not every test binary that includes this module uses it
pub use cellular_ota::block_on;

/// Collects URC lines as strings.
#[derive(Clone, Debug, Default)]
pub struct Urcs(pub Rc<RefCell<Vec<String>>>);

impl cellular_ota::client::UrcHandler for Urcs {
    fn on_urc(&mut self, line: &[u8]) {
        self.0
            .borrow_mut()
            .push(String::from_utf8_lossy(line).into_owned());
    }
}

impl Urcs {
    pub fn lines(&self) -> Vec<String> {
        self.0.borrow().clone()
    }
}
