//! Parsing of `#[poolable(...)]` on the struct and on its fields.
//!
//! On the struct: `new = "path"` (a `fn(usize) -> Self`),
//! `reset = "path"` (a `fn(&mut Self)`) and `config = "name"` (the
//! `[pools.name]` table its pools read). On a field: `capacity`, `keep` and
//! `reset = "path"` (a `fn(&mut FieldType)`). A path may also be written
//! without quotes. Anything else is an error on the offending key that lists
//! what is accepted there.

use crate::ast::Errors;
use syn::meta::ParseNestedMeta;
use syn::{token, Attribute, Error, ExprPath, Ident, LitStr, Meta, Result, Token};

/// `#[poolable(...)]` on the struct.
#[derive(Default)]
pub struct ContainerAttrs {
    /// `new = "path"`: builds the whole value from the capacity hint.
    pub new: Option<ExprPath>,
    /// `reset = "path"`: runs after the fields are reset.
    pub reset: Option<ExprPath>,
    /// `config = "name"`: the `[pools.name]` table this type's pools read.
    pub config: Option<LitStr>,
}

/// `#[poolable(...)]` on a field.
#[derive(Default)]
pub struct FieldAttrs {
    /// `capacity`: the field receives the capacity hint.
    pub capacity: Option<Ident>,
    /// `keep`: the field survives `reset` unchanged.
    pub keep: Option<Ident>,
    /// `reset = "path"`: the field is reset by this function.
    pub reset: Option<ExprPath>,
}

/// Where an attribute sits, which decides the keys it accepts.
#[derive(Clone, Copy)]
enum Position {
    Container,
    Field,
}

impl Position {
    /// The keys accepted here, as the user would write them.
    fn accepted(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Position::Container => &[
                ("new", "new = \"path\""),
                ("reset", "reset = \"path\""),
                ("config", "config = \"name\""),
            ],
            Position::Field => &[
                ("capacity", "capacity"),
                ("keep", "keep"),
                ("reset", "reset = \"path\""),
            ],
        }
    }

    /// "a field accepts `capacity`, `keep` or `reset = "path"`".
    fn describe_accepted(self) -> String {
        let forms: Vec<String> = self
            .accepted()
            .iter()
            .map(|(_, form)| format!("`{form}`"))
            .collect();
        let (last, rest) = forms.split_last().expect("keys are listed");
        let place = match self {
            Position::Container => "the struct",
            Position::Field => "a field",
        };
        format!("{place} accepts {} or {last}", rest.join(", "))
    }

    /// Words people reach for, from other derives, and the key meant.
    fn synonyms(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Position::Container => &[
                ("constructor", "new"),
                ("ctor", "new"),
                ("init", "new"),
                ("with_capacity", "new"),
                ("default", "new"),
                ("clear", "reset"),
                ("reset_with", "reset"),
                ("with", "reset"),
            ],
            Position::Field => &[
                ("skip", "keep"),
                ("ignore", "keep"),
                ("preserve", "keep"),
                ("persist", "keep"),
                ("cap", "capacity"),
                ("size", "capacity"),
                ("capacity_hint", "capacity"),
                ("clear", "reset"),
                ("reset_with", "reset"),
                ("with", "reset"),
            ],
        }
    }

    /// The accepted key `name` most likely stands for.
    fn suggest(self, name: &str) -> Option<&'static str> {
        let accepted = self.accepted();
        let form_of = |key: &str| {
            accepted
                .iter()
                .find(|(known, _)| *known == key)
                .map(|(_, form)| *form)
        };
        if let Some((_, key)) = self.synonyms().iter().find(|(word, _)| *word == name) {
            return form_of(key);
        }
        accepted
            .iter()
            .map(|(known, form)| (edit_distance(name, known), *form))
            .filter(|(distance, _)| *distance <= 2)
            .min_by_key(|(distance, _)| *distance)
            .map(|(_, form)| form)
    }
}

/// Parses the struct's `#[poolable(...)]` attributes.
pub fn container(attrs: &[Attribute]) -> Result<ContainerAttrs> {
    let mut out = ContainerAttrs::default();
    let mut errors = Errors::default();
    for attr in poolable_attrs(attrs, &mut errors) {
        let parsed = attr.parse_nested_meta(|meta| {
            let key = key_of(&meta, Position::Container)?;
            match key.to_string().as_str() {
                "new" => {
                    let value = path_value(&meta, &key, "fn(usize) -> Self")?;
                    set_once(&mut out.new, value, &key)
                }
                "reset" => {
                    let value = path_value(&meta, &key, "fn(&mut Self)")?;
                    set_once(&mut out.reset, value, &key)
                }
                "config" => {
                    let value = section_value(&meta, &key)?;
                    set_once(&mut out.config, value, &key)
                }
                "capacity" => Err(Error::new(
                    key.span(),
                    "`capacity` goes on a field, not on the struct: put `#[poolable(capacity)]` \
                     on the field that receives the capacity hint (a `Vec`, `String` or other \
                     `Poolable` type)",
                )),
                "keep" => Err(Error::new(
                    key.span(),
                    "`keep` goes on a field, not on the struct: put `#[poolable(keep)]` on each \
                     field that must survive `reset` unchanged",
                )),
                _ => Err(unknown_key(&key, Position::Container)),
            }
        });
        errors.take(parsed);
    }
    errors.finish(out)
}

/// Parses one field's `#[poolable(...)]` attributes.
pub fn field(attrs: &[Attribute]) -> Result<FieldAttrs> {
    let mut out = FieldAttrs::default();
    let mut errors = Errors::default();
    for attr in poolable_attrs(attrs, &mut errors) {
        let parsed = attr.parse_nested_meta(|meta| {
            let key = key_of(&meta, Position::Field)?;
            match key.to_string().as_str() {
                "capacity" => {
                    no_value(&meta, &key)?;
                    set_once(&mut out.capacity, key.clone(), &key)
                }
                "keep" => {
                    no_value(&meta, &key)?;
                    set_once(&mut out.keep, key.clone(), &key)
                }
                "reset" => {
                    let value = path_value(&meta, &key, "fn(&mut FieldType)")?;
                    set_once(&mut out.reset, value, &key)
                }
                "new" => Err(Error::new(
                    key.span(),
                    "`new` goes on the struct, not on a field: `#[poolable(new = \"path\")]` \
                     above the struct names a `fn(usize) -> Self` that builds the whole value",
                )),
                _ => Err(unknown_key(&key, Position::Field)),
            }
        });
        errors.take(parsed);
    }
    errors.finish(out)
}

/// The `#[poolable(...)]` attributes among `attrs`; a `#[poolable]` or
/// `#[poolable = ...]` is reported and skipped.
fn poolable_attrs<'a>(
    attrs: &'a [Attribute],
    errors: &mut Errors,
) -> impl Iterator<Item = &'a Attribute> {
    let mut found = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("poolable")) {
        match &attr.meta {
            Meta::List(_) => found.push(attr),
            Meta::Path(_) | Meta::NameValue(_) => errors.push(Error::new_spanned(
                attr,
                "write the keys in parentheses, like `#[poolable(keep)]` or \
                 `#[poolable(reset = \"path\")]`",
            )),
        }
    }
    found.into_iter()
}

/// The key of one `key` or `key = value` entry, as a single identifier.
fn key_of(meta: &ParseNestedMeta, position: Position) -> Result<Ident> {
    match meta.path.get_ident() {
        Some(ident) => Ok(ident.clone()),
        None => Err(Error::new_spanned(
            &meta.path,
            format!(
                "expected a single key in `#[poolable(...)]`: {}",
                position.describe_accepted()
            ),
        )),
    }
}

fn unknown_key(key: &Ident, position: Position) -> Error {
    let accepted = position.describe_accepted();
    let message = match position.suggest(&key.to_string()) {
        Some(form) => {
            format!(
                "unknown key `{key}` in `#[poolable(...)]`: did you mean `{form}`? ({accepted})"
            )
        }
        None => format!("unknown key `{key}` in `#[poolable(...)]`: {accepted}"),
    };
    Error::new(key.span(), message)
}

/// Rejects `key = ...` and `key(...)` for a key that takes no value.
fn no_value(meta: &ParseNestedMeta, key: &Ident) -> Result<()> {
    if meta.input.peek(Token![=]) || meta.input.peek(token::Paren) {
        return Err(Error::new(
            key.span(),
            format!("`{key}` takes no value: write `#[poolable({key})]`"),
        ));
    }
    Ok(())
}

/// Parses `= "path"` (or `= path`) after `key`; the path's tokens carry the
/// span of what the user wrote.
fn path_value(meta: &ParseNestedMeta, key: &Ident, signature: &str) -> Result<ExprPath> {
    let expected = || {
        format!("`{key}` takes the path of a `{signature}`: write `{key} = \"path::to::function\"`")
    };
    if !meta.input.peek(Token![=]) {
        return Err(Error::new(key.span(), expected()));
    }
    let value = meta.value()?;
    if value.peek(LitStr) {
        let lit: LitStr = value.parse()?;
        // The parsed tokens carry the literal's span, so a path that does not
        // resolve is reported on the string the user wrote.
        lit.parse::<ExprPath>()
            .map_err(|_| Error::new(lit.span(), expected()))
    } else {
        value
            .parse::<ExprPath>()
            .map_err(|e| Error::new(e.span(), expected()))
    }
}

/// Parses `= "name"` after `config`: a config table name (letters, digits,
/// `_` and `-`), as in `[pools.name]`.
fn section_value(meta: &ParseNestedMeta, key: &Ident) -> Result<LitStr> {
    let expected = "`config` takes the name of a config table: write `config = \"frames\"` to \
                    read `[pools.frames]`";
    if !meta.input.peek(Token![=]) {
        return Err(Error::new(key.span(), expected));
    }
    let lit: LitStr = meta
        .value()?
        .parse()
        .map_err(|e| Error::new(e.span(), expected))?;
    let name = lit.value();
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid {
        return Err(Error::new(
            lit.span(),
            format!(
                "`{name}` is not a config table name: use letters, digits, `_` and `-` \
                 (it becomes `[pools.<name>]` and `ZEROPOOL_POOLS__<NAME>__*`)"
            ),
        ));
    }
    Ok(lit)
}

fn set_once<T>(slot: &mut Option<T>, value: T, key: &Ident) -> Result<()> {
    if slot.is_some() {
        return Err(Error::new(
            key.span(),
            format!("`{key}` is given twice; write it once"),
        ));
    }
    *slot = Some(value);
    Ok(())
}

/// Levenshtein distance, for "did you mean" suggestions.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}
