//! Argument parsing and dispatch. `anyhow` lives here and only here.

mod check_rules;
mod collect;
mod config_cmd;
mod demo;
mod dtc_sim;
mod kill_switch;
mod replay;
mod run;
mod shadow_report;
mod simulate;
mod status;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, Subcommand};
use mia::config::Config;

/// mia turns Sierra Chart chart dumps into scored trade setups and risk-checked orders.
///
/// It tails the chart_<N>_*.jsonl files your Sierra studies write (3 = 1 minute, 4 = 30 minutes,
/// 8 = VIX, 10 = MenthorQ), journals every record, and keeps a typed market snapshot per
/// instrument. It is read-only by default.
///
/// Try it with no setup (about a minute; prints a dashboard URL):
///
///   mia demo
///
/// Exit codes: 0 success, 1 problems found (config check, check-rules), 2 could not run.
#[derive(Debug, Parser)]
#[command(name = "mia", version, max_term_width = 100)]
struct Cli {
    /// Configuration file. Default: $MIA_CONFIG, else ./mia.toml if present, else the embedded
    /// reference configuration (config/mia.toml).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// More log output (-v info, -vv debug, -vvv trace). MIA_LOG=<filter> overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors in the log.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the live engine: tail the chart files, decide, check risk, execute, monitor.
    Run(run::Args),
    /// The whole live path on a simulated session in about a minute, with no setup.
    Demo(demo::Args),
    /// Ingest the chart files into the unified journal (the original "test pipeline").
    Collect(collect::Args),
    /// Replay recorded files through the snapshot, features and rules; journal every decision.
    Replay(replay::Args),
    /// Check rule folders (every file, the set, its tests); for people and for CI.
    CheckRules(check_rules::Args),
    /// Compare the shadow rule set with the live set over a replay's journals.
    ShadowReport(shadow_report::Args),
    /// Write a realistic simulated Sierra session (files as the dumpers write them).
    Simulate(simulate::Args),
    /// Run a DTC server that behaves like Sierra Chart's trade simulation service.
    DtcSim(dtc_sim::Args),
    /// Validate a configuration file.
    #[command(subcommand)]
    Config(config_cmd::Command),
    /// Engage, reset or show the kill switch that stops all order flow.
    KillSwitch(kill_switch::Args),
    /// Show what a running engine is doing: kill switch, sets, data ages, latest decisions.
    Status(status::Args),
}

/// Exit status of a command that ran.
pub(crate) enum Status {
    /// Success.
    Ok,
    /// The command ran and found problems.
    Problems,
}

pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    let result = match cli.command {
        Command::Run(args) => load_config(cli.config.as_deref()).and_then(|c| run::run(&c, args)),
        Command::Demo(args) => demo::run(args),
        Command::Collect(args) => {
            load_config(cli.config.as_deref()).and_then(|c| collect::run(&c, args))
        }
        Command::Replay(args) => {
            load_config(cli.config.as_deref()).and_then(|c| replay::run(&c, args))
        }
        Command::Simulate(args) => simulate::run(args),
        Command::CheckRules(args) => check_rules::run(args),
        Command::ShadowReport(args) => shadow_report::run(args),
        Command::DtcSim(args) => dtc_sim::run(args),
        Command::Config(cmd) => config_cmd::run(cmd, cli.config.as_deref()),
        Command::KillSwitch(args) => kill_switch::run(args, cli.config.as_deref()),
        Command::Status(args) => status::run(args, cli.config.as_deref()),
    };
    match result {
        Ok(Status::Ok) => ExitCode::SUCCESS,
        Ok(Status::Problems) => ExitCode::from(1),
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            #[expect(
                clippy::print_stderr,
                reason = "the binary's one place to report a fatal error"
            )]
            {
                eprintln!("mia: {err:#}");
            }
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

fn init_logging(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("MIA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

/// Finds and loads the configuration: --config, $MIA_CONFIG, ./mia.toml, else the reference.
pub(crate) fn load_config(explicit: Option<&Path>) -> anyhow::Result<Config> {
    let from_env = std::env::var_os("MIA_CONFIG").map(PathBuf::from);
    let local = Path::new("mia.toml");
    let path = explicit
        .map(Path::to_path_buf)
        .or(from_env)
        .or_else(|| local.is_file().then(|| local.to_path_buf()));
    match path {
        Some(path) => {
            tracing::debug!(path = %path.display(), "using config file");
            Ok(Config::load(&path)?)
        }
        None => {
            tracing::debug!("using the embedded reference config");
            Ok(Config::reference())
        }
    }
}

/// The first 12 characters of a rule set hash, as every command prints it.
pub(crate) fn short_hash(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// A table in mia's style with this header.
pub(crate) fn table(header: Vec<String>) -> comfy_table::Table {
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::UTF8_FULL_CONDENSED)
        .set_header(header);
    table
}

/// Right-aligns the columns of `table` from `from` on (numbers).
pub(crate) fn align_right(table: &mut comfy_table::Table, from: usize) {
    for idx in from..table.column_count() {
        if let Some(col) = table.column_mut(idx) {
            col.set_cell_alignment(comfy_table::CellAlignment::Right);
        }
    }
}

/// The folders a tailing command works in, each overriding its `[paths]` key.
#[derive(Debug, clap::Args)]
pub(crate) struct Folders {
    /// Data folder written by Sierra (overrides paths.data_dir).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Journal folder (overrides paths.journal_dir).
    #[arg(long, value_name = "DIR")]
    journal: Option<PathBuf>,
    /// State folder: checkpoint, kill switch, order ids (overrides paths.state_dir).
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
}

impl Folders {
    /// Replaces the data, journal and state folders that were given.
    pub(crate) fn apply(self, data: &mut PathBuf, journal: &mut PathBuf, state: &mut PathBuf) {
        for (given, folder) in [
            (self.data, data),
            (self.journal, journal),
            (self.state, state),
        ] {
            if let Some(given) = given {
                *folder = given;
            }
        }
    }
}

/// Returns a flag set by Ctrl-C, so long commands stop cleanly and flush their journals.
pub(crate) fn stop_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let handler = Arc::clone(&stop);
    if let Err(e) = ctrlc::set_handler(move || handler.store(true, Ordering::Relaxed)) {
        tracing::warn!(error = %e, "cannot install the Ctrl-C handler");
    }
    stop
}
