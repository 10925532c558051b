"""Every public call of mla and mla.torch has a docstring, and the type stubs (.pyi) declare every
public name of the extension module and of mla.torch."""
import ast
import inspect
import os

import mla
import mla._mla
import mla.torch


def own_doc(obj):
    """The docstring without pybind11's generated signature lines."""
    name = getattr(obj, "__name__", "")
    lines = [ln for ln in (inspect.getdoc(obj) or "").splitlines() if ln.strip()]
    lines = [ln for ln in lines if not (ln.startswith(name + "(") and "->" in ln)
             and ln != "Overloaded function." and not ln[:2].rstrip(".").isdigit()]
    return "\n".join(lines).strip()


def public_calls():
    for modname, mod in (("mla", mla), ("mla.torch", mla.torch)):
        for n in mod.__all__:
            obj = getattr(mod, n)
            if n.startswith("__"):
                continue
            yield f"{modname}.{n}", obj
            if inspect.isclass(obj):
                for an, a in vars(obj).items():
                    if an.startswith("_"):
                        continue
                    if isinstance(a, (staticmethod, classmethod)):
                        yield f"{modname}.{n}.{an}", a.__func__
                    elif callable(a):
                        yield f"{modname}.{n}.{an}", a


def test_every_public_call_has_a_docstring():
    missing = [name for name, obj in public_calls() if not own_doc(obj)]
    assert not missing, missing


def stub_names(path):
    tree = ast.parse(open(path, encoding="utf-8").read())
    names = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names[node.name] = {b.name if hasattr(b, "name") else b.target.id
                                for b in node.body
                                if isinstance(b, (ast.FunctionDef, ast.AnnAssign))}
        elif isinstance(node, ast.FunctionDef):
            names[node.name] = set()
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            t = node.targets[0] if isinstance(node, ast.Assign) else node.target
            names[t.id] = set()
        elif isinstance(node, ast.ImportFrom):
            for a in node.names:
                if a.asname == a.name:
                    names[a.name] = set()
    return names


def test_stubs_declare_the_extension_and_mla_torch():
    here = os.path.dirname(mla.__file__)
    stubs = stub_names(os.path.join(here, "_mla.pyi"))
    for n in dir(mla._mla):
        if n.startswith("__") and n != "__version__":
            continue
        assert n in stubs, n
        obj = getattr(mla._mla, n)
        if inspect.isclass(obj):
            public = {a for a in vars(obj) if not a.startswith("__")}
            assert public <= stubs[n] | {"_commit"}, (n, public - stubs[n])
    torch_stubs = stub_names(os.path.join(here, "torch", "__init__.pyi"))
    assert set(mla.torch.__all__) <= set(torch_stubs), set(mla.torch.__all__) - set(torch_stubs)
