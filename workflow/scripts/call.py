"""The script of a rule that calls one radflow function (params.call: "module:function"): the function gets the
rule's inputs and outputs as keyword arguments by their names, the outputs under temporary names that become theirs
when it returns (radflow.failures.atomic_outputs), and params.settings when the rule hands a stage's settings on.
A new output table needs no script of its own (ARCHITECTURE.md, "To add …")."""

import importlib
import sys

from radflow.failures import atomic_outputs

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
module, name = snakemake.params.call.split(":")
function = getattr(importlib.import_module(module), name)
outputs = dict(snakemake.output.items())
with atomic_outputs(*outputs.values()) as written:
    arguments = dict(snakemake.input.items()) | dict(zip(outputs, written))
    if "settings" in snakemake.params.keys():
        arguments["settings"] = snakemake.params.settings
    function(**arguments)
