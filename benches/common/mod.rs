//! Shared by the benches: run mode detection, criterion settings and the interleaved
//! measurement that produces the `RATIO` lines.
//!
//! The machine is shared and noisy, so absolute times are never compared across runs. Each
//! bench measures its contenders interleaved in one run (A, B, A, B ... with the order
//! reversed every other round) and prints ratios of the medians.

use std::time::{Duration, Instant};

use criterion::Criterion;

/// How the bench binary was started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `cargo bench`: full measurements and `RATIO` lines.
    Bench,
    /// `cargo test --all-targets` / `cargo bench -- --test` / `--list`: run every contender
    /// once on a small input to check it works, print no figures.
    Test,
}

/// The mode criterion will pick from the same arguments (`--bench` without `--test` or
/// `--list` means measure).
pub fn mode() -> Mode {
    let args: Vec<String> = std::env::args().collect();
    let has = |a: &str| args.iter().any(|x| x == a);
    if has("--bench") && !has("--test") && !has("--list") {
        Mode::Bench
    } else {
        Mode::Test
    }
}

/// Criterion settings that keep a whole bench under about a minute on two cores.
pub fn criterion() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .without_plots()
        .configure_from_args()
}

/// One side of a comparison: a name and a closure doing one unit of work.
pub struct Contender<'a> {
    /// Label used in the output.
    pub name: &'static str,
    /// One unit of work (one transfer, one pass over the corpus, one batch of commands).
    pub run: Box<dyn FnMut() + 'a>,
}

impl<'a> Contender<'a> {
    /// A named contender.
    pub fn new(name: &'static str, run: impl FnMut() + 'a) -> Self {
        Contender {
            name,
            run: Box::new(run),
        }
    }
}

/// Seconds per unit of work of every contender in every round, measured interleaved: in
/// each round every contender runs a block of units (enough for about `block` of time) and
/// the order is reversed every other round.
pub fn interleaved(contenders: &mut [Contender<'_>], rounds: usize, block: Duration) -> Samples {
    // Calibrate: units per block, from one warm run each.
    let mut units = Vec::with_capacity(contenders.len());
    for c in contenders.iter_mut() {
        (c.run)();
        let t0 = Instant::now();
        (c.run)();
        let one = t0.elapsed().as_secs_f64().max(1e-9);
        units.push(((block.as_secs_f64() / one).ceil() as usize).max(1));
    }
    let mut rounds_t: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); contenders.len()];
    for round in 0..rounds {
        let order: Vec<usize> = if round % 2 == 0 {
            (0..contenders.len()).collect()
        } else {
            (0..contenders.len()).rev().collect()
        };
        for i in order {
            let c = &mut contenders[i];
            let t0 = Instant::now();
            for _ in 0..units[i] {
                (c.run)();
            }
            rounds_t[i].push(t0.elapsed().as_secs_f64() / units[i] as f64);
        }
    }
    let samples = Samples { rounds: rounds_t };
    for (i, c) in contenders.iter().enumerate() {
        println!(
            "  median {:<24} {:>12.3} us per unit",
            c.name,
            samples.median(i) * 1e6
        );
    }
    samples
}

/// Per-round times from [`interleaved`].
pub struct Samples {
    rounds: Vec<Vec<f64>>,
}

impl Samples {
    /// Median seconds per unit of contender `i`.
    pub fn median(&self, i: usize) -> f64 {
        median(self.rounds[i].clone())
    }

    /// How many times faster contender `a` is than contender `b`: the median over rounds of
    /// `time(b) / time(a)`, each pair taken from the same round (so slow drifts of the
    /// machine cancel out).
    pub fn speedup(&self, a: usize, b: usize) -> f64 {
        median(
            self.rounds[a]
                .iter()
                .zip(&self.rounds[b])
                .map(|(ta, tb)| tb / ta)
                .collect(),
        )
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// `812 MB/s`-style rate (decimal units).
pub fn rate(amount: f64, secs: f64, unit: &str) -> String {
    let r = amount / secs;
    if r >= 1e9 {
        format!("{:.2} G{unit}/s", r / 1e9)
    } else if r >= 1e6 {
        format!("{:.1} M{unit}/s", r / 1e6)
    } else if r >= 1e3 {
        format!("{:.1} k{unit}/s", r / 1e3)
    } else {
        format!("{r:.0} {unit}/s")
    }
}
