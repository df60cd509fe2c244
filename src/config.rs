//! The TOML configuration (`config/mia.toml` is the documented reference).
//!
//! The file is read into a spanned TOML tree and walked section by section, so that one pass
//! reports every unknown key and every invalid value with its key, line and column, instead of
//! stopping at the first. Risk limits (a later section) get no silent defaults; operational knobs
//! do, and the reference file documents each default.
//!
//! `[risk]` is the exception to defaults: it is optional as a whole (ingest, replay and the
//! kill-switch command run without it, and [`Config::risk`] is then `None`), but a `[risk]` table
//! must state every limit, and each configured instrument needs its own
//! `[risk.instruments.<NAME>]` limits. A missing key is reported like an invalid one.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::NaiveTime;
use chrono_tz::Tz;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::execution::ExecutionMode;
use crate::model::ContractSpec;

/// The reference configuration, embedded so that mia runs with no file at all.
pub const REFERENCE: &str = include_str!("../config/mia.toml");

/// One problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Dotted key, for example `ingest.poll_interval_ms`.
    pub key: String,
    /// 1-based line of the offending key or value.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong and what is expected.
    pub message: String,
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{path}: invalid TOML: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// Parser message, with its position.
        message: String,
    },
    /// The file is TOML but some keys or values are wrong; every one is listed.
    #[error("{}", render_issues(path, issues))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem found.
        issues: Vec<ConfigIssue>,
    },
}

fn render_issues(path: &Path, issues: &[ConfigIssue]) -> String {
    let mut out = format!(
        "{} has {} invalid setting(s):",
        path.display(),
        issues.len()
    );
    for issue in issues {
        out.push_str(&format!(
            "\n  {}:{}:{}: {}: {}",
            path.display(),
            issue.line,
            issue.column,
            issue.key,
            issue.message
        ));
    }
    out
}

/// Folders mia reads and writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Paths {
    /// Where the Sierra studies write their chart files.
    pub data_dir: PathBuf,
    /// Where mia writes its journals (unified journal, rejects, decisions).
    pub journal_dir: PathBuf,
    /// Where mia keeps state across restarts (ingest checkpoint, kill switch).
    pub state_dir: PathBuf,
}

/// Which record types of a chart go to the unified journal.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TypeFilter {
    /// When set, only these types are journaled.
    pub include: Option<BTreeSet<String>>,
    /// These types are never journaled.
    pub exclude: BTreeSet<String>,
}

impl TypeFilter {
    /// Returns whether records of `kind` are journaled.
    pub fn allows(&self, kind: &str) -> bool {
        self.include.as_ref().is_none_or(|inc| inc.contains(kind)) && !self.exclude.contains(kind)
    }
}

/// Ingest settings (product.md §3, §4).
#[derive(Debug, Clone, PartialEq)]
pub struct IngestConfig {
    /// Chart numbers to read.
    pub charts: Vec<u16>,
    /// How often file sizes are polled, in milliseconds.
    pub poll_interval_ms: u64,
    /// How often folders are scanned for new files (daily rotation), in milliseconds.
    pub rescan_interval_ms: u64,
    /// Time zone of the Sierra charts, for bar times.
    pub chart_time_zone: Tz,
    /// Whether the chart-3 VWAP field `v` holds the +1σ band (the known dumper bug).
    pub vwap_v_is_plus_one_sigma: bool,
    /// Whether each journal batch is flushed to disk (fsync) before its checkpoint.
    pub fsync: bool,
    /// At most this many bytes are read from one file per poll, to bound memory.
    pub max_read_bytes: usize,
    /// Wake up on the file system's change events as well as at each poll.
    pub watch: bool,
    /// Journal filters per chart.
    pub filters: BTreeMap<u16, TypeFilter>,
}

/// The exchange session.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionConfig {
    /// Exchange time zone.
    pub time_zone: Tz,
    /// Regular session open, exchange time.
    pub open: NaiveTime,
    /// Regular session close, exchange time.
    pub close: NaiveTime,
}

/// Chart numbers of one instrument's Sierra charts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChartMap {
    /// One-minute chart (order flow, VWAP, value area, T&S).
    pub minute: u16,
    /// Thirty-minute profile chart.
    pub profile: u16,
    /// VIX chart.
    pub vix: u16,
    /// MenthorQ levels chart.
    pub menthorq: u16,
}

/// One traded instrument.
#[derive(Debug, Clone, PartialEq)]
pub struct InstrumentConfig {
    /// Name, which is also the symbol root (`ES`, `NQ`, …).
    pub name: String,
    /// Full Sierra symbol, used for routing orders (`ESZ25_FUT_CME`).
    pub symbol: Option<String>,
    /// Data folder of this instrument's Sierra instance; defaults to `paths.data_dir`.
    pub data_dir: Option<PathBuf>,
    /// Its charts.
    pub charts: ChartMap,
    /// Contract specification.
    pub spec: ContractSpec,
    /// Address of the Sierra DTC server of this instrument (`host:port`); live only.
    pub dtc_address: Option<String>,
}

/// Staleness thresholds (product.md §5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StalenessConfig {
    /// One-minute data older than this is stale, in seconds.
    pub minute_secs: u64,
    /// Thirty-minute data older than this is stale, in seconds.
    pub profile_secs: u64,
    /// VIX older than this is stale, in seconds.
    pub vix_secs: u64,
    /// MenthorQ refresh interval by VIX policy `low`/`normal`, `high`, `extreme`, in minutes;
    /// levels older than twice the interval are stale.
    pub menthorq_refresh_minutes: [u64; 3],
}

/// A daily window in which new entries are allowed, exchange time: `start` inclusive, `end`
/// exclusive, Monday to Friday.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryWindow {
    /// First minute of the window.
    pub start: NaiveTime,
    /// End of the window; an entry at exactly this time is refused.
    pub end: NaiveTime,
}

/// Size limits of one instrument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstrumentLimits {
    /// `max_contracts` of the sizing formula (product.md §8).
    pub max_contracts: u32,
    /// Largest absolute position in this instrument, in contracts.
    pub max_position: u32,
}

/// Placement of stops and targets (product.md §8).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StopConfig {
    /// How far beyond the protecting level the stop goes, in ticks.
    pub beyond_level_ticks: u32,
    /// Smallest stop distance, in ticks; also the stop when no level is in range.
    pub min_ticks: u32,
    /// Largest stop distance, in ticks.
    pub max_ticks: u32,
    /// Target distance as a multiple of the stop distance.
    pub reward_ratio: f64,
}

/// Kill-switch triggers (product.md §8). The daily-loss trigger uses [`RiskConfig::max_daily_loss`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KillSwitchConfig {
    /// The order route may be down this long before entries halt, in seconds.
    pub route_down_secs: u64,
    /// More order rejections than this within the window halt trading.
    pub max_rejections: u32,
    /// The rejection window, in seconds.
    pub rejection_window_secs: u64,
    /// More rule errors than this within the window halt entries.
    pub max_rule_errors: u32,
    /// The rule-error window, in seconds.
    pub rule_error_window_secs: u64,
}

/// Risk limits and sizing (product.md §8). Every value is required: there are no defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct RiskConfig {
    /// `sizing_factor` of the sizing formula.
    pub sizing_factor: f64,
    /// Closed trades the Kelly fraction looks back over.
    pub kelly_lookback: u32,
    /// Below this many closed trades the Kelly multiplier is 1.
    pub kelly_min_trades: u32,
    /// The Kelly fraction is multiplied by this.
    pub kelly_scale: f64,
    /// The Kelly multiplier never goes below this.
    pub kelly_floor: f64,
    /// Largest dollar risk of one trade (stop distance × tick value × contracts).
    pub max_risk_per_trade: f64,
    /// Daily loss (realized plus unrealized) at which entries are refused and trading halts, in
    /// dollars.
    pub max_daily_loss: f64,
    /// Entries allowed per day.
    pub max_trades_per_day: u32,
    /// Losses in a row that start a pause.
    pub max_consecutive_losses: u32,
    /// Length of that pause after the last loss, in minutes.
    pub loss_pause_minutes: u64,
    /// No entry for this long after a stop-out, in minutes.
    pub stop_out_cooldown_minutes: u64,
    /// Exchange time zone of the entry windows.
    pub time_zone: Tz,
    /// When entries are allowed.
    pub entry_windows: Vec<EntryWindow>,
    /// Stops and targets.
    pub stop: StopConfig,
    /// Size limits per instrument; every configured instrument has one.
    pub instruments: BTreeMap<String, InstrumentLimits>,
    /// Kill-switch triggers.
    pub kill_switch: KillSwitchConfig,
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Folders.
    pub paths: Paths,
    /// Ingest.
    pub ingest: IngestConfig,
    /// Exchange session.
    pub session: SessionConfig,
    /// Instruments by name.
    pub instruments: BTreeMap<String, InstrumentConfig>,
    /// Staleness thresholds.
    pub staleness: StalenessConfig,
    /// Risk limits; `None` when the file has no `[risk]` table (nothing can be traded then).
    pub risk: Option<RiskConfig>,
    /// Where approved orders go.
    pub execution: ExecutionConfig,
    /// The DTC sessions to Sierra Chart (live execution).
    pub dtc: DtcConfig,
    /// The live and shadow rule sets of `mia run`.
    pub rules: RulesConfig,
    /// The monitor's HTTP server (metrics, status, dashboard).
    pub monitor: MonitorConfig,
    /// Alerts to the log and a webhook.
    pub alerts: AlertsConfig,
}

/// `[rules]`: the rule sets `mia run` evaluates (the command line overrides both folders).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesConfig {
    /// Folder of the live set.
    pub dir: PathBuf,
    /// Folder of the shadow set, evaluated on the same snapshots and never executed.
    pub shadow_dir: Option<PathBuf>,
    /// Quiet time after the last change to a rule file before the set is reloaded, in ms.
    pub reload_debounce_ms: u64,
}

/// `[monitor]`: the HTTP server of `/metrics`, `/status` and the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorConfig {
    /// Serve at all.
    pub enabled: bool,
    /// Address to listen on (loopback by default: the dashboard can engage the kill switch).
    pub address: std::net::SocketAddr,
    /// How many of the latest decisions `/status` and the dashboard show.
    pub recent_decisions: usize,
}

/// `[alerts]`: what goes to the log always, and to a webhook when one is set.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertsConfig {
    /// Webhook URL (Slack or Discord incoming webhook), if any.
    pub webhook_url: Option<String>,
    /// Name of an environment variable holding the webhook URL (it embeds a secret).
    pub webhook_url_env: Option<String>,
    /// At most one alert of each kind per this many seconds (the log gets them all).
    pub cooldown_secs: u64,
    /// Drawdown in dollars from the day's equity peak that raises the drawdown alert.
    pub drawdown_dollars: f64,
    /// How long a webhook POST may take, in seconds.
    pub webhook_timeout_secs: u64,
}

impl AlertsConfig {
    /// The webhook URL: `webhook_url`, else the variable named by `webhook_url_env`.
    ///
    /// # Errors
    ///
    /// A message when `webhook_url_env` names a variable that is not set.
    pub fn webhook(&self) -> Result<Option<String>, String> {
        if let Some(url) = &self.webhook_url {
            return Ok(Some(url.clone()));
        }
        match &self.webhook_url_env {
            None => Ok(None),
            Some(name) => std::env::var(name).map(Some).map_err(|_| {
                format!("alerts.webhook_url_env names {name}, which is not set in the environment")
            }),
        }
    }
}

/// `[execution]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExecutionConfig {
    /// `read-only` (default), `paper` or `live`. Live also needs `--live` on the command line.
    pub mode: crate::execution::ExecutionMode,
    /// Paper fills (also used by replay): commission and slippage.
    pub paper: crate::paper::PaperConfig,
}

/// `[dtc]`: settings shared by the DTC session of every instrument. Each instrument's server
/// address is `instruments.<NAME>.dtc_address`, and its Sierra symbol `instruments.<NAME>.symbol`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtcConfig {
    /// Send the binary encoding request (`true`), or not, for a server preset to JSON.
    pub encoding_request: bool,
    /// Heartbeat interval in seconds; a server silent for twice this is dead.
    pub heartbeat_secs: u64,
    /// Trade account (`Sim1` for Sierra's simulated trading service); empty: the first listed.
    pub trade_account: String,
    /// User name (blank unless the server requires authentication).
    pub username: String,
    /// Name of the environment variable that holds the password (never the password itself).
    pub password_env: Option<String>,
    /// First reconnect delay in milliseconds; it doubles up to `reconnect_max_ms`.
    pub reconnect_initial_ms: u64,
    /// Longest reconnect delay in milliseconds.
    pub reconnect_max_ms: u64,
    /// How long a request may wait for its reply, in seconds.
    pub request_timeout_secs: u64,
}

impl Config {
    /// Returns the embedded reference configuration.
    ///
    /// # Panics
    ///
    /// Never in a released build: a test parses the reference file.
    pub fn reference() -> Config {
        Config::parse(REFERENCE, Path::new("config/mia.toml"))
            .unwrap_or_else(|e| panic!("the embedded reference config is invalid: {e}"))
    }

    /// Reads and validates a configuration file.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when the file cannot be read, is not TOML, or has invalid settings (all
    /// of them are listed).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses and validates configuration text; `path` is only used in messages and to resolve
    /// nothing: relative folders stay relative to the working directory.
    ///
    /// # Errors
    ///
    /// See [`Config::load`].
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let root = DeTable::parse(text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
        let mut r = Reporter {
            text,
            issues: Vec::new(),
        };
        let mut top = Section::new("", root.get_ref(), 0..0);
        let config = read_config(&mut r, &mut top);
        top.finish(&mut r);
        match config {
            Some(config) if r.issues.is_empty() => Ok(config),
            _ => {
                r.issues.sort_by_key(|i| (i.line, i.column));
                Err(ConfigError::Invalid {
                    path: path.to_owned(),
                    issues: r.issues,
                })
            }
        }
    }

    /// Returns the data folder of an instrument.
    pub fn instrument_data_dir<'a>(&'a self, instrument: &'a InstrumentConfig) -> &'a Path {
        instrument
            .data_dir
            .as_deref()
            .unwrap_or(&self.paths.data_dir)
    }
}

struct Reporter<'s> {
    text: &'s str,
    issues: Vec<ConfigIssue>,
}

impl Reporter<'_> {
    fn issue(&mut self, key: &str, span: std::ops::Range<usize>, message: impl Into<String>) {
        let (line, column) = line_column(self.text, span.start);
        self.issues.push(ConfigIssue {
            key: key.to_owned(),
            line,
            column,
            message: message.into(),
        });
    }
}

/// 1-based line and column (in characters) of a byte offset of a TOML text, for messages.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}

struct Section<'t, 'i> {
    path: String,
    table: &'t DeTable<'i>,
    span: std::ops::Range<usize>,
    used: BTreeSet<String>,
}

fn describe(value: &DeValue<'_>) -> String {
    match value {
        DeValue::String(s) => format!("string \"{s}\""),
        DeValue::Integer(i) => format!("integer {i}"),
        DeValue::Float(f) => format!("float {f}"),
        DeValue::Boolean(b) => format!("boolean {b}"),
        DeValue::Datetime(d) => format!("datetime {d}"),
        DeValue::Array(_) => "an array".into(),
        DeValue::Table(_) => "a table".into(),
    }
}

fn int_of(value: &DeValue<'_>) -> Option<i64> {
    let DeValue::Integer(i) = value else {
        return None;
    };
    i64::from_str_radix(i.as_str(), i.radix()).ok()
}

impl<'t, 'i> Section<'t, 'i> {
    fn new(path: &str, table: &'t DeTable<'i>, span: std::ops::Range<usize>) -> Self {
        Self {
            path: path.to_owned(),
            table,
            span,
            used: BTreeSet::new(),
        }
    }

    fn key(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn get(&mut self, key: &str) -> Option<&'t Spanned<DeValue<'i>>> {
        self.used.insert(key.to_owned());
        self.table.get(key)
    }

    fn sub(&mut self, r: &mut Reporter<'_>, key: &str) -> Option<Section<'t, 'i>> {
        let full = self.key(key);
        match self.get(key) {
            None => Some(Section::new(&full, empty_table(), self.span.clone())),
            Some(v) => match v.get_ref() {
                DeValue::Table(t) => Some(Section::new(&full, t, v.span())),
                other => {
                    r.issue(
                        &full,
                        v.span(),
                        format!("expected a table, found {}", describe(other)),
                    );
                    None
                }
            },
        }
    }

    /// Reads a value with `parse`, or `default` when absent. A bad value is reported and `None`
    /// is returned so that reading goes on.
    fn value<T>(
        &mut self,
        r: &mut Reporter<'_>,
        key: &str,
        default: Option<T>,
        expected: &str,
        parse: impl FnOnce(&DeValue<'i>) -> Option<T>,
    ) -> Option<T> {
        let full = self.key(key);
        match self.get(key) {
            None => {
                if default.is_none() {
                    r.issue(
                        &full,
                        self.span.clone(),
                        format!("missing; expected {expected}"),
                    );
                }
                default
            }
            Some(v) => {
                let parsed = parse(v.get_ref());
                if parsed.is_none() {
                    r.issue(
                        &full,
                        v.span(),
                        format!("expected {expected}, found {}", describe(v.get_ref())),
                    );
                }
                parsed
            }
        }
    }

    fn string(&mut self, r: &mut Reporter<'_>, key: &str, default: Option<&str>) -> Option<String> {
        self.value(
            r,
            key,
            default.map(str::to_owned),
            "a string",
            |v| match v {
                DeValue::String(s) => Some(s.to_string()),
                _ => None,
            },
        )
    }

    fn opt_string(&mut self, r: &mut Reporter<'_>, key: &str) -> Option<Option<String>> {
        self.value(r, key, Some(None), "a string", |v| match v {
            DeValue::String(s) => Some(Some(s.to_string())),
            _ => None,
        })
    }

    fn int(
        &mut self,
        r: &mut Reporter<'_>,
        key: &str,
        default: Option<u64>,
        min: u64,
        max: u64,
    ) -> Option<u64> {
        let expected = format!("an integer from {min} to {max}");
        self.value(r, key, default, &expected, |v| {
            int_of(v)
                .and_then(|i| u64::try_from(i).ok())
                .filter(|i| (min..=max).contains(i))
        })
    }

    fn float(
        &mut self,
        r: &mut Reporter<'_>,
        key: &str,
        default: Option<f64>,
        expected: &str,
        ok: impl Fn(f64) -> bool,
    ) -> Option<f64> {
        self.value(r, key, default, expected, |v| {
            let x = match v {
                DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok(),
                DeValue::Integer(_) => int_of(v).map(|i| i as f64),
                _ => None,
            }?;
            ok(x).then_some(x)
        })
    }

    fn boolean(&mut self, r: &mut Reporter<'_>, key: &str, default: bool) -> Option<bool> {
        self.value(r, key, Some(default), "true or false", |v| match v {
            DeValue::Boolean(b) => Some(*b),
            _ => None,
        })
    }

    fn time_zone(&mut self, r: &mut Reporter<'_>, key: &str, default: &str) -> Option<Tz> {
        self.value(
            r,
            key,
            default.parse().ok(),
            "an IANA time zone such as \"America/New_York\"",
            |v| match v {
                DeValue::String(s) => s.parse::<Tz>().ok(),
                _ => None,
            },
        )
    }

    fn clock_time(&mut self, r: &mut Reporter<'_>, key: &str, default: &str) -> Option<NaiveTime> {
        self.value(
            r,
            key,
            NaiveTime::parse_from_str(default, "%H:%M").ok(),
            "a time \"HH:MM\"",
            |v| match v {
                DeValue::String(s) => NaiveTime::parse_from_str(s, "%H:%M").ok(),
                _ => None,
            },
        )
    }

    fn strings(&mut self, r: &mut Reporter<'_>, key: &str) -> Option<Option<BTreeSet<String>>> {
        self.value(r, key, Some(None), "an array of strings", |v| match v {
            DeValue::Array(items) => items
                .iter()
                .map(|item| match item.get_ref() {
                    DeValue::String(s) => Some(s.to_string()),
                    _ => None,
                })
                .collect::<Option<BTreeSet<_>>>()
                .map(Some),
            _ => None,
        })
    }

    /// Checks that `low` ≤ `high` for two keys of this table; when not, reports it at `at`
    /// (one of the two keys) and returns false.
    fn ordered(
        &self,
        r: &mut Reporter<'_>,
        (low_key, low): (&str, Option<u64>),
        (high_key, high): (&str, Option<u64>),
        at: &str,
    ) -> bool {
        let (Some(low), Some(high)) = (low, high) else {
            return true;
        };
        if low <= high {
            return true;
        }
        let span = self.table.get(at).map_or(self.span.clone(), |v| v.span());
        let message = if at == high_key {
            format!("expected at least {low_key} ({low}), found {high}")
        } else {
            format!("expected at most {high_key} ({high}), found {low}")
        };
        r.issue(&self.key(at), span, message);
        false
    }

    fn finish(self, r: &mut Reporter<'_>) {
        for (key, _) in self.table.iter() {
            if !self.used.contains(key.get_ref().as_ref()) {
                let full = self.key(key.get_ref());
                r.issue(
                    &full,
                    key.span(),
                    "unknown key (see config/mia.toml for the reference)",
                );
            }
        }
    }
}

fn empty_table() -> &'static DeTable<'static> {
    static EMPTY: std::sync::OnceLock<DeTable<'static>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(DeTable::new)
}

fn read_config(r: &mut Reporter<'_>, top: &mut Section<'_, '_>) -> Option<Config> {
    let paths = top.sub(r, "paths").and_then(|mut s| {
        let dirs = (
            s.string(r, "data_dir", Some("data")),
            s.string(r, "journal_dir", Some("journal")),
            s.string(r, "state_dir", Some("state")),
        );
        s.finish(r);
        Some(Paths {
            data_dir: dirs.0?.into(),
            journal_dir: dirs.1?.into(),
            state_dir: dirs.2?.into(),
        })
    });
    let ingest = top.sub(r, "ingest").and_then(|s| read_ingest(r, s));
    let session = top.sub(r, "session").and_then(|mut s| {
        let session = SessionConfig {
            time_zone: s.time_zone(r, "time_zone", "America/New_York")?,
            open: s.clock_time(r, "open", "09:30")?,
            close: s.clock_time(r, "close", "16:00")?,
        };
        s.finish(r);
        Some(session)
    });
    let instruments = top
        .sub(r, "instruments")
        .and_then(|s| read_instruments(r, s));
    let staleness = top.sub(r, "staleness").and_then(|mut s| {
        let minute_secs = s.int(r, "minute_secs", Some(30), 1, 86_400);
        let profile_secs = s.int(r, "profile_secs", Some(300), 1, 86_400);
        let vix_secs = s.int(r, "vix_secs", Some(300), 1, 86_400);
        let refresh = s.sub(r, "menthorq_refresh_minutes").and_then(|mut m| {
            let normal = m.int(r, "normal", Some(30), 1, 1_440);
            let high = m.int(r, "high", Some(15), 1, 1_440);
            let extreme = m.int(r, "extreme", Some(5), 1, 1_440);
            m.finish(r);
            Some([normal?, high?, extreme?])
        });
        s.finish(r);
        Some(StalenessConfig {
            minute_secs: minute_secs?,
            profile_secs: profile_secs?,
            vix_secs: vix_secs?,
            menthorq_refresh_minutes: refresh?,
        })
    });
    // An absent [risk] is a configuration that cannot trade; a present one must be complete.
    let risk = match top.table.get("risk") {
        None => Some(None),
        Some(_) => top
            .sub(r, "risk")
            .and_then(|s| read_risk(r, s, instruments.as_ref()))
            .map(Some),
    };
    let execution = top.sub(r, "execution").and_then(|mut s| {
        let mode = s.value(
            r,
            "mode",
            Some(ExecutionMode::ReadOnly),
            "\"read-only\", \"paper\" or \"live\"",
            |v| match v {
                DeValue::String(m) => match m.as_ref() {
                    "read-only" => Some(ExecutionMode::ReadOnly),
                    "paper" => Some(ExecutionMode::Paper),
                    "live" => Some(ExecutionMode::Live),
                    _ => None,
                },
                _ => None,
            },
        );
        let commission = s.float(
            r,
            "commission_per_contract",
            Some(2.25),
            "a dollar amount of 0 or more",
            |x| x >= 0.0 && x.is_finite(),
        );
        let slippage = s.int(r, "slippage_ticks", Some(1), 0, 100);
        s.finish(r);
        Some(ExecutionConfig {
            mode: mode?,
            paper: crate::paper::PaperConfig {
                commission_per_contract: commission?,
                slippage_ticks: u32::try_from(slippage?).ok()?,
            },
        })
    });
    let dtc = top.sub(r, "dtc").and_then(|mut s| {
        let encoding_request = s.boolean(r, "encoding_request", true);
        let heartbeat_secs = s.int(r, "heartbeat_secs", Some(10), 1, 60);
        let trade_account = s.string(r, "trade_account", Some(""));
        let username = s.string(r, "username", Some(""));
        let password_env = s.opt_string(r, "password_env");
        let reconnect_initial_ms = s.int(r, "reconnect_initial_ms", Some(250), 1, 600_000);
        let reconnect_max_ms = s.int(r, "reconnect_max_ms", Some(10_000), 1, 3_600_000);
        let request_timeout_secs = s.int(r, "request_timeout_secs", Some(20), 1, 600);
        let in_order = s.ordered(
            r,
            ("reconnect_initial_ms", reconnect_initial_ms),
            ("reconnect_max_ms", reconnect_max_ms),
            "reconnect_max_ms",
        );
        s.finish(r);
        if !in_order {
            return None;
        }
        Some(DtcConfig {
            encoding_request: encoding_request?,
            heartbeat_secs: heartbeat_secs?,
            trade_account: trade_account?,
            username: username?,
            password_env: password_env?,
            reconnect_initial_ms: reconnect_initial_ms?,
            reconnect_max_ms: reconnect_max_ms?,
            request_timeout_secs: request_timeout_secs?,
        })
    });
    let rules = top.sub(r, "rules").and_then(|mut s| {
        let dir = s.string(r, "dir", Some("rules"));
        let shadow_dir = s.opt_string(r, "shadow_dir");
        let debounce = s.int(r, "reload_debounce_ms", Some(50), 1, 10_000);
        s.finish(r);
        Some(RulesConfig {
            dir: dir?.into(),
            shadow_dir: shadow_dir?.filter(|d| !d.is_empty()).map(PathBuf::from),
            reload_debounce_ms: debounce?,
        })
    });
    let monitor = top.sub(r, "monitor").and_then(|mut s| {
        let enabled = s.boolean(r, "enabled", true);
        let address = s.value(
            r,
            "address",
            "127.0.0.1:9464".parse().ok(),
            "an address such as \"127.0.0.1:9464\"",
            |v| match v {
                DeValue::String(a) => a.parse::<std::net::SocketAddr>().ok(),
                _ => None,
            },
        );
        let recent = s.int(r, "recent_decisions", Some(50), 1, 10_000);
        s.finish(r);
        Some(MonitorConfig {
            enabled: enabled?,
            address: address?,
            recent_decisions: usize::try_from(recent?).ok()?,
        })
    });
    let alerts = top.sub(r, "alerts").and_then(|mut s| {
        let url = s.opt_string(r, "webhook_url");
        let url_env = s.opt_string(r, "webhook_url_env");
        let cooldown = s.int(r, "cooldown_secs", Some(300), 0, 86_400);
        let drawdown = s.float(
            r,
            "drawdown_dollars",
            Some(500.0),
            "a dollar amount above 0",
            |x| x > 0.0 && x.is_finite(),
        );
        let timeout = s.int(r, "webhook_timeout_secs", Some(5), 1, 120);
        let url = url.map(|u| u.filter(|u| !u.is_empty()));
        let url_env = url_env.map(|u| u.filter(|u| !u.is_empty()));
        if let Some(Some(u)) = &url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            let span = s
                .table
                .get("webhook_url")
                .map_or(s.span.clone(), |v| v.span());
            r.issue(
                &s.key("webhook_url"),
                span,
                "expected an http:// or https:// URL",
            );
        }
        if let (Some(Some(_)), Some(Some(_))) = (&url, &url_env) {
            let span = s
                .table
                .get("webhook_url_env")
                .map_or(s.span.clone(), |v| v.span());
            r.issue(
                &s.key("webhook_url_env"),
                span,
                "set webhook_url or webhook_url_env, not both",
            );
        }
        s.finish(r);
        Some(AlertsConfig {
            webhook_url: url?,
            webhook_url_env: url_env?,
            cooldown_secs: cooldown?,
            drawdown_dollars: drawdown?,
            webhook_timeout_secs: timeout?,
        })
    });
    Some(Config {
        paths: paths?,
        ingest: ingest?,
        session: session?,
        instruments: instruments?,
        staleness: staleness?,
        risk: risk?,
        execution: execution?,
        dtc: dtc?,
        rules: rules?,
        monitor: monitor?,
        alerts: alerts?,
    })
}

/// Reads `[risk]`. Every key is required (`default` is always `None`): risk limits have no silent
/// defaults (product.md §13).
fn read_risk(
    r: &mut Reporter<'_>,
    mut s: Section<'_, '_>,
    instruments: Option<&BTreeMap<String, InstrumentConfig>>,
) -> Option<RiskConfig> {
    let positive = |x: f64| x > 0.0 && x.is_finite();
    let sizing_factor = s.float(r, "sizing_factor", None, "a positive number", positive);
    let kelly_lookback = s.int(r, "kelly_lookback", None, 1, 10_000);
    let kelly_min_trades = s.int(r, "kelly_min_trades", None, 1, 10_000);
    let kelly_scale = s.float(r, "kelly_scale", None, "a positive number", positive);
    let kelly_floor = s.float(r, "kelly_floor", None, "a number from 0 to 1", |x| {
        (0.0..=1.0).contains(&x)
    });
    let dollars = "a positive dollar amount";
    let max_risk_per_trade = s.float(r, "max_risk_per_trade", None, dollars, positive);
    let max_daily_loss = s.float(r, "max_daily_loss", None, dollars, positive);
    let max_trades_per_day = s.int(r, "max_trades_per_day", None, 1, 10_000);
    let max_consecutive_losses = s.int(r, "max_consecutive_losses", None, 1, 1_000);
    let loss_pause_minutes = s.int(r, "loss_pause_minutes", None, 0, 10_080);
    let stop_out_cooldown_minutes = s.int(r, "stop_out_cooldown_minutes", None, 0, 10_080);
    let time_zone = s.value(
        r,
        "time_zone",
        None,
        "an IANA time zone such as \"America/New_York\"",
        |v| match v {
            DeValue::String(tz) => tz.parse::<Tz>().ok(),
            _ => None,
        },
    );
    let entry_windows = s.value(
        r,
        "entry_windows",
        None,
        "an array of { start = \"HH:MM\", end = \"HH:MM\" } with start before end",
        |v| match v {
            DeValue::Array(items) if !items.is_empty() => {
                items.iter().map(|i| entry_window(i.get_ref())).collect()
            }
            _ => None,
        },
    );
    let stop = s.sub(r, "stop").and_then(|mut st| {
        let beyond = st.int(r, "beyond_level_ticks", None, 0, 1_000);
        let min = st.int(r, "min_ticks", None, 1, 10_000);
        let max = st.int(r, "max_ticks", None, 1, 10_000);
        let ratio = st.float(r, "reward_ratio", None, "a positive number", positive);
        let in_order = st.ordered(r, ("min_ticks", min), ("max_ticks", max), "max_ticks");
        st.finish(r);
        if !in_order {
            return None;
        }
        Some(StopConfig {
            beyond_level_ticks: u32::try_from(beyond?).ok()?,
            min_ticks: u32::try_from(min?).ok()?,
            max_ticks: u32::try_from(max?).ok()?,
            reward_ratio: ratio?,
        })
    });
    let limits = s
        .sub(r, "instruments")
        .and_then(|is| read_instrument_limits(r, is, instruments));
    let kill_switch = s.sub(r, "kill_switch").and_then(|mut k| {
        let route_down_secs = k.int(r, "route_down_secs", None, 1, 86_400);
        let max_rejections = k.int(r, "max_rejections", None, 0, 100_000);
        let rejection_window_secs = k.int(r, "rejection_window_secs", None, 1, 86_400);
        let max_rule_errors = k.int(r, "max_rule_errors", None, 0, 100_000);
        let rule_error_window_secs = k.int(r, "rule_error_window_secs", None, 1, 86_400);
        k.finish(r);
        Some(KillSwitchConfig {
            route_down_secs: route_down_secs?,
            max_rejections: u32::try_from(max_rejections?).ok()?,
            rejection_window_secs: rejection_window_secs?,
            max_rule_errors: u32::try_from(max_rule_errors?).ok()?,
            rule_error_window_secs: rule_error_window_secs?,
        })
    });
    let kelly_in_order = s.ordered(
        r,
        ("kelly_min_trades", kelly_min_trades),
        ("kelly_lookback", kelly_lookback),
        "kelly_min_trades",
    );
    s.finish(r);
    if !kelly_in_order {
        return None;
    }
    Some(RiskConfig {
        sizing_factor: sizing_factor?,
        kelly_lookback: u32::try_from(kelly_lookback?).ok()?,
        kelly_min_trades: u32::try_from(kelly_min_trades?).ok()?,
        kelly_scale: kelly_scale?,
        kelly_floor: kelly_floor?,
        max_risk_per_trade: max_risk_per_trade?,
        max_daily_loss: max_daily_loss?,
        max_trades_per_day: u32::try_from(max_trades_per_day?).ok()?,
        max_consecutive_losses: u32::try_from(max_consecutive_losses?).ok()?,
        loss_pause_minutes: loss_pause_minutes?,
        stop_out_cooldown_minutes: stop_out_cooldown_minutes?,
        time_zone: time_zone?,
        entry_windows: entry_windows?,
        stop: stop?,
        instruments: limits?,
        kill_switch: kill_switch?,
    })
}

fn entry_window(value: &DeValue<'_>) -> Option<EntryWindow> {
    let DeValue::Table(t) = value else {
        return None;
    };
    if t.len() != 2 {
        return None;
    }
    let time = |key: &str| match t.get(key)?.get_ref() {
        DeValue::String(s) => NaiveTime::parse_from_str(s, "%H:%M").ok(),
        _ => None,
    };
    let window = EntryWindow {
        start: time("start")?,
        end: time("end")?,
    };
    (window.start < window.end).then_some(window)
}

fn read_instrument_limits(
    r: &mut Reporter<'_>,
    mut s: Section<'_, '_>,
    instruments: Option<&BTreeMap<String, InstrumentConfig>>,
) -> Option<BTreeMap<String, InstrumentLimits>> {
    let names: Vec<String> = s
        .table
        .iter()
        .map(|(k, _)| k.get_ref().to_string())
        .collect();
    let mut out = BTreeMap::new();
    let mut ok = true;
    for name in &names {
        let Some(mut inst) = s.sub(r, name) else {
            ok = false;
            continue;
        };
        if instruments.is_some_and(|known| !known.contains_key(name)) {
            let span = s
                .table
                .get(name.as_str())
                .map_or(s.span.clone(), |v| v.span());
            r.issue(&s.key(name), span, "no such instrument in [instruments]");
            ok = false;
        }
        let max_contracts = inst.int(r, "max_contracts", None, 1, 1_000);
        let max_position = inst.int(r, "max_position", None, 1, 1_000);
        inst.finish(r);
        match (max_contracts, max_position) {
            (Some(c), Some(p)) => {
                out.insert(
                    name.clone(),
                    InstrumentLimits {
                        max_contracts: c as u32,
                        max_position: p as u32,
                    },
                );
            }
            _ => ok = false,
        }
    }
    // Each traded instrument states its own limits: an NQ contract is not an ES contract.
    for known in instruments.into_iter().flat_map(|i| i.keys()) {
        if !names.contains(known) {
            r.issue(
                &s.key(known),
                s.span.clone(),
                "missing; expected a table with max_contracts and max_position for this instrument",
            );
            ok = false;
        }
    }
    s.finish(r);
    ok.then_some(out)
}

fn read_ingest(r: &mut Reporter<'_>, mut s: Section<'_, '_>) -> Option<IngestConfig> {
    let charts = s.value(
        r,
        "charts",
        Some(vec![3, 4, 8, 10]),
        "an array of chart numbers",
        |v| match v {
            DeValue::Array(items) if !items.is_empty() => items
                .iter()
                .map(|i| int_of(i.get_ref()).and_then(|n| u16::try_from(n).ok()))
                .collect::<Option<Vec<u16>>>(),
            _ => None,
        },
    );
    let poll_interval_ms = s.int(r, "poll_interval_ms", Some(100), 1, 60_000);
    let rescan_interval_ms = s.int(r, "rescan_interval_ms", Some(1_000), 1, 3_600_000);
    let chart_time_zone = s.time_zone(r, "chart_time_zone", "America/New_York");
    let vwap_bug = s.boolean(r, "vwap_v_is_plus_one_sigma", true);
    let fsync = s.boolean(r, "fsync", true);
    let watch = s.boolean(r, "watch", true);
    let max_read_bytes = s
        .int(r, "max_read_mib", Some(16), 1, 4_096)
        .map(|m| (m as usize) << 20);
    let mut filters = BTreeMap::new();
    let mut filters_ok = true;
    if let Some(filter_section) = s.sub(r, "filters") {
        let mut fs = filter_section;
        let keys: Vec<String> = fs
            .table
            .iter()
            .map(|(k, _)| k.get_ref().to_string())
            .collect();
        for key in keys {
            let Some(value) = fs.get(&key) else { continue };
            let Ok(chart) = key.parse::<u16>() else {
                r.issue(
                    &fs.key(&key),
                    value.span(),
                    "expected a chart number as the table name, such as [ingest.filters.3]",
                );
                filters_ok = false;
                continue;
            };
            let Some(mut cs) = fs.sub(r, &key) else {
                filters_ok = false;
                continue;
            };
            let include = cs.strings(r, "include");
            let exclude = cs.strings(r, "exclude");
            cs.finish(r);
            match (include, exclude) {
                (Some(include), Some(exclude)) => {
                    filters.insert(
                        chart,
                        TypeFilter {
                            include,
                            exclude: exclude.unwrap_or_default(),
                        },
                    );
                }
                _ => filters_ok = false,
            }
        }
        fs.finish(r);
    }
    s.finish(r);
    Some(IngestConfig {
        charts: charts?,
        poll_interval_ms: poll_interval_ms?,
        rescan_interval_ms: rescan_interval_ms?,
        chart_time_zone: chart_time_zone?,
        vwap_v_is_plus_one_sigma: vwap_bug?,
        fsync: fsync?,
        max_read_bytes: max_read_bytes?,
        watch: watch?,
        filters: filters_ok.then_some(filters)?,
    })
}

fn read_instruments(
    r: &mut Reporter<'_>,
    mut s: Section<'_, '_>,
) -> Option<BTreeMap<String, InstrumentConfig>> {
    let names: Vec<String> = s
        .table
        .iter()
        .map(|(k, _)| k.get_ref().to_string())
        .collect();
    if names.is_empty() {
        r.issue(
            "instruments",
            s.span.clone(),
            "at least one instrument is needed, such as [instruments.ES]",
        );
        return None;
    }
    let mut out = BTreeMap::new();
    let mut ok = true;
    for name in names {
        let Some(mut inst) = s.sub(r, &name) else {
            ok = false;
            continue;
        };
        let builtin = ContractSpec::builtin(&name);
        let symbol = inst.opt_string(r, "symbol");
        let data_dir = inst.opt_string(r, "data_dir");
        // Sierra's documented default ports: the ES instance on 11099, the NQ one on 11100.
        let default_port = match name.as_str() {
            "ES" => Some("127.0.0.1:11099"),
            "NQ" => Some("127.0.0.1:11100"),
            _ => None,
        };
        let dtc_address = inst.value(
            r,
            "dtc_address",
            Some(default_port.map(str::to_owned)),
            "an address such as \"127.0.0.1:11099\"",
            |v| match v {
                DeValue::String(a)
                    if a.rsplit_once(':')
                        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok()) =>
                {
                    Some(Some(a.to_string()))
                }
                _ => None,
            },
        );
        let charts = inst.sub(r, "charts").and_then(|mut c| {
            let map = (
                c.int(r, "minute", Some(3), 1, 9_999),
                c.int(r, "profile", Some(4), 1, 9_999),
                c.int(r, "vix", Some(8), 1, 9_999),
                c.int(r, "menthorq", Some(10), 1, 9_999),
            );
            c.finish(r);
            Some(ChartMap {
                minute: map.0? as u16,
                profile: map.1? as u16,
                vix: map.2? as u16,
                menthorq: map.3? as u16,
            })
        });
        let positive = |x: f64| x > 0.0 && x.is_finite();
        let tick_size = inst.float(
            r,
            "tick_size",
            builtin.map(|b| b.tick_size),
            "a positive price increment",
            positive,
        );
        let tick_value = inst.float(
            r,
            "tick_value",
            builtin.map(|b| b.tick_value),
            "a positive dollar value per tick",
            positive,
        );
        inst.finish(r);
        match (symbol, data_dir, charts, tick_size, tick_value, dtc_address) {
            (
                Some(symbol),
                Some(data_dir),
                Some(charts),
                Some(tick_size),
                Some(tick_value),
                Some(dtc_address),
            ) => {
                out.insert(
                    name.clone(),
                    InstrumentConfig {
                        name,
                        symbol,
                        data_dir: data_dir.map(PathBuf::from),
                        charts,
                        spec: ContractSpec {
                            tick_size,
                            tick_value,
                        },
                        dtc_address,
                    },
                );
            }
            _ => ok = false,
        }
    }
    s.finish(r);
    ok.then_some(out)
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.line, self.column, self.key, self.message
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_config_parses() {
        let config = Config::reference();
        assert_eq!(config.ingest.charts, vec![3, 4, 8, 10]);
        assert_eq!(config.instruments["ES"].spec.tick_value, 12.5);
        assert_eq!(config.instruments["NQ"].spec.tick_value, 5.0);
    }

    #[test]
    fn execution_and_dtc_settings() {
        let config = Config::reference();
        assert_eq!(config.execution.mode, ExecutionMode::ReadOnly);
        assert!(config.dtc.encoding_request);
        assert_eq!(config.dtc.trade_account, "Sim1");
        assert_eq!(
            config.instruments["NQ"].dtc_address.as_deref(),
            Some("127.0.0.1:11100")
        );
        let text = "\
[instruments.ES]
dtc_address = \"localhost\"
[instruments.MES]
[execution]
mode = \"yolo\"
[dtc]
heartbeat_secs = 0
reconnect_initial_ms = 5000
reconnect_max_ms = 100
password = \"hunter2\"
";
        let err = Config::parse(text, Path::new("dtc.toml")).unwrap_err();
        let ConfigError::Invalid { issues, .. } = &err else {
            panic!("{err}")
        };
        let got: Vec<String> = issues.iter().map(ToString::to_string).collect();
        pretty_assertions::assert_eq!(
            got,
            vec![
                "2:15: instruments.ES.dtc_address: expected an address such as \"127.0.0.1:11099\", found string \"localhost\"",
                "5:8: execution.mode: expected \"read-only\", \"paper\" or \"live\", found string \"yolo\"",
                "7:18: dtc.heartbeat_secs: expected an integer from 1 to 60, found integer 0",
                "9:20: dtc.reconnect_max_ms: expected at least reconnect_initial_ms (5000), found 100",
                "10:1: dtc.password: unknown key (see config/mia.toml for the reference)",
            ]
        );
        // An instrument without a Sierra default port simply has no route.
        let config = Config::parse("[instruments.MES]\n", Path::new("m.toml")).unwrap();
        assert_eq!(config.instruments["MES"].dtc_address, None);
    }

    #[test]
    fn minimal_file_gets_documented_defaults() {
        let config = Config::parse("[instruments.ES]\n", Path::new("m.toml")).unwrap();
        assert_eq!(config.ingest.poll_interval_ms, 100);
        assert_eq!(config.paths.data_dir, PathBuf::from("data"));
        assert_eq!(config.instruments["ES"].charts.menthorq, 10);
        assert_eq!(config.staleness.menthorq_refresh_minutes, [30, 15, 5]);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = "\
[ingest]
poll_interval_ms = \"fast\"
chart_time_zone = \"Mars/Olympus\"
colour = 3

[instruments.ZB]
charts = { minute = 0 }

[instruments.ES]
tick_value = -1

[sesion]
open = \"09:30\"
";
        let err = Config::parse(text, Path::new("bad.toml")).unwrap_err();
        let ConfigError::Invalid { issues, .. } = &err else {
            panic!("{err}")
        };
        let got: Vec<String> = issues.iter().map(ToString::to_string).collect();
        pretty_assertions::assert_eq!(
            got,
            vec![
                "2:20: ingest.poll_interval_ms: expected an integer from 1 to 60000, found string \"fast\"",
                "3:19: ingest.chart_time_zone: expected an IANA time zone such as \"America/New_York\", found string \"Mars/Olympus\"",
                "4:1: ingest.colour: unknown key (see config/mia.toml for the reference)",
                "6:1: instruments.ZB.tick_size: missing; expected a positive price increment",
                "6:1: instruments.ZB.tick_value: missing; expected a positive dollar value per tick",
                "7:21: instruments.ZB.charts.minute: expected an integer from 1 to 9999, found integer 0",
                "10:14: instruments.ES.tick_value: expected a positive dollar value per tick, found integer -1",
                "12:2: sesion: unknown key (see config/mia.toml for the reference)",
            ]
        );
        assert!(
            err.to_string()
                .contains("bad.toml:2:20: ingest.poll_interval_ms")
        );
    }

    #[test]
    fn reference_config_states_every_risk_limit() {
        let risk = Config::reference()
            .risk
            .expect("[risk] in the reference file");
        assert_eq!(risk.sizing_factor, 0.5);
        assert_eq!((risk.kelly_lookback, risk.kelly_min_trades), (50, 20));
        assert_eq!((risk.kelly_scale, risk.kelly_floor), (4.0, 0.25));
        assert_eq!(risk.stop.min_ticks, 7);
        assert_eq!(risk.stop.max_ticks, 20);
        assert_eq!(risk.time_zone, chrono_tz::America::New_York);
        assert_eq!(risk.entry_windows.len(), 1);
        assert_eq!(risk.instruments.len(), 2);
        assert_eq!(risk.kill_switch.route_down_secs, 30);
    }

    #[test]
    fn no_risk_table_means_no_trading_not_defaults() {
        let config = Config::parse("[instruments.ES]\n", Path::new("m.toml")).unwrap();
        assert_eq!(config.risk, None);
    }

    #[test]
    fn a_risk_table_must_state_every_limit() {
        let text = "\
[instruments.ES]
[instruments.NQ]

[risk]
sizing_factor = 0.5
kelly_lookback = 10
kelly_min_trades = 20
max_daily_loss = -5
entry_windows = [{ start = \"15:45\", end = \"09:35\" }]
max_loss = 3

[risk.stop]
min_ticks = 9
max_ticks = 8

[risk.instruments.ES]
max_contracts = 2

[risk.instruments.ZB]
max_contracts = 1
max_position = 1
";
        let err = Config::parse(text, Path::new("r.toml")).unwrap_err();
        let ConfigError::Invalid { issues, .. } = &err else {
            panic!("{err}")
        };
        let got: Vec<String> = issues.iter().map(ToString::to_string).collect();
        pretty_assertions::assert_eq!(
            got,
            vec![
                "4:1: risk.kelly_scale: missing; expected a positive number",
                "4:1: risk.kelly_floor: missing; expected a number from 0 to 1",
                "4:1: risk.max_risk_per_trade: missing; expected a positive dollar amount",
                "4:1: risk.max_trades_per_day: missing; expected an integer from 1 to 10000",
                "4:1: risk.max_consecutive_losses: missing; expected an integer from 1 to 1000",
                "4:1: risk.loss_pause_minutes: missing; expected an integer from 0 to 10080",
                "4:1: risk.stop_out_cooldown_minutes: missing; expected an integer from 0 to 10080",
                "4:1: risk.time_zone: missing; expected an IANA time zone such as \"America/New_York\"",
                "4:1: risk.kill_switch.route_down_secs: missing; expected an integer from 1 to 86400",
                "4:1: risk.kill_switch.max_rejections: missing; expected an integer from 0 to 100000",
                "4:1: risk.kill_switch.rejection_window_secs: missing; expected an integer from 1 to 86400",
                "4:1: risk.kill_switch.max_rule_errors: missing; expected an integer from 0 to 100000",
                "4:1: risk.kill_switch.rule_error_window_secs: missing; expected an integer from 1 to 86400",
                "7:20: risk.kelly_min_trades: expected at most kelly_lookback (10), found 20",
                "8:18: risk.max_daily_loss: expected a positive dollar amount, found integer -5",
                "9:17: risk.entry_windows: expected an array of { start = \"HH:MM\", end = \"HH:MM\" } with start before end, found an array",
                "10:1: risk.max_loss: unknown key (see config/mia.toml for the reference)",
                "12:1: risk.stop.beyond_level_ticks: missing; expected an integer from 0 to 1000",
                "12:1: risk.stop.reward_ratio: missing; expected a positive number",
                "14:13: risk.stop.max_ticks: expected at least min_ticks (9), found 8",
                "16:1: risk.instruments.ES.max_position: missing; expected an integer from 1 to 1000",
                "16:7: risk.instruments.NQ: missing; expected a table with max_contracts and max_position for this instrument",
                "19:1: risk.instruments.ZB: no such instrument in [instruments]",
            ]
        );
    }

    #[test]
    fn syntax_errors_name_the_file() {
        let err = Config::parse("[ingest\n", Path::new("x.toml")).unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { .. }), "{err}");
        assert!(err.to_string().starts_with("x.toml: invalid TOML"));
    }
}
