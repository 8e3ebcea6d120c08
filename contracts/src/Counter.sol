// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title Counter: a trivial counter with native-coin deposits
/// @notice Holds a number anyone can increase, and lets each caller deposit native coin and
///         withdraw it again (for value-transfer tests).
/// @dev Invariants:
///      - `number` never decreases (checked arithmetic reverts on overflow);
///      - an address can withdraw at most what it deposited and has not yet withdrawn, so the
///        sum of `deposits` never exceeds the contract's balance (the balance may be larger if
///        coin is forced in, e.g. by selfdestruct).
contract Counter {
    /// @notice The current count.
    uint256 public number;
    /// @notice Native coin deposited by each address and not yet withdrawn.
    mapping(address => uint256) public deposits;

    /// @notice Emitted whenever `number` changes; `value` is the new number.
    event Incremented(address indexed by, uint256 value);
    /// @notice Emitted when `from` deposits `amount` of native coin.
    event Deposited(address indexed from, uint256 amount);
    /// @notice Emitted when `to` withdraws `amount` of native coin.
    event Withdrawn(address indexed to, uint256 amount);

    /// @notice Adds one to `number`.
    function increment() external {
        number += 1;
        emit Incremented(msg.sender, number);
    }

    /// @notice Adds `amount` to `number`.
    function add(uint256 amount) external {
        number += amount;
        emit Incremented(msg.sender, number);
    }

    /// @notice Returns `number`.
    function get() external view returns (uint256) {
        return number;
    }

    /// @notice Deposits the attached native coin to the caller's account.
    function deposit() external payable {
        deposits[msg.sender] += msg.value;
        emit Deposited(msg.sender, msg.value);
    }

    /// @notice Sends `amount` of the caller's deposit back to the caller.
    /// @dev Reverts "insufficient deposit" or "transfer failed". The deposit is reduced before
    ///      the call, so a reentrant withdraw cannot take more than was deposited.
    function withdraw(uint256 amount) external {
        uint256 balance = deposits[msg.sender];
        require(balance >= amount, "insufficient deposit");
        deposits[msg.sender] = balance - amount;
        emit Withdrawn(msg.sender, amount);
        (bool ok, ) = payable(msg.sender).call{value: amount}("");
        require(ok, "transfer failed");
    }
}

/// @title CounterFactory: counters created from inside a call
/// @notice `create()` deploys a new `Counter` with CREATE, so a transaction's call makes a
///         contract that later transactions of the same block can call.
/// @dev The new counter's address follows from this factory's address and nonce (1 for
///      its first creation, as for every contract under EIP-161).
contract CounterFactory {
    /// @notice Emitted for every counter created.
    event Created(address counter);

    /// @notice Creates a new counter and returns its address.
    function create() external returns (address counter) {
        counter = address(new Counter());
        emit Created(counter);
    }
}
