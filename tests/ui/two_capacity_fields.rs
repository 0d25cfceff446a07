use zeropool::Poolable;

#[derive(Poolable)]
struct Frame {
    #[poolable(capacity)]
    payload: Vec<u8>,
    #[poolable(capacity)]
    trailer: Vec<u8>,
}

fn main() {}
