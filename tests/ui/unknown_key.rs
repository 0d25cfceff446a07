use zeropool::Poolable;

#[derive(Poolable)]
struct Frame {
    #[poolable(capcity)]
    payload: Vec<u8>,
    #[poolable(skip)]
    seq: u64,
}

#[derive(Poolable)]
#[poolable(constructor = "Packet::new")]
struct Packet {
    #[poolable(capacity)]
    body: Vec<u8>,
}

fn main() {}
