use zeropool::Poolable;

#[derive(Default)]
struct Scratch {
    words: Vec<String>,
}

#[derive(Poolable)]
struct Frame {
    #[poolable(capacity)]
    payload: Vec<u8>,
    #[poolable(reset = "reset_scratch")]
    scratch: Scratch,
}

#[derive(Poolable)]
#[poolable(new = "Packet::build", reset = Packet::restart_packet)]
struct Packet {
    body: Vec<u8>,
}

fn main() {}
