"""Scale run on dask.distributed: a map larger than the workers' memory, and a worker killed mid-way.

Run by hand (about 40 minutes for the default 2,000,000 patterns on 2 cores,
of which 4.5 to make the map the first time; develop with ``--n 50000``)::

    .venv/bin/python benchmarks/scale.py                          # 2,000,000 patterns of 60 x 60
    .venv/bin/python benchmarks/scale.py --n 50000 --kill-at 0.5  # a small map first
    .venv/bin/python benchmarks/scale.py --steps process,kill     # only the processing and the kill
    .venv/bin/python benchmarks/scale.py --workers 2 --memory-limit 1GB --workdir /big/disk

Needs about 4 times the map file on disk (2,000,000 patterns: 6.7 GB for
the map, as much for each of three processed outputs).

Steps:

1. Makes the map once (cached under ``--workdir``, default
   ``benchmarks/_data/scale``): ``--n`` uint8 patterns of ``--pattern`` x
   ``--pattern`` pixels (2,000,000 of 60 x 60 are 7.2 GB of patterns, a
   6.7 GB file: noisy patterns hardly compress), a map twice as wide as
   tall. The Kikuchi signal is that of 300 Ni orientations (kinematical
   master pattern projected with :func:`kikuchi.simulate.project_patterns`,
   through the detection model of :mod:`kikuchi.simulate.detection`:
   backscatter background, detector gain, hot pixels), one per Voronoi
   grain; each point gets a smooth BSE contrast and its own noise (shot and
   read noise, in the Gaussian approximation, so that the map is made in
   minutes). The file holds the PC, tilts, static background, phase and
   true orientations, as a simulated map does.
2. Starts a ``LocalCluster`` of ``--workers`` worker processes with nannies,
   one thread each, each limited to ``--memory-limit``.
3. Runs, each as a user runs it (the ``kikuchi`` command in a subprocess,
   defaults, ``--scheduler tcp://ADDRESS`` of that cluster), on freshly
   restarted workers: ``kikuchi process MAP -o OUT.h5`` (the default
   processing, preset ``indexing``), ``kikuchi vbse MAP -o DIR`` (the 7 x 7
   virtual BSE array, colour image and PNG gallery) and
   ``kikuchi index MAP -o OUT.h5 --phase ni --json`` (Hough indexing of the
   raw patterns, its accuracy against the true orientations). For each:
   wall time, patterns/s, the peak RSS of every worker process (sampled
   every 50 ms with psutil, also by quarter of the run: flat memory means
   the same peak in every quarter), the client's peak RSS (``ru_maxrss``
   of the command, from ``wait4``), the CPU seconds of the client, of this
   process (scheduler and nannies) and of each worker, the CPU seconds of
   every other process on the machine meanwhile (a shared machine slows
   every step), and the chunks computed in each quarter of the run (the
   scheduler's task stream).
4. Runs ``kikuchi process`` again and kills one worker process (SIGKILL of
   the pid that ``client.run(os.getpid)`` reports) at ``--kill-at`` of the
   uninterrupted run's wall time; checks that its nanny started a new
   worker process (a new pid under the same nanny, the cluster back to
   ``--workers`` workers), that the command succeeded, and the chunks per
   second before and after the kill.
5. Checks the outputs: a serial run of the same processing
   (:func:`kikuchi.engine.process_map`, ``executor='serial'``; made once and
   kept, as the map) is the reference; every processed pattern of the
   killed-worker run and of the uninterrupted cluster run is compared with
   it (decoded values, not bytes: the serial run chunks the map
   differently), and so are the BSE map, the no-signal map and the index
   map; the SHA-256 of each file's decoded patterns is reported.

Prints a table and writes every number to ``WORKDIR/scale_N.json``.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
KIKUCHI = [sys.executable, "-m", "kikuchi"]
#: Distinct orientations (grains) of the map; each grain's patterns differ by their noise and BSE contrast.
N_ORIENTATIONS = 300
PC_BRUKER = (0.5, 0.3, 0.6)


# -- the map ------------------------------------------------------------------
def map_shape(n: int) -> tuple[int, int]:
    """A map twice as wide as tall holding about ``n`` points (exactly n when n / 2 is a square).

    >>> map_shape(2_000_000), map_shape(50_000)
    ((1000, 2000), (158, 316))
    """
    cols = max(1, round((2 * n) ** 0.5))
    return max(1, n // cols), cols


def make_map(path: Path, *, n: int, size: int, seed: int = 11) -> Path:
    """Write the synthetic Ni map (see the module docstring); returns ``path``."""
    import kikuchi
    from scipy.spatial import cKDTree

    from kikuchi.crystal import Phase
    from kikuchi.geometry import Detector
    from kikuchi.simulate import kinematical_master_pattern, project_patterns
    from kikuchi.simulate.detection import DetectionModel
    from kikuchi.simulate.synthetic import random_orientations

    rows, cols = map_shape(n)
    rng = np.random.default_rng(seed)
    detector = Detector((size, size), PC_BRUKER, sample_tilt_deg=70.0)
    phase = Phase.parse("ni")
    euler = random_orientations(N_ORIENTATIONS, rng=rng)
    theory = project_patterns(kinematical_master_pattern(phase, kv=20.0), detector, euler)
    model = DetectionModel.create((size, size), noise="medium", detector=detector, seed=seed)
    counts = model.expected_counts(theory)  # (orientations, h, w) expected counts without noise
    mean = (model.dark_offset + model.scale * counts).astype(np.float32)
    spread = (model.scale * np.sqrt(counts + model.read_noise**2)).astype(np.float32)
    hot, full = model.hot, float(model.full_scale)
    seeds = np.column_stack([rng.uniform(0, rows, N_ORIENTATIONS), rng.uniform(0, cols, N_ORIENTATIONS)])
    tree = cKDTree(seeds)
    rr, cc = np.divmod(np.arange(rows * cols), cols)
    step = 1 << 20
    labels = np.concatenate([tree.query(np.column_stack([rr[k : k + step] + 0.5, cc[k : k + step] + 0.5]))[1] for k in range(0, rows * cols, step)])
    del rr, cc

    with kikuchi.MapWriter(path, nav_shape=(rows, cols), pattern_shape=(size, size), dtype="uint8", step_um=(0.5, 0.5)) as w:
        per_chunk = w.chunk_patterns
        n_points = rows * cols

        def make(start: int) -> tuple[int, np.ndarray, bytes | None]:
            stop = min(start + per_chunk, n_points)
            r, c = np.divmod(np.arange(start, stop), cols)
            g = labels[start:stop]
            bse = (1 + 0.08 * np.sin(r / rows * 9.0) * np.cos(c / cols * 7.0)).astype(np.float32)[:, None, None]
            z = np.random.default_rng((seed, start)).standard_normal((stop - start, size, size), dtype=np.float32)
            p = mean[g] * bse + spread[g] * np.sqrt(bse) * z
            p[:, hot] = full
            np.clip(p, 0, full, out=p)
            block = np.rint(p).astype(np.uint8)
            return start, block, w.encode_chunk(block)

        starts = range(0, n_points, per_chunk)
        t0 = time.perf_counter()
        with cf.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
            pending: list[cf.Future] = []
            for k, start in enumerate(starts):
                pending.append(pool.submit(make, start))
                if len(pending) >= 4 * (os.cpu_count() or 1):
                    s, block, enc = pending.pop(0).result()
                    w.write(s, block, encoded=enc)
                if k % 1000 == 0 and k:
                    print(f"  made {start:,} of {n_points:,} patterns ({time.perf_counter() - t0:.0f} s)", flush=True)
            for fut in pending:
                s, block, enc = fut.result()
                w.write(s, block, encoded=enc)
        point_euler = euler[labels]
        w.set_pattern_centre(*PC_BRUKER, convention="bruker")
        w.set_euler(point_euler)
        w.set_phases([{"id": 1, **phase.to_dict()}])
        w.set_attrs(SampleTilt=70.0, CameraTilt=0.0, AcceleratingVoltage=20.0, Binning=1)
        w.set_static_background(model.static_background)
        truth = w.header.create_group("Truth")
        truth["euler"] = point_euler.reshape(rows, cols, 3)
        truth["phase_id"] = np.ones((rows, cols), dtype=np.int32)
        truth["grain_id"] = labels.reshape(rows, cols).astype(np.int32)
    return path


# -- memory of the workers ---------------------------------------------------
class WorkerMemory:
    """Samples the RSS of the cluster's worker processes (children of this process) every ``interval_s``.

    Worker processes are found among this process's children by their
    command line (multiprocessing's ``spawn_main``: the nannies' workers), so
    a worker that the nanny starts again after a kill is sampled too.
    """

    def __init__(self, interval_s: float = 0.05):
        import psutil

        self._psutil = psutil
        self.interval_s = interval_s
        self.samples: list[tuple[float, int, int, float]] = []  # (time, pid, rss, CPU seconds so far)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._procs: dict[int, Any] = {}

    def _refresh(self) -> None:
        for child in self._psutil.Process().children(recursive=False):
            if child.pid in self._procs:
                continue
            try:
                if any("spawn_main" in part for part in child.cmdline()):
                    self._procs[child.pid] = child
            except self._psutil.Error:
                pass

    def _run(self) -> None:
        k = 0
        while not self._stop.is_set():
            if k % 10 == 0:
                self._refresh()
            now = time.perf_counter()
            for pid, proc in list(self._procs.items()):
                try:
                    cpu = proc.cpu_times()
                    self.samples.append((now, pid, proc.memory_info().rss, cpu.user + cpu.system))
                except self._psutil.Error:
                    del self._procs[pid]
            k += 1
            self._stop.wait(self.interval_s)

    def __enter__(self) -> WorkerMemory:
        self._refresh()
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def peaks(self, t0: float, t1: float, quarters: int = 4) -> dict[int, dict[str, Any]]:
        """Per worker pid: peak RSS (MiB) over [t0, t1] and in each quarter of it, and the CPU seconds it used."""
        out: dict[int, dict[str, Any]] = {}
        span = max(t1 - t0, 1e-9)
        for t, pid, rss, cpu in self.samples:
            if not t0 <= t <= t1:
                continue
            entry = out.setdefault(pid, {"peak_mib": 0.0, "by_quarter_mib": [0.0] * quarters, "first_s": t - t0, "cpu0": cpu})
            entry["cpu_s"] = cpu - entry["cpu0"]
            mib = rss / 2**20
            entry["peak_mib"] = max(entry["peak_mib"], mib)
            q = min(quarters - 1, int((t - t0) / span * quarters))
            entry["by_quarter_mib"][q] = max(entry["by_quarter_mib"][q], mib)
        for entry in out.values():
            entry["peak_mib"] = round(entry["peak_mib"], 1)
            entry["by_quarter_mib"] = [round(v, 1) for v in entry["by_quarter_mib"]]
            entry["first_s"] = round(entry["first_s"], 2)
            del entry["cpu0"]
            entry["cpu_s"] = round(entry.get("cpu_s", 0.0), 2)
        return out


# -- one step: a command on the cluster --------------------------------------
def _busy_cpu_s() -> float:
    """CPU seconds the whole machine has been busy (all processes, all cores)."""
    import psutil

    t = psutil.cpu_times()
    return t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0) + getattr(t, "steal", 0.0)



def run_command(
    name: str,
    command: list[str],
    *,
    n: int,
    memory: WorkerMemory,
    client: Any,
    n_workers: int,
    logdir: Path,
    warnings: DaskWarnings,
    kill_after_s: float | None = None,
) -> dict[str, Any]:
    """Run ``command`` (a subprocess) on freshly restarted workers: wall time, patterns/s, peak memory.

    The client's peak RSS is the command's ``ru_maxrss`` (this process reaps
    it with ``wait4``). With ``kill_after_s``, one worker process gets
    SIGKILL that many seconds after the start; the result says which, and
    whether the nanny started a new worker process in its place.
    """
    from distributed import get_task_stream

    client.restart(timeout=300)
    client.wait_for_workers(n_workers, timeout=60)
    before = client.run(os.getpid)
    nanny_of = {a: w.get("nanny") for a, w in client.scheduler_info(n_workers=-1)["workers"].items()}
    print(f"{name}: {' '.join(command)}", flush=True)
    killed: dict[str, Any] = {}
    out_path, err_path = logdir / f"{name}.out", logdir / f"{name}.err"
    n_warnings = len(warnings.records)
    own = os.times()
    busy = _busy_cpu_s()
    epoch = time.time()
    t0 = time.perf_counter()
    with out_path.open("w") as out, err_path.open("w") as err, get_task_stream(client) as tasks:
        proc = subprocess.Popen(command, stdout=out, stderr=err)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if kill_after_s is not None and not killed and time.perf_counter() - t0 >= kill_after_s:
                address, victim = sorted(before.items())[0]
                os.kill(victim, signal.SIGKILL)
                killed = {"address": address, "pid": victim, "nanny": nanny_of.get(address), "at_s": round(time.perf_counter() - t0, 2)}
                print(f"  killed worker {address} (pid {victim}) at {killed['at_s']} s", flush=True)
            time.sleep(0.02)
    wall = time.perf_counter() - t0
    own_after = os.times()
    busy = _busy_cpu_s() - busy
    proc.returncode = os.waitstatus_to_exitcode(status)
    result: dict[str, Any] = {
        "command": command,
        "returncode": proc.returncode,
        "wall_s": round(wall, 2),
        "patterns_per_s": round(n / wall),
        "result_line": out_path.read_text().strip().splitlines()[-1:],
        "stderr_lines": len(err_path.read_text().splitlines()),
        "client_peak_mib": round(usage.ru_maxrss / 1024, 1),
        "client_cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "scheduler_and_nannies_cpu_s": round(own_after.user + own_after.system - own.user - own.system, 2),
        "workers": memory.peaks(t0, t0 + wall),
        "dask_warnings": warnings.records[n_warnings:],
    }
    ours = result["client_cpu_s"] + result["scheduler_and_nannies_cpu_s"] + sum(w["cpu_s"] for w in result["workers"].values())
    result["other_processes_cpu_s"] = round(max(0.0, busy - ours), 1)  # what else ran on the machine meanwhile
    done_s = sorted(ss["stop"] - epoch for t in tasks.data for ss in t["startstops"] if ss["action"] == "compute")
    result["chunks_computed"] = len(done_s)
    result["chunks_done_by_quarter"] = [sum(1 for d in done_s if k * wall / 4 <= d < (k + 1) * wall / 4) for k in range(4)]
    if kill_after_s is not None and not killed:
        result["killed"] = {"note": f"the command ended before {kill_after_s:.1f} s: no worker was killed"}
    elif killed:
        deadline = time.perf_counter() + 60
        after = client.run(os.getpid)
        while (len(after) < n_workers or killed["pid"] in after.values()) and time.perf_counter() < deadline:
            time.sleep(0.5)
            after = client.run(os.getpid)
        nanny_after = {w.get("nanny") for w in client.scheduler_info(n_workers=-1)["workers"].values()}
        killed.update({
            "workers_after": len(after),
            "new_pid": sorted(set(after.values()) - set(before.values())),
            "restarted_by_its_nanny": len(after) == n_workers and killed["pid"] not in after.values() and killed["nanny"] in nanny_after,
        })
        before_kill = [d for d in done_s if d < killed["at_s"]]
        after_kill = [d for d in done_s if d >= killed["at_s"]]
        gaps = np.diff([killed["at_s"], *after_kill]) if after_kill else np.array([0.0])
        killed.update({
            "chunks_per_s_before": round(len(before_kill) / killed["at_s"], 2),
            "chunks_per_s_after": round(len(after_kill) / max(1e-9, done_s[-1] - killed["at_s"]), 2) if after_kill else None,
            "longest_pause_after_s": round(float(gaps.max()), 2),
        })
        result["killed"] = killed
    print(f"  exit {proc.returncode}, {wall:.1f} s, {n / wall:,.0f} patterns/s, client peak {result['client_peak_mib']} MiB, "
          f"workers' peaks {[w['peak_mib'] for w in result['workers'].values()]} MiB; CPU s: client {result['client_cpu_s']}, "
          f"scheduler {result['scheduler_and_nannies_cpu_s']}, workers {[w['cpu_s'] for w in result['workers'].values()]}", flush=True)
    return result


# -- equality -----------------------------------------------------------------
def compare_outputs(reference: Path, others: dict[str, Path], *, block: int = 100_000) -> dict[str, Any]:
    """Every processed pattern (decoded) and the map data of each output against ``reference``.

    Also the SHA-256 of each file's decoded patterns in storage order (the
    same digest means the same patterns, whatever the HDF5 chunking).
    """
    import hashlib

    import h5py

    names = ["Scan/EBSD/Data/bse_map", "Scan/EBSD/Data/NoSignal", "Scan/EBSD/Header/indexmap"]
    files = {"reference": reference, **others}
    handles = {k: h5py.File(p, "r") for k, p in files.items()}
    try:
        data = {k: h["Scan/EBSD/Data/Patterns"] for k, h in handles.items()}
        n = data["reference"].shape[0]
        digests = {k: hashlib.sha256() for k in files}
        differing = {k: 0 for k in others}
        first = {k: None for k in others}
        for start in range(0, n, block):
            stop = min(n, start + block)
            ref = data["reference"][start:stop]
            digests["reference"].update(ref.tobytes())
            for k in others:
                got = data[k][start:stop]
                digests[k].update(got.tobytes())
                bad = np.flatnonzero((got != ref).reshape(len(ref), -1).any(axis=1))
                differing[k] += int(bad.size)
                if bad.size and first[k] is None:
                    first[k] = int(start + bad[0])
        out: dict[str, Any] = {"patterns": n, "reference_sha256": digests["reference"].hexdigest()}
        for k in others:
            same = {name.rsplit("/", 1)[1]: bool(np.array_equal(handles[k][name][()], handles["reference"][name][()], equal_nan=True)) for name in names}
            out[k] = {
                "shape_equal": data[k].shape == data["reference"].shape,
                "patterns_differing": differing[k],
                "first_differing": first[k],
                "sha256": digests[k].hexdigest(),
                **{f"{name}_equal": v for name, v in same.items()},
            }
            out[k]["equal"] = out[k]["shape_equal"] and differing[k] == 0 and all(same.values())
        return out
    finally:
        for h in handles.values():
            h.close()


class DaskWarnings(logging.Handler):
    """Collects the WARNING records of the cluster's scheduler and nannies (in this process)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.name}: {record.getMessage()}"[:300])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2_000_000, help="patterns in the map (default 2,000,000)")
    parser.add_argument("--pattern", type=int, default=60, help="pattern side in pixels (default 60)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the LocalCluster (default 2)")
    parser.add_argument("--memory-limit", default="1GB", help="memory limit of each worker (default 1GB)")
    parser.add_argument("--kill-at", type=float, default=0.5, help="kill a worker at this fraction of the uninterrupted process run's wall time (default 0.5)")
    parser.add_argument("--workdir", type=Path, default=ROOT / "benchmarks" / "_data" / "scale", help="the map (cached) and the outputs")
    parser.add_argument("--steps", default="process,vbse,index,kill", help="which steps to run (comma-separated, default all)")
    args = parser.parse_args()
    steps = set(args.steps.split(","))
    if "kill" in steps:
        steps.add("process")
    if not 0 < args.kill_at < 1:
        parser.error(f"--kill-at must be a fraction between 0 and 1, got {args.kill_at}")

    from distributed import Client, LocalCluster

    from kikuchi.engine import process_map

    rows, cols = map_shape(args.n)
    n = rows * cols
    args.workdir.mkdir(parents=True, exist_ok=True)
    path = args.workdir / f"scale_{rows}x{cols}_{args.pattern}.h5"
    report: dict[str, Any] = {"n": n, "nav_shape": [rows, cols], "pattern": args.pattern, "workers": args.workers,
                              "memory_limit": args.memory_limit, "cpus": os.cpu_count(), "map": str(path)}
    if not path.exists():
        print(f"making {path} ({n:,} patterns of {args.pattern} x {args.pattern})", flush=True)
        t0 = time.perf_counter()
        make_map(path, n=n, size=args.pattern)
        report["make_map_s"] = round(time.perf_counter() - t0, 1)
        print(f"  made in {report['make_map_s']} s", flush=True)
    report["map_gb"] = round(path.stat().st_size / 1e9, 2)
    report["patterns_gb"] = round(n * args.pattern**2 / 1e9, 2)
    run = args.workdir / f"run_{n}"
    run.mkdir(exist_ok=True)
    for old in ("process.h5", "kill.h5", "index.h5"):
        (run / old).unlink(missing_ok=True)
    kikuchi_cli = str(Path(sys.executable).parent / "kikuchi")
    warnings_handler = DaskWarnings()
    logging.getLogger("distributed").addHandler(warnings_handler)

    cluster = LocalCluster(
        n_workers=args.workers, threads_per_worker=1, processes=True, memory_limit=args.memory_limit,
        dashboard_address=":0", silence_logs=logging.WARNING,
    )
    client = Client(cluster)
    address = cluster.scheduler_address
    report["scheduler"] = address
    common = {"n": n, "client": client, "n_workers": args.workers, "logdir": run, "warnings": warnings_handler}
    try:
        with WorkerMemory() as memory:
            commands = {
                "process": [kikuchi_cli, "process", str(path), "-o", str(run / "process.h5"), "--scheduler", address, "--no-progress"],
                "vbse": [kikuchi_cli, "vbse", str(path), "-o", str(run / "vbse"), "--scheduler", address, "--quiet"],
                "index": [kikuchi_cli, "index", str(path), "-o", str(run / "index.h5"), "--phase", "ni", "--scheduler", address,
                          "--no-progress", "--json"],
            }
            for name in ("process", "vbse", "index"):
                if name in steps:
                    report[name] = run_command(name, commands[name], memory=memory, **common)
            if "index" in report:
                summary = json.loads((run / "index.out").read_text())
                report["index"]["accuracy"] = summary.get("accuracy")
                report["index"]["errors"] = summary.get("errors")
            if "kill" in steps:
                kill_after = args.kill_at * report["process"]["wall_s"]
                command = commands["process"][:]
                command[command.index("-o") + 1] = str(run / "kill.h5")
                report["kill"] = run_command("kill", command, memory=memory, kill_after_s=kill_after, **common)
    finally:
        client.close()
        cluster.close()
    if "process" in steps:
        reference = run / "serial.h5"
        if not reference.exists() or reference.stat().st_mtime < path.stat().st_mtime:
            print("serial reference: process_map(executor='serial')", flush=True)
            t0 = time.perf_counter()
            process_map(path, reference, executor="serial", progress=False)
            wall = time.perf_counter() - t0
            report["serial_reference"] = {"wall_s": round(wall, 1), "patterns_per_s": round(n / wall)}
        print("comparing every processed pattern with the serial reference", flush=True)
        others = {"cluster": run / "process.h5"}
        if "kill" in report:
            others["killed_worker"] = run / "kill.h5"
        t0 = time.perf_counter()
        report["equality"] = compare_outputs(run / "serial.h5", others)
        report["equality"]["compare_s"] = round(time.perf_counter() - t0, 1)
    out = args.workdir / f"scale_{n}.json"
    out.write_text(json.dumps(report, indent=2))
    print_table(report)
    print(f"every number: {out}")
    return 0


def print_table(report: dict[str, Any]) -> None:
    n = report["n"]
    print(f"\n{n:,} patterns of {report['pattern']} x {report['pattern']} ({report['patterns_gb']} GB of patterns, "
          f"{report['map_gb']} GB file), LocalCluster of {report['workers']} workers x 1 thread, memory limit {report['memory_limit']} each, "
          f"{report['cpus']} CPUs")
    print(f"{'step':<10}{'wall s':>9}{'patterns/s':>12}{'client MiB':>12}{'others CPU s':>14}  worker peak MiB (by quarter of the run)")
    for name in ("process", "vbse", "index", "kill"):
        r = report.get(name)
        if not r:
            continue
        peaks = "; ".join(f"{w['peak_mib']:.0f} ({', '.join(f'{q:.0f}' for q in w['by_quarter_mib'])})" for w in r["workers"].values())
        print(f"{name:<10}{r['wall_s']:>9.1f}{r['patterns_per_s']:>12,}{r['client_peak_mib']:>12.0f}{r['other_processes_cpu_s']:>14.0f}  {peaks}   exit {r['returncode']}")
    if "index" in report and report["index"].get("accuracy"):
        print(f"index accuracy: {report['index']['accuracy']}")
    if "kill" in report:
        print(f"killed: {report['kill'].get('killed')}")
    if "serial_reference" in report:
        print(f"serial reference: {report['serial_reference']}")
    if "equality" in report:
        e = report["equality"]
        for k in ("cluster", "killed_worker"):
            if k in e:
                print(f"{k} vs serial: equal={e[k]['equal']} ({e[k]['patterns_differing']} of {e['patterns']:,} patterns differ; "
                      f"sha256 {e[k]['sha256'][:16]}, reference {e['reference_sha256'][:16]})")


if __name__ == "__main__":
    sys.exit(main())
