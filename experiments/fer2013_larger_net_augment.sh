#!/usr/bin/env bash
# Augmentation on the larger net (docs/results.md, "A larger net"): fer_vgg13 fits the
# training faces faster than it generalises at base_lr 0.01, where augmentation should pay.
# fer_vgg13's student (fer2013_vgg13_rawview of experiments/fer2013_larger_net.sh) is
# warm-started for 16 more epochs of its own recipe (both views, the teacher at 0.7) with
# AUGMENT=fer (prototxt/augment/fer.prototxt), SEED=3; its control is its start, as for
# fer_vgg's second restart without augmentation (experiments/fer2013_second_restart.sh).
# Then `make ensemble` measures it as a member among the default's two and fer_vgg13's
# student, counting passes only (MAX_MFLOPS=3500, as in fer2013_larger_net.sh), into $RUNS,
# and `make soup` tries one model from the lineage's weights (the first run, the student and
# the augmented model).
# About 5-7 h with two threads on 2 cores with AVX2 (1.3-1.8 s per iteration, 14,354 of
# them); make train resumes, so the run may span sessions.
#
#   FER2013=path/to/fer2013.csv.gz RUNS=/somewhere/runs bash experiments/fer2013_larger_net_augment.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source experiments/lib.sh  # FER2013=, RUNS=, both_views_inputs, train_and_ship, choose_on_both_paths
both_views_inputs  # DATA, CROPS, TEACHER
restore_models fer2013_vgg_rawview_seed2 fer2013_vgg_rawview_distill  # the default's members then
train_and_ship fer2013_vgg13_augment "$RUNS" NET=fer_vgg13 EPOCHS=16 SEED=3 AUGMENT=fer \
  WEIGHTS="$RUNS/fer2013_vgg13_rawview/fer2013_vgg13_rawview.caffemodel" SOFT="$(realpath "$TEACHER")" \
  SOFT_WEIGHT=0.7 DATA="$DATA" RUNS="$RUNS"
MAX_MFLOPS=3500 choose_on_both_paths fer2013_ensemble_larger_augment "$RUNS" "$DATA" "$CROPS" \
  models/fer2013_vgg_rawview_seed2 models/fer2013_vgg_rawview_distill "$RUNS/fer2013_vgg13_rawview" \
  "$RUNS/fer2013_vgg13_augment"
make soup MEMBERS="$RUNS/fer2013_vgg13_scratch $RUNS/fer2013_vgg13_rawview $RUNS/fer2013_vgg13_augment" \
  DATA="$DATA" ARGS="--raw $CROPS" SOUP=fer2013_vgg13_soup MODELS="$RUNS"
