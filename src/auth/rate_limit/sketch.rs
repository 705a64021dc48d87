//! Where a `WindowCounter` remembers the keys that reached their limit
//! after the table pushed them out: a fixed-size filter that may refuse a
//! key that never reached it, but never lets one through that did.

/// Rows of the filter: a key is wrongly held to be exhausted only if all
/// four of its bits were set by other keys.
const DEPTH: usize = 4;

/// A partitioned Bloom filter of exhausted keys, in two generations of one
/// window each: a key written during a window is held for one to two
/// windows. With `n` keys written and `2^width_log2` bits per row, a fresh
/// key is wrongly refused with probability `(1 - e^(-n / 2^width_log2))^4`.
#[derive(Debug)]
pub(super) struct ExhaustedFilter {
    width_mask: usize,
    window_ms: u64,
    current: Vec<u64>,
    previous: Vec<u64>,
    current_started_ms: u64,
    current_written: bool,
    previous_written: bool,
}

impl ExhaustedFilter {
    pub fn new(width_log2: u32, window_ms: u64) -> Self {
        let words = (DEPTH << width_log2).div_ceil(64);
        Self {
            width_mask: (1usize << width_log2) - 1,
            window_ms,
            // Zeroed allocations: pages are only touched once written.
            current: vec![0; words],
            previous: vec![0; words],
            current_started_ms: 0,
            current_written: false,
            previous_written: false,
        }
    }

    pub fn memory_bytes(width_log2: u32) -> usize {
        2 * (DEPTH << width_log2).div_ceil(64) * std::mem::size_of::<u64>()
    }

    fn bits(&self, key: u128) -> [usize; DEPTH] {
        std::array::from_fn(|row| {
            let column = (key >> (32 * row)) as usize & self.width_mask;
            row * (self.width_mask + 1) + column
        })
    }

    /// Moves to the generation that holds `now_ms`.
    fn advance(&mut self, now_ms: u64) {
        let age = now_ms.saturating_sub(self.current_started_ms);
        if age < self.window_ms {
            return;
        }
        if age >= 2 * self.window_ms {
            for (words, written) in [
                (&mut self.current, &mut self.current_written),
                (&mut self.previous, &mut self.previous_written),
            ] {
                if std::mem::take(written) {
                    words.fill(0);
                }
            }
            self.current_started_ms = now_ms;
            return;
        }
        std::mem::swap(&mut self.current, &mut self.previous);
        let stale = std::mem::replace(&mut self.previous_written, self.current_written);
        if stale {
            self.current.fill(0);
        }
        self.current_written = false;
        self.current_started_ms += self.window_ms;
    }

    /// Remembers that `key` reached its limit.
    pub fn insert(&mut self, key: u128, now_ms: u64) {
        self.advance(now_ms);
        for bit in self.bits(key) {
            self.current[bit / 64] |= 1 << (bit % 64);
        }
        self.current_written = true;
    }

    /// Until when (ms since the counter's epoch) `key` is held to be
    /// exhausted, if it is.
    pub fn exhausted_until(&mut self, key: u128, now_ms: u64) -> Option<u64> {
        self.advance(now_ms);
        let bits = self.bits(key);
        let holds = |words: &[u64]| {
            bits.iter()
                .all(|&bit| words[bit / 64] & (1 << (bit % 64)) != 0)
        };
        let current_until = self.current_started_ms + 2 * self.window_ms;
        if holds(&self.current) {
            Some(current_until)
        } else if holds(&self.previous) {
            Some(current_until - self.window_ms)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: u64 = 900_000;

    fn spread(n: u128) -> u128 {
        n.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835)
    }

    #[test]
    fn an_exhausted_key_is_held_for_its_window_among_many_others() {
        let mut filter = ExhaustedFilter::new(12, WINDOW);
        for n in 0..5_000 {
            filter.insert(spread(n), 10);
        }
        let target = 0xdead_beef_u128 << 64 | 0x1234_5678;
        filter.insert(target, 20);
        assert!(filter.exhausted_until(target, WINDOW - 1).is_some());
        assert_eq!(
            filter.exhausted_until(target, WINDOW + 5),
            Some(2 * WINDOW),
            "kept through the next window"
        );
    }

    #[test]
    fn keys_are_forgotten_after_two_windows() {
        let mut filter = ExhaustedFilter::new(8, WINDOW);
        filter.insert(7, 0);
        assert_eq!(filter.exhausted_until(7, 1), Some(2 * WINDOW));
        assert_eq!(filter.exhausted_until(7, 2 * WINDOW), None);
        filter.insert(7, 3 * WINDOW);
        assert!(filter.exhausted_until(7, 3 * WINDOW + 1).is_some());
    }

    #[test]
    fn a_fresh_key_is_rarely_refused_by_a_sparse_filter() {
        let mut filter = ExhaustedFilter::new(16, WINDOW);
        for n in 0..20_000 {
            filter.insert(spread(n), 0);
        }
        let refused = (1_000_000u128..1_010_000)
            .filter(|&n| filter.exhausted_until(spread(n) ^ 0x5555, 1).is_some())
            .count();
        assert!(refused < 100, "{refused} of 10,000 fresh keys refused");
    }
}
