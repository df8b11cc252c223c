"""Published models by name, hf:// and URLs: downloads from a real HTTP server on 127.0.0.1 (cut connections,
resumes, wrong checksums, Google Drive's warning page, a server that is down), the cache, `python -m
magnet.models`, and the loaders and generate.py reading a model by its name. Never the internet."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import torch
from hydra import compose, initialize_config_dir

from magnet import build_discriminator, build_generator, load_discriminator, load_generator
from magnet.errors import MissingFileError, UserError
from magnet.models import download as download_module
from magnet.models.hub import parse_hub_ref
from magnet.models.registry import MODELS
from magnet.models.resolve import checkpoint_reference, resolve_checkpoint
from magnet.training.module import GAN

ROOT = Path(__file__).resolve().parents[1]
DRIVE_ID = "15-bJ9QyLGJqd97pAK9_O12cEQV9591o8"  # MAGnet's, as in the registry
HUB_COMMIT = "0123456789abcdef0123456789abcdef01234567"
TINY_NETWORK = dict(arch="swagan", size=32, style_dim=16, n_mlp=2, channel_multiplier=1, channel_max=16)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> bytes:
    """A 32 px SWAGAN of ours in rosinality's layout (g, d, g_ema), as the bytes of its file."""
    torch.manual_seed(0)
    g = build_generator(**TINY_NETWORK)
    d = build_discriminator("swagan", 32, channel_multiplier=1, channel_max=16)
    path = tmp_path_factory.mktemp("tiny") / "tiny.pt"
    torch.save({"g": g.state_dict(), "d": d.state_dict(), "g_ema": g.state_dict()}, path)
    return path.read_bytes()


class Server:
    """Files over HTTP with Range support, a Google Drive stand-in (/uc) and a Hugging Face Hub stand-in
    (/<owner>/<repo>/resolve/<revision>/<path>); logs (method, path, Range) of every request."""

    def __init__(self):
        self.files: dict[str, bytes] = {}  # path (or Drive id, or Hub repo/path) -> body
        self.log: list[tuple[str, str, str | None]] = []
        self.cuts: list[int] = []  # the next replies of a file stop after this many body bytes
        self.errors: list[int] = []  # the next replies of a file are these HTTP errors
        self.ranges = True  # honour Range requests
        self.drive = "form"  # how /uc asks to confirm: form | cookie | quota (a page with no way on)
        self.delay = 0.0  # seconds before each file reply
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                owner.serve(self)

            def do_HEAD(self):
                owner.serve(self)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def gets(self) -> list[tuple[str, str | None]]:
        return [(path, byte_range) for method, path, byte_range in self.log if method == "GET"]

    def serve(self, h: BaseHTTPRequestHandler) -> None:
        self.log.append((h.command, h.path, h.headers.get("Range")))
        parts = urlsplit(h.path)
        query = dict(parse_qsl(parts.query))
        if parts.path == "/uc":
            return self.drive_page(h, query)
        if parts.path == "/usercontent/download":  # where Drive's form leads
            if query.get("confirm") != "t" or query.get("uuid") != "u-1":
                return self.reply(h, 400, b"bad form", "text/plain")
            return self.send_file(h, self.files.get(query.get("id", "")))
        if "/resolve/" in parts.path:  # the Hub: /<owner>/<repo>/resolve/<revision>/<path>
            repo, _, rest = parts.path.strip("/").partition("/resolve/")
            body = self.files.get(f"{repo}/{rest.partition('/')[2]}")
            headers = {"X-Repo-Commit": HUB_COMMIT, "ETag": f'"{hashlib.sha256(body).hexdigest()}"'} if body else {}
            return self.send_file(h, body, headers)
        return self.send_file(h, self.files.get(parts.path))

    def drive_page(self, h, query: dict[str, str]) -> None:
        """Drive's answer to /uc?export=download&id=...: its 'cannot scan for viruses' page, then the file."""
        file_id = query.get("id", "")
        if self.drive == "form":  # today: a redirect to drive.usercontent, whose page has a form
            if "redirected" not in query:
                return self.reply(h, 303, b"", "text/html", {"Location": f"{h.path}&redirected=1"})
            page = (f'<html><body><p>Google Drive can\'t scan this file for viruses.</p><form id="download-form" '
                    f'action="{self.url}/usercontent/download" method="get"><input type="submit" value="Download">'
                    f'<input type="hidden" name="id" value="{file_id}"><input type="hidden" name="export" '
                    'value="download"><input type="hidden" name="confirm" value="t"><input type="hidden" '
                    'name="uuid" value="u-1"></form></body></html>')
            return self.reply(h, 200, page.encode(), "text/html; charset=utf-8")
        cookie = f"download_warning_13058_{file_id}=TOKEN1"
        if self.drive == "cookie" and query.get("confirm") == "TOKEN1" and cookie in (h.headers.get("Cookie") or ""):
            return self.send_file(h, self.files.get(file_id))
        headers = {"Set-Cookie": f"{cookie}; Path=/uc; HttpOnly"} if self.drive == "cookie" else {}
        return self.reply(h, 200, b"<html><body>Too many users have viewed or downloaded this file.</body></html>",
                          "text/html; charset=utf-8", headers)

    def send_file(self, h, body: bytes | None, headers: dict | None = None) -> None:
        if body is None:
            return self.reply(h, 404, b"not found", "text/plain")
        time.sleep(self.delay)
        if self.errors:
            return self.reply(h, self.errors.pop(0), b"busy", "text/plain")
        start, status = 0, 200
        byte_range = h.headers.get("Range")
        if byte_range and self.ranges:
            start, status = int(byte_range.removeprefix("bytes=").rstrip("-")), 206
            if start >= len(body):
                return self.reply(h, 416, b"", "text/plain", {"Content-Range": f"bytes */{len(body)}"})
            headers = {**(headers or {}), "Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}"}
        cut = self.cuts.pop(0) if self.cuts and h.command == "GET" else None
        self.reply(h, status, body[start:], "application/octet-stream", headers or {}, cut)

    @staticmethod
    def reply(h, status: int, body: bytes, content_type: str, headers: dict | None = None,
              cut: int | None = None) -> None:
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            h.send_header(key, value)
        h.end_headers()
        if h.command == "GET":
            h.wfile.write(body[:cut])
        h.wfile.flush()
        h.close_connection = True


@pytest.fixture
def server():
    s = Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty models cache (MAGNET_CACHE) and downloads that retry at once."""
    monkeypatch.setenv("MAGNET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(download_module, "RETRY_WAIT", 0.0)
    return tmp_path / "cache" / "models"


def publish_locally(monkeypatch, server: Server, body: bytes, **changes):
    """The registry's `magnet` entry with Google Drive's host replaced by the local server's."""
    server.files[DRIVE_ID] = body
    model = MODELS.get("magnet")
    local = replace(model, source=model.source.replace("https://drive.google.com", server.url), **changes)
    monkeypatch.setitem(MODELS._entries, "magnet", local)
    return local


def sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


# ---------------------------------------------------------------------------------------------- by name


def test_a_name_downloads_through_drives_warning_once_then_comes_from_the_cache(
        server, cache, monkeypatch, capsys, tiny_checkpoint):
    publish_locally(monkeypatch, server, tiny_checkpoint)
    path = resolve_checkpoint("magnet")
    assert path == cache / "MAGnet_250.pt" and path.read_bytes() == tiny_checkpoint
    assert [p for p, _ in server.gets()] == [
        f"/uc?export=download&id={DRIVE_ID}", f"/uc?export=download&id={DRIVE_ID}&redirected=1",
        f"/usercontent/download?id={DRIVE_ID}&export=download&confirm=t&uuid=u-1"]
    err = capsys.readouterr().err
    kb = f"{len(tiny_checkpoint) / 1000:.1f}"
    assert re.search(rf"^magnet \(MAGnet_250.pt\) ━+ {kb}/{kb} kB ", err, re.MULTILINE)  # the progress bar
    assert f"downloaded magnet (MAGnet_250.pt) to {path} ({len(tiny_checkpoint):,} bytes, sha256 " \
           f"{sha256(tiny_checkpoint)})" in err.replace("\n", "")
    assert sorted(p.name for p in cache.iterdir()) == ["MAGnet_250.pt", "MAGnet_250.pt.lock"]  # no .part left

    requests = len(server.log)
    assert load_generator("magnet").config.size == 32  # the loaders take the name too
    assert load_discriminator("magnet").config.size == 32
    assert resolve_checkpoint("magnet") == path
    assert len(server.log) == requests  # cached: no request at all


def test_drives_older_cookie_confirmation_and_a_page_without_a_way_on(server, cache, monkeypatch, tiny_checkpoint):
    publish_locally(monkeypatch, server, tiny_checkpoint)
    server.drive = "quota"
    with pytest.raises(UserError, match=r"^could not download magnet \(MAGnet_250.pt\) from http://127.0.0.1:\d+/uc"
                                        r"\?export=download&id=\S+: the server sent a web page, not the file") as err:
        resolve_checkpoint("magnet")
    assert "\n" not in str(err.value) and not (cache / "MAGnet_250.pt").exists()
    server.drive = "cookie"
    assert resolve_checkpoint("magnet").read_bytes() == tiny_checkpoint
    assert server.gets()[-1][0] == f"/uc?export=download&id={DRIVE_ID}&confirm=TOKEN1"


@pytest.mark.parametrize("ranges", [True, False], ids=["range", "no-range-support"])
def test_a_cut_connection_is_resumed_with_range_and_ends_with_the_right_sha256(
        server, cache, monkeypatch, tiny_checkpoint, ranges):
    publish_locally(monkeypatch, server, tiny_checkpoint, sha256=sha256(tiny_checkpoint), size=len(tiny_checkpoint))
    server.drive, server.ranges = "cookie", ranges
    half = len(tiny_checkpoint) // 2
    server.cuts = [half]
    path = resolve_checkpoint("magnet")
    assert sha256(path.read_bytes()) == sha256(tiny_checkpoint)
    file_requests = [byte_range for p, byte_range in server.gets() if "confirm=" in p]
    assert file_requests == [None, f"bytes={half}-"]  # without Range support the server sent it all again


def test_a_part_left_by_an_interrupted_run_is_resumed(server, cache, monkeypatch, tiny_checkpoint):
    publish_locally(monkeypatch, server, tiny_checkpoint, sha256=sha256(tiny_checkpoint))
    server.drive = "cookie"
    cache.mkdir(parents=True)
    (cache / "MAGnet_250.pt.part").write_bytes(tiny_checkpoint[:1000])
    assert resolve_checkpoint("magnet").read_bytes() == tiny_checkpoint
    assert [r for p, r in server.gets() if "confirm=" in p] == ["bytes=1000-"]


def test_a_part_longer_than_the_file_and_server_errors_are_got_past(server, cache, tiny_checkpoint):
    server.files["/g.pt"], server.errors = tiny_checkpoint, [503, 500]
    url = f"{server.url}/g.pt"
    dest = cache / "urls" / hashlib.sha256(url.encode()).hexdigest()[:16] / "g.pt"
    dest.parent.mkdir(parents=True)
    dest.with_name("g.pt.part").write_bytes(tiny_checkpoint + b"stale bytes of another version")
    assert resolve_checkpoint(url) == dest and dest.read_bytes() == tiny_checkpoint
    assert [r for _, r in server.gets()] == [f"bytes={len(tiny_checkpoint) + 30}-"] * 3 + [None]  # 503, 500, 416


@pytest.mark.parametrize("wrong", ["sha256", "size"])
def test_a_file_that_is_not_the_published_one_is_refused_and_removed(
        server, cache, monkeypatch, tiny_checkpoint, wrong):
    expected = {"sha256": "0" * 64} if wrong == "sha256" else {"size": len(tiny_checkpoint) + 1}
    publish_locally(monkeypatch, server, tiny_checkpoint, **expected)
    with pytest.raises(UserError, match=rf"^downloaded magnet \(MAGnet_250.pt\) from \S+, but it is not the "
                                        rf"published file \({wrong if wrong == 'sha256' else ''}.*expected") as err:
        resolve_checkpoint("magnet")
    assert "\n" not in str(err.value) and "removed it" in str(err.value)
    assert list(cache.iterdir()) == [cache / "MAGnet_250.pt.lock"]  # neither the file nor its part


def test_a_server_that_is_down_is_one_line_naming_the_url_and_what_to_do_instead(cache, monkeypatch):
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    model = MODELS.get("metfaces")
    url = f"http://127.0.0.1:{port}/pretrained/metfaces.pkl"
    monkeypatch.setitem(MODELS._entries, "metfaces", replace(model, source=url))
    start = time.monotonic()
    with pytest.raises(UserError) as err:
        resolve_checkpoint("metfaces")
    assert time.monotonic() - start < 2  # refused: no point in trying again
    assert str(err.value) == (f"could not download metfaces (metfaces.pkl) from {url}: connection refused; "
                              f"download it yourself and save it as {cache / 'metfaces.pkl'}, or give the path of "
                              "your copy instead")


def test_a_server_that_never_answers_is_given_up_after_the_attempts(server, cache, monkeypatch, tiny_checkpoint):
    monkeypatch.setattr(download_module, "TIMEOUT", 0.3)
    monkeypatch.setattr(download_module, "ATTEMPTS", 2)
    server.files["/slow.pt"], server.delay = tiny_checkpoint, 2.0
    with pytest.raises(UserError, match=r"/slow.pt: no whole reply within 0.3 s \(2 attempts without progress\); "):
        resolve_checkpoint(f"{server.url}/slow.pt")


def test_concurrent_processes_download_once(server, cache, tiny_checkpoint):
    server.files["/g.pt"], server.delay = tiny_checkpoint, 0.3
    url = f"{server.url}/g.pt"
    paths = []
    threads = [threading.Thread(target=lambda: paths.append(resolve_checkpoint(url))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(paths)) == 1 and paths[0].read_bytes() == tiny_checkpoint
    assert len(server.gets()) == 1


def test_a_cache_that_cannot_be_written_says_how_to_move_it(server, tmp_path, monkeypatch, tiny_checkpoint):
    (tmp_path / "a_file").write_text("")
    monkeypatch.setenv("MAGNET_CACHE", str(tmp_path / "a_file"))
    server.files["/g.pt"] = tiny_checkpoint
    with pytest.raises(UserError, match=r"^cannot create the model cache .*a_file/models/urls/\w+ \(Not a directory\); "
                                        r"set MAGNET_CACHE to a folder you can write to$"):
        resolve_checkpoint(f"{server.url}/g.pt")
    assert server.gets() == []


# ---------------------------------------------------------------------------------------------- URLs, paths


def test_a_url_is_cached_under_its_file_name_and_a_published_url_shares_the_names_file(
        server, cache, monkeypatch, tiny_checkpoint):
    server.files["/models/g%20v2.pt"] = tiny_checkpoint
    path = resolve_checkpoint(f"{server.url}/models/g%20v2.pt")
    assert path.name == "g v2.pt" and path.parent.parent == cache / "urls" and path.read_bytes() == tiny_checkpoint
    assert resolve_checkpoint(f"{server.url}/models/g%20v2.pt") == path and len(server.gets()) == 1
    server.files["/pretrained/metfaces.pkl"] = b"not really a pickle"
    url = f"{server.url}/pretrained/metfaces.pkl"
    monkeypatch.setitem(MODELS._entries, "metfaces", replace(MODELS.get("metfaces"), source=url))
    assert resolve_checkpoint(url) == resolve_checkpoint("metfaces") == cache / "metfaces.pkl"
    with pytest.raises(UserError, match=r"/missing.pt: HTTP 404; download it yourself"):
        resolve_checkpoint(f"{server.url}/missing.pt")


def test_paths_and_names(tmp_path, cache, monkeypatch, tiny_checkpoint):
    cache.mkdir(parents=True)
    (cache / "MAGnet_250.pt").write_bytes(tiny_checkpoint)  # a copy put in the cache by hand works offline
    monkeypatch.chdir(tmp_path)
    Path("magnet").mkdir()  # a folder of the same name, as in the repository root
    assert resolve_checkpoint("magnet") == cache / "MAGnet_250.pt"
    assert GAN(network=TINY_NETWORK, init_from="magnet").G.config.size == 32  # model.init_from=magnet
    Path("g.pt").write_bytes(tiny_checkpoint)
    assert resolve_checkpoint("g.pt") == Path("g.pt") and resolve_checkpoint(Path("magnet")) == Path("magnet")
    with pytest.raises(MissingFileError, match=r"^checkpoint nowhere.pt does not exist and is not a model name; "
                                               r"give .*\(afhqcat, afhqdog, afhqwild, brecahad, cifar10, ffhq, "
                                               r"magnet, metfaces: python -m magnet.models\)"):
        resolve_checkpoint("nowhere.pt")
    assert checkpoint_reference("magnet") == "magnet"
    assert checkpoint_reference("hf://a/b/c.pt") == "hf://a/b/c.pt"
    assert checkpoint_reference("g.pt") == str(tmp_path / "g.pt")


def test_the_registry_names_each_published_file_once():
    models = [MODELS.get(name) for name in MODELS.names()]
    assert len({m.file_name for m in models}) == len(models)
    assert {m.name for m in models if m.format == "nvlabs-pkl"} == {
        "metfaces", "ffhq", "afhqcat", "afhqdog", "afhqwild", "brecahad", "cifar10"}
    for m in models:
        assert m.sha256 is None or (len(m.sha256) == 64 and int(m.sha256, 16) >= 0)
        if m.format == "nvlabs-pkl":
            assert m.source == f"https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/{m.name}.pkl"


# ---------------------------------------------------------------------------------------------- the Hub


@pytest.mark.parametrize("ref, parsed", [
    ("hf://me/tiny/g.pt", ("me/tiny", None, "g.pt")),
    ("hf://me/tiny@v1.0/sub/dir/g.pt", ("me/tiny", "v1.0", "sub/dir/g.pt")),
])
def test_hub_references(ref, parsed):
    assert parse_hub_ref(ref) == parsed


@pytest.mark.parametrize("ref", ["hf://me", "hf://me/tiny", "hf://me/tiny/", "hf://me/tiny/dir/"])
def test_a_hub_reference_without_a_file_is_refused(ref):
    with pytest.raises(UserError, match="is not a file on the Hub; write hf://owner/repo/path/to/file"):
        parse_hub_ref(ref)


HUB_SCRIPT = """
import json, sys
from magnet.errors import UserError
from magnet.models.resolve import resolve_checkpoint
out = {"path": str(resolve_checkpoint("hf://someone/tiny-magnet/weights/g.pt"))}
try:
    resolve_checkpoint("hf://someone/tiny-magnet/weights/missing.pt")
except UserError as err:
    out["missing"] = str(err)
print(json.dumps(out))
"""


def test_hf_references_download_from_the_hub_once_and_then_work_offline(server, tmp_path, tiny_checkpoint):
    server.files["someone/tiny-magnet/weights/g.pt"] = tiny_checkpoint
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env |= {"HF_ENDPOINT": server.url, "MAGNET_CACHE": str(tmp_path), "HF_HUB_DISABLE_TELEMETRY": "1"}

    def run(**extra) -> dict:
        done = subprocess.run([sys.executable, "-c", HUB_SCRIPT], cwd=ROOT, env=env | extra, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    online = run()
    path = Path(online["path"])
    assert path.read_bytes() == tiny_checkpoint and tmp_path / "models" / "huggingface" in path.parents
    assert ("GET", "/someone/tiny-magnet/resolve/main/weights/g.pt", None) in server.log
    assert online["missing"].startswith("could not download hf://someone/tiny-magnet/weights/missing.pt from the "
                                        "Hugging Face Hub: ") and "\n" not in online["missing"]
    requests = len(server.log)
    offline = run(HF_HUB_OFFLINE="1")
    assert offline["path"] == online["path"] and len(server.log) == requests
    assert "download it yourself and give its path instead" in offline["missing"]


# ---------------------------------------------------------------------------------------------- the listing


def test_python_m_magnet_models_lists_every_name_and_whether_it_is_cached(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "metfaces.pkl").write_bytes(b"x" * 1234)
    done = subprocess.run([sys.executable, "-m", "magnet.models"], cwd=ROOT, capture_output=True, text=True,
                          env=os.environ | {"MAGNET_CACHE": str(tmp_path)}, timeout=60)
    assert done.returncode == 0, done.stderr
    rows = {line.split("│")[1].strip(): line for line in done.stdout.splitlines()
            if line.startswith("│") and line.split("│")[1].strip()}
    assert set(rows) == set(MODELS.names())
    for name, line in rows.items():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        assert cells[6] == ("yes" if name == "metfaces" else "no")
        assert cells[4] == ("1.2 kB" if name == "metfaces" else "unknown")  # no size is published yet
    assert "NVIDIA Source Code License, non-commercial" in rows["ffhq"] and "MIT" in rows["magnet"]
    assert str(tmp_path / "models") in done.stdout.replace("\n", "")


# ---------------------------------------------------------------------------------------------- generate.py


def test_generate_without_ckpt_path_paints_with_the_magnet_model_from_the_cache(cache, tmp_path, tiny_checkpoint):
    from generate import generate
    from magnet.search import read_png_metadata

    cache.mkdir(parents=True)
    (cache / "MAGnet_250.pt").write_bytes(tiny_checkpoint)
    tiny = ["clip.model_name=ViT-S-32-alt", "clip.pretrained=null", "search/strategy=random",
            "search.strategy.num_initial_samples=2", "output.contact_sheets=false"]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("generate", overrides=[*tiny, "prompt=a red circle", f"output_dir={tmp_path / 'out'}"])
        again = compose("generate", overrides=[f"output_dir={tmp_path / 'again'}"])
    assert cfg.ckpt_path is None and cfg.default_ckpt == "magnet"
    [painting] = generate(cfg)
    assert read_png_metadata(painting)["checkpoint"] == "magnet"  # renders again on any machine
    again.from_png = str(painting)
    [regenerated] = generate(again)
    assert regenerated.read_bytes() == painting.read_bytes()

