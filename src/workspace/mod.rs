//! The workspace folder: the seed's layout (`task_outputs/`, `intermediate/`,
//! `final_results/`) plus `run.json`, `metrics.json`, `trace.jsonl`, the task cache and the
//! history of earlier runs. Every file is written atomically; nothing is written outside it.

pub mod files;
pub mod history;
pub mod lock;
pub mod manifest;
pub mod partial;
pub mod root;
pub mod writer;

pub use files::{write_atomic, Workspace};
pub use lock::WorkspaceLock;
pub use manifest::{
    AssignmentRecord, AttemptRecord, CallRecord, ManagerRecord, Manifest, ReviewRecord, RunStatus,
    TaskFile, TaskRecord, TaskStatus, ToolCallRecord, MANIFEST_SCHEMA_VERSION,
};
pub use root::resolve_root;
pub use writer::{BackgroundWriter, WriteError, WriterKind};
