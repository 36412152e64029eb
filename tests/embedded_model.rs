//! The shipped default model: it loads with no flags, and decoding is deterministic at
//! temperature 0 (exact ids for a fixed prompt in Q-Mode).

mod common;

use std::ops::ControlFlow;
use std::process::Command;

use draftscope::decode::{AttentionMode, DecodeParams, Decoder, Mode};
use draftscope::model::{DeviceKind, DtypeKind, LoadedModel};

const PROMPT: &str = "What is 47+38?";

#[test]
fn default_model_decodes_a_fixed_prompt_to_exact_ids_in_q_mode() {
    let lm = LoadedModel::load(None, DeviceKind::Cpu, DtypeKind::F32).expect("embedded model loads");
    let text = lm.codec.chat_prompt(PROMPT).unwrap();
    let ids = lm.codec.encode(&text).unwrap();
    let mut p = DecodeParams::preset(Mode::Q, lm.model.cfg.eos_token_id, lm.model.cfg.mask_token_id);
    p.gen_length = 64;
    let trace = Decoder::new(&lm.model, p, AttentionMode::BlockCausal)
        .unwrap()
        .run(&ids, &mut |_| ControlFlow::Continue(()))
        .unwrap();
    assert_eq!(trace.output, EXPECTED, "decoded: {:?}", lm.codec.decode(&trace.output));
}

#[test]
fn decode_with_no_model_flag_uses_the_embedded_model() {
    let out = Command::new(common::bin())
        .args(["decode", "--chat", "--prompt", PROMPT, "--gen-length", "64"])
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("tokens/forward"), "{stdout}");
}

/// Recorded from the shipped weights with the command in the README ("The embedded model").
const EXPECTED: &[u32] = &[
    28, 31, 19, 27, 32, 34, 229, 31, 19, 32, 37, 25, 29, 20, 229, 28, 19, 27, 19, 25, 37, 32, 20, 289, 229,
    32, 29, 22, 294, 34, 229, 32, 29, 0,
];
