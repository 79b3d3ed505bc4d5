"""Probe MI: the variational lower bound I(T;Y) >= H(Y) - CE of a held-out classifier (nats).

For any classifier q(y|t), E[-log q(Y|T)] >= H(Y|T), so H(Y) - CE <= I(T;Y) (Barber &
Agakov 2003). q is multinomial logistic regression (scikit-learn, lbfgs) on the standardized
features; CE is measured on held-out stratified folds, the L2 strength chosen inside each
training fold by an inner cross-validation on log loss, so nothing of a test sample leaks
into its prediction. H(Y) is the plug-in entropy of the label frequencies. The bound is
below the truth by how far the best linear-softmax q is from p(y|t) (large for labels that
are not linearly decodable) and by finite-N fitting error; its sampling error can put it
slightly above the truth or below 0 on independent data. It never exceeds H(Y).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

C_GRID = (0.01, 0.1, 1.0, 10.0)
PROB_FLOOR = 1e-12  # q of a class the training fold never saw


def label_entropy(labels: np.ndarray) -> float:
    """Plug-in entropy (nats) of a label vector."""
    p = np.unique(np.asarray(labels), return_counts=True)[1] / len(labels)
    return float(-(p * np.log(p)).sum())


def probe_label_mi(
    features: np.ndarray,
    labels: np.ndarray,
    folds: int = 5,
    inner_folds: int = 3,
    c_grid: tuple[float, ...] = C_GRID,
    seed: int = 0,
    max_iter: int = 200,
) -> float:
    """H(Y) - held-out cross-entropy (nats) of a logistic-regression probe on (sample, d)."""
    x = np.asarray(features, dtype=np.float64)
    _, y = np.unique(np.asarray(labels), return_inverse=True)
    if not np.isfinite(x).all():
        return float("nan")
    n_folds = int(min(folds, np.bincount(y).max()))
    if n_folds < 2 or np.bincount(y).size < 2:
        return 0.0
    outer = StratifiedKFold(n_folds, shuffle=True, random_state=seed)
    ce = 0.0
    for train, test in outer.split(x, y):
        q = np.full((test.size, y.max() + 1), PROB_FLOOR)
        inner = StratifiedKFold(inner_folds, shuffle=True, random_state=seed)
        model = make_pipeline(
            StandardScaler(),
            LogisticRegressionCV(
                Cs=list(c_grid), cv=inner, scoring="neg_log_loss", max_iter=max_iter
            ),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", (ConvergenceWarning, UserWarning, FutureWarning))
            model.fit(x[train], y[train])
        q[:, model.classes_] = np.maximum(model.predict_proba(x[test]), PROB_FLOOR)
        ce -= np.log(q[np.arange(test.size), y[test]]).sum()
    return label_entropy(y) - ce / y.size
