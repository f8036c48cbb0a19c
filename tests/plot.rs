//! Timeline plots (`sim_device::plot`): a small simulated update in two configurations,
//! recorded by the simulator and drawn into one SVG with a panel each; and every kind of
//! mark on a made-up timeline.

mod sim_device;

use std::time::Duration;

use cellular_ota_sim::{
    BaudChange, FillSample, FlashBusy, FlashOpKind, LossSample, Personality, Timeline, UartEnd,
};
use sim_device::plot::{PlotCollector, PlotRun, plot_svg, render_svg};
use sim_device::{Device, Report, Setup};

/// Checks that `s` is well-formed XML (one root element, tags nested and closed, attribute
/// values quoted, only the five predefined entities and character references) and returns
/// the text content of every element named `name`.
fn well_formed(s: &str, name: &str) -> Result<Vec<String>, String> {
    let mut stack: Vec<String> = Vec::new();
    let mut texts = Vec::new();
    let mut roots = 0;
    let mut rest = s.trim_start();
    if let Some(r) = rest.strip_prefix("<?xml") {
        rest = &r[r.find("?>").ok_or("unterminated XML declaration")? + 2..];
    }
    let check_text = |t: &str| -> Result<(), String> {
        let mut t = t;
        while let Some(i) = t.find('&') {
            let end = t[i..].find(';').ok_or("bare &")? + i;
            let ent = &t[i + 1..end];
            let ok = matches!(ent, "amp" | "lt" | "gt" | "quot" | "apos")
                || ent
                    .strip_prefix("#x")
                    .is_some_and(|h| u32::from_str_radix(h, 16).is_ok())
                || ent
                    .strip_prefix('#')
                    .is_some_and(|d| d.parse::<u32>().is_ok());
            if !ok {
                return Err(format!("bad entity &{ent};"));
            }
            t = &t[end + 1..];
        }
        if t.contains('<') {
            return Err("< in text".into());
        }
        Ok(())
    };
    while !rest.is_empty() {
        let Some(open) = rest.find('<') else {
            if !rest.trim().is_empty() {
                return Err(format!(
                    "text after the root: {:?}",
                    &rest[..rest.len().min(40)]
                ));
            }
            break;
        };
        let text = &rest[..open];
        check_text(text)?;
        if stack.is_empty() && !text.trim().is_empty() {
            return Err("text outside the root".into());
        }
        if stack.last().is_some_and(|n| n == name) {
            texts.push(text.to_string());
        }
        rest = &rest[open..];
        if let Some(r) = rest.strip_prefix("<!--") {
            rest = &r[r.find("-->").ok_or("unterminated comment")? + 3..];
            continue;
        }
        // A tag: scan to its `>` outside quoted attribute values.
        let mut quote = None;
        let mut end = None;
        for (i, c) in rest.char_indices().skip(1) {
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, '<') => return Err("< inside a tag".into()),
                (None, '>') => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let end = end.ok_or("unterminated tag")?;
        let tag = &rest[1..end];
        rest = &rest[end + 1..];
        if let Some(close) = tag.strip_prefix('/') {
            let open = stack.pop().ok_or("close without open")?;
            if open != close.trim() {
                return Err(format!("<{open}> closed by </{close}>"));
            }
            continue;
        }
        let self_closing = tag.ends_with('/');
        let body = tag.trim_end_matches('/');
        let tname = body
            .split_whitespace()
            .next()
            .ok_or("empty tag")?
            .to_string();
        if !tname
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'))
        {
            return Err(format!("bad tag name {tname:?}"));
        }
        // Attributes: name="value" pairs.
        let mut attrs = body[tname.len()..].trim();
        while !attrs.is_empty() {
            let eq = attrs
                .find('=')
                .ok_or(format!("attribute without value in <{tname}>"))?;
            let after = attrs[eq + 1..].trim_start();
            let q = after.chars().next().ok_or("attribute value missing")?;
            if q != '"' && q != '\'' {
                return Err(format!("unquoted attribute in <{tname}>"));
            }
            let close = after[1..].find(q).ok_or("unterminated attribute")? + 1;
            check_text(&after[1..close])?;
            attrs = after[close + 1..].trim_start();
        }
        if stack.is_empty() {
            roots += 1;
        }
        if !self_closing {
            stack.push(tname);
        }
    }
    if !stack.is_empty() {
        return Err(format!("unclosed elements {stack:?}"));
    }
    if roots != 1 {
        return Err(format!("{roots} root elements"));
    }
    Ok(texts)
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Runs a small update with the timeline recorded; returns the report and the plot run.
fn recorded_run(setup: Setup, title: &str) -> (Report, PlotRun) {
    let baud = setup.baud;
    let mut device = Device::new(setup);
    device.world.record_timeline(true);
    let mut collect = PlotCollector::new();
    let report = device.run(&mut |world, ev| collect.on_event(world, &ev));
    let timeline = device.world.timeline();
    (
        report,
        collect.into_run(title, timeline, f64::from(baud) / 10.0),
    )
}

#[test]
fn two_configurations_in_one_svg_with_a_panel_each() {
    let mut shipped = Setup::new(Personality::Ec200u);
    shipped.baud = 115_200;
    shipped.size = 40 * 1024;
    shipped.attempts = 3;
    let mut fast = shipped.clone();
    fast.baud = 921_600;
    let titles = [
        "as shipped: 115200 baud, interrupt ring, no RTS/CTS",
        "interrupt UART at 921600 baud & no RTS/CTS",
    ];
    let mut runs = Vec::new();
    for (setup, title) in [(shipped, titles[0]), (fast, titles[1])] {
        let (report, run) = recorded_run(setup, title);
        assert!(
            report.installed().is_some(),
            "{title}: {:?}",
            report.error()
        );
        assert_eq!(report.power_cycles, 0);
        let t = &run.timeline;
        // The flash was busy exactly as long as its own counters say, erasing and writing.
        assert_eq!(t.flash_busy(), report.flash.busy, "{title}");
        assert!(t.flash_busy_of(FlashOpKind::SectorErase) > Duration::ZERO);
        assert!(t.flash_busy_of(FlashOpKind::PageProgram) > Duration::ZERO);
        assert_eq!(t.lost_bytes(), report.uart_lost, "{title}");
        assert!(t.max_rx_fill() <= t.rx_capacity);
        assert_eq!(run.attempts.len(), report.attempts.len());
        assert!(!run.bytes.is_empty());
        assert_eq!(run.total as usize, 40 * 1024);
        assert_eq!(run.bytes.last().unwrap().1, run.total);
        runs.push(run);
    }

    let path = std::env::temp_dir().join(format!("cellular-ota-plot-{}.svg", std::process::id()));
    plot_svg(&path, &runs).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).ok();

    let texts: Vec<String> = well_formed(&svg, "text")
        .unwrap_or_else(|e| panic!("not well-formed XML: {e}"))
        .iter()
        .map(|t| unescape(t.trim()))
        .collect();
    assert_eq!(svg.matches("<svg").count(), 1);
    assert!(
        svg.contains(&format!("width=\"{}\"", sim_device::plot::WIDTH)),
        "{}",
        &svg[..200]
    );
    assert!(svg.contains(&format!(
        "height=\"{}\"",
        2 * sim_device::plot::PANEL_HEIGHT
    )));
    let count = |s: &str| texts.iter().filter(|t| t.as_str() == s).count();
    // One panel per run: its title once, and in it the axes and legend of both parts.
    for title in titles {
        assert_eq!(count(title), 1, "title {title:?} in {texts:?}");
    }
    assert!(
        svg.contains("921600 baud &amp; no RTS/CTS"),
        "titles are escaped"
    );
    for each_panel in [
        "payload durable (KiB)",
        "MCU RX buffer (B)",
        "virtual time (s)",
        "payload durable in flash",
        "attempt 1",
        "RX capacity 1152 B (FIFO + ring)",
        "RX buffer fill (peak per pixel)",
        "attempt start",
    ] {
        assert_eq!(count(each_panel), 2, "{each_panel:?} in {texts:?}");
    }
    assert_eq!(count("line rate 11520 B/s"), 1, "{texts:?}");
    assert_eq!(count("line rate 92160 B/s"), 1, "{texts:?}");
    assert!(
        texts
            .iter()
            .filter(|t| t.starts_with("flash sector erase ("))
            .count()
            == 2,
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .filter(|t| t.starts_with("flash program ("))
            .count()
            == 2,
        "{texts:?}"
    );
    // Small enough for a README.
    assert!(svg.len() < 600_000, "{} bytes", svg.len());
}

#[test]
fn every_kind_of_mark_on_a_made_up_timeline() {
    let ms = Duration::from_millis;
    let timeline = Timeline {
        start: ms(0),
        end: ms(2000),
        period: ms(1),
        flash: vec![
            FlashBusy {
                start: ms(100),
                end: ms(145),
                kind: FlashOpKind::SectorErase,
            },
            FlashBusy {
                start: ms(200),
                end: ms(350),
                kind: FlashOpKind::BlockErase,
            },
            FlashBusy {
                start: ms(400),
                end: ms(420),
                kind: FlashOpKind::PageProgram,
            },
            FlashBusy {
                start: ms(1500),
                end: ms(1510),
                kind: FlashOpKind::Read,
            },
        ],
        rx_capacity: 1152,
        rx_fill: vec![
            FillSample {
                at: ms(100),
                max: 128,
                last: 128,
            },
            FillSample {
                at: ms(146),
                max: 128,
                last: 0,
            },
        ],
        rx_fill_at_start: 0,
        lost: vec![LossSample {
            at: ms(120),
            bytes: 300,
        }],
        modem_baud_at_start: 115_200,
        host_baud_at_start: 115_200,
        bauds: vec![
            // The MCU checks that it can reach a rate and sets its rate back at once: no
            // change on the line, no label.
            BaudChange {
                at: ms(40),
                end: UartEnd::Host,
                baud: 921_600,
            },
            BaudChange {
                at: ms(40),
                end: UartEnd::Host,
                baud: 115_200,
            },
            BaudChange {
                at: ms(50),
                end: UartEnd::Modem,
                baud: 921_600,
            },
            BaudChange {
                at: ms(60),
                end: UartEnd::Host,
                baud: 921_600,
            },
        ],
    };
    let run = PlotRun {
        title: "made up <run>".into(),
        bytes: vec![(ms(500), 4096), (ms(1000), 8192), (ms(1800), 12288)],
        total: 12288,
        timeline,
        attempts: vec![ms(0), ms(900)],
        line_rate_bytes_per_sec: 92_160.0,
    };
    let svg = render_svg(std::slice::from_ref(&run)).unwrap();
    let texts: Vec<String> = well_formed(&svg, "text")
        .unwrap()
        .iter()
        .map(|t| unescape(t.trim()))
        .collect();
    for want in [
        "made up <run>",
        // Both ends' changes 10 ms apart share one label.
        "baud 921600",
        "attempt 1",
        "attempt 2",
        "flash sector erase (0.04 s)",
        "flash block erase (0.15 s)",
        "flash program (0.02 s)",
        "flash read (0.01 s)",
        "UART bytes lost (300)",
        "baud-rate change",
    ] {
        assert!(texts.iter().any(|t| t == want), "{want:?} in {texts:?}");
    }
    assert!(!texts.iter().any(|t| t.contains("115200")), "{texts:?}");
    assert!(
        texts.iter().any(|t| t.contains("300 bytes lost")),
        "{texts:?}"
    );
    // The loss mark is red; the durable-bytes line has two segments (two attempts).
    assert!(svg.contains("stroke=\"#DC0000\""), "red loss marks");
    assert_eq!(svg.matches("stroke=\"#1950C8\"").count(), 2 + 1, "{svg}");
    assert!(render_svg(&[]).is_err());
}
