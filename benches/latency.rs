//! Live latency (product.md §14): from a line appended to a chart file to its decision in the
//! journal, through a real `mia run` process.
//!
//! For each setting (poll interval, file-system events on or off, rate), the harness starts
//! `mia run` (read-only, the default rules, no monitor) on a fresh folder, appends one-minute bar
//! lines for ES to `chart_3_<date>.jsonl` at a steady rate, and times each decision line's arrival
//! in `decisions_<date>.jsonl`. A bar is decided when the first line of the next bar arrives
//! (the rule of `mia run` and replay), so decision `k` belongs to the line of bar `k + 1`: its
//! latency is from that append to the decision line being complete in the journal. A watcher
//! thread polls the journal's size every 50 µs, which bounds the resolution.
//!
//! `cargo bench --bench latency` prints one table; `cargo test --benches` runs one short setting
//! as a smoke test.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mia::clock::Stopwatch;

/// One setting of the harness.
#[derive(Debug, Clone, Copy)]
struct Setting {
    poll_ms: u64,
    watch: bool,
    fsync: bool,
    /// Bars appended per second.
    rate: u32,
    /// Bars appended (the first one is not decided on).
    bars: u32,
}

/// One ES one-minute bar of 2025-09-19 from 09:30 New York on.
fn bar_line(k: u32) -> String {
    // Days since 1899-12-30 in the chart time zone: 45919 is 2025-09-19, 09:30 is 0.395833.
    let t = 45_919.0 + (570.0 + f64::from(k)) / 1_440.0;
    let price = 6_500.0 + f64::from(k % 16) * 0.25;
    format!(
        "{{\"t\":{t:.6},\"sym\":\"ESZ25_FUT_CME\",\"type\":\"basedata\",\"i\":{},\"o\":{price:.2},\"h\":{:.2},\"l\":{:.2},\"c\":{price:.2},\"v\":1200,\"bidvol\":600,\"askvol\":600,\"chart\":3}}\n",
        14_000 + k,
        price + 0.5,
        price - 0.5,
    )
}

struct Engine {
    child: Child,
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Latencies in microseconds of one setting, sorted.
fn measure(setting: Setting) -> Vec<u64> {
    let dir = tempfile::Builder::new()
        .prefix("mia-bench-latency-")
        .tempdir()
        .expect("temporary folder");
    let data = dir.path().join("data");
    let journal = dir.path().join("journal");
    std::fs::create_dir_all(&data).expect("data folder");
    let config = mia::config::REFERENCE
        .replacen(
            "poll_interval_ms = 100",
            &format!("poll_interval_ms = {}", setting.poll_ms),
            1,
        )
        .replacen("watch = true", &format!("watch = {}", setting.watch), 1)
        .replacen("fsync = true", &format!("fsync = {}", setting.fsync), 1);
    let config_path = dir.path().join("mia.toml");
    std::fs::write(&config_path, config).expect("config");
    let chart = data.join("chart_3_20250919.jsonl");
    let mut file = std::fs::File::create(&chart).expect("chart file");
    file.write_all(bar_line(0).as_bytes()).expect("first bar");

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let _engine = Engine {
        child: Command::new(env!("CARGO_BIN_EXE_mia"))
            .arg("--config")
            .arg(&config_path)
            .arg("run")
            .arg("--data")
            .arg(&data)
            .arg("--journal")
            .arg(&journal)
            .arg("--state")
            .arg(dir.path().join("state"))
            .arg("--rules")
            .arg(root.join("rules"))
            .arg("--no-monitor")
            .env_remove("MIA_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mia run"),
    };
    // Started: the first bar is in the unified journal.
    let unified = journal.join("mia_unified_20250919.jsonl");
    let started = Stopwatch::start();
    while std::fs::metadata(&unified).map_or(0, |m| m.len()) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "mia run did not start"
        );
        std::thread::sleep(Duration::from_millis(5));
    }

    // The watcher notes when each decision line is complete.
    let clock = Stopwatch::start();
    let arrivals = Arc::new(Mutex::new(Vec::<Duration>::new()));
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let arrivals = Arc::clone(&arrivals);
        let done = Arc::clone(&done);
        let journal = journal.clone();
        std::thread::spawn(move || {
            // Decisions are journaled under the engine's trading day (the wall clock's here).
            // The file is kept open and only its new bytes are read: reading it whole at each
            // poll took a core away from the engine on a 2-core machine as the file grew.
            let mut decisions: Option<std::fs::File> = None;
            let mut fresh = Vec::new();
            while !done.load(Ordering::Relaxed) {
                if decisions.is_none() {
                    decisions = std::fs::read_dir(&journal).ok().and_then(|entries| {
                        entries
                            .flatten()
                            .map(|e| e.path())
                            .find(|p| {
                                p.file_name()
                                    .and_then(|n| n.to_str())
                                    .is_some_and(|n| n.starts_with("decisions_"))
                            })
                            .and_then(|p| std::fs::File::open(p).ok())
                    });
                }
                if let Some(file) = decisions.as_mut() {
                    fresh.clear();
                    if file.read_to_end(&mut fresh).is_ok() {
                        let lines = fresh.iter().filter(|b| **b == b'\n').count();
                        if lines > 0 {
                            let at = clock.elapsed();
                            arrivals
                                .lock()
                                .expect("arrivals")
                                .extend((0..lines).map(|_| at));
                        }
                    }
                }
                std::thread::sleep(Duration::from_micros(50));
            }
        })
    };
    let period = Duration::from_secs_f64(1.0 / f64::from(setting.rate));
    let mut appended = Vec::new();
    for k in 1..setting.bars {
        let due = period * k;
        if let Some(wait) = due.checked_sub(clock.elapsed()) {
            std::thread::sleep(wait);
        }
        file.write_all(bar_line(k).as_bytes()).expect("append");
        appended.push(clock.elapsed());
    }
    let expected = appended.len();
    let waited = Stopwatch::start();
    while arrivals.lock().expect("arrivals").len() < expected {
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "only {} of {expected} decisions arrived",
            arrivals.lock().expect("arrivals").len()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    done.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    let arrivals = arrivals.lock().expect("arrivals").clone();
    let mut latencies: Vec<u64> = appended
        .iter()
        .zip(&arrivals)
        .map(|(append, arrival)| arrival.saturating_sub(*append).as_micros() as u64)
        .collect();
    latencies.sort_unstable();
    latencies
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1_000.0)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let settings: Vec<Setting> = if full {
        let mut s = Vec::new();
        for (poll_ms, watch) in [(100, false), (100, true), (10, false), (1, false)] {
            for rate in [10, 100] {
                s.push(Setting {
                    poll_ms,
                    watch,
                    fsync: true,
                    rate,
                    bars: 301,
                });
            }
        }
        s.push(Setting {
            poll_ms: 100,
            watch: true,
            fsync: false,
            rate: 100,
            bars: 301,
        });
        s
    } else {
        vec![Setting {
            poll_ms: 100,
            watch: true,
            fsync: false,
            rate: 50,
            bars: 11,
        }]
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "append-to-decision latency through `mia run` (read-only, default rules)\n\
         poll ms | fs events | fsync | bars/s | decisions |    p50    |    p99    |    max"
    );
    for setting in settings {
        let latencies = measure(setting);
        let _ = writeln!(
            out,
            "{:>7} | {:>9} | {:>5} | {:>6} | {:>9} | {:>9} | {:>9} | {:>9}",
            setting.poll_ms,
            if setting.watch { "on" } else { "off" },
            if setting.fsync { "on" } else { "off" },
            setting.rate,
            latencies.len(),
            ms(percentile(&latencies, 0.5)),
            ms(percentile(&latencies, 0.99)),
            ms(*latencies.last().unwrap_or(&0)),
        );
        let _ = out.flush();
    }
}
