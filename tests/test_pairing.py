"""What the lesson's paired comparisons rest on: two arms run with the same seed share their
initial weights (where the shapes match), their batch order and their dropout stream, so the
per-seed difference of two arms is the effect of what the arms change and not of a luckier
draw. Each test would fail if one arm drew a stream differently (e.g. if adding dropout or
batch norm took numbers from the init stream)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from trickrun.config import load_config
from trickrun.data.load import load_dataset
from trickrun.nn.model import MLP
from trickrun.train import Rngs, Trainer

BASE = {"data": {"val_size": 100}, "model": {"hidden": [16, 16]}, "train": {"epochs": 2, "batch_size": 100}}
# Arms as the lesson's claims vary them; every one keeps the hidden widths, so the weights match in shape.
ARMS = {
    "plain": [],
    "dropout": ["model.dropout=0.5"],
    "input dropout": ["model.input_dropout=0.2"],
    "batch norm": ["model.norm=batch"],
    "residual": ["model.residual=true"],
    "sgd": ["optimizer.name=sgd", "optimizer.lr=0.1"],
    "clipping": ["clip.norm=1.0"],
    "L2": ["regularization.l2=0.001"],
    "schedule": ["schedule.name=cosine"],
}


def _trainer(overrides: list[str], seed: int) -> Trainer:
    cfg = load_config(BASE, overrides, name="pairing", seed=seed)
    return Trainer(cfg, load_dataset(cfg.data))


class RecordingShuffle:
    """The shuffle stream, recording every permutation the trainer draws from it."""

    def __init__(self, rng: np.random.Generator):
        self.rng, self.orders = rng, []

    def permutation(self, n):
        order = self.rng.permutation(n)
        self.orders.append(order.copy())
        return order


def test_arms_of_one_seed_start_from_the_same_weights(fake_data):
    weights = {arm: _trainer(o, seed=7).model for arm, o in ARMS.items()}
    plain = weights["plain"]
    for arm, model in weights.items():
        assert model.n_weights == plain.n_weights, arm
        np.testing.assert_array_equal(model.params[:model.n_weights], plain.params[:plain.n_weights], err_msg=arm)
    other_seed = _trainer([], seed=8).model
    assert not np.array_equal(other_seed.params[:other_seed.n_weights], plain.params[:plain.n_weights])


def test_arms_of_one_seed_see_the_same_batches_in_the_same_order(fake_data):
    orders = {}
    for arm, overrides in ARMS.items():
        trainer = _trainer(overrides, seed=7)
        trainer.rngs.shuffle = RecordingShuffle(trainer.rngs.shuffle)
        for _ in range(2):  # two epochs: training must not draw from the shuffle stream either
            trainer._train_epoch(trainer.cfg.optimizer.lr)
        orders[arm] = trainer.rngs.shuffle.orders
    for arm, drawn in orders.items():
        assert len(drawn) == 2, arm
        for epoch, order in enumerate(drawn):
            np.testing.assert_array_equal(order, orders["plain"][epoch], err_msg=f"{arm}, epoch {epoch + 1}")
    assert not np.array_equal(orders["plain"][0], orders["plain"][1])  # reshuffled every epoch


def test_building_a_model_draws_nothing_from_the_shuffle_or_dropout_streams(fake_data):
    fresh = Rngs.from_seed(7)
    for arm, overrides in ARMS.items():
        rngs = _trainer(overrides, seed=7).rngs
        for stream in ("shuffle", "dropout"):
            assert getattr(rngs, stream).bit_generator.state == getattr(fresh, stream).bit_generator.state, (arm, stream)


@pytest.mark.parametrize("seed", [0, 7])
def test_dropout_arms_of_one_seed_draw_the_same_masks(seed):
    """Rates 0.1 and 0.5 compare the same uniform words with two thresholds: every unit the 0.1
    arm drops, the 0.5 arm drops too, batch after batch, on each layer."""
    cfg = load_config(BASE, [], seed=seed).model
    x = np.random.default_rng(99).random((32, 20), dtype=np.float32)
    models = {}
    for rate in (0.1, 0.5):
        rngs = Rngs.from_seed(seed)
        models[rate] = MLP(20, 10, dataclasses.replace(cfg, dropout=rate), init_rng=rngs.init,
                           dropout_rng=rngs.dropout)
    for _ in range(3):
        masks = {}
        for rate, model in models.items():
            model.forward(x, train=True)
            masks[rate] = [b.dropout.mask.copy() for b in model.blocks if getattr(b, "dropout", None) is not None]
        assert len(masks[0.1]) == 2
        for light, heavy in zip(masks[0.1], masks[0.5]):
            assert np.all((light == 0) <= (heavy == 0))
            assert 0.05 < (light == 0).mean() < 0.15 and 0.4 < (heavy == 0).mean() < 0.6
