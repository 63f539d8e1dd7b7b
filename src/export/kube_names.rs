//! Kubernetes and Argo names made from orchestra and task names: DNS-1123 labels for object,
//! template and DAG task names, and label values. It only shapes text; it never decides what
//! is named.

use std::collections::HashSet;

/// The longest DNS-1123 label.
pub(crate) const MAX_LABEL: usize = 63;

/// `implement_feature` -> `implement-feature`: lower-case letters, digits and `-`, starting
/// with a letter (Argo refuses `depends` on task names that start with a digit), at most
/// `max` characters, never empty.
pub(crate) fn dns_label(raw: &str, max: usize) -> String {
    let mut out = String::new();
    for c in raw.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    if !out.starts_with(|c: char| c.is_ascii_lowercase()) {
        out.insert_str(0, "t-");
    }
    out.truncate(max.max(3));
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// A name not yet in `taken` (adding `-2`, `-3`, ... when it is), recorded as taken.
pub(crate) fn unique(base: String, taken: &mut HashSet<String>, max: usize) -> String {
    if taken.insert(base.clone()) {
        return base;
    }
    for n in 2usize.. {
        let suffix = format!("-{n}");
        let mut stem = base.clone();
        stem.truncate(max.saturating_sub(suffix.len()));
        let candidate = format!("{}{suffix}", stem.trim_end_matches('-'));
        if taken.insert(candidate.clone()) {
            return candidate;
        }
    }
    unreachable!("an unbounded counter always finds a free name")
}

/// A label value: at most 63 of `[A-Za-z0-9._-]`, starting and ending alphanumeric.
pub(crate) fn label_value(raw: &str) -> String {
    let mut out: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(MAX_LABEL)
        .collect();
    while out.ends_with(|c: char| !c.is_ascii_alphanumeric()) {
        out.pop();
    }
    while out.starts_with(|c: char| !c.is_ascii_alphanumeric()) {
        out.remove(0);
    }
    out
}

/// Whether `name` is a DNS-1123 label (namespaces, claim names).
pub(crate) fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_LABEL
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Whether `name` is a DNS-1123 subdomain (Secret and ConfigMap names).
pub(crate) fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(is_dns_label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_dns_labels() {
        assert_eq!(dns_label("implement_feature", 63), "implement-feature");
        assert_eq!(dns_label("Write__Tests", 63), "write-tests");
        assert_eq!(dns_label("1st_step", 63), "t-1st-step");
        assert_eq!(dns_label("___", 63), "t");
        assert_eq!(dns_label(&"a".repeat(100), 63).len(), 63);
        let mut taken = HashSet::new();
        assert_eq!(unique("a-b".into(), &mut taken, 63), "a-b");
        assert_eq!(unique("a-b".into(), &mut taken, 63), "a-b-2");
        assert_eq!(label_value("_x y_"), "x-y");
        assert!(is_dns_label("super-llm-keys"));
        assert!(!is_dns_label("Super"));
        assert!(is_dns_subdomain("keys.example.com"));
    }
}
