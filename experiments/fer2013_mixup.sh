#!/usr/bin/env bash
# Mixup on a shipped student's recipe (docs/results.md, "Mixup on the fer_vgg student"): the recipe of
# models/fer2013_vgg_rawview_seed2 (fer_vgg, 10 epochs warm-started from fer2013_vgg_warm, both views, teacher2v at
# 0.7, the solver seeded 2) with MIXUP=a (0.2 unless given: Beta(a, a)), into $RUNS/fer2013_vgg_rawview_mixup<a>_seed2.
# Its control is that shipped model: the same recipe, start and seed without mixup. Then both are scored from one
# run of make ensemble on both paths (aligned $DATA, plain crops $CROPS), each alone with its TTA
# ($RUNS/fer2013_single_vgg_mixup<a>: MAX_MEMBERS=1, no cost limit), so the two stand on this machine's data side by
# side. About 2 h with two threads on 2 vCPUs of an AMD EPYC with AVX2 (8,972 iterations of 0.45-0.65 s, then
# 25 min of scoring); make train resumes, and the script run again keeps what it made.
#
#   FER2013=path/to/fer2013.csv.gz RUNS=/somewhere/runs [MIXUP=0.2] bash experiments/fer2013_mixup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source experiments/lib.sh  # FER2013=, RUNS=, both_views_inputs, restore_models, distilled, made, choose_on_both_paths
both_views_inputs  # DATA, CROPS, TEACHER
restore_models fer2013_vgg_warm  # the start, out of git history if it left models/
mixup=${MIXUP:-0.2}
name=fer2013_vgg_rawview_mixup${mixup}_seed2
distilled "$name" NET=fer_vgg EPOCHS=10 SEED=2 WEIGHTS=models/fer2013_vgg_warm/fer2013_vgg_warm.caffemodel MIXUP="$mixup"
made "$RUNS/fer2013_single_vgg_mixup$mixup" ||
  MAX_MEMBERS=1 MAX_PASSES=10 MAX_MFLOPS=100000 choose_on_both_paths "fer2013_single_vgg_mixup$mixup" "$RUNS" \
    "$DATA" "$CROPS" models/fer2013_vgg_rawview_seed2 "$RUNS/$name"
