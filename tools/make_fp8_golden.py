#!/usr/bin/env python3
"""Golden data for engine/fp8.{h,cc} from PyTorch's float8_e4m3fn (an independent implementation
of the same format): the value of every one of the 256 codes, and the code torch rounds each of a
set of floats to (every midpoint between neighbouring codes and its neighbours, powers of two,
random values within the finite range). Values past 448 are left out: torch turns them into NaN
where our quantizer saturates (a choice, tested by hand in engine_fp8_test.cc).

Usage: python3 tools/make_fp8_golden.py [OUT]   (default tests/data/fp8/e4m3_golden.json; PyPI torch)
"""
import json
import math
import random
import struct
import sys

import torch


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else 'tests/data/fp8/e4m3_golden.json'
    codes = torch.arange(256, dtype=torch.uint8).view(torch.float8_e4m3fn).to(torch.float32).tolist()
    decode = [None if math.isnan(v) else v for v in codes]
    finite = sorted({v for v in codes if not math.isnan(v) and v >= 0})
    probes = set()
    for lo, hi in zip(finite, finite[1:]):
        mid = (lo + hi) / 2
        for v in (lo, hi, mid, math.nextafter(mid, 0), math.nextafter(mid, math.inf)):
            probes.add(v)
    for e in range(-12, 9):
        probes.add(2.0 ** e)
    rng = random.Random(8)
    for _ in range(2000):
        probes.add(rng.uniform(0, 448) * (2.0 ** rng.randint(-14, 0)))
    # float32 values only (the encoder takes floats), both signs.
    values = sorted({struct.unpack('f', struct.pack('f', v))[0] for v in probes if v <= 448})
    values += [-v for v in values if v > 0]
    t = torch.tensor(values, dtype=torch.float32)
    encoded = t.to(torch.float8_e4m3fn).view(torch.uint8).tolist()
    with open(out, 'w') as f:
        json.dump({'generator': 'torch %s float8_e4m3fn' % torch.__version__, 'decode': decode,
                   'encode': [[v, c] for v, c in zip(values, encoded)]}, f)
    print(f'wrote {out}: 256 codes, {len(values)} encodings')


if __name__ == '__main__':
    main()
