//! Soak (product.md §14 and §15): a whole simulated Globex day through a real `mia run` in paper
//! mode, at accelerated real time, with the default rules and the example shadow set. It
//! samples the engine's resident memory (`VmRSS` of `/proc/<pid>/status`) every 100 ms and
//! counts the ERROR and WARN lines of its log, alerts (the market's doing: a daily loss that
//! trips the kill switch, a drawdown) apart. Goal: memory under 100 MB and flat, no error.
//!
//! `cargo bench --bench soak` runs 1,380 minutes at 300× (about 4.6 minutes); `cargo test
//! --benches` runs 5 minutes as a smoke test. Linux only (it reads `/proc`).
//! `MIA_SOAK_MINUTES=2880 MIA_SOAK_SPEED=600 cargo bench --bench soak` soaks two days.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mia::clock::Stopwatch;

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (minutes, speed) = if full { (1_380u32, 300u32) } else { (5, 300) };
    // Longer or faster runs: MIA_SOAK_MINUTES (up to 2,880, two Globex days) and MIA_SOAK_SPEED.
    let (minutes, speed) = (
        common::env_or("MIA_SOAK_MINUTES", minutes),
        common::env_or("MIA_SOAK_SPEED", speed),
    );
    let (dir, data) = common::run_dir("soak");
    let config = common::accelerated_config();
    let config_path = dir.path().join("mia.toml");
    std::fs::write(&config_path, config).expect("config");
    let mia = env!("CARGO_BIN_EXE_mia");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));

    let started = Stopwatch::start();
    let simulator = Proc(common::spawn_simulator(&data, minutes, speed));
    while !data.join("mia_sim_manifest.json").is_file() {
        assert!(started.elapsed() < Duration::from_secs(30), "no manifest");
        std::thread::sleep(Duration::from_millis(10));
    }
    let log = dir.path().join("run.log");
    let mut run = Proc(
        Command::new(mia)
            .arg("--config")
            .arg(&config_path)
            .arg("run")
            .arg("--data")
            .arg(&data)
            .arg("--journal")
            .arg(dir.path().join("journal"))
            .arg("--state")
            .arg(dir.path().join("state"))
            .arg("--rules")
            .arg(root.join("rules"))
            .arg("--shadow")
            .arg(root.join("examples/rules"))
            .args(["--paper", "--sim-clock", "--no-monitor"])
            .env_remove("MIA_CONFIG")
            .env("MIA_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start mia run"),
    );
    let pid = run.0.id();
    let mut samples = Vec::new();
    let mut simulator = simulator;
    loop {
        if let Some(kib) = rss_kib(pid) {
            samples.push(kib);
        }
        if simulator.0.try_wait().expect("simulator").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Let the engine read the last lines, then stop it as Ctrl-C does.
    std::thread::sleep(Duration::from_secs(1));
    let _ = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    let code = run.0.wait().expect("mia run exit");
    let wall = started.elapsed();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    // Alerts are logged too (a kill-switch change at ERROR, the others at WARN); they are the
    // market's doing, not the engine's, and are counted apart.
    let alerts = text.lines().filter(|l| l.contains(" alert ")).count();
    let errors = text
        .lines()
        .filter(|l| l.contains("ERROR") && !l.contains(" alert "))
        .count();
    let warnings = text
        .lines()
        .filter(|l| l.contains("WARN") && !l.contains(" alert "))
        .count();
    let decisions: usize = std::fs::read_dir(dir.path().join("journal"))
        .expect("journal")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("decisions_"))
        .map(|e| {
            std::fs::read_to_string(e.path())
                .map(|t| t.lines().count())
                .unwrap_or(0)
        })
        .sum();
    let peak = samples.iter().max().copied().unwrap_or(0);
    let tenth = samples.len() / 10;
    let early = samples.get(tenth).copied().unwrap_or(0);
    let late = samples
        .get(samples.len().saturating_sub(tenth + 1))
        .copied()
        .unwrap_or(0);
    // Resident memory at each tenth of the run: whether a rise levels off or keeps climbing.
    let deciles: Vec<String> = (1..=9)
        .filter_map(|k| samples.get(samples.len() * k / 10))
        .map(|kib| format!("{:.1}", *kib as f64 / 1024.0))
        .collect();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "soak: {minutes} simulated minutes at {speed}x in {:.0} s; exit {:?}; {decisions} decisions\n\
         memory (VmRSS): peak {:.1} MB, at 10% {:.1} MB, at 90% {:.1} MB ({} samples)\n\
         memory at 10%, 20% … 90% of the run: {} MB\n\
         log: {errors} ERROR lines, {warnings} WARN lines, {alerts} alerts",
        wall.as_secs_f64(),
        code.code(),
        peak as f64 / 1024.0,
        early as f64 / 1024.0,
        late as f64 / 1024.0,
        samples.len(),
        deciles.join(", "),
    );
    if errors + warnings + alerts > 0 {
        let _ = writeln!(out, "{text}");
    }
    assert_eq!(code.code(), Some(0), "mia run failed:\n{text}");
    assert_eq!(errors, 0, "errors in the log:\n{text}");
}
