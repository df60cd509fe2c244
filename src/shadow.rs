//! Shadow mode's comparison (product.md §6): the live and the shadow rule sets were evaluated
//! on exactly the same snapshots, so each live decision has one shadow decision with the same
//! time and instrument. [`compare`] pairs them and measures how the sets differ: agreement,
//! direction and tier confusion, score differences, the hypothetical results of each set's
//! paper trades, and the first divergences.
//!
//! [`read_journals`] reads a replay's output folder (`decisions_*.jsonl`, `trades_*.jsonl`)
//! into the same in-memory values that replay holds, so `mia shadow-report` and the HTML report
//! of `mia replay --report` compute the same figures. Apart from that reader, the module is
//! pure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::perf::{Performance, Stats, Trade};
use crate::rules::{Decision, Direction, Tier};

/// Why a journal folder cannot be compared.
#[derive(Debug, thiserror::Error)]
pub enum ShadowError {
    /// The folder is missing or unreadable.
    #[error("cannot read the journal folder {path}")]
    Folder {
        /// The folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A journal file cannot be read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The folder has no decision journal.
    #[error(
        "no decision journal (decisions_*.jsonl) in {dir}; run `mia replay DATA_DIR --shadow examples/rules --out {dir}` first"
    )]
    NoDecisions {
        /// The folder.
        dir: PathBuf,
    },
    /// The decision journals hold no shadow decision.
    #[error(
        "the decision journals in {dir} have no shadow decisions; run `mia replay DATA_DIR --shadow examples/rules --out {dir}` to record both sets"
    )]
    NoShadow {
        /// The folder.
        dir: PathBuf,
    },
    /// A line is not a decision or trade record.
    #[error("{path}:{line}: {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// The rule set a decision or trade belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleSetRole {
    /// The live set, whose approved orders reach execution.
    Live,
    /// The shadow set: journaled and paper-simulated only.
    Shadow,
}

impl RuleSetRole {
    /// The name the journals use: `live` or `shadow`.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleSetRole::Live => "live",
            RuleSetRole::Shadow => "shadow",
        }
    }
}

/// What one evaluation decided, as far as the comparison needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    /// Score, 0 to 100.
    pub score: f64,
    /// Direction.
    pub direction: Direction,
    /// Tier.
    pub tier: Tier,
    /// Hard rules that blocked the trade.
    #[serde(default)]
    pub vetoes: Vec<String>,
}

impl From<&Decision> for Call {
    fn from(decision: &Decision) -> Call {
        Call {
            score: decision.score,
            direction: decision.direction,
            tier: decision.tier,
            vetoes: decision.vetoes.clone(),
        }
    }
}

/// One line of `decisions_YYYYMMDD.jsonl`, as the comparison reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionRecord {
    /// Evaluation time, ISO 8601 UTC with milliseconds.
    pub ts: String,
    /// Instrument.
    pub instrument: String,
    /// Live or shadow.
    pub set: RuleSetRole,
    /// Content hash of the rule set.
    pub rules: String,
    /// The decision, or the rule error's message.
    pub outcome: Result<Call, String>,
}

/// The journal line's fields that the comparison reads; the decision is flattened into it and
/// the other fields (`ops`, `risk`, `components`, ...) are ignored.
#[derive(Deserialize)]
struct WireDecision {
    ts: String,
    instrument: String,
    set: RuleSetRole,
    rules: String,
    score: Option<f64>,
    direction: Option<Direction>,
    tier: Option<Tier>,
    #[serde(default)]
    vetoes: Vec<String>,
    error: Option<String>,
}

impl DecisionRecord {
    /// Parses one journal line.
    ///
    /// # Errors
    ///
    /// A message when the line is not JSON of a decision line, or has neither a complete
    /// decision (`score`, `direction`, `tier`) nor an `error`.
    pub fn parse(line: &str) -> Result<DecisionRecord, String> {
        let wire: WireDecision = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let outcome = match (wire.score, wire.direction, wire.tier, wire.error) {
            (_, _, _, Some(error)) => Err(error),
            (Some(score), Some(direction), Some(tier), None) => Ok(Call {
                score,
                direction,
                tier,
                vetoes: wire.vetoes,
            }),
            _ => return Err("neither a decision (score, direction, tier) nor an error".into()),
        };
        Ok(DecisionRecord {
            ts: wire.ts,
            instrument: wire.instrument,
            set: wire.set,
            rules: wire.rules,
            outcome,
        })
    }
}

/// The decision and trade journals of one folder, in file then line order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Journals {
    /// Every decision line, live and shadow.
    pub decisions: Vec<DecisionRecord>,
    /// Every trade line, live and shadow.
    pub trades: Vec<Trade>,
}

/// Reads the `decisions_*.jsonl` and `trades_*.jsonl` files of `dir`, in name order (the
/// names carry the date, so this is time order).
///
/// # Errors
///
/// [`ShadowError`] when the folder or a file cannot be read, a line is malformed (with its file
/// and line), the folder has no decision journal, or no decision of the shadow set.
pub fn read_journals(dir: &Path) -> Result<Journals, ShadowError> {
    let files = journal_files(dir)?;
    let decision_files: Vec<&PathBuf> = files
        .iter()
        .filter(|p| has_prefix(p, "decisions_"))
        .collect();
    if decision_files.is_empty() {
        return Err(ShadowError::NoDecisions {
            dir: dir.to_path_buf(),
        });
    }
    let mut journals = Journals::default();
    for path in decision_files {
        read_lines(path, |line| {
            journals.decisions.push(DecisionRecord::parse(line)?);
            Ok(())
        })?;
    }
    for path in files.iter().filter(|p| has_prefix(p, "trades_")) {
        read_lines(path, |line| {
            journals
                .trades
                .push(serde_json::from_str(line).map_err(|e| e.to_string())?);
            Ok(())
        })?;
    }
    if !journals
        .decisions
        .iter()
        .any(|d| d.set == RuleSetRole::Shadow)
    {
        return Err(ShadowError::NoShadow {
            dir: dir.to_path_buf(),
        });
    }
    Ok(journals)
}

/// The `*.jsonl` files of `dir`, sorted by name.
fn journal_files(dir: &Path) -> Result<Vec<PathBuf>, ShadowError> {
    let folder_error = |source| ShadowError::Folder {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(folder_error)? {
        let path = entry.map_err(folder_error)?.path();
        if path.extension().is_some_and(|e| e == "jsonl") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn has_prefix(path: &Path, prefix: &str) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(prefix))
}

/// Calls `parse` on every non-blank line of `path`, turning its error into
/// [`ShadowError::Malformed`] with the file and line.
fn read_lines(
    path: &Path,
    mut parse: impl FnMut(&str) -> Result<(), String>,
) -> Result<(), ShadowError> {
    let text = std::fs::read_to_string(path).map_err(|source| ShadowError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    for (idx, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        parse(line).map_err(|message| ShadowError::Malformed {
            path: path.to_path_buf(),
            line: idx + 1,
            message,
        })?;
    }
    Ok(())
}

/// A table of counts: rows are the live set's values, columns the shadow set's.
pub type Confusion<K> = BTreeMap<K, BTreeMap<K, u64>>;

/// The score differences (shadow minus live) over the pairs where both sets decided.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ScoreDiff {
    /// Pairs compared.
    pub compared: u64,
    /// Mean of shadow − live (`None` without pairs).
    pub mean: Option<f64>,
    /// Mean of |shadow − live| (`None` without pairs).
    pub mean_abs: Option<f64>,
    /// The pair with the largest |shadow − live| (the first one on ties).
    pub largest: Option<LargestDiff>,
}

/// The pair with the largest score difference.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LargestDiff {
    /// Evaluation time.
    pub ts: String,
    /// Instrument.
    pub instrument: String,
    /// Live score.
    pub live: f64,
    /// Shadow score.
    pub shadow: f64,
    /// Shadow − live.
    pub diff: f64,
}

/// A pair of decisions that do not agree (direction, tier, or a rule error on one side).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Divergence {
    /// Evaluation time.
    pub ts: String,
    /// Instrument.
    pub instrument: String,
    /// The live set's decision, or its rule error.
    pub live: Side,
    /// The shadow set's decision, or its rule error.
    pub shadow: Side,
}

/// One side of a divergence: the decision, or the rule error.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Side {
    /// The set decided.
    Decided(Call),
    /// The set's evaluation failed.
    Error {
        /// The rule error's message.
        error: String,
    },
}

impl std::fmt::Display for Side {
    /// `long STRONG 82.0`, or `error: <message>`, as the shadow report and the HTML report show
    /// a side.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Side::Decided(call) => write!(
                f,
                "{} {} {:.1}",
                call.direction.as_str(),
                call.tier.as_str(),
                call.score
            ),
            Side::Error { error } => write!(f, "error: {error}"),
        }
    }
}

impl Side {
    /// The score, when the set decided.
    pub fn score(&self) -> Option<f64> {
        match self {
            Side::Decided(call) => Some(call.score),
            Side::Error { .. } => None,
        }
    }

    fn of(outcome: &Result<Call, String>) -> Side {
        match outcome {
            Ok(call) => Side::Decided(call.clone()),
            Err(error) => Side::Error {
                error: error.clone(),
            },
        }
    }
}

/// The hypothetical results of one set's paper trades.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SetResult {
    /// Content hash of the rule set (the first one seen, empty when the set made no decision).
    pub rules: String,
    /// Decisions journaled.
    pub decisions: u64,
    /// Evaluations that ended in a rule error.
    pub errors: u64,
    /// Statistics of its trades (`perf`).
    pub stats: Stats,
}

/// How the shadow set compares with the live set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShadowComparison {
    /// Pairs of decisions on the same (time, instrument).
    pub pairs: u64,
    /// Pairs where both sets decided (no rule error on either side).
    pub compared: u64,
    /// Compared pairs with the same direction and the same tier.
    pub agreements: u64,
    /// Agreements over compared pairs (`None` without compared pairs).
    pub agreement_rate: Option<f64>,
    /// Decisions with no counterpart in the other set (should be 0: both sets see every
    /// snapshot).
    pub unpaired: u64,
    /// Directions of the compared pairs: live rows, shadow columns; every cell present.
    pub direction_confusion: Confusion<Direction>,
    /// Tiers of the compared pairs: live rows, shadow columns; every cell present.
    pub tier_confusion: Confusion<Tier>,
    /// Score differences.
    pub score: ScoreDiff,
    /// The live set's results.
    pub live: SetResult,
    /// The shadow set's results.
    pub shadow: SetResult,
    /// Pairs that diverge (including those where only one side erred).
    pub divergence_count: u64,
    /// The first divergences in time order, at most the number asked for.
    pub divergences: Vec<Divergence>,
}

const DIRECTIONS: [Direction; 3] = [Direction::Long, Direction::Short, Direction::Flat];

/// Compares the live and shadow decisions of a replay, and the trades of each set (by their
/// `set` field), listing at most `max_divergences` divergences.
///
/// Decisions are paired by (`ts`, `instrument`); pairs are visited in that order, which is
/// time order since the times are ISO 8601 UTC of one format.
pub fn compare(
    decisions: &[DecisionRecord],
    trades: &[Trade],
    max_divergences: usize,
) -> ShadowComparison {
    let mut slots: BTreeMap<(&str, &str), [Vec<&DecisionRecord>; 2]> = BTreeMap::new();
    for decision in decisions {
        let slot = slots
            .entry((decision.ts.as_str(), decision.instrument.as_str()))
            .or_default();
        let side = match decision.set {
            RuleSetRole::Live => 0,
            RuleSetRole::Shadow => 1,
        };
        slot[side].push(decision);
    }
    let mut comparison = ShadowComparison {
        pairs: 0,
        compared: 0,
        agreements: 0,
        agreement_rate: None,
        unpaired: 0,
        direction_confusion: full_table(&DIRECTIONS),
        tier_confusion: full_table(&Tier::ALL),
        score: ScoreDiff::default(),
        live: set_result(RuleSetRole::Live, decisions, trades),
        shadow: set_result(RuleSetRole::Shadow, decisions, trades),
        divergence_count: 0,
        divergences: Vec::new(),
    };
    let mut diffs = Vec::new();
    for [live, shadow] in slots.values() {
        let paired = live.len().min(shadow.len());
        comparison.unpaired += (live.len() + shadow.len() - 2 * paired) as u64;
        for (live, shadow) in live.iter().zip(shadow) {
            comparison.pairs += 1;
            if let (Ok(l), Ok(s)) = (&live.outcome, &shadow.outcome) {
                comparison.compared += 1;
                count(
                    &mut comparison.direction_confusion,
                    l.direction,
                    s.direction,
                );
                count(&mut comparison.tier_confusion, l.tier, s.tier);
                diffs.push((*live, l.score, s.score));
                if l.direction == s.direction && l.tier == s.tier {
                    comparison.agreements += 1;
                    continue;
                }
            } else if live.outcome.is_err() && shadow.outcome.is_err() {
                // Both failed: nothing to compare, and nothing diverged.
                continue;
            }
            comparison.divergence_count += 1;
            if comparison.divergences.len() < max_divergences {
                comparison.divergences.push(Divergence {
                    ts: live.ts.clone(),
                    instrument: live.instrument.clone(),
                    live: Side::of(&live.outcome),
                    shadow: Side::of(&shadow.outcome),
                });
            }
        }
    }
    comparison.agreement_rate = (comparison.compared > 0)
        .then(|| comparison.agreements as f64 / comparison.compared as f64);
    comparison.score = score_diff(&diffs);
    comparison
}

/// A table with every (row, column) cell at 0, so that outputs always show the full grid.
fn full_table<K: Ord + Copy>(keys: &[K]) -> Confusion<K> {
    keys.iter()
        .map(|row| (*row, keys.iter().map(|col| (*col, 0)).collect()))
        .collect()
}

fn count<K: Ord + Copy>(table: &mut Confusion<K>, row: K, col: K) {
    *table.entry(row).or_default().entry(col).or_default() += 1;
}

fn score_diff(diffs: &[(&DecisionRecord, f64, f64)]) -> ScoreDiff {
    let n = diffs.len();
    if n == 0 {
        return ScoreDiff::default();
    }
    let mut largest: Option<LargestDiff> = None;
    for (record, live, shadow) in diffs {
        let diff = shadow - live;
        if largest.as_ref().is_none_or(|l| diff.abs() > l.diff.abs()) {
            largest = Some(LargestDiff {
                ts: record.ts.clone(),
                instrument: record.instrument.clone(),
                live: *live,
                shadow: *shadow,
                diff,
            });
        }
    }
    ScoreDiff {
        compared: n as u64,
        mean: Some(diffs.iter().map(|(_, l, s)| s - l).sum::<f64>() / n as f64),
        mean_abs: Some(diffs.iter().map(|(_, l, s)| (s - l).abs()).sum::<f64>() / n as f64),
        largest,
    }
}

fn set_result(role: RuleSetRole, decisions: &[DecisionRecord], trades: &[Trade]) -> SetResult {
    let mine = decisions.iter().filter(|d| d.set == role);
    let trades = trades_of(trades, role);
    SetResult {
        rules: mine
            .clone()
            .next()
            .map(|d| d.rules.clone())
            .unwrap_or_default(),
        decisions: mine.clone().count() as u64,
        errors: mine.filter(|d| d.outcome.is_err()).count() as u64,
        stats: Performance::from_trades(&trades).overall,
    }
}

/// The trades of one set, in the order given.
pub fn trades_of(trades: &[Trade], role: RuleSetRole) -> Vec<Trade> {
    trades
        .iter()
        .filter(|t| t.set == role.as_str())
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(ts: &str, set: &str, body: &str) -> DecisionRecord {
        let text = format!(
            r#"{{"ts":"{ts}","instrument":"ES","set":"{set}","rules":"{set}hash",{body},"ops":10}}"#
        );
        DecisionRecord::parse(&text).unwrap()
    }

    fn decided(ts: &str, set: &str, score: f64, direction: &str, tier: &str) -> DecisionRecord {
        line(
            ts,
            set,
            &format!(
                r#""score":{score},"direction":"{direction}","tier":"{tier}","size_mult":1.0,"components":{{}},"reasons":[],"vetoes":[]"#
            ),
        )
    }

    #[test]
    fn parses_decisions_and_errors_and_refuses_half_lines() {
        let d = decided("t1", "shadow", 85.0, "long", "STRONG");
        assert_eq!(d.set, RuleSetRole::Shadow);
        assert_eq!(d.outcome.as_ref().map(|c| c.tier), Ok(Tier::Strong));
        let e = line("t1", "live", r#""error":"boom""#);
        assert_eq!(e.outcome, Err("boom".to_owned()));
        assert!(
            DecisionRecord::parse(
                r#"{"ts":"t","instrument":"ES","set":"live","rules":"h","score":3}"#
            )
            .is_err()
        );
        assert!(
            DecisionRecord::parse(
                r#"{"ts":"t","instrument":"ES","set":"paper","rules":"h","error":"x"}"#
            )
            .is_err()
        );
    }

    #[test]
    fn pairs_count_agreements_confusions_and_score_differences() {
        let decisions = [
            // Agree: long STRONG both; shadow scores 2 more.
            decided("t1", "live", 82.0, "long", "STRONG"),
            decided("t1", "shadow", 84.0, "long", "STRONG"),
            // Tier differs: live GOOD, shadow PREMIUM; +20.
            decided("t2", "live", 72.0, "short", "GOOD"),
            decided("t2", "shadow", 92.0, "short", "PREMIUM"),
            // Direction differs: live flat, shadow long; −10 (shadow lower).
            decided("t3", "shadow", 40.0, "long", "NO_TRADE"),
            decided("t3", "live", 50.0, "flat", "NO_TRADE"),
            // The shadow set failed: a divergence, not compared.
            decided("t4", "live", 50.0, "flat", "NO_TRADE"),
            line("t4", "shadow", r#""error":"boom""#),
            // No shadow counterpart.
            decided("t5", "live", 50.0, "flat", "NO_TRADE"),
        ];
        let c = compare(&decisions, &[], 2);
        assert_eq!(
            (c.pairs, c.compared, c.agreements, c.unpaired),
            (4, 3, 1, 1)
        );
        assert_eq!(c.agreement_rate, Some(1.0 / 3.0));
        assert_eq!(c.direction_confusion[&Direction::Flat][&Direction::Long], 1);
        assert_eq!(c.direction_confusion[&Direction::Long][&Direction::Long], 1);
        assert_eq!(
            c.direction_confusion[&Direction::Short][&Direction::Short],
            1
        );
        assert_eq!(c.tier_confusion[&Tier::Good][&Tier::Premium], 1);
        assert_eq!(c.tier_confusion[&Tier::Weak][&Tier::Weak], 0);
        // Differences +2, +20, −10: mean 12/3 = 4, mean absolute 32/3.
        assert_eq!(c.score.mean, Some(4.0));
        assert_eq!(c.score.mean_abs, Some(32.0 / 3.0));
        let largest = c.score.largest.as_ref().unwrap();
        assert_eq!((largest.ts.as_str(), largest.diff), ("t2", 20.0));
        // t2, t3 and t4 diverge; two are listed, in time order.
        assert_eq!(c.divergence_count, 3);
        let listed: Vec<&str> = c.divergences.iter().map(|d| d.ts.as_str()).collect();
        assert_eq!(listed, ["t2", "t3"]);
        assert_eq!(
            (c.live.decisions, c.shadow.decisions, c.shadow.errors),
            (5, 4, 1)
        );
        assert_eq!(c.live.rules, "livehash");
    }
}
