"""Hostile and broken weight files: each must make `cvision convert` exit 1 with exactly one line
on stderr naming the file, without a sanitizer report or a hang. Runs against the ASan build."""
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections import OrderedDict

import torch

CVISION = os.environ["CVISION"]
FAILS = []
TMP = tempfile.mkdtemp(prefix="cv_bad_weights_")
N = 0


def path(name):
    return os.path.join(TMP, name)


def run(p, *extra):
    out = path("out.safetensors")
    try:
        r = subprocess.run([CVISION, "convert", *extra, p, out], capture_output=True, text=True,
                           timeout=60, errors="replace")
    except subprocess.TimeoutExpired:
        return None, "TIMEOUT"
    return r.returncode, r.stderr


def sanitizer(err):
    return any(s in err for s in ("AddressSanitizer", "runtime error:", "LeakSanitizer",
                                  "UndefinedBehaviorSanitizer"))


def expect_fail(label, p, must_contain=None, *extra):
    global N
    N += 1
    rc, err = run(p, *extra)
    lines = err.strip("\n").split("\n") if err else []
    ok = (rc == 1 and len(lines) == 1 and p in lines[0] and not sanitizer(err)
          and (must_contain is None or must_contain in err))
    if not ok:
        FAILS.append(label)
        print(f"FAIL {label}: rc={rc} stderr={err[:600]!r}")
    return lines[0] if lines else ""


def expect_no_crash(label, p):
    """For corruptions that may still leave a valid file: success, or one clean error line."""
    global N
    N += 1
    rc, err = run(p)
    lines = err.strip("\n").split("\n") if err else []
    ok = (rc == 0 and not err) or (rc == 1 and len(lines) == 1 and p in lines[0])
    if not ok or sanitizer(err):
        FAILS.append(label)
        print(f"FAIL {label}: rc={rc} stderr={err[:600]!r}")


def write(name, data):
    p = path(name)
    with open(p, "wb") as f:
        f.write(data)
    return p


def torch_zip(data_pkl, records=None, version=b"3\n", extra=None):
    """A torch.save-style archive with our own data.pkl and records."""
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as z:
        z.writestr("archive/data.pkl", data_pkl)
        for k, v in (records or {}).items():
            z.writestr(f"archive/data/{k}", v)
        if version is not None:
            z.writestr("archive/version", version)
        for k, v in (extra or {}).items():
            z.writestr(f"archive/{k}", v)
    return b.getvalue()


class Storage:
    def __init__(self, key, numel, typ=torch.FloatStorage):
        self.key, self.numel, self.typ = key, numel, typ


class Tensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


def data_pkl(obj, protocol=2):
    b = io.BytesIO()
    p = pickle.Pickler(b, protocol=protocol)
    p.persistent_id = lambda o: (("storage", o.typ, o.key, "cpu", o.numel)
                                 if isinstance(o, Storage) else None)
    p.dump(obj)
    return b.getvalue()


def one_tensor(offset, size, stride, numel=4, record_bytes=16, typ=torch.FloatStorage):
    s = Storage("0", numel, typ)
    return torch_zip(data_pkl(OrderedDict(w=Tensor(s, offset, size, stride))),
                     {"0": b"\0" * record_bytes})


def safetensors(header, data, raw_header=None):
    h = raw_header if raw_header is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data


def main():
    g = torch.Generator().manual_seed(7)
    sd = OrderedDict(a=torch.randn(5, 3, generator=g), n=torch.tensor(3),
                     b=torch.randn(20, generator=g).double(), c=torch.randn(2, 4, 4)[:, 1])
    torch.save(sd, path("good_zip.pth"))
    torch.save(sd, path("good_legacy.pth"), _use_new_zipfile_serialization=False)
    for good in ("good_zip.pth", "good_legacy.pth"):
        rc, err = run(path(good))
        if rc != 0:
            FAILS.append(good)
            print(f"FAIL {good} does not load: {err}")

    # truncation at many cut points
    for good in ("good_zip.pth", "good_legacy.pth"):
        data = open(path(good), "rb").read()
        cuts = sorted(set(list(range(1, 40)) + list(range(40, len(data), max(1, len(data) // 60)))
                          + [len(data) - 1, len(data) - 8]))
        for c in cuts:
            expect_fail(f"{good} truncated at {c}", write(f"trunc_{good}_{c}", data[:c]))
    # flipped bytes: may stay valid, must never crash
    for good in ("good_zip.pth", "good_legacy.pth"):
        data = open(path(good), "rb").read()
        for i in range(0, len(data), max(1, len(data) // 60)):
            for x in (0xff, 0x01, 0x80):
                d = bytearray(data)
                d[i] ^= x
                expect_no_crash(f"{good} byte {i} ^ {x:#x}", write(f"flip_{good}_{i}_{x}", d))

    # code-execution globals, alone and inside a checkpoint, protocol 2 (GLOBAL) and 4
    # (STACK_GLOBAL)
    payloads = {
        "os_system": b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00echoq\x01\x85q\x02Rq\x03.",
        "builtins_eval": b"\x80\x02cbuiltins\neval\nX\x06\x00\x00\x001+1==2\x85R.",
        "posix_system": b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R.",
        "stack_global": b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x02id\x85R.",
        "in_checkpoint": b"\x80\x02}(X\x05\x00\x00\x00model}X\x04\x00\x00\x00argscsubprocess\n"
                         b"check_output\n]X\x02\x00\x00\x00ida\x85Ru.",
    }
    names = {"os_system": "os.system", "builtins_eval": "builtins.eval",
             "posix_system": "posix.system", "stack_global": "os.system",
             "in_checkpoint": "subprocess.check_output"}
    for k, pk in payloads.items():
        expect_fail(f"forbidden global {k}", write(f"evil_{k}.pth", torch_zip(pk)),
                    f"forbidden global '{names[k]}'")
    # the same inside a legacy file and a zipped legacy file
    legacy = open(path("good_legacy.pth"), "rb").read()
    magic_end = legacy.index(b"\x2e") + 1  # after the magic-number pickle
    evil_legacy = legacy[:magic_end] + b"\x80\x02M\xe9\x03." + b"\x80\x02}." + payloads["os_system"]
    expect_fail("legacy forbidden global", write("evil_legacy.pth", evil_legacy), "forbidden")
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as z:
        z.writestr("x.pth", evil_legacy)
    expect_fail("zipped legacy forbidden global", write("evil_zipped.pth", b.getvalue()),
                "forbidden")

    # unknown (not forbidden) globals are placeholders: fine in args, an error as a tensor
    ns_ok = (b"\x80\x02}(X\x05\x00\x00\x00model}X\x04\x00\x00\x00argscargparse\nNamespace\n)R}"
             b"X\x02\x00\x00\x00lrG?\xb9\x99\x99\x99\x99\x99\x9asbu.")
    p = write("namespace_ok.pth", torch_zip(ns_ok))
    rc, err = run(p)
    if rc != 0:
        FAILS.append("namespace placeholder")
        print(f"FAIL namespace placeholder: {err}")
    ns_bad = b"\x80\x02}X\x01\x00\x00\x00wcargparse\nNamespace\n)Rs."
    expect_fail("placeholder where a tensor is needed", write("ns_bad.pth", torch_zip(ns_bad)),
                "argparse.Namespace")

    # storages and views that lie
    bad_views = {
        "offset beyond storage": one_tensor(100, (2,), (1,)),
        "size beyond storage": one_tensor(0, (3, 2), (2, 1)),
        "stride beyond storage": one_tensor(0, (2, 2), (3, 1)),
        "stride overflow": one_tensor(0, (2,), (2 ** 62,)),
        "size overflow": one_tensor(0, (2 ** 40, 2 ** 40), (1, 1)),
        "negative size": one_tensor(0, (-1,), (1,)),
        "broadcast view": one_tensor(0, (100,), (0,)),
        "record shorter than numel": one_tensor(0, (4,), (1,), numel=4, record_bytes=12),
        "record longer than numel": one_tensor(0, (4,), (1,), numel=4, record_bytes=20),
        "numel overflow": one_tensor(0, (4,), (1,), numel=2 ** 62),
        "quantized storage": one_tensor(0, (4,), (1,), typ=torch.QInt8Storage, record_bytes=4),
        "missing record": torch_zip(data_pkl(OrderedDict(w=Tensor(Storage("9", 4), 0, (4,), (1,))))),
        "no version record": torch_zip(data_pkl(OrderedDict()), version=None),
        "big-endian archive": torch_zip(data_pkl(OrderedDict()), extra={"byteorder": b"big"}),
        "too many dims": one_tensor(0, (1,) * 9, (1,) * 9),
        "too deeply nested": torch_zip(b"\x80\x02" + b"(" * 5000 + b"."),
        "huge memo index": torch_zip(b"\x80\x02}r\xff\xff\xff\x7f."),
        "memo get unset": torch_zip(b"\x80\x02h\x05."),
        "stack underflow": torch_zip(b"\x80\x02R."),
        "huge string": torch_zip(b"\x80\x02X\xff\xff\xff\xff."),
        "no STOP": torch_zip(b"\x80\x02}"),
        "unknown opcode": torch_zip(b"\x80\x02\xff."),
        "not a dict": torch_zip(b"\x80\x02K\x05."),
        "self-containing list": torch_zip(b"\x80\x02}(X\x05\x00\x00\x00model]q\x00h\x00au."),
        "pid not a storage": torch_zip(b"\x80\x02X\x01\x00\x00\x00xQ."),
        "zip of a text file": None,
    }
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as z:
        z.writestr("readme.txt", b"hello")
    bad_views["zip of a text file"] = b.getvalue()
    for label, data in bad_views.items():
        expect_fail(label, write(label.replace(" ", "_") + ".pth", data))

    # legacy storages that lie: wrong numel in the data section, unknown storage key
    d = bytearray(legacy)
    # change the first storage's numel (the 8 bytes after the key-list pickle)
    kl = legacy.index(b"]q\x00(")  # the key list starts with EMPTY_LIST BINPUT MARK
    stop = legacy.index(b"e.", kl) + 2
    struct.pack_into("<q", d, stop, struct.unpack_from("<q", legacy, stop)[0] + 1)
    expect_fail("legacy numel mismatch", write("legacy_numel.pth", bytes(d)))
    d = bytearray(legacy)
    struct.pack_into("<q", d, stop, -5)
    expect_fail("legacy negative numel", write("legacy_negnumel.pth", bytes(d)))
    d = bytearray(legacy)
    j = legacy.index(b"X", kl) + 5  # first key string in the list
    d[j] = ord("9") if d[j] != ord("9") else ord("8")
    expect_fail("legacy unknown storage key", write("legacy_key.pth", bytes(d)))
    big = legacy.replace(b"little_endianq\x03\x88", b"little_endianq\x03\x89")
    if big != legacy:
        expect_fail("legacy big-endian", write("legacy_big.pth", big), "big-endian")

    # safetensors whose header lies
    f4 = struct.pack("<4f", 1, 2, 3, 4)
    st_cases = {
        "st header too large": struct.pack("<Q", 2 ** 40) + b"{}",
        "st header past end": struct.pack("<Q", 100) + b'{"a":1}',
        "st header just over limit": struct.pack("<Q", 100_000_001) + b"{" + b" " * 100,
        "st gap": safetensors({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                               "b": {"dtype": "F32", "shape": [1], "data_offsets": [12, 16]}}, f4),
        "st overlap": safetensors({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]},
                                   "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}},
                                  f4),
        "st size mismatch": safetensors({"a": {"dtype": "F32", "shape": [3],
                                               "data_offsets": [0, 16]}}, f4),
        "st trailing bytes": safetensors({"a": {"dtype": "F32", "shape": [4],
                                                "data_offsets": [0, 16]}}, f4 + b"xx"),
        "st end beyond buffer": safetensors({"a": {"dtype": "F32", "shape": [8],
                                                   "data_offsets": [0, 32]}}, f4),
        "st begin after end": safetensors({"a": {"dtype": "F32", "shape": [0],
                                                 "data_offsets": [16, 0]}}, f4),
        "st shape overflow": safetensors({"a": {"dtype": "F32", "shape": [2 ** 31, 2 ** 31, 2 ** 31],
                                                "data_offsets": [0, 16]}}, f4),
        "st negative offset": safetensors({"a": {"dtype": "F32", "shape": [4],
                                                 "data_offsets": [-16, 0]}}, f4),
        "st float offset": safetensors({"a": {"dtype": "F32", "shape": [4],
                                              "data_offsets": [0.5, 16]}}, f4),
        "st unknown dtype": safetensors({"a": {"dtype": "F33", "shape": [4],
                                               "data_offsets": [0, 16]}}, f4),
        "st unsupported dtype": safetensors({"a": {"dtype": "U32", "shape": [4],
                                                   "data_offsets": [0, 16]}}, f4),
        "st missing field": safetensors({"a": {"dtype": "F32", "shape": [4]}}, f4),
        "st metadata not str": safetensors({"__metadata__": {"x": 1}, "a": {
            "dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, f4),
        "st duplicate key": safetensors(None, f4, raw_header=(
            b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
            b'"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}')),
        "st bad json": safetensors(None, f4, raw_header=b'{"a":{"dtype":"F32",'),
        "st trailing garbage": safetensors(None, b"", raw_header=b'{} x'),
        "st not utf8": safetensors(None, b"", raw_header=b'{"\xff":1}'),
        "st too deep": safetensors(None, b"", raw_header=b'{"a":' + b"[" * 5000 + b"]" * 5000 + b"}"),
        "st header only 7 bytes": b"\x02\0\0\0\0\0\0",
    }
    for label, data in st_cases.items():
        expect_fail(label, write(label.replace(" ", "_") + ".safetensors", data))

    # not files
    expect_fail("empty file", write("empty.pth", b""), "empty")
    os.mkdir(path("a_directory.pth"))
    expect_fail("directory", path("a_directory.pth"))
    expect_fail("missing file", path("does_not_exist.pth"))
    expect_fail("random bytes", write("random.pth", os.urandom(3000)))
    expect_fail("tar format", write("old.tar", b"\0" * 257 + b"ustar" + b"\0" * 600), "tar")

    print(f"{N} bad inputs, {len(FAILS)} failures")
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
