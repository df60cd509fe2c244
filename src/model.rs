//! Shared vocabulary with no I/O: timestamps, Sierra time conversion, contract specs and the
//! canonical MenthorQ level enum.
//!
//! `ingest` turns JSONL into these types; everything downstream speaks only this vocabulary.

use std::fmt;

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Days from 1899-12-30 (the Sierra/Excel epoch) to 1970-01-01.
pub const SIERRA_UNIX_EPOCH_DAYS: f64 = 25569.0;
/// Seconds in a day.
pub const SECONDS_PER_DAY: f64 = 86_400.0;
const MICROS_PER_SECOND: i64 = 1_000_000;

/// An instant in UTC, in microseconds since the Unix epoch.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// Builds a timestamp from microseconds since the Unix epoch.
    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// Builds a timestamp from whole seconds since the Unix epoch.
    pub const fn from_secs(secs: i64) -> Self {
        Self(secs * MICROS_PER_SECOND)
    }

    /// Returns microseconds since the Unix epoch.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// Returns the time as a chrono UTC date-time, or `None` when out of chrono's range.
    pub fn to_datetime(self) -> Option<DateTime<chrono::Utc>> {
        DateTime::from_timestamp_micros(self.0)
    }

    /// Returns the signed number of seconds from `earlier` to `self`.
    pub fn secs_since(self, earlier: Timestamp) -> f64 {
        (self.0 - earlier.0) as f64 / MICROS_PER_SECOND as f64
    }

    /// Formats as ISO-8601 UTC with milliseconds, for example `2025-09-19T19:31:00.019Z`.
    pub fn to_iso_millis(self) -> String {
        self.to_datetime()
            .map(|dt| dt.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default()
    }

    /// Formats as ISO-8601 UTC with microseconds.
    pub fn to_iso_micros(self) -> String {
        self.to_datetime()
            .map(|dt| dt.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
            .unwrap_or_default()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_iso_micros())
    }
}

/// How a record's `t` must be read (sierra-format.md §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeBase {
    /// Days since 1899-12-30 as a wall time in the chart's time zone (bar records).
    ChartTz,
    /// Days since 1899-12-30 in UTC (Time & Sales records).
    Utc,
    /// Seconds since midnight of the file's date in the chart time zone (chart 4, GEN2b).
    SecondsOfDay,
}

/// Converts a Sierra serial date to seconds since 1970-01-01 in the same (unspecified) zone.
pub fn serial_to_unix_secs(t: f64) -> f64 {
    (t - SIERRA_UNIX_EPOCH_DAYS) * SECONDS_PER_DAY
}

/// Converts seconds since 1970-01-01 to a Sierra serial date (the inverse of
/// [`serial_to_unix_secs`]).
pub fn unix_secs_to_serial(secs: f64) -> f64 {
    secs / SECONDS_PER_DAY + SIERRA_UNIX_EPOCH_DAYS
}

/// Converts a naive wall time to the Sierra serial date that prints it.
pub fn naive_to_serial(naive: NaiveDateTime) -> f64 {
    let micros = naive.and_utc().timestamp_micros();
    unix_secs_to_serial(micros as f64 / MICROS_PER_SECOND as f64)
}

/// Converts a local wall time in `tz` to UTC. In the repeated hour of a DST change the earlier
/// instant is taken; in the skipped hour the wall time is read as if no change had happened.
pub fn local_to_utc(naive: NaiveDateTime, tz: Tz) -> Timestamp {
    let micros = match tz.from_local_datetime(&naive) {
        LocalResult::Single(dt) => dt.timestamp_micros(),
        LocalResult::Ambiguous(early, _) => early.timestamp_micros(),
        LocalResult::None => {
            // A wall time inside the spring-forward gap: shift by the offset in force an hour
            // earlier, which is what Sierra's own arithmetic on SCDateTime does.
            let before = naive - chrono::Duration::hours(1);
            match tz.from_local_datetime(&before) {
                LocalResult::Single(dt) | LocalResult::Ambiguous(dt, _) => {
                    dt.timestamp_micros() + 3_600 * MICROS_PER_SECOND
                }
                LocalResult::None => naive.and_utc().timestamp_micros(),
            }
        }
    };
    Timestamp::from_micros(micros)
}

/// Converts a UTC instant to the wall time in `tz`.
pub fn utc_to_local(ts: Timestamp, tz: Tz) -> Option<NaiveDateTime> {
    ts.to_datetime()
        .map(|dt| dt.with_timezone(&tz).naive_local())
}

/// Resolves a record's `t` to a UTC instant.
///
/// Bar times (chart time zone) are rounded to the nearest second, because `%.6f` days carries up
/// to 43 ms of print error on a value that Sierra keeps on whole seconds (sierra-format.md §3.1).
/// Time & Sales times keep millisecond precision. `file_date` anchors seconds-of-day values.
/// Returns `None` for values that are not finite or out of range.
pub fn resolve_time(
    t: f64,
    base: TimeBase,
    tz: Tz,
    file_date: Option<NaiveDate>,
) -> Option<Timestamp> {
    if !t.is_finite() {
        return None;
    }
    match base {
        TimeBase::Utc => {
            let secs = serial_to_unix_secs(t);
            if !(-1e11..1e11).contains(&secs) {
                return None;
            }
            // Round to the millisecond: finer digits are print noise.
            let millis = (secs * 1_000.0).round() as i64;
            Some(Timestamp::from_micros(millis * 1_000))
        }
        TimeBase::ChartTz => {
            let secs = serial_to_unix_secs(t);
            if !(-1e11..1e11).contains(&secs) {
                return None;
            }
            let naive = DateTime::from_timestamp(secs.round() as i64, 0)?.naive_utc();
            Some(local_to_utc(naive, tz))
        }
        TimeBase::SecondsOfDay => {
            if !(0.0..SECONDS_PER_DAY + 1.0).contains(&t) {
                return None;
            }
            let midnight = file_date?.and_hms_opt(0, 0, 0)?;
            let naive = midnight + chrono::Duration::seconds(t.round() as i64);
            Some(local_to_utc(naive, tz))
        }
    }
}

/// Contract specification of a futures instrument: money is always computed from these.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ContractSpec {
    /// Minimum price increment, in index points.
    pub tick_size: f64,
    /// Dollar value of one tick for one contract.
    pub tick_value: f64,
}

impl ContractSpec {
    /// Returns the built-in spec for a CME equity-index root (`ES`, `NQ`, `MES`, `MNQ`, `YM`,
    /// `RTY`), or `None` for any other root.
    pub fn builtin(root: &str) -> Option<ContractSpec> {
        let (tick_size, tick_value) = match root {
            "ES" => (0.25, 12.50),
            "NQ" => (0.25, 5.00),
            "MES" => (0.25, 1.25),
            "MNQ" => (0.25, 0.50),
            "YM" => (1.0, 5.00),
            "RTY" => (0.1, 5.00),
            _ => return None,
        };
        Some(ContractSpec {
            tick_size,
            tick_value,
        })
    }

    /// Dollar value of one full index point for one contract.
    pub fn point_value(&self) -> f64 {
        self.tick_value / self.tick_size
    }

    /// Rounds a price to the nearest tick.
    pub fn snap(&self, price: f64) -> f64 {
        (price / self.tick_size).round() * self.tick_size
    }

    /// Converts a price distance to ticks (signed, not rounded).
    pub fn ticks(&self, distance: f64) -> f64 {
        distance / self.tick_size
    }
}

/// Returns the root of a Sierra futures symbol: `ESZ25_FUT_CME` gives `ES`, `MNQH6` gives `MNQ`.
///
/// The root is what precedes the month code and year digits. A symbol that does not look like a
/// dated future is returned whole, up to the first `_` or space.
pub fn symbol_root(sym: &str) -> &str {
    let base = sym.split(['_', ' ', '[']).next().unwrap_or(sym);
    let bytes = base.as_bytes();
    let digits = bytes
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 || digits > 2 || bytes.len() < digits + 2 {
        return base;
    }
    let month = bytes[bytes.len() - digits - 1];
    if b"FGHJKMNQUVXZ".contains(&month) {
        &base[..bytes.len() - digits - 1]
    } else {
        base
    }
}

/// Strips the `[M]  1 Min  #10` decoration that older chart-10 dumpers appended to the symbol.
pub fn clean_symbol(sym: &str) -> &str {
    match sym.find('[') {
        Some(idx) => sym[..idx].trim_end(),
        None => sym,
    }
}

/// The canonical MenthorQ level (product.md §5, sierra-format.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Level {
    /// Call resistance: the strike with the largest call gamma.
    CallResistance,
    /// Put support: the strike with the largest put gamma.
    PutSupport,
    /// High volatility level: where dealer gamma flips sign.
    Hvl,
    /// One-day expected move low.
    OneDayMin,
    /// One-day expected move high.
    OneDayMax,
    /// Call resistance of the 0DTE options.
    CallResistance0dte,
    /// Put support of the 0DTE options.
    PutSupport0dte,
    /// High volatility level of the 0DTE options.
    Hvl0dte,
    /// Gamma wall of the 0DTE options.
    GammaWall0dte,
    /// GEX level 1 to 10.
    Gex(u8),
    /// Blind spot 1 to 10.
    BlindSpot(u8),
    /// Swing level 1 to 60.
    Swing(u8),
}

/// The family a level belongs to, as rules and risk group them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LevelFamily {
    /// Call resistance, call resistance 0DTE, gamma wall 0DTE, 1D max.
    Resistance,
    /// Put support, put support 0DTE, HVL, HVL 0DTE, 1D min.
    Support,
    /// GEX 1 to 10.
    Gex,
    /// Blind spots.
    BlindSpot,
    /// Swing levels.
    Swing,
}

impl Level {
    /// Parses a `level_type` string as written by any dumper generation.
    ///
    /// `blind_spot_<n>` and `swing_lvl_<n>` are 0-based in the files (`blind_spot_0` is BL 1), so
    /// `n + 1` is returned. Unknown spellings (`gamma_sg_<n>`, `sg_<n>`) give `None`.
    pub fn parse(level_type: &str) -> Option<Level> {
        let level = match level_type {
            "call_resistance" => Level::CallResistance,
            "put_support" => Level::PutSupport,
            "hvl" => Level::Hvl,
            "1d_min" => Level::OneDayMin,
            "1d_max" => Level::OneDayMax,
            "call_resistance_0dte" => Level::CallResistance0dte,
            "put_support_0dte" => Level::PutSupport0dte,
            "hvl_0dte" => Level::Hvl0dte,
            "gamma_wall_0dte" => Level::GammaWall0dte,
            other => {
                let numbered =
                    |prefix: &str| -> Option<u8> { other.strip_prefix(prefix)?.parse::<u8>().ok() };
                if let Some(n) = numbered("gex_") {
                    return (1..=10).contains(&n).then_some(Level::Gex(n));
                }
                if let Some(n) = numbered("blind_spot_") {
                    return (n <= 9).then_some(Level::BlindSpot(n + 1));
                }
                if let Some(n) = numbered("swing_lvl_") {
                    return (n <= 59).then_some(Level::Swing(n + 1));
                }
                return None;
            }
        };
        Some(level)
    }

    /// Returns the level's family.
    pub fn family(self) -> LevelFamily {
        match self {
            Level::CallResistance
            | Level::CallResistance0dte
            | Level::GammaWall0dte
            | Level::OneDayMax => LevelFamily::Resistance,
            Level::PutSupport
            | Level::PutSupport0dte
            | Level::Hvl
            | Level::Hvl0dte
            | Level::OneDayMin => LevelFamily::Support,
            Level::Gex(_) => LevelFamily::Gex,
            Level::BlindSpot(_) => LevelFamily::BlindSpot,
            Level::Swing(_) => LevelFamily::Swing,
        }
    }

    /// Returns the snake_case name used in journals and rules (`blind_spot_1` is BL 1).
    pub fn name(self) -> String {
        match self {
            Level::CallResistance => "call_resistance".into(),
            Level::PutSupport => "put_support".into(),
            Level::Hvl => "hvl".into(),
            Level::OneDayMin => "one_day_min".into(),
            Level::OneDayMax => "one_day_max".into(),
            Level::CallResistance0dte => "call_resistance_0dte".into(),
            Level::PutSupport0dte => "put_support_0dte".into(),
            Level::Hvl0dte => "hvl_0dte".into(),
            Level::GammaWall0dte => "gamma_wall_0dte".into(),
            Level::Gex(n) => format!("gex_{n}"),
            Level::BlindSpot(n) => format!("blind_spot_{n}"),
            Level::Swing(n) => format!("swing_{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::from_micros(DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros())
    }

    #[test]
    fn worked_examples_of_sierra_format_section_3() {
        // 45919.646528 is 2025-09-19 15:31:00.019 as a wall time; bars round to 15:31:00.
        let ny = chrono_tz::America::New_York;
        let bar = resolve_time(45919.646528, TimeBase::ChartTz, ny, None).unwrap();
        assert_eq!(bar, ts("2025-09-19T19:31:00Z"));
        let trade = resolve_time(45903.584757, TimeBase::Utc, ny, None).unwrap();
        assert_eq!(trade, ts("2025-09-03T14:02:03.005Z"));
        let at_17 = resolve_time(45908.708333, TimeBase::ChartTz, chrono_tz::UTC, None).unwrap();
        assert_eq!(at_17, ts("2025-09-08T17:00:00Z"));
    }

    #[test]
    fn seconds_of_day_need_the_file_date() {
        let ny = chrono_tz::America::New_York;
        let day = NaiveDate::from_ymd_opt(2025, 9, 19);
        let t = resolve_time(55_800.0, TimeBase::SecondsOfDay, ny, day).unwrap();
        assert_eq!(t, ts("2025-09-19T19:30:00Z"));
        assert_eq!(
            resolve_time(55_800.0, TimeBase::SecondsOfDay, ny, None),
            None
        );
        assert_eq!(resolve_time(f64::NAN, TimeBase::Utc, ny, None), None);
    }

    #[test]
    fn serial_round_trip() {
        let naive = NaiveDate::from_ymd_opt(2025, 9, 19)
            .unwrap()
            .and_hms_opt(15, 31, 0)
            .unwrap();
        let serial = naive_to_serial(naive);
        assert!((serial - 45919.646528).abs() < 1e-6, "{serial}");
    }

    #[test]
    fn symbol_roots() {
        assert_eq!(symbol_root("ESZ25_FUT_CME"), "ES");
        assert_eq!(symbol_root("MNQH6"), "MNQ");
        assert_eq!(symbol_root("NQU25_FUT_CME[M]  1 Min  #10"), "NQ");
        assert_eq!(symbol_root("VIX"), "VIX");
        assert_eq!(symbol_root("RTYZ25"), "RTY");
        assert_eq!(
            clean_symbol("ESZ25_FUT_CME[M]  1 Min  #10"),
            "ESZ25_FUT_CME"
        );
        assert_eq!(clean_symbol("ESZ25_FUT_CME"), "ESZ25_FUT_CME");
    }

    #[test]
    fn level_spellings() {
        assert_eq!(Level::parse("blind_spot_0"), Some(Level::BlindSpot(1)));
        assert_eq!(Level::parse("blind_spot_9"), Some(Level::BlindSpot(10)));
        assert_eq!(Level::parse("blind_spot_10"), None);
        assert_eq!(Level::parse("swing_lvl_59"), Some(Level::Swing(60)));
        assert_eq!(Level::parse("gex_10"), Some(Level::Gex(10)));
        assert_eq!(Level::parse("gex_11"), None);
        assert_eq!(Level::parse("1d_max"), Some(Level::OneDayMax));
        assert_eq!(Level::parse("gamma_sg_20"), None);
        assert_eq!(Level::GammaWall0dte.family(), LevelFamily::Resistance);
        assert_eq!(Level::Hvl0dte.family(), LevelFamily::Support);
    }

    #[test]
    fn contract_specs_are_per_instrument() {
        let es = ContractSpec::builtin("ES").unwrap();
        let nq = ContractSpec::builtin("NQ").unwrap();
        assert_eq!(es.point_value(), 50.0);
        assert_eq!(nq.point_value(), 20.0);
        assert_eq!(ContractSpec::builtin("RTY").unwrap().snap(2301.26), 2301.3);
        assert_eq!(es.snap(6487.8), 6487.75);
        assert_eq!(es.snap(6487.7), 6487.75);
    }
}
