//! `scripts/error_origin.py` (README, "Most of the testbed's failures start at an edit") on the shipped
//! final-digit trace: the first wrong token is the answer digit the editor rewrote (1 → 0), over
//! the right one. Skips when python3 is not installed.

use std::process::Command;

fn script(args: &[&str]) -> Option<std::process::Output> {
    let root = env!("CARGO_MANIFEST_DIR");
    match Command::new("python3").arg(format!("{root}/scripts/error_origin.py")).args(args).output() {
        Ok(o) => Some(o),
        Err(_) => {
            eprintln!("python3 not found: skipped");
            None
        }
    }
}

#[test]
fn the_final_digit_trace_starts_wrong_at_an_edit_over_the_right_digit() {
    let trace = concat!(env!("CARGO_MANIFEST_DIR"), "/sessions/final-digit.json");
    let Some(out) = script(&[trace]) else { return };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("failed (the answer line is not the sum): 1\n"), "{text}");
    assert!(text.contains("last written by edit, replacing the right token: 1\n"), "{text}");
    assert!(text.contains("answer line / edit: 1\n"), "{text}");
}

#[test]
fn an_empty_folder_counts_nothing_and_a_bad_path_exits_2() {
    let d = tempfile::tempdir().unwrap();
    let Some(out) = script(&[d.path().to_str().unwrap()]) else { return };
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("traces: 0; failed (the answer line is not the sum): 0")
    );
    let bad = d.path().join("bad.json");
    std::fs::write(&bad, "{}").unwrap();
    let out = script(&[bad.to_str().unwrap()]).unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a draftscope trace"));
    let out = script(&["/no/such/trace.json"]).unwrap();
    assert_eq!(out.status.code(), Some(2));
}
