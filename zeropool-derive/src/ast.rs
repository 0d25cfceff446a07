//! The parsed model of a `#[derive(Poolable)]` input: a struct, its fields
//! and their `#[poolable(...)]` attributes, as plain Rust values.

use crate::attr::{self, ContainerAttrs, FieldAttrs};
use crate::generics::ParamsInScope;
use proc_macro2::Span;
use quote::quote;
use syn::{Data, DeriveInput, Error, Fields, Generics, Ident, Index, Member, Result, Type};

/// A struct that derives `Poolable`.
pub struct Struct<'a> {
    pub ident: &'a Ident,
    pub generics: &'a Generics,
    pub attrs: ContainerAttrs,
    pub fields: Vec<Field<'a>>,
}

/// One field of the struct.
pub struct Field<'a> {
    /// `self.name` or `self.0`.
    pub member: Member,
    pub ty: &'a Type,
    pub attrs: FieldAttrs,
    /// The type names a generic parameter of the struct, so the impl needs a
    /// bound for it.
    pub contains_generic: bool,
}

/// What `reset` does to a field.
pub enum Reset<'f> {
    /// `PoolField::reset_field`.
    Derived,
    /// A `fn(&mut FieldType)` the user named.
    With(&'f syn::ExprPath),
    /// Left as it is.
    Keep,
}

impl<'a> Struct<'a> {
    /// Builds the model, or every error found in the attributes at once.
    pub fn from_syn(node: &'a DeriveInput) -> Result<Self> {
        let data = match &node.data {
            Data::Struct(data) => data,
            Data::Enum(data) => {
                let (name, keyword) = (&node.ident, &data.enum_token);
                return Err(Error::new_spanned(
                    quote!(#keyword #name),
                    format!(
                        "`#[derive(Poolable)]` works on structs only, and `{name}` is an enum: \
                         the derive could not know which variant `with_capacity_hint` should build \
                         or what an empty value is. Implement `zeropool::Poolable` for `{name}` by \
                         hand (`with_capacity_hint`, `reset`, `capacity_bytes`), or pool a struct \
                         that holds the enum in a field marked `#[poolable(keep)]` or \
                         `#[poolable(reset = \"path\")]`"
                    ),
                ));
            }
            Data::Union(data) => {
                let (name, keyword) = (&node.ident, &data.union_token);
                return Err(Error::new_spanned(
                    quote!(#keyword #name),
                    format!(
                        "`#[derive(Poolable)]` works on structs only, and `{name}` is a union: \
                         the derive cannot know which member is live, so it cannot reset it. \
                         Implement `zeropool::Poolable` for `{name}` by hand (`with_capacity_hint`, \
                         `reset`, `capacity_bytes`)"
                    ),
                ));
            }
        };

        let mut errors = Errors::default();
        let attrs = errors
            .take(attr::container(&node.attrs))
            .unwrap_or_default();
        let scope = ParamsInScope::new(&node.generics);
        let fields = match &data.fields {
            Fields::Named(fields) => &fields.named,
            Fields::Unnamed(fields) => &fields.unnamed,
            Fields::Unit => return errors.finish(empty_struct(node, attrs)),
        };
        let fields = fields
            .iter()
            .enumerate()
            .filter_map(|(i, field)| {
                let attrs = errors.take(attr::field(&field.attrs))?;
                Some(Field {
                    member: match &field.ident {
                        Some(name) => Member::Named(name.clone()),
                        None => Member::Unnamed(Index {
                            index: i as u32,
                            span: Span::call_site(),
                        }),
                    },
                    ty: &field.ty,
                    attrs,
                    contains_generic: scope.intersects(&field.ty),
                })
            })
            .collect();
        errors.finish(Struct {
            ident: &node.ident,
            generics: &node.generics,
            attrs,
            fields,
        })
    }
}

fn empty_struct<'a>(node: &'a DeriveInput, attrs: ContainerAttrs) -> Struct<'a> {
    Struct {
        ident: &node.ident,
        generics: &node.generics,
        attrs,
        fields: Vec::new(),
    }
}

impl Field<'_> {
    pub fn reset(&self) -> Reset<'_> {
        match (&self.attrs.keep, &self.attrs.reset) {
            (Some(_), _) => Reset::Keep,
            (None, Some(path)) => Reset::With(path),
            (None, None) => Reset::Derived,
        }
    }

    /// The field's name for messages: `payload` or `0`.
    pub fn name(&self) -> String {
        match &self.member {
            Member::Named(ident) => ident.to_string(),
            Member::Unnamed(index) => index.index.to_string(),
        }
    }
}

/// Collects errors so that one pass reports all of them.
#[derive(Default)]
pub struct Errors(Option<Error>);

impl Errors {
    pub fn push(&mut self, error: Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub fn take<T>(&mut self, result: Result<T>) -> Option<T> {
        result.map_err(|e| self.push(e)).ok()
    }

    pub fn finish<T>(self, value: T) -> Result<T> {
        match self.0 {
            Some(error) => Err(error),
            None => Ok(value),
        }
    }
}
