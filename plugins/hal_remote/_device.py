"""RemoteDevice: a hal device hosted by a Ray worker, driven through ids.

Buffers, queues, events and compiled kernels are ids on the driver; the worker maps each id to
the hosted backend's object. Allocation and compilation are one blocking call each (their
errors must surface at once; the core's pool makes allocations rare); everything else is a
command batched by the queues. Kernels travel as IR: canonical JSON, compiled once per IR
hash and device (the hosted backend keeps its own cache too, on disk for the CPU).
"""

from __future__ import annotations

import itertools
import threading
from typing import TYPE_CHECKING, Any

from hal.backend import Buffer, DeviceFault, DeviceImpl, Executable, Feature, HalError

from ._cluster import SLICE, lost, ray, start_worker, watch
from ._protocol import unpack_error
from ._queue import RemoteQueue
from ._sender import Sender

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hal.backend import Command, DeviceInfo, GraphImpl
    from hal.kernel import ir

    from ._link import Link

NOT_FORWARDED = frozenset({Feature.HOST_VISIBLE, Feature.TENSOR_OPS, Feature.INT8})
"""Features of the hosted device that stay behind: its memory is not the driver's, and native
operators (``hal.ops`` plugins) run in process; the portable kernels run remotely instead."""


class RemoteBuffer(Buffer[int]):
    """Memory in the worker; ``handle`` is its id there."""

    __slots__ = ("handle", "nbytes")

    def __init__(self, bid: int, nbytes: int) -> None:
        self.handle = bid
        self.nbytes = nbytes


class RemoteExecutable(Executable):
    """A kernel compiled in the worker, known here by id."""

    def __init__(self, kernel: ir.Kernel, xid: int, device: RemoteDevice) -> None:
        self.kernel = kernel
        self.id = xid
        self.device = device
        self.pointers = tuple(p.pointer for p in kernel.params)

    def report(self) -> Any:
        return self.device.call(self.device.worker.report.remote(self.id))


class RemoteDevice(DeviceImpl[RemoteBuffer]):
    def __init__(self, index: int, spec: str, link: Link | None = None) -> None:
        self.name = f"remote:{index}"
        self.spec = spec
        """The device the worker hosts."""
        self.worker = start_worker(spec)
        self.ray = ray()
        self.dead: str | None = None
        """Why the device is lost, once its worker (or the cluster) is gone: every later use raises
        a DeviceFault saying so (see ``gone``)."""
        try:
            fields, where = self.call(self.worker.open.remote())
        except HalError as exc:
            self.ray.kill(self.worker)
            raise type(exc)(f"{self.name} hosts {spec!r} (entry {index} of HAL_REMOTE), which its worker could "
                            f"not open: {exc}") from None
        watch(int(where.rpartition("pid ")[2]))
        self.link = link
        """The emulated link its worker paces what it sends to (None: none)."""
        if link is not None:
            self.ray.get(self.worker.set_link.remote(link))
            where += f", over an emulated {link} link"
        self._info = _describe(fields, index, spec, where)
        self.sender = Sender(self)
        self._ids = itertools.count(1)
        self._executables: dict[str, RemoteExecutable] = {}
        self._compiling = threading.Lock()

    def new_id(self) -> int:
        """A fresh id for a buffer, queue, event or kernel (``next`` on a count is atomic)."""
        return next(self._ids)

    def info(self) -> DeviceInfo:
        return self._info

    def allocate(self, nbytes: int) -> RemoteBuffer:
        if self.dead is not None:
            raise self.gone()
        bid = self.new_id()
        self.call(self.worker.allocate.remote(bid, nbytes))
        return RemoteBuffer(bid, nbytes)

    def free(self, buffer: RemoteBuffer) -> None:
        if self.dead is None:  # a lost worker took its memory with it
            self.sender.frees.append(buffer.handle)
            self.sender.kick()

    def create_queue(self) -> RemoteQueue:
        if self.dead is not None:
            raise self.gone()
        return RemoteQueue(self)

    def compile(self, kernel: ir.Kernel) -> Executable:
        key = kernel.hash()
        exe = self._executables.get(key)
        if exe is None:
            with self._compiling:
                exe = self._executables.get(key)
                if exe is None:
                    xid = self.new_id()
                    self.call(self.worker.compile.remote(xid, kernel.to_json()))
                    exe = self._executables[key] = RemoteExecutable(kernel, xid, self)
        return exe

    def build_graph(self, commands: Sequence[Command]) -> GraphImpl | None:
        """The graph defined once in the worker (one actor call); replays are one command each."""
        from ._graph import RemoteGraph, wire

        travelling = wire(commands)
        if travelling is None:
            return None
        if self.dead is not None:
            raise self.gone()
        gid = self.new_id()
        self.call(self.worker.define_graph.remote(gid, travelling))
        return RemoteGraph(self, gid)

    def call(self, ref: Any) -> Any:
        """The value of a worker's reply ``ref`` ((ok, value), see ``Worker``): a hal error it sent
        back is raised as such, a lost worker as the device's DeviceFault. Waits in slices, so that
        Ctrl-C works."""
        try:
            while not self.ray.wait([ref], timeout=SLICE)[0]:
                pass
            ok, value = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            raise self.failed(exc) from exc
        if not ok:
            raise unpack_error(value, self.name)
        return value

    # ------------------------------------------------------------ failures
    def kill(self, exc: BaseException) -> DeviceFault:
        """Mark the device lost (the first cause wins); its DeviceFault."""
        if self.dead is None:
            self.dead = lost(self.name, exc)
        return self.gone()

    def gone(self) -> DeviceFault:
        """A fresh DeviceFault of the lost device (raising one exception object from many places
        would chain their tracebacks)."""
        return DeviceFault(self.dead or f"{self.name} is lost")

    def failed(self, exc: BaseException) -> HalError:
        """The error of a batch whose call failed: the worker raised (a bug in it: this batch
        fails, the device lives on), or the worker is gone."""
        from ray.exceptions import RayTaskError

        if isinstance(exc, RayTaskError):
            return DeviceFault(f"{self.name}: the worker failed: {exc}")
        return self.kill(exc)

    def check(self) -> None:
        """Notice that Ray was shut down under us (its pending replies never arrive)."""
        if self.dead is None and not self.ray.is_initialized():
            self.kill(RuntimeError("Ray was shut down"))


def _describe(fields: dict[str, Any], index: int, spec: str, where: str) -> DeviceInfo:
    """The hosted device's DeviceInfo as a remote device: its name says where it runs."""
    from hal.backend import DeviceInfo

    return DeviceInfo(**{**fields, "name": f"{fields['name']} ({spec} via Ray on {where})", "backend": "remote",
                         "index": index, "host_visible": False,
                         "features": frozenset(fields["features"]) - NOT_FORWARDED})
