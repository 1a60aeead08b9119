# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Fixtures for the end-to-end tests (root, network namespaces, real nginx, the agent).

    netns   a fresh client/server namespace pair joined by veth (kw.NetnsPair)
    chain   three namespaces client -- proxy -- backend (kw.NetnsChain); the nginx and
            apache fixtures do not apply to it (they take netns)
    nginx   nginx in the server namespace on port 80 (IPv4 and IPv6); options through
            @pytest.mark.nginx(keepalive_timeout="2s", ...) or indirect parametrization
    agent   build/keepwatchd restricted to the pair's two namespaces, with --no-pin;
            extra flags through @pytest.mark.agent_args("--port", "80")

All are function-scoped: every test starts from zero counters in namespaces of its own,
and every namespace, server and agent is removed at teardown, even on failure.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kw  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "nginx(**options): options for the nginx fixture")
    config.addinivalue_line("markers", "agent_args(*args): extra flags for the agent fixture")


@pytest.fixture(scope="session", autouse=True)
def _host_ready():
    if os.geteuid() != 0:
        pytest.exit("the end-to-end tests need root (network namespaces, BPF)", returncode=4)
    if not os.path.isdir("/var/run/netns"):
        os.makedirs("/var/run/netns", exist_ok=True)
    kw.cleanup_stale_netns()
    yield


@pytest.fixture
def netns():
    pair = kw.NetnsPair()
    try:
        pair.create()
    except BaseException:
        pair.destroy()
        raise
    yield pair
    pair.destroy()


@pytest.fixture
def chain():
    net = kw.NetnsChain()
    try:
        net.create()
    except BaseException:
        net.destroy()
        raise
    yield net
    net.destroy()


@pytest.fixture
def nginx(request, netns):
    opts = {}
    marker = request.node.get_closest_marker("nginx")
    if marker is not None:
        opts.update(marker.kwargs)
    if hasattr(request, "param"):
        opts.update(request.param)
    server = kw.Nginx(netns, **opts)
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture
def agent(request, netns):
    marker = request.node.get_closest_marker("agent_args")
    extra = marker.args if marker is not None else ()
    a = kw.Agent([netns.client_ns, netns.server_ns], extra_args=extra)
    try:
        a.start()
        yield a
    finally:
        a.stop()
