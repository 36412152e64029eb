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

/// stderr of `decode --model MODEL` offline with an empty HF cache (exit 2 asserted), and
/// that cache's path.
fn decode_offline_with_empty_cache(model: &str) -> (String, String) {
    let cache = tempfile::tempdir().unwrap();
    let out = Command::new(common::bin())
        .args(["decode", "--model", model, "--prompt-ids", "1"])
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HOME", cache.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    (String::from_utf8_lossy(&out.stderr).to_string(), p(cache.path()).to_string())
}

#[test]
fn unknown_model_repo_offline_names_repo_and_cache() {
    let (e, cache) = decode_offline_with_empty_cache("nobody/no-such-model");
    assert!(e.contains("nobody/no-such-model") && e.contains(&cache), "{e}");
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

// ---- Reliability (issue 17), by category: one test per case. ----

/// Runs the binary expecting success; returns stderr.
fn succeeds(args: &[&str]) -> String {
    let out = Command::new(common::bin()).args(args).env("HF_HUB_OFFLINE", "1").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "args {args:?}: stderr {stderr}");
    stderr
}

/// A tiny LoRA run on the embedded model: 20 documents, batches of 2 × 32 tokens.
fn train_args<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "train",
        "--objective",
        "random",
        "--out",
        out,
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--seq-len",
        "32",
        "--max-docs",
        "20",
        "--json",
    ];
    v.extend_from_slice(extra);
    v
}

fn a_saved_trace() -> serde_json::Value {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("sessions/final-digit.json"))
            .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn load_mutated(mutate: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut v = a_saved_trace();
    mutate(&mut v);
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("bad.json");
    std::fs::write(&f, v.to_string()).unwrap();
    let e = format!("{:#}", draftscope::decode::Trace::load(&f).unwrap_err());
    // The workbench's own loader (a faster path for files it wrote) refuses the same.
    let e2 = format!("{:#}", draftscope::tui::load_trace(&f).unwrap_err());
    assert!(e2.contains("bad.json"), "{e2}");
    e
}

// Traces.

#[test]
fn trace_with_a_step_whose_before_is_empty_is_refused() {
    let e = load_mutated(|v| v["blocks"][0]["steps"][0]["before"] = serde_json::json!([]));
    assert!(e.contains("blocks[0].steps[0]") && e.contains("before"), "{e}");
}

#[test]
fn trace_with_no_blocks_is_refused() {
    let e = load_mutated(|v| v["blocks"] = serde_json::json!([]));
    assert!(e.contains("blocks is empty"), "{e}");
}

#[test]
fn trace_with_a_commit_outside_its_block_is_refused() {
    let e = load_mutated(|v| {
        let steps = v["blocks"][0]["steps"].as_array_mut().unwrap();
        let s = steps.iter_mut().find(|s| !s["commits"].as_array().unwrap().is_empty()).unwrap();
        s["commits"][0]["pos"] = serde_json::json!(1_000_000);
    });
    assert!(e.contains("commits[0]") && e.contains("outside the block"), "{e}");
}

#[test]
fn trace_with_a_non_probability_is_refused() {
    let e = load_mutated(|v| v["blocks"][0]["steps"][0]["positions"][0]["p"] = serde_json::json!(7.5));
    assert!(e.contains("positions[0].p") && e.contains("not a probability"), "{e}");
}

#[test]
fn trace_with_a_short_canvas_is_refused() {
    let e = load_mutated(|v| v["final_canvas"].as_array_mut().unwrap().truncate(3));
    assert!(e.contains("final_canvas"), "{e}");
}

#[test]
fn workbench_refuses_a_bad_trace_with_one_line() {
    let mut v = a_saved_trace();
    v["blocks"][0]["steps"][0]["after"] = serde_json::json!([1]);
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("bad.json");
    std::fs::write(&f, v.to_string()).unwrap();
    let args = draftscope::tui::TuiArgs { open: Some(f.clone()), no_model: true, ..Default::default() };
    let e = format!("{:#}", draftscope::tui::initial_app(&args).err().expect("refused"));
    assert!(e.contains("bad.json") && e.contains("after"), "{e}");
    assert_eq!(e.matches("bad.json").count(), 1, "the path once: {e}");
}

// Numbers.

#[test]
fn train_lr_nan_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("run");
    let e = fails(&train_args(p(&out), &["--lr", "NaN"]));
    assert!(e.contains("--lr"), "{e}");
    assert!(!out.exists(), "no run directory is left behind");
}

#[test]
fn train_negative_lr_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let e = fails(&train_args(p(&d.path().join("run")), &["--lr=-1"]));
    assert!(e.contains("--lr"), "{e}");
}

#[test]
fn train_zero_steps_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("run");
    let mut args = train_args(p(&out), &[]);
    args[6] = "0";
    let e = fails(&args);
    assert!(e.contains("--steps"), "{e}");
}

#[test]
fn train_zero_grad_accum_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let e = fails(&train_args(p(&d.path().join("run")), &["--grad-accum", "0"]));
    assert!(e.contains("--grad-accum"), "{e}");
}

#[test]
fn train_prompt_clean_above_one_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let e = fails(&train_args(p(&d.path().join("run")), &["--prompt-clean", "2"]));
    assert!(e.contains("--prompt-clean"), "{e}");
}

#[test]
fn train_t_min_above_t_max_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let e = fails(&train_args(p(&d.path().join("run")), &["--t-min", "0.9", "--t-max", "0.1"]));
    assert!(e.contains("--t-min") && e.contains("--t-max"), "{e}");
}

#[test]
fn train_rank_zero_is_refused_without_a_run_directory() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("run");
    let e = fails(&train_args(p(&out), &["--rank", "0"]));
    assert!(e.contains("--rank"), "{e}");
    assert!(!out.exists());
}

#[test]
fn train_batch_size_zero_is_refused_without_a_run_directory() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("run");
    let mut args = train_args(p(&out), &[]);
    args[8] = "0";
    let e = fails(&args);
    assert!(e.contains("--batch-size"), "{e}");
    assert!(!out.exists());
}

/// The error of `logits` on a copy of the fixture whose config.json has `field` set to `value`.
fn logits_with_config_field(field: &str, value: serde_json::Value) -> String {
    let d = model_copy();
    let f = d.path().join("config.json");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
    v[field] = value;
    std::fs::write(&f, v.to_string()).unwrap();
    fails(&logits_args(p(d.path()), "1,2,3", p(&d.path().join("o.st"))))
}

#[test]
fn config_with_two_to_the_31_layers_is_refused() {
    let e = logits_with_config_field("num_hidden_layers", serde_json::json!(2147483648u64));
    assert!(e.contains("num_hidden_layers"), "{e}");
}

#[test]
fn config_with_u64_max_layers_is_refused() {
    let e = logits_with_config_field("num_hidden_layers", serde_json::json!(u64::MAX));
    assert!(e.contains("num_hidden_layers"), "{e}");
}

#[test]
fn config_type_error_names_the_field() {
    let e = logits_with_config_field("hidden_size", serde_json::json!("wide"));
    assert!(e.contains("hidden_size") && e.contains("config.json"), "{e}");
}

#[test]
fn integer_weight_tensor_is_refused_by_name() {
    let d = model_copy();
    let f = d.path().join("model.safetensors");
    let mut map = candle_core::safetensors::load(&f, &candle_core::Device::Cpu).unwrap();
    let key = "model.norm.weight".to_string();
    let t = map[&key].to_dtype(candle_core::DType::U8).unwrap();
    map.insert(key, t);
    candle_core::safetensors::save(&map, &f).unwrap();
    let e = fails(&logits_args(p(d.path()), "1,2,3", p(&d.path().join("o.st"))));
    assert!(e.contains("model.norm.weight") && e.contains("U8"), "{e}");
}

// Runs.

#[test]
fn train_out_into_a_non_empty_directory_that_is_not_a_run_is_refused() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("notes.txt"), b"mine").unwrap();
    let e = fails(&train_args(p(d.path()), &[]));
    assert!(e.contains("not empty"), "{e}");
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1, "nothing written");
}

#[test]
fn resume_refuses_a_flag_it_cannot_change() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("run");
    succeeds(&train_args(p(&run), &[]));
    let e = fails(&["train", "--resume", p(&run), "--rank", "4"]);
    assert!(e.contains("--rank") && e.contains("cannot change"), "{e}");
}

#[test]
fn resume_steps_below_the_reached_step_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("run");
    succeeds(&train_args(p(&run), &[]));
    let e = fails(&["train", "--resume", p(&run), "--steps", "1"]);
    assert!(e.contains("--steps 1") && e.contains("(2)"), "{e}");
    let rf = std::fs::read_to_string(run.join("run.json")).unwrap();
    assert!(rf.contains("\"status\": \"finished\""), "run.json unchanged: {rf}");
}

#[test]
fn resume_applies_a_changeable_flag_and_says_so() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("run");
    succeeds(&train_args(p(&run), &[]));
    let err = succeeds(&["train", "--resume", p(&run), "--steps", "3", "--json"]);
    assert!(err.contains("resume: --steps 3 (was 2)"), "{err}");
    let lines = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 3);
}

#[test]
fn a_second_writer_of_a_live_run_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("run");
    succeeds(&train_args(p(&run), &[]));
    let _held = draftscope::session::DirLock::acquire(&run, "run").unwrap();
    let e = fails(&["train", "--resume", p(&run), "--steps", "3"]);
    assert!(e.contains("in use by another draftscope process"), "{e}");
}

#[test]
fn a_run_killed_before_its_first_checkpoint_resumes_and_its_litter_is_removed() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("run");
    succeeds(&train_args(p(&run), &[]));
    // What a kill -9 during the first steps leaves: run.json, temp files, no checkpoint.
    std::fs::remove_dir_all(run.join("checkpoints")).unwrap();
    std::fs::remove_dir_all(run.join("adapter")).unwrap();
    std::fs::remove_file(run.join("metrics.jsonl")).unwrap();
    std::fs::create_dir_all(run.join("checkpoints/.tmpXYZ/adapter")).unwrap();
    std::fs::create_dir_all(run.join("adapter")).unwrap();
    std::fs::write(run.join("adapter/.tmpABC"), b"").unwrap();
    std::fs::write(run.join(".tmp123"), b"").unwrap();
    succeeds(&["train", "--resume", p(&run), "--json"]);
    assert!(!run.join("checkpoints/.tmpXYZ").exists() && !run.join("adapter/.tmpABC").exists());
    assert!(!run.join(".tmp123").exists());
    assert!(run.join("adapter/adapter_model.safetensors").exists());
    let lines = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 2);
}

#[test]
fn a_diverging_run_stops_as_failed() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("run");
    let mut args =
        train_args(p(&run), &["--lr", "1e30", "--warmup", "0", "--gate", "0", "--world-corpus", "base"]);
    args[6] = "6";
    let e = fails(&args);
    assert!(e.contains("diverged") && e.contains("--resume"), "{e}");
    let rf: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(rf["status"], "failed");
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap_or_default();
    assert!(!metrics.contains("null"), "no non-finite metric line: {metrics}");
}

// Files.

#[test]
fn merge_onto_its_own_base_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("run");
    succeeds(&train_args(p(&run), &[]));
    let base = draftscope::model::source::embedded_model_dir();
    let before = std::fs::read(base.join("model.safetensors")).unwrap();
    let e = fails(&["merge", "--adapter", p(&run.join("adapter")), "--out", p(&base)]);
    assert!(e.contains("base model"), "{e}");
    assert!(std::fs::read(base.join("model.safetensors")).unwrap() == before);
}

#[cfg(unix)]
#[test]
fn written_files_have_ordinary_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("t.json");
    let m = common::fixture_dir();
    let cmd = format!(
        "umask 022; exec '{}' decode --model '{}' --prompt-ids 409,191,80 --block-length 8 --gen-length 8 --json '{}'",
        common::bin(),
        p(&m),
        p(&f)
    );
    let out = Command::new("sh").args(["-c", &cmd]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o644);
}

// Model references.

#[test]
fn a_relative_path_is_never_taken_for_a_hub_repo() {
    let out = Command::new(common::bin())
        .args(["decode", "--model", "./models/mine", "--prompt-ids", "1"])
        .env_remove("HF_HUB_OFFLINE")
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(e.contains("no directory at that path") && !e.contains("download"), "{e}");
}

#[test]
fn an_owner_name_reference_that_is_neither_says_both() {
    let (e, _) = decode_offline_with_empty_cache("models/mine");
    assert!(
        e.contains("no directory at that path") && e.contains("no such repo in the Hugging Face cache"),
        "{e}"
    );
}

// bench.

#[test]
fn bench_where_nothing_could_be_scored_fails_and_stores_nothing() {
    let d = tempfile::tempdir().unwrap();
    let suite = d.path().join("huge.jsonl");
    // A 2 MB prompt: refused before tokenising (more tokens than the model has positions).
    let line = serde_json::json!({"id": "h1", "task": "arith", "prompt": "7".repeat(2_000_000), "answer": "7", "aliases": []});
    std::fs::write(&suite, format!("{line}\n")).unwrap();
    let sessions = d.path().join("sessions");
    let e = fails(&["bench", "--suite", p(&suite), "--sessions", p(&sessions)]);
    assert!(e.contains("none of its 1 items could be scored") && e.contains("context"), "{e}");
    assert!(!sessions.join("results.jsonl").exists());
}

// Messages and setup.

#[test]
fn train_on_cuda_in_a_cpu_build_fails_before_anything_is_written() {
    if cfg!(feature = "cuda") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("run");
    let e = fails(&train_args(p(&out), &["--device", "cuda"]));
    assert!(e.contains("--device cuda"), "{e}");
    assert!(!out.exists(), "no cache or run directory left");
}

#[test]
fn a_tokenizer_larger_than_the_base_vocabulary_is_refused_before_training() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("run");
    let tok = draftscope::model::source::embedded_model_dir().join("tokenizer.json");
    let fixture = common::fixture_dir();
    let e = fails(&train_args(p(&out), &["--base", p(&fixture), "--tokenizer", p(&tok)]));
    assert!(e.contains("vocab_size") && e.contains("tokenizer"), "{e}");
    assert!(!out.exists());
}

#[test]
fn adapters_with_per_module_ranks_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("run");
    succeeds(&train_args(p(&run), &[]));
    let cfgp = run.join("adapter/adapter_config.json");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&cfgp).unwrap()).unwrap();
    v["rank_pattern"] = serde_json::json!({"dense": 4});
    std::fs::write(&cfgp, v.to_string()).unwrap();
    let e = fails(&["decode", "--adapter", p(&run.join("adapter")), "--prompt", "1+1", "--gen-length", "8"]);
    assert!(e.contains("rank_pattern"), "{e}");
}

#[test]
fn written_adapter_configs_exclude_the_routed_experts_as_peft_reads_it() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("run");
    succeeds(&train_args(p(&run), &[]));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("adapter/adapter_config.json")).unwrap())
            .unwrap();
    assert!(v.get("include_experts").is_none(), "no key PEFT does not know: {v}");
    assert_eq!(v["exclude_modules"], draftscope::model::lora::EXPERTS_EXCLUDED);
}

#[test]
fn devices_and_shards_are_checked_with_the_flag_named() {
    if !cfg!(feature = "cuda") {
        let e = fails(&["decode", "--prompt", "1+1=", "--device", "cuda:1"]);
        assert!(e.contains("--device cuda:1: this build has no CUDA support"), "{e}");
    }
    let out =
        Command::new(common::bin()).args(["decode", "--prompt", "x", "--device", "gpu"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("`gpu` is not a device: use cpu, cuda or cuda:K"), "{err}");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("exp");
    let e = fails(&["experiment", "--out", dir.to_str().unwrap(), "--plan", "--shards", "0"]);
    assert!(e.contains("--shards must be in 1..="), "{e}");
    assert!(!dir.exists(), "nothing written for a bad grid");
}

// Run config files (`train --config FILE`).

/// `train --config FILE --out DIR`: the one error line; no run directory is left behind.
fn config_fails(config: &str) -> String {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("run-config.json");
    std::fs::write(&file, config).unwrap();
    let out = d.path().join("run");
    let e = fails(&["train", "--config", p(&file), "--out", p(&out)]);
    assert!(e.contains(&format!("--config {}", file.display())), "names the file: {e}");
    assert!(!out.exists(), "no run directory is left behind");
    e
}

#[test]
fn train_config_file_that_is_missing_is_named() {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("nope.json");
    let e = fails(&["train", "--config", p(&file), "--out", p(&d.path().join("run"))]);
    assert!(e.contains(&format!("--config {}: cannot read", file.display())), "{e}");
}

#[test]
fn train_config_file_with_a_bad_field_names_the_field() {
    let e = config_fails(r#"{"run": 5}"#);
    assert!(e.contains("field `run`"), "{e}");
    let e = config_fails("not json");
    assert!(e.contains("expected"), "{e}");
}

#[test]
fn train_config_file_of_a_pretraining_run_is_refused() {
    let e = config_fails(r#"{"run": {"kind": "pretrain"}}"#);
    assert!(e.contains("field `run"), "{e}");
}

#[test]
fn pretrain_init_from_a_missing_model_names_the_flag_and_writes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("run");
    let e = fails(&["pretrain", "--init", p(&d.path().join("nowhere")), "--out", p(&out), "--steps", "2"]);
    assert!(e.contains("--init") && e.contains("config.json"), "{e}");
    assert!(!out.exists());
}

#[test]
fn pretrain_init_with_the_fixture_tokenizer_mismatch_names_both() {
    // The fixture model has no tokenizer of this vocabulary: the embedded tokenizer (833) is
    // refused for it by name, before any run directory is made.
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("run");
    let fixture = common::fixture_dir();
    let e = fails(&["pretrain", "--init", p(&fixture), "--out", p(&out), "--steps", "2"]);
    assert!(e.contains("--init") && e.contains("vocabulary"), "{e}");
    assert!(!out.exists());
}
