use zeropool::Poolable;

#[derive(Poolable)]
struct Frame {
    #[poolable(capacity = 4096)]
    payload: Vec<u8>,
    #[poolable]
    seq: u64,
    #[poolable(reset)]
    names: Vec<String>,
    #[poolable(reset = "not a path")]
    values: Vec<String>,
    #[poolable(keep, keep)]
    id: u64,
}

fn main() {}
