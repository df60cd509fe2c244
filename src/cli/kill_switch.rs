//! `mia kill-switch engage|reset|status`: the manual side of the kill switch.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use mia::clock::{Clock, LiveClock};
use mia::risk::{Change, FileStore, KillState, KillSwitch, KillSwitchError, KillSwitchStore};

use super::Status;

/// Shown after the command list of `mia kill-switch --help`.
const GUIDE: &str = "\
The kill switch stops mia's order flow. Its state is kept in the state folder, so it survives
restarts, and every change is journaled there.

States, least to most severe:
  NORMAL        trading as configured
  HALT_ENTRIES  no new entries; open positions keep their stops and targets
  HALT_TRADING  no new entries; cancel every working order, then flatten
  EMERGENCY     what HALT_TRADING does; set by hand only

mia raises the state by itself on a daily loss, an order route down, stale data in the session,
repeated order rejections or rule errors (see [risk.kill_switch] in config/mia.toml). It latches:
only `mia kill-switch reset` brings it back to NORMAL.

Without a terminal at hand, create a file named KILL in the state folder: mia engages EMERGENCY
on its next check, and a reset is refused until the file is removed.

Files in the state folder: kill_switch.json (the state), kill_switch.jsonl (one line per change:
time, old and new state, reason and its figures), KILL.

Examples:
  mia kill-switch engage --reason \"FOMC at 14:00\"
  mia kill-switch status
  mia kill-switch reset --reason \"reviewed the loss\"

Exit codes: 0 done, 1 refused (reset while KILL exists) or engaged (status --check),
2 could not run.";

/// `mia kill-switch`.
#[derive(Debug, clap::Args)]
#[command(after_help = GUIDE)]
pub(crate) struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Args)]
struct Common {
    /// State folder. Default: paths.state_dir of the configuration. Give it to engage even when
    /// the configuration cannot be read.
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Engage the kill switch now (EMERGENCY unless --level says otherwise).
    ///
    /// A running mia picks the change up on its next check. Engaging at or below the current
    /// state changes nothing: the switch never lowers.
    Engage {
        #[command(flatten)]
        common: Common,
        /// State to engage: halt-entries, halt-trading or emergency.
        #[arg(long, default_value = "emergency", value_parser = parse_level)]
        level: KillState,
        /// Why, for the journal (for example "FOMC at 14:00").
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Return to NORMAL, after you have checked why it engaged (see `status`).
    ///
    /// Refused (exit 1) while a KILL file is in the state folder.
    Reset {
        #[command(flatten)]
        common: Common,
        /// Why, for the journal (for example "loss reviewed, resuming tomorrow").
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Show the state, why and since when, and the last changes. Changes nothing.
    Status {
        #[command(flatten)]
        common: Common,
        /// Exit 1 unless the state is NORMAL and no KILL file is present (for scripts).
        #[arg(long)]
        check: bool,
    },
}

fn parse_level(s: &str) -> Result<KillState, String> {
    match s.parse::<KillState>()? {
        KillState::Normal => Err("use `mia kill-switch reset` to return to NORMAL".into()),
        level => Ok(level),
    }
}

/// Finds the state folder: `--state`, else the configuration's `paths.state_dir`.
fn state_dir(common: &Common, config: Option<&Path>) -> anyhow::Result<PathBuf> {
    match &common.state {
        Some(dir) => Ok(dir.clone()),
        None => Ok(super::load_config(config)
            .context("cannot find the state folder (give it with --state DIR)")?
            .paths
            .state_dir),
    }
}

pub(crate) fn run(args: Args, config: Option<&Path>) -> anyhow::Result<Status> {
    let now = LiveClock.now();
    let mut out = std::io::stdout().lock();
    match args.action {
        Action::Engage {
            common,
            level,
            reason,
        } => {
            let dir = state_dir(&common, config)?;
            let mut switch = open(&dir, now)?;
            let reason = reason.unwrap_or_else(|| "engaged from the command line".into());
            match switch.engage(now, level, &reason)? {
                Some(change) => print_change(&mut out, &change, &dir)?,
                None => writeln!(
                    out,
                    "kill switch already {} since {}; nothing changed",
                    switch.state(),
                    switch.status().since.to_iso_millis()
                )?,
            }
            Ok(Status::Ok)
        }
        Action::Reset { common, reason } => {
            let dir = state_dir(&common, config)?;
            let mut switch = open(&dir, now)?;
            let reason = reason.unwrap_or_else(|| "reset from the command line".into());
            match switch.reset(now, &reason) {
                Ok(Some(change)) => {
                    print_change(&mut out, &change, &dir)?;
                    Ok(Status::Ok)
                }
                Ok(None) => {
                    writeln!(out, "kill switch already NORMAL; nothing changed")?;
                    Ok(Status::Ok)
                }
                Err(refused @ KillSwitchError::KillFilePresent { .. }) => {
                    writeln!(out, "reset refused: {refused}")?;
                    Ok(Status::Problems)
                }
                Err(e) => Err(e.into()),
            }
        }
        Action::Status { common, check } => {
            let dir = state_dir(&common, config)?;
            let engaged = print_status(&mut out, &dir)?;
            Ok(if check && engaged {
                Status::Problems
            } else {
                Status::Ok
            })
        }
    }
}

fn open(dir: &Path, now: mia::model::Timestamp) -> anyhow::Result<KillSwitch<FileStore>> {
    KillSwitch::open(FileStore::new(dir), now)
        .with_context(|| format!("cannot open the kill switch in {}", dir.display()))
}

fn print_change(out: &mut impl Write, change: &Change, dir: &Path) -> anyhow::Result<()> {
    writeln!(
        out,
        "kill switch {} -> {} at {} ({})",
        change.old, change.new, change.ts, change.message
    )?;
    writeln!(
        out,
        "journaled in {}",
        FileStore::new(dir).journal_path().display()
    )?;
    if change.new.must_flatten() {
        writeln!(
            out,
            "a running mia cancels every working order and flattens on its next check"
        )?;
    }
    Ok(())
}

/// Prints the state without changing it; returns whether it is engaged (or will be, because
/// of a KILL file).
fn print_status(out: &mut impl Write, dir: &Path) -> anyhow::Result<bool> {
    let store = FileStore::new(dir);
    let kill_file = store.kill_file()?;
    let stored = store.load();
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    let state = match &stored {
        Ok(Some(status)) => {
            table.add_row(vec!["state".to_owned(), status.state.to_string()]);
            table.add_row(vec!["since".to_owned(), status.since.to_iso_millis()]);
            let reason = status
                .trigger
                .as_ref()
                .map_or_else(|| "-".to_owned(), ToString::to_string);
            table.add_row(vec!["reason".to_owned(), reason]);
            table.add_row(vec!["changes".to_owned(), status.seq.to_string()]);
            status.state
        }
        Ok(None) => {
            table.add_row(vec!["state", "NORMAL (never engaged)"]);
            KillState::Normal
        }
        Err(e) => {
            table.add_row(vec![
                "state".to_owned(),
                format!("unreadable: mia starts in EMERGENCY ({e})"),
            ]);
            KillState::Emergency
        }
    };
    let kill_text = match &kill_file {
        Some(path) => format!("{} present: EMERGENCY on mia's next check", path.display()),
        None => "absent".to_owned(),
    };
    table.add_row(vec!["KILL file".to_owned(), kill_text]);
    table.add_row(vec![
        "state file".to_owned(),
        store.state_path().display().to_string(),
    ]);
    writeln!(out, "{table}")?;

    let recent = recent_changes(&store.journal_path(), 5);
    if !recent.is_empty() {
        let mut changes = Table::new();
        changes.load_preset(UTF8_FULL_CONDENSED);
        changes.set_header(vec!["time (UTC)", "from", "to", "reason"]);
        for change in recent {
            changes.add_row(vec![
                change.ts.clone(),
                change.old.to_string(),
                change.new.to_string(),
                change.message.clone(),
            ]);
        }
        writeln!(out, "last changes:\n{changes}")?;
    }
    Ok(state != KillState::Normal || kill_file.is_some())
}

/// The last `n` changes of the journal, oldest first; unreadable lines are skipped (status must
/// work even on a damaged journal).
fn recent_changes(path: &Path, n: usize) -> Vec<Change> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let changes: Vec<Change> = text
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    changes[changes.len().saturating_sub(n)..].to_vec()
}
