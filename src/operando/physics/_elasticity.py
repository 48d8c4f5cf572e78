r"""2D linear elasticity with an eigenstrain, on a particle mask or a periodic box.

Model (seed 003 eq. 1; seed 002 Methods "Chemomechanics"): the stress is
:math:`\sigma = C : (\varepsilon(u) - \varepsilon^0(x))` with the eigenstrain
:math:`\varepsilon^0 = f(X(x))`, and the displacement :math:`u` satisfies mechanical
equilibrium :math:`\nabla\cdot\sigma = 0`.

Conventions
-----------
* Images are ``(row, column)`` = ``(y, x)``; the crystal **a axis is x (columns)** and the
  **c axis is y (rows)**; the b axis (the platelet's thin direction and the 4D-STEM zone
  axis) is out of plane.
* Strain and stress fields have shape ``(rows, columns, 3)`` with components
  ``(xx, yy, xy)`` = ``(aa, cc, ac)``; ``xy`` is the *tensor* shear
  :math:`\varepsilon_{xy} = \gamma_{xy}/2`. Displacements are in pixels (strain is
  dimensionless, so the pixel size never enters). Stress has the units of the stiffness
  (GPa for :data:`LFP_STIFFNESS_GPA`).
* The 2D stiffness is a ``(3, 3)`` Voigt matrix ``Q`` acting on engineering strain
  ``(e_xx, e_yy, 2 e_xy)``. :func:`stiffness_2d` reduces a 3D orthotropic ``C``:
  **plane stress** (:math:`\sigma_{bb} = 0`, the thin-platelet limit, default):
  ``Q = C_in - C_in,b C_b,in / C_bb``; the out-of-plane eigenstrain then produces no
  in-plane stress and is ignored. **Plane strain** (:math:`\varepsilon_{bb} = 0`,
  a long prism): ``Q = C_in`` (the out-of-plane eigenstrain is not modelled here).

Solvers
-------
* **Finite particle, zero traction** (:class:`ElasticParticle`, :func:`solve_elasticity`):
  bilinear (Q1) finite elements, one element per mask pixel (nodes at pixel corners,
  2x2 Gauss quadrature, eigenstrain constant per pixel). The traction-free boundary is the
  natural boundary condition of the variational form, so it is exact for the pixelated
  shape, with no soft-void contrast parameter and no Gibbs ringing at the edge (which is
  why we prefer this over a soft-void FFT scheme, whose convergence degrades as the void
  stiffness goes to zero). Rigid-body modes are removed by pinning one node (both
  components) and one more component per connected particle; the loads of an eigenstrain
  are self-equilibrated, so the pins carry no force and strains/stresses are unaffected.
  Two back-ends share the same element matrices:

  - ``method="cg"``: matrix-free, Jacobi-preconditioned conjugate gradients in JAX
    (:func:`jax.scipy.sparse.linalg.cg`, an implicit ``custom_linear_solve``), so the
    solution is differentiable in the eigenstrain (and anything it depends on) and can
    be jitted inside a time stepper.
  - ``method="direct"``: scipy's sparse LU of the assembled stiffness, factorised once
    per mask; not differentiable, but every further right-hand side costs milliseconds.
    The inverse problems (:mod:`operando.inverse`) are linear in the unknowns and use it
    to build their design matrices.

* **Periodic box** (:func:`solve_periodic`): Khachaturyan's homogeneous-modulus solution
  in Fourier space, :math:`\hat\varepsilon(k) = \mathrm{sym}(n \otimes A(n)^{-1}\hat\sigma^0 n)`
  with the acoustic tensor :math:`A(n) = n\cdot C\cdot n`; exact (spectral) for a
  homogeneous, periodic body, and cheap (two FFTs), so it is the default coherency hook.

References
----------
Stiffness of Li_xFePO4 (GPa): Cogswell & Bazant, ACS Nano 6, 2215 (2012), Table 1, the
average of the first-principles LiFePO4 and FePO4 constants of Maxisch & Ceder,
Phys. Rev. B 73, 174112 (2006). Misfit strain at X = 1 relative to FePO4 (a, b, c) =
(+0.05, +0.028, -0.025) from the same table; seed 003 quotes the sign pattern
(expansion along a, contraction along c). Eshelby, Proc. R. Soc. A 241, 376 (1957);
Khachaturyan, *Theory of Structural Transformations in Solids* (1983), ch. 7.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.ndimage as ndi
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from jaxtyping import Array, ArrayLike, Float

from ..errors import DataError, ParameterError

__all__ = [
    "LFP_MISFIT",
    "LFP_STIFFNESS_GPA",
    "ElasticParticle",
    "ElasticSolution",
    "coherency_hook",
    "elastic_chemical_potential",
    "elastic_energy_density",
    "habit_orientation",
    "isotropic_stiffness",
    "khachaturyan_b",
    "lfp_stiffness",
    "solve_elasticity",
    "solve_periodic",
    "stiffness_2d",
    "strain_incompatibility",
]

#: Orthotropic stiffness of Li_xFePO4 in GPa (Voigt indices 1 = a, 2 = b, 3 = c),
#: Cogswell & Bazant, ACS Nano 6, 2215 (2012), Table 1 (LFP/FP average of Maxisch & Ceder 2006).
LFP_STIFFNESS_GPA: dict[str, float] = {
    "C11": 157.4,
    "C22": 175.8,
    "C33": 154.0,
    "C44": 37.8,
    "C55": 49.05,
    "C66": 51.6,
    "C12": 51.2,
    "C13": 32.7,
    "C23": 53.25,
}
#: Misfit (eigen)strain of LiFePO4 relative to FePO4 along (a, b, c), same source.
LFP_MISFIT: tuple[float, float, float] = (0.05, 0.028, -0.025)

#: Li site density of LiFePO4 (1/m^3) and Boltzmann constant (J/K), for mu_el in kT.
_SITE_DENSITY = 1.374e28
_KB = 1.380649e-23

Mode = Literal["plane_stress", "plane_strain"]


# ------------------------------------------------------------------------- stiffness


def _voigt6(c: dict[str, float]) -> np.ndarray:
    m = np.zeros((6, 6))
    for key, v in c.items():
        i, j = int(key[1]) - 1, int(key[2]) - 1
        m[i, j] = m[j, i] = float(v)
    return m


def stiffness_2d(c: dict[str, float] | ArrayLike, mode: Mode = "plane_stress") -> np.ndarray:
    """Reduce a 3D orthotropic stiffness to the 2D (a, c) plane.

    Parameters
    ----------
    c
        ``{"C11": .., "C12": .., ...}`` (Voigt, 1 = a, 2 = b, 3 = c, 5 = ac shear) or a
        ``(6, 6)`` Voigt matrix.
    mode
        ``"plane_stress"`` (sigma_bb = 0; thin platelet, default) or ``"plane_strain"``.

    Returns
    -------
    numpy.ndarray
        ``(3, 3)`` matrix ``Q`` with ``(s_aa, s_cc, s_ac) = Q (e_aa, e_cc, 2 e_ac)``.
    """
    m = _voigt6(c) if isinstance(c, dict) else np.asarray(c, dtype=float)
    if m.shape != (6, 6):
        raise ParameterError(f"stiffness has shape {m.shape}", where="stiffness_2d", fix="(6, 6)")
    idx = [0, 2, 4]  # aa, cc, ac
    q = m[np.ix_(idx, idx)]
    if mode == "plane_stress":
        q = q - np.outer(m[idx, 1], m[1, idx]) / m[1, 1]
    elif mode != "plane_strain":
        raise ParameterError(
            f"mode {mode!r}", where="stiffness_2d", fix="use 'plane_stress' or 'plane_strain'"
        )
    if np.any(np.linalg.eigvalsh(q) <= 0):
        raise ParameterError("2D stiffness is not positive definite", where="stiffness_2d")
    return q


def lfp_stiffness(mode: Mode = "plane_stress") -> np.ndarray:
    """2D stiffness of Li_xFePO4 in the ac plane (GPa), see :data:`LFP_STIFFNESS_GPA`."""
    return stiffness_2d(LFP_STIFFNESS_GPA, mode)


def isotropic_stiffness(
    young: float = 1.0, poisson: float = 0.3, mode: Mode = "plane_strain"
) -> np.ndarray:
    """2D Voigt stiffness of an isotropic solid (Young's modulus, Poisson's ratio)."""
    lam = young * poisson / ((1 + poisson) * (1 - 2 * poisson))
    mu = young / (2 * (1 + poisson))
    if mode == "plane_stress":
        lam = 2 * lam * mu / (lam + 2 * mu)
    elif mode != "plane_strain":
        raise ParameterError(f"mode {mode!r}", where="isotropic_stiffness")
    return np.array([[lam + 2 * mu, lam, 0.0], [lam, lam + 2 * mu, 0.0], [0.0, 0.0, mu]])


def _check_q(q: ArrayLike) -> np.ndarray:
    q = np.asarray(q, dtype=float)
    if q.shape != (3, 3):
        raise ParameterError(
            f"stiffness has shape {q.shape}", where="stiffness", fix="pass a (3, 3) Voigt matrix"
        )
    return q


def _eng(e: Array) -> Array:
    """Tensor (xx, yy, xy) -> engineering (xx, yy, 2xy)."""
    return e * jnp.array([1.0, 1.0, 2.0], dtype=e.dtype)


# ------------------------------------------------------------------ Q1 element (numpy)

_GP = np.array([-1.0, 1.0]) / np.sqrt(3.0)
# local nodes: 0 (r, c), 1 (r, c+1), 2 (r+1, c+1), 3 (r+1, c); xi along x (columns),
# eta along y (rows).
_XI = np.array([-1.0, 1.0, 1.0, -1.0])
_ETA = np.array([-1.0, -1.0, 1.0, 1.0])


def _b_matrix(xi: float, eta: float) -> np.ndarray:
    """(3, 8) strain-displacement matrix (engineering shear) of a unit square element."""
    dndx = 0.25 * _XI * (1 + eta * _ETA) * 2.0
    dndy = 0.25 * _ETA * (1 + xi * _XI) * 2.0
    b = np.zeros((3, 8))
    b[0, 0::2] = dndx
    b[1, 1::2] = dndy
    b[2, 0::2] = dndy
    b[2, 1::2] = dndx
    return b


_B_CENTRE = _b_matrix(0.0, 0.0)


def _element_stiffness(q: np.ndarray) -> np.ndarray:
    ke = np.zeros((8, 8))
    for xi in _GP:
        for eta in _GP:
            b = _b_matrix(xi, eta)
            ke += 0.25 * b.T @ q @ b
    return ke


def _check_mask(mask: ArrayLike, where: str) -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim != 2:
        raise DataError(f"mask has {m.ndim} dims", where=where, fix="pass a 2D (row, column) mask")
    m = m.astype(bool)
    if not m.any():
        raise DataError("mask is empty (no particle pixels)", where=where, fix="check the mask")
    return m


def _check_field(field: ArrayLike, shape: tuple[int, int], where: str) -> Any:
    f = jnp.asarray(field)
    if f.shape != (*shape, 3):
        raise DataError(
            f"eigenstrain has shape {f.shape}, expected {(*shape, 3)}",
            where=where,
            fix="pass (rows, columns, 3) with components (xx, yy, xy)",
        )
    return f


def _node_dofs(shape: tuple[int, int]) -> np.ndarray:
    """(rows, cols, 8) global dof indices of each element (node-major, (ux, uy))."""
    h, w = shape
    nid = np.arange((h + 1) * (w + 1)).reshape(h + 1, w + 1)
    corners = np.stack([nid[:-1, :-1], nid[:-1, 1:], nid[1:, 1:], nid[1:, :-1]], axis=-1)
    return np.stack([2 * corners, 2 * corners + 1], axis=-1).reshape(h, w, 8)


def _pins(mask: np.ndarray) -> np.ndarray:
    """Dofs pinned to remove the rigid-body modes of each connected particle."""
    h, w = mask.shape
    labels, n = ndi.label(mask)
    pins = []
    for k in range(1, n + 1):
        rr, cc = np.nonzero(labels == k)
        i = int(np.argmin(cc * (h + 1) + rr))  # left-most element
        j = int(np.argmax(cc * (h + 1) + rr))  # right-most element
        a = rr[i] * (w + 1) + cc[i]  # its top-left node
        b = rr[j] * (w + 1) + cc[j] + 1  # top-right node of the right-most element
        # b lies at least one column to the right of a: pinning its y displacement
        # removes the rotation about a.
        pins += [2 * a, 2 * a + 1, 2 * b + 1]
    return np.asarray(pins, dtype=int)


class ElasticSolution(NamedTuple):
    """Displacement, strain, stress and elastic energy of an equilibrium solution.

    ``displacement`` ``(rows+1, cols+1, 2)`` node values (pixels; zero-mean-free for the
    periodic solver: ``(rows, cols, 2)`` is not returned there, it is ``None``);
    ``strain`` and ``stress`` ``(rows, cols, 3)`` pixel (element) means, tensor
    components (xx, yy, xy), zero outside the mask; ``energy`` the total elastic energy
    ``1/2 sum sigma:(eps - eps0)`` (stiffness units x pixel area).
    """

    displacement: Any
    strain: Any
    stress: Any
    energy: Any


class ElasticParticle:
    """Finite-element elasticity of one mask (one or several particles), zero traction.

    Precomputes the element matrices, the pinned dofs and (lazily) a sparse LU
    factorisation, so repeated solves on the same mask are cheap.

    Parameters
    ----------
    mask
        ``(rows, cols)`` bool, True inside the particle(s).
    stiffness
        ``(3, 3)`` Voigt stiffness ``Q`` (:func:`stiffness_2d`, :func:`lfp_stiffness`).

    Examples
    --------
    >>> import numpy as np
    >>> m = np.ones((6, 8), bool)
    >>> p = ElasticParticle(m, isotropic_stiffness())
    >>> eps0 = np.broadcast_to([0.01, -0.02, 0.0], (6, 8, 3))
    >>> float(abs(p.solve(eps0).stress).max()) < 1e-12  # free body: no stress
    True
    """

    def __init__(self, mask: ArrayLike, stiffness: ArrayLike):
        self.mask = _check_mask(mask, "ElasticParticle: mask")
        self.q = _check_q(stiffness)
        self.shape = self.mask.shape
        h, w = self.shape
        self.ke = _element_stiffness(self.q)
        self.n_dof = 2 * (h + 1) * (w + 1)
        dofs = _node_dofs(self.shape)
        used = np.zeros(self.n_dof, bool)
        used[dofs[self.mask].ravel()] = True
        used[_pins(self.mask)] = False
        self.free = used
        self._dofs = dofs
        self._lu: Any = None
        self._cg_cache: dict[tuple[str, float, int], Callable[[Array], ElasticSolution]] = {}
        # diagonal (Jacobi preconditioner) of the assembled matrix
        diag = np.zeros(self.n_dof)
        np.add.at(diag, dofs[self.mask].ravel(), np.tile(np.diag(self.ke), int(self.mask.sum())))
        self._diag = np.where(used, diag, 1.0)

    # ------------------------------------------------------------ linear algebra (JAX)

    def _apply(self, u: Array) -> Array:
        """K u on the full dof vector (only masked elements assembled)."""
        h, w = self.shape
        un = u.reshape(h + 1, w + 1, 2)
        ue = jnp.concatenate([un[:-1, :-1], un[:-1, 1:], un[1:, 1:], un[1:, :-1]], axis=-1)
        fe = jnp.einsum("ab,hwb->hwa", jnp.asarray(self.ke), ue) * jnp.asarray(self.mask)[..., None]
        out = jnp.zeros((h + 1, w + 1, 2), dtype=u.dtype)
        out = out.at[:-1, :-1].add(fe[..., 0:2])
        out = out.at[:-1, 1:].add(fe[..., 2:4])
        out = out.at[1:, 1:].add(fe[..., 4:6])
        out = out.at[1:, :-1].add(fe[..., 6:8])
        return out.reshape(-1)

    def load(self, eps0: ArrayLike) -> Array:
        """Nodal force vector of an eigenstrain field ``(rows, cols, 3)`` (tensor shear)."""
        h, w = self.shape
        e = _check_field(eps0, self.shape, "ElasticParticle.load: eps0")
        sig0 = jnp.einsum("ij,hwj->hwi", jnp.asarray(self.q), _eng(e))
        fe = jnp.einsum("ji,hwj->hwi", jnp.asarray(_B_CENTRE), sig0)
        fe = fe * jnp.asarray(self.mask)[..., None]
        out = jnp.zeros((h + 1, w + 1, 2), dtype=fe.dtype)
        out = out.at[:-1, :-1].add(fe[..., 0:2])
        out = out.at[:-1, 1:].add(fe[..., 2:4])
        out = out.at[1:, 1:].add(fe[..., 4:6])
        out = out.at[1:, :-1].add(fe[..., 6:8])
        return out.reshape(-1)

    def element_strain(self, u: ArrayLike) -> Array:
        """Pixel-mean strain ``(rows, cols, 3)`` (tensor shear) of a dof vector."""
        h, w = self.shape
        un = jnp.asarray(u).reshape(h + 1, w + 1, 2)
        ue = jnp.concatenate([un[:-1, :-1], un[:-1, 1:], un[1:, 1:], un[1:, :-1]], axis=-1)
        e = jnp.einsum("ab,hwb->hwa", jnp.asarray(_B_CENTRE), ue)
        e = e * jnp.array([1.0, 1.0, 0.5], dtype=e.dtype)
        return e * jnp.asarray(self.mask)[..., None]

    def _finish(self, u: Array, eps0: Array) -> ElasticSolution:
        h, w = self.shape
        eps = self.element_strain(u)
        m = jnp.asarray(self.mask)[..., None]
        el = (eps - eps0) * m
        sig = jnp.einsum("ij,hwj->hwi", jnp.asarray(self.q), _eng(el))
        energy = 0.5 * jnp.sum(sig * _eng(el))
        return ElasticSolution(u.reshape(h + 1, w + 1, 2), eps, sig, energy)

    def solve_cg(
        self, eps0: ArrayLike, *, tol: float = 1e-10, maxiter: int | None = None
    ) -> ElasticSolution:
        """Matrix-free preconditioned CG (JAX; differentiable and jit-able in ``eps0``).

        The solve is compiled once per (dtype, ``tol``, ``maxiter``) and cached on the
        instance; inside an outer ``jit``/``grad`` it is simply traced.
        """
        e = _check_field(eps0, self.shape, "ElasticParticle.solve_cg: eps0")
        maxiter = int(maxiter or 20 * max(self.shape) + 200)
        key = (str(e.dtype), float(tol), maxiter)
        if key not in self._cg_cache:
            self._cg_cache[key] = jax.jit(lambda x: self._cg_kernel(x, float(tol), maxiter))
        return self._cg_cache[key](e)

    def _cg_kernel(self, e: Array, tol: float, maxiter: int) -> ElasticSolution:
        free = jnp.asarray(self.free, dtype=e.dtype)
        dinv = jnp.asarray(1.0 / self._diag, dtype=e.dtype)

        def a(u: Array) -> Array:
            return free * self._apply(free * u) + (1.0 - free) * u

        b = free * self.load(e)
        # x0 = 0 * b (not a literal zero) keeps XLA from constant-folding A(x0) at compile time
        u, _ = jax.scipy.sparse.linalg.cg(
            a, b, x0=0.0 * b, tol=tol, maxiter=maxiter, M=lambda r: dinv * r
        )
        return self._finish(u, e)

    # --------------------------------------------------------- sparse direct (numpy)

    def _factor(self) -> Any:
        if self._lu is None:
            d = self._dofs[self.mask]  # (n_el, 8)
            rows = np.repeat(d, 8, axis=1).ravel()
            cols = np.tile(d, (1, 8)).ravel()
            vals = np.tile(self.ke.ravel(), len(d))
            k = sp.coo_matrix((vals, (rows, cols)), shape=(self.n_dof, self.n_dof)).tocsc()
            idx = np.nonzero(self.free)[0]
            self._idx = idx
            self._lu = spla.splu(k[idx][:, idx].tocsc())
        return self._lu

    def _load_np(self, eps0: np.ndarray) -> np.ndarray:
        """Batched :meth:`load` in numpy: ``(k, rows, cols, 3)`` -> ``(n_dof, k)``."""
        h, w = self.shape
        e = eps0 * np.array([1.0, 1.0, 2.0])
        fe = (e @ (_B_CENTRE.T @ self.q).T) * self.mask[None, ..., None]
        out = np.zeros((len(e), h + 1, w + 1, 2))
        out[:, :-1, :-1] += fe[..., 0:2]
        out[:, :-1, 1:] += fe[..., 2:4]
        out[:, 1:, 1:] += fe[..., 4:6]
        out[:, 1:, :-1] += fe[..., 6:8]
        return out.reshape(len(e), -1).T

    def _strain_np(self, u: np.ndarray) -> np.ndarray:
        """Batched :meth:`element_strain` in numpy: ``(n_dof, k)`` -> ``(k, rows, cols, 3)``."""
        h, w = self.shape
        un = u.T.reshape(-1, h + 1, w + 1, 2)
        ue = np.concatenate(
            [un[:, :-1, :-1], un[:, :-1, 1:], un[:, 1:, 1:], un[:, 1:, :-1]], axis=-1
        )
        e = (ue @ _B_CENTRE.T) * np.array([1.0, 1.0, 0.5])
        return e * self.mask[None, ..., None]

    def solve_direct_many(self, eps0: np.ndarray, *, chunk: int = 256) -> np.ndarray:
        """Total strains ``(k, rows, cols, 3)`` of ``k`` eigenstrain fields (sparse LU).

        ``eps0`` is ``(k, rows, cols, 3)`` (or one ``(rows, cols, 3)`` field); solved in
        chunks of ``chunk`` right-hand sides.
        """
        lu = self._factor()
        e = np.asarray(eps0, dtype=float)
        if e.ndim == 3:
            e = e[None]
        if e.shape[1:] != (*self.shape, 3):
            raise DataError(
                f"eigenstrain has shape {e.shape[1:]}, expected {(*self.shape, 3)}",
                where="ElasticParticle.solve_direct_many",
            )
        out = []
        for i in range(0, len(e), chunk):
            f = self._load_np(e[i : i + chunk])
            u = np.zeros_like(f)
            u[self._idx] = lu.solve(np.ascontiguousarray(f[self._idx]))
            out.append(self._strain_np(u))
        return np.concatenate(out, axis=0)

    def solve_direct(self, eps0: ArrayLike) -> ElasticSolution:
        """Sparse-LU solve (numpy; not differentiable)."""
        e = _check_field(eps0, self.shape, "ElasticParticle.solve_direct: eps0")
        lu = self._factor()
        f = np.asarray(self.load(e))
        u = np.zeros(self.n_dof)
        u[self._idx] = lu.solve(f[self._idx])
        return self._finish(jnp.asarray(u), e)

    def solve(
        self, eps0: ArrayLike, *, method: Literal["direct", "cg"] = "direct"
    ) -> ElasticSolution:
        """Equilibrium solution for an eigenstrain field (``method`` = direct or cg)."""
        if method == "direct":
            return self.solve_direct(eps0)
        if method == "cg":
            return self.solve_cg(eps0)
        raise ParameterError(f"method {method!r}", where="ElasticParticle.solve", fix="direct|cg")


def solve_elasticity(
    mask: ArrayLike,
    eps0: Float[ArrayLike, "rows cols 3"],
    stiffness: ArrayLike,
    *,
    method: Literal["direct", "cg"] = "cg",
) -> ElasticSolution:
    """Zero-traction equilibrium of a masked particle with eigenstrain ``eps0``.

    Parameters
    ----------
    mask
        ``(rows, cols)`` bool particle mask (one element per True pixel).
    eps0
        ``(rows, cols, 3)`` eigenstrain (xx, yy, xy tensor shear); ignored outside the mask.
    stiffness
        ``(3, 3)`` Voigt stiffness (see :func:`stiffness_2d`).
    method
        ``"cg"`` (JAX, differentiable, default) or ``"direct"`` (sparse LU).

    Returns
    -------
    ElasticSolution
    """
    return ElasticParticle(mask, stiffness).solve(eps0, method=method)


# ------------------------------------------------------------------------- periodic


def _wavevectors(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    ky = np.fft.fftfreq(shape[0])[:, None] * np.ones((1, shape[1]))
    kx = np.fft.fftfreq(shape[1])[None, :] * np.ones((shape[0], 1))
    return kx, ky


def _acoustic_inverse(q: np.ndarray, nx: Any, ny: Any) -> tuple[Any, Any, Any]:
    axx = q[0, 0] * nx**2 + 2 * q[0, 2] * nx * ny + q[2, 2] * ny**2
    ayy = q[2, 2] * nx**2 + 2 * q[1, 2] * nx * ny + q[1, 1] * ny**2
    axy = q[0, 2] * nx**2 + (q[0, 1] + q[2, 2]) * nx * ny + q[1, 2] * ny**2
    det = axx * ayy - axy**2
    return ayy / det, axx / det, -axy / det


def solve_periodic(
    eps0: Float[ArrayLike, "rows cols 3"],
    stiffness: ArrayLike,
    *,
    mean: Literal["stress_free", "clamped"] = "stress_free",
) -> ElasticSolution:
    r"""Khachaturyan's spectral solution for a homogeneous, periodic body (JAX).

    Parameters
    ----------
    eps0
        ``(rows, cols, 3)`` eigenstrain (xx, yy, xy tensor shear).
    stiffness
        ``(3, 3)`` Voigt stiffness.
    mean
        Mean total strain: ``"stress_free"`` (equal to the mean eigenstrain: no
        macroscopic stress, a free body) or ``"clamped"`` (zero).

    Returns
    -------
    ElasticSolution
        ``displacement`` is None; ``energy`` in stiffness units x pixel area.

    Notes
    -----
    With :math:`n = k/|k|`, :math:`t = \hat\sigma^0 n` and :math:`v = A(n)^{-1} t`, the
    Fourier coefficients of the total strain are
    :math:`\hat\varepsilon_{ij} = (n_i v_j + n_j v_i)/2` for :math:`k \neq 0`.
    """
    q = _check_q(stiffness)
    e = jnp.asarray(eps0)
    if e.ndim != 3 or e.shape[-1] != 3:
        raise DataError(
            f"eigenstrain has shape {e.shape}", where="solve_periodic", fix="(rows, cols, 3)"
        )
    kx, ky = _wavevectors(e.shape[:2])
    kn = np.hypot(kx, ky)
    kn[0, 0] = 1.0
    nx, ny = kx / kn, ky / kn
    nx[0, 0] = 1.0  # any unit vector: the k = 0 term is replaced by the mean below
    gxx, gyy, gxy = _acoustic_inverse(q, nx, ny)
    sig0 = jnp.einsum("ij,hwj->hwi", jnp.asarray(q), _eng(e))
    s = jnp.fft.fft2(sig0, axes=(0, 1))
    tx = s[..., 0] * nx + s[..., 2] * ny
    ty = s[..., 2] * nx + s[..., 1] * ny
    vx = gxx * tx + gxy * ty
    vy = gxy * tx + gyy * ty
    eh = jnp.stack([nx * vx, ny * vy, 0.5 * (nx * vy + ny * vx)], axis=-1)
    eps = jnp.real(jnp.fft.ifft2(eh, axes=(0, 1)))
    eps = eps - jnp.mean(eps, axis=(0, 1))
    if mean == "stress_free":
        eps = eps + jnp.mean(e, axis=(0, 1))
    elif mean != "clamped":
        raise ParameterError(f"mean {mean!r}", where="solve_periodic", fix="stress_free|clamped")
    el = eps - e
    sig = jnp.einsum("ij,hwj->hwi", jnp.asarray(q), _eng(el))
    return ElasticSolution(None, eps, sig, 0.5 * jnp.sum(sig * _eng(el)))


def khachaturyan_b(theta: ArrayLike, misfit: ArrayLike, stiffness: ArrayLike) -> np.ndarray:
    r"""Coherency energy density :math:`B(n)` of a plane wave with normal angle ``theta``.

    For a two-phase periodic microstructure with eigenstrain ``misfit`` (xx, yy, xy) times
    a composition wave along :math:`n = (\cos\theta, \sin\theta)` (theta from the a (x)
    axis towards c (y)), the elastic energy per unit volume and unit squared amplitude is
    :math:`B(n) = \varepsilon^0:C:\varepsilon^0 - t\cdot A(n)^{-1} t` with
    :math:`t = \sigma^0 n`. Interfaces form with the normal that minimises ``B``.
    """
    q = _check_q(stiffness)
    e = np.asarray(misfit, dtype=float)
    th = np.asarray(theta, dtype=float)
    nx, ny = np.cos(th), np.sin(th)
    ee = e * np.array([1.0, 1.0, 2.0])
    s = q @ ee
    tx, ty = s[0] * nx + s[2] * ny, s[2] * nx + s[1] * ny
    gxx, gyy, gxy = _acoustic_inverse(q, nx, ny)
    return ee @ s - (tx * (gxx * tx + gxy * ty) + ty * (gxy * tx + gyy * ty))


def habit_orientation(misfit: ArrayLike, stiffness: ArrayLike, n: int = 3601) -> float:
    """Interface-normal angle minimising :func:`khachaturyan_b`.

    Radians in [0, pi), measured from a towards c; the mirror ``pi - theta`` is an
    equivalent variant for orthotropic stiffness and a shear-free misfit.
    """
    th = np.linspace(0.0, np.pi, n, endpoint=False)
    return float(th[np.argmin(khachaturyan_b(th, misfit, stiffness))])


# ------------------------------------------------------------------ energy / potential


def elastic_energy_density(strain: ArrayLike, eps0: ArrayLike, stiffness: ArrayLike) -> Array:
    """Pointwise ``1/2 (eps - eps0):C:(eps - eps0)`` (stiffness units), shape ``(rows, cols)``."""
    el = _eng(jnp.asarray(strain) - jnp.asarray(eps0))
    return 0.5 * jnp.einsum("...i,ij,...j->...", el, jnp.asarray(_check_q(stiffness)), el)


def elastic_chemical_potential(
    stress: ArrayLike,
    deps0_dc: ArrayLike,
    *,
    stress_unit_pa: float = 1e9,
    site_density: float = _SITE_DENSITY,
    temperature: float = 298.15,
) -> Array:
    r"""Coherency contribution to the chemical potential, in units of kT.

    :math:`\mu_{el} = -\sigma : \partial\varepsilon^0/\partial c \,/\, (c_s k_B T)` (seed 002
    Methods: :math:`\mu = \mu_h - \kappa\nabla^2 c - c_s^{-1}\sigma:\varepsilon^0{}'(c)`).

    Parameters
    ----------
    stress
        ``(..., 3)`` stress (xx, yy, xy) in units of ``stress_unit_pa`` Pa (GPa default).
    deps0_dc
        ``(..., 3)`` derivative of the eigenstrain (tensor shear) with respect to ``c``.
    """
    s = jnp.asarray(stress)
    d = jnp.asarray(deps0_dc)
    contraction = s[..., 0] * d[..., 0] + s[..., 1] * d[..., 1] + 2.0 * s[..., 2] * d[..., 2]
    return -contraction * stress_unit_pa / (site_density * _KB * temperature)


def coherency_hook(
    mask: ArrayLike,
    misfit: ArrayLike,
    stiffness: ArrayLike,
    *,
    method: Literal["periodic", "cg"] = "periodic",
    scale: float = 1.0,
    stress_unit_pa: float = 1e9,
    temperature: float = 298.15,
) -> Callable[[Array, Array], Array]:
    r"""Coherency-strain hook ``strain(c, neighbours) -> mu_el`` (kT) for the kinetics model.

    Linear (Vegard) eigenstrain :math:`\varepsilon^0(c) = c\,\varepsilon^M` with misfit
    :math:`\varepsilon^M` = ``misfit`` (xx, yy, xy). ``c`` is the pixel list of
    :func:`operando.physics.mask_graph` (``np.argwhere(mask)`` order, then padding). The
    stress is solved on the mask's bounding array: ``"periodic"`` (Khachaturyan, pixels
    outside the mask carry c = 0 eigenstrain and the same stiffness) or ``"cg"`` (finite
    particle, zero traction; slower). ``scale`` multiplies the potential (e.g. to study
    weaker coherency).
    """
    m = _check_mask(mask, "coherency_hook: mask")
    pix = np.argwhere(m)
    n = len(pix)
    em = jnp.asarray(np.asarray(misfit, dtype=float))
    part = ElasticParticle(m, stiffness) if method == "cg" else None
    q = _check_q(stiffness)
    if method not in ("periodic", "cg"):
        raise ParameterError(f"method {method!r}", where="coherency_hook", fix="periodic|cg")

    def hook(c: Array, neighbours: Array) -> Array:
        grid = jnp.zeros(m.shape, dtype=c.dtype).at[pix[:, 0], pix[:, 1]].set(c[:n])
        eps0 = grid[..., None] * em
        sol = part.solve_cg(eps0) if part is not None else solve_periodic(eps0, q)
        mu = elastic_chemical_potential(
            sol.stress, em, stress_unit_pa=stress_unit_pa, temperature=temperature
        )
        out = jnp.zeros_like(c).at[:n].set(mu[pix[:, 0], pix[:, 1]])
        return scale * out

    return hook


# ------------------------------------------------------------------- incompatibility


def strain_incompatibility(strain: ArrayLike, mask: ArrayLike | None = None) -> np.ndarray:
    r"""Saint-Venant strain incompatibility of a 2D strain field.

    :math:`\eta = \partial_{yy}e_{xx} + \partial_{xx}e_{yy} - 2\partial_{xy}e_{xy}`.

    3x3 stencils (pixel units; the second differences are smoothed by [1, 2, 1]/4 across
    so that the pixel-mean strains of a bilinear finite-element displacement give exactly
    zero); NaN where the stencil leaves the mask.
    """
    e = np.asarray(strain, dtype=float)
    if e.ndim != 3 or e.shape[-1] != 3:
        raise DataError(
            f"strain has shape {e.shape}", where="strain_incompatibility", fix="(rows, cols, 3)"
        )
    exx, eyy, exy = e[..., 0], e[..., 1], e[..., 2]
    out = np.full(e.shape[:2], np.nan)
    # second differences smoothed by [1, 2, 1]/4 across, so that the pixel-mean strains
    # of any bilinear displacement field give exactly zero (discrete compatibility)
    d_yy = exx[2:] - 2 * exx[1:-1] + exx[:-2]
    d_yy = (d_yy[:, 2:] + 2 * d_yy[:, 1:-1] + d_yy[:, :-2]) / 4.0
    d_xx = eyy[:, 2:] - 2 * eyy[:, 1:-1] + eyy[:, :-2]
    d_xx = (d_xx[2:] + 2 * d_xx[1:-1] + d_xx[:-2]) / 4.0
    d_xy = (exy[2:, 2:] - exy[2:, :-2] - exy[:-2, 2:] + exy[:-2, :-2]) / 4.0
    out[1:-1, 1:-1] = d_yy + d_xx - 2 * d_xy
    if mask is not None:
        m = np.asarray(mask, bool)
        inner = ndi.binary_erosion(m, structure=np.ones((3, 3)), border_value=0)
        out[~inner] = np.nan
    return out
