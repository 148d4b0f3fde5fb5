"""Fixtures: kissim servers (real and virtual domain) on free loopback ports, and KIS clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from .helpers import Kis, SimServer, base_config


@pytest.fixture(scope="module")
def real_server() -> Iterator[SimServer]:
    server = SimServer(base_config(mode="real")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def virtual_server() -> Iterator[SimServer]:
    server = SimServer(base_config(mode="virtual")).start()
    yield server
    server.stop()


@pytest.fixture
def make_kis() -> Iterator[Callable[..., Kis]]:
    clients: list[Kis] = []

    def make(server: SimServer, **kwargs: str) -> Kis:
        client = Kis(server, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def real(real_server: SimServer, make_kis: Callable[..., Kis]) -> Kis:
    return make_kis(real_server).login()


@pytest.fixture
def virtual(virtual_server: SimServer, make_kis: Callable[..., Kis]) -> Kis:
    return make_kis(virtual_server).login()
