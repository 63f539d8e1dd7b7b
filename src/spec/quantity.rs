//! Kubernetes resource quantities (`1000m`, `0.5`, `2Gi`, `1e3`), checked the way the API
//! server parses them, so a bad `resources:` value is reported at load time with its line
//! instead of by the cluster after an export. It only checks text; it never converts units.

/// Why a text is not a Kubernetes quantity: a message and a hint for the diagnostic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantityProblem {
    pub message: String,
    pub hint: String,
}

const BINARY_SUFFIXES: [&str; 6] = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
const DECIMAL_SUFFIXES: [&str; 7] = ["m", "k", "M", "G", "T", "P", "E"];
const GENERAL_HINT: &str =
    "a quantity is a number with an optional suffix: `500m` or `2` for cpu, `512Mi` or `2Gi` for memory";

/// Checks `text` against the quantity grammar (`<number><suffix>`, where the suffix is one of
/// `Ki Mi Gi Ti Pi Ei`, `m k M G T P E`, `e<exponent>` or nothing). Resources cannot be negative.
pub fn check_quantity(text: &str) -> Result<(), QuantityProblem> {
    let problem = |message: String, hint: &str| QuantityProblem {
        message,
        hint: hint.to_string(),
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(problem("an empty quantity".into(), GENERAL_HINT));
    }
    if trimmed != text {
        return Err(problem(
            format!("quantity `{text}` has spaces around it"),
            "write the quantity alone, such as `2Gi`",
        ));
    }
    let unsigned = match text.as_bytes()[0] {
        b'-' => {
            return Err(problem(
                format!("quantity `{text}` is negative"),
                "a resource amount must be zero or more",
            ))
        }
        b'+' => &text[1..],
        _ => text,
    };
    let digits_end = unsigned
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(digits_end);
    let has_digit = number.chars().any(|c| c.is_ascii_digit());
    if !has_digit || number.matches('.').count() > 1 {
        return Err(problem(
            format!("`{text}` is not a Kubernetes quantity: it does not start with a number"),
            GENERAL_HINT,
        ));
    }
    if suffix.is_empty()
        || BINARY_SUFFIXES.contains(&suffix)
        || DECIMAL_SUFFIXES.contains(&suffix)
        || is_exponent(suffix)
    {
        return Ok(());
    }
    let hint = suffix_hint(number, suffix);
    Err(QuantityProblem {
        message: format!("`{text}` is not a Kubernetes quantity: unknown suffix `{suffix}`"),
        hint,
    })
}

/// `e3`, `E-2`, `e+6`.
fn is_exponent(suffix: &str) -> bool {
    let Some(rest) = suffix.strip_prefix(['e', 'E']) else {
        return false;
    };
    let rest = rest.strip_prefix(['+', '-']).unwrap_or(rest);
    !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit())
}

fn suffix_hint(number: &str, suffix: &str) -> String {
    let lowered = suffix.to_ascii_lowercase();
    let letter = lowered.chars().next().unwrap_or('?');
    let decimal = match letter {
        'k' => Some("k"),
        'm' if lowered.len() > 1 => Some("M"),
        'g' => Some("G"),
        't' => Some("T"),
        'p' => Some("P"),
        'e' => Some("E"),
        _ => None,
    };
    match decimal {
        // `2GB`, `512mb`, `1Kib`, `4gi`: a byte unit as people write it.
        Some(decimal) => {
            let binary = format!("{}i", decimal.to_ascii_uppercase());
            format!(
                "Kubernetes writes `{number}{binary}` (powers of 1024) or `{number}{decimal}` (powers of 1000), with no `B`"
            )
        }
        None => format!(
            "suffixes are {}, {}, or an exponent such as `e3`",
            BINARY_SUFFIXES.join(" "),
            DECIMAL_SUFFIXES.join(" ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_kubernetes_accepts() {
        for text in [
            "1000m", "2Gi", "0.5", "1", "+1", "512Mi", ".5", "5.", "1e3", "1E-2", "3k", "1.5G",
            "100Ki", "0",
        ] {
            assert_eq!(check_quantity(text), Ok(()), "{text}");
        }
    }

    #[test]
    fn rejects_units_people_write() {
        let problem = check_quantity("2GB").unwrap_err();
        assert!(
            problem.message.contains("unknown suffix `GB`"),
            "{problem:?}"
        );
        assert!(problem.hint.contains("`2Gi`"), "{problem:?}");
        assert!(problem.hint.contains("`2G`"), "{problem:?}");
        assert!(check_quantity("512mb")
            .unwrap_err()
            .hint
            .contains("`512Mi`"));
        assert!(check_quantity("lots")
            .unwrap_err()
            .message
            .contains("does not start with a number"));
        for text in ["", "-1", "1.2.3", "2 Gi", " 2Gi", "1e", "Gi", "1x"] {
            assert!(check_quantity(text).is_err(), "{text}");
        }
    }
}
