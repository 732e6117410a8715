import csv
import json

from discern.cli import main


def test_train_then_classify_a_folder(tmp_path, monkeypatch, capsys, random_image_folder):
    monkeypatch.setenv("DISCERN_RUNS", str(tmp_path / "runs"))
    folder = random_image_folder(tmp_path / "images")
    assert main(["diffusion", "train", "--preset", "tiny", "--images", str(folder)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["classes"] == ["circle", "square"] and out["images"] == 6 and out["steps"] == 3
    classes = tmp_path / "classes.txt"
    classes.write_text("circle\nsquare\n")
    args = ["diffusion-classifier", "classify", "--model", out["pipeline"], "--images", str(folder), "--classes",
            str(classes), "--policy", "full", "--samples", "4", "--out", str(tmp_path / "pred")]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"] == 6 and summary["evaluations_per_image"] == 8 and "accuracy" in summary
    rows = list(csv.DictReader(open(tmp_path / "pred" / "predictions.csv")))
    assert [r["file"] for r in rows] == [f"{c}/{k}.png" for c in ("circle", "square") for k in range(3)]
    assert {r["prediction"] for r in rows} <= {"circle", "square"} and rows[0]["label"] == "circle"
    # bad input fails clearly
    classes.write_text("circle\n")
    assert main(args) == 2
    assert "needs at least two class names" in capsys.readouterr().err
