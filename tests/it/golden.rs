//! Golden test of `collect` on a simulated session: the counters table and a digest of the
//! unified journal are compared with `tests/data/golden/`. The collector runs in process with
//! a stopped clock, so the journal is byte-for-byte reproducible. `MIA_BLESS=1` rewrites the
//! golden files after an intended change.

use std::fmt::Write as _;

use xxhash_rust::xxh3::xxh3_64;

use crate::support::{
    collect_opts, counters_text, golden, open_collector, read_journals, simulate_session, tmp,
};

/// The first and last lines of a journal, its line count and hash.
fn digest(name: &str, text: &str) -> String {
    const EDGE: usize = 3;
    let lines: Vec<&str> = text.lines().collect();
    let mut out = format!(
        "{name}: {} lines, {} bytes, xxh3 {:016x}\n",
        lines.len(),
        text.len(),
        xxh3_64(text.as_bytes())
    );
    let head = lines.len().min(EDGE);
    for line in &lines[..head] {
        let _ = writeln!(out, "  {line}");
    }
    if lines.len() > 2 * EDGE {
        let _ = writeln!(out, "  …");
    }
    for line in &lines[lines.len().saturating_sub(EDGE).max(head)..] {
        let _ = writeln!(out, "  {line}");
    }
    out
}

#[test]
fn collect_of_a_simulated_session_matches_the_golden_files() {
    let dir = tmp();
    let data = dir.path().join("data");
    simulate_session(&data, 20, 7, false);

    let journal = dir.path().join("journal");
    let mut collector = open_collector(collect_opts(&data, &journal, &dir.path().join("state")));
    collector.step(true, &mut |_, _| {}).unwrap();
    assert!(collector.rejects().is_empty(), "{:?}", collector.rejects());
    golden(
        "golden/collect_sim_20min_seed7.counters.txt",
        &counters_text(collector.ingestor().counters()),
    );

    let digests: String = read_journals(&journal)
        .iter()
        .map(|(name, text)| digest(name, text))
        .collect();
    golden("golden/collect_sim_20min_seed7.journal.txt", &digests);
}
