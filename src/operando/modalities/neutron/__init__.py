"""Operando neutron radiography: raw frames to lithium transport (seed 000 Fig. 5, S2.4).

The chain:

1. read frames (TIFF / FITS series :func:`read_frames`, Data Exchange HDF5
   :func:`read_data_exchange`; FITS and Data Exchange are also registered with
   :func:`operando.io.read_dataset` on import of this package);
2. 3x3 median filter, optional self-supervised denoising of the intensity, open-beam and
   dark series, ``T = (I - DC) / (OB - DC)`` with a division guard (:func:`normalise`);
3. Beer–Lambert ``Σ = -ln T / δ(x)`` with the cylindrical chord ``δ(x) = 2 sqrt(r² - d²)``
   (:func:`chord_thickness`, :func:`attenuation`);
4. half-cycles (:func:`half_cycles_from_boundaries`, :func:`half_cycles_from_current`),
   ``ΔΣ`` relative to each half-cycle's first frame (:func:`delta_attenuation`), depth
   profiles with the in-plane standard deviation (:func:`depth_profile`);
5. activity: Otsu active-area fractions and 20 % active windows per electrode
   (:func:`electrode_activity`), sequestered lithium (:func:`sequestered_region`),
   dynamic variability (:func:`dynamic_variability`).

Axes: frames are ``(t, y, x)`` with ``y`` the depth through the electrode stack and ``x``
across the cylindrical cell. See ``docs/neutron.md``.
"""

from ._activity import ElectrodeActivity as ElectrodeActivity
from ._activity import Sequestration as Sequestration
from ._activity import active_window as active_window
from ._activity import dynamic_variability as dynamic_variability
from ._activity import electrode_activity as electrode_activity
from ._activity import otsu_threshold as otsu_threshold
from ._activity import region_mask as region_mask
from ._activity import sequestered_region as sequestered_region
from ._attenuation import PAPER_PIXELS_PER_CM as PAPER_PIXELS_PER_CM
from ._attenuation import Attenuation as Attenuation
from ._attenuation import attenuation as attenuation
from ._attenuation import chord_thickness as chord_thickness
from ._attenuation import delta_attenuation as delta_attenuation
from ._attenuation import depth_profile as depth_profile
from ._cycles import HalfCycle as HalfCycle
from ._cycles import half_cycles_from_boundaries as half_cycles_from_boundaries
from ._cycles import half_cycles_from_current as half_cycles_from_current
from ._cycles import read_electrochemistry_csv as read_electrochemistry_csv
from ._normalise import FrameDenoiser as FrameDenoiser
from ._normalise import Transmission as Transmission
from ._normalise import denoise_frames as denoise_frames
from ._normalise import median_filter_frames as median_filter_frames
from ._normalise import normalise as normalise
from ._normalise import train_frame_denoiser as train_frame_denoiser
from ._readers import DataExchange as DataExchange
from ._readers import data_exchange_dataset as data_exchange_dataset
from ._readers import read_data_exchange as read_data_exchange
from ._readers import read_fits as read_fits
from ._readers import read_frames as read_frames
from ._readers import register_neutron_readers as register_neutron_readers

register_neutron_readers()
