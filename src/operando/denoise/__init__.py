"""Self-supervised denoising of images and videos (seed 000, Methods "Video and Image Denoising").

Methods: Noise2Void (``"n2v"``), N2V2 (``"n2v2"``), structN2V (``"structn2v"``) for
single images or stacks of independent images, and UMVD (``"umvd"``) for videos; any of
them as a bootstrap ensemble with a per-pixel uncertainty map. See ``docs/denoising.md``.

>>> from operando.denoise import train_denoiser, load_denoiser  # doctest: +SKIP
>>> den = train_denoiser(noisy, method="n2v", key=0, epochs=50)  # doctest: +SKIP
>>> clean = den.predict(noisy)  # doctest: +SKIP
>>> den.save("model/"); load_denoiser("model/").predict(other)  # doctest: +SKIP
"""

from ._config import METHODS as METHODS
from ._config import DenoiserConfig as DenoiserConfig
from ._denoiser import Denoiser as Denoiser
from ._denoiser import load_denoiser as load_denoiser
from ._train import train_denoiser as train_denoiser
from ._umvd import window_indices as window_indices
