use zeropool::Poolable;

#[derive(Default)]
struct Scratch {
    words: Vec<String>,
}

#[derive(Poolable)]
struct Frame {
    #[poolable(capacity)]
    payload: Vec<u8>,
    scratch: Scratch,
}

fn main() {}
