// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @notice The part of ERC-20 that the DAO uses.
interface IVotesToken {
    function balanceOf(address account) external view returns (uint256);
}

/// @title Dao: token-weighted proposals that execute arbitrary calls
/// @notice Anyone may propose a call (target, native-coin value, calldata). Token holders vote
///         for or against during the next `votingPeriod` blocks, each with a weight equal to
///         their token balance when they vote. After the period ends anyone may execute a
///         proposal that has more votes for than against and at least `quorum` votes for; the
///         DAO then makes the call from its own address, with its own native coin (it accepts
///         coin through `receive`).
/// @dev Proposal ids start at 1. Voting is open while block.number <= endBlock and execution
///      is possible once block.number > endBlock. Invariants:
///      - an address votes at most once per proposal;
///      - a proposal executes at most once (it is marked executed before the call, so a
///        reentrant `execute` of the same id reverts);
///      - a failed call reverts the whole `execute` with the callee's revert data, leaving the
///        proposal unexecuted.
///      Weights are balances at vote time, not a snapshot: tokens moved to another address
///      after voting can vote again there. This is a demonstration contract, not a safe
///      governance design.
contract Dao {
    /// @notice A proposed call and its tally.
    struct Proposal {
        address proposer;
        address target;
        uint256 value;
        bytes data;
        uint256 endBlock;
        uint256 forVotes;
        uint256 againstVotes;
        bool executed;
    }

    /// @notice The token whose balances weigh votes.
    address public immutable token;
    /// @notice Number of blocks a proposal stays open for voting.
    uint256 public immutable votingPeriod;
    /// @notice Minimum `forVotes` a proposal needs to pass.
    uint256 public immutable quorum;

    /// @notice Number of proposals made so far, which is also the highest id.
    uint256 public proposalCount;
    /// @notice Proposals by id.
    mapping(uint256 => Proposal) public proposals;
    /// @notice `hasVoted[id][voter]`: whether `voter` has voted on proposal `id`.
    mapping(uint256 => mapping(address => bool)) public hasVoted;

    /// @notice Emitted when proposal `id` is created; voting closes after block `endBlock`.
    event Proposed(
        uint256 indexed id,
        address indexed proposer,
        address target,
        uint256 value,
        bytes data,
        string description,
        uint256 endBlock
    );
    /// @notice Emitted when `voter` votes on proposal `id` with `weight`.
    event Voted(uint256 indexed id, address indexed voter, bool support, uint256 weight);
    /// @notice Emitted when proposal `id`'s call succeeded.
    event Executed(uint256 indexed id);

    /// @param token_ The ERC-20 token whose balances weigh votes.
    /// @param votingPeriodBlocks Number of blocks a proposal stays open (at least 1).
    /// @param quorum_ Minimum votes for a proposal to pass.
    constructor(address token_, uint256 votingPeriodBlocks, uint256 quorum_) {
        require(token_ != address(0), "zero address");
        require(votingPeriodBlocks > 0, "zero voting period");
        token = token_;
        votingPeriod = votingPeriodBlocks;
        quorum = quorum_;
    }

    /// @notice Accepts native coin, which executed proposals can spend.
    receive() external payable {}

    /// @notice Proposes that the DAO call `target` with `value` native coin and calldata `data`.
    /// @param target The address to call.
    /// @param value Native coin to send with the call.
    /// @param data The calldata.
    /// @param description Human-readable text; only emitted in `Proposed`, not stored.
    /// @return id The new proposal's id.
    function propose(
        address target,
        uint256 value,
        bytes calldata data,
        string calldata description
    ) external returns (uint256 id) {
        id = ++proposalCount;
        Proposal storage p = proposals[id];
        p.proposer = msg.sender;
        p.target = target;
        p.value = value;
        p.data = data;
        p.endBlock = block.number + votingPeriod;
        emit Proposed(id, msg.sender, target, value, data, description, p.endBlock);
    }

    /// @notice Votes for (`support` true) or against proposal `id`, weighted by the caller's
    ///         current token balance.
    function vote(uint256 id, bool support) external {
        Proposal storage p = proposals[id];
        require(p.endBlock != 0, "unknown proposal");
        require(block.number <= p.endBlock, "voting closed");
        require(!hasVoted[id][msg.sender], "already voted");
        uint256 weight = IVotesToken(token).balanceOf(msg.sender);
        require(weight > 0, "no voting power");

        hasVoted[id][msg.sender] = true;
        if (support) {
            p.forVotes += weight;
        } else {
            p.againstVotes += weight;
        }
        emit Voted(id, msg.sender, support, weight);
    }

    /// @notice Executes proposal `id` once its voting period is over, if it passed.
    /// @dev Reverts "unknown proposal", "voting open", "already executed", "defeated"
    ///      (forVotes <= againstVotes) or "quorum not reached"; if the call fails, reverts with
    ///      the callee's revert data unchanged.
    function execute(uint256 id) external {
        Proposal storage p = proposals[id];
        require(p.endBlock != 0, "unknown proposal");
        require(block.number > p.endBlock, "voting open");
        require(!p.executed, "already executed");
        require(p.forVotes > p.againstVotes, "defeated");
        require(p.forVotes >= quorum, "quorum not reached");

        p.executed = true;
        (bool ok, bytes memory result) = p.target.call{value: p.value}(p.data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(result, 32), mload(result))
            }
        }
        emit Executed(id);
    }
}
