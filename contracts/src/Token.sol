// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title Token: a minimal ERC-20 with an owner-only mint
/// @notice A fungible token following ERC-20. The deployer becomes the owner, receives
///         `initialSupply` at construction, and may later mint more (benchmarks use this to
///         fund many accounts).
/// @dev Invariants:
///      - the sum of all `balanceOf` entries equals `totalSupply`;
///      - `totalSupply` only grows, and only through the constructor and `mint`
///        (there is no burn);
///      - `owner` is fixed at deployment.
///      An allowance of `type(uint256).max` is treated as infinite and is not decreased by
///      `transferFrom`. Transfers to the zero address revert.
contract Token {
    /// @notice The token's name, e.g. "Ordo Test Token".
    string public name;
    /// @notice The token's ticker symbol, e.g. "OTT".
    string public symbol;
    /// @notice Number of decimals used for display; always 18.
    uint8 public constant decimals = 18;
    /// @notice Total number of tokens in existence (smallest units).
    uint256 public totalSupply;
    /// @notice The deployer; the only address allowed to call `mint`.
    address public immutable owner;

    /// @notice Balance of each account.
    mapping(address => uint256) public balanceOf;
    /// @notice `allowance[holder][spender]`: how much `spender` may move out of `holder`'s balance.
    mapping(address => mapping(address => uint256)) public allowance;

    /// @notice Emitted when `value` tokens move from `from` to `to` (`from` is zero on mint).
    event Transfer(address indexed from, address indexed to, uint256 value);
    /// @notice Emitted when `owner` sets `spender`'s allowance to `value`.
    event Approval(address indexed owner, address indexed spender, uint256 value);

    /// @param name_ The token's name.
    /// @param symbol_ The token's symbol.
    /// @param initialSupply Amount minted to the deployer.
    constructor(string memory name_, string memory symbol_, uint256 initialSupply) {
        name = name_;
        symbol = symbol_;
        owner = msg.sender;
        _mint(msg.sender, initialSupply);
    }

    /// @notice Moves `amount` from the caller to `to`.
    /// @return Always true; failures revert ("insufficient balance", "zero address").
    function transfer(address to, uint256 amount) external returns (bool) {
        _transfer(msg.sender, to, amount);
        return true;
    }

    /// @notice Lets `spender` move up to `amount` of the caller's tokens (overwrites any
    ///         previous allowance).
    /// @return Always true.
    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    /// @notice Moves `amount` from `from` to `to` using the caller's allowance.
    /// @return Always true; failures revert ("insufficient allowance", "insufficient balance",
    ///         "zero address").
    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            require(allowed >= amount, "insufficient allowance");
            allowance[from][msg.sender] = allowed - amount;
        }
        _transfer(from, to, amount);
        return true;
    }

    /// @notice Creates `amount` new tokens for `to`. Only the owner may call it.
    function mint(address to, uint256 amount) external {
        require(msg.sender == owner, "not owner");
        _mint(to, amount);
    }

    /// @notice Mints `amount` to each of `to`; only the owner. One call funds many
    /// accounts (benchmark set-up), at about 25,000 gas per account.
    function mintBatch(address[] calldata to, uint256 amount) external {
        require(msg.sender == owner, "not owner");
        for (uint256 i = 0; i < to.length; i++) {
            _mint(to[i], amount);
        }
    }

    function _transfer(address from, address to, uint256 amount) private {
        require(to != address(0), "zero address");
        uint256 fromBalance = balanceOf[from];
        require(fromBalance >= amount, "insufficient balance");
        unchecked {
            // Cannot underflow (checked above) nor overflow (the sum of balances is totalSupply).
            balanceOf[from] = fromBalance - amount;
            balanceOf[to] += amount;
        }
        emit Transfer(from, to, amount);
    }

    function _mint(address to, uint256 amount) private {
        require(to != address(0), "zero address");
        totalSupply += amount; // checked: reverts if the supply would overflow
        unchecked {
            balanceOf[to] += amount; // cannot overflow: balanceOf[to] <= totalSupply
        }
        emit Transfer(address(0), to, amount);
    }
}
