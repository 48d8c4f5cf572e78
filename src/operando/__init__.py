"""operando: operando microscopy of battery materials to quantitative physics.

The public API lives in this namespace; submodules are implementation detail unless
documented. Importing operando never changes JAX's global configuration: call
:func:`operando.config.enable_x64` at the start of a program that runs physics.
"""

from ._version import __version__ as __version__
