"""Colour optical microscopy of graphite electrodes: particles, phases, SOC, statistics.

The chain of seed 000 ("Automated, large-scale image processing in mesoscale optical
microscopy", Methods, Supplementary S2.3):

1. read an RGB video (:func:`read_video`: TIFF stack, image folder/glob, ``.npy``, video
   containers through imageio) and check it (:func:`validate_video`);
2. correct stage drift by cumulative sub-pixel phase cross-correlation
   (:func:`correct_drift`, :func:`estimate_drift`, :func:`apply_drift`);
3. segment particles by LAB k-means (:func:`segment_particles`), export/import labels for
   refinement in napari (:func:`write_labels`, :func:`read_labels`);
4. classify blue/red/gold per pixel and frame with the physical rules
   (:func:`classify_phases`, :class:`PhaseRules`, :func:`apply_phase_rules`);
5. image state of charge (:func:`image_soc`, :func:`compare_soc`);
6. particle statistics: :func:`particle_sizes` (V/A), :func:`fit_lognormal`,
   :func:`particle_concentrations`, :func:`population_density`;
7. segmentation quality against reference labels (:func:`segmentation_quality`).

Synthetic videos with ground truth: :func:`operando.simulate.simulate_optical`.
See ``docs/optical.md``.
"""

from ._drift import DriftResult as DriftResult
from ._drift import apply_drift as apply_drift
from ._drift import correct_drift as correct_drift
from ._drift import estimate_drift as estimate_drift
from ._io import read_labels as read_labels
from ._io import read_video as read_video
from ._io import validate_video as validate_video
from ._io import write_labels as write_labels
from ._phases import BACKGROUND as BACKGROUND
from ._phases import BLUE as BLUE
from ._phases import GOLD as GOLD
from ._phases import RED as RED
from ._phases import PhaseResult as PhaseResult
from ._phases import PhaseRules as PhaseRules
from ._phases import apply_phase_rules as apply_phase_rules
from ._phases import classify_phases as classify_phases
from ._phases import phase_fractions as phase_fractions
from ._quality import dice_iou as dice_iou
from ._quality import segmentation_quality as segmentation_quality
from ._segment import PHASES as PHASES
from ._segment import REFERENCE_COLORS as REFERENCE_COLORS
from ._segment import Segmentation as Segmentation
from ._segment import kmeans_lab as kmeans_lab
from ._segment import name_clusters as name_clusters
from ._segment import rgb_to_lab as rgb_to_lab
from ._segment import segment_particles as segment_particles
from ._stats import DEFAULT_CONCENTRATIONS as DEFAULT_CONCENTRATIONS
from ._stats import LogNormalFit as LogNormalFit
from ._stats import PopulationDensity as PopulationDensity
from ._stats import compare_soc as compare_soc
from ._stats import fit_lognormal as fit_lognormal
from ._stats import image_soc as image_soc
from ._stats import particle_concentrations as particle_concentrations
from ._stats import particle_sizes as particle_sizes
from ._stats import population_density as population_density
