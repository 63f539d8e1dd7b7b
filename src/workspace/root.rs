//! Where a run may write: the workspace root, resolved and checked once before anything is
//! written. A file's `workspace.path` must stay inside the project root (after following
//! symlinks of the folders that already exist), must not be the project root itself, and must
//! not contain the orchestra file; `--workspace DIR` is the user's explicit choice and may point
//! anywhere. In both cases the workspace's own folders must be real folders, never symlinks, so
//! no write is ever redirected elsewhere. Must not create or write anything.

use crate::diag::Diagnostic;
use crate::spec::OrchestraSpec;
use std::path::{Component, Path, PathBuf};

/// The folders a run writes into, which must never be symlinks.
const OWN_FOLDERS: &[&str] = &[
    super::files::TASK_OUTPUTS,
    super::files::TASKS,
    super::files::INTERMEDIATE,
    super::files::ARTIFACTS,
    super::files::FINAL_RESULTS,
    super::files::CACHE,
    super::files::TEMP,
    super::files::HISTORY,
];

/// Why a `workspace.path` written in a file cannot be used, judged from its text alone (the
/// decoder reports it at the value's line and column).
pub fn path_text_problem(text: &str) -> Option<&'static str> {
    let path = Path::new(text.trim());
    if path.is_absolute() || text.trim().starts_with('~') {
        return Some("an absolute path; the workspace must be inside the project");
    }
    let mut depth: usize = 0;
    for component in path.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return Some("it leads out of the project"),
            },
            Component::RootDir | Component::Prefix(_) => {
                return Some("an absolute path; the workspace must be inside the project")
            }
        }
    }
    if depth == 0 {
        return Some("the project root itself; runs would write over the project's files");
    }
    None
}

/// The path with `.` and `..` removed lexically, after following the symlinks of the longest
/// part that exists (so a symlinked folder cannot lead out of the project unseen).
fn resolve_existing(path: &Path) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(&existing) {
            let mut out = real;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return crate::project::absolute(&out);
        }
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name.to_os_string());
                existing = parent.to_path_buf();
            }
            _ => return crate::project::absolute(path),
        }
    }
}

/// The workspace root of a run: `flag` (`--workspace`) as given, else the file's
/// `workspace.path` under `base` (the project root, or the orchestra's folder outside a
/// project), checked as the module says. The error points at the `workspace.path` value.
pub fn resolve_root(
    base: &Path,
    spec: &OrchestraSpec,
    flag: Option<&Path>,
) -> Result<PathBuf, Diagnostic> {
    let root = match flag {
        Some(dir) => crate::project::absolute(dir),
        None => {
            let at = |diagnostic: Diagnostic, label: &str| match spec.workspace_path_loc {
                Some(loc) => diagnostic.at(&spec.file, loc, label),
                None => diagnostic,
            };
            let text = &spec.workspace_path;
            if let Some(reason) = path_text_problem(text) {
                return Err(at(
                    Diagnostic::error(format!("`workspace.path` `{text}` is refused: {reason}")),
                    "outside the project",
                )
                .hint(WORKSPACE_HINT));
            }
            let root = crate::project::absolute(&base.join(text));
            let real_base = resolve_existing(base);
            let real_root = resolve_existing(&root);
            if !real_root.starts_with(&real_base) || real_root == real_base {
                return Err(at(
                    Diagnostic::error(format!(
                        "`workspace.path` `{text}` is refused: it resolves to `{}`, outside the project `{}` (through a symbolic link)",
                        real_root.display(),
                        real_base.display()
                    )),
                    "leads outside the project",
                )
                .hint(WORKSPACE_HINT));
            }
            let orchestra_dir = spec.file.path.parent().map(resolve_existing);
            if orchestra_dir.is_some_and(|dir| dir.starts_with(&real_root)) {
                return Err(at(
                    Diagnostic::error(format!(
                        "`workspace.path` `{text}` is refused: it contains the orchestra file `{}`",
                        spec.file.display
                    )),
                    "holds the project's own files",
                )
                .hint(WORKSPACE_HINT));
            }
            root
        }
    };
    check_own_folders(&root)?;
    Ok(root)
}

const WORKSPACE_HINT: &str =
    "use a folder of its own inside the project, such as `./orchestra_workspaces/<id>`, or pass `--workspace DIR`";

/// Refuses a workspace whose own folders (or the `.lock` file) are symlinks.
pub fn check_own_folders(root: &Path) -> Result<(), Diagnostic> {
    for name in OWN_FOLDERS.iter().chain(&[".lock"]) {
        let path = root.join(name);
        if let Ok(meta) = std::fs::symlink_metadata(&path) {
            if meta.file_type().is_symlink() {
                return Err(Diagnostic::error(format!(
                    "the workspace's `{name}` is a symbolic link (`{}`); super never writes through a link",
                    crate::source::display_path(&path)
                ))
                .hint("remove the link, or point `--workspace` at the folder it leads to"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::path_text_problem;

    #[test]
    fn paths_leaving_the_project_or_equal_to_it_are_refused() {
        for bad in ["/etc", "../../tmp/x", ".", "./", "a/..", "a/../../b", "~/x"] {
            assert!(path_text_problem(bad).is_some(), "{bad}");
        }
        for good in ["./orchestra_workspaces/x", "ws", "a/../b", "./a/./b"] {
            assert_eq!(path_text_problem(good), None, "{good}");
        }
    }
}
