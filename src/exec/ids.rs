//! Run ids, span ids and timestamps.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub fn now_unix_ms() -> u64 {
    unix_ms(SystemTime::now())
}

pub fn rfc3339(unix_ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + std::time::Duration::from_millis(unix_ms))
        .to_string()
}

/// `20261124T101500Z`, sortable and safe as a folder name.
pub fn timestamp_id() -> String {
    let text = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    text.replace(['-', ':'], "")
}

/// A run id: its start time and a random suffix, e.g. `20261124T101500Z-3f9a`.
pub fn run_id() -> String {
    format!("{}-{:04x}", timestamp_id(), fastrand::u16(..))
}

pub fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", fastrand::u8(..)))
        .collect()
}
