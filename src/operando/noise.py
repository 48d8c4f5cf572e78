"""Synthetic noise models for image series, following the paper's corruption protocol.

Every model is a pure function of an explicit JAX PRNG key (the first positional argument)
and an array of shape ``(..., y, x)``: the last two axes are the image rows and columns and
any leading axes (``t``, ``realization``, ...) index independent frames. Pixels are drawn
independently, every per-image statistic (the standard deviation that sets a relative
amplitude) is taken per frame over ``(y, x)``, and every spatial filter (the 3×3 median)
acts within a frame, never across frames. The same key gives the same output; split keys
(:func:`jax.random.split`) for independent draws.

The paper models (gaussian, poisson, impulse, composite) reproduce Supplementary S2.1 of
the source study [1]_: images in ``[0, 1]`` (concentration fields) are corrupted, then
clipped to ``[0.01, 0.99]``. Clipping is on by default in *every* function here
(``clip=(0.01, 0.99)``, the constant :data:`PAPER_CLIP`); pass ``clip=None`` for data that
are not on a ``[0, 1]`` scale or to study the raw noise statistics. :func:`scanline` adds a
model of the horizontally correlated raster-scan noise of STXM (Fig. S3 of [1]_).

Noise can also be named by a short string (for the CLI and for provenance)::

    gaussian:REL          x + REL * std(x) * N(0, 1)         REL >= 0 (0.3 = 30 %)
    poisson:LAM           Poisson(LAM * x) / LAM             LAM > 0
    impulse:ALPHA         salt-and-pepper, then 3×3 median   0 <= ALPHA <= 1
    composite             impulse 0.2 -> poisson 1e4 -> gaussian 0.1 -> 3×3 median
    scanline:SIGMA:LEN    AR(1) noise along x, SIGMA * std(x), correlation length LEN >= 0

parsed by :func:`parse_noise_spec` into a :class:`NoiseSpec` and applied by
:func:`apply_noise`. Library code never enables float64; a float64 input gives a float64
output when the caller has enabled it (:func:`operando.config.enable_x64`).

References
----------
.. [1] Supplementary Information S2.1, "Cahn-Hilliard Simulations and PDE-constrained
   Optimization", of the deep-denoising operando microscopy study (seed 000).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from .errors import DataError, ParameterError

__all__ = [
    "NOISE_FORMS",
    "PAPER_CLIP",
    "NoiseSpec",
    "apply_noise",
    "clip_values",
    "composite",
    "gaussian",
    "impulse",
    "median3x3",
    "parse_noise_spec",
    "poisson",
    "scanline",
]

Clip = tuple[float, float] | None

#: Range the paper clips corrupted images to ("to prevent numerical instabilities").
PAPER_CLIP: tuple[float, float] = (0.01, 0.99)

#: Parameters of the paper's composite model, in the order they are applied.
COMPOSITE_ALPHA = 0.2
COMPOSITE_LAM = 1e4
COMPOSITE_REL = 0.1


# ------------------------------------------------------------------------- validation


def _is_tracer(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer)


def _check_key(key: Any, where: str) -> None:
    if isinstance(key, int | float) or key is None:
        raise ParameterError(
            f"expected a JAX PRNG key, got {key!r}",
            where=f"{where}: key",
            fix="pass jax.random.key(seed) (randomness is an explicit argument)",
        )


def _as_image(x: Any, where: str) -> jax.Array:
    """``x`` as a floating JAX array of shape (..., y, x); finite when concrete."""
    if _is_tracer(x):
        arr = x
    else:
        try:
            arr = jnp.asarray(x)
        except TypeError as err:
            raise DataError(
                f"cannot convert {type(x).__name__} to an array ({err})",
                where=f"{where}: x",
                fix="pass a numeric array of shape (..., y, x)",
            ) from None
    if arr.dtype.kind == "c" or arr.dtype.kind not in "biuf":
        raise DataError(
            f"images have dtype {arr.dtype}; expected real numbers",
            where=f"{where}: x",
            fix="pass a real-valued array (np.abs / np.angle for complex data)",
        )
    if arr.ndim < 2:
        raise DataError(
            f"images have {arr.ndim} dimension(s), shape {arr.shape}; expected (..., y, x)",
            where=f"{where}: x",
            fix="pass at least a 2D image; a series is (t, y, x)",
        )
    if any(n == 0 for n in arr.shape):
        raise DataError(f"images are empty, shape {arr.shape}", where=f"{where}: x")
    if arr.dtype.kind != "f":
        arr = arr.astype(jnp.result_type(float))
    if not _is_tracer(arr):
        bad = int(arr.size - jnp.count_nonzero(jnp.isfinite(arr)))
        if bad:
            raise DataError(
                f"images contain {bad} NaN/inf pixel(s)",
                where=f"{where}: x",
                fix="replace or mask the non-finite pixels before adding noise",
            )
    return arr


def _param(
    value: Any,
    name: str,
    where: str,
    *,
    low: float,
    high: float = math.inf,
    low_open: bool = False,
) -> float:
    """A finite real scalar in ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ParameterError(
            f"{name}={value!r} is not a real number",
            where=f"{where}: {name}",
            fix=f"give {name} as a number",
        ) from None
    if not math.isfinite(v):
        raise ParameterError(
            f"{name}={value!r} is not a finite number",
            where=f"{where}: {name}",
            fix=f"give {name} a finite value",
        )
    if not ((v > low if low_open else v >= low) and v <= high):
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{']' if high < math.inf else ')'}"
        raise ParameterError(
            f"{name}={value!r} is outside {interval}",
            where=f"{where}: {name}",
            fix=f"choose {name} in {interval}",
        )
    return v


def _check_clip(clip: Clip, where: str) -> Clip:
    if clip is None:
        return None
    try:
        lo, hi = (float(c) for c in clip)
    except (TypeError, ValueError):
        raise ParameterError(
            f"clip={clip!r} is not a pair (low, high)",
            where=f"{where}: clip",
            fix="pass clip=(0.01, 0.99), another (low, high) pair, or None",
        ) from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ParameterError(
            f"clip=({lo!r}, {hi!r}) needs finite low < high",
            where=f"{where}: clip",
            fix="pass clip=(0.01, 0.99), another (low, high) pair, or None",
        )
    return (lo, hi)


def clip_values(x: jax.Array, clip: Clip = PAPER_CLIP) -> jax.Array:
    """Clip pixel values to ``clip = (low, high)``; ``None`` returns ``x`` unchanged.

    Parameters
    ----------
    x
        Array of any shape.
    clip
        ``(low, high)`` with ``low < high``, or ``None``. Default: the paper's
        ``(0.01, 0.99)``.

    Returns
    -------
    jax.Array
        ``min(max(x, low), high)``, same shape and dtype as ``x``.
    """
    c = _check_clip(clip, "clip_values")
    if c is None:
        return jnp.asarray(x)
    return jnp.clip(x, c[0], c[1])


# ---------------------------------------------------------------------------- kernels


def _frame_std(x: jax.Array) -> jax.Array:
    """Population standard deviation of every frame over (y, x), kept as (..., 1, 1)."""
    return jnp.std(x, axis=(-2, -1), keepdims=True)


@jax.jit
def _gaussian_kernel(key: jax.Array, x: jax.Array, rel: jax.Array) -> jax.Array:
    z = jax.random.normal(key, x.shape, dtype=x.dtype)
    return x + rel.astype(x.dtype) * _frame_std(x) * z


@jax.jit
def _poisson_kernel(key: jax.Array, x: jax.Array, lam: jax.Array) -> jax.Array:
    lam = lam.astype(x.dtype)
    counts = jax.random.poisson(key, lam * jnp.maximum(x, 0), shape=x.shape)
    return counts.astype(x.dtype) / lam


@jax.jit
def _impulse_kernel(
    key: jax.Array, x: jax.Array, alpha: jax.Array, low: jax.Array, high: jax.Array
) -> jax.Array:
    k_hit, k_salt = jax.random.split(key)
    hit = jax.random.uniform(k_hit, x.shape, dtype=x.dtype) < alpha.astype(x.dtype)
    salt = jax.random.bernoulli(k_salt, 0.5, x.shape)
    value = jnp.where(salt, high.astype(x.dtype), low.astype(x.dtype))
    return jnp.where(hit, value, x)


# Compare-exchange network that leaves the median of 9 values in slot 4 (Paeth 1990;
# N. Devillard's "opt_med9"): 19 elementwise min/max pairs, much faster than a sort.
_MED9_NETWORK = (
    (1, 2), (4, 5), (7, 8), (0, 1), (3, 4), (6, 7), (1, 2), (4, 5), (7, 8), (0, 3),
    (5, 8), (4, 7), (3, 6), (1, 4), (2, 5), (4, 7), (4, 2), (6, 4), (4, 2),
)  # fmt: skip


@jax.jit
def _median3x3_kernel(x: jax.Array) -> jax.Array:
    ny, nx = x.shape[-2:]
    # 'symmetric' repeats the edge pixel (d c b a | a b c d): scipy.ndimage's "reflect".
    pad = [(0, 0)] * (x.ndim - 2) + [(1, 1), (1, 1)]
    p = jnp.pad(x, pad, mode="symmetric")
    v = [p[..., i : i + ny, j : j + nx] for i in range(3) for j in range(3)]
    for a, b in _MED9_NETWORK:
        v[a], v[b] = jnp.minimum(v[a], v[b]), jnp.maximum(v[a], v[b])
    return v[4]


def _ar1_combine(
    left: tuple[jax.Array, jax.Array], right: tuple[jax.Array, jax.Array]
) -> tuple[jax.Array, jax.Array]:
    # Composition of affine maps e -> a*e + b (left first, then right).
    a1, b1 = left
    a2, b2 = right
    return a1 * a2, a2 * b1 + b2


@jax.jit
def _scanline_kernel(
    key: jax.Array, x: jax.Array, sigma: jax.Array, length: jax.Array
) -> jax.Array:
    dtype = x.dtype
    length = length.astype(dtype)
    phi = jnp.where(length > 0, jnp.exp(-1.0 / jnp.where(length > 0, length, 1.0)), 0.0)
    w = jax.random.normal(key, x.shape, dtype=dtype)
    # Stationary AR(1) along x: e_0 = w_0, e_i = phi e_{i-1} + sqrt(1 - phi^2) w_i, so that
    # Var(e_i) = 1 for every i and Corr(e_i, e_{i+k}) = phi^k = exp(-k / length).
    b = w * jnp.sqrt(1.0 - phi**2)
    b = b.at[..., 0].set(w[..., 0])
    a = jnp.broadcast_to(phi, x.shape).astype(dtype)
    _, e = jax.lax.associative_scan(_ar1_combine, (a, b), axis=x.ndim - 1)
    return x + sigma.astype(dtype) * _frame_std(x) * e


def _scalar(v: float, like: jax.Array) -> jax.Array:
    return jnp.asarray(v, dtype=like.dtype)


def _finish(y: jax.Array, clip: Clip) -> jax.Array:
    return y if clip is None else jnp.clip(y, clip[0], clip[1])


# ----------------------------------------------------------------------- noise models


def gaussian(key: jax.Array, x: Any, rel: float, *, clip: Clip = PAPER_CLIP) -> jax.Array:
    r"""Additive Gaussian noise with an amplitude relative to each frame's spread.

    .. math:: \tilde x = x + \mathrm{rel}\,\sigma_f(x)\,\xi, \qquad \xi \sim N(0, 1)

    where :math:`\sigma_f` is the population standard deviation of the frame over
    ``(y, x)`` (per frame, not over the whole series), i.i.d. per pixel; then clipping.

    Parameters
    ----------
    key
        JAX PRNG key, e.g. ``jax.random.key(0)``.
    x
        Clean images ``(..., y, x)``, finite.
    rel
        Relative amplitude, ``rel >= 0``; the paper uses 0.1, 0.2 and 0.3.
    clip
        ``(low, high)`` applied after corruption, or ``None``. Default ``(0.01, 0.99)``.

    Returns
    -------
    jax.Array
        Noisy images, same shape and floating dtype as ``x``.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> x = jnp.linspace(0.2, 0.8, 64 * 64).reshape(64, 64)
    >>> y = gaussian(jax.random.key(0), x, 0.3)
    >>> y.shape
    (64, 64)
    """
    _check_key(key, "gaussian")
    arr = _as_image(x, "gaussian")
    r = _param(rel, "rel", "gaussian", low=0.0)
    c = _check_clip(clip, "gaussian")
    return _finish(_gaussian_kernel(key, arr, _scalar(r, arr)), c)


def poisson(key: jax.Array, x: Any, lam: float, *, clip: Clip = PAPER_CLIP) -> jax.Array:
    r"""Poisson (shot) noise at ``lam`` counts per unit of signal.

    .. math:: \tilde x = N / \lambda, \qquad N \sim \mathrm{Poisson}(\lambda \max(x, 0))

    so that :math:`E[\tilde x] = x` and :math:`\mathrm{Var}[\tilde x] = x / \lambda` for
    ``x >= 0``; a smaller ``lam`` is noisier. Negative pixels are treated as zero signal
    (they become exactly 0 before clipping). Then clipping.

    Parameters
    ----------
    key
        JAX PRNG key.
    x
        Clean images ``(..., y, x)``, finite, normally in ``[0, 1]``.
    lam
        Counts per unit intensity, ``lam > 0``; the paper uses 1e2, 1e3 and 1e4.
    clip
        ``(low, high)`` applied after corruption, or ``None``. Default ``(0.01, 0.99)``.

    Returns
    -------
    jax.Array
        Noisy images, same shape and floating dtype as ``x``.
    """
    _check_key(key, "poisson")
    arr = _as_image(x, "poisson")
    lam_ = _param(lam, "lam", "poisson", low=0.0, low_open=True)
    c = _check_clip(clip, "poisson")
    return _finish(_poisson_kernel(key, arr, _scalar(lam_, arr)), c)


def median3x3(x: Any) -> jax.Array:
    """3×3 median filter over ``(y, x)`` of every frame, boundaries reflected.

    The boundary is extended by mirroring with the edge pixel repeated (``d c b a | a b c
    d``), which is :func:`scipy.ndimage.median_filter`'s default ``mode="reflect"``; the
    result equals ``scipy.ndimage.median_filter(x, size=(1, ..., 1, 3, 3))``.

    Parameters
    ----------
    x
        Images ``(..., y, x)``, finite.

    Returns
    -------
    jax.Array
        Filtered images, same shape and floating dtype as ``x``.
    """
    return _median3x3_kernel(_as_image(x, "median3x3"))


def impulse(
    key: jax.Array,
    x: Any,
    alpha: float,
    *,
    median: bool = True,
    low: float = 0.0,
    high: float = 1.0,
    clip: Clip = PAPER_CLIP,
) -> jax.Array:
    r"""Impulse (salt-and-pepper) noise, then a 3×3 median filter.

    Each pixel independently, with probability ``alpha``, is replaced by ``high`` (salt)
    or ``low`` (pepper) with equal odds:

    .. math::
        \tilde x = \begin{cases} \mathrm{high} & \text{prob. } \alpha/2 \\
                   \mathrm{low} & \text{prob. } \alpha/2 \\
                   x & \text{prob. } 1 - \alpha \end{cases}

    then, if ``median``, :func:`median3x3` per frame, then clipping. ``low=0, high=1``
    are the extremes of ``[0, 1]`` data (the paper's concentration fields); pass the data
    range for other data.

    Parameters
    ----------
    key
        JAX PRNG key.
    x
        Clean images ``(..., y, x)``, finite.
    alpha
        Corruption probability per pixel, ``0 <= alpha <= 1``; the paper uses 0.2, 0.3
        and 0.4.
    median
        Apply the 3×3 median filter after corruption (the paper does). Default ``True``.
    low, high
        Pepper and salt values. Default 0 and 1.
    clip
        ``(low, high)`` applied last, or ``None``. Default ``(0.01, 0.99)``.

    Returns
    -------
    jax.Array
        Noisy images, same shape and floating dtype as ``x``.
    """
    _check_key(key, "impulse")
    arr = _as_image(x, "impulse")
    a = _param(alpha, "alpha", "impulse", low=0.0, high=1.0)
    lo = _param(low, "low", "impulse", low=-math.inf)
    hi = _param(high, "high", "impulse", low=-math.inf)
    c = _check_clip(clip, "impulse")
    y = _impulse_kernel(key, arr, _scalar(a, arr), _scalar(lo, arr), _scalar(hi, arr))
    if median:
        y = _median3x3_kernel(y)
    return _finish(y, c)


def composite(
    key: jax.Array,
    x: Any,
    *,
    alpha: float = COMPOSITE_ALPHA,
    lam: float = COMPOSITE_LAM,
    rel: float = COMPOSITE_REL,
    clip: Clip = PAPER_CLIP,
) -> jax.Array:
    r"""The paper's composite noise: impulse, then Poisson, then Gaussian, then median.

    .. math::
        \tilde x = \mathrm{clip}\big(M_{3\times3}\big(
        G_{\mathrm{rel}}(P_\lambda(I_\alpha(x)))\big)\big)

    with :math:`I_\alpha` = :func:`impulse` without its median filter (``alpha=0.2``),
    :math:`P_\lambda` = :func:`poisson` (``lam=1e4``), :math:`G_\mathrm{rel}` =
    :func:`gaussian` (``rel=0.1``) and :math:`M_{3\times3}` = :func:`median3x3`; no
    clipping between stages. The Gaussian amplitude is relative to the standard deviation
    of the image it is applied to (the impulse- and Poisson-corrupted frame), as the stages
    are applied "in sequence". The key is split as
    ``k_impulse, k_poisson, k_gaussian = jax.random.split(key, 3)``.

    Parameters
    ----------
    key
        JAX PRNG key.
    x
        Clean images ``(..., y, x)``, finite, in ``[0, 1]``.
    alpha, lam, rel
        Stage parameters; defaults are the paper's (0.2, 1e4, 0.1).
    clip
        ``(low, high)`` applied last, or ``None``. Default ``(0.01, 0.99)``.

    Returns
    -------
    jax.Array
        Noisy images, same shape and floating dtype as ``x``.
    """
    _check_key(key, "composite")
    arr = _as_image(x, "composite")
    k_imp, k_poi, k_gau = jax.random.split(key, 3)
    y = impulse(k_imp, arr, alpha, median=False, clip=None)
    y = poisson(k_poi, y, lam, clip=None)
    y = gaussian(k_gau, y, rel, clip=None)
    return _finish(_median3x3_kernel(y), _check_clip(clip, "composite"))


def scanline(
    key: jax.Array,
    x: Any,
    sigma: float,
    length: float,
    *,
    clip: Clip = PAPER_CLIP,
) -> jax.Array:
    r"""Raster-scan noise correlated along the fast-scan axis ``x`` (STXM-like).

    .. math::
        \tilde x_{r,i} = x_{r,i} + \sigma\,\sigma_f(x)\,e_{r,i}, \qquad
        e_{r,i} = \phi\,e_{r,i-1} + \sqrt{1 - \phi^2}\,w_{r,i},\quad
        e_{r,0} = w_{r,0},\quad \phi = e^{-1/\mathrm{length}}

    with :math:`w \sim N(0, 1)` i.i.d. Every row ``r`` (and frame) is an independent,
    stationary AR(1) sequence along ``x`` with unit variance at every pixel and
    autocorrelation :math:`\mathrm{Corr}(e_i, e_{i+k}) = e^{-k/\mathrm{length}}`; so the
    noise standard deviation is exactly ``sigma`` times the frame's standard deviation
    :math:`\sigma_f` (relative, like :func:`gaussian`), ``length`` is the e-folding
    correlation length in pixels, and ``length = 0`` is white noise. Rows are
    uncorrelated. Real STXM noise shows this horizontal streaking (seed 000, Fig. S3).

    Parameters
    ----------
    key
        JAX PRNG key.
    x
        Clean images ``(..., y, x)``, finite; ``x`` (last axis) is the fast-scan axis.
    sigma
        Noise standard deviation relative to the frame standard deviation, ``>= 0``.
    length
        Correlation length along ``x`` in pixels, ``>= 0``.
    clip
        ``(low, high)`` applied after corruption, or ``None``. Default ``(0.01, 0.99)``,
        which suits ``[0, 1]`` data only; pass ``None`` for absorbance or counts.

    Returns
    -------
    jax.Array
        Noisy images, same shape and floating dtype as ``x``.
    """
    _check_key(key, "scanline")
    arr = _as_image(x, "scanline")
    s = _param(sigma, "sigma", "scanline", low=0.0)
    ell = _param(length, "length", "scanline", low=0.0)
    c = _check_clip(clip, "scanline")
    return _finish(_scanline_kernel(key, arr, _scalar(s, arr), _scalar(ell, arr)), c)


# ------------------------------------------------------------------ specs and dispatch


@dataclass(frozen=True)
class _Model:
    params: tuple[str, ...]
    validate: Callable[[tuple[float, ...], str], None]
    form: str


def _v_gaussian(p: tuple[float, ...], where: str) -> None:
    _param(p[0], "rel", where, low=0.0)


def _v_poisson(p: tuple[float, ...], where: str) -> None:
    _param(p[0], "lam", where, low=0.0, low_open=True)


def _v_impulse(p: tuple[float, ...], where: str) -> None:
    _param(p[0], "alpha", where, low=0.0, high=1.0)


def _v_none(p: tuple[float, ...], where: str) -> None:
    return None


def _v_scanline(p: tuple[float, ...], where: str) -> None:
    _param(p[0], "sigma", where, low=0.0)
    _param(p[1], "length", where, low=0.0)


# Registry of the named noise models: name -> parameter names, validator, spec form.
_MODELS: dict[str, _Model] = {
    "gaussian": _Model(("rel",), _v_gaussian, "gaussian:REL (REL >= 0, e.g. 0.3 = 30%)"),
    "poisson": _Model(("lam",), _v_poisson, "poisson:LAM (LAM > 0, e.g. 100)"),
    "impulse": _Model(("alpha",), _v_impulse, "impulse:ALPHA (0 <= ALPHA <= 1, e.g. 0.4)"),
    "composite": _Model((), _v_none, "composite"),
    "scanline": _Model(
        ("sigma", "length"), _v_scanline, "scanline:SIGMA:LEN (SIGMA >= 0, LEN >= 0 px)"
    ),
}


#: The spec form of every noise model, e.g. ``{"gaussian": "gaussian:REL (...)", ...}``.
NOISE_FORMS: dict[str, str] = {name: m.form for name, m in _MODELS.items()}


def _valid_forms() -> str:
    return "; ".join(NOISE_FORMS.values())


def _raw(name: Any, params: Any) -> str:
    try:
        return ":".join([str(name), *(str(p) for p in params)])
    except TypeError:
        return f"{name}:{params}"


def _fmt(v: float) -> str:
    s = repr(float(v))
    return s[:-2] if s.endswith(".0") else s


@dataclass(frozen=True)
class NoiseSpec:
    """A named noise model with its parameters, e.g. ``NoiseSpec("gaussian", (0.3,))``.

    ``str(spec)`` (= :meth:`describe`) gives the canonical spec string, and
    ``parse_noise_spec(str(spec)) == spec``. Parameters are validated on construction.

    Attributes
    ----------
    name
        One of ``gaussian``, ``poisson``, ``impulse``, ``composite``, ``scanline``.
    params
        The numeric parameters in spec order (see :data:`NOISE_FORMS`).
    """

    name: str
    params: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        model = _MODELS.get(self.name)
        where = f"noise spec {_raw(self.name, self.params)!r}"
        if model is None:
            raise ParameterError(
                f"unknown noise model {self.name!r}",
                where=where,
                fix=f"use one of: {_valid_forms()}",
            )
        try:
            params = tuple(self.params)
        except TypeError:
            params = (self.params,)
        if len(params) != len(model.params):
            raise ParameterError(
                f"{self.name} takes {len(model.params)} parameter(s) "
                f"{model.params}, got {len(params)}",
                where=where,
                fix=f"write it as {model.form}; valid forms: {_valid_forms()}",
            )
        params = tuple(
            _param(p, n, where, low=-math.inf) for p, n in zip(params, model.params, strict=True)
        )
        model.validate(params, where)
        object.__setattr__(self, "params", params)

    def describe(self) -> str:
        """The canonical spec string, e.g. ``"gaussian:0.3"`` or ``"poisson:100"``."""
        return ":".join([self.name, *(_fmt(p) for p in self.params)])

    def __str__(self) -> str:
        return self.describe()

    def as_dict(self) -> dict[str, Any]:
        """``{"noise": spec string, "model": name, <param name>: value, ...}`` for provenance."""
        names = _MODELS[self.name].params
        return {
            "noise": self.describe(),
            "model": self.name,
            **dict(zip(names, self.params, strict=True)),
        }


def parse_noise_spec(spec: str | NoiseSpec) -> NoiseSpec:
    """Parse a noise spec string such as ``"gaussian:0.3"`` into a :class:`NoiseSpec`.

    Grammar: ``NAME[:P1[:P2]]``, fields separated by ``:``, the name case-insensitive,
    surrounding whitespace ignored, parameters as Python float literals (``1e4``)::

        gaussian:REL | poisson:LAM | impulse:ALPHA | composite | scanline:SIGMA:LEN

    Parameters
    ----------
    spec
        The spec string (a :class:`NoiseSpec` is returned unchanged).

    Returns
    -------
    NoiseSpec

    Raises
    ------
    ParameterError
        Unknown name, wrong number of parameters, a parameter that is not a number or is
        out of range; the message names the spec and lists the valid forms.
    """
    if isinstance(spec, NoiseSpec):
        return spec
    if not isinstance(spec, str):
        raise ParameterError(
            f"noise spec must be a string, got {type(spec).__name__}",
            where="noise spec",
            fix=f"use one of: {_valid_forms()}",
        )
    where = f"noise spec {spec!r}"
    fields = [f.strip() for f in spec.strip().split(":")]
    name = fields[0].lower()
    if name not in _MODELS:
        raise ParameterError(
            f"unknown noise model {fields[0]!r}" if fields[0] else "empty noise spec",
            where=where,
            fix=f"use one of: {_valid_forms()}",
        )
    model = _MODELS[name]
    values: list[float] = []
    for pname, text in zip(model.params, fields[1:], strict=False):
        try:
            v = float(text)
        except ValueError:
            raise ParameterError(
                f"{pname}={text!r} is not a number",
                where=where,
                fix=f"write it as {model.form}; valid forms: {_valid_forms()}",
            ) from None
        values.append(v)
    if len(fields) - 1 != len(model.params):
        raise ParameterError(
            f"{name} takes {len(model.params)} parameter(s), got {len(fields) - 1}",
            where=where,
            fix=f"write it as {model.form}; valid forms: {_valid_forms()}",
        )
    try:
        return NoiseSpec(name, tuple(values))
    except ParameterError as err:
        raise ParameterError(
            err.what, where=where, fix=f"{err.fix}; valid forms: {_valid_forms()}"
        ) from None


def apply_noise(
    key: jax.Array, x: Any, spec: str | NoiseSpec, *, clip: Clip = PAPER_CLIP
) -> jax.Array:
    """Corrupt ``x`` with the noise model named by ``spec``.

    Parameters
    ----------
    key
        JAX PRNG key, e.g. ``jax.random.key(seed)``.
    x
        Clean images ``(..., y, x)``, finite.
    spec
        A spec string (see :func:`parse_noise_spec`) or a :class:`NoiseSpec`.
    clip
        ``(low, high)`` applied after corruption, or ``None``. Default ``(0.01, 0.99)``
        (the paper's; suited to ``[0, 1]`` data).

    Returns
    -------
    jax.Array
        Noisy images, same shape and floating dtype as ``x``.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> x = jnp.full((2, 16, 16), 0.5)
    >>> apply_noise(jax.random.key(1), x, "poisson:1e4").shape
    (2, 16, 16)
    """
    s = parse_noise_spec(spec)
    p = s.params
    if s.name == "gaussian":
        return gaussian(key, x, p[0], clip=clip)
    if s.name == "poisson":
        return poisson(key, x, p[0], clip=clip)
    if s.name == "impulse":
        return impulse(key, x, p[0], clip=clip)
    if s.name == "composite":
        return composite(key, x, clip=clip)
    return scanline(key, x, p[0], p[1], clip=clip)
