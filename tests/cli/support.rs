//! Test support: a temporary SuperOptiX project with our own fixture playbooks, the real
//! `super` binary run inside it with a clean environment, and redaction for snapshots.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

pub const API_KEY: &str = "sk-test-SECRET-4f1c9a";

pub struct Project {
    /// Removes the folder when the test ends.
    _guard: tempfile::TempDir,
    root: PathBuf,
}

/// A playbook of our own in the SuperSpec format.
pub fn playbook(agent: &str, role: &str, task: &str, language_model: &str) -> String {
    format!(
        "apiVersion: agent/v1
kind: AgentSpec
metadata:
  name: {role} Fixture
  id: {agent}
  namespace: testing
  version: 0.1.0
  description: A fixture agent for tests.
spec:
{language_model}  persona:
    name: {agent}_bot
    role: {role}
    goal: Produce the output of {task}
    backstory: A fixture written for the test-suite.
    traits:
    - exact
    - brief
  tasks:
  - name: {task}
    instruction: Do {task} for the goal in three short lines.
    inputs:
    - name: goal
      type: str
      description: The goal.
      required: true
    outputs:
    - name: result
      type: str
      description: The result.
  agentflow:
  - name: step
    type: Generate
    task: {task}
  evaluation:
    builtin_metrics:
    - name: answer_exact_match
      threshold: 1.0
"
    )
}

/// `spec.language_model` for a provider at a base URL (empty for the embedded default).
pub fn language_model(provider: &str, base_url: &str) -> String {
    if provider.is_empty() {
        return String::new();
    }
    format!("  language_model:\n    provider: {provider}\n    model: test-model\n    api_base: {base_url}\n    temperature: 0.1\n")
}

pub const SDLC: &str = "metadata:
  name: \"Sdlc Orchestra\"
  id: \"sdlc\"
  version: \"1.0.0\"
  kind: \"basic\"
  description: \"Three agents, one after another.\"

orchestra:
  id: \"sdlc\"
  name: \"Sdlc Orchestra\"
  description: \"Three agents, one after another.\"
  workspace:
    type: local_fs
    path: \"./orchestra_workspaces/sdlc\"
  execution:
    strategy: \"sequential\"
    max_parallel_tasks: 1
    task_timeout_seconds: 300
    retry_strategy: \"exponential_backoff\"
    enable_metrics: true
    enable_trace: true

agents:
  - developer
  - devops_engineer
  - qa_engineer

tasks:
  - name: implement_feature
    agent: developer
    description: >
      Apply developer expertise to '{goal}'. Implement the feature.
    priority: \"medium\"
    timeout_seconds: 600
  - name: configure_ci_pipeline
    agent: devops_engineer
    description: >
      Apply devops engineer expertise to '{goal}'. Configure a CI pipeline.
    context: [\"implement_feature\"]
    priority: \"medium\"
    timeout_seconds: 600
  - name: create_test_plan
    agent: qa_engineer
    description: >
      Apply qa engineer expertise to '{goal}'. Create a test plan.
    context: [\"configure_ci_pipeline\"]
    priority: \"medium\"
    timeout_seconds: 600
";

impl Project {
    /// An empty project named `demo`.
    pub fn empty() -> Project {
        let guard = tempfile::Builder::new()
            .prefix("super-test-")
            .tempdir()
            .expect("temp dir");
        let root = guard.path().to_path_buf();
        std::fs::write(root.join(".super"), "project: demo\n").expect("write .super");
        std::fs::create_dir_all(root.join("demo/agents")).expect("agents dir");
        std::fs::create_dir_all(root.join("demo/orchestras")).expect("orchestras dir");
        Project {
            _guard: guard,
            root,
        }
    }

    /// A project that `super init NAME` creates in a new temp folder.
    pub fn init(name: &str) -> Project {
        let guard = tempfile::Builder::new()
            .prefix("super-init-")
            .tempdir()
            .expect("temp dir");
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_super"))
            .current_dir(guard.path())
            .args(["init", name])
            .output()
            .expect("run super init");
        assert_eq!(code(&output), 0, "init: {}", stderr(&output));
        let root = guard.path().join(name);
        Project {
            _guard: guard,
            root,
        }
    }

    /// A project with the sdlc agents on `provider` at `base_url`, and the sdlc orchestra.
    pub fn sdlc(provider: &str, base_url: &str) -> Project {
        let project = Project::empty();
        let lm = language_model(provider, base_url);
        project.agent(
            "developer",
            &playbook("developer", "Software Developer", "implement_feature", &lm),
        );
        project.agent(
            "devops_engineer",
            &playbook(
                "devops_engineer",
                "DevOps Engineer",
                "configure_ci_pipeline",
                &lm,
            ),
        );
        project.agent(
            "qa_engineer",
            &playbook("qa_engineer", "QA Engineer", "create_test_plan", &lm),
        );
        project.orchestra("sdlc", SDLC);
        project
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    pub fn agent(&self, name: &str, yaml: &str) {
        let dir = self.path(&format!("demo/agents/{name}/playbook"));
        std::fs::create_dir_all(&dir).expect("agent dir");
        std::fs::write(dir.join(format!("{name}_playbook.yaml")), yaml).expect("write playbook");
    }

    /// Adds a fixture agent for `task` on the given provider.
    pub fn simple_agent(&self, name: &str, task: &str, provider: &str, base_url: &str) {
        self.agent(
            name,
            &playbook(
                name,
                "Fixture Worker",
                task,
                &language_model(provider, base_url),
            ),
        );
    }

    pub fn orchestra(&self, id: &str, yaml: &str) -> PathBuf {
        let package = std::fs::read_to_string(self.path(".super"))
            .ok()
            .and_then(|t| {
                t.trim()
                    .strip_prefix("project:")
                    .map(|n| n.trim().to_string())
            })
            .unwrap_or_else(|| "demo".into());
        let path = self.path(&format!("{package}/orchestras/{id}_orchestra.yaml"));
        std::fs::write(&path, yaml).expect("write orchestra");
        path
    }

    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path(relative))
            .unwrap_or_else(|e| panic!("read {relative}: {e}"))
    }

    pub fn workspace(&self, id: &str) -> PathBuf {
        self.path(&format!("orchestra_workspaces/{id}"))
    }

    pub fn manifest(&self, id: &str) -> serde_json::Value {
        let text = std::fs::read_to_string(self.workspace(id).join("run.json")).expect("run.json");
        serde_json::from_str(&text).expect("run.json is JSON")
    }

    /// Each task's status in `run.json`, in plan order.
    pub fn statuses(&self, id: &str) -> Vec<String> {
        let manifest = self.manifest(id);
        manifest["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .filter_map(|t| t["status"].as_str().map(str::to_string))
            .collect()
    }

    /// The `super` binary, run in the project with a clean environment.
    pub fn command(&self) -> std::process::Command {
        self.command_with(env!("CARGO_BIN_EXE_super"))
    }

    /// `program` (a wrapper such as `script`) in the project, with `command`'s environment.
    pub fn command_with(&self, program: &str) -> std::process::Command {
        let mut command = std::process::Command::new(program);
        command.current_dir(self.root());
        for (key, _) in std::env::vars() {
            if key.starts_with("SUPER_")
                || key.ends_with("_API_KEY")
                || key == "OLLAMA_HOST"
                || key == "OPENAI_BASE_URL"
                || key.starts_with("OTEL_")
                || key == "RUST_LOG"
                || key == "TRACEPARENT"
            {
                command.env_remove(key);
            }
        }
        command
            .env("NO_COLOR", "1")
            .env("SUPER_RETRY_BASE_MS", "50")
            .env("SUPER_HOME", self.path(".super-home"))
            // The user's config is never the real one: a folder of the project, empty unless
            // a test writes `.config/super/config.toml`.
            .env("XDG_CONFIG_HOME", self.path(".config"))
            .env("OPENAI_API_KEY", API_KEY);
        command
    }

    /// Starts `super` in the background (output kept for `wait_with_output`) and returns once
    /// `server` has received `requests` requests, so the test knows where the run is.
    pub fn spawn_until(
        &self,
        args: &[&str],
        server: &llm_stub::StubServer,
        requests: usize,
    ) -> std::process::Child {
        let child = self
            .command()
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn super");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while server.request_count() < requests && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(
            server.request_count(),
            requests,
            "the run reached request {requests}"
        );
        child
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run super")
    }

    /// Replaces the temp folder and durations so output can be snapshotted.
    pub fn redact(&self, text: &str) -> String {
        let root = self.root().display().to_string();
        let mut out = text.replace(&root, "[PROJECT]");
        let canonical = std::fs::canonicalize(self.root())
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        if !canonical.is_empty() {
            out = out.replace(&canonical, "[PROJECT]");
        }
        out
    }
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The text of every user message the server received, in arrival order.
pub fn user_messages(server: &llm_stub::StubServer) -> Vec<String> {
    server
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| {
            let body = &r.body;
            match body.get("messages").and_then(|m| m.as_array()) {
                Some(messages) => messages
                    .iter()
                    .filter(|m| m.get("role").and_then(|r| r.as_str()) == Some("user"))
                    .map(|m| {
                        llm_stub::content_text(m.get("content").unwrap_or(&serde_json::Value::Null))
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
                None => String::new(),
            }
        })
        .collect()
}

/// A test that cannot run here: in CI (`CI` set) that is a failure; elsewhere it says loudly
/// that it skipped.
pub fn skip_or_fail(why: &str) {
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("{why}, and CI is set: this test must run in CI");
    }
    eprintln!("SKIPPED: {why}");
}
