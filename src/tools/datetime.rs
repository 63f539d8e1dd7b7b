//! `date_time`: the current time in UTC or at a fixed offset, formatting a date, the difference
//! between two dates, and adding a duration. Pure computation on the clock; a format string is
//! checked before use so a bad one is an error for the model, never a panic.

use super::tool::{opt_str, Tool, ToolContext, ToolDefinition, ToolError};
use chrono::format::StrftimeItems;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use futures::future::BoxFuture;
use serde_json::{json, Value};
use std::fmt::Write as _;

const NAME: &str = "date_time";

pub struct DateTimeTool {
    definition: ToolDefinition,
}

impl DateTimeTool {
    pub fn new() -> DateTimeTool {
        DateTimeTool {
            definition: ToolDefinition {
                name: NAME.into(),
                description:
                    "Dates and times. operation `now` (optional utc_offset like `+02:00`, \
                              optional strftime `format`), `format` (a `date` in a `format`), \
                              `difference` (from `start` to `end`, in days, hours, minutes and \
                              seconds), `add` (`date` plus `days`/`hours`/`minutes`)."
                        .into(),
                parameters: json!({
                    "type": "object",
                    "properties": {
                        "operation": {"type": "string", "enum": ["now", "format", "difference", "add"]},
                        "utc_offset": {"type": "string", "description": "`Z`, `+02:00`, `-0530`"},
                        "format": {"type": "string", "description": "strftime, e.g. `%Y-%m-%d %H:%M`"},
                        "date": {"type": "string", "description": "RFC 3339, `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DD`"},
                        "start": {"type": "string"},
                        "end": {"type": "string"},
                        "days": {"type": "number"},
                        "hours": {"type": "number"},
                        "minutes": {"type": "number"}
                    },
                    "required": ["operation"],
                    "additionalProperties": false
                }),
            },
        }
    }
}

impl Default for DateTimeTool {
    fn default() -> Self {
        DateTimeTool::new()
    }
}

fn parse_offset(text: &str) -> Result<FixedOffset, ToolError> {
    let t = text.trim();
    let bad = || {
        ToolError::invalid(
            NAME,
            format!("`{text}` is not a UTC offset such as `+02:00`"),
        )
    };
    if t.eq_ignore_ascii_case("z") || t.eq_ignore_ascii_case("utc") || t.is_empty() {
        return FixedOffset::east_opt(0).ok_or_else(bad);
    }
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'+') => (1, &t[1..]),
        Some(b'-') => (-1, &t[1..]),
        _ => return Err(bad()),
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) || !(1..=4).contains(&digits.len()) {
        return Err(bad());
    }
    let (h, m) = if digits.len() <= 2 {
        (digits.parse::<i32>().map_err(|_| bad())?, 0)
    } else {
        let split = digits.len() - 2;
        (
            digits[..split].parse::<i32>().map_err(|_| bad())?,
            digits[split..].parse::<i32>().map_err(|_| bad())?,
        )
    };
    if h > 14 || m > 59 {
        return Err(bad());
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60)).ok_or_else(bad)
}

/// Reads RFC 3339, a date and time (taken as UTC), or a bare date (midnight UTC).
fn parse_date(text: &str) -> Result<DateTime<FixedOffset>, ToolError> {
    let t = text.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d);
    }
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(t, format) {
            return Ok(naive.and_utc().fixed_offset());
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        if let Some(naive) = date.and_hms_opt(0, 0, 0) {
            return Ok(naive.and_utc().fixed_offset());
        }
    }
    Err(ToolError::invalid(
        NAME,
        format!("`{text}` is not a date (use `2024-05-01`, `2024-05-01 13:30:00` or RFC 3339)"),
    ))
}

fn format_date(date: &DateTime<FixedOffset>, format: Option<&str>) -> Result<String, ToolError> {
    let Some(format) = format else {
        return Ok(date.to_rfc3339());
    };
    let items = StrftimeItems::new(format).parse().map_err(|_| {
        ToolError::invalid(NAME, format!("`{format}` is not a valid strftime format"))
    })?;
    let mut out = String::new();
    write!(out, "{}", date.format_with_items(items.iter()))
        .map_err(|_| ToolError::invalid(NAME, format!("`{format}` cannot format this date")))?;
    Ok(out)
}

fn number(arguments: &Value, key: &str) -> Result<f64, ToolError> {
    match arguments.get(key) {
        None | Some(Value::Null) => Ok(0.0),
        Some(v) => v
            .as_f64()
            .filter(|n| n.is_finite() && n.abs() < 1e7)
            .ok_or_else(|| ToolError::invalid(NAME, format!("`{key}` must be a number"))),
    }
}

/// The operation, on a given clock (tests pass a fixed one).
pub fn compute(arguments: &Value, now: DateTime<Utc>) -> Result<String, ToolError> {
    let operation = opt_str(arguments, "operation").unwrap_or("now");
    match operation {
        "now" => {
            let offset = parse_offset(opt_str(arguments, "utc_offset").unwrap_or("Z"))?;
            format_date(&now.with_timezone(&offset), opt_str(arguments, "format"))
        }
        "format" => {
            let date = parse_date(
                opt_str(arguments, "date")
                    .ok_or_else(|| ToolError::invalid(NAME, "`date` is required"))?,
            )?;
            let date = match opt_str(arguments, "utc_offset") {
                Some(o) => date.with_timezone(&parse_offset(o)?),
                None => date,
            };
            format_date(&date, opt_str(arguments, "format"))
        }
        "difference" => {
            let start = parse_date(
                opt_str(arguments, "start")
                    .ok_or_else(|| ToolError::invalid(NAME, "`start` is required"))?,
            )?;
            let end = match opt_str(arguments, "end") {
                Some(e) => parse_date(e)?,
                None => now.fixed_offset(),
            };
            let seconds = (end - start).num_seconds();
            Ok(json!({
                "days": seconds as f64 / 86_400.0,
                "whole_days": seconds / 86_400,
                "hours": seconds as f64 / 3600.0,
                "minutes": seconds as f64 / 60.0,
                "seconds": seconds,
            })
            .to_string())
        }
        "add" => {
            let date = match opt_str(arguments, "date") {
                Some(d) => parse_date(d)?,
                None => now.fixed_offset(),
            };
            let seconds = number(arguments, "days")? * 86_400.0
                + number(arguments, "hours")? * 3600.0
                + number(arguments, "minutes")? * 60.0;
            let shifted = TimeDelta::try_seconds(seconds.round() as i64)
                .and_then(|delta| date.checked_add_signed(delta))
                .ok_or_else(|| ToolError::Failed("the date is out of range".into()))?;
            format_date(&shifted, opt_str(arguments, "format"))
        }
        other => Err(ToolError::invalid(
            NAME,
            format!("unknown operation `{other}` (use now, format, difference or add)"),
        )),
    }
}

impl Tool for DateTimeTool {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    fn call<'a>(
        &'a self,
        arguments: Value,
        _context: &'a ToolContext,
    ) -> BoxFuture<'a, Result<String, ToolError>> {
        Box::pin(async move { compute(&arguments, Utc::now()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn clock() -> DateTime<Utc> {
        match Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0) {
            chrono::LocalResult::Single(t) => t,
            _ => panic!("fixed clock"),
        }
    }

    #[test]
    fn now_in_utc_and_at_an_offset() {
        assert_eq!(
            compute(&json!({"operation": "now"}), clock()).as_deref(),
            Ok("2024-05-01T12:00:00+00:00")
        );
        assert_eq!(
            compute(
                &json!({"operation": "now", "utc_offset": "+05:30", "format": "%H:%M %z"}),
                clock()
            )
            .as_deref(),
            Ok("17:30 +0530")
        );
        assert!(compute(
            &json!({"operation": "now", "utc_offset": "nowhere"}),
            clock()
        )
        .is_err());
    }

    #[test]
    fn difference_add_and_bad_formats() {
        let diff = compute(
            &json!({"operation": "difference", "start": "2024-01-01", "end": "2024-03-01"}),
            clock(),
        )
        .unwrap_or_default();
        let value: Value = serde_json::from_str(&diff).unwrap_or_default();
        assert_eq!(value["whole_days"], 60);
        assert_eq!(
            compute(
                &json!({"operation": "add", "date": "2024-02-28", "days": 2, "format": "%Y-%m-%d"}),
                clock()
            )
            .as_deref(),
            Ok("2024-03-01")
        );
        assert!(matches!(
            compute(&json!({"operation": "now", "format": "%Q%"}), clock()),
            Err(ToolError::InvalidArguments { .. })
        ));
        assert!(compute(
            &json!({"operation": "format", "date": "yesterday"}),
            clock()
        )
        .is_err());
        assert!(compute(&json!({"operation": "explode"}), clock()).is_err());
    }
}
