#!/usr/bin/env bash
# The default from the half-width net (docs/results.md, "Half the width: fer_vgg13_half"): its recipe,
# experiments/fer2013_half_width_net.sh, with SEED=1 and SEED=2 (each skips what it made already); the four
# models they made go into models/ with their cards (a student keeps its start's card as <start>.md), and
# ship_default chooses models/fer2013_ensemble among them and the previous default's two members by the
# default's rule (the mean of PublicTest aligned and on plain crops, within 552 million operations and four
# net passes per face), calibrates it and leaves in models/ what it uses. About 4 h 10 min on 2 vCPUs of an
# AMD EPYC with AVX-512 (two runs of the recipe, then about 12 min); make train resumes.
#
#   FER2013=path/to/fer2013.csv.gz RUNS=/somewhere/runs bash experiments/fer2013_half_width_default.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source experiments/lib.sh  # FER2013=, RUNS=, both_views_inputs, restore_models, promote, ship_default
both_views_inputs  # DATA, CROPS, TEACHER
export FER2013 RUNS DATA CROPS TEACHER  # the recipe's inputs, the same
for seed in 1 2; do SEED=$seed bash experiments/fer2013_half_width_net.sh; done
made=(fer2013_vgg13_half_scratch fer2013_vgg13_half_rawview fer2013_vgg13_half_scratch_seed2
  fer2013_vgg13_half_rawview_seed2)
for name in "${made[@]}"; do promote "$name"; done
restore_models fer2013_vgg_rawview_seed2 fer2013_vgg_rawview_distill  # the previous default's members
ship_default fer2013_vgg_rawview_seed2 fer2013_vgg_rawview_distill "${made[@]}"
