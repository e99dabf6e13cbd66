"""CSV/Parquet preprocessing learns from the training rows only: categories, fills, scaling."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from regsearch.config import CsvTask
from regsearch.tasks import load_task
from regsearch.tasks.sklearn_sets import split_rows


def table(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(2)
    return pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "city": rng.choice(["Oslo", "Paris", "Rome"], size=n),
            "price": rng.normal(100.0, 10.0, size=n),
        }
    )


def csv_task(tmp_path: Path, df: pd.DataFrame, name: str = "t.csv", **kw: object) -> CsvTask:
    path = tmp_path / name
    df.to_csv(path, index=False)
    return CsvTask(name="csv", path=str(path), target="price", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("part", ["val", "test"])
@pytest.mark.parametrize("standardize", [True, False])
def test_a_category_outside_the_training_rows_adds_no_feature(
    tmp_path: Path, part: str, standardize: bool
) -> None:
    df = table()
    rows = split_rows(CsvTask(), len(df))
    unseen = df.copy()
    unseen.loc[rows[part][:2], "city"] = "Tromsø"  # only in this split's rows
    plain = load_task(csv_task(tmp_path, df, "plain.csv", standardize=standardize))
    other = load_task(csv_task(tmp_path, unseen, "unseen.csv", standardize=standardize))
    assert (
        other.feature_names == plain.feature_names == ["a", "city_Oslo", "city_Paris", "city_Rome"]
    )
    assert torch.equal(other.x_train, plain.x_train)
    x_part = getattr(other, f"x_{part}")
    assert x_part.shape[1] == plain.x_train.shape[1]
    if not standardize:  # the unseen category's rows are all zeros in the city block
        assert torch.equal(x_part[:2, 1:], torch.zeros(2, 3))


def test_a_category_only_in_the_training_rows_keeps_its_column(tmp_path: Path) -> None:
    df = table()
    rows = split_rows(CsvTask(), len(df))
    df.loc[rows["train"][:1], "city"] = "Bergen"
    data = load_task(csv_task(tmp_path, df, standardize=False))
    assert "city_Bergen" in data.feature_names
    column = data.feature_names.index("city_Bergen")
    assert float(data.x_train[:, column].sum()) == 1.0
    assert float(data.x_val[:, column].abs().sum() + data.x_test[:, column].abs().sum()) == 0.0


def test_standardized_features_use_training_rows_and_folds_restandardize(tmp_path: Path) -> None:
    data = load_task(csv_task(tmp_path, table()))
    assert data.standardized
    assert torch.allclose(data.x_train.mean(0), torch.zeros(4), atol=1e-5)
    assert torch.allclose(data.x_train.std(0, unbiased=False), torch.ones(4), atol=1e-5)
    view = dataclasses.replace(data, folds=3).member_data(0, seed=1)
    assert torch.allclose(view.x_train.mean(0), torch.zeros(4), atol=1e-5)  # the fold's rows
    raw = load_task(csv_task(tmp_path, table(), "raw.csv", standardize=False))
    raw_view = dataclasses.replace(raw, folds=3).member_data(0, seed=1)
    pool = torch.cat([raw.x_train, raw.x_val])
    assert all(any(torch.equal(r, p) for p in pool) for r in raw_view.x_train)  # untouched


def test_parquet_text_gaps_are_filled_with_the_training_mode(tmp_path: Path) -> None:
    df = table()
    rows = split_rows(CsvTask(), len(df))
    df["city"] = df["city"].astype(object)
    df.loc[rows["test"][0], "city"] = None  # None, not nan: Parquet's missing text
    df.loc[rows["val"][0], "a"] = np.nan
    path = tmp_path / "t.parquet"
    df.to_parquet(path)
    cfg = CsvTask(name="csv", path=str(path), target="price", impute="median", standardize=False)
    data = load_task(cfg)
    mode = df["city"].iloc[rows["train"]].mode().iloc[0]
    row = data.x_test[0]
    assert float(row[data.feature_names.index(f"city_{mode}")]) == 1.0
    median = float(np.median(df["a"].iloc[rows["train"]]))
    assert float(data.x_val[0, 0]) == pytest.approx(median, rel=1e-6)
