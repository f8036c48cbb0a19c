//! The simulated modem behind a pseudo-terminal, in **real time**, so that a host tool (a
//! terminal program, a flashing tool, a std driver) can open the slave path — e.g.
//! `/dev/pts/5` — and talk to it exactly as to the `/dev/ttyUSB2` of a real module.
//!
//! A background thread owns a [`World`] and pumps bytes: what the tool writes
//! to the slave is written to the world's [`HostUart`](crate::HostUart), virtual time is kept
//! level with wall time, and what the modem sends is written back to the master. The pty is
//! in raw mode (no echo, no CR/LF translation), so the tool sees the modem's exact bytes.
//! Baud-rate changes of the tool's termios have no effect: the UART model runs at
//! [`UartConfig::baud`](crate::UartConfig::baud), which paces the modem's output and the
//! tool's input alike.
//!
//! The tool's bytes enter the host UART's transmit buffer only as fast as it has room (the
//! pump never lets virtual time run ahead of wall time); while it is full the pump stops
//! reading the pty, so the tool's writes block once the kernel's pty buffer is full. That is
//! how the modem's CTS (`AT+IFC=2,2` while it takes a firmware package) reaches the tool: a
//! pty has no modem-status lines, and termios flow-control flags on it have no effect.
//! [`PtyModem::with_modem`] runs code on the simulated modem (its state lives on the pump
//! thread).

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::pty::openpty;
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};

use crate::modem::SimModem;
use crate::world::{World, WorldConfig};

/// Work for the pump thread, which owns the world.
type Job = Box<dyn FnOnce(&World) + Send>;

/// A simulated modem served on a pseudo-terminal; stops when dropped.
#[derive(Debug)]
pub struct PtyModem {
    slave_path: PathBuf,
    stop: Arc<AtomicBool>,
    jobs: Mutex<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

fn to_io(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

impl PtyModem {
    /// Opens a pty pair and starts serving a world built from `config` on it. Large host
    /// receive buffers are used (the pump empties them every millisecond), whatever
    /// `config.uart` says about FIFO and ring sizes.
    pub fn spawn(mut config: WorldConfig) -> io::Result<PtyModem> {
        config.uart.host_fifo = config.uart.host_fifo.max(64 * 1024);
        config.uart.host_ring = config.uart.host_ring.max(64 * 1024);
        let pty = openpty(None, None).map_err(to_io)?;
        let mut t = tcgetattr(&pty.slave).map_err(to_io)?;
        cfmakeraw(&mut t);
        tcsetattr(&pty.slave, SetArg::TCSANOW, &t).map_err(to_io)?;
        let slave_path = nix::unistd::ttyname(&pty.slave).map_err(to_io)?;
        let flags = fcntl(&pty.master, FcntlArg::F_GETFL).map_err(to_io)?;
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        fcntl(&pty.master, FcntlArg::F_SETFL(flags)).map_err(to_io)?;
        let master = File::from(pty.master);
        let slave = pty.slave;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("cellular-ota-sim-pty".into())
            .spawn(move || {
                // Keep the slave open so the master never reports EIO between clients.
                let _slave = slave;
                pump(master, config, &stop2, &job_rx);
            })?;
        Ok(PtyModem {
            slave_path,
            stop,
            jobs: Mutex::new(jobs),
            thread: Some(thread),
        })
    }

    /// Runs `f` on the simulated modem (on the pump thread, between two pump turns) and
    /// returns its result; `None` if the pump has stopped or did not answer within 5 s.
    ///
    /// ```no_run
    /// # let modem: cellular_ota_sim::PtyModem = todo!();
    /// let package = modem.with_modem(|m| m.fota_file()).flatten();
    /// let revision = modem.with_modem(|m| m.revision());
    /// ```
    pub fn with_modem<R: Send + 'static>(
        &self,
        f: impl FnOnce(&SimModem) -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = mpsc::channel();
        let job: Job = Box::new(move |w: &World| {
            let _ = tx.send(f(&w.modem()));
        });
        self.jobs.lock().ok()?.send(job).ok()?;
        rx.recv_timeout(Duration::from_secs(5)).ok()
    }

    /// The slave device to open, e.g. `/dev/pts/5`.
    pub fn slave_path(&self) -> &Path {
        &self.slave_path
    }
}

fn pump(mut master: File, config: WorldConfig, stop: &AtomicBool, jobs: &mpsc::Receiver<Job>) {
    let world = World::new(config);
    let uart = world.host_uart();
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    let mut to_tool: Vec<u8> = Vec::new();
    // Read from the tool but not yet taken by the host UART's transmit buffer.
    let mut from_tool: Vec<u8> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let mut active = false;
        while let Ok(job) = jobs.try_recv() {
            job(&world);
        }
        if from_tool.is_empty() {
            match master.read(&mut buf) {
                Ok(n) if n > 0 => {
                    active = true;
                    from_tool.extend_from_slice(&buf[..n]);
                }
                _ => {}
            }
        }
        if !from_tool.is_empty() {
            match uart.try_write(&from_tool) {
                Ok(k) => {
                    active |= k > 0;
                    from_tool.drain(..k);
                }
                Err(_) => {
                    world.acknowledge_mcu_reset();
                    from_tool.clear();
                }
            }
        }
        let target = started.elapsed();
        let now = world.elapsed();
        if target > now {
            world.advance(target - now);
        }
        loop {
            match uart.try_read(&mut buf) {
                Ok(0) => break,
                Ok(n) => to_tool.extend_from_slice(&buf[..n]),
                Err(_) => {
                    world.acknowledge_mcu_reset();
                    break;
                }
            }
        }
        if !to_tool.is_empty() {
            active = true;
            match master.write(&to_tool) {
                Ok(n) => {
                    to_tool.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // No client has the slave open: the bytes are lost, as on a real port.
                Err(_) => to_tool.clear(),
            }
        }
        if !active {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for PtyModem {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
