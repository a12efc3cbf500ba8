#!/usr/bin/env bash
# A long augmented schedule from random weights (docs/results.md, "A long augmented schedule"): fer_vgg13_half
# trained once for 32 epochs (EPOCHS=n to change) of the default's targets (both views, the teacher at 0.7) with
# AUGMENT=fer, where the default's net came from a chain of shorter schedules (16 epochs from random weights,
# 10 distilled, 16 augmented, 16 augmented again in two siblings averaged: 58 epochs). SEED=s (1 unless given)
# seeds the solver s+10; the names made in $RUNS end in _seed<s> unless s is 1, and say the epochs unless 32
# (fer2013_vgg13_half_long64_seed2). MIXUP=a trains on mixed examples too (make train MIXUP=a, Beta(a, a); names
# fer2013_vgg13_half_long_mixup0.2): the same seed makes the run without it its control. Then, by the default's rule and
# budget, among the models the default and the ensemble by name use and it, into $RUNS: the best single model
# (fer2013_single_half_long: would it be the default?) and the best group (fer2013_ensemble_half_long: an
# independent member?), from one scoring. About 2 h 10 min with two threads on 2 vCPUs of an AMD EPYC with AVX-512
# (28,709 iterations of about 0.25 s, then 5 min of scoring; twice the iterations for EPOCHS=64); make train
# resumes, and the script run again keeps what it made.
#
#   FER2013=path/to/fer2013.csv.gz RUNS=/somewhere/runs [SEED=2] [EPOCHS=32] [MIXUP=0.2] \
#     bash experiments/fer2013_half_width_augment_long.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source experiments/lib.sh  # FER2013=, RUNS=, seeded_inputs, distilled, made, choose_on_both_paths
seeded_inputs  # SEED, suffix, DATA, CROPS, TEACHER
epochs=${EPOCHS:-32}
mixup=${MIXUP:-}
tag=long$([ "$epochs" = 32 ] || echo "$epochs")${mixup:+_mixup$mixup}$suffix  # what the names made end in
distilled "fer2013_vgg13_half_$tag" NET=fer_vgg13_half EPOCHS="$epochs" SEED="$((SEED + 10))" AUGMENT=fer \
  ${mixup:+MIXUP="$mixup"}
shipped=(fer2013_vgg13_half_siblings fer2013_vgg_rawview_seed2 fer2013_vgg13_half_siblings_seed2)  # what the two use
{ made "$RUNS/fer2013_single_half_$tag" && made "$RUNS/fer2013_ensemble_half_$tag"; } ||
  SINGLE="fer2013_single_half_$tag" choose_on_both_paths "fer2013_ensemble_half_$tag" "$RUNS" "$DATA" "$CROPS" \
    "${shipped[@]/#/models/}" "$RUNS/fer2013_vgg13_half_$tag"
