//! Replay of a full simulated trading day with rules, risk and paper execution (product.md §14:
//! under 3 seconds and under 100 MB for about 2 million lines), with and without a shadow set.
//!
//! The day (1,380 one-minute bars of a Globex session, every quirk injected, about 1.9 million
//! lines) is simulated once per process into a temporary folder, removed at the end; 15
//! minutes only when `cargo test` runs the benchmarks once as a smoke test. Each iteration is a
//! whole `replay::run`, journals written to a temporary folder. Peak memory is the `max alloc`
//! row of divan's allocation profiler. Run with `cargo bench --bench replay`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::AtomicBool;

use mia::config::Config;
use mia::ingest::naming::Layout;
use mia::replay::{self, ReplayOptions};
use mia::simulate::SimOptions;

#[global_allocator]
static ALLOC: divan::AllocProfiler = divan::AllocProfiler::system();

/// Minutes of the simulated day: the whole Globex session.
const MINUTES: u32 = 1_380;
/// Under `cargo test` divan runs each benchmark once in a debug build: a short session.
const TEST_MINUTES: u32 = 15;

static DAY: OnceLock<PathBuf> = OnceLock::new();

fn main() {
    divan::main();
    if let Some(dir) = DAY.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn day() -> &'static Path {
    DAY.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("mia-bench-replay-")
            .tempdir()
            .expect("temporary folder")
            .keep();
        let minutes = if std::env::args().any(|a| a == "--bench") {
            MINUTES
        } else {
            TEST_MINUTES
        };
        let opts = SimOptions {
            out: dir.join("data"),
            minutes,
            seed: 1,
            layout: Layout::Organised,
            quirks: true,
            ..SimOptions::default()
        };
        mia::simulate::run(&opts, &AtomicBool::new(false), &mut |_, _| {})
            .expect("simulate a full day");
        dir
    })
}

fn replay_day(bencher: divan::Bencher<'_, '_>, shadow: bool) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = day();
    let config = Config::reference();
    bencher.bench(|| {
        let opts = ReplayOptions {
            data_dir: dir.join("data"),
            out_dir: dir.join(if shadow { "out-shadow" } else { "out" }),
            rules_dir: root.join("rules"),
            shadow_dir: shadow.then(|| root.join("examples/rules")),
            from: None,
            to: None,
            timings: false,
        };
        replay::run(&config, &opts, &AtomicBool::new(false), &mut |_, _| {}).expect("replay")
    });
}

/// The live set alone.
#[divan::bench(sample_count = 3, sample_size = 1)]
fn full_day(bencher: divan::Bencher<'_, '_>) {
    replay_day(bencher, false);
}

/// The live set and the shadow set on the same snapshots.
#[divan::bench(sample_count = 3, sample_size = 1)]
fn full_day_with_shadow(bencher: divan::Bencher<'_, '_>) {
    replay_day(bencher, true);
}
