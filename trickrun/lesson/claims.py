"""The lesson's claims as data: what each asserts, the sweep files that test it, how its runs
fall into arms, and the comparisons declared before any run (metric and expected direction).

Claim numbers are the report's, not the lesson's section numbers. A claim's runs come from
its sweep files under configs/lesson/; `quick` lists the overrides `--quick` puts on top of
them (a smoke test of the whole report, too small for its verdicts to mean much).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..rundir.reader import Run
from . import measures
from .verdicts import Comparison

Samples = dict[str, dict[str, list[float]]]  # arm -> metric -> one value per run (seed order)
QUICK = ("data.train_limit=2000", "data.val_size=2000", "train.epochs=3")
QUICK_SEEDS = 2
DEFAULT_SEEDS = 3


def _get(config: Mapping[str, Any], dotted: str) -> Any:
    node: Any = config
    for key in dotted.split("."):
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


def by_key(dotted: str, fmt: Callable[[Any], str] = str) -> Callable[[Mapping[str, Any]], str]:
    """An arm function: the run's value of one config key."""
    return lambda config: fmt(_get(config, dotted))


def _norm_arm(value: Any) -> str:
    return "no clipping" if value is None else f"clip {value:g}"


def _overfit_arm(config: Mapping[str, Any]) -> str:
    if _get(config, "early_stopping.enabled"):
        return "early stopping"
    if _get(config, "regularization.l2"):
        return "L2"
    if _get(config, "model.dropout"):
        return "dropout"
    return "no help"


def _init_arm(config: Mapping[str, Any]) -> str:
    return f"{_get(config, 'model.activation')} {_get(config, 'model.init')}"


@dataclass(frozen=True)
class Claim:
    number: int
    slug: str  # names the figure: claim<number>-<slug>.png
    title: str
    lesson: str  # what the lesson asserts, in the report's words
    sweeps: tuple[str, ...]  # sweep files under configs/lesson/
    arm: Callable[[Mapping[str, Any]], str]
    arms: tuple[str, ...]  # table order
    comparisons: tuple[Comparison, ...]
    metrics: tuple[str, ...] = ("test_acc",)  # table columns
    threshold: float | None = None  # val_acc of epochs_to
    quick_threshold: float | None = None
    figure: str = "curves"  # a key of figures.FIGURES
    table: str = "arms"  # a key of report.TABLES
    notes: tuple[str, ...] = ()
    quick: tuple[str, ...] = QUICK
    derived: str | None = None  # arms computed from runs: a key of samples.DERIVED

    @property
    def figure_file(self) -> str:
        return f"claim{self.number}-{self.slug}.png"


def by_arm(claim: Claim, runs: list[Run], threshold: float | None) -> Samples:
    """Each run's measures under its arm, runs in seed order."""
    samples: Samples = {}
    for run in sorted(runs, key=lambda r: (r.seed if isinstance(r.seed, int) else 0, r.dirname)):
        arm = samples.setdefault(claim.arm(run.config), {})
        for metric in (*claim.metrics, "diverged"):
            value = measures.MEASURES[metric](run, threshold)
            if value is not None:
                arm.setdefault(metric, []).append(value)
    return samples


def _seq(*pairs: tuple[str, str, bool], metric: str = "test_acc") -> tuple[Comparison, ...]:
    return tuple(Comparison(metric, arm, base, higher) for arm, base, higher in pairs)


OPTIMIZERS = ("sgd", "momentum", "adagrad", "rmsprop", "adam", "normalized")
# Claim 7's score uses, per optimizer, three rates a tenfold apart around its usual one.
LR_RANGES = {
    "sgd": (0.01, 0.1, 1.0),
    "momentum": (0.001, 0.01, 0.1),
    "adagrad": (0.001, 0.01, 0.1),
    "rmsprop": (0.0001, 0.001, 0.01),
    "adam": (0.0001, 0.001, 0.01),
    "normalized": (0.001, 0.01, 0.1),
}
INIT_ACTIVATIONS = {"tanh": "glorot", "sigmoid": "glorot", "relu": "he"}  # the variance-preserving init
INITS = ("normal", "gaussian", "lecun", "glorot", "he")
DROPOUTS = ("0.1", "0.3", "0.5")

THRESHOLD_NOTE = ("The validation-accuracy threshold was fixed before these runs, from a one-seed pilot of the "
                  "two extreme arms, as a level both reach within the epochs (0.85 with `--quick`).")

CLAIMS: tuple[Claim, ...] = (
    Claim(
        1, "scaling", "Input scaling",
        "Inputs should be scaled to a small range such as [0, 1] or [-1, 1]: floating point loses "
        "small numbers added to large ones, and activations bend only near zero. The lesson calls "
        "it good practice rather than a requirement.",
        ("claim1-scaling.yaml",), by_key("data.scale"), ("none", "unit", "symmetric", "standard"),
        _seq(("unit", "none", True), ("symmetric", "none", True)),
        metrics=("test_acc", "val_acc"),
        notes=("`none` feeds the raw pixel values 0..255; `standard` (z-score per pixel) is in the table "
               "for reference only, with no comparison declared.",),
    ),
    Claim(
        2, "init", "Initialization keeps the signal in range",
        "Weights drawn from N(0, 1) are a bad idea: a unit's output spread grows with its number of "
        "inputs, and layer after layer the signal leaves the useful range. Initializations scaled by "
        "the fan-in (N(0, 1/n), LeCun) or by fan-in and fan-out (Glorot/Xavier) keep the spread of "
        "values the same from layer to layer, forwards and backwards.",
        ("claim2-init.yaml",), _init_arm,
        tuple(f"{a} {i}" for a in INIT_ACTIVATIONS for i in INITS),
        tuple(Comparison("test_acc", f"{a} {good}", f"{a} normal", True) for a, good in INIT_ACTIVATIONS.items()),
        figure="layers",
        notes=("For each activation the comparison pits its variance-preserving initializer (Glorot for "
               "tanh and sigmoid, He for ReLU) against N(0, 1); the other initializers are shown for "
               "reference. Standard deviations as the lesson writes them (trickrun/nn/initializers.py): "
               "`gaussian` 1/n_in (which shrinks the signal), `lecun` 1/sqrt(n_in), `glorot` "
               "sqrt(2/(n_in + n_out)), `he` sqrt(2/n_in).",
               "Glorot's derivation assumes an activation with slope 1 around 0, as tanh has; the "
               "sigmoid's slope there is 1/4, so with Glorot weights each sigmoid layer shrinks the "
               "backward signal about fourfold: the gradient-norm panel shows what that does over 8 layers.",),
    ),
    Claim(
        3, "residual", "Residual connections train deep networks",
        "Architectures such as ResNet adjust to the complexity a task needs; the obstacle they "
        "remove is the one the lesson starts from: in a deep stack the gradient shrinks (or grows) "
        "layer by layer. Identity skips give it a path that bypasses the layers.",
        ("claim3-residual.yaml",), by_key("model.residual", lambda v: "residual" if v else "plain"),
        ("plain", "residual"), _seq(("residual", "plain", True)),
        metrics=("test_acc", "val_acc"), figure="residual",
        notes=("`model.residual: true` adds the block's input to its output, x + f(x), around every "
               "hidden block after the first (all widths equal).",),
    ),
    Claim(
        4, "batchnorm", "Batch normalization",
        "Even well-initialized weights drift during training and push signals out of range; "
        "normalizing each unit over the mini-batch (after the weights, before the activation) "
        "brings them back, and usually gives better final accuracy and faster training.",
        ("claim4-batchnorm.yaml",), by_key("model.norm"), ("none", "batch"),
        (Comparison("test_acc", "batch", "none", True), Comparison("epochs_to", "batch", "none", False)),
        metrics=("test_acc", "epochs_to"), threshold=0.94, quick_threshold=0.85, figure="threshold",
        notes=(THRESHOLD_NOTE,),
    ),
    Claim(
        5, "dropout", "Dropout",
        "Zeroing a random 10% to 50% of a layer's inputs at each training step speeds training up "
        "and reaches a better accuracy in fewer epochs, on an MNIST digit classifier; the reasons "
        "offered are a random shock out of local minima and an implicit average of many models.",
        ("claim5-dropout.yaml",), by_key("model.dropout", lambda v: f"{v:g}"), ("0", *DROPOUTS),
        _seq(*((d, "0", True) for d in DROPOUTS))
        + _seq(*((d, "0", False) for d in DROPOUTS), metric="epochs_to"),
        metrics=("test_acc", "epochs_to", "gap"), threshold=0.95, quick_threshold=0.85, figure="threshold",
        notes=(THRESHOLD_NOTE,),
    ),
    Claim(
        6, "overfitting", "Fighting overfitting",
        "With many parameters and few examples a network overfits. Early stopping (stop when the "
        "validation error turns up), an explicit penalty on large weights, averaging several "
        "models' outputs, and dropout each counter it.",
        ("claim6-overfit.yaml", "claim6-early-stopping.yaml", "claim6-l2.yaml"), _overfit_arm,
        ("no help", "early stopping", "L2", "dropout", "ensemble"),
        _seq(*((arm, "no help", True) for arm in ("early stopping", "L2", "dropout", "ensemble"))),
        metrics=("test_acc", "val_acc", "gap"), figure="overfitting", derived="ensembles",
        quick=("data.val_size=2000", "train.epochs=5", "model.hidden=[256, 256]"),
        notes=("The ensemble arm averages the softmax outputs of the `no help` runs (soft voting): with "
               "n seeds it is the n leave-one-out ensembles of n - 1 runs, so with 3 seeds the 3 pairs "
               "(n = 3). They share members, so they are not independent samples: its test is "
               "optimistic. With fewer than 3 seeds the arm is left out.",
               "The early-stopping arm stops after 5 epochs without a lower validation loss and restores "
               "the best weights; every other arm trains all its epochs and is scored on its last weights.",),
    ),
    Claim(
        7, "optimizers", "Optimizers: if in doubt, choose Adam",
        "Plain mini-batch SGD can be improved on: momentum keeps part of the previous steps; a step "
        "that uses only the gradient's direction, w <- w - lr g/||g||, and RMSProp and Adam build "
        "on the same idea. Adam is the lesson's advice when in doubt.",
        ("claim7-optimizers.yaml",), by_key("optimizer.name"), OPTIMIZERS,
        _seq(*(("adam", name, True) for name in OPTIMIZERS if name != "adam"), metric="score"),
        metrics=("test_acc",), figure="optimizers", table="optimizers", derived="lr_average",
        notes=("Every optimizer runs at the five learning rates 1e-4 to 1; its score for a seed is its "
               "mean test accuracy over the three rates a tenfold apart around its usual one (in bold in "
               "the table), so an optimizer is judged on how forgiving it is as well as on its best run.",
               "`normalized` is the step the lesson gives under the name Adagrad, w <- w - lr g/||g|| "
               "with the norm over all parameters; `adagrad` is Duchi et al.'s rule, "
               "w <- w - lr g/(sqrt(G) + eps) with G the running sum of squared gradients.",),
    ),
    Claim(
        8, "clipping", "Gradient clipping",
        "When the gradient's norm exceeds a threshold theta (typically 1 or 10), shrink it; a large "
        "learning rate then no longer throws the weights far away.",
        ("claim8-clipping.yaml",), by_key("clip.norm", _norm_arm), ("no clipping", "clip 1", "clip 10"),
        _seq(("clip 1", "no clipping", True), ("clip 10", "no clipping", True)),
        metrics=("test_acc", "val_acc"), figure="clipping",
        notes=("The lesson divides an over-long gradient by its norm (to norm 1); trickrun rescales it "
               "to norm theta, g <- g theta/||g||. The two agree at theta = 1.",),
    ),
    Claim(
        9, "lr-decay", "Learning-rate decay",
        "A large learning rate learns fast early on, a small one fine-tunes later: lower it during "
        "training, e.g. multiply it by 0.98 after every epoch, or follow a more elaborate schedule.",
        ("claim9-lr-decay.yaml",), by_key("schedule.name"), ("constant", "exponential", "cosine"),
        _seq(("exponential", "constant", True), ("cosine", "constant", True)),
        metrics=("test_acc", "val_acc"), figure="schedules",
        notes=("`exponential` multiplies the learning rate by 0.98 after each epoch (the lesson's "
               "example); `cosine` follows half a cosine from the initial rate to 0 over the epochs.",),
    ),
)
CLAIM_NUMBERS = tuple(c.number for c in CLAIMS)


def lr_average(claim: Claim, runs: list[Run], threshold: float | None) -> Samples:
    """Claim 7: an arm `<name> lr=<lr>` per optimizer and rate, and per optimizer its `score`,
    the mean test accuracy over its LR_RANGES rates, one value per seed."""
    samples: Samples = {}
    per_seed: dict[str, dict[Any, list[float]]] = {}
    for run in runs:
        name, lr = _get(run.config, "optimizer.name"), _get(run.config, "optimizer.lr")
        acc = measures.test_acc(run)
        cell = samples.setdefault(f"{name} lr={lr:g}", {})
        cell.setdefault("test_acc", []).append(acc)
        cell.setdefault("diverged", []).append(float(measures.diverged(run)))
        if any(math.isclose(lr, r) for r in LR_RANGES.get(name, ())):
            per_seed.setdefault(name, {}).setdefault(run.seed, []).append(acc)
    for name, seeds in per_seed.items():
        samples.setdefault(name, {})["score"] = [sum(v) / len(v) for _, v in sorted(seeds.items())]
    return samples

