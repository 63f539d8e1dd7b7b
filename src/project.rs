//! A SuperOptiX project: the folder holding `.super` (`project: NAME`), found by walking up from
//! the current folder or given with `--project`. Owns where agents and orchestras live on disk and
//! which name finds which file: an agent by folder, `metadata.id` or slugged `metadata.name`, an
//! orchestra by `orchestra.id`/`metadata.id` or file name. It reads only those ids from the
//! files; decoding them is `spec`'s job.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("no SuperOptiX project found: no `.super` file in `{0}` or any folder above it")]
    NotFound(String),
    #[error("`{0}` is not a SuperOptiX project: it has no `.super` file")]
    NoMarker(String),
    #[error("failed to read `{path}`")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("orchestra `{name}` not found; looked for {looked}")]
    OrchestraNotFound {
        name: String,
        looked: String,
        /// The project's orchestra ids, for "did you mean".
        known: Vec<String>,
    },
    #[error("orchestra id `{id}` is ambiguous: both `{first}` and `{second}` have it")]
    AmbiguousOrchestra {
        id: String,
        first: String,
        second: String,
    },
}

/// One agent of the project: its folder, its playbook and the names that find it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentEntry {
    /// The folder name, lower-cased (`agents/<folder>/playbook/...`).
    pub folder: String,
    pub path: PathBuf,
    /// `metadata.id` as written, when the playbook has one.
    pub id: Option<String>,
    /// `metadata.name` as written, when the playbook has one.
    pub display_name: Option<String>,
}

impl AgentEntry {
    /// The slugs this agent answers to: folder, id and name, in that order, without repeats.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        for key in [
            Some(self.folder.as_str()),
            self.id.as_deref(),
            self.display_name.as_deref(),
        ]
        .into_iter()
        .flatten()
        {
            let key = slug(key);
            if !key.is_empty() && !keys.contains(&key) {
                keys.push(key);
            }
        }
        keys
    }
}

/// Two playbooks answer to one agent name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "agent name `{name}` is ambiguous: both `{}` and `{}` answer to it",
    crate::source::display_path(first),
    crate::source::display_path(second)
)]
pub struct AmbiguousAgent {
    pub name: String,
    pub first: PathBuf,
    pub second: PathBuf,
}

/// The project's agents, with the names each answers to.
#[derive(Debug, Clone, Default)]
pub struct AgentIndex {
    pub entries: Vec<AgentEntry>,
}

impl AgentIndex {
    /// The agent `name` finds: by folder (as written, then slugged), else by `metadata.id`, else
    /// by `metadata.name`, all compared as slugs. The first kind of name that matches decides,
    /// so everything upstream finds by folder still finds the same playbook; two playbooks
    /// matching at that level are an error naming both. `None` when nothing matches.
    pub fn resolve(&self, name: &str) -> Result<Option<&AgentEntry>, AmbiguousAgent> {
        let wanted = slug(name);
        let exact = name.trim().to_lowercase();
        let levels: [&dyn Fn(&AgentEntry) -> bool; 4] = [
            &|entry| entry.folder == exact,
            &|entry| slug(&entry.folder) == wanted,
            &|entry| entry.id.as_deref().map(slug).as_deref() == Some(wanted.as_str()),
            &|entry| entry.display_name.as_deref().map(slug).as_deref() == Some(wanted.as_str()),
        ];
        if wanted.is_empty() {
            return Ok(None);
        }
        for matches in levels {
            let mut found = self.entries.iter().filter(|entry| matches(entry));
            if let Some(first) = found.next() {
                if let Some(second) = found.find(|entry| entry.path != first.path) {
                    return Err(AmbiguousAgent {
                        name: name.trim().to_string(),
                        first: first.path.clone(),
                        second: second.path.clone(),
                    });
                }
                return Ok(Some(first));
            }
        }
        Ok(None)
    }

    /// The name an orchestra should write for `entry`: the first of its folder, id and name
    /// (slugged) that finds exactly this agent; `None` when each is shared with another agent.
    pub fn resolving_name(&self, entry: &AgentEntry) -> Option<String> {
        entry.keys().into_iter().find(|key| {
            matches!(self.resolve(key), Ok(Some(found)) if found.path == entry.path)
                && crate::names::unsafe_reason(key).is_none()
        })
    }
}

/// A name as SuperOptiX's generators write ids: lower-case, every run of characters other than
/// letters and digits one `_`, none at either end (`Report Demo` and `report-demo` -> `report_demo`).
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.trim().chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}

/// A top-level mapping's `section.key` as text, read without decoding the rest of the file.
fn read_ids(path: &Path, keys: &[(&str, &str)]) -> Vec<Option<String>> {
    // Streamed, no tree: a project may hold orchestras of thousands of tasks.
    match std::fs::read_to_string(path) {
        Ok(text) => crate::yaml::scan_top_level(&text, keys),
        Err(_) => vec![None; keys.len()],
    }
}

#[derive(Debug, Clone)]
pub struct Project {
    pub root: PathBuf,
    /// The `project:` of `.super`; agents and orchestras live under `<root>/<name>/`.
    pub name: Option<String>,
    /// The agents and their names, read once per command (`orchestra list` loads many files).
    agents: std::sync::OnceLock<AgentIndex>,
}

impl Project {
    /// Walks up from `start` to the first folder holding `.super`.
    pub fn discover(start: &Path) -> Result<Project, ProjectError> {
        let start = absolute(start);
        for dir in start.ancestors() {
            if dir.join(".super").is_file() {
                return Project::open(dir);
            }
        }
        Err(ProjectError::NotFound(start.display().to_string()))
    }

    /// Opens the project at `dir` (`--project DIR`).
    pub fn open(dir: &Path) -> Result<Project, ProjectError> {
        let root = absolute(dir);
        let marker = root.join(".super");
        if !marker.is_file() {
            return Err(ProjectError::NoMarker(root.display().to_string()));
        }
        let text = std::fs::read_to_string(&marker).map_err(|source| ProjectError::Read {
            path: marker.display().to_string(),
            source,
        })?;
        Ok(Project {
            name: project_name(&text),
            root,
            agents: std::sync::OnceLock::new(),
        })
    }

    /// `<root>/<name>` when `.super` names the project.
    pub fn package_dir(&self) -> Option<PathBuf> {
        self.name.as_ref().map(|name| self.root.join(name))
    }

    /// Folders that may hold `<agent>/playbook/<agent>_playbook.yaml`, in lookup order.
    pub fn agent_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self
            .package_dir()
            .map(|p| p.join("agents"))
            .into_iter()
            .collect();
        dirs.push(self.root.join("agents"));
        dirs
    }

    /// Folders that may hold `<id>_orchestra.yaml`, in lookup order.
    pub fn orchestra_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self
            .package_dir()
            .map(|p| p.join("orchestras"))
            .into_iter()
            .collect();
        dirs.push(self.root.join("orchestras"));
        dirs
    }

    /// Where `super agent pull` and `orchestra create` write.
    pub fn default_agents_dir(&self) -> PathBuf {
        self.agent_dirs().remove(0)
    }

    pub fn default_orchestras_dir(&self) -> PathBuf {
        self.orchestra_dirs().remove(0)
    }

    /// The playbook of an agent, by folder, `metadata.id` or slugged `metadata.name`.
    pub fn find_agent(&self, agent: &str) -> Result<Option<AgentEntry>, AmbiguousAgent> {
        Ok(self.agent_index().resolve(agent)?.cloned())
    }

    /// Every agent with a playbook and the names it answers to (reads each playbook's metadata
    /// once; a command that writes a playbook and looks again opens the project again).
    pub fn agent_index(&self) -> AgentIndex {
        self.agents.get_or_init(|| self.read_agent_index()).clone()
    }

    fn read_agent_index(&self) -> AgentIndex {
        let entries = self
            .list_agents()
            .into_iter()
            .map(|(folder, path)| {
                let mut ids =
                    read_ids(&path, &[("metadata", "id"), ("metadata", "name")]).into_iter();
                AgentEntry {
                    folder,
                    id: ids.next().flatten(),
                    display_name: ids.next().flatten(),
                    path,
                }
            })
            .collect();
        AgentIndex { entries }
    }

    /// Every agent with a playbook, as (lower-cased name, playbook path), sorted by name; the
    /// first folder wins when both hold the same agent.
    pub fn list_agents(&self) -> Vec<(String, PathBuf)> {
        let mut found: Vec<(String, PathBuf)> = Vec::new();
        for dir in self.agent_dirs() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .filter_map(Result::ok)
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .collect();
            names.sort();
            for folder in names {
                let playbook_dir = dir.join(&folder).join("playbook");
                let Some(path) = find_playbook(&playbook_dir, &folder) else {
                    continue;
                };
                let name = folder.to_lowercase();
                if !found.iter().any(|(n, _)| *n == name) {
                    found.push((name, path));
                }
            }
        }
        found.sort();
        found
    }

    /// Every orchestra file, sorted by path.
    pub fn list_orchestras(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for dir in self.orchestra_dirs() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.filter_map(Result::ok) {
                let path = entry.path();
                let is_yaml = matches!(
                    path.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml")
                );
                if path.is_file() && is_yaml {
                    found.push(path);
                }
            }
        }
        found.sort();
        found
    }

    /// Every orchestra file and its id: `orchestra.id`, else `metadata.id`, else the file name
    /// less `_orchestra` (as `list` shows it), normalised as `OrchestraId` normalises.
    pub fn orchestra_ids(&self) -> Vec<(String, PathBuf)> {
        self.list_orchestras()
            .into_iter()
            .map(|path| {
                let id = read_ids(&path, &[("orchestra", "id"), ("metadata", "id")])
                    .into_iter()
                    .flatten()
                    .next()
                    .unwrap_or_else(|| crate::spec::orchestra::file_stem_id(&path));
                (normalise_orchestra_id(&id), path)
            })
            .collect()
    }

    /// An orchestra by id: the file whose `orchestra.id` (or `metadata.id`) it is, whatever the
    /// file is called; else the file named after it (`sdlc` -> `<dir>/sdlc_orchestra.yaml`).
    /// Two files with one id are an error naming both.
    pub fn find_orchestra(&self, id: &str) -> Result<PathBuf, ProjectError> {
        let wanted = normalise_orchestra_id(id);
        let mut by_id = self
            .orchestra_ids()
            .into_iter()
            .filter(|(found, _)| *found == wanted)
            .map(|(_, path)| path);
        if let Some(first) = by_id.next() {
            if let Some(second) = by_id.next() {
                return Err(ProjectError::AmbiguousOrchestra {
                    id: wanted,
                    first: crate::source::display_path(&first),
                    second: crate::source::display_path(&second),
                });
            }
            return Ok(first);
        }
        let mut looked = vec![format!("a file whose `orchestra.id` is `{wanted}`")];
        let lowered = wanted;
        for dir in self.orchestra_dirs() {
            for file in [
                format!("{lowered}_orchestra.yaml"),
                format!("{lowered}_orchestra.yml"),
                format!("{lowered}.yaml"),
            ] {
                let path = dir.join(&file);
                if path.is_file() {
                    return Ok(path);
                }
                looked.push(format!("`{}`", crate::source::display_path(&path)));
            }
        }
        Err(ProjectError::OrchestraNotFound {
            name: id.to_string(),
            looked: looked.join(", "),
            known: self.orchestra_ids().into_iter().map(|(id, _)| id).collect(),
        })
    }
}

fn normalise_orchestra_id(id: &str) -> String {
    id.trim().to_lowercase().replace(' ', "_")
}

/// Whether a command-line orchestra argument is a path rather than a name.
pub fn looks_like_path(argument: &str) -> bool {
    argument.contains('/')
        || argument.contains('\\')
        || argument.ends_with(".yaml")
        || argument.ends_with(".yml")
}

fn find_playbook(dir: &Path, folder: &str) -> Option<PathBuf> {
    let exact = dir.join(format!("{folder}_playbook.yaml"));
    if exact.is_file() {
        return Some(exact);
    }
    let lowered = dir.join(format!("{}_playbook.yaml", folder.to_lowercase()));
    if lowered.is_file() {
        return Some(lowered);
    }
    // A playbook whose file name differs in case or extension.
    let entries = std::fs::read_dir(dir).ok()?;
    let mut candidates: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .map(|n| {
                    let n = n.to_lowercase();
                    n.ends_with("_playbook.yaml") || n.ends_with("_playbook.yml")
                })
                .unwrap_or(false)
        })
        .collect();
    candidates.sort();
    candidates.into_iter().next()
}

fn project_name(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("project:")?;
        let name = rest.trim().trim_matches(['"', '\'']).trim();
        (!name.is_empty() && crate::names::unsafe_reason(name).is_none()).then(|| name.to_string())
    })
}

pub fn absolute(path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    // Remove `.` and `..` without touching the file system, so paths print cleanly.
    let mut out = PathBuf::new();
    for component in joined.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_project_name() {
        assert_eq!(project_name("project: sdlc\n"), Some("sdlc".into()));
        assert_eq!(
            project_name("# c\nproject: \"demo\"\n"),
            Some("demo".into())
        );
        assert_eq!(project_name("project: ../x\n"), None);
        assert_eq!(project_name(""), None);
    }

    #[test]
    fn slugs_names_as_generators_write_ids() {
        assert_eq!(slug("Report Demo"), "report_demo");
        assert_eq!(slug("my-agent-demo"), "my_agent_demo");
        assert_eq!(slug("  QA / Engineer!"), "qa_engineer");
        assert_eq!(slug("developer"), "developer");
    }

    fn entry(folder: &str, id: Option<&str>, name: Option<&str>) -> AgentEntry {
        AgentEntry {
            folder: folder.into(),
            path: PathBuf::from(format!("agents/{folder}/playbook/{folder}_playbook.yaml")),
            id: id.map(str::to_string),
            display_name: name.map(str::to_string),
        }
    }

    #[test]
    fn resolves_agents_by_folder_id_and_name() {
        let index = AgentIndex {
            entries: vec![
                entry("report", Some("report_demo"), Some("Report Writer")),
                entry("helper", Some("my-agent-demo"), None),
            ],
        };
        for name in ["report", "report_demo", "Report Writer", "report_writer"] {
            let found = index.resolve(name).expect("unambiguous").expect("found");
            assert_eq!(found.folder, "report", "{name}");
        }
        let found = index.resolve("my_agent_demo").expect("ok").expect("found");
        assert_eq!(found.folder, "helper");
        assert_eq!(index.resolve("nobody"), Ok(None));
        assert_eq!(
            index.resolving_name(&index.entries[0]).as_deref(),
            Some("report")
        );
    }

    #[test]
    fn the_folder_decides_first_and_a_shared_id_is_ambiguous() {
        let index = AgentIndex {
            entries: vec![
                entry("report", Some("writer"), None),
                entry("writer", None, None),
                entry("copy_a", Some("shared"), Some("Twin")),
                entry("copy_b", Some("shared"), Some("Twin")),
            ],
        };
        // `writer` is a folder: found as upstream finds it, whatever other ids say.
        let found = index
            .resolve("writer")
            .expect("the folder decides")
            .expect("found");
        assert_eq!(found.folder, "writer");
        let error = index.resolve("shared").expect_err("two ids");
        assert!(error.to_string().contains("copy_a_playbook.yaml"));
        assert!(error.to_string().contains("copy_b_playbook.yaml"));
        assert!(index.resolve("twin").is_err());
        for entry in &index.entries {
            assert_eq!(
                index.resolving_name(entry).as_deref(),
                Some(entry.folder.as_str())
            );
        }
    }
}
