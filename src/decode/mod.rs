//! The LLaDA2.1 block-diffusion decoder: parameters, the step loop, and the trace it records.

pub mod engine;
pub mod params;
pub mod trace;
mod trace_check;

pub use engine::{Decoder, StepEvent};
pub use params::{AttentionMode, DecodeParams, Mode};
pub use trace::{BlockEnd, CommitKind, Decision, TRACE_VERSION, Trace};
