"""How much memory a run of a config needs, estimated from the config alone, so that a model
too large for the machine is refused before any run directory exists instead of being
killed by the operating system minutes later.

The estimate adds up what a run holds at once (float32 throughout, P parameters):
  model       parameters and gradients (2P), a weight vector of margin (once the penalty's
              scratch, which its fused kernel no longer needs), the last-weights
              copy, the best-weights copy and the snapshot taken to fill it, and what
              the Dense layers keep per weight (weight norm: the effective weights and
              their gradient, nn/layers.Dense.FLOATS_PER_WEIGHT)
  optimizer   each state array (adam: m and v) plus one P of margin (the scratch the NumPy
              rules took before the fused kernels), P each
  checkpoint  the copies checkpoint.checkpoint_arrays hands to the writer: the weights and
              optimizer state
  activations the layers' reused outputs and gradients for every batch size the run meets:
              train.batch_size (and the last, partial batch), the evaluation chunk
              (nn/losses.EVAL_CHUNK) and its remainders, and the probe batch
  data        the scaled float32 train/validation/test arrays and labels, plus the raw and
              split uint8 images held while loading
  interpreter Python, NumPy and the CLI's libraries
It errs high where a buffer is transient, never low where one is held.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import Config, short
from .data.catalog import NUM_CLASSES, NUM_FEATURES, SIZE, TEST_IMAGES, TRAIN_IMAGES
from .errors import ConfigError
from .nn.layers import NORMS
from .nn.losses import EVAL_CHUNK
from .nn.optim import OPTIMIZERS
from .train import PROBE_SIZE

MEMINFO = "/proc/meminfo"
FLOAT = 4  # bytes of a float32
INTERPRETER = 80 * 2**20  # Python with NumPy, PyYAML, Typer and rich imported
N_ALL_TRAIN = (SIZE[TRAIN_IMAGES] - 16) // NUM_FEATURES  # images in the IDX training file
N_TEST = (SIZE[TEST_IMAGES] - 16) // NUM_FEATURES
# Floats per example and per unit of a hidden layer, (training, evaluation). Both keep the
# Dense and activation outputs, training the activation's gradient too; a norm declares its
# own (nn/layers.Norm.FLOATS_PER_UNIT); dropout, in training only, keeps its mask, output,
# gradient and random words.
BASE_FLOATS = (3, 2)
DROPOUT_FLOATS = 4


@dataclass(frozen=True)
class Estimate:
    """Bytes by part (see the module docstring); `total` is what is compared with the
    available memory."""

    parts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.parts.values())


def split_sizes(cfg: Config) -> tuple[int, int, int]:
    """Examples in the train, validation and test splits, as data.load makes them."""
    n_train = N_ALL_TRAIN - cfg.data.val_size
    if cfg.data.train_limit is not None:
        n_train = min(n_train, cfg.data.train_limit)
    return max(n_train, 1), cfg.data.val_size, N_TEST


def _param_counts(cfg: Config) -> tuple[int, int, int]:
    """(parameters, weights, buffers) of the MLP, as nn/model.MLP lays them out."""
    widths = [NUM_FEATURES, *cfg.model.hidden, NUM_CLASSES]
    weights = sum(a * b for a, b in zip(widths, widths[1:]))
    hidden = sum(cfg.model.hidden)
    norm = NORMS.get(cfg.model.norm)  # the norm declares its arrays, one value per unit each
    biases = NUM_CLASSES + (0 if norm.REPLACES_BIAS else hidden)
    # its Dense class, in every layer, may add parameters per unit (weight norm's g)
    unit_params = len(norm.DENSE.UNIT_PARAMS) * (hidden + NUM_CLASSES)
    return weights + biases + len(norm.PARAMS) * hidden + unit_params, weights, len(norm.BUFFERS) * hidden


def _per_example(cfg: Config, train: bool) -> int:
    """Bytes of layer outputs and scratch per example of one batch size."""
    m = cfg.model
    mode = 0 if train else 1
    per_unit = (BASE_FLOATS[mode] + NORMS.get(m.norm).FLOATS_PER_UNIT[mode]
                + (DROPOUT_FLOATS if train and m.dropout > 0 else 0))
    floats = sum(m.hidden) * per_unit + 4 * NUM_CLASSES  # logits, softmax scratch, gradient
    if train:
        # the batch's inputs, each block's input gradient (not the first) and ReLU masks
        floats += NUM_FEATURES + sum(m.hidden) + sum(m.hidden) // 4
        if m.input_dropout > 0:  # its mask, output and random words; no gradient
            floats += (DROPOUT_FLOATS - 1) * NUM_FEATURES
    return floats * FLOAT


def _batch_sizes(n: int, batch: int) -> set[int]:
    """The distinct sizes of the batches that cover n examples."""
    batch = min(batch, n)
    return {batch} | ({n % batch} if n % batch else set())


def _activations(cfg: Config, n_train: int, n_val: int, n_test: int) -> int:
    train_sizes = _batch_sizes(n_train, cfg.train.batch_size)
    eval_sizes = _batch_sizes(n_val, EVAL_CHUNK) | _batch_sizes(n_test, EVAL_CHUNK) | {min(PROBE_SIZE, n_val)}
    return (sum(train_sizes) * _per_example(cfg, True)
            + sum(eval_sizes - train_sizes) * _per_example(cfg, False))


def estimate(cfg: Config) -> Estimate:
    """The memory a run of `cfg` needs, in bytes by part."""
    n_params, n_weights, n_buffers = _param_counts(cfg)
    n_state = len(OPTIMIZERS.get(cfg.optimizer.name).state_names)
    n_train, n_val, n_test = split_sizes(cfg)
    n_split = n_train + n_val
    dense_scratch = NORMS.get(cfg.model.norm).DENSE.FLOATS_PER_WEIGHT * n_weights
    return Estimate({
        "model": (2 * n_params + 2 * n_weights + 2 * (n_params + n_buffers) + dense_scratch) * FLOAT,
        "optimizer": (n_state + 1) * n_params * FLOAT,
        "checkpoint": (n_params + n_buffers + n_state * n_params) * FLOAT,
        "activations": _activations(cfg, n_train, n_val, n_test),
        "data": (n_split + n_test) * (NUM_FEATURES * FLOAT + 8)
        + (N_ALL_TRAIN + N_TEST + n_split) * NUM_FEATURES,
        "interpreter": INTERPRETER,
    })


def available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo, or None where it cannot be read (not Linux)."""
    try:
        with open(MEMINFO, encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the file counts in KiB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def check_fits(cfg: Config) -> Estimate:
    """Raise ConfigError (exit 2) if a run of `cfg` cannot fit in the available memory;
    return the estimate. Without a readable MemAvailable nothing is checked."""
    need = estimate(cfg)
    available = available_bytes()
    if available is not None and need.total > available:
        parts = ", ".join(f"{name} {_gib(n)}" for name, n in need.parts.items() if n >= 2**20)
        raise ConfigError(
            f"model.hidden {short(cfg.model.hidden)} with train.batch_size {cfg.train.batch_size} needs "
            f"about {_gib(need.total)} of memory ({parts}), but only {_gib(available)} is available; "
            "use smaller model.hidden widths or a smaller train.batch_size")
    return need
