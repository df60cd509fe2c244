//! Builds `s`, the [`RuleInput`] of one evaluation, from a snapshot and its features.
//!
//! Every property of [`super::schema::PROPERTIES`] is filled here and nowhere else; a test checks
//! that none is left out. Distances follow the schema's convention: signed ticks from the price
//! to the level, positive when the level is above.

use chrono::Timelike;
use rhai::Dynamic;

use super::RuleInput;
use crate::config::{SessionConfig, StalenessConfig};
use crate::features::Features;
use crate::model::{Level, Timestamp, utc_to_local};
use crate::snapshot::{MarketSnapshot, Source};

fn float(x: Option<f64>) -> Dynamic {
    match x {
        Some(x) if x.is_finite() => Dynamic::from_float(x),
        _ => Dynamic::UNIT,
    }
}

fn int(x: Option<i64>) -> Dynamic {
    x.map_or(Dynamic::UNIT, Dynamic::from_int)
}

fn string(x: Option<&str>) -> Dynamic {
    x.map_or(Dynamic::UNIT, |s| Dynamic::from(s.to_owned()))
}

/// Builds the input of an evaluation at `now`.
pub fn market_input(
    snapshot: &MarketSnapshot,
    features: &Features,
    now: Timestamp,
    session: &SessionConfig,
    staleness: &StalenessConfig,
    in_session: bool,
) -> RuleInput {
    let spec = snapshot.spec;
    let price = features.price;
    // Signed ticks from the price to a level (positive above).
    let to = |level: Option<f64>| -> Option<f64> { Some(spec.ticks(level? - price?)) };
    let level = |l: Level| to(snapshot.levels.get(&l).copied());
    let bn = &features.battle_navale;
    let flip = |x: Option<f64>| x.map(|v| -v);
    let bar = snapshot.bar.map(|b| b.bar);
    let flow = snapshot.order_flow;
    let ages = snapshot.ages(now, staleness, in_session);
    let stale = |source: Source| ages.iter().any(|a| a.source == source && a.stale);
    let minute_of_day = utc_to_local(now, session.time_zone)
        .map(|t| i64::from(t.hour() * 60 + t.minute()))
        .unwrap_or(0);
    let lv = &features.levels;
    let values = [
        ("instrument", Dynamic::from(snapshot.instrument.clone())),
        ("symbol", string(snapshot.symbol.as_deref())),
        ("tick_size", Dynamic::from_float(spec.tick_size)),
        ("tick_value", Dynamic::from_float(spec.tick_value)),
        ("time", Dynamic::from(now.to_iso_millis())),
        ("minute_of_day", Dynamic::from_int(minute_of_day)),
        ("in_session", Dynamic::from_bool(in_session)),
        ("price", float(price)),
        ("bid", float(snapshot.bid)),
        ("ask", float(snapshot.ask)),
        ("bar_open", float(bar.map(|b| b.open))),
        ("bar_high", float(bar.map(|b| b.high))),
        ("bar_low", float(bar.map(|b| b.low))),
        ("bar_close", float(bar.map(|b| b.close))),
        ("bar_volume", float(bar.map(|b| b.volume))),
        ("vwap", float(snapshot.vwap.map(|v| v.vwap))),
        ("vwap_sigma", float(snapshot.vwap.and_then(|v| v.sigma()))),
        ("vwap_z", float(bn.vwap_sigma)),
        ("vah", float(snapshot.value_area.map(|a| a.vah))),
        ("val", float(snapshot.value_area.map(|a| a.val))),
        ("vpoc", float(snapshot.value_area.map(|a| a.vpoc))),
        ("prev_vah", float(snapshot.prev_value_area.map(|a| a.vah))),
        ("prev_val", float(snapshot.prev_value_area.map(|a| a.val))),
        ("prev_vpoc", float(snapshot.prev_value_area.map(|a| a.vpoc))),
        ("va_position", int(bn.va_position.map(i64::from))),
        ("vah_ticks", float(flip(bn.dist_vah_ticks))),
        ("val_ticks", float(flip(bn.dist_val_ticks))),
        ("vpoc_ticks", float(flip(bn.dist_vpoc_ticks))),
        ("delta", float(flow.map(|f| f.delta))),
        ("delta_ratio", float(bn.delta_ratio)),
        ("pressure", int(bn.pressure.map(i64::from))),
        (
            "cumulative_delta",
            float(
                snapshot
                    .cumulative_delta
                    .or(flow.and_then(|f| f.cumulative_delta)),
            ),
        ),
        ("total_volume", float(flow.map(|f| f.total_volume))),
        ("atr", float(snapshot.atr)),
        ("atr_ticks", float(snapshot.atr.map(|a| spec.ticks(a)))),
        ("vix", float(features.vix)),
        (
            "vix_policy",
            string(features.vix_policy.map(|p| p.as_str())),
        ),
        (
            "profile_vpoc",
            float(snapshot.profile.volume_profile.map(|a| a.vpoc)),
        ),
        (
            "profile_vah",
            float(snapshot.profile.volume_profile.map(|a| a.vah)),
        ),
        (
            "profile_val",
            float(snapshot.profile.volume_profile.map(|a| a.val)),
        ),
        ("hvn_ticks", float(flip(bn.hvn_ticks))),
        ("lvn_ticks", float(flip(bn.lvn_ticks))),
        ("correlation", float(snapshot.correlation)),
        ("resistance_above", float(lv.resistance.above)),
        ("resistance_below", float(lv.resistance.below)),
        ("support_above", float(lv.support.above)),
        ("support_below", float(lv.support.below)),
        ("gex_above", float(lv.gex.above)),
        ("gex_below", float(lv.gex.below)),
        ("blind_spot_above", float(lv.blind_spot.above)),
        ("blind_spot_below", float(lv.blind_spot.below)),
        (
            "blind_spot_ticks",
            float(lv.blind_spot.nearest().map(f64::abs)),
        ),
        ("swing_above", float(lv.swing.above)),
        ("swing_below", float(lv.swing.below)),
        ("gamma_wall_ticks", float(level(Level::GammaWall0dte))),
        ("call_resistance_ticks", float(level(Level::CallResistance))),
        ("put_support_ticks", float(level(Level::PutSupport))),
        ("hvl_ticks", float(level(Level::Hvl))),
        (
            "nearest_level",
            string(lv.nearest.map(|(l, _)| l.name()).as_deref()),
        ),
        ("nearest_level_ticks", float(lv.nearest.map(|(_, d)| d))),
        (
            "level_count",
            Dynamic::from_int(snapshot.levels.len() as i64),
        ),
        ("confluence", Dynamic::from_int(i64::from(bn.confluence))),
        ("dealer_bias", float(features.dealer_bias)),
        ("dealer_bias_raw", float(features.dealer_bias_raw)),
        ("stale_minute", Dynamic::from_bool(stale(Source::Minute))),
        ("stale_profile", Dynamic::from_bool(stale(Source::Profile))),
        ("stale_vix", Dynamic::from_bool(stale(Source::Vix))),
        (
            "stale_menthorq",
            Dynamic::from_bool(stale(Source::MenthorQ)),
        ),
    ];
    debug_assert_eq!(values.len(), super::schema::PROPERTIES.len());
    RuleInput::from_values(values)
        .unwrap_or_else(|unknown| panic!("input names out of sync with the schema: {unknown:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::features::{FeatureConfig, FeatureEngine};
    use crate::rules::schema::PROPERTIES;

    #[test]
    fn every_property_is_filled_from_the_market() {
        let config = Config::reference();
        let snapshot = MarketSnapshot::new("ES", config.instruments["ES"].spec);
        let features = FeatureEngine::new(FeatureConfig::default()).compute(&snapshot);
        let now = Timestamp::from_secs(1_758_290_400); // 2025-09-19 14:00 UTC, 10:00 New York
        let input = market_input(
            &snapshot,
            &features,
            now,
            &config.session,
            &config.staleness,
            true,
        );
        for p in PROPERTIES {
            assert!(input.get(p.name).is_some(), "{}", p.name);
        }
        assert_eq!(input.get("minute_of_day").unwrap().as_int().unwrap(), 600);
        assert_eq!(
            input
                .get("instrument")
                .unwrap()
                .clone()
                .into_string()
                .unwrap(),
            "ES"
        );
        assert!(input.get("price").unwrap().is_unit(), "no price yet");
        assert!(
            input.get("stale_minute").unwrap().as_bool().unwrap(),
            "never updated is stale"
        );
    }
}
