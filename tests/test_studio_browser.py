"""The studio in a real browser: headless Chromium (Debian's chromium + chromium-driver) drives the page.

Without a browser these tests skip with a message; in CI (CI=true) they fail instead. Screenshots of every
step go to tests/artifacts/screenshots/ (git-ignored); their path is printed.
"""

import io
import os
import re
import shutil
import socket
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import torch
from PIL import Image
from studio_setup import ROOT, compose_studio, studio_overrides, tiny_checkpoint

from generate import regenerate
from magnet.search import read_png_metadata

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SHOTS = ROOT / "tests" / "artifacts" / "screenshots"
WAIT = 60  # s: a step on a loaded 2-core machine

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def _require_browser():
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not shutil.which(path)]
    if missing:
        message = f"no {' or '.join(missing)}: apt-get install chromium chromium-driver to run the browser tests"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """The studio on 127.0.0.1 (a free port) with the tiny generator and a random small CLIP."""
    _require_browser()
    from studio import build

    folder = tmp_path_factory.mktemp("studio")
    ckpt = tiny_checkpoint(folder)
    cfg = compose_studio([*studio_overrides(ckpt, folder / "out"), "project.perceptual=none",
                          "project.w_avg_samples=2000"])
    demo, launch = build(cfg)
    launch["server_port"] = _free_port()
    demo.launch(**launch, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{launch['server_port']}", folder, cfg
    demo.close()


class Page:
    """One person's browser on the studio: a fresh Chromium profile, screenshots named by step."""

    def __init__(self, url: str, name: str, downloads: Path):
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1300,1600",
                    f"--user-data-dir={tempfile.mkdtemp(prefix='chromium-')}"):
            options.add_argument(arg)
        options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                                  "download.prompt_for_download": False})
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.name, self.downloads = name, downloads
        self.driver.get(url)
        self.wait_for(lambda d: "precision" in d.find_element(By.ID, "info").text)

    def wait_for(self, condition, timeout=WAIT):
        return WebDriverWait(self.driver, timeout, poll_frequency=0.2,
                             ignored_exceptions=(StaleElementReferenceException,)).until(condition)

    def css(self, selector):
        """The element, once the page has rendered it (an accordion opened a moment ago renders late)."""
        return self.wait_for(lambda d: d.find_element(By.CSS_SELECTOR, selector))

    def text(self, element_id) -> str:
        return self.driver.find_element(By.ID, element_id).text

    def type(self, selector, text):
        box = self.css(selector)
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(Keys.DELETE)
        box.send_keys(text)

    def thumbnails(self):
        return self.driver.find_elements(By.CSS_SELECTOR, "#gallery button.thumbnail-item img")

    def images(self) -> list[np.ndarray]:
        """The gallery's images as the server sent them (the same URLs the page shows)."""
        return [np.asarray(Image.open(io.BytesIO(urllib.request.urlopen(img.get_attribute("src")).read())))
                for img in self.thumbnails()]

    def shot(self, step: str) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{self.name}_{step}.png"
        self.driver.save_screenshot(str(path))
        print(f"screenshot: {path}")
        return path

    def message(self, text: str):
        """Wait for a message in the page (Gradio's toast) that contains `text`, then close it."""
        self.wait_for(lambda d: text in d.find_element(By.TAG_NAME, "body").text)
        self.shot(f"message_{len(list(SHOTS.glob(self.name + '_message_*')))}")
        self.driver.execute_script(
            "document.querySelectorAll('[data-testid=\"toast-close\"], .toast-close').forEach(b => b.click())")
        self.wait_for(lambda d: text not in d.find_element(By.TAG_NAME, "body").text)

    def hosts(self) -> set[str]:
        """Every host the page made a request to so far."""
        import json

        urls = (json.loads(entry["message"])["message"] for entry in self.driver.get_log("performance"))
        return {urlsplit(m["params"]["request"]["url"]).hostname for m in urls
                if m["method"] == "Network.requestWillBeSent" and m["params"]["request"]["url"].startswith("http")}

    def search(self, prompt: str, generations: int, expect: str | re.Pattern, seed: int = 0):
        """Run a search until the status shows `expect` (a text in it, or a pattern found in it)."""
        self.type("#prompt textarea", prompt)
        self.type("#seed input", str(seed))
        self.type("#generations input", str(generations))
        self.css("#search").click()
        def shows(status: str) -> bool:
            return bool(expect.search(status)) if isinstance(expect, re.Pattern) else expect in status

        self.wait_for(lambda d: shows(self.text("status")))

    def close(self):
        self.driver.quit()


def test_search_pick_breed_and_download_a_painting_that_re_renders(studio, tmp_path):
    url, folder, cfg = studio
    page = Page(url, "main", tmp_path)
    start = time.monotonic()
    try:
        page.shot("1_opened")
        page.search("a red circle | text:-0.5", 1, "generation 1: genetic generation 1")
        assert len(page.thumbnails()) == 2 + 4 and "+0." in page.text("gallery")  # parents + children, scores
        page.shot("2_two_generations")

        before = page.images()
        page.thumbnails()[2].click()
        page.wait_for(lambda d: "picked: 2 " in page.text("parents"))
        page.thumbnails()[4].click()
        page.wait_for(lambda d: "picked: 2, 4 " in page.text("parents"))
        page.shot("3_two_parents")
        page.css("#breed").click()
        page.wait_for(lambda d: "generation 2: bred from 2, 4" in page.text("status"))
        after = page.images()
        assert len(after) == 2 + 6  # the two parents, then the six children bred from them
        assert np.array_equal(after[0], before[2]) and np.array_equal(after[1], before[4])
        assert not any(np.array_equal(child, parent) for child in after[2:] for parent in before)
        page.shot("4_bred")

        page.thumbnails()[5].click()
        page.wait_for(lambda d: page.css("#index input").get_attribute("value") == "5")
        page.css("#paint").click()
        link = page.wait_for(lambda d: d.find_elements(By.CSS_SELECTOR, "#painting-file a"))[0]
        link.click()
        downloaded = page.wait_for(lambda d: next(iter(tmp_path.glob("*.png")), None))
        page.shot("5_painting")
        meta = read_png_metadata(downloaded)
        assert meta["prompt"] == "a red circle | text:-0.5" and meta["checkpoint"] == str(cfg.ckpt_path)
        again = regenerate(compose_generate(downloaded, tmp_path / "again"))
        assert np.array_equal(np.asarray(Image.open(downloaded)), np.asarray(Image.open(again)))

        page.type("#edit-0 input[type=number]", "2.5\t")  # an edit slider, then paint it under another name
        page.type("#name textarea", "edited")
        page.css("#paint").click()
        link = page.wait_for(lambda d: [a for a in d.find_elements(By.CSS_SELECTOR, "#painting-file a")
                                        if "edited" in (a.get_attribute("href") or "")])[0]
        link.click()
        edited = page.wait_for(lambda d: next(iter(tmp_path.glob("edited*.png")), None))
        page.shot("6_edited")
        assert [(e["index"], e["amount"]) for e in read_png_metadata(edited)["edits"]] == [(0, 2.5)]
        again = regenerate(compose_generate(edited, tmp_path / "edited_again"))
        assert np.array_equal(np.asarray(Image.open(edited)), np.asarray(Image.open(again)))
        assert not np.array_equal(np.asarray(Image.open(edited)), np.asarray(Image.open(downloaded)))
        step = time.monotonic()  # project the painting downloaded: a new favourite, in a few steps
        page.css("#project-panel .label-wrap").click()
        page.css("#project-image input[type=file]").send_keys(str(downloaded))
        page.type("#project-steps input", "5")
        page.css("#project").click()
        page.wait_for(lambda d: [a for a in d.find_elements(By.CSS_SELECTOR, "#painting-file a")
                                 if "projection" in (a.get_attribute("href") or "")])
        page.shot("7_projected")
        assert "projection of" in page.css("#favourites input").get_attribute("value")
        page.css("#vary").click()  # a search around the projection
        page.wait_for(lambda d: "genetic around the painting, generation 1" in page.text("status"))
        print(f"projection and its variations in the browser: {time.monotonic() - step:.1f} s")
        assert page.hosts() == {"127.0.0.1"}  # no font, analytics or CDN request left the machine
        print(f"main flow in the browser: {time.monotonic() - start:.1f} s")
    finally:
        page.close()


def compose_generate(png, out):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("generate", overrides=[f"from_png={png}", f"output_dir={out}"])


def test_two_people_at_once_stay_apart_and_errors_show_a_message(studio, tmp_path):
    url, folder, cfg = studio
    evil = tmp_path / "evil.pt"
    marker = tmp_path / "code-ran"
    torch.save({"g_ema": {}, "payload": _MakesAFolder(marker)}, evil)
    alice, bob = Page(url, "alice", tmp_path), Page(url, "bob", tmp_path)
    try:
        alice.search("a red circle", 0, "generation 0: genetic generation 0 | a red circle")
        bob.search("a blue square", 0, "generation 0: genetic generation 0 | a blue square", seed=7)
        alice_images, bob_images = alice.images(), bob.images()
        assert "a blue square" not in alice.text("status") and "a red circle" not in bob.text("status")
        assert not any(np.array_equal(a, b) for a in alice_images for b in bob_images)
        assert len({p.name for p in (folder / "out" / "sessions").iterdir()}) >= 2
        alice.shot("1_alice")
        bob.shot("1_bob")

        bob.css("#breed").click()
        bob.message("no parents picked")
        assert len(bob.thumbnails()) == 8 and "a blue square" in bob.text("status")  # the page is as it was
        alice.type("#prompt textarea", "   ")
        alice.css("#search").click()
        alice.message("is empty")
        alice.type("#model input", str(evil) + "\n")
        alice.css("#load").click()
        alice.message("holds code (posix.mkdir)")
        assert not marker.exists()
        assert all(np.array_equal(a, b) for a, b in zip(alice.images(), alice_images, strict=True))
        assert "a red circle" in alice.text("status")  # the session kept its state

        alice.search("a red circle", 40, re.compile(r"genetic generation ([1-9]|[1-3][0-9]) \|"))  # under way
        alice.css("#stop").click()  # the search ends where it is
        time.sleep(1)
        stopped = alice.text("status")
        time.sleep(2)
        assert alice.text("status") == stopped and "genetic generation 40" not in stopped
    finally:
        alice.close()
        bob.close()


class _MakesAFolder:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))
