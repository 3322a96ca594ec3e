import numpy as np
import numpy.typing as npt

LOC_OUTSIDE: int
LOC_STRADDLE: int
LOC_ZERO_SIZE: int

def locate(
    addr: int, size: int, bases: npt.NDArray[np.uint64], sizes: npt.NDArray[np.uint64]
) -> int: ...
def locate_intervals(
    addrs: npt.NDArray[np.uint64],
    sizes: npt.NDArray[np.uint64],
    bases: npt.NDArray[np.uint64],
    region_sizes: npt.NDArray[np.uint64],
) -> npt.NDArray[np.int64]: ...
def find_overlap(
    addrs: npt.NDArray[np.uint64], sizes: npt.NDArray[np.uint64]
) -> tuple[int, int] | None: ...
def first_unwritable(
    addrs: npt.NDArray[np.uint64],
    sizes: npt.NDArray[np.uint64],
    bases: npt.NDArray[np.uint64],
    region_sizes: npt.NDArray[np.uint64],
    writable: npt.NDArray[np.uint8],
) -> int: ...
def segment_ranges(
    rows: npt.NDArray[np.uint64],
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.uint64]]: ...
