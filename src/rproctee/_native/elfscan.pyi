import numpy as np
import numpy.typing as npt

from rproctee._typing import Buffer

def scan_headers(
    buf: Buffer,
) -> tuple[
    tuple[int, ...], tuple[int, ...], npt.NDArray[np.uint64], npt.NDArray[np.uint64]
]: ...
