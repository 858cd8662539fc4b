"""Load goes only to loopback unless a host is explicitly allowed."""

from __future__ import annotations

import pytest

from schoolsurge.safety import UnsafeTargetError, check_target


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://127.0.0.1:8080", "127.0.0.1"),
        ("http://127.5.6.7", "127.5.6.7"),
        ("http://localhost:1", "localhost"),
        ("http://[::1]:80", "::1"),
    ],
)
def test_loopback_targets_pass(url: str, host: str) -> None:
    assert check_target(url) == host


@pytest.mark.parametrize("url", ["http://10.0.0.1", "http://192.168.1.2:80", "https://8.8.8.8/"])
def test_other_targets_are_refused_with_what_to_do(url: str) -> None:
    with pytest.raises(UnsafeTargetError, match="--allow-host"):
        check_target(url)


def test_an_allowed_host_passes_and_only_that_one() -> None:
    assert check_target("http://10.0.0.1:80", allowed_host="10.0.0.1") == "10.0.0.1"
    with pytest.raises(UnsafeTargetError):
        check_target("http://10.0.0.2:80", allowed_host="10.0.0.1")


def test_not_a_url() -> None:
    with pytest.raises(UnsafeTargetError, match="not an http"):
        check_target("127.0.0.1:8080")


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:99999", "http://127.0.0.1:0", "http://127.0.0.1:http", "http://[::1]:-1"]
)
def test_a_port_nothing_can_listen_on_is_refused(url: str) -> None:
    with pytest.raises(UnsafeTargetError, match="the port must be a number from 1 to 65535"):
        check_target(url)
