//! Every traced run of the official `generate()` (both attention semantics) reproduced
//! exactly: returned ids, forward calls per block, end reasons, and per step the commits and
//! edits (positions, tokens, kind) with probabilities within 1e-4.

mod common;

use std::ops::ControlFlow;

use draftscope::decode::{
    AttentionMode, BlockEnd, CommitKind, DecodeParams, Decoder, EditPolicy, RemaskStrategy, Trace,
};
use serde_json::Value;

fn params_of(run: &Value) -> DecodeParams {
    let p = &run["params"];
    DecodeParams {
        threshold: p["threshold"].as_f64().unwrap() as f32,
        editing_threshold: p["editing_threshold"].as_f64().unwrap() as f32,
        max_post_steps: p["max_post_steps"].as_u64().unwrap() as usize,
        block_length: p["block_length"].as_u64().unwrap() as usize,
        gen_length: p["gen_length"].as_u64().unwrap() as usize,
        temperature: p["temperature"].as_f64().unwrap() as f32,
        top_k: None,
        top_p: None,
        seed: 0,
        eos_early_stop: p["eos_early_stop"].as_bool().unwrap(),
        num_to_transfer: p["num_to_transfer"].as_u64().unwrap() as usize,
        eos_id: p["eos_id"].as_u64().unwrap() as u32,
        mask_id: p["mask_id"].as_u64().unwrap() as u32,
        record_top_k: 3,
        record_positions: true,
        edit_policy: EditPolicy::T2t,
        remask_strategy: RemaskStrategy::LowProb,
        remask_threshold: 0.5,
        max_remask_per_pos: 5,
        max_remask_ratio: 0.25,
    }
}

fn u32s(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn check_run(trace: &Trace, run: &Value) {
    let name = run["name"].as_str().unwrap();
    assert_eq!(trace.output, u32s(&run["output"]), "{name}: output");
    assert_eq!(trace.stopped_early, run["stopped_early"].as_bool().unwrap(), "{name}: stopped_early");
    assert_eq!(
        trace.forward_calls as u64,
        run["totals"]["forward_calls"].as_u64().unwrap(),
        "{name}: forwards"
    );
    let want_blocks = run["blocks"].as_array().unwrap();
    assert_eq!(trace.blocks.len(), want_blocks.len(), "{name}: blocks processed");
    for (got, want) in trace.blocks.iter().zip(want_blocks) {
        let b = got.block;
        assert_eq!(b as u64, want["block"].as_u64().unwrap());
        assert_eq!(got.window_end as u64, want["window_end"].as_u64().unwrap());
        assert_eq!(
            got.steps.len() as u64,
            want["forward_calls"].as_u64().unwrap(),
            "{name} block {b}: forwards"
        );
        let end = match want["ended_by"].as_str().unwrap() {
            "no_edit_after_fill" => BlockEnd::NoEditAfterFill,
            "max_post_steps" => BlockEnd::MaxPostSteps,
            other => panic!("unknown end {other}"),
        };
        assert_eq!(got.ended_by, end, "{name} block {b}: end");
        for (gs, ws) in got.steps.iter().zip(want["steps"].as_array().unwrap()) {
            let s = gs.step;
            let ctx = format!("{name} block {b} step {s}");
            assert_eq!(
                gs.post_step_counter as u64,
                ws["post_step_counter"].as_u64().unwrap(),
                "{ctx}: post steps"
            );
            assert_eq!(gs.before, u32s(&ws["before"]), "{ctx}: before");
            assert_eq!(gs.after, u32s(&ws["after"]), "{ctx}: after");
            // argmax and its probability for every block row
            let top1 = u32s(&ws["top1"]);
            for (i, rec) in gs.positions.iter().enumerate() {
                assert_eq!(rec.argmax, top1[i], "{ctx}: top1[{i}]");
                let wp = ws["top1_prob"][i].as_f64().unwrap() as f32;
                assert!((rec.p - wp).abs() < 1e-4, "{ctx}: top1_prob[{i}] {} vs {wp}", rec.p);
            }
            let m2t = ws["m2t"].as_array().unwrap();
            assert_eq!(gs.commits.len(), m2t.len(), "{ctx}: commit count");
            let kind = match ws["m2t_kind"].as_str() {
                Some("high_conf") => Some(CommitKind::Threshold),
                Some("fallback_top1") => Some(CommitKind::Fallback),
                None => None,
                Some(k) => panic!("unknown kind {k}"),
            };
            for (c, w) in gs.commits.iter().zip(m2t) {
                assert_eq!(c.pos as u64, w[0].as_u64().unwrap(), "{ctx}: commit pos");
                assert_eq!(c.token as u64, w[1].as_u64().unwrap(), "{ctx}: commit token");
                assert!((c.p - w[2].as_f64().unwrap() as f32).abs() < 1e-4, "{ctx}: commit p");
                assert_eq!(Some(c.kind), kind, "{ctx}: commit kind");
            }
            let t2t = ws["t2t"].as_array().unwrap();
            assert_eq!(gs.edits.len(), t2t.len(), "{ctx}: edit count");
            for (e, w) in gs.edits.iter().zip(t2t) {
                assert_eq!(e.pos as u64, w[0].as_u64().unwrap(), "{ctx}: edit pos");
                assert_eq!(e.from as u64, w[1].as_u64().unwrap(), "{ctx}: edit from");
                assert_eq!(e.to as u64, w[2].as_u64().unwrap(), "{ctx}: edit to");
                assert!((e.p - w[3].as_f64().unwrap() as f32).abs() < 1e-4, "{ctx}: edit p");
            }
        }
    }
}

fn reproduce(file: &str, attention: AttentionMode) {
    let lm = common::fixture_model();
    let data = common::fixture_json(file);
    let runs = data["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 18);
    for run in runs {
        let prompt = u32s(&run["prompt"]);
        let dec = Decoder::new(&lm.model, params_of(run), attention).unwrap();
        let trace = dec.run(&prompt, &mut |_| ControlFlow::Continue(())).unwrap();
        check_run(&trace, run);
    }
}

#[test]
fn hf_attention_reproduces_every_official_generate_run() {
    reproduce("generate.json", AttentionMode::Hf);
}

#[test]
fn cached_block_causal_reproduces_every_block_causal_run() {
    reproduce("generate_block_causal.json", AttentionMode::BlockCausal);
}

#[test]
fn uncached_block_causal_reproduces_every_block_causal_run() {
    reproduce("generate_block_causal.json", AttentionMode::BlockCausalNoCache);
}

#[test]
fn trace_round_trips_through_json_identically() {
    let lm = common::fixture_model();
    let data = common::fixture_json("generate.json");
    let run = &data["runs"][4];
    let dec = Decoder::new(&lm.model, params_of(run), AttentionMode::Hf).unwrap();
    let trace = dec.run(&u32s(&run["prompt"]), &mut |_| ControlFlow::Continue(())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.json");
    trace.save(&path).unwrap();
    assert_eq!(Trace::load(&path).unwrap(), trace);
}

#[test]
fn cancelling_from_the_callback_ends_the_trace_marked_cancelled() {
    let lm = common::fixture_model();
    let data = common::fixture_json("generate.json");
    let run = &data["runs"][0];
    let dec = Decoder::new(&lm.model, params_of(run), AttentionMode::Hf).unwrap();
    let mut n = 0;
    let trace = dec
        .run(&u32s(&run["prompt"]), &mut |ev| {
            n += usize::from(matches!(ev, draftscope::decode::DecodeEvent::Step { .. }));
            if n == 3 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        })
        .unwrap();
    assert!(trace.cancelled);
    assert_eq!(trace.forward_calls, 3);
    assert_eq!(trace.blocks.last().unwrap().ended_by, BlockEnd::Cancelled);
}

#[test]
fn why_explains_an_edit_with_its_probabilities_and_threshold() {
    let lm = common::fixture_model();
    let data = common::fixture_json("generate.json");
    let run = &data["runs"][0];
    let dec = Decoder::new(&lm.model, params_of(run), AttentionMode::Hf).unwrap();
    let trace = dec.run(&u32s(&run["prompt"]), &mut |_| ControlFlow::Continue(())).unwrap();
    let (bi, si, e) = trace
        .blocks
        .iter()
        .enumerate()
        .flat_map(|(bi, b)| {
            b.steps.iter().enumerate().flat_map(move |(si, s)| s.edits.iter().map(move |e| (bi, si, e)))
        })
        .next()
        .expect("run 0 has edits");
    let offset = e.pos - trace.blocks[bi].start;
    let why = trace.why(bi, si, offset).unwrap();
    let want = format!(
        "edit <{}>→<{}> at step {si}: p(<{}>)={:.2} > 0.50 editing threshold",
        e.from, e.to, e.to, e.p
    );
    assert!(why.starts_with(&want), "{why}\nwant prefix {want}");
}

#[test]
fn sampling_is_seeded_and_repeatable() {
    let lm = common::fixture_model();
    let data = common::fixture_json("generate.json");
    let run = &data["runs"][0];
    let mut p = params_of(run);
    p.temperature = 0.9;
    p.top_k = Some(50);
    p.top_p = Some(0.95);
    p.seed = 11;
    let go = |p: DecodeParams| {
        Decoder::new(&lm.model, p, AttentionMode::BlockCausal)
            .unwrap()
            .run(&u32s(&run["prompt"]), &mut |_| ControlFlow::Continue(()))
            .unwrap()
    };
    let (a, b) = (go(p.clone()), go(p.clone()));
    assert_eq!(a.final_canvas, b.final_canvas);
    let greedy = go(params_of(run));
    assert_ne!(a.blocks, greedy.blocks, "temperature 0.9 should change some decision");
}
