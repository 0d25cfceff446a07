//! `zeropool`: check a pool configuration and show what it resolves to.
//!
//! ```text
//! zeropool check [FILE]   every pool's settings, each with its source; exit 1 listing every problem
//! zeropool topology       CPUs, NUMA nodes, and the shard map `shards = "auto"` gives
//! ```

use std::path::Path;
use std::process::ExitCode;
use zeropool::{ByteSize, ConfigSet, PoolConfig, Shards};

const USAGE: &str = "\
zeropool: check a pool configuration and show what it resolves to

Usage:
  zeropool check [FILE]   Resolve FILE (else $ZEROPOOL_CONFIG, else ./zeropool.toml
                          if present) with the ZEROPOOL_* environment over the
                          defaults; print every pool's settings with the source
                          of each value. Exits 1 listing every problem.
  zeropool topology       Print CPUs, NUMA nodes and the shard map that
                          `shards = \"auto\"` produces.
  zeropool --help         Print this help.
  zeropool --version      Print the version.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["check"] => check(None),
        ["check", file] if !file.starts_with('-') => check(Some(Path::new(file))),
        ["topology"] => topology(),
        [] | ["--help" | "-h" | "help"] => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        ["--version" | "-V"] => {
            println!("zeropool {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("error: unexpected arguments: {}\n\n{USAGE}", args.join(" "));
            ExitCode::from(2)
        }
    }
}

fn check(file: Option<&Path>) -> ExitCode {
    let set = match ConfigSet::resolve(file) {
        Ok(set) => set,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(1);
        }
    };
    match set.file() {
        Some(path) => println!("config file: {}", path.display()),
        None => println!(
            "config file: none (no file named, $ZEROPOOL_CONFIG unset, no ./zeropool.toml)"
        ),
    }
    let vars = env_vars();
    if vars.is_empty() {
        println!("environment: no ZEROPOOL_* variables");
    } else {
        println!("environment: {}", vars.join(", "));
    }
    for (table, config) in set.pools() {
        println!();
        println!("[{table}]");
        print_pool(config);
    }
    println!();
    let n = set.pools().count();
    println!("ok: {n} pool{} valid", if n == 1 { "" } else { "s" });
    ExitCode::SUCCESS
}

fn env_vars() -> Vec<String> {
    let mut vars: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| k.to_ascii_uppercase().starts_with("ZEROPOOL_"))
        .collect();
    vars.sort();
    vars
}

fn print_pool(config: &PoolConfig) {
    for setting in config.settings() {
        let value = if setting.value.is_empty() {
            "(unset)".to_string()
        } else {
            setting.value.clone()
        };
        let note = note(config, setting.key)
            .map(|n| format!("; {n}"))
            .unwrap_or_default();
        println!(
            "  {:<22} = {:<34} # {}{note}",
            setting.key, value, setting.source
        );
    }
}

/// What a value resolves to, where that is not obvious.
fn note(config: &PoolConfig, key: &str) -> Option<String> {
    match key {
        "shards" => {
            let n = config.shards.resolve();
            Some(match config.shards {
                Shards::Auto => format!("auto -> {n} shards"),
                Shards::Count(c) if c != n => {
                    format!("{n} shards (rounded up to a power of two)")
                }
                Shards::Count(_) => format!("{n} shards"),
            })
        }
        "size_classes" => {
            let sizes = config.size_classes.sizes();
            let (first, last) = (sizes.first()?, sizes.last()?);
            Some(format!(
                "{} classes, {} to {}",
                sizes.len(),
                ByteSize::from(*first),
                ByteSize::from(*last)
            ))
        }
        "numa" => Some("not acted on yet".into()),
        "max_outstanding_memory" | "on_exhausted" => Some("not enforced yet".into()),
        _ => None,
    }
}

fn topology() -> ExitCode {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let shards = zeropool::auto_shards();
    println!("CPUs: {cpus} (available to this process)");
    println!("NUMA: 1 NUMA node (NUMA support not built)");
    println!(
        "shards = \"auto\" -> {shards} shards (CPUs rounded up to a power of two, at most 64)"
    );
    println!("shard map (thread i -> shard i mod {shards}):");
    let threads = cpus.max(shards).min(64);
    for i in 0..threads {
        println!("  thread {i:>2} -> shard {}", i % shards);
    }
    if cpus.max(shards) > threads {
        println!("  ... (and so on)");
    }
    ExitCode::SUCCESS
}
