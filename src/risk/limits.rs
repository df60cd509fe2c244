//! The account-level limits of product.md §8: the day's P&L and trades, losing streaks, the
//! cooldown after a stop-out, positions, and the entry windows.

use std::collections::BTreeMap;

use chrono::{Datelike, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::Refusal;
use crate::config::{EntryWindow, RiskConfig};
use crate::model::{Timestamp, utc_to_local};

/// Most closed-trade results kept for the Kelly multiplier; far above any sensible
/// `kelly_lookback`, it only bounds memory over long runs.
const MAX_RESULTS: usize = 1_000;

const MICROS_PER_MINUTE: i64 = 60_000_000;

/// What risk needs to know about the account. Execution keeps it up to date (fills, exits, marks)
/// and the engine calls [`Account::new_day`] at the start of each trading day.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// Realized P&L of the day, in dollars.
    pub realized_pnl: f64,
    /// Unrealized P&L of the open positions, in dollars.
    pub unrealized_pnl: f64,
    /// Entries today.
    pub trades_today: u32,
    /// Losing trades in a row (a win resets it).
    pub consecutive_losses: u32,
    /// When the last losing trade closed.
    pub last_loss_at: Option<Timestamp>,
    /// When the last stop-out happened.
    pub last_stop_out_at: Option<Timestamp>,
    /// Signed position per instrument, in contracts (negative short).
    pub positions: BTreeMap<String, i64>,
    /// Results of closed trades in dollars, oldest first, for the Kelly multiplier.
    pub closed_results: Vec<f64>,
}

/// How a trade ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exit {
    /// Its stop was hit (starts the cooldown).
    Stop,
    /// Its target was hit.
    Target,
    /// Closed otherwise (by hand, flatten, end of day).
    Other,
}

impl Account {
    /// Records an entry of `contracts` (signed: negative sells) in `instrument`.
    pub fn record_entry(&mut self, instrument: &str, contracts: i64) {
        self.trades_today += 1;
        *self.positions.entry(instrument.to_owned()).or_default() += contracts;
    }

    /// Records a closed trade: `contracts` closed (signed like the entry), its result in
    /// dollars, how it ended and when.
    pub fn record_exit(
        &mut self,
        instrument: &str,
        contracts: i64,
        result: f64,
        exit: Exit,
        at: Timestamp,
    ) {
        *self.positions.entry(instrument.to_owned()).or_default() -= contracts;
        self.realized_pnl += result;
        if result > 0.0 {
            self.consecutive_losses = 0;
        } else {
            self.consecutive_losses += 1;
            self.last_loss_at = Some(at);
        }
        if exit == Exit::Stop {
            self.last_stop_out_at = Some(at);
        }
        if self.closed_results.len() == MAX_RESULTS {
            self.closed_results.remove(0);
        }
        self.closed_results.push(result);
    }

    /// Starts a new trading day: P&L and the trade count start from zero. Positions, the losing
    /// streak, the cooldown and the Kelly history carry over.
    pub fn new_day(&mut self) {
        self.realized_pnl = 0.0;
        self.trades_today = 0;
    }

    /// Returns realized plus unrealized P&L of the day.
    pub fn pnl_day(&self) -> f64 {
        self.realized_pnl + self.unrealized_pnl
    }

    /// Returns the signed position in `instrument`.
    pub fn position(&self, instrument: &str) -> i64 {
        self.positions.get(instrument).copied().unwrap_or(0)
    }
}

/// Returns the windows as `09:35-15:45 America/New_York` for messages.
fn describe_windows(windows: &[EntryWindow], tz: Tz) -> String {
    let spans: Vec<String> = windows
        .iter()
        .map(|w| format!("{}-{}", w.start.format("%H:%M"), w.end.format("%H:%M")))
        .collect();
    format!("{} {}", spans.join(", "), tz.name())
}

/// Checks that `now` falls in an entry window, in the exchange time zone, Monday to Friday.
///
/// # Errors
///
/// [`Refusal::OutsideEntryWindow`] otherwise.
pub fn check_window(now: Timestamp, config: &RiskConfig) -> Result<(), Refusal> {
    let local = utc_to_local(now, config.time_zone);
    let open = local.is_some_and(|local| {
        let weekday = !matches!(local.weekday(), Weekday::Sat | Weekday::Sun);
        let time = local.time();
        weekday
            && config
                .entry_windows
                .iter()
                .any(|w| w.start <= time && time < w.end)
    });
    if open {
        return Ok(());
    }
    Err(Refusal::OutsideEntryWindow {
        local_time: local.map_or_else(
            || now.to_iso_millis(),
            |l| l.format("%Y-%m-%d %H:%M:%S (%a)").to_string(),
        ),
        windows: describe_windows(&config.entry_windows, config.time_zone),
    })
}

/// Checks the day's loss, trade count, losing streak and stop-out cooldown, in that order.
///
/// # Errors
///
/// The first limit that refuses.
pub fn check_account(
    now: Timestamp,
    account: &Account,
    config: &RiskConfig,
) -> Result<(), Refusal> {
    let pnl = account.pnl_day();
    if !pnl.is_finite() {
        return Err(Refusal::UnknownPnl {
            realized: account.realized_pnl,
            unrealized: account.unrealized_pnl,
        });
    }
    if -pnl >= config.max_daily_loss {
        return Err(Refusal::DailyLoss {
            loss: -pnl,
            limit: config.max_daily_loss,
        });
    }
    if account.trades_today >= config.max_trades_per_day {
        return Err(Refusal::TradesPerDay {
            trades: account.trades_today,
            limit: config.max_trades_per_day,
        });
    }
    if account.consecutive_losses >= config.max_consecutive_losses
        && let Some(last) = account.last_loss_at
    {
        let resume_at = plus_minutes(last, config.loss_pause_minutes);
        if now < resume_at {
            return Err(Refusal::LossStreak {
                losses: account.consecutive_losses,
                limit: config.max_consecutive_losses,
                resume_at,
            });
        }
    }
    if let Some(stopped_at) = account.last_stop_out_at {
        let resume_at = plus_minutes(stopped_at, config.stop_out_cooldown_minutes);
        if now < resume_at {
            return Err(Refusal::StopOutCooldown {
                stopped_at,
                resume_at,
            });
        }
    }
    Ok(())
}

fn plus_minutes(t: Timestamp, minutes: u64) -> Timestamp {
    let micros = i64::try_from(minutes)
        .unwrap_or(i64::MAX)
        .saturating_mul(MICROS_PER_MINUTE);
    Timestamp::from_micros(t.as_micros().saturating_add(micros))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn risk() -> RiskConfig {
        Config::reference()
            .risk
            .expect("the reference config has [risk]")
    }

    fn at(rfc3339: &str) -> Timestamp {
        Timestamp::from_micros(
            chrono::DateTime::parse_from_rfc3339(rfc3339)
                .unwrap()
                .timestamp_micros(),
        )
    }

    fn open(rfc3339: &str) -> bool {
        check_window(at(rfc3339), &risk()).is_ok()
    }

    #[test]
    fn window_is_in_exchange_time_start_inclusive_end_exclusive() {
        // Friday 2025-09-19, New York on EDT (UTC−4).
        assert!(!open("2025-09-19T13:34:59Z"));
        assert!(open("2025-09-19T13:35:00Z"));
        assert!(open("2025-09-19T19:44:59Z"));
        assert!(!open("2025-09-19T19:45:00Z"));
    }

    #[test]
    fn window_follows_daylight_saving_time() {
        // Winter, EST (UTC−5): 09:35 New York is 14:35 UTC.
        assert!(!open("2025-01-15T13:35:00Z"));
        assert!(open("2025-01-15T14:35:00Z"));
        // Monday 2025-03-10, the day after spring forward: EDT again, 13:35 UTC.
        assert!(open("2025-03-10T13:35:00Z"));
        // Friday 2025-03-07, still EST: 13:35 UTC is 08:35 in New York.
        assert!(!open("2025-03-07T13:35:00Z"));
        // Monday 2025-11-03, the day after fall back: EST, 14:34 UTC is 09:34.
        assert!(!open("2025-11-03T14:34:00Z"));
        assert!(open("2025-11-03T14:35:00Z"));
    }

    #[test]
    fn no_entries_at_weekends() {
        // Saturday 2025-09-20, 11:00 New York.
        let err = check_window(at("2025-09-20T15:00:00Z"), &risk()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "2025-09-20 11:00:00 (Sat) is outside the entry windows 09:35-15:45 America/New_York"
        );
    }

    #[test]
    fn account_limits_in_order() {
        let cfg = risk();
        let now = at("2025-09-19T15:00:00Z");
        let mut account = Account::default();
        assert_eq!(check_account(now, &account, &cfg), Ok(()));

        account.unrealized_pnl = f64::NAN;
        assert!(matches!(
            check_account(now, &account, &cfg),
            Err(Refusal::UnknownPnl { .. })
        ));
        account.unrealized_pnl = -400.0;
        account.realized_pnl = -600.0;
        assert_eq!(
            check_account(now, &account, &cfg),
            Err(Refusal::DailyLoss {
                loss: 1000.0,
                limit: 1000.0
            })
        );
        account.realized_pnl = 0.0;
        account.trades_today = 10;
        assert_eq!(
            check_account(now, &account, &cfg),
            Err(Refusal::TradesPerDay {
                trades: 10,
                limit: 10
            })
        );
    }

    #[test]
    fn losing_streak_pauses_and_a_win_ends_it() {
        let cfg = risk();
        let t0 = at("2025-09-19T15:00:00Z");
        let mut account = Account::default();
        for _ in 0..3 {
            account.record_entry("ES", 1);
            account.record_exit("ES", 1, -87.5, Exit::Target, t0);
        }
        let resume_at = at("2025-09-19T15:30:00Z");
        assert_eq!(
            check_account(t0, &account, &cfg),
            Err(Refusal::LossStreak {
                losses: 3,
                limit: 3,
                resume_at
            })
        );
        assert_eq!(check_account(resume_at, &account, &cfg), Ok(()));
        account.record_exit("ES", 0, 10.0, Exit::Target, t0);
        assert_eq!(account.consecutive_losses, 0);
        assert_eq!(check_account(t0, &account, &cfg), Ok(()));
    }

    #[test]
    fn a_stop_out_starts_the_cooldown() {
        let cfg = risk();
        let t0 = at("2025-09-19T15:00:00Z");
        let mut account = Account::default();
        account.record_entry("NQ", -1);
        account.record_exit("NQ", -1, -35.0, Exit::Stop, t0);
        assert_eq!(account.position("NQ"), 0);
        let resume_at = at("2025-09-19T15:15:00Z");
        assert_eq!(
            check_account(at("2025-09-19T15:14:59Z"), &account, &cfg),
            Err(Refusal::StopOutCooldown {
                stopped_at: t0,
                resume_at
            })
        );
        assert_eq!(check_account(resume_at, &account, &cfg), Ok(()));
    }

    #[test]
    fn a_new_day_clears_pnl_and_trades_only() {
        let mut account = Account::default();
        account.record_entry("ES", 2);
        account.record_exit("ES", 1, -100.0, Exit::Stop, Timestamp::from_secs(1));
        account.new_day();
        assert_eq!(account.pnl_day(), 0.0);
        assert_eq!(account.trades_today, 0);
        assert_eq!(account.position("ES"), 1);
        assert_eq!(account.consecutive_losses, 1);
        assert_eq!(account.closed_results, vec![-100.0]);
    }
}
