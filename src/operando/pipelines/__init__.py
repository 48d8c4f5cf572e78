"""Workflows that orchestrate the science modules: file in, results and summary out."""

from ._demo import DEMO_SETTINGS as DEMO_SETTINGS
from ._demo import run_demo as run_demo
from ._files import compare_files as compare_files
from ._files import corrupt_file as corrupt_file
from ._files import summary_path_for as summary_path_for
from ._stxm import stxm_composition as stxm_composition
from ._stxm import stxm_composition_file as stxm_composition_file
from ._stxm import stxm_figures as stxm_figures
from ._stxm import stxm_plan_energies as stxm_plan_energies
