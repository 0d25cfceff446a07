use std::net::TcpStream;
use std::sync::Arc;
use zeropool::Poolable;

struct Config {
    limit: usize,
}

#[derive(Poolable)]
struct Frame {
    #[poolable(capacity)]
    payload: Vec<u8>,
    #[poolable(keep)]
    config: Arc<Config>,
}

#[derive(Poolable)]
struct Conn {
    #[poolable(capacity)]
    buffer: Vec<u8>,
    #[poolable(keep)]
    stream: TcpStream,
}

fn main() {}
