use std::ops::ControlFlow;
use super_local::*;
fn main() -> Result<(), Box<dyn std::error::Error>> {
    set_threads(1);
    let mut m = LocalModel::load(&default_model_path())?;
    eprintln!("padded={}", m.load_info().padded_for_vnni);
    let qs = [
        "What is the capital of France?",
        "Write a Python function that reverses a string.",
        "Explain photosynthesis in two sentences.",
        "List three colors.",
        "Tell me a joke about computers.",
    ];
    for q in qs {
        let msgs = [
            ChatMessage::system("You are a helpful assistant."),
            ChatMessage::user(q),
        ];
        let p = GenerateParams {
            max_tokens: 60,
            ..Default::default()
        };
        let g = m.generate(&msgs, &p, &mut |_| ControlFlow::Continue(()))?;
        println!("{:?}", g.text);
    }
    Ok(())
}
