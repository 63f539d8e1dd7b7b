//! The chaos suite (issue 11): kill -9 at random moments of sequential and parallel runs then
//! `--resume`, racing starts on one workspace, a fault-injecting server, read-only folders and
//! a full disk, with a secret scan of every file and stream. Each test prints its tallies
//! (`chaos: ...`) to stderr; zero repeated, corrupt and leaked are required. Random moments
//! come from `CHAOS_SEED` (printed, so a failure can be replayed); `CHAOS_KILLS` sets how many
//! kills each kill test makes (default 12, about 20 s on 2 cores).

use crate::reliability::in_mount_namespace;
use crate::support::{code, files_under, stderr, stdout, Project, API_KEY};
use llm_stub::{Step, StubConfig, StubServer};
use std::path::Path;
use std::time::{Duration, Instant};

/// Runs `command`, killing it past `limit` (a hang is a finding, not a stuck suite).
fn output_within(mut command: std::process::Command, limit: Duration) -> std::process::Output {
    let child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id() as i32;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&done);
    let watchdog = std::thread::spawn(move || {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if flag.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: killing our own child, which has not been reaped yet (`done` is unset).
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    });
    let output = child.wait_with_output().expect("wait");
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = watchdog.join();
    output
}

fn seed() -> u64 {
    let seed = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(7)
        });
    eprintln!("chaos: CHAOS_SEED={seed}");
    seed
}

fn kills() -> usize {
    std::env::var("CHAOS_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12)
}

/// Every reply is framed, so a half-written output is seen: `BEGIN <task> ... END`.
fn framed_server(latency_ms: u64) -> StubServer {
    StubServer::start_background(
        StubConfig::default()
            .latency(latency_ms)
            .reply_fn(|request| {
                let task = task_of_body(&request.body.to_string());
                format!("BEGIN {task} {} END", "lorem ipsum ".repeat(40))
            }),
    )
    .expect("stub")
}

/// The task a request is for: its user message starts `Task <name>:`.
fn task_of_body(body: &str) -> String {
    body.split("Task ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .unwrap_or("?")
        .to_string()
}

/// Sequential: a chain where each task builds on the one before. Parallel: six independent
/// tasks then one that reads them all.
fn orchestra(project: &Project, id: &str, parallel: bool) -> Vec<String> {
    let names: Vec<String> = (0..7).map(|i| format!("t{i}")).collect();
    let strategy = if parallel { "parallel" } else { "sequential" };
    let mut yaml = format!(
        "metadata:\n  id: {id}\norchestra:\n  execution:\n    strategy: {strategy}\n    max_parallel_tasks: 3\ntasks:\n"
    );
    for (i, name) in names.iter().enumerate() {
        yaml.push_str(&format!(
            "  - name: {name}\n    agent: worker\n    description: \"Task {name}: part {i} of '{{goal}}'\"\n"
        ));
        let context: Vec<&str> = match (parallel, i) {
            (_, 0) => vec![],
            (false, _) => vec![names[i - 1].as_str()],
            (true, 6) => names[..6].iter().map(String::as_str).collect(),
            (true, _) => vec![],
        };
        if !context.is_empty() {
            yaml.push_str(&format!("    context: [{}]\n", context.join(", ")));
        }
    }
    project.orchestra(id, &yaml);
    names
}

#[derive(Default)]
struct Tally {
    kills: usize,
    repeated: usize,
    outside: usize,
    corrupt: usize,
    leaked: usize,
    incomplete: usize,
}

impl Tally {
    fn print(&self, what: &str) {
        eprintln!(
            "chaos: {what}: {} kills, {} repeated, {} corrupt, {} leaked, {} incomplete, {} written outside the workspace",
            self.kills, self.repeated, self.corrupt, self.leaked, self.incomplete, self.outside
        );
    }
}

/// Files that must be whole: outputs framed `BEGIN ... END`, every JSON file parseable.
fn corrupt_files(ws: &Path) -> Vec<String> {
    let mut bad = Vec::new();
    for file in files_under(ws) {
        let name = file.display().to_string();
        if name.contains("/history/") {
            continue;
        }
        let bytes = std::fs::read(&file).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        let torn_output = name.ends_with("_output.txt")
            && !(text.starts_with("BEGIN ") && text.ends_with(" END"));
        let torn_json =
            name.ends_with(".json") && serde_json::from_slice::<serde_json::Value>(&bytes).is_err();
        if torn_output || torn_json {
            bad.push(name);
        }
    }
    bad
}

/// Entries of the project a run may not have created: anything beside the project's own files
/// and the workspace folder.
fn outside_writes(project: &Project) -> usize {
    let allowed = [".super", "demo", "orchestra_workspaces", ".super-home"];
    let mut strays = 0;
    for entry in std::fs::read_dir(project.root())
        .expect("project")
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !allowed.contains(&name.as_str()) {
            eprintln!("OUTSIDE the workspace: {name}");
            strays += 1;
        }
    }
    for entry in std::fs::read_dir(project.path("orchestra_workspaces"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !["one", "seq", "par"].contains(&name.as_str()) {
            eprintln!("OUTSIDE the workspace: orchestra_workspaces/{name}");
            strays += 1;
        }
    }
    strays
}

fn leaks(texts: &[String], ws: &Path) -> usize {
    let mut count = texts.iter().filter(|t| t.contains(API_KEY)).count();
    for file in files_under(ws) {
        if String::from_utf8_lossy(&std::fs::read(&file).unwrap_or_default()).contains(API_KEY) {
            eprintln!("LEAK: {}", file.display());
            count += 1;
        }
    }
    count
}

/// `strict`: a finished task requested again also fails the test (issue 11 item 2, the
/// durable record written before the output, is the lead's; until it lands, repeats are
/// counted and printed but only the strict variants, ignored for now, fail on them).
fn kill_and_resume(parallel: bool, strict: bool) {
    let mut rng = fastrand::Rng::with_seed(seed());
    let server = framed_server(30);
    let project = Project::empty();
    project.simple_agent("worker", "work", "openai", &server.openai_base_url());
    let id = if parallel { "par" } else { "seq" };
    let names = orchestra(&project, id, parallel);
    let ws = project.workspace(id);
    let mut tally = Tally::default();
    let started = Instant::now();
    for _ in 0..kills() {
        // Each trial starts from an empty workspace, so kills land at every stage of a run.
        let _ = std::fs::remove_dir_all(&ws);
        let mut child = project
            .command()
            .args(["orchestra", "run", id, "--goal", "G"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_millis(rng.u64(0..400)));
        let _ = child.kill();
        let _ = child.wait();
        tally.kills += 1;
        // What the killed run claimed finished: an output file in place.
        let finished: Vec<&String> = names
            .iter()
            .filter(|n| ws.join(format!("task_outputs/{n}_output.txt")).is_file())
            .collect();
        let bad = corrupt_files(&ws);
        if !bad.is_empty() {
            eprintln!("CORRUPT after a kill: {bad:?}");
        }
        tally.corrupt += bad.len();

        let mark = server.request_count();
        let output = project.run(&["orchestra", "run", id, "--goal", "G", "--resume"]);
        if code(&output) != 0 {
            eprintln!("the resume failed: {}", stderr(&output));
            tally.incomplete += 1;
        }
        let requested: Vec<String> = server.requests()[mark..]
            .iter()
            .map(|r| task_of_body(&r.body.to_string()))
            .collect();
        for name in &finished {
            let again = requested.iter().filter(|r| r == name).count();
            if again > 0 {
                eprintln!("REPEATED: `{name}` was finished before the kill and requested again");
                tally.repeated += again;
            }
        }
        let bad = corrupt_files(&ws);
        tally.corrupt += bad.len();
        for name in &names {
            if !ws.join(format!("task_outputs/{name}_output.txt")).is_file() {
                tally.incomplete += 1;
            }
        }
        tally.leaked += leaks(&[stdout(&output), stderr(&output)], &ws);
    }
    tally.outside = outside_writes(&project);
    tally.print(if parallel {
        "parallel kill -9 + resume"
    } else {
        "sequential kill -9 + resume"
    });
    eprintln!("chaos: {:.1}s", started.elapsed().as_secs_f64());
    if strict {
        assert_eq!(tally.repeated, 0, "finished tasks were requested again");
    }
    assert_eq!(tally.corrupt, 0, "files were corrupt");
    assert_eq!(tally.leaked, 0, "secrets leaked");
    assert_eq!(tally.incomplete, 0, "a resume did not complete the run");
    assert_eq!(tally.outside, 0, "files were written outside the workspace");
}

#[test]
fn chaos_kill_9_sequential_then_resume() {
    kill_and_resume(false, false);
}

#[test]
fn chaos_kill_9_parallel_then_resume() {
    kill_and_resume(true, false);
}

#[test]
fn chaos_kill_9_never_repeats_a_finished_task() {
    kill_and_resume(false, true);
    kill_and_resume(true, true);
}

#[test]
fn chaos_racing_starts_exactly_one_proceeds() {
    let server = framed_server(700);
    let project = Project::empty();
    project.simple_agent("worker", "work", "openai", &server.openai_base_url());
    project.orchestra(
        "one",
        "metadata:\n  id: one\ntasks:\n  - name: t0\n    agent: worker\n    description: \"Task t0: '{goal}'\"\n",
    );
    let ws = project.workspace("one");
    let trials = 4;
    let mut double = 0;
    for trial in 0..trials {
        std::fs::create_dir_all(&ws).expect("ws");
        if trial % 2 == 0 {
            std::fs::write(ws.join(".lock"), "999999").expect("stale lock");
        }
        let before = server.request_count();
        let children: Vec<_> = (0..6)
            .map(|_| {
                project
                    .command()
                    .args(["orchestra", "run", "one", "--goal", "G"])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("spawn")
            })
            .collect();
        let codes: Vec<i32> = children
            .into_iter()
            .map(|c| code(&c.wait_with_output().expect("wait")))
            .collect();
        let proceeded = codes.iter().filter(|c| **c == 0).count();
        let calls = server.request_count() - before;
        if proceeded != 1 || calls != 1 {
            eprintln!("trial {trial}: {proceeded} proceeded, {calls} calls, codes {codes:?}");
            double += 1;
        }
    }
    eprintln!("chaos: racing starts: {trials} trials of 6 starts, {double} with more than one run");
    assert_eq!(double, 0);
}

/// A fault server: every hostile answer ends in a clean exit (0 or 1, never a crash or a
/// hang), no raw control character on the terminal and no key in a stream or a file.
#[test]
fn chaos_fault_server() {
    let huge = format!("BEGIN {} END", "x".repeat(4 << 20));
    let echoed = format!(
        "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\n\r\n{{\"error\":{{\"message\":\"bad key Bearer {API_KEY}\"}}}}"
    );
    let faults: Vec<(&str, Step)> = vec![
        ("reset", Step::raw(Vec::new())),
        ("garbage", Step::raw(b"\x00\xff\x1b[2J garbage\r\n\r\n".to_vec())),
        (
            "html",
            Step::raw(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 28\r\n\r\n<html>\x1b]0;pwned\x07</html>!!!!!".to_vec(),
            ),
        ),
        (
            "hostile headers",
            Step::raw(
                format!(
                    "HTTP/1.1 429 Too Many\r\nretry-after: 99999999999999999999\r\nx-ratelimit-remaining: -5\r\nx-evil: \x1b[31m{}\r\ncontent-length: 2\r\n\r\n{{}}",
                    "h".repeat(60_000)
                )
                .into_bytes(),
            ),
        ),
        ("truncated", Step::CloseMidBody),
        ("malformed", Step::Malformed),
        ("echoed key", Step::raw(echoed.into_bytes())),
        ("echoed key in a reply", Step::text(format!("sure: {API_KEY}"))),
        ("huge reply", Step::text(huge)),
    ];
    let mut tally = Tally::default();
    let mut crashes = 0;
    let mut raw_controls = 0;
    for (what, step) in faults {
        let server = StubServer::start_background(
            StubConfig::default()
                .script(vec![step.clone(), step.clone(), step])
                .reply("BEGIN fine END"),
        )
        .expect("stub");
        let project = Project::empty();
        project.simple_agent("worker", "work", "openai", &server.openai_base_url());
        project.orchestra(
            "one",
            "metadata:\n  id: one\ntasks:\n  - name: t0\n    agent: worker\n    description: \"Task t0: '{goal}'\"\n    retry_count: 1\n    timeout_seconds: 20\n",
        );
        let started = Instant::now();
        let mut command = project.command();
        command.env("SUPER_RETRY_BASE_MS", "1").args([
            "orchestra",
            "run",
            "one",
            "--goal",
            "G",
            "--verbose",
        ]);
        let output = output_within(command, Duration::from_secs(30));
        let exit = code(&output);
        if !(exit == 0 || exit == 1) {
            eprintln!("CRASH on `{what}`: exit {exit}: {}", stderr(&output));
            crashes += 1;
        }
        if started.elapsed() > Duration::from_secs(15) {
            eprintln!("SLOW on `{what}`: {:?}", started.elapsed());
            crashes += 1;
        }
        for text in [stdout(&output), stderr(&output)] {
            if text.contains('\x1b') || text.contains('\x07') {
                eprintln!("RAW CONTROL on `{what}`: {text:?}");
                raw_controls += 1;
            }
            if text.contains(API_KEY) {
                eprintln!("LEAK on `{what}` in a stream");
                tally.leaked += 1;
            }
        }
        // Every file the run wrote: run.json, the error file, the output, the trace.
        tally.leaked += leaks(&[], &project.workspace("one"));
        tally.outside += outside_writes(&project);
    }
    eprintln!(
        "chaos: fault server: 9 faults, {crashes} crashes or hangs, {raw_controls} raw control sequences, {} leaked, {} written outside the workspace",
        tally.leaked, tally.outside
    );
    assert_eq!(tally.outside, 0);
    assert_eq!(crashes, 0);
    assert_eq!(raw_controls, 0);
    assert_eq!(tally.leaked, 0);
}

/// Read-only folders and a full disk must fail the run naming the path, never report success
/// with files missing.
#[test]
fn chaos_read_only_folders_and_a_full_disk_never_report_success() {
    let server = framed_server(0);
    let project = Project::empty();
    project.simple_agent("worker", "work", "openai", &server.openai_base_url());
    let names = orchestra(&project, "seq", false);
    let ws = project.workspace("seq");
    let mut false_success = 0;
    for folder in ["task_outputs", "final_results", ".tmp", ".cache"] {
        let _ = std::fs::remove_dir_all(&ws);
        std::fs::create_dir_all(ws.join(folder)).expect("folder");
        let dir = ws.join(folder);
        let script = format!(
            "mount --bind '{d}' '{d}' && mount -o remount,bind,ro '{d}' && exec \"$SUPER\" orchestra run seq --goal G",
            d = dir.display()
        );
        let Some(output) = in_mount_namespace(&project, &script) else {
            return;
        };
        // The failure names the folder, on either stream (task failures are report lines).
        let shown = format!("{}{}", stdout(&output), stderr(&output));
        if code(&output) == 0 || !shown.contains(folder) {
            eprintln!(
                "read-only `{folder}`: exit {}: {}",
                code(&output),
                stderr(&output)
            );
            false_success += 1;
        }
    }
    // A 16 KB file system for the workspace: room for a few outputs, not all.
    let _ = std::fs::remove_dir_all(&ws);
    std::fs::create_dir_all(&ws).expect("ws");
    let script = format!(
        "mount -t tmpfs -o size=16k tmpfs '{w}' && \"$SUPER\" orchestra run seq --goal G; code=$?; ls '{w}/task_outputs' | grep -c _output.txt; exit $code",
        w = ws.display()
    );
    if let Some(output) = in_mount_namespace(&project, &script) {
        let outputs: usize = stdout(&output)
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0);
        eprintln!(
            "full disk: exit {} with {outputs} of {} outputs",
            code(&output),
            names.len()
        );
        if code(&output) == 0 && outputs < names.len() {
            false_success += 1;
        }
    }
    eprintln!("chaos: read-only folders and a full disk: {false_success} false successes");
    assert_eq!(false_success, 0);
}
