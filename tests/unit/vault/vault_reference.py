"""Exact reference of the vault's share maths (imported by the vault tests)."""

# The vault's virtual offset: 10**3 virtual shares, 1 virtual asset.
VIRTUAL_SHARES = 10**3
VIRTUAL_ASSETS = 1


def expected_shares(assets, supply, total_assets):
    """Reference: shares for a deposit of `assets`, rounded down."""
    return assets * (supply + VIRTUAL_SHARES) // (total_assets + VIRTUAL_ASSETS)


def expected_assets(shares, supply, total_assets, roundup=False):
    """Reference: assets for `shares`, rounded down (or up for mint)."""
    num = shares * (total_assets + VIRTUAL_ASSETS)
    den = supply + VIRTUAL_SHARES
    return -(-num // den) if roundup else num // den
