//! `mia run`: the live engine, until Ctrl-C.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use mia::clock::{Clock, LiveClock};
use mia::config::Config;
use mia::execution::ExecutionMode;
use mia::rules::Tier;
use mia::runner::{RunOptions, RunSummary, Runner};
use mia::simulate::{MANIFEST_FILE, Manifest};

use super::Status;

const GUIDE: &str = "\
What it does:
  Tails the chart files Sierra writes (paths.data_dir), journals every record, keeps the market
  snapshot, evaluates the live rule set (and a shadow set) at each completed one-minute bar,
  checks every approved order against risk and the kill switch, and sends it where
  execution.mode says. Rule files reload live when saved. Ctrl-C stops cleanly.

Execution:
  read-only (default)  decisions and verdicts are journaled; nothing is sent
  paper                orders go to the built-in paper exchange (--paper or execution.mode)
  live                 orders go to Sierra Chart over DTC: needs execution.mode = \"live\" in
                       the config AND --live here; either one alone is refused

Journals (paths.journal_dir):
  mia_unified_YYYYMMDD.jsonl  every accepted record      decisions_YYYYMMDD.jsonl  every decision
  orders_YYYYMMDD.jsonl       submissions, fills, rejects  trades_YYYYMMDD.jsonl   closed trades

Monitor (monitor.address, 127.0.0.1:9464 by default):
  /          dashboard: decisions, positions, P&L, equity, kill switch buttons, staleness
  /metrics   Prometheus metrics          /status   the state as JSON (`mia status` prints it)

Examples:
  mia run                                   # read-only on the config's folders
  mia run --paper --shadow examples/rules   # paper trading, a second rule set in shadow
  mia run --live --config live.toml         # live: execution.mode = \"live\" in live.toml too
  mia simulate --out d --realtime 60 & mia run --data d --sim-clock --paper";

/// Run the live engine: tail, decide, check risk, execute, journal, monitor.
#[derive(Debug, clap::Args)]
#[command(after_long_help = GUIDE, after_help = "More (execution modes, journals, monitor): --help")]
pub(crate) struct Args {
    #[command(flatten)]
    folders: super::Folders,
    /// Live rule set folder (overrides rules.dir).
    #[arg(long, value_name = "DIR")]
    rules: Option<PathBuf>,
    /// Shadow rule set folder, evaluated on the same snapshots, never executed (overrides
    /// rules.shadow_dir).
    #[arg(long, value_name = "DIR")]
    shadow: Option<PathBuf>,
    /// Send approved orders to the built-in paper exchange.
    #[arg(long, conflicts_with = "live")]
    paper: bool,
    /// Send approved orders to Sierra Chart over DTC. Needs execution.mode = "live" in the
    /// config too.
    #[arg(long)]
    live: bool,
    /// Address of the monitor (overrides monitor.address; port 0 takes any free port).
    #[arg(long, value_name = "ADDR", conflicts_with = "no_monitor")]
    monitor: Option<SocketAddr>,
    /// No monitor HTTP server.
    #[arg(long)]
    no_monitor: bool,
    /// Take the clock from the manifest of a `mia simulate --realtime` session in the data
    /// folder, so ages, staleness and entry windows follow simulated time.
    #[arg(long)]
    sim_clock: bool,
}

/// The execution mode: the config's, `--paper`, and live only when both sides say so.
pub(crate) fn mode(config: &Config, paper: bool, live: bool) -> anyhow::Result<ExecutionMode> {
    match (config.execution.mode, live) {
        (ExecutionMode::Live, true) => Ok(ExecutionMode::Live),
        (ExecutionMode::Live, false) => anyhow::bail!(
            "execution.mode is \"live\" in the config but --live is missing: live trading needs \
             both. Add --live to send orders to Sierra Chart, or set execution.mode to \"paper\" \
             or \"read-only\""
        ),
        (other, true) => anyhow::bail!(
            "--live was given but execution.mode is \"{}\" in the config: live trading needs both. \
             Set execution.mode = \"live\" in the config (and check [dtc] and \
             instruments.<NAME>.symbol), or drop --live",
            other.as_str()
        ),
        (_, false) if paper => Ok(ExecutionMode::Paper),
        (other, false) => Ok(other),
    }
}

/// The clock of a simulated realtime session in `data`.
pub(crate) fn sim_clock(data: &Path) -> anyhow::Result<Arc<dyn Clock>> {
    let path = data.join(MANIFEST_FILE);
    let manifest = Manifest::load(&path).with_context(|| {
        format!(
            "--sim-clock needs a folder written by `mia simulate --realtime`; cannot read {}",
            path.display()
        )
    })?;
    let anchor = manifest.realtime.with_context(|| {
        format!(
            "--sim-clock: {} was not written with --realtime, so it has no clock",
            path.display()
        )
    })?;
    Ok(Arc::new(anchor.clock()))
}

pub(crate) fn run(config: &Config, args: Args) -> anyhow::Result<Status> {
    let mut opts = RunOptions::from_config(config);
    opts.mode = mode(config, args.paper, args.live)?;
    args.folders.apply(
        &mut opts.data_dir,
        &mut opts.journal_dir,
        &mut opts.state_dir,
    );
    if let Some(rules) = args.rules {
        opts.rules_dir = rules;
    }
    if args.shadow.is_some() {
        opts.shadow_dir = args.shadow;
    }
    if args.no_monitor {
        opts.monitor = None;
    } else if let Some(addr) = args.monitor {
        opts.monitor = Some(addr);
    }
    let clock: Arc<dyn Clock> = if args.sim_clock {
        sim_clock(&opts.data_dir)?
    } else {
        Arc::new(LiveClock)
    };
    let stop = super::stop_flag();
    let data = opts.data_dir.clone();
    let runner = Runner::start(config, opts.clone(), clock)
        .with_context(|| format!("cannot start on {}", data.display()))?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "mia run: {} mode, tailing {}, journals in {}",
            opts.mode.as_str(),
            opts.data_dir.display(),
            opts.journal_dir.display()
        )?;
        writeln!(out, "live rules: {}", opts.rules_dir.display())?;
        if let Some(shadow) = &opts.shadow_dir {
            writeln!(out, "shadow rules: {}", shadow.display())?;
        }
        if let Some(url) = runner.monitor_url() {
            writeln!(
                out,
                "dashboard: {url}   metrics: {url}metrics   status: {url}status"
            )?;
        }
        writeln!(out, "Ctrl-C to stop")?;
        out.flush()?;
    }
    let summary = runner.run(&stop)?;
    print_summary(&mut std::io::stdout().lock(), &summary)?;
    Ok(Status::Ok)
}

/// The closing summary of a run: one row per rule set, then the totals.
pub(crate) fn print_summary(out: &mut impl Write, summary: &RunSummary) -> anyhow::Result<()> {
    let header = [
        "set",
        "rules",
        "decisions",
        "GOOD+",
        "errors",
        "trades",
        "wins",
        "net P&L",
    ]
    .map(str::to_owned)
    .to_vec();
    let mut table = super::table(header);
    for set in &summary.sets {
        let decisions: u64 = set.decisions.values().sum();
        let tradable: u64 = set
            .decisions
            .iter()
            .filter(|((tier, _), _)| *tier <= Tier::Good)
            .map(|(_, n)| n)
            .sum();
        let wins = set.trades.iter().filter(|t| t.pnl > 0.0).count();
        let net: f64 = set.trades.iter().map(|t| t.pnl).sum();
        table.add_row(vec![
            set.name.clone(),
            super::short_hash(&set.rules_hash).to_owned(),
            decisions.to_string(),
            tradable.to_string(),
            set.rule_errors.to_string(),
            set.trades.len().to_string(),
            wins.to_string(),
            mia::perf::fmt_money(net),
        ]);
    }
    super::align_right(&mut table, 2);
    let c = &summary.counts;
    writeln!(
        out,
        "\n{} lines read ({} accepted, {} rejected); {} evaluation points; {} orders sent, {} fills, {} rejected; kill switch {}",
        c.lines_read,
        c.lines_accepted,
        c.lines_rejected,
        summary.evaluations,
        c.orders_submitted,
        c.fills,
        c.rejections,
        summary.kill_switch.as_str(),
    )?;
    writeln!(out, "{table}")?;
    writeln!(out, "journals: {}", summary.journal_dir.display())?;
    Ok(())
}
