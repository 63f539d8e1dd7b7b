//! Structured outputs end to end: each protocol is asked for the schema its own way, an invalid
//! reply gets exactly one repair request carrying the validator's message, two invalid replies
//! fail the attempt with `invalid_output`, field references reach later prompts, and every bad
//! schema is a load-time diagnostic at its own line.

use crate::support::{code, stderr, stdout, Project};
use llm_stub::{Step, StubConfig, StubServer};
use serde_json::{json, Value};

const SCHEMA_YAML: &str = "    output_schema:
      type: object
      properties:
        name: {type: string, maxLength: 40}
        endpoints:
          type: array
          items: {type: string}
          minItems: 1
      required: [name, endpoints]
      additionalProperties: false
";

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 40},
            "endpoints": {"type": "array", "items": {"type": "string"}, "minItems": 1}
        },
        "required": ["name", "endpoints"],
        "additionalProperties": false
    })
}

const VALID: &str = r#"{"name": "auth", "endpoints": ["/login", "/logout"]}"#;

fn one_task(retry_count: u32) -> String {
    format!(
        "metadata:\n  id: one\ntasks:\n  - name: design\n    agent: worker\n    description: Design the API for '{{goal}}'.\n    timeout_seconds: 10\n    retry_count: {retry_count}\n{SCHEMA_YAML}"
    )
}

fn project_for(provider: &str, server: &StubServer, orchestra: &str) -> Project {
    let project = Project::empty();
    let base = match provider {
        "openai" => server.openai_base_url(),
        _ => server.base_url(),
    };
    project.simple_agent("worker", "design", provider, &base);
    project.orchestra("one", orchestra);
    project
}

fn run(project: &Project) -> std::process::Output {
    project
        .command()
        .env("ANTHROPIC_API_KEY", "k")
        .args(["orchestra", "run", "one", "--goal", "a login page"])
        .output()
        .expect("run")
}

/// The text of the last user message of a recorded request, in any of the three protocols.
fn last_user_text(body: &Value) -> String {
    llm_stub::last_user_message(body).unwrap_or_default()
}

#[test]
fn every_protocol_carries_the_schema_and_one_repair_fixes_a_bad_reply() {
    for provider in ["openai", "ollama", "anthropic"] {
        let server = StubServer::start_background(StubConfig::default().script(vec![
            Step::text("Sure! The API is called auth."),
            Step::text(VALID),
        ]))
        .expect("stub");
        let project = project_for(provider, &server, &one_task(0));
        let output = run(&project);
        assert_eq!(
            code(&output),
            0,
            "{provider}: {}{}",
            stdout(&output),
            stderr(&output)
        );
        let requests = server.requests();
        assert_eq!(requests.len(), 2, "{provider}: one answer, one repair");
        let first = &requests[0].body;
        match provider {
            "openai" => {
                assert_eq!(first["response_format"]["type"], "json_schema");
                assert_eq!(first["response_format"]["json_schema"]["strict"], true);
                assert_eq!(first["response_format"]["json_schema"]["schema"], schema());
            }
            "ollama" => assert_eq!(first["format"], schema(), "{first}"),
            _ => {
                assert_eq!(first["tool_choice"]["type"], "tool", "{first}");
                let name = first["tool_choice"]["name"].clone();
                let tool = first["tools"]
                    .as_array()
                    .and_then(|tools| tools.iter().find(|t| t["name"] == name))
                    .unwrap_or_else(|| panic!("the forced tool is offered: {first}"));
                assert_eq!(tool["input_schema"], schema());
            }
        }
        let repair = last_user_text(&requests[1].body);
        assert!(
            repair.contains("the reply is not valid JSON"),
            "{provider}: the repair request shows the validator's message: {repair}"
        );
        let ws = project.workspace("one");
        let object: Value = serde_json::from_str(
            &std::fs::read_to_string(ws.join("task_outputs/design_output.json")).expect("json"),
        )
        .expect("the output file is JSON");
        assert_eq!(
            object,
            json!({"name": "auth", "endpoints": ["/login", "/logout"]})
        );
        let shared: Value = serde_json::from_str(
            &std::fs::read_to_string(ws.join("intermediate/shared_data.json")).expect("shared"),
        )
        .expect("shared_data is JSON");
        assert_eq!(
            shared["tasks"]["design"]["output"], object,
            "an object, not a string"
        );
        let manifest = project.manifest("one");
        let calls = &manifest["tasks"][0]["attempts"][0]["calls"];
        assert_eq!(calls[0].get("repair"), None);
        assert_eq!(calls[1]["repair"], true, "{calls}");
        assert_eq!(manifest["totals"]["llm_calls"], 2);
    }
}

#[test]
fn two_invalid_replies_fail_the_attempt_with_invalid_output() {
    for provider in ["openai", "ollama", "anthropic"] {
        let server = StubServer::start_background(StubConfig::default().script(vec![
            Step::text(r#"{"name": "auth"}"#),
            Step::text(r#"{"name": "auth", "endpoints": [], "extra": true}"#),
        ]))
        .expect("stub");
        let project = project_for(provider, &server, &one_task(0));
        let output = run(&project);
        assert_eq!(code(&output), 1, "{provider}: {}", stderr(&output));
        let requests = server.requests();
        assert_eq!(requests.len(), 2, "{provider}: exactly one repair");
        let repair = last_user_text(&requests[1].body);
        assert!(
            repair.contains("endpoints"),
            "{provider}: the validator names the missing field: {repair}"
        );
        let manifest = project.manifest("one");
        let attempt = &manifest["tasks"][0]["attempts"][0];
        assert_eq!(attempt["reason"], "invalid_output", "{attempt}");
        assert_eq!(manifest["tasks"][0]["status"], "failed");
        let ws = project.workspace("one");
        let log = std::fs::read_to_string(ws.join("task_outputs/design_error.txt")).expect("log");
        assert!(
            log.contains(r#""extra": true"#),
            "the last reply is kept: {log}"
        );
        assert!(!ws.join("task_outputs/design_output.json").exists());
    }
}

#[test]
fn an_invalid_output_is_retried_under_the_task_retry_policy() {
    let server = StubServer::start_background(StubConfig::default().script(vec![
        Step::text("no"),
        Step::text("still no"),
        Step::text(VALID),
    ]))
    .expect("stub");
    let project = project_for("openai", &server, &one_task(1));
    let output = run(&project);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(server.requests().len(), 3);
    let manifest = project.manifest("one");
    let attempts = manifest["tasks"][0]["attempts"]
        .as_array()
        .expect("attempts");
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["reason"], "invalid_output");
    assert_eq!(attempts[1]["ok"], true);
}

/// A server that refuses `json_schema` is asked again with `json_object`; the call's record
/// says so, and the next structured call goes straight to `json_object`.
#[test]
fn a_server_that_refuses_json_schema_gets_json_object() {
    let server = StubServer::start_background(StubConfig::default().script(vec![
        Step::Status {
            code: 400,
            retry_after: None,
            message: "response_format json_schema is not supported by this model".into(),
        },
        Step::text(VALID),
    ]))
    .expect("stub");
    let project = project_for("openai", &server, &one_task(0));
    let output = run(&project);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].body["response_format"]["type"], "json_object");
    assert!(requests[1].body["response_format"]
        .get("json_schema")
        .is_none());
    let system = requests[1].body["messages"][0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        system.contains("\"endpoints\""),
        "the schema is in the prompt: {system}"
    );
    let manifest = project.manifest("one");
    let note = manifest["tasks"][0]["attempts"][0]["calls"][0]["note"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(note.contains("json_object"), "{note}");
}

const THREE_TASKS: &str = "metadata:\n  id: one\ntasks:
  - name: design
    agent: worker
    description: Design the API for '{goal}'.
SCHEMA
  - name: review
    agent: worker
    description: Review the API named {design.name}.
  - name: build
    agent: worker
    description: Build {design.endpoints} for {design.name}; the review said {review}.
";

/// Task 3 uses fields of task 1's object: the values reach its prompt, and the references
/// are dependencies even without `context`.
#[test]
fn field_references_put_values_into_later_prompts() {
    let server = StubServer::start_background(StubConfig::default().reply_fn(|request| {
        if request.body.get("response_format").is_some() {
            VALID.to_string()
        } else {
            "REVIEW-OK".to_string()
        }
    }))
    .expect("stub");
    let orchestra = THREE_TASKS.replace("SCHEMA\n", SCHEMA_YAML);
    let project = project_for("openai", &server, &orchestra);
    let dry = project.run(&["orchestra", "run", "one", "--goal", "G", "--dry-run"]);
    assert_eq!(code(&dry), 0, "{}", stderr(&dry));
    let plan = stdout(&dry);
    assert!(plan.contains("depends on: design\n"), "{plan}");
    assert!(plan.contains("depends on: design, review"), "{plan}");
    assert!(
        plan.contains("output: JSON from output_schema, enforced natively"),
        "{plan}"
    );
    assert!(plan.contains("\"endpoints\""), "{plan}");
    let output = run(&project);
    assert_eq!(code(&output), 0, "{}{}", stdout(&output), stderr(&output));
    let prompts: Vec<String> = server
        .requests()
        .iter()
        .map(|r| last_user_text(&r.body))
        .collect();
    assert_eq!(prompts.len(), 3);
    assert!(
        prompts[1].contains("Review the API named auth."),
        "{}",
        prompts[1]
    );
    assert!(
        prompts[2].contains(r#"Build ["/login","/logout"] for auth; the review said REVIEW-OK."#),
        "{}",
        prompts[2]
    );
}

#[test]
fn playbook_outputs_become_the_schema_under_output_format_json() {
    let server = StubServer::start_background(
        StubConfig::default().reply_fn(|_| r#"{"result": "done"}"#.to_string()),
    )
    .expect("stub");
    let project = project_for(
        "openai",
        &server,
        "metadata:\n  id: one\ntasks:\n  - name: design\n    agent: worker\n    description: Do it.\n    output_format: json\n",
    );
    let output = run(&project);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let requests = server.requests();
    assert_eq!(
        requests[0].body["response_format"]["json_schema"]["schema"],
        json!({
            "type": "object",
            "properties": {"result": {"type": "string", "description": "The result."}},
            "required": ["result"],
            "additionalProperties": false
        })
    );
    let text = std::fs::read_to_string(
        project
            .workspace("one")
            .join("task_outputs/design_output.json"),
    )
    .expect("json output");
    assert_eq!(
        serde_json::from_str::<Value>(&text).ok(),
        Some(json!({"result": "done"}))
    );
}

/// Every bad schema or reference stops the load with the file, line and column of the fault.
#[test]
fn bad_schemas_and_references_are_load_time_diagnostics() {
    let project = Project::empty();
    project.simple_agent("worker", "design", "openai", "http://127.0.0.1:9/v1");
    let cases: [(&str, String, &[&str]); 6] = [
        (
            "an unsupported keyword",
            one_task(0).replace("maxLength: 40}", "pattern: '^a'}"),
            &[
                "unsupported keyword `pattern`",
                "one_orchestra.yaml:12:30",
                "supported keywords:",
            ],
        ),
        (
            "a dangling $ref",
            one_task(0).replace("items: {type: string}", "items: {$ref: '#/$defs/nothing'}"),
            &["invalid output schema", "nothing", "one_orchestra.yaml:"],
        ),
        (
            "an unknown type",
            one_task(0).replace("{type: string}", "{type: strnig}"),
            &["invalid output schema", "strnig"],
        ),
        (
            "an unknown field",
            THREE_TASKS
                .replace("SCHEMA\n", SCHEMA_YAML)
                .replace("{design.name}.", "{design.nmae}."),
            &[
                "defines no field `nmae`",
                "did you mean `{design.name}`",
                "one_orchestra.yaml:19:39",
            ],
        ),
        (
            "an unknown task in a reference",
            THREE_TASKS
                .replace("SCHEMA\n", SCHEMA_YAML)
                .replace("{design.name}.", "{desing.name}."),
            &["no task is named `desing`", "did you mean `design`"],
        ),
        (
            "a field of a task without a schema",
            THREE_TASKS
                .replace("SCHEMA\n", "")
                .replace("{review}", "{review.verdict}"),
            &["has no output schema", "review"],
        ),
    ];
    for (what, yaml, needles) in cases {
        project.orchestra("one", &yaml);
        let output = project.run(&["orchestra", "validate", "one"]);
        assert_eq!(code(&output), 2, "{what}: {}", stdout(&output));
        let text = format!("{}{}", stdout(&output), stderr(&output));
        for needle in needles {
            assert!(
                text.contains(needle),
                "{what}: `{needle}` missing from:\n{text}"
            );
        }
    }
}

#[test]
fn an_output_schema_file_is_read_relative_to_the_project() {
    let project = Project::empty();
    project.simple_agent("worker", "design", "openai", "http://127.0.0.1:9/v1");
    std::fs::create_dir_all(project.path("schemas")).expect("mkdir");
    std::fs::write(
        project.path("schemas/design.json"),
        serde_json::to_string_pretty(&schema()).expect("json"),
    )
    .expect("write");
    let orchestra = |file: &str| {
        format!("metadata:\n  id: one\ntasks:\n  - name: design\n    agent: worker\n    description: D.\n    output_schema_file: {file}\n")
    };
    project.orchestra("one", &orchestra("schemas/design.json"));
    let dry = project.run(&["orchestra", "run", "one", "--goal", "G", "--dry-run"]);
    assert_eq!(code(&dry), 0, "{}", stderr(&dry));
    assert!(
        stdout(&dry).contains("output: JSON from `schemas/design.json`"),
        "{}",
        stdout(&dry)
    );

    project.orchestra("one", &orchestra("schemas/missing.json"));
    let missing = project.run(&["orchestra", "validate", "one"]);
    assert_eq!(code(&missing), 2);
    let text = format!("{}{}", stdout(&missing), stderr(&missing));
    assert!(
        text.contains("failed to read its `output_schema_file` `schemas/missing.json`"),
        "{text}"
    );

    std::fs::write(project.path("schemas/bad.json"), "{\n  \"type\": \"object\",\n  \"properties\": {\"a\": {\"type\": \"string\", \"format\": \"email\"}}\n}\n").expect("write");
    project.orchestra("one", &orchestra("schemas/bad.json"));
    let bad = project.run(&["orchestra", "validate", "one"]);
    assert_eq!(code(&bad), 2);
    let text = format!("{}{}", stdout(&bad), stderr(&bad));
    assert!(
        text.contains("bad.json:3:"),
        "the fault is pointed at in the schema file: {text}"
    );
    assert!(text.contains("unsupported keyword `format`"), "{text}");
}
