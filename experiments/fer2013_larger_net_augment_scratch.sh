#!/usr/bin/env bash
# Augmentation from random weights on the larger net (docs/results.md, "Augmentation from random weights"):
# fer2013_vgg13_scratch's recipe (fer_vgg13, 16 epochs from random weights on both views against
# the teacher at 0.7; experiments/fer2013_larger_net.sh) with AUGMENT=fer
# (prototxt/augment/fer.prototxt), then 16 more augmented epochs warm-started from it: the
# augmented restart of experiments/fer2013_larger_net_augment.sh without the student between,
# two runs of one recipe instead of three of different ones (the candidate final recipe of the
# issue). The first run's control is its recipe without augmentation, measured twice; the second's is its start.
# SEED=s (1 unless given) seeds the first run and s+1 the second; the names shipped into $RUNS
# end in _seed<s> unless s is 1. After each run `make ensemble` measures it as a member among
# the default's two, counting passes only (MAX_MFLOPS=3500, as in fer2013_larger_net.sh), into
# $RUNS. What is made already is kept, so the script run again goes on where it stopped.
# About 3 h 20 min to 6 h per run with two threads on 2 cores with AVX2 (14,354 iterations of
# 0.8-1.5 s, by machine); make train resumes, so a run may span sessions.
#
#   FER2013=path/to/fer2013.csv.gz RUNS=/somewhere/runs [SEED=2] bash experiments/fer2013_larger_net_augment_scratch.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source experiments/lib.sh  # FER2013=, RUNS=, seeded_inputs, distilled, as_member
seeded_inputs  # SEED, suffix, DATA, CROPS, TEACHER
augmented() {  # NAME SEED [SETTING...]: fer_vgg13, 16 augmented epochs distilled on both views, into $RUNS/NAME$suffix
  distilled "$1$suffix" NET=fer_vgg13 EPOCHS=16 SEED="$2" AUGMENT=fer "${@:3}"
}
augmented fer2013_vgg13_augment_scratch "$SEED"
MAX_MFLOPS=3500 as_member "fer2013_ensemble_augment_scratch$suffix" "fer2013_vgg13_augment_scratch$suffix"
augmented fer2013_vgg13_augment_restart "$((SEED + 1))" \
  WEIGHTS="$RUNS/fer2013_vgg13_augment_scratch$suffix/fer2013_vgg13_augment_scratch$suffix.caffemodel"
MAX_MFLOPS=3500 as_member "fer2013_ensemble_augment_restart$suffix" "fer2013_vgg13_augment_scratch$suffix" \
  "fer2013_vgg13_augment_restart$suffix"
