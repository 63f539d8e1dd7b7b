//! `agent evaluate`: a playbook's scenarios against the loopback stub, scored by token overlap
//! or by a judge model, with pass/fail, the exit code by `--min-pass`, the JSON report, and the
//! cache.

use crate::support::{code, stderr, stdout, Project};
use llm_stub::{StubConfig, StubServer};
use serde_json::Value;

fn playbook(base: &str, scenarios: &str) -> String {
    format!(
        "apiVersion: agent/v1\nkind: AgentSpec\nmetadata:\n  name: Coder\n  id: coder\nspec:\n  language_model:\n    provider: openai\n    model: coder-model\n    api_base: {base}\n  persona:\n    role: Developer\n  tasks:\n  - name: implement\n    instruction: Implement what is asked.\n{scenarios}"
    )
}

const SCENARIOS: &str = "  feature_specifications:
    scenarios:
    - name: validate_email
      description: Write an email validator.
      input:
        feature_requirement: ALPHA validate an email address
      expected_output:
        implementation: return true false boolean
    - name: register_endpoint
      input:
        feature_requirement: BETA design a registration endpoint
      expected_output:
        implementation: POST users endpoint
    - name: memory_leak
      input:
        feature_requirement: GAMMA fix a leak
      expected_output:
        implementation: memory leak cleanup
";

fn server() -> StubServer {
    StubServer::start_background(StubConfig::default().reply_fn(|request| {
        if request.body["model"] == "judge-model" {
            return r#"{"score": 0.9, "reason": "Close enough."}"#.to_string();
        }
        let user = llm_stub::last_user_message(&request.body).unwrap_or_default();
        if user.contains("ALPHA") {
            "return True or False as a boolean".into()
        } else if user.contains("BETA") {
            "POST /users endpoint".into()
        } else {
            "I would rather talk about the weather.".into()
        }
    }))
    .expect("stub")
}

#[test]
fn scenarios_are_scored_reported_and_gate_the_exit_code() {
    let server = server();
    let project = Project::empty();
    project.agent("coder", &playbook(&server.openai_base_url(), SCENARIOS));
    let strict = project.run(&["agent", "evaluate", "coder"]);
    assert_eq!(code(&strict), 1, "{}{}", stdout(&strict), stderr(&strict));
    let text = stdout(&strict);
    assert!(text.contains("2/3 passed"), "{text}");
    assert!(text.contains("validate_email"), "{text}");
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    let first = llm_stub::last_user_message(&requests[0].body).unwrap_or_default();
    assert!(
        first.contains("feature requirement: ALPHA"),
        "the input fields make the prompt: {first}"
    );
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(
            project.path("orchestra_workspaces/_evaluations/coder/evaluation.json"),
        )
        .expect("report"),
    )
    .expect("json");
    assert_eq!(report["passed"], false);
    let scenarios = report["scenarios"].as_array().expect("scenarios");
    assert_eq!(scenarios.len(), 3);
    assert_eq!(scenarios[0]["passed"], true, "{}", scenarios[0]);
    assert_eq!(scenarios[2]["passed"], false);
    assert_eq!(scenarios[2]["score"], 0.0);
    assert!((report["pass_rate"].as_f64().unwrap_or_default() - 2.0 / 3.0).abs() < 1e-9);

    // The replies are cached: a looser gate passes with no new call.
    let loose = project.run(&["agent", "evaluate", "coder", "--min-pass", "0.6"]);
    assert_eq!(code(&loose), 0, "{}", stdout(&loose));
    assert_eq!(server.request_count(), 3, "cached replies");
    assert!(stdout(&loose).contains("(cached)"));
}

#[test]
fn a_judge_model_scores_with_a_reason() {
    let server = server();
    let project = Project::empty();
    project.agent("coder", &playbook(&server.openai_base_url(), SCENARIOS));
    let judged = project.run(&[
        "agent",
        "evaluate",
        "coder",
        "--judge",
        "judge-model",
        "--threshold",
        "0.8",
    ]);
    assert_eq!(code(&judged), 0, "{}{}", stdout(&judged), stderr(&judged));
    assert!(
        stdout(&judged).contains("Close enough."),
        "{}",
        stdout(&judged)
    );
    let judge_requests: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.body["model"] == "judge-model")
        .collect();
    assert_eq!(judge_requests.len(), 3);
    assert_eq!(
        judge_requests[0].body["response_format"]["type"],
        "json_schema"
    );
    let prompt = llm_stub::last_user_message(&judge_requests[0].body).unwrap_or_default();
    assert!(
        prompt.contains("return true false boolean") && prompt.contains("return True or False"),
        "{prompt}"
    );
}

#[test]
fn a_playbook_without_scenarios_says_how_to_add_them() {
    let project = Project::empty();
    project.agent("coder", &playbook("http://127.0.0.1:9/v1", ""));
    let output = project.run(&["agent", "evaluate", "coder"]);
    assert_eq!(code(&output), 2);
    let text = stderr(&output);
    assert!(
        text.contains("no `feature_specifications` section"),
        "{text}"
    );
    assert!(text.contains("coder_playbook.yaml"), "{text}");
}
