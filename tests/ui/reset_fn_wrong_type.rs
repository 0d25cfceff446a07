use zeropool::Poolable;

fn clear_bytes(v: &mut Vec<u8>) {
    v.clear();
}

#[derive(Poolable)]
struct Frame {
    #[poolable(capacity)]
    payload: Vec<u8>,
    #[poolable(reset = "clear_bytes")]
    words: Vec<String>,
}

fn main() {}
