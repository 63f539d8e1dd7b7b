//! Benchmark of the embedded model: one load, one generation, figures printed as one JSON
//! object on stdout (for scripts).
//!
//! ```text
//! cargo run --release -p super-local --example bench -- MODEL PROMPT_TOKENS GEN_TOKENS THREADS [--fresh] [--schema FILE|builtin]
//! ```
//! `--fresh` deletes the Q8_0 cache first so the load includes the conversion. End tokens are
//! ignored so exactly GEN_TOKENS are generated (greedy). `--schema` constrains the reply to a
//! JSON Schema (a JSON file, or `builtin`: a story object with a title and eight paragraphs),
//! so the figures include the mask; the reply then ends when the document is complete (at
//! most GEN_TOKENS tokens), and `constraint_compile_ms` is reported.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Instant;

use super_local::convert::{converted_path, WeightsOrigin};
use super_local::{ChatMessage, GenerateParams, LocalModel};

const FILLER: &str = "The quick brown fox jumps over the lazy dog while the river runs \
    past old stone bridges, and the wind carries stories from distant hills to the town.";

/// The `--schema builtin` schema: long enough to fill GEN_TOKENS with string content.
const BUILTIN_SCHEMA: &str = r#"{"type":"object","properties":{
    "title":{"type":"string","maxLength":80},
    "paragraphs":{"type":"array","items":{"type":"string"},"minItems":8,"maxItems":8}},
    "required":["title","paragraphs"]}"#;

fn usage() -> ! {
    eprintln!(
        "usage: bench MODEL PROMPT_TOKENS GEN_TOKENS THREADS [--fresh] [--schema FILE|builtin]"
    );
    std::process::exit(2)
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize) -> T {
    args.get(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| usage())
}

/// Messages whose rendered prompt has about `target` tokens (at least the bare minimum).
fn prompt_of(
    model: &LocalModel,
    target: usize,
) -> Result<Vec<ChatMessage>, super_local::LocalError> {
    let words: Vec<&str> = FILLER.split(' ').cycle().take(target * 2 + 8).collect();
    let build = |n: usize| {
        vec![
            ChatMessage::system("You are a helpful assistant."),
            ChatMessage::user(format!(
                "Continue this story at length: {}",
                words[..n].join(" ")
            )),
        ]
    };
    // Binary search on the number of filler words.
    let (mut lo, mut hi) = (0usize, words.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if model.count_prompt_tokens(&build(mid))? <= target {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Ok(build(lo))
}

fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        usage();
    }
    let path = PathBuf::from(&args[0]);
    let prompt_tokens: usize = arg(&args, 1);
    let gen_tokens: usize = arg(&args, 2);
    let threads: usize = arg(&args, 3);
    let fresh = args.iter().skip(4).any(|a| a == "--fresh");
    let schema: Option<serde_json::Value> = match args.iter().skip(4).position(|a| a == "--schema")
    {
        None => None,
        Some(i) => {
            let Some(src) = args.get(4 + i + 1) else {
                usage()
            };
            let text = if src == "builtin" {
                BUILTIN_SCHEMA.to_owned()
            } else {
                std::fs::read_to_string(src)?
            };
            Some(serde_json::from_str(&text)?)
        }
    };

    super_local::set_threads(threads);
    if fresh {
        let _ = std::fs::remove_file(converted_path(&path));
    }
    let t0 = Instant::now();
    let mut model = LocalModel::load(&path)?;
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    let origin = match &model.load_info().origin {
        WeightsOrigin::Source => "source",
        WeightsOrigin::Cache(_) => "cache",
        WeightsOrigin::Converted(_) => "converted",
        WeightsOrigin::InMemory => "in-memory",
    };
    let rss_after_load = peak_rss_kb();

    let messages = prompt_of(&model, prompt_tokens)?;
    model.set_stop_on_eos(false);
    let params = GenerateParams {
        max_tokens: gen_tokens,
        temperature: 0.0,
        top_p: None,
        seed: 0,
        repeat_penalty: 1.0,
    };
    let (out, compile_ms) = match &schema {
        None => (
            model.generate(&messages, &params, &mut |_| ControlFlow::Continue(()))?,
            None,
        ),
        Some(schema) => {
            let t = Instant::now();
            let constraint = model.compile_constraint(schema)?;
            let compile_ms = round(t.elapsed().as_secs_f64() * 1e3);
            let out = model.generate_json(&messages, &params, &constraint, &mut |_| {
                ControlFlow::Continue(())
            })?;
            (out, Some(compile_ms))
        }
    };

    let json = serde_json::json!({
        "model": model.model_name(),
        "model_path": path.display().to_string(),
        "threads": super_local::threads(),
        "load_ms": round(load_ms),
        "load_origin": origin,
        "requantized_tensors": model.load_info().requantized_tensors,
        "padded_for_vnni": model.load_info().padded_for_vnni,
        "prompt_tokens": out.prompt_tokens,
        "prompt_ms": round(out.prompt_duration.as_secs_f64() * 1e3),
        "prompt_tokens_per_s": round(out.prompt_tokens_per_second()),
        "completion_tokens": out.completion_tokens,
        "time_to_first_token_ms": round(out.time_to_first_token.as_secs_f64() * 1e3),
        "generation_ms": round(out.generation_duration.as_secs_f64() * 1e3),
        "generation_tokens_per_s": round(out.generation_tokens_per_second()),
        "stop": format!("{:?}", out.stop),
        "schema": schema.is_some(),
        "constraint_compile_ms": compile_ms,
        "peak_rss_after_load_kb": rss_after_load,
        "peak_rss_kb": peak_rss_kb(),
    });
    println!("{json}");
    Ok(())
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}
