"""native/__init__.py: the compiled hot path is used when built, the numpy reference when
asked for (WIREWATCH_PURE_NUMPY) or when a module is missing, and a missing build is said."""

from __future__ import annotations

from wirewatch import native


def test_every_compiled_module_loads_in_a_built_checkout(monkeypatch):
    monkeypatch.delenv("WIREWATCH_PURE_NUMPY", raising=False)
    for name in native.MODULES:
        mod = native.load(name)
        assert mod is not None and mod.__name__ == f"wirewatch.native.{name}"
    assert native.active() and native.warning() is None


def test_pure_numpy_turns_them_off_without_a_warning(monkeypatch):
    monkeypatch.setenv("WIREWATCH_PURE_NUMPY", "1")
    assert [native.load(n) for n in native.MODULES] == [None, None, None]
    assert not native.active() and native.warning() is None


def test_a_missing_module_falls_back_and_is_said_once_in_one_line(monkeypatch):
    monkeypatch.delenv("WIREWATCH_PURE_NUMPY", raising=False)
    assert native.load("_no_such_module") is None
    monkeypatch.setattr(native, "MODULES", ("_decode", "_no_such_module"))
    assert not native.active()
    text = native.warning()
    assert text is not None and "\n" not in text and "make setup" in text and "numpy reference" in text
