"""Device memories, region tables and platform descriptions.

Nothing outside this package (and the kernels it calls) writes device memory.
"""

from rproctee.platform.memory import DeviceMemory, RegionSpec, WriteRecord

__all__ = ["DeviceMemory", "RegionSpec", "WriteRecord"]
