//! Shared helpers for integration tests: the reference fixture model and its data.
#![allow(dead_code)]

pub mod screen;

use std::path::{Path, PathBuf};

use draftscope::model::{DeviceKind, DtypeKind, LoadedModel};

pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llada2-tiny")
}

pub fn fixture_model() -> LoadedModel {
    LoadedModel::load_dir("llada2-tiny", &fixture_dir(), DeviceKind::Cpu, DtypeKind::F32)
        .expect("fixture model loads")
}

pub fn fixture_json(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(fixture_dir().join(name)).expect("fixture file");
    // The fixtures write unused margins as bare `Infinity`, which strict JSON rejects.
    let text = text.replace("-Infinity", "-1e999").replace("Infinity", "1e999");
    serde_json::from_str(&text).expect("fixture JSON")
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_draftscope")
}
