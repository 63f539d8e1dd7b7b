//! Reading a server's waiting instructions from its headers (`Retry-After`, `retry-after-ms`,
//! `x-ratelimit-*`). Header values are untrusted input: NaN, infinite, negative, enormous,
//! malformed or past values never panic; they are ignored or clamped, and the caller caps any
//! wait (`MAX_SERVER_WAIT`).

use super::types::RateHints;
use std::time::{Duration, SystemTime};

/// The longest wait a server may ask for before the attempt fails instead of waiting.
pub const MAX_SERVER_WAIT: Duration = Duration::from_secs(600);

/// Any parsed wait is clamped here first, so arithmetic on it can never overflow.
const CLAMP: Duration = Duration::from_secs(7 * 24 * 3600);

fn header<'h>(headers: &'h reqwest::header::HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Seconds as a finite, non-negative number, clamped; anything else is `None`.
pub fn seconds(value: f64) -> Option<Duration> {
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    Some(
        Duration::try_from_secs_f64(value)
            .unwrap_or(CLAMP)
            .min(CLAMP),
    )
}

/// `Retry-After` (seconds or an HTTP date) or `retry-after-ms`. A negative, past or
/// unreadable value is `None`: the caller falls back to its own backoff.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    if let Some(ms) = header(headers, "retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        if let Some(wait) = seconds(ms / 1000.0) {
            return Some(wait);
        }
    }
    let value = header(headers, "retry-after")?;
    if let Ok(number) = value.parse::<f64>() {
        return seconds(number);
    }
    let date = httpdate::parse_http_date(value).ok()?;
    date.duration_since(SystemTime::now())
        .ok()
        .map(|d| d.min(CLAMP))
}

/// `x-ratelimit-*` and Anthropic's `anthropic-ratelimit-*`.
pub fn rate_hints(headers: &reqwest::header::HeaderMap) -> RateHints {
    let number = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| header(headers, n).and_then(|v| v.parse::<u64>().ok()))
    };
    let reset = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| header(headers, n).and_then(parse_reset))
    };
    RateHints {
        remaining_requests: number(&[
            "x-ratelimit-remaining-requests",
            "anthropic-ratelimit-requests-remaining",
        ]),
        remaining_tokens: number(&[
            "x-ratelimit-remaining-tokens",
            "anthropic-ratelimit-tokens-remaining",
        ]),
        reset_requests: reset(&["x-ratelimit-reset-requests"]),
        reset_tokens: reset(&["x-ratelimit-reset-tokens"]),
    }
}

/// OpenAI's reset durations: `1s`, `6m0s`, `20ms`, `1.5s`, or plain seconds.
pub fn parse_reset(value: &str) -> Option<Duration> {
    if let Ok(number) = value.parse::<f64>() {
        return seconds(number);
    }
    let mut total = 0.0f64;
    let mut number = String::new();
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let amount: f64 = number.parse().ok()?;
        number.clear();
        total += match c {
            'h' => amount * 3600.0,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                amount / 1000.0
            }
            'm' => amount * 60.0,
            's' => amount,
            _ => return None,
        };
    }
    if number.is_empty() {
        seconds(total)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            if let Ok(value) = HeaderValue::from_str(value) {
                map.insert(*name, value);
            }
        }
        map
    }

    #[test]
    fn parses_reset_durations() {
        assert_eq!(parse_reset("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_reset("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(parse_reset("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(parse_reset("bad"), None);
    }

    /// These panicked in `Duration::from_secs_f64` before (exit 101, run.json left running).
    #[test]
    fn hostile_values_never_panic() {
        let hostile = [
            "NaN",
            "nan",
            "inf",
            "-inf",
            "infinity",
            "-1",
            "-0.5",
            "1e400",
            "1e30",
            "18446744073709551616",
            "99999999999999999999999999s",
            "1e308m",
            "1.5.5s",
            "",
            "   ",
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "Fri, 31 Dec 9999 23:59:59 GMT",
            "garbage",
            "0x10",
        ];
        for value in hostile {
            for name in [
                "retry-after",
                "retry-after-ms",
                "x-ratelimit-reset-requests",
                "x-ratelimit-reset-tokens",
            ] {
                let map = headers(&[(name, value)]);
                let wait = retry_after(&map);
                let hints = rate_hints(&map);
                for d in [wait, hints.reset_requests, hints.reset_tokens]
                    .into_iter()
                    .flatten()
                {
                    assert!(d <= CLAMP, "{name}: {value} gave {d:?}");
                }
            }
        }
        assert_eq!(retry_after(&headers(&[("retry-after", "-1")])), None);
        assert_eq!(
            retry_after(&headers(&[(
                "retry-after",
                "Wed, 21 Oct 2015 07:28:00 GMT"
            )])),
            None,
            "a past date falls back to the normal backoff"
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "NaN")])), None);
        assert_eq!(
            retry_after(&headers(&[("retry-after", "1e30")])),
            Some(CLAMP)
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after-ms", "250")])),
            Some(Duration::from_millis(250))
        );
    }
}
