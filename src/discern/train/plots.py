"""Loss curves of a training run against the plateaus a model must leave."""

from __future__ import annotations

from pathlib import Path


def plot_losses(records: list[dict], panels: list[dict], path: str | Path, title: str = "") -> Path:
    """One panel per objective: train (``key``) and held-out (``eval/key``) loss by step, and the
    trivial-baseline loss as a dashed reference line.

    ``panels``: ``[{"key": "mlm_loss", "label": "generator MLM", "reference": 6.74,
    "reference_label": "unigram entropy"}, ...]``; written atomically as a PNG at ``path``.
    A panel with ``"reference_key": "ref_x"`` draws the reference as it was at each evaluation
    (``eval/ref_x``, dashed with markers), for a baseline that moves during training (one
    computed from the replacements or noise the model is trained against); ``reference`` is
    then only the fallback when no evaluation recorded it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.5), squeeze=False)
    for ax, p in zip(axes[0], panels):
        key = p["key"]
        train = [(r["step"], r[key]) for r in records if key in r]
        held = [(r["step"], r[f"eval/{key}"]) for r in records if f"eval/{key}" in r]
        if train:
            ax.plot(*zip(*train), lw=1, label="train")
        if held:
            ax.plot(*zip(*held), "o-", ms=3, label="held-out")
        ref, name = p.get("reference"), p.get("reference_label", "reference")
        moving = [(r["step"], r[f"eval/{p['reference_key']}"]) for r in records
                  if "reference_key" in p and f"eval/{p['reference_key']}" in r]
        if moving:
            ax.plot(*zip(*moving), "s--", color="k", lw=1, ms=3,
                    label=f"{name} at each evaluation (last {moving[-1][1]:.3f})")
        elif ref is not None:
            ax.axhline(ref, color="k", ls="--", lw=1, label=f"{name} ({ref:.3f})")
        ax.set_xlabel("optimiser step")
        ax.set_ylabel("loss (nats)")
        ax.set_title(p.get("label", key), fontsize=9)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path
