//! Deterministic simulator of a Sierra Chart session as the current (HEAD) dumpers write it.
//!
//! [`run`] writes the files of charts 3 (1-minute ES with its studies and Time & Sales), 4
//! (30-minute studies), 8 (VIX) and 10 (MenthorQ levels) for one trading day into a data folder,
//! in any of the three layouts, either at once or appended over time, and describes exactly what
//! it wrote in a manifest (`mia_sim_manifest.json`). With [`SimOptions::quirks`] it also injects
//! every real-world defect a reader must survive (sierra-format.md §5). Tests, benchmarks and the
//! demo use it; `docs/simulator.md` is the user-facing description.
//!
//! The same options always give byte-identical files: every random draw comes from a seeded
//! ChaCha stream and no wall-clock time is read.

mod fmt;
mod levels;
mod market;
mod session;
mod sink;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use chrono::{Datelike, Duration, NaiveDate, NaiveTime, Weekday};
use serde::{Deserialize, Serialize};

use crate::ingest::naming::Layout;
use crate::model::ContractSpec;

/// Name of the manifest file written at the root of the output folder.
pub const MANIFEST_FILE: &str = "mia_sim_manifest.json";

/// Version of the manifest format.
pub const MANIFEST_FORMAT: u32 = 1;

/// Longest session accepted, in minutes (two days of 1-minute bars).
pub const MAX_MINUTES: u32 = 2_880;

/// What to simulate and where to write it.
#[derive(Debug, Clone, PartialEq)]
pub struct SimOptions {
    /// Data folder to write into (created if missing).
    pub out: PathBuf,
    /// Trading day; every file name carries this date.
    pub day: NaiveDate,
    /// Start of the first bar, in the chart time zone.
    pub start: NaiveTime,
    /// Number of 1-minute bars.
    pub minutes: u32,
    /// Seed of every random draw.
    pub seed: u64,
    /// File layout.
    pub layout: Layout,
    /// Inject every real-world quirk (see `docs/simulator.md`).
    pub quirks: bool,
    /// `Some(factor)`: append over time, `factor` times faster than real time.
    pub realtime: Option<f64>,
    /// Sierra symbol; `None` gives the front quarterly contract of `root` for `day`.
    pub symbol: Option<String>,
    /// Instrument root (`ES`, `NQ`, `MES`, `MNQ`, `YM`, `RTY`); sets the tick size.
    pub root: String,
    /// Opening price; `None` gives a plausible default for the root.
    pub start_price: Option<f64>,
    /// Chart time zone.
    pub tz: chrono_tz::Tz,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            out: PathBuf::from("demo-data"),
            day: NaiveDate::from_ymd_opt(2025, 9, 19).unwrap_or_default(),
            start: NaiveTime::from_hms_opt(9, 30, 0).unwrap_or_default(),
            minutes: 390,
            seed: 1,
            layout: Layout::Organised,
            quirks: false,
            realtime: None,
            symbol: None,
            root: "ES".to_owned(),
            start_price: None,
            tz: chrono_tz::America::New_York,
        }
    }
}

/// What a run wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct SimReport {
    /// Number of files written (including the empty ones of quirk 11), manifest excluded.
    pub files: usize,
    /// Complete lines written over all files.
    pub lines: u64,
    /// Bytes written over all files.
    pub bytes: u64,
    /// Where the manifest is.
    pub manifest_path: PathBuf,
    /// Minutes actually simulated (less than requested when stopped).
    pub minutes_written: u32,
    /// True when the run ended because `stop` was set.
    pub stopped: bool,
    /// The Sierra symbol used.
    pub symbol: String,
    /// Number of quirk injections recorded in the manifest.
    pub quirks_injected: usize,
}

/// The manifest: an exact description of the files of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Manifest format version ([`MANIFEST_FORMAT`]).
    pub format: u32,
    /// False while the run is still writing (a provisional manifest), true at the end.
    pub complete: bool,
    /// Seed used.
    pub seed: u64,
    /// Trading day, `YYYY-MM-DD`.
    pub day: String,
    /// First bar start in the chart time zone, `HH:MM:SS`.
    pub start: String,
    /// Minutes requested.
    pub minutes: u32,
    /// Minutes actually simulated.
    pub minutes_written: u32,
    /// File layout.
    pub layout: Layout,
    /// Whether quirks were injected.
    pub quirks: bool,
    /// Sierra symbol.
    pub symbol: String,
    /// Instrument root.
    pub root: String,
    /// Tick size of the instrument.
    pub tick_size: f64,
    /// Chart time zone (IANA name).
    pub tz: String,
    /// Complete lines over all files.
    pub lines: u64,
    /// Bytes over all files.
    pub bytes: u64,
    /// Every file written, sorted by path.
    pub files: Vec<FileManifest>,
    /// Every quirk injection, in the order written.
    pub injected: Vec<InjectedQuirk>,
    /// Facts about the simulated market.
    pub session: SessionSummary,
    /// With `--realtime`: how simulated time maps to wall time, so that `mia run --sim-clock`
    /// follows the same clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realtime: Option<RealtimeAnchor>,
}

/// The clock of a realtime run: at wall time `wall_start_us` the simulated time is
/// `sim_start_us` (the first bar's start, UTC microseconds), and it runs `factor` times faster.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RealtimeAnchor {
    /// Simulated seconds per wall second.
    pub factor: f64,
    /// Simulated time at the anchor, UTC microseconds.
    pub sim_start_us: i64,
    /// Wall time at the anchor, UTC microseconds.
    pub wall_start_us: i64,
}

impl RealtimeAnchor {
    /// The clock this anchor describes.
    pub fn clock(&self) -> crate::clock::ScaledClock {
        crate::clock::ScaledClock {
            sim_start: crate::model::Timestamp::from_micros(self.sim_start_us),
            wall_start: crate::model::Timestamp::from_micros(self.wall_start_us),
            factor: self.factor,
        }
    }
}

/// What one file holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileManifest {
    /// Path relative to the output folder, `/`-separated.
    pub path: String,
    /// Chart number.
    pub chart: u16,
    /// File kind (`basedata`, `menthorq`, …); `None` in the per-chart layout.
    pub kind: Option<String>,
    /// Complete (newline-terminated) lines.
    pub lines: u64,
    /// File size in bytes.
    pub bytes: u64,
    /// Sorted 1-based numbers of the lines that are not valid JSON objects.
    pub invalid: Vec<u64>,
    /// Sorted 1-based numbers of the duplicate lines (definition in `docs/simulator.md`).
    pub duplicates: Vec<u64>,
    /// Bytes after the last newline.
    pub partial_tail_bytes: u64,
    /// True when lines end in CRLF.
    pub crlf: bool,
    /// Valid lines per record type (`type` field, or file kind for chart-4 records);
    /// duplicates included.
    pub types: BTreeMap<String, u64>,
}

/// One injected quirk and where it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InjectedQuirk {
    /// Quirk number (1–13, as listed in `docs/simulator.md`).
    pub quirk: u8,
    /// Short name, for example `crossed_quote`.
    pub name: String,
    /// The sierra-format.md section that documents it.
    pub spec: String,
    /// File, relative to the output folder.
    pub path: String,
    /// First 1-based line concerned, `None` for a property of the whole file.
    pub line: Option<u64>,
    /// Number of consecutive lines concerned from `line` (for example a T&S replay).
    pub count: u64,
}

/// Facts about the simulated market, for tests and demos.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SessionSummary {
    /// First traded price.
    pub open: f64,
    /// Highest traded price.
    pub high: f64,
    /// Lowest traded price.
    pub low: f64,
    /// Last traded price.
    pub close: f64,
    /// Contracts traded (replays excluded).
    pub volume: u64,
    /// Trades printed (replays excluded).
    pub trades: u64,
    /// Session cumulative delta at the end.
    pub cumulative_delta: i64,
    /// First chart-3 bar index.
    pub first_bar_index: i64,
    /// Last chart-3 bar index written.
    pub last_bar_index: i64,
    /// First T&S `seq`.
    pub first_seq: u32,
    /// Last T&S `seq` written.
    pub last_seq: u32,
    /// VIX at the first bar.
    pub vix_open: f64,
    /// Lowest VIX value.
    pub vix_min: f64,
    /// Highest VIX value.
    pub vix_max: f64,
    /// VIX at the last bar.
    pub vix_close: f64,
    /// VIX policies reached (`low` < 15, `normal` < 22, `high` < 35, `extreme`), in order of
    /// first occurrence.
    pub vix_regimes: Vec<String>,
    /// Times price came within 5 ticks of a blind spot (entries into the zone).
    pub blind_spot_approaches: u32,
}

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The instrument root has no built-in contract spec.
    #[error("unknown instrument root {0:?} (known: ES, NQ, MES, MNQ, YM, RTY)")]
    UnknownRoot(String),
    /// An option is out of range.
    #[error("invalid simulator option: {0}")]
    InvalidOptions(String),
    /// A chart file exists in a folder that the simulator did not write.
    #[error(
        "refusing to overwrite {path}: the folder has no {MANIFEST_FILE}, so it may hold real Sierra data; use an empty folder"
    )]
    WouldOverwrite {
        /// The existing file.
        path: PathBuf,
    },
    /// Reading or writing a file failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The manifest could not be encoded or decoded.
    #[error("manifest {path}: {source}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
}

impl Manifest {
    /// Reads a manifest written by [`run`].
    pub fn load(path: &Path) -> Result<Manifest, SimError> {
        let bytes = std::fs::read(path).map_err(|source| SimError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|source| SimError::Manifest {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The entry of a file, by its relative path.
    pub fn file(&self, path: &str) -> Option<&FileManifest> {
        self.files.iter().find(|f| f.path == path)
    }
}

/// Returns the default opening price of a root (ES 6500, NQ 23500, …), or `None` if unknown.
pub fn default_start_price(root: &str) -> Option<f64> {
    match root {
        "ES" | "MES" => Some(6_500.0),
        "NQ" | "MNQ" => Some(23_500.0),
        "YM" => Some(46_000.0),
        "RTY" => Some(2_400.0),
        _ => None,
    }
}

/// Returns the Sierra symbol of the front quarterly contract of `root` on `day`, for example
/// `ESZ25_FUT_CME` on 2025-09-19.
///
/// Quarterly contracts (March, June, September, December) expire on the third Friday of the
/// month; volume rolls to the next contract eight days earlier, on the Thursday of the week
/// before, which is when the front month changes here.
pub fn front_month_symbol(root: &str, day: NaiveDate) -> String {
    const CODES: [(u32, char); 4] = [(3, 'H'), (6, 'M'), (9, 'U'), (12, 'Z')];
    let exchange = if root == "YM" { "CBOT" } else { "CME" };
    // A later contract always exists within the same or the next year.
    for year in [day.year(), day.year().saturating_add(1)] {
        for (month, code) in CODES {
            let Some(first) = NaiveDate::from_ymd_opt(year, month, 1) else {
                continue;
            };
            let to_friday = (Weekday::Fri.num_days_from_monday() + 7
                - first.weekday().num_days_from_monday())
                % 7;
            let expiry = first + Duration::days(i64::from(to_friday) + 14);
            let roll = expiry - Duration::days(8);
            if day < roll {
                return format!("{root}{code}{:02}_FUT_{exchange}", year.rem_euclid(100));
            }
        }
    }
    // Only at the very end of chrono's calendar: keep the day's December contract.
    format!("{root}Z{:02}_FUT_{exchange}", day.year().rem_euclid(100))
}

/// Everything derived from the options before anything is written.
pub(crate) struct Plan {
    pub(crate) spec: ContractSpec,
    pub(crate) symbol: String,
    pub(crate) start_price: f64,
}

fn plan(opts: &SimOptions) -> Result<Plan, SimError> {
    let spec = ContractSpec::builtin(&opts.root)
        .ok_or_else(|| SimError::UnknownRoot(opts.root.clone()))?;
    if opts.minutes == 0 || opts.minutes > MAX_MINUTES {
        return Err(SimError::InvalidOptions(format!(
            "minutes must be between 1 and {MAX_MINUTES}, got {}",
            opts.minutes
        )));
    }
    if !(1900..=9999).contains(&opts.day.year()) {
        return Err(SimError::InvalidOptions(format!(
            "day {} must be between the years 1900 and 9999",
            opts.day
        )));
    }
    if let Some(f) = opts.realtime {
        if !f.is_finite() || !(1e-3..=1e9).contains(&f) {
            return Err(SimError::InvalidOptions(format!(
                "realtime factor must be between 0.001 and 1e9, got {f}"
            )));
        }
    }
    let start_price = match opts.start_price {
        Some(p) => p,
        None => default_start_price(&opts.root)
            .ok_or_else(|| SimError::UnknownRoot(opts.root.clone()))?,
    };
    let ticks = start_price / spec.tick_size;
    if !ticks.is_finite() || !(1_000.0..=1e9).contains(&ticks) {
        return Err(SimError::InvalidOptions(format!(
            "start price {start_price} must be between 1000 and 1e9 ticks of {}",
            spec.tick_size
        )));
    }
    let symbol = match &opts.symbol {
        Some(s) => s.clone(),
        None => front_month_symbol(&opts.root, opts.day),
    };
    // The dumpers print the symbol with %s, unescaped: a quote, backslash or control character
    // would make every line invalid JSON, which the manifest could not describe as intended.
    let symbol_ok = !symbol.is_empty()
        && symbol.len() <= 64
        && symbol
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
    if !symbol_ok {
        return Err(SimError::InvalidOptions(format!(
            "symbol {symbol:?} must be 1 to 64 printable ASCII characters without quotes or backslashes"
        )));
    }
    Ok(Plan {
        spec,
        symbol,
        start_price,
    })
}

/// Refuses to write over chart files in a folder that holds no simulator manifest: it could be
/// a real Sierra data folder.
fn check_overwrite(opts: &SimOptions) -> Result<(), SimError> {
    if opts.out.join(MANIFEST_FILE).exists() {
        return Ok(());
    }
    for path in sink::planned_paths(&opts.out, opts.layout, opts.day) {
        if let Ok(meta) = std::fs::metadata(&path) {
            if meta.len() > 0 {
                return Err(SimError::WouldOverwrite { path });
            }
        }
    }
    Ok(())
}

/// Writes the manifest through a temporary file and a rename, so a reader never sees half of it.
fn write_manifest(out: &Path, manifest: &Manifest) -> Result<PathBuf, SimError> {
    let path = out.join(MANIFEST_FILE);
    let tmp = out.join(format!("{MANIFEST_FILE}.tmp"));
    let mut text = serde_json::to_vec_pretty(manifest).map_err(|source| SimError::Manifest {
        path: path.clone(),
        source,
    })?;
    text.push(b'\n');
    std::fs::write(&tmp, &text).map_err(|source| SimError::Io {
        path: tmp.clone(),
        source,
    })?;
    std::fs::rename(&tmp, &path).map_err(|source| SimError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Simulates one session and writes its files and manifest into `opts.out`.
///
/// `stop` set to true makes the run finish the current minute (without realtime pacing), flush,
/// write the manifest and return `Ok` with [`SimReport::stopped`] set. `progress` is called
/// after each simulated minute with the minutes done and the total.
///
/// Existing files of the same day and layout are replaced, but only in a folder that already
/// holds a simulator manifest (or none of those files): a folder with chart files and no
/// manifest is refused with [`SimError::WouldOverwrite`].
pub fn run(
    opts: &SimOptions,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(u32, u32),
) -> Result<SimReport, SimError> {
    let plan = plan(opts)?;
    std::fs::create_dir_all(&opts.out).map_err(|source| SimError::Io {
        path: opts.out.clone(),
        source,
    })?;
    check_overwrite(opts)?;
    let mut session = session::Session::new(opts, &plan)?;
    // A provisional manifest marks the folder as the simulator's from the first line on.
    write_manifest(&opts.out, &session.manifest(false))?;
    let stopped = session.run(stop, progress)?;
    let manifest = session.finish()?;
    let manifest_path = write_manifest(&opts.out, &manifest)?;
    Ok(SimReport {
        files: manifest.files.len(),
        lines: manifest.lines,
        bytes: manifest.bytes,
        manifest_path,
        minutes_written: manifest.minutes_written,
        stopped,
        symbol: manifest.symbol.clone(),
        quirks_injected: manifest.injected.len(),
    })
}
