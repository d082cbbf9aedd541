"""Tests for nada_utils.weights.download against a local HTTP server; nothing leaves 127.0.0.1."""

import errno
import hashlib
import os
import socket
import sys
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from nada_utils.errors import NadaError
from nada_utils.weights import download, registry

PAYLOAD = os.urandom(300 * 1024)  # a few hundred KB of random bytes
FILENAME = "synthetic.bin"
TIMEOUT = 1.0  # client timeout in the hang test; the hanging handler waits longer than this


class _Handler(BaseHTTPRequestHandler):
    """Serves /<mode>/<file>; the mode picks a behaviour (correct, broken, hanging...)."""

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _headers(self, length, content_type="application/octet-stream"):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def do_GET(self):
        self.server.requests.append(self.path)
        mode = self.path.strip("/").split("/")[0]
        if mode == "ok":
            self._headers(len(PAYLOAD))
            self.wfile.write(PAYLOAD)
        elif mode == "wrong":
            body = bytes(len(PAYLOAD))  # right size, wrong bytes
            self._headers(len(body))
            self.wfile.write(body)
        elif mode == "truncated":
            # Promise the whole file, send half, then close the connection.
            self._headers(len(PAYLOAD))
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
            self.close_connection = True
        elif mode == "html":
            body = b"<!DOCTYPE html><html><body>Quota exceeded</body></html>"
            self._headers(len(body), "text/html; charset=utf-8")
            self.wfile.write(body)
        elif mode == "sneaky-html":
            body = b"  <html><body>Sign in</body></html>"
            self._headers(len(body))
            self.wfile.write(body)
        elif mode == "hang":
            self._headers(len(PAYLOAD))
            self.wfile.write(PAYLOAD[:1024])
            self.wfile.flush()
            self.server.release.wait(10 * TIMEOUT)  # released at teardown so the thread ends
        else:
            self.send_error(404, "Not Found")


@pytest.fixture
def server():
    """A ThreadingHTTPServer on 127.0.0.1 with a free port, stopped and its handlers released at teardown."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.requests = []
    httpd.release = threading.Event()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.release.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def _base(httpd, mode):
    return f"http://127.0.0.1:{httpd.server_address[1]}/{mode}"


@pytest.fixture
def synthetic(monkeypatch, tmp_path):
    """Replace the registry with one synthetic spec whose size and sha256 match PAYLOAD."""
    spec = registry.WeightSpec(
        name="synthetic",
        filename=FILENAME,
        kind="generator-rosinality",
        gdrive_id="FAKE_DRIVE_ID",
        url=None,
        size=len(PAYLOAD),
        sha256=hashlib.sha256(PAYLOAD).hexdigest(),
        description="test payload",
    )
    monkeypatch.setattr(registry, "REGISTRY", {"synthetic": spec})
    monkeypatch.setenv("NADA_CACHE", str(tmp_path))
    monkeypatch.delenv("NADA_MIRROR", raising=False)
    return spec


def _assert_clean(tmp_path):
    """Nothing under the final name, no sidecar and no part files left behind."""
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert leftovers == [], leftovers


def _assert_one_line_with_path(exc_info, tmp_path):
    message = str(exc_info.value)
    assert "\n" not in message
    assert str(tmp_path / FILENAME) in message
    assert FILENAME in message
    return message


def test_fetch_downloads_atomically_and_writes_sidecar(server, synthetic, monkeypatch, tmp_path):
    monkeypatch.setenv("NADA_MIRROR", _base(server, "ok") + "/")
    path = download.fetch("synthetic", quiet=True, timeout=TIMEOUT)
    assert path == tmp_path / FILENAME
    assert path.read_bytes() == PAYLOAD
    sidecar = tmp_path / (FILENAME + ".sha256")
    assert sidecar.read_text().split()[0] == synthetic.sha256
    assert sorted(p.name for p in tmp_path.iterdir()) == [FILENAME, FILENAME + ".sha256"]
    assert server.requests == [f"/ok/{FILENAME}"]


def test_second_fetch_makes_no_request_and_does_not_rehash(server, synthetic, monkeypatch):
    monkeypatch.setenv("NADA_MIRROR", _base(server, "ok"))
    first = download.fetch("synthetic", quiet=False, timeout=TIMEOUT)  # quiet=False exercises tqdm
    monkeypatch.setattr(download, "sha256_file", lambda *a, **k: pytest.fail("present file was hashed again"))
    assert download.fetch("synthetic", quiet=True, timeout=TIMEOUT) == first
    assert len(server.requests) == 1


def test_hand_placed_file_is_hashed_once_then_trusted(synthetic, tmp_path):
    (tmp_path / FILENAME).write_bytes(PAYLOAD)
    assert download.fetch("synthetic", quiet=True) == tmp_path / FILENAME  # no mirror set: no network used
    assert (tmp_path / (FILENAME + ".sha256")).is_file()


def test_present_file_with_wrong_size_is_reported_damaged(synthetic, tmp_path):
    (tmp_path / FILENAME).write_bytes(PAYLOAD[:100])
    with pytest.raises(NadaError, match="damaged") as info:
        download.fetch("synthetic", quiet=True)
    assert "delete it" in _assert_one_line_with_path(info, tmp_path)


def test_present_file_with_wrong_bytes_is_reported_damaged(synthetic, tmp_path):
    (tmp_path / FILENAME).write_bytes(bytes(len(PAYLOAD)))
    with pytest.raises(NadaError, match="damaged"):
        download.fetch("synthetic", quiet=True)
    assert not (tmp_path / (FILENAME + ".sha256")).exists()


@pytest.mark.parametrize(
    "mode, expected",
    [
        ("wrong", "checksum mismatch"),
        ("truncated", "truncated"),
        ("html", "HTML page"),
        ("sneaky-html", "HTML page"),
        ("hang", "stopped answering"),
        ("missing", "HTTP error 404"),
    ],
)
def test_failures_raise_one_line_and_leave_nothing(server, synthetic, monkeypatch, tmp_path, mode, expected):
    monkeypatch.setenv("NADA_MIRROR", _base(server, mode))
    with pytest.raises(NadaError) as info:
        download.fetch("synthetic", quiet=True, timeout=TIMEOUT)
    message = _assert_one_line_with_path(info, tmp_path)
    assert expected in message
    assert "300.0 KiB" in message and _base(server, mode) in message
    _assert_clean(tmp_path)


def test_connection_refused(synthetic, monkeypatch, tmp_path):
    with socket.socket() as sock:  # grab a free port, then close it so nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("NADA_MIRROR", f"http://127.0.0.1:{port}")
    with pytest.raises(NadaError, match="cannot connect") as info:
        download.fetch("synthetic", quiet=True, timeout=TIMEOUT)
    _assert_one_line_with_path(info, tmp_path)
    _assert_clean(tmp_path)


def test_disk_full(server, synthetic, monkeypatch, tmp_path):
    class FullDisk:
        """A file object whose writes fail like a full disk, but which really exists on disk."""

        def __init__(self, path, mode):
            self._f = open(path, mode)  # noqa: SIM115 - closed by __exit__, like a real file

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._f.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    # download.py's `open` resolves through its module globals before builtins.
    monkeypatch.setattr(download, "open", FullDisk, raising=False)
    monkeypatch.setenv("NADA_MIRROR", _base(server, "ok"))
    with pytest.raises(NadaError, match="disk full") as info:
        download.fetch("synthetic", quiet=True, timeout=TIMEOUT)
    assert "NADA_CACHE" in _assert_one_line_with_path(info, tmp_path)
    _assert_clean(tmp_path)


def test_download_killed_midway_never_leaves_a_final_name_and_its_part_is_cleared(server, tmp_path):
    import signal
    import subprocess
    import time

    dest = tmp_path / FILENAME
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    code = (f"from nada_utils.weights.download import download_url; download_url({_base(server, 'hang') + '/' + FILENAME!r}, "
            f"{str(dest)!r}, size={len(PAYLOAD)}, sha256={sha!r}, quiet=True, timeout=60)")
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 60
    while time.time() < deadline and not list(tmp_path.glob(f"{FILENAME}.part-*")):
        time.sleep(0.05)
    time.sleep(0.3)  # the server sent the first KiB and stalls: the download is mid-way
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not dest.exists() and len(list(tmp_path.glob(f"{FILENAME}.part-*"))) == 1
    download.download_url(_base(server, "ok") + "/" + FILENAME, dest, size=len(PAYLOAD), sha256=sha, quiet=True)
    assert dest.read_bytes() == PAYLOAD
    assert not list(tmp_path.glob(f"{FILENAME}.part-*")), "the killed download's part file was left behind"


def test_download_url_is_usable_on_its_own(server, tmp_path):
    dest = tmp_path / "sub" / "copy.bin"
    out = download.download_url(_base(server, "ok") + "/x", dest, size=len(PAYLOAD), quiet=True, timeout=TIMEOUT)
    assert out == dest and dest.read_bytes() == PAYLOAD
    assert download.sha256_file(dest) == hashlib.sha256(PAYLOAD).hexdigest()


def test_unknown_name_lists_known_names(synthetic):
    with pytest.raises(NadaError, match="synthetic"):
        download.fetch("nope", quiet=True)


def _fake_gdown(monkeypatch, body=PAYLOAD, error=None):
    """Install a fake `gdown` that accepts only the keywords every gdown version has."""
    calls = []

    def fake_download(*, id, output, quiet, resume=False):  # any other keyword is a TypeError
        calls.append({"id": id, "output": output, "quiet": quiet})
        if error is not None:
            raise error
        with open(output, "wb") as f:
            f.write(body)
        return output

    monkeypatch.setitem(sys.modules, "gdown", types.SimpleNamespace(download=fake_download))
    return calls


def test_gdown_is_called_with_allowed_kwargs_only(synthetic, monkeypatch, tmp_path):
    calls = _fake_gdown(monkeypatch)
    path = download.fetch("synthetic", quiet=True)
    assert path.read_bytes() == PAYLOAD
    assert calls == [{"id": "FAKE_DRIVE_ID", "output": calls[0]["output"], "quiet": True}]
    assert ".part-" in calls[0]["output"]  # gdown writes the temporary name, never the final one
    assert (tmp_path / (FILENAME + ".sha256")).is_file()


def test_gdown_quota_page_is_reported(synthetic, monkeypatch, tmp_path):
    _fake_gdown(monkeypatch, body=b"<!DOCTYPE html><html>Too many users</html>")
    with pytest.raises(NadaError, match="Google Drive refused it.*copy the file into your own Drive") as info:
        download.fetch("synthetic", quiet=True)
    _assert_one_line_with_path(info, tmp_path)
    _assert_clean(tmp_path)


def test_url_is_tried_before_drive(server, synthetic, monkeypatch, tmp_path):
    spec = registry.WeightSpec(**{**synthetic.__dict__, "url": _base(server, "missing") + "/" + FILENAME})
    monkeypatch.setattr(registry, "REGISTRY", {"synthetic": spec})
    calls = _fake_gdown(monkeypatch, error=RuntimeError("Too many users have viewed or downloaded this file"))
    with pytest.raises(NadaError, match="from any source") as info:
        download.fetch("synthetic", quiet=True, timeout=TIMEOUT)
    message = _assert_one_line_with_path(info, tmp_path)
    assert "404" in message and "Too many users" in message
    assert server.requests == [f"/missing/{FILENAME}"] and len(calls) == 1
    _assert_clean(tmp_path)
