//! The LLaDA2.1 block-diffusion decoder: parameters, the step loop, and the trace it records.

pub mod engine;
pub mod params;
pub mod policy;
pub mod session;
pub mod spec;
pub mod trace;
mod trace_check;

pub use engine::{Decoder, Limits, run_loop, run_loop_from};
pub use params::{AttentionMode, DecodeParams, EditPolicy, Mode, RemaskStrategy};
pub use spec::DecodeSpec;
pub use trace::{BlockEnd, CommitKind, Decision, DecodeEvent, OLDEST_TRACE_VERSION, TRACE_VERSION, Trace};
