"""Workflows that orchestrate the science modules: file in, results and summary out."""

from ._config import PipelineConfig as PipelineConfig
from ._config import load_config as load_config
from ._config import parse_config as parse_config
from ._demo import DEMO_SETTINGS as DEMO_SETTINGS
from ._demo import run_demo as run_demo
from ._demo_chain import demo_config_yaml as demo_config_yaml
from ._demo_chain import run_demo_chain as run_demo_chain
from ._enhance import enhance_apply as enhance_apply
from ._enhance import enhance_evaluate as enhance_evaluate
from ._enhance import enhance_train as enhance_train
from ._files import compare_files as compare_files
from ._files import corrupt_file as corrupt_file
from ._files import summary_path_for as summary_path_for
from ._optical import optical_analyze as optical_analyze
from ._run import register_stage as register_stage
from ._run import run_pipeline as run_pipeline
from ._stxm import stxm_composition as stxm_composition
from ._stxm import stxm_composition_file as stxm_composition_file
from ._stxm import stxm_figures as stxm_figures
from ._stxm import stxm_plan_energies as stxm_plan_energies
from ._uq import bootstrap_ch as bootstrap_ch
from ._uq import bootstrap_kinetics as bootstrap_kinetics
from ._uq import cross_validate_kinetics as cross_validate_kinetics
from ._uq import hmc_kinetics as hmc_kinetics
from ._uq import train_denoiser_ensemble as train_denoiser_ensemble
