//! Shared rate limits: one limiter per provider endpoint (base URL plus key) for every parallel
//! task. Requests per minute are spaced evenly (no burst), tokens per minute drain a bucket,
//! and a 429 or an exhausted `x-ratelimit-remaining-*` header pauses the endpoint for every
//! task, not only the one that was refused.

use crate::provider::{Endpoint, RateHints};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug)]
struct State {
    /// No request may start before this.
    next_request: Instant,
    tokens: f64,
    refilled_at: Instant,
}

#[derive(Debug)]
pub struct Limiter {
    request_interval: Option<Duration>,
    tokens_per_minute: Option<u64>,
    state: Mutex<State>,
}

impl Limiter {
    pub fn new(rpm: Option<u64>, tpm: Option<u64>) -> Limiter {
        let now = Instant::now();
        Limiter {
            request_interval: rpm
                .filter(|r| *r > 0)
                .map(|r| Duration::from_secs_f64(60.0 / r as f64)),
            tokens_per_minute: tpm.filter(|t| *t > 0),
            state: Mutex::new(State {
                next_request: now,
                tokens: tpm.unwrap_or(0) as f64,
                refilled_at: now,
            }),
        }
    }

    /// Waits for a slot for one request of about `tokens` tokens; returns the time waited.
    pub async fn acquire(&self, tokens: u64) -> Duration {
        let started = Instant::now();
        loop {
            let wait = {
                let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                let mut wait = state.next_request.saturating_duration_since(now);
                if let Some(tpm) = self.tokens_per_minute {
                    let rate = tpm as f64 / 60.0;
                    let elapsed = now
                        .saturating_duration_since(state.refilled_at)
                        .as_secs_f64();
                    state.tokens = (state.tokens + elapsed * rate).min(tpm as f64);
                    state.refilled_at = now;
                    // A prompt larger than the whole bucket waits for a full bucket only.
                    let need = (tokens as f64).min(tpm as f64);
                    if state.tokens < need {
                        wait = wait.max(Duration::from_secs_f64((need - state.tokens) / rate));
                    }
                }
                if wait.is_zero() {
                    if let Some(interval) = self.request_interval {
                        state.next_request = now.max(state.next_request) + interval;
                    }
                    if self.tokens_per_minute.is_some() {
                        state.tokens -= tokens as f64;
                    }
                    None
                } else {
                    Some(wait)
                }
            };
            match wait {
                None => return started.elapsed(),
                Some(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// Corrects the token bucket once the real usage is known.
    pub fn settle_tokens(&self, estimated: u64, actual: u64) {
        if self.tokens_per_minute.is_some() {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.tokens += estimated as f64 - actual as f64;
        }
    }

    /// Pauses every request to this endpoint for `pause`.
    pub fn back_off(&self, pause: Duration) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let pause = pause.min(crate::provider::headers::MAX_SERVER_WAIT);
        tracing::debug!(
            pause_ms = pause.as_millis() as u64,
            "rate limit: pausing every task on this endpoint"
        );
        let until = Instant::now() + pause;
        if until > state.next_request {
            state.next_request = until;
        }
    }

    /// Reads `x-ratelimit-remaining-*`: when nothing remains, wait for the reset.
    /// A reset time is untrusted: it is capped at `MAX_SERVER_WAIT`.
    pub fn observe(&self, hints: &RateHints) {
        let cap = crate::provider::headers::MAX_SERVER_WAIT;
        if hints.remaining_requests == Some(0) {
            self.back_off(
                hints
                    .reset_requests
                    .unwrap_or(Duration::from_secs(1))
                    .min(cap),
            );
        }
        if hints.remaining_tokens == Some(0) {
            self.back_off(
                hints
                    .reset_tokens
                    .unwrap_or(Duration::from_secs(1))
                    .min(cap),
            );
        }
    }
}

/// The limiters of a run, one per endpoint.
#[derive(Debug, Default)]
pub struct RateLimits {
    limiters: Mutex<HashMap<Endpoint, Arc<Limiter>>>,
}

impl RateLimits {
    pub fn limiter(&self, endpoint: &Endpoint, rpm: Option<u64>, tpm: Option<u64>) -> Arc<Limiter> {
        let mut limiters = self.limiters.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(
            limiters
                .entry(endpoint.clone())
                .or_insert_with(|| Arc::new(Limiter::new(rpm, tpm))),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spaces_requests_evenly() {
        let limiter = Limiter::new(Some(60), None);
        let start = Instant::now();
        for expected in 0..3u64 {
            limiter.acquire(0).await;
            let at = start.elapsed().as_secs_f64();
            assert!(
                (at - expected as f64).abs() < 0.01,
                "request {expected} at {at}"
            );
        }
        limiter.back_off(Duration::from_secs(5));
        limiter.acquire(0).await;
        assert!(start.elapsed() >= Duration::from_secs(7));
    }
}
