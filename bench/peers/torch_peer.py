#!/usr/bin/python3
"""The PyTorch peer of `pnpm bench`, run by the runner as a child process.

    /usr/bin/python3 bench/peers/torch_peer.py --data DIR
        [--workloads train,eval,gradTrial,gemm,adam] [--seconds 1.5] [--quick]
        [--train-sizes 2,64,256,1024] [--grad-sizes 1,8,64,1024]
        [--gemm-shapes 1024x1024x784,...] [--eval-chunk 1000] [--threads 1]
        [--adam-epoch-steps 937]

prints ONE JSON object on stdout (a PeerReport, see bench/src/peer.ts) and
progress on stderr. It mirrors the deterministic pieces of bench/src/peer.ts
(seeds, mulberry32 at a counter, the two Fisher-Yates variants, the MNIST
normalization, the timing rule) so that its `check` values match the other
peers'.

PyTorch here is Debian's python3-torch (1.13, CPU) on OpenBLAS (package
libopenblas0-pthread; without it torch falls back to the single-threaded
reference BLAS, >10x slower: the report's `blas` names the library actually
mapped after a matmul). Threads: torch.set_num_threads(1) (ATen intra-op
threads, OpenMP) while OpenBLAS keeps its own pthread pool of one thread per
core, so every GEMM still uses both cores. Measured on the 2-core AMD EPYC
(Zen 5, family 26) bench machine, OpenBLAS 0.3.21 core Cooperlake (AVX-512),
best of 3-5 runs each (the machine is shared: single runs vary up to 3x),
`train` samples/s at b = 2 / 64 / 256 / 1024, and 1024x1024x784 GEMM GFLOP/s:
    --threads 1 (OpenBLAS 2 pthreads)           650 / 12,500 / 21,700 / 13,400   320
    --threads 2 (OpenBLAS 2 pthreads)           230 /  4,200 /  6,600 /  9,100   316
    --threads 2, OPENBLAS_NUM_THREADS=1         660 /  9,800 / 13,900 / 12,800   176
    --threads 1, OPENBLAS_CORETYPE=Haswell      640 /  9,200 / 14,400 / 12,100   184
With 2 intra-op threads, 2 OpenMP threads (which spin while waiting) and 2
OpenBLAS threads fight over 2 cores; with OpenBLAS on 1 thread the big GEMMs
lose half their speed. The runner also removes OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE from this process's environment (some machines set
OPENBLAS_CORETYPE=Haswell, which forces the AVX2 kernels: the last line
above); this script re-executes itself without them when started with them
set.

The adam workload trains two epochs at b=64 with torch.optim.Adam(lr=0.01, PyTorch's
defaults) and with torch.optim.SGD(lr=0.01), each once as is and once with
torch.set_flush_denormal(True) (variant 'FTZ': subnormal results and operands are flushed
to zero), timing each epoch on its own.
"""

import argparse
import ctypes
import json
import math
import os
import sys
import time

_STRIPPED_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_REMOVED = [k for k in _STRIPPED_ENV if k in os.environ]
if _REMOVED and "--keep-openblas-env" not in sys.argv:
    # OpenBLAS reads these once, when the library loads (at `import torch`):
    # start again without them.
    env = {k: v for k, v in os.environ.items() if k not in _STRIPPED_ENV}
    env["BSX_BENCH_REMOVED_ENV"] = ",".join(_REMOVED)
    os.execve(sys.executable, [sys.executable] + sys.argv, env)

import numpy as np  # noqa: E402

LAYERS = (784, 1024, 1024, 10)
LR = 0.01
TRIAL_SAMPLES = 1024
SEED_WEIGHT = 100
SEED_TRAIN = 7
SEED_TRIAL = 1000
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081

ADAM_BATCH = 64
ADAM_EPOCHS = 2
ADAM_OPTIMIZERS = ["adam", "sgd"]
ADAM_EPOCH_STEPS = 60000 // ADAM_BATCH
FLT_MIN = 2.0 ** -126  # smallest positive normal fp32 value

TRAIN_SIZES = [2, 64, 256, 1024]
GRAD_SIZES = [1, 8, 64, 1024]
EVAL_CHUNK = 1000
GEMM_SHAPES = [(1024, 1024, 784), (1024, 1024, 1024), (1024, 784, 1024), (64, 1024, 784), (8, 1024, 1024), (1, 1024, 1024)]
QUICK_TRAIN_SIZES = [2, 64]
QUICK_GRAD_SIZES = [64]
QUICK_GEMM_SHAPES = [(1024, 1024, 784), (1, 1024, 1024)]
DEFAULT_SECONDS = 1.5
QUICK_SECONDS = 0.3
TIMING = {
    "train": (3, 3),  # (warm-up iterations incl. iteration 0, minimum timed iterations)
    "eval": (1, 10),
    "gradTrial": (1, 1),
    "gemm": (3, 3),
    "adam": (0, 1),  # each epoch timed whole, once
}
DEFAULT_WORKLOADS = "train,eval,gradTrial,gemm"  # adam is opt-in


def log(msg):
    print(f"[pytorch] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Deterministic pieces (mirror bench/src/peer.ts)

def uniform(seed, n, start=0):
    """uniformAt(seed, t) for t = start .. start+n-1: mulberry32's t-th output / 2^32, float64."""
    u32 = np.uint32
    t = np.arange(start + 1, start + n + 1, dtype=np.uint64)
    x = ((np.uint64(seed) + t * np.uint64(0x6D2B79F5)) & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> u32(15))) * (x | u32(1))
        x = x ^ (x + (x ^ (x >> u32(7))) * (x | u32(61)))
        x = x ^ (x >> u32(14))
    return x.astype(np.float64) / 4294967296.0


def glorot_weights():
    """Per layer, [fan_out, fan_in] fp32: (2u-1)*sqrt(6/(fan_in+fan_out)), u = uniform(SEED_WEIGHT + l)."""
    out = []
    for l in range(1, len(LAYERS)):
        fan_in, fan_out = LAYERS[l - 1], LAYERS[l]
        a = math.sqrt(6.0 / (fan_in + fan_out))
        u = uniform(SEED_WEIGHT + l, fan_in * fan_out)
        out.append(((2.0 * u - 1.0) * a).astype(np.float32).reshape(fan_out, fan_in))
    return out


def train_order(n, epoch):
    """Fisher-Yates from the end: k = n-1 .. 1 swaps perm[k], perm[floor(u_{n-1-k} * (k+1))]."""
    u = uniform(SEED_TRAIN + epoch, n - 1)
    ks = np.arange(n - 1, 0, -1)
    js = np.floor(u * (ks + 1)).astype(np.int64).tolist()
    perm = list(range(n))
    for k, j in zip(ks.tolist(), js):
        perm[k], perm[j] = perm[j], perm[k]
    return np.array(perm, dtype=np.int64)


class BatchOrder:
    def __init__(self, n, b):
        self.n, self.b, self.epoch, self.pos = n, b, 0, 0
        self.perm = train_order(n, 0)

    def next(self):
        if self.pos + self.b > self.n:
            self.epoch += 1
            self.perm = train_order(self.n, self.epoch)
            self.pos = 0
        out = self.perm[self.pos:self.pos + self.b]
        self.pos += self.b
        return out


def grad_trial_indices(n, t, count=TRIAL_SAMPLES):
    """Fisher-Yates from the front, stopped after count draws: j = k + floor(u_k * (n-k))."""
    u = uniform(SEED_TRIAL + t, count)
    js = (np.arange(count) + np.floor(u * (n - np.arange(count)))).astype(np.int64).tolist()
    moved = {}
    out = []
    for k, j in enumerate(js):
        vj = moved.get(j, j)
        moved[j] = moved.get(k, k)
        out.append(vj)
    return np.array(out, dtype=np.int64)


def trial_steps(b, count=TRIAL_SAMPLES):
    return [min(b, count - s) for s in range(0, count, b)]


def load_split(data_dir, split):
    prefix = "train" if split == "train" else "t10k"
    img = np.fromfile(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte"), dtype=np.uint8, offset=16)
    lab = np.fromfile(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte"), dtype=np.uint8, offset=8)
    n = lab.shape[0]
    if img.shape[0] != n * 784:
        raise ValueError(f"{data_dir}: {split} images/labels do not match")
    x = ((img.astype(np.float64) / 255.0 - MNIST_MEAN) / MNIST_STD).astype(np.float32).reshape(n, 784)
    return x, lab.astype(np.int64)


SLOW_FACTOR = 3
SLOW_SECONDS = 3.0
TRIAL_CAP_FACTOR = 10
TRIAL_CAP_SECONDS = 10.0


def measure(iteration, seconds, warmup, min_iterations):
    """The timing rule of bench/src/peer.ts measure()."""
    t0 = time.perf_counter()
    iteration(0)
    first = time.perf_counter() - t0
    if first >= SLOW_FACTOR * seconds and first >= SLOW_SECONDS:
        return first, 1, "single iteration, over 3x the budget: no warm-up"
    i = 1
    if first < seconds:
        while i < warmup:
            iteration(i)
            i += 1
    start = time.perf_counter()
    n = 0
    while True:
        iteration(i)
        i += 1
        n += 1
        el = time.perf_counter() - start
        if (el >= seconds and n >= min_iterations) or el >= 2 * seconds:
            break
    return time.perf_counter() - start, n, None


# ---------------------------------------------------------------------------
# BLAS identification

def blas_info(torch):
    """Which BLAS library the process has mapped after a matmul, and what it says of itself."""
    a = torch.randn(64, 64)
    torch.mm(a, a)
    libs = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6:
                path = parts[-1]
                base = os.path.basename(path).lower()
                if ("blas" in base or "mkl" in base) and path not in libs:
                    libs.append(path)
    openblas = [p for p in libs if "openblas" in os.path.basename(p).lower()]
    if openblas:
        try:
            lib = ctypes.CDLL(openblas[0])
            lib.openblas_get_config.restype = ctypes.c_char_p
            lib.openblas_get_corename.restype = ctypes.c_char_p
            config = lib.openblas_get_config().decode()
            core = lib.openblas_get_corename().decode()
            nthreads = int(lib.openblas_get_num_threads())
            variant = "pthread" if "pthread" in openblas[0] else ("openmp" if "openmp" in openblas[0] else "serial" if "serial" in openblas[0] else "")
            return (f"OpenBLAS {config.split()[1] if len(config.split()) > 1 else ''} {variant} (core {core}, {nthreads} threads)".replace("  ", " "),
                    nthreads, libs)
        except OSError:
            return f"OpenBLAS ({openblas[0]})", 0, libs
    if any("mkl" in os.path.basename(p).lower() for p in libs):
        return "MKL", 0, libs
    if libs:
        return f"reference BLAS, single-threaded, >10x slower: install libopenblas0-pthread ({libs[0]})", 1, libs
    return "unknown (no BLAS library mapped)", 0, libs


# ---------------------------------------------------------------------------
# Workloads

class Peer:
    def __init__(self, torch, data_dir, seconds):
        self.torch = torch
        nn = torch.nn
        self.F = torch.nn.functional
        self.seconds = seconds
        xtr, ytr = load_split(data_dir, "train")
        xte, yte = load_split(data_dir, "test")
        self.xtr, self.ytr = torch.from_numpy(xtr), torch.from_numpy(ytr)
        self.xte, self.yte = torch.from_numpy(xte), torch.from_numpy(yte)
        self.model = nn.Sequential(
            nn.Linear(LAYERS[0], LAYERS[1]), nn.ReLU(),
            nn.Linear(LAYERS[1], LAYERS[2]), nn.ReLU(),
            nn.Linear(LAYERS[2], LAYERS[3]),
        )
        self.linears = [m for m in self.model if isinstance(m, nn.Linear)]
        # nn.Linear's weight is [out, in], the layout of glorot_weights().
        self.snapshot = []
        for lin, w in zip(self.linears, glorot_weights()):
            self.snapshot.append(torch.from_numpy(w))
            self.snapshot.append(torch.zeros(lin.out_features))
        self.params = [p for lin in self.linears for p in (lin.weight, lin.bias)]
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR)

    def reset(self):
        with self.torch.no_grad():
            for p, s in zip(self.params, self.snapshot):
                p.copy_(s)

    def loss(self, x, y):
        return self.F.nll_loss(self.F.log_softmax(self.model(x), dim=1), y)

    def step(self, x, y):
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss(x, y)
        loss.backward()
        self.opt.step()
        return loss

    def train(self, b):
        self.reset()
        order = BatchOrder(self.xtr.shape[0], b)
        check = {}

        def it(i):
            idx = self.torch.from_numpy(order.next())
            loss = self.step(self.xtr[idx], self.ytr[idx])
            if i < 2:
                check[f"loss{i}"] = loss.item()

        secs, n, note = measure(it, self.seconds, *TIMING["train"])
        return result("train", b=b, samplesPerSec=n * b / secs, seconds=secs, iterations=n, check=check, note=note)

    def eval(self, chunk):
        torch = self.torch
        self.reset()
        count = self.xte.shape[0]
        bounds = [(lo, min(count, lo + chunk)) for lo in range(0, count, chunk)]
        acc = {"loss": 0.0, "correct": 0, "samples": 0}

        def it(i):
            lo, hi = bounds[i % len(bounds)]
            x, y = self.xte[lo:hi], self.yte[lo:hi]
            with torch.inference_mode():
                logits = self.model(x)
                loss_sum = self.F.nll_loss(self.F.log_softmax(logits, dim=1), y, reduction="sum").item()
                correct = int((logits.argmax(dim=1) == y).sum().item())
            if i < len(bounds):
                acc["loss"] += loss_sum
                acc["correct"] += correct
                acc["samples"] += hi - lo

        secs, n, note = measure(it, self.seconds, *TIMING["eval"])
        check = {"loss": acc["loss"] / count, "accuracy": acc["correct"] / count} if acc["samples"] == count else {}
        return result("eval", b=chunk, samplesPerSec=n * (count / len(bounds)) / secs, seconds=secs, iterations=n, check=check, note=note)

    def grad_trial(self, b):
        torch = self.torch
        steps = trial_steps(b)
        w3 = self.linears[-1].weight
        check = {}
        cap = max(TRIAL_CAP_FACTOR * self.seconds, TRIAL_CAP_SECONDS)
        state = {"done0": len(steps)}

        def it(t):
            t0 = time.perf_counter()
            idx = torch.from_numpy(grad_trial_indices(self.xtr.shape[0], t))
            xs, ys = self.xtr[idx], self.ytr[idx]
            self.reset()
            S = torch.zeros_like(w3)
            norm_sum = torch.zeros(())
            off = 0
            done = 0
            for n in steps:
                # Trial 0 of a very slow run stops early (see trialCapSeconds in peer.ts).
                if t == 0 and done > 0 and time.perf_counter() - t0 > cap:
                    break
                self.step_keep(xs[off:off + n], ys[off:off + n])
                g = w3.grad
                S.add_(g)
                norm_sum += g.norm()
                self.opt.step()
                off += n
                done += 1
            norm_s = S.norm().item()
            if t == 0:
                state["done0"] = done
                if done == len(steps):
                    check["normS"] = norm_s
                    check["sumNorms"] = norm_sum.item()

        secs, n, note = measure(it, self.seconds, *TIMING["gradTrial"])
        fraction = state["done0"] / len(steps) if n == 1 and state["done0"] < len(steps) else 1.0
        if fraction < 1:
            note = f"partial trial: {state['done0']} of {len(steps)} steps in {secs:.1f} s, extrapolated"
        return result("gradTrial", b=b, trialsPerSec=n * fraction / secs, seconds=secs, iterations=n, check=check, note=note)

    def step_keep(self, x, y):
        """Forward and backward of one step; the caller reads the gradients, then calls opt.step()."""
        self.opt.zero_grad(set_to_none=True)
        self.loss(x, y).backward()

    def epochs(self, optimizer, b, epoch_steps, ftz):
        """Two epochs of epoch_steps steps of batch b from the init, each timed on its own."""
        torch = self.torch
        self.reset()
        params = self.model.parameters()
        opt = torch.optim.Adam(params, lr=LR) if optimizer == "adam" else torch.optim.SGD(params, lr=LR)
        order = BatchOrder(self.xtr.shape[0], b)
        check = {}
        epochs = []
        if ftz and not torch.set_flush_denormal(True):
            raise RuntimeError("torch.set_flush_denormal(True) is not supported on this CPU")
        try:
            for e in range(ADAM_EPOCHS):
                batches = [torch.from_numpy(order.next()) for _ in range(epoch_steps)]
                total = torch.zeros(())
                t0 = time.perf_counter()
                for s, idx in enumerate(batches):
                    opt.zero_grad(set_to_none=True)
                    loss = self.loss(self.xtr[idx], self.ytr[idx])
                    loss.backward()
                    opt.step()
                    total += loss.detach()
                    if e == 0 and s < 2:
                        check[f"loss{s}"] = loss.item()
                secs = time.perf_counter() - t0
                entry = {"steps": epoch_steps, "seconds": secs, "samplesPerSec": epoch_steps * b / secs, "meanLoss": total.item() / epoch_steps}
                if optimizer == "adam":
                    sub = 0
                    n = 0
                    for p in self.params:
                        m = opt.state[p]["exp_avg"]
                        sub += int(((m != 0) & (m.abs() < FLT_MIN)).sum().item())
                        n += m.numel()
                    entry["subnormalM"] = sub / n
                epochs.append(entry)
        finally:
            if ftz:
                torch.set_flush_denormal(False)
        secs = sum(e["seconds"] for e in epochs)
        steps = sum(e["steps"] for e in epochs)
        r = result("adam", b=b, samplesPerSec=steps * b / secs, seconds=secs, iterations=steps, check=check,
                   note="torch.set_flush_denormal(True)" if ftz else None)
        r["optimizer"] = optimizer
        if ftz:
            r["variant"] = "FTZ"
        r["epochs"] = epochs
        return r

    def gemm(self, shape):
        torch = self.torch
        m, n, k = shape
        g = torch.Generator().manual_seed(1)
        a = torch.randn(m, k, generator=g)
        b = torch.randn(k, n, generator=g)

        def it(_i):
            torch.mm(a, b)

        secs, iters, note = measure(it, self.seconds, *TIMING["gemm"])
        return result("gemm", shape=[m, n, k], gflops=2.0 * m * n * k * iters / secs / 1e9, seconds=secs, iterations=iters, note=note)


def result(workload, b=None, shape=None, check=None, note=None, **figures):
    r = {"workload": workload}
    if b is not None:
        r["b"] = b
    if shape is not None:
        r["shape"] = shape
    r.update(figures)
    if check is not None:
        r["check"] = check
    if note:
        r["note"] = note
    return r


def describe(r):
    if "samplesPerSec" in r:
        fig = f"{r['samplesPerSec']:.1f} samples/s"
    elif "trialsPerSec" in r:
        fig = f"{r['trialsPerSec']:.3f} trials/s"
    elif "gflops" in r:
        fig = f"{r['gflops']:.2f} GFLOP/s"
    else:
        fig = "-"
    key = f"{r['workload']} " + ("x".join(map(str, r["shape"])) if "shape" in r else f"b={r.get('b')}")
    if "optimizer" in r:
        key += f" {r['optimizer']}{' ' + r['variant'] if 'variant' in r else ''}"
        fig += " (" + ", ".join(f"epoch {i + 1}: {e['samplesPerSec']:.1f}" for i, e in enumerate(r.get("epochs", []))) + ")"
    note = f" [{r['note']}]" if r.get("note") else ""
    return f"{key}: {fig} ({r['iterations']} it, {r['seconds']:.2f} s){note}"


def sizes(text, flag):
    out = []
    for s in text.split(","):
        s = s.strip()
        if s:
            v = int(s)
            if v < 1:
                raise SystemExit(f"{flag}: {s} is not a positive integer")
            out.append(v)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="folder of the four MNIST IDX files")
    ap.add_argument("--workloads", default=DEFAULT_WORKLOADS)
    ap.add_argument("--seconds", type=float)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--train-sizes")
    ap.add_argument("--grad-sizes")
    ap.add_argument("--gemm-shapes")
    ap.add_argument("--eval-chunk", type=int, default=EVAL_CHUNK)
    ap.add_argument("--adam-epoch-steps", help=f"steps per epoch of the adam workload (default {ADAM_EPOCH_STEPS}: the whole training set)")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1: fastest here, see the docstring)")
    ap.add_argument("--keep-openblas-env", action="store_true", help="do not remove OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE")
    args = ap.parse_args()

    names = [s.strip() for s in args.workloads.split(",") if s.strip()]
    for n in names:
        if n not in TIMING:
            raise SystemExit(f"--workloads: unknown '{n}' (known: {', '.join(TIMING)})")
    seconds = args.seconds if args.seconds is not None else (QUICK_SECONDS if args.quick else DEFAULT_SECONDS)
    train_sizes = sizes(args.train_sizes, "--train-sizes") if args.train_sizes else (QUICK_TRAIN_SIZES if args.quick else TRAIN_SIZES)
    grad_sizes = sizes(args.grad_sizes, "--grad-sizes") if args.grad_sizes else (QUICK_GRAD_SIZES if args.quick else GRAD_SIZES)
    if args.gemm_shapes:
        shapes = [tuple(int(v) for v in s.split("x")) for s in args.gemm_shapes.split(",") if s.strip()]
    else:
        shapes = QUICK_GEMM_SHAPES if args.quick else GEMM_SHAPES

    import torch

    torch.set_num_threads(args.threads)
    blas, blas_threads, libs = blas_info(torch)
    threading = f"torch intra-op threads {torch.get_num_threads()}, BLAS threads {blas_threads}"
    log(f"torch {torch.__version__}, {blas}; {threading}")
    notes = []
    removed = os.environ.get("BSX_BENCH_REMOVED_ENV")
    if removed:
        notes.append(f"re-executed without {removed} (they force slower OpenBLAS kernels)")
    kept = [k for k in _STRIPPED_ENV if k in os.environ]
    if kept:
        notes.append(f"running with {', '.join(f'{k}={os.environ[k]}' for k in kept)} (--keep-openblas-env)")
    notes.append("BLAS libraries mapped: " + ", ".join(libs))

    peer = Peer(torch, args.data, seconds)
    results = []
    plan = []
    if "train" in names:
        plan += [("train", b) for b in train_sizes]
    if "eval" in names:
        plan.append(("eval", args.eval_chunk))
    if "gradTrial" in names:
        plan += [("gradTrial", b) for b in grad_sizes]
    if "gemm" in names:
        plan += [("gemm", s) for s in shapes]
    if "adam" in names:
        epoch_steps = sizes(args.adam_epoch_steps, "--adam-epoch-steps")[0] if args.adam_epoch_steps else ADAM_EPOCH_STEPS
        plan += [("adam", (o, ftz)) for o in ADAM_OPTIMIZERS for ftz in (False, True)]
    for name, arg in plan:
        try:
            if name == "train":
                r = peer.train(arg)
            elif name == "eval":
                r = peer.eval(arg)
            elif name == "gradTrial":
                r = peer.grad_trial(arg)
            elif name == "adam":
                r = peer.epochs(arg[0], ADAM_BATCH, epoch_steps, arg[1])
            else:
                r = peer.gemm(arg)
        except Exception as e:  # report and go on with the next workload
            if name == "adam":
                r = result(name, b=ADAM_BATCH, seconds=0, iterations=0, note=f"error: {type(e).__name__}: {e}")
                r["optimizer"] = arg[0]
                if arg[1]:
                    r["variant"] = "FTZ"
            else:
                r = result(name, **({"shape": list(arg)} if name == "gemm" else {"b": arg}), seconds=0, iterations=0, note=f"error: {type(e).__name__}: {e}")
        log(describe(r))
        results.append(r)

    report = {
        "peer": "pytorch",
        "version": torch.__version__,
        "blas": blas,
        "threads": torch.get_num_threads(),
        "threading": threading,
        "results": results,
        "notes": notes,
    }
    sys.stdout.write(json.dumps(report) + "\n")


if __name__ == "__main__":
    main()
