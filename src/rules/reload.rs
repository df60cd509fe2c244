//! Hot reload: a watcher on the rule folder, a debounce, a compile and check, then an atomic
//! swap (product.md §6).
//!
//! The live set sits in an `ArcSwap`. An evaluation loads it once and uses that one complete set
//! to the end, whatever happens meanwhile; a swap replaces the pointer in one atomic store. A set
//! that fails to compile, or that `check-rules` finds a problem in (an unknown property, weights
//! that do not add up, a failing rule test, …), never replaces the live one: every diagnostic is
//! reported and the last good set stays.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::{ArcSwap, Guard};
use notify::{EventKind, RecursiveMode, Watcher};

use super::{RuleError, RuleHost, RuleSet};

/// Default quiet time before a changed folder is compiled: an editor's save is several events.
pub const DEBOUNCE: Duration = Duration::from_millis(50);

/// The rule set in force, swappable atomically.
#[derive(Debug)]
pub struct LiveRules {
    set: ArcSwap<RuleSet>,
}

impl LiveRules {
    /// Starts with `set`.
    pub fn new(set: RuleSet) -> Self {
        Self {
            set: ArcSwap::from_pointee(set),
        }
    }

    /// Returns the set in force; hold the guard for the whole evaluation.
    pub fn load(&self) -> Guard<Arc<RuleSet>> {
        self.set.load()
    }

    /// Puts `set` in force.
    pub fn store(&self, set: RuleSet) {
        self.set.store(Arc::new(set));
    }
}

/// What a reload did.
#[derive(Debug, Clone)]
pub enum ReloadOutcome {
    /// A new set is live.
    Swapped {
        /// Hash of the set that was live.
        from: String,
        /// Hash of the set now live.
        to: String,
    },
    /// The folder compiles to the set already live.
    Unchanged,
    /// The folder does not compile or does not pass the checks; the last good set stays live.
    Failed(RuleError),
}

/// Compiles and checks the folder of the live set ([`super::check::load_checked`]: the lint
/// and the rule tests) and swaps it in when it has no problem and differs.
pub fn reload(host: &RuleHost, live: &LiveRules) -> ReloadOutcome {
    let current = live.load();
    match super::check::load_checked(host, &current.dir) {
        Ok(set) if set.hash == current.hash => ReloadOutcome::Unchanged,
        Ok(set) => {
            let outcome = ReloadOutcome::Swapped {
                from: current.hash.clone(),
                to: set.hash.clone(),
            };
            live.store(set);
            outcome
        }
        Err(e) => ReloadOutcome::Failed(e),
    }
}

/// A running watcher; dropping it stops the watch.
pub struct Reloader {
    watcher: Option<notify::RecommendedWatcher>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reloader")
    }
}

impl Drop for Reloader {
    fn drop(&mut self) {
        // Dropping the watcher closes the event channel, which ends the thread.
        self.watcher.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Watches the folder of the live set and reloads it after each burst of changes to `.rhai`
/// files, `debounce` after the last event. `on_outcome` hears every reload.
///
/// # Errors
///
/// [`RuleError::Io`] when the folder cannot be watched.
pub fn watch(
    host: Arc<RuleHost>,
    live: Arc<LiveRules>,
    debounce: Duration,
    on_outcome: impl Fn(&ReloadOutcome) + Send + 'static,
) -> Result<Reloader, RuleError> {
    let dir = live.load().dir.clone();
    let thread_dir = dir.clone();
    let (tx, rx) = mpsc::channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && is_rule_change(&event)
        {
            let _ = tx.send(());
        }
    })
    .map_err(|e| watch_error(&dir, &e))?;
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .map_err(|e| watch_error(&dir, &e))?;
    let thread = std::thread::Builder::new()
        .name("rules-reload".into())
        .spawn(move || {
            while rx.recv().is_ok() {
                // Wait for the burst to end.
                loop {
                    match rx.recv_timeout(debounce) {
                        Ok(()) => continue,
                        Err(RecvTimeoutError::Timeout) => break,
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
                let outcome = reload(&host, &live);
                match &outcome {
                    ReloadOutcome::Swapped { from, to } => {
                        tracing::info!(%from, %to, "rules reloaded")
                    }
                    ReloadOutcome::Unchanged => tracing::debug!("rules unchanged"),
                    ReloadOutcome::Failed(e) => {
                        tracing::error!("rule reload failed, the last good set stays live: {e}")
                    }
                }
                on_outcome(&outcome);
            }
        })
        .map_err(|e| RuleError::Io {
            path: thread_dir,
            message: format!("cannot start the reload thread: {e}"),
        })?;
    Ok(Reloader {
        watcher: Some(watcher),
        thread: Some(thread),
    })
}

fn watch_error(dir: &Path, e: &notify::Error) -> RuleError {
    RuleError::Io {
        path: dir.to_owned(),
        message: format!("cannot watch: {e}"),
    }
}

fn is_rule_change(event: &notify::Event) -> bool {
    !matches!(event.kind, EventKind::Access(_))
        && event
            .paths
            .iter()
            .any(|p| p.extension().is_some_and(|x| x == "rhai"))
}
