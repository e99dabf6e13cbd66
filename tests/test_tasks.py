"""Task loaders: shapes, kinds, deterministic splits, train-only statistics and input errors."""

from __future__ import annotations

import gzip
import hashlib
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from regsearch.config import (
    TASK_SCHEMAS,
    ConfigError,
    CsvTask,
    HighdimLinearTask,
    IdxTask,
    Linear12Task,
    MoonsTask,
    PolynomialTask,
    SklearnTask,
    TaskConfig,
)
from regsearch.tasks import TASK_LOADERS, TaskData, load_task
from regsearch.tasks.bundle import split_indices
from regsearch.tasks.idx import fetch_file, read_idx
from regsearch.tasks.sklearn_sets import three_way_split

SPLITS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


def assert_same(a: TaskData, b: TaskData) -> None:
    for key in SPLITS:
        assert torch.equal(getattr(a, key), getattr(b, key)), key


# --------------------------------------------------------------------------- shapes and kinds

# name, config, (n_train, n_val, n_test, n_features), kind, n_classes, n_outputs
SHAPES = [
    ("moons", MoonsTask(name="moons"), (150, 50, 100, 2), "classification", 2, 1),
    ("polynomial", PolynomialTask(name="polynomial"), (100, 100, 100, 20), "regression", 0, 1),
    (
        "highdim_linear",
        HighdimLinearTask(name="highdim_linear"),
        (20, 100, 100, 200),
        "regression",
        0,
        1,
    ),
    ("linear12", Linear12Task(name="linear12"), (500, 100, 100, 12), "regression", 0, 1),
    ("digits", SklearnTask(name="digits"), (1078, 360, 359, 64), "classification", 10, 10),
    (
        "breast_cancer",
        SklearnTask(name="breast_cancer"),
        (341, 114, 114, 30),
        "classification",
        2,
        1,
    ),
    ("wine", SklearnTask(name="wine"), (106, 36, 36, 13), "classification", 3, 3),
    ("diabetes", SklearnTask(name="diabetes"), (266, 88, 88, 10), "regression", 0, 1),
]


@pytest.mark.parametrize(
    ("name", "cfg", "sizes", "kind", "n_classes", "n_outputs"),
    SHAPES,
    ids=[row[0] for row in SHAPES],
)
def test_builtin_task_shapes_and_kinds(
    name: str,
    cfg: TaskConfig,
    sizes: tuple[int, int, int, int],
    kind: str,
    n_classes: int,
    n_outputs: int,
) -> None:
    data = load_task(cfg)
    n_train, n_val, n_test, d = sizes
    assert data.name == name and data.kind == kind
    assert (data.n_classes, data.n_outputs, data.n_features) == (n_classes, n_outputs, d)
    assert len(data.feature_names) == d
    for x, n in ((data.x_train, n_train), (data.x_val, n_val), (data.x_test, n_test)):
        assert x.shape == (n, d) and x.dtype == torch.float32
    for y, n in ((data.y_train, n_train), (data.y_val, n_val), (data.y_test, n_test)):
        if n_classes > 2:
            assert y.shape == (n,) and y.dtype == torch.int64
            assert int(y.min()) >= 0 and int(y.max()) < n_classes
        else:
            assert y.shape == (n, 1) and y.dtype == torch.float32
    if n_classes == 2:
        labels = torch.cat([data.y_train, data.y_val, data.y_test]).unique().tolist()
        assert labels == [0.0, 1.0]


def test_unknown_task_name_lists_allowed_names() -> None:
    with pytest.raises(ConfigError, match=r"task.name='nope'.*moons.*csv"):
        load_task(TaskConfig(name="nope"))


def test_every_task_schema_has_a_loader() -> None:
    """One registry: name → schema (config) → loader (tasks), every loader importable."""
    import importlib

    assert set(TASK_SCHEMAS.values()) == set(TASK_LOADERS)
    for module, function in TASK_LOADERS.values():
        assert callable(getattr(importlib.import_module(module), function)), function


def test_importing_the_tasks_leaves_the_loaders_unimported() -> None:
    code = "import sys, regsearch.tasks; print('sklearn.datasets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_config_of_wrong_schema_is_rejected() -> None:
    with pytest.raises(ConfigError, match="SklearnTask"):
        load_task(MoonsTask(name="wine"))


# --------------------------------------------------------------------------- determinism


@pytest.mark.parametrize(
    "cfg",
    [MoonsTask(name="moons"), SklearnTask(name="wine"), PolynomialTask(name="polynomial")],
    ids=["moons", "wine", "polynomial"],
)
def test_same_config_gives_identical_tensors(cfg: TaskConfig) -> None:
    assert_same(load_task(cfg), load_task(cfg))


def test_split_seed_changes_the_moons_split_but_not_its_test_set() -> None:
    a = load_task(MoonsTask(name="moons", split_seed=0))
    b = load_task(MoonsTask(name="moons", split_seed=1))
    assert not torch.equal(a.x_train, b.x_train)
    assert torch.equal(a.x_test, b.x_test)
    pool_a = torch.cat([a.x_train, a.x_val]).sort(dim=0).values
    pool_b = torch.cat([b.x_train, b.x_val]).sort(dim=0).values
    assert torch.equal(pool_a, pool_b)


def test_split_seed_changes_the_sklearn_split() -> None:
    a = load_task(SklearnTask(name="wine", split_seed=0))
    b = load_task(SklearnTask(name="wine", split_seed=1))
    assert a.x_test.shape == b.x_test.shape
    assert not torch.equal(a.y_test, b.y_test) or not torch.equal(a.x_test, b.x_test)


def test_three_way_split_partitions_the_rows() -> None:
    train, val, test = three_way_split(101, 0.2, 0.25, seed=3)
    assert (len(train), len(val), len(test)) == (61, 20, 20)
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(101))


# --------------------------------------------------------------------------- standardization


def test_standardization_uses_training_statistics_only() -> None:
    from sklearn.datasets import load_wine

    raw = load_wine().data
    data = load_task(SklearnTask(name="wine", split_seed=4))
    # The split, recomputed by hand: test first, then validation from the rest with seed + 1.
    rest, test = split_indices(len(raw), 0.2, 4)
    train, val = split_indices(len(rest), 0.25, 5)
    x_train, x_val, x_test = raw[rest[train]], raw[rest[val]], raw[test]
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    for got, want in ((data.x_train, x_train), (data.x_val, x_val), (data.x_test, x_test)):
        expected = torch.tensor((want - mean) / std, dtype=torch.float32)
        assert torch.allclose(got, expected, atol=1e-5)
    assert torch.allclose(data.x_train.mean(0), torch.zeros(13), atol=1e-5)
    assert torch.allclose(data.x_train.std(0, unbiased=False), torch.ones(13), atol=1e-5)
    assert data.x_val.mean(0).abs().max() > 1e-2  # val/test are not re-centred on themselves
    assert data.x_test.mean(0).abs().max() > 1e-2


def test_standardize_off_keeps_raw_features() -> None:
    from sklearn.datasets import load_diabetes

    raw = load_diabetes().data
    data = load_task(SklearnTask(name="diabetes", standardize=False))
    _, test = split_indices(len(raw), 0.2, 0)
    assert torch.allclose(data.x_test, torch.tensor(raw[test], dtype=torch.float32))


# --------------------------------------------------------------------------- synthetic data


def test_polynomial_true_coefficients_are_recovered_by_least_squares() -> None:
    data = load_task(PolynomialTask(name="polynomial", n_features=4))
    x = data.x_train.double().numpy()
    y = data.y_train.double().numpy().ravel()
    w, *_ = np.linalg.lstsq(x, y, rcond=None)
    np.testing.assert_allclose(w, [5.0, 1.2, -3.4, 5.6], atol=0.15)
    assert np.allclose(x[:, 0], 1.0)  # x^0/0!


def test_polynomial_feature_count_changes_only_the_inputs() -> None:
    small = load_task(PolynomialTask(name="polynomial", n_features=2))
    big = load_task(PolynomialTask(name="polynomial", n_features=20))
    assert torch.equal(small.y_train, big.y_train)
    assert torch.equal(small.x_train, big.x_train[:, :2])


def test_linear_generators_match_their_formulas() -> None:
    cfg = Linear12Task(name="linear12", noise_std=0.0, noise_mean=0.0)
    data = load_task(cfg)
    w = torch.tensor(cfg.weights)
    assert torch.allclose(data.x_train @ w + 0.6, data.y_train.ravel(), atol=1e-5)
    assert abs(float(data.x_train.mean()) - cfg.x_mean) < 0.1
    hd = load_task(HighdimLinearTask(name="highdim_linear", noise=0.0))
    assert torch.allclose(0.05 + 0.01 * hd.x_val.sum(1), hd.y_val.ravel(), atol=1e-5)


# --------------------------------------------------------------------------- IDX (MNIST-style)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write ``array`` (uint8) as an IDX file, gzipped when the name ends in .gz."""
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)


@pytest.fixture
def idx_dir(tmp_path: Path) -> Path:
    """40 training and 12 test 28x28 images: training files gzipped, test files plain."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "mnist"
    folder.mkdir()
    write_idx(folder / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (40, 28, 28)))
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.arange(40) % 10)
    write_idx(folder / "t10k-images-idx3-ubyte", rng.integers(0, 256, (12, 28, 28)))
    write_idx(folder / "t10k-labels-idx1-ubyte", np.arange(12) % 7)
    return folder


def test_idx_task_loads_gz_and_plain_files(idx_dir: Path) -> None:
    data = load_task(IdxTask(name="mnist", data_dir=str(idx_dir)))
    assert data.kind == "classification" and data.n_classes == 10 and data.n_outputs == 10
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (30, 10, 12)
    assert data.n_features == 784 and data.y_test.dtype == torch.int64
    assert float(data.x_train.min()) >= 0.0 and float(data.x_train.max()) <= 1.0
    # The test split is the whole t10k file in order, scaled to [0, 1].
    pixels = read_idx(idx_dir / "t10k-images-idx3-ubyte", 3).reshape(12, -1) / 255.0
    assert torch.allclose(data.x_test, torch.tensor(pixels, dtype=torch.float32))
    assert data.y_test.tolist() == [i % 7 for i in range(12)]


def test_idx_pixel_scales_and_subsets(idx_dir: Path) -> None:
    sym = load_task(IdxTask(name="fashion_mnist", data_dir=str(idx_dir), pixel_scale="symmetric"))
    assert float(sym.x_train.min()) >= -1.0 and float(sym.x_train.max()) <= 1.0
    assert float(sym.x_train.min()) < -0.9
    std = load_task(IdxTask(name="mnist", data_dir=str(idx_dir), pixel_scale="standardize"))
    assert torch.allclose(std.x_train.mean(0), torch.zeros(784), atol=1e-4)
    cfg = IdxTask(name="mnist", data_dir=str(idx_dir), n_train=20, n_test=5, split_seed=3)
    sub = load_task(cfg)
    assert (len(sub.x_train), len(sub.x_val), len(sub.x_test)) == (15, 5, 5)
    assert sub.n_classes == 10
    assert_same(sub, load_task(cfg))
    other = load_task(IdxTask(name="mnist", data_dir=str(idx_dir), n_train=20, split_seed=4))
    assert not torch.equal(sub.x_train, other.x_train)
    with pytest.raises(ConfigError, match=r"task.n_train=41"):
        load_task(IdxTask(name="mnist", data_dir=str(idx_dir), n_train=41))


def test_idx_missing_file_names_it_and_the_download_option(idx_dir: Path) -> None:
    (idx_dir / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(ConfigError, match=r"t10k-labels-idx1-ubyte.*task.download=true") as err:
        load_task(IdxTask(name="mnist", data_dir=str(idx_dir)))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte"])
def test_idx_truncated_file_is_a_config_error_naming_it(idx_dir: Path, name: str) -> None:
    path = idx_dir / name
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ConfigError, match=name) as err:
        load_task(IdxTask(name="mnist", data_dir=str(idx_dir)))
    assert "\n" not in str(err.value)


def test_idx_wrong_magic_number(tmp_path: Path) -> None:
    path = tmp_path / "labels"
    write_idx(path, np.zeros((3, 2)))  # a 2-d file where labels (1-d) are expected
    with pytest.raises(ConfigError, match="magic number 0x00000802, expected 0x00000801"):
        read_idx(path, 1)


def test_idx_file_size_must_match_its_header(tmp_path: Path) -> None:
    path = tmp_path / "images"
    write_idx(path, np.zeros((2, 3, 3)))
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ConfigError, match="trailing bytes"):
        read_idx(path, 3)


def test_fetch_file_verifies_md5_and_writes_atomically(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    payload = gzip.compress(b"idx bytes")
    (mirror / "f.gz").write_bytes(payload)
    md5 = hashlib.md5(payload).hexdigest()
    dest = tmp_path / "data"
    dead = (tmp_path / "nowhere").as_uri() + "/"
    got = fetch_file("f.gz", dest, [dead, mirror.as_uri() + "/"], md5)
    assert got == dest / "f.gz" and got.read_bytes() == payload
    with pytest.raises(ConfigError, match="MD5") as err:
        fetch_file("f.gz", tmp_path / "other", [mirror.as_uri() + "/"], "0" * 32)
    assert "\n" not in str(err.value)
    assert list((tmp_path / "other").iterdir()) == []  # no half or wrong file left behind
    with pytest.raises(ConfigError, match=r"could not fetch f.gz"):
        fetch_file("f.gz", tmp_path / "other", [dead], md5)


# --------------------------------------------------------------------------- csv / parquet


def table(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {
            "id": np.arange(n, dtype=float),
            "a": rng.normal(size=n),
            "city": rng.choice(["Oslo", "Paris", "Rome"], size=n),
            "label": rng.integers(0, 3, size=n),
            "price": rng.normal(100.0, 10.0, size=n),
        }
    )


def write_csv(tmp_path: Path, df: pd.DataFrame, name: str = "t.csv") -> str:
    path = tmp_path / name
    df.to_csv(path, index=False)
    return str(path)


def test_csv_auto_detects_classification_and_regression(tmp_path: Path) -> None:
    path = write_csv(tmp_path, table())
    cls = load_task(CsvTask(name="csv", path=path, target="label"))
    assert cls.kind == "classification" and cls.n_classes == 3 and cls.y_train.dtype == torch.int64
    reg = load_task(CsvTask(name="csv", path=path, target="price"))
    assert reg.kind == "regression" and reg.n_classes == 0 and reg.y_train.shape[1] == 1
    forced = load_task(CsvTask(name="csv", path=path, target="label", kind="regression"))
    assert forced.kind == "regression"
    assert (len(cls.x_train), len(cls.x_val), len(cls.x_test)) == (36, 12, 12)


def test_csv_text_target_maps_sorted_classes(tmp_path: Path) -> None:
    df = table().drop(columns=["label", "price"])
    df["answer"] = np.where(df["a"] > 0, "yes", "no")
    path = write_csv(tmp_path, df)
    data = load_task(CsvTask(name="csv", path=path, target="answer", standardize=False))
    assert data.kind == "classification" and data.n_classes == 2 and data.n_outputs == 1
    a = data.x_train[:, data.feature_names.index("a")]
    assert torch.equal((a > 0).float(), data.y_train.ravel())  # "no" -> 0, "yes" -> 1


def test_csv_bool_target_is_classification(tmp_path: Path) -> None:
    df = table()
    df["big"] = df["price"] > 100
    path = write_csv(tmp_path, df.drop(columns=["price"]))
    assert load_task(CsvTask(name="csv", path=path, target="big")).n_classes == 2


def test_csv_one_hot_encodes_text_columns(tmp_path: Path) -> None:
    df = table()
    cfg = CsvTask(name="csv", path=write_csv(tmp_path, df), target="price", standardize=False)
    data = load_task(cfg)
    assert data.feature_names == ["id", "a", "label", "city_Oslo", "city_Paris", "city_Rome"]
    onehot = data.x_train[:, 3:]
    assert torch.equal(onehot.sum(1), torch.ones(len(onehot)))
    ids = data.x_train[:, 0].long().numpy()
    cities = df["city"].to_numpy()[ids]
    assert [data.feature_names[3 + int(i)][5:] for i in onehot.argmax(1)] == cities.tolist()


def test_csv_impute_mean_uses_training_rows_only(tmp_path: Path) -> None:
    df = table()
    gaps = [1, 7, 20, 33, 45, 58]
    df.loc[gaps, "a"] = np.nan
    df.loc[3, "city"] = np.nan
    path = write_csv(tmp_path, df)
    cfg = CsvTask(name="csv", path=path, target="price", impute="mean", standardize=False)
    data = load_task(cfg)
    x = torch.cat([data.x_train, data.x_val, data.x_test]).double().numpy()
    train_ids = data.x_train[:, 0].long().numpy()
    train_mean = np.nanmean(df["a"].to_numpy()[train_ids])
    assert abs(train_mean - np.nanmean(df["a"].to_numpy())) > 1e-3  # the check can tell them apart
    filled = x[np.isin(x[:, 0], gaps), 1]
    np.testing.assert_allclose(filled, train_mean, rtol=1e-6)
    assert {x[i, 0] for i in range(len(x)) if np.isnan(x[i]).any()} == set()
    train_mode = df["city"].to_numpy()[train_ids]
    mode = pd.Series(train_mode).dropna().mode().iloc[0]
    row = x[x[:, 0] == 3][0]
    assert row[data.feature_names.index(f"city_{mode}")] == 1.0


def test_csv_missing_values_without_impute_name_the_column(tmp_path: Path) -> None:
    df = table()
    df.loc[[2, 5, 9], "a"] = np.nan
    path = write_csv(tmp_path, df)
    with pytest.raises(ConfigError, match=r"column 'a' has 3 missing values.*task.impute") as err:
        load_task(CsvTask(name="csv", path=path, target="price"))
    assert "\n" not in str(err.value)
    df.loc[4, "label"] = np.nan
    with pytest.raises(ConfigError, match=r"columns 'a' \(3\), 'label' \(1\)"):
        load_task(CsvTask(name="csv", path=write_csv(tmp_path, df), target="price"))


def test_csv_missing_target_column_lists_columns(tmp_path: Path) -> None:
    path = write_csv(tmp_path, table())
    with pytest.raises(ConfigError, match=r"task.target='y'.*'id', 'a', 'city', 'label', 'price'"):
        load_task(CsvTask(name="csv", path=path, target="y"))
    wide = pd.DataFrame({f"c{i}": [1.0, 2.0, 3.0] for i in range(40)})
    with pytest.raises(ConfigError, match=r"\+25 more"):
        load_task(CsvTask(name="csv", path=write_csv(tmp_path, wide, "w.csv"), target="y"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("", "empty file"),
        ("a,y\n", "empty file"),
    ],
)
def test_csv_bad_files(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "bad.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_task(CsvTask(name="csv", path=str(path), target="y"))


def test_csv_bad_targets(tmp_path: Path) -> None:
    df = table()
    df["const"] = 1
    path = write_csv(tmp_path, df)
    with pytest.raises(ConfigError, match="constant"):
        load_task(CsvTask(name="csv", path=path, target="const"))
    df.loc[[0, 1], "price"] = np.nan
    with pytest.raises(ConfigError, match=r"2 rows .* no target value"):
        load_task(CsvTask(name="csv", path=write_csv(tmp_path, df), target="price"))
    with pytest.raises(ConfigError, match="not numeric"):
        load_task(CsvTask(name="csv", path=path, target="city", kind="regression"))


def test_parquet_matches_csv(tmp_path: Path) -> None:
    df = table()
    parquet = tmp_path / "t.parquet"
    df.to_parquet(parquet)
    from_csv = load_task(CsvTask(name="csv", path=write_csv(tmp_path, df), target="label"))
    from_parquet = load_task(CsvTask(name="csv", path=str(parquet), target="label"))
    assert from_parquet.feature_names == from_csv.feature_names
    for key in SPLITS:
        assert torch.allclose(getattr(from_csv, key).double(), getattr(from_parquet, key).double())
    garbage = tmp_path / "g.parquet"
    garbage.write_bytes(b"not parquet at all")
    with pytest.raises(ConfigError, match="cannot read"):
        load_task(CsvTask(name="csv", path=str(garbage), target="label"))


def test_csv_split_is_deterministic_and_seeded(tmp_path: Path) -> None:
    path = write_csv(tmp_path, table())
    cfg = CsvTask(name="csv", path=path, target="price")
    assert_same(load_task(cfg), load_task(cfg))
    other = load_task(CsvTask(name="csv", path=path, target="price", split_seed=1))
    assert not torch.equal(load_task(cfg).y_test, other.y_test)


@pytest.mark.parametrize(("n", "noise", "seed"), [(100, 0.3, 0), (401, 0.2, 7), (50, 0.0, 3)])
def test_moons_points_are_sklearns(n: int, noise: float, seed: int) -> None:
    from sklearn.datasets import make_moons as sklearn_moons

    from regsearch.tasks.moons import make_moons

    x, y = make_moons(n, noise, seed)
    x_ref, y_ref = sklearn_moons(n_samples=n, noise=noise, random_state=seed)
    np.testing.assert_array_equal(x, x_ref)
    np.testing.assert_array_equal(y, y_ref)


# --------------------------------------------------------------------------- refused data


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("a,y,y", r"repeated column names 'y' \(2×\)"),
        ("a,a,y", r"repeated column names 'a' \(2×\)"),
        ("y,y,y", r"'y' \(3×\)"),
    ],
)
def test_csv_repeated_column_names_are_refused(tmp_path: Path, header: str, message: str) -> None:
    """pandas renames a repeated y to y.1: a copy of the target would become a feature."""
    path = tmp_path / "dup.csv"
    path.write_text(header + "\n" + "".join(f"{i},{i % 2},{i % 2}\n" for i in range(12)))
    with pytest.raises(ConfigError, match=message) as err:
        load_task(CsvTask(name="csv", path=str(path), target="y"))
    assert str(err.value).startswith(f"task.path={str(path)!r}")


def test_csv_repeated_names_in_a_compressed_file(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv.gz"
    with gzip.open(path, "wt") as f:
        f.write("a,y,y\n" + "".join(f"{i},{i % 2},{i % 2}\n" for i in range(12)))
    with pytest.raises(ConfigError, match="repeated column names 'y'"):
        load_task(CsvTask(name="csv", path=str(path), target="y"))


def test_csv_names_that_only_look_mangled_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "ok.csv"
    path.write_text("y.1,a,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(12)))
    assert load_task(CsvTask(name="csv", path=str(path), target="y")).n_features == 2


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        ({"a": [(3, "inf")]}, r"column 'a' \(1\)"),
        ({"a": [(3, "-inf"), (4, "inf")]}, r"column 'a' \(2\)"),
        ({"a": [(3, "1e300")]}, r"column 'a' \(1\)"),  # beyond float32: inf once a tensor
        ({"a": [(3, "inf")], "b": [(0, "-inf")]}, r"columns 'a' \(1\), 'b' \(1\)"),
    ],
)
def test_csv_infinite_cells_name_the_column(
    tmp_path: Path, cells: dict[str, list[tuple[int, str]]], message: str
) -> None:
    rows = [[str(i), str(i % 5), str(i % 2)] for i in range(20)]
    for col, changes in cells.items():
        for row, text in changes:
            rows[row]["ab".index(col)] = text
    path = tmp_path / "inf.csv"
    path.write_text("a,b,y\n" + "".join(",".join(r) + "\n" for r in rows))
    with pytest.raises(ConfigError, match=message) as err:
        load_task(CsvTask(name="csv", path=str(path), target="y", impute="mean"))
    assert "infinite" in str(err.value)


def test_csv_infinite_regression_target_is_refused(tmp_path: Path) -> None:
    df = table()
    df.loc[7, "price"] = np.inf
    with pytest.raises(ConfigError, match=r"task.target='price': 1 rows .* infinite"):
        load_task(CsvTask(name="csv", path=write_csv(tmp_path, df), target="price"))


def id_table(levels: int) -> pd.DataFrame:
    df = table(max(levels, 60))
    df["key"] = [f"row{i % levels}" for i in range(len(df))]
    return df


def test_csv_text_column_past_max_levels_is_refused(tmp_path: Path) -> None:
    # A different key in every row would be left out as an ID; task.features keeps it.
    path = write_csv(tmp_path, id_table(1200))
    with pytest.raises(
        ConfigError, match=r"task.max_levels=1000: text column 'key' has 1200.*task.drop=\[key\]"
    ):
        load_task(CsvTask(name="csv", path=path, target="price", features=["a", "key"]))
    with pytest.raises(ConfigError, match=r"task.max_levels=3: text column 'key' has 60"):
        load_task(
            CsvTask(
                name="csv",
                path=write_csv(tmp_path, id_table(60)),
                target="price",
                max_levels=3,
                features=["key"],
            )
        )


def test_csv_many_levels_warn_and_still_load(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    df = id_table(150)
    path = write_csv(tmp_path, df)
    keep = ["id", "a", "city", "label", "key"]  # a different key per row: an ID unless kept
    with caplog.at_level("WARNING", logger="regsearch.tasks.tabular"):
        data = load_task(CsvTask(name="csv", path=path, target="price", features=keep))
    train, _, _ = three_way_split(len(df), 0.2, 0.25, seed=0)
    train_keys = df["key"].iloc[train].nunique()  # one-hot features come from training rows
    assert train_keys < 150
    assert data.n_features == 3 + 3 + train_keys  # id, a, label; city one-hot; key one-hot
    assert any("'key' has 150 distinct values" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level("WARNING", logger="regsearch.tasks.tabular"):
        load_task(CsvTask(name="csv", path=write_csv(tmp_path, table()), target="price"))
    assert caplog.records == []


@pytest.mark.parametrize(
    ("test_fraction", "val_fraction", "message"),
    [
        (0.99, 0.25, r"the validation split is empty \(rows: training 1, validation 0, test 59\)"),
        (0.98, 0.5, r"the validation split is empty \(rows: training 1, validation 0, test 59\)"),
    ],
)
def test_csv_empty_split_is_refused_naming_it(
    tmp_path: Path, test_fraction: float, val_fraction: float, message: str
) -> None:
    path = write_csv(tmp_path, table())
    cfg = CsvTask(
        name="csv",
        path=path,
        target="price",
        test_fraction=test_fraction,
        val_fraction=val_fraction,
    )
    with pytest.raises(ConfigError, match=message) as err:
        load_task(cfg)
    assert "task.test_fraction" in str(err.value)


def test_one_class_training_split_is_refused() -> None:
    cfg = SklearnTask(name="wine", test_fraction=0.99)
    with pytest.raises(ConfigError, match=r"training split \(1 rows\) holds only class"):
        load_task(cfg)


def _splits(**sizes: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {
        p: (np.ones((n, 2)), np.arange(n) % 2)
        for p, n in {"train": 4, "val": 2, "test": 2, **sizes}.items()
    }


@pytest.mark.parametrize(
    ("splits", "kind", "message"),
    [
        (_splits(train=0), "regression", "the training split is empty"),
        (_splits(val=0), "classification", "the validation split is empty"),
        (_splits(test=0), "regression", "the test split is empty"),
        (_splits(train=1), "classification", "holds only class"),
        (
            {**_splits(), "val": (np.array([[1.0, np.nan], [0.0, 0.0]]), np.array([0, 1]))},
            "regression",
            "1 feature values of the validation split are not finite",
        ),
        (
            {**_splits(), "train": (np.full((4, 2), np.inf), np.array([0, 1, 0, 1]))},
            "classification",
            "8 feature values of the training split are not finite",
        ),
    ],
)
def test_make_bundle_refuses_unusable_splits(
    splits: dict[str, tuple[np.ndarray, np.ndarray]], kind: str, message: str
) -> None:
    from regsearch.tasks.bundle import make_bundle

    with pytest.raises(ConfigError, match=message):
        make_bundle("t", kind, splits, standardize=True)
