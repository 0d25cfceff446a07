//! Every file under `configs/` validates and builds its pools; the reference
//! `zeropool.toml` documents every key with its default.

use std::path::PathBuf;
use zeropool::{BufferPool, PoolConfig};

fn configs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../configs")
}

fn config_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(configs_dir())
        .expect("configs/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_expected_files_are_there() {
    let names: Vec<String> = config_files()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "zeropool.toml",
        "small-container.toml",
        "network-service.toml",
        "memory-constrained.toml",
        "numa-2-socket.toml",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "configs/{expected} is missing: {names:?}"
        );
    }
}

/// A builder on a two-node machine where one can be had (a synthetic
/// topology needs the `numa` feature): the 2-socket file names node 1.
fn with_two_nodes(builder: zeropool::PoolBuilder<Vec<u8>>) -> zeropool::PoolBuilder<Vec<u8>> {
    match zeropool::numa::Topology::synthetic("pack:2 numa:1 core:2 pu:1") {
        Ok(two) => builder.topology(two),
        Err(_) => builder,
    }
}

#[test]
#[cfg_attr(
    not(feature = "numa"),
    ignore = "configs/numa-2-socket.toml names node 1: needs the `numa` feature"
)]
fn every_config_file_validates_and_builds() {
    for path in config_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let config = PoolConfig::load(&path)
            .unwrap_or_else(|e| panic!("{} does not validate:\n{e}", path.display()));
        with_two_nodes(BufferPool::builder().config(&config))
            .build()
            .unwrap_or_else(|e| panic!("{}: [pool] does not build:\n{e}", path.display()));
        // Every named table builds too.
        let doc: toml::Table = toml::from_str(&text).unwrap();
        if let Some(pools) = doc.get("pools").and_then(|p| p.as_table()) {
            for name in pools.keys() {
                let pool = with_two_nodes(BufferPool::builder())
                    .config_file(&path)
                    .named(name.as_str())
                    .build()
                    .unwrap_or_else(|e| panic!("{}: [pools.{name}]:\n{e}", path.display()));
                assert_eq!(pool.config_section(), format!("pools.{name}"));
            }
        }
    }
}

#[test]
fn the_reference_file_shows_every_key_with_its_default() {
    let text = std::fs::read_to_string(configs_dir().join("zeropool.toml")).unwrap();
    // Uncomment the `# key = value` lines of [pool]: the defaults, exactly.
    let mut uncommented = String::from("[pool]\n");
    let mut seen = Vec::new();
    let mut in_pool = false;
    for line in text.lines() {
        if line.starts_with('[') || line.starts_with("# [") {
            in_pool = line == "[pool]";
            continue;
        }
        let Some(setting) = line.strip_prefix("# ") else {
            continue;
        };
        let Some((key, _)) = setting.split_once(" = ") else {
            continue;
        };
        if in_pool
            && key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            && !seen.contains(&key)
        {
            seen.push(key);
            uncommented.push_str(setting);
            uncommented.push('\n');
        }
    }
    let defaults = PoolConfig::default();
    for s in defaults.settings() {
        assert!(
            seen.contains(&s.key),
            "configs/zeropool.toml does not show `{}`",
            s.key
        );
    }
    let parsed =
        PoolConfig::from_toml_str(&uncommented).unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
    for s in parsed.settings() {
        // Optional keys show an example value, not their (absent) default.
        if s.key != "max_outstanding_memory" && s.key != "trim_after" {
            assert_eq!(
                parsed.value_text(s.key),
                defaults.value_text(s.key),
                "configs/zeropool.toml shows a default for `{}` that is not the default",
                s.key
            );
        }
    }
    assert_eq!(defaults.max_outstanding_memory, None, "no cap by default");
    assert_eq!(defaults.trim_after, None, "no idle trimming by default");
}
