"""The public names: the lazy map of xplique_maco/__init__.py and its TYPE_CHECKING block agree."""

import ast
from pathlib import Path

import xplique_maco

INIT = Path(xplique_maco.__file__)


def _type_checking_imports() -> dict[str, set[str]]:
    tree = ast.parse(INIT.read_text())
    (block,) = [
        node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    ]
    imports: dict[str, set[str]] = {}
    for node in block.body:
        if isinstance(node, ast.ImportFrom):
            imports.setdefault(node.module or "", set()).update(alias.name for alias in node.names)
    return imports


def test_type_checking_block_names_the_same_public_names():
    imports = _type_checking_imports()
    assert set(imports.pop("")) == set(xplique_maco._MODULES)
    assert imports == {module: set(names) for module, names in xplique_maco._PUBLIC.items()}


def test_every_public_name_loads():
    for name in xplique_maco.__all__:
        assert getattr(xplique_maco, name) is not None
