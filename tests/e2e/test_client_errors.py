"""What an MCP client shows: the official Python SDK raises an error carrying the front
door's own words (a JSON-RPC error body) for an expired token and for a gateway that cannot
start, instead of "Server returned an error response"."""

import asyncio
import ssl
import sys
import time
from pathlib import Path

import jwt
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest import running_frontdoor  # noqa: E402
import mcp_check  # noqa: E402

HS_SECRET = "e2e-hs256-secret-that-is-long-enough-0123456789"  # conftest's FrontDoor writes it


def all_text(e: BaseException) -> str:
    """The text of an exception and of everything inside it (task groups wrap SDK errors)."""
    parts = [f"{type(e).__name__}: {e}"]
    for inner in getattr(e, "exceptions", ()) or ():
        parts.append(all_text(inner))
    if e.__cause__ is not None:
        parts.append(all_text(e.__cause__))
    return " | ".join(parts)


def sdk_error(fd, token: str) -> str:
    """Opens a streamable-HTTP session with the SDK; the text of the error it raises."""

    async def session():
        from mcp import ClientSession
        from mcp.client.streamable_http import streamable_http_client

        async with mcp_check.http_client(token, fd.cafile, False) as hc:
            async with streamable_http_client(fd.url + "/mcp", http_client=hc) as (r, w, *_):
                async with ClientSession(r, w) as s:
                    await asyncio.wait_for(s.initialize(), 60)

    try:
        asyncio.run(session())
    except BaseException as e:  # noqa: BLE001 - the SDK's error is what is under test
        return all_text(e)
    pytest.fail("the session opened; an error was expected")


@pytest.fixture(scope="module")
def missing_image_frontdoor():
    yield from running_frontdoor(
        "10m",
        image="mcp-fd-e2e-absent/gateway:none",
        spawn_timeout="30s",
        docker={"user": '"65532:65532"', "pull_timeout": "15s"},
    )


def test_the_sdk_shows_when_a_token_expired_and_what_to_do(missing_image_frontdoor):
    fd = missing_image_frontdoor
    now = int(time.time())
    token = jwt.encode({"sub": "late", "iss": "e2e", "aud": "e2e", "iat": now - 7200,
                        "exp": now - 3600}, HS_SECRET, algorithm="HS256")
    text = sdk_error(fd, token)
    assert "token expired at" in text and "get a new token" in text, text
    assert "Server returned an error response" not in text, text


def test_the_sdk_shows_a_missing_gateway_image_and_who_can_fix_it(missing_image_frontdoor):
    fd = missing_image_frontdoor
    text = sdk_error(fd, fd.token("alice"))
    assert "mcp-fd-e2e-absent/gateway:none" in text and "ask an admin" in text, text
