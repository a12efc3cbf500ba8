#!/usr/bin/env bash
# The recipe behind the shipped models/fer2013_ensemble and its two members. Every training
# face goes in twice (make preprocess ARGS=--raw-view: aligned, and as its plain crop, the
# view `predict --no-detect --raw` gets), so that the models lose less without alignment.
# The ensemble that was the default before (fer2013_vgg_warm + fer2013_reference150, mirror;
# experiments/fer2013_ensemble.sh makes them, and they come back out of git history here)
# becomes the teacher, a face's target its mean over the two views. Four students train on
# both views from shipped weights: fer_vgg from fer2013_vgg_warm (10 epochs, two thirds of
# the images of fer2013_vgg_distill's 30) with seeds 1 and 2, fer_vgg from
# fer2013_vgg_distill (10 epochs) and the reference net from fer2013_reference150 (20). Then
# `make ensemble` chooses among the seven FER2013 models by the mean of PublicTest on both
# paths (aligned, and the plain crops of a `--no-align` dataset) within four net passes per
# face (the video target); what it does not keep leaves models/. About 3 h on 2 cores with
# AVX2 (the students 2 h 40 min, two at a time with one thread each); every make train resumes.
#
#   FER2013=path/to/fer2013.csv.gz RUNS=/somewhere/runs bash experiments/fer2013_raw_view.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source experiments/lib.sh  # FER2013=, RUNS=, both_views_inputs, train_and_ship, restore_models, side_by_side, ship_default
both_views_inputs  # DATA, CROPS (the same images unaligned: the --raw path's faces), TEACHER
restore_models fer2013_vgg_warm fer2013_reference150 fer2013_vgg_distill  # starts and a candidate

student() {  # NAME NET EPOCHS PARENT [SEED=n]: train, evaluate and ship one student on both views
  train_and_ship "$1" models NET="$2" EPOCHS="$3" WEIGHTS="models/$4/$4.caffemodel" \
    SOFT="$(realpath "$TEACHER")" SOFT_WEIGHT=0.7 DATA="$DATA" RUNS="$RUNS" "${@:5}"
}
side_by_side "student fer2013_vgg_rawview fer_vgg 10 fer2013_vgg_warm" \
  "student fer2013_reference_rawview fer_reference 20 fer2013_reference150"
side_by_side "student fer2013_vgg_rawview_seed2 fer_vgg 10 fer2013_vgg_warm SEED=2" \
  "student fer2013_vgg_rawview_distill fer_vgg 10 fer2013_vgg_distill"

candidates=(fer2013_vgg_warm fer2013_reference150 fer2013_vgg_distill fer2013_vgg_rawview fer2013_reference_rawview
  fer2013_vgg_rawview_seed2 fer2013_vgg_rawview_distill)
ship_default "${candidates[@]}"
