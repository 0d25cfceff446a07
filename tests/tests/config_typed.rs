//! A pooled type names its config table: `Pool::<Frame>::from_config()`
//! reads `[pools.frames]`. (`#[poolable(config = "frames")]` generates the
//! `config_section` written by hand here.)

mod config_support;

use config_support::{is_child, run_child, TempDir};
use zeropool::{Pool, Poolable};

#[derive(Debug)]
struct Frame(Vec<u8>);

impl Poolable for Frame {
    fn with_capacity_hint(bytes: usize) -> Self {
        Frame(Vec::with_capacity(bytes))
    }
    fn reset(&mut self) {
        self.0.clear();
    }
    fn capacity_bytes(&self) -> usize {
        self.0.capacity()
    }
    fn config_section() -> Option<&'static str> {
        Some("frames")
    }
}

const FILE: &str = r#"
[pool]
tls_cache_size = 2
batch_size = 1

[pools.frames]
tls_cache_size = 32
batch_size = 8
size_classes = ["1 KiB", "9 KiB"]
"#;

#[test]
#[cfg_attr(miri, ignore = "a child process of its own: Miri cannot spawn one")]
fn a_type_reads_its_own_table() {
    const NAME: &str = "a_type_reads_its_own_table";
    if !is_child(NAME) {
        let dir = TempDir::new("typed");
        dir.write("zeropool.toml", FILE);
        return run_child(
            NAME,
            &[("ZEROPOOL_POOLS__FRAMES__MAX_TOTAL_MEMORY", "32 MiB")],
            dir.path(),
        );
    }
    let frames = Pool::<Frame>::from_config().unwrap();
    assert_eq!(frames.config_section(), "pools.frames");
    assert_eq!((frames.tls_cache_size(), frames.batch_size()), (32, 8));
    assert_eq!(frames.size_classes(), [1024, 9216]);
    assert_eq!(frames.max_total_memory(), 32 << 20);
    assert!(frames.get(9000).0.capacity() >= 9000);

    // Other types keep reading [pool].
    let bytes = zeropool::BufferPool::from_config().unwrap();
    assert_eq!(bytes.config_section(), "pool");
    assert_eq!(bytes.tls_cache_size(), 2);

    // `named` still chooses another table.
    let other = Pool::<Frame>::builder().named("other").build().unwrap();
    assert_eq!(other.config_section(), "pools.other");
    assert_eq!(other.tls_cache_size(), 8);
}

#[test]
fn a_typed_pool_with_an_explicit_file() {
    let dir = TempDir::new("typed-file");
    let path = dir.write("service.toml", FILE);
    let frames = Pool::<Frame>::builder().config_file(&path).build().unwrap();
    assert_eq!(frames.tls_cache_size(), 32);
    // A plain builder reads nothing, but still knows its table for reloads.
    let plain = Pool::<Frame>::builder().build().unwrap();
    assert_eq!(plain.config_section(), "pools.frames");
    assert_eq!(plain.tls_cache_size(), 8);
}

#[test]
fn errors_name_the_type_table() {
    let dir = TempDir::new("typed-bad");
    let path = dir.write("service.toml", "[pools.frames]\nbatch_size = 64\n");
    let err = Pool::<Frame>::builder()
        .config_file(&path)
        .build()
        .unwrap_err();
    assert_eq!(err.problems()[0].key, "pools.frames.batch_size");
    // The same file is invalid for every pool: nothing half-applies.
    assert!(zeropool::BufferPool::builder()
        .config_file(&path)
        .build()
        .is_err());
}

/// The same, written with the derive: `#[poolable(config = "packets")]`.
#[derive(Poolable)]
#[poolable(config = "packets")]
struct Packet {
    #[poolable(capacity)]
    body: Vec<u8>,
    seq: u64,
}

#[test]
fn the_derive_names_the_table() {
    assert_eq!(<Packet as Poolable>::config_section(), Some("packets"));
    let dir = TempDir::new("typed-derive");
    let path = dir.write(
        "service.toml",
        "[pools.packets]\ntls_cache_size = 3\nbatch_size = 3\nsize_classes = [\"2 KiB\"]\n",
    );
    let packets = Pool::<Packet>::builder()
        .config_file(&path)
        .build()
        .unwrap();
    assert_eq!(packets.config_section(), "pools.packets");
    assert_eq!(
        (packets.tls_cache_size(), packets.size_classes()),
        (3, &[2048][..])
    );
    let mut p = packets.get(100);
    p.seq = 7;
    assert!(p.body.capacity() >= 2048);
}

/// `OnExhausted` displays as its name (no TOML quotes), while the config's
/// `value_text` keeps the TOML form.
#[test]
fn on_exhausted_displays_its_name_and_the_config_text_is_toml() {
    use zeropool::OnExhausted;
    let names: Vec<String> = [OnExhausted::Allocate, OnExhausted::Error, OnExhausted::Wait]
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(names, ["allocate", "error", "wait"]);
    let config =
        zeropool::PoolConfig::from_toml_str("[pool]\non_exhausted = \"wait\"\n").expect("valid");
    assert_eq!(
        config.value_text("on_exhausted").as_deref(),
        Some("\"wait\"")
    );
}
