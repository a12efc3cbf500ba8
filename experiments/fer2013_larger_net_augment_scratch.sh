#!/usr/bin/env bash
# Augmentation from random weights on the larger net (docs/results.md, "A larger net"):
# fer2013_vgg13_scratch's recipe (fer_vgg13, 16 epochs from random weights on both views against
# the teacher at 0.7, SEED=1; experiments/fer2013_larger_net.sh) with AUGMENT=fer
# (prototxt/augment/fer.prototxt). Its control is that recipe without augmentation, measured
# twice; augmentation paid on fer_vgg13 as a warm restart (experiments/fer2013_larger_net_augment.sh)
# and cost fer_vgg 3.2 points from random weights. One run instead of a chain of three is
# also the candidate final recipe of the issue (a single schedule, two seeds for the spread).
# Then `make ensemble` measures it as a member among the default's two, counting passes only
# (MAX_MFLOPS=3500, as in fer2013_larger_net.sh), into $RUNS.
# About 3 h 20 min to 6 h with two threads on 2 cores with AVX2 (14,354 iterations of 0.8-1.5 s,
# by machine); make train resumes, so the run may span sessions.
#
#   FER2013=path/to/fer2013.csv.gz RUNS=/somewhere/runs bash experiments/fer2013_larger_net_augment_scratch.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source experiments/lib.sh  # FER2013=, RUNS=, both_views_inputs, train_and_ship, choose_on_both_paths
both_views_inputs  # DATA, CROPS, TEACHER
train_and_ship fer2013_vgg13_augment_scratch "$RUNS" NET=fer_vgg13 EPOCHS=16 SEED=1 AUGMENT=fer \
  SOFT="$(realpath "$TEACHER")" SOFT_WEIGHT=0.7 DATA="$DATA" RUNS="$RUNS"
MAX_MFLOPS=3500 choose_on_both_paths fer2013_ensemble_augment_scratch "$RUNS" "$DATA" "$CROPS" \
  models/fer2013_vgg_rawview_seed2 models/fer2013_vgg_rawview_distill "$RUNS/fer2013_vgg13_augment_scratch"
