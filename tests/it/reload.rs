//! Hot reload over the real file system, and atomic swaps under load.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mia::rules::check::Code;
use mia::rules::reload::{self, LiveRules, ReloadOutcome};
use mia::rules::{RuleError, RuleHost, RuleInput};
use rhai::Dynamic;

use super::support::save;

/// A two-file rule set whose score is the sum of a value in each file: a set mixed from two
/// versions would give a sum that no complete set gives.
fn write_set(dir: &Path, version: i64) {
    save(
        &dir.join("strategy.rhai"),
        &format!(
            "import \"part\" as part;\n\
             fn decide(s) {{\n    let v = {version}.0 + part::value();\n    \
             #{{ score: v, direction: \"flat\", tier: \"NO_TRADE\", size_mult: 0.0, components: #{{}}, reasons: [], vetoes: [] }}\n}}\n"
        ),
    );
    save(
        &dir.join("part.rhai"),
        &format!("fn value() {{ {version}.0 }}\n"),
    );
}

fn input() -> RuleInput {
    RuleInput::from_values([("instrument", Dynamic::from("ES"))]).unwrap()
}

fn recv(rx: &mpsc::Receiver<ReloadOutcome>, what: &str) -> ReloadOutcome {
    rx.recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("no reload outcome within 20 s: {what}"))
}

#[test]
fn saving_a_broken_file_keeps_the_old_set_and_a_valid_change_goes_live() {
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path(), 1);
    let host = Arc::new(RuleHost::new());
    let live = Arc::new(LiveRules::new(host.compile(dir.path()).unwrap()));
    let first = live.load().hash.clone();
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let _reloader = reload::watch(
        Arc::clone(&host),
        Arc::clone(&live),
        reload::DEBOUNCE,
        move |o| {
            let _ = tx.lock().unwrap().send(o.clone());
        },
    )
    .unwrap();

    save(
        &dir.path().join("part.rhai"),
        "fn value() {\n    1.0 +\n}\n",
    );
    let ReloadOutcome::Failed(RuleError::Check { problems }) = recv(&rx, "broken save") else {
        panic!("a broken file must fail the reload")
    };
    assert_eq!(problems.len(), 1);
    let d = &problems[0];
    assert_eq!(d.code, Code::Syntax);
    assert_eq!(d.file.file_name().unwrap(), "part.rhai");
    assert_eq!((d.line, d.column > 0), (3, true), "{d}");
    assert_eq!(live.load().hash, first, "the last good set stays live");
    assert_eq!(
        host.evaluate(&live.load(), &input())
            .unwrap()
            .decision
            .score,
        2.0
    );

    // It compiles, but reads a property that does not exist: the check refuses it.
    save(
        &dir.path().join("part.rhai"),
        "fn value() { 5.0 }\nfn unused(s) { s.pricee }\n",
    );
    // A late event of the broken save may still report it; skip to this save's outcome.
    let problems = loop {
        match recv(&rx, "unknown property") {
            ReloadOutcome::Failed(RuleError::Check { problems })
                if problems.iter().all(|p| p.code == Code::Syntax) => {}
            ReloadOutcome::Failed(RuleError::Check { problems }) => break problems,
            other => panic!("a set that fails the checks must fail the reload: {other:?}"),
        }
    };
    assert_eq!(
        problems
            .iter()
            .map(|p| (p.code, p.line, p.column))
            .collect::<Vec<_>>(),
        [(Code::UnknownProperty, 2, 18)]
    );
    assert_eq!(live.load().hash, first, "the last good set stays live");

    write_set(dir.path(), 7);
    // The two files may land in two bursts. The first (the new strategy with the old part,
    // which still reads `s.pricee`) then fails the check; wait until the new set is live.
    let mut previous = first.clone();
    loop {
        match recv(&rx, "valid save") {
            ReloadOutcome::Swapped { from, to } => {
                assert_eq!(from, previous);
                assert_eq!(to, live.load().hash);
                previous = to;
                if host
                    .evaluate(&live.load(), &input())
                    .unwrap()
                    .decision
                    .score
                    == 14.0
                {
                    break;
                }
            }
            ReloadOutcome::Unchanged => {}
            ReloadOutcome::Failed(RuleError::Check { problems })
                if problems.iter().all(|p| p.code == Code::UnknownProperty) => {}
            ReloadOutcome::Failed(e) => panic!("{e}"),
        }
    }
}

#[test]
fn every_evaluation_uses_one_complete_set_while_sets_are_swapped() {
    let host = Arc::new(RuleHost::new());
    let sets: Vec<_> = (1..=4)
        .map(|v| {
            let dir = tempfile::tempdir().unwrap();
            write_set(dir.path(), v);
            let set = host.compile(dir.path()).unwrap();
            (dir, set)
        })
        .collect();
    let live = Arc::new(LiveRules::new(sets[0].1.clone()));
    let done = Arc::new(AtomicBool::new(false));
    let evaluations = Arc::new(AtomicU64::new(0));

    let evaluator = {
        let (host, live, done, evaluations) = (
            host.clone(),
            live.clone(),
            done.clone(),
            evaluations.clone(),
        );
        let expected: Vec<(String, f64)> = sets
            .iter()
            .zip(1..)
            .map(|((_, s), v)| (s.hash.clone(), 2.0 * v as f64))
            .collect();
        std::thread::spawn(move || {
            let mut seen = std::collections::BTreeSet::new();
            let mut attempted = 0u64;
            while !done.load(Ordering::Acquire) {
                attempted += 1;
                let set = live.load();
                let score = host.evaluate(&set, &input()).unwrap().decision.score;
                assert!(
                    expected.contains(&(set.hash.clone(), score)),
                    "set {} gave {score}",
                    set.hash
                );
                seen.insert(set.hash.clone());
                evaluations.fetch_add(1, Ordering::Relaxed);
            }
            (attempted, seen.len())
        })
    };

    let mut swaps = 0;
    let mut last_count = 0;
    while swaps < 200 {
        let (_, set) = &sets[swaps % sets.len()];
        live.store(set.clone());
        swaps += 1;
        // Let evaluations happen between swaps, without sleeping on luck: wait for progress.
        let deadline = mia::clock::Stopwatch::start();
        while evaluations.load(Ordering::Relaxed) == last_count {
            assert!(
                deadline.elapsed() < Duration::from_secs(20),
                "evaluations stalled"
            );
            std::thread::yield_now();
        }
        last_count = evaluations.load(Ordering::Relaxed);
    }
    done.store(true, Ordering::Release);
    let (attempted, distinct) = evaluator.join().unwrap();
    assert_eq!(
        attempted,
        evaluations.load(Ordering::Relaxed),
        "no evaluation lost"
    );
    assert!(attempted >= 200);
    assert_eq!(distinct, sets.len(), "every set was used");
}
