//! Issue 11, as a user meets it: the workspace lock, signals, orphan temp files, no secret in
//! any output, no escape sequence on the terminal, no write outside the workspace, bounded
//! numbers and non-UTF-8 files.

use crate::support::{code, files_under, stderr, stdout, Project, API_KEY};
use llm_stub::{Step, StubConfig, StubServer};
use std::path::Path;
use std::time::Duration;

const GOAL: &str = "Build a login page";

/// A project with one task on `server`.
fn one_task(server: &StubServer) -> Project {
    let project = Project::empty();
    project.simple_agent("worker", "work", "openai", &server.openai_base_url());
    project.orchestra(
        "one",
        "metadata:\n  id: one\ntasks:\n  - name: work\n    agent: worker\n    description: Do '{goal}'\n",
    );
    project
}

/// Every file under `dir` and the given streams, as text.
fn haystack(dir: &Path, streams: &[String]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = streams
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("stream {i}"), s.clone()))
        .collect();
    for file in files_under(dir) {
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap_or_default()).into_owned();
        out.push((file.display().to_string(), text));
    }
    out
}

/// Runs `script` (with `$SUPER` the binary) in a private mount namespace, or `None` where
/// namespaces are not permitted (the caller skips loudly, or fails under `CI`).
pub fn in_mount_namespace(project: &Project, script: &str) -> Option<std::process::Output> {
    let probe = std::process::Command::new("unshare")
        .args(["-rm", "true"])
        .output();
    if !probe.map(|o| o.status.success()).unwrap_or(false) {
        assert!(
            std::env::var_os("CI").is_none(),
            "unshare -rm is not permitted here, and CI needs it"
        );
        eprintln!("SKIPPED: unshare -rm (a private mount namespace) is not permitted here");
        return None;
    }
    let template = project.command();
    let mut command = std::process::Command::new("unshare");
    command.args(["-rm", "sh", "-c", script]);
    command.env_clear();
    for (key, value) in template.get_envs() {
        if let Some(value) = value {
            command.env(key, value);
        }
    }
    for key in ["PATH", "HOME", "TMPDIR"] {
        if let Some(value) = std::env::var_os(key) {
            command.env(key, value);
        }
    }
    command
        .env("SUPER", env!("CARGO_BIN_EXE_super"))
        .current_dir(project.root());
    Some(command.output().expect("run unshare"))
}

// Item 3: the lock.

#[test]
fn a_reused_pid_in_the_lock_file_never_blocks_the_workspace() {
    let server = StubServer::start_background(StubConfig::default()).expect("stub");
    let project = one_task(&server);
    let ws = project.workspace("one");
    std::fs::create_dir_all(&ws).expect("workspace");
    // pid 1 is always alive: a pid-based lock would refuse for ever.
    std::fs::write(ws.join(".lock"), "1").expect("lock file");
    let output = project.run(&["orchestra", "run", "one", "--goal", GOAL]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(server.request_count(), 1);
}

#[test]
fn racing_starts_on_one_workspace_let_exactly_one_run_proceed() {
    let server = StubServer::start_background(StubConfig::default().latency(1500)).expect("stub");
    let project = one_task(&server);
    let ws = project.workspace("one");
    std::fs::create_dir_all(&ws).expect("workspace");
    std::fs::write(ws.join(".lock"), "999999").expect("stale lock");
    let children: Vec<_> = (0..6)
        .map(|_| {
            project
                .command()
                .args(["orchestra", "run", "one", "--goal", GOAL])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait"))
        .collect();
    let proceeded = outputs.iter().filter(|o| code(o) == 0).count();
    let refused: Vec<_> = outputs.iter().filter(|o| code(o) == 1).collect();
    assert_eq!(proceeded, 1, "exactly one run proceeds");
    assert_eq!(refused.len(), 5);
    for output in refused {
        assert!(
            stderr(output).contains("in use by another run"),
            "{}",
            stderr(output)
        );
    }
    assert_eq!(server.request_count(), 1, "the LLM was called once");
}

#[test]
fn a_read_only_workspace_names_the_os_cause() {
    let server = StubServer::start_background(StubConfig::default()).expect("stub");
    let project = one_task(&server);
    let ws = project.workspace("one");
    std::fs::create_dir_all(&ws).expect("workspace");
    let script = format!(
        "mount --bind '{ws}' '{ws}' && mount -o remount,bind,ro '{ws}' && exec \"$SUPER\" orchestra run one --goal G",
        ws = ws.display()
    );
    let Some(output) = in_mount_namespace(&project, &script) else {
        return;
    };
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    let text = stderr(&output);
    assert!(text.contains("Read-only file system"), "{text}");
    assert!(text.contains("orchestra_workspaces/one"), "{text}");
    assert_eq!(server.request_count(), 0);
}

// Item 4: SIGTERM and SIGHUP.

fn stopped_by(signal: i32, expected_code: i32) {
    let server = StubServer::start_background(
        StubConfig::default().script(vec![Step::Delay(Duration::from_millis(700))]),
    )
    .expect("stub");
    let project = Project::sdlc("openai", &server.openai_base_url());
    let child = project.spawn_until(&["orchestra", "run", "sdlc", "--goal", GOAL], &server, 1);
    // SAFETY: signalling our own child process.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
    let output = child.wait_with_output().expect("wait");
    assert_eq!(code(&output), expected_code, "{}", stderr(&output));
    let manifest = project.manifest("sdlc");
    assert_eq!(manifest["status"], "interrupted", "{manifest}");
    assert_eq!(
        manifest["tasks"][0]["status"], "succeeded",
        "the running task ended"
    );
    assert_eq!(server.request_count(), 1, "no new task started");
    // The lock was released: the next run proceeds.
    let next = project.run(&["orchestra", "run", "sdlc", "--goal", GOAL, "--resume"]);
    assert_eq!(code(&next), 0, "{}", stderr(&next));
    assert_eq!(server.request_count(), 3, "the finished task was reused");
}

#[test]
fn sigterm_saves_like_a_first_ctrl_c_and_exits_143() {
    stopped_by(libc::SIGTERM, 143);
}

#[test]
fn sighup_saves_like_a_first_ctrl_c_and_exits_129() {
    stopped_by(libc::SIGHUP, 129);
}

// Item 5: orphan temp files.

#[test]
fn orphan_temp_files_of_a_killed_run_are_removed_at_the_next_start() {
    let server = StubServer::start_background(StubConfig::default()).expect("stub");
    let project = one_task(&server);
    let temp = project.workspace("one").join(".tmp");
    std::fs::create_dir_all(&temp).expect("tmp");
    std::fs::write(temp.join(".work_output.txt.4242.0.tmp"), "half a fi").expect("orphan");
    let output = project.run(&["orchestra", "run", "one", "--goal", GOAL]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let left: Vec<_> = std::fs::read_dir(&temp).expect("tmp").flatten().collect();
    assert!(left.is_empty(), "orphans left: {left:?}");
}

// Items 6-8: secrets.

#[test]
fn help_never_shows_the_base_url_from_the_environment() {
    let project = Project::empty();
    let output = project
        .command()
        .env("SUPER_BASE_URL", "http://alice:hunter22@example.test/v1")
        .args(["orchestra", "run", "--help"])
        .output()
        .expect("help");
    assert_eq!(code(&output), 0);
    assert!(!stdout(&output).contains("hunter22"), "{}", stdout(&output));
}

#[test]
fn credentials_in_a_base_url_are_never_printed() {
    // Nothing listens on port 9: the failure message names the URL.
    let project = Project::sdlc("openai", "http://127.0.0.1:9/v1");
    let output = project
        .command()
        .env("SUPER_RETRY_BASE_MS", "1")
        .args([
            "orchestra",
            "run",
            "sdlc",
            "--goal",
            GOAL,
            "--verbose",
            "--base-url",
            "http://alice:hunter22@127.0.0.1:9/v1",
        ])
        .output()
        .expect("run");
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    for (what, text) in [("stdout", stdout(&output)), ("stderr", stderr(&output))] {
        assert!(!text.contains("hunter22"), "{what} leaked:\n{text}");
    }
    assert!(
        stdout(&output).contains("127.0.0.1:9"),
        "{}",
        stdout(&output)
    );
    let texts = haystack(&project.workspace("sdlc"), &[]);
    assert!(texts.len() > 3, "run.json, the error file, the trace");
    assert_eq!(assert_no_secret(&texts, &["hunter22"]), 0);
}

#[test]
fn a_key_echoed_by_the_server_is_never_printed() {
    let server = StubServer::start_background(StubConfig::default().step(Step::Status {
        code: 401,
        retry_after: None,
        message: format!("invalid credentials: Bearer {API_KEY} is not a key of this account"),
    }))
    .expect("stub");
    let project = one_task(&server);
    let output = project.run(&["orchestra", "run", "one", "--goal", GOAL]);
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    for (what, text) in [("stdout", stdout(&output)), ("stderr", stderr(&output))] {
        assert!(!text.contains(API_KEY), "{what} leaked:\n{text}");
    }
    assert!(
        stdout(&output).contains("invalid credentials"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn a_key_echoed_by_the_server_never_reaches_a_file() {
    let server = StubServer::start_background(StubConfig::default().step(Step::Status {
        code: 401,
        retry_after: None,
        message: format!("invalid credentials: Bearer {API_KEY}"),
    }))
    .expect("stub");
    let project = one_task(&server);
    let output = project.run(&["orchestra", "run", "one", "--goal", GOAL]);
    assert_eq!(code(&output), 1);
    let texts = haystack(
        &project.workspace("one"),
        &[stdout(&output), stderr(&output)],
    );
    assert!(texts.len() > 4, "run.json, the error file, the trace");
    assert_eq!(assert_no_secret(&texts, &[API_KEY]), 0);
}

#[test]
fn secrets_never_reach_the_json_stream() {
    let server = StubServer::start_background(StubConfig::default().step(Step::Status {
        code: 401,
        retry_after: None,
        message: format!("invalid credentials: Bearer {API_KEY}"),
    }))
    .expect("stub");
    let project = one_task(&server);
    let output = project.run(&["orchestra", "run", "one", "--goal", GOAL, "--json"]);
    assert_eq!(code(&output), 1);
    assert!(!stdout(&output).contains(API_KEY), "{}", stdout(&output));
}

#[test]
fn a_playbook_key_is_never_quoted_in_a_diagnostic() {
    let project = Project::empty();
    let secret = "sk-playbook-SECRET-77";
    let lm = format!(
        "  language_model:\n    provider: ollama\n    model: m\n    api_base: http://127.0.0.1:9\n    apikey: {secret}\n    token: [{secret}]\n"
    );
    project.agent(
        "worker",
        &crate::support::playbook("worker", "Worker", "work", &lm),
    );
    project.orchestra(
        "one",
        "metadata:\n  id: one\ntasks:\n  - name: work\n    agent: worker\n    description: Do '{goal}'\n",
    );
    let output = project.run(&["orchestra", "validate", "one"]);
    let text = stderr(&output);
    assert!(text.contains("unknown key `apikey`"), "{text}");
    assert!(!text.contains(secret), "the key was printed:\n{text}");
    assert!(text.contains("apikey: ***"), "{text}");
}

// Item 9: terminal escapes.

#[test]
fn escape_sequences_from_a_goal_or_a_reply_never_reach_the_terminal() {
    let reply = "Here \x1b]0;pwned\x07 is \x1b[2J\x1b[31mred\u{9b}1m text";
    let server = StubServer::start_background(StubConfig::default().reply(reply)).expect("stub");
    let project = one_task(&server);
    let goal = "Build \x1b[8mhidden\x1b[0m things";
    for args in [vec!["--verbose"], vec![]] {
        let mut all = vec!["orchestra", "run", "one", "--goal", goal];
        all.extend(args);
        let output = project.run(&all);
        assert_eq!(code(&output), 0, "{}", stderr(&output));
        for (what, text) in [("stdout", stdout(&output)), ("stderr", stderr(&output))] {
            assert!(
                !text.contains('\x1b') && !text.contains('\u{9b}') && !text.contains('\x07'),
                "{what} carries a raw control character:\n{text:?}"
            );
        }
    }
    // Files keep the bytes.
    let file = project.read("orchestra_workspaces/one/task_outputs/work_output.txt");
    assert!(file.contains("\x1b[2J"), "{file:?}");
}

// Item 10: the workspace stays in the project.

fn refused_workspace(path: &str) -> String {
    let project = Project::sdlc("ollama", "http://127.0.0.1:9");
    let yaml = crate::support::SDLC.replace("./orchestra_workspaces/sdlc", path);
    project.orchestra("sdlc", &yaml);
    let validate = project.run(&["orchestra", "validate", "sdlc"]);
    assert_eq!(code(&validate), 2, "{path}: {}", stderr(&validate));
    let text = project.redact(&stderr(&validate));
    assert!(
        text.contains("demo/orchestras/sdlc_orchestra.yaml:14:11"),
        "{path}: file:line:col\n{text}"
    );
    let run = project.run(&["orchestra", "run", "sdlc", "--goal", GOAL]);
    assert_eq!(code(&run), 2, "{path}: {}", stderr(&run));
    text
}

#[test]
fn a_workspace_outside_the_project_or_equal_to_it_is_refused() {
    for path in ["/etc", "../../tmp/x", ".", "./demo/.."] {
        let text = refused_workspace(path);
        assert!(text.contains("is refused"), "{path}: {text}");
    }
}

#[test]
fn a_workspace_holding_the_orchestra_files_is_refused() {
    let project = Project::sdlc("ollama", "http://127.0.0.1:9");
    let yaml = crate::support::SDLC.replace("./orchestra_workspaces/sdlc", "./demo");
    project.orchestra("sdlc", &yaml);
    let output = project.run(&["orchestra", "run", "sdlc", "--goal", GOAL]);
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    let text = project.redact(&stderr(&output));
    assert!(text.contains("contains the orchestra file"), "{text}");
    assert!(text.contains("sdlc_orchestra.yaml:14:11"), "{text}");
}

#[test]
fn a_workspace_reached_through_a_symlink_out_of_the_project_is_refused() {
    let outside = tempfile::tempdir().expect("outside");
    let project = Project::sdlc("ollama", "http://127.0.0.1:9");
    std::os::unix::fs::symlink(outside.path(), project.path("elsewhere")).expect("symlink");
    let yaml = crate::support::SDLC.replace("./orchestra_workspaces/sdlc", "./elsewhere/ws");
    project.orchestra("sdlc", &yaml);
    let output = project.run(&["orchestra", "run", "sdlc", "--goal", GOAL]);
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("symbolic link"),
        "{}",
        stderr(&output)
    );
    assert_eq!(std::fs::read_dir(outside.path()).expect("dir").count(), 0);
}

#[test]
fn symlinked_workspace_folders_are_refused_and_explicit_workspaces_are_allowed() {
    let server = StubServer::start_background(StubConfig::default()).expect("stub");
    let project = one_task(&server);
    let outside = tempfile::tempdir().expect("outside");
    let ws = project.workspace("one");
    std::fs::create_dir_all(&ws).expect("ws");
    std::os::unix::fs::symlink(outside.path(), ws.join("task_outputs")).expect("symlink");
    let output = project.run(&["orchestra", "run", "one", "--goal", GOAL]);
    assert_ne!(code(&output), 0, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("`task_outputs` is a symbolic link"),
        "{}",
        stderr(&output)
    );
    assert_eq!(std::fs::read_dir(outside.path()).expect("dir").count(), 0);
    assert_eq!(server.request_count(), 0);

    // `--workspace` may point anywhere the user says.
    let chosen = tempfile::tempdir().expect("chosen");
    let dir = chosen.path().join("ws");
    let output = project.run(&[
        "orchestra",
        "run",
        "one",
        "--goal",
        GOAL,
        "--workspace",
        dir.to_str().expect("utf-8"),
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(dir.join("task_outputs/work_output.txt").is_file());
}

// Item 14: numbers, encodings, sizes.

#[test]
fn absurd_numbers_are_diagnostics_at_their_value() {
    let project = Project::sdlc("ollama", "http://127.0.0.1:9");
    let yaml = crate::support::SDLC
        .replacen(
            "    timeout_seconds: 600\n",
            "    timeout_seconds: 600\n    retry_count: 4294967295\n",
            1,
        )
        .replace(
            "max_parallel_tasks: 1",
            "max_parallel_tasks: 99999999999999999999",
        )
        .replace("task_timeout_seconds: 300", "task_timeout_seconds: 9999999");
    project.orchestra("sdlc", &yaml);
    let output = project.run(&["orchestra", "validate", "sdlc"]);
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    let text = project.redact(&stderr(&output));
    for expected in [
        "`retry_count` is too large: at most 20",
        "`max_parallel_tasks` is too large: at most 4096",
        "`task_timeout_seconds` is too large: at most 86400",
        "sdlc_orchestra.yaml:35:18",
    ] {
        assert!(text.contains(expected), "expected `{expected}` in\n{text}");
    }
}

#[test]
fn a_negative_price_is_a_diagnostic() {
    let project = Project::sdlc("ollama", "http://127.0.0.1:9");
    let yaml = format!(
        "{}pricing:\n  test-model:\n    input_per_million: -1\n    output_per_million: .inf\n",
        crate::support::SDLC
    );
    project.orchestra("sdlc", &yaml);
    let output = project.run(&["orchestra", "validate", "sdlc"]);
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    let text = stderr(&output);
    assert!(
        text.contains("`input_per_million` must be at least 0"),
        "{text}"
    );
}

#[test]
fn a_non_utf8_file_gets_the_byte_offset_and_line() {
    let project = Project::sdlc("ollama", "http://127.0.0.1:9");
    let mut bytes = crate::support::SDLC.as_bytes().to_vec();
    // Line 7 is `  description: "Three agents, one after another."`; break its `T`.
    let at = crate::support::SDLC.find("Three").expect("text");
    bytes[at] = 0xff;
    let path = project.orchestra("sdlc", "");
    std::fs::write(&path, &bytes).expect("write");
    let output = project.run(&["orchestra", "validate", "sdlc"]);
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    let text = project.redact(&stderr(&output));
    assert!(
        text.contains(&format!(
            "byte 0xff at byte offset {at} (line 6, column 17)"
        )),
        "{text}"
    );
    assert!(text.contains("sdlc_orchestra.yaml:6:17"), "{text}");
}

/// The secret scan the chaos suite also uses: no key, no URL password, in any text.
pub fn assert_no_secret(texts: &[(String, String)], secrets: &[&str]) -> usize {
    let mut leaks = 0;
    for (what, text) in texts {
        for secret in secrets {
            if text.contains(secret) {
                eprintln!("LEAK of a secret in {what}");
                leaks += 1;
            }
        }
    }
    leaks
}

#[test]
fn the_haystack_helper_sees_every_file() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir_all(dir.path().join("a/b")).expect("dirs");
    std::fs::write(dir.path().join("a/b/c.txt"), "needle").expect("write");
    let found = haystack(dir.path(), &["x".into()]);
    assert_eq!(assert_no_secret(&found, &["needle"]), 1);
}

/// The model cache a user's run would read, when the embedded model is fetched.
fn model_home() -> Option<std::path::PathBuf> {
    let home = std::env::var_os("SUPER_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache/super"))
        })?;
    (cfg!(feature = "local")
        && home
            .join("models/SmolLM2-135M-Instruct.Q4_1.gguf")
            .is_file())
    .then_some(home)
}

#[test]
fn a_dry_run_of_a_huge_description_stays_fast() {
    let Some(home) = model_home() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "the embedded model is missing, and CI needs it"
        );
        eprintln!("SKIPPED: the embedded model is not fetched (scripts/fetch-model.sh)");
        return;
    };
    let project = Project::empty();
    // No `language_model`: the embedded model, whose tokenizer counts the dry run's prompt.
    project.agent(
        "worker",
        &crate::support::playbook("worker", "Worker", "work", ""),
    );
    let description = "word ".repeat(600_000);
    project.orchestra(
        "huge",
        &format!("metadata:\n  id: huge\ntasks:\n  - name: work\n    agent: worker\n    description: \"{description}\"\n"),
    );
    let started = std::time::Instant::now();
    let output = project
        .command()
        .env("SUPER_HOME", &home)
        .args(["orchestra", "run", "huge", "--goal", GOAL, "--dry-run"])
        .output()
        .expect("dry run");
    let took = started.elapsed();
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        stdout(&output).contains("prompt tokens"),
        "{}",
        stdout(&output)
    );
    // Every byte through the tokenizer took about 60 s here (debug build, busy machine).
    assert!(
        took < Duration::from_secs(25),
        "a 3 MB description took {took:?}"
    );
}

#[test]
fn agent_show_escapes_control_characters_from_a_playbook() {
    let project = Project::empty();
    let lm = "  language_model:\n    provider: ollama\n    model: m\n";
    let yaml = crate::support::playbook("worker", "Worker \\e]0;pwned\\a\\e[2J", "work", lm)
        .replace("role: Worker", "role: \"Worker")
        .replace("\\e[2J\n", "\\e[2J\"\n");
    project.agent("worker", &yaml);
    let output = project.run(&["agent", "show", "worker"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("Worker \\x1b]0;pwned"), "{text:?}");
    assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text:?}");
}
