use ordo_consensus::sim::{run, Fault, SimConfig};
fn main() {
    for n in [4, 7, 10] {
        let f = (n - 1) / 3;
        let mut forks = 0;
        for seed in 0..20 {
            let cfg = SimConfig::new(n, seed, Fault::Twins(f + 1));
            let r = run(&cfg);
            if !r.is_safe() {
                forks += 1;
                if forks == 1 {
                    println!("{:?}", &r.safety_violations[..1]);
                }
            }
        }
        println!("n={n} forks {forks}/20");
    }
}
