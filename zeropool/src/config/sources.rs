//! Where settings come from: finding the file, reading it and the
//! environment through figment, and telling for each value its file line or
//! environment variable.
//!
//! ```text
//! file: .config_file(p) | $ZEROPOOL_CONFIG | ./zeropool.toml (if present)
//!   read once ─ toml_edit parse (syntax errors with lines; key spans)
//!   figment: Toml::file_exact(file) < ZEROPOOL_* variables (see `env`)
//!   merged tree ─ walk: [pool], [pools.<name>], unknown keys ─ per-value source
//! ```
//! figment merges and tags every value with its provider; the line of a file
//! value comes from the spans of our own parse, and the name of the variable
//! that set an env value from the environment provider.

use super::env::{EnvVars, ENV_CONFIG};
use super::schema::{PoolConfig, KEYS};
use super::validate::{self, Cx};
use crate::error::{Problem, Source};
use figment::providers::{Format, Toml};
use figment::value::{Dict, Value};
use figment::{Figment, Profile, Provider};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The file read from the working directory when no other is named.
pub(crate) const DEFAULT_FILE: &str = "zeropool.toml";
/// How file-text sources read in messages.
pub(crate) const STRING_PATH: &str = "<string>";

/// The file to read, if any.
#[derive(Debug, Clone)]
pub(crate) enum FileChoice {
    /// This file must exist; `named_by` says who named it.
    Required(PathBuf, Source),
    /// `$ZEROPOOL_CONFIG`, else `./zeropool.toml` when present.
    Discover,
    /// TOML text given in code (no environment is read).
    Text(String),
}

/// Every pool the sources describe, before merging with builder calls.
#[derive(Debug, Default)]
pub(crate) struct Gathered {
    /// The file read, if any.
    pub(crate) file: Option<PathBuf>,
    /// Parsed sections by path (`pool`, `pools.net`).
    pub(crate) sections: BTreeMap<String, Section>,
    /// Problems of the file, the environment and values that could not be
    /// parsed; range and cross-key problems are kept by each section.
    pub(crate) problems: Vec<Problem>,
}

/// One pool's table as read.
#[derive(Debug, Clone, Default)]
pub(crate) struct Section {
    /// The values read over the defaults, with their sources.
    pub(crate) config: PoolConfig,
    /// Keys whose values could not be parsed (already reported).
    pub(crate) unparsed: Vec<&'static str>,
    /// Range and cross-key problems of `config` on its own.
    pub(crate) checks: Vec<Problem>,
}

impl Gathered {
    /// The section at `path` (`pool`, `pools.net`), or defaults.
    pub(crate) fn section(&self, path: &str) -> Section {
        self.sections.get(path).cloned().unwrap_or_default()
    }

    /// Every problem, those of all sections included.
    pub(crate) fn all_problems(&self) -> Vec<Problem> {
        let mut all = self.problems.clone();
        for s in self.sections.values() {
            all.extend(s.checks.iter().cloned());
        }
        all
    }

    /// Every problem except the range and cross-key checks of `path`, which
    /// the caller redoes after merging its own values.
    pub(crate) fn problems_except(&self, path: &str) -> Vec<Problem> {
        let mut all = self.problems.clone();
        for (p, s) in &self.sections {
            if p != path {
                all.extend(s.checks.iter().cloned());
            }
        }
        all
    }
}

/// Reads and checks the file `choice` names, plus the `ZEROPOOL_*`
/// environment when `with_env` (never for text).
pub(crate) fn gather(choice: FileChoice, with_env: bool) -> Gathered {
    let mut out = Gathered::default();
    let file = match choice {
        FileChoice::Required(path, by) => Some((path, Some(by))),
        FileChoice::Discover => match std::env::var_os(ENV_CONFIG).filter(|v| !v.is_empty()) {
            Some(path) => Some((
                PathBuf::from(path),
                Some(Source::Env {
                    var: ENV_CONFIG.into(),
                }),
            )),
            None => Path::new(DEFAULT_FILE)
                .is_file()
                .then(|| (PathBuf::from(DEFAULT_FILE), None)),
        },
        FileChoice::Text(text) => {
            let doc = parse_toml(&mut out.problems, Path::new(STRING_PATH), &text);
            let mut figment = Figment::new();
            if doc.is_some() {
                figment = figment.merge(Toml::string(&text));
            }
            let no_env = EnvVars::default();
            walk(
                &mut out,
                &figment,
                doc.as_ref(),
                Path::new(STRING_PATH),
                &no_env,
            );
            return out;
        }
    };
    let mut figment = Figment::new();
    let mut doc = None;
    let mut path = PathBuf::new();
    if let Some((p, named_by)) = file {
        match std::fs::read_to_string(&p) {
            Ok(text) => {
                doc = parse_toml(&mut out.problems, &p, &text);
                if doc.is_some() {
                    figment = figment.merge(Toml::file_exact(&p));
                }
                out.file = Some(p.clone());
            }
            Err(e) => out.problems.push(Problem::new(
                "config_file",
                p.display().to_string(),
                named_by.unwrap_or(Source::Default),
                format!("an existing, readable TOML file ({e})"),
            )),
        }
        path = p;
    }
    let vars = if with_env {
        EnvVars::read(&mut out.problems)
    } else {
        EnvVars::default()
    };
    figment = figment.merge(vars.clone());
    walk(&mut out, &figment, doc.as_ref(), &path, &vars);
    out
}

/// Parses TOML text for its spans; a syntax error becomes a problem.
fn parse_toml(
    problems: &mut Vec<Problem>,
    path: &Path,
    text: &str,
) -> Option<toml_edit::ImDocument<String>> {
    match toml_edit::ImDocument::parse(text.to_string()) {
        Ok(doc) => Some(doc),
        Err(e) => {
            let line = e.span().map(|s| line_of(text, s.start));
            let message = e.message().trim().replace('\n', "; ");
            problems.push(Problem::new(
                "",
                "",
                Source::File {
                    path: path.to_path_buf(),
                    line,
                },
                format!("not valid TOML: {message}"),
            ));
            None
        }
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The line of the key at `path` in the parsed file.
fn line_in(doc: &toml_edit::ImDocument<String>, path: &[String]) -> Option<usize> {
    let mut item = doc.as_item();
    let mut span = None;
    for seg in path {
        let (key, next) = item.as_table_like()?.get_key_value(seg)?;
        span = key.span().or_else(|| next.span()).or(span);
        item = next;
    }
    span.map(|s| line_of(doc.raw(), s.start))
}

/// Walks the merged tree: top-level keys, then each pool's section.
fn walk(
    out: &mut Gathered,
    figment: &Figment,
    doc: Option<&toml_edit::ImDocument<String>>,
    file: &Path,
    vars: &EnvVars,
) {
    let leaf_source = |path: &[String], v: &Value| -> Source {
        let from_file = figment
            .get_metadata(v.tag())
            .is_some_and(|md| md.source.as_ref().is_some_and(|s| s.file_path().is_some()));
        match vars.name_of(path) {
            Some(var) if !from_file => Source::Env {
                var: var.to_string(),
            },
            _ => Source::File {
                path: file.to_path_buf(),
                line: doc.and_then(|d| line_in(d, path)),
            },
        }
    };
    // A table takes the source of a value an env variable set inside it, if
    // any (the most specific override), else its own.
    let locate = |path: &[String], v: &Value| -> Source {
        let mut found = None;
        leaves(path, v, &mut |p, leaf| {
            let s = leaf_source(p, leaf);
            if found.is_none() || matches!(s, Source::Env { .. }) {
                found = Some(s);
            }
        });
        found.unwrap_or_else(|| leaf_source(path, v))
    };
    let mut cx = Cx {
        problems: Vec::new(),
        locate: &locate,
    };
    let data = match Provider::data(figment) {
        Ok(data) => data,
        Err(e) => {
            cx.problems.push(Problem::new(
                "",
                "",
                Source::File {
                    path: file.to_path_buf(),
                    line: None,
                },
                e.to_string().trim().replace('\n', "; "),
            ));
            out.problems.append(&mut cx.problems);
            return;
        }
    };
    let mut root = Dict::new();
    for profile in [Profile::Default, Profile::Global] {
        if let Some(d) = data.get(&profile) {
            root.extend(d.clone());
        }
    }
    for (name, v) in &root {
        let path = vec![name.clone()];
        match name.as_str() {
            "pool" => section(out, &mut cx, path, v),
            "pools" => match v {
                Value::Dict(_, pools) => {
                    for (pool, sv) in pools {
                        section(out, &mut cx, vec![name.clone(), pool.clone()], sv);
                    }
                }
                _ => cx.bad(&path, v, "a table of named pools, e.g. [pools.net]"),
            },
            key if KEYS.contains(&key) => {
                let fixed = vec!["pool".to_string(), key.to_string()];
                let hint = match locate(&path, v) {
                    Source::Env { .. } => validate::env_var_name(&fixed),
                    _ => format!("`{key}` under [pool]"),
                };
                cx.bad(
                    &path,
                    v,
                    format!("not a top-level key: settings go in [pool] or [pools.<name>]; did you mean {hint}?"),
                );
            }
            _ => cx.unknown(&path, v, "the top-level keys are", &["pool", "pools"]),
        }
    }
    out.problems.append(&mut cx.problems);
}

/// Parses one pool's table into `out.sections`.
fn section(out: &mut Gathered, cx: &mut Cx<'_>, path: Vec<String>, v: &Value) {
    let Value::Dict(_, table) = v else {
        cx.bad(&path, v, "a table of pool settings");
        return;
    };
    let mut config = PoolConfig::default();
    let unparsed = validate::parse_section(cx, &path, table, &mut config);
    let prefix = path.join(".");
    let checks = validate::check(&config, Some(&prefix), &unparsed);
    out.sections.insert(
        prefix,
        Section {
            config,
            unparsed,
            checks,
        },
    );
}

/// Calls `f` on every leaf under `v` with its path (an empty table is a
/// leaf: it was set by someone, `ZEROPOOL_X__Y='{}'` for one).
fn leaves(path: &[String], v: &Value, f: &mut dyn FnMut(&[String], &Value)) {
    match v {
        Value::Dict(_, table) if !table.is_empty() => {
            for (k, sub) in table {
                let mut p = path.to_vec();
                p.push(k.clone());
                leaves(&p, sub, f);
            }
        }
        _ => f(path, v),
    }
}
