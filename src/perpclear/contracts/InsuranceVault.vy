# pragma version ~=0.4.3
"""
@title InsuranceVault
@license MIT
@notice ERC-4626 vault over the collateral token that insures the clearing
        house. Insurers deposit collateral for shares and earn the income the
        clearing house transfers in (liquidation penalties, fee share). When a
        bankrupt account's loss exceeds its margin, the clearing house draws
        on the vault with `cover()`.
        Exits need a cooldown: `request_redeem` escrows the shares (they still
        bear draws), `claim_redeem` pays min(value at request, value at exit)
        so that insurers cannot run ahead of a draw they can see coming. A
        request can be claimed only during the claim window after the
        cooldown; then it lapses. `cancel_redeem` returns shares worth at
        most the value at request: what they earned while pending is burned
        for the remaining insurers. So a matured request is no free option
        to exit just ahead of a draw.
        Share price uses a virtual offset (10**3 virtual shares, 1 virtual
        asset) against first-depositor inflation; every conversion rounds in
        favour of the vault. Shares have asset decimals + 3.
        The vault can also hold a margin account at the clearing house when it
        acts as backstop liquidator; its positive equity counts in
        `totalAssets()`.
@custom:kill There is no pause. To wind down: the owner withdraws the backstop
        margin (`withdraw_backstop`), the clearing house stops calling
        `cover()` (or is pointed at a new vault by its own governance), and
        insurers exit through `request_redeem` / `claim_redeem`, which keep
        working. `set_cooldown(0)` lets them exit at once.
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed
from ethereum.ercs import IERC4626
from interfaces import IClearingHouse
from interfaces import IInsuranceVault
from interfaces import IPriceOracle
from .modules import constants as c
from .modules import erc20
from .modules import ownership
from .modules import governed

implements: IERC20
implements: IERC20Detailed
implements: IERC4626
implements: IInsuranceVault
initializes: erc20
initializes: ownership
initializes: governed

exports: (
    erc20.name,
    erc20.symbol,
    erc20.totalSupply,
    erc20.balanceOf,
    erc20.allowance,
    erc20.approve,
    ownership.owner,
    ownership.pending_owner,
    ownership.transfer_ownership,
    ownership.accept_ownership,
    governed.timelock,
)


# Virtual shares and assets of the inflation guard: shares =
# assets * (supply + 10**3) / (total_assets + 1). 10**3 matches the 3 extra
# share decimals.
VIRTUAL_SHARES: constant(uint256) = 10**3
VIRTUAL_ASSETS: constant(uint256) = 1
DECIMALS_OFFSET: constant(uint8) = 3
MAX_COOLDOWN: constant(uint256) = 30 * 86_400
# How long a matured request can be claimed: one day unless the owner sets
# another window between one hour and 30 days.
DEFAULT_CLAIM_WINDOW: constant(uint256) = 86_400
MIN_CLAIM_WINDOW: constant(uint256) = 3_600
MAX_CLAIM_WINDOW: constant(uint256) = 30 * 86_400
asset: public(immutable(address))
decimals: public(immutable(uint8))


struct RedeemRequest:
    # shares held in escrow by the vault for the owner
    shares: uint256
    # convertToAssets(shares) when requested: the most the claim can pay
    assets: uint256
    # timestamp from which claim_redeem works
    ready_at: uint256
    # timestamp from which it no longer works (the request has lapsed)
    expires_at: uint256


clearing_house: public(address)
# True while the vault holds (or may hold) a margin account at the clearing house.
backstop_active: public(bool)
# Seconds between request_redeem and claim_redeem.
cooldown: public(uint256)
# Seconds after the cooldown during which a request can be claimed.
claim_window: public(uint256)
redeem_requests: public(HashMap[address, RedeemRequest])


@deploy
def __init__(asset_: address, name_: String[64], symbol_: String[32], cooldown_: uint256, timelock_: address):
    """
    @notice Create the vault over `asset_`; the deployer becomes the owner.
    @param asset_ Collateral token (ERC-20 with `decimals()`).
    @param name_ Share token name.
    @param symbol_ Share token symbol.
    @param cooldown_ Exit cooldown in seconds, at most 30 days.
    @param timelock_ The deployment's governance timelock (Timelock.vy).
    """
    assert asset_ != empty(address), "vault: zero address"
    assert cooldown_ <= MAX_COOLDOWN, "vault: cooldown too long"
    asset = asset_
    decimals = staticcall IERC20Detailed(asset_).decimals() + DECIMALS_OFFSET
    erc20.__init__(name_, symbol_)
    ownership.__init__()
    governed.__init__(timelock_)
    self.cooldown = cooldown_
    self.claim_window = DEFAULT_CLAIM_WINDOW
    log IInsuranceVault.CooldownSet(cooldown=cooldown_)
    log IInsuranceVault.ClaimWindowSet(claim_window=DEFAULT_CLAIM_WINDOW)


# ---------------------------------------------------------------- ERC-20 ---


@external
def transfer(receiver: address, amount: uint256) -> bool:
    """
    @notice Move `amount` shares from the caller to `receiver`.
    @param receiver Recipient, not the zero address nor the vault.
    @param amount Shares.
    @return True on success (reverts otherwise).
    """
    # escrow (balanceOf[self]) only moves through request/claim/cancel
    assert receiver != self, "vault: transfer to vault"
    erc20._transfer(msg.sender, receiver, amount)
    return True


@external
def transferFrom(sender: address, receiver: address, amount: uint256) -> bool:
    """
    @notice Move `amount` shares from `sender` using the caller's allowance.
            An allowance of max uint256 is not decremented.
    @param sender Owner of the shares.
    @param receiver Recipient, not the zero address nor the vault.
    @param amount Shares.
    @return True on success (reverts otherwise).
    """
    assert receiver != self, "vault: transfer to vault"
    erc20._spend_allowance(sender, msg.sender, amount)
    erc20._transfer(sender, receiver, amount)
    return True


# -------------------------------------------------------------- ERC-4626 ---


@view
@external
def totalAssets() -> uint256:
    """
    @notice Idle collateral plus the positive equity of the backstop margin
            account at the clearing house.
    @return Assets in collateral smallest units.
    """
    return self._total_assets()


@view
@external
def convertToShares(assets: uint256) -> uint256:
    """
    @notice Shares worth `assets`, rounded down.
    @param assets Collateral amount.
    @return Shares.
    """
    return self._to_shares(assets, False)


@view
@external
def convertToAssets(shares: uint256) -> uint256:
    """
    @notice Assets worth `shares`, rounded down.
    @param shares Share amount.
    @return Collateral amount.
    """
    return self._to_assets(shares, False)


@view
@external
def maxDeposit(receiver: address) -> uint256:
    """
    @notice No deposit cap.
    @param receiver Ignored.
    @return max uint256.
    """
    return max_value(uint256)


@view
@external
def maxMint(receiver: address) -> uint256:
    """
    @notice No mint cap.
    @param receiver Ignored.
    @return max uint256.
    """
    return max_value(uint256)


@view
@external
def maxWithdraw(owner: address) -> uint256:
    """
    @notice Always 0: exits go through `request_redeem` / `claim_redeem`.
    @param owner Ignored.
    @return 0.
    """
    return 0


@view
@external
def maxRedeem(owner: address) -> uint256:
    """
    @notice Always 0: exits go through `request_redeem` / `claim_redeem`.
    @param owner Ignored.
    @return 0.
    """
    return 0


@view
@external
def previewDeposit(assets: uint256) -> uint256:
    """
    @notice Shares `deposit(assets)` would mint now, rounded down.
    @param assets Collateral amount.
    @return Shares.
    """
    return self._to_shares(assets, False)


@view
@external
def previewMint(shares: uint256) -> uint256:
    """
    @notice Assets `mint(shares)` would take now, rounded up.
    @param shares Share amount.
    @return Collateral amount.
    """
    return self._to_assets(shares, True)


@view
@external
def previewWithdraw(assets: uint256) -> uint256:
    """
    @notice Shares worth `assets`, rounded up (as a withdrawal would burn).
            `withdraw` itself is disabled; see `request_redeem`.
    @param assets Collateral amount.
    @return Shares.
    """
    return self._to_shares(assets, True)


@view
@external
def previewRedeem(shares: uint256) -> uint256:
    """
    @notice Assets worth `shares`, rounded down (as a redemption would pay).
            `redeem` itself is disabled; see `request_redeem`.
    @param shares Share amount.
    @return Collateral amount.
    """
    return self._to_assets(shares, False)


@nonreentrant
@external
def deposit(assets: uint256, receiver: address) -> uint256:
    """
    @notice Deposit `assets` of collateral (approved to the vault) and mint
            shares to `receiver`, rounded down.
    @param assets Collateral amount, > 0.
    @param receiver Share recipient, not the zero address.
    @return Shares minted.
    """
    assert assets > 0, "vault: zero amount"
    assert receiver != empty(address), "vault: zero receiver"
    self._check_backstop_fresh()
    shares: uint256 = self._to_shares(assets, False)
    assert shares > 0, "vault: zero shares"
    self._pull_assets(assets)
    erc20._mint(receiver, shares)
    log IERC4626.Deposit(sender=msg.sender, owner=receiver, assets=assets, shares=shares)
    return shares


@nonreentrant
@external
def mint(shares: uint256, receiver: address) -> uint256:
    """
    @notice Mint exactly `shares` to `receiver` for collateral rounded up.
    @param shares Share amount, > 0.
    @param receiver Share recipient, not the zero address.
    @return Collateral taken.
    """
    assert shares > 0, "vault: zero shares"
    assert receiver != empty(address), "vault: zero receiver"
    self._check_backstop_fresh()
    # >= 1 since shares > 0 and the division rounds up
    assets: uint256 = self._to_assets(shares, True)
    self._pull_assets(assets)
    erc20._mint(receiver, shares)
    log IERC4626.Deposit(sender=msg.sender, owner=receiver, assets=assets, shares=shares)
    return assets


@external
def withdraw(assets: uint256, receiver: address, owner: address) -> uint256:
    """
    @notice Disabled (ERC-4626 allows it through maxWithdraw = 0).
    @dev Always reverts "vault: use request_redeem".
    @param assets Ignored.
    @param receiver Ignored.
    @param owner Ignored.
    @return Never returns.
    """
    raise "vault: use request_redeem"


@external
def redeem(shares: uint256, receiver: address, owner: address) -> uint256:
    """
    @notice Disabled (ERC-4626 allows it through maxRedeem = 0).
    @dev Always reverts "vault: use request_redeem".
    @param shares Ignored.
    @param receiver Ignored.
    @param owner Ignored.
    @return Never returns.
    """
    raise "vault: use request_redeem"


# --------------------------------------------------------- cooldown exits ---


@nonreentrant
@external
def request_redeem(shares: uint256) -> uint256:
    """
    @notice Start an exit: move `shares` from the caller into escrow. They
            stay in totalSupply and keep bearing draws until claimed.
            One open request per owner.
    @param shares Share amount, > 0, at most the caller's balance.
    @return Assets the shares are worth now: the most the claim will pay.
    """
    assert shares > 0, "vault: zero shares"
    assert self.redeem_requests[msg.sender].shares == 0, "vault: request pending"
    assets: uint256 = self._to_assets(shares, False)
    erc20._transfer(msg.sender, self, shares)
    ready_at: uint256 = block.timestamp + self.cooldown
    self.redeem_requests[msg.sender] = RedeemRequest(
        shares=shares, assets=assets, ready_at=ready_at, expires_at=ready_at + self.claim_window
    )
    log IInsuranceVault.RedeemRequested(
        owner=msg.sender, shares=shares, assets=assets, ready_at=ready_at
    )
    return assets


@nonreentrant
@external
def claim_redeem(receiver: address) -> uint256:
    """
    @notice Finish the caller's exit after the cooldown, within the claim
            window: burn the escrowed shares and pay min(value at request,
            value now) to `receiver`. Any surplus stays with the remaining
            holders.
    @param receiver Collateral recipient, not the zero address.
    @return Collateral paid.
    """
    assert receiver != empty(address), "vault: zero receiver"
    request: RedeemRequest = self.redeem_requests[msg.sender]
    assert request.shares > 0, "vault: no request"
    assert block.timestamp >= request.ready_at, "vault: cooldown"
    assert block.timestamp < request.expires_at, "vault: request lapsed"
    assets: uint256 = min(request.assets, self._to_assets(request.shares, False))
    assert assets <= self._idle_assets(), "vault: insufficient liquidity"
    self.redeem_requests[msg.sender] = empty(RedeemRequest)
    erc20._burn(self, request.shares)
    if assets > 0:
        assert extcall IERC20(asset).transfer(receiver, assets, default_return_value=True), "vault: transfer failed"
    log IERC4626.Withdraw(
        sender=msg.sender, receiver=receiver, owner=msg.sender, assets=assets, shares=request.shares
    )
    return assets


@nonreentrant
@external
def cancel_redeem():
    """
    @notice Abandon the caller's open (or lapsed) request: the escrowed
            shares return, but never worth more than at request. Shares
            beyond that (what they earned while pending) are burned, to the
            remaining holders; a draw meanwhile is borne in full.
    """
    request: RedeemRequest = self.redeem_requests[msg.sender]
    assert request.shares > 0, "vault: no request"
    self.redeem_requests[msg.sender] = empty(RedeemRequest)
    back: uint256 = request.shares
    if self._to_assets(request.shares, False) > request.assets:
        # b shares beside the others' S - E are worth at most a after the
        # burn: b * (A + 1) <= a * (S - E + b + 10**3), so
        # b = floor(a * (S - E + 10**3) / (A + 1 - a)), A + 1 > a here.
        others: uint256 = erc20.totalSupply - request.shares + VIRTUAL_SHARES
        back = min(
            back,
            self._mul_div(
                request.assets, others, self._total_assets() + VIRTUAL_ASSETS - request.assets, False
            ),
        )
    forfeited: uint256 = request.shares - back
    if forfeited > 0:
        erc20._burn(self, forfeited)
    erc20._transfer(self, msg.sender, back)
    log IInsuranceVault.RedeemCancelled(owner=msg.sender, shares=back, forfeited=forfeited)


# ------------------------------------------------------- clearing house ---


@nonreentrant
@external
def cover(amount: uint256) -> uint256:
    """
    @notice Pay up to `amount` of idle collateral to the clearing house.
            Clearing house only. Never reverts for lack of funds: pays
            min(amount, idle balance), possibly 0. Does not call back into
            the clearing house.
    @param amount Collateral requested.
    @return Collateral paid.
    """
    assert msg.sender == self.clearing_house, "vault: not clearing house"
    idle: uint256 = self._idle_assets()
    paid: uint256 = min(amount, idle)
    if paid > 0:
        assert extcall IERC20(asset).transfer(msg.sender, paid, default_return_value=True), "vault: transfer failed"
    log IInsuranceVault.InsuranceDrawn(
        clearing_house=msg.sender,
        amount_requested=amount,
        amount_paid=paid,
        assets_after=idle - paid,  # the asset moves exactly (no fee-on-transfer: see deposit)
    )
    return paid


@view
@external
def idle_assets() -> uint256:
    """
    @notice Collateral held by the vault itself (what `cover` can pay).
    @return Collateral amount.
    """
    return self._idle_assets()


@view
@external
def backstop_value() -> uint256:
    """
    @notice Positive equity of the vault's margin account at the clearing
            house, 0 when none or not active.
    @return Collateral amount.
    """
    return self._backstop_value()


# ------------------------------------------------------------------ owner ---


@external
def set_cooldown(cooldown_: uint256):
    """
    @notice Change the exit cooldown for future requests. Owner only.
    @param cooldown_ Seconds, at most 30 days.
    """
    ownership._check_owner()
    governed._check(keccak256(slice(msg.data, 0, 36)))
    assert cooldown_ <= MAX_COOLDOWN, "vault: cooldown too long"
    self.cooldown = cooldown_
    log IInsuranceVault.CooldownSet(cooldown=cooldown_)


@external
def set_claim_window(claim_window_: uint256):
    """
    @notice Change how long a matured request can be claimed, for future
            requests. Owner only.
    @param claim_window_ Seconds, one hour to 30 days.
    """
    ownership._check_owner()
    governed._check(keccak256(slice(msg.data, 0, 36)))
    assert claim_window_ >= MIN_CLAIM_WINDOW and claim_window_ <= MAX_CLAIM_WINDOW, "vault: bad claim window"
    self.claim_window = claim_window_
    log IInsuranceVault.ClaimWindowSet(claim_window=claim_window_)


@external
def set_clearing_house(clearing_house_: address):
    """
    @notice Set the clearing house allowed to draw with `cover`. Owner only,
            once.
    @param clearing_house_ Clearing house, not the zero address.
    """
    ownership._check_owner()
    assert self.clearing_house == empty(address), "vault: clearing house set"
    assert clearing_house_ != empty(address), "vault: zero address"
    self.clearing_house = clearing_house_
    log IInsuranceVault.ClearingHouseSet(clearing_house=clearing_house_)


@nonreentrant
@external
def fund_backstop(amount: uint256):
    """
    @notice Move `amount` of idle collateral into the vault's margin account
            at the clearing house (backstop liquidator). Owner only.
    @param amount Collateral, > 0, at most the idle balance.
    """
    ownership._check_owner()
    assert amount > 0, "vault: zero amount"
    ch: address = self.clearing_house
    assert ch != empty(address), "vault: no clearing house"
    assert amount <= self._idle_assets(), "vault: insufficient liquidity"
    assert extcall IERC20(asset).approve(ch, amount, default_return_value=True), "vault: approve failed"
    extcall IClearingHouse(ch).deposit(amount)
    # the clearing house pulls exactly `amount`; clear any leftover allowance
    assert extcall IERC20(asset).approve(ch, 0, default_return_value=True), "vault: approve failed"
    self.backstop_active = True
    log IInsuranceVault.BackstopFunded(clearing_house=ch, amount=amount)


@nonreentrant
@external
def withdraw_backstop(amount: uint256):
    """
    @notice Withdraw `amount` from the vault's margin account at the clearing
            house back into the vault. Owner only. The backstop stays active
            while the account's equity is not zero.
    @param amount Collateral, > 0.
    """
    ownership._check_owner()
    assert amount > 0, "vault: zero amount"
    ch: address = self.clearing_house
    assert ch != empty(address), "vault: no clearing house"
    before: uint256 = self._idle_assets()
    extcall IClearingHouse(ch).withdraw(amount)
    received: uint256 = self._idle_assets() - before
    self.backstop_active = (staticcall IClearingHouse(ch).health(self)).equity != 0
    log IInsuranceVault.BackstopWithdrawn(clearing_house=ch, amount=received)


# --------------------------------------------------------------- internal ---


@view
@internal
def _idle_assets() -> uint256:
    return staticcall IERC20(asset).balanceOf(self)


@view
@internal
def _backstop_value() -> uint256:
    ch: address = self.clearing_house
    if ch == empty(address) or not self.backstop_active:
        return 0
    equity: int256 = (staticcall IClearingHouse(ch).health(self)).equity
    if equity <= 0:
        return 0
    return convert(equity, uint256)


@view
@internal
def _check_backstop_fresh():
    """
    @dev With a stale mark the backstop's equity is valued against it (the
         clearing house's `equity`), so exits are priced conservatively; a
         deposit at that price would dilute the insurers when the mark comes
         back, so deposits wait for a fresh mark.
    """
    ch: address = self.clearing_house
    if ch == empty(address) or not self.backstop_active:
        return
    oracle: IPriceOracle = IPriceOracle(staticcall IClearingHouse(ch).oracle())
    held: uint256 = staticcall IClearingHouse(ch).open_markets(self)  # bit m: a position in market m
    for m: uint256 in range(c.MAX_MARKETS):
        if held >> m == 0:
            break
        if (held >> m) & 1 != 0:
            assert staticcall oracle.is_fresh(m), "vault: backstop mark stale, deposits wait"


@view
@internal
def _total_assets() -> uint256:
    return self._idle_assets() + self._backstop_value()


@pure
@internal
def _mul_div(x: uint256, y: uint256, d: uint256, roundup: bool) -> uint256:
    product: uint256 = x * y
    # d > 0 at every call site (virtual offsets)
    q: uint256 = product // d
    if roundup and product % d != 0:
        q += 1
    return q


@view
@internal
def _to_shares(assets: uint256, roundup: bool) -> uint256:
    return self._mul_div(
        assets, erc20.totalSupply + VIRTUAL_SHARES, self._total_assets() + VIRTUAL_ASSETS, roundup
    )


@view
@internal
def _to_assets(shares: uint256, roundup: bool) -> uint256:
    return self._mul_div(
        shares, self._total_assets() + VIRTUAL_ASSETS, erc20.totalSupply + VIRTUAL_SHARES, roundup
    )


@internal
def _pull_assets(assets: uint256):
    # measure the balance delta: fee-on-transfer or rebasing tokens are refused
    before: uint256 = self._idle_assets()
    assert extcall IERC20(asset).transferFrom(msg.sender, self, assets, default_return_value=True), "vault: transfer failed"
    assert self._idle_assets() - before == assets, "vault: fee-on-transfer token"
