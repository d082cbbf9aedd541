#!/usr/bin/env bash
# Train (or continue) the second mini world's generator and CLIPs: one command for a lent GPU or a CPU.
#
#   OUT=runs/world-v2 bash scripts/mini_world/train_world_v2.sh      # models, states and logs in $OUT
#
# Every script saves its state in $OUT every two minutes and continues from it when run again, so an
# interrupted run (a VM that went away, a device lease that ran out) loses at most two minutes. On a
# GPU the three runs go side by side; on a CPU one after the other. The judge is already shipped
# (nada_utils/mini_world/weights/mini_judge.pt); check the results with scripts/mini_world/check_models.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/world-v2}
mkdir -p "$OUT"
DEVICE=$(python -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')

generator() { python scripts/mini_world/train_generator_v2.py --out "$OUT/mini_photo_g.pt" --state "$OUT/g.state.pt" \
  --steps 16000 --batch 32 --device "$DEVICE" >> "$OUT/train_generator.log" 2>&1; }
clip16() { python scripts/mini_world/train_clip_v2.py --out "$OUT/mini_clip.pt" --state "$OUT/clip.state.pt" \
  --patch 16 --steps 3000 --device "$DEVICE" >> "$OUT/train_clip.log" 2>&1; }
clip8() { python scripts/mini_world/train_clip_v2.py --out "$OUT/mini_clip_p8.pt" --state "$OUT/clip_p8.state.pt" \
  --patch 8 --steps 3000 --device "$DEVICE" >> "$OUT/train_clip_p8.log" 2>&1; }

if [ "$DEVICE" = cuda ]; then
  generator & g=$!
  clip16 & c=$!
  clip8 & p=$!
  wait $g; wait $c; wait $p  # each, so that a failed run fails the command
else
  clip16; generator; clip8
fi
tail -n 3 "$OUT"/train_*.log
