#!/usr/bin/env bash
# The recipe behind models/ferplus_vgg: fer_vgg starts from the shipped FER2013 single model
# of its day (fer2013_vgg_distill: the same training images with FER2013's labels) and trains
# 30 epochs on FER+'s ten-vote distributions, its classifier (8 classes, not 7) started from
# its filler as fc6-8classes; then 16 epochs more, warm-started from that model, which it
# replaces under the same name. About 1 h 25 min of Caffe on one thread; every make train
# resumes where it stopped. The models go to $MODELS (default: candidates/);
# docs/results.md has the figures against the models they replaced.
#
#   FER2013=path/to/fer2013.csv.gz RUNS=/somewhere/runs bash experiments/ferplus_transfer.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source experiments/lib.sh  # FER2013=, RUNS=, train_and_ship and restore_models
DATA=${DATA:-data/ferplus}
MODELS=${MODELS:-candidates}
NAME=${NAME:-ferplus_vgg}

restore_models fer2013_vgg_distill  # the start, superseded as a FER2013 model since
[ -f "$DATA/manifest.json" ] || make preprocess FER2013="$FER2013" LABELS=ferplus DATA="$DATA"
stage() {  # EPOCHS WEIGHTS: train, evaluate and ship one stage as $MODELS/$NAME
  train_and_ship "$NAME" "$MODELS" NET=fer_vgg EPOCHS="$1" WEIGHTS="$2" DATA="$DATA" RUNS="$RUNS" \
    SOFT=train_targets_lmdb SOFT_WEIGHT=1
}
stage 30 models/fer2013_vgg_distill/fer2013_vgg_distill.caffemodel
stage 16 "$MODELS/$NAME/$NAME.caffemodel"
