//! Canonical JSON against Python's `json.dumps(sort_keys=True,
//! separators=(",", ":"), ensure_ascii=True)`: socp-1.3.md §4 case 1, the
//! checked-in vectors of scripts/gen-json-vectors.py, a few hundred random
//! values canonicalized by python3 at test time, and idempotence.

// Test code may panic (clippy.toml allows it in #[test] fns; this covers the helpers too).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write as _;
use std::process::Command;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Number, Value};
use socp_core::wire::{Limits, json};

fn parse(text: &str) -> Value {
    json::parse(text.as_bytes(), &Limits::default()).unwrap()
}

#[test]
fn spec_case_1_exact_bytes() {
    let value = parse(r#"{"b":1,"a":{"d":2,"c":"é"}}"#);
    assert_eq!(
        json::canonical(&value),
        br#"{"a":{"c":"\u00e9","d":2},"b":1}"#.to_vec()
    );
    let Value::Object(map) = &value else {
        panic!("not an object")
    };
    assert_eq!(json::canonical_map(map), json::canonical(&value));
    assert_eq!(
        json::canonical_string(&value),
        r#"{"a":{"c":"\u00e9","d":2},"b":1}"#
    );
}

#[test]
fn spec_case_1_layout_and_order_do_not_matter() {
    // Whatever the sender's whitespace or key order, the signed bytes are the same.
    let expected = br#"{"a":{"c":"\u00e9","d":2},"b":1}"#.to_vec();
    for text in [
        r#"{"a":{"c":"é","d":2},"b":1}"#,
        "{ \"b\" : 1 ,\n \"a\" : { \"d\" : 2 , \"c\" : \"\\u00e9\" } }\n",
        r#"{"a":{"d":2,"c":"\u00E9"},"b":1}"#,
    ] {
        assert_eq!(json::canonical(&parse(text)), expected, "{text}");
    }
}

#[test]
fn canonical_into_appends() {
    let mut out = b"prefix:".to_vec();
    json::canonical_into(&parse(r#"{"b":[],"a":null}"#), &mut out);
    assert_eq!(out, br#"prefix:{"a":null,"b":[]}"#.to_vec());
}

#[derive(serde::Deserialize)]
struct Vectors {
    vectors: Vec<Vector>,
}

#[derive(serde::Deserialize)]
struct Vector {
    name: String,
    input: String,
    canonical: String,
}

#[test]
fn python_vectors() {
    let text = include_str!("../../fixtures/json/canonical-vectors.json");
    let vectors: Vectors = serde_json::from_str(text).unwrap();
    assert!(vectors.vectors.len() >= 40);
    let mut failures = Vec::new();
    for v in &vectors.vectors {
        if v.canonical.contains("Infinity") {
            // Python prints an overflowing literal as `Infinity`, which is not JSON:
            // we refuse such frames at decode, and the canonical writer still
            // agrees with Python on the value itself.
            assert_eq!(
                json::parse(v.input.as_bytes(), &Limits::default()),
                Err(socp_core::wire::DecodeError::NumberOutOfRange),
                "{}",
                v.name
            );
            let raw: Value = serde_json::from_str(&v.input).unwrap();
            assert_eq!(json::canonical_string(&raw), v.canonical, "{}", v.name);
            continue;
        }
        let ours = json::canonical_string(&parse(&v.input));
        if ours != v.canonical {
            failures.push(format!(
                "{}:\n  python {}\n  ours   {}",
                v.name, v.canonical, ours
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------
// Random values

/// Number literals as a peer might write them; with `overflow`, also
/// literals beyond a double's range, which Python prints as `Infinity` (not
/// JSON, so they cannot take part in a re-parse, and `json::parse` refuses them).
fn number(overflow: bool) -> impl Strategy<Value = Value> {
    let literal = prop_oneof![
        any::<i64>().prop_map(|i| i.to_string()),
        any::<u64>().prop_map(|u| u.to_string()),
        // Integers beyond 64 bits (but under Python's 4300-digit limit).
        "-?[1-9][0-9]{19,80}",
        // Floats of every magnitude, printed in the three ways Rust can.
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_flat_map(|f| prop_oneof![
                Just(format!("{f:?}")),
                Just(format!("{f:e}")),
                Just(format!("{f:E}")),
            ]),
        // Decimal-ish floats near the notation boundaries.
        (1u64..10_000, -30i32..30).prop_map(|(m, e)| format!("{m}e{e}")),
        (0u64..100_000, 0u64..100_000).prop_map(|(a, b)| format!("{a}.{b}")),
        prop::sample::select(vec![
            "0",
            "-0",
            "0.0",
            "-0.0",
            "0e0",
            "1e-400",
            "-1e-400",
            "1E+2",
            "1e16",
            "1e15",
            "0.0001",
            "0.00001",
            "9999999999999999.0",
            "5e-324",
            "1.7976931348623157e308",
        ])
        .prop_map(str::to_owned),
        prop::sample::select(if overflow {
            vec!["1e400", "-1e400", "1.8e308"]
        } else {
            vec!["1e300"]
        })
        .prop_map(str::to_owned),
    ];
    literal.prop_map(|text| Value::Number(serde_json::from_str::<Number>(&text).unwrap()))
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        // Anything Unicode, controls and astral characters included.
        any::<String>(),
        // ASCII with every control character and DEL.
        "[\\x00-\\x7f]{0,12}",
        // Characters near the escape boundaries.
        "[\\x1e-\\x22\\x5c\\x7e-\\xa0\u{ff}\u{2028}\u{fffe}\u{ffff}\u{10000}\u{1f600}\u{10ffff}]{0,8}",
    ]
}

fn json_value(overflow: bool) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(overflow),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((text(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn python3_available() -> bool {
    Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
}

const PYTHON_CANONICAL: &str = r#"
import json, sys
with open(sys.argv[1], "rb") as f:
    for line in f.read().split(b"\n"):
        if line:
            obj = json.loads(line)
            print(json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True))
"#;

#[test]
fn random_values_match_python() {
    if !python3_available() {
        println!("NOTICE: python3 not on PATH; skipping the Python comparison");
        return;
    }
    const COUNT: usize = 400;
    let mut runner = TestRunner::deterministic();
    let strategy = json_value(true);
    let values: Vec<Value> = (0..COUNT)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect();

    // Python gets serde_json's own (unsorted, raw UTF-8) rendering, one per line.
    let path =
        std::env::temp_dir().join(format!("socp-wire-canonical-{}.jsonl", std::process::id()));
    {
        let mut file = std::fs::File::create(&path).unwrap();
        for value in &values {
            let line = serde_json::to_string(value).unwrap();
            assert!(!line.contains('\n'));
            writeln!(file, "{line}").unwrap();
        }
    }
    let output = Command::new("python3")
        .arg("-c")
        .arg(PYTHON_CANONICAL)
        .arg(&path)
        .output()
        .unwrap();
    std::fs::remove_file(&path).ok();
    assert!(
        output.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let python = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = python.lines().collect();
    assert_eq!(lines.len(), COUNT);
    let mut mismatches = 0;
    for (value, expected) in values.iter().zip(&lines) {
        let ours = json::canonical_string(value);
        if ours != *expected {
            mismatches += 1;
            if mismatches <= 5 {
                eprintln!("python {expected}\nours   {ours}\n");
            }
        }
    }
    assert_eq!(
        mismatches, 0,
        "{mismatches} of {COUNT} values differ from Python"
    );
}

proptest! {
    #![proptest_config(Config::with_cases(256))]

    /// Re-encoding canonical output is the identity.
    #[test]
    fn canonical_is_idempotent(value in json_value(false)) {
        let once = json::canonical(&value);
        prop_assert!(once.is_ascii());
        let parsed = json::parse(&once, &Limits::default()).unwrap();
        prop_assert_eq!(json::canonical(&parsed), once);
    }

    /// Parsing serde_json's own rendering gives the same canonical bytes.
    #[test]
    fn canonical_ignores_input_layout(value in json_value(false)) {
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        let parsed = json::parse(pretty.as_bytes(), &Limits::default()).unwrap();
        prop_assert_eq!(json::canonical(&parsed), json::canonical(&value));
    }
}
