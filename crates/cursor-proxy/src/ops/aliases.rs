//! Model aliases (`alias → model`, e.g. the Claude names Claude Code sends) and fallback lists
//! (models tried in order when Cursor says a model is unavailable or retired).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Longest alias chain followed (`a → b → c`); longer chains are refused when loaded.
const MAX_HOPS: usize = 4;
/// Fallbacks tried per request at most.
pub const MAX_FALLBACKS: usize = 4;

/// Aliases and fallbacks from the config file's `[aliases]` and `[fallbacks]` tables.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aliases {
    /// `alias → model`.
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
    /// `model → [fallback, …]`.
    #[serde(default)]
    pub fallbacks: BTreeMap<String, Vec<String>>,
}

impl Aliases {
    /// The model `requested` stands for (itself when it is no alias).
    pub fn resolve<'a>(&'a self, requested: &'a str) -> &'a str {
        let mut model = requested;
        for _ in 0..MAX_HOPS {
            match self.aliases.get(model) {
                Some(next) => model = next,
                None => break,
            }
        }
        model
    }

    /// The models to try, in order, when `model` is unavailable.
    pub fn fallbacks(&self, model: &str) -> &[String] {
        self.fallbacks.get(model).map_or(&[], |v| {
            let n = v.len().min(MAX_FALLBACKS);
            &v[..n]
        })
    }

    /// Why the tables are unusable: empty names, or a chain that loops or runs too long.
    pub fn validate(&self) -> Result<(), String> {
        for (alias, target) in &self.aliases {
            if alias.trim().is_empty() || target.trim().is_empty() {
                return Err("aliases: empty model name".into());
            }
            let mut model = target.as_str();
            let mut hops = 1;
            while let Some(next) = self.aliases.get(model) {
                hops += 1;
                if hops > MAX_HOPS || next == alias {
                    return Err(format!(
                        "aliases: {alias:?} loops or chains more than {MAX_HOPS} times"
                    ));
                }
                model = next;
            }
        }
        for (model, list) in &self.fallbacks {
            if list.iter().any(|m| m.trim().is_empty() || m == model) {
                return Err(format!(
                    "fallbacks of {model:?}: empty name or the model itself"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_and_validates() {
        let mut a = Aliases::default();
        a.aliases
            .insert("claude-sonnet-4-5".into(), "sonnet".into());
        a.aliases
            .insert("sonnet".into(), "claude-4.5-sonnet".into());
        a.fallbacks
            .insert("gpt-5".into(), vec!["composer-2.5".into()]);
        assert!(a.validate().is_ok());
        assert_eq!(a.resolve("claude-sonnet-4-5"), "claude-4.5-sonnet");
        assert_eq!(a.resolve("other"), "other");
        assert_eq!(a.fallbacks("gpt-5"), ["composer-2.5".to_owned()]);
        a.aliases
            .insert("claude-4.5-sonnet".into(), "sonnet".into());
        assert!(a.validate().unwrap_err().contains("loops"));
    }
}
