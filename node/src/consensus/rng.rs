//! The core's only source of randomness: splitmix64, seeded from the configuration
//! seed mixed with the node id, so every run replays exactly from its seed.

/// A tiny deterministic PRNG (splitmix64). Not cryptographic; it only spreads
/// election timeouts.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64, node: u64) -> Self {
        let mut r = SplitMix64 {
            state: seed ^ node.wrapping_mul(0xA076_1D64_78BD_642F),
        };
        // Discard one output so nearby seeds diverge at once.
        r.next_u64();
        r
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`; returns `lo` when the range is empty.
    pub fn range(&mut self, lo: u32, hi: u32) -> u32 {
        if hi <= lo {
            return lo;
        }
        lo + (self.next_u64() % u64::from(hi - lo)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_ids_differ() {
        let mut a = SplitMix64::new(7, 1);
        let mut b = SplitMix64::new(7, 1);
        let mut c = SplitMix64::new(7, 2);
        let xs: Vec<u32> = (0..8).map(|_| a.range(10, 20)).collect();
        let ys: Vec<u32> = (0..8).map(|_| b.range(10, 20)).collect();
        let zs: Vec<u32> = (0..8).map(|_| c.range(10, 20)).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
        assert!(xs.iter().all(|&x| (10..20).contains(&x)));
    }
}
