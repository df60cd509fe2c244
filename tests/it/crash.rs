//! Crash test with real processes: `mia collect` follows a data folder that this test keeps
//! appending to (lines split across writes, replays, invalid lines, a new day's file), and is
//! killed with SIGKILL at several moments, restarted each time, and finished with
//! `mia collect --once`. Its journals must then equal those of one uninterrupted
//! `mia collect --once` over the final data: no accepted line lost, none duplicated.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use crate::support::{
    Ran, TestCommand, append, read_journals, strip_ingest_ts, tmp, unified_streams, wait_until,
};

/// A small deterministic generator (xorshift64*), so that every run writes the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

enum Chunk {
    Write { rel: String, bytes: String },
    Pause,
}

/// What the writer will do, and what a correct collector must make of it.
struct Plan {
    chunks: Vec<Chunk>,
    accepted: usize,
    invalid: usize,
    /// Rough final size of the unified journals, to decide when to kill.
    journal_bytes: usize,
}

const DAY1: &str = "DATA_SIERRA_CHART/DATA_2025/SEPTEMBRE/20250919/CHART_3";
const DAY2: &str = "DATA_SIERRA_CHART/DATA_2025/SEPTEMBRE/20250920/CHART_3";

fn plan(seed: u64, steps: usize) -> Plan {
    let mut rng = Rng(seed);
    let mut pending: BTreeMap<String, String> = BTreeMap::new();
    let mut chunks = Vec::new();
    let (mut accepted, mut invalid, mut journal_bytes) = (0, 0, 0);
    let mut seq: u32 = 48_213_000;
    let mut recent_quotes: Vec<String> = Vec::new();
    let mut bar_last: Option<(u32, String)> = None;
    let mut volume = 0u32;
    let push = |pending: &mut BTreeMap<String, String>, rel: &str, line: &str, end: &str| {
        pending
            .entry(rel.to_owned())
            .or_default()
            .push_str(&format!("{line}{end}"));
    };
    for step in 0..steps {
        let day = if step < steps / 2 { DAY1 } else { DAY2 };
        let date = if step < steps / 2 {
            "20250919"
        } else {
            "20250920"
        };
        let serial = if step < steps / 2 { 45919 } else { 45920 };
        let quotes = format!("{day}/chart_3_quote_{date}.jsonl");
        let trades = format!("{DAY1}/chart_3_trade_20250919.jsonl");
        let bars = format!("{DAY1}/chart_3_basedata_20250919.jsonl");

        seq += 1;
        let bid = 6490.0 + rng.below(40) as f64 * 0.25;
        let line = format!(
            "{{\"t\":{serial}.{:06},\"sym\":\"ESZ25_FUT_CME\",\"type\":\"quote\",\"kind\":\"BIDASK\",\"bid\":{bid:.8},\"ask\":{:.8},\"bq\":{},\"aq\":{},\"seq\":{seq},\"chart\":3}}",
            400_000 + step,
            bid + 0.25,
            1 + rng.below(50),
            1 + rng.below(50)
        );
        push(&mut pending, &quotes, &line, "\r\n");
        accepted += 1;
        journal_bytes += line.len() + 130;
        recent_quotes.push(line);
        if recent_quotes.len() > 20 {
            recent_quotes.remove(0);
        }
        if step % 150 == 149 {
            // The G3 stale rewind: the last records again, same seq.
            for line in recent_quotes.clone() {
                push(&mut pending, &quotes, &line, "\r\n");
            }
        }

        if step % 3 == 0 {
            seq += 1;
            let line = format!(
                "{{\"t\":45919.{:06},\"sym\":\"ESZ25_FUT_CME\",\"type\":\"trade\",\"side\":\"BUY\",\"px\":{:.8},\"vol\":{},\"seq\":{seq},\"tt\":2,\"chart\":3}}",
                400_000 + step,
                6490.0 + rng.below(40) as f64 * 0.25,
                1 + rng.below(9)
            );
            push(&mut pending, &trades, &line, "\r\n");
            accepted += 1;
            journal_bytes += line.len() + 130;
        }
        if step % 400 == 7 {
            push(&mut pending, &trades, "", "\r\n");
        }

        let bar = 14_000 + (step / 25) as u32;
        match &bar_last {
            Some((i, line)) if *i == bar && rng.below(5) == 0 => {
                // An identical intrabar snapshot: a duplicate.
                let line = line.clone();
                push(&mut pending, &bars, &line, "\r\n");
            }
            _ => {
                volume += 1 + rng.below(20) as u32;
                let c = 6490.0 + rng.below(40) as f64 * 0.25;
                let line = format!(
                    "{{\"t\":45919.{:06},\"sym\":\"ESZ25_FUT_CME\",\"type\":\"basedata\",\"i\":{bar},\"o\":6490.00000000,\"h\":6500.00000000,\"l\":6489.00000000,\"c\":{c:.8},\"v\":{volume},\"bidvol\":{},\"askvol\":{},\"chart\":3}}",
                    600_000 + bar - 14_000,
                    volume / 2,
                    volume - volume / 2
                );
                push(&mut pending, &bars, &line, "\r\n");
                accepted += 1;
                journal_bytes += line.len() + 130;
                bar_last = Some((bar, line));
            }
        }
        if step % 97 == 50 {
            let line = format!(
                "{{\"t\":45919.600000,\"sym\":\"ESZ25_FUT_CME\",\"type\":\"basedata\",\"i\":{bar},\"o\":nan,\"h\":-nan(ind),\"l\":inf,\"c\":1}}"
            );
            push(&mut pending, &bars, &line, "\r\n");
            invalid += 1;
        }
        if step % 50 == 0 {
            let line = format!(
                "{{\"sym\":\"ESZ25_FUT_CME\",\"t\":45919.{:09},\"i\":{},\"vwap\":6491.737305,\"sd1\":6496.489258,\"sd2\":6486.985352,\"sd3\":0,\"sd4\":0,\"sd5\":0,\"sd6\":0}}",
                600_000_000 + step,
                400 + step / 50
            );
            push(&mut pending, "chart_4_vwap_20250919.jsonl", &line, "\n");
            accepted += 1;
            journal_bytes += line.len() + 130;
        }
        if step % 40 == 0 {
            let line = format!(
                "{{\"t\":45919.{:06},\"type\":\"vix\",\"i\":{},\"last\":{:.6},\"chart\":8}}",
                600_000 + step,
                6000 + step / 40,
                15.0 + rng.below(100) as f64 / 100.0
            );
            push(&mut pending, "chart_8_vix_20250919.jsonl", &line, "\r\n");
            accepted += 1;
            journal_bytes += line.len() + 130;
        }

        // Write what is pending, often cutting the last line somewhere in the middle.
        for (rel, text) in &mut pending {
            if text.is_empty() {
                continue;
            }
            let cut = if rng.below(10) < 3 {
                rng.below(text.len() as u64 + 1) as usize
            } else {
                text.len()
            };
            if cut > 0 {
                chunks.push(Chunk::Write {
                    rel: rel.clone(),
                    bytes: text[..cut].to_owned(),
                });
                text.replace_range(..cut, "");
            }
        }
        if step % 2 == 1 {
            chunks.push(Chunk::Pause);
        }
    }
    for (rel, text) in pending {
        if !text.is_empty() {
            chunks.push(Chunk::Write { rel, bytes: text });
        }
    }
    // A last line still being written when everything stops: both runs leave it pending.
    chunks.push(Chunk::Write {
        rel: format!("{DAY1}/chart_3_trade_20250919.jsonl"),
        bytes: "{\"t\":45919.7,\"sym\":\"ESZ25_FUT_CME\",\"type\":\"tra".to_owned(),
    });
    Plan {
        chunks,
        accepted,
        invalid,
        journal_bytes,
    }
}

fn execute(chunks: Vec<Chunk>, data: PathBuf) {
    for chunk in chunks {
        match chunk {
            Chunk::Write { rel, bytes } => append(&data.join(rel), &bytes),
            Chunk::Pause => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

/// Kills the child when the test ends, even by a panic: a follower never stops by itself.
struct Guard(Option<Child>);

impl Guard {
    fn kill(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.kill();
    }
}

struct Dirs {
    data: PathBuf,
    config: PathBuf,
    logs: PathBuf,
}

impl Dirs {
    fn collect_args(&self, run: &Path, once: bool) -> Vec<String> {
        let mut args = vec![
            "--config".to_owned(),
            self.config.display().to_string(),
            "collect".to_owned(),
            "--data".to_owned(),
            self.data.display().to_string(),
            "--journal".to_owned(),
            run.join("journal").display().to_string(),
            "--state".to_owned(),
            run.join("state").display().to_string(),
        ];
        if once {
            args.push("--once".to_owned());
        }
        args
    }

    fn log(&self, tag: &str) -> String {
        let read = |ext: &str| {
            std::fs::read_to_string(self.logs.join(format!("{tag}.{ext}"))).unwrap_or_default()
        };
        format!("stdout:\n{}\nstderr:\n{}", read("stdout"), read("stderr"))
    }
}

fn unified_bytes(journal: &Path) -> usize {
    read_journals(journal)
        .iter()
        .filter(|(name, _)| name.starts_with("mia_unified_"))
        .map(|(_, text)| text.len())
        .sum()
}

fn rejects(journal: &Path) -> Vec<String> {
    let mut lines: Vec<String> = read_journals(journal)
        .iter()
        .filter(|(name, _)| name.starts_with("mia_rejects_"))
        .flat_map(|(name, text)| text.lines().map(move |l| format!("{name}: {l}")))
        .map(|l| {
            // Rejects carry their own ingest_ts key (sorted JSON keys: file, ingest_ts, line…).
            let value_start = l.find("\"ingest_ts\":\"").map(|i| i + 13);
            match value_start {
                Some(start) => {
                    let end = start + l[start..].find('"').unwrap();
                    format!("{}{}", &l[..start], &l[end..])
                }
                None => strip_ingest_ts(&l),
            }
        })
        .collect();
    lines.sort();
    lines
}

fn assert_ok(ran: &Ran, what: &str) {
    assert_eq!(ran.code, Some(0), "{what}: {ran:?}");
}

/// Ctrl-C (SIGINT) stops a following `mia collect` cleanly: exit 0, the counter report printed,
/// and everything read journaled and checkpointed, so that a `--once` run afterwards adds
/// nothing.
#[test]
fn ctrl_c_stops_collect_cleanly_with_everything_journaled() {
    let dir = tmp();
    let data = dir.path().join("data");
    let run = dir.path().join("run");
    let logs = dir.path().join("logs");
    let config = dir.path().join("mia.toml");
    std::fs::write(
        &config,
        "[ingest]\npoll_interval_ms = 5\nrescan_interval_ms = 20\nfsync = false\n\n[instruments.ES]\n",
    )
    .unwrap();
    let plan = plan(7, 300);
    let accepted = plan.accepted;
    execute(plan.chunks, data.clone());
    let dirs = Dirs {
        data,
        config,
        logs: logs.clone(),
    };
    let mut guard = Guard(Some(
        TestCommand::new(dirs.collect_args(&run, false)).spawn(&logs, "follow"),
    ));
    let journal = run.join("journal");
    wait_until(Duration::from_secs(20), "every line journaled", || {
        read_journals(&journal)
            .iter()
            .filter(|(n, _)| n.starts_with("mia_unified_"))
            .map(|(_, t)| t.lines().count())
            .sum::<usize>()
            == accepted
    });
    let child = guard.0.as_mut().unwrap();
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let mut status = None;
    wait_until(Duration::from_secs(20), "mia collect to exit", || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    let status = status.unwrap();
    assert_eq!(status.code(), Some(0), "{}", dirs.log("follow"));
    let log = dirs.log("follow");
    assert!(log.contains("records journaled"), "{log}");
    guard.0 = None;

    let before = read_journals(&journal);
    let again = TestCommand::new(dirs.collect_args(&run, true)).run();
    assert_ok(&again, "collect --once after Ctrl-C");
    assert_eq!(read_journals(&journal), before, "nothing left to journal");
}

#[test]
fn kill_9_at_any_moment_loses_and_duplicates_nothing() {
    let dir = tmp();
    let dirs = Dirs {
        data: dir.path().join("data"),
        config: dir.path().join("mia.toml"),
        logs: dir.path().join("logs"),
    };
    std::fs::create_dir_all(&dirs.data).unwrap();
    std::fs::write(
        &dirs.config,
        "[ingest]\npoll_interval_ms = 5\nrescan_interval_ms = 20\nfsync = false\n\n[instruments.ES]\n",
    )
    .unwrap();
    let crashed = dir.path().join("crashed");
    let reference = dir.path().join("reference");
    let journal = crashed.join("journal");

    let plan = plan(0x5eed_1234_abcd, 2400);
    let (expected_accepted, expected_invalid) = (plan.accepted, plan.invalid);
    let estimate = plan.journal_bytes;
    let data = dirs.data.clone();
    let writer = std::thread::spawn(move || execute(plan.chunks, data));

    let mut rng = Rng(0x00c0_ffee);
    let mut starts = 0;
    let spawn = |starts: &mut usize| {
        *starts += 1;
        let tag = format!("follow-{starts}");
        let child = TestCommand::new(dirs.collect_args(&crashed, false))
            .env("MIA_LOG", "info")
            .spawn(&dirs.logs, &tag);
        (Guard(Some(child)), tag)
    };
    let (mut guard, mut tag) = spawn(&mut starts);
    let mut kills_while_writing = 0;
    for (n, fraction) in [0.12, 0.3, 0.45, 0.6, 0.75].into_iter().enumerate() {
        if n == 2 {
            // Once right after a start, while it replays the sources up to its checkpoint.
            std::thread::sleep(Duration::from_millis(rng.below(4)));
            guard.kill();
            (guard, tag) = spawn(&mut starts);
        }
        let target = (estimate as f64 * fraction) as usize;
        wait_until(
            Duration::from_secs(30),
            &format!("the journal to reach {target} bytes"),
            || {
                if let Some(child) = guard.0.as_mut()
                    && let Some(status) = child.try_wait().unwrap()
                {
                    panic!(
                        "mia collect exited by itself ({status}):\n{}",
                        dirs.log(&tag)
                    );
                }
                unified_bytes(&journal) >= target
            },
        );
        std::thread::sleep(Duration::from_millis(rng.below(8)));
        kills_while_writing += usize::from(!writer.is_finished());
        guard.kill();
        (guard, tag) = spawn(&mut starts);
    }
    writer.join().unwrap();
    // The last follower is killed at a random moment too, then a one-shot run finishes.
    std::thread::sleep(Duration::from_millis(rng.below(20)));
    guard.kill();
    let finish = TestCommand::new(dirs.collect_args(&crashed, true)).run();
    assert_ok(&finish, "collect --once after the crashes");
    eprintln!(
        "{starts} follower runs, {kills_while_writing} killed while the writer was still writing"
    );

    let single = TestCommand::new(dirs.collect_args(&reference, true)).run();
    assert_ok(&single, "uninterrupted collect --once");

    let want = unified_streams(&reference.join("journal"));
    let got = unified_streams(&journal);
    let total: usize = want.values().map(Vec::len).sum();
    assert_eq!(
        total, expected_accepted,
        "the uninterrupted run journals every valid line once"
    );
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "same journals and streams"
    );
    for (stream, want_lines) in &want {
        let got_lines = &got[stream];
        if let Some(i) = (0..want_lines.len().max(got_lines.len()))
            .find(|&i| want_lines.get(i) != got_lines.get(i))
        {
            panic!(
                "stream {stream:?}: {} lines after the crashes, {} without; first difference at line {}:\n  crashed: {:?}\n  single:  {:?}",
                got_lines.len(),
                want_lines.len(),
                i + 1,
                got_lines.get(i),
                want_lines.get(i)
            );
        }
    }
    let want_rejects = rejects(&reference.join("journal"));
    assert_eq!(want_rejects.len(), expected_invalid);
    pretty_assertions::assert_eq!(rejects(&journal), want_rejects);
}
