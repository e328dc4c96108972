#!/usr/bin/env bash
# The main job: fine-tune resnet18 on FashionMNIST (Debian's copy, the embedded default dataset),
# then evaluate it on the test split with the full metrics report.
set -euo pipefail
CV=${1:-build/cvision}
OUT=${CVISION_DEMO_OUT:-out/demo}
rm -rf "$OUT"
mkdir -p "$OUT"
start=$(date +%s)

echo "== the data"
"$CV" data info fashionmnist:train

echo "== fine-tuning resnet18 (1 epoch, AdamW, one-cycle schedule, 10% held out for validation)"
"$CV" train -m resnet18 --data fashionmnist:train --val-fraction 0.1 --out "$OUT/train" \
    --epochs 1 --batch 128 --opt adamw --lr 0.003 --wd 0.05 --sched onecycle --seed 0

echo "== evaluation on the test split"
"$CV" eval -m resnet18 -w "$OUT/train/best.safetensors" --data fashionmnist:test --out "$OUT/eval"

echo "== the run, as tracked"
"$CV" runs list --db "$OUT/train/runs.sqlite"

echo "demo finished in $(($(date +%s) - start)) s; HTML report: $OUT/eval/report.html"
