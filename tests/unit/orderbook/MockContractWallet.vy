# pragma version 0.4.3
"""
@notice Test double of a contract trader (EIP-1271): it accepts exactly the
        digests approved by its owner, whatever the signature bytes.
"""

owner: public(address)
approved: public(HashMap[bytes32, bool])


@deploy
def __init__():
    self.owner = msg.sender


@external
def approve_hash(digest: bytes32):
    assert msg.sender == self.owner, "wallet: not owner"
    self.approved[digest] = True


@external
@view
def isValidSignature(digest: bytes32, signature: Bytes[65]) -> bytes4:
    if self.approved[digest]:
        return 0x1626ba7e
    return 0xffffffff
