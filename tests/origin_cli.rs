//! `draftscope origin` on the shipped sessions (README, "Most of the testbed's failures start at
//! an edit"): the final-digit trace starts wrong at the answer digit the editor rewrote, over the
//! right one; a facts trace is counted, not judged; bad paths and files exit 2 with one line.

use std::process::{Command, Output};

fn origin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_draftscope")).arg("origin").args(args).output().unwrap()
}

fn session(name: &str) -> String {
    format!("{}/sessions/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_final_digit_trace_starts_wrong_at_an_edit_over_the_right_digit() {
    let out = origin(&["--items", &session("final-digit.json"), &session("over-correction.json")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("traces: 2; arithmetic: 1 (0 right, 1 failed); not arithmetic: 1\n"), "{text}");
    assert!(text.contains("first wrong token written by a T2T edit: 1 (100.0%)\n"), "{text}");
    assert!(text.contains("  T2T edit, over a right token: 1\n"), "{text}");
    assert!(text.contains("answer line / T2T edit: 1\n"), "{text}");
    assert!(text.contains("final-digit.json\tanswer line\tT2T edit over a right token\tpos "), "{text}");
}

#[test]
fn bad_paths_and_files_get_one_line_and_exit_2() {
    let d = tempfile::tempdir().unwrap();
    let bad = d.path().join("bad.json");
    let empty = d.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(&bad, "{}").unwrap();
    for (arg, says) in [
        (bad.to_str().unwrap(), "not a draftscope trace"),
        (empty.to_str().unwrap(), "no traces (*.json) under this directory"),
        ("/no/such/trace.json", "no such trace or directory"),
    ] {
        let out = origin(&[arg]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{arg}: {err}");
        assert!(err.contains(says) && err.lines().count() == 1, "{arg}: {err}");
        assert!(out.stdout.is_empty(), "{arg}: no partial output");
    }
}
