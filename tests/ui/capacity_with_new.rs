use zeropool::Poolable;

#[derive(Poolable)]
#[poolable(new = "Frame::new")]
struct Frame {
    #[poolable(capacity)]
    payload: Vec<u8>,
}

impl Frame {
    fn new(bytes: usize) -> Self {
        Frame { payload: Vec::with_capacity(bytes) }
    }
}

fn main() {}
