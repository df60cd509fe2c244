//! Battle Navale inputs: price against the value area, the VWAP bands and the volume nodes,
//! order-flow pressure and the confluence count (product.md §5, last item of the features
//! bullet; product.md §6 for how the default rules weigh them).

use serde::Serialize;

use super::FeatureConfig;
use super::levels::{LevelDistances, ticks_from, usable_price};
use crate::ingest::record::ValueArea;
use crate::model::LevelFamily;
use crate::snapshot::MarketSnapshot;

/// A family of levels counted by the confluence feature.
///
/// The five MenthorQ families come first, then the chart levels, each as one family: the VWAP
/// line, the value area (VAH, VAL and VPOC together) and the 30-minute volume nodes (HVN and
/// LVN together).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfluenceFamily {
    /// MenthorQ resistance ([`LevelFamily::Resistance`]).
    Resistance,
    /// MenthorQ support ([`LevelFamily::Support`]).
    Support,
    /// MenthorQ GEX levels.
    Gex,
    /// MenthorQ blind spots.
    BlindSpot,
    /// MenthorQ swing levels.
    Swing,
    /// The session VWAP of the one-minute chart.
    Vwap,
    /// VAH, VAL or VPOC of the value area in use.
    ValueArea,
    /// HVN or LVN of the 30-minute volume profile.
    VolumeNode,
}

impl ConfluenceFamily {
    /// Returns the snake_case name the rules see.
    pub fn as_str(self) -> &'static str {
        match self {
            ConfluenceFamily::Resistance => "resistance",
            ConfluenceFamily::Support => "support",
            ConfluenceFamily::Gex => "gex",
            ConfluenceFamily::BlindSpot => "blind_spot",
            ConfluenceFamily::Swing => "swing",
            ConfluenceFamily::Vwap => "vwap",
            ConfluenceFamily::ValueArea => "value_area",
            ConfluenceFamily::VolumeNode => "volume_node",
        }
    }
}

/// The Battle Navale inputs (product.md §5).
///
/// Sign convention: price − level, so a positive distance means the price is above the level
/// (the opposite of [`LevelDistances`], which measures from the price to the level).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct BattleNavale {
    /// 1 when the price is above VAH, 0 inside the value area (edges included), −1 below VAL.
    pub va_position: Option<i8>,
    /// Price − VAH in ticks.
    pub dist_vah_ticks: Option<f64>,
    /// Price − VAL in ticks.
    pub dist_val_ticks: Option<f64>,
    /// Price − VPOC in ticks.
    pub dist_vpoc_ticks: Option<f64>,
    /// (price − VWAP) / σ, with σ from the ±1σ bands of the one-minute VWAP.
    pub vwap_sigma: Option<f64>,
    /// NBCV pressure of the current one-minute bar: 1 bullish, −1 bearish, 0 neutral.
    pub pressure: Option<i8>,
    /// NBCV delta ratio of the current one-minute bar, in [−1, 1].
    pub delta_ratio: Option<f64>,
    /// Price − 30-minute HVN in ticks.
    pub hvn_ticks: Option<f64>,
    /// Price − 30-minute LVN in ticks.
    pub lvn_ticks: Option<f64>,
    /// Number of distinct families with a level within `confluence_ticks` of the price.
    pub confluence: u32,
    /// Those families, in [`ConfluenceFamily`] order.
    pub confluence_families: Vec<ConfluenceFamily>,
}

/// Returns the value area the features use: the one-minute chart's current value area, else the
/// 30-minute chart's, each only when trusted (`val ≤ vpoc ≤ vah`, product.md §3) and finite.
pub fn value_area_in_use(snapshot: &MarketSnapshot) -> Option<ValueArea> {
    let usable = |area: &ValueArea| {
        area.trusted && usable_price(area.vah) && usable_price(area.val) && usable_price(area.vpoc)
    };
    snapshot
        .value_area
        .filter(usable)
        .or(snapshot.profile.value_area.filter(usable))
}

/// Computes the Battle Navale inputs at `price` (product.md §5).
///
/// `levels` are the MenthorQ distances already computed at the same price (by
/// [`super::level_distances`]); they feed the confluence count. Order-flow values do not depend
/// on the price and are filled even when `price` is `None`; everything else is then `None`
/// and the confluence is 0.
pub fn battle_navale(
    snapshot: &MarketSnapshot,
    price: Option<f64>,
    levels: &LevelDistances,
    cfg: &FeatureConfig,
) -> BattleNavale {
    let flow = snapshot.order_flow;
    let mut out = BattleNavale {
        pressure: flow.and_then(|f| f.pressure),
        delta_ratio: flow.map(|f| f.delta_ratio).filter(|r| r.is_finite()),
        ..BattleNavale::default()
    };
    let Some(price) = price.filter(|p| usable_price(*p)) else {
        return out;
    };
    let spec = &snapshot.spec;
    // Price − level: `ticks_from(from, to)` measures to − from, so the level goes first.
    let from_level = |level: f64| ticks_from(level, price, spec);

    let area = value_area_in_use(snapshot);
    if let Some(area) = area {
        out.va_position = Some(if price > area.vah {
            1
        } else if price < area.val {
            -1
        } else {
            0
        });
        out.dist_vah_ticks = from_level(area.vah);
        out.dist_val_ticks = from_level(area.val);
        out.dist_vpoc_ticks = from_level(area.vpoc);
    }

    let vwap = snapshot.vwap.filter(|v| usable_price(v.vwap));
    out.vwap_sigma = vwap.and_then(|v| {
        let sigma = v.sigma().filter(|s| s.is_finite() && *s > 0.0)?;
        let z = (price - v.vwap) / sigma;
        z.is_finite().then_some(z)
    });

    let hvn = snapshot.profile.hvn.filter(|p| usable_price(*p));
    let lvn = snapshot.profile.lvn.filter(|p| usable_price(*p));
    out.hvn_ticks = hvn.and_then(from_level);
    out.lvn_ticks = lvn.and_then(from_level);

    let near = |ticks: Option<f64>| ticks.is_some_and(|d| d.abs() <= cfg.confluence_ticks);
    let menthorq = [
        (ConfluenceFamily::Resistance, LevelFamily::Resistance),
        (ConfluenceFamily::Support, LevelFamily::Support),
        (ConfluenceFamily::Gex, LevelFamily::Gex),
        (ConfluenceFamily::BlindSpot, LevelFamily::BlindSpot),
        (ConfluenceFamily::Swing, LevelFamily::Swing),
    ];
    for (family, level_family) in menthorq {
        if levels.family(level_family).within(cfg.confluence_ticks) {
            out.confluence_families.push(family);
        }
    }
    if near(vwap.and_then(|v| from_level(v.vwap))) {
        out.confluence_families.push(ConfluenceFamily::Vwap);
    }
    if near(out.dist_vah_ticks) || near(out.dist_val_ticks) || near(out.dist_vpoc_ticks) {
        out.confluence_families.push(ConfluenceFamily::ValueArea);
    }
    if near(out.hvn_ticks) || near(out.lvn_ticks) {
        out.confluence_families.push(ConfluenceFamily::VolumeNode);
    }
    // At most eight families: the cast cannot truncate.
    out.confluence = out.confluence_families.len() as u32;
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::features::level_distances;
    use crate::ingest::record::OrderFlow;
    use crate::model::{ContractSpec, Level};
    use crate::snapshot::Vwap;

    fn area(vah: f64, val: f64, vpoc: f64) -> ValueArea {
        ValueArea {
            vah,
            val,
            vpoc,
            trusted: val <= vpoc && vpoc <= vah,
        }
    }

    fn snapshot() -> MarketSnapshot {
        let mut s = MarketSnapshot::new("ES", ContractSpec::builtin("ES").unwrap());
        s.value_area = Some(area(6503.25, 6484.5, 6492.0));
        // The worked VWAP of sierra-format.md §2.1.2: 6491.75 with ±1σ at 6496.50 / 6487.00,
        // so σ = (6496.50 − 6487.00) / 2 = 4.75.
        s.vwap = Some(Vwap {
            vwap: 6491.75,
            up: [Some(6496.5), Some(6501.25), Some(6506.0), Some(6510.75)],
            dn: [Some(6487.0), Some(6482.25), Some(6477.5), None],
        });
        s.order_flow = Some(OrderFlow {
            ask_volume: 60.0,
            bid_volume: 40.0,
            delta: 20.0,
            trades: None,
            cumulative_delta: None,
            total_volume: 100.0,
            delta_ratio: 0.2,
            pressure: Some(1),
        });
        s.profile.hvn = Some(6495.0);
        s.profile.lvn = Some(6510.0);
        s
    }

    fn compute(s: &MarketSnapshot, price: Option<f64>) -> BattleNavale {
        let cfg = FeatureConfig::default();
        let levels = price
            .map(|p| level_distances(&s.levels, p, &s.spec))
            .unwrap_or_default();
        battle_navale(s, price, &levels, &cfg)
    }

    #[test]
    fn position_against_the_value_area() {
        let s = snapshot();
        // Above VAH: 6505.00 − 6503.25 = 1.75 pt = 7 ticks; − VAL 6484.50 = 20.5 pt = 82 ticks;
        // − VPOC 6492.00 = 13 pt = 52 ticks.
        let bn = compute(&s, Some(6505.0));
        assert_eq!(bn.va_position, Some(1));
        assert_eq!(bn.dist_vah_ticks, Some(7.0));
        assert_eq!(bn.dist_val_ticks, Some(82.0));
        assert_eq!(bn.dist_vpoc_ticks, Some(52.0));
        // Inside, and VAH itself counts as inside.
        assert_eq!(compute(&s, Some(6492.0)).va_position, Some(0));
        assert_eq!(compute(&s, Some(6503.25)).va_position, Some(0));
        // Below VAL: 6480.00 − 6484.50 = −4.5 pt = −18 ticks.
        let bn = compute(&s, Some(6480.0));
        assert_eq!(bn.va_position, Some(-1));
        assert_eq!(bn.dist_val_ticks, Some(-18.0));
    }

    #[test]
    fn falls_back_to_the_profile_value_area_when_the_minute_one_is_untrusted() {
        let mut s = snapshot();
        s.value_area = Some(area(6503.25, 6494.5, 6492.0));
        assert!(!s.value_area.unwrap().trusted);
        s.profile.value_area = Some(area(6520.0, 6500.0, 6510.0));
        let bn = compute(&s, Some(6499.0));
        // 6499.00 < VAL 6500.00 of the 30-minute area: −1, −4 ticks.
        assert_eq!(bn.va_position, Some(-1));
        assert_eq!(bn.dist_val_ticks, Some(-4.0));
        s.profile.value_area = None;
        assert_eq!(compute(&s, Some(6499.0)).va_position, None);
    }

    #[test]
    fn vwap_sigma_and_order_flow() {
        let s = snapshot();
        // (6501.25 − 6491.75) / 4.75 = 9.5 / 4.75 = 2.0 (the +2σ band).
        let bn = compute(&s, Some(6501.25));
        assert_eq!(bn.vwap_sigma, Some(2.0));
        // (6487.00 − 6491.75) / 4.75 = −1.0.
        assert_eq!(compute(&s, Some(6487.0)).vwap_sigma, Some(-1.0));
        assert_eq!(bn.pressure, Some(1));
        assert_eq!(bn.delta_ratio, Some(0.2));
        // HVN 6495.00: 6501.25 − 6495.00 = 6.25 pt = 25 ticks; LVN 6510.00: −8.75 pt = −35.
        assert_eq!(bn.hvn_ticks, Some(25.0));
        assert_eq!(bn.lvn_ticks, Some(-35.0));
        // Without bands σ is unknown.
        let mut s = snapshot();
        s.vwap = Some(Vwap {
            vwap: 6491.75,
            up: [None; 4],
            dn: [None; 4],
        });
        assert_eq!(compute(&s, Some(6501.25)).vwap_sigma, None);
    }

    #[test]
    fn confluence_counts_distinct_families() {
        let mut s = snapshot();
        s.levels = BTreeMap::from([
            // Two resistance levels within 8 ticks of 6496.00 count once: +4 and −2 ticks.
            (Level::CallResistance, 6497.0),
            (Level::OneDayMax, 6495.5),
            // GEX 9 ticks away (6498.25): outside 8.
            (Level::Gex(1), 6498.25),
            // Blind spot exactly 8 ticks below (6494.00): inside (≤).
            (Level::BlindSpot(1), 6494.0),
        ]);
        let bn = compute(&s, Some(6496.0));
        // VWAP 6491.75: −17 ticks, out. VPOC 6492.00: +16 ticks, VAH/VAL farther, out.
        // HVN 6495.00: +4 ticks, in.
        assert_eq!(
            bn.confluence_families,
            vec![
                ConfluenceFamily::Resistance,
                ConfluenceFamily::BlindSpot,
                ConfluenceFamily::VolumeNode,
            ]
        );
        assert_eq!(bn.confluence, 3);
        // At 6492.00: VWAP +1 tick, VPOC 0, HVN −12 out; resistance −20/−14 out; blind spot
        // +8 in; GEX +25 out.
        let bn = compute(&s, Some(6492.0));
        assert_eq!(
            bn.confluence_families,
            vec![
                ConfluenceFamily::BlindSpot,
                ConfluenceFamily::Vwap,
                ConfluenceFamily::ValueArea,
            ]
        );
        assert_eq!(ConfluenceFamily::VolumeNode.as_str(), "volume_node");
    }

    #[test]
    fn missing_price_keeps_order_flow_only() {
        let s = snapshot();
        let bn = compute(&s, None);
        assert_eq!(bn.pressure, Some(1));
        assert_eq!(bn.delta_ratio, Some(0.2));
        assert_eq!(
            bn,
            BattleNavale {
                pressure: Some(1),
                delta_ratio: Some(0.2),
                ..BattleNavale::default()
            }
        );
        assert_eq!(compute(&s, Some(f64::NAN)).va_position, None);
        let empty = MarketSnapshot::new("ES", ContractSpec::builtin("ES").unwrap());
        assert_eq!(compute(&empty, Some(6500.0)), BattleNavale::default());
    }
}
