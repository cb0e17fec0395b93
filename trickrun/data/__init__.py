"""Datasets: find the four IDX files, download them if need be, verify, parse, split, scale.

MNIST and Fashion-MNIST are each four IDX files, `train-images-idx3-ubyte`,
`train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`, each
plain or gzipped (`<name>.gz`).

- `catalog`: the datasets, their file names, sizes, checksums and mirrors (`DATASETS`)
- `lookup`: where the files are looked for, in order, and the user cache folder
- `download`: fetching missing files into the cache, verified, from the mirrors
- `idx`: reading, verifying and parsing one file, and the .npy cache of parsed arrays
- `scaling`: the `data.scale` methods (`SCALES`), each fitting a `Scaling` on the training pixels
- `images`: `ScaledImages`, the training set kept as uint8 and scaled batch by batch
- `load`: `load_dataset(cfg) -> Dataset`, the entry point, and `split`

This file imports nothing: `trickrun.config` imports `catalog` and `scaling`, which must
not pull in the modules that import the config back.
"""
