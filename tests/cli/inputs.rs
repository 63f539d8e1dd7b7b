//! Inputs beyond the goal (`--var`, `--vars`, declared `inputs:`, `--goal-file`, `--goal -`,
//! `{{ }}` escapes), the config files' precedence and `config show`, and the `--json` events as
//! a contract: every line stamped, parsed and documented.

use crate::support::{code, stderr, stdout, Project};
use llm_stub::{StubConfig, StubServer};
use serde_json::Value;
use std::io::Write as _;

const BLOG: &str = "metadata:
  id: blog
inputs:
  topic:
    description: What the post is about
  audience:
    description: Who reads it
    default: engineers
tasks:
  - name: write
    agent: writer
    description: >
      Write about {topic} for {audience} to reach '{goal}'.
      Answer as {{\"title\": \"...\"}} and keep {\"a\": {\"b\": 1}} as it is; {{topic}} stays.
    expected_output: A post on {topic}
    timeout_seconds: 10
";

fn project(server: &StubServer, orchestra: &str) -> Project {
    let project = Project::empty();
    project.simple_agent("writer", "write", "openai", &server.openai_base_url());
    project.orchestra("blog", orchestra);
    project
}

fn stub() -> StubServer {
    StubServer::start_background(StubConfig::default().reply_fn(|_| "A post.".to_string()))
        .expect("stub")
}

fn prompts(server: &StubServer) -> Vec<String> {
    server
        .requests()
        .iter()
        .map(|r| llm_stub::last_user_message(&r.body).unwrap_or_default())
        .collect()
}

#[test]
fn a_var_fills_its_placeholder_and_escaped_braces_reach_the_model_literally() {
    let server = stub();
    let project = project(&server, BLOG);
    let output = project.run(&[
        "orchestra",
        "run",
        "blog",
        "--goal",
        "a launch",
        "--var",
        "topic=Rust 2026",
    ]);
    assert_eq!(code(&output), 0, "{}{}", stdout(&output), stderr(&output));
    let prompt = &prompts(&server)[0];
    assert!(
        prompt.contains("Write about Rust 2026 for engineers to reach 'a launch'."),
        "{prompt}"
    );
    assert!(
        prompt.contains(
            r#"Answer as {"title": "..."} and keep {"a": {"b": 1}} as it is; {topic} stays."#
        ),
        "{prompt}"
    );
    assert!(
        prompt.contains("Expected output: A post on Rust 2026"),
        "{prompt}"
    );
    // The values are part of the record.
    let manifest = project.manifest("blog");
    assert_eq!(manifest["inputs"]["topic"], "Rust 2026");
    assert_eq!(manifest["inputs"]["audience"], "engineers");

    // A changed var runs the task again; the same one is reused.
    let again = project.run(&[
        "orchestra",
        "run",
        "blog",
        "--goal",
        "a launch",
        "--var",
        "topic=Rust 2026",
        "--resume",
    ]);
    assert_eq!(code(&again), 0, "{}", stderr(&again));
    assert_eq!(
        server.request_count(),
        1,
        "the same inputs reuse the output"
    );
    let changed = project.run(&[
        "orchestra",
        "run",
        "blog",
        "--goal",
        "a launch",
        "--var",
        "topic=Zig",
        "--resume",
    ]);
    assert_eq!(code(&changed), 0, "{}", stderr(&changed));
    assert_eq!(
        server.request_count(),
        2,
        "a changed input runs the task again"
    );
    assert!(prompts(&server)[1].contains("Write about Zig"));
}

#[test]
fn a_missing_input_is_a_diagnostic_at_its_placeholder() {
    let server = stub();
    let project = project(&server, BLOG);
    for args in [
        vec!["orchestra", "run", "blog", "--goal", "g"],
        vec!["orchestra", "run", "blog", "--goal", "g", "--dry-run"],
    ] {
        let output = project.run(&args);
        assert_eq!(code(&output), 2, "{args:?}: {}", stderr(&output));
        let errors = stderr(&output);
        assert!(errors.contains("input `topic` has no value"), "{errors}");
        assert!(errors.contains("blog_orchestra.yaml:13:"), "{errors}");
        assert!(errors.contains("--var topic="), "{errors}");
    }
    assert_eq!(server.request_count(), 0);
    // `validate` without vars: a warning naming `--var`, the file is valid.
    let output = project.run(&["orchestra", "validate", "blog"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("a run needs `--var topic=...`"),
        "{}",
        stderr(&output)
    );
    // A typo is caught, with the input it resembles.
    let output = project.run(&["orchestra", "validate", "blog", "--var", "topc=x"]);
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("did you mean `topic`?"),
        "{}",
        stderr(&output)
    );
    // A bad flag is a usage error.
    let output = project.run(&["orchestra", "run", "blog", "--goal", "g", "--var", "topic"]);
    assert_eq!(code(&output), 2);
    assert!(
        stderr(&output).contains("`--var topic` has no value"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn vars_files_in_yaml_and_json_and_their_errors_at_file_line_col() {
    let server = stub();
    let project = project(&server, BLOG);
    std::fs::write(
        project.path("vars.yaml"),
        "topic: YAML topic\naudience: ops\n",
    )
    .expect("write");
    std::fs::write(project.path("vars.json"), "{\"topic\": \"JSON topic\"}").expect("write");
    let output = project.run(&[
        "orchestra",
        "run",
        "blog",
        "--goal",
        "g",
        "--vars",
        "vars.yaml",
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(prompts(&server)[0].contains("Write about YAML topic for ops"));
    // A later file, then `--var`, win key by key.
    let output = project.run(&[
        "orchestra",
        "run",
        "blog",
        "--goal",
        "g",
        "--vars",
        "vars.yaml",
        "--vars",
        "vars.json",
        "--var",
        "audience=CTOs",
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        prompts(&server)[1].contains("Write about JSON topic for CTOs"),
        "{}",
        prompts(&server)[1]
    );

    std::fs::write(project.path("bad.yaml"), "topic: fine\nlist: [1, 2]\n").expect("write");
    let output = project.run(&[
        "orchestra",
        "run",
        "blog",
        "--goal",
        "g",
        "--vars",
        "bad.yaml",
    ]);
    assert_eq!(code(&output), 2);
    assert!(
        stderr(&output).contains("bad.yaml:2:7"),
        "{}",
        stderr(&output)
    );
    assert!(stderr(&output).contains("must be text, a number or a boolean"));
    assert_eq!(server.request_count(), 2);
}

#[test]
fn the_goal_from_a_file_or_stdin() {
    let server = stub();
    let project = project(&server, BLOG);
    std::fs::write(project.path("brief.md"), "A long goal\nover two lines\n").expect("write");
    let output = project.run(&[
        "orchestra",
        "run",
        "blog",
        "--goal-file",
        "brief.md",
        "--var",
        "topic=t",
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(prompts(&server)[0].contains("Goal: A long goal\nover two lines"));

    let mut child = project
        .command()
        .args([
            "orchestra",
            "run",
            "blog",
            "--goal",
            "-",
            "--var",
            "topic=t",
            "--no-cache",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"a goal from stdin\n")
        .expect("write");
    let output = child.wait_with_output().expect("wait");
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(prompts(&server)[1].contains("Goal: a goal from stdin"));

    let both = project.run(&[
        "orchestra",
        "run",
        "blog",
        "--goal",
        "g",
        "--goal-file",
        "brief.md",
    ]);
    assert_eq!(code(&both), 2);
    assert!(
        stderr(&both).contains("cannot be used with"),
        "{}",
        stderr(&both)
    );
    let missing = project.run(&["orchestra", "run", "blog", "--goal-file", "nope.md"]);
    assert_eq!(code(&missing), 2);
    assert!(
        stderr(&missing).contains("failed to read the goal file `nope.md`"),
        "{}",
        stderr(&missing)
    );
    std::fs::write(project.path("empty.md"), "\n  \n").expect("write");
    let empty = project.run(&["orchestra", "run", "blog", "--goal-file", "empty.md"]);
    assert_eq!(code(&empty), 2);
    assert!(
        stderr(&empty).contains("the goal is empty (from the goal file `empty.md`)"),
        "{}",
        stderr(&empty)
    );
    assert_eq!(server.request_count(), 2);
}

const PLAIN: &str = "metadata:
  id: plain
tasks:
  - name: write
    agent: writer
    description: Write about '{goal}'.
";

#[test]
fn config_precedence_flag_then_project_then_user() {
    let server = stub();
    let project = Project::empty();
    // The playbook names no provider: the config's defaults apply to it.
    project.simple_agent("writer", "write", "", "");
    project.orchestra("plain", PLAIN);
    std::fs::create_dir_all(project.path(".config/super")).expect("dir");
    std::fs::write(
        project.path(".config/super/config.toml"),
        format!(
            "provider = \"openai\"\nmodel = \"user-model\"\nbase_url = \"{}\"\ntimeout = 40\n[budget]\nmax_llm_calls = 7\n",
            server.openai_base_url()
        ),
    )
    .expect("write");
    let dry = project.run(&["orchestra", "run", "plain", "--goal", "g", "--dry-run"]);
    assert_eq!(code(&dry), 0, "{}", stderr(&dry));
    let plan = stdout(&dry);
    assert!(plan.contains("openai/user-model"), "{plan}");
    assert!(
        plan.contains("the timeout from the config's `timeout`"),
        "{plan}"
    );
    assert!(plan.contains("at most 7 LLM calls"), "{plan}");
    assert!(plan.contains("config.toml:2:9"), "{plan}");

    std::fs::write(project.path("super.toml"), "model = \"project-model\"\n").expect("write");
    let dry = project.run(&["orchestra", "run", "plain", "--goal", "g", "--dry-run"]);
    assert!(
        stdout(&dry).contains("openai/project-model"),
        "{}",
        stdout(&dry)
    );
    let dry = project.run(&[
        "orchestra",
        "run",
        "plain",
        "--goal",
        "g",
        "--dry-run",
        "--model",
        "flag-model",
    ]);
    assert!(
        stdout(&dry).contains("openai/flag-model"),
        "{}",
        stdout(&dry)
    );
    // A run reaches the configured server with the project's model.
    let output = project.run(&["orchestra", "run", "plain", "--goal", "g"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(server.requests()[0].body["model"], "project-model");

    // SUPER_CONFIG points elsewhere.
    std::fs::write(
        project.path("ci.toml"),
        format!(
            "provider = \"openai\"\nbase_url = \"{}\"\ntimeout = 41\n",
            server.openai_base_url()
        ),
    )
    .expect("write");
    let dry = project
        .command()
        .env("SUPER_CONFIG", project.path("ci.toml"))
        .args(["orchestra", "run", "plain", "--goal", "g", "--dry-run"])
        .output()
        .expect("run");
    assert!(
        stdout(&dry).contains("timeout 41s"),
        "{}{}",
        stdout(&dry),
        stderr(&dry)
    );
}

#[test]
fn config_show_names_each_value_and_its_origin() {
    let project = Project::empty();
    std::fs::create_dir_all(project.path(".config/super")).expect("dir");
    std::fs::write(
        project.path(".config/super/config.toml"),
        "provider = \"ollama\"\nthreads = 2\n[budget]\nmax_cost_usd = 1.5\n",
    )
    .expect("write");
    std::fs::write(
        project.path("super.toml"),
        "model = \"llama3.2\"\noutput = \"quiet\"\n",
    )
    .expect("write");
    let output = project
        .command()
        .env("SUPER_BASE_URL", "http://gpu:11434")
        .args(["config", "show"])
        .output()
        .expect("run");
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    insta::assert_snapshot!("config_show", project.redact(&stdout(&output)));
    let json = project.run(&["config", "show", "-o", "json"]);
    let document: Value = serde_json::from_str(&stdout(&json)).expect("json");
    let model = document["values"]
        .as_array()
        .expect("values")
        .iter()
        .find(|v| v["key"] == "model")
        .expect("model");
    assert_eq!(model["value"], "\"llama3.2\"");
    assert!(model["position"]
        .as_str()
        .expect("position")
        .ends_with("super.toml:1:9"));
}

#[test]
fn an_unknown_config_key_warns_at_its_place() {
    let server = stub();
    let project = project(&server, BLOG);
    std::fs::write(project.path("super.toml"), "timeout = 30\nmodle = \"x\"\n").expect("write");
    let output = project.run(&[
        "orchestra",
        "run",
        "blog",
        "--goal",
        "g",
        "--var",
        "topic=t",
        "--dry-run",
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let errors = stderr(&output);
    assert!(errors.contains("warning: unknown key `modle`"), "{errors}");
    assert!(errors.contains("super.toml:2:1"), "{errors}");
    assert!(errors.contains("did you mean `model`?"), "{errors}");
    std::fs::write(project.path("super.toml"), "timeout = \"soon\"\n").expect("write");
    let output = project.run(&[
        "orchestra",
        "run",
        "blog",
        "--goal",
        "g",
        "--var",
        "topic=t",
        "--dry-run",
    ]);
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("super.toml:1:11"),
        "{}",
        stderr(&output)
    );
}

/// The documented fields of an event type: its section of docs/events.md and the common ones.
fn documented(kind: &str) -> Vec<String> {
    let doc = include_str!("../../docs/events.md");
    let heading = format!("### `{kind}`");
    let take = |start: &str| -> Vec<String> {
        let Some(at) = doc.find(start) else {
            return Vec::new();
        };
        let rest = &doc[at + start.len()..];
        let end = rest.find("\n#").unwrap_or(rest.len());
        rest[..end]
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .map(str::to_string)
            .collect()
    };
    let mut fields = take(&heading);
    assert!(!fields.is_empty(), "docs/events.md documents `{kind}`");
    fields.extend(take("## Every event"));
    fields
}

fn paths(value: &Value, prefix: &str, out: &mut Vec<String>, opaque: &[&str]) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                out.push(path.clone());
                if !opaque.contains(&path.as_str()) {
                    paths(inner, &path, out, opaque);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                paths(item, &format!("{prefix}[]"), out, opaque);
            }
        }
        _ => {}
    }
}

#[test]
fn json_events_are_stamped_parsed_and_documented() {
    let server = stub();
    let project = project(&server, BLOG);
    let output = project.run(&[
        "orchestra",
        "run",
        "blog",
        "--goal",
        "g",
        "--var",
        "topic=t",
        "--json",
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let lines: Vec<Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let run_id = lines[0]["run_id"].as_str().expect("a run id").to_string();
    assert_eq!(lines[0]["schema_version"], 1);
    assert_eq!(lines[0]["event"], "run_started");
    let mut kinds = Vec::new();
    for line in &lines {
        assert_eq!(line["run_id"], run_id.as_str(), "{line}");
        let stamp = line["timestamp"].as_str().expect("timestamp");
        assert!(stamp.ends_with('Z') && stamp.len() == 24, "{stamp}");
        let kind = line["event"].as_str().expect("event").to_string();
        let fields = documented(&kind);
        let mut found = Vec::new();
        paths(
            line,
            "",
            &mut found,
            &["inputs", "attempts", "manager", "manifest"],
        );
        for path in found {
            assert!(
                fields.contains(&path),
                "`{kind}` emits `{path}`, which docs/events.md does not list"
            );
        }
        kinds.push(kind);
    }
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.get("schema_version").is_some())
            .count(),
        1
    );
    assert!(kinds.contains(&"task_finished".to_string()));
    let finished = lines
        .iter()
        .find(|l| l["event"] == "task_finished")
        .expect("finished");
    assert_eq!(finished["name"], "write");
    assert_eq!(finished["status"], "succeeded");
    assert!(finished.get("record").is_none());
    assert_eq!(manifest_id(&project), run_id);

    // The dry run: one structured object, documented too.
    let dry = project.run(&[
        "orchestra",
        "run",
        "blog",
        "--goal",
        "g",
        "--var",
        "topic=t",
        "--json",
        "--dry-run",
    ]);
    assert_eq!(code(&dry), 0, "{}", stderr(&dry));
    let plan: Value = serde_json::from_str(stdout(&dry).trim()).expect("one JSON object");
    assert_eq!(plan["event"], "dry_run");
    assert_eq!(plan["tasks"][0]["name"], "write");
    assert_eq!(plan["inputs"]["topic"], "t");
    assert!(plan["timestamp"].is_string() && plan["run_id"].is_null());
    let fields = documented("dry_run");
    let mut found = Vec::new();
    paths(
        &plan,
        "",
        &mut found,
        &["inputs", "tasks[].output_schema.schema"],
    );
    for path in found {
        assert!(
            fields.contains(&path),
            "`dry_run` emits `{path}`, which docs/events.md does not list"
        );
    }
    // An invalid file: one `invalid` line.
    let invalid = project.run(&["orchestra", "run", "blog", "--goal", "g", "--json"]);
    assert_eq!(code(&invalid), 2);
    let line: Value = serde_json::from_str(stdout(&invalid).trim()).expect("one JSON object");
    assert_eq!(line["event"], "invalid");
    let fields = documented("invalid");
    let mut found = Vec::new();
    paths(&line, "", &mut found, &[]);
    for path in found {
        assert!(
            fields.contains(&path),
            "`invalid` emits `{path}`, which docs/events.md does not list"
        );
    }
}

fn manifest_id(project: &Project) -> String {
    project.manifest("blog")["run_id"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn run_task_takes_inputs_and_finish_records_them() {
    let server = stub();
    let project = project(&server, BLOG);
    let output = project.run(&[
        "orchestra",
        "run-task",
        "blog",
        "--task",
        "write",
        "--goal",
        "g",
        "--var",
        "topic=pods",
        "--run-id",
        "r1",
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(prompts(&server)[0].contains("Write about pods for engineers"));
    let record: Value =
        serde_json::from_str(&project.read("orchestra_workspaces/blog/tasks/write.json"))
            .expect("the task's record");
    assert_eq!(record["inputs"]["topic"], "pods");
    // Without the value the task cannot run: the same diagnostic as a run.
    let missing = project.run(&[
        "orchestra",
        "run-task",
        "blog",
        "--task",
        "write",
        "--goal",
        "g",
    ]);
    assert_eq!(code(&missing), 2);
    assert!(
        stderr(&missing).contains("input `topic` has no value"),
        "{}",
        stderr(&missing)
    );
    let finish = project.run(&["orchestra", "finish", "blog", "--run-id", "r1"]);
    assert_eq!(code(&finish), 0, "{}", stderr(&finish));
    assert_eq!(project.manifest("blog")["inputs"]["topic"], "pods");
}
