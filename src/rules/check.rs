//! `mia check-rules`: the lint quants run in CI (product.md §7).
//!
//! [`check`] reports every problem it can find in a rule folder, not only the first:
//!
//! 1. Each `.rhai` file is parsed on its own. A file that does not parse is parsed again one
//!    top-level function at a time (with its `import` lines), so that each broken function gets
//!    its own diagnostic; positions stay exact because the other lines are blanked, not removed.
//! 2. The AST of each file that parses is walked: `s.<name>` must be a property of the schema
//!    ([`super::schema::PROPERTIES`]); `eval`, indexing `s`, and `import` inside a function are
//!    forbidden; the top level holds only `import`, `const` and `fn`; imports name a sibling file.
//! 3. The entry file must define `fn decide(s)`; its `*_WEIGHT` constants must add up to 100 and
//!    its tier constants (`PREMIUM_MIN` > `STRONG_MIN` > `GOOD_MIN` > `WEAK_MIN`, multipliers
//!    not increasing) must be monotonic.
//! 4. When the set compiles, the cases of `tests/*.toml` run; each failure is reported with a
//!    diff at the case's line, and the operations used per evaluation are measured against
//!    [`sandbox::MAX_OPERATIONS`].
//!
//! Every [`Problem`] has a file, line, column, a short [`Code`] and a message that says how to
//! fix it. The convention that the snapshot is named `s` in every function is what makes step 2
//! possible; the default rule set follows it and `docs/rules.md` asks for it.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use rhai::{AST, ASTFlags, ASTNode, Dynamic, Expr, Position, Stmt};
use serde::Serialize;

use super::cases::{self, Case};
use super::schema;
use super::{DECIDE, ENTRY, RuleError, RuleHost, RuleSet, sandbox};

/// What kind of problem a [`Problem`] is. The names are stable: CI scripts may match them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    /// A file does not parse.
    Syntax,
    /// An `import` that is not a sibling file of the folder.
    Import,
    /// A top-level statement other than `import`, `const` or `fn`.
    TopLevel,
    /// A construct rules may not use (`eval`, indexing `s`, `import` inside a function).
    Forbidden,
    /// `s.<name>` where `<name>` is not in the schema.
    UnknownProperty,
    /// No `strategy.rhai`.
    MissingEntry,
    /// `strategy.rhai` does not define `decide`.
    MissingDecide,
    /// `decide` does not take exactly one parameter.
    DecideArity,
    /// The `*_WEIGHT` constants do not add up to 100.
    Weights,
    /// The tier thresholds or multipliers are not monotonic.
    Tiers,
    /// The set does not compile as a whole (for example a module that fails to load).
    Compile,
    /// A `tests/*.toml` file that cannot be read, or a case with an unknown property.
    TestFile,
    /// A rule test whose decision differs from what it expects.
    TestFailed,
    /// `decide` failed on a test snapshot.
    RuntimeError,
    /// `decide` returned something that is not a decision on a test snapshot.
    InvalidResult,
    /// `decide` ran past the operation budget on a test snapshot.
    OpsBudget,
}

impl Code {
    /// The name printed in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Syntax => "syntax",
            Code::Import => "import",
            Code::TopLevel => "top-level",
            Code::Forbidden => "forbidden",
            Code::UnknownProperty => "unknown-property",
            Code::MissingEntry => "missing-entry",
            Code::MissingDecide => "missing-decide",
            Code::DecideArity => "decide-arity",
            Code::Weights => "weights",
            Code::Tiers => "tiers",
            Code::Compile => "compile",
            Code::TestFile => "test-file",
            Code::TestFailed => "test-failed",
            Code::RuntimeError => "runtime-error",
            Code::InvalidResult => "invalid-result",
            Code::OpsBudget => "ops-budget",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem, with where it is and how to fix it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    /// The file.
    pub file: PathBuf,
    /// 1-based line (0 when the problem is about the file as a whole).
    pub line: usize,
    /// 1-based column (0 when unknown).
    pub column: usize,
    /// Kind.
    pub code: Code,
    /// What is wrong and how to fix it. May span several lines (a test diff).
    pub message: String,
}

/// `file:line:col: error[code]: message`, the lines after the first of a message (a test
/// diff) indented under it.
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut lines = self.message.lines();
        write!(
            f,
            "{}:{}:{}: error[{}]: {}",
            self.file.display(),
            self.line,
            self.column,
            self.code,
            lines.next().unwrap_or_default()
        )?;
        for line in lines {
            write!(f, "\n    {line}")?;
        }
        Ok(())
    }
}

/// The heaviest evaluation of the rule tests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Heaviest {
    /// Operations it used.
    pub operations: u64,
    /// The case.
    pub case: String,
}

/// What [`check`] found in one rule folder.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The folder.
    pub dir: PathBuf,
    /// Content hash of the set, when it compiled.
    pub hash: Option<String>,
    /// Every problem, by file, line and column.
    pub problems: Vec<Problem>,
    /// Rule tests that ran.
    pub tests_run: usize,
    /// Rule tests that failed (wrong decision, rule error or over budget).
    pub tests_failed: usize,
    /// The evaluation that used the most operations, when tests ran.
    pub heaviest: Option<Heaviest>,
    /// The operation budget of one evaluation.
    pub budget: u64,
    /// The compiled set, when every file is sound (even if tests failed).
    #[serde(skip)]
    pub set: Option<RuleSet>,
}

/// Why a folder could not be checked at all.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot check rules in {}: {message}", path.display())]
pub struct CheckError {
    /// The path.
    pub path: PathBuf,
    /// The cause.
    pub message: String,
}

/// Checks the rule folder `dir`: every file, the set as a whole, and its rule tests.
///
/// # Errors
///
/// [`CheckError`] when the folder or one of its files cannot be read. Problems in the rules
/// are not errors: they are in the [`Report`].
pub fn check(host: &RuleHost, dir: &Path) -> Result<Report, CheckError> {
    let unreadable = |path: &Path, e: std::io::Error| CheckError {
        path: path.to_owned(),
        message: e.to_string(),
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| unreadable(dir, e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rhai") && p.is_file())
        .collect();
    files.sort();
    let engine = sandbox::lint_engine(dir);
    let mut problems = Vec::new();
    let mut entry = None;
    for path in &files {
        let text = std::fs::read_to_string(path).map_err(|e| unreadable(path, e))?;
        let mut lint = Lint {
            dir,
            file: path,
            problems: &mut problems,
        };
        let ast = lint.parse(&engine, &text);
        if let Some(ast) = &ast {
            lint.walk(ast);
        }
        if path.file_name().is_some_and(|n| n == ENTRY) {
            entry = Some((text, ast));
        }
    }
    match &entry {
        None => problems.push(Problem {
            file: dir.join(ENTRY),
            line: 0,
            column: 0,
            code: Code::MissingEntry,
            message: format!(
                "a rule set needs {ENTRY}: create it with `fn {DECIDE}(s) {{ … }}` returning a decision map (docs/rules.md)"
            ),
        }),
        Some((text, Some(ast))) => {
            let mut lint = Lint {
                dir,
                file: &dir.join(ENTRY),
                problems: &mut problems,
            };
            lint.entry(text, ast);
        }
        Some((_, None)) => {}
    }
    let mut report = Report {
        dir: dir.to_owned(),
        hash: None,
        problems,
        tests_run: 0,
        tests_failed: 0,
        heaviest: None,
        budget: sandbox::MAX_OPERATIONS,
        set: None,
    };
    // The set-level compile and the tests only make sense once every file is sound: their
    // errors would repeat the ones above.
    if report.problems.is_empty() {
        match host.compile(dir) {
            Ok(set) => {
                report.hash = Some(set.hash.clone());
                run_tests(host, &set, &mut report);
                report.set = Some(set);
            }
            Err(RuleError::Compile { diagnostics }) => {
                report
                    .problems
                    .extend(diagnostics.into_iter().map(|d| Problem {
                        file: d.file,
                        line: d.line,
                        column: d.column,
                        code: Code::Compile,
                        message: d.message,
                    }));
            }
            Err(e) => {
                return Err(CheckError {
                    path: dir.to_owned(),
                    message: e.to_string(),
                });
            }
        }
    }
    report.problems.sort_by(|a, b| {
        (&a.file, a.line, a.column, a.code).cmp(&(&b.file, b.line, b.column, b.code))
    });
    report.problems.dedup();
    Ok(report)
}

/// Compiles `dir` and checks it as `mia check-rules` does, rule tests included: what the live
/// engine loads and hot-reloads (product.md §6: "compiled and checked before it is swapped in").
///
/// # Errors
///
/// [`RuleError::Io`] when the folder cannot be read, [`RuleError::Check`] with every problem
/// when there is any.
pub fn load_checked(host: &RuleHost, dir: &Path) -> Result<RuleSet, RuleError> {
    let report = check(host, dir).map_err(|e| RuleError::Io {
        path: e.path,
        message: e.message,
    })?;
    match report.set {
        Some(set) if report.problems.is_empty() => Ok(set),
        _ => Err(RuleError::Check {
            problems: report.problems,
        }),
    }
}

/// The checks of one file.
struct Lint<'a> {
    dir: &'a Path,
    file: &'a Path,
    problems: &'a mut Vec<Problem>,
}

impl Lint<'_> {
    fn push(&mut self, pos: Position, code: Code, message: String) {
        self.problems.push(Problem {
            file: self.file.to_owned(),
            line: pos.line().unwrap_or(0),
            column: pos.position().unwrap_or(0),
            code,
            message,
        });
    }

    /// Parses the file; on failure, parses each top-level function apart to report each error.
    fn parse(&mut self, engine: &rhai::Engine, text: &str) -> Option<AST> {
        let whole = match engine.compile(text) {
            Ok(ast) => return Some(ast),
            Err(e) => e,
        };
        let mut found = false;
        for chunk in chunks(text) {
            if let Err(e) = engine.compile(&chunk) {
                found = true;
                self.push(e.1, Code::Syntax, syntax_message(&e.0));
            }
        }
        if !found {
            // The error spans chunks (an unclosed brace that runs into the next function).
            self.push(whole.1, Code::Syntax, syntax_message(&whole.0));
        }
        None
    }

    /// Walks a parsed file: top-level shape, imports, properties of `s`, forbidden constructs.
    fn walk(&mut self, ast: &AST) {
        let mut top_imports = BTreeSet::new();
        for stmt in ast.statements() {
            match stmt {
                Stmt::Import(x, pos) => {
                    top_imports.insert(std::ptr::from_ref(stmt) as usize);
                    self.import(&x.0, *pos);
                }
                Stmt::Var(_, flags, _) if flags.intersects(ASTFlags::CONSTANT) => {}
                Stmt::Noop(_) => {}
                other => self.push(
                    other.position(),
                    Code::TopLevel,
                    "only `import`, `const` and `fn` may appear at the top level: the top level runs before every evaluation; move this into a function".to_owned(),
                ),
            }
        }
        let mut found = Vec::new();
        ast.walk(&mut |path: &[ASTNode]| {
            match path.last() {
                Some(ASTNode::Expr(Expr::Dot(x, _, _))) => {
                    if is_snapshot(&x.lhs)
                        && let Some((name, pos)) = first_property(&x.rhs)
                        && schema::slot(name).is_none()
                    {
                        let hint = schema::suggest(name)
                            .map(|s| format!("did you mean `s.{s}`? "))
                            .unwrap_or_default();
                        found.push((
                            pos,
                            Code::UnknownProperty,
                            format!(
                                "`s.{name}` is not a property of the snapshot; {hint}docs/rules.md lists every property"
                            ),
                        ));
                    }
                }
                Some(ASTNode::Expr(Expr::Index(x, _, pos))) if is_snapshot(&x.lhs) => {
                    found.push((
                        *pos,
                        Code::Forbidden,
                        "`s[...]` is not allowed: read properties by name, `s.price`, so that they can be checked".to_owned(),
                    ));
                }
                Some(ASTNode::Expr(Expr::FnCall(call, pos)))
                    if call.name == "eval" && call.namespace.is_empty() =>
                {
                    found.push((
                        *pos,
                        Code::Forbidden,
                        "`eval` is not allowed: it runs code no check has seen; write the code itself".to_owned(),
                    ));
                }
                Some(ASTNode::Stmt(stmt @ Stmt::Import(_, pos)))
                    if !top_imports.contains(&(std::ptr::from_ref(*stmt) as usize)) =>
                {
                    found.push((
                        *pos,
                        Code::Forbidden,
                        "`import` inside a function is not allowed: move it to the top of the file".to_owned(),
                    ));
                }
                _ => {}
            }
            true
        });
        for (pos, code, message) in found {
            self.push(pos, code, message);
        }
    }

    /// An import must name a sibling `.rhai` file by a plain string.
    fn import(&mut self, path: &Expr, pos: Position) {
        let Expr::StringConstant(name, _) = path else {
            self.push(
                pos,
                Code::Import,
                "import a sibling file by a plain string, `import \"menthorq\" as mq;`".to_owned(),
            );
            return;
        };
        let name = name.as_str();
        let plain = !name.is_empty()
            && !name.contains(['/', '\\', ':'])
            && name != ".."
            && !name.starts_with('.');
        if !plain {
            self.push(
                pos,
                Code::Import,
                format!(
                    "`import \"{name}\"` leaves the rule folder: a rule set may import only its own files, by name (`import \"menthorq\" as mq;`)"
                ),
            );
        } else if !self.dir.join(format!("{name}.rhai")).is_file() {
            self.push(
                pos,
                Code::Import,
                format!(
                    "`import \"{name}\"`: there is no {name}.rhai in {}; create it or fix the name",
                    self.dir.display()
                ),
            );
        }
    }

    /// The checks that apply to the entry file only.
    fn entry(&mut self, text: &str, ast: &AST) {
        let decide: Vec<_> = ast.iter_functions().filter(|f| f.name == DECIDE).collect();
        if decide.is_empty() {
            self.push(
                Position::NONE,
                Code::MissingDecide,
                format!(
                    "{ENTRY} must define `fn {DECIDE}(s)`, which returns the decision map (docs/rules.md)"
                ),
            );
        } else if !decide.iter().any(|f| f.params.len() == 1) {
            let params = decide[0].params.len();
            self.push(
                fn_position(text, DECIDE),
                Code::DecideArity,
                format!(
                    "`{DECIDE}` takes {params} parameters; it must take exactly one, the snapshot: `fn {DECIDE}(s)`"
                ),
            );
        }
        let constants = constants(self.dir, text);
        self.weights(&constants);
        self.tiers(&constants);
    }

    fn weights(&mut self, constants: &[Constant]) {
        let weights: Vec<&Constant> = constants
            .iter()
            .filter(|c| c.name.ends_with("_WEIGHT"))
            .collect();
        let Some(first) = weights.first() else {
            return;
        };
        let mut sum = 0.0;
        for w in &weights {
            match w.value {
                Some(v) => sum += v,
                None => {
                    self.push(
                        w.pos,
                        Code::Weights,
                        format!(
                            "`{}` must be a number so that the weights can be checked",
                            w.name
                        ),
                    );
                    return;
                }
            }
        }
        if (sum - 100.0).abs() > 1e-9 {
            let terms: Vec<String> = weights
                .iter()
                .map(|w| format!("{} {}", w.name, number(w.value.unwrap_or(0.0))))
                .collect();
            self.push(
                first.pos,
                Code::Weights,
                format!(
                    "the {} weights add up to {}, not 100 ({}); change them so that they add up to 100",
                    weights.len(),
                    number(sum),
                    terms.join(" + ")
                ),
            );
        }
    }

    fn tiers(&mut self, constants: &[Constant]) {
        let get = |name: &str| constants.iter().find(|c| c.name == name);
        for (suffix, what, strict) in [
            ("_MIN", "thresholds", true),
            ("_MULT", "multipliers", false),
        ] {
            let tiers: Vec<&Constant> = ["PREMIUM", "STRONG", "GOOD", "WEAK", "NO_TRADE"]
                .iter()
                .filter_map(|t| get(&format!("{t}{suffix}")))
                .collect();
            for pair in tiers.windows(2) {
                let (hi, lo) = (pair[0], pair[1]);
                let (Some(a), Some(b)) = (hi.value, lo.value) else {
                    continue;
                };
                let broken = if strict { a <= b } else { a < b };
                if broken {
                    let relation = if strict { "above" } else { "at least" };
                    self.push(
                        lo.pos,
                        Code::Tiers,
                        format!(
                            "tier {what} must go down from PREMIUM to NO_TRADE: `{}` = {} but `{}` = {}; make `{}` {relation} `{}`",
                            lo.name,
                            number(b),
                            hi.name,
                            number(a),
                            hi.name,
                            lo.name
                        ),
                    );
                }
            }
            if strict {
                for t in &tiers {
                    if let Some(v) = t.value
                        && !(0.0..=100.0).contains(&v)
                    {
                        self.push(
                            t.pos,
                            Code::Tiers,
                            format!("`{}` = {} is not a score: use 0 to 100", t.name, number(v)),
                        );
                    }
                }
            }
        }
    }
}

/// A top-level constant of the entry file.
struct Constant {
    name: String,
    value: Option<f64>,
    pos: Position,
}

/// The top-level constants of a file, with their values when they are numbers. The file is
/// parsed again with full optimization so that `const B = A * 2.0;` is folded to a number.
fn constants(dir: &Path, text: &str) -> Vec<Constant> {
    let mut folding = sandbox::lint_engine(dir);
    folding.set_optimization_level(rhai::OptimizationLevel::Full);
    let Ok(ast) = folding.compile(text) else {
        return Vec::new();
    };
    ast.statements()
        .iter()
        .filter_map(|stmt| match stmt {
            Stmt::Var(x, flags, pos) if flags.intersects(ASTFlags::CONSTANT) => Some(Constant {
                name: x.0.name.to_string(),
                value: x.1.get_literal_value(None).and_then(|v| as_number(&v)),
                pos: *pos,
            }),
            _ => None,
        })
        .collect()
}

fn as_number(v: &Dynamic) -> Option<f64> {
    v.as_float()
        .ok()
        .or_else(|| v.as_int().ok().map(|i| i as f64))
}

/// A number as a person writes it: `20`, `12.5`.
fn number(x: f64) -> String {
    let rounded = (x * 1e6).round() / 1e6;
    format!("{rounded}")
}

/// Whether an expression is the snapshot variable `s`.
fn is_snapshot(expr: &Expr) -> bool {
    matches!(expr, Expr::Variable(x, _, _) if x.1 == "s" && x.2.is_empty())
}

/// The first property read by the right-hand side of `s.…`.
fn first_property(expr: &Expr) -> Option<(&str, Position)> {
    match expr {
        Expr::Property(x, pos) => Some((x.2.as_str(), *pos)),
        Expr::Dot(x, _, _) | Expr::Index(x, _, _) => first_property(&x.lhs),
        _ => None,
    }
}

/// Where `fn <name>` starts, for diagnostics about a function.
fn fn_position(text: &str, name: &str) -> Position {
    let needle = format!("fn {name}");
    text.lines()
        .enumerate()
        .find_map(|(i, line)| {
            let col = line.find(&needle)?;
            let rest = &line[col + needle.len()..];
            let line = u16::try_from(i + 1).ok()?;
            let col = u16::try_from(col + 1).ok()?;
            rest.trim_start()
                .starts_with('(')
                .then(|| Position::new(line, col))
        })
        .unwrap_or(Position::NONE)
}

/// The file cut at each top-level `fn` (a line that starts with `fn ` or `private fn `): one
/// text per piece, with the lines of the other pieces blanked so that positions are unchanged,
/// and the `import` lines kept so that `module::f` calls still parse.
fn chunks(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let is_fn = |l: &str| l.starts_with("fn ") || l.starts_with("private fn ");
    let is_import = |l: &str| l.trim_start().starts_with("import ");
    let mut starts: Vec<usize> = vec![0];
    starts.extend((1..lines.len()).filter(|&i| is_fn(lines[i])));
    starts.push(lines.len());
    starts
        .windows(2)
        .map(|w| {
            lines
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    if (w[0]..w[1]).contains(&i) || is_import(l) {
                        *l
                    } else if l.ends_with('\n') {
                        "\n"
                    } else {
                        ""
                    }
                })
                .collect()
        })
        .collect()
}

fn syntax_message(err: &rhai::ParseErrorType) -> String {
    use rhai::ParseErrorType as P;
    let text = err.to_string();
    match err {
        P::VariableUndefined(name) => format!(
            "{text}: declare it with `let`, or read a constant of the file as `global::{name}`"
        ),
        P::ModuleUndefined(name) => {
            format!("{text}: add `import \"{name}\" as {name};` at the top of the file")
        }
        _ => text,
    }
}

/// Runs the rule tests of a compiled set and records failures and operation counts.
fn run_tests(host: &RuleHost, set: &RuleSet, report: &mut Report) {
    for file in cases::test_files(&set.dir) {
        let cases = match cases::load(&file) {
            Ok(cases) => cases,
            Err(e) => {
                report.problems.push(Problem {
                    file: e.path,
                    line: e.line,
                    column: e.column,
                    code: Code::TestFile,
                    message: format!("{}; see the case format in docs/rules.md", e.message),
                });
                continue;
            }
        };
        for case in &cases {
            report.tests_run += 1;
            let problems = run_case(host, set, &file, case, report);
            if !problems.is_empty() {
                report.tests_failed += 1;
                report.problems.extend(problems);
            }
        }
    }
}

/// Runs one case; returns its problems (none when it passes).
fn run_case(
    host: &RuleHost,
    set: &RuleSet,
    file: &Path,
    case: &Case,
    report: &mut Report,
) -> Vec<Problem> {
    let input = match case.input() {
        Ok(input) => input,
        Err(problems) => {
            return problems
                .into_iter()
                .map(|p| Problem {
                    file: file.to_owned(),
                    line: p.line,
                    column: p.column,
                    code: Code::TestFile,
                    message: format!("case \"{}\": {}", case.name, p.message),
                })
                .collect();
        }
    };
    let at_case = |code, message| Problem {
        file: file.to_owned(),
        line: case.line,
        column: 1,
        code,
        message,
    };
    let case_ref = format!("case \"{}\" ({}:{})", case.name, file.display(), case.line);
    let problem = match host.evaluate(set, &input) {
        Ok(eval) => {
            if report
                .heaviest
                .as_ref()
                .is_none_or(|h| eval.operations > h.operations)
            {
                report.heaviest = Some(Heaviest {
                    operations: eval.operations,
                    case: case.name.clone(),
                });
            }
            let diff = case.check(&eval.decision);
            if diff.is_empty() {
                return Vec::new();
            }
            at_case(
                Code::TestFailed,
                format!(
                    "case \"{}\" failed; fix the rules or the expectation:\n{}",
                    case.name,
                    diff.join("\n")
                ),
            )
        }
        // The budget error has no position in the script: the case is where to look.
        Err(RuleError::OverBudget(_)) => at_case(
            Code::OpsBudget,
            format!(
                "case \"{}\": decide ran past the budget of {} operations; look for a loop that does not end",
                case.name,
                sandbox::MAX_OPERATIONS
            ),
        ),
        Err(RuleError::Runtime(d)) => {
            let hint = if d.message.starts_with("Function not found") && d.message.contains("()") {
                "; a property is () when its source has no value yet: test `if s.x != ()` before using it"
            } else {
                ""
            };
            Problem {
                file: d.file,
                line: d.line,
                column: d.column,
                code: Code::RuntimeError,
                message: format!("on {case_ref}: {}{hint}", d.message),
            }
        }
        Err(e) => at_case(
            Code::InvalidResult,
            format!(
                "case \"{}\": {e}; decide must return #{{ score, direction, tier, size_mult, components, reasons, vetoes }} (docs/rules.md)",
                case.name
            ),
        ),
    };
    vec![problem]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_keep_positions_and_imports() {
        let text = "import \"a\" as a;\nconst X = 1;\nfn f(s) {\n  1\n}\nfn g(s) {\n  2\n}\n";
        let c = chunks(text);
        assert_eq!(c.len(), 3);
        assert_eq!(c[0], "import \"a\" as a;\nconst X = 1;\n\n\n\n\n\n\n");
        assert_eq!(c[1], "import \"a\" as a;\n\nfn f(s) {\n  1\n}\n\n\n\n");
        assert_eq!(c[2], "import \"a\" as a;\n\n\n\n\nfn g(s) {\n  2\n}\n");
        for piece in &c {
            assert_eq!(piece.lines().count(), text.lines().count());
        }
    }

    #[test]
    fn fn_position_finds_the_definition() {
        let text = "// fn decide is below\n\nfn decide (s, t) {}\n";
        assert_eq!(fn_position(text, "decide"), Position::new(3, 1));
        assert_eq!(fn_position(text, "other"), Position::NONE);
    }

    #[test]
    fn numbers_print_as_written() {
        assert_eq!(number(20.0), "20");
        assert_eq!(number(12.5), "12.5");
        assert_eq!(number(0.1 + 0.2), "0.3");
    }
}
