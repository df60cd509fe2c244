//! What the benches that run the engine on a simulated session in real time share.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A `u32` setting from the environment (`MIA_SOAK_MINUTES`, say), or `default`.
pub(crate) fn env_or(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A temporary folder for one run (`mia-bench-<name>-…`) with its empty `data` folder.
pub(crate) fn run_dir(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix(&format!("mia-bench-{name}-"))
        .tempdir()
        .expect("temporary folder");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data folder");
    (dir, data)
}

/// The reference config with the staleness limits widened: they are simulated seconds, which
/// pass hundreds of times faster here (at 300×, 30 s is a tenth of a wall second), so that a
/// busy moment of this machine does not halt entries for the rest of the day. No fsync.
pub(crate) fn accelerated_config() -> String {
    mia::config::REFERENCE
        .replacen("minute_secs = 30", "minute_secs = 900", 1)
        .replacen("profile_secs = 300", "profile_secs = 3600", 1)
        .replacen("vix_secs = 300", "vix_secs = 3600", 1)
        .replacen("fsync = true", "fsync = false", 1)
}

/// Starts `mia simulate --realtime SPEED`: `minutes` of ES from 18:00 New York on 2025-12-08
/// (the start of a Globex day), into `data`.
pub(crate) fn spawn_simulator(data: &Path, minutes: u32, speed: u32) -> Child {
    Command::new(env!("CARGO_BIN_EXE_mia"))
        .args(["simulate", "--out"])
        .arg(data)
        .args(["--day", "20251208", "--start", "18:00", "--minutes"])
        .arg(minutes.to_string())
        .arg("--realtime")
        .arg(speed.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the simulator")
}
