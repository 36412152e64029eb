//! A trace on screen, with its navigation index.

use std::path::PathBuf;

use super::view::TraceIndex;
use crate::decode::Trace;
use crate::decode::trace::StepTrace;

/// A trace on screen, with its navigation index.
#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    pub trace: Trace,
    pub index: TraceIndex,
    pub label: String,
    pub path: Option<PathBuf>,
    /// The run id while a decode is still streaming into this trace.
    pub live: Option<u64>,
}

impl Doc {
    pub fn new(trace: Trace, label: String, path: Option<PathBuf>) -> Self {
        let index = TraceIndex::build(&trace);
        Self { trace, index, label, path, live: None }
    }

    /// Appends a streamed step (through the trace builder) and indexes it.
    pub fn push_step(&mut self, block_no: usize, block_start: usize, step: StepTrace) {
        self.trace.push_step(block_no, block_start, step);
        let bi = self.trace.blocks.len() - 1;
        if let Some(s) = self.trace.blocks[bi].steps.last() {
            self.index.push_step(bi, s);
        }
    }
}
