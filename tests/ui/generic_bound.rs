use zeropool::Poolable;

#[derive(Default)]
struct Scratch {
    words: Vec<String>,
}

#[derive(Poolable)]
struct Tagged<T> {
    #[poolable(capacity)]
    payload: Vec<u8>,
    tag: T,
}

fn pooled<T: Poolable>() {}

fn main() {
    pooled::<Tagged<u64>>();
    pooled::<Tagged<Scratch>>();
}
