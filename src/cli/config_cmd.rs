//! `mia config check`.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use mia::config::{Config, ConfigError};

use super::Status;

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check a configuration file and report every unknown key and invalid value at once.
    ///
    /// Exit 0 when valid, 1 when it has problems, 2 when it cannot be read.
    Check {
        /// The file to check (default: the one mia would use).
        file: Option<PathBuf>,
    },
}

pub(crate) fn run(cmd: Command, global: Option<&Path>) -> anyhow::Result<Status> {
    let Command::Check { file } = cmd;
    let explicit = file.as_deref().or(global);
    let config = match explicit {
        Some(path) => Config::load(path),
        None => match super::load_config(None) {
            Ok(config) => Ok(config),
            Err(err) => match err.downcast::<ConfigError>() {
                Ok(config_err) => Err(config_err),
                Err(other) => return Err(other),
            },
        },
    };
    let mut out = std::io::stdout().lock();
    match config {
        Ok(config) => {
            let name = explicit.map_or_else(
                || "embedded reference config".to_owned(),
                |p| p.display().to_string(),
            );
            writeln!(out, "{name}: ok")?;
            writeln!(out, "  data folder     {}", config.paths.data_dir.display())?;
            writeln!(
                out,
                "  journal folder  {}",
                config.paths.journal_dir.display()
            )?;
            writeln!(
                out,
                "  state folder    {}",
                config.paths.state_dir.display()
            )?;
            writeln!(
                out,
                "  charts          {:?} ({})",
                config.ingest.charts, config.ingest.chart_time_zone
            )?;
            for inst in config.instruments.values() {
                writeln!(
                    out,
                    "  instrument {:<4} tick {} = ${:.2}, charts {}/{}/{}/{}",
                    inst.name,
                    inst.spec.tick_size,
                    inst.spec.tick_value,
                    inst.charts.minute,
                    inst.charts.profile,
                    inst.charts.vix,
                    inst.charts.menthorq
                )?;
            }
            Ok(Status::Ok)
        }
        Err(ConfigError::Invalid { path, issues }) => {
            writeln!(out, "{}", ConfigError::Invalid { path, issues })?;
            Ok(Status::Problems)
        }
        Err(ConfigError::Syntax { path, message }) => {
            writeln!(out, "{}", ConfigError::Syntax { path, message })?;
            Ok(Status::Problems)
        }
        Err(e) => Err(e.into()),
    }
}
