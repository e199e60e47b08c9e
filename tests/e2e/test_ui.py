"""The page at /ui/ in a real browser: Debian's chromium driven by Playwright, against a real
front door starting test-gateway containers in Docker. A user signs in with a token, switches a
server off and watches their gateway restart through the event stream, stores a secret that is
never seen again; an admin sees everyone's gateways; alice's page cannot read bob's data; a
tenant's catalog text renders as text. Screenshots go to target/ui-screenshots/."""

import json
import os
import secrets as pysecrets
import shutil
import ssl
import urllib.request

import pytest

from conftest import ROOT, unavailable

SHOTS = ROOT / "target" / "ui-screenshots"
XSS = '<img src=x onerror="window.__pwned=1;document.title=\'pwned\'">'
# Waits are bounds for a loaded 2-core machine, not timing assertions.
WAIT_MS = 90_000
READY = "body[data-ready=true]"


def chromium():
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        unavailable("no chromium on PATH (scripts/setup.sh installs Debian's chromium package)")
    return exe


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed in the venv (tests/requirements.txt)")
    with sync_playwright() as p:
        # As root (the CI machine) chromium's sandbox cannot start.
        b = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def world(frontdoor):
    """Tokens and catalogs: a base catalog, a team catalog for alice's team, each user's own
    server (alice's with a hostile title)."""
    fd = frontdoor
    t = {"admin": fd.token("root-admin", admin=True), "alice": fd.token("alice", teams=["ml"]),
         "bob": fd.token("bob")}
    fd.request("DELETE", "/api/v1/catalogs/base/official", t["admin"])
    status, body = fd.request("PUT", "/api/v1/catalogs/base/official?priority=0", t["admin"], {
        "registry": {"fetch": {"image": "example/fetch:1", "title": "Fetch pages"},
                     "time": {"image": "example/time:1", "title": "Clock"}}})
    assert status == 200, body
    fd.api("PUT", "/catalogs/teams/ml", t["admin"], {
        "registry": {"notebook": {"image": "example/notebook:1", "title": "Notebooks"}}})
    fd.api("PUT", "/users/me/catalogs", t["alice"], {
        "custom": {"registry": {"mine": {"image": "example/mine:1", "title": XSS}}},
        "overrides": {}})
    fd.api("PUT", "/users/me/catalogs", t["bob"], {
        "custom": {"registry": {"bobs": {"image": "example/bobs:1", "title": "Bob's own"}}}})
    fd.api("PUT", "/users/me/secrets", t["bob"], {"bobs.key": "bob-secret-value-1234"})
    return t


def goto(page, url, tries=6):
    """Opens `url` in `page` and waits until all its modules ran; again when chromium aborted
    the load because a network interface of this machine changed (ERR_NETWORK_CHANGED: Docker
    makes and removes gateway networks, ours and any other test's). Chromium's error page then
    reloads itself, and a second goto at once races that reload ("interrupted by another
    navigation"), so a retry first waits for the churn to pass and for that reload to land."""
    for attempt in range(1, tries + 1):
        try:
            page.goto(url)
            page.wait_for_selector(READY, timeout=15_000)
            return
        except Exception as e:
            if attempt == tries:
                raise
            print(f"page load {attempt} failed: {str(e)[:200]}")
        page.wait_for_timeout(1_000 * attempt)
        try:
            page.wait_for_selector(READY, timeout=5_000)
            print(f"page load {attempt}: the error page's own reload made it")
            return
        except Exception:
            print(f"page load {attempt}: not ready after the pause, again")


def open_page(context, url, watch=None, tries=6):
    """A new tab at `url` (see goto); a tab whose load failed is closed and the next try gets a
    fresh one, so no reload of an error page is left to race it. `watch(page)` attaches the
    caller's listeners before the load."""
    for attempt in range(1, tries + 1):
        page = context.new_page()
        if watch:
            watch(page)
        try:
            goto(page, url, tries=2)
            return page
        except Exception as e:
            page.close()
            if attempt == tries:
                raise
            print(f"tab {attempt} failed, a new one: {str(e)[:200]}")


class Session:
    """One signed-in tab with what it saw: every response, console message and request URL."""

    def __init__(self, browser, fd, token, name):
        self.name = name
        self.context = browser.new_context(ignore_https_errors=True,
                                           viewport={"width": 1200, "height": 1000})
        self.responses, self.console, self.urls, self.failed = [], [], [], []
        self.page = open_page(self.context, fd.url + "/ui/", self._watch)
        self.page.fill("#token-input", token)
        self.page.click("#login-form button[type=submit]")
        self.page.wait_for_selector("#user-view:not([hidden])", timeout=WAIT_MS)

    def _watch(self, page):
        page.on("response", lambda r: self.responses.append(r))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url} {r.failure}"))
        page.on("console", lambda m: self.console.append(m.text))
        page.on("request", lambda r: self.urls.append(r.url))

    def shot(self, label):
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{self.name}-{label}.png"), full_page=True)

    def bodies(self):
        """The bodies of every finished response so far (the event stream never finishes)."""
        out = []
        for r in self.responses:
            if r.url.endswith("/api/v1/events"):
                continue
            try:
                out.append(r.body())
            except Exception:  # a redirect or an aborted request has none
                pass
        return out

    def api(self, method, path, body=None):
        """The page's own API helper, called in the page: {status, code} or {ok, value}."""
        return self.page.evaluate(
            """async ([method, path, body]) => {
                const m = await import("./api.js");
                try { return {ok: true, value: await m.api(method, path, body ?? undefined)}; }
                catch (e) { return {ok: false, status: e.status, code: e.code}; }
            }""", [method, path, body])

    def close(self):
        self.context.close()


def initialize(fd, token):
    """An MCP initialize through the proxy: the status."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                       "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                                  "clientInfo": {"name": "ui-test", "version": "0"}}}).encode()
    req = urllib.request.Request(fd.url + "/mcp", data=body, method="POST", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream"})
    ctx = ssl.create_default_context(cafile=fd.cafile)
    with urllib.request.urlopen(req, context=ctx, timeout=60) as r:
        r.read()
        return r.status


def no_csp_violations(s):
    bad = [m for m in s.console if "Content Security Policy" in m or "Refused to" in m]
    assert bad == [], bad


def test_the_page_carries_its_policy_and_a_browser_at_the_root_lands_on_it(frontdoor, browser):
    ctx = ssl.create_default_context(cafile=frontdoor.cafile)
    with urllib.request.urlopen(frontdoor.url + "/ui/", context=ctx, timeout=30) as r:
        csp = r.headers["Content-Security-Policy"]
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Referrer-Policy"] == "no-referrer"
    for directive in ["default-src 'none'", "script-src 'self'", "style-src 'self'",
                      "connect-src 'self'", "frame-ancestors 'none'", "form-action 'none'"]:
        assert directive in csp, csp
    context = browser.new_context(ignore_https_errors=True)
    page = open_page(context, frontdoor.url + "/")
    assert page.url == frontdoor.url + "/ui/"
    page.wait_for_selector("#login:not([hidden])")
    context.close()


def test_a_user_switches_a_server_off_and_sees_the_gateway_restart(frontdoor, browser, world):
    s = Session(browser, frontdoor, world["alice"], "alice")
    page = s.page
    try:
        assert page.text_content("#whoami") == "alice"
        page.wait_for_selector('#server-table tr[data-server="fetch"]', timeout=WAIT_MS)
        origins = {r: page.text_content(f'#server-table tr[data-server="{r}"] td:nth-child(3)')
                   for r in ["fetch", "time", "notebook", "mine"]}
        assert origins == {"fetch": "base:official", "time": "base:official",
                           "notebook": "team:ml", "mine": "custom"}
        page.wait_for_selector('#events-status[data-status="live"]', timeout=WAIT_MS)
        # One event first (a secret stored elsewhere: secrets.changed), so the page has an id
        # to resume from when chromium cuts its stream as Docker makes the gateway's network.
        frontdoor.api("PUT", "/users/me/secrets", world["alice"], {"time.zone": "UTC"})
        page.wait_for_selector('#secret-list li[data-secret="time.zone"]', timeout=WAIT_MS)
        # The snippet names the public URL and a placeholder, never the token.
        snippet = json.loads(page.text_content("#config-snippet"))
        server = snippet["mcpServers"]["mcp-frontdoor"]
        assert server["url"] == frontdoor.url + "/mcp"
        assert server["headers"]["Authorization"] == "Bearer <your token>"

        page.click("#gw-start")
        page.wait_for_selector('#gw-state[data-state="ready"]', timeout=WAIT_MS)
        page.wait_for_selector('#gw-history li[data-state="ready"]', timeout=WAIT_MS)
        before = frontdoor.api("GET", "/users/me/gateway", world["alice"])["container"]
        s.shot("ready")

        page.uncheck('#server-table input[data-server="fetch"]')
        page.wait_for_selector('#server-table tr[data-server="fetch"][data-enabled="false"]',
                               timeout=WAIT_MS)
        # The stale gateway is replaced: stopping, then starting, then ready again; the page
        # learns each state from the event stream (newest first in the history).
        page.wait_for_selector('#gw-history li[data-state="stopping"]', timeout=WAIT_MS)
        # The next request reaches the fresh gateway.
        assert initialize(frontdoor, world["alice"]) == 200
        page.wait_for_function(
            """() => { const h = [...document.querySelectorAll('#gw-history li')]
                         .map(li => li.dataset.state);
                       return h[0] === 'ready' && h.includes('starting') && h.includes('stopping'); }""",
            timeout=WAIT_MS)
        assert page.get_attribute("#gw-state", "data-state") == "ready"
        g = frontdoor.api("GET", "/users/me/gateway", world["alice"])
        cat = frontdoor.api("GET", "/users/me/catalogs?include=merged", world["alice"])
        assert g["catalog_hash"] == cat["merged_hash"], "the fresh gateway has the new catalog"
        assert "fetch" not in cat["merged"]["registry"] and "fetch" in cat["origins"]
        s.shot("restarted")
        # Back on: the switch works both ways.
        page.check('#server-table input[data-server="fetch"]')
        page.wait_for_selector('#server-table tr[data-server="fetch"][data-enabled="true"]',
                               timeout=WAIT_MS)
        assert before  # a container was running before the switch
        no_csp_violations(s)
    finally:
        s.close()


def test_a_secret_is_set_and_never_seen_again(frontdoor, browser, world):
    value = "sv-" + pysecrets.token_hex(12)
    s = Session(browser, frontdoor, world["alice"], "alice-secrets")
    page = s.page
    try:
        page.fill("#secret-name", "fetch.api_key")
        page.fill("#secret-value", value)
        page.click("#secret-form button[type=submit]")
        page.wait_for_selector('#secret-list li[data-secret="fetch.api_key"]', timeout=WAIT_MS)
        assert page.input_value("#secret-value") == ""
        assert page.input_value("#secret-name") == ""
        # Replace it: still only the name.
        page.fill("#secret-name", "fetch.api_key")
        page.fill("#secret-value", value + "-2")
        page.click("#secret-form button[type=submit]")
        page.wait_for_selector("#secrets-msg:has-text('Saved fetch.api_key')", timeout=WAIT_MS)
        page.click("#logs-refresh")
        goto(page, page.url)
        page.wait_for_selector('#secret-list li[data-secret="fetch.api_key"]', timeout=WAIT_MS)
        s.shot("secret")
        assert value not in page.content()
        assert value not in page.evaluate("document.body.innerText")
        assert page.input_value("#secret-value") == ""
        bodies = s.bodies()
        assert len(bodies) > 5
        leaked = [b[:200] for b in bodies if value.encode() in b]
        assert leaked == [], leaked
        # The token is only ever a header: never in a URL, a cookie or localStorage.
        assert not [u for u in s.urls if world["alice"] in u]
        assert s.context.cookies() == []
        assert page.evaluate("localStorage.length") == 0
        # Delete it.
        page.click('#secret-list li[data-secret="fetch.api_key"] button')
        page.wait_for_selector('#secret-list li[data-secret="fetch.api_key"]', state="detached",
                               timeout=WAIT_MS)
        no_csp_violations(s)
    finally:
        s.close()


def test_an_admin_sees_every_gateway_the_catalogs_and_the_audit_trail(frontdoor, browser, world):
    for u in ["alice", "bob"]:
        frontdoor.api("POST", "/users/me/gateway", world[u])
    s = Session(browser, frontdoor, world["admin"], "admin")
    page = s.page
    try:
        try:
            page.wait_for_selector("#admin-view:not([hidden])", timeout=WAIT_MS)
        except Exception:
            s.shot("no-admin-view")
            raise AssertionError(f"no admin view; console: {s.console}")
        assert page.text_content("#whoami") == "root-admin (admin)"
        for u in ["alice", "bob"]:
            page.wait_for_selector(f'#gateways-table tr[data-user="{u}"]', timeout=WAIT_MS)
            assert page.text_content(f'#gateways-table tr[data-user="{u}"] .state') == "ready"
        page.wait_for_selector("#base-list li", timeout=WAIT_MS)
        assert "official (priority 0)" in page.text_content("#base-list")
        assert "fetch, time" in page.text_content("#base-list")
        assert "notebook" in page.text_content("#team-list")
        # The audit trail, or the page's word that this front door has no audit query.
        page.wait_for_function(
            """() => document.querySelectorAll('#audit-table tbody tr').length > 0
                     || document.getElementById('audit-msg').textContent !== ''""",
            timeout=WAIT_MS)
        rows = page.locator("#audit-table tbody tr").count()
        if rows == 0:
            assert "404" in page.text_content("#audit-msg")
        else:
            assert "secret.put" in page.text_content("#audit-table")
            assert "bob-secret-value-1234" not in page.content()
        # A state change of someone else's gateway reaches the admin's table: as the event
        # (the row says stopping or stopped), or, when removing bob's network made the browser
        # drop the event stream before its first event (Chromium's ERR_NETWORK_CHANGED), as the
        # page's resync from GET /gateways, which lists no stopped gateway (the row goes).
        # Without the event stream the row would still say ready.
        frontdoor.api("DELETE", "/users/bob/gateway", world["admin"])
        try:
            page.wait_for_function(
                """() => {
                     const state = document.querySelector(
                       '#gateways-table tr[data-user="bob"] .state');
                     return state === null
                       || ['stopping', 'stopped'].includes(state.dataset.state);
                   }""",
                timeout=WAIT_MS)
        except Exception:
            s.shot("no-bob-stop")
            events = [r.status for r in s.responses if "/api/v1/events" in r.url]
            raise AssertionError(
                f"bob's stop never reached the table; event stream answers {events}; "
                f"failed requests {s.failed[-5:]}; console {s.console[-5:]}")
        page.click("#gateways-refresh")
        try:
            page.wait_for_selector('#gateways-table tr[data-user="alice"]', timeout=WAIT_MS)
        except Exception:
            s.shot("no-alice-row")
            raise AssertionError(f"{page.text_content('#gateways-msg')}; {s.console[-5:]}")
        s.shot("admin")
        no_csp_violations(s)
    finally:
        s.close()


BOBS_PATHS = [("GET", "users/bob/catalogs"), ("GET", "users/bob/secrets"),
              ("GET", "users/bob/gateway"), ("GET", "users/bob/gateway/logs?tail=10"),
              ("PUT", "users/bob/secrets"), ("DELETE", "users/bob/secrets?name=bobs.key"),
              ("POST", "users/bob/gateway"), ("DELETE", "users/bob/gateway"),
              ("POST", "users/bob/servers"), ("PUT", "users/bob/catalogs"),
              ("GET", "gateways"), ("GET", "catalogs/base")]


def test_alices_page_cannot_read_or_change_bobs_data(frontdoor, browser, world):
    s = Session(browser, frontdoor, world["alice"], "alice-vs-bob")
    try:
        for method, path in BOBS_PATHS:
            body = {"bobs.key": "overwritten"} if method == "PUT" and "secrets" in path else (
                {"enable": [], "disable": ["bobs"]} if path.endswith("servers") else (
                    {"custom": {}} if method == "PUT" else None))
            got = s.api(method, path, body)
            assert got == {"ok": False, "status": 403, "code": "forbidden"} or (
                got.get("status") == 403), (method, path, got)
            # API level too, outside any browser.
            status, raw = frontdoor.request(method, "/api/v1/" + path, world["alice"], body)
            assert status == 403, (method, path, status, raw[:200])
            assert b"bob-secret-value" not in raw and b"bobs" not in raw
        # Bob's data is as it was.
        names = frontdoor.api("GET", "/users/me/secrets", world["bob"])["names"]
        assert names == ["bobs.key"]
        cat = frontdoor.api("GET", "/users/me/catalogs?include=merged", world["bob"])
        assert "bobs" in cat["merged"]["registry"]
        # Nothing of bob's reached alice's page.
        assert "bobs" not in s.page.content()
    finally:
        s.close()


def test_a_hostile_title_renders_as_text(frontdoor, browser, world):
    s = Session(browser, frontdoor, world["alice"], "alice-xss")
    page = s.page
    try:
        cell = '#server-table tr[data-server="mine"] td:nth-child(2)'
        page.wait_for_selector(cell, timeout=WAIT_MS)
        assert page.text_content(cell) == XSS
        assert page.locator("#server-table img").count() == 0
        assert page.evaluate("window.__pwned") is None
        assert page.title() == "mcp-frontdoor"
        s.shot("xss")
    finally:
        s.close()


def test_the_event_parser_follows_the_stream_format(frontdoor, browser):
    """The page's own SSE parser, fed a stream cut at awkward places."""
    context = browser.new_context(ignore_https_errors=True)
    page = open_page(context, frontdoor.url + "/ui/")
    got = page.evaluate("""async () => {
        const { SseParser } = await import("./events.js");
        const out = [];
        const p = new SseParser((e) => out.push(e));
        const chunks = [": keep-alive\\n\\n", "id: 7\\nevent: gateway.state\\nda", "ta: {\\"a\\":",
                        "1}\\r", "\\n\\r\\n", "data: x\\ndata: y\\n\\n", "event: reset\\r\\n\\r\\n",
                        "id: 9\\revent: catalog.changed\\rdata:z\\r\\r", "data: tail-without-end"];
        for (const c of chunks) p.push(c);
        return out;
    }""")
    assert got == [
        {"id": "7", "type": "gateway.state", "data": '{"a":1}'},
        {"id": "7", "type": "message", "data": "x\ny"},
        {"id": "7", "type": "reset", "data": ""},
        {"id": "9", "type": "catalog.changed", "data": "z"},
    ]
    context.close()
