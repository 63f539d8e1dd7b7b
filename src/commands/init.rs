//! `super init [NAME]`: a new SuperOptiX-compatible project, in a new folder `NAME`, or in the
//! current folder when no name (or `.`) is given, as `cargo init` does. Never overwrites a file
//! and never initialises a folder that already holds `.super`.

use super::{Failure, Outcome, EXIT_OK};
use crate::cli::InitArgs;
use crate::workspace::write_atomic;
use std::path::Path;

pub fn init(args: &InitArgs) -> Outcome {
    let name = args.name.as_deref().map(str::trim).unwrap_or(".");
    if name.is_empty() || name == "." || name == "./" {
        return init_here();
    }
    init_new(name)
}

/// `super init NAME`: a new (or empty) folder.
fn init_new(name: &str) -> Outcome {
    let name = name.trim_end_matches('/');
    let folder = Path::new(name);
    let project = folder
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    if let Some(reason) = crate::names::unsafe_reason(&project) {
        return Err(
            Failure::usage(format!("`{name}` cannot be a project name: {reason}"))
                .hint("use letters, digits and underscores"),
        );
    }
    if folder.join(".super").exists() {
        return Err(already_a_project(name));
    }
    if folder.exists() {
        let empty = std::fs::read_dir(folder)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !empty {
            return Err(Failure::refused(format!(
                "`{name}` already exists and is not empty; nothing was written"
            ))
            .hint(format!(
                "choose another name, or make that folder a project with `cd {name} && super init`"
            )));
        }
    }
    let readme = write_project(folder, &project, name)?;
    println!("✅ Created project `{project}` in {name}/");
    print_files(&format!("{name}/"), &project, readme);
    println!("\nNext: cd {name} && super agent pull developer devops_engineer qa_engineer && super orchestra create sdlc");
    Ok(EXIT_OK)
}

/// `super init` / `super init .`: the current folder, named after it.
fn init_here() -> Outcome {
    let folder = std::env::current_dir()
        .map_err(|e| Failure::refused(format!("failed to read the current folder: {e}")))?;
    let shown = folder.display().to_string();
    if folder.join(".super").exists() {
        return Err(already_a_project(&shown));
    }
    let project = folder
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    if let Some(reason) = crate::names::unsafe_reason(&project) {
        return Err(Failure::usage(format!(
            "the current folder `{shown}` cannot name a project: {reason}"
        ))
        .hint("create a project in a new folder with `super init NAME`"));
    }
    let readme = write_project(&folder, &project, ".")?;
    println!("✅ Initialised project `{project}` in {shown}");
    print_files("", &project, readme);
    println!("\nNext: super agent pull developer devops_engineer qa_engineer && super orchestra create sdlc");
    Ok(EXIT_OK)
}

fn already_a_project(folder: &str) -> Failure {
    Failure::refused(format!(
        "`{folder}` is already a SuperOptiX project (it has a `.super` file); nothing was written"
    ))
    .hint("add agents with `super agent pull NAME`, or create a new project with `super init NAME`")
}

/// Writes `.super`, the agents and orchestras folders and (when absent) a README; returns
/// whether the README was written.
fn write_project(folder: &Path, project: &str, shown: &str) -> Result<bool, Failure> {
    let io = |e: std::io::Error| {
        Failure::refused(format!("failed to create the project in `{shown}`: {e}"))
    };
    std::fs::create_dir_all(folder.join(project).join("agents")).map_err(io)?;
    std::fs::create_dir_all(folder.join(project).join("orchestras")).map_err(io)?;
    let readme_path = folder.join("README.md");
    let write_readme = !readme_path.exists();
    if write_readme {
        let cd = if shown == "." {
            String::new()
        } else {
            format!("cd {shown}\n")
        };
        let readme = format!(
            "# {project}\n\nA SuperOptiX-compatible project for `super`.\n\n## Next steps\n\n```bash\n{cd}super agent pull developer devops_engineer qa_engineer\nsuper orchestra create sdlc\nsuper orchestra run sdlc --goal \"Build a simple login feature for a web application\"\n```\n\nAgents live in `{project}/agents/<agent>/playbook/<agent>_playbook.yaml`, orchestras in\n`{project}/orchestras/<id>_orchestra.yaml`, and each run's outputs in `orchestra_workspaces/<id>/`.\n"
        );
        write_atomic(&readme_path, readme.as_bytes()).map_err(io)?;
    }
    // The marker last: a folder holds `.super` only once the rest is in place.
    write_atomic(
        &folder.join(".super"),
        format!("project: {project}\n").as_bytes(),
    )
    .map_err(io)?;
    Ok(write_readme)
}

fn print_files(prefix: &str, project: &str, readme: bool) {
    println!("   {prefix}.super");
    println!("   {prefix}{project}/agents/");
    println!("   {prefix}{project}/orchestras/");
    if readme {
        println!("   {prefix}README.md");
    } else {
        println!("   ({prefix}README.md already exists; left as it was)");
    }
}
