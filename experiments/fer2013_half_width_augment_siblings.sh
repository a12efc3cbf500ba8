#!/usr/bin/env bash
# Siblings of the second augmented restart, their weights averaged (docs/results.md, "Siblings of one start,
# averaged"): the augmented model of experiments/fer2013_half_width_augment.sh warm-started again for the same 16
# epochs of the same recipe (both views, the teacher at 0.7, AUGMENT=fer) with other seeds, s+6, s+8, ... where
# experiments/fer2013_half_width_augment_restart.sh took s+4. The siblings share a start, as the fer_vgg students
# whose average answered better than either did (docs/results.md, "One model from several: a model soup"); one model
# from them costs one pass per face. Then `make soup` of the siblings as they are (uniform), and greedily over
# them and their start, and each soup as a member beside the old default's two fer_vgg and the augmented model of
# the default before, by the default's rule and budget, into $RUNS. SIBLINGS=n (2 unless given) counts the restart among them;
# the names of what more than two make end in the count (fer2013_vgg13_half_siblings3, the third sibling
# fer2013_vgg13_half_augment2c). Run the restart script first, with the same SEED: its model is the first sibling.
# About 1 h 15 min a sibling with two threads on 2 vCPUs of an AMD EPYC with AVX-512 (58 min of Caffe time);
# make train resumes, and the script run again keeps what it made.
#
#   FER2013=path/to/fer2013.csv.gz RUNS=/somewhere/runs [SEED=2] [SIBLINGS=3] \
#     bash experiments/fer2013_half_width_augment_siblings.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source experiments/lib.sh  # FER2013=, RUNS=, seeded_inputs, model_folder, siblings, siblings_tag,
# half_width_augmented, restore_models, made, as_member
seeded_inputs  # SEED, suffix, DATA, CROPS, TEACHER
restore_models fer2013_vgg13_half_augment_seed2  # measured beside it, out of git history if it left models/
count=${SIBLINGS:-2}
tag=$(siblings_tag "$count")  # in the names of the soups and the member table
augmented=fer2013_vgg13_half_augment$suffix
start=$(model_folder "$augmented")
mapfile -t names < <(siblings "$count" "$suffix")
for ((i = 1; i < count; i++)); do half_width_augmented "${names[i]}" "$augmented" "$((SEED + 4 + 2 * i))"; done
folders=("${names[@]/#/$RUNS/}")
made "$RUNS/fer2013_vgg13_half_siblings$tag$suffix" || make soup MEMBERS="${folders[*]}" DATA="$DATA" \
  ARGS="--raw $CROPS --uniform" SOUP="fer2013_vgg13_half_siblings$tag$suffix" MODELS="$RUNS"
made "$RUNS/fer2013_vgg13_half_soup$tag$suffix" || make soup MEMBERS="${folders[*]} $start" DATA="$DATA" \
  ARGS="--raw $CROPS" SOUP="fer2013_vgg13_half_soup$tag$suffix" MODELS="$RUNS"
as_member "fer2013_ensemble_half_siblings$tag$suffix" "fer2013_vgg13_half_siblings$tag$suffix" \
  "fer2013_vgg13_half_soup$tag$suffix" models/fer2013_vgg13_half_augment_seed2
