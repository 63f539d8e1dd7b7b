//! Real SuperOptiX projects, round two (issue 17): agents found by folder, id or name; orchestras
//! found by id whatever the file is called; validate agreeing with run; the providers real
//! playbooks name; the built-in library; the commands upstream's guides tell users to run.

use crate::support::{code, language_model, stderr, stdout, Project};
use llm_stub::{StubConfig, StubServer};

/// An OpenAI-compatible endpoint nothing listens on: enough for `validate`, which makes no call.
const OFFLINE: &str = "http://127.0.0.1:9/v1";

fn offline_lm() -> String {
    language_model("openai", OFFLINE)
}

/// A playbook whose folder, `metadata.id` and `metadata.name` all differ.
fn playbook_named(id: &str, display_name: &str, task: &str, lm: &str) -> String {
    format!(
        "apiVersion: agent/v1
kind: AgentSpec
metadata:
  name: {display_name}
  id: {id}
  namespace: testing
  version: 0.1.0
spec:
{lm}  persona:
    role: {display_name}
    goal: Produce the output of {task}
    backstory: A fixture written for the test-suite.
  tasks:
  - name: {task}
    instruction: Do {task} for the goal in three short lines.
"
    )
}

fn orchestra_with(id: &str, tasks: &[(&str, &str)]) -> String {
    let mut yaml = format!(
        "orchestra:\n  id: {id}\n  execution:\n    strategy: sequential\n    max_parallel_tasks: 1\ntasks:\n"
    );
    for (i, (name, agent)) in tasks.iter().enumerate() {
        yaml.push_str(&format!(
            "  - name: {name}\n    agent: \"{agent}\"\n    description: Work on '{{goal}}'.\n"
        ));
        if i > 0 {
            yaml.push_str(&format!("    context: [{}]\n", tasks[i - 1].0));
        }
    }
    yaml
}

/// Folders `report` (id `report_demo`) and `helper` (id `my-agent-demo`, name `Helper Bot`).
fn mismatched_project(server: &StubServer) -> Project {
    let project = Project::empty();
    let lm = language_model("openai", &server.openai_base_url());
    project.agent(
        "report",
        &playbook_named("report_demo", "Report Writer", "write_report", &lm),
    );
    project.agent(
        "helper",
        &playbook_named("my-agent-demo", "Helper Bot", "help_out", &lm),
    );
    project
}

#[test]
fn agents_whose_folder_and_id_differ_are_found_by_either_and_create_validates_and_runs() {
    let server = StubServer::start_background(StubConfig::default()).expect("stub");
    let project = mismatched_project(&server);

    let create = project.run(&["orchestra", "create", "mixed"]);
    assert_eq!(code(&create), 0, "{}", stderr(&create));
    let yaml = project.read("demo/orchestras/mixed_orchestra.yaml");
    assert!(
        yaml.contains("agent: report\n") && yaml.contains("agent: helper\n"),
        "{yaml}"
    );
    let validate = project.run(&["orchestra", "validate", "mixed", "--strict"]);
    assert_eq!(code(&validate), 0, "{}", stderr(&validate));
    let run = project.run(&["orchestra", "run", "mixed", "--goal", "ship it"]);
    assert_eq!(code(&run), 0, "{}", stderr(&run));
    assert_eq!(server.request_count(), 2);
    // Upstream's closing line, last, for scripts that grep it.
    assert_eq!(
        stdout(&run).trim_end().lines().last(),
        Some("🎉 Orchestra completed successfully!"),
        "{}",
        stdout(&run)
    );

    // An orchestra naming the agents by id and by name (slugged or as written) validates too.
    project.orchestra(
        "by_id",
        &orchestra_with(
            "by_id",
            &[
                ("first", "report_demo"),
                ("second", "my-agent-demo"),
                ("third", "my_agent_demo"),
                ("fourth", "Helper Bot"),
                ("fifth", "report_writer"),
            ],
        ),
    );
    let validate = project.run(&["orchestra", "validate", "by_id", "--strict"]);
    assert_eq!(code(&validate), 0, "{}", stderr(&validate));

    for name in ["report", "report_demo", "Report Writer", "report_writer"] {
        let show = project.run(&["agent", "show", name]);
        assert_eq!(code(&show), 0, "{name}: {}", stderr(&show));
        assert!(
            stdout(&show).contains("report_playbook.yaml"),
            "{name}: {}",
            stdout(&show)
        );
    }
}

#[test]
fn two_playbooks_answering_to_one_name_is_an_error_naming_both() {
    let project = Project::empty();
    // Copies of one playbook keep its `metadata.id`.
    project.agent(
        "copy_a",
        &playbook_named("shared", "Twin Agent", "task_a", &offline_lm()),
    );
    project.agent(
        "copy_b",
        &playbook_named("shared", "Twin Agent", "task_b", &offline_lm()),
    );
    // A folder name decides before any id, as upstream (which knows only folders) decides.
    project.agent(
        "alpha",
        &playbook_named("beta", "Alpha Agent", "task_c", &offline_lm()),
    );
    project.agent(
        "beta",
        &playbook_named("beta_two", "Beta Agent", "task_d", &offline_lm()),
    );
    project.orchestra("clash", &orchestra_with("clash", &[("only", "shared")]));
    let validate = project.run(&["orchestra", "validate", "clash"]);
    assert_eq!(code(&validate), 2, "{}", stdout(&validate));
    let err = stderr(&validate);
    assert!(
        err.contains("ambiguous")
            && err.contains("copy_a_playbook.yaml")
            && err.contains("copy_b_playbook.yaml")
            && err.contains("clash_orchestra.yaml:8"),
        "{err}"
    );
    let show = project.run(&["agent", "show", "Twin Agent"]);
    assert_eq!(code(&show), 2);
    assert!(stderr(&show).contains("ambiguous"), "{}", stderr(&show));
    let show = project.run(&["agent", "show", "beta"]);
    assert_eq!(code(&show), 0, "{}", stderr(&show));
    assert!(
        stdout(&show).contains("beta_playbook.yaml"),
        "{}",
        stdout(&show)
    );

    // Create writes names that resolve: the folder names.
    let create = project.run(&["orchestra", "create", "all"]);
    assert_eq!(code(&create), 0, "{}", stderr(&create));
    let yaml = project.read("demo/orchestras/all_orchestra.yaml");
    for folder in ["alpha", "beta", "copy_a", "copy_b"] {
        assert!(yaml.contains(&format!("agent: {folder}\n")), "{yaml}");
    }
    let validate = project.run(&["orchestra", "validate", "all", "--strict"]);
    assert_eq!(code(&validate), 0, "{}", stderr(&validate));
}

#[test]
fn orchestras_are_found_by_id_whatever_the_file_is_called() {
    let project = Project::empty();
    project.simple_agent("developer", "implement_feature", "openai", OFFLINE);
    let yaml = orchestra_with("sdlc_v2", &[("build", "developer")]);
    project.orchestra("pipeline", &yaml);
    let list = project.run(&["orchestra", "list"]);
    assert!(stdout(&list).contains("sdlc_v2"), "{}", stdout(&list));
    let validate = project.run(&["orchestra", "validate", "sdlc_v2"]);
    assert_eq!(code(&validate), 0, "{}", stderr(&validate));
    assert!(stdout(&validate).contains("pipeline_orchestra.yaml"));

    // A second file with the same id: an error naming both files.
    std::fs::write(project.path("demo/orchestras/copy.yaml"), &yaml).expect("write");
    let validate = project.run(&["orchestra", "validate", "sdlc_v2"]);
    assert_eq!(code(&validate), 2);
    let err = stderr(&validate);
    assert!(
        err.contains("ambiguous")
            && err.contains("pipeline_orchestra.yaml")
            && err.contains("copy.yaml"),
        "{err}"
    );
    let missing = project.run(&["orchestra", "validate", "nothing_here"]);
    assert_eq!(code(&missing), 2);
    assert!(
        stderr(&missing).contains("orchestra.id"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn validate_agrees_with_run_on_empty_orchestras_self_context_and_useless_parallelism() {
    let project = Project::empty();
    project.simple_agent("developer", "implement_feature", "openai", OFFLINE);

    project.orchestra(
        "empty",
        "orchestra:\n  id: empty\n  execution:\n    strategy: sequential\ntasks: []\n",
    );
    let validate = project.run(&["orchestra", "validate", "empty"]);
    assert_eq!(code(&validate), 2, "{}", stdout(&validate));
    assert!(
        stderr(&validate).contains("has no tasks"),
        "{}",
        stderr(&validate)
    );
    let run = project.run(&["orchestra", "run", "empty", "--goal", "x"]);
    assert_eq!(code(&run), 2);

    project.orchestra(
        "selfish",
        "orchestra:\n  id: selfish\ntasks:\n  - name: build\n    agent: developer\n    description: Build '{goal}'.\n    context: [build]\n",
    );
    let validate = project.run(&["orchestra", "validate", "selfish"]);
    assert_eq!(code(&validate), 2);
    let err = stderr(&validate);
    assert!(
        err.contains("task `build` lists itself in context")
            && err.contains("hint")
            && !err.contains("cycle"),
        "{err}"
    );

    project.orchestra(
        "wide",
        "orchestra:\n  id: wide\n  execution:\n    strategy: sequential\n    max_parallel_tasks: 4\ntasks:\n  - name: build\n    agent: developer\n    description: Build '{goal}'.\n",
    );
    let validate = project.run(&["orchestra", "validate", "wide"]);
    assert_eq!(code(&validate), 0, "{}", stderr(&validate));
    let err = stderr(&validate);
    assert!(
        err.contains("warning") && err.contains("no effect under `strategy: sequential`"),
        "{err}"
    );
    let strict = project.run(&["orchestra", "validate", "wide", "--strict"]);
    assert_eq!(code(&strict), 2);
}

/// One agent on `language_model` (the YAML under `spec:`), one task, run against the stub.
fn provider_project(language_model: &str) -> Project {
    let project = Project::empty();
    project.agent(
        "worker",
        &playbook_named("worker", "Worker", "work", language_model),
    );
    project.orchestra("one", &orchestra_with("one", &[("work", "worker")]));
    project
}

struct ProviderCase {
    provider: &'static str,
    /// Extra `language_model` lines (indented four spaces).
    extra: &'static str,
    /// `None`: `api_base` is the stub's `/v1` URL; `Some(false)`: the stub's root URL (the
    /// provider adds what it needs); `Some(true)`: no `api_base` at all (from the environment).
    base: Option<bool>,
    env: &'static [(&'static str, &'static str)],
    path: &'static str,
    header: (&'static str, &'static str),
    model: &'static str,
}

const PROVIDER_ENV: &[&str] = &[
    "HF_TOKEN",
    "HUGGINGFACE_API_KEY",
    "HUGGING_FACE_HUB_TOKEN",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_API_BASE",
    "OPENAI_API_VERSION",
    "AZURE_API_VERSION",
    "LITELLM_API_BASE",
    "LITELLM_PROXY_URL",
    "LITELLM_MASTER_KEY",
    "GATEWAY_API_BASE",
];

fn run_provider_case(case: &ProviderCase) {
    let server = StubServer::start_background(StubConfig::default()).expect("stub");
    let base = match case.base {
        None => format!("    api_base: {}\n", server.openai_base_url()),
        Some(false) => format!("    api_base: {}\n", server.base_url()),
        Some(true) => String::new(),
    };
    let lm = format!(
        "  language_model:\n    provider: {}\n    model: {}\n{base}{}",
        case.provider, case.model, case.extra
    );
    let project = provider_project(&lm);
    let mut command = project.command();
    for variable in PROVIDER_ENV {
        command.env_remove(variable);
    }
    command.env_remove("OPENAI_API_KEY");
    for (key, value) in case.env {
        let value = value.replace("{stub}", &server.base_url());
        command.env(key, value);
    }
    let validate = command
        .args(["orchestra", "validate", "one", "--strict"])
        .output()
        .expect("validate");
    assert_eq!(
        code(&validate),
        0,
        "{}: {}",
        case.provider,
        stderr(&validate)
    );
    let mut command = project.command();
    for variable in PROVIDER_ENV {
        command.env_remove(variable);
    }
    command.env_remove("OPENAI_API_KEY");
    for (key, value) in case.env {
        command.env(key, value.replace("{stub}", &server.base_url()));
    }
    let run = command
        .args(["orchestra", "run", "one", "--goal", "check the wiring"])
        .output()
        .expect("run");
    assert_eq!(code(&run), 0, "{}: {}", case.provider, stderr(&run));
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{}", case.provider);
    let request = &requests[0];
    assert_eq!(request.path, case.path, "{}", case.provider);
    assert_eq!(
        request.header(case.header.0),
        Some(case.header.1),
        "{}: {:?}",
        case.provider,
        request.headers
    );
    assert_eq!(
        request.model(),
        Some(case.model_sent()),
        "{}",
        case.provider
    );
    // The key never reaches the terminal or the workspace.
    let secret = case.header.1.trim_start_matches("Bearer ");
    assert!(!stdout(&run).contains(secret) && !stderr(&run).contains(secret));
    for file in crate::support::files_under(&project.workspace("one")) {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(!text.contains(secret), "{} holds the key", file.display());
    }
}

impl ProviderCase {
    /// The model field the server should see (a LiteLLM-style `provider/` prefix is dropped).
    fn model_sent(&self) -> &'static str {
        match self.model.split_once('/') {
            Some((prefix, rest)) if self.provider.starts_with(prefix) => rest,
            _ => self.model,
        }
    }
}

#[test]
fn each_new_provider_reaches_the_right_path_with_the_right_key_and_model() {
    let cases = [
        ProviderCase {
            provider: "google",
            extra: "    location: us-central1\n    model_type: chat\n    runtime_mode: api\n",
            base: None,
            env: &[("GEMINI_API_KEY", "gemini-key-1")],
            path: "/v1/chat/completions",
            header: ("authorization", "Bearer gemini-key-1"),
            model: "gemini-2.5-flash",
        },
        ProviderCase {
            provider: "gemini",
            extra: "",
            base: None,
            env: &[("GOOGLE_API_KEY", "google-key-2")],
            path: "/v1/chat/completions",
            header: ("authorization", "Bearer google-key-2"),
            model: "gemini/gemini-2.0-flash",
        },
        ProviderCase {
            provider: "mlx",
            extra: "    model_info:\n      family: qwen\n    cache: true\n",
            base: Some(false),
            env: &[("MLX_API_KEY", "mlx-key-3")],
            path: "/v1/chat/completions",
            header: ("authorization", "Bearer mlx-key-3"),
            model: "mlx-community/Qwen2.5-0.5B-Instruct-4bit",
        },
        ProviderCase {
            provider: "lm_studio",
            extra: "",
            base: Some(false),
            env: &[("LM_STUDIO_API_KEY", "lms-key-4")],
            path: "/v1/chat/completions",
            header: ("authorization", "Bearer lms-key-4"),
            model: "qwen2.5-7b-instruct",
        },
        ProviderCase {
            provider: "huggingface",
            extra: "",
            base: None,
            env: &[("HF_TOKEN", "hf_token_5")],
            path: "/v1/chat/completions",
            header: ("authorization", "Bearer hf_token_5"),
            model: "meta-llama/Llama-3.1-8B-Instruct",
        },
        ProviderCase {
            provider: "litellm",
            extra: "    gateway:\n      enabled: true\n",
            base: None,
            env: &[("LITELLM_API_KEY", "sk-litellm-6")],
            path: "/v1/chat/completions",
            header: ("authorization", "Bearer sk-litellm-6"),
            model: "bedrock/anthropic.claude-3-haiku",
        },
        ProviderCase {
            provider: "gateway",
            extra: "",
            base: None,
            env: &[("GATEWAY_API_KEY", "gw-key-7")],
            path: "/v1/chat/completions",
            header: ("authorization", "Bearer gw-key-7"),
            model: "openai/gpt-4o-mini",
        },
        ProviderCase {
            provider: "azure",
            extra: "    api_version: 2024-06-01\n",
            base: Some(false),
            env: &[("AZURE_OPENAI_API_KEY", "azure-key-8")],
            path: "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-06-01",
            header: ("api-key", "azure-key-8"),
            model: "azure/gpt4o-prod",
        },
        ProviderCase {
            provider: "azure_openai",
            extra: "",
            base: Some(true),
            env: &[
                ("AZURE_OPENAI_API_KEY", "azure-key-9"),
                ("AZURE_OPENAI_ENDPOINT", "{stub}"),
                ("OPENAI_API_VERSION", "2025-01-01-preview"),
            ],
            path: "/openai/deployments/chat-deploy/chat/completions?api-version=2025-01-01-preview",
            header: ("api-key", "azure-key-9"),
            model: "chat-deploy",
        },
    ];
    for case in &cases {
        run_provider_case(case);
    }
}

#[test]
fn provider_errors_name_the_agent_and_the_playbook_line() {
    // Bedrock: refused, with the alternative.
    let project = provider_project(
        "  language_model:\n    provider: bedrock\n    model: anthropic.claude-3-haiku\n",
    );
    let validate = project.run(&["orchestra", "validate", "one"]);
    assert_eq!(code(&validate), 2);
    let err = stderr(&validate);
    assert!(
        err.contains("agent `worker`")
            && err.contains("`bedrock` is not supported")
            && err.contains("worker_playbook.yaml:10")
            && err.contains("LiteLLM"),
        "{err}"
    );

    // A proxy with no endpoint.
    let project =
        provider_project("  language_model:\n    provider: gateway\n    model: gpt-4o-mini\n");
    let validate = project.run(&["orchestra", "validate", "one"]);
    assert_eq!(code(&validate), 2);
    let err = stderr(&validate);
    assert!(
        err.contains("agent `worker`")
            && err.contains("needs an endpoint")
            && err.contains("worker_playbook.yaml:10")
            && err.contains("api_base"),
        "{err}"
    );

    // A local server with no model: the agent and the line, not just "no model given".
    let project = provider_project("  language_model:\n    provider: vllm\n");
    let validate = project.run(&["orchestra", "validate", "one"]);
    assert_eq!(code(&validate), 2);
    let err = stderr(&validate);
    assert!(
        err.contains("agent `worker`: no model given for provider `vllm`")
            && err.contains("worker_playbook.yaml:10"),
        "{err}"
    );

    // A hosted provider with no key.
    let project = provider_project("  language_model:\n    provider: huggingface\n");
    let mut command = project.command();
    for variable in PROVIDER_ENV {
        command.env_remove(variable);
    }
    let validate = command
        .args(["orchestra", "validate", "one"])
        .output()
        .expect("validate");
    assert_eq!(code(&validate), 2);
    let err = stderr(&validate);
    assert!(
        err.contains("agent `worker`") && err.contains("HF_TOKEN") && err.contains(":10"),
        "{err}"
    );
}

#[test]
fn a_failed_run_does_not_print_the_success_line() {
    let server =
        StubServer::start_background(StubConfig::default().fail_first(10, 400)).expect("stub");
    let project = provider_project(&language_model("openai", &server.openai_base_url()));
    let run = project.run(&["orchestra", "run", "one", "--goal", "x"]);
    assert_eq!(code(&run), 1, "{}", stderr(&run));
    assert!(
        !stdout(&run).contains("completed successfully"),
        "{}",
        stdout(&run)
    );
}

#[test]
fn every_library_agent_is_pulled_created_validated_and_run_on_the_stub() {
    let server = StubServer::start_background(StubConfig::default()).expect("stub");
    let project = Project::init("all");
    let list = project.run(&["agent", "list", "--library"]);
    assert_eq!(code(&list), 0, "{}", stderr(&list));
    let text = stdout(&list);
    let names: Vec<String> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("[library] "))
        .filter_map(|rest| rest.split_whitespace().next().map(str::to_string))
        .collect();
    assert!(names.len() >= 40, "{text}");
    for group in [
        "marketing:",
        "research:",
        "data:",
        "finance:",
        "legal:",
        "support:",
        "product:",
        "security:",
        "education:",
        "management:",
        "software:",
    ] {
        assert!(text.contains(group), "{group} in {text}");
    }
    assert!(
        !text.contains("Project agents"),
        "--library lists the library only"
    );

    let mut pull = vec!["agent", "pull"];
    pull.extend(names.iter().map(String::as_str));
    let pulled = project.run(&pull);
    assert_eq!(code(&pulled), 0, "{}", stderr(&pulled));

    let compile = project.run(&["agent", "compile", "--all"]);
    assert_eq!(code(&compile), 0, "{}", stderr(&compile));
    assert!(
        stdout(&compile).contains("no compile step")
            && stdout(&compile).contains(&format!("{} playbooks valid", names.len())),
        "{}",
        stdout(&compile)
    );

    let create = project.run(&["orchestra", "create", "everyone"]);
    assert_eq!(code(&create), 0, "{}", stderr(&create));
    let base = server.openai_base_url();
    let endpoint = ["--provider", "openai", "--base-url", base.as_str()];
    let mut validate = vec!["orchestra", "validate", "everyone", "--strict"];
    validate.extend(endpoint);
    let validated = project.run(&validate);
    assert_eq!(code(&validated), 0, "{}", stderr(&validated));

    let mut run = vec!["orchestra", "run", "everyone", "--goal", "launch a product"];
    run.extend(endpoint);
    let ran = project.run(&run);
    assert_eq!(code(&ran), 0, "{}", stderr(&ran));
    // Every agent ran at least one task, each a call with its persona.
    let requests = server.requests();
    assert!(requests.len() >= names.len(), "{} calls", requests.len());
    let manifest = project.manifest("everyone");
    let agents: std::collections::BTreeSet<&str> = manifest["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter(|t| t["status"] == "succeeded")
        .filter_map(|t| t["agent"].as_str())
        .collect();
    assert_eq!(agents.len(), names.len());
}

#[test]
fn pull_suggests_close_names_and_show_compile_optimize_speak_plainly() {
    let project = Project::init("typos");
    let pull = project.run(&["agent", "pull", "seo_specalist"]);
    assert_eq!(code(&pull), 2);
    assert!(
        stderr(&pull).contains("did you mean `seo_specialist`"),
        "{}",
        stderr(&pull)
    );
    assert!(!project.path("typos/agents/seo_specialist").exists());

    let show = project.run(&["agent", "show", "project_manger"]);
    assert_eq!(code(&show), 2);
    assert!(
        stderr(&show).contains("`project_manager`"),
        "{}",
        stderr(&show)
    );

    assert_eq!(code(&project.run(&["agent", "pull", "project_manager"])), 0);
    let compile = project.run(&["agent", "compile", "Project Manager"]);
    assert_eq!(code(&compile), 0, "{}", stderr(&compile));
    assert!(stdout(&compile).contains("1 playbook valid"));
    let neither = project.run(&["agent", "compile"]);
    assert_eq!(code(&neither), 2, "NAME or --all is required");

    // A broken playbook fails compile with its line.
    let dir = project.path("typos/agents/broken/playbook");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("broken_playbook.yaml"), "apiVersion: agent/v1\nkind: AgentSpec\nmetadata:\n  id: broken\nspec:\n  language_model:\n    provider: bedrock\n    model: x\n").expect("write");
    let compile = project.run(&["agent", "compile", "--all"]);
    assert_eq!(code(&compile), 2);
    assert!(
        stderr(&compile).contains("broken_playbook.yaml:7")
            && stderr(&compile).contains("not supported"),
        "{}",
        stderr(&compile)
    );

    let optimize = project.run(&["agent", "optimize", "project_manager"]);
    assert_eq!(code(&optimize), 1);
    let err = stderr(&optimize);
    assert!(
        err.contains("not provided") && err.contains("edit the playbook's persona"),
        "{err}"
    );
}

#[test]
fn playbook_inputs_and_outputs_reach_the_prompt_and_requires_output_passes_output() {
    let server = StubServer::start_background(StubConfig::default()).expect("stub");
    let project = Project::empty();
    let lm = language_model("openai", &server.openai_base_url());
    project.agent(
        "designer",
        &crate::support::playbook("designer", "Designer", "design", &lm),
    );
    let playbook = format!(
        "apiVersion: agent/v1
kind: AgentSpec
metadata:
  id: builder
spec:
{lm}  persona:
    role: Builder
  tasks:
  - name: build
    instruction: Build what the design says.
    inputs:
    - name: design_doc
      type: str
      description: The design to follow.
    outputs:
    - name: build_plan
      type: list
      description: Numbered build steps.
"
    );
    project.agent("builder", &playbook);
    project.orchestra(
        "deps",
        "orchestra:\n  id: deps\ntasks:\n  - name: design\n    agent: designer\n    description: Design '{goal}'.\n  - name: build\n    agent: builder\n    description: Build '{goal}'.\n    dependencies:\n      - task_name: design\n        dependency_type: requires_output\n        timeout_seconds: 120\n",
    );
    let validate = project.run(&["orchestra", "validate", "deps", "--strict"]);
    assert_eq!(code(&validate), 0, "{}", stderr(&validate));
    let run = project.run(&["orchestra", "run", "deps", "--goal", "a bridge"]);
    assert_eq!(code(&run), 0, "{}", stderr(&run));
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let system = |i: usize| -> String {
        requests[i].body["messages"][0]["content"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        system(1).contains("- design_doc (str): The design to follow.")
            && system(1).contains("Answer with:\n- build_plan (list): Numbered build steps."),
        "{}",
        system(1)
    );
    assert!(
        system(0).contains("- result (str): The result."),
        "{}",
        system(0)
    );
    let users = crate::support::user_messages(&server);
    assert!(
        users[1].contains("Output of `design` (designer)"),
        "{}",
        users[1]
    );
}

#[test]
fn sampling_settings_survive_a_provider_override() {
    let server = StubServer::start_background(StubConfig::default()).expect("stub");
    let project = provider_project(
        "  language_model:\n    provider: ollama\n    model: llama3.2\n    temperature: 0.3\n    max_tokens: 77\n",
    );
    let run = project.run(&[
        "orchestra",
        "run",
        "one",
        "--goal",
        "x",
        "--provider",
        "openai",
        "--model",
        "gpt-4o-mini",
        "--base-url",
        &server.openai_base_url(),
    ]);
    assert_eq!(code(&run), 0, "{}", stderr(&run));
    let body = &server.requests()[0].body;
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["temperature"], 0.3);
    assert_eq!(body["max_tokens"], 77);
}
