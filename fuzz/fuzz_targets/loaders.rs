//! Feeds arbitrary UTF-8 text through the whole loading pipeline: YAML parsing, the orchestra
//! and agent decoders (on the same tree), plan building, and diagnostic rendering.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = super_orchestra::fuzzing::load_text(text);
    }
});
