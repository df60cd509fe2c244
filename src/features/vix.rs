//! VIX policy with hysteresis (product.md §5; strategy-facts.md §4 and §9 #7).

use serde::Serialize;

/// Slack on the hysteresis threshold, in VIX points.
///
/// VIX values are decimal prints stored as binary `f64`: 15.1 − 13.1 is 2.0 but 16.9 − 14.9 is
/// 1.9999999999999982. A move of "exactly 2.0" must count whichever way the subtraction rounds.
const MOVE_SLACK: f64 = 1e-9;

/// VIX policy: `low` (< 15), `normal` (< 22), `high` (< 35), `extreme` (≥ 35) (product.md §5).
///
/// product.md §5 decides these cut-offs; the 20/30 "runtime policy" of strategy-facts.md §9 #7
/// is not used. The thresholds equal those of [`crate::snapshot::VixRegime`], which has no
/// hysteresis.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum VixPolicy {
    /// VIX below 15.
    Low,
    /// VIX from 15 to below 22.
    Normal,
    /// VIX from 22 to below 35.
    High,
    /// VIX 35 or more.
    Extreme,
}

impl VixPolicy {
    /// Returns the policy of a VIX value by plain thresholds, or `None` when the value is not
    /// finite and positive (zero means missing, product.md §3).
    pub fn of(vix: f64) -> Option<VixPolicy> {
        if !vix.is_finite() || vix <= 0.0 {
            return None;
        }
        Some(if vix < 15.0 {
            VixPolicy::Low
        } else if vix < 22.0 {
            VixPolicy::Normal
        } else if vix < 35.0 {
            VixPolicy::High
        } else {
            VixPolicy::Extreme
        })
    }

    /// Returns the name the rules see: `"low"`, `"normal"`, `"high"` or `"extreme"`.
    pub fn as_str(self) -> &'static str {
        match self {
            VixPolicy::Low => "low",
            VixPolicy::Normal => "normal",
            VixPolicy::High => "high",
            VixPolicy::Extreme => "extreme",
        }
    }
}

/// The VIX policy with hysteresis (product.md §5).
///
/// The exact rule:
/// 1. A VIX value that is not finite and positive is ignored: it changes nothing.
/// 2. The first usable value sets the policy to `VixPolicy::of(vix)` and becomes the anchor.
/// 3. Afterwards a value `vix` changes the policy if and only if `|vix − anchor| ≥ threshold`
///    (with a 1e-9 point slack for float rounding) **and** `VixPolicy::of(vix)` differs from
///    the current policy. The policy then becomes `VixPolicy::of(vix)` and `vix` the new anchor.
/// 4. Otherwise nothing changes, the anchor included: a slow drift accumulates from the VIX of
///    the last change until it reaches the threshold.
///
/// So a VIX that crosses a cut-off by less than the threshold leaves the policy as it was, and
/// a VIX that moves by the threshold inside the same band keeps the anchor where it was.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VixPolicyTracker {
    threshold: f64,
    current: Option<(VixPolicy, f64)>,
}

impl VixPolicyTracker {
    /// Creates a tracker with no policy yet; `threshold` is the move in VIX points needed for a
    /// change (`vix_update_threshold`, 2.0 by default).
    pub fn new(threshold: f64) -> Self {
        Self {
            threshold,
            current: None,
        }
    }

    /// Feeds one VIX value and returns the policy after it (`None` until a usable value).
    pub fn update(&mut self, vix: f64) -> Option<VixPolicy> {
        let Some(policy) = VixPolicy::of(vix) else {
            return self.policy();
        };
        match self.current {
            None => self.current = Some((policy, vix)),
            Some((current, anchor)) => {
                let moved = (vix - anchor).abs() >= self.threshold - MOVE_SLACK;
                if moved && policy != current {
                    self.current = Some((policy, vix));
                }
            }
        }
        self.policy()
    }

    /// Returns the current policy, `None` before the first usable VIX.
    pub fn policy(&self) -> Option<VixPolicy> {
        self.current.map(|(policy, _)| policy)
    }

    /// Returns the VIX value at the last policy change (the hysteresis anchor).
    pub fn anchor(&self) -> Option<f64> {
        self.current.map(|(_, anchor)| anchor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_thresholds() {
        assert_eq!(VixPolicy::of(14.99), Some(VixPolicy::Low));
        assert_eq!(VixPolicy::of(15.0), Some(VixPolicy::Normal));
        assert_eq!(VixPolicy::of(22.0), Some(VixPolicy::High));
        assert_eq!(VixPolicy::of(35.0), Some(VixPolicy::Extreme));
        assert_eq!(VixPolicy::of(f64::NAN), None);
        assert_eq!(VixPolicy::of(f64::INFINITY), None);
        assert_eq!(VixPolicy::of(0.0), None);
        assert_eq!(VixPolicy::Low.as_str(), "low");
        assert_eq!(VixPolicy::Normal.as_str(), "normal");
        assert_eq!(VixPolicy::High.as_str(), "high");
        assert_eq!(VixPolicy::Extreme.as_str(), "extreme");
    }

    #[test]
    fn hysteresis_sequence() {
        let mut t = VixPolicyTracker::new(2.0);
        // NaN before anything: still no policy.
        assert_eq!(t.update(f64::NAN), None);
        // The first usable value sets the policy: 14.9 → low, anchor 14.9.
        assert_eq!(t.update(14.9), Some(VixPolicy::Low));
        assert_eq!(t.anchor(), Some(14.9));
        // 15.4 is "normal" by threshold but moved only 0.5 from 14.9 → stays low.
        assert_eq!(t.update(15.4), Some(VixPolicy::Low));
        // Drift: 16.0 has moved 1.1 → still low.
        assert_eq!(t.update(16.0), Some(VixPolicy::Low));
        // NaN is ignored and keeps the policy.
        assert_eq!(t.update(f64::NAN), Some(VixPolicy::Low));
        assert_eq!(t.anchor(), Some(14.9));
        // 16.9 − 14.9 = 2.0 (accumulated drift, exactly the threshold; 1.9999999999999982 in
        // f64, which the slack accepts) → normal, anchor 16.9.
        assert_eq!(t.update(16.9), Some(VixPolicy::Normal));
        assert_eq!(t.anchor(), Some(16.9));
        // Back to 14.95 (low by threshold): moved 1.95 < 2.0 → stays normal.
        assert_eq!(t.update(14.95), Some(VixPolicy::Normal));
        // 14.9 is 2.0 below the anchor 16.9 → low.
        assert_eq!(t.update(14.9), Some(VixPolicy::Low));
    }

    #[test]
    fn exact_threshold_moves() {
        // 20.0 → 22.0 is exactly 2.0 and crosses into high.
        let mut t = VixPolicyTracker::new(2.0);
        t.update(20.0);
        assert_eq!(t.update(22.0), Some(VixPolicy::High));
        // 14.9 → 16.9 is 1.9999999999999982 in f64 and still counts as 2.0.
        let mut t = VixPolicyTracker::new(2.0);
        t.update(14.9);
        assert_eq!(t.update(16.9), Some(VixPolicy::Normal));
        // 1.99 is not enough.
        let mut t = VixPolicyTracker::new(2.0);
        t.update(13.5);
        assert_eq!(t.update(15.49), Some(VixPolicy::Low));
    }

    #[test]
    fn a_big_move_inside_a_band_keeps_the_anchor() {
        let mut t = VixPolicyTracker::new(2.0);
        // Anchor 23.0 (high). 30.0 moved 7 but is still high: no change, anchor stays 23.0.
        t.update(23.0);
        assert_eq!(t.update(30.0), Some(VixPolicy::High));
        assert_eq!(t.anchor(), Some(23.0));
        // 21.5 is normal and 1.5 from the anchor 23.0 → stays high.
        assert_eq!(t.update(21.5), Some(VixPolicy::High));
        // 21.0 is 2.0 from 23.0 → normal.
        assert_eq!(t.update(21.0), Some(VixPolicy::Normal));
        // A jump across two bands at once goes straight to the policy of the value.
        assert_eq!(t.update(40.0), Some(VixPolicy::Extreme));
    }
}
