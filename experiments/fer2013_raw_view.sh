#!/usr/bin/env bash
# Both views of every training face (make preprocess ARGS=--raw-view: each face aligned and
# as its plain crop, the view `predict --no-detect --raw` gets), so that the models lose
# less without alignment: the recipe of models/fer2013_vgg_distill (fer2013_vgg_warm
# distilled from the shipped ensemble; 10 epochs of both views, two thirds of its 30 epochs'
# images) and the reference net's student (20 epochs of both views). A face's target is the
# teacher's mean over its two views. The students go to $CANDIDATES; then `make ensemble`
# over them and the shipped FER2013 models, and the raw-crop accuracy of each model, of the
# shipped ensemble and of the two students together (experiments/no_detect_accuracy.py
# --raw-only). About 1 h 30 min on 2 cores with AVX2, the two students side by side with one
# thread each; every make train resumes where it stopped.
#
#   FER2013=path/to/fer2013.csv.gz RUNS=/somewhere/runs bash experiments/fer2013_raw_view.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source experiments/lib.sh  # FER2013=, RUNS= and train_and_ship
DATA=${DATA:-data/fer2013-rawview}
CROPS=${CROPS:-data/fer2013-plain}  # the test splits' crops as PNGs, for no_detect_accuracy.py
TEACHER=${TEACHER:-$RUNS/teacher2v_lmdb}
CANDIDATES=${CANDIDATES:-candidates}

[ -f "$DATA/manifest.json" ] || make preprocess FER2013="$FER2013" DATA="$DATA" ARGS="--raw-view --no-images"
[ -f "$CROPS/manifest.json" ] || make preprocess FER2013="$FER2013" DATA="$CROPS" ARGS="--no-align"
[ -f "$TEACHER/teacher.json" ] || .venv/bin/python -m train.teacher --model models/fer2013_vgg_warm \
  --model models/fer2013_reference150 --tta mirror --data "$DATA" --out "$TEACHER" --temperature 1

student() {  # NAME NET EPOCHS PARENT: train, evaluate and ship one student on both views
  train_and_ship "$1" "$CANDIDATES" NET="$2" EPOCHS="$3" WEIGHTS="models/$4/$4.caffemodel" \
    SOFT="$(realpath "$TEACHER")" SOFT_WEIGHT=0.7 DATA="$DATA" RUNS="$RUNS"
}
OMP_NUM_THREADS=1 student fer2013_vgg_rawview fer_vgg 10 fer2013_vgg_warm &
vgg=$!
OMP_NUM_THREADS=1 student fer2013_reference_rawview fer_reference 20 fer2013_reference150 &
reference=$!
wait "$vgg"  # a student that failed stops the script here (set -e)
wait "$reference"

make ensemble MEMBERS="models/fer2013_vgg_warm=$DATA models/fer2013_reference150=$DATA \
  models/fer2013_vgg_distill=$DATA $CANDIDATES/fer2013_vgg_rawview=$DATA $CANDIDATES/fer2013_reference_rawview=$DATA" \
  ENSEMBLE=fer2013_ensemble_rawview MODELS="$CANDIDATES"
mkdir -p "$CANDIDATES/pair_rawview"  # the two students alone, with mirror
.venv/bin/python -c 'import sys; from pathlib import Path; from ferlib.model_folder import write_ensemble
write_ensemble(Path(sys.argv[1]), ["../fer2013_vgg_rawview", "../fer2013_reference_rawview"], "mirror")' \
  "$CANDIDATES/pair_rawview"
for split in val test; do  # PublicTest's and PrivateTest's crops through predict --no-detect --raw
  .venv/bin/python experiments/no_detect_accuracy.py --data "$CROPS" --split $split --raw-only \
    --out "$CANDIDATES/no_detect_rawview_$split.json" --model models/fer2013_ensemble "$CANDIDATES/pair_rawview" \
    models/fer2013_{vgg_warm,reference150,vgg_distill} "$CANDIDATES"/fer2013_{vgg,reference}_rawview
done
