//! Host tests: compile, evaluate, validate, sandbox limits, diagnostics.

use std::path::Path;

use rhai::Dynamic;

use super::*;

const OK_DECIDE: &str = r#"
fn decide(s) {
    let score = if s.price == () { 0.0 } else { 75.0 };
    #{ score: score, direction: "long", tier: "GOOD", size_mult: 1.0,
       components: #{ gamma: 20.0 }, reasons: [#{ rule: "gamma", points: 20.0, why: "near support" }],
       vetoes: [] }
}
"#;

fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn input(price: f64) -> RuleInput {
    RuleInput::from_values([
        ("price", Dynamic::from_float(price)),
        ("instrument", Dynamic::from("ES")),
    ])
    .unwrap()
}

fn compile(dir: &Path) -> RuleSet {
    RuleHost::new()
        .compile(dir)
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn evaluates_and_validates_a_decision() {
    let dir = folder(&[("strategy.rhai", OK_DECIDE)]);
    let host = RuleHost::new();
    let set = compile(dir.path());
    assert_eq!(set.hash.len(), 32);
    let eval = host.evaluate(&set, &input(6500.0)).unwrap();
    assert_eq!(eval.decision.score, 75.0);
    assert_eq!(eval.decision.direction, Direction::Long);
    assert_eq!(eval.decision.tier, Tier::Good);
    assert_eq!(eval.decision.components["gamma"], 20.0);
    assert_eq!(eval.decision.reasons[0].why, "near support");
    assert!(eval.operations > 0);
    let unknown = RuleInput::from_values([]).unwrap();
    assert_eq!(
        host.evaluate(&set, &unknown).unwrap().decision.score,
        0.0,
        "missing price is ()"
    );
}

#[test]
fn hash_changes_with_content_only() {
    let a = folder(&[("strategy.rhai", OK_DECIDE)]);
    let b = folder(&[("strategy.rhai", OK_DECIDE)]);
    assert_eq!(compile(a.path()).hash, compile(b.path()).hash);
    std::fs::write(
        b.path().join("strategy.rhai"),
        format!("{OK_DECIDE}\n// edited"),
    )
    .unwrap();
    assert_ne!(compile(a.path()).hash, compile(b.path()).hash);
}

#[test]
fn unknown_property_is_a_runtime_error_with_position() {
    let dir = folder(&[(
        "strategy.rhai",
        "fn decide(s) {\n    let x = s.pricee;\n    x\n}\n",
    )]);
    let set = compile(dir.path());
    let err = RuleHost::new().evaluate(&set, &input(1.0)).unwrap_err();
    let RuleError::Runtime(d) = &err else {
        panic!("{err}")
    };
    assert_eq!(
        (d.line, d.file.file_name().unwrap().to_str().unwrap()),
        (2, "strategy.rhai"),
        "{d}"
    );
    assert!(d.message.contains("pricee"), "{d}");
}

#[test]
fn invalid_results_are_rule_errors() {
    for (body, needle) in [
        ("42", "expected a map"),
        (
            r#"#{ score: 101.0, direction: "long", tier: "GOOD", size_mult: 1.0, components: #{}, reasons: [], vetoes: [] }"#,
            "outside 0..=100",
        ),
        (
            r#"#{ score: 50.0, direction: "up", tier: "GOOD", size_mult: 1.0, components: #{}, reasons: [], vetoes: [] }"#,
            "`direction` = \"up\"",
        ),
        (
            r#"#{ score: 50.0, direction: "long", tier: "GREAT", size_mult: 1.0, components: #{}, reasons: [], vetoes: [] }"#,
            "`tier`",
        ),
        (
            r#"#{ score: 50.0, direction: "long", tier: "GOOD", components: #{}, reasons: [], vetoes: [] }"#,
            "no `size_mult`",
        ),
        (
            r#"#{ score: 50.0, direction: "long", tier: "GOOD", size_mult: 1.0, components: #{ a: "x" }, reasons: [], vetoes: [] }"#,
            "components.a",
        ),
        (
            r#"#{ score: 50.0, direction: "long", tier: "GOOD", size_mult: 1.0, components: #{}, reasons: [], vetoes: [1] }"#,
            "vetoes[0]",
        ),
        (
            r#"#{ score: 50.0, direction: "long", tier: "GOOD", size_mult: 1.0, components: #{}, reasons: [], vetoes: [], extra: 1 }"#,
            "unknown key `extra`",
        ),
    ] {
        let dir = folder(&[("strategy.rhai", &format!("fn decide(s) {{ {body} }}"))]);
        let err = RuleHost::new()
            .evaluate(&compile(dir.path()), &input(1.0))
            .unwrap_err();
        assert!(
            matches!(err, RuleError::InvalidResult(_)) && err.to_string().contains(needle),
            "{body}: {err}"
        );
    }
}

#[test]
fn sandbox_stops_runaway_scripts_and_the_next_evaluation_runs() {
    let host = RuleHost::new();
    let good = folder(&[("strategy.rhai", OK_DECIDE)]);
    let good = compile(good.path());
    for (name, body, needle) in [
        ("infinite loop", "loop { }", "Too many operations"),
        (
            "string bomb",
            r#"let x = "ab"; loop { x += x; }"#,
            "Length of string",
        ),
        (
            "array bomb",
            "let a = [1]; loop { a += a; }",
            "Size of array",
        ),
        (
            "deep recursion",
            "fn f(n) { f(n + 1) } f(0)",
            "Stack overflow",
        ),
    ] {
        let text = if name == "deep recursion" {
            "fn f(n) { f(n + 1) }\nfn decide(s) { f(0) }".to_owned()
        } else {
            format!("fn decide(s) {{ {body} }}")
        };
        let dir = folder(&[("strategy.rhai", &text)]);
        let set = compile(dir.path());
        let err = host.evaluate(&set, &input(1.0)).unwrap_err();
        assert!(err.to_string().contains(needle), "{name}: {err}");
        assert_eq!(
            host.evaluate(&good, &input(1.0)).unwrap().decision.score,
            75.0,
            "after {name}"
        );
    }
}

#[test]
fn eval_and_outside_imports_do_not_compile() {
    let host = RuleHost::new();
    let dir = folder(&[("strategy.rhai", "fn decide(s) { eval(\"1\") }")]);
    let err = host.compile(dir.path()).unwrap_err();
    assert!(err.to_string().contains("eval"), "{err}");
    let outside = folder(&[(
        "strategy.rhai",
        "import \"../secret\" as x;\nfn decide(s) { 1 }",
    )]);
    let err = host.compile(outside.path()).unwrap_err();
    assert!(err.to_string().contains("only sibling files"), "{err}");
}

#[test]
fn sibling_modules_are_embedded_at_compile_time() {
    let dir = folder(&[
        (
            "strategy.rhai",
            "import \"weights\" as w;\nfn decide(s) {\n    #{ score: w::points(), direction: \"flat\", tier: \"NO_TRADE\", size_mult: 0.0, components: #{}, reasons: [], vetoes: [] }\n}\n",
        ),
        ("weights.rhai", "fn points() { 42.0 }\n"),
    ]);
    let host = RuleHost::new();
    let set = compile(dir.path());
    // The module file can go away: evaluation reads no file.
    std::fs::remove_file(dir.path().join("weights.rhai")).unwrap();
    assert_eq!(
        host.evaluate(&set, &input(1.0)).unwrap().decision.score,
        42.0
    );
}

#[test]
fn every_broken_file_is_reported_with_its_position() {
    let dir = folder(&[
        ("strategy.rhai", "fn decide(s) {\n    let x = ;\n}\n"),
        ("menthorq.rhai", "fn a() {\n  1 +\n}\n"),
    ]);
    let RuleError::Compile { diagnostics } = RuleHost::new().compile(dir.path()).unwrap_err()
    else {
        panic!()
    };
    let got: Vec<(String, usize)> = diagnostics
        .iter()
        .map(|d| {
            (
                d.file.file_name().unwrap().to_string_lossy().into_owned(),
                d.line,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("menthorq.rhai".to_owned(), 3),
            ("strategy.rhai".to_owned(), 2)
        ]
    );
    assert!(diagnostics.iter().all(|d| d.column > 0));
}

#[test]
fn decide_must_exist_with_one_parameter() {
    let dir = folder(&[("strategy.rhai", "fn decide(a, b) { 1 }")]);
    let err = RuleHost::new().compile(dir.path()).unwrap_err();
    assert!(err.to_string().contains("exactly one parameter"), "{err}");
    let none = folder(&[("other.rhai", "fn x() { 1 }")]);
    assert!(
        RuleHost::new()
            .compile(none.path())
            .unwrap_err()
            .to_string()
            .contains("needs strategy.rhai")
    );
}
