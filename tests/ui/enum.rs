use zeropool::Poolable;

#[derive(Poolable)]
enum Message {
    Ping,
    Data(Vec<u8>),
}

fn main() {}
