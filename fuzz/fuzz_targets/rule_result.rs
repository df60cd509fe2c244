//! Rule results: whatever `decide(s)` returns goes through mia's result validator.
//!
//! The validator (`rules::validate`) is private, so this target reaches it the way production
//! does: a rule set whose `decide(s)` returns `s.symbol`, evaluated by `RuleHost::evaluate` on a
//! `RuleInput` whose `symbol` is the fuzzed value (a property getter clones the value as it is;
//! the input's declared kinds are not enforced). Never a panic; an accepted decision is within
//! the documented bounds (score 0–100, size_mult 0–10, finite components and points, the checks
//! of `src/rules/tests.rs`, module `validator`) and is the returned map unchanged; a rejected one
//! is a rule error.
//!
//! The fuzz bytes are read by a small decoder that never fails, so that seeds are readable text:
//!
//! ```text
//! _            unit                  T / F        true / false
//! %<int>       i64 (saturating)      #<float>     f64 (#nan, #inf, #-inf, #-0.0, #1e308, …)
//! "<bytes>"    string (to the next ")               '<c>   char
//! [ v v … ]    array                 { k v k v … } map; a key is "<bytes>", a bare word or
//!                                                  any other single byte
//! word         a bare word ([A-Za-z0-9_.+-]) is a string; any other byte b is the int b
//! ```
//!
//! Whitespace separates; the end of the input closes every open array and map; a key without a
//! value, a stray `]` or `}` and nesting deeper than 16 read as unit.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mia::rules::{Decision, RuleError, RuleHost, RuleInput, RuleSet};
use rhai::Dynamic;

const MAX_DEPTH: usize = 16;

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'+' | b'-')
}

impl Reader<'_> {
    fn skip_space(&mut self) {
        while self.data.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_space();
        self.data.get(self.at).copied()
    }

    fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> &[u8] {
        let start = self.at;
        while self.data.get(self.at).is_some_and(|b| keep(*b)) {
            self.at += 1;
        }
        &self.data[start..self.at]
    }

    fn string(&mut self) -> String {
        let s = String::from_utf8_lossy(self.take_while(|b| b != b'"')).into_owned();
        self.at += 1; // the closing quote, if any
        s
    }

    fn word(&mut self) -> String {
        String::from_utf8_lossy(self.take_while(is_word)).into_owned()
    }

    fn int(&mut self) -> i64 {
        let negative = self.data.get(self.at) == Some(&b'-');
        if negative || self.data.get(self.at) == Some(&b'+') {
            self.at += 1;
        }
        let digits = self.take_while(|b| b.is_ascii_digit());
        digits.iter().fold(0i64, |n, d| {
            let d = i64::from(d - b'0');
            let n = n.saturating_mul(10);
            if negative {
                n.saturating_sub(d)
            } else {
                n.saturating_add(d)
            }
        })
    }

    /// One UTF-8 character, or one byte as a Latin-1 character when none starts here.
    fn char(&mut self) -> char {
        let rest = &self.data[self.at..];
        let c = (1..=rest.len().min(4))
            .find_map(|n| std::str::from_utf8(&rest[..n]).ok())
            .and_then(|s| s.chars().next());
        match (c, rest.first()) {
            (Some(c), _) => {
                self.at += c.len_utf8();
                c
            }
            (None, Some(b)) => {
                self.at += 1;
                char::from(*b)
            }
            (None, None) => '\0',
        }
    }

    fn float(&mut self) -> f64 {
        let text = self.take_while(is_word);
        std::str::from_utf8(text)
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0.0)
    }

    fn value(&mut self, depth: usize) -> Dynamic {
        let Some(b) = self.peek() else {
            return Dynamic::UNIT;
        };
        self.at += 1;
        match b {
            b'_' => Dynamic::UNIT,
            b'T' => Dynamic::from(true),
            b'F' => Dynamic::from(false),
            b'%' => Dynamic::from(self.int()),
            b'#' => Dynamic::from(self.float()),
            b'"' => Dynamic::from(self.string()),
            b'\'' => Dynamic::from(self.char()),
            b'[' | b'{' if depth >= MAX_DEPTH => Dynamic::UNIT,
            b'[' => {
                let mut items = Vec::new();
                loop {
                    match self.peek() {
                        None => break,
                        Some(b']') => {
                            self.at += 1;
                            break;
                        }
                        Some(_) => items.push(self.value(depth + 1)),
                    }
                }
                Dynamic::from_array(items)
            }
            b'{' => {
                let mut map = rhai::Map::new();
                loop {
                    let key = match self.peek() {
                        None => break,
                        Some(b'}') => {
                            self.at += 1;
                            break;
                        }
                        Some(b'"') => {
                            self.at += 1;
                            self.string()
                        }
                        Some(b) if is_word(b) => self.word(),
                        Some(b) => {
                            self.at += 1;
                            char::from(b).to_string()
                        }
                    };
                    if self.peek() == Some(b'}') {
                        // `{ key }`: the key with no value, then the end of the map.
                        self.at += 1;
                        map.insert(key.into(), Dynamic::UNIT);
                        break;
                    }
                    let value = self.value(depth + 1);
                    map.insert(key.into(), value);
                }
                Dynamic::from_map(map)
            }
            // A stray closer.
            b']' | b'}' => Dynamic::UNIT,
            b if is_word(b) => {
                self.at -= 1;
                Dynamic::from(self.word())
            }
            b => Dynamic::from(i64::from(b)),
        }
    }
}

/// The host and a rule set whose `decide(s)` returns `s.symbol`, compiled once.
fn rules() -> &'static (RuleHost, RuleSet) {
    static RULES: OnceLock<(RuleHost, RuleSet)> = OnceLock::new();
    RULES.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("mia-fuzz-rule-result-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("rule folder");
        std::fs::write(dir.join(mia::rules::ENTRY), "fn decide(s) { s.symbol }\n")
            .expect("strategy.rhai");
        let host = RuleHost::new();
        let set = host
            .compile(&dir)
            .expect("the pass-through rule set compiles");
        // The compiled set is self-contained: evaluation reads no file.
        let _ = std::fs::remove_dir_all(&dir);
        (host, set)
    })
}

/// The value the validator reads as a number (float, or int widened), as `rules::number` does.
fn number(v: &Dynamic) -> f64 {
    v.as_float()
        .ok()
        .or_else(|| v.as_int().ok().map(|i| i as f64))
        .expect("an accepted number is a float or an int")
}

fn text(v: &Dynamic) -> String {
    v.clone()
        .into_immutable_string()
        .expect("an accepted text is a string")
        .to_string()
}

/// An accepted decision is within every documented bound and is the map as it was returned.
fn check_accepted(value: &Dynamic, d: &Decision) {
    // The proptest `any_result_is_a_bounded_decision_or_a_rule_error`.
    assert!((0.0..=100.0).contains(&d.score), "score {}", d.score);
    assert!(
        (0.0..=10.0).contains(&d.size_mult),
        "size_mult {}",
        d.size_mult
    );
    assert!(
        d.components.values().all(|x| x.is_finite()),
        "{:?}",
        d.components
    );
    assert!(
        d.reasons.iter().all(|r| r.points.is_finite()),
        "{:?}",
        d.reasons
    );

    // `every_valid_result_is_accepted_as_it_is`, for whatever map was accepted.
    let map = value
        .clone()
        .try_cast::<rhai::Map>()
        .expect("only a map is accepted");
    assert!(map.len() <= 7, "unknown keys accepted: {map:?}");
    assert_eq!(d.score, number(&map["score"]));
    assert_eq!(d.direction.as_str(), text(&map["direction"]));
    assert_eq!(d.tier.as_str(), text(&map["tier"]));
    assert_eq!(d.size_mult, number(&map["size_mult"]));
    let components = map["components"]
        .clone()
        .try_cast::<rhai::Map>()
        .expect("a map");
    assert_eq!(d.components.len(), components.len());
    for (name, v) in &components {
        assert_eq!(d.components.get(name.as_str()), Some(&number(v)));
    }
    let reasons = map["reasons"]
        .clone()
        .try_cast::<rhai::Array>()
        .expect("an array");
    assert_eq!(d.reasons.len(), reasons.len());
    for (r, v) in d.reasons.iter().zip(&reasons) {
        if v.is_string() {
            assert_eq!(
                (r.rule.as_str(), r.points, r.why.clone()),
                ("", 0.0, text(v))
            );
        } else {
            let m = v.clone().try_cast::<rhai::Map>().expect("a reason map");
            let field = |k: &str| m.get(k).map(text).unwrap_or_default();
            assert_eq!(r.rule, field("rule"));
            assert_eq!(r.why, field("why"));
            assert_eq!(r.points, m.get("points").map_or(0.0, number));
        }
    }
    let vetoes = map["vetoes"]
        .clone()
        .try_cast::<rhai::Array>()
        .expect("an array");
    assert_eq!(d.vetoes, vetoes.iter().map(text).collect::<Vec<_>>());
}

fuzz_target!(|data: &[u8]| {
    let value = Reader { data, at: 0 }.value(0);
    let (host, set) = rules();
    let input = RuleInput::from_values([("symbol", value.clone())]).expect("symbol is a property");
    match host.evaluate(set, &input) {
        Ok(evaluation) => check_accepted(&value, &evaluation.decision),
        // The validator's rejection, or the engine's size limits on the returned value.
        Err(RuleError::InvalidResult(_) | RuleError::Runtime(_)) => {}
        Err(e) => panic!("unexpected rule error for {value:?}: {e}"),
    }
});
