"""STXM and spectro-ptychography: raw multi-energy stacks to composition maps.

The chain of seed 000 (Methods "STXM Image Processing", Supplementary S2.2):

1. read a stack (ALS SDF ``.hdr``/``.xim``, NXstxm, CXI ptychography, TIFF + energies):
   :func:`read_sdf`, :func:`read_nxstxm`, :func:`read_cxi`, :func:`read_tiff_stack`
   (also registered with :func:`operando.io.read_dataset` on import of this package);
2. register the planes (:func:`register_stack`, :func:`register_series`);
3. optical density ``OD = -ln(I / I0)`` (:func:`optical_density`, I0 from a spectrum
   :func:`interpolate_i0` or the Otsu background :func:`estimate_i0_otsu`), particles
   (:func:`segment_particles`, :func:`crop_particles`), thickness (:func:`thickness_proxy`);
4. composition ``X``: :func:`nnls_composition` over all energies against
   :class:`ReferenceSpectra` (:func:`load_references`), or the paper's two-energy system
   :func:`two_energy_composition`; energy calibration :func:`fit_energy_offset`;
5. uncertainty: :func:`bootstrap_composition` (per-pixel ``sigma_X``), planning
   :func:`plan_energies`;
6. comparison with ptychography: :func:`compare_to_reference`;
7. synthetic data with ground truth: :func:`synthetic_stxm`, :func:`synthetic_particle`,
   :func:`model_references`.

See ``docs/stxm.md`` for a worked example on a real ALS stack.
"""

from ._compare import ComparisonResult as ComparisonResult
from ._compare import compare_to_reference as compare_to_reference
from ._compare import reference_on_grid as reference_on_grid
from ._composition import PAPER_TWO_ENERGY as PAPER_TWO_ENERGY
from ._composition import BootstrapResult as BootstrapResult
from ._composition import CompositionResult as CompositionResult
from ._composition import OffsetFit as OffsetFit
from ._composition import TwoEnergyMatrix as TwoEnergyMatrix
from ._composition import bootstrap_composition as bootstrap_composition
from ._composition import fit_energy_offset as fit_energy_offset
from ._composition import nnls_composition as nnls_composition
from ._composition import nnls_kernel as nnls_kernel
from ._composition import two_energy_composition as two_energy_composition
from ._composition import two_energy_matrix as two_energy_matrix
from ._formats import ELEMENTARY_CHARGE as ELEMENTARY_CHARGE
from ._formats import read_cxi as read_cxi
from ._formats import read_nxstxm as read_nxstxm
from ._formats import read_tiff_stack as read_tiff_stack
from ._formats import register_stxm_readers as register_stxm_readers
from ._od import MIN_TRANSMISSION as MIN_TRANSMISSION
from ._od import ParticleCrop as ParticleCrop
from ._od import crop_particles as crop_particles
from ._od import estimate_i0_otsu as estimate_i0_otsu
from ._od import interpolate_i0 as interpolate_i0
from ._od import optical_density as optical_density
from ._od import segment_particles as segment_particles
from ._od import thickness_proxy as thickness_proxy
from ._planning import EnergyPlan as EnergyPlan
from ._planning import composition_sigma as composition_sigma
from ._planning import edge_energies as edge_energies
from ._planning import plan_energies as plan_energies
from ._registration import RegistrationResult as RegistrationResult
from ._registration import apply_shifts as apply_shifts
from ._registration import register_series as register_series
from ._registration import register_stack as register_stack
from ._sdf import SDFHeader as SDFHeader
from ._sdf import parse_sdf_header as parse_sdf_header
from ._sdf import read_sdf as read_sdf
from ._spectra import ReferenceSpectra as ReferenceSpectra
from ._spectra import load_references as load_references
from ._spectra import read_spectrum as read_spectrum
from ._synthetic import model_references as model_references
from ._synthetic import synthetic_particle as synthetic_particle
from ._synthetic import synthetic_stxm as synthetic_stxm

register_stxm_readers()
