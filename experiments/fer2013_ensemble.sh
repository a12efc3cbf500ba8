#!/usr/bin/env bash
# The recipe behind models/fer2013_ensemble: every candidate trained, evaluated and shipped,
# then `make ensemble` keeps the members and the test-time augmentation best on PublicTest.
# About 12 hours of Caffe on 2 cores; every make train resumes where it stopped, so the
# script can be run again after an interruption. Candidates that the ensemble did not keep
# are shipped into $CANDIDATES (default: candidates/, outside models/), not into models/.
#
#   FER2013=path/to/fer2013.csv.gz RUNS=/somewhere/runs bash experiments/fer2013_ensemble.sh
set -euo pipefail
cd "$(dirname "$0")/.."
FER2013=${FER2013:-../shared/data/fer2013.csv.gz}
RUNS=${RUNS:-runs}
DATA=${DATA:-data/fer2013}
ARCFACE=${ARCFACE:-data/fer2013-arcface}
CANDIDATES=${CANDIDATES:-candidates}
ship() { make ship "$@" RUNS="$RUNS"; }

make preprocess FER2013="$FER2013" DATA="$DATA"
make preprocess FER2013="$FER2013" DATA="$ARCFACE" ARGS="--template arcface"

# fer_vgg, 36 epochs from random weights, on each template
make train NET=fer_vgg EPOCHS=36 DATA="$DATA" RUNS="$RUNS"
make evaluate NET=fer_vgg EPOCHS=36 DATA="$DATA" RUNS="$RUNS"
ship NET=fer_vgg EPOCHS=36 NAME=fer2013_vgg MODELS="$CANDIDATES"
make train NET=fer_vgg EPOCHS=36 DATA="$ARCFACE" RUNS="$RUNS" RUN=fer_vgg-e36-arcface
make evaluate DATA="$ARCFACE" RUNS="$RUNS" RUN=fer_vgg-e36-arcface
ship RUN=fer_vgg-e36-arcface NAME=fer2013_vgg_arcface MODELS="$CANDIDATES"

# the reference net: 30 epochs on arcface faces, and the reference's own 150-epoch schedule
make train NET=fer_reference EPOCHS=30 DATA="$ARCFACE" RUNS="$RUNS"
make evaluate NET=fer_reference EPOCHS=30 DATA="$ARCFACE" RUNS="$RUNS"
ship NET=fer_reference EPOCHS=30 NAME=fer2013_reference MODELS="$CANDIDATES"
make train NET=fer_reference EPOCHS=150 DATA="$DATA" RUNS="$RUNS"
make evaluate NET=fer_reference EPOCHS=150 DATA="$DATA" RUNS="$RUNS" ARGS=--test-curve
ship NET=fer_reference EPOCHS=150 NAME=fer2013_reference150

# two warm restarts of fer_vgg, 44 epochs each
for step in "fer2013_vgg fer2013_vgg_warm" "fer2013_vgg_warm fer2013_vgg_warm2"; do
  read -r parent child <<<"$step"
  from="$CANDIDATES/$parent/$parent.caffemodel"
  [ -f "$from" ] || from="models/$parent/$parent.caffemodel"
  make train NET=fer_vgg EPOCHS=44 WEIGHTS="$from" DATA="$DATA" RUNS="$RUNS"
  make evaluate NET=fer_vgg EPOCHS=44 WEIGHTS="$from" DATA="$DATA" RUNS="$RUNS"
  ship NET=fer_vgg EPOCHS=44 WEIGHTS="$from" NAME="$child" MODELS="$([ "$child" = fer2013_vgg_warm ] && echo models || echo "$CANDIDATES")"
done

make ensemble MEMBERS="$CANDIDATES/fer2013_vgg=$DATA $CANDIDATES/fer2013_vgg_arcface=$ARCFACE \
  $CANDIDATES/fer2013_reference=$ARCFACE models/fer2013_vgg_warm=$DATA $CANDIDATES/fer2013_vgg_warm2=$DATA \
  models/fer2013_reference150=$DATA"
