#!/usr/bin/env bash
# Members and students that learn other targets than the teacher of experiments/fer2013_raw_view.sh
# (docs/results.md, "Members that learn other targets"). Each new model goes to $RUNS, and
# `make ensemble` chooses by the default's rule (choose_on_both_paths) among it and the
# default's two members, into $RUNS, not over the default:
# - the labels alone: the reference net from random weights, 60 epochs of both views, SEED=4,
#   beside its teacher-trained sibling from experiments/fer2013_scratch_members.sh;
# - the FER+ crowd's votes (python -m train.teacher --votes) at SOFT_WEIGHT=0.5, so that the
#   FER2013 label keeps at least half of every target, in fer2013_vgg_rawview_seed2's recipe
#   with only the targets changed (fer_vgg from fer2013_vgg_warm, 10 epochs, SEED=2);
# - in the same recipe, the first teacher softened (T = 2) and the shipped default as teacher
#   (a second generation), side by side with one thread each (about 1 h).
# Run experiments/fer2013_scratch_members.sh first (fer2013_reference_scratch); the datasets of
# experiments/fer2013_raw_view.sh are made first if missing. About 1 h 20 min + 35 min + 1 h on 2
# cores with AVX2, then 10 min per choice; make train resumes.
#
#   FER2013=path/to/fer2013.csv.gz FERPLUS=path/to/fer2013new.csv RUNS=/somewhere/runs \
#     bash experiments/fer2013_other_targets.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source experiments/lib.sh  # FER2013=, RUNS=, both_views_data, train_and_ship, restore_models, choose_on_both_paths, side_by_side
both_views_data  # DATA, CROPS
FERPLUS=${FERPLUS:-../shared/data/fer2013new.csv}
VOTES=${VOTES:-$RUNS/teacher-votes}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
default=(models/fer2013_vgg_rawview_seed2 models/fer2013_vgg_rawview_distill)
student() {  # NAME TARGETS WEIGHT: fer2013_vgg_rawview_seed2's recipe on other soft targets, into $RUNS
  train_and_ship "$1" "$RUNS" NET=fer_vgg EPOCHS=10 WEIGHTS=models/fer2013_vgg_warm/fer2013_vgg_warm.caffemodel \
    SEED=2 SOFT="$(realpath "$2")" SOFT_WEIGHT="$3" DATA="$DATA" RUNS="$RUNS"
}

train_and_ship fer2013_reference_labels "$RUNS" NET=fer_reference EPOCHS=60 SEED=4 DATA="$DATA" RUNS="$RUNS"
choose_on_both_paths fer2013_ensemble_labels "$RUNS" "$DATA" "$CROPS" "${default[@]}" \
  "$RUNS/fer2013_reference_labels" "$RUNS/fer2013_reference_scratch"

restore_models fer2013_vgg_warm
[ -f "$VOTES/teacher.json" ] || .venv/bin/python -m train.teacher --votes "$FERPLUS" --data "$DATA" --out "$VOTES"
student fer2013_vgg_rawview_votes "$VOTES" 0.5
choose_on_both_paths fer2013_ensemble_votes "$RUNS" "$DATA" "$CROPS" "${default[@]}" "$RUNS/fer2013_vgg_rawview_votes"

softer=$RUNS/teacher2v-t2 second=$RUNS/teacher-gen2
restore_models fer2013_reference150
[ -f "$softer/teacher.json" ] || .venv/bin/python -m train.teacher --model models/fer2013_vgg_warm \
  --model models/fer2013_reference150 --tta mirror --data "$DATA" --out "$softer" --temperature 2
[ -f "$second/teacher.json" ] || .venv/bin/python -m train.teacher --model models/fer2013_ensemble --data "$DATA" \
  --out "$second"
side_by_side "student fer2013_vgg_rawview_t2 $softer 0.7" "student fer2013_vgg_rawview_gen2 $second 0.7"
choose_on_both_paths fer2013_ensemble_teachers "$RUNS" "$DATA" "$CROPS" "${default[@]}" \
  "$RUNS/fer2013_vgg_rawview_t2" "$RUNS/fer2013_vgg_rawview_gen2"
