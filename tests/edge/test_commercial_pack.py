"""Issue 18: an edge box set to ``commercial_only`` refuses a ``cmd/pack`` naming a research pack
(until now only the start-up config was checked), before any file is verified or engine loaded."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from edge.box import EdgeBox
from protocol.commands import PackCommand
from protocol.facepack import NotCommercialError
from protocol.messages import new_id, now


def test_an_edge_box_set_to_commercial_only_refuses_a_research_pack_command():
    box = SimpleNamespace(config=SimpleNamespace(commercial_only=True, models=None), bundle=None)
    command = PackCommand(command_id=new_id(), brand="demo", store="s1", device="e1", pack_id="scrfd500m-mbf", ts=now())
    with pytest.raises(NotCommercialError, match="scrfd500m-mbf is not cleared"):
        EdgeBox._use_pack(box, command)  # before any file is verified or engine loaded: the box keeps its pack
