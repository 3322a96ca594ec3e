from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from typing_extensions import disjoint_base

from rproctee._typing import Buffer

LANE_OK: int
LANE_DEFER: int
STAGE_SEGMENT: int
STAGE_FILL: int
STAGE_DONE: int
OP_COPY: int
OP_ZERO: int

@disjoint_base
class PtaLane:
    @property
    def rproc_id(self) -> int: ...
    @property
    def count(self) -> int: ...
    @property
    def calls(self) -> int: ...
    def __init__(
        self,
        pta: Any,
        das: Sequence[int],
        sizes: Sequence[int],
        pas: Sequence[int],
        writable: Sequence[bool],
        memories: Sequence[npt.NDArray[np.uint8]],
        rproc_id: int,
        id_known: bool,
        fill_nonzero: bool = ...,
        capacity: int = ...,
    ) -> None: ...
    def commit(self) -> None: ...
    def take_log(self) -> tuple[npt.NDArray[Any], ...]: ...

def optee_segment_loop(
    lane: PtaLane,
    image: Buffer,
    addr: int,
    base: int,
    size: int,
    table: int,
    start: int,
    hashes: Buffer,
    keys: Buffer,
    first: Buffer,
    img_off: int,
    img_end: int,
) -> tuple[int, int, int, int, int, int]: ...
def planned_segment_loop(
    lane: PtaLane, image: Buffer, records: Buffer, start: int
) -> tuple[int, int, int]: ...
