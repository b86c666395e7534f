"""Fixtures of the in-process tests: the group coordinator on an in-memory store (fakes.py)."""

from __future__ import annotations

import pytest

from fakes import FakeCursorSync, FakeStore, started_coordinator

from kop.groups.state import Group


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def cursor_sync() -> FakeCursorSync:
    return FakeCursorSync()


@pytest.fixture
async def coordinator(store, cursor_sync):
    coordinator = await started_coordinator(store, cursor_sync)
    yield coordinator
    await coordinator.close()


@pytest.fixture
def transitions(monkeypatch) -> list:
    """Every (from, to) state transition of any group during the test, in order."""
    seen: list = []
    transition = Group.transition

    def recording(group, target):
        before = group.state
        transition(group, target)
        seen.append((before, target))
    monkeypatch.setattr(Group, "transition", recording)
    return seen
