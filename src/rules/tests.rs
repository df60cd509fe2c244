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

/// Property tests of the result validator: whatever a script returns, `validate` gives a
/// decision that keeps every documented bound, or a rule error; never a panic. Bounded in
/// `cargo test`; `PROPTEST_CASES=100000 cargo test --lib rules::tests::validator` runs longer.
mod validator {
    use proptest::prelude::*;
    use rhai::Dynamic;

    use super::super::validate;

    const KEYS: [&str; 8] = [
        "score",
        "direction",
        "tier",
        "size_mult",
        "components",
        "reasons",
        "vetoes",
        "extra",
    ];
    const WORDS: [&str; 10] = [
        "long", "short", "flat", "GOOD", "PREMIUM", "NO_TRADE", "weak", "", "rule", "why",
    ];

    fn scalar() -> impl Strategy<Value = Dynamic> {
        prop_oneof![
            Just(Dynamic::UNIT),
            any::<bool>().prop_map(Dynamic::from),
            (-5i64..150).prop_map(Dynamic::from),
            prop_oneof![
                -5.0f64..150.0,
                Just(f64::NAN),
                Just(f64::INFINITY),
                Just(-0.0)
            ]
            .prop_map(Dynamic::from),
            proptest::sample::select(&WORDS[..]).prop_map(Dynamic::from),
        ]
    }

    fn value() -> impl Strategy<Value = Dynamic> {
        scalar().prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Dynamic::from_array),
                proptest::collection::vec((proptest::sample::select(&WORDS[..]), inner), 0..4)
                    .prop_map(|pairs| {
                        Dynamic::from_map(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
                    }),
            ]
        })
    }

    /// A map with some of the expected keys (and sometimes an unknown one).
    fn result() -> impl Strategy<Value = Dynamic> {
        prop_oneof![
            value(),
            proptest::collection::vec((proptest::sample::select(&KEYS[..]), value()), 0..9)
                .prop_map(|pairs| Dynamic::from_map(
                    pairs.into_iter().map(|(k, v)| (k.into(), v)).collect()
                )),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(2_000),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn any_result_is_a_bounded_decision_or_a_rule_error(result in result()) {
            if let Ok(d) = validate(result) {
                prop_assert!((0.0..=100.0).contains(&d.score));
                prop_assert!((0.0..=10.0).contains(&d.size_mult));
                prop_assert!(d.components.values().all(|x| x.is_finite()));
                prop_assert!(d.reasons.iter().all(|r| r.points.is_finite()));
            }
        }

        #[test]
        fn every_valid_result_is_accepted_as_it_is(
            score in 0.0f64..=100.0,
            direction in proptest::sample::select(&["long", "short", "flat"][..]),
            tier in proptest::sample::select(&["PREMIUM", "STRONG", "GOOD", "WEAK", "NO_TRADE"][..]),
            size_mult in 0.0f64..=10.0,
            components in proptest::collection::btree_map("[a-z]{1,8}", -100.0f64..100.0, 0..5),
            vetoes in proptest::collection::vec("[a-z_]{1,12}", 0..4),
        ) {
            let mut map = rhai::Map::new();
            map.insert("score".into(), Dynamic::from(score));
            map.insert("direction".into(), Dynamic::from(direction));
            map.insert("tier".into(), Dynamic::from(tier));
            map.insert("size_mult".into(), Dynamic::from(size_mult));
            map.insert(
                "components".into(),
                Dynamic::from_map(components.iter().map(|(k, v)| (k.into(), Dynamic::from(*v))).collect()),
            );
            map.insert(
                "reasons".into(),
                Dynamic::from_array(vec![Dynamic::from("plain reason")]),
            );
            map.insert(
                "vetoes".into(),
                Dynamic::from_array(vetoes.iter().map(|v| Dynamic::from(v.clone())).collect()),
            );
            let d = validate(Dynamic::from_map(map)).unwrap();
            prop_assert_eq!(d.score, score);
            prop_assert_eq!(d.direction.as_str(), direction);
            prop_assert_eq!(d.tier.as_str(), tier);
            prop_assert_eq!(d.size_mult, size_mult);
            prop_assert_eq!(d.components, components);
            prop_assert_eq!(d.vetoes, vetoes);
        }
    }
}
