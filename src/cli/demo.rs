//! `mia demo`: the whole live path with no setup (product.md §12).
//!
//! In one process: the simulator appends a Sierra session into a fresh folder at 60× real time,
//! `mia dtc-sim` listens on a free port and takes its prices from those files, and the engine of
//! `mia run` tails them in live mode with the default rules and the example shadow set, sending
//! approved orders over DTC to the simulator. At the end it prints the run's summary and writes
//! the HTML report of its trades.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use chrono::{NaiveDate, NaiveTime};
use mia::clock::{Clock, LiveClock, Stopwatch};
use mia::config::Config;
use mia::dtc::sim::{SimConfig, SimServer};
use mia::execution::ExecutionMode;
use mia::ingest::naming::Layout;
use mia::runner::{RunOptions, Runner};
use mia::simulate::{self, SimOptions};

use super::Status;

/// The demo's configuration (`config/demo.toml`, documented there).
const DEMO_CONFIG: &str = include_str!("../../config/demo.toml");

/// The default rule set and the example shadow set, written into the demo's folder so that the
/// demo runs from anywhere (and so that a person can edit them during the run and watch the
/// reload on the dashboard).
const RULE_FILES: &[(&str, &str)] = &[
    (
        "rules/strategy.rhai",
        include_str!("../../rules/strategy.rhai"),
    ),
    (
        "rules/menthorq.rhai",
        include_str!("../../rules/menthorq.rhai"),
    ),
    (
        "rules/battle_navale.rhai",
        include_str!("../../rules/battle_navale.rhai"),
    ),
    ("rules/vix.rhai", include_str!("../../rules/vix.rhai")),
    (
        "rules/hard_rules.rhai",
        include_str!("../../rules/hard_rules.rhai"),
    ),
    (
        "rules/tests/default.toml",
        include_str!("../../rules/tests/default.toml"),
    ),
    (
        "shadow/strategy.rhai",
        include_str!("../../examples/rules/strategy.rhai"),
    ),
    (
        "shadow/trigger.rhai",
        include_str!("../../examples/rules/trigger.rhai"),
    ),
    (
        "shadow/confirm.rhai",
        include_str!("../../examples/rules/confirm.rhai"),
    ),
    (
        "shadow/hard_rules.rhai",
        include_str!("../../examples/rules/hard_rules.rhai"),
    ),
    (
        "shadow/tests/mq_first.toml",
        include_str!("../../examples/rules/tests/mq_first.toml"),
    ),
];

const GUIDE: &str = "\
What it does, in about a minute and with nothing to set up:
  1. the simulator appends an hour of a Sierra session (ES, 10:00 to 11:00 New York) into a new
     folder, 60 times faster than real time, as the Sierra studies write it;
  2. a DTC server that behaves like Sierra's trade simulation (`mia dtc-sim`) starts on a free
     port and fills orders at the prices in those files;
  3. the engine of `mia run` tails the files in live mode: the default rules (rules/) decide,
     the example \"MenthorQ first\" set runs in shadow, risk checks each approved order, and the
     order goes over DTC to the simulator as a bracket;
  4. open the dashboard URL it prints: decisions with their reasons, positions, P&L, the
     equity curve, the kill switch (try its button) and the staleness of each source;
  5. at the end it prints a summary and writes an HTML report of the trades.

The folder it prints keeps everything: data/ (the Sierra files), journal/ (unified, decisions,
orders, trades), state/ (kill switch, order ids), rules/ and shadow/ (edit one during the run:
it reloads live), report.html. Ctrl-C stops early and still prints the summary.";

/// Run the whole live path on a simulated session, with no setup.
#[derive(Debug, clap::Args)]
#[command(after_long_help = GUIDE, after_help = "More: --help")]
pub(crate) struct Args {
    /// Folder for everything the demo writes (default: a new folder under the system's
    /// temporary folder).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Simulated minutes (60 minutes take one minute of wall time at --speed 60).
    #[arg(long, value_name = "N", default_value_t = 60)]
    minutes: u32,
    /// Simulated seconds per wall second.
    #[arg(long, value_name = "FACTOR", default_value_t = 60.0)]
    speed: f64,
    /// Random seed of the simulated market.
    #[arg(long, default_value_t = 13)]
    seed: u64,
    /// Address of the dashboard (default 127.0.0.1:9464, or any free port when it is taken).
    #[arg(long, value_name = "ADDR")]
    monitor: Option<std::net::SocketAddr>,
}

/// Writes the embedded rule sets under `dir`.
fn write_rules(dir: &Path) -> anyhow::Result<()> {
    for (rel, text) in RULE_FILES {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn demo_dir() -> PathBuf {
    let now = LiveClock.now();
    let stamp = now.to_iso_millis().replace([':', '-', '.'], "");
    std::env::temp_dir().join(format!("mia-demo-{}", &stamp[..15]))
}

pub(crate) fn run(args: Args) -> anyhow::Result<Status> {
    if !(args.speed.is_finite() && args.speed > 0.0) {
        anyhow::bail!("--speed must be a positive factor, got {}", args.speed);
    }
    let dir = args.dir.clone().unwrap_or_else(demo_dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_rules(&dir)?;
    let data = dir.join("data");
    std::fs::create_dir_all(&data).with_context(|| format!("cannot create {}", data.display()))?;

    let mut config = Config::parse(DEMO_CONFIG, Path::new("config/demo.toml"))
        .context("the embedded demo configuration is invalid")?;
    config.paths.data_dir.clone_from(&data);
    config.paths.journal_dir = dir.join("journal");
    config.paths.state_dir = dir.join("state");
    config.rules.dir = dir.join("rules");
    config.rules.shadow_dir = Some(dir.join("shadow"));

    // The DTC simulator, filling at the prices of the files as they grow.
    let sim = SimServer::start(SimConfig {
        listen: "127.0.0.1:0".parse()?,
        price: 6500.0,
        ..SimConfig::default()
    })
    .context("cannot start the DTC simulator")?;
    sim.follow_prices(&data)?;
    for inst in config.instruments.values_mut() {
        inst.dtc_address = Some(sim.addr().to_string());
    }

    // The simulated session, appended in a thread at `speed`.
    let stop = super::stop_flag();
    let sim_done = Arc::new(AtomicBool::new(false));
    let opts = SimOptions {
        out: data.clone(),
        day: NaiveDate::from_ymd_opt(2025, 12, 8).context("demo day")?,
        start: NaiveTime::from_hms_opt(10, 0, 0).context("demo start")?,
        minutes: args.minutes,
        seed: args.seed,
        layout: Layout::Organised,
        realtime: Some(args.speed),
        ..SimOptions::default()
    };
    let simulator = {
        let stop = Arc::clone(&stop);
        let done = Arc::clone(&sim_done);
        std::thread::spawn(move || {
            let result = simulate::run(&opts, &stop, &mut |_, _| {});
            done.store(true, Ordering::Relaxed);
            result
        })
    };
    // The engine's clock is the simulator's: wait for its manifest.
    let started = Stopwatch::start();
    let clock = loop {
        match super::run::sim_clock(&data) {
            Ok(clock) => break clock,
            Err(e) if started.elapsed() > Duration::from_secs(10) => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    };

    let mut opts = RunOptions::from_config(&config);
    opts.mode = super::run::mode(&config, false, true)?;
    debug_assert_eq!(opts.mode, ExecutionMode::Live);
    let wanted = args.monitor.unwrap_or(config.monitor.address);
    opts.monitor = Some(wanted);
    let runner = match Runner::start(&config, opts.clone(), Arc::clone(&clock)) {
        Ok(runner) => runner,
        Err(mia::runner::RunError::Monitor(e)) if args.monitor.is_none() => {
            tracing::info!(error = %e, "the default monitor port is taken; using any free port");
            opts.monitor = Some("127.0.0.1:0".parse()?);
            Runner::start(&config, opts.clone(), Arc::clone(&clock))?
        }
        Err(e) => return Err(e.into()),
    };
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "mia demo in {}", dir.display())?;
        writeln!(
            out,
            "simulating {} minutes of ES at {}x; DTC simulator on {}",
            args.minutes,
            args.speed,
            sim.addr()
        )?;
        if let Some(url) = runner.monitor_url() {
            writeln!(out, "dashboard: {url}")?;
        }
        writeln!(out, "Ctrl-C to stop early")?;
        out.flush()?;
    }

    // The engine stops a moment after the simulator's last line, so that it reads it all.
    let engine_stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let engine_stop = Arc::clone(&engine_stop);
        let stop = Arc::clone(&stop);
        let done = Arc::clone(&sim_done);
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
            std::thread::sleep(Duration::from_millis(500));
            engine_stop.store(true, Ordering::Relaxed);
        })
    };
    let summary = runner.run(&engine_stop)?;
    let _ = watcher.join();
    let report = simulator
        .join()
        .map_err(|_| anyhow::anyhow!("the simulator thread panicked"))??;
    let fills = sim.fills().len();
    sim.stop();

    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "\nsimulated {} minutes ({} lines); the DTC simulator filled {fills} orders",
        report.minutes_written, report.lines
    )?;
    super::run::print_summary(&mut out, &summary)?;
    let report_path = dir.join("report.html");
    match write_report(&summary.journal_dir, &report_path) {
        Ok(()) => writeln!(out, "report: {}", report_path.display())?,
        Err(e) => writeln!(out, "no report: {e:#}")?,
    }
    Ok(Status::Ok)
}

/// The HTML report of a run's journals: both sets' trades and their comparison.
pub(crate) fn write_report(journal_dir: &Path, path: &Path) -> anyhow::Result<()> {
    let journals = mia::shadow::read_journals(journal_dir)?;
    let live: Vec<_> = journals
        .trades
        .iter()
        .filter(|t| t.set == "live")
        .cloned()
        .collect();
    let shadow: Vec<_> = journals
        .trades
        .iter()
        .filter(|t| t.set == "shadow")
        .cloned()
        .collect();
    let has_shadow = journals
        .decisions
        .iter()
        .any(|d| d.set == mia::shadow::RuleSetRole::Shadow);
    let comparison =
        has_shadow.then(|| mia::shadow::compare(&journals.decisions, &journals.trades, 10));
    let html = mia::report::render(&mia::report::ReportInput {
        title: &format!("mia run of {}", journal_dir.display()),
        live: &live,
        shadow: has_shadow.then_some(shadow.as_slice()),
        comparison: comparison.as_ref(),
    });
    std::fs::write(path, html).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The embedded rule sets are the folders' files, every one of them.
    #[test]
    fn embedded_rule_files_are_the_folders() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut on_disk = Vec::new();
        for (folder, name) in [("rules", "rules"), ("examples/rules", "shadow")] {
            for sub in ["", "tests"] {
                let dir = root.join(folder).join(sub);
                for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                    let file = entry.file_name().to_string_lossy().to_string();
                    if file.ends_with(".rhai") || file.ends_with(".toml") {
                        let rel = if sub.is_empty() {
                            format!("{name}/{file}")
                        } else {
                            format!("{name}/{sub}/{file}")
                        };
                        let text = std::fs::read_to_string(entry.path()).unwrap();
                        on_disk.push((rel, text));
                    }
                }
            }
        }
        on_disk.sort();
        let mut embedded: Vec<(String, String)> = RULE_FILES
            .iter()
            .map(|(rel, text)| ((*rel).to_owned(), (*text).to_owned()))
            .collect();
        embedded.sort();
        assert_eq!(embedded, on_disk);
    }

    #[test]
    fn the_demo_config_is_valid_and_live() {
        let config = Config::parse(DEMO_CONFIG, Path::new("config/demo.toml")).unwrap();
        assert_eq!(config.execution.mode, ExecutionMode::Live);
        assert_eq!(config.instruments.keys().collect::<Vec<_>>(), ["ES"]);
    }
}
