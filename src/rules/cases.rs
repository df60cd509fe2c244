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

use super::schema::{Kind, PROPERTIES};
use super::{Decision, RuleInput};

/// Values of the properties a case does not list (everything else is `()`).
pub const DEFAULTS: &[(&str, &str)] = &[
    ("instrument", "\"ES\""),
    ("tick_size", "0.25"),
    ("tick_value", "12.5"),
    ("time", "\"2025-09-19T14:00:00.000Z\""),
    ("minute_of_day", "600"),
    ("in_session", "true"),
    ("level_count", "0"),
    ("confluence", "0"),
    ("stale_minute", "false"),
    ("stale_profile", "false"),
    ("stale_vix", "false"),
    ("stale_menthorq", "false"),
];

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
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Name.
    pub name: String,
    /// The properties of `s` it sets.
    #[serde(default)]
    pub s: BTreeMap<String, toml::Value>,
    /// The expectation.
    #[serde(default)]
    pub expect: Expect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    case: Vec<Case>,
}

/// Why cases could not be loaded.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{path}: {message}")]
pub struct CaseError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
}

/// Loads the cases of one file.
///
/// # Errors
///
/// [`CaseError`] when the file cannot be read or parsed.
pub fn load(path: &Path) -> Result<Vec<Case>, CaseError> {
    let err = |message: String| CaseError {
        path: path.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let file: CaseFile = toml::from_str(&text).map_err(|e| err(e.to_string().trim().to_owned()))?;
    Ok(file.case)
}

/// Loads every `tests/*.toml` of a rule folder, sorted by file name.
///
/// # Errors
///
/// [`CaseError`] for the first file that cannot be loaded.
pub fn load_folder(rule_dir: &Path) -> Result<Vec<(PathBuf, Vec<Case>)>, CaseError> {
    let dir = rule_dir.join("tests");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|f| load(&f).map(|cases| (f, cases)))
        .collect()
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
    /// A message naming each property that is unknown or of the wrong type.
    pub fn input(&self) -> Result<RuleInput, String> {
        let mut values: BTreeMap<&str, Dynamic> = BTreeMap::new();
        for (name, text) in DEFAULTS {
            let kind = PROPERTIES
                .iter()
                .find(|p| p.name == *name)
                .map_or(Kind::Str, |p| p.kind);
            let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {text}"))
                .map_err(|e| e.to_string())?
                .remove("v")
                .unwrap_or(toml::Value::Boolean(false));
            values.insert(name, to_dynamic(name, kind, &value)?);
        }
        let mut problems = Vec::new();
        for (name, value) in &self.s {
            match PROPERTIES.iter().find(|p| p.name == name) {
                None => problems.push(format!("`{name}` is not a property of s")),
                Some(p) => match to_dynamic(name, p.kind, value) {
                    Ok(v) => {
                        values.insert(p.name, v);
                    }
                    Err(e) => problems.push(e),
                },
            }
        }
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        RuleInput::from_values(values).map_err(|unknown| format!("unknown properties {unknown:?}"))
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
