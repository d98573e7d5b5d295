"""Saved functions: round trips (in a fresh interpreter without the source), signature errors,
and loading corrupt or hostile directories (which must raise FormatError and run nothing)."""

from __future__ import annotations

import collections
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tracejit as tj
from tracejit.errors import SignatureError, TracejitError
from tracejit.ops.registry import all_ops
from tracejit.saved import files

FormatError = tj.saved.FormatError
RNG = np.random.default_rng(0)
X = RNG.normal(size=(16, 4)).astype(np.float32)
Y = (X[:, 0] > 0).astype(np.int32) + (X[:, 1] > 1).astype(np.int32)


class Classifier(tj.Module):
    """The iris MLP: Dense-relu-Dense, Adam, softmax cross-entropy."""

    def __init__(self, seed=0):
        g = tj.random.Generator(seed)
        self.model = tj.nn.Sequential(
            [tj.nn.Dense(4, 8, activation="relu", generator=g), tj.nn.Dense(8, 3, generator=g)]
        )
        self.opt = tj.optim.Adam(0.05)

    @tj.function
    def train_step(self, x, y):
        with tj.GradientTape() as tape:
            loss = tj.nn.softmax_cross_entropy(self.model(x), y)
        grads = tape.gradient(loss, self.model.trainable_variables)
        self.opt.apply_gradients(zip(grads, self.model.trainable_variables))
        return loss

    @tj.function(input_signature=[tj.TensorSpec([None, 4])])
    def predict(self, x):
        return tj.nn.softmax(self.model(x))


@tj.function
def looped(xs, c):
    def body(carry, x):
        return carry + x, carry * 2.0

    final, ys = tj.scan(body, c, xs)
    flipped = tj.cond(final.sum() > 0, lambda: final, lambda: -final)
    return flipped, tj.while_loop(lambda v: v.sum() < 100.0, lambda v: v * 2.0 + 1.0, (ys,))[0]


def trained_classifier():
    model = Classifier()
    model.train_step(X, Y)
    model.predict(X)
    return model


@pytest.fixture(scope="module")
def saved_mlp(tmp_path_factory):
    model = trained_classifier()
    directory = str(tmp_path_factory.mktemp("mlp") / "saved")
    tj.saved.save(model, directory)
    return model, directory


def fresh_copy(directory, tmp_path):
    target = str(tmp_path / "copy")
    shutil.copytree(directory, target)
    return target


# Round trips -----------------------------------------------------------------------------------
RUNNER = r"""
import json, sys
import jax
import jax.numpy as jnp
import numpy as np
import tracejit as tj
import tracejit.saved
inputs, out, plan = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
data = np.load(inputs)
loaded = {key: tj.saved.load(directory) for key, directory in plan["directories"].items()}
results = {}
for i, (key, name, args) in enumerate(plan["calls"]):
    result = getattr(loaded[key], name)(*[data[a] for a in args])
    for j, leaf in enumerate(result if isinstance(result, (tuple, list)) else [result]):
        results[f"{i}/{j}"] = np.asarray(leaf)
for key, each in loaded.items():
    for path, variable in each.variables.items():
        results[f"{key}:{path}"] = variable.numpy()
assert not [m for m in sys.modules if m.split(".")[0] in ("tests", "test_saved", "examples")]
np.savez(out, **results)
"""


def run_fresh(tmp_path, directories, calls, data):
    """Load ``directories`` (key -> path) in a new interpreter (no test module, no example
    code) and make ``calls``: (directory key, function name, input keys)."""
    np.savez(tmp_path / "inputs.npz", **data)
    out = tmp_path / "out.npz"
    plan = json.dumps({"directories": directories, "calls": calls})
    subprocess.run(
        [sys.executable, "-c", RUNNER, str(tmp_path / "inputs.npz"), str(out), plan],
        check=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": ""}, timeout=120,
    )  # fmt: skip
    with np.load(out) as saved:
        return dict(saved)


def test_mlp_and_control_flow_round_trip_in_a_fresh_interpreter(tmp_path, saved_mlp):
    model, directory = saved_mlp
    xs, c = RNG.normal(size=(5, 3)).astype(np.float32), np.ones(3, np.float32)
    looped(xs, c)
    loop_dir = str(tmp_path / "looped")
    tj.saved.save(looped, loop_dir)
    calls = [["mlp", "predict", ["x"]], ["mlp", "train_step", ["x", "y"]],
             ["mlp", "train_step", ["x", "y"]], ["mlp", "predict", ["x5"]],
             ["loop", "looped", ["xs", "c"]]]  # fmt: skip
    data = {"x": X, "y": Y, "x5": X[:5], "xs": xs, "c": c}
    got = run_fresh(tmp_path, {"mlp": directory, "loop": loop_dir}, calls, data)
    # The module is as it was saved (only this test calls it afterwards): the same start.
    expected = [
        model.predict(X),
        model.train_step(X, Y),
        model.train_step(X, Y),
        model.predict(X[:5]),
    ]
    for i, value in enumerate(expected):
        np.testing.assert_array_equal(got[f"{i}/0"], value.numpy())
    assert float(got["1/0"]) > float(got["2/0"])  # the train step did train
    live = tj.train.Checkpoint(model=model.model, opt=model.opt).variables()
    assert sorted(live) == sorted(p[4:] for p in got if p.startswith("mlp:"))
    for path, variable in live.items():
        np.testing.assert_array_equal(got["mlp:" + path], variable.numpy())
    for j, value in enumerate(looped(xs, c)):
        np.testing.assert_array_equal(got[f"4/{j}"], value.numpy())


def test_loaded_functions_share_variables_and_compile_lazily(saved_mlp):
    _, directory = saved_mlp
    loaded = tj.saved.load(directory)
    concrete = loaded.train_step.concrete_functions()[0]
    assert concrete._executable is None  # nothing compiled (or run) by load
    before = loaded.predict(X).numpy()
    kernel = loaded.variables["model/layers/0/kernel"].numpy()
    loaded.train_step(X, Y)
    assert not np.array_equal(kernel, loaded.variables["model/layers/0/kernel"].numpy())
    assert not np.array_equal(before, loaded.predict(X).numpy())
    assert int(loaded.variables["opt/iterations"]) == 2
    assert "dense[activation=none]" in str(concrete.ir)


def test_unsaved_signature_lists_the_saved_ones(saved_mlp):
    _, directory = saved_mlp
    loaded = tj.saved.load(directory)
    with pytest.raises(SignatureError) as err:
        loaded.train_step(X[:3], Y[:3])
    assert str(err.value) == (
        "train_step(x: f32[3,4], y: i32[3]) matches no saved signature. A loaded function "
        "cannot trace new signatures; it was saved with:\n  train_step(x: f32[16,4], y: i32[16])"
        "\nOnly the batch size differs. To accept any batch size, save a trace with an unknown "
        "batch dimension: trace the function with input_signature=[tj.TensorSpec((None, 4), "
        "'float32'), tj.TensorSpec((None,), 'int32')] (or call f.get_concrete_function(...) with "
        "those specs) before tj.saved.save."
    )
    with pytest.raises(AttributeError, match="saved functions: predict, train_step"):
        _ = loaded.evaluate
    assert loaded.predict(X[:2]).shape == (2, 3)  # unknown dims match any size


def test_structures_statics_and_defaults(tmp_path):
    Pair = collections.namedtuple("Pair", "low high")
    scale = tj.Variable(2.0, name="scale")

    @tj.function
    def f(inputs, mode="double", *, offset=1.0):
        total = inputs["a"] * scale + offset
        if mode == "double":
            total = total * 2
        return {"pair": Pair(total, total + 1), "mode": mode, "nothing": None}

    a = np.arange(3, dtype=np.float32)
    f({"a": a})
    f({"a": a}, "single", offset=0.0)
    tj.saved.save(f, str(tmp_path / "f"))
    loaded = tj.saved.load(str(tmp_path / "f"))
    out = loaded.f({"a": a})
    assert set(out) == {"pair", "mode", "nothing"} and out["mode"] == "double"
    low, high = out["pair"]  # a namedtuple comes back as a tuple
    np.testing.assert_array_equal(low.numpy(), (a * 2 + 1) * 2)
    np.testing.assert_array_equal(loaded.f({"a": a}, "single", offset=0.0)["pair"][1].numpy(),
                                  a * 2 + 1)  # fmt: skip
    with pytest.raises(SignatureError, match="offset: 2.0"):
        loaded.f({"a": a}, offset=2.0)
    assert list(loaded.variables) == ["scale"]


def test_save_refuses_what_it_cannot_store(tmp_path):
    with pytest.raises(ValueError, match="never been traced"):
        tj.saved.save(tj.function(lambda x: x), str(tmp_path / "a"))
    v = tj.Variable(1.0)
    takes_variable = tj.function(lambda var, x: var * x)
    takes_variable(v, tj.constant(1.0))
    with pytest.raises(TypeError, match="cannot take variables as arguments"):
        tj.saved.save(takes_variable, str(tmp_path / "b"))
    os.makedirs(tmp_path / "c")
    (tmp_path / "c" / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a saved directory"):
        tj.saved.save(looped_traced(), str(tmp_path / "c"))


def looped_traced():
    looped(np.ones((2, 3), np.float32), np.ones(3, np.float32))
    return looped


def test_saving_again_replaces_the_directory(tmp_path, saved_mlp):
    model, _ = saved_mlp
    directory = str(tmp_path / "s")
    tj.saved.save(looped_traced(), directory)
    tj.saved.save(model, directory)
    assert set(tj.saved.load(directory).signatures) == {"predict", "train_step"}
    assert [e for e in os.listdir(tmp_path) if e.startswith(".tmp-")] == []


# Hostile and corrupt directories ---------------------------------------------------------------
def rehash(directory):
    """Recompute the manifest's checksums, as an attacker would (so validation, not the
    checksum, must catch the problem)."""
    path = os.path.join(directory, "saved.json")
    manifest = json.load(open(path))
    for key in ("program", "arrays"):
        name = os.path.join(directory, manifest[key]["file"])
        if os.path.isfile(name):
            manifest[key]["sha256"] = files.sha256_file(name)
    json.dump(manifest, open(path, "w"))


def tamper(directory, edit):
    path = os.path.join(directory, "program.json")
    program = json.load(open(path))
    edit(program)
    json.dump(program, open(path, "w"))
    rehash(directory)


def predict_graph(program):
    return program["functions"]["predict"]["signatures"][0]["graph"]


def first_node(program, op):
    return next(n for n in predict_graph(program)["nodes"] if n["op"] == op)


HOSTILE = {
    "unknown op": (
        lambda p: first_node(p, "softmax").update(op="os.system"),
        "unknown op 'os.system'",
    ),
    "wrong aval": (
        lambda p: first_node(p, "softmax")["outputs"][0].update(aval="f32[?,4]"),
        "softmax declares",
    ),
    "wrong dtype": (
        lambda p: first_node(p, "softmax")["outputs"][0].update(aval="i32[?,3]"),
        "softmax declares",
    ),
    "absurd shape": (
        lambda p: predict_graph(p)["inputs"][0].update(aval="f32[99999999999,4]"),
        "more than the allowed",
    ),
    "use before def": (lambda p: predict_graph(p)["nodes"].reverse(), "before it is defined"),
    "cycle": (
        lambda p: first_node(p, "softmax").update(
            inputs=[first_node(p, "softmax")["outputs"][0]["id"]]
        ),
        "before it is defined",
    ),
    "bad param": (
        lambda p: first_node(p, "softmax")["params"].update(axis={"int": 7}),
        "softmax rejects",
    ),
    "param type": (
        lambda p: first_node(p, "softmax")["params"].update(axis={"str": "1"}),
        "softmax rejects",
    ),
    "unknown param": (
        lambda p: first_node(p, "softmax")["params"].update(evil={"str": "x"}),
        "softmax rejects",
    ),
    "json type": (lambda p: predict_graph(p).update(nodes="rm -rf"), "expected an array"),
    "bool as int": (
        lambda p: first_node(p, "softmax")["params"].update(axis={"int": True}),
        "expected an integer",
    ),
    "unknown tag": (
        lambda p: first_node(p, "softmax")["params"].update(axis={"pickle": "x"}),
        "unknown value tag",
    ),
    "missing field": (lambda p: predict_graph(p).pop("outputs"), "missing outputs"),
    "state mismatch": (
        lambda p: p["functions"]["predict"]["signatures"][0]["variables"].reverse(),
        "state does not match",
    ),
    "signature mismatch": (
        lambda p: p["functions"]["predict"]["signatures"][0]["inputs"][0].update(tensor="f32[?,5]"),
        "input signature does not match",
    ),
    "missing array": (
        lambda p: p["arrays"].update(c99={"shape": [], "dtype": "float32", "sha256": "0" * 64}),
        "missing",
    ),
    "object dtype": (lambda p: p["arrays"]["v0"].update(dtype="object"), "unknown dtype"),
    "bad parameter name": (
        lambda p: p["functions"]["predict"]["parameters"][0].update(name="x; import os"),
        "not a valid parameter name",
    ),
    "empty parameter name": (
        lambda p: p["functions"]["predict"]["parameters"][0].update(name=""),
        "'' is not a valid parameter name",
    ),
    "output mismatch": (
        lambda p: p["functions"]["predict"]["signatures"][0]["outputs"].update(tensor="i32[?,3]"),
        "output structure does not match",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_programs_raise_format_error(case, saved_mlp, tmp_path):
    edit, message = HOSTILE[case]
    directory = fresh_copy(saved_mlp[1], tmp_path)
    tamper(directory, edit)
    with pytest.raises(FormatError, match=_escape(message)):
        tj.saved.load(directory)


def _escape(text):
    import re

    return re.escape(text)


def test_manifest_checks(saved_mlp, tmp_path):
    directory = fresh_copy(saved_mlp[1], tmp_path)
    manifest_path = os.path.join(directory, "saved.json")
    original = json.load(open(manifest_path))

    def load_with(**changes):
        json.dump({**original, **changes}, open(manifest_path, "w"))
        with pytest.raises(FormatError) as err:
            tj.saved.load(directory)
        return str(err.value)

    assert load_with(version=2) == (
        f"{directory}: saved.json: format version 2; this tracejit reads version 1 (save it "
        "again with a matching tracejit)"
    )
    assert "expected 'tracejit.saved'" in load_with(format="pickle")
    for escaping in ("../program.json", "/etc/passwd", "a/../../b", ".."):
        text = load_with(program={"file": escaping, "sha256": "0" * 64})
        assert "not a plain file name" in text
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    os.symlink(outside, os.path.join(directory, "link.json"))
    assert "points outside" in load_with(program={"file": "link.json", "sha256": "0" * 64})
    assert "checksum mismatch" in load_with(program={**original["program"], "sha256": "0" * 64})
    open(manifest_path, "w").write('{"format": NaN}')
    with pytest.raises(FormatError, match="NaN is not allowed"):
        tj.saved.load(directory)


def test_array_file_checks(saved_mlp, tmp_path):
    directory = fresh_copy(saved_mlp[1], tmp_path)
    arrays = os.path.join(directory, "arrays.npz")
    data = open(arrays, "rb").read()
    open(arrays, "wb").write(data[: len(data) // 2])
    rehash(directory)
    with pytest.raises(FormatError, match="arrays.npz"):
        tj.saved.load(directory)
    # A pickled object array where a variable should be: rejected before anything is read.
    with np.load(os.path.join(saved_mlp[1], "arrays.npz")) as good:
        members = dict(good)
    members["v0"] = np.array([{"evil": 1}], dtype=object)
    np.savez(arrays, **members)
    rehash(directory)
    with pytest.raises(FormatError, match="array 'v0'"):
        tj.saved.load(directory)
    # Right header, changed bytes: the per-array checksum catches it.
    members["v0"] = np.asarray(np.load(os.path.join(saved_mlp[1], "arrays.npz"))["v0"]) + 1
    np.savez(arrays, **members)
    rehash(directory)
    with pytest.raises(FormatError, match="checksum mismatch"):
        tj.saved.load(directory)


# Fuzzing ----------------------------------------------------------------------------------------
def json_paths(obj, prefix=()):
    """Every (container, key) location in a JSON document."""
    found = []
    items = (
        obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else []
    )
    for key, value in items:
        found.append(prefix + (key,))
        found.extend(json_paths(value, prefix + (key,)))
    return found


def json_leaves(obj, prefix=()):
    """(path, value) of every non-container value in a JSON document."""
    found = []
    items = (
        obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else []
    )
    for key, value in items:
        if isinstance(value, (dict, list)):
            found.extend(json_leaves(value, prefix + (key,)))
        else:
            found.append((prefix + (key,), value))
    return found


def set_path(document, path, value):
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False)
    | st.sampled_from(["f32[?,4]", "f32[3]", "../x", "c0", "0", "add", "softmax", "float32", "?"])
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["int", "float", "str", "tuple", "graph", "id", "aval"]), inner, max_size=2
    ),
    max_leaves=6,
)  # fmt: skip


@pytest.fixture(scope="module")
def small_saved(tmp_path_factory):
    w = tj.Variable(RNG.normal(size=(4, 3)).astype(np.float32), name="w")

    @tj.function(input_signature=[tj.TensorSpec([2, 4])])
    def small(x):
        h = tj.nn.relu(x @ w + 1.0)
        return tj.cond(h.sum() > 0, lambda: h * 2.0, lambda: h - 1.0)

    x = RNG.normal(size=(2, 4)).astype(np.float32)
    directory = str(tmp_path_factory.mktemp("small") / "saved")
    tj.saved.save(small, directory)
    return directory, x, small(x).numpy()


FUZZ = settings(max_examples=100, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip


@FUZZ
@given(data=st.data())
def test_fuzz_corrupted_files_round_trip_or_raise_format_error(small_saved, tmp_path, data):
    directory, x, expected = small_saved
    target = fresh_copy(directory, pathlib.Path(tempfile.mkdtemp(dir=tmp_path)))
    name = data.draw(st.sampled_from(["saved.json", "program.json", "arrays.npz"]))
    path = os.path.join(target, name)
    raw = bytearray(open(path, "rb").read())
    how = data.draw(st.sampled_from(["flip", "truncate", "edit"] if name != "arrays.npz"
                                    else ["flip", "truncate"]))  # fmt: skip
    if how == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            raw[data.draw(st.integers(0, len(raw) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    elif how == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    else:
        document = json.loads(raw)
        set_path(document, data.draw(st.sampled_from(json_paths(document))), data.draw(JSON_VALUES))
        raw = bytearray(json.dumps(document).encode())
    open(path, "wb").write(bytes(raw))
    _load_and_check(target, x, expected)


@FUZZ
@given(data=st.data())
def test_fuzz_hostile_programs_raise_format_error(small_saved, tmp_path, data):
    """The attacker rewrites program.json and recomputes the checksums: validation alone must
    stop whatever is wrong, and a program that passes it must run or fail cleanly."""
    directory, x, expected = small_saved
    target = fresh_copy(directory, pathlib.Path(tempfile.mkdtemp(dir=tmp_path)))
    program = json.load(open(os.path.join(target, "program.json")))
    vocabulary = st.sampled_from(sorted({v for _, v in json_leaves(program) if isinstance(v, str)}
                                        | set(all_ops())))  # fmt: skip
    for _ in range(data.draw(st.integers(1, 3))):
        if data.draw(st.booleans()):  # a plausible leaf: another id, aval, op name, small int
            path, _ = data.draw(st.sampled_from(json_leaves(program)))
            value = data.draw(
                vocabulary
                | st.integers(-2, 9)
                | st.booleans()
                | st.sampled_from(
                    ["f32[2,3]", "f32[3]", "i32[]", "bool[]", "f32[?,3]", "1e9", "nan"]
                )
            )
        else:  # anything anywhere
            path, value = data.draw(st.sampled_from(json_paths(program))), data.draw(JSON_VALUES)
        set_path(program, path, value)
    json.dump(program, open(os.path.join(target, "program.json"), "w"))
    rehash(target)
    _load_and_check(target, x, None)


FUZZ_SECONDS, FUZZ_MEGABYTES = 5.0, 128  # per case (generous: the CI machine is shared)


def _load_and_check(directory, x, expected):
    import time
    import tracemalloc

    tracemalloc.start()
    start = time.perf_counter()
    try:
        loaded = tj.saved.load(directory)
    except FormatError:
        loaded = None
    finally:
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    assert seconds < FUZZ_SECONDS and peak < FUZZ_MEGABYTES, (seconds, peak)
    if loaded is None:
        return
    try:
        result = loaded.small(x).numpy()
    except TracejitError:  # a hostile but well-formed program may fail at run time, cleanly
        assert expected is None
        return
    if expected is not None:
        np.testing.assert_array_equal(result, expected)


def test_prints_round_trip_and_templates_are_checked(tmp_path, capsys):
    @tj.function
    def noisy(x):
        tj.print("x {is}", x)
        return x + 1

    noisy(np.zeros(2, np.float32))
    capsys.readouterr()
    directory = str(tmp_path / "noisy")
    tj.saved.save(noisy, directory)
    tj.saved.load(directory).noisy(np.ones(2, np.float32))
    assert capsys.readouterr().out == "x {is} [1. 1.]\n"

    def sneaky(program):
        node = next(n for n in program["functions"]["noisy"]["signatures"][0]["graph"]["nodes"]
                    if n["op"] == "print")  # fmt: skip
        node["params"]["template"] = {"str": "{0.__class__.__mro__}"}

    tamper(directory, sneaky)
    with pytest.raises(FormatError, match="a print template holds one bare"):
        tj.saved.load(directory)


def test_npz_members_are_never_unpickled(tmp_path):
    path = str(tmp_path / "a.npz")
    with zipfile.ZipFile(path, "w") as archive:
        with archive.open("a0.npy", "w") as member:
            np.lib.format.write_array(member, np.array([object()]), allow_pickle=True)
    with pytest.raises(files.CorruptFileError, match="manifest says"):
        files.read_arrays(path, {"a0": ((1,), np.dtype("float32"), "0" * 64)})


# Bounded time and memory on hostile directories -------------------------------------------------
def _bounded_load(directory, seconds=5.0, megabytes=64, **caps):
    """Load ``directory`` in a thread (so a blocking open cannot hang the suite): it must raise
    FormatError within ``seconds``, allocating at most ``megabytes`` (tracemalloc peak)."""
    import threading
    import time
    import tracemalloc

    outcome = {}

    def target():
        tracemalloc.start()
        start = time.perf_counter()
        try:
            tj.saved.load(directory, **caps)
            outcome["error"] = None
        except BaseException as err:  # noqa: BLE001 - reported below
            outcome["error"] = err
        outcome["seconds"] = time.perf_counter() - start
        outcome["peak"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds + 30)
    assert not thread.is_alive(), "the load blocked"
    assert isinstance(outcome["error"], FormatError), repr(outcome["error"])
    assert outcome["seconds"] < seconds, outcome
    assert outcome["peak"] < megabytes, outcome
    return str(outcome["error"])


def _set_manifest_digest(directory, key, digest):
    path = os.path.join(directory, "saved.json")
    manifest = json.load(open(path))
    manifest[key]["sha256"] = digest
    json.dump(manifest, open(path, "w"))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("name", ["program.json", "arrays.npz", "saved.json"])
def test_a_fifo_in_place_of_a_file_is_refused_at_once(small_saved, tmp_path, name):
    directory = fresh_copy(small_saved[0], tmp_path)
    os.remove(os.path.join(directory, name))
    os.mkfifo(os.path.join(directory, name))
    assert "not a regular file" in _bounded_load(directory)


def test_a_directory_in_place_of_a_file_is_refused(small_saved, tmp_path):
    directory = fresh_copy(small_saved[0], tmp_path)
    os.remove(os.path.join(directory, "arrays.npz"))
    os.mkdir(os.path.join(directory, "arrays.npz"))
    assert "not a regular file" in _bounded_load(directory)


@pytest.mark.parametrize("name", ["program.json", "arrays.npz"])
def test_huge_sparse_files_are_refused_before_hashing(small_saved, tmp_path, name):
    directory = fresh_copy(small_saved[0], tmp_path)
    os.truncate(os.path.join(directory, name), 20 * 2**30)  # sparse: no disk used
    assert "larger than the allowed" in _bounded_load(directory, seconds=2.0)


def _add_array(directory, key, shape, dtype, member_bytes, compression=zipfile.ZIP_DEFLATED):
    """Declare array ``key`` in program.json and add it to arrays.npz, checksums recomputed."""
    program_path = os.path.join(directory, "program.json")
    program = json.load(open(program_path))
    program["arrays"][key] = {"shape": list(shape), "dtype": dtype, "sha256": "0" * 64}
    json.dump(program, open(program_path, "w"))
    with zipfile.ZipFile(os.path.join(directory, "arrays.npz"), "a", compression) as archive:
        with archive.open(key + ".npy", "w", force_zip64=True) as member:
            for block in member_bytes:
                member.write(block)
    rehash(directory)


def _npy_blocks(shape, dtype, total, block=1 << 24):
    import io

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": tuple(shape)}
    )
    yield header.getvalue()
    zeros = bytes(block)
    for start in range(0, total, block):
        yield zeros[: min(block, total - start)]


def test_a_zip_bomb_is_refused_by_its_declared_size(small_saved, tmp_path):
    """512 MiB of zeros, deflated to well under 1 MiB, declared as an array within the old
    element cap: refused from the declaration, never inflated."""
    directory = fresh_copy(small_saved[0], tmp_path)
    shape = (2**27,)
    _add_array(directory, "c99", shape, "float32", _npy_blocks(shape, "float32", 4 * 2**27))
    assert os.path.getsize(os.path.join(directory, "arrays.npz")) < 2**21
    assert "out of range [0, 67108864]" in _bounded_load(directory)


def test_array_members_stream_within_their_declared_size(small_saved, tmp_path):
    """A member whose zip sizes disagree with its declared aval is refused before a byte of it
    is inflated (members are then streamed into a buffer of the declared size only)."""
    directory = fresh_copy(small_saved[0], tmp_path)
    shape = (2**20,)  # 4 MiB declared, 256 MiB of data
    _add_array(directory, "c99", shape, "float32", _npy_blocks(shape, "float32", 2**28))
    assert "should hold 4194304 bytes of data" in _bounded_load(directory, megabytes=48)


def test_only_stored_and_deflated_members_are_read(small_saved, tmp_path):
    directory = fresh_copy(small_saved[0], tmp_path)
    shape = (4,)
    _add_array(directory, "c99", shape, "float32", _npy_blocks(shape, "float32", 16),
               compression=zipfile.ZIP_BZIP2)  # fmt: skip
    assert "compression method 12 is not allowed" in _bounded_load(directory)


@pytest.mark.parametrize(
    "bomb, message",
    [(b"[" + b"[]," * 5_000_000 + b"[]]", "JSON values"), (b"[" * 200_000, "nested")],
)
def test_json_bombs_are_refused_before_parsing(small_saved, tmp_path, bomb, message):
    directory = fresh_copy(small_saved[0], tmp_path)
    open(os.path.join(directory, "program.json"), "wb").write(bomb)
    rehash(directory)
    assert message in _bounded_load(directory, megabytes=64)


def test_empty_function_table_is_refused(small_saved, tmp_path):
    directory = fresh_copy(small_saved[0], tmp_path)
    tamper(directory, lambda program: program["functions"].clear())
    assert "functions: is empty" in _bounded_load(directory)


def _pad_with_nodes(program, count):
    """Append ``count`` valid (dead) nodes to the small program's graph."""
    graph = program["functions"]["small"]["signatures"][0]["graph"]
    source = graph["inputs"][0]["id"]
    graph["nodes"] += [
        {"op": "negative", "inputs": [source], "params": {},
         "outputs": [{"id": f"x{i}", "aval": "f32[2,4]"}]}
        for i in range(count)
    ]  # fmt: skip


def test_node_count_is_capped(small_saved, tmp_path):
    from tracejit.saved.load import MAX_NODES

    directory = fresh_copy(small_saved[0], tmp_path)
    tamper(directory, lambda program: _pad_with_nodes(program, MAX_NODES + 1))
    # A 10 MB program.json: parsing it under tracemalloc takes seconds on a loaded machine (1.5 s
    # without tracemalloc); the bound here is that it is refused at all, linearity is below.
    refusal = _bounded_load(directory, seconds=30.0, megabytes=256)
    assert f"more than the allowed {MAX_NODES} nodes" in refusal


def test_loading_time_is_linear_in_the_node_count(small_saved, tmp_path):
    import time

    def timed(count):
        directory = fresh_copy(small_saved[0], pathlib.Path(tempfile.mkdtemp(dir=tmp_path)))
        tamper(directory, lambda program: _pad_with_nodes(program, count))
        start = time.perf_counter()
        tj.saved.load(directory)
        return time.perf_counter() - start

    small, large = min(timed(2000) for _ in range(2)), timed(16000)
    assert large < 16 * small + 1.0, (small, large)  # 8x the nodes: far from 64x


def test_a_loaded_function_wraps_run_time_failures(small_saved, tmp_path):
    directory, x, _ = small_saved
    loaded = tj.saved.load(directory)
    concrete = loaded.small.concrete_functions()[0]

    class Failing:
        def run(self, leaves):
            raise RuntimeError("INTERNAL: the device went away")

    concrete._executable = Failing()
    with pytest.raises(tj.errors.ExecutionError, match=r"small\(x: f32\[2,4\]\) failed at run "
                       "time: RuntimeError: INTERNAL: the device went away"):  # fmt: skip
        loaded.small(x)


@pytest.mark.parametrize("how", ["wrong_dtype", "raises"])
def test_graph_whose_lowering_disagrees_with_its_declared_types_is_refused(
    small_saved, monkeypatch, how
):
    """The last line of defence: a program whose every node passes inference but whose lowering
    computes other types (or fails) is refused at load time, not at its first call. The lowering
    is made to disagree here, as an op implementation that does not match its inference would."""
    load_module = sys.modules["tracejit.saved.load"]  # (tj.saved.load is the function)
    real = load_module.graph_to_function

    def disagreeing(graph):
        fn, const_args = real(graph)

        def wrong(*args):
            if how == "raises":
                raise TypeError("an implementation rejected its inputs")
            return jax.tree_util.tree_map(lambda a: a.astype(jnp.float16), fn(*args))

        return wrong, const_args

    monkeypatch.setattr(load_module, "graph_to_function", disagreeing)
    expected = "but computes float16" if how == "wrong_dtype" else "does not type-check"
    with pytest.raises(FormatError, match=expected):
        tj.saved.load(small_saved[0])
