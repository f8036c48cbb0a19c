//! Shared helpers for the simulator's integration tests: the real blocking client on the
//! simulated UART, and the usual bring-up steps.
#![allow(dead_code)]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use cellular_ota::client::UrcHandler;
use cellular_ota::client::blocking::Client;
use cellular_ota::quectel::general::{Attention, ErrorFormat, SetEcho, SetErrorFormat};
use cellular_ota::quectel::http::{HttpGet, HttpRead, SetHttpUrl};
use cellular_ota::quectel::pdp::{ActivateContext, AuthMethod, ConfigureContext, PdpType};
use cellular_ota::quectel::urc::{HttpResult, Urc};
use cellular_ota_sim::{HostUart, ModemConfig, Personality, SimClock, World, WorldConfig};

/// Collects URC lines.
#[derive(Clone, Debug, Default)]
pub struct Urcs(pub Rc<RefCell<Vec<String>>>);

impl UrcHandler for Urcs {
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
    pub fn contains(&self, s: &str) -> bool {
        self.0.borrow().iter().any(|l| l.contains(s))
    }
}

pub type Host<'b> = Client<'b, HostUart, SimClock, Urcs>;

pub fn client<'b>(world: &World, rx: &'b mut [u8], resp: &'b mut [u8], urcs: &Urcs) -> Host<'b> {
    Client::new(world.host_uart(), world.clock(), rx, resp, urcs.clone())
}

/// A world with a quiet, ready modem (no random URCs, registered, echo on).
pub fn ready_world(p: Personality) -> World {
    World::new(WorldConfig::new(ModemConfig::new(p).ready().quiet()))
}

/// Waits for `RDY`.
pub fn wait_rdy(c: &mut Host<'_>) {
    c.wait_for(Duration::from_secs(60), |l| (l == b"RDY").then_some(()))
        .expect("RDY");
}

/// `AT`, `ATE0`, `AT+CMEE=1`.
pub fn setup(c: &mut Host<'_>) {
    c.send(&Attention).expect("AT");
    c.send(&SetEcho(false)).expect("ATE0");
    c.send(&SetErrorFormat(ErrorFormat::Numeric)).expect("CMEE");
}

/// Configures and activates PDP context 1.
pub fn pdp_up(c: &mut Host<'_>) {
    c.send(&ConfigureContext {
        cid: 1,
        pdp_type: PdpType::Ipv4,
        apn: "internet",
        user: "",
        password: "",
        auth: AuthMethod::None,
    })
    .expect("QICSGP");
    c.send(&ActivateContext { cid: 1 }).expect("QIACT");
}

/// Sets the URL and GETs it; returns the `+QHTTPGET:` result.
pub fn get(c: &mut Host<'_>, url: &str) -> HttpResult {
    c.send(&SetHttpUrl::new(url)).expect("QHTTPURL");
    let g = HttpGet { response_time: 60 };
    c.send(&g).expect("QHTTPGET");
    wait_get(c, g.result_deadline())
}

/// Waits for the `+QHTTPGET:` URC.
pub fn wait_get(c: &mut Host<'_>, timeout: Duration) -> HttpResult {
    c.wait_for(timeout, |l| match Urc::parse(l) {
        Some(Ok(Urc::HttpGet(r))) => Some(r),
        _ => None,
    })
    .expect("+QHTTPGET")
}

/// Reads `len` body bytes with `AT+QHTTPREAD` and waits for `+QHTTPREAD:`; returns the body
/// and the read result code.
pub fn read_body(c: &mut Host<'_>, len: u32) -> (Vec<u8>, u16) {
    let mut body = Vec::new();
    let (early, _) = c
        .send_receive(&HttpRead::exact(len), |d| body.extend_from_slice(d))
        .expect("QHTTPREAD");
    let code = match early {
        Some(code) => code,
        None => wait_read(c),
    };
    (body, code)
}

pub fn wait_read(c: &mut Host<'_>) -> u16 {
    c.wait_for(Duration::from_secs(10), |l| {
        let t = String::from_utf8_lossy(l);
        t.strip_prefix("+QHTTPREAD: ")
            .and_then(|v| v.trim().parse::<u16>().ok())
    })
    .expect("+QHTTPREAD")
}

/// Deterministic test data.
pub fn data(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Writes raw bytes and collects what the modem sends during `d`.
pub fn raw(world: &World, bytes: &[u8], d: Duration) -> Vec<u8> {
    let mut u = world.host_uart();
    embedded_io::Write::write_all(&mut u, bytes).unwrap();
    collect(world, d)
}

/// Collects modem output for `d` of virtual time.
pub fn collect(world: &World, d: Duration) -> Vec<u8> {
    let u = world.host_uart();
    let end = world.elapsed() + d;
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let n = u.try_read(&mut buf).unwrap();
        out.extend_from_slice(&buf[..n]);
        if world.elapsed() >= end {
            break;
        }
        world.advance(Duration::from_millis(1));
    }
    let n = u.try_read(&mut buf).unwrap();
    out.extend_from_slice(&buf[..n]);
    out
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
