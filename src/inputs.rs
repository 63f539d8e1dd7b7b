//! Inputs beyond the goal, as CrewAI's `inputs`: values for the `{name}` placeholders of task
//! descriptions and expected outputs, given with `--var name=value` (repeatable) and `--vars
//! FILE` (a YAML or JSON mapping), or declared by the orchestra under `inputs:` with a
//! description and a default.
//!
//! Which `{name}` is what: `{goal}` is the goal; a task's name is its output (`structured`); a
//! declared or given input is its value. Any other `{name}` stays text as before, unless the
//! file declares `inputs:` (then it is an error: a typo, or an input not declared) or inputs were
//! given (then it is a warning). A declared input with no value is an error where a run needs
//! it (`run`, `--dry-run`, `run-task`) and a warning naming `--var` elsewhere (`validate`).
//! Every problem is a diagnostic at the placeholder's `file:line:col`.

use crate::diag::{did_you_mean, Diagnostic, Diagnostics};
use crate::source::{Loc, SourceFile};
use crate::spec::{InputSpec, OrchestraSpec, TaskSpec};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Each input's value by name, as the run uses them (given, else declared default).
pub(crate) type InputValues = BTreeMap<String, String>;

/// Where a given value came from.
#[derive(Debug, Clone)]
pub(crate) enum Origin {
    /// `--var NAME=VALUE`.
    Flag,
    /// A `--vars` file, at the key's place.
    File { file: Arc<SourceFile>, loc: Loc },
}

#[derive(Debug, Clone)]
pub(crate) struct Given {
    pub name: String,
    pub value: String,
    pub origin: Origin,
}

/// The values given on the command line: the `--vars` files in order, then each `--var` (a
/// later value of a name replaces an earlier one).
#[derive(Debug, Clone, Default)]
pub(crate) struct GivenInputs {
    pub values: Vec<Given>,
}

impl GivenInputs {
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&Given> {
        self.values.iter().find(|g| g.name == name)
    }

    fn set(&mut self, given: Given) {
        match self.values.iter_mut().find(|g| g.name == given.name) {
            Some(slot) => *slot = given,
            None => self.values.push(given),
        }
    }

    /// Reads `--vars` files and `--var` flags. A bad flag is an `Err` with its message and
    /// hint; a bad file's problems are diagnostics at their `file:line:col`.
    pub fn read(vars: &[String], files: &[std::path::PathBuf]) -> Result<GivenInputs, InputError> {
        let mut given = GivenInputs::default();
        let mut diags = Diagnostics::default();
        for path in files {
            read_file(path, &mut given, &mut diags);
        }
        if diags.has_errors() {
            return Err(InputError::File(diags));
        }
        for flag in vars {
            let Some((name, value)) = flag.split_once('=') else {
                return Err(InputError::Flag {
                    message: format!("`--var {flag}` has no value"),
                    hint: "write `--var NAME=VALUE` (quote it when the value has spaces)".into(),
                });
            };
            let name = name.trim();
            check_name(name).map_err(|problem| InputError::Flag {
                message: format!("`--var {flag}`: {problem}"),
                hint: "a name has letters, digits, `_` and `-`, starts with a letter or `_`, and is not `goal`".into(),
            })?;
            given.set(Given {
                name: name.to_string(),
                value: value.to_string(),
                origin: Origin::Flag,
            });
        }
        Ok(given)
    }
}

/// Why the given inputs cannot be used.
#[derive(Debug)]
pub(crate) enum InputError {
    Flag { message: String, hint: String },
    File(Diagnostics),
}

fn check_name(name: &str) -> Result<(), String> {
    if !crate::template::is_input_name(name) {
        return Err(format!(
            "`{}` cannot be an input's name",
            name.escape_debug()
        ));
    }
    if name == "goal" {
        return Err("`goal` is the goal: pass it with `--goal`".into());
    }
    Ok(())
}

/// One `--vars` file: a mapping of names to text, numbers or booleans (YAML, or JSON, which
/// the YAML reader also reads).
fn read_file(path: &Path, given: &mut GivenInputs, diags: &mut Diagnostics) {
    let (file, root) = match crate::load::read_yaml(path) {
        Ok(parsed) => parsed,
        Err(diagnostic) => {
            diags.push(diagnostic);
            return;
        }
    };
    let entries = match &root.value {
        crate::yaml::Value::Map(entries) => entries,
        _ if root.is_null() => return,
        _ => {
            diags.push(
                Diagnostic::error(format!(
                    "a `--vars` file must be a mapping of names to values, found {}",
                    root.kind()
                ))
                .at(&file, root.loc, "expected `name: value` lines")
                .hint("write one `name: value` per line (YAML) or one JSON object"),
            );
            return;
        }
    };
    for (key, value) in entries {
        let name = key.scalar().unwrap_or_default().trim();
        if let Err(problem) = check_name(name) {
            diags.push(
                Diagnostic::error(problem)
                    .at(&file, key.loc, "not an input name")
                    .hint(
                        "a name has letters, digits, `_` and `-`, and starts with a letter or `_`",
                    ),
            );
            continue;
        }
        let text = match &value.value {
            crate::yaml::Value::Scalar { text, .. } if !value.is_null() => text.clone(),
            _ => {
                diags.push(
                    Diagnostic::error(format!(
                        "the value of `{name}` must be text, a number or a boolean, found {}",
                        value.kind()
                    ))
                    .at(&file, value.loc, "expected a scalar")
                    .hint(
                        "write the value as text (quote it, or use a `|` block for several lines)",
                    ),
                );
                continue;
            }
        };
        given.set(Given {
            name: name.to_string(),
            value: text,
            origin: Origin::File {
                file: Arc::clone(&file),
                loc: key.loc,
            },
        });
    }
}

/// Adds the given inputs the file does not declare to `spec.inputs` (so the plan does not take
/// them for task names); a given name that is a task's is an error.
pub(crate) fn add_given(spec: &mut OrchestraSpec, given: &GivenInputs, diags: &mut Diagnostics) {
    for g in &given.values {
        if spec.task_index(&g.name).is_some() {
            diags.push(at_origin(
                Diagnostic::error(format!("input `{}` has the name of a task", g.name)).hint(
                    format!(
                        "`{{{}}}` is that task's output; give the input another name",
                        g.name
                    ),
                ),
                &g.origin,
                "a task's name",
            ));
            continue;
        }
        if !spec.is_input(&g.name) {
            spec.inputs.push(InputSpec {
                name: g.name.clone(),
                loc: None,
                description: None,
                default: None,
            });
        }
    }
}

fn at_origin(diagnostic: Diagnostic, origin: &Origin, label: &str) -> Diagnostic {
    match origin {
        Origin::Flag => diagnostic,
        Origin::File { file, loc } => diagnostic.at(file, *loc, label),
    }
}

/// The texts of a task that hold placeholders: its description and its expected output, with
/// the place each is written.
fn texts(task: &TaskSpec) -> Vec<(&str, Loc)> {
    let mut out = vec![(task.description.as_str(), task.description_loc)];
    if let Some(expected) = &task.expected_output {
        out.push((
            expected.as_str(),
            task.expected_output_loc.unwrap_or(task.description_loc),
        ));
    }
    out
}

/// Where `written` is in a text that starts at `start` (the start itself when a folded
/// scalar splits it).
fn place(spec: &OrchestraSpec, text: &str, start: Loc, written: &str) -> Loc {
    let lines = text.lines().count().saturating_add(2);
    spec.file.find_from(start, written, lines).unwrap_or(start)
}

/// The input names a task's texts use (`{name}`), in order, once each.
pub(crate) fn used_by(spec: &OrchestraSpec, task: &TaskSpec) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (text, _) in texts(task) {
        for reference in crate::template::placeholders(text) {
            if spec.is_input(&reference.task) && !names.contains(&reference.task) {
                names.push(reference.task);
            }
        }
    }
    names
}

/// The values of a task's inputs, for its cache key.
pub(crate) fn values_used(
    spec: &OrchestraSpec,
    task: &TaskSpec,
    values: &InputValues,
) -> InputValues {
    used_by(spec, task)
        .into_iter()
        .filter_map(|name| values.get(&name).map(|v| (name, v.clone())))
        .collect()
}

/// Checks every placeholder against the inputs and returns the run's values. `require`: a
/// declared input with no value is an error (a run needs it), else a warning.
pub(crate) fn check(
    spec: &OrchestraSpec,
    given: &GivenInputs,
    require: bool,
    diags: &mut Diagnostics,
) -> InputValues {
    let declares = spec.inputs.iter().any(|i| i.loc.is_some());
    let task_names: Vec<&str> = spec.tasks.iter().map(|t| t.name.as_str()).collect();
    let input_names: Vec<&str> = spec.inputs.iter().map(|i| i.name.as_str()).collect();
    let mut values = InputValues::new();
    for input in &spec.inputs {
        let value = given
            .get(&input.name)
            .map(|g| g.value.clone())
            .or_else(|| input.default.clone());
        if let Some(value) = value {
            values.insert(input.name.clone(), value);
        }
    }
    let mut used: Vec<&str> = Vec::new();
    let mut missing_reported: Vec<String> = Vec::new();
    for task in &spec.tasks {
        for (text, start) in texts(task) {
            for reference in crate::template::placeholders(text) {
                let name = reference.task.as_str();
                if reference.is_goal() || task_names.contains(&name) {
                    continue;
                }
                let written = reference.written();
                if let Some(input) = spec.inputs.iter().find(|i| i.name == name) {
                    used.push(&input.name);
                    if !reference.path.is_empty() {
                        diags.push(
                            Diagnostic::error(format!(
                                "task `{}` uses `{written}`, but input `{name}` is text: it has no fields",
                                task.name
                            ))
                            .at(&spec.file, place(spec, text, start, &written), "not a task's output")
                            .hint(format!("write `{{{name}}}`")),
                        );
                        continue;
                    }
                    if values.contains_key(name) || missing_reported.contains(&input.name) {
                        continue;
                    }
                    missing_reported.push(input.name.clone());
                    let at = place(spec, text, start, &written);
                    let hint = format!(
                        "pass `--var {name}=...` (or put `{name}:` in a `--vars` file), or give it a `default:` under `inputs:`"
                    );
                    diags.push(if require {
                        Diagnostic::error(format!(
                            "task `{}` uses `{written}`, but input `{name}` has no value",
                            task.name
                        ))
                        .at(&spec.file, at, "no value given")
                        .hint(hint)
                    } else {
                        Diagnostic::warning(format!(
                            "task `{}` uses `{written}`, and input `{name}` has no default: a run needs `--var {name}=...`",
                            task.name
                        ))
                        .at(&spec.file, at, "no default")
                        .hint(hint)
                    });
                    continue;
                }
                // Neither goal, task nor input. The plan reports a reference with a field or
                // one close to a task's name; text with no input in sight stays text.
                if !reference.path.is_empty()
                    || did_you_mean(name, task_names.iter().copied()).is_some()
                {
                    continue;
                }
                if !declares && given.is_empty() {
                    continue;
                }
                let at = place(spec, text, start, &written);
                let close = did_you_mean(name, input_names.iter().copied());
                let hint = match close {
                    Some(close) => format!("did you mean `{{{close}}}`?"),
                    None if declares => format!(
                        "declare it under `inputs:`, or write `{{{written}}}` for the text `{written}`"
                    ),
                    None => format!(
                        "pass `--var {name}=...`, or write `{{{written}}}` for the text `{written}`"
                    ),
                };
                diags.push(if declares {
                    Diagnostic::error(format!(
                        "task `{}` uses `{written}`, which is no declared input, no task and not `{{goal}}`",
                        task.name
                    ))
                    .at(&spec.file, at, "not an input")
                    .hint(hint)
                } else {
                    Diagnostic::warning(format!(
                        "task `{}` uses `{written}`, which has no value: it is sent as written",
                        task.name
                    ))
                    .at(&spec.file, at, "no value")
                    .hint(hint)
                });
            }
        }
    }
    // Inputs nothing uses: a typo on the command line, or a stale declaration.
    let mut placeholder_names: Vec<String> = Vec::new();
    for task in &spec.tasks {
        for (text, _) in texts(task) {
            for reference in crate::template::placeholders(text) {
                if !reference.is_goal() && !task_names.contains(&reference.task.as_str()) {
                    placeholder_names.push(reference.task);
                }
            }
        }
    }
    for input in &spec.inputs {
        if used.contains(&input.name.as_str()) {
            continue;
        }
        let close = did_you_mean(&input.name, placeholder_names.iter().map(String::as_str));
        match (input.loc, given.get(&input.name)) {
            (_, Some(g)) => {
                let mut diagnostic = Diagnostic::warning(format!(
                    "input `{}` is given, but no description or expected output uses `{{{}}}`",
                    input.name, input.name
                ));
                diagnostic = match close {
                    Some(close) => diagnostic.hint(format!("did you mean `{close}`?")),
                    None => diagnostic.hint("check its name against the placeholders of the tasks"),
                };
                diags.push(at_origin(diagnostic, &g.origin, "used nowhere"));
            }
            (Some(loc), None) => diags.push(
                Diagnostic::warning(format!(
                    "input `{}` is declared, but no description or expected output uses `{{{}}}`",
                    input.name, input.name
                ))
                .at(&spec.file, loc, "used nowhere")
                .hint(match close {
                    Some(close) => format!("did you mean `{close}`?"),
                    None => "use it in a task's description, or remove it".to_string(),
                }),
            ),
            (None, None) => {}
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(yaml: &str) -> (OrchestraSpec, Diagnostics) {
        let file = SourceFile::new(Path::new("o.yaml"), yaml.to_string());
        let root = crate::yaml::parse(&file).expect("yaml");
        let mut diags = Diagnostics::default();
        let spec = crate::spec::decode_orchestra(&file, &root, &mut diags).expect("spec");
        (spec, diags)
    }

    fn flags(vars: &[&str]) -> GivenInputs {
        let vars: Vec<String> = vars.iter().map(|s| s.to_string()).collect();
        GivenInputs::read(&vars, &[]).unwrap_or_else(|e| panic!("{e:?}"))
    }

    const FILE: &str = "metadata: {id: o}
inputs:
  topic:
    description: What to write about
  audience:
    default: engineers
tasks:
- name: write
  agent: writer
  description: 'Write about {topic} for {audience}; keep {{topic}} and {\"a\": 1}.'
  expected_output: A text on {topic}
";

    #[test]
    fn declared_inputs_take_given_values_then_defaults() {
        let (mut spec, diags) = decode(FILE);
        assert!(diags.items.is_empty(), "{}", diags.render(false));
        let given = flags(&["topic=rust"]);
        let mut diags = Diagnostics::default();
        add_given(&mut spec, &given, &mut diags);
        let values = check(&spec, &given, true, &mut diags);
        assert!(diags.items.is_empty(), "{}", diags.render(false));
        assert_eq!(values["topic"], "rust");
        assert_eq!(values["audience"], "engineers");
        assert_eq!(used_by(&spec, &spec.tasks[0]), ["topic", "audience"]);
    }

    #[test]
    fn a_declared_input_without_value_is_an_error_for_a_run_and_a_warning_otherwise() {
        let (spec, _) = decode(FILE);
        let mut diags = Diagnostics::default();
        check(&spec, &GivenInputs::default(), true, &mut diags);
        assert_eq!(diags.error_count(), 1, "{}", diags.render(false));
        let shown = diags.render(false);
        assert!(shown.contains("o.yaml:10:"), "{shown}");
        assert!(shown.contains("--var topic="), "{shown}");
        let mut diags = Diagnostics::default();
        check(&spec, &GivenInputs::default(), false, &mut diags);
        assert_eq!(diags.error_count(), 0);
        assert_eq!(diags.warning_count(), 1, "{}", diags.render(false));
    }

    #[test]
    fn undeclared_placeholders_are_errors_only_in_files_that_declare_inputs() {
        let (spec, _) = decode(
            "metadata: {id: o}\ninputs: {topic: {default: x}}\ntasks:\n- {name: w, agent: a, description: \"{topic} {topc} {other}\"}\n",
        );
        let mut diags = Diagnostics::default();
        check(&spec, &GivenInputs::default(), true, &mut diags);
        assert_eq!(diags.error_count(), 2, "{}", diags.render(false));
        assert!(diags.render(false).contains("did you mean `{topic}`?"));
        // No inputs anywhere: `{id}` is text, as it always was.
        let (spec, _) = decode(
            "metadata: {id: o}\ntasks:\n- {name: w, agent: a, description: \"GET /users/{id}\"}\n",
        );
        let mut diags = Diagnostics::default();
        check(&spec, &GivenInputs::default(), true, &mut diags);
        assert!(diags.items.is_empty());
        // Inputs given: a leftover placeholder is a warning.
        let mut diags = Diagnostics::default();
        let mut spec = spec;
        let given = flags(&["idd=1"]);
        add_given(&mut spec, &given, &mut diags);
        check(&spec, &given, true, &mut diags);
        assert_eq!(diags.error_count(), 0, "{}", diags.render(false));
        assert_eq!(diags.warning_count(), 2, "{}", diags.render(false));
    }

    #[test]
    fn bad_flags_are_refused() {
        for bad in ["topic", "1x=2", "goal=x", "a b=c"] {
            assert!(
                GivenInputs::read(&[bad.to_string()], &[]).is_err(),
                "{bad} accepted"
            );
        }
        let given = flags(&["a=1", "a=2=3", "b="]);
        assert_eq!(given.get("a").map(|g| g.value.as_str()), Some("2=3"));
        assert_eq!(given.get("b").map(|g| g.value.as_str()), Some(""));
    }
}
