use zeropool::Poolable;

#[derive(Poolable)]
#[poolable(config = "my frames")]
struct Frame {
    #[poolable(capacity)]
    body: Vec<u8>,
}

fn main() {}
