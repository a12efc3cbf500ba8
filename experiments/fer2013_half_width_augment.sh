#!/usr/bin/env bash
# Augmentation on the half-width net (docs/results.md, "Half the width: fer_vgg13_half"): the step that paid
# 1.2 points of PublicTest on fer_vgg13 (experiments/fer2013_larger_net_augment.sh), at a quarter of its
# operations. The half-width student of experiments/fer2013_half_width_net.sh (the copy in models/ when the
# default uses it, the same weights as in $RUNS) is warm-started for 16 more epochs of its own recipe (both
# views, the teacher at 0.7) with AUGMENT=fer (prototxt/augment/fer.prototxt); its control is its start. SEED=s
# (1 unless given) takes the student of that seed's recipe and seeds this run s+2; the names made in $RUNS end
# in _seed<s> unless s is 1. Then `make ensemble` by the default's own rule and budget, among the default's
# two members and it, and again with its start among them too (for SEED=2 the default's three members: is it
# a better third?), into $RUNS. About 1 h 5 min with two threads on 2 vCPUs of an AMD EPYC with AVX-512
# (14,354 iterations of about 0.25 s); make train resumes, and the script run again keeps what it made.
#
#   FER2013=path/to/fer2013.csv.gz RUNS=/somewhere/runs [SEED=2] bash experiments/fer2013_half_width_augment.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source experiments/lib.sh  # FER2013=, RUNS=, seeded_inputs, model_folder, half_width_augmented, as_member
seeded_inputs  # SEED, suffix, DATA, CROPS, TEACHER
student=fer2013_vgg13_half_rawview$suffix
start=$(model_folder "$student")
half_width_augmented "fer2013_vgg13_half_augment$suffix" "$student" "$((SEED + 2))"
as_member "fer2013_ensemble_half_augment$suffix" "fer2013_vgg13_half_augment$suffix"
as_member "fer2013_ensemble_half_augment_start$suffix" "fer2013_vgg13_half_augment$suffix" "$start"
