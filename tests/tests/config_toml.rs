//! `PoolConfig` from TOML: every key and value form, every problem listed at
//! once with its key, file line and what is accepted, "did you mean", human
//! sizes, and serde both ways.

mod config_support;

use config_support::{keys, TempDir};
use zeropool::{
    ByteSize, Error, Numa, OnExhausted, PoolConfig, Problem, Shards, SizeClassSpec, Source,
};

fn problems(text: &str) -> (Vec<Problem>, String) {
    let err = PoolConfig::from_toml_str(text).expect_err("the text is invalid");
    let message = err.to_string();
    let Error::Invalid(problems) = err else {
        panic!("unexpected error kind: {message}")
    };
    (problems, message)
}

fn line(p: &Problem) -> Option<usize> {
    match &p.source {
        Source::File { line, .. } => *line,
        other => panic!("not from the file: {other:?}"),
    }
}

#[test]
fn every_key_and_form_is_read() {
    let c = PoolConfig::from_toml_str(
        r#"
        [pool]
        shards = 6
        numa = [0, 1]
        size_classes = ["4 KiB", "16 KiB", "64 KiB", "256 KiB", "1 MiB"]
        tls_cache_size = 16
        batch_size = 8
        max_total_memory = "1.5 GiB"
        max_outstanding_memory = 4294967296
        on_exhausted = "wait"
        stats = false
        wipe_on_return = true
        "#,
    )
    .unwrap();
    assert_eq!(c.shards, Shards::Count(6));
    assert_eq!(c.shards.resolve(), 8, "rounded up to a power of two");
    assert_eq!(c.numa, Numa::Nodes(vec![0, 1]));
    assert_eq!(
        c.size_classes.sizes(),
        [4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20]
    );
    assert_eq!((c.tls_cache_size, c.batch_size), (16, 8));
    assert_eq!(c.max_total_memory, ByteSize(3 << 29));
    assert_eq!(c.max_outstanding_memory, Some(ByteSize(4 << 30)));
    assert_eq!(c.on_exhausted, OnExhausted::Wait);
    assert!(!c.stats && c.wipe_on_return);

    let c = PoolConfig::from_toml_str(
        "[pool]\nshards = \"auto\"\nnuma = \"interleave\"\nsize_classes = { min = \"256 B\", max = \"64 MiB\", per_doubling = 4 }\n",
    )
    .unwrap();
    assert_eq!(c.shards, Shards::Auto);
    assert_eq!(c.numa, Numa::Interleave);
    let sizes = c.size_classes.sizes();
    assert_eq!((sizes[0], *sizes.last().unwrap()), (256, 64 << 20));
    for name in ["auto", "off", "local", "interleave"] {
        assert!(PoolConfig::from_toml_str(&format!("[pool]\nnuma = \"{name}\"")).is_ok());
    }
}

#[test]
fn missing_keys_and_tables_keep_the_defaults() {
    assert_eq!(
        PoolConfig::from_toml_str("").unwrap(),
        PoolConfig::default()
    );
    assert_eq!(
        PoolConfig::from_toml_str("[pool]").unwrap(),
        PoolConfig::default()
    );
    let c = PoolConfig::default();
    assert_eq!(c.shards, Shards::Auto);
    assert_eq!(c.size_classes.sizes().first(), Some(&256));
    assert_eq!(c.size_classes.sizes().last(), Some(&(4 << 20)));
    assert_eq!((c.tls_cache_size, c.batch_size), (8, 4));
    assert_eq!(c.max_total_memory, ByteSize(1 << 30));
    assert_eq!(c.max_outstanding_memory, None);
    assert_eq!(c.on_exhausted, OnExhausted::Allocate);
    assert!(c.stats && !c.wipe_on_return);
}

#[test]
fn values_remember_their_file_line() {
    let c = PoolConfig::from_toml_str("# comment\n[pool]\n\nstats = false\nshards = 2\n").unwrap();
    assert_eq!(
        c.source("stats"),
        Some(Source::File {
            path: "<string>".into(),
            line: Some(4)
        })
    );
    assert_eq!(
        c.source("shards").map(|s| s.to_string()).unwrap(),
        "from <string> line 5"
    );
    assert_eq!(c.source("batch_size"), Some(Source::Default));
    assert_eq!(c.source("no_such_key"), None);
}

#[test]
fn every_problem_is_listed_at_once_with_line_and_accepted_values() {
    let text = r#"[pool]
shards = 0
tls_cache_size = 8
batch_size = 99
max_total_memroy = "1 GiB"
size_classes = ["4 KiB", "2 KiB"]
numa = "sideways"
on_exhausted = "panic"
stats = "yes"
max_outstanding_memory = "12 parsecs"
"#;
    let (p, message) = problems(text);
    let found: Vec<(&str, Option<usize>)> = p.iter().map(|p| (p.key.as_str(), line(p))).collect();
    assert_eq!(
        found,
        [
            ("pool.shards", Some(2)),
            ("pool.batch_size", Some(4)),
            ("pool.max_total_memroy", Some(5)),
            ("pool.size_classes", Some(6)),
            ("pool.numa", Some(7)),
            ("pool.on_exhausted", Some(8)),
            ("pool.stats", Some(9)),
            ("pool.max_outstanding_memory", Some(10)),
        ]
    );
    assert!(
        message.contains(
            "`pool.batch_size` = 99 (from <string> line 4): an integer from 1 to tls_cache_size (8)"
        ),
        "{message}"
    );
    assert!(
        message.contains("did you mean `max_total_memory`?"),
        "{message}"
    );
    assert!(message.contains("4096 is followed by 2048"), "{message}");
    assert!(
        message.contains("\"allocate\", \"error\" or \"wait\""),
        "{message}"
    );
    assert!(message.contains("unknown unit `parsecs`"), "{message}");
    assert_eq!(
        message.lines().count(),
        1 + p.len(),
        "one line per problem:\n{message}"
    );
    for problem in &p {
        assert!(
            !problem.accepted.is_empty() && !problem.value.is_empty(),
            "{problem:?}"
        );
    }
}

#[test]
fn problems_in_named_pools_and_unknown_tables_are_reported() {
    let text = r#"
[pool]
shards = 2

[pools.net]
max_total_memory = "-5 GiB"
size_classes = { min = "1 KiB", mx = "2 MiB", per_doubling = 4 }

[pol]
x = 1
"#;
    let (p, message) = problems(text);
    assert_eq!(
        p.iter().map(|p| p.key.as_str()).collect::<Vec<_>>(),
        [
            "pools.net.max_total_memory",
            "pools.net.size_classes.mx",
            "pol"
        ]
    );
    assert!(
        message.contains("negative sizes are not allowed"),
        "{message}"
    );
    assert!(message.contains("did you mean `max`?"), "{message}");
    assert!(message.contains("did you mean `pool`?"), "{message}");
    // A key at the top level points to where it belongs.
    let (p, _) = problems("shards = 2\n");
    assert!(
        p[0].accepted.contains("`shards` under [pool]"),
        "{}",
        p[0].accepted
    );
}

#[test]
fn no_suggestion_when_nothing_is_close() {
    let (p, _) = problems("[pool]\ncolour = \"red\"\n");
    assert_eq!(p[0].key, "pool.colour");
    assert!(!p[0].accepted.contains("did you mean"), "{}", p[0].accepted);
    assert!(
        p[0].accepted.contains("max_total_memory"),
        "lists the keys: {}",
        p[0].accepted
    );
}

#[test]
fn syntax_errors_name_the_line() {
    let (p, message) = problems("[pool]\nshards = 2\nbatch_size = = 3\n");
    assert_eq!(p.len(), 1);
    assert_eq!(line(&p[0]), Some(3));
    assert!(message.contains("not valid TOML"), "{message}");
    let (p, _) = problems("[pool\n");
    assert_eq!(line(&p[0]), Some(1));
}

#[test]
fn bad_size_class_specs() {
    let cases = [
        ("size_classes = []", "the list is empty"),
        (
            "size_classes = { min = \"8 KiB\", max = \"4 KiB\", per_doubling = 2 }",
            "above max",
        ),
        (
            "size_classes = { min = \"1 KiB\", max = \"4 KiB\", per_doubling = 0 }",
            "per_doubling is 0",
        ),
        (
            "size_classes = { min = \"1 KiB\", max = \"4 KiB\" }",
            "missing `per_doubling`",
        ),
        (
            "size_classes = { min = \"0 B\", max = \"4 KiB\", per_doubling = 1 }",
            "out of range",
        ),
        (
            "size_classes = { min = \"1 B\", max = \"1 TiB\", per_doubling = 64 }",
            "sizes",
        ),
        ("size_classes = [\"4 KiB\", \"lots\"]", "item 2"),
        ("size_classes = 4096", "a list of sizes"),
    ];
    for (line, why) in cases {
        let (p, message) = problems(&format!("[pool]\n{line}\n"));
        assert!(
            p[0].key.starts_with("pool.size_classes"),
            "{line}: {message}"
        );
        assert!(message.contains(why), "{line}: {message}");
    }
}

#[test]
fn human_sizes() {
    let read = |v: &str| PoolConfig::from_toml_str(&format!("[pool]\nmax_total_memory = {v}\n"));
    let ok = [
        ("\"256 B\"", 256u64),
        ("\"4 KiB\"", 4096),
        ("\"1.5 GiB\"", 3 << 29),
        ("\"64MiB\"", 64 << 20),
        ("\"2 GB\"", 2_000_000_000),
        ("1048576", 1 << 20),
        ("0", 0),
    ];
    for (v, bytes) in ok {
        assert_eq!(read(v).unwrap().max_total_memory, ByteSize(bytes), "{v}");
    }
    let bad = [
        ("-1", "negative"),
        ("\"-1 KiB\"", "negative"),
        ("\"1 lightyear\"", "unknown unit"),
        ("\"16384 PiB\"", "larger than"),
        ("\"1.5 B\"", "whole number"),
        ("1.5", "whole bytes"),
        ("true", "not a size"),
    ];
    for (v, why) in bad {
        let err = read(v).unwrap_err().to_string();
        assert!(err.contains(why), "{v}: {err}");
        assert!(err.contains("KiB"), "says what is accepted: {err}");
    }
}

#[test]
fn load_reads_a_file_and_names_it() {
    let dir = TempDir::new("load");
    let path = dir.write("z.toml", "[pool]\ntls_cache_size = 16\nbatch_size = 0\n");
    let err = PoolConfig::load(&path).unwrap_err();
    assert_eq!(keys(&err), ["pool.batch_size"]);
    assert_eq!(
        err.problems()[0].source,
        Source::File {
            path: path.clone(),
            line: Some(3)
        }
    );
    assert!(err.to_string().contains(&path.display().to_string()));

    std::fs::write(&path, "[pool]\ntls_cache_size = 16\n").unwrap();
    assert_eq!(PoolConfig::load(&path).unwrap().tls_cache_size, 16);

    let missing = dir.path().join("missing.toml");
    let err = PoolConfig::load(&missing).unwrap_err();
    assert_eq!(keys(&err), ["config_file"]);
    assert!(err.to_string().contains("missing.toml"), "{err}");
}

#[test]
fn serde_round_trip() {
    let text = r#"
        [pool]
        shards = 4
        numa = [1]
        size_classes = { min = "1 KiB", max = "1 MiB", per_doubling = 2 }
        tls_cache_size = 16
        batch_size = 8
        max_total_memory = "96 MiB"
        max_outstanding_memory = "1 GiB"
        on_exhausted = "error"
        stats = false
        wipe_on_return = true
    "#;
    let c = PoolConfig::from_toml_str(text).unwrap();
    let file = toml::to_string(&std::collections::BTreeMap::from([("pool", &c)])).unwrap();
    assert!(file.contains("max_total_memory = \"96 MiB\""), "{file}");
    let back = PoolConfig::from_toml_str(&file).unwrap();
    assert_eq!(back, c);
    let written = toml::to_string(&c).unwrap();
    let direct: PoolConfig = toml::from_str(&written).unwrap();
    assert_eq!(direct, c);
    assert_eq!(direct.source("shards"), Some(Source::Code));
    // Defaults serialize too (an unset cap is left out).
    let d = toml::to_string(&PoolConfig::default()).unwrap();
    assert!(!d.contains("max_outstanding_memory"), "{d}");
    assert_eq!(
        toml::from_str::<PoolConfig>(&d).unwrap(),
        PoolConfig::default()
    );
}

#[test]
fn deserialize_checks_every_key() {
    let err = toml::from_str::<PoolConfig>("shards = 0\nbogus = 1\nbatch_size = 100\n")
        .unwrap_err()
        .to_string();
    for needle in ["`shards` = 0", "`bogus`", "`batch_size` = 100"] {
        assert!(err.contains(needle), "{needle}: {err}");
    }
}

#[test]
fn problem_display_names_key_value_source_and_accepted() {
    let (p, _) = problems("[pool]\n\n\n\n\n\ntls_cache_size = 8\nbatch_size = 99\n");
    assert_eq!(
        p[0].to_string(),
        "`pool.batch_size` = 99 (from <string> line 8): an integer from 1 to tls_cache_size (8)"
    );
    assert!(matches!(
        PoolConfig::default().size_classes,
        SizeClassSpec::Geometric { .. }
    ));
}
