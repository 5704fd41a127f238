"""Build the Lambda bundle: a reproducible zip, made with pip for the *target* platform.

No Docker: pip downloads manylinux wheels for the target Python and architecture
(``--platform``, ``--python-version``, ``--only-binary=:all:``), so the driver's
compiled extension is the Lambda's, whatever the workstation. The zip holds the
package (its revision files are package data, found the same way as when
pip-installed), its dependencies and ``lambda_entry/``; boto3 and botocore are left
out unless asked for (the runtime provides them). Entries are sorted and dated
1980-01-01, so the same inputs give a byte-identical zip.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from alquimista_schema.errors import ConfigurationError, SchemaError

HANDLER = "lambda_entry.handler.handler"
# Lambda's limits for a zip uploaded directly, and for the unzipped function.
MAX_ZIPPED = 50 * 1024 * 1024
MAX_UNZIPPED = 250 * 1024 * 1024
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3",
                    "python-dateutil", "six")
_ARCH = {"x86_64": "x86_64", "arm64": "aarch64"}
_EPOCH = (1980, 1, 1, 0, 0, 0)


class BundleError(SchemaError):
    """The bundle could not be built."""

    code = "BUNDLE"


@dataclass(frozen=True)
class Report:
    output: Path
    zipped_bytes: int
    unzipped_bytes: int
    files: int
    precompiled: bool
    interpreter: str | None
    sha256: str
    include_boto3: bool


def project_root() -> Path:
    """Return the source checkout this package runs from (the bundle needs lambda_entry/)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file() or not (root / "lambda_entry").is_dir():
        raise ConfigurationError(
            "bundle builds from a source checkout (it needs pyproject.toml and lambda_entry/); "
            f"this copy runs from {Path(__file__).resolve().parent}")
    return root


def requirements(include_boto3: bool) -> list[str]:
    """The package's runtime dependencies, minus what the Lambda runtime provides."""
    wanted = []
    for req in metadata.requires("alquimista-schema") or []:
        if "extra ==" in req:
            continue
        name = re.split(r"[ <>=!~;\[]", req, maxsplit=1)[0].lower()
        if not include_boto3 and name in RUNTIME_PROVIDED:
            continue
        wanted.append(req)
    return wanted


def find_interpreter(version: str) -> str | None:
    """Return a path to a working ``python<version>``, or None."""
    name = f"python{version}"
    candidates = [os.environ.get("ALQUIMISTA_TARGET_PYTHON"), shutil.which(name)]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += [str(p) for p in sorted(pyenv.glob(f"{version}*/bin/{name}"), reverse=True)]
    candidates += [f"/usr/bin/{name}", f"/usr/local/bin/{name}"]
    for candidate in candidates:
        if not candidate or not Path(candidate).exists():
            continue
        probe = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, check=False)
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return candidate
    return None


def _pip(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check",
                           "--no-input", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [ln for ln in (done.stderr + done.stdout).splitlines()
                 if ln.startswith("ERROR") or "No matching distribution" in ln]
        detail = "; ".join(lines[-3:]) or "; ".join(done.stderr.strip().splitlines()[-1:])
        raise BundleError(f"pip {args[0]} failed: {detail}. A dependency without a wheel for "
                          "the target platform cannot be bundled without Docker: pin a version "
                          "that publishes one")


def build(output: Path, *, python: str = "3.12", arch: str = "x86_64",
          include_boto3: bool = False, compile_bytecode: bool = True,
          log: Callable[[str], None] = lambda _: None) -> Report:
    """Build the bundle at ``output``; refuse one over Lambda's limits."""
    if arch not in _ARCH:
        raise ConfigurationError(f"arch must be x86_64 or arm64, not {arch!r}")
    if not re.fullmatch(r"3\.\d{1,2}", python):
        raise ConfigurationError(f"python must look like 3.12, not {python!r}")
    root = project_root()
    machine = _ARCH[arch]
    platforms = [f"manylinux2014_{machine}", f"manylinux_2_17_{machine}",
                 f"manylinux_2_28_{machine}"]
    with tempfile.TemporaryDirectory(prefix="alq-bundle-") as tmp:
        work = Path(tmp)
        stage = work / "stage"
        log(f"building the package wheel from {root}")
        _pip("wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(work / "wheel"),
             str(root))
        [wheel] = list((work / "wheel").glob("alquimista_schema-*.whl"))
        target = ["--target", str(stage), "--implementation", "cp", "--python-version", python,
                  "--only-binary=:all:", *(f"--platform={p}" for p in platforms)]
        log(f"downloading dependencies for CPython {python} on manylinux {machine}")
        _pip("install", "-q", "--no-compile", "--no-deps", *target, str(wheel))
        _pip("install", "-q", "--no-compile", *target, *requirements(include_boto3))
        shutil.copytree(root / "lambda_entry", stage / "lambda_entry",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        _write_built_manifest(stage)
        _clean(stage)
        interpreter = find_interpreter(python) if compile_bytecode else None
        if interpreter:
            # unchecked-hash: no mtime inside (reproducible), and the read-only /var/task
            # never has to recompile a module at cold start. Paths recorded as /var/task,
            # where Lambda unpacks the zip, instead of this temporary folder.
            subprocess.run([interpreter, "-m", "compileall", "-q", "-j", "0",
                            "--invalidation-mode", "unchecked-hash", "-s", str(stage),
                            "-p", "/var/task", str(stage)],
                           check=True, capture_output=True)
        log("precompiled bytecode with " + interpreter if interpreter else
            f"no python{python} here: bytecode not precompiled (a cold start compiles it)")
        unzipped, files = _measure(stage)
        if unzipped > MAX_UNZIPPED:
            raise BundleError(f"the bundle would unzip to {unzipped:,} bytes, over Lambda's "
                              f"{MAX_UNZIPPED:,}; nothing written")
        staged_zip = work / "bundle.zip"
        _zip(stage, staged_zip)
        zipped = staged_zip.stat().st_size
        if zipped > MAX_ZIPPED:
            raise BundleError(f"the zip is {zipped:,} bytes, over Lambda's {MAX_ZIPPED:,} for a "
                              "direct upload; nothing written")
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staged_zip), output)
    digest = hashlib.sha256(output.read_bytes()).hexdigest()
    return Report(output, zipped, unzipped, files, bool(interpreter), interpreter, digest,
                  include_boto3)


def _write_built_manifest(stage: Path) -> None:
    """Record the bundle's head at build time, so the runner never loads every revision."""
    from alquimista_schema import migrate, scripts

    versions = stage / "alquimista_schema" / "migrations" / "versions"
    files = sorted(n for n in os.listdir(versions) if n.endswith(".py"))
    if files != scripts.revision_files():
        raise BundleError("the bundled revision files differ from this checkout's")
    (versions.parent / "manifest.json").write_text(
        scripts.manifest(migrate.heads()[0], built=True))


def _clean(stage: Path) -> None:
    """Drop what varies between builds or is useless in a function."""
    for path in sorted(stage.rglob("*"), reverse=True):
        if path.name in ("__pycache__", "bin") and path.is_dir():
            shutil.rmtree(path)
        elif path.name in ("direct_url.json", "INSTALLER", "REQUESTED") or \
                path.suffix in (".pyc", ".pyo"):
            path.unlink()
    for record in stage.glob("*.dist-info/RECORD"):
        # Keep RECORD true to what ships (and free of the removed, build-specific files).
        kept = [line for line in record.read_text().splitlines()
                if line and not line.startswith("..")
                and (stage / line.rsplit(",", 2)[0]).is_file()]
        record.write_text("\n".join(kept) + "\n")


def _measure(stage: Path) -> tuple[int, int]:
    files = [p for p in stage.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def _zip(stage: Path, output: Path) -> None:
    entries = sorted((p for p in stage.rglob("*") if p.is_file()),
                     key=lambda p: p.relative_to(stage).as_posix())
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path in entries:
            info = zipfile.ZipInfo(path.relative_to(stage).as_posix(), date_time=_EPOCH)
            executable = path.stat().st_mode & stat.S_IXUSR
            info.external_attr = ((0o755 if executable else 0o644) | stat.S_IFREG) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            zf.writestr(info, path.read_bytes(), compresslevel=9)
