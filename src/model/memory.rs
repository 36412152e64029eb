//! The pre-load memory check: estimate what a model will hold, compare with what the
//! machine has, and refuse with one line that says which `--dtype` or format would fit —
//! instead of swapping or being killed halfway through a 30 GB load.

use std::path::Path;

use anyhow::{Result, bail};
use candle_core::DType;
use candle_core::quantized::GgmlDType;

use super::config::Config;
use super::quant::{QuantFormat, repacked_bytes, storage_type, stored_bytes};
use super::synth::specs;
use super::weights::WeightSource;

/// Workspace on top of the weights: activations, logits and the KV cache of a decode
/// (a 1k-token window of mini logits alone is 0.6 GB), plus the allocator's slack.
const WORKSPACE_FRACTION: f64 = 0.10;
const WORKSPACE_FIXED: u64 = 768 << 20;

fn with_workspace(weights: u64) -> u64 {
    weights + (weights as f64 * WORKSPACE_FRACTION) as u64 + WORKSPACE_FIXED
}

/// Bytes the model in `ws` needs once loaded, weights plus workspace.
pub fn estimate(cfg: &Config, ws: &dyn WeightSource) -> u64 {
    with_workspace(specs(cfg).iter().map(|s| ws.resident_bytes(&s.name, &s.shape)).sum())
}

/// The same estimate for a format the model is not in (for the suggestion).
pub fn estimate_as(cfg: &Config, dense: DType, quant: Option<QuantFormat>) -> u64 {
    with_workspace(
        specs(cfg)
            .iter()
            .map(|s| {
                let elems: usize = s.shape.iter().product();
                let dense_bytes = elems as u64 * dense.size_in_bytes() as u64;
                let stored = quant.map(|f| storage_type(&s.name, &s.shape, f));
                match stored {
                    Some(t) if !matches!(t, GgmlDType::F32 | GgmlDType::F16) => {
                        let repacked = match s.shape.as_slice() {
                            [out, inp] if !super::quant::is_routed_expert(&s.name) => {
                                repacked_bytes(t, *out, *inp)
                            }
                            _ => 0,
                        };
                        stored_bytes(t, elems) + repacked
                    }
                    _ => dense_bytes,
                }
            })
            .sum(),
    )
}

/// Bytes this process may still use: `DRAFTSCOPE_MEMORY_AVAILABLE` (bytes, or with a K/M/G
/// suffix) when set, else the smaller of MemAvailable and the cgroup's remaining limit.
/// None when unknown (then nothing is refused).
pub fn available() -> Option<u64> {
    if let Ok(v) = std::env::var("DRAFTSCOPE_MEMORY_AVAILABLE") {
        return parse_size(&v);
    }
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let mut avail = meminfo
        .lines()
        .find(|l| l.starts_with("MemAvailable:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<u64>().ok())
        .map(|k| k * 1024)?;
    let read = |f: &str| std::fs::read_to_string(format!("/sys/fs/cgroup/{f}")).ok();
    if let (Some(max), Some(cur)) = (read("memory.max"), read("memory.current"))
        && let (Ok(max), Ok(cur)) = (max.trim().parse::<u64>(), cur.trim().parse::<u64>())
    {
        avail = avail.min(max.saturating_sub(cur));
    }
    Some(avail)
}

fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.chars().last()? {
        'K' | 'k' => (&s[..s.len() - 1], 1u64 << 10),
        'M' | 'm' => (&s[..s.len() - 1], 1 << 20),
        'G' | 'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.trim().parse::<f64>().ok().map(|n| (n * mult as f64) as u64)
}

pub fn gb(b: u64) -> String {
    format!("{:.1} GB", b as f64 / 1e9)
}

/// Refuses to load when `needed` exceeds what is available, naming what would fit.
pub fn check_fits(needed: u64, cfg: &Config, dir: &Path) -> Result<()> {
    let Some(avail) = available() else { return Ok(()) };
    if needed <= avail {
        return Ok(());
    }
    let options = [
        ("--dtype bf16", estimate_as(cfg, DType::BF16, None)),
        (
            "a q8_0 GGUF (`draftscope quantize --to q8_0`)",
            estimate_as(cfg, DType::F32, Some(QuantFormat::Q8_0)),
        ),
        (
            "a q4_k GGUF (`draftscope quantize --to q4_k`)",
            estimate_as(cfg, DType::F32, Some(QuantFormat::Q4K)),
        ),
    ];
    let fits = options.iter().filter(|(_, b)| *b < needed).find(|(_, b)| *b <= avail);
    let hint = match fits {
        Some((what, b)) => format!("{what} would need about {}", gb(*b)),
        None => format!(
            "even {} needs about {}; free memory or use a machine with more",
            options[2].0,
            gb(options[2].1)
        ),
    };
    bail!(
        "{}: loading needs about {} of memory, {} is available; {hint} (set DRAFTSCOPE_MEMORY_AVAILABLE to override)",
        dir.display(),
        gb(needed),
        gb(avail)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_suffixes() {
        assert_eq!(parse_size("2G"), Some(2 << 30));
        assert_eq!(parse_size("512M"), Some(512 << 20));
        assert_eq!(parse_size("1000"), Some(1000));
        assert_eq!(parse_size("lots"), None);
    }

    #[test]
    fn mini_estimates_order_f32_bf16_q8_q4() {
        let cfg = super::super::synth::config(super::super::synth::Like::Mini, None).unwrap();
        let f32 = estimate_as(&cfg, DType::F32, None);
        let bf16 = estimate_as(&cfg, DType::BF16, None);
        let q8 = estimate_as(&cfg, DType::F32, Some(QuantFormat::Q8_0));
        let q4 = estimate_as(&cfg, DType::F32, Some(QuantFormat::Q4K));
        let q4m = estimate_as(&cfg, DType::F32, Some(QuantFormat::Q4KMoe));
        assert!(f32 > bf16 && bf16 > q8 && q8 > q4m && q8 > q4, "{f32} {bf16} {q8} {q4m} {q4}");
        // The linears outside the experts are a few percent of the model. (Which of the two
        // is smaller depends on the CPU: candle keeps a repacked copy of q4_k weights where it
        // tiles them, and none of q8_0 weights, which compute on their stored blocks.)
        assert!(q4m.abs_diff(q4) < q4 / 20, "{q4m} {q4}");
        println!("mini estimates: f32 {f32}, bf16 {bf16}, q8_0 {q8}, q4_k_moe {q4m}, q4_k {q4}");
        // 16.26B parameters: ~65 GB of f32 weights, under 13 GB at q4_k (workspace included).
        assert!(f32 > 65_000_000_000 && q4 < 13_000_000_000, "{f32} {q4}");
    }
}
