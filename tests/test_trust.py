"""Trust per visitor: loopback without forwarding headers is the owner; anything proxied is remote."""
from __future__ import annotations

import pytest

from aigc.serve.trust import FORWARDING_HEADERS, is_loopback_ip, visitor

BROWSER = {"Host": "localhost:8501", "User-Agent": "Mozilla/5.0", "Origin": "http://localhost:8501"}


@pytest.mark.parametrize("peer", ["127.0.0.1", "::1", "127.8.9.1", "::ffff:127.0.0.1"])
def test_a_direct_loopback_connection_is_the_local_owner(peer):
    assert visitor(peer, BROWSER).local


@pytest.mark.parametrize("header", FORWARDING_HEADERS)
def test_any_forwarding_header_makes_a_loopback_connection_remote(header):
    seen = visitor("127.0.0.1", {**BROWSER, header.title(): "203.0.113.9"})
    assert not seen.local and seen.forwarded


def test_nginx_as_deploy_configures_it_makes_every_visitor_remote():
    """nginx on the same host connects from 127.0.0.1 and adds X-Forwarded-For (deploy/nginx.conf)."""
    assert not visitor("127.0.0.1", {**BROWSER, "X-Forwarded-For": "198.51.100.7"}).local


@pytest.mark.parametrize("peer", ["10.0.0.5", "203.0.113.9", "", None, "localhost", "not an ip", "127.0.0.1.evil"])
def test_other_or_unknown_peers_are_remote(peer):
    assert not visitor(peer, BROWSER).local


def test_without_a_client_connection_there_is_no_network_so_it_is_local():
    assert visitor(None, {}, connected=False).local
    assert not visitor(None, {"X-Forwarded-For": "1.2.3.4"}, connected=False).local


def test_the_limiter_key_is_the_peer_unless_a_trusted_proxy_names_the_client():
    headers = {**BROWSER, "X-Forwarded-For": "1.1.1.1, 198.51.100.7"}  # a forged first entry, the proxy's last
    assert visitor("127.0.0.1", headers).client == "127.0.0.1"
    assert visitor("127.0.0.1", headers, trusted_proxy=True).client == "198.51.100.7"
    assert visitor("127.0.0.1", {"X-Real-IP": "198.51.100.8"}, trusted_proxy=True).client == "198.51.100.8"
    assert visitor("127.0.0.1", {"X-Forwarded-For": "garbage"}, trusted_proxy=True).client == "127.0.0.1"
    assert len(visitor("a" * 500, {}).client) <= 64


def test_forged_header_objects_do_not_crash_and_grant_nothing():
    class Weird:
        def __str__(self):
            raise ValueError("no")

    assert not visitor("203.0.113.1", {Weird(): "x"}).local
    assert not is_loopback_ip(None) and not is_loopback_ip("::1x")
