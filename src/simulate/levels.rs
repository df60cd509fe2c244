//! MenthorQ levels for chart 10: daily gamma levels from the open and the expected move, 0DTE
//! levels that follow price between blocks, GEX strikes and blind spots near price.

use super::market::Stream;

/// `level_type` of gamma subgraphs 0…18 (sierra-format.md §6.1).
pub(crate) const GAMMA_NAMES: [&str; 19] = [
    "call_resistance",
    "put_support",
    "hvl",
    "1d_min",
    "1d_max",
    "call_resistance_0dte",
    "put_support_0dte",
    "hvl_0dte",
    "gamma_wall_0dte",
    "gex_1",
    "gex_2",
    "gex_3",
    "gex_4",
    "gex_5",
    "gex_6",
    "gex_7",
    "gex_8",
    "gex_9",
    "gex_10",
];

/// `level_type` of blind-spot subgraphs 0…9.
pub(crate) const BLIND_NAMES: [&str; 10] = [
    "blind_spot_0",
    "blind_spot_1",
    "blind_spot_2",
    "blind_spot_3",
    "blind_spot_4",
    "blind_spot_5",
    "blind_spot_6",
    "blind_spot_7",
    "blind_spot_8",
    "blind_spot_9",
];

/// The current levels, in ticks.
pub(crate) struct Levels {
    pub(crate) gamma: [i64; 19],
    pub(crate) blind: [i64; 10],
    strike: i64,
    em: f64,
    scale: f64,
}

/// Option strike spacing in ticks: a round number of points near 1/1300 of the price (5 points
/// for ES at 6500), and a whole number of ticks.
fn strike_ticks(price: f64, tick: f64) -> i64 {
    const NICE: [f64; 11] = [
        0.5, 1.0, 2.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0,
    ];
    let want = price / 1300.0;
    let mut best = NICE[0];
    for step in NICE {
        if (step / want).ln().abs() < (best / want).ln().abs() {
            best = step;
        }
    }
    ((best / tick).round() as i64).max(1)
}

impl Levels {
    /// Daily levels from the open `p0` (ticks), the tick size and the opening VIX.
    pub(crate) fn new(rng: &mut Stream, p0: i64, tick: f64, vix0: f64) -> Levels {
        let price = p0 as f64 * tick;
        let em = price * vix0 / 100.0 / 252f64.sqrt() / tick;
        let mut levels = Levels {
            gamma: [1; 19],
            blind: [1; 10],
            strike: strike_ticks(price, tick),
            em,
            scale: price / 6500.0 / tick,
        };
        let p = p0 as f64;
        levels.gamma[0] = levels.at_strike(p + rng.range(0.6, 1.0) * em);
        levels.gamma[1] = levels.at_strike(p - rng.range(0.6, 1.1) * em);
        levels.gamma[2] = levels.at_strike(p + rng.range(-0.25, 0.1) * em);
        levels.gamma[3] = at_tick(p - em);
        levels.gamma[4] = at_tick(p + em);
        let zero_dte = levels.zero_dte_targets(rng, p0);
        levels.gamma[5..9].copy_from_slice(&zero_dte);
        // GEX: ten distinct strikes spread around the open.
        let mut gex: Vec<i64> = Vec::with_capacity(10);
        let mut attempts = 0;
        while gex.len() < 10 {
            attempts += 1;
            let candidate = levels.at_strike(p + rng.range(-1.3, 1.3) * em);
            if !gex.contains(&candidate) || attempts > 200 {
                gex.push(candidate);
            }
        }
        levels.gamma[9..19].copy_from_slice(&gex);
        for b in 0..levels.blind.len() {
            levels.blind[b] = levels.blind_near(rng, p0);
        }
        levels
    }

    fn at_strike(&self, ticks: f64) -> i64 {
        ((ticks / self.strike as f64).round() as i64 * self.strike).max(self.strike)
    }

    fn zero_dte_targets(&self, rng: &mut Stream, price: i64) -> [i64; 4] {
        let p = price as f64;
        let em = self.em;
        [
            self.at_strike(p + rng.range(0.25, 0.45) * em),
            self.at_strike(p - rng.range(0.25, 0.45) * em),
            self.at_strike(p + rng.range(-0.1, 0.1) * em),
            self.at_strike(p + rng.range(-0.3, 0.3) * em),
        ]
    }

    /// A blind spot within about ±30 points (ES-scaled) of `price`, on the tick grid.
    fn blind_near(&self, rng: &mut Stream, price: i64) -> i64 {
        at_tick(price as f64 + rng.range(-30.0, 30.0) * self.scale)
    }

    /// Moves the 0DTE levels halfway toward fresh targets around `price` and re-draws blind spots
    /// that price has left far behind.
    pub(crate) fn refresh(&mut self, rng: &mut Stream, price: i64) {
        let targets = self.zero_dte_targets(rng, price);
        for (k, target) in targets.into_iter().enumerate() {
            let old = self.gamma[5 + k] as f64;
            self.gamma[5 + k] = self.at_strike(old + 0.5 * (target as f64 - old));
        }
        for b in 0..self.blind.len() {
            if ((self.blind[b] - price) as f64).abs() > 40.0 * self.scale {
                self.blind[b] = self.blind_near(rng, price);
            }
        }
    }
}

fn at_tick(ticks: f64) -> i64 {
    (ticks.round() as i64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn es_levels_are_plausible() {
        let mut rng = Stream::new(1, 2);
        let p0 = 26_000; // 6500.00
        let lv = Levels::new(&mut rng, p0, 0.25, 16.0);
        assert_eq!(strike_ticks(6500.0, 0.25), 20);
        assert!(lv.gamma[0] > p0, "call resistance above");
        assert!(lv.gamma[1] < p0, "put support below");
        assert!(lv.gamma[3] < p0 && lv.gamma[4] > p0);
        for b in lv.blind {
            assert!((b - p0).abs() <= 120, "blind spot {b} within 30 points");
        }
        assert!(lv.gamma.iter().all(|&g| g > 0));
    }
}
