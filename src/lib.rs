//! draftscope: a workbench for looking inside block-diffusion language models that edit their
//! own drafts (LLaDA2.1). Data flows one way: model → decoder → trace → (TUI | bench | files).

pub mod bench;
pub mod cli;
pub mod decode;
pub mod model;
pub mod session;
pub mod train;
pub mod tui;
pub mod world;
