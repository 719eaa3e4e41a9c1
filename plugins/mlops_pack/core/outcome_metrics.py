"""Realized metrics from streamed rows: sufficient statistics per block, values and bootstrap intervals.

Used by core/outcomes.py, which feeds each (prediction partition, model version) its joined rows one
bucket at a time. Nothing row-sized is kept: each group holds, per bootstrap block, only sums:

- classification: the confusion counts (accuracy, balanced_accuracy, f1 as core/metrics.py defines
  them); with class probabilities also the summed log-loss and Brier terms, per class and
  calibration bin the summed probability and outcome (ECE), and per class a score histogram of the
  positives and negatives (ROC AUC);
- regression: count, summed squared and absolute errors, summed (shifted) target and its square.

Calibration metrics, added when the predictions carry ``proba_<class>`` columns:

- ``brier_score``: scikit-learn's ``brier_score_loss`` (binary: mean squared error of the positive
  class probability; multiclass: summed over classes);
- ``ece``: expected calibration error over ``calibration_bins`` equal-width bins, binned as
  scikit-learn's ``calibration_curve(strategy="uniform")``: the weighted mean of |observed frequency -
  mean probability|; binary: of the positive (second) class, multiclass: the mean over classes
  one-vs-rest.

ROC AUC comes from a 65,536-bin score histogram per class (a positive and a negative in one bin count
as a tie), so it is within a tie's share of scikit-learn's exact value; multiclass: one-vs-rest,
macro-averaged over the classes that have positives and negatives among the labelled rows.

Bootstrap (the choice): a row is assigned to one of ``BLOCKS`` blocks by its key's hash, so blocks are
independent random subsets of the rows. A replicate draws a Poisson(1) weight per block and sums the
blocks' statistics with those weights (a Poisson bootstrap over hash blocks). With few labelled rows
nearly every row has a block of its own, which is the ordinary Poisson row bootstrap; with millions,
each block is a large random subsample and resampling blocks resamples their means, which is what the
row bootstrap's interval measures. Cost: replicates x blocks x statistics, independent of the rows.
Seeded; percentile interval at ``confidence``. AUC intervals come from 256-bin block histograms,
shifted by the fine histogram's point value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

BLOCKS = 128
AUC_BINS = 1 << 16
AUC_BLOCK_BINS = 256
LAG_SAMPLE = 100_000
PROBA_FLOOR = 1e-15
CALIBRATION = {"brier_score": "lower", "ece": "lower"}


class GroupStats:
    """Sufficient statistics of one group's labelled rows, fed batch by batch."""

    def __init__(self, task: str, proba_classes: list[int] | None, calibration_bins: int):
        import numpy as np

        self.task, self.bins, self.labelled = task, calibration_bins, 0
        self.proba_classes = proba_classes  # global class codes of the proba columns, in column order
        self._lags: list[np.ndarray] = []  # (priority, lag) pairs: a bounded uniform sample by key hash
        if task == "regression":
            self.sums = np.zeros((BLOCKS, 5))  # n, squared errors, absolute errors, y - shift, (y - shift)^2
            self.shift: float | None = None
            return
        self.confusion = np.zeros((BLOCKS, 0, 0))
        if proba_classes:
            c = len(proba_classes)
            self.auc_classes = [1] if c == 2 else list(range(c))
            self.losses = np.zeros((BLOCKS, 2))  # log-loss, Brier
            self.calibration = np.zeros((BLOCKS, c, calibration_bins, 2))  # summed probability, summed outcome
            self.auc_fine = np.zeros((len(self.auc_classes), 2, AUC_BINS))
            self.auc_blocks = np.zeros((BLOCKS, len(self.auc_classes), 2, AUC_BLOCK_BINS))

    def add(self, truth: np.ndarray, pred: np.ndarray, proba: np.ndarray | None, block: np.ndarray,
            lag: np.ndarray | None, priority: np.ndarray) -> None:
        """Rows of this group with their label: ``truth`` and ``pred`` are class codes or values."""
        import numpy as np

        self.labelled += len(truth)
        if lag is not None:
            timed = np.isfinite(lag)  # a label without a time gives no lag
            if timed.any():
                self._sample_lags(np.stack([priority[timed].astype(float), lag[timed]]))
        if self.task == "regression":
            self._add_regression(truth.astype(float), pred.astype(float), block)
            return
        self._add_confusion(truth, pred, block)
        if self.proba_classes and proba is not None:
            self._add_proba(truth, proba, block)

    def _add_regression(self, y, p, block) -> None:
        import numpy as np

        if self.shift is None:
            self.shift = float(y.mean()) if len(y) else 0.0  # shifted sums keep r2 exact for large targets
        err, ys = y - p, y - self.shift
        for i, values in enumerate((np.ones_like(y), err * err, np.abs(err), ys, ys * ys)):
            self.sums[:, i] += np.bincount(block, weights=values, minlength=BLOCKS)

    def _add_confusion(self, truth, pred, block) -> None:
        import numpy as np

        need = int(max(truth.max(initial=-1), pred.max(initial=-1))) + 1
        cap = self.confusion.shape[1]
        if need > cap:
            grown = np.zeros((BLOCKS, need, need))
            grown[:, :cap, :cap] = self.confusion
            self.confusion, cap = grown, need
        cells = (block.astype(np.int64) * cap + truth) * cap + pred
        self.confusion += np.bincount(cells, minlength=BLOCKS * cap * cap).reshape(BLOCKS, cap, cap)

    def _add_proba(self, truth, proba, block) -> None:
        import numpy as np

        n, c = proba.shape
        column = np.full(max(self.confusion.shape[1], max(self.proba_classes) + 1), -1)
        column[self.proba_classes] = np.arange(c)
        col = column[truth] if len(truth) else np.zeros(0, dtype=int)
        onehot = np.zeros((n, c))
        known = col >= 0
        onehot[np.flatnonzero(known), col[known]] = 1.0
        p_true = np.where(known, proba[np.arange(n), np.maximum(col, 0)], 0.0)
        logloss = -np.log(np.clip(p_true, PROBA_FLOOR, 1.0))
        brier = ((proba - onehot) ** 2).sum(axis=1)
        self.losses[:, 0] += np.bincount(block, weights=logloss, minlength=BLOCKS)
        self.losses[:, 1] += np.bincount(block, weights=brier, minlength=BLOCKS)
        edges = np.linspace(0.0, 1.0, self.bins + 1)[1:-1]
        for j in range(c):  # binned as sklearn's calibration_curve: searchsorted on the inner edges
            cells = block.astype(np.int64) * self.bins + np.searchsorted(edges, proba[:, j])
            for k, values in enumerate((proba[:, j], onehot[:, j])):
                self.calibration[:, j, :, k] += np.bincount(cells, weights=values,
                                                            minlength=BLOCKS * self.bins).reshape(BLOCKS, self.bins)
        for i, j in enumerate(self.auc_classes):
            positive = onehot[:, j].astype(np.int64)
            fine = np.minimum((proba[:, j] * AUC_BINS).astype(np.int64), AUC_BINS - 1)
            self.auc_fine[i] += np.bincount((1 - positive) * AUC_BINS + fine, minlength=2 * AUC_BINS).reshape(2, -1)
            coarse = fine // (AUC_BINS // AUC_BLOCK_BINS)
            cells = (block.astype(np.int64) * 2 + 1 - positive) * AUC_BLOCK_BINS + coarse
            self.auc_blocks[:, i] += np.bincount(cells, minlength=BLOCKS * 2 * AUC_BLOCK_BINS).reshape(
                BLOCKS, 2, AUC_BLOCK_BINS)

    def _sample_lags(self, pairs) -> None:
        import numpy as np

        self._lags.append(pairs)
        if sum(p.shape[1] for p in self._lags) > 2 * LAG_SAMPLE:
            merged = np.concatenate(self._lags, axis=1)
            keep = np.argpartition(merged[0], LAG_SAMPLE)[:LAG_SAMPLE]  # smallest hash priorities: uniform
            self._lags = [merged[:, keep]]

    def lag_summary(self) -> dict[str, float] | None:
        """Median and 90th percentile of label time - prediction time, in seconds (None: no times)."""
        import numpy as np

        if not self._lags:
            return None
        merged = np.concatenate(self._lags, axis=1)
        if merged.shape[1] > LAG_SAMPLE:
            merged = merged[:, np.argpartition(merged[0], LAG_SAMPLE)[:LAG_SAMPLE]]
        median, p90 = np.quantile(merged[1], [0.5, 0.9])
        return {"median": float(median), "p90": float(p90)}

    def available(self, metrics: list[str]) -> tuple[list[str], list[str]]:
        """(metrics this group can compute, requested ones needing probabilities it lacks)."""
        from mlops_pack.core.metrics import METRICS

        has_proba = bool(self.task == "classification" and self.proba_classes)
        wanted = [m for m in metrics if (m in METRICS and METRICS[m].task == self.task)
                  or (m in CALIBRATION and self.task == "classification")]
        can = [m for m in wanted if m in METRICS and (METRICS[m].needs != "proba" or has_proba)]
        can += list(CALIBRATION) if has_proba else []  # always, when there are probabilities to calibrate
        return can, [m for m in wanted if m not in can]

    def estimates(self, metrics: list[str], *, samples: int, confidence: float, seed: int) -> dict[str, Any]:
        """{metric: (value, low, high)} with a seeded Poisson block-bootstrap percentile interval."""
        import numpy as np

        rng = np.random.default_rng(seed)
        weights = rng.poisson(1.0, size=(samples, BLOCKS)).astype(float)
        alpha = (1 - confidence) / 2
        out = {}
        for metric in metrics:
            value = float(self._metric(metric, None)[0])
            reps = np.concatenate([self._metric(metric, weights[i:i + 250]) for i in range(0, samples, 250)])
            if metric == "roc_auc":  # interval from the coarse histograms, placed at the fine value
                reps = reps - float(self._metric("roc_auc_coarse", None)[0]) + value
            low, high = np.nanquantile(reps, [alpha, 1 - alpha]) if np.isfinite(reps).any() else (np.nan, np.nan)
            out[metric] = (value, float(low), float(high))
        return out

    def _sum(self, stats, weights):
        """Block statistics summed: once (``weights`` None, a leading axis of 1) or per replicate."""
        import numpy as np

        if weights is None:
            return stats.sum(axis=0)[None]
        return np.tensordot(weights, stats, axes=(1, 0))

    def _metric(self, metric: str, weights) -> np.ndarray:
        if self.task == "regression":
            return _regression(metric, self._sum(self.sums, weights))
        if metric in ("roc_auc", "roc_auc_coarse"):
            hist = self.auc_fine[None] if metric == "roc_auc" and weights is None else self._sum(self.auc_blocks, weights)
            return _auc(hist)
        confusion = self._sum(self.confusion, weights)
        n = confusion.sum(axis=(1, 2))
        if metric in ("log_loss", "brier_score"):
            losses = self._sum(self.losses, weights)
            scale = 0.5 if metric == "brier_score" and len(self.proba_classes) == 2 else 1.0
            return scale * losses[:, 0 if metric == "log_loss" else 1] / _nonzero(n)
        if metric == "ece":
            cal = self._sum(self.calibration, weights)  # replicates, classes, bins, (probability, outcome)
            per_class = abs(cal[..., 0] - cal[..., 1]).sum(axis=2) / _nonzero(n)[:, None]
            return per_class[:, 1] if len(self.proba_classes) == 2 else per_class.mean(axis=1)
        return _from_confusion(metric, confusion)


def _nonzero(n):
    import numpy as np

    return np.where(n == 0, np.nan, n)


def _regression(metric: str, s) -> np.ndarray:
    import numpy as np

    n = _nonzero(s[:, 0])
    if metric == "rmse":
        return np.sqrt(s[:, 1] / n)
    if metric == "mae":
        return s[:, 2] / n
    total = s[:, 4] - s[:, 3] ** 2 / n
    return 1 - s[:, 1] / np.where(total <= 0, np.nan, total)


def _from_confusion(metric: str, m) -> np.ndarray:
    """accuracy, balanced_accuracy and macro f1 of confusion matrices (replicates, true, predicted), over
    the classes present among the true or predicted labels of each, as scikit-learn takes them."""
    import numpy as np

    diag = np.diagonal(m, axis1=1, axis2=2)
    actual, predicted = m.sum(axis=2), m.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        if metric == "accuracy":
            return diag.sum(axis=1) / _nonzero(actual.sum(axis=1))
        if metric == "balanced_accuracy":
            recall = np.where(actual > 0, diag / np.where(actual > 0, actual, 1), np.nan)
            return np.nanmean(recall, axis=1) if np.isfinite(recall).any() else np.full(len(m), np.nan)
        present = (actual + predicted) > 0
        f1 = np.where(present, 2 * diag / np.where(present, actual + predicted, 1), 0.0)
        return f1.sum(axis=1) / _nonzero(present.sum(axis=1))


def _auc(hist) -> np.ndarray:
    """One-vs-rest macro AUC of score histograms (replicates, classes, positive/negative, bins); a positive
    and a negative in the same bin count half, like tied scores."""
    import numpy as np

    pos, neg = hist[:, :, 0, :], hist[:, :, 1, :]
    below = np.cumsum(neg, axis=2) - neg  # negatives in lower bins
    with np.errstate(invalid="ignore", divide="ignore"):
        pairs = pos.sum(axis=2) * neg.sum(axis=2)
        per_class = (pos * (below + 0.5 * neg)).sum(axis=2) / np.where(pairs > 0, pairs, np.nan)
    valid = np.isfinite(per_class)
    return np.where(valid.any(axis=1), np.nansum(per_class, axis=1) / np.maximum(valid.sum(axis=1), 1), np.nan)
