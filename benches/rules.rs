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

/// The least a default set that expresses product.md §6 must do in Rhai per decision, even if
/// every factor came ready-made from native code: read the three direction votes and the 11
/// factors of the side, weigh them, pick the direction and the tier, and return the components.
/// No factor curve, no reason text, no hard rule. The factors are stood in for by `s.tick_size`
/// (a property read costs the same whichever property it is).
const FLOOR: &str = r#"
const GAMMA_WEIGHT = 20.0; const BLIND_SPOTS_WEIGHT = 10.0; const SWING_WEIGHT = 5.0;
const DEALER_BIAS_WEIGHT = 5.0; const VOLUME_PROFILE_WEIGHT = 15.0; const VWAP_WEIGHT = 10.0;
const ORDER_FLOW_WEIGHT = 5.0; const CONFLUENCE_WEIGHT = 5.0; const VIX_LEVEL_WEIGHT = 15.0;
const VIX_POLICY_WEIGHT = 5.0; const ATR_WEIGHT = 5.0;
const VOTE_MIN = 0.5;
const PREMIUM_MIN = 90.0; const PREMIUM_MULT = 2.0; const STRONG_MIN = 80.0; const STRONG_MULT = 1.5;
const GOOD_MIN = 70.0; const GOOD_MULT = 1.0; const WEAK_MIN = 60.0; const WEAK_MULT = 0.5;
fn decide(s) {
    let vote = s.tick_size + s.tick_size + s.tick_size;
    let direction = if vote >= global::VOTE_MIN { "long" } else if vote <= -global::VOTE_MIN { "short" } else { "flat" };
    let gamma = global::GAMMA_WEIGHT * s.tick_size;
    let blind_spots = global::BLIND_SPOTS_WEIGHT * s.tick_size;
    let swing = global::SWING_WEIGHT * s.tick_size;
    let dealer_bias = global::DEALER_BIAS_WEIGHT * s.tick_size;
    let volume_profile = global::VOLUME_PROFILE_WEIGHT * s.tick_size;
    let vwap = global::VWAP_WEIGHT * s.tick_size;
    let order_flow = global::ORDER_FLOW_WEIGHT * s.tick_size;
    let confluence = global::CONFLUENCE_WEIGHT * s.tick_size;
    let vix_level = global::VIX_LEVEL_WEIGHT * s.tick_size;
    let vix_policy = global::VIX_POLICY_WEIGHT * s.tick_size;
    let atr = global::ATR_WEIGHT * s.tick_size;
    let score = gamma + blind_spots + swing + dealer_bias + volume_profile + vwap + order_flow
              + confluence + vix_level + vix_policy + atr;
    let tier = "NO_TRADE";
    let mult = 0.0;
    if score >= global::PREMIUM_MIN { tier = "PREMIUM"; mult = global::PREMIUM_MULT; }
    else if score >= global::STRONG_MIN { tier = "STRONG"; mult = global::STRONG_MULT; }
    else if score >= global::GOOD_MIN { tier = "GOOD"; mult = global::GOOD_MULT; }
    else if score >= global::WEAK_MIN { tier = "WEAK"; mult = global::WEAK_MULT; }
    #{
        score: score, direction: direction, tier: tier, size_mult: mult,
        components: #{
            gamma: gamma, blind_spots: blind_spots, swing: swing, dealer_bias: dealer_bias,
            volume_profile: volume_profile, vwap: vwap, order_flow: order_flow,
            confluence: confluence, vix_level: vix_level, vix_policy: vix_policy, atr: atr,
        },
        reasons: [], vetoes: [],
    }
}
"#;

/// `decide` of [`FLOOR`]: the cost of the §6 skeleton alone, the lower bound of what moving the
/// factor curves into native features could reach.
#[divan::bench(sample_count = 200, sample_size = 50)]
fn decide_floor(bencher: divan::Bencher<'_, '_>) {
    static SET: OnceLock<RuleSet> = OnceLock::new();
    let f = fixture();
    let set = SET.get_or_init(|| compile_text(FLOOR));
    bencher.bench(|| {
        f.host
            .evaluate(divan::black_box(set), divan::black_box(&f.input))
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

/// Compiles a one-file rule set from its text. The folder can go once compiled: a set's
/// imports are embedded, and evaluation reads no file.
fn compile_text(strategy: &str) -> RuleSet {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("strategy.rhai"), strategy).unwrap();
    fixture().host.compile(dir.path()).unwrap()
}

fn construct_sets() -> &'static Vec<(&'static str, RuleSet)> {
    static SETS: OnceLock<Vec<(&'static str, RuleSet)>> = OnceLock::new();
    SETS.get_or_init(|| {
        CONSTRUCTS
            .iter()
            .map(|(name, body)| {
                let text = format!(
                    "const K = 2.0;\nfn f(x) {{ x }}\nfn decide(s) {{\n    {body}\n    #{{ score: 50.0, direction: \"flat\", tier: \"NO_TRADE\", size_mult: 0.0, components: #{{}}, reasons: [], vetoes: [] }}\n}}\n"
                );
                (*name, compile_text(&text))
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
