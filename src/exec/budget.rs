//! Budgets (tokens, cost, LLM calls, wall time), checked before every call, and the price
//! table that turns tokens into dollars. Local and Ollama models cost nothing.

use crate::provider::{ModelChoice, Protocol, Usage};
use crate::spec::{BudgetSpec, Price};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// USD per million tokens (input, output) for common hosted models.
const DEFAULT_PRICES: &[(&str, f64, f64)] = &[
    ("gpt-4o-mini", 0.15, 0.60),
    ("gpt-4o", 2.50, 10.00),
    ("gpt-4.1", 2.00, 8.00),
    ("gpt-4.1-mini", 0.40, 1.60),
    ("gpt-4.1-nano", 0.10, 0.40),
    ("o3-mini", 1.10, 4.40),
    ("o4-mini", 1.10, 4.40),
    ("gpt-3.5-turbo", 0.50, 1.50),
    ("claude-3-5-haiku-latest", 0.80, 4.00),
    ("claude-3-5-haiku-20241022", 0.80, 4.00),
    ("claude-3-5-sonnet-latest", 3.00, 15.00),
    ("claude-3-7-sonnet-latest", 3.00, 15.00),
    ("claude-sonnet-4-0", 3.00, 15.00),
    ("claude-opus-4-0", 15.00, 75.00),
    ("claude-3-haiku-20240307", 0.25, 1.25),
];

#[derive(Debug, Clone, Default)]
pub struct PriceTable {
    overrides: HashMap<String, Price>,
}

impl PriceTable {
    pub fn new(overrides: HashMap<String, Price>) -> PriceTable {
        PriceTable { overrides }
    }

    pub fn price(&self, choice: &ModelChoice) -> Price {
        if let Some(price) = self.overrides.get(&choice.model) {
            return *price;
        }
        if matches!(choice.endpoint.protocol, Protocol::Local | Protocol::Ollama) {
            return Price {
                input_per_million: 0.0,
                output_per_million: 0.0,
            };
        }
        DEFAULT_PRICES
            .iter()
            .find(|(model, _, _)| *model == choice.model)
            .map(|&(_, input, output)| Price {
                input_per_million: input,
                output_per_million: output,
            })
            .unwrap_or(Price {
                input_per_million: 0.0,
                output_per_million: 0.0,
            })
    }

    /// Whether the model's price is known (for dry-run estimates).
    pub fn is_known(&self, choice: &ModelChoice) -> bool {
        self.overrides.contains_key(&choice.model)
            || matches!(choice.endpoint.protocol, Protocol::Local | Protocol::Ollama)
            || DEFAULT_PRICES
                .iter()
                .any(|(model, _, _)| *model == choice.model)
    }

    pub fn cost(&self, choice: &ModelChoice, usage: Usage) -> f64 {
        let price = self.price(choice);
        (usage.input_tokens as f64 * price.input_per_million
            + usage.output_tokens as f64 * price.output_per_million)
            / 1_000_000.0
    }
}

#[derive(Debug, Default)]
struct Spent {
    tokens: u64,
    cost_usd: f64,
    calls: u64,
    tool_calls: u64,
}

/// What the run has spent, shared by every task.
#[derive(Debug)]
pub struct Budget {
    limits: BudgetSpec,
    started: Instant,
    spent: Mutex<Spent>,
}

impl Budget {
    pub fn new(limits: BudgetSpec) -> Budget {
        Budget {
            limits,
            started: Instant::now(),
            spent: Mutex::new(Spent::default()),
        }
    }

    /// A budget part of which is already spent: by the other tasks of a run whose tasks each
    /// run in their own process (`run-task`), read from their records. `elapsed` is the wall
    /// time since the run started.
    pub fn continuing(
        limits: BudgetSpec,
        calls: u64,
        tool_calls: u64,
        usage: Usage,
        cost_usd: f64,
        elapsed: std::time::Duration,
    ) -> Budget {
        let now = Instant::now();
        Budget {
            limits,
            started: now.checked_sub(elapsed).unwrap_or(now),
            spent: Mutex::new(Spent {
                tokens: usage.total(),
                cost_usd,
                calls,
                tool_calls,
            }),
        }
    }

    /// Reserves `wanted` tool calls at once (a model's batch runs whole or not at all), or
    /// says that the run's tool-call budget forbids them.
    pub fn try_tool_calls(&self, wanted: u64) -> Result<(), String> {
        let mut spent = self.spent.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(max) = self.limits.max_tool_calls {
            if spent.tool_calls.saturating_add(wanted) > max {
                return Err(format!(
                    "the run's tool-call budget is spent: max_tool_calls {max} ({} made)",
                    spent.tool_calls
                ));
            }
        }
        spent.tool_calls += wanted;
        Ok(())
    }

    /// Reserves one call, or says which budget forbids it. `estimated_input` is the prompt's
    /// size, so a call that would surely cross the token or cost budget does not start.
    pub fn try_start_call(&self, estimated_input: u64, estimated_cost: f64) -> Result<(), String> {
        let mut spent = self.spent.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(max) = self.limits.max_llm_calls {
            if spent.calls >= max {
                return Err(format!(
                    "budget reached: max_llm_calls {max} ({} calls made)",
                    spent.calls
                ));
            }
        }
        if let Some(max) = self.limits.max_tokens {
            if spent.tokens + estimated_input > max {
                return Err(format!(
                    "budget reached: max_tokens {max} ({} used, the next prompt needs about {estimated_input})",
                    spent.tokens
                ));
            }
        }
        if let Some(max) = self.limits.max_cost_usd {
            if spent.cost_usd + estimated_cost > max {
                return Err(format!(
                    "budget reached: max_cost_usd {max} (${:.6} spent)",
                    spent.cost_usd
                ));
            }
        }
        if let Some(max) = self.limits.max_wall_seconds {
            let elapsed = self.started.elapsed().as_secs_f64();
            if elapsed >= max {
                return Err(format!(
                    "budget reached: max_wall_seconds {max} ({elapsed:.1}s elapsed)"
                ));
            }
        }
        spent.calls += 1;
        Ok(())
    }

    /// What is left of `max_wall_seconds`, if it is set.
    pub fn wall_time_left(&self) -> Option<std::time::Duration> {
        let max = self.limits.max_wall_seconds?;
        let total = std::time::Duration::try_from_secs_f64(max.max(0.0))
            .unwrap_or(std::time::Duration::MAX);
        Some(total.saturating_sub(self.started.elapsed()))
    }

    pub fn record(&self, usage: Usage, cost_usd: f64) {
        let mut spent = self.spent.lock().unwrap_or_else(|p| p.into_inner());
        spent.tokens = spent.tokens.saturating_add(usage.total());
        spent.cost_usd += cost_usd;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_before_the_call_that_crosses_a_budget() {
        let budget = Budget::new(BudgetSpec {
            max_llm_calls: Some(2),
            max_tokens: Some(100),
            ..BudgetSpec::default()
        });
        assert!(budget.try_start_call(10, 0.0).is_ok());
        budget.record(
            Usage {
                input_tokens: 10,
                output_tokens: 50,
            },
            0.0,
        );
        assert!(budget
            .try_start_call(50, 0.0)
            .unwrap_err()
            .contains("max_tokens"));
        assert!(budget.try_start_call(10, 0.0).is_ok());
        assert!(budget
            .try_start_call(1, 0.0)
            .unwrap_err()
            .contains("max_llm_calls 2"));
    }

    #[test]
    fn a_continuing_budget_counts_what_was_spent_before() {
        let limits = BudgetSpec {
            max_llm_calls: Some(3),
            max_wall_seconds: Some(10.0),
            ..BudgetSpec::default()
        };
        let usage = Usage {
            input_tokens: 5,
            output_tokens: 5,
        };
        let budget = Budget::continuing(
            limits.clone(),
            2,
            0,
            usage,
            0.0,
            std::time::Duration::from_secs(4),
        );
        assert!(budget.try_start_call(1, 0.0).is_ok());
        assert!(budget.try_start_call(1, 0.0).is_err(), "3 calls in all");
        let left = budget.wall_time_left().expect("a wall budget");
        assert!(left <= std::time::Duration::from_secs(6), "{left:?}");
        let late = Budget::continuing(limits, 0, 0, usage, 0.0, std::time::Duration::from_secs(11));
        assert!(late
            .try_start_call(1, 0.0)
            .unwrap_err()
            .contains("max_wall_seconds"));
    }
}
