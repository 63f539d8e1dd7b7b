//! Reading the runs a workspace holds: the current one at its top and the earlier ones under
//! `history/<run-id>/`, each with its `run.json`. Reading only: nothing here writes, and a
//! record that cannot be read (missing, corrupt, written by another schema) is an error naming
//! its file, kept beside the runs that can be read.

use super::files::{HISTORY, MANIFEST};
use super::manifest::{Manifest, MANIFEST_SCHEMA_VERSION};
use std::path::{Path, PathBuf};

/// Why a run's `run.json` cannot be used.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum RecordError {
    #[error("`{path}` is missing: the run left no record")]
    Missing { path: String },
    #[error("failed to read `{path}`: {error}")]
    Unreadable { path: String, error: String },
    #[error("`{path}` is not a run record: {error}")]
    Corrupt { path: String, error: String },
    #[error("`{path}` was written by a newer super (schema version {found}; this one reads up to {MANIFEST_SCHEMA_VERSION})")]
    Newer { path: String, found: u64 },
    #[error("`{path}` was written by an older super (schema version {found}) and cannot be read: {error}")]
    Older {
        path: String,
        found: u64,
        error: String,
    },
}

/// One run of a workspace.
#[derive(Debug, Clone)]
pub struct RunEntry {
    /// The run's id: the manifest's, else its folder's name.
    pub id: String,
    /// The folder holding its files (`task_outputs/`, `run.json`, ...).
    pub dir: PathBuf,
    /// The run at the top of the workspace (the latest), not one under `history/`.
    pub current: bool,
    pub manifest: Result<Manifest, RecordError>,
}

impl RunEntry {
    /// Its files, laid out as a workspace.
    pub fn files(&self) -> super::Workspace {
        super::Workspace::new(self.dir.clone())
    }

    fn started(&self) -> Option<u64> {
        self.manifest.as_ref().ok().map(|m| m.started_unix_ms)
    }
}

/// Reads `run.json` at `path`, checking its schema version first.
pub fn read_manifest(path: &Path) -> Result<Manifest, RecordError> {
    let shown = crate::source::display_path(path);
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(RecordError::Missing { path: shown })
        }
        Err(error) => {
            return Err(RecordError::Unreadable {
                path: shown,
                error: error.to_string(),
            })
        }
    };
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|error| RecordError::Corrupt {
            path: shown.clone(),
            error: error.to_string(),
        })?;
    if !value.is_object() {
        return Err(RecordError::Corrupt {
            path: shown,
            error: "expected a JSON object".into(),
        });
    }
    let found = value
        .get("schema_version")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    if found > u64::from(MANIFEST_SCHEMA_VERSION) {
        return Err(RecordError::Newer { path: shown, found });
    }
    serde_json::from_value::<Manifest>(value).map_err(|error| {
        if found < u64::from(MANIFEST_SCHEMA_VERSION) {
            RecordError::Older {
                path: shown,
                found,
                error: error.to_string(),
            }
        } else {
            RecordError::Corrupt {
                path: shown,
                error: error.to_string(),
            }
        }
    })
}

/// Every run of the workspace at `root`, newest first: the current run (when its top holds a
/// `run.json`), then `history/`'s by start time (their folder names when a record is
/// unreadable; run ids begin with their start time).
pub fn list_runs(root: &Path) -> std::io::Result<Vec<RunEntry>> {
    let mut runs = Vec::new();
    let top = root.join(MANIFEST);
    if top.is_file() {
        let manifest = read_manifest(&top);
        let id = manifest
            .as_ref()
            .map(|m| m.run_id.clone())
            .unwrap_or_else(|_| "current".to_string());
        runs.push(RunEntry {
            id,
            dir: root.to_path_buf(),
            current: true,
            manifest,
        });
    }
    let history = root.join(HISTORY);
    let mut earlier = Vec::new();
    match std::fs::read_dir(&history) {
        Ok(entries) => {
            for entry in entries {
                let entry = entry?;
                // Real folders only: a link under history/ is not a run super filed.
                if !entry.file_type()?.is_dir() {
                    continue;
                }
                let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                if name.starts_with('.') {
                    continue;
                }
                let dir = entry.path();
                let manifest = read_manifest(&dir.join(MANIFEST));
                earlier.push(RunEntry {
                    // The folder's name: unique, and what `clean` removes (a clash was filed
                    // as `<id>-2`).
                    id: name,
                    dir,
                    current: false,
                    manifest,
                });
            }
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    earlier.sort_by(|a, b| b.started().cmp(&a.started()).then_with(|| b.id.cmp(&a.id)));
    runs.extend(earlier);
    Ok(runs)
}

/// Why a run id given on the command line finds no single run.
#[derive(Debug, Clone, PartialEq)]
pub enum LookupError {
    NoRuns,
    Unknown {
        given: String,
        closest: Option<String>,
        known: Vec<String>,
    },
    Ambiguous {
        given: String,
        matches: Vec<String>,
    },
}

/// The run `given` names: its id, or a prefix of exactly one run's id (as git takes commits);
/// `latest` (or nothing) is the newest run.
pub fn find_run<'a>(
    runs: &'a [RunEntry],
    given: Option<&str>,
) -> Result<&'a RunEntry, LookupError> {
    let given = given.map(str::trim).filter(|g| !g.is_empty());
    let Some(given) = given.filter(|g| *g != "latest") else {
        return runs.first().ok_or(LookupError::NoRuns);
    };
    if let Some(exact) = runs.iter().find(|r| r.id == given) {
        return Ok(exact);
    }
    let matches: Vec<&RunEntry> = runs.iter().filter(|r| r.id.starts_with(given)).collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => {
            let known: Vec<String> = runs.iter().map(|r| r.id.clone()).collect();
            Err(LookupError::Unknown {
                given: given.to_string(),
                closest: crate::diag::did_you_mean(given, known.iter().map(String::as_str))
                    .map(str::to_string),
                known,
            })
        }
        several => Err(LookupError::Ambiguous {
            given: given.to_string(),
            matches: several.iter().map(|r| r.id.clone()).collect(),
        }),
    }
}

/// The size of everything under `path` in bytes (links counted as themselves).
pub fn size_of(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| size_of(&e.path()))
                .sum()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest_json(id: &str, started: u64) -> String {
        serde_json::json!({
            "schema_version": MANIFEST_SCHEMA_VERSION,
            "run_id": id,
            "goal": "G",
            "orchestra": {"id": "o", "name": "O", "file": "o.yaml", "sha256": "x"},
            "workspace": "ws",
            "strategy": "sequential",
            "started_at": "2026-01-01T00:00:00.000Z",
            "started_unix_ms": started,
            "duration_ms": 5,
            "status": "succeeded",
            "tasks": [],
            "totals": {"tokens_in": 0, "tokens_out": 0, "llm_calls": 0, "cost_usd": 0.0,
                       "succeeded": 0, "cached": 0, "failed": 0, "skipped": 0}
        })
        .to_string()
    }

    #[test]
    fn lists_newest_first_and_keeps_unreadable_runs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::write(root.join("run.json"), manifest_json("r3", 300)).expect("write");
        for (id, started) in [("r1", 100), ("r2", 200)] {
            std::fs::create_dir_all(root.join("history").join(id)).expect("mkdir");
            std::fs::write(
                root.join("history").join(id).join("run.json"),
                manifest_json(id, started),
            )
            .expect("write");
        }
        std::fs::create_dir_all(root.join("history/r0")).expect("mkdir");
        std::fs::write(root.join("history/r0/run.json"), "{ not json").expect("write");
        let runs = list_runs(root).expect("list");
        let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["r3", "r2", "r1", "r0"]);
        assert!(runs[0].current);
        assert!(matches!(runs[3].manifest, Err(RecordError::Corrupt { .. })));
    }

    #[test]
    fn schema_versions_are_checked_before_fields() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("run.json");
        std::fs::write(&path, r#"{"schema_version": 99, "run_id": "x"}"#).expect("write");
        assert!(matches!(
            read_manifest(&path),
            Err(RecordError::Newer { found: 99, .. })
        ));
        std::fs::write(&path, r#"{"run_id": "x"}"#).expect("write");
        let error = read_manifest(&path).expect_err("old");
        assert!(
            matches!(error, RecordError::Older { found: 0, .. }),
            "{error}"
        );
        assert!(error.to_string().contains("run.json"), "{error}");
    }

    #[test]
    fn a_unique_prefix_finds_a_run_and_an_unknown_one_suggests() {
        let entry = |id: &str| RunEntry {
            id: id.into(),
            dir: PathBuf::new(),
            current: false,
            manifest: Err(RecordError::Missing {
                path: String::new(),
            }),
        };
        let runs = vec![
            entry("20260101T000000Z-aaaa"),
            entry("20260102T000000Z-bbbb"),
        ];
        assert_eq!(
            find_run(&runs, Some("20260102")).map(|r| r.id.as_str()),
            Ok("20260102T000000Z-bbbb")
        );
        assert_eq!(
            find_run(&runs, None).map(|r| r.id.as_str()),
            Ok("20260101T000000Z-aaaa")
        );
        assert!(matches!(
            find_run(&runs, Some("2026")),
            Err(LookupError::Ambiguous { .. })
        ));
        match find_run(&runs, Some("20260102T000000Z-bbbc")) {
            Err(LookupError::Unknown { closest, .. }) => {
                assert_eq!(closest.as_deref(), Some("20260102T000000Z-bbbb"))
            }
            other => panic!("{other:?}"),
        }
    }
}
