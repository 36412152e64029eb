//! GGUF model directories: written by `quantize` / `synth --quantize`, loaded by every
//! `--model` user, refused with one line when damaged.

mod common;

use std::path::Path;
use std::process::Command;

use draftscope::model::synth::{self, Like, Output};
use draftscope::model::{Collect, DeviceKind, DtypeKind, LoadedModel, MaskKind};
use draftscope::model::{quant::QuantFormat, quantize::quantize_dir};

fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(common::bin()).args(args).envs(env.iter().copied()).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Asserts exit 2 with one `error:` line, returns it.
fn one_line_error(args: &[&str], env: &[(&str, &str)]) -> String {
    let (code, _, err) = run(args, env);
    assert_eq!(code, 2, "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].starts_with("error: ") && !err.contains("panicked"), "{err}");
    lines[0].to_string()
}

fn quantized_fixture(f: QuantFormat) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    quantize_dir(&common::fixture_dir(), f, d.path()).unwrap();
    d
}

fn logits(dir: &Path) -> Vec<f32> {
    let m = LoadedModel::load_dir("m", dir, DeviceKind::Cpu, DtypeKind::F32).unwrap();
    let ids: Vec<u32> = (0..48u32).map(|i| (i * 7 + 3) % 500).collect();
    let out = m.model.forward_window(&ids, MaskKind::GenerateBias { block_length: 16 }, &Collect::default());
    out.unwrap().logits.unwrap().flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn quantize_then_decode_round_trips_through_the_cli() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("q4");
    let fixture = common::fixture_dir();
    let (code, stdout, err) = run(
        &["quantize", "--model", fixture.to_str().unwrap(), "--to", "q4_k", "--out", out.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("model.gguf"), "{stdout}");
    assert!(out.join("config.json").exists() && out.join("model.gguf").exists());
    let args = ["decode", "--model", out.to_str().unwrap(), "--prompt-ids", "5,6,7,8", "--gen-length", "32"];
    let (code, stdout, err) = run(&args, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("32 tokens") || stdout.contains("tokens,"), "{stdout}");
}

#[test]
fn synth_quantize_writes_the_same_model_as_synth_then_quantize() {
    let d = tempfile::tempdir().unwrap();
    let (full, direct, via) = (d.path().join("f32"), d.path().join("direct"), d.path().join("via"));
    synth::write_dir(&full, Like::Tiny, Some(2), 5, Output::Safetensors("F32"), &mut |_| {}).unwrap();
    synth::write_dir(&direct, Like::Tiny, Some(2), 5, Output::Gguf(QuantFormat::Q4K), &mut |_| {}).unwrap();
    quantize_dir(&full, QuantFormat::Q4K, &via).unwrap();
    assert_eq!(logits(&direct), logits(&via));
}

#[test]
fn synth_bf16_shards_load_like_the_f32_ones_within_bf16_rounding() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("f32"), d.path().join("bf16"));
    synth::write_dir(&a, Like::Tiny, Some(2), 1, Output::Safetensors("F32"), &mut |_| {}).unwrap();
    synth::write_dir(&b, Like::Tiny, Some(2), 1, Output::Safetensors("BF16"), &mut |_| {}).unwrap();
    assert!(a.join("model.safetensors.index.json").exists());
    let (x, y) = (logits(&a), logits(&b));
    let err = x.iter().zip(&y).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
    assert!(err < 1.0, "bf16 storage moved a logit by {err}");
}

#[test]
fn truncated_gguf_is_one_line_naming_the_file() {
    let d = quantized_fixture(QuantFormat::Q8_0);
    let f = d.path().join("model.gguf");
    let len = std::fs::metadata(&f).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&f).unwrap().set_len(len / 2).unwrap();
    let e = one_line_error(&["decode", "--model", d.path().to_str().unwrap(), "--prompt-ids", "5,6"], &[]);
    assert!(e.contains("model.gguf") && e.contains("truncated GGUF"), "{e}");
}

#[test]
fn gguf_without_the_llada2_tensor_names_says_which_is_missing() {
    let d = quantized_fixture(QuantFormat::Q8_0);
    let f = d.path().join("model.gguf");
    let bytes = std::fs::read(&f).unwrap();
    // Rename every tensor `model.` → `mödel` (same length) as a foreign converter might.
    let needle = b"model.word_embeddings.weight";
    let at = bytes.windows(needle.len()).position(|w| w == needle).unwrap();
    let mut bytes = bytes;
    bytes[at..at + 6].copy_from_slice(b"blk.0.");
    std::fs::write(&f, bytes).unwrap();
    let e = one_line_error(&["decode", "--model", d.path().to_str().unwrap(), "--prompt-ids", "5,6"], &[]);
    assert!(e.contains("model.gguf") && e.contains("`model.word_embeddings.weight` is missing"), "{e}");
}

#[test]
fn gguf_of_another_architecture_is_refused() {
    let d = quantized_fixture(QuantFormat::Q8_0);
    let f = d.path().join("model.gguf");
    let mut bytes = std::fs::read(&f).unwrap();
    let at = bytes.windows(10).position(|w| w == b"llada2_moe").unwrap();
    bytes[at..at + 10].copy_from_slice(b"qwen3__moe");
    std::fs::write(&f, bytes).unwrap();
    let e = one_line_error(&["decode", "--model", d.path().to_str().unwrap(), "--prompt-ids", "5,6"], &[]);
    assert!(e.contains("model.gguf") && e.contains("architecture is \"qwen3__moe\""), "{e}");
}

#[test]
fn a_file_that_is_not_gguf_is_refused() {
    let d = quantized_fixture(QuantFormat::Q8_0);
    std::fs::write(d.path().join("model.gguf"), b"not a gguf at all, just text").unwrap();
    let e = one_line_error(&["decode", "--model", d.path().to_str().unwrap(), "--prompt-ids", "5,6"], &[]);
    assert!(e.contains("model.gguf") && e.contains("not a readable GGUF"), "{e}");
}

#[test]
fn a_model_larger_than_memory_is_refused_before_loading_with_what_would_fit() {
    let fixture = common::fixture_dir();
    let e = one_line_error(
        &["decode", "--model", fixture.to_str().unwrap(), "--prompt-ids", "5,6"],
        &[("DRAFTSCOPE_MEMORY_AVAILABLE", "1M")],
    );
    assert!(e.contains("loading needs about") && e.contains("is available"), "{e}");
    let cfg = synth::config(Like::Mini, None).unwrap();
    let f32 = draftscope::model::memory::estimate_as(&cfg, candle_core::DType::F32, None);
    let q4 = draftscope::model::memory::estimate_as(&cfg, candle_core::DType::F32, Some(QuantFormat::Q4K));
    assert!(f32 > 60_000_000_000 && q4 < 13_000_000_000, "{f32} {q4}");
}

#[test]
fn lora_trains_on_a_quantized_frozen_base() {
    use draftscope::model::lora::{AdapterConfig, attach_new};
    let d = quantized_fixture(QuantFormat::Q8_0);
    let mut m = LoadedModel::load_dir("q", d.path(), DeviceKind::Cpu, DtypeKind::F32).unwrap().model;
    assert!(m.linears_mut().iter().any(|(_, l)| l.quant.is_some()));
    let cfg = AdapterConfig::new(4, 8.0, 0.0, &["query_key_value".to_string()], false, "q");
    let vars = attach_new(&mut m, &cfg, 0).unwrap();
    m.fused = false;
    let ids: Vec<u32> = (0..16u32).collect();
    let loss = m
        .forward_window(&ids, MaskKind::Full, &Collect::default())
        .unwrap()
        .logits
        .unwrap()
        .sqr()
        .unwrap()
        .mean_all()
        .unwrap();
    let grads = loss.backward().unwrap();
    // Layer 0's B gets a gradient only through the quantized layers above it.
    let b0 = &vars["base_model.model.model.layers.0.attention.query_key_value.lora_B.weight"];
    let g = grads.get(b0.as_tensor()).expect("gradient for layer 0 lora_B");
    assert!(g.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() > 0.0);
}

#[test]
fn a_synth_model_commits_and_edits_when_decoding() {
    let d = tempfile::tempdir().unwrap();
    synth::write_dir(d.path(), Like::Tiny, None, 0, Output::Safetensors("F32"), &mut |_| {}).unwrap();
    let args = [
        "decode",
        "--model",
        d.path().to_str().unwrap(),
        "--prompt-ids",
        "5,6,7,8,9,10,11,12",
        "--gen-length",
        "32",
    ];
    let (code, stdout, err) = run(&args, &[]);
    assert_eq!(code, 0, "{err}");
    let summary = stdout.lines().last().unwrap_or_default().to_string();
    assert!(summary.contains("32 tokens") && !summary.contains(" 0 T2T edits"), "{summary}");
}

#[test]
fn synth_refuses_a_depth_the_config_does_not_have() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("m");
    let e =
        one_line_error(&["synth", "--like", "tiny", "--layers", "9", "--out", out.to_str().unwrap()], &[]);
    assert!(e.contains("--layers 9") && e.contains("1..=3"), "{e}");
}

#[test]
fn the_mapped_gguf_gives_the_logits_of_the_heap_copy() {
    use candle_core::{DType, Device};
    use draftscope::model::gguf::GgufWeights;
    use draftscope::model::{Config, Llada2};
    let d = tempfile::tempdir().unwrap();
    for f in [QuantFormat::Q8_0, QuantFormat::Q4K, QuantFormat::Q4KMoe] {
        let dir = d.path().join(f.name());
        synth::write_dir(&dir, Like::Tiny, Some(2), 3, Output::Gguf(f), &mut |_| {}).unwrap();
        let cfg = Config::from_file(&dir.join("config.json")).unwrap();
        let ids: Vec<u32> = (0..48u32).map(|i| (i * 7 + 3) % 500).collect();
        let logits = |mapped: bool| {
            let ws =
                GgufWeights::open_with(&dir.join("model.gguf"), &Device::Cpu, DType::F32, mapped).unwrap();
            let m = Llada2::new(&cfg, &ws).unwrap();
            let out =
                m.forward_window(&ids, MaskKind::GenerateBias { block_length: 16 }, &Collect::default());
            out.unwrap().logits.unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()
        };
        assert!(logits(true) == logits(false), "{}", f.name());
    }
}
