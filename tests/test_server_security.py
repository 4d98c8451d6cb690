"""The server's door: API keys, the Host allow-list (DNS rebinding), CORS, network binding."""

from __future__ import annotations

import socket

import httpx
import openai
import pytest

from app.server.config import ConfigError, ServerConfig

HELLO = [{"role": "user", "content": "hello"}]


def test_a_key_can_be_required_and_both_headers_carry_it(make_hearth_server):
    server = make_hearth_server(ServerConfig(api_keys=("sekrit", "other"), require_key=True))
    url = f"{server.base_url}/v1/models"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"x-api-key": "sekri"},
                    {"Authorization": "Basic sekrit"}):
        response = httpx.get(url, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(url, headers={"Authorization": "Bearer sekrit"}).status_code == 200
    assert httpx.get(url, headers={"x-api-key": "other"}).status_code == 200
    # The official client sends its key as a Bearer token.
    reply = server.client.chat.completions.create(model=server.model, messages=HELLO,
                                                  max_tokens=1)
    assert reply.choices[0].message.content is not None
    stranger = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="guess", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        stranger.models.list()
    stranger.close()
    assert httpx.get(f"{server.base_url}/health").status_code == 200  # a probe needs no key


def test_without_keys_configured_no_key_is_asked(hearth_server):
    assert httpx.get(f"{hearth_server.base_url}/v1/models").status_code == 200


def test_a_rebinding_host_is_refused(hearth_server):
    url = f"{hearth_server.base_url}/v1/models"
    port = hearth_server.runner.port
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example",
                 f"localhost.evil.example:{port}"):
        response = httpx.get(url, headers={"Host": host})
        assert response.status_code == 403, host
        assert response.json()["error"]["code"] == "host_not_allowed"
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "LOCALHOST"):
        assert httpx.get(url, headers={"Host": host}).status_code == 200, host


def test_a_request_without_a_host_is_refused(hearth_server):
    with socket.create_connection(("127.0.0.1", hearth_server.runner.port), timeout=10) as conn:
        conn.sendall(b"GET /v1/models HTTP/1.0\r\n\r\n")
        answer = b""
        while chunk := conn.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400")
    assert b"missing_host" in answer


def test_cors_answers_only_listed_origins(make_hearth_server):
    server = make_hearth_server(ServerConfig(cors_origins=("http://app.example:3000",)))
    url = f"{server.base_url}/v1/chat/completions"
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, content-type"}
    allowed = httpx.options(url, headers={"Origin": "http://app.example:3000", **preflight})
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == "http://app.example:3000"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "authorization" in allowed.headers["access-control-allow-headers"]
    refused = httpx.options(url, headers={"Origin": "http://evil.example", **preflight})
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers
    models = f"{server.base_url}/v1/models"
    listed = httpx.get(models, headers={"Origin": "http://app.example:3000"})
    assert listed.headers["access-control-allow-origin"] == "http://app.example:3000"
    # A page on another origin cannot make the model work for it (a "simple" POST needs no
    # preflight, so the Origin itself is checked).
    body = {"model": server.model, "messages": HELLO, "max_tokens": 1}
    sneaky = httpx.post(url, json=body, headers={"Origin": "http://evil.example"})
    assert sneaky.status_code == 403
    assert "access-control-allow-origin" not in sneaky.headers


def test_cors_is_off_by_default(hearth_server):
    response = httpx.options(f"{hearth_server.base_url}/v1/models", headers={
        "Origin": "http://localhost:3000", "Access-Control-Request-Method": "GET"})
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers


def test_the_network_needs_a_key():
    with pytest.raises(ConfigError, match="API key"):
        ServerConfig(network=True)
    assert ServerConfig(network=True, api_keys=("k",)).bind_host == "0.0.0.0"


def test_on_the_network_the_machine_names_are_allowed_and_keys_required(make_hearth_server):
    server = make_hearth_server(ServerConfig(network=True, api_keys=("k",)))
    url = f"{server.base_url}/v1/models"
    assert httpx.get(url).status_code == 401
    name = socket.gethostname()
    response = httpx.get(url, headers={"Host": name, "x-api-key": "k"})
    assert response.status_code == 200
    assert httpx.get(url, headers={"Host": "evil.example", "x-api-key": "k"}).status_code == 403


def test_listening_beyond_loopback_needs_a_key_too():
    with pytest.raises(ConfigError, match="API key"):
        ServerConfig(host="0.0.0.0")
    assert not ServerConfig(host="::1").keys_required
    assert ServerConfig(host="192.168.1.20", api_keys=("k",)).keys_required
