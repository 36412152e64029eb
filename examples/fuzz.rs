//! The long fuzz run: `cargo run --release --example fuzz -- --minutes 15 [--seed N]`.
//! Prints a replay line (target, seed, iteration) per crash and exits 1 if any was found.

#[path = "../tests/common/fuzz.rs"]
mod fuzz;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1));
    let minutes: f64 = match flag("--minutes").map(|m| m.parse()) {
        None => 1.0,
        Some(Ok(m)) if m > 0.0 => m,
        _ => {
            eprintln!("error: --minutes takes a positive number");
            std::process::exit(2);
        }
    };
    let seed: u64 = flag("--seed").and_then(|s| s.parse().ok()).unwrap_or(1);
    let start = std::time::Instant::now();
    let deadline = start + std::time::Duration::from_secs_f64(minutes * 60.0);
    fuzz::quiet_panics();
    let (mut runs, mut crashes) = (0u64, Vec::new());
    let mut accepted = std::collections::BTreeMap::new();
    let mut round = 0u64;
    while std::time::Instant::now() < deadline {
        let rep = fuzz::campaign(seed.wrapping_add(round), 50, Some(deadline));
        runs += rep.runs;
        crashes.extend(rep.crashes);
        for (k, v) in rep.accepted {
            *accepted.entry(k).or_insert(0u64) += v;
        }
        round += 1;
        eprintln!(
            "{:>6.1} min  {runs} inputs  {} crashes",
            start.elapsed().as_secs_f64() / 60.0,
            crashes.len()
        );
    }
    for c in &crashes {
        println!("crash: target {} seed {} iteration {}: {}", c.target, c.seed, c.iter, c.message);
    }
    println!("accepted by the loader, per target: {accepted:?}");
    println!(
        "{runs} inputs over {} targets in {minutes} min: {} crashes",
        fuzz::targets().len(),
        crashes.len()
    );
    std::process::exit(i32::from(!crashes.is_empty()));
}
