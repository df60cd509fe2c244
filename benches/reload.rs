//! Hot reload under load (product.md §14: a saved rule file is live within 200 ms, with no
//! evaluation lost or run twice during the swap, even at 100,000 evaluations a second).
//!
//! An evaluator thread runs `decide(s)` as fast as it can on the live set (a light set, so the
//! rate is the host's and not the strategy's: `tests/data/live/eager`, whose score is a
//! constant), on a real market view. The rule file is saved again and again with a new score,
//! through the real watcher of `mia run` (`rules::reload::watch`: notify, 50 ms debounce, the
//! checks, the arc-swap). For each save it reports the time from the write to the first
//! decision made by the new set, and over the run: evaluations per second, evaluations that did
//! not return a decision (lost), and decisions whose score is not the one of the set that the
//! same evaluation loaded (a torn or doubled swap). Every evaluation is counted once by the
//! loop that runs it.
//!
//! `cargo bench --bench reload` runs 20 saves; `cargo test --benches` runs 3.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use mia::clock::Stopwatch;
use mia::config::Config;
use mia::features::{FeatureConfig, FeatureEngine};
use mia::ingest::{Ingestor, Outcome};
use mia::model::Timestamp;
use mia::rules::input::market_input;
use mia::rules::reload::{LiveRules, ReloadOutcome, watch};
use mia::rules::{RuleHost, RuleInput};
use mia::simulate::{self, SimOptions};
use mia::snapshot::SnapshotStore;

/// The market view at the end of a short simulated session.
fn input(dir: &std::path::Path) -> RuleInput {
    let data = dir.join("data");
    let opts = SimOptions {
        out: data.clone(),
        minutes: 10,
        ..SimOptions::default()
    };
    simulate::run(&opts, &AtomicBool::new(false), &mut |_, _| {}).expect("simulate");
    let config = Config::reference();
    let mut ingestor = Ingestor::new(
        &data,
        &[3, 4, 8, 10],
        config.ingest.chart_time_zone,
        16 << 20,
    )
    .expect("ingestor");
    ingestor.rescan().expect("rescan");
    let mut store = SnapshotStore::new(&config);
    let mut now = Timestamp::default();
    ingestor.drain(&mut |event| {
        if let Outcome::Accepted(record) = &event.outcome {
            now = now.max(record.ts);
            store.apply(event.source.name.chart, record, now);
        }
    });
    let snapshot = store.get("ES").expect("ES snapshot");
    let features = FeatureEngine::new(FeatureConfig::default()).compute(snapshot);
    market_input(
        snapshot,
        &features,
        now,
        &config.session,
        &config.staleness,
        store.in_session(now),
    )
}

fn strategy(score: u32) -> String {
    let base = include_str!("../tests/data/live/eager/strategy.rhai");
    base.replacen(
        "const SCORE = 75.0;",
        &format!("const SCORE = {score}.0;"),
        1,
    )
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let saves: u32 = if full { 20 } else { 3 };
    let dir = tempfile::tempdir().expect("temporary folder");
    let input = input(dir.path());
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).expect("rules folder");
    let file = rules.join("strategy.rhai");
    std::fs::write(&file, strategy(50)).expect("rules");

    let host = Arc::new(RuleHost::new());
    let live = Arc::new(LiveRules::new(
        mia::rules::check::load_checked(&host, &rules).expect("the first set"),
    ));
    let (swapped_tx, swapped) = mpsc::channel();
    let _watcher = watch(
        Arc::clone(&host),
        Arc::clone(&live),
        Duration::from_millis(50),
        move |outcome| {
            if let ReloadOutcome::Swapped { .. } | ReloadOutcome::Failed(_) = outcome {
                let _ = swapped_tx.send(outcome.clone());
            }
        },
    )
    .expect("watch");

    // The evaluator: counts, and notes the first decision of each new score.
    let stop = Arc::new(AtomicBool::new(false));
    let evaluations = Arc::new(AtomicU64::new(0));
    let (first_tx, first_seen) = mpsc::channel::<(u32, Duration)>();
    let clock = Stopwatch::start();
    let evaluator = {
        let (stop, evaluations, host, live) = (
            Arc::clone(&stop),
            Arc::clone(&evaluations),
            Arc::clone(&host),
            Arc::clone(&live),
        );
        std::thread::spawn(move || {
            let mut lost = 0u64;
            let mut torn = 0u64;
            let mut scores: std::collections::HashMap<String, u32> = Default::default();
            let mut last_score = 50;
            while !stop.load(Ordering::Relaxed) {
                let set = live.load();
                match host.evaluate(&set, &input) {
                    Ok(eval) => {
                        let score = eval.decision.score as u32;
                        // The score of a set is a function of its hash: one hash, one score.
                        let expected = *scores.entry(set.hash.clone()).or_insert(score);
                        if expected != score {
                            torn += 1;
                        }
                        if score != last_score {
                            last_score = score;
                            let _ = first_tx.send((score, clock.elapsed()));
                        }
                    }
                    Err(_) => lost += 1,
                }
                evaluations.fetch_add(1, Ordering::Relaxed);
            }
            (lost, torn)
        })
    };

    // Let the evaluator warm up, then save the file once every 300 ms.
    std::thread::sleep(Duration::from_millis(300));
    let counted_from = (clock.elapsed(), evaluations.load(Ordering::Relaxed));
    let mut latencies = Vec::new();
    for k in 1..=saves {
        let score = 50 + k;
        let saved_at = clock.elapsed();
        std::fs::write(&file, strategy(score)).expect("save");
        let outcome = swapped
            .recv_timeout(Duration::from_secs(10))
            .expect("a reload after the save");
        assert!(
            matches!(outcome, ReloadOutcome::Swapped { .. }),
            "the reload failed: {outcome:?}"
        );
        let (seen, at) = first_seen
            .recv_timeout(Duration::from_secs(10))
            .expect("a decision of the new set");
        assert_eq!(seen, score, "the new set's score");
        latencies.push(at.saturating_sub(saved_at));
        std::thread::sleep(Duration::from_millis(300));
    }
    let counted = (
        clock.elapsed() - counted_from.0,
        evaluations.load(Ordering::Relaxed) - counted_from.1,
    );
    stop.store(true, Ordering::Relaxed);
    let (lost, torn) = evaluator.join().expect("evaluator");
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1_000.0;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "hot reload under load: {saves} saves; save to first decision of the new set: \
         p50 {:.1} ms, max {:.1} ms\n\
         {:.0} evaluations/s during the saves; {lost} evaluations without a decision; \
         {torn} decisions from a set other than the one loaded",
        ms(latencies[latencies.len() / 2]),
        ms(*latencies.last().expect("a save")),
        counted.1 as f64 / counted.0.as_secs_f64(),
    );
    assert_eq!((lost, torn), (0, 0));
}
