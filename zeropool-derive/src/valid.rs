//! Checks across the parsed model: where the capacity hint goes, and markers
//! that contradict each other. Every error is spanned on the user's token
//! and says what to write instead; all of them are reported at once.

use crate::ast::{Errors, Field, Struct};
use syn::{Error, Result};

impl Struct<'_> {
    pub fn validate(&self) -> Result<()> {
        let mut errors = Errors::default();
        let mut capacity: Option<&Field> = None;
        for field in &self.fields {
            field.validate(&mut errors);
            let Some(marker) = &field.attrs.capacity else {
                continue;
            };
            match capacity {
                Some(first) => errors.push(Error::new(
                    marker.span(),
                    format!(
                        "only one field can be `#[poolable(capacity)]`, and `{}` already is: \
                         the capacity hint sizes that one field; the others start empty \
                         (their heap bytes are still counted). Remove this `capacity`",
                        first.name()
                    ),
                )),
                None => capacity = Some(field),
            }
            if self.attrs.new.is_some() {
                errors.push(Error::new(
                    marker.span(),
                    "`capacity` has no effect here: `#[poolable(new = ...)]` on the struct builds \
                     the whole value from the capacity hint. Remove one of them",
                ));
            }
        }
        if capacity.is_none() && self.attrs.new.is_none() {
            errors.push(Error::new(
                self.ident.span(),
                format!(
                    "`#[derive(Poolable)]` needs to know where the capacity hint goes: mark one \
                     field of `{}` `#[poolable(capacity)]` (a `Vec`, `String` or other `Poolable` \
                     type), or name a `fn(usize) -> Self` with `#[poolable(new = \"path\")]` on \
                     the struct",
                    self.ident
                ),
            ));
        }
        errors.finish(())
    }
}

impl Field<'_> {
    fn validate(&self, errors: &mut Errors) {
        let Some(keep) = &self.attrs.keep else {
            return;
        };
        if self.attrs.reset.is_some() {
            errors.push(Error::new(
                keep.span(),
                format!(
                    "`keep` and `reset = ...` contradict each other: `keep` leaves `{}` \
                     unchanged across `reset`, `reset = ...` resets it. Remove one",
                    self.name()
                ),
            ));
        }
        if self.attrs.capacity.is_some() {
            errors.push(Error::new(
                keep.span(),
                format!(
                    "the `capacity` field cannot be `keep`: `{}` holds each user's data and \
                     must be emptied on `reset`. Remove `keep`, or mark another field `capacity`",
                    self.name()
                ),
            ));
        }
    }
}
