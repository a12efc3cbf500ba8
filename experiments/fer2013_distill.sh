#!/usr/bin/env bash
# The recipe behind models/fer2013_vgg_distill: the shipped ensemble's probabilities on the
# training faces (its two members, mirror TTA) become soft targets, and each member is
# trained on from its own weights on them (0.7 x the teacher's targets + 0.3 x the labels).
# Then `make ensemble` chooses among the members and the students on PublicTest. About 2 h of
# Caffe on 2 cores, the two students side by side with one thread each; every make train
# resumes where it stopped. The reference-net student and the ensemble search go to
# $CANDIDATES (default: candidates/): the search chose the shipped pair again (docs/results.md).
#
#   FER2013=path/to/fer2013.csv.gz RUNS=/somewhere/runs bash experiments/fer2013_distill.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source experiments/lib.sh  # FER2013=, RUNS=, train_and_ship and restore_models
DATA=${DATA:-data/fer2013}
TEACHER=${TEACHER:-$RUNS/teacher_lmdb}
CANDIDATES=${CANDIDATES:-candidates}

restore_models fer2013_vgg_warm fer2013_reference150  # the teacher, and the students' start
[ -f "$DATA/manifest.json" ] || make preprocess FER2013="$FER2013" DATA="$DATA"
[ -f "$TEACHER/teacher.json" ] || .venv/bin/python -m train.teacher --model models/fer2013_vgg_warm \
  --model models/fer2013_reference150 --tta mirror --data "$DATA" --out "$TEACHER" --temperature 1

student() {  # NAME MODELS NET EPOCHS PARENT: train, evaluate and ship one student
  train_and_ship "$1" "$2" NET="$3" EPOCHS="$4" WEIGHTS="models/$5/$5.caffemodel" \
    SOFT="$(realpath "$TEACHER")" SOFT_WEIGHT=0.7 DATA="$DATA" RUNS="$RUNS"
}
OMP_NUM_THREADS=1 student fer2013_vgg_distill models fer_vgg 30 fer2013_vgg_warm &
vgg=$!
OMP_NUM_THREADS=1 student fer2013_reference_distill "$CANDIDATES" fer_reference 60 fer2013_reference150 &
reference=$!
wait "$vgg"  # a student that failed stops the script here (set -e)
wait "$reference"

make ensemble MEMBERS="models/fer2013_vgg_warm=$DATA models/fer2013_reference150=$DATA \
  models/fer2013_vgg_distill=$DATA $CANDIDATES/fer2013_reference_distill=$DATA" \
  ENSEMBLE=fer2013_ensemble_distill MODELS="$CANDIDATES"
