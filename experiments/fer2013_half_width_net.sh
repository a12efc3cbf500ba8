#!/usr/bin/env bash
# A half-width larger net (docs/results.md, "Half the width: fer_vgg13_half"): prototxt/fer_vgg13_half
# (fer_vgg13's ten convolutions at half their width: a quarter of its operations per face, 1.6x
# fer_vgg's) in the recipe that measured the other two (16 epochs from random weights on both
# views against the teacher at 0.7, SEED=1; experiments/fer2013_larger_net.sh), so that the
# three nets separate depth from width; then its student in the default's recipe (10 epochs
# warm-started from it, both views, the teacher at 0.7, SEED=2), as fer_vgg13's was. After
# each, `make ensemble` by the default's own rule and budget (552 million operations and four
# passes per face) among what it made and the default's two members, into $RUNS: whether the
# net earns a place in a default, alone or beside one of them. About 2 h with two threads on 2
# vCPUs of an AMD EPYC with AVX-512 (1 h 37 min of it training); make train resumes, and the
# script run again keeps what it made.
#
#   FER2013=path/to/fer2013.csv.gz RUNS=/somewhere/runs bash experiments/fer2013_half_width_net.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source experiments/lib.sh  # FER2013=, RUNS=, both_views_inputs, made, train_and_ship, as_member
both_views_inputs  # DATA, CROPS, TEACHER
half() {  # NAME SETTING...: fer_vgg13_half on both views against the teacher at 0.7, into $RUNS/NAME unless made
  local name=$1
  shift
  made "$RUNS/$name" || train_and_ship "$name" "$RUNS" NET=fer_vgg13_half "$@" SOFT="$(realpath "$TEACHER")" \
    SOFT_WEIGHT=0.7 DATA="$DATA" RUNS="$RUNS"
}
half fer2013_vgg13_half_scratch EPOCHS=16 SEED=1
as_member fer2013_ensemble_half fer2013_vgg13_half_scratch
half fer2013_vgg13_half_rawview EPOCHS=10 SEED=2 WEIGHTS="$RUNS/fer2013_vgg13_half_scratch/fer2013_vgg13_half_scratch.caffemodel"
as_member fer2013_ensemble_half_student fer2013_vgg13_half_scratch fer2013_vgg13_half_rawview
