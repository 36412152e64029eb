//! A short seeded-mutation fuzz run over every loader (see `tests/common/fuzz.rs`); the long
//! run is `cargo run --release --example fuzz -- --minutes N`. Crashes found by long runs are
//! kept below as regression tests.

#[path = "common/fuzz.rs"]
mod fuzz;

#[test]
fn loaders_survive_seeded_mutations() {
    fuzz::quiet_panics();
    let rep = fuzz::campaign(20261202, 60, None);
    let _ = std::panic::take_hook();
    assert_eq!(rep.runs, 60 * fuzz::targets().len() as u64);
    assert!(
        rep.crashes.is_empty(),
        "{} of {} inputs panicked: {:#?}",
        rep.crashes.len(),
        rep.runs,
        rep.crashes
    );
    // Mutations small enough that every loader accepts some, so the code behind it runs too.
    for t in fuzz::targets() {
        assert!(rep.accepted.get(t.name).copied().unwrap_or(0) > 0, "{}: no mutated input loaded", t.name);
    }
}

#[test]
fn mutations_replay_from_seed_and_iteration() {
    let t = &fuzz::targets()[0];
    assert_eq!(fuzz::input(t, 7, 3), fuzz::input(t, 7, 3));
    assert_ne!(fuzz::input(t, 7, 3), fuzz::input(t, 7, 4));
}
