//! `draftscope speed --what model`: the table row, the in-process 1→N-thread scaling pairs,
//! and one clear line for flags that cannot apply.

mod common;

use std::process::Command;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(common::bin()).args(args).output().unwrap();
    let s = |b: &[u8]| String::from_utf8_lossy(b).to_string();
    (out.status.code().unwrap_or(-1), s(&out.stdout), s(&out.stderr))
}

#[test]
fn scaling_pairs_one_thread_with_all_threads_in_one_run() {
    let dir = common::fixture_dir();
    let d = dir.to_str().unwrap();
    let (code, out, err) =
        run(&["speed", "--what", "model", "--model", d, "--threads", "2", "--reps", "3", "--scaling"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("threads 2") && out.contains("s/32 tokens"), "{out}");
    let line =
        out.lines().find(|l| l.trim_start().starts_with("scaling:")).unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("1 thread") && line.contains("2 threads") && line.contains("3 pairs"), "{line}");
    // Every figure on the line is a positive, finite number.
    let ratio: f64 = line.split("median ").nth(1).unwrap().split('×').next().unwrap().parse().unwrap();
    assert!(ratio.is_finite() && ratio > 0.0, "{line}");
}

#[test]
fn scaling_on_one_thread_is_refused_with_one_line() {
    let d = common::fixture_dir();
    let (code, out, err) =
        run(&["speed", "--what", "model", "--model", d.to_str().unwrap(), "--threads", "1", "--scaling"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.is_empty(), "no partial output: {out}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("--threads 2"), "{err}");
}

#[test]
fn model_only_flags_without_what_model_are_refused() {
    let (code, _, err) = run(&["speed", "--what", "forward", "--scaling"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--what model"), "{err}");
}
