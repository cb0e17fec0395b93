"""The lesson's claims as data: what each asserts, the sweep files that test it, how its runs
fall into arms, and the comparisons declared before any run (metric, expected direction and the smallest effect
of interest, each with its reason).

Claim numbers are the report's, not the lesson's section numbers. A claim's runs come from
its sweep files under configs/lesson/; `quick` lists the overrides `--quick` puts on top of
them (a smoke test of the whole report, too small for its verdicts to mean much).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..rundir.reader import Run
from . import measures
from .verdicts import Comparison, SeedValues, seed_order

Samples = dict[str, dict[str, SeedValues]]  # arm -> metric -> a value per seed
QUICK = ("data.train_limit=2000", "data.val_size=2000", "train.epochs=3")
QUICK_SEEDS = 2

# Seeds per arm in the full report, declared before its runs from the power each comparison
# had in the pilots (seeds 0-31, which the report does not use); at least 8 everywhere.
SEEDS_DECIDED = 8  # claims 1, 2, 3, 6: every comparison decided by a wide margin in every pilot
# Claims 7, 9: decided by the sign-flip test, whose smallest p is 2/2^n: 0.0078 with 8 seeds,
# too large to survive Holm over the report, 0.00049 with 12.
SEEDS_SIGN_FLIP = 12
# Claims 5, 8: dropout 0.5's accuracy (+0.07 points, paired sd 0.13) and clip 10's score, whose
# per-seed differences are all or nothing (paired sd 13 points), stayed inconclusive with 12.
SEEDS_SMALL_EFFECTS = 24
# Claim 4: batch norm's accuracy gain (+0.14 points, 0.7 of the SESOI, paired sd 0.21) and weight
# norm's epochs to 94% (paired sd 1.2 epochs) stayed inconclusive with 12; its cells are the cheapest.
SEEDS_NEAR_SESOI = 32


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
    keys: tuple[str, ...] = ()  # the config keys of the tricks it tests (`trickrun explain KEY` shows it)
    # derived="lr_average": per arm, the learning rates its `score` averages over
    rates: Mapping[str, tuple[float, ...]] | None = None
    seeds: int = SEEDS_DECIDED  # per arm in the full report

    @property
    def figure_file(self) -> str:
        return f"claim{self.number}-{self.slug}.png"


def in_seed_order(runs: list[Run]) -> list[Run]:
    return sorted(runs, key=lambda r: (seed_order(r.seed), r.dirname))


def put(samples: Samples, arm: str, metric: str, run: Run, value: float, repeated: list[str] | None) -> None:
    """samples[arm][metric][run's seed] = value, unless that seed already has one: the run is then
    left out (named in `repeated`), since a comparison pairs one value per seed."""
    values = samples.setdefault(arm, {}).setdefault(metric, SeedValues())
    if run.seed in values.seeds:
        if repeated is not None and run.dirname not in repeated:
            repeated.append(run.dirname)
        return
    values.add(run.seed, value)


def by_arm(claim: Claim, runs: list[Run], threshold: float | None, repeated: list[str] | None = None) -> Samples:
    """Each run's measures under its arm, by seed; a second run of an arm's seed is left out
    (and named in `repeated`)."""
    samples: Samples = {}
    for run in in_seed_order(runs):
        arm = claim.arm(run.config)
        samples.setdefault(arm, {})
        for metric in (*claim.metrics, "diverged"):
            value = measures.MEASURES[metric](run, threshold)
            if value is not None:
                put(samples, arm, metric, run, value, repeated)
    return samples


def _seq(*pairs: tuple[str, str, bool], metric: str = "test_acc", sesoi: float) -> tuple[Comparison, ...]:
    return tuple(Comparison(metric, arm, base, higher, sesoi) for arm, base, higher in pairs)


# The smallest effects of interest, in the metric's units, and why each is that size.
SESOI_ACC = 0.002  # 0.2 points of test accuracy: 20 of the 10,000 test digits, about one setup's seed spread
SESOI_INIT = 0.01  # 1 point: the lesson calls N(0, 1) "a bad idea", a failure far larger than tuning noise
SESOI_RESIDUAL = 0.005  # half a point: skips are sold as what makes a deep stack trainable, not as a polish
SESOI_EPOCHS = 1.0  # one pass over the data: a smaller saving is not the "faster training" a trick is sold on
SESOI_OVERFIT = 0.005  # half a point on 1,000 training examples, where accuracy moves by more than on 10,000
SESOI_ENSEMBLE = 0.002  # 0.2 points: what averaging two models must add over its members to be worth twice the cost
SESOI_SCORE = 0.005  # half a point of the score, an average over three rates that is meant to judge robustness
SESOI_SPREAD = 0.3  # 0.3 decades, a factor of 2 between layers' gradient norms: a halving is visible in training
SESOI_CLIPPING = 0.01  # 1 point: clipping is meant to prevent a blow-up (chance, 0.1), not to polish a run


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
NORMS = ("batch", "layer", "weight")  # claim 4: batch norm, the lesson's claim, and the other two it names
CLIPS = ("no clipping", "clip 1", "clip 10")
CLIP_RATES = (0.5, 1.0, 2.0)  # claim 8: plain SGD from where it still trains to where it blows up
SCHEDULES = ("constant", "exponential", "cosine")
DECAY_RATES = (0.1, 0.2, 0.4)  # claim 9: momentum from a usual rate to one that plateaus noisily
ENSEMBLE_ARM = "ensemble"  # claim 6's leave-one-out ensembles of the `no help` runs
MEMBERS_ARM = "its members"  # per ensemble, its members' mean test accuracy

THRESHOLD_NOTE = ("The validation-accuracy threshold was fixed before these runs, from a one-seed pilot of the "
                  "two extreme arms, as a level both reach within the epochs (0.85 with `--quick`).")

CLAIMS: tuple[Claim, ...] = (
    Claim(
        1, "scaling", "Input scaling",
        "Inputs should be scaled to a small range such as [0, 1] or [-1, 1]: floating point loses "
        "small numbers added to large ones, and activations bend only near zero. The lesson calls "
        "it good practice rather than a requirement.",
        ("claim1-scaling.yaml",), by_key("data.scale"), ("none", "unit", "symmetric", "standard"),
        _seq(("unit", "none", True), ("symmetric", "none", True), sesoi=SESOI_ACC),
        metrics=("test_acc", "val_acc"), keys=("data.scale",),
        notes=("`none` feeds the raw pixel values 0..255; `standard` (minus one mean, divided by one standard "
               "deviation, both over all training pixels) is in the table for reference only, with no comparison "
               "declared.",),
    ),
    Claim(
        2, "init", "Initialization keeps the signal in range",
        "Weights drawn from N(0, 1) are a bad idea: a unit's output spread grows with its number of "
        "inputs, and layer after layer the signal leaves the useful range. Initializations scaled by "
        "the fan-in (N(0, 1/n), LeCun) or by fan-in and fan-out (Glorot/Xavier) keep the spread of "
        "values the same from layer to layer, forwards and backwards.",
        ("claim2-init.yaml",), _init_arm,
        tuple(f"{a} {i}" for a in INIT_ACTIVATIONS for i in INITS),
        _seq(*((f"{a} {good}", f"{a} normal", True) for a, good in INIT_ACTIVATIONS.items()), sesoi=SESOI_INIT)
        + _seq(*((f"{a} {good}", f"{a} normal", False) for a, good in INIT_ACTIVATIONS.items() if a != "relu"),
               metric="grad_spread", sesoi=SESOI_SPREAD),
        metrics=("test_acc", "grad_spread"), figure="layers", keys=("model.init", "model.activation"),
        notes=("For each activation the comparison pits its variance-preserving initializer (Glorot for "
               "tanh and sigmoid, He for ReLU) against N(0, 1); the other initializers are shown for "
               "reference. Standard deviations as the lesson writes them (trickrun/nn/initializers.py): "
               "`gaussian` 1/n_in (which shrinks the signal), `lecun` 1/sqrt(n_in), `glorot` "
               "sqrt(2/(n_in + n_out)), `he` sqrt(2/n_in).",
               "Glorot's derivation assumes an activation with slope 1 around 0, as tanh has; the "
               "sigmoid's slope there is 1/4, so with Glorot weights each sigmoid layer shrinks the "
               "backward signal about fourfold: the gradient-norm panel shows what that does over 8 layers.",
               "The claim is also tested as the lesson states it, on the signal itself: the *gradient "
               "spread* is log10 of the largest over the smallest hidden layer's weight-gradient norm "
               "after epoch 1 (the per-layer statistics trickrun records). A weight gradient's norm "
               "also depends on the layer's inputs, but a signal that vanishes or explodes backwards "
               "spreads it over decades: lower means a signal kept in range. ReLU with N(0, 1) "
               "diverges in its first epoch, leaving no spread to measure, so only tanh and sigmoid "
               "are compared on it.",),
    ),
    Claim(
        3, "residual", "Residual connections train deep networks",
        "Architectures such as ResNet adjust to the complexity a task needs; the obstacle they "
        "remove is the one the lesson starts from: in a deep stack the gradient shrinks (or grows) "
        "layer by layer. Identity skips give it a path that bypasses the layers.",
        ("claim3-residual.yaml",), by_key("model.residual", lambda v: "residual" if v else "plain"),
        ("plain", "residual"), _seq(("residual", "plain", True), sesoi=SESOI_RESIDUAL),
        metrics=("test_acc", "val_acc"), figure="residual", keys=("model.residual",),
        notes=("`model.residual: true` adds the block's input to its output, x + f(x), around every "
               "hidden block after the first (all widths equal).",),
    ),
    Claim(
        4, "batchnorm", "Batch normalization",
        "Even well-initialized weights drift during training and push signals out of range; "
        "normalizing each unit over the mini-batch (after the weights, before the activation) "
        "brings them back, and usually gives better final accuracy and faster training.",
        ("claim4-batchnorm.yaml",), by_key("model.norm"), ("none", *NORMS),
        _seq(*((norm, "none", True) for norm in NORMS), sesoi=SESOI_ACC)
        + _seq(*((norm, "none", False) for norm in NORMS), metric="epochs_to", sesoi=SESOI_EPOCHS),
        metrics=("test_acc", "epochs_to"), threshold=0.94, quick_threshold=0.85, figure="threshold",
        keys=("model.norm",), seeds=SEEDS_NEAR_SESOI,
        notes=(THRESHOLD_NOTE,
               "The claim is batch norm's; layer norm (each example normalized over its units) and weight "
               "norm (each unit's weights w = g v/||v||), the other two normalizations the lesson names, "
               "are judged beside it by the same comparisons."),
    ),
    Claim(
        5, "dropout", "Dropout",
        "Zeroing a random 10% to 50% of a layer's inputs at each training step speeds training up "
        "and reaches a better accuracy in fewer epochs, on an MNIST digit classifier; the reasons "
        "offered are a random shock out of local minima and an implicit average of many models.",
        ("claim5-dropout.yaml",), by_key("model.dropout", lambda v: f"{v:g}"), ("0", *DROPOUTS),
        _seq(*((d, "0", True) for d in DROPOUTS), sesoi=SESOI_ACC)
        + _seq(*((d, "0", False) for d in DROPOUTS), metric="epochs_to", sesoi=SESOI_EPOCHS),
        metrics=("test_acc", "epochs_to", "gap"), threshold=0.95, quick_threshold=0.85, figure="threshold",
        keys=("model.dropout",), seeds=SEEDS_SMALL_EFFECTS,
        notes=(THRESHOLD_NOTE,
               "The learning rate is annealed to 0 over the epochs (cosine) so that the last weights, which "
               "are scored, have settled: at a constant rate the last epoch's accuracy jitters by more than "
               "the effect of interest (the sweep file's comment gives the pilot's figures)."),
    ),
    Claim(
        6, "overfitting", "Fighting overfitting",
        "With many parameters and few examples a network overfits. Early stopping (stop when the "
        "validation error turns up), an explicit penalty on large weights, averaging several "
        "models' outputs, and dropout each counter it.",
        ("claim6-overfit.yaml", "claim6-early-stopping.yaml", "claim6-l2.yaml"), _overfit_arm,
        ("no help", "early stopping", "L2", "dropout", ENSEMBLE_ARM, MEMBERS_ARM),
        _seq(*((arm, "no help", True) for arm in ("early stopping", "L2", "dropout")), sesoi=SESOI_OVERFIT)
        + _seq((ENSEMBLE_ARM, MEMBERS_ARM, True), sesoi=SESOI_ENSEMBLE),
        metrics=("test_acc", "val_acc", "gap"), figure="overfitting", derived="ensembles",
        keys=("early_stopping.enabled", "regularization.l2", "model.dropout"),
        quick=("data.val_size=2000", "train.epochs=5", "model.hidden=[256, 256]"),
        notes=("The ensemble arm averages the softmax outputs of the `no help` runs (soft voting): with "
               "n seeds it is the n leave-one-out ensembles of n - 1 runs, so with 3 seeds the 3 pairs. "
               "Each ensemble is compared with the mean test accuracy of its own members (the arm "
               f"`{MEMBERS_ARM}`), paired by the seed it leaves out. The ensembles share members, so the "
               "pairs are not independent: that test is optimistic. With fewer than 3 seeds both arms "
               "are left out.",
               "The early-stopping arm stops after 5 epochs without a higher validation accuracy and "
               "restores the best weights; every other arm trains all its epochs and is scored on its last "
               "weights.",),
    ),
    Claim(
        7, "optimizers", "Optimizers: if in doubt, choose Adam",
        "Plain mini-batch SGD can be improved on: momentum keeps part of the previous steps; a step "
        "that uses only the gradient's direction, w <- w - lr g/||g||, and RMSProp and Adam build "
        "on the same idea. Adam is the lesson's advice when in doubt.",
        ("claim7-optimizers.yaml",), by_key("optimizer.name"), OPTIMIZERS,
        _seq(*(("adam", name, True) for name in OPTIMIZERS if name != "adam"), metric="score", sesoi=SESOI_SCORE),
        metrics=("test_acc",), figure="over_rates", table="over_rates", derived="lr_average",
        keys=("optimizer.name",), rates=LR_RANGES, seeds=SEEDS_SIGN_FLIP,
        notes=("Every optimizer runs at the five learning rates 1e-4 to 1; its score for a seed is its "
               "mean test accuracy over the three rates a tenfold apart around its usual one (in bold in "
               "the table), so an optimizer is judged on how forgiving it is as well as on its best run. A seed "
               "scores only when it has all three runs, and scores pair by seed.",
               "`normalized` is the step the lesson gives under the name Adagrad, w <- w - lr g/||g|| "
               "with the norm over all parameters; `adagrad` is Duchi et al.'s rule, "
               "w <- w - lr g/(sqrt(G) + eps) with G the running sum of squared gradients.",),
    ),
    Claim(
        8, "clipping", "Gradient clipping",
        "When the gradient's norm exceeds a threshold theta (typically 1 or 10), shrink it; a large "
        "learning rate then no longer throws the weights far away.",
        ("claim8-clipping.yaml",), by_key("clip.norm", _norm_arm), CLIPS,
        _seq(*((arm, "no clipping", True) for arm in CLIPS[1:]), metric="score", sesoi=SESOI_CLIPPING),
        figure="over_rates", table="over_rates", derived="lr_average", keys=("clip.norm",),
        rates={arm: CLIP_RATES for arm in CLIPS}, seeds=SEEDS_SMALL_EFFECTS,
        notes=("Plain SGD at the high learning rates 0.5, 1 and 2, where a run without clipping starts to "
               "blow up; an arm's score for a seed is its mean test accuracy over the three rates (a "
               "diverged run counts as chance, 0.1), so clipping is judged on the range of rates it "
               "is meant to make safe, not on one rate where both arms may fail.",
               "The lesson divides an over-long gradient by its norm (to norm 1); trickrun rescales it "
               "to norm theta, g <- g theta/||g||. The two agree at theta = 1.",),
    ),
    Claim(
        9, "lr-decay", "Learning-rate decay",
        "A large learning rate learns fast early on, a small one fine-tunes later: lower it during "
        "training, e.g. multiply it by 0.98 after every epoch, or follow a more elaborate schedule.",
        ("claim9-lr-decay.yaml",), by_key("schedule.name"), SCHEDULES,
        _seq(*((arm, "constant", True) for arm in SCHEDULES[1:]), metric="score", sesoi=SESOI_ACC),
        figure="over_rates", table="over_rates", derived="lr_average", keys=("schedule.name",),
        rates={arm: DECAY_RATES for arm in SCHEDULES}, seeds=SEEDS_SIGN_FLIP,
        notes=("SGD with momentum 0.9 at the rates 0.1, 0.2 and 0.4: from a usual rate to one where a "
               "constant rate ends its 20 epochs on a noisy plateau, the case decay is meant for; an "
               "arm's score for a seed is its mean test accuracy over the three rates.",
               "`exponential` multiplies the learning rate by 0.98 after each epoch (the lesson's "
               "example); `cosine` follows half a cosine from the initial rate to 0 over the epochs.",),
    ),
)
CLAIM_NUMBERS = tuple(c.number for c in CLAIMS)


def lr_average(claim: Claim, runs: list[Run], threshold: float | None, repeated: list[str] | None = None) -> Samples:
    """Claims judged over a range of learning rates (7, 8, 9): an arm `<arm> lr=<lr>` per arm
    and rate, and per arm its `score` by seed: the seed's mean test accuracy over the arm's
    `claim.rates`, for the seeds that have a run at each of them (a score over fewer rates
    would not compare)."""
    samples: Samples = {}
    for run in in_seed_order(runs):
        name, lr = claim.arm(run.config), _get(run.config, "optimizer.lr")
        put(samples, f"{name} lr={lr:g}", "test_acc", run, measures.test_acc(run), repeated)
        put(samples, f"{name} lr={lr:g}", "diverged", run, float(measures.diverged(run)), repeated)
    for name, rates in (claim.rates or {}).items():
        cells = [samples.get(f"{name} lr={lr:g}", {}).get("test_acc", SeedValues()).by_seed for lr in rates]
        seeds = set(cells[0]).intersection(*cells[1:])
        if seeds:
            score = {seed: sum(c[seed] for c in cells) / len(cells) for seed in seeds}
            samples.setdefault(name, {})["score"] = SeedValues(score)
    return samples
