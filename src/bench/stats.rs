//! Interval estimates for accuracies.

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

/// The median (the mean of the two middle values for an even count); 0 for no values.
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => s[n / 2],
        _ => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
