//! `ZEROPOOL_*` variables and file discovery. Each test body runs in a child
//! process with its own environment and working directory, so nothing here
//! changes the environment of another test.

mod config_support;

use config_support::{is_child, keys, run_child, TempDir};
use zeropool::{BufferPool, ByteSize, ConfigSet, Numa, PoolConfig, Source};

const FILE: &str = "[pool]\nshards = 2\nmax_total_memory = \"64 MiB\"\ntls_cache_size = 16\n";

#[test]
#[cfg_attr(miri, ignore = "a child process of its own: Miri cannot spawn one")]
fn env_overrides_the_file_and_builder_calls_override_env() {
    const NAME: &str = "env_overrides_the_file_and_builder_calls_override_env";
    if !is_child(NAME) {
        let dir = TempDir::new("env-precedence");
        dir.write("zeropool.toml", FILE);
        return run_child(
            NAME,
            &[
                ("ZEROPOOL_POOL__MAX_TOTAL_MEMORY", "2 GiB"),
                ("ZEROPOOL_POOL__TLS_CACHE_SIZE", "32"),
                ("ZEROPOOL_POOL__NUMA", "[0]"),
                ("zeropool_pool__stats", "false"),
            ],
            dir.path(),
        );
    }
    let pool = BufferPool::builder()
        .config_file("zeropool.toml")
        .tls_cache_size(64)
        .build()
        .unwrap();
    assert_eq!(pool.shards(), 2, "from the file");
    assert_eq!(pool.max_total_memory(), 2 << 30, "env over the file");
    assert_eq!(pool.tls_cache_size(), 64, "builder over env");
    let cfg = pool.config();
    assert_eq!(cfg.numa, Numa::Nodes(vec![0]));
    assert!(!cfg.stats, "the prefix matches in any case");
    assert_eq!(
        cfg.source("max_total_memory"),
        Some(Source::Env {
            var: "ZEROPOOL_POOL__MAX_TOTAL_MEMORY".into()
        })
    );
    assert_eq!(cfg.source("tls_cache_size"), Some(Source::Builder));
    assert!(matches!(
        cfg.source("shards"),
        Some(Source::File { line: Some(2), .. })
    ));
}

#[test]
#[cfg_attr(miri, ignore = "a child process of its own: Miri cannot spawn one")]
fn from_config_discovers_the_working_directory_file() {
    const NAME: &str = "from_config_discovers_the_working_directory_file";
    if !is_child(NAME) {
        let dir = TempDir::new("env-discover");
        dir.write("zeropool.toml", FILE);
        return run_child(NAME, &[], dir.path());
    }
    let pool = BufferPool::from_config().unwrap();
    assert_eq!(pool.shards(), 2);
    assert_eq!(
        pool.config_file(),
        Some(std::path::Path::new("zeropool.toml"))
    );
    // A plain builder stays hermetic.
    assert_eq!(
        BufferPool::builder().build().unwrap().config(),
        PoolConfig::default()
    );
    assert_eq!(BufferPool::new().config(), PoolConfig::default());
}

#[test]
#[cfg_attr(miri, ignore = "a child process of its own: Miri cannot spawn one")]
fn zeropool_config_names_the_file() {
    const NAME: &str = "zeropool_config_names_the_file";
    if !is_child(NAME) {
        let dir = TempDir::new("env-config-var");
        dir.write("zeropool.toml", FILE);
        let other = dir.write("other.toml", "[pool]\nshards = 4\n");
        return run_child(
            NAME,
            &[("ZEROPOOL_CONFIG", other.to_str().unwrap())],
            dir.path(),
        );
    }
    let pool = BufferPool::from_config().unwrap();
    assert_eq!(
        pool.shards(),
        4,
        "ZEROPOOL_CONFIG wins over ./zeropool.toml"
    );
    // An explicit file wins over ZEROPOOL_CONFIG.
    let pool = BufferPool::builder()
        .config_file("zeropool.toml")
        .build()
        .unwrap();
    assert_eq!(pool.shards(), 2);
}

#[test]
#[cfg_attr(miri, ignore = "a child process of its own: Miri cannot spawn one")]
fn a_missing_zeropool_config_file_is_an_error() {
    const NAME: &str = "a_missing_zeropool_config_file_is_an_error";
    if !is_child(NAME) {
        let dir = TempDir::new("env-config-missing");
        return run_child(
            NAME,
            &[("ZEROPOOL_CONFIG", "/nonexistent/zeropool.toml")],
            dir.path(),
        );
    }
    let err = BufferPool::from_config().unwrap_err();
    assert_eq!(keys(&err), ["config_file"]);
    assert_eq!(
        err.problems()[0].source,
        Source::Env {
            var: "ZEROPOOL_CONFIG".into()
        }
    );
    assert!(
        err.to_string().contains("/nonexistent/zeropool.toml"),
        "{err}"
    );
}

#[test]
#[cfg_attr(miri, ignore = "a child process of its own: Miri cannot spawn one")]
fn without_file_or_variables_from_config_is_the_defaults() {
    const NAME: &str = "without_file_or_variables_from_config_is_the_defaults";
    if !is_child(NAME) {
        let dir = TempDir::new("env-empty");
        return run_child(NAME, &[], dir.path());
    }
    let pool = BufferPool::from_config().unwrap();
    assert_eq!(pool.config(), PoolConfig::default());
    assert_eq!(pool.config_file(), None);
    let set = ConfigSet::resolve(None).unwrap();
    assert_eq!(set.pools().count(), 1);
    assert!(set.file().is_none());
}

#[test]
#[cfg_attr(miri, ignore = "a child process of its own: Miri cannot spawn one")]
fn bad_variables_are_named_with_suggestions() {
    const NAME: &str = "bad_variables_are_named_with_suggestions";
    if !is_child(NAME) {
        let dir = TempDir::new("env-bad");
        return run_child(
            NAME,
            &[
                ("ZEROPOOL_POOL__MAX_TOTAL_MEMROY", "1 GiB"),
                ("ZEROPOOL_SHARDS", "2"),
                ("ZEROPOOL_POOL__BATCH_SIZE", "0"),
                ("ZEROPOOL_POOLS__NET__SHARDS", "many"),
                ("ZEROPOOL_POOL__", "x"),
            ],
            dir.path(),
        );
    }
    let err = BufferPool::from_config().unwrap_err();
    let text = err.to_string();
    let mut found = keys(&err);
    found.sort();
    assert_eq!(
        found,
        [
            "ZEROPOOL_POOL__",
            "pool.batch_size",
            "pool.max_total_memroy",
            "pools.net.shards",
            "shards"
        ],
        "{text}"
    );
    for p in err.problems() {
        assert!(matches!(p.source, Source::Env { .. }), "{p}");
    }
    assert!(
        text.contains("(from env ZEROPOOL_POOL__BATCH_SIZE)"),
        "{text}"
    );
    assert!(
        text.contains("did you mean ZEROPOOL_POOL__MAX_TOTAL_MEMORY?"),
        "{text}"
    );
    assert!(
        text.contains("did you mean ZEROPOOL_POOL__SHARDS?"),
        "{text}"
    );
    assert!(
        text.contains("`pools.net.shards` = \"many\" (from env ZEROPOOL_POOLS__NET__SHARDS)"),
        "{text}"
    );
    // A plain builder does not read them.
    assert!(BufferPool::builder().build().is_ok());
}

#[test]
#[cfg_attr(miri, ignore = "a child process of its own: Miri cannot spawn one")]
fn named_pools_read_their_variables() {
    const NAME: &str = "named_pools_read_their_variables";
    if !is_child(NAME) {
        let dir = TempDir::new("env-named");
        dir.write("zeropool.toml", "[pools.net]\nshards = 2\n");
        return run_child(
            NAME,
            &[
                ("ZEROPOOL_POOLS__NET__SHARDS", "8"),
                ("ZEROPOOL_POOLS__NET__MAX_OUTSTANDING_MEMORY", "3 GiB"),
                ("ZEROPOOL_POOL__SHARDS", "1"),
            ],
            dir.path(),
        );
    }
    let net = BufferPool::builder().named("net").build().unwrap();
    assert_eq!(net.shards(), 8);
    assert_eq!(net.config().max_outstanding_memory, Some(ByteSize(3 << 30)));
    let default = BufferPool::from_config().unwrap();
    assert_eq!(default.shards(), 1);
    let set = ConfigSet::resolve(None).unwrap();
    assert_eq!(
        set.pools().map(|(n, _)| n).collect::<Vec<_>>(),
        ["pool", "pools.net"]
    );
}

#[test]
#[cfg_attr(miri, ignore = "a child process of its own: Miri cannot spawn one")]
fn variables_can_change_one_key_of_a_file_table() {
    const NAME: &str = "variables_can_change_one_key_of_a_file_table";
    if !is_child(NAME) {
        let dir = TempDir::new("env-subkey");
        dir.write(
            "zeropool.toml",
            "[pool]\nsize_classes = { min = \"1 KiB\", max = \"64 KiB\", per_doubling = 1 }\n",
        );
        return run_child(
            NAME,
            &[("ZEROPOOL_POOL__SIZE_CLASSES__MAX", "8 KiB")],
            dir.path(),
        );
    }
    let pool = BufferPool::from_config().unwrap();
    assert_eq!(pool.size_classes(), [1024, 2048, 4096, 8192]);
    assert_eq!(
        pool.config().source("size_classes"),
        Some(Source::Env {
            var: "ZEROPOOL_POOL__SIZE_CLASSES__MAX".into()
        })
    );
}

/// An unset `batch_size` follows a small `tls_cache_size` from the file, the
/// environment or a builder call; only a batch size the user set is refused
/// for being larger than the cache.
#[test]
#[cfg_attr(miri, ignore = "a child process of its own: Miri cannot spawn one")]
fn an_unset_batch_size_follows_a_small_cache_from_every_source() {
    const NAME: &str = "an_unset_batch_size_follows_a_small_cache_from_every_source";
    if !is_child(NAME) {
        let dir = TempDir::new("env-batch-follows");
        dir.write("file.toml", "[pool]\ntls_cache_size = 2\n");
        dir.write("env.toml", "[pool]\nshards = 1\n");
        dir.write("both.toml", "[pool]\ntls_cache_size = 2\nbatch_size = 3\n");
        return run_child(
            NAME,
            &[("ZEROPOOL_POOLS__NET__TLS_CACHE_SIZE", "1")],
            dir.path(),
        );
    }
    let from_file = BufferPool::builder().config_file("file.toml").build();
    let pool = from_file.expect("tls_cache_size = 2 alone is valid in a file");
    assert_eq!((pool.tls_cache_size(), pool.batch_size()), (2, 2));
    assert_eq!(pool.config().source("batch_size"), Some(Source::Default));

    let from_env = BufferPool::builder()
        .config_file("env.toml")
        .named("net")
        .build();
    let pool = from_env.expect("ZEROPOOL_..._TLS_CACHE_SIZE=1 alone is valid");
    assert_eq!((pool.tls_cache_size(), pool.batch_size()), (1, 1));

    let pool = BufferPool::builder()
        .tls_cache_size(3)
        .build()
        .expect("tls_cache_size(3) alone is valid");
    assert_eq!((pool.tls_cache_size(), pool.batch_size()), (3, 3));

    // A batch size the user set is judged, and named.
    let err = BufferPool::builder()
        .config_file("both.toml")
        .build()
        .expect_err("batch_size = 3 > tls_cache_size = 2");
    assert_eq!(err.problems().len(), 1, "{err}");
    assert_eq!(err.problems()[0].key, "pool.batch_size", "{err}");

    // A reload that only shrinks the cache takes the default batch along,
    // and reports no batch change it did not make.
    let pool = BufferPool::builder()
        .config_file("file.toml")
        .build()
        .unwrap();
    let mut cfg = PoolConfig::from_toml_str("[pool]\ntls_cache_size = 8\n").unwrap();
    let report = pool.reload(&cfg).expect("valid");
    assert_eq!(
        (pool.tls_cache_size(), pool.batch_size()),
        (8, 4),
        "{report:?}"
    );
    cfg.tls_cache_size = 1;
    pool.reload(&cfg).expect("valid: the default batch follows");
    assert_eq!(pool.batch_size(), 1);
}
