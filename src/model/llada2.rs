//! LLaDA2 MoE (`LLaDA2MoeModelLM`) in candle, mirroring the official module tree and tensor
//! names so checkpoints load as they are published.
//!
//! One forward serves inference and training. With `fused = true` it uses candle's fused
//! softmax / RMSNorm kernels (fast, but they have no backward); training sets `fused = false`
//! so every op is a composed one that carries gradients (DESIGN.md §8).

use candle_core::{D, DType, Device, IndexOp, Result, Tensor};

use super::config::Config;
use super::linear::Linear;
use super::mlp::Mlp;
use super::weights::{Init, WeightSource};

/// Additive attention bias over a window, relative to block structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskKind {
    /// The released `generate()`'s 0/1 mask *added* to the scores: +1 on keys in the same
    /// or an earlier block, 0 elsewhere. Soft, effectively bidirectional.
    GenerateBias { block_length: usize },
    /// Hard block-causal: 0 on same/earlier-block keys, −∞ on later blocks.
    BlockCausal { block_length: usize },
    /// No bias (plain bidirectional; equal to an all-ones additive mask).
    Full,
}

impl MaskKind {
    /// Additive bias `[q_len, k_len]` for queries at `q_start..q_start+q_len` against keys
    /// `0..k_len`; `None` when no bias is needed.
    pub fn bias(
        &self,
        q_start: usize,
        q_len: usize,
        k_len: usize,
        device: &Device,
    ) -> Result<Option<Tensor>> {
        let (b, hard) = match *self {
            MaskKind::Full => return Ok(None),
            MaskKind::GenerateBias { block_length } => (block_length, false),
            MaskKind::BlockCausal { block_length } => (block_length, true),
        };
        if hard && q_start.is_multiple_of(b) && q_len <= b && k_len <= q_start + b {
            // A single block against its prefix: every key is visible, the hard mask is a no-op.
            return Ok(None);
        }
        let mut data = Vec::with_capacity(q_len * k_len);
        for qi in q_start..q_start + q_len {
            let qb = qi / b;
            for k in 0..k_len {
                let visible = k / b <= qb;
                data.push(match (visible, hard) {
                    (true, false) => 1.0f32,
                    (false, false) => 0.0,
                    (true, true) => 0.0,
                    (false, true) => f32::NEG_INFINITY,
                });
            }
        }
        Ok(Some(Tensor::from_vec(data, (q_len, k_len), device)?))
    }
}

/// Attention bias `[2n, 2n]` for block-diffusion training with clean context (BD3-LM /
/// LLaDA2 layout): the input is the noisy sequence followed by its clean copy, both at
/// positions `0..n`. A noisy block sees itself and the clean blocks before it; a clean block
/// sees the clean blocks up to itself. So every noisy block is denoised against a clean
/// prefix, exactly as at inference, where earlier blocks are already committed.
pub fn clean_context_bias(n: usize, block_length: usize, device: &Device) -> Result<Tensor> {
    let b = block_length.max(1);
    let mut data = Vec::with_capacity(4 * n * n);
    for q in 0..2 * n {
        let (q_clean, qb) = (q >= n, (q % n) / b);
        for k in 0..2 * n {
            let (k_clean, kb) = (k >= n, (k % n) / b);
            let visible = match (q_clean, k_clean) {
                (false, false) => kb == qb,
                (false, true) => kb < qb,
                (true, false) => false,
                (true, true) => kb <= qb,
            };
            data.push(if visible { 0.0f32 } else { f32::NEG_INFINITY });
        }
    }
    Tensor::from_vec(data, (2 * n, 2 * n), device)
}

/// Pre-sigmoid router logits `[tokens, experts]` and the experts chosen per token.
pub type RouterRecord = (Tensor, Vec<Vec<usize>>);

/// What a forward returns besides logits, when asked.
#[derive(Debug, Default)]
pub struct Collect {
    pub hidden_states: bool,
    pub router: bool,
}

#[derive(Debug)]
pub struct ForwardOutput {
    /// `[b, rows, vocab]` for the rows asked (`logits_from..n`), `None` when no row was asked.
    pub logits: Option<Tensor>,
    /// Official `output_hidden_states` order: embeddings, each layer's output, the last one
    /// after the final norm. Each `[b, n, hidden]`.
    pub hidden_states: Vec<Tensor>,
    /// Per MoE layer: pre-sigmoid router logits `[b·n, experts]` and the chosen experts.
    pub router: Vec<RouterRecord>,
    /// Keys/values of this call's rows, per layer (after norm + RoPE), `[b, h_kv, n, d]`.
    pub new_kv: Vec<(Tensor, Tensor)>,
}

/// Keys and values of completed blocks, so a block-causal step runs only the current block.
#[derive(Debug, Default, Clone)]
pub struct KvCache {
    layers: Vec<(Tensor, Tensor)>,
    len: usize,
}

impl KvCache {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends the keys/values a forward produced (its rows become cached prefix).
    pub fn extend(&mut self, new_kv: Vec<(Tensor, Tensor)>) -> Result<()> {
        let added = new_kv.first().map(|(k, _)| k.dim(2)).transpose()?.unwrap_or(0);
        if self.layers.is_empty() {
            self.layers = new_kv;
        } else {
            for (slot, (k, v)) in self.layers.iter_mut().zip(new_kv) {
                slot.0 = Tensor::cat(&[&slot.0, &k], 2)?;
                slot.1 = Tensor::cat(&[&slot.1, &v], 2)?;
            }
        }
        self.len += added;
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct RmsNorm {
    pub weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    fn new(ws: &dyn WeightSource, name: &str, dim: usize, eps: f64) -> anyhow::Result<Self> {
        Ok(Self { weight: ws.get_init(name, &[dim], Init::Ones)?, eps })
    }

    /// Official: compute in f32, scale by `weight` after casting back.
    pub fn forward(&self, x: &Tensor, fused: bool) -> Result<Tensor> {
        if fused && x.is_contiguous() {
            if let Some(y) = super::pooled_ops::rms_norm(x, &self.weight, self.eps as f32)? {
                return Ok(y);
            }
            return candle_nn::ops::rms_norm(x, &self.weight, self.eps as f32);
        }
        let dtype = x.dtype();
        let xf = x.to_dtype(DType::F32)?;
        let var = xf.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = xf.broadcast_div(&(var + self.eps)?.sqrt()?)?;
        normed.to_dtype(dtype)?.broadcast_mul(&self.weight)
    }
}

fn softmax_last(x: &Tensor, fused: bool) -> Result<Tensor> {
    if fused {
        return candle_nn::ops::softmax_last_dim(x);
    }
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

/// A linear layer named `name` from the weight source.
pub(crate) fn linear(ws: &dyn WeightSource, name: &str, out: usize, inp: usize) -> anyhow::Result<Linear> {
    ws.get_linear(name, out, inp)
}

#[derive(Debug, Clone)]
pub struct Gate {
    /// `[experts, hidden]`
    pub weight: Tensor,
    /// `[experts]`, used for selection only.
    pub expert_bias: Tensor,
}

#[derive(Debug, Clone)]
pub struct Moe {
    pub gate: Gate,
    pub experts: Vec<Mlp>,
    pub shared_experts: Option<Mlp>,
    top_k: usize,
    n_group: usize,
    topk_group: usize,
    scaling: f64,
    /// Inference takes the per-expert tensor loop even when the experts are quantized
    /// (the reference the quantized expert path is tested against).
    pub reference_path: bool,
}

impl Moe {
    fn new(ws: &dyn WeightSource, name: &str, cfg: &Config) -> anyhow::Result<Self> {
        let e = cfg.num_experts.unwrap_or(0);
        let h = cfg.hidden_size;
        let gate = Gate {
            weight: ws.get(&format!("{name}.gate.weight"), &[e, h])?,
            expert_bias: ws.get_init(&format!("{name}.gate.expert_bias"), &[e], Init::Zeros)?,
        };
        let experts = (0..e)
            .map(|i| Mlp::new(ws, &format!("{name}.experts.{i}"), h, cfg.moe_intermediate_size))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let shared_experts = match cfg.shared_intermediate_size() {
            Some(w) if w > 0 => Some(Mlp::new(ws, &format!("{name}.shared_experts"), h, w)?),
            _ => None,
        };
        Ok(Self {
            gate,
            experts,
            shared_experts,
            top_k: cfg.num_experts_per_tok,
            n_group: cfg.n_group,
            topk_group: cfg.topk_group,
            scaling: cfg.routed_scaling_factor,
            reference_path: false,
        })
    }

    /// Group-limited top-k on biased scores (one row per token), as the official gate.
    fn select(&self, biased: &[f32], n_experts: usize) -> Vec<usize> {
        let per_group = n_experts / self.n_group;
        let mut group_scores: Vec<(usize, f32)> = (0..self.n_group)
            .map(|g| {
                let s = &biased[g * per_group..(g + 1) * per_group];
                let (mut a, mut b) = (f32::NEG_INFINITY, f32::NEG_INFINITY);
                for &v in s {
                    if v > a {
                        b = a;
                        a = v;
                    } else if v > b {
                        b = v;
                    }
                }
                let sum = if per_group >= 2 { a + b } else { a };
                (g, sum)
            })
            .collect();
        group_scores.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
        let mut allowed = vec![false; self.n_group];
        for &(g, _) in group_scores.iter().take(self.topk_group) {
            allowed[g] = true;
        }
        let mut cand: Vec<(usize, f32)> =
            (0..n_experts).filter(|&e| allowed[e / per_group]).map(|e| (e, biased[e])).collect();
        cand.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
        cand.into_iter().take(self.top_k).map(|(e, _)| e).collect()
    }

    /// Inference: each expert runs once on its gathered tokens and its weighted output is
    /// added straight into one preallocated `[tokens, hidden]` buffer.
    fn combine_into(
        &self,
        flat: &Tensor,
        weights: &Tensor,
        rows_of: &[Vec<u32>],
        slot_of: &[Vec<u32>],
    ) -> Result<Tensor> {
        let (t, h) = flat.dims2()?;
        let w: Vec<f32> = weights.flatten_all()?.to_vec1()?;
        let mut acc = vec![0f32; t * h];
        let active: Vec<usize> = (0..rows_of.len()).filter(|&e| !rows_of[e].is_empty()).collect();
        let expert = |e: usize| -> Result<Vec<f32>> {
            let xe = flat.index_select(&Tensor::new(rows_of[e].as_slice(), flat.device())?, 0)?;
            self.experts[e].forward(&xe)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1()
        };
        // On the CPU the experts run concurrently, one thread per core: one expert's rows are a
        // few tokens, too small for gemm to split over threads, so one at a time left every
        // other core idle. Each expert's product is the same whichever thread runs it, and the
        // sum below keeps ascending expert order, so the result does not depend on the threads.
        // Scoped threads rather than candle's barrier pool: an op inside an expert may itself
        // call the pool, and the pool's calling thread cannot re-enter it. The f32 kernel stays on
        // the worker's thread (`serial`): the pool would only queue one worker behind another.
        let outs: Vec<std::sync::OnceLock<Result<Vec<f32>>>> =
            (0..active.len()).map(|_| std::sync::OnceLock::new()).collect();
        let threads = candle_core::utils::get_num_threads().min(active.len());
        if let Some(done) = super::moe_f32::run(&self.experts, flat, &active, rows_of)? {
            for (slot, v) in outs.iter().zip(done) {
                let _ = slot.set(Ok(v));
            }
        } else if flat.device().is_cpu() && threads > 1 {
            let next = std::sync::atomic::AtomicUsize::new(0);
            let work = || {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= active.len() {
                        break;
                    }
                    let _ = outs[i].set(super::cpu_f32::serial(|| expert(active[i])));
                }
            };
            std::thread::scope(|s| {
                for _ in 1..threads {
                    s.spawn(work);
                }
                work();
            });
        }
        for (i, &e) in active.iter().enumerate() {
            let rows = &rows_of[e];
            let out = match outs[i].get() {
                Some(Ok(v)) => std::borrow::Cow::Borrowed(v.as_slice()),
                Some(Err(err)) => candle_core::bail!("expert {e}: {err}"),
                None => std::borrow::Cow::Owned(expert(e)?),
            };
            for (j, (&row, &slot)) in rows.iter().zip(&slot_of[e]).enumerate() {
                let we = w[slot as usize];
                let dst = &mut acc[row as usize * h..(row as usize + 1) * h];
                for (d, o) in dst.iter_mut().zip(&out[j * h..(j + 1) * h]) {
                    *d += we * o;
                }
            }
        }
        Tensor::from_vec(acc, (t, h), flat.device())
    }

    /// Training: the same sum with differentiable ops.
    fn combine_graph(
        &self,
        flat: &Tensor,
        weights: &Tensor,
        rows_of: &[Vec<u32>],
        slot_of: &[Vec<u32>],
    ) -> Result<Tensor> {
        let (t, h) = flat.dims2()?;
        let flat_w = weights.reshape((t * self.top_k, 1))?;
        let mut y = Tensor::zeros((t, h), DType::F32, flat.device())?;
        for (e, rows) in rows_of.iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            let rows_t = Tensor::new(rows.as_slice(), flat.device())?;
            let slots_t = Tensor::new(slot_of[e].as_slice(), flat.device())?;
            let xe = flat.index_select(&rows_t, 0)?;
            let out = self.experts[e].forward(&xe)?.to_dtype(DType::F32)?;
            let w = flat_w.index_select(&slots_t, 0)?;
            y = y.index_add(&rows_t, &out.broadcast_mul(&w)?, 0)?;
        }
        Ok(y)
    }

    /// Returns the MoE output and, when asked, the router logits and choices.
    fn forward(&self, x: &Tensor, want_router: bool) -> Result<(Tensor, Option<RouterRecord>)> {
        let (b, n, h) = x.dims3()?;
        let flat = x.reshape((b * n, h))?;
        let n_experts = self.experts.len();
        // Router in fp32, sigmoid scores; bias only for choosing.
        let logits = match super::linear::f32_kernel(&flat, &self.gate.weight)? {
            Some(l) => l,
            None => flat.to_dtype(DType::F32)?.matmul(&self.gate.weight.to_dtype(DType::F32)?.t()?)?,
        };
        let scores = candle_nn::ops::sigmoid(&logits)?;
        let biased = scores.detach().broadcast_add(&self.gate.expert_bias.to_dtype(DType::F32)?)?;
        let biased_rows: Vec<Vec<f32>> = biased.to_vec2()?;
        let chosen: Vec<Vec<usize>> = biased_rows.iter().map(|r| self.select(r, n_experts)).collect();
        let idx: Vec<u32> = chosen.iter().flatten().map(|&e| e as u32).collect();
        let idx_t = Tensor::from_vec(idx, (b * n, self.top_k), x.device())?;
        let picked = scores.gather(&idx_t, 1)?;
        let weights =
            if self.top_k > 1 { picked.broadcast_div(&(picked.sum_keepdim(1)? + 1e-20)?)? } else { picked };
        let weights = (weights * self.scaling)?;
        // Dispatch tokens per expert.
        let mut rows_of: Vec<Vec<u32>> = vec![Vec::new(); n_experts];
        let mut slot_of: Vec<Vec<u32>> = vec![Vec::new(); n_experts];
        for (t, ex) in chosen.iter().enumerate() {
            for (k, &e) in ex.iter().enumerate() {
                rows_of[e].push(t as u32);
                slot_of[e].push((t * self.top_k + k) as u32);
            }
        }
        let y = if x.track_op() || !x.device().is_cpu() {
            self.combine_graph(&flat, &weights, &rows_of, &slot_of)?
        } else if self.reference_path {
            self.combine_into(&flat, &weights, &rows_of, &slot_of)?
        } else {
            let w: Vec<f32> = weights.flatten_all()?.to_vec1()?;
            let routing = super::moe_cpu::RoutingRef {
                rows_of: &rows_of,
                slot_of: &slot_of,
                weights: &w,
                top_k: self.top_k,
            };
            match super::moe_cpu::forward(&self.experts, &flat, &routing)? {
                Some(y) => y,
                None => self.combine_into(&flat, &weights, &rows_of, &slot_of)?,
            }
        };
        let mut y = y.to_dtype(x.dtype())?.reshape((b, n, h))?;
        if let Some(s) = &self.shared_experts {
            y = (y + s.forward(x)?)?;
        }
        let router = if want_router { Some((logits, chosen)) } else { None };
        Ok((y, router))
    }
}

#[derive(Debug, Clone)]
pub enum FeedForward {
    Dense(Mlp),
    Moe(Box<Moe>),
}

#[derive(Debug, Clone)]
pub struct Attention {
    pub query_key_value: Linear,
    pub dense: Linear,
    pub query_layernorm: Option<RmsNorm>,
    pub key_layernorm: Option<RmsNorm>,
    n_q: usize,
    n_kv: usize,
    head_dim: usize,
}

impl Attention {
    fn new(ws: &dyn WeightSource, name: &str, cfg: &Config) -> anyhow::Result<Self> {
        let d = cfg.head_dim();
        let (hq, hkv, h) = (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.hidden_size);
        let qkv_out = (hq + 2 * hkv) * d;
        let mut query_key_value = linear(ws, &format!("{name}.query_key_value"), qkv_out, h)?;
        if cfg.use_qkv_bias {
            query_key_value.bias =
                Some(ws.get_init(&format!("{name}.query_key_value.bias"), &[qkv_out], Init::Zeros)?);
        }
        let mut dense = linear(ws, &format!("{name}.dense"), h, hq * d)?;
        if cfg.use_bias {
            dense.bias = Some(ws.get_init(&format!("{name}.dense.bias"), &[h], Init::Zeros)?);
        }
        let (query_layernorm, key_layernorm) = if cfg.use_qk_norm {
            (
                Some(RmsNorm::new(ws, &format!("{name}.query_layernorm.weight"), d, cfg.rms_norm_eps)?),
                Some(RmsNorm::new(ws, &format!("{name}.key_layernorm.weight"), d, cfg.rms_norm_eps)?),
            )
        } else {
            (None, None)
        };
        Ok(Self { query_key_value, dense, query_layernorm, key_layernorm, n_q: hq, n_kv: hkv, head_dim: d })
    }

    #[allow(clippy::too_many_arguments)]
    fn forward(
        &self,
        x: &Tensor,
        rope: &Rope,
        bias: Option<&Tensor>,
        past: Option<&(Tensor, Tensor)>,
        fused: bool,
        queries_from: usize,
    ) -> Result<(Option<Tensor>, (Tensor, Tensor))> {
        let (b, n, _) = x.dims3()?;
        let d = self.head_dim;
        let qkv = self.query_key_value.forward(x)?.reshape((b, n, self.n_q + 2 * self.n_kv, d))?;
        let q = qkv.narrow(2, 0, self.n_q)?.transpose(1, 2)?.contiguous()?;
        let k = qkv.narrow(2, self.n_q, self.n_kv)?.transpose(1, 2)?.contiguous()?;
        let v = qkv.narrow(2, self.n_q + self.n_kv, self.n_kv)?.transpose(1, 2)?.contiguous()?;
        let q = match &self.query_layernorm {
            Some(nq) => nq.forward(&q, fused)?,
            None => q,
        };
        let k = match &self.key_layernorm {
            Some(nk) => nk.forward(&k, fused)?,
            None => k,
        };
        let k = rope.apply(&k)?;
        // Only rows `queries_from..` attend (the caller needs no output for the others); every
        // row still gives its key and value.
        let nq = n.saturating_sub(queries_from);
        if nq == 0 {
            return Ok((None, (k, v)));
        }
        let q = rope.apply(&q)?;
        let (q, bias) = if queries_from == 0 {
            (q, bias.cloned())
        } else {
            let rows = |m: &Tensor| -> Result<Tensor> {
                let r = m.rank() - 2;
                if m.dim(r)? == n { m.narrow(r, queries_from, nq) } else { Ok(m.clone()) }
            };
            (q.narrow(2, queries_from, nq)?, bias.map(rows).transpose()?)
        };
        let scale = (d as f64).powf(-0.5);
        if fused {
            let (keys, values): (Vec<&Tensor>, Vec<&Tensor>) = match past {
                Some((pk, pv)) => (vec![pk, &k], vec![pv, &v]),
                None => (vec![&k], vec![&v]),
            };
            if let Some(out) =
                super::attention_cpu::run(&q.contiguous()?, &keys, &values, bias.as_ref(), scale)?
            {
                return Ok((Some(self.dense.forward(&out)?), (k, v)));
            }
        }
        let (k_all, v_all) = match past {
            Some((pk, pv)) => (Tensor::cat(&[pk, &k], 2)?, Tensor::cat(&[pv, &v], 2)?),
            None => (k.clone(), v.clone()),
        };
        let rep = self.n_q / self.n_kv;
        let (k_r, v_r) = if rep == 1 {
            (k_all, v_all)
        } else {
            let kl = k_all.dim(2)?;
            (
                k_all.unsqueeze(2)?.expand((b, self.n_kv, rep, kl, d))?.reshape((b, self.n_q, kl, d))?,
                v_all.unsqueeze(2)?.expand((b, self.n_kv, rep, kl, d))?.reshape((b, self.n_q, kl, d))?,
            )
        };
        let scores = (q.matmul(&k_r.t()?)? * scale)?;
        let scores = match &bias {
            Some(m) => scores.broadcast_add(&m.to_dtype(scores.dtype())?)?,
            None => scores,
        };
        let attn = softmax_last(&scores.to_dtype(DType::F32)?, fused)?.to_dtype(q.dtype())?;
        let out = attn.matmul(&v_r.contiguous()?)?;
        let out = out.transpose(1, 2)?.reshape((b, nq, self.n_q * d))?;
        Ok((Some(self.dense.forward(&out)?), (k, v)))
    }
}

/// Partial NeoX RoPE for one call's positions: rotate-half on the first `rope_dim` dims.
struct Rope {
    cos: Tensor,
    sin: Tensor,
    rope_dim: usize,
}

impl Rope {
    fn new(cfg: &Config, positions: &[usize], dtype: DType, device: &Device) -> Result<Self> {
        let n = positions.len();
        let rd = cfg.rope_dim();
        let half = rd / 2;
        let theta = cfg.rope_theta as f32;
        // As transformers computes it, in f32: inv_freq = 1 / θ^(2i/rd); freqs = inv_freq·pos.
        let inv: Vec<f32> = (0..half).map(|i| 1.0 / theta.powf((2 * i) as f32 / rd as f32)).collect();
        let mut cos = Vec::with_capacity(n * rd);
        let mut sin = Vec::with_capacity(n * rd);
        for &p in positions {
            for _ in 0..2 {
                for &f in &inv {
                    let a = f * p as f32;
                    cos.push(a.cos());
                    sin.push(a.sin());
                }
            }
        }
        Ok(Self {
            cos: Tensor::from_vec(cos, (n, rd), device)?.to_dtype(dtype)?,
            sin: Tensor::from_vec(sin, (n, rd), device)?.to_dtype(dtype)?,
            rope_dim: rd,
        })
    }

    /// `x`: `[b, h, n, d]`.
    fn apply(&self, x: &Tensor) -> Result<Tensor> {
        if self.rope_dim == 0 {
            return Ok(x.clone());
        }
        let d = x.dim(D::Minus1)?;
        let rd = self.rope_dim;
        let xr = x.narrow(D::Minus1, 0, rd)?;
        let x1 = xr.narrow(D::Minus1, 0, rd / 2)?;
        let x2 = xr.narrow(D::Minus1, rd / 2, rd / 2)?;
        let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
        let emb = (xr.broadcast_mul(&self.cos)? + rotated.broadcast_mul(&self.sin)?)?;
        if rd == d { Ok(emb) } else { Tensor::cat(&[&emb, &x.narrow(D::Minus1, rd, d - rd)?], D::Minus1) }
    }
}

#[derive(Debug, Clone)]
pub struct Layer {
    pub input_layernorm: RmsNorm,
    pub attention: Attention,
    pub post_attention_layernorm: RmsNorm,
    pub mlp: FeedForward,
}

#[derive(Debug, Clone)]
pub struct Llada2 {
    pub cfg: Config,
    /// `[vocab, hidden]`; may be stored narrower than the compute dtype (f16 from GGUF):
    /// the gathered rows are widened.
    pub word_embeddings: Tensor,
    pub layers: Vec<Layer>,
    pub norm: RmsNorm,
    pub lm_head: Linear,
    /// Fast fused kernels (inference); `false` for training (composed ops carry gradients).
    pub fused: bool,
    device: Device,
    dtype: DType,
}

impl Llada2 {
    pub fn new(cfg: &Config, ws: &dyn WeightSource) -> anyhow::Result<Self> {
        let h = cfg.hidden_size;
        // Tied: the table is also the lm_head weight, so it takes the compute dtype.
        let word_embeddings = if cfg.tie_word_embeddings {
            ws.get("model.word_embeddings.weight", &[cfg.vocab_size, h])?
        } else {
            ws.get_table("model.word_embeddings.weight", &[cfg.vocab_size, h])?
        };
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let p = format!("model.layers.{i}");
            let mlp = if cfg.is_moe_layer(i) {
                FeedForward::Moe(Box::new(Moe::new(ws, &format!("{p}.mlp"), cfg)?))
            } else {
                FeedForward::Dense(Mlp::new(ws, &format!("{p}.mlp"), h, cfg.intermediate_size)?)
            };
            layers.push(Layer {
                input_layernorm: RmsNorm::new(
                    ws,
                    &format!("{p}.input_layernorm.weight"),
                    h,
                    cfg.rms_norm_eps,
                )?,
                attention: Attention::new(ws, &format!("{p}.attention"), cfg)?,
                post_attention_layernorm: RmsNorm::new(
                    ws,
                    &format!("{p}.post_attention_layernorm.weight"),
                    h,
                    cfg.rms_norm_eps,
                )?,
                mlp,
            });
        }
        let norm = RmsNorm::new(ws, "model.norm.weight", h, cfg.rms_norm_eps)?;
        let lm_head = if cfg.tie_word_embeddings {
            Linear::new(word_embeddings.clone(), None)
        } else {
            linear(ws, "lm_head", cfg.vocab_size, h)?
        };
        Ok(Self {
            cfg: cfg.clone(),
            word_embeddings,
            layers,
            norm,
            lm_head,
            fused: true,
            device: ws.device().clone(),
            dtype: ws.dtype(),
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Forward `ids` (`[b, n]`, u32) placed at positions `start..start+n`, after an optional
    /// cached prefix of exactly `start` positions. `bias` is `[n, start+n]` (additive).
    /// Logits are computed only for rows `logits_from..n`.
    pub fn forward(
        &self,
        ids: &Tensor,
        start: usize,
        bias: Option<&Tensor>,
        cache: Option<&KvCache>,
        logits_from: usize,
        collect: &Collect,
    ) -> Result<ForwardOutput> {
        let (_, n) = ids.dims2()?;
        if let Some(c) = cache
            && c.len != start
        {
            candle_core::bail!("kv cache holds {} positions but the call starts at {start}", c.len);
        }
        let positions: Vec<usize> = (start..start + n).collect();
        self.forward_at(ids, &positions, bias, cache, logits_from, collect)
    }

    /// [`Self::forward`] with explicit position ids (one per column, shared by the batch), for
    /// training layouts that place two copies of a sequence at the same positions.
    pub fn forward_at(
        &self,
        ids: &Tensor,
        positions: &[usize],
        bias: Option<&Tensor>,
        cache: Option<&KvCache>,
        logits_from: usize,
        collect: &Collect,
    ) -> Result<ForwardOutput> {
        let (b, n) = ids.dims2()?;
        if positions.len() != n {
            candle_core::bail!("{} position ids for {n} tokens", positions.len());
        }
        let rows = self.word_embeddings.embedding(&ids.flatten_all()?)?;
        let mut x = super::linear::to_dtype(rows, self.dtype)?.reshape((b, n, self.cfg.hidden_size))?;
        let rope = Rope::new(&self.cfg, positions, self.dtype, &self.device)?;
        let mut hidden_states = Vec::new();
        let mut router = Vec::new();
        let mut new_kv = Vec::with_capacity(self.layers.len());
        if collect.hidden_states {
            hidden_states.push(x.clone());
        }
        // The last layer's output feeds only the logits, so when nothing else is collected it
        // runs its attention queries, MLP and MoE on the logits rows alone (`row0..n`; the
        // earlier rows still give their keys and values). Each row's result is its own, up to
        // the last bits where candle's matmul blocks fewer rows differently.
        let last = self.layers.len().saturating_sub(1);
        let trim = !collect.hidden_states && !collect.router;
        let mut row0 = 0;
        for (li, layer) in self.layers.iter().enumerate() {
            let past = cache.and_then(|c| c.layers.get(li));
            let h = layer.input_layernorm.forward(&x, self.fused)?;
            let queries_from = if trim && li == last { logits_from.min(n) } else { 0 };
            let (a, kv) = layer.attention.forward(&h, &rope, bias, past, self.fused, queries_from)?;
            new_kv.push(kv);
            let Some(a) = a else {
                // No logits row: the keys and values were all this layer had to give.
                row0 = n;
                break;
            };
            if queries_from > 0 {
                x = x.narrow(1, queries_from, n - queries_from)?.contiguous()?;
                row0 = queries_from;
            }
            x = (x + a)?;
            let h = layer.post_attention_layernorm.forward(&x, self.fused)?;
            let m = match &layer.mlp {
                FeedForward::Dense(mlp) => mlp.forward(&h)?,
                FeedForward::Moe(moe) => {
                    let (y, r) = moe.forward(&h, collect.router)?;
                    if let Some(r) = r {
                        router.push(r);
                    }
                    y
                }
            };
            x = (x + m)?;
            if collect.hidden_states && li + 1 < self.layers.len() {
                hidden_states.push(x.clone());
            }
        }
        let logits = if logits_from < n || collect.hidden_states {
            let from = logits_from.min(n) - row0;
            let rows = x.narrow(1, from, x.dim(1)? - from)?;
            if collect.hidden_states {
                hidden_states.push(self.norm.forward(&x, self.fused)?);
            }
            if logits_from < n {
                let normed = self.norm.forward(&rows.contiguous()?, self.fused)?;
                Some(self.lm_head.forward(&normed)?)
            } else {
                None
            }
        } else {
            None
        };
        Ok(ForwardOutput { logits, hidden_states, router, new_kv })
    }

    /// Full-window forward under a mask kind; logits for every row. The reference path used
    /// by `logits` and the `hf` decoder.
    pub fn forward_window(&self, ids: &[u32], mask: MaskKind, collect: &Collect) -> Result<ForwardOutput> {
        let t = Tensor::new(ids, &self.device)?.unsqueeze(0)?;
        let bias = mask.bias(0, ids.len(), ids.len(), &self.device)?;
        self.forward(&t, 0, bias.as_ref(), None, 0, collect)
    }

    /// Every linear layer by its module path (for LoRA targeting). Disjoint field borrows,
    /// so the borrow checker proves no two entries alias.
    pub fn linears_mut(&mut self) -> Vec<(String, &mut Linear)> {
        let Llada2 { layers, lm_head, .. } = self;
        let mut out: Vec<(String, &mut Linear)> = Vec::new();
        for (i, layer) in layers.iter_mut().enumerate() {
            let p = format!("model.layers.{i}");
            let Attention { query_key_value, dense, .. } = &mut layer.attention;
            out.push((format!("{p}.attention.query_key_value"), query_key_value));
            out.push((format!("{p}.attention.dense"), dense));
            match &mut layer.mlp {
                FeedForward::Dense(m) => m.linears_mut(&format!("{p}.mlp"), &mut out),
                FeedForward::Moe(moe) => {
                    let Moe { experts, shared_experts, .. } = &mut **moe;
                    for (e, m) in experts.iter_mut().enumerate() {
                        m.linears_mut(&format!("{p}.mlp.experts.{e}"), &mut out);
                    }
                    if let Some(s) = shared_experts {
                        s.linears_mut(&format!("{p}.mlp.shared_experts"), &mut out);
                    }
                }
            }
        }
        out.push(("lm_head".into(), lm_head));
        out
    }

    /// Row `i` of the logits tensor as a Vec (helper for decoders and tests).
    pub fn row(logits: &Tensor, i: usize) -> Result<Vec<f32>> {
        logits.i((0, i))?.to_dtype(DType::F32)?.to_vec1()
    }
}
