"""What the datasets are: their file names and sizes, the checksums, and where to get them.

Both datasets are the same four IDX files (60,000 training and 10,000 test examples of
28x28 unsigned-byte images with labels 0..9), so the names and sizes are shared and only
the checksums, mirrors and system folders differ. Nothing here reads the environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
FILES: tuple[str, ...] = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)
KIND = {TRAIN_IMAGES: "images", TRAIN_LABELS: "labels", TEST_IMAGES: "images", TEST_LABELS: "labels"}

IMAGE_SIDE = 28
NUM_FEATURES = IMAGE_SIDE * IMAGE_SIDE
NUM_CLASSES = 10
_N_TRAIN, _N_TEST = 60_000, 10_000

# Decompressed size of each file in bytes: the 16-byte (images) or 8-byte (labels) IDX
# header plus one byte per pixel or label. No genuine file is larger, so nothing is ever
# decompressed beyond this (a gzip bomb stops here).
SIZE: dict[str, int] = {
    TRAIN_IMAGES: 16 + _N_TRAIN * NUM_FEATURES,  # 47,040,016
    TRAIN_LABELS: 8 + _N_TRAIN,
    TEST_IMAGES: 16 + _N_TEST * NUM_FEATURES,
    TEST_LABELS: 8 + _N_TEST,
}


@dataclass(frozen=True)
class DatasetInfo:
    """One dataset: how to recognise its files and where to find or fetch them."""

    sha256: Mapping[str, str]  # file name -> SHA-256 of its decompressed bytes
    mirrors: tuple[str, ...]  # base URLs serving `<name>.gz`, tried in order
    system_dirs: tuple[Path, ...] = ()  # folders system packages install it into


# Checksums: see shared/data/*/SOURCE.md for provenance. Mirrors: the ones torchvision uses.
DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        sha256={
            TRAIN_IMAGES: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            TRAIN_LABELS: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            TEST_IMAGES: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            TEST_LABELS: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
    ),
    "fashion-mnist": DatasetInfo(
        sha256={
            TRAIN_IMAGES: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            TRAIN_LABELS: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            TEST_IMAGES: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            TEST_LABELS: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        system_dirs=(Path("/usr/share/datasets/fashion-mnist"),),  # Debian's dataset-fashion-mnist
    ),
}
