//! Dealer's bias from the MenthorQ levels (product.md §5; strategy-facts.md §2, the code
//! version picked in §9 #24).

use std::collections::BTreeMap;

use serde::Serialize;

use super::FeatureConfig;
use super::levels::{ticks_from, usable_levels};
use crate::model::{ContractSpec, Level};

/// The gamma-resistance group of the dealer's-bias table (strategy-facts.md §2).
///
/// It differs from [`crate::model::LevelFamily::Resistance`]: 1D max is not in it. The order is
/// the table's and breaks ties between equally near levels.
pub const GAMMA_RESISTANCE_LEVELS: [Level; 3] = [
    Level::CallResistance,
    Level::CallResistance0dte,
    Level::GammaWall0dte,
];

/// The gamma-support group of the dealer's-bias table (strategy-facts.md §2).
///
/// It differs from [`crate::model::LevelFamily::Support`]: 1D min is not in it. The order is the
/// table's and breaks ties between equally near levels.
pub const GAMMA_SUPPORT_LEVELS: [Level; 4] = [
    Level::PutSupport,
    Level::PutSupport0dte,
    Level::Hvl,
    Level::Hvl0dte,
];

/// The six components of the dealer's bias, each in [0, 1] with 0.5 neutral (below 0.5 is
/// bearish, above bullish).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BiasComponents {
    /// Nearest gamma resistance (call resistance, call resistance 0DTE, gamma wall 0DTE).
    pub gamma_resistance: f64,
    /// Nearest gamma support (put support, put support 0DTE, HVL, HVL 0DTE).
    pub gamma_support: f64,
    /// Blind spots near the price.
    pub blind_spots: f64,
    /// Swing levels near the price.
    pub swing: f64,
    /// Share of GEX levels above the price.
    pub gex: f64,
    /// VIX level.
    pub vix: f64,
}

/// The weights of the components: 0.25, 0.20, 0.20, 0.15, 0.15, 0.05 (strategy-facts.md §2,
/// product.md §5). They add up to 1.
pub const BIAS_WEIGHTS: BiasComponents = BiasComponents {
    gamma_resistance: 0.25,
    gamma_support: 0.20,
    blind_spots: 0.20,
    swing: 0.15,
    gex: 0.15,
    vix: 0.05,
};

impl BiasComponents {
    /// Every component neutral (0.5): what missing data gives.
    pub const NEUTRAL: BiasComponents = BiasComponents {
        gamma_resistance: 0.5,
        gamma_support: 0.5,
        blind_spots: 0.5,
        swing: 0.5,
        gex: 0.5,
        vix: 0.5,
    };

    /// Returns the weighted sum C = Σ wₖ·cₖ with [`BIAS_WEIGHTS`], in [0, 1].
    pub fn composite(&self) -> f64 {
        let w = BIAS_WEIGHTS;
        w.gamma_resistance * self.gamma_resistance
            + w.gamma_support * self.gamma_support
            + w.blind_spots * self.blind_spots
            + w.swing * self.swing
            + w.gex * self.gex
            + w.vix * self.vix
    }

    /// Returns the raw bias 2·C − 1, clamped to [−1, 1] as the original does
    /// (strategy-facts.md §2).
    pub fn raw_bias(&self) -> f64 {
        (2.0 * self.composite() - 1.0).clamp(-1.0, 1.0)
    }
}

/// Returns the raw dealer's bias in [−1, 1] and its components (strategy-facts.md §2, code
/// version).
///
/// Component rules (`d` = signed ticks level − price; a missing group is neutral, 0.5):
/// - gamma resistance: the nearest level of [`GAMMA_RESISTANCE_LEVELS`]; |d| ≤
///   `gamma_proximity_ticks` → 0.2, above the price → 0.3, below → 0.7;
/// - gamma support: the nearest level of [`GAMMA_SUPPORT_LEVELS`]; |d| ≤ `gamma_proximity_ticks`
///   → 0.8, below the price → 0.7, above → 0.3;
/// - blind spots: any within `blind_spot_proximity_ticks` → 0.1, otherwise 0.5;
/// - swing: the mean over the swing levels within `swing_proximity_ticks` of 0.3 (above the
///   price) or 0.7 (at or below); none within → 0.5;
/// - GEX: share of GEX levels strictly above the price among all GEX levels; > 0.7 → 0.3,
///   < 0.3 → 0.7, otherwise 0.5;
/// - VIX: < 15 → 0.7, otherwise (and when missing) 0.5 (the table's "> 25 → 0.5" changes
///   nothing).
///
/// An unusable price or tick size leaves every level component neutral. This function keeps no
/// state: the EMA is [`BiasEma`].
pub fn dealer_bias(
    levels: &BTreeMap<Level, f64>,
    price: f64,
    vix: Option<f64>,
    spec: &ContractSpec,
    cfg: &FeatureConfig,
) -> (f64, BiasComponents) {
    let group_nearest = |group: &[Level]| -> Option<f64> {
        // The first of the group's order wins a tie, as Python's `min` over the table's list.
        group
            .iter()
            .filter_map(|level| ticks_from(price, *levels.get(level)?, spec))
            .fold(None, |best: Option<f64>, d| match best {
                Some(b) if b.abs() <= d.abs() => Some(b),
                _ => Some(d),
            })
    };
    let distances = |wanted: fn(Level) -> bool| {
        usable_levels(levels)
            .filter(move |(level, _)| wanted(*level))
            .filter_map(move |(_, level_price)| ticks_from(price, level_price, spec))
    };

    let gamma_resistance = match group_nearest(&GAMMA_RESISTANCE_LEVELS) {
        None => 0.5,
        Some(d) if d.abs() <= cfg.gamma_proximity_ticks => 0.2,
        Some(d) if d > 0.0 => 0.3,
        Some(_) => 0.7,
    };
    let gamma_support = match group_nearest(&GAMMA_SUPPORT_LEVELS) {
        None => 0.5,
        Some(d) if d.abs() <= cfg.gamma_proximity_ticks => 0.8,
        Some(d) if d < 0.0 => 0.7,
        Some(_) => 0.3,
    };
    let blind_spots = if distances(|l| matches!(l, Level::BlindSpot(_)))
        .any(|d| d.abs() <= cfg.blind_spot_proximity_ticks)
    {
        0.1
    } else {
        0.5
    };
    let (swing_sum, swing_n) = distances(|l| matches!(l, Level::Swing(_)))
        .filter(|d| d.abs() <= cfg.swing_proximity_ticks)
        .fold((0.0, 0u32), |(sum, n), d| {
            (sum + if d > 0.0 { 0.3 } else { 0.7 }, n + 1)
        });
    let swing = if swing_n == 0 {
        0.5
    } else {
        swing_sum / f64::from(swing_n)
    };
    let (gex_above, gex_n) = distances(|l| matches!(l, Level::Gex(_)))
        .fold((0u32, 0u32), |(above, n), d| {
            (above + u32::from(d > 0.0), n + 1)
        });
    let gex = if gex_n == 0 {
        0.5
    } else {
        let share = f64::from(gex_above) / f64::from(gex_n);
        if share > 0.7 {
            0.3
        } else if share < 0.3 {
            0.7
        } else {
            0.5
        }
    };
    let vix = match vix {
        Some(v) if v.is_finite() && v > 0.0 && v < 15.0 => 0.7,
        _ => 0.5,
    };
    let components = BiasComponents {
        gamma_resistance,
        gamma_support,
        blind_spots,
        swing,
        gex,
        vix,
    };
    (components.raw_bias(), components)
}

/// Exponential moving average of the dealer's bias: `bias = α·raw + (1 − α)·previous`, the
/// first value being the raw one (strategy-facts.md §2, plug-and-play column, α = 0.2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BiasEma {
    alpha: f64,
    value: Option<f64>,
}

impl BiasEma {
    /// Creates an empty average. A non-finite `alpha` falls back to 0.2 (strategy-facts.md §2)
    /// and an out-of-range one is clamped to [0, 1], so that the output stays a weighted mean
    /// of raw values in [−1, 1].
    pub fn new(alpha: f64) -> Self {
        let alpha = if alpha.is_finite() {
            alpha.clamp(0.0, 1.0)
        } else {
            0.2
        };
        Self { alpha, value: None }
    }

    /// Feeds one raw bias and returns the smoothed one. A non-finite raw value is ignored and
    /// the current average (if any) returned unchanged.
    pub fn update(&mut self, raw: f64) -> Option<f64> {
        if raw.is_finite() {
            self.value = Some(match self.value {
                Some(previous) => self.alpha * raw + (1.0 - self.alpha) * previous,
                None => raw,
            });
        }
        self.value
    }

    /// Returns the current average, `None` before the first value.
    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    const EPS: f64 = 1e-9;

    fn es() -> ContractSpec {
        ContractSpec::builtin("ES").unwrap()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < EPS
    }

    /// The brief's worked example at price 6500.00 on ES (tick 0.25); the engine tests in
    /// `features/mod.rs` use it too.
    pub(in crate::features) fn example_levels() -> BTreeMap<Level, f64> {
        BTreeMap::from([
            // Call resistance 8 ticks above: 6500 + 8 × 0.25 = 6502.00.
            (Level::CallResistance, 6502.0),
            // Put support 12 ticks below: 6500 − 12 × 0.25 = 6497.00.
            (Level::PutSupport, 6497.0),
            // A blind spot 3 ticks away: 6500.75.
            (Level::BlindSpot(1), 6500.75),
            // Two GEX above, one below.
            (Level::Gex(1), 6505.0),
            (Level::Gex(2), 6510.0),
            (Level::Gex(3), 6490.0),
        ])
    }

    #[test]
    fn worked_example_of_the_brief() {
        let (raw, c) = dealer_bias(
            &example_levels(),
            6500.0,
            Some(14.0),
            &es(),
            &FeatureConfig::default(),
        );
        // Gamma resistance: |+8| ≤ 10 ticks → 0.2.
        assert_eq!(c.gamma_resistance, 0.2);
        // Gamma support: |−12| > 10, support below the price → 0.7.
        assert_eq!(c.gamma_support, 0.7);
        // Blind spot: 3 ≤ 5 ticks → 0.1.
        assert_eq!(c.blind_spots, 0.1);
        // No swing level → 0.5.
        assert_eq!(c.swing, 0.5);
        // GEX: 2 of 3 above = 0.667, neither > 0.7 nor < 0.3 → 0.5.
        assert_eq!(c.gex, 0.5);
        // VIX 14 < 15 → 0.7.
        assert_eq!(c.vix, 0.7);
        // C = 0.25·0.2 + 0.20·0.7 + 0.20·0.1 + 0.15·0.5 + 0.15·0.5 + 0.05·0.7
        //   = 0.05 + 0.14 + 0.02 + 0.075 + 0.075 + 0.035 = 0.395; raw = 2·0.395 − 1 = −0.21.
        assert!(close(c.composite(), 0.395), "{}", c.composite());
        assert!(close(raw, -0.21), "{raw}");
    }

    #[test]
    fn swing_mean_gex_share_and_far_gamma() {
        let levels = BTreeMap::from([
            // Resistance 20 ticks below the price (6495.00): price above it → 0.7.
            (Level::CallResistance0dte, 6495.0),
            // Support 40 ticks above (6510.00): price below the nearest support → 0.3.
            (Level::Hvl0dte, 6510.0),
            // Blind spot 6 ticks away (6501.50): outside 5 → 0.5.
            (Level::BlindSpot(2), 6501.5),
            // Swing within 15 ticks: +10 (6502.50) → 0.3, −4 (6499.00) → 0.7, at price → 0.7;
            // +16 (6504.00) is outside. Mean = (0.3 + 0.7 + 0.7) / 3 = 1.7 / 3.
            (Level::Swing(1), 6502.5),
            (Level::Swing(2), 6499.0),
            (Level::Swing(3), 6500.0),
            (Level::Swing(4), 6504.0),
            // GEX: 3 of 3 above, share 1.0 > 0.7 → 0.3.
            (Level::Gex(4), 6501.0),
            (Level::Gex(5), 6502.0),
            (Level::Gex(6), 6503.0),
        ]);
        let (raw, c) = dealer_bias(
            &levels,
            6500.0,
            Some(30.0),
            &es(),
            &FeatureConfig::default(),
        );
        assert_eq!(c.gamma_resistance, 0.7);
        assert_eq!(c.gamma_support, 0.3);
        assert_eq!(c.blind_spots, 0.5);
        assert!(close(c.swing, 1.7 / 3.0), "{}", c.swing);
        assert_eq!(c.gex, 0.3);
        // VIX 30 → 0.5.
        assert_eq!(c.vix, 0.5);
        // C = 0.25·0.7 + 0.20·0.3 + 0.20·0.5 + 0.15·(1.7/3) + 0.15·0.3 + 0.05·0.5
        //   = 0.175 + 0.06 + 0.1 + 0.085 + 0.045 + 0.025 = 0.49; raw = 2·0.49 − 1 = −0.02.
        assert!(close(raw, -0.02), "{raw}");
    }

    #[test]
    fn nearest_gamma_level_decides_and_ties_follow_the_table() {
        // Resistances at +12 and −11 ticks: the nearest is below → 0.7 (the plug-and-play
        // column's min(R) rule would say 0.3; the class-method column is followed).
        let levels = BTreeMap::from([
            (Level::CallResistance, 103.0),
            (Level::GammaWall0dte, 97.25),
        ]);
        let (_, c) = dealer_bias(&levels, 100.0, None, &es(), &FeatureConfig::default());
        assert_eq!(c.gamma_resistance, 0.7);
        // Supports at +12 (put support 0DTE) and −12 (HVL): tie, the table lists put support
        // 0DTE first → above the price → 0.3.
        let levels = BTreeMap::from([(Level::PutSupport0dte, 103.0), (Level::Hvl, 97.0)]);
        let (_, c) = dealer_bias(&levels, 100.0, None, &es(), &FeatureConfig::default());
        assert_eq!(c.gamma_support, 0.3);
        // Exactly 10 ticks counts as near (≤): support 102.50 → 0.8.
        let levels = BTreeMap::from([(Level::PutSupport, 102.5)]);
        let (_, c) = dealer_bias(&levels, 100.0, None, &es(), &FeatureConfig::default());
        assert_eq!(c.gamma_support, 0.8);
        // 1D min/max are not in the table's groups: they leave both components neutral.
        let levels = BTreeMap::from([(Level::OneDayMin, 99.0), (Level::OneDayMax, 101.0)]);
        let (raw, c) = dealer_bias(&levels, 100.0, None, &es(), &FeatureConfig::default());
        assert_eq!(c, BiasComponents::NEUTRAL);
        assert!(close(raw, 0.0));
    }

    #[test]
    fn gex_share_edges() {
        // 7 of 10 above: share 0.7 is not > 0.7 → 0.5. 8 of 10 → 0.3. 3 of 10 is not < 0.3
        // → 0.5. 2 of 10 → 0.7. A GEX exactly at the price counts in the total only.
        let gex = |above: u8| -> BTreeMap<Level, f64> {
            (1..=10)
                .map(|n| {
                    let price = if n <= above { 101.0 } else { 100.0 };
                    (Level::Gex(n), price)
                })
                .collect()
        };
        let cfg = FeatureConfig::default();
        let at = |above| dealer_bias(&gex(above), 100.0, None, &es(), &cfg).1.gex;
        assert_eq!(at(7), 0.5);
        assert_eq!(at(8), 0.3);
        assert_eq!(at(3), 0.5);
        assert_eq!(at(2), 0.7);
    }

    #[test]
    fn missing_inputs_are_neutral() {
        let cfg = FeatureConfig::default();
        // No level, no VIX: every component 0.5, C = 0.5, raw = 0.
        let (raw, c) = dealer_bias(&BTreeMap::new(), 6500.0, None, &es(), &cfg);
        assert_eq!(c, BiasComponents::NEUTRAL);
        assert!(close(raw, 0.0));
        // NaN price: level components neutral; VIX 14 alone gives C = 0.95·0.5 + 0.05·0.7
        // = 0.51, raw = 0.02.
        let (raw, c) = dealer_bias(&example_levels(), f64::NAN, Some(14.0), &es(), &cfg);
        assert_eq!(BiasComponents { vix: 0.5, ..c }, BiasComponents::NEUTRAL);
        assert!(close(raw, 0.02), "{raw}");
        // NaN VIX is neutral.
        let (_, c) = dealer_bias(&BTreeMap::new(), 6500.0, Some(f64::NAN), &es(), &cfg);
        assert_eq!(c.vix, 0.5);
        // Weights add up to 1.
        let ones = BiasComponents {
            gamma_resistance: 1.0,
            gamma_support: 1.0,
            blind_spots: 1.0,
            swing: 1.0,
            gex: 1.0,
            vix: 1.0,
        };
        assert!(close(ones.composite(), 1.0));
        assert_eq!(ones.raw_bias(), 1.0);
    }

    #[test]
    fn ema_over_three_updates() {
        let mut ema = BiasEma::new(0.2);
        assert_eq!(ema.value(), None);
        // First value is the raw one.
        assert_eq!(ema.update(-0.21), Some(-0.21));
        // 0.2·0.5 + 0.8·(−0.21) = 0.1 − 0.168 = −0.068.
        assert!(close(ema.update(0.5).unwrap(), -0.068));
        // NaN is ignored.
        assert!(close(ema.update(f64::NAN).unwrap(), -0.068));
        // 0.2·(−1) + 0.8·(−0.068) = −0.2 − 0.0544 = −0.2544.
        assert!(close(ema.update(-1.0).unwrap(), -0.2544));
        // A NaN α falls back to 0.2; α above 1 is clamped to 1 (no smoothing).
        let mut ema = BiasEma::new(f64::NAN);
        ema.update(0.0);
        assert!(close(ema.update(1.0).unwrap(), 0.2));
        let mut ema = BiasEma::new(3.0);
        ema.update(0.0);
        assert_eq!(ema.update(1.0), Some(1.0));
    }
}
