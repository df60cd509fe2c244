//! Signed distances in ticks from the price to the MenthorQ levels, per family
//! (product.md §5, first item of the features bullet).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{ContractSpec, Level, LevelFamily};

/// Distances are rounded to this fraction of a tick.
///
/// Prices are decimal but `f64` is binary, so `(level − price) / tick` carries noise: on RTY
/// (tick 0.1) three ticks can come out as 2.9999999999999996 or 3.0000000000000004, and a
/// `≤ 3 ticks` rule would then depend on the printout. Rounding to a millionth of a tick removes
/// that noise and nothing a trader can see.
const TICK_ROUNDING: f64 = 1e6;

/// Returns whether `price` can be used as a price: finite and positive.
///
/// Zero means "missing" for every study value the dumpers write (product.md §3), and the
/// equity-index futures mia trades (product.md §5) never print at or below zero.
pub(super) fn usable_price(price: f64) -> bool {
    price.is_finite() && price > 0.0
}

/// Returns whether the contract spec can convert prices to ticks.
pub(super) fn usable_spec(spec: &ContractSpec) -> bool {
    spec.tick_size.is_finite() && spec.tick_size > 0.0
}

/// Returns `(target − price)` in ticks, rounded to a millionth of a tick, or `None` when either
/// price or the spec is unusable.
///
/// Positive means `target` is above `price`.
pub(super) fn ticks_from(price: f64, target: f64, spec: &ContractSpec) -> Option<f64> {
    if !usable_price(price) || !usable_price(target) || !usable_spec(spec) {
        return None;
    }
    let ticks = (spec.ticks(target - price) * TICK_ROUNDING).round() / TICK_ROUNDING;
    // `+ 0.0` turns a rounded −0.0 into 0.0, so that "at the price" prints one way.
    ticks.is_finite().then_some(ticks + 0.0)
}

/// Iterates over the levels whose price is usable, in `Level` order (deterministic).
pub(super) fn usable_levels(levels: &BTreeMap<Level, f64>) -> impl Iterator<Item = (Level, f64)> {
    levels
        .iter()
        .map(|(level, price)| (*level, *price))
        .filter(|(_, price)| usable_price(*price))
}

/// Distances from the price to the nearest level of one family, on each side.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct FamilyDistance {
    /// Ticks to the nearest level strictly above the price (always positive), `None` when the
    /// family has no level above.
    pub above: Option<f64>,
    /// Ticks to the nearest level at or below the price (zero or negative), `None` when the
    /// family has no level there.
    pub below: Option<f64>,
}

impl FamilyDistance {
    /// No level on either side.
    pub const EMPTY: FamilyDistance = FamilyDistance {
        above: None,
        below: None,
    };

    /// Returns the signed distance of the nearer side; on a tie the level below (or at) the
    /// price wins, because a level at the price is already being tested.
    pub fn nearest(&self) -> Option<f64> {
        match (self.above, self.below) {
            (Some(above), Some(below)) => Some(if above < -below { above } else { below }),
            (above, below) => above.or(below),
        }
    }

    /// Returns whether a level of the family is within `ticks` of the price (inclusive).
    pub fn within(&self, ticks: f64) -> bool {
        self.nearest().is_some_and(|d| d.abs() <= ticks)
    }

    /// Takes one signed distance into account.
    fn add(&mut self, ticks: f64) {
        if ticks > 0.0 {
            if self.above.is_none_or(|above| ticks < above) {
                self.above = Some(ticks);
            }
        } else if self.below.is_none_or(|below| ticks > below) {
            self.below = Some(ticks);
        }
    }
}

/// Signed distances from the price to the MenthorQ levels, one entry per [`LevelFamily`].
///
/// Sign convention: level − price, so a level above the price is positive.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct LevelDistances {
    /// Call resistance, call resistance 0DTE, gamma wall 0DTE, 1D max.
    pub resistance: FamilyDistance,
    /// Put support, put support 0DTE, HVL, HVL 0DTE, 1D min.
    pub support: FamilyDistance,
    /// GEX 1 to 10.
    pub gex: FamilyDistance,
    /// Blind spots 1 to 10.
    pub blind_spot: FamilyDistance,
    /// Swing levels 1 to 60.
    pub swing: FamilyDistance,
    /// The nearest level of any family and its signed distance in ticks. On equal distances the
    /// level at or below the price wins, then the first in `Level` order.
    pub nearest: Option<(Level, f64)>,
}

impl LevelDistances {
    /// Returns the distances of one family.
    pub fn family(&self, family: LevelFamily) -> &FamilyDistance {
        match family {
            LevelFamily::Resistance => &self.resistance,
            LevelFamily::Support => &self.support,
            LevelFamily::Gex => &self.gex,
            LevelFamily::BlindSpot => &self.blind_spot,
            LevelFamily::Swing => &self.swing,
        }
    }

    fn family_mut(&mut self, family: LevelFamily) -> &mut FamilyDistance {
        match family {
            LevelFamily::Resistance => &mut self.resistance,
            LevelFamily::Support => &mut self.support,
            LevelFamily::Gex => &mut self.gex,
            LevelFamily::BlindSpot => &mut self.blind_spot,
            LevelFamily::Swing => &mut self.swing,
        }
    }
}

/// Returns the signed distance in ticks from `price` to the nearest level of each family above
/// and at/below it (product.md §5).
///
/// Families are those of [`Level::family`] (1D max counts as resistance, 1D min as support).
/// Levels whose price is not finite and positive are ignored (zero means missing,
/// product.md §3). An unusable price or tick size gives empty distances.
pub fn level_distances(
    levels: &BTreeMap<Level, f64>,
    price: f64,
    spec: &ContractSpec,
) -> LevelDistances {
    let mut out = LevelDistances::default();
    for (level, level_price) in usable_levels(levels) {
        let Some(ticks) = ticks_from(price, level_price, spec) else {
            continue;
        };
        out.family_mut(level.family()).add(ticks);
        let nearer = match out.nearest {
            None => true,
            // A strictly smaller distance wins; on a tie the level below or at the price
            // replaces one above (same rule as `FamilyDistance::nearest`).
            Some((_, best)) => {
                ticks.abs() < best.abs() || (ticks.abs() == best.abs() && ticks < best)
            }
        };
        if nearer {
            out.nearest = Some((level, ticks));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn es() -> ContractSpec {
        ContractSpec::builtin("ES").unwrap()
    }

    #[test]
    fn distances_per_family_on_both_sides_and_at_price() {
        let price = 6500.0;
        let levels = BTreeMap::from([
            // Resistance: 6502.00 is (6502 − 6500) / 0.25 = +8 ticks; 6510.00 is +40 (farther).
            (Level::CallResistance, 6502.0),
            (Level::GammaWall0dte, 6510.0),
            // 1D max counts as resistance in `LevelFamily`; below the price: −4 ticks.
            (Level::OneDayMax, 6499.0),
            // Support: put support 6497.00 is −12 ticks; HVL exactly at the price is 0 and
            // belongs to the "at/below" side.
            (Level::PutSupport, 6497.0),
            (Level::Hvl, 6500.0),
            // GEX: +1 tick (6500.25) and +6 (6501.50) above, −2 (6499.50) below.
            (Level::Gex(1), 6500.25),
            (Level::Gex(2), 6501.5),
            (Level::Gex(3), 6499.5),
            // Blind spot 3 ticks above: 6500.75.
            (Level::BlindSpot(1), 6500.75),
            // Swing: one level 20 ticks below (6495.00), zero means missing.
            (Level::Swing(1), 6495.0),
            (Level::Swing(2), 0.0),
        ]);
        let d = level_distances(&levels, price, &es());
        assert_eq!(
            d.resistance,
            FamilyDistance {
                above: Some(8.0),
                below: Some(-4.0)
            }
        );
        assert_eq!(
            d.support,
            FamilyDistance {
                above: None,
                below: Some(0.0)
            }
        );
        assert_eq!(
            d.gex,
            FamilyDistance {
                above: Some(1.0),
                below: Some(-2.0)
            }
        );
        assert_eq!(
            d.blind_spot,
            FamilyDistance {
                above: Some(3.0),
                below: None
            }
        );
        assert_eq!(
            d.swing,
            FamilyDistance {
                above: None,
                below: Some(-20.0)
            }
        );
        // HVL at 0 ticks is the nearest of all.
        assert_eq!(d.nearest, Some((Level::Hvl, 0.0)));
        assert_eq!(d.resistance.nearest(), Some(-4.0));
        assert_eq!(d.gex.nearest(), Some(1.0));
        assert!(d.blind_spot.within(3.0));
        assert!(!d.blind_spot.within(2.5));
        assert_eq!(d.family(LevelFamily::Swing), &d.swing);
    }

    #[test]
    fn ties_prefer_the_level_below() {
        // GEX 1 at +2 ticks and swing 1 at −2 ticks: the level below wins the tie.
        let levels = BTreeMap::from([(Level::Gex(1), 100.5), (Level::Swing(1), 99.5)]);
        let d = level_distances(&levels, 100.0, &es());
        assert_eq!(d.nearest, Some((Level::Swing(1), -2.0)));
        let family = FamilyDistance {
            above: Some(2.0),
            below: Some(-2.0),
        };
        assert_eq!(family.nearest(), Some(-2.0));
    }

    #[test]
    fn tick_noise_is_rounded_away() {
        // RTY, tick 0.1: (2301.6 − 2301.3) / 0.1 is not exactly 3 in binary floating point.
        let rty = ContractSpec::builtin("RTY").unwrap();
        let levels = BTreeMap::from([(Level::BlindSpot(1), 2301.6)]);
        let d = level_distances(&levels, 2301.3, &rty);
        assert_eq!(d.blind_spot.above, Some(3.0));
    }

    #[test]
    fn missing_inputs_give_empty_distances() {
        let levels = BTreeMap::from([(Level::CallResistance, 6502.0)]);
        assert_eq!(
            level_distances(&BTreeMap::new(), 6500.0, &es()),
            LevelDistances::default()
        );
        assert_eq!(
            level_distances(&levels, f64::NAN, &es()),
            LevelDistances::default()
        );
        assert_eq!(
            level_distances(&levels, 0.0, &es()),
            LevelDistances::default()
        );
        let broken = ContractSpec {
            tick_size: 0.0,
            tick_value: 12.5,
        };
        assert_eq!(
            level_distances(&levels, 6500.0, &broken),
            LevelDistances::default()
        );
        let nan_level = BTreeMap::from([(Level::CallResistance, f64::NAN)]);
        assert_eq!(
            level_distances(&nan_level, 6500.0, &es()),
            LevelDistances::default()
        );
        assert_eq!(FamilyDistance::EMPTY.nearest(), None);
        assert!(!FamilyDistance::EMPTY.within(f64::INFINITY));
    }
}
