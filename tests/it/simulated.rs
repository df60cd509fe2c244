//! Ingest against the simulator's ground truth (`mia_sim_manifest.json`): with every quirk
//! injected, in each layout, the invalid and duplicate lines mia finds are exactly those of
//! the manifest, and every other line is journaled exactly once; and while the simulator
//! appends in accelerated real time, a tailing `mia collect` journals every valid line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use mia::ingest::naming::Layout;
use mia::simulate::{MANIFEST_FILE, Manifest, SimOptions};
use pretty_assertions::assert_eq;

use crate::support::{
    TestCommand, Verdict, collect_opts, drain, ingestor, journal_data, open_collector,
    read_journals, tmp, wait_until,
};

/// Runs the simulator in process and returns its manifest.
pub(crate) fn simulate(
    out: &Path,
    layout: Layout,
    minutes: u32,
    seed: u64,
    quirks: bool,
) -> Manifest {
    let opts = SimOptions {
        out: out.to_owned(),
        minutes,
        seed,
        layout,
        quirks,
        ..SimOptions::default()
    };
    mia::simulate::run(&opts, &AtomicBool::new(false), &mut |_, _| {}).expect("simulate");
    Manifest::load(&out.join(MANIFEST_FILE)).expect("manifest")
}

/// What the manifest says a correct reader must make of one file.
#[derive(Debug)]
struct Truth {
    invalid: BTreeSet<u64>,
    duplicates: BTreeSet<u64>,
    /// The lines to journal, in file order, without line endings.
    journaled: Vec<String>,
    partial: u64,
}

fn truth(out: &Path, manifest: &Manifest) -> BTreeMap<String, Truth> {
    manifest
        .files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(out.join(&f.path)).unwrap();
            let mut pieces: Vec<&str> = text.split('\n').collect();
            let tail = pieces.pop().unwrap_or("");
            assert_eq!(tail.len() as u64, f.partial_tail_bytes, "{}", f.path);
            assert_eq!(pieces.len() as u64, f.lines, "{}", f.path);
            let invalid: BTreeSet<u64> = f.invalid.iter().copied().collect();
            let duplicates: BTreeSet<u64> = f.duplicates.iter().copied().collect();
            let journaled = pieces
                .iter()
                .zip(1u64..)
                .filter(|(_, n)| !invalid.contains(n) && !duplicates.contains(n))
                .map(|(l, _)| l.strip_suffix('\r').unwrap_or(l).to_owned())
                .collect();
            (
                f.path.clone(),
                Truth {
                    invalid,
                    duplicates,
                    journaled,
                    partial: f.partial_tail_bytes,
                },
            )
        })
        .collect()
}

fn multiset(lines: impl IntoIterator<Item = String>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for line in lines {
        *out.entry(line).or_insert(0) += 1;
    }
    out
}

/// Lines present a different number of times in `got` than in `want`, at most `max` of them.
fn differences(
    want: &BTreeMap<String, usize>,
    got: &BTreeMap<String, usize>,
    max: usize,
) -> Vec<String> {
    want.keys()
        .chain(got.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|l| want.get(*l) != got.get(*l))
        .take(max)
        .map(|l| {
            format!(
                "want {} got {}: {l}",
                want.get(l).unwrap_or(&0),
                got.get(l).unwrap_or(&0)
            )
        })
        .collect()
}

fn check_layout(layout: Layout) {
    let dir = tmp();
    let out = dir.path().join("data");
    let manifest = simulate(&out, layout, 20, 7, true);
    assert!(manifest.complete && manifest.quirks);
    let truth = truth(&out, &manifest);
    assert_eq!(
        truth.len(),
        manifest.files.len(),
        "one entry per file of the manifest"
    );

    // Line by line: what the ingestor says of each line is what the manifest says.
    let mut ing = ingestor(&out, &[3, 4, 8, 10]);
    let sources: BTreeSet<String> = ing.sources().map(|s| s.rel.clone()).collect();
    assert_eq!(
        sources,
        truth.keys().cloned().collect(),
        "every simulated file is discovered"
    );
    let seen = drain(&mut ing);
    for (path, want) in &truth {
        let of_file = || seen.iter().filter(|s| &s.file == path);
        let invalid: BTreeSet<u64> = of_file()
            .filter(|s| matches!(s.verdict, Verdict::Invalid(_)))
            .map(|s| s.line_no)
            .collect();
        let duplicates: BTreeSet<u64> = of_file()
            .filter(|s| s.verdict == Verdict::Duplicate)
            .map(|s| s.line_no)
            .collect();
        assert_eq!(invalid, want.invalid, "{layout:?} {path}: invalid lines");
        assert_eq!(
            duplicates, want.duplicates,
            "{layout:?} {path}: duplicate lines"
        );
        let accepted: Vec<String> = of_file()
            .filter(|s| s.accepted())
            .map(|s| s.raw.clone())
            .collect();
        assert_eq!(
            accepted.len(),
            want.journaled.len(),
            "{layout:?} {path}: accepted lines"
        );
        assert!(
            accepted == want.journaled,
            "{layout:?} {path}: accepted lines differ"
        );
    }
    let pending: BTreeMap<String, u64> = ing.pending().into_iter().collect();
    let want_pending: BTreeMap<String, u64> = truth
        .iter()
        .filter(|(_, t)| t.partial > 0)
        .map(|(p, t)| (p.clone(), t.partial))
        .collect();
    assert_eq!(pending, want_pending, "{layout:?}: partial last lines");

    // The totals of the counters.
    let total = ing.counters().total();
    let count = |f: fn(&Truth) -> usize| truth.values().map(f).sum::<usize>() as u64;
    assert_eq!(
        (total.read, total.accepted, total.invalid, total.duplicates),
        (
            manifest.files.iter().map(|f| f.lines).sum::<u64>(),
            count(|t| t.journaled.len()),
            count(|t| t.invalid.len()),
            count(|t| t.duplicates.len()),
        ),
        "{layout:?}: read, accepted, invalid, duplicates"
    );

    // The collector journals every valid line once and rejects exactly the invalid ones.
    let opts = collect_opts(&out, &dir.path().join("journal"), &dir.path().join("state"));
    let mut collector = open_collector(opts);
    collector.step(true, &mut |_, _| {}).unwrap();
    let rejects: BTreeSet<(String, u64)> = collector
        .rejects()
        .iter()
        .map(|r| (r.file.clone(), r.line))
        .collect();
    let want_rejects: BTreeSet<(String, u64)> = truth
        .iter()
        .flat_map(|(p, t)| t.invalid.iter().map(move |n| (p.clone(), *n)))
        .collect();
    assert_eq!(rejects, want_rejects, "{layout:?}: rejects");
    let journals = read_journals(&dir.path().join("journal"));
    assert_eq!(
        journals.keys().cloned().collect::<Vec<_>>(),
        vec![
            "mia_rejects_20250919.jsonl".to_owned(),
            "mia_unified_20250919.jsonl".to_owned()
        ]
    );
    let got = multiset(journal_data(&journals["mia_unified_20250919.jsonl"]));
    let want = multiset(truth.values().flat_map(|t| t.journaled.iter().cloned()));
    let diff = differences(&want, &got, 5);
    assert!(
        diff.is_empty(),
        "{layout:?}: journal differs from the manifest:\n{}",
        diff.join("\n")
    );
    assert_eq!(
        journals["mia_rejects_20250919.jsonl"].lines().count(),
        want_rejects.len()
    );
}

#[test]
fn quirks_match_the_manifest_in_the_flat_layout() {
    check_layout(Layout::Flat);
}

#[test]
fn quirks_match_the_manifest_in_the_organised_layout() {
    check_layout(Layout::Organised);
}

#[test]
fn quirks_match_the_manifest_in_the_per_chart_layout() {
    check_layout(Layout::PerChart);
}

/// The record types counted per chart agree with the manifest's `types` (valid lines,
/// duplicates included). In the per-chart layout, chart-4 lines carry no `type` and the file
/// name no kind: product.md §3 asks to dispatch them "on the file kind and keys", so the key
/// set must decide.
fn check_types(layout: Layout) {
    let dir = tmp();
    let out = dir.path().join("data");
    let manifest = simulate(&out, layout, 20, 7, true);
    let mut want: BTreeMap<(u16, String), u64> = BTreeMap::new();
    for f in &manifest.files {
        for (kind, n) in &f.types {
            *want.entry((f.chart, kind.clone())).or_insert(0) += n;
        }
    }
    let mut ing = ingestor(&out, &[3, 4, 8, 10]);
    drain(&mut ing);
    let got: BTreeMap<(u16, String), u64> = ing
        .counters()
        .rows()
        .into_iter()
        .filter(|(_, _, c)| c.accepted + c.duplicates > 0)
        .map(|(chart, kind, c)| ((chart, kind), c.accepted + c.duplicates))
        .collect();
    assert_eq!(got, want, "{layout:?}");
}

#[test]
fn record_types_match_the_manifest_in_the_flat_layout() {
    check_types(Layout::Flat);
}

#[test]
fn record_types_match_the_manifest_in_the_organised_layout() {
    check_types(Layout::Organised);
}

#[test]
fn record_types_match_the_manifest_in_the_per_chart_layout() {
    check_types(Layout::PerChart);
}

/// `mia simulate --realtime` appends files over time in one process while `mia collect`
/// follows them in another, starting on an empty folder: at the end the journal holds every
/// valid line once.
#[test]
fn collect_follows_a_realtime_simulation_to_the_last_line() {
    let dir = tmp();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let journal = dir.path().join("journal");
    let config = dir.path().join("mia.toml");
    std::fs::write(
        &config,
        "[ingest]\npoll_interval_ms = 5\nrescan_interval_ms = 20\nfsync = false\n\n[instruments.ES]\n",
    )
    .unwrap();
    let logs = dir.path().join("logs");
    let collect = TestCommand::new([
        "--config",
        config.to_str().unwrap(),
        "collect",
        "--data",
        data.to_str().unwrap(),
        "--journal",
        journal.to_str().unwrap(),
        "--state",
        dir.path().join("state").to_str().unwrap(),
    ])
    .spawn(&logs, "collect");
    let mut collect = KillOnDrop(collect);
    // 12 simulated minutes at 600x: about 1.2 s of appending.
    let mut simulate = TestCommand::new([
        "simulate",
        "--out",
        data.to_str().unwrap(),
        "--day",
        "20250919",
        "--minutes",
        "12",
        "--seed",
        "11",
        "--quirks",
        "--realtime",
        "600",
    ])
    .spawn(&logs, "simulate");
    // The collector must already be reading while the simulator writes.
    wait_until(Duration::from_secs(20), "the first journaled lines", || {
        read_journals(&journal)
            .get("mia_unified_20250919.jsonl")
            .is_some_and(|t| !t.is_empty())
    });
    let status = simulate.wait().unwrap();
    assert!(status.success(), "simulate failed: {status}");
    let manifest = Manifest::load(&data.join(MANIFEST_FILE)).unwrap();
    let truth = truth(&data, &manifest);
    let want = multiset(truth.values().flat_map(|t| t.journaled.iter().cloned()));
    let total: usize = want.values().sum();
    wait_until(
        Duration::from_secs(30),
        &format!("{total} journaled lines"),
        || {
            if let Some(status) = collect.0.try_wait().unwrap() {
                panic!(
                    "mia collect exited ({status}): {}",
                    std::fs::read_to_string(logs.join("collect.stderr")).unwrap_or_default()
                );
            }
            read_journals(&journal)
                .get("mia_unified_20250919.jsonl")
                // Whole lines only: the last one may be seen half written.
                .is_some_and(|t| t.bytes().filter(|b| *b == b'\n').count() >= total)
        },
    );
    drop(collect);
    let journals = read_journals(&journal);
    let got = multiset(journal_data(&journals["mia_unified_20250919.jsonl"]));
    let diff = differences(&want, &got, 5);
    assert!(diff.is_empty(), "journal differs:\n{}", diff.join("\n"));
    let invalid: usize = truth.values().map(|t| t.invalid.len()).sum();
    assert_eq!(
        journals["mia_rejects_20250919.jsonl"].lines().count(),
        invalid
    );
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
