//! `draftscope logits` reproduces the official forward, from a single file or from shards.

mod common;

use std::collections::HashMap;
use std::process::Command;

use candle_core::{DType, Device, Tensor};

fn fixture() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(common::fixture_dir().join("forward.safetensors"), &Device::Cpu).unwrap()
}

fn ids_arg(f: &HashMap<String, Tensor>) -> String {
    let v: Vec<i64> = f["input_ids"].flatten_all().unwrap().to_dtype(DType::I64).unwrap().to_vec1().unwrap();
    v.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",")
}

fn run_logits(model: &std::path::Path, attention: &str, hidden: bool) -> HashMap<String, Tensor> {
    run_logits_args(model, attention, hidden, &[])
}

/// [`run_logits`] with extra command-line arguments (e.g. `--threads N`).
fn run_logits_args(
    model: &std::path::Path,
    attention: &str,
    hidden: bool,
    extra: &[&str],
) -> HashMap<String, Tensor> {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.safetensors");
    let mut cmd = Command::new(common::bin());
    cmd.args(["logits", "--model", model.to_str().unwrap(), "--ids", &ids_arg(&f), "--block-length", "8"]);
    cmd.args(["--attention", attention, "--out", out.to_str().unwrap()]);
    if hidden {
        cmd.arg("--hidden-states");
    }
    cmd.args(extra).env_remove("RAYON_NUM_THREADS");
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    candle_core::safetensors::load(&out, &Device::Cpu).unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
}

#[test]
fn logits_command_matches_fixture_in_both_semantics() {
    let f = fixture();
    let hf = run_logits(&common::fixture_dir(), "hf", true);
    assert!(max_diff(&hf["logits"], &f["logits_generate_mask"]) < 1e-3);
    assert!(max_diff(&hf["hidden_states"], &f["hidden_states_generate_mask"]) < 1e-4);
    let bc = run_logits(&common::fixture_dir(), "block-causal", false);
    assert!(max_diff(&bc["logits"], &f["logits_hard_block_causal"]) < 1e-3);
    assert!(!bc.contains_key("hidden_states"));
}

#[test]
fn sharded_checkpoint_loads_through_its_index() {
    let all = candle_core::safetensors::load(common::fixture_dir().join("model.safetensors"), &Device::Cpu)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(common::fixture_dir().join("config.json"), dir.path().join("config.json")).unwrap();
    let mut names: Vec<&String> = all.keys().collect();
    names.sort();
    let (a, b) = names.split_at(names.len() / 2);
    let mut weight_map = serde_json::Map::new();
    for (shard, part) in [("model-00001-of-00002.safetensors", a), ("model-00002-of-00002.safetensors", b)] {
        let m: HashMap<String, Tensor> = part.iter().map(|n| ((*n).clone(), all[*n].clone())).collect();
        candle_core::safetensors::save(&m, dir.path().join(shard)).unwrap();
        for n in part {
            weight_map.insert((*n).clone(), shard.into());
        }
    }
    let index = serde_json::json!({ "metadata": {}, "weight_map": weight_map });
    std::fs::write(dir.path().join("model.safetensors.index.json"), index.to_string()).unwrap();
    let got = run_logits(dir.path(), "hf", false);
    assert!(max_diff(&got["logits"], &fixture()["logits_generate_mask"]) < 1e-3);
}

/// The experts of an f32 MoE layer run concurrently on the CPU; the logits must not depend on
/// how many threads ran them (each expert's product is the same, the sum keeps expert order).
#[test]
fn logits_are_bit_identical_across_thread_counts() {
    let run = |threads: &str| {
        let t = run_logits_args(&common::fixture_dir(), "hf", false, &["--threads", threads]);
        t["logits"].flatten_all().unwrap().to_vec1::<f32>().unwrap()
    };
    let (one, three) = (run("1"), run("3"));
    assert_eq!(one.len(), three.len());
    assert!(
        one.iter().zip(&three).all(|(a, b)| a.to_bits() == b.to_bits()),
        "logits differ between 1 and 3 threads"
    );
}

/// The JSON without its wall-clock fields (`wall_ms`, `forward_ms`), at any depth.
fn drop_timings(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.retain(|k, _| !k.ends_with("_ms"));
            m.values_mut().for_each(drop_timings);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(drop_timings),
        _ => {}
    }
}

/// A whole decode (every step's picks, probabilities and edits) is the same on 1 and 3
/// threads, in both attention modes: the experts and the greedy picks run on the pool at 3.
#[test]
fn decodes_are_identical_across_thread_counts() {
    let run = |attention: &str, threads: &str| {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("d.json");
        let o = Command::new(common::bin())
            .args(["decode", "--model", common::fixture_dir().to_str().unwrap(), "--prompt-ids", "5,6,7,8"])
            .args(["--mode", "q", "--gen-length", "24", "--block-length", "8", "--no-eos-early-stop"])
            .args(["--attention", attention, "--threads", threads, "--json", json.to_str().unwrap()])
            .env("DRAFTSCOPE_SESSIONS", dir.path())
            .env_remove("RAYON_NUM_THREADS")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        drop_timings(&mut v);
        v
    };
    for attention in ["hf", "block-causal"] {
        let one = run(attention, "1");
        assert!(one["blocks"].as_array().is_some_and(|b| !b.is_empty()), "{one}");
        assert_eq!(one, run(attention, "3"), "{attention}");
    }
}
