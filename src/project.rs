//! A SuperOptiX project: the folder holding `.super` (`project: NAME`), found by walking up from
//! the current folder or given with `--project`. Owns where agents and orchestras live on disk;
//! never parses them.

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
    OrchestraNotFound { name: String, looked: String },
}

#[derive(Debug, Clone)]
pub struct Project {
    pub root: PathBuf,
    /// The `project:` of `.super`; agents and orchestras live under `<root>/<name>/`.
    pub name: Option<String>,
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

    /// The playbook of an agent, matched lower-cased.
    pub fn find_agent(&self, agent: &str) -> Option<PathBuf> {
        let wanted = agent.to_lowercase();
        self.list_agents()
            .into_iter()
            .find(|(name, _)| *name == wanted)
            .map(|(_, path)| path)
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

    /// An orchestra by id (`sdlc` -> `<dir>/sdlc_orchestra.yaml`).
    pub fn find_orchestra(&self, id: &str) -> Result<PathBuf, ProjectError> {
        let mut looked = Vec::new();
        let lowered = id.to_lowercase().replace(' ', "_");
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
        })
    }
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
}
