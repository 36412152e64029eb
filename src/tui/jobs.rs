//! The workbench's background work as one notion: a job runs off the UI thread and reports
//! [`JobEvent`]s through one [`Jobs`] handle, which the event loop drains and [`apply`]s to the
//! app, then draws once. Four kinds:
//!
//! - [`JobKind::Decode`]: the model thread ([`Worker`]) — long-lived, because it holds the
//!   loaded model; it takes run and cancel requests and reports load progress, decode events
//!   and the finished trace.
//! - [`JobKind::Poll`]: the poller thread — long-lived; it re-reads run directories and results
//!   stores every [`POLL_MS`] (`train::snapshot::Scanner`) so the UI never blocks on the disk;
//!   it stops when the loop is gone (a report that cannot be delivered).
//! - [`JobKind::Open`], [`JobKind::Save`]: one thread per request, one report each (the trace
//!   or the error, the path saved or the error).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use super::app::App;
use super::doc::Doc;
use super::worker::{Worker, WorkerEvent};
use crate::decode::Trace;
use crate::decode::session::ModelArgs;
use crate::train::snapshot::{PollEvent, Scanner};

/// How often the poller re-reads run directories and the results file.
pub const POLL_MS: u64 = 500;

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Decode,
    Poll,
    Open,
    Save,
}

/// What a job reports.
pub enum JobEvent {
    /// The model thread: loading, a decode's events, its trace.
    Decode(WorkerEvent),
    /// Run directories and results stores, re-read.
    Poll(PollEvent),
    /// A trace file read (or why not; the error names the file).
    Opened(PathBuf, std::result::Result<Box<Doc>, String>),
    /// The document's trace written to the path (or why not).
    Saved(PathBuf, std::result::Result<(), String>),
}

impl JobEvent {
    pub fn kind(&self) -> JobKind {
        match self {
            JobEvent::Decode(_) => JobKind::Decode,
            JobEvent::Poll(_) => JobKind::Poll,
            JobEvent::Opened(..) => JobKind::Open,
            JobEvent::Saved(..) => JobKind::Save,
        }
    }
}

/// Starts jobs; every job reports through the one function it was made with (the loop's
/// channel), which returns false once nobody listens.
#[derive(Clone)]
pub struct Jobs {
    report: Arc<dyn Fn(JobEvent) -> bool + Send + Sync>,
}

impl Jobs {
    pub fn new(report: impl Fn(JobEvent) -> bool + Send + Sync + 'static) -> Self {
        Self { report: Arc::new(report) }
    }

    /// The model thread: it loads the model and then runs the decodes it is asked for.
    pub fn decode(&self, args: ModelArgs) -> Worker {
        let report = self.report.clone();
        Worker::spawn(args, move |e| {
            report(JobEvent::Decode(e));
        })
    }

    /// The poller: `data_dir` (runs and results) and each of `extra_results` (read-only stores
    /// such as the demo set), every [`POLL_MS`], until a report finds nobody listening.
    pub fn poll(&self, data_dir: PathBuf, extra_results: Vec<PathBuf>) -> Result<()> {
        let report = self.report.clone();
        std::thread::Builder::new()
            .name("draftscope-runs".into())
            .spawn(move || {
                let mut sc = Scanner::new(&data_dir);
                loop {
                    if !report(JobEvent::Poll(PollEvent::Runs(sc.runs()))) {
                        return;
                    }
                    for root in std::iter::once(&data_dir).chain(extra_results.iter()) {
                        if let Some(loaded) = sc.results_if_changed(root)
                            && !report(JobEvent::Poll(PollEvent::Results {
                                root: root.clone(),
                                loaded: Box::new(loaded),
                            }))
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

    /// Reads the trace at `path` off the UI thread.
    pub fn open(&self, path: PathBuf) {
        let report = self.report.clone();
        std::thread::spawn(move || {
            let r = super::open_doc(&path).map(Box::new).map_err(|e| format!("{e:#}"));
            report(JobEvent::Opened(path, r));
        });
    }

    /// Writes `trace` to `path` off the UI thread.
    pub fn save(&self, trace: Trace, path: PathBuf) {
        let report = self.report.clone();
        std::thread::spawn(move || {
            let r = trace.save(&path).map_err(|e| format!("{e:#}"));
            report(JobEvent::Saved(path, r));
        });
    }
}

/// What a job's report does to the app.
pub fn apply(app: &mut App, ev: JobEvent) {
    match ev {
        JobEvent::Decode(w) => app.on_worker(w),
        JobEvent::Opened(_, Ok(doc)) => app.open_doc(*doc),
        // The error names the file already.
        JobEvent::Opened(_, Err(e)) => app.error(e),
        JobEvent::Saved(path, Ok(())) => saved(app, &path),
        JobEvent::Saved(path, Err(e)) => app.error(format!("cannot save {}: {e}", path.display())),
        JobEvent::Poll(p) => {
            app.on_poll(p);
            app.results.refresh_jobs();
        }
    }
}

fn saved(app: &mut App, path: &Path) {
    if let Some(d) = &mut app.decode.doc {
        d.path = Some(path.to_path_buf());
    }
    app.info(format!("saved {}", path.display()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    #[test]
    fn save_then_open_report_through_the_one_channel() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("t.json");
        let (tx, rx) = channel();
        let jobs = Jobs::new(move |e| tx.send(e).is_ok());
        let trace = crate::tui::sample::small();
        jobs.save(trace.clone(), path.clone());
        let ev = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(ev.kind(), JobKind::Save);
        assert!(matches!(&ev, JobEvent::Saved(p, Ok(())) if *p == path));
        jobs.open(path.clone());
        let ev = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(ev.kind(), JobKind::Open);
        let JobEvent::Opened(p, Ok(doc)) = ev else { panic!("not opened") };
        assert_eq!(p, path);
        assert_eq!(doc.trace, trace);
        jobs.open(d.path().join("missing.json"));
        let JobEvent::Opened(_, Err(e)) = rx.recv_timeout(Duration::from_secs(10)).unwrap() else {
            panic!("a missing file opened")
        };
        assert!(e.contains("missing.json"), "{e}");
    }
}
