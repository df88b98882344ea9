"""PriceOracle: every bad input, one row each, with its reason. The oracle
lists markets 0 and 1 (``fresh``: a newly deployed one that lists nothing);
the owner is `admin`, the keeper `keeper`."""

import ape
import pytest
from ape.utils import ZERO_ADDRESS

# (caller, function, arguments, reason); a caller "anyone" is a trader.
CASES = [
    ("anyone", "add_market", (0, 600, 0, 1), "ownership: not owner"),
    ("admin", "add_market", (0, 600, 0, 1), "oracle: market exists"),
    ("admin", "add_market", (2, 0, 0, 1), "oracle: zero max age"),
    ("admin", "add_market", (2, 600, 10_001, 1), "oracle: max move too large"),
    ("admin", "add_market", (2, 600, 0, 0), "oracle: zero price"),
    ("admin", "add_market", (2, 2**64, 0, 1), "oracle: max age too large"),
    ("admin", "add_market", (2, 600, 0, 2**128), "oracle: price too large"),
    ("keeper", "set_keeper", ("trader", True), "ownership: not owner"),
    ("admin", "set_keeper", (ZERO_ADDRESS, True), "oracle: zero address"),
    ("keeper", "set_max_age", (0, 60), "ownership: not owner"),
    ("admin", "set_max_age", (5, 60), "oracle: unknown market"),
    ("admin", "set_max_age", (0, 0), "oracle: zero max age"),
    ("admin", "set_max_age", (0, 2**64), "oracle: max age too large"),
    ("keeper", "set_max_move", (0, 100), "ownership: not owner"),
    ("admin", "set_max_move", (5, 100), "oracle: unknown market"),
    ("admin", "set_max_move", (0, 10_001), "oracle: max move too large"),
    ("admin", "set_price", (0, 1), "oracle: not keeper"),  # the owner is no keeper unless made one
    ("keeper", "set_price", (2, 1), "oracle: unknown market"),
    ("keeper", "set_price", (0, 0), "oracle: zero price"),
    ("keeper", "set_price", (0, 2**128), "oracle: price too large"),
    ("admin", "set_prices", ([0], [1]), "oracle: not keeper"),
    ("keeper", "set_prices", ([0, 1], [1]), "oracle: length mismatch"),
    ("anyone", "price", (2,), "oracle: unknown market"),
    ("anyone", "last_price", (2,), "oracle: unknown market"),
    ("anyone", "mark", (2,), "oracle: unknown market"),
]


@pytest.mark.parametrize(
    "caller, function, args, reason", CASES, ids=[f"{c[1]}-{c[3].split(': ')[1].replace(' ', '_')}" for c in CASES]
)
def test_bad_input__reverts_with_its_reason(oracle, admin, keeper, traders, caller, function, args, reason):
    sender = {"admin": admin, "keeper": keeper, "anyone": traders[0]}[caller]
    args = tuple(traders[1] if a == "trader" else a for a in args)
    with ape.reverts(reason):
        getattr(oracle, function)(*args, sender=sender)


def test_bounds__the_largest_price_and_max_age_share_one_entry_exactly(oracle, admin, keeper, chain):
    """A market's price, update time and staleness limit share one word: each
    at its largest value reads back unchanged, and a later price or limit
    leaves the other fields as they were."""
    big_price, big_age = 2**128 - 1, 2**64 - 1
    oracle.add_market(2, big_age, 0, big_price, sender=admin)
    stamp = chain.blocks.head.timestamp
    assert oracle.last_price(2) == (big_price, stamp)
    assert oracle.max_age(2) == big_age and oracle.listed(2)
    assert oracle.mark(2) == (big_price, True)
    oracle.set_price(2, 1, sender=keeper)
    assert oracle.max_age(2) == big_age and oracle.mark(2) == (1, True)
    oracle.set_max_age(2, 1, sender=admin)
    assert oracle.last_price(2)[0] == 1 and oracle.max_age(2) == 1
    assert not oracle.listed(3) and oracle.max_age(3) == 0 and not oracle.is_fresh(3)
