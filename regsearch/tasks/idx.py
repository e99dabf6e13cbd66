"""MNIST and Fashion-MNIST from the four standard IDX files (plain or ``.gz``).

The files are read from ``task.data_dir``; with ``task.download=true`` missing ones are fetched
from the usual mirrors, checked against the published MD5 sums and moved into place atomically.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import struct
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from regsearch.config import ConfigError, IdxTask
from regsearch.tasks.bundle import TaskData, make_bundle, split_indices

__all__ = ["IDX_FILES", "MD5", "MIRRORS", "fetch_file", "load_idx", "read_idx"]

#: Split -> (images file, labels file), without the optional ``.gz``.
IDX_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

#: Published MD5 sums of the gzipped files (the ones torchvision checks).
MD5: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}

#: Base URLs tried in order; the original yann.lecun.com site now refuses most clients.
MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    "fashion_mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
}

N_CLASSES = 10
_UBYTE = 0x08  # IDX type code of unsigned bytes, the only type these data sets use
_TIMEOUT_S = 30.0


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Parse an IDX file of unsigned bytes with ``ndim`` dimensions (gzipped if ``.gz``).

    The magic number is ``0x00000800 + ndim`` (0x803 for images, 0x801 for labels), followed
    by ``ndim`` big-endian uint32 sizes and exactly ``prod(sizes)`` bytes of data.

    Args:
        path: The file.
        ndim: Expected number of dimensions: 3 for images, 1 for labels.

    Returns:
        A uint8 array of the stored shape.

    Raises:
        ConfigError: The file cannot be read, is not such an IDX file, or is truncated.

    Example:
        >>> read_idx(Path("data/mnist/t10k-labels-idx1-ubyte.gz"), 1).shape  # doctest: +SKIP
        (10000,)
    """
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                raw = fh.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:
        raise ConfigError(f"{path}: cannot read IDX file ({_one_line(err)})") from None
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ConfigError(f"{path}: corrupt IDX file ({len(raw)} bytes, shorter than its header)")
    magic = struct.unpack(">I", raw[:4])[0]
    expected = (_UBYTE << 8) | ndim
    if magic != expected:
        raise ConfigError(
            f"{path}: not an IDX file of {ndim}-d unsigned bytes "
            f"(magic number {magic:#010x}, expected {expected:#010x})"
        )
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    size = int(np.prod(shape, dtype=np.int64))
    if len(raw) - header != size:
        what = "truncated" if len(raw) - header < size else "has trailing bytes"
        raise ConfigError(
            f"{path}: corrupt IDX file ({what}: header says {'x'.join(map(str, shape))} = "
            f"{size} bytes of data, found {len(raw) - header})"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _one_line(err: BaseException) -> str:
    return " ".join(f"{type(err).__name__}: {err}".split())


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)  # integrity check against published sums
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_file(filename: str, data_dir: Path, mirrors: Sequence[str], md5: str) -> Path:
    """Download ``filename`` from the first mirror that serves it with the right MD5.

    The bytes go to a temporary file in ``data_dir`` that is renamed into place only after
    the checksum matches, so an interrupted download never leaves a half file behind.

    Args:
        filename: File name appended to each mirror's base URL.
        data_dir: Destination folder (created if needed).
        mirrors: Base URLs ending in ``/`` (any scheme urllib opens, ``file://`` included).
        md5: Expected hex digest.

    Returns:
        The path of the verified file.

    Raises:
        ConfigError: No mirror gave a file with the expected checksum (one line, the last
            failure named).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    target = data_dir / filename
    failure = "no mirrors"
    for base in mirrors:
        url = base + filename
        fd, tmp_name = tempfile.mkstemp(dir=data_dir, prefix=f".{filename}.", suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=_TIMEOUT_S) as r:
                for block in iter(lambda: r.read(1 << 20), b""):
                    out.write(block)
            got = _md5(tmp)
            if got != md5:
                failure = f"{url}: MD5 {got} != expected {md5}"
                continue
            os.replace(tmp, target)
            return target
        except (urllib.error.URLError, OSError, ValueError) as err:
            failure = f"{url}: {_one_line(err)}"
        finally:
            tmp.unlink(missing_ok=True)
    raise ConfigError(
        f"task.download=True: could not fetch {filename} into {data_dir} ({failure}); "
        "download it by hand or check the network"
    )


def _locate(cfg: IdxTask, stem: str) -> Path:
    """The plain or gzipped file ``stem`` in the data folder, downloaded if allowed."""
    data_dir = Path(cfg.data_dir)
    for candidate in (data_dir / stem, data_dir / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    gz = f"{stem}.gz"
    if not cfg.download:
        raise ConfigError(
            f"task.data_dir={cfg.data_dir!r}: missing {stem} (or {gz}); put the four standard "
            f"{cfg.name} IDX files there, or set task.download=true to fetch them when the "
            "network allows"
        )
    return fetch_file(gz, data_dir, MIRRORS[cfg.name], MD5[cfg.name][gz])


def _read_split(cfg: IdxTask, split: str) -> tuple[np.ndarray, np.ndarray]:
    images_stem, labels_stem = IDX_FILES[split]
    images_path, labels_path = _locate(cfg, images_stem), _locate(cfg, labels_stem)
    images, labels = read_idx(images_path, 3), read_idx(labels_path, 1)
    if len(images) != len(labels):
        raise ConfigError(
            f"{labels_path}: {len(labels)} labels for {len(images)} images in {images_path}"
        )
    if labels.size and labels.max() >= N_CLASSES:
        raise ConfigError(f"{labels_path}: label {labels.max()} outside 0..{N_CLASSES - 1}")
    return images.reshape(len(images), -1), labels


def _subset(n_total: int, n_keep: int | None, key: str, rng: np.random.Generator) -> np.ndarray:
    if n_keep is None:
        return np.arange(n_total)
    if n_keep > n_total:
        raise ConfigError(f"task.{key}={n_keep}: only {n_total} images available")
    return np.sort(rng.choice(n_total, size=n_keep, replace=False))


def _scale(pixels: np.ndarray, pixel_scale: str) -> np.ndarray:
    if pixel_scale == "symmetric":
        return pixels.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    if pixel_scale in ("unit", "standardize"):
        # standardize: the z-score itself happens in make_bundle with training statistics.
        return pixels.astype(np.float32) / np.float32(255.0)
    raise ConfigError(f"task.pixel_scale={pixel_scale!r}: allowed: unit, symmetric, standardize")


def load_idx(cfg: IdxTask) -> TaskData:
    """Load MNIST or Fashion-MNIST: 784 pixel features, 10 classes.

    Optional random subsets (``n_train``, ``n_test``) are drawn with ``default_rng(split_seed)``;
    validation is carved from the (subset of the) training images with ``split_seed``.

    Args:
        cfg: Data folder, download switch, subset sizes, pixel scaling and split settings.

    Returns:
        10-class classification on flattened, scaled 28x28 images.

    Raises:
        ConfigError: A file is missing (and download is off or fails), corrupt or truncated,
            or a subset asks for more images than there are.

    Example:
        >>> cfg = IdxTask(name="mnist", data_dir="data/mnist", n_train=20000)
        >>> load_idx(cfg).x_train.shape  # doctest: +SKIP
        torch.Size([15000, 784])
    """
    if cfg.name not in MD5:
        raise ConfigError(f"task.name={cfg.name!r}: allowed: {', '.join(MD5)}")
    x_pool, y_pool = _read_split(cfg, "train")
    x_test, y_test = _read_split(cfg, "test")
    rng = np.random.default_rng(cfg.split_seed)
    keep = _subset(len(x_pool), cfg.n_train, "n_train", rng)
    keep_test = _subset(len(x_test), cfg.n_test, "n_test", rng)
    if len(keep) < 2:
        raise ConfigError(f"task.n_train={len(keep)}: need at least 2 images (train and val)")
    x_pool, y_pool = _scale(x_pool[keep], cfg.pixel_scale), y_pool[keep]
    train, val = split_indices(len(keep), cfg.val_fraction, cfg.split_seed)
    splits = {
        "train": (x_pool[train], y_pool[train]),
        "val": (x_pool[val], y_pool[val]),
        "test": (_scale(x_test[keep_test], cfg.pixel_scale), y_test[keep_test]),
    }
    standardize = cfg.standardize or cfg.pixel_scale == "standardize"
    width = x_pool.shape[1]
    side = round(width**0.5)
    names = (
        [f"pixel_{r}_{c}" for r in range(side) for c in range(side)]
        if side * side == width
        else [f"pixel_{i}" for i in range(width)]
    )
    data = make_bundle(
        cfg.name, "classification", splits, standardize=standardize, feature_names=names
    )
    # make_bundle infers the class count from the largest label; a small subset may lack 9.
    # 28×28 images: a convolutional model sees each row as one channel of 28×28 pixels.
    return dataclasses.replace(data, n_classes=N_CLASSES, input_shape=(1, 28, 28))
