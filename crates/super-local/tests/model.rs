//! Tests with the real model: greedy generation is repeatable, usage counts match the
//! tokenizer, streaming and cancellation behave. They skip when the model file is absent.

use std::ops::ControlFlow;
use std::sync::{Mutex, MutexGuard, OnceLock};

use super_local::{
    default_model_path, ChatMessage, GenerateParams, LocalModel, StopReason, DEFAULT_MODEL_NAME,
};

/// One model shared by the tests of this file (loading it is the slow part), or `None` when
/// the model file is absent.
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
        Some(m) => {
            let mut guard = m.lock().unwrap_or_else(|e| e.into_inner());
            guard.set_stop_on_eos(true);
            Some(guard)
        }
        None => {
            eprintln!(
                "skipping: no model at {} (run scripts/fetch-model.sh)",
                default_model_path().display()
            );
            None
        }
    }
}

fn messages() -> Vec<ChatMessage> {
    vec![
        ChatMessage::system("You are a helpful assistant. Answer briefly."),
        ChatMessage::user("What is the capital of France?"),
    ]
}

#[test]
fn greedy_generation_is_repeatable_and_counted() {
    let Some(mut model) = model() else { return };
    assert_eq!(model.model_name(), DEFAULT_MODEL_NAME);
    let params = GenerateParams {
        max_tokens: 32,
        temperature: 0.0,
        top_p: None,
        seed: 7,
        repeat_penalty: 1.0,
    };
    let msgs = messages();
    let mut streamed = String::new();
    let first = model
        .generate(&msgs, &params, &mut |piece| {
            streamed.push_str(piece);
            ControlFlow::Continue(())
        })
        .expect("generate");
    let second = model
        .generate(&msgs, &params, &mut |_| ControlFlow::Continue(()))
        .expect("generate again");

    eprintln!("output: {:?} ({:?})", first.text, first.stop);
    assert!(!first.text.trim().is_empty());
    assert_eq!(first.text, second.text);
    assert_eq!(first.tokens, second.tokens);
    assert_eq!(streamed, first.text);

    let rendered = model.render_chat(&msgs).expect("render");
    assert!(rendered.ends_with("<|im_start|>assistant\n"));
    assert_eq!(
        first.prompt_tokens,
        model.tokenizer().token_count(&rendered)
    );
    assert_eq!(
        first.prompt_tokens,
        model.count_prompt_tokens(&msgs).expect("count")
    );
    assert_eq!(first.prompt_tokens_dropped, 0);
    assert_eq!(first.completion_tokens, first.tokens.len());
    assert!(first.completion_tokens <= 32);
    assert_eq!(model.tokenizer().decode(&first.tokens), first.text);
    match first.stop {
        StopReason::Eos => assert!(first.completion_tokens < 32),
        StopReason::MaxTokens => assert_eq!(first.completion_tokens, 32),
        other => panic!("unexpected stop {other:?}"),
    }
    assert!(first.time_to_first_token >= first.prompt_duration);
}

#[test]
fn cancellation_and_limits() {
    let Some(mut model) = model() else { return };
    let params = GenerateParams {
        max_tokens: 64,
        ..GenerateParams::default()
    };
    let msgs = vec![
        ChatMessage::system("You are a storyteller."),
        ChatMessage::user("Tell me a long story about a dragon."),
    ];
    let mut calls = 0;
    let out = model
        .generate(&msgs, &params, &mut |_| {
            calls += 1;
            if calls == 3 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .expect("generate");
    assert_eq!(out.stop, StopReason::Cancelled);
    assert_eq!(calls, 3);
    assert!(out.completion_tokens >= 3 && out.completion_tokens < 64);

    model.set_stop_on_eos(false);
    let params = GenerateParams {
        max_tokens: 5,
        temperature: 0.8,
        top_p: Some(0.9),
        seed: 42,
        repeat_penalty: 1.0,
    };
    let a = model
        .generate(&msgs, &params, &mut |_| ControlFlow::Continue(()))
        .expect("sample");
    let b = model
        .generate(&msgs, &params, &mut |_| ControlFlow::Continue(()))
        .expect("sample again");
    assert_eq!(a.stop, StopReason::MaxTokens);
    assert_eq!(a.completion_tokens, 5);
    assert_eq!(a.tokens, b.tokens, "same seed, same sample");

    let zero = GenerateParams {
        max_tokens: 0,
        ..GenerateParams::default()
    };
    let out = model
        .generate(&msgs, &zero, &mut |_| ControlFlow::Continue(()))
        .expect("zero");
    assert_eq!(
        (out.completion_tokens, out.stop),
        (0, StopReason::MaxTokens)
    );
}

#[test]
fn render_chat_with_and_without_system_message() {
    let Some(model) = model() else { return };
    assert!(!model.chat_template().is_fallback());
    let with = model.render_chat(&messages()).expect("render");
    assert_eq!(
        with,
        "<|im_start|>system\nYou are a helpful assistant. Answer briefly.<|im_end|>\n\
         <|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    );
    let without = model
        .render_chat(&[ChatMessage::user("hi")])
        .expect("render");
    assert!(without.starts_with("<|im_start|>system\nYou are a helpful AI assistant named SmolLM"));
    assert_eq!(model.context_length(), 8192);
}

#[test]
fn missing_model_error_says_how_to_get_it() {
    let path = std::env::temp_dir().join("super-local-no-such-model.gguf");
    let err = LocalModel::load(&path).expect_err("no file");
    let msg = err.to_string();
    assert!(
        msg.starts_with("failed to find the local model at "),
        "{msg}"
    );
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("scripts/fetch-model.sh") && msg.contains("super model pull"));
}

#[test]
fn converts_in_memory_when_the_cache_cannot_be_written() {
    let source = default_model_path();
    if !source.exists() {
        eprintln!("skipping: no model at {}", source.display());
        return;
    }
    // A symlink to the model in a scratch directory, with a directory squatting on the cache
    // path so the cache can be neither read nor renamed into place (file permissions would
    // not stop root).
    let dir = std::env::temp_dir().join(format!("super-local-ro-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let link = dir.join("model.gguf");
    std::os::unix::fs::symlink(&source, &link).expect("symlink");
    std::fs::create_dir(super_local::convert::converted_path(&link)).expect("squat");
    super_local::set_threads(1);
    let loaded = LocalModel::load(&link);
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .expect("read dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    let model = loaded.expect("load in memory");
    assert_eq!(
        model.load_info().origin,
        super_local::convert::WeightsOrigin::InMemory
    );
    assert_eq!(model.load_info().requantized_tensors, 210);
    assert_eq!(
        leftovers.len(),
        2,
        "temporary file left behind: {leftovers:?}"
    );
}

#[test]
fn a_repeat_penalty_keeps_greedy_output_repeatable() {
    let Some(mut model) = model() else { return };
    let params = GenerateParams {
        max_tokens: 24,
        repeat_penalty: 1.2,
        ..GenerateParams::default()
    };
    let msgs = messages();
    let a = model
        .generate(&msgs, &params, &mut |_| ControlFlow::Continue(()))
        .expect("first");
    let b = model
        .generate(&msgs, &params, &mut |_| ControlFlow::Continue(()))
        .expect("second");
    assert!(!a.text.trim().is_empty());
    assert_eq!(a.text, b.text);
    assert_eq!(a.completion_tokens, a.tokens.len());
}

#[test]
fn the_metadata_only_counter_agrees_with_the_model() {
    let Some(model) = model() else { return };
    let counter =
        super_local::PromptCounter::from_gguf_file(&default_model_path()).expect("counter");
    let msgs = messages();
    assert_eq!(
        counter.count(&msgs).expect("count"),
        model.count_prompt_tokens(&msgs).expect("model count")
    );
}
