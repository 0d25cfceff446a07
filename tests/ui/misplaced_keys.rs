use zeropool::Poolable;

#[derive(Poolable)]
#[poolable(capacity)]
struct Frame {
    #[poolable(new = "Frame::new")]
    payload: Vec<u8>,
}

fn main() {}
