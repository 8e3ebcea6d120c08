// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

// Contracts that misbehave on purpose, for tests of a validator's robustness: each must end
// in a clean, metered failure (out of gas, revert, invalid opcode) without harming the node.

/// @title Looper: a function that never returns
/// @notice `spin` loops forever; any call to it must run out of gas.
contract Looper {
    /// @notice Loops until the call's gas is exhausted.
    function spin() external pure {
        while (true) {}
    }
}

/// @title MemoryHog: expands memory to an arbitrary size
/// @notice `expand` writes one word at byte offset `words * 32`, forcing the EVM to grow
///         memory to that size and charge the (quadratic) expansion cost. A large `words`
///         must fail with out of gas, not make the node allocate the memory.
contract MemoryHog {
    /// @notice Stores 1 at byte offset `words * 32` (unchecked: the product may wrap) and
    ///         reads it back, so that the optimizer cannot drop the store.
    /// @return value The word read back (1), if the call survives.
    function expand(uint256 words) external pure returns (uint256 value) {
        assembly {
            let offset := mul(words, 32)
            mstore(offset, 1)
            value := mload(offset)
        }
    }
}

/// @title Recurser: unbounded recursion through external calls
/// @notice `recurse` calls itself through `this.recurse`, one call frame deeper each time,
///         with no base case. It must stop at the call-depth limit (1024) or, more likely,
///         when the 63/64 gas rule leaves too little gas, and the failure propagates up.
contract Recurser {
    /// @notice Calls `this.recurse(depth + 1)`; never returns normally.
    function recurse(uint256 depth) external returns (uint256) {
        return this.recurse(depth + 1);
    }
}

/// @title SelfDestructor: calls SELFDESTRUCT
/// @notice `destroy` runs `selfdestruct(to)`. Under Cancun rules (EIP-6780) this only sends
///         the contract's balance to `to`; the code and storage are removed only when the
///         contract was created in the same transaction.
contract SelfDestructor {
    /// @notice Accepts native coin so that `destroy` has a balance to send.
    receive() external payable {}

    /// @notice Executes SELFDESTRUCT with beneficiary `to`.
    function destroy(address payable to) external {
        selfdestruct(to);
    }
}

/// @title Reverter: reverts with a reason string or a custom error
contract Reverter {
    /// @notice The custom error raised by `failCustom`.
    error Nope(uint256 code);

    /// @notice Always reverts with `Error("nope")`.
    function fail() external pure {
        revert("nope");
    }

    /// @notice Always reverts with `Nope(42)`.
    function failCustom() external pure {
        revert Nope(42);
    }
}

/// @title Thrower: executes the INVALID opcode
/// @notice `invalid` runs opcode 0xfe, which consumes all the call's gas and fails.
contract Thrower {
    /// @notice Executes INVALID (0xfe).
    function invalid() external pure {
        assembly {
            invalid()
        }
    }
}

/// @notice The part of `Pair` that `Reenterer` calls.
interface IReenteredPair {
    function swap(address tokenIn, uint256 amountIn, uint256 minOut) external returns (uint256 out);
}

/// @title Reenterer: a malicious token that re-enters a Pair
/// @notice An ERC-20-like contract meant to be one of a `Pair`'s two tokens. It keeps no
///         balances: `transfer` and `transferFrom` move nothing and return true, so a pair
///         over it can be given liquidity (the other token must be real). `attack(pair,
///         address(this), amount)` calls `pair.swap(address(this), amount, 0)`; the pair then
///         pulls the input with this contract's `transferFrom`, which calls
///         `pair.swap(address(this), amount, 0)` again.
/// @dev Which lock trips: the inner, reentrant `swap` finds the Pair's `locked` flag, set by
///      the outer `swap`, and reverts "locked" at its first statement. The revert bubbles up
///      through `transferFrom`, the outer swap and `attack`, so the whole transaction reverts
///      with `Error("locked")` and changes nothing. Setup: deploy a Token and this contract,
///      deploy `Pair(reenterer, token)` (either order), approve the pair on the Token and
///      call `addLiquidity` (the re-entry is armed only inside `attack`), then call `attack`.
contract Reenterer {
    address private pair;
    address private reenterToken;
    uint256 private reenterAmount;
    bool private armed;

    /// @notice Swaps `amount` of `tokenIn` (normally this contract) on `pair_`, arming a
    ///         callback that re-enters `pair_.swap` once. Expected to revert with "locked".
    /// @return The swap's output, if the pair's lock ever failed to stop the re-entry.
    function attack(address pair_, address tokenIn, uint256 amount) external returns (uint256) {
        pair = pair_;
        reenterToken = tokenIn;
        reenterAmount = amount;
        armed = true;
        uint256 out = IReenteredPair(pair_).swap(tokenIn, amount, 0);
        armed = false;
        return out;
    }

    /// @notice ERC-20 `transferFrom`: re-enters the pair when armed; otherwise moves nothing.
    /// @return Always true (if it returns).
    function transferFrom(address, address, uint256) external returns (bool) {
        if (armed) {
            armed = false;
            IReenteredPair(pair).swap(reenterToken, reenterAmount, 0);
        }
        return true;
    }

    /// @notice ERC-20 `transfer`: moves nothing.
    /// @return Always true.
    function transfer(address, uint256) external pure returns (bool) {
        return true;
    }
}
