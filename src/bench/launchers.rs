//! Launchers for an experiment's plan under schedulers people already run: the jobs grouped
//! into stages (a stage's jobs depend only on earlier stages), one command a line per stage,
//! and a SLURM job-array script, a GNU parallel script and a Kubernetes indexed-Job manifest
//! that run the stages in order. draftscope schedules nothing itself.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;

use super::experiment::{Job, shell_quote};

/// The jobs by stage: stage 0 has no dependencies, stage k depends on stages below k.
pub fn stages(jobs: &[Job]) -> Vec<Vec<&Job>> {
    let mut depth: HashMap<&str, usize> = HashMap::new();
    for j in jobs {
        // Plans list every job after its dependencies.
        let d = j.deps.iter().map(|d| depth.get(d.as_str()).map_or(0, |x| x + 1)).max().unwrap_or(0);
        depth.insert(j.id.as_str(), d);
    }
    let n = depth.values().max().map_or(0, |m| m + 1);
    let mut out = vec![Vec::new(); n];
    for j in jobs {
        out[depth[j.id.as_str()]].push(j);
    }
    out
}

fn command_line(exe: &str, j: &Job) -> String {
    std::iter::once(exe.to_string())
        .chain(j.args.iter().cloned())
        .map(|a| shell_quote(&a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Writes `stage-K.txt` (one command a line) and `slurm.sh`, `parallel.sh`, `k8s-job.yaml`
/// into `dir`. The experiment directory must be on storage every node shares. With `gpu`,
/// each SLURM task and Kubernetes pod asks for one GPU (the job's `--device cuda`).
pub fn write(dir: &Path, jobs: &[Job], exe: &str, root: &Path, gpu: bool) -> Result<()> {
    let stages = stages(jobs);
    for (k, st) in stages.iter().enumerate() {
        let text: String = st.iter().map(|j| format!("{}\n", command_line(exe, j))).collect();
        crate::session::atomic_write(&dir.join(format!("stage-{k}.txt")), text.as_bytes())?;
    }
    let n = stages.len();
    let plan_dir = shell_quote(&dir.display().to_string());
    let counts: Vec<String> = stages.iter().map(|s| s.len().to_string()).collect();

    let mut slurm = format!(
        "#!/usr/bin/env bash\n# SLURM: one job array per stage of the plan in {plan_dir}, each stage after the previous\n# one succeeded. Add your cluster's sbatch options (--mem, --time, --partition); the experiment directory\n# {} must be on shared storage.\n#   bash slurm.sh\nset -euo pipefail\nplan={plan_dir}\ncounts=({})\nprev=\"\"\nfor k in $(seq 0 {}); do\n  dep=${{prev:+--dependency=afterok:$prev}}\n  prev=$(sbatch --parsable $dep --array=1-${{counts[$k]}} --job-name=draftscope-stage-$k \\\n    --cpus-per-task=2{gres} --wrap=\"sed -n \\${{SLURM_ARRAY_TASK_ID}}p $plan/stage-$k.txt | bash\")\n  echo \"stage $k: job $prev (${{counts[$k]}} tasks)\"\ndone\n",
        shell_quote(&root.display().to_string()),
        counts.join(" "),
        n.saturating_sub(1),
        gres = if gpu { " --gres=gpu:1" } else { "" },
    );
    slurm
        .push_str("# Then: draftscope experiment --resume <the experiment directory> checks every output.\n");
    crate::session::atomic_write(&dir.join("slurm.sh"), slurm.as_bytes())?;

    // On GPUs, each of a machine's JOBS slots gets its own GPU: parallel numbers the running
    // slots 1..JOBS ({%}), and the job sees GPU {%}-1 as `cuda`.
    let (gpu_note, run) = if gpu {
        (
            "\n# The jobs run on `cuda`: on one machine (HOSTS=:) set JOBS to its GPU count and job slot k\n# sees GPU k-1 only. GNU parallel numbers slots across all hosts, so for several GPU hosts\n# use slurm.sh or k8s-job.yaml, which give each task a GPU of its own.",
            " 'CUDA_VISIBLE_DEVICES=$(({%} - 1)) sh -c {}'",
        )
    } else {
        ("", "")
    };
    let parallel = format!(
        "#!/usr/bin/env bash\n# GNU parallel over the machines in HOSTS (one `user@host` a line, see `man parallel`), stage\n# by stage; every host needs draftscope at the same path and the experiment directory\n# {} on shared storage. Locally: HOSTS=: (GNU parallel's name for this machine).{gpu_note}\n#   HOSTS=hosts.txt JOBS=1 bash parallel.sh\nset -euo pipefail\nplan={plan_dir}\nfor k in $(seq 0 {}); do\n  parallel --halt now,fail=1 -j \"${{JOBS:-1}}\" --sshloginfile \"${{HOSTS:-:}}\"{run} < \"$plan/stage-$k.txt\"\ndone\n",
        shell_quote(&root.display().to_string()),
        n.saturating_sub(1)
    );
    crate::session::atomic_write(&dir.join("parallel.sh"), parallel.as_bytes())?;

    let mut k8s = String::from(
        "# Kubernetes: one indexed Job per stage; apply stage k after stage k-1 completed\n# (kubectl wait --for=condition=complete job/draftscope-stage-<k-1>). Every pod mounts the\n# experiment directory and the plan from a shared volume (the claim `draftscope-work` here) and\n# runs line JOB_COMPLETION_INDEX+1 of its stage file. Set the image to one with draftscope.\n",
    );
    for (k, st) in stages.iter().enumerate() {
        k8s.push_str(&format!(
            "---\napiVersion: batch/v1\nkind: Job\nmetadata:\n  name: draftscope-stage-{k}\nspec:\n  completionMode: Indexed\n  completions: {c}\n  parallelism: {c}\n  backoffLimit: 2\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - name: job\n          image: draftscope:latest\n          resources: {{requests: {{cpu: \"2\", memory: 8Gi}}{limits}}}\n          command: [\"bash\", \"-c\", \"sed -n $((JOB_COMPLETION_INDEX + 1))p {plan}/stage-{k}.txt | bash\"]\n          volumeMounts: [{{name: work, mountPath: {mount}}}]\n      volumes: [{{name: work, persistentVolumeClaim: {{claimName: draftscope-work}}}}]\n",
            c = st.len(),
            plan = dir.display(),
            mount = root.display(),
            limits = if gpu { ", limits: {\"nvidia.com/gpu\": 1}" } else { "" },
        ));
    }
    crate::session::atomic_write(&dir.join("k8s-job.yaml"), k8s.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::experiment::{Arm, Layout, Spec, plan};
    use crate::decode::{AttentionMode, Mode};
    use crate::train::Objective;

    #[test]
    fn training_comes_first_then_benches_then_the_report() {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "arms": [Arm::plain(Objective::Random)], "seeds": [0, 1], "steps": 2,
            "suites": ["arith"], "modes": [Mode::Q], "attention": AttentionMode::BlockCausal
        }))
        .unwrap();
        let jobs = plan(&spec, &Layout { root: "/x".into() });
        let st = stages(&jobs);
        let ids: Vec<Vec<&str>> = st.iter().map(|s| s.iter().map(|j| j.id.as_str()).collect()).collect();
        assert_eq!(
            ids,
            vec![
                vec!["train:random-s0", "train:random-s1", "bench:base:q"],
                vec!["bench:random-s0:q", "bench:random-s1:q"],
                vec!["report"]
            ]
        );
    }

    #[test]
    fn gpu_plans_ask_each_task_for_one_gpu_and_cpu_plans_do_not() {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "arms": [Arm::plain(Objective::Random)], "seeds": [0], "steps": 2,
            "suites": ["arith"], "modes": [Mode::Q], "device": "cuda"
        }))
        .unwrap();
        let jobs = plan(&spec, &Layout { root: "/x".into() });
        assert!(
            jobs.iter()
                .filter(|j| j.id != "report")
                .all(|j| j.args.windows(2).any(|w| w == ["--device", "cuda"])),
            "{jobs:?}"
        );
        for gpu in [false, true] {
            let tmp = tempfile::tempdir().unwrap();
            write(tmp.path(), &jobs, "draftscope", Path::new("/x"), gpu).unwrap();
            let read = |f: &str| std::fs::read_to_string(tmp.path().join(f)).unwrap();
            assert_eq!(read("slurm.sh").contains("--gres=gpu:1"), gpu);
            assert_eq!(read("k8s-job.yaml").contains("nvidia.com/gpu"), gpu);
            assert_eq!(read("parallel.sh").contains("CUDA_VISIBLE_DEVICES=$(({%} - 1)) sh -c {}"), gpu);
        }
    }
}
