//! `calculator`: arithmetic expressions read by our own recursive-descent parser and computed on
//! `f64`. Nothing is ever evaluated as code. It owns the grammar; it must not grow variables,
//! assignment or anything that runs outside arithmetic.
//!
//! Grammar (lowest precedence first):
//! `expr := term (('+'|'-') term)*`, `term := unary (('*'|'/'|'%') unary)*`,
//! `unary := '-' unary | '+' unary | power`, `power := atom ('^' unary)?` (right-associative),
//! `atom := number | name | name '(' expr (',' expr)* ')' | '(' expr ')'`.

use super::tool::{str_arg, Tool, ToolContext, ToolDefinition, ToolError};
use futures::future::BoxFuture;
use serde_json::{json, Value};

/// The longest expression accepted, so a huge input cannot recurse deeply.
const MAX_LEN: usize = 2_000;
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CalcError {
    #[error("failed to read `{found}` at position {position}: {expected}")]
    Syntax {
        position: usize,
        found: String,
        expected: &'static str,
    },
    #[error("division by zero")]
    DivisionByZero,
    #[error("unknown function or constant `{0}` (known: sqrt, abs, round, floor, ceil, min, max, ln, log10, exp, pi, e)")]
    Unknown(String),
    #[error("`{name}` takes {expected} argument(s), got {got}")]
    Arity {
        name: String,
        expected: &'static str,
        got: usize,
    },
    #[error("the result is not a finite number ({0})")]
    NotFinite(&'static str),
    #[error("the expression is too long or too deeply nested")]
    TooComplex,
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
}

/// Computes an arithmetic expression.
pub fn evaluate(expression: &str) -> Result<f64, CalcError> {
    if expression.len() > MAX_LEN {
        return Err(CalcError::TooComplex);
    }
    let mut parser = Parser {
        chars: expression.chars().collect(),
        pos: 0,
        depth: 0,
    };
    let value = parser.expr()?;
    parser.skip_space();
    if parser.pos < parser.chars.len() {
        return Err(parser.error("an operator or the end of the expression"));
    }
    if value.is_nan() {
        return Err(CalcError::NotFinite("not a number"));
    }
    if value.is_infinite() {
        return Err(CalcError::NotFinite("too large"));
    }
    Ok(value)
}

impl Parser {
    fn skip_space(&mut self) {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_space();
        self.chars.get(self.pos).copied()
    }

    fn error(&self, expected: &'static str) -> CalcError {
        let found = match self.chars.get(self.pos) {
            Some(c) => c.to_string(),
            None => "the end".to_string(),
        };
        CalcError::Syntax {
            position: self.pos + 1,
            found,
            expected,
        }
    }

    fn enter(&mut self) -> Result<(), CalcError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(CalcError::TooComplex);
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<f64, CalcError> {
        self.enter()?;
        let mut value = self.term()?;
        while let Some(op @ ('+' | '-')) = self.peek() {
            self.pos += 1;
            let rhs = self.term()?;
            value = if op == '+' { value + rhs } else { value - rhs };
        }
        self.depth -= 1;
        Ok(value)
    }

    fn term(&mut self) -> Result<f64, CalcError> {
        let mut value = self.unary()?;
        while let Some(op @ ('*' | '/' | '%' | '×' | '÷')) = self.peek() {
            self.pos += 1;
            let rhs = self.unary()?;
            value = match op {
                '*' | '×' => value * rhs,
                _ if rhs == 0.0 => return Err(CalcError::DivisionByZero),
                '/' | '÷' => value / rhs,
                _ => value % rhs,
            };
        }
        Ok(value)
    }

    fn unary(&mut self) -> Result<f64, CalcError> {
        match self.peek() {
            Some('-') => {
                self.pos += 1;
                self.enter()?;
                let v = -self.unary()?;
                self.depth -= 1;
                Ok(v)
            }
            Some('+') => {
                self.pos += 1;
                self.enter()?;
                let v = self.unary()?;
                self.depth -= 1;
                Ok(v)
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> Result<f64, CalcError> {
        let base = self.atom()?;
        if self.peek() == Some('^') {
            self.pos += 1;
            self.enter()?;
            let exponent = self.unary()?;
            self.depth -= 1;
            return Ok(base.powf(exponent));
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<f64, CalcError> {
        match self.peek() {
            Some('(') => {
                self.pos += 1;
                let value = self.expr()?;
                if self.peek() != Some(')') {
                    return Err(self.error("`)`"));
                }
                self.pos += 1;
                Ok(value)
            }
            Some(c) if c.is_ascii_digit() || c == '.' => self.number(),
            Some(c) if c.is_ascii_alphabetic() => self.call(),
            _ => Err(self.error("a number, a function or `(`")),
        }
    }

    fn number(&mut self) -> Result<f64, CalcError> {
        let start = self.pos;
        while self
            .chars
            .get(self.pos)
            .is_some_and(|c| c.is_ascii_digit() || *c == '.' || *c == '_')
        {
            self.pos += 1;
        }
        // An exponent such as `1e3` or `2.5E-2`.
        if matches!(self.chars.get(self.pos), Some('e' | 'E'))
            && self
                .chars
                .get(self.pos + 1)
                .is_some_and(|c| c.is_ascii_digit() || *c == '-' || *c == '+')
        {
            self.pos += 2;
            while self.chars.get(self.pos).is_some_and(|c| c.is_ascii_digit()) {
                self.pos += 1;
            }
        }
        let text: String = self.chars[start..self.pos]
            .iter()
            .filter(|c| **c != '_')
            .collect();
        text.parse::<f64>().map_err(|_| CalcError::Syntax {
            position: start + 1,
            found: text.clone(),
            expected: "a number",
        })
    }

    fn call(&mut self) -> Result<f64, CalcError> {
        let start = self.pos;
        while self
            .chars
            .get(self.pos)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
        {
            self.pos += 1;
        }
        let name: String = self.chars[start..self.pos].iter().collect::<String>();
        let name = name.to_ascii_lowercase();
        if self.peek() != Some('(') {
            return match name.as_str() {
                "pi" => Ok(std::f64::consts::PI),
                "e" => Ok(std::f64::consts::E),
                _ => Err(CalcError::Unknown(name)),
            };
        }
        self.pos += 1;
        let mut args = vec![self.expr()?];
        loop {
            match self.peek() {
                Some(',') => {
                    self.pos += 1;
                    args.push(self.expr()?);
                }
                Some(')') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.error("`,` or `)`")),
            }
        }
        let one = |args: &[f64], f: fn(f64) -> f64| -> Result<f64, CalcError> {
            match args {
                [x] => Ok(f(*x)),
                _ => Err(CalcError::Arity {
                    name: name.clone(),
                    expected: "1",
                    got: args.len(),
                }),
            }
        };
        match name.as_str() {
            "sqrt" => {
                let v = one(&args, f64::sqrt)?;
                if v.is_nan() {
                    return Err(CalcError::NotFinite("square root of a negative number"));
                }
                Ok(v)
            }
            "abs" => one(&args, f64::abs),
            "floor" => one(&args, f64::floor),
            "ceil" => one(&args, f64::ceil),
            "ln" => one(&args, f64::ln),
            "log10" | "log" => one(&args, f64::log10),
            "exp" => one(&args, f64::exp),
            "round" => match args.as_slice() {
                [x] => Ok(x.round()),
                [x, digits] => {
                    let factor = 10f64.powi(digits.round().clamp(-15.0, 15.0) as i32);
                    Ok((x * factor).round() / factor)
                }
                _ => Err(CalcError::Arity {
                    name: name.clone(),
                    expected: "1 or 2",
                    got: args.len(),
                }),
            },
            "min" | "max" => {
                let fold = if name == "min" { f64::min } else { f64::max };
                Ok(args.iter().copied().reduce(fold).unwrap_or(f64::NAN))
            }
            _ => Err(CalcError::Unknown(name.clone())),
        }
    }
}

/// Formats a result without float noise: `0.1+0.2` reads `0.3`, `10/4` reads `2.5`.
pub fn format_number(value: f64) -> String {
    if value == value.trunc() && value.abs() < 1e15 {
        return format!("{}", value as i64);
    }
    let rounded = format!("{value:.12}");
    let trimmed = rounded.trim_end_matches('0').trim_end_matches('.');
    trimmed.to_string()
}

pub struct Calculator {
    definition: ToolDefinition,
}

impl Calculator {
    pub fn new() -> Calculator {
        Calculator {
            definition: ToolDefinition {
                name: "calculator".into(),
                description: "Computes an arithmetic expression: + - * / % ^, parentheses, \
                              decimals, and sqrt, abs, round(x[, digits]), floor, ceil, min, max, \
                              ln, log10, exp, pi, e."
                    .into(),
                parameters: json!({
                    "type": "object",
                    "properties": {
                        "expression": {"type": "string", "description": "For example `(2 + 3) * 4 ^ 2`"}
                    },
                    "required": ["expression"],
                    "additionalProperties": false
                }),
            },
        }
    }
}

impl Default for Calculator {
    fn default() -> Self {
        Calculator::new()
    }
}

impl Tool for Calculator {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    fn call<'a>(
        &'a self,
        arguments: Value,
        _context: &'a ToolContext,
    ) -> BoxFuture<'a, Result<String, ToolError>> {
        Box::pin(async move {
            let expression = str_arg("calculator", &arguments, "expression")?;
            evaluate(expression)
                .map(format_number)
                .map_err(|e| ToolError::Failed(format!("failed to compute `{expression}`: {e}")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calc(s: &str) -> f64 {
        match evaluate(s) {
            Ok(v) => v,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn precedence_and_associativity() {
        assert_eq!(calc("2 + 3 * 4"), 14.0);
        assert_eq!(calc("(2 + 3) * 4"), 20.0);
        assert_eq!(calc("2 ^ 3 ^ 2"), 512.0);
        assert_eq!(calc("-2 ^ 2"), -4.0);
        assert_eq!(calc("2 ^ -1"), 0.5);
        assert_eq!(calc("10 - 4 - 3"), 3.0);
        assert_eq!(calc("100 / 10 / 5"), 2.0);
        assert_eq!(calc("7 % 4 * 2"), 6.0);
        assert_eq!(calc("--3"), 3.0);
        assert_eq!(calc("1.5e2 + .5"), 150.5);
        assert_eq!(calc("1_000 * 3"), 3000.0);
    }

    #[test]
    fn functions_and_constants() {
        assert_eq!(calc("sqrt(16) + abs(-2)"), 6.0);
        assert_eq!(calc("round(1.23456, 3)"), 1.235);
        assert_eq!(calc("round(2.5)"), 3.0);
        assert_eq!(calc("min(3, 1, 2) + max(4, 9)"), 10.0);
        assert!((calc("pi") - std::f64::consts::PI).abs() < 1e-12);
        assert_eq!(format_number(calc("0.1 + 0.2")), "0.3");
        assert_eq!(format_number(calc("10 / 4")), "2.5");
        assert_eq!(format_number(calc("2 ^ 10")), "1024");
    }

    #[test]
    fn errors_are_values() {
        assert_eq!(evaluate("1 / 0"), Err(CalcError::DivisionByZero));
        assert_eq!(evaluate("5 % (2 - 2)"), Err(CalcError::DivisionByZero));
        assert!(matches!(
            evaluate("2 +"),
            Err(CalcError::Syntax { position: 4, .. })
        ));
        assert!(matches!(evaluate("(1 + 2"), Err(CalcError::Syntax { .. })));
        assert!(matches!(evaluate("1 2"), Err(CalcError::Syntax { .. })));
        assert_eq!(
            evaluate("system(1)"),
            Err(CalcError::Unknown("system".into()))
        );
        assert!(matches!(
            evaluate("__import__('os')"),
            Err(CalcError::Syntax { .. })
        ));
        assert!(matches!(
            evaluate("sqrt(1, 2)"),
            Err(CalcError::Arity { .. })
        ));
        assert!(matches!(evaluate("sqrt(-1)"), Err(CalcError::NotFinite(_))));
        assert!(matches!(evaluate("10 ^ 400"), Err(CalcError::NotFinite(_))));
        assert_eq!(evaluate(&"(".repeat(500)), Err(CalcError::TooComplex));
        assert_eq!(evaluate(&"-".repeat(500)), Err(CalcError::TooComplex));
    }

    #[tokio::test]
    async fn the_tool_answers_text_and_reports_errors() {
        let tool = Calculator::new();
        let ctx = ToolContext::default();
        assert_eq!(
            tool.call(json!({"expression": "6 * 7"}), &ctx).await,
            Ok("42".to_string())
        );
        let err = tool
            .call(json!({"expression": "1/0"}), &ctx)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("division by zero"), "{err}");
        assert!(matches!(
            tool.call(json!({}), &ctx).await,
            Err(ToolError::InvalidArguments { .. })
        ));
    }
}
