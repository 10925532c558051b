"""The chat page at / in a real browser: Debian's headless Chromium, driven over the DevTools
protocol, loads the page from `mla serve`, types a message, presses Send, and sees the streamed
answer appear; the answer equals the same request made without the browser."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest
import requests

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import serving_model  # noqa: E402

websocket = pytest.importorskip("websocket", reason="python3-websocket is not installed")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix="mla-chromium-")
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-extensions", "--remote-debugging-port=0",
             "--user-data-dir=" + self.profile, "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.time() + 60
        while not os.path.exists(port_file) or not open(port_file).read().strip():
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError("chromium did not start")
            time.sleep(0.1)
        port = open(port_file).read().split()[0]
        pages = requests.get(f"http://127.0.0.1:{port}/json", timeout=10).json()
        page = next(p for p in pages if p["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(msg["error"])
                return msg["result"]

    def js(self, expression):
        r = self.call("Runtime.evaluate", expression=expression, awaitPromise=True,
                      returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(r["exceptionDetails"])
        return r["result"].get("value")

    def close(self):
        try:
            self.ws.close()
        finally:
            self.proc.terminate()
            self.proc.wait(timeout=20)
            shutil.rmtree(self.profile, ignore_errors=True)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_chat_page_streams_an_answer(tmp_path):
    cli = os.environ["MLA_CLI"]
    model = serving_model.write_model(str(tmp_path / "m"))[0]
    server = serving_model.Server(cli, model, "--threads", "1")
    browser = Browser()
    try:
        browser.call("Page.enable")
        browser.call("Page.navigate", url=server.url + "/")
        deadline = time.time() + 30
        while browser.js("document.readyState") != "complete" or \
                not browser.js("!!document.getElementById('send')"):
            assert time.time() < deadline, "the page did not load"
            time.sleep(0.1)
        assert browser.js("document.title") == "mla.cpp chat"
        browser.js("document.getElementById('temperature').value = '0'")
        browser.js("document.getElementById('max_tokens').value = '12'")
        browser.js("document.getElementById('input').value = 'Hello, who are you?'")
        browser.js("document.getElementById('send').click()")
        deadline = time.time() + 60
        while not browser.js("!!document.querySelector('.msg[data-done]')"):
            assert time.time() < deadline, "no answer was streamed"
            time.sleep(0.1)
        shown = browser.js("document.querySelector('.msg[data-done]').textContent")
        css = browser.js("document.querySelector('.msg[data-done]').className")
        user = browser.js("document.querySelector('.msg.user').textContent")
        assert user == "Hello, who are you?"
        assert css == "msg assistant", shown
        want = requests.post(server.url + "/v1/chat/completions", timeout=60, json={
            "messages": [{"role": "user", "content": "Hello, who are you?"}],
            "temperature": 0, "max_tokens": 12}).json()["choices"][0]["message"]["content"]
        assert shown == want
        assert browser.js("document.getElementById('stats').textContent").endswith(" s")
    finally:
        browser.close()
        server.close()
