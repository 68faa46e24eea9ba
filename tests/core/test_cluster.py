"""Lab scale on Dask (core/cluster.py, ``batch --cluster``): parsing, the worker-side checks,
and real LocalClusters (worker processes on loopback) for parity with a local batch, a worker
killed mid-run, a worker with other models, and a scheduler that goes away."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from fake_engine import FakeEngine, make_photo  # noqa: E402

from forensic_app import cli  # noqa: E402
from forensic_app.core import cluster as cl  # noqa: E402
from forensic_app.core.batch import DONE, BatchRunner  # noqa: E402
from forensic_app.core.case import Case  # noqa: E402
from forensic_app.core.code_identity import code_sha256, sources_fingerprint  # noqa: E402
from forensic_app.core.modelstore import CENTERFACE_FILE, GENDER_FILE  # noqa: E402
from forensic_app.core.settings import AnalysisSettings  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
distributed = pytest.importorskip("distributed", reason="pip install -e .[cluster]")


def run_cli(*argv: str, engine_factory=None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), stdout=out, stderr=err, engine_factory=engine_factory)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def real_models(models_dir: Path) -> Path:
    if not (models_dir / CENTERFACE_FILE).is_file() or not (models_dir / GENDER_FILE).is_file():
        pytest.skip("models/centerface.onnx or the gender model missing")
    return models_dir


@pytest.fixture(scope="module")
def photos(dev_eval_dir: Path, real_models: Path) -> list[str]:
    """A few small dev-eval photos (smallest files: short runtime, still several faces)."""
    files = sorted((dev_eval_dir / "images").rglob("*.jpg"), key=lambda p: p.stat().st_size)
    return [str(p) for p in files[:4]]


def records(case_dir: Path) -> dict[str, dict]:
    """Every record of a case, without the fields that differ between any two runs."""
    out = {}
    for f in sorted((case_dir / "results").glob("*.json")):
        d = json.loads(f.read_text(encoding="utf-8"))
        d.pop("analysed_at")
        d["result"].pop("timings_ms")
        out[f.name] = d
    return out


def annotated(case_dir: Path) -> dict[str, str]:
    return {
        f.name: hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted((case_dir / "annotated").iterdir())
    }


def audit_actions(case_dir: Path, action: str) -> list[dict]:
    lines = (case_dir / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    return [e for e in map(json.loads, lines) if e["action"] == action]


def local_cluster(**worker_kwargs):
    """Two worker processes, one thread each, everything on loopback."""
    with warnings.catch_warnings():  # the HTTP server takes another port when 8787 is busy
        warnings.filterwarnings("ignore", message="Port .* is already in use")
        return _local_cluster(**worker_kwargs)


def _local_cluster(**worker_kwargs):
    return distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        scheduler_port=0,
        dashboard_address=None,
        **worker_kwargs,
    )


# -- parsing ------------------------------------------------------------------------------------
def test_cluster_address_forms() -> None:
    assert cl.ClusterAddress.parse("local:3") == cl.ClusterAddress(local_workers=3)
    assert cl.ClusterAddress.parse("tcp://10.0.0.5:8786").address == "tcp://10.0.0.5:8786"
    assert cl.ClusterAddress.parse("lab-sched:8786").address == "tcp://lab-sched:8786"
    for bad in ("local:0", "http://x", "somewhere", ""):
        with pytest.raises(cl.ClusterError):
            cl.ClusterAddress.parse(bad)


def test_path_map_replaces_the_longest_prefix_at_a_folder_boundary() -> None:
    pm = cl.PathMap.parse(["/mnt/ev=/data/ev", "/mnt/ev/deep=/fast/deep", "/mnt/x=C:\\share"])
    assert pm.to_worker("/mnt/ev/a/b.jpg") == "/data/ev/a/b.jpg"
    assert pm.to_worker("/mnt/ev/deep/c.jpg") == "/fast/deep/c.jpg"
    assert pm.to_worker("/mnt/evidence2/c.jpg") == "/mnt/evidence2/c.jpg"  # not a prefix match
    assert pm.to_worker("/mnt/x/y/z.png") == "C:\\share\\y\\z.png"
    assert cl.PathMap().to_worker("rel.jpg") == os.path.abspath("rel.jpg")
    with pytest.raises(cl.ClusterError):
        cl.PathMap.parse(["/no/equals/sign"])


def test_bad_cluster_options_are_usage_errors(tmp_path: Path) -> None:
    photo = make_photo(tmp_path / "a.png")
    code, _, err = run_cli("batch", str(photo), "--case", str(tmp_path / "c"), "--cluster", "x")
    assert code == cli.EXIT_USAGE and "tcp://host:8786" in err
    code, _, err = run_cli(
        "batch",
        str(photo),
        "--case",
        str(tmp_path / "c"),
        "--cluster",
        "local:1",
        "--path-map",
        "nonsense",
    )
    assert code == cli.EXIT_USAGE and "CLIENT_PREFIX=WORKER_PREFIX" in err
    code, _, err = run_cli(
        "batch",
        str(photo),
        "--case",
        str(tmp_path / "c"),
        "--cluster",
        "local:2",
        "--workers",
        "2",
    )
    assert code == cli.EXIT_USAGE and "dask worker" in err
    assert not (tmp_path / "c").exists()


def test_an_unreachable_scheduler_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(cl, "CONNECT_TIMEOUT_S", 2.0)
    photo = make_photo(tmp_path / "a.png")
    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    code, _, err = run_cli(
        "batch",
        str(photo),
        "--case",
        str(tmp_path / "c"),
        "--cluster",
        address,
        engine_factory=lambda args: FakeEngine(),
    )
    assert code == cli.EXIT_USAGE and f"cannot reach the Dask scheduler {address}" in err
    assert not (tmp_path / "c").exists()


def test_a_copy_encoded_by_a_worker_is_written_as_it_is(tmp_path: Path) -> None:
    from forensic_app.core.annotate import EncodedCopy, save_annotated

    out = save_annotated(EncodedCopy(b"drawn elsewhere", ".jpg"), [], tmp_path / "a.jpg")
    assert out.read_bytes() == b"drawn elsewhere"
    with pytest.raises(ValueError, match="encoded as .png"):
        save_annotated(EncodedCopy(b"png bytes", ".png"), [], tmp_path / "b.jpg")
    assert not (tmp_path / "b.jpg").exists()
    with pytest.raises(PermissionError):  # never over an input, drawn here or elsewhere
        save_annotated(EncodedCopy(b"x", ".jpg"), [], out, protected=[out])


# -- the worker side, in this process -------------------------------------------------------------
@pytest.fixture(scope="module")
def spec(real_models: Path) -> cl.WorkerSpec:
    from forensic_app.core.analysis import Engine

    engine = Engine.create(real_models, threads=1)
    return cl.WorkerSpec.for_engine(engine, AnalysisSettings())


def test_worker_task_fails_a_bad_photo_exactly_as_a_local_batch(
    spec: cl.WorkerSpec, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    reply = cl.analyse_task(spec, str(bad), ".jpg")
    local = BatchRunner(FakeEngine(), pipelined=False).run([str(bad)]).items[0]
    assert reply.result["error"] == local.result.error and "cannot be read" in local.result.error
    assert reply.result["sha256"] == hashlib.sha256(bad.read_bytes()).hexdigest()
    assert reply.annotated is None
    assert cl.hash_task(spec, [str(tmp_path / "gone.jpg"), str(bad)]) == [
        None,
        reply.result["sha256"],
    ]


def test_worker_refuses_other_models_and_another_tool_version(spec: cl.WorkerSpec) -> None:
    other = dataclasses.replace(spec, models=(("detector", "0" * 64), *spec.models[1:]))
    with pytest.raises(cl.WorkerModelError, match="other models"):
        cl.check_worker(other)
    older = dataclasses.replace(spec, tool_version="0.0.1")
    with pytest.raises(cl.ClusterError, match="same version"):
        cl.check_worker(older)
    # Same version string, other sources (another checkout of the same release): refused too.
    assert spec.code_sha256 == code_sha256() and spec.code_sha256
    other_code = dataclasses.replace(spec, code_sha256="0" * 64)
    with pytest.raises(cl.ClusterError, match="other forensic-app code"):
        cl.check_worker(other_code)
    info = cl.check_worker(spec)
    assert info["provider"] and info["code_sha256"] == spec.code_sha256
    assert cl.unfingerprinted(spec, {"tcp://w1": info}) == []
    frozen = dataclasses.replace(spec, code_sha256=None)  # e.g. a client run from a bundle
    assert cl.unfingerprinted(frozen, {"tcp://w1": {**info, "code_sha256": None}}) == [
        "the client",
        "tcp://w1",
    ]


def test_sources_fingerprint_changes_with_any_source_byte_or_name(tmp_path: Path) -> None:
    assert sources_fingerprint(tmp_path) is None  # nothing to hash: say so, never guess
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_bytes(b"x = 1\n")
    (tmp_path / "b.py").write_bytes(b"y = 2\n")
    first = sources_fingerprint(tmp_path)
    (tmp_path / "pkg" / "a.py").write_bytes(b"x = 2\n")
    second = sources_fingerprint(tmp_path)
    (tmp_path / "pkg" / "a.py").rename(tmp_path / "pkg" / "c.py")
    third = sources_fingerprint(tmp_path)
    (tmp_path / "notes.txt").write_text("not code")  # only sources count
    assert len({first, second, third}) == 3
    assert sources_fingerprint(tmp_path) == third
    (tmp_path / "b.py").write_bytes(b"y = 2\r\n")  # a Windows checkout of the same commit
    assert sources_fingerprint(tmp_path) == third


# -- the client's loop, with an in-process stand-in for distributed.Client ---------------------
class _FakeFuture:
    def __init__(self) -> None:
        self.status = "pending"
        self._value = self._exc = None
        self._callbacks: list = []
        self._lock = threading.Lock()

    def _set(self, value=None, exc=None) -> None:
        with self._lock:
            self._value, self._exc = value, exc
            self.status = "error" if exc is not None else "finished"
            callbacks = list(self._callbacks)
        for cb in callbacks:
            cb(self)

    def add_done_callback(self, cb) -> None:
        with self._lock:
            if self.status == "pending":
                self._callbacks.append(cb)
                return
        cb(self)

    def result(self):
        if self._exc is not None:
            raise self._exc
        return self._value

    def exception(self):
        return self._exc


class FakeClient:
    """Runs submitted tasks one by one on a thread, like a one-thread worker; counts how many
    tasks were submitted and not yet collected (the client's in-flight window)."""

    status = "running"

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self.outstanding = 0
        self.max_outstanding = 0
        self._lock = threading.Lock()
        self._jobs: list = []
        self._wake = threading.Condition(self._lock)
        threading.Thread(target=self._work, daemon=True).start()

    def nthreads(self) -> dict[str, int]:
        return {"tcp://fake:1": 1}

    def submit(self, fn, *args, key=None, pure=True):
        fut = _FakeFuture()
        with self._lock:
            self.calls.append((fn.__name__, args[1]))
            self.outstanding += 1
            self.max_outstanding = max(self.max_outstanding, self.outstanding)
            self._jobs.append((fut, fn, args))
            self._wake.notify()
        orig = fut.result

        def collected():
            with self._lock:
                self.outstanding -= 1
            return orig()

        fut.result = collected  # type: ignore[method-assign]
        return fut

    def cancel(self, futures) -> None:
        for f in futures:
            f.status = "cancelled"

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._jobs:
                    self._wake.wait()
                fut, fn, args = self._jobs.pop(0)
            try:
                fut._set(fn(*args))
            except Exception as exc:  # noqa: BLE001
                fut._set(exc=exc)


def test_client_keeps_a_window_maps_paths_and_resumes_by_worker_hashes(
    tmp_path: Path, monkeypatch
) -> None:
    engine = FakeEngine()
    monkeypatch.setattr(cl, "_engine_for", lambda spec: engine)
    client_dir = tmp_path / "client-view"
    photos = [
        str(make_photo(client_dir / f"p{i:02d}.png", color=(20 + 9 * i, 30, 30))) for i in range(20)
    ]
    (tmp_path / "worker-view").symlink_to(client_dir)
    path_map = cl.PathMap.parse([f"{client_dir}={tmp_path / 'worker-view'}"])
    settings = AnalysisSettings()
    spec = cl.WorkerSpec.for_engine(engine, settings)
    case = Case.create(tmp_path / "case", engine=engine, settings=settings)
    case.begin_batch(engine, settings)
    fake = FakeClient()
    runner = cl.ClusterBatchRunner(
        engine, settings, client=fake, spec=spec, path_map=path_map, store=case, window=3
    )
    outcome = runner.run(photos)
    assert outcome.all_ok and runner.stopped_by is None
    assert fake.max_outstanding <= 3 and len(fake.calls) == 20
    assert all(str(p).startswith(str(tmp_path / "worker-view")) for _, p in fake.calls)
    assert [r.path for r in outcome.results] == photos  # the client's paths in the results
    assert sorted(r.path for r in case.records()) == photos
    assert len(list((tmp_path / "case" / "annotated").iterdir())) == 20

    # Rerun: chunks of 8 hashed on the "worker", every photo found in the case, none analysed.
    case.begin_batch(engine, settings)
    fake = FakeClient()
    runner = cl.ClusterBatchRunner(
        engine, settings, client=fake, spec=spec, path_map=path_map, store=case, hash_chunk=8
    )
    outcome = runner.run(photos)
    assert outcome.progress.skipped == 20 and outcome.all_ok
    assert [name for name, _ in fake.calls] == ["hash_task"] * 3


def test_cancel_stops_submitting_and_marks_the_rest_cancelled(tmp_path: Path, monkeypatch):
    engine = FakeEngine(delay_s=0.05)
    monkeypatch.setattr(cl, "_engine_for", lambda spec: engine)
    photos = [str(make_photo(tmp_path / f"p{i}.png")) for i in range(12)]
    settings = AnalysisSettings()
    fake = FakeClient()
    runner = cl.ClusterBatchRunner(
        engine,
        settings,
        client=fake,
        spec=cl.WorkerSpec.for_engine(engine, settings),
        window=2,
        on_item=lambda it: runner.cancel() if it.status == DONE else None,
    )
    outcome = runner.run(photos)
    assert outcome.cancelled and not outcome.all_ok
    statuses = [i.status for i in outcome.items]
    assert statuses.count(DONE) >= 1 and statuses.count("cancelled") >= 8
    assert len(fake.calls) <= 4  # nothing new was submitted after the cancel


# -- real clusters ----------------------------------------------------------------------------
@pytest.mark.slow
def test_cluster_case_is_identical_to_a_local_one_and_resumes(
    photos: list[str], tmp_path: Path
) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff truncated")
    inputs = [*photos, str(bad)]
    local, dask = tmp_path / "local", tmp_path / "dask"
    code, _, err = run_cli("batch", *inputs, "--case", str(local), "-q")
    assert code == cli.EXIT_FAILED, err  # the broken photo fails, in both
    code, out, err = run_cli("batch", *inputs, "--case", str(dask), "--cluster", "local:2")
    assert code == cli.EXIT_FAILED, err
    assert "2 worker(s) checked" in err and f"{len(photos)} analysed, 1 failed" in out

    assert records(local) == records(dask)  # same faces, boxes, probabilities, errors, paths
    assert len(records(dask)) == len(inputs)
    assert annotated(local) == annotated(dask) and len(annotated(dask)) == len(photos)
    m_local, m_dask = (json.loads((d / "case.json").read_text()) for d in (local, dask))
    for key in ("models", "settings", "tool_version", "provider"):
        assert m_local[key] == m_dask[key]
    assert run_cli("case", "verify", "--case", str(dask))[0] == cli.EXIT_OK

    # Rerun: the workers hash, the client finds the records, nothing is analysed again.
    code, out, _ = run_cli("batch", *inputs, "--case", str(dask), "--cluster", "local:2", "-q")
    assert f"{len(photos)} unchanged (skipped), 1 failed" in out
    assert len(audit_actions(dask, "analysed")) == len(photos)
    assert len(audit_actions(dask, "skipped-unchanged")) == len(photos)


@pytest.mark.slow
def test_a_worker_killed_mid_batch_costs_nothing(photos: list[str], tmp_path: Path) -> None:
    inputs = photos * 1 + [str(p) for p in _copies(photos, tmp_path)]  # 8 distinct photos
    with local_cluster() as lc, distributed.Client(lc) as client:
        pids = client.run(os.getpid)
        from forensic_app.core.analysis import Engine

        engine = Engine.create(threads=1)
        settings = AnalysisSettings()
        case = Case.create(tmp_path / "case", engine=engine, settings=settings)
        case.begin_batch(engine, settings, photos=len(inputs))
        killed: list[int] = []

        def kill_one_busy_worker(item) -> None:
            if item.status != DONE or killed:
                return
            busy = [a for a, keys in client.processing().items() if keys and a in pids]
            if busy:
                killed.append(pids[busy[0]])
                os.kill(pids[busy[0]], signal.SIGKILL)

        runner = cl.ClusterBatchRunner(
            engine,
            settings,
            client=client,
            spec=cl.WorkerSpec.for_engine(engine, settings),
            store=case,
            on_item=kill_one_busy_worker,
        )
        outcome = runner.run(inputs)
        case.end_batch(outcome)
    assert killed, "no worker was busy to kill"
    assert outcome.all_ok and runner.stopped_by is None
    shas = [e["sha256"] for e in audit_actions(case.root, "analysed")]
    assert len(shas) == len(set(shas)) == len(inputs)  # every photo recorded exactly once
    assert len(records(case.root)) == len(inputs)


def _copies(photos: list[str], folder: Path) -> list[Path]:
    """The same photos with one extra byte appended: distinct SHA-256s, same pixels."""
    out = []
    for i, p in enumerate(photos):
        target = folder / f"copy{i}.jpg"
        target.write_bytes(Path(p).read_bytes() + b"\0")
        out.append(target)
    return out


@pytest.mark.slow
def test_a_worker_with_other_models_is_refused_with_exit_3(
    photos: list[str], tmp_path: Path, real_models: Path, tiny_gender_model: Path, monkeypatch
) -> None:
    other = tmp_path / "other-models"
    other.mkdir()
    (other / CENTERFACE_FILE).symlink_to(real_models / CENTERFACE_FILE)
    shutil.copy(tiny_gender_model, other / GENDER_FILE)
    # A consistent installation of other models: its own manifest vouches for them.
    manifest = json.loads((real_models / "manifest.json").read_text(encoding="utf-8"))
    manifest[GENDER_FILE]["sha256"] = hashlib.sha256((other / GENDER_FILE).read_bytes()).hexdigest()
    (other / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    case_dir = tmp_path / "case"
    with local_cluster(env={"FORENSIC_APP_MODELS_DIR": str(other)}) as lc:
        code, _, err = run_cli(
            "batch", *photos, "--case", str(case_dir), "--cluster", lc.scheduler_address
        )
        assert code == cli.EXIT_MODEL, err
        assert "has other models" in err and "gender" in err
        assert not (case_dir / "results").exists()  # nothing of theirs entered a case

        monkeypatch.setattr(cl, "__version__", "0.0.0+other")
        code, _, err = run_cli(
            "batch", *photos, "--case", str(case_dir), "--cluster", lc.scheduler_address
        )
        assert code == cli.EXIT_USAGE and "same version on every worker" in err


@pytest.mark.slow
def test_a_scheduler_that_goes_away_ends_the_batch_and_a_rerun_completes(
    photos: list[str], tmp_path: Path
) -> None:
    inputs = photos + [str(p) for p in _copies(photos, tmp_path)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    port = _free_port()
    sched = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-dashboard",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "distributed.cli.dask_worker",
            f"tcp://127.0.0.1:{port}",
            "--nthreads",
            "1",
            "--no-dashboard",
            "--host",
            "127.0.0.1",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    case_dir = tmp_path / "case"

    def kill_scheduler_after_first_record() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if any((case_dir / "results").glob("*.json")) if case_dir.exists() else False:
                sched.kill()
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_scheduler_after_first_record, daemon=True)
    killer.start()
    try:
        code, out, err = run_cli(
            "batch", *inputs, "--case", str(case_dir), "--cluster", f"127.0.0.1:{port}", "-q"
        )
    finally:
        sched.kill()
        worker.kill()
        sched.wait(10)
        worker.wait(10)
    assert code == cli.EXIT_FAILED, err
    assert "lost the connection to the Dask scheduler" in err and "run the same command" in err
    first = len(records(case_dir))
    assert 1 <= first < len(inputs)

    code, out, err = run_cli(
        "batch", *inputs, "--case", str(case_dir), "--cluster", "local:2", "-q"
    )
    assert code == cli.EXIT_OK, err
    shas = [e["sha256"] for e in audit_actions(case_dir, "analysed")]
    assert len(shas) == len(set(shas)) == len(inputs)  # each photo recorded once in all
    assert len(records(case_dir)) == len(inputs)
    assert run_cli("case", "verify", "--case", str(case_dir))[0] == cli.EXIT_OK


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="SIGINT to a child process is a POSIX test")
def test_ctrl_c_stops_a_cluster_batch_logs_it_and_leaves_no_worker_behind(
    dev_eval_dir: Path, real_models: Path, tmp_path: Path
) -> None:
    """Ctrl-C on `batch --cluster local:1` (a real process, a real signal): exit 130, the case
    says `interrupted`, what was recorded is complete, and the LocalCluster's worker processes
    end with the client (no orphan keeps reading evidence)."""
    psutil = pytest.importorskip("psutil")
    case_dir = tmp_path / "case"
    argv = [sys.executable, "-m", "forensic_app", "batch", str(dev_eval_dir / "images"), "-r"]
    argv += ["--case", str(case_dir), "--cluster", "local:1", "-q"]
    proc = subprocess.Popen(
        argv,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 180  # a hang guard: start-up is ~10-30 s on a loaded machine
    audit_log = case_dir / "audit.jsonl"
    while (audit_log.read_bytes().count(b'"action":"analysed"') if audit_log.exists() else 0) < 2:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the batch ended or stalled first: {proc.communicate()[1][-2000:]!r}")
        time.sleep(0.1)
    children = psutil.Process(proc.pid).children(recursive=True)
    assert children, "local:1 starts its worker in another process"
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("Ctrl-C did not stop the cluster batch")
    assert proc.returncode == 130, err.decode(errors="replace")[-2000:]
    _, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"worker processes left running: {[p.pid for p in alive]}"
    assert audit_actions(case_dir, "interrupted") and not audit_actions(case_dir, "batch-finished")
    saved = records(case_dir)
    assert 2 <= len(saved) < 60
    assert len(audit_actions(case_dir, "analysed")) == len(saved)
    assert run_cli("case", "verify", "--case", str(case_dir))[0] == cli.EXIT_OK
