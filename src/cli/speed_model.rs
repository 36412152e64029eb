//! `draftscope speed --what model --model DIR`: what a user's machine does with a model
//! directory (e.g. a `synth` checkpoint at real widths): load time, peak RSS, and seconds per
//! 32-token block step, with the extrapolation to the full depth.

use std::time::Instant;

use anyhow::Result;
use candle_core::{Device, Tensor};

use crate::model::{Collect, DeviceKind, DtypeKind, KvCache, LoadedModel, MaskKind};

/// Peak resident set (VmHWM) of this process, in bytes.
pub fn peak_rss() -> Option<u64> {
    status_kb("VmHWM:")
}

/// Field `key` of /proc/self/status (a size in kB), in bytes.
fn status_kb(key: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = s.lines().find(|l| l.starts_with(key))?.split_whitespace().nth(1)?.parse::<u64>().ok()?;
    Some(kb * 1024)
}

fn median(v: Vec<f64>) -> f64 {
    crate::bench::stats::median(&v)
}

/// What `speed --what model` measures besides the step itself.
pub struct Options {
    /// Timed steps (the median is reported); with `scaling`, pairs of steps.
    pub reps: usize,
    /// The full depth to extrapolate the step time to.
    pub full_layers: Option<usize>,
    /// Also time the reference MoE path, interleaved.
    pub compare_moe: bool,
    /// Also time each step on one pool thread, interleaved with the all-thread step.
    pub scaling: bool,
}

/// Runs `f` on one thread of candle's CPU pool, where every pool operation inside it runs
/// inline (candle does not nest its pool): the same code on one core, in this process, so a
/// one-thread step can alternate with an all-thread step under the same machine load. The
/// calling thread waits at the pool's barrier meanwhile (spinning on its own core).
fn on_one_pool_thread<T: Send>(f: impl Fn() -> Result<T, candle_core::Error> + Sync) -> Result<T> {
    let pool = candle_core::utils::barrier_pool();
    if pool.n_workers() == 0 {
        anyhow::bail!("--scaling needs candle's pool to have 2 threads or more (give --threads 2)");
    }
    let out = std::sync::Mutex::new(None);
    // The caller is the last participant and is not marked as inside the pool; worker 0 is.
    pool.execute(|tid| {
        if tid == 0 {
            *out.lock().unwrap_or_else(|e| e.into_inner()) = Some(f());
        }
    });
    match out.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some(r) => Ok(r?),
        None => anyhow::bail!("internal: candle's pool did not run the one-thread step"),
    }
}

/// Loads `dir`, then times `reps` block-causal steps of a 32-token block after a 32-token
/// cached prompt (the cost of one decoding step), and prints one table row.
pub fn run(dir: &str, dtype: DtypeKind, opts: Options) -> Result<()> {
    let Options { reps, full_layers, compare_moe, scaling } = opts;
    let t = Instant::now();
    let lm = LoadedModel::load(Some(dir), DeviceKind::Cpu, dtype)?;
    let load_s = t.elapsed().as_secs_f64();
    let gb = |b: Option<u64>| b.map(|b| format!("{:.2} GB", b as f64 / 1e9)).unwrap_or_else(|| "?".into());
    let loaded = format!("RSS after load {} (peak {})", gb(status_kb("VmRSS:")), gb(peak_rss()));
    let mut lm = lm;
    let m = &lm.model;
    let b = 32;
    let dev = Device::Cpu;
    let v = m.cfg.vocab_size as u32;
    let ids: Vec<u32> = (0..2 * b as u32).map(|i| (i * 7919 + 13) % (v - 8)).collect();
    let prefix = Tensor::new(&ids[..b], &dev)?.unsqueeze(0)?;
    let bias = MaskKind::BlockCausal { block_length: b }.bias(0, b, b, &dev)?;
    let out = m.forward(&prefix, 0, bias.as_ref(), None, b, &Collect::default())?;
    let mut cache = KvCache::default();
    cache.extend(out.new_kv)?;
    let mut block = ids[b..].to_vec();
    for x in block.iter_mut().skip(b / 2) {
        *x = m.cfg.mask_token_id;
    }
    let block = Tensor::new(block.as_slice(), &dev)?.unsqueeze(0)?;
    // Warm-up: 8 distinct 32-token blocks route to nearly every expert (8·32·top-k choices),
    // so the peak RSS counts every layer's weights resident — memory-mapped pages become
    // resident only when first read.
    for w in 0..8u32 {
        let ids: Vec<u32> = (0..b as u32).map(|i| ((w + 2) * 104_729 + i * 7919) % (v - 8)).collect();
        let t = Tensor::new(ids.as_slice(), &dev)?.unsqueeze(0)?;
        m.forward(&t, b, None, Some(&cache), b, &Collect::default())?;
    }
    // One block step with logits: what every timing below measures.
    let step_once = || m.forward(&block, b, None, Some(&cache), 0, &Collect::default());
    // One untimed step: candle builds its tiled copy of a k-quant weight on first use (an
    // lm_head runs only when logits are asked for), which is load work, not step work.
    step_once()?;
    // The head alone, on rows shaped like the step's, interleaved with the steps: a depth-cut
    // checkpoint keeps the whole vocabulary, so its head is a large share of its step.
    let head_in = Tensor::ones((1, b, m.cfg.hidden_size), m.dtype(), &dev)?;
    let (mut steps, mut heads) = (Vec::new(), Vec::new());
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        step_once()?;
        steps.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        m.lm_head.forward(&head_in)?;
        heads.push(t.elapsed().as_secs_f64());
    }
    let step = median(steps);
    let head = median(heads).min(step);
    let layers = m.cfg.num_hidden_layers;
    let threads = candle_core::utils::get_num_threads();
    let rss = gb(peak_rss());
    let extra = match full_layers {
        Some(full) if full > layers => {
            // The head once; the rest (embeddings, layers) scaled by depth. A dense first
            // layer counts as a MoE one, so this is approximate.
            let body = step - head;
            format!(
                "  (head {head:.3} s)  full {full} layers: ~{:.2} s/step (head + layers × {full}/{layers})",
                head + body * full as f64 / layers as f64
            )
        }
        _ => String::new(),
    };
    println!(
        "{dir}  layers {layers}  threads {threads}  load {load_s:.1} s  {loaded}  peak RSS {rss}  step {step:.3} s/32 tokens{extra}"
    );
    if scaling {
        // Pairs: all threads, then one, then all, ... so both see the same machine load.
        let mut all = Vec::new();
        let mut one = Vec::new();
        for _ in 0..reps.max(1) {
            let t = Instant::now();
            step_once()?;
            all.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            on_one_pool_thread(step_once)?;
            one.push(t.elapsed().as_secs_f64());
        }
        let mut ratios: Vec<f64> = one.iter().zip(&all).map(|(o, a)| o / a).collect();
        ratios.sort_by(f64::total_cmp);
        let q = |f: f64| ratios[((f * (ratios.len() - 1) as f64).round() as usize).min(ratios.len() - 1)];
        let (m1, mn) = (median(one), median(all));
        println!(
            "  scaling: 1 thread {m1:.3} s/step, {threads} threads {mn:.3} s/step; speed-up per pair median {:.2}× (quartiles {:.2}–{:.2}×, range {:.2}–{:.2}×, {} pairs); ratio of medians {:.2}×",
            crate::bench::stats::median(&ratios),
            q(0.25),
            q(0.75),
            ratios[0],
            ratios[ratios.len() - 1],
            ratios.len(),
            m1 / mn
        );
    }
    if compare_moe {
        // Interleaved, so both paths see the same machine load: new, reference, new, ...
        let mut fast = Vec::new();
        let mut reference = Vec::new();
        for _ in 0..reps.max(1) {
            for (flag, out) in [(false, &mut fast), (true, &mut reference)] {
                set_reference(&mut lm.model, flag);
                let t = Instant::now();
                lm.model.forward(&block, b, None, Some(&cache), 0, &Collect::default())?;
                out.push(t.elapsed().as_secs_f64());
            }
        }
        let (f, r) = (median(fast), median(reference));
        let rss = gb(peak_rss());
        println!(
            "  moe: expert path {f:.3} s/step, reference path {r:.3} s/step (reference/expert {:.2}×; peak RSS now {rss})",
            r / f
        );
    }
    Ok(())
}

fn set_reference(m: &mut crate::model::Llada2, on: bool) {
    for l in &mut m.layers {
        if let crate::model::llada2::FeedForward::Moe(moe) = &mut l.mlp {
            moe.reference_path = on;
        }
    }
}
