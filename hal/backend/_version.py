"""The vendor interface's version, and the version of the hal-sdk it ships in."""

from __future__ import annotations

API_VERSION = (1, 7)
"""The vendor interface's version: a plugin with the same major and a minor <= this loads.

1.1 added optional methods, each with a default that keeps 1.0 plugins correct:
``QueueImpl.idle/drain/abort``, ``EventImpl.wait`` and ``DeviceImpl.host_cache_bytes/
release_host_cache``; launch arguments became immutable :class:`ArgBuffer` snapshots.

1.2 made :mod:`hal.backend` the one vendor package (errors, ``Feature``, ``DeviceInfo``,
``hookimpl`` and the helpers re-exported there); added ``Backend.options_model()``, the
native-operator contract on the vendor's own objects (:class:`NativeOp`, :class:`Operand`),
``Buffer.handle`` with ``Buffer``, ``DeviceImpl`` and ``QueueImpl`` generic over it, and the
host-memory helpers (``host_bytes``, ``operand_view``, ``kernel_args``).

1.3 added ``Buffer.device_address()`` (device memory that CUDA-style consumers address:
``__cuda_array_interface__``), the kernel-cache helpers ``cache_read``/``cache_write`` and
``DeviceImpl.adopt_host`` (default None: the device cannot adopt host memory), through which
``dev.asarray`` and ``hal.from_dlpack`` share host memory without a copy, and ``adopt_device``, its
twin for CUDA memory of other libraries; the features ``f16``, ``bf16``, ``small_ints`` and
``subgroups`` with ``DeviceInfo.subgroup_size`` and the helper ``dtypes_for``.

1.4 added :class:`Waiter`, bounded waits (``drain``, ``EventImpl.wait``) over a driver whose own
waits have no time limit.

1.5 made the kernel cache trusted (``hal.backend._cache``): ``cache_read``/``cache_write`` keep
their signatures, and now check the directory's owner and modes, write 0600 files in 0700
directories, bind each entry to its name with a keyed tag and evict the least recently used past
``HAL_CACHE_MAX_BYTES``; added ``trusted_cache_dir``, ``cache_info``/``cache_clear`` with
:class:`CacheInfo`, and the warnings ``HalWarning``/``CacheWarning``.

1.6 added graphs (``with q.capture() as g``): the command values (:class:`LaunchCommand`,
:class:`CopyCommand`, ...) and the optional ``DeviceImpl.build_graph``, whose :class:`GraphImpl`
replays a captured command list natively; without it (1.0-1.5 plugins) the core replays the commands
through the queue's own methods (:class:`QueueReplay`).

1.7 added the optional ``QueueImpl.running()`` (the kernel a timeout names) and, in the IR
(``IR_VERSION`` 3), ``Fence``, ``AtomicRMW.order``, the atomics ``and``/``or``/``xor``, the bit
functions ``popcount``/``clz``/``ctz`` and the subgroup collectives ``shuffle_up``/``shuffle_down``,
votes and scans; subgroup collectives may sit in control flow uniform only within a subgroup."""

SDK_VERSION = "0.1.0"
"""hal-sdk's version (``hal.__version__``); the bundled plugins report it as theirs."""
