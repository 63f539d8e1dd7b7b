//! `orchestra export`: loads the orchestra (no API key needed on this machine), checks the
//! flags, writes the manifests to stdout or a file, and says on stderr what was written and
//! how to submit it.

use super::{Context, Failure, Outcome, EXIT_OK, EXIT_USAGE};
use crate::cli::{ExportArgs, ExportTargetArg};
use crate::export::{
    self, is_dns_label, is_dns_subdomain, ExportSettings, ExportTarget, WorkspaceSpec,
};
use crate::load::{load_orchestra, LoadOptions};
use crate::source::display_path;
use std::io::Write;
use std::path::Path;

pub fn export(context: &Context, args: &ExportArgs) -> Outcome {
    let settings = settings(args)?;
    let (path, project) = context.orchestra(&args.orchestra)?;
    let Some(project) = project else {
        return Err(Failure::usage(format!(
            "failed to export `{}`: it is in no project (no `.super` above it)",
            args.orchestra
        ))
        .hint(
            "the pods load the orchestra and its playbooks from the project; pass `--project DIR`",
        ));
    };
    let options = LoadOptions {
        strict: args.strict,
        inputs: super::given::inputs(context, &args.inputs)?,
        // A Job has no parameters: every input needs its value now. A Workflow's inputs
        // without one become parameters given at submit time.
        require_inputs: args.target == ExportTargetArg::Job,
        ..LoadOptions::default()
    };
    // Keys are read by the pods from the secret, never here.
    let loaded = match load_orchestra(Some(&project), &path, &options, &export::placeholder_env) {
        Ok(loaded) => loaded,
        Err(diags) => {
            context.print_diagnostics(&diags);
            return Ok(EXIT_USAGE);
        }
    };
    context.print_diagnostics(&loaded.warnings);
    let exported = export::export(&project, &loaded, &settings).map_err(|error| {
        let hint = error.hint();
        let failure = Failure::usage(error.to_string());
        match hint {
            Some(hint) => failure.hint(hint),
            None => failure,
        }
    })?;
    let yaml = export::to_yaml(&exported.documents).map_err(|e| Failure::refused(e.to_string()))?;
    for note in &exported.notes {
        eprintln!("note: {note}");
    }
    match &args.output {
        Some(file) => {
            write_atomically(file, &yaml).map_err(|e| {
                Failure::refused(format!("failed to write `{}`: {e}", display_path(file)))
            })?;
            eprintln!(
                "Wrote {}: {}",
                display_path(file),
                exported.summary.join(", ")
            );
            let shown = display_path(file);
            match settings.target {
                ExportTarget::Argo if settings.template => eprintln!(
                    "Next: kubectl apply -f {shown}, then argo submit --watch --from workflowtemplate/<name> -p goal=\"...\""
                ),
                ExportTarget::Argo => eprintln!(
                    "Next: kubectl apply -f {shown} -l super-orchestra/part=project, then argo submit --watch {shown} -p goal=\"...\""
                ),
                ExportTarget::Job => eprintln!("Next: kubectl apply -f {shown}"),
            }
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(yaml.as_bytes())
                .and_then(|()| stdout.flush())
                .map_err(|e| Failure::refused(format!("failed to write the manifests: {e}")))?;
        }
    }
    Ok(EXIT_OK)
}

fn settings(args: &ExportArgs) -> Result<ExportSettings, Failure> {
    if args.image.trim().is_empty() || args.image.chars().any(char::is_whitespace) {
        return Err(Failure::usage(format!(
            "failed to export: image `{}` is not an image reference",
            args.image
        )));
    }
    if let Some(namespace) = &args.namespace {
        if !is_dns_label(namespace) {
            return Err(Failure::usage(format!(
                "failed to export: namespace `{namespace}` is not a Kubernetes name"
            ))
            .hint("use lower-case letters, digits and `-`, at most 63 characters"));
        }
    }
    if !is_dns_subdomain(&args.secret) {
        return Err(Failure::usage(format!(
            "failed to export: secret `{}` is not a Kubernetes name",
            args.secret
        ))
        .hint("use lower-case letters, digits, `-` and `.`"));
    }
    if let Err(problem) = crate::spec::quantity::check_quantity(&args.pvc_size) {
        return Err(
            Failure::usage(format!("failed to export: --pvc-size: {}", problem.message))
                .hint(problem.hint),
        );
    }
    let workspace = match (&args.workspace_claim, args.artifacts) {
        (Some(claim), _) => {
            if !is_dns_subdomain(claim) {
                return Err(Failure::usage(format!(
                    "failed to export: claim `{claim}` is not a Kubernetes name"
                )));
            }
            WorkspaceSpec::ExistingClaim {
                name: claim.clone(),
            }
        }
        (None, true) => WorkspaceSpec::Artifacts,
        (None, false) => WorkspaceSpec::NewClaim {
            size: args.pvc_size.clone(),
        },
    };
    Ok(ExportSettings {
        target: match args.target {
            ExportTargetArg::Argo => ExportTarget::Argo,
            ExportTargetArg::Job => ExportTarget::Job,
        },
        template: args.template,
        image: args.image.clone(),
        namespace: args.namespace.clone(),
        secret: args.secret.clone(),
        workspace,
        max_wall_seconds: args.max_wall_seconds,
        goal: args.goal.clone(),
    })
}

/// Writes through a temporary file beside `path`, so a reader never sees half a manifest.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "manifests.yaml".into());
    let temporary = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = std::fs::write(&temporary, text).and_then(|()| std::fs::rename(&temporary, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}
