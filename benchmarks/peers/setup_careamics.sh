#!/usr/bin/env bash
# Create a separate environment with CAREamics (PyTorch) for the peer comparison of
# benchmarks/peers/careamics_bsd68.py. operando itself never imports torch.
#
#   bash benchmarks/peers/setup_careamics.sh [ENV_DIR]      # default: .peers/careamics
#
# Installs careamics 0.3.5 from PyPI (it pulls torch, lightning and bioimageio-core; the
# default Linux torch wheel brings its CUDA libraries: ~3.6 GB on disk).
set -euo pipefail
ENV_DIR="${1:-.peers/careamics}"
python3 -m venv "$ENV_DIR"
"$ENV_DIR/bin/pip" install --quiet "careamics==0.3.5" scikit-image
"$ENV_DIR/bin/python" -c "import careamics, torch; print('careamics', careamics.__version__, 'torch', torch.__version__)"
echo "run: $ENV_DIR/bin/python benchmarks/peers/careamics_bsd68.py --steps 300"
