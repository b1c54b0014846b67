#!/bin/sh
# Inception-score-like numbers for the GANs (issue 18): a Fashion-MNIST
# classifier trained by gradc (models/cnn_seed.nn) stands in for Inception;
# IS = exp(E_x KL(p(y|x) || p(y))) over the 10,000 real test images and over
# 10,000 images each GAN generates after training.  A GAN reaching 60% of
# the real images' score is the issue's target for WGAN-GP.
#   usage: bench/gan_score.sh [GRADC] [MODEL:EPOCHS[:BATCH] ...]
#   e.g.   bench/gan_score.sh build/gradc wgan_gp:14:32 dcgan:2 wgan_clip:5
# (BATCH defaults to gradc train's 128.  A GAN's quality follows its
# generator steps: WGAN-GP at batch 32 takes four times as many in the same
# epochs; alone on the 2-core Zen 4 its epoch takes 106-118 s at batch 32,
# so the 14 epochs of the default fit the issue's 30 minutes.)
# Work files go to ${OUT:-gan_score_out}; an existing classifier checkpoint
# there is reused.  Not run by CI (tens of minutes on 2 cores).
set -e
gradc=${1:-build/gradc}
[ $# -gt 0 ] && shift
runs=${*:-wgan_gp:14:32 dcgan:2 wgan_clip:5}
out=${OUT:-gan_score_out}
data=${DATA:-/usr/share/datasets/fashion-mnist}
mkdir -p "$out"
grep -m1 'model name' /proc/cpuinfo
grep -m1 -E '^cpu family' /proc/cpuinfo
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ ! -f "$out/cnn_seed.ckpt" ]; then
  "$gradc" train models/cnn_seed.nn --data "$data" --epochs 6 --save "$out/cnn_seed.ckpt" \
    --history "$out/cnn_seed_history.csv" | tail -2
fi
score() { "$gradc" score models/cnn_seed.nn --load "$out/cnn_seed.ckpt" --data "$1" | sed 's/inception score: \([0-9.]*\).*/\1/'; }
real=$(score "$data")
echo "real test images: IS $real"
for run in $runs; do
  m=${run%%:*} epochs=${run#*:} batch=128
  case $epochs in *:*) batch=${epochs#*:} epochs=${epochs%%:*} ;; esac
  start=$(date +%s)
  "$gradc" train "models/$m.nn" --data "$data" --pixels -1,1 --epochs "$epochs" --batch "$batch" --no-test \
    --samples "$out/${m}_samples" --save "$out/$m.ckpt" --history "$out/${m}_history.csv" | grep -v '^Epoch' | tail -2
  secs=$(( $(date +%s) - start ))
  "$gradc" sample "models/$m.nn" --load "$out/$m.ckpt" --data "$data" --pixels -1,1 --format idx \
    --count 10000 -o "$out/${m}_generated" > /dev/null
  "$gradc" sample "models/$m.nn" --load "$out/$m.ckpt" --data "$data" --pixels -1,1 -o "$out/${m}_grid.png" > /dev/null
  is=$(score "$out/${m}_generated")
  echo "$m: $epochs epochs at batch $batch in $secs s (load $(cut -d' ' -f1-3 /proc/loadavg)); IS $is of generated images," \
       "$(echo "$is $real" | awk '{printf "%.1f", 100 * $1 / $2}')% of the real images'; grid $out/${m}_grid.png"
done
