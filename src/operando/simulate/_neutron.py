"""Synthetic operando neutron radiography of a cylindrical full cell, with ground truth.

A cell of radius ``r`` seen side-on (axis along ``y``): bands of rows for casing, anode
current collector, anode, separator, cathode, cathode current collector. The beam crosses
the cell along ``δ(x) = 2 sqrt(r² - (x - x_c)²)`` (cm); the attenuation coefficient
(1/cm) of each band is a base value plus a lithium term ``ΔΣ_Li c(y, t)``.

Lithium history (``c`` in 0..1 per row): each half-cycle moves a front from the separator
into the electrode, up to a prescribed reach (fraction of the electrode's rows); behind
the front the anode is lithiated (charge) or delithiated (discharge), the cathode the
other way round. A discharge that reaches less far than the preceding charge leaves
lithium *sequestered* in the anode between the two reaches, on the current-collector side
of the active window (seed 000 Fig. 5d–f).

Detector: open-beam counts with a smooth beam profile, Poisson shot noise, a dark-current
offset with a fixed pattern and Gaussian read noise, rare bright outliers (gamma spots);
``n_open_beam`` open-beam and ``n_dark`` dark frames.

The truth (``attrs["truth_parameters"]``) holds the layout rows, geometry, half-cycles,
the true active-area fractions and active windows per half-cycle and electrode (from
the clean ``ΔΣ`` at each half-cycle's last frame, ``|ΔΣ| > ΔΣ_Li / 2``) and the
sequestered rows after the first discharge and at the end.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from ..data import add_provenance, attach_truth, make_dataset
from ..errors import ParameterError

__all__ = ["simulate_neutron"]

#: Paper-like reaches: first charge fills 80 % of the anode, the first discharge empties
#: 40 % (the rest stays lithiated), later cycles use a shrinking window (Fig. 5e).
DEFAULT_ANODE_REACH = (0.8, 0.4, 0.6, 0.4, 0.6, 0.35, 0.5, 0.3)
DEFAULT_CATHODE_REACH = (0.5, 0.45, 0.5, 0.45, 0.5, 0.45, 0.5, 0.45)

# Band layout as fractions of the image height, and base attenuation coefficients (1/cm).
_BANDS = (
    ("casing_top", 0.00, 0.06, 2.0),
    ("anode_cc", 0.06, 0.10, 3.0),
    ("anode", 0.10, 0.42, 6.0),
    ("separator", 0.42, 0.50, 7.0),
    ("cathode", 0.50, 0.82, 5.0),
    ("cathode_cc", 0.82, 0.86, 1.0),
    ("casing_bottom", 0.86, 1.00, 2.0),
)


def _run(rows: np.ndarray, offset: int) -> list[int] | None:
    idx = np.flatnonzero(rows)
    if idx.size == 0:
        return None
    # longest contiguous run
    breaks = np.flatnonzero(np.diff(idx) > 1)
    starts = np.concatenate([[0], breaks + 1])
    stops = np.concatenate([breaks + 1, [idx.size]])
    k = int(np.argmax(stops - starts))
    return [int(idx[starts[k]]) + offset, int(idx[stops[k] - 1]) + 1 + offset]


def simulate_neutron(
    *,
    ny: int = 96,
    nx: int = 128,
    frames_per_half_cycle: int = 6,
    anode_reach: Sequence[float] = DEFAULT_ANODE_REACH,
    cathode_reach: Sequence[float] = DEFAULT_CATHODE_REACH,
    radius_px: float | None = None,
    pixels_per_cm: float = 1289.8,
    sigma_li_anode: float = 1.5,
    sigma_li_cathode: float = 0.8,
    open_beam_counts: float = 1500.0,
    n_open_beam: int = 5,
    n_dark: int = 5,
    dark_level: float = 100.0,
    read_noise: float = 3.0,
    spot_probability: float = 1e-3,
    frame_interval_s: float = 600.0,
    first: str = "charge",
    seed: int = 0,
) -> xr.Dataset:
    """Simulate an operando neutron radiography series of a cycling full cell.

    Parameters
    ----------
    ny, nx
        Frame size (rows = depth through the stack, columns = across the cell).
    frames_per_half_cycle
        Frames per half-cycle (>= 2); the series has ``len(anode_reach)`` half-cycles.
    anode_reach, cathode_reach
        Per half-cycle, how far (fraction of the electrode's rows, from the separator) the
        reaction front gets. Same length; half-cycles alternate starting with ``first``.
    radius_px
        Cell radius in pixels (default ``0.44 nx``), centred on the image.
    pixels_per_cm
        Calibration (seed 000: 1289.8).
    sigma_li_anode, sigma_li_cathode
        Attenuation change (1/cm) between empty and full lithium content.
    open_beam_counts
        Mean open-beam counts per pixel (shot noise ~ ``1/sqrt(counts T)``).
    n_open_beam, n_dark
        Number of reference frames.
    dark_level, read_noise
        Dark-current offset and Gaussian read noise (counts).
    spot_probability
        Probability per pixel and frame of a bright outlier (removed by the median filter).
    frame_interval_s
        Time between frames (the ``t`` coordinate, seconds).
    first
        ``"charge"`` or ``"discharge"``.
    seed
        Random seed of all noise.

    Returns
    -------
    xarray.Dataset
        ``images``: raw intensity ``(t, y, x)`` (counts); ``open_beam``
        ``(open_beam_frame, y, x)``; ``dark`` ``(dark_frame, y, x)``; ``truth_images``: the
        noise-free intensity; ``truth_sigma``: clean ``Σ`` (1/cm, 0 outside the cell);
        ``echem_time``/``echem_current``: a matching current record (+1 charge, -1
        discharge, rests of 0 between half-cycles); truth parameters (see module docs).
    """
    if len(anode_reach) != len(cathode_reach) or len(anode_reach) < 1:
        raise ParameterError(
            "anode_reach and cathode_reach need the same non-zero length", where="simulate_neutron"
        )
    if frames_per_half_cycle < 2:
        raise ParameterError("frames_per_half_cycle must be >= 2", where="simulate_neutron")
    if first not in ("charge", "discharge"):
        raise ParameterError(
            f"first={first!r}", where="simulate_neutron", fix="use 'charge' or 'discharge'"
        )
    if ny < 32 or nx < 16:
        raise ParameterError(
            f"frame {ny}x{nx} too small (need ny >= 32, nx >= 16)", where="simulate_neutron"
        )
    rng = np.random.default_rng(seed)
    rows = {name: (round(a * ny), round(b * ny)) for name, a, b, _ in _BANDS}
    base = np.zeros(ny)
    for name, _, _, s in _BANDS:
        a, b = rows[name]
        base[a:b] = s
    a0, a1 = rows["anode"]
    c0, c1 = rows["cathode"]
    na, nc = a1 - a0, c1 - c0
    # distance from the separator in rows (row centres), per electrode
    r_anode = (a1 - 1 - np.arange(a0, a1)) + 0.5  # anode lies above the separator
    r_cathode = (np.arange(c0, c1) - c0) + 0.5
    radius_px = 0.44 * nx if radius_px is None else float(radius_px)
    xc = (nx - 1) / 2
    radius_cm = radius_px / pixels_per_cm
    d = np.abs(np.arange(nx) - xc) / pixels_per_cm
    delta = 2.0 * np.sqrt(np.maximum(radius_cm**2 - d**2, 0.0))  # cm, (x,)
    m = int(frames_per_half_cycle)
    kinds = [
        first if i % 2 == 0 else ("discharge" if first == "charge" else "charge")
        for i in range(len(anode_reach))
    ]
    ca = np.zeros(na)  # anode lithium content (pristine: empty)
    cc = np.ones(nc)  # cathode lithium content (pristine: full)
    sig_rows = []  # Σ(y) per frame
    states = []  # (ca, cc) at the end of each half-cycle
    for k, kind in enumerate(kinds):
        ra = round(float(anode_reach[k]) * na)
        rc = round(float(cathode_reach[k]) * nc)
        ta = 1.0 if kind == "charge" else 0.0  # anode target
        tc = 1.0 - ta  # cathode target
        start_a, start_c = ca.copy(), cc.copy()
        for j in range(m):
            s = j / (m - 1)
            wa = np.clip((s * (ra + 0.5) - r_anode) / 0.5, 0.0, 1.0)
            wc = np.clip((s * (rc + 0.5) - r_cathode) / 0.5, 0.0, 1.0)
            ca = start_a + (ta - start_a) * wa
            cc = start_c + (tc - start_c) * wc
            sig = base.copy()
            sig[a0:a1] += sigma_li_anode * ca
            sig[c0:c1] += sigma_li_cathode * cc
            sig_rows.append(sig)
        states.append((start_a, start_c, ca.copy(), cc.copy()))
    sig_y = np.asarray(sig_rows)  # (t, y)
    nt = sig_y.shape[0]
    inside = delta > 0
    sigma = np.where(inside[None, None, :], sig_y[:, :, None], 0.0) * np.ones((1, 1, nx))
    trans = np.exp(-sigma * delta[None, None, :])
    yy, xx = np.mgrid[0:ny, 0:nx]
    beam = 1.0 + 0.15 * np.exp(
        -((xx - 0.4 * nx) ** 2 + (yy - 0.6 * ny) ** 2) / (2 * (0.4 * max(nx, ny)) ** 2)
    )
    i0 = open_beam_counts * beam
    dark_pattern = dark_level + 5.0 * rng.standard_normal((ny, nx))

    def detector(expected: np.ndarray) -> np.ndarray:
        counts = rng.poisson(np.maximum(expected, 0.0)).astype(np.float64)
        out = counts + dark_pattern + read_noise * rng.standard_normal(expected.shape)
        spots = rng.random(expected.shape) < spot_probability
        out[spots] += open_beam_counts * rng.uniform(0.5, 1.0, int(spots.sum()))
        return out

    clean_i = i0[None] * trans
    intensity = detector(clean_i)
    open_beam = detector(np.broadcast_to(i0, (n_open_beam, ny, nx)))
    dark = detector(np.zeros((n_dark, ny, nx)))
    t = np.arange(nt) * float(frame_interval_s)

    # ----- truth: active fractions and windows from the clean ΔΣ at each last frame
    starts = [k * m for k in range(len(kinds))]
    act: dict[str, list[float]] = {"anode": [], "cathode": []}
    win: dict[str, list[list[int] | None]] = {"anode": [], "cathode": []}
    for sa, sc, ea, ec in states:
        da = np.abs(ea - sa) * sigma_li_anode > 0.5 * sigma_li_anode
        dc = np.abs(ec - sc) * sigma_li_cathode > 0.5 * sigma_li_cathode
        act["anode"].append(float(da.mean()))
        act["cathode"].append(float(dc.mean()))
        win["anode"].append(_run(da, a0))
        win["cathode"].append(_run(dc, c0))
    first_discharge = next((k for k, kd in enumerate(kinds) if kd == "discharge"), None)
    seq_first = None
    if first_discharge is not None:
        seq_first = _run(states[first_discharge][2] > 0.5, a0)
    seq_final = _run(states[-1][2] > 0.5, a0) if kinds[-1] == "discharge" else None

    # ----- a matching electrochemistry record: I = ±1 within half-cycles, rests between
    et, ei = [], []
    for k, kind in enumerate(kinds):
        ta_, tb_ = t[starts[k]], t[starts[k] + m - 1]
        sgn = 1.0 if kind == "charge" else -1.0
        ts = np.linspace(ta_, tb_ + 0.5 * frame_interval_s, 20)
        et.extend(ts.tolist())
        ei.extend([sgn] * ts.size)
        et.append(tb_ + 0.75 * frame_interval_s)
        ei.append(0.0)

    params: dict[str, Any] = {
        "layout_rows": {k: list(v) for k, v in rows.items()},
        "pixels_per_cm": pixels_per_cm,
        "radius_cm": radius_cm,
        "radius_px": radius_px,
        "centre_px": xc,
        "frames_per_half_cycle": m,
        "half_cycle_starts": starts,
        "half_cycle_kinds": kinds,
        "anode_reach": list(map(float, anode_reach)),
        "cathode_reach": list(map(float, cathode_reach)),
        "sigma_li_anode": sigma_li_anode,
        "sigma_li_cathode": sigma_li_cathode,
        "base_sigma": {name: s for name, _, _, s in _BANDS},
        "active_fraction": act,
        "active_window": win,
        "sequestered_rows_first_discharge": seq_first,
        "sequestered_rows_final": seq_final,
        "open_beam_counts": open_beam_counts,
        "dark_level": dark_level,
        "read_noise": read_noise,
        "spot_probability": spot_probability,
        "n_open_beam": n_open_beam,
        "n_dark": n_dark,
    }
    ds = make_dataset(
        intensity,
        dims=("t", "y", "x"),
        coords={"t": t},
        pixel_size=1e4 / pixels_per_cm,
        pixel_unit="um",
        attrs={
            "modality": "neutron radiography (synthetic)",
            # experiment set-up a user would know (read by `operando neutron analyze`)
            "radius_cm": radius_cm,
            "centre_px": xc,
            "pixels_per_cm": pixels_per_cm,
            "half_cycle_starts": json.dumps(starts),
            "first_half_cycle": first,
            "electrode_rows": json.dumps(
                {"anode": list(rows["anode"]), "cathode": list(rows["cathode"])}
            ),
        },
        source="simulate_neutron",
    )
    ds["open_beam"] = (("open_beam_frame", "y", "x"), open_beam)
    ds["dark"] = (("dark_frame", "y", "x"), dark)
    ds["truth_sigma"] = (("t", "y", "x"), sigma)
    ds["truth_sigma"].attrs["units"] = "1/cm"
    ds["echem_time"] = (("echem_sample",), np.asarray(et))
    ds["echem_current"] = (("echem_sample",), np.asarray(ei))
    ds = attach_truth(ds, clean=clean_i + dark_pattern, parameters=params, seed=seed)
    return add_provenance(ds, "simulate_neutron", seed=seed, ny=ny, nx=nx, frames_per_half_cycle=m)
