//! Stops at gamma levels and targets at the reward ratio (product.md §8), in whole ticks.

use std::collections::BTreeMap;

use crate::config::StopConfig;
use crate::model::{ContractSpec, Level, LevelFamily};
use crate::rules::Direction;

use super::Refusal;

/// Where the stop and target of a trade go, in ticks from the entry (always positive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bracket {
    /// Entry on the tick grid, in ticks from zero.
    pub entry_ticks: i64,
    /// Stop distance, in ticks.
    pub stop_ticks: u32,
    /// Target distance, in ticks.
    pub target_ticks: u32,
    /// The level the stop sits behind, `None` when none was in range.
    pub stop_level: Option<Level>,
}

/// Returns a price in whole ticks, or `None` when it is not a usable price.
pub(crate) fn to_ticks(price: f64, spec: &ContractSpec) -> Option<i64> {
    if !(price.is_finite() && price > 0.0) {
        return None;
    }
    let ticks = (price / spec.tick_size).round();
    // i64 holds any real futures price in ticks many times over; this only rejects garbage.
    (ticks.abs() < 1e15).then_some(ticks as i64)
}

/// Returns a tick count as a price.
pub(crate) fn from_ticks(ticks: i64, spec: &ContractSpec) -> f64 {
    ticks as f64 * spec.tick_size
}

/// The family that protects a trade's stop, and the one that opposes its target.
fn families(direction: Direction) -> Option<(LevelFamily, LevelFamily)> {
    match direction {
        Direction::Long => Some((LevelFamily::Support, LevelFamily::Resistance)),
        Direction::Short => Some((LevelFamily::Resistance, LevelFamily::Support)),
        Direction::Flat => None,
    }
}

/// Returns the nearest level of `family` at or behind the entry (`behind = true`: below for a
/// long, above for a short) or at or ahead of it, with its distance in ticks (zero or positive).
/// On equal distances the first level in `Level` order wins, so the result is deterministic.
fn nearest(
    levels: &BTreeMap<Level, f64>,
    spec: &ContractSpec,
    entry_ticks: i64,
    family: LevelFamily,
    toward: i64,
) -> Option<(Level, i64)> {
    levels
        .iter()
        .filter(|(level, _)| level.family() == family)
        .filter_map(|(level, price)| {
            Some((*level, (to_ticks(*price, spec)? - entry_ticks) * toward))
        })
        .filter(|(_, distance)| *distance >= 0)
        .min_by_key(|(_, distance)| *distance)
}

/// Places the stop and target of a trade entered at `entry_ticks`.
///
/// The stop goes `beyond_level_ticks` beyond the nearest protecting level at or behind the entry
/// (support family for a long, resistance family for a short). That level is *in range* when the
/// resulting stop is at most `max_ticks` wide; a stop narrower than `min_ticks` is widened to
/// `min_ticks`. A level out of range is ignored rather than clamped, because a stop cut to
/// `max_ticks` would sit in front of the level and protect nothing; with no level in range the
/// stop is `min_ticks`.
///
/// The target is `reward_ratio × stop` rounded up to a whole tick, so the reward is never below
/// the ratio. The nearest opposing level at or ahead of the entry (resistance for a long, support
/// for a short) must not be closer than the target.
///
/// # Errors
///
/// [`Refusal::RewardBelowMinimum`] when an opposing level is closer than the target, and
/// [`Refusal::Flat`] for a flat direction.
pub fn place(
    direction: Direction,
    entry_ticks: i64,
    levels: &BTreeMap<Level, f64>,
    spec: &ContractSpec,
    cfg: &StopConfig,
) -> Result<Bracket, Refusal> {
    let (protecting, opposing) = families(direction).ok_or(Refusal::Flat)?;
    // +1 looks upward, −1 downward: behind a long is below, ahead of it above.
    let ahead: i64 = if direction == Direction::Long { 1 } else { -1 };
    let min = i64::from(cfg.min_ticks);
    let max = i64::from(cfg.max_ticks);
    let (stop_ticks, stop_level) = match nearest(levels, spec, entry_ticks, protecting, -ahead) {
        Some((level, distance)) if distance + i64::from(cfg.beyond_level_ticks) <= max => (
            (distance + i64::from(cfg.beyond_level_ticks)).max(min),
            Some(level),
        ),
        _ => (min, None),
    };
    let target = (cfg.reward_ratio * stop_ticks as f64 - super::sizing::FLOOR_SLACK).ceil();
    let target_ticks = target.max(1.0) as i64;
    if let Some((level, distance)) = nearest(levels, spec, entry_ticks, opposing, ahead)
        && distance < target_ticks
    {
        return Err(Refusal::RewardBelowMinimum {
            level,
            level_ticks: distance,
            target_ticks: target_ticks as u32,
            stop_ticks: stop_ticks as u32,
        });
    }
    Ok(Bracket {
        entry_ticks,
        stop_ticks: stop_ticks as u32,
        target_ticks: target_ticks as u32,
        stop_level,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ES: ContractSpec = ContractSpec {
        tick_size: 0.25,
        tick_value: 12.5,
    };
    const CFG: StopConfig = StopConfig {
        beyond_level_ticks: 2,
        min_ticks: 7,
        max_ticks: 20,
        reward_ratio: 2.5,
    };

    fn check(
        direction: Direction,
        entry: f64,
        levels: &[(Level, f64)],
    ) -> Result<(u32, u32, Option<Level>), Refusal> {
        let levels: BTreeMap<Level, f64> = levels.iter().copied().collect();
        let entry_ticks = to_ticks(entry, &ES).unwrap();
        place(direction, entry_ticks, &levels, &ES, &CFG)
            .map(|b| (b.stop_ticks, b.target_ticks, b.stop_level))
    }

    #[test]
    fn long_stop_goes_two_ticks_below_the_nearest_support() {
        // Put support 8 ticks below, HVL 12 below: 8 + 2 = 10; target ceil(25) = 25.
        let got = check(
            Direction::Long,
            6500.0,
            &[(Level::PutSupport, 6498.0), (Level::Hvl, 6497.0)],
        );
        assert_eq!(got, Ok((10, 25, Some(Level::PutSupport))));
    }

    #[test]
    fn short_stop_goes_two_ticks_above_the_nearest_resistance() {
        // Gamma wall 0DTE 15 ticks above: 17; target ceil(42.5) = 43.
        let got = check(Direction::Short, 6500.0, &[(Level::GammaWall0dte, 6503.75)]);
        assert_eq!(got, Ok((17, 43, Some(Level::GammaWall0dte))));
    }

    #[test]
    fn stops_stay_within_7_to_20_ticks() {
        // A support 1 tick below: 3 ticks widened to 7, target ceil(17.5) = 18.
        let near = check(Direction::Long, 6500.0, &[(Level::PutSupport, 6499.75)]);
        assert_eq!(near, Ok((7, 18, Some(Level::PutSupport))));
        // 18 ticks below: exactly 20, in range.
        let edge = check(Direction::Long, 6500.0, &[(Level::OneDayMin, 6495.5)]);
        assert_eq!(edge, Ok((20, 50, Some(Level::OneDayMin))));
        // 19 ticks below would need 21: out of range, so the 7-tick default.
        let far = check(Direction::Long, 6500.0, &[(Level::OneDayMin, 6495.25)]);
        assert_eq!(far, Ok((7, 18, None)));
        // Levels of other families and on the wrong side do not protect.
        let none = check(
            Direction::Long,
            6500.0,
            &[(Level::Gex(1), 6499.0), (Level::PutSupport, 6501.0)],
        );
        assert_eq!(none, Ok((7, 18, None)));
    }

    #[test]
    fn an_opposing_level_closer_than_the_target_refuses() {
        // Stop 7, target 18; call resistance 17 ticks above is closer.
        let got = check(Direction::Long, 6500.0, &[(Level::CallResistance, 6504.25)]);
        assert_eq!(
            got,
            Err(Refusal::RewardBelowMinimum {
                level: Level::CallResistance,
                level_ticks: 17,
                target_ticks: 18,
                stop_ticks: 7,
            })
        );
        // Exactly at the target is fine.
        let at = check(Direction::Long, 6500.0, &[(Level::CallResistance, 6504.5)]);
        assert_eq!(at, Ok((7, 18, None)));
    }

    #[test]
    fn unusable_level_prices_are_ignored() {
        let got = check(
            Direction::Long,
            6500.0,
            &[(Level::PutSupport, f64::NAN), (Level::Hvl, 0.0)],
        );
        assert_eq!(got, Ok((7, 18, None)));
        assert_eq!(to_ticks(f64::NAN, &ES), None);
        assert_eq!(to_ticks(0.0, &ES), None);
        assert_eq!(to_ticks(-1.0, &ES), None);
    }
}
