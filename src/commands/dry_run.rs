//! `run --dry-run`: the plan in the order a run takes it, each task with its agent,
//! dependencies, timeout, attempts and provider/model (each limit with where it came from),
//! the run's budgets in words, and an estimate of tokens and cost. Reads the same
//! `RunSettings` as the run; makes no network call.

use crate::exec::dispatcher::build_request;
use crate::load::Loaded;
use crate::provider::{local::PromptCounter, Protocol, Usage};
use crate::settings::RunSettings;
use std::fmt::Write as _;

/// Output tokens assumed for a task whose model sets no `max_tokens`.
const ASSUMED_OUTPUT_TOKENS: u64 = 512;

pub fn render(loaded: &Loaded, settings: &RunSettings, counter: Option<&PromptCounter>) -> String {
    let plan = &loaded.plan;
    let tasks = &loaded.spec.tasks;
    let pricing = &settings.pricing;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "🧪 Dry run of `{}` ({}): {} tasks, strategy {}{}",
        loaded.spec.id,
        loaded.spec.name,
        tasks.len(),
        plan.strategy.as_str(),
        if plan.strategy == crate::spec::Strategy::Parallel {
            format!(
                ", at most {} at once",
                plan.phases.first().map(|p| p.concurrency).unwrap_or(1)
            )
        } else {
            String::new()
        }
    );
    let _ = writeln!(out, "🎯 Goal: {}", settings.goal);
    if !settings.config.is_empty() {
        let shown: Vec<String> = settings
            .config
            .iter()
            .map(|(key, value, at)| format!("{key} = {value} ({at})"))
            .collect();
        let _ = writeln!(
            out,
            "⚙️  Config (defaults below flags and the orchestra file): {}",
            shown.join(", ")
        );
    }
    if let (crate::spec::Strategy::Hierarchical, Some(manager)) = (plan.strategy, &loaded.manager) {
        let limits = &loaded.spec.execution.manager;
        let who = manager.agent.as_ref().map_or_else(
            || "the built-in manager".to_string(),
            |a| format!("agent `{}`", a.name),
        );
        let _ = writeln!(
            out,
            "🧭 Manager: {who} on {}: plans the run, reviews each output, writes the final answer",
            manager.model.label()
        );
        let _ = writeln!(
            out,
            "   limits: at most {} worker runs (max_delegations), {} revision(s) per task (max_review_rounds), new tasks {}; below: the declared tasks, which the plan may reorder, reassign or drop",
            limits.max_delegations.unwrap_or(2 * tasks.len().max(1) as u64),
            limits.max_review_rounds,
            if limits.allow_new_tasks { "allowed" } else { "not allowed" }
        );
    }
    if let Some(kind) = loaded
        .spec
        .orchestration_type
        .as_deref()
        .filter(|k| *k != "local")
    {
        let _ = writeln!(
            out,
            "ℹ️  orchestration_type `{kind}` (replicas: {}) is kept in the file; `super` runs the tasks in this process",
            loaded.spec.replicas.map(|r| r.to_string()).unwrap_or_else(|| "-".into())
        );
    }
    if !loaded.inputs.is_empty() {
        let shown: Vec<String> = loaded
            .inputs
            .iter()
            .map(|(name, value)| format!("{name} = {value:?}"))
            .collect();
        let _ = writeln!(out, "📥 Inputs: {}", shown.join(", "));
    }
    let mut total_in = 0u64;
    let mut total_out = 0u64;
    let mut total_cost = 0.0;
    let mut any_unknown_price = false;
    let mut number = 0;
    let no_outputs = vec![None; tasks.len()];
    for (p, phase) in plan.phases.iter().enumerate() {
        if let Some(name) = &phase.name {
            let _ = writeln!(
                out,
                "\n▶ Group {} `{name}`: {}, at most {} at once",
                p + 1,
                phase.strategy.as_str(),
                phase.concurrency
            );
        } else {
            out.push('\n');
        }
        for (w, wave) in plan.waves.iter().enumerate() {
            let in_phase: Vec<usize> = wave
                .iter()
                .copied()
                .filter(|&i| plan.phase_of[i] == p)
                .collect();
            if in_phase.is_empty() {
                continue;
            }
            if plan.strategy != crate::spec::Strategy::Sequential
                && plan.strategy != crate::spec::Strategy::Hierarchical
            {
                let _ = writeln!(out, "  wave {}:", w + 1);
            }
            for i in in_phase {
                number += 1;
                let task = &tasks[i];
                let task_settings = &settings.tasks[i];
                let model = &task_settings.model;
                let deps: Vec<&str> = plan.deps[i]
                    .iter()
                    .map(|&j| tasks[j].name.as_str())
                    .collect();
                let TaskEstimate {
                    input,
                    output,
                    cost,
                    counted,
                } = estimate(loaded, settings, i, counter, &no_outputs);
                any_unknown_price |= !pricing.is_known(model);
                total_in += input;
                total_out += output;
                total_cost += cost;
                let _ = writeln!(
                    out,
                    "  {number}. {} ({}, priority {})",
                    task.name,
                    task.agent,
                    task.priority.as_str()
                );
                let _ = writeln!(
                    out,
                    "     depends on: {}",
                    if deps.is_empty() {
                        "-".to_string()
                    } else {
                        deps.join(", ")
                    }
                );
                let _ = writeln!(
                    out,
                    "     timeout {}s, {} attempt(s), {}",
                    task_settings.timeout.as_secs(),
                    task_settings.attempts,
                    model.label()
                );
                let _ = writeln!(
                    out,
                    "     limits: the timeout from {}; {} retr{} from {}, {}",
                    task_settings.timeout_source.describe(
                        "timeout_seconds",
                        "task_timeout_seconds",
                        "--timeout"
                    ),
                    task_settings.attempts.saturating_sub(1),
                    if task_settings.attempts == 2 {
                        "y"
                    } else {
                        "ies"
                    },
                    task_settings.attempts_source.describe(
                        "retry_count",
                        "retry_strategy",
                        "--retries"
                    ),
                    task_settings.retry.as_str().replace('_', " ")
                );
                if let Some(agent) = loaded.agents.get(&task.agent) {
                    let tools = crate::tools::resolve_task_tools(agent, &loaded.spec, task);
                    if !tools.is_empty() {
                        let _ = writeln!(
                            out,
                            "     {} (loop: at most {} tool turns{})",
                            tools.summary(),
                            tools.settings.max_iterations,
                            tools
                                .settings
                                .max_tool_calls
                                .map(|n| format!(", {n} tool calls"))
                                .unwrap_or_default()
                        );
                    }
                }
                if let Some(schema) = &task_settings.output_schema {
                    let _ = writeln!(
                        out,
                        "     output: JSON from {}, enforced {}\n       schema: {}",
                        schema.origin,
                        model.endpoint.protocol.schema_enforcement(),
                        schema.compact(160)
                    );
                }
                let _ = writeln!(
                    out,
                    "     estimate: {} prompt tokens ({}), up to {output} out, ${cost:.4}",
                    input,
                    if counted {
                        "counted with the model's tokenizer"
                    } else {
                        "estimated"
                    },
                );
            }
        }
    }
    if let Some(ManagerEstimate {
        reviews,
        input,
        output,
        cost,
    }) = manager_estimate(loaded, settings)
    {
        total_in += input;
        total_out += output;
        total_cost += cost;
        let _ = writeln!(
            out,
            "\n🧭 Manager calls: up to {} (1 plan, up to {reviews} reviews, 1 synthesis): about {input} prompt tokens, up to {output} out, ${cost:.4} (in the total below and against the budgets)",
            2 + reviews
        );
    }
    let _ = writeln!(
        out,
        "\n💰 Estimated total: {total_in} prompt tokens, up to {total_out} output tokens, ${total_cost:.4}{}",
        if any_unknown_price { " (some models have no known price; add a `pricing:` block)" } else { "" }
    );
    let _ = writeln!(
        out,
        "🧮 Budget: {}",
        crate::settings::describe_budget(&settings.budget)
    );
    let _ = writeln!(
        out,
        "⏱️  Limits: a server may ask to wait at most {}s (Retry-After); replies over {} MiB fail; retries start after about {} ms",
        settings.limits.max_server_wait.as_secs(),
        settings.limits.max_reply_bytes / (1024 * 1024),
        settings.limits.retry_base.as_millis()
    );
    let _ = writeln!(out, "✅ The orchestra is valid. No call was made.");
    out
}

/// A task's estimated prompt and output tokens and cost.
struct TaskEstimate {
    input: u64,
    output: u64,
    cost: f64,
    /// Counted with the model's own tokenizer (else estimated from the text's length).
    counted: bool,
}

/// Task `i`'s prompt as built for the run (context outputs not yet known: each assumed at
/// its model's `max_tokens`), counted or estimated, with its cost.
/// `outputs`: one `None` per task (no output exists before the run), made once by the caller:
/// a fresh one per task made the estimate of 100,000 tasks quadratic.
fn estimate(
    loaded: &Loaded,
    settings: &RunSettings,
    i: usize,
    counter: Option<&PromptCounter>,
    outputs: &[Option<std::sync::Arc<str>>],
) -> TaskEstimate {
    let tasks = &loaded.spec.tasks;
    let plan = &loaded.plan;
    let task_settings = &settings.tasks[i];
    let model = &task_settings.model;
    let name_of = |j: usize| (tasks[j].name.to_string(), tasks[j].agent.to_string());
    let request = build_request(
        loaded,
        &tasks[i],
        task_settings,
        &plan.context[i],
        &name_of,
        &settings.goal,
        outputs,
    );
    let counted = match (model.endpoint.protocol, counter) {
        (Protocol::Local, Some(counter)) => counter.count(&request),
        _ => None,
    };
    let own = counted.unwrap_or_else(|| request.estimated_input_tokens());
    let context_tokens: u64 = plan.context[i]
        .iter()
        .map(|&j| {
            settings.tasks[j]
                .model
                .max_tokens
                .unwrap_or(ASSUMED_OUTPUT_TOKENS)
        })
        .sum();
    let input = own + context_tokens;
    let output = model.max_tokens.unwrap_or(ASSUMED_OUTPUT_TOKENS);
    let cost = settings.pricing.cost(
        model,
        Usage {
            input_tokens: input,
            output_tokens: output,
        },
    );
    TaskEstimate {
        input,
        output,
        cost,
        counted: counted.is_some(),
    }
}

/// The hierarchical manager's calls: one plan, a review per task per round, one synthesis;
/// each review reads one output, the synthesis all of them.
struct ManagerEstimate {
    reviews: u64,
    input: u64,
    output: u64,
    cost: f64,
}

fn manager_estimate(loaded: &Loaded, settings: &RunSettings) -> Option<ManagerEstimate> {
    let manager = match (loaded.plan.strategy, &loaded.manager) {
        (crate::spec::Strategy::Hierarchical, Some(manager)) => manager,
        _ => return None,
    };
    let n = loaded.spec.tasks.len() as u64;
    let rounds = u64::from(loaded.spec.execution.manager.max_review_rounds);
    let reviews = if rounds == 0 { 0 } else { n * (rounds + 1) };
    let per_output = manager.model.max_tokens.unwrap_or(ASSUMED_OUTPUT_TOKENS);
    let input = (300 + 60 * n)
        + reviews * (200 + ASSUMED_OUTPUT_TOKENS)
        + (100 + n * ASSUMED_OUTPUT_TOKENS);
    let output = (2 + reviews) * per_output;
    let cost = settings.pricing.cost(
        &manager.model,
        Usage {
            input_tokens: input,
            output_tokens: output,
        },
    );
    Some(ManagerEstimate {
        reviews,
        input,
        output,
        cost,
    })
}

/// The dry run as one JSON object (`--dry-run --json`): what `render` says in words, as data.
/// `docs/events.md` documents every field.
pub fn plan_json(
    loaded: &Loaded,
    settings: &RunSettings,
    counter: Option<&PromptCounter>,
) -> serde_json::Value {
    use serde_json::json;
    let plan = &loaded.plan;
    let tasks = &loaded.spec.tasks;
    let pricing = &settings.pricing;
    let mut wave_of = vec![0usize; tasks.len()];
    for (w, wave) in plan.waves.iter().enumerate() {
        for &i in wave {
            wave_of[i] = w + 1;
        }
    }
    let mut total_in = 0u64;
    let mut total_out = 0u64;
    let mut total_cost = 0.0;
    let mut unknown_prices = false;
    let mut listed = Vec::new();
    let mut number = 0;
    let no_outputs = vec![None; tasks.len()];
    for (p, _) in plan.phases.iter().enumerate() {
        for wave in &plan.waves {
            for &i in wave.iter().filter(|&&i| plan.phase_of[i] == p) {
                number += 1;
                let task = &tasks[i];
                let task_settings = &settings.tasks[i];
                let model = &task_settings.model;
                let e = estimate(loaded, settings, i, counter, &no_outputs);
                unknown_prices |= !pricing.is_known(model);
                total_in += e.input;
                total_out += e.output;
                total_cost += e.cost;
                let tools = loaded.agents.get(&task.agent).and_then(|agent| {
                    let tools = crate::tools::resolve_task_tools(agent, &loaded.spec, task);
                    (!tools.is_empty()).then(|| {
                        json!({
                            "summary": tools.summary(),
                            "max_iterations": tools.settings.max_iterations,
                            "max_tool_calls": tools.settings.max_tool_calls,
                        })
                    })
                });
                let schema = task_settings.output_schema.as_ref().map(|schema| {
                    json!({
                        "origin": schema.origin,
                        "enforcement": model.endpoint.protocol.schema_enforcement(),
                        "schema": schema.schema,
                    })
                });
                listed.push(json!({
                    "number": number,
                    "name": task.name.as_str(),
                    "agent": task.agent.as_str(),
                    "priority": task.priority.as_str(),
                    "phase": p + 1,
                    "wave": wave_of[i],
                    "depends_on": plan.deps[i].iter().map(|&j| tasks[j].name.as_str()).collect::<Vec<_>>(),
                    "provider": model.endpoint.provider,
                    "model": model.model,
                    "timeout_seconds": task_settings.timeout.as_secs(),
                    "timeout_source": task_settings.timeout_source.as_str(),
                    "attempts": task_settings.attempts,
                    "attempts_source": task_settings.attempts_source.as_str(),
                    "retry_strategy": task_settings.retry.as_str(),
                    "tools": tools,
                    "output_schema": schema,
                    "estimate": {
                        "prompt_tokens": e.input,
                        "prompt_tokens_counted": e.counted,
                        "max_output_tokens": e.output,
                        "cost_usd": e.cost,
                    },
                }));
            }
        }
    }
    let manager = loaded
        .manager
        .as_ref()
        .filter(|_| plan.strategy == crate::spec::Strategy::Hierarchical)
        .map(|manager| {
            let limits = &loaded.spec.execution.manager;
            let estimate = manager_estimate(loaded, settings);
            if let Some(e) = &estimate {
                total_in += e.input;
                total_out += e.output;
                total_cost += e.cost;
            }
            json!({
                "agent": manager.agent.as_ref().map(|a| a.name.to_string()),
                "provider": manager.model.endpoint.provider,
                "model": manager.model.model,
                "max_delegations": limits.max_delegations.unwrap_or(2 * tasks.len().max(1) as u64),
                "max_review_rounds": limits.max_review_rounds,
                "allow_new_tasks": limits.allow_new_tasks,
                "estimate": estimate.map(|e| json!({
                    "calls": 2 + e.reviews,
                    "prompt_tokens": e.input,
                    "max_output_tokens": e.output,
                    "cost_usd": e.cost,
                })),
            })
        });
    let budget = &settings.budget;
    json!({
        "orchestra": loaded.spec.id.as_str(),
        "name": loaded.spec.name,
        "valid": true,
        "goal": settings.goal,
        "inputs": loaded.inputs,
        "config": settings.config.iter().map(|(key, value, at)| json!({"key": key, "value": value, "origin": at})).collect::<Vec<_>>(),
        "strategy": plan.strategy.as_str(),
        "phases": plan.phases.iter().map(|phase| json!({
            "name": phase.name,
            "strategy": phase.strategy.as_str(),
            "concurrency": phase.concurrency,
        })).collect::<Vec<_>>(),
        "manager": manager,
        "tasks": listed,
        "estimate": {
            "prompt_tokens": total_in,
            "max_output_tokens": total_out,
            "cost_usd": total_cost,
            "unknown_prices": unknown_prices,
        },
        "budget": {
            "max_tokens": budget.max_tokens,
            "max_cost_usd": budget.max_cost_usd,
            "max_llm_calls": budget.max_llm_calls,
            "max_wall_seconds": budget.max_wall_seconds,
            "max_tool_calls": budget.max_tool_calls,
        },
        "limits": {
            "max_server_wait_seconds": settings.limits.max_server_wait.as_secs(),
            "max_reply_bytes": settings.limits.max_reply_bytes,
            "retry_base_ms": settings.limits.retry_base.as_millis() as u64,
        },
    })
}
