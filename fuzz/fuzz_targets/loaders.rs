//! Feeds arbitrary UTF-8 text through the whole loading pipeline: YAML parsing, the orchestra
//! and agent decoders (on the same tree), plan building, and diagnostic rendering.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use super_orchestra::diag::Diagnostics;
use super_orchestra::plan::{Plan, PlanOptions};
use super_orchestra::source::SourceFile;
use super_orchestra::{spec, yaml};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = SourceFile::new(Path::new("fuzz.yaml"), text.to_owned());
    let mut diags = Diagnostics::default();
    match yaml::parse(&file) {
        Err(diagnostic) => diags.push(diagnostic),
        Ok(root) => {
            if let Some(orchestra) = spec::decode_orchestra(&file, &root, &mut diags) {
                let _ = Plan::build(&orchestra, PlanOptions::default(), &mut diags);
            }
            let _ = spec::decode_agent(&file, &root, "fallback", &mut diags);
        }
    }
    let _ = diags.render(false);
    let _ = diags.render(true);
});
