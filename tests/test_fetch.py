"""``spine fetch spider`` against a stand-in Zenodo on 127.0.0.1: a record document in Zenodo's
API format and a small SPIDER-layout download made from the phantom."""

import hashlib
import http.server
import json
import os
import socket
import subprocess
import threading
import zipfile
from pathlib import Path

import pytest

from spine.data import fetch, load_dataset, phantom
from spine.errors import DataError

ROOT = Path(__file__).resolve().parents[1]
PATIENTS = 3


@pytest.fixture(scope="module")
def download(tmp_path_factory) -> dict[str, bytes]:
    """The three files of the record, as Zenodo would serve them."""
    folder = tmp_path_factory.mktemp("spider-source")
    phantom.write_archive(folder, n_patients=PATIENTS, seed=0, sequences=("t1",))
    files = {}
    for name in ("images", "masks"):
        archive = folder / f"{name}.zip"
        with zipfile.ZipFile(archive, "w") as handle:
            for path in sorted((folder / name).iterdir()):
                handle.write(path, f"{name}/{path.name}")
        files[f"{name}.zip"] = archive.read_bytes()
    files["overview.csv"] = b"new_file_name,subset\n1_t1,training\n"
    return files


class Zenodo(http.server.ThreadingHTTPServer):
    """Serves ``/api/records/<id>`` and ``/files/<name>`` (with Range requests); ``drop`` maps a
    file name to a byte count after which its next response is cut off."""

    def __init__(self, files: dict[str, bytes], checksums: dict[str, str] | None = None):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files, self.drop, self.requests = files, {}, []
        self.checksums = {name: f"md5:{hashlib.md5(data).hexdigest()}" for name, data in files.items()}
        self.checksums.update(checksums or {})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def record(self) -> bytes:
        files = [{"id": name, "key": name, "size": len(data), "checksum": self.checksums[name],
                  "links": {"self": f"{self.url}/files/{name}"}} for name, data in self.files.items()]
        return json.dumps({"id": int(fetch.RECORD), "doi": f"10.5281/zenodo.{fetch.RECORD}", "files": files}).encode()


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        if self.path == f"/api/records/{fetch.RECORD}":
            return self._send(200, server.record(), len(server.record()))
        data = server.files.get(self.path.removeprefix("/files/"))
        if data is None:
            return self.send_error(404)
        start = int(self.headers["Range"].split("=")[1].rstrip("-")) if self.headers.get("Range") else 0
        body = data[start:]
        cut = server.drop.pop(self.path.removeprefix("/files/"), None)
        self._send(206 if start else 200, body[:cut], len(body), start, len(data))

    def _send(self, status, body, length, start=0, total=0):
        self.send_response(status)
        self.send_header("Content-Length", str(length))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{total - 1}/{total}")
        self.end_headers()
        self.wfile.write(body)  # fewer bytes than announced: the connection then drops

    def log_message(self, *args):
        pass


@pytest.fixture(autouse=True)
def _own_cache(tmp_path_factory, monkeypatch):
    """Each test starts with no download in its cache."""
    monkeypatch.setenv("SPINE_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def zenodo(download):
    servers = []

    def start(**checksums):
        server = Zenodo(download, checksums)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def file_requests(server) -> list:
    return [r for r in server.requests if r[0].startswith("/files/")]


def test_good_download_unpacks_a_spider_archive(zenodo, tmp_path):
    server = zenodo()
    folder = fetch.fetch_spider(tmp_path / "spider", base_url=server.url, progress=False)
    assert sorted(p.name for p in folder.iterdir()) == [".complete", "images", "masks", "overview.csv"]
    assert len(list((folder / "images").glob("*_t1.mha"))) == PATIENTS
    assert len(load_dataset(folder)) == PATIENTS  # the study's protocol: one central T1 slice each
    assert [p.name for p in tmp_path.iterdir()] == ["spider"]  # no staging folder left
    before = len(server.requests)
    assert fetch.fetch_spider(folder, base_url=server.url) == folder and len(server.requests) == before


def test_wrong_checksum_is_refused_and_nothing_is_unpacked(zenodo, tmp_path):
    server = zenodo(**{"masks.zip": "md5:" + "0" * 32})
    with pytest.raises(DataError, match="checksum does not match"):
        fetch.fetch_spider(tmp_path / "spider", base_url=server.url, progress=False, retries=0)
    assert list(tmp_path.iterdir()) == []
    assert not list((fetch.cache_dir() / "downloads").rglob("masks.zip*"))  # no corrupt file kept


def test_interrupted_download_resumes_where_it_stopped(zenodo, tmp_path, download):
    server = zenodo()
    half = len(download["images.zip"]) // 2
    server.drop["images.zip"] = half
    with pytest.raises(DataError, match="download failed.*resume"):
        fetch.fetch_spider(tmp_path / "spider", base_url=server.url, progress=False, retries=0)
    assert not (tmp_path / "spider").exists()
    (part,) = (fetch.cache_dir() / "downloads").rglob("images.zip.part")
    kept = part.stat().st_size  # what arrived, in whole chunks
    assert 0 < kept <= half
    fetch.fetch_spider(tmp_path / "spider", base_url=server.url, progress=False, retries=0)
    images = [r for r in file_requests(server) if r[0] == "/files/images.zip"]
    assert images == [("/files/images.zip", None), ("/files/images.zip", f"bytes={kept}-")]
    assert len(load_dataset(tmp_path / "spider")) == PATIENTS


def test_a_dropped_connection_is_retried_within_one_fetch(zenodo, tmp_path, download):
    server = zenodo()
    server.drop["images.zip"] = 3 * fetch.CHUNK + 10
    fetch.fetch_spider(tmp_path / "spider", base_url=server.url, progress=False, retries=1)
    images = [r for r in file_requests(server) if r[0] == "/files/images.zip"]
    assert images == [("/files/images.zip", None), ("/files/images.zip", f"bytes={3 * fetch.CHUNK}-")]


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_no_network_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="cannot read the SPIDER record"):
        fetch.fetch_spider(tmp_path / "spider", base_url=closed_port_url(), progress=False)
    with pytest.raises(DataError, match="spine fetch spider"):
        load_dataset("spider")


def spine(*argv, env=None):
    """The installed ``spine`` script, running the tree under test."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([str(Path(os.sys.executable).with_name("spine")), *argv], capture_output=True,
                          text=True, env=environment, timeout=300)


def test_fetch_then_data_spider_through_the_command(zenodo, tmp_path):
    server = zenodo()
    env = {"SPINE_ZENODO_URL": server.url, "SPINE_CACHE": str(tmp_path / "cache")}
    done = spine("fetch", "spider", "--quiet", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path / "cache" / "spider")
    summary = spine("data", "--data", "spider", "--json", env=env)
    assert summary.returncode == 0, summary.stderr
    assert json.loads(summary.stdout)["patients"] == PATIENTS
    offline = spine("fetch", "spider", "--dest", str(tmp_path / "elsewhere"),
                    env={**env, "SPINE_ZENODO_URL": closed_port_url()})
    assert offline.returncode == 1 and len(offline.stderr.strip().splitlines()) == 1
    assert "cannot read the SPIDER record" in offline.stderr
