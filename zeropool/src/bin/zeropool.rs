//! `zeropool`: check a pool configuration and show what it resolves to.
//!
//! ```text
//! zeropool check [FILE]   every pool's settings, each with its source; exit 1 listing every problem
//! zeropool topology       CPUs, NUMA nodes, and the shard map `shards = "auto"` gives
//! zeropool topology --synthetic DESC   the same for an hwloc synthetic topology
//! ```

use std::path::Path;
use std::process::ExitCode;
use zeropool::numa::{Placement, PlacementMode, ShardMap, Topology};
use zeropool::{ByteSize, ConfigSet, Numa, PoolConfig, Shards};

const USAGE: &str = "\
zeropool: check a pool configuration and show what it resolves to

Usage:
  zeropool check [FILE]   Resolve FILE (else $ZEROPOOL_CONFIG, else ./zeropool.toml
                          if present) with the ZEROPOOL_* environment over the
                          defaults; print every pool's settings with the source
                          of each value. Exits 1 listing every problem.
  zeropool topology       Print CPUs, NUMA nodes (their CPUs and memory),
                          whether NUMA support is built, what `numa = \"auto\"`
                          picks, and the shard map `shards = \"auto\"` produces.
  zeropool topology --synthetic DESC
                          The same for an hwloc synthetic topology, e.g.
                          \"pack:2 numa:1 core:2 pu:1\" (needs the `numa` feature).
  zeropool --help         Print this help.
  zeropool --version      Print the version.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["check"] => check(None),
        ["check", file] if !file.starts_with('-') => check(Some(Path::new(file))),
        ["topology"] => topology(None),
        ["topology", "--synthetic", desc] => topology(Some(desc)),
        ["topology", arg] if arg.starts_with("--synthetic=") => {
            topology(Some(&arg["--synthetic=".len()..]))
        }
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
        _ => None,
    }
}

fn topology(synthetic: Option<&str>) -> ExitCode {
    let t = match synthetic {
        None => Topology::detect(),
        Some(desc) => match Topology::synthetic(desc) {
            Ok(t) => t,
            Err(err) => {
                for problem in err.problems() {
                    eprintln!("error: --synthetic {desc:?}: {}", problem.accepted);
                }
                return ExitCode::from(1);
            }
        },
    };
    print_support(&t);
    print_nodes(&t);
    let placement = Placement::resolve(&Numa::Auto, &t).expect("\"auto\" always resolves");
    print_auto_placement(&t, &placement);
    print_shard_map(&t, &ShardMap::new(&t, &placement, Shards::Auto));
    ExitCode::SUCCESS
}

/// CPUs, nodes in one line, and whether NUMA support is built and binds.
fn print_support(t: &Topology) {
    if t.is_synthetic() {
        println!("CPUs: {} (synthetic topology)", t.cpus().len());
    } else {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        println!("CPUs: {cpus} (available to this process)");
    }
    match (t.fallback_reason(), cfg!(feature = "numa")) {
        (None, _) => println!("NUMA: {t}"),
        (Some(_), false) => println!("NUMA: 1 NUMA node (NUMA support not built)"),
        (Some(reason), true) => println!("NUMA: 1 NUMA node ({reason})"),
    }
    match (t.fallback_reason(), cfg!(feature = "numa")) {
        (Some(_), false) => println!(
            "NUMA support: not built (zeropool's `numa` feature is off); the pool runs as one node"
        ),
        (Some(reason), true) => {
            println!("NUMA support: built, but the pool runs as one node: {reason}")
        }
        (None, _) if t.is_synthetic() => println!(
            "NUMA support: built (hwloc); memory binding: none on a synthetic topology \
             (placement is recorded, not bound)"
        ),
        (None, _) if t.can_bind_memory() => {
            println!("NUMA support: built (hwloc); memory binding: supported")
        }
        (None, _) => println!(
            "NUMA support: built (hwloc); memory binding: not supported here \
             (placement is recorded, not bound)"
        ),
    }
}

/// One line per node: its numbers, CPUs and memory.
fn print_nodes(t: &Topology) {
    println!("nodes:");
    for node in t.nodes() {
        let memory = match node.memory {
            0 => "memory unknown".to_string(),
            m => format!("memory {}", human(m)),
        };
        let cpus = match node.cpus.len() {
            0 => "no CPUs".to_string(),
            n => format!("CPUs {} ({n})", ranges(&node.cpus)),
        };
        println!(
            "  node {} (os {}): {cpus}, {memory}",
            node.index, node.os_index
        );
    }
}

/// What `numa = "auto"` picks on `t`.
fn print_auto_placement(t: &Topology, placement: &Placement) {
    match placement.mode() {
        PlacementMode::Off if t.nodes().len() == 1 => {
            println!("numa = \"auto\" -> off (one node)")
        }
        PlacementMode::Off => println!("numa = \"auto\" -> off (fewer than 2 nodes with CPUs)"),
        _ => {
            let nodes: Vec<String> = placement
                .nodes()
                .iter()
                .map(|&n| t.nodes()[n].os_index.to_string())
                .collect();
            println!(
                "numa = \"auto\" -> local: fresh memory on the requesting thread's node (nodes {})",
                nodes.join(", ")
            )
        }
    }
}

/// The shard map of `shards = "auto"`: threads to shards for one group,
/// else each node's group and the CPUs it serves.
fn print_shard_map(t: &Topology, map: &ShardMap) {
    let groups = map.groups();
    if let [group] = groups {
        let shards = group.len;
        println!(
            "shards = \"auto\" -> {shards} shards (CPUs rounded up to a power of two, at most 64)"
        );
        println!("shard map (thread i -> shard i mod {shards}):");
        let cpus = t.cpus().len();
        let threads = cpus.max(shards).min(64);
        for i in 0..threads {
            println!("  thread {i:>2} -> shard {}", map.home_shard(group.node, i));
        }
        if cpus.max(shards) > threads {
            println!("  ... (and so on)");
        }
        return;
    }
    println!(
        "shards = \"auto\" -> {} shards in {} groups (per node: its CPUs rounded up to a \
         power of two, at most 64)",
        map.len(),
        groups.len()
    );
    println!("shard map (thread i on node n -> shard first(n) + i mod size(n)):");
    for g in groups {
        let node = &t.nodes()[g.node];
        let shards = match g.len {
            1 => format!("shard {}", g.first),
            _ => format!("shards {}-{}", g.first, g.first + g.len - 1),
        };
        let cpus = match node.cpus.len() {
            0 => "no CPUs".to_string(),
            _ => format!("CPUs {}", ranges(&node.cpus)),
        };
        println!(
            "  node {} (os {}): {shards:<12} <- {cpus}",
            g.node, node.os_index
        );
    }
}

/// CPU numbers as ranges: `0-3,8,10-11`.
fn ranges(cpus: &[usize]) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            cpus[i].to_string()
        } else {
            format!("{}-{}", cpus[i], cpus[j])
        });
        i = j + 1;
    }
    out.join(",")
}

/// Bytes in the largest binary unit that keeps a leading digit.
fn human(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    match UNITS.iter().find(|&&(_, m)| bytes >= m) {
        Some(&(unit, m)) if bytes.is_multiple_of(m) => format!("{} {unit}", bytes / m),
        Some(&(unit, m)) => format!("{:.1} {unit}", bytes as f64 / m as f64),
        None => format!("{bytes} B"),
    }
}
