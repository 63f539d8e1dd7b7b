//! Every diagnostic case names file:line:col, shows the line with a caret, gives a hint, and
//! exits 2. Snapshots keep the exact rendering.

use crate::support::{code, stderr, stdout, Project};

/// A project with the sdlc agents on a loopback Ollama address (no key needed; never called).
fn project() -> Project {
    Project::sdlc("ollama", "http://127.0.0.1:9")
}

fn validate(project: &Project, yaml: &str) -> (i32, String) {
    project.orchestra("broken", yaml);
    let output = project.run(&["orchestra", "validate", "broken"]);
    (code(&output), project.redact(&stderr(&output)))
}

const HEAD: &str = "metadata:\n  name: Broken\n  id: broken\norchestra:\n  execution:\n    strategy: sequential\nagents: [developer, devops_engineer, qa_engineer]\n";

fn check(name: &str, body: &str, expected_position: &str) {
    let project = project();
    let (exit, text) = validate(&project, &format!("{HEAD}{body}"));
    assert_eq!(exit, 2, "{name}: exit code\n{text}");
    assert!(
        text.contains(expected_position),
        "{name}: expected `{expected_position}` in\n{text}"
    );
    assert!(
        text.contains('^'),
        "{name}: a caret under the value\n{text}"
    );
    assert!(text.contains("hint"), "{name}: a hint\n{text}");
    insta::assert_snapshot!(name, text);
}

#[test]
fn yaml_syntax_error() {
    check(
        "yaml_syntax",
        "tasks:\n  - name: a\n    agent: developer\n   description: [unclosed\n",
        "broken_orchestra.yaml:11:",
    );
}

#[test]
fn wrong_type() {
    let project = project();
    let yaml = "metadata:\n  id: broken\norchestra:\n  execution:\n    max_parallel_tasks: three\n    enable_trace: sometimes\ntasks:\n  - name: a\n    agent: developer\n";
    let (exit, text) = validate(&project, yaml);
    assert_eq!(exit, 2);
    assert!(text.contains("broken_orchestra.yaml:5:25"), "{text}");
    assert!(text.contains("broken_orchestra.yaml:6:19"), "{text}");
    insta::assert_snapshot!("wrong_type", text);
}

#[test]
fn unknown_context_task() {
    check(
        "unknown_context",
        "tasks:\n  - name: implement_feature\n    agent: developer\n  - name: configure_ci_pipeline\n    agent: devops_engineer\n    context: [\"implement_featur\"]\n",
        "broken_orchestra.yaml:13:15",
    );
}

#[test]
fn unknown_dependency_task() {
    check(
        "unknown_dependency",
        "tasks:\n  - name: a\n    agent: developer\n    dependencies:\n      - task_name: nowhere\n        dependency_type: completion\n",
        "broken_orchestra.yaml:12:20",
    );
}

#[test]
fn dependency_cycle_names_every_task() {
    let body = "tasks:\n  - name: a\n    agent: developer\n    context: [c]\n  - name: b\n    agent: devops_engineer\n    context: [a]\n  - name: c\n    agent: qa_engineer\n    context: [b]\n";
    let project = project();
    let (exit, text) = validate(&project, &format!("{HEAD}{body}"));
    assert_eq!(exit, 2);
    assert!(text.contains("dependency cycle"), "{text}");
    for task in ["`a`", "`b`", "`c`"] {
        assert!(text.contains(task), "{task} in {text}");
    }
    assert!(text.contains("broken_orchestra.yaml:11:15"), "{text}");
    insta::assert_snapshot!("cycle", text);
}

#[test]
fn duplicate_task_name() {
    check(
        "duplicate_task",
        "tasks:\n  - name: a\n    agent: developer\n  - name: a\n    agent: qa_engineer\n",
        "broken_orchestra.yaml:11:11",
    );
}

#[test]
fn agent_without_playbook() {
    check(
        "missing_agent",
        "tasks:\n  - name: a\n    agent: architect\n",
        "broken_orchestra.yaml:10:12",
    );
}

#[test]
fn unknown_priority() {
    check(
        "unknown_priority",
        "tasks:\n  - name: a\n    agent: developer\n    priority: urgent\n",
        "broken_orchestra.yaml:11:15",
    );
}

#[test]
fn unknown_strategy() {
    let project = project();
    let yaml = "metadata:\n  id: broken\norchestra:\n  execution:\n    strategy: paralel\ntasks:\n  - name: a\n    agent: developer\n";
    let (exit, text) = validate(&project, yaml);
    assert_eq!(exit, 2);
    assert!(
        text.contains("broken_orchestra.yaml:5:15") && text.contains("did you mean `parallel`"),
        "{text}"
    );
    insta::assert_snapshot!("unknown_strategy", text);
}

#[test]
fn max_parallel_below_one() {
    let project = project();
    let yaml = "metadata:\n  id: broken\norchestra:\n  execution:\n    strategy: parallel\n    max_parallel_tasks: 0\ntasks:\n  - name: a\n    agent: developer\n";
    let (exit, text) = validate(&project, yaml);
    assert_eq!(exit, 2);
    assert!(text.contains("broken_orchestra.yaml:6:25"), "{text}");
    insta::assert_snapshot!("max_parallel", text);
}

#[test]
fn task_groups_unknown_task_and_task_in_two_groups() {
    let project = project();
    let yaml = "metadata:\n  id: broken\norchestra:\n  execution:\n    strategy: mixed\n    task_groups:\n      - name: one\n        tasks: [a, ghost]\n        execution_strategy: parallel\n      - name: two\n        tasks: [a]\ntasks:\n  - name: a\n    agent: developer\n";
    let (exit, text) = validate(&project, yaml);
    assert_eq!(exit, 2);
    assert!(
        text.contains("broken_orchestra.yaml:8:20"),
        "unknown task: {text}"
    );
    assert!(
        text.contains("broken_orchestra.yaml:11:17"),
        "task in two groups: {text}"
    );
    insta::assert_snapshot!("task_groups", text);
}

#[test]
fn unsafe_names_are_rejected_at_load_time() {
    let project = project();
    let yaml = "metadata:\n  id: broken\ntasks:\n  - name: ../escape\n    agent: developer\n  - name: a/b\n    agent: developer\n  - name: .hidden\n    agent: developer\n  - name: \"\"\n    agent: developer\n  - name: /etc/passwd\n    agent: developer\n  - name: 'back\\slash'\n    agent: developer\n  - name: \"nul\\0byte\"\n    agent: developer\n  - name: fine\n    agent: ../../etc\n";
    let (exit, text) = validate(&project, yaml);
    assert_eq!(exit, 2);
    for position in [
        ":4:11", ":6:11", ":8:11", ":10:11", ":12:11", ":14:11", ":16:11", ":19:12",
    ] {
        assert!(
            text.contains(&format!("broken_orchestra.yaml{position}")),
            "{position} in {text}"
        );
    }
    insta::assert_snapshot!("unsafe_names", text);
}

#[test]
fn unsafe_orchestra_id() {
    let project = project();
    let (exit, text) = validate(
        &project,
        "metadata:\n  id: ../up\ntasks:\n  - name: a\n    agent: developer\n",
    );
    assert_eq!(exit, 2);
    assert!(text.contains("broken_orchestra.yaml:2:7"), "{text}");
}

#[test]
fn every_error_is_reported_in_one_pass() {
    let project = project();
    let yaml = "metadata:\n  id: broken\norchestra:\n  execution:\n    max_parallel_tasks: 0\ntasks:\n  - name: a\n    agent: developer\n    priority: soon\n    context: [missing]\n  - name: a\n    agent: developer\n  - name: b\n    agent: nobody\n";
    let (exit, text) = validate(&project, yaml);
    assert_eq!(exit, 2);
    assert_eq!(text.matches("error:").count(), 5, "{text}");
    assert!(text.contains("5 errors"), "{text}");
}

#[test]
fn unknown_keys_warn_and_strict_makes_them_errors() {
    let project = project();
    let yaml = "metadata:\n  id: typo\ntasks:\n  - name: a\n    agent: developer\n  - name: b\n    agent: qa_engineer\n    contxt: [a]\n";
    project.orchestra("typo", yaml);
    let output = project.run(&["orchestra", "validate", "typo"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = project.redact(&stderr(&output));
    assert!(
        text.contains("warning: unknown key `contxt`") && text.contains("typo_orchestra.yaml:8:5"),
        "{text}"
    );
    assert!(text.contains("did you mean `context`?"), "{text}");
    assert!(stdout(&output).contains("is valid"));

    let strict = project.run(&["orchestra", "validate", "typo", "--strict"]);
    assert_eq!(code(&strict), 2);
    assert!(stderr(&strict).contains("error: unknown key `contxt`"));
}

#[test]
fn dry_run_of_an_invalid_orchestra_exits_2_and_makes_no_call() {
    let project = project();
    project.orchestra(
        "bad",
        "metadata:\n  id: bad\ntasks:\n  - name: a\n    agent: developer\n    context: [zzz]\n",
    );
    let output = project.run(&["orchestra", "run", "bad", "--goal", "x", "--dry-run"]);
    assert_eq!(code(&output), 2);
    assert!(stderr(&output).contains("bad_orchestra.yaml:6:15"));
}

#[test]
fn missing_api_key_names_the_variable() {
    let project = Project::sdlc("openai", "https://api.openai.com/v1");
    let output = project
        .command()
        .env_remove("OPENAI_API_KEY")
        .args(["orchestra", "validate", "sdlc"])
        .output()
        .expect("run");
    assert_eq!(code(&output), 2);
    let text = stderr(&output);
    assert!(
        text.contains("OPENAI_API_KEY") && text.contains("developer_playbook.yaml:11:15"),
        "{text}"
    );
}

#[test]
fn unknown_provider_is_a_validate_error() {
    let project = Project::sdlc("watsonx", "http://127.0.0.1:9");
    let output = project.run(&["orchestra", "validate", "sdlc"]);
    assert_eq!(code(&output), 2);
    let text = stderr(&output);
    assert!(
        text.contains("unknown provider `watsonx`")
            && text.contains("developer_playbook.yaml:11:15"),
        "{text}"
    );
}

#[test]
fn missing_local_model_names_the_fetch_command() {
    let project = Project::sdlc("", "");
    let output = project
        .command()
        .env("SUPER_LOCAL_MODEL", project.path("no-such-model.gguf"))
        .args(["orchestra", "run", "sdlc", "--goal", "x", "--dry-run"])
        .output()
        .expect("run");
    assert_eq!(code(&output), 2);
    let text = stderr(&output);
    assert!(
        text.contains("`super model pull`") && text.contains("sdlc_orchestra.yaml:"),
        "{text}"
    );
}

#[test]
fn an_invalid_playbook_is_reported_in_its_own_file_once() {
    let project = project();
    project.agent("developer", "apiVersion: agent/v1\nkind: AgentSpec\nspec:\n  persona: [not, a, mapping]\n  language_model:\n    provider: ollama\n    model: m\n    temperature: hot\n");
    let (exit, text) = validate(
        &project,
        &format!(
            "{HEAD}tasks:\n  - name: a\n    agent: developer\n  - name: b\n    agent: developer\n"
        ),
    );
    assert_eq!(exit, 2);
    assert!(text.contains("developer_playbook.yaml:4:12"), "{text}");
    assert!(text.contains("developer_playbook.yaml:8:18"), "{text}");
    assert!(!text.contains("has no playbook"), "{text}");
    assert_eq!(text.matches("error:").count(), 2, "{text}");
}
