//! Rules: Rhai scripts that score trade setups (product.md §6).
//!
//! A rule set is a folder whose `strategy.rhai` defines `fn decide(s)`. [`RuleHost`] compiles a
//! folder into a [`RuleSet`] (imports resolved at compile time, so evaluation touches no file) and
//! evaluates it on a [`RuleInput`], the read-only view of the market described by
//! [`schema::PROPERTIES`]. The result map is validated into a [`Decision`]; anything wrong is a
//! [`RuleError`] with its position, never a decision.

pub mod cases;
pub mod check;
pub mod input;
pub mod reload;
pub mod sandbox;
pub mod schema;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rhai::{AST, Dynamic, Engine, EvalAltResult, Position};
use serde::Serialize;
use xxhash_rust::xxh3::Xxh3;

/// The entry file of a rule set.
pub const ENTRY: &str = "strategy.rhai";
/// The function a rule set must define.
pub const DECIDE: &str = "decide";

/// Trade direction.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Buy.
    Long,
    /// Sell.
    Short,
    /// No trade.
    Flat,
}

/// Signal tier (product.md §6).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Tier {
    /// 90 to 100.
    Premium,
    /// 80 to 89.
    Strong,
    /// 70 to 79.
    Good,
    /// 60 to 69: journaled only.
    Weak,
    /// Below 60.
    NoTrade,
}

impl Tier {
    /// Every tier, best first.
    pub const ALL: [Tier; 5] = [
        Tier::Premium,
        Tier::Strong,
        Tier::Good,
        Tier::Weak,
        Tier::NoTrade,
    ];

    /// The name scripts use.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Premium => "PREMIUM",
            Tier::Strong => "STRONG",
            Tier::Good => "GOOD",
            Tier::Weak => "WEAK",
            Tier::NoTrade => "NO_TRADE",
        }
    }
}

impl Direction {
    /// The name scripts use.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Long => "long",
            Direction::Short => "short",
            Direction::Flat => "flat",
        }
    }
}

/// What contributed to a decision, and by how much.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reason {
    /// Rule or component name.
    pub rule: String,
    /// Points it added (negative for a penalty, 0 for a veto).
    pub points: f64,
    /// Short explanation.
    pub why: String,
}

/// A validated result of `decide(s)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// Score of the setup for its direction, 0 to 100.
    pub score: f64,
    /// Direction.
    pub direction: Direction,
    /// Tier.
    pub tier: Tier,
    /// Size multiplier (0 when vetoed or not traded).
    pub size_mult: f64,
    /// Points of each component.
    pub components: BTreeMap<String, f64>,
    /// What contributed.
    pub reasons: Vec<Reason>,
    /// Hard rules that block the trade.
    pub vetoes: Vec<String>,
}

/// One problem in a rule file, with its position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// The file.
    pub file: PathBuf,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// 1-based column (0 when unknown).
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// Why rules could not be loaded or evaluated.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RuleError {
    /// The rule folder or a file could not be read.
    #[error("cannot read rules {path}: {message}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        message: String,
    },
    /// The rule set does not compile; every diagnostic found is listed.
    #[error("{} rule error(s):\n{}", diagnostics.len(), render(diagnostics))]
    Compile {
        /// Every problem found.
        diagnostics: Vec<Diagnostic>,
    },
    /// The set compiles but `check-rules` finds problems in it (see [`check::load_checked`]).
    #[error("{} problem(s):\n{}", problems.len(), render(problems))]
    Check {
        /// Every problem found.
        problems: Vec<check::Problem>,
    },
    /// `decide` failed while running (error, stack depth, sizes, …).
    #[error("{0}")]
    Runtime(Diagnostic),
    /// `decide` ran past its operation budget ([`sandbox::MAX_OPERATIONS`]).
    #[error("{0}")]
    OverBudget(Diagnostic),
    /// `decide` returned something that is not a valid decision.
    #[error("decide returned an invalid result: {0}")]
    InvalidResult(String),
}

fn render(diagnostics: &[impl fmt::Display]) -> String {
    diagnostics
        .iter()
        .map(|d| format!("  {d}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A compiled rule set.
#[derive(Debug, Clone)]
pub struct RuleSet {
    /// The folder.
    pub dir: PathBuf,
    /// Content hash of every `.rhai` file of the folder (xxh3-128, hex), carried by every
    /// decision it makes.
    pub hash: String,
    /// The files, relative to the folder, sorted.
    pub files: Vec<PathBuf>,
    ast: Arc<AST>,
}

/// The script-facing snapshot: one value per [`schema::PROPERTIES`] slot.
#[derive(Debug, Clone)]
pub struct RuleInput {
    values: Arc<[Dynamic]>,
}

impl RuleInput {
    /// Builds an input from values by property name; properties not given are `()`.
    ///
    /// # Errors
    ///
    /// Returns the names that are not properties of `s`.
    pub fn from_values<'a>(
        values: impl IntoIterator<Item = (&'a str, Dynamic)>,
    ) -> Result<RuleInput, Vec<String>> {
        let mut slots = vec![Dynamic::UNIT; schema::PROPERTIES.len()];
        let mut unknown = Vec::new();
        for (name, value) in values {
            match schema::slot(name) {
                Some(slot) => slots[slot] = value,
                None => unknown.push(name.to_owned()),
            }
        }
        if unknown.is_empty() {
            Ok(RuleInput {
                values: slots.into(),
            })
        } else {
            Err(unknown)
        }
    }

    /// Returns the value of a property.
    pub fn get(&self, name: &str) -> Option<&Dynamic> {
        schema::slot(name).map(|slot| &self.values[slot])
    }
}

/// The value scripts see as `s`: a handle on a [`RuleInput`]. Cloning is a reference count.
#[derive(Debug, Clone)]
pub(crate) struct ScriptSnapshot(Arc<[Dynamic]>);

/// The result of one evaluation.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The decision.
    pub decision: Decision,
    /// Rhai operations used (deterministic, unlike time).
    pub operations: u64,
}

/// Compiles and evaluates rule sets with one shared, sandboxed engine.
pub struct RuleHost {
    engine: Engine,
}

impl fmt::Debug for RuleHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RuleHost")
    }
}

impl Default for RuleHost {
    fn default() -> Self {
        Self::new()
    }
}

impl RuleHost {
    /// Creates the host and its evaluation engine (see [`sandbox::build_engine`]).
    pub fn new() -> Self {
        Self {
            engine: sandbox::build_engine(None),
        }
    }

    /// Compiles the rule folder `dir`.
    ///
    /// Every `.rhai` file is first compiled on its own so that an error in each file is
    /// reported, then the entry file is compiled with its imports embedded.
    ///
    /// # Errors
    ///
    /// [`RuleError::Io`] when the folder cannot be read, [`RuleError::Compile`] with every
    /// diagnostic otherwise.
    pub fn compile(&self, dir: &Path) -> Result<RuleSet, RuleError> {
        let io = |path: &Path, e: std::io::Error| RuleError::Io {
            path: path.to_owned(),
            message: e.to_string(),
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| io(dir, e))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "rhai") && p.is_file())
            .filter_map(|p| p.file_name().map(PathBuf::from))
            .collect();
        files.sort();
        let compiler = sandbox::build_engine(Some(dir));
        let mut hasher = Xxh3::new();
        let mut diagnostics = Vec::new();
        let mut entry_text = None;
        for file in &files {
            let path = dir.join(file);
            let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
            hasher.update(file.to_string_lossy().as_bytes());
            hasher.update(&[0]);
            hasher.update(text.as_bytes());
            hasher.update(&[0]);
            if let Err(e) = compiler.compile(&text) {
                diagnostics.push(diagnostic(&path, e.1, e.0.to_string()));
            }
            if file.as_os_str() == ENTRY {
                entry_text = Some(text);
            }
        }
        let Some(entry_text) = entry_text else {
            diagnostics.push(Diagnostic {
                file: dir.join(ENTRY),
                line: 0,
                column: 0,
                message: format!("a rule set needs {ENTRY} defining fn {DECIDE}(s)"),
            });
            return Err(RuleError::Compile { diagnostics });
        };
        if !diagnostics.is_empty() {
            return Err(RuleError::Compile { diagnostics });
        }
        let scope = rhai::Scope::new();
        let ast = compiler
            .compile_into_self_contained(&scope, &entry_text)
            .map_err(|e| RuleError::Compile {
                diagnostics: vec![runtime_diagnostic(&dir.join(ENTRY), dir, &e)],
            })?;
        let has_decide = ast
            .iter_functions()
            .any(|f| f.name == DECIDE && f.params.len() == 1);
        if !has_decide {
            return Err(RuleError::Compile {
                diagnostics: vec![Diagnostic {
                    file: dir.join(ENTRY),
                    line: 0,
                    column: 0,
                    message: format!(
                        "{ENTRY} must define fn {DECIDE}(s) with exactly one parameter"
                    ),
                }],
            });
        }
        Ok(RuleSet {
            dir: dir.to_owned(),
            hash: format!("{:032x}", hasher.digest128()),
            files,
            ast: Arc::new(ast),
        })
    }

    /// Evaluates `decide(s)` of `set` on `input`.
    ///
    /// # Errors
    ///
    /// [`RuleError::Runtime`] when the script fails or exceeds a limit, and
    /// [`RuleError::InvalidResult`] when it returns something that is not a decision.
    pub fn evaluate(&self, set: &RuleSet, input: &RuleInput) -> Result<Evaluation, RuleError> {
        let mut scope = rhai::Scope::new();
        sandbox::reset_operations();
        // The top-level statements run before `decide`: they are the `import`s (embedded
        // modules, no file access) and constants of the entry file.
        let options = rhai::CallFnOptions::new().eval_ast(true).rewind_scope(true);
        let snapshot = ScriptSnapshot(Arc::clone(&input.values));
        let result: Dynamic = self
            .engine
            .call_fn_with_options(options, &mut scope, &set.ast, DECIDE, (snapshot,))
            .map_err(|e| {
                let diagnostic = runtime_diagnostic(&set.dir.join(ENTRY), &set.dir, &e);
                if matches!(innermost(&e), EvalAltResult::ErrorTooManyOperations(_)) {
                    RuleError::OverBudget(diagnostic)
                } else {
                    RuleError::Runtime(diagnostic)
                }
            })?;
        let operations = sandbox::operations();
        Ok(Evaluation {
            decision: validate(result)?,
            operations,
        })
    }
}

fn diagnostic(file: &Path, pos: Position, message: String) -> Diagnostic {
    Diagnostic {
        file: file.to_owned(),
        line: pos.line().unwrap_or(0),
        column: pos.position().unwrap_or(0),
        message,
    }
}

/// The error under the function-call and module wrappers.
fn innermost(err: &EvalAltResult) -> &EvalAltResult {
    match err {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
        | EvalAltResult::ErrorInModule(_, inner, _) => innermost(inner),
        other => other,
    }
}

/// Finds the innermost error and the file it happened in (a module, or the entry file).
fn runtime_diagnostic(entry: &Path, dir: &Path, err: &EvalAltResult) -> Diagnostic {
    let mut file = entry.to_owned();
    let mut current = err;
    loop {
        match current {
            EvalAltResult::ErrorInFunctionCall(_, source, inner, _) => {
                if !source.is_empty() {
                    file = dir.join(format!("{source}.rhai"));
                }
                current = inner;
            }
            EvalAltResult::ErrorInModule(source, inner, _) => {
                if !source.is_empty() {
                    file = dir.join(format!("{source}.rhai"));
                }
                current = inner;
            }
            _ => break,
        }
    }
    let pos = current.position();
    let message = match current {
        EvalAltResult::ErrorParsing(kind, _) => kind.to_string(),
        other => other
            .to_string()
            .split(" (line ")
            .next()
            .unwrap_or_default()
            .to_owned(),
    };
    diagnostic(&file, pos, message)
}

fn field<'a>(map: &'a rhai::Map, key: &str) -> Result<&'a Dynamic, RuleError> {
    map.get(key)
        .ok_or_else(|| RuleError::InvalidResult(format!("the map has no `{key}`")))
}

fn number(value: &Dynamic, what: &str) -> Result<f64, RuleError> {
    let x = if let Ok(f) = value.as_float() {
        f
    } else if let Ok(i) = value.as_int() {
        i as f64
    } else {
        return Err(RuleError::InvalidResult(format!(
            "`{what}` must be a number, not {}",
            value.type_name()
        )));
    };
    if x.is_finite() {
        Ok(x)
    } else {
        Err(RuleError::InvalidResult(format!("`{what}` is {x}")))
    }
}

fn string(value: &Dynamic, what: &str) -> Result<String, RuleError> {
    value
        .clone()
        .into_immutable_string()
        .map(|s| s.to_string())
        .map_err(|t| RuleError::InvalidResult(format!("`{what}` must be a string, not {t}")))
}

/// Checks and converts the map `decide` returned.
fn validate(result: Dynamic) -> Result<Decision, RuleError> {
    let type_name = result.type_name();
    let map = result.try_cast::<rhai::Map>().ok_or_else(|| {
        RuleError::InvalidResult(format!(
            "expected a map #{{ score, direction, tier, … }}, got {type_name}"
        ))
    })?;
    for key in map.keys() {
        if ![
            "score",
            "direction",
            "tier",
            "size_mult",
            "components",
            "reasons",
            "vetoes",
        ]
        .contains(&key.as_str())
        {
            return Err(RuleError::InvalidResult(format!("unknown key `{key}`")));
        }
    }
    let score = number(field(&map, "score")?, "score")?;
    if !(0.0..=100.0).contains(&score) {
        return Err(RuleError::InvalidResult(format!(
            "`score` = {score} is outside 0..=100"
        )));
    }
    let direction = match string(field(&map, "direction")?, "direction")?.as_str() {
        "long" => Direction::Long,
        "short" => Direction::Short,
        "flat" => Direction::Flat,
        other => {
            return Err(RuleError::InvalidResult(format!(
                "`direction` = \"{other}\"; expected \"long\", \"short\" or \"flat\""
            )));
        }
    };
    let tier_name = string(field(&map, "tier")?, "tier")?;
    let tier = Tier::ALL
        .into_iter()
        .find(|t| t.as_str() == tier_name)
        .ok_or_else(|| {
            RuleError::InvalidResult(format!(
                "`tier` = \"{tier_name}\"; expected PREMIUM, STRONG, GOOD, WEAK or NO_TRADE"
            ))
        })?;
    let size_mult = number(field(&map, "size_mult")?, "size_mult")?;
    if !(0.0..=10.0).contains(&size_mult) {
        return Err(RuleError::InvalidResult(format!(
            "`size_mult` = {size_mult} is outside 0..=10"
        )));
    }
    let components_map = field(&map, "components")?
        .clone()
        .try_cast::<rhai::Map>()
        .ok_or_else(|| RuleError::InvalidResult("`components` must be a map of numbers".into()))?;
    let mut components = BTreeMap::new();
    for (name, value) in components_map {
        let points = number(&value, &format!("components.{name}"))?;
        components.insert(name.to_string(), points);
    }
    let reasons = field(&map, "reasons")?
        .clone()
        .try_cast::<rhai::Array>()
        .ok_or_else(|| RuleError::InvalidResult("`reasons` must be an array".into()))?
        .into_iter()
        .enumerate()
        .map(|(i, r)| reason(r, i))
        .collect::<Result<Vec<_>, _>>()?;
    let vetoes = field(&map, "vetoes")?
        .clone()
        .try_cast::<rhai::Array>()
        .ok_or_else(|| RuleError::InvalidResult("`vetoes` must be an array of strings".into()))?
        .iter()
        .enumerate()
        .map(|(i, v)| string(v, &format!("vetoes[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Decision {
        score,
        direction,
        tier,
        size_mult,
        components,
        reasons,
        vetoes,
    })
}

fn reason(value: Dynamic, i: usize) -> Result<Reason, RuleError> {
    if value.is_string() {
        return Ok(Reason {
            rule: String::new(),
            points: 0.0,
            why: string(&value, &format!("reasons[{i}]"))?,
        });
    }
    let map = value.try_cast::<rhai::Map>().ok_or_else(|| {
        RuleError::InvalidResult(format!(
            "reasons[{i}] must be a string or #{{ rule, points, why }}"
        ))
    })?;
    let text = |key: &str| -> Result<String, RuleError> {
        map.get(key).map_or(Ok(String::new()), |v| {
            string(v, &format!("reasons[{i}].{key}"))
        })
    };
    Ok(Reason {
        rule: text("rule")?,
        points: map
            .get("points")
            .map_or(Ok(0.0), |v| number(v, &format!("reasons[{i}].points")))?,
        why: text("why")?,
    })
}

#[cfg(test)]
mod tests;
