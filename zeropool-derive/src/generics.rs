//! Which field types name a generic parameter, and the bounds the impl then
//! needs on them.

use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use std::collections::BTreeSet;
use syn::{parse_quote, Generics, Type, WhereClause};

/// The names of the struct's generic parameters: types, lifetimes, consts.
pub struct ParamsInScope {
    names: BTreeSet<String>,
}

impl ParamsInScope {
    pub fn new(generics: &Generics) -> Self {
        let types = generics.type_params().map(|p| p.ident.to_string());
        let consts = generics.const_params().map(|p| p.ident.to_string());
        let lifetimes = generics.lifetimes().map(|p| p.lifetime.ident.to_string());
        ParamsInScope {
            names: types.chain(consts).chain(lifetimes).collect(),
        }
    }

    /// Whether `ty` mentions a parameter. Scans the tokens, so it sees
    /// through every kind of type (paths, references, arrays, fn pointers,
    /// macros); a path segment that merely shares a parameter's name only
    /// adds a harmless bound.
    pub fn intersects(&self, ty: &Type) -> bool {
        !self.names.is_empty() && self.scan(ty.to_token_stream())
    }

    fn scan(&self, tokens: TokenStream) -> bool {
        tokens.into_iter().any(|tree| match tree {
            TokenTree::Ident(ident) => self.names.contains(&ident.to_string()),
            TokenTree::Group(group) => self.scan(group.stream()),
            TokenTree::Punct(_) | TokenTree::Literal(_) => false,
        })
    }
}

/// Bounds to add to the impl's where clause, one predicate per type, in the
/// order first seen.
#[derive(Default)]
pub struct InferredBounds {
    bounds: Vec<(String, TokenStream, Vec<TokenStream>)>,
}

impl InferredBounds {
    pub fn insert(&mut self, ty: &Type, bound: TokenStream) {
        let key = ty.to_token_stream().to_string();
        let at = match self.bounds.iter().position(|(k, _, _)| *k == key) {
            Some(at) => at,
            None => {
                self.bounds.push((key, ty.to_token_stream(), Vec::new()));
                self.bounds.len() - 1
            }
        };
        let list = &mut self.bounds[at].2;
        if !list.iter().any(|b| b.to_string() == bound.to_string()) {
            list.push(bound);
        }
    }

    pub fn augment_where_clause(&self, generics: &Generics) -> Option<WhereClause> {
        let mut generics = generics.clone();
        if !self.bounds.is_empty() {
            let where_clause = generics.make_where_clause();
            for (_, ty, bounds) in &self.bounds {
                where_clause
                    .predicates
                    .push(parse_quote!(#ty: #(#bounds)+*));
            }
        }
        generics.where_clause
    }
}
