"""A survival starter on the modelling table: where a statistician begins, not a result.

- a univariate Cox model per feature (standardised), with Benjamini-Hochberg FDR over all features;
- a penalised Cox model on all features (elastic net), with a cross-validated C-index (each patient is scored by a
  model that did not see them);
- a Kaplan-Meier plot of the risk groups that split the out-of-fold risk at its median, with the log-rank p.

With fewer events than min_events it fits nothing and says so in summary.json (and the plot shows the cohort's
Kaplan-Meier curve alone): the rule never crashes a run for want of events.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from radflow.settings import SurvivalSettings
from radflow.tables import model_feature_columns


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """BH-adjusted p-values (q-values), NaN kept in place."""
    p = np.asarray(p, float)
    q = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    if not ok.any():
        return q
    ranked = p[ok]
    order = np.argsort(ranked)
    n = len(ranked)
    adj = ranked[order] * n / np.arange(1, n + 1)
    adj = np.minimum.accumulate(adj[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(adj, 1.0)
    q[ok] = out
    return q


def feature_columns(table: pd.DataFrame, time_col: str, event_col: str) -> list[str]:
    """The modelling table's measurements a model can use: known for every patient and not constant."""
    cols = model_feature_columns(table)
    return [c for c in cols if table[c].notna().all() and table[c].std() > 0]


def _km_plot(path, groups: dict[str, pd.DataFrame], time_col, event_col, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from lifelines import KaplanMeierFitter

    fig, ax = plt.subplots(figsize=(6, 4.5))
    groups = {label: g for label, g in groups.items() if len(g)}
    for label, g in groups.items():
        KaplanMeierFitter().fit(
            g[time_col].astype(float), g[event_col].astype(int), label=f"{label} (n={len(g)})"
        ).plot_survival_function(ax=ax, ci_show=len(g) > 2)
    if not groups:  # no patient with an outcome: a plot that says so, not a crash
        ax.text(
            0.5,
            0.5,
            "no patient with a time and an event:\nno survival curve",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
    ax.set_xlabel("days")
    ax.set_ylabel("survival probability")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _hazard_ratio(model, f: str) -> list[float]:
    """[hazard ratio, its 95 % CI, p] of one covariate of a fitted lifelines Cox model: lifelines' own summary's
    formulas (exp(coef), exp(coef) x exp(-/+ z se), the Wald chi-square's p), without building the whole summary
    table, which took a quarter of the survival job (BENCHMARKS.md)."""
    from lifelines.utils import inv_normal_cdf
    from scipy import stats

    z = inv_normal_cdf(1 - model.alpha / 2)
    coef, se = model.params_[f], model.standard_errors_[f]
    hr = np.exp(coef)
    return [hr, hr * np.exp(-z * se), hr * np.exp(z * se), float(stats.chi2.sf((coef / se) ** 2, 1))]


def _univariate(z: pd.DataFrame, times, events, features) -> pd.DataFrame:
    """Hazard ratio per SD, its 95 % CI and p of a one-feature Cox model, for each feature."""
    from lifelines import CoxPHFitter

    rows = []
    for f in features:
        frame = pd.DataFrame({f: z[f].to_numpy(), "T": times, "E": events})
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rows.append([f, *_hazard_ratio(CoxPHFitter().fit(frame, "T", "E"), f)])
        except Exception:  # no convergence on a degenerate feature: recorded as NaN, not fatal
            rows.append([f, np.nan, np.nan, np.nan, np.nan])
    return pd.DataFrame(rows, columns=["feature", "hazard_ratio_per_sd", "ci_lower", "ci_upper", "p"])


def _penalised(frame: pd.DataFrame, penalizer: float, l1_ratio: float):
    """An elastic-net Cox fit; on a convergence failure, retried with 10x and 100x the penalizer; else None."""
    from lifelines import CoxPHFitter
    from lifelines.exceptions import ConvergenceError

    for scale in (1, 10, 100):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return CoxPHFitter(penalizer=penalizer * scale, l1_ratio=l1_ratio).fit(frame, "T", "E")
        except (ConvergenceError, np.linalg.LinAlgError, ValueError):
            continue
    return None


def _no_model(summary: dict, out: Path, data: pd.DataFrame, time_col: str, event_col: str, why: str) -> dict:
    """A starter that fits no model: one Kaplan-Meier curve of all patients saying why, and the summary."""
    endpoint = time_col.removesuffix("_days").upper()
    _km_plot(out / "km.png", {"all patients": data}, time_col, event_col, f"{endpoint}: all patients ({why})")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def survival_starter(
    table: pd.DataFrame,
    out_dir,
    settings: SurvivalSettings,
    allowed: list[str] | None = None,
    record: dict | None = None,
    seed: int = 0,
) -> dict:
    """Fit the starter models on a modelling table with the survival settings (endpoint, minimum events, the
    penalised Cox model's penalizer and l1_ratio, cross-validation folds: the config's, radflow.config.build); writes
    univariate_cox.csv, summary.json and km.png. allowed: only these features (e.g. those robust enough); record:
    what summary.json should say of the table and the selection (which table, the ICC threshold)."""
    endpoint, min_events, folds = settings.endpoint, settings.min_events, settings.folds
    penalizer, l1_ratio = settings.penalizer, settings.l1_ratio
    from lifelines.statistics import logrank_test
    from lifelines.utils import concordance_index

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    time_col, event_col = f"{endpoint}_days", f"{endpoint}_event"
    data = table.reindex(columns=list(table.columns) + [c for c in (time_col, event_col) if c not in table.columns])
    data = data.assign(**{c: pd.to_numeric(data[c], errors="coerce") for c in (time_col, event_col)})
    data = data.dropna(subset=[time_col, event_col]).copy()
    data[event_col] = data[event_col].astype(int)
    data = data[data[time_col] > 0]
    features = feature_columns(data, time_col, event_col)
    if allowed is not None:
        features = [f for f in features if f in set(allowed)]
    n, events = len(data), int(data[event_col].sum())
    summary = dict(endpoint=endpoint.upper(), patients=n, events=events, features=len(features), min_events=min_events)
    summary.update(record or {})
    columns = ["feature", "hazard_ratio_per_sd", "ci_lower", "ci_upper", "p", "q_bh"]
    if n == 0:
        summary.update(
            status="no patients",
            message=(
                f"the modelling table has {len(table)} row(s) and no patient with an {endpoint.upper()} time and event "
                "(no imaging patient matched a clinical row, or none has an outcome; results/cohort.tsv says why each "
                "patient is out): no model was fitted"
            ),
        )
    elif events < min_events or n < 4 or not features:
        summary.update(
            status="too few events",
            message=(
                f"{events} {endpoint.upper()} events in {n} patients with {len(features)} usable features: fewer than "
                f"the {min_events} events this starter needs (config survival.min_events); no model was fitted"
            ),
        )
    if n == 0 or events < min_events or n < 4 or not features:
        pd.DataFrame(columns=columns).to_csv(out / "univariate_cox.csv", index=False)
        return _no_model(summary, out, data, time_col, event_col, f"no model: {events} events")

    z = (data[features] - data[features].mean()) / data[features].std()
    uni = _univariate(z, data[time_col].to_numpy(), data[event_col].to_numpy(), features)
    uni["q_bh"] = benjamini_hochberg(uni["p"].to_numpy())
    uni.sort_values("p").to_csv(out / "univariate_cox.csv", index=False)

    # Penalised Cox, cross-validated: folds stratified by event so that every fold has events. Inside each fold
    # the features are first filtered by univariate p on the training patients alone (at most one feature per
    # two training events, and 10), so that selection never sees the patients it is scored on.
    k = int(max(2, min(folds, events, n - events if n - events > 1 else events)))
    rng = np.random.default_rng(seed)
    fold = np.empty(n, int)
    for e in (0, 1):
        idx = np.where(data[event_col].to_numpy() == e)[0]
        fold[idx] = rng.permutation(np.arange(len(idx)) % k)
    frame = z.assign(T=data[time_col].to_numpy(), E=data[event_col].to_numpy())
    risk = np.full(n, np.nan)
    fold_c, chosen = [], []
    for f in range(k):
        train, test = frame[fold != f], frame[fold == f]
        m = int(max(1, min(10, train["E"].sum() // 2)))
        ranked = _univariate(train[features], train["T"].to_numpy(), train["E"].to_numpy(), features)
        keep = ranked.dropna(subset=["p"]).sort_values("p")["feature"].head(m).tolist() or features[:1]
        chosen.append(keep)
        model = _penalised(train[keep + ["T", "E"]], penalizer, l1_ratio)
        if model is None:
            summary.update(
                status="model failed",
                message=(
                    f"the penalised Cox model did not converge in fold {f + 1} of {k} ({len(train)} patients, "
                    f"{int(train['E'].sum())} events), even with 100x the penalizer"
                ),
            )
            return _no_model(summary, out, data, time_col, event_col, "the model did not converge")
        r = model.predict_partial_hazard(test[keep]).to_numpy()
        risk[fold == f] = r
        try:
            fold_c.append(float(concordance_index(test["T"], -r, test["E"])))
        except ZeroDivisionError:  # a fold without a comparable pair has no C-index of its own
            fold_c.append(None)
    c_index = concordance_index(frame["T"], -risk, frame["E"])
    high = risk > np.median(risk)
    test = logrank_test(frame["T"][high], frame["T"][~high], frame["E"][high], frame["E"][~high])
    summary.update(
        status="fitted",
        penalizer=penalizer,
        l1_ratio=l1_ratio,
        folds_asked=folds,
        folds=k,
        folds_note=(
            f"{k} folds as asked"
            if k == folds
            else f"{k} folds, not the {folds} asked: folds are stratified by event and each needs an event and a "
            f"patient without one ({events} events, {n - events} without)"
        ),
        features_per_fold=chosen,
        cv_c_index=float(c_index),
        cv_c_index_per_fold=fold_c,
        cv_c_index_per_fold_note=(
            "null: a fold whose patients hold no comparable pair (no event before another's time) has no C-index "
            "of its own; its patients still count in cv_c_index"
        ),
        logrank_p=float(test.p_value),
        significant_univariate_q05=int((uni["q_bh"] < 0.05).sum()),
        note=(
            "out-of-fold C-index: each patient scored by a model fitted without them"
            + ("; with so few events this is a smoke test, not evidence" if events < 30 else "")
        ),
    )
    _km_plot(
        out / "km.png",
        {"high risk": data[high], "low risk": data[~high]},
        time_col,
        event_col,
        f"{endpoint.upper()} by out-of-fold risk (median split)\nCV C-index {c_index:.2f}, "
        f"log-rank p {test.p_value:.2g}; {n} patients, {events} events",
    )
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
