//! Invalid settings: every problem is reported with its key, the value and
//! what is accepted; nothing panics.

use std::panic::{self, AssertUnwindSafe};
use zeropool::{
    BufferPool, Error, PoolBuilder, Problem, Source, MAX_CLASS_SIZE, MAX_SHARDS, MAX_SIZE_CLASSES,
    MAX_TLS_CACHE_SIZE,
};

/// Builds without panicking and returns the problems.
fn problems(builder: PoolBuilder<Vec<u8>>) -> (Vec<Problem>, String) {
    let result =
        panic::catch_unwind(AssertUnwindSafe(|| builder.build())).expect("build() must not panic");
    let err = result.expect_err("the settings are invalid");
    let text = err.to_string();
    let Error::Invalid(problems) = err else {
        panic!("unexpected error kind: {text}")
    };
    assert!(!problems.is_empty());
    (problems, text)
}

fn keys(problems: &[Problem]) -> Vec<&str> {
    problems.iter().map(|p| p.key.as_str()).collect()
}

/// Each problem names its key, value and accepted range, and the error's
/// message shows all of that.
#[track_caller]
fn check_described(problems: &[Problem], text: &str) {
    for p in problems {
        assert_eq!(p.source, Source::Builder);
        assert!(!p.accepted.is_empty());
        assert!(text.contains(&format!("`{}`", p.key)), "{text}");
        assert!(text.contains(&p.value), "{text}");
        assert!(text.contains(&p.accepted), "{text}");
        let own = p.to_string();
        assert!(own.contains(&p.key) && own.contains(&p.accepted), "{own}");
    }
}

#[test]
fn zero_shards() {
    let (p, text) = problems(BufferPool::builder().shards(0));
    assert_eq!(keys(&p), ["shards"]);
    assert_eq!(p[0].value, "0");
    assert!(
        p[0].accepted.contains(&format!("1 to {MAX_SHARDS}")),
        "{}",
        p[0].accepted
    );
    assert!(text.contains("`shards` = 0"), "{text}");
    check_described(&p, &text);
}

#[test]
fn too_many_shards() {
    let (p, text) = problems(BufferPool::builder().shards(MAX_SHARDS + 1));
    assert_eq!(keys(&p), ["shards"]);
    assert_eq!(p[0].value, (MAX_SHARDS + 1).to_string());
    check_described(&p, &text);
}

#[test]
fn zero_tls_cache_size() {
    let (p, text) = problems(BufferPool::builder().tls_cache_size(0));
    assert_eq!(p[0].key, "tls_cache_size");
    assert_eq!(p[0].value, "0");
    assert!(
        p[0].accepted
            .contains(&format!("1 to {MAX_TLS_CACHE_SIZE}")),
        "{}",
        p[0].accepted
    );
    // The default batch size no longer fits either; nothing else is named.
    assert!(
        keys(&p)
            .iter()
            .all(|k| ["tls_cache_size", "batch_size"].contains(k)),
        "{p:?}"
    );
    check_described(&p, &text);

    let (p, text) = problems(BufferPool::builder().tls_cache_size(0).batch_size(1));
    assert!(keys(&p).contains(&"tls_cache_size"), "{p:?}");
    check_described(&p, &text);
}

#[test]
fn tls_cache_size_too_large() {
    let (p, text) = problems(BufferPool::builder().tls_cache_size(MAX_TLS_CACHE_SIZE + 1));
    assert_eq!(keys(&p), ["tls_cache_size"]);
    check_described(&p, &text);
}

#[test]
fn batch_size_larger_than_tls_cache_size() {
    let (p, text) = problems(BufferPool::builder().tls_cache_size(4).batch_size(5));
    assert_eq!(keys(&p), ["batch_size"]);
    assert_eq!(p[0].value, "5");
    assert!(
        p[0].accepted.contains("tls_cache_size"),
        "{}",
        p[0].accepted
    );
    assert!(
        p[0].accepted.contains('4'),
        "names the current cache size: {}",
        p[0].accepted
    );
    check_described(&p, &text);
    // Equal is fine, and so is the default pair.
    assert!(BufferPool::builder()
        .tls_cache_size(4)
        .batch_size(4)
        .build()
        .is_ok());
}

#[test]
fn zero_batch_size() {
    let (p, text) = problems(BufferPool::builder().batch_size(0));
    assert_eq!(keys(&p), ["batch_size"]);
    check_described(&p, &text);
}

#[test]
fn bad_size_class_lists() {
    let too_many: Vec<usize> = (1..=MAX_SIZE_CLASSES + 1).collect();
    let cases: [(&str, &[usize]); 7] = [
        ("empty", &[]),
        ("unsorted", &[16384, 4096]),
        ("duplicate", &[4096, 4096]),
        ("duplicate, later", &[64, 4096, 8192, 8192]),
        ("zero", &[0, 4096]),
        ("too large", &[4096, MAX_CLASS_SIZE + 1]),
        ("too many", &too_many),
    ];
    for (what, classes) in cases {
        let (p, text) = problems(BufferPool::builder().size_classes(classes));
        assert_eq!(keys(&p), ["size_classes"], "{what}");
        assert!(
            p[0].accepted.contains("ascending"),
            "{what}: {}",
            p[0].accepted
        );
        check_described(&p, &text);
    }
    // The limits themselves are accepted (nothing is allocated at build time).
    assert!(BufferPool::builder()
        .size_classes(&[1, MAX_CLASS_SIZE])
        .build()
        .is_ok());
    let most: Vec<usize> = (1..=MAX_SIZE_CLASSES).collect();
    assert!(BufferPool::builder().size_classes(&most).build().is_ok());
}

#[test]
fn every_bad_setting_is_listed_at_once() {
    let (p, text) = problems(
        BufferPool::builder()
            .shards(0)
            .tls_cache_size(0)
            .batch_size(7)
            .size_classes(&[4096, 1024]),
    );
    assert_eq!(
        keys(&p),
        ["shards", "tls_cache_size", "batch_size", "size_classes"]
    );
    check_described(&p, &text);
    assert!(text.starts_with("invalid pool configuration"), "{text}");
    // One line per problem.
    assert_eq!(text.lines().count(), 1 + p.len(), "{text}");
}

#[test]
fn errors_compare_and_clone() {
    let a = BufferPool::builder().shards(0).build().unwrap_err();
    let b = BufferPool::builder().shards(0).build().unwrap_err();
    assert_eq!(a, b);
    assert_eq!(a.clone(), a);
    let c = BufferPool::builder()
        .shards(MAX_SHARDS + 1)
        .build()
        .unwrap_err();
    assert_ne!(a, c);
}

#[test]
fn builder_debug_shows_the_settings() {
    let b = BufferPool::builder().shards(3).max_total_memory(77_777);
    let dbg = format!("{b:?}");
    assert!(dbg.contains("77777") && dbg.contains("shards"), "{dbg}");
}
