#!/usr/bin/python3
"""Compare two gradc checkpoints tensor by tensor (runtime/ckpt.c's format:
"GRADCKPT", u32 version, u64 size, u32 crc, u64 csize, then a zlib stream,
compressed at level 1 by older versions, stored blocks by newer ones).

Prints each file's header and tensor list, then per tensor present in both
whether the element bytes are identical (and, if not, how many elements
differ and the largest difference in ulps), and the tensors only one file
has, with their values when they are scalars.

usage: bench/ckpt_diff.py OLD.ckpt NEW.ckpt   (exit 0 when every common tensor is byte-identical)
"""
import struct, sys, zlib

DTYPES = {0: ("f32", 4, "<f", "<i"), 1: ("f64", 8, "<d", "<q"), 2: ("i32", 4, "<i", "<i"), 3: ("bool", 1, "<B", "<b")}


def read(path):
    raw = open(path, "rb").read()
    if raw[:8] != b"GRADCKPT":
        sys.exit(f"{path}: not a gradc checkpoint")
    version, size, crc, csize = struct.unpack("<IQIQ", raw[8:32])
    body = raw[32:32 + csize]
    d = zlib.decompressobj()
    payload = d.decompress(body) + d.flush()
    assert len(payload) == size, (path, len(payload), size)
    assert zlib.crc32(payload) == crc, path
    # level byte of the zlib header: FLEVEL is bits 6-7 of the second byte
    head = {"version": version, "file_bytes": len(raw), "payload": size, "zlib_bytes": csize,
            "zlib_flevel": body[1] >> 6, "stored": len(body) > 2 and (body[2] & 6) == 0}
    p = 0

    def u(fmt):
        nonlocal p
        v = struct.unpack_from(fmt, payload, p)
        p += struct.calcsize(fmt)
        return v

    n, = u("<I")
    model = payload[p:p + n].decode(); p += n
    count, = u("<I")
    tensors = {}
    order = []
    for _ in range(count):
        n, = u("<I")
        name = payload[p:p + n].decode(); p += n
        dtype, rank = u("<II")
        dims = u("<" + "Q" * rank) if rank else ()
        elems = 1
        for x in dims:
            elems *= x
        nbytes = elems * DTYPES[dtype][1]
        tensors[name] = (dtype, dims, payload[p:p + nbytes])
        order.append(name)
        p += nbytes
    assert p == len(payload), (path, p, len(payload))
    return head, model, order, tensors


def values(dtype, data):
    _, w, f, _ = DTYPES[dtype]
    return [struct.unpack_from(f, data, i)[0] for i in range(0, len(data), w)]


def ulps(dtype, a, b):
    """Largest |a-b| in ulps (ordered-integer distance) and the count that differ."""
    _, w, _, ifmt = DTYPES[dtype]
    if dtype not in (0, 1):
        return None, sum(x != y for x, y in zip(a, b))
    bits = 8 * w
    def key(v):
        return v if v >= 0 else -(v & ((1 << (bits - 1)) - 1))
    worst, ndiff = 0, 0
    for i in range(0, len(a), w):
        x, = struct.unpack_from(ifmt, a, i)
        y, = struct.unpack_from(ifmt, b, i)
        if x != y:
            ndiff += 1
            worst = max(worst, abs(key(x) - key(y)))
    return worst, ndiff


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    A, B = (read(p) for p in sys.argv[1:])
    for path, (head, model, order, t) in zip(sys.argv[1:], (A, B)):
        print(f"{path}: model '{model}', {len(order)} tensors, {head}")
    ta, tb = A[3], B[3]
    same = True
    print(f"{'tensor':<28} {'dtype':>5} {'shape':<16} result")
    for name in A[2]:
        if name not in tb:
            continue
        da, sa, xa = ta[name]
        db, sb, xb = tb[name]
        shape = "x".join(map(str, sa)) or "scalar"
        if (da, sa) != (db, sb):
            print(f"{name:<28} {DTYPES[da][0]:>5} {shape:<16} DTYPE/SHAPE DIFFER: {DTYPES[db][0]} {sb}")
            same = False
        elif xa == xb:
            print(f"{name:<28} {DTYPES[da][0]:>5} {shape:<16} identical ({len(xa)} bytes)")
        else:
            worst, ndiff = ulps(da, xa, xb)
            print(f"{name:<28} {DTYPES[da][0]:>5} {shape:<16} DIFFER: {ndiff} elements, max {worst} ulps")
            same = False
    for label, (mine, other) in (("only in first", (A, B)), ("only in second", (B, A))):
        for name in mine[2]:
            if name not in other[3]:
                d, s, x = mine[3][name]
                v = values(d, x)
                print(f"{label}: {name} {DTYPES[d][0]} {list(s)} = {v if len(v) <= 8 else str(len(v)) + ' values'}")
    print("common tensors byte-identical" if same else "common tensors DIFFER")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
