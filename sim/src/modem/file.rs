//! The module file system (§7): a `UFS` drive of the personality's size (files occupy whole
//! 4 KiB blocks, as EG800K reports) and a 1 MiB `RAM` drive. Names are `UFS:<name>`,
//! `RAM:<name>` or a bare `<name>` (UFS).
//!
//! Exact framing, from the fixtures and §7:
//!
//! * `AT+QFUPL` → `\r\nCONNECT\r\n`, exactly `<size>` bytes in, then
//!   `\r\n+QFUPL: <size>,<checksum>\r\n\r\nOK\r\n`; in ack mode one `A` after every 1024
//!   bytes received; a gap longer than `<timeout>` stores what arrived, prints its size and
//!   checksum, then `+CME ERROR: 421`.
//! * `AT+QFDWL` → `\r\nCONNECT\r\n<bytes>\r\n+QFDWL: <size>,<checksum>\r\nOK\r\n`.
//! * `AT+QFREAD` → `\r\nCONNECT <n>\r\n<n bytes>\r\nOK\r\n`; at the end of the file
//!   `+CME ERROR: 402`.
//! * `AT+QFWRITE` → `\r\nCONNECT\r\n`, `<len>` bytes in, `\r\n+QFWRITE: <len>,<total>\r\n\r\nOK\r\n`.
//! * Checksums: [`cellular_ota::quectel::file::xor_checksum`], printed as lowercase hex
//!   without leading zeros.
//!
//! Error codes (§5.4): 402 EOF, 403 drive full (upload larger than the free space), 405 not
//! found, 406 bad name, 407 exists, 401 seek past the end, 413 more than 10 open handles, 414
//! write to a read-only handle, 416 bad handle, 420 no space (write), 421 input timeout,
//! 426 already open.

use std::collections::BTreeMap;
use std::time::Duration;

use cellular_ota::quectel::file::xor_checksum;

use super::DataKind;
use super::at::{CmdError, CmdResult, Command, Form, Reply};
use crate::world::State;

/// Size of the RAM drive.
const RAM_TOTAL: u64 = 1 << 20;
/// Allocation unit of UFS.
const BLOCK: u64 = 4096;
/// Most handles open at once.
const MAX_OPEN: usize = 10;
/// The first handle number (EC2x handles look like 1027, §7 fixture).
const FIRST_HANDLE: u32 = 1027;

/// A drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Drive {
    Ufs,
    Ram,
}

/// An open file.
#[derive(Clone, Debug)]
pub(crate) struct Handle {
    drive: Drive,
    name: String,
    pos: usize,
    read_only: bool,
}

/// The file system.
#[derive(Debug)]
pub(crate) struct Fs {
    ufs: BTreeMap<String, Vec<u8>>,
    ram: BTreeMap<String, Vec<u8>>,
    pub(crate) handles: BTreeMap<u32, Handle>,
    next_handle: u32,
    ufs_total: u64,
}

/// Splits `UFS:x` / `RAM:x` / `x`; checks the name.
pub(crate) fn parse_name(s: &str) -> Result<(Drive, String), CmdError> {
    let (drive, name) = match s.split_once(':') {
        Some((d, n)) if d.eq_ignore_ascii_case("UFS") => (Drive::Ufs, n),
        Some((d, n)) if d.eq_ignore_ascii_case("RAM") => (Drive::Ram, n),
        Some(_) => return Err(CmdError::Cme(406)),
        None => (Drive::Ufs, s),
    };
    let ok = !name.is_empty()
        && name.len() <= 80
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\\' | b':' | b'*' | b'?'));
    if ok {
        Ok((drive, name.to_string()))
    } else {
        Err(CmdError::Cme(406))
    }
}

fn blocks(len: u64) -> u64 {
    len.div_ceil(BLOCK) * BLOCK
}

/// `*`-only glob match.
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            let Some(rest) = name.strip_prefix(head) else {
                return false;
            };
            if tail.is_empty() {
                return true;
            }
            (0..=rest.len()).any(|i| rest.is_char_boundary(i) && glob(tail, &rest[i..]))
        }
    }
}

impl Fs {
    pub(crate) fn new(ufs_total: u64) -> Self {
        Fs {
            ufs: BTreeMap::new(),
            ram: BTreeMap::new(),
            handles: BTreeMap::new(),
            next_handle: FIRST_HANDLE,
            ufs_total,
        }
    }

    pub(crate) fn map(&self, d: Drive) -> &BTreeMap<String, Vec<u8>> {
        match d {
            Drive::Ufs => &self.ufs,
            Drive::Ram => &self.ram,
        }
    }

    pub(crate) fn map_mut(&mut self, d: Drive) -> &mut BTreeMap<String, Vec<u8>> {
        match d {
            Drive::Ufs => &mut self.ufs,
            Drive::Ram => &mut self.ram,
        }
    }

    fn total(&self, d: Drive) -> u64 {
        match d {
            Drive::Ufs => self.ufs_total,
            Drive::Ram => RAM_TOTAL,
        }
    }

    fn used(&self, d: Drive) -> u64 {
        self.map(d).values().map(|v| blocks(v.len() as u64)).sum()
    }

    pub(crate) fn free(&self, d: Drive) -> u64 {
        self.total(d).saturating_sub(self.used(d))
    }

    /// Whether `name` can become `len` bytes long.
    pub(crate) fn fits(&self, d: Drive, name: &str, len: u64) -> bool {
        let old = self.map(d).get(name).map_or(0, |v| blocks(v.len() as u64));
        blocks(len) <= self.free(d) + old
    }

    fn handle(&self, h: i64) -> Result<&Handle, CmdError> {
        u32::try_from(h)
            .ok()
            .and_then(|h| self.handles.get(&h))
            .ok_or(CmdError::Cme(416))
    }
}

impl State {
    pub(super) fn cmd_file(&mut self, c: &Command) -> Option<CmdResult> {
        let r = match (c.name.as_str(), c.form) {
            ("+QFLDS", Form::Exec) => {
                let fs = &self.modem.fs;
                let size: usize = fs.ufs.values().map(Vec::len).sum();
                Ok(Reply::line(format!("+QFLDS: {size},{}", fs.ufs.len())))
            }
            ("+QFLDS", Form::Write) => {
                let d = c.args.text(0).map(str::to_ascii_uppercase);
                let drive = match d.as_deref() {
                    Ok("UFS") => Ok(Drive::Ufs),
                    Ok("RAM") => Ok(Drive::Ram),
                    _ => Err(CmdError::Cme(425)),
                };
                drive.map(|d| {
                    let fs = &self.modem.fs;
                    Reply::line(format!("+QFLDS: {},{}", fs.free(d), fs.total(d)))
                })
            }
            ("+QFLST", Form::Exec) => Ok(self.list(Drive::Ufs, "*")),
            ("+QFLST", Form::Write) => self.qflst(c),
            ("+QFDEL", Form::Write) => self.qfdel(c),
            ("+QFUPL", Form::Write) => self.qfupl(c),
            ("+QFUPL", Form::Test) => {
                let free = self.modem.fs.free(Drive::Ufs);
                Ok(Reply::line(format!(
                    "+QFUPL: <filename>,(1-{free}),(1-65535),(0,1)"
                )))
            }
            ("+QFDWL", Form::Write) => self.qfdwl(c),
            ("+QFOPEN", Form::Write) => self.qfopen(c),
            ("+QFREAD", Form::Write) => self.qfread(c),
            ("+QFWRITE", Form::Write) => self.qfwrite(c),
            ("+QFSEEK", Form::Write) => self.qfseek(c),
            ("+QFPOSITION", Form::Write) => {
                let h = c.args.num(0);
                h.and_then(|h| self.modem.fs.handle(h))
                    .map(|h| Reply::line(format!("+QFPOSITION: {}", h.pos)))
            }
            ("+QFFLUSH", Form::Write) => {
                let h = c.args.num(0);
                h.and_then(|h| self.modem.fs.handle(h)).map(|_| Reply::ok())
            }
            ("+QFCLOSE", Form::Write) => match c.args.num(0) {
                Ok(h) => match u32::try_from(h)
                    .ok()
                    .and_then(|h| self.modem.fs.handles.remove(&h))
                {
                    Some(_) => Ok(Reply::ok()),
                    None => Err(CmdError::Cme(416)),
                },
                Err(e) => Err(e),
            },
            _ => return None,
        };
        Some(r)
    }

    fn display_name(&self, d: Drive, name: &str) -> String {
        match d {
            Drive::Ram => format!("RAM:{name}"),
            Drive::Ufs if self.modem.cfg.personality.lists_with_drive() => format!("UFS:{name}"),
            Drive::Ufs => name.to_string(),
        }
    }

    fn list(&self, d: Drive, pattern: &str) -> Reply {
        let lines = self
            .modem
            .fs
            .map(d)
            .iter()
            .filter(|(n, _)| glob(pattern, n))
            .map(|(n, v)| format!("+QFLST: \"{}\",{}", self.display_name(d, n), v.len()))
            .collect();
        Reply::Lines(lines)
    }

    fn qflst(&mut self, c: &Command) -> CmdResult {
        let pattern = c.args.quoted(0)?;
        let (drive, pat) = match pattern.split_once(':') {
            Some((d, p)) if d.eq_ignore_ascii_case("UFS") => (Drive::Ufs, p),
            Some((d, p)) if d.eq_ignore_ascii_case("RAM") => (Drive::Ram, p),
            Some(_) => return Err(CmdError::Cme(406)),
            None => (Drive::Ufs, pattern),
        };
        if pat.contains('*') {
            return Ok(self.list(drive, pat));
        }
        let (drive, name) = parse_name(pattern)?;
        match self.modem.fs.map(drive).get(&name) {
            Some(v) => Ok(Reply::line(format!(
                "+QFLST: \"{}\",{}",
                self.display_name(drive, &name),
                v.len()
            ))),
            None => Err(CmdError::Cme(405)),
        }
    }

    fn qfdel(&mut self, c: &Command) -> CmdResult {
        let name = c.args.quoted(0)?;
        if name == "*" || name.eq_ignore_ascii_case("UFS:*") {
            self.modem.fs.ufs.clear();
            return Ok(Reply::ok());
        }
        if name.eq_ignore_ascii_case("RAM:*") {
            self.modem.fs.ram.clear();
            return Ok(Reply::ok());
        }
        let (drive, name) = parse_name(name)?;
        match self.modem.fs.map_mut(drive).remove(&name) {
            Some(_) => Ok(Reply::ok()),
            None => Err(CmdError::Cme(405)),
        }
    }

    fn qfupl(&mut self, c: &Command) -> CmdResult {
        let (drive, name) = parse_name(c.args.quoted(0)?)?;
        let size = c.args.ranged(1, 1, i64::from(u32::MAX))? as u64;
        let timeout = c.args.ranged_or(2, 1, 65535, 5)? as u64;
        let ack = c.args.ranged_or(3, 0, 1, 0)? == 1;
        if self.modem.fs.map(drive).contains_key(&name) {
            return Err(CmdError::Cme(407));
        }
        if !self.modem.fs.fits(drive, &name, size) {
            return Err(CmdError::Cme(403));
        }
        self.emit(b"\r\nCONNECT\r\n");
        self.start_data_in(
            DataKind::Upload { drive, name, ack },
            size as usize,
            Some(Duration::from_secs(timeout)),
            None,
        );
        Ok(Reply::Handled)
    }

    pub(super) fn upload_done(
        &mut self,
        drive: Drive,
        name: String,
        data: Vec<u8>,
        timed_out: bool,
    ) {
        let line = format!("+QFUPL: {},{:x}", data.len(), xor_checksum(&data));
        self.modem.fs.map_mut(drive).insert(name, data);
        self.emit_lines(&[line]);
        if timed_out {
            self.emit_error(CmdError::Cme(421));
        } else {
            self.emit_ok();
        }
    }

    fn qfdwl(&mut self, c: &Command) -> CmdResult {
        let (drive, name) = parse_name(c.args.quoted(0)?)?;
        let Some(data) = self.modem.fs.map(drive).get(&name).cloned() else {
            return Err(CmdError::Cme(405));
        };
        self.emit(b"\r\nCONNECT\r\n");
        self.emit_payload(&data);
        let tail = format!(
            "\r\n+QFDWL: {},{:x}\r\nOK\r\n",
            data.len(),
            xor_checksum(&data)
        );
        self.emit(tail.as_bytes());
        Ok(Reply::Handled)
    }

    fn qfopen(&mut self, c: &Command) -> CmdResult {
        let (drive, name) = parse_name(c.args.quoted(0)?)?;
        let mode = c.args.ranged_or(1, 0, 2, 0)?;
        let fs = &mut self.modem.fs;
        if fs
            .handles
            .values()
            .any(|h| h.drive == drive && h.name == name)
        {
            return Err(CmdError::Cme(426));
        }
        if fs.handles.len() >= MAX_OPEN {
            return Err(CmdError::Cme(413));
        }
        let exists = fs.map(drive).contains_key(&name);
        match mode {
            2 if !exists => return Err(CmdError::Cme(405)),
            0 if !exists => {
                fs.map_mut(drive).insert(name.clone(), Vec::new());
            }
            1 => {
                fs.map_mut(drive).insert(name.clone(), Vec::new());
            }
            _ => {}
        }
        let h = fs.next_handle;
        fs.next_handle = fs.next_handle.wrapping_add(1).max(FIRST_HANDLE);
        fs.handles.insert(
            h,
            Handle {
                drive,
                name,
                pos: 0,
                read_only: mode == 2,
            },
        );
        Ok(Reply::line(format!("+QFOPEN: {h}")))
    }

    fn qfread(&mut self, c: &Command) -> CmdResult {
        let h = c.args.num(0)?;
        let want = match c.args.opt_num(1)? {
            None => None,
            Some(n) if n >= 1 => Some(n as u64),
            Some(_) => return Err(CmdError::Error),
        };
        let handle = self.modem.fs.handle(h)?.clone();
        let data = self
            .modem
            .fs
            .map(handle.drive)
            .get(&handle.name)
            .cloned()
            .unwrap_or_default();
        let remaining = data.len().saturating_sub(handle.pos);
        if remaining == 0 {
            return Err(CmdError::Cme(402));
        }
        let n = want.map_or(remaining, |w| (w.min(remaining as u64)) as usize);
        let chunk = &data[handle.pos..handle.pos + n];
        self.emit(format!("\r\nCONNECT {n}\r\n").as_bytes());
        self.emit_payload(chunk);
        self.emit(b"\r\nOK\r\n");
        if let Some(hh) = self.modem.fs.handles.get_mut(&(h as u32)) {
            hh.pos += n;
        }
        Ok(Reply::Handled)
    }

    fn qfwrite(&mut self, c: &Command) -> CmdResult {
        let h = c.args.num(0)?;
        let len = c.args.ranged(1, 1, i64::from(u32::MAX))? as u64;
        let timeout = c.args.ranged_or(2, 1, 65535, 5)? as u64;
        let handle = self.modem.fs.handle(h)?.clone();
        if handle.read_only {
            return Err(CmdError::Cme(414));
        }
        let size = self
            .modem
            .fs
            .map(handle.drive)
            .get(&handle.name)
            .map_or(0, Vec::len) as u64;
        let new_len = size.max(handle.pos as u64 + len);
        if !self.modem.fs.fits(handle.drive, &handle.name, new_len) {
            return Err(CmdError::Cme(420));
        }
        self.emit(b"\r\nCONNECT\r\n");
        self.start_data_in(
            DataKind::Write { handle: h as u32 },
            len as usize,
            Some(Duration::from_secs(timeout)),
            None,
        );
        Ok(Reply::Handled)
    }

    pub(super) fn write_done(&mut self, h: u32, data: Vec<u8>, timed_out: bool) {
        let Some(handle) = self.modem.fs.handles.get(&h).cloned() else {
            self.emit_error(CmdError::Cme(416));
            return;
        };
        let file = self
            .modem
            .fs
            .map_mut(handle.drive)
            .entry(handle.name.clone())
            .or_default();
        let end = handle.pos + data.len();
        if file.len() < end {
            file.resize(end, 0);
        }
        file[handle.pos..end].copy_from_slice(&data);
        let total = file.len();
        if let Some(hh) = self.modem.fs.handles.get_mut(&h) {
            hh.pos = end;
        }
        self.emit_lines(&[format!("+QFWRITE: {},{}", data.len(), total)]);
        if timed_out {
            self.emit_error(CmdError::Cme(421));
        } else {
            self.emit_ok();
        }
    }

    fn qfseek(&mut self, c: &Command) -> CmdResult {
        let h = c.args.num(0)?;
        let off = c.args.num(1)?;
        let origin = c.args.ranged_or(2, 0, 2, 0)?;
        let handle = self.modem.fs.handle(h)?.clone();
        let size = self
            .modem
            .fs
            .map(handle.drive)
            .get(&handle.name)
            .map_or(0, Vec::len) as i64;
        let base = match origin {
            0 => 0,
            1 => handle.pos as i64,
            _ => size,
        };
        let pos = base.checked_add(off).ok_or(CmdError::Cme(401))?;
        if pos < 0 || pos > size {
            return Err(CmdError::Cme(401));
        }
        if let Some(hh) = self.modem.fs.handles.get_mut(&(h as u32)) {
            hh.pos = pos as usize;
        }
        Ok(Reply::ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_globs() {
        assert_eq!(parse_name("UFS:a.bin"), Ok((Drive::Ufs, "a.bin".into())));
        assert_eq!(parse_name("ram:x"), Ok((Drive::Ram, "x".into())));
        assert_eq!(parse_name("x"), Ok((Drive::Ufs, "x".into())));
        assert!(parse_name("SD:x").is_err());
        assert!(parse_name("").is_err());
        assert!(parse_name("a\"b").is_err());
        assert!(glob("*", "abc"));
        assert!(glob("a*c", "abbc"));
        assert!(glob("*.bin", "fw.bin"));
        assert!(!glob("*.bin", "fw.txt"));
        assert!(glob("fw.bin", "fw.bin"));
    }

    #[test]
    fn space_accounting() {
        let mut fs = Fs::new(16384);
        assert!(fs.fits(Drive::Ufs, "a", 16384));
        fs.map_mut(Drive::Ufs).insert("a".into(), vec![0; 5000]);
        assert_eq!(fs.free(Drive::Ufs), 16384 - 8192);
        assert!(!fs.fits(Drive::Ufs, "b", 8193));
        assert!(fs.fits(Drive::Ufs, "a", 16384));
    }
}
