//! Config parser robustness: generated TOML text and `ZEROPOOL_*` variables
//! (known and random keys, every TOML type, huge, negative and fractional
//! numbers, sizes such as "64 KiB", "1.5GB" or "abc", unicode, nested
//! tables, arrays, truncated text) never panic. Each gives either an
//! `Error::Invalid` whose problems all say where they came from and name a
//! key (a syntax error names the file and line instead), or configs from
//! which pools build and serve a get and a put with exact counters.
//!
//! Three entry points: `PoolConfig::from_toml_str`, `ConfigSet::resolve` of
//! a file (and builders reading it), and the environment. The environment
//! is only read from the process environment, so those cases run in a child
//! process of this test binary (one test, one thread) that sets and removes
//! the variables case by case; the file cases run in a child too, so that no
//! `ZEROPOOL_*` variable of the caller leaks in.
//!
//! 256 cases each by default (`PROPTEST_CASES` raises it) from a fixed seed
//! (`PROPTEST_RNG_SEED` changes it).

mod common;
mod config_support;

use config_support::{is_child, run_child, TempDir};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use std::path::Path;
use zeropool::{BufferPool, ByteSize, ConfigSet, Error, PoolConfig, Shards, Source};

// ----- generators ------------------------------------------------------------

/// The config keys, from the public API.
fn keys() -> Vec<&'static str> {
    PoolConfig::default()
        .settings()
        .iter()
        .map(|s| s.key)
        .collect()
}

/// A TOML basic string holding `s` exactly.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A key as TOML writes it: bare when it can be, else quoted.
fn toml_key(k: &str) -> String {
    let bare = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        k.to_string()
    } else {
        quote(k)
    }
}

/// Text that looks like a size, a duration or a name, right or wrong.
fn wordish() -> BoxedStrategy<String> {
    let fixed = select(vec![
        "64 KiB",
        "1.5GB",
        "1.5 GiB",
        "abc",
        "auto",
        "off",
        "local",
        "interleave",
        "wait",
        "error",
        "allocate",
        "30s",
        "250 ms",
        "1.5s",
        "5m",
        "1h",
        "0s",
        "-1 KiB",
        "-0",
        "16384 PiB",
        "16383 PiB",
        "99999999999999999999999999999999999999999 B",
        "340282366920938463463374607431768211.5 KB",
        "340282366920938463463374607431768211455 B",
        ".5 KiB",
        ".",
        "1.2.3",
        "1.5 B",
        "",
        " ",
        "1e3 B",
        "1_024",
        "٣ KiB",
        "１ KiB",
        "4 KiBs",
        "nan",
        "inf s",
        "0.000000000000000000001 PB",
        "18446744073709551615",
        "18446744073709551616",
    ])
    .prop_map(String::from);
    let units = select(vec![
        "", "B", "b", "KiB", "kib", "MiB", "GiB", "TiB", "PiB", "KB", "MB", "GB", "TB", "PB", "ms",
        "s", "m", "min", "h", "KiB ", "K", "bytes",
    ]);
    let number = prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        (0u32..5000).prop_map(|n| n.to_string()),
        (0u32..100, 0u32..1000).prop_map(|(a, b)| format!("{a}.{b}")),
        any::<u128>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| f.to_string()),
    ];
    let built = (number, prop_oneof![Just(""), Just(" "), Just("  ")], units)
        .prop_map(|(n, sep, unit)| format!("{n}{sep}{unit}"));
    prop_oneof![4 => fixed, 4 => built, 1 => "\\PC{0,16}", 1 => ".{0,8}"].boxed()
}

/// One TOML value, as text.
fn leaf() -> BoxedStrategy<String> {
    prop_oneof![
        3 => any::<i64>().prop_map(|n| n.to_string()),
        3 => (0i64..70_000).prop_map(|n| n.to_string()),
        1 => select(vec![
            "0",
            "-1",
            "9223372036854775807",
            "-9223372036854775808",
            "1_000",
            "0x10",
            "0o17",
            "0b101",
            "+5",
        ])
        .prop_map(String::from),
        2 => any::<f64>().prop_map(|f| format!("{f:?}")),
        1 => select(vec!["inf", "-inf", "nan", "1.5", "-0.0", "1e3", "6.02e23", "1e-7"])
            .prop_map(String::from),
        2 => any::<bool>().prop_map(|b| b.to_string()),
        6 => wordish().prop_map(|s| quote(&s)),
        1 => select(vec![
            "1979-05-27T07:32:00Z",
            "1979-05-27",
            "07:32:00",
            "'literal 64 KiB'",
            "\"\"\"multi\nline\"\"\"",
        ])
        .prop_map(String::from),
    ]
    .boxed()
}

/// Any key: a config key, a near miss, or anything at all.
fn any_key() -> BoxedStrategy<String> {
    prop_oneof![
        4 => select(keys()).prop_map(String::from),
        2 => select(vec![
            "max_total_memroy",
            "shard",
            "tls-cache-size",
            "Stats",
            "min",
            "max",
            "per_doubling",
            "pool",
            "pools",
            "",
            "size_classes.min",
        ])
        .prop_map(String::from),
        2 => "\\PC{0,10}",
        1 => "[a-z_]{1,12}",
    ]
    .boxed()
}

/// Any value, nested in arrays and inline tables.
fn value() -> BoxedStrategy<String> {
    leaf()
        .prop_recursive(3, 24, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5)
                    .prop_map(|items| format!("[{}]", items.join(", "))),
                prop::collection::vec((any_key(), inner), 0..4).prop_map(|pairs| {
                    let body: Vec<String> = pairs
                        .iter()
                        .map(|(k, v)| format!("{} = {v}", toml_key(k)))
                        .collect();
                    format!("{{ {} }}", body.join(", "))
                }),
            ]
        })
        .boxed()
}

/// A size in bytes, mostly small enough to build pools with.
fn size_text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => (1u64..=1 << 20).prop_map(|n| n.to_string()),
        4 => (1u64..=64, select(vec!["B", "KiB", "MiB", " KiB", " MiB", "KB"]))
            .prop_map(|(n, u)| quote(&format!("{n}{u}"))),
        1 => Just(quote("1 TiB")),
        1 => Just(quote("1.5 GiB")),
    ]
    .boxed()
}

/// A value that `key` plausibly takes: mostly valid, sometimes out of range.
fn plausible(key: &'static str) -> BoxedStrategy<String> {
    match key {
        "shards" => prop_oneof![
            4 => (1usize..=16).prop_map(|n| n.to_string()),
            1 => Just(quote("auto")),
            1 => select(vec!["0", "1024", "1025", "4096"]).prop_map(String::from),
        ]
        .boxed(),
        "numa" => select(vec![
            "\"auto\"",
            "\"off\"",
            "\"local\"",
            "\"interleave\"",
            "[0]",
            "[0, 0]",
            "[]",
            "[1023]",
            "[1024]",
            "[0, 1]",
        ])
        .prop_map(String::from)
        .boxed(),
        "size_classes" => prop_oneof![
            prop::collection::vec(1u64..=1 << 20, 1..8).prop_map(|mut v| {
                v.sort_unstable();
                v.dedup();
                let items: Vec<String> = v.iter().map(|n| n.to_string()).collect();
                format!("[{}]", items.join(", "))
            }),
            (size_text(), size_text(), 0u32..=70).prop_map(|(min, max, per)| {
                format!("{{ min = {min}, max = {max}, per_doubling = {per} }}")
            }),
            prop::collection::vec(size_text(), 0..5)
                .prop_map(|items| format!("[{}]", items.join(", "))),
        ]
        .boxed(),
        "tls_cache_size" => prop_oneof![
            4 => (1usize..=64).prop_map(|n| n.to_string()),
            1 => select(vec!["0", "65536", "65537"]).prop_map(String::from),
        ]
        .boxed(),
        "batch_size" => (0usize..=70).prop_map(|n| n.to_string()).boxed(),
        "max_total_memory" | "max_outstanding_memory" => size_text(),
        "on_exhausted" => select(vec!["allocate", "error", "wait", "Wait", "block"])
            .prop_map(quote)
            .boxed(),
        "stats" | "wipe_on_return" | "pinned" | "track_outstanding" => {
            any::<bool>().prop_map(|b| b.to_string()).boxed()
        }
        "trim_after" => select(vec!["30s", "250ms", "5m", "off", "0s", "1.5s", "soon"])
            .prop_map(quote)
            .boxed(),
        _ => value(),
    }
}

/// A key and a value: mostly a known key with a plausible value.
fn entry() -> BoxedStrategy<(String, String)> {
    prop_oneof![
        6 => select(keys()).prop_flat_map(|k| plausible(k).prop_map(move |v| (k.to_string(), v))),
        2 => (select(keys()).prop_map(String::from), value()),
        1 => (any_key(), value()),
    ]
    .boxed()
}

/// A table header (or none: the top level).
fn header() -> BoxedStrategy<String> {
    prop_oneof![
        6 => Just("[pool]".to_string()),
        3 => select(vec!["net", "web", "Ünïcode", "a.b", "", "pool"])
            .prop_map(|n| format!("[pools.{}]", toml_key(n))),
        1 => Just(String::new()),
        1 => select(vec!["[pool.size_classes]", "[[pool]]", "[pools]", "[[pools.net]]", "[pool.inner]"])
            .prop_map(String::from),
        1 => any_key().prop_map(|k| format!("[{}]", toml_key(&k))),
    ]
    .boxed()
}

/// A whole document: some tables of entries, sometimes cut short or
/// followed by stray text.
fn document() -> BoxedStrategy<String> {
    let tables = prop::collection::vec((header(), prop::collection::vec(entry(), 0..8)), 0..4);
    (tables, 0usize..100, any::<prop::sample::Index>(), ".{0,6}")
        .prop_map(|(tables, damage, at, junk)| {
            let mut text = String::new();
            for (header, entries) in tables {
                text.push_str(&header);
                text.push('\n');
                for (k, v) in entries {
                    text.push_str(&format!("{} = {v}\n", toml_key(&k)));
                }
            }
            match damage {
                // Cut short, as a half-written file.
                0..=9 if !text.is_empty() => {
                    let mut cut = at.index(text.len());
                    while !text.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    text.truncate(cut);
                }
                10..=14 => text.push_str(&junk),
                _ => {}
            }
            text
        })
        .boxed()
}

// ----- what must hold --------------------------------------------------------

/// Where the problems of a source may come from.
#[derive(Debug, Clone, Copy)]
enum Origin<'a> {
    /// TOML text or a file at this path.
    File(&'a Path),
    /// The environment (and `ZEROPOOL_CONFIG`, naming a missing file).
    Env,
}

/// An error is `Invalid` with at least one problem; every problem says where
/// it came from (the input, or the default a rule between keys blames) and
/// names a key, except a syntax error, which names the file and its line
/// instead.
#[track_caller]
fn well_formed(err: &Error, from: Origin<'_>, input: &str) {
    let text = err.to_string();
    assert!(
        matches!(err, Error::Invalid(_)),
        "not Invalid: {err}\n--- input ---\n{input}"
    );
    assert!(!err.problems().is_empty(), "{err}\n--- input ---\n{input}");
    for p in err.problems() {
        let ctx = || format!("problem: {p}\nerror: {err}\n--- input ---\n{input}");
        match (&p.source, from) {
            (Source::File { path, .. }, Origin::File(want)) => {
                assert_eq!(path, want, "{}", ctx())
            }
            (Source::Env { var }, Origin::Env) => {
                assert!(
                    var.to_ascii_uppercase().starts_with("ZEROPOOL_"),
                    "{}",
                    ctx()
                )
            }
            // A default blamed in a cross-key rule (a batch larger than a
            // cache size the input set).
            (Source::Default, _) => assert!(!p.key.is_empty(), "{}", ctx()),
            _ => panic!("unexpected source: {}", ctx()),
        }
        if p.key.is_empty() {
            let syntax = p.accepted.starts_with("not valid TOML");
            assert!(syntax, "a problem without a key: {}", ctx());
            assert!(
                matches!(p.source, Source::File { line: Some(_), .. }),
                "a syntax error names its line: {}",
                ctx()
            );
        } else {
            assert!(text.contains(&format!("`{}`", p.key)), "{}", ctx());
        }
        assert!(!p.accepted.is_empty(), "says what is accepted: {}", ctx());
    }
}

/// A valid config builds a pool (unless it names NUMA nodes this machine
/// lacks, which only `numa` may say), running with the config's settings;
/// the pool serves a get and a put with exact counters.
#[track_caller]
fn builds(cfg: &PoolConfig, input: &str) {
    let ctx = || format!("config: {cfg:?}\n--- input ---\n{input}");
    let pool = match BufferPool::builder().config(cfg).build() {
        Ok(pool) => pool,
        Err(err) => {
            let keys: Vec<&str> = err.problems().iter().map(|p| p.key.as_str()).collect();
            assert_eq!(keys, ["numa"], "{err}\n{}", ctx());
            return;
        }
    };
    serves(&pool, cfg, &ctx());
}

/// The pool runs with `cfg` and serves a get and a put exactly.
#[track_caller]
fn serves(pool: &BufferPool, cfg: &PoolConfig, ctx: &str) {
    assert_eq!(pool.config(), *cfg, "{ctx}");
    assert_eq!(pool.size_classes(), cfg.size_classes.sizes(), "{ctx}");
    assert!(pool.shards().is_power_of_two(), "{ctx}");
    if let Shards::Count(n) = cfg.shards {
        assert!(pool.shards() >= n, "{ctx}");
    }
    assert_eq!(pool.tls_cache_size(), cfg.tls_cache_size, "{ctx}");
    assert_eq!(pool.batch_size(), cfg.batch_size, "{ctx}");
    let smallest = pool.size_classes()[0];
    let largest = *pool.size_classes().last().unwrap();
    // Only sizes a test can afford to allocate.
    if smallest <= 1 << 20 {
        let g = pool.get(smallest);
        assert!(g.capacity() >= smallest, "{ctx}");
        assert_eq!(g.len(), 0);
        drop(g);
        pool.put(Vec::with_capacity(smallest));
    }
    if largest < 1 << 20 {
        drop(pool.get(largest + 1)); // oversize
    }
    pool.put(Vec::new()); // undersize: freed
    let s = pool.stats();
    // Bytes are tracked whether or not statistics are on.
    assert_eq!(s.bytes_outstanding, 0, "{s}\n{ctx}");
    assert!(s.bytes_retained <= s.max_total_memory, "{s}\n{ctx}");
    if cfg.stats {
        // Counters count only while statistics are on.
        common::assert_balanced(&s);
        assert_eq!(s.objects_outstanding, 0, "{s}\n{ctx}");
        assert_eq!(
            s.adopted,
            1 + usize::from(smallest <= 1 << 20),
            "{s}\n{ctx}"
        );
    }
}

/// A fixed seed and 256 cases (8 under Miri, which interprets each pool
/// built), unless `PROPTEST_*` variables say otherwise.
fn runner() -> TestRunner {
    let base = Config::default();
    let set = |var: &str| std::env::var_os(var).is_some();
    TestRunner::new(Config {
        cases: if set("PROPTEST_CASES") {
            base.cases
        } else if cfg!(miri) {
            8
        } else {
            256
        },
        rng_seed: if set("PROPTEST_RNG_SEED") {
            base.rng_seed
        } else {
            RngSeed::Fixed(0x2e90_9001)
        },
        failure_persistence: None,
        ..base
    })
}

/// Runs `check` on every generated value; a failure shows the shrunk input.
fn run<S: Strategy>(strategy: S, check: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    if let Err(e) = runner().run(&strategy, check) {
        panic!("{e}");
    }
}

// ----- from_toml_str ----------------------------------------------------------

#[test]
fn toml_text_gives_a_keyed_error_or_a_pool() {
    let text = Path::new("<string>");
    run(document(), |doc| {
        match PoolConfig::from_toml_str(&doc) {
            Err(err) => well_formed(&err, Origin::File(text), &doc),
            Ok(cfg) => builds(&cfg, &doc),
        }
        Ok(())
    });
}

#[test]
fn any_text_at_all_gives_an_error_or_a_config() {
    run(
        prop_oneof![".{0,64}", "\\PC{0,64}", "[\\[\\]=\"'{},. a-z0-9\\n]{0,48}"],
        |doc| {
            match PoolConfig::from_toml_str(&doc) {
                Err(err) => well_formed(&err, Origin::File(Path::new("<string>")), &doc),
                Ok(cfg) => builds(&cfg, &doc),
            }
            Ok(())
        },
    );
}

#[test]
fn one_pool_key_with_any_value() {
    // Every key with every kind of value, alone in [pool]: the error names
    // that key.
    run((select(keys()), value()), |(key, v)| {
        let doc = format!("[pool]\n{key} = {v}\n");
        match PoolConfig::from_toml_str(&doc) {
            Err(err) => {
                well_formed(&err, Origin::File(Path::new("<string>")), &doc);
                // (A cache size the default batch does not fit blames the batch.)
                let named = err.problems().iter().all(|p| {
                    p.key.is_empty()
                        || p.key.starts_with(&format!("pool.{key}"))
                        || (key == "tls_cache_size" && p.key == "pool.batch_size")
                });
                prop_assert!(named, "{err}\n{doc}");
            }
            Ok(cfg) => builds(&cfg, &doc),
        }
        Ok(())
    });
}

// ----- a file, through ConfigSet and builders -----------------------------------

#[test]
#[cfg_attr(miri, ignore = "a child process of its own: Miri cannot spawn one")]
fn a_config_file_gives_a_keyed_error_or_pools() {
    const NAME: &str = "a_config_file_gives_a_keyed_error_or_pools";
    if !is_child(NAME) {
        let dir = TempDir::new("proptest-file");
        return run_child(NAME, &[], dir.path());
    }
    let path = std::env::current_dir().unwrap().join("generated.toml");
    run(document(), |doc| {
        std::fs::write(&path, &doc).unwrap();
        match ConfigSet::resolve(Some(&path)) {
            Err(err) => {
                well_formed(&err, Origin::File(&path), &doc);
                // A builder reading the file refuses it too, naming keys.
                let built = BufferPool::builder().config_file(&path).build();
                if let Err(err) = built {
                    well_formed(&err, Origin::File(&path), &doc);
                }
            }
            Ok(set) => {
                assert_eq!(set.file(), Some(path.as_path()));
                assert_eq!(set.pools().next().map(|(n, _)| n), Some("pool"));
                for (table, cfg) in set.pools() {
                    builds(cfg, &doc);
                    // The same pool read by a builder from the file.
                    let b = BufferPool::builder().config_file(&path);
                    let b = match table.strip_prefix("pools.") {
                        Some(name) => b.named(name),
                        None => b,
                    };
                    match b.build() {
                        Ok(pool) => serves(&pool, cfg, &doc),
                        Err(err) => {
                            let only_numa = err.problems().iter().all(|p| p.key.ends_with("numa"));
                            prop_assert!(only_numa, "{err}\n{doc}");
                        }
                    }
                }
            }
        }
        Ok(())
    });
}

// ----- the environment ------------------------------------------------------------

/// A variable name: the prefix in some case, levels joined by `__`, a key;
/// sometimes an empty level, a stray name or `ZEROPOOL_CONFIG`.
fn var_name() -> BoxedStrategy<String> {
    let level = prop_oneof![
        4 => Just("POOL".to_string()),
        2 => select(vec!["POOLS__NET", "pools__web", "POOLS__ÜNÏ", "Pools__a", "POOLS"])
            .prop_map(String::from),
        1 => "[A-Za-z]{1,6}",
        1 => Just(String::new()),
    ];
    let key = prop_oneof![
        4 => select(keys()).prop_map(|k| k.to_ascii_uppercase()),
        1 => select(keys()).prop_map(String::from),
        1 => "[A-Z_]{0,10}",
        1 => "\\PC{1,6}".prop_filter("a variable name", |s| !s.contains('=')),
    ];
    let prefix = select(vec![
        "ZEROPOOL_",
        "ZEROPOOL_",
        "ZEROPOOL_",
        "zeropool_",
        "ZeroPool_",
    ]);
    prop_oneof![
        8 => (prefix, level, select(vec!["__", "__", "___", "_"]), key)
            .prop_map(|(p, l, sep, k)| format!("{p}{l}{sep}{k}")),
        1 => Just("ZEROPOOL_".to_string()),
        1 => Just("ZEROPOOL_CONFIG".to_string()),
        1 => Just("ZEROPOOL__".to_string()),
    ]
    .boxed()
}

/// A variable's value: what an operator might type, TOML or not.
fn var_value() -> BoxedStrategy<String> {
    prop_oneof![
        3 => wordish(),
        3 => value(),
        1 => select(keys()).prop_flat_map(plausible),
    ]
    .prop_map(|v| v.replace('\0', ""))
    .boxed()
}

/// Removes every `ZEROPOOL_*` variable of this process.
fn clear_zeropool_vars() {
    for (name, _) in std::env::vars_os() {
        if name
            .to_string_lossy()
            .to_ascii_uppercase()
            .starts_with("ZEROPOOL_")
        {
            std::env::remove_var(name);
        }
    }
}

#[test]
#[cfg_attr(miri, ignore = "a child process of its own: Miri cannot spawn one")]
fn environment_variables_give_a_keyed_error_or_pools() {
    const NAME: &str = "environment_variables_give_a_keyed_error_or_pools";
    if !is_child(NAME) {
        // This test's child process is the only thread that touches its
        // environment: the variables are set and removed case by case.
        let dir = TempDir::new("proptest-env");
        return run_child(NAME, &[], dir.path());
    }
    let vars = prop::collection::vec((var_name(), var_value()), 1..6);
    run(vars, |vars| {
        clear_zeropool_vars();
        for (name, value) in &vars {
            std::env::set_var(name, value);
        }
        let input = format!("{vars:#?}");
        match ConfigSet::resolve(None) {
            Err(err) => {
                well_formed(&err, Origin::Env, &input);
                for p in err.problems() {
                    // Defaults blamed by a rule between keys need no variable.
                    if let Source::Env { var } = &p.source {
                        let set = vars.iter().any(|(n, _)| n.trim() == var);
                        prop_assert!(set, "{var} was not set: {err}\n{input}");
                    }
                }
                if let Err(err) = BufferPool::from_config() {
                    well_formed(&err, Origin::Env, &input);
                }
            }
            Ok(set) => {
                prop_assert!(set.file().is_none());
                for (table, cfg) in set.pools() {
                    builds(cfg, &input);
                    let b = BufferPool::builder().load_config();
                    let b = match table.strip_prefix("pools.") {
                        Some(name) => b.named(name),
                        None => b,
                    };
                    match b.build() {
                        Ok(pool) => serves(&pool, cfg, &input),
                        Err(err) => {
                            let only_numa = err.problems().iter().all(|p| p.key.ends_with("numa"));
                            prop_assert!(only_numa, "{err}\n{input}");
                        }
                    }
                }
            }
        }
        clear_zeropool_vars();
        Ok(())
    });
}

// ----- found by the generators ------------------------------------------------------

#[test]
fn sizes_too_large_by_their_fraction_are_refused() {
    // 340282366920938463463374607431768211 KB is u128::MAX - 455 bytes; the
    // half kilobyte more does not fit 128 bits. It must be "too large", not
    // a panic (debug) nor a wrapped-around 44 bytes (release).
    let big = "340282366920938463463374607431768211.5 KB";
    assert!(big.parse::<ByteSize>().is_err());
    let err =
        PoolConfig::from_toml_str(&format!("[pool]\nmax_total_memory = {big:?}\n")).unwrap_err();
    assert_eq!(err.problems()[0].key, "pool.max_total_memory");
    assert!(err.to_string().contains("larger than"), "{err}");
}

#[test]
#[cfg_attr(miri, ignore = "a child process of its own: Miri cannot spawn one")]
fn reload_with_a_huge_shard_count_is_an_error() {
    // `reload` checks every key, then compares the fixed ones with the
    // running pool; the comparison must not build a shard map of the
    // refused count (an overflow, or an allocation that aborts: hence a
    // child process).
    const NAME: &str = "reload_with_a_huge_shard_count_is_an_error";
    if !is_child(NAME) {
        let dir = TempDir::new("proptest-shards");
        return run_child(NAME, &[], dir.path());
    }
    let pool = BufferPool::builder().shards(2).build().unwrap();
    for n in [usize::MAX, 1 << 40, 5000] {
        let mut cfg = pool.config();
        cfg.shards = Shards::Count(n);
        let err = pool.reload(&cfg).unwrap_err();
        assert!(err.problems().iter().any(|p| p.key == "shards"), "{err}");
        assert_eq!(pool.shards(), 2);
    }
}

#[test]
#[cfg_attr(miri, ignore = "a child process of its own: Miri cannot spawn one")]
fn a_table_set_by_one_variable_is_blamed_on_it() {
    const NAME: &str = "a_table_set_by_one_variable_is_blamed_on_it";
    if !is_child(NAME) {
        let dir = TempDir::new("proptest-env-table");
        return run_child(
            NAME,
            &[
                ("ZEROPOOL_POOL__SHARDS", "{ shards = 0 }"),
                ("ZEROPOOL_A__B", "{}"),
                (
                    "ZEROPOOL_POOL__SIZE_CLASSES",
                    "{ min = \"1 KiB\", max = \"lots\", per_doubling = 2 }",
                ),
            ],
            dir.path(),
        );
    }
    let err = ConfigSet::resolve(None).unwrap_err();
    let found: Vec<(String, Source)> = err
        .problems()
        .iter()
        .map(|p| (p.key.clone(), p.source.clone()))
        .collect();
    let env = |var: &str| Source::Env { var: var.into() };
    assert_eq!(
        found,
        [
            ("a".into(), env("ZEROPOOL_A__B")),
            ("pool.shards".into(), env("ZEROPOOL_POOL__SHARDS")),
            (
                "pool.size_classes.max".into(),
                env("ZEROPOOL_POOL__SIZE_CLASSES")
            ),
        ],
        "{err}"
    );
    assert!(
        err.to_string().contains("from env ZEROPOOL_POOL__SHARDS"),
        "{err}"
    );
}

#[test]
fn the_empty_key_is_named_as_toml_writes_it() {
    // An empty `key` means a problem with the whole file; the key `""` is
    // a key like any other.
    for doc in ["[\"\"]\n", "\"\" = 1\n", "[pool]\n\"\" = 1\n"] {
        let err = PoolConfig::from_toml_str(doc).unwrap_err();
        let keys: Vec<&str> = err.problems().iter().map(|p| p.key.as_str()).collect();
        let want = if doc.starts_with("[pool]") {
            "pool."
        } else {
            "\"\""
        };
        assert_eq!(keys, [want], "{err}");
        assert!(err.to_string().contains(&format!("`{want}`")), "{err}");
    }
}
