//! `agent evaluate NAME`: each scenario of the playbook through the executor on the agent's
//! model, each reply scored (token-overlap F1, or an LLM judge), a table, a JSON report under
//! `orchestra_workspaces/_evaluations/<agent>/`, and exit 1 when too few pass.

use super::{env_lookup, Context, Failure, Outcome, EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::cli::EvaluateArgs;
use crate::diag::Diagnostics;
use crate::exec::budget::{Budget, PriceTable};
use crate::exec::cache::{task_key, CacheEntry, TaskCache};
use crate::exec::executor::{Executor, TaskJob};
use crate::exec::ratelimit::Limiter;
use crate::load::load_agent;
use crate::provider::router::Providers;
use crate::provider::{ChatProvider, ChatRequest, ModelChoice};
use crate::scenarios::{f1, judge_prompts, judge_schema, prompts, Scenario};
use crate::settings::{CallLimits, Source, TaskSettings, DEFAULT_TASK_TIMEOUT};
use crate::spec::{BudgetSpec, RetryStrategy};
use crate::workspace::{write_atomic, TaskRecord};
use serde_json::{json, Value};
use std::sync::Arc;

/// One scenario's result.
struct Scored {
    name: String,
    reply: Option<String>,
    error: Option<String>,
    score: f64,
    reason: Option<String>,
    passed: bool,
    cached: bool,
    tokens_in: u64,
    tokens_out: u64,
}

pub(crate) fn evaluate(context: &Context, args: &EvaluateArgs) -> Outcome {
    let project = context.project()?;
    let entry = match project.find_agent(&args.name) {
        Ok(Some(entry)) => entry,
        Ok(None) => {
            return Err(
                Failure::usage(format!("no agent named `{}` in this project", args.name))
                    .hint("`super agent list` shows the project's agents"),
            )
        }
        Err(ambiguous) => return Err(Failure::usage(ambiguous.to_string())),
    };
    let mut diags = Diagnostics::default();
    let Some(agent) = load_agent(&entry.path, &entry.folder, &mut diags) else {
        context.print_diagnostics(&diags);
        return Ok(EXIT_USAGE);
    };
    let scenarios = crate::scenarios::scenarios(&agent).map_err(|why| {
        Failure::usage(why).hint(format!(
            "add `feature_specifications: {{scenarios: [{{name, input: {{...}}, expected_output: {{...}}}}]}}` under `spec:` in `{}`",
            crate::source::display_path(&entry.path)
        ))
    })?;
    let model = crate::provider::resolve(
        agent.language_model.as_ref(),
        &args.model.overrides(),
        &env_lookup,
    )
    .map_err(|e| {
        Failure::usage(format!("agent `{}`: {}", agent.name, e.message())).hint(e.hint())
    })?;
    if model.endpoint.protocol == crate::provider::Protocol::Local
        && args.replay.is_none()
        && crate::provider::local::unavailable_reason().is_some()
    {
        super::model::ensure_model(false)?;
    }
    let (mode, _) = super::run::call_mode(args.replay.as_deref(), args.record.as_deref())?;
    let limits = CallLimits::from_env(&env_lookup);
    let providers = Providers::new(
        mode,
        limits.max_reply_bytes,
        crate::redact::Redactor::for_models(std::slice::from_ref(&model)),
    )
    .map_err(Failure::refused)?;
    let provider = providers.for_endpoint(&model.endpoint);
    let folder = project
        .root
        .join("orchestra_workspaces")
        .join("_evaluations")
        .join(agent.name.as_str());
    std::fs::create_dir_all(folder.join(".cache"))
        .map_err(|e| Failure::refused(format!("failed to create `{}`: {e}", folder.display())))?;
    crate::workspace::files::redact_writes(crate::redact::Redactor::for_models(
        std::slice::from_ref(&model),
    ));
    let cache = TaskCache::new(&folder.join(".cache"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::refused(format!("failed to start the async runtime: {e}")))?;
    println!(
        "🧪 Evaluating `{}` on {}: {} scenario(s), pass at {} ({})",
        agent.name,
        model.label(),
        scenarios.len(),
        args.threshold,
        match &args.judge {
            Some(judge) => format!("judged by `{judge}`"),
            None => "token-overlap F1 against the expected output".to_string(),
        }
    );
    let scored = runtime.block_on(run_all(&Run {
        agent: &agent,
        model: &model,
        provider,
        cache: &cache,
        limits: &limits,
        args,
        scenarios: &scenarios,
    }));

    let passed = scored.iter().filter(|s| s.passed).count();
    let rate = passed as f64 / scored.len().max(1) as f64;
    let width = scored
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(8)
        .max(8);
    println!("\n{:width$}  score  result", "scenario");
    for s in &scored {
        let result = match (&s.error, s.passed) {
            (Some(error), _) => format!("error: {error}"),
            (None, true) => "pass".to_string(),
            (None, false) => "fail".to_string(),
        };
        let cached = if s.cached { " (cached)" } else { "" };
        shown!("{:width$}  {:.2}   {result}{cached}", s.name, s.score);
        if let Some(reason) = &s.reason {
            shown!("{:width$}         {reason}", "");
        }
    }
    let report = json!({
        "agent": agent.name.as_str(),
        "playbook": entry.path.display().to_string(),
        "provider": model.endpoint.provider,
        "model": model.model,
        "scoring": match &args.judge { Some(judge) => json!({"judge": judge}), None => json!("token_f1") },
        "threshold": args.threshold,
        "min_pass": args.min_pass,
        "pass_rate": rate,
        "passed": rate >= args.min_pass,
        "scenarios": scored.iter().zip(&scenarios).map(|(s, scenario)| json!({
            "name": s.name,
            "input": scenario.input.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect::<serde_json::Map<_, _>>(),
            "expected_output": scenario.expected_text(),
            "reply": s.reply,
            "error": s.error,
            "score": s.score,
            "reason": s.reason,
            "passed": s.passed,
            "cached": s.cached,
            "tokens_in": s.tokens_in,
            "tokens_out": s.tokens_out,
        })).collect::<Vec<_>>(),
    });
    let path = folder.join("evaluation.json");
    let bytes = serde_json::to_vec_pretty(&report).unwrap_or_default();
    write_atomic(&path, &bytes).map_err(|e| {
        Failure::refused(format!(
            "failed to write the report `{}`: {e}",
            path.display()
        ))
    })?;
    println!(
        "\n{} {passed}/{} passed ({:.0}%, needed {:.0}%); report: {}",
        if rate >= args.min_pass { "✅" } else { "❌" },
        scored.len(),
        rate * 100.0,
        args.min_pass * 100.0,
        crate::source::display_path(&path)
    );
    Ok(if rate >= args.min_pass {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}

/// What every scenario shares.
struct Run<'a> {
    agent: &'a crate::spec::AgentSpec,
    model: &'a ModelChoice,
    provider: Arc<dyn ChatProvider>,
    cache: &'a TaskCache,
    limits: &'a CallLimits,
    args: &'a EvaluateArgs,
    scenarios: &'a [Scenario],
}

async fn run_all(run: &Run<'_>) -> Vec<Scored> {
    let budget = Budget::new(BudgetSpec::default());
    let pricing = PriceTable::default();
    let stop = tokio_util::sync::CancellationToken::new();
    let (events, _ignored) = tokio::sync::mpsc::unbounded_channel();
    let executor = Executor {
        budget: &budget,
        pricing: &pricing,
        limits: run.limits,
        stop: &stop,
        events,
    };
    let limiter = Arc::new(Limiter::new(run.model.rpm, run.model.tpm));
    let mut out = Vec::new();
    for scenario in run.scenarios {
        let (system, user) = prompts(run.agent, scenario);
        let request = chat(run.model, system, user.clone());
        let reply = ask(
            run,
            &executor,
            &limiter,
            &scenario.name,
            run.model,
            request,
            None,
        )
        .await;
        let mut scored = Scored {
            name: scenario.name.clone(),
            reply: None,
            error: None,
            score: 0.0,
            reason: None,
            passed: false,
            cached: false,
            tokens_in: 0,
            tokens_out: 0,
        };
        match reply {
            Err(error) => scored.error = Some(error),
            Ok(answer) => {
                scored.cached = answer.cached;
                scored.tokens_in = answer.tokens_in;
                scored.tokens_out = answer.tokens_out;
                match &run.args.judge {
                    None => scored.score = f1(&answer.text, &scenario.expected_text()),
                    Some(judge) => {
                        let judge_model = ModelChoice {
                            model: judge.clone(),
                            temperature: Some(0.0),
                            ..run.model.clone()
                        };
                        let (system, prompt) = judge_prompts(scenario, &user, &answer.text);
                        let verdict = ask(
                            run,
                            &executor,
                            &limiter,
                            &format!("{}.judge", scenario.name),
                            &judge_model,
                            chat(&judge_model, system, prompt),
                            Some(judge_schema()),
                        )
                        .await;
                        match verdict.map(|v| serde_json::from_str::<Value>(&v.text)) {
                            Ok(Ok(value)) => {
                                scored.score =
                                    value["score"].as_f64().unwrap_or(0.0).clamp(0.0, 1.0);
                                scored.reason = value["reason"].as_str().map(str::to_string);
                            }
                            Ok(Err(e)) => {
                                scored.error = Some(format!("the judge's answer is not JSON: {e}"))
                            }
                            Err(error) => scored.error = Some(format!("the judge failed: {error}")),
                        }
                    }
                }
                scored.reply = Some(answer.text);
            }
        }
        scored.passed = scored.error.is_none() && scored.score >= run.args.threshold;
        out.push(scored);
    }
    out
}

fn chat(model: &ModelChoice, system: String, user: String) -> ChatRequest {
    let mut request = ChatRequest::new(model.model.clone(), system, user);
    request.sampling = model.sampling();
    request
}

struct Reply {
    text: String,
    cached: bool,
    tokens_in: u64,
    tokens_out: u64,
}

/// One call through the executor (retries, timeout, repair under a schema), reused from the
/// cache when the same request was answered before.
async fn ask(
    run: &Run<'_>,
    executor: &Executor<'_>,
    limiter: &Arc<Limiter>,
    name: &str,
    model: &ModelChoice,
    mut request: ChatRequest,
    schema: Option<Value>,
) -> Result<Reply, String> {
    let schema = match schema {
        Some(schema) => Some(Arc::new(
            crate::structured::OutputSchema::new(schema, "the judge's schema")
                .map_err(|p| p.message)?,
        )),
        None => None,
    };
    if let Some(schema) = &schema {
        request.messages[0].content.push_str("\n\n");
        request.messages[0].content.push_str(&schema.instruction());
        request.response_format = Some(crate::provider::ResponseFormat {
            name: "answer".into(),
            schema: schema.schema.clone(),
        });
    }
    let key = task_key(model, &request, None, &[], &Default::default());
    if !run.args.no_cache {
        if let Some(entry) = run.cache.get(&key) {
            return Ok(Reply {
                text: entry.output,
                cached: true,
                tokens_in: entry.usage.input_tokens,
                tokens_out: entry.usage.output_tokens,
            });
        }
    }
    let settings = TaskSettings {
        timeout: DEFAULT_TASK_TIMEOUT,
        timeout_source: Source::Default,
        attempts: 1 + RetryStrategy::ExponentialBackoff.default_retries(),
        attempts_source: Source::Default,
        retry: RetryStrategy::ExponentialBackoff,
        model: model.clone(),
        output_schema: schema,
        retry_invalid_output: true,
    };
    let outcome = executor
        .run(TaskJob {
            request,
            settings,
            provider: Arc::clone(&run.provider),
            limiter: Arc::clone(limiter),
            record: TaskRecord::pending(
                name,
                run.agent.name.as_str(),
                &model.endpoint.provider,
                &model.model,
            ),
            tools: Default::default(),
        })
        .await;
    let record = outcome.record;
    let text = outcome.output.ok_or_else(|| {
        record
            .reason
            .clone()
            .unwrap_or_else(|| "the call failed".into())
    })?;
    let entry = CacheEntry {
        key,
        task: name.to_string(),
        provider: model.endpoint.provider.clone(),
        model: model.model.clone(),
        output: text.clone(),
        usage: crate::provider::Usage {
            input_tokens: record.tokens_in,
            output_tokens: record.tokens_out,
        },
    };
    if let Ok((path, bytes)) = run.cache.entry_file(&entry) {
        let written = tokio::task::spawn_blocking(move || write_atomic(&path, &bytes)).await;
        if let Ok(Err(error)) | Err(error) = written.map_err(std::io::Error::other) {
            // The reply still counts; only the next run cannot reuse it.
            eprintln!("warning: failed to cache the reply of `{name}`: {error}");
        }
    }
    Ok(Reply {
        text,
        cached: false,
        tokens_in: record.tokens_in,
        tokens_out: record.tokens_out,
    })
}
