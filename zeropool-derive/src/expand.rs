//! Code generation from the validated model.
//!
//! Each use of a field's type goes through a trait written as
//! `<FieldType as Trait>` with the span of the user's type, so an unsatisfied
//! bound is reported on that field's type with the trait's
//! `#[diagnostic::on_unimplemented]` message; each call of a user's function
//! carries the span of the path the user wrote.

use crate::ast::{Field, Reset, Struct};
use crate::generics::InferredBounds;
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{DeriveInput, Error, ExprPath, Result};

/// The impl for `input`, or its errors next to a placeholder impl (which
/// keeps the errors from being buried under "`Poolable` is not implemented"
/// at every use of the type).
pub fn derive(input: &DeriveInput) -> TokenStream {
    match try_expand(input) {
        Ok(expanded) => expanded,
        Err(error) => fallback(input, &error),
    }
}

fn try_expand(input: &DeriveInput) -> Result<TokenStream> {
    let input = Struct::from_syn(input)?;
    input.validate()?;
    Ok(impl_struct(&input))
}

fn impl_struct(input: &Struct) -> TokenStream {
    let ident = input.ident;
    let (impl_generics, ty_generics, _) = input.generics.split_for_impl();
    let where_clause = inferred_bounds(input).augment_where_clause(input.generics);
    let build = build_body(input);
    let reset = reset_body(input);
    let capacity = capacity_body(input);
    let class_bytes = class_bytes_fn(input);
    let config_section = input.attrs.config.as_ref().map(|name| {
        quote! {
            fn config_section() -> ::core::option::Option<&'static str> {
                ::core::option::Option::Some(#name)
            }
        }
    });
    let wipe = wipe_body(input);
    quote! {
        #[automatically_derived]
        impl #impl_generics ::zeropool::Poolable for #ident #ty_generics #where_clause {
            #[inline]
            fn with_capacity_hint(bytes: usize) -> Self {
                #build
            }

            #[inline]
            fn reset(&mut self) {
                #reset
            }

            #[inline]
            fn capacity_bytes(&self) -> usize {
                #capacity
            }

            #class_bytes

            #config_section

            #wipe
        }
    }
}

/// `class_bytes`: the capacity field's bytes, so the size class follows the
/// buffer the hint sized while the budget counts every field. Without a
/// capacity field (a custom `new`) the default (all bytes) stands.
fn class_bytes_fn(input: &Struct) -> Option<TokenStream> {
    let field = input.fields.iter().find(|f| f.attrs.capacity.is_some())?;
    let (member, ty) = (&field.member, field.ty);
    Some(quote_spanned! {ty.span()=>
        #[inline]
        fn class_bytes(&self) -> usize {
            <#ty as ::zeropool::__private::CapacityField>::capacity_bytes_of(&self.#member)
        }
    })
}

/// Bounds for the fields whose types name a generic parameter: what each
/// generated use of the field needs, plus `Send + 'static` (which
/// `Poolable` requires of the whole struct).
fn inferred_bounds(input: &Struct) -> InferredBounds {
    let mut bounds = InferredBounds::default();
    for field in input.fields.iter().filter(|f| f.contains_generic) {
        let ty = field.ty;
        bounds.insert(ty, quote!(::core::marker::Send));
        bounds.insert(ty, quote!('static));
        if field.attrs.capacity.is_some() {
            bounds.insert(ty, quote!(::zeropool::Poolable));
        } else if let Reset::Derived = field.reset() {
            bounds.insert(ty, quote!(::zeropool::PoolField));
        } else if input.attrs.new.is_none() {
            bounds.insert(ty, quote!(::core::default::Default));
        }
    }
    bounds
}

/// `with_capacity_hint`: the container's `new`, or each field built in turn:
/// the capacity field from the hint, the fields the derive resets empty
/// (`PoolField::new_field`), the others as their `Default`.
fn build_body(input: &Struct) -> TokenStream {
    if let Some(new) = &input.attrs.new {
        return call(new, quote!(bytes));
    }
    let inits = input.fields.iter().map(|field| {
        let (member, ty) = (&field.member, field.ty);
        let value = if field.attrs.capacity.is_some() {
            quote_spanned! {ty.span()=>
                <#ty as ::zeropool::__private::CapacityField>::capacity_field(bytes)
            }
        } else if let Reset::Derived = field.reset() {
            quote_spanned! {ty.span()=>
                <#ty as ::zeropool::PoolField>::new_field()
            }
        } else {
            quote_spanned! {ty.span()=>
                <#ty as ::zeropool::__private::DefaultField>::default_field()
            }
        };
        quote!(#member: #value)
    });
    quote! {
        Self { #(#inits,)* }
    }
}

/// `reset`: each field as marked, in declaration order, then the container's
/// `reset` function.
fn reset_body(input: &Struct) -> TokenStream {
    let fields = input.fields.iter().map(|field| {
        let (member, ty) = (&field.member, field.ty);
        match field.reset() {
            Reset::Derived => quote_spanned! {ty.span()=>
                <#ty as ::zeropool::PoolField>::reset_field(&mut self.#member);
            },
            Reset::With(path) => {
                let call = call(path, quote!(&mut self.#member));
                quote!(#call;)
            }
            Reset::Keep => TokenStream::new(),
        }
    });
    let container = input.attrs.reset.as_ref().map(|reset| {
        let call = call(reset, quote!(self));
        quote!(#call;)
    });
    quote! {
        #(#fields)*
        #container
    }
}

/// `capacity_bytes`: the sum of every field's heap bytes. `keep` and
/// custom-reset fields count when their type implements `PoolField`.
fn capacity_body(input: &Struct) -> TokenStream {
    let mut probes = false;
    let terms: Vec<TokenStream> = input
        .fields
        .iter()
        .map(|field| {
            let (member, ty) = (&field.member, field.ty);
            if field.attrs.capacity.is_some() {
                return quote_spanned! {ty.span()=>
                    <#ty as ::zeropool::__private::CapacityField>::capacity_bytes_of(&self.#member)
                };
            }
            match field.reset() {
                Reset::Derived => quote_spanned! {ty.span()=>
                    <#ty as ::zeropool::PoolField>::heap_bytes(&self.#member)
                },
                Reset::With(_) | Reset::Keep => {
                    probes = true;
                    quote! {
                        (&&::zeropool::__private::Probe(&self.#member)).heap_bytes_of()
                    }
                }
            }
        })
        .collect();
    let imports = probes.then(|| {
        quote! {
            use ::zeropool::__private::{MeasureField as _, MeasureOther as _};
        }
    });
    quote! {
        #imports
        0usize #(.saturating_add(#terms))*
    }
}

/// `wipe`: the capacity field and every field the derive resets; nothing
/// when there is none.
fn wipe_body(input: &Struct) -> Option<TokenStream> {
    let wipes: Vec<TokenStream> = input
        .fields
        .iter()
        .filter_map(|field| wipe_field(field))
        .collect();
    if wipes.is_empty() {
        return None;
    }
    Some(quote! {
        #[inline]
        fn wipe(&mut self) {
            #(#wipes)*
        }
    })
}

fn wipe_field(field: &Field) -> Option<TokenStream> {
    let (member, ty) = (&field.member, field.ty);
    if field.attrs.capacity.is_some() {
        return Some(quote_spanned! {ty.span()=>
            <#ty as ::zeropool::__private::CapacityField>::wipe_capacity_field(&mut self.#member);
        });
    }
    match field.reset() {
        Reset::Derived => Some(quote_spanned! {ty.span()=>
            <#ty as ::zeropool::PoolField>::wipe_field(&mut self.#member);
        }),
        Reset::With(_) | Reset::Keep => None,
    }
}

/// `path(args)`, every token spanned on the path the user wrote, so that a
/// path that does not resolve, or a function of the wrong type, is reported
/// there.
fn call(path: &ExprPath, args: TokenStream) -> TokenStream {
    let span = path_span(path);
    let args = respan(args, span);
    quote_spanned! {span=> #path(#args) }
}

fn path_span(path: &ExprPath) -> Span {
    path.path
        .segments
        .first()
        .map_or_else(|| path.span(), |segment| segment.ident.span())
}

fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tree| {
            if let proc_macro2::TokenTree::Group(group) = &tree {
                let mut inner =
                    proc_macro2::Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                tree = inner.into();
            } else {
                tree.set_span(span);
            }
            tree
        })
        .collect()
}

fn fallback(input: &DeriveInput, error: &Error) -> TokenStream {
    let ident = &input.ident;
    let error = error.to_compile_error();
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let mut generics = input.generics.clone();
    if !input.generics.params.is_empty() {
        generics
            .make_where_clause()
            .predicates
            .push(syn::parse_quote!(Self: ::core::marker::Send + 'static));
    }
    let where_clause = generics.where_clause.as_ref().or(where_clause);
    quote! {
        #error

        #[automatically_derived]
        impl #impl_generics ::zeropool::Poolable for #ident #ty_generics #where_clause {
            fn with_capacity_hint(_: usize) -> Self {
                ::core::unreachable!()
            }

            fn reset(&mut self) {
                ::core::unreachable!()
            }

            fn capacity_bytes(&self) -> usize {
                ::core::unreachable!()
            }
        }
    }
}
