//! The kill switch (product.md §8): four states, automatic triggers, a latch, and a journal of
//! every change.
//!
//! States rise on their own and fall only by a manual reset: a trigger never lowers the state,
//! and every state but `NORMAL` stays until `mia kill-switch reset` (or the dashboard) says so.
//! The state lives in a [`KillSwitchStore`] (a file in the state folder in production), so it
//! survives a restart; a `KILL` file in the state folder engages `EMERGENCY`.

use std::collections::VecDeque;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::store::{KillSwitchStore, StoreError};
use crate::config::RiskConfig;
use crate::model::Timestamp;
use crate::snapshot::{Source, SourceAge};

/// Events kept per trigger window. Far above any sensible threshold; it only bounds memory
/// when `evaluate` is not called for a long time.
const MAX_EVENTS: usize = 10_000;

/// The state of the kill switch, from least to most severe.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KillState {
    /// Trading as configured.
    #[default]
    Normal,
    /// No new entries; working orders and positions keep their brackets.
    HaltEntries,
    /// No new entries; cancel every working order, then flatten every position.
    HaltTrading,
    /// Set by hand only (command line, dashboard, `KILL` file): what `HALT_TRADING` does, and
    /// nothing automatic ever sets or clears it.
    Emergency,
}

impl KillState {
    /// Every state, least severe first.
    pub const ALL: [KillState; 4] = [
        KillState::Normal,
        KillState::HaltEntries,
        KillState::HaltTrading,
        KillState::Emergency,
    ];

    /// Returns the name of product.md §8: `NORMAL`, `HALT_ENTRIES`, `HALT_TRADING`, `EMERGENCY`.
    pub fn as_str(self) -> &'static str {
        match self {
            KillState::Normal => "NORMAL",
            KillState::HaltEntries => "HALT_ENTRIES",
            KillState::HaltTrading => "HALT_TRADING",
            KillState::Emergency => "EMERGENCY",
        }
    }

    /// Returns whether new entries are allowed (only in `NORMAL`).
    pub fn allows_entries(self) -> bool {
        self == KillState::Normal
    }

    /// Returns whether working orders must be cancelled and positions flattened.
    pub fn must_flatten(self) -> bool {
        self >= KillState::HaltTrading
    }
}

impl fmt::Display for KillState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KillState {
    type Err = String;

    /// Parses `NORMAL`, `HALT_ENTRIES`, `halt-entries` and so on (case and `-`/`_` ignored).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_uppercase().replace('-', "_");
        KillState::ALL
            .into_iter()
            .find(|state| state.as_str() == wanted)
            .ok_or_else(|| {
                format!("unknown kill-switch state {s:?}; expected normal, halt-entries, halt-trading or emergency")
            })
    }
}

/// Why the state changed, with the figures that decided it.
///
/// Serialized with a `kind` tag, for example
/// `{"kind":"route_down","down_secs":31.5,"limit_secs":30}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trigger {
    /// Realized plus unrealized loss reached the daily limit.
    DailyLoss {
        /// Loss of the day in dollars (positive).
        loss: f64,
        /// The limit.
        limit: f64,
    },
    /// The order route has been down too long.
    RouteDown {
        /// Seconds since it went down.
        down_secs: f64,
        /// The limit.
        limit_secs: u64,
    },
    /// Market data went stale during the session.
    StaleData {
        /// `minute`, `profile`, `vix` or `menthorq`.
        source: String,
        /// Its age in seconds.
        age_secs: f64,
    },
    /// Too many order rejections in the window.
    OrderRejections {
        /// Rejections in the window.
        count: u32,
        /// The limit (more than this triggers).
        limit: u32,
        /// The window, in seconds.
        window_secs: u64,
    },
    /// Too many rule errors in the window.
    RuleErrors {
        /// Rule errors in the window.
        count: u32,
        /// The limit (more than this triggers).
        limit: u32,
        /// The window, in seconds.
        window_secs: u64,
    },
    /// A person engaged it (command line or dashboard).
    Manual {
        /// What they wrote.
        reason: String,
    },
    /// A `KILL` file appeared in the state folder.
    KillFile {
        /// The file.
        path: PathBuf,
    },
    /// The stored state could not be read, so the switch started engaged.
    UnreadableState {
        /// What was wrong with it.
        error: String,
    },
    /// A person reset it.
    Reset {
        /// What they wrote.
        reason: String,
    },
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::DailyLoss { loss, limit } => {
                write!(f, "daily loss ${loss:.2} reached the ${limit:.2} limit")
            }
            Trigger::RouteDown {
                down_secs,
                limit_secs,
            } => write!(
                f,
                "order route down for {down_secs:.1} s (limit {limit_secs} s)"
            ),
            Trigger::StaleData { source, age_secs } => write!(
                f,
                "{source} data stale during the session ({age_secs:.0} s old)"
            ),
            Trigger::OrderRejections {
                count,
                limit,
                window_secs,
            } => write!(
                f,
                "{count} order rejections in {window_secs} s (more than {limit})"
            ),
            Trigger::RuleErrors {
                count,
                limit,
                window_secs,
            } => write!(
                f,
                "{count} rule errors in {window_secs} s (more than {limit})"
            ),
            Trigger::Manual { reason } => write!(f, "manual: {reason}"),
            Trigger::KillFile { path } => write!(f, "KILL file {}", path.display()),
            Trigger::UnreadableState { error } => {
                write!(f, "stored state unreadable ({error}); started engaged")
            }
            Trigger::Reset { reason } => write!(f, "reset: {reason}"),
        }
    }
}

/// What the store keeps: the current state and how it got there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Current state.
    pub state: KillState,
    /// When it was entered.
    pub since: Timestamp,
    /// Why, `None` before the first change ever.
    pub trigger: Option<Trigger>,
    /// Number of changes so far; lets a running engine notice a change made by another process.
    pub seq: u64,
}

/// One change of state: the journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// When, ISO-8601 UTC (for people).
    pub ts: String,
    /// When, microseconds since the epoch.
    pub at: Timestamp,
    /// State before.
    pub old: KillState,
    /// State after.
    pub new: KillState,
    /// Why, with its figures.
    pub trigger: Trigger,
    /// The reason as a sentence.
    pub message: String,
    /// The change number ([`Status::seq`] after it).
    pub seq: u64,
}

/// Why the kill switch could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum KillSwitchError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A reset was asked for while the `KILL` file is present.
    #[error("the KILL file {} is still present: remove it, then reset", path.display())]
    KillFilePresent {
        /// The file.
        path: PathBuf,
    },
}

/// What the automatic triggers look at, gathered by the engine at each check.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Health {
    /// Realized plus unrealized P&L of the day, in dollars.
    pub pnl_day: f64,
    /// Since when the order route has been down, `None` while it is up (or not used).
    pub route_down_since: Option<Timestamp>,
    /// Whether the regular session is open.
    pub in_session: bool,
    /// Source ages of every instrument (`MarketSnapshot::ages`).
    pub ages: Vec<SourceAge>,
}

/// The kill switch over a store.
#[derive(Debug)]
pub struct KillSwitch<S: KillSwitchStore> {
    store: S,
    status: Status,
    rejections: VecDeque<Timestamp>,
    rule_errors: VecDeque<Timestamp>,
}

/// Returns the name used in journals for a data source.
pub(crate) fn source_name(source: Source) -> &'static str {
    match source {
        Source::Minute => "minute",
        Source::Profile => "profile",
        Source::Vix => "vix",
        Source::MenthorQ => "menthorq",
    }
}

impl<S: KillSwitchStore> KillSwitch<S> {
    /// Restores the switch from `store` at `now`, then engages `EMERGENCY` if a `KILL` file is
    /// present.
    ///
    /// A state that cannot be parsed is not a reason to trade: the switch then starts in
    /// `EMERGENCY` with [`Trigger::UnreadableState`], and a reset writes a good state again.
    ///
    /// # Errors
    ///
    /// [`KillSwitchError::Store`] when the store cannot be read or written at all.
    pub fn open(store: S, now: Timestamp) -> Result<Self, KillSwitchError> {
        let (status, unreadable) = match store.load() {
            Ok(Some(status)) => (status, None),
            Ok(None) => (
                Status {
                    state: KillState::Normal,
                    since: now,
                    trigger: None,
                    seq: 0,
                },
                None,
            ),
            Err(StoreError::Corrupt { path, message }) => (
                Status {
                    state: KillState::Normal,
                    since: now,
                    trigger: None,
                    seq: 0,
                },
                Some(format!("{}: {message}", path.display())),
            ),
            Err(other) => return Err(other.into()),
        };
        let mut switch = KillSwitch {
            store,
            status,
            rejections: VecDeque::new(),
            rule_errors: VecDeque::new(),
        };
        if let Some(error) = unreadable {
            switch.raise(
                now,
                KillState::Emergency,
                Trigger::UnreadableState { error },
            )?;
        }
        switch.sync(now)?;
        Ok(switch)
    }

    /// Returns the current state.
    pub fn state(&self) -> KillState {
        self.status.state
    }

    /// Returns the current state with its time and reason.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// Returns the store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Returns the store, mutably (tests use it to stand in for another process).
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// Engages the switch at `level` by hand. A level at or below the current state changes
    /// nothing (the switch never lowers) and returns `None`.
    ///
    /// # Errors
    ///
    /// [`KillSwitchError::Store`] when the change cannot be stored.
    pub fn engage(
        &mut self,
        now: Timestamp,
        level: KillState,
        reason: &str,
    ) -> Result<Option<Change>, KillSwitchError> {
        self.raise(
            now,
            level,
            Trigger::Manual {
                reason: reason.to_owned(),
            },
        )
    }

    /// Returns the switch to `NORMAL` by hand; `None` when it already was.
    ///
    /// # Errors
    ///
    /// [`KillSwitchError::KillFilePresent`] while the `KILL` file exists (it would engage the
    /// switch again at once), and [`KillSwitchError::Store`] when the change cannot be stored.
    pub fn reset(
        &mut self,
        now: Timestamp,
        reason: &str,
    ) -> Result<Option<Change>, KillSwitchError> {
        if let Some(path) = self.store.kill_file()? {
            return Err(KillSwitchError::KillFilePresent { path });
        }
        self.pick_up_external()?;
        if self.status.state == KillState::Normal {
            return Ok(None);
        }
        self.rejections.clear();
        self.rule_errors.clear();
        self.change(
            now,
            KillState::Normal,
            Trigger::Reset {
                reason: reason.to_owned(),
            },
        )
        .map(Some)
    }

    /// Counts an order rejection at `at` for the rejection trigger.
    pub fn record_rejection(&mut self, at: Timestamp) {
        push_bounded(&mut self.rejections, at);
    }

    /// Counts a rule error at `at` for the rule-error trigger.
    pub fn record_rule_error(&mut self, at: Timestamp) {
        push_bounded(&mut self.rule_errors, at);
    }

    /// Picks up what other processes did to the state folder: a `KILL` file engages
    /// `EMERGENCY`, and a state stored by another process (`mia kill-switch engage` or `reset`
    /// while the engine runs) replaces this one. Returns the change this call journaled, if any.
    ///
    /// # Errors
    ///
    /// [`KillSwitchError::Store`] when the store cannot be read or written.
    pub fn sync(&mut self, now: Timestamp) -> Result<Option<Change>, KillSwitchError> {
        self.pick_up_external()?;
        match self.store.kill_file()? {
            Some(path) => self.raise(now, KillState::Emergency, Trigger::KillFile { path }),
            None => Ok(None),
        }
    }

    /// Checks the automatic triggers of product.md §8 at `now` and raises the state to the most
    /// severe one that fires. Returns the change, or `None` when nothing rose.
    ///
    /// Daily loss and order rejections give `HALT_TRADING`; the route down, stale data during
    /// the session and rule errors give `HALT_ENTRIES`. A source never received does not count
    /// as stale here (the risk gate refuses entries on it already), so that starting mia in the
    /// middle of the session does not latch the switch before the first data arrive.
    ///
    /// # Errors
    ///
    /// [`KillSwitchError::Store`] when the change cannot be stored.
    pub fn evaluate(
        &mut self,
        now: Timestamp,
        health: &Health,
        limits: &RiskConfig,
    ) -> Result<Option<Change>, KillSwitchError> {
        let fired = self.fired(now, health, limits);
        let worst =
            fired
                .into_iter()
                .fold(
                    None::<(KillState, Trigger)>,
                    |worst, (state, trigger)| match worst {
                        Some((w, _)) if w >= state => worst,
                        _ => Some((state, trigger)),
                    },
                );
        match worst {
            Some((state, trigger)) => self.raise(now, state, trigger),
            None => Ok(None),
        }
    }

    /// Every trigger that fires, in the order of product.md §8.
    fn fired(
        &mut self,
        now: Timestamp,
        health: &Health,
        limits: &RiskConfig,
    ) -> Vec<(KillState, Trigger)> {
        let ks = &limits.kill_switch;
        let mut fired = Vec::new();
        // NaN P&L is not a loss we can measure; the gate refuses entries on it instead.
        if -health.pnl_day >= limits.max_daily_loss {
            fired.push((
                KillState::HaltTrading,
                Trigger::DailyLoss {
                    loss: -health.pnl_day,
                    limit: limits.max_daily_loss,
                },
            ));
        }
        if let Some(down) = health.route_down_since {
            let down_secs = now.secs_since(down);
            if down_secs > ks.route_down_secs as f64 {
                fired.push((
                    KillState::HaltEntries,
                    Trigger::RouteDown {
                        down_secs,
                        limit_secs: ks.route_down_secs,
                    },
                ));
            }
        }
        if health.in_session
            && let Some((source, age_secs)) = health
                .ages
                .iter()
                .find_map(|a| a.age_secs.filter(|_| a.stale).map(|age| (a.source, age)))
        {
            fired.push((
                KillState::HaltEntries,
                Trigger::StaleData {
                    source: source_name(source).to_owned(),
                    age_secs,
                },
            ));
        }
        let rejections = count_within(&mut self.rejections, now, ks.rejection_window_secs);
        if rejections > ks.max_rejections {
            fired.push((
                KillState::HaltTrading,
                Trigger::OrderRejections {
                    count: rejections,
                    limit: ks.max_rejections,
                    window_secs: ks.rejection_window_secs,
                },
            ));
        }
        let rule_errors = count_within(&mut self.rule_errors, now, ks.rule_error_window_secs);
        if rule_errors > ks.max_rule_errors {
            fired.push((
                KillState::HaltEntries,
                Trigger::RuleErrors {
                    count: rule_errors,
                    limit: ks.max_rule_errors,
                    window_secs: ks.rule_error_window_secs,
                },
            ));
        }
        fired
    }

    /// Adopts a state stored by another process since this one last wrote.
    fn pick_up_external(&mut self) -> Result<(), KillSwitchError> {
        match self.store.load() {
            Ok(Some(stored)) if stored.seq > self.status.seq => {
                self.status = stored;
                Ok(())
            }
            Ok(_) => Ok(()),
            // A file broken by hand while we run: keep what we know, the next write repairs it.
            Err(StoreError::Corrupt { .. }) => Ok(()),
            Err(other) => Err(other.into()),
        }
    }

    /// Moves to `level` if it is above the current state (the latch), journaling the change.
    fn raise(
        &mut self,
        now: Timestamp,
        level: KillState,
        trigger: Trigger,
    ) -> Result<Option<Change>, KillSwitchError> {
        if level <= self.status.state {
            return Ok(None);
        }
        self.change(now, level, trigger).map(Some)
    }

    fn change(
        &mut self,
        now: Timestamp,
        new: KillState,
        trigger: Trigger,
    ) -> Result<Change, KillSwitchError> {
        let status = Status {
            state: new,
            since: now,
            trigger: Some(trigger.clone()),
            seq: self.status.seq + 1,
        };
        let change = Change {
            ts: now.to_iso_millis(),
            at: now,
            old: self.status.state,
            new,
            message: trigger.to_string(),
            trigger,
            seq: status.seq,
        };
        // Journal first: a crash between the two writes leaves a journaled change whose state
        // was not stored, never a stored state nobody can explain.
        self.store.append_change(&change)?;
        self.store.save(&status)?;
        self.status = status;
        Ok(change)
    }
}

fn push_bounded(events: &mut VecDeque<Timestamp>, at: Timestamp) {
    if events.len() == MAX_EVENTS {
        events.pop_front();
    }
    events.push_back(at);
}

/// Drops events older than the window and counts those in `(now − window, now]`.
fn count_within(events: &mut VecDeque<Timestamp>, now: Timestamp, window_secs: u64) -> u32 {
    while events
        .front()
        .is_some_and(|t| now.secs_since(*t) >= window_secs as f64)
    {
        events.pop_front();
    }
    events
        .iter()
        .filter(|t| **t <= now)
        .count()
        .try_into()
        .unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::risk::MemoryStore;

    fn risk() -> RiskConfig {
        Config::reference()
            .risk
            .expect("the reference config has [risk]")
    }

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_secs(1_758_290_000 + secs)
    }

    fn switch() -> KillSwitch<MemoryStore> {
        KillSwitch::open(MemoryStore::default(), t(0)).unwrap()
    }

    fn healthy() -> Health {
        Health {
            in_session: true,
            ..Health::default()
        }
    }

    #[test]
    fn starts_normal_and_journals_nothing() {
        let ks = switch();
        assert_eq!(ks.state(), KillState::Normal);
        assert!(ks.store().changes.is_empty());
    }

    #[test]
    fn daily_loss_halts_trading_and_latches() {
        let cfg = risk();
        let mut ks = switch();
        let mut health = healthy();
        health.pnl_day = -999.0;
        assert_eq!(ks.evaluate(t(1), &health, &cfg).unwrap(), None);
        health.pnl_day = -1000.0;
        let change = ks.evaluate(t(2), &health, &cfg).unwrap().unwrap();
        assert_eq!(
            (change.old, change.new),
            (KillState::Normal, KillState::HaltTrading)
        );
        assert_eq!(
            change.trigger,
            Trigger::DailyLoss {
                loss: 1000.0,
                limit: 1000.0
            }
        );
        assert_eq!(
            change.message,
            "daily loss $1000.00 reached the $1000.00 limit"
        );
        // Back to healthy: it stays engaged.
        assert_eq!(ks.evaluate(t(3), &healthy(), &cfg).unwrap(), None);
        assert_eq!(ks.state(), KillState::HaltTrading);
    }

    #[test]
    fn a_trigger_never_lowers_the_state() {
        let cfg = risk();
        let mut ks = switch();
        ks.engage(t(1), KillState::Emergency, "news").unwrap();
        let mut health = healthy();
        health.pnl_day = -5000.0;
        assert_eq!(ks.evaluate(t(2), &health, &cfg).unwrap(), None);
        assert_eq!(ks.state(), KillState::Emergency);
        // A lower manual level is no change either.
        assert_eq!(ks.engage(t(3), KillState::HaltEntries, "x").unwrap(), None);
    }

    #[test]
    fn route_down_more_than_30_s_halts_entries() {
        let cfg = risk();
        let mut ks = switch();
        let mut health = healthy();
        health.route_down_since = Some(t(0));
        assert_eq!(ks.evaluate(t(30), &health, &cfg).unwrap(), None);
        let change = ks.evaluate(t(31), &health, &cfg).unwrap().unwrap();
        assert_eq!(change.new, KillState::HaltEntries);
        assert_eq!(
            change.trigger,
            Trigger::RouteDown {
                down_secs: 31.0,
                limit_secs: 30
            }
        );
    }

    #[test]
    fn stale_data_counts_only_in_session_and_once_received() {
        let cfg = risk();
        let mut ks = switch();
        let stale = SourceAge {
            source: Source::Minute,
            age_secs: Some(45.0),
            stale: true,
        };
        let never = SourceAge {
            source: Source::Vix,
            age_secs: None,
            stale: true,
        };
        let mut health = Health {
            ages: vec![never, stale],
            ..Health::default()
        };
        assert_eq!(ks.evaluate(t(1), &health, &cfg).unwrap(), None);
        health.ages = vec![never];
        health.in_session = true;
        assert_eq!(ks.evaluate(t(2), &health, &cfg).unwrap(), None);
        health.ages = vec![never, stale];
        let change = ks.evaluate(t(3), &health, &cfg).unwrap().unwrap();
        assert_eq!(
            change.trigger,
            Trigger::StaleData {
                source: "minute".into(),
                age_secs: 45.0
            }
        );
        assert_eq!(change.new, KillState::HaltEntries);
    }

    #[test]
    fn more_than_10_rejections_in_5_minutes_halt_trading() {
        let cfg = risk();
        let mut ks = switch();
        // 11 rejections, but the first one is 300 s old at t(300): outside the window.
        for i in 0..11 {
            ks.record_rejection(t(i * 10));
        }
        assert_eq!(ks.evaluate(t(300), &healthy(), &cfg).unwrap(), None);
        ks.record_rejection(t(300));
        let change = ks.evaluate(t(300), &healthy(), &cfg).unwrap().unwrap();
        assert_eq!(change.new, KillState::HaltTrading);
        assert_eq!(
            change.trigger,
            Trigger::OrderRejections {
                count: 11,
                limit: 10,
                window_secs: 300
            }
        );
    }

    #[test]
    fn repeated_rule_errors_halt_entries() {
        let cfg = risk();
        let mut ks = switch();
        for i in 0..3 {
            ks.record_rule_error(t(i));
        }
        assert_eq!(ks.evaluate(t(5), &healthy(), &cfg).unwrap(), None);
        ks.record_rule_error(t(6));
        let change = ks.evaluate(t(7), &healthy(), &cfg).unwrap().unwrap();
        assert_eq!(change.new, KillState::HaltEntries);
    }

    #[test]
    fn the_most_severe_trigger_wins() {
        let cfg = risk();
        let mut ks = switch();
        let health = Health {
            pnl_day: -2000.0,
            route_down_since: Some(t(0)),
            in_session: true,
            ages: Vec::new(),
        };
        let change = ks.evaluate(t(60), &health, &cfg).unwrap().unwrap();
        assert_eq!(change.new, KillState::HaltTrading);
        assert!(matches!(change.trigger, Trigger::DailyLoss { .. }));
        // One change, journaled with old and new state.
        assert_eq!(ks.store().changes, vec![change]);
    }

    #[test]
    fn only_a_manual_reset_returns_to_normal() {
        let mut ks = switch();
        ks.engage(t(1), KillState::HaltTrading, "test").unwrap();
        let change = ks.reset(t(2), "checked").unwrap().unwrap();
        assert_eq!(
            (change.old, change.new),
            (KillState::HaltTrading, KillState::Normal)
        );
        assert_eq!(ks.reset(t(3), "again").unwrap(), None);
        assert_eq!(ks.status().seq, 2);
    }

    #[test]
    fn kill_file_engages_emergency_and_blocks_reset() {
        let mut ks = switch();
        ks.store_mut().kill_file = true;
        let change = ks.sync(t(1)).unwrap().unwrap();
        assert_eq!(change.new, KillState::Emergency);
        assert!(matches!(change.trigger, Trigger::KillFile { .. }));
        assert!(matches!(
            ks.reset(t(2), "x"),
            Err(KillSwitchError::KillFilePresent { .. })
        ));
        ks.store_mut().kill_file = false;
        assert!(ks.reset(t(3), "file removed").unwrap().is_some());
    }

    #[test]
    fn state_is_restored_and_external_changes_are_picked_up() {
        let mut ks = switch();
        ks.engage(t(1), KillState::HaltEntries, "first").unwrap();
        let store = ks.store().clone();
        let mut restarted = KillSwitch::open(store, t(2)).unwrap();
        assert_eq!(restarted.state(), KillState::HaltEntries);

        // Another process resets the stored state: the running switch adopts it on sync.
        let mut other = KillSwitch::open(restarted.store().clone(), t(3)).unwrap();
        other.reset(t(3), "from the command line").unwrap();
        restarted.store_mut().status = other.store().status.clone();
        assert_eq!(restarted.sync(t(4)).unwrap(), None);
        assert_eq!(restarted.state(), KillState::Normal);
    }

    #[test]
    fn states_parse_from_the_command_line_spelling() {
        assert_eq!("halt-entries".parse(), Ok(KillState::HaltEntries));
        assert_eq!("EMERGENCY".parse(), Ok(KillState::Emergency));
        assert!("panic".parse::<KillState>().is_err());
        assert!(KillState::HaltTrading.must_flatten());
        assert!(!KillState::HaltEntries.must_flatten());
    }
}
