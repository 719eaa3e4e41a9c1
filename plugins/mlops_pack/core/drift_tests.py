"""The per-column drift tests as Evidently 0.7.23 runs them, computed from a reference profile and the
current data's streamed statistics (``drift_profile.CurrentStats``): which method Evidently would pick
for a column (``default_method``) and each method's score. drift_profile.py explains the profile and
why each score is exact; tests/unit/test_drift_profile.py compares every method with Evidently.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

SMALL_ROWS = 1000  # Evidently: reference rows <= 1000 -> statistical tests; above -> distances
FEW_VALUES = 5  # Evidently: <= 5 distinct values -> treated by value counts

def _wasserstein_norm(ref: dict[str, Any], st: dict[str, Any]) -> float:
    import numpy as np

    edges = np.asarray(ref["edges"], dtype="float64")
    n_r, n_c = ref["n"], st["n"]
    c_r, g_r = np.asarray(ref["counts"], dtype="float64"), np.asarray(ref["gaps"], dtype="float64")
    c_c, g_c = st["count"], st["gap"]
    f_r = np.concatenate([[0.0], np.cumsum(c_r)[:-1]]) / n_r  # F at each bin's lower edge
    f_c = np.concatenate([[0.0], np.cumsum(c_c)[:-1]]) / n_c
    width = np.diff(edges)
    inner = width * (f_r[1:-1] - f_c[1:-1]) + g_r[1:-1] / n_r - g_c[1:-1] / n_c
    w1 = float(np.abs(inner).sum() + g_c[0] / n_c + g_c[-1] / n_c)  # tails: the reference has no mass there
    return w1 / max(float(ref["std"]), 0.001)


def _ks_p_value(ref: dict[str, Any], st: dict[str, Any]) -> float:
    import numpy as np

    points, sample = st["ks_points"], np.asarray(ref["sample"], dtype="float64")
    n1, n2 = len(sample), st["n"]
    cdf_r = np.searchsorted(sample, points, side="right") / n1
    lt, le = np.cumsum(st["lt"])[:-1] / n2, np.cumsum(st["le"])[:-1] / n2
    # F_ref is constant on [p_j, p_j+1): |F_ref - F_cur| peaks at either end of each such interval.
    d = max(float(np.abs(cdf_r - le).max()), float(np.abs(cdf_r[:-1] - lt[1:]).max(initial=0)),
            float(lt[0]), float(1 - le[-1]))
    return _ks_2samp_p(n1, n2, d)


def _ks_2samp_p(n1: int, n2: int, d: float) -> float:
    """scipy.stats.ks_2samp's two-sided p-value (method 'auto') from the statistic and sample sizes."""
    import numpy as np
    from scipy.stats import distributions

    try:
        from scipy.stats._stats_py import _attempt_exact_2kssamp
    except ImportError:  # pragma: no cover - scipy moved its internals: asymptotic p-value
        _attempt_exact_2kssamp = None
    if max(n1, n2) <= 10_000 and _attempt_exact_2kssamp is not None:  # ks_2samp's MAX_AUTO_N
        ok, _, prob = _attempt_exact_2kssamp(n1, n2, math.gcd(n1, n2), d, "two-sided")
        if ok:
            return float(np.clip(prob, 0, 1))
    m, n = sorted([float(n1), float(n2)], reverse=True)
    return float(np.clip(distributions.kstwo.sf(d, np.round(m * n / (m + n))), 0, 1))


def _counts(ref: dict[str, Any], st: dict[str, Any]) -> tuple[dict[Any, int], dict[Any, int]]:
    if ref["type"] == "categorical":
        return {v: c for v, c in ref["counts"]}, st["counts"]
    return {v: c for v, c in ref["values"]}, st["values"]


def _chisquare_p(ref_counts: dict[Any, int], cur_counts: dict[Any, int]) -> float:
    import numpy as np
    from scipy.stats import chisquare

    keys = list(set(ref_counts) | set(cur_counts))
    n_r, n_c = sum(ref_counts.values()), sum(cur_counts.values())
    f_exp = [ref_counts.get(k, 0) * (n_c / n_r) for k in keys]
    with np.errstate(divide="ignore"):  # a category new in current: p = 0, as in Evidently
        return float(chisquare([cur_counts.get(k, 0) for k in keys], f_exp)[1])


def _z_p(ref_counts: dict[Any, int], cur_counts: dict[Any, int]) -> float:
    import numpy as np
    from scipy.stats import norm

    keys = sorted(set(ref_counts) | set(cur_counts))
    if len(ref_counts) == 1 and len(cur_counts) == 1 and keys == list(ref_counts):
        return 1.0
    n1, n2 = sum(ref_counts.values()), sum(cur_counts.values())
    p1, p2 = (n1 - ref_counts.get(keys[0], 0)) / n1, (n2 - cur_counts.get(keys[0], 0)) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.float64(p1 - p2) / np.sqrt(np.float64(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2)))
    return float(2 * (1 - norm.cdf(np.abs(z))))


def _jensenshannon(ref_counts: dict[Any, int], cur_counts: dict[Any, int]) -> float:
    """scipy.spatial.distance.jensenshannon (base e) of the two frequency vectors, in numpy: importing
    scipy.spatial costs more than the whole computation."""
    import numpy as np

    keys = list(set(ref_counts) | set(cur_counts))
    n_r, n_c = sum(ref_counts.values()), sum(cur_counts.values())
    p = np.array([ref_counts.get(k, 0) / n_r for k in keys])
    q = np.array([cur_counts.get(k, 0) / n_c for k in keys])
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2.0

    def rel_entr(x: np.ndarray) -> float:
        nz = x > 0
        return float((x[nz] * np.log(x[nz] / m[nz])).sum())

    return float(np.sqrt(max(rel_entr(p) + rel_entr(q), 0.0) / 2.0))


def default_method(ref: dict[str, Any], st: dict[str, Any]) -> str:
    """Evidently 0.7.23's ``_get_default_stattest`` for this column."""
    if ref["type"] == "categorical":
        k = len(set(v for v, _ in ref["counts"]) | set(st["counts"]))
        return "jensenshannon" if ref["n"] > SMALL_ROWS else ("chisquare" if k > 2 else "z")
    few = ref["distinct"] <= FEW_VALUES and len(set(v for v, _ in ref["values"]) | set(st["values"])) <= FEW_VALUES
    if ref["n"] > SMALL_ROWS:
        return "jensenshannon" if few else "wasserstein"
    if few:
        k = len(set(v for v, _ in ref["values"]) | set(st["values"]))
        return "chisquare" if k > 2 else "z"
    return "ks"


def score(method: str, ref: dict[str, Any], st: dict[str, Any]) -> float:
    if method == "wasserstein":
        if ref["type"] != "numeric":
            raise ValueError("wasserstein needs a numeric column")
        return _wasserstein_norm(ref, st)
    if method == "ks":
        if "sample" not in ref:
            raise ValueError("ks from a profile needs a reference of <= 1000 rows (the profile keeps it whole)")
        return _ks_p_value(ref, st)
    if ref["type"] == "numeric" and (ref.get("values") is None or st["values"] is None
                                     or len(set(v for v, _ in ref["values"]) | set(st["values"])) > FEW_VALUES):
        raise ValueError(f"{method} on a numeric column needs <= {FEW_VALUES} distinct values")
    fn = {"chisquare": _chisquare_p, "z": _z_p, "jensenshannon": _jensenshannon}[method]
    return fn(*_counts(ref, st))
