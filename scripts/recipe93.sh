#!/usr/bin/env bash
# The >= 93% recipe (issue #5): resnet18 from scratch (no pretrained weights here) on all 60000
# FashionMNIST training images, upsampled to 56x56 so that torchvision's ImageNet stem leaves
# layer4 2x2 maps instead of 1x1, trained in bf16 mixed precision, then evaluated on the 10000
# test images. The last epoch's weights are evaluated: there is no validation split, so the test
# split is never used to pick anything. See docs/training.md ("The 93% recipe") for what was
# measured.
set -euo pipefail
CV=${1:-build/cvision}
OUT=${CVISION_RECIPE_OUT:-out/recipe93}
EPOCHS=${CVISION_RECIPE_EPOCHS:-8}
SIDE=${CVISION_RECIPE_SIDE:-56}
rm -rf "$OUT"
mkdir -p "$OUT"
start=$(date +%s)

# Resize + RandomCrop(padding=4) + horizontal flip; SGD with Nesterov momentum on a one-cycle
# schedule (peak lr 0.1), weight decay 5e-4 (none on batch norm and biases), label smoothing 0.1,
# batch 128. Evaluation (recorded in the checkpoint's sidecar, read by `cvision eval`) is the training
# pipeline without its randomness: grayscale(3),resize(56),center_crop(56,56),to_tensor,normalize.
"$CV" train -m resnet18 --data fashionmnist:train --val-fraction 0 --out "$OUT/train" \
    --epochs "$EPOCHS" --batch 128 --opt sgd_nesterov --lr 0.1 --momentum 0.9 --wd 5e-4 --norm-wd 0 \
    --sched onecycle --label-smoothing 0.1 --seed "${CVISION_RECIPE_SEED:-0}" --amp bf16 \
    --train-transform "grayscale(3),resize($SIDE),random_crop($SIDE,padding=4),hflip,to_tensor,normalize(imagenet)"
trained=$(($(date +%s) - start))

"$CV" eval -m resnet18 -w "$OUT/train/last.safetensors" --data fashionmnist:test --out "$OUT/eval"
echo "recipe: training $trained s, total $(($(date +%s) - start)) s; report: $OUT/eval/report.html"
