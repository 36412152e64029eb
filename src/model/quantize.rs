//! `quantize`: a GGUF copy of a safetensors checkpoint, written one tensor at a time with
//! the storage types [`super::quant`] chooses.

use super::quant::{QuantFormat, is_linear_weight, storage_type};

/// Writes `out/model.gguf` (+ config.json and tokenizer files) from the safetensors model in
/// `src`, one tensor at a time. Returns the GGUF size and how many linears fell back.
pub fn quantize_dir(
    src: &std::path::Path,
    format: QuantFormat,
    out: &std::path::Path,
) -> anyhow::Result<Report> {
    use anyhow::Context;
    use candle_core::{DType, Device};

    use super::weights::WeightSource;
    if super::gguf::find_gguf(src)?.is_some() {
        anyhow::bail!("{}: already a GGUF model; quantize the full-precision checkpoint", src.display());
    }
    if std::fs::canonicalize(src).ok() == std::fs::canonicalize(out).ok() {
        anyhow::bail!("--out {}: is the source model directory; choose a new directory", out.display());
    }
    let cfg_path = src.join("config.json");
    let cfg = super::Config::from_file(&cfg_path)?;
    let ws = super::weights::SafetensorsWeights::open_dir(src, &Device::Cpu, DType::F32)?;
    let specs = super::synth::specs(&cfg);
    let plan: Vec<super::gguf::Planned> = specs
        .iter()
        .map(|s| super::gguf::Planned {
            name: s.name.clone(),
            shape: s.shape.clone(),
            dtype: storage_type(&s.name, &s.shape, format),
        })
        .collect();
    let mut report = Report::default();
    for p in &plan {
        if is_linear_weight(&p.name) || p.name == "lm_head.weight" {
            *report.linears.entry(format!("{:?}", p.dtype)).or_default() += 1;
        }
    }
    let config_text =
        std::fs::read_to_string(&cfg_path).with_context(|| format!("cannot read {}", cfg_path.display()))?;
    let meta = [
        ("draftscope.config", config_text.clone()),
        ("draftscope.quantization", format.name().to_string()),
        ("draftscope.source", src.display().to_string()),
    ];
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    report.bytes = super::gguf::write_streaming(&out.join("model.gguf"), &meta, &plan, |_, p, w| {
        let t = ws.get(&p.name, &p.shape)?;
        let rows = if p.shape.len() > 1 { p.shape[0] } else { 1 };
        let row_len: usize = p.shape.iter().skip(1).product::<usize>().max(1);
        let step = (super::synth::CHUNK / row_len).max(1);
        let mut n = 0u64;
        let mut r = 0;
        while r < rows {
            let k = step.min(rows - r);
            let (chunk, shape) = if p.shape.len() > 1 {
                let mut shape = p.shape.clone();
                shape[0] = k;
                (t.narrow(0, r, k)?.flatten_all()?.to_vec1::<f32>()?, shape)
            } else {
                (t.to_vec1::<f32>()?, p.shape.clone())
            };
            let b = super::gguf::encode(&chunk, &shape, p.dtype)?;
            w.write_all(&b)?;
            n += b.len() as u64;
            r += k;
        }
        Ok(n)
    })?;
    crate::session::atomic_write(&out.join("config.json"), config_text.as_bytes())?;
    for f in ["tokenizer.json", "tokenizer_config.json"] {
        let p = src.join(f);
        if p.exists() {
            crate::session::atomic_write(&out.join(f), &std::fs::read(&p)?)?;
        }
    }
    Ok(report)
}

/// What `quantize` wrote.
#[derive(Debug, Default)]
pub struct Report {
    pub bytes: u64,
    /// Linear weights (incl. lm_head) per storage type.
    pub linears: std::collections::BTreeMap<String, usize>,
}
