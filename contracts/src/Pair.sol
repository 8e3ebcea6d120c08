// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @notice The part of ERC-20 that the pair uses.
interface IPairToken {
    function transfer(address to, uint256 amount) external returns (bool);
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
}

/// @title Pair: a constant-product AMM over two ERC-20 tokens
/// @notice A simplified Uniswap-v2-style pool. Liquidity providers deposit both tokens and
///         receive shares; traders swap one token for the other at the price given by
///         x * y = k, paying a 0.3% fee that stays in the pool.
/// @dev Invariants:
///      - `reserve0`/`reserve1` count the tokens the pool has received through `addLiquidity`
///        and `swap` minus what it paid out; tokens sent to the pool directly are ignored and
///        stay there (there is no `sync`/`skim`). Fee-on-transfer tokens are not supported.
///      - a swap never lowers `reserve0 * reserve1` (the fee makes it grow) and never empties
///        a reserve;
///      - `totalShares` equals the sum of `shares`;
///      - every external state-changing function holds the `locked` flag while it runs, so
///        any reentrant call into the pool (for example from a token's `transferFrom`)
///        reverts with "locked".
///      Shares are not a token: they cannot be transferred, only redeemed with
///      `removeLiquidity`. There is no minimum-liquidity burn, so the first provider can set
///      any starting price.
contract Pair {
    /// @notice The first token of the pair.
    address public immutable token0;
    /// @notice The second token of the pair.
    address public immutable token1;

    uint256 private reserve0;
    uint256 private reserve1;

    /// @notice Liquidity shares held by each provider.
    mapping(address => uint256) public shares;
    /// @notice Sum of all `shares`.
    uint256 public totalShares;

    /// @notice True while a state-changing call is running (the reentrancy lock).
    bool public locked;

    /// @notice Emitted on every swap.
    event Swap(address indexed sender, address indexed tokenIn, uint256 amountIn, uint256 amountOut);
    /// @notice Emitted when `provider` deposits liquidity and receives `sharesMinted`.
    event LiquidityAdded(address indexed provider, uint256 amount0, uint256 amount1, uint256 sharesMinted);
    /// @notice Emitted when `provider` burns `sharesBurned` and receives both tokens back.
    event LiquidityRemoved(address indexed provider, uint256 amount0, uint256 amount1, uint256 sharesBurned);

    modifier lock() {
        require(!locked, "locked");
        locked = true;
        _;
        locked = false;
    }

    /// @param token0_ Address of the first ERC-20 token.
    /// @param token1_ Address of the second ERC-20 token; must differ from the first.
    constructor(address token0_, address token1_) {
        require(token0_ != address(0) && token1_ != address(0), "zero address");
        require(token0_ != token1_, "identical tokens");
        token0 = token0_;
        token1 = token1_;
    }

    /// @notice Returns the pool's reserves of `token0` and `token1`.
    function getReserves() external view returns (uint256, uint256) {
        return (reserve0, reserve1);
    }

    /// @notice Deposits `amount0` of token0 and `amount1` of token1 (both pulled with
    ///         `transferFrom`, so approve the pair first) and mints shares to the caller.
    /// @dev The first deposit mints sqrt(amount0 * amount1) shares. Later deposits mint
    ///      min(amount0 * totalShares / reserve0, amount1 * totalShares / reserve1): any amount
    ///      beyond the pool's current ratio is kept by the pool and benefits all providers.
    /// @return minted The shares minted to the caller.
    function addLiquidity(uint256 amount0, uint256 amount1) external lock returns (uint256 minted) {
        if (totalShares == 0) {
            minted = _sqrt(amount0 * amount1);
        } else {
            uint256 byAmount0 = (amount0 * totalShares) / reserve0;
            uint256 byAmount1 = (amount1 * totalShares) / reserve1;
            minted = byAmount0 < byAmount1 ? byAmount0 : byAmount1;
        }
        require(minted > 0, "insufficient liquidity minted");

        _pull(token0, amount0);
        _pull(token1, amount1);
        reserve0 += amount0;
        reserve1 += amount1;
        shares[msg.sender] += minted;
        totalShares += minted;
        emit LiquidityAdded(msg.sender, amount0, amount1, minted);
    }

    /// @notice Burns `amount` of the caller's shares and pays out the matching part of both
    ///         reserves.
    /// @return amount0 Token0 paid out.
    /// @return amount1 Token1 paid out.
    function removeLiquidity(uint256 amount) external lock returns (uint256 amount0, uint256 amount1) {
        require(amount > 0, "zero amount");
        require(shares[msg.sender] >= amount, "insufficient shares");
        amount0 = (amount * reserve0) / totalShares;
        amount1 = (amount * reserve1) / totalShares;

        shares[msg.sender] -= amount;
        totalShares -= amount;
        reserve0 -= amount0;
        reserve1 -= amount1;
        _push(token0, msg.sender, amount0);
        _push(token1, msg.sender, amount1);
        emit LiquidityRemoved(msg.sender, amount0, amount1, amount);
    }

    /// @notice Sells `amountIn` of `tokenIn` (pulled with `transferFrom`) for the other token.
    /// @dev out = amountIn * 997 * reserveOut / (reserveIn * 1000 + amountIn * 997), i.e. the
    ///      x * y = k price after a 0.3% fee on the input. Reverts "slippage" if out < minOut.
    /// @param tokenIn The token being sold: token0 or token1.
    /// @param amountIn How much of it to sell.
    /// @param minOut The least the caller accepts of the other token.
    /// @return out The amount of the other token paid to the caller.
    function swap(address tokenIn, uint256 amountIn, uint256 minOut) external lock returns (uint256 out) {
        bool zeroForOne;
        if (tokenIn == token0) {
            zeroForOne = true;
        } else {
            require(tokenIn == token1, "unknown token");
        }
        require(amountIn > 0, "zero amount");
        (uint256 reserveIn, uint256 reserveOut) = zeroForOne ? (reserve0, reserve1) : (reserve1, reserve0);
        require(reserveIn > 0 && reserveOut > 0, "no liquidity");

        uint256 amountInWithFee = amountIn * 997;
        out = (amountInWithFee * reserveOut) / (reserveIn * 1000 + amountInWithFee);
        require(out >= minOut, "slippage");
        require(out > 0, "insufficient output");

        _pull(tokenIn, amountIn);
        if (zeroForOne) {
            reserve0 += amountIn;
            reserve1 -= out;
            _push(token1, msg.sender, out);
        } else {
            reserve1 += amountIn;
            reserve0 -= out;
            _push(token0, msg.sender, out);
        }
        emit Swap(msg.sender, tokenIn, amountIn, out);
    }

    /// @dev Pulls `amount` of `token` from the caller; a revert in the token bubbles up.
    function _pull(address token, uint256 amount) private {
        require(IPairToken(token).transferFrom(msg.sender, address(this), amount), "transfer failed");
    }

    /// @dev Sends `amount` of `token` to `to`; a revert in the token bubbles up.
    function _push(address token, address to, uint256 amount) private {
        require(IPairToken(token).transfer(to, amount), "transfer failed");
    }

    /// @dev Integer square root (rounded down), by Newton's method.
    function _sqrt(uint256 y) private pure returns (uint256 z) {
        if (y > 3) {
            z = y;
            uint256 x = y / 2 + 1;
            while (x < z) {
                z = x;
                x = (y / x + x) / 2;
            }
        } else if (y != 0) {
            z = 1;
        }
    }
}
