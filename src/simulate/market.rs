//! The synthetic market: random numbers, session statistics (VWAP, volume at price, value area),
//! the order book and the VIX path.
//!
//! Prices are kept as integer ticks so that everything printed lands exactly on the tick grid.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A seeded random stream. Each concern (market, levels, VIX, quirks) gets its own stream so that
/// injecting quirks never changes the market itself.
pub(crate) struct Stream(ChaCha8Rng);

impl Stream {
    pub(crate) fn new(seed: u64, stream: u64) -> Stream {
        // SplitMix64 of seed and stream id: distinct, well-mixed seeds for nearby inputs.
        let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Stream(ChaCha8Rng::seed_from_u64(z))
    }

    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        self.0.random::<f64>()
    }

    /// Uniform in [lo, hi).
    pub(crate) fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform integer in [lo, hi] (inclusive).
    pub(crate) fn int(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        self.0.random_range(lo..=hi)
    }

    /// True with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Standard normal (Box–Muller; one of the pair is dropped, simplicity over speed).
    pub(crate) fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Poisson count (Knuth's method, fine for the small rates used here).
    pub(crate) fn poisson(&mut self, lambda: f64) -> u32 {
        if lambda.is_nan() || lambda <= 0.0 {
            return 0;
        }
        let lambda = lambda.min(200.0);
        // Split large rates so exp(-lambda) stays well above the f64 floor.
        let mut total = 0;
        let mut rest = lambda;
        while rest > 0.0 {
            let chunk = rest.min(30.0);
            rest -= chunk;
            let limit = (-chunk).exp();
            let mut p = 1.0;
            loop {
                p *= self.unit();
                if p <= limit {
                    break;
                }
                total += 1;
            }
        }
        total
    }
}

/// Volume at price for the session, by tick.
pub(crate) struct Vap {
    base: i64,
    vol: Vec<u64>,
    total: u64,
}

/// A value area in ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ValueArea {
    pub(crate) poc: i64,
    pub(crate) vah: i64,
    pub(crate) val: i64,
}

impl Vap {
    pub(crate) fn new(center: i64) -> Vap {
        Vap {
            base: center - 512,
            vol: vec![0; 1024],
            total: 0,
        }
    }

    pub(crate) fn add(&mut self, tick: i64, v: u64) {
        if tick < self.base {
            let grow = (self.base - tick) as usize + 256;
            let mut vol = vec![0; grow];
            vol.extend_from_slice(&self.vol);
            self.vol = vol;
            self.base -= grow as i64;
        }
        let idx = (tick - self.base) as usize;
        if idx >= self.vol.len() {
            self.vol.resize(idx + 256, 0);
        }
        self.vol[idx] += v;
        self.total += v;
    }

    /// The 70 % value area around the point of control, grown one price at a time toward the
    /// side with more volume (ties go up), as Sierra's Volume Value Area study does.
    pub(crate) fn value_area(&self) -> Option<ValueArea> {
        if self.total == 0 {
            return None;
        }
        let lo = self.vol.iter().position(|&v| v > 0)?;
        let hi = self.vol.iter().rposition(|&v| v > 0)?;
        let mut poc = lo;
        for idx in lo..=hi {
            if self.vol[idx] > self.vol[poc] {
                poc = idx;
            }
        }
        let target = (self.total as f64 * 0.7).ceil() as u64;
        let (mut a, mut b) = (poc, poc);
        let mut acc = self.vol[poc];
        while acc < target && (a > lo || b < hi) {
            let up = if b < hi { Some(self.vol[b + 1]) } else { None };
            let down = if a > lo { Some(self.vol[a - 1]) } else { None };
            match (up, down) {
                (Some(u), Some(d)) if u >= d => {
                    b += 1;
                    acc += u;
                }
                (Some(_), Some(d)) | (None, Some(d)) => {
                    a -= 1;
                    acc += d;
                }
                (Some(u), None) => {
                    b += 1;
                    acc += u;
                }
                (None, None) => break,
            }
        }
        Some(ValueArea {
            poc: self.base + poc as i64,
            vah: self.base + b as i64,
            val: self.base + a as i64,
        })
    }

    /// High- and low-volume nodes inside the value area: the busiest price away from the POC and
    /// the quietest price, both within [val, vah].
    pub(crate) fn nodes(&self, va: ValueArea) -> (i64, i64) {
        let a = (va.val - self.base) as usize;
        let b = (va.vah - self.base) as usize;
        let poc = (va.poc - self.base) as usize;
        let mut hvn = None::<usize>;
        let mut lvn = a;
        for idx in a..=b.min(self.vol.len() - 1) {
            if idx.abs_diff(poc) > 2 && hvn.is_none_or(|h| self.vol[idx] > self.vol[h]) {
                hvn = Some(idx);
            }
            if self.vol[idx] < self.vol[lvn] {
                lvn = idx;
            }
        }
        (
            self.base + hvn.unwrap_or(poc) as i64,
            self.base + lvn as i64,
        )
    }
}

/// Volume-weighted running sums of traded prices, relative to an anchor tick so that the sums
/// stay exact integers.
pub(crate) struct VwapStats {
    anchor: i64,
    sum_v: i128,
    sum_pv: i128,
    sum_p2v: i128,
}

impl VwapStats {
    pub(crate) fn new(anchor: i64) -> VwapStats {
        VwapStats {
            anchor,
            sum_v: 0,
            sum_pv: 0,
            sum_p2v: 0,
        }
    }

    pub(crate) fn add(&mut self, tick: i64, v: u64) {
        let rel = i128::from(tick - self.anchor);
        let v = i128::from(v);
        self.sum_v += v;
        self.sum_pv += rel * v;
        self.sum_p2v += rel * rel * v;
    }

    /// VWAP and standard deviation, in ticks (fractional), or `None` before the first trade.
    pub(crate) fn mean_sd(&self) -> Option<(f64, f64)> {
        if self.sum_v == 0 {
            return None;
        }
        let n = self.sum_v as f64;
        let mean = self.sum_pv as f64 / n;
        let var = (self.sum_p2v as f64 / n - mean * mean).max(0.0);
        Some((self.anchor as f64 + mean, var.sqrt()))
    }
}

/// Levels of the book kept per side: Sierra levels 0 (best) to 10.
pub(crate) const BOOK_LEVELS: usize = 11;

/// The order book: best bid in ticks (the ask is one tick above) and sizes per level.
pub(crate) struct Book {
    pub(crate) bid: i64,
    pub(crate) bids: [u32; BOOK_LEVELS],
    pub(crate) asks: [u32; BOOK_LEVELS],
}

/// A fresh resting size at Sierra level `level`.
pub(crate) fn fresh_size(rng: &mut Stream, level: usize) -> u32 {
    let mean = 12.0 + 9.0 * level as f64;
    (mean * rng.range(0.3, 1.7)).round().max(1.0) as u32
}

impl Book {
    pub(crate) fn new(bid: i64, rng: &mut Stream) -> Book {
        let mut book = Book {
            bid,
            bids: [1; BOOK_LEVELS],
            asks: [1; BOOK_LEVELS],
        };
        for level in 0..BOOK_LEVELS {
            book.bids[level] = fresh_size(rng, level);
            book.asks[level] = fresh_size(rng, level);
        }
        book
    }

    pub(crate) fn ask(&self) -> i64 {
        self.bid + 1
    }

    /// The ask was lifted: the book moves up one tick.
    pub(crate) fn shift_up(&mut self, rng: &mut Stream) {
        self.bid += 1;
        self.bids.copy_within(0..BOOK_LEVELS - 1, 1);
        self.bids[0] = fresh_size(rng, 0);
        self.asks.copy_within(1..BOOK_LEVELS, 0);
        self.asks[BOOK_LEVELS - 1] = fresh_size(rng, BOOK_LEVELS - 1);
    }

    /// The bid was hit: the book moves down one tick.
    pub(crate) fn shift_down(&mut self, rng: &mut Stream) {
        self.bid -= 1;
        self.asks.copy_within(0..BOOK_LEVELS - 1, 1);
        self.asks[0] = fresh_size(rng, 0);
        self.bids.copy_within(1..BOOK_LEVELS, 0);
        self.bids[BOOK_LEVELS - 1] = fresh_size(rng, BOOK_LEVELS - 1);
    }

    /// Resting orders come and go behind the best prices.
    pub(crate) fn perturb(&mut self, rng: &mut Stream, p: f64) {
        for level in 1..BOOK_LEVELS {
            for side in [&mut self.bids, &mut self.asks] {
                if rng.chance(p) {
                    let delta = rng.int(-8, 8) as i32;
                    let next = (side[level] as i32 + delta).max(1) as u32;
                    side[level] = if next == side[level] { next + 1 } else { next };
                }
            }
        }
    }
}

/// One scripted VIX spike: linear rise to `amp` over `rise` minutes from `at`, then exponential
/// decay with time constant `tau` minutes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shock {
    pub(crate) at: f64,
    pub(crate) rise: f64,
    pub(crate) tau: f64,
    pub(crate) amp: f64,
}

impl Shock {
    /// The spike's contribution at minute `t` (fractional).
    pub(crate) fn value(&self, t: f64) -> f64 {
        if t < self.at {
            0.0
        } else if t < self.at + self.rise {
            self.amp * (t - self.at) / self.rise
        } else {
            self.amp * (-(t - self.at - self.rise) / self.tau).exp()
        }
    }
}

/// The VIX script for a session: a base curve by session fraction, scripted spikes, coupling to
/// the futures price and a little noise.
pub(crate) struct VixPath {
    base: Vec<(f64, f64)>,
    pub(crate) shocks: Vec<Shock>,
    noise: f64,
    minutes: f64,
}

/// Points of VIX per percent of price move away from the open (negative correlation).
const VIX_PER_PCT: f64 = 1.3;
/// Bound of the price coupling, so the scripted regimes are always reached.
const COUPLING_MAX: f64 = 1.0;
/// Bound of the noise term.
const NOISE_MAX: f64 = 0.3;

impl VixPath {
    pub(crate) fn new(rng: &mut Stream, minutes: u32) -> VixPath {
        let m = f64::from(minutes);
        let v0 = rng.range(15.4, 16.6);
        let long = minutes >= 240;
        let base = if long {
            // A quiet, complacent first hour (low), then a normal afternoon.
            vec![
                (0.0, v0),
                (0.10, 13.4),
                (0.22, 13.5),
                (0.30, 16.2),
                (1.0, rng.range(16.5, 17.5)),
            ]
        } else {
            vec![(0.0, v0), (1.0, v0 + rng.range(-0.3, 0.6))]
        };
        let mut path = VixPath {
            base,
            shocks: Vec::new(),
            noise: 0.0,
            minutes: m,
        };
        // First spike into the `high` regime, on every session length.
        let (at1, rise1, tau1) = if long {
            (m * rng.range(0.33, 0.40), rng.range(10.0, 15.0), 30.0)
        } else {
            (
                m * rng.range(0.25, 0.40),
                (0.12 * m).clamp(1.0, 12.0),
                (0.20 * m).clamp(3.0, 30.0),
            )
        };
        let target1 = rng.range(24.0, 25.5);
        let amp1 = target1 - path.base_at(at1 + rise1);
        path.shocks.push(Shock {
            at: at1,
            rise: rise1,
            tau: tau1,
            amp: amp1,
        });
        if long {
            // Second spike into `extreme`, short-lived, later in the day.
            let at2 = m * rng.range(0.62, 0.70);
            let rise2 = rng.range(8.0, 12.0);
            let target2 = rng.range(37.5, 39.5);
            let others: f64 = path.shocks.iter().map(|s| s.value(at2 + rise2)).sum();
            let amp2 = target2 - path.base_at(at2 + rise2) - others;
            path.shocks.push(Shock {
                at: at2,
                rise: rise2,
                tau: 18.0,
                amp: amp2,
            });
        }
        path
    }

    fn base_at(&self, minute: f64) -> f64 {
        let u = if self.minutes > 0.0 {
            (minute / self.minutes).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let mut prev = self.base[0];
        for &(x, y) in &self.base {
            if u <= x {
                if x <= prev.0 {
                    return y;
                }
                return prev.1 + (y - prev.1) * (u - prev.0) / (x - prev.0);
            }
            prev = (x, y);
        }
        prev.1
    }

    /// Sum of the scripted spikes at minute `t`.
    pub(crate) fn shock_at(&self, t: f64) -> f64 {
        self.shocks.iter().map(|s| s.value(t)).sum()
    }

    /// The VIX value at minute `t`, given the futures move from the open in percent; rounded to
    /// the cent like the index itself. Advances the noise state (call every 15 s).
    pub(crate) fn step(&mut self, rng: &mut Stream, t: f64, move_pct: f64) -> f64 {
        self.noise = (self.noise * 0.97 + 0.06 * rng.normal()).clamp(-NOISE_MAX, NOISE_MAX);
        let coupling = (-VIX_PER_PCT * move_pct).clamp(-COUPLING_MAX, COUPLING_MAX);
        let v = self.base_at(t) + self.shock_at(t) + coupling + self.noise;
        (v.max(9.0) * 100.0).round() / 100.0
    }
}

/// Relative trading intensity by New York time of day: a U over the regular session
/// (09:30–16:00), quieter overnight.
pub(crate) fn intensity(ny_minute_of_day: f64) -> f64 {
    const OPEN: f64 = 570.0;
    const CLOSE: f64 = 960.0;
    if (OPEN..CLOSE).contains(&ny_minute_of_day) {
        let u = (ny_minute_of_day - OPEN) / (CLOSE - OPEN);
        0.6 + 4.8 * (u - 0.5) * (u - 0.5)
    } else {
        0.4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_area_contains_poc_and_seventy_percent() {
        let mut vap = Vap::new(26_000);
        let vols = [5u64, 10, 40, 80, 30, 30, 2, 1];
        for (k, v) in vols.iter().enumerate() {
            vap.add(26_000 + k as i64, *v);
        }
        let va = vap.value_area().unwrap();
        assert!(va.val <= va.poc && va.poc <= va.vah);
        assert_eq!(va.poc, 26_003);
        let inside: u64 = (va.val..=va.vah).map(|t| vols[(t - 26_000) as usize]).sum();
        assert!(inside * 10 >= 7 * vols.iter().sum::<u64>());
        let (hvn, lvn) = vap.nodes(va);
        assert!(va.val <= hvn && hvn <= va.vah);
        assert!(va.val <= lvn && lvn <= va.vah);
    }

    #[test]
    fn vap_grows_both_ways() {
        let mut vap = Vap::new(100);
        vap.add(-5_000, 3);
        vap.add(9_000, 4);
        let va = vap.value_area().unwrap();
        assert_eq!(va.poc, 9_000);
    }

    #[test]
    fn vwap_of_two_prices() {
        let mut s = VwapStats::new(1000);
        s.add(1000, 1);
        s.add(1002, 1);
        let (m, sd) = s.mean_sd().unwrap();
        assert!((m - 1001.0).abs() < 1e-12);
        assert!((sd - 1.0).abs() < 1e-12);
    }

    #[test]
    fn vix_script_reaches_every_regime_on_a_long_session() {
        for seed in 0..20 {
            let mut rng = Stream::new(seed, 7);
            let mut path = VixPath::new(&mut rng, 390);
            let (mut lo, mut hi) = (f64::MAX, f64::MIN);
            let mut t = 0.0;
            while t < 390.0 {
                // Worst case coupling for each bound: a falling market lifts the VIX.
                lo = lo.min(path.step(&mut rng, t, -2.0));
                hi = hi.max(path.step(&mut rng, t, 2.0));
                t += 0.25;
            }
            assert!(lo < 15.0, "seed {seed}: min {lo}");
            assert!(hi >= 35.0, "seed {seed}: max {hi}");
        }
    }

    #[test]
    fn poisson_mean_is_close() {
        let mut rng = Stream::new(3, 1);
        let n = 20_000;
        let sum: u64 = (0..n).map(|_| u64::from(rng.poisson(7.5))).sum();
        let mean = sum as f64 / n as f64;
        assert!((mean - 7.5).abs() < 0.15, "{mean}");
        assert_eq!(rng.poisson(f64::NAN), 0);
    }
}
