"""`LambdaPackaging`: how Tether's Lambda code reaches AWS, built without Docker.

Two assets, shared by every function of the stack: the application code (only the `functions`
and `shared` packages) and one layer with the runtime dependencies exported from `uv.lock`.
The layer is built on this machine by `UvLayerBundling` (uv + wheels for the Lambda platform);
CDK's Docker fallback is never used, so a failed build stops the synth with a message instead of
pulling a build image. Context `tether:bundle=false` swaps the layer for an empty placeholder,
so template tests need no network: such a template must never be deployed.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import jsii
from aws_cdk import (
    Acknowledgment,
    AssetHashType,
    BundlingOptions,
    DockerImage,
    ILocalBundling,
    Validations,
)
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
APP_PACKAGES: Final = ("functions", "shared")
LOCK_FILE: Final = REPO_ROOT / "uv.lock"

BUNDLE_CONTEXT_KEY: Final = "tether:bundle"

RUNTIME: Final = lambda_.Runtime.PYTHON_3_11
PYTHON_VERSION: Final = "3.11"
# arm64 (Graviton): about 20 % cheaper per GB-second than x86_64 at equal or better speed for
# this I/O-bound code, and every dependency in uv.lock ships manylinux aarch64 wheels, so
# nothing has to be compiled. The wheel platform below must match this architecture.
ARCHITECTURE: Final = lambda_.Architecture.ARM_64
WHEEL_PLATFORM: Final = "aarch64-manylinux2014"  # uv's name for pip's manylinux2014_aarch64

# Glob patterns, applied in order (a `!` pattern re-includes): everything at the repo root is
# left out except the two application packages, and bytecode is left out of those. An allowlist
# rather than a denylist, so a new top-level folder (a venv, a cache) can never leak in.
_CODE_EXCLUDE: Final = (
    "*",
    ".*",  # `*` skips dotfiles (.git, .venv, caches)
    *(pattern for package in APP_PACKAGES for pattern in (f"!{package}", f"!{package}/**")),
    "**/__pycache__",
    "**/*.pyc",
)


def _find_uv() -> str:
    """uv from `$UV`, then the Makefile's `.tools/bin/uv`, then `PATH`."""
    candidates = [os.environ.get("UV"), str(REPO_ROOT / ".tools" / "bin" / "uv"), "uv"]
    for candidate in candidates:
        if candidate and (found := shutil.which(candidate)):
            return found
    raise RuntimeError(
        "cannot build the Lambda dependencies layer: uv not found (set $UV, run `make install` "
        f"for .tools/bin/uv, or put uv on PATH); or synth with `-c {BUNDLE_CONTEXT_KEY}=false` "
        "for a template-only check"
    )


def _run(command: Sequence[str]) -> None:
    result = subprocess.run(  # noqa: S603 - fixed argv, no shell
        command, cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            "building the Lambda dependencies layer failed (no Docker fallback by design):\n"
            f"$ {' '.join(command)}\n{result.stderr.strip() or result.stdout.strip()}"
        )


@jsii.implements(ILocalBundling)
class UvLayerBundling:
    """Exports the runtime dependencies from uv.lock and installs Lambda-platform wheels.

    `--only-binary :all:` with an explicit platform and Python version means what lands in the
    layer is exactly what Lambda's arm64 Python 3.11 would load, whatever this machine is.
    `uv pip` rather than `pip`: the project venv is made by uv and has no pip, and uv is needed
    for the export anyway.
    """

    def try_bundle(
        self,
        output_dir: str,
        *,
        image: DockerImage,  # noqa: ARG002 - the interface's; local bundling never uses it
        **_options: Any,
    ) -> bool:
        uv = _find_uv()
        with tempfile.TemporaryDirectory(prefix="tether-layer-") as work:
            requirements = str(Path(work) / "requirements.txt")
            export = ("export", "--frozen", "--no-dev", "--no-emit-project", "--quiet")
            _run([uv, *export, "--output-file", requirements])
            # --no-deps: the export already lists every transitive dependency, pinned and hashed.
            _run(
                [
                    *(uv, "pip", "install", "--quiet", "--no-deps", "--no-compile"),
                    *("--target", str(Path(output_dir) / "python")),
                    *("--python-platform", WHEEL_PLATFORM, "--python-version", PYTHON_VERSION),
                    *("--only-binary", ":all:", "--requirement", requirements),
                ]
            )
        # True: bundled here. Failures raised above, so CDK never tries its Docker fallback.
        return True


def _layer_hash() -> str:
    # The layer depends on the lock and the target platform only; hashing those (not a folder)
    # lets CDK reuse a built layer from cdk.out and skip the download on every synth.
    digest = hashlib.sha256(LOCK_FILE.read_bytes())
    digest.update(f"{RUNTIME.name}/{WHEEL_PLATFORM}/{UvLayerBundling.__qualname__}".encode())
    return digest.hexdigest()


def _placeholder_layer_dir() -> str:
    """An almost empty layer folder, only for template tests (`tether:bundle=false`)."""
    path = Path(tempfile.mkdtemp(prefix="tether-placeholder-layer-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    (path / "python").mkdir()
    (path / "python" / "PLACEHOLDER.txt").write_text(
        "Placeholder dependencies layer: synthesized with tether:bundle=false for template "
        "tests. Not deployable; synth without that context to build the real layer.\n",
        encoding="utf-8",
    )
    return str(path)


def bundling_enabled(scope: Construct) -> bool:
    """The `tether:bundle` context flag: true unless set to false (or "false" from `-c`)."""
    value = scope.node.try_get_context(BUNDLE_CONTEXT_KEY)
    return value not in (False, "false", "False", "0")


class LambdaPackaging(Construct):
    """The code asset and dependencies layer every Tether function is built from."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.bundled = bundling_enabled(self)
        self.code_asset = s3_assets.Asset(
            self,
            "CodeAsset",
            path=str(REPO_ROOT),
            exclude=list(_CODE_EXCLUDE),
            display_name="Tether application code (functions, shared)",
        )
        self.layer_asset = self._layer_asset()
        self.layer = lambda_.LayerVersion(
            self,
            "DependenciesLayer",
            code=lambda_.Code.from_bucket_v2(
                self.layer_asset.bucket, self.layer_asset.s3_object_key
            ),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="Tether runtime dependencies from uv.lock (Python 3.11, arm64)",
        )
        self.code = lambda_.Code.from_bucket_v2(
            self.code_asset.bucket, self.code_asset.s3_object_key
        )

        for asset in (self.code_asset, self.layer_asset):
            Validations.of(asset).acknowledge(
                Acknowledgment(
                    id="Annotation::@aws-cdk/aws-lambda:codeFromBucketObjectVersionNotSpecified",
                    reason="The object key is the asset's content hash: changed code or "
                    "dependencies get a new key, so CloudFormation updates the function/layer "
                    "without S3 object versions.",
                )
            )

    def _layer_asset(self) -> s3_assets.Asset:
        if not self.bundled:
            return s3_assets.Asset(self, "LayerAsset", path=_placeholder_layer_dir())
        return s3_assets.Asset(
            self,
            "LayerAsset",
            path=str(REPO_ROOT),
            asset_hash_type=AssetHashType.CUSTOM,
            asset_hash=_layer_hash(),
            bundling=BundlingOptions(
                # Never pulled: UvLayerBundling always bundles locally or raises.
                image=RUNTIME.bundling_image,
                local=UvLayerBundling(),
            ),
            display_name="Tether dependencies layer",
        )

    def asset_sizes(self, outdir: str | Path) -> Mapping[str, int]:
        """Bytes on disk of each staged asset in a synthesized cloud assembly."""
        return {
            "dependencies layer": _tree_size(Path(outdir) / self.layer_asset.asset_path),
            "application code": _tree_size(Path(outdir) / self.code_asset.asset_path),
        }


def _tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
