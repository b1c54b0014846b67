#!/usr/bin/env python3
"""order_task.py - the synthetic sentiment-like task of tests/test_sequences.c
at any size, as a directory that `gradc train --data DIR` reads.

Each sequence holds LO..HI ids: filler ids 3..VOCAB-1, one marker A (id 1)
and one marker B (id 2) at random positions; its label is 1 iff A comes
before B.  Both classes hold the same bag of words, so only a model that
reads the ids in order can beat chance.  Sequences are pre-padded with 0 to
HI, as Keras' pad_sequences, and written as train- and
t10k-sequences-idx2-ubyte (ids below 256) with their labels-idx1-ubyte.

    python3 scripts/order_task.py DIR [--train N] [--test N] [--vocab V]
                                      [--min-length LO] [--max-length HI]
                                      [--seed S]

The README's full-size IMDB models were trained on
`order_task.py DIR --train 4096 --test 1024 --vocab 100 --min-length 40
--max-length 80` (the models read 80 ids, as the seeds' padded reviews).
"""
import argparse
import os
import random
import struct


def split(rng, n, vocab, lo, hi):
    seqs, labels = [], []
    for _ in range(n):
        length = rng.randint(lo, hi)
        s = [rng.randint(3, vocab - 1) for _ in range(length)]
        a, b = rng.sample(range(length), 2)
        s[a], s[b] = 1, 2
        seqs.append([0] * (hi - length) + s)
        labels.append(int(a < b))
    return seqs, labels


def write(d, name, seqs, labels, hi):
    with open(os.path.join(d, name + "-sequences-idx2-ubyte"), "wb") as f:
        f.write(struct.pack(">III", 0x0802, len(seqs), hi))
        for s in seqs:
            f.write(bytes(s))
    with open(os.path.join(d, name + "-labels-idx1-ubyte"), "wb") as f:
        f.write(struct.pack(">II", 0x0801, len(labels)) + bytes(labels))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dir")
    p.add_argument("--train", type=int, default=1024)
    p.add_argument("--test", type=int, default=512)
    p.add_argument("--vocab", type=int, default=64)
    p.add_argument("--min-length", type=int, default=20)
    p.add_argument("--max-length", type=int, default=40)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    if not (4 <= a.vocab <= 256 and 2 <= a.min_length <= a.max_length):
        p.error("need 4 <= vocab <= 256 and 2 <= min-length <= max-length")
    os.makedirs(a.dir, exist_ok=True)
    rng = random.Random(a.seed)
    for name, n in (("train", a.train), ("t10k", a.test)):
        write(a.dir, name, *split(rng, n, a.vocab, a.min_length, a.max_length), a.max_length)


if __name__ == "__main__":
    main()
