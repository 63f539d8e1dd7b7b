//! Execution: the dispatcher (the one owner of a run's state), the scheduler it asks what to
//! start, the task executor (one task, callable alone), and what they lean on (retries, the
//! task cache, budgets, shared rate limits). Async; emits events and never prints.

pub mod budget;
pub mod cache;
pub mod dispatcher;
pub mod events;
pub mod executor;
pub mod ids;
pub(crate) mod manager;
pub mod ratelimit;
pub mod retry;
pub mod scheduler;
#[cfg(test)]
mod tests;

pub use dispatcher::{execute, Interrupt, RunInputs};
pub use events::RunEvent;
