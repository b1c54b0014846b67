#!/bin/sh
# Inception-score-like numbers for the GANs (issue 18): a Fashion-MNIST
# classifier trained by gradc (models/cnn_seed.nn) stands in for Inception;
# IS = exp(E_x KL(p(y|x) || p(y))) over the 10,000 real test images and over
# 10,000 images each GAN generates after training for EPOCHS epochs.  A GAN
# reaching 60% of the real images' score is the issue's target for WGAN-GP.
#   usage: bench/gan_score.sh [GRADC] [EPOCHS] [MODELS...]
#   e.g.   bench/gan_score.sh build/gradc 8 wgan_gp dcgan wgan_clip
# Work files go to ${OUT:-gan_score_out}; an existing classifier checkpoint
# there is reused.  Not run by CI (tens of minutes on 2 cores).
set -e
gradc=${1:-build/gradc}
epochs=${2:-8}
shift 2 2>/dev/null || shift $#
models=${*:-wgan_gp dcgan wgan_clip}
out=${OUT:-gan_score_out}
data=${DATA:-/usr/share/datasets/fashion-mnist}
mkdir -p "$out"
grep -m1 'model name' /proc/cpuinfo
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ ! -f "$out/cnn_seed.ckpt" ]; then
  "$gradc" train models/cnn_seed.nn --data "$data" --epochs 6 --save "$out/cnn_seed.ckpt" \
    --history "$out/cnn_seed_history.csv" | tail -2
fi
real=$("$gradc" score models/cnn_seed.nn --load "$out/cnn_seed.ckpt" --data "$data" | sed 's/inception score: \([0-9.]*\).*/\1/')
echo "real test images: IS $real"
for m in $models; do
  start=$(date +%s)
  "$gradc" train "models/$m.nn" --data "$data" --pixels -1,1 --epochs "$epochs" --no-test \
    --samples "$out/${m}_samples" --save "$out/$m.ckpt" --history "$out/${m}_history.csv" | grep -v '^Epoch' | tail -3
  secs=$(( $(date +%s) - start ))
  "$gradc" sample "models/$m.nn" --load "$out/$m.ckpt" --data "$data" --pixels -1,1 --format idx \
    --count 10000 -o "$out/${m}_generated" > /dev/null
  "$gradc" sample "models/$m.nn" --load "$out/$m.ckpt" --data "$data" --pixels -1,1 -o "$out/${m}_grid.png" > /dev/null
  is=$("$gradc" score models/cnn_seed.nn --load "$out/cnn_seed.ckpt" --data "$out/${m}_generated" |
       sed 's/inception score: \([0-9.]*\).*/\1/')
  echo "$m: $epochs epochs in ${secs} s; IS $is of generated images, $(echo "$is $real" | awk '{printf "%.1f", 100 * $1 / $2}')% of the real images'; grid $out/${m}_grid.png"
done
