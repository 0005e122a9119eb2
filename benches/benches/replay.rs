//! Whole-replay throughput (see README); the reference implementation follows.
fn main() {
    println!("replay bench: not written yet");
}
