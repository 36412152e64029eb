//! `--eval-every K`: benchmark suites on the model being trained, recorded in the session
//! results store (for the results pane) and in the run's `run.json` (`evals`).

use anyhow::Result;

use crate::bench::{ModelRef, ResultsStore, RunContext, RunOptions, bench_suites, load_suites};
use crate::decode::DecodeSpec;
use crate::model::{Llada2, TextCodec};

/// A frozen, inference-mode copy of the training model (fused kernels, no dropout, no graph
/// hanging off the adapter or trainable weights).
pub fn inference_copy(model: &Llada2) -> Llada2 {
    let mut m = model.clone();
    m.fused = true;
    m.word_embeddings = m.word_embeddings.detach();
    for (_, lin) in m.linears_mut() {
        lin.training = false;
        lin.trainable = false;
        lin.weight = lin.weight.detach();
        if let Some(l) = &mut lin.lora {
            l.a = l.a.detach();
            l.b = l.b.detach();
        }
    }
    m
}

/// Runs `suites` (first `limit` items each, Q-mode, block-causal) and returns one JSON summary
/// per suite.
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    model: &Llada2,
    codec: &TextCodec,
    model_id: &str,
    adapter: Option<&str>,
    step: usize,
    suites: &[String],
    limit: Option<usize>,
) -> Result<Vec<serde_json::Value>> {
    let data_dir = crate::session::data_dir(None);
    let suites = load_suites(suites, Default::default(), &[], &data_dir)?;
    let m = inference_copy(model);
    let spec = DecodeSpec::default();
    let params = spec.params(m.cfg.eos_token_id, m.cfg.mask_token_id);
    let opts = RunOptions { params, attention: spec.attention, jobs: 1, chat: true };
    let ctx = RunContext::new(&data_dir, spec.mode, Some(step as u64), limit);
    let lm = ModelRef { id: model_id, adapter, model: &m, codec };
    let records = bench_suites(lm, &suites, &opts, &ctx, &|_, _| {})?;
    ResultsStore::open(&data_dir).append(&records)?;
    Ok(records
        .iter()
        .map(|r| {
            serde_json::json!({
                "step": step,
                "run_id": r.run_id,
                "suite": r.suite,
                "n": r.metrics.n,
                "accuracy": r.metrics.accuracy,
                "accuracy_ci": r.metrics.accuracy_ci,
                "edit_intensity": r.metrics.edit_intensity,
                "tpf": r.metrics.tpf,
                "over_corrected": r.metrics.over_corrected,
                "final_digit_errors": r.metrics.final_digit_errors,
            })
        })
        .collect())
}
