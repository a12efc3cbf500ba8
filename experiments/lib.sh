# shellcheck shell=bash
# Sourced by the experiment scripts (not run): the inputs they share and the steps every
# candidate model goes through.

FER2013=${FER2013:-../shared/data/fer2013.csv.gz}
RUNS=${RUNS:-runs}

both_views_data() {  # DATA and CROPS of the both-views recipes, unless given, each made here if missing: the dataset
  # of both views and the same images as plain crops (the --raw path's faces); about 5 min on 2 cores
  DATA=${DATA:-data/fer2013-rawview}
  CROPS=${CROPS:-data/fer2013-plain}
  [ -f "$DATA/manifest.json" ] || make preprocess FER2013="$FER2013" DATA="$DATA" ARGS="--raw-view --no-images"
  [ -f "$CROPS/manifest.json" ] || make preprocess FER2013="$FER2013" DATA="$CROPS" ARGS="--no-align"
}

both_views_inputs() {  # both_views_data, and TEACHER, unless given, made here if missing: the default before the
  # both-views models (fer2013_vgg_warm + fer2013_reference150 with mirror, out of git history; a face's target is its
  # mean over the two views), as experiments/fer2013_raw_view.sh first made it; about 17 min on 2 cores
  # (230k net passes: 28,709 faces, two views, mirrored, two nets)
  both_views_data
  TEACHER=${TEACHER:-$RUNS/teacher2v}
  if [ ! -f "$TEACHER/teacher.json" ]; then
    restore_models fer2013_vgg_warm fer2013_reference150
    .venv/bin/python -m train.teacher --model models/fer2013_vgg_warm --model models/fer2013_reference150 \
      --tta mirror --data "$DATA" --out "$TEACHER" --temperature 1
  fi
}

seed_suffix() {  # SEED: what a recipe's names end in for that seed: nothing for 1 (the names first made), else _seed<SEED>
  [ "$1" = 1 ] || echo "_seed$1"
}

seeded_inputs() {  # how a recipe run with SEED=s starts: SEED (1 unless given), suffix (seed_suffix: what the names it
  # makes end in) and both_views_inputs (DATA, CROPS, TEACHER)
  SEED=${SEED:-1}
  # shellcheck disable=SC2034  # read by the recipes that source this file
  suffix=$(seed_suffix "$SEED")
  both_views_inputs
}

model_folder() {  # NAME: where model NAME lies: its copy in models/ when shipped there (the same weights as the
  # run's), else $RUNS/NAME
  if [ -f "models/$1/$1.caffemodel" ]; then echo "models/$1"; else echo "$RUNS/$1"; fi
}

made() {  # FOLDER: true, with a line saying so, when FOLDER holds a model or ensemble already (ship and ensemble write
  # their folder whole or not at all): `made x || train_and_ship x ...` lets a chain of runs, run again after an
  # interruption, skip the steps it finished (train_and_ship alone would evaluate its finished run again)
  [ -f "$1/report.json" ] && echo "$1: made already, kept"
}

train_and_ship() {  # NAME MODELS SETTING...: make train, make evaluate and make ship NAME into MODELS
  local name=$1 models=$2
  shift 2
  make train "$@"
  make evaluate "$@"
  make ship "$@" NAME="$name" MODELS="$models"
}

distilled() {  # NAME SETTING...: train_and_ship NAME into $RUNS on both views ($DATA) against $TEACHER at 0.7, the
  # targets of the default's recipe, unless made already
  local name=$1
  shift
  made "$RUNS/$name" || train_and_ship "$name" "$RUNS" "$@" SOFT="$(realpath "$TEACHER")" SOFT_WEIGHT=0.7 \
    DATA="$DATA" RUNS="$RUNS"
}

half_width_augmented() {  # NAME FROM SEED: distilled NAME, the recipe of every augmented half-width run: 16 epochs of
  # fer_vgg13_half with AUGMENT=fer, warm-started from model FROM (model_folder: its copy in models/ when shipped),
  # the solver seeded SEED
  local start
  start=$(model_folder "$2")
  distilled "$1" NET=fer_vgg13_half EPOCHS=16 SEED="$3" AUGMENT=fer WEIGHTS="$start/$2.caffemodel"
}

siblings() {  # COUNT SUFFIX: the names of COUNT augmented restarts of one seed's start, one a line: the second
  # augmented restart (experiments/fer2013_half_width_augment_restart.sh), then fer2013_vgg13_half_augment2b, 2c, ...
  # (experiments/fer2013_half_width_augment_siblings.sh)
  local letters=("" b c d e f g h) i
  for ((i = 0; i < $1; i++)); do echo "fer2013_vgg13_half_augment2${letters[i]}$2"; done
}

siblings_tag() {  # COUNT: what the names made from COUNT siblings end in before the seed's suffix: nothing for 2 (the
  # names first made), else the count
  [ "$1" = 2 ] || echo "$1"
}

restore_models() {  # NAME...: the shipped models a recipe starts from, out of git history if they left models/
  local name
  for name in "$@"; do
    [ -d "models/$name" ] || scripts/restore_model.sh "$name"
  done
}

choose_on_both_paths() {  # ENSEMBLE MODELS DATA CROPS FOLDER...: make ensemble over the FOLDERs (each on DATA) by the
  # default's rule: the mean of PublicTest aligned and on CROPS' plain crops, within four net passes and 552 million
  # operations per face (four fer_vgg passes: what the 25 frames/s video target allows); MAX_PASSES=n and
  # MAX_MFLOPS=m allow more, for an ensemble measured rather than shipped; MAX_MEMBERS=1 chooses one model and its TTA;
  # SINGLE=name also writes that choice into MODELS/name from the same scores
  local name=$1 models=$2 data=$3 crops=$4 folder members="" limits
  shift 4
  for folder in "$@"; do members+="$folder=$data "; done
  limits="--max-passes ${MAX_PASSES:-4} --max-mflops ${MAX_MFLOPS:-552}${MAX_MEMBERS:+ --max-members $MAX_MEMBERS}"
  make ensemble MEMBERS="$members" ENSEMBLE="$name" MODELS="$models" ARGS="--raw $crops $limits${SINGLE:+ --single $SINGLE}"
}

as_member() {  # ENSEMBLE NAME...: choose_on_both_paths over the two members of the two-net default (the default when
  # the recipes that call this were run; the one-model default came after) and each $RUNS/NAME (on $DATA and $CROPS),
  # into $RUNS/ENSEMBLE unless made already: a candidate measured where it would serve, beside that default.
  # A NAME with a slash is a model folder taken as it is (a start in models/, say); a folder named twice (a start
  # that is also the default's member) is one candidate
  local ensemble=$1 name defaults=(fer2013_vgg_rawview_seed2 fer2013_vgg_rawview_distill) candidates
  shift
  candidates=("${defaults[@]/#/models/}")
  for name in "$@"; do
    [[ $name == */* ]] || name=$RUNS/$name
    [[ " ${candidates[*]} " == *" $name "* ]] || candidates+=("$name")
  done
  made "$RUNS/$ensemble" || {
    restore_models "${defaults[@]}"
    choose_on_both_paths "$ensemble" "$RUNS" "$DATA" "$CROPS" "${candidates[@]}"
  }
}

run_behind() {  # FOLDER: the run folder behind shipped model FOLDER (the run whose snapshot its report.json chose)
  .venv/bin/python -c 'import json, pathlib, sys; print(pathlib.Path(json.load(open(sys.argv[1]))["model"]).parents[1])' \
    "$1/report.json"
}

promote() {  # NAME: make ship again, into models/, of the run behind $RUNS/NAME (run_behind), unless made: a model
  # measured in $RUNS becomes one a user may choose, with its card
  local name=$1 run
  made "models/$name" && return
  run=$(basename "$(run_behind "$RUNS/$name")")
  make ship RUNS="$RUNS" RUN="$run" NAME="$name" MODELS=models
}

ship_soup() {  # NAME: make ship-soup of $RUNS/NAME into models/, unless made: a soup measured in $RUNS becomes one a
  # user may choose, its card naming its members where their cards (kept beside it) put them; no scoring
  made "models/$1" || make ship-soup SOUP_DIR="$RUNS/$1" MODELS=models
}

ship_default() {  # NAME...: what a recipe ends with when it makes the default, chosen among models/NAMEs by
  # choose_on_both_paths (on $DATA and $CROPS), which scores them once: models/fer2013_default, the best single model
  # and its TTA (predict's default is one model, SINGLE=), and models/fer2013_ensemble, the best of every group, kept
  # only when more than one model; each calibrated; each NAME neither uses leaves models/ (one restored from history
  # that they use loses its RESTORED mark: shipped again); then the default through predict itself
  # on PrivateTest's crops both ways (out/no_detect_accuracy.json). The cards name DATA and CROPS by the repository
  # folders make preprocess makes them in, wherever they lie
  local name folder chosen=(models/fer2013_default/ensemble.json models/fer2013_ensemble/ensemble.json)
  SINGLE=fer2013_default choose_on_both_paths fer2013_ensemble models "$DATA" "$CROPS" "${@/#/models/}"
  [ "$(grep -c '"\.\./' "${chosen[1]}")" -gt 1 ] || rm -rf models/fer2013_ensemble  # one model: the default
  for folder in models/fer2013_default models/fer2013_ensemble; do
    [ ! -d "$folder" ] || .venv/bin/python -m train.calibrate --model "$folder" --data "$DATA" --write
  done
  for name in "$@"; do  # models/ keeps what the two need, shipped again if it came out of git history
    if grep -qs "\"../$name\"" "${chosen[@]}"; then rm -f "models/$name/RESTORED"; else rm -rf "models/$name"; fi
  done
  .venv/bin/python experiments/no_detect_accuracy.py --data "$CROPS" --model models/fer2013_default \
    --out out/no_detect_accuracy.json
}

side_by_side() {  # "FUNCTION ARG..." "FUNCTION ARG...": two runs at once, one thread each (on 2 cores this trains
  # both in about the time of one with two threads each, after the other); one that fails stops the script (set -e)
  OMP_NUM_THREADS=1 $1 &
  local first=$!
  OMP_NUM_THREADS=1 $2 &
  local second=$!
  wait "$first"
  wait "$second"
}
