use zeropool::Poolable;

fn reset_name(name: &mut String) {
    name.clear();
}

#[derive(Poolable)]
struct Frame {
    #[poolable(capacity)]
    payload: Vec<u8>,
    #[poolable(keep, reset = "reset_name")]
    name: String,
    #[poolable(capacity, keep)]
    trailer: Vec<u8>,
}

fn main() {}
