"""The package's shape, checked from the source: the public names, the layers, no import cycles."""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import livequant

PACKAGE = Path(livequant.__file__).parent
# Dotted names under livequant: a module ("cli"), a package ("sources", its __init__) and a package's modules
# ("sources.video"). The rules below are between stages: a package's modules belong to its stage.
MODULES = sorted(".".join(path.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")
                 for path in PACKAGE.rglob("*.py") if path.name != "__main__.py" and path != PACKAGE / "__init__.py")
COMPUTE = {"colorspace", "icc", "hdr", "palette", "png", "presets", "fit", "track", "kernels", "lookup", "dither",
           "hold", "quantizer", "frames"}
# The one place compute reaches into I/O, imported only when used: a palette file that is a truecolour PNG (a picture,
# not an indexed swatch) is decoded by `sources.read_image`, which owns the decoder and the pixel limit.
ON_DEMAND = {("palette", "sources")}
# Shared by every layer, on the standard library alone: the errors, writing a file whole or not at all (a
# palette file is written as the outputs are), and holding Ctrl-C off.
SHARED = {"errors", "files", "interrupts"}


def _path(module: str) -> Path:
    """The source file of ``module`` (a dotted name under livequant)."""
    path = PACKAGE.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _stage(module: str) -> str:
    """The stage ``module`` belongs to: its package's name, or its own."""
    return module.split(".")[0]


def _imports(module: str) -> list[tuple[str, int]]:
    """``(imported module, line)`` for each import in ``module``'s source, nested ones included; imports under
    ``if TYPE_CHECKING:`` are left out (they never run)."""
    tree = ast.parse(_path(module).read_text())
    skipped = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
               and isinstance(block.test, ast.Name) and block.test.id == "TYPE_CHECKING"
               for statement in block.body for node in ast.walk(statement)}
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "livequant" if node.level else node.module
            found.append((base if node.level and not node.module else node.module, node.lineno))
            found += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
    return found


def _package_deps(module: str) -> set[str]:
    """The modules of the package that ``module`` imports (the longest dotted name each import names)."""
    deps = set()
    for name, _ in _imports(module):
        parts = name.split(".")[1:] if name.startswith("livequant.") else []
        found = next((".".join(parts[:n]) for n in range(len(parts), 0, -1) if ".".join(parts[:n]) in MODULES), None)
        if found is not None and found != module:
            deps.add(found)
    return deps


def test_the_package_exports_a_sorted_all_whose_names_resolve():
    assert livequant.__all__ == sorted(livequant.__all__)
    assert sorted(dir(livequant)) == sorted(livequant.__all__)
    for name in livequant.__all__:
        assert getattr(livequant, name) is not None, name


@pytest.mark.parametrize("module", MODULES)
def test_each_module_exports_a_sorted_all_whose_names_resolve(module):
    mod = importlib.import_module(f"livequant.{module}")
    exported = getattr(mod, "__all__", None)
    assert exported is not None, f"{_path(module)} has no __all__"
    assert exported == sorted(exported)
    assert [name for name in exported if not hasattr(mod, name)] == []


def test_compute_modules_import_neither_opencv_nor_pyav():
    found = [f"{_path(module)}:{line} imports {name}" for module in MODULES if _stage(module) in COMPUTE
             for name, line in _imports(module) if name.split(".")[0] in ("cv2", "av")]
    assert found == []


def test_compute_modules_import_only_compute_modules():
    found = [f"{_path(module)} imports livequant.{dep}" for module in MODULES if _stage(module) in COMPUTE
             for dep in sorted(_package_deps(module)) if _stage(dep) not in COMPUTE | SHARED
             and (_stage(module), _stage(dep)) not in ON_DEMAND]
    assert found == []


def test_no_module_imports_another_s_private_names():
    """A name another module needs has a public home (STYLE.md); ``_name`` stays in its module."""
    found = [f"{_path(module)}:{line} imports {name}" for module in MODULES for name, line in _imports(module)
             if name.startswith("livequant.") and name.split(".")[-1].startswith("_")
             and not name.split(".")[-1].startswith("__")]
    assert found == []


def test_no_module_imports_itself_through_others():
    graph = {module: _package_deps(module) for module in MODULES}
    cycles = []

    def visit(module, path):
        for dep in sorted(graph[module]):
            if dep in path:
                cycles.append(" -> ".join(path[path.index(dep):] + [dep]))
            elif dep not in done:
                visit(dep, path + [dep])
        done.add(module)

    done = set()
    for module in MODULES:
        if module not in done:
            visit(module, [module])
    assert cycles == []


def test_the_compute_modules_and_palette_load_neither_opencv_nor_ffmpeg():
    code = (f"import sys, livequant, {', '.join(f'livequant.{m}' for m in sorted(COMPUTE & set(MODULES)))};"
            "q = livequant.Quantizer(4, palette='gameboy');"
            "livequant.Palette([[0, 0, 0]]); livequant.presets.get('pico8'); livequant.QuantizedFrame;"
            "print(sorted({'cv2', 'av'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_commands_that_fit_no_palette_load_neither_scikit_learn_nor_scipy_optimize():
    """They take 0.5-1.5 s to import: ``--help`` and a preset palette do without them; a fit of a frame of
    many colours to a palette of at most 32 loads scikit-learn (MiniBatchKMeans, which loads scipy.optimize),
    nothing else does."""
    picture = "np.arange(192, dtype=np.uint8).reshape(8, 8, 3)"
    many = "np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)"
    quantize = "import sys, numpy as np, livequant; livequant.quantize({}, {});"
    loaded = "print(sorted({'sklearn', 'scipy.optimize'} & set(sys.modules)))"
    for code, expected in [
        ("import sys, livequant.cli; livequant.cli.main(['--help']);", "[]"),
        (quantize.format(picture, "4, palette='gameboy'"), "[]"),
        (quantize.format(many, "4"), "['scipy.optimize', 'sklearn']"),
        # A frame of few colours (flat art, a title card: here 64) is fitted by our own k-means with restarts.
        *[(quantize.format(picture, k), "[]") for k in (4, 256)],
        # A palette of more than 32 colours for a frame of many is fitted to its histogram, seeded by our own
        # k-means++: a transcode at K=64 or 256 waits for no scikit-learn.
        *[("import sys, numpy as np, livequant; frame = np.random.default_rng(0).integers(0, 256, (64, 64, 3), "
           f"np.uint8); livequant.Quantizer({k}).quantize(frame);", "[]") for k in (64, 256)],
    ]:
        done = subprocess.run([sys.executable, "-c", code + loaded], capture_output=True, text=True, check=True)
        assert done.stdout.strip().splitlines()[-1] == expected, code


def test_the_shared_modules_use_the_standard_library_alone():
    found = [f"livequant/{module}.py imports {name}" for module in sorted(SHARED)
             for name, _ in _imports(module) if name.split(".")[0] not in sys.stdlib_module_names | {"__future__"}]
    assert found == []


def test_the_install_ships_every_package():
    """pyproject.toml lists the packages setuptools installs: a package left out is missing from `pip install .`
    (the tests and the demo, run from the clone, would not notice)."""
    import tomllib

    listed = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    found = sorted(".".join(path.parent.relative_to(PACKAGE.parent).parts) for path in PACKAGE.rglob("__init__.py"))
    assert sorted(listed) == found
