#!/usr/bin/env bash
# Does the oneDNN engine train the same net as the CAFFE engine? fer_reference for 3 epochs on
# the same data three times: the oneDNN engine and the CAFFE engine with the solver's seed 1
# (the same initial weights, batches, crops, mirrors and dropout masks: they differ only in
# float rounding), and the CAFFE engine with seed 2 (how far two honest runs drift apart).
# experiments/engine_agreement.py then compares loss curves and PublicTest accuracy and
# writes bench/results/engine_agreement.json and docs/engine_agreement.png.
#   DATA=data/fer2013 RUNS=/somewhere/runs bash experiments/engine_agreement.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-data/fer2013}
RUNS=${RUNS:-runs}
make train NET=fer_reference EPOCHS=3 SEED=1 DATA="$DATA" RUNS="$RUNS" RUN=engine-dnnl-seed1
CAFFE_ENGINE=CAFFE make train NET=fer_reference EPOCHS=3 SEED=1 DATA="$DATA" RUNS="$RUNS" RUN=engine-caffe-seed1
CAFFE_ENGINE=CAFFE make train NET=fer_reference EPOCHS=3 SEED=2 DATA="$DATA" RUNS="$RUNS" RUN=engine-caffe-seed2
.venv/bin/python experiments/engine_agreement.py "$RUNS"/engine-dnnl-seed1 "$RUNS"/engine-caffe-seed1 "$RUNS"/engine-caffe-seed2
