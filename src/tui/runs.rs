//! How the workbench writes runs and bench jobs on screen: durations and the trainer's log
//! lines. Reading a run directory is `train::snapshot`'s work, polling it a job's
//! (`jobs.rs`), launching and interrupting processes `session::run_dir`'s.

use crate::train::run::Metrics;

/// `1h02m`, `3m12s`, `45s`.
pub fn fmt_duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// A compact rendering of a log line: the trainer's JSON step lines become
/// `step 12  loss 2.314  lr 1.00e-3  812 tok/s`.
pub fn pretty_log_line(line: &str) -> String {
    if line.starts_with('{')
        && let Ok(m) = serde_json::from_str::<Metrics>(line)
    {
        return format!(
            "step {}  loss {:.3} (m2t {} t2t {})  lr {:.2e}  {:.0} tok/s",
            m.step,
            m.loss,
            m.loss_m2t.map_or("-".into(), |v| format!("{v:.3}")),
            m.loss_t2t.map_or("-".into(), |v| format!("{v:.3}")),
            m.lr,
            m.tokens_per_s
        );
    }
    line.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_format_compactly() {
        assert_eq!(fmt_duration(45.2), "45s");
        assert_eq!(fmt_duration(192.0), "3m12s");
        assert_eq!(fmt_duration(3720.0), "1h02m");
    }
}
