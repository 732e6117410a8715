"""The quick reproduction itself (about 50 minutes): run with `make test-slow`."""

import pytest

from discern.electra.config import quick


def check_quick_result(res: dict) -> None:
    """What the quick preset is built to show (README, Measured): equal compute per seed, both
    objectives below their plateaus in every seed, every encoder fine-tuned on every task."""
    cfg = quick()
    assert len(res["table"]) == len(cfg.finetune.tasks)
    assert all(len(r["electra_seeds"]) == cfg.pretrain_seeds for r in res["table"])
    pre = res["pretraining"]
    for seed in map(str, pre["seeds"]):
        pe, pm = pre["electra"][seed], pre["mlm"][seed]
        # equal compute, to within one MLM step
        assert abs(pe["train_flops"] - pm["train_flops"]) <= pm["train_flops"] / pm["steps"]
        # the quick preset leaves its plateaus: generator and MLM a nat below the unigram
        # cross-entropy, the discriminator below its token-only detector by a 95% t-interval
        plateau_e, plateau_m = pre["plateau"][f"electra-seed{seed}"], pre["plateau"][f"mlm-seed{seed}"]
        assert plateau_e["mlm"]["nats_below"] >= 1.0 and plateau_m["mlm"]["nats_below"] >= 1.0
        assert plateau_e["discriminator"]["nats_below_ci"][0] > 0
    # the claim's interval is of ELECTRA - MLM over tasks x seeds, and the control gates it
    (claim,) = res["claims"]
    assert claim["ci"] == res["electra_minus_mlm"]["ci"]
    if not res["pretraining_beats_random_init"]["electra"]:
        assert claim["verdict"] == "inconclusive"


@pytest.mark.slow
def test_quick_reproduction(quick_result):
    check_quick_result(quick_result("electra"))
