//! The typed market snapshot, one per instrument (product.md §5). No I/O: records and the
//! current time come in, state comes out.
//!
//! Records are applied last-wins per (record type, chart) on the bar start time: an intrabar
//! snapshot of the same bar replaces the previous one, and an older bar re-emitted by a chart
//! recalculation is ignored. Bar indices are not used for this because Sierra renumbers them when
//! a chart reloads (sierra-format.md §5.4).

use std::collections::BTreeMap;

use chrono::NaiveTime;
use serde::Serialize;

use crate::config::{Config, InstrumentConfig, SessionConfig, StalenessConfig};
use crate::ingest::record::{Bar, OrderFlow, Payload, Record, ValueArea};
use crate::model::{ContractSpec, Level, Timestamp, symbol_root, utc_to_local};

/// A data source whose age is tracked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The one-minute chart (bars, VWAP, value area, order flow, Time & Sales).
    Minute,
    /// The thirty-minute profile chart.
    Profile,
    /// VIX.
    Vix,
    /// MenthorQ levels.
    MenthorQ,
}

impl Source {
    /// Every source, in display order.
    pub const ALL: [Source; 4] = [
        Source::Minute,
        Source::Profile,
        Source::Vix,
        Source::MenthorQ,
    ];

    fn idx(self) -> usize {
        self as usize
    }

    /// The name journals and `/status` use: `minute`, `profile`, `vix`, `menthor_q`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Minute => "minute",
            Source::Profile => "profile",
            Source::Vix => "vix",
            Source::MenthorQ => "menthor_q",
        }
    }
}

/// VIX regime by plain thresholds: low (< 15), normal (< 22), high (< 35), extreme (≥ 35).
///
/// The features stage adds the 2-point hysteresis on top; staleness only needs the regime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VixRegime {
    /// VIX below 15.
    Low,
    /// VIX from 15 to below 22.
    Normal,
    /// VIX from 22 to below 35.
    High,
    /// VIX 35 or more.
    Extreme,
}

impl VixRegime {
    /// Returns the regime of a VIX value.
    pub fn of(vix: f64) -> VixRegime {
        if vix < 15.0 {
            VixRegime::Low
        } else if vix < 22.0 {
            VixRegime::Normal
        } else if vix < 35.0 {
            VixRegime::High
        } else {
            VixRegime::Extreme
        }
    }
}

/// VWAP and its bands, resolved from the dumper fields.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Vwap {
    /// Volume-weighted average price of the session.
    pub vwap: f64,
    /// +1σ … +4σ bands (missing ones are `None`).
    pub up: [Option<f64>; 4],
    /// −1σ … −4σ bands.
    pub dn: [Option<f64>; 4],
}

impl Vwap {
    /// Returns one standard deviation, from the ±1σ bands.
    pub fn sigma(&self) -> Option<f64> {
        match (self.up[0], self.dn[0]) {
            (Some(up), Some(dn)) if up > dn => Some((up - dn) / 2.0),
            (Some(up), None) if up > self.vwap => Some(up - self.vwap),
            (None, Some(dn)) if dn < self.vwap => Some(self.vwap - dn),
            _ => None,
        }
    }
}

/// The thirty-minute profile chart.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Profile {
    /// Session VWAP of the 30-minute chart and its bands.
    pub vwap: Option<Vwap>,
    /// Current value area.
    pub value_area: Option<ValueArea>,
    /// Previous session value area.
    pub prev_value_area: Option<ValueArea>,
    /// Previous VWAP.
    pub prev_vwap: Option<f64>,
    /// Volume profile value area.
    pub volume_profile: Option<ValueArea>,
    /// High volume node.
    pub hvn: Option<f64>,
    /// Low volume node.
    pub lvn: Option<f64>,
    /// Order flow of the current 30-minute bar.
    pub order_flow: Option<OrderFlow>,
    /// Cumulative delta.
    pub cumulative_delta: Option<f64>,
}

/// The last one-minute bar.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BarState {
    /// Bar start.
    pub start: Timestamp,
    /// Sierra bar index (informative only).
    pub index: Option<i64>,
    /// Open, high, low, close, volumes.
    pub bar: Bar,
}

/// Age of one source.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SourceAge {
    /// The source.
    pub source: Source,
    /// Seconds since it was last updated, `None` when never.
    pub age_secs: Option<f64>,
    /// Older than its threshold (never updated counts as stale).
    pub stale: bool,
}

/// Everything known about one instrument's market.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MarketSnapshot {
    /// Instrument name (symbol root).
    pub instrument: String,
    /// Contract specification.
    pub spec: ContractSpec,
    /// Last Sierra symbol seen.
    pub symbol: Option<String>,
    /// Last one-minute bar.
    pub bar: Option<BarState>,
    /// Last traded price (trade print, else bar close).
    pub last_price: Option<f64>,
    /// Best bid (crossed quotes are ignored).
    pub bid: Option<f64>,
    /// Best ask.
    pub ask: Option<f64>,
    /// Session VWAP and bands of the one-minute chart.
    pub vwap: Option<Vwap>,
    /// Current value area.
    pub value_area: Option<ValueArea>,
    /// Previous session value area.
    pub prev_value_area: Option<ValueArea>,
    /// Previous session VWAP.
    pub prev_vwap: Option<f64>,
    /// Order flow of the current bar.
    pub order_flow: Option<OrderFlow>,
    /// Session cumulative delta.
    pub cumulative_delta: Option<f64>,
    /// Average true range.
    pub atr: Option<f64>,
    /// Last VIX value.
    pub vix: Option<f64>,
    /// Thirty-minute profile.
    pub profile: Profile,
    /// Correlation coefficient (ES/NQ).
    pub correlation: Option<f64>,
    /// MenthorQ levels of the last block, snapped to the tick.
    pub levels: BTreeMap<Level, f64>,
    /// Time of the last MenthorQ block (chart-10 bar start).
    pub levels_time: Option<Timestamp>,
    /// When each source was last updated (by the pipeline clock).
    #[serde(skip)]
    pub updated: [Option<Timestamp>; 4],
    /// Last applied bar time per (slot, chart), for last-wins.
    #[serde(skip)]
    guards: Vec<(u8, u16, Timestamp)>,
}

impl MarketSnapshot {
    /// Creates an empty snapshot.
    pub fn new(instrument: &str, spec: ContractSpec) -> Self {
        Self {
            instrument: instrument.to_owned(),
            spec,
            symbol: None,
            bar: None,
            last_price: None,
            bid: None,
            ask: None,
            vwap: None,
            value_area: None,
            prev_value_area: None,
            prev_vwap: None,
            order_flow: None,
            cumulative_delta: None,
            atr: None,
            vix: None,
            profile: Profile::default(),
            correlation: None,
            levels: BTreeMap::new(),
            levels_time: None,
            updated: [None; 4],
            guards: Vec::new(),
        }
    }

    /// Returns true when `ts` is not older than what `slot` of `chart` last applied, and
    /// remembers it.
    fn fresh(&mut self, slot: u8, chart: u16, ts: Timestamp) -> bool {
        match self
            .guards
            .iter_mut()
            .find(|(s, c, _)| *s == slot && *c == chart)
        {
            Some((_, _, last)) if ts < *last => false,
            Some((_, _, last)) => {
                *last = ts;
                true
            }
            None => {
                self.guards.push((slot, chart, ts));
                true
            }
        }
    }

    /// Returns the age of every source at `now`. MenthorQ is stale only during the session,
    /// after twice its refresh interval for the current VIX regime.
    pub fn ages(
        &self,
        now: Timestamp,
        limits: &StalenessConfig,
        in_session: bool,
    ) -> [SourceAge; 4] {
        let mq_refresh_min = match self.vix.map(VixRegime::of) {
            Some(VixRegime::Extreme) => limits.menthorq_refresh_minutes[2],
            Some(VixRegime::High) => limits.menthorq_refresh_minutes[1],
            _ => limits.menthorq_refresh_minutes[0],
        };
        Source::ALL.map(|source| {
            let age_secs = self.updated[source.idx()].map(|t| now.secs_since(t));
            let limit = match source {
                Source::Minute => limits.minute_secs as f64,
                Source::Profile => limits.profile_secs as f64,
                Source::Vix => limits.vix_secs as f64,
                Source::MenthorQ => 2.0 * 60.0 * mq_refresh_min as f64,
            };
            let stale = match age_secs {
                None => source != Source::MenthorQ || in_session,
                Some(_) if source == Source::MenthorQ && !in_session => false,
                Some(age) => age > limit,
            };
            SourceAge {
                source,
                age_secs,
                stale,
            }
        })
    }
}

/// Where records go: one snapshot per configured instrument.
#[derive(Debug, Clone)]
pub struct SnapshotStore {
    snapshots: Vec<MarketSnapshot>,
    charts: Vec<crate::config::ChartMap>,
    vwap_v_is_plus_one_sigma: bool,
    session: SessionConfig,
}

fn resolve_vwap(
    v: Option<f64>,
    up: [Option<f64>; 3],
    dn: [Option<f64>; 3],
    v_is_band: bool,
) -> Option<Vwap> {
    if v_is_band {
        // `v` is +1σ and the true VWAP was never written: take the midpoint of ±1σ.
        let plus1 = v?;
        let minus1 = dn[0]?;
        Some(Vwap {
            vwap: (plus1 + minus1) / 2.0,
            up: [Some(plus1), up[0], up[1], up[2]],
            dn: [dn[0], dn[1], dn[2], None],
        })
    } else {
        Some(Vwap {
            vwap: v?,
            up: [up[0], up[1], up[2], None],
            dn: [dn[0], dn[1], dn[2], None],
        })
    }
}

impl SnapshotStore {
    /// Creates one empty snapshot per instrument of `config`.
    pub fn new(config: &Config) -> Self {
        let instruments: Vec<&InstrumentConfig> = config.instruments.values().collect();
        Self {
            snapshots: instruments
                .iter()
                .map(|i| MarketSnapshot::new(&i.name, i.spec))
                .collect(),
            charts: instruments.iter().map(|i| i.charts).collect(),
            vwap_v_is_plus_one_sigma: config.ingest.vwap_v_is_plus_one_sigma,
            session: config.session.clone(),
        }
    }

    /// Returns every snapshot, sorted by instrument name.
    pub fn snapshots(&self) -> &[MarketSnapshot] {
        &self.snapshots
    }

    /// Returns the snapshot of `instrument`.
    pub fn get(&self, instrument: &str) -> Option<&MarketSnapshot> {
        self.snapshots.iter().find(|s| s.instrument == instrument)
    }

    /// Returns whether `now` is inside the regular session (exchange time, weekdays).
    pub fn in_session(&self, now: Timestamp) -> bool {
        in_session(&self.session, now)
    }

    /// Applies a record from `chart` at pipeline time `now`. Returns how many snapshots it
    /// updated (0 when it belongs to no configured instrument or is older than the state).
    pub fn apply(&mut self, chart: u16, record: &Record<'_>, now: Timestamp) -> usize {
        let root = record.sym.as_deref().map(symbol_root);
        let mut applied = 0;
        for idx in 0..self.snapshots.len() {
            let charts = self.charts[idx];
            let routed = match root {
                Some(root) => root == self.snapshots[idx].instrument,
                // Only the VIX chart writes no symbol at HEAD; older sym-less records go to every
                // instrument that has the chart.
                None => {
                    [charts.minute, charts.profile, charts.vix, charts.menthorq].contains(&chart)
                }
            };
            if routed
                && apply_one(
                    &mut self.snapshots[idx],
                    charts,
                    chart,
                    record,
                    now,
                    self.vwap_v_is_plus_one_sigma,
                )
            {
                applied += 1;
            }
        }
        applied
    }
}

fn in_session(session: &SessionConfig, now: Timestamp) -> bool {
    use chrono::Datelike;
    let Some(local) = utc_to_local(now, session.time_zone) else {
        return false;
    };
    let weekday = local.weekday().number_from_monday() <= 5;
    let t: NaiveTime = local.time();
    weekday && t >= session.open && t < session.close
}

fn apply_one(
    s: &mut MarketSnapshot,
    charts: crate::config::ChartMap,
    chart: u16,
    record: &Record<'_>,
    now: Timestamp,
    v_is_band: bool,
) -> bool {
    let slot = payload_slot(&record.payload);
    if matches!(record.payload, Payload::Other) || !s.fresh(slot, chart, record.ts) {
        return false;
    }
    if let Some(sym) = &record.sym
        && s.symbol.as_deref() != Some(sym.as_ref())
    {
        s.symbol = Some(sym.to_string());
    }
    let source = if chart == charts.menthorq {
        Source::MenthorQ
    } else if chart == charts.profile && chart != charts.minute {
        Source::Profile
    } else if chart == charts.vix && chart != charts.minute {
        Source::Vix
    } else {
        Source::Minute
    };
    let is_profile = source == Source::Profile;
    match &record.payload {
        Payload::Bar(bar) => {
            s.bar = Some(BarState {
                start: record.ts,
                index: record.index,
                bar: *bar,
            });
            s.last_price = Some(bar.close);
        }
        Payload::Vwap(f) => {
            if let Some(v) = resolve_vwap(f.v, f.up, f.dn, v_is_band) {
                s.vwap = Some(v);
            }
        }
        Payload::ValueAreas { current, previous } => {
            // An inverted value area is flagged, not trusted: keep the last good one.
            if let Some(area) = current.filter(|a| a.trusted) {
                s.value_area = Some(area);
            }
            if let Some(area) = previous.filter(|a| a.trusted) {
                s.prev_value_area = Some(area);
            }
        }
        Payload::PrevVwap { pvwap } => s.prev_vwap = Some(*pvwap),
        Payload::OrderFlow(flow) if is_profile => s.profile.order_flow = Some(*flow),
        Payload::OrderFlow(flow) => s.order_flow = Some(*flow),
        Payload::Depth { .. } | Payload::TradeSummary { .. } => {}
        Payload::Quote { bid, ask, .. } => {
            if bid < ask && *bid > 0.0 {
                s.bid = Some(*bid);
                s.ask = Some(*ask);
            }
        }
        Payload::Trade { price, .. } => {
            if *price > 0.0 {
                s.last_price = Some(*price);
            }
        }
        Payload::CumulativeDelta(cd) if is_profile => s.profile.cumulative_delta = Some(*cd),
        Payload::CumulativeDelta(cd) => s.cumulative_delta = Some(*cd),
        Payload::Atr(atr) => s.atr = Some(*atr),
        Payload::Vix(vix) => {
            if *vix > 0.0 {
                s.vix = Some(*vix);
                s.updated[Source::Vix.idx()] = Some(now);
            }
        }
        Payload::Correlation(cc) => s.correlation = Some(*cc),
        Payload::Level { level, price } => {
            let Some(level) = level else { return false };
            if *price <= 0.0 {
                return false;
            }
            // A block shares one time; a newer time starts a new block, which replaces the set
            // (a level absent from the block was zero, i.e. gone).
            if s.levels_time.is_none_or(|t| record.ts > t) {
                s.levels.clear();
                s.levels_time = Some(record.ts);
            }
            s.levels.insert(*level, s.spec.snap(*price));
        }
        Payload::ProfileVwap { vwap, up, dn } => {
            s.profile.vwap = Some(Vwap {
                vwap: *vwap,
                up: [up[0], up[1], up[2], None],
                dn: [dn[0], dn[1], dn[2], None],
            });
        }
        Payload::ProfileValueArea {
            previous: false,
            area,
        } => s.profile.value_area = Some(*area),
        Payload::ProfileValueArea {
            previous: true,
            area,
        } => s.profile.prev_value_area = Some(*area),
        Payload::ProfilePrevVwap { pvwap } => s.profile.prev_vwap = Some(*pvwap),
        Payload::VolumeProfile { area, hvn, lvn } => {
            s.profile.volume_profile = *area;
            s.profile.hvn = *hvn;
            s.profile.lvn = *lvn;
        }
        Payload::Other => return false,
    }
    // VIX freshness comes from VIX values only (the chart-3 overlay counts too).
    if source != Source::Vix || matches!(record.payload, Payload::Vix(_)) {
        s.updated[source.idx()] = Some(now);
    }
    true
}

fn payload_slot(payload: &Payload) -> u8 {
    match payload {
        Payload::Bar(_) => 0,
        Payload::Vwap(_) => 1,
        Payload::ValueAreas { .. } => 2,
        Payload::PrevVwap { .. } => 3,
        Payload::OrderFlow(_) => 4,
        Payload::Depth { .. } => 5,
        Payload::Quote { .. } => 6,
        Payload::Trade { .. } => 7,
        Payload::TradeSummary { .. } => 8,
        Payload::CumulativeDelta(_) => 9,
        Payload::Atr(_) => 10,
        Payload::Vix(_) => 11,
        Payload::Correlation(_) => 12,
        Payload::Level { .. } => 13,
        Payload::ProfileVwap { .. } => 14,
        Payload::ProfileValueArea {
            previous: false, ..
        } => 15,
        Payload::ProfileValueArea { previous: true, .. } => 16,
        Payload::ProfilePrevVwap { .. } => 17,
        Payload::VolumeProfile { .. } => 18,
        Payload::Other => 19,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::record::{LineContext, parse_line};

    fn store() -> SnapshotStore {
        SnapshotStore::new(&Config::reference())
    }

    fn apply(
        store: &mut SnapshotStore,
        chart: u16,
        kind: &'static str,
        line: &str,
        now: Timestamp,
    ) -> usize {
        let ctx = LineContext {
            chart,
            kind: Some(kind),
            file_date: chrono::NaiveDate::from_ymd_opt(2025, 9, 19),
            tz: chrono_tz::America::New_York,
        };
        let record = parse_line(line, &ctx).unwrap();
        store.apply(chart, &record, now)
    }

    const T0: Timestamp = Timestamp::from_secs(1_758_310_260); // 2025-09-19 19:31:00 UTC

    #[test]
    fn routes_by_symbol_root_and_shares_vix() {
        let mut s = store();
        let es = r#"{"t":45919.646528,"sym":"ESZ25_FUT_CME","type":"basedata","i":1,"o":6498.25,"h":6499.5,"l":6497.75,"c":6499.0,"v":10,"bidvol":4,"askvol":6,"chart":3}"#;
        assert_eq!(apply(&mut s, 3, "basedata", es, T0), 1);
        assert_eq!(s.get("ES").unwrap().last_price, Some(6499.0));
        assert_eq!(s.get("NQ").unwrap().last_price, None);
        let vix = r#"{"t":45919.646528,"type":"vix","i":6121,"last":15.42,"chart":8}"#;
        assert_eq!(apply(&mut s, 8, "vix", vix, T0), 2);
        assert_eq!(s.get("NQ").unwrap().vix, Some(15.42));
        let other = r#"{"t":45919.646528,"sym":"CLZ25_FUT_NYM","type":"basedata","i":1,"o":1,"h":1,"l":1,"c":1}"#;
        assert_eq!(apply(&mut s, 3, "basedata", other, T0), 0);
    }

    #[test]
    fn vwap_plus_one_sigma_bug_is_resolved() {
        let mut s = store();
        let line = r#"{"t":45919.646528,"sym":"ESZ25_FUT_CME","type":"vwap","src":"study","i":14022,"v":6496.50,"up1":6501.25,"dn1":6487.00,"up2":6506.00,"dn2":6482.25,"up3":6510.75,"dn3":6477.50,"chart":3}"#;
        apply(&mut s, 3, "vwap", line, T0);
        let v = s.get("ES").unwrap().vwap.unwrap();
        assert_eq!(v.vwap, 6491.75, "worked example of sierra-format.md 2.1.2");
        assert_eq!(v.sigma(), Some(4.75));
        assert_eq!(
            v.up,
            [Some(6496.5), Some(6501.25), Some(6506.0), Some(6510.75)]
        );
        assert_eq!(v.dn, [Some(6487.0), Some(6482.25), Some(6477.5), None]);
    }

    #[test]
    fn last_wins_and_older_bars_are_ignored() {
        let mut s = store();
        let bar = |t: &str, c: f64| {
            format!(
                r#"{{"t":{t},"sym":"ESZ25_FUT_CME","type":"basedata","i":5,"o":1,"h":9999,"l":1,"c":{c}}}"#
            )
        };
        apply(&mut s, 3, "basedata", &bar("45919.646528", 6499.0), T0);
        apply(&mut s, 3, "basedata", &bar("45919.646528", 6499.25), T0);
        assert_eq!(s.get("ES").unwrap().last_price, Some(6499.25));
        assert_eq!(
            apply(&mut s, 3, "basedata", &bar("45919.645833", 6400.0), T0),
            0,
            "older bar re-emitted"
        );
        assert_eq!(s.get("ES").unwrap().last_price, Some(6499.25));
    }

    #[test]
    fn menthorq_blocks_snap_to_tick_and_replace() {
        let mut s = store();
        let lvl = |t: &str, lt: &str, p: &str, sg: u32| {
            format!(
                r#"{{"t":{t},"sym":"ESZ25_FUT_CME","type":"menthorq_level","level_type":"{lt}","price":{p},"subgraph":{sg},"study_id":1,"i":1403,"chart":10}}"#
            )
        };
        apply(
            &mut s,
            10,
            "menthorq",
            &lvl("45919.645833", "call_resistance", "6550.0", 0),
            T0,
        );
        apply(
            &mut s,
            10,
            "menthorq",
            &lvl("45919.645833", "blind_spot_3", "6487.8", 3),
            T0,
        );
        let es = s.get("ES").unwrap();
        assert_eq!(es.levels.get(&Level::BlindSpot(4)), Some(&6487.75));
        assert_eq!(es.levels.len(), 2);
        apply(
            &mut s,
            10,
            "menthorq",
            &lvl("45919.656250", "hvl", "6490.2", 2),
            T0,
        );
        let es = s.get("ES").unwrap();
        assert_eq!(es.levels.len(), 1, "a new block replaces the set");
        assert_eq!(es.levels.get(&Level::Hvl), Some(&6490.25));
    }

    #[test]
    fn inverted_value_area_is_not_trusted_and_crossed_quotes_ignored() {
        let mut s = store();
        let good = r#"{"t":45919.646528,"sym":"ESZ25_FUT_CME","type":"vva","i":1,"vah":6503.25,"val":6484.5,"vpoc":6492.0,"pvah":0,"pval":0,"ppoc":0}"#;
        let bad = r#"{"t":45919.646528,"sym":"ESZ25_FUT_CME","type":"vva","i":1,"vah":6503.25,"val":6494.5,"vpoc":6492.0,"pvah":0,"pval":0,"ppoc":0}"#;
        apply(&mut s, 3, "vva", good, T0);
        apply(&mut s, 3, "vva", bad, T0);
        assert_eq!(s.get("ES").unwrap().value_area.unwrap().val, 6484.5);
        let crossed = r#"{"t":45919.56,"sym":"ESZ25_FUT_CME","type":"quote","bid":6499.25,"ask":6499.0,"seq":3}"#;
        apply(&mut s, 3, "quote", crossed, T0);
        assert_eq!(s.get("ES").unwrap().bid, None);
    }

    #[test]
    fn staleness_per_source() {
        let mut s = store();
        let limits = Config::reference().staleness;
        let bar = r#"{"t":45919.646528,"sym":"ESZ25_FUT_CME","type":"basedata","i":1,"o":1,"h":2,"l":1,"c":2}"#;
        apply(&mut s, 3, "basedata", bar, T0);
        let lvl = r#"{"t":45919.645833,"sym":"ESZ25_FUT_CME","type":"menthorq_level","level_type":"hvl","price":6490.0,"subgraph":2,"study_id":1,"i":1}"#;
        apply(&mut s, 10, "menthorq", lvl, T0);
        let es = s.get("ES").unwrap();
        let ages = es.ages(Timestamp::from_secs(1_758_310_260 + 20), &limits, true);
        assert!(!ages[0].stale, "20 s old minute data is fresh");
        assert!(ages[2].stale, "VIX never seen");
        let later = Timestamp::from_secs(1_758_310_260 + 31);
        assert!(es.ages(later, &limits, true)[0].stale, "31 s is stale");
        let hour = Timestamp::from_secs(1_758_310_260 + 3_601);
        assert!(
            es.ages(hour, &limits, true)[3].stale,
            "MenthorQ older than 2 × 30 min in session"
        );
        assert!(
            !es.ages(hour, &limits, false)[3].stale,
            "not outside the session"
        );
        assert!(s.in_session(T0), "15:31 New York on a Friday");
        assert!(!s.in_session(Timestamp::from_secs(1_758_310_260 + 3 * 3_600)));
    }
}
