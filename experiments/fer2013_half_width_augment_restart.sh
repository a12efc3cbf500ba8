#!/usr/bin/env bash
# A second augmented restart of the half-width net (docs/results.md, "A second augmented restart"): the augmented
# model of experiments/fer2013_half_width_augment.sh (the copy in models/ when the default uses it, else the one in
# $RUNS) warm-started for 16 more epochs of the same recipe (both views, the teacher at 0.7, AUGMENT=fer); its
# control is its start. Does the chain that paid twice (student, then one augmented restart) pay a third time?
# SEED=s (1 unless given) takes that seed's augmented model and seeds this run s+4; the names made in $RUNS end in
# _seed<s> unless s is 1. Then `make ensemble` by the default's own rule and budget among the old default's two
# fer_vgg members, it, its start and the default's augmented member (the start for SEED=2), into $RUNS. About
# 1 h 10 min with two threads on 2 vCPUs of an AMD EPYC with AVX-512 (58 min of Caffe time); make train resumes,
# and the script run again keeps what it made.
#
#   FER2013=path/to/fer2013.csv.gz RUNS=/somewhere/runs [SEED=2] bash experiments/fer2013_half_width_augment_restart.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source experiments/lib.sh  # FER2013=, RUNS=, seeded_inputs, model_folder, half_width_augmented, restore_models,
# as_member
seeded_inputs  # SEED, suffix, DATA, CROPS, TEACHER
restore_models fer2013_vgg13_half_augment_seed2  # measured beside it, out of git history if it left models/
augmented=fer2013_vgg13_half_augment$suffix
start=$(model_folder "$augmented")
half_width_augmented "fer2013_vgg13_half_augment2$suffix" "$augmented" "$((SEED + 4))"
as_member "fer2013_ensemble_half_augment2$suffix" "fer2013_vgg13_half_augment2$suffix" "$start" \
  models/fer2013_vgg13_half_augment_seed2  # the augmented member of the default before (the start for SEED=2)
