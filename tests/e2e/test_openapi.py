"""The REST API's OpenAPI document, served by a real front door, passes openapi-spec-validator
(the ecosystem's reference validator), and keeps the API's own conventions: one ErrorBody
schema on every error response, unique operationIds. No Docker needed: a `serve --dev` with a
fixed (dead) upstream serves the document."""

import json
import os
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from conftest import BIN, free_port


@pytest.fixture(scope="module")
def openapi_doc():
    if not BIN.exists():
        pytest.fail(f"{BIN} missing: run `cargo build` first")
    tmp = Path(tempfile.mkdtemp(prefix="fd-openapi-"))
    port, mport = free_port(), free_port()
    env = {**os.environ,
           "FRONTDOOR_DATA_DIR": str(tmp / "data"),
           "FRONTDOOR_SERVER__LISTEN": f"127.0.0.1:{port}",
           "FRONTDOOR_METRICS__LISTEN": f"127.0.0.1:{mport}",
           "FRONTDOOR_GATEWAYS__UPSTREAM_URL": "http://127.0.0.1:9",
           "RUST_LOG": "warn"}
    with open(tmp / "log", "wb") as log:
        proc = subprocess.Popen([BIN, "serve", "--dev"], cwd=tmp, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        cafile = tmp / "data" / "dev" / "tls" / "cert.pem"
        deadline = time.time() + 30
        while True:
            try:
                ctx = ssl.create_default_context(cafile=str(cafile))
                url = f"https://localhost:{port}/api/v1/openapi.json"
                with urllib.request.urlopen(url, context=ctx, timeout=10) as r:
                    yield json.loads(r.read())
                    break
            except (OSError, ssl.SSLError):
                if proc.poll() is not None or time.time() > deadline:
                    pytest.fail(f"front door did not serve: {(tmp / 'log').read_text()}")
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        shutil.rmtree(tmp, ignore_errors=True)


def test_openapi_document_passes_openapi_spec_validator(openapi_doc):
    validate(openapi_doc)  # raises with every violation


def operations(doc):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in ("get", "put", "post", "delete", "patch"):
                yield path, method, op


def test_operation_ids_are_unique(openapi_doc):
    ids = [op["operationId"] for _, _, op in operations(openapi_doc)]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_every_error_response_has_the_error_schema(openapi_doc):
    error = openapi_doc["components"]["schemas"]["ErrorBody"]
    assert set(error["required"]) == {"error", "message"}
    for path, method, op in operations(openapi_doc):
        for status, resp in op["responses"].items():
            assert resp.get("description"), f"{method} {path} {status}"
            if int(status) >= 400:
                schema = resp["content"]["application/json"]["schema"]
                # The one error schema, or a report that carries error + message too.
                ref = schema["$ref"].rsplit("/", 1)[-1]
                props = openapi_doc["components"]["schemas"][ref]["properties"]
                assert {"error", "message"} <= set(props), f"{method} {path} {status}: {ref}"
