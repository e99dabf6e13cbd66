"""task=csv a user can steer: task.features/task.drop, ID-like columns, the data set's name,
the columns in the report, and regsearch.run on a DataFrame."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import regsearch
from regsearch.compose import compose_checked
from regsearch.config import ConfigError, CsvTask
from regsearch.tasks import TaskData, load_task
from regsearch.tasks.columns import id_like
from tests.conftest import TINY
from tests.test_cli_errors import assert_refused, assert_stores_untouched, run_cli


def titanic(n: int = 80) -> pd.DataFrame:
    """A Titanic-like table: a row id, free-text names, a categorical column with gaps."""
    rng = np.random.default_rng(0)
    sex = rng.choice(["male", "female"], n)
    return pd.DataFrame(
        {
            "PassengerId": np.arange(1, n + 1),
            "Name": [f"Passenger {i}, Mr. {chr(65 + i % 26)}" for i in range(n)],
            "Pclass": rng.integers(1, 4, n),
            "Sex": sex,
            "Embarked": rng.choice(np.array(["S", "C", "Q", None], dtype=object), n),
            "Age": np.where(rng.random(n) < 0.2, np.nan, rng.uniform(1, 80, n)).round(),
            "Fare": rng.uniform(5, 100, n).round(2),
            "Survived": ((sex == "female") ^ (rng.random(n) < 0.2)).astype(int),
        }
    )


@pytest.fixture
def titanic_csv(tmp_path: Path) -> Path:
    path = tmp_path / "titanic.csv"
    titanic().to_csv(path, index=False)
    return path


def composed(path: Path, *overrides: str) -> CsvTask:
    """The task as the command line would run it (real Hydra composition and validation)."""
    args = ["+sweep=l2", "task=csv", f"task.path='{path}'", "task.target=Survived"]
    typed, _ = compose_checked([*args, "task.impute=median", *overrides], check_files=True)
    assert isinstance(typed.task, CsvTask)
    return typed.task


def loaded(path: Path, *overrides: str) -> TaskData:
    return load_task(composed(path, *overrides))


# --------------------------------------------------------------------------- features / drop


def test_drop_removes_columns_and_features_keeps_only_its_own(titanic_csv: Path) -> None:
    data = loaded(titanic_csv, "task.drop=[Fare]")
    assert data.feature_names == [
        "Pclass",
        "Age",
        "Sex_female",
        "Sex_male",
        "Embarked_C",
        "Embarked_Q",
        "Embarked_S",
    ]
    only = loaded(titanic_csv, "task.features=[Sex,Fare]")
    assert only.feature_names == ["Fare", "Sex_female", "Sex_male"]
    assert only.table is not None
    left_out = {c.name for c in only.table.left_out}
    assert left_out == {"PassengerId", "Name", "Pclass", "Embarked", "Age"}
    assert {c.why for c in only.table.left_out} == {"not in task.features"}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "task.drop=[Nmae]",
            r"^task\.drop=\['Nmae'\]: no column 'Nmae' in '.*titanic\.csv'; columns: "
            r"'PassengerId', 'Name', 'Pclass', 'Sex', 'Embarked', 'Age', 'Fare', 'Survived'$",
        ),
        (
            "task.features=[Sex,age]",
            r"^task\.features=\['Sex', 'age'\]: no column 'age' in .*columns: 'PassengerId'",
        ),
        ("task.drop=[Survived]", r"^task\.drop=\['Survived'\]: 'Survived' is the target"),
        ("task.features=[Sex,Survived]", r"^task\.features=.*'Survived' is the target"),
    ],
)
def test_a_bad_column_name_is_one_line_naming_key_value_and_columns(
    titanic_csv: Path, override: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        loaded(titanic_csv, override)
    assert "\n" not in str(err.value)


def test_a_column_in_both_lists_is_refused(titanic_csv: Path) -> None:
    both = r"^task\.drop=\['Age'\]: 'Age' is also in task\.features"
    with pytest.raises(ConfigError, match=both):
        loaded(titanic_csv, "task.drop=[Age]", "task.features=[Age,Sex]")


def test_the_cli_refuses_an_unknown_column_with_exit_2_before_writing(titanic_csv: Path) -> None:
    root = titanic_csv.parent / "sweeps"
    args = ["+sweep=l2", "task=csv", f"task.path={titanic_csv}", "task.target=Survived"]
    proc = run_cli(titanic_csv.parent, *args, "task.drop=[Cabin]", f"paths.root={root}")
    assert_refused(proc, "task.drop=['Cabin']: no column 'Cabin'")
    assert_stores_untouched(root)
    assert not root.exists()


# --------------------------------------------------------------------------- ID-like columns


def test_id_like_columns_are_left_out_with_one_log_line(
    titanic_csv: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="regsearch.tasks"):
        data = loaded(titanic_csv)
    assert data.table is not None
    assert [(c.name, c.why) for c in data.table.left_out] == [
        ("PassengerId", "looks like a row id (unique integers)"),
        ("Name", "looks like an ID or free text (a different value in every row)"),
    ]
    assert not any(n.startswith(("PassengerId", "Name")) for n in data.feature_names)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "column 'PassengerId' looks like a row id (unique integers) and is left out" in lines[0]
    assert "keep it with task.features=[PassengerId,Pclass,Sex,Embarked,Age,Fare]" in lines[0]


def test_features_keeps_an_id_like_column_it_names(titanic_csv: Path) -> None:
    data = loaded(titanic_csv, "task.features=[PassengerId,Sex]")
    assert data.feature_names == ["PassengerId", "Sex_female", "Sex_male"]


@pytest.mark.parametrize(
    ("values", "why"),
    [
        (np.arange(30), "row id"),  # 0..n-1
        (np.arange(1, 31)[::-1], "row id"),  # n..1
        (np.random.default_rng(0).permutation(np.arange(100, 130)), "row id"),  # shuffled run
        (np.arange(0, 300, 10), "row id"),  # sorted in file order
        (np.random.default_rng(0).choice(10_000, 30, replace=False), None),  # measured values
        (np.arange(19), None),  # too few rows to tell
        (np.arange(30) % 29, None),  # a repeat
        (np.arange(30) + 0.5, None),  # not integers
        ([f"id-{i}" for i in range(30)], "free text"),
        ([f"id-{i % 29}" for i in range(30)], None),
    ],
)
def test_id_like(values: object, why: str | None) -> None:
    found = id_like(pd.Series(values))
    assert (found is None) if why is None else (why in str(found))


# --------------------------------------------------------------------------- the files


def test_the_old_id_column_error_now_points_at_task_drop(tmp_path: Path) -> None:
    """A text column with many (repeated) values is still refused, naming task.drop."""
    path = tmp_path / "codes.csv"
    frame = titanic(1200).assign(Code=[f"c{i % 1100}" for i in range(1200)])
    frame.to_csv(path, index=False)
    with pytest.raises(ConfigError, match=r"'Code' has 1100 .*task\.drop=\[Code\]"):
        loaded(path)
    assert "Code_c1" not in loaded(path, "task.drop=[Code]").feature_names


# --------------------------------------------------------------------------- the data set's name


@pytest.mark.parametrize(
    ("file", "overrides", "name"),
    [
        ("titanic.csv", [], "titanic"),
        ("Titanic train (v2).csv.gz", [], "Titanic_train_v2"),
        ("wine.csv", [], "wine_csv"),  # not the built-in wine task's folder and studies
        ("titanic.csv", ["task.name=titanic-2024"], "titanic-2024"),
    ],
)
def test_the_data_set_is_named_by_task_name_or_the_file(
    tmp_path: Path, file: str, overrides: list[str], name: str
) -> None:
    path = tmp_path / file
    titanic().to_csv(path, index=False)
    task = composed(path, *overrides)
    assert load_task(task).name == name


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("task.name=wine", r"^task\.name='wine': a built-in task's name.*task\.name=wine_csv"),
        ("task.name='my data'", r"^task\.name='my data': .*letters, digits, _ and - only"),
    ],
)
def test_a_bad_data_set_name_is_refused(titanic_csv: Path, override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        loaded(titanic_csv, override)


def test_a_misspelt_task_name_is_still_unknown() -> None:
    with pytest.raises(ConfigError, match=r"^task\.name='wnie': unknown task; allowed: moons"):
        compose_checked(["+sweep=l2", "task=wine", "task.name=wnie"])


# --------------------------------------------------------------------------- a sweep and its report

SWEEP = [*TINY, "search.n_trials=2", "search.cv=0", "sweep.final_seeds=2", "task.impute=median"]


def test_a_named_table_names_title_folder_and_experiment_and_the_report_lists_its_columns(
    titanic_csv: Path, tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    root = tmp_path / "sweeps"
    table = ["task=csv", f"task.path={titanic_csv}", "task.target=Survived", "task.drop=[Fare]"]
    result = regsearch.run("+sweep=l2", *table, *SWEEP, "task.name=titanic", root=root)
    assert result.run_dir.parent == root / "l2-titanic"
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["title"] == "l2 on titanic" and summary["task"] == "titanic"
    experiment = MlflowClient(summary["mlflow"]["uri"]).get_experiment_by_name("titanic")
    assert experiment is not None
    assert experiment.experiment_id == summary["mlflow"]["experiment_id"]
    data = summary["data"]
    assert data["rows"] == 80
    inputs = {c["name"]: (c["kind"], c["width"], c["imputed"]) for c in data["inputs"]}
    n_missing = titanic().isna().sum()
    assert inputs == {
        "Pclass": ("number", 1, 0),
        "Age": ("number", 1, n_missing["Age"]),
        "Sex": ("text", 2, 0),
        "Embarked": ("text", 3, n_missing["Embarked"]),
    }
    assert [c["name"] for c in data["left_out"]] == ["Fare", "PassengerId", "Name"]
    page = (result.run_dir / "report.html").read_text()
    assert "<h1>l2 on titanic" in page or "l2 on titanic</" in page
    setup = page.split('<section id="setup">', 1)[1].split("</section>", 1)[0]
    assert (
        "<dt>model inputs</dt><dd>7 from 4 columns: Pclass → 1, Age → 1, Sex → 2 (one-hot)" in setup
    )
    assert f"<dt>imputed cells</dt><dd>Age {n_missing['Age']}, Embarked" in setup
    assert (
        "<dt>columns left out</dt><dd>Fare (task.drop), PassengerId (looks like a row id" in setup
    )


def test_an_unnamed_table_takes_the_file_stem(titanic_csv: Path, tmp_path: Path) -> None:
    table = ["task=csv", f"task.path={titanic_csv}", "task.target=Survived", "tracking=none"]
    result = regsearch.run("+sweep=l2", *table, *SWEEP, root=tmp_path / "sweeps")
    assert result.run_dir.parent == tmp_path / "sweeps" / "l2-titanic"
    assert result.summary["title"] == "l2 on titanic"


# --------------------------------------------------------------------------- regsearch.run(data=df)


def test_run_on_a_dataframe_stores_it_and_sweeps_it(tmp_path: Path) -> None:
    frame = titanic()
    result = regsearch.run(
        "+sweep=l2",
        *SWEEP,
        "tracking=none",
        "task.name=titanic",
        data=frame,
        target="Survived",
        root=tmp_path,
    )
    assert result.run_dir.parent == tmp_path / "l2-titanic"
    (stored,) = (tmp_path / "data").iterdir()
    assert stored.name.startswith("titanic-") and stored.suffix == ".parquet"
    pd.testing.assert_frame_equal(pd.read_parquet(stored), frame)
    config = (result.run_dir / "config.yaml").read_text()
    assert f"path: {stored}" in config and "target: Survived" in config
    assert [c["name"] for c in result.summary["data"]["left_out"]] == ["PassengerId", "Name"]


def test_a_dataframe_without_a_name_is_the_dataframe_task(tmp_path: Path) -> None:
    from regsearch.frames import stored_frame

    frame = titanic().rename(columns={"Survived": "did survive"})
    args = ["+sweep=l2", f"paths.root={tmp_path}", "task.impute=mean"]
    with stored_frame(frame, "did survive", args) as composed_args:
        typed, _ = compose_checked(composed_args)
    assert isinstance(typed.task, CsvTask) and typed.task.target == "did survive"
    assert load_task(typed.task).name == "dataframe"
    with stored_frame(frame.copy(), "did survive", args):  # the same rows: the same file
        pass
    with stored_frame(frame.head(60), "did survive", args):
        pass
    assert len(list((tmp_path / "data").iterdir())) == 2


@pytest.mark.parametrize(
    ("overrides", "target", "message"),
    [
        ([], "survived", r"^target='survived': no such column in the DataFrame; "),
        ([], None, r"^data: name the column to predict with target=<column>"),
        (["task=wine"], "Survived", r"^task=wine: data= is the table of this run"),
        (["search.n_trials=0"], "Survived", r"^search\.n_trials=0: "),
        (["task.drop=[Cabin]"], "Survived", r"^task\.drop=\['Cabin'\]: no column 'Cabin'"),  # load
    ],
)
def test_a_refused_dataframe_run_writes_nothing(
    tmp_path: Path, overrides: list[str], target: str | None, message: str
) -> None:
    args = ["+sweep=l2", *SWEEP, "tracking=none", *overrides]
    with pytest.raises(ConfigError, match=message):
        regsearch.run(*args, root=tmp_path, data=titanic(), target=target)
    assert list(tmp_path.iterdir()) == []
