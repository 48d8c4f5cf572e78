"""operando.simulate: synthetic benchmark datasets with ground truth.

* :func:`simulate_ch_dataset`: the Cahn–Hilliard spinodal-decomposition/coarsening
  benchmark (10 realisations × 501 frames × 128²).
"""

from ._ch import simulate_ch_dataset as simulate_ch_dataset
from ._particles import simulate_particles as simulate_particles
