//! Interval estimates and paired tests for comparing models on the same items.

/// z for a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// Wilson score interval for `k` successes out of `n` at normal quantile `z`.
/// `n = 0` gives the uninformative `[0, 1]`.
pub fn wilson(k: usize, n: usize, z: f64) -> [f64; 2] {
    if n == 0 {
        return [0.0, 1.0];
    }
    let n = n as f64;
    let p = k as f64 / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denom;
    let half = z / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    [(center - half).max(0.0), (center + half).min(1.0)]
}

/// Two-sided exact McNemar test: `b` items only the first model got right, `c` only the
/// second. The p-value of the binomial test of b against Bin(b + c, 1/2); 1 when no item is
/// discordant.
pub fn mcnemar_exact(b: usize, c: usize) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let k = b.min(c);
    // Σ_{i ≤ k} C(n, i) / 2^n in log space (n can be in the thousands).
    let ln_half_n = -(n as f64) * std::f64::consts::LN_2;
    let mut ln_c = 0.0; // ln C(n, 0)
    let mut tail = 0.0;
    for i in 0..=k {
        if i > 0 {
            ln_c += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        tail += (ln_c + ln_half_n).exp();
    }
    (2.0 * tail).min(1.0)
}

/// Holm's step-down adjustment of `p` (same order out); controls the family-wise error rate.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut out = vec![0.0; m];
    let mut running: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p[i]).min(1.0));
        out[i] = running;
    }
    out
}

/// 95% paired-bootstrap interval of the difference of two pooled rates over the same items:
/// `(Σ num_b / Σ den_b − Σ num_a / Σ den_a) × scale`, items resampled with replacement
/// `reps` times from a seeded stream. Returns (point estimate, [low, high]).
pub fn paired_bootstrap_rate_diff(
    a: &[(f64, f64)],
    b: &[(f64, f64)],
    scale: f64,
    reps: usize,
    seed: u64,
) -> (f64, [f64; 2]) {
    use rand::{Rng, SeedableRng};
    let rate = |v: &[(f64, f64)], idx: &mut dyn Iterator<Item = usize>| {
        let (mut num, mut den) = (0.0, 0.0);
        for i in idx {
            num += v[i].0;
            den += v[i].1;
        }
        if den == 0.0 { 0.0 } else { scale * num / den }
    };
    let n = a.len().min(b.len());
    let point = rate(b, &mut (0..n)) - rate(a, &mut (0..n));
    if n == 0 {
        return (0.0, [0.0, 0.0]);
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut diffs: Vec<f64> = (0..reps)
        .map(|_| {
            let idx: Vec<usize> = (0..n).map(|_| rng.random_range(0..n)).collect();
            rate(b, &mut idx.iter().copied()) - rate(a, &mut idx.iter().copied())
        })
        .collect();
    diffs.sort_by(f64::total_cmp);
    let q = |f: f64| diffs[((f * (reps - 1) as f64).round() as usize).min(reps - 1)];
    (point, [q(0.025), q(0.975)])
}

/// The median (the mean of the two middle values for an even count); 0 for no values.
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    match n {
        0 => 0.0,
        _ if !n.is_multiple_of(2) => s[n / 2],
        _ => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcnemar_matches_the_exact_binomial_test() {
        // scipy.stats.binomtest(2, 12, 0.5).pvalue = 0.03857421875
        assert!((mcnemar_exact(2, 10) - 0.038_574_218_75).abs() < 1e-12);
        assert!((mcnemar_exact(10, 2) - 0.038_574_218_75).abs() < 1e-12);
        assert_eq!(mcnemar_exact(0, 0), 1.0);
        assert_eq!(mcnemar_exact(5, 5), 1.0);
        // Large counts stay finite: binomtest(400, 1000).pvalue ≈ 2.7e-10
        let p = mcnemar_exact(400, 600);
        assert!(p > 1e-10 && p < 1e-9, "{p}");
    }

    #[test]
    fn holm_adjusts_step_down_and_keeps_order() {
        let adj = holm(&[0.01, 0.04, 0.03]);
        assert!((adj[0] - 0.03).abs() < 1e-12);
        assert!((adj[2] - 0.06).abs() < 1e-12);
        assert!((adj[1] - 0.06).abs() < 1e-12, "monotone: {adj:?}");
    }

    #[test]
    fn bootstrap_interval_covers_the_point_and_is_zero_for_identical_models() {
        let a: Vec<(f64, f64)> = (0..50).map(|i| ((i % 3) as f64, 10.0)).collect();
        let (d, ci) = paired_bootstrap_rate_diff(&a, &a, 100.0, 500, 1);
        assert_eq!((d, ci), (0.0, [0.0, 0.0]));
        let b: Vec<(f64, f64)> = a.iter().map(|&(x, t)| (x + 1.0, t)).collect();
        let (d, ci) = paired_bootstrap_rate_diff(&a, &b, 100.0, 500, 1);
        assert!((d - 10.0).abs() < 1e-9 && ci[0] <= d && d <= ci[1], "{d} {ci:?}");
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!((median(&[3.0, 1.0, 2.0]), median(&[4.0, 1.0, 3.0, 2.0]), median(&[])), (2.0, 2.5, 0.0));
    }

    #[test]
    fn wilson_matches_reference_values() {
        // statsmodels proportion_confint(8, 10, method="wilson") = (0.4901625, 0.9433178)
        let [lo, hi] = wilson(8, 10, Z95);
        assert!((lo - 0.490_162_5).abs() < 1e-6 && (hi - 0.943_317_8).abs() < 1e-6, "{lo} {hi}");
        // All right still leaves room below 1: (0.7224672, 1.0)
        let [lo, hi] = wilson(10, 10, Z95);
        assert!((lo - 0.722_467_2).abs() < 1e-6 && (hi - 1.0).abs() < 1e-9, "{lo} {hi}");
        assert_eq!(wilson(0, 0, Z95), [0.0, 1.0]);
    }
}
