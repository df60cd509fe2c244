//! The engine's live heap over a long run (product.md §14 and §15: memory stays flat). The soak
//! (`benches/soak.rs`) watches a real `mia run` process from outside, and its resident memory
//! includes what the allocator keeps after bursts; this bench counts the bytes the engine
//! actually holds. `mia simulate --realtime` writes the session in its own process; the engine
//! (`mia::runner::Runner`, paper mode, `rules/` live and `examples/rules/` in shadow) runs in
//! this one, under a global allocator that counts live bytes (the `cap` crate), sampled every
//! 500 ms.
//!
//! `cargo bench --bench heap` runs two Globex days (2,880 minutes) at 1,200×, about 2.5 minutes;
//! `MIA_HEAP_MINUTES` and `MIA_HEAP_SPEED` change that; `cargo test --benches` runs 5 minutes
//! as a smoke test.

use std::alloc::System;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

mod common;

use cap::Cap;
use mia::clock::{Clock, Stopwatch};
use mia::config::Config;
use mia::execution::ExecutionMode;
use mia::runner::{RunOptions, Runner};
use mia::simulate::{MANIFEST_FILE, Manifest};

/// The system allocator with a count of the bytes currently allocated (no limit).
#[global_allocator]
static ALLOC: Cap<System> = Cap::new(System, usize::MAX);

fn mib(bytes: usize) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let minutes = common::env_or("MIA_HEAP_MINUTES", if full { 2_880 } else { 5 });
    let speed = common::env_or("MIA_HEAP_SPEED", if full { 1_200 } else { 300 });
    let (dir, data) = common::run_dir("heap");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));

    let mut simulator = common::spawn_simulator(&data, minutes, speed);
    let manifest = data.join(MANIFEST_FILE);
    let started = Stopwatch::start();
    let anchor = loop {
        if let Some(anchor) = Manifest::load(&manifest).ok().and_then(|m| m.realtime) {
            break anchor;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no manifest");
        std::thread::sleep(Duration::from_millis(10));
    };
    let clock: Arc<dyn Clock> = Arc::new(anchor.clock());

    let text = common::accelerated_config();
    let config = Config::parse(&text, Path::new("mia.toml")).expect("config");
    let mut opts = RunOptions::from_config(&config);
    opts.data_dir = data;
    opts.journal_dir = dir.path().join("journal");
    opts.state_dir = dir.path().join("state");
    opts.rules_dir = root.join("rules");
    opts.shadow_dir = Some(root.join("examples/rules"));
    opts.mode = ExecutionMode::Paper;
    opts.monitor = None;
    let runner = Runner::start(&config, opts, clock).expect("start the engine");
    let stop = Arc::new(AtomicBool::new(false));
    let engine = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || runner.run(&stop))
    };

    let mut samples = Vec::new();
    while simulator.try_wait().expect("simulator").is_none() {
        std::thread::sleep(Duration::from_millis(500));
        samples.push(ALLOC.allocated());
    }
    // Let the engine read the last lines, then stop it as Ctrl-C does.
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let summary = engine
        .join()
        .expect("engine thread")
        .expect("the engine ran");
    let n = samples.len();
    let tenths: Vec<String> = (1..=9)
        .filter_map(|k| samples.get(n * k / 10))
        .map(|b| mib(*b))
        .collect();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "heap: {minutes} simulated minutes at {speed}x in {:.0} s; {} evaluation points\n\
         live heap at 10%, 20% … 90% of the run: {} MB; peak {} MB ({n} samples)",
        started.elapsed().as_secs_f64(),
        summary.evaluations,
        tenths.join(", "),
        mib(samples.iter().copied().max().unwrap_or(0)),
    );
}
