"""Generative enhancement of tomography: InDI super-resolution (seed 001).

Inversion by Direct Iteration (Delbracio & Milanfar 2023) trained on one paired
low-/high-quality scan, applied slice by slice to unseen volumes; the CNN regression and
bicubic baselines; paired-data preparation (crop, x2 cubic up-sampling, sub-voxel
registration). See ``docs/enhance.md``.

>>> from operando.enhance import train_enhancer, load_enhancer  # doctest: +SKIP
>>> enh, pairs = train_enhancer(lq_volume, hq_volume, key=0, epochs=20)  # doctest: +SKIP
>>> volume, consistency = enh.enhance_volume(insitu_lq, steps=8)  # doctest: +SKIP
>>> enh.save("model/"); load_enhancer("model/")  # doctest: +SKIP
"""

from ._indi import LOSSES as LOSSES
from ._indi import degradation_path as degradation_path
from ._indi import indi_loss as indi_loss
from ._indi import indi_restore as indi_restore
from ._indi import pixel_loss as pixel_loss
from ._indi import sample_times as sample_times
from ._model import Enhancer as Enhancer
from ._model import EnhancerConfig as EnhancerConfig
from ._model import load_enhancer as load_enhancer
from ._model import slice_consistency as slice_consistency
from ._net import InDIUNet as InDIUNet
from ._net import receptive_radius as receptive_radius
from ._net import time_embedding as time_embedding
from ._pairs import Normalisation as Normalisation
from ._pairs import PairedData as PairedData
from ._pairs import check_volume as check_volume
from ._pairs import prepare_pairs as prepare_pairs
from ._pairs import register_volumes as register_volumes
from ._resample import cubic_weights as cubic_weights
from ._resample import upsample2 as upsample2
from ._train import train_enhancer as train_enhancer
from ._train import train_on_pairs as train_on_pairs
