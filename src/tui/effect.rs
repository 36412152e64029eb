//! Work the event loop carries out for the workbench, off the UI thread: decode runs, trace
//! files, processes, the tour's flag. The app and the screens queue these; `tui/mod.rs`
//! executes them.

use std::path::PathBuf;

use super::worker::RunRequest;
use crate::session::run_dir::Launch;

/// Work the event loop carries out for the app.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Run(Box<RunRequest>),
    Cancel,
    Open(PathBuf),
    Save(PathBuf),
    Quit,
    /// Start or signal a training / bench process (training panel, results pane).
    Process(ProcessOp),
    /// Remember in this data directory that the tour was seen.
    TourSeen(PathBuf),
}

/// A process to start or signal (carried out by the event loop, `App::execute`).
#[derive(Debug, Clone, PartialEq)]
pub enum ProcessOp {
    Spawn {
        launch: Launch,
        what: String,
    },
    /// SIGINT: the trainer checkpoints and exits.
    Interrupt {
        pid: u32,
        what: String,
    },
}
