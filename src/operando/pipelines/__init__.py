"""Workflows that orchestrate the science modules: file in, results and summary out."""

from ._demo import DEMO_SETTINGS as DEMO_SETTINGS
from ._demo import run_demo as run_demo
from ._files import compare_files as compare_files
from ._files import corrupt_file as corrupt_file
from ._files import summary_path_for as summary_path_for
