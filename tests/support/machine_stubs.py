"""Recording stand-ins for systemctl, docker, apt-get and dpkg-query, put first on PATH.

The boot script and the units' helpers run for real; only these commands, which would change
this machine as root, are replaced at their command line. Each call is appended to
`$STUB_STATE/calls.jsonl` with its arguments and environment. They keep the little state the
script can observe (installed packages, present images, enabled and active units), and
`systemctl` runs a unit the way systemd does for what these units use: EnvironmentFile,
RuntimeDirectory (+Mode, removed when the unit stops), UMask, ExecStartPre (a leading `-`
ignores failure), ExecStart, ExecStop; Type=oneshot ends when ExecStart does.

Usage: python machine_stubs.py COMMAND ARGS...
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any


def state_dir() -> Path:
    return Path(os.environ["STUB_STATE"])


def root() -> Path:
    return Path(os.environ["VALOHAI_QUEUE_ROOT"])


def load(name: str, default: Any) -> Any:
    path = state_dir() / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else default


def save(name: str, value: Any) -> None:
    (state_dir() / f"{name}.json").write_text(json.dumps(value))


def record(command: str, argv: list[str]) -> None:
    entry = {"command": command, "argv": argv, "env": dict(os.environ)}
    with (state_dir() / "calls.jsonl").open("a") as calls:
        calls.write(json.dumps(entry) + "\n")


def dpkg_query(argv: list[str]) -> int:
    """Only `dpkg-query --show --showformat='${Status}' PACKAGE`, as the script asks."""
    installed = load("packages", [])
    package = argv[-1]
    if package not in installed:
        print(f"dpkg-query: no packages found matching {package}", file=sys.stderr)
        return 1
    sys.stdout.write("install ok installed")
    return 0


def apt_get(argv: list[str]) -> int:
    if "install" in argv:
        names = [a for a in argv[argv.index("install") + 1 :] if not a.startswith("-")]
        save("packages", sorted({*load("packages", []), *names}))
    return 0


def docker(argv: list[str]) -> int:
    images = load("images", [])
    if argv[:2] == ["image", "inspect"]:
        return 0 if argv[2] in images else 1
    if argv[:1] == ["build"]:
        images.append(argv[argv.index("--tag") + 1])
    elif argv[:1] == ["pull"]:
        images.append(argv[1])
    save("images", images)
    return 0


def unit_file(unit: str) -> Path:
    return root() / "etc" / "systemd" / "system" / unit


def parse_unit(unit: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in unit_file(unit).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


def runtime_directory(settings: dict[str, list[str]]) -> Path | None:
    names = settings.get("RuntimeDirectory")
    return root() / "run" / names[0] if names else None


def run_command(line: str, env: dict[str, str], umask: int) -> bool:
    optional = line.startswith("-")
    argv = shlex.split(line.lstrip("-"))
    result = subprocess.run(argv, env=env, check=False, preexec_fn=lambda: os.umask(umask))
    return optional or result.returncode == 0


def start(unit: str) -> bool:
    active: list[str] = load("active", [])
    if unit in active:
        return True
    if not unit_file(unit).exists():  # docker.service: nothing of ours to run
        save("active", [*active, unit])
        return True
    settings = parse_unit(unit)
    env = dict(os.environ)
    for path in settings.get("EnvironmentFile", []):
        for line in Path(path).read_text().splitlines():
            key, value = line.split("=", 1)
            env[key] = value
    runtime = runtime_directory(settings)
    if runtime:
        runtime.mkdir(parents=True)
        runtime.chmod(int(settings.get("RuntimeDirectoryMode", ["0755"])[0], 8))
        env["RUNTIME_DIRECTORY"] = str(runtime)
    umask = int(settings.get("UMask", ["0022"])[0], 8)
    steps = [*settings.get("ExecStartPre", []), *settings["ExecStart"]]
    succeeded = all(run_command(step, env, umask) for step in steps)
    oneshot = settings.get("Type") == ["oneshot"]
    if succeeded and not oneshot:
        save("active", [*load("active", []), unit])
    elif runtime:
        shutil.rmtree(runtime)
    return succeeded


def stop(unit: str) -> None:
    active: list[str] = load("active", [])
    if unit not in active:
        return
    if unit_file(unit).exists():
        settings = parse_unit(unit)
        for step in settings.get("ExecStop", []):
            run_command(step, dict(os.environ), 0o022)
        runtime = runtime_directory(settings)
        if runtime and runtime.exists():
            shutil.rmtree(runtime)
    save("active", [u for u in load("active", []) if u != unit])


def systemctl(argv: list[str]) -> int:
    words = [a for a in argv if not a.startswith("--")]
    verb, units = words[0], words[1:]
    if verb == "daemon-reload":
        return 0
    if verb == "enable":
        save("enabled", sorted({*load("enabled", []), *units}))
        if "--now" in argv:
            return 0 if all([start(u) for u in units]) else 1
        return 0
    if verb == "stop":
        for unit in units:
            stop(unit)
        return 0
    if verb in ("start", "restart"):
        ok = True
        for unit in units:
            if verb == "restart":
                stop(unit)
            ok = start(unit) and ok
        return 0 if ok or "--no-block" in argv else 1
    print(f"systemctl stub: {verb} is not modelled", file=sys.stderr)
    return 1


COMMANDS = {"systemctl": systemctl, "docker": docker, "apt-get": apt_get, "dpkg-query": dpkg_query}


def main() -> int:
    command, argv = sys.argv[1], sys.argv[2:]
    record(command, argv)
    return COMMANDS[command](argv)


if __name__ == "__main__":
    sys.exit(main())
