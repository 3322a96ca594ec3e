"""The normal world: the Linux remoteproc core with TEE-backed or ELF ops.

``rproctee.linux`` models ``drivers/remoteproc``: ``struct rproc`` and its
state machine (:mod:`rproctee.linux.core`), the ops interface mirroring
``struct rproc_ops`` (:mod:`rproctee.linux.ops`), the TEE-backed ops of the
"remoteproc: Add TEE support" series, v15 and v22
(:mod:`rproctee.linux.tee_ops`), the plain ELF ops (:mod:`rproctee.linux.elf_ops`),
resource handling, carveouts, virtio devices, trace buffers, coredumps, the
sysfs/debugfs files, and one event log per run from which the CLI prints
JSON and Mermaid sequence diagrams.
"""
