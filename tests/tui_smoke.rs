//! Runs `tests/tui_smoke.sh` (the workbench in tmux) against the binary cargo built for this
//! test run, so `cargo test` (and `.ci/run`) covers it. The script skips with a message when
//! tmux is unavailable.

use std::process::Command;

#[test]
fn workbench_runs_steps_inspects_and_quits_cleanly_in_a_real_terminal() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("bash")
        .arg(format!("{root}/tests/tui_smoke.sh"))
        .env("DRAFTSCOPE_BIN", env!("CARGO_BIN_EXE_draftscope"))
        .output()
        .expect("cannot run bash");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    println!("{text}");
}
