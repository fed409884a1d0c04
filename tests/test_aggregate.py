"""Statistics, micro/macro/weighted overalls, and infinite values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from iqeval.aggregate import percentile, summarize, summarize_run
from iqeval.errors import ConfigError
from iqeval.evaluate import ItemResult


def _item(id_: str, keys: dict[str, str], psnr: float, ok: bool = True) -> ItemResult:
    return ItemResult(
        id=id_,
        pred=id_,
        gt=id_,
        kind="image",
        keys=keys,
        metrics=("psnr",),
        scores={"psnr": psnr} if ok else {},
        frame_scores=np.empty((0, 1)),
        status="ok" if ok else "error",
        error=None if ok else "broken",
    )


def test_summary_matches_numpy():
    values = [30.0, 31.5, 28.25, 40.0, 33.0]
    s = summarize("psnr", values)
    assert (s.n, s.n_inf) == (5, 0)
    assert s.mean == pytest.approx(np.mean(values), abs=1e-12)
    assert s.std == pytest.approx(np.std(values), abs=1e-12)
    assert (s.min, s.max) == (28.25, 40.0)
    assert s.median == np.median(values)
    assert s.p05 == pytest.approx(np.percentile(values, 5), abs=1e-12)
    assert s.p95 == pytest.approx(np.percentile(values, 95), abs=1e-12)


def test_infinite_values_are_counted_not_dropped():
    s = summarize("psnr", [30.0, math.inf, 40.0, math.inf])
    assert s.n == 4 and s.n_inf == 2
    assert s.mean == math.inf
    assert math.isnan(s.std)
    assert s.max == math.inf and s.min == 30.0
    assert s.median == math.inf  # between 40 and inf
    assert s.mean_finite == 35.0 and s.std_finite == 5.0


def test_percentile_next_to_inf_is_not_nan():
    v = np.array([1.0, 2.0, math.inf])
    assert percentile(v, 100) == math.inf
    assert percentile(v, 50) == 2.0
    assert percentile(v, 75) == math.inf


def test_micro_macro_weighted():
    results = [
        _item("a/1", {"group": "a"}, 10.0),
        _item("a/2", {"group": "a"}, 20.0),
        _item("a/3", {"group": "a"}, 30.0),
        _item("b/1", {"group": "b"}, 40.0),
        _item("b/2", {"group": "b"}, 0.0, ok=False),
    ]
    s = summarize_run(results, ["psnr"], ["group"], weights={"group": {"a": 1.0, "b": 3.0}})
    assert s.micro["psnr"].mean == 25.0  # (10 + 20 + 30 + 40) / 4
    assert s.macro["group"]["psnr"] == 30.0  # (20 + 40) / 2
    assert s.weighted["group"]["psnr"] == (1 * 20 + 3 * 40) / 4
    a, b = s.groups["group"]
    assert (a.value, a.n_items, a.n_failed, b.n_items, b.n_failed) == ("a", 3, 0, 2, 1)
    assert (s.n_items, s.n_ok, s.n_failed) == (5, 4, 1)


def test_weights_must_cover_every_value():
    results = [_item("a/1", {"group": "a"}, 10.0), _item("b/1", {"group": "b"}, 20.0)]
    with pytest.raises(ConfigError, match="weights= gives no weight for group='b'"):
        summarize_run(results, ["psnr"], ["group"], weights={"group": {"a": 1.0}})


def test_items_outside_group_by_are_reported():
    results = [_item("s/o", {"scene": "s"}, 10.0), _item("loose", {}, 20.0)]
    s = summarize_run(results, ["psnr"], ["scene"])
    assert s.group_by_unmatched == ("loose",)
    assert s.micro["psnr"].n == 2
    assert [g.value for g in s.groups["scene"]] == ["s"]
