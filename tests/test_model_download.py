"""Model download against a real HTTP server on 127.0.0.1 serving small fake model archives."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from voicecoach.listening.model_download import (
    URL_ENV,
    DownloadProgress,
    ModelDownloadError,
    download_model,
    format_progress,
    print_progress,
)
from voicecoach.listening.vosk import is_model_dir

pytestmark = pytest.mark.engine

NAME = "vosk-model-small-test-0.1"
_MODEL_FILES = {
    "am/final.mdl": os.urandom(400_000),  # incompressible, so the download takes several reads
    "conf/model.conf": b"--min-active=200\n",
    "conf/mfcc.conf": b"--use-energy=false\n",
    "graph/HCLr.fst": b"fst",
    "README": b"a fake model for tests\n",
}


def _zip(files: dict[str, bytes], top: str = NAME) -> bytes:
    """A zip archive with every file under top/ (or at the given names when top is empty)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(f"{top}/{name}" if top else name, data)
    return buffer.getvalue()


GOOD_ZIP = _zip(_MODEL_FILES)


@dataclass
class Route:
    """What the server answers for one path."""

    body: bytes
    claimed_length: int | None = None
    """Content-Length to send; None sends the true length, -1 sends none."""
    status: int = 200


@dataclass
class FakeServer:
    """An HTTP server on an ephemeral loopback port with settable routes."""

    base_url: str
    routes: dict[str, Route] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)

    def url(self, path: str, route: Route) -> str:
        """Serve route at path; return its URL."""
        self.routes[path] = route
        return self.base_url + path


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer("")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            fake.hits.append(self.path)
            route = fake.routes.get(self.path, Route(b"not found", status=404))
            self.send_response(route.status)
            if route.claimed_length != -1:
                length = len(route.body) if route.claimed_length is None else route.claimed_length
                self.send_header("Content-Length", str(length))
            self.end_headers()
            self.wfile.write(route.body)
            self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            """Keep test output quiet."""

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield fake
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "models"


def _assert_nothing_left(dest: Path) -> None:
    """No temp file, no unpack folder, no partial model: the folder is empty (or was never made)."""
    assert not dest.exists() or sorted(p.name for p in dest.iterdir()) == []


# --- success ------------------------------------------------------------------------------------


def test_download_installs_the_model_and_reports_progress(server: FakeServer, dest: Path) -> None:
    url = server.url("/model.zip", Route(GOOD_ZIP))
    reports: list[DownloadProgress] = []
    sha = hashlib.sha256(GOOD_ZIP).hexdigest()
    path = download_model(url, dest, NAME, expected_sha256=sha.upper(), progress=reports.append)
    assert path == dest / NAME and is_model_dir(path)
    assert (path / "am" / "final.mdl").read_bytes() == _MODEL_FILES["am/final.mdl"]
    assert sorted(p.name for p in dest.iterdir()) == [NAME]  # only the model: no temp files left
    assert reports and reports[-1].finished and reports[-1].done_bytes == len(GOOD_ZIP)
    assert reports[-1].total_bytes == len(GOOD_ZIP) and reports[-1].fraction == 1.0
    assert [r.done_bytes for r in reports] == sorted(r.done_bytes for r in reports)


def test_top_folder_name_in_the_archive_does_not_matter(server: FakeServer, dest: Path) -> None:
    url = server.url("/mirror.zip", Route(_zip(_MODEL_FILES, top="some-other-name")))
    assert download_model(url, dest, NAME) == dest / NAME
    assert sorted(p.name for p in dest.iterdir()) == [NAME]


def test_url_comes_from_the_environment_when_not_given(
    server: FakeServer, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(URL_ENV, server.url("/env.zip", Route(GOOD_ZIP)))
    assert is_model_dir(download_model(None, dest, NAME))
    assert server.hits == ["/env.zip"]


def test_unknown_length_still_downloads(server: FakeServer, dest: Path) -> None:
    url = server.url("/nolength.zip", Route(GOOD_ZIP, claimed_length=-1))
    reports: list[DownloadProgress] = []
    assert is_model_dir(download_model(url, dest, NAME, progress=reports.append))
    assert reports[-1].total_bytes is None and reports[-1].fraction is None


def test_already_installed_is_a_no_op(server: FakeServer, dest: Path) -> None:
    url = server.url("/model.zip", Route(GOOD_ZIP))
    path = download_model(url, dest, NAME)
    (path / "marker").write_text("mine")
    assert download_model(url, dest, NAME) == path
    assert (path / "marker").read_text() == "mine"
    assert server.hits == ["/model.zip"]  # the second call did not even ask


def test_force_replaces_an_installed_model(server: FakeServer, dest: Path) -> None:
    url = server.url("/model.zip", Route(GOOD_ZIP))
    path = download_model(url, dest, NAME)
    (path / "marker").write_text("old")
    assert download_model(url, dest, NAME, force=True) == path
    assert not (path / "marker").exists() and is_model_dir(path)
    assert sorted(p.name for p in dest.iterdir()) == [NAME]


# --- failures leave nothing behind --------------------------------------------------------------


def test_body_shorter_than_content_length_fails_and_leaves_nothing(server: FakeServer, dest: Path) -> None:
    url = server.url("/short.zip", Route(GOOD_ZIP, claimed_length=len(GOOD_ZIP) + 5000))
    with pytest.raises(ModelDownloadError, match=r"download truncated: got \d+ of \d+ bytes"):
        download_model(url, dest, NAME)
    _assert_nothing_left(dest)


def test_zip_cut_in_half_fails_and_leaves_nothing(server: FakeServer, dest: Path) -> None:
    url = server.url("/half.zip", Route(GOOD_ZIP[: len(GOOD_ZIP) // 2]))
    with pytest.raises(ModelDownloadError, match="archive is damaged or not a zip file"):
        download_model(url, dest, NAME)
    _assert_nothing_left(dest)


def test_corrupted_member_fails_the_zip_test_and_leaves_nothing(server: FakeServer, dest: Path) -> None:
    data = bytearray(_zip(_MODEL_FILES))
    at = data.index(_MODEL_FILES["am/final.mdl"][1000:1016])  # stored bytes: urandom does not deflate
    data[at] ^= 0xFF
    url = server.url("/crc.zip", Route(bytes(data)))
    with pytest.raises(ModelDownloadError, match="archive is damaged"):
        download_model(url, dest, NAME)
    _assert_nothing_left(dest)


def test_wrong_sha256_fails_and_leaves_nothing(server: FakeServer, dest: Path) -> None:
    url = server.url("/model.zip", Route(GOOD_ZIP))
    with pytest.raises(ModelDownloadError, match="sha256 mismatch: expected 0{64}, got [0-9a-f]{64}"):
        download_model(url, dest, NAME, expected_sha256="0" * 64)
    _assert_nothing_left(dest)


@pytest.mark.parametrize("name", ["", "..", "a/b", "../up"])
def test_a_model_name_must_be_a_plain_folder_name(server: FakeServer, dest: Path, name: str) -> None:
    with pytest.raises(ModelDownloadError, match="plain folder name"):
        download_model(server.url("/model.zip", Route(GOOD_ZIP)), dest, name)
    assert server.hits == []


def test_a_malformed_sha256_is_refused_before_downloading(server: FakeServer, dest: Path) -> None:
    url = server.url("/model.zip", Route(GOOD_ZIP))
    with pytest.raises(ModelDownloadError, match="not a sha256"):
        download_model(url, dest, NAME, expected_sha256="abc123")
    assert server.hits == []
    _assert_nothing_left(dest)


@pytest.mark.parametrize("evil", ["../evil.txt", f"{NAME}/../../evil.txt", "/tmp/evil.txt", "C:/evil.txt"])
def test_path_traversal_member_is_refused(server: FakeServer, tmp_path: Path, evil: str) -> None:
    dest = tmp_path / "deep" / "models"
    archive = _zip({**{f"{NAME}/{k}": v for k, v in _MODEL_FILES.items()}, evil: b"owned"}, top="")
    url = server.url("/evil.zip", Route(archive))
    with pytest.raises(ModelDownloadError, match="unsafe member in archive"):
        download_model(url, dest, NAME)
    _assert_nothing_left(dest)
    assert not list(tmp_path.rglob("evil.txt"))


def test_archive_without_a_model_layout_is_refused(server: FakeServer, dest: Path) -> None:
    files = {k: v for k, v in _MODEL_FILES.items() if k != "am/final.mdl"}
    url = server.url("/nolayout.zip", Route(_zip(files)))
    with pytest.raises(ModelDownloadError, match="lacks am/final.mdl"):
        download_model(url, dest, NAME)
    _assert_nothing_left(dest)


def test_two_top_folders_are_refused(server: FakeServer, dest: Path) -> None:
    archive = _zip({**{f"a/{k}": v for k, v in _MODEL_FILES.items()}, "b/x": b"x"}, top="")
    url = server.url("/two.zip", Route(archive))
    with pytest.raises(ModelDownloadError, match="expected one top folder"):
        download_model(url, dest, NAME)
    _assert_nothing_left(dest)


def test_http_error_is_one_clear_line(server: FakeServer, dest: Path) -> None:
    with pytest.raises(ModelDownloadError, match="HTTP 404") as info:
        download_model(server.base_url + "/missing.zip", dest, NAME)
    assert "\n" not in str(info.value)
    _assert_nothing_left(dest)


def test_interrupt_mid_download_leaves_nothing(server: FakeServer, dest: Path) -> None:
    url = server.url("/model.zip", Route(GOOD_ZIP))

    def interrupt(progress: DownloadProgress) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        download_model(url, dest, NAME, progress=interrupt)
    _assert_nothing_left(dest)


def test_failed_force_keeps_the_installed_model(server: FakeServer, dest: Path) -> None:
    path = download_model(server.url("/model.zip", Route(GOOD_ZIP)), dest, NAME)
    with pytest.raises(ModelDownloadError):
        download_model(server.url("/half.zip", Route(GOOD_ZIP[:1000])), dest, NAME, force=True)
    assert is_model_dir(path) and sorted(p.name for p in dest.iterdir()) == [NAME]


def test_a_folder_in_the_way_is_not_overwritten_without_force(server: FakeServer, dest: Path) -> None:
    (dest / NAME).mkdir(parents=True)
    (dest / NAME / "notes.txt").write_text("mine")
    with pytest.raises(ModelDownloadError, match="exists but is not a Vosk model"):
        download_model(server.url("/model.zip", Route(GOOD_ZIP)), dest, NAME)
    assert (dest / NAME / "notes.txt").read_text() == "mine" and server.hits == []


# --- progress text ------------------------------------------------------------------------------


def test_format_progress_with_and_without_a_total() -> None:
    half = DownloadProgress(done_bytes=20_000_000, total_bytes=40_000_000, elapsed_s=10.0)
    assert format_progress(half, width=10) == "[#####.....]  50%  20.0 of 40.0 MB  2.0 MB/s"
    assert format_progress(DownloadProgress(1_500_000, None, 0.0)) == "1.5 MB  0.0 MB/s"


def test_print_progress_redraws_one_line_and_ends_it() -> None:
    out = io.StringIO()
    report = print_progress(out)
    report(DownloadProgress(1, 4, 1.0))
    report(DownloadProgress(4, 4, 2.0, finished=True))
    assert out.getvalue().count("\r") == 2 and out.getvalue().endswith("100%  0.0 of 0.0 MB  0.0 MB/s\n")
