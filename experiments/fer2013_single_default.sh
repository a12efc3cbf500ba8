#!/usr/bin/env bash
# One model as the default (docs/results.md, "One model as the default"): predict's default becomes the best single
# model and its test-time augmentation, while the video target holds, and an ensemble stays available by name. Each
# seed's two siblings of experiments/fer2013_half_width_augment_siblings.sh (SEED=1 and SEED=2; each step skipped
# when made) averaged, that average shipped from $RUNS into models/ with its members' cards; then ship_default chooses,
# among these averages and the four candidates of the default before (out of git history where they left models/),
# by the default's rule (the mean of PublicTest aligned and on plain crops, within 552 million operations and four
# net passes per face), models/fer2013_default (one model) and models/fer2013_ensemble (any group, kept when more
# than one model), calibrates them and leaves in models/ what they use. Run experiments/fer2013_half_width_augment.sh
# and _restart.sh first for both seeds. Once the siblings are trained (each about 1 h 15 min on 2 vCPUs of an
# AMD EPYC with AVX-512), mostly the one scoring of the candidates on both paths (about 8 min there).
#
#   FER2013=path/to/fer2013.csv.gz RUNS=runs bash experiments/fer2013_single_default.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source experiments/lib.sh  # FER2013=, RUNS=, both_views_inputs, seed_suffix, restore_models, ship_soup, ship_default
both_views_inputs  # DATA, CROPS, TEACHER
export FER2013 RUNS DATA CROPS TEACHER  # the recipe's inputs, the same
members=(fer2013_vgg_rawview_seed2 fer2013_vgg_rawview_distill fer2013_vgg13_half_rawview_seed2
  fer2013_vgg13_half_augment_seed2)  # the candidates of the default before
restore_models "${members[@]}"
averages=()
for seed in 1 2; do
  SEED=$seed bash experiments/fer2013_half_width_augment_siblings.sh
  averages+=("fer2013_vgg13_half_siblings$(seed_suffix "$seed")")
  ship_soup "${averages[-1]}"
done
ship_default "${members[@]}" "${averages[@]}"
