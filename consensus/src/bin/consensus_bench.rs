use ordo_consensus::sim::{run, Fault, SimConfig};
fn main() {
    let mut cfg = SimConfig::new(4, 5, Fault::None);
    cfg.payload_interval_ms = None;
    cfg.loss = 0.0;
    let r = run(&cfg);
    println!("{:?} {:?}", r.stats, r.messages_by_kind);
}
