#!/usr/bin/env bash
# The `gpu` presets of ELECTRA and Electric on a machine with one CUDA GPU and no network.
#
#   scripts/gpu-presets.sh pack        # on a machine with the data installed: writes .gpu-kit/data.tar.xz
#                                      # (brown, sotu, moby-dick, austen, spam-assassin and the prepared
#                                      # fine-tuning tasks from $DISCERN_DATA, about 18 MB)
#   scripts/gpu-presets.sh run OUTDIR  # on the GPU machine, from the repository root: unpacks the data,
#                                      # installs nothing (it needs torch, transformers, tokenizers,
#                                      # safetensors, pyarrow, scipy and matplotlib there), and runs
#     1. a 200-step throughput probe of each gpu preset (examples/s, for sizing);
#     2. `discern reproduce --only electra --preset gpu` (the claim, 3 seeds per objective);
#     3. `discern electric pretrain --preset gpu` (claim 1: NCE below the noise-rate prior; the
#        re-ranking needs espeak-ng and pocketsphinx, which such machines usually lack);
#   each under its own time limit (60 s per probe, ELECTRA_LIMIT = 340 s, ELECTRIC_LIMIT = 100 s: 560 s
#   in all), and copies the runs' results, metrics and plots to OUTDIR/runs.tar.gz after each stage
#   and the log to OUTDIR/log.txt.
#
# PRESET=tiny runs the same steps with the tiny preset (a check of this script on a CPU).
set -uo pipefail

cmd=${1:-}
kit=.gpu-kit
data_root=${DISCERN_DATA:-$HOME/.cache/discern}

if [ "$cmd" = pack ]; then
    mkdir -p "$kit"  # ignored by git (.gitignore); carry it to the GPU machine
    tar -C "$data_root" -cf - brown sotu moby-dick austen spam-assassin tasks | xz -T2 -6 > "$kit/data.tar.xz" \
        || { echo "packing $data_root failed (install the data first: discern data fetch ...)"; exit 1; }
    ls -l "$kit/data.tar.xz"
    exit 0
fi
if [ "$cmd" != run ] || [ -z "${2:-}" ]; then
    echo "usage: $0 pack | run OUTDIR" >&2
    exit 2
fi

out=$(mkdir -p "$2" && cd "$2" && pwd)
preset=${PRESET:-gpu}
py=${PYTHON:-python3}
work=${WORK:-/tmp/discern-gpu}
[ -f "$kit/data.tar.xz" ] || { echo "no $kit/data.tar.xz: run '$0 pack' first"; exit 1; }
mkdir -p "$work/data" "$work/runs"

main() {
    tar -C "$work/data" -xJf "$kit/data.tar.xz" || exit 1
    export DISCERN_DATA=$work/data DISCERN_RUNS=$work/runs HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
    export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
    nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"
    "$py" -c "import torch, transformers, platform; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available() and torch.cuda.get_device_name(0), platform.processor())"

    stage() {  # name, limit in seconds, command...
        local name=$1 limit=$2
        shift 2
        echo "=== $name (limit ${limit}s): $*"
        local t0=$SECONDS
        timeout --signal=INT --kill-after=20 "$limit" "$@"
        echo "=== $name: exit $? after $((SECONDS - t0)) s"
        collect  # after every stage, so a command stopped from outside still leaves what ran
    }
    collect() {
        (cd "$work/runs" && find . -type f \( -name '*.json' -o -name '*.jsonl' -o -name '*.md' -o -name '*.png' \
            -o -name '*.csv' \) ! -name 'tokenizer*' -size -4M -print0 | tar --null -czf "$out/runs.tar.gz" -T -)
    }

    probe=200
    [ "$preset" = tiny ] && probe=8
    stage "probe electra" 60 "$py" -m discern electra pretrain --preset "$preset" --name probe \
        --set train.steps=$probe --set train.eval_every=0 --set train.checkpoint_every=0
    stage "probe electric" 60 "$py" -m discern electric pretrain --preset "$preset" --name probe \
        --set train.steps=$probe --set train.eval_every=0 --set train.checkpoint_every=0
    # steps that fit the limits at the probes' speed (at most the preset's own): the reproduction runs
    # 6 pre-trainings (3 seeds x ELECTRA and the FLOP-matched MLM) and keeps 140 s for data and the 36
    # fine-tunings (9 encoders x 4 tasks, one fine-tuning seed as in the quick preset)
    sized() {  # paper, seconds per pre-training -> --set train.steps=N
        "$py" - "$work/runs/$1" "$2" "$1" "$preset" <<'PY'
import glob, json, sys
runs, seconds, paper, preset = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
import importlib
cfg = importlib.import_module(f"discern.{paper}.config").PRESETS[preset]()
rate = None  # steps per second: the probe's result, else its last logged throughput
for folder in sorted(glob.glob(f"{runs}/*-probe*"), reverse=True):
    try:
        r = json.load(open(f"{folder}/results.json"))
        rate = r["steps"] / r["train_seconds"]
    except (OSError, ValueError, KeyError, ZeroDivisionError):
        try:
            logged = [json.loads(line) for line in open(f"{folder}/metrics.jsonl")]
            rate = [x["examples_per_s"] for x in logged if "examples_per_s" in x][-1] / cfg.train.batch_size
        except (OSError, ValueError, IndexError):
            continue
    break
if rate is None:  # no probe finished a logging interval: a short run rather than one past its limit
    steps = min(cfg.train.steps, 300)
    print(f"{paper}: no probe throughput -> {steps} steps", file=sys.stderr)
else:
    steps = min(cfg.train.steps, max(10, int(0.85 * seconds * rate)))
    print(f"{paper}: {rate:.1f} steps/s in the probe -> {steps} steps", file=sys.stderr)
print(f"--set train.steps={steps}")
PY
    }
    electra_limit=${ELECTRA_LIMIT:-340}
    electric_limit=${ELECTRIC_LIMIT:-100}
    electra_steps=$(sized electra $(( (electra_limit - 140) / 6 )))
    electric_steps=$(sized electric $(( electric_limit - 30 )))
    stage "reproduce electra" "$electra_limit" "$py" -m discern reproduce --only electra --preset "$preset" \
        --report "$work/runs/report" --set finetune.seeds=1 $electra_steps
    stage "pretrain electric" "$electric_limit" "$py" -m discern electric pretrain --preset "$preset" --name gpu \
        $electric_steps

    ls -l "$out"
}

main 2>&1 | tee "$out/log.txt"
exit "${PIPESTATUS[0]}"
