//! The `ZEROPOOL_*` environment as a figment provider that remembers which
//! variable set each key.
//!
//! `ZEROPOOL_POOLS__NET__SHARDS=8` sets `pools.net.shards`: the prefix is
//! matched without regard to case, `__` separates levels, keys are
//! lowercased. A value is read as a TOML value when it is one (`8`, `true`,
//! `[0, 1]`, `"quoted"`), else as a string (`2 GiB`, `auto`).
//!
//! figment's own `Env` provider would do the merging, but it reports only the
//! prefix as the source, and its value parser brings in a terminal-colour
//! crate whose blanket trait shows up in the compiler's "similar method"
//! hints of every crate that depends on this one.

use crate::error::{Problem, Source};
use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider};

/// The prefix of every environment variable the pool reads.
pub(crate) const ENV_PREFIX: &str = "ZEROPOOL_";
/// The variable naming the config file.
pub(crate) const ENV_CONFIG: &str = "ZEROPOOL_CONFIG";

/// The `ZEROPOOL_*` variables, read once.
#[derive(Debug, Clone, Default)]
pub(crate) struct EnvVars {
    /// (key path, variable name, value), in name order.
    vars: Vec<(Vec<String>, String, String)>,
}

impl EnvVars {
    /// Reads the environment; names with an empty level are reported.
    pub(crate) fn read(problems: &mut Vec<Problem>) -> Self {
        let mut vars = Vec::new();
        for (name, value) in std::env::vars_os() {
            let (Some(name), Some(value)) = (name.to_str(), value.to_str()) else {
                continue;
            };
            let name = name.trim();
            if name.len() < ENV_PREFIX.len()
                || !name[..ENV_PREFIX.len()].eq_ignore_ascii_case(ENV_PREFIX)
                || name.eq_ignore_ascii_case(ENV_CONFIG)
            {
                continue;
            }
            let path: Vec<String> = name[ENV_PREFIX.len()..]
                .split("__")
                .map(str::to_ascii_lowercase)
                .collect();
            if path.iter().any(String::is_empty) {
                problems.push(Problem::new(
                    name,
                    format!("{value:?}"),
                    Source::Env { var: name.into() },
                    "not a config variable: write levels joined by `__`, e.g. ZEROPOOL_POOL__SHARDS",
                ));
                continue;
            }
            vars.push((path, name.to_string(), value.to_string()));
        }
        vars.sort_by(|a, b| a.1.cmp(&b.1));
        Self { vars }
    }

    /// The variable that set the key at `path`: its own, or that of a
    /// table holding it when one variable set a whole table
    /// (`ZEROPOOL_POOL__SIZE_CLASSES='{ min = 1, max = 2 }'`). Of several,
    /// the last in name order, as the last one inserted wins.
    pub(crate) fn name_of(&self, path: &[String]) -> Option<&str> {
        self.vars
            .iter()
            .rfind(|(p, _, _)| path.starts_with(p))
            .map(|(_, n, _)| n.as_str())
    }
}

impl Provider for EnvVars {
    fn metadata(&self) -> Metadata {
        Metadata::named("`ZEROPOOL_` environment variables")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut root = Dict::new();
        for (path, _, value) in &self.vars {
            insert(&mut root, path, parse_value(value));
        }
        Ok(Profile::Default.collect(root))
    }
}

/// Puts `value` at `path`, making tables on the way (a later variable wins
/// where two disagree on what a level is).
fn insert(dict: &mut Dict, path: &[String], value: Value) {
    let (first, rest) = path.split_first().expect("a key path is never empty");
    if rest.is_empty() {
        dict.insert(first.clone(), value);
        return;
    }
    let entry = dict
        .entry(first.clone())
        .or_insert_with(|| Value::from(Dict::new()));
    if !matches!(entry, Value::Dict(..)) {
        *entry = Value::from(Dict::new());
    }
    if let Value::Dict(_, sub) = entry {
        insert(sub, rest, value);
    }
}

/// A variable's value: a TOML value if it parses as one, else the text.
pub(crate) fn parse_value(text: &str) -> Value {
    match text.trim().parse::<toml_edit::Value>() {
        Ok(v) => from_toml(&v),
        Err(_) => Value::from(text.trim()),
    }
}

fn from_toml(v: &toml_edit::Value) -> Value {
    use toml_edit::Value as T;
    match v {
        T::String(s) => Value::from(s.value().as_str()),
        T::Integer(i) => Value::from(*i.value()),
        T::Float(f) => Value::from(*f.value()),
        T::Boolean(b) => Value::from(*b.value()),
        T::Datetime(d) => Value::from(d.value().to_string()),
        T::Array(items) => Value::from(items.iter().map(from_toml).collect::<Vec<_>>()),
        T::InlineTable(t) => {
            let dict: Dict = t
                .iter()
                .map(|(k, v)| (k.to_string(), from_toml(v)))
                .collect();
            Value::from(dict)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_as_toml_or_text() {
        let cases = [
            ("8", "Num"),
            ("2 GiB", "String(\"2 GiB\")"),
            ("auto", "String(\"auto\")"),
            ("[0, 1]", "Array"),
            ("true", "Bool(true)"),
            ("\"quoted\"", "String(\"quoted\")"),
            ("-5", "Num"),
            ("{ min = \"1 KiB\", max = 4096 }", "Dict"),
        ];
        for (text, kind) in cases {
            let v = format!("{:?}", parse_value(text));
            assert!(
                v.starts_with(kind.split('(').next().unwrap()),
                "{text}: {v}"
            );
            if kind.contains('(') {
                assert!(
                    v.ends_with(&format!("{kind})")) || v.contains(kind),
                    "{text}: {v}"
                );
            }
        }
    }

    #[test]
    fn a_key_is_blamed_on_the_variable_that_set_it_or_its_table() {
        let path = |s: &str| s.split('.').map(String::from).collect::<Vec<_>>();
        let var = |p: &str, n: &str| (path(p), n.to_string(), String::new());
        let vars = EnvVars {
            vars: vec![
                var("pool.shards", "ZEROPOOL_POOL__SHARDS"),
                var("pool.size_classes", "ZEROPOOL_POOL__SIZE_CLASSES"),
                var("pool.shards", "zeropool_pool__shards"),
            ],
        };
        let name = |p: &str| vars.name_of(&path(p));
        assert_eq!(
            name("pool.size_classes.min"),
            Some("ZEROPOOL_POOL__SIZE_CLASSES")
        );
        assert_eq!(
            name("pool.shards"),
            Some("zeropool_pool__shards"),
            "the last one wins"
        );
        assert_eq!(name("pool.stats"), None);
        assert_eq!(name("pool"), None);
    }

    #[test]
    fn nesting_builds_tables() {
        let mut root = Dict::new();
        let path = |s: &str| s.split('.').map(String::from).collect::<Vec<_>>();
        insert(&mut root, &path("pools.net.shards"), Value::from(8u8));
        insert(&mut root, &path("pools.net.stats"), Value::from(false));
        let net = root["pools"].as_dict().unwrap()["net"].as_dict().unwrap();
        assert_eq!(net.len(), 2);
    }
}
