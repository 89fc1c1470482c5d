"""Fake CNI plugins that record their invocations.

`Recorder(bin_dir, log)` writes executables into `bin_dir`; each appends one JSON line
per invocation to `log` (its name, its CNI_ environment, its stdin config), in the
order they ran, whichever plugin it was. What a plugin does after recording:

- `result="prev"` (the default): ADD prints its prevResult, as a chained plugin that
  changes nothing does; other commands print nothing;
- `result="append"`: ADD prints a result whose interfaces are the prevResult's plus one
  named after the plugin;
- `result="none"`: ADD prints nothing (a plugin breaking the protocol);
- `wraps=Path`: the real plugin at that path runs with the same stdin and environment,
  and its output and exit status are the fake's;
- `fail={"DEL": 42}`: that command prints a CNI error with that code and exits 1.

    rec = Recorder(tmp_path / "bin", tmp_path / "calls.jsonl")
    net = {"type": rec.plugin("a"), ...}
    ...  # run the code under test with tmp_path / "bin" on CNI_PATH
    assert [(c.plugin, c.command) for c in rec.calls()] == [("a", "ADD")]
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, NamedTuple

SCRIPT = """#!{python} -I
import json, os, subprocess, sys
name = os.path.basename(sys.argv[0])
stdin = sys.stdin.buffer.read()
conf = json.loads(stdin)
env = {{k: v for k, v in os.environ.items() if k.startswith("CNI_") or k in {env_keys!r}}}
line = json.dumps({{"plugin": name, "env": env, "conf": conf}}) + "\\n"
fd = os.open({log!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
os.write(fd, line.encode())  # one write: lines of plugins run at once do not mix
os.close(fd)
command = env.get("CNI_COMMAND")
if {wraps!r}:
    sys.exit(subprocess.run([{wraps!r}], input=stdin).returncode)
fail = {fail!r}
if command in fail:
    print(json.dumps({{"cniVersion": conf.get("cniVersion"), "code": fail[command],
                      "msg": name + " " + command + " failed"}}))
    sys.exit(1)
if command == "ADD" and {result!r} == "prev":
    json.dump(conf["prevResult"], sys.stdout)
elif command == "ADD" and {result!r} == "append":
    prev = conf.get("prevResult") or {{"interfaces": []}}
    print(json.dumps({{"cniVersion": conf["cniVersion"],
                      "interfaces": prev["interfaces"] + [{{"name": name}}]}}))
"""


class Call(NamedTuple):
    plugin: str  # the executable's name
    env: dict[str, str]  # its CNI_ variables (and any `env_keys` asked for)
    conf: dict[str, Any]  # its stdin

    @property
    def command(self) -> str:
        return self.env.get("CNI_COMMAND", "")

    @property
    def ifname(self) -> str:
        return self.env.get("CNI_IFNAME", "")

    @property
    def args(self) -> str:
        return self.env.get("CNI_ARGS", "")


class Recorder:
    """Recording fake plugins in `bin_dir` (made if missing), all logging to `log`."""

    def __init__(self, bin_dir: Path, log: Path) -> None:
        self.bin_dir = bin_dir
        self.log = log
        bin_dir.mkdir(parents=True, exist_ok=True)

    def plugin(
        self,
        name: str,
        *,
        result: Literal["prev", "append", "none"] = "prev",
        wraps: Path | None = None,
        fail: Mapping[str, int] | None = None,
        env_keys: Iterable[str] = (),
    ) -> str:
        """Write the fake plugin `name`; returns its name (its `type` in a config)."""
        path = self.bin_dir / name
        path.write_text(
            SCRIPT.format(
                python=sys.executable,
                log=str(self.log),
                env_keys=sorted(env_keys),
                wraps=str(wraps) if wraps else "",
                fail=dict(fail or {}),
                result=result,
            )
        )
        path.chmod(0o755)
        return name

    def calls(self, plugin: str | None = None, command: str | None = None) -> list[Call]:
        """The invocations so far, oldest first (of one plugin, of one command)."""
        if not self.log.exists():
            return []
        calls = [Call(**json.loads(line)) for line in self.log.read_text().splitlines()]
        return [
            c
            for c in calls
            if (plugin is None or c.plugin == plugin) and (command is None or c.command == command)
        ]
