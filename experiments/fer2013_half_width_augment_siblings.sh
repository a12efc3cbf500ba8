#!/usr/bin/env bash
# Siblings of the second augmented restart, their weights averaged (docs/results.md, "Siblings of one start,
# averaged"): the augmented model of experiments/fer2013_half_width_augment.sh warm-started again for the same 16
# epochs of the same recipe (both views, the teacher at 0.7, AUGMENT=fer) with another seed, s+6 where
# experiments/fer2013_half_width_augment_restart.sh took s+4. The two siblings share a start, as the fer_vgg students
# whose average answered better than either did (docs/results.md, "One model from several: a model soup"); one model
# from them costs one pass per face. Then `make soup` of the two siblings as they are (uniform), and greedily over
# them and their start, and each soup as a member beside the old default's two fer_vgg and the default's augmented
# model, by the default's rule and budget, into $RUNS. Run the restart script first, with the same SEED: its model is
# the first sibling. About 1 h 15 min with two threads on 2 vCPUs of an AMD EPYC with AVX-512 (58 min of Caffe time);
# make train resumes, and the script run again keeps what it made.
#
#   FER2013=path/to/fer2013.csv.gz RUNS=/somewhere/runs [SEED=2] bash experiments/fer2013_half_width_augment_siblings.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source experiments/lib.sh  # FER2013=, RUNS=, seeded_inputs, model_folder, distilled, made, as_member
seeded_inputs  # SEED, suffix, DATA, CROPS, TEACHER
augmented=fer2013_vgg13_half_augment$suffix
start=$(model_folder "$augmented")
siblings=("$RUNS/fer2013_vgg13_half_augment2$suffix" "$RUNS/fer2013_vgg13_half_augment2b$suffix")
distilled "fer2013_vgg13_half_augment2b$suffix" NET=fer_vgg13_half EPOCHS=16 SEED="$((SEED + 6))" AUGMENT=fer \
  WEIGHTS="$start/$augmented.caffemodel"
made "$RUNS/fer2013_vgg13_half_siblings$suffix" || make soup MEMBERS="${siblings[*]}" DATA="$DATA" \
  ARGS="--raw $CROPS --uniform" SOUP="fer2013_vgg13_half_siblings$suffix" MODELS="$RUNS"
made "$RUNS/fer2013_vgg13_half_soup$suffix" || make soup MEMBERS="${siblings[*]} $start" DATA="$DATA" \
  ARGS="--raw $CROPS" SOUP="fer2013_vgg13_half_soup$suffix" MODELS="$RUNS"
as_member "fer2013_ensemble_half_siblings$suffix" "fer2013_vgg13_half_siblings$suffix" \
  "fer2013_vgg13_half_soup$suffix" models/fer2013_vgg13_half_augment_seed2
