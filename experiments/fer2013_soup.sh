#!/usr/bin/env bash
# One model from several (docs/results.md, "One model from several: a model soup"): the
# fer_vgg students warm-started from fer2013_vgg_warm on both views (experiments/fer2013_raw_view.sh,
# experiments/fer2013_other_targets.sh, and the LR_POLICY=poly run of the same recipe, trained
# here) averaged weight by weight with `make soup`, greedily on both paths; the uniform soup of
# the two seeds of one recipe; the ensemble of the same six students (the answer-averaging
# the soup is measured against), chosen by the default's rule (choose_on_both_paths) with up to
# six passes, 827 million operations, per face (mirror for up to three); and that rule as it
# is over the default's two members and the soup. Everything goes into $RUNS, not over the
# default. Run the two scripts above first: their students are the inputs.
# About 35 min for the poly run with two threads, then 15 min of scoring, on 2 cores with AVX2.
#
#   FER2013=path/to/fer2013.csv.gz RUNS=/somewhere/runs bash experiments/fer2013_soup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source experiments/lib.sh  # FER2013=, RUNS=, both_views_inputs, train_and_ship, restore_models, choose_on_both_paths
both_views_inputs  # DATA, CROPS, TEACHER
restore_models fer2013_vgg_warm
train_and_ship fer2013_vgg_rawview_poly "$RUNS" NET=fer_vgg EPOCHS=10 SEED=2 LR_POLICY=poly DATA="$DATA" RUNS="$RUNS" \
  WEIGHTS=models/fer2013_vgg_warm/fer2013_vgg_warm.caffemodel SOFT="$(realpath "$TEACHER")" SOFT_WEIGHT=0.7

students=(models/fer2013_vgg_rawview_seed2 models/fer2013_vgg_rawview_distill "$RUNS/fer2013_vgg_rawview"
  "$RUNS/fer2013_vgg_rawview_gen2" "$RUNS/fer2013_vgg_rawview_t2" "$RUNS/fer2013_vgg_rawview_poly")
make soup MEMBERS="${students[*]}" DATA="$DATA" ARGS="--raw $CROPS" SOUP=fer2013_vgg_soup MODELS="$RUNS"
make soup MEMBERS="$RUNS/fer2013_vgg_rawview models/fer2013_vgg_rawview_seed2" DATA="$DATA" \
  ARGS="--raw $CROPS --uniform" SOUP=fer2013_vgg_soup_seeds MODELS="$RUNS"
MAX_PASSES=6 MAX_MFLOPS=827 choose_on_both_paths fer2013_ensemble_students "$RUNS" "$DATA" "$CROPS" "${students[@]}"
choose_on_both_paths fer2013_ensemble_soup "$RUNS" "$DATA" "$CROPS" models/fer2013_vgg_rawview_seed2 \
  models/fer2013_vgg_rawview_distill "$RUNS/fer2013_vgg_soup"
