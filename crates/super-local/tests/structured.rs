//! Constrained decoding with the real model: for a dozen schemas and prompts, the greedy reply
//! parses with serde_json and validates with the `jsonschema` crate, ends within
//! `max_tokens`, and stops by itself. Without the model file the tests print `SKIPPED: ...`
//! and pass, except under `CI`, where they fail.

use std::ops::ControlFlow;
use std::sync::{Mutex, MutexGuard, OnceLock};

use serde_json::{json, Value};
use super_local::{
    default_model_path, ChatMessage, ConstraintError, GenerateParams, LocalError, LocalModel,
    StopReason,
};

fn model() -> Option<MutexGuard<'static, LocalModel>> {
    static MODEL: OnceLock<Option<Mutex<LocalModel>>> = OnceLock::new();
    let model = MODEL.get_or_init(|| {
        let path = default_model_path();
        if !path.exists() {
            return None;
        }
        super_local::set_threads(1);
        match LocalModel::load(&path) {
            Ok(m) => Some(Mutex::new(m)),
            Err(e) => panic!("{e}"),
        }
    });
    match model {
        Some(m) => Some(m.lock().unwrap_or_else(|e| e.into_inner())),
        None => {
            let why = format!(
                "no model at {} (run scripts/fetch-model.sh)",
                default_model_path().display()
            );
            if std::env::var_os("CI").is_some() {
                panic!("{why}");
            }
            eprintln!("SKIPPED: {why}");
            None
        }
    }
}

/// Generate greedily under `schema` and check the reply: it parses, validates, and the
/// generation stopped because the document was done.
fn check(model: &mut LocalModel, schema: &Value, prompt: &str, max_tokens: usize) -> Value {
    let constraint = model
        .compile_constraint(schema)
        .unwrap_or_else(|e| panic!("{e}"));
    let params = GenerateParams {
        max_tokens,
        repeat_penalty: 1.1,
        ..GenerateParams::default()
    };
    let messages = [
        ChatMessage::system("You answer with JSON only."),
        ChatMessage::user(prompt),
    ];
    let mut streamed = String::new();
    let out = model
        .generate_json(&messages, &params, &constraint, &mut |p| {
            streamed.push_str(p);
            ControlFlow::Continue(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(streamed, out.text);
    assert!(out.completion_tokens <= max_tokens);
    let value: Value = serde_json::from_str(&out.text)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?} for {schema}", out.text));
    let validator = jsonschema::validator_for(schema).unwrap_or_else(|e| panic!("{e}"));
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "{:?} is invalid for {schema}: {errors:?}",
        out.text
    );
    assert_eq!(out.stop, StopReason::Eos, "{:?}", out.text);
    eprintln!("{} tokens: {}", out.completion_tokens, out.text);
    value
}

#[test]
fn replies_validate_for_a_dozen_schemas() {
    let Some(mut model) = model() else { return };
    let cases: Vec<(Value, &str, usize)> = vec![
        (
            json!({"type":"object","properties":{"city":{"type":"string","maxLength":40},"country":{"type":"string","maxLength":40}},"required":["city","country"]}),
            "Name the capital of France and its country.",
            64,
        ),
        (
            json!({"type":"object","properties":{"name":{"type":"string","maxLength":30},"age":{"type":"integer","minimum":0,"maximum":150},"student":{"type":"boolean"}},"required":["name","age","student"]}),
            "Describe a person called Alice, aged 21, who is a student.",
            64,
        ),
        (
            json!({"type":"array","items":{"type":"string","maxLength":20},"minItems":3,"maxItems":3}),
            "List three fruits.",
            48,
        ),
        (
            json!({"type":"object","properties":{"sentiment":{"enum":["positive","negative","neutral"]},"confidence":{"type":"number","minimum":0,"maximum":1}},"required":["sentiment","confidence"]}),
            "Classify the sentiment of: 'I love this phone, the battery lasts forever.'",
            48,
        ),
        (
            json!({"type":"object","properties":{"title":{"type":"string","maxLength":60},"author":{"type":"object","properties":{"first":{"type":"string","maxLength":20},"last":{"type":"string","maxLength":20}},"required":["first","last"]},"year":{"type":"integer","minimum":1400,"maximum":2030}},"required":["title","author","year"]}),
            "Give the book 'Nineteen Eighty-Four' with its author and publication year.",
            96,
        ),
        (
            json!({"type":"array","items":{"type":"integer","minimum":1,"maximum":100},"minItems":1,"maxItems":6}),
            "Give the first five prime numbers as a JSON array.",
            40,
        ),
        (
            json!({"anyOf":[
                {"type":"object","properties":{"tool":{"const":"calculator"},"arguments":{"type":"object","properties":{"expression":{"type":"string","maxLength":40}},"required":["expression"]}},"required":["tool","arguments"]},
                {"type":"object","properties":{"final_answer":{"type":"string","maxLength":80}},"required":["final_answer"]}
            ]}),
            "You can call the tool `calculator` with an expression, or give a final answer. What is 12 * 7?",
            96,
        ),
        (
            json!({"type":"object","properties":{"steps":{"type":"array","items":{"type":"string","maxLength":50},"minItems":2,"maxItems":4}},"required":["steps"]}),
            "Give the steps to make tea.",
            160,
        ),
        (
            json!({"type":"object","properties":{"done":{"type":"boolean"},"reason":{"type":["string","null"],"maxLength":40}},"required":["done","reason"]}),
            "Is the task 'write a haiku' finished? It is not started yet.",
            48,
        ),
        (
            json!({"$defs":{"point":{"type":"object","properties":{"x":{"type":"number","minimum":-100,"maximum":100},"y":{"type":"number","minimum":-100,"maximum":100}},"required":["x","y"]}},
                   "type":"object","properties":{"from":{"$ref":"#/$defs/point"},"to":{"$ref":"#/$defs/point"}},"required":["from","to"]}),
            "Give a line segment from the origin to the point (3, 4).",
            64,
        ),
        (
            json!({"type":"object","properties":{"language":{"enum":["rust","python","go"]},"code":{"type":"string","minLength":5,"maxLength":120}},"required":["language","code"]}),
            "Write a hello world program in Python.",
            96,
        ),
        (
            json!({"type":"object","properties":{"priority":{"type":"integer","minimum":1,"maximum":5},"labels":{"type":"array","items":{"enum":["bug","feature","docs"]},"maxItems":3},"summary":{"type":"string","maxLength":60}},"required":["priority","labels","summary"]}),
            "Triage this issue: 'The app crashes when I click save.'",
            80,
        ),
    ];
    for (schema, prompt, max_tokens) in &cases {
        check(&mut model, schema, prompt, *max_tokens);
    }
}

#[test]
fn a_tight_budget_still_closes_the_document() {
    let Some(mut model) = model() else { return };
    let schema = json!({"type":"object","properties":{"story":{"type":"string"},"moral":{"type":"string"}},"required":["story","moral"]});
    // The shortest document `{"story":"","moral":""}` is 23 bytes; 24 tokens leave the
    // model almost no room, so the budget rule must force the closing path.
    let v = check(&mut model, &schema, "Tell a long story about a dragon.", 24);
    assert!(v.get("moral").is_some());
    let constraint = model
        .compile_constraint(&schema)
        .unwrap_or_else(|e| panic!("{e}"));
    let params = GenerateParams {
        max_tokens: 22,
        ..GenerateParams::default()
    };
    let err = model
        .generate_json(
            &[ChatMessage::user("hi")],
            &params,
            &constraint,
            &mut |_| ControlFlow::Continue(()),
        )
        .err();
    assert!(
        matches!(
            err,
            Some(LocalError::Constraint(ConstraintError::Budget {
                needed: 23,
                max_tokens: 22
            }))
        ),
        "{err:?}"
    );
}

#[test]
fn unsupported_schemas_fail_before_generating() {
    let Some(model) = model() else { return };
    let err = model
        .compile_constraint(
            &json!({"type":"object","properties":{"when":{"type":"string","format":"date-time"}}}),
        )
        .err();
    let msg = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        msg.contains("`/properties/when/format`") && msg.contains("unsupported keyword"),
        "{msg}"
    );
}

/// Masks repeat inside a string, so they come from the cache (the same `Arc`), and a fresh
/// trie walk over the whole vocabulary stays far below one token's forward pass. Needs only
/// the tokenizer (GGUF metadata).
#[test]
fn masks_are_cached_inside_strings() {
    let path = default_model_path();
    if !path.exists() {
        if std::env::var_os("CI").is_some() {
            panic!("no model at {}", path.display());
        }
        eprintln!("SKIPPED: no model at {}", path.display());
        return;
    }
    let tokenizer = super_local::Tokenizer::from_gguf_file(&path).unwrap_or_else(|e| panic!("{e}"));
    let schema =
        json!({"type":"object","properties":{"text":{"type":"string"}},"required":["text"]});
    let start = std::time::Instant::now();
    let c = std::sync::Arc::new(
        super_local::JsonConstraint::compile(&schema, &tokenizer).unwrap_or_else(|e| panic!("{e}")),
    );
    let compile = start.elapsed();
    let mut m = c.matcher(100).unwrap_or_else(|e| panic!("{e}"));
    for piece in ["{\"", "text", "\":", " \""] {
        let ids = tokenizer.encode(piece);
        for id in ids {
            assert!(m.accept(id), "{piece:?} rejected");
        }
    }
    let t = std::time::Instant::now();
    let first = m.allowed();
    let walk = t.elapsed();
    // Inside the string almost every token is allowed.
    assert!(first.count() > 40_000, "{}", first.count());
    let quote = tokenizer.encode("\"")[0];
    assert!(first.allows(quote));
    for word in ["Hello", " world", ",", " and", " more"] {
        for id in tokenizer.encode(word) {
            assert!(m.accept(id));
        }
        let t = std::time::Instant::now();
        let again = m.allowed();
        assert!(
            std::sync::Arc::ptr_eq(&first, &again),
            "not cached after {word:?}"
        );
        assert!(t.elapsed() < walk);
    }
    eprintln!(
        "compile {compile:?}, first string mask {walk:?} ({} tokens allowed)",
        first.count()
    );
}
