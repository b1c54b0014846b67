#!/bin/sh
# Before/after benchmark runs, interleaved (A B B A ...), one bench script
# for both builds, the peer run fairly: OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE
# unset, OMP_WAIT_POLICY=PASSIVE.  The load average is logged around each run,
# since the project's machines are shared.
#   usage: bench/ab.sh SCRIPT.py BEFORE_GRADC AFTER_GRADC ORDER [script options...]
#   e.g.   bench/ab.sh bench/mlp_vs_torch.py ../wt-before/build/gradc build/gradc ABBA --threads 1,2
set -e
script=$1 before=$2 after=$3 order=$4
shift 4
grep -m1 'model name' /proc/cpuinfo
grep -m1 -E '^cpu family' /proc/cpuinfo
for which in $(echo "$order" | sed 's/./& /g'); do
  if [ "$which" = A ]; then g=$before; label=before; else g=$after; label=after; fi
  echo "=== $label ($g) $(date -u +%H:%M:%S) load: $(cut -d' ' -f1-3 /proc/loadavg)"
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_WAIT_POLICY=PASSIVE \
    /usr/bin/python3 "$script" --gradc "$g" "$@"
  echo "=== end $label $(date -u +%H:%M:%S) load: $(cut -d' ' -f1-3 /proc/loadavg)"
done
