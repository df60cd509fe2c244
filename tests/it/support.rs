//! Helpers shared by the integration tests: temporary folders, fixtures, the `mia` binary,
//! waiting for a condition with a deadline, golden files, and owned copies of ingest events.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use mia::clock::{ManualClock, Stopwatch};
use mia::ingest::collect::{CollectOptions, Collector};
use mia::ingest::counters::Counters;
use mia::ingest::record::Payload;
use mia::ingest::{Ingestor, LineEvent, Outcome};
use mia::model::Timestamp;

/// The crate root (where `Cargo.toml`, `config/` and `tests/` are).
pub(crate) fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/data/<rel>`.
pub(crate) fn data_path(rel: &str) -> PathBuf {
    manifest_dir().join("tests/data").join(rel)
}

/// A fresh temporary folder, removed when dropped.
pub(crate) fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("mia-it-")
        .tempdir()
        .expect("temporary folder")
}

/// Copies a folder tree (fixtures are read-only inputs; tests that append work on a copy).
pub(crate) fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Writes `text` to `path`, creating its folders.
pub(crate) fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, text).unwrap();
}

/// Appends `text` to `path` (created when missing), as a dumper does: open, write, close.
pub(crate) fn append(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// Polls `cond` every few milliseconds until it holds; panics with `what` after `timeout`.
pub(crate) fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let watch = Stopwatch::start();
    loop {
        if cond() {
            return;
        }
        assert!(
            watch.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(3));
    }
}

/// Compares `actual` with the golden file `tests/data/<rel>`; `MIA_BLESS=1` rewrites it.
pub(crate) fn golden(rel: &str, actual: &str) {
    let path = data_path(rel);
    if std::env::var_os("MIA_BLESS").is_some_and(|v| v == "1") {
        write(&path, actual);
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read golden file {}: {e}; run with MIA_BLESS=1 to create it",
            path.display()
        )
    });
    pretty_assertions::assert_eq!(
        expected,
        actual,
        "golden file {} differs (MIA_BLESS=1 rewrites it)",
        path.display()
    );
}

// ---------------------------------------------------------------------------------------------
// The `mia` binary.

/// Output of a finished `mia` run.
#[derive(Debug)]
pub(crate) struct Ran {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl From<Output> for Ran {
    fn from(out: Output) -> Self {
        Ran {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// A `mia` command line, run in a chosen folder with a clean environment for mia's own
/// variables (`MIA_CONFIG`, `MIA_LOG`), so that the developer's shell cannot change results.
pub(crate) struct TestCommand {
    cmd: Command,
}

impl TestCommand {
    /// `mia <args>` in the crate root.
    pub(crate) fn new<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mia"));
        cmd.args(args)
            .current_dir(manifest_dir())
            .env_remove("MIA_CONFIG")
            .env_remove("MIA_LOG")
            .env_remove("MIA_BLESS")
            .stdin(Stdio::null());
        TestCommand { cmd }
    }

    /// Runs it in `dir` instead of the crate root.
    pub(crate) fn current_dir(mut self, dir: &Path) -> Self {
        self.cmd.current_dir(dir);
        self
    }

    /// Sets an environment variable.
    pub(crate) fn env(mut self, key: &str, value: &str) -> Self {
        self.cmd.env(key, value);
        self
    }

    /// Runs to completion.
    pub(crate) fn run(mut self) -> Ran {
        self.cmd.output().expect("run mia").into()
    }

    /// Starts it in the background with stdout and stderr sent to files in `log_dir`
    /// (pipes could fill up and block a long-running child).
    pub(crate) fn spawn(mut self, log_dir: &Path, tag: &str) -> Child {
        std::fs::create_dir_all(log_dir).unwrap();
        let out = std::fs::File::create(log_dir.join(format!("{tag}.stdout"))).unwrap();
        let err = std::fs::File::create(log_dir.join(format!("{tag}.stderr"))).unwrap();
        self.cmd.stdout(out).stderr(err).spawn().expect("spawn mia")
    }
}

// ---------------------------------------------------------------------------------------------
// Ingest events, owned.

/// What ingest made of one line, in a form that outlives the poll.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict {
    Accepted,
    Duplicate,
    Invalid(String),
}

/// One line handed to the sink, copied out of the borrowed [`LineEvent`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Seen {
    pub(crate) file: String,
    pub(crate) line_no: u64,
    pub(crate) raw: String,
    pub(crate) verdict: Verdict,
    /// Record type (valid lines only).
    pub(crate) kind: Option<String>,
    /// Symbol (valid lines only).
    pub(crate) sym: Option<String>,
    /// Bar index (valid lines only).
    pub(crate) index: Option<i64>,
    /// Typed payload (valid lines only).
    pub(crate) payload: Option<Payload>,
    pub(crate) flagged: bool,
    pub(crate) known: bool,
    pub(crate) replayed: bool,
}

impl Seen {
    fn from_event(event: &LineEvent<'_>) -> Seen {
        let (verdict, record) = match &event.outcome {
            Outcome::Accepted(r) => (Verdict::Accepted, Some(r)),
            Outcome::Duplicate(r) => (Verdict::Duplicate, Some(r)),
            Outcome::Invalid(why) => (Verdict::Invalid(why.to_string()), None),
        };
        Seen {
            file: event.source.rel.clone(),
            line_no: event.line_no,
            raw: event.raw.to_owned(),
            verdict,
            kind: record.map(|r| r.kind.to_string()),
            sym: record.and_then(|r| r.sym.as_deref().map(str::to_owned)),
            index: record.and_then(|r| r.index),
            payload: record.map(|r| r.payload.clone()),
            flagged: record.is_some_and(|r| r.flagged),
            known: record.is_some_and(|r| r.known),
            replayed: event.replayed,
        }
    }

    pub(crate) fn accepted(&self) -> bool {
        self.verdict == Verdict::Accepted
    }
}

/// One poll of `ingestor`, every event copied.
pub(crate) fn poll(ingestor: &mut Ingestor) -> Vec<Seen> {
    let mut seen = Vec::new();
    ingestor.poll(&mut |e| seen.push(Seen::from_event(&e)));
    seen
}

/// Drains `ingestor`, every event copied.
pub(crate) fn drain(ingestor: &mut Ingestor) -> Vec<Seen> {
    let mut seen = Vec::new();
    ingestor.drain(&mut |e| seen.push(Seen::from_event(&e)));
    seen
}

/// An ingestor over `root` for `charts`, chart time zone New York, folder scanned.
pub(crate) fn ingestor(root: &Path, charts: &[u16]) -> Ingestor {
    let mut ing = Ingestor::new(root, charts, chrono_tz::America::New_York, 1 << 20).unwrap();
    ing.rescan().unwrap();
    ing
}

/// The counters as a stable text table, one row per (chart, type) and a total.
pub(crate) fn counters_text(counters: &Counters) -> String {
    let mut out = String::from(
        "chart type                       read accepted invalid duplicates unknown flagged filtered\n",
    );
    let mut row = |chart: &str, kind: &str, c: &mia::ingest::counters::Counts| {
        let _ = writeln!(
            out,
            "{chart:<5} {kind:<24} {:>6} {:>8} {:>7} {:>10} {:>7} {:>7} {:>8}",
            c.read, c.accepted, c.invalid, c.duplicates, c.unknown, c.flagged, c.filtered
        );
    };
    for (chart, kind, c) in counters.rows() {
        row(&chart.to_string(), &kind, &c);
    }
    row("all", "", &counters.total());
    let _ = writeln!(out, "blank {}", counters.blank);
    out
}

/// (chart, type) → (read, accepted, invalid, duplicates, unknown, flagged).
pub(crate) fn counts(counters: &Counters) -> Vec<(u16, String, [u64; 6])> {
    counters
        .rows()
        .into_iter()
        .map(|(chart, kind, c)| {
            (
                chart,
                kind,
                [
                    c.read,
                    c.accepted,
                    c.invalid,
                    c.duplicates,
                    c.unknown,
                    c.flagged,
                ],
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The collector, in process.

/// The fixed `ingest_ts` of in-process collector runs: 2025-09-19T20:00:00Z.
pub(crate) const INGEST_TS: &str = "2025-09-19T20:00:00.000000Z";

/// A clock stopped at [`INGEST_TS`].
pub(crate) fn fixed_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Timestamp::from_secs(1_758_312_000)))
}

/// Collector options for tests: fsync off, fast polls, every chart of the seed.
pub(crate) fn collect_opts(data: &Path, journal: &Path, state: &Path) -> CollectOptions {
    CollectOptions {
        data_dir: data.to_owned(),
        journal_dir: journal.to_owned(),
        state_dir: state.to_owned(),
        charts: vec![3, 4, 8, 10],
        tz: chrono_tz::America::New_York,
        poll_interval: Duration::from_millis(5),
        rescan_interval: Duration::from_millis(20),
        fsync: false,
        max_read: 16 << 20,
        watch: false,
        filters: BTreeMap::new(),
    }
}

/// Opens a collector with the fixed clock.
pub(crate) fn open_collector(opts: CollectOptions) -> Collector {
    Collector::open(opts, fixed_clock()).expect("open collector")
}

/// Every `mia_*.jsonl` of a journal folder: file name → content.
pub(crate) fn read_journals(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("mia_") && name.ends_with(".jsonl") {
            out.insert(name, std::fs::read_to_string(entry.path()).unwrap());
        }
    }
    out
}

/// Removes the wall-clock `ingest_ts` field from a journal line.
pub(crate) fn strip_ingest_ts(line: &str) -> String {
    const KEY: &str = ",\"ingest_ts\":\"";
    match line.find(KEY) {
        Some(start) => {
            let value = start + KEY.len();
            let end = line[value..]
                .find('"')
                .map_or(line.len(), |i| value + i + 1);
            format!("{}{}", &line[..start], &line[end..])
        }
        None => line.to_owned(),
    }
}

/// Where a unified-journal line came from: (journal file, graph, type).
pub(crate) type Stream = (String, u64, String);

/// Groups the lines of every unified journal by (journal, graph, type), keeping their order and
/// dropping `ingest_ts`: the order of lines of one source stream is fixed, the interleaving of
/// streams depends on poll timing.
pub(crate) fn unified_streams(dir: &Path) -> BTreeMap<Stream, Vec<String>> {
    let mut out: BTreeMap<Stream, Vec<String>> = BTreeMap::new();
    for (name, text) in read_journals(dir) {
        if !name.starts_with("mia_unified_") {
            continue;
        }
        for line in text.lines() {
            let value: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{name}: journal line is not JSON ({e}): {line}"));
            let graph = value["graph"].as_u64().expect("graph");
            let kind = value["type"].as_str().expect("type").to_owned();
            out.entry((name.clone(), graph, kind))
                .or_default()
                .push(strip_ingest_ts(line));
        }
    }
    out
}

/// The `data` payload of every line of one unified journal text, in order.
pub(crate) fn journal_data(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| {
            let start = line.find(",\"data\":").expect("data field") + ",\"data\":".len();
            line[start..line.len() - 1].to_owned()
        })
        .collect()
}

/// Writes a simulated session of 2025-09-19 into `data` with `mia simulate`, and checks that it
/// succeeded.
pub(crate) fn simulate_session(data: &Path, minutes: u32, seed: u64, quirks: bool) {
    let (minutes, seed) = (minutes.to_string(), seed.to_string());
    let mut args = vec![
        "simulate",
        "--out",
        data.to_str().unwrap(),
        "--day",
        "20250919",
    ];
    args.extend(["--minutes", &minutes, "--seed", &seed]);
    if quirks {
        args.push("--quirks");
    }
    let ran = TestCommand::new(args).run();
    assert_eq!(ran.code, Some(0), "{ran:?}");
}

/// `mia simulate --realtime SPEED`: `minutes` of ES from 10:00 New York on 2025-12-08 (seed 13)
/// into `data`, to spawn in the background.
pub(crate) fn realtime_session(data: &Path, minutes: u32, speed: u32) -> TestCommand {
    TestCommand::new([
        "simulate",
        "--out",
        data.to_str().unwrap(),
        "--day",
        "20251208",
        "--start",
        "10:00",
        "--minutes",
        &minutes.to_string(),
        "--realtime",
        &speed.to_string(),
        "--seed",
        "13",
    ])
}

/// The reference config (`config/mia.toml`) with one line replaced.
pub(crate) fn reference_config_with(line: &str, replacement: &str) -> String {
    let text = mia::config::REFERENCE;
    assert!(text.contains(line), "the reference config has no `{line}`");
    text.replacen(line, replacement, 1)
}

/// A property-test configuration: `cases` cases (`PROPTEST_CASES` overrides it for long runs,
/// docs/fuzzing.md), failures saved to `regressions` (under `tests/data/proptest-regressions/`)
/// and replayed first on every later run.
pub(crate) fn proptest_config(
    cases: u32,
    regressions: &'static str,
) -> proptest::prelude::ProptestConfig {
    proptest::prelude::ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(cases),
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(regressions),
        )),
        ..proptest::prelude::ProptestConfig::default()
    }
}

/// Saves a file whole, as editors that write a temporary file and rename it do: a watcher
/// never sees it empty or half written, whatever the scheduler does between the truncation and
/// the write of an in-place save.
pub(crate) fn save(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}
