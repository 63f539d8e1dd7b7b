//! Validated names: task, agent and orchestra names become file names in the workspace, so
//! anything that could escape a folder is rejected once, at load time.

use std::fmt;

/// Why a name cannot become a file name, or `None` when it can.
pub fn unsafe_reason(name: &str) -> Option<&'static str> {
    if name.trim().is_empty() {
        return Some("it is empty");
    }
    if name == "." || name == ".." || name.contains("..") {
        return Some("it contains `..`");
    }
    if name.contains('/') {
        return Some("it contains `/`");
    }
    if name.contains('\\') {
        return Some("it contains `\\`");
    }
    if name.contains('\0') {
        return Some("it contains a NUL byte");
    }
    if name.starts_with('.') {
        return Some("it starts with a dot");
    }
    if name.chars().any(char::is_control) {
        return Some("it contains a control character");
    }
    if name.len() > 2 && name.as_bytes()[1] == b':' {
        return Some("it is an absolute path");
    }
    if name.len() > 200 {
        return Some("it is longer than 200 bytes");
    }
    None
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Checks that the name can safely become a file name.
            pub fn parse(raw: &str) -> Result<Self, &'static str> {
                match unsafe_reason(raw) {
                    Some(reason) => Err(reason),
                    None => Ok(Self(Self::normalise(raw))),
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

name_type!(
    /// The name of an orchestra task; unique within its orchestra.
    TaskName
);
name_type!(
    /// An agent's name, lower-cased as SuperOptiX matches them.
    AgentName
);
name_type!(
    /// An orchestra's id: its file is `<id>_orchestra.yaml`, its workspace `orchestra_workspaces/<id>`.
    OrchestraId
);

impl TaskName {
    fn normalise(raw: &str) -> String {
        raw.trim().to_string()
    }
}

impl AgentName {
    fn normalise(raw: &str) -> String {
        raw.trim().to_lowercase()
    }
}

impl OrchestraId {
    fn normalise(raw: &str) -> String {
        raw.trim().to_lowercase().replace(' ', "_")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_names_that_escape() {
        for bad in [
            "", " ", "..", "../x", "a/b", "a\\b", "a\0b", ".hidden", "/abs", "C:evil", "a\nb",
        ] {
            assert!(TaskName::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(
            TaskName::parse("implement_feature").map(|n| n.0),
            Ok("implement_feature".into())
        );
        assert_eq!(
            AgentName::parse("Developer").map(|n| n.0),
            Ok("developer".into())
        );
        assert_eq!(
            OrchestraId::parse("My Orchestra").map(|n| n.0),
            Ok("my_orchestra".into())
        );
    }
}
