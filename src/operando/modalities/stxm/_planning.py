r"""Beamtime planning: composition uncertainty for uniform vs edge-focused energy sampling.

For ``n`` energies ``E_i`` the NNLS model ``OD = R c + B b + noise`` (references ``R``,
baseline ``B``) with i.i.d. OD noise of standard deviation ``sigma_OD`` has, to first
order (the constraints inactive, ``0 < X < 1``), the coefficient covariance

.. math:: \mathrm{Cov}[c, b] = \sigma_{OD}^2 (D^T D)^{-1}, \qquad D = [R \; B],

and ``X = c_1 / (c_1 + c_2)`` has gradient ``g = (c_2, -c_1) / (c_1 + c_2)^2``, so

.. math:: \sigma_X = \sqrt{g^T \mathrm{Cov}[c] g}.

:func:`plan_energies` evaluates this for the two strategies of seed 000 Fig. S4: ``n``
energies evenly spaced over a range, and ``n = 2k + 1`` edge-focused energies (one
pre-edge energy, ``k`` on the rising edge, ``k`` on the falling edge). With
``n_trials > 0`` it also checks the formula by Monte Carlo (simulate, refit by NNLS,
take the standard deviation of ``X``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from ...errors import ParameterError
from ._composition import Baseline, _baseline_columns, _fractions, nnls_kernel
from ._spectra import ReferenceSpectra

__all__ = ["EnergyPlan", "composition_sigma", "edge_energies", "plan_energies"]


@dataclass(frozen=True)
class EnergyPlan:
    """Predicted ``sigma_X`` per number of energies for two sampling strategies.

    Attributes
    ----------
    n_uniform, sigma_uniform
        Numbers of evenly spaced energies and the predicted ``sigma_X`` for each.
    n_edge, sigma_edge
        Numbers of edge-focused energies (``2k + 1``) and the predicted ``sigma_X``.
    mc_uniform, mc_edge
        Monte-Carlo ``sigma_X`` (NaN when ``n_trials == 0``).
    settings
        The inputs (noise, composition, amount, ranges), JSON-serialisable.
    """

    n_uniform: np.ndarray
    sigma_uniform: np.ndarray
    n_edge: np.ndarray
    sigma_edge: np.ndarray
    mc_uniform: np.ndarray
    mc_edge: np.ndarray
    settings: dict[str, Any]

    def rows(self) -> list[dict[str, Any]]:
        """The plan as a list of ``{strategy, n, sigma_X, sigma_X_mc}`` records."""
        out = []
        for name, ns, ss, mc in (
            ("uniform", self.n_uniform, self.sigma_uniform, self.mc_uniform),
            ("edge", self.n_edge, self.sigma_edge, self.mc_edge),
        ):
            for n, s, m in zip(ns, ss, mc, strict=True):
                out.append(
                    {
                        "strategy": name,
                        "n": int(n),
                        "sigma_X": float(s),
                        "sigma_X_mc": None if np.isnan(m) else float(m),
                    }
                )
        return out


def composition_sigma(
    references: ReferenceSpectra,
    energies: Any,
    *,
    noise: float,
    composition: float = 0.5,
    amount: float = 1.0,
    baseline: Baseline = "constant",
) -> float:
    """Linearised ``sigma_X`` of the NNLS composition at given energies (see module doc).

    Parameters
    ----------
    references
        Two reference spectra (OD per unit amount).
    energies
        Measured energies (eV) on the references' scale.
    noise
        Standard deviation of the OD at each energy.
    composition
        True ``X`` (fraction of the first reference).
    amount
        ``c_1 + c_2``: total amount (scales the edge jump; thicker particles are better).
    baseline
        Baseline columns fitted alongside (as in the composition fit).

    Returns
    -------
    float
        ``sigma_X`` (``inf`` when the design is singular: too few distinct energies).
    """
    r, _ = references.on(np.asarray(energies, dtype=np.float64))
    d = np.concatenate([r, _baseline_columns(np.asarray(energies, float), baseline)], axis=1)
    gram = d.T @ d
    if np.linalg.matrix_rank(gram) < gram.shape[0]:
        return float("inf")
    cov = noise**2 * np.linalg.inv(gram)
    c1, c2 = amount * composition, amount * (1.0 - composition)
    g = np.zeros(d.shape[1])
    g[0], g[1] = c2 / amount**2, -c1 / amount**2
    return float(np.sqrt(g @ cov @ g))


def edge_energies(
    k: int,
    *,
    pre_edge: float,
    rising: tuple[float, float],
    falling: tuple[float, float],
) -> np.ndarray:
    """One pre-edge energy plus ``k`` evenly spaced on each edge window (``2k + 1``)."""
    e = np.concatenate(
        [[pre_edge], np.linspace(rising[0], rising[1], k), np.linspace(falling[0], falling[1], k)]
    )
    return np.unique(e)


def plan_energies(
    references: ReferenceSpectra,
    *,
    noise: float,
    composition: float = 0.5,
    amount: float = 1.0,
    n_values: Sequence[int] = (5, 11, 21, 33, 45, 65),
    uniform_range: tuple[float, float] | None = None,
    pre_edge: float | None = None,
    rising: tuple[float, float] = (705.0, 707.0),
    falling: tuple[float, float] = (711.0, 714.0),
    baseline: Baseline = "constant",
    n_trials: int = 0,
    key: jax.Array | None = None,
) -> EnergyPlan:
    """Predict ``sigma_X`` for uniform vs edge-focused energy sampling (seed 000 Fig. S4).

    Parameters
    ----------
    references
        Two reference spectra; all energies below are on their scale (eV).
    noise
        OD noise per energy (standard deviation). For ``N`` transmitted counts it is
        about ``1 / sqrt(N)``.
    composition, amount, baseline
        As in :func:`composition_sigma`.
    n_values
        Total numbers of energies to evaluate. The edge strategy uses ``k = (n - 1) // 2``
        per edge (``n = 2k + 1``), for ``n >= 3``.
    uniform_range
        Range of the uniform strategy; default the references' common range (seed 000 Fig.
        S4 used 695–715 eV).
    pre_edge
        Pre-edge energy of the edge strategy; default the start of the range.
    rising, falling
        Edge windows (seed 000 Fig. S4: 705–707 and 711–714 eV for LiFePO4).
    n_trials
        Monte-Carlo trials per point (0: analytic only).
    key
        JAX PRNG key, required when ``n_trials > 0``.

    Returns
    -------
    EnergyPlan

    Examples
    --------
    >>> from operando.modalities.stxm import model_references
    >>> plan = plan_energies(model_references(), noise=0.01, n_values=(11, 65))
    >>> bool(plan.sigma_edge[0] < plan.sigma_uniform[0])
    True
    """
    if not (noise > 0 and np.isfinite(noise)):
        raise ParameterError(
            f"noise={noise!r}", where="plan_energies: noise", fix="give the OD noise (> 0)"
        )
    if not 0.0 < composition < 1.0:
        raise ParameterError(
            f"composition={composition!r}",
            where="plan_energies: composition",
            fix="choose 0 < composition < 1 (at the bounds NNLS is biased, not Gaussian)",
        )
    if len(references.names) != 2:
        raise ParameterError(
            f"{len(references.names)} references",
            where="plan_energies: references",
            fix="pass exactly two reference spectra",
        )
    if n_trials > 0 and key is None:
        raise ParameterError(
            "n_trials > 0 needs a PRNG key",
            where="plan_energies: key",
            fix="pass key=jax.random.key(seed)",
        )
    lo, hi = uniform_range if uniform_range is not None else references.range
    pre = lo if pre_edge is None else float(pre_edge)
    ns = np.asarray(sorted({int(n) for n in n_values if int(n) >= 3}), dtype=int)
    if ns.size == 0:
        raise ParameterError(
            f"n_values={tuple(n_values)}", where="plan_energies: n_values", fix="use n >= 3"
        )
    keys = iter(jax.random.split(key, 2 * ns.size)) if n_trials > 0 else None

    def _mc(e: np.ndarray) -> float:
        if keys is None:
            return float("nan")
        r, _ = references.on(e)
        free = _baseline_columns(e, baseline)
        c = amount * np.asarray([composition, 1.0 - composition])
        clean = r @ c
        z = np.asarray(jax.random.normal(next(keys), (e.size, int(n_trials))))
        c_hat, _, _ = nnls_kernel(r, free, clean[:, None] + noise * z)
        return float(np.nanstd(_fractions(c_hat), ddof=1))

    n_edge, s_uni, s_edge, mc_uni, mc_edge = [], [], [], [], []
    for n in ns:
        e_u = np.linspace(lo, hi, int(n))
        s_uni.append(
            composition_sigma(
                references, e_u, noise=noise, composition=composition, amount=amount,
                baseline=baseline,
            )
        )  # fmt: skip
        mc_uni.append(_mc(e_u))
        k = (int(n) - 1) // 2
        e_e = edge_energies(k, pre_edge=pre, rising=rising, falling=falling)
        n_edge.append(e_e.size)
        s_edge.append(
            composition_sigma(
                references, e_e, noise=noise, composition=composition, amount=amount,
                baseline=baseline,
            )
        )  # fmt: skip
        mc_edge.append(_mc(e_e))
    return EnergyPlan(
        n_uniform=ns,
        sigma_uniform=np.asarray(s_uni),
        n_edge=np.asarray(n_edge),
        sigma_edge=np.asarray(s_edge),
        mc_uniform=np.asarray(mc_uni),
        mc_edge=np.asarray(mc_edge),
        settings={
            "noise": float(noise),
            "composition": float(composition),
            "amount": float(amount),
            "uniform_range": [float(lo), float(hi)],
            "pre_edge": pre,
            "rising": [float(v) for v in rising],
            "falling": [float(v) for v in falling],
            "baseline": baseline,
            "n_trials": int(n_trials),
            "references": list(references.names),
        },
    )
