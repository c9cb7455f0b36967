#!/usr/bin/env python3
"""tools/convert_bert_weights.py against fixtures made by torch itself (tools/make_tiny_bert.py,
committed under tests/data/bert-tiny-bin), run with the Python that runs this test and nothing
but its standard library (no torch, no numpy: like CI):

- bert-tiny's weights saved by torch.save (some as offset, transposed and stride-2 views) convert
  to exactly the bytes of the model.safetensors that transformers wrote for the same model, name
  for name; the fixture is checked to really store those views (the row-major bytes of those
  tensors appear in none of its storages);
- every dtype, contiguous or not (transposed, sliced, expanded, permuted, 0-d, empty, a
  Parameter), converts to what the safetensors package writes for the same tensors;
- a pickle calling a forbidden global (os.system, builtins.eval, ...) is refused before anything
  runs, with one line naming the global;
- an existing model.safetensors is kept without --force (and replaced with it); the legacy
  non-zip format, a missing file and a missing directory are one-line errors.

Both safetensors files are parsed here with struct and json, not with the converter's code.
Run: python3 tests/integration/convert_bert_weights_test.py (ctest: integration.convert_bert_weights).
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest
import zipfile

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CONVERTER = os.path.join(REPO, "tools", "convert_bert_weights.py")
DATA = os.path.join(REPO, "tests", "data")
FIXTURE = os.path.join(DATA, "bert-tiny-bin")


def read_safetensors(path):
    """(metadata, {name: (dtype, shape, bytes)}), checking the layout safetensors requires."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    metadata = header.pop("__metadata__", None)
    tensors, end = {}, 0
    for name, t in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        begin, stop = t["data_offsets"]
        assert begin == end, f"{path}: {name} does not follow the previous tensor"
        tensors[name] = (t["dtype"], t["shape"], data[begin:stop])
        end = stop
    assert end == len(data), f"{path}: {len(data) - end} bytes after the last tensor"
    return metadata, tensors


def run_converter(directory, *flags):
    return subprocess.run([sys.executable, CONVERTER, *flags, directory], capture_output=True,
                          text=True, timeout=120)


def crafted_checkpoint(path, pickle_bytes):
    """A torch.save-shaped zip whose data.pkl is the given pickle."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickle_bytes)
        z.writestr("archive/version", "3\n")


def global_call(module, name, arg):
    """Protocol-2 pickle opcodes that import module.name and call it with one string."""
    a = arg.encode()
    return (b"c" + module.encode() + b"\n" + name.encode() + b"\n" +
            b"X" + struct.pack("<I", len(a)) + a + b"\x85R")


class ConvertBertWeightsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="rag-convert-test-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def copy_fixture(self, sub=""):
        dst = os.path.join(self.tmp, sub or "bert-tiny-bin")
        shutil.copytree(os.path.join(FIXTURE, sub), dst,
                        ignore=shutil.ignore_patterns("dtypes", "legacy", "expected.safetensors"))
        return dst

    def assert_one_line_error(self, r, *needles):
        self.assertNotEqual(r.returncode, 0, r.stdout)
        err = r.stderr.strip()
        self.assertEqual(err.count("\n"), 0, err)
        for needle in needles:
            self.assertIn(needle, err)
        self.assertNotIn("Traceback", err)

    def assert_same_tensors(self, got_path, want_path):
        got_meta, got = read_safetensors(got_path)
        _, want = read_safetensors(want_path)
        self.assertEqual(got_meta, {"format": "pt"})
        self.assertEqual(sorted(got), sorted(want))
        for name in want:
            self.assertEqual(got[name][0], want[name][0], f"{name}: dtype")
            self.assertEqual(got[name][1], want[name][1], f"{name}: shape")
            self.assertTrue(got[name][2] == want[name][2], f"{name}: bytes differ")

    def test_bert_tiny_converts_bit_for_bit(self):
        d = self.copy_fixture()
        r = run_converter(d)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("wrote " + os.path.join(d, "model.safetensors"), r.stdout)
        self.assertIn("37 tensors", r.stdout)
        self.assert_same_tensors(os.path.join(d, "model.safetensors"),
                                 os.path.join(DATA, "bert-tiny", "model.safetensors"))
        self.assertEqual(sorted(os.listdir(d)), ["config.json", "model.safetensors",
                                                 "pytorch_model.bin"])  # no temp file left

    def test_fixture_really_stores_views(self):
        """The views the converter must resolve are in the file, not contiguous copies."""
        _, want = read_safetensors(os.path.join(DATA, "bert-tiny", "model.safetensors"))
        with zipfile.ZipFile(os.path.join(FIXTURE, "pytorch_model.bin")) as z:
            storages = [z.read(n) for n in z.namelist() if "/data/" in n]
        p = "encoder.layer.0."
        up = want[p + "intermediate.dense.weight"]  # (128, 64) row-major
        rows, cols = up[1]
        floats = struct.unpack(f"<{rows * cols}f", up[2])
        column_major = struct.pack(f"<{rows * cols}f",
                                   *(floats[r * cols + c] for c in range(cols) for r in range(rows)))
        bias = want[p + "output.LayerNorm.bias"][2]
        qkv = b"".join(want[p + f"attention.self.{n}.weight"][2] for n in ("query", "key", "value"))
        self.assertFalse(any(up[2] in s for s in storages), "intermediate weight stored contiguous")
        self.assertIn(column_major, storages)
        self.assertFalse(any(bias in s for s in storages), "output bias stored contiguous")
        self.assertIn(qkv, storages)  # one storage, three offsets
        self.assertFalse(any(want[p + "attention.self.key.weight"][2] == s for s in storages))

    def test_every_dtype_and_layout_matches_safetensors_package(self):
        d = self.copy_fixture("dtypes")
        r = run_converter(d)
        self.assertEqual(r.returncode, 0, r.stderr)
        _, want = read_safetensors(os.path.join(FIXTURE, "dtypes", "expected.safetensors"))
        self.assertEqual({t[0] for t in want.values()},
                         {"F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL"})
        self.assert_same_tensors(os.path.join(d, "model.safetensors"),
                                 os.path.join(FIXTURE, "dtypes", "expected.safetensors"))

    def test_forbidden_globals_are_refused_before_running(self):
        marker = os.path.join(self.tmp, "ran")
        cases = [("os", "system", "touch " + marker),
                 ("posix", "system", "touch " + marker),
                 ("builtins", "eval", f"open({marker!r}, 'w')"),
                 ("builtins", "exec", f"open({marker!r}, 'w')"),
                 ("torch.storage", "_load_from_bytes", "x"),
                 ("torch", "load", "x")]
        for module, name, arg in cases:
            with self.subTest(glob=f"{module}.{name}"):
                d = os.path.join(self.tmp, f"{module}.{name}")
                os.mkdir(d)
                # At the top level, and nested as a state dict value.
                for body in (global_call(module, name, arg),
                             b"}X\x01\x00\x00\x00w" + global_call(module, name, arg) + b"s"):
                    crafted_checkpoint(os.path.join(d, "pytorch_model.bin"),
                                       b"\x80\x02" + body + b".")
                    r = run_converter(d)
                    self.assert_one_line_error(r, f"refusing to unpickle global {module}.{name}")
                    self.assertFalse(os.path.exists(marker), "the pickle ran code")
                    self.assertFalse(os.path.exists(os.path.join(d, "model.safetensors")))
        # The same crafted zip with an allowed global does load (the refusal is the global's).
        d = os.path.join(self.tmp, "allowed")
        os.mkdir(d)
        crafted_checkpoint(os.path.join(d, "pytorch_model.bin"),
                           b"\x80\x02ccollections\nOrderedDict\n)R.")
        r = run_converter(d)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("0 tensors", r.stdout)

    def test_existing_output_needs_force(self):
        d = self.copy_fixture()
        self.assertEqual(run_converter(d).returncode, 0)
        out = os.path.join(d, "model.safetensors")
        with open(out, "r+b") as f:  # mark the file: a refused run must leave it as it is
            f.seek(-1, os.SEEK_END)
            f.write(b"\xff")
        with open(out, "rb") as f:
            before = f.read()
        r = run_converter(d)
        self.assert_one_line_error(r, "already exists", "--force")
        with open(out, "rb") as f:
            self.assertEqual(f.read(), before)
        r = run_converter(d, "--force")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_same_tensors(out, os.path.join(DATA, "bert-tiny", "model.safetensors"))

    def test_legacy_and_missing_inputs_are_one_line_errors(self):
        d = os.path.join(self.tmp, "legacy")
        shutil.copytree(os.path.join(FIXTURE, "legacy"), d)
        r = run_converter(d)
        self.assert_one_line_error(r, "legacy", "torch.save(torch.load(")
        self.assertFalse(os.path.exists(os.path.join(d, "model.safetensors")))
        empty = os.path.join(self.tmp, "empty")
        os.mkdir(empty)
        self.assert_one_line_error(run_converter(empty),
                                   os.path.join(empty, "pytorch_model.bin") + ": no such file")
        self.assert_one_line_error(run_converter(os.path.join(self.tmp, "nope")),
                                   "no such directory")
        with open(os.path.join(empty, "pytorch_model.bin"), "wb") as f:
            f.write(b"not a checkpoint")
        self.assert_one_line_error(run_converter(empty), "not a PyTorch checkpoint")
        crafted_checkpoint(os.path.join(empty, "pytorch_model.bin"), b"\x80\x02}q\x00(")
        self.assert_one_line_error(run_converter(empty), "unreadable archive/data.pkl")


if __name__ == "__main__":
    unittest.main(verbosity=2)
