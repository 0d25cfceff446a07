use zeropool::Poolable;

#[derive(Poolable)]
struct Counter {
    #[poolable(capacity)]
    count: u64,
    names: Vec<String>,
}

fn main() {}
