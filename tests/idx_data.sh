# idx_data.sh - small synthetic MNIST-format data for the shell test
# scripts (sourced by run_aot_tests.sh and run_install_tests.sh).
#
#   idx_data DIR NTRAIN NTEST
#
# writes DIR/train-images-idx3-ubyte, train-labels-idx1-ubyte and the t10k-*
# pair: 28x28 images, the first half of each split of class 1 with the top
# half white, the second half of class 2 with the bottom half white
# (brightness alone would not do: ReLU layers without bias scale with it).

# be32 N: N as 4 big-endian bytes, in printf's \x notation.
be32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255)); }

# repeat FILE COUNT: COUNT copies of FILE on stdout (by doubling).
repeat() {
  local rep=$1.rep
  cp "$1" "$rep"
  while [ "$(wc -c <"$rep")" -lt $(($2 * $(wc -c <"$1"))) ]; do cat "$rep" "$rep" >"$rep.2"; mv "$rep.2" "$rep"; done
  head -c $(($2 * $(wc -c <"$1"))) "$rep"
  rm -f "$rep"
}

idx_data() {
  local dir=$1 split name count half
  mkdir -p "$dir"
  { head -c 392 /dev/zero | LC_ALL=C tr '\000' '\377'; head -c 392 /dev/zero; } >"$dir/top"
  { head -c 392 /dev/zero; head -c 392 /dev/zero | LC_ALL=C tr '\000' '\377'; } >"$dir/bottom"
  printf '\001' >"$dir/one"
  printf '\002' >"$dir/two"
  for split in "train:$2" "t10k:$3"; do
    name=${split%%:*} count=${split##*:} half=$((${split##*:} / 2))
    { printf '\x00\x00\x08\x03'; printf "$(be32 "$count")$(be32 28)$(be32 28)"
      repeat "$dir/top" "$half"; repeat "$dir/bottom" "$half"; } >"$dir/$name-images-idx3-ubyte"
    { printf '\x00\x00\x08\x01'; printf "$(be32 "$count")"
      repeat "$dir/one" "$half"; repeat "$dir/two" "$half"; } >"$dir/$name-labels-idx1-ubyte"
  done
  rm -f "$dir/top" "$dir/bottom" "$dir/one" "$dir/two"
}
