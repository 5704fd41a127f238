"""Build the Lambda bundle: a reproducible zip, made with pip for the *target* platform.

No Docker: pip fetches manylinux wheels for the target Python and architecture. The zip
holds the package (revision files included), its dependencies and ``lambda_entry/``;
boto3 and botocore are left to the runtime unless asked for. Entries are sorted and dated
1980-01-01: the same inputs give a byte-identical zip. It is built from a checkout by
pip's isolated build of a copy of it, whatever the running environment. The output folder
and the target Python are checked before anything is built.
"""

from __future__ import annotations

import hashlib
import operator
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from alquimista_schema.errors import (
    BundleError,
    ConfigurationError,
    NoWheelForTarget,
    PackageBuildFailed,
    ProjectNotFound,
)

__all__ = ["HANDLER", "BundleError", "NoWheelForTarget", "PackageBuildFailed",
           "ProjectNotFound", "Report", "build", "find_interpreter", "find_project"]

NAME = "alquimista-schema"
HANDLER = "lambda_entry.handler.handler"
# Lambda's limits for a zip uploaded directly, and for the unzipped function.
MAX_ZIPPED = 50 * 1024 * 1024
MAX_UNZIPPED = 250 * 1024 * 1024
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3",
                    "python-dateutil", "six")
_ARCH = {"x86_64": "x86_64", "arm64": "aarch64"}
# Lambda's Python runtimes (python3.N), the targets wheels can be fetched for; add new ones.
LAMBDA_PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13", "3.14")
_EPOCH = (1980, 1, 1, 0, 0, 0)
# What pip says when it cannot reach an index, when a wheel's Requires-Python excludes
# the target, and when no distribution fits the target (for the requirement it names).
_UNREACHABLE = re.compile(r"NewConnectionError|Max retries exceeded|Could not fetch URL|"
                          r"Temporary failure in name resolution|ProxyError")
_OTHER_PYTHON = re.compile(r"Package '[^']+' requires a different Python: [^\n]*")
_NO_WHEEL = re.compile(r"No matching distribution found for (\S+)")


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
    project: Path


# --- the checkout ----------------------------------------------------------------------


def _why_not_a_checkout(folder: Path) -> str | None:
    """Return why ``folder`` is not a checkout of this project, or None when it is."""
    pyproject = folder / "pyproject.toml"
    if not pyproject.is_file():
        return "no pyproject.toml"
    try:
        name = tomllib.loads(pyproject.read_text()).get("project", {}).get("name")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return f"{pyproject} cannot be read ({exc})"
    if not isinstance(name, str) or re.sub(r"[-_.]+", "-", name).lower() != NAME:
        return f"{pyproject} names {name!r}, not {NAME!r}"
    if not (folder / "lambda_entry" / "handler.py").is_file():
        return "no lambda_entry/handler.py"
    return None


def find_project(project: Path | None = None) -> Path:
    """Return the checkout to build from: ``project``, else the current folder or a parent."""
    if project is not None:
        folder = project.expanduser().resolve()
        reason = _why_not_a_checkout(folder)
        if reason:
            raise ProjectNotFound(f"{folder} is not an {NAME} checkout ({reason}): pass "
                                  "--project the folder holding its pyproject.toml and "
                                  "lambda_entry/")
        return folder
    here = Path.cwd().resolve()
    rejected = []
    for folder in (here, *here.parents):
        reason = _why_not_a_checkout(folder)
        if reason is None:
            return folder
        if reason != "no pyproject.toml":
            rejected.append(f"{folder}: {reason}")
    seen = f" (looked at {'; '.join(rejected)})" if rejected else ""
    raise ProjectNotFound(
        f"no {NAME} checkout in {here} or its parents{seen}. The bundle is built from the "
        "source (pyproject.toml and lambda_entry/): cd into the checkout, or pass "
        "--project DIR")


def check_output(output: Path) -> None:
    """The zip can be written where asked: its folder is made, and a file tried there."""
    try:
        if output.is_dir():
            raise IsADirectoryError(21, "a folder, not the zip's path")
        output.parent.mkdir(parents=True, exist_ok=True)
        tempfile.NamedTemporaryFile(dir=output.parent, prefix=".alq-bundle-probe-").close()
    except OSError as exc:
        raise BundleError(f"cannot write the bundle to {output} ({exc.strerror or exc}): "
                          "choose another --output; nothing was built") from exc


def check_target_python(python: str, root: Path) -> None:
    """The target is a Python that Lambda runs and the package's requires-python admits."""
    pyproject = root / "pyproject.toml"
    required = tomllib.loads(pyproject.read_text()).get("project", {}).get("requires-python", "")
    fits = " or ".join(v for v in LAMBDA_PYTHONS if admits(required, v)) or "(none fits)"
    if python not in LAMBDA_PYTHONS:
        raise BundleError(f"Lambda runs no CPython {python}: choose --python {fits}")
    if not admits(required, python):
        raise BundleError(f"{NAME} requires Python {required} (requires-python in {pyproject}),"
                          f" so not CPython {python}: choose --python {fits}")


_OPS = {"==": operator.eq, "!=": operator.ne, "<=": operator.le, ">=": operator.ge,
        "<": operator.lt, ">": operator.gt, "~=": operator.ge}


def admits(specifier: str, python: str) -> bool:
    """Whether ``requires-python`` (PEP 440 release comparisons) admits CPython ``python``."""
    mine = tuple(int(n) for n in python.split("."))
    for clause in filter(None, (c.strip() for c in specifier.split(","))):
        found = re.fullmatch(r"(~=|==|!=|<=|>=|<|>)\s*(\d+(?:\.\d+)*)(\.\*)?", clause)
        if found is None:
            raise BundleError(f"requires-python {specifier!r}: cannot read {clause!r}")
        op, number, star = found.groups()
        theirs = tuple(int(n) for n in number.split("."))
        width = len(theirs) if star else max(len(mine), len(theirs))
        have, want = ((v + (0,) * width)[:width] for v in (mine, theirs))
        if not _OPS[op](have, want) or (op == "~=" and have[:len(theirs) - 1] != theirs[:-1]):
            return False
    return True


# --- pip -------------------------------------------------------------------------------


def _pip(*args: str) -> tuple[bool, str]:
    """Run pip with the running interpreter; return whether it succeeded, and its output."""
    done = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check",
                           "--no-input", *args], capture_output=True, text=True, check=False)
    output = done.stderr + done.stdout
    if done.returncode != 0 and "No module named pip" in output:
        raise BundleError(f"pip is not installed for {sys.executable}: the bundle is made "
                          "with pip (python -m ensurepip, or install pip)")
    return done.returncode == 0, output


def pip_detail(output: str) -> str:
    """Return the few lines of pip's output that say what went wrong."""
    lines = output.splitlines()
    starts = [i for i, ln in enumerate(lines) if re.search(r"\[\d+ lines? of output\]", ln)]
    ends = [i for i, ln in enumerate(lines) if "[end of output]" in ln]
    said: list[str] = []
    if starts and ends and ends[-1] > starts[-1]:
        # A build backend failed: its own last words (the exception, not the traceback).
        block = [ln for ln in lines[starts[-1] + 1:ends[-1]] if ln.strip()]
        indent = min((len(ln) - len(ln.lstrip()) for ln in block), default=0)
        said = [ln.strip() for ln in block if len(ln) - len(ln.lstrip()) == indent
                and not ln.strip().startswith("Traceback ")][-3:]
    if not said:
        said = [ln.removeprefix("ERROR: ").strip() for ln in lines
                if ln.startswith("ERROR")][-2:]
    return "; ".join(said) or (lines[-1].strip() if lines else "pip said nothing")


def package_build_error(output: str, project: Path, source: Path) -> PackageBuildFailed:
    """Say that the package itself did not build, and why (in the checkout's paths)."""
    detail = pip_detail(output).replace(str(source), str(project))
    return PackageBuildFailed(
        f"building the {NAME} package from {project} failed (pip wheel, isolated build): "
        f"{detail}. This is the project's own build, not a dependency: fix it until "
        f"`pip wheel --no-deps {project}` succeeds")


def install_error(output: str, python: str, machine: str) -> BundleError:
    """Say what pip could not install for the target: the index, the Python, or a wheel."""
    detail = pip_detail(output)
    if _UNREACHABLE.search(output):
        return BundleError(f"pip could not reach the package index: {detail}. Check the "
                           "network (or PIP_INDEX_URL) and build again")
    if other_python := _OTHER_PYTHON.search(output):
        return BundleError(f"{other_python.group(0)}: choose another --python")
    if missing := _NO_WHEEL.search(output):
        return NoWheelForTarget(
            f"the dependency {missing.group(1)} has no wheel for CPython {python} on "
            f"manylinux {machine} ({detail}). A dependency without a wheel for the target "
            "platform cannot be bundled without Docker: pin a version that publishes one",
            requirement=missing.group(1))
    return BundleError(f"pip could not install the bundle's packages for CPython {python} "
                       f"on manylinux {machine}: {detail}")


def _source_copy(project: Path, dest: Path) -> Path:
    """Copy the top-level files and src/: the build never writes into the checkout, and a
    stale build/ folder can never put a deleted revision file back into the bundle."""
    dest.mkdir()
    for path in project.iterdir():
        if path.is_file():
            shutil.copy2(path, dest / path.name)
    shutil.copytree(project / "src", dest / "src", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    return dest


def _build_wheel(project: Path, work: Path) -> Path:
    """Build the package's wheel from the checkout, in pip's isolated build environment."""
    source = _source_copy(project, work / "source")
    ok, output = _pip("wheel", "--no-deps", "-q", "-w", str(work / "wheel"), str(source))
    if not ok:
        raise package_build_error(output, project, source)
    wheels = list((work / "wheel").glob("alquimista_schema-*.whl"))
    if len(wheels) != 1:
        raise PackageBuildFailed(f"building {project} gave {len(wheels)} {NAME} wheels, not 1")
    return wheels[0]


def requirements(stage: Path, include_boto3: bool) -> list[str]:
    """The bundled package's runtime dependencies, minus what the Lambda runtime provides."""
    [info] = stage.glob("alquimista_schema-*.dist-info")
    named = ((req, re.split(r"[ <>=!~;\[(]", req, maxsplit=1)[0].lower())
             for req in metadata.Distribution.at(info).requires or [] if "extra ==" not in req)
    return [req for req, name in named if include_boto3 or name not in RUNTIME_PROVIDED]


def _install(wheel: Path, stage: Path, python: str, machine: str, include_boto3: bool) -> None:
    """Install the package, then its dependencies, as wheels for the target platform."""
    platforms = [f"manylinux2014_{machine}", f"manylinux_2_17_{machine}",
                 f"manylinux_2_28_{machine}"]
    target = ["--target", str(stage), "--implementation", "cp", "--python-version", python,
              "--only-binary=:all:", *(f"--platform={p}" for p in platforms)]
    ok, output = _pip("install", "-q", "--no-compile", "--no-deps", *target, str(wheel))
    if ok:
        ok, output = _pip("install", "-q", "--no-compile", *target,
                          *requirements(stage, include_boto3))
    if not ok:
        raise install_error(output, python, machine)


# --- the bundle ------------------------------------------------------------------------


def find_interpreter(version: str) -> str | None:
    """Return a path to a working ``python<version>``, or None."""
    name = f"python{version}"
    candidates = [os.environ.get("ALQUIMISTA_TARGET_PYTHON"), shutil.which(name)]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += [*(str(p) for p in sorted(pyenv.glob(f"{version}*/bin/{name}"), reverse=True)),
                   f"/usr/bin/{name}", f"/usr/local/bin/{name}"]
    for candidate in candidates:
        if not candidate or not Path(candidate).exists():
            continue
        probe = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, check=False)
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return candidate
    return None


def build(output: Path, *, python: str = "3.12", arch: str = "x86_64",
          include_boto3: bool = False, compile_bytecode: bool = True,
          project: Path | None = None, log: Callable[[str], None] = lambda _: None) -> Report:
    """Build the bundle at ``output`` from a checkout; refuse one over Lambda's limits."""
    if arch not in _ARCH:
        raise ConfigurationError(f"arch must be x86_64 or arm64, not {arch!r}")
    root = find_project(project)
    machine = _ARCH[arch]
    check_target_python(python, root)
    check_output(output)
    with tempfile.TemporaryDirectory(prefix="alq-bundle-") as tmp:
        work = Path(tmp).resolve()
        stage = work / "stage"
        log(f"building the package wheel from {root} (isolated build)")
        wheel = _build_wheel(root, work)
        log(f"downloading dependencies for CPython {python} on manylinux {machine}")
        _install(wheel, stage, python, machine, include_boto3)
        shutil.copytree(root / "lambda_entry", stage / "lambda_entry",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        _write_built_manifest(stage, work)
        _clean(stage)
        interpreter = find_interpreter(python) if compile_bytecode else None
        if interpreter:
            log(f"precompiling bytecode with {interpreter}")
            _precompile(stage, interpreter)
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
        try:
            shutil.move(str(staged_zip), output)
        except OSError as exc:
            raise BundleError(f"cannot write the bundle to {output}: {exc.strerror or exc}; "
                              "choose another --output") from exc
    digest = hashlib.sha256(output.read_bytes()).hexdigest()
    return Report(output, zipped, unzipped, files, bool(interpreter), interpreter, digest,
                  include_boto3, root)


# Run by this interpreter over a copy of the *bundled* package (not the running one):
# the manifest is that package's own rendering of its own head.
_MANIFEST = """\
import sys
sys.path.insert(0, sys.argv[1])
from alquimista_schema.script import directory, manifest
if not str(directory.SCRIPT_LOCATION).startswith(sys.argv[1]):
    sys.exit(f"imported {directory.__file__}, not the bundled package")
heads = directory.heads()
if len(heads) != 1:
    sys.exit(f"the revisions have {len(heads)} heads ({', '.join(heads)}): merge them")
sys.stdout.write(manifest.manifest(heads[0], built=True))
"""


def _write_built_manifest(stage: Path, work: Path) -> None:
    """Record the bundle's head at build time, so a no-op never loads the revisions."""
    probe = work / "probe"
    shutil.copytree(stage / "alquimista_schema", probe / "alquimista_schema")
    done = subprocess.run([sys.executable, "-B", "-P", "-c", _MANIFEST, str(probe)],
                          cwd=work, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise BundleError(f"the bundled package could not name its head revision: {last}")
    (stage / "alquimista_schema" / "migrations" / "manifest.json").write_text(done.stdout)


def _precompile(stage: Path, interpreter: str) -> None:
    """Compile the bytecode with the target interpreter, as Lambda would at a cold start:
    unchecked-hash (no mtime inside: reproducible; the read-only /var/task never recompiles),
    paths recorded as /var/task, where Lambda unzips."""
    subprocess.run([interpreter, "-m", "compileall", "-q", "-j", "0",
                    "--invalidation-mode", "unchecked-hash", "-s", str(stage),
                    "-p", "/var/task", str(stage)], check=True, capture_output=True)


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
