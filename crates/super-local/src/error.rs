//! The crate's error type, [`LocalError`]: every failure of loading, converting, tokenizing,
//! templating or running the embedded model, with lowercase "failed to ..." messages that name
//! the file involved.

use std::path::PathBuf;

/// Everything that can go wrong in this crate.
#[derive(thiserror::Error, Debug)]
pub enum LocalError {
    /// The model file is not on disk.
    #[error(
        "failed to find the local model at {path}: run `scripts/fetch-model.sh` or \
         `super model pull` to download it (or point SUPER_LOCAL_MODEL at a GGUF file)"
    )]
    ModelNotFound { path: PathBuf },

    /// An I/O error on a named file.
    #[error("failed to {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The file is not a GGUF file candle can read.
    #[error("failed to read GGUF file {path}: {message}")]
    Gguf { path: PathBuf, message: String },

    /// The GGUF metadata lacks something the model or tokenizer needs.
    #[error("failed to read model metadata from {path}: {message}")]
    Metadata { path: PathBuf, message: String },

    /// Building the model weights from the GGUF tensors failed.
    #[error("failed to load model weights from {path}: {message}")]
    Weights { path: PathBuf, message: String },

    /// Re-quantizing the slow tensors to Q8_0 failed.
    #[error("failed to convert {path} to Q8_0: {message}")]
    Convert { path: PathBuf, message: String },

    /// The tokenizer could not be built from the GGUF metadata.
    #[error("failed to build the tokenizer from {path}: {message}")]
    Tokenizer { path: PathBuf, message: String },

    /// Neither the GGUF chat template nor the ChatML fallback could render the messages.
    #[error("failed to render the chat template: {0}")]
    Template(String),

    /// The rendered prompt has no tokens.
    #[error("failed to generate: the prompt is empty")]
    EmptyPrompt,

    /// A JSON Schema cannot constrain generation, or the token budget is too small for it.
    #[error(transparent)]
    Constraint(#[from] crate::structured::ConstraintError),

    /// A forward pass or sampling step failed.
    #[error("failed to run the local model: {0}")]
    Inference(String),
}

impl LocalError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        LocalError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

impl From<candle_core::Error> for LocalError {
    fn from(e: candle_core::Error) -> Self {
        LocalError::Inference(e.to_string())
    }
}
