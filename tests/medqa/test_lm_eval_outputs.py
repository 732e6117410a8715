"""``medqa eval``'s output files in lm-evaluation-harness's format, over a scripted backend (no model):

- every samples line has the harness's keys with its types (``arguments`` as its JSONL writer nests them,
  ``resps`` per request, ``filtered_resps`` per request, the sha256 hashes), the prompts and generation
  settings actually sent, and ``doc_id`` the question's row in its source file for a subsampled run;
- ensemble refinement logs its stage-1 samples in full as its first request;
- results.json's tasks: ``acc,none`` the mean of the samples' ``acc``, ``acc_stderr,none`` the harness's
  standard error (computed here independently), ``n-samples``, ``n-shot`` and the rest, beside the keys
  the file had before;
- lm-evaluation-harness's own code accepts them: its typed schema (``lm_eval.result_schema``) validates the
  samples and the task entries, and ``lm_eval.utils.make_table`` renders the results.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import statistics

import pytest

from discern.medqa.answers import extract_choice, extract_pubmedqa, plurality
from discern.medqa.evaluate import evaluate, load_dataset
from discern.medqa.strategies import StrategyConfig

STRATEGIES = ["few_shot", "cot", "self_consistency", "ensemble_refinement"]
SUFFIX = {"few_shot": "few_shot", "cot": "cot", "self_consistency": "sc", "ensemble_refinement": "er"}
KEYS = {"doc_id", "doc", "target", "arguments", "resps", "filtered_resps", "filter", "metrics", "doc_hash",
        "prompt_hash", "target_hash", "acc"}
CFG = StrategyConfig(k=3, k1=4, k2=5, temperature=0.7, max_tokens=40, seed=2)


class Scripted:
    """Deterministic answers that depend on the prompt and the sample index: few-shot a letter, chain of thought
    a reasoning that ends with a letter, or with none (every fourth sample, and every sample of prompts whose
    hash is 0 mod 5, so some votes find nothing); stage 2 quotes nothing and answers by its own rule.  Records
    every call."""

    name = "scripted/model:v1"

    def __init__(self):
        self.calls = []

    def generate(self, prompts, n, params):
        out = []
        for p in prompts:
            h = int(hashlib.sha256(p.encode()).hexdigest(), 16)
            stage2 = "Students' reasonings:" in p
            gens = []
            for i in range(n):
                letter = "ABC"[(h + i * (2 if stage2 else 1)) % 3]
                if p.endswith("Answer:"):
                    gens.append(f" ({letter})")
                elif h % 5 == 0 or i % 4 == 3:
                    gens.append(f"sample {i}: no conclusion")
                else:
                    gens.append(f"{'refined' if stage2 else 'reasoning'} {i}.\nAnswer: ({letter})")
            out.append(gens)
        self.calls.append((list(prompts), n, params, out))
        return out


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _samples(path):
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def _medmcqa(folder, n=12):
    """A MedMCQA dev file with a blank line after row 2 (rows are counted without it)."""
    rows = [json.dumps({"question": f"MedMCQA question {i}?", "opa": "a", "opb": "b", "opc": "c", "opd": "d",
                        "cop": 1 + i % 4, "exp": f"Because {i}.", "subject_name": "Anatomy", "topic_name": "Head",
                        "id": f"id-{i}", "choice_type": "single"}) for i in range(n)]
    folder.mkdir(parents=True)
    (folder / "dev.json").write_text("\n".join(rows[:3] + [""] + rows[3:]) + "\n", encoding="utf-8")
    return rows


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One evaluation of the four strategies on subsets of MMLU anatomy, PubMedQA and a MedMCQA fixture."""
    data = tmp_path_factory.mktemp("data")
    from discern.medqa import data as data_mod

    real_root = data_mod._root  # MedMCQA from the fixture folder, MMLU and PubMedQA from the installed copies
    mp = pytest.MonkeyPatch()
    mp.setattr(data_mod, "_root", lambda name, root: data / "medmcqa" if name == "medmcqa" and root is None
               else real_root(name, root))
    rows = _medmcqa(data / "medmcqa")
    out = tmp_path_factory.mktemp("out")
    be = Scripted()
    datasets = ["mmlu:anatomy", "pubmedqa", "medmcqa"]
    evaluate(be, datasets, STRATEGIES, out, CFG, limit=5, seed=3)
    pools = {ds: load_dataset(ds)[0] for ds in datasets}
    subsets = {ds: load_dataset(ds, 5, 3) for ds in datasets}
    yield {"out": out, "backend": be, "datasets": datasets, "pools": pools, "subsets": subsets,
           "medmcqa_rows": rows, "saved": json.loads((out / "results.json").read_text(encoding="utf-8"))}
    mp.undo()


def _files(run):
    for ds in run["datasets"]:
        for st in STRATEGIES:
            yield ds, st, _samples(run["out"] / f"samples_{ds.replace(':', '_')}_{st}.jsonl")


def test_every_samples_line_has_the_harness_keys_and_types(run):
    sent = {}  # (prompt, n) -> (params, responses) of every backend call (CoT, SC and ER stage 1 share prompts)
    for prompts, n, params, out in run["backend"].calls:
        for p, gens in zip(prompts, out):
            assert (p, n) not in sent
            sent[p, n] = (params, gens)
    for ds, st, lines in _files(run):
        assert len(lines) == 5
        for s in lines:
            assert set(s) == KEYS, (ds, st)
            assert type(s["doc_id"]) is int and isinstance(s["doc"], dict) and type(s["target"]) is str
            assert s["filter"] == "none" and s["metrics"] == ["acc"] and type(s["acc"]) is float
            assert s["acc"] in (0.0, 1.0)
            n_req = 2 if st == "ensemble_refinement" else 1
            assert list(s["arguments"]) == [f"gen_args_{i}" for i in range(n_req)]
            assert isinstance(s["resps"], list) and len(s["resps"]) == n_req == len(s["filtered_resps"])
            assert all(isinstance(r, list) and all(type(x) is str for x in r) for r in s["resps"])
            assert all(type(x) is str for x in s["filtered_resps"])
            for h in ("doc_hash", "prompt_hash", "target_hash"):
                assert type(s[h]) is str and len(s[h]) == 64 and int(s[h], 16) >= 0
            # the hashes as the harness computes them
            assert s["doc_hash"] == _sha(json.dumps(s["doc"], indent=2, ensure_ascii=False))
            assert s["prompt_hash"] == _sha(s["arguments"]["gen_args_0"]["arg_0"])
            assert s["target_hash"] == _sha(s["target"])
            # each request: the prompt sent, its generation settings and the responses it got
            for i, resps in enumerate(s["resps"]):
                args = s["arguments"][f"gen_args_{i}"]
                assert set(args) == {"arg_0", "arg_1"} and type(args["arg_0"]) is str
                n = args["arg_1"]["n"]
                params, gens = sent[args["arg_0"], n]
                assert resps == gens and len(resps) == n
                assert args["arg_1"] == {"until": list(params.stop), "do_sample": params.temperature > 0,
                                         "temperature": params.temperature, "top_p": params.top_p,
                                         "max_gen_toks": params.max_tokens, "n": n, "seed": params.seed,
                                         "stop_pattern": params.stop_pattern}
                # filtered: the plurality of the parsed letters, "[invalid]" when none parses
                texts = ["Answer:" + g if st == "few_shot" else g for g in gens]  # few-shot continues "Answer:"
                if ds == "pubmedqa":
                    parsed = [{"yes": "A", "no": "B", "maybe": "C"}.get(extract_pubmedqa(t)) for t in texts]
                else:
                    parsed = [extract_choice(t, len(s["doc"]["options"])) for t in texts]
                assert s["filtered_resps"][i] == (plurality(parsed) or "[invalid]")
            assert s["acc"] == float(s["filtered_resps"][-1] == s["target"])
            expect_n = {"few_shot": [1], "cot": [1], "self_consistency": [CFG.k],
                        "ensemble_refinement": [CFG.k1, CFG.k2]}[st]
            assert [len(r) for r in s["resps"]] == expect_n
            temps = [s["arguments"][f"gen_args_{i}"]["arg_1"]["temperature"] for i in range(n_req)]
            assert temps == ([0.0] if st in ("few_shot", "cot") else [CFG.temperature] * n_req)
    # the script leaves some votes without an answer, and those lines say so
    invalid = sum(s["filtered_resps"][-1] == "[invalid]" for _, st, lines in _files(run) for s in lines)
    assert invalid > 0


def test_doc_id_is_the_row_of_the_source_file_in_a_subsampled_run(run):
    from discern.medqa import data

    for ds, st, lines in _files(run):
        subset = run["subsets"][ds][0]
        assert [s["doc"]["question"] for s in lines] == [q.question for q in subset]
        assert [s["doc_id"] for s in lines] != list(range(len(lines)))  # not the positions in the subset
        if ds == "mmlu:anatomy":
            with open(data._root("mmlu-clinical", None) / "anatomy_val.csv", newline="", encoding="utf-8") as f:
                rows = list(csv.reader(f))
            for s in lines:
                assert rows[s["doc_id"]][0] == s["doc"]["question"] and rows[s["doc_id"]][5] == s["target"]
        elif ds == "pubmedqa":
            source = json.loads((data._root("pubmedqa", None) / "pqal_dev.json").read_text(encoding="utf-8"))
            items = list(source.items())
            for s in lines:
                pmid, row = items[s["doc_id"]]
                assert s["doc"]["meta"]["pmid"] == pmid and row["QUESTION"] == s["doc"]["question"]
                assert s["target"] == {"yes": "A", "no": "B", "maybe": "C"}[row["final_decision"]]
                assert s["doc_id"] >= 3  # the first 3 items are the exemplars
        else:
            rows = [json.loads(x) for x in run["medmcqa_rows"]]  # the file's rows without its blank line
            for s in lines:
                assert rows[s["doc_id"]]["question"] == s["doc"]["question"]
                assert s["target"] == "ABCD"[rows[s["doc_id"]]["cop"] - 1]
                assert s["doc_id"] >= 5  # without train.json the first 5 dev rows are the exemplars
        assert all(s["doc_id"] == s["doc"]["meta"]["index"] for s in lines)


def test_ensemble_refinement_logs_its_stage_one_samples_in_full(run):
    calls = run["backend"].calls
    for ds in run["datasets"]:
        lines = _samples(run["out"] / f"samples_{ds.replace(':', '_')}_ensemble_refinement.jsonl")
        for s in lines:
            stage1_prompt = s["arguments"]["gen_args_0"]["arg_0"]
            stage2_prompt = s["arguments"]["gen_args_1"]["arg_0"]
            assert "Students' reasonings:" not in stage1_prompt and stage1_prompt.endswith("Explanation:")
            (stage1,) = [out[ps.index(stage1_prompt)] for ps, n, _, out in calls
                         if stage1_prompt in ps and n == CFG.k1]
            assert s["resps"][0] == stage1 and len(stage1) == CFG.k1
            for k, text in enumerate(stage1, 1):  # stage 2 was conditioned on exactly these samples
                assert f"{k} reasoning: {' '.join(text.split())}" in stage2_prompt
            assert s["arguments"]["gen_args_0"]["arg_1"]["seed"] == CFG.seed
            assert s["arguments"]["gen_args_1"]["arg_1"]["seed"] == CFG.seed + 1


def test_results_json_has_the_harness_tasks_beside_its_own_keys(run):
    saved = run["saved"]
    n_shot = {("mmlu:anatomy", "few_shot"): 5, ("pubmedqa", "few_shot"): 3, ("medmcqa", "few_shot"): 5,
              ("medmcqa", "cot"): 5, ("medmcqa", "self_consistency"): 5, ("medmcqa", "ensemble_refinement"): 5}
    tasks = []
    for ds, st, lines in _files(run):
        task = f"{ds.replace(':', '_')}_{SUFFIX[st]}"
        tasks.append(task)
        acc = [s["acc"] for s in lines]
        entry = saved["results"][task]
        assert entry["alias"] == entry["name"] == task and entry["sample_len"] == len(acc)
        assert entry["acc,none"] == sum(acc) / len(acc)
        # lm-eval's mean_stderr: the sample standard deviation (n - 1) over sqrt(n)
        assert entry["acc_stderr,none"] == pytest.approx(statistics.stdev(acc) / math.sqrt(len(acc)), abs=1e-15)
        assert set(entry) == {"name", "alias", "sample_len", "acc,none", "acc_stderr,none"}
        assert saved["n-samples"][task] == {"original": len(run["pools"][ds]), "effective": 5}
        assert saved["n-shot"][task] == n_shot.get((ds, st), 0)  # CoT prompts hold only explained exemplars
        assert saved["higher_is_better"][task] == {"acc": True}
        assert saved["versions"][task] == 1.0
        config = saved["configs"][task]
        assert config["task"] == task and config["output_type"] == "generate_until"
        assert config["num_fewshot"] == saved["n-shot"][task]
        kwargs = [a["arg_1"] for a in lines[0]["arguments"].values()]  # the scored request's are the last
        assert config["generation_kwargs"] == kwargs[-1] and config["repeats"] == len(lines[0]["resps"][-1])
        assert config["metadata"]["generation_kwargs_per_request"] == kwargs
        assert config["metric_list"] == [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}]
        assert saved["task_hashes"][task] == _sha("".join(s["doc_hash"] + s["prompt_hash"] + s["target_hash"]
                                                          for s in lines))
        # the module's own result of the same run, unchanged, under the dataset's name
        own = saved["accuracy"][ds][st]
        assert own["acc"] == entry["acc,none"] and own["n"] == 5 and own["k"] == sum(acc)
        assert set(own) == {"acc", "k", "n", "bootstrap_ci", "wilson_ci", "unparsed", "parse_failure_rate"}
        assert own["unparsed"] == sum(s["filtered_resps"][-1] == "[invalid]" for s in lines)
    assert saved["n-samples"]["pubmedqa_cot"]["original"] == 497 and saved["n-samples"]["medmcqa_er"]["original"] == 7
    assert sorted(saved["results"]) == sorted(tasks) and sorted(saved["accuracy"]) == sorted(run["datasets"])
    for key in ("configs", "versions", "n-shot", "higher_is_better", "n-samples", "task_hashes"):
        assert sorted(saved[key]) == sorted(tasks), key
    assert saved["model"] == saved["config"]["model"] == saved["model_name"] == "scripted/model:v1"
    assert saved["model_name_sanitized"] == "scripted__model__v1"
    assert saved["config"]["limit"] == 5 and saved["config"]["k1"] == CFG.k1 and saved["config"]["random_seed"] == 3
    assert saved["config"]["strategies"] == STRATEGIES and set(saved["ordering"]) == set(run["datasets"])
    assert isinstance(saved["date"], float) and float(saved["total_evaluation_time_seconds"]) >= 0


def test_lm_eval_schema_validates_samples_and_tasks(run):
    import pydantic

    from lm_eval.result_schema import EvalResults, SampleResult, _EvalConfig, _SampleCount, _TaskMetrics

    samples = pydantic.TypeAdapter(SampleResult)
    for _, _, lines in _files(run):
        for s in lines:
            assert samples.validate_python(s, strict=True) == s
    saved = run["saved"]
    metrics = pydantic.TypeAdapter(_TaskMetrics[float])
    counts = pydantic.TypeAdapter(_SampleCount)
    for task in saved["versions"]:
        assert metrics.validate_python(saved["results"][task], strict=True) == saved["results"][task]
        assert counts.validate_python(saved["n-samples"][task], strict=True) == saved["n-samples"][task]
    assert pydantic.TypeAdapter(_EvalConfig).validate_python(saved["config"], strict=True)["model"] == saved["model"]
    # the whole file as the harness reads it; "configs" left out: its annotation (str / bool / None
    # values) rejects the harness's own task configs too, which hold numbers and lists
    view = {k: v for k, v in saved.items() if k != "configs"}
    checked = pydantic.TypeAdapter(EvalResults).validate_python(view, strict=True)
    assert checked["results"] == view["results"] and checked["n-samples"] == saved["n-samples"]
    assert checked["task_hashes"] == saved["task_hashes"] and checked["higher_is_better"] == saved["higher_is_better"]


def test_lm_eval_make_table_renders_the_results(run):
    from lm_eval.utils import make_table

    saved = run["saved"]
    table = make_table(json.loads(json.dumps(saved)))
    rows = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] in saved["versions"]:
            rows[cells[0]] = cells
    assert sorted(rows) == sorted(saved["versions"])
    for task, cells in rows.items():
        entry = saved["results"][task]
        version, filt, n_shot, metric, hib, value, pm, stderr = cells[1:]
        assert (filt, metric, hib, pm) == ("none", "acc", "↑", "±")
        assert float(version) == 1.0 and int(n_shot) == saved["n-shot"][task]
        assert abs(float(value) - entry["acc,none"]) <= 5e-5 and abs(float(stderr) - entry["acc_stderr,none"]) <= 5e-5
