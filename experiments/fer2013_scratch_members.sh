#!/usr/bin/env bash
# Members that do not descend from one model. experiments/fer2013_raw_view.sh warm-starts every
# student from a shipped model, so the ensemble it ships averages relatives. Here the reference
# net trains from random weights on both views of every face (make preprocess ARGS=--raw-view)
# for 60 epochs against the same teacher, SEED=3; then `make ensemble` chooses by the same rule
# (the mean of PublicTest on both paths, at most four net passes per face) among it and every
# FER2013 model in git (shipped, or superseded and restored; the two students
# fer2013_raw_view.sh never committed are not candidates). The choice goes to
# $RUNS/fer2013_ensemble_scratch (the new model beside it, in $RUNS too), not over the default:
# it kept the default's pair (docs/results.md, "Members not descended from one model"). Its
# data and teacher are experiments/fer2013_raw_view.sh's, made first if missing. About 1 h
# 10 min on 2 cores with AVX2 (two threads), then 15 min to score the candidates; make train
# resumes.
#
#   FER2013=path/to/fer2013.csv.gz RUNS=/somewhere/runs bash experiments/fer2013_scratch_members.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source experiments/lib.sh  # FER2013=, RUNS=, both_views_inputs, train_and_ship, restore_models, choose_on_both_paths
both_views_inputs  # DATA, CROPS, TEACHER

candidates=(fer2013_vgg_warm fer2013_reference150 fer2013_vgg_distill fer2013_vgg_rawview_seed2
  fer2013_vgg_rawview_distill)
restore_models "${candidates[@]}"
train_and_ship fer2013_reference_scratch "$RUNS" NET=fer_reference EPOCHS=60 SEED=3 \
  SOFT="$(realpath "$TEACHER")" SOFT_WEIGHT=0.7 DATA="$DATA" RUNS="$RUNS"

choose_on_both_paths fer2013_ensemble_scratch "$RUNS" "$DATA" "$CROPS" "${candidates[@]/#/models/}" \
  "$RUNS/fer2013_reference_scratch"
