//! Training: block-diffusion pretraining of the embedded tiny model (`draftscope pretrain`)
//! and LoRA continued pretraining with the random or self-generated T2T objective
//! (`draftscope train`), with checkpointable AdamW, exact resume and PEFT-layout adapters.

pub mod checks;
pub mod cli;
pub mod data;
pub mod eval;
pub mod objective;
pub mod optim;
pub mod run;
pub mod snapshot;
#[doc(hidden)]
#[cfg(any(test, feature = "testutil"))]
pub mod testutil;

pub use objective::{NoiseConfig, Objective};
pub use run::{Outcome, RunConfig, RunKind, Status, Trainer};
