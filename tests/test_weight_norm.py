"""model.norm: weight (Salimans & Kingma 2016): the layer against PyTorch's weight_norm
(numbers pinned here, and live when torch is installed), gradient checks in both modes, the
start from the plain layer's function, how decay, penalties, max-norm and clipping treat v
and g, the memory estimate, bit-identical resume, and a sweep over every norm that compare
shows. The LAYER_CASES of test_layers.py check its layer and blocks as well."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from helpers import InterruptAt
from subproc import children, start  # noqa: F401 (children: a fixture)
from test_layers import assert_grad_close, numeric_grad
from trickrun import memory
from trickrun.api import resume, train
from trickrun.cli import app
from trickrun.config import ConfigError, ModelConfig, load_config
from trickrun.data.catalog import NUM_CLASSES
from trickrun.data.load import load_dataset
from trickrun.ending import Divergence
from trickrun.nn.diagnostics import layer_stats
from trickrun.nn.layers import NORMS, WeightNormDense
from trickrun.nn.losses import evaluate, softmax_cross_entropy
from trickrun.nn.model import MLP
from trickrun.rundir.format import CHECKPOINT_FILE
from trickrun.train import NullReporter, Trainer

runner = CliRunner()


def make(cfg: ModelConfig, dtype=np.float32, seed: int = 0) -> MLP:
    return MLP(6, 3, cfg, init_rng=np.random.default_rng(seed), dropout_rng=np.random.default_rng(seed + 1),
               dtype=dtype)


def batch(n: int = 9, dtype=np.float32) -> np.ndarray:
    return np.random.default_rng(5).normal(size=(n, 6)).astype(dtype)


# --- against PyTorch --------------------------------------------------------------------------
# torch 2.13.0, float64: lin = nn.Linear(3, 2); lin.weight = TORCH_WEIGHT, lin.bias = BIAS;
# weight_norm(lin) (torch.nn.utils.parametrizations, default dim=0); then original0 (g, shape
# (2, 1)) set to G; y = layer(X); (y * R).sum().backward().
TORCH_WEIGHT = [[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]]  # (n_out, n_in): ours is its transpose
BIAS = [0.1, -0.2]
G = [1.5, -0.8]
X = [[1.0, 2.0, -1.0], [0.5, -0.3, 0.8], [-1.2, 0.7, 0.4], [2.0, 0.0, -0.5]]
R = [[0.3, -1.0], [1.1, 0.4], [-0.6, 0.9], [0.2, 0.5]]
TORCH_G_INIT = [2.29128784747792, 1.695582495781317]  # original0 straight after weight_norm: ||v||
TORCH_Y = [[-2.1912878474779203, -1.4974892141630949], [1.507505392022151, -0.2353860694771753],
           [-0.22732683535398854, 0.7082424499141664], [0.1, -1.792373126472889]]
TORCH_GRAD_G = [0.7048437854622556, -1.6307080350731626]
TORCH_GRAD_V = [[1.1889757619429644, 0.10318588809730503, -0.24565099643708857],  # (n_out, n_in)
                [-0.26544680523747755, 0.5895626879849384, -0.33437271447997546]]
TORCH_GRAD_X = [[0.8059194401497028, -0.07844253628847543, 0.03893150765303316],
                [0.07697096307198495, -0.767300463748342, 1.5817823534662512],
                [-0.8333453518015488, 0.28663399399326034, -0.4671097795549948],
                [-0.28839532770095544, -0.18990751660355432, 0.43879181566906744]]
TORCH_GRAD_B = [1.0000000000000002, 0.8]


def layer_of(torch_weight, bias, g=None) -> tuple[WeightNormDense, dict[str, np.ndarray]]:
    """A float64 WeightNormDense holding torch's (n_out, n_in) weight as v (n_in, n_out)."""
    v = np.array(torch_weight, dtype=np.float64).T.copy()
    arrays = {"v": v, "gv": np.zeros_like(v), "g": np.ones(v.shape[1]), "gg": np.zeros(v.shape[1]),
              "b": np.array(bias, dtype=np.float64), "gb": np.zeros(v.shape[1])}
    layer = WeightNormDense(arrays["v"], arrays["gv"], arrays["g"], arrays["gg"], arrays["b"], arrays["gb"])
    layer.init_params()
    if g is not None:
        arrays["g"][...] = g
    return layer, arrays


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_forward_and_gradients_equal_pytorchs_pinned_numbers(train):
    layer, a = layer_of(TORCH_WEIGHT, BIAS)
    np.testing.assert_allclose(a["g"], TORCH_G_INIT, rtol=1e-14)
    a["g"][...] = G
    y = layer.forward(np.array(X), train).copy()
    dx = layer.backward(np.array(R))
    np.testing.assert_allclose(y, TORCH_Y, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(a["gg"], TORCH_GRAD_G, rtol=1e-13)
    np.testing.assert_allclose(a["gv"].T, TORCH_GRAD_V, rtol=1e-13)
    np.testing.assert_allclose(dx, TORCH_GRAD_X, rtol=1e-13)
    np.testing.assert_allclose(a["gb"], TORCH_GRAD_B, rtol=1e-13)


def test_forward_and_gradients_equal_live_pytorch():
    torch = pytest.importorskip("torch")
    from torch.nn.utils.parametrizations import weight_norm

    rng = np.random.default_rng(0)
    n_in, n_out, n = 7, 5, 11
    weight, bias = rng.normal(size=(n_out, n_in)), rng.normal(size=n_out)
    g, x, upstream = rng.normal(size=n_out), rng.normal(size=(n, n_in)), rng.normal(size=(n, n_out))

    lin = torch.nn.Linear(n_in, n_out, dtype=torch.float64)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(weight))
        lin.bias.copy_(torch.from_numpy(bias))
    wn = weight_norm(lin)
    ours, a = layer_of(weight, bias)
    g_torch, v_torch = wn.parametrizations.weight.original0, wn.parametrizations.weight.original1
    np.testing.assert_allclose(a["g"], g_torch.detach().numpy().ravel(), rtol=1e-14)  # both start at ||v||
    with torch.no_grad():
        g_torch.copy_(torch.from_numpy(g).reshape(n_out, 1))
    a["g"][...] = g
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = wn(xt)
    (yt * torch.from_numpy(upstream)).sum().backward()

    np.testing.assert_allclose(ours.forward(x, True), yt.detach().numpy(), rtol=1e-12, atol=1e-14)
    dx = ours.backward(upstream)
    np.testing.assert_allclose(a["gg"], g_torch.grad.numpy().ravel(), rtol=1e-12)
    np.testing.assert_allclose(a["gv"].T, v_torch.grad.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-14)


# --- the formula, and finite differences in both modes --------------------------------------
def test_effective_columns_have_norm_g_and_direction_v():
    rng = np.random.default_rng(1)
    layer, a = layer_of(rng.normal(size=(4, 6)), np.zeros(4), g=[2.0, -0.5, 1.0, 3.0])
    layer.forward(rng.normal(size=(3, 6)), False)
    np.testing.assert_allclose(np.linalg.norm(layer.W, axis=0), np.abs(a["g"]), rtol=1e-14)
    np.testing.assert_allclose(layer.W / a["g"], a["v"] / np.linalg.norm(a["v"], axis=0), rtol=1e-14)
    a["v"] *= 7.0  # the layer's function does not depend on v's length
    before = layer.W.copy()
    layer.forward(rng.normal(size=(3, 6)), False)
    np.testing.assert_allclose(layer.W, before, rtol=1e-14)


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_layer_gradients_match_finite_differences(train):
    rng = np.random.default_rng(2)
    layer, a = layer_of(rng.normal(size=(5, 6)), rng.normal(size=5), g=rng.normal(size=5))
    x, upstream = rng.normal(size=(7, 6)), rng.normal(size=(7, 5))
    layer.forward(x, train)
    dx = layer.backward(upstream).copy()

    def f() -> float:
        return float(np.sum(layer.forward(x, train) * upstream))

    assert_grad_close(dx, numeric_grad(f, x))
    for name in ("v", "g", "b"):  # their gradients: gv, gg, gb
        assert_grad_close(a["g" + name], numeric_grad(f, a[name]))


@pytest.mark.parametrize("dropout", [0.0, 0.5])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_mlp_gradients_match_finite_differences_in_evaluation_mode(activation, dropout):
    """test_layers.py checks the MLP in training mode; here its evaluation-mode map."""
    model = make(ModelConfig(hidden=[5, 4], activation=activation, norm="weight", dropout=dropout), np.float64)
    rng = np.random.default_rng(3)
    model.params[...] = rng.normal(scale=0.7, size=model.params.size)  # g away from ||v||, biases off 0
    x, y = rng.normal(size=(8, 6)), rng.integers(0, 3, size=8)
    logits = model.forward(x, False)
    _, _, upstream = softmax_cross_entropy(logits, y, np.empty_like(logits))
    model.grads[...] = np.nan
    model.backward(upstream)
    analytic = model.grads.copy()
    assert_grad_close(analytic, numeric_grad(lambda: softmax_cross_entropy(model.forward(x, False), y)[0],
                                             model.params))


# --- layout and the start from the plain layer ----------------------------------------------
def test_every_dense_layer_is_weight_normalized_with_v_first_and_g_beside_the_bias():
    model = make(ModelConfig(hidden=[5, 4], norm="weight"))
    assert all(type(b.dense) is WeightNormDense for b in model.blocks)  # the output layer too
    assert all(b.norm is None for b in model.blocks)  # no layer between the Dense and the activation
    v = [model.param(f"{b.name}.v") for b in model.blocks]
    np.testing.assert_array_equal(model.params[: model.n_weights], np.concatenate([w.ravel() for w in v]))
    assert [w.shape for w in model.weight_matrices()] == [(6, 5), (5, 4), (4, 3)]
    assert all(np.shares_memory(w, model.params) for w in model.weight_matrices())
    g_and_b = model.params[model.n_weights:]
    assert g_and_b.size == 2 * (5 + 4 + 3)  # no parameter besides v, g and b
    for block in model.blocks:
        assert np.shares_memory(block.dense.g, model.params) and np.shares_memory(block.dense.gg, model.grads)
        assert not np.shares_memory(block.dense.W, model.params)  # W is recomputed, never trained


def test_g_starts_at_the_norm_of_v_and_step_0_is_the_plain_network_bit_for_bit():
    for activation in ("relu", "tanh"):
        plain = make(ModelConfig(hidden=[5, 4], activation=activation))
        weighted = make(ModelConfig(hidden=[5, 4], activation=activation, norm="weight"))
        for b_plain, b_weighted in zip(plain.blocks, weighted.blocks):
            v = weighted.param(f"{b_weighted.name}.v")
            np.testing.assert_array_equal(v, plain.param(f"{b_plain.name}.W"))  # the same initial draws
            np.testing.assert_allclose(weighted.param(f"{b_weighted.name}.g"), np.linalg.norm(v, axis=0), rtol=1e-6)
        for train in (True, False):
            np.testing.assert_array_equal(weighted.forward(batch(), train), plain.forward(batch(), train))
        # and the first gradient is the plain one projected off v (g / ||v|| = 1 here)
        out = plain.forward(batch(dtype=np.float32), True)
        upstream = np.random.default_rng(4).normal(size=out.shape).astype(np.float32)
        plain.backward(upstream)
        weighted.forward(batch(dtype=np.float32), True)
        weighted.backward(upstream)
        for block in weighted.blocks:
            dW, v = plain.grads[block.weight_slice].reshape(block.weight.shape), block.dense.v
            n = np.linalg.norm(v, axis=0)
            np.testing.assert_allclose(block.dense.gv, dW - v * (dW * v).sum(0) / n**2, rtol=1e-4, atol=1e-6)
            np.testing.assert_allclose(block.dense.gg, (dW * v).sum(0) / n, rtol=1e-4, atol=1e-6)


def test_a_trainer_with_weight_norm_starts_where_the_plain_one_does(fake_data):
    def trainer(norm: str) -> Trainer:
        cfg = load_config({"data": {"val_size": 100}, "model": {"hidden": [16, 8], "norm": norm}})
        return Trainer(cfg, load_dataset(cfg.data))

    plain, weighted = trainer("none"), trainer("weight")
    data = plain.data
    assert evaluate(weighted.model, data.x_val, data.y_val) == evaluate(plain.model, data.x_val, data.y_val)
    plain._train_epoch(0.001)
    weighted._train_epoch(0.001)  # then they part: Adam steps v and g, not W
    assert evaluate(weighted.model, data.x_val, data.y_val) != evaluate(plain.model, data.x_val, data.y_val)


# --- decay, penalties, max-norm and clipping act on v and g as documented ---------------------
def one_step(**sections) -> Trainer:
    """A trainer with weight norm after one plain-SGD step (32 examples, one batch)."""
    data = {"data": {"val_size": 100, "train_limit": 32}, "model": {"hidden": [16], "norm": "weight"},
            "optimizer": {"name": "sgd", "lr": 0.5}, "train": {"batch_size": 32}}
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    cfg = load_config(data)
    trainer = Trainer(cfg, load_dataset(cfg.data))
    trainer._train_epoch(cfg.optimizer.lr)
    return trainer


def test_l2_penalty_and_adamw_decay_act_on_v_and_never_on_g(fake_data):
    free, penalized = one_step(), one_step(regularization={"l2": 0.1})
    start = Trainer(free.cfg, free.data).model.params  # the shared initial values
    nw = free.model.n_weights
    # the same data gradient on both (same start), plus lr * l2 * v on v alone
    np.testing.assert_allclose(penalized.model.params[:nw], free.model.params[:nw] - 0.5 * 0.1 * start[:nw],
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(penalized.model.params[nw:], free.model.params[nw:])  # g and b

    def adamw(decay: float) -> Trainer:
        return one_step(optimizer={"name": "adamw", "lr": 0.01, "weight_decay": decay})

    plain, decayed = adamw(0.0), adamw(0.5)
    np.testing.assert_allclose(decayed.model.params[:nw], plain.model.params[:nw] - 0.01 * 0.5 * start[:nw],
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(decayed.model.params[nw:], plain.model.params[nw:])


def test_max_norm_caps_the_effective_weights_through_g_and_leaves_v_alone(fake_data):
    free = one_step()
    g_free = np.concatenate([b.dense.g for b in free.model.blocks])
    c = float(np.median(np.abs(g_free)))  # half the units above the cap
    capped = one_step(regularization={"max_norm": c})
    nw = free.model.n_weights
    np.testing.assert_array_equal(capped.model.params[:nw], free.model.params[:nw])  # v untouched
    g_capped = np.concatenate([b.dense.g for b in capped.model.blocks])
    np.testing.assert_allclose(g_capped, np.sign(g_free) * np.minimum(np.abs(g_free), c), rtol=1e-6)
    assert np.sum(np.abs(g_free) > c * (1 + 1e-6)) > 0
    capped.model.forward(capped.data.x_val[:4], False)
    for block in capped.model.blocks:  # the effective weights' columns, the ones max-norm means
        assert np.all(np.linalg.norm(block.dense.W, axis=0) <= c * (1 + 1e-5))


def test_clipping_applies_to_the_gradients_of_v_and_g_alike(fake_data):
    trainer = one_step(clip={"value": 1e-4})
    fresh = Trainer(trainer.cfg, trainer.data).model.params
    step = np.abs(trainer.model.params - fresh)
    assert np.all(step <= 0.5 * 1e-4 * (1 + 1e-3))  # lr times the clamp, v and g alike
    nw = trainer.model.n_weights
    assert step[:nw].max() > 0 and step[nw:].max() > 0


def test_a_column_of_v_at_zero_is_reported_as_divergence_without_warnings(fake_data):
    cfg = load_config({"data": {"val_size": 100, "train_limit": 64}, "model": {"hidden": [16], "norm": "weight"}})
    trainer = Trainer(cfg, load_dataset(cfg.data))
    trainer.model.param("hidden1.v")[:, 3] = 0.0  # no direction: w = g * 0 / 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ended = trainer._train_epoch(0.001)
    assert isinstance(ended, Divergence) and (ended.batch, ended.layer) == (1, "hidden1")


# --- what a run keeps: diagnostics, memory, checkpoints -------------------------------------
def test_layer_stats_describe_the_trained_v():
    model = make(ModelConfig(hidden=[5, 4], norm="weight"))
    model.param("hidden2.g")[...] *= 3.0  # effective norm and v's norm now differ
    stats = layer_stats(model, batch(), [1.0, 2.0, 3.0], None)
    assert stats[1]["weight_norm"] == pytest.approx(np.linalg.norm(model.param("hidden2.v")), rel=1e-5)
    assert stats[1]["weight_norm"] != pytest.approx(np.linalg.norm(model.param("hidden2.g")), rel=1e-2)


def test_memory_estimate_counts_g_and_the_effective_weights():
    cfg = load_config({"model": {"hidden": [100, 50]}, "train": {"batch_size": 64}})
    weighted = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, norm="weight"))
    plain, new = memory.estimate(cfg).parts, memory.estimate(weighted).parts
    units, n_state = 100 + 50 + NUM_CLASSES, 2  # a g per unit of every layer; adam: m and v
    n_weights = 784 * 100 + 100 * 50 + 50 * NUM_CLASSES
    assert new["optimizer"] - plain["optimizer"] == (n_state + 1) * units * 4
    assert new["checkpoint"] - plain["checkpoint"] == (n_state + 1) * units * 4
    assert new["model"] - plain["model"] == (4 * units + 2 * n_weights) * 4  # W and dW held per layer
    assert new["activations"] == plain["activations"]
    model = MLP(784, NUM_CLASSES, weighted.model, init_rng=np.random.default_rng(0),
                dropout_rng=np.random.default_rng(0))
    assert memory._param_counts(weighted)[:2] == (model.params.size, model.n_weights)


CFG = {"data": {"val_size": 100}, "model": {"hidden": [16, 8], "norm": "weight", "dropout": 0.3},
       "train": {"epochs": 4}, "early_stopping": {"enabled": False}}


def metrics_without_times(run_dir: Path) -> list[dict]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for record in records:
        record.pop("epoch_s")
    return records


def test_resume_after_ctrl_c_is_bit_identical_to_an_uninterrupted_run(fake_data, monkeypatch):
    whole = train(CFG, progress="quiet")
    monkeypatch.setattr("trickrun.progress.make_reporter", lambda mode: InterruptAt(3, 2))
    cut = train(CFG, progress="quiet")
    assert cut.summary["status"] == "interrupted"
    with np.load(cut.run_dir / CHECKPOINT_FILE) as npz:
        assert npz["model"].size == Trainer(load_config(CFG), load_dataset(load_config(CFG).data)).model.params.size
    monkeypatch.setattr("trickrun.progress.make_reporter", lambda mode: NullReporter())
    resumed = resume(cut.run_dir, progress="quiet")
    assert metrics_without_times(resumed.run_dir) == metrics_without_times(whole.run_dir)
    assert resumed.summary["test"] == whole.summary["test"]
    with np.load(whole.run_dir / "model.npz") as a, np.load(resumed.run_dir / "model.npz") as b:
        assert {"hidden1.v", "hidden1.g", "output.v", "output.g"} <= set(a.files)
        assert "hidden1.W" not in a.files
        for name in a.files:
            np.testing.assert_array_equal(a[name], b[name])


# --- config, sweep and compare --------------------------------------------------------------
def test_model_norm_weight_is_a_config_choice_and_typos_name_it():
    assert load_config({"model": {"norm": "weight"}}).model.norm == "weight"
    assert NORMS.names() == ("none", "batch", "layer", "weight")
    with pytest.raises(ConfigError, match="model.norm: unknown choice 'weigth' \\(did you mean 'weight'\\?\\); "
                                          "choose one of: none, batch, layer, weight") as err:
        load_config({}, ["model.norm=weigth"])
    assert err.value.exit_code == 2
    shown = runner.invoke(app, ["validate", str(Path(__file__).parents[1] / "configs" / "weightnorm.yaml")])
    assert shown.exit_code == 0 and "norm: weight" in shown.stdout


SWEEP = ("data: {val_size: 100}\nmodel: {hidden: [8]}\ntrain: {epochs: 2, batch_size: 64}\n"
         "early_stopping: {enabled: false}\n")


def test_a_sweep_over_every_norm_trains_and_compare_shows_the_norm(fake_data, tmp_path, children):
    config = tmp_path / "norms.yaml"
    config.write_text(SWEEP)
    runs = tmp_path / "runs"
    proc = start("sweep", str(config), "--grid", "model.norm=none,batch,layer,weight", "--jobs", "2",
                 "--runs-dir", str(runs))
    children.append(proc)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    cells = json.loads((runs / "sweeps" / "norms" / "sweep.json").read_text())["cells"]
    assert [c["overrides"]["model.norm"] for c in cells] == ["none", "batch", "layer", "weight"]
    assert all(c["status"] == "completed" for c in cells)
    weighted = runs / Path(cells[3]["run_dir"]).name
    assert yaml.safe_load((weighted / "config.yaml").read_text())["model"]["norm"] == "weight"
    with np.load(weighted / "model.npz") as npz:
        assert {"hidden1.v", "hidden1.g", "output.v", "output.g"} <= set(npz.files)
    assert "model.norm=weight" in out  # the leaderboard

    shown = runner.invoke(app, ["compare", "--sweep", "norms", "--format", "json", "--runs-dir", str(runs)])
    assert shown.exit_code == 0, shown.output
    records = json.loads(shown.stdout)
    assert [r["model.norm"] for r in records] == ["none", "batch", "layer", "weight"]  # the config diff
    table = runner.invoke(app, ["compare", "--sweep", "norms", "--format", "markdown", "--runs-dir", str(runs)])
    assert table.exit_code == 0 and "| model.norm | none" in table.stdout and "| weight |" in table.stdout
    assert "### Diagnostics" in table.stdout and table.stdout.count("norms_norm-weight") >= 3
