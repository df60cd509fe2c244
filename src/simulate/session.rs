//! The session generator: the market second by second, and the lines each dumper writes.
//!
//! Time advances in simulated seconds. In each second the market produces Time & Sales events
//! (quote changes and trades), then the chart-3 study is "called" once, writing its sections in
//! the order of `MIA_Dumper_G3_Core` (basedata, vwap, vva, pvwap, nbcv, depth, T&S,
//! cumulative_delta, atr, vix, flush). At the end of each minute the VIX bar closes (chart 8),
//! chart 4 updates its forming 30-minute bar and chart 10 writes its correlation and, every 15
//! minutes, its level block.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{Duration, NaiveDateTime, NaiveTime, Timelike};

use super::fmt::{push_fixed, push_i64, push_str, push_u64};
use super::levels::{BLIND_NAMES, GAMMA_NAMES, Levels};
use super::market::{Book, Stream, ValueArea, Vap, VixPath, VwapStats, fresh_size, intensity};
use super::sink::{Key, Outputs, Rec, Validity};
use super::{
    FileManifest, InjectedQuirk, MANIFEST_FORMAT, Manifest, Plan, RealtimeAnchor, SessionSummary,
    SimError, SimOptions,
};
use crate::clock::{Clock, LiveClock, ScaledClock};
use crate::ingest::naming::{Layout, source_path};
use crate::model::{Timestamp, local_to_utc, naive_to_serial, unix_secs_to_serial, utc_to_local};

/// T&S events per second at intensity 1 (the middle of the regular session is 0.6, the open 1.8).
const BASE_RATE: f64 = 10.0;
/// Probability that an event that does not move the price is a trade (else a size change).
const P_TRADE: f64 = 0.45;
/// Price volatility at intensity 1, in ES points per square-root minute (scaled by price).
const SIGMA_POINTS: f64 = 1.8;
/// Mean reversion of the price toward its anchor, per minute.
const KAPPA: f64 = 0.004;
/// Futures points lost per VIX point of scripted spike (ES-scaled).
const POINTS_PER_VIX: f64 = 4.0;
/// Calls after which coalesced records are flushed within a bar (Sierra: every 10 calls or
/// 30 s; with one call a second this gives a few snapshots per bar).
const FLUSH_CALLS: [u32; 3] = [19, 39, 59];
/// Calls without new T&S after which G3 replays its last records (stale rewind).
const STALE_CALLS: u32 = 10;
/// Records G3 re-processes on a stale rewind.
const RING: usize = 1_000;
/// Chart-3 study and subgraph numbers printed in the records (sierra-format.md §2.1).
const CUMDELTA_STUDY: i64 = 32;
const ATR_STUDY: i64 = 45;
const VIX_STUDY: i64 = 23;

/// A coalesced chart-3 record (vwap, vva, nbcv, cumulative_delta, atr, vix).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    Vwap,
    Vva,
    Nbcv,
    CumDelta,
    Atr,
    Vix,
}

impl Slot {
    const ALL: [Slot; 6] = [
        Slot::Vwap,
        Slot::Vva,
        Slot::Nbcv,
        Slot::CumDelta,
        Slot::Atr,
        Slot::Vix,
    ];

    fn rec(self) -> Rec {
        match self {
            Slot::Vwap => Rec::Vwap,
            Slot::Vva => Rec::Vva,
            Slot::Nbcv => Rec::Nbcv,
            Slot::CumDelta => Rec::CumulativeDelta,
            Slot::Atr => Rec::Atr,
            Slot::Vix => Rec::Vix3,
        }
    }
}

/// Buffer of one coalesced record: the state waiting for the next flush and the last line
/// written (the change gate: an unchanged state is never written twice for the same bar).
#[derive(Default)]
struct Coalesced {
    pending: Vec<u8>,
    pending_i: i64,
    has_pending: bool,
    last: Vec<u8>,
}

/// Deliberate variations of a line (quirks).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    Normal,
    VwapZeroBands,
    VvaZeroPrevious,
    VvaInverted,
    NbcvZeroTrades,
    NbcvFootprint,
}

/// The forming 1-minute bar, prices in ticks.
#[derive(Clone, Copy)]
struct Bar {
    i: i64,
    o: i64,
    h: i64,
    l: i64,
    c: i64,
    v: u64,
    bidvol: u64,
    askvol: u64,
    trades: u64,
}

/// The forming 30-minute bar of chart 4.
struct Chart4 {
    i: i64,
    start: Option<NaiveDateTime>,
    t9: Vec<u8>,
    askvol: u64,
    bidvol: u64,
    trades: u64,
    cd_open: Option<i64>,
    /// Session VWAP and σ (points) at the end of the previous 30-minute bar.
    prev: (f64, f64),
    /// Session VWAP and σ at the end of the last minute, which becomes `prev` on a new bar.
    current: (f64, f64),
    last: [Vec<u8>; 8],
}

/// One T&S line waiting for the call's T&S section.
struct TsLine {
    rec: Rec,
    seq: u32,
    buy: bool,
    vol: u32,
    crossed: bool,
    start: usize,
    end: usize,
}

/// The last records of the T&S array, for the stale-rewind replays of quirk 4.
struct Ring {
    entries: Vec<(Rec, u32, bool, u32, Vec<u8>)>,
    head: usize,
}

impl Ring {
    fn push(&mut self, rec: Rec, seq: u32, buy: bool, vol: u32, line: &[u8]) {
        if self.entries.len() < RING {
            self.entries.push((rec, seq, buy, vol, line.to_vec()));
        } else {
            let e = &mut self.entries[self.head];
            e.0 = rec;
            e.1 = seq;
            e.2 = buy;
            e.3 = vol;
            e.4.clear();
            e.4.extend_from_slice(line);
            self.head = (self.head + 1) % RING;
        }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    /// Entry `j` counted from the oldest.
    fn get(&self, j: usize) -> &(Rec, u32, bool, u32, Vec<u8>) {
        let idx = if self.entries.len() < RING {
            j
        } else {
            (self.head + j) % RING
        };
        &self.entries[idx]
    }
}

/// A quirk waiting for its first opportunity at or after a minute.
#[derive(Clone, Copy)]
struct Armed {
    at: u32,
    fired: bool,
}

impl Armed {
    fn new(enabled: bool, minutes: u32, fraction: f64) -> Armed {
        let at = ((f64::from(minutes) * fraction) as u32).min(minutes.saturating_sub(1));
        Armed {
            at,
            fired: !enabled,
        }
    }

    fn ready(&self, minute: u32) -> bool {
        !self.fired && minute >= self.at
    }
}

struct Schedule {
    basedata_nan: Armed,
    c4_inf: Armed,
    vix8_nan: Armed,
    torn_depth: Armed,
    vwap_dup: Armed,
    crossed: [Armed; 3],
    vwap_zero: [Armed; 2],
    vva_zero: Armed,
    inverted_va: Armed,
    nbcv_zero_trades: Armed,
    nbcv_footprint: Armed,
    diag: Armed,
    old_block: Option<u32>,
    one_decimal_recorded: bool,
}

pub(crate) struct Session<'a> {
    opts: &'a SimOptions,
    /// With `realtime`: when each simulated second is due (simulated time against the wall).
    pace: Option<ScaledClock>,
    out: Outputs,
    sym: String,
    tick: f64,
    scale: f64,
    quirks: bool,
    minutes: u32,
    minutes_written: u32,

    rng: Stream,
    lrng: Stream,
    vrng: Stream,
    qrng: Stream,
    line: Vec<u8>,
    tmp: Vec<u8>,
    num: Vec<u8>,

    p0: i64,
    fair: f64,
    anchor: f64,
    shock_offset: f64,
    burst_left: u32,
    burst_drift: f64,
    book: Book,
    depth_written: [[(i64, u32); 10]; 2],
    offsets: Vec<u32>,

    m: u32,
    start: NaiveDateTime,
    bar_t: Vec<u8>,
    bar_utc_us: i64,
    intensity: f64,

    i3_base: i64,
    bar: Bar,
    basedata_last: Option<[i64; 7]>,
    prev_close: i64,
    tr_hist: VecDeque<f64>,

    vwap: VwapStats,
    vap: Vap,
    va: Option<ValueArea>,
    cum_delta: i64,
    summary: SessionSummary,
    seq: u32,
    buy_trades: u64,
    sell_trades: u64,
    buy_vol: u64,
    sell_vol: u64,
    prev_va: ValueArea,
    prev_vwap: (f64, f64),

    slots: [Coalesced; 6],
    ts_lines: Vec<TsLine>,
    ts_bytes: Vec<u8>,
    ring: Ring,
    quiet_calls: u32,

    vix_path: VixPath,
    vix: f64,
    i8_base: i64,

    c4: Chart4,

    levels: Levels,
    i10_base: i64,
    cc: f64,
    near_blind: bool,

    sched: Schedule,
    injected: Vec<InjectedQuirk>,
}

/// Stream ids of the independent random streams.
const STREAM_MARKET: u64 = 1;
const STREAM_LEVELS: u64 = 2;
const STREAM_VIX: u64 = 3;
const STREAM_QUIRKS: u64 = 4;
const STREAM_SETUP: u64 = 5;

fn regime(vix: f64) -> &'static str {
    if vix < 15.0 {
        "low"
    } else if vix < 22.0 {
        "normal"
    } else if vix < 35.0 {
        "high"
    } else {
        "extreme"
    }
}

/// Emulates a value that went through a float32 subgraph (Sierra study arrays are float).
fn f32ish(x: f64) -> f64 {
    f64::from(x as f32)
}

impl<'a> Session<'a> {
    pub(crate) fn new(opts: &'a SimOptions, plan: &Plan) -> Result<Session<'a>, SimError> {
        let tick = plan.spec.tick_size;
        let quirks = opts.quirks;
        let crlf: &[u16] = if quirks { &[3, 8, 10] } else { &[] };
        let mut out = Outputs::open(&opts.out, opts.layout, opts.day, crlf)?;

        let mut setup = Stream::new(opts.seed, STREAM_SETUP);
        let mut rng = Stream::new(opts.seed, STREAM_MARKET);
        let mut lrng = Stream::new(opts.seed, STREAM_LEVELS);
        let mut vrng = Stream::new(opts.seed, STREAM_VIX);
        let qrng = Stream::new(opts.seed, STREAM_QUIRKS);

        let p0 = (plan.start_price / tick).round() as i64;
        let scale = plan.start_price / 6_500.0;
        let pts = |points: f64| (points * scale / tick).round() as i64;
        let ppoc = p0 + pts(setup.range(-6.0, 6.0));
        let prev_va = ValueArea {
            poc: ppoc,
            vah: ppoc + pts(setup.range(7.0, 14.0)).max(1),
            val: ppoc - pts(setup.range(7.0, 14.0)).max(1),
        };
        let prev_vwap = (
            ppoc as f64 * tick + setup.range(-2.0, 2.0) * scale,
            setup.range(7.0, 12.0) * scale,
        );
        let i3_base = setup.int(13_800, 14_200);
        let i4_base = setup.int(420, 520);
        let i8_base = setup.int(6_000, 6_300);
        let i10_base = setup.int(1_300, 1_500);
        let seq0 = setup.int(30_000_000, 60_000_000) as u32;
        let mut tr_hist = VecDeque::with_capacity(14);
        for _ in 0..13 {
            tr_hist.push_back((setup.range(1.5, 3.5) * scale / tick).round().max(1.0) * tick);
        }

        let mut vix_path = VixPath::new(&mut vrng, opts.minutes);
        let vix = vix_path.step(&mut vrng, 0.0, 0.0);
        let levels = Levels::new(&mut lrng, p0, tick, vix);
        let book = Book::new(p0, &mut rng);
        let cc = lrng.range(0.85, 0.95);

        let minutes = opts.minutes;
        let sched = Schedule {
            basedata_nan: Armed::new(quirks, minutes, 0.20),
            c4_inf: Armed::new(quirks, minutes, 0.30),
            vix8_nan: Armed::new(quirks, minutes, 0.40),
            torn_depth: Armed::new(quirks, minutes, 0.50),
            vwap_dup: Armed::new(quirks, minutes, 0.25),
            crossed: [
                Armed::new(quirks, minutes, 0.15),
                Armed::new(quirks, minutes, 0.55),
                Armed::new(quirks, minutes, 0.85),
            ],
            vwap_zero: [
                Armed::new(quirks, minutes, 0.10),
                Armed::new(quirks, minutes, 0.60),
            ],
            vva_zero: Armed::new(quirks, minutes, 0.35),
            inverted_va: Armed::new(quirks, minutes, 0.70),
            nbcv_zero_trades: Armed::new(quirks, minutes, 0.45),
            nbcv_footprint: Armed::new(quirks, minutes, 0.50),
            diag: Armed::new(quirks, minutes, 0.0),
            old_block: quirks.then_some(if minutes > 15 { 1 } else { 0 }),
            one_decimal_recorded: false,
        };

        let mut injected = Vec::new();
        if quirks && opts.layout != Layout::PerChart {
            // Quirk 11: G3 touches every daily file at its first call, including the disabled
            // correlation; G8 HEAD leaves vix_close empty with its default inputs.
            for (chart, kind) in [(3u16, "correlation"), (8, "vix_close")] {
                let path = source_path(&opts.out, opts.layout, chart, kind, opts.day);
                let rel = out.touch_empty(&opts.out, path, chart, kind)?;
                injected.push(InjectedQuirk {
                    quirk: 11,
                    name: "empty_file".into(),
                    spec: "§1.4".into(),
                    path: rel,
                    line: None,
                    count: 0,
                });
            }
        }

        let start = opts.day.and_time(opts.start);
        let summary = SessionSummary {
            first_bar_index: i3_base,
            last_bar_index: i3_base,
            first_seq: seq0 + 1,
            last_seq: seq0,
            vix_open: vix,
            vix_min: vix,
            vix_max: vix,
            vix_close: vix,
            vix_regimes: vec![regime(vix).to_owned()],
            ..SessionSummary::default()
        };

        let pace = opts.realtime.map(|factor| ScaledClock {
            sim_start: local_to_utc(opts.day.and_time(opts.start), opts.tz),
            wall_start: LiveClock.now(),
            factor,
        });
        Ok(Session {
            opts,
            pace,
            out,
            sym: plan.symbol.clone(),
            tick,
            scale,
            quirks,
            minutes,
            minutes_written: 0,
            rng,
            lrng,
            vrng,
            qrng,
            line: Vec::with_capacity(512),
            tmp: Vec::with_capacity(512),
            num: Vec::with_capacity(32),
            p0,
            fair: p0 as f64 + 0.5,
            anchor: p0 as f64 + 0.5,
            shock_offset: 0.0,
            burst_left: 0,
            burst_drift: 0.0,
            book,
            depth_written: [[(0, 0); 10]; 2],
            offsets: Vec::with_capacity(64),
            m: 0,
            start,
            bar_t: Vec::with_capacity(16),
            bar_utc_us: 0,
            intensity: 1.0,
            i3_base,
            bar: Bar {
                i: i3_base,
                o: p0,
                h: p0,
                l: p0,
                c: p0,
                v: 0,
                bidvol: 0,
                askvol: 0,
                trades: 0,
            },
            basedata_last: None,
            prev_close: p0,
            tr_hist,
            vwap: VwapStats::new(p0),
            vap: Vap::new(p0),
            va: None,
            cum_delta: 0,
            summary,
            seq: seq0,
            buy_trades: 0,
            sell_trades: 0,
            buy_vol: 0,
            sell_vol: 0,
            prev_va,
            prev_vwap,
            slots: Default::default(),
            ts_lines: Vec::with_capacity(128),
            ts_bytes: Vec::with_capacity(16 * 1024),
            ring: Ring {
                entries: Vec::new(),
                head: 0,
            },
            quiet_calls: 0,
            vix_path,
            vix,
            i8_base,
            c4: Chart4 {
                i: i4_base - 1,
                start: None,
                t9: Vec::with_capacity(24),
                askvol: 0,
                bidvol: 0,
                trades: 0,
                cd_open: None,
                prev: prev_vwap,
                current: prev_vwap,
                last: Default::default(),
            },
            levels,
            i10_base,
            cc,
            near_blind: false,
            sched,
            injected,
        })
    }

    fn px(&self, ticks: i64) -> f64 {
        ticks as f64 * self.tick
    }

    fn note(&mut self, quirk: u8, name: &str, spec: &str, rec: Rec, line: Option<u64>, count: u64) {
        self.injected.push(InjectedQuirk {
            quirk,
            name: name.to_owned(),
            spec: spec.to_owned(),
            path: self.out.rel_path(rec).to_owned(),
            line,
            count,
        });
    }

    /// Runs the minutes; returns true when stopped early.
    pub(crate) fn run(
        &mut self,
        stop: &AtomicBool,
        progress: &mut dyn FnMut(u32, u32),
    ) -> Result<bool, SimError> {
        for m in 0..self.minutes {
            if stop.load(Ordering::Relaxed) {
                return Ok(true);
            }
            self.minute_start(m);
            for k in 0..60u32 {
                if let Some(pace) = self.pace
                    && !stop.load(Ordering::Relaxed)
                {
                    // Each second's lines are written when the simulated clock reaches that
                    // second: deadlines from one anchor, so pauses never add up to a drift.
                    // Once asked to stop, the minute is finished without pacing.
                    let second = i64::from(m * 60 + k) * 1_000_000;
                    let due =
                        pace.wall_at(Timestamp::from_micros(pace.sim_start.as_micros() + second));
                    let wait = due.as_micros() - LiveClock.now().as_micros();
                    if wait > 0 {
                        self.out.flush()?;
                        std::thread::sleep(std::time::Duration::from_micros(wait as u64));
                    }
                }
                self.second(k)?;
            }
            self.minute_end()?;
            self.minutes_written = m + 1;
            if self.pace.is_some() {
                self.out.flush()?;
            }
            progress(m + 1, self.minutes);
        }
        Ok(false)
    }

    // ----------------------------------------------------------------------------------------
    // Market
    // ----------------------------------------------------------------------------------------

    fn minute_start(&mut self, m: u32) {
        self.m = m;
        let naive = self.start + Duration::minutes(i64::from(m));
        self.bar_t.clear();
        push_fixed(&mut self.bar_t, naive_to_serial(naive), 6);
        let utc = local_to_utc(naive, self.opts.tz);
        self.bar_utc_us = utc.as_micros();
        let ny = utc_to_local(utc, chrono_tz::America::New_York)
            .map(|t| f64::from(t.hour() * 60 + t.minute()))
            .unwrap_or(720.0);
        let shock = self.vix_path.shock_at(f64::from(m));
        self.intensity = intensity(ny) * (1.0 + shock / 10.0);
        if self.burst_left > 0 {
            self.burst_left -= 1;
        } else if self.rng.chance(0.03) {
            self.burst_left = self.rng.int(2, 6) as u32;
            let dir = if self.rng.chance(0.5) { 1.0 } else { -1.0 };
            self.burst_drift = dir * self.rng.range(0.3, 1.2) * self.scale / self.tick / 60.0;
        }
        let c = self.prev_close;
        self.bar = Bar {
            i: self.i3_base + i64::from(m),
            o: c,
            h: c,
            l: c,
            c,
            v: 0,
            bidvol: 0,
            askvol: 0,
            trades: 0,
        };
        self.basedata_last = None;
        self.summary.last_bar_index = self.bar.i;

        // Chart 4: the 30-minute bar that contains this minute.
        let half_hour = NaiveTime::from_hms_opt(naive.hour(), naive.minute() / 30 * 30, 0)
            .unwrap_or(naive.time());
        let start30 = naive.date().and_time(half_hour);
        if self.c4.start != Some(start30) {
            self.c4.start = Some(start30);
            self.c4.i += 1;
            self.c4.t9.clear();
            push_fixed(&mut self.c4.t9, naive_to_serial(start30), 9);
            self.c4.askvol = 0;
            self.c4.bidvol = 0;
            self.c4.trades = 0;
            self.c4.cd_open = None;
            self.c4.prev = self.c4.current;
        }
    }

    fn bursting(&self) -> bool {
        self.burst_left > 0
    }

    /// One simulated second: the market moves, events print, then the study call.
    fn second(&mut self, k: u32) -> Result<(), SimError> {
        let minute = f64::from(self.m) + f64::from(k) / 60.0;
        if k % 15 == 0 {
            let move_pct = (self.px(self.book.bid) / self.px(self.p0) - 1.0) * 100.0;
            self.vix = self.vix_path.step(&mut self.vrng, minute, move_pct);
            let s = &mut self.summary;
            s.vix_min = s.vix_min.min(self.vix);
            s.vix_max = s.vix_max.max(self.vix);
            let r = regime(self.vix);
            if !s.vix_regimes.iter().any(|x| x == r) {
                s.vix_regimes.push(r.to_owned());
            }
        }

        // Fair value (mid, in ticks): OU around a slowly drifting anchor, plus bursts and the
        // scripted VIX spikes, which move price directly.
        let ticks_per_point = self.scale / self.tick;
        let burst = if self.bursting() { 1.8 } else { 1.0 };
        let sigma = SIGMA_POINTS * ticks_per_point * self.intensity.sqrt() * burst / 60f64.sqrt();
        self.anchor += 0.3 * ticks_per_point / 60f64.sqrt() * self.rng.normal();
        let offset = -POINTS_PER_VIX * ticks_per_point * self.vix_path.shock_at(minute);
        let shock_step = offset - self.shock_offset;
        self.shock_offset = offset;
        let target = self.anchor + offset;
        self.fair += KAPPA / 60.0 * (target - self.fair)
            + sigma * self.rng.normal()
            + if self.bursting() {
                self.burst_drift
            } else {
                0.0
            }
            + shock_step;
        self.fair = self.fair.max(2.0);

        self.ts_lines.clear();
        self.ts_bytes.clear();
        let quiet = self.m % 13 == 4 && (20..34).contains(&k);
        if !quiet {
            let lambda = BASE_RATE * self.intensity * if self.bursting() { 2.0 } else { 1.0 };
            let n = self.rng.poisson(lambda);
            self.offsets.clear();
            for _ in 0..n {
                self.offsets.push(self.rng.int(0, 999) as u32);
            }
            self.offsets.sort_unstable();
            for j in 0..self.offsets.len() {
                let ms = self.offsets[j];
                self.event(k, ms);
            }
            self.book.perturb(&mut self.rng, 0.06);
        }
        self.call(k, quiet)
    }

    fn ts_time(&self, k: u32, ms: u32) -> f64 {
        let us = self.bar_utc_us + i64::from(k) * 1_000_000 + i64::from(ms) * 1_000;
        unix_secs_to_serial(us as f64 / 1e6)
    }

    fn trade_volume(&mut self) -> u32 {
        if self.rng.chance(0.04) {
            self.rng.int(10, 20) as u32
        } else {
            let e = -(1.0 - self.rng.unit()).ln() * 1.8;
            (1.0 + e.floor()).min(20.0) as u32
        }
    }

    fn event(&mut self, k: u32, ms: u32) {
        let t = self.ts_time(k, ms);
        let want_bid = (self.fair - 0.5).round() as i64;
        let bid = self.book.bid;
        if want_bid != bid {
            let buy = want_bid > bid;
            let vol = self.trade_volume();
            let px = if buy { self.book.ask() } else { bid };
            self.trade(t, buy, px, vol);
            if buy {
                self.book.shift_up(&mut self.rng);
            } else {
                self.book.shift_down(&mut self.rng);
            }
            self.quote(t);
        } else if self.rng.chance(P_TRADE) {
            let x = self.fair - (bid as f64 + 0.5);
            let buy = self.rng.chance((0.5 + 0.6 * x).clamp(0.1, 0.9));
            let vol = self.trade_volume();
            let px = if buy { self.book.ask() } else { bid };
            self.trade(t, buy, px, vol);
            let side = if buy {
                &mut self.book.asks
            } else {
                &mut self.book.bids
            };
            side[0] = side[0].saturating_sub(vol);
            if side[0] == 0 {
                // The level was taken but fair value has not moved: new orders refill it.
                side[0] = fresh_size(&mut self.rng, 0);
            }
            self.quote(t);
        } else {
            let side = if self.rng.chance(0.5) {
                &mut self.book.bids
            } else {
                &mut self.book.asks
            };
            let mut delta = self.rng.int(-6, 6) as i32;
            if delta == 0 {
                delta = 1;
            }
            let next = (side[0] as i32 + delta).max(1) as u32;
            side[0] = if next == side[0] { next + 1 } else { next };
            self.quote(t);
        }
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.summary.last_seq = self.seq;
        self.seq
    }

    /// Formats a quote line into `ts_bytes`.
    fn push_quote_line(&mut self, t: f64, bid: i64, ask: i64, bq: u32, aq: u32, seq: u32) {
        let start = self.ts_bytes.len();
        let b = &mut self.ts_bytes;
        push_str(b, "{\"t\":");
        push_fixed(b, t, 6);
        push_str(b, ",\"sym\":\"");
        push_str(b, &self.sym);
        push_str(b, "\",\"type\":\"quote\",\"kind\":\"BIDASK\",\"bid\":");
        push_fixed(b, bid as f64 * self.tick, 8);
        push_str(b, ",\"ask\":");
        push_fixed(b, ask as f64 * self.tick, 8);
        push_str(b, ",\"bq\":");
        push_u64(b, u64::from(bq));
        push_str(b, ",\"aq\":");
        push_u64(b, u64::from(aq));
        push_str(b, ",\"seq\":");
        push_u64(b, u64::from(seq));
        push_str(b, ",\"chart\":3}");
        let end = self.ts_bytes.len();
        self.ts_lines.push(TsLine {
            rec: Rec::Quote,
            seq,
            buy: false,
            vol: 0,
            crossed: bid >= ask,
            start,
            end,
        });
    }

    fn quote(&mut self, t: f64) {
        let seq = self.next_seq();
        let (bid, ask) = (self.book.bid, self.book.ask());
        let (bq, aq) = (self.book.bids[0], self.book.asks[0]);
        self.push_quote_line(t, bid, ask, bq, aq, seq);
        for j in 0..self.sched.crossed.len() {
            if self.sched.crossed[j].ready(self.m) {
                // Quirk 9: a crossed quote (bid above ask), as seen 134 times in a real day.
                self.sched.crossed[j].fired = true;
                let seq = self.next_seq();
                self.push_quote_line(t, ask + 1, bid + 1, aq, bq, seq);
                break;
            }
        }
    }

    fn trade(&mut self, t: f64, buy: bool, px: i64, vol: u32) {
        let seq = self.next_seq();
        let start = self.ts_bytes.len();
        let b = &mut self.ts_bytes;
        push_str(b, "{\"t\":");
        push_fixed(b, t, 6);
        push_str(b, ",\"sym\":\"");
        push_str(b, &self.sym);
        push_str(
            b,
            if buy {
                "\",\"type\":\"trade\",\"side\":\"BUY\",\"px\":"
            } else {
                "\",\"type\":\"trade\",\"side\":\"SELL\",\"px\":"
            },
        );
        push_fixed(b, px as f64 * self.tick, 8);
        push_str(b, ",\"vol\":");
        push_u64(b, u64::from(vol));
        push_str(b, ",\"seq\":");
        push_u64(b, u64::from(seq));
        push_str(
            b,
            if buy {
                ",\"tt\":2,\"chart\":3}"
            } else {
                ",\"tt\":1,\"chart\":3}"
            },
        );
        let end = self.ts_bytes.len();
        self.ts_lines.push(TsLine {
            rec: Rec::Trade,
            seq,
            buy,
            vol,
            crossed: false,
            start,
            end,
        });

        // The bar, the session statistics and the order flow.
        let v = u64::from(vol);
        let bar = &mut self.bar;
        if bar.trades == 0 {
            bar.o = px;
            bar.h = px;
            bar.l = px;
        }
        bar.h = bar.h.max(px);
        bar.l = bar.l.min(px);
        bar.c = px;
        bar.v += v;
        bar.trades += 1;
        let signed = if buy {
            bar.askvol += v;
            self.c4.askvol += v;
            v as i64
        } else {
            bar.bidvol += v;
            self.c4.bidvol += v;
            -(v as i64)
        };
        self.c4.trades += 1;
        self.cum_delta += signed;
        if self.c4.cd_open.is_none() {
            self.c4.cd_open = Some(self.cum_delta);
        }
        self.vwap.add(px, v);
        self.vap.add(px, v);
        let s = &mut self.summary;
        let p = px as f64 * self.tick;
        if s.trades == 0 {
            s.open = p;
            s.high = p;
            s.low = p;
        }
        s.high = s.high.max(p);
        s.low = s.low.min(p);
        s.close = p;
        s.trades += 1;
        s.volume += v;
        s.cumulative_delta = self.cum_delta;
        self.count_summary(buy, vol, Some(t), None);
    }

    /// Counts a classified trade for `trade_summary` and queues a summary line every 256
    /// trades. `t` is the trade time, or `t_text` its printed form (for replays).
    fn count_summary(&mut self, buy: bool, vol: u32, t: Option<f64>, t_text: Option<&[u8]>) {
        if buy {
            self.buy_trades += 1;
            self.buy_vol += u64::from(vol);
        } else {
            self.sell_trades += 1;
            self.sell_vol += u64::from(vol);
        }
        if (self.buy_trades + self.sell_trades) % 256 != 0 {
            return;
        }
        let start = self.ts_bytes.len();
        let b = &mut self.ts_bytes;
        push_str(b, "{\"t\":");
        if let Some(text) = t_text {
            b.extend_from_slice(text);
        } else {
            push_fixed(b, t.unwrap_or(0.0), 6);
        }
        push_str(b, ",\"sym\":\"");
        push_str(b, &self.sym);
        push_str(b, "\",\"type\":\"trade_summary\",\"buy_trades\":");
        push_u64(b, self.buy_trades);
        push_str(b, ",\"sell_trades\":");
        push_u64(b, self.sell_trades);
        push_str(b, ",\"buy_vol\":");
        push_u64(b, self.buy_vol);
        push_str(b, ",\"sell_vol\":");
        push_u64(b, self.sell_vol);
        push_str(b, ",\"chart\":3}");
        let end = self.ts_bytes.len();
        self.ts_lines.push(TsLine {
            rec: Rec::TradeSummary,
            seq: 0,
            buy,
            vol,
            crossed: false,
            start,
            end,
        });
    }

    // ----------------------------------------------------------------------------------------
    // Chart 3: the study call
    // ----------------------------------------------------------------------------------------

    fn call(&mut self, k: u32, quiet: bool) -> Result<(), SimError> {
        self.va = self.vap.value_area();
        self.basedata()?;
        self.update_slot(Slot::Vwap);
        self.update_slot(Slot::Vva);
        if k == 0 {
            self.pvwap()?;
        }
        self.update_slot(Slot::Nbcv);
        self.depth()?;
        self.tns(quiet)?;
        self.update_slot(Slot::CumDelta);
        self.update_slot(Slot::Atr);
        self.update_slot(Slot::Vix);
        if FLUSH_CALLS.contains(&k) {
            for slot in Slot::ALL {
                self.flush_slot(slot)?;
            }
        }
        // An approach is entering 5 ticks of a blind spot; leaving takes 10 ticks, so that
        // flickering at the edge is not counted twice.
        let dist = self
            .levels
            .blind
            .iter()
            .map(|&b| (b - self.book.bid).abs().min((b - self.book.ask()).abs()))
            .min()
            .unwrap_or(i64::MAX);
        if dist <= 5 && !self.near_blind {
            self.summary.blind_spot_approaches += 1;
            self.near_blind = true;
        } else if dist > 10 {
            self.near_blind = false;
        }
        Ok(())
    }

    fn head(&self, buf: &mut Vec<u8>, kind: &str) {
        push_str(buf, "{\"t\":");
        buf.extend_from_slice(&self.bar_t);
        push_str(buf, ",\"sym\":\"");
        push_str(buf, &self.sym);
        push_str(buf, "\",\"type\":\"");
        push_str(buf, kind);
        push_str(buf, "\",");
    }

    fn basedata_line(&self, buf: &mut Vec<u8>, nan_close: bool) {
        let bar = &self.bar;
        buf.clear();
        self.head(buf, "basedata");
        push_str(buf, "\"i\":");
        push_i64(buf, bar.i);
        push_str(buf, ",\"o\":");
        push_fixed(buf, self.px(bar.o), 8);
        push_str(buf, ",\"h\":");
        push_fixed(buf, self.px(bar.h), 8);
        push_str(buf, ",\"l\":");
        push_fixed(buf, self.px(bar.l), 8);
        push_str(buf, ",\"c\":");
        if nan_close {
            push_str(buf, "nan");
        } else {
            push_fixed(buf, self.px(bar.c), 8);
        }
        push_str(buf, ",\"v\":");
        push_u64(buf, bar.v);
        push_str(buf, ",\"bidvol\":");
        push_u64(buf, bar.bidvol);
        push_str(buf, ",\"askvol\":");
        push_u64(buf, bar.askvol);
        push_str(buf, ",\"chart\":3}");
    }

    fn basedata(&mut self) -> Result<(), SimError> {
        let b = &self.bar;
        let state = [
            b.o,
            b.h,
            b.l,
            b.c,
            b.v as i64,
            b.bidvol as i64,
            b.askvol as i64,
        ];
        if self.basedata_last == Some(state) {
            return Ok(());
        }
        self.basedata_last = Some(state);
        let mut buf = std::mem::take(&mut self.line);
        if self.sched.basedata_nan.ready(self.m) {
            // Quirk 3: basedata is not NaN-filtered by G3, so a NaN close prints as `nan`.
            self.sched.basedata_nan.fired = true;
            self.basedata_line(&mut buf, true);
            let n = self
                .out
                .write(Rec::Basedata, Key::bar(self.bar.i), Validity::Invalid, &buf)?;
            self.note(3, "invalid_token", "§5.8", Rec::Basedata, Some(n), 1);
        }
        self.basedata_line(&mut buf, false);
        let res = self
            .out
            .write(Rec::Basedata, Key::bar(self.bar.i), Validity::Valid, &buf);
        self.line = buf;
        res.map(|_| ())
    }

    fn pvwap(&mut self) -> Result<(), SimError> {
        let mut buf = std::mem::take(&mut self.line);
        buf.clear();
        let (pv, sd) = self.prev_vwap;
        let prev_end = self.i3_base - 1;
        self.head(&mut buf, "pvwap");
        push_str(&mut buf, "\"i\":");
        push_i64(&mut buf, self.bar.i);
        push_str(&mut buf, ",\"prev_start\":");
        push_i64(&mut buf, (prev_end - 500).max(0));
        push_str(&mut buf, ",\"prev_end\":");
        push_i64(&mut buf, prev_end);
        push_str(&mut buf, ",\"pvwap\":");
        push_fixed(&mut buf, pv, 8);
        push_str(&mut buf, ",\"up1\":");
        push_fixed(&mut buf, pv + 0.5 * sd, 8);
        push_str(&mut buf, ",\"dn1\":");
        push_fixed(&mut buf, pv - 0.5 * sd, 8);
        push_str(&mut buf, ",\"up2\":");
        push_fixed(&mut buf, pv + sd, 8);
        push_str(&mut buf, ",\"dn2\":");
        push_fixed(&mut buf, pv - sd, 8);
        push_str(&mut buf, ",\"chart\":3}");
        let res = self
            .out
            .write(Rec::Pvwap, Key::bar(self.bar.i), Validity::Valid, &buf);
        self.line = buf;
        res.map(|_| ())
    }

    /// Formats a coalesced record for the current state; false when the study has no value yet.
    fn slot_line(&mut self, slot: Slot, variant: Variant, buf: &mut Vec<u8>) -> bool {
        buf.clear();
        let i = self.bar.i;
        match slot {
            Slot::Vwap => {
                let Some((mean, sd)) = self.vwap.mean_sd() else {
                    return false;
                };
                // The documented G3 off-by-one: `v` is the +1σ band and the true VWAP is never
                // written (sierra-format.md §2.1.2).
                let band = |k: f64| ((mean + k * sd).round() as i64) as f64 * self.tick;
                self.head(buf, "vwap");
                push_str(buf, "\"src\":\"study\",\"i\":");
                push_i64(buf, i);
                let zero = variant == Variant::VwapZeroBands;
                for (name, k) in [
                    ("v", 1.0),
                    ("up1", 2.0),
                    ("dn1", -1.0),
                    ("up2", 3.0),
                    ("dn2", -2.0),
                    ("up3", 4.0),
                    ("dn3", -3.0),
                ] {
                    push_str(buf, ",\"");
                    push_str(buf, name);
                    push_str(buf, "\":");
                    let value = if zero && (name == "up3" || name == "dn3") {
                        0.0
                    } else {
                        band(k)
                    };
                    push_fixed(buf, value, 8);
                }
                push_str(buf, ",\"chart\":3}");
            }
            Slot::Vva => {
                let Some(va) = self.va else {
                    return false;
                };
                let (mut vah, mut val, vpoc) = (self.px(va.vah), self.px(va.val), self.px(va.poc));
                let pv = self.prev_va;
                let (mut pvah, mut pval, mut ppoc) =
                    (self.px(pv.vah), self.px(pv.val), self.px(pv.poc));
                match variant {
                    Variant::VvaZeroPrevious => {
                        (pvah, pval, ppoc) = (0.0, 0.0, 0.0);
                    }
                    Variant::VvaInverted => {
                        val = self.px(va.poc + 2);
                        vah = vah.max(val);
                    }
                    _ => {}
                }
                self.head(buf, "vva");
                push_str(buf, "\"i\":");
                push_i64(buf, i);
                for (name, value) in [
                    ("vah", vah),
                    ("val", val),
                    ("vpoc", vpoc),
                    ("pvah", pvah),
                    ("pval", pval),
                    ("ppoc", ppoc),
                ] {
                    push_str(buf, ",\"");
                    push_str(buf, name);
                    push_str(buf, "\":");
                    push_fixed(buf, value, 8);
                }
                push_str(buf, ",\"id_curr\":1,\"id_prev\":2,\"chart\":3}");
            }
            Slot::Nbcv => {
                let ask = self.bar.askvol as i64;
                let bid = self.bar.bidvol as i64;
                let delta = ask - bid;
                let total = ask + bid;
                let trades = if variant == Variant::NbcvZeroTrades {
                    0
                } else {
                    self.bar.trades as i64
                };
                // Sierra keeps percents in float32 subgraphs; the dumper divides by 100.
                let pct = |x: i64| {
                    if total == 0 {
                        0.0
                    } else {
                        f32ish(x as f64 / total as f64 * 100.0) / 100.0
                    }
                };
                let delta_ratio = self.printed6(pct(delta));
                let ask_pct = self.printed6(pct(ask));
                let bid_pct = self.printed6(pct(bid));
                let bid_ask = if ask_pct == 0.0 {
                    0.0
                } else {
                    self.printed6(bid_pct / ask_pct)
                };
                let ask_bid = if bid_pct == 0.0 {
                    0.0
                } else {
                    self.printed6(ask_pct / bid_pct)
                };
                let strong_total = total >= 75;
                let bullish =
                    strong_total && delta > 0 && (delta_ratio.abs() >= 0.075 || ask_bid >= 1.25);
                let bearish =
                    strong_total && delta < 0 && (delta_ratio.abs() >= 0.075 || bid_ask >= 1.25);
                let kind = if variant == Variant::NbcvFootprint {
                    "nbcv_footprint"
                } else {
                    "nbcv"
                };
                self.head(buf, kind);
                push_str(buf, "\"i\":");
                push_i64(buf, i);
                for (name, value) in [
                    ("ask_volume", ask),
                    ("bid_volume", bid),
                    ("delta", delta),
                    ("trades", trades),
                    ("cumulative_delta", self.cum_delta),
                    ("total_volume", total),
                ] {
                    push_str(buf, ",\"");
                    push_str(buf, name);
                    push_str(buf, "\":");
                    push_i64(buf, value);
                }
                for (name, value) in [
                    ("delta_ratio", delta_ratio),
                    ("ask_percent", ask_pct),
                    ("bid_percent", bid_pct),
                    ("bid_ask_ratio", bid_ask),
                    ("ask_bid_ratio", ask_bid),
                ] {
                    push_str(buf, ",\"");
                    push_str(buf, name);
                    push_str(buf, "\":");
                    push_fixed(buf, value, 6);
                }
                push_str(buf, ",\"pressure_bullish\":");
                push_i64(buf, i64::from(bullish));
                push_str(buf, ",\"pressure_bearish\":");
                push_i64(buf, i64::from(bearish));
                push_str(buf, ",\"pressure\":");
                push_i64(buf, i64::from(bullish) - i64::from(bearish));
                push_str(buf, ",\"chart\":3}");
            }
            Slot::CumDelta => {
                self.head(buf, "cumulative_delta");
                push_str(buf, "\"i\":");
                push_i64(buf, i);
                push_str(buf, ",\"close\":");
                push_fixed(buf, self.cum_delta as f64, 6);
                push_str(buf, ",\"study\":");
                push_i64(buf, CUMDELTA_STUDY);
                push_str(buf, ",\"sg\":3,\"chart\":3}");
            }
            Slot::Atr => {
                let bar = &self.bar;
                let tr =
                    (bar.h.max(self.prev_close) - bar.l.min(self.prev_close)) as f64 * self.tick;
                let atr = (self.tr_hist.iter().sum::<f64>() + tr) / (self.tr_hist.len() + 1) as f64;
                self.head(buf, "atr");
                push_str(buf, "\"i\":");
                push_i64(buf, i);
                push_str(buf, ",\"atr\":");
                push_fixed(buf, f32ish(atr), 6);
                push_str(buf, ",\"study\":");
                push_i64(buf, ATR_STUDY);
                push_str(buf, ",\"sg\":0,\"chart\":3}");
            }
            Slot::Vix => {
                self.head(buf, "vix");
                push_str(buf, "\"i\":");
                push_i64(buf, i);
                push_str(buf, ",\"vix\":");
                push_fixed(buf, self.vix, 6);
                push_str(buf, ",\"study\":");
                push_i64(buf, VIX_STUDY);
                push_str(buf, ",\"sg\":3,\"chart\":3}");
            }
        }
        true
    }

    /// The value a reader gets back after `%.6f`, so that derived flags agree with the text.
    fn printed6(&mut self, x: f64) -> f64 {
        self.num.clear();
        push_fixed(&mut self.num, x, 6);
        std::str::from_utf8(&self.num)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(x)
    }

    fn update_slot(&mut self, slot: Slot) {
        let mut buf = std::mem::take(&mut self.tmp);
        if self.slot_line(slot, Variant::Normal, &mut buf) {
            let i = self.bar.i;
            let c = &mut self.slots[slot as usize];
            if buf != c.last {
                c.pending.clear();
                c.pending.extend_from_slice(&buf);
                c.pending_i = i;
                c.has_pending = true;
            } else {
                c.has_pending = false;
            }
        }
        self.tmp = buf;
    }

    /// The quirk variant to apply at this flush, if one is due (and marks it fired).
    fn due_variant(&mut self, slot: Slot) -> Variant {
        let m = self.m;
        let s = &mut self.sched;
        match slot {
            Slot::Vwap => {
                for a in &mut s.vwap_zero {
                    if a.ready(m) {
                        a.fired = true;
                        return Variant::VwapZeroBands;
                    }
                }
            }
            Slot::Vva => {
                if s.vva_zero.ready(m) {
                    s.vva_zero.fired = true;
                    return Variant::VvaZeroPrevious;
                }
                if s.inverted_va.ready(m) {
                    s.inverted_va.fired = true;
                    return Variant::VvaInverted;
                }
            }
            Slot::Nbcv if s.nbcv_zero_trades.ready(m) => {
                s.nbcv_zero_trades.fired = true;
                return Variant::NbcvZeroTrades;
            }
            _ => {}
        }
        Variant::Normal
    }

    fn flush_slot(&mut self, slot: Slot) -> Result<(), SimError> {
        if !self.slots[slot as usize].has_pending {
            return Ok(());
        }
        let rec = slot.rec();
        let variant = self.due_variant(slot);
        let mut buf = std::mem::take(&mut self.tmp);
        let c = &mut self.slots[slot as usize];
        c.has_pending = false;
        let i = c.pending_i;
        if variant == Variant::Normal {
            buf.clear();
            buf.extend_from_slice(&c.pending);
        } else {
            // The pending state is the current state: flushes happen in the call that
            // buffered it.
            self.slot_line(slot, variant, &mut buf);
        }
        let n = self.out.write(rec, Key::bar(i), Validity::Valid, &buf)?;
        let c = &mut self.slots[slot as usize];
        c.last.clear();
        c.last.extend_from_slice(&buf);
        match variant {
            Variant::VwapZeroBands | Variant::VvaZeroPrevious | Variant::NbcvZeroTrades => {
                self.note(10, "zero_sentinel", "§5.9", rec, Some(n), 1);
            }
            Variant::VvaInverted => {
                self.note(12, "inverted_value_area", "§5.13", rec, Some(n), 1);
            }
            Variant::Normal | Variant::NbcvFootprint => {}
        }
        if slot == Slot::Vwap && self.sched.vwap_dup.ready(self.m) {
            // Quirk 5: the same snapshot written twice in a row.
            self.sched.vwap_dup.fired = true;
            let n = self.out.write(rec, Key::bar(i), Validity::Valid, &buf)?;
            self.note(5, "duplicate_snapshot", "§5.6", rec, Some(n), 1);
        }
        if slot == Slot::Nbcv && self.sched.nbcv_footprint.ready(self.m) {
            // Quirk 13: the older type name, same fields.
            self.sched.nbcv_footprint.fired = true;
            self.slot_line(slot, Variant::NbcvFootprint, &mut buf);
            let n = self
                .out
                .write(Rec::NbcvFootprint, Key::bar(i), Validity::Valid, &buf)?;
            self.note(
                13,
                "nbcv_footprint_alias",
                "§2.1.5",
                Rec::NbcvFootprint,
                Some(n),
                1,
            );
        }
        self.tmp = buf;
        Ok(())
    }

    fn depth(&mut self) -> Result<(), SimError> {
        let mut buf = std::mem::take(&mut self.line);
        for side in 0..2 {
            for lvl in 1..=10usize {
                // lvl 1 is the best price; lvl k ≥ 2 is Sierra level k, so the second best
                // never appears (sierra-format.md §2.1.6).
                let level = if lvl == 1 { 0 } else { lvl };
                let (price, size) = if side == 0 {
                    (self.book.bid - level as i64, self.book.bids[level])
                } else {
                    (self.book.ask() + level as i64, self.book.asks[level])
                };
                if price <= 0 || size == 0 || self.depth_written[side][lvl - 1] == (price, size) {
                    continue;
                }
                self.depth_written[side][lvl - 1] = (price, size);
                buf.clear();
                push_str(&mut buf, "{\"t\":");
                buf.extend_from_slice(&self.bar_t);
                push_str(&mut buf, ",\"sym\":\"");
                push_str(&mut buf, &self.sym);
                push_str(
                    &mut buf,
                    if side == 0 {
                        "\",\"type\":\"depth\",\"side\":\"BID\",\"lvl\":"
                    } else {
                        "\",\"type\":\"depth\",\"side\":\"ASK\",\"lvl\":"
                    },
                );
                push_u64(&mut buf, lvl as u64);
                push_str(&mut buf, ",\"price\":");
                push_fixed(&mut buf, self.px(price), 8);
                push_str(&mut buf, ",\"size\":");
                push_u64(&mut buf, u64::from(size));
                push_str(&mut buf, ",\"chart\":3}");
                if self.sched.torn_depth.ready(self.m) {
                    // Quirk 3: a line cut in the middle, then written again whole.
                    self.sched.torn_depth.fired = true;
                    let half = buf.len() / 2;
                    let n =
                        self.out
                            .write(Rec::Depth, Key::NONE, Validity::Invalid, &buf[..half])?;
                    self.note(3, "torn_line", "§5.7", Rec::Depth, Some(n), 1);
                }
                self.out
                    .write(Rec::Depth, Key::NONE, Validity::Valid, &buf)?;
            }
        }
        self.line = buf;
        Ok(())
    }

    /// The T&S section: the records of this second, or a stale-rewind replay after a quiet
    /// stretch (quirk 4).
    fn tns(&mut self, quiet: bool) -> Result<(), SimError> {
        for j in 0..self.ts_lines.len() {
            let l = &self.ts_lines[j];
            let (rec, seq, buy, vol, crossed) = (l.rec, l.seq, l.buy, l.vol, l.crossed);
            let (start, end) = (l.start, l.end);
            let bytes = &self.ts_bytes[start..end];
            let key = if rec == Rec::TradeSummary {
                Key::NONE
            } else {
                Key::Seq(seq)
            };
            let n = self.out.write(rec, key, Validity::Valid, bytes)?;
            if crossed {
                self.note(9, "crossed_quote", "§5.16", rec, Some(n), 1);
            }
            let bytes = &self.ts_bytes[start..end];
            if self.quirks && rec != Rec::TradeSummary {
                self.ring.push(rec, seq, buy, vol, bytes);
            }
        }
        if !self.ts_lines.is_empty() || !quiet {
            self.quiet_calls = 0;
            return Ok(());
        }
        self.quiet_calls += 1;
        if self.quirks && self.quiet_calls == STALE_CALLS && self.ring.len() >= 50 {
            self.replay()?;
        }
        Ok(())
    }

    fn replay(&mut self) -> Result<(), SimError> {
        let n = self.qrng.int(50, self.ring.len().min(RING) as i64) as usize;
        let first = self.ring.len() - n;
        // Each run of consecutive replayed lines in one file becomes one manifest note.
        let mut runs: Vec<(Rec, u64, u64)> = Vec::new();
        for j in first..self.ring.len() {
            self.ts_lines.clear();
            self.ts_bytes.clear();
            let (rec, seq, buy, vol) = {
                let e = self.ring.get(j);
                (e.0, e.1, e.2, e.3)
            };
            let line_no = {
                let e = self.ring.get(j);
                self.out.write(rec, Key::Seq(seq), Validity::Valid, &e.4)?
            };
            let path = self.out.rel_path(rec);
            let run = runs
                .iter_mut()
                .rev()
                .find(|(r, _, _)| self.out.rel_path(*r) == path);
            match run {
                Some((_, start, count)) if *start + *count == line_no => *count += 1,
                _ => runs.push((rec, line_no, 1)),
            }
            if rec == Rec::Trade {
                // Replayed trades are classified again and inflate the summary counters.
                let mut t_text = std::mem::take(&mut self.num);
                t_text.clear();
                let line = &self.ring.get(j).4;
                let end = line.iter().position(|&b| b == b',').unwrap_or(5);
                t_text.extend_from_slice(line.get(5..end).unwrap_or_default());
                self.count_summary(buy, vol, None, Some(&t_text));
                self.num = t_text;
                for l in &self.ts_lines {
                    self.out.write(
                        l.rec,
                        Key::NONE,
                        Validity::Valid,
                        &self.ts_bytes[l.start..l.end],
                    )?;
                }
            }
        }
        self.ts_lines.clear();
        self.ts_bytes.clear();
        for (rec, line, count) in runs {
            self.note(4, "tns_replay", "§5.6", rec, Some(line), count);
        }
        Ok(())
    }

    // ----------------------------------------------------------------------------------------
    // End of minute: charts 8, 4 and 10
    // ----------------------------------------------------------------------------------------

    fn minute_end(&mut self) -> Result<(), SimError> {
        self.chart8()?;
        self.chart4()?;
        self.chart10()?;
        let bar = self.bar;
        let tr = (bar.h.max(self.prev_close) - bar.l.min(self.prev_close)) as f64 * self.tick;
        if self.tr_hist.len() >= 13 {
            self.tr_hist.pop_front();
        }
        self.tr_hist.push_back(tr);
        self.prev_close = bar.c;
        self.summary.vix_close = self.vix;
        Ok(())
    }

    fn chart8(&mut self) -> Result<(), SimError> {
        let mut buf = std::mem::take(&mut self.line);
        let i = self.i8_base + i64::from(self.m);
        let write = |s: &mut Self, buf: &mut Vec<u8>, nan: bool| {
            buf.clear();
            push_str(buf, "{\"t\":");
            buf.extend_from_slice(&s.bar_t);
            push_str(buf, ",\"type\":\"vix\",\"i\":");
            push_i64(buf, i);
            push_str(buf, ",\"last\":");
            if nan {
                push_str(buf, "-nan(ind)");
            } else {
                push_fixed(buf, s.vix, 6);
            }
            push_str(buf, ",\"chart\":8}");
            let validity = if nan {
                Validity::Invalid
            } else {
                Validity::Valid
            };
            s.out.write(Rec::Vix8, Key::bar(i), validity, buf)
        };
        if self.sched.vix8_nan.ready(self.m) {
            // Quirk 3: MSVC prints a NaN as `-nan(ind)`.
            self.sched.vix8_nan.fired = true;
            let n = write(self, &mut buf, true)?;
            self.note(3, "invalid_token", "§5.8", Rec::Vix8, Some(n), 1);
        }
        let res = write(self, &mut buf, false);
        self.line = buf;
        res.map(|_| ())
    }

    fn c4_head(&self, buf: &mut Vec<u8>) {
        buf.clear();
        push_str(buf, "{\"sym\":\"");
        push_str(buf, &self.sym);
        push_str(buf, "\",\"t\":");
        buf.extend_from_slice(&self.c4.t9);
        push_str(buf, ",\"i\":");
        push_i64(buf, self.c4.i);
    }

    fn c4_fields(buf: &mut Vec<u8>, fields: &[(&str, f64)]) {
        for (name, value) in fields {
            push_str(buf, ",\"");
            push_str(buf, name);
            push_str(buf, "\":");
            push_fixed(buf, *value, 6);
        }
        push_str(buf, "}");
    }

    /// Formats the chart-4 line of `rec`; false when the study has no value yet.
    fn c4_line(&self, rec: Rec, buf: &mut Vec<u8>, inf_sd3: bool) -> bool {
        let tick = self.tick;
        let vw = self.vwap.mean_sd().map(|(m, s)| (m * tick, s * tick));
        self.c4_head(buf);
        match rec {
            Rec::C4Vwap => {
                let Some((v, s)) = vw else { return false };
                let mut fields = [
                    ("vwap", f32ish(v)),
                    ("sd1", f32ish(v + s)),
                    ("sd2", f32ish(v - s)),
                    ("sd3", f32ish(v + 2.0 * s)),
                    ("sd4", f32ish(v - 2.0 * s)),
                    ("sd5", f32ish(v + 3.0 * s)),
                    ("sd6", f32ish(v - 3.0 * s)),
                ];
                if inf_sd3 {
                    fields[3].1 = f64::INFINITY;
                }
                Self::c4_fields(buf, &fields);
            }
            Rec::C4Vva => {
                let Some(va) = self.va else { return false };
                Self::c4_fields(
                    buf,
                    &[
                        ("poc", self.px(va.poc)),
                        ("vah", self.px(va.vah)),
                        ("val", self.px(va.val)),
                    ],
                );
            }
            Rec::C4VvaPrevious => {
                let p = self.prev_va;
                Self::c4_fields(
                    buf,
                    &[
                        ("ppoc", self.px(p.poc)),
                        ("pvah", self.px(p.vah)),
                        ("pval", self.px(p.val)),
                    ],
                );
            }
            Rec::C4PreviousVp => {
                let p = self.prev_va;
                Self::c4_fields(
                    buf,
                    &[
                        ("pvpoc", self.px(p.poc)),
                        ("pvah", self.px(p.vah)),
                        ("pval", self.px(p.val)),
                        ("pvwap", f32ish(self.c4.prev.0)),
                    ],
                );
            }
            Rec::C4PreviousVwap => {
                let (v, s) = self.c4.prev;
                Self::c4_fields(
                    buf,
                    &[
                        ("pvwap", f32ish(v)),
                        ("psd1", f32ish(v + s)),
                        ("psd2", f32ish(v - s)),
                    ],
                );
            }
            Rec::C4Nbcv => {
                let (a, b) = (self.c4.askvol as f64, self.c4.bidvol as f64);
                push_str(buf, ",\"delta\":");
                push_fixed(buf, a - b, 6);
                push_str(buf, ",\"askvol\":");
                push_fixed(buf, a, 6);
                push_str(buf, ",\"bidvol\":");
                push_fixed(buf, b, 6);
                push_str(buf, ",\"trades\":");
                push_u64(buf, self.c4.trades);
                push_str(buf, ",\"totalvol\":");
                push_fixed(buf, a + b, 6);
                push_str(buf, "}");
            }
            Rec::C4CumulativeDelta => {
                // G4 HEAD reads subgraph 0, the Open of the cumulative-delta bar.
                let Some(open) = self.c4.cd_open else {
                    return false;
                };
                Self::c4_fields(buf, &[("cumulative_delta", open as f64)]);
            }
            Rec::C4VolumeProfile => {
                let Some(va) = self.va else { return false };
                let (hvn, lvn) = self.vap.nodes(va);
                Self::c4_fields(
                    buf,
                    &[
                        ("val", self.px(va.val)),
                        ("vpoc", self.px(va.poc)),
                        ("vah", self.px(va.vah)),
                        ("hvn", self.px(hvn)),
                        ("lvn", self.px(lvn)),
                    ],
                );
            }
            _ => return false,
        }
        true
    }

    fn chart4(&mut self) -> Result<(), SimError> {
        const KINDS: [Rec; 8] = [
            Rec::C4Vwap,
            Rec::C4Vva,
            Rec::C4VvaPrevious,
            Rec::C4PreviousVp,
            Rec::C4PreviousVwap,
            Rec::C4Nbcv,
            Rec::C4CumulativeDelta,
            Rec::C4VolumeProfile,
        ];
        if let Some((m, s)) = self.vwap.mean_sd() {
            self.c4.current = (m * self.tick, s * self.tick);
        }
        let mut buf = std::mem::take(&mut self.line);
        let i = self.c4.i;
        for (slot, rec) in KINDS.into_iter().enumerate() {
            if rec == Rec::C4Vwap
                && self.sched.c4_inf.ready(self.m)
                && self.c4_line(rec, &mut buf, true)
            {
                // Quirk 3: G4 HEAD does not filter NaN/Inf study values.
                self.sched.c4_inf.fired = true;
                let n = self.out.write(rec, Key::bar(i), Validity::Invalid, &buf)?;
                self.note(3, "invalid_token", "§5.8", rec, Some(n), 1);
            }
            // AutoLoop with a write-if-changed cache per kind and bar: only new payloads.
            if !self.c4_line(rec, &mut buf, false) || buf == self.c4.last[slot] {
                continue;
            }
            self.out.write(rec, Key::bar(i), Validity::Valid, &buf)?;
            self.c4.last[slot].clear();
            self.c4.last[slot].extend_from_slice(&buf);
        }
        self.line = buf;
        Ok(())
    }

    fn chart10(&mut self) -> Result<(), SimError> {
        let i = self.i10_base + i64::from(self.m);
        let mut buf = std::mem::take(&mut self.line);
        if self.m % 15 == 0 {
            let block = self.m / 15;
            if block > 0 {
                let price = self.book.bid;
                self.levels.refresh(&mut self.lrng, price);
            }
            let old = self.sched.old_block == Some(block);
            let mut first = None;
            for (study, names, values) in [
                (1u8, &GAMMA_NAMES[..], self.levels.gamma.to_vec()),
                (3u8, &BLIND_NAMES[..], self.levels.blind.to_vec()),
            ] {
                for (sg, (name, value)) in names.iter().zip(values).enumerate() {
                    buf.clear();
                    push_str(&mut buf, "{\"t\":");
                    buf.extend_from_slice(&self.bar_t);
                    push_str(&mut buf, ",\"sym\":\"");
                    push_str(&mut buf, &self.sym);
                    if old {
                        // Quirk 7: the GEN2 decoration of the chart-10 symbol.
                        push_str(&mut buf, "[M]  1 Min  #10");
                    }
                    push_str(&mut buf, "\",\"type\":\"menthorq_level\",\"level_type\":\"");
                    push_str(&mut buf, name);
                    push_str(&mut buf, "\",\"price\":");
                    // HEAD prints ES prices with %.1f (quirk 6); clean mode keeps the exact
                    // tick, and the old format had %.2f.
                    let decimals = if self.quirks && !old { 1 } else { 2 };
                    push_fixed(&mut buf, self.px(value), decimals);
                    push_str(&mut buf, ",\"subgraph\":");
                    push_u64(&mut buf, sg as u64);
                    push_str(&mut buf, ",\"study_id\":");
                    push_u64(&mut buf, u64::from(study));
                    push_str(&mut buf, if old { ",\"bar\":" } else { ",\"i\":" });
                    push_i64(&mut buf, i);
                    push_str(&mut buf, ",\"chart\":10}");
                    let key = Key::Bar {
                        i: Some(i),
                        sub: Some((study, sg as u8)),
                        alt_sym: old,
                    };
                    let n = self
                        .out
                        .write(Rec::MenthorqLevel, key, Validity::Valid, &buf)?;
                    first.get_or_insert(n);
                }
            }
            if old {
                self.note(
                    7,
                    "old_chart10_symbol",
                    "§5.20",
                    Rec::MenthorqLevel,
                    first,
                    29,
                );
            } else if self.quirks && !self.sched.one_decimal_recorded {
                self.sched.one_decimal_recorded = true;
                self.note(
                    6,
                    "menthorq_one_decimal",
                    "§5.18",
                    Rec::MenthorqLevel,
                    first,
                    29,
                );
            }
            if self.sched.diag.ready(self.m) {
                // Quirk 13: a record type the reader does not know (an older G10 diagnostic).
                self.sched.diag.fired = true;
                buf.clear();
                push_str(&mut buf, "{\"t\":");
                buf.extend_from_slice(&self.bar_t);
                push_str(
                    &mut buf,
                    ",\"type\":\"menthorq_diag\",\"chart\":10,\"study\":2,\"sg\":17,\"msg\":\"no_value\"}",
                );
                let n = self
                    .out
                    .write(Rec::MenthorqDiag, Key::NONE, Validity::Valid, &buf)?;
                self.note(13, "unknown_type", "§5.21", Rec::MenthorqDiag, Some(n), 1);
            }
        }
        // Correlation of ES with NQ: high and slowly wandering.
        self.cc = (self.cc + 0.1 * (0.92 - self.cc) + 0.01 * self.lrng.normal()).clamp(0.5, 0.995);
        buf.clear();
        push_str(&mut buf, "{\"t\":");
        buf.extend_from_slice(&self.bar_t);
        push_str(&mut buf, ",\"sym\":\"");
        push_str(&mut buf, &self.sym);
        push_str(&mut buf, "\",\"type\":\"correlation\",\"cc\":");
        push_fixed(&mut buf, self.cc, 6);
        push_str(&mut buf, ",\"study_id\":4,\"sg\":0,\"i\":");
        push_i64(&mut buf, i);
        push_str(&mut buf, ",\"chart\":10}");
        let res = self
            .out
            .write(Rec::Correlation10, Key::bar(i), Validity::Valid, &buf);
        self.line = buf;
        res.map(|_| ())
    }

    // ----------------------------------------------------------------------------------------
    // End of run
    // ----------------------------------------------------------------------------------------

    pub(crate) fn manifest(&self, complete: bool) -> Manifest {
        let (lines, bytes) = self.out.totals();
        let files: Vec<FileManifest> = self.out.manifests();
        Manifest {
            format: MANIFEST_FORMAT,
            complete,
            seed: self.opts.seed,
            day: self.opts.day.format("%Y-%m-%d").to_string(),
            start: self.opts.start.format("%H:%M:%S").to_string(),
            minutes: self.minutes,
            minutes_written: self.minutes_written,
            layout: self.opts.layout,
            quirks: self.quirks,
            symbol: self.sym.clone(),
            root: self.opts.root.clone(),
            tick_size: self.tick,
            tz: self.opts.tz.name().to_owned(),
            lines,
            bytes,
            files,
            injected: self.injected.clone(),
            session: self.summary.clone(),
            realtime: self.pace.map(|p| RealtimeAnchor {
                factor: p.factor,
                sim_start_us: p.sim_start.as_micros(),
                wall_start_us: p.wall_start.as_micros(),
            }),
        }
    }

    /// Writes the end-of-run quirks, flushes, and returns the final manifest.
    pub(crate) fn finish(&mut self) -> Result<Manifest, SimError> {
        for rec in [
            Rec::C4Vwap,
            Rec::C4Vva,
            Rec::C4VvaPrevious,
            Rec::C4PreviousVp,
            Rec::C4PreviousVwap,
            Rec::C4Nbcv,
            Rec::C4CumulativeDelta,
            Rec::C4VolumeProfile,
        ] {
            // Quirk 8 is how G4 HEAD writes: no `type`, no `chart`, in every mode.
            let path = self.out.rel_path(rec).to_owned();
            if !self.injected.iter().any(|q| q.quirk == 8 && q.path == path) {
                self.note(8, "chart4_without_type", "§5.24", rec, None, 0);
            }
        }
        if self.quirks && self.minutes_written > 0 {
            // Quirk 2: the writer is in the middle of the next quote line.
            let seq = self.seq.wrapping_add(1).max(1);
            let t = self.ts_time(59, 999);
            self.ts_lines.clear();
            self.ts_bytes.clear();
            let (bid, ask) = (self.book.bid, self.book.ask());
            let (bq, aq) = (self.book.bids[0], self.book.asks[0]);
            self.push_quote_line(t, bid, ask, bq, aq, seq);
            let cut = (self.ts_bytes.len() / 2).max(1);
            let fragment = self.ts_bytes[..cut].to_vec();
            self.out.write_partial(Rec::Quote, &fragment)?;
            self.note(2, "partial_last_line", "§5.7", Rec::Quote, None, 0);
        }
        if self.quirks && self.minutes_written > 0 {
            // Quirk 1: every file of charts 3, 8 and 10 has Windows text-mode line endings.
            for rec in Rec::ALL {
                let path = self.out.rel_path(rec).to_owned();
                if self.out.is_crlf(rec)
                    && !self.injected.iter().any(|q| q.quirk == 1 && q.path == path)
                {
                    self.note(1, "crlf", "§5.7", rec, None, 0);
                }
            }
        }
        self.out.flush()?;
        Ok(self.manifest(true))
    }
}
