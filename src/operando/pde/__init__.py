"""operando.pde: differentiable PDE forward models.

* :func:`solve_ch`: periodic 2D Cahn–Hilliard with concentration-dependent mobility,
  pseudo-spectral, linearly stabilised SBDF2 (or IMEX Euler) time stepping.
* :func:`ch_rhs`: its spatial operator ``div(D(c) c grad mu)``.
"""

from ._ch import ch_rhs as ch_rhs
from ._ch import solve_ch as solve_ch
from ._ch import time_grid as time_grid
from ._ch import wavenumbers as wavenumbers
