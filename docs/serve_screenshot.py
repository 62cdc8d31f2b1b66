"""A screenshot of `convnet serve`'s page in headless chromium, after drawing a 3 on the pad
(or, given IMAGE, after uploading it) and clicking a feature map:

    python docs/serve_screenshot.py RUN docs/serve-digits.png
    python docs/serve_screenshot.py RUN docs/serve-cifar10.png IMAGE
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import httpx
from playwright.sync_api import sync_playwright

run, target, port = sys.argv[1], sys.argv[2], 8731
upload = sys.argv[3] if len(sys.argv) > 3 else None
server = subprocess.Popen([sys.executable, "-m", "convnet", "serve", run, "--port", str(port)])
try:
    for _ in range(200):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=shutil.which("chromium"),
                                         args=["--no-sandbox", "--headless=new"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_function("document.querySelector('#model').options.length > 0")
        if upload:
            page.set_input_files("#file", upload)
        else:
            box = page.locator("#pad").bounding_box()
            stroke = [(95, 60), (185, 60), (150, 140), (190, 190), (170, 235), (100, 235)]
            page.mouse.move(box["x"] + stroke[0][0], box["y"] + stroke[0][1])
            page.mouse.down()
            for x, y in stroke[1:]:
                page.mouse.move(box["x"] + x, box["y"] + y, steps=8)
            page.mouse.up()
        page.wait_for_selector(".layer.conv canvas")
        page.wait_for_timeout(1000)  # the last prediction and its feature maps are in
        page.locator(".layer.conv canvas").nth(3).click(position={"x": 22, "y": 19})
        page.wait_for_selector("#value")
        page.wait_for_timeout(300)
        page.screenshot(path=target, full_page=True,  # the top: results and first layers
                        clip={"x": 0, "y": 0, "width": 1200, "height": 1500})
        browser.close()
finally:
    server.terminate()
    server.wait(timeout=30)
