#!/usr/bin/env bash
# A second both-view restart (docs/results.md, "A second restart of the best single model"):
# fer2013_vgg_rawview_seed2's own recipe run again from its own weights (10 epochs of both
# views against the teacher of experiments/fer2013_raw_view.sh at 0.7, SEED=3), so the best
# single model's lineage gets 10 more epochs with the rate back at 0.01. Then `make ensemble`
# chooses by the default's rule (choose_on_both_paths) among it and the default's two
# members, into $RUNS, not over the default. Its dataset and teacher are
# experiments/fer2013_raw_view.sh's, made first if missing. 1 h 20 min on 2 cores with AVX2
# (one thread, beside another run), then 10 min for the choice; make train resumes.
#
#   FER2013=path/to/fer2013.csv.gz RUNS=/somewhere/runs bash experiments/fer2013_second_restart.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source experiments/lib.sh  # FER2013=, RUNS=, both_views_inputs, train_and_ship, choose_on_both_paths
both_views_inputs  # DATA, CROPS, TEACHER
default=(models/fer2013_vgg_rawview_seed2 models/fer2013_vgg_rawview_distill)
restore_models "${default[@]#models/}"  # the start and the default's members then

train_and_ship fer2013_vgg_rawview_restart "$RUNS" NET=fer_vgg EPOCHS=10 SEED=3 \
  WEIGHTS=models/fer2013_vgg_rawview_seed2/fer2013_vgg_rawview_seed2.caffemodel SOFT="$(realpath "$TEACHER")" \
  SOFT_WEIGHT=0.7 DATA="$DATA" RUNS="$RUNS"
choose_on_both_paths fer2013_ensemble_restart "$RUNS" "$DATA" "$CROPS" "${default[@]}" "$RUNS/fer2013_vgg_rawview_restart"
