"""4D-STEM strain maps correlated with composition maps (seed 003).

* :func:`register_affine`, :func:`apply_affine`: affine registration of the composition
  map onto the strain map by maximising their pixel correlation away from particle edges;
* :func:`load_strain_map`, :func:`load_composition_map`: arrays from NPY/NPZ/TIFF/HDF5/
  NetCDF files, and py4DSTEM strain-map files (:func:`read_py4dstem_strain`, no
  py4DSTEM needed).
"""

from ._io import load_composition_map as load_composition_map
from ._io import load_strain_map as load_strain_map
from ._io import read_py4dstem_strain as read_py4dstem_strain
from ._registration import Registration as Registration
from ._registration import apply_affine as apply_affine
from ._registration import edge_excluded_mask as edge_excluded_mask
from ._registration import register_affine as register_affine
