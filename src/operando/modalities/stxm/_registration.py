"""Registration of energy stacks and particle time series by phase cross-correlation.

Each plane of a ``(plane, y, x)`` stack is registered to a reference image with
:func:`skimage.registration.phase_cross_correlation` (Guizar-Sicairos et al., 2008:
cross-correlation peak located to ``1 / upsample_factor`` pixel by a matrix-multiply DFT),
then shifted by the recovered sub-pixel amount. Shifts are ``(dy, dx)`` in pixels: the
translation *applied* to a plane to align it with the reference (so a plane displaced by
``(+1.3, -0.4)`` gets the shift ``(-1.3, +0.4)``).

Reference choices: an index, ``"middle"``, ``"first"``, ``"last"``, ``"mean"`` (two passes:
against the middle plane, then each plane against the mean of the *other* aligned planes,
which is less noisy than any one plane; leaving the plane out matters, as its own noise in
the mean would pin the correlation peak at zero shift) or, for time series, ``"previous"``
(each frame to its predecessor with shifts accumulated, for slow drift and an evolving
particle).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import ndimage as ndi

from ...errors import DataError, ParameterError

__all__ = ["RegistrationResult", "apply_shifts", "register_series", "register_stack"]

Interpolation = Literal["spline", "fourier"]


@dataclass(frozen=True)
class RegistrationResult:
    """Aligned planes and the shifts applied.

    Attributes
    ----------
    images
        The aligned ``(plane, y, x)`` stack.
    shifts
        ``(plane, 2)`` shifts ``(dy, dx)`` in pixels applied to each plane.
    errors
        ``(plane,)`` translation-invariant normalised RMS error of each registration
        (from :func:`skimage.registration.phase_cross_correlation`).
    reference
        The reference used, as given (an index or a name).
    """

    images: np.ndarray
    shifts: np.ndarray
    errors: np.ndarray
    reference: int | str


def apply_shifts(
    images: Any, shifts: Any, *, interpolation: Interpolation = "spline"
) -> np.ndarray:
    """Shift every plane of ``images`` ``(plane, y, x)`` by ``shifts`` ``(plane, 2)`` pixels.

    ``"spline"``: cubic spline (:func:`scipy.ndimage.shift`), edges extended with the
    nearest pixel; ``"fourier"``: exact band-limited shift (periodic: content wraps
    around the edges).
    """
    a = np.asarray(images, dtype=np.float64)
    s = np.asarray(shifts, dtype=np.float64)
    if a.ndim != 3 or s.shape != (a.shape[0], 2):
        raise DataError(
            f"images {a.shape} and shifts {s.shape} do not match",
            where="apply_shifts",
            fix="pass a (plane, y, x) stack and one (dy, dx) per plane",
        )
    out = np.empty_like(a)
    for i, (img, sh) in enumerate(zip(a, s, strict=True)):
        if interpolation == "spline":
            out[i] = ndi.shift(img, sh, order=3, mode="nearest")
        elif interpolation == "fourier":
            out[i] = np.fft.ifftn(ndi.fourier_shift(np.fft.fftn(img), sh)).real
        else:
            raise ParameterError(
                f"interpolation={interpolation!r}",
                where="apply_shifts: interpolation",
                fix="use 'spline' or 'fourier'",
            )
    return out


def _reference_image(a: np.ndarray, reference: int | str) -> tuple[np.ndarray | None, int | str]:
    n = a.shape[0]
    if isinstance(reference, str):
        named = {"first": 0, "middle": n // 2, "last": n - 1}
        if reference in named:
            return a[named[reference]], reference
        if reference == "mean":  # first pass against the middle plane, then refined
            return a[n // 2], reference
        if reference == "previous":
            return None, reference
        raise ParameterError(
            f"reference={reference!r}",
            where="register: reference",
            fix="use a plane index, 'first', 'middle', 'last', 'mean' or 'previous'",
        )
    i = int(reference)
    if not -n <= i < n:
        raise ParameterError(
            f"reference plane {i} does not exist (stack of {n} planes)",
            where="register: reference",
            fix=f"use an index in 0..{n - 1}",
        )
    return a[i], i % n


def register_stack(
    images: Any,
    *,
    reference: int | str = "middle",
    upsample_factor: int = 20,
    interpolation: Interpolation = "spline",
    max_shift: float | None = None,
    normalization: Literal["phase"] | None = "phase",
) -> RegistrationResult:
    """Register every plane of a stack to a reference by phase cross-correlation.

    Parameters
    ----------
    images
        ``(plane, y, x)`` stack (energies or times), finite.
    reference
        Plane index, ``"first"``, ``"middle"`` (default), ``"last"``, ``"mean"`` or
        ``"previous"`` (chain each plane to its predecessor, accumulating shifts).
    upsample_factor
        Shifts are resolved to ``1 / upsample_factor`` pixel (20: 0.05 px).
    interpolation
        How shifts are applied: ``"spline"`` (default) or ``"fourier"``.
    max_shift
        If given, a larger recovered shift (pixels) raises :class:`DataError`
        (registration has probably locked onto noise).
    normalization
        ``"phase"`` (default): phase correlation (whitened spectrum, sharp peak);
        ``None``: plain cross-correlation, more robust for very noisy or smooth images.

    Returns
    -------
    RegistrationResult

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> from scipy import ndimage as ndi
    >>> base = ndi.gaussian_filter(rng.random((64, 64)), 3)
    >>> moved = ndi.shift(base, (1.5, -0.75), mode="grid-wrap")
    >>> res = register_stack(np.stack([base, moved]), reference="first")
    >>> np.round(res.shifts[1], 1)
    array([-1.5,  0.8])
    """
    from skimage.registration import phase_cross_correlation

    a = np.asarray(images, dtype=np.float64)
    if a.ndim != 3 or min(a.shape[1:]) < 4:
        raise DataError(
            f"images have shape {a.shape}; expected a (plane, y, x) stack of images >= 4x4",
            where="register_stack: images",
            fix="stack the planes along the first axis",
        )
    if not np.all(np.isfinite(a)):
        raise DataError(
            "images contain NaN/inf",
            where="register_stack: images",
            fix="replace the bad pixels before registration",
        )
    if int(upsample_factor) < 1:
        raise ParameterError(
            f"upsample_factor={upsample_factor}",
            where="register_stack: upsample_factor",
            fix="use an integer >= 1",
        )
    ref_img, ref_label = _reference_image(a, reference)
    shifts = np.zeros((a.shape[0], 2))
    errors = np.zeros(a.shape[0])
    for i in range(a.shape[0]):
        if ref_img is None:  # chained registration
            if i == 0:
                continue
            step, err, _ = phase_cross_correlation(
                a[i - 1], a[i], upsample_factor=int(upsample_factor), normalization=normalization
            )
            shifts[i] = shifts[i - 1] + np.asarray(step)
        else:
            step, err, _ = phase_cross_correlation(
                ref_img, a[i], upsample_factor=int(upsample_factor), normalization=normalization
            )
            shifts[i] = np.asarray(step)
        errors[i] = float(err)
    if ref_label == "mean" and a.shape[0] > 2:
        # refine against the mean of the *other* aligned planes (leave-one-out: a plane's
        # own noise in the mean would pin the correlation peak at zero shift)
        aligned = apply_shifts(a, shifts, interpolation=interpolation)
        total = aligned.sum(axis=0)
        for i in range(a.shape[0]):
            ref_i = (total - aligned[i]) / (a.shape[0] - 1)
            step, err, _ = phase_cross_correlation(
                ref_i, aligned[i], upsample_factor=int(upsample_factor),
                normalization=normalization,
            )  # fmt: skip
            shifts[i] += np.asarray(step)
            errors[i] = float(err)
    if max_shift is not None:
        worst = float(np.abs(shifts).max())
        if worst > max_shift:
            raise DataError(
                f"registration found a shift of {worst:.2f} px > max_shift={max_shift}",
                where="register_stack",
                fix="check the stack (a blank plane?) or raise max_shift",
            )
    return RegistrationResult(
        images=apply_shifts(a, shifts, interpolation=interpolation),
        shifts=shifts,
        errors=errors,
        reference=ref_label,
    )


def register_series(
    images: Any,
    *,
    reference: int | str = "previous",
    upsample_factor: int = 20,
    interpolation: Interpolation = "spline",
    max_shift: float | None = None,
    normalization: Literal["phase"] | None = "phase",
) -> RegistrationResult:
    """Register a particle time series ``(t, y, x)``; by default each frame to the previous.

    Chaining (``reference="previous"``) follows slow drift while the particle's contrast
    evolves (lithiation fronts), where a single fixed reference would lose correlation.
    Same options and result as :func:`register_stack`.
    """
    return register_stack(
        images,
        reference=reference,
        upsample_factor=upsample_factor,
        interpolation=interpolation,
        max_shift=max_shift,
        normalization=normalization,
    )
