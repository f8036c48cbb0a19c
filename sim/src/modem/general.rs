//! General commands: echo, identification, SIM, signal, registration, UART settings,
//! functionality, URC routing, PDP contexts, `AT+QCFG`, `AT+QSSLCFG`.

use std::time::Duration;

use super::at::{CmdError, CmdResult, Command, Form, Reply};
use super::{Mode, Pdp, ip_error_text};
use crate::uart::Mark;
use crate::world::{Scope, State, Timer, duration_ns};

/// Baud rates `AT+IPR` accepts (EC2x list, §1).
const BAUD_RATES: [u32; 16] = [
    4800, 9600, 19200, 38400, 57600, 115_200, 230_400, 460_800, 921_600, 1_000_000, 2_000_000,
    2_900_000, 3_000_000, 3_200_000, 3_686_400, 4_000_000,
];

const REG_KINDS: [&str; 3] = ["+CREG", "+CGREG", "+CEREG"];

impl State {
    pub(super) fn cmd_general(&mut self, c: &Command) -> Option<CmdResult> {
        let m = &mut self.modem;
        let personality = m.cfg.personality;
        let r = match (c.name.as_str(), c.form) {
            ("", Form::Exec) => Ok(Reply::ok()),
            ("E", Form::Exec) => {
                m.echo = false;
                Ok(Reply::ok())
            }
            ("E", Form::Write) => match c.args.num(0) {
                Ok(0) => {
                    m.echo = false;
                    Ok(Reply::ok())
                }
                Ok(1) => {
                    m.echo = true;
                    Ok(Reply::ok())
                }
                _ => Err(CmdError::Error),
            },
            ("I", Form::Exec) | ("I", Form::Write) => Ok(Reply::Lines(vec![
                "Quectel".into(),
                personality.model().into(),
                format!("Revision: {}", m.revision),
            ])),
            ("V", Form::Write) if c.args.num(0) == Ok(1) => Ok(Reply::ok()),
            ("V", Form::Exec) => Err(CmdError::Error),
            ("Q", Form::Write) if c.args.num(0) == Ok(0) => Ok(Reply::ok()),
            ("Z", _) | ("&F", _) => {
                m.echo = true;
                m.cmee = 1;
                Ok(Reply::ok())
            }
            ("&W", Form::Exec) => {
                m.saved.ifc = m.ifc;
                m.saved.ipr = m.ipr;
                Ok(Reply::ok())
            }
            ("+CMEE", Form::Write) => match c.args.ranged(0, 0, 2) {
                Ok(v) => {
                    m.cmee = v as u8;
                    Ok(Reply::ok())
                }
                Err(e) => Err(e),
            },
            ("+CMEE", Form::Read) => Ok(Reply::line(format!("+CMEE: {}", m.cmee))),
            ("+CMEE", Form::Test) => Ok(Reply::line("+CMEE: (0-2)")),
            ("+CPIN", Form::Read) => {
                if !m.cfg.sim_ready {
                    Err(CmdError::Cme(10))
                } else if m.pin_locked && m.pin_tries == 0 {
                    Ok(Reply::line("+CPIN: SIM PUK"))
                } else if m.pin_locked {
                    Ok(Reply::line("+CPIN: SIM PIN"))
                } else {
                    Ok(Reply::line("+CPIN: READY"))
                }
            }
            ("+CPIN", Form::Write) => return Some(self.cpin(c)),
            ("+CSQ", Form::Exec) => {
                let rssi = if m.cfun == 1 && m.sim_usable() {
                    m.cfg.rssi.min(31)
                } else {
                    99
                };
                Ok(Reply::line(format!("+CSQ: {rssi},99")))
            }
            ("+CSQ", Form::Test) => Ok(Reply::line("+CSQ: (0-31,99),(0-7,99)")),
            ("+QCCID", Form::Exec) => {
                if m.cfg.sim_ready {
                    Ok(Reply::line(format!("+QCCID: {}", m.cfg.iccid)))
                } else {
                    Err(CmdError::Cme(10))
                }
            }
            ("+GSN" | "+CGSN", Form::Exec) => Ok(Reply::line(m.cfg.imei.clone())),
            ("+GSN" | "+CGSN", Form::Write) if c.args.num(0) == Ok(1) => {
                Ok(Reply::line(format!("+GSN: {}", m.cfg.imei)))
            }
            ("+GMR" | "+CGMR", Form::Exec) => Ok(Reply::line(m.revision.clone())),
            ("+QGMR", Form::Exec) => Ok(Reply::line(format!("{}_01.001.01.001", m.revision))),
            ("+GMI" | "+CGMI", Form::Exec) => Ok(Reply::line("Quectel")),
            ("+GMM" | "+CGMM", Form::Exec) => Ok(Reply::line(personality.model())),
            ("+IFC", Form::Write) => {
                let a = c.args.num(0);
                let b = c.args.opt_num(1);
                match (a, b) {
                    (Ok(a @ (0 | 2)), Ok(b)) if matches!(b, None | Some(0) | Some(2)) => {
                        m.ifc = (a as u8, b.unwrap_or(0) as u8);
                        self.link.modem_obeys_rts = a == 2;
                        self.tx_kick();
                        Ok(Reply::ok())
                    }
                    _ => Err(CmdError::Error),
                }
            }
            ("+IFC", Form::Read) => Ok(Reply::line(format!("+IFC: {},{}", m.ifc.0, m.ifc.1))),
            ("+IFC", Form::Test) => Ok(Reply::line("+IFC: (0,2),(0,2)")),
            ("+IPR", Form::Write) => match c.args.num(0) {
                Ok(rate) if rate >= 0 && BAUD_RATES.contains(&(rate as u32)) => {
                    let rate = rate as u32;
                    // The new rate takes effect after the OK (§1).
                    self.emit_ok();
                    let end = self.link_end_pos();
                    if self.modem.faults.baud_reset.is_some_and(|r| rate >= r) {
                        // Fault `baud-reset`: the module restarts instead (and boots at its
                        // saved rate).
                        self.link_mark(end, Mark::Reboot);
                    } else {
                        self.modem.ipr = rate;
                        self.link_mark(end, Mark::SetBaud(rate));
                    }
                    Ok(Reply::Handled)
                }
                _ => Err(CmdError::Error),
            },
            ("+IPR", Form::Read) => Ok(Reply::line(format!("+IPR: {}", m.ipr))),
            ("+IPR", Form::Test) => Ok(Reply::line(
                "+IPR: (4800,9600,19200,38400,57600,115200,230400,460800,921600,1000000,2000000,2900000,3000000,3200000,3686400,4000000)",
            )),
            ("+CFUN", Form::Read) => Ok(Reply::line(format!("+CFUN: {}", m.cfun))),
            ("+CFUN", Form::Test) => Ok(Reply::line("+CFUN: (0,1,4),(0-1)")),
            ("+CFUN", Form::Write) => return Some(self.cfun(c)),
            ("+COPS", Form::Read) => {
                if m.registered() {
                    Ok(Reply::line("+COPS: 0,0,\"SIM NET\",7"))
                } else {
                    Ok(Reply::line("+COPS: 0"))
                }
            }
            ("+QURCCFG", Form::Write) => match c.args.quoted(0) {
                Ok(name) if name.eq_ignore_ascii_case("urcport") => {
                    if c.args.has(1) {
                        match c.args.quoted(1) {
                            Ok(port) if is_port(port) => {
                                m.urc_port = port.to_ascii_lowercase();
                                Ok(Reply::ok())
                            }
                            _ => Err(CmdError::Error),
                        }
                    } else {
                        Ok(Reply::line(format!(
                            "+QURCCFG: \"urcport\",\"{}\"",
                            m.urc_port
                        )))
                    }
                }
                _ => Err(CmdError::Error),
            },
            ("+QURCCFG", Form::Test) => Ok(Reply::line(
                "+QURCCFG: \"urcport\",(\"usbat\",\"usbmodem\",\"uart1\")",
            )),
            ("+QINDCFG", Form::Write) => match c.args.quoted(0) {
                Ok(kind) => {
                    let kind = kind.to_ascii_lowercase();
                    const KINDS: [&str; 9] = [
                        "all",
                        "csq",
                        "smsfull",
                        "ring",
                        "smsincoming",
                        "act",
                        "datastatus",
                        "sqi",
                        "psm",
                    ];
                    if !KINDS.contains(&kind.as_str()) {
                        Err(CmdError::Error)
                    } else if !c.args.has(1) {
                        let on = if kind == "all" {
                            m.indications.values().any(|v| *v)
                        } else {
                            m.indications.get(&kind).copied().unwrap_or(true)
                        };
                        Ok(Reply::line(format!(
                            "+QINDCFG: \"{kind}\",{}",
                            u8::from(on)
                        )))
                    } else {
                        match (c.args.ranged(1, 0, 1), c.args.ranged_or(2, 0, 1, 0)) {
                            (Ok(on), Ok(_)) => {
                                if kind == "all" {
                                    for k in KINDS.iter().skip(1) {
                                        m.indications.insert((*k).to_string(), on == 1);
                                    }
                                } else {
                                    m.indications.insert(kind, on == 1);
                                }
                                Ok(Reply::ok())
                            }
                            _ => Err(CmdError::Error),
                        }
                    }
                }
                Err(e) => Err(e),
            },
            ("+QPOWD", Form::Exec) | ("+QPOWD", Form::Write) => {
                self.emit_ok();
                let d = duration_ns(Duration::from_secs(1));
                self.schedule(
                    d,
                    Scope::Modem,
                    Timer::Emit(b"\r\nPOWERED DOWN\r\n".to_vec()),
                );
                self.schedule(d + 100_000_000, Scope::Modem, Timer::PowerOff);
                self.modem.mode = Mode::Ignoring;
                Ok(Reply::Handled)
            }
            ("+QICSGP", Form::Write) => return Some(self.qicsgp(c)),
            ("+QICSGP", Form::Test) => Ok(Reply::line(
                "+QICSGP: (1-16),(1-3),<APN>,<username>,<password>,(0-3)",
            )),
            ("+QIACT", Form::Write) => return Some(self.qiact(c)),
            ("+QIACT", Form::Read) => {
                let lines = m
                    .pdp
                    .iter()
                    .filter(|(_, p)| p.active)
                    .map(|(cid, p)| format!("+QIACT: {cid},1,{},\"{}\"", p.kind, p.ip))
                    .collect();
                Ok(Reply::Lines(lines))
            }
            ("+QIACT", Form::Test) => Ok(Reply::line("+QIACT: (1-16)")),
            ("+QIDEACT", Form::Write) => match c.args.ranged(0, 1, 16) {
                Ok(cid) => {
                    if let Some(p) = m.pdp.get_mut(&(cid as u8)) {
                        p.active = false;
                    }
                    Ok(Reply::ok())
                }
                Err(e) => Err(e),
            },
            ("+CGACT", Form::Read) => {
                let lines = m
                    .pdp
                    .iter()
                    .map(|(cid, p)| format!("+CGACT: {cid},{}", u8::from(p.active)))
                    .collect();
                Ok(Reply::Lines(lines))
            }
            ("+CGACT", Form::Write) => {
                match (c.args.ranged(0, 0, 1), c.args.ranged_or(1, 1, 16, 1)) {
                    (Ok(state), Ok(cid)) => {
                        if state == 1 && !m.registered() {
                            Err(CmdError::Cme(30))
                        } else {
                            let ip = Self::ip_for(cid as u8);
                            let p = self.modem.pdp.entry(cid as u8).or_insert_with(Pdp::new);
                            if state == 1 && !p.active {
                                p.ip = ip;
                            }
                            p.active = state == 1;
                            Ok(Reply::ok())
                        }
                    }
                    _ => Err(CmdError::Error),
                }
            }
            ("+QIGETERROR", Form::Exec) => Ok(Reply::line(format!(
                "+QIGETERROR: {},{}",
                m.ip_error,
                ip_error_text(m.ip_error)
            ))),
            ("+QCFG", Form::Write) => return Some(self.qcfg(c)),
            ("+QSSLCFG", Form::Write) => return Some(self.qsslcfg(c)),
            _ => {
                if REG_KINDS.contains(&c.name.as_str()) {
                    return Some(self.creg(c));
                }
                return None;
            }
        };
        Some(r)
    }

    /// The address the network gives context `cid` (deterministic).
    fn ip_for(cid: u8) -> String {
        format!("10.187.7.{}", 7 + u32::from(cid))
    }

    fn cfun(&mut self, c: &Command) -> CmdResult {
        let fun = c.args.num(0)?;
        let rst = c.args.ranged_or(1, 0, 1, 0)?;
        if !matches!(fun, 0 | 1 | 4) {
            return Err(CmdError::Error);
        }
        if rst == 1 {
            self.emit_ok();
            let end = self.link_end_pos();
            self.link_mark(end, Mark::Reboot);
            return Ok(Reply::Handled);
        }
        let old = self.modem.cfun;
        self.modem.cfun = fun as u8;
        if fun != 1 {
            for p in self.modem.pdp.values_mut() {
                p.active = false;
            }
            self.set_reg_stat(0);
        } else if old != 1 && self.modem.sim_usable() {
            let d = duration_ns(self.modem.cfg.registration_delay);
            self.schedule(d, Scope::Modem, Timer::Registered);
        }
        Ok(Reply::ok())
    }

    /// `AT+CPIN="<pin>"`: unlocks a SIM that waits for its PIN. A wrong PIN is
    /// `+CME ERROR: 16` and uses up one of three tries; after the third the SIM wants its
    /// PUK. A SIM that is not waiting for a PIN answers `+CME ERROR: 3`.
    fn cpin(&mut self, c: &Command) -> CmdResult {
        let m = &mut self.modem;
        if !m.cfg.sim_ready {
            return Err(CmdError::Cme(10));
        }
        if !m.pin_locked {
            return Err(CmdError::Cme(3));
        }
        if m.pin_tries == 0 {
            return Err(CmdError::Cme(12));
        }
        let given = c.args.quoted(0).map_err(|_| CmdError::Error)?;
        if m.cfg.sim_pin.as_deref() != Some(given) {
            m.pin_tries -= 1;
            return Err(CmdError::Cme(16));
        }
        m.pin_tries = 3;
        m.pin_locked = false;
        self.emit_ok();
        self.emit_urc("+CPIN: READY");
        if self.modem.cfun == 1 {
            self.set_reg_stat(2);
            let d = duration_ns(self.modem.cfg.registration_delay);
            self.schedule(d, Scope::Modem, Timer::Registered);
        }
        Ok(Reply::Handled)
    }

    fn creg(&mut self, c: &Command) -> CmdResult {
        let idx = REG_KINDS.iter().position(|k| *k == c.name).unwrap_or(2);
        let name = REG_KINDS[idx];
        match c.form {
            Form::Read => {
                let n = self.modem.reg_n[idx];
                let stat = self.modem.reg_stat;
                let mut line = format!("{name}: {n},{stat}");
                if n >= 2 && self.modem.registered() {
                    line.push_str(",\"1A2B\",\"01234567\",7");
                }
                // Mode 3 (CREG, CEREG): the reject cause while denied (TS 27.007).
                if n == 3
                    && stat == 3
                    && let Some(cause) = self.modem.cfg.reject_cause
                {
                    line.push_str(&format!(",,,,0,{cause}"));
                }
                Ok(Reply::line(line))
            }
            Form::Write => {
                // Mode 3 exists for +CREG and +CEREG, not +CGREG.
                let max = if idx == 1 { 2 } else { 3 };
                let n = c.args.ranged(0, 0, max)?;
                self.modem.reg_n[idx] = n as u8;
                Ok(Reply::ok())
            }
            Form::Test => Ok(Reply::line(format!(
                "{name}: (0-{})",
                if idx == 1 { 2 } else { 3 }
            ))),
            Form::Exec => Err(CmdError::Error),
        }
    }

    /// The URC form of a registration report for kind `idx` (0 CREG, 1 CGREG, 2 CEREG).
    pub(crate) fn reg_urc(&self, idx: usize) -> String {
        let name = REG_KINDS[idx.min(2)];
        let stat = self.modem.reg_stat;
        if self.modem.reg_n[idx.min(2)] == 2 && self.modem.registered() {
            format!("{name}: {stat},\"1A2B\",\"01234567\",7")
        } else {
            format!("{name}: {stat}")
        }
    }

    /// Changes the registration state and sends the enabled URCs.
    pub(crate) fn set_reg_stat(&mut self, stat: u8) {
        if self.modem.reg_stat == stat {
            return;
        }
        self.modem.reg_stat = stat;
        if !self.modem.registered() {
            for p in self.modem.pdp.values_mut() {
                p.active = false;
            }
        }
        for idx in 0..3 {
            if self.modem.reg_n[idx] > 0 {
                let u = self.reg_urc(idx);
                self.emit_urc(&u);
            }
        }
    }

    pub(super) fn registered_now(&mut self) {
        if self.modem.cfun == 1 {
            let stat = self.modem.cfg.registration_stat;
            self.set_reg_stat(stat);
        }
    }

    /// The network took PDP context `cid` down.
    pub(crate) fn pdp_deactivated_by_network(&mut self, cid: u8) {
        if self.modem.cfg.personality.simcom().is_some() {
            self.simcom_link_lost(cid);
            return;
        }
        if let Some(p) = self.modem.pdp.get_mut(&cid)
            && p.active
        {
            p.active = false;
        }
        self.modem.ip_error = 570;
        self.emit_urc(&format!("+QIURC: \"pdpdeact\",{cid}"));
    }

    fn qicsgp(&mut self, c: &Command) -> CmdResult {
        let cid = c.args.ranged(0, 1, 16)? as u8;
        if c.args.len() == 1 {
            let p = self.modem.pdp.get(&cid).cloned().unwrap_or_else(Pdp::new);
            return Ok(Reply::line(format!(
                "+QICSGP: {},\"{}\",\"{}\",\"{}\",{}",
                p.kind, p.apn, p.user, p.password, p.auth
            )));
        }
        let kind = c.args.ranged(1, 1, 3)? as u8;
        let apn = c.args.quoted(2)?.to_string();
        let user = if c.args.has(3) {
            c.args.quoted(3)?.to_string()
        } else {
            String::new()
        };
        let password = if c.args.has(4) {
            c.args.quoted(4)?.to_string()
        } else {
            String::new()
        };
        let auth = c.args.ranged_or(5, 0, 3, 0)? as u8;
        let p = self.modem.pdp.entry(cid).or_insert_with(Pdp::new);
        p.kind = kind;
        p.apn = apn;
        p.user = user;
        p.password = password;
        p.auth = auth;
        Ok(Reply::ok())
    }

    fn qiact(&mut self, c: &Command) -> CmdResult {
        let cid = c.args.ranged(0, 1, 16)? as u8;
        if !self.modem.registered() {
            self.modem.ip_error = 561;
            return Err(CmdError::Cme(561));
        }
        if self.modem.pdp.get(&cid).is_some_and(|p| p.active) {
            self.modem.ip_error = 572;
            return Err(CmdError::Cme(572));
        }
        let ip = Self::ip_for(cid);
        let p = self.modem.pdp.entry(cid).or_insert_with(Pdp::new);
        p.active = true;
        p.ip = ip;
        self.modem.ip_error = 0;
        Ok(Reply::ok())
    }

    fn qcfg(&mut self, c: &Command) -> CmdResult {
        let name = c.args.quoted(0)?.to_ascii_lowercase();
        if c.args.len() == 1 {
            let value = match name.as_str() {
                "fota/cid" => self
                    .modem
                    .qcfg
                    .get(&name)
                    .cloned()
                    .unwrap_or_else(|| "1".into()),
                "fota/path" => self
                    .modem
                    .qcfg
                    .get(&name)
                    .cloned()
                    .unwrap_or_else(|| "\"UFS:\"".into()),
                _ => self.modem.qcfg.get(&name).cloned().ok_or(CmdError::Error)?,
            };
            return Ok(Reply::line(format!("+QCFG: \"{name}\",{value}")));
        }
        let value = match name.as_str() {
            "fota/cid" => c.args.ranged(1, 1, 16)?.to_string(),
            "fota/path" => format!("\"{}\"", c.args.quoted(1)?),
            _ => c
                .args
                .0
                .iter()
                .skip(1)
                .map(|a| {
                    if a.quoted {
                        format!("\"{}\"", a.text)
                    } else {
                        a.text.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(","),
        };
        self.modem.qcfg.insert(name, value);
        Ok(Reply::ok())
    }

    fn qsslcfg(&mut self, c: &Command) -> CmdResult {
        let name = c.args.quoted(0)?.to_ascii_lowercase();
        let ctx = c.args.ranged(1, 0, 5)? as u8;
        const NAMES: [&str; 13] = [
            "sslversion",
            "ciphersuite",
            "seclevel",
            "cacert",
            "clientcert",
            "clientkey",
            "sni",
            "ignorelocaltime",
            "negotiatetime",
            "cacertex",
            "ignoremulticertchainverify",
            "ignoreinvalidcertsign",
            "session_cache",
        ];
        if !NAMES.contains(&name.as_str()) {
            return Err(CmdError::Error);
        }
        if c.args.len() == 2 {
            let value = self
                .modem
                .ssl
                .get(&(name.clone(), ctx))
                .cloned()
                .unwrap_or_else(|| match name.as_str() {
                    "sslversion" => "4".into(),
                    "ciphersuite" => "0XFFFF".into(),
                    "seclevel" | "sni" => "0".into(),
                    "ignorelocaltime" => "1".into(),
                    "negotiatetime" => "300".into(),
                    _ => "\"\"".into(),
                });
            return Ok(Reply::line(format!("+QSSLCFG: \"{name}\",{ctx},{value}")));
        }
        let value = c
            .args
            .0
            .iter()
            .skip(2)
            .map(|a| {
                if a.quoted {
                    format!("\"{}\"", a.text)
                } else {
                    a.text.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(",");
        self.modem.ssl.insert((name, ctx), value);
        Ok(Reply::ok())
    }
}

fn is_port(p: &str) -> bool {
    ["usbat", "usbmodem", "uart1", "uart2", "uart3", "all"]
        .iter()
        .any(|x| x.eq_ignore_ascii_case(p))
}
