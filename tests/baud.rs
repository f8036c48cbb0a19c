//! Baud negotiation with verify-and-fallback (`cellular_ota::baud`) on the simulated modem,
//! on virtual time: the fastest rate, a wiring that garbles above a rate, a module that
//! restarts at a rate, a module that restarted behind the MCU's back, a module that
//! answers nowhere until reset, and an MCU that cannot set a rate.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use cellular_ota::baud::{
    BaudConfig, BaudError, BaudEvent, DEFAULT_RATES, Fallback, Refusal, negotiate,
    negotiate_blocking,
};
use cellular_ota::client::{CountUrcs, asynch, blocking};
use cellular_ota::quectel::bring_up::Quectel;
use cellular_ota_sim::{
    HostUart, ModemConfig, ModemStart, Personality, World, WorldConfig, block_on,
};

fn world(modem: ModemConfig) -> World {
    World::new(WorldConfig::new(modem.quiet()).with_seed(3))
}

fn set(uart: &mut HostUart, rate: u32) -> bool {
    uart.set_baud(rate);
    true
}

/// Negotiates with the default rates from 115200; returns the outcome and the events.
fn run(
    w: &World,
    rate: &mut u32,
    reset: Option<&mut dyn FnMut(bool)>,
) -> (
    Result<cellular_ota::baud::Negotiated, BaudError<embedded_io::ErrorKind>>,
    Vec<BaudEvent>,
) {
    let (mut rx, mut resp) = ([0u8; 1024], [0u8; 512]);
    let mut c = blocking::Client::new(
        w.host_uart(),
        w.clock(),
        &mut rx,
        &mut resp,
        CountUrcs::default(),
    );
    let mut events = Vec::new();
    let r = negotiate_blocking(
        &mut c,
        &Quectel::UART1,
        &BaudConfig::default(),
        rate,
        &mut set,
        reset,
        &mut |e| events.push(e),
    );
    (r, events)
}

#[test]
fn the_fastest_rate_is_proven_and_kept() {
    let w = world(ModemConfig::new(Personality::Ec200u).ready());
    let mut rate = 115_200;
    let t0 = w.elapsed();
    let (r, events) = run(&w, &mut rate, None);
    let n = r.expect("negotiated");
    assert_eq!((n.rate, rate), (3_000_000, 3_000_000));
    assert!(n.fallbacks.is_empty());
    assert!(!n.restarted && !n.reset_used);
    assert_eq!(w.modem().baud(), 3_000_000);
    assert_eq!(w.host_uart().baud(), 3_000_000);
    assert!(events.contains(&BaudEvent::Switched(3_000_000)));
    // The proof went both ways: a file with every byte value, up and down, then deleted.
    let cmds = w.modem().commands();
    assert!(cmds.iter().any(|c| c == "AT+IPR=3000000"), "{cmds:?}");
    assert!(
        cmds.iter()
            .any(|c| c.starts_with("AT+QFUPL=\"UFS:cota_link.bin\",256"))
    );
    assert!(cmds.iter().any(|c| c == "AT+QFDWL=\"UFS:cota_link.bin\""));
    assert!(w.modem().file("UFS:cota_link.bin").is_none());
    assert!(
        w.elapsed() - t0 < Duration::from_millis(500),
        "{:?}",
        w.elapsed() - t0
    );
    // Once negotiated, a second call finds the modem at 3000000 and returns at once, over a
    // clean link (at most the byte in flight at the switch garbled).
    let garbled = w.uart_stats().framing_errors;
    assert!(garbled <= 1, "{garbled}");
    let t1 = w.elapsed();
    let (r, _) = run(&w, &mut rate, None);
    assert_eq!(r.unwrap().rate, 3_000_000);
    assert!(w.elapsed() - t1 < Duration::from_millis(50));
    assert_eq!(w.uart_stats().framing_errors, garbled);
}

#[test]
fn a_wiring_that_garbles_above_460800_falls_back_to_it() {
    let w = world(ModemConfig::new(Personality::Ec200u).ready());
    w.inject_str("baud-limit=460800").unwrap();
    let mut rate = 115_200;
    let (r, _) = run(&w, &mut rate, None);
    let n = r.expect("negotiated");
    assert_eq!(n.rate, 460_800);
    assert_eq!(
        n.fallbacks.as_slice(),
        [
            Fallback {
                rate: 3_000_000,
                why: Refusal::Garbled
            },
            Fallback {
                rate: 921_600,
                why: Refusal::Garbled
            },
        ]
    );
    assert_eq!((w.modem().baud(), w.host_uart().baud()), (460_800, 460_800));
    assert!(w.uart_stats().framing_errors > 0);
    // Clean from here on.
    let garbled = w.uart_stats().framing_errors;
    let (r, _) = run(&w, &mut rate, None);
    assert_eq!(r.unwrap().rate, 460_800);
    assert_eq!(w.uart_stats().framing_errors, garbled);
}

#[test]
fn a_module_that_restarts_at_921600_is_caught_and_left_below() {
    let w = world(ModemConfig::new(Personality::Ec200u).ready());
    w.inject_str("baud-reset=921600").unwrap();
    let mut rate = 115_200;
    let (r, _) = run(&w, &mut rate, None);
    let n = r.expect("negotiated");
    assert_eq!(n.rate, 460_800);
    assert!(n.restarted);
    assert_eq!(
        n.fallbacks.iter().map(|f| f.why).collect::<Vec<_>>(),
        [Refusal::ModemRestarted, Refusal::ModemRestarted]
    );
    assert_eq!(w.modem().boots(), 3);
}

#[test]
fn a_module_that_restarted_behind_the_mcu_is_found_at_its_boot_rate() {
    let w = world(ModemConfig::new(Personality::Ec200u).ready());
    let mut rate = 115_200;
    assert_eq!(run(&w, &mut rate, None).0.unwrap().rate, 3_000_000);
    // The module restarts (power dip, crash): it boots at its saved 115200.
    w.modem().reboot();
    let (r, events) = run(&w, &mut rate, None);
    let n = r.expect("renegotiated");
    assert!(n.restarted);
    assert_eq!(n.rate, 3_000_000);
    assert!(events.contains(&BaudEvent::Found(115_200)));
}

#[test]
fn a_silent_module_is_reset_or_reported() {
    let mut m = ModemConfig::new(Personality::Ec200u);
    m.start = ModemStart::Off;
    let w = world(m);
    let mut rate = 115_200;
    let (r, _) = run(&w, &mut rate, None);
    assert!(matches!(r, Err(BaudError::NoAnswer)), "{r:?}");
    // With a reset (PWRKEY) that powers it on.
    let modem = w.modem();
    let pressed = Rc::new(Cell::new(0));
    let p = pressed.clone();
    let mut reset = move |down: bool| {
        if down {
            p.set(p.get() + 1);
            modem.power_on();
        }
    };
    let (r, events) = run(&w, &mut rate, Some(&mut reset));
    let n = r.expect("negotiated after the reset");
    assert!(n.reset_used && n.restarted);
    assert_eq!(n.rate, 3_000_000);
    assert_eq!(pressed.get(), 1);
    assert!(events.contains(&BaudEvent::Reset));
}

#[test]
fn a_rate_the_mcu_cannot_set_is_dropped_before_the_modem_hears_of_it() {
    let w = world(ModemConfig::new(Personality::Ec200u).ready());
    let (mut rx, mut resp) = ([0u8; 1024], [0u8; 512]);
    let mut c = asynch::Client::new(
        w.host_uart(),
        w.clock(),
        &mut rx,
        &mut resp,
        CountUrcs::default(),
    );
    let mut no_3m = |u: &mut HostUart, r: u32| {
        if r > 2_000_000 {
            return false;
        }
        u.set_baud(r);
        true
    };
    let mut rate = 115_200;
    let n = block_on(negotiate(
        &mut c,
        &Quectel::UART1,
        &BaudConfig::new(&DEFAULT_RATES),
        &mut rate,
        &mut no_3m,
        None,
        &mut |_| {},
    ))
    .expect("negotiated");
    assert_eq!(n.rate, 921_600);
    assert_eq!(
        n.fallbacks.as_slice(),
        [Fallback {
            rate: 3_000_000,
            why: Refusal::Mcu
        }]
    );
    assert!(!w.modem().commands().iter().any(|c| c == "AT+IPR=3000000"));
}

#[test]
fn an_mcu_that_restarted_finds_the_rate_it_had_negotiated() {
    let w = world(ModemConfig::new(Personality::Ec200u).ready());
    let mut rate = 115_200;
    assert_eq!(run(&w, &mut rate, None).0.unwrap().rate, 3_000_000);
    // The MCU resets: its firmware opens the UART at 115200 again; the module kept 3000000.
    w.host_uart().set_baud(115_200);
    let mut rate = 115_200;
    let t0 = w.elapsed();
    let (r, events) = run(&w, &mut rate, None);
    let n = r.expect("found");
    assert_eq!((n.rate, rate), (3_000_000, 3_000_000));
    assert!(!n.restarted);
    assert!(events.contains(&BaudEvent::Found(3_000_000)));
    assert!(w.elapsed() - t0 < Duration::from_secs(2));
}

#[test]
fn a_rate_dropped_by_the_caller_is_stepped_down_from() {
    let w = world(ModemConfig::new(Personality::Ec200u).ready());
    let mut rate = 115_200;
    assert_eq!(run(&w, &mut rate, None).0.unwrap().rate, 3_000_000);
    // A payload lost bytes at 3000000 (the MCU could not keep up): offer the slower ones.
    let (mut rx, mut resp) = ([0u8; 1024], [0u8; 512]);
    let mut c = blocking::Client::new(
        w.host_uart(),
        w.clock(),
        &mut rx,
        &mut resp,
        CountUrcs::default(),
    );
    let slower = [921_600, 460_800];
    let n = negotiate_blocking(
        &mut c,
        &Quectel::UART1,
        &BaudConfig::new(&slower),
        &mut rate,
        &mut set,
        None,
        &mut |_| {},
    )
    .expect("stepped down");
    assert_eq!((n.rate, rate), (921_600, 921_600));
    assert_eq!(
        n.fallbacks.as_slice(),
        [Fallback {
            rate: 3_000_000,
            why: Refusal::Dropped
        }]
    );
    assert_eq!(w.modem().baud(), 921_600);
}
