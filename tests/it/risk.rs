//! Risk: the table-driven cases of `tests/data/risk/*.toml`, a property test that no approved
//! order breaks a limit, the kill switch across restarts with its file store, and the
//! `mia kill-switch` command.
//!
//! A case file holds `[[case]]` tables. Every case starts from the reference `[risk]` limits
//! (config/mia.toml: ES and NQ `max_contracts = 4`, `max_position = 3`, `sizing_factor = 0.5`,
//! `max_risk_per_trade = 400`, `max_daily_loss = 1000`, 10 trades a day, 3 losses then a 30-minute
//! pause, a 15-minute cooldown, 09:35-15:45 New York, stops 2 beyond the level within 7..=20
//! ticks, target 2.5 R) and these inputs unless the case says otherwise: Friday
//! 2025-09-19 10:30 New York, VIX policy `normal`, `size_mult = 1.0`, no veto, no level, every
//! source fresh, kill switch `NORMAL`, a flat account with no closed trade.

use std::collections::BTreeMap;
use std::path::Path;

use mia::config::Config;
use mia::features::VixPolicy;
use mia::model::{ContractSpec, Level, Timestamp};
use mia::risk::store::{JOURNAL_FILE, KILL_FILE, STATE_FILE};
use mia::risk::{
    Account, FileStore, KillState, KillSwitch, KillSwitchError, MarketView, RiskGate, Trigger,
    Verdict,
};
use mia::rules::{Decision, Direction, Tier};
use mia::snapshot::{Source, SourceAge};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde::Deserialize;

use crate::support::{TestCommand, data_path, tmp, write};

const DEFAULT_TIME: &str = "2025-09-19T10:30:00-04:00";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    case: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    instrument: String,
    direction: String,
    #[serde(default)]
    price: Option<f64>,
    #[serde(default)]
    time: Option<String>,
    #[serde(default)]
    size_mult: Option<f64>,
    #[serde(default)]
    vetoes: Vec<String>,
    /// `low`, `normal`, `high`, `extreme` or `none`.
    #[serde(default)]
    vix: Option<String>,
    /// Level names as the dumpers write them (`put_support`, `1d_min`, `gamma_wall_0dte`…).
    #[serde(default)]
    levels: BTreeMap<String, f64>,
    /// Stale sources: `minute`, `profile`, `vix`, `menthorq`.
    #[serde(default)]
    stale: Vec<String>,
    #[serde(default)]
    kill_switch: Option<String>,
    #[serde(default)]
    account: AccountCase,
    #[serde(default)]
    limits: Overrides,
    expect: Expect,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountCase {
    #[serde(default)]
    realized_pnl: f64,
    #[serde(default)]
    unrealized_pnl: f64,
    #[serde(default)]
    trades_today: u32,
    #[serde(default)]
    consecutive_losses: u32,
    #[serde(default)]
    last_loss_minutes_ago: Option<i64>,
    #[serde(default)]
    stop_out_minutes_ago: Option<i64>,
    #[serde(default)]
    position: i64,
    /// Closed trades for Kelly: `wins` results of `+win`, then `losses` of `-loss`.
    #[serde(default)]
    kelly: Option<KellyHistory>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KellyHistory {
    wins: usize,
    win: f64,
    losses: usize,
    loss: f64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Overrides {
    max_risk_per_trade: Option<f64>,
    max_daily_loss: Option<f64>,
    max_contracts: Option<u32>,
    max_position: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    /// The refusal `kind`; absent for an approval.
    refusal: Option<String>,
    /// The refusal as a sentence, when the case checks its figures.
    message: Option<String>,
    contracts: Option<u32>,
    stop: Option<f64>,
    target: Option<f64>,
    /// Dollar risk of the whole order.
    risk: Option<f64>,
}

fn at(rfc3339: &str) -> Timestamp {
    let dt = chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("bad time {rfc3339:?}: {e}"));
    Timestamp::from_micros(dt.timestamp_micros())
}

fn reference_risk() -> mia::config::RiskConfig {
    Config::reference()
        .risk
        .expect("the reference config has [risk]")
}

fn decision(direction: Direction, size_mult: f64, vetoes: Vec<String>) -> Decision {
    Decision {
        score: 80.0,
        direction,
        tier: Tier::Strong,
        size_mult,
        components: BTreeMap::new(),
        reasons: Vec::new(),
        vetoes,
    }
}

fn ages(stale: &[String]) -> Vec<SourceAge> {
    let name = |s: Source| match s {
        Source::Minute => "minute",
        Source::Profile => "profile",
        Source::Vix => "vix",
        Source::MenthorQ => "menthorq",
    };
    Source::ALL
        .into_iter()
        .map(|source| {
            let is_stale = stale.iter().any(|s| s == name(source));
            SourceAge {
                source,
                age_secs: Some(if is_stale { 600.0 } else { 1.0 }),
                stale: is_stale,
            }
        })
        .collect()
}

/// Runs one case; returns what differed, empty when it passed.
fn run_case(case: &Case) -> Vec<String> {
    let mut cfg = reference_risk();
    let o = &case.limits;
    if let Some(x) = o.max_risk_per_trade {
        cfg.max_risk_per_trade = x;
    }
    if let Some(x) = o.max_daily_loss {
        cfg.max_daily_loss = x;
    }
    if let Some(limits) = cfg.instruments.get_mut(&case.instrument) {
        limits.max_contracts = o.max_contracts.unwrap_or(limits.max_contracts);
        limits.max_position = o.max_position.unwrap_or(limits.max_position);
    }
    let now = at(case.time.as_deref().unwrap_or(DEFAULT_TIME));
    let minutes_ago = |m: i64| Timestamp::from_micros(now.as_micros() - m * 60_000_000);
    let a = &case.account;
    let mut account = Account {
        realized_pnl: a.realized_pnl,
        unrealized_pnl: a.unrealized_pnl,
        trades_today: a.trades_today,
        consecutive_losses: a.consecutive_losses,
        last_loss_at: a.last_loss_minutes_ago.map(minutes_ago),
        last_stop_out_at: a.stop_out_minutes_ago.map(minutes_ago),
        ..Account::default()
    };
    account
        .positions
        .insert(case.instrument.clone(), a.position);
    if let Some(k) = &a.kelly {
        account.closed_results = std::iter::repeat_n(k.win, k.wins)
            .chain(std::iter::repeat_n(-k.loss, k.losses))
            .collect();
    }
    let direction = match case.direction.as_str() {
        "long" => Direction::Long,
        "short" => Direction::Short,
        "flat" => Direction::Flat,
        other => panic!("{}: direction {other:?}", case.name),
    };
    let vix_policy = match case.vix.as_deref().unwrap_or("normal") {
        "low" => Some(VixPolicy::Low),
        "normal" => Some(VixPolicy::Normal),
        "high" => Some(VixPolicy::High),
        "extreme" => Some(VixPolicy::Extreme),
        "none" => None,
        other => panic!("{}: vix {other:?}", case.name),
    };
    let levels: BTreeMap<Level, f64> = case
        .levels
        .iter()
        .map(|(name, price)| {
            let level =
                Level::parse(name).unwrap_or_else(|| panic!("{}: level {name:?}", case.name));
            (level, *price)
        })
        .collect();
    let kill: KillState = case
        .kill_switch
        .as_deref()
        .unwrap_or("NORMAL")
        .parse()
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    let spec = ContractSpec::builtin(&case.instrument)
        .unwrap_or_else(|| panic!("{}: no spec for {}", case.name, case.instrument));
    let ages = ages(&case.stale);
    let market = MarketView {
        instrument: &case.instrument,
        spec,
        price: case.price,
        levels: &levels,
        vix_policy,
        ages: &ages,
    };
    let verdict = RiskGate::new(cfg).check(
        &decision(
            direction,
            case.size_mult.unwrap_or(1.0),
            case.vetoes.clone(),
        ),
        &market,
        &account,
        kill,
        now,
    );
    compare(&case.expect, &verdict)
}

fn compare(expect: &Expect, verdict: &Verdict) -> Vec<String> {
    let mut diffs = Vec::new();
    let check = |diffs: &mut Vec<String>, what: &str, want: String, got: String| {
        if want != got {
            diffs.push(format!("{what}: expected {want}, got {got}"));
        }
    };
    match (verdict, &expect.refusal) {
        (Verdict::Refused(refusal), Some(kind)) => {
            check(
                &mut diffs,
                "refusal",
                kind.clone(),
                refusal.kind().to_owned(),
            );
            if let Some(message) = &expect.message {
                check(&mut diffs, "message", message.clone(), refusal.to_string());
            }
        }
        (Verdict::Refused(refusal), None) => {
            diffs.push(format!(
                "expected an approval, got refusal {} ({refusal})",
                refusal.kind()
            ));
        }
        (Verdict::Approved(approved), Some(kind)) => {
            diffs.push(format!(
                "expected refusal {kind}, got an approval: {:?}",
                approved.order()
            ));
        }
        (Verdict::Approved(approved), None) => {
            let order = approved.order();
            let num = |x: Option<f64>| x.map_or("(unchecked)".to_owned(), |x| format!("{x}"));
            match expect.contracts {
                Some(c) => check(
                    &mut diffs,
                    "contracts",
                    c.to_string(),
                    order.contracts.to_string(),
                ),
                None => diffs.push("an approval must state contracts".into()),
            }
            for (what, want, got) in [
                ("stop", expect.stop, order.stop),
                ("target", expect.target, order.target),
                ("risk", expect.risk, order.risk_dollars),
            ] {
                if want.is_some() {
                    check(&mut diffs, what, num(want), format!("{got}"));
                }
            }
            if expect.stop.is_none() || expect.target.is_none() {
                diffs.push("an approval must state stop and target".into());
            }
        }
    }
    diffs
}

#[test]
fn table_driven_cases() {
    let dir = data_path("risk");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no case files in {}", dir.display());
    let mut failures = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut n_cases = 0;
    let mut n_failed = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let parsed: CaseFile =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let file_name = file.file_name().unwrap().to_string_lossy().into_owned();
        for case in &parsed.case {
            n_cases += 1;
            assert!(
                seen.insert(case.name.clone()),
                "{file_name}: case name {:?} used twice",
                case.name
            );
            let diffs = run_case(case);
            n_failed += usize::from(!diffs.is_empty());
            for diff in diffs {
                failures.push(format!("{file_name} :: {}: {diff}", case.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{n_failed} of {n_cases} risk case(s) failed:\n  {}",
        failures.join("\n  ")
    );
}

/// Every refusal kind and both instruments appear in the cases, so no rule goes untested.
#[test]
fn cases_cover_every_rule_for_es_and_nq() {
    let mut kinds: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for entry in std::fs::read_dir(data_path("risk")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let parsed: CaseFile = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for case in parsed.case {
            let kind = case.expect.refusal.unwrap_or_else(|| "approved".into());
            kinds.entry(kind).or_default().insert(case.instrument);
        }
    }
    let wanted = [
        "approved",
        "flat",
        "vetoed",
        "zero_size_mult",
        "kill_switch",
        "invalid_price",
        "stale_data",
        "outside_entry_window",
        "daily_loss",
        "trades_per_day",
        "loss_streak",
        "stop_out_cooldown",
        "vix_unknown",
        "vix_extreme",
        "opposite_position",
        "position_limit",
        "reward_below_minimum",
        "size_below_one",
        "risk_per_trade_cap",
    ];
    let mut missing = Vec::new();
    for kind in wanted {
        for instrument in ["ES", "NQ"] {
            if !kinds.get(kind).is_some_and(|s| s.contains(instrument)) {
                missing.push(format!("{kind} for {instrument}"));
            }
        }
    }
    assert!(missing.is_empty(), "no case for: {}", missing.join(", "));
}

// ---------------------------------------------------------------------------------------------
// Property: no approved order breaks a limit.

fn level_strategy() -> impl Strategy<Value = Level> {
    prop::sample::select(vec![
        Level::CallResistance,
        Level::PutSupport,
        Level::Hvl,
        Level::OneDayMin,
        Level::OneDayMax,
        Level::CallResistance0dte,
        Level::PutSupport0dte,
        Level::Hvl0dte,
        Level::GammaWall0dte,
        Level::Gex(1),
        Level::BlindSpot(1),
        Level::Swing(1),
    ])
}

#[derive(Debug, Clone)]
struct Scenario {
    instrument: &'static str,
    direction: Direction,
    size_mult: f64,
    entry_ticks: i64,
    levels: Vec<(Level, i64)>,
    vix: VixPolicy,
    position: i64,
    realized: f64,
    kelly: Vec<f64>,
    max_risk_per_trade: f64,
    max_contracts: u32,
    max_position: u32,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        prop::sample::select(vec!["ES", "NQ"]),
        prop::sample::select(vec![Direction::Long, Direction::Short]),
        prop::sample::select(vec![0.5, 1.0, 1.5, 2.0, 3.7]),
        20_000i64..100_000,
        prop::collection::vec((level_strategy(), -60i64..60), 0..8),
        prop::sample::select(vec![
            VixPolicy::Low,
            VixPolicy::Normal,
            VixPolicy::High,
            VixPolicy::Extreme,
        ]),
        -3i64..4,
        -1500.0f64..500.0,
        prop::collection::vec(-300.0f64..300.0, 0..60),
        (20.0f64..1000.0, 1u32..8, 1u32..6),
    )
        .prop_map(
            |(
                instrument,
                direction,
                size_mult,
                entry_ticks,
                levels,
                vix,
                position,
                realized,
                kelly,
                (max_risk_per_trade, max_contracts, max_position),
            )| Scenario {
                instrument,
                direction,
                size_mult,
                entry_ticks,
                levels,
                vix,
                position,
                realized,
                kelly,
                max_risk_per_trade,
                max_contracts,
                max_position,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2_000,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..ProptestConfig::default()
    })]

    #[test]
    fn no_approved_order_breaks_a_limit(s in scenario()) {
        let mut cfg = reference_risk();
        cfg.max_risk_per_trade = s.max_risk_per_trade;
        let limits = cfg.instruments.get_mut(s.instrument).unwrap();
        limits.max_contracts = s.max_contracts;
        limits.max_position = s.max_position;
        let spec = ContractSpec::builtin(s.instrument).unwrap();
        let entry = s.entry_ticks as f64 * spec.tick_size;
        // A level drawn twice keeps its last distance, as in the snapshot.
        let level_ticks: BTreeMap<Level, i64> = s.levels.iter().copied().collect();
        let levels: BTreeMap<Level, f64> = level_ticks
            .iter()
            .map(|(l, d)| (*l, (s.entry_ticks + d) as f64 * spec.tick_size))
            .collect();
        let mut account = Account {
            realized_pnl: s.realized,
            closed_results: s.kelly.clone(),
            ..Account::default()
        };
        account.positions.insert(s.instrument.to_owned(), s.position);
        let ages = ages(&[]);
        let market = MarketView {
            instrument: s.instrument,
            spec,
            price: Some(entry),
            levels: &levels,
            vix_policy: Some(s.vix),
            ages: &ages,
        };
        let gate = RiskGate::new(cfg.clone());
        let verdict = gate.check(
            &decision(s.direction, s.size_mult, Vec::new()),
            &market,
            &account,
            KillState::Normal,
            at(DEFAULT_TIME),
        );
        let Verdict::Approved(approved) = verdict else {
            return Ok(());
        };
        let order = approved.order();
        let tick = spec.tick_size;
        // Size within bounds.
        prop_assert!(order.contracts >= 1);
        let formula = f64::from(s.max_contracts) * cfg.sizing_factor * s.size_mult;
        prop_assert!(f64::from(order.contracts) <= formula + 1e-9);
        let held = s.position.unsigned_abs() as u32;
        prop_assert!(held + order.contracts <= s.max_position);
        let sign: i64 = if s.direction == Direction::Long { 1 } else { -1 };
        prop_assert!(s.position * sign >= 0, "entry against a position of {}", s.position);
        // Dollar risk within the cap, from the instrument's own tick value.
        let stop_ticks = ((order.entry - order.stop).abs() / tick).round();
        let risk = stop_ticks * spec.tick_value * f64::from(order.contracts);
        prop_assert!((risk - order.risk_dollars).abs() < 1e-6);
        prop_assert!(risk <= cfg.max_risk_per_trade + 1e-6);
        // Stop on the right side, within 7..=20 ticks.
        prop_assert!((7.0..=20.0).contains(&stop_ticks), "stop {stop_ticks} ticks");
        let target_ticks = ((order.target - order.entry).abs() / tick).round();
        let up = if s.direction == Direction::Long { 1.0 } else { -1.0 };
        prop_assert!((order.entry - order.stop) * up > 0.0);
        prop_assert!((order.target - order.entry) * up > 0.0);
        // Reward at least 2.5 × risk.
        prop_assert!(target_ticks >= 2.5 * stop_ticks, "{target_ticks} < 2.5 × {stop_ticks}");
        // No opposing level closer than the target.
        let opposing = if s.direction == Direction::Long {
            mia::model::LevelFamily::Resistance
        } else {
            mia::model::LevelFamily::Support
        };
        for (level, d) in &level_ticks {
            let ahead = *d as f64 * up;
            if level.family() == opposing && ahead >= 0.0 {
                prop_assert!(ahead >= target_ticks, "{level:?} {ahead} ticks ahead");
            }
        }
        // No approval in extreme VIX or at the daily loss limit.
        prop_assert!(s.vix != VixPolicy::Extreme);
        prop_assert!(-s.realized < cfg.max_daily_loss);
    }
}

// ---------------------------------------------------------------------------------------------
// Kill switch with the file store.

#[test]
fn kill_switch_stays_engaged_across_a_restart_until_reset() {
    let dir = tmp();
    let t0 = at("2025-09-19T10:00:00-04:00");
    let later = at("2025-09-19T10:05:00-04:00");
    {
        let mut ks = KillSwitch::open(FileStore::new(dir.path()), t0).unwrap();
        assert_eq!(ks.state(), KillState::Normal);
        let health = mia::risk::Health {
            pnl_day: -1200.0,
            in_session: true,
            ..Default::default()
        };
        let change = ks.evaluate(t0, &health, &reference_risk()).unwrap();
        assert_eq!(change.map(|c| c.new), Some(KillState::HaltTrading));
    }
    // "Restart": a new switch over the same folder.
    let mut ks = KillSwitch::open(FileStore::new(dir.path()), later).unwrap();
    assert_eq!(ks.state(), KillState::HaltTrading);
    assert_eq!(ks.status().since, t0);
    // Healthy again, still engaged: only a reset lowers it.
    let healthy = mia::risk::Health {
        in_session: true,
        ..Default::default()
    };
    assert_eq!(
        ks.evaluate(later, &healthy, &reference_risk()).unwrap(),
        None
    );
    ks.reset(later, "loss reviewed").unwrap();
    drop(ks);
    let ks = KillSwitch::open(FileStore::new(dir.path()), later).unwrap();
    assert_eq!(ks.state(), KillState::Normal);

    // The journal has both changes with time, states, reason and figures.
    let journal = std::fs::read_to_string(dir.path().join(JOURNAL_FILE)).unwrap();
    let lines: Vec<serde_json::Value> = journal
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{journal}");
    assert_eq!(lines[0]["old"], "NORMAL");
    assert_eq!(lines[0]["new"], "HALT_TRADING");
    assert_eq!(lines[0]["ts"], "2025-09-19T14:00:00.000Z");
    assert_eq!(lines[0]["trigger"]["kind"], "daily_loss");
    assert_eq!(lines[0]["trigger"]["loss"], 1200.0);
    assert_eq!(lines[0]["trigger"]["limit"], 1000.0);
    assert_eq!(lines[1]["new"], "NORMAL");
    assert_eq!(lines[1]["trigger"]["reason"], "loss reviewed");
    // No temporary file is left behind by the atomic write.
    assert!(!dir.path().join(format!("{STATE_FILE}.tmp")).exists());
}

#[test]
fn kill_file_engages_emergency_on_start_and_while_running() {
    let dir = tmp();
    let t0 = at("2025-09-19T10:00:00-04:00");
    write(&dir.path().join(KILL_FILE), "");
    let ks = KillSwitch::open(FileStore::new(dir.path()), t0).unwrap();
    assert_eq!(ks.state(), KillState::Emergency);
    assert!(matches!(
        ks.status().trigger,
        Some(Trigger::KillFile { .. })
    ));
    drop(ks);
    std::fs::remove_file(dir.path().join(KILL_FILE)).unwrap();

    let mut ks = KillSwitch::open(FileStore::new(dir.path()), t0).unwrap();
    assert_eq!(
        ks.state(),
        KillState::Emergency,
        "latched after the file is gone"
    );
    ks.reset(t0, "ok").unwrap();
    assert_eq!(ks.sync(t0).unwrap(), None);
    write(&dir.path().join(KILL_FILE), "stop\n");
    let change = ks.sync(t0).unwrap().unwrap();
    assert_eq!(change.new, KillState::Emergency);
    assert!(matches!(
        ks.reset(t0, "too early"),
        Err(KillSwitchError::KillFilePresent { .. })
    ));
}

#[test]
fn an_unreadable_state_file_starts_engaged() {
    let dir = tmp();
    write(&dir.path().join(STATE_FILE), "{ not json");
    let t0 = at("2025-09-19T10:00:00-04:00");
    let mut ks = KillSwitch::open(FileStore::new(dir.path()), t0).unwrap();
    assert_eq!(ks.state(), KillState::Emergency);
    ks.reset(t0, "rewritten").unwrap();
    let ks = KillSwitch::open(FileStore::new(dir.path()), t0).unwrap();
    assert_eq!(ks.state(), KillState::Normal);
}

// ---------------------------------------------------------------------------------------------
// `mia kill-switch`.

fn kill_switch_cmd(state: &Path, args: &[&str]) -> crate::support::Ran {
    let mut all = vec!["kill-switch"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--state", state.to_str().unwrap()]);
    TestCommand::new(all).run()
}

#[test]
fn cli_help_teaches_the_states_and_the_kill_file() {
    let ran = TestCommand::new(["kill-switch", "--help"]).run();
    assert_eq!(ran.code, Some(0), "{ran:?}");
    for wanted in [
        "HALT_ENTRIES",
        "HALT_TRADING",
        "EMERGENCY",
        "KILL",
        "latches",
        "Exit codes",
    ] {
        assert!(
            ran.stdout.contains(wanted),
            "{wanted} missing:\n{}",
            ran.stdout
        );
    }
}

#[test]
fn cli_engage_status_reset() {
    let dir = tmp();
    let state = dir.path().join("state");

    let ran = kill_switch_cmd(&state, &["status"]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(ran.stdout.contains("NORMAL"), "{}", ran.stdout);

    let ran = kill_switch_cmd(&state, &["engage", "--reason", "FOMC in 5 minutes"]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(ran.stdout.contains("NORMAL -> EMERGENCY"), "{}", ran.stdout);

    // Engaging again changes nothing and says so.
    let ran = kill_switch_cmd(&state, &["engage", "--level", "halt-entries"]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(ran.stdout.contains("already EMERGENCY"), "{}", ran.stdout);

    let ran = kill_switch_cmd(&state, &["status"]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(ran.stdout.contains("EMERGENCY"), "{}", ran.stdout);
    assert!(ran.stdout.contains("FOMC in 5 minutes"), "{}", ran.stdout);

    // A KILL file blocks the reset: exit 1 with what to do.
    write(&state.join(KILL_FILE), "");
    let ran = kill_switch_cmd(&state, &["reset", "--reason", "done"]);
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert!(ran.stdout.contains("remove it"), "{ran:?}");
    std::fs::remove_file(state.join(KILL_FILE)).unwrap();

    let ran = kill_switch_cmd(&state, &["reset", "--reason", "done"]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(ran.stdout.contains("EMERGENCY -> NORMAL"), "{}", ran.stdout);

    let journal = std::fs::read_to_string(state.join(JOURNAL_FILE)).unwrap();
    // Engage and reset; the no-op engage and the refused reset journal nothing.
    assert_eq!(journal.lines().count(), 2, "{journal}");
}

#[test]
fn cli_status_exits_1_when_engaged_and_2_when_it_cannot_run() {
    let dir = tmp();
    let state = dir.path().join("state");
    kill_switch_cmd(&state, &["engage", "--level", "halt-trading"]);
    let ran = kill_switch_cmd(&state, &["status", "--check"]);
    assert_eq!(ran.code, Some(1), "{ran:?}");

    // The state folder is a file: it cannot be used.
    let blocked = dir.path().join("file");
    write(&blocked, "");
    let ran = kill_switch_cmd(&blocked, &["engage"]);
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert!(ran.stderr.starts_with("mia: "), "{ran:?}");
}

#[test]
fn cli_uses_the_configured_state_folder() {
    let dir = tmp();
    let config = dir.path().join("mia.toml");
    write(
        &config,
        "[paths]\nstate_dir = \"my-state\"\n[instruments.ES]\n",
    );
    let ran = TestCommand::new(["kill-switch", "engage", "--reason", "by config"])
        .current_dir(dir.path())
        .run();
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(dir.path().join("my-state").join(STATE_FILE).is_file());
}
