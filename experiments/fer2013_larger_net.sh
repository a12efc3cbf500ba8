#!/usr/bin/env bash
# A larger net (docs/results.md, "A larger net"): prototxt/fer_vgg13 (VGG13 as Barsoum et al.
# trained it on FER+, with batch normalisation: 6x fer_vgg's multiply-adds) and, as its
# control, fer_vgg in the same recipe: each from random weights on both views of every face
# for 16 epochs against the teacher of experiments/fer2013_raw_view.sh (SOFT_WEIGHT=0.7,
# SEED=1), side by side with one thread each. Then `make ensemble` chooses by the default's
# rule (choose_on_both_paths) among them and the default's two members, into $RUNS, not over
# the default, counting net passes only (MAX_MFLOPS=3500 admits any four passes: one
# fer_vgg13 pass alone is over the default's 552 million operations per face). Its data
# and teacher are experiments/fer2013_raw_view.sh's, made first if missing. About
# 1 h 30 min for fer_vgg and 6 h for fer_vgg13 on 2 cores with AVX2 (4 h 20 min once it has
# both threads to itself); make train resumes, so the run may span sessions.
# Then fer_vgg13's student in fer2013_vgg_rawview_seed2's recipe (10 epochs warm-started from
# it, both views, the teacher at 0.7, SEED=2), 3 h 10 min to 3 h 55 min with two threads, and the
# choice again with it (and fer_vgg13 from random weights).
#
#   FER2013=path/to/fer2013.csv.gz RUNS=/somewhere/runs bash experiments/fer2013_larger_net.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source experiments/lib.sh  # FER2013=, RUNS=, both_views_inputs, train_and_ship, restore_models, choose_on_both_paths, side_by_side
both_views_inputs  # DATA, CROPS, TEACHER
scratch() {  # NAME NET: NET from random weights, 16 epochs of both views against the teacher, into $RUNS
  train_and_ship "$1" "$RUNS" NET="$2" EPOCHS=16 SEED=1 SOFT="$(realpath "$TEACHER")" SOFT_WEIGHT=0.7 \
    DATA="$DATA" RUNS="$RUNS"
}

side_by_side "scratch fer2013_vgg13_scratch fer_vgg13" "scratch fer2013_vgg_scratch fer_vgg"
MAX_MFLOPS=3500 choose_on_both_paths fer2013_ensemble_larger "$RUNS" "$DATA" "$CROPS" models/fer2013_vgg_rawview_seed2 \
  models/fer2013_vgg_rawview_distill "$RUNS/fer2013_vgg13_scratch" "$RUNS/fer2013_vgg_scratch"
train_and_ship fer2013_vgg13_rawview "$RUNS" NET=fer_vgg13 EPOCHS=10 SEED=2 \
  WEIGHTS="$RUNS/fer2013_vgg13_scratch/fer2013_vgg13_scratch.caffemodel" SOFT="$(realpath "$TEACHER")" \
  SOFT_WEIGHT=0.7 DATA="$DATA" RUNS="$RUNS"
MAX_MFLOPS=3500 choose_on_both_paths fer2013_ensemble_larger_student "$RUNS" "$DATA" "$CROPS" models/fer2013_vgg_rawview_seed2 \
  models/fer2013_vgg_rawview_distill "$RUNS/fer2013_vgg13_scratch" "$RUNS/fer2013_vgg13_rawview"
