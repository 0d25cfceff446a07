//! The builder over a config file: defaults < file < builder calls, named
//! pools, whole-config validation with sources, nothing built on error, and
//! plain builders that read nothing.

mod config_support;

use config_support::{keys, TempDir};
use zeropool::{BufferPool, ByteSize, Error, Numa, OnExhausted, PoolConfig, Shards, Source};

const FILE: &str = r#"[pool]
shards = 2
tls_cache_size = 16
batch_size = 8
max_total_memory = "64 MiB"
size_classes = ["4 KiB", "16 KiB", "64 KiB"]
stats = false

[pools.net]
shards = 4
numa = "local"
size_classes = { min = "1 KiB", max = "64 KiB", per_doubling = 1 }
max_outstanding_memory = "1 GiB"
on_exhausted = "error"
"#;

#[test]
fn the_file_overrides_defaults_and_builder_calls_override_the_file() {
    let dir = TempDir::new("builder");
    let path = dir.write("zeropool.toml", FILE);
    let pool = BufferPool::builder().config_file(&path).build().unwrap();
    assert_eq!(pool.shards(), 2);
    assert_eq!((pool.tls_cache_size(), pool.batch_size()), (16, 8));
    assert_eq!(pool.max_total_memory(), 64 << 20);
    assert_eq!(pool.size_classes(), [4096, 16384, 65536]);
    let cfg = pool.config();
    assert!(!cfg.stats);
    assert_eq!(
        cfg.source("shards"),
        Some(Source::File {
            path: path.clone(),
            line: Some(2)
        })
    );
    assert_eq!(cfg.source("wipe_on_return"), Some(Source::Default));
    assert_eq!(pool.config_file(), Some(path.as_path()));
    assert_eq!(pool.config_section(), "pool");

    let pool = BufferPool::builder()
        .config_file(&path)
        .shards(8)
        .max_total_memory(1 << 20)
        .build()
        .unwrap();
    assert_eq!(pool.shards(), 8);
    assert_eq!(pool.max_total_memory(), 1 << 20);
    assert_eq!(pool.tls_cache_size(), 16, "the file still sets the rest");
    assert_eq!(pool.config().source("shards"), Some(Source::Builder));
}

#[test]
fn named_pools_read_their_own_table_without_inheriting() {
    let dir = TempDir::new("named");
    let path = dir.write("zeropool.toml", FILE);
    let pool = BufferPool::builder()
        .config_file(&path)
        .named("net")
        .build()
        .unwrap();
    assert_eq!(pool.config_section(), "pools.net");
    assert_eq!(pool.shards(), 4);
    assert_eq!(
        pool.size_classes(),
        [1024, 2048, 4096, 8192, 16384, 32768, 65536]
    );
    let cfg = pool.config();
    assert_eq!(cfg.numa, Numa::Local);
    assert_eq!(cfg.max_outstanding_memory, Some(ByteSize(1 << 30)));
    assert_eq!(cfg.on_exhausted, OnExhausted::Error);
    // Not inherited from [pool]:
    assert_eq!(pool.tls_cache_size(), 8);
    assert!(cfg.stats);

    // A name with no table gets the defaults.
    let pool = BufferPool::builder()
        .config_file(&path)
        .named("other")
        .build()
        .unwrap();
    assert_eq!(pool.config_section(), "pools.other");
    assert_eq!(pool.config(), PoolConfig::default());
}

#[test]
fn problems_from_file_and_builder_are_listed_together_and_nothing_is_built() {
    let dir = TempDir::new("mixed");
    let path = dir.write(
        "zeropool.toml",
        "[pool]\ntls_cache_size = 4\nmax_total_memory = \"lots\"\n\n[pools.net]\nshards = 0\n",
    );
    let err = BufferPool::builder()
        .config_file(&path)
        .batch_size(9)
        .build()
        .unwrap_err();
    assert_eq!(
        keys(&err),
        ["pool.max_total_memory", "pools.net.shards", "batch_size"]
    );
    let batch = &err.problems()[2];
    assert_eq!(batch.source, Source::Builder);
    assert!(
        batch.accepted.contains("tls_cache_size (4)"),
        "{}",
        batch.accepted
    );
    let text = err.to_string();
    assert!(
        text.contains(&format!("(from {} line 3)", path.display())),
        "{text}"
    );
}

#[test]
fn a_default_batch_size_follows_the_file_cache_size() {
    let dir = TempDir::new("batch");
    let path = dir.write("zeropool.toml", "[pool]\ntls_cache_size = 2\n");
    let pool = BufferPool::builder()
        .config_file(&path)
        .build()
        .expect("an unset batch size is not refused for a small cache");
    assert_eq!(pool.batch_size(), 2);
    assert_eq!(pool.config().source("batch_size"), Some(Source::Default));
    // A batch size set in code is judged against the cache.
    let err = BufferPool::builder()
        .config_file(&path)
        .batch_size(3)
        .build()
        .unwrap_err();
    assert_eq!(keys(&err), ["batch_size"]);
    assert_eq!(err.problems()[0].source, Source::Builder);
}

#[test]
fn a_bad_value_overridden_by_the_builder_is_not_an_error() {
    let dir = TempDir::new("override");
    let path = dir.write("zeropool.toml", "[pool]\nshards = 0\n");
    assert!(BufferPool::builder().config_file(&path).build().is_err());
    assert_eq!(
        BufferPool::builder()
            .config_file(&path)
            .shards(2)
            .build()
            .unwrap()
            .shards(),
        2
    );
}

#[test]
fn a_named_file_must_exist() {
    let dir = TempDir::new("missing");
    let err = BufferPool::builder()
        .config_file(dir.path().join("nope.toml"))
        .build()
        .unwrap_err();
    assert_eq!(keys(&err), ["config_file"]);
    assert_eq!(err.problems()[0].source, Source::Builder);
    assert!(err.to_string().contains("nope.toml"), "{err}");
    // A directory is not a file either.
    assert!(BufferPool::builder()
        .config_file(dir.path())
        .build()
        .is_err());
}

#[test]
fn a_corrupt_file_builds_nothing() {
    let dir = TempDir::new("corrupt");
    let path = dir.write("zeropool.toml", "[pool]\nshards = 2\nbatch_size = \n");
    let err = BufferPool::builder()
        .config_file(&path)
        .build()
        .unwrap_err();
    let Error::Invalid(problems) = &err else {
        panic!("{err}")
    };
    assert_eq!(problems.len(), 1);
    assert_eq!(
        problems[0].source,
        Source::File {
            path,
            line: Some(3)
        }
    );
}

#[test]
fn config_values_keep_their_sources() {
    let cfg = PoolConfig::from_toml_str("[pool]\ntls_cache_size = 2\nbatch_size = 2\n").unwrap();
    let err = BufferPool::builder()
        .config(&cfg)
        .tls_cache_size(1)
        .build()
        .unwrap_err();
    // The batch size is blamed where it was written.
    assert_eq!(keys(&err), ["batch_size"]);
    assert!(
        matches!(err.problems()[0].source, Source::File { line: Some(3), .. }),
        "{err}"
    );
    let pool = BufferPool::builder().config(&cfg).build().unwrap();
    assert_eq!((pool.tls_cache_size(), pool.batch_size()), (2, 2));
    assert!(matches!(
        pool.config().source("tls_cache_size"),
        Some(Source::File { line: Some(2), .. })
    ));
}

#[test]
fn plain_builders_read_no_file() {
    // A file in the working directory of this test binary would be found by
    // from_config(); a plain builder never looks. (The tests run in the
    // package directory, which has no zeropool.toml.)
    let pool = BufferPool::builder().build().unwrap();
    assert_eq!(pool.config(), PoolConfig::default());
    assert_eq!(pool.config_file(), None);
    for s in pool.config().settings() {
        assert_eq!(s.source, Source::Default, "{s}");
    }
    assert_eq!(pool.config().shards, Shards::Auto);
}

#[test]
fn builder_debug_shows_what_was_set() {
    let b = BufferPool::builder()
        .shards(3)
        .config_file("x.toml")
        .named("net");
    let dbg = format!("{b:?}");
    assert!(
        dbg.contains("shards: Some(\"3\")") && dbg.contains("x.toml") && dbg.contains("net"),
        "{dbg}"
    );
    assert!(dbg.contains("batch_size: None"), "{dbg}");
}
