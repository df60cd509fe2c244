//! The only place where mia reads wall-clock time.
//!
//! Every stage that needs "now" takes a [`Clock`], so that replay, tests and benchmarks can drive
//! time themselves and stay deterministic. `clippy.toml` forbids `SystemTime::now`, `Instant::now`,
//! `Utc::now` and `Local::now` everywhere else.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::model::Timestamp;

/// A source of the current time, in UTC microseconds.
pub trait Clock: Send + Sync {
    /// Returns the current time.
    fn now(&self) -> Timestamp;
}

/// The wall clock of the machine.
#[derive(Debug, Default, Clone, Copy)]
pub struct LiveClock;

impl Clock for LiveClock {
    #[expect(
        clippy::disallowed_methods,
        reason = "LiveClock is the one sanctioned reader of wall time"
    )]
    fn now(&self) -> Timestamp {
        Timestamp::from_micros(chrono::Utc::now().timestamp_micros())
    }
}

/// A clock that only moves when told to: replay and tests.
///
/// Cloning shares the same time, so a test can hold one handle and give another to the code under
/// test.
#[derive(Debug, Clone)]
pub struct ManualClock {
    micros: Arc<AtomicI64>,
}

impl ManualClock {
    /// Creates a clock stopped at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self {
            micros: Arc::new(AtomicI64::new(start.as_micros())),
        }
    }

    /// Moves the clock to `to`. Time may only go forward; an earlier instant is ignored so that a
    /// late record cannot rewind a replay.
    pub fn advance_to(&self, to: Timestamp) {
        self.micros.fetch_max(to.as_micros(), Ordering::Relaxed);
    }

    /// Moves the clock forward by `micros`.
    pub fn advance_by(&self, micros: i64) {
        self.micros.fetch_add(micros, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_micros(self.micros.load(Ordering::Relaxed))
    }
}

/// A clock that runs `factor` times faster than the wall clock from an anchor: at wall time
/// `wall_start` it reads `sim_start`. `mia run --sim-clock` uses it on a session that
/// `mia simulate --realtime` appends, so that ages, staleness and entry windows follow the
/// simulated market (both read the anchor from the simulator's manifest).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScaledClock {
    /// Simulated time at the anchor.
    pub sim_start: Timestamp,
    /// Wall time at the anchor.
    pub wall_start: Timestamp,
    /// Simulated seconds per wall second.
    pub factor: f64,
}

impl ScaledClock {
    /// The simulated time at wall time `wall`.
    pub fn at(&self, wall: Timestamp) -> Timestamp {
        let elapsed = (wall.as_micros() - self.wall_start.as_micros()) as f64;
        Timestamp::from_micros(self.sim_start.as_micros() + (elapsed * self.factor) as i64)
    }

    /// The wall time at which the clock reads `sim`.
    pub fn wall_at(&self, sim: Timestamp) -> Timestamp {
        let ahead = (sim.as_micros() - self.sim_start.as_micros()) as f64;
        Timestamp::from_micros(self.wall_start.as_micros() + (ahead / self.factor) as i64)
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> Timestamp {
        self.at(LiveClock.now())
    }
}

/// A monotonic stopwatch for measuring durations (latency, evaluation time).
///
/// It lives here because `Instant::now` is wall time too; measurements never feed decisions.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch(std::time::Instant);

impl Stopwatch {
    /// Starts a stopwatch.
    #[expect(
        clippy::disallowed_methods,
        reason = "durations are measured here and nowhere else"
    )]
    pub fn start() -> Self {
        Self(std::time::Instant::now())
    }

    /// Returns the time elapsed since [`Stopwatch::start`].
    pub fn elapsed(&self) -> std::time::Duration {
        self.0.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_never_goes_back() {
        let clock = ManualClock::new(Timestamp::from_micros(1_000));
        clock.advance_to(Timestamp::from_micros(500));
        assert_eq!(clock.now().as_micros(), 1_000);
        clock.advance_by(250);
        assert_eq!(clock.now().as_micros(), 1_250);
        let shared = clock.clone();
        shared.advance_to(Timestamp::from_micros(9_000));
        assert_eq!(clock.now().as_micros(), 9_000);
    }

    #[test]
    fn scaled_clock_runs_factor_times_faster_from_its_anchor() {
        let clock = ScaledClock {
            sim_start: Timestamp::from_micros(1_000_000_000),
            wall_start: Timestamp::from_micros(5_000_000),
            factor: 60.0,
        };
        // One wall second later, one simulated minute has passed.
        let wall = Timestamp::from_micros(6_000_000);
        assert_eq!(clock.at(wall).as_micros(), 1_060_000_000);
        assert_eq!(clock.wall_at(clock.at(wall)), wall);
    }
}
