//! What the workbench adds to run directories and bench jobs: the poller thread that re-reads
//! them every [`POLL_MS`] so the UI never blocks on the disk, and how their numbers and log
//! lines are written on screen. Reading a run directory is `train::snapshot`'s work; launching
//! and interrupting processes is `session::run_dir`'s.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::train::run::Metrics;
use crate::train::snapshot::{PollEvent, Scanner};

/// How often the poller re-reads run directories and the results file.
pub const POLL_MS: u64 = 500;

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

/// The background thread that polls; dropping the handle does not stop it, a closed channel
/// (`send` returning false) does.
pub struct Poller;

impl Poller {
    /// Polls `data_dir` (runs and results) and each of `extra_results` (read-only stores such
    /// as the demo set) every [`POLL_MS`].
    pub fn spawn(
        data_dir: PathBuf,
        extra_results: Vec<PathBuf>,
        send: impl Fn(PollEvent) -> bool + Send + 'static,
    ) -> Result<()> {
        std::thread::Builder::new()
            .name("draftscope-runs".into())
            .spawn(move || {
                let mut sc = Scanner::new(&data_dir);
                loop {
                    if !send(PollEvent::Runs(sc.runs())) {
                        return;
                    }
                    for root in std::iter::once(&data_dir).chain(extra_results.iter()) {
                        if let Some(loaded) = sc.results_if_changed(root)
                            && !send(PollEvent::Results { root: root.clone(), loaded: Box::new(loaded) })
                        {
                            return;
                        }
                    }
                    std::thread::sleep(Duration::from_millis(POLL_MS));
                }
            })
            .context("cannot start the runs poller")?;
        Ok(())
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
