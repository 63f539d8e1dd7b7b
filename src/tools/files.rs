//! `file_reader`, `file_writer` and `list_files`, confined to the run's workspace folder. Writes
//! go only under `intermediate/` (and so `intermediate/artifacts/`). A path that is absolute,
//! has a `..`, or passes through a symlink anywhere is refused with a message for the model:
//! every component is checked with `symlink_metadata`, the final one is opened with
//! `O_NOFOLLOW`, and the parent is canonicalized and verified to be inside the workspace.

use super::tool::{opt_str, str_arg, Tool, ToolContext, ToolDefinition, ToolError};
use futures::future::BoxFuture;
use serde_json::{json, Value};
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

/// The folder agents may write to, relative to the workspace.
pub const WRITABLE_ROOT: &str = "intermediate";
/// The most bytes read from or written to one file in one call.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
const MAX_LIST_ENTRIES: usize = 500;

fn refused(path: &str, why: &str) -> ToolError {
    ToolError::Refused(format!(
        "`{path}` {why}; use a relative path inside the workspace"
    ))
}

/// The workspace root, canonical.
fn root(context: &ToolContext) -> Result<PathBuf, ToolError> {
    std::fs::canonicalize(&context.workspace).map_err(|e| {
        ToolError::Failed(format!(
            "failed to open the workspace `{}`: {e}",
            context.workspace.display()
        ))
    })
}

/// The relative path's plain components, or a refusal for anything that could leave the root.
fn components(path: &str) -> Result<Vec<String>, ToolError> {
    if path.contains('\0') {
        return Err(refused(path, "contains a NUL byte"));
    }
    let p = Path::new(path);
    let mut parts = Vec::new();
    for component in p.components() {
        match component {
            Component::Normal(part) => match part.to_str() {
                Some(s) => parts.push(s.to_string()),
                None => return Err(refused(path, "is not UTF-8")),
            },
            Component::CurDir => {}
            Component::ParentDir => return Err(refused(path, "goes up with `..`")),
            Component::RootDir | Component::Prefix(_) => return Err(refused(path, "is absolute")),
        }
    }
    Ok(parts)
}

/// Walks `parts` from `root` refusing any symlink on the way. Returns the full path and whether
/// the final component exists. With `create_dirs`, missing folders before the last are made.
fn walk(
    root: &Path,
    original: &str,
    parts: &[String],
    create_dirs: bool,
) -> Result<(PathBuf, bool), ToolError> {
    let mut current = root.to_path_buf();
    for (i, part) in parts.iter().enumerate() {
        current.push(part);
        let last = i + 1 == parts.len();
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(refused(original, "passes through a symbolic link"))
            }
            Ok(meta) if !last && !meta.is_dir() => {
                return Err(ToolError::Failed(format!(
                    "`{original}`: `{part}` is not a folder"
                )))
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if last {
                    return Ok((current, false));
                }
                if !create_dirs {
                    return Err(ToolError::Failed(format!("`{original}` does not exist")));
                }
                std::fs::create_dir(&current).map_err(|e| {
                    ToolError::Failed(format!("failed to create a folder for `{original}`: {e}"))
                })?;
            }
            Err(e) => {
                return Err(ToolError::Failed(format!(
                    "failed to read `{original}`: {e}"
                )))
            }
        }
    }
    Ok((current, true))
}

/// After the walk: the canonical parent must still be inside the root (a race or a hard case
/// the walk missed is caught here).
fn verify_inside(root: &Path, full: &Path, original: &str) -> Result<(), ToolError> {
    let parent = full.parent().unwrap_or(root);
    let canonical = std::fs::canonicalize(parent)
        .map_err(|e| ToolError::Failed(format!("failed to resolve `{original}`: {e}")))?;
    if !canonical.starts_with(root) {
        return Err(refused(original, "resolves outside the workspace"));
    }
    Ok(())
}

fn open_options_nofollow(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options
}

/// Resolves a path for reading: inside the workspace, no symlink, existing.
pub fn resolve_existing(context: &ToolContext, path: &str) -> Result<PathBuf, ToolError> {
    let root = root(context)?;
    let parts = components(path)?;
    let (full, exists) = walk(&root, path, &parts, false)?;
    if !exists {
        return Err(ToolError::Failed(format!("`{path}` does not exist")));
    }
    if !parts.is_empty() {
        verify_inside(&root, &full, path)?;
    }
    Ok(full)
}

/// Reads a workspace file (text, at most [`MAX_FILE_BYTES`]).
pub fn read_file(context: &ToolContext, path: &str) -> Result<String, ToolError> {
    let full = resolve_existing(context, path)?;
    let mut file = open_options_nofollow(OpenOptions::new().read(true))
        .open(&full)
        .map_err(|e| ToolError::Failed(format!("failed to open `{path}`: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| ToolError::Failed(format!("failed to read `{path}`: {e}")))?;
    if meta.is_dir() {
        return Err(ToolError::Failed(format!(
            "`{path}` is a folder; use list_files"
        )));
    }
    let mut bytes = Vec::new();
    Read::by_ref(&mut file)
        .take(MAX_FILE_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| ToolError::Failed(format!("failed to read `{path}`: {e}")))?;
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if meta.len() > MAX_FILE_BYTES {
        text.push_str(&format!(
            "\n[file truncated: {} of {} bytes shown]",
            MAX_FILE_BYTES,
            meta.len()
        ));
    }
    Ok(text)
}

/// Writes (or appends to) a file under `intermediate/`. Returns a confirmation.
pub fn write_file(
    context: &ToolContext,
    path: &str,
    content: &str,
    append: bool,
) -> Result<String, ToolError> {
    let root = root(context)?;
    let parts = components(path)?;
    if parts.len() < 2 || parts[0] != WRITABLE_ROOT {
        return Err(ToolError::Refused(format!(
            "`{path}` is not under `{WRITABLE_ROOT}/`; agents write only to `{WRITABLE_ROOT}/` and `{WRITABLE_ROOT}/artifacts/`"
        )));
    }
    if content.len() as u64 > MAX_FILE_BYTES {
        return Err(ToolError::Failed(format!(
            "the content is {} bytes; the most one call may write is {MAX_FILE_BYTES}",
            content.len()
        )));
    }
    let (full, _) = walk(&root, path, &parts, true)?;
    verify_inside(&root, &full, path)?;
    let mut options = OpenOptions::new();
    options.write(true).create(true);
    if append {
        options.append(true);
    } else {
        options.truncate(true);
    }
    let mut file = open_options_nofollow(&mut options)
        .open(&full)
        .map_err(|e| match e.raw_os_error() {
            #[cfg(unix)]
            Some(code) if code == libc::ELOOP => refused(path, "is a symbolic link"),
            _ => ToolError::Failed(format!("failed to write `{path}`: {e}")),
        })?;
    file.write_all(content.as_bytes())
        .map_err(|e| ToolError::Failed(format!("failed to write `{path}`: {e}")))?;
    Ok(format!(
        "{} {} bytes to `{}`",
        if append { "appended" } else { "wrote" },
        content.len(),
        parts.join("/")
    ))
}

/// Lists a workspace folder (one level, or every level with `recursive`), never following
/// symlinks: they are shown as such.
pub fn list_files(context: &ToolContext, path: &str, recursive: bool) -> Result<String, ToolError> {
    let full = resolve_existing(context, path)?;
    let root = root(context)?;
    let mut lines = Vec::new();
    let mut stack = vec![full];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .map_err(|e| ToolError::Failed(format!("failed to list `{path}`: {e}")))?
            .filter_map(Result::ok)
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
                continue;
            };
            let shown = entry
                .path()
                .strip_prefix(&root)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            if meta.file_type().is_symlink() {
                lines.push(format!("{shown} (symlink, not followed)"));
            } else if meta.is_dir() {
                lines.push(format!("{shown}/"));
                if recursive {
                    stack.push(entry.path());
                }
            } else {
                lines.push(format!("{shown} ({} bytes)", meta.len()));
            }
            if lines.len() >= MAX_LIST_ENTRIES {
                lines.push(format!("[listing stopped at {MAX_LIST_ENTRIES} entries]"));
                return Ok(lines.join("\n"));
            }
        }
    }
    if lines.is_empty() {
        return Ok("(empty)".into());
    }
    Ok(lines.join("\n"))
}

fn definition(name: &str, description: &str, parameters: Value) -> ToolDefinition {
    ToolDefinition {
        name: name.into(),
        description: description.into(),
        parameters,
    }
}

pub struct FileReader(ToolDefinition);
pub struct FileWriter(ToolDefinition);
pub struct ListFiles(ToolDefinition);

impl FileReader {
    pub fn new() -> FileReader {
        FileReader(definition(
            "file_reader",
            "Reads a text file of the workspace, by its path relative to the workspace (for \
             example `intermediate/notes.md`).",
            json!({
                "type": "object",
                "properties": {"path": {"type": "string"}},
                "required": ["path"],
                "additionalProperties": false
            }),
        ))
    }
}

impl FileWriter {
    pub fn new() -> FileWriter {
        FileWriter(definition(
            "file_writer",
            "Writes a text file under `intermediate/` (or `intermediate/artifacts/`) of the \
             workspace, so later tasks can read it. `mode` is `overwrite` (default) or `append`.",
            json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "e.g. `intermediate/plan.md`"},
                    "content": {"type": "string"},
                    "mode": {"type": "string", "enum": ["overwrite", "append"]}
                },
                "required": ["path", "content"],
                "additionalProperties": false
            }),
        ))
    }
}

impl ListFiles {
    pub fn new() -> ListFiles {
        ListFiles(definition(
            "list_files",
            "Lists a folder of the workspace (default: the workspace itself).",
            json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "recursive": {"type": "boolean"}
                },
                "additionalProperties": false
            }),
        ))
    }
}

macro_rules! defaults {
    ($($t:ident),*) => {$(
        impl Default for $t {
            fn default() -> Self {
                $t::new()
            }
        }
    )*};
}
defaults!(FileReader, FileWriter, ListFiles);

/// File work is blocking; it runs off the async workers.
async fn blocking<F>(f: F) -> Result<String, ToolError>
where
    F: FnOnce() -> Result<String, ToolError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(ToolError::Failed(format!("the file task failed: {e}"))))
}

impl Tool for FileReader {
    fn definition(&self) -> &ToolDefinition {
        &self.0
    }
    fn call<'a>(
        &'a self,
        arguments: Value,
        context: &'a ToolContext,
    ) -> BoxFuture<'a, Result<String, ToolError>> {
        Box::pin(async move {
            let path = str_arg("file_reader", &arguments, "path")?.to_string();
            let context = context.clone();
            blocking(move || read_file(&context, &path)).await
        })
    }
}

impl Tool for FileWriter {
    fn definition(&self) -> &ToolDefinition {
        &self.0
    }
    fn call<'a>(
        &'a self,
        arguments: Value,
        context: &'a ToolContext,
    ) -> BoxFuture<'a, Result<String, ToolError>> {
        Box::pin(async move {
            let path = str_arg("file_writer", &arguments, "path")?.to_string();
            let content = str_arg("file_writer", &arguments, "content")?.to_string();
            let append = match opt_str(&arguments, "mode").unwrap_or("overwrite") {
                "overwrite" => false,
                "append" => true,
                other => {
                    return Err(ToolError::invalid(
                        "file_writer",
                        format!("`mode` is `overwrite` or `append`, not `{other}`"),
                    ))
                }
            };
            let context = context.clone();
            blocking(move || write_file(&context, &path, &content, append)).await
        })
    }
}

impl Tool for ListFiles {
    fn definition(&self) -> &ToolDefinition {
        &self.0
    }
    fn call<'a>(
        &'a self,
        arguments: Value,
        context: &'a ToolContext,
    ) -> BoxFuture<'a, Result<String, ToolError>> {
        Box::pin(async move {
            let path = opt_str(&arguments, "path").unwrap_or(".").to_string();
            let recursive = arguments
                .get("recursive")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let context = context.clone();
            blocking(move || list_files(&context, &path, recursive)).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, tempfile::TempDir, ToolContext) {
        let workspace = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let outside = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let context = ToolContext {
            workspace: workspace.path().to_path_buf(),
        };
        (workspace, outside, context)
    }

    fn is_refused(result: Result<String, ToolError>) -> bool {
        matches!(result, Err(ToolError::Refused(_)))
    }

    #[test]
    fn write_then_read_and_list_inside_intermediate() {
        let (_w, _o, ctx) = setup();
        write_file(&ctx, "intermediate/artifacts/plan.md", "step 1\n", false)
            .unwrap_or_else(|e| panic!("{e}"));
        write_file(&ctx, "./intermediate/artifacts/plan.md", "step 2\n", true)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            read_file(&ctx, "intermediate/artifacts/plan.md").as_deref(),
            Ok("step 1\nstep 2\n")
        );
        let listing = list_files(&ctx, ".", true).unwrap_or_default();
        assert!(
            listing.contains("intermediate/artifacts/plan.md (14 bytes)"),
            "{listing}"
        );
        assert!(matches!(
            read_file(&ctx, "intermediate/missing.md"),
            Err(ToolError::Failed(_))
        ));
    }

    #[test]
    fn writes_outside_intermediate_are_refused() {
        let (w, _o, ctx) = setup();
        assert!(is_refused(write_file(&ctx, "notes.md", "x", false)));
        assert!(is_refused(write_file(&ctx, "intermediate", "x", false)));
        assert!(!w.path().join("notes.md").exists());
    }

    #[test]
    fn escapes_are_refused_and_nothing_is_written_outside() {
        let (w, outside, ctx) = setup();
        std::fs::write(outside.path().join("secret.txt"), "secret").unwrap_or_default();
        let outside_abs = outside.path().join("secret.txt");
        let abs = outside_abs.to_string_lossy();
        assert!(is_refused(read_file(&ctx, "../secret.txt")));
        assert!(is_refused(read_file(&ctx, "intermediate/../../secret.txt")));
        assert!(is_refused(read_file(&ctx, &abs)));
        assert!(is_refused(write_file(&ctx, &abs, "pwned", false)));
        assert!(is_refused(write_file(
            &ctx,
            "intermediate/../../x.txt",
            "pwned",
            false
        )));
        assert!(is_refused(list_files(&ctx, "..", false)));

        #[cfg(unix)]
        {
            // A symlinked folder planted in the workspace, and a symlinked final file.
            std::fs::create_dir_all(w.path().join("intermediate")).unwrap_or_default();
            std::os::unix::fs::symlink(outside.path(), w.path().join("intermediate/link"))
                .unwrap_or_else(|e| panic!("{e}"));
            std::os::unix::fs::symlink(&outside_abs, w.path().join("intermediate/file.txt"))
                .unwrap_or_else(|e| panic!("{e}"));
            std::os::unix::fs::symlink(outside.path(), w.path().join("out"))
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(is_refused(read_file(&ctx, "intermediate/link/secret.txt")));
            assert!(is_refused(read_file(&ctx, "intermediate/file.txt")));
            assert!(is_refused(read_file(&ctx, "out/secret.txt")));
            assert!(is_refused(write_file(
                &ctx,
                "intermediate/link/new.txt",
                "pwned",
                false
            )));
            assert!(is_refused(write_file(
                &ctx,
                "intermediate/file.txt",
                "pwned",
                false
            )));
            assert!(is_refused(list_files(&ctx, "out", false)));
            let listing = list_files(&ctx, "intermediate", false).unwrap_or_default();
            assert!(
                listing.contains("intermediate/link (symlink, not followed)"),
                "{listing}"
            );
        }
        // Nothing changed outside.
        let names: Vec<_> = std::fs::read_dir(outside.path())
            .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert_eq!(names, vec![std::ffi::OsString::from("secret.txt")]);
        assert_eq!(
            std::fs::read_to_string(&outside_abs).unwrap_or_default(),
            "secret"
        );
    }

    #[tokio::test]
    async fn the_tools_report_refusals_as_errors_for_the_model() {
        let (_w, _o, ctx) = setup();
        let writer = FileWriter::new();
        let err = writer
            .call(json!({"path": "../x", "content": "y"}), &ctx)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("refused"), "{err}");
        let ok = writer
            .call(
                json!({"path": "intermediate/a.txt", "content": "hello"}),
                &ctx,
            )
            .await;
        assert_eq!(ok.as_deref(), Ok("wrote 5 bytes to `intermediate/a.txt`"));
        let read = FileReader::new()
            .call(json!({"path": "intermediate/a.txt"}), &ctx)
            .await;
        assert_eq!(read.as_deref(), Ok("hello"));
    }
}
