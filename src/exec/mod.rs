//! Execution: the dispatcher and what it leans on (retries, the task cache, record/replay,
//! budgets, shared rate limits). Async; emits events and never prints.

pub mod budget;
pub mod cache;
pub mod dispatcher;
pub mod events;
pub mod ids;
pub mod ratelimit;
pub mod record;
pub mod retry;

pub use dispatcher::{execute, ExecConfig, Interrupt, Reuse};
pub use events::RunEvent;
