//! Bad input gets one actionable line naming the file, field or tensor, exit code 2, and
//! never a panic or backtrace.

mod common;

use std::path::Path;
use std::process::Command;

/// Runs the binary; asserts exit 2 and a single `error:` line; returns that line.
fn fails(args: &[&str]) -> String {
    let out = Command::new(common::bin()).args(args).env("HF_HUB_OFFLINE", "1").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "args {args:?}: stderr {stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    lines[0].to_string()
}

/// A copy of the fixture model directory that a test may damage.
fn model_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(common::fixture_dir().join(f), dir.path().join(f)).unwrap();
    }
    dir
}

fn p(d: &Path) -> &str {
    d.to_str().unwrap()
}

fn logits_args<'a>(model: &'a str, ids: &'a str, out: &'a str) -> Vec<&'a str> {
    vec!["logits", "--model", model, "--ids", ids, "--block-length", "8", "--out", out]
}

#[test]
fn missing_safetensors_names_the_directory() {
    let d = model_copy();
    std::fs::remove_file(d.path().join("model.safetensors")).unwrap();
    let out = d.path().join("o.st");
    let e = fails(&logits_args(p(d.path()), "1,2,3", p(&out)));
    assert!(e.contains("no model.safetensors"), "{e}");
}

#[test]
fn truncated_safetensors_names_the_file() {
    let d = model_copy();
    let f = d.path().join("model.safetensors");
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() / 2]).unwrap();
    let out = d.path().join("o.st");
    let e = fails(&logits_args(p(d.path()), "1,2,3", p(&out)));
    assert!(e.contains("model.safetensors") && e.contains("truncated"), "{e}");
}

#[test]
fn corrupt_safetensors_header_names_the_file() {
    let d = model_copy();
    let f = d.path().join("model.safetensors");
    let mut bytes = std::fs::read(&f).unwrap();
    bytes[8..40].copy_from_slice(&[b'#'; 32]);
    std::fs::write(&f, &bytes).unwrap();
    let out = d.path().join("o.st");
    let e = fails(&logits_args(p(d.path()), "1,2,3", p(&out)));
    assert!(e.contains("model.safetensors") && e.contains("corrupt"), "{e}");
}

#[test]
fn config_missing_a_required_field_names_it() {
    let d = model_copy();
    let f = d.path().join("config.json");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("hidden_size");
    std::fs::write(&f, v.to_string()).unwrap();
    let out = d.path().join("o.st");
    let e = fails(&logits_args(p(d.path()), "1,2,3", p(&out)));
    assert!(e.contains("config.json") && e.contains("hidden_size"), "{e}");
}

#[test]
fn tensor_with_wrong_shape_is_named_with_both_shapes() {
    let d = model_copy();
    let f = d.path().join("config.json");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
    v["intermediate_size"] = 96.into();
    std::fs::write(&f, v.to_string()).unwrap();
    let out = d.path().join("o.st");
    let e = fails(&logits_args(p(d.path()), "1,2,3", p(&out)));
    assert!(
        e.contains("model.layers.0.mlp.gate_proj.weight")
            && e.contains("[128, 64]")
            && e.contains("[96, 64]"),
        "{e}"
    );
}

#[test]
fn missing_tensor_is_named() {
    let d = model_copy();
    let f = d.path().join("config.json");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
    v["num_hidden_layers"] = 4.into();
    std::fs::write(&f, v.to_string()).unwrap();
    let out = d.path().join("o.st");
    let e = fails(&logits_args(p(d.path()), "1,2,3", p(&out)));
    assert!(e.contains("model.layers.3.") && e.contains("missing"), "{e}");
}

#[test]
fn ids_outside_the_vocabulary_are_rejected() {
    let out = tempfile::tempdir().unwrap();
    let o = out.path().join("o.st");
    let e = fails(&logits_args(p(&common::fixture_dir()), "1,600,3", p(&o)));
    assert!(e.contains("600") && e.contains("vocabulary"), "{e}");
    let e = fails(&[
        "decode",
        "--model",
        p(&common::fixture_dir()),
        "--prompt-ids",
        "5,9999",
        "--block-length",
        "8",
        "--gen-length",
        "8",
    ]);
    assert!(e.contains("9999") && e.contains("vocabulary"), "{e}");
}

#[test]
fn empty_id_list_is_rejected() {
    let out = tempfile::tempdir().unwrap();
    let o = out.path().join("o.st");
    let e = fails(&logits_args(p(&common::fixture_dir()), "", p(&o)));
    assert!(e.contains("--ids") && e.contains("empty"), "{e}");
}

fn decode_with(extra: &[&str]) -> String {
    let m = common::fixture_dir();
    let mut args = vec!["decode", "--model", p(&m), "--prompt-ids", "5,6,7"];
    args.extend_from_slice(extra);
    for (flag, default) in [("--block-length", "8"), ("--gen-length", "8")] {
        if !extra.contains(&flag) {
            args.extend_from_slice(&[flag, default]);
        }
    }
    fails(&args)
}

#[test]
fn thresholds_outside_unit_interval_are_rejected() {
    assert!(decode_with(&["--threshold", "1.5"]).contains("--threshold"));
    assert!(decode_with(&["--editing-threshold=-0.1"]).contains("--editing-threshold"));
}

#[test]
fn zero_block_or_gen_length_is_rejected() {
    assert!(decode_with(&["--block-length", "0"]).contains("--block-length"));
    assert!(decode_with(&["--gen-length", "0"]).contains("--gen-length"));
}

#[test]
fn prompt_longer_than_the_model_positions_is_rejected() {
    let e = decode_with(&["--gen-length", "5000"]);
    assert!(e.contains("max_position_embeddings"), "{e}");
}

#[test]
fn text_prompt_without_tokenizer_says_to_use_ids() {
    let m = common::fixture_dir();
    let e = fails(&["decode", "--model", p(&m), "--prompt", "hello", "--block-length", "8"]);
    assert!(e.contains("tokenizer.json") && e.contains("--prompt-ids"), "{e}");
}

#[test]
fn unknown_model_repo_offline_names_repo_and_cache() {
    let cache = tempfile::tempdir().unwrap();
    let out = Command::new(common::bin())
        .args(["decode", "--model", "nobody/no-such-model", "--prompt-ids", "1"])
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HOME", cache.path())
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(e.contains("nobody/no-such-model") && e.contains(p(cache.path())), "{e}");
}

#[test]
fn editing_threshold_zero_is_valid_and_means_edit_on_any_change() {
    let m = common::fixture_dir();
    let out = Command::new(common::bin())
        .args(["decode", "--model", p(&m), "--prompt-ids", "409,191,80,91,337"])
        .args(["--block-length", "8", "--gen-length", "32", "--mode", "s", "--editing-threshold", "0.0"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn unreadable_or_wrong_version_trace_is_rejected() {
    use draftscope::decode::Trace;
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("t.json");
    std::fs::write(&f, br#"{"version": 99}"#).unwrap();
    let e = format!("{:#}", Trace::load(&f).unwrap_err());
    assert!(e.contains("t.json") && e.contains("version 99"), "{e}");
    std::fs::write(&f, br#"{"version": 1, "model": "#).unwrap();
    let e = format!("{:#}", Trace::load(&f).unwrap_err());
    assert!(e.contains("t.json") && e.contains("not a draftscope trace"), "{e}");
}
