//! Performance tracking (product.md §10): closed trades in, statistics out, per day and
//! overall, broken down by tier, VIX policy and direction. Used by replay, the shadow report,
//! the HTML report and, later, the live monitor. Pure: no I/O, no clock.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::features::VixPolicy;
use crate::rules::{Direction, Tier};

/// Why a trade ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitReason {
    /// The target filled.
    Target,
    /// The stop filled.
    Stop,
    /// Flattened: end of the data, end of the day, or the kill switch.
    Flatten,
}

/// One closed trade, as `trades_YYYYMMDD.jsonl` holds it (one JSON object per line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trade {
    /// `live` or `shadow`.
    pub set: String,
    /// Instrument (symbol root).
    pub instrument: String,
    /// Trading day of the entry, `YYYYMMDD` in the exchange time zone.
    pub date: String,
    /// Long or short.
    pub direction: Direction,
    /// Tier of the decision that opened it.
    pub tier: Tier,
    /// VIX policy when it opened.
    pub vix_policy: Option<VixPolicy>,
    /// Contracts.
    pub contracts: u32,
    /// Entry time, ISO 8601 UTC with milliseconds.
    pub entry_time: String,
    /// Entry fill price (slippage included).
    pub entry: f64,
    /// Exit time.
    pub exit_time: String,
    /// Exit fill price (slippage included).
    pub exit: f64,
    /// Why it ended.
    pub exit_reason: ExitReason,
    /// Commission paid, dollars (both sides).
    pub commission: f64,
    /// Net result in dollars, commission deducted.
    pub pnl: f64,
    /// Dollars at risk when it opened (entry to stop), for R multiples.
    pub risk_dollars: f64,
}

impl Trade {
    /// The result in R: net P&L over the initial risk.
    pub fn r_multiple(&self) -> f64 {
        if self.risk_dollars > 0.0 {
            self.pnl / self.risk_dollars
        } else {
            0.0
        }
    }
}

/// Statistics of a group of closed trades.
///
/// A trade with a P&L of exactly zero is neither a win nor a loss, but it counts in `trades`
/// and so in the win rate's denominator. Losses and the gross loss are negative dollars.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Stats {
    /// Closed trades.
    pub trades: u64,
    /// Trades with a positive net P&L.
    pub wins: u64,
    /// Trades with a negative net P&L.
    pub losses: u64,
    /// Wins over trades, 0 to 1 (`None` without trades).
    pub win_rate: Option<f64>,
    /// Sum of the winning P&Ls, dollars.
    pub gross_profit: f64,
    /// Sum of the losing P&Ls, dollars (zero or negative).
    pub gross_loss: f64,
    /// Gross profit over the absolute gross loss (`None` when there is no loss).
    pub profit_factor: Option<f64>,
    /// Mean P&L of the wins (`None` without wins).
    pub avg_win: Option<f64>,
    /// Mean P&L of the losses, negative (`None` without losses).
    pub avg_loss: Option<f64>,
    /// Mean P&L per trade (`None` without trades).
    pub expectancy: Option<f64>,
    /// Mean R multiple ([`Trade::r_multiple`]; `None` without trades).
    pub avg_r: Option<f64>,
    /// Sum of the P&Ls, dollars.
    pub net_pnl: f64,
    /// Largest fall of the cumulative net P&L from a running peak, in trade order, the curve
    /// starting at 0; a positive dollar figure (0 when it never fell).
    pub max_drawdown: f64,
    /// Mean daily net P&L over its sample standard deviation (n − 1), unannualized; `None` with
    /// fewer than 2 days or a zero deviation. See [`Performance`] for which days count.
    pub daily_sharpe: Option<f64>,
}

/// One point of the equity curve: the cumulative net P&L after a trade closed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EquityPoint {
    /// Exit time of the trade, as the trade journal has it.
    pub time: String,
    /// Cumulative net P&L after it, dollars.
    pub equity: f64,
    /// How far below its running peak (at least 0) the curve is there, dollars (0 or positive).
    pub drawdown: f64,
}

/// Performance of one set of trades: per day, overall, and broken down by tier, VIX policy
/// and direction, with the equity curve.
///
/// Trades are taken in exit order (a stable sort on `exit_time`, so trades that close at the
/// same time keep the order given). The days of the daily Sharpe are the trading days
/// (`Trade::date`) on which any of the given trades opened: a day without a trade is not
/// known here and does not count. A breakdown group's Sharpe uses the same days, with 0 on
/// the days it has no trade, so that groups are measured on one calendar.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Performance {
    /// Every trade.
    pub overall: Stats,
    /// By trading day, `YYYYMMDD`.
    pub by_day: BTreeMap<String, Stats>,
    /// By tier of the decision that opened the trade, best first.
    pub by_tier: BTreeMap<Tier, Stats>,
    /// By VIX policy at entry, low to extreme, then `unknown` for trades without one.
    #[serde(serialize_with = "serialize_vix_groups")]
    pub by_vix_policy: BTreeMap<Option<VixPolicy>, Stats>,
    /// By direction (long, short).
    pub by_direction: BTreeMap<Direction, Stats>,
    /// Cumulative net P&L after each trade.
    pub equity: Vec<EquityPoint>,
}

/// The name of a VIX policy group: the policy's name, or `unknown`.
pub fn vix_group_name(policy: Option<VixPolicy>) -> &'static str {
    policy.map_or("unknown", VixPolicy::as_str)
}

/// Writes the VIX groups as a JSON object keyed by name, in the map's order (low to extreme,
/// then unknown); `None` cannot be a JSON key as it is.
fn serialize_vix_groups<S: serde::Serializer>(
    groups: &BTreeMap<Option<VixPolicy>, Stats>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = serializer.serialize_map(Some(groups.len()))?;
    // `None` sorts first in the map; people expect "unknown" after the named policies.
    for (policy, stats) in groups.iter().filter(|(p, _)| p.is_some()) {
        map.serialize_entry(vix_group_name(*policy), stats)?;
    }
    if let Some(stats) = groups.get(&None) {
        map.serialize_entry(vix_group_name(None), stats)?;
    }
    map.end()
}

impl Performance {
    /// Computes the performance of `trades` (one set: live or shadow).
    pub fn from_trades(trades: &[Trade]) -> Performance {
        let mut ordered: Vec<&Trade> = trades.iter().collect();
        ordered.sort_by(|a, b| a.exit_time.cmp(&b.exit_time));
        let days: BTreeSet<&str> = ordered.iter().map(|t| t.date.as_str()).collect();

        let mut by_day: BTreeMap<String, Vec<&Trade>> = BTreeMap::new();
        let mut by_tier: BTreeMap<Tier, Vec<&Trade>> = BTreeMap::new();
        let mut by_vix: BTreeMap<Option<VixPolicy>, Vec<&Trade>> = BTreeMap::new();
        let mut by_direction: BTreeMap<Direction, Vec<&Trade>> = BTreeMap::new();
        for trade in &ordered {
            by_day.entry(trade.date.clone()).or_default().push(trade);
            by_tier.entry(trade.tier).or_default().push(trade);
            by_vix.entry(trade.vix_policy).or_default().push(trade);
            by_direction.entry(trade.direction).or_default().push(trade);
        }
        let stats_of = |group: &[&Trade]| Stats::of(group, &days);
        Performance {
            overall: stats_of(&ordered),
            by_day: by_day
                .into_iter()
                .map(|(day, group)| {
                    let one_day = BTreeSet::from([day.as_str()]);
                    let stats = Stats::of(&group, &one_day);
                    (day, stats)
                })
                .collect(),
            by_tier: by_tier
                .into_iter()
                .map(|(k, g)| (k, stats_of(&g)))
                .collect(),
            by_vix_policy: by_vix.into_iter().map(|(k, g)| (k, stats_of(&g))).collect(),
            by_direction: by_direction
                .into_iter()
                .map(|(k, g)| (k, stats_of(&g)))
                .collect(),
            equity: equity_curve(&ordered),
        }
    }
}

impl Stats {
    /// The statistics of `trades`, in the order given, with the daily Sharpe over `days`.
    fn of(trades: &[&Trade], days: &BTreeSet<&str>) -> Stats {
        let n = trades.len();
        let wins: Vec<f64> = trades.iter().map(|t| t.pnl).filter(|p| *p > 0.0).collect();
        let losses: Vec<f64> = trades.iter().map(|t| t.pnl).filter(|p| *p < 0.0).collect();
        // An empty float sum is -0.0; adding 0.0 makes it 0.0, so a profit factor with no win
        // is 0, not -0.
        let gross_profit: f64 = wins.iter().sum::<f64>() + 0.0;
        let gross_loss: f64 = losses.iter().sum::<f64>() + 0.0;
        let net_pnl: f64 = trades.iter().map(|t| t.pnl).sum();
        let mut daily: BTreeMap<&str, f64> = days.iter().map(|d| (*d, 0.0)).collect();
        for trade in trades {
            *daily.entry(trade.date.as_str()).or_default() += trade.pnl;
        }
        let daily: Vec<f64> = daily.into_values().collect();
        Stats {
            trades: n as u64,
            wins: wins.len() as u64,
            losses: losses.len() as u64,
            win_rate: ratio(wins.len() as f64, n),
            gross_profit,
            gross_loss,
            profit_factor: (!losses.is_empty()).then(|| gross_profit / gross_loss.abs()),
            avg_win: ratio(gross_profit, wins.len()),
            avg_loss: ratio(gross_loss, losses.len()),
            expectancy: ratio(net_pnl, n),
            avg_r: ratio(trades.iter().map(|t| t.r_multiple()).sum(), n),
            net_pnl,
            max_drawdown: equity_curve(trades)
                .iter()
                .map(|p| p.drawdown)
                .fold(0.0, f64::max),
            daily_sharpe: sharpe(&daily),
        }
    }
}

/// `sum / count`, or `None` when `count` is 0.
fn ratio(sum: f64, count: usize) -> Option<f64> {
    (count > 0).then(|| sum / count as f64)
}

/// Mean over sample standard deviation; `None` with fewer than 2 values or no deviation.
fn sharpe(daily: &[f64]) -> Option<f64> {
    let n = daily.len();
    if n < 2 {
        return None;
    }
    let mean = daily.iter().sum::<f64>() / n as f64;
    let variance = daily.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let deviation = variance.sqrt();
    // A deviation this small is rounding noise of equal days, not a real spread.
    (deviation > 1e-9).then(|| mean / deviation)
}

/// The cumulative P&L after each trade, in the order given, with the drawdown at each point.
fn equity_curve(trades: &[&Trade]) -> Vec<EquityPoint> {
    let mut equity = 0.0;
    // The curve starts at 0, so the first peak is 0: a first losing trade is a drawdown.
    let mut peak: f64 = 0.0;
    trades
        .iter()
        .map(|trade| {
            equity += trade.pnl;
            peak = peak.max(equity);
            EquityPoint {
                time: trade.exit_time.clone(),
                equity,
                drawdown: peak - equity,
            }
        })
        .collect()
}

/// Dollars with two decimals and a sign for losses (`-125.50`), as every table and the HTML
/// report print them.
pub fn fmt_money(dollars: f64) -> String {
    // `-0.00` would read as a loss.
    let dollars = if dollars.abs() < 0.005 { 0.0 } else { dollars };
    format!("{dollars:.2}")
}

/// The column names of [`Stats::cells`], in order.
pub const STATS_COLUMNS: [&str; 12] = [
    "trades",
    "wins",
    "losses",
    "win rate",
    "net P&L",
    "profit factor",
    "avg win",
    "avg loss",
    "expectancy",
    "avg R",
    "max drawdown",
    "daily Sharpe",
];

impl Stats {
    /// The figures formatted as every table of mia prints them (terminal and HTML alike), in
    /// the order of [`STATS_COLUMNS`].
    pub fn cells(&self) -> [String; 12] {
        [
            self.trades.to_string(),
            self.wins.to_string(),
            self.losses.to_string(),
            fmt_rate(self.win_rate),
            fmt_money(self.net_pnl),
            fmt_ratio(self.profit_factor),
            fmt_money_opt(self.avg_win),
            fmt_money_opt(self.avg_loss),
            fmt_money_opt(self.expectancy),
            fmt_ratio(self.avg_r),
            fmt_money(self.max_drawdown),
            fmt_ratio(self.daily_sharpe),
        ]
    }
}

/// A rate of 0 to 1 as a percentage with one decimal (`62.5%`), or `—` when undefined.
pub fn fmt_rate(rate: Option<f64>) -> String {
    rate.map_or_else(|| "—".to_owned(), |r| format!("{:.1}%", r * 100.0))
}

/// A plain figure (profit factor, R, Sharpe) with two decimals, or `—` when undefined.
pub fn fmt_ratio(value: Option<f64>) -> String {
    // `+ 0.0` turns a -0.0 into 0.0, which would otherwise print as `-0.00`.
    value.map_or_else(|| "—".to_owned(), |v| format!("{:.2}", v + 0.0))
}

/// Optional dollars (an average win or loss, the expectancy), or `—` when undefined.
pub fn fmt_money_opt(dollars: Option<f64>) -> String {
    dollars.map_or_else(|| "—".to_owned(), fmt_money)
}

#[cfg(test)]
mod tests {
    #[test]
    fn negative_zero_never_prints() {
        assert_eq!(fmt_ratio(Some(-0.0)), "0.00");
        assert_eq!(fmt_money(-0.0), "0.00");
        let stats = Performance::from_trades(&[]).overall;
        assert_eq!(stats.gross_profit.to_bits(), 0.0f64.to_bits());
    }

    use super::*;

    /// A trade of `set` "live" on ES with the figures that matter here.
    fn trade(
        date: &str,
        exit_time: &str,
        direction: Direction,
        tier: Tier,
        vix_policy: Option<VixPolicy>,
        pnl: f64,
        risk_dollars: f64,
    ) -> Trade {
        Trade {
            set: "live".to_owned(),
            instrument: "ES".to_owned(),
            date: date.to_owned(),
            direction,
            tier,
            vix_policy,
            contracts: 1,
            entry_time: exit_time.to_owned(),
            entry: 6500.0,
            exit_time: exit_time.to_owned(),
            exit: 6500.0,
            exit_reason: ExitReason::Target,
            commission: 4.0,
            pnl,
            risk_dollars,
        }
    }

    /// Seven trades over three days. In exit order:
    ///
    /// | # | day | dir   | tier    | VIX     |  P&L | risk |    R | equity | peak | drawdown |
    /// |---|-----|-------|---------|---------|------|------|------|--------|------|----------|
    /// | 1 | 15  | long  | PREMIUM | low     | +250 |  100 | +2.5 |    250 |  250 |        0 |
    /// | 2 | 15  | short | STRONG  | normal  | −100 |  100 | −1.0 |    150 |  250 |      100 |
    /// | 3 | 15  | long  | STRONG  | normal  | +150 |   50 | +3.0 |    300 |  300 |        0 |
    /// | 4 | 16  | long  | PREMIUM | high    | −200 |  100 | −2.0 |    100 |  300 |      200 |
    /// | 5 | 16  | short | GOOD    | unknown |  −50 |   50 | −1.0 |     50 |  300 |      250 |
    /// | 6 | 16  | long  | GOOD    | normal  |    0 |  100 |  0.0 |     50 |  300 |      250 |
    /// | 7 | 17  | short | PREMIUM | low     | +400 |  100 | +4.0 |    450 |  450 |        0 |
    ///
    /// Trade 3 is given before trade 2, to check that trades are taken in exit order.
    fn known_trades() -> Vec<Trade> {
        use Direction::{Long, Short};
        use Tier::{Good, Premium, Strong};
        use VixPolicy::{High, Low, Normal};
        vec![
            trade(
                "20250915",
                "2025-09-15T14:00:00.000Z",
                Long,
                Premium,
                Some(Low),
                250.0,
                100.0,
            ),
            trade(
                "20250915",
                "2025-09-15T15:00:00.000Z",
                Long,
                Strong,
                Some(Normal),
                150.0,
                50.0,
            ),
            trade(
                "20250915",
                "2025-09-15T14:30:00.000Z",
                Short,
                Strong,
                Some(Normal),
                -100.0,
                100.0,
            ),
            trade(
                "20250916",
                "2025-09-16T14:00:00.000Z",
                Long,
                Premium,
                Some(High),
                -200.0,
                100.0,
            ),
            trade(
                "20250916",
                "2025-09-16T14:30:00.000Z",
                Short,
                Good,
                None,
                -50.0,
                50.0,
            ),
            trade(
                "20250916",
                "2025-09-16T15:00:00.000Z",
                Long,
                Good,
                Some(Normal),
                0.0,
                100.0,
            ),
            trade(
                "20250917",
                "2025-09-17T14:00:00.000Z",
                Short,
                Premium,
                Some(Low),
                400.0,
                100.0,
            ),
        ]
    }

    fn close(actual: f64, expected: f64) -> bool {
        (actual - expected).abs() < 1e-9
    }

    #[track_caller]
    fn assert_close(actual: Option<f64>, expected: Option<f64>) {
        match (actual, expected) {
            (Some(a), Some(e)) => assert!(close(a, e), "{a} != {e}"),
            (None, None) => {}
            _ => panic!("{actual:?} != {expected:?}"),
        }
    }

    #[test]
    fn overall_figures_match_the_hand_arithmetic() {
        let perf = Performance::from_trades(&known_trades());
        let s = &perf.overall;
        // Wins 250, 150, 400; losses −100, −200, −50; trade 6 is a scratch.
        assert_eq!((s.trades, s.wins, s.losses), (7, 3, 3));
        // 3 wins of 7 trades.
        assert_close(s.win_rate, Some(3.0 / 7.0));
        // 250 + 150 + 400 = 800; −100 − 200 − 50 = −350; 800 / 350.
        assert!(close(s.gross_profit, 800.0) && close(s.gross_loss, -350.0));
        assert_close(s.profit_factor, Some(800.0 / 350.0));
        // 800 / 3 and −350 / 3.
        assert_close(s.avg_win, Some(800.0 / 3.0));
        assert_close(s.avg_loss, Some(-350.0 / 3.0));
        // Net 450 over 7 trades.
        assert!(close(s.net_pnl, 450.0));
        assert_close(s.expectancy, Some(450.0 / 7.0));
        // R: 2.5 − 1 + 3 − 2 − 1 + 0 + 4 = 5.5, over 7.
        assert_close(s.avg_r, Some(5.5 / 7.0));
        // The peak 300 after trade 3 falls to 50 after trades 5 and 6.
        assert!(close(s.max_drawdown, 250.0));
        // Days: 250 − 100 + 150 = 300, −200 − 50 + 0 = −250, 400. Mean 450 / 3 = 150.
        // Squared deviations 150², 400², 250² = 22 500 + 160 000 + 62 500 = 245 000;
        // over n − 1 = 2 gives 122 500, whose root is 350. 150 / 350 = 3/7.
        assert_close(s.daily_sharpe, Some(3.0 / 7.0));
    }

    #[test]
    fn equity_curve_follows_exit_order_with_its_drawdown() {
        let perf = Performance::from_trades(&known_trades());
        let points: Vec<(&str, f64, f64)> = perf
            .equity
            .iter()
            .map(|p| (&p.time[..16], p.equity, p.drawdown))
            .collect();
        assert_eq!(
            points,
            [
                ("2025-09-15T14:00", 250.0, 0.0),
                ("2025-09-15T14:30", 150.0, 100.0),
                ("2025-09-15T15:00", 300.0, 0.0),
                ("2025-09-16T14:00", 100.0, 200.0),
                ("2025-09-16T14:30", 50.0, 250.0),
                ("2025-09-16T15:00", 50.0, 250.0),
                ("2025-09-17T14:00", 450.0, 0.0),
            ]
        );
    }

    #[test]
    fn days_are_summed_on_their_own() {
        let perf = Performance::from_trades(&known_trades());
        let days: Vec<(&str, u64, f64, f64)> = perf
            .by_day
            .iter()
            .map(|(d, s)| (d.as_str(), s.trades, s.net_pnl, s.max_drawdown))
            .collect();
        // Day 15: 250, 150 (DD 100), 300. Day 16: −200, −250, −250 (DD 250 from the start at 0).
        assert_eq!(
            days,
            [
                ("20250915", 3, 300.0, 100.0),
                ("20250916", 3, -250.0, 250.0),
                ("20250917", 1, 400.0, 0.0),
            ]
        );
        // One day has no deviation to speak of.
        assert!(perf.by_day.values().all(|s| s.daily_sharpe.is_none()));
        // Day 16 has a loss and no win: profit factor 0 / 250.
        assert_close(perf.by_day["20250916"].profit_factor, Some(0.0));
    }

    #[test]
    fn tiers_are_broken_down_on_the_same_days() {
        let perf = Performance::from_trades(&known_trades());
        let premium = &perf.by_tier[&Tier::Premium];
        // Trades 1, 4, 7: +250, −200, +400.
        assert_eq!((premium.trades, premium.wins, premium.losses), (3, 2, 1));
        assert_close(premium.win_rate, Some(2.0 / 3.0));
        // 650 / 200.
        assert_close(premium.profit_factor, Some(3.25));
        assert_close(premium.avg_win, Some(325.0));
        assert_close(premium.avg_loss, Some(-200.0));
        assert_close(premium.expectancy, Some(150.0));
        // (2.5 − 2 + 4) / 3.
        assert_close(premium.avg_r, Some(1.5));
        // 250 then 50.
        assert!(close(premium.max_drawdown, 200.0));
        // Days 250, −200, 400: mean 150; deviations 100, −350, 250 squared sum to 195 000;
        // over 2 gives 97 500.
        assert_close(premium.daily_sharpe, Some(150.0 / 97_500f64.sqrt()));

        let strong = &perf.by_tier[&Tier::Strong];
        // Trades 2 then 3: −100, +150. The curve starts at 0, so −100 is a drawdown of 100.
        assert_close(strong.profit_factor, Some(1.5));
        assert_close(strong.avg_r, Some(1.0));
        assert!(close(strong.max_drawdown, 100.0));
        // Days 50, 0, 0 (no STRONG trade on the 16th and 17th): mean 50/3, sample deviation
        // sqrt(((100/3)² + 2 × (50/3)²) / 2) = 50/√3, so the Sharpe is 1/√3.
        assert_close(strong.daily_sharpe, Some(1.0 / 3f64.sqrt()));

        let good = &perf.by_tier[&Tier::Good];
        // Trades 5 and 6: −50 and a scratch. No win: no average win, a profit factor of 0.
        assert_eq!((good.trades, good.wins, good.losses), (2, 0, 1));
        assert_close(good.win_rate, Some(0.0));
        assert_close(good.avg_win, None);
        assert_close(good.profit_factor, Some(0.0));
        assert_close(good.expectancy, Some(-25.0));
        assert_close(good.avg_r, Some(-0.5));
        assert_close(good.daily_sharpe, Some(-1.0 / 3f64.sqrt()));
        assert!(!perf.by_tier.contains_key(&Tier::Weak));
    }

    #[test]
    fn vix_policies_and_directions_are_broken_down() {
        let perf = Performance::from_trades(&known_trades());
        let vix: Vec<(Option<VixPolicy>, u64, f64)> = perf
            .by_vix_policy
            .iter()
            .map(|(p, s)| (*p, s.trades, s.net_pnl))
            .collect();
        // low: 250 + 400; normal: 150 − 100 + 0; high: −200; unknown: −50.
        assert_eq!(
            vix,
            [
                (None, 1, -50.0),
                (Some(VixPolicy::Low), 2, 650.0),
                (Some(VixPolicy::Normal), 3, 50.0),
                (Some(VixPolicy::High), 1, -200.0),
            ]
        );
        // No losing trade in low VIX: no profit factor.
        assert_close(
            perf.by_vix_policy[&Some(VixPolicy::Low)].profit_factor,
            None,
        );

        let long = &perf.by_direction[&Direction::Long];
        // Trades 1, 3, 4, 6: 250, 400, 200, 200.
        assert_eq!((long.trades, long.wins, long.losses), (4, 2, 1));
        assert!(close(long.net_pnl, 200.0) && close(long.max_drawdown, 200.0));
        let short = &perf.by_direction[&Direction::Short];
        // Trades 2, 5, 7: −100, −150, 250.
        assert_eq!((short.trades, short.wins, short.losses), (3, 1, 2));
        assert!(close(short.net_pnl, 250.0) && close(short.max_drawdown, 150.0));
    }

    #[test]
    fn no_trades_give_no_ratios() {
        let perf = Performance::from_trades(&[]);
        assert_eq!(perf.overall, Stats::default());
        assert!(perf.equity.is_empty());
    }

    #[test]
    fn json_keys_are_names_in_a_stable_order() {
        let perf = Performance::from_trades(&known_trades());
        let text = serde_json::to_string(&perf).unwrap();
        // `serde_json::Value` sorts its keys, so the order is checked on the text.
        let in_order = |keys: &[&str]| {
            let at: Vec<usize> = keys
                .iter()
                .map(|k| text.find(&format!("\"{k}\":{{")).unwrap())
                .collect();
            at.windows(2).all(|w| w[0] < w[1])
        };
        assert!(in_order(&["PREMIUM", "STRONG", "GOOD"]));
        assert!(in_order(&["low", "normal", "high", "unknown"]));
        assert!(in_order(&["long", "short"]));
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["overall"]["profit_factor"], 800.0 / 350.0);
        assert!(json["by_vix_policy"]["low"]["profit_factor"].is_null());
    }

    #[test]
    fn figures_are_formatted_once_for_every_output() {
        assert_eq!(fmt_money(450.0), "450.00");
        assert_eq!(fmt_money(-0.001), "0.00");
        assert_eq!(fmt_money(-125.5), "-125.50");
        assert_eq!(fmt_rate(Some(3.0 / 7.0)), "42.9%");
        assert_eq!(fmt_rate(None), "—");
        assert_eq!(fmt_ratio(Some(800.0 / 350.0)), "2.29");
        assert_eq!(fmt_money_opt(None), "—");
    }
}
