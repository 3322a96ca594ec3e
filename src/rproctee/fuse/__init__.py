"""The remoteproc sysfs and debugfs ABI served over FUSE.

:mod:`rproctee.fuse.tree` lays the normal world's files out as the kernel
does (no FUSE needed), :mod:`rproctee.fuse.boards` builds the boards behind
them, :mod:`rproctee.fuse.server` serves the tree through libfuse 3
(``mfusepy``, imported only when a mount starts) and
:mod:`rproctee.fuse.namespace` shows it at ``/sys`` inside a private mount
namespace for ``rproctee sysfs run``.
"""
