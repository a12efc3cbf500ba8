#!/usr/bin/env bash
# A run's last snapshots averaged (docs/results.md, "Three probes that did not pay"): the weights of a run's snapshots
# from iteration FROM on (its last learning-rate phases), averaged uniformly with their BatchNorm statistics by
# make soup, as stochastic weight averaging averages the tail of one trajectory. MODEL is the model folder shipped
# from that run (its deploy, mean, labels and alignment serve each snapshot); the snapshots become model folders under
# $RUNS/snapshots-of-<MODEL's name> and the average $RUNS/<MODEL's name>_tail. About 12 min on 2 vCPUs of an AMD
# EPYC with AVX-512 (the average scored with every TTA).
#
#   MODEL=runs/fer2013_vgg13_half_long FROM=17960 RUNS=/somewhere/runs DATA=data/fer2013-rawview \
#     bash experiments/snapshot_average.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source experiments/lib.sh  # RUNS=, run_behind, made
: "${MODEL:?MODEL=the model folder shipped from the run}" "${FROM:?FROM=the first iteration averaged}"
DATA=${DATA:-data/fer2013-rawview}
name=$(basename "$MODEL")
run=$(run_behind "$MODEL")
folders=()
for weights in "$run"/snapshots/*_iter_*.caffemodel; do
  iteration=${weights##*_iter_}
  iteration=${iteration%.caffemodel}
  [ "$iteration" -ge "$FROM" ] || continue
  folder=$RUNS/snapshots-of-$name/iter_$iteration
  mkdir -p "$folder"
  cp "$MODEL"/{deploy.prototxt,mean.npy,labels.json,alignment.json} "$folder/"
  ln -sf "$(realpath "$weights")" "$folder/iter_$iteration.caffemodel"
  folders+=("$folder")
done
made "$RUNS/${name}_tail" || make soup MEMBERS="${folders[*]}" DATA="$DATA" ARGS="--uniform" SOUP="${name}_tail" \
  MODELS="$RUNS"
