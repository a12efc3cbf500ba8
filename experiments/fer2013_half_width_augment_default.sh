#!/usr/bin/env bash
# The default with the augmented half-width model (docs/results.md, "Augmentation on the half-width net"):
# experiments/fer2013_half_width_augment.sh with SEED=2 (16 augmented epochs from the default's half-width
# member; skipped when made already) goes into models/ with its card, and ship_default chooses
# models/fer2013_ensemble among it and the default's three members by the default's rule (the mean of
# PublicTest aligned and on plain crops, within 552 million operations and four net passes per face),
# calibrates it and leaves in models/ what it uses. About 1 h 20 min on 2 vCPUs of an AMD EPYC with AVX-512
# (the augmented run, then about 15 min); make train resumes.
#
#   FER2013=path/to/fer2013.csv.gz RUNS=/somewhere/runs bash experiments/fer2013_half_width_augment_default.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source experiments/lib.sh  # FER2013=, RUNS=, both_views_inputs, restore_models, promote, ship_default
both_views_inputs  # DATA, CROPS, TEACHER
export FER2013 RUNS DATA CROPS TEACHER  # the recipe's inputs, the same
members=(fer2013_vgg_rawview_seed2 fer2013_vgg_rawview_distill fer2013_vgg13_half_rawview_seed2)  # the default's
restore_models "${members[@]}"
SEED=2 bash experiments/fer2013_half_width_augment.sh
promote fer2013_vgg13_half_augment_seed2
ship_default "${members[@]}" fer2013_vgg13_half_augment_seed2
