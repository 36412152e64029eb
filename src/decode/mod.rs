//! The LLaDA2.1 block-diffusion decoder: parameters, the step loop, and the trace it records.

pub mod engine;
pub mod params;
pub mod policy;
pub mod trace;
mod trace_check;

pub use engine::{Decoder, Limits, StepEvent, run_loop};
pub use params::{AttentionMode, DecodeParams, EditPolicy, Mode, RemaskStrategy};
pub use trace::{BlockEnd, CommitKind, Decision, OLDEST_TRACE_VERSION, TRACE_VERSION, Trace};
