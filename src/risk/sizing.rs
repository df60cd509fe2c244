//! Position sizing (product.md §8): tier × Kelly × VIX, floored, then capped.

use crate::config::RiskConfig;
use crate::features::VixPolicy;

/// Slack when flooring a product of decimal factors.
///
/// `4 × 0.5 × 1.5 × 0.6` is 1.8 in decimal but binary floats can land a hair below a whole
/// number (`3 × 0.1 × 10` is 3.0000000000000004, `0.7 × 3 / 0.7` is 2.9999999999999996). A size
/// that is a whole number on paper must floor to that number.
pub(crate) const FLOOR_SLACK: f64 = 1e-9;

/// Returns `floor(x)` with [`FLOOR_SLACK`], as a contract count (0 for anything below one,
/// NaN included).
pub(crate) fn floor_contracts(x: f64) -> u32 {
    let floored = (x + FLOOR_SLACK).floor();
    if floored >= 1.0 {
        // Saturates far above any position limit, which caps the size anyway.
        floored.min(f64::from(u32::MAX)) as u32
    } else {
        0
    }
}

/// Returns the VIX multiplier of product.md §8: low 1.0, normal 1.0, high 0.6, extreme 0.
pub fn vix_multiplier(policy: VixPolicy) -> f64 {
    match policy {
        VixPolicy::Low | VixPolicy::Normal => 1.0,
        VixPolicy::High => 0.6,
        VixPolicy::Extreme => 0.0,
    }
}

/// Returns the Kelly fraction `f* = p − (1 − p) / b` of closed-trade results in dollars.
///
/// A trade with a positive result is a win; anything else (a scratch trade included, which costs
/// commission in practice) is a loss. Without losses, or when every loss is zero, `b` is
/// unbounded and `f* = p`. Without wins (`b = 0`, `f*` unbounded below) and for empty input
/// the result is `None`, so that no infinity leaks into a journal; [`kelly_multiplier`] then
/// takes the floor. Results that are not numbers are ignored.
pub fn kelly_fraction(results: &[f64]) -> Option<f64> {
    let usable: Vec<f64> = results.iter().copied().filter(|r| r.is_finite()).collect();
    if usable.is_empty() {
        return None;
    }
    let wins: Vec<f64> = usable.iter().copied().filter(|r| *r > 0.0).collect();
    if wins.is_empty() {
        return None;
    }
    let losses: Vec<f64> = usable.iter().copied().filter(|r| *r <= 0.0).collect();
    let p = wins.len() as f64 / usable.len() as f64;
    let avg_win = wins.iter().sum::<f64>() / wins.len() as f64;
    let avg_loss = -losses.iter().sum::<f64>() / losses.len().max(1) as f64;
    if avg_loss <= 0.0 {
        return Some(p);
    }
    let b = avg_win / avg_loss;
    Some(p - (1.0 - p) / b)
}

/// Returns the Kelly multiplier of product.md §8 from the closed-trade results, oldest first.
///
/// Only the last `kelly_lookback` results count. Below `kelly_min_trades` of them the multiplier
/// is 1; afterwards it is `clamp(f* × kelly_scale, kelly_floor, 1)`, and a history without a
/// single win gets the floor.
pub fn kelly_multiplier(results: &[f64], config: &RiskConfig) -> f64 {
    let lookback = config.kelly_lookback as usize;
    let recent = &results[results.len().saturating_sub(lookback)..];
    if recent.len() < config.kelly_min_trades as usize {
        return 1.0;
    }
    match kelly_fraction(recent) {
        Some(f) => (f * config.kelly_scale).clamp(config.kelly_floor, 1.0),
        None => config.kelly_floor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn risk() -> RiskConfig {
        Config::reference()
            .risk
            .expect("the reference config has [risk]")
    }

    /// `wins` results of `win` then `losses` results of `-loss`.
    fn history(wins: usize, win: f64, losses: usize, loss: f64) -> Vec<f64> {
        let mut out = vec![win; wins];
        out.extend(std::iter::repeat_n(-loss, losses));
        out
    }

    #[test]
    fn vix_multipliers_follow_product_section_8() {
        assert_eq!(vix_multiplier(VixPolicy::Low), 1.0);
        assert_eq!(vix_multiplier(VixPolicy::Normal), 1.0);
        assert_eq!(vix_multiplier(VixPolicy::High), 0.6);
        assert_eq!(vix_multiplier(VixPolicy::Extreme), 0.0);
    }

    #[test]
    fn kelly_is_one_until_min_trades() {
        let cfg = risk();
        // 19 losing trades: still below kelly_min_trades = 20.
        assert_eq!(kelly_multiplier(&history(0, 0.0, 19, 100.0), &cfg), 1.0);
        assert_eq!(kelly_multiplier(&[], &cfg), 1.0);
    }

    #[test]
    fn kelly_worked_examples() {
        let cfg = risk();
        // p = 0.5, b = 120 / 100 = 1.2: f* = 0.5 − 0.5 / 1.2 = 0.08333; × 4 = 0.3333.
        let m = kelly_multiplier(&history(10, 120.0, 10, 100.0), &cfg);
        assert!((m - 1.0 / 3.0).abs() < 1e-12, "{m}");
        // p = 0.6, b = 2.5: f* = 0.6 − 0.4 / 2.5 = 0.44; × 4 = 1.76, clamped to 1.
        assert_eq!(kelly_multiplier(&history(12, 250.0, 8, 100.0), &cfg), 1.0);
        // p = 0.4, b = 1: f* = 0.4 − 0.6 = −0.2; × 4 = −0.8, floored at 0.25.
        assert_eq!(kelly_multiplier(&history(8, 100.0, 12, 100.0), &cfg), 0.25);
        // No win at all: the floor.
        assert_eq!(kelly_multiplier(&history(0, 0.0, 20, 50.0), &cfg), 0.25);
        // No loss at all: f* = p = 1.
        assert_eq!(kelly_multiplier(&history(20, 50.0, 0, 0.0), &cfg), 1.0);
    }

    #[test]
    fn kelly_looks_back_over_the_last_trades_only() {
        let cfg = risk();
        // 30 old losses, then 50 trades at p = 0.5, b = 1.2: only the last 50 count.
        let mut results = history(0, 0.0, 30, 100.0);
        results.extend(history(25, 120.0, 25, 100.0));
        let m = kelly_multiplier(&results, &cfg);
        assert!((m - 1.0 / 3.0).abs() < 1e-12, "{m}");
    }

    #[test]
    fn kelly_ignores_results_that_are_not_numbers() {
        assert_eq!(kelly_fraction(&[f64::NAN, f64::INFINITY]), None);
        assert_eq!(kelly_fraction(&[f64::NAN, 10.0]), Some(1.0));
    }

    #[test]
    fn flooring_forgives_binary_noise_only() {
        assert_eq!(floor_contracts(2.9999999999999996), 3);
        assert_eq!(floor_contracts(2.999), 2);
        assert_eq!(floor_contracts(0.9), 0);
        assert_eq!(floor_contracts(f64::NAN), 0);
        assert_eq!(floor_contracts(-3.0), 0);
    }
}
