"""``mlxas serve``: the same answers as ``mlxas predict``, and a 4xx with the reason for
every kind of bad request; once through a real uvicorn server on localhost."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from mlxas.predict.output import record
from mlxas.predict.predictor import Predictor
from mlxas.serve import app as serve_app
from mlxas.serve.app import ServeSettings, create_app
from mlxas.spectra.measured import Spectrum, check_arrays, read_spectra
from test_predict import CU, NI, model_path


@pytest.fixture(scope="module")
def client(tiny_experiment):
    app = create_app(ServeSettings((str(model_path(tiny_experiment)),), allow_short_k=True))
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def reference(tiny_experiment):
    with Predictor(model_path(tiny_experiment), jobs=1, allow_short_k=True) as p:
        yield {"cu": record(p.predict([CU])[0]), "predictor": p}


def arrays(path: Path, **extra) -> dict:
    s = read_spectra(path)[0]
    return {"energy": s.energy.tolist(), "mu": s.mu.tolist(), **extra}


def _same(got: dict, want: dict, skip=("source", "mu_from")) -> None:
    assert set(got) == set(want)
    for key, value in want.items():
        if key not in skip:
            assert got[key] == (pytest.approx(value) if isinstance(value, float) else value), key


def test_health(client, tiny_experiment):
    h = client.get("/health").json()
    assert h["status"] == "ok" and len(h["models"]) == 1
    m = h["models"][0]
    assert (m["absorber"], m["edge"], m["targets"]) == ("Cu", "K", ["cn", "r"])


def test_json_spectrum_gets_the_answer_of_predict(client, reference):
    r = client.post("/predict", json=arrays(CU, name="scan_001"))
    assert r.status_code == 200
    got = r.json()["result"]
    assert got["source"] == "scan_001" and got["status"] == "ok"
    _same(got, reference["cu"])


def test_file_upload_gets_the_answer_of_predict(client, reference):
    with open(CU, "rb") as fh:
        r = client.post("/predict/file", files={"file": ("cu_metal_rt.xdi", fh)})
    assert r.status_code == 200
    (got,) = r.json()["results"]
    assert got["source"] == "cu_metal_rt.xdi" and got["mu_from"] == reference["cu"]["mu_from"]
    _same(got, reference["cu"])


def test_batch_keeps_order_and_refuses_single_spectra(client, reference):
    noisy = arrays(CU, name="noisy")
    noisy["mu"] = (np.asarray(noisy["mu"]) + 0.002).tolist()  # the same curve, shifted
    batch = [
        arrays(CU, name="a"), noisy, arrays(NI, name="ni", element="Ni"),
        {"name": "short", "energy": [1.0, 2.0], "mu": [1.0, 2.0]},
    ]  # fmt: skip
    r = client.post("/predict/batch", json={"spectra": batch})
    assert r.status_code == 200
    res = r.json()["results"]
    assert [x["source"] for x in res] == ["a", "noisy", "ni", "short"]
    assert [x["status"] for x in res] == ["ok", "ok", "refused", "refused"]
    assert res[2]["reason"] == "element Ni in the file, the model is for Cu K"
    assert res[3]["reason"] == "too few points: 2 (need at least 30)"
    # As `mlxas predict` on files of one grid: one series, one E0.
    assert res[0]["e0"] == res[1]["e0"] == reference["cu"]["e0"]


def test_a_batch_item_of_the_wrong_types_is_refused_alone(client, reference):
    """One spectrum with a string for a number (or no mu) does not cost the batch its
    good spectra: it is refused with the reason, as a damaged file in a batch is."""
    bad = {**arrays(CU, name="typo"), "mu": ["x"] * 3}
    batch = [arrays(CU, name="a"), bad, {"name": "half", "energy": [1.0]}, 7]
    r = client.post("/predict/batch", json={"spectra": batch})
    assert r.status_code == 200
    res = r.json()["results"]
    assert [(x["source"], x["status"]) for x in res] == [
        ("a", "ok"), ("typo", "refused"), ("half", "refused"), ("spectrum", "refused"),
    ]  # fmt: skip
    assert res[0]["cn"] == pytest.approx(reference["cu"]["cn"])
    assert res[1]["reason"] == "mu.0: Input should be a valid number (and 2 more)"
    assert res[2]["reason"] == "mu: Field required"


@pytest.mark.parametrize(
    "body,status,pattern",
    [
        ("{not json", 422, r"JSON decode error"),
        ({"energy": [1.0, 2.0]}, 422, r"mu.*[Ff]ield required"),
        ({"energy": "abc", "mu": [1.0]}, 422, r"energy.*valid (list|array)"),
        ({**{"energy": list(range(100))}, "mu": list(range(99))}, 422,
         r"energy has 100 points but mu has 99"),
        ({"energy": [8000.0 + i for i in range(40)], "mu": [None] * 40}, 422, r"mu"),
        ({"energy": [8000.0 - i for i in range(40)], "mu": [1.0] * 40}, 422,
         r"energies are not increasing"),
        # Not read as numbers behind the client's back, nor a key dropped unseen.
        ({"energy": [str(8000.0 + i) for i in range(40)], "mu": [1.0] * 40}, 422,
         r"energy.*valid number"),
        ({"energy": [8000.0 + i for i in range(40)], "mu": [True] * 40}, 422,
         r"mu.*valid number"),
        ({"energy": [8000.0 + i for i in range(40)], "mu": [1.0] * 40, "energy_unit": "keV"},
         422, r"energy_unit.*Extra inputs are not permitted"),
    ],
)  # fmt: skip
def test_bad_json_requests_get_422_with_the_reason(client, body, status, pattern):
    if isinstance(body, str):
        r = client.post("/predict", content=body, headers={"content-type": "application/json"})
    else:
        r = client.post("/predict", json=body)
    assert r.status_code == status
    assert re.search(pattern, json.dumps(r.json()["detail"])), r.json()


def test_refused_spectra_and_unknown_models(client, monkeypatch):
    r = client.post("/predict", json=arrays(NI, element="Ni"))
    assert r.status_code == 422
    assert r.json()["detail"] == "spectrum: element Ni in the file, the model is for Cu K"
    assert r.json()["result"]["status"] == "refused"
    r = client.post("/predict", json=arrays(NI))  # no header: the edge energy decides
    assert r.status_code == 422 and "looks like Ni K" in r.json()["detail"]
    r = client.post("/predict", json=arrays(CU, model="nope"))
    assert r.status_code == 404 and "no model 'nope'" in r.json()["detail"]
    assert client.post("/predict/batch", json={"spectra": []}).status_code == 422
    monkeypatch.setattr(serve_app, "MAX_BATCH", 1)
    r = client.post("/predict/batch", json={"spectra": [arrays(CU), arrays(CU)]})
    assert r.status_code == 413 and "at most 1" in r.json()["detail"]
    monkeypatch.setattr(serve_app, "MAX_POINTS", 100)
    r = client.post("/predict", json=arrays(CU))
    assert r.status_code == 413 and "more than 100 points" in r.json()["detail"]
    r = client.post("/predict/file", files={"file": ("junk.bin", b"\x00\x01\x02" * 300)})
    assert r.status_code == 422 and r.json()["detail"].startswith("junk.bin: ")
    r = client.post("/predict/file", data={"model": "x"})
    assert r.status_code == 422 and "file" in json.dumps(r.json()["detail"])
    assert client.get("/predict").status_code == 405


def test_fast_path_answers_as_the_fastapi_route(client, tiny_experiment):
    """POST /predict skips FastAPI's machinery (mlxas.serve.asgi): every kind of answer,
    ok, refused, malformed or unknown model, must be the FastAPI route's, byte for byte."""
    fastapi_app = client.app.app
    assert client.app.app is not client.app  # the fast path is in front
    with TestClient(fastapi_app) as plain:
        bodies = [
            json.dumps(arrays(CU, name="scan_7")),
            json.dumps(arrays(NI, name="ni", element="Ni")),  # refused: not the model's edge
            json.dumps(arrays(CU, model="nope")),
            "{not json",
            json.dumps({"energy": [1.0, 2.0]}),
        ]
        for body in bodies:
            fast = client.post("/predict", content=body)
            slow = plain.post("/predict", content=body)
            assert (fast.status_code, fast.content) == (slow.status_code, slow.content), body[:40]
            assert fast.headers["content-type"] == "application/json"


def test_micro_batcher_runs_waiting_items_together_in_order():
    import asyncio

    from mlxas.serve.batching import MicroBatcher

    sizes: list[int] = []

    def run(items: list) -> list:
        sizes.append(len(items))
        if -1 in items:
            raise ValueError("bad item")
        return [2 * x for x in items]

    async def main(items):
        batcher = MicroBatcher(run, max_batch=8)
        return await asyncio.gather(*(batcher.submit(i) for i in items), return_exceptions=True)

    assert asyncio.run(main(range(20))) == [2 * i for i in range(20)]
    assert sizes == [8, 8, 4]  # everything waiting goes in the next batch, up to max_batch
    sizes.clear()
    got = asyncio.run(main([*range(10), -1, *range(11, 20)]))
    assert sizes == [8, 8, 4]
    # an error fails its own batch only
    assert all(isinstance(g, ValueError) for g in got[8:16])
    assert got[:8] == [2 * i for i in range(8)] and got[16:] == [2 * i for i in range(16, 20)]


def test_a_held_model_does_not_stop_the_event_loop(tiny_experiment):
    """While a series or a file holds the model (served in a worker thread), a single
    spectrum waits for it in a thread too: /health still answers meanwhile."""
    import asyncio
    import threading

    app = create_app(ServeSettings((str(model_path(tiny_experiment)),), allow_short_k=True))
    lock = app.app.state.models[0].lock
    s = read_spectra(CU)[0]
    body = {"name": "held", "energy": s.energy.tolist(), "mu": s.mu.tolist()}
    seen: dict = {}

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serve") as c:
            lock.acquire()  # as /predict/batch holds it in its worker thread
            pending = asyncio.create_task(c.post("/predict", json=body))
            await asyncio.sleep(0.3)
            seen["waiting"] = not pending.done()
            seen["health"] = (await c.get("/health")).status_code
            lock.release()
            seen["predict"] = (await pending).status_code

    # Run in a thread: the old behaviour (the loop itself blocked on the lock) never ends.
    t = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "the event loop stopped while the model was held"
    assert seen == {"waiting": True, "health": 200, "predict": 200}


def test_concurrent_requests_get_the_answers_each_gets_alone(tiny_experiment, reference):
    import asyncio

    app = create_app(ServeSettings((str(model_path(tiny_experiment)),), allow_short_k=True))
    s = read_spectra(CU)[0]
    rng = np.random.default_rng(3)
    bodies = [
        {"name": f"n{i}", "energy": s.energy.tolist(),
         "mu": (s.mu + rng.normal(0.0, 0.003, len(s.mu))).tolist()}
        for i in range(12)
    ]  # fmt: skip

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serve") as c:
            return await asyncio.gather(*(c.post("/predict", json=b) for b in bodies))

    answers = asyncio.run(main())
    p = reference["predictor"]
    for body, answer in zip(bodies, answers, strict=True):
        assert answer.status_code == 200, answer.text
        got = answer.json()["result"]
        alone = record(p.predict_spectra([
            check_arrays(Spectrum(body["name"], s.energy.copy(), np.array(body["mu"]), "json"))
        ])[0])  # fmt: skip
        assert got["source"] == body["name"] and got["e0"] == alone["e0"]
        # the float32 network gives the same numbers to its own precision in any batch
        assert got["cn"] == pytest.approx(alone["cn"], rel=1e-6)
        assert got["r"] == pytest.approx(alone["r"], rel=1e-6)
    assert len({a.json()["result"]["cn"] for a in answers}) > 1  # the noise shows


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_real_server_on_localhost(tiny_experiment, reference):
    port = _free_port()
    cmd = [sys.executable, "-m", "mlxas.serve", str(model_path(tiny_experiment)),
           "--port", str(port), "--allow-short-k"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail(f"server did not start: {proc.stderr.read() if proc.poll() else ''}")
        r = httpx.post(f"{url}/predict", json=arrays(CU, name="cu"), timeout=30)
        assert r.status_code == 200
        _same(r.json()["result"], reference["cu"])
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    bad = subprocess.run(
        [sys.executable, "-m", "mlxas.serve", str(tiny_experiment / "nowhere.json")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode != 0 and "nowhere.json" in bad.stderr
    zero = subprocess.run(
        [sys.executable, "-m", "mlxas.serve", str(model_path(tiny_experiment)), "--max-batch", "0"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert zero.returncode != 0 and "--max-batch must be at least 1" in zero.stderr
