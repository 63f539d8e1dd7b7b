//! Tokenizer tests against reference ids recorded from Hugging Face `tokenizers` (see
//! `fixtures/make_tokenizer_ids.py` for how `fixtures/tokenizer_ids.json` was produced). They
//! need the model file for its vocabulary and skip when it is absent.

use super_local::{default_model_path, Tokenizer};

fn tokenizer() -> Option<Tokenizer> {
    let path = default_model_path();
    if !path.exists() {
        eprintln!(
            "skipping: no model at {} (run scripts/fetch-model.sh)",
            path.display()
        );
        return None;
    }
    match Tokenizer::from_gguf_file(&path) {
        Ok(t) => Some(t),
        Err(e) => panic!("{e}"),
    }
}

/// `(text, reference ids, whether the ids decode back to the text)`.
fn fixture() -> Vec<(String, Vec<u32>, bool)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tokenizer_ids.json"
    );
    let text = std::fs::read_to_string(path).expect("read fixture");
    let json: serde_json::Value = serde_json::from_str(&text).expect("parse fixture");
    json["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| {
            let text = c["text"].as_str().expect("text").to_owned();
            let ids = c["ids"]
                .as_array()
                .expect("ids")
                .iter()
                .map(|i| i.as_u64().expect("id") as u32)
                .collect();
            let roundtrip = c["roundtrip"].as_bool().unwrap_or(true);
            (text, ids, roundtrip)
        })
        .collect()
}

#[test]
fn ids_match_the_reference_tokenizer() {
    let Some(tok) = tokenizer() else { return };
    let cases = fixture();
    assert!(cases.len() >= 12);
    let mut failures = Vec::new();
    for (text, want, _) in &cases {
        let got = tok.encode(text);
        if &got != want {
            failures.push(format!("{text:?}\n  got  {got:?}\n  want {want:?}"));
        }
        assert_eq!(tok.token_count(text), want.len());
    }
    assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
}

#[test]
fn decode_inverts_encode() {
    let Some(tok) = tokenizer() else { return };
    let mut checked = 0;
    for (text, _, roundtrip) in fixture() {
        if roundtrip {
            assert_eq!(tok.decode(&tok.encode(&text)), text);
            checked += 1;
        }
    }
    assert!(checked >= 12);
}

#[test]
fn metadata_and_special_tokens() {
    let Some(tok) = tokenizer() else { return };
    assert_eq!(tok.vocab_size(), 49_152);
    assert_eq!(tok.bos_id(), Some(1));
    assert_eq!(tok.eos_id(), Some(2));
    assert_eq!(tok.token_to_id("<|im_end|>"), Some(2));
    assert_eq!(tok.id_to_token(0), Some("<|endoftext|>"));
    assert_eq!(tok.special_tokens().count(), 17);
    // No BOS is prepended.
    assert_eq!(tok.encode("hi"), vec![6004]);
    assert_eq!(tok.encode(""), Vec::<u32>::new());
    assert_eq!(tok.decode(&[1, 6004, 2]), "<|im_start|>hi<|im_end|>");
}
