//! A small seeded random number generator (SplitMix64), so that every random choice of the
//! simulator (URC timing, which URC) is reproducible from [`WorldConfig::seed`].
//!
//! [`WorldConfig::seed`]: crate::WorldConfig::seed

/// SplitMix64 (Steele, Lea, Flood 2014): one 64-bit state word, good statistical quality for
/// a simulator, no dependency.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform float in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A uniform integer in `0..n` (`0` when `n == 0`).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// True with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }

    /// An exponentially distributed interval with the given mean (a Poisson process), at
    /// least 1 ns.
    pub(crate) fn exp_interval(&mut self, mean_ns: f64) -> u64 {
        let u = 1.0 - self.unit(); // (0, 1]
        let v = -u.ln() * mean_ns;
        if v.is_finite() && v >= 1.0 {
            v.min(u64::MAX as f64 / 2.0) as u64
        } else {
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn reproducible() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert!(Rng::new(1).below(10) < 10);
        assert_eq!(Rng::new(1).below(0), 0);
    }
}
