"""The paper's pipeline on a GPU machine: one prepared check, every step timed and recorded.

    python benchmarks/gpu_check.py OUT [--device cuda] [--scale gpu]   # ~8 min on one H200
    python benchmarks/gpu_check.py OUT --device cpu --scale tiny        # the CPU test's size

Steps, in this order; each runs in its own process with a time limit, and a failure is
recorded (exit code, the log's tail) without stopping the next:

1. ``environment``: GPU name, torch / CUDA / cuDNN versions, free GPU memory; the project's
   packages import; the analyzer imports without torch.
2. ``imagenette_tree``: a generated Imagenette-160 tree (``python -m trainer.imagenette_tree``),
   then one pass of the trainer's real training loader (workers, pinned memory) over it.
3. ``bench_trainer_amp`` / ``bench_trainer_fp32``: ``benchmarks/bench_trainer.py`` for
   ResNet-18, VGG-16 and ResNet-50: the trainer's epoch (with the dump, with HSIC) against a
   plain torchvision loop, images/s and peak GPU memory, AMP on (``auto``: bf16) and off.
4. ``workflow``: ``snakemake figures`` with ``config/paper.yaml`` cut to 2 epochs, one seed,
   ReLU, the generated tree: every arch trained, analysed, intervened on, drawn, reported.
5. ``interventions_all``: ``python -m interventions --layers all`` on the workflow's VGG-16
   run on the device: peak GPU and host memory, seconds per edit.
6. ``analyzer_16_threads``: the analyzer on the workflow's ResNet-50 store with 16 threads
   against ``xr.open_zarr(store).load()``.

OUT receives ``summary.md`` (the table for the README), ``summary.json``, ``steps.log`` (every
step's output) and ``artifacts.tar.gz`` (the workflow's findings, Fig 1, the bench JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Scale:
    """Sizes of one check: ``gpu`` fits ~8 minutes of one H200, ``tiny`` a CPU test."""

    n_train: int
    n_val: int
    width: float  # bench_trainer's channel multiplier
    image_size: int  # bench_trainer's crop size on the CPU (128 on CUDA, as the paper config)
    reps_amp: int
    reps_fp32: int
    block: int
    epochs: int  # workflow epochs after epoch 0
    workflow_width: float
    threads: int  # the analyzer's threads in step 6
    limits: dict = field(default_factory=dict)  # step -> seconds


SCALES = {
    "gpu": Scale(2000, 800, 1.0, 128, 2, 1, 2, 2, 1.0, 16,
                 {"environment": 60, "imagenette_tree": 90, "bench_trainer_amp": 150,
                  "bench_trainer_fp32": 120, "workflow": 330, "interventions_all": 120,
                  "analyzer_16_threads": 120}),
    "tiny": Scale(60, 30, 0.0625, 32, 1, 1, 1, 1, 0.0625, 2,
                  {"environment": 120, "imagenette_tree": 120, "bench_trainer_amp": 600,
                   "bench_trainer_fp32": 600, "workflow": 1800, "interventions_all": 600,
                   "analyzer_16_threads": 300}),
}  # fmt: skip


@dataclass
class Step:
    name: str
    ok: bool = False
    seconds: float = 0.0
    result: dict = field(default_factory=dict)
    error: str = ""


class Check:
    """Runs the steps, records each one's time, outcome and log."""

    def __init__(self, out: Path, device: str, scale: Scale, work: Path | None = None):
        self.out, self.device, self.scale = out, device, scale
        self.work = work or out / "work"
        self.work.mkdir(parents=True, exist_ok=True)
        self.log = (out / "steps.log").open("a")
        self.steps: list[Step] = []
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(_pythonpath())}

    def run(self, name: str, fn) -> Step:
        step = Step(name)
        self._say(f"\n===== {name} =====")
        t0 = time.perf_counter()
        try:
            step.result = fn() or {}
            step.ok = True
        except Exception as e:  # recorded; the next step still runs
            step.error = f"{type(e).__name__}: {e}"[-2000:]
            self._say(f"FAILED: {step.error}")
        step.seconds = round(time.perf_counter() - t0, 1)
        self._say(f"----- {name}: {'ok' if step.ok else 'FAILED'} in {step.seconds} s")
        self.steps.append(step)
        self.write_summary()
        return step

    def sh(self, args: list[str], name: str, cwd: Path | None = None) -> str:
        """Run a command with the step's time limit; its output goes to the log; returns it."""
        limit = self.scale.limits.get(name, 600)
        self._say("$ " + " ".join(map(str, args)))
        try:
            proc = subprocess.run(
                [str(a) for a in args],
                cwd=cwd or ROOT,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=limit,
            )
        except subprocess.TimeoutExpired as e:
            self._say(_text(e.stdout) + _text(e.stderr))
            raise RuntimeError(f"timed out after {limit} s") from None
        self._say(proc.stdout + proc.stderr)
        if proc.returncode:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            raise RuntimeError(f"exit {proc.returncode}: {' | '.join(tail)}")
        return proc.stdout

    def python(self, code: str, name: str) -> dict:
        """Run Python code in a fresh process; its last stdout line is a JSON object."""
        out = self.sh([sys.executable, "-c", code], name)
        return json.loads(out.strip().splitlines()[-1])

    def _say(self, text: str) -> None:
        print(text, flush=True)
        self.log.write(text + "\n")
        self.log.flush()

    def write_summary(self) -> None:
        summary = {"device": self.device, "scale": asdict(self.scale), "steps": []}
        summary["steps"] = [asdict(s) for s in self.steps]
        (self.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
        (self.out / "summary.md").write_text(markdown(self.steps))


def _text(data) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else (data or "")


def _pythonpath() -> list[str]:
    extra = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return [str(ROOT), *extra]


# ---------------------------------------------------------------- the steps
ENVIRONMENT = r"""
import json, subprocess, sys
import torch
info = {"python": sys.version.split()[0], "torch": torch.__version__,
        "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
        "cuda_available": torch.cuda.is_available()}
if torch.cuda.is_available():
    free, total = torch.cuda.mem_get_info()
    info.update(gpu=torch.cuda.get_device_name(0), gpu_free_gib=free / 2**30,
                gpu_total_gib=total / 2**30, bf16=torch.cuda.is_bf16_supported())
import torchvision, numpy, zarr, numcodecs, dask, xarray, numba, snakemake
info["versions"] = {m.__name__: m.__version__ for m in
                    (torchvision, numpy, zarr, numcodecs, dask, xarray, numba, snakemake)}
import trainer, trainer.train, interventions.cli, analyzer.cli, analyzer.mi_tensors, latent_mi.contract
probe = ("import sys, analyzer.cli, analyzer.mi_tensors, analyzer.figures, analyzer.report.findings_report; "
         "print('torch' in sys.modules)")
info["analyzer_imports_torch"] = subprocess.run([sys.executable, "-c", probe], capture_output=True,
                                                text=True, check=True).stdout.strip() == "True"
print(json.dumps(info))
"""

LOADER_PASS = r"""
import json, sys, time
from trainer.config import resolve_config
from trainer.datasets import load_dataset
from trainer.loaders import granted_cores, make_loaders, resolve_workers
import torch
cfg = resolve_config(None, ["dataset.name=imagenette", "dataset.root=%(root)s", "dataset.image_size=128"])
device = torch.device("%(device)s")
data = load_dataset(cfg["dataset"])
workers = resolve_workers("auto", data.train, device, granted_cores(None))
loaders = make_loaders(data, 64, 0, workers, device)
loaders.sampler.set_epoch(1)
t0 = time.perf_counter(); n = 0
for x, y in loaders.train:
    n += len(y)
seconds = time.perf_counter() - t0
print(json.dumps({"workers": workers, "images": n, "seconds": seconds, "images_per_s": n / seconds}))
"""


def step_environment(check: Check) -> dict:
    info = check.python(ENVIRONMENT, "environment")
    if info["analyzer_imports_torch"]:
        raise RuntimeError("the analyzer imports torch")
    if check.device.startswith("cuda") and not info["cuda_available"]:
        raise RuntimeError("torch sees no CUDA device")
    smi = shutil.which("nvidia-smi")
    if smi:
        check.sh([smi], "environment")
    return info


def step_tree(check: Check) -> dict:
    root = check.work / "data"
    t0 = time.perf_counter()
    if not (root / "imagenette2-160").exists():
        check.sh(
            [sys.executable, "-m", "trainer.imagenette_tree", root, "--train", check.scale.n_train,
             "--val", check.scale.n_val],
            "imagenette_tree",
        )  # fmt: skip
    generated = time.perf_counter() - t0
    code = LOADER_PASS % {"root": root, "device": check.device}
    return {"generate_s": round(generated, 1), "loader": check.python(code, "imagenette_tree")}


def step_bench(check: Check, amp: str, name: str) -> dict:
    out = check.work / f"bench_{amp}.json"
    reps = check.scale.reps_amp if amp == "auto" else check.scale.reps_fp32
    check.sh(
        [sys.executable, ROOT / "benchmarks" / "bench_trainer.py", "--device", check.device,
         "--tree", check.work / "data", "--width", check.scale.width, "--amp", amp,
         "--reps", reps, "--block", check.scale.block, "--image-size", check.scale.image_size,
         "--json", out],
        name,
    )  # fmt: skip
    return {"rows": json.loads(out.read_text())}


def workflow_config(check: Check) -> Path:
    """config/paper.yaml cut to a smoke run: 2 epochs, one seed, ReLU, the generated tree."""
    cfg = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    cfg["dataset"].update(root=str(check.work / "data"))
    cfg["grid"].update(activation=["relu"], regularizer=["none"], seed=[0], exclude=[])
    cfg["width"] = check.scale.workflow_width
    cfg["train"].update(epochs=check.scale.epochs, progress=False)
    if check.device == "cpu":
        cfg["train"]["device"] = "cpu"
        cfg["dataset"]["image_size"] = 32
    cfg["interventions"].update(
        q=[0.5], class_q=[0.5], random_draws=1, noise=[1.0], layers="last", device=check.device
    )
    cfg["figures"] = {"formats": ["png"]}
    path = check.work / "gpu-check.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def step_workflow(check: Check) -> dict:
    config = workflow_config(check)
    cores = os.cpu_count() or 1
    check.sh(
        [sys.executable, "-m", "snakemake", "figures", "--snakefile", ROOT / "Snakefile",
         "--directory", check.work, "--cores", cores, "--configfile", config],
        "workflow",
        cwd=check.work,
    )  # fmt: skip
    results = check.work / "results"
    figures = sorted(p.relative_to(results) for p in results.rglob("figures/**/*.png"))
    findings = sorted(results.rglob("findings/*.md"))
    if not figures or not findings:
        raise RuntimeError(f"workflow finished without figures ({len(figures)}) or findings")
    dones = [json.loads(p.read_text()) for p in results.rglob("done.json")]
    return {
        "figures": len(figures),
        "findings": [str(p.relative_to(results)) for p in findings],
        "runs": {d.get("run", str(i)): d for i, d in enumerate(dones)},
    }


def find_one(root: Path, pattern: str) -> Path:
    hits = sorted(root.rglob(pattern))
    if not hits:
        raise FileNotFoundError(f"no {pattern} under {root} (did the workflow step run?)")
    return hits[0]


INTERVENE = r"""
import json, resource, sys, time
import numpy as np, torch, xarray as xr
from interventions.cli import main
argv = %(argv)r
t0 = time.perf_counter()
rc = main(argv)
seconds = time.perf_counter() - t0
if rc:
    raise SystemExit(rc)
ds = xr.open_zarr(argv[argv.index("--out") + 1])
edits = int(np.isfinite(ds.accuracy.values).sum())
edits += int(np.isfinite(ds.class_accuracy.values).sum()) / ds.sizes["label"]
gpu = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else 0.0
print(json.dumps({"seconds": seconds, "edits": edits, "s_per_edit": seconds / edits,
                  "peak_gpu_mib": gpu,
                  "peak_host_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def step_interventions(check: Check) -> dict:
    results = check.work / "results"
    done = find_one(results, "vgg16-relu-none-s0*/done.json")
    mi = find_one(results, "mi/bins-20/vgg16-relu-none-s0.zarr")
    out = check.work / "interventions-all.zarr"
    shutil.rmtree(out, ignore_errors=True)
    argv = [str(done.parent), "--mi", str(mi), "--out", str(out), "--layers", "all",
            "--q", "0.25", "0.5", "--class-q", "0.5", "--draws", "2", "--noise", "1.0",
            "--device", check.device]  # fmt: skip
    return check.python(INTERVENE % {"argv": argv}, "interventions_all")


ANALYZE = r"""
import json, subprocess, sys, time
import xarray as xr
store = %(store)r
t0 = time.perf_counter(); xr.open_zarr(store).load(); first = time.perf_counter() - t0
t0 = time.perf_counter(); xr.open_zarr(store).load(); load = time.perf_counter() - t0
cmd = [sys.executable, "-m", "analyzer", store, "--bins", "20", "--out", %(out)r,
       "--threads", "%(threads)d", "--no-progress"]
t0 = time.perf_counter(); proc = subprocess.run(cmd, capture_output=True, text=True); wall = time.perf_counter() - t0
if proc.returncode:
    sys.stderr.write(proc.stderr); raise SystemExit(proc.returncode)
inner = float(proc.stderr.strip().split(" in ")[-1].rstrip("s"))  # "wrote OUT in X.Xs"
ds = xr.open_zarr(store)
print(json.dumps({"epochs": ds.sizes["epoch"], "samples": ds.sizes["sample"],
                  "units": ds.sizes["unit"], "load_first_s": first, "load_s": load,
                  "analyzer_s": inner, "analyzer_process_s": wall, "ratio": inner / load}))
"""


def step_analyzer(check: Check) -> dict:
    done = find_one(check.work / "results", "resnet50-relu-none-s0*/done.json")
    store = done.parent / "activations.zarr"
    out = check.work / "resnet50-16threads.zarr"
    shutil.rmtree(out, ignore_errors=True)
    code = ANALYZE % {"store": str(store), "out": str(out), "threads": check.scale.threads}
    return check.python(code, "analyzer_16_threads")


# ---------------------------------------------------------------- reporting
def markdown(steps: list[Step]) -> str:
    lines = ["| step | ok | seconds | result |", "|---|---|---|---|"]
    for s in steps:
        what = s.error if not s.ok else _short(s.name, s.result)
        lines.append(f"| {s.name} | {'yes' if s.ok else 'NO'} | {s.seconds} | {what} |")
    for s in steps:
        if s.name.startswith("bench_trainer") and s.ok:
            lines += ["", f"{s.name}:", "", *bench_table(s.result["rows"])]
    return "\n".join(lines) + "\n"


def bench_table(rows: list[dict]) -> list[str]:
    out = [
        "| arch | amp | plain s/epoch | dump/plain | hsic/plain | img/s plain | img/s dump "
        "| img/s hsic | peak GPU MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ips = r["images_per_s"]
        out.append(
            f"| {r['arch']} | {r['amp']} | {r['seconds']['plain']:.2f} | "
            f"{r['dump_over_plain']:.3f} | {r['hsic_over_plain']:.3f} | {ips['plain']:.0f} | "
            f"{ips['dump']:.0f} | {ips['hsic']:.0f} | {r['peak_gpu_mib']:.0f} |"
        )
    return out


def _short(name: str, result: dict) -> str:
    if name == "environment":
        return (
            f"{result.get('gpu', 'no GPU')}, torch {result['torch']}, CUDA {result['cuda']}, "
            f"free {result.get('gpu_free_gib', 0):.0f} GiB; analyzer without torch"
        )
    if name == "imagenette_tree":
        loader = result["loader"]
        return (
            f"generated in {result['generate_s']} s; loader {loader['images_per_s']:.0f} img/s "
            f"({loader['workers']} workers)"
        )
    if name.startswith("bench_trainer"):
        return "; ".join(
            f"{r['arch']} dump {r['dump_over_plain']:.2f}x hsic {r['hsic_over_plain']:.2f}x"
            for r in result["rows"]
        )
    if name == "workflow":
        return f"{result['figures']} figures, findings {', '.join(result['findings'])}"
    if name == "interventions_all":
        return (
            f"{result['edits']:.0f} edits, {result['s_per_edit']:.3f} s/edit, peak GPU "
            f"{result['peak_gpu_mib']:.0f} MiB, host {result['peak_host_mib']:.0f} MiB"
        )
    if name == "analyzer_16_threads":
        return (
            f"{result['units']} units x {result['samples']} samples x {result['epochs']} epochs: "
            f"analyzer {result['analyzer_s']:.1f} s / load {result['load_s']:.1f} s = "
            f"{result['ratio']:.2f}x"
        )
    return json.dumps(result)[:200]


def pack(check: Check) -> None:
    """The small artifacts in one file: findings, Fig 1, bench JSON, logs of the workflow."""
    with tarfile.open(check.out / "artifacts.tar.gz", "w:gz") as tar:
        for pattern in ("bench_*.json", "results/**/findings/*.md", "results/**/fig1*.png",
                        "results/**/logs/**/*.log", "gpu-check.yaml"):  # fmt: skip
            for path in sorted(check.work.glob(pattern)):
                tar.add(path, arcname=str(path.relative_to(check.work)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("out", type=Path, help="folder for summary.md, summary.json, steps.log, ...")
    p.add_argument("--device", default="cuda", help="cuda or cpu")
    p.add_argument("--scale", choices=sorted(SCALES), default="gpu")
    p.add_argument("--steps", nargs="+", help="run only these steps (default: all, in order)")
    p.add_argument("--work", type=Path, help="scratch folder for data and results (OUT/work)")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    check = Check(args.out, args.device, SCALES[args.scale], args.work)
    steps = {
        "environment": lambda: step_environment(check),
        "imagenette_tree": lambda: step_tree(check),
        "bench_trainer_amp": lambda: step_bench(check, "auto", "bench_trainer_amp"),
        "bench_trainer_fp32": lambda: step_bench(check, "off", "bench_trainer_fp32"),
        "workflow": lambda: step_workflow(check),
        "interventions_all": lambda: step_interventions(check),
        "analyzer_16_threads": lambda: step_analyzer(check),
    }
    t0 = time.perf_counter()
    for name, fn in steps.items():
        if not args.steps or name in args.steps:
            check.run(name, fn)
    pack(check)
    failed = [s.name for s in check.steps if not s.ok]
    print(f"\ngpu_check: {len(check.steps) - len(failed)}/{len(check.steps)} steps ok in "
          f"{time.perf_counter() - t0:.0f} s" + (f"; failed: {', '.join(failed)}" if failed else ""))  # fmt: skip
    print((args.out / "summary.md").read_text())
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
