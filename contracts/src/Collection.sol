// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title Collection: a minimal ERC-721 collection with open minting
/// @notice Anyone may call `mint` to receive the next token id. Tokens can be transferred,
///         approved for a single spender, or placed under an operator with
///         `setApprovalForAll`.
/// @dev Token ids start at 1 and are assigned in order, so after n mints the ids are 1..n and
///      `totalMinted == n`; id 0 never exists. Invariants:
///      - every id in 1..totalMinted has exactly one non-zero owner, and no other id has one
///        (there is no burn);
///      - `balanceOf(a)` equals the number of ids owned by `a`;
///      - a token's single approval is cleared whenever the token moves.
///      Deliberately not a full ERC-721: there is no `safeTransferFrom` (so no
///      `onERC721Received` receiver check), no ERC-165 `supportsInterface` and no `tokenURI`.
contract Collection {
    /// @notice The collection's name.
    string public name;
    /// @notice The collection's symbol.
    string public symbol;
    /// @notice Number of tokens minted so far, which is also the highest id.
    uint256 public totalMinted;

    mapping(uint256 => address) private owners;
    mapping(address => uint256) private balances;
    mapping(uint256 => address) private approvals;
    mapping(address => mapping(address => bool)) private operators;

    /// @notice Emitted when token `tokenId` moves from `from` to `to` (`from` is zero on mint).
    event Transfer(address indexed from, address indexed to, uint256 indexed tokenId);
    /// @notice Emitted when `owner` lets `approved` move token `tokenId` (zero clears it).
    event Approval(address indexed owner, address indexed approved, uint256 indexed tokenId);
    /// @notice Emitted when `owner` grants or revokes `operator` control over all its tokens.
    event ApprovalForAll(address indexed owner, address indexed operator, bool approved);

    /// @param name_ The collection's name.
    /// @param symbol_ The collection's symbol.
    constructor(string memory name_, string memory symbol_) {
        name = name_;
        symbol = symbol_;
    }

    /// @notice Mints the next token id to the caller.
    /// @return tokenId The new token's id (equal to `totalMinted` after the call).
    function mint() external returns (uint256 tokenId) {
        tokenId = ++totalMinted;
        owners[tokenId] = msg.sender;
        balances[msg.sender] += 1;
        emit Transfer(address(0), msg.sender, tokenId);
    }

    /// @notice Returns the owner of `tokenId`; reverts "nonexistent token" if it was never minted.
    function ownerOf(uint256 tokenId) public view returns (address) {
        address owner = owners[tokenId];
        require(owner != address(0), "nonexistent token");
        return owner;
    }

    /// @notice Returns how many tokens `owner` holds; reverts "zero address" for address 0.
    function balanceOf(address owner) external view returns (uint256) {
        require(owner != address(0), "zero address");
        return balances[owner];
    }

    /// @notice Lets `to` transfer `tokenId` (zero clears the approval). Only the token's owner
    ///         or one of its operators may call it.
    function approve(address to, uint256 tokenId) external {
        address owner = ownerOf(tokenId);
        require(msg.sender == owner || operators[owner][msg.sender], "not authorized");
        approvals[tokenId] = to;
        emit Approval(owner, to, tokenId);
    }

    /// @notice Returns the address approved for `tokenId`, or zero; reverts for a token that
    ///         does not exist.
    function getApproved(uint256 tokenId) external view returns (address) {
        ownerOf(tokenId);
        return approvals[tokenId];
    }

    /// @notice Grants (`approved` true) or revokes `operator`'s control over all the caller's tokens.
    function setApprovalForAll(address operator, bool approved) external {
        operators[msg.sender][operator] = approved;
        emit ApprovalForAll(msg.sender, operator, approved);
    }

    /// @notice Returns whether `operator` controls all of `owner`'s tokens.
    function isApprovedForAll(address owner, address operator) external view returns (bool) {
        return operators[owner][operator];
    }

    /// @notice Moves `tokenId` from `from` to `to`. The caller must be the owner, the token's
    ///         approved address, or an operator of the owner. No receiver check is made.
    function transferFrom(address from, address to, uint256 tokenId) external {
        address owner = ownerOf(tokenId);
        require(owner == from, "wrong from");
        require(to != address(0), "zero address");
        require(
            msg.sender == owner || approvals[tokenId] == msg.sender || operators[owner][msg.sender],
            "not authorized"
        );
        delete approvals[tokenId];
        balances[from] -= 1;
        balances[to] += 1;
        owners[tokenId] = to;
        emit Transfer(from, to, tokenId);
    }
}
