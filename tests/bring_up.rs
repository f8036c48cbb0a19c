//! Bring-up through the public API on the simulated modem, on virtual time: a module as
//! shipped (booting, echo on, URCs on its saved port, `csq` URCs on), SIM PIN and PUK,
//! no SIM, registration denied with and without a final cause, no answer, and the data
//! context; blocking and async.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use cellular_ota::bring_up::{
    BringUpConfig, BringUpEvent, BringUpFailure, BringUpStage, bring_up, bring_up_blocking,
};
use cellular_ota::client::{CountUrcs, asynch, blocking};
use cellular_ota::quectel::bring_up::Quectel;
use cellular_ota::quectel::error::EmmCause;
use cellular_ota::quectel::general::{RegKind, RegStatus};
use cellular_ota::retry::{Classify, Retry};
use cellular_ota_sim::{ModemConfig, ModemStart, Personality, World, WorldConfig, block_on};

/// Events, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    Answered,
    UrcPortForced(String),
    PinEntered,
    SimReady,
    Reg(RegKind, RegStatus),
    Registered,
    DataActivated,
    DataAlreadyActive,
    Other,
}

fn own(e: BringUpEvent<'_>) -> Seen {
    match e {
        BringUpEvent::Answered { .. } => Seen::Answered,
        BringUpEvent::UrcPortForced { was } => Seen::UrcPortForced(was.to_string()),
        BringUpEvent::PinEntered => Seen::PinEntered,
        BringUpEvent::SimReady => Seen::SimReady,
        BringUpEvent::Registration { kind, status } => Seen::Reg(kind, status),
        BringUpEvent::Registered(_) => Seen::Registered,
        BringUpEvent::DataActivated => Seen::DataActivated,
        BringUpEvent::DataAlreadyActive => Seen::DataAlreadyActive,
        _ => Seen::Other,
    }
}

fn world(modem: ModemConfig) -> World {
    World::new(WorldConfig::new(modem).with_seed(7))
}

/// Runs the blocking bring-up once; returns its result and the events.
fn run(
    world: &World,
    config: &BringUpConfig<'_>,
) -> (
    Result<
        cellular_ota::bring_up::ModemInfo,
        cellular_ota::bring_up::BringUpError<embedded_io::ErrorKind>,
    >,
    Vec<Seen>,
) {
    let (mut rx, mut resp) = ([0u8; 1024], [0u8; 512]);
    let mut c = blocking::Client::new(
        world.host_uart(),
        world.clock(),
        &mut rx,
        &mut resp,
        CountUrcs::default(),
    );
    let mut seen = Vec::new();
    let r = bring_up_blocking(&mut c, &Quectel::UART1, config, &mut |e| seen.push(own(e)));
    (r, seen)
}

#[test]
fn module_as_shipped_with_urcs_on_usb_is_brought_up() {
    let mut modem = ModemConfig::new(Personality::Ec200u);
    modem.urc_port = "usbat".into();
    let w = world(modem);
    let sim = w.modem();
    assert!(sim.indication("csq"));
    let (r, seen) = run(&w, &BringUpConfig::new("internet"));
    let info = r.expect("bring-up");
    // Booting: the first AT answered only after the 8 s boot.
    assert!(w.elapsed() >= Duration::from_secs(8));
    assert_eq!(info.model.as_str(), "EC200U");
    assert_eq!(info.revision.as_str(), Personality::Ec200u.revision());
    assert_eq!(info.imei.as_str(), "866123456789012");
    assert_eq!(info.iccid.as_str(), "89860012345678901234");
    assert_eq!(info.ip.as_str(), "10.187.7.8");
    assert_eq!(info.signal.map(|s| s.dbm()), Some(Some(-113 + 2 * 23)));
    let reg = info.registration.expect("registration");
    assert_eq!(reg.status, RegStatus::Home);
    assert_eq!(seen.first(), Some(&Seen::Answered));
    assert!(
        seen.contains(&Seen::UrcPortForced("usbat".into())),
        "{seen:?}"
    );
    assert!(seen.contains(&Seen::SimReady));
    assert_eq!(seen.last(), Some(&Seen::DataActivated));
    // The module now routes URCs here; chatty ones are off; context 1 is active.
    assert_eq!(sim.urc_port(), "uart1");
    assert!(!sim.indication("csq"));
    assert!(!sim.indication("act"));
    assert!(sim.pdp_active(1));
    let cmds = sim.commands();
    for c in [
        "ATE0",
        "AT+CMEE=1",
        "AT+QURCCFG=\"urcport\"",
        "AT+QURCCFG=\"urcport\",\"uart1\"",
        "AT+QINDCFG=\"csq\",0,0",
        "AT+QINDCFG=\"act\",0,0",
        "AT+QICSGP=1,1,\"internet\",\"\",\"\",0",
        "AT+QIACT=1",
    ] {
        assert!(cmds.iter().any(|x| x == c), "{c} not sent: {cmds:?}");
    }

    // Again on the running module: nothing to force, the context is already active.
    let (r, seen) = run(&w, &BringUpConfig::new("internet"));
    r.expect("second bring-up");
    assert!(!seen.iter().any(|s| matches!(s, Seen::UrcPortForced(_))));
    assert_eq!(seen.last(), Some(&Seen::DataAlreadyActive));
    // The URC port survives a reboot (it is saved); the indications do not.
    sim.reboot();
    w.advance(Duration::from_secs(12));
    assert_eq!(sim.urc_port(), "uart1");
    assert!(sim.indication("csq"));
}

#[test]
fn data_none_leaves_the_context_alone() {
    let w = world(ModemConfig::new(Personality::Eg06).ready().quiet());
    let mut config = BringUpConfig::new("unused");
    config.data = None;
    let (r, _) = run(&w, &config);
    let info = r.expect("bring-up");
    assert!(info.ip.is_empty());
    assert!(!w.modem().pdp_active(1));
    let cmds = w.modem().commands();
    assert!(
        !cmds
            .iter()
            .any(|c| c.starts_with("AT+QIACT") || c.starts_with("AT+QICSGP"))
    );
}

#[test]
fn sim_pin_is_entered_once() {
    let mut modem = ModemConfig::new(Personality::Ec200u).quiet();
    modem.sim_pin = Some("1234".into());

    // No PIN configured: typed, permanent, nothing entered.
    let w = world(modem.clone());
    let (r, _) = run(&w, &BringUpConfig::new("internet"));
    let e = r.expect_err("no PIN");
    assert_eq!(e.stage, BringUpStage::Sim);
    assert!(matches!(e.failure, BringUpFailure::PinRequired));
    assert_eq!(e.retry(), Retry::Permanent);
    assert_eq!(w.modem().pin_tries(), 3);

    // The right PIN: entered once, registration follows.
    let w = world(modem.clone());
    let mut config = BringUpConfig::new("internet");
    config.sim_pin = Some("1234");
    let (r, seen) = run(&w, &config);
    r.expect("bring-up with the PIN");
    assert_eq!(seen.iter().filter(|s| **s == Seen::PinEntered).count(), 1);
    let entered = w
        .modem()
        .commands()
        .iter()
        .filter(|c| c.starts_with("AT+CPIN="))
        .count();
    assert_eq!(entered, 1);

    // A wrong PIN: one try used per bring-up, never two; the third blocks the SIM.
    let w = world(modem);
    config.sim_pin = Some("0000");
    for left in [2, 1, 0] {
        let (r, _) = run(&w, &config);
        let e = r.expect_err("wrong PIN");
        assert!(matches!(e.failure, BringUpFailure::PinRejected), "{e}");
        assert_eq!(e.retry(), Retry::Permanent);
        assert_eq!(w.modem().pin_tries(), left);
    }
    let (r, _) = run(&w, &config);
    let e = r.expect_err("blocked");
    assert!(matches!(e.failure, BringUpFailure::PukRequired), "{e}");
    assert_eq!(w.modem().pin_tries(), 0);
}

#[test]
fn no_sim_is_reported_at_the_sim_deadline() {
    let mut modem = ModemConfig::new(Personality::Ec200u).ready().quiet();
    modem.sim_ready = false;
    let w = world(modem);
    let mut config = BringUpConfig::new("internet");
    config.sim_timeout = Duration::from_secs(5);
    let (r, _) = run(&w, &config);
    let e = r.expect_err("no SIM");
    assert_eq!(e.stage, BringUpStage::Sim);
    assert!(matches!(e.failure, BringUpFailure::SimNotInserted), "{e}");
    assert!(w.elapsed() >= Duration::from_secs(5));
    assert!(w.elapsed() < Duration::from_secs(8));
}

#[test]
fn registration_denied_waits_unless_the_cause_is_final() {
    // Cause 15 (no suitable cells): the module keeps trying, so bring-up waits until its
    // deadline and reports the denial with the cause; retrying later is right.
    let mut modem = ModemConfig::new(Personality::Ec200u).ready().quiet();
    modem.registration_stat = 3;
    modem.reject_cause = Some(15);
    let w = world(modem.clone());
    let mut config = BringUpConfig::new("internet");
    config.registration_timeout = Duration::from_secs(30);
    let (r, seen) = run(&w, &config);
    let e = r.expect_err("denied");
    assert_eq!(e.stage, BringUpStage::Registration);
    match e.failure {
        BringUpFailure::Denied { cause: Some(c) } => {
            assert_eq!(c.emm(), Some(EmmCause::NoSuitableCells))
        }
        ref f => panic!("{f:?}"),
    }
    assert_eq!(e.code(), Some(15));
    assert_eq!(e.meaning(), Some(EmmCause::NoSuitableCells.meaning()));
    assert_eq!(e.retry(), Retry::Transient);
    assert!(w.elapsed() >= Duration::from_secs(30));
    assert!(seen.contains(&Seen::Reg(RegKind::Cereg, RegStatus::Denied)));
    // The cause was read in mode 3 and the mode put back.
    let cmds = w.modem().commands();
    let at = cmds
        .iter()
        .position(|c| c == "AT+CEREG=3")
        .expect("AT+CEREG=3");
    assert_eq!(cmds[at + 1], "AT+CEREG?");
    assert_eq!(cmds[at + 2], "AT+CEREG=0");
    assert_eq!(cmds.iter().filter(|c| *c == "AT+CEREG=3").count(), 1);

    // Cause 3 (illegal UE): final at once, permanent.
    modem.reject_cause = Some(3);
    let w = world(modem);
    let (r, _) = run(&w, &config);
    let e = r.expect_err("denied");
    assert!(matches!(
        e.failure,
        BringUpFailure::Denied { cause: Some(c) } if c.emm() == Some(EmmCause::IllegalUe)
    ));
    assert_eq!(e.retry(), Retry::Permanent);
    assert!(w.elapsed() < Duration::from_secs(5));
}

#[test]
fn searching_until_the_deadline_is_not_registered() {
    let mut modem = ModemConfig::new(Personality::Ec200t).ready().quiet();
    modem.registration_stat = 2;
    let w = world(modem);
    let mut config = BringUpConfig::new("internet");
    config.registration_timeout = Duration::from_secs(10);
    let (r, _) = run(&w, &config);
    let e = r.expect_err("searching");
    assert!(matches!(
        e.failure,
        BringUpFailure::NotRegistered {
            last: Some(RegStatus::Searching)
        }
    ));
    assert_eq!(e.retry(), Retry::Transient);
}

#[test]
fn a_silent_modem_is_no_answer_at_the_ready_deadline() {
    let mut modem = ModemConfig::new(Personality::Ec200u);
    modem.start = ModemStart::Off;
    let w = world(modem);
    let mut config = BringUpConfig::new("internet");
    config.ready_timeout = Duration::from_secs(6);
    let (r, seen) = run(&w, &config);
    let e = r.expect_err("silent");
    assert_eq!(e.stage, BringUpStage::Sync);
    assert!(matches!(e.failure, BringUpFailure::NoAnswer));
    assert_eq!(e.retry(), Retry::Transient);
    assert!(seen.is_empty());
    let t = w.elapsed();
    assert!(
        t >= Duration::from_secs(6) && t < Duration::from_secs(8),
        "{t:?}"
    );
}

#[test]
fn a_modem_at_another_baud_rate_is_no_answer() {
    // The module saved 921600; the host starts at the factory 115200.
    let mut modem = ModemConfig::new(Personality::Ec200u).ready().quiet();
    modem.baud = 921_600;
    let w = world(modem);
    let mut config = BringUpConfig::new("internet");
    config.ready_timeout = Duration::from_secs(3);
    let (r, _) = run(&w, &config);
    assert!(matches!(
        r.expect_err("garbled").failure,
        BringUpFailure::NoAnswer
    ));
    assert!(w.uart_stats().framing_errors > 0);
}

#[test]
fn async_bring_up_is_the_same_flow() {
    let mut modem = ModemConfig::new(Personality::Eg06);
    modem.urc_port = "usbmodem".into();
    let w = world(modem);
    let (mut rx, mut resp) = ([0u8; 1024], [0u8; 512]);
    let mut c = asynch::Client::new(
        w.host_uart(),
        w.clock(),
        &mut rx,
        &mut resp,
        CountUrcs::default(),
    );
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    let info = block_on(bring_up(
        &mut c,
        &Quectel::UART1,
        &BringUpConfig::new("internet"),
        &mut |e| s.borrow_mut().push(own(e)),
    ))
    .expect("async bring-up");
    assert_eq!(info.model.as_str(), "EG06");
    assert!(
        seen.borrow()
            .contains(&Seen::UrcPortForced("usbmodem".into()))
    );
    assert_eq!(w.modem().urc_port(), "uart1");
}

/// The exact conversation, against a scripted modem on virtual time: echo still on at the
/// start, the URC port already right, a SIM that asks for its PIN and still says `SIM PIN`
/// right after taking it (it is never entered twice), an LTE-only module that refuses
/// `AT+CREG?`, and no data context.
mod scripted {
    use super::*;
    use crate::common::{Sim, Urcs, expect, reply, reply_after};

    #[test]
    fn the_pin_is_never_entered_twice() {
        let sim = Sim::new(vec![
            expect("AT\r"),
            reply("AT\r\r\nOK\r\n"),
            expect("ATE0\r"),
            reply("ATE0\r\r\nOK\r\n"),
            expect("AT+CMEE=1\r"),
            reply("\r\nOK\r\n"),
            expect("AT+QURCCFG=\"urcport\"\r"),
            reply("\r\n+QURCCFG: \"urcport\",\"uart1\"\r\n\r\nOK\r\n"),
            expect("AT+QINDCFG=\"csq\",0,0\r"),
            reply("\r\nOK\r\n"),
            expect("AT+QINDCFG=\"act\",0,0\r"),
            reply("\r\nERROR\r\n"),
            expect("ATI\r"),
            reply("\r\nQuectel\r\nEC200U\r\nRevision: EC200UCNAAR01A04M08\r\n\r\nOK\r\n"),
            expect("AT+GSN\r"),
            reply("\r\n866123456789012\r\n\r\nOK\r\n"),
            expect("AT+CPIN?\r"),
            reply("\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n"),
            expect("AT+CPIN=\"1234\"\r"),
            reply("\r\nOK\r\n"),
            expect("AT+CPIN?\r"),
            reply("\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n"),
            expect("AT+CPIN?\r"),
            reply_after(20, "\r\n+CPIN: READY\r\n\r\nOK\r\n"),
            expect("AT+QCCID\r"),
            reply("\r\n+QCCID: 8986001234567890123F\r\n\r\nOK\r\n"),
            expect("AT+CEREG?\r"),
            reply("\r\n+CEREG: 0,2\r\n\r\nOK\r\n"),
            expect("AT+CGREG?\r"),
            reply("\r\n+CGREG: 0,2\r\n\r\nOK\r\n"),
            expect("AT+CREG?\r"),
            reply("\r\nERROR\r\n"),
            expect("AT+CEREG?\r"),
            reply("\r\n+CEREG: 0,5\r\n\r\nOK\r\n"),
            expect("AT+CSQ\r"),
            reply("\r\n+CSQ: 31,99\r\n\r\nOK\r\n"),
        ]);
        let (mut rx, mut resp) = ([0u8; 256], [0u8; 256]);
        let mut c =
            blocking::Client::new(sim.port(), sim.clock(), &mut rx, &mut resp, Urcs::default());
        let mut config = BringUpConfig::new("internet");
        config.sim_pin = Some("1234");
        config.data = None;
        let mut seen = Vec::new();
        let info = bring_up_blocking(&mut c, &Quectel::UART1, &config, &mut |e| seen.push(own(e)))
            .expect("bring-up");
        sim.assert_done();
        assert_eq!(info.model.as_str(), "EC200U");
        assert_eq!(info.iccid.as_str(), "8986001234567890123F");
        assert_eq!(
            info.registration.map(|r| r.status),
            Some(RegStatus::Roaming)
        );
        assert_eq!(info.signal.and_then(|s| s.dbm()), Some(-51));
        assert_eq!(seen.iter().filter(|s| **s == Seen::PinEntered).count(), 1);
        assert!(!seen.iter().any(|s| matches!(s, Seen::UrcPortForced(_))));
    }
}
