"""End to end in a real browser (Debian's chromium + chromedriver, driven by Selenium):
`lgdk app` on a free port with the shipped model, a box on the demo clip's object,
propagation, the masks zip checked against the clip's truth, and a transparent WebM
downloaded and decoded. Screenshots of each step go to $LGDK_SCREENSHOTS when set
(docs/app/ was made so)."""

import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lgdk.data.procedural import generate_clip
from lgdk.eval.metrics import jaccard
from lgdk.video.cutout import read_rgba_video
from tests.app.conftest import free_port, tight_box

pytestmark = pytest.mark.slow
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def start_app(*flags):
    """`lgdk app` on a free port; (process, URL as printed, with its token if any)."""
    import urllib.request

    port = free_port()
    lgdk = Path(sys.executable).with_name("lgdk")
    process = subprocess.Popen([str(lgdk), "app", "--port", str(port), *flags],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    printed = process.stdout.readline()
    match = re.search(r"http://\S+:(\d+)/(\S*)", printed)
    if not match:
        process.terminate()
        pytest.fail(printed + process.stdout.read())
    url = f"http://127.0.0.1:{port}/{match.group(2)}"
    for _ in range(600):
        try:
            urllib.request.urlopen(url, timeout=1).read()
            break
        except OSError:
            if process.poll() is not None:
                pytest.fail(process.stdout.read())
            time.sleep(0.1)
    return process, url


@pytest.fixture
def app_url():
    process, url = start_app()
    yield url.rstrip("/")
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture
def app_with_token():
    process, url = start_app("--host", "0.0.0.0")
    yield url
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture
def browser(tmp_path):
    if not (CHROMIUM and DRIVER):
        pytest.skip("needs Debian's chromium and chromium-driver (apt install them)")
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--window-size=1100,1300",
                 f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(tmp_path / "downloads"),
        "download.prompt_for_download": False})
    driver = webdriver.Chrome(options=options,
                              service=webdriver.ChromeService(executable_path=DRIVER))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def wait_for(predicate, what, timeout=180):
    end = time.time() + timeout
    while time.time() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def downloaded(folder: Path, name: str) -> Path:
    path = folder / name
    return wait_for(lambda: path if path.is_file() and not list(folder.glob("*.crdownload"))
                    else None, f"the download {name}")


def test_cut_out_the_demo_clips_object_in_the_browser(app_url, browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    shots = Path(os.environ.get("LGDK_SCREENSHOTS", tmp_path / "shots"))
    shots.mkdir(parents=True, exist_ok=True)
    truth = generate_clip(np.random.default_rng(7), 360, 640, 30, num_objects=2).labels
    status = lambda: browser.find_element(By.ID, "status").text  # noqa: E731

    browser.get(app_url)
    wait_for(lambda: "demo clip" in status(), "the demo clip")
    browser.save_screenshot(str(shots / "1-demo-clip.png"))

    canvas = browser.find_element(By.ID, "canvas")
    scale = canvas.size["width"] / 640  # CSS pixels per frame pixel
    x0, y0, x1, y1 = tight_box(truth[0], 1)
    centre = (canvas.size["width"] / 2, canvas.size["height"] / 2)
    ActionChains(browser).move_to_element_with_offset(
        canvas, x0 * scale - centre[0], y0 * scale - centre[1]).click_and_hold().move_by_offset(
        (x1 - x0) * scale, (y1 - y0) * scale).release().perform()
    wait_for(lambda: browser.execute_script(
        "return document.body.dataset.session && !document.getElementById('status')"
        ".textContent.startsWith('working')") and status() == "", "the box's mask")
    browser.save_screenshot(str(shots / "2-box-mask.png"))

    browser.find_element(By.ID, "propagate").click()
    wait_for(lambda: status() == "propagated", "propagation")
    assert "30/30 frames" in browser.find_element(By.ID, "progress-text").text
    browser.save_screenshot(str(shots / "3-propagated.png"))

    downloads = tmp_path / "downloads"
    browser.find_element(By.CSS_SELECTOR, "button[data-kind=masks]").click()
    masks = downloaded(downloads, "masks.zip")
    with zipfile.ZipFile(masks) as archive:
        names = sorted(archive.namelist())
        assert len(names) == 30
        archive.extractall(tmp_path / "masks")
    from lgdk.data.masks import read_mask

    in_view = [i for i in range(1, 30) if (truth[i] == 1).any()]  # it leaves at frame 12
    scores = [jaccard(read_mask(tmp_path / "masks" / names[i]) == 1, truth[i] == 1)
              for i in in_view]
    assert len(in_view) == 11 and np.mean(scores) > 0.7, scores

    browser.find_element(By.CSS_SELECTOR, "button[data-kind=cutout]:not([data-colour])").click()
    webm = downloaded(downloads, "cutout.webm")
    frames = read_rgba_video(webm)
    assert len(frames) == 30 and frames[0].shape == (360, 640, 4)
    alpha = np.stack([f[..., 3] > 127 for f in frames])
    given = np.stack([read_mask(tmp_path / "masks" / n) > 0 for n in names])
    assert (alpha == given).mean() > 0.97 and alpha.any() and not alpha.all()
    browser.find_element(By.ID, "slider").click()
    browser.save_screenshot(str(shots / "4-downloaded.png"))


def test_off_the_loopback_address_the_page_needs_the_printed_token(app_with_token, browser):
    import urllib.error
    import urllib.request

    from selenium.webdriver.common.by import By

    assert "?token=" in app_with_token
    bare = app_with_token.split("?")[0]
    for path in ("", "api/session"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(
                bare + path, data=b"" if path else None), timeout=10)
        assert refused.value.code == 403
    browser.get(bare)
    assert "needs its token" in browser.find_element(By.TAG_NAME, "body").text
    browser.get(app_with_token)  # the printed URL: the page works as on the loopback
    status = lambda: browser.find_element(By.ID, "status").text  # noqa: E731
    wait_for(lambda: "demo clip" in status(), "the demo clip")
    browser.execute_script("document.querySelector('input[value=brush]').click()")
    canvas = browser.find_element(By.ID, "canvas")
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(browser).move_to_element(canvas).click().perform()
    wait_for(lambda: status() == "" and browser.execute_script(
        "return document.getElementById('object').options.length") >= 1, "the brush mask")
    browser.get(bare)  # the cookie now carries the token
    wait_for(lambda: "demo clip" in status(), "the demo clip again, by cookie")


def test_an_uploaded_video_is_shown_and_a_middle_box_fills_the_frames_before(
        app_url, browser, tmp_path):
    """The page shows the uploaded video's own frames (not the demo clip's, cached under
    the same URL), and a box on its middle frame alone gives masks to the frames before."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    from lgdk.video.video_io import open_frames

    video, labels = uploaded_clip(tmp_path)
    decoded = [f for _, f in open_frames(video)]
    height, width = decoded[0].shape[:2]
    middle = len(decoded) // 2
    status = lambda: browser.find_element(By.ID, "status").text  # noqa: E731

    browser.get(app_url)
    wait_for(lambda: "demo clip" in status(), "the demo clip")
    browser.find_element(By.ID, "file").send_keys(str(video))
    browser.find_element(By.ID, "upload").click()
    wait_for(lambda: f"{video.name} loaded" in status(), "the upload")
    shown = np.array(browser.execute_script(
        "const c = document.getElementById('canvas');"
        "return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data);"),
        np.uint8).reshape(height, width, 4)[..., :3]
    difference = np.abs(shown.astype(int) - decoded[0]).mean()
    assert difference < 12

    browser.execute_script("const s = document.getElementById('slider'); s.value = "
                           f"{middle}; s.dispatchEvent(new Event('input'));")
    wait_for(lambda: browser.find_element(By.ID, "frame-number").text == f"frame {middle}",
             "the middle frame")
    canvas = browser.find_element(By.ID, "canvas")
    scale = canvas.size["width"] / width
    x0, y0, x1, y1 = tight_box(labels[middle], 1)
    centre = (canvas.size["width"] / 2, canvas.size["height"] / 2)
    ActionChains(browser).move_to_element_with_offset(
        canvas, x0 * scale - centre[0], y0 * scale - centre[1]).click_and_hold().move_by_offset(
        (x1 - x0) * scale, (y1 - y0) * scale).release().perform()
    wait_for(lambda: status() == "", "the box's mask")
    browser.find_element(By.ID, "propagate").click()
    wait_for(lambda: status() == "propagated", "propagation")
    count = len(decoded)
    assert f"{count}/{count} frames" in browser.find_element(By.ID, "progress-text").text
    browser.find_element(By.CSS_SELECTOR, "button[data-kind=masks]").click()
    masks = downloaded(tmp_path / "downloads", "masks.zip")
    from lgdk.data.masks import read_mask

    with zipfile.ZipFile(masks) as archive:
        archive.extractall(tmp_path / "masks")
    before = [jaccard(read_mask(tmp_path / "masks" / f"{i:05d}.png") == 1, labels[i] == 1)
              for i in range(middle)]
    print(f"canvas against frame 0: {difference:.1f} grey levels; frames 0-{middle - 1} "
          f"from a box on frame {middle}: mean J {np.mean(before):.3f}")
    assert np.mean(before) > 0.6, before


def uploaded_clip(tmp_path):
    """An mp4 and its objects' (T, H, W) labels: $LGDK_BROWSER_VIDEO with the PNG masks
    of every frame in $LGDK_BROWSER_TRUTH (any object counts as object 1) when set, else
    a generated clip (not the demo's)."""
    from lgdk.data.masks import read_mask
    from lgdk.video.writer import VideoWriter

    if os.environ.get("LGDK_BROWSER_VIDEO"):
        truth = sorted(Path(os.environ["LGDK_BROWSER_TRUTH"]).glob("*.png"))
        labels = np.stack([(read_mask(p) > 0).astype(np.uint8) for p in truth])
        return Path(os.environ["LGDK_BROWSER_VIDEO"]).resolve(), labels
    clip = generate_clip(np.random.default_rng(11), 240, 320, 24, num_objects=1)
    writer = VideoWriter(tmp_path / "mine.mp4", fps=12)
    for frame in clip.frames:
        writer.write(frame)
    writer.close()
    return tmp_path / "mine.mp4", clip.labels


def test_the_strip_leads_to_a_frame_whose_correction_changes_its_neighbours(
        app_url, browser, tmp_path):
    """After a propagation the strip under the timeline marks each frame's doubt; a click
    on its most doubtful frame shows that frame, a brush correction there is kept, and
    propagating again changes the frames beside it."""
    import io
    import urllib.request

    from PIL import Image
    from scipy import ndimage
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    truth = generate_clip(np.random.default_rng(7), 360, 640, 30, num_objects=2).labels
    status = lambda: browser.find_element(By.ID, "status").text  # noqa: E731
    js = browser.execute_script
    browser.get(app_url)
    wait_for(lambda: "demo clip" in status(), "the demo clip")
    canvas = browser.find_element(By.ID, "canvas")
    scale = canvas.size["width"] / 640
    centre = (canvas.size["width"] / 2, canvas.size["height"] / 2)
    x0, y0, x1, y1 = tight_box(truth[0], 1)
    ActionChains(browser).move_to_element_with_offset(
        canvas, x0 * scale - centre[0], y0 * scale - centre[1]).click_and_hold().move_by_offset(
        (x1 - x0) * scale, (y1 - y0) * scale).release().perform()
    wait_for(lambda: js("return !!document.body.dataset.session") and status() == "",
             "the box's mask")
    browser.find_element(By.ID, "propagate").click()
    wait_for(lambda: status() == "propagated", "propagation")
    wait_for(lambda: js("return state.worst.length > 0"), "the strip's doubts")
    assert "least sure: frame" in browser.find_element(By.ID, "doubt-text").text
    worst = js("return state.worst[0]")

    strip = browser.find_element(By.ID, "strip")
    x = (worst + 0.5) * strip.size["width"] / 30 - strip.size["width"] / 2
    ActionChains(browser).move_to_element_with_offset(strip, x, 0).click().perform()
    wait_for(lambda: browser.find_element(By.ID, "frame-number").text == f"frame {worst}",
             "the strip's frame shown")
    shots = Path(os.environ.get("LGDK_SCREENSHOTS", tmp_path / "shots"))
    shots.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(shots / "5-strip.png"))

    sid = js("return document.body.dataset.session")

    def shown_mask(index):
        with urllib.request.urlopen(f"{app_url}/api/{sid}/mask/{index}.png") as response:
            return np.array(Image.open(io.BytesIO(response.read())))[..., 3] > 0

    neighbours = [i for i in (worst - 1, worst + 1) if 0 < i < 30]
    before = {i: shown_mask(i) for i in neighbours}
    far = ndimage.distance_transform_edt(truth[worst] == 0)  # away from both objects
    py, px = np.unravel_index(int(np.argmax(far[40:-40, 40:-40])), (280, 560))
    py, px = py + 40, px + 40
    js("document.querySelector('input[value=brush]').click();"
       "document.getElementById('radius').value = 30;")
    ActionChains(browser).move_to_element_with_offset(
        canvas, px * scale - centre[0], py * scale - centre[1]).click().perform()
    wait_for(lambda: js(f"return state.doubts[{worst}] && state.doubts[{worst}].why") ==
             "given", "the correction kept as a given frame")
    assert shown_mask(worst)[py, px]
    browser.find_element(By.ID, "propagate").click()
    wait_for(lambda: all((shown_mask(i) != before[i]).any() for i in neighbours),
             "the neighbours changed by the correction")
    for i in neighbours:  # the painted blob carried on beside the corrected frame
        assert shown_mask(i)[py - 10:py + 10, px - 10:px + 10].mean() > 0.5
