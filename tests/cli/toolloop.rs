//! The tool loop on every protocol (OpenAI's is in `core.rs`): Ollama's `tool_calls` and
//! Anthropic's `tool_use` blocks, the result sent back in each protocol's own shape; the run's
//! `--max-tool-calls` budget; and `--replay` of a tool-using task that runs no tool.

use crate::support::{code, stderr, stdout, Project};
use llm_stub::{Step, StubConfig, StubServer};
use serde_json::{json, Value};

fn agent(provider: &str, base: &str, tools: &str) -> String {
    format!(
        "apiVersion: agent/v1\nkind: AgentSpec\nmetadata:\n  name: Worker\n  id: worker\nspec:\n  language_model:\n    provider: {provider}\n    model: test-model\n    api_base: {base}\n  persona:\n    role: Worker\n  tasks:\n  - name: work\n    instruction: Use your tools.\n  tools:\n    enabled: true\n    specific_tools: [{tools}]\n    max_iterations: 4\n"
    )
}

const ORCHESTRA: &str =
    "metadata:\n  id: one\ntasks:\n  - name: work\n    agent: worker\n    description: Work on {goal}.\n    retry_count: 0\n";

fn ollama_tool_call(name: &str, arguments: Value) -> Vec<u8> {
    let call = json!({"model": "test-model", "message": {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": name, "arguments": arguments}}]}, "done": false});
    let done = json!({"model": "test-model", "message": {"role": "assistant", "content": ""}, "done": true, "done_reason": "stop", "prompt_eval_count": 10, "eval_count": 5});
    format!("HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\nconnection: close\r\n\r\n{call}\n{done}\n").into_bytes()
}

fn anthropic_tool_use(id: &str, name: &str, arguments: Value) -> Vec<u8> {
    let events = [
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "test-model", "content": [], "usage": {"input_tokens": 10, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": arguments.to_string()}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 5}}),
        json!({"type": "message_stop"}),
    ];
    let mut body = String::new();
    for event in events {
        body.push_str(&format!(
            "event: {}\ndata: {event}\n\n",
            event["type"].as_str().unwrap_or_default()
        ));
    }
    format!("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n{body}")
        .into_bytes()
}

fn openai_tool_call(id: &str, name: &str, arguments: Value) -> Vec<u8> {
    let chunk = json!({"choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [{"index": 0, "id": id, "type": "function", "function": {"name": name, "arguments": arguments.to_string()}}]}}]});
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\ndata: {chunk}\n\ndata: {{\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"tool_calls\"}}]}}\n\ndata: [DONE]\n\n"
    )
    .into_bytes()
}

fn run(project: &Project, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["orchestra", "run", "one", "--goal", "six times seven"];
    args.extend_from_slice(extra);
    project
        .command()
        .env("ANTHROPIC_API_KEY", "k")
        .args(args)
        .output()
        .expect("run")
}

#[test]
fn ollama_and_anthropic_send_the_tool_result_back_in_their_own_shape() {
    for provider in ["ollama", "anthropic"] {
        let reply = match provider {
            "ollama" => ollama_tool_call("calculator", json!({"expression": "6*7"})),
            _ => anthropic_tool_use("toolu_1", "calculator", json!({"expression": "6*7"})),
        };
        let server =
            StubServer::start_background(StubConfig::default().script(vec![Step::raw(reply)]))
                .expect("stub");
        let project = Project::empty();
        project.agent("worker", &agent(provider, &server.base_url(), "calculator"));
        project.orchestra("one", ORCHESTRA);
        let output = run(&project, &[]);
        assert_eq!(
            code(&output),
            0,
            "{provider}: {}{}",
            stdout(&output),
            stderr(&output)
        );
        let requests = server.requests();
        assert_eq!(requests.len(), 2, "{provider}");
        let first = &requests[0].body;
        let second = &requests[1].body;
        match provider {
            "ollama" => {
                assert_eq!(
                    first["tools"][0]["function"]["name"], "calculator",
                    "{first}"
                );
                let messages = second["messages"].as_array().expect("messages");
                let assistant = &messages[messages.len() - 2];
                assert_eq!(assistant["tool_calls"][0]["function"]["name"], "calculator");
                let result = &messages[messages.len() - 1];
                assert_eq!(result["role"], "tool", "{result}");
                assert!(
                    result["content"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("42"),
                    "{result}"
                );
            }
            _ => {
                assert_eq!(first["tools"][0]["name"], "calculator", "{first}");
                assert!(first["tools"][0]["input_schema"].is_object());
                let messages = second["messages"].as_array().expect("messages");
                let assistant = &messages[messages.len() - 2];
                assert_eq!(assistant["role"], "assistant");
                let tool_use = assistant["content"]
                    .as_array()
                    .and_then(|blocks| blocks.iter().find(|b| b["type"] == "tool_use"))
                    .unwrap_or_else(|| panic!("the tool_use block is sent back: {assistant}"));
                assert_eq!(tool_use["id"], "toolu_1");
                let result = &messages[messages.len() - 1];
                assert_eq!(result["role"], "user", "{result}");
                let block = &result["content"][0];
                assert_eq!(block["type"], "tool_result", "{result}");
                assert_eq!(block["tool_use_id"], "toolu_1");
                assert!(block["content"].to_string().contains("42"), "{block}");
            }
        }
        let manifest = project.manifest("one");
        let attempt = &manifest["tasks"][0]["attempts"][0];
        assert_eq!(attempt["tool_calls"][0]["name"], "calculator", "{provider}");
        assert_eq!(
            attempt["tool_calls"][0]["arguments"],
            r#"{"expression":"6*7"}"#
        );
        let trace =
            std::fs::read_to_string(project.workspace("one").join("trace.jsonl")).expect("trace");
        let span: Value = trace
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|s| s["name"] == "execute_tool calculator")
            .unwrap_or_else(|| panic!("{provider}: a span for the tool call: {trace}"));
        assert_eq!(span["attributes"]["gen_ai.tool.name"], "calculator");
        assert_eq!(span["status"]["code"], "OK");
    }
}

/// `--max-tool-calls` bounds the whole run: past it, pending calls are answered "not run" and
/// the model is asked for its final answer without tools.
#[test]
fn the_run_tool_call_budget_stops_further_calls() {
    let server = StubServer::start_background(StubConfig::default().script(vec![
        Step::raw(openai_tool_call(
            "c1",
            "calculator",
            json!({"expression": "1+1"}),
        )),
        Step::raw(openai_tool_call(
            "c2",
            "calculator",
            json!({"expression": "2+2"}),
        )),
    ]))
    .expect("stub");
    let project = Project::empty();
    project.agent(
        "worker",
        &agent("openai", &server.openai_base_url(), "calculator"),
    );
    project.orchestra("one", ORCHESTRA);
    let dry = run(&project, &["--max-tool-calls", "1", "--dry-run"]);
    assert!(stdout(&dry).contains("1 tool calls"), "{}", stdout(&dry));
    let output = run(&project, &["--max-tool-calls", "1"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let requests = server.requests();
    assert_eq!(requests.len(), 3, "call, call (refused), final answer");
    let last = &requests[2].body;
    assert_eq!(last["tool_choice"], "none", "{last}");
    let messages = last["messages"].as_array().expect("messages");
    let refused = messages
        .iter()
        .find(|m| m["tool_call_id"] == "c2")
        .unwrap_or_else(|| panic!("c2 is answered: {last}"));
    assert!(
        refused["content"]
            .as_str()
            .unwrap_or_default()
            .contains("max_tool_calls 1"),
        "{refused}"
    );
    let manifest = project.manifest("one");
    let calls = manifest["tasks"][0]["attempts"][0]["tool_calls"]
        .as_array()
        .expect("calls");
    assert_eq!(calls.len(), 1, "only one tool ran");
}

/// `--replay` reproduces a tool-using task with no network and without running its tools: the
/// file the recorded run wrote is not written again, and each call's result comes from the
/// recording.
#[test]
fn a_replay_runs_no_tool() {
    let server = StubServer::start_background(StubConfig::default().script(vec![Step::raw(
        openai_tool_call(
            "w1",
            "file_writer",
            json!({"path": "intermediate/notes.md", "content": "written once"}),
        ),
    )]))
    .expect("stub");
    let project = Project::empty();
    project.agent(
        "worker",
        &agent("openai", &server.openai_base_url(), "file_writer"),
    );
    project.orchestra("one", ORCHESTRA);
    let recording = project.path("calls.jsonl");
    let recording = recording.to_str().expect("utf-8 path");
    let first = run(&project, &["--record", recording]);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    let notes = project.workspace("one").join("intermediate/notes.md");
    assert_eq!(
        std::fs::read_to_string(&notes).expect("written"),
        "written once"
    );
    let recorded_answer = std::fs::read_to_string(
        project
            .workspace("one")
            .join("task_outputs/work_output.txt"),
    )
    .expect("output");
    server.shutdown();

    std::fs::remove_file(&notes).expect("remove");
    let replay = run(&project, &["--replay", recording, "--no-cache"]);
    assert_eq!(code(&replay), 0, "{}{}", stdout(&replay), stderr(&replay));
    assert!(!notes.exists(), "the tool ran during the replay");
    let answer = std::fs::read_to_string(
        project
            .workspace("one")
            .join("task_outputs/work_output.txt"),
    )
    .expect("output");
    assert_eq!(answer, recorded_answer);
    let manifest = project.manifest("one");
    let call = &manifest["tasks"][0]["attempts"][0]["tool_calls"][0];
    assert_eq!(call["name"], "file_writer");
    assert_eq!(call["replayed"], true, "{call}");
    assert!(call.get("error").is_none(), "{call}");
}
