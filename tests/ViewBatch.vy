# pragma version 0.4.3
"""
@title ViewBatch
@license MIT
@notice Test helper (not a project contract): many static calls in one
        `eth_call`. The ledger guard of the tests reads some thirty views
        after every transaction; on ape's embedded chain each `eth_call`
        costs milliseconds of set-up, one batch costs one.
"""


struct Call:
    target: address
    data: Bytes[100]


@external
@view
def read(calls: DynArray[Call, 256]) -> DynArray[Bytes[128], 256]:
    """
    @notice The return data of each call, in order; reverts if one reverts.
    """
    out: DynArray[Bytes[128], 256] = []
    for call: Call in calls:
        out.append(raw_call(call.target, call.data, max_outsize=128, is_static_call=True))
    return out
