"""operando.physics."""

from ._bases import LegendreChemicalPotential as LegendreChemicalPotential
from ._bases import LegendreLogDiffusivity as LegendreLogDiffusivity
from ._bases import legendre as legendre
from ._bases import legendre_series as legendre_series
from ._bases import project_legendre as project_legendre

from ._free_energy import LOG_EPS as LOG_EPS
from ._free_energy import linear_D as linear_D
from ._free_energy import regular_solution_mu as regular_solution_mu
