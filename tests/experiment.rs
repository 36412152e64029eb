//! `draftscope experiment` end to end on a tiny grid: it trains, benchmarks and reports; a
//! second invocation resumes with nothing to do; the `--plan` lines run by a plain executor
//! reproduce the experiment's own report.

mod common;

use std::path::Path;
use std::process::Command;

const GRID: [&str; 12] =
    ["--seeds", "0", "--steps", "2", "--limit", "4", "--modes", "q", "--suites", "arith", "--threads", "1"];

fn experiment(args: &[&str]) -> String {
    let out = Command::new(common::bin()).arg("experiment").args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{args:?}: {err}");
    err
}

/// `experiment --plan ARGS` into `dir`; returns the printed plan.
fn plan(dir: &Path, extra: &[&str]) -> String {
    let mut args = vec!["--out", dir.to_str().unwrap(), "--plan"];
    args.extend(extra);
    args.extend(GRID);
    let out = Command::new(common::bin()).arg("experiment").args(&args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Runs the plan in `dir` stage by stage with plain `xargs -P 2` (a stage's jobs are
/// independent); checks there are exactly `stages` of them.
fn run_stages(dir: &Path, stages: usize) {
    for k in 0..stages {
        let stage = std::fs::File::open(dir.join(format!("plan/stage-{k}.txt"))).unwrap();
        let st = Command::new("xargs")
            .args(["-d", "\n", "-n", "1", "-P", "2", "sh", "-c"])
            .stdin(stage)
            .output()
            .unwrap();
        assert!(st.status.success(), "stage {k}: {}", String::from_utf8_lossy(&st.stderr));
    }
    assert!(!dir.join(format!("plan/stage-{stages}.txt")).exists());
}

/// The report's numbers without what depends on the machine (wall times).
fn sections(dir: &Path) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    v["sections"].clone()
}

#[test]
fn an_experiment_runs_resumes_and_its_plan_reproduces_it() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let mut args = vec!["--out", a.to_str().unwrap()];
    args.extend(GRID);
    experiment(&args);
    let md = std::fs::read_to_string(a.join("report.md")).unwrap();
    assert!(
        md.contains("| self-s0 |") && md.contains("| random-s0 |") && md.contains("self vs random"),
        "{md}"
    );
    assert!(a.join("runs/self-s0/adapter/adapter_model.safetensors").exists());
    let first = sections(&a);

    // Nothing left to do on resume; the same report.
    let err = experiment(&["--resume", a.to_str().unwrap()]);
    assert!(err.contains("5 job(s) already done, 0 to run"), "{err}");
    assert_eq!(sections(&a), first);

    // The plan's stages, each run by plain `xargs -P 2` (a stage's jobs are independent).
    let b = tmp.path().join("b");
    let text = plan(&b, &[]);
    assert_eq!(text.lines().count(), 6, "{text}");
    for launcher in ["slurm.sh", "parallel.sh", "k8s-job.yaml"] {
        assert!(b.join("plan").join(launcher).exists(), "{launcher}");
    }
    run_stages(&b, 3);
    assert_eq!(sections(&b), first, "the plan reproduces the experiment's report");

    // The same grid with every benchmark split into 3 shard jobs and a merge job: four
    // stages (train + base shards; base merge + adapter shards; adapter merges; report),
    // and still the same report.
    let c = tmp.path().join("c");
    let text = plan(&c, &["--shards", "3"]);
    assert_eq!(text.lines().count(), 2 + 3 * (3 + 1) + 1, "{text}");
    assert_eq!(text.lines().filter(|l| l.contains("results merge")).count(), 3, "{text}");
    run_stages(&c, 4);
    assert!(c.join("shards/base-q/2/bench.json").exists());
    assert_eq!(sections(&c), first, "a sharded plan reproduces the unsharded report");
    // Resuming finds every shard, merge and the report done.
    let err = experiment(&["--resume", c.to_str().unwrap()]);
    assert!(err.contains("14 job(s) already done, 0 to run"), "{err}");
    assert_eq!(sections(&c), first);
}

#[test]
fn a_resumed_experiment_must_declare_the_same_grid() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let mut args = vec!["--out", a.to_str().unwrap(), "--plan"];
    args.extend(GRID);
    experiment(&args);
    let out = Command::new(common::bin())
        .args(["experiment", "--out", a.to_str().unwrap(), "--plan", "--seeds", "5"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains("holds a different experiment"), "{err}");
}

/// The launchers shipped in `examples/` are what `--plan` writes today (with the experiment
/// directory and the binary's path put back as the examples' READMEs say).
#[test]
fn shipped_launcher_examples_are_what_the_plan_writes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cases: [(&str, &str, &[&str]); 2] = [
        ("examples/launchers", "/shared/exp/self-vs-random", &[]),
        (
            "examples/launchers-gpu-sharded",
            "/shared/exp/self-vs-random-gpu",
            &["--shards", "4", "--device", "cuda"],
        ),
    ];
    for (example, shown, extra) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("exp");
        let spec = root.join("experiments/self-vs-random.json");
        let o = Command::new(common::bin())
            .args(["experiment", "--spec", spec.to_str().unwrap(), "--out", out.to_str().unwrap(), "--plan"])
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let exe = std::fs::canonicalize(common::bin()).unwrap();
        let put_back =
            |t: &str| t.replace(exe.to_str().unwrap(), "draftscope").replace(out.to_str().unwrap(), shown);
        let mut files = vec![("plan.tsv".to_string(), String::from_utf8(o.stdout).unwrap())];
        for e in std::fs::read_dir(out.join("plan")).unwrap() {
            let e = e.unwrap();
            files.push((e.file_name().to_string_lossy().into(), std::fs::read_to_string(e.path()).unwrap()));
        }
        for (name, text) in files {
            let shipped = std::fs::read_to_string(root.join(example).join(&name))
                .unwrap_or_else(|e| panic!("{example}/{name}: {e}"));
            assert_eq!(put_back(&text), shipped, "{example}/{name} is stale: regenerate it (see its README)");
        }
    }
}
