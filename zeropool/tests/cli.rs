//! The `zeropool` binary: `check` prints every pool's settings with their
//! sources and fails listing every problem; `topology` prints the shard map.

mod support;

use std::path::{Path, PathBuf};

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("zp-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the binary in `dir` with only the given `ZEROPOOL_*` variables.
fn zeropool(args: &[&str], dir: &Path, vars: &[(&str, &str)]) -> (i32, String, String) {
    support::run_zeropool(args, Some(dir), &["ZEROPOOL_"], vars)
}

const GOOD: &str = r#"[pool]
shards = 6
size_classes = ["4 KiB", "16 KiB", "64 KiB"]
max_total_memory = "512 MiB"

[pools.net]
shards = "auto"
tls_cache_size = 16
batch_size = 8
"#;

#[test]
fn check_prints_every_pool_with_sources() {
    let dir = Scratch::new("good");
    let path = dir.write("zeropool.toml", GOOD);
    let (code, out, err) = zeropool(
        &["check", path.to_str().unwrap()],
        &dir.0,
        &[("ZEROPOOL_POOLS__NET__MAX_TOTAL_MEMORY", "2 GiB")],
    );
    assert_eq!(code, 0, "{out}{err}");
    let file = path.display().to_string();
    assert!(out.contains(&format!("config file: {file}")), "{out}");
    assert!(
        out.contains("environment: ZEROPOOL_POOLS__NET__MAX_TOTAL_MEMORY"),
        "{out}"
    );
    assert!(
        out.contains("[pool]") && out.contains("[pools.net]"),
        "{out}"
    );
    let line = |key: &str, table: &str| {
        let section = out.split(&format!("[{table}]")).nth(1).unwrap();
        section
            .lines()
            .find(|l| l.trim_start().starts_with(key))
            .unwrap_or_else(|| panic!("no {key} in [{table}]:\n{out}"))
            .to_string()
    };
    let shards = line("shards", "pool");
    assert!(shards.contains("= 6"), "{shards}");
    assert!(shards.contains(&format!("from {file} line 2")), "{shards}");
    assert!(
        shards.contains("8 shards (rounded up to a power of two)"),
        "{shards}"
    );
    assert!(line("size_classes", "pool").contains("3 classes, 4 KiB to 64 KiB"));
    assert!(line("tls_cache_size", "pool").contains("# default"));
    let net_budget = line("max_total_memory", "pools.net");
    assert!(net_budget.contains("\"2 GiB\""), "{net_budget}");
    assert!(
        net_budget.contains("from env ZEROPOOL_POOLS__NET__MAX_TOTAL_MEMORY"),
        "{net_budget}"
    );
    assert!(line("shards", "pools.net").contains("auto -> "), "{out}");
    assert!(out.contains("ok: 2 pools valid"), "{out}");
}

#[test]
fn check_fails_listing_every_problem() {
    let dir = Scratch::new("bad");
    let path = dir.write(
        "bad.toml",
        "[pool]\nshards = 0\nbatch_size = 99\nmax_total_memroy = \"1 GiB\"\n\n[pools.net]\nstats = \"yes\"\n",
    );
    let (code, out, err) = zeropool(&["check", path.to_str().unwrap()], &dir.0, &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.is_empty(), "nothing printed as if valid: {out}");
    let file = path.display().to_string();
    for needle in [
        format!("`pool.shards` = 0 (from {file} line 2)"),
        format!(
            "`pool.batch_size` = 99 (from {file} line 3): an integer from 1 to tls_cache_size (8)"
        ),
        "did you mean `max_total_memory`?".to_string(),
        format!("`pools.net.stats` = \"yes\" (from {file} line 7): true or false"),
    ] {
        assert!(err.contains(&needle), "{needle}\n{err}");
    }
    assert_eq!(
        err.lines().filter(|l| l.starts_with("  - ")).count(),
        4,
        "{err}"
    );
}

#[test]
fn check_reports_syntax_errors_and_missing_files() {
    let dir = Scratch::new("syntax");
    let path = dir.write("broken.toml", "[pool]\nshards = 2\n[pools.net\n");
    let (code, _, err) = zeropool(&["check", path.to_str().unwrap()], &dir.0, &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("not valid TOML") && err.contains("line 3"),
        "{err}"
    );

    let (code, _, err) = zeropool(&["check", "nope.toml"], &dir.0, &[]);
    assert_eq!(code, 1);
    assert!(err.contains("nope.toml"), "{err}");
}

#[test]
fn check_discovers_the_file_and_reads_the_environment() {
    let dir = Scratch::new("discover");
    let (code, out, _) = zeropool(&["check"], &dir.0, &[]);
    assert_eq!(code, 0);
    assert!(out.contains("config file: none"), "{out}");
    assert!(out.contains("ok: 1 pool valid"), "{out}");

    dir.write("zeropool.toml", GOOD);
    let (code, out, _) = zeropool(&["check"], &dir.0, &[("ZEROPOOL_POOL__STATS", "false")]);
    assert_eq!(code, 0);
    assert!(out.contains("config file: zeropool.toml"), "{out}");
    assert!(out.contains("from env ZEROPOOL_POOL__STATS"), "{out}");

    let other = dir.write("other.toml", "[pool]\nshards = 1\n");
    let (code, out, _) = zeropool(
        &["check"],
        &dir.0,
        &[("ZEROPOOL_CONFIG", other.to_str().unwrap())],
    );
    assert_eq!(code, 0);
    assert!(out.contains("other.toml"), "{out}");

    let (code, _, err) = zeropool(&["check"], &dir.0, &[("ZEROPOOL_POOL__SHARDZ", "2")]);
    assert_eq!(code, 1);
    assert!(err.contains("did you mean ZEROPOOL_POOL__SHARDS?"), "{err}");
}

#[test]
fn check_accepts_every_shipped_config() {
    let configs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../configs");
    let mut n = 0;
    for entry in std::fs::read_dir(&configs).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let (code, out, err) = zeropool(&["check", path.to_str().unwrap()], &configs, &[]);
            assert_eq!(code, 0, "{}:\n{out}{err}", path.display());
            n += 1;
        }
    }
    assert!(n >= 5);
}

#[test]
fn topology_prints_the_shard_map() {
    let dir = Scratch::new("topology");
    let (code, out, _) = zeropool(&["topology"], &dir.0, &[]);
    assert_eq!(code, 0);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let shards = zeropool::auto_shards();
    assert!(out.contains(&format!("CPUs: {cpus}")), "{out}");
    let numa = if cfg!(feature = "numa") {
        "NUMA support: built (hwloc)"
    } else {
        "1 NUMA node (NUMA support not built)"
    };
    assert!(out.contains(numa), "{out}");
    assert!(
        out.contains(&format!("shards = \"auto\" -> {shards} shards")),
        "{out}"
    );
    assert!(out.contains("thread  0 -> shard 0"), "{out}");
    if cpus > 1 {
        assert!(
            out.contains(&format!("thread  1 -> shard {}", 1 % shards)),
            "{out}"
        );
    }
}

#[test]
fn help_and_usage_errors() {
    let dir = Scratch::new("help");
    let (code, out, _) = zeropool(&["--help"], &dir.0, &[]);
    assert_eq!(code, 0);
    assert!(
        out.contains("zeropool check [FILE]") && out.contains("zeropool topology"),
        "{out}"
    );
    let (code, _, err) = zeropool(&["frobnicate"], &dir.0, &[]);
    assert_eq!(code, 2);
    assert!(err.contains("unexpected arguments: frobnicate"), "{err}");
    let (code, _, _) = zeropool(&["check", "a.toml", "b.toml"], &dir.0, &[]);
    assert_eq!(code, 2);
    let (code, out, _) = zeropool(&["--version"], &dir.0, &[]);
    assert_eq!(code, 0);
    assert!(out.starts_with("zeropool "), "{out}");
}
