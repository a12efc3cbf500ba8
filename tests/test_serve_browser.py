"""make serve end to end in a real headless Chromium (Debian's chromium + chromium-driver,
driven by Selenium): the page loads, a photo upload shows its label, a video upload shows its
tracks, and a fake camera (Chromium's --use-file-for-fake-video-capture, fed the sample
photo) gets live labels and saves its session. FER_SCREENSHOTS=folder keeps screenshots."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data
from test_video import two_faces_clip

pytestmark = pytest.mark.slow
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    pytest.skip(
        "needs Debian's chromium and chromium-driver (make browser installs them; make test runs it first)",
        allow_module_level=True,
    )
from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.chrome.service import Service as DriverService  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PHOTO = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fake_camera(path: Path, frames: int = 20) -> Path:
    """A Y4M clip of the sample photo, slowly moving, for Chromium's fake camera."""
    with open(path, "wb") as out:
        out.write(b"YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420jpeg\n")
        for i in range(frames):
            frame = np.full((480, 640, 3), 90, np.uint8)
            frame[:, 60 + i : 572 + i] = PHOTO[16:496]
            out.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("serve") / "out"
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "predict.serve", "--port", str(port), "--out", str(out)],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/info", timeout=2)
            break
        except OSError:
            assert process.poll() is None, process.stderr.read()
            assert time.time() < deadline, "the server did not start"
            time.sleep(0.3)
    yield url
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("browser")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",  # tests run as root in CI
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1100",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={fake_camera(folder / 'camera.y4m')}",
        f"--user-data-dir={folder / 'profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=DriverService(executable_path=DRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def wait_for_text(driver, element_id: str, words: str, seconds: float = 90) -> str:
    """The element's text once it holds WORDS; on timeout a failure that quotes what the page
    showed instead, its error lines included (a wait that only timed out said nothing of why)."""
    try:
        WebDriverWait(driver, seconds).until(lambda d: words in d.find_element(By.ID, element_id).text)
    except TimeoutException:
        errors = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".error") if e.text]
        shown = driver.find_element(By.ID, element_id).text
        pytest.fail(f"#{element_id} never showed {words!r} in {seconds:g} s: it shows {shown!r}; page errors: {errors}")
    return driver.find_element(By.ID, element_id).text


def screenshot(driver, name: str) -> None:
    folder = os.environ.get("FER_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"{name}.png"))


def test_a_photo_dropped_on_the_page_shows_its_label(server: str, browser, tmp_path: Path) -> None:
    photo = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(photo), PHOTO)
    browser.get(server)
    wait_for_text(browser, "model", "fer2013_default", 30)
    browser.find_element(By.ID, "photo-file").send_keys(str(photo))
    text = wait_for_text(browser, "photo-faces", "Face 1: Happy")
    assert "Neutral" in text  # a bar per class
    image = browser.find_element(By.ID, "photo-image")
    WebDriverWait(browser, 30).until(lambda d: image.get_property("naturalWidth") == 512)
    screenshot(browser, "photo")


def test_a_bad_file_shows_one_line_and_the_page_goes_on(server: str, browser, tmp_path: Path) -> None:
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    browser.get(server)
    wait_for_text(browser, "model", "fer2013_default", 30)
    browser.find_element(By.ID, "photo-file").send_keys(str(bad))
    assert "notes.png: not a readable image" in wait_for_text(browser, "photo-error", "notes.png")


def test_a_video_upload_shows_progress_then_tracks(server: str, browser, tmp_path: Path) -> None:
    clip = two_faces_clip(tmp_path / "two.avi")
    browser.get(server)
    wait_for_text(browser, "model", "fer2013_default", 30)
    browser.find_element(By.CSS_SELECTOR, "nav button[data-tab=video]").click()
    browser.find_element(By.ID, "video-file").send_keys(str(clip))
    text = wait_for_text(browser, "video-tracks", "Track 2")
    assert "mostly Happy" in text
    player = browser.find_element(By.ID, "video-player")
    WebDriverWait(browser, 30).until(lambda d: player.get_property("readyState") >= 1)  # the WebM plays here
    assert player.get_property("videoWidth") == 640
    screenshot(browser, "video")


def test_the_camera_gets_live_labels_and_saves_its_session(server: str, browser) -> None:
    browser.get(server)
    wait_for_text(browser, "model", "fer2013_default", 30)
    browser.find_element(By.CSS_SELECTOR, "nav button[data-tab=camera]").click()
    browser.find_element(By.ID, "camera-start").click()
    assert "Track 1: Happy" in wait_for_text(browser, "camera-tracks", "Track 1")
    wait_for_text(browser, "camera-status", "frames/s")
    time.sleep(2)  # a few more frames for the timeline
    screenshot(browser, "camera")
    browser.find_element(By.ID, "camera-save").click()
    wait_for_text(browser, "camera-files", "json")
    link = browser.find_element(By.CSS_SELECTOR, "#camera-files a").get_attribute("href")
    assert link.endswith(".summary.json") and urllib.request.urlopen(link).status == 200
    browser.find_element(By.ID, "camera-stop").click()
