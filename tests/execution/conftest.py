"""Fixtures of the execution tests: one small Ray cluster for the whole session.

The cluster is two nodes of one CPU each on this machine (``ray.cluster_utils.Cluster``), so
that the same cluster serves the engine tests and the node-failure test, which removes the
second node mid-run and adds a fresh one afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers.fake_openai_server import FakeImagesServer

# The tests folder, where the `helpers` package lives: pytest puts it on sys.path (spawned local
# workers copy sys.path); Ray's workers get it through PYTHONPATH below.
TESTS_DIR = str(Path(__file__).parents[1])


@pytest.fixture(scope="session")
def cluster_openai_server() -> Iterator[FakeImagesServer]:
    """A fake OpenAI Images server for the whole session (the Ray cluster's workers know its address)."""
    with FakeImagesServer() as server:
        yield server


@pytest.fixture
def openai_env(cluster_openai_server: FakeImagesServer, monkeypatch: pytest.MonkeyPatch) -> FakeImagesServer:
    """The session's fake server, reset, with ``OPENAI_API_KEY``/``OPENAI_BASE_URL`` pointing at it."""
    server = cluster_openai_server
    server.latency, server.images_served, server.script, server.quota_exhausted = 0.0, 0, [], False
    server.hold_after = None
    server.release.clear()
    server.calls.clear()
    server.call_times.clear()
    monkeypatch.setenv("OPENAI_API_KEY", server.api_key)
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    return server


@pytest.fixture(scope="session")
def ray_cluster(cluster_openai_server: FakeImagesServer) -> Iterator[Any]:
    """A connected 2-node local Ray cluster (1 CPU per node), shared by every Ray test."""
    pytest.importorskip("ray")
    import ray
    from ray.cluster_utils import Cluster

    # Ray's worker processes inherit the environment of the node processes started here: the
    # tests folder and the fake server's address. The environment is restored after.
    server = cluster_openai_server
    variables = {
        "PYTHONPATH": os.pathsep.join([TESTS_DIR, *filter(None, [os.environ.get("PYTHONPATH")])]),
        "OPENAI_API_KEY": server.api_key,
        "OPENAI_BASE_URL": server.base_url,
        "RAY_AUTH_MODE": "disabled",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in variables.items():
            patch.setenv(name, value)
        head = {"num_cpus": 1, "include_dashboard": False}
        cluster = Cluster(initialize_head=True, connect=False, head_node_args=head)
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
        cluster.environment = variables  # for nodes added later (the node-failure test)
    yield cluster
    ray.shutdown()
    cluster.shutdown()
