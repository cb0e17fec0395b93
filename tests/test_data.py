"""trickrun.data: IDX parsing, verification, lookup order, the .npy cache, split and scaling."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from trickrun.data import catalog, download, idx, load, lookup, scaling
from helpers import FILES, closed_port_url, fake_arrays, idx_bytes, read_fake, write_fake_dataset, write_idx
from trickrun.config import CHOICES, DataConfig, load_config
from trickrun.errors import ConfigError, DataError

SMALL = dict(val_size=100)  # the fake training set has 600 examples
LABELS_SIZE = catalog.SIZE["train-labels-idx1-ubyte"]


def mnist_cache(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "trickrun" / "mnist"


# ---------------------------------------------------------------------------------------
# IDX parsing


def test_parse_idx_decodes_images_and_labels():
    arrays = fake_arrays(n_train=7, n_test=3)
    images = idx.parse_idx(idx_bytes(arrays["train-images-idx3-ubyte"]), "images", "x")
    labels = idx.parse_idx(idx_bytes(arrays["train-labels-idx1-ubyte"]), "labels", "y")
    assert images.shape == (7, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(labels, arrays["train-labels-idx1-ubyte"])


def test_parse_idx_rejects_wrong_magic():
    labels = idx_bytes(np.zeros(5, np.uint8))
    with pytest.raises(DataError, match=r"f\.idx: wrong magic number 2049 .*2051"):
        idx.parse_idx(labels, "images", "f.idx")
    images = idx_bytes(np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(DataError, match="wrong magic number 2051"):
        idx.parse_idx(images, "labels", "f.idx")


@pytest.mark.parametrize("cut", [2, 10, 16 + 28 * 28 * 2 - 1])
def test_parse_idx_rejects_truncated(cut):
    raw = idx_bytes(np.zeros((2, 28, 28), np.uint8))[:cut]
    with pytest.raises(DataError, match=r"^f\.idx: truncated"):
        idx.parse_idx(raw, "images", "f.idx")


def test_parse_idx_rejects_extra_bytes():
    raw = idx_bytes(np.zeros(5, np.uint8)) + b"\0"
    with pytest.raises(DataError, match=r"f\.idx: wrong length: 14 bytes, expected 13 .*1 bytes too many"):
        idx.parse_idx(raw, "labels", "f.idx")


def test_parse_idx_rejects_images_not_28x28():
    raw = idx_bytes(np.zeros((2, 27, 28), np.uint8))
    with pytest.raises(DataError, match="bad dimensions 2x27x28: images must be 28x28"):
        idx.parse_idx(raw, "images", "f.idx")


def test_parse_idx_rejects_labels_out_of_range():
    with pytest.raises(DataError, match="label 10 out of range"):
        idx.parse_idx(idx_bytes(np.array([1, 10], np.uint8)), "labels", "f.idx")


# ---------------------------------------------------------------------------------------
# Verification of single files


@pytest.fixture
def labels_raw() -> bytes:
    return idx_bytes(np.arange(10, dtype=np.uint8))


@pytest.mark.parametrize("gz", [True, False])
def test_verify_accepts_plain_and_gzipped(tmp_path, labels_raw, gz):
    path = write_idx(tmp_path, "train-labels-idx1-ubyte", labels_raw, gz=gz)
    assert path.read_bytes()[:2] == (b"\x1f\x8b" if gz else b"\0\0")
    assert idx.verify(path, hashlib.sha256(labels_raw).hexdigest(), LABELS_SIZE) == labels_raw


def test_verify_accepts_gunzipped_file_still_named_gz(tmp_path, labels_raw):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(labels_raw)
    assert idx.verify(path, hashlib.sha256(labels_raw).hexdigest(), LABELS_SIZE) == labels_raw


def test_verify_accepts_recompressed_file(tmp_path, labels_raw):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(labels_raw, compresslevel=1, mtime=12345))
    assert idx.verify(path, hashlib.sha256(labels_raw).hexdigest(), LABELS_SIZE) == labels_raw


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_verify_rejects_corrupt_gzip(tmp_path, damage):
    raw = idx_bytes(fake_arrays(n_train=20, n_test=1)["train-images-idx3-ubyte"])
    packed = bytearray(gzip.compress(raw))
    if damage == "truncate":
        packed = packed[: len(packed) // 2]
    else:
        packed[len(packed) // 2] ^= 0xFF
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(DataError, match=f"^{path}: corrupt gzip file"):
        idx.verify(path, hashlib.sha256(raw).hexdigest(), catalog.SIZE["train-images-idx3-ubyte"])


def test_verify_rejects_checksum_mismatch(tmp_path, labels_raw):
    path = write_idx(tmp_path, "train-labels-idx1-ubyte", labels_raw)
    got = hashlib.sha256(labels_raw).hexdigest()
    with pytest.raises(DataError) as err:
        idx.verify(path, "0" * 64, LABELS_SIZE)
    assert str(err.value).startswith(f"{path}: checksum mismatch: expected sha256 {'0' * 64}, got {got}")
    assert err.value.exit_code == 3


@pytest.mark.parametrize("gz", [True, False])
def test_checksum_mismatch_says_not_gzip_compressed_only_when_it_is_not(tmp_path, labels_raw, gz):
    path = tmp_path / "train-labels-idx1-ubyte.gz"  # another file's bytes, gzipped or not, under a .gz name
    path.write_bytes(gzip.compress(labels_raw) if gz else labels_raw)
    with pytest.raises(DataError, match=f"^{path}: checksum mismatch: ") as err:
        idx.verify(path, "0" * 64, LABELS_SIZE)
    assert ("not gzip-compressed although its name ends in .gz" in str(err.value)) == (not gz)


@pytest.mark.parametrize("gz", [True, False])
def test_verify_stops_at_the_genuine_size(tmp_path, labels_raw, gz):
    raw = bytes(LABELS_SIZE + 1)  # one byte more than any genuine train-labels file
    path = write_idx(tmp_path, "train-labels-idx1-ubyte", raw, gz=gz)
    what = "decompresses to" if gz else "holds"
    with pytest.raises(DataError, match=f"^{path}: too large: {what} more than {LABELS_SIZE} bytes") as err:
        idx.verify(path, hashlib.sha256(raw).hexdigest(), LABELS_SIZE)
    assert err.value.exit_code == 3
    exact = write_idx(tmp_path / "exact", "train-labels-idx1-ubyte", raw[:-1], gz=gz)
    assert idx.verify(exact, hashlib.sha256(raw[:-1]).hexdigest(), LABELS_SIZE) == raw[:-1]


def test_gzip_bomb_is_not_decompressed_whole(fake_data):
    """256 MiB of zeros in 256 KB (one gzip member repeated), named like the 60 kB labels file."""
    bomb = fake_data / "mnist" / "train-labels-idx1-ubyte.gz"
    bomb.write_bytes(gzip.compress(bytes(1 << 20), mtime=0) * 256)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=f"^{bomb}: too large: decompresses to more than {LABELS_SIZE} "):
            idx.verify(bomb, "0" * 64, LABELS_SIZE)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, f"{peak} bytes allocated"
    with pytest.raises(DataError, match=f"{bomb}: too large: decompresses to more than ") as err:
        load.load_dataset(DataConfig(**SMALL))
    assert err.value.exit_code == 3


def test_load_rejects_file_with_wrong_checksum_and_names_it(fake_data):
    bad = fake_data / "mnist" / "t10k-labels-idx1-ubyte.gz"
    bad.write_bytes(gzip.compress(idx_bytes(np.zeros(200, np.uint8))))
    with pytest.raises(DataError, match=f"{bad}: checksum mismatch: expected sha256 ") as err:
        load.load_dataset(DataConfig(**SMALL))
    assert err.value.exit_code == 3


def test_real_checksums_are_built_in():
    assert set(catalog.DATASETS) == set(CHOICES["data.dataset"])
    for info in catalog.DATASETS.values():
        sums = info.sha256
        assert set(sums) == set(FILES)
        assert all(len(s) == 64 and int(s, 16) >= 0 for s in sums.values())


# ---------------------------------------------------------------------------------------
# Where the files are found


@pytest.fixture
def three_copies(tmp_path, monkeypatch, expect_sums):
    """The same fake mnist in data.dir candidate, $TRICKRUN_DATA_DIR/mnist and the cache."""
    explicit, env_root = tmp_path / "explicit", tmp_path / "env"
    sums = write_fake_dataset(explicit)
    write_fake_dataset(env_root / "mnist", gz=False)
    write_fake_dataset(mnist_cache(tmp_path))
    expect_sums(sums)
    monkeypatch.setenv("TRICKRUN_DATA_DIR", str(env_root))
    return explicit, env_root / "mnist", mnist_cache(tmp_path)


def test_search_order_data_dir_then_env_then_cache(three_copies, monkeypatch):
    explicit, env_dir, cache = three_copies
    assert load.load_dataset(DataConfig(dir=str(explicit), **SMALL)).source == str(explicit)
    assert load.load_dataset(DataConfig(**SMALL)).source == str(env_dir)
    monkeypatch.delenv("TRICKRUN_DATA_DIR")
    assert load.load_dataset(DataConfig(**SMALL)).source == str(cache)


def test_env_folder_without_dataset_falls_through_to_cache(three_copies, tmp_path, monkeypatch):
    monkeypatch.setenv("TRICKRUN_DATA_DIR", str(tmp_path / "nothing-here"))
    assert load.load_dataset(DataConfig(**SMALL)).source == str(three_copies[2])


def test_system_folder_searched_for_fashion_mnist_between_env_and_cache(tmp_path, monkeypatch, expect_sums):
    system = tmp_path / "usr-share" / "fashion-mnist"
    sums = write_fake_dataset(system)
    write_fake_dataset(tmp_path / "cache" / "trickrun" / "fashion-mnist")
    expect_sums(sums, "fashion-mnist", system_dirs=(system,))
    monkeypatch.delenv("TRICKRUN_DATA_DIR", raising=False)
    cfg = DataConfig(dataset="fashion-mnist", **SMALL)
    assert load.load_dataset(cfg).source == str(system)
    env_root = tmp_path / "env"
    write_fake_dataset(env_root / "fashion-mnist")
    monkeypatch.setenv("TRICKRUN_DATA_DIR", str(env_root))
    assert load.load_dataset(cfg).source == str(env_root / "fashion-mnist")
    assert system not in lookup.search_dirs("mnist")


def test_explicit_data_dir_lacking_files_is_an_error_not_a_fallback(three_copies, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=f"data.dir: {empty} holds none of the files train-images-idx3-ubyte"):
        load.load_dataset(DataConfig(dir=str(empty), **SMALL))
    with pytest.raises(DataError, match=f"data.dir: {tmp_path / 'absent'} is not a folder"):
        load.load_dataset(DataConfig(dir=str(tmp_path / "absent"), **SMALL))


def test_a_relative_data_dir_is_saved_absolute_so_a_run_finds_its_data_from_anywhere(fake_data, tmp_path, monkeypatch):
    from trickrun.config import dump_yaml

    monkeypatch.delenv("TRICKRUN_DATA_DIR")
    monkeypatch.chdir(fake_data)
    cfg = load_config({"data": {"dir": "mnist", "val_size": 100}})
    assert cfg.data.dir == str(fake_data / "mnist")
    saved = tmp_path / "config.yaml"  # as a run directory keeps it
    saved.write_text(dump_yaml(cfg.to_dict()))
    monkeypatch.chdir(tmp_path)  # `trickrun resume` from another folder
    assert load.load_dataset(load_config(saved).data).source == str(fake_data / "mnist")


def test_a_data_dir_named_through_its_parent_is_saved_as_the_same_folder(fake_data, monkeypatch):
    """`../data` from a sub-folder and `data` from its parent are one folder, so one value: a
    sweep re-run from the other folder must see its runs' configs unchanged."""
    monkeypatch.delenv("TRICKRUN_DATA_DIR")
    (fake_data / "sub").mkdir()
    monkeypatch.chdir(fake_data / "sub")
    assert load_config({"data": {"dir": "../mnist"}}).data.dir == str(fake_data / "mnist")


def test_explicit_data_dir_pointing_at_the_root_gives_a_hint(three_copies, tmp_path):
    with pytest.raises(DataError, match=r"it has a mnist/ folder: set data.dir to .*/env/mnist"):
        load.load_dataset(DataConfig(dir=str(tmp_path / "env"), **SMALL))


@pytest.mark.parametrize("explicit", [False, True])
def test_folder_missing_one_file_names_it_and_the_folder(fake_data, explicit):
    folder = fake_data / "mnist"
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    cfg = DataConfig(dir=str(folder) if explicit else None, **SMALL)
    with pytest.raises(DataError) as err:
        load.load_dataset(cfg)
    message = str(err.value)
    assert f"{folder} holds only some of the dataset files; missing: t10k-labels-idx1-ubyte " in message
    assert "train-images" not in message.split("missing:")[1]


def test_nothing_found_and_no_network_lists_every_place(tmp_path, monkeypatch):
    env_root = tmp_path / "env"
    mirror = closed_port_url()
    monkeypatch.setenv("TRICKRUN_DATA_DIR", str(env_root))
    monkeypatch.setenv("TRICKRUN_MIRRORS", mirror)
    with pytest.raises(DataError) as err:
        load.load_dataset(DataConfig())
    message = str(err.value)
    assert err.value.exit_code == 3
    assert "data.dir: not set" in message
    assert f"{env_root / 'mnist'}: no such folder" in message
    assert f"{mnist_cache(tmp_path)} (user cache): no such folder" in message
    assert f"{mirror}train-images-idx3-ubyte.gz: " in message
    assert "refused" in message.lower()
    assert "set data.dir" in message
    assert "TRICKRUN_DATA_DIR=/path to a folder containing mnist/ and fashion-mnist/" in message
    assert f"copy the four files into {mnist_cache(tmp_path)}" in message
    assert not any(mnist_cache(tmp_path).glob("*")), "no partial download left behind"


def test_data_dir_env_set_to_the_dataset_folder_itself_gets_a_hint(fake_data, monkeypatch):
    monkeypatch.setenv("TRICKRUN_DATA_DIR", str(fake_data / "mnist"))  # one level too deep
    with pytest.raises(DataError) as err:
        load.load_dataset(DataConfig(**SMALL))
    assert (f"{fake_data / 'mnist' / 'mnist'}: no such folder; TRICKRUN_DATA_DIR itself holds dataset files: "
            f"set it to the folder above, {fake_data}, or data.dir to {fake_data / 'mnist'}") in str(err.value)
    (fake_data / "mnist").rename(fake_data / "files")  # the folder above would hold no mnist/ folder
    monkeypatch.setenv("TRICKRUN_DATA_DIR", str(fake_data / "files"))
    with pytest.raises(DataError) as err:
        load.load_dataset(DataConfig(**SMALL))
    assert (f"TRICKRUN_DATA_DIR itself holds dataset files: move them into {fake_data / 'files' / 'mnist'}, or "
            f"set data.dir to {fake_data / 'files'}") in str(err.value)
    assert f"the folder above, {fake_data}" not in str(err.value)
    monkeypatch.setenv("TRICKRUN_DATA_DIR", str(fake_data / "elsewhere"))
    with pytest.raises(DataError) as err:
        load.load_dataset(DataConfig(**SMALL))
    assert "itself holds" not in str(err.value)


def test_nothing_found_with_empty_mirror_list_says_so(monkeypatch):
    monkeypatch.delenv("TRICKRUN_DATA_DIR", raising=False)
    monkeypatch.setenv("TRICKRUN_MIRRORS", "")
    with pytest.raises(DataError, match="TRICKRUN_MIRRORS is set but empty"):
        load.load_dataset(DataConfig())


def test_mirrors_env_replaces_builtin_list(monkeypatch):
    monkeypatch.delenv("TRICKRUN_MIRRORS")
    assert download.mirrors("mnist")[0] == "https://ossci-datasets.s3.amazonaws.com/mnist/"
    monkeypatch.setenv("TRICKRUN_MIRRORS", " http://a/x/ , http://b/ ,")
    assert download.mirrors("mnist") == ["http://a/x/", "http://b/"]


def test_partial_cache_without_network_names_missing_files(tmp_path, monkeypatch):
    monkeypatch.delenv("TRICKRUN_DATA_DIR", raising=False)
    write_fake_dataset(mnist_cache(tmp_path))
    (mnist_cache(tmp_path) / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError) as err:
        load.load_dataset(DataConfig())
    message = str(err.value)
    assert f"{mnist_cache(tmp_path)} (user cache): missing t10k-images-idx3-ubyte" in message
    assert "t10k-images-idx3-ubyte.gz: " in message  # only the missing file was requested
    assert "train-images-idx3-ubyte.gz: " not in message


def test_image_and_label_counts_must_agree(tmp_path, expect_sums):
    folder = tmp_path / "d"
    sums = write_fake_dataset(folder)
    raw = idx_bytes(np.zeros(599, np.uint8))
    write_idx(folder, "train-labels-idx1-ubyte", raw)
    sums["train-labels-idx1-ubyte"] = hashlib.sha256(raw).hexdigest()
    expect_sums(sums)
    with pytest.raises(DataError, match="holds 600 images but train-labels-idx1-ubyte.gz holds 599 labels"):
        load.load_dataset(DataConfig(dir=str(folder), **SMALL))


def test_unknown_dataset_or_scale_is_a_config_error(fake_data):
    with pytest.raises(ConfigError, match="data.dataset: unknown dataset 'cifar'"):
        load.load_dataset(DataConfig(dataset="cifar"))
    with pytest.raises(ConfigError, match="unknown data.scale 'minmax'"):
        load.load_dataset(DataConfig(scale="minmax", **SMALL))


# ---------------------------------------------------------------------------------------
# The loaded Dataset, split and scaling


def test_loaded_dataset_types_and_shapes(fake_data):
    ds = load.load_dataset(DataConfig(**SMALL))
    assert ds.name == "mnist" and ds.source == str(fake_data / "mnist")
    assert (ds.x_train.shape, ds.x_val.shape, ds.x_test.shape) == ((500, 784), (100, 784), (200, 784))
    assert ds.x_train.pixels.dtype == np.uint8  # a quarter of float32's memory, scaled per batch
    for x, y in ((np.asarray(ds.x_train), ds.y_train), (ds.x_val, ds.y_val), (ds.x_test, ds.y_test)):
        assert x.dtype == np.float32 and x.flags.c_contiguous
        assert y.dtype == np.intp and y.shape == (len(x),)
    expected_test = read_fake(fake_data / "mnist", "t10k-images-idx3-ubyte").reshape(200, 784) / np.float32(255)
    np.testing.assert_array_equal(ds.x_test, expected_test)
    np.testing.assert_array_equal(ds.y_test, read_fake(fake_data / "mnist", "t10k-labels-idx1-ubyte"))


def _row_ids(x: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Index in `reference` of each row of `x` (rows of the fake data are unique)."""
    lookup = {row.tobytes(): i for i, row in enumerate(reference)}
    return np.array([lookup[row.tobytes()] for row in x])


def test_train_and_val_are_disjoint_and_cover_the_training_file(fake_data):
    ds = load.load_dataset(DataConfig(scale="none", **SMALL))
    raw_x = read_fake(fake_data / "mnist", "train-images-idx3-ubyte").reshape(600, 784).astype(np.float32)
    raw_y = read_fake(fake_data / "mnist", "train-labels-idx1-ubyte")
    train_ids, val_ids = _row_ids(np.asarray(ds.x_train), raw_x), _row_ids(ds.x_val, raw_x)
    assert set(train_ids).isdisjoint(val_ids)
    assert sorted([*train_ids, *val_ids]) == list(range(600))
    np.testing.assert_array_equal(ds.y_train, raw_y[train_ids])
    np.testing.assert_array_equal(ds.y_val, raw_y[val_ids])
    expected_val = np.random.default_rng(0).permutation(600)[:100]
    np.testing.assert_array_equal(val_ids, expected_val)


def test_split_follows_split_seed_only():
    x, y = np.arange(50)[:, None], np.arange(50) % 10
    first = load.split(x, y, val_size=10, seed=3)
    np.random.seed(12345)  # the legacy global RNG must play no part
    np.random.random(7)
    again = load.split(x, y, val_size=10, seed=3)
    other = load.split(x, y, val_size=10, seed=4)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[2], other[2])
    order = np.random.default_rng(3).permutation(50)
    np.testing.assert_array_equal(first[2][:, 0], order[:10])
    np.testing.assert_array_equal(first[0][:, 0], order[10:])


def test_split_is_the_same_for_every_run_seed(fake_data):
    loaded = [
        load.load_dataset(load_config({"seed": seed, "data": {"val_size": 100, "split_seed": 7}}).data)
        for seed in (0, 99)
    ]
    np.testing.assert_array_equal(loaded[0].x_val, loaded[1].x_val)
    np.testing.assert_array_equal(loaded[0].y_train, loaded[1].y_train)
    other = load.load_dataset(DataConfig(val_size=100, split_seed=8))
    assert not np.array_equal(loaded[0].x_val, other.x_val)


def test_train_limit_keeps_the_first_of_the_training_part():
    x, y = np.arange(50)[:, None], np.zeros(50, int)
    full_train = load.split(x, y, 10, seed=1)[0]
    limited = load.split(x, y, 10, seed=1, train_limit=15)
    np.testing.assert_array_equal(limited[0], full_train[:15])
    np.testing.assert_array_equal(limited[2], load.split(x, y, 10, seed=1)[2])  # val unchanged
    assert len(load.split(x, y, 10, seed=1, train_limit=1000)[0]) == 40  # more than there is: all


def test_train_limit_via_load(fake_data):
    ds = load.load_dataset(DataConfig(train_limit=64, **SMALL))
    assert ds.x_train.shape == (64, 784) and ds.x_val.shape == (100, 784)


@pytest.mark.parametrize("val_size", [600, 601, 0])
def test_val_size_must_leave_training_examples(fake_data, val_size):
    with pytest.raises(ConfigError, match=f"data.val_size: {val_size} out of 600"):
        load.load_dataset(DataConfig(val_size=val_size))


def test_scales_are_exactly_the_configured_choices():
    assert scaling.SCALES.names() == CHOICES["data.scale"]


@pytest.mark.parametrize(
    "method, expected",
    [
        ("unit", [0.0, 0.2, 1.0]),
        ("symmetric", [-1.0, -0.6, 1.0]),
        ("none", [0.0, 51.0, 255.0]),
    ],
)
def test_fixed_scales(method, expected):
    pixels = np.array([[0, 51, 255]], np.uint8)
    (out,) = scaling.scale(method, pixels)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_allclose(out[0], expected, rtol=0, atol=1e-6)


def test_standard_scale_uses_training_statistics_for_every_part():
    train = np.array([[0, 2, 0, 2]], np.uint8)  # mean 1, population std 1
    val, test = np.array([[4]], np.uint8), np.array([[1, 0]], np.uint8)
    out_train, out_val, out_test = scaling.scale("standard", train, val, test)
    np.testing.assert_array_equal(out_train, [[-1, 1, -1, 1]])
    np.testing.assert_array_equal(out_val, [[3]])
    np.testing.assert_array_equal(out_test, [[0, -1]])
    assert all(a.dtype == np.float32 for a in (out_train, out_val, out_test))


def test_scaling_does_not_touch_its_inputs():
    pixels = np.array([[0, 51, 255]], np.uint8)
    for method in scaling.SCALES.names():
        scaling.scale(method, pixels)
    np.testing.assert_array_equal(pixels, [[0, 51, 255]])


@pytest.mark.parametrize("method", CHOICES["data.scale"])
def test_each_scale_on_loaded_data(fake_data, method):
    ds = load.load_dataset(DataConfig(scale=method, train_limit=300, **SMALL))
    raw = load.load_dataset(DataConfig(scale="none", train_limit=300, **SMALL))
    x = np.asarray(ds.x_train)
    if method == "unit":
        assert (x.min(), x.max()) == (0.0, 1.0)
        np.testing.assert_allclose(ds.x_val, raw.x_val / 255, atol=1e-7)
    elif method == "symmetric":
        assert (x.min(), x.max()) == (-1.0, 1.0)
        np.testing.assert_allclose(ds.x_test, raw.x_test / 127.5 - 1, atol=1e-6)
    elif method == "standard":
        assert abs(x.mean(dtype=np.float64)) < 1e-5
        assert abs(x.std(dtype=np.float64) - 1) < 1e-5
        mean, std = np.asarray(raw.x_train, np.float64).mean(), np.asarray(raw.x_train, np.float64).std()
        np.testing.assert_allclose(ds.x_val, (raw.x_val - mean) / std, atol=1e-5)
        np.testing.assert_allclose(ds.x_test, (raw.x_test - mean) / std, atol=1e-5)
        assert abs(ds.x_val.mean()) > 1e-4  # statistics came from train, not from val
    else:
        assert (x.min(), x.max()) == (0.0, 255.0)
        assert np.array_equal(x, np.round(x))


# ---------------------------------------------------------------------------------------
# The .npy cache


def _forbid_reading(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("the source file was read again")

    monkeypatch.setattr(idx, "verify", fail)
    monkeypatch.setattr(idx, "parse_idx", fail)


def test_npy_cache_is_written_beside_a_stamp_and_reused(fake_data, tmp_path, monkeypatch):
    first = load.load_dataset(DataConfig(**SMALL))
    cache = mnist_cache(tmp_path)
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        [f"{n}.npy" for n in FILES] + [f"{n}.stamp.json" for n in FILES]
    )
    assert sorted(p.name for p in (fake_data / "mnist").iterdir()) == sorted(f"{n}.gz" for n in FILES)
    _forbid_reading(monkeypatch)
    second = load.load_dataset(DataConfig(**SMALL))
    np.testing.assert_array_equal(first.x_train, second.x_train)
    np.testing.assert_array_equal(first.y_test, second.y_test)


def test_npy_cache_invalidated_when_the_source_changes(fake_data, expect_sums):
    cfg = DataConfig(**SMALL)
    first = load.load_dataset(cfg)
    folder = fake_data / "mnist"
    shutil.rmtree(folder)
    sums = write_fake_dataset(folder, seed=1)
    expect_sums(sums)
    second = load.load_dataset(cfg)
    assert not np.array_equal(first.x_test, second.x_test)
    np.testing.assert_array_equal(second.y_test, read_fake(folder, "t10k-labels-idx1-ubyte"))


def test_npy_cache_invalidated_by_a_new_mtime(fake_data, monkeypatch):
    cfg = DataConfig(**SMALL)
    load.load_dataset(cfg)
    source = fake_data / "mnist" / "t10k-labels-idx1-ubyte.gz"
    st = source.stat()
    os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    verified = []
    real_verify = idx.verify
    monkeypatch.setattr(idx, "verify", lambda path, *args: verified.append(path.name) or real_verify(path, *args))
    load.load_dataset(cfg)
    assert verified == ["t10k-labels-idx1-ubyte.gz"]


def test_npy_cache_invalidated_when_expected_checksum_changes(fake_data, expect_sums):
    load.load_dataset(DataConfig(**SMALL))
    expect_sums({**catalog.DATASETS["mnist"].sha256, "train-labels-idx1-ubyte": "f" * 64})
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz: checksum mismatch"):
        load.load_dataset(DataConfig(**SMALL))


def test_damaged_npy_is_rebuilt(fake_data, tmp_path):
    first = load.load_dataset(DataConfig(**SMALL))
    npy = mnist_cache(tmp_path) / "train-images-idx3-ubyte.npy"
    npy.write_bytes(npy.read_bytes()[:1000])
    second = load.load_dataset(DataConfig(**SMALL))
    np.testing.assert_array_equal(first.x_train, second.x_train)
    assert npy.stat().st_size > 600 * 784


def test_unwritable_cache_is_skipped(fake_data, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    ds = load.load_dataset(DataConfig(**SMALL))
    assert ds.x_train.shape == (500, 784)


def test_relative_xdg_cache_home_is_ignored(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert lookup.cache_dir("mnist") == tmp_path / ".cache" / "trickrun" / "mnist"


@pytest.mark.parametrize("home", ["", "/", "relative/home"])
@pytest.mark.parametrize("xdg", [None, "", "relative/cache"])
def test_no_usable_home_means_no_cache(monkeypatch, home, xdg):
    monkeypatch.setenv("HOME", home)
    if xdg is None:
        monkeypatch.delenv("XDG_CACHE_HOME")
    else:
        monkeypatch.setenv("XDG_CACHE_HOME", xdg)
    assert lookup.cache_dir("mnist") is None
    assert all(not str(folder).startswith("/.cache") for folder in lookup.search_dirs("mnist"))


def test_data_is_still_found_without_a_usable_home(fake_data, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", "")
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    first = load.load_dataset(DataConfig(**SMALL))
    assert first.source == str(fake_data / "mnist")
    assert not Path("/.cache/trickrun").exists(), "no cache at the root"
    assert not (tmp_path / "cache").exists()
    second = load.load_dataset(DataConfig(**SMALL))  # verified again each time, without a cache
    np.testing.assert_array_equal(first.x_train, second.x_train)


def test_absolute_xdg_cache_home_needs_no_home(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert lookup.cache_dir("mnist") == tmp_path / "xdg" / "trickrun" / "mnist"


# ---------------------------------------------------------------------------------------
# The real data (skipped unless $TRICKRUN_DATA_DIR holds it)


def test_real_mnist(real_mnist, monkeypatch):
    monkeypatch.setenv("TRICKRUN_DATA_DIR", str(real_mnist))
    ds = load.load_dataset(DataConfig())
    assert (len(ds.x_train), len(ds.x_val), len(ds.x_test)) == (55000, 5000, 10000)
    assert ds.y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert ds.source == str((real_mnist / "mnist").resolve())
    x_train = np.asarray(ds.x_train)
    assert (x_train.min(), x_train.max()) == (0.0, 1.0)
    labels = np.concatenate([ds.y_train, ds.y_val])
    counts = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]  # SOURCE.md
    assert np.bincount(labels, minlength=10).tolist() == counts


def test_real_fashion_mnist(real_mnist, monkeypatch):
    if not (real_mnist / "fashion-mnist").is_dir():
        pytest.skip("no fashion-mnist/ beside mnist/")
    monkeypatch.setenv("TRICKRUN_DATA_DIR", str(real_mnist))
    ds = load.load_dataset(DataConfig(dataset="fashion-mnist"))
    assert (len(ds.x_train), len(ds.x_val), len(ds.x_test)) == (55000, 5000, 10000)
    assert ds.y_test[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]


def test_checksum_mismatch_names_the_file_it_is_when_it_is_a_known_one(tmp_path, expect_sums):
    """data.dir at a fashion-mnist folder with data.dataset left at mnist: which file each one is."""
    raw = idx_bytes(np.arange(10, dtype=np.uint8))
    expect_sums({**catalog.DATASETS["fashion-mnist"].sha256, "t10k-labels-idx1-ubyte": hashlib.sha256(raw).hexdigest()},
                dataset="fashion-mnist")
    path = write_idx(tmp_path, "train-labels-idx1-ubyte", raw)
    with pytest.raises(DataError, match=f"^{path}: checksum mismatch: ") as err:
        idx.verify(path, catalog.DATASETS["mnist"].sha256["train-labels-idx1-ubyte"], LABELS_SIZE)
    assert "these are the bytes of fashion-mnist's t10k-labels-idx1-ubyte: a folder or file mixed up" in str(err.value)
    other = write_idx(tmp_path / "other", "train-labels-idx1-ubyte", raw[:-1])
    with pytest.raises(DataError) as err:  # bytes that are no dataset's file get no such guess
        idx.verify(other, catalog.DATASETS["mnist"].sha256["train-labels-idx1-ubyte"], LABELS_SIZE)
    assert "these are the bytes" not in str(err.value)
