"""`sam build` (reused while its sources are unchanged) and `sam deploy`."""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from .options import (
    BUILD_DIR,
    BUILD_STAMP,
    RUNTIME_PYTHON,
    SAM_IN_PROJECT,
    SAMCONFIG,
    TEMPLATE,
    Log,
    PublishError,
    PublishOptions,
    Target,
)


def find_sam(options: PublishOptions) -> Path:
    candidates = [options.sam] if options.sam else [options.project_dir / SAM_IN_PROJECT]
    if not options.sam and (on_path := shutil.which("sam")):
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate and candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise PublishError(
        f"aws-sam-cli not found at {candidates[0]}: run `make tools` (it installs sam in "
        ".tools/sam), or give its path with --sam"
    )


@functools.cache
def _runtime_python() -> Path | None:
    """A python3.13 that runs (a pyenv shim may not), for the functions' bytecode."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    on_path = shutil.which(RUNTIME_PYTHON)
    candidates = [
        *([Path(on_path)] if on_path else []),
        *sorted(pyenv.glob(f"versions/3.13*/bin/{RUNTIME_PYTHON}")),
    ]
    for candidate in candidates:
        check = [str(candidate), "-c", "import sys; sys.exit(sys.version_info[:2] != (3, 13))"]
        if subprocess.run(check, capture_output=True, check=False).returncode == 0:
            return candidate
    return None


def _sam_environment() -> dict[str, str]:
    # sam deploy polls every 5 s by default (sam sync: 0.5 s); a stack that takes a second
    # would cost ten. Whoever set SAM_CLI_POLL_DELAY keeps theirs.
    environment = {"SAM_CLI_POLL_DELAY": "0.5", **os.environ, "SAM_CLI_TELEMETRY": "0"}
    python = _runtime_python()
    if python is not None:
        environment["PATH"] = f"{python.parent}{os.pathsep}{environment.get('PATH', '')}"
    return environment


def _source_digest(options: PublishOptions, sam: Path) -> str:
    """What a build depends on: template.yaml, functions/ and the sam and Python used."""
    digest = hashlib.sha256()
    digest.update(str(sam.resolve()).encode())
    digest.update(str(_runtime_python()).encode())
    digest.update((options.project_dir / TEMPLATE).read_bytes())
    functions = options.project_dir / "functions"
    for path in sorted(functions.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and ".aws-sam" not in path.parts:
            digest.update(str(path.relative_to(functions)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


@contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    """One build at a time in a build directory (tests and a maintainer may share it)."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build(options: PublishOptions, sam: Path, log: Log) -> Path:
    """`sam build` into the build directory, skipped when nothing it depends on changed."""
    build_dir = options.build_dir or options.project_dir / BUILD_DIR
    stamp = build_dir / BUILD_STAMP
    with _exclusive(build_dir.parent / ".valohai-hybrid-build.lock"):
        digest = _source_digest(options, sam)
        if (build_dir / TEMPLATE).is_file() and stamp.is_file() and stamp.read_text() == digest:
            log(f"functions unchanged since the last build: reusing {build_dir}")
            return build_dir / TEMPLATE
        if _runtime_python() is None:
            log(f"no {RUNTIME_PYTHON} found: the functions ship without bytecode (slower starts)")
        stamp.unlink(missing_ok=True)
        _run_sam(
            [
                str(sam),
                "build",
                "--template-file",
                str(options.project_dir / TEMPLATE),
                "--build-dir",
                str(build_dir),
                "--config-file",
                str(options.project_dir / SAMCONFIG),
                "--config-env",
                options.config_env,
            ],
            options,
            "sam build",
        )
        stamp.write_text(digest)
    return build_dir / TEMPLATE


def deploy(
    options: PublishOptions,
    sam: Path,
    built_template: Path,
    target: Target,
    stack_name: str,
    parameters: Mapping[str, str],
) -> None:
    # Quoted, so that an empty value is still a value to sam.
    overrides = [f'{key}="{_escaped(value)}"' for key, value in parameters.items()]
    _run_sam(
        [
            str(sam),
            "deploy",
            "--template-file",
            str(built_template),
            "--config-file",
            str(options.project_dir / SAMCONFIG),
            "--config-env",
            options.config_env,
            "--stack-name",
            stack_name,
            "--region",
            target.region,
            "--s3-bucket",
            target.bucket,
            "--no-progressbar",
            "--parameter-overrides",
            *overrides,
        ],
        options,
        "sam deploy",
    )


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _run_sam(command: list[str], options: PublishOptions, what: str) -> None:
    completed = subprocess.run(
        command,
        cwd=options.project_dir,
        env=_sam_environment(),
        stdout=None if options.verbose else subprocess.PIPE,
        stderr=None if options.verbose else subprocess.STDOUT,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        tail = "" if options.verbose else "\n" + "\n".join(completed.stdout.splitlines()[-25:])
        raise PublishError(f"{what} failed (exit code {completed.returncode}){tail}")
