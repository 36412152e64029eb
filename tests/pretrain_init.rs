//! Continued pretraining (`pretrain --init DIR`): the run starts from the model's weights,
//! exactly, and a model of another shape is refused by name.

use std::path::Path;

use candle_core::Device;
use draftscope::train::{Objective, RunKind, Trainer, testutil};

fn init_run(base: &Path, cfg: draftscope::model::Config, work: &Path) -> anyhow::Result<Trainer> {
    let tok = work.join("tok");
    testutil::write_tokenizer(&tok).unwrap();
    let corpus = work.join("corpus.jsonl");
    testutil::write_corpus(&corpus, 20).unwrap();
    let run = RunKind::Pretrain {
        model: cfg,
        init_std: 0.1,
        bias_update_rate: 1e-3,
        init_from: Some(base.to_path_buf()),
    };
    let rc = testutil::run_config(run, Objective::Random, &corpus, &tok.join("tokenizer.json"), 3);
    Trainer::create(&work.join("run"), rc)
}

#[test]
fn continued_pretraining_starts_from_the_models_weights() {
    let base = tempfile::tempdir().unwrap();
    let cfg = testutil::write_base(base.path(), 5).unwrap();
    let work = tempfile::tempdir().unwrap();
    let t = init_run(base.path(), cfg, work.path()).unwrap();
    let stored = candle_core::safetensors::load(base.path().join("model.safetensors"), &Device::Cpu).unwrap();
    assert_eq!(t.saved.len(), stored.len());
    for (name, var) in &t.saved {
        let want = stored[name].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let got = var.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn a_model_of_another_shape_is_refused_by_tensor_name() {
    let base = tempfile::tempdir().unwrap();
    let mut cfg = testutil::write_base(base.path(), 5).unwrap();
    cfg.intermediate_size *= 2;
    let work = tempfile::tempdir().unwrap();
    let e =
        format!("{:#}", init_run(base.path(), cfg, work.path()).err().expect("a shape mismatch is refused"));
    assert!(e.contains("--init") && e.contains("has shape"), "{e}");
    assert!(!work.path().join("run").join("run.json").exists(), "no partial run is left: {e}");
}
