//! The price table: exact USD prices per token, by provider and model.
//!
//! A table ships in the crate (`data/prices.json`, USD per million tokens); users merge
//! their own over it ([`PriceTable::merge`], [`PriceTable::from_file`]), entry by
//! entry. Costs are exact [`Decimal`]s. A model that is not in the table, or usage of a
//! token class the table has no price for (e.g. cache writes), gives no cost at all:
//! never a guess.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use prompt_core::{Error, Pricing, Usage};
use rust_decimal::Decimal;
use serde_json::Value;

/// The price table shipped with the crate.
pub const BUILTIN_PRICES: &str = include_str!("../data/prices.json");

/// Prices of one model, in USD per token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelPrice {
    /// Uncached input.
    pub input: Decimal,
    /// Output (reasoning included).
    pub output: Decimal,
    /// Input read from the vendor's cache; `None` if unknown.
    pub cache_read: Option<Decimal>,
    /// Input written to the vendor's cache; `None` if unknown.
    pub cache_write: Option<Decimal>,
}

impl ModelPrice {
    /// Prices given in USD per million tokens.
    pub fn per_million(
        input: Decimal,
        output: Decimal,
        cache_read: Option<Decimal>,
        cache_write: Option<Decimal>,
    ) -> Self {
        let m = Decimal::from(1_000_000u32);
        ModelPrice {
            input: input / m,
            output: output / m,
            cache_read: cache_read.map(|p| p / m),
            cache_write: cache_write.map(|p| p / m),
        }
    }

    /// The cost of `usage`: uncached input, cache reads, cache writes and output, each
    /// at its price. `None` if tokens of a class without a price were used, or on
    /// overflow.
    pub fn cost(&self, usage: &Usage) -> Option<Decimal> {
        let cached = usage
            .cache_read_tokens
            .checked_add(usage.cache_write_tokens)?;
        let uncached = usage.input_tokens.saturating_sub(cached);
        let mut total = Decimal::from(uncached).checked_mul(self.input)?;
        total = total.checked_add(Decimal::from(usage.output_tokens).checked_mul(self.output)?)?;
        for (tokens, price) in [
            (usage.cache_read_tokens, self.cache_read),
            (usage.cache_write_tokens, self.cache_write),
        ] {
            if tokens > 0 {
                total = total.checked_add(Decimal::from(tokens).checked_mul(price?)?)?;
            }
        }
        Some(total.normalize())
    }
}

/// Prices by provider, then model name (exact names: a dated snapshot is its own
/// entry).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceTable {
    prices: BTreeMap<String, BTreeMap<String, ModelPrice>>,
}

fn decimal(field: &str, v: &Value) -> Result<Decimal, Error> {
    let text = match v {
        Value::String(s) => s.clone(),
        // The JSON text of a number, so `0.15` is exactly 0.15.
        Value::Number(n) => n.to_string(),
        _ => return Err(Error::invalid(field, "must be a decimal number or string")),
    };
    let d = Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map_err(|e| Error::invalid(field, format!("'{text}' is not a decimal: {e}")))?;
    if d.is_sign_negative() {
        return Err(Error::invalid(field, "must not be negative"));
    }
    Ok(d)
}

impl PriceTable {
    /// An empty table: no model has a price.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The table shipped with the crate.
    pub fn builtin() -> Self {
        match Self::from_json(BUILTIN_PRICES) {
            Ok(t) => t,
            Err(e) => {
                // Guarded by a test; an empty table gives no costs rather than wrong ones.
                tracing::error!(error = %e, "the built-in price table is invalid");
                Self::empty()
            }
        }
    }

    /// Parse a table: `{"providers": {"<provider>": {"<model>": {"input": "2.50",
    /// "output": "10.00", "cache_read": "1.25", "cache_write": "3.75"}}}}` in USD per
    /// million tokens (strings or numbers; `cache_*` optional). The error names the
    /// bad field.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        let json: Value = serde_json::from_str(text)
            .map_err(|e| Error::invalid("prices", format!("not JSON: {e}")))?;
        if let Some(unit) = json.get("unit").and_then(Value::as_str)
            && unit != "usd_per_million_tokens"
        {
            return Err(Error::invalid(
                "unit",
                "only usd_per_million_tokens is supported",
            ));
        }
        let providers = json
            .get("providers")
            .and_then(Value::as_object)
            .ok_or_else(|| Error::invalid("providers", "must be an object of providers"))?;
        let mut table = PriceTable::default();
        for (provider, models) in providers {
            let models = models.as_object().ok_or_else(|| {
                Error::invalid(
                    format!("providers.{provider}"),
                    "must be an object of models",
                )
            })?;
            for (model, p) in models {
                let at = format!("providers.{provider}.{model}");
                let get = |k: &str| p.get(k).filter(|v| !v.is_null());
                let need = |k: &str| {
                    get(k)
                        .ok_or_else(|| Error::invalid(format!("{at}.{k}"), "is required"))
                        .and_then(|v| decimal(&format!("{at}.{k}"), v))
                };
                let opt = |k: &str| get(k).map(|v| decimal(&format!("{at}.{k}"), v)).transpose();
                let price = ModelPrice::per_million(
                    need("input")?,
                    need("output")?,
                    opt("cache_read")?,
                    opt("cache_write")?,
                );
                table.set(provider, model, price);
            }
        }
        Ok(table)
    }

    /// Read a table from a JSON file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::invalid("prices", format!("cannot read {}: {e}", path.display()))
        })?;
        Self::from_json(&text)
    }

    /// Set one model's price.
    pub fn set(&mut self, provider: &str, model: &str, price: ModelPrice) {
        self.prices
            .entry(provider.to_owned())
            .or_default()
            .insert(model.to_owned(), price);
    }

    /// Merge `other` over this table: its entries replace ours, model by model.
    pub fn merge(mut self, other: PriceTable) -> Self {
        for (provider, models) in other.prices {
            self.prices.entry(provider).or_default().extend(models);
        }
        self
    }

    /// One model's price.
    pub fn get(&self, provider: &str, model: &str) -> Option<&ModelPrice> {
        self.prices.get(provider)?.get(model)
    }

    /// How many models have prices.
    pub fn len(&self) -> usize {
        self.prices.values().map(BTreeMap::len).sum()
    }

    /// Whether no model has a price.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Pricing for PriceTable {
    fn cost(&self, provider: &str, model: &str, usage: &Usage) -> Option<Decimal> {
        self.get(provider, model)?.cost(usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn builtin_table_parses_and_has_every_vendor() {
        let t = PriceTable::from_json(BUILTIN_PRICES).unwrap();
        for (p, m) in [
            ("openai", "gpt-4o-mini"),
            ("anthropic", "claude-sonnet-4-5"),
            ("gemini", "gemini-2.5-flash"),
            ("mock", "mock/echo"),
        ] {
            assert!(t.get(p, m).is_some(), "{p}/{m}");
        }
        assert!(t.len() >= 20);
        assert_eq!(PriceTable::builtin(), t);
    }

    #[test]
    fn cost_is_exact() {
        let t = PriceTable::builtin();
        // gpt-4o-mini: $0.15 / $0.60 per million, cached $0.075.
        let usage = Usage {
            input_tokens: 1000,
            output_tokens: 500,
            cache_read_tokens: 200,
            ..Default::default()
        };
        // 800 * 0.15e-6 + 200 * 0.075e-6 + 500 * 0.6e-6 = 0.00012 + 0.000015 + 0.0003
        assert_eq!(t.cost("openai", "gpt-4o-mini", &usage), Some(d("0.000435")));
        // Anthropic with a cache write: 100 uncached * 3e-6 + 1000 * 3.75e-6 + 50 * 15e-6
        let usage = Usage {
            input_tokens: 1100,
            output_tokens: 50,
            cache_write_tokens: 1000,
            ..Default::default()
        };
        assert_eq!(
            t.cost("anthropic", "claude-sonnet-4-5", &usage),
            Some(d("0.0048"))
        );
        assert_eq!(t.cost("mock", "mock/echo", &usage), Some(Decimal::ZERO));
    }

    #[test]
    fn unknown_is_none_never_a_guess() {
        let t = PriceTable::builtin();
        let usage = Usage {
            input_tokens: 10,
            output_tokens: 10,
            ..Default::default()
        };
        assert_eq!(t.cost("openai", "gpt-4o-mini-2099-01-01", &usage), None);
        assert_eq!(t.cost("groq", "gpt-4o-mini", &usage), None);
        // OpenAI has no cache-write price: usage with cache writes has no cost.
        let usage = Usage {
            input_tokens: 10,
            cache_write_tokens: 5,
            ..Default::default()
        };
        assert_eq!(t.cost("openai", "gpt-4o", &usage), None);
    }

    #[test]
    fn user_prices_override_and_extend() {
        let user = PriceTable::from_json(
            r#"{"providers": {"openai": {"gpt-4o": {"input": 1, "output": "2"}},
                              "groq": {"llama-3.3-70b-versatile": {"input": "0.59", "output": "0.79"}}}}"#,
        )
        .unwrap();
        let t = PriceTable::builtin().merge(user);
        let usage = Usage {
            input_tokens: 1_000_000,
            output_tokens: 1_000_000,
            ..Default::default()
        };
        assert_eq!(t.cost("openai", "gpt-4o", &usage), Some(d("3")));
        assert_eq!(
            t.cost("groq", "llama-3.3-70b-versatile", &usage),
            Some(d("1.38"))
        );
        assert_eq!(t.cost("openai", "gpt-4o-mini", &usage), Some(d("0.75")));
    }

    #[test]
    fn bad_tables_name_the_field() {
        let e =
            PriceTable::from_json(r#"{"providers": {"x": {"m": {"input": "1"}}}}"#).unwrap_err();
        assert!(
            matches!(e, Error::InvalidInput { ref field, .. } if field == "providers.x.m.output"),
            "{e}"
        );
        let e =
            PriceTable::from_json(r#"{"providers": {"x": {"m": {"input": "-1", "output": 1}}}}"#)
                .unwrap_err();
        assert!(
            matches!(e, Error::InvalidInput { ref field, .. } if field == "providers.x.m.input"),
            "{e}"
        );
        assert!(PriceTable::from_json("nope").is_err());
    }
}
