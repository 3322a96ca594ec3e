"""The normal world: the Linux remoteproc core with TEE-backed or ELF ops.

``rproctee.linux`` models ``drivers/remoteproc`` of Linux 6.12 plus the
"remoteproc: Add TEE support" series (v15 and v22):

* :mod:`~rproctee.linux.core`: ``struct rproc`` and its state machine
  (``rproc_boot``, ``rproc_fw_boot``, ``rproc_start``, ``rproc_stop``,
  ``rproc_shutdown``, crash handling, ``rproc_boot_recovery``, attach/detach);
* :mod:`~rproctee.linux.ops`: ``struct rproc_ops`` and ``struct firmware``;
* :mod:`~rproctee.linux.tee_ops`: ``remoteproc_tee.c`` (every firmware
  operation a TEE invoke); :mod:`~rproctee.linux.elf_ops`: the plain ELF ops
  over :mod:`~rproctee.linux.elf_loader`;
* :mod:`~rproctee.linux.resources`, :mod:`~rproctee.linux.carveouts`,
  :mod:`~rproctee.linux.virtio`, :mod:`~rproctee.linux.coredump`: resource
  handling, carveouts, vrings, ELF core dumps;
* :mod:`~rproctee.linux.sysfs`: the sysfs and debugfs files;
* :mod:`~rproctee.linux.firmware_hook` and :mod:`~rproctee.linux.remote`: what
  runs on the remote processor (an interface, with a default behaviour);
* :mod:`~rproctee.linux.system`, :mod:`~rproctee.linux.lifecycle`,
  :mod:`~rproctee.linux.events`, :mod:`~rproctee.linux.mermaid`: a whole board,
  a whole life, its event log and its sequence diagrams.
"""
