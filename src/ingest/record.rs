//! One Sierra JSONL line to one typed [`Record`] (sierra-format.md §2).
//!
//! Parsing is a single serde pass into a flat `Wire` struct that borrows strings from the line,
//! then a dispatch on `type` (or, for chart-4 files that carry no `type`, on the file kind) that
//! builds the typed payload. Unknown keys are ignored here and kept verbatim in the unified
//! journal, which stores the original line.

use std::borrow::Cow;

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::Deserialize;

use crate::model::{Level, TimeBase, Timestamp, clean_symbol, resolve_time};

/// Where a line came from: what the file name says and how to read its times.
#[derive(Debug, Clone, Copy)]
pub struct LineContext<'a> {
    /// Chart number from the file name.
    pub chart: u16,
    /// File kind from the file name (`None` for one-file-per-chart files).
    pub kind: Option<&'a str>,
    /// Date in the file name.
    pub file_date: Option<NaiveDate>,
    /// Chart time zone for bar records.
    pub tz: Tz,
}

/// Why a line was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidLine {
    /// Not a JSON object (torn line, `nan`/`inf` token, garbage).
    #[error("not valid JSON: {0}")]
    Json(String),
    /// A JSON object without the `t` time field.
    #[error("no time field `t`")]
    NoTime,
    /// The time field cannot be converted to an instant.
    #[error("time `t` = {0} is out of range")]
    BadTime(f64),
    /// `type` is the empty string: a record with no type is a writer's bug, not a record type
    /// to keep (an absent `type` is handled; see [`parse_line`]).
    #[error("empty record type `type`")]
    EmptyType,
    /// A known record type without one of its required fields.
    #[error("`{kind}` record without `{field}`")]
    MissingField {
        /// Record type.
        kind: &'static str,
        /// Missing field.
        field: &'static str,
    },
}

/// Deserializes an optional string borrowed from the line when it has no escapes. serde's
/// `#[serde(borrow)]` has no effect through `Option` (serde-rs/serde#2016), which would cost an
/// allocation per string per line.
fn borrowed<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    #[derive(Deserialize)]
    struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Option::<Borrowed<'de>>::deserialize(d)?.map(|b| b.0))
}

/// Flat image of every field the dumpers write that mia reads. Every field is optional; the
/// dispatch decides which are required.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Wire<'a> {
    t: Option<f64>,
    #[serde(borrow, deserialize_with = "borrowed")]
    sym: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "type", deserialize_with = "borrowed")]
    type_: Option<Cow<'a, str>>,
    i: Option<f64>,
    bar: Option<f64>,
    o: Option<f64>,
    h: Option<f64>,
    l: Option<f64>,
    c: Option<f64>,
    v: Option<f64>,
    bidvol: Option<f64>,
    askvol: Option<f64>,
    up1: Option<f64>,
    dn1: Option<f64>,
    up2: Option<f64>,
    dn2: Option<f64>,
    up3: Option<f64>,
    dn3: Option<f64>,
    vah: Option<f64>,
    val: Option<f64>,
    vpoc: Option<f64>,
    poc: Option<f64>,
    pvah: Option<f64>,
    pval: Option<f64>,
    ppoc: Option<f64>,
    pvpoc: Option<f64>,
    pvwap: Option<f64>,
    ask_volume: Option<f64>,
    bid_volume: Option<f64>,
    delta: Option<f64>,
    trades: Option<f64>,
    cumulative_delta: Option<f64>,
    total_volume: Option<f64>,
    totalvol: Option<f64>,
    delta_ratio: Option<f64>,
    pressure: Option<f64>,
    #[serde(borrow, deserialize_with = "borrowed")]
    side: Option<Cow<'a, str>>,
    lvl: Option<f64>,
    price: Option<f64>,
    size: Option<f64>,
    bid: Option<f64>,
    ask: Option<f64>,
    bq: Option<f64>,
    aq: Option<f64>,
    seq: Option<f64>,
    px: Option<f64>,
    vol: Option<f64>,
    buy_trades: Option<f64>,
    sell_trades: Option<f64>,
    buy_vol: Option<f64>,
    sell_vol: Option<f64>,
    close: Option<f64>,
    atr: Option<f64>,
    vix: Option<f64>,
    last: Option<f64>,
    cc: Option<f64>,
    correlation: Option<f64>,
    #[serde(borrow, deserialize_with = "borrowed")]
    level_type: Option<Cow<'a, str>>,
    subgraph: Option<f64>,
    study_id: Option<f64>,
    vwap: Option<f64>,
    sd1: Option<f64>,
    sd2: Option<f64>,
    sd3: Option<f64>,
    sd4: Option<f64>,
    sd5: Option<f64>,
    sd6: Option<f64>,
    psd1: Option<f64>,
    psd2: Option<f64>,
    hvn: Option<f64>,
    lvn: Option<f64>,
}

/// A study value where `0` means "missing" (sierra-format.md §5.9).
fn study(v: Option<f64>) -> Option<f64> {
    v.filter(|x| *x != 0.0 && x.is_finite())
}

/// One-minute (or any chart-3) bar: `basedata`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Bar {
    /// Open.
    pub open: f64,
    /// High.
    pub high: f64,
    /// Low.
    pub low: f64,
    /// Last (close so far).
    pub close: f64,
    /// Volume, possibly capped by the dumper.
    pub volume: f64,
    /// Volume traded at the bid.
    pub bid_volume: f64,
    /// Volume traded at the ask.
    pub ask_volume: f64,
}

/// Chart-3 `vwap` as written: the fields keep their file names because their meaning depends on
/// the `v` = +1σ dumper bug, which the snapshot resolves from config.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VwapFields {
    /// Field `v`.
    pub v: Option<f64>,
    /// Fields `up1`, `up2`, `up3`.
    pub up: [Option<f64>; 3],
    /// Fields `dn1`, `dn2`, `dn3`.
    pub dn: [Option<f64>; 3],
}

/// A value area (POC, VAH, VAL); `trusted` is false when `val ≤ vpoc ≤ vah` does not hold.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ValueArea {
    /// Value area high.
    pub vah: f64,
    /// Value area low.
    pub val: f64,
    /// Volume point of control.
    pub vpoc: f64,
    /// Whether `val ≤ vpoc ≤ vah`.
    pub trusted: bool,
}

impl ValueArea {
    fn from_parts(vah: Option<f64>, val: Option<f64>, vpoc: Option<f64>) -> Option<ValueArea> {
        let (vah, val, vpoc) = (study(vah)?, study(val)?, study(vpoc)?);
        Some(ValueArea {
            vah,
            val,
            vpoc,
            trusted: val <= vpoc && vpoc <= vah,
        })
    }
}

/// NBCV order flow of one bar.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct OrderFlow {
    /// Volume traded at the ask.
    pub ask_volume: f64,
    /// Volume traded at the bid.
    pub bid_volume: f64,
    /// Ask minus bid volume.
    pub delta: f64,
    /// Number of trades, when known.
    pub trades: Option<f64>,
    /// Session cumulative delta, when known.
    pub cumulative_delta: Option<f64>,
    /// Total volume.
    pub total_volume: f64,
    /// Delta over total volume, in [−1, 1].
    pub delta_ratio: f64,
    /// Dumper's pressure flag: 1 bullish, −1 bearish, 0 neutral (chart 3 only).
    pub pressure: Option<i8>,
}

/// Side of a depth level or a quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookSide {
    /// Bid.
    Bid,
    /// Ask.
    Ask,
}

/// Aggressor side of a trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradeSide {
    /// Lifted the offer.
    Buy,
    /// Hit the bid.
    Sell,
    /// Not classified by the dumper.
    Unknown,
}

/// The typed content of a record.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// `basedata`.
    Bar(Bar),
    /// Chart-3 `vwap`.
    Vwap(VwapFields),
    /// `vva`: current and previous value area.
    ValueAreas {
        /// Current session value area.
        current: Option<ValueArea>,
        /// Previous session value area.
        previous: Option<ValueArea>,
    },
    /// `pvwap`: previous-session VWAP.
    PrevVwap {
        /// Previous-session VWAP.
        pvwap: f64,
    },
    /// `nbcv`, `nbcv_footprint`, chart-4 `nbcv`.
    OrderFlow(OrderFlow),
    /// `depth`.
    Depth {
        /// Side.
        side: BookSide,
        /// Level, 1 = best.
        level: u16,
        /// Price.
        price: f64,
        /// Size in contracts.
        size: f64,
    },
    /// `quote` (Time & Sales bid/ask update); `crossed` when bid > ask.
    Quote {
        /// Best bid.
        bid: f64,
        /// Best ask.
        ask: f64,
        /// Bid size.
        bid_size: f64,
        /// Ask size.
        ask_size: f64,
        /// Sierra T&S sequence.
        seq: Option<u32>,
    },
    /// `trade` (Time & Sales print).
    Trade {
        /// Aggressor side.
        side: TradeSide,
        /// Price.
        price: f64,
        /// Volume.
        volume: f64,
        /// Sierra T&S sequence.
        seq: Option<u32>,
    },
    /// `trade_summary`: cumulative counters since the study loaded.
    TradeSummary {
        /// Buy prints.
        buy_trades: f64,
        /// Sell prints.
        sell_trades: f64,
    },
    /// `cumulative_delta`.
    CumulativeDelta(f64),
    /// `atr`.
    Atr(f64),
    /// `vix` (chart 8 `last` or `close`, chart-3 overlay `vix`) and `vix_close`.
    Vix(f64),
    /// `correlation`.
    Correlation(f64),
    /// `menthorq_level`; `level` is `None` for unnamed subgraphs (`gamma_sg_<n>`, `sg_<n>`).
    Level {
        /// Canonical level.
        level: Option<Level>,
        /// Price as printed (not yet snapped to the tick).
        price: f64,
    },
    /// Chart-4 `vwap`: VWAP and its bands ±1σ, ±2σ, ±3σ.
    ProfileVwap {
        /// VWAP.
        vwap: f64,
        /// +1σ, +2σ, +3σ.
        up: [Option<f64>; 3],
        /// −1σ, −2σ, −3σ.
        dn: [Option<f64>; 3],
    },
    /// Chart-4 value areas: `vva` (current), `vva_previous` and `previous_vp` (previous).
    ProfileValueArea {
        /// Whether this is the previous session's value area.
        previous: bool,
        /// The value area.
        area: ValueArea,
    },
    /// Chart-4 `previous_vwap`.
    ProfilePrevVwap {
        /// Previous VWAP.
        pvwap: f64,
    },
    /// Chart-4 `volume_profile`: value area plus high and low volume nodes.
    VolumeProfile {
        /// Value area.
        area: Option<ValueArea>,
        /// High volume node.
        hvn: Option<f64>,
        /// Low volume node.
        lvn: Option<f64>,
    },
    /// A record mia keeps in the journal but does not interpret (diagnostics, older formats).
    Other,
}

/// A parsed line.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<'a> {
    /// Record type: the `type` field, or the file kind for chart-4 lines without one.
    pub kind: Cow<'a, str>,
    /// Whether the type is one mia knows.
    pub known: bool,
    /// The raw `t`.
    pub t: f64,
    /// `t` resolved to UTC.
    pub ts: Timestamp,
    /// Symbol without the old `[M]  1 Min  #10` suffix.
    pub sym: Option<Cow<'a, str>>,
    /// Bar index (`i`, or `bar` in older chart-10 records).
    pub index: Option<i64>,
    /// Study and subgraph of a MenthorQ level, part of its identity.
    pub level_slot: Option<(i64, i64)>,
    /// Typed content.
    pub payload: Payload,
    /// The line looked wrong but was kept (crossed quote, inverted value area).
    pub flagged: bool,
}

impl Record<'_> {
    /// Returns a copy that owns its strings, to keep after the line buffer is reused (replay
    /// holds one record per file while it merges them).
    pub fn into_owned(self) -> Record<'static> {
        Record {
            kind: Cow::Owned(self.kind.into_owned()),
            known: self.known,
            t: self.t,
            ts: self.ts,
            sym: self.sym.map(|s| Cow::Owned(s.into_owned())),
            index: self.index,
            level_slot: self.level_slot,
            payload: self.payload,
            flagged: self.flagged,
        }
    }

    /// Returns the Time & Sales sequence of a quote or trade.
    pub fn seq(&self) -> Option<u32> {
        match self.payload {
            Payload::Quote { seq, .. } | Payload::Trade { seq, .. } => seq,
            _ => None,
        }
    }
}

fn require(v: Option<f64>, kind: &'static str, field: &'static str) -> Result<f64, InvalidLine> {
    v.ok_or(InvalidLine::MissingField { kind, field })
}

fn as_seq(v: Option<f64>) -> Option<u32> {
    v.filter(|s| *s >= 0.0 && *s <= f64::from(u32::MAX))
        .map(|s| s as u32)
}

/// Parses one line (without its line ending).
///
/// # Errors
///
/// Returns [`InvalidLine`] for anything that is not a usable record: the caller counts and
/// reports it with its file and line number.
pub fn parse_line<'a>(line: &'a str, ctx: &LineContext<'_>) -> Result<Record<'a>, InvalidLine> {
    let wire: Wire<'a> =
        serde_json::from_str(line).map_err(|e| InvalidLine::Json(e.to_string()))?;
    let t = wire.t.ok_or(InvalidLine::NoTime)?;

    // Chart-4 lines of the current and GEN2b dumpers have no `type`: their file kind says what
    // they are (sierra-format.md §2.2.3).
    let typeless_chart4 = wire.type_.is_none() && ctx.chart == 4;
    let kind: Cow<'a, str> = match (&wire.type_, ctx.kind) {
        (Some(k), _) if k.is_empty() => return Err(InvalidLine::EmptyType),
        (Some(k), _) => k.clone(),
        (None, Some(file_kind)) => Cow::Owned(file_kind.to_owned()),
        (None, None) if typeless_chart4 => Cow::Borrowed(chart4_kind_from_keys(&wire)),
        (None, None) => Cow::Borrowed("untyped"),
    };

    let base = match kind.as_ref() {
        "quote" | "trade" | "trade_summary" => TimeBase::Utc,
        _ if typeless_chart4 && is_seconds_of_day(t, ctx.file_date) => TimeBase::SecondsOfDay,
        _ => TimeBase::ChartTz,
    };
    let ts = resolve_time(t, base, ctx.tz, ctx.file_date).ok_or(InvalidLine::BadTime(t))?;

    let mut flagged = false;
    let mut level_slot = None;
    let payload = if typeless_chart4 {
        chart4_payload(kind.as_ref(), &wire)?
    } else {
        match kind.as_ref() {
            "basedata" => Payload::Bar(Bar {
                open: require(wire.o, "basedata", "o")?,
                high: require(wire.h, "basedata", "h")?,
                low: require(wire.l, "basedata", "l")?,
                close: require(wire.c, "basedata", "c")?,
                volume: wire.v.unwrap_or(0.0),
                bid_volume: wire.bidvol.unwrap_or(0.0),
                ask_volume: wire.askvol.unwrap_or(0.0),
            }),
            "vwap" => Payload::Vwap(VwapFields {
                v: study(Some(require(wire.v, "vwap", "v")?)),
                up: [study(wire.up1), study(wire.up2), study(wire.up3)],
                dn: [study(wire.dn1), study(wire.dn2), study(wire.dn3)],
            }),
            "vva" => {
                let current = ValueArea::from_parts(wire.vah, wire.val, wire.vpoc.or(wire.poc));
                let previous = ValueArea::from_parts(wire.pvah, wire.pval, wire.ppoc);
                flagged =
                    current.is_some_and(|a| !a.trusted) || previous.is_some_and(|a| !a.trusted);
                Payload::ValueAreas { current, previous }
            }
            "pvwap" => Payload::PrevVwap {
                pvwap: require(wire.pvwap, "pvwap", "pvwap")?,
            },
            "nbcv" | "nbcv_footprint" => {
                let ask = require(wire.ask_volume, "nbcv", "ask_volume")?;
                let bid = require(wire.bid_volume, "nbcv", "bid_volume")?;
                Payload::OrderFlow(order_flow(ask, bid, &wire))
            }
            "depth" => Payload::Depth {
                side: match wire.side.as_deref() {
                    Some("BID") => BookSide::Bid,
                    Some("ASK") => BookSide::Ask,
                    _ => {
                        return Err(InvalidLine::MissingField {
                            kind: "depth",
                            field: "side",
                        });
                    }
                },
                level: require(wire.lvl, "depth", "lvl")? as u16,
                price: require(wire.price, "depth", "price")?,
                size: require(wire.size, "depth", "size")?,
            },
            "quote" => {
                let bid = require(wire.bid, "quote", "bid")?;
                let ask = require(wire.ask, "quote", "ask")?;
                flagged = bid > ask;
                Payload::Quote {
                    bid,
                    ask,
                    bid_size: wire.bq.unwrap_or(0.0),
                    ask_size: wire.aq.unwrap_or(0.0),
                    seq: as_seq(wire.seq),
                }
            }
            "trade" => Payload::Trade {
                side: match wire.side.as_deref() {
                    Some("BUY") => TradeSide::Buy,
                    Some("SELL") => TradeSide::Sell,
                    _ => TradeSide::Unknown,
                },
                price: require(wire.px, "trade", "px")?,
                volume: require(wire.vol.or(wire.v), "trade", "vol")?,
                seq: as_seq(wire.seq),
            },
            "trade_summary" => Payload::TradeSummary {
                buy_trades: wire.buy_trades.unwrap_or(0.0),
                sell_trades: wire.sell_trades.unwrap_or(0.0),
            },
            "cumulative_delta" => Payload::CumulativeDelta(require(
                wire.close.or(wire.cumulative_delta),
                "cumulative_delta",
                "close",
            )?),
            "atr" => Payload::Atr(require(wire.atr, "atr", "atr")?),
            "vix" | "vix_close" => Payload::Vix(require(
                wire.vix.or(wire.last).or(wire.close),
                "vix",
                "last",
            )?),
            "correlation" => {
                Payload::Correlation(require(wire.cc.or(wire.correlation), "correlation", "cc")?)
            }
            "menthorq_level" => {
                let level_type = wire
                    .level_type
                    .as_deref()
                    .ok_or(InvalidLine::MissingField {
                        kind: "menthorq_level",
                        field: "level_type",
                    })?;
                level_slot = Some((
                    wire.study_id.unwrap_or(0.0) as i64,
                    wire.subgraph.unwrap_or(-1.0) as i64,
                ));
                Payload::Level {
                    level: Level::parse(level_type),
                    price: require(wire.price, "menthorq_level", "price")?,
                }
            }
            _ => Payload::Other,
        }
    };
    let known = !matches!(payload, Payload::Other) || is_known_diagnostic(kind.as_ref());

    Ok(Record {
        kind,
        known,
        t,
        ts,
        sym: wire.sym.map(|s| match s {
            Cow::Borrowed(b) => Cow::Borrowed(clean_symbol(b)),
            Cow::Owned(o) => Cow::Owned(clean_symbol(&o).to_owned()),
        }),
        index: wire.i.or(wire.bar).map(|i| i as i64),
        level_slot,
        payload,
        flagged,
    })
}

/// Tells a GEN2b chart-4 `t` (whole seconds since midnight) from a current one (a serial date),
/// by generation rather than magnitude: serial dates of this century (about 45,000) are below
/// 86,400 too (sierra-format.md §3.3). A serial date lies within days of the file's date; GEN2b
/// prints whole seconds.
fn is_seconds_of_day(t: f64, file_date: Option<NaiveDate>) -> bool {
    if !(0.0..crate::model::SECONDS_PER_DAY).contains(&t) || t.fract() != 0.0 {
        return false;
    }
    match file_date.and_then(|d| d.and_hms_opt(0, 0, 0)) {
        Some(midnight) => (t - crate::model::naive_to_serial(midnight)).abs() > 3.0,
        None => true,
    }
}

/// Diagnostics and older record types that mia recognises but does not use.
fn is_known_diagnostic(kind: &str) -> bool {
    matches!(
        kind,
        "menthorq_diag"
            | "vwap_diag"
            | "pvwap_diag"
            | "nbcv_diag"
            | "nbcv_bind"
            | "nbcv_metrics"
            | "nbcv_orderflow"
            | "vix_diag"
            | "ohlc"
            | "ohlc_graph4"
            | "vwap_current"
            | "numbers_bars_calculated_values_graph4"
            | "hvn_lvn"
            | "vva_previous"
            | "volume_profile"
            | "ts"
            | "vap"
    )
}

fn order_flow(ask: f64, bid: f64, wire: &Wire<'_>) -> OrderFlow {
    let total = wire
        .total_volume
        .or(wire.totalvol)
        .filter(|t| *t > 0.0)
        .unwrap_or(ask + bid);
    let delta = wire.delta.unwrap_or(ask - bid);
    OrderFlow {
        ask_volume: ask,
        bid_volume: bid,
        delta,
        trades: study(wire.trades),
        cumulative_delta: wire.cumulative_delta,
        total_volume: total,
        delta_ratio: wire
            .delta_ratio
            .unwrap_or(if total > 0.0 { delta / total } else { 0.0 }),
        pressure: wire.pressure.map(|p| p.signum() as i8),
    }
}

/// Names the kind of a chart-4 line that has neither `type` nor a file kind (all chart-4 kinds
/// mixed in one `chart_4_<YYYYMMDD>.jsonl`) from its key set (sierra-format.md §2.2.2–2.2.3).
fn chart4_kind_from_keys(w: &Wire<'_>) -> &'static str {
    if w.vwap.is_some() && w.sd1.is_some() {
        "vwap"
    } else if w.pvpoc.is_some() {
        "previous_vp"
    } else if w.psd1.is_some() || (w.pvwap.is_some() && w.ppoc.is_none()) {
        "previous_vwap"
    } else if w.ppoc.is_some() {
        "vva_previous"
    } else if w.poc.is_some() {
        "vva"
    } else if w.hvn.is_some() || w.lvn.is_some() || w.vpoc.is_some() {
        "volume_profile"
    } else if w.askvol.is_some() || w.totalvol.is_some() {
        "nbcv"
    } else if w.cumulative_delta.is_some() {
        "cumulative_delta"
    } else if w.atr.is_some() {
        "atr"
    } else if w.correlation.is_some() {
        "correlation"
    } else if w.o.is_some() && w.c.is_some() {
        "ohlc"
    } else {
        "untyped"
    }
}

/// Chart-4 records without `type`, dispatched on the file kind (sierra-format.md §2.2.2–2.2.3).
fn chart4_payload(kind: &str, wire: &Wire<'_>) -> Result<Payload, InvalidLine> {
    Ok(match kind {
        "vwap" => Payload::ProfileVwap {
            vwap: require(wire.vwap, "vwap", "vwap")?,
            up: [study(wire.sd1), study(wire.sd3), study(wire.sd5)],
            dn: [study(wire.sd2), study(wire.sd4), study(wire.sd6)],
        },
        "vva" => match ValueArea::from_parts(wire.vah, wire.val, wire.poc.or(wire.vpoc)) {
            Some(area) => Payload::ProfileValueArea {
                previous: false,
                area,
            },
            None => Payload::Other,
        },
        "vva_previous" | "previous_vp" => {
            match ValueArea::from_parts(wire.pvah, wire.pval, wire.ppoc.or(wire.pvpoc)) {
                Some(area) => Payload::ProfileValueArea {
                    previous: true,
                    area,
                },
                None => Payload::Other,
            }
        }
        "previous_vwap" => Payload::ProfilePrevVwap {
            pvwap: require(wire.pvwap, "previous_vwap", "pvwap")?,
        },
        "nbcv" => {
            let ask = require(wire.askvol, "nbcv", "askvol")?;
            let bid = require(wire.bidvol, "nbcv", "bidvol")?;
            Payload::OrderFlow(order_flow(ask, bid, wire))
        }
        "cumulative_delta" => Payload::CumulativeDelta(require(
            wire.cumulative_delta,
            "cumulative_delta",
            "cumulative_delta",
        )?),
        "volume_profile" => Payload::VolumeProfile {
            area: ValueArea::from_parts(wire.vah, wire.val, wire.vpoc),
            hvn: study(wire.hvn),
            lvn: study(wire.lvn),
        },
        "atr" => Payload::Atr(require(wire.atr, "atr", "atr")?),
        "correlation" => {
            Payload::Correlation(require(wire.correlation, "correlation", "correlation")?)
        }
        _ => Payload::Other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(chart: u16, kind: Option<&'static str>) -> LineContext<'static> {
        LineContext {
            chart,
            kind,
            file_date: NaiveDate::from_ymd_opt(2025, 9, 19),
            tz: chrono_tz::America::New_York,
        }
    }

    fn parse<'a>(chart: u16, kind: &'static str, line: &'a str) -> Record<'a> {
        parse_line(line, &ctx(chart, Some(kind))).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    #[test]
    fn basedata() {
        let r = parse(
            3,
            "basedata",
            r#"{"t":45919.646528,"sym":"ESZ25_FUT_CME","type":"basedata","i":14022,"o":6498.25000000,"h":6499.50000000,"l":6497.75000000,"c":6499.00000000,"v":1467,"bidvol":655,"askvol":812,"chart":3}"#,
        );
        assert_eq!(r.kind, "basedata");
        assert_eq!(r.index, Some(14022));
        assert_eq!(r.sym.as_deref(), Some("ESZ25_FUT_CME"));
        assert_eq!(r.ts.to_iso_millis(), "2025-09-19T19:31:00.000Z");
        let Payload::Bar(bar) = r.payload else {
            panic!()
        };
        assert_eq!(
            (bar.close, bar.volume, bar.ask_volume),
            (6499.0, 1467.0, 812.0)
        );
    }

    #[test]
    fn quote_and_trade_are_utc_with_seq() {
        let q = parse(
            3,
            "quote",
            r#"{"t":45919.563337,"sym":"ESZ25_FUT_CME","type":"quote","kind":"BIDASK","bid":6498.75000000,"ask":6499.00000000,"bq":14,"aq":9,"seq":48213377,"chart":3}"#,
        );
        assert_eq!(q.seq(), Some(48213377));
        assert_eq!(q.ts.to_iso_millis(), "2025-09-19T13:31:12.317Z");
        assert!(!q.flagged);
        let t = parse(
            3,
            "trade",
            r#"{"t":45919.563338,"sym":"ESZ25_FUT_CME","type":"trade","side":"BUY","px":6499.00000000,"vol":3,"seq":48213378,"tt":2,"chart":3}"#,
        );
        assert!(matches!(
            t.payload,
            Payload::Trade {
                side: TradeSide::Buy,
                price: 6499.0,
                volume: 3.0,
                seq: Some(48213378)
            }
        ));
    }

    #[test]
    fn crossed_quote_and_inverted_value_area_are_flagged() {
        let q = parse(
            3,
            "quote",
            r#"{"t":45919.5,"sym":"ES","type":"quote","kind":"BIDASK","bid":6499.25,"ask":6499.0,"bq":1,"aq":1,"seq":7,"chart":3}"#,
        );
        assert!(q.flagged);
        let v = parse(
            3,
            "vva",
            r#"{"t":45919.5,"sym":"ES","type":"vva","i":1,"vah":6503.25,"val":6494.5,"vpoc":6492.0,"pvah":0,"pval":0,"ppoc":0,"id_curr":1,"id_prev":2,"chart":3}"#,
        );
        assert!(v.flagged);
        let Payload::ValueAreas { current, previous } = v.payload else {
            panic!()
        };
        assert!(!current.unwrap().trusted);
        assert_eq!(previous, None, "zeros mean missing");
    }

    /// Found by `cargo fuzz run parse_line` (fuzz/regressions/parse_line/empty-type-accepted.jsonl):
    /// an empty `type` was accepted as a record of kind "".
    #[test]
    fn an_empty_type_is_an_invalid_line() {
        for (chart, kind) in [
            (3, None),
            (3, Some("basedata")),
            (4, None),
            (4, Some("vwap")),
        ] {
            assert_eq!(
                parse_line(r#"{"t":9,"type":"","":3}"#, &ctx(chart, kind)),
                Err(InvalidLine::EmptyType),
                "chart {chart}, file kind {kind:?}"
            );
        }
    }

    #[test]
    fn chart4_without_type_dispatches_on_file_kind() {
        let r = parse(
            4,
            "vwap",
            r#"{"sym":"ESZ25_FUT_CME","t":45919.645833333,"i":467,"vwap":6491.737305,"sd1":6496.489258,"sd2":6486.985352,"sd3":6501.241211,"sd4":6482.233398,"sd5":6505.993164,"sd6":6477.481445}"#,
        );
        assert_eq!(r.kind, "vwap");
        assert!(
            matches!(r.payload, Payload::ProfileVwap { vwap, up: [Some(u1), _, _], dn: [Some(d1), _, _] } if vwap == 6491.737305 && u1 == 6496.489258 && d1 == 6486.985352)
        );
        let gen2b = parse(
            4,
            "vva",
            r#"{"sym":"ESZ25_FUT_CME","t":55800.000000,"i":467,"poc":6492.000000,"vah":6503.250000,"val":6484.500000}"#,
        );
        assert_eq!(gen2b.ts.to_iso_millis(), "2025-09-19T19:30:00.000Z");
    }

    #[test]
    fn chart4_lines_of_a_per_chart_file_are_dispatched_on_their_keys() {
        let c = LineContext {
            kind: None,
            ..ctx(4, None)
        };
        for (line, want) in [
            (
                r#"{"sym":"ES","t":45919.645833333,"i":467,"vwap":6491.7,"sd1":6496.4,"sd2":6486.9,"sd3":6501.2,"sd4":6482.2,"sd5":6505.9,"sd6":6477.4}"#,
                "vwap",
            ),
            (
                r#"{"sym":"ES","t":45919.645833333,"i":467,"poc":6492.0,"vah":6503.25,"val":6484.5}"#,
                "vva",
            ),
            (
                r#"{"sym":"ES","t":45919.645833333,"i":467,"ppoc":6475.5,"pvah":6488.75,"pval":6461.25}"#,
                "vva_previous",
            ),
            (
                r#"{"sym":"ES","t":45919.645833333,"i":467,"pvpoc":6475.5,"pvah":6488.75,"pval":6461.25,"pvwap":6491.6}"#,
                "previous_vp",
            ),
            (
                r#"{"sym":"ES","t":45919.645833333,"i":467,"pvwap":6491.6,"psd1":6496.4,"psd2":6486.9}"#,
                "previous_vwap",
            ),
            (
                r#"{"sym":"ES","t":45919.645833333,"i":467,"delta":169.0,"askvol":24190.0,"bidvol":24021.0,"trades":11873,"totalvol":48211.0}"#,
                "nbcv",
            ),
            (
                r#"{"sym":"ES","t":45919.645833333,"i":467,"cumulative_delta":-2483.0}"#,
                "cumulative_delta",
            ),
            (
                r#"{"sym":"ES","t":45919.645833333,"i":467,"val":6484.5,"vpoc":6492.0,"vah":6503.25,"hvn":6493.5,"lvn":6479.75}"#,
                "volume_profile",
            ),
            (
                r#"{"sym":"ES","t":45919.645833333,"i":467,"atr":9.1875}"#,
                "atr",
            ),
            (
                r#"{"sym":"ES","t":45919.645833333,"i":467,"correlation":0.93}"#,
                "correlation",
            ),
            (
                r#"{"sym":"ES","t":55800.000000,"i":467,"c":6499.0,"o":6488.5,"h":6503.25,"l":6486.0}"#,
                "ohlc",
            ),
        ] {
            let r = parse_line(line, &c).unwrap();
            assert_eq!(r.kind, want, "{line}");
            assert!(r.known, "{line}");
        }
    }

    #[test]
    fn vix_in_its_three_spellings() {
        for line in [
            r#"{"t":45919.646528,"type":"vix","i":6121,"last":15.420000,"chart":8}"#,
            r#"{"t":45919.646528,"type":"vix","i":6121,"open":15.4,"high":15.45,"low":15.39,"close":15.420000,"volume":0,"chart":8}"#,
            r#"{"t":45919.646528,"sym":"ESZ25_FUT_CME","type":"vix","i":14022,"vix":15.420000,"study":23,"sg":3,"chart":3}"#,
        ] {
            let r = parse_line(line, &ctx(8, Some("vix"))).unwrap();
            assert_eq!(r.payload, Payload::Vix(15.42), "{line}");
        }
    }

    #[test]
    fn menthorq_old_and_new() {
        let new = parse(
            10,
            "menthorq",
            r#"{"t":45919.645833,"sym":"ESZ25_FUT_CME","type":"menthorq_level","level_type":"blind_spot_3","price":6487.8,"subgraph":3,"study_id":3,"i":1403,"chart":10}"#,
        );
        assert_eq!(
            new.payload,
            Payload::Level {
                level: Some(Level::BlindSpot(4)),
                price: 6487.8
            }
        );
        assert_eq!(new.level_slot, Some((3, 3)));
        let old = parse(
            10,
            "menthorq",
            r#"{"t":45919.645833,"sym":"ESZ25_FUT_CME[M]  1 Min  #10","type":"menthorq_level","level_type":"gex_1","price":6500.00,"subgraph":9,"study_id":1,"bar":1403,"chart":10}"#,
        );
        assert_eq!(old.sym.as_deref(), Some("ESZ25_FUT_CME"));
        assert_eq!(old.index, Some(1403));
    }

    #[test]
    fn unknown_types_are_kept_not_fatal() {
        let r = parse(10, "menthorq", r#"{"t":45919.6,"type":"brand_new","x":1}"#);
        assert!(!r.known);
        assert_eq!(r.payload, Payload::Other);
        let diag = parse(
            10,
            "menthorq",
            r#"{"t":45919.6,"type":"menthorq_diag","chart":10,"study":2,"sg":17,"msg":"no_value"}"#,
        );
        assert!(diag.known);
    }

    #[test]
    fn rejects() {
        let c = ctx(3, Some("basedata"));
        for (line, want) in [
            (
                r#"{"t":45919.6,"type":"basedata","i":1,"o":1,"h":2,"l":0.5,"c":nan,"v":1}"#,
                "Json",
            ),
            (
                r#"{"t":45919.6,"type":"basedata","i":1,"o":1,"h":2,"l":0.5,"c":-nan(ind)}"#,
                "Json",
            ),
            (
                r#"{"t":45919.6,"type":"basedata","i":1,"o":1,"h":inf"#,
                "Json",
            ),
            (
                r#"{"type":"basedata","i":1,"o":1,"h":2,"l":0.5,"c":1}"#,
                "NoTime",
            ),
            (
                r#"{"t":45919.6,"type":"basedata","i":1,"o":1,"h":2,"l":0.5}"#,
                "MissingField",
            ),
            (r#"[1,2,3]"#, "Json"),
            (
                r#"{"t":1e300,"type":"basedata","i":1,"o":1,"h":2,"l":0.5,"c":1}"#,
                "BadTime",
            ),
        ] {
            let err = parse_line(line, &c).unwrap_err();
            assert!(format!("{err:?}").starts_with(want), "{line}: {err:?}");
        }
    }
}
