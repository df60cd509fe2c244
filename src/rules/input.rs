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
    debug_assert!(
        values
            .iter()
            .map(|(n, _)| *n)
            .eq(super::schema::PROPERTIES.iter().map(|p| p.name)),
        "market_input must fill every property of the schema, in order"
    );
    RuleInput::from_values(values)
        .unwrap_or_else(|unknown| panic!("input names out of sync with the schema: {unknown:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::features::{FeatureConfig, FeatureEngine};

    #[test]
    fn properties_come_from_the_snapshot_and_features() {
        use crate::ingest::record::{LineContext, parse_line};
        use crate::snapshot::SnapshotStore;
        let config = Config::reference();
        let mut store = SnapshotStore::new(&config);
        for (chart, kind, line) in [
            (
                3,
                "basedata",
                r#"{"t":45919.416667,"sym":"ESZ25_FUT_CME","type":"basedata","i":1,"o":6498.25,"h":6499.5,"l":6497.75,"c":6499.0,"v":1467,"bidvol":655,"askvol":812}"#,
            ),
            (
                10,
                "menthorq",
                r#"{"t":45919.416667,"sym":"ESZ25_FUT_CME","type":"menthorq_level","level_type":"put_support","price":6497.0,"subgraph":1,"study_id":1,"i":1}"#,
            ),
            (
                10,
                "menthorq",
                r#"{"t":45919.416667,"sym":"ESZ25_FUT_CME","type":"menthorq_level","level_type":"gamma_wall_0dte","price":6501.5,"subgraph":8,"study_id":1,"i":1}"#,
            ),
            (
                8,
                "vix",
                r#"{"t":45919.416667,"type":"vix","i":1,"last":23.5}"#,
            ),
        ] {
            let ctx = LineContext {
                chart,
                kind: Some(kind),
                file_date: None,
                tz: config.ingest.chart_time_zone,
            };
            let record = parse_line(line, &ctx).unwrap();
            store.apply(chart, &record, record.ts);
        }
        let es = store.get("ES").unwrap();
        let features = FeatureEngine::new(FeatureConfig::default()).compute(es);
        let now = Timestamp::from_secs(1_758_290_420); // 2025-09-19 14:00:20 UTC, 10:00 New York
        let input = market_input(es, &features, now, &config.session, &config.staleness, true);
        let float = |name: &str| {
            input
                .get(name)
                .unwrap()
                .as_float()
                .unwrap_or_else(|_| panic!("{name}"))
        };
        assert_eq!(float("price"), 6499.0);
        assert_eq!(float("support_below"), -8.0, "put support 2 points below");
        assert_eq!(float("put_support_ticks"), -8.0);
        assert_eq!(
            float("gamma_wall_ticks"),
            10.0,
            "gamma wall 2.5 points above"
        );
        assert_eq!(float("resistance_above"), 10.0);
        assert_eq!(float("bar_high"), 6499.5);
        assert_eq!(float("tick_value"), 12.5);
        assert_eq!(
            input
                .get("vix_policy")
                .unwrap()
                .clone()
                .into_string()
                .unwrap(),
            "high"
        );
        assert_eq!(
            input
                .get("nearest_level")
                .unwrap()
                .clone()
                .into_string()
                .unwrap(),
            "put_support"
        );
        assert_eq!(input.get("minute_of_day").unwrap().as_int().unwrap(), 600);
        assert_eq!(input.get("level_count").unwrap().as_int().unwrap(), 2);
        assert!(
            !input.get("stale_minute").unwrap().as_bool().unwrap(),
            "20 s old"
        );
        assert!(
            input.get("stale_profile").unwrap().as_bool().unwrap(),
            "never seen"
        );
        assert!(input.get("vah").unwrap().is_unit(), "no value area yet");
    }
}
