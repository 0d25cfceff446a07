//! Compile tests of `#[derive(Poolable)]`: every misuse is an error on the
//! user's own tokens that says what to write instead, and correct uses
//! compile without a warning under strict lints. The expected
//! messages are the committed `ui/*.stderr` files; regenerate them with
//! `TRYBUILD=overwrite cargo test -p zeropool-tests --test derive_ui` and
//! read each one as a user would before committing it.

#[test]
#[cfg_attr(
    miri,
    ignore = "runs rustc through trybuild: Miri cannot spawn processes"
)]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("ui/*.rs");
    cases.pass("ui/pass/*.rs");
}
