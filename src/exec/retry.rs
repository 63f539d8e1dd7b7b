//! How long to wait before the next attempt: exponential backoff with jitter (backon's
//! schedule), linear or fixed delays, and never less than the provider's `Retry-After`. The
//! base delay comes from `settings::CallLimits`.

use crate::spec::RetryStrategy;
use backon::BackoffBuilder;
use std::time::Duration;

const MAX_DELAY: Duration = Duration::from_secs(60);

pub struct Backoff {
    strategy: RetryStrategy,
    base: Duration,
    retries_done: u32,
    exponential: backon::ExponentialBackoff,
}

impl Backoff {
    pub fn new(strategy: RetryStrategy, base: Duration) -> Backoff {
        let exponential = backon::ExponentialBuilder::default()
            .with_min_delay(base)
            .with_max_delay(MAX_DELAY)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build();
        Backoff {
            strategy,
            base,
            retries_done: 0,
            exponential,
        }
    }

    /// The wait before the next attempt, honouring a `Retry-After` when one was given (the
    /// executor has checked that it fits the run's limits).
    pub fn next_delay(&mut self, retry_after: Option<Duration>) -> Duration {
        self.retries_done += 1;
        let own = match self.strategy {
            RetryStrategy::ExponentialBackoff => self.exponential.next().unwrap_or(MAX_DELAY),
            RetryStrategy::LinearBackoff => self.base * self.retries_done,
            RetryStrategy::FixedDelay | RetryStrategy::None => self.base,
        };
        match retry_after {
            // The server said when; waiting longer than it asked wastes time, shorter gets refused.
            Some(after) => after.min(crate::provider::headers::MAX_SERVER_WAIT),
            None => own.min(MAX_DELAY),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_honours_retry_after() {
        let mut backoff = Backoff::new(
            RetryStrategy::ExponentialBackoff,
            Duration::from_millis(100),
        );
        let first = backoff.next_delay(None);
        let second = backoff.next_delay(None);
        assert!(
            first >= Duration::from_millis(100) && first < Duration::from_millis(300),
            "{first:?}"
        );
        assert!(second >= Duration::from_millis(200), "{second:?}");
        assert_eq!(
            backoff.next_delay(Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
        let mut linear = Backoff::new(RetryStrategy::LinearBackoff, Duration::from_millis(10));
        assert_eq!(linear.next_delay(None), Duration::from_millis(10));
        assert_eq!(linear.next_delay(None), Duration::from_millis(20));
    }
}
