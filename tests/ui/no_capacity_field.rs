use zeropool::Poolable;

#[derive(Poolable)]
struct Headers {
    names: Vec<String>,
    values: Vec<String>,
}

fn main() {}
