"""The on/off block shared by radflow's shortcuts inside pyradiomics (mesh_shape, preparation, size_zones): each
installs its stand-in once and reads its module's state, which `with` sets for the block and restores after."""

from __future__ import annotations


class Switch:
    """`with Switch(state, on):` state["enabled"] is `on` within the block, what it was before after it."""

    def __init__(self, state: dict, on: bool = True):
        self.state, self.on = state, bool(on)

    def __enter__(self):
        self.before = self.state["enabled"]
        self.state["enabled"] = self.on
        return self

    def __exit__(self, *exc):
        self.state["enabled"] = self.before
        return False
