//! The simulated modem behind a pseudo-terminal, in **real time**, so that a host tool (a
//! terminal program, a flashing tool, a std driver) can open the slave path — e.g.
//! `/dev/pts/5` — and talk to it exactly as to the `/dev/ttyUSB2` of a real module.
//!
//! A background thread owns a [`World`] and pumps bytes: what the tool writes
//! to the slave is written to the world's [`HostUart`](crate::HostUart), virtual time is kept
//! level with wall time, and what the modem sends is written back to the master. The pty is
//! in raw mode (no echo, no CR/LF translation), so the tool sees the modem's exact bytes.
//! Baud-rate changes of the tool's termios have no effect: the UART model runs at
//! [`UartConfig::baud`](crate::UartConfig::baud), which paces the modem's output.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::pty::openpty;
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};

use crate::world::{World, WorldConfig};

/// A simulated modem served on a pseudo-terminal; stops when dropped.
#[derive(Debug)]
pub struct PtyModem {
    slave_path: PathBuf,
    stop: Arc<AtomicBool>,
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
        let thread = std::thread::Builder::new()
            .name("cellular-ota-sim-pty".into())
            .spawn(move || {
                // Keep the slave open so the master never reports EIO between clients.
                let _slave = slave;
                pump(master, config, &stop2);
            })?;
        Ok(PtyModem {
            slave_path,
            stop,
            thread: Some(thread),
        })
    }

    /// The slave device to open, e.g. `/dev/pts/5`.
    pub fn slave_path(&self) -> &Path {
        &self.slave_path
    }
}

fn pump(mut master: File, config: WorldConfig, stop: &AtomicBool) {
    let world = World::new(config);
    let uart = world.host_uart();
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    let mut to_tool: Vec<u8> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let mut active = false;
        match master.read(&mut buf) {
            Ok(n) if n > 0 => {
                active = true;
                let mut rest = &buf[..n];
                while !rest.is_empty() {
                    match embedded_io::Write::write(&mut uart.clone(), rest) {
                        Ok(k) => rest = &rest[k..],
                        Err(_) => {
                            world.acknowledge_mcu_reset();
                            break;
                        }
                    }
                }
            }
            _ => {}
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
