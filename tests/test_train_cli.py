"""The [data]/[train] tables of problem files, workflow.train_spec and `cognitive-action train`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from cognitive_action.cli import main
from cognitive_action.errors import ProblemFileError
from cognitive_action.problem_files.loader import load_problem, problems_dir

pytest.importorskip("sklearn")

TINY = """name = "tiny_digits"
[network]
layers = [64, 6, 10]
activation = "tanh"
[data]
source = "digits"
split = 0.25
seed = 1
limit = 120
[train]
epochs = 2
learning_rate = 0.05
"""


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_digits_file_declares_the_design_setting():
    spec = load_problem("digits")
    net = spec.problem.network
    assert (len(net.inputs), len(net.outputs), len(net.w)) == (64, 10, 64 * 32 + 32 * 10)
    assert spec.data == {"source": "digits", "split": 0.2, "seed": 0}
    assert spec.train["epochs"] == 3 and spec.train["learning_rate"] == 0.05


@pytest.mark.parametrize("old,new,field", [
    ('source = "digits"', 'source = "os.system"', "data.source"),
    ('source = "digits"', 'source = "/etc/passwd"', "data.source"),
    ("split = 0.25", "split = 1.5", "data.split"),
    ("limit = 120", "limit = -3", "data.limit"),
    ("seed = 1", "seed = 1\nformat = 1", "data.format"),
    ("learning_rate = 0.05", "learning_rate = 0", "train.learning_rate"),
    ("epochs = 2", 'epochs = "2"', "train.epochs"),
    # a net that does not fit the data set: refused when the file is read
    ("layers = [64, 6, 10]", "layers = [63, 6, 10]", "data.source"),
    ("layers = [64, 6, 10]", "layers = [64, 6, 9]", "data.source")])
def test_bad_data_and_train_tables_name_the_field(tmp_path, old, new, field):
    f = tmp_path / "bad.toml"
    f.write_text(TINY.replace(old, new))
    with pytest.raises(ProblemFileError) as info:
        load_problem(f)
    assert info.value.field == field and info.value.fix
    res = run("train", str(f))
    assert res.exit_code == 2
    assert f"bad.toml:{field}:" in res.output and "Fix:" in res.output


def test_train_cli_on_a_tiny_stream_and_resume(tmp_path):
    f = tmp_path / "tiny.toml"
    f.write_text(TINY)
    out = tmp_path / "run"
    res = run("train", str(f), "--epochs", "1", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert "epoch 1/1" in res.output and "derived limit law" in res.output
    res = run("train", str(f), "--out", str(out))          # the file's 2 epochs
    assert res.exit_code == 0, res.output
    assert "resumed from epoch 1" in res.output
    data = json.loads((out / "training.json").read_text())
    fresh = run("train", str(f), "--out", str(tmp_path / "fresh"))
    assert fresh.exit_code == 0
    again = json.loads((tmp_path / "fresh" / "training.json").read_text())
    assert data["limit"]["train_loss"] == again["limit"]["train_loss"]
    assert data["limit"]["test_accuracy"] == data["sgd"]["test_accuracy"]
    assert (out / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.npz", "learning_curve.png",
                                                     "training.json", "training.nc"]
    # the labelled curves (xarray, netCDF) equal the JSON ones
    from cognitive_action.results.labelled import load_dataset

    curves = load_dataset(out / "training.nc")
    assert list(curves["run"].values) == ["limit", "sgd"]
    assert curves["train_loss"].sel(run="limit").values.tolist() == \
        data["limit"]["train_loss"]
    # another learning rate into the same folder: refused, nothing overwritten
    before = (out / "checkpoint.npz").read_bytes()
    res = run("train", str(f), "--lr", "0.2", "--out", str(out))
    assert res.exit_code == 2 and "another problem" in res.output
    assert (out / "checkpoint.npz").read_bytes() == before


def test_train_needs_a_data_table():
    res = run("train", str(problems_dir() / "xor.toml"))
    assert res.exit_code == 2 and "xor.toml:data:" in res.output


def test_train_spec_matches_sgd_weights(tmp_path):
    from cognitive_action.workflow import train_spec

    f = tmp_path / "tiny.toml"
    f.write_text(TINY)
    r = train_spec(str(f))
    np.testing.assert_allclose(r.history.weights, r.baseline.weights, rtol=0, atol=1e-9)


def test_train_cli_dynamics_and_diffusion_modes(tmp_path):
    """``--mode dynamics`` on a tiny stream: the full derived dynamics lands near SGD
    (same split, epochs, initial weights); ``--mode diffusion`` runs the stable
    relaxation and says so; a bad [train] mode names the field."""
    f = tmp_path / "tiny.toml"
    f.write_text(TINY.replace('name = "tiny_digits"', 'name = "tiny_digits"\n'
                              'parameters = { theta = 50.0, m_x = 1.0, m_W = 1.0 }')
                 .replace("[data]", '[action]\nweight = "exp(theta*t)"\nmass_x = "m_x"\n'
                          'mass_W = "m_W"\n[data]')
                 .replace("limit = 120", "limit = 60"))
    out = tmp_path / "dyn"
    res = run("train", str(f), "--mode", "dynamics", "--epochs", "1", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert "derived dynamics" in res.output and "gamma 20" in res.output
    data = json.loads((out / "training.json").read_text())
    assert data["settings"]["mode"] == "dynamics"
    assert abs(data["dynamics"]["test_accuracy"][-1] - data["sgd"]["test_accuracy"][-1]) \
        <= 0.05
    # the labelled curves name the run by its mode and keep what a run in time adds
    from cognitive_action.results.labelled import load_dataset

    curves = load_dataset(out / "training.nc")
    assert list(curves["run"].values) == ["dynamics", "sgd"]
    assert curves["test_accuracy"].sel(run="dynamics").values.tolist() == \
        data["dynamics"]["test_accuracy"]
    assert curves["switch_max_G"].sel(run="dynamics").values[1:].tolist() == \
        [r[0] for r in data["dynamics"]["switch_residuals"]]
    assert json.loads(curves.attrs["settings_dynamics"])["theta"] == 50.0
    res = run("train", str(f), "--mode", "diffusion", "--epochs", "1", "--speed", "60",
              "--tau", "0.5")
    assert res.exit_code == 0, res.output
    assert "relaxation" in res.output and "diffusion law" in res.output
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY.replace("epochs = 2", 'epochs = 2\nmode = "fast"'))
    res = run("train", str(bad))
    assert res.exit_code == 2 and "bad.toml:train.mode:" in res.output


def test_train_modes_of_the_loader_are_the_learn_modes():
    from cognitive_action.learn.train import MODES
    from cognitive_action.problem_files.loader import TRAIN_MODES

    assert TRAIN_MODES == MODES


@pytest.mark.parametrize("with_out", [True, False])
def test_ctrl_c_says_what_was_kept_and_exits_130(tmp_path, monkeypatch, with_out):
    import cognitive_action.workflow as workflow

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(workflow, "train_spec", interrupted)
    f = tmp_path / "tiny.toml"
    f.write_text(TINY)
    args = ["train", str(f)] + (["--out", str(tmp_path / "run")] if with_out else [])
    res = run(*args)
    assert res.exit_code == 130
    if with_out:
        assert "checkpoint.npz holds the last finished epoch" in res.output
        assert "rerun the same command" in res.output
    else:
        assert "nothing was saved" in res.output and "--out" in res.output
