#!/usr/bin/env bash
# A half-width larger net (docs/results.md, "Half the width: fer_vgg13_half"): prototxt/fer_vgg13_half
# (fer_vgg13's ten convolutions at half their width: a quarter of its operations per face, 1.6x
# fer_vgg's) in the recipe that measured the other two (16 epochs from random weights on both
# views against the teacher at 0.7, SEED=1; experiments/fer2013_larger_net.sh), so that the
# three nets separate depth from width; then its student in the default's recipe (10 epochs
# warm-started from it, both views, the teacher at 0.7, SEED=2), as fer_vgg13's was. SEED=s
# (1 unless given) seeds the first run and s+1 the second; the names made in $RUNS end in
# _seed<s> unless s is 1. After
# each, `make ensemble` by the default's own rule and budget (552 million operations and four
# passes per face) among what it made and the default's two members, into $RUNS: whether the
# net earns a place in a default, alone or beside one of them. About 2 h with two threads on 2
# vCPUs of an AMD EPYC with AVX-512 (1 h 37 min of it training); make train resumes, and the
# script run again keeps what it made.
#
#   FER2013=path/to/fer2013.csv.gz RUNS=/somewhere/runs [SEED=2] bash experiments/fer2013_half_width_net.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source experiments/lib.sh  # FER2013=, RUNS=, seeded_inputs, distilled, as_member
seeded_inputs  # SEED, suffix, DATA, CROPS, TEACHER
distilled "fer2013_vgg13_half_scratch$suffix" NET=fer_vgg13_half SEED="$SEED" EPOCHS=16
as_member "fer2013_ensemble_half$suffix" "fer2013_vgg13_half_scratch$suffix"
distilled "fer2013_vgg13_half_rawview$suffix" NET=fer_vgg13_half SEED="$((SEED + 1))" EPOCHS=10 \
  WEIGHTS="$RUNS/fer2013_vgg13_half_scratch$suffix/fer2013_vgg13_half_scratch$suffix.caffemodel"
as_member "fer2013_ensemble_half_student$suffix" "fer2013_vgg13_half_scratch$suffix" "fer2013_vgg13_half_rawview$suffix"
