//! Rule test cases: `tests/*.toml` beside a rule set, each case a snapshot `s` (only the
//! properties that matter) and the expected direction, tier, vetoes and score range.
//!
//! ```toml
//! [[case]]
//! name = "premium long at put support"
//! [case.s]
//! price = 6500.0
//! support_below = -2.0
//! [case.expect]
//! direction = "long"
//! tier = "PREMIUM"
//! vetoes = []
//! score = [90.0, 100.0]
//! ```
//!
//! Properties not listed take [`DEFAULTS`], else `()`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rhai::Dynamic;
use serde::Deserialize;
use toml::Spanned;

use super::schema::{Kind, PROPERTIES};
use super::{Decision, RuleInput};
use crate::config::line_column;

/// Values of the properties a case does not list (everything else is `()`), as TOML values.
pub const DEFAULTS: &[(&str, Default)] = &[
    ("instrument", Default::Str("ES")),
    ("tick_size", Default::Float(0.25)),
    ("tick_value", Default::Float(12.5)),
    ("time", Default::Str("2025-09-19T14:00:00.000Z")),
    ("minute_of_day", Default::Int(600)),
    ("in_session", Default::Bool(true)),
    ("level_count", Default::Int(0)),
    ("confluence", Default::Int(0)),
    ("stale_minute", Default::Bool(false)),
    ("stale_profile", Default::Bool(false)),
    ("stale_vix", Default::Bool(false)),
    ("stale_menthorq", Default::Bool(false)),
];

/// A default property value of a case.
#[derive(Debug, Clone, Copy)]
pub enum Default {
    /// A number.
    Float(f64),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A string.
    Str(&'static str),
}

impl Default {
    fn to_dynamic(self) -> Dynamic {
        match self {
            Default::Float(x) => Dynamic::from_float(x),
            Default::Int(x) => Dynamic::from_int(x),
            Default::Bool(x) => Dynamic::from_bool(x),
            Default::Str(x) => Dynamic::from(x.to_owned()),
        }
    }
}

/// A property of a case that is unknown or of the wrong type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseProblem {
    /// 1-based line of the key.
    pub line: usize,
    /// 1-based column of the key.
    pub column: usize,
    /// The key.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// What a case expects.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Expected direction.
    pub direction: Option<String>,
    /// Expected tier.
    pub tier: Option<String>,
    /// Expected vetoes, in any order.
    pub vetoes: Option<Vec<String>>,
    /// Inclusive score range.
    pub score: Option<[f64; 2]>,
}

/// One case.
#[derive(Debug, Clone)]
pub struct Case {
    /// Name.
    pub name: String,
    /// 1-based line of the case's `name` in its file.
    pub line: usize,
    /// The properties of `s` it sets.
    pub s: BTreeMap<String, toml::Value>,
    /// Line and column of each key of `s`, for messages.
    pub positions: BTreeMap<String, (usize, usize)>,
    /// The expectation.
    pub expect: Expect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: Spanned<String>,
    #[serde(default)]
    s: BTreeMap<Spanned<String>, toml::Value>,
    #[serde(default)]
    expect: Expect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    case: Vec<RawCase>,
}

/// Why cases could not be loaded.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}:{line}:{column}: {message}", path.display())]
pub struct CaseError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// 1-based column (0 when unknown).
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// Loads the cases of one file.
///
/// # Errors
///
/// [`CaseError`] when the file cannot be read or parsed.
pub fn load(path: &Path) -> Result<Vec<Case>, CaseError> {
    let text = std::fs::read_to_string(path).map_err(|e| CaseError {
        path: path.to_owned(),
        line: 0,
        column: 0,
        message: e.to_string(),
    })?;
    let file: CaseFile = toml::from_str(&text).map_err(|e| {
        let (line, column) = e.span().map_or((0, 0), |s| line_column(&text, s.start));
        CaseError {
            path: path.to_owned(),
            line,
            column,
            message: e.message().trim().to_owned(),
        }
    })?;
    Ok(file
        .case
        .into_iter()
        .map(|raw| {
            let mut s = BTreeMap::new();
            let mut positions = BTreeMap::new();
            for (key, value) in raw.s {
                positions.insert(key.get_ref().clone(), line_column(&text, key.span().start));
                s.insert(key.into_inner(), value);
            }
            Case {
                line: line_column(&text, raw.name.span().start).0,
                name: raw.name.into_inner(),
                s,
                positions,
                expect: raw.expect,
            }
        })
        .collect())
}

/// Loads every `tests/*.toml` of a rule folder, sorted by file name.
///
/// # Errors
///
/// [`CaseError`] for the first file that cannot be loaded.
pub fn load_folder(rule_dir: &Path) -> Result<Vec<(PathBuf, Vec<Case>)>, CaseError> {
    test_files(rule_dir)
        .into_iter()
        .map(|f| load(&f).map(|cases| (f, cases)))
        .collect()
}

/// The `tests/*.toml` files of a rule folder, sorted by name (none when there is no `tests`).
pub fn test_files(rule_dir: &Path) -> Vec<PathBuf> {
    let dir = rule_dir.join("tests");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

fn to_dynamic(name: &str, kind: Kind, value: &toml::Value) -> Result<Dynamic, String> {
    match (kind, value) {
        (Kind::Float, toml::Value::Float(f)) => Ok(Dynamic::from_float(*f)),
        (Kind::Float, toml::Value::Integer(i)) => Ok(Dynamic::from_float(*i as f64)),
        (Kind::Int, toml::Value::Integer(i)) => Ok(Dynamic::from_int(*i)),
        (Kind::Bool, toml::Value::Boolean(b)) => Ok(Dynamic::from_bool(*b)),
        (Kind::Str, toml::Value::String(s)) => Ok(Dynamic::from(s.clone())),
        (kind, other) => Err(format!(
            "`{name}` is a {}, not {}",
            kind.name(),
            other.type_str()
        )),
    }
}

impl Case {
    /// Builds `s` for this case.
    ///
    /// # Errors
    ///
    /// One [`CaseProblem`] for each property that is unknown or of the wrong type.
    pub fn input(&self) -> Result<RuleInput, Vec<CaseProblem>> {
        let mut values: BTreeMap<&str, Dynamic> = DEFAULTS
            .iter()
            .map(|(name, value)| (*name, value.to_dynamic()))
            .collect();
        let mut problems = Vec::new();
        for (name, value) in &self.s {
            let (line, column) = self.positions.get(name).copied().unwrap_or((self.line, 1));
            let problem = |message: String| CaseProblem {
                line,
                column,
                key: name.clone(),
                message,
            };
            match PROPERTIES.iter().find(|p| p.name == name) {
                None => problems.push(problem(format!(
                    "`{name}` is not a property of s{}",
                    super::schema::suggest(name)
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_default()
                ))),
                Some(p) => match to_dynamic(name, p.kind, value) {
                    Ok(v) => {
                        values.insert(p.name, v);
                    }
                    Err(e) => problems.push(problem(e)),
                },
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        // Every name was checked against the schema above.
        RuleInput::from_values(values).map_err(|unknown| {
            unknown
                .into_iter()
                .map(|key| CaseProblem {
                    line: self.line,
                    column: 1,
                    message: format!("`{key}` is not a property of s"),
                    key,
                })
                .collect()
        })
    }

    /// Returns every way `decision` differs from the expectation (empty when it passes).
    pub fn check(&self, decision: &Decision) -> Vec<String> {
        let mut out = Vec::new();
        let e = &self.expect;
        if let Some(dir) = &e.direction
            && dir != decision.direction.as_str()
        {
            out.push(format!(
                "direction: expected \"{dir}\", got \"{}\"",
                decision.direction.as_str()
            ));
        }
        if let Some(tier) = &e.tier
            && tier != decision.tier.as_str()
        {
            out.push(format!(
                "tier: expected {tier}, got {}",
                decision.tier.as_str()
            ));
        }
        if let Some(vetoes) = &e.vetoes {
            let mut want = vetoes.clone();
            let mut got = decision.vetoes.clone();
            want.sort();
            got.sort();
            if want != got {
                out.push(format!("vetoes: expected {want:?}, got {got:?}"));
            }
        }
        if let Some([lo, hi]) = e.score
            && !(lo..=hi).contains(&decision.score)
        {
            out.push(format!(
                "score: expected {lo} to {hi}, got {}",
                decision.score
            ));
        }
        out
    }
}
