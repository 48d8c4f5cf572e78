"""operando.physics."""

from ._bases import LegendreChemicalPotential as LegendreChemicalPotential
from ._bases import LegendreLogDiffusivity as LegendreLogDiffusivity
from ._bases import legendre as legendre
from ._bases import legendre_series as legendre_series
from ._bases import project_legendre as project_legendre
from ._free_energy import LOG_EPS as LOG_EPS
from ._free_energy import linear_D as linear_D
from ._free_energy import regular_solution_mu as regular_solution_mu
from ._kinetics import KAPPA_LFP as KAPPA_LFP
from ._kinetics import butler_volmer as butler_volmer
from ._kinetics import ciet_j0 as ciet_j0
from ._kinetics import dimensionless_kappa as dimensionless_kappa
from ._kinetics import mask_graph as mask_graph
from ._kinetics import reaction_allen_cahn as reaction_allen_cahn
from ._kinetics import regular_solution_binodal as regular_solution_binodal
from ._kinetics import regular_solution_g as regular_solution_g
from ._kinetics import solve_interfacial_voltage as solve_interfacial_voltage
from ._kinetics import symmetric_j0 as symmetric_j0
