//! `super init NAME`: a new SuperOptiX-compatible project.

use super::{Failure, Outcome, EXIT_OK};
use crate::cli::InitArgs;
use crate::workspace::write_atomic;

pub fn init(args: &InitArgs) -> Outcome {
    let name = args.name.trim().trim_end_matches('/');
    let folder = std::path::Path::new(name);
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
    if folder.exists() {
        let empty = std::fs::read_dir(folder)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !empty {
            return Err(Failure::refused(format!(
                "`{name}` already exists and is not empty; nothing was written"
            ))
            .hint("choose another name, or empty the folder first"));
        }
    }
    let io =
        |e: std::io::Error| Failure::refused(format!("failed to create the project `{name}`: {e}"));
    std::fs::create_dir_all(folder.join(&project).join("agents")).map_err(io)?;
    std::fs::create_dir_all(folder.join(&project).join("orchestras")).map_err(io)?;
    write_atomic(
        &folder.join(".super"),
        format!("project: {project}\n").as_bytes(),
    )
    .map_err(io)?;
    let readme = format!(
        "# {project}\n\nA SuperOptiX-compatible project for `super`.\n\n## Next steps\n\n```bash\ncd {name}\nsuper agent pull developer devops_engineer qa_engineer\nsuper orchestra create sdlc\nsuper orchestra run sdlc --goal \"Build a simple login feature for a web application\"\n```\n\nAgents live in `{project}/agents/<agent>/playbook/<agent>_playbook.yaml`, orchestras in\n`{project}/orchestras/<id>_orchestra.yaml`, and each run's outputs in `orchestra_workspaces/<id>/`.\n"
    );
    write_atomic(&folder.join("README.md"), readme.as_bytes()).map_err(io)?;
    println!("✅ Created project `{project}` in {name}/");
    println!("   {name}/.super");
    println!("   {name}/{project}/agents/");
    println!("   {name}/{project}/orchestras/");
    println!("   {name}/README.md");
    println!("\nNext: cd {name} && super agent pull developer devops_engineer qa_engineer && super orchestra create sdlc");
    Ok(EXIT_OK)
}
