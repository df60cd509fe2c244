//! Rule evaluation and compile time (product.md §14: `decide` of the default set at most 5 µs at
//! the median; shadow mode at most doubles it).
//!
//! The input is a real market view: a simulated 60-minute session is ingested, and the snapshot
//! and features at its end become `s`. Run with `cargo bench --bench rules`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::AtomicBool;

use mia::config::Config;
use mia::features::{FeatureConfig, FeatureEngine};
use mia::ingest::Ingestor;
use mia::ingest::Outcome;
use mia::model::Timestamp;
use mia::rules::input::market_input;
use mia::rules::{RuleHost, RuleInput, RuleSet};
use mia::simulate::{self, SimOptions};
use mia::snapshot::SnapshotStore;

#[global_allocator]
static ALLOC: divan::AllocProfiler = divan::AllocProfiler::system();

fn main() {
    divan::main();
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

struct Fixture {
    host: RuleHost,
    live: RuleSet,
    shadow: RuleSet,
    input: RuleInput,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let data: PathBuf = dir.path().join("data");
        let opts = SimOptions {
            out: data.clone(),
            minutes: 60,
            ..SimOptions::default()
        };
        simulate::run(&opts, &AtomicBool::new(false), &mut |_, _| {}).unwrap();
        let config = Config::reference();
        let mut ingestor = Ingestor::new(
            &data,
            &[3, 4, 8, 10],
            config.ingest.chart_time_zone,
            16 << 20,
        )
        .unwrap();
        ingestor.rescan().unwrap();
        let mut store = SnapshotStore::new(&config);
        let mut now = Timestamp::default();
        ingestor.drain(&mut |event| {
            if let Outcome::Accepted(record) = &event.outcome {
                now = now.max(record.ts);
                store.apply(event.source.name.chart, record, now);
            }
        });
        let snapshot = store.get("ES").unwrap();
        let features = FeatureEngine::new(FeatureConfig::default()).compute(snapshot);
        let input = market_input(
            snapshot,
            &features,
            now,
            &config.session,
            &config.staleness,
            store.in_session(now),
        );
        let host = RuleHost::new();
        let live = host.compile(&root().join("rules")).unwrap();
        let shadow = host.compile(&root().join("examples/rules")).unwrap();
        Fixture {
            host,
            live,
            shadow,
            input,
            _dir: dir,
        }
    })
}

/// One `decide(s)` of the default rule set, validation of the result included.
#[divan::bench(sample_count = 200, sample_size = 50)]
fn decide_default(bencher: divan::Bencher<'_, '_>) {
    let f = fixture();
    bencher.bench(|| {
        f.host
            .evaluate(divan::black_box(&f.live), divan::black_box(&f.input))
            .unwrap()
    });
}

/// The default set and the shadow set on the same snapshot, as shadow mode does.
#[divan::bench(sample_count = 200, sample_size = 50)]
fn decide_live_and_shadow(bencher: divan::Bencher<'_, '_>) {
    let f = fixture();
    bencher.bench(|| {
        let a = f
            .host
            .evaluate(&f.live, divan::black_box(&f.input))
            .unwrap();
        let b = f
            .host
            .evaluate(&f.shadow, divan::black_box(&f.input))
            .unwrap();
        (a, b)
    });
}

/// Compiling the default rule set from its files (what a hot reload costs before the swap).
#[divan::bench(sample_count = 20)]
fn compile_default(bencher: divan::Bencher<'_, '_>) {
    let f = fixture();
    bencher.bench(|| {
        f.host
            .compile(divan::black_box(&root().join("rules")))
            .unwrap()
    });
}

/// What one Rhai construct costs inside `decide`, ten times over, on top of the host's call and
/// a constant result map (the `baseline`). This is the price list a rule author spends the
/// 5 µs budget from.
const CONSTRUCTS: &[(&str, &str)] = &[
    ("baseline", ""),
    (
        "10 float additions",
        "let x = 1.0; x += 1.0; x += 1.0; x += 1.0; x += 1.0; x += 1.0; x += 1.0; x += 1.0; x += 1.0; x += 1.0; x += 1.0;",
    ),
    (
        "10 property reads",
        "let x = s.price; x = s.price; x = s.price; x = s.price; x = s.price; x = s.price; x = s.price; x = s.price; x = s.price; x = s.price;",
    ),
    (
        "10 constant reads",
        "let x = global::K; x = global::K; x = global::K; x = global::K; x = global::K; x = global::K; x = global::K; x = global::K; x = global::K; x = global::K;",
    ),
    (
        "10 if-else chains",
        "let x = 5.0; let y = 0.0; y = if x < 1.0 { 1.0 } else if x < 4.0 { 2.0 } else { 3.0 }; y = if x < 1.0 { 1.0 } else if x < 4.0 { 2.0 } else { 3.0 }; y = if x < 1.0 { 1.0 } else if x < 4.0 { 2.0 } else { 3.0 }; y = if x < 1.0 { 1.0 } else if x < 4.0 { 2.0 } else { 3.0 }; y = if x < 1.0 { 1.0 } else if x < 4.0 { 2.0 } else { 3.0 }; y = if x < 1.0 { 1.0 } else if x < 4.0 { 2.0 } else { 3.0 }; y = if x < 1.0 { 1.0 } else if x < 4.0 { 2.0 } else { 3.0 }; y = if x < 1.0 { 1.0 } else if x < 4.0 { 2.0 } else { 3.0 }; y = if x < 1.0 { 1.0 } else if x < 4.0 { 2.0 } else { 3.0 }; y = if x < 1.0 { 1.0 } else if x < 4.0 { 2.0 } else { 3.0 };",
    ),
    (
        "10 function calls",
        "let x = f(1.0); x = f(1.0); x = f(1.0); x = f(1.0); x = f(1.0); x = f(1.0); x = f(1.0); x = f(1.0); x = f(1.0); x = f(1.0);",
    ),
    (
        "10 string interpolations",
        "let b = 1.5; let x = `v ${b}`; x = `v ${b}`; x = `v ${b}`; x = `v ${b}`; x = `v ${b}`; x = `v ${b}`; x = `v ${b}`; x = `v ${b}`; x = `v ${b}`; x = `v ${b}`;",
    ),
];

fn construct_sets() -> &'static Vec<(&'static str, RuleSet, tempfile::TempDir)> {
    static SETS: OnceLock<Vec<(&'static str, RuleSet, tempfile::TempDir)>> = OnceLock::new();
    SETS.get_or_init(|| {
        let host = &fixture().host;
        CONSTRUCTS
            .iter()
            .map(|(name, body)| {
                let dir = tempfile::tempdir().unwrap();
                let text = format!(
                    "const K = 2.0;\nfn f(x) {{ x }}\nfn decide(s) {{\n    {body}\n    #{{ score: 50.0, direction: \"flat\", tier: \"NO_TRADE\", size_mult: 0.0, components: #{{}}, reasons: [], vetoes: [] }}\n}}\n"
                );
                std::fs::write(dir.path().join("strategy.rhai"), text).unwrap();
                let set = host.compile(dir.path()).unwrap();
                (*name, set, dir)
            })
            .collect()
    })
}

#[divan::bench(args = CONSTRUCTS.iter().map(|c| c.0), sample_count = 100, sample_size = 50)]
fn rhai_construct(bencher: divan::Bencher<'_, '_>, name: &str) {
    let f = fixture();
    let set = &construct_sets().iter().find(|s| s.0 == name).unwrap().1;
    bencher.bench(|| f.host.evaluate(set, divan::black_box(&f.input)).unwrap());
}
