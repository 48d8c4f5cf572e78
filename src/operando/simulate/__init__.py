"""operando.simulate: synthetic benchmark datasets with ground truth.

* :func:`simulate_ch_dataset`: the Cahn–Hilliard spinodal-decomposition/coarsening
  benchmark (10 realisations × 501 frames × 128²).
* :func:`simulate_particles`: LiFePO4 platelet videos for the kinetics inversion (seed 002).
* :func:`simulate_neutron`: a cylindrical cell seen by neutron radiography (seed 000 S2.4).
* :func:`simulate_optical`: a colour video of lithiating graphite particles (seed 000 S2.3).
* :func:`simulate_enhancement_pair`: low/high-quality tomography phantoms for InDI (seed 001).
* :func:`simulate_strain`: composition and strain maps with a known eigenstrain law (seed 003).
"""

from ._ch import simulate_ch_dataset as simulate_ch_dataset
from ._neutron import simulate_neutron as simulate_neutron
from ._optical import OpticalSimulation as OpticalSimulation
from ._optical import simulate_optical as simulate_optical
from ._particles import simulate_particles as simulate_particles
from ._phantom import EnhancementPair as EnhancementPair
from ._phantom import Phantom as Phantom
from ._phantom import degrade_volume as degrade_volume
from ._phantom import simulate_enhancement_pair as simulate_enhancement_pair
from ._phantom import sio_phantom as sio_phantom
from ._strain import StrainParticle as StrainParticle
from ._strain import particle_mask as particle_mask
from ._strain import simulate_strain as simulate_strain
from ._strain import vegard_law as vegard_law
