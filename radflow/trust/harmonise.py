"""ComBat harmonisation of a feature table across batches (sites, scanner makes or models), keeping the effects of
chosen covariates (Johnson, Li & Rabinovic 2007, parametric empirical Bayes; in radiomics Fortin 2018, Orlhac 2019).

The same model and estimates as neuroCombat 0.2.12 (checked against it in the tests to numerical precision):
features are standardised by a least-squares fit of batch indicators and covariates (pooled variance over all
samples), each batch's location (gamma) and scale (delta) per feature are shrunk towards the batch's mean over features
by empirical Bayes (normal prior for gamma, inverse-gamma prior for delta, iterated to a relative change of 1e-4),
and the data are rescaled with the shrunk estimates, covariate effects added back.

Unlike neuroCombat, a batch too small to estimate a variance (fewer than 2 samples) is named and refused instead
of giving NaN, and a feature without variance is left as it is (neuroCombat replaces its pooled variance by a
boolean median)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from radflow.modalities import units as modality_units
from radflow.settings import HarmonisationSettings

CONVERGENCE = 1e-4


class HarmonisationError(ValueError):
    """A table that ComBat cannot harmonise as asked (too small batches, a covariate confounded with batch)."""


def design_matrix(covars: pd.DataFrame, batch: str, categorical=(), continuous=()) -> tuple[np.ndarray, list]:
    """Batch indicators (every level, in sorted order), then each categorical covariate's indicators without its
    first level, then the continuous covariates; and the batch levels."""
    levels = sorted(covars[batch].astype(str).unique())
    parts = [(covars[batch].astype(str).to_numpy()[:, None] == np.array(levels)[None, :]).astype(float)]
    for c in categorical:
        values = covars[c].astype(str).to_numpy()
        cats = sorted(set(values))
        parts.append((values[:, None] == np.array(cats[1:])[None, :]).astype(float))
    for c in continuous:
        parts.append(pd.to_numeric(covars[c]).to_numpy(float)[:, None])
    return np.hstack(parts), levels


def _shrink(s: np.ndarray, g_hat, d_hat, g_bar, t2, a, b):
    """Empirical Bayes estimates of one batch (features x its samples): the iteration of Johnson et al."""
    n = np.isfinite(s).sum(axis=1)
    g_old, d_old = g_hat.copy(), d_hat.copy()
    change = 1.0
    while change > CONVERGENCE:
        g_new = (t2 * n * g_hat + d_old * g_bar) / (t2 * n + d_old)
        sum2 = ((s - g_new[:, None]) ** 2).sum(axis=1)
        d_new = (0.5 * sum2 + b) / (n / 2.0 + a - 1.0)
        change = max((np.abs(g_new - g_old) / g_old).max(), (np.abs(d_new - d_old) / d_old).max())
        g_old, d_old = g_new, d_new
    return g_new, d_new


def combat(
    data: np.ndarray, covars: pd.DataFrame, batch: str, categorical=(), continuous=()
) -> tuple[np.ndarray, dict]:
    """data: features x samples; covars: one row per sample with the batch column and the covariates to keep.
    Returns the harmonised data (same shape) and the estimates (batches, gamma_star, delta_star, var_pooled)."""
    data = np.asarray(data, dtype=float)
    counts = covars[batch].astype(str).value_counts()
    small = sorted(counts[counts < 2].index)
    if small:
        raise HarmonisationError(
            f"batch {batch!r}: {', '.join(f'{b} ({counts[b]} sample)' for b in small)} too small to estimate a "
            "variance (ComBat needs 2 or more samples per batch): leave them out, or choose a coarser batch"
        )
    design, levels = design_matrix(covars, batch, categorical, continuous)
    if np.linalg.matrix_rank(design) < design.shape[1]:
        raise HarmonisationError(
            f"the covariates {list(categorical) + list(continuous)} are confounded with batch {batch!r}: their effect "
            "cannot be told from the batch's"
        )
    n_batch, n = len(levels), data.shape[1]
    varies = np.nanvar(data, axis=1) > 0
    x = data[varies]
    beta = np.linalg.solve(design.T @ design, design.T @ x.T)  # covariates x features
    in_batch = design[:, :n_batch].astype(bool)
    per_batch = in_batch.sum(axis=0)
    grand_mean = (per_batch / n) @ beta[:n_batch]
    var_pooled = ((x - (design @ beta).T) ** 2).mean(axis=1)
    covariate_design = design.copy()
    covariate_design[:, :n_batch] = 0
    mod_mean = (covariate_design @ beta).T
    stand_mean = grand_mean[:, None]
    s = (x - stand_mean - mod_mean) / np.sqrt(var_pooled)[:, None]
    batch_design = design[:, :n_batch]
    gamma_hat = np.linalg.solve(batch_design.T @ batch_design, batch_design.T @ s.T)  # batches x features
    delta_hat = np.array([np.var(s[:, in_batch[:, j]], axis=1, ddof=1) for j in range(n_batch)])
    delta_hat[delta_hat == 0] = 1
    gamma_bar, t2 = gamma_hat.mean(axis=1), gamma_hat.var(axis=1, ddof=1)
    m, s2 = delta_hat.mean(axis=1), delta_hat.var(axis=1, ddof=1)
    a_prior, b_prior = (2 * s2 + m**2) / s2, (m * s2 + m**3) / s2
    gamma_star, delta_star = np.empty_like(gamma_hat), np.empty_like(delta_hat)
    for j in range(n_batch):
        gamma_star[j], delta_star[j] = _shrink(
            s[:, in_batch[:, j]], gamma_hat[j], delta_hat[j], gamma_bar[j], t2[j], a_prior[j], b_prior[j]
        )
    adjusted = s.copy()
    for j in range(n_batch):
        cols = in_batch[:, j]
        adjusted[:, cols] = (s[:, cols] - gamma_star[j][:, None]) / np.sqrt(delta_star[j])[:, None]
    out = data.copy()
    out[varies] = adjusted * np.sqrt(var_pooled)[:, None] + stand_mean + mod_mean
    return out, dict(batches=levels, gamma_star=gamma_star, delta_star=delta_star, var_pooled=var_pooled)


# ---------------------------------------------------------------------------------------- the modelling table
def tcga_site(patient_id: str) -> str:
    """The tissue source site of a TCGA barcode (TCGA-CV-7100 -> CV); empty for other IDs."""
    parts = str(patient_id).split("-")
    return parts[1] if len(parts) >= 3 and parts[0].upper() == "TCGA" else ""


def harmonise_table(
    table: pd.DataFrame,
    batch_values: pd.Series,
    feature_columns: list[str],
    categorical=(),
    continuous=(),
    min_batch: int = 2,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """ComBat over the rows of a modelling table (one per patient). batch_values: one batch per row (same index).
    Rows without a batch or a covariate value, and batches with fewer than min_batch rows, are left out of the
    harmonised copy and named in the report (one row per batch: n, status, patients), never merged into another
    batch. Returns (harmonised copy of the kept rows, report)."""
    batch = batch_values.reindex(table.index).fillna("").astype(str)
    covariates = list(categorical) + list(continuous)
    usable = batch.ne("") & table[covariates].notna().all(axis=1) if covariates else batch.ne("")
    counts = batch[usable].value_counts()
    small = set(counts[counts < min_batch].index)
    keep = usable & ~batch.isin(small)
    report = []
    for name, n in sorted(batch.value_counts().items()):
        rows = batch == name
        status = (
            "no batch value"
            if name == ""
            else f"too small to estimate (fewer than {min_batch} patients): left out"
            if name in small
            else "harmonised"
        )
        missing = int((rows & ~usable).sum()) if name != "" else 0
        if missing and status == "harmonised":
            status += f" ({missing} without a covariate value left out)"
        report.append(
            dict(batch=name, n=int(n), status=status, patients=";".join(map(str, table.loc[rows, "patient_id"])))
        )
    report = pd.DataFrame(report, columns=["batch", "n", "status", "patients"])
    if batch[keep].nunique() < 2:
        raise HarmonisationError(
            f"fewer than two batches with {min_batch} or more patients: nothing to harmonise "
            f"({', '.join(f'{r.batch or chr(39) * 2}: {r.n}' for r in report.itertuples())})"
        )
    kept = table[keep]
    data = kept[feature_columns].to_numpy(float).T
    covars = kept[covariates].copy()
    covars["_batch"] = batch[keep].to_numpy()
    harmonised, _ = combat(data, covars, "_batch", categorical, continuous)
    out = kept.copy()
    out[feature_columns] = harmonised.T
    return out, report


def before_after_plot(
    table, harmonised, batch_values, features, out_png, batch_variable: str = "batch", covariates=(), units: str = ""
) -> None:
    """A few features by batch, before and after harmonisation (box plots), one row per feature; the title names the
    batch variable, the batches and patients and the covariates kept, each box its batch's size, each axis the
    feature's unit (radflow.features.feature_unit of the image's units)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from radflow.qc import axis_unit

    batch = batch_values.reindex(table.index).fillna("").astype(str)
    fig, axes = plt.subplots(len(features), 2, figsize=(8, 2.4 * len(features) + 0.6), squeeze=False, sharey="row")
    for row, feature in enumerate(features):
        unit = axis_unit(feature, units)
        for col, (name, frame) in enumerate((("before", table), ("after", harmonised))):
            groups = sorted(batch[frame.index].unique())
            sizes = batch[frame.index].value_counts()
            ax = axes[row][col]
            ax.boxplot(
                [frame.loc[batch[frame.index] == g, feature] for g in groups],
                tick_labels=[f"{g}\n(n={sizes[g]})" for g in groups],
            )
            ax.set_title(f"{feature} {name}", fontsize=8)
            ax.set_ylabel(f"[{unit}]", fontsize=7)
            ax.set_xlabel(batch_variable, fontsize=7)
            ax.tick_params(labelsize=7)
    n_batches = batch[harmonised.index].nunique()
    title = (
        f"ComBat by {batch_variable}: {n_batches} batches, {len(harmonised)} patients; "
        f"covariates kept: {', '.join(covariates) or 'none'}"
    )
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    sizes = batch[harmonised.index].value_counts().sort_index()
    described = f"batches ({batch_variable}): " + ", ".join(f"{b} n={n}" for b, n in sizes.items())
    described += "; features: " + ", ".join(f"{f} [{axis_unit(f, units)}]" for f in features)
    fig.savefig(out_png, dpi=90, metadata={"Title": title, "Description": described})
    plt.close(fig)


# ------------------------------------------------------------------------------------------ the workflow's step
def read_batch_file(path, column: str) -> pd.DataFrame:
    """A user's batch file (CSV or TSV): patient_id and the batch column; ValueError naming the file otherwise."""
    sep = "\t" if str(path).endswith((".tsv", ".txt")) else ","
    frame = pd.read_csv(path, sep=sep, dtype=str)
    missing = [c for c in ("patient_id", column) if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: no column {', '.join(missing)} (it has {', '.join(frame.columns)})")
    dup = frame["patient_id"][frame["patient_id"].duplicated()]
    if len(dup):
        raise ValueError(f"{path}: patient {dup.iloc[0]} has more than one row")
    return frame[["patient_id", column]]


def _series_column(column: str):
    def values(table: pd.DataFrame, series: pd.DataFrame) -> pd.Series:
        by_series = series.drop_duplicates("series_uid").set_index("series_uid")[column]
        return table["series_uid"].map(by_series)

    return values


# What a batch can be besides a user's file (config harmonisation.batch): each a function of the modelling table and
# the index's series table giving every row's batch. A new kind of batch is one entry here.
BATCH_SOURCES = {
    "site": lambda table, series: table["patient_id"].map(tcga_site),  # the TCGA tissue source site of the barcode
    "manufacturer": _series_column("manufacturer"),  # of the row's image series
    "model": _series_column("manufacturer_model"),
}


def batch_of(table: pd.DataFrame, batch, series: pd.DataFrame | None = None) -> pd.Series:
    """Each modelling-table row's batch: one of BATCH_SOURCES (site, manufacturer, model), or {path, column} (a
    user's file by patient_id). Empty where unknown."""
    if isinstance(batch, str):
        values = BATCH_SOURCES[batch](table, series)
    else:
        frame = read_batch_file(batch["path"], batch["column"]).set_index("patient_id")[batch["column"]]
        values = table["patient_id"].map(frame)
    return values.fillna("").astype(str).str.strip().rename("batch")


def batch_variable(settings: HarmonisationSettings) -> str:
    """What the batches are, as batches.tsv names it: site, manufacturer, model or the user file's column."""
    return settings.batch if isinstance(settings.batch, str) else settings.batch["column"]


def covariate_kinds(table: pd.DataFrame, covariates) -> tuple[list[str], list[str]]:
    """(categorical, continuous): numeric columns are continuous, the others categorical; a name that is not a
    column of the table is a HarmonisationError naming it."""
    from radflow.tables import pyradiomics_columns

    missing = [c for c in covariates if c not in table.columns]
    if missing:
        raise HarmonisationError(
            f"harmonisation.covariates: {', '.join(missing)} not in the modelling table (its clinical columns: "
            f"{', '.join(c for c in table.columns if c not in set(pyradiomics_columns(table)))})"
        )
    continuous = [c for c in covariates if pd.api.types.is_numeric_dtype(table[c])]
    return [c for c in covariates if c not in continuous], continuous


def harmonise_step(
    table: pd.DataFrame, series: pd.DataFrame, settings: HarmonisationSettings, out_table, out_batches, out_plot
):
    """The workflow's harmonisation: the modelling table's features by ComBat over the settings' batch, keeping the
    effects of their covariates; rows without a batch or covariate, and batches under min_batch, are left out
    and named in the batches table. Features with a missing value in a kept row cannot be harmonised and are left
    out of the copy (listed in the log). The plot shows the four features with the largest batch effect before
    harmonisation (one-way ANOVA F by batch). Returns the batches table."""
    from scipy import stats

    from radflow.tables import feature_class, pyradiomics_columns

    batch = batch_of(table, settings.batch, series)
    categorical, continuous = covariate_kinds(table, list(settings.covariates))
    leave = set(settings.leave_classes)
    features = [f for f in pyradiomics_columns(table) if feature_class(f) not in leave]
    complete = [f for f in features if table[f].notna().all()]
    for f in sorted(set(features) - set(complete)):
        print(f"not harmonised (a missing value): {f}")
    try:
        harmonised, report = harmonise_table(
            table, batch, complete, categorical, continuous, min_batch=settings.min_batch
        )
    except HarmonisationError as err:  # a cohort of one site: said in every output, the run goes on
        return _nothing_harmonised(table, batch, settings, str(err), out_table, out_batches, out_plot)
    variable = batch_variable(settings)
    report.insert(1, "batch_variable", variable)
    out = harmonised.drop(columns=sorted(set(features) - set(complete)))
    # the copy says what it is, row by row: ComBat over which variable and covariates, and each patient's batch
    where = list(out.columns).index("roi_original") + 1 if "roi_original" in out.columns else 1
    covariates = list(settings.covariates)
    out.insert(where, "harmonised_by", f"ComBat by {variable}; covariates: {', '.join(covariates) or 'none'}")
    out.insert(where + 1, "harmonisation_batch", batch[out.index].to_numpy())
    out.to_csv(out_table, index=False)
    report.to_csv(out_batches, sep="\t", index=False)
    kept_batch = batch[harmonised.index]
    effect = {}
    for f in complete:
        groups = [harmonised.index[kept_batch == b] for b in kept_batch.unique()]
        values = [table.loc[g, f].to_numpy(float) for g in groups]
        if all(np.ptp(v) > 0 for v in values):
            effect[f] = stats.f_oneway(*values).statistic
    shown = sorted(effect, key=lambda f: -effect[f])[:4] or complete[:4]
    modality = str(table["modality"].iloc[0]) if "modality" in table.columns and len(table) else ""
    before_after_plot(
        table.loc[harmonised.index], harmonised, batch, shown, out_plot, variable, covariates, modality_units(modality)
    )
    return report


def _nothing_harmonised(
    table, batch, settings: HarmonisationSettings, why, out_table, out_batches, out_plot
) -> pd.DataFrame:
    """No harmonisation possible (fewer than two batches big enough): an empty harmonised table (the columns of the
    modelling table), every batch named with why, and a picture that says so."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    print(f"nothing harmonised: {why}")
    table.iloc[0:0].to_csv(out_table, index=False)
    counts = batch.value_counts()
    report = pd.DataFrame(
        [
            dict(
                batch=name,
                batch_variable=batch_variable(settings),
                n=int(n),
                status=f"not harmonised: {why}",
                patients=";".join(map(str, table.loc[batch == name, "patient_id"])),
            )
            for name, n in sorted(counts.items())
        ],
        columns=["batch", "batch_variable", "n", "status", "patients"],
    )
    report.to_csv(out_batches, sep="\t", index=False)
    fig, ax = plt.subplots(figsize=(6, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, "nothing harmonised:\n" + why, ha="center", va="center", wrap=True, fontsize=9)
    fig.savefig(out_plot, dpi=90)
    plt.close(fig)
    return report
