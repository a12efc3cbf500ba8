"""make ensemble and make soup: members that each see part of the evidence are chosen on
PublicTest, a member that only hurts is left out, and mismatched members are refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ferlib import caffe_proto
from train_files import TINY_DEPLOY, faint_dataset, half_model, known_model


def test_an_ensemble_of_complementary_members_wins_on_publictest(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from predict.recognizer import Recognizer
    from train.ensemble import main as ensemble_main

    data = faint_dataset(tmp_path / "data")
    top, bottom = half_model(tmp_path / "top", range(3)), half_model(tmp_path / "bottom", range(3, 6))
    first = top
    noise = known_model(tmp_path / "noise", 50.0)  # random weights: a member that only hurts
    weight = np.random.default_rng(3).normal(0, 0.05, (2, 36)).astype(np.float32)
    (noise / "known.caffemodel").write_bytes(
        caffe_proto.net_weights("tiny", {"fc": ("InnerProduct", [weight, np.zeros(2, np.float32)])})
    )
    (noise / "alignment.json").write_text('{"template": "fer2013"}')
    models = [top, bottom, noise]
    members = [arg for model in models for arg in ("--member", f"{model}={data}")]
    assert ensemble_main([*members, "--name", "best", "--models", str(tmp_path / "models")]) == 0
    target = tmp_path / "models/best"
    report = json.loads((target / "report.json").read_text())
    singles = {
        row["members"][0]: row["tta_table"]["none"]["val"]
        for row in report["group_tta_tables"]
        if len(row["members"]) == 1
    }
    # each half sees part of the evidence; their average sees all of it and is chosen, without
    # the mirror views (which swap left and right) and without the noise member
    assert report["members"] == ["../../top", "../../bottom"] and report["tta"] == "none"
    assert report["tta_table"]["none"]["val"] > max(singles.values()) + 0.03
    assert len(report["group_tta_tables"]) == 7
    assert json.loads((target / "ensemble.json").read_text()) == {
        "members": report["members"],
        "tta": "none",
        "format": 1,
    }
    card = (target / "README.md").read_text()
    assert "| **../../top + ../../bottom** | **none** |" in card
    assert "make restore" not in card  # no member under a models/ folder: nothing to bring back
    assert len(Recognizer(target, detect=False).members) == 2
    capsys.readouterr()
    (first / "alignment.json").write_text('{"template": "arcface"}')
    assert ensemble_main([*members, "--name", "mixed", "--models", str(tmp_path / "models")]) == 2
    assert "aligned with 'arcface'" in capsys.readouterr().err
    assert not (tmp_path / "models/mixed").exists()
    (first / "alignment.json").write_text('{"template": "fer2013"}')
    (models[2] / "labels.json").write_text(json.dumps(["left", "up"]))
    assert ensemble_main([*members, "--name", "classes", "--models", str(tmp_path / "models")]) == 2
    assert "has the classes left, up" in capsys.readouterr().err
    assert not (tmp_path / "models/classes").exists()
    assert ensemble_main(["--member", f"{models[1]}={tmp_path / 'nothing'}", *members[2:], "--name", "x"]) == 2
    assert "nothing lacks val_lmdb: run 'make preprocess' first" in capsys.readouterr().err


def test_a_greedy_soup_of_complementary_members_beats_each_and_leaves_out_noise(
    tmp_path: Path, capsys: pytest.CaptureFixture, pycaffe: object
) -> None:
    from ferlib.model_folder import ModelFiles, write_ensemble
    from predict.recognizer import Recognizer
    from train.soup import main as soup_main

    data = faint_dataset(tmp_path / "data")
    top, bottom = half_model(tmp_path / "top", range(3)), half_model(tmp_path / "bottom", range(3, 6))
    noise = known_model(tmp_path / "noise", 50.0)
    weight = np.random.default_rng(3).normal(0, 0.05, (2, 36)).astype(np.float32)
    (noise / "known.caffemodel").write_bytes(
        caffe_proto.net_weights("tiny", {"fc": ("InnerProduct", [weight, np.zeros(2, np.float32)])})
    )
    (noise / "alignment.json").write_text('{"template": "fer2013"}')
    members = [arg for model in (noise, top, bottom) for arg in ("--member", str(model))]
    models = str(tmp_path / "models")
    assert soup_main([*members, "--data", str(data), "--name", "soup", "--models", models]) == 0
    target = tmp_path / "models/soup"
    report = json.loads((target / "report.json").read_text())
    # each half sees part of the evidence; the average of their weights sees all of it
    assert sorted(report["members"]) == sorted([str(top), str(bottom)])
    steps = {step["member"]: step for step in report["steps"]}
    assert steps[str(noise)]["kept"] is False and len(steps) == 3
    assert report["splits"]["val"]["accuracy"] > max(step["alone"]["val"] for step in steps.values()) + 0.03
    fc = pycaffe.Net(str(target / "deploy.prototxt"), pycaffe.TEST, weights=str(target / "soup.caffemodel"))
    halves = [ModelFiles.from_dir(model) for model in (top, bottom)]
    expected = np.mean(
        [pycaffe.Net(str(f.deploy), pycaffe.TEST, weights=str(f.weights)).params["fc"][0].data for f in halves], axis=0
    )
    np.testing.assert_allclose(fc.params["fc"][0].data, expected)
    card = (target / "README.md").read_text()
    assert f"**{report['splits']['test']['accuracy']:.4f}**" in card and f"| `{noise}` |" in card
    assert len(Recognizer(target, detect=False).members) == 1  # one model, run once per face
    # a member with a card outside models/ (a run an experiment shipped) keeps it beside the soup's
    (top / "README.md").write_text("# top\nits commands\n")
    assert soup_main([*members, "--data", str(data), "--name", "all", "--models", models, "--uniform"]) == 0
    uniform = json.loads((tmp_path / "models/all/report.json").read_text())
    assert uniform["members"] == [str(noise), str(top), str(bottom)] and uniform["steps"] == []
    card = (tmp_path / "models/all/README.md").read_text()
    assert "used to choose" not in card and (tmp_path / "models/all/top.md").read_text() == "# top\nits commands\n"
    assert f"--member {noise} --member models/top --member {bottom} " in card and "(`top.md`)" in card
    capsys.readouterr()
    (bottom / "labels.json").write_text(json.dumps(["left", "up"]))
    assert soup_main([*members, "--data", str(data), "--name", "other", "--models", models]) == 2
    expected = f"error: {bottom} has the classes left, up, {noise} has left, right: a soup's members share them\n"
    assert capsys.readouterr().err == expected
    (bottom / "labels.json").write_text(json.dumps(["left", "right"]))
    np.save(bottom / "mean.npy", np.full((1, 8, 8), 60, np.float32))
    assert soup_main([*members, "--data", str(data), "--name", "other", "--models", models]) == 2
    assert (
        capsys.readouterr().err == f"error: {bottom}: its training mean differs from {noise}'s: trained on other data\n"
    )
    assert not (tmp_path / "models/other").exists()
    np.save(bottom / "mean.npy", np.full((1, 8, 8), 50, np.float32))
    (bottom / "deploy.prototxt").write_text(TINY_DEPLOY.replace("num_output: 2", "num_output: 2 bias_term: false"))
    (bottom / "known.caffemodel").write_bytes(caffe_proto.net_weights("tiny", {"fc": ("InnerProduct", [weight])}))
    assert soup_main([*members, "--data", str(data), "--name", "other", "--models", models]) == 2
    assert capsys.readouterr().err == f"error: {bottom}: another net than {noise} (its layers or their shapes differ)\n"
    pair = tmp_path / "pair"
    pair.mkdir()
    write_ensemble(pair, ["../top", "../bottom"], "none")
    assert soup_main(["--member", str(top), "--member", str(pair), "--data", str(data), "--name", "x"]) == 2
    assert capsys.readouterr().err == f"error: {pair}: an ensemble (ensemble.json) of model folders, not one model\n"


def test_a_soup_reads_batchnorm_statistics_whatever_their_scale_factor(tmp_path: Path, pycaffe: object) -> None:
    """Caffe keeps BatchNorm's mean and variance as running sums with a scale factor; the
    same statistics stored with another factor are the same model and average as such."""
    from ferlib.classifier import Classifier
    from ferlib.model_folder import ModelFiles
    from tiny_models import face_model
    from train.soup import average, read_params

    plain = face_model(tmp_path / "plain")
    scaled = face_model(tmp_path / "scaled")
    net = pycaffe.Net(str(scaled / "deploy.prototxt"), pycaffe.TEST, weights=str(scaled / "random.caffemodel"))
    for blob in net.params["conv1/bn"]:
        blob.data[...] *= 4  # sums over four times the batches, and their count
    net.save(str(scaled / "random.caffemodel"))
    a, b = (read_params(ModelFiles.from_dir(folder)) for folder in (plain, scaled))
    for name in a:
        for x, y in zip(a[name], b[name]):
            np.testing.assert_allclose(x, y, rtol=1e-6)
    assert float(b["conv1/bn"][2][0]) == 1.0
    mixed = average([a, b])
    np.testing.assert_allclose(mixed["conv1/bn"][0], a["conv1/bn"][0], rtol=1e-6)
    # the greedy choice scores each member from its own files: OpenCV reads the factor too
    faces = np.random.default_rng(0).integers(0, 256, (4, 48, 48)).astype(np.uint8)
    plain_out, scaled_out = (Classifier(ModelFiles.from_dir(f)).probabilities(faces) for f in (plain, scaled))
    np.testing.assert_allclose(scaled_out, plain_out, rtol=1e-4, atol=1e-6)


def test_a_budget_in_operations_weighs_each_member_by_its_net() -> None:
    from train.ensemble import Budget

    small, large = 137.8, 857.2  # fer_vgg and fer_vgg13 at 44x44, MFLOPs per view
    assert Budget(mflops=600).allows([small, small], "mirror")
    assert not Budget(mflops=600).allows([large], "none")
    assert Budget(passes=4).allows([large, large], "mirror")  # passes alone do not see a net's size
    assert not Budget(4, 600).allows([small] * 3, "mirror") and not Budget(4, 600).allows([large], "none")
    assert Budget().allows([large] * 3, "ten") and str(Budget()) == "no limit"
    assert str(Budget(4, 600.0)) == "at most 4 net passes and 600 MFLOPs per face"
    # a member limit: the best single model with any TTA it can afford (a default that must be one model)
    assert Budget(members=1).allows([large], "ten") and not Budget(members=1).allows([small, small], "none")
    assert str(Budget(4, 600.0, 1)) == "at most 1 member, at most 4 net passes and 600 MFLOPs per face"


def test_raw_crops_and_the_pass_limit_change_the_choice(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from train.ensemble import main as ensemble_main

    data = faint_dataset(tmp_path / "data")
    # on the plain crops the rows the top member reads point the wrong way (crop 1..6 of 8:
    # rows 1-3 are its rows), so the bottom member alone does best on both paths together
    raw = faint_dataset(tmp_path / "raw", align=False, misleading_rows=4)
    # members in the models folder the ensembles go to, as shipped members are
    (tmp_path / "models").mkdir()
    top, bottom = half_model(tmp_path / "models/top", range(3)), half_model(tmp_path / "models/bottom", range(3, 6))
    members = [arg for model in (top, bottom) for arg in ("--member", f"{model}={data}")]
    models = str(tmp_path / "models")
    assert ensemble_main([*members, "--name", "aligned", "--models", models]) == 0
    assert json.loads((tmp_path / "models/aligned/report.json").read_text())["members"] == ["../top", "../bottom"]
    # the pair wins on PublicTest; with one member allowed the better single model does, and the card says so
    assert ensemble_main([*members, "--max-members", "1", "--name", "single", "--models", models]) == 0
    report = json.loads((tmp_path / "models/single/report.json").read_text())
    assert len(report["members"]) == 1 and report["max_members"] == 1
    text = (tmp_path / "models/single/README.md").read_text()
    assert "--max-members 1 --name single" in text and "among those of at most 1 member." in text
    assert "the best single model: averages of several were not candidates" in text
    assert ensemble_main([*members, "--raw", str(raw), "--name", "both", "--models", models]) == 0
    report = json.loads((tmp_path / "models/both/report.json").read_text())
    assert report["members"] == ["../bottom"] and report["raw_data"] == str(raw)
    pair = next(row for row in report["group_tta_tables"] if len(row["members"]) == 2)
    assert pair["raw_tta_table"]["none"]["val"] < report["raw_tta_table"]["none"]["val"] - 0.1
    text = (tmp_path / "models/both/README.md").read_text()
    assert "| raw PublicTest | raw PrivateTest |" in text
    # the card names the datasets by the folders its make preprocess lines make, not by this machine's paths
    assert f"--member {top}=data/fer2013 --member {bottom}=data/fer2013 --raw data/fer2013-plain --name both" in text
    assert str(raw) not in text and str(data) not in text
    # the member the choice left out may leave models/: the card says how it comes back
    assert "(`bottom`, `top`) that has left `models/` comes back: `make restore NAME=...`" in text
    preprocess = [line for line in text.splitlines() if line.startswith("make preprocess")]
    assert preprocess == [
        "make preprocess FER2013=path/to/fer2013.csv.gz",
        "make preprocess FER2013=path/to/fer2013.csv.gz DATA=data/fer2013-plain ARGS=--no-align",
    ]
    assert f"| {report['raw_splits']['test']['accuracy']:.4f} |" in text
    # one pass per face: no group, no TTA
    assert ensemble_main([*members, "--max-passes", "1", "--name", "one", "--models", models]) == 0
    report = json.loads((tmp_path / "models/one/report.json").read_text())
    assert len(report["members"]) == 1 and report["tta"] == "none" and report["max_passes"] == 1
    assert "--max-passes 1 --name one" in (tmp_path / "models/one/README.md").read_text()
    # the same limit in operations: one member's single view fits, its mirror does not
    cost = report["mflops"]["../top"]
    assert cost > 0 and report["mflops_per_face"] == cost
    limit = f"{cost * 1.5:g}"
    assert ensemble_main([*members, "--max-mflops", limit, "--name", "ops", "--models", models]) == 0
    report = json.loads((tmp_path / "models/ops/report.json").read_text())
    assert len(report["members"]) == 1 and report["tta"] == "none" and report["max_mflops"] == float(limit)
    text = (tmp_path / "models/ops/README.md").read_text()
    assert f"--max-mflops {limit} --name ops" in text and f"| million operations per face | {cost:.4g} |" in text
    capsys.readouterr()
    assert ensemble_main([*members, "--max-mflops", f"{cost / 2:g}", "--name", "x", "--models", models]) == 2
    assert (
        f"MFLOPs per face: the cheapest, one member without TTA, takes 1 pass and {cost:.4g}" in capsys.readouterr().err
    )
    capsys.readouterr()
    assert ensemble_main([*members, "--raw", str(data), "--name", "x", "--models", models]) == 2
    assert "holds faces aligned with 'fer2013'; --raw needs the plain crops" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        ensemble_main([*members, "--max-passes", "0", "--name", "x", "--models", models])
    assert exit_info.value.code == 2 and "argument --max-passes: must be at least 1, got '0'" in capsys.readouterr().err
    assert not (tmp_path / "models/x").exists()


def test_single_writes_the_best_single_model_beside_the_ensemble_from_one_scoring(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from train import ensemble
    from train.ensemble import main as ensemble_main

    data = faint_dataset(tmp_path / "data")
    (tmp_path / "models").mkdir()
    top, bottom = half_model(tmp_path / "models/top", range(3)), half_model(tmp_path / "models/bottom", range(3, 6))
    members = [arg for model in (top, bottom) for arg in ("--member", f"{model}={data}")]
    models = str(tmp_path / "models")
    scored = []
    score_members = ensemble.all_member_views
    monkeypatch.setattr(ensemble, "all_member_views", lambda *args: scored.append(args) or score_members(*args))
    assert ensemble_main([*members, "--name", "pair", "--single", "alone", "--models", models]) == 0
    assert len(scored) == 1  # the members were scored once for both folders
    pair, alone = (json.loads((tmp_path / "models" / name / "report.json").read_text()) for name in ("pair", "alone"))
    assert pair["members"] == ["../top", "../bottom"] and pair["max_members"] is None
    # the single folder is what --max-members 1 alone makes, and its card says how to make it so
    assert ensemble_main([*members, "--max-members", "1", "--name", "one", "--models", models]) == 0
    one = json.loads((tmp_path / "models/one/report.json").read_text())
    assert alone["max_members"] == 1 and (alone["members"], alone["tta"]) == (one["members"], one["tta"])
    assert alone["splits"] == one["splits"] and alone["group_tta_tables"] == one["group_tta_tables"]
    assert "--max-members 1 --name alone" in (tmp_path / "models/alone/README.md").read_text()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("2 of 2, TTA none: ") and lines[0].endswith(f"wrote {tmp_path}/models/pair")
    assert lines[1].startswith("1 of 2, TTA ") and lines[1].endswith(f"wrote {tmp_path}/models/alone")
    with pytest.raises(SystemExit) as exit_info:
        ensemble_main([*members, "--name", "pair", "--single", "pair", "--models", models])
    assert exit_info.value.code == 2 and "--single pair: name another folder" in capsys.readouterr().err


def test_a_soup_made_into_runs_ships_into_models_with_its_members_cards_and_no_scoring(
    tmp_path: Path, capsys: pytest.CaptureFixture, pycaffe: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from train import soup
    from train.soup import main as soup_main

    data, runs, models = faint_dataset(tmp_path / "data"), tmp_path / "runs", tmp_path / "models"
    runs.mkdir()
    top, bottom = half_model(runs / "top", range(3)), half_model(runs / "bottom", range(3, 6))
    for member in (top, bottom):  # shipped into runs by an experiment, each with its card and its start's
        (member / "README.md").write_text(f"# {member.name}\nits commands\n")
        (member / "start.md").write_text("# start\nthe commands that make both members' start\n")
    members = ["--member", str(top), "--member", str(bottom)]
    assert soup_main([*members, "--data", str(data), "--name", "pair", "--models", str(runs), "--uniform"]) == 0
    made = runs / "pair"
    assert (made / "top.md").is_file()  # beside its members, the soup keeps their cards all the same
    monkeypatch.setattr(soup, "split_views", lambda *args: pytest.fail("shipping scored the soup again"))
    capsys.readouterr()
    assert soup_main(["--ship", str(made), "--models", str(models)]) == 0
    shipped = models / "pair"
    assert capsys.readouterr().out == f"shipped {made} into {shipped}\n"
    for name in ("pair.caffemodel", "report.json", "deploy.prototxt", "confusion.png"):
        assert (shipped / name).read_bytes() == (made / name).read_bytes()
    card = (shipped / "README.md").read_text()
    assert "--member models/top --member models/bottom " in card and "(`top.md`, `bottom.md`)" in card
    assert "by this project (`models/top`, `models/bottom`)" in card and str(runs) not in card
    assert "used to choose" not in card  # still the uniform soup's card
    assert (shipped / "top.md").read_text() == "# top\nits commands\n"
    assert (shipped / "start.md").read_text() == (top / "start.md").read_text()  # the members' descent too
    assert soup_main(["--ship", str(top), "--models", str(models)]) == 2  # a model, but not a soup
    assert capsys.readouterr().err == f"error: {top}: not a soup made by python -m train.soup (no report.json)\n"
    assert not (models / "top").exists()
    assert soup_main(["--ship", str(shipped), "--models", str(models)]) == 2
    assert capsys.readouterr().err == f"error: {shipped} lies in {models} already: nothing to ship\n"
    with pytest.raises(SystemExit) as exit_info:
        soup_main(["--ship", str(made), "--name", "x"])
    assert exit_info.value.code == 2 and "give it without --member and --name" in capsys.readouterr().err
