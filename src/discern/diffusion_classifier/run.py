"""Classify a set of images with one policy; one JSON line per image, so an interrupted run resumes
where it stopped and a sharded run (``shard=(i, n)``) can be merged by concatenation."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from discern.core import progress
from discern.diffusion import Denoiser
from discern.diffusion.captions import class_prompts

from .classify import classify_full, classify_li, classify_pruned, image_noise
from .config import Policy


def records_by_index(path: Path) -> dict[int, dict]:
    """The JSON lines already written to ``path`` (none if it does not exist), by image index."""
    done = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                done[r["index"]] = r
    return done


def classify_images(pipe, images: torch.Tensor, names: list[str], policy: Policy, out: str | Path,
                    labels: list[int] | None = None, fitted: torch.Tensor | None = None,
                    shard: tuple[int, int] = (0, 1), template: str | None = None) -> list[dict]:
    """Classify ``images`` (M, C, H, W) in [-1, 1] among ``names``; appends one record per image to
    ``out`` (JSONL) and skips images already there.  Returns all records of this shard in order."""
    out = Path(out)
    done = records_by_index(out)
    den = Denoiser(pipe)
    prompts = class_prompts(names) if template is None else class_prompts(names, template)
    with torch.no_grad():
        conds = den.encode_prompts(prompts).cpu()
    mine = [i for i in range(len(images)) if i % shard[1] == shard[0]]
    todo = [i for i in mine if i not in done]
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "a") as f:
        for i in progress(todo, desc=f"classify ({policy.kind})"):
            with torch.no_grad():
                x0 = den.encode_images(images[i:i + 1].to(den.device)).cpu()
            if policy.kind == "li":
                r = classify_li(den, x0, conds, list(policy.li_samples), list(policy.li_keep), loss=policy.loss,
                                batch_size=policy.batch_size, seed=policy.seed, index=i)
            else:
                ts, eps = image_noise(den, x0, policy.samples, policy.seed, i)
                if policy.kind == "full":
                    r = classify_full(den, x0, conds, ts, eps, policy.weighting, fitted, policy.loss, policy.batch_size)
                elif policy.kind == "pruned":
                    r = classify_pruned(den, x0, conds, ts, eps, policy.weighting, fitted, policy.loss,
                                        policy.batch_size, policy.round_size, policy.alpha, policy.min_samples)
                else:
                    raise ValueError(f"unknown policy {policy.kind!r} (full, pruned, li)")
            rec = {"index": i, "pred": r.pred, "pred_name": names[r.pred], "evaluations": r.evaluations,
                   "scores": r.scores, "samples": r.samples}
            if labels is not None:
                rec["label"] = int(labels[i])
                rec["correct"] = int(labels[i]) == r.pred
            f.write(json.dumps(rec) + "\n")
            f.flush()
            done[i] = rec
    return [done[i] for i in mine]


def summary(records: list[dict]) -> dict:
    """Accuracy (when labelled) and mean UNet evaluations per image."""
    n = len(records)
    s = {"images": n, "evaluations_per_image": sum(r["evaluations"] for r in records) / max(1, n)}
    if n and "correct" in records[0]:
        s["accuracy"] = 100.0 * sum(r["correct"] for r in records) / n
    return s
