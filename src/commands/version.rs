//! `super version`: the version, and what a bug report needs: the commit, the build date, the
//! target, the enabled cargo features and the model cache path. Reads only what `build.rs`
//! embedded and the environment; no network, no git at run time.

use super::{Outcome, EXIT_OK};

/// The lines `super version` prints, as (label, value).
pub fn build_info() -> Vec<(&'static str, String)> {
    let mut features = Vec::new();
    if cfg!(feature = "local") {
        features.push("local");
    }
    vec![
        ("commit", env!("SUPER_BUILD_COMMIT").to_string()),
        ("build date", env!("SUPER_BUILD_DATE").to_string()),
        ("target", env!("SUPER_BUILD_TARGET").to_string()),
        (
            "features",
            if features.is_empty() {
                "(none)".to_string()
            } else {
                features.join(", ")
            },
        ),
        ("model cache", model_cache()),
    ]
}

fn model_cache() -> String {
    #[cfg(feature = "local")]
    {
        super_local::models_dir().display().to_string()
    }
    #[cfg(not(feature = "local"))]
    {
        "(built without the `local` feature)".to_string()
    }
}

pub fn version() -> Outcome {
    println!("super {}", env!("CARGO_PKG_VERSION"));
    for (label, value) in build_info() {
        println!("{:<12} {value}", format!("{label}:"));
    }
    Ok(EXIT_OK)
}
