"""Weights parity: torch.save files (zip, legacy, zipped legacy, pickle protocol 4, training
checkpoints, real torchvision models) -> `cvision convert` -> safetensors, parsed here by hand and
compared bit for bit (names, order, dtypes, shapes, bytes, module versions) with torch's tensors.
Also python-written safetensors -> convert -> the same tensors, and convert twice -> same bytes."""
import argparse
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections import OrderedDict

import torch
import torchvision

CVISION = os.environ["CVISION"]
FAILS = []

# safetensors dtype names, in the reference enum order (= increasing alignment)
ST_ORDER = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16", "I32", "U32",
            "F32", "F64", "I64", "U64"]
TORCH_TO_ST = {torch.bool: "BOOL", torch.uint8: "U8", torch.int8: "I8", torch.int16: "I16",
               torch.float16: "F16", torch.bfloat16: "BF16", torch.int32: "I32",
               torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}
ST_TO_TORCH = {v: k for k, v in TORCH_TO_ST.items()}


def check(cond, msg):
    if not cond:
        FAILS.append(msg)
        print("FAIL:", msg)


def raw(t):
    """The bytes of a tensor in dense C order, as cvision must store them."""
    t = t.detach().contiguous().reshape(-1)
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    return t.view(torch.uint8).numpy().tobytes() if t.numel() else b""


def read_safetensors(path):
    """A strict reader: checks the layout rules of the reference writer, returns
    (header keys in order, metadata, {name: (dtype, shape, bytes)})."""
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    hdr = data[8:8 + n]
    check(n % 8 == 0, f"{path}: header length {n} not a multiple of 8")
    check(hdr.rstrip(b" ").endswith(b"}"), f"{path}: header not padded with spaces")
    header = json.loads(hdr, object_pairs_hook=OrderedDict)
    meta = header.pop("__metadata__", {})
    body = data[8 + n:]
    out = OrderedDict()
    spans = []
    for name, info in header.items():
        b, e = info["data_offsets"]
        out[name] = (info["dtype"], tuple(info["shape"]), body[b:e])
        spans.append((b, e, name, info["dtype"]))
    spans.sort()
    pos = 0
    for b, e, name, _ in spans:
        check(b == pos, f"{path}: gap/overlap at {name}")
        pos = e
    check(pos == len(body), f"{path}: data section has trailing bytes")
    # the reference writer's layout: descending dtype rank, then name
    laid = [(s[2], s[3]) for s in spans if s[1] > s[0]]
    want = sorted(laid, key=lambda x: (-ST_ORDER.index(x[1]), x[0].encode()))
    check(laid == want, f"{path}: data not laid out by (dtype rank desc, name)")
    return list(header.keys()), meta, out


def convert(src, dst, *extra):
    r = subprocess.run([CVISION, "convert", *extra, src, dst], capture_output=True, text=True,
                       timeout=300)
    check(r.returncode == 0, f"convert {src} failed: {r.stderr.strip()}")
    return r.returncode == 0


def compare(label, sd, path, versions=None):
    names, meta, got = read_safetensors(path)
    check(names == list(sd.keys()), f"{label}: names/order differ: {names[:5]} vs {list(sd)[:5]}")
    for k, t in sd.items():
        if k not in got:
            continue
        dt, shape, b = got[k]
        check(dt == TORCH_TO_ST[t.dtype], f"{label}: {k} dtype {dt} vs {t.dtype}")
        check(shape == tuple(t.shape), f"{label}: {k} shape {shape} vs {tuple(t.shape)}")
        check(b == raw(t), f"{label}: {k} bytes differ")
    if versions is not None:
        want = {f"version:{p}": str(v["version"]) for p, v in versions.items()}
        check(meta == want, f"{label}: metadata {meta} vs {want}")
    print(f"ok   {label}: {len(sd)} tensors")


def synthetic():
    g = torch.Generator().manual_seed(1234)
    sd = OrderedDict()
    sd["conv.weight"] = torch.randn(8, 3, 3, 3, generator=g)
    sd["conv.bias"] = torch.randn(8, generator=g)
    sd["bn.running_var"] = torch.rand(8, generator=g) + 0.5
    sd["bn.num_batches_tracked"] = torch.tensor(17)  # int64, shape ()
    sd["empty"] = torch.empty(0, 5)
    sd["empty_i64"] = torch.zeros(3, 0, dtype=torch.int64)
    sd["f64"] = torch.randn(4, 5, generator=g, dtype=torch.float64)
    sd["f16"] = torch.randn(7, generator=g).half()
    sd["bf16"] = torch.randn(3, 2, generator=g).bfloat16()
    sd["i32"] = torch.randint(-10**6, 10**6, (6,), generator=g, dtype=torch.int32)
    sd["i16"] = torch.randint(-30000, 30000, (2, 3), generator=g, dtype=torch.int16)
    sd["i8"] = torch.randint(-128, 127, (9,), generator=g, dtype=torch.int8)
    sd["u8"] = torch.randint(0, 255, (3, 3), generator=g, dtype=torch.uint8)
    sd["mask"] = torch.rand(10, generator=g) > 0.5
    base = torch.randn(6, 8, generator=g)
    sd["view.base"] = base
    sd["view.t"] = base[1:5, 2:7].t()  # non-contiguous, shares storage, offset 10
    sd["view.row"] = base[2]  # contiguous view at an offset
    sd["view.col"] = base[:, 3]  # strided 1-d view
    sd["scalar"] = torch.tensor(3.5, dtype=torch.float64)
    sd["fc.weight"] = torch.randn(1000, 33, generator=g)
    sd["5d"] = torch.randn(2, 1, 3, 1, 2, generator=g)
    sd["Z.unicode.é"] = torch.arange(4, dtype=torch.int64)
    sd._metadata = OrderedDict([("", {"version": 1}), ("bn", {"version": 2}),
                                ("conv", {"version": 1})])
    return sd


class OldTensor:
    """Pickles like torch < 0.4: torch._utils._rebuild_tensor(storage, offset, size, stride)."""

    def __init__(self, t):
        self.t = t

    def __reduce__(self):
        t = self.t
        return (torch._utils._rebuild_tensor,
                (t.storage(), t.storage_offset(), tuple(t.size()), t.stride()))


class Py2OrderedDict:
    """Pickles like Python 2's OrderedDict: OrderedDict([[key, value], ...])."""

    def __init__(self, sd):
        self.sd = sd

    def __reduce__(self):
        return (OrderedDict, ([[k, OldTensor(v)] for k, v in self.sd.items()],))


class ViewStorage:
    """A storage that is a slice of a root storage, as torch < 1.x pickled storage views."""

    def __init__(self, root_key, root_numel, view_key, offset, size):
        self.pid = ("storage", torch.FloatStorage, root_key, "cpu", root_numel,
                    (view_key, offset, size))


class ViewTensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, size, stride, False, OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


def write_legacy_with_views(path):
    """A legacy file whose tensors sit in storage views (view_metadata), written by hand: torch
    1.13 no longer writes views. Returns the state_dict torch reads from it."""
    import pickle
    root = torch.arange(12, dtype=torch.float32) * 1.5
    v1 = ViewStorage("root", 12, "v1", 2, 6)  # elements 2..7
    v2 = ViewStorage("root", 12, "v2", 5, 7)  # elements 5..11, overlapping v1
    obj = OrderedDict(a=ViewTensor(v1, 1, (2, 2), (1, 2)), b=ViewTensor(v2, 0, (7,), (1,)),
                      c=ViewTensor(v1, 0, (3,), (2,)))
    b = io.BytesIO()
    for x in (0x1950a86a20f9469cfc6c, 1001, {"protocol_version": 1001, "little_endian": True,
                                            "type_sizes": {"short": 2, "int": 4, "long": 4}}):
        pickle.dump(x, b, protocol=2)
    pk = pickle.Pickler(b, protocol=2)
    pk.persistent_id = lambda o: o.pid if isinstance(o, ViewStorage) else None
    pk.dump(obj)
    pickle.dump(["root"], b, protocol=2)
    b.write(struct.pack("<q", 12) + root.numpy().tobytes())
    open(path, "wb").write(b.getvalue())
    return torch.load(path)


def zip_legacy(src, dst, compress):
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as z:
        z.write(src, "weights.pth")


def write_safetensors(path, sd, meta):
    """A writer with a layout different from cvision's (reverse name order, unpadded header)."""
    hdr = OrderedDict()
    if meta:
        hdr["__metadata__"] = meta
    pos, blobs = 0, []
    for k in reversed(list(sd.keys())):
        b = raw(sd[k])
        hdr[k] = {"dtype": TORCH_TO_ST[sd[k].dtype], "shape": list(sd[k].shape),
                  "data_offsets": [pos, pos + len(b)]}
        pos += len(b)
        blobs.append(b)
    h = json.dumps(hdr).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    tmp = tempfile.mkdtemp(prefix="cv_weights_")
    sd = synthetic()
    versions = sd._metadata
    p = lambda n: os.path.join(tmp, n)

    cases = []
    torch.save(sd, p("zip.pth"))
    cases.append(("zip", p("zip.pth"), sd))
    torch.save(sd, p("legacy.pth"), _use_new_zipfile_serialization=False)
    cases.append(("legacy", p("legacy.pth"), sd))
    torch.save(sd, p("proto4.pth"), pickle_protocol=4)
    cases.append(("zip, pickle protocol 4", p("proto4.pth"), sd))
    torch.save(sd, p("proto4_legacy.pth"), pickle_protocol=4, _use_new_zipfile_serialization=False)
    cases.append(("legacy, pickle protocol 4", p("proto4_legacy.pth"), sd))
    old = OrderedDict(sd.items())
    torch.save(Py2OrderedDict(old), p("old.pth"), _use_new_zipfile_serialization=False)
    cases.append(("legacy, torch < 0.4 style (py2 OrderedDict, _rebuild_tensor)", p("old.pth"), old))
    views = write_legacy_with_views(p("views.pth"))
    cases.append(("legacy with storage views (view_metadata)", p("views.pth"), views))
    zip_legacy(p("legacy.pth"), p("zipped_legacy.pth"), compress=False)
    cases.append(("zipped legacy (stored)", p("zipped_legacy.pth"), sd))
    zip_legacy(p("legacy.pth"), p("zipped_legacy_deflate.pth"), compress=True)
    cases.append(("zipped legacy (deflated)", p("zipped_legacy_deflate.pth"), sd))

    # a torchvision-reference training checkpoint
    model = torchvision.models.resnet18(num_classes=10)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    opt.step()
    sched = torch.optim.lr_scheduler.StepLR(opt, 30)
    ns = argparse.Namespace(model="resnet18", lr=0.1, epochs=90, data_path="/x")
    ref_sd = model.state_dict()
    ema = torch.optim.swa_utils.AveragedModel(model)
    ckpt = {"model": ref_sd, "optimizer": opt.state_dict(), "lr_scheduler": sched.state_dict(),
            "epoch": 3, "args": ns, "model_ema": ema.state_dict()}
    torch.save(ckpt, p("checkpoint.pth"))
    cases.append(("torchvision checkpoint", p("checkpoint.pth"), ref_sd))
    torch.save(ckpt, p("checkpoint_legacy.pth"), _use_new_zipfile_serialization=False)
    cases.append(("torchvision checkpoint, legacy", p("checkpoint_legacy.pth"), ref_sd))
    # timm style, with an EMA copy that must not be picked by default
    ema_sd = OrderedDict((k, v * 2 if v.is_floating_point() else v) for k, v in ref_sd.items())
    torch.save({"epoch": 7, "arch": "resnet18", "state_dict": ref_sd, "state_dict_ema": ema_sd,
                "args": ns, "version": 2, "metric": 0.5}, p("timm.pth.tar"))
    cases.append(("timm checkpoint", p("timm.pth.tar"), ref_sd))
    # parameters pickled as nn.Parameter (_rebuild_parameter)
    kv = model.state_dict(keep_vars=True)
    torch.save(kv, p("keep_vars.pth"))
    cases.append(("keep_vars (Parameters)", p("keep_vars.pth"), ref_sd))

    for label, path, want in cases:
        out = path + ".safetensors"
        if convert(path, out):
            compare(label, want, out, versions if want is sd else getattr(want, "_metadata", {}))

    # explicit entries
    if convert(p("timm.pth.tar"), p("ema.safetensors"), "--entry", "state_dict_ema"):
        compare("timm --entry state_dict_ema", ema_sd, p("ema.safetensors"))
    if convert(p("checkpoint.pth"), p("model_ema.safetensors"), "--entry", "model_ema"):
        want = OrderedDict((k[len("module."):], v) for k, v in ema.state_dict().items()
                           if k != "n_averaged")
        names, _, _ = read_safetensors(p("model_ema.safetensors"))
        compare("checkpoint --entry model_ema", want, p("model_ema.safetensors"))
    r = subprocess.run([CVISION, "convert", "--entry", "nope", p("checkpoint.pth"), p("x.st")],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 1 and "nope" in r.stderr and r.stderr.count("\n") == 1,
          f"missing entry: {r.returncode} {r.stderr!r}")

    # real torchvision models, zip and legacy
    torch.manual_seed(0)
    for arch in ["resnet18", "mobilenet_v2"]:
        m = getattr(torchvision.models, arch)()
        msd = m.state_dict()
        for fmt, kw in [("zip", {}), ("legacy", {"_use_new_zipfile_serialization": False})]:
            f = p(f"{arch}_{fmt}.pth")
            torch.save(msd, f, **kw)
            if convert(f, f + ".safetensors"):
                compare(f"{arch} ({fmt})", msd, f + ".safetensors", msd._metadata)

    # python-written safetensors -> convert -> same tensors and metadata; convert is idempotent
    st_sd = OrderedDict((k, v) for k, v in sd.items())
    write_safetensors(p("py.safetensors"), st_sd, {"format": "pt", "note": "a \"quoted\" \\ value"})
    if convert(p("py.safetensors"), p("py2.safetensors")):
        names, meta, got = read_safetensors(p("py2.safetensors"))
        check(meta == {"format": "pt", "note": "a \"quoted\" \\ value"}, f"metadata {meta}")
        check(names == list(reversed(list(st_sd.keys()))), "safetensors header order not kept")
        for k, t in st_sd.items():
            check(got[k] == (TORCH_TO_ST[t.dtype], tuple(t.shape), raw(t)), f"py safetensors {k}")
        print(f"ok   python safetensors: {len(got)} tensors")
        if convert(p("py2.safetensors"), p("py3.safetensors")):
            check(open(p("py2.safetensors"), "rb").read() == open(p("py3.safetensors"), "rb").read(),
                  "convert of cvision's own output is not byte-identical")
    # an empty state_dict
    torch.save(OrderedDict(), p("empty_sd.pth"))
    if convert(p("empty_sd.pth"), p("empty_sd.safetensors")):
        names, meta, got = read_safetensors(p("empty_sd.safetensors"))
        check(names == [] and got == {}, "empty state_dict")

    leftovers = [f for f in os.listdir(tmp) if ".tmp." in f]
    check(not leftovers, f"temporary files left behind: {leftovers}")
    if FAILS:
        print(f"{len(FAILS)} failures")
        sys.exit(1)
    print("all weights parity checks passed")


if __name__ == "__main__":
    main()
