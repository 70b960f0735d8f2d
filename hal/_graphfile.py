"""Graph files (``g.save``, ``hal.Graph.load``) and cross-device verification (``hal.verify``).

A ``.halgraph`` file is JSON: kernels as their IR (``ir.Kernel.to_json``), arrays as views
(buffer, byte offset, shape, dtype) of a few buffers, nodes in order, and with ``inputs=True`` the
bytes of every buffer the graph may read before it writes it. Its ``sha256`` covers the canonical
JSON of everything else, so a truncated, edited or newer file is refused before anything runs.
hal's kernels are bit-identical across backends (no fast-math), so replaying a file on two devices
from the same inputs gives the same bytes; ``verify`` checks that and names the first node that
differs.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._errors import HalError, InvalidHandleError
from ._memory import Array
from .backend import SDK_VERSION, FillCommand, WriteCommand

if TYPE_CHECKING:
    from ._device import Device
    from ._graph import Graph
    from ._queue import Queue

FORMAT = "halgraph"
VERSION = 1
"""Bump on any change an older reader would misread; readers refuse newer files."""


class GraphFileError(HalError, ValueError):
    """A ``.halgraph`` file that cannot be used: truncated, edited (its content hash no longer
    matches), from a newer hal, or not a graph file; nothing of it was run."""


# ---------------------------------------------------------------- save
def save(graph: Graph, path: Path, inputs: bool) -> None:
    """Write ``graph`` to ``path`` (see the module docstring)."""
    arrays = graph.arrays
    index = {id(a): i for i, a in enumerate(arrays)}
    blocks: dict[int, int] = {}
    extents: list[int] = []
    owners: list[Array] = []
    for a in arrays:
        b = blocks.setdefault(id(a._block), len(extents))
        if b == len(extents):
            extents.append(0)
            owners.append(a)
        extents[b] = max(extents[b], a.offset + a.nbytes, 1)
    kernels: dict[str, int] = {}
    kernel_texts: list[str] = []
    nodes = []
    for node, command in zip(graph.nodes, graph._commands):
        entry: dict[str, Any] = {"kind": node.kind, "name": node.name,
                                 "reads": [index[id(a)] for a in node.reads],
                                 "writes": [index[id(a)] for a in node.writes]}
        if node.kind == "kernel":
            assert node.kernel is not None
            k = kernels.setdefault(node.kernel.hash(), len(kernel_texts))
            if k == len(kernel_texts):
                kernel_texts.append(node.kernel.to_json())
            entry.update(kernel=k, grid=list(node.grid or ()), block=list(node.block or ()),
                         args=[_value(a, index) for a in node.args])
        elif node.kind == "fill":
            assert isinstance(command, FillCommand)
            entry["pattern"] = command.pattern.hex()
        elif node.kind == "write":
            assert isinstance(command, WriteCommand)
            entry["data"] = base64.b64encode(command.data.tobytes()).decode()
        elif node.kind == "op":
            assert node.op is not None
            args, params = node.op
            entry.update(args=[_value(a, index) for a in args], params={k: _value(v, index) for k, v in params.items()})
        nodes.append(entry)
    read_first = _inputs(graph, blocks, extents)
    buffers = []
    for b, extent in enumerate(extents):
        data = None
        if inputs and b in read_first:
            data = base64.b64encode(_block_bytes(owners[b], extent)).decode()
        buffers.append({"nbytes": extent, "input": b in read_first, "data": data})
    body = {"buffers": buffers,
            "arrays": [{"buffer": blocks[id(a._block)], "offset": a.offset, "shape": list(a.shape),
                        "dtype": a.dtype.name} for a in arrays],
            "kernels": kernel_texts, "nodes": nodes, "device": graph.device.spec,
            "device_name": graph.device.info.name}
    from .kernel.ir import IR_VERSION

    doc = {"format": FORMAT, "version": VERSION, "hal": SDK_VERSION, "ir_version": IR_VERSION,
           "sha256": _digest(body), "graph": body}
    path.write_text(json.dumps(doc, sort_keys=True))


def _value(v: Any, index: dict[int, int]) -> Any:
    if type(v) is Array:
        return {"array": index[id(v)]}
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return {"float": float(v).hex()}  # exact, inf and nan included
    if isinstance(v, str):
        return v
    if isinstance(v, (tuple, list)):
        return {"tuple": [_value(x, index) for x in v]}
    if v is None:
        return None
    raise GraphFileError(f"g.save cannot write an argument of type {type(v).__name__} ({v!r}); graphs with "
                         "such arguments stay in this process")


def _inputs(graph: Graph, blocks: dict[int, int], extents: list[int]) -> set[int]:
    """Buffers the graph may read before it writes them: all but those first touched by a copy, fill
    or host write that covers them whole (a kernel's written pointer may be read first)."""
    seen: set[int] = set()
    read_first: set[int] = set()
    for node in graph.nodes:
        for a in node.reads:
            b = blocks[id(a._block)]
            if b not in seen:
                seen.add(b)
                read_first.add(b)
        for a in node.writes:
            b = blocks[id(a._block)]
            if b not in seen:
                seen.add(b)
                whole = node.kind in ("copy", "fill", "write") and a.offset == 0 and a.nbytes >= extents[b]
                if not whole:
                    read_first.add(b)
    return read_first


def _block_bytes(owner: Array, extent: int) -> bytes:
    if owner._block.buffer is None:
        raise InvalidHandleError(f"g.save(inputs=True) reads {owner._describe()}, which was freed; save the graph "
                                 "before freeing its input arrays")
    return Array(owner.device, owner._block, 0, (extent,), np.dtype(np.uint8)).numpy().tobytes()


def _digest(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# ---------------------------------------------------------------- load
@dataclass(frozen=True)
class _Loaded:
    body: dict[str, Any]
    arrays: tuple[Array, ...]
    kernels: tuple[Any, ...]


class _IRKernel:
    """A kernel known only by its IR (from a file): what ``dev.compile`` and ``q.launch`` take."""

    specializer = None

    def __init__(self, kernel: Any) -> None:
        self.ir = kernel
        self.name = kernel.name
        self._compiled: dict[Any, Any] = {}


def read(path: Path) -> dict[str, Any]:
    """The checked body of a graph file; GraphFileError for anything not to be run."""
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise GraphFileError(f"cannot read graph file {path}: {exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GraphFileError(f"{path} is not a complete .halgraph file (truncated or not JSON: {exc}); save it "
                             "again with g.save(path)") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("graph"), dict):
        raise GraphFileError(f"{path} is not a .halgraph file (no 'format': {FORMAT!r} with a graph); write one with "
                             "g.save(path)")
    version = doc.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise GraphFileError(f"{path} is a .halgraph file of format {version!r}, written by hal {doc.get('hal')}; "
                             f"this hal ({SDK_VERSION}) reads format {VERSION} and older: upgrade hal to read it")
    from .kernel.ir import IR_VERSION

    if doc.get("ir_version") != IR_VERSION:
        raise GraphFileError(f"{path} holds kernels of IR version {doc.get('ir_version')!r}; this hal's IR is version "
                             f"{IR_VERSION}: save the graph again with this hal")
    body: dict[str, Any] = doc["graph"]
    if doc.get("sha256") != _digest(body):
        raise GraphFileError(f"{path} was changed after it was saved (its content no longer matches its sha256); "
                             "nothing of it was run: save it again with g.save(path)")
    return body


def load(path: Path, device: Any) -> Graph:
    """Rebuild the graph in ``path`` on ``device`` (see ``Graph.load``)."""
    dev = _device(device)
    body = read(path)
    loaded = _materialise(body, dev)
    q = dev.queue()
    with q.capture() as g:
        for node in body["nodes"]:
            _enqueue(q, node, loaded)
    return g


def _device(device: Any) -> Device:
    from ._device import Device
    from ._lookup import device as lookup

    return device if isinstance(device, Device) else lookup(device)


def _materialise(body: dict[str, Any], dev: Device) -> _Loaded:
    """The graph's arrays on ``dev`` (saved inputs, zeros elsewhere) and its kernels compiled there."""
    from .kernel.ir import Kernel

    bases = []
    for buf in body["buffers"]:
        if buf.get("data") is not None:
            bases.append(dev.array(np.frombuffer(base64.b64decode(buf["data"]), np.uint8)))
        else:
            bases.append(dev.zeros((buf["nbytes"],), np.uint8))
    arrays = []
    for a in body["arrays"]:
        dtype = dev._check_dtype(a["dtype"])
        base = bases[a["buffer"]]
        nbytes = int(np.prod(a["shape"], dtype=np.int64)) * dtype.itemsize
        if a["offset"] < 0 or a["offset"] % dtype.itemsize or a["offset"] + nbytes > base.nbytes:
            raise GraphFileError(f"an array of the graph file lies outside its buffer (offset {a['offset']}, "
                                 f"{nbytes} bytes of {base.nbytes}); the file is damaged: save it again")
        arrays.append(Array(dev, base._block, a["offset"], tuple(a["shape"]), dtype))
    kernels = tuple(_IRKernel(Kernel.from_json(text)) for text in body["kernels"])
    for k in kernels:
        dev.compile(k)  # UnsupportedError naming the feature where the device lacks one
    return _Loaded(body, tuple(arrays), kernels)


def _arg(v: Any, loaded: _Loaded) -> Any:
    if isinstance(v, dict):
        if "array" in v:
            return loaded.arrays[v["array"]]
        if "float" in v:
            return float.fromhex(v["float"])
        if "tuple" in v:
            return tuple(_arg(x, loaded) for x in v["tuple"])
    return v


def _enqueue(q: Queue, node: dict[str, Any], loaded: _Loaded) -> None:
    """Enqueue one saved node on ``q`` (captured or eager)."""
    kind = node["kind"]
    arrays = loaded.arrays
    if kind == "kernel":
        q.launch(loaded.kernels[node["kernel"]], tuple(node["grid"]), tuple(node["block"]),
                 *(_arg(a, loaded) for a in node["args"]))
    elif kind == "copy":
        q.copy(arrays[node["writes"][0]], arrays[node["reads"][0]])
    elif kind == "fill":
        dst = arrays[node["writes"][0]]
        q.fill(dst, np.frombuffer(bytes.fromhex(node["pattern"]), dst.dtype)[0])
    elif kind == "write":
        dst = arrays[node["writes"][0]]
        host = np.frombuffer(base64.b64decode(node["data"]), dst.dtype).reshape(dst.shape)
        q.copy(dst, host, blocking=False)
    elif kind == "op":
        from .ops._dispatch import dispatcher

        params = {k: _arg(v, loaded) for k, v in node["params"].items()}
        dispatcher.lookup(node["name"], q.device)(*(_arg(a, loaded) for a in node["args"]), queue=q, **params)
    else:
        raise GraphFileError(f"a graph file node of unknown kind {kind!r}; this hal knows kernel, copy, fill, write, op")


# ---------------------------------------------------------------- verify
@dataclass(frozen=True)
class Difference:
    """Where two devices first disagree: the node, the array it wrote, the first differing element."""

    node: int
    node_name: str
    devices: tuple[str, str]
    array: int
    element: tuple[int, ...]
    values: tuple[Any, Any]

    def __str__(self) -> str:
        return (f"node {self.node} ({self.node_name}) differs: array {self.array} element {self.element} is "
                f"{self.values[0]!r} on {self.devices[0]} and {self.values[1]!r} on {self.devices[1]}")


@dataclass(frozen=True)
class VerifyReport:
    """``hal.verify``: the SHA-256 of every array the graph writes, per device, and the verdict."""

    path: str
    devices: tuple[str, ...]
    hashes: dict[str, dict[int, str]] = field(repr=False)
    first_difference: Difference | None

    @property
    def identical(self) -> bool:
        """True when every device produced bit-identical outputs."""
        return self.first_difference is None

    def __bool__(self) -> bool:
        return self.identical

    def __str__(self) -> str:
        lines = [f"{self.path}: {'bit-identical on ' + ', '.join(self.devices) if self.identical else 'DIFFERS'}"]
        for spec in self.devices:
            for array, digest in sorted(self.hashes[spec].items()):
                lines.append(f"  {spec:<12} array {array:<4} sha256 {digest}")
        if self.first_difference is not None:
            lines.append(f"  {self.first_difference}")
        return "\n".join(lines)


def verify(path: str | Path, devices: list[Any]) -> VerifyReport:
    """Replay the saved graph (saved with ``inputs=True``) on each device from the same inputs and compare
    the arrays it writes by SHA-256; on a mismatch, replay node by node to name the first node whose
    outputs differ, the two devices and the first differing element with both values."""
    path = Path(path)
    body = read(path)
    missing = [i for i, b in enumerate(body["buffers"]) if b["input"] and b.get("data") is None]
    if missing:
        raise GraphFileError(f"{path} was saved without the data of its inputs (buffers {missing}); hal.verify "
                             "needs them: save it with g.save(path, inputs=True)")
    if not devices:
        raise GraphFileError("hal.verify needs at least one device, e.g. devices=['cpu', 'simgpu:1']")
    devs = [_device(d) for d in devices]
    outputs = sorted({i for node in body["nodes"] for i in node["writes"]})
    hashes: dict[str, dict[int, str]] = {}
    for dev in devs:
        loaded = _materialise(body, dev)
        q = dev.queue()
        with q.capture() as g:
            for node in body["nodes"]:
                _enqueue(q, node, loaded)
        g.launch(q)
        q.synchronize()
        hashes[dev.spec] = {i: hashlib.sha256(loaded.arrays[i].numpy().tobytes()).hexdigest() for i in outputs}
    reference = devs[0]
    first = None
    odd = next((d for d in devs[1:] if hashes[d.spec] != hashes[reference.spec]), None)
    if odd is not None:
        first = _first_difference(body, reference, odd)
    return VerifyReport(str(path), tuple(d.spec for d in devs), hashes, first)


def _first_difference(body: dict[str, Any], a: Device, b: Device) -> Difference | None:
    """Run both devices node by node from the inputs; the first node whose writes differ."""
    runs = [(_materialise(body, dev), dev.queue()) for dev in (a, b)]
    for n, node in enumerate(body["nodes"]):
        results = []
        for loaded, q in runs:
            _enqueue(q, node, loaded)
            q.synchronize()
            results.append([loaded.arrays[i].numpy() for i in node["writes"]])
        for array, x, y in zip(node["writes"], *results):
            if x.tobytes() != y.tobytes():
                bits = np.dtype(f"u{x.dtype.itemsize}") if x.dtype.itemsize in (1, 2, 4, 8) else np.dtype(np.uint8)
                xs, ys = x.reshape(-1).view(bits), y.reshape(-1).view(bits)
                flat = int(np.flatnonzero(xs != ys)[0])
                element = tuple(int(i) for i in np.unravel_index(flat, x.shape)) if x.shape else ()
                return Difference(n, node["name"], (a.spec, b.spec), array, element,
                                  (x.reshape(-1)[flat].item(), y.reshape(-1)[flat].item()))
    return None
