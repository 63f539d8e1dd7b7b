//! `text_analyzer`: counts (characters, words, sentences, paragraphs), average lengths and the
//! Flesch reading ease of a text. Pure computation on the text it is given.

use super::tool::{str_arg, Tool, ToolContext, ToolDefinition, ToolError};
use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::{json, Value};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextStats {
    pub characters: usize,
    pub characters_no_spaces: usize,
    pub words: usize,
    pub sentences: usize,
    pub paragraphs: usize,
    pub syllables: usize,
    pub average_word_length: f64,
    pub average_sentence_length: f64,
    /// 206.835 - 1.015 (words/sentences) - 84.6 (syllables/words); higher is easier.
    pub flesch_reading_ease: f64,
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Vowel groups, less a silent final `e`, at least one: the usual English estimate.
fn syllables(word: &str) -> usize {
    let lower: Vec<char> = word
        .chars()
        .filter(|c| c.is_alphabetic())
        .flat_map(char::to_lowercase)
        .collect();
    if lower.is_empty() {
        return 0;
    }
    let vowel = |c: char| matches!(c, 'a' | 'e' | 'i' | 'o' | 'u' | 'y');
    let mut count = 0;
    let mut previous = false;
    for &c in &lower {
        let v = vowel(c);
        if v && !previous {
            count += 1;
        }
        previous = v;
    }
    if lower.len() > 2 && lower.ends_with(&['e']) && !lower.ends_with(&['l', 'e']) && count > 1 {
        count -= 1;
    }
    count.max(1)
}

pub fn analyze(text: &str) -> TextStats {
    let words: Vec<&str> = text
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .collect();
    let sentences = text
        .split(['.', '!', '?'])
        .filter(|s| s.chars().any(char::is_alphanumeric))
        .count();
    let paragraphs = text.split("\n\n").filter(|p| !p.trim().is_empty()).count();
    let letters: usize = words
        .iter()
        .map(|w| w.chars().filter(|c| c.is_alphanumeric()).count())
        .sum();
    let syllable_count: usize = words.iter().map(|w| syllables(w)).sum();
    let (w, s) = (words.len() as f64, sentences.max(1) as f64);
    let (average_word_length, average_sentence_length, flesch) = if words.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (
            letters as f64 / w,
            w / s,
            206.835 - 1.015 * (w / s) - 84.6 * (syllable_count as f64 / w),
        )
    };
    TextStats {
        characters: text.chars().count(),
        characters_no_spaces: text.chars().filter(|c| !c.is_whitespace()).count(),
        words: words.len(),
        sentences,
        paragraphs,
        syllables: syllable_count,
        average_word_length: round2(average_word_length),
        average_sentence_length: round2(average_sentence_length),
        flesch_reading_ease: round2(flesch),
    }
}

pub struct TextAnalyzer {
    definition: ToolDefinition,
}

impl TextAnalyzer {
    pub fn new() -> TextAnalyzer {
        TextAnalyzer {
            definition: ToolDefinition {
                name: "text_analyzer".into(),
                description: "Counts characters, words, sentences and paragraphs of a text, \
                              with average lengths and the Flesch reading ease (higher is easier)."
                    .into(),
                parameters: json!({
                    "type": "object",
                    "properties": {"text": {"type": "string"}},
                    "required": ["text"],
                    "additionalProperties": false
                }),
            },
        }
    }
}

impl Default for TextAnalyzer {
    fn default() -> Self {
        TextAnalyzer::new()
    }
}

impl Tool for TextAnalyzer {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    fn call<'a>(
        &'a self,
        arguments: Value,
        _context: &'a ToolContext,
    ) -> BoxFuture<'a, Result<String, ToolError>> {
        Box::pin(async move {
            let text = str_arg("text_analyzer", &arguments, "text")?;
            serde_json::to_string(&analyze(text)).map_err(|e| ToolError::Failed(e.to_string()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_readability() {
        let stats = analyze("The cat sat on the mat. It was happy!\n\nA new paragraph here?");
        assert_eq!(stats.words, 13);
        assert_eq!(stats.sentences, 3);
        assert_eq!(stats.paragraphs, 2);
        assert!(stats.flesch_reading_ease > 90.0, "{stats:?}");
        let hard = analyze(
            "Institutional interoperability necessitates comprehensive organizational \
             considerations regarding infrastructural modernization.",
        );
        assert!(hard.flesch_reading_ease < 0.0, "{hard:?}");
        assert_eq!(analyze("").words, 0);
        assert_eq!(analyze("").flesch_reading_ease, 0.0);
        assert_eq!(syllables("table"), 2);
        assert_eq!(syllables("make"), 1);
        assert_eq!(syllables("a"), 1);
    }
}
