"""A fixed CPU probe, to tell a slow spell of the machine from a slower spec: 400 matmuls of 256x256 float32 on one
torch thread, and a Python loop of 3M additions. Prints both times; compare runs on the same machine only.
`.venv/bin/python tools/cpu_probe.py`"""
import time

import torch

torch.set_num_threads(1)
a = torch.randn(256, 256)
t = time.perf_counter()
for _ in range(400):
    a @ a
m = time.perf_counter() - t
t, s = time.perf_counter(), 0
for i in range(3_000_000):
    s += i
print(f"matmul {m:.3f} s, python loop {time.perf_counter() - t:.3f} s")
