#!/usr/bin/env bash
# The transfer study in miniature, on real data this machine has (docs/study.md):
#   upstream:   4 architectures trained by cvision on FashionMNIST with the same fixed budget; their
#               FashionMNIST test accuracy takes the place of ImageNet top-1;
#   downstream: scikit-learn's handwritten digits (Debian's python3-sklearn ships them; 10 classes,
#               accuracy) and an imbalanced binary task cut from FashionMNIST's test split (shirts
#               vs T-shirts, pullovers and coats, 10% positives; ROC AUC);
#   then `cvision study` (grid over the learning rate, 80/20 validation split, selection, test
#   metric) and its analysis. Re-running continues where it stopped.
# Usage: scripts/study_example.sh [path/to/cvision]   (make study-example)
# Budget knobs (environment): OUT, MODELS, PRE_STEPS (pretraining steps of 64 images), EPOCHS,
# GRID, THREADS.
set -euo pipefail
CV=$(realpath "${1:-build/cvision}")
OUT=${OUT:-study-example}
MODELS=${MODELS:-resnet18,mobilenet_v2,shufflenet_v2_x0_5,shufflenet_v2_x1_0}
PRE_STEPS=${PRE_STEPS:-150}
EPOCHS=${EPOCHS:-3}
GRID=${GRID:-"lr=0.01,0.001;wd=1e-4;opt=sgd;sched=cosine"}
THREADS=${THREADS:-2}
# Images are upsampled to 56 px: at 28 px the last stage of these networks sees 1x1 maps, where
# training-mode batch norm normalises over the batch alone and the eval-mode model collapses to one
# class after fine-tuning (PyTorch does the same).
TF="grayscale(3),resize(56),to_tensor,normalize(imagenet)"
DIGITS=/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz
FMNIST=/usr/share/datasets/fashion-mnist
D="$OUT/data"
mkdir -p "$D" "$OUT/pretrain"
t0=$(date +%s)

# 1. Data, converted once: digits upsampled 8x8 -> 28x28 (nearest) to FashionMNIST's scale, with a
#    fixed class-balanced 80/20 train/test split; the binary task from FashionMNIST's test images.
if [ ! -f "$D/shirts_testY.npy" ]; then
    /usr/bin/python3 - "$DIGITS" "$FMNIST" "$D" <<'EOF'
import gzip, sys
import numpy as np
digits, fmnist, out = sys.argv[1:]
a = np.loadtxt(digits, delimiter=",", dtype=np.int64)
x = np.clip(a[:, :64].reshape(-1, 8, 8) * 16, 0, 255).astype(np.uint8)
idx = np.arange(28) * 8 // 28
x = x[:, idx][:, :, idx]
y = a[:, 64]
rng = np.random.RandomState(0)
test = np.zeros(len(y), bool)
for c in range(10):
    i = rng.permutation(np.flatnonzero(y == c))
    test[i[: len(i) // 5]] = True
for part, m in (("train", ~test), ("test", test)):
    np.save(f"{out}/digits_{part}X.npy", x[m])
    np.save(f"{out}/digits_{part}Y.npy", y[m])
imgs = np.frombuffer(gzip.open(f"{fmnist}/t10k-images-idx3-ubyte.gz").read(), np.uint8, offset=16)
imgs = imgs.reshape(-1, 28, 28)
lab = np.frombuffer(gzip.open(f"{fmnist}/t10k-labels-idx1-ubyte.gz").read(), np.uint8, offset=8)
neg = np.concatenate([rng.permutation(np.flatnonzero(lab == c))[:600] for c in (0, 2, 4)])
pos = rng.permutation(np.flatnonzero(lab == 6))[:200]
sel = np.concatenate([neg, pos])
yb = np.r_[np.zeros(len(neg), np.int64), np.ones(len(pos), np.int64)]
test = np.zeros(len(sel), bool)
for c in (0, 1):
    i = rng.permutation(np.flatnonzero(yb == c))
    test[i[: len(i) // 4]] = True
for part, m in (("train", ~test), ("test", test)):
    np.save(f"{out}/shirts_{part}X.npy", imgs[sel][m])
    np.save(f"{out}/shirts_{part}Y.npy", yb[m])
print(f"data written to {out}")
EOF
fi

# 2. Upstream: each architecture trained from scratch on FashionMNIST with the same budget, then
#    its accuracy on FashionMNIST's test split.
WEIGHTS="" UPSTREAM=""
for m in ${MODELS//,/ }; do
    P="$OUT/pretrain/$m"
    if [ ! -f "$P/best.safetensors" ]; then
        echo "== pretraining $m on FashionMNIST ($PRE_STEPS steps of 64)"
        "$CV" train -m "$m" --data fashionmnist:train --val-fraction 0.05 --epochs 1 \
            --max-steps "$PRE_STEPS" --batch 64 --lr 0.01 --train-transform "$TF" \
            --eval-transform "$TF" --threads "$THREADS" --out "$P" --quiet
    fi
    if [ ! -f "$P/upstream.txt" ]; then
        "$CV" eval -m "$m" -w "$P/best.safetensors" --data fashionmnist:test --json \
            --threads "$THREADS" |
            /usr/bin/python3 -c 'import json,sys; print("%.2f" % (100 * json.load(sys.stdin)["metrics"]["accuracy_score"]))' \
                >"$P/upstream.txt"
    fi
    WEIGHTS+="${WEIGHTS:+,}$m=$P/best.safetensors"
    UPSTREAM+="${UPSTREAM:+,}$m=$(cat "$P/upstream.txt")"
done
t1=$(date +%s)
echo "== upstream (FashionMNIST test accuracy, %): $UPSTREAM  [$((t1 - t0)) s]"

# 3. The study: fine-tune every model on both tasks over the grid, select on validation, test.
"$CV" study --models "$MODELS" --weights "$WEIGHTS" --upstream "$UPSTREAM" \
    --data "digits=npy:$D/digits_trainX.npy,$D/digits_trainY.npy" \
    --test "digits=npy:$D/digits_testX.npy,$D/digits_testY.npy" \
    --data "shirts=npy:$D/shirts_trainX.npy,$D/shirts_trainY.npy" \
    --test "shirts=npy:$D/shirts_testX.npy,$D/shirts_testY.npy" --metric shirts=roc_auc \
    --train-transform "$TF" --eval-transform "$TF" \
    --grid "$GRID" --epochs "$EPOCHS" --batch 32 --threads "$THREADS" --out "$OUT/study"
t2=$(date +%s)
echo "== pretraining $((t1 - t0)) s, study $((t2 - t1)) s, total $((t2 - t0)) s"
