//! From a file to a runnable orchestra: read and decode the orchestra, load each agent's
//! playbook from the project, build the plan, and resolve every task's provider and model.
//! Every problem found on the way is collected, so validate reports them all at once.

use crate::diag::{Diagnostic, Diagnostics};
use crate::names::AgentName;
use crate::plan::{Plan, PlanOptions};
use crate::project::Project;
use crate::provider::{self, ModelChoice, ModelOverrides, Protocol, ResolveError};
use crate::source::SourceFile;
use crate::spec::{decode_agent, decode_orchestra, AgentSpec, OrchestraSpec};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub strict: bool,
    pub plan: PlanOptions,
    pub overrides: ModelOverrides,
    /// Check what a run needs from this machine: API keys and the embedded model.
    pub check_environment: bool,
    /// Leave a missing embedded model to the caller (a run offers to download it).
    pub model_download_offered: bool,
    /// The inputs given on the command line (`--var`, `--vars`).
    pub inputs: crate::inputs::GivenInputs,
    /// A declared input with no value is an error (a run needs it), not a warning.
    pub require_inputs: bool,
    /// The config files' model defaults, for agents whose playbook names no provider (below
    /// the playbook, below `overrides`).
    pub defaults: ModelOverrides,
}

impl LoadOptions {
    /// The overrides an agent's model is resolved with: the flags; for an agent whose playbook
    /// names no provider (and no `--provider`), the config's defaults under the flags.
    pub fn overrides_for(&self, agent: &AgentSpec) -> ModelOverrides {
        let playbook_names_one = agent
            .language_model
            .as_ref()
            .is_some_and(|lm| lm.provider.is_some());
        if self.overrides.provider.is_some()
            || playbook_names_one
            || self.defaults.provider.is_none()
                && self.defaults.model.is_none()
                && self.defaults.base_url.is_none()
        {
            return self.overrides.clone();
        }
        ModelOverrides {
            provider: self.defaults.provider.clone(),
            model: self
                .overrides
                .model
                .clone()
                .or_else(|| self.defaults.model.clone()),
            base_url: self
                .overrides
                .base_url
                .clone()
                .or_else(|| self.defaults.base_url.clone()),
            ..self.overrides.clone()
        }
    }
}

/// The hierarchical strategy's manager, resolved.
#[derive(Debug, Clone)]
pub struct ManagerAgent {
    pub agent: Option<AgentSpec>,
    pub model: ModelChoice,
}

/// An orchestra that passed every check.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub spec: OrchestraSpec,
    pub agents: BTreeMap<AgentName, AgentSpec>,
    pub plan: Plan,
    /// Each task's provider and model, by task index.
    pub models: Vec<ModelChoice>,
    /// Each task's output schema, by task index.
    pub schemas: Vec<Option<std::sync::Arc<crate::structured::OutputSchema>>>,
    /// Each agent's model (every agent a task runs; under the hierarchical strategy also the
    /// other agents of `agents:`).
    pub agent_models: BTreeMap<AgentName, ModelChoice>,
    /// Under the hierarchical strategy: the manager's playbook (none: the built-in persona)
    /// and its model (the manager agent's, else the first task's).
    pub manager: Option<ManagerAgent>,
    /// The value of each input (given, else its default), for the `{name}` placeholders.
    pub inputs: crate::inputs::InputValues,
    /// Warnings found on the way (none under `--strict`: they became errors).
    pub warnings: Diagnostics,
}

/// Reads and parses a YAML file, reporting a failure as a diagnostic.
pub fn read_yaml(path: &Path) -> Result<(Arc<SourceFile>, crate::yaml::Node), Diagnostic> {
    let file = SourceFile::read(path).map_err(|e| match e {
        crate::source::ReadError::Io(e) => Diagnostic::error(format!(
            "failed to read `{}`: {e}",
            crate::source::display_path(path)
        ))
        .hint("check the path and that the file is readable UTF-8 text"),
        crate::source::ReadError::NotUtf8 {
            byte,
            offset,
            loc,
            file,
        } => Diagnostic::error(format!(
            "failed to read `{}`: not UTF-8 text: byte 0x{byte:02x} at byte offset {offset} (line {}, column {})",
            file.display,
            loc.line,
            loc.col + 1
        ))
        .at(&file, loc, "not UTF-8")
        .hint("save the file as UTF-8"),
    })?;
    let root = crate::yaml::parse(&file)?;
    Ok((file, root))
}

/// Loads one playbook file.
pub fn load_agent(path: &Path, fallback_name: &str, diags: &mut Diagnostics) -> Option<AgentSpec> {
    match read_yaml(path) {
        Ok((file, root)) => decode_agent(&file, &root, fallback_name, diags),
        Err(diagnostic) => {
            diags.push(diagnostic);
            None
        }
    }
}

pub fn load_orchestra(
    project: Option<&Project>,
    path: &Path,
    options: &LoadOptions,
    env: provider::endpoint::EnvLookup<'_>,
) -> Result<Loaded, Diagnostics> {
    let mut diags = Diagnostics::default();
    let (file, root) = match read_yaml(path) {
        Ok(parsed) => parsed,
        Err(diagnostic) => {
            diags.push(diagnostic);
            return Err(diags);
        }
    };
    let spec = decode_orchestra(&file, &root, &mut diags);
    let Some(mut spec) = spec else {
        return Err(diags);
    };
    crate::inputs::add_given(&mut spec, &options.inputs, &mut diags);
    let inputs = crate::inputs::check(&spec, &options.inputs, options.require_inputs, &mut diags);

    // Each agent's playbook, loaded once. An agent is found by folder, `metadata.id` or slugged
    // `metadata.name`; a task whose agent has no playbook (or two) is pointed at; an invalid
    // playbook reports its own errors once, in its own file.
    let index = project.map(Project::agent_index).unwrap_or_default();
    let mut agents: BTreeMap<AgentName, AgentSpec> = BTreeMap::new();
    let mut invalid: Vec<AgentName> = Vec::new();
    for task in &spec.tasks {
        if agents.contains_key(&task.agent) || invalid.contains(&task.agent) {
            continue;
        }
        match index.resolve(task.agent.as_str()) {
            Ok(None) => diags.push(missing_agent(&spec, task, project)),
            Err(ambiguous) => {
                diags.push(
                    Diagnostic::error(format!("task `{}`: {ambiguous}", task.name))
                        .at(&spec.file, task.agent_loc, "two playbooks answer to this name")
                        .hint("write the agent's folder name, or give the two playbooks different `metadata.id`s"),
                );
                invalid.push(task.agent.clone());
            }
            Ok(Some(entry)) => match load_agent(&entry.path, &entry.folder, &mut diags) {
                Some(agent) => {
                    agents.insert(task.agent.clone(), agent);
                }
                None => invalid.push(task.agent.clone()),
            },
        }
    }

    let plan = Plan::build(&spec, options.plan, &mut diags);

    let mut models = Vec::with_capacity(spec.tasks.len());
    let mut resolved: BTreeMap<AgentName, Option<ModelChoice>> = BTreeMap::new();
    let mut override_error_shown = false;
    let mut local_checked = false;
    for task in &spec.tasks {
        let Some(agent) = agents.get(&task.agent) else {
            continue;
        };
        let entry = resolved.entry(task.agent.clone()).or_insert_with(|| {
            match provider::resolve(
                agent.language_model.as_ref(),
                &options.overrides_for(agent),
                env,
            ) {
                Ok(choice) => Some(choice),
                Err(error) => {
                    let from_playbook = error.comes_from_playbook().unwrap_or(
                        options.overrides.model.is_none() && options.overrides.provider.is_none(),
                    );
                    let needs_environment = matches!(
                        error,
                        ResolveError::MissingKey { .. } | ResolveError::MissingBaseUrl { .. }
                    );
                    if needs_environment && !options.check_environment {
                        return None;
                    }
                    let mut diagnostic =
                        Diagnostic::error(format!("agent `{}`: {}", agent.name, error.message()))
                            .hint(error.hint());
                    let lm = agent.language_model.as_ref();
                    if from_playbook {
                        if let Some(lm) = lm {
                            diagnostic = diagnostic.at(
                                &agent.file,
                                lm.provider_loc.unwrap_or(lm.loc),
                                "this provider",
                            );
                        }
                        diags.push(diagnostic);
                    } else if !override_error_shown {
                        override_error_shown = true;
                        diags.push(Diagnostic::error(error.message()).hint(error.hint()));
                    }
                    None
                }
            }
        });
        if let Some(choice) = entry.clone() {
            if choice.endpoint.protocol == Protocol::Local
                && options.check_environment
                && !options.model_download_offered
                && !local_checked
            {
                local_checked = true;
                if let Some(reason) = provider::local::unavailable_reason() {
                    diags.push(
                        Diagnostic::error(format!("task `{}` runs on the embedded model, but {reason}", task.name))
                            .at(&spec.file, task.agent_loc, "this agent has no `language_model`, so it uses `local`")
                            .hint("download it (98 MB, once) with `super model pull`, or pick a provider with `--provider`"),
                    );
                }
            }
            models.push(choice);
        }
    }
    // A manager may assign any agent the file lists under `agents:`, not only those that run
    // a declared task: those are loaded too, with their models.
    let hierarchical = options.plan.strategy.unwrap_or(spec.execution.strategy)
        == crate::spec::Strategy::Hierarchical;
    if hierarchical {
        for (name, loc) in &spec.agents {
            if agents.contains_key(name) || invalid.contains(name) {
                continue;
            }
            let Ok(Some(entry)) = index.resolve(name.as_str()) else {
                diags.push(
                    Diagnostic::warning(format!("agent `{name}` of `agents:` has no playbook in this project; the manager cannot assign it"))
                        .at(&spec.file, *loc, "no playbook has this name")
                        .hint(format!("pull it with `super agent pull {name}`, or remove it from `agents:`")),
                );
                continue;
            };
            let Some(agent) = load_agent(&entry.path, &entry.folder, &mut diags) else {
                continue;
            };
            if let Ok(choice) = provider::resolve(
                agent.language_model.as_ref(),
                &options.overrides_for(&agent),
                env,
            ) {
                resolved.insert(name.clone(), Some(choice));
                agents.insert(name.clone(), agent);
            }
        }
    }
    let agent_models: BTreeMap<AgentName, ModelChoice> = resolved
        .into_iter()
        .filter_map(|(name, choice)| Some((name, choice?)))
        .collect();

    crate::tools::check_orchestra_tools(&spec, &agents, &mut diags);
    let manager = manager_agent(&spec, &index, options, env, &models, &mut diags);
    let schema_root = match project {
        Some(project) => project.root.clone(),
        None => path.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let schemas =
        crate::structured::resolve::resolve_schemas(&spec, &agents, &schema_root, &mut diags);

    if options.strict {
        diags.promote_warnings();
    }
    match plan {
        Some(plan) if !diags.has_errors() && models.len() == spec.tasks.len() => Ok(Loaded {
            spec,
            agents,
            plan,
            models,
            schemas,
            manager,
            agent_models,
            inputs,
            warnings: diags,
        }),
        _ => {
            if !diags.has_errors() {
                diags.push(Diagnostic::error("the orchestra could not be planned"));
            }
            Err(diags)
        }
    }
}

/// The manager of a hierarchical run: `execution.manager` (an agent of the project, its model
/// from its playbook) or the built-in persona on the first task's model. Manager keys under
/// another strategy are a warning.
fn manager_agent(
    spec: &OrchestraSpec,
    index: &crate::project::AgentIndex,
    options: &LoadOptions,
    env: provider::endpoint::EnvLookup<'_>,
    models: &[ModelChoice],
    diags: &mut Diagnostics,
) -> Option<ManagerAgent> {
    let manager = &spec.execution.manager;
    let strategy = options.plan.strategy.unwrap_or(spec.execution.strategy);
    if strategy != crate::spec::Strategy::Hierarchical {
        if let Some(loc) = manager.loc {
            diags.push(
                Diagnostic::warning(format!(
                    "the manager settings have no effect under `strategy: {}`",
                    strategy.as_str()
                ))
                .at(&spec.file, loc, "only the hierarchical strategy has a manager")
                .hint("use `strategy: hierarchical`, or remove `manager`, `max_delegations`, `max_review_rounds` and `allow_new_tasks`"),
            );
        }
        return None;
    }
    let Some((name, loc)) = &manager.agent else {
        return models
            .first()
            .cloned()
            .map(|model| ManagerAgent { agent: None, model });
    };
    let entry = match index.resolve(name.as_str()) {
        Ok(Some(entry)) => entry,
        Ok(None) => {
            diags.push(
                Diagnostic::error(format!("the manager `{name}` is not an agent of this project"))
                    .at(&spec.file, *loc, "no playbook has this name")
                    .hint(format!("pull one with `super agent pull {name}` (the library has `project_manager`), or remove `manager` to use the built-in manager")),
            );
            return None;
        }
        Err(ambiguous) => {
            diags.push(Diagnostic::error(format!("the manager: {ambiguous}")).at(
                &spec.file,
                *loc,
                "two playbooks answer to this name",
            ));
            return None;
        }
    };
    let agent = load_agent(&entry.path, &entry.folder, diags)?;
    match provider::resolve(
        agent.language_model.as_ref(),
        &options.overrides_for(&agent),
        env,
    ) {
        Ok(model) => Some(ManagerAgent {
            agent: Some(agent),
            model,
        }),
        Err(error) => {
            if !options.check_environment
                && matches!(
                    error,
                    ResolveError::MissingKey { .. } | ResolveError::MissingBaseUrl { .. }
                )
            {
                return models.first().cloned().map(|model| ManagerAgent {
                    agent: Some(agent),
                    model,
                });
            }
            diags.push(
                Diagnostic::error(format!("the manager `{name}`: {}", error.message()))
                    .at(&spec.file, *loc, "this manager")
                    .hint(error.hint()),
            );
            None
        }
    }
}

fn missing_agent(
    spec: &OrchestraSpec,
    task: &crate::spec::TaskSpec,
    project: Option<&Project>,
) -> Diagnostic {
    let hint = match (crate::library::find(task.agent.as_str()), project) {
        (_, None) => "no `.super` project was found; run inside a project or pass `--project DIR`"
            .to_string(),
        (Some(_), Some(_)) => format!(
            "`{}` is in the built-in library: run `super agent pull {}`",
            task.agent, task.agent
        ),
        (None, Some(project)) => format!(
            "looked for `{}/playbook/{}_playbook.yaml` in {}",
            task.agent,
            task.agent,
            project
                .agent_dirs()
                .iter()
                .map(|d| format!("`{}`", crate::source::display_path(d)))
                .collect::<Vec<_>>()
                .join(" and ")
        ),
    };
    Diagnostic::error(format!(
        "task `{}` uses agent `{}`, which has no playbook in the project",
        task.name, task.agent
    ))
    .at(&spec.file, task.agent_loc, "no playbook for this agent")
    .hint(hint)
}
