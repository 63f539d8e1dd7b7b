//! The hierarchical strategy's manager: it plans (which declared task runs, in what order, by
//! which agent, with what instructions, and when allowed which sub-tasks to add), reviews each
//! worker's output (`accept` or `revise` with feedback), and writes the final answer. Every
//! decision is JSON under a schema (structured outputs: native per provider, constrained
//! decoding on the embedded model, one repair call), every call goes through the executor
//! (budgets, rate limits, retries, records), is cached for `--resume`, and is written under
//! `task_outputs/_manager/`. Bounded: the plan has at most `max_delegations` assignments,
//! revisions count against it and against `max_review_rounds`; an unusable plan falls back to
//! the declared DAG, an unusable verdict accepts, and both are recorded.

use super::cache::{sha256_hex, CacheEntry, TaskCache};
use super::executor::{Executor, TaskJob, TaskToolbox};
use super::ratelimit::Limiter;
use crate::load::{Loaded, ManagerAgent};
use crate::plan::{Plan, PlanOptions};
use crate::provider::{ChatProvider, ChatRequest, Message};
use crate::settings::{Reuse, RunSettings, TaskSettings};
use crate::spec::{Strategy, TaskRef, TaskSpec};
use crate::structured::OutputSchema;
use crate::workspace::{
    AssignmentRecord, ManagerRecord, ReviewRecord, TaskRecord, TaskStatus, Workspace,
};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The manager's persona when the file names no manager agent.
pub(crate) const BUILT_IN_PERSONA: &str = "You are the manager of a team of AI agents. You plan who does what and in which order, you review each result against the goal and ask for a revision only when it clearly misses what was asked, and you write the final answer from the team's accepted work. You keep to the declared tasks and agents.";

/// The folder of the manager's files, inside `task_outputs/`.
const FOLDER: &str = "_manager";

/// What the manager decided for one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Accept,
    Revise(String),
}

/// A plan applied: the orchestra as the workers will run it.
pub(crate) struct Applied {
    pub loaded: Loaded,
    pub settings: Vec<TaskSettings>,
}

/// The manager of one run.
pub(crate) struct Hierarchy {
    agent: ManagerAgent,
    provider: Arc<dyn ChatProvider>,
    /// The manager's endpoint's limiter, shared with workers on it once the run starts.
    limiter: Mutex<Arc<Limiter>>,
    workspace: Workspace,
    cache: TaskCache,
    reuse: Reuse,
    goal: String,
    /// The run's inputs, filled into the descriptions the manager reads.
    inputs: crate::inputs::InputValues,
    max_delegations: u64,
    max_review_rounds: u32,
    allow_new_tasks: bool,
    /// The manager's own call settings (timeout, attempts, retry) from the file.
    call_settings: TaskSettings,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    record: ManagerRecord,
    /// Worker runs caused so far: the plan's assignments, then each revision.
    delegations: u64,
    /// The plan step's span: the workers' tasks are its children in the trace.
    plan_span: Option<opentelemetry::Context>,
}

impl Hierarchy {
    /// The manager of `loaded` (hierarchical, with its manager resolved), or `None`.
    pub fn new(
        loaded: &Loaded,
        settings: &RunSettings,
        provider: Arc<dyn ChatProvider>,
        workspace: &Workspace,
    ) -> Option<Hierarchy> {
        let agent = loaded.manager.clone()?;
        let template = settings.tasks.first()?.clone();
        let manager = &loaded.spec.execution.manager;
        let tasks = loaded.spec.tasks.len() as u64;
        let record = ManagerRecord {
            agent: agent
                .agent
                .as_ref()
                .map_or_else(|| "built-in".to_string(), |a| a.name.to_string()),
            provider: agent.model.endpoint.provider.clone(),
            model: agent.model.model.clone(),
            ..ManagerRecord::default()
        };
        Some(Hierarchy {
            call_settings: TaskSettings {
                model: agent.model.clone(),
                output_schema: None,
                retry_invalid_output: false,
                ..template
            },
            agent,
            provider,
            limiter: Mutex::new(Arc::new(Limiter::new(None, None))),
            workspace: workspace.clone(),
            cache: TaskCache::new(&workspace.path(crate::workspace::files::CACHE)),
            reuse: settings.reuse,
            goal: settings.goal.clone(),
            inputs: loaded.inputs.clone(),
            max_delegations: manager.max_delegations.unwrap_or(2 * tasks.max(1)),
            max_review_rounds: manager.max_review_rounds,
            allow_new_tasks: manager.allow_new_tasks,
            state: Mutex::new(State {
                record,
                delegations: 0,
                plan_span: None,
            }),
        })
    }

    /// The plan step's span, the parent of the workers' task spans.
    pub fn plan_span(&self) -> Option<opentelemetry::Context> {
        self.lock().plan_span.clone()
    }

    /// Shares the run's limiter of the manager's endpoint (workers on it wait with it).
    pub fn share_limiter(
        &self,
        limits: &super::ratelimit::RateLimits,
        rate: crate::spec::orchestra::RateLimitSpec,
    ) {
        let model = &self.agent.model;
        let limiter = limits.limiter(
            &model.endpoint,
            model.rpm.or(rate.rpm),
            model.tpm.or(rate.tpm),
        );
        *self.limiter.lock().unwrap_or_else(|p| p.into_inner()) = limiter;
    }

    /// Whether the manager reviews outputs (`max_review_rounds` above 0).
    pub fn reviews(&self) -> bool {
        self.max_review_rounds > 0
    }

    /// The manager's record so far (for `run.json`).
    pub fn record(&self) -> ManagerRecord {
        self.lock().record.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fallback(&self, what: String) {
        self.lock().record.fallbacks.push(what);
    }

    /// The system prompt: the manager agent's persona, or the built-in one.
    fn system(&self) -> String {
        match &self.agent.agent {
            Some(agent) => {
                let mut text = crate::prompt::persona(agent);
                text.push_str("\n\n");
                text.push_str(BUILT_IN_PERSONA);
                text
            }
            None => BUILT_IN_PERSONA.to_string(),
        }
    }

    /// Plans, checks the plan (one repair when it is unusable) and applies it; an unusable
    /// plan falls back to the declared tasks, recorded.
    pub async fn plan(
        &self,
        executor: &Executor<'_>,
        loaded: &Loaded,
        settings: &[TaskSettings],
    ) -> Applied {
        let schema = match OutputSchema::new(self.plan_schema(loaded), "the manager's plan schema")
        {
            Ok(schema) => Arc::new(schema),
            Err(problem) => {
                self.fallback(format!(
                    "the plan schema could not be built ({}); ran the declared tasks",
                    problem.message
                ));
                return declared(loaded, settings);
            }
        };
        let request = self.request(self.plan_prompt(loaded));
        let mut conversation = request.clone();
        let mut reply = self.call(executor, "plan", &request, Some(&schema)).await;
        let mut repaired = reply.as_ref().is_ok_and(|r| r.repaired);
        loop {
            let problem = match &reply {
                Err(why) => why.clone(),
                Ok(answer) => match self.check(loaded, settings, &answer.value) {
                    Ok(applied) => {
                        self.write(
                            "plan.json",
                            serde_json::to_string_pretty(&answer.value).unwrap_or_default(),
                        )
                        .await;
                        return applied;
                    }
                    Err(why) => {
                        self.write(
                            "plan_rejected.json",
                            serde_json::to_string_pretty(&answer.value).unwrap_or_default(),
                        )
                        .await;
                        why
                    }
                },
            };
            if repaired || reply.is_err() {
                self.fallback(format!(
                    "the manager's plan was unusable ({problem}); ran the declared tasks in the file's order"
                ));
                let mut state = self.lock();
                state.delegations = loaded.spec.tasks.len() as u64;
                state.record.plan = loaded
                    .spec
                    .tasks
                    .iter()
                    .map(|t| AssignmentRecord {
                        task: t.name.to_string(),
                        agent: t.agent.to_string(),
                        ..AssignmentRecord::default()
                    })
                    .collect();
                drop(state);
                return declared(loaded, settings);
            }
            // One repair: the plan parsed but does not fit the orchestra.
            repaired = true;
            if let Ok(answer) = &reply {
                conversation
                    .messages
                    .push(Message::assistant(answer.text.clone(), Vec::new()));
            }
            conversation.messages.push(Message::user(format!(
                "This plan cannot be used: {problem}\nReply with a corrected plan."
            )));
            reply = self
                .call(executor, "plan_repair", &conversation, Some(&schema))
                .await;
        }
    }

    /// The manager's review of one output: accept, or revise with feedback. `round` counts
    /// from 1. A revision the limits do not allow, or an unusable verdict, accepts.
    pub async fn review(
        &self,
        executor: &Executor<'_>,
        task: &TaskSpec,
        output: &str,
        round: u32,
    ) -> Verdict {
        if self.max_review_rounds == 0 {
            return Verdict::Accept;
        }
        let schema = match OutputSchema::new(
            json!({"type": "object", "properties": {"verdict": {"enum": ["accept", "revise"]}, "feedback": {"type": "string", "maxLength": 600}}, "required": ["verdict", "feedback"]}),
            "the manager's verdict schema",
        ) {
            Ok(schema) => Arc::new(schema),
            Err(_) => return Verdict::Accept,
        };
        let prompt = format!(
            "Goal: {}\n\nTask `{}` (agent `{}`): {}\n{}\n## Its output\n\n{}\n\nReview this output against the task and the goal. Answer `accept`, or `revise` with feedback saying exactly what to change.",
            self.goal,
            task.name,
            task.agent,
            self.filled(&task.description),
            task.expected_output
                .as_deref()
                .map(|e| format!("Expected output: {}\n", self.filled(e)))
                .unwrap_or_default(),
            output.trim_end()
        );
        let name = format!("review_{}_{round}", task.name);
        let request = self.request(prompt);
        let (verdict, feedback) = match self.call(executor, &name, &request, Some(&schema)).await {
            Ok(answer) => {
                self.write(
                    &format!("{name}.json"),
                    serde_json::to_string_pretty(&answer.value).unwrap_or_default(),
                )
                .await;
                (
                    answer.value["verdict"]
                        .as_str()
                        .unwrap_or("accept")
                        .to_string(),
                    answer.value["feedback"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            }
            Err(why) => {
                self.fallback(format!(
                    "the review of `{}` (round {round}) was unusable ({why}); its output was accepted",
                    task.name
                ));
                ("accept".to_string(), String::new())
            }
        };
        let mut state = self.lock();
        let not_obeyed = if verdict != "revise" {
            None
        } else if round > self.max_review_rounds {
            Some(format!(
                "max_review_rounds {} reached",
                self.max_review_rounds
            ))
        } else if state.delegations >= self.max_delegations {
            Some(format!("max_delegations {} reached", self.max_delegations))
        } else {
            None
        };
        state.record.reviews.push(ReviewRecord {
            task: task.name.to_string(),
            round,
            verdict: verdict.clone(),
            feedback: feedback.clone(),
            not_obeyed: not_obeyed.clone(),
        });
        if verdict == "revise" && not_obeyed.is_none() {
            state.delegations += 1;
            Verdict::Revise(feedback)
        } else {
            Verdict::Accept
        }
    }

    /// The final answer from the accepted outputs (in the order the tasks ran), or `None` when
    /// the manager could not write it (the run's usual final result stands, recorded).
    pub async fn synthesize(
        &self,
        executor: &Executor<'_>,
        outputs: &[(String, String, String)],
    ) -> Option<String> {
        if outputs.is_empty() {
            return None;
        }
        let mut prompt = format!("Goal: {}\n\nYour team's accepted work:\n", self.goal);
        for (task, agent, output) in outputs {
            prompt.push_str(&format!(
                "\n## `{task}` ({agent})\n\n{}\n",
                output.trim_end()
            ));
        }
        prompt.push_str("\nWrite the final answer to the goal from this work: complete, consistent, and in one piece.");
        let request = self.request(prompt);
        match self.call(executor, "synthesis", &request, None).await {
            Ok(answer) => Some(answer.text),
            Err(why) => {
                self.fallback(format!(
                    "the manager's synthesis failed ({why}); the final result is the last tasks' outputs"
                ));
                None
            }
        }
    }

    fn request(&self, user: String) -> ChatRequest {
        let model = &self.agent.model;
        let mut request = ChatRequest::new(model.model.clone(), self.system(), user);
        request.sampling = model.sampling();
        request
    }

    /// One manager decision through the executor (one repair call for an invalid reply),
    /// reused from the cache when the run resumes, its prompt and record kept.
    async fn call(
        &self,
        executor: &Executor<'_>,
        name: &str,
        request: &ChatRequest,
        schema: Option<&Arc<OutputSchema>>,
    ) -> Result<Answer, String> {
        let mut request = request.clone();
        if let Some(schema) = schema {
            request.messages[0].content.push_str("\n\n");
            request.messages[0].content.push_str(&schema.instruction());
            request.response_format = Some(crate::provider::ResponseFormat {
                name: "answer".into(),
                schema: schema.schema.clone(),
            });
        }
        self.write(
            &format!("{name}_prompt.md"),
            crate::prompt::render_request(&format!("manager: {name}"), &request),
        )
        .await;
        let key = sha256_hex(
            json!({"manager": name, "request": request})
                .to_string()
                .as_bytes(),
        );
        let parse = |text: &str| -> Result<Value, String> {
            match schema {
                Some(schema) => schema.check_reply(text),
                None => Ok(Value::Null),
            }
        };
        let agent_name = self.lock().record.agent.clone();
        let mut record = TaskRecord::pending(
            &format!("manager.{name}"),
            &agent_name,
            &self.agent.model.endpoint.provider,
            &self.agent.model.model,
        );
        record.status = TaskStatus::Running;
        record.started_unix_ms = Some(super::ids::now_unix_ms());
        record.cache_key = Some(key.clone());
        if matches!(self.reuse, Reuse::Resume | Reuse::From(_)) {
            let cache = self.cache.clone();
            let lookup = key.clone();
            let cached = tokio::task::spawn_blocking(move || cache.get(&lookup))
                .await
                .ok()
                .flatten();
            if let Some(entry) = cached {
                if let Ok(value) = parse(&entry.output) {
                    tracing::debug!(step = %name, "cache hit: the manager's decision is reused");
                    record.status = TaskStatus::Cached;
                    self.lock().record.calls.push(record);
                    return Ok(Answer {
                        text: entry.output,
                        value,
                        repaired: false,
                    });
                }
            }
        }
        let mut settings = self.call_settings.clone();
        settings.output_schema = schema.cloned();
        let limiter = Arc::clone(&self.limiter.lock().unwrap_or_else(|p| p.into_inner()));
        let span = crate::telemetry::spans::manager_step(name, &agent_name);
        let outcome = tracing::Instrument::instrument(
            executor.run(TaskJob {
                request,
                settings,
                provider: Arc::clone(&self.provider),
                limiter,
                record,
                tools: TaskToolbox::default(),
            }),
            span.clone(),
        )
        .await;
        crate::telemetry::spans::end_task(&span, &outcome.record);
        if name == "plan" {
            self.lock().plan_span = Some(crate::telemetry::spans::context_of(&span));
        }
        drop(span);
        let repaired = outcome
            .record
            .attempts
            .iter()
            .flat_map(|a| &a.calls)
            .any(|c| c.repair);
        let record = outcome.record;
        let result = match (outcome.output, outcome.budget_stop) {
            (Some(text), _) => {
                let value = match outcome.json {
                    Some(value) => value,
                    None => Value::Null,
                };
                if self.reuse != Reuse::Off {
                    self.store(&key, name, &text).await;
                }
                Ok(Answer {
                    text,
                    value,
                    repaired,
                })
            }
            (None, Some(budget)) => Err(budget),
            (None, None) => Err(record
                .reason
                .clone()
                .unwrap_or_else(|| "the call failed".into())),
        };
        self.lock().record.calls.push(record);
        result
    }

    async fn store(&self, key: &str, name: &str, text: &str) {
        let entry = CacheEntry {
            key: key.to_string(),
            task: format!("manager.{name}"),
            provider: self.agent.model.endpoint.provider.clone(),
            model: self.agent.model.model.clone(),
            output: text.to_string(),
            usage: crate::provider::Usage::default(),
        };
        let Ok((path, bytes)) = self.cache.entry_file(&entry) else {
            return;
        };
        // The decision stands if this fails; only `--resume` cannot reuse it.
        self.write_file(path, bytes, &format!("cache the manager's `{name}`"))
            .await;
    }

    /// Writes `task_outputs/_manager/<file>` (a failure is recorded, never fatal).
    async fn write(&self, file: &str, text: String) {
        let path: PathBuf = self
            .workspace
            .path(crate::workspace::files::TASK_OUTPUTS)
            .join(FOLDER)
            .join(file);
        self.write_file(
            path,
            text.into_bytes(),
            &format!("write the manager's `{file}`"),
        )
        .await;
    }

    /// One atomic write off the runtime's thread; a failure is recorded in the manager's
    /// fallbacks as "failed to <what>".
    async fn write_file(&self, path: PathBuf, bytes: Vec<u8>, what: &str) {
        let workspace = self.workspace.clone();
        let written = tokio::task::spawn_blocking(move || {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            workspace.write(&path, &bytes)
        })
        .await;
        if let Ok(Err(error)) | Err(error) = written.map_err(std::io::Error::other) {
            self.fallback(format!("failed to {what}: {error}"));
        }
    }

    /// The plan's schema: assignments naming declared tasks (or new ones when allowed) and
    /// the orchestra's agents, at most `max_delegations` of them.
    fn plan_schema(&self, loaded: &Loaded) -> Value {
        let tasks: Vec<&str> = loaded.spec.tasks.iter().map(|t| t.name.as_str()).collect();
        let agents: Vec<&str> = loaded.agents.keys().map(|a| a.as_str()).collect();
        let task = if self.allow_new_tasks {
            json!({"type": "string", "maxLength": 64, "description": "a declared task's name, or a new sub-task's"})
        } else {
            json!({"enum": tasks})
        };
        let mut assignment = json!({
            "type": "object",
            "properties": {
                "task": task,
                "agent": {"enum": agents},
                "instructions": {"type": "string", "maxLength": 600},
            },
            "required": ["task", "agent", "instructions"],
        });
        if self.allow_new_tasks {
            assignment["properties"]["description"] = json!({"type": "string", "maxLength": 600, "description": "for a new sub-task only"});
            assignment["properties"]["context"] = json!({"type": "array", "items": {"type": "string", "maxLength": 64}, "maxItems": 8, "description": "for a new sub-task: the earlier tasks whose output it needs"});
        }
        // Without new tasks, no plan needs more assignments than there are tasks.
        let most = if self.allow_new_tasks {
            self.max_delegations
        } else {
            self.max_delegations.min(tasks.len() as u64)
        };
        json!({
            "type": "object",
            "properties": {
                "assignments": {"type": "array", "items": assignment, "minItems": 1, "maxItems": most.clamp(1, 64)},
                "dropped": {"type": "array", "items": {"type": "object", "properties": {"task": {"enum": tasks}, "reason": {"type": "string", "maxLength": 300}}, "required": ["task", "reason"]}, "maxItems": tasks.len().max(1)},
            },
            "required": ["assignments"],
        })
    }

    /// A description or expected output as the manager reads it: the goal and the inputs
    /// filled in, references to other tasks' outputs as written.
    fn filled(&self, text: &str) -> String {
        crate::structured::fill(
            text,
            &crate::structured::Values {
                goal: &self.goal,
                inputs: &self.inputs,
                output: &|_| None,
            },
        )
    }

    fn plan_prompt(&self, loaded: &Loaded) -> String {
        let mut text = format!("Goal: {}\n\n## The declared tasks\n", self.goal);
        for task in &loaded.spec.tasks {
            text.push_str(&format!(
                "\n- `{}` (agent `{}`): {}",
                task.name,
                task.agent,
                self.filled(&task.description)
            ));
            if let Some(expected) = &task.expected_output {
                text.push_str(&format!(" Expected output: {}.", self.filled(expected)));
            }
            if !task.context.is_empty() {
                let names: Vec<&str> = task.context.iter().map(|c| c.name.as_str()).collect();
                text.push_str(&format!(" Needs the output of: {}.", names.join(", ")));
            }
        }
        text.push_str("\n\n## The agents\n");
        for (name, agent) in &loaded.agents {
            let role = agent.persona.role.as_deref().unwrap_or("agent");
            let goal = agent.persona.goal.as_deref().unwrap_or_default();
            text.push_str(&format!("\n- `{name}`: {role}. {goal}"));
        }
        text.push_str(&format!(
            "\n\nPlan the work: list the assignments in the order they should run (a task after the tasks it needs), each with the agent to run it (the declared one unless another fits better) and instructions for it. Run every declared task unless it is truly unnecessary; list a task you leave out under `dropped` with the reason. At most {} assignments.{}",
            self.max_delegations,
            if self.allow_new_tasks {
                " You may add a sub-task: give it a new name, a `description` and its `context`."
            } else {
                ""
            }
        ));
        text
    }

    /// Checks a plan against the orchestra and applies it.
    fn check(
        &self,
        loaded: &Loaded,
        settings: &[TaskSettings],
        plan: &Value,
    ) -> Result<Applied, String> {
        let assignments = plan["assignments"].as_array().cloned().unwrap_or_default();
        if assignments.is_empty() {
            return Err("it assigns nothing".into());
        }
        if assignments.len() as u64 > self.max_delegations {
            return Err(format!(
                "it has {} assignments, more than max_delegations {}",
                assignments.len(),
                self.max_delegations
            ));
        }
        let dropped: Vec<(String, String)> = plan["dropped"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|d| {
                        (
                            d["task"].as_str().unwrap_or_default().to_string(),
                            d["reason"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let declared_index = |name: &str| {
            loaded
                .spec
                .tasks
                .iter()
                .position(|t| t.name.as_str() == name)
        };
        let mut seen: HashSet<String> = HashSet::new();
        let mut tasks: Vec<TaskSpec> = Vec::new();
        let mut models = Vec::new();
        let mut schemas = Vec::new();
        let mut task_settings = Vec::new();
        let mut records = Vec::new();
        for item in &assignments {
            let name = item["task"].as_str().unwrap_or_default().trim().to_string();
            let agent_name = item["agent"]
                .as_str()
                .unwrap_or_default()
                .trim()
                .to_string();
            let instructions = item["instructions"]
                .as_str()
                .unwrap_or_default()
                .trim()
                .to_string();
            if !seen.insert(name.clone()) {
                return Err(format!("it assigns `{name}` twice"));
            }
            let Some((agent_key, _)) = loaded.agents.iter().find(|(k, _)| k.as_str() == agent_name)
            else {
                return Err(format!(
                    "`{name}` is assigned to `{agent_name}`, which is not an agent of this orchestra (agents: {})",
                    loaded.agents.keys().map(|a| a.as_str()).collect::<Vec<_>>().join(", ")
                ));
            };
            let Some(agent_model) = loaded.agent_models.get(agent_key) else {
                return Err(format!("agent `{agent_name}` has no model"));
            };
            // A new task's settings start from a declared task of its agent, else the first.
            let agent_task = loaded
                .spec
                .tasks
                .iter()
                .position(|t| &t.agent == agent_key)
                .unwrap_or(0);
            let (mut spec, template) = match declared_index(&name) {
                Some(i) => (loaded.spec.tasks[i].clone(), i),
                None if self.allow_new_tasks => {
                    let task_name = crate::names::TaskName::parse(&name).map_err(|why| {
                        format!("the new task name `{name}` cannot be used: {why}")
                    })?;
                    let description = item["description"]
                        .as_str()
                        .unwrap_or_default()
                        .trim()
                        .to_string();
                    if description.is_empty() {
                        return Err(format!("the new task `{name}` has no description"));
                    }
                    let mut spec = loaded.spec.tasks[agent_task].clone();
                    spec.name = task_name;
                    spec.description = description;
                    spec.context = Vec::new();
                    spec.dependencies = Vec::new();
                    spec.expected_output = None;
                    spec.output = Default::default();
                    for context in item["context"].as_array().into_iter().flatten() {
                        let context = context.as_str().unwrap_or_default();
                        if !tasks.iter().any(|t| t.name.as_str() == context) {
                            return Err(format!(
                                "the new task `{name}` needs `{context}`, which is not assigned before it"
                            ));
                        }
                        spec.context.push(TaskRef {
                            name: context.to_string(),
                            loc: spec.name_loc,
                        });
                    }
                    (spec, agent_task)
                }
                None => {
                    return Err(format!(
                        "`{name}` is not a declared task (tasks: {}); new tasks are not allowed",
                        loaded
                            .spec
                            .tasks
                            .iter()
                            .map(|t| t.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                }
            };
            let added = declared_index(&name).is_none();
            spec.agent = agent_key.clone();
            if !instructions.is_empty() {
                spec.description = format!(
                    "{}\n\nInstructions from your manager: {instructions}",
                    spec.description
                );
            }
            let mut settings_here = settings[template].clone();
            settings_here.model = agent_model.clone();
            if added {
                settings_here.output_schema = None;
            }
            models.push(settings_here.model.clone());
            schemas.push(if added {
                None
            } else {
                loaded.schemas[template].clone()
            });
            task_settings.push(settings_here);
            records.push(AssignmentRecord {
                task: name.clone(),
                agent: agent_name,
                instructions,
                added,
            });
            tasks.push(spec);
        }
        for task in &loaded.spec.tasks {
            if seen.contains(task.name.as_str()) {
                continue;
            }
            if !dropped
                .iter()
                .any(|(name, reason)| name == task.name.as_str() && !reason.trim().is_empty())
            {
                return Err(format!(
                    "it leaves out `{}` without a reason under `dropped`",
                    task.name
                ));
            }
            if let Some(needs) = tasks.iter().find(|t| {
                t.context.iter().any(|c| c.name == task.name.as_str())
                    || t.dependencies
                        .iter()
                        .any(|d| d.task.name == task.name.as_str())
            }) {
                return Err(format!(
                    "it drops `{}`, which `{}` needs",
                    task.name, needs.name
                ));
            }
        }
        let mut spec = loaded.spec.clone();
        spec.tasks = tasks;
        spec.execution.task_groups = Vec::new();
        let strategy = if spec.execution.max_parallel_tasks > 1 {
            Strategy::Parallel
        } else {
            Strategy::Sequential
        };
        let mut diags = crate::diag::Diagnostics::default();
        let plan = Plan::build(
            &spec,
            PlanOptions {
                strategy: Some(strategy),
                max_parallel: Some(spec.execution.max_parallel_tasks),
            },
            &mut diags,
        )
        .filter(|_| !diags.has_errors())
        .ok_or_else(|| {
            let first = diags
                .items
                .iter()
                .find(|d| d.severity == crate::diag::Severity::Error);
            format!(
                "its order does not fit the tasks' needs: {}",
                first.map_or("the plan could not be built".to_string(), |d| d
                    .message
                    .clone())
            )
        })?;
        {
            let mut state = self.lock();
            state.delegations = assignments.len() as u64;
            state.record.plan = records;
            state.record.dropped = dropped
                .into_iter()
                .map(|(task, reason)| AssignmentRecord {
                    task,
                    instructions: reason,
                    ..AssignmentRecord::default()
                })
                .collect();
        }
        Ok(Applied {
            loaded: Loaded {
                spec,
                agents: loaded.agents.clone(),
                plan,
                models,
                schemas,
                manager: loaded.manager.clone(),
                agent_models: loaded.agent_models.clone(),
                inputs: loaded.inputs.clone(),
                warnings: Default::default(),
            },
            settings: task_settings,
        })
    }
}

/// The declared tasks as the file has them (the fallback).
fn declared(loaded: &Loaded, settings: &[TaskSettings]) -> Applied {
    Applied {
        loaded: loaded.clone(),
        settings: settings.to_vec(),
    }
}

/// A manager reply: its text and, under a schema, the validated object.
struct Answer {
    text: String,
    value: Value,
    repaired: bool,
}
