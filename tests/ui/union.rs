use zeropool::Poolable;

#[derive(Poolable)]
union Word {
    int: u64,
    float: f64,
}

fn main() {}
