#!/usr/bin/env bash
# Train (or continue) the mini world's generator and CLIPs: one command for a lent GPU or a CPU.
# These are the commands that made the shipped mini-photo-2, mini-clip-2 and mini-clip-2-robust (and
# mini-clip-2-p32, shipped until 2026-12-02).
#
#   OUT=runs/world bash nada_utils/mini_world/recipe/train_world.sh      # models, states and logs in $OUT
#
# $OUT is relative to the folder it is run from; nada_utils must be importable (pip install -e .).
#
# Every script saves its state in $OUT every two minutes and continues from it when run again, so an
# interrupted run (a VM that went away, a device lease that ran out) loses at most two minutes. On a
# GPU the generator and the CLIPs go side by side; on a CPU one after the other. The judge is already shipped
# (nada_utils/mini_world/weights/mini_judge.pt); check the results with python -m nada_utils.mini_world.recipe.check_models.
set -euo pipefail
OUT=${OUT:-runs/world}
mkdir -p "$OUT"
DEVICE=$(python -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')

# The generator in two stages: 9,500 steps of an unconditional run (planned for 30,000; by then it drew
# page, colour and light, and shapes at 44%), then the conditional one (class = shape) from it.
CHANNELS=128,128,64,32,16
generator() {
  python -m nada_utils.mini_world.recipe.train_generator --out "$OUT/mini_photo_uncond.pt" --state "$OUT/g_uncond.state.pt" \
    --steps 30000 --stop-at 9500 --batch 16 --channels $CHANNELS --device "$DEVICE" >> "$OUT/train_generator.log" 2>&1
  python -m nada_utils.mini_world.recipe.train_generator --out "$OUT/mini_photo_2.pt" --state "$OUT/g_cond.state.pt" \
    --conditional --init "$OUT/mini_photo_uncond.pt" --steps 8000 --batch 16 --channels $CHANNELS --device "$DEVICE" \
    >> "$OUT/train_generator.log" 2>&1
}
clip16() { python -m nada_utils.mini_world.recipe.train_clip --out "$OUT/mini_clip.pt" --state "$OUT/clip.state.pt" \
  --patch 16 --steps 3000 --device "$DEVICE" >> "$OUT/train_clip.log" 2>&1; }
# The second CLIP, paired with the first as ViT-B/32 with ViT-B/16: twice the patch, its own seed.
clip32() { python -m nada_utils.mini_world.recipe.train_clip --out "$OUT/mini_clip_p32.pt" --state "$OUT/clip_p32.state.pt" \
  --patch 32 --steps 1000 --seed 1 --device "$DEVICE" >> "$OUT/train_clip_p32.log" 2>&1; }
# The sketch presets' CLIP: the first one fine-tuned on adversarial images of L2 radius 1 (after clip16).
robust() { python -m nada_utils.mini_world.recipe.train_clip --out "$OUT/mini_clip_2_robust.pt" --state "$OUT/clip_robust.state.pt" \
  --init "$OUT/mini_clip.pt" --adv-eps 1 --patch 16 --steps 600 --lr 3e-4 --seed 3 --device "$DEVICE" \
  >> "$OUT/train_clip_robust.log" 2>&1; }

if [ "$DEVICE" = cuda ]; then
  generator & g=$!
  { clip16 && robust; } & c=$!
  clip32 & p=$!
  wait $g; wait $c; wait $p  # each, so that a failed run fails the command
else
  clip16; robust; generator; clip32
fi
tail -n 3 "$OUT"/train_*.log
