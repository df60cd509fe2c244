//! Native features computed from the market snapshot (product.md §5): signed distances to the
//! MenthorQ levels, the dealer's bias, the VIX policy with hysteresis and the Battle Navale
//! inputs. The rules stage calls [`FeatureEngine::compute`] at each evaluation.
//!
//! Everything here is pure: no I/O and no clock. The only state is per instrument (the VIX
//! hysteresis and the bias EMA) and lives in [`FeatureEngine`]; the building blocks
//! ([`level_distances`], [`dealer_bias`], [`battle_navale`]) are plain functions. Outputs are
//! deterministic: levels are walked in `BTreeMap` order and nothing iterates a hash map.
//!
//! # Decisions where the documents leave room
//!
//! 1. **Reference price.** One price for everything: the snapshot's `last_price` (last trade
//!    print, else the last bar close). Levels and value areas are traded prices, and the bar
//!    close exists in replay even without Time & Sales; the bid/ask mid would be missing there.
//! 2. **Missing values.** A price, level, VIX, VWAP or volume node that is not finite and
//!    positive is missing (zero means missing, product.md §3). Missing inputs give `None` or the
//!    neutral value, never a panic. A tick size that is not finite and positive makes every
//!    distance missing.
//! 3. **Sign conventions.** [`LevelDistances`] measure from the price to the level
//!    (level − price: a level above is positive), as product.md §5 words it. [`BattleNavale`]
//!    measures the price against a reference (price − level: positive when the price is above),
//!    like its `va_position` and `vwap_sigma`.
//! 4. **Families.** Distances use [`crate::model::LevelFamily`] (1D max is resistance, 1D min
//!    is support). The dealer's bias uses the groups of the table in strategy-facts.md §2, which
//!    leave 1D min/max out: [`GAMMA_RESISTANCE_LEVELS`] and [`GAMMA_SUPPORT_LEVELS`].
//! 5. **Dealer's-bias components.** strategy-facts.md §2 has two code columns that mostly
//!    agree (the version §9 #24 picks). Where they differ, the class-method column is followed:
//!    gamma resistance looks at the nearest resistance (not `min(R)`); a swing level exactly at
//!    the price counts as below (0.7); the GEX share is levels strictly above over all GEX levels
//!    (a level at the price counts in the total only). Ties between equally near gamma levels go
//!    to the first in the table's order, as Python's `min` does. The EMA (α = 0.2) is the
//!    plug-and-play column's. The raw bias is clamped to [−1, 1] as in the original.
//! 6. **No levels, no bias.** With no usable MenthorQ level the engine reports the bias as
//!    `None` rather than a value made of the VIX component alone; the EMA is then left as it
//!    was. [`dealer_bias`] itself stays total and returns neutral components.
//! 7. **Staleness.** Stale MenthorQ levels are not handled here: ages need the pipeline time
//!    and the rules veto on them (product.md §6).
//! 8. **VIX policy.** The cut-offs are product.md §5's (15/22/35), not the 20/30 runtime policy
//!    of strategy-facts.md §9 #7. The exact hysteresis rule is on [`VixPolicyTracker`]. A VIX
//!    that is not finite and positive is ignored. The tracker is per instrument, like the
//!    snapshot's `vix`.
//! 9. **Float noise.** Tick distances are rounded to a millionth of a tick and the VIX move is
//!    compared with a 1e-9 point slack, so that "exactly 10 ticks" or "exactly 2.0 points"
//!    counts as such on every instrument (RTY's 0.1 tick is not exact in binary).
//! 10. **Battle Navale sources.** The value area is the one-minute chart's current one, else the
//!     30-minute chart's, each only when trusted; the VWAP and its σ (from the ±1σ bands) are the
//!     one-minute chart's; HVN/LVN come from the 30-minute volume profile; pressure and delta
//!     ratio from the one-minute NBCV bar.
//! 11. **Confluence families.** Resistance, support, GEX, blind spot, swing (by
//!     [`crate::model::LevelFamily`]), then the VWAP line, the value area (VAH, VAL and VPOC as
//!     one family) and the volume nodes (HVN and LVN as one family): at most eight. A family
//!     counts when one of its levels is within `confluence_ticks`, edge included.

mod battle_navale;
mod bias;
mod levels;
mod vix;

use std::collections::BTreeMap;

use serde::Serialize;

pub use self::battle_navale::{BattleNavale, ConfluenceFamily, battle_navale, value_area_in_use};
pub use self::bias::{
    BIAS_WEIGHTS, BiasComponents, BiasEma, GAMMA_RESISTANCE_LEVELS, GAMMA_SUPPORT_LEVELS,
    dealer_bias,
};
pub use self::levels::{FamilyDistance, LevelDistances, level_distances};
pub use self::vix::{VixPolicy, VixPolicyTracker};
use crate::snapshot::MarketSnapshot;

/// Thresholds of the features; [`Default`] gives the documented values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeatureConfig {
    /// VIX move in points needed before the VIX policy may change: 2.0 (product.md §5).
    pub vix_update_threshold: f64,
    /// α of the dealer's-bias EMA: 0.2 (strategy-facts.md §2, plug-and-play column; product.md
    /// §5).
    pub bias_ema_alpha: f64,
    /// A gamma resistance or support within this many ticks is "near" for the dealer's bias:
    /// 10 (strategy-facts.md §2, `feature_config.json` gamma_proximity_ticks).
    pub gamma_proximity_ticks: f64,
    /// A blind spot within this many ticks makes the bias component bearish: 5
    /// (strategy-facts.md §2 and §3).
    pub blind_spot_proximity_ticks: f64,
    /// Swing levels within this many ticks enter the swing component: 15 (strategy-facts.md
    /// §2).
    pub swing_proximity_ticks: f64,
    /// A family counts toward the confluence when one of its levels is within this many ticks:
    /// 8 (product.md §5 leaves N open; 8 ticks is the "level within ≤ 8 ticks" reach of the 0DTE
    /// wall-sweep setup in strategy-facts.md §3).
    pub confluence_ticks: f64,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        Self {
            vix_update_threshold: 2.0,
            bias_ema_alpha: 0.2,
            gamma_proximity_ticks: 10.0,
            blind_spot_proximity_ticks: 5.0,
            swing_proximity_ticks: 15.0,
            confluence_ticks: 8.0,
        }
    }
}

/// Everything the features stage offers the rules for one instrument at one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Features {
    /// The reference price: the snapshot's `last_price` when usable.
    pub price: Option<f64>,
    /// Signed distances to the MenthorQ levels (empty without a price).
    pub levels: LevelDistances,
    /// Dealer's bias smoothed by the EMA, in [−1, 1]; `None` without a price or without levels.
    pub dealer_bias: Option<f64>,
    /// Dealer's bias of this evaluation before smoothing, in [−1, 1].
    pub dealer_bias_raw: Option<f64>,
    /// The components of the raw bias.
    pub bias_components: Option<BiasComponents>,
    /// The snapshot's VIX when usable.
    pub vix: Option<f64>,
    /// The VIX policy after hysteresis; `None` until a usable VIX has been seen.
    pub vix_policy: Option<VixPolicy>,
    /// The Battle Navale inputs.
    pub battle_navale: BattleNavale,
}

/// Per-instrument state kept between evaluations.
#[derive(Debug, Clone, Copy, PartialEq)]
struct InstrumentState {
    vix: VixPolicyTracker,
    bias: BiasEma,
}

/// Computes [`Features`] from snapshots, keeping the VIX hysteresis and the bias EMA of each
/// instrument (keyed by `MarketSnapshot::instrument`).
#[derive(Debug, Clone)]
pub struct FeatureEngine {
    cfg: FeatureConfig,
    states: BTreeMap<String, InstrumentState>,
}

impl FeatureEngine {
    /// Creates an engine with no history.
    pub fn new(cfg: FeatureConfig) -> Self {
        Self {
            cfg,
            states: BTreeMap::new(),
        }
    }

    /// Returns the thresholds in use.
    pub fn config(&self) -> &FeatureConfig {
        &self.cfg
    }

    /// Computes the features of `snapshot` and advances its instrument's VIX hysteresis and
    /// bias EMA.
    ///
    /// Call it once per evaluation: each call is one step of the EMA.
    pub fn compute(&mut self, snapshot: &MarketSnapshot) -> Features {
        let cfg = self.cfg;
        let state = self.state_mut(&snapshot.instrument);
        let spec = &snapshot.spec;

        let price = snapshot.last_price.filter(|p| levels::usable_price(*p));
        let vix = snapshot.vix.filter(|v| v.is_finite() && *v > 0.0);
        let vix_policy = match vix {
            Some(v) => state.vix.update(v),
            None => state.vix.policy(),
        };

        let distances = price
            .map(|p| level_distances(&snapshot.levels, p, spec))
            .unwrap_or_default();
        let has_levels = levels::usable_levels(&snapshot.levels).next().is_some();
        let bias = match price {
            Some(p) if has_levels && levels::usable_spec(spec) => {
                Some(dealer_bias(&snapshot.levels, p, vix, spec, &cfg))
            }
            _ => None,
        };
        let dealer_bias_raw = bias.map(|(raw, _)| raw);
        let dealer_bias = dealer_bias_raw.and_then(|raw| state.bias.update(raw));

        Features {
            price,
            levels: distances,
            dealer_bias,
            dealer_bias_raw,
            bias_components: bias.map(|(_, components)| components),
            vix,
            vix_policy,
            battle_navale: battle_navale(snapshot, price, &distances, &cfg),
        }
    }

    /// Returns the current VIX policy of `instrument`, `None` when unknown.
    pub fn vix_policy(&self, instrument: &str) -> Option<VixPolicy> {
        self.states.get(instrument).and_then(|s| s.vix.policy())
    }

    /// Returns the current smoothed dealer's bias of `instrument`, `None` when unknown.
    pub fn dealer_bias(&self, instrument: &str) -> Option<f64> {
        self.states.get(instrument).and_then(|s| s.bias.value())
    }

    fn state_mut(&mut self, instrument: &str) -> &mut InstrumentState {
        let cfg = self.cfg;
        self.states
            .entry(instrument.to_owned())
            .or_insert_with(|| InstrumentState {
                vix: VixPolicyTracker::new(cfg.vix_update_threshold),
                bias: BiasEma::new(cfg.bias_ema_alpha),
            })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::model::{ContractSpec, Level};

    const EPS: f64 = 1e-9;

    fn es_snapshot(price: Option<f64>, vix: Option<f64>) -> MarketSnapshot {
        let mut s = MarketSnapshot::new("ES", ContractSpec::builtin("ES").unwrap());
        s.last_price = price;
        s.vix = vix;
        // The brief's example around 6500.00: call resistance +8 ticks, put support −12,
        // blind spot +3, GEX two above and one below.
        s.levels = bias::tests::example_levels();
        s
    }

    #[test]
    fn worked_example_through_the_engine() {
        let mut engine = FeatureEngine::new(FeatureConfig::default());
        let f = engine.compute(&es_snapshot(Some(6500.0), Some(14.0)));
        assert_eq!(f.price, Some(6500.0));
        // Components 0.2 / 0.7 / 0.1 / 0.5 / 0.5 / 0.7, C = 0.395, raw = −0.21 (bias.rs).
        let raw = f.dealer_bias_raw.unwrap();
        assert!((raw + 0.21).abs() < EPS, "{raw}");
        // First EMA value is the raw one.
        assert_eq!(f.dealer_bias, f.dealer_bias_raw);
        assert_eq!(f.bias_components.unwrap().blind_spots, 0.1);
        assert_eq!(f.vix, Some(14.0));
        assert_eq!(f.vix_policy, Some(VixPolicy::Low));
        assert_eq!(f.levels.resistance.above, Some(8.0));
        assert_eq!(f.levels.support.below, Some(-12.0));
        assert_eq!(f.levels.nearest, Some((Level::BlindSpot(1), 3.0)));
        // Confluence within 8 ticks: resistance (+8), blind spot (+3); GEX (+20/−40) and
        // support (−12) are out.
        assert_eq!(f.battle_navale.confluence, 2);
        assert_eq!(engine.vix_policy("ES"), Some(VixPolicy::Low));
        assert_eq!(engine.dealer_bias("ES"), f.dealer_bias);
        assert_eq!(engine.config(), &FeatureConfig::default());
    }

    #[test]
    fn ema_over_three_evaluations_per_instrument() {
        let mut engine = FeatureEngine::new(FeatureConfig::default());
        // 1) Price 6500.00, VIX 14: raw r1 = −0.21 (worked example); EMA e1 = r1 = −0.21.
        let f1 = engine.compute(&es_snapshot(Some(6500.0), Some(14.0)));
        assert!((f1.dealer_bias.unwrap() + 0.21).abs() < EPS);
        // 2) Price 6480.00: resistance +88 ticks, above the price → 0.3; support +68 above →
        //    0.3; blind spot +83 → 0.5; no swing → 0.5; GEX 3 of 3 above → 0.3; VIX 14 → 0.7.
        //    C = 0.075 + 0.06 + 0.1 + 0.075 + 0.045 + 0.035 = 0.39, r2 = −0.22;
        //    e2 = 0.2·(−0.22) + 0.8·(−0.21) = −0.044 − 0.168 = −0.212.
        let f2 = engine.compute(&es_snapshot(Some(6480.0), Some(14.0)));
        assert!((f2.dealer_bias_raw.unwrap() + 0.22).abs() < EPS);
        assert!((f2.dealer_bias.unwrap() + 0.212).abs() < EPS);
        // Another instrument has its own EMA: NQ starts from its own raw value.
        let mut nq = es_snapshot(Some(6500.0), Some(30.0));
        nq.instrument = "NQ".into();
        let g = engine.compute(&nq);
        // VIX 30 → 0.5: C = 0.395 − 0.05·0.2 = 0.385, raw = −0.23, EMA = raw.
        assert!((g.dealer_bias.unwrap() + 0.23).abs() < EPS);
        // 3) Price 6520.00, VIX 14: resistance −72 ticks, below → 0.7; support −92 below →
        //    0.7; blind spot −77 → 0.5; swing 0.5; GEX 0 of 3 above → 0.7; VIX 0.7.
        //    C = 0.175 + 0.14 + 0.1 + 0.075 + 0.105 + 0.035 = 0.63, r3 = 0.26;
        //    e3 = 0.2·0.26 + 0.8·(−0.212) = 0.052 − 0.1696 = −0.1176.
        let f3 = engine.compute(&es_snapshot(Some(6520.0), Some(14.0)));
        assert!((f3.dealer_bias_raw.unwrap() - 0.26).abs() < EPS);
        assert!((f3.dealer_bias.unwrap() + 0.1176).abs() < EPS);
    }

    #[test]
    fn vix_hysteresis_through_the_engine() {
        let mut engine = FeatureEngine::new(FeatureConfig::default());
        assert_eq!(
            engine.compute(&es_snapshot(Some(6500.0), None)).vix_policy,
            None
        );
        assert_eq!(
            engine
                .compute(&es_snapshot(Some(6500.0), Some(14.5)))
                .vix_policy,
            Some(VixPolicy::Low)
        );
        // 15.0 crosses into "normal" by 0.5 point only: still low.
        let f = engine.compute(&es_snapshot(Some(6500.0), Some(15.0)));
        assert_eq!(f.vix_policy, Some(VixPolicy::Low));
        assert_eq!(f.vix, Some(15.0));
        // NaN VIX: ignored, the policy stays, the feature value is missing.
        let f = engine.compute(&es_snapshot(Some(6500.0), Some(f64::NAN)));
        assert_eq!(f.vix_policy, Some(VixPolicy::Low));
        assert_eq!(f.vix, None);
        // 16.5 is 2.0 from 14.5: normal.
        let f = engine.compute(&es_snapshot(Some(6500.0), Some(16.5)));
        assert_eq!(f.vix_policy, Some(VixPolicy::Normal));
    }

    #[test]
    fn missing_price_or_levels() {
        let mut engine = FeatureEngine::new(FeatureConfig::default());
        for price in [None, Some(f64::NAN), Some(0.0), Some(f64::INFINITY)] {
            let f = engine.compute(&es_snapshot(price, Some(14.0)));
            assert_eq!(f.price, None);
            assert_eq!(f.levels, LevelDistances::default());
            assert_eq!(f.dealer_bias, None);
            assert_eq!(f.dealer_bias_raw, None);
            assert_eq!(f.bias_components, None);
            assert_eq!(f.battle_navale, BattleNavale::default());
            // The VIX policy does not need a price.
            assert_eq!(f.vix_policy, Some(VixPolicy::Low));
        }
        assert_eq!(engine.dealer_bias("ES"), None, "the EMA never started");
        // Empty level set: no bias, no distances, but a price.
        let mut s = es_snapshot(Some(6500.0), Some(14.0));
        s.levels.clear();
        let f = engine.compute(&s);
        assert_eq!(f.price, Some(6500.0));
        assert_eq!(f.dealer_bias, None);
        assert_eq!(f.levels.nearest, None);
        // Levels all zero (missing) count as empty too.
        s.levels.insert(Level::Hvl, 0.0);
        assert_eq!(engine.compute(&s).dealer_bias, None);
        // A broken tick size: no distances, no bias, no panic.
        let mut s = es_snapshot(Some(6500.0), Some(14.0));
        s.spec.tick_size = f64::NAN;
        let f = engine.compute(&s);
        assert_eq!(f.dealer_bias, None);
        assert_eq!(f.levels, LevelDistances::default());
        assert_eq!(f.battle_navale.confluence, 0);
    }

    #[test]
    fn an_evaluation_without_bias_leaves_the_ema_alone() {
        let mut engine = FeatureEngine::new(FeatureConfig::default());
        engine.compute(&es_snapshot(Some(6500.0), Some(14.0)));
        engine.compute(&es_snapshot(None, Some(14.0)));
        // Back at 6480.00 the EMA continues from −0.21: −0.212 as in the three-step test.
        let f = engine.compute(&es_snapshot(Some(6480.0), Some(14.0)));
        assert!((f.dealer_bias.unwrap() + 0.212).abs() < EPS);
    }

    /// Any f64 (NaN, infinities, zero, negatives, subnormals) or a plausible ES price.
    fn any_price() -> impl Strategy<Value = f64> {
        prop_oneof![any::<f64>(), 6400.0..6600.0f64]
    }

    fn any_level() -> impl Strategy<Value = Level> {
        prop_oneof![
            Just(Level::CallResistance),
            Just(Level::PutSupport),
            Just(Level::Hvl),
            Just(Level::OneDayMin),
            Just(Level::OneDayMax),
            Just(Level::CallResistance0dte),
            Just(Level::PutSupport0dte),
            Just(Level::Hvl0dte),
            Just(Level::GammaWall0dte),
            (1..=10u8).prop_map(Level::Gex),
            (1..=10u8).prop_map(Level::BlindSpot),
            (1..=60u8).prop_map(Level::Swing),
        ]
    }

    proptest! {
        /// No input panics, and every output stays in its documented range.
        #[test]
        fn any_input_gives_bounded_outputs(
            price in proptest::option::of(any_price()),
            vix in proptest::option::of(any_price()),
            vix_points in proptest::collection::vec(any_price().prop_map(|p| p / 200.0), 0..5),
            levels in proptest::collection::vec((any_level(), any_price()), 0..30),
            tick in prop_oneof![Just(0.25), any::<f64>()],
        ) {
            let mut engine = FeatureEngine::new(FeatureConfig::default());
            let spec = ContractSpec { tick_size: tick, tick_value: 12.5 };
            let mut s = MarketSnapshot::new("ES", spec);
            s.levels = levels.into_iter().collect();
            s.last_price = price;
            for v in vix_points.into_iter().chain(vix) {
                s.vix = Some(v);
                let f = engine.compute(&s);
                for bias in [f.dealer_bias, f.dealer_bias_raw].into_iter().flatten() {
                    prop_assert!((-1.0..=1.0).contains(&bias), "{bias}");
                }
                if let Some(c) = f.bias_components {
                    let all = [
                        c.gamma_resistance, c.gamma_support, c.blind_spots, c.swing, c.gex, c.vix,
                    ];
                    for x in all {
                        prop_assert!((0.0..=1.0).contains(&x), "{x}");
                    }
                }
                let d = f.levels;
                for fam in [d.resistance, d.support, d.gex, d.blind_spot, d.swing] {
                    prop_assert!(fam.above.is_none_or(|a| a > 0.0 && a.is_finite()));
                    prop_assert!(fam.below.is_none_or(|b| b <= 0.0 && b.is_finite()));
                }
                prop_assert!(f.battle_navale.confluence <= 8);
                prop_assert!(f.vix.is_none_or(|v| v.is_finite() && v > 0.0));
            }
        }
    }
}
